"""A scripted UPnP IGD for the unit tests: SSDP datagrams and HTTP streams without sockets.

Answers are miniupnpd's own, recorded in vectors/upnp/ (capture.py there made them).
"""

from __future__ import annotations

import base64
import os
import re
from typing import Callable, Dict, List, Optional, Tuple, Union

from tests.unit.plugins.module_utils.portmap.fakes import FakeClock
from portmap.transport_upnp import Datagrams, Stream

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors", "upnp")
GATEWAY = "192.0.2.1"  # never contacted: no socket exists in these tests
LOCAL = "192.0.2.10"
URL = f"http://{GATEWAY}:5000/rootDesc.xml"


def vector(name: str) -> bytes:
    """A recorded answer, the gateway's address replaced by the fake one."""
    with open(os.path.join(VECTORS, name + ".b64"), "rb") as handle:  # base64: the answers' CRLFs kept exactly
        raw = base64.b64decode(handle.read())
    return raw.replace(b"192.168.77.1:", GATEWAY.encode() + b":")


def recorded(name: str) -> bytes:
    """A recorded answer exactly as miniupnpd sent it."""
    with open(os.path.join(VECTORS, name + ".b64"), "rb") as handle:
        return base64.b64decode(handle.read())


def body_of(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[1]


def http_answer(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {len(body)}\r\n{extra}"
            "Connection: close\r\n\r\n").encode() + body


Reply = Union[bytes, Callable[[bytes], bytes]]


class FakeStream(Stream):
    """One connection: the request is handed to ``handler`` once complete; the answer is read in pieces."""

    def __init__(self, igd: "FakeIgd") -> None:
        self.igd = igd
        self.request = b""
        self.answer: Optional[bytes] = None

    def send(self, data: bytes, timeout: float) -> None:
        self.request += data
        self.answer = self.igd.answer(self.request)

    def receive(self, size: int, timeout: float) -> Optional[bytes]:
        if self.answer is None or self.igd.stall is not None and self.igd.stall <= 0:
            self.igd.clock.now += timeout
            return None
        if self.igd.delay:
            if self.igd.delay > timeout:
                self.igd.clock.now += timeout
                return None
            self.igd.clock.now += self.igd.delay
        piece = min(size, self.igd.piece)
        chunk, self.answer = self.answer[:piece], self.answer[piece:]
        if self.igd.stall is not None:
            self.igd.stall -= len(chunk)
        return chunk

    def local_address(self) -> str:
        return LOCAL


class FakeDatagrams(Datagrams):
    def __init__(self, igd: "FakeIgd") -> None:
        self.igd = igd
        self.queue: List[Tuple[float, bytes, Tuple[str, int]]] = []

    def send(self, data: bytes, address: Tuple[str, int]) -> None:
        self.igd.searches.append((data, address))
        for delay, datagram, source in self.igd.ssdp(data, address):
            self.queue.append((self.igd.clock.now + delay, datagram, source))
        self.queue.sort(key=lambda item: item[0])

    def receive(self, timeout: float):
        limit = self.igd.clock.now + timeout
        if self.queue and self.queue[0][0] <= limit:
            at, datagram, source = self.queue.pop(0)
            self.igd.clock.now = max(self.igd.clock.now, at)
            return datagram, source
        self.igd.clock.now = limit
        return None


class FakeIgd:
    """Answers by SOAP action (or GET path) from ``replies``; records every request."""

    def __init__(self, replies: Optional[Dict[str, Reply]] = None, version: int = 2) -> None:
        self.clock = FakeClock()
        self.replies: Dict[str, Reply] = {
            "GET /rootDesc.xml": vector(f"v{version}-rootDesc"),
            "GetStatusInfo": vector("v2-GetStatusInfo"),
            "GetExternalIPAddress": vector("v2-GetExternalIPAddress"),
            "AddPortMapping": vector("v2-AddPortMapping"),
            "AddAnyPortMapping": vector("v2-AddAnyPortMapping"),
            "DeletePortMapping": vector("v2-DeletePortMapping"),
            "GetSpecificPortMappingEntry": vector("v2-GetSpecificPortMappingEntry"),
            "GetListOfPortMappings": vector("v2-GetListOfPortMappings"),
            "GetGenericPortMappingEntry": vector("v2-GetGenericPortMappingEntry-713"),
        }
        self.replies.update(replies or {})
        self.requests: List[bytes] = []
        self.searches: List[Tuple[bytes, Tuple[str, int]]] = []
        self.ssdp_answers: List[Tuple[float, bytes, Tuple[str, int]]] = [
            (0.01, vector("v2-ssdp-InternetGatewayDevice-2"), (GATEWAY, 1900))]
        self.piece = 1 << 20
        self.delay = 0.0
        self.stall: Optional[int] = None  # octets sent before the answer stops

    def streams(self, address: Tuple[str, int], timeout: float) -> Stream:
        assert address[0] == GATEWAY, f"connected to {address}"
        return FakeStream(self)

    def datagrams(self) -> Datagrams:
        return FakeDatagrams(self)

    def ssdp(self, data: bytes, address: Tuple[str, int]):
        return self.ssdp_answers if b"InternetGatewayDevice:2" in data else []

    @staticmethod
    def key(request: bytes) -> str:
        head = request.split(b"\r\n", 1)[0].decode()
        if head.startswith("GET "):
            return "GET " + head.split()[1]
        match = re.search(rb'SOAPAction: "[^#"]*#(\w+)"', request)
        return match.group(1).decode() if match else head

    def answer(self, request: bytes) -> Optional[bytes]:
        head, sep, body = request.partition(b"\r\n\r\n")
        if not sep:
            return None
        length = re.search(rb"Content-Length: (\d+)", head)
        if length and len(body) < int(length.group(1)):
            return None
        self.requests.append(request)
        reply = self.replies[self.key(request)]
        return reply(request) if callable(reply) else reply

    def actions(self) -> List[str]:
        return [self.key(r) for r in self.requests]


def fault(code: int, description: str = "") -> bytes:
    body = ('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client'
            '</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0">'
            f'<errorCode>{code}</errorCode><errorDescription>{description}</errorDescription></UPnPError></detail>'
            '</s:Fault></s:Body></s:Envelope>').encode()
    return http_answer(body, "500 Internal Server Error")


def edit(raw: bytes, old: bytes, new: bytes) -> bytes:
    """A recorded answer with ``old`` replaced by ``new`` in its body, Content-Length kept right."""
    head, _sep, body = raw.partition(b"\r\n\r\n")
    assert old in body, old
    body = body.replace(old, new)
    return re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(body), head) + b"\r\n\r\n" + body
