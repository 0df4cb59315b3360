# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which protocol a gateway speaks (method ``auto``): PCP, NAT-PMP and UPnP IGD asked at once.

A PCP ANNOUNCE and a NAT-PMP public address request (each on a socket of its own, to the
gateway's port 5351) and the IGD searches (unicast M-SEARCHes to the gateway's port 1900)
leave together, all read-only; the first two are sent again on RFC 6886's schedule (250 ms,
doubling), the searches once more at 250 ms.  All of it runs within the one deadline.  Chosen:

- PCP as soon as PCP answers (one round trip);
- NAT-PMP once NAT-PMP answered and PCP is refused (unsupported version, ICMP port
  unreachable), or has not answered within ``PCP_SHARE`` of the deadline;
- UPnP IGD once an IGD answered the search on the gateway's own address and PCP and
  NAT-PMP are refused, or have not answered ``UPNP_GRACE`` seconds after the start;
- otherwise the asking goes on until the deadline, so a gateway that answers PCP or
  NAT-PMP late, after retransmissions, is still found.

With ``settle`` (``natpmp_info``: which of the three the gateway speaks) the asking goes on
after the choice until every protocol has answered or been refused, for at most
``SETTLE`` seconds more.  Without, a PCP choice still waits up to ``LINGER`` seconds (or as
long as PCP's answer took) for NAT-PMP's answer, which tells the public address.  Replies are only taken from the gateway's address and port.
"""

from __future__ import annotations

import select

from . import wire_natpmp, wire_pcp, wire_ssdp
from .errors import MalformedPacket, PortmapError
from .records import field, record_class
from .transport import retransmission_schedule

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, Dict, List, Optional, Tuple

PCP, NATPMP, UPNP = wire_pcp.METHOD, wire_natpmp.METHOD, "upnp"
ORDER = (PCP, NATPMP, UPNP)  # preference
NAMES = {PCP: "PCP", NATPMP: "NAT-PMP", UPNP: "UPnP IGD"}
ASKED = {PCP: "PCP ANNOUNCE request", NATPMP: "NAT-PMP public address request",
         UPNP: "UPnP IGD search (unicast M-SEARCH to port 1900)"}
PCP_SHARE = 1 / 3  # of the deadline: how long a NAT-PMP answer waits for PCP's
UPNP_GRACE = 0.25  # seconds after the start: how long an IGD's answer waits for PCP's and NAT-PMP's
SETTLE = 0.5  # seconds after the choice that ``settle`` waits for the other protocols
LINGER = 0.02  # seconds (at least; or as long as PCP took) a PCP choice waits for NAT-PMP's address
BRIEF = 0.1  # seconds (at least) ``brief`` hears the others out: miniupnpd holds an M-SEARCH answer 50 ms
UNHEARD = "not heard out"  # a protocol still unanswered when another was chosen (not a failure)
SLICE = 0.01  # polling step when a source cannot be waited on with select (test doubles)


@record_class
class Probe:
    """One protocol's request in flight and what became of it."""

    method: str
    send: Callable[[], None]
    receive: Callable[[float], Any]
    fileno: Optional[Callable[[], int]]
    accept: Callable[[bytes, Tuple[str, int]], Any]  # the reply, None to ignore; raises to refuse
    outcome: Optional[str] = None  # None: no answer yet; "answered"; else why it is refused
    reply: Any = None
    seconds: float = 0.0
    sends: int = 0


@record_class
class Detection:
    """What the gateway answered: the method chosen (None: nothing answered) and each protocol's outcome."""

    method: Optional[str]
    replies: Dict[str, Any] = field(default_factory=dict)  # method -> parsed reply (UPnP: the SSDP answer)
    outcomes: Dict[str, str] = field(default_factory=dict)  # method -> "answered", or why not (no answer, refusal)
    seconds: Dict[str, float] = field(default_factory=dict)  # method -> when its outcome was known
    chosen_after: float = 0.0

    def speaks(self, method: str) -> Optional[bool]:
        outcome = self.outcomes.get(method)
        return None if outcome is None else outcome == "answered"

    def explain(self, where: str) -> str:
        parts = [self.outcomes[m] for m in ORDER if m in self.outcomes]
        return f"gateway {where} speaks none of PCP, NAT-PMP and UPnP IGD: {'; '.join(parts)}"


def _udp_probe(method: str, channel: Any, pending: Any, source: Tuple[str, int]) -> Probe:
    data = pending.encode(channel.local_address())

    def accept(datagram: bytes, sender: Tuple[str, int]) -> Any:
        if sender != source:
            return None
        version = wire_pcp.unsupported_version_answer(datagram)
        if version is not None:
            raise PortmapError(f"does not speak {NAMES[method]} (it answered the {ASKED[method]}: unsupported version, "
                               f"it speaks version {version})")
        return pending.match(datagram)

    return Probe(method, lambda: channel.send(data), channel.receive, getattr(channel, "fileno", None), accept)


def _ssdp_probe(datagrams: Any, gateway: str, accept_answer: Callable[[Any, Tuple[str, int]], bool]) -> Probe:
    destination = (gateway, wire_ssdp.PORT)
    searches = [wire_ssdp.encode_msearch(target, host=gateway) for target in wire_ssdp.SEARCH_TARGETS]

    def send() -> None:
        for search in searches:
            datagrams.send(search, destination)

    def accept(datagram: bytes, sender: Tuple[str, int]) -> Any:
        if sender[0] != gateway:
            return None
        message = wire_ssdp.decode(datagram)
        if message is None or message.kind != "response" or not accept_answer(message, sender):
            return None
        return message

    return Probe(UPNP, send, datagrams.receive, getattr(datagrams, "fileno", None), accept)


def detect(gateway: str, port: int, deadline: float, clock: Callable[[], float],
           channel_factory: Callable[[], Any], datagrams_factory: Callable[[], Any],
           accept_answer: Callable[[Any, Tuple[str, int]], bool], settle: bool = False, kept: bool = False,
           brief: bool = False) -> Detection:
    """Ask ``gateway`` in all three protocols at once; see the module's docstring for the choice.

    ``kept``: an IGD an earlier run found (kept in the ledger) stands in for the search: no SSDP is
    sent, and it is chosen (its reply None) as an IGD's answer would be, when PCP and NAT-PMP are
    refused or have not answered ``UPNP_GRACE`` seconds after the start.  ``brief`` (with ``settle``):
    the others are heard out for ``BRIEF`` seconds after the choice (or as long as the choice took),
    not ``SETTLE``: a gateway's answers on the LAN come within that, an IGD's included."""
    start = clock()
    budget = deadline - start
    opened: List[Any] = []
    probes: List[Probe] = []
    try:
        for method, pending in ((PCP, wire_pcp.announce_request()), (NATPMP, wire_natpmp.public_address_request())):
            channel = channel_factory()
            opened.append(channel)
            probes.append(_udp_probe(method, channel, pending, (gateway, port)))
        if kept:
            probes.append(Probe(UPNP, lambda: None, lambda _timeout: None, None, lambda _data, _source: None,
                                outcome="answered"))
        else:
            datagrams = datagrams_factory()
            opened.append(datagrams)
            probes.append(_ssdp_probe(datagrams, gateway, accept_answer))
        return _run(probes, start, budget, clock, settle, brief)
    finally:
        for thing in opened:
            thing.close()


def _choice(probes: Dict[str, Probe], now: float, start: float, budget: float) -> Optional[str]:
    """The protocol to take at ``now``, or None to go on asking (times compared as the clock gives
    them, the same sums as the waits use, so a wait always ends where a choice falls due)."""
    pcp, natpmp, upnp = probes[PCP], probes[NATPMP], probes[UPNP]

    def gave_up(probe: Probe, after: float) -> bool:
        return (probe.outcome is not None and probe.outcome != "answered") or (probe.outcome is None and now >= start + after)

    if pcp.outcome == "answered":
        return PCP
    if natpmp.outcome == "answered" and gave_up(pcp, budget * PCP_SHARE):
        return NATPMP
    if upnp.outcome == "answered" and gave_up(pcp, UPNP_GRACE) and gave_up(natpmp, UPNP_GRACE) \
            and natpmp.outcome != "answered":
        return UPNP
    return None


def _run(probes: List[Probe], start: float, budget: float, clock: Callable[[], float], settle: bool,
         brief: bool = False) -> Detection:
    by_method = {probe.method: probe for probe in probes}
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
                if probe.outcome is None and (probe.method != UPNP or sent < 2):
                    _send(probe, elapsed)
            sent += 1
        if chosen is None:
            chosen = _choice(by_method, now, start, budget)
            if chosen is not None:
                chosen_at = elapsed
                # how long after the choice the asking goes on (PCP chosen: NAT-PMP's answer, sent with
                # it, tells the public address ANNOUNCE does not)
                after = now + ((max(chosen_at, BRIEF) if brief else SETTLE) if settle else max(chosen_at, LINGER))
        pending = [p for p in probes if p.outcome is None]
        if settle:
            settled = not pending or now >= after
        else:
            settled = chosen != PCP or by_method[NATPMP].outcome is not None or now >= after
        if (chosen is not None and settled) or now >= start + budget or not pending:
            break
        limit = min(schedule[sent] if sent < len(schedule) else start + budget, start + budget)
        if chosen is None:  # the choice may fall due before anything arrives
            for due in (start + UPNP_GRACE, start + budget * PCP_SHARE):
                if due > now:
                    limit = min(limit, due)
        else:
            limit = min(limit, after)
        _receive(pending, max(limit - clock(), 0.0), clock, start)
    for probe in probes:
        if probe.outcome is None:
            probe.seconds = min(clock() - start, budget)
            if chosen is not None and not settle and ORDER.index(probe.method) > ORDER.index(chosen):
                probe.outcome = f"{UNHEARD} ({NAMES[chosen]} was chosen first)"
            else:
                probe.outcome = f"no answer to the {ASKED[probe.method]} within {probe.seconds:.3g} s ({probe.sends} sends)"
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
        return f"refused the {ASKED[probe.method]} (ICMP port unreachable: nothing listens there)"
    return f"unreachable for the {ASKED[probe.method]} ({exc.strerror or exc})"


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
