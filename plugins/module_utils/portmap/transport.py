# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""UDP transport: one request, retransmitted on the RFC schedule until a reply fits.

RFC 6886 section 3.1: send, wait 250 ms, resend, doubling the wait each time.  The
RFC gives up after 9 sends (about 128 s); we stop at an overall deadline the caller
sets (3 s by default) instead.  PCP requests follow the same schedule: RFC 6887
section 8.1.1's first wait of 3 s would leave one send within the default deadline.  An ICMP port
unreachable (ECONNREFUSED on the connected socket) ends the exchange at once.

The network is an interface (``Channel``): tests replace it and the clock, so the
schedule is tested without real packets or real sleeps.
"""

from __future__ import annotations

import errno
import socket
import time

from . import defaults
from .errors import GatewayTimeout, GatewayUnreachable, PortmapError

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Callable, List, Optional, Tuple, TypeVar, Union
    T = TypeVar("T")

DEFAULT_PORT = defaults.PORT
DEFAULT_TIMEOUT = defaults.TIMEOUT
INITIAL_WAIT = 0.25
MAX_DATAGRAM = 1100  # PCP's maximum message size; NAT-PMP's are far smaller

if TYPE_CHECKING:
    Address = Tuple[str, int]


class Channel:
    """What the transport needs of the network (one instance per exchange)."""

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def local_address(self) -> str:
        """The address this channel sends from (PCP requests carry it)."""
        return "0.0.0.0"

    def receive(self, timeout: float) -> Optional[Tuple[bytes, Address]]:
        """A datagram and its source, or None when ``timeout`` seconds passed.

        Raises ConnectionRefusedError on ICMP port unreachable.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release the channel."""


class UdpChannel(Channel):
    """A fresh UDP socket, connected to the gateway so ICMP errors are reported."""

    def __init__(self, gateway: Address, source_address: Optional[str] = None) -> None:
        self.gateway = gateway
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if source_address:
                self.sock.bind((source_address, 0))
            self.sock.connect(gateway)
        except OSError as exc:
            self.sock.close()
            where = f" from {source_address}" if source_address else ""
            raise PortmapError(f"cannot reach gateway {gateway[0]}:{gateway[1]}{where}: {exc.strerror or exc}") from exc

    def send(self, data: bytes) -> None:
        self.sock.send(data)

    def local_address(self) -> str:
        return str(self.sock.getsockname()[0])

    def fileno(self) -> int:
        """For select(): several requests in flight at once (method auto)."""
        return self.sock.fileno()

    def receive(self, timeout: float) -> Optional[Tuple[bytes, Address]]:
        return receive_from(self.sock, timeout)

    def close(self) -> None:
        self.sock.close()


def receive_from(sock: socket.socket, timeout: float, size: int = MAX_DATAGRAM) -> Optional[Tuple[bytes, Address]]:
    """A datagram and its source from ``sock``, or None when ``timeout`` seconds passed."""
    sock.settimeout(max(timeout, 0.0) or 1e-6)
    try:
        data, source = sock.recvfrom(size)
    except socket.timeout:
        return None
    return data, (source[0], source[1])


def retransmission_schedule(deadline: float, initial: float = INITIAL_WAIT) -> List[float]:
    """Offsets (seconds after the first send) of every send within ``deadline``."""
    offsets: List[float] = []
    at, wait = 0.0, initial
    while at < deadline:
        offsets.append(at)
        at += wait
        wait *= 2
    return offsets


class Transport:
    def __init__(
        self,
        gateway: str,
        port: int = DEFAULT_PORT,
        timeout: float = DEFAULT_TIMEOUT,
        source_address: Optional[str] = None,
        clock: Callable[[], float] = time.monotonic,
        channel_factory: Optional[Callable[[], Channel]] = None,
        initial_wait: float = INITIAL_WAIT,
        peer: str = "gateway",
    ) -> None:
        self.gateway = gateway
        self.port = port
        self.timeout = timeout
        self.source_address = source_address
        self.initial_wait = initial_wait
        self.peer = peer  # what the far end is called in messages
        self._clock = clock
        self._channel_factory = channel_factory or (lambda: UdpChannel((gateway, port), source_address))
        self.sends = 0  # sends of the last exchange, for callers and tests

    @property
    def where(self) -> str:
        return f"{self.gateway}:{self.port}"

    def open_channel(self) -> Channel:
        """A new channel to the gateway (the caller closes it): for requests run side by side."""
        return self._channel_factory()

    def exchange(self, data: Union[bytes, Callable[[str], bytes]], parse: Callable[[bytes], Optional[T]], what: str,
                 timeout: Optional[float] = None, reply_from: Optional[Address] = None) -> T:
        """Send ``data`` until ``parse`` accepts a datagram from the gateway, or the deadline.

        ``data`` may be a function of the channel's local address that returns the
        datagram (a PCP request carries the client's address).  ``parse`` returns
        None for a datagram that does not answer the request (ignored) and may raise
        to end the exchange with an error.  ``timeout`` replaces the transport's
        deadline for this exchange (a share of it, when protocols are tried in turn).
        ``reply_from`` is the only source a reply may come from (default: the address sent to;
        a STUN server answers a CHANGE-REQUEST from its other address).
        """
        budget = self.timeout if timeout is None else timeout
        start = self._clock()
        deadline = start + budget
        channel = self._channel_factory()
        self.sends = 0
        try:
            if callable(data):
                data = data(channel.local_address())
            return self._run(channel, data, parse, what, budget, deadline, reply_from or (self.gateway, self.port))
        except ConnectionRefusedError:
            raise GatewayUnreachable(
                f"gateway {self.where} refused the {what} (ICMP port unreachable: "
                "nothing listens for NAT-PMP/PCP there)"
            ) from None
        except OSError as exc:
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                raise GatewayUnreachable(f"gateway {self.where} is unreachable: {exc.strerror}") from None
            raise PortmapError(f"exchange with gateway {self.where} failed: {exc.strerror or exc}") from exc
        finally:
            channel.close()

    def _run(self, channel: Channel, data: bytes, parse: Callable[[bytes], Optional[T]], what: str,
             budget: float, deadline: float, reply_from: Address) -> T:
        wait = self.initial_wait
        while True:
            channel.send(data)
            self.sends += 1
            next_send = min(self._clock() + wait, deadline)
            wait *= 2
            while True:
                left = next_send - self._clock()
                if left <= 0:
                    break
                got = channel.receive(left)
                if got is None:
                    continue
                datagram, source = got
                if source != reply_from:
                    continue  # only the gateway's (the server's) address and port may answer
                reply = parse(datagram)
                if reply is not None:
                    return reply
            if self._clock() >= deadline:
                raise GatewayTimeout(
                    f"no answer from {self.peer} {self.where} to the {what} within {budget:.3g} s "
                    f"({self.sends} sends)"
                )
