# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""UPnP IGD transport: SSDP search over UDP, and a minimal HTTP/1.1 client for descriptions and SOAP.

Both run within one overall deadline (a monotonic instant the caller computes):
every wait, connect, send and read is bounded by the time left, so a device that
answers one octet at a time cannot hold the run past it.  Only plain ``http`` URLs
on the gateway's own address are fetched, and an answer larger than
``MAX_RESPONSE`` octets is refused.

The network is two interfaces, ``Datagrams`` (SSDP) and ``Stream`` (one TCP
connection): tests replace them and the clock, as with transport.Channel.
"""

from __future__ import annotations

import re
import socket
import time

from . import wire_ssdp
from .errors import GatewayTimeout, GatewayUnreachable, PortmapError, UpnpProtocolError
from .records import record_class

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Callable, Dict, List, Optional, Tuple

MAX_RESPONSE = 64 * 1024
MAX_HEADER = 8 * 1024
USER_AGENT = "portmap.natpmp UPnP/1.1"
_STATUS = re.compile(r"HTTP/1\.[0-9] ([1-9][0-9][0-9])(?: (.*))?$")
_LENGTH = re.compile(r"[0-9]{1,9}")
# A plain head: its status line and "Name: value" lines of printable ASCII, names of letters, digits
# and dashes.  Its status and Content-Length are read without the dict of every header.
_PLAIN_HEAD = re.compile(rb"HTTP/1\.[0-9] ([1-9][0-9][0-9])(?: ([ -~]*))?(?:\r\n[A-Za-z0-9-]+:[ -~]*)*")
_CONTENT_LENGTH = re.compile(rb"\r\n(?i:content-length):([ -~]*)")
_TRANSFER_ENCODING = re.compile(rb"\r\n(?i:transfer-encoding):")
_END_OF_HEAD = b"\r\n\r\n"

if TYPE_CHECKING:
    Address = Tuple[str, int]
    Clock = Callable[[], float]


class Datagrams:
    """What SSDP search needs of the network: one UDP socket."""

    def send(self, data: bytes, address: Address) -> None:
        raise NotImplementedError

    def receive(self, timeout: float) -> Optional[Tuple[bytes, Address]]:
        """A datagram and its source, or None when ``timeout`` seconds passed."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the socket."""


