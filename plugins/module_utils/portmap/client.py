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
from .detect import UNHEARD, detect
from .epoch import EpochObservation, lost_state
from .errors import GatewayTimeout, GatewayUnreachable, InputError, PortmapError, UnsupportedVersion, UpnpProtocolError
from .lock import HostLock, ProcessLock
from .records import asdict, record_class
from .transport import DEFAULT_PORT, DEFAULT_TIMEOUT, Channel, Transport

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, Dict, List, Optional, Tuple

PROTOCOLS = defaults.PROTOCOLS
DEFAULT_LIFETIME = defaults.LIFETIME
MAX_LIFETIME = wire_natpmp.MAX_LIFETIME
NATPMP = wire_natpmp.METHOD
PCP = wire_pcp.METHOD
UPNP = defaults.UPNP
AUTO = defaults.AUTO
METHODS = defaults.METHODS  # what the modules, the renewal job and the command offer
CLIENT_METHODS = METHODS
WIRES = {PCP: wire_pcp, NATPMP: wire_natpmp}
PCP_SHARE = 1 / 3  # of the deadline, for PCP's first try under "auto"
NAMES = {PCP: "PCP", NATPMP: "NAT-PMP", UPNP: "UPnP IGD"}
UPNP_KEPT = ("description_url", "device_type", "service_type", "control_url", "version")  # kept in the ledger


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
    internal_client: str = ""  # UPnP IGD: the address the mapping points to (this host's)
    description: str = ""  # UPnP IGD: what the gateway's pages show

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def default_description() -> str:
    """A UPnP mapping's description unless one is given: what the router's pages show."""
    import socket  # pylint: disable=import-outside-toplevel  # imported by the transport already

    return f"{defaults.DESCRIPTION} {socket.gethostname()}"


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
    ``auto``, ``pcp``, ``natpmp`` or ``upnp``; after the first exchange ``method`` is the
    protocol in use.  ``auto`` asks all three at once (``detect``) and keeps to the one chosen.
    ``upnp_url`` (the IGD's description URL) skips SSDP discovery and names the gateway when
    ``gateway`` is not given; ``upnp_kept`` is what an earlier run found (``upnp_record()``, kept
    in the ledger): the IGD is then used straight away, under ``upnp`` and under ``auto``, and
    discovered once more when it no longer answers there.  ``description`` is the mappings'
    description; ``igd`` replaces the IGD session and ``datagrams_factory`` the SSDP socket (tests).
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
        upnp_kept: Optional[Dict[str, Any]] = None,
        description: Optional[str] = None,
        igd: Optional[Any] = None,
        datagrams_factory: Optional[Callable[[], Any]] = None,
        stream_factory: Optional[Callable[..., Any]] = None,
    ) -> None:
        if method not in CLIENT_METHODS:
            raise InputError(f"method must be one of {', '.join(CLIENT_METHODS)}, got {method!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InputError(f"timeout must be a positive number of seconds, got {timeout!r}")
        explicit = gateway
        if method in (UPNP, AUTO) and upnp_url and not gateway:
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
        self._upnp_restart_told = False  # a Mapping told of the restart UPnP's uptime showed (one is enough)
        self.public_address_seen: Optional[str] = None
        self.attempts: List[Dict[str, Any]] = []  # per protocol tried: method, outcome, seconds
        self._wallclock = wallclock
        self._clock = clock
        self._nonce_factory = nonce_factory
        self.description = description or default_description()
        self.upnp: Optional[Any] = None  # the IGD session (upnp.IgdSession) once UPnP IGD is the method
        self.detection: Optional[Any] = None  # what "auto" found (detect.Detection)
        self._side: Optional[Any] = None  # the IGD beside PCP or NAT-PMP (``_side_igd``)
        self._upnp_args = {"upnp_url": upnp_url, "multicast": not gateway and not upnp_url, "timeout": timeout,
                           "source_address": source_address, "clock": clock, "datagrams_factory": datagrams_factory,
                           "stream_factory": stream_factory}
        self._datagrams_factory = datagrams_factory
        self._kept = dict(upnp_kept) if upnp_kept and upnp_kept.get("control_url") and not upnp_url else None
        self._igd_given = igd
        if method == UPNP or (method == AUTO and (upnp_url or igd is not None)):
            self._use_upnp(upnp_url)

    # ------------------------------------------------------------------ internals

    def _use_upnp(self, location: Optional[str] = None, kept: bool = True) -> None:
        """Speak UPnP IGD from now on: with the IGD at ``location``, or the kept one, or one found by SSDP."""
        self.method = UPNP
        self.upnp = self._session(location, kept)

    def _session(self, location: Optional[str] = None, kept: bool = True) -> Any:
        """An IGD session: at ``location``, or the kept IGD (no SSDP), or one SSDP will find."""
        if self._igd_given is not None:
            return self._igd_given
        from .upnp import IgdSession  # pylint: disable=import-outside-toplevel  # NAT-PMP and PCP runs need none of it

        args = dict(self._upnp_args)
        args["upnp_url"] = location or args["upnp_url"]
        session = IgdSession(self.gateway, **args)
        if kept and self._kept and not location:
            session.resume(self._kept.get("description_url", ""), self._kept.get("device_type", ""),
                           self._kept["service_type"], self._kept["control_url"], int(self._kept.get("version", 1)))
        return session

    def resume(self, method: str, upnp: Optional[Dict[str, Any]]) -> None:
        """What a ledger kept of this gateway (``method`` last spoken, ``upnp``: ``upnp_record()``).

        Under ``upnp`` the kept IGD is used straight away (no SSDP, no description fetched).
        Under ``auto`` PCP and NAT-PMP are asked first at every run, as detection does (RFC 6886
        section 1.1): the kept IGD stands in for the SSDP search, and is used only when neither
        answers within ``detect.UPNP_GRACE``.
        """
        if not upnp or not upnp.get("control_url") or self._upnp_args["upnp_url"] or self._igd_given is not None:
            return
        if self.answered or (self.upnp is not None and self.upnp.description is not None):
            return  # this run has found its own already
        self._kept = dict(upnp)
        if self.requested_method == UPNP:
            self._use_upnp()

    def _upnp_call(self, operation: Callable[[Any], Any]) -> Any:
        """``operation(session)``; when a kept IGD no longer answers there, discover it once more and retry."""
        with self.lock:
            try:
                return operation(self._igd())
            except (GatewayUnreachable, GatewayTimeout, UpnpProtocolError):
                if not (self._kept and self.upnp is not None and self.upnp.resumed and self._igd_given is None):
                    raise
            self._kept = None  # stale: the IGD moved (a restarted miniupnpd listens on a new port)
            self._use_upnp(kept=False)
            return operation(self._igd())

    def _detect(self, settle: bool = False, brief: bool = False) -> Any:
        """Under ``auto``: ask the gateway in the three protocols at once and take the one chosen."""
        start = self._clock()
        with self.lock:
            found = detect(self.gateway, self.transport.port, start + self.transport.timeout, self._clock,
                           self.transport.open_channel, self._datagrams_factory or _ssdp_socket(self.transport.source_address),
                           _igd_answer(self.gateway), settle=settle, kept=bool(self._kept) and not settle, brief=brief)
        self.detection = found
        for method in (PCP, NATPMP, UPNP):
            if not found.outcomes[method].startswith(UNHEARD):
                self.attempts.append({"method": method, "outcome": found.outcomes[method],
                                      "seconds": found.seconds[method]})
        natpmp = found.replies.get(NATPMP)
        if natpmp is not None and not natpmp.result:
            self.public_address_seen = natpmp.public_address
        if found.method == UPNP:
            answer = found.replies[UPNP]
            self._use_upnp(answer.location if answer is not None else None, kept=answer is None)
        elif found.method is not None:
            self.method = found.method
            reply = found.replies[found.method]
            self._observe(reply.epoch, found.method)
        return found

    def _undecided(self) -> bool:
        return self.requested_method == AUTO and self.method is None

    def _decide(self) -> None:
        """Under ``auto``, before the first request: find what the gateway speaks."""
        if not self._undecided():
            return
        found = self._detect()
        if found.method is None:
            refused = all(found.outcomes[m].startswith(("refused", "unreachable")) for m in (PCP, NATPMP))
            raise (GatewayUnreachable if refused else GatewayTimeout)(found.explain(self.transport.where))

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
        """NAT-PMP: the public address request; PCP: ANNOUNCE (epoch only, no address);
        UPnP: GetStatusInfo (its uptime is the epoch) and GetExternalIPAddress.  Under ``auto``
        the first call is the detection itself (``detect``)."""
        if self._undecided():
            self._decide()
            if self.method != UPNP:
                return PublicAddress(self.gateway, self.public_address_seen, self.epoch.epoch if self.epoch else 0,
                                     self.method or NATPMP, self.rebooted)
        if self.upnp is not None:
            def ask(igd: Any) -> str:
                if igd.description is None:  # discovery reads GetStatusInfo (to take a connected IGD)
                    igd.discover()
                    status = igd.status or igd.status_info()
                else:
                    status = igd.status_info()
                self._observe(status.uptime, UPNP)
                return igd.external_address()

            self.public_address_seen = self._upnp_call(ask)
            return PublicAddress(self.gateway, self.public_address_seen, self.epoch.epoch if self.epoch else 0, UPNP,
                                 self.rebooted)

        reply, lost, used = self._exchange(self._public_request)
        if used == NATPMP:
            self.public_address_seen = reply.public_address
        return PublicAddress(self.gateway, self.public_address_seen, reply.epoch, used, lost)

    def map(
        self, protocol: str, internal_port: int, external_port: Optional[int] = None, lifetime: int = DEFAULT_LIFETIME,
        nonce: str = "", made_with: Optional[str] = None, exact: bool = False,
    ) -> Mapping:
        """Create or renew a mapping; ``external_port`` is a suggestion (0: any).

        ``nonce`` (PCP, hex) renews the mapping made with it; a new one is drawn when
        empty.  ``made_with`` is the protocol an existing mapping was made with: under
        ``auto``, when this run speaks the other one (the gateway learnt PCP, or
        forgot it), the old mapping is deleted with its own protocol first, so the
        gateway does not keep two.  ``exact``: UPnP IGD asks for ``external_port`` only
        (AddPortMapping) and, when another host holds it, fails naming that host; NAT-PMP
        and PCP cannot ask so (the caller compares the port granted).
        """
        check_protocol(protocol)
        check_port("internal_port", internal_port)
        external_port = internal_port if external_port is None else check_port("external_port", external_port, 0)
        check_lifetime(lifetime)
        self._decide()
        if self.upnp is not None:
            if self.requested_method == AUTO and made_with in WIRES and not self._failed(made_with):
                try:  # made with NAT-PMP or PCP, which the gateway no longer speaks: best effort
                    self._mapping(protocol, internal_port, 0, 0, nonce if made_with == PCP else "", made_with,
                                  candidates=[made_with])
                except PortmapError:
                    pass
            granted = self._upnp_call(lambda igd: igd.map(protocol, internal_port, external_port, lifetime,
                                                          self.description, exact=exact))
            return self._upnp_mapping(protocol, internal_port, granted.external_port, granted.lifetime,
                                      granted.permanent, granted.internal_client)
        if self.requested_method == AUTO and made_with == UPNP and self._side_igd() is not None:
            try:  # made with UPnP IGD, and the gateway speaks PCP or NAT-PMP again: best effort
                with self.lock:
                    igd = self._side_igd()
                    for port in self._upnp_ours(protocol, internal_port, None, igd):
                        igd.delete(protocol, port)
            except PortmapError:
                pass
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
        deletes by external port: ``external_port`` while the gateway's table shows it as
        this host's mapping of ``internal_port``, else this host's mappings of
        ``internal_port`` found in the table (never another host's).
        """
        check_protocol(protocol)
        check_port("internal_port", internal_port)
        if made_with not in WIRES:  # a mapping made with NAT-PMP or PCP is deleted with it, no detection first
            self._decide()
        if self.upnp is not None:
            def remove(igd: Any) -> None:
                for port in self._upnp_ours(protocol, internal_port, external_port):
                    igd.delete(protocol, port)

            self._upnp_call(remove)
            return self._upnp_mapping(protocol, internal_port, 0, 0, False)
        return self._mapping(protocol, internal_port, 0, 0, nonce, made_with)

    def holds(self, protocol: str, external_port: int, internal_port: int) -> Optional[bool]:
        """Whether the gateway's table has this host's mapping of ``external_port`` to ``internal_port``
        (UPnP IGD: GetSpecificPortMappingEntry, read-only); None where the protocol cannot tell."""
        self._decide()
        if self.upnp is None:
            return None

        def look(igd: Any) -> bool:
            entry = igd.specific_entry(protocol, external_port)
            return entry is not None and entry.internal_port == internal_port and \
                entry.internal_client == igd.internal_client_address()

        return self._upnp_call(look)

    def unrecorded(self, protocol: str, external_port: int) -> Optional[Any]:
        """This host's UPnP mapping of ``external_port`` (any internal port), read-only; None when the
        gateway has none, or it is another host's, or the protocol cannot tell."""
        self._decide()
        if self.upnp is None:
            return None

        def look(igd: Any) -> Optional[Any]:
            entry = igd.specific_entry(protocol, external_port)
            if entry is None or entry.internal_client != igd.internal_client_address():
                return None
            return entry

        return self._upnp_call(look)

    def table(self, limit: int = 1024, seconds: float = 10.0) -> Tuple[List[Any], bool]:
        """The gateway's mappings (UPnP IGD), at most ``limit`` within ``seconds``, and whether the list was cut.

        A gateway spoken to in PCP or NAT-PMP whose IGD answered the detection's search (``probe``)
        is listed over UPnP IGD, the method in use unchanged.  PortmapError when no protocol the
        gateway was heard to speak can list (NAT-PMP, PCP)."""
        self._decide()
        if self.upnp is None:
            igd = self._side_igd()
            if igd is None:
                raise PortmapError(f"gateway {self.gateway} speaks {NAMES.get(self.method or '', self.method)}, which "
                                   "cannot list the gateway's mappings (only UPnP IGD can), and no UPnP IGD of it "
                                   "answered")
            with self.lock:
                return igd.list_mappings(limit, seconds)
        return self._upnp_call(lambda igd: igd.list_mappings(limit, seconds))

    def _side_igd(self) -> Optional[Any]:
        """The gateway's IGD beside the method in use (PCP or NAT-PMP), to list the table or delete a
        mapping made with UPnP IGD: where the detection's search found it, or the IGD kept in the
        ledger; None when neither."""
        if self._side is None and self.upnp is None:
            answer = self.detection.replies.get(UPNP) if self.detection is not None else None
            if answer is not None:
                self._side = self._session(answer.location, kept=False)
            elif self._kept or self._igd_given is not None:
                self._side = self._session()
        return self._side

    def own_address(self) -> str:
        """This host's address towards the gateway's IGD (what its UPnP mappings point to); "" without one."""
        igd = self.upnp or self._side
        return igd.internal_client_address() if igd is not None else ""

    def delete_all(self, protocol: str, nonce: str = "") -> Mapping:
        """Delete every mapping of this host for ``protocol`` (internal port 0, lifetime 0).

        Under PCP only the mappings made with ``nonce`` go.
        """
        check_protocol(protocol)
        self._decide()
        if self.upnp is not None:
            def remove(igd: Any) -> None:
                for port in self._upnp_ours(protocol, None, None):
                    igd.delete(protocol, port)

            self._upnp_call(remove)
            return self._upnp_mapping(protocol, 0, 0, 0, False)
        return self._mapping(protocol, 0, 0, 0, nonce, None)

    def _upnp_ours(self, protocol: str, internal_port: Optional[int], external_port: Optional[int],
                   igd: Optional[Any] = None) -> List[int]:
        """External ports of this host's UPnP mappings of ``internal_port`` (any with None); of ``external_port``
        only, when given and the gateway's table shows it as this host's mapping (never another host's)."""
        igd = igd or self._igd()
        ours = igd.internal_client_address()
        if external_port is not None:
            entry = igd.specific_entry(protocol, external_port)
            mine = entry is not None and entry.internal_client == ours and internal_port in (None, entry.internal_port)
            return [external_port] if mine else []
        if internal_port is not None:
            entry = igd.specific_entry(protocol, internal_port)  # the usual case: the same port outside
            if entry is not None and entry.internal_port == internal_port and entry.internal_client == ours:
                return [internal_port]
        entries, _cut = igd.list_mappings()
        return [e.external_port for e in entries if e.protocol == protocol and e.internal_client == ours
                and internal_port in (None, e.internal_port)]

    def _upnp_mapping(self, protocol: str, internal_port: int, external_port: int, lifetime: int,
                      permanent: bool, internal_client: str = "") -> Mapping:
        igd = self._igd()
        if igd.uptime is not None and (self.epoch is None or self.epoch.epoch != igd.uptime):
            self._observe(igd.uptime, UPNP)  # discovery's GetStatusInfo: the uptime is UPnP's epoch
        seen = self.rebooted or igd.rebooted
        # the restart is news to one reply only: the next ones of this run come after it (a second
        # restart shows in the uptime going back again, which GetStatusInfo reads at the next run)
        lost = seen and not self._upnp_restart_told
        self.rebooted = seen
        self._upnp_restart_told = seen
        return Mapping(self.gateway, protocol, internal_port, external_port, lifetime, igd.uptime or 0, UPNP,
                       lost, public_address=self.public_address_seen, permanent=permanent,
                       internal_client=internal_client, description=self.description if lifetime or permanent else "")

    def upnp_record(self) -> Optional[Dict[str, Any]]:
        """What discovery found of the IGD in use (for the ledger), or None when UPnP IGD is not in use."""
        if self.upnp is None or self.upnp.description is None:
            return None
        found = self.upnp.description
        return {"description_url": found.url, "device_type": found.device_type,
                "service_type": found.service.service_type, "control_url": found.service.control_url,
                "version": found.service.version}

    def upnp_choice(self) -> Optional[Dict[str, Any]]:
        """Which WAN connection service of the IGD is in use and why (``IgdSession.choice()``), or None when UPnP
        IGD is not in use or no IGD was found."""
        return self.upnp.choice() if self.upnp is not None else None

    def _igd(self) -> Any:
        if self.upnp is None:
            raise PortmapError(f"not a UPnP IGD client (method {self.requested_method})")
        return self.upnp

    def _mapping(self, protocol: str, internal_port: int, external_port: int, lifetime: int, nonce: str,
                 made_with: Optional[str], candidates: Optional[List[str]] = None) -> Mapping:
        pcp_nonce = wire_pcp.nonce_from_hex(nonce) if nonce else self._nonce_factory()

        def build(method: str) -> Any:
            if method == PCP:
                return wire_pcp.map_request(protocol, internal_port, external_port, lifetime, pcp_nonce)
            return wire_natpmp.map_request(protocol, internal_port, external_port, lifetime)

        reply, lost, used = self._exchange(build, made_with, candidates=candidates)
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

    def probe(self, settle: bool = True, brief: bool = False) -> Dict[str, Any]:
        """What the gateway speaks, read-only.

        Under ``auto`` the three protocols are asked at once and, with ``settle``, heard out
        (``detect``; ``brief``: for as long as the choice took, at least ``detect.BRIEF``, as the
        command's ``public`` does); without, the asking ends at the choice and a protocol not heard
        out is None.  The one chosen is then the
        method in use.  A forced method asks only its own.  Returns per method None (not asked,
        or not heard out), True, or the error text; and ``speaks``, the methods that answered,
        in order of preference.
        """
        found: Dict[str, Any] = {PCP: None, NATPMP: None, UPNP: None}
        if self.requested_method == AUTO and self._igd_given is None:
            detection = self._detect(settle=settle, brief=brief)
            for method in (PCP, NATPMP, UPNP):
                outcome = detection.outcomes[method]
                found[method] = True if outcome == "answered" else None if outcome.startswith(UNHEARD) else outcome
            found["speaks"] = [m for m in (PCP, NATPMP, UPNP) if found[m] is True]
            if self.method == UPNP:
                try:
                    self.public_address()
                except PortmapError as exc:
                    found[UPNP] = str(exc)
                    found["speaks"].remove(UPNP)
            return found
        if self.upnp is not None:
            try:
                self.public_address()
                found[UPNP] = True
                found["speaks"] = [UPNP]
            except PortmapError as exc:
                found[UPNP] = str(exc)
                found["speaks"] = []
            return found
        method = self.requested_method if self.requested_method != AUTO else self.method
        try:
            reply, _lost, _used = self._exchange(self._public_request, candidates=[method])
        except PortmapError as exc:
            found[method] = str(exc)
            found["speaks"] = []
            return found
        found[method] = True
        found["speaks"] = [method]
        if method == NATPMP:
            self.public_address_seen = reply.public_address
        return found


def _ssdp_socket(source_address: Optional[str]) -> Callable[[], Any]:
    def make() -> Any:
        from .transport_upnp import UdpDatagrams  # pylint: disable=import-outside-toplevel

        return UdpDatagrams(source_address)
    return make


def _igd_answer(gateway: str) -> Callable[[Any, Any], bool]:
    """Whether an SSDP answer names an IGD on the gateway's own address (the session checks the URL in full)."""
    prefixes = (f"http://{gateway}:", f"http://{gateway}/")

    def accept(message: Any, _source: Any) -> bool:
        return (message.location or "").startswith(prefixes)
    return accept
