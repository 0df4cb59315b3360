"""A fake clock and a scripted fake network for the transport and the client (no sockets)."""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

from portmap.transport import Channel

GATEWAY = ("192.0.2.1", 5351)  # never contacted: no socket exists in these tests


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class FakeChannel(Channel):
    """Answers each send by calling ``script(data, send_number)``.

    The script returns a list of (delay, datagram, source) to deliver after that send;
    ``receive`` advances the fake clock to the next delivery or by the whole timeout.
    """

    def __init__(self, clock: FakeClock, script: Callable[[bytes, int], List[Tuple[float, bytes, tuple]]],
                 on_send: Optional[Callable[[bytes], None]] = None) -> None:
        self.clock = clock
        self.script = script
        self.on_send = on_send
        self.sent: List[Tuple[float, bytes]] = []
        self.queue: List[Tuple[float, bytes, tuple]] = []
        self.closed = False

    def send(self, data: bytes) -> None:
        if self.on_send:
            self.on_send(data)
        self.sent.append((self.clock.now, data))
        for delay, datagram, source in self.script(data, len(self.sent)):
            self.queue.append((self.clock.now + delay, datagram, source))
        self.queue.sort(key=lambda item: item[0])

    def receive(self, timeout: float):
        limit = self.clock.now + timeout
        if self.queue and self.queue[0][0] <= limit:
            at, datagram, source = self.queue.pop(0)
            if isinstance(datagram, BaseException):
                raise datagram
            self.clock.now = max(self.clock.now, at)
            return datagram, source
        self.clock.now = limit
        return None

    def close(self) -> None:
        self.closed = True


def silent(_data: bytes, _n: int):
    return []


class FakeSsdp:
    """The SSDP socket of a client on the fake clock: each M-SEARCH sent gets ``answer(data, address)``,
    a list of (delay, datagram, source), delivered by ``receive`` (silent by default)."""

    def __init__(self, clock: FakeClock,
                 answer: Optional[Callable[[bytes, tuple], List[Tuple[float, bytes, tuple]]]] = None) -> None:
        self.clock = clock
        self.answer = answer or (lambda _data, _address: [])
        self.sent: List[Tuple[float, bytes, tuple]] = []
        self.queue: List[Tuple[float, bytes, tuple]] = []
        self.closed = False

    def __call__(self) -> "FakeSsdp":  # the client's datagrams_factory
        self.closed = False
        return self

    def send(self, data: bytes, address: tuple) -> None:
        self.sent.append((self.clock.now, data, address))
        for delay, datagram, source in self.answer(data, address):
            self.queue.append((self.clock.now + delay, datagram, source))
        self.queue.sort(key=lambda item: item[0])

    def receive(self, timeout: float):
        limit = self.clock.now + timeout
        if self.queue and self.queue[0][0] <= limit:
            at, datagram, source = self.queue.pop(0)
            self.clock.now = max(self.clock.now, at)
            return datagram, source
        self.clock.now = limit
        return None

    def close(self) -> None:
        self.closed = True


def ssdp_answer(location: str, target: str = "urn:schemas-upnp-org:device:InternetGatewayDevice:2") -> bytes:
    """An IGD's answer to an M-SEARCH."""
    return ("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: " + target + "\r\nUSN: uuid:fake::" + target +
            "\r\nEXT:\r\nSERVER: Fake/1.0 UPnP/1.1 Fake/1.0\r\nLOCATION: " + location + "\r\n\r\n").encode()
