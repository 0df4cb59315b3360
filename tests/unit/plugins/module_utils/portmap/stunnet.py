"""A scripted network for the STUN client (no sockets): a NAT of a chosen behaviour and an RFC 5780 server.

The NAT maps a local port per destination as RFC 4787 describes (endpoint-independent:
one external port for every destination; address-dependent: one per destination address;
address-and-port-dependent: one per destination address and port) and lets in only what
its filtering allows after the host sent to that address (and port).  The server answers
Binding requests from the address its CHANGE-REQUEST asks for, with XOR-MAPPED-ADDRESS,
OTHER-ADDRESS and RESPONSE-ORIGIN.  Time is a FakeClock: ``receive`` jumps to the next
delivery or to the end of the wait.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple

from tests.unit.plugins.module_utils.portmap.fakes import FakeClock
from portmap import wire_stun
from portmap.stun import ADDRESS, ADDRESS_AND_PORT, INDEPENDENT, Endpoint
from simgw import stun_wire

PRIMARY = ("192.0.2.1", 3478)
OTHER = ("192.0.2.2", 3479)
PUBLIC = "198.51.100.7"
LOCAL = "10.0.0.5"
RTT = 0.002

Address = Tuple[str, int]


class Network:
    def __init__(self, mapping: Optional[str] = INDEPENDENT, filtering: Optional[str] = ADDRESS_AND_PORT,
                 rfc5780: bool = True, silent: bool = False, drop: Tuple[int, ...] = (),
                 honour_change: bool = True, extra: Tuple[Tuple[int, bytes], ...] = (), error: int = 0) -> None:
        self.clock = FakeClock()
        self.mapping = mapping  # None: no NAT
        self.filtering = filtering  # None: nothing filtered
        self.rfc5780 = rfc5780
        self.silent = silent
        self.drop = set(drop)  # numbers (1-based) of the host's sends that are lost
        self.honour_change = honour_change
        self.extra = extra
        self.error = error
        self.sends = 0
        self.endpoints: List["FakeEndpoint"] = []
        self.table: Dict[tuple, int] = {}
        self.allowed: Dict[int, Set[Address]] = {}  # external port -> destinations sent to

    def endpoint(self) -> "FakeEndpoint":
        self.endpoints.append(FakeEndpoint(self, 40000 + len(self.endpoints)))
        return self.endpoints[-1]

    def _external(self, local_port: int, destination: Address) -> Address:
        if self.mapping is None:
            return LOCAL, local_port
        keys = {INDEPENDENT: (local_port,), ADDRESS: (local_port, destination[0])}
        key = keys.get(self.mapping, (local_port, destination))
        if key not in self.table:
            self.table[key] = 50000 + len(self.table)
        return PUBLIC, self.table[key]

    def _lets_in(self, external_port: int, source: Address) -> bool:
        sent_to = self.allowed.get(external_port, set())
        if self.filtering is None or self.filtering == INDEPENDENT:
            return bool(sent_to)
        if self.filtering == ADDRESS:
            return source[0] in {d[0] for d in sent_to}
        return source in sent_to

    def send(self, endpoint: "FakeEndpoint", data: bytes, destination: Address) -> None:
        self.sends += 1
        if self.sends in self.drop:
            return
        external = self._external(endpoint.port, destination)
        self.allowed.setdefault(external[1], set()).add(destination)
        servers = {PRIMARY[0], OTHER[0]} if self.rfc5780 else {PRIMARY[0]}
        if self.silent or destination[0] not in servers or destination[1] not in (PRIMARY[1], OTHER[1]):
            return
        request = wire_stun.decode(data)
        flags = int.from_bytes(request.get(wire_stun.CHANGE_REQUEST) or bytes(4), "big")
        source = destination
        if self.honour_change and self.rfc5780:
            source = ({PRIMARY[0]: OTHER[0], OTHER[0]: PRIMARY[0]}[source[0]] if flags & wire_stun.CHANGE_IP else source[0],
                      {PRIMARY[1]: OTHER[1], OTHER[1]: PRIMARY[1]}[source[1]] if flags & wire_stun.CHANGE_PORT else source[1])
        if self.error:
            reply = stun_wire.encode_error_response(request.transaction_id, self.error, "Bad Request")
        else:
            reply = stun_wire.encode_binding_response(request.transaction_id, external,
                                                      other_address=OTHER if self.rfc5780 else None,
                                                      response_origin=source, extra=self.extra)
        if self.mapping is None and self.filtering is None or self._lets_in(external[1], source):
            endpoint.queue.append((self.clock.now + RTT, reply, source))


class FakeEndpoint(Endpoint):
    def __init__(self, network: Network, port: int) -> None:
        self.network = network
        self.port = port
        self.queue: List[tuple] = []
        self.closed = False
        self.sent_to: List[Address] = []

    def send_to(self, data: bytes, destination: Address) -> None:
        assert not self.closed
        self.sent_to.append(destination)
        self.network.send(self, data, destination)

    def receive(self, timeout: float):
        clock = self.network.clock
        limit = clock.now + timeout
        self.queue.sort(key=lambda item: item[0])
        if self.queue and self.queue[0][0] <= limit:
            at, data, source = self.queue.pop(0)
            clock.now = max(clock.now, at)
            return data, source
        clock.now = limit
        return None

    def local(self) -> Address:
        return LOCAL, self.port

    def close(self) -> None:
        self.closed = True
