# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which protocol a gateway speaks (method ``auto``): every registered method asked at once.

Each method makes its own request (``Method.probe``: a PCP ANNOUNCE and a NAT-PMP public
address request on sockets of their own, an SSDP M-SEARCH by unicast to the gateway's port
1900); all are sent on the retransmission schedule within one deadline, and the first method
in order of preference that answered is taken once every method preferred to it has given
up (refused, or no answer within the time the answer waits for them: ``Method.answer_wait``,
a third of the deadline for NAT-PMP, ``upnp.GRACE`` for UPnP IGD).  So:

- PCP as soon as PCP answers (one round trip);
- NAT-PMP once NAT-PMP answered and PCP is refused (unsupported version, ICMP port
  unreachable) or a third of the deadline has passed;
- UPnP IGD once an IGD answered the search on the gateway's own address and PCP and
  NAT-PMP are refused or the grace has passed;
- otherwise the asking goes on until the deadline, so a gateway that answers PCP or
  NAT-PMP late is still found.

With ``settle`` the others are heard out after the choice (``natpmp_info`` reports all),
``SETTLE`` seconds more.  Without, a chosen method still waits up to ``LINGER`` seconds (or as
long as its answer took) for the methods it lingers for (``Method.lingers_for``: PCP for
NAT-PMP's answer, which tells the public address).  Replies are only taken from the gateway's
address and port.
"""

from __future__ import annotations

import select

from .errors import MalformedPacket, PortmapError
from .methods.registry import NAMES, TITLES
from .methods.base import Probe
from .records import field, record_class
from .transport import retransmission_schedule

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, Dict, List, Optional, Tuple

SETTLE = 0.5  # seconds after the choice that ``settle`` waits for the other protocols
LINGER = 0.02  # seconds (at least; or as long as PCP took) a PCP choice waits for NAT-PMP's address
BRIEF = 0.1  # seconds (at least) ``brief`` hears the others out: miniupnpd holds an M-SEARCH answer 50 ms
UNHEARD = "not heard out"  # a protocol still unanswered when another was chosen (not a failure)
SLICE = 0.01  # polling step when a source cannot be waited on with select (test doubles)


@record_class
class Detection:
    """What the gateway answered: the method chosen (None: nothing answered) and each protocol's outcome."""

    method: Optional[str]
    replies: Dict[str, Any] = field(default_factory=dict)  # method -> parsed reply (UPnP: the SSDP answer)
    outcomes: Dict[str, str] = field(default_factory=dict)  # method -> "answered", or why not (no answer, refusal)
    seconds: Dict[str, float] = field(default_factory=dict)  # method -> when its outcome was known
    chosen_after: float = 0.0

    def view(self) -> Dict[str, Any]:
        """Per method, in order of preference: True (answered), None (not asked, or not heard out) or why not."""
        found: Dict[str, Any] = {}
        for name in NAMES:
            outcome = self.outcomes.get(name)
            found[name] = True if outcome == "answered" else \
                None if outcome is None or outcome.startswith(UNHEARD) else outcome
        return found

    def speaking(self) -> List[str]:
        """The methods that answered, in order of preference."""
        return [name for name, outcome in self.view().items() if outcome is True]

    def explain(self, where: str) -> str:
        parts = [self.outcomes[m] for m in NAMES if m in self.outcomes]
        titles = [TITLES[m] for m in NAMES]
        return f"gateway {where} speaks none of {', '.join(titles[:-1])} and {titles[-1]}: {'; '.join(parts)}"


def detect(speakers: List[Any], deadline: float, clock: Callable[[], float], settle: bool = False,
           brief: bool = False) -> Detection:
    """Ask the gateway in every method of ``speakers`` (in order of preference) at once; see the
    module's docstring for the choice.

    ``brief`` (with ``settle``): the others are heard out for ``BRIEF`` seconds after the choice
    (or as long as the choice took), not ``SETTLE``: a gateway's answers on the LAN come within
    that, an IGD's included."""
    start = clock()
    budget = deadline - start
    opened: List[Any] = []
    probes: List[Probe] = []
    try:
        for speaker in speakers:
            probe, closing = speaker.probe(settle)
            opened.extend(closing)
            probes.append(probe)
        return _run(probes, start, budget, clock, settle, brief)
    finally:
        for thing in opened:
            thing.close()


def _choice(probes: List[Probe], now: float, start: float, budget: float) -> Optional[str]:
    """The method to take at ``now``, or None to go on asking (times compared as the clock gives
    them, the same sums as the waits use, so a wait always ends where a choice falls due)."""

    def gave_up(probe: Probe, after: float) -> bool:
        return (probe.outcome is not None and probe.outcome != "answered") or (probe.outcome is None and now >= start + after)

    for index, probe in enumerate(probes):
        if probe.outcome == "answered":
            wait = probe.answer_wait(budget)
            if all(gave_up(preferred, wait) for preferred in probes[:index]):
                return probe.method
    return None


def _run(probes: List[Probe], start: float, budget: float, clock: Callable[[], float], settle: bool,
         brief: bool = False) -> Detection:
    by_method = {probe.method: probe for probe in probes}
    order = [probe.method for probe in probes]
    schedule = [start + offset for offset in retransmission_schedule(budget)]  # 0, 0.25, 0.75, 1.75 s ...
    sent = 0  # sends of the schedule done
    chosen: Optional[str] = None
    chosen_at = 0.0
    after = start + budget
    while True:
        now = clock()
        elapsed = now - start
        if sent < len(schedule) and now >= schedule[sent]:
            for probe in probes:
                if probe.outcome is None and (probe.sends_limit is None or sent < probe.sends_limit):
                    _send(probe, elapsed)
            sent += 1
        if chosen is None:
            chosen = _choice(probes, now, start, budget)
            if chosen is not None:
                chosen_at = elapsed
                # how long after the choice the asking goes on (for the answers the chosen method lingers for)
                after = now + ((max(chosen_at, BRIEF) if brief else SETTLE) if settle else max(chosen_at, LINGER))
        pending = [p for p in probes if p.outcome is None]
        if settle:
            settled = not pending or now >= after
        else:
            settled = chosen is not None and (now >= after or all(
                by_method[m].outcome is not None for m in by_method[chosen].lingers_for if m in by_method))
        if (chosen is not None and settled) or now >= start + budget or not pending:
            break
        limit = min(schedule[sent] if sent < len(schedule) else start + budget, start + budget)
        if chosen is None:  # the choice may fall due before anything arrives
            for probe in probes:  # when an answer's wait for the preferred ones ends
                due = start + probe.answer_wait(budget)
                if due > now:
                    limit = min(limit, due)
        else:
            limit = min(limit, after)
        _receive(pending, max(limit - clock(), 0.0), clock, start)
    for probe in probes:
        if probe.outcome is None:
            probe.seconds = min(clock() - start, budget)
            if chosen is not None and not settle and order.index(probe.method) > order.index(chosen):
                probe.outcome = f"{UNHEARD} ({TITLES[chosen]} was chosen first)"
            else:
                probe.outcome = f"no answer to the {probe.asked} within {probe.seconds:.3g} s ({probe.sends} sends)"
    return Detection(chosen, {p.method: p.reply for p in probes if p.outcome == "answered"},
                     {p.method: p.outcome for p in probes}, {p.method: round(p.seconds, 6) for p in probes},
                     round(chosen_at, 6))


def _send(probe: Probe, elapsed: float) -> None:
    try:
        probe.send()
        probe.sends += 1
    except OSError as exc:
        probe.outcome, probe.seconds = _refusal(probe, exc), elapsed


def _refusal(probe: Probe, exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"refused the {probe.asked} (ICMP port unreachable: nothing listens there)"
    return f"unreachable for the {probe.asked} ({exc.strerror or exc})"


def _receive(pending: List[Probe], timeout: float, clock: Callable[[], float], start: float) -> None:
    """Wait up to ``timeout`` for a datagram on any pending probe and take what arrived."""
    if not pending:
        return
    if all(probe.fileno is not None for probe in pending):
        try:
            ready, _w, _x = select.select([probe.fileno() for probe in pending], [], [], timeout)
        except (OSError, ValueError):
            ready = []
        ready_set = set(ready)
        for probe in pending:
            if probe.fileno() in ready_set:
                _take(probe, 0.0, clock, start)
        return
    end = clock() + timeout
    while True:  # test doubles: each in turn, a slice at a time
        for probe in pending:
            if probe.outcome is None and _take(probe, min(SLICE, max(end - clock(), 0.0)), clock, start):
                return
        if clock() >= end:
            return


def _take(probe: Probe, timeout: float, clock: Callable[[], float], start: float) -> bool:
    """Read one datagram of ``probe`` (within ``timeout``); True when its outcome is now known."""
    try:
        got = probe.receive(timeout)
    except OSError as exc:
        probe.outcome, probe.seconds = _refusal(probe, exc), clock() - start
        return True
    if got is None:
        return False
    datagram, source = got
    try:
        reply = probe.accept(datagram, source)
    except MalformedPacket:
        return False  # not an answer to this request
    except PortmapError as exc:
        probe.outcome, probe.seconds = str(exc), clock() - start
        return True
    if reply is None:
        return False
    probe.outcome, probe.reply, probe.seconds = "answered", reply, clock() - start
    return True
