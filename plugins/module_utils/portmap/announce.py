# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What gateways announce, heard: NAT-PMP and PCP restarts, UPnP IGD ``ssdp:alive``.

A gateway that restarts (or whose public address changes) says so without being asked:

- NAT-PMP (RFC 6886 section 3.2.1): a public address response, sent to 224.0.0.1:5350;
- PCP (RFC 6887 section 14.1.3): an unsolicited ANNOUNCE response, to the same group and port;
- UPnP IGD (UPnP Device Architecture 1.1 section 1.2.2): ``NOTIFY * HTTP/1.1`` with
  ``NTS: ssdp:alive`` to 239.255.255.250:1900, whose BOOTID.UPNP.ORG changes at each boot.

Each method says where its announcements come (``Method.announcements``) and how to read them
(``Method.decode_announcement``).  ``Listener`` holds the sockets that hear them (bound to the ports, joined to the groups on
the interface toward the gateway; joining sends nothing for 224.0.0.1, and an IGMP report
on that interface only for the SSDP group) and turns each datagram into an ``Announcement``.
Only datagrams whose source is one of the gateways asked for are returned; the others are
counted in ``ignored`` (RFC 6886 section 3.2.1: a client discards announcements from any
address but its gateway's).  Nothing is ever sent from these sockets.
"""

from __future__ import annotations

import errno
import socket

from .methods import registry as methods

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Dict, Iterable, List, Optional, Tuple

MAX_DATAGRAM = 2048
PROBE_PORT = 5351  # connecting a UDP socket toward it sends nothing: it tells the local address


class Announcement:
    """One announcement from a gateway: ``kind``, the method whose announcement it is, and what it tells.

    ``epoch``: NAT-PMP and PCP (seconds since the gateway's table was reset); ``public_address``:
    NAT-PMP; ``boot_id`` (None when the gateway sends none) and ``nts``: UPnP.
    """

    __slots__ = ("kind", "source", "epoch", "public_address", "boot_id", "nts", "location")

    def __init__(self, kind: str, source: str, epoch: Optional[int] = None, public_address: Optional[str] = None,
                 boot_id: Optional[int] = None, nts: str = "", location: str = "") -> None:
        self.kind = kind
        self.source = source
        self.epoch = epoch
        self.public_address = public_address
        self.boot_id = boot_id
        self.nts = nts
        self.location = location

    def __repr__(self) -> str:
        return f"Announcement({self.kind}, {self.source}, epoch={self.epoch}, boot_id={self.boot_id})"


def decode(data: bytes, source: str, kinds: Iterable[str]) -> Optional[Announcement]:
    """The announcement in ``data`` of one of the methods ``kinds``, or None for anything else (never raises)."""
    for kind in kinds:
        found = methods.load(kind).decode_announcement(data, source)
        if found is not None:
            return found
    return None


def local_address_toward(gateway: str, source_address: Optional[str] = None) -> str:
    """The address this host uses toward ``gateway`` (connecting a UDP socket sends nothing)."""
    if source_address:
        return source_address
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.connect((gateway, PROBE_PORT))
        return sock.getsockname()[0]
    except OSError:
        return "0.0.0.0"
    finally:
        sock.close()


class Listener:
    """The sockets that hear announcements from ``gateways`` (address -> the local address toward it)
    for the methods ``kinds`` (each method's ``announcements``: port, group, what).  Methods that share
    a port share a socket, and each hears the others' announcements there (miniupnpd announces a
    restart in NAT-PMP and in PCP).

    A port that cannot be bound (another program holds it without SO_REUSEADDR) is left out and
    said in ``problems``: the watch then relies on its periodic checks.
    """

    def __init__(self, gateways: Dict[str, str], kinds: Iterable[str]) -> None:
        self.gateways = dict(gateways)
        self.sockets: List[Tuple[socket.socket, Tuple[str, ...]]] = []
        self.problems: List[str] = []
        self.ignored = 0
        self.last_ignored: Optional[str] = None
        interfaces = sorted(set(self.gateways.values()))
        wanted = {methods.load(kind).announcements for kind in kinds}
        channels: Dict[Tuple[int, str, str], List[str]] = {}
        for kind in methods.NAMES:  # every method heard on a channel: a restart is one, whichever says it
            heard = methods.load(kind).announcements
            if heard is not None and heard in wanted:
                channels.setdefault(heard, []).append(kind)
        for (port, group, what), heard_kinds in channels.items():
            self._open(port, group, interfaces, what, tuple(heard_kinds))

    def _open(self, port: int, group: str, interfaces: Iterable[str], what: str, kinds: Tuple[str, ...]) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                except OSError:
                    pass
            sock.bind(("", port))
        except OSError as exc:
            sock.close()
            self.problems.append(f"cannot listen for {what} on port {port}: {exc.strerror or exc}")
            return
        for interface in interfaces:
            if interface == "0.0.0.0":
                continue
            membership = socket.inet_aton(group) + socket.inet_aton(interface)
            try:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:  # already a member (224.0.0.1 always is)
                    self.problems.append(f"cannot join {group} on {interface} for {what}: {exc.strerror or exc}")
        sock.setblocking(False)
        self.sockets.append((sock, kinds))

    def filenos(self) -> List[int]:
        return [sock.fileno() for sock, _kinds in self.sockets]

    def receive(self, ready: Iterable[int]) -> List[Announcement]:
        """The announcements waiting on the sockets ``ready`` names, from the gateways only."""
        found: List[Announcement] = []
        wanted = set(ready)
        for sock, kinds in self.sockets:
            if sock.fileno() not in wanted:
                continue
            while True:
                try:
                    data, (source, _port) = sock.recvfrom(MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                announcement = decode(data, source, kinds)
                if announcement is None:
                    continue
                if source not in self.gateways:
                    self.ignored += 1
                    self.last_ignored = f"{announcement.kind} announcement from {source}"
                    continue
                found.append(announcement)
        return found

    def close(self) -> None:
        for sock, _kinds in self.sockets:
            sock.close()
        self.sockets = []
