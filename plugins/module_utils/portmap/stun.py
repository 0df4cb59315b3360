# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""STUN over UDP: the reflexive address, and RFC 5780 NAT behaviour discovery.

Every Binding request goes through the transport (``transport.Transport``): retransmitted
at 250 ms doubling within a deadline, a reply accepted only from the address it must come
from and only with the request's transaction id.  The first request of a classification
waits up to ``timeout`` (no answer: "Blocked"); every later one waits ``wait`` seconds
(0.8 s by default: three sends, so one lost datagram does not change a verdict that is
reached by getting no answer).

RFC 5780 section 4.3 (mapping): tests I, II and III share one local port and compare the
mapped addresses seen by the server's primary address, by its other address with the
primary port, and by its other address and port.  Section 4.4 (filtering), from a fresh
local port: test I, then test II asks the server to answer from its other address and
port (CHANGE-REQUEST), test III from its other port only.  The classic names
(pystun3's) follow from both.  A server without RFC 5780 (no OTHER-ADDRESS) still gives
the reflexive address, and the behaviour stays unknown.
"""

from __future__ import annotations

import ipaddress
import socket
import time

from . import wire_stun
from .errors import GatewayTimeout, PortmapError, StunError
from .records import record_class
from .transport import Channel, Transport, receive_from

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, Dict, Optional, Tuple

DEFAULT_STUN_PORT = 3478
DEFAULT_TIMEOUT = 3.0
NO_ANSWER_WAIT = 0.8
MAX_DATAGRAM = 1500

INDEPENDENT = "endpoint-independent"
ADDRESS = "address-dependent"
ADDRESS_AND_PORT = "address-and-port-dependent"

OPEN_INTERNET = "Open Internet"
FULL_CONE = "Full-cone NAT"
RESTRICTED_CONE = "Restricted-cone NAT"
PORT_RESTRICTED_CONE = "Port Restricted-cone NAT"
SYMMETRIC = "Symmetric NAT"
SYMMETRIC_FIREWALL = "Symmetric UDP Firewall"
BLOCKED = "Blocked"

if TYPE_CHECKING:
    Address = Tuple[str, int]


def parse_server(text: str) -> Address:
    """``host:port`` (port 3478 when left out) as an IPv4 address and a port; a name is resolved."""
    host, _sep, port_text = str(text).strip().rpartition(":")
    if not _sep:
        host, port_text = port_text, str(DEFAULT_STUN_PORT)
    try:
        port = int(port_text)
    except ValueError:
        port = 0
    if not host or not 1 <= port <= 65535:
        raise ValueError(f"stun_server must be host:port with a port from 1 to 65535, got {text!r}")
    try:
        return str(ipaddress.IPv4Address(host)), port
    except ValueError:
        pass
    try:
        return socket.gethostbyname(host), port
    except OSError as exc:
        raise PortmapError(f"cannot resolve the STUN server {host}: {exc}") from None


class Endpoint:
    """One local UDP port, not connected: sends anywhere, hears anyone (the transport filters)."""

    def send_to(self, data: bytes, destination: Address) -> None:
        raise NotImplementedError

    def receive(self, timeout: float) -> Optional[Tuple[bytes, Address]]:
        raise NotImplementedError

    def local(self) -> Address:
        raise NotImplementedError

    def close(self) -> None:
        """Release the port."""


class UdpEndpoint(Endpoint):
    def __init__(self, server: Address, source_address: Optional[str] = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if not source_address:  # the address the route to the server leaves from (connect sends nothing)
                probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    probe.connect(server)
                    source_address = probe.getsockname()[0]
                finally:
                    probe.close()
            self.sock.bind((source_address, 0))
        except OSError as exc:
            self.sock.close()
            raise PortmapError(f"cannot reach the STUN server {server[0]}:{server[1]}: {exc.strerror or exc}") from exc

    def send_to(self, data: bytes, destination: Address) -> None:
        self.sock.sendto(data, destination)

    def receive(self, timeout: float) -> Optional[Tuple[bytes, Address]]:
        return receive_from(self.sock, timeout, MAX_DATAGRAM)

    def local(self) -> Address:
        name = self.sock.getsockname()
        return str(name[0]), int(name[1])

    def close(self) -> None:
        self.sock.close()


class _Toward(Channel):
    """The transport's view of a shared endpoint: sends to one destination, never closes the port."""

    def __init__(self, endpoint: Endpoint, destination: Address) -> None:
        self.endpoint = endpoint
        self.destination = destination

    def send(self, data: bytes) -> None:
        self.endpoint.send_to(data, self.destination)

    def local_address(self) -> str:
        return self.endpoint.local()[0]

    def receive(self, timeout: float) -> Optional[Tuple[bytes, Address]]:
        return self.endpoint.receive(timeout)


@record_class
class NatBehaviour:
    """What STUN told about the way to the server."""

    server: Address
    local: Optional[Address] = None  # the mapping tests' local address and port
    mapped: Optional[Address] = None  # what the server saw of it (None: Blocked)
    other_address: Optional[Address] = None
    rfc5780: bool = False
    mapping: Optional[str] = None
    filtering: Optional[str] = None
    classic: Optional[str] = None
    elapsed: float = 0.0

    @property
    def behind_nat(self) -> Optional[bool]:
        return None if self.mapped is None or self.local is None else self.mapped != self.local

    def as_dict(self) -> Dict[str, Any]:
        return {
            "server": f"{self.server[0]}:{self.server[1]}",
            "type": self.classic,
            "mapping": self.mapping,
            "filtering": self.filtering,
            "address": self.mapped[0] if self.mapped else None,
            "port": self.mapped[1] if self.mapped else None,
            "local_address": self.local[0] if self.local else None,
            "local_port": self.local[1] if self.local else None,
            "behind_nat": self.behind_nat,
            "rfc5780": self.rfc5780,
            "elapsed": round(self.elapsed, 3),
        }


def classic_name(behind_nat: Optional[bool], mapping: Optional[str], filtering: Optional[str]) -> Optional[str]:
    """The RFC 3489 name of what RFC 5780 found (None when a behaviour is unknown)."""
    if behind_nat is False:
        return {INDEPENDENT: OPEN_INTERNET, None: None}.get(filtering, SYMMETRIC_FIREWALL)
    if mapping is None:
        return None
    if mapping != INDEPENDENT:
        return SYMMETRIC
    return {INDEPENDENT: FULL_CONE, ADDRESS: RESTRICTED_CONE, ADDRESS_AND_PORT: PORT_RESTRICTED_CONE}.get(filtering)


class StunClient:
    def __init__(
        self,
        server: Address,
        timeout: float = DEFAULT_TIMEOUT,
        wait: float = NO_ANSWER_WAIT,
        source_address: Optional[str] = None,
        clock: Callable[[], float] = time.monotonic,
        endpoint_factory: Optional[Callable[[], Endpoint]] = None,
        transaction_ids: Callable[[], bytes] = wire_stun.new_transaction_id,
    ) -> None:
        if timeout <= 0 or wait <= 0:
            raise ValueError(f"timeout and wait must be positive numbers of seconds, got {timeout!r} and {wait!r}")
        self.server = server
        self.timeout = timeout
        self.wait = wait
        self._clock = clock
        self._endpoints = endpoint_factory or (lambda: UdpEndpoint(server, source_address))
        self._transaction_ids = transaction_ids
        self.sends = 0  # of the whole classification, for tests and the bench

    @property
    def where(self) -> str:
        return f"{self.server[0]}:{self.server[1]}"

    def binding(self, endpoint: Endpoint, destination: Address, wait: float, change_ip: bool = False,
                change_port: bool = False, reply_from: Optional[Address] = None) -> Optional[wire_stun.BindingResponse]:
        """One Binding transaction: the success response, or None when none came within ``wait``."""
        transaction_id = self._transaction_ids()
        transport = Transport(destination[0], destination[1], timeout=wait, clock=self._clock,
                              channel_factory=lambda: _Toward(endpoint, destination), peer="STUN server")
        what = "Binding request" + (" with CHANGE-REQUEST" if change_ip or change_port else "")
        try:
            response = transport.exchange(wire_stun.binding_request(transaction_id, change_ip, change_port),
                                          lambda data: wire_stun.parse_binding_response(data, transaction_id),
                                          what, reply_from=reply_from)
        except GatewayTimeout:
            return None
        finally:
            self.sends += transport.sends
        where = f"{destination[0]}:{destination[1]}"
        if response.unknown_required:
            unknown = ", ".join(f"0x{t:04x}" for t in response.unknown_required)
            raise StunError(f"STUN server {where} answered the {what} with comprehension-required attributes this "
                            f"client does not know ({unknown}): the transaction failed (RFC 8489 section 6.3)")
        if not response.success:
            raise StunError(f"STUN server {where} answered the {what} with error {response.error_code} "
                            f"{response.error_reason!r}")
        if response.mapped is None:
            raise StunError(f"STUN server {where} answered the {what} without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS")
        return response

    def reflexive(self) -> Address:
        """The address and port the server sees this host's requests come from."""
        endpoint = self._endpoints()
        try:
            response = self.binding(endpoint, self.server, self.timeout)
        finally:
            endpoint.close()
        if response is None or response.mapped is None:  # (binding() refuses a response without an address)
            raise GatewayTimeout(f"no answer from STUN server {self.where} to the Binding request within "
                                 f"{self.timeout:.3g} s (UDP to it blocked, or nothing listens)")
        return response.mapped

    def classify(self) -> NatBehaviour:
        start = self._clock()
        result = NatBehaviour(self.server)
        try:
            self._mapping(result)
            if result.rfc5780 and result.other_address:
                self._filtering(result, result.other_address)
        finally:
            result.elapsed = self._clock() - start
        result.classic = BLOCKED if result.mapped is None else classic_name(result.behind_nat, result.mapping,
                                                                            result.filtering)
        return result

    def _mapping(self, result: NatBehaviour) -> None:
        endpoint = self._endpoints()
        try:
            first = self.binding(endpoint, self.server, self.timeout)
            if first is None:
                return
            result.local, result.mapped = endpoint.local(), first.mapped
            other = first.other_address
            if other is None or other[0] == self.server[0] or other[1] == self.server[1]:
                return  # no RFC 5780 (or an OTHER-ADDRESS that changes nothing)
            result.rfc5780, result.other_address = True, other
            if not result.behind_nat:
                result.mapping = INDEPENDENT
                return
            second = self.binding(endpoint, (other[0], self.server[1]), self.wait)
            if second is None:
                return
            if second.mapped == first.mapped:
                result.mapping = INDEPENDENT
                return
            third = self.binding(endpoint, other, self.wait)
            if third is not None:
                result.mapping = ADDRESS if third.mapped == second.mapped else ADDRESS_AND_PORT
        finally:
            endpoint.close()

    def _filtering(self, result: NatBehaviour, other: Address) -> None:
        endpoint = self._endpoints()
        try:
            if self.binding(endpoint, self.server, self.wait) is None:
                return
            if self.binding(endpoint, self.server, self.wait, change_ip=True, change_port=True, reply_from=other):
                result.filtering = INDEPENDENT
            elif self.binding(endpoint, self.server, self.wait, change_port=True,
                              reply_from=(self.server[0], other[1])):
                result.filtering = ADDRESS
            else:
                result.filtering = ADDRESS_AND_PORT
        finally:
            endpoint.close()
