"""HTTP/1.1 in the gateway's loop (one request per connection, as miniupnpd), with the HTTP faults.

Faults of the ``upnp`` method, narrowed by ``ops`` (the SOAP action, or ``description``):
``close`` (the connection closed without an answer), ``stall`` (half the answer, then nothing
for ``seconds``, then the connection closed), ``delay`` (the answer after ``seconds``).
"""

from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, Optional, Tuple

from .streams import StreamServer, unregister

if TYPE_CHECKING:  # pragma: no cover
    from .gateway import SimulatedGateway

REQUEST_LIMIT = 65536
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
           500: "Internal Server Error"}


@dataclass
class Request:
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes
    client: str


@dataclass
class Response:
    status: int
    body: bytes = b""
    op: str = ""  # what the request was, for the faults' ops and the log
    headers: Dict[str, str] = field(default_factory=dict)

    def encode(self, server: str) -> bytes:
        head = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Error')}",
                'Content-Type: text/xml; charset="utf-8"', "Connection: close",
                f"Content-Length: {len(self.body)}", f"Server: {server}", "Ext:"]
        head += [f"{name}: {value}" for name, value in self.headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + self.body


def parse_request(data: bytes, client: str) -> Optional[Request]:
    """The request in ``data`` once complete (headers and Content-Length bytes of body), else None."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) != 3:
        raise ValueError("not an HTTP request line")
    headers = {}
    for line in lines[1:]:
        name, _colon, value = line.partition(":")
        headers[name.strip().upper()] = value.strip()
    length = int(headers.get("CONTENT-LENGTH", "0") or 0)
    body = data[end + 4:]
    if len(body) < length:
        return None
    return Request(parts[0].upper(), parts[1], headers, body[:length], client)


class HttpServer(StreamServer):
    """Accepts connections on ``address``, reads one request each and answers with ``handler``'s response."""

    def __init__(self, gateway: "SimulatedGateway", address: Tuple[str, int], handler: Callable[[Request], Response],
                 server: str) -> None:
        super().__init__()
        self.gw = gateway
        self.address = address
        self.handler = handler
        self.server = server

    def bind(self, selector: selectors.BaseSelector) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(self.address)
        self.listen(sock, selector)

    def received(self, conn: socket.socket, buffer: bytes, peer: str) -> Optional[bytes]:
        try:
            request = parse_request(buffer, peer)
        except ValueError:
            self._answer(conn, Response(400, op="bad"), {})
            return None
        if request is None:
            if len(buffer) > REQUEST_LIMIT:
                self._answer(conn, Response(413, op="bad"), {})
                return None
            return buffer
        unregister(self._selector, conn)  # one request per connection
        self.gw.requests += 1
        entry: Dict[str, object] = {"time": time.time(), "client": peer, "method": "upnp",
                                    "http": f"{request.method} {request.path}"}
        response = self.handler(request)
        entry["op"] = response.op
        self._answer(conn, response, entry)
        self.gw.record(entry)
        return None

    def _answer(self, conn: socket.socket, response: Response, entry: Dict[str, object]) -> None:
        data = response.encode(self.server)
        entry["answer"] = response.status
        faults = self.gw.faults
        op = response.op
        if faults.take("close", op, "upnp"):
            entry["fault"] = "close"
            self.drop(conn)
            return
        stall = faults.take("stall", op, "upnp")
        if stall:
            seconds = float(stall.params.get("seconds", 30.0))
            entry["fault"] = f"stall {seconds}"
            self._send(conn, data[: len(data) // 2], close=False)
            self.gw.at(time.monotonic() + seconds, lambda: self.drop(conn))
            return
        delay = faults.take("delay", op, "upnp")
        if delay:
            seconds = float(delay.params.get("seconds", 0.5))
            entry["fault"] = f"delay {seconds}"
            self.gw.at(time.monotonic() + seconds, lambda: self._send(conn, data))
            return
        self._send(conn, data)

    def _send(self, conn: socket.socket, data: bytes, close: bool = True) -> None:
        if not self.is_open(conn):
            return
        try:
            conn.setblocking(True)
            conn.settimeout(5)
            conn.sendall(data)
            self.gw.replies += 1
        except OSError:
            close = True
        if close:
            try:
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.drop(conn)
