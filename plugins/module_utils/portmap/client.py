# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client: operations on a gateway, and what we know of the gateway's state.

Two wire formats sit under it: NAT-PMP (``wire_natpmp``) and PCP (``wire_pcp``).
Every operation builds a Pending request in the protocol spoken, runs it through the
transport under the per-host lock, observes the reply's epoch and turns error
results into exceptions.  What the gateway granted is returned, never what was asked.

``method="upnp"`` speaks UPnP IGD instead, through an IGD session (``upnp``): the
same operations, the same results.

``method="auto"`` tries PCP first and falls back to NAT-PMP when the gateway answers
"unsupported version" in either protocol's form, or when PCP gets no answer within
a share of the deadline (some gateways drop what they do not speak); both attempts
fit in the one deadline.  The outcome is kept for this client's life only: the next
run asks again (RFC 6886 section 1.1), so a gateway that learns PCP is used with it.
"""

from __future__ import annotations

import os
import time

from . import defaults, wire_natpmp, wire_pcp
from .epoch import EpochObservation, lost_state
from .errors import GatewayTimeout, InputError, PortmapError, UnsupportedVersion
from .lock import HostLock, ProcessLock
from .records import asdict, record_class
from .transport import DEFAULT_PORT, DEFAULT_TIMEOUT, Channel, Transport

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, Dict, List, Optional

PROTOCOLS = defaults.PROTOCOLS
DEFAULT_LIFETIME = defaults.LIFETIME
MAX_LIFETIME = wire_natpmp.MAX_LIFETIME
NATPMP = wire_natpmp.METHOD
PCP = wire_pcp.METHOD
UPNP = defaults.UPNP
AUTO = defaults.AUTO
METHODS = defaults.METHODS  # what the modules, the renewal job and the command offer
CLIENT_METHODS = METHODS + (UPNP,)  # UPnP IGD: the client only, for now
WIRES = {PCP: wire_pcp, NATPMP: wire_natpmp}
PCP_SHARE = 1 / 3  # of the deadline, for PCP's first try under "auto"
NAMES = {PCP: "PCP", NATPMP: "NAT-PMP", UPNP: "UPnP IGD"}


@record_class(frozen=True)
class VersionRefused:
    """The gateway answered "unsupported version": it speaks at most ``version``."""

    version: int
    epoch: int = 0


@record_class(frozen=True)
class PublicAddress:
    """The gateway's answer to the read-only request (NAT-PMP op 0, or PCP ANNOUNCE).

    A PCP ANNOUNCE carries no address: ``address`` is then the one a MAP of this
    client reported, or None.
    """

    gateway: str
    address: Optional[str]
    epoch: int
    method: str
    rebooted: bool

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@record_class(frozen=True)
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
    nonce: str = ""  # PCP: the mapping's nonce, hex; reuse it to renew or delete the mapping
    public_address: Optional[str] = None
    permanent: bool = False  # UPnP IGD: the gateway takes permanent leases only (lifetime 0, kept until deleted)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise InputError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    return protocol


def check_port(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= 65535:
        raise InputError(f"{name} must be an integer from {minimum} to 65535, got {value!r}")
    return value


def check_lifetime(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIFETIME:
        raise InputError(f"lifetime must be an integer from 1 to {MAX_LIFETIME} seconds, got {value!r}")
    return value


class Client:
    """Talks to one gateway.

    ``epoch`` seeds the last epoch observation (e.g. from the ledger), so a gateway
    that lost its state since another process talked to it is noticed: after any
    operation, ``rebooted`` tells whether a reply showed that.  ``method`` is
    ``auto``, ``pcp`` or ``natpmp``; after the first exchange ``method`` is the
    protocol in use.  Under ``upnp``, ``upnp_url`` (the IGD's description URL) skips SSDP
    discovery and names the gateway when ``gateway`` is not given; ``description`` is the
    mappings' description; ``igd`` replaces the IGD session (tests).
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
        method: str = NATPMP,
        wallclock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        channel_factory: Optional[Callable[[], Channel]] = None,
        nonce_factory: Callable[[], bytes] = lambda: os.urandom(wire_pcp.NONCE_LENGTH),
        upnp_url: Optional[str] = None,
        description: str = "portmap.natpmp",
        igd: Optional[Any] = None,
    ) -> None:
        if method not in CLIENT_METHODS:
            raise InputError(f"method must be one of {', '.join(CLIENT_METHODS)}, got {method!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InputError(f"timeout must be a positive number of seconds, got {timeout!r}")
        explicit = gateway
        if method == UPNP and upnp_url and not gateway:
            from urllib.parse import urlsplit  # pylint: disable=import-outside-toplevel

            explicit = urlsplit(upnp_url).hostname
        from .discovery import discover_gateway  # pylint: disable=import-outside-toplevel

        self.gateway, self.found_in = discover_gateway(explicit)
        self.requested_method = method
        self.method: Optional[str] = None if method == AUTO else method
        self.transport = Transport(
            self.gateway,
            port=port,
            timeout=timeout,
            source_address=source_address,
            clock=clock,
            channel_factory=channel_factory,
        )
        # The ledger's lock serializes requests per host; a client alone (no ledger, no
        # lock_path) serializes only the requests of its own process.
        self.lock = lock or (HostLock(lock_path) if lock_path else ProcessLock())
        self.epoch = epoch
        self.answered = False  # whether the gateway answered this client (else ``epoch`` is what it was given)
        self.rebooted = False
        self.public_address_seen: Optional[str] = None
        self.attempts: List[Dict[str, Any]] = []  # per protocol tried: method, outcome, seconds
        self._wallclock = wallclock
        self._clock = clock
        self._nonce_factory = nonce_factory
        self.description = description
        self.upnp: Optional[Any] = None  # the IGD session (upnp.IgdSession) under "upnp"
        if method == UPNP:  # multicast SSDP only when no gateway was given
            from .upnp import IgdSession  # pylint: disable=import-outside-toplevel  # NAT-PMP and PCP runs need none of it

            self.upnp = igd or IgdSession(self.gateway, upnp_url=upnp_url, multicast=not gateway and not upnp_url,
                                          timeout=timeout, source_address=source_address, clock=clock)

    # ------------------------------------------------------------------ internals

    def lost_since(self, previous: Optional[EpochObservation]) -> bool:
        """Whether the gateway lost its state since ``previous`` (by the current epoch)."""
        if previous is None or self.epoch is None:
            return False
        return lost_state(previous, self.epoch, self.method or NATPMP)

    def _observe(self, epoch: int, method: str) -> bool:
        observation = EpochObservation(epoch, self._wallclock())
        lost = lost_state(self.epoch, observation, method)
        self.epoch = observation
        self.answered = True
        if lost:
            self.rebooted = True
        return lost

    @staticmethod
    def _parse(pending: Any) -> Callable[[bytes], Any]:
        def parse(datagram: bytes) -> Any:
            version = wire_pcp.unsupported_version_answer(datagram)
            if version is not None:
                return VersionRefused(version)
            return pending.match(datagram)

        return parse

    def _failed(self, method: str) -> bool:
        """Whether ``method`` went unanswered or was refused earlier in this client's life."""
        return any(a["method"] == method and a["outcome"] != "answered" for a in self.attempts)

    def _candidates(self, made_with: Optional[str]) -> List[str]:
        if self.requested_method != AUTO:
            return [self.requested_method]
        if made_with in WIRES and not self._failed(made_with):
            return [made_with] + [m for m in (PCP, NATPMP) if m != made_with]
        if self.method is not None:
            return [self.method]
        return [PCP, NATPMP]

    def _exchange(self, build: Callable[[str], Any], made_with: Optional[str] = None,
                  candidates: Optional[List[str]] = None, budget: Optional[float] = None) -> Any:
        """Run the request ``build(method)`` makes; with ``auto``, PCP then NAT-PMP within the deadline."""
        candidates = candidates or self._candidates(made_with)
        start = self._clock()
        budget = self.transport.timeout if budget is None else budget
        timeouts: List[str] = []
        refused: List[str] = []
        for index, method in enumerate(candidates):
            last = index == len(candidates) - 1
            share = budget - (self._clock() - start) if last else budget * PCP_SHARE
            pending = build(method)
            began = self._clock()
            try:
                with self.lock:
                    reply = self.transport.exchange(pending.encode, self._parse(pending),
                                                    f"{NAMES[method]} {pending.describe}", timeout=max(share, 1e-3))
            except GatewayTimeout as exc:
                self.attempts.append({"method": method, "outcome": "no answer", "seconds": self._clock() - began})
                timeouts.append(str(exc))
                if last:
                    raise GatewayTimeout("; ".join(timeouts + [f"gateway {self.transport.where} does not speak {r}"
                                                               for r in refused])) from None
                continue
            if isinstance(reply, VersionRefused):
                self.attempts.append({"method": method, "outcome": f"unsupported version (speaks {reply.version})",
                                      "seconds": self._clock() - began})
                refused.append(f"{NAMES[method]} (it speaks version {reply.version})")
                if last:
                    raise UnsupportedVersion(method, 1, "UNSUPPORTED_VERSION" if method == NATPMP else "UNSUPP_VERSION",
                                             "".join(f"{t}; " for t in timeouts) + f"gateway {self.transport.where} "
                                             "does not speak " + " nor ".join(refused))
                continue
            self.attempts.append({"method": method, "outcome": "answered", "seconds": self._clock() - began})
            if self.method is None or not made_with:
                self.method = method  # a detour to the protocol a mapping was made with does not decide
            lost = self._observe(reply.epoch, method)
            error = pending.error(reply, self.transport.where)
            if error is not None:
                raise error
            return reply, lost, method

    @staticmethod
    def _public_request(method: str) -> Any:
        return wire_pcp.announce_request() if method == PCP else wire_natpmp.public_address_request()

    # ------------------------------------------------------------------ operations

    def public_address(self) -> PublicAddress:
        """NAT-PMP: the public address request; PCP: ANNOUNCE (epoch only, no address); UPnP: GetExternalIPAddress."""
        if self.upnp is not None:
            with self.lock:
                self.public_address_seen = self.upnp.external_address()
            return PublicAddress(self.gateway, self.public_address_seen, self.upnp.uptime or 0, UPNP, self.upnp.rebooted)

        reply, lost, used = self._exchange(self._public_request)
        if used == NATPMP:
            self.public_address_seen = reply.public_address
        return PublicAddress(self.gateway, self.public_address_seen, reply.epoch, used, lost)

    def map(
        self, protocol: str, internal_port: int, external_port: Optional[int] = None, lifetime: int = DEFAULT_LIFETIME,
        nonce: str = "", made_with: Optional[str] = None,
    ) -> Mapping:
        """Create or renew a mapping; ``external_port`` is a suggestion (0: any).

        ``nonce`` (PCP, hex) renews the mapping made with it; a new one is drawn when
        empty.  ``made_with`` is the protocol an existing mapping was made with: under
        ``auto``, when this run speaks the other one (the gateway learnt PCP, or
        forgot it), the old mapping is deleted with its own protocol first, so the
        gateway does not keep two.
        """
        check_protocol(protocol)
        check_port("internal_port", internal_port)
        external_port = internal_port if external_port is None else check_port("external_port", external_port, 0)
        check_lifetime(lifetime)
        if self.upnp is not None:
            with self.lock:
                granted = self.upnp.map(protocol, internal_port, external_port, lifetime, self.description)
            return self._upnp_mapping(protocol, internal_port, granted.external_port, granted.lifetime, granted.permanent)
        if self.requested_method == AUTO and self.method and made_with in WIRES and made_with != self.method:
            if not self._failed(made_with):
                try:
                    self._mapping(protocol, internal_port, 0, 0, nonce if made_with == PCP else "", made_with)
                except PortmapError:
                    pass  # best effort: the old mapping lapses at its expiry anyway
            nonce = ""
        return self._mapping(protocol, internal_port, external_port, lifetime, nonce, None)

    def delete(self, protocol: str, internal_port: int, nonce: str = "", made_with: Optional[str] = None,
               external_port: Optional[int] = None) -> Mapping:
        """Delete this host's mapping of ``internal_port`` (lifetime 0; NAT-PMP: suggested port 0).

        PCP deletes only with the nonce the mapping was made with.  ``made_with``, the
        protocol the mapping was made with, is tried first under ``auto``.  UPnP IGD
        deletes by external port: ``external_port``, else this host's mapping of
        ``internal_port`` found in the gateway's table (never another host's).
        """
        check_protocol(protocol)
        check_port("internal_port", internal_port)
        if self.upnp is not None:
            with self.lock:
                for port in self._upnp_ours(protocol, internal_port, external_port):
                    self.upnp.delete(protocol, port)
            return self._upnp_mapping(protocol, internal_port, 0, 0, False)
        return self._mapping(protocol, internal_port, 0, 0, nonce, made_with)

    def delete_all(self, protocol: str, nonce: str = "") -> Mapping:
        """Delete every mapping of this host for ``protocol`` (internal port 0, lifetime 0).

        Under PCP only the mappings made with ``nonce`` go.
        """
        check_protocol(protocol)
        if self.upnp is not None:
            with self.lock:
                for port in self._upnp_ours(protocol, None, None):
                    self.upnp.delete(protocol, port)
            return self._upnp_mapping(protocol, 0, 0, 0, False)
        return self._mapping(protocol, 0, 0, 0, nonce, None)

    def _upnp_ours(self, protocol: str, internal_port: Optional[int], external_port: Optional[int]) -> List[int]:
        """External ports of this host's UPnP mappings of ``internal_port`` (any with None)."""
        igd = self._igd()
        if external_port is not None:
            return [external_port]
        if internal_port is not None:
            entry = igd.specific_entry(protocol, internal_port)  # the usual case: the same port outside
            if entry is not None and entry.internal_port == internal_port and entry.internal_client == igd.internal_client:
                return [internal_port]
        entries, _cut = igd.list_mappings()
        return [e.external_port for e in entries if e.protocol == protocol and e.internal_client == igd.internal_client
                and internal_port in (None, e.internal_port)]

    def _upnp_mapping(self, protocol: str, internal_port: int, external_port: int, lifetime: int,
                      permanent: bool) -> Mapping:
        igd = self._igd()
        self.rebooted = self.rebooted or igd.rebooted
        return Mapping(self.gateway, protocol, internal_port, external_port, lifetime, igd.uptime or 0, UPNP,
                       igd.rebooted, public_address=self.public_address_seen, permanent=permanent)

    def _igd(self) -> Any:
        if self.upnp is None:
            raise PortmapError(f"not a UPnP IGD client (method {self.requested_method})")
        return self.upnp

    def _mapping(self, protocol: str, internal_port: int, external_port: int, lifetime: int, nonce: str,
                 made_with: Optional[str]) -> Mapping:
        pcp_nonce = wire_pcp.nonce_from_hex(nonce) if nonce else self._nonce_factory()

        def build(method: str) -> Any:
            if method == PCP:
                return wire_pcp.map_request(protocol, internal_port, external_port, lifetime, pcp_nonce)
            return wire_natpmp.map_request(protocol, internal_port, external_port, lifetime)

        reply, lost, used = self._exchange(build, made_with)
        public_address = self.public_address_seen
        used_nonce = ""
        if used == PCP:
            used_nonce = pcp_nonce.hex()
            if reply.public_address:
                public_address = self.public_address_seen = reply.public_address
        return Mapping(
            gateway=self.gateway,
            protocol=protocol,
            internal_port=reply.internal_port,
            external_port=reply.external_port if lifetime else 0,
            lifetime=reply.lifetime,
            epoch=reply.epoch,
            method=used,
            rebooted=lost,
            nonce=used_nonce,
            public_address=public_address,
        )

    def probe(self) -> Dict[str, Any]:
        """What the gateway speaks, read-only: PCP ANNOUNCE and the NAT-PMP public address request.

        Under ``auto`` both are asked (PCP within its share of the deadline, NAT-PMP
        within the rest) and PCP is then the method in use if it answered; a forced
        method asks only its own.  Returns per method None (not asked), True, or the
        error text; and ``speaks``, the methods that answered.
        """
        if self.upnp is not None:
            try:
                self.public_address()
                return {PCP: None, NATPMP: None, UPNP: True, "speaks": [UPNP]}
            except PortmapError as exc:
                return {PCP: None, NATPMP: None, UPNP: str(exc), "speaks": []}
        methods = [PCP, NATPMP] if self.requested_method == AUTO else [self.requested_method]
        found: Dict[str, Any] = {PCP: None, NATPMP: None}
        start = self._clock()
        speaks: List[str] = []
        for index, method in enumerate(methods):
            last = index == len(methods) - 1
            budget = self.transport.timeout
            share = budget - (self._clock() - start) if last else budget * PCP_SHARE
            try:
                reply, _lost, _used = self._exchange(self._public_request, candidates=[method], budget=share)
            except PortmapError as exc:
                found[method] = str(exc)
                continue
            found[method] = True
            speaks.append(method)
            if method == NATPMP:
                self.public_address_seen = reply.public_address
        self.method = speaks[0] if speaks else (None if self.requested_method == AUTO else self.requested_method)
        found["speaks"] = speaks
        return found
