# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client: operations on a gateway, and what we know of the gateway's state.

The protocol spoken is a wire-format module (``wire_natpmp`` now); every
operation builds a Pending request there, runs it through the transport under the
per-host lock, observes the reply's epoch and turns error results into exceptions.
What the gateway granted is returned, never what was asked.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Optional

from . import wire_natpmp
from .discovery import discover_gateway
from .epoch import EpochObservation, gateway_lost_state
from .lock import HostLock
from .transport import DEFAULT_PORT, DEFAULT_TIMEOUT, Channel, Transport

PROTOCOLS = ("tcp", "udp")
DEFAULT_LIFETIME = 7200  # RFC 6886 section 3.3 recommends two hours
MAX_LIFETIME = wire_natpmp.MAX_LIFETIME
METHODS = {wire_natpmp.METHOD: wire_natpmp}


@dataclass(frozen=True)
class PublicAddress:
    gateway: str
    address: str
    epoch: int
    method: str
    rebooted: bool

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Mapping:
    """A mapping as the gateway granted it (lifetime 0: deleted)."""

    gateway: str
    protocol: str
    internal_port: int
    external_port: int
    lifetime: int
    epoch: int
    method: str
    rebooted: bool
    nonce: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    return protocol


def check_port(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= 65535:
        raise ValueError(f"{name} must be an integer from {minimum} to 65535, got {value!r}")
    return value


def check_lifetime(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIFETIME:
        raise ValueError(f"lifetime must be an integer from 1 to {MAX_LIFETIME} seconds, got {value!r}")
    return value


class Client:
    """Talks to one gateway.

    ``epoch`` seeds the last epoch observation (e.g. from the ledger), so a gateway
    that lost its state since another process talked to it is noticed: after any
    operation, ``rebooted`` tells whether a reply showed that.
    """

    def __init__(
        self,
        gateway: Optional[str] = None,
        *,
        port: int = DEFAULT_PORT,
        timeout: float = DEFAULT_TIMEOUT,
        source_address: Optional[str] = None,
        lock: Optional[HostLock] = None,
        lock_path: Optional[str] = None,
        epoch: Optional[EpochObservation] = None,
        method: str = wire_natpmp.METHOD,
        wallclock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        channel_factory: Optional[Callable[[], Channel]] = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        self.gateway, self.found_in = discover_gateway(gateway)
        self.method = method
        self.wire = METHODS[method]
        self.transport = Transport(
            self.gateway,
            port=port,
            timeout=timeout,
            source_address=source_address,
            clock=clock,
            channel_factory=channel_factory,
        )
        self.lock = lock or HostLock(lock_path)
        self.epoch = epoch
        self.rebooted = False
        self.public_address_seen: Optional[str] = None
        self._wallclock = wallclock

    # ------------------------------------------------------------------ internals

    def _observe(self, epoch: int) -> bool:
        observation = EpochObservation(epoch, self._wallclock())
        lost = gateway_lost_state(self.epoch, observation)
        self.epoch = observation
        if lost:
            self.rebooted = True
        return lost

    def _exchange(self, pending: Any) -> Any:
        with self.lock:
            reply = self.transport.exchange(pending.data, pending.match, pending.describe)
        lost = self._observe(reply.epoch)
        error = pending.error(reply, self.transport.where)
        if error is not None:
            raise error
        return reply, lost

    # ------------------------------------------------------------------ operations

    def public_address(self) -> PublicAddress:
        reply, lost = self._exchange(self.wire.public_address_request())
        self.public_address_seen = reply.public_address
        return PublicAddress(self.gateway, reply.public_address, reply.epoch, self.method, lost)

    def map(
        self, protocol: str, internal_port: int, external_port: Optional[int] = None, lifetime: int = DEFAULT_LIFETIME
    ) -> Mapping:
        """Create or renew a mapping; ``external_port`` is a suggestion (0: any)."""
        check_protocol(protocol)
        check_port("internal_port", internal_port)
        external_port = internal_port if external_port is None else check_port("external_port", external_port, 0)
        check_lifetime(lifetime)
        return self._mapping(self.wire.map_request(protocol, internal_port, external_port, lifetime), protocol)

    def delete(self, protocol: str, internal_port: int) -> Mapping:
        """Delete this host's mapping of ``internal_port`` (lifetime 0, suggested port 0)."""
        check_protocol(protocol)
        check_port("internal_port", internal_port)
        return self._mapping(self.wire.map_request(protocol, internal_port, 0, 0), protocol)

    def delete_all(self, protocol: str) -> Mapping:
        """Delete every mapping of this host for ``protocol`` (internal port 0, lifetime 0)."""
        check_protocol(protocol)
        return self._mapping(self.wire.map_request(protocol, 0, 0, 0), protocol)

    def _mapping(self, pending: Any, protocol: str) -> Mapping:
        reply, lost = self._exchange(pending)
        return Mapping(
            gateway=self.gateway,
            protocol=protocol,
            internal_port=reply.internal_port,
            external_port=reply.external_port,
            lifetime=reply.lifetime,
            epoch=reply.epoch,
            method=self.method,
            rebooted=lost,
        )
