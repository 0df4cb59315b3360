# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is a mapping reachable from the Internet?  Pure functions on addresses.

A gateway whose public address is in a special-purpose range (IANA's IPv4 Special-Purpose
Address Registry, RFC 6890) sits behind another NAT or no Internet at all: a mapping on it
reaches the gateway and nothing beyond.  With a STUN server's view of this host, a public
address that differs from the one STUN saw tells the same (a second NAT upstream), and one
that matches is the only confirmation that the mapping is reachable.
"""

from __future__ import annotations

import functools
import ipaddress

from .records import field, record_class

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Dict, List, Optional


@record_class(frozen=True)
class SpecialRange:
    network: ipaddress.IPv4Network
    name: str  # as in "... is in the <name>: ..."
    rfc: str


def _range(cidr: str, name: str, rfc: str) -> SpecialRange:
    return SpecialRange(ipaddress.IPv4Network(cidr), name, rfc)


# Ranges from which no public mapping can be reached (IANA registry, "Globally Reachable: False",
# plus multicast and limited broadcast); the most specific first.
SPECIAL_RANGES = (
    _range("0.0.0.0/8", "'this network' range", "RFC 791"),
    _range("10.0.0.0/8", "private range", "RFC 1918"),
    _range("100.64.0.0/10", "carrier-grade NAT range", "RFC 6598"),
    _range("127.0.0.0/8", "loopback range", "RFC 1122"),
    _range("169.254.0.0/16", "link-local range", "RFC 3927"),
    _range("172.16.0.0/12", "private range", "RFC 1918"),
    _range("192.0.0.0/24", "IETF protocol assignments range", "RFC 6890"),
    _range("192.0.2.0/24", "documentation range (TEST-NET-1)", "RFC 5737"),
    _range("192.168.0.0/16", "private range", "RFC 1918"),
    _range("198.18.0.0/15", "benchmarking range", "RFC 2544"),
    _range("198.51.100.0/24", "documentation range (TEST-NET-2)", "RFC 5737"),
    _range("203.0.113.0/24", "documentation range (TEST-NET-3)", "RFC 5737"),
    _range("224.0.0.0/4", "multicast range", "RFC 5771"),
    _range("255.255.255.255/32", "limited broadcast range", "RFC 919"),
    _range("240.0.0.0/4", "reserved range", "RFC 1112"),
)

UNREACHABLE = "this mapping is not reachable from the Internet"


@functools.lru_cache(maxsize=64)  # asked of the same few addresses at every answer (GetExternalIPAddress)
def special_range(address: str) -> Optional[SpecialRange]:
    """The special-purpose range an IPv4 address is in, or None (a global address, or not IPv4)."""
    try:
        ip = ipaddress.IPv4Address(str(address).strip())
    except ValueError:
        return None
    return next((r for r in SPECIAL_RANGES if ip in r.network), None)


@functools.lru_cache(maxsize=64)
def is_public(address: str) -> bool:
    """Whether ``address`` is a public IPv4 address: IPv4, and in none of the special-purpose ranges."""
    try:
        ipaddress.IPv4Address(str(address).strip())
    except ValueError:
        return False
    return special_range(address) is None


def range_warning(address: str) -> Optional[str]:
    found = special_range(address)
    if found is None:
        return None
    return f"the gateway's public address {address} is in the {found.name}: {UNREACHABLE}"


@record_class
class Reachability:
    reachable: Optional[bool]
    double_nat: Optional[bool]
    warnings: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return {"reachable": self.reachable, "double_nat": self.double_nat, "warnings": list(self.warnings)}


def assess(public_address: Optional[str], stun_address: Optional[str] = None, stun_server: str = "") -> Reachability:
    """Combine the gateway's public address with the address a STUN server saw (either may be unknown).

    ``reachable``: True only when STUN saw the gateway's public address (and it is global), False
    when the address is in a special range or STUN saw another, None when nothing tells.
    ``double_nat``: True on a special range or a disagreement, False when STUN agrees, None
    when the gateway's address or STUN's view is missing.
    """
    if not public_address:
        return Reachability(None, None)
    warning = range_warning(public_address)
    warnings = [warning] if warning else []
    if stun_address and stun_address != public_address:
        by = f" {stun_server}" if stun_server else ""
        warnings.append(f"the STUN server{by} saw this host as {stun_address}, not as the gateway's public address "
                        f"{public_address}: there is a second NAT upstream and {UNREACHABLE}")
        return Reachability(False, True, warnings)
    if warning:
        return Reachability(False, True, warnings)
    if stun_address:
        return Reachability(True, False)
    return Reachability(None, None)


def nat_facts(public_address: Optional[str], stun_server: Optional[str], timeout: float = 3.0,
              source_address: Optional[str] = None) -> Dict[str, Any]:
    """``nat`` (the STUN classification, when a server is given), ``double_nat``, ``reachable``, ``warnings``.

    No server is contacted unless one is given; the STUN client is loaded only then.
    """
    behaviour = None
    if stun_server:
        from .stun import StunClient, parse_server  # pylint: disable=import-outside-toplevel

        behaviour = StunClient(parse_server(stun_server), timeout=timeout, source_address=source_address).classify()
    seen = behaviour.mapped[0] if behaviour and behaviour.mapped else None
    verdict = assess(public_address, seen, stun_server or "")
    return dict(verdict.as_dict(), nat=behaviour.as_dict() if behaviour else None)
