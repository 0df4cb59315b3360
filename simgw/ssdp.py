"""SSDP (UPnP Device Architecture 1.1, section 1.3): the simulated IGD answers M-SEARCH.

In a network namespace of its own it may join the group 239.255.255.250:1900 (``multicast``);
anywhere it answers unicast M-SEARCH sent to its own address (``unicast``: on loopback, in the
initial namespace), and never joins a group there.
"""

from __future__ import annotations

import email.utils
import selectors
import socket
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from .netns import refuse_multicast
from .streams import unregister

if TYPE_CHECKING:  # pragma: no cover
    from .igd import Igd

GROUP = "239.255.255.250"
PORT = 1900
SSDP_MODES = ("off", "unicast", "multicast")
SERVER = "Debian/12 UPnP/1.1 simgw/1.0"


def parse_search(data: bytes) -> Optional[Dict[str, str]]:
    """The headers of an M-SEARCH request (names upper case), or None for anything else."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\r\n")
    if lines[0].split() != ["M-SEARCH", "*", "HTTP/1.1"]:
        return None
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().upper()] = value.strip()
    if headers.get("MAN", "").strip('"') != "ssdp:discover" or "ST" not in headers:
        return None
    return headers


class SsdpResponder:
    """Answers M-SEARCH for the IGD's devices and services, with the faults of the ``ssdp`` method."""

    def __init__(self, igd: "Igd", mode: str = "unicast", port: int = PORT) -> None:
        if mode not in SSDP_MODES:
            raise ValueError(f"ssdp must be off, unicast or multicast, got {mode!r}")
        if mode == "multicast":
            refuse_multicast("ssdp", "SSDP", "unicast or off")
        self.igd = igd
        self.mode = mode
        self.port = port
        self._sock: Optional[socket.socket] = None
        self._selector: Optional[selectors.BaseSelector] = None

    def bind(self, selector: selectors.BaseSelector) -> None:
        if self.mode == "off":
            return
        address = self.igd.gw.address
        sock = self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.mode == "multicast":
            sock.bind(("", self.port))  # the group's datagrams and unicast ones
            membership = socket.inet_aton(GROUP) + socket.inet_aton(address)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        else:
            sock.bind((address, self.port))
        sock.setblocking(False)
        self._selector = selector
        selector.register(sock, selectors.EVENT_READ, self._on_datagram)
        self.notify()

    def notify(self) -> None:
        """Multicast only: ssdp:alive for each target on start and reboot (their BOOTID tells a restart)."""
        if self.mode != "multicast" or self._sock is None:
            return
        self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.igd.gw.address))
        for nt, usn in self.igd.search_targets("ssdp:all"):
            message = ("NOTIFY * HTTP/1.1\r\n"
                       f"HOST: {GROUP}:{PORT}\r\n"
                       "CACHE-CONTROL: max-age=120\r\n"
                       f"LOCATION: {self.igd.location()}\r\n"
                       f"SERVER: {SERVER}\r\n"
                       f"NT: {nt}\r\n"
                       f"USN: {usn}\r\n"
                       "NTS: ssdp:alive\r\n"
                       "OPT: \"http://schemas.upnp.org/upnp/1/0/\"; ns=01\r\n"
                       f"01-NLS: {self.igd.boot_id}\r\n"
                       f"BOOTID.UPNP.ORG: {self.igd.boot_id}\r\n"
                       "CONFIGID.UPNP.ORG: 1337\r\n"
                       "\r\n")
            self._send([message.encode("ascii")], (GROUP, self.port))

    def close(self) -> None:
        if self._sock is not None:
            unregister(self._selector, self._sock)
            self._sock.close()
            self._sock = None

    def _on_datagram(self, sock: socket.socket) -> None:
        try:
            data, source = sock.recvfrom(8192)
        except OSError:
            return
        gw = self.igd.gw
        headers = parse_search(data)
        if headers is None:
            return  # NOTIFY of other devices, answers, noise
        gw.requests += 1
        entry: Dict[str, Any] = {"time": time.time(), "client": f"{source[0]}:{source[1]}", "method": "ssdp",
                                 "op": "search", "st": headers["ST"]}
        answers = [self.response(st, usn) for st, usn in self.igd.search_targets(headers["ST"])]
        faults = gw.faults
        if not answers:
            entry["answer"] = "none: not a search target of this device"
        elif faults.take("drop", "search", "ssdp"):
            entry.update(answer="none", fault="drop")
        else:
            entry["answer"] = f"{len(answers)} response(s)"
            delay = faults.take("delay", "search", "ssdp")
            if delay:
                seconds = float(delay.params.get("seconds", 2.0))
                entry["fault"] = f"delay {seconds}"
                gw.at(time.monotonic() + seconds, lambda: self._send(answers, source))
            else:
                self._send(answers, source)
        gw.record(entry)

    def _send(self, answers: List[bytes], destination: Tuple[str, int]) -> None:
        for answer in answers:
            if self._sock is None:
                return
            try:
                self._sock.sendto(answer, destination)
                self.igd.gw.replies += 1
            except OSError:
                pass

    def response(self, st: str, usn: str) -> bytes:
        igd = self.igd
        location = igd.location()
        moved = igd.gw.faults.take("location", "search", "ssdp")
        if moved:
            location = moved.params.get("url") or location.replace(igd.gw.address, str(moved.params.get("host", "192.0.2.1")), 1)
        return ("HTTP/1.1 200 OK\r\n"
                "CACHE-CONTROL: max-age=120\r\n"
                f"DATE: {email.utils.formatdate(usegmt=True)}\r\n"
                f"ST: {st}\r\n"
                f"USN: {usn}\r\n"
                "EXT:\r\n"
                f"SERVER: {SERVER}\r\n"
                f"LOCATION: {location}\r\n"
                "OPT: \"http://schemas.upnp.org/upnp/1/0/\"; ns=01\r\n"
                f"01-NLS: {igd.boot_id}\r\n"
                f"BOOTID.UPNP.ORG: {igd.boot_id}\r\n"
                "CONFIGID.UPNP.ORG: 1337\r\n"
                "\r\n").encode("ascii")
