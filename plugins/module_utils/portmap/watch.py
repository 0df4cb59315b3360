# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watch: the renewal job as one long-running process that also hears the gateways.

``portmap-natpmp watch`` keeps the ledger's mappings alive by itself, with the renewal job's
code (``renew.Renewer``, one gateway at a time), at these moments:

- each mapping at the point its method recommends within its granted lifetime
  (``Method.renewal_spread`` after the half): the half for NAT-PMP (RFC 6886 section 3.3) and
  UPnP IGD, a random point between 1/2 and 5/8 of it for PCP (RFC 6887 section 11.2.1);
- when its gateway announces something (``announce``), as the method of its mappings decides
  (``Method.heard``): NAT-PMP restores at once (RFC 6886 section 3.2.1), PCP after a random
  wait of 0 to 5 s (RFC 6887 section 14.1.3, so a restarted gateway is not flooded), UPnP IGD
  looks at the gateway on ``ssdp:alive`` with a new BOOTID;
- for gateways whose method has no reliable announcements (``Method.periodic_check``: UPnP
  IGD), every ``upnp_check`` seconds as well (uptime and the table are looked at; many home
  routers send no NOTIFY);
- again after a failure, backing off from 0.5 s to a minute (the gateway may be gone for a
  long while: the watch never spins and never exits for it), but never waiting more than a
  third of the time the next lease to end has left (at least 0.2 s), so a renewal that needed
  more than one try still comes in time.