class UdpDatagrams(Datagrams):
    def __init__(self, source_address: Optional[str] = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
            if source_address:
                self.sock.bind((source_address, 0))
        except OSError:
            self.sock.close()
            raise

    def send(self, data: bytes, address: Address) -> None:
        self.sock.sendto(data, address)

    def fileno(self) -> int:
        """For select(): the search runs alongside the NAT-PMP and PCP requests (method auto)."""
        return self.sock.fileno()

    def receive(self, timeout: float) -> Optional[Tuple[bytes, Address]]:
        self.sock.settimeout(max(timeout, 1e-6))
        try:
            data, source = self.sock.recvfrom(wire_ssdp.MAX_MESSAGE + 1)
        except socket.timeout:
            return None
        return data, (source[0], source[1])

    def close(self) -> None:
        self.sock.close()


def search(gateway: Optional[str], deadline: float, targets: Tuple[str, ...] = wire_ssdp.SEARCH_TARGETS,
           accept: Callable[[wire_ssdp.SsdpMessage, Address], bool] = lambda message, source: True,
           clock: Clock = time.monotonic, datagrams_factory: Optional[Callable[[], Datagrams]] = None,
           source_address: Optional[str] = None, first: bool = True) -> List[Tuple[wire_ssdp.SsdpMessage, Address]]:
    """Send an M-SEARCH per target at once; collect the answers ``accept`` takes until the deadline.

    With ``gateway`` the searches are unicast to its port 1900 (only its answers count);
    without, they go to the group 239.255.255.250:1900.  With ``first`` the search ends
    at the first accepted answer, else every one within the deadline is returned.
    """
    channel = (datagrams_factory or (lambda: UdpDatagrams(source_address)))()
    destination = (gateway or wire_ssdp.MULTICAST_ADDRESS, wire_ssdp.PORT)
    found: List[Tuple[wire_ssdp.SsdpMessage, Address]] = []
    try:
        for target in targets:
            channel.send(wire_ssdp.encode_msearch(target, host=destination[0]), destination)
        while True:
            left = deadline - clock()
            if left <= 0:
                return found
            got = channel.receive(left)
            if got is None:
                continue
            data, source = got
            if gateway and source[0] != gateway:
                continue
            message = wire_ssdp.decode(data)
            if message is None or message.kind != "response" or not accept(message, source):
                continue
            found.append((message, source))
            if first:
                return found
    except OSError as exc:
        raise PortmapError(f"UPnP IGD discovery (SSDP to {destination[0]}:{destination[1]}) failed: "
                           f"{exc.strerror or exc}") from exc
    finally:
        channel.close()


# ------------------------------------------------------------------ HTTP


class Stream:
    """What the HTTP client needs of the network: one TCP connection."""

    def send(self, data: bytes, timeout: float) -> None:
        raise NotImplementedError

    def receive(self, size: int, timeout: float) -> Optional[bytes]:
        """Up to ``size`` octets (b"" at the end of the stream), or None when ``timeout`` passed."""
        raise NotImplementedError

    def local_address(self) -> str:
        return "0.0.0.0"

    def close(self) -> None:
        """Close the connection."""


class TcpStream(Stream):
    def __init__(self, address: Address, timeout: float, source_address: Optional[str] = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if source_address:
                self.sock.bind((source_address, 0))
            self.sock.settimeout(max(timeout, 1e-6))
            self.sock.connect(address)
        except BaseException:
            self.sock.close()
            raise

    def send(self, data: bytes, timeout: float) -> None:
        self.sock.settimeout(max(timeout, 1e-6))
        self.sock.sendall(data)

    def receive(self, size: int, timeout: float) -> Optional[bytes]:
        self.sock.settimeout(max(timeout, 1e-6))
        try:
            return self.sock.recv(size)
        except socket.timeout:
            return None

    def local_address(self) -> str:
        return str(self.sock.getsockname()[0])

    def close(self) -> None:
        self.sock.close()


if TYPE_CHECKING:
    StreamFactory = Callable[[Address, float], Stream]


@record_class(frozen=True)
class HttpResponse:
    status: int
    reason: str
    headers: Dict[str, str]
    body: bytes


def gateway_url(url: str, gateway: str) -> Tuple[str, int, str]:
    """(host, port, path) of ``url``, which must be plain http on the gateway's address."""
    from urllib.parse import urlsplit  # pylint: disable=import-outside-toplevel  # "auto" runs that choose PCP need none

    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError:
        raise UpnpProtocolError(f"UPnP IGD URL {url[:200]!r} is not a valid URL") from None
    if parts.scheme != "http":
        raise UpnpProtocolError(f"UPnP IGD URL {url[:200]!r} refused: only plain http URLs are used")
    if parts.hostname != gateway:
        raise UpnpProtocolError(f"UPnP IGD URL {url[:200]!r} refused: its host is not the gateway {gateway} "
                                "(anything on the LAN can answer a search)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if any(ch in path for ch in "\r\n ") or len(path) > 1024:
        raise UpnpProtocolError(f"UPnP IGD URL {url[:200]!r} refused: its path is not usable in a request")
    return gateway, port, path


class Http:
    """Requests to the gateway, one connection each, within the caller's deadline."""

    def __init__(self, gateway: str, clock: Clock = time.monotonic, stream_factory: Optional[StreamFactory] = None,
                 source_address: Optional[str] = None) -> None:
        self.gateway = gateway
        self._clock = clock
        self._stream_factory = stream_factory
        self._source_address = source_address
        self._checked: Dict[str, Tuple[str, int, str]] = {}  # URL -> (host, port, path), checked once
        self._heads: Dict[tuple, Tuple[str, int, str, bytes]] = {}  # a request's constant part, built once
        self.local_address: Optional[str] = None  # of the first connection that reached the gateway

    def check(self, url: str) -> Tuple[str, int, str]:
        if url not in self._checked:
            self._checked[url] = gateway_url(url, self.gateway)
        return self._checked[url]

    def request(self, method: str, url: str, deadline: float, body: bytes = b"",
                headers: Optional[Dict[str, str]] = None, what: str = "request") -> HttpResponse:
        status, reason, parsed, answer = self.exchange(method, url, deadline, body,
                                                       tuple(headers.items()) if headers else (), what, True)
        return HttpResponse(status, reason, parsed or {}, answer)

    def exchange(self, method: str, url: str, deadline: float, body: bytes = b"", headers: Tuple[Tuple[str, str], ...] = (),
                 what: str = "request", answer_headers: bool = False) -> Tuple[int, str, Optional[Dict[str, str]], bytes]:
        """``request`` answering with a tuple rather than an HttpResponse, for the SOAP actions: headers as (name, value) pairs in,
        (status, reason, headers, body) out; the answer's headers as a dict only with ``answer_headers``
        (without, a plain head is read without one and they are None)."""
        key = (method, url, len(body), headers)
        prepared = self._heads.get(key)
        if prepared is None:
            prepared = self._head(method, url, len(body), headers)
            if len(self._heads) >= 64:
                self._heads.clear()
            self._heads[key] = prepared
        host, port, where, head = prepared
        raw = head + body
        try:
            left = self._left(deadline, where, what)
            stream = (self._stream_factory((host, port), left) if self._stream_factory
                      else TcpStream((host, port), left, self._source_address))
        except ConnectionRefusedError:
            raise GatewayUnreachable(f"gateway {where} refused the UPnP IGD {what} (nothing listens there)") from None
        except socket.timeout:
            raise GatewayTimeout(f"no answer from gateway {where} to the UPnP IGD {what} (connect timed out)") from None
        except OSError as exc:
            raise GatewayUnreachable(f"gateway {where} is unreachable for the UPnP IGD {what}: {exc.strerror or exc}") from None
        try:
            if self.local_address is None:
                self.local_address = stream.local_address()
            stream.send(raw, self._left(deadline, where, what))
            return self._read(stream, deadline, where, what, answer_headers)
        except socket.timeout:
            raise GatewayTimeout(f"no answer from gateway {where} to the UPnP IGD {what} in time") from None
        except OSError as exc:
            raise PortmapError(f"UPnP IGD {what} to gateway {where} failed: {exc.strerror or exc}") from exc
        finally:
            stream.close()

    def _head(self, method: str, url: str, length: int, headers: Tuple[Tuple[str, str], ...]) -> Tuple[str, int, str, bytes]:
        """(host, port, "host:port", the request up to its body) for a request to ``url``."""
        host, port, path = self.check(url)
        where = f"{host}:{port}"
        lines = [f"{method} {path} HTTP/1.1", f"Host: {where}", f"User-Agent: {USER_AGENT}", "Connection: close"]
        for name, value in headers:
            lines.append(f"{name}: {value}")
        if length or method == "POST":
            lines.append(f"Content-Length: {length}")
        return host, port, where, ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

    def _left(self, deadline: float, where: str, what: str) -> float:
        left = deadline - self._clock()
        if left <= 0:
            raise GatewayTimeout(f"no answer from gateway {where} to the UPnP IGD {what} within the deadline")
        return left

    def _read(self, stream: Stream, deadline: float, where: str, what: str,
              answer_headers: bool) -> Tuple[int, str, Optional[Dict[str, str]], bytes]:
        data = b""
        end = -1
        while end < 0:
            if len(data) > MAX_HEADER:
                raise UpnpProtocolError(f"gateway {where} sent HTTP headers over {MAX_HEADER} octets to the UPnP IGD {what}")
            chunk = self._chunk(stream, deadline, where, what)
            if not chunk:
                raise UpnpProtocolError(f"gateway {where} closed the connection before answering the UPnP IGD {what}")
            data = data + chunk if data else chunk
            end = data.find(_END_OF_HEAD)
        body = data[end + 4:]
        head = data[:end]
        framing = None if answer_headers else _plain_framing(head)
        headers: Optional[Dict[str, str]] = None
        if framing is not None:
            status, reason, length_text = framing
            chunked = False
        else:
            status, reason, headers = _parse_head(head, where, what)
            length_text = headers.get("content-length")
            chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if length_text is not None and not chunked:
            if not _LENGTH.fullmatch(length_text) or int(length_text) > MAX_RESPONSE:
                raise UpnpProtocolError(f"gateway {where} announced a UPnP IGD answer of {length_text[:20]!r} octets "
                                        f"(at most {MAX_RESPONSE} are read)")
            length = int(length_text)
            if len(body) < length:
                pieces, have = [body], len(body)
                while have < length:
                    chunk = self._chunk(stream, deadline, where, what)
                    if not chunk:
                        raise UpnpProtocolError(f"gateway {where} closed the connection in the middle of the UPnP IGD answer")
                    pieces.append(chunk)
                    have += len(chunk)
                body = b"".join(pieces)
            if len(body) > length:
                body = body[:length]
        else:
            pieces, have = [body], len(body)
            while True:
                if have > MAX_RESPONSE + MAX_HEADER:
                    raise UpnpProtocolError(f"gateway {where} sent a UPnP IGD answer over {MAX_RESPONSE} octets")
                chunk = self._chunk(stream, deadline, where, what)
                if not chunk:
                    break
                pieces.append(chunk)
                have += len(chunk)
            body = b"".join(pieces)
            if chunked:
                body = _dechunk(body, where)
        if len(body) > MAX_RESPONSE:
            raise UpnpProtocolError(f"gateway {where} sent a UPnP IGD answer over {MAX_RESPONSE} octets")
        return status, reason, headers, body

    def _chunk(self, stream: Stream, deadline: float, where: str, what: str) -> bytes:
        got = stream.receive(65536, self._left(deadline, where, what))
        if got is None:
            raise GatewayTimeout(f"no complete answer from gateway {where} to the UPnP IGD {what} within the deadline")
        return got


def _parse_head(head: bytes, where: str, what: str) -> Tuple[int, str, Dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = _STATUS.match(lines[0])
    if not status:
        raise UpnpProtocolError(f"gateway {where} answered the UPnP IGD {what} with no HTTP status line: {lines[0][:80]!r}")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    return int(status.group(1)), status.group(2) or "", headers


def _plain_framing(head: bytes) -> Optional[Tuple[int, str, Optional[str]]]:
    """(status, reason, Content-Length) of a plain head without Transfer-Encoding, as ``_parse_head``
    gives them; None for any other head (the fuzz tests compare both)."""
    plain = _PLAIN_HEAD.fullmatch(head)
    if plain is None or _TRANSFER_ENCODING.search(head) is not None:
        return None
    length = _CONTENT_LENGTH.search(head)
    return (int(plain.group(1)), (plain.group(2) or b"").decode("ascii"),
            length.group(1).decode("ascii").strip() if length else None)


def _dechunk(body: bytes, where: str) -> bytes:
    out = b""
    rest = body
    while True:
        size_line, sep, rest = rest.partition(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            size = -1
        if not sep or size < 0 or size > MAX_RESPONSE:
            raise UpnpProtocolError(f"gateway {where} sent a malformed chunked UPnP IGD answer")
        if size == 0:
            return out
        out += rest[:size]
        rest = rest[size + 2:]
