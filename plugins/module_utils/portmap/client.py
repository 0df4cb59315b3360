# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client: operations on one gateway, in the protocol it speaks, and what we know of its state.

Each protocol is a ``Method`` (``methods``); the client chooses one and delegates.  ``method``
forces one; ``auto`` asks every registered method at once (``detect``) and takes the first
the gateway speaks, in order of preference; the choice is kept for this client's life only:
the next run asks again (RFC 6886 section 1.1), so a gateway that learns PCP is used with it.
A mapping made with another method than the one in use is deleted with its own method first
(``map``), so the gateway does not keep two.

The client holds what the methods share: the gateway, the transport to port 5351, the
per-host lock, the last epoch observation (``observe``, under the rule of the method that
saw it), the public address seen, the attempts made and what the ledger kept for a method
between runs (``kept``).  What the gateway granted is returned, never what was asked.
"""

from __future__ import annotations

import os
import time

from . import defaults, wire_natpmp, wire_pcp
from .methods import registry as methods
from .detect import UNHEARD, Detection, detect
from .epoch import EpochObservation
from .errors import GatewayTimeout, GatewayUnreachable, InputError, PortmapError
from .lock import HostLock, ProcessLock
from .methods.base import CannotList, Mapping, Method, PublicAddress
from .transport import DEFAULT_PORT, DEFAULT_TIMEOUT, Channel, Transport

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, Dict, List, Optional, Tuple

PROTOCOLS = defaults.PROTOCOLS
DEFAULT_LIFETIME = defaults.LIFETIME
MAX_LIFETIME = wire_natpmp.MAX_LIFETIME
AUTO = defaults.AUTO
METHODS = defaults.METHODS  # what the modules, the renewal job and the command offer
__all__ = ["Client", "Mapping", "PublicAddress", "check_lifetime", "check_port", "check_protocol"]


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
    operation, ``rebooted`` tells whether a reply showed that.  ``method`` is ``auto`` or
    one of ``methods.NAMES``; after the first exchange ``method`` is the protocol in use
    (``active`` its ``Method``).  ``upnp_url`` (the IGD's description URL) skips SSDP
    discovery and names the gateway when ``gateway`` is not given.  ``resume`` gives it what an
    earlier run kept in the ledger (``kept_records()``).  ``description`` is the mappings' description; ``igd`` replaces the IGD session
    and ``datagrams_factory`` the SSDP socket (tests).
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
        nonce_factory: Callable[[], bytes] = lambda: os.urandom(wire_pcp.NONCE_LENGTH),
        upnp_url: Optional[str] = None,
        description: Optional[str] = None,
        igd: Optional[Any] = None,
        datagrams_factory: Optional[Callable[[], Any]] = None,
        stream_factory: Optional[Callable[..., Any]] = None,
    ) -> None:
        if method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InputError(f"timeout must be a positive number of seconds, got {timeout!r}")
        # what the methods are given: a description URL, a session and sockets for tests
        self.options: Dict[str, Any] = {"upnp_url": upnp_url, "igd": igd, "multicast": not gateway and not upnp_url,
                                        "datagrams_factory": datagrams_factory, "stream_factory": stream_factory}
        self.requested_method = method
        offered = methods.NAMES if method == AUTO else (method,)
        for option in ("upnp_url",):  # options only some methods take
            if self.options[option] and method != AUTO and option not in methods.load(method).options:
                takers = [name for name in methods.NAMES if option in methods.load(name).options]
                raise InputError(f"{option} is for method {' or '.join(takers)} (or auto), not {method}")
        explicit = gateway
        for name in offered if not gateway else ():
            explicit = explicit or getattr(methods.load(name), "names_gateway", lambda _options: None)(self.options)
        from .discovery import discover_gateway  # pylint: disable=import-outside-toplevel

        self.gateway, self.found_in = discover_gateway(explicit)
        self.method: Optional[str] = None  # the protocol in use
        self.active: Optional[Any] = None  # its Method
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
        self.wallclock = wallclock
        self.clock = clock
        self.new_nonce = nonce_factory
        self.description = description or default_description()
        self.detection: Optional[Detection] = None  # what "auto" found
        self.kept: Dict[str, Any] = {}  # the ledger's records of methods (by field), from an earlier run
        self._speakers: Dict[str, Any] = {}
        self._exchange: Optional[Any] = None
        if method != AUTO:
            self.use(method)
        else:
            chosen = next((name for name in offered
                           if getattr(methods.load(name), "chosen_by", lambda _options: False)(self.options)), None)
            if chosen is not None:
                self.use(chosen)

    # ------------------------------------------------------------------ the methods

    def speaker(self, name: str) -> Any:
        """This client's ``Method`` of ``name`` (made once)."""
        speaker = self._speakers.get(name)
        if speaker is None:
            speaker = self._speakers[name] = methods.load(name)(self)
        return speaker

    @property
    def exchange(self) -> Any:
        """The exchange loop NAT-PMP and PCP share (``methods.port5351``)."""
        if self._exchange is None:
            from .methods.port5351 import Exchange  # pylint: disable=import-outside-toplevel

            self._exchange = Exchange(self)
        return self._exchange

    def use(self, name: str) -> None:
        """Speak ``name`` from now on."""
        self.method = name
        self.active = self.speaker(name)

    def resume(self, method: Optional[str], kept: Dict[str, Any]) -> None:
        """What a ledger kept of this gateway: ``method`` last spoken, ``kept`` the methods' records by field.

        A forced method uses its record straight away (UPnP IGD: no SSDP, no description
        fetched).  Under ``auto`` every method is asked first at every run, as detection does
        (RFC 6886 section 1.1): a record stands in for that method's search only.
        """
        if self.answered:
            return  # this run has found its own already
        for field_name, value in kept.items():
            cls = methods.keeping(field_name)
            if not getattr(cls, "resumable", lambda _kept, _options: bool(_kept))(value, self.options):
                continue
            speaker = self._speakers.get(cls.name)
            if speaker is not None and getattr(speaker, "found", lambda: False)():
                continue
            self.kept[field_name] = dict(value)
            if speaker is not None:
                speaker.resume(value)

    def kept_records(self) -> Dict[str, Any]:
        """What the methods of this run would keep in the ledger (by field; None for nothing new)."""
        return {speaker.keeps: speaker.kept() for speaker in self._speakers.values() if speaker.keeps}

    def choice(self) -> Optional[Dict[str, Any]]:
        """Which of the gateway's services the method in use chose and why (natpmp_info), or None."""
        return self.active.choice() if self.active is not None else None

    def _beside(self, name: str) -> Optional[Any]:
        """The method ``name`` while another is in use (to delete what it made, or to list the table)."""
        if methods.load(name).usable_beside(self):
            return self.speaker(name)
        return None

    def observe(self, epoch: int, speaker: Any) -> bool:
        """An epoch seen in an answer of ``speaker``: whether it shows the gateway lost its mappings."""
        observation = EpochObservation(epoch, self.wallclock())
        lost = speaker.lost_state(self.epoch, observation)
        self.epoch = observation
        self.answered = True
        if lost:
            self.rebooted = True
        return lost

    def lost_since(self, previous: Optional[EpochObservation]) -> bool:
        """Whether the gateway lost its state since ``previous`` (by the current epoch)."""
        if previous is None or self.epoch is None:
            return False
        return methods.load(self.method or methods.LEGACY).lost_state(previous, self.epoch)

    def failed(self, method: str) -> bool:
        """Whether ``method`` went unanswered or was refused earlier in this client's life."""
        return any(a["method"] == method and a["outcome"] != "answered" for a in self.attempts)

    # ------------------------------------------------------------------ choosing

    def _detect(self, settle: bool = False, brief: bool = False) -> Detection:
        """Under ``auto``: ask the gateway in every method at once and take the one chosen."""
        start = self.clock()
        speakers = [self.speaker(name) for name in methods.NAMES]
        with self.lock:
            found = detect(speakers, start + self.transport.timeout, self.clock, settle=settle, brief=brief)
        self.detection = found
        for name in methods.NAMES:
            if not found.outcomes[name].startswith(UNHEARD):
                self.attempts.append({"method": name, "outcome": found.outcomes[name], "seconds": found.seconds[name]})
        for name, reply in found.replies.items():
            if name != found.method:
                self.speaker(name).noticed(reply)
        if found.method is not None:
            self.use(found.method)
            self.active.detected(found.replies[found.method])
        return found

    def _undecided(self) -> bool:
        return self.requested_method == AUTO and self.method is None

    def _decide(self) -> None:
        """Under ``auto``, before the first request: find what the gateway speaks."""
        if not self._undecided():
            return
        found = self._detect()
        if found.method is None:
            refused = all(outcome.startswith(("refused", "unreachable")) for name, outcome in found.outcomes.items()
                          if methods.load(name).refusal_is_final)
            raise (GatewayUnreachable if refused else GatewayTimeout)(found.explain(self.transport.where))

    def _owner(self, made_with: Optional[str]) -> Any:
        """Who deletes a mapping made with ``made_with``: that method where it needs no detection, else the one in use."""
        if made_with in methods.NAMES and methods.load(made_with).deletes_without_detection and \
                (self.active is None or self.active.deletes_without_detection):
            return self.speaker(made_with if self.requested_method == AUTO else self.requested_method)
        self._decide()
        return self.active

    # ------------------------------------------------------------------ operations

    def public_address(self) -> PublicAddress:
        """The gateway's public address and epoch, read-only, in the method in use.  Under ``auto``
        the first call is the detection itself (``detect``)."""
        if self._undecided():
            self._decide()
            if self.active.detection_answers_public:
                return PublicAddress(self.gateway, self.public_address_seen, self.epoch.epoch if self.epoch else 0,
                                     self.method, self.rebooted)
        return self.active.public_address()

    def map(
        self, protocol: str, internal_port: int, external_port: Optional[int] = None, lifetime: int = DEFAULT_LIFETIME,
        nonce: str = "", made_with: Optional[str] = None, exact: bool = False,
    ) -> Mapping:
        """Create or renew a mapping; ``external_port`` is a suggestion (0: any).

        ``nonce`` (PCP, hex) renews the mapping made with it; a new one is drawn when
        empty.  ``made_with`` is the protocol an existing mapping was made with: under
        ``auto``, when this run speaks another one (the gateway learnt PCP, or forgot
        it), the old mapping is deleted with its own protocol first, best effort, so the
        gateway does not keep two.  ``exact``: ask for ``external_port`` only where the
        protocol can (UPnP IGD), failing with who holds it; NAT-PMP and PCP cannot ask so
        (the caller compares the port granted).
        """
        check_protocol(protocol)
        check_port("internal_port", internal_port)
        external_port = internal_port if external_port is None else check_port("external_port", external_port, 0)
        check_lifetime(lifetime)
        self._decide()
        if self.requested_method == AUTO and made_with in methods.NAMES and made_with != self.method:
            old = self._beside(made_with) if not self.failed(made_with) else None
            if old is not None:
                try:  # best effort: the old mapping lapses at its expiry anyway
                    old.delete(protocol, internal_port, nonce, made_with, None, only=True)
                except PortmapError:
                    pass
            nonce = ""
        return self.active.map(protocol, internal_port, external_port, lifetime, nonce, None, exact)

    def delete(self, protocol: str, internal_port: int, nonce: str = "", made_with: Optional[str] = None,
               external_port: Optional[int] = None) -> Mapping:
        """Delete this host's mapping of ``internal_port`` by what names it in its protocol.

        PCP deletes only with the nonce the mapping was made with; a mapping made with
        NAT-PMP or PCP is deleted with it, no detection first.  UPnP IGD deletes by external
        port: ``external_port`` while the gateway's table shows it as this host's mapping of
        ``internal_port``, else this host's mappings of ``internal_port`` (never another host's).
        """
        check_protocol(protocol)
        check_port("internal_port", internal_port)
        return self._owner(made_with).delete(protocol, internal_port, nonce, made_with, external_port)

    def delete_all(self, protocol: str, nonce: str = "") -> Mapping:
        """Delete every mapping of this host for ``protocol`` (PCP: those made with ``nonce``)."""
        check_protocol(protocol)
        self._decide()
        return self.active.delete_all(protocol, nonce)

    def holds(self, protocol: str, external_port: int, internal_port: int) -> Optional[bool]:
        """Whether the gateway's table has this host's mapping of ``external_port`` to ``internal_port``
        (read-only); None where the method in use cannot tell."""
        self._decide()
        return self.active.holds(protocol, external_port, internal_port)

    def unrecorded(self, protocol: str, external_port: int) -> Optional[Any]:
        """This host's mapping of ``external_port`` (any internal port) in the gateway's table, read-only;
        None when the gateway has none, or it is another host's, or the method in use cannot tell."""
        self._decide()
        return self.active.unrecorded(protocol, external_port)

    def table(self, limit: int = 1024, seconds: float = 10.0) -> Tuple[List[Any], bool]:
        """The gateway's mappings, at most ``limit`` within ``seconds``, and whether the list was cut.

        When the method in use cannot list, another method the gateway was heard to speak (or
        kept in the ledger) lists it, the method in use unchanged.  PortmapError when none can."""
        self._decide()
        try:
            return self.active.table(limit, seconds)
        except CannotList:
            pass
        for name in methods.NAMES:
            other = self._beside(name) if name != self.method else None
            if other is not None:
                try:
                    return other.table(limit, seconds)
                except CannotList:
                    continue
        listing = [methods.title(name) for name in methods.NAMES if methods.load(name).table is not _cannot_list]
        raise PortmapError(f"gateway {self.gateway} speaks {methods.title(self.method)}, which cannot list the "
                           f"gateway's mappings (only {' and '.join(listing)} can), and no "
                           f"{' or '.join(listing)} of it answered")

    def own_address(self) -> str:
        """This host's address as the gateway's table shows it; "" without one."""
        for speaker in [self.active] + [s for s in self._speakers.values() if s is not self.active]:
            address = speaker.own_address() if speaker is not None else ""
            if address:
                return address
        return ""

    def probe(self, settle: bool = True, brief: bool = False) -> Detection:
        """What the gateway speaks, read-only.

        Under ``auto`` every method is asked at once and, with ``settle``, heard out
        (``detect``; ``brief``: for as long as the choice took, at least ``detect.BRIEF``, as the
        command's ``public`` does); without, the asking ends at the choice and a method not heard
        out is "not heard out".  The one chosen is then the method in use; one whose detection
        answer tells no public address is asked for it, and its outcome is the error when that
        fails.  A forced method (or one a description URL chose) asks only its own.
        """
        if self.requested_method == AUTO and self.options["igd"] is None:
            found = self._detect(settle=settle, brief=brief)
            if self.active is not None and not self.active.detection_answers_public:
                self._confirm(found)
            return found
        found = Detection(self.method, {}, {}, {})
        self._confirm(found)
        return found

    def _confirm(self, found: Detection) -> None:
        try:
            self.active.confirm()
            found.outcomes[self.method] = "answered"
        except PortmapError as exc:
            found.outcomes[self.method] = str(exc)


_cannot_list = Method.table
