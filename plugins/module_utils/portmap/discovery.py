# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding the gateway: NAT-PMP and PCP talk to the host's default IPv4 router.

Order: an explicit address; else netifaces when it is importable; else
/proc/net/route on Linux; else the BSD/macOS routing table (``route -n get default``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import struct
import sys

from .errors import DiscoveryError

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Callable, List, Optional, Tuple

try:
    import netifaces  # optional: used when importable, never required

    HAS_NETIFACES = True
except ImportError:
    netifaces = None
    HAS_NETIFACES = False

PROC_ROUTE = "/proc/net/route"
RTF_UP = 0x1
RTF_GATEWAY = 0x2

HOW_TO_PASS = (
    "pass the gateway's address explicitly (module option 'gateway', command option --gateway)"
)


def validate_ipv4(value: str, name: str = "gateway") -> str:
    try:
        return str(ipaddress.IPv4Address(str(value).strip()))
    except ValueError:
        raise DiscoveryError(f"{name} must be an IPv4 address, got {value!r}") from None


def parse_proc_net_route(text: str) -> Optional[str]:
    """The default gateway in the text of /proc/net/route (lowest metric wins)."""
    best: Optional[Tuple[int, str]] = None
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            destination = int(fields[1], 16)
            gateway = int(fields[2], 16)
            flags = int(fields[3], 16)
            metric = int(fields[6])
            mask = int(fields[7], 16)
        except ValueError:
            continue
        if destination or mask or not flags & RTF_UP or not flags & RTF_GATEWAY or not gateway:
            continue
        # The kernel prints the address in host byte order (little-endian on common CPUs).
        address = socket.inet_ntoa(struct.pack("=I", gateway))
        if best is None or metric < best[0]:
            best = (metric, address)
    return best[1] if best else None


_ROUTE_GET = re.compile(r"^\s*gateway:\s*(\S+)", re.MULTILINE)
_NETSTAT_DEFAULT = re.compile(r"^(?:default|0\.0\.0\.0)\s+(\d+\.\d+\.\d+\.\d+)\s", re.MULTILINE)


def parse_bsd_route(text: str) -> Optional[str]:
    """The gateway in ``route -n get default`` output, or in ``netstat -rn`` output."""
    for pattern in (_ROUTE_GET, _NETSTAT_DEFAULT):
        for match in pattern.finditer(text):
            try:
                return str(ipaddress.IPv4Address(match.group(1)))
            except ValueError:
                continue
    return None


def _from_netifaces() -> Optional[str]:
    if not HAS_NETIFACES:
        return None
    try:
        default = netifaces.gateways().get("default", {})
        entry = default.get(netifaces.AF_INET)
    except Exception:  # pylint: disable=broad-except
        return None
    return entry[0] if entry else None


def _from_proc(path: str = PROC_ROUTE) -> Optional[str]:
    try:
        with open(path, encoding="ascii") as handle:
            return parse_proc_net_route(handle.read())
    except OSError:
        return None


def _from_bsd_route() -> Optional[str]:
    if sys.platform.startswith("linux"):
        return None
    import shutil  # pylint: disable=import-outside-toplevel  # BSD and macOS only: the command starts faster without
    import subprocess  # pylint: disable=import-outside-toplevel

    for argv in (["route", "-n", "get", "default"], ["netstat", "-rn", "-f", "inet"]):
        candidates = [f"/sbin/{argv[0]}", f"/usr/sbin/{argv[0]}", f"/usr/bin/{argv[0]}"]
        tool = shutil.which(argv[0]) or next((p for p in candidates if os.path.exists(p)), None)
        if not tool:
            continue
        try:
            # No AnsibleModule.run_command: this package runs in the renewal job too, outside Ansible.
            result = subprocess.run([tool] + argv[1:], capture_output=True, text=True, timeout=5,  # pylint: disable=ansible-bad-function
                                    check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        found = parse_bsd_route(result.stdout)
        if found:
            return found
    return None


SOURCES: List[Tuple[str, Callable[[], Optional[str]]]] = [
    ("netifaces", _from_netifaces),
    (PROC_ROUTE, _from_proc),
    ("route -n get default", _from_bsd_route),
]


def discover_gateway(explicit: Optional[str] = None) -> Tuple[str, str]:
    """The gateway's address and where it was found; DiscoveryError when nowhere."""
    if explicit:
        return validate_ipv4(explicit), "explicit"
    looked = []
    for name, source in SOURCES:
        if name == "netifaces" and not HAS_NETIFACES:
            continue
        looked.append(name)
        found = source()
        if found:
            return validate_ipv4(found), name
    raise DiscoveryError(f"no default IPv4 gateway found (looked in {', '.join(looked)}); {HOW_TO_PASS}")