The ledger file is looked at every second and read again when it changed (a module or the
command added a mapping).  A ledger that cannot be read or written is logged once, and the
last good content is kept and renewed on the gateway (without being recorded) until the file
is good again.  ``stop()`` (SIGTERM) ends the loop between two actions: a renewal under way
is finished and recorded first.
"""

from __future__ import annotations

import os
import random
import select
import socket
import time
from contextlib import contextmanager

from .methods import registry as methods
from .announce import Listener, local_address_toward
from .epoch import EpochObservation
from .ledger import LedgerData, LedgerError
from .records import record_class
from .renew import Renewer

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

POINT_MARGIN = 0.05  # past the half, so the renewal job's rule (less than half left) holds
POLL = 1.0  # how often the ledger file is looked at
BACKOFF_FIRST, BACKOFF_CAP = 0.5, 60.0
URGENT_MIN = 0.2  # the shortest wait after a failure, while a lease is about to end
MIN_GAP = 0.2  # between two passes over one gateway, whatever asks for them
UPNP_CHECK = 60.0  # seconds between the periodic checks of a method that asks for them
IGNORED_LOG_GAP = 60.0  # one line a minute about announcements from other addresses


@record_class
class GatewayView:
    """What a method is told of a gateway when it hears an announcement from it (``Method.heard``)."""

    entries: List[Any]  # the ledger's mappings on the gateway
    methods: List[str]  # their methods
    previous_epoch: Optional[EpochObservation]  # the newest epoch the ledger holds for it
    last_pass: float  # when the watch last passed over it (0: never)
    now: float
    rng: Any
    memo: Dict[str, Any]  # the method's own notes on this gateway, kept between announcements

    @staticmethod
    def method(name: str) -> Any:
        return methods.load(name)


class KeptLedger:
    """The last good ledger content, in memory: what is renewed while the file is bad is not recorded."""

    def __init__(self, data: LedgerData, path: str) -> None:
        self.data = data
        self.path = path

    @contextmanager
    def transaction(self, undo: Any = None) -> Iterator[LedgerData]:  # pylint: disable=unused-argument
        yield self.data


class Watcher:  # pylint: disable=too-many-instance-attributes
    def __init__(
        self,
        ledger: Any,
        client_factory: Callable[..., Any],
        log: Callable[[str], None],
        on_change: Optional[Sequence[str]] = None,
        source_address: Optional[str] = None,
        upnp_check: float = UPNP_CHECK,
        rng: Optional[random.Random] = None,
        clock: Callable[[], float] = time.time,
        listener_factory: Callable[..., Any] = Listener,
        poll: float = POLL,
    ) -> None:
        self.ledger = ledger
        self.client_factory = client_factory
        self.log = log
        self.on_change = list(on_change) if on_change else None
        self.source_address = source_address
        self.upnp_check = upnp_check
        self.rng = rng or random.Random()
        self.clock = clock
        self.listener_factory = listener_factory
        self.poll = poll
        self.stopping = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.data = LedgerData()
        self.kept = False  # the file is bad: self.data is the last good content
        self._stamp: Optional[Tuple[int, ...]] = None
        self._bad_stamp: Optional[Tuple[int, ...]] = None
        self.listener: Any = None
        self._listening: Optional[Tuple[Any, ...]] = None
        self.pending: Dict[str, Tuple[float, str, bool]] = {}  # gateway -> (when, why, force)
        self.failures: Dict[str, int] = {}
        self.retry_at: Dict[str, float] = {}
        self.last_pass: Dict[str, float] = {}
        self.memo: Dict[Tuple[str, str], Dict[str, Any]] = {}  # (gateway, method) -> the method's notes
        self._spread: Dict[Tuple[Tuple[str, str, int], float], float] = {}
        self._ignored_logged = 0.0
        self.logged: Set[Tuple[object, ...]] = set()  # changes logged (no hook): each once

    # ------------------------------------------------------------------ control (signal handlers)

    def stop(self) -> None:
        """End the loop after the action under way (safe in a signal handler)."""
        self.stopping = True
        self.wake()

    def wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        self.reload(force=True)
        gateways = self.gateways()
        self.log(f"watch: started; ledger {self.ledger.path}: {len(self.data.entries)} mapping(s) on "
                 f"{len(gateways)} gateway(s){' (' + ', '.join(gateways) + ')' if gateways else ''}")
        self._listen()
        for gateway in gateways:  # a reboot while the watch was not running is caught at once
            self.pending[gateway] = (self.clock(), "start", False)
        try:
            while not self.stopping:
                self.step()
        finally:
            if self.listener is not None:
                self.listener.close()
            self._wake_r.close()
            self._wake_w.close()
        self.log("watch: stopped")
        return 0

    def step(self) -> None:
        """One turn: the ledger looked at, what is due done, then a wait for the next moment or a datagram."""
        self.reload()
        self._listen()
        for gateway in self.due(self.clock()):
            if self.stopping:
                return
            self.act(gateway)
        if self.stopping:
            return
        wait = max(0.0, min(self.next_moment(self.clock()) - self.clock(), self.poll))
        fds = (self.listener.filenos() if self.listener is not None else []) + [self._wake_r.fileno()]
        try:
            ready, _w, _x = select.select(fds, [], [], wait)
        except InterruptedError:
            return
        if self._wake_r.fileno() in ready:
            try:
                while self._wake_r.recv(64):
                    pass
            except (BlockingIOError, OSError):
                pass
        if self.listener is not None and ready:
            for heard in self.listener.receive(ready):
                self.heard(heard)
            self._log_ignored()

    # ------------------------------------------------------------------ the ledger

    def reload(self, force: bool = False) -> None:
        try:
            info = os.stat(self.ledger.path)
            stamp: Optional[Tuple[int, ...]] = (info.st_ino, info.st_mtime_ns, info.st_ctime_ns, info.st_size)
        except FileNotFoundError:
            stamp = None
        except OSError as exc:
            stamp = (-1, exc.errno or 0)
        if not force and stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            data = self.ledger.load()
        except LedgerError as exc:
            if stamp != self._bad_stamp:
                self._bad_stamp = stamp
                self.log(f"watch: {exc}; keeping the last good one ({len(self.data.entries)} mapping(s)) and "
                         "renewing those until the file is good again")
            self.kept = True
            return
        if self.kept:
            self.log(f"watch: ledger {self.ledger.path} is good again: {len(data.entries)} mapping(s)")
        elif not force and _keys(data) != _keys(self.data):
            self.log(f"watch: ledger changed: {len(data.entries)} mapping(s) on {len(_gateways(data))} gateway(s)")
        self.kept = False
        self._bad_stamp = None
        self.data = data
        live = {(e.key, e.expires_at) for e in data.entries}
        self._spread = {k: v for k, v in self._spread.items() if k in live}
        for gateway in list(self.pending):
            if gateway not in _gateways(data):
                del self.pending[gateway]

    def gateways(self) -> List[str]:
        return _gateways(self.data)

    def _listen(self) -> None:
        """(Re)open the listener when the gateways, or the methods of their mappings, changed."""
        gateways = self.gateways()
        kinds = tuple(name for name in methods.NAMES if any(e.method == name for e in self.data.entries))
        wanted = (tuple(gateways), kinds)
        if wanted == self._listening:
            return
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        self._listening = wanted
        if not gateways:
            return
        addresses = {gateway: local_address_toward(gateway, self.source_address) for gateway in gateways}
        self.listener = self.listener_factory(addresses, kinds)
        for problem in self.listener.problems:
            self.log(f"watch: {problem}; relying on the renewal points and periodic checks")
        heard: List[str] = []
        for kind in kinds:
            channel = methods.load(kind).announcements
            if channel is not None and channel[2] not in heard:
                heard.append(channel[2])
        self.log(f"watch: listening for {' and '.join(heard)} from {', '.join(gateways)}")

    # ------------------------------------------------------------------ when

    def point(self, entry: Any) -> Optional[float]:
        """When ``entry`` is renewed next (None: a permanent lease, looked at by the periodic check):
        past the half of its lifetime, by its method's spread (drawn once per grant)."""
        if entry.permanent:
            return None
        key = (entry.key, entry.expires_at)
        if key not in self._spread:
            self._spread[key] = methods.load(entry.method).renewal_spread(entry.lifetime, self.rng)
        return entry.expires_at - entry.lifetime / 2 + POINT_MARGIN + self._spread[key]

    def _earliest(self, gateway: str) -> Optional[float]:
        """When ``gateway`` is passed over next: its first renewal point or periodic check (not before
        the back-off after a failure), or the restore an announcement asked for (whatever the back-off)."""
        entries = self.data.for_gateway(gateway)
        moments = [p for p in (self.point(e) for e in entries) if p is not None]
        if any(methods.load(e.method).periodic_check for e in entries):
            moments.append(self.last_pass.get(gateway, self.clock()) + self.upnp_check)
        candidates = [max(min(moments), self.retry_at.get(gateway, 0.0))] if moments else []
        if gateway in self.pending:
            candidates.append(self.pending[gateway][0])
        if not candidates:
            return None
        return max(min(candidates), self.last_pass.get(gateway, 0.0) + MIN_GAP)

    def due(self, now: float) -> List[str]:
        return [g for g in self.gateways() if (self._earliest(g) or float("inf")) <= now]

    def next_moment(self, now: float) -> float:
        moments = [m for m in (self._earliest(g) for g in self.gateways()) if m is not None]
        return min(moments) if moments else now + self.poll

    # ------------------------------------------------------------------ what

    def act(self, gateway: str) -> None:
        """One pass of the renewal job over ``gateway``'s mappings."""
        _when, why, force = self.pending.pop(gateway, (0.0, "", False))
        ledger = KeptLedger(self.data, self.ledger.path) if self.kept else self.ledger
        renewer = Renewer(ledger, self.client_factory, self.log, self.on_change, clock=self.clock, logged=self.logged)
        try:
            report = renewer.run(force=force, gateways={gateway})
        except LedgerError as exc:
            if self.kept:
                raise  # not reached: the kept ledger raises nothing of its own
            self.log(f"watch: {exc}; renewing the last good content ({len(self.data.entries)} mapping(s)) "
                     "without recording it")
            self.kept = True
            self._bad_stamp = self._stamp
            report = Renewer(KeptLedger(self.data, self.ledger.path), self.client_factory, self.log, self.on_change,
                             clock=self.clock, logged=self.logged).run(force=force, gateways={gateway})
        now = self.clock()
        self.last_pass[gateway] = now
        if report.failed:
            count = self.failures[gateway] = self.failures.get(gateway, 0) + 1
            delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (count - 1), self._urgency(gateway, now))
            self.retry_at[gateway] = now + delay
            self.log(f"watch: gateway {gateway}: {report.failed} mapping(s) not renewed ({why or 'renewal point'}); "
                     f"trying again in {delay:.3g} s")
        else:
            if self.failures.pop(gateway, 0):
                self.log(f"watch: gateway {gateway} answers again")
            self.retry_at.pop(gateway, None)
        if not self.kept:
            self.reload(force=True)

    def _last_epoch(self, gateway: str) -> Optional[EpochObservation]:
        """The newest epoch the ledger holds for ``gateway``: of its mappings', or the gateway's own record."""
        known = self.data.gateways.get(gateway)
        seen = [o for o in (self.data.last_epoch(gateway), known.epoch if known is not None else None) if o]
        return max(seen, key=lambda o: o.seen_at) if seen else None

    def _urgency(self, gateway: str, now: float) -> float:
        """The back-off's limit while a lease of ``gateway`` still runs: a third of the time it has left
        (at least URGENT_MIN), so a few failed passes in a row still leave room for one that works."""
        left = [e.expires_at - now for e in self.data.for_gateway(gateway) if not e.permanent and e.expires_at > now]
        return max(URGENT_MIN, min(left) / 3) if left else BACKOFF_CAP

    def heard(self, heard: Any) -> None:
        """An announcement from a gateway of the ledger: what its mappings' method says to do, and when."""
        gateway = heard.source
        entries = self.data.for_gateway(gateway)
        names = [name for name in methods.NAMES if any(e.method == name for e in entries)]
        channel = methods.load(heard.kind).announcements
        if not any(methods.load(name).announcements == channel for name in names):
            return  # no mapping there uses a method that hears this announcement
        view = GatewayView(entries, names, self._last_epoch(gateway), self.last_pass.get(gateway, 0.0), self.clock(),
                           self.rng, self.memo.setdefault((gateway, heard.kind), {}))
        found = methods.load(heard.kind).heard(heard, view)
        if found is not None:
            self._schedule(gateway, found.at, found.why, found.force)

    def _schedule(self, gateway: str, at: float, why: str, force: bool) -> None:
        if gateway in self.pending:
            return  # already coming: the repeats of one announcement (RFC 6886 3.2.1) draw no new wait
        self.pending[gateway] = (at, why, force)
        self.log(f"watch: gateway {gateway}: {why}")

    def _log_ignored(self) -> None:
        listener = self.listener
        if listener is None or not listener.ignored:
            return
        now = self.clock()
        if now - self._ignored_logged >= IGNORED_LOG_GAP:
            self._ignored_logged = now
            self.log(f"watch: ignored {listener.ignored} announcement(s) not from a gateway of the ledger "
                     f"(the last: {listener.last_ignored})")
            listener.ignored = 0


def _gateways(data: LedgerData) -> List[str]:
    return sorted({e.gateway for e in data.entries})


def _keys(data: LedgerData) -> Set[Tuple[str, str, int]]:
    return {e.key for e in data.entries}
