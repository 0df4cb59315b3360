# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SSDP (UPnP Device Architecture 1.1, section 1): the M-SEARCH request, its answers and NOTIFY.

Pure functions, bytes <-> values.  ``decode`` never raises: a datagram that is not an
SSDP answer or announcement (anything may arrive on the port) gives None.
"""

from __future__ import annotations

import re

from .records import record_class

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Dict, Optional

MULTICAST_ADDRESS = "239.255.255.250"
PORT = 1900
MAX_MESSAGE = 8192  # an SSDP message is a datagram of a few hundred octets

IGD_V2 = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
IGD_V1 = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
WANIP_V2 = "urn:schemas-upnp-org:service:WANIPConnection:2"
WANIP_V1 = "urn:schemas-upnp-org:service:WANIPConnection:1"
WANPPP_V1 = "urn:schemas-upnp-org:service:WANPPPConnection:1"
# The same under the DSL Forum's TR-064 names, as some ISP routers announce them.
TR064_IGD = "urn:dslforum-org:device:InternetGatewayDevice:1"
TR064_WANIP = "urn:dslforum-org:service:WANIPConnection:1"
TR064_WANPPP = "urn:dslforum-org:service:WANPPPConnection:1"
SEARCH_TARGETS = (IGD_V2, IGD_V1, WANIP_V2, WANIP_V1, WANPPP_V1,
                  TR064_IGD, TR064_WANIP, TR064_WANPPP)  # all sent at once, v2 first, the forum's before TR-064's


@record_class(frozen=True)
class SsdpMessage:
    """An answer to an M-SEARCH (``kind`` "response") or an announcement ("notify").

    ``target`` is the ST of an answer or the NT of a NOTIFY; ``nts`` is NOTIFY's
    sub-type (``ssdp:alive``, ``ssdp:byebye``, ``ssdp:update``), empty for answers.
    """

    kind: str
    location: str
    target: str
    usn: str
    boot_id: Optional[int] = None
    nts: str = ""


def encode_msearch(target: str, mx: int = 1, host: str = MULTICAST_ADDRESS) -> bytes:
    """An M-SEARCH for ``target``; ``host`` is the HOST header (the group, or the gateway for unicast).

    A unicast M-SEARCH carries no MX (UDA 1.1 section 1.3.2); miniupnpd answers it either way.
    """
    for value in (target, host):
        if any(ch in value for ch in "\r\n") or not value:
            raise ValueError(f"invalid SSDP header value {value!r}")
    lines = [
        "M-SEARCH * HTTP/1.1",
        f"HOST: {host}:{PORT}",
        'MAN: "ssdp:discover"',
    ]
    if host == MULTICAST_ADDRESS:
        lines.append(f"MX: {int(mx)}")
    lines.append(f"ST: {target}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _headers(lines: list) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    for line in lines:
        if not line:
            break
        name, sep, value = line.partition(":")
        if not sep:
            continue
        headers.setdefault(name.strip().upper(), value.strip())
    return headers


def decode(data: bytes) -> Optional[SsdpMessage]:
    """An M-SEARCH answer or a NOTIFY, or None for anything else (never raises)."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_MESSAGE:
        return None
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.replace("\r\n", "\n").split("\n")
    start = lines[0].split()
    if len(start) >= 2 and start[0].upper().startswith("HTTP/1.") and start[1] == "200":
        kind = "response"
    elif len(start) == 3 and start[0].upper() == "NOTIFY" and start[1] == "*" and start[2].upper().startswith("HTTP/1."):
        kind = "notify"
    else:
        return None
    headers = _headers(lines[1:])
    location = headers.get("LOCATION", "")
    target = headers.get("ST" if kind == "response" else "NT", "")
    if not location or not target:
        return None
    boot_id: Optional[int] = None
    raw_boot = headers.get("BOOTID.UPNP.ORG", "")
    if re.fullmatch(r"[0-9]{1,10}", raw_boot) and int(raw_boot) < 2 ** 31:
        boot_id = int(raw_boot)
    return SsdpMessage(kind, location, target, headers.get("USN", ""), boot_id,
                       headers.get("NTS", "") if kind == "notify" else "")
