# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The renewal job: keep every mapping of the ledger alive.

At every run it asks each gateway for its public address (one request; PCP: ANNOUNCE), whose epoch
shows whether the gateway lost its mappings; then, one request at a time, it re-creates
every mapping of a gateway that lost them, and renews each mapping with less than half
of its granted lifetime left (every mapping with ``force``).  The ledger is updated under
the per-host lock, with the last result of each mapping.  When a granted external port
or the public address changes, the on-change hook runs.  A reply that shows the gateway
rebooted in the middle of a run sends the job back over the mappings it handled before
(they are gone again; ``reconcile.walk``).  When the ledger cannot be written at the end,
the mappings made anew are deleted again (``reconcile.Undo``) and renewals keep their
old entry.
"""

from __future__ import annotations

import os
import time

from .client import Client
from .epoch import EpochObservation
from .errors import PortmapError
from .ledger import Entry, Ledger, LedgerData
from .reachability import assess
from .reconcile import (Undo, enter, gone, note_failure, port_to_suggest, remember, request, resume, split_ports,
                        superseded, walk)
from .records import field, record_class

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Callable, Collection, Dict, List, Optional, Sequence, Set, Tuple

HOOK_TIMEOUT = 60


@record_class
class Change:
    """A public endpoint the on-change hook has not been told yet: one mapping, or the TCP and
    UDP halves of ``protocol: both`` when they moved together."""

    entries: List[Entry]

    @property
    def entry(self) -> Entry:
        return self.entries[0]

    @property
    def protocol(self) -> str:
        return "both" if len(self.entries) > 1 else self.entry.protocol

    def environment(self) -> Dict[str, str]:
        e = self.entry
        told = e.notified
        return {
            "PORTMAP_GATEWAY": e.gateway,
            "PORTMAP_PROTOCOL": self.protocol,
            "PORTMAP_INTERNAL_PORT": str(e.internal_port),
            "PORTMAP_EXTERNAL_PORT": str(e.external_port),
            "PORTMAP_PUBLIC_ADDRESS": e.public_address,
            "PORTMAP_LIFETIME": str(min(x.lifetime for x in self.entries)),
            "PORTMAP_PREVIOUS_EXTERNAL_PORT": str(told.external_port) if told else "",
            "PORTMAP_PREVIOUS_PUBLIC_ADDRESS": told.public_address if told else "",
        }

    def line(self) -> str:
        told = self.entry.notified
        before = f"{told.public_address}:{told.external_port}" if told else "(new)"
        return (f"public endpoint of {self.protocol.upper()} internal port {self.entry.internal_port} on "
                f"{self.entry.gateway}: {before} -> {self.entry.public_address}:{self.entry.external_port}")


def untold(data: LedgerData) -> List[Change]:
    """The endpoints the hook has not heard of, whoever made them (the module, the command or the job).

    A mapping whose last request failed waits until it is granted again; the two halves
    of ``protocol: both`` with one endpoint make one change.
    """
    groups: Dict[Tuple[str, int, bool], List[Entry]] = {}
    for entry in data.entries:
        if entry.last_renewal is not None and not entry.last_renewal.ok:
            continue
        if entry.notified == entry.endpoint:
            continue
        paired = entry.same_port and data.find(entry.gateway, "udp" if entry.protocol == "tcp" else "tcp",
                                               entry.internal_port) is not None
        groups.setdefault((entry.gateway, entry.internal_port, paired), []).append(entry)
    changes: List[Change] = []
    for (_gateway, _port, paired), entries in sorted(groups.items()):
        if paired and len(entries) == 2 and entries[0].endpoint == entries[1].endpoint \
                and entries[0].notified == entries[1].notified:
            changes.append(Change(entries))
        else:
            changes.extend(Change([entry]) for entry in entries)
    return changes


@record_class
class Report:
    renewed: int = 0
    kept: int = 0
    failed: int = 0
    hook_failed: int = 0
    rebooted_gateways: List[str] = field(default_factory=list)
    changes: List[Change] = field(default_factory=list)  # told to the hook, or logged when there is none


class Renewer:
    def __init__(
        self,
        ledger: Ledger,
        client_factory: Callable[[str, Optional[EpochObservation]], Client],
        log: Callable[[str], None],
        on_change: Optional[Sequence[str]] = None,
        clock: Callable[[], float] = time.time,
        logged: Optional[Set[Tuple[object, ...]]] = None,
    ) -> None:
        """``logged``: the changes already logged (the watch's, kept across its passes), each logged once;
        without it (the renewal job, one pass per process) every untold change is logged at every run."""
        self.ledger = ledger
        self.logged = logged
        self.client_factory = client_factory
        self.log = log
        self.on_change = list(on_change) if on_change else None
        self.clock = clock

    def run(self, force: bool = False, gateways: Optional[Collection[str]] = None) -> Report:
        """One pass over the ledger's gateways (only ``gateways`` when given, as the watch asks)."""
        report = Report()
        clients: Dict[str, Client] = {}
        with self.ledger.transaction(Undo(clients.get)) as data:
            for gateway in sorted({e.gateway for e in data.entries}):
                if gateways is None or gateway in gateways:
                    self._gateway(data, gateway, force, report, clients)
            report.changes = untold(data)
            lines = [change.line() for change in report.changes]
            if not self.on_change:  # nobody to tell: the change is logged (below) and recorded as told, so once
                for change in report.changes:
                    for entry in change.entries:
                        entry.notified = entry.endpoint
        if not self.on_change:
            for change, line in zip(report.changes, lines):
                if self.logged is not None:
                    mark = tuple((e.key, e.external_port, e.public_address) for e in change.entries)
                    if mark in self.logged:
                        continue
                    self.logged.add(mark)
                self.log(line)
            return report
        told = [change for change in report.changes if self._hook(change, report)]
        if told:
            with self.ledger.transaction() as data:
                for change in told:
                    for entry in change.entries:
                        current = data.find(*entry.key)
                        if current is not None and current.endpoint == entry.endpoint:
                            current.notified = entry.endpoint
        return report

    def _due(self, entry: Entry, client: Client, now: float, force: bool) -> Optional[str]:
        if force:
            return "renewal asked for (--now)"
        if client.rebooted or client.lost_since(entry.epoch):
            return "gateway lost its mappings"
        if gone(client, entry):
            return f"the {'permanent ' if entry.permanent else ''}mapping is gone from the gateway's table"
        if entry.permanent:  # no lease to run out, and still there
            return None
        if entry.expired(now):
            return "expired"
        if entry.time_left(now) < entry.lifetime / 2:
            return f"{entry.time_left(now):.0f} s of {entry.lifetime} s left"
        return None

    def _gateway(self, data: LedgerData, gateway: str, force: bool, report: Report, clients: Dict[str, Client]) -> None:
        keys = [e.key for e in data.for_gateway(gateway)]
        try:
            client = self.client_factory(gateway, data.last_epoch(gateway))
            clients[gateway] = client
            resume(data, client)
            public = client.public_address()
        except PortmapError as exc:
            now = self.clock()
            for key in keys:
                note_failure(data, key, str(exc), now)
            report.failed += len(keys)
            self.log(f"gateway {gateway}: {exc}; {len(keys)} mapping(s) not renewed")
            return
        recorded = next((e.public_address for e in data.for_gateway(gateway) if e.public_address), None)
        for warning in assess(public.address or recorded).warnings:
            self.log(f"gateway {gateway}: {warning}")
        if client.rebooted:
            report.rebooted_gateways.append(gateway)
            self.log(f"gateway {gateway} lost its mappings (epoch {public.epoch}); re-creating {len(keys)}")
        outcomes: Dict[Tuple[str, str, int], str] = {}  # kept | renewed | failed (the last word counts)

        def handle(key: Tuple[str, str, int]) -> bool:
            entry = data.find(*key)
            if entry is None:  # not reached: the keys are this gateway's entries, and a pass removes none
                raise RuntimeError(f"ledger entry {key} vanished during the renewal")
            reason = self._due(entry, client, self.clock(), force)
            if reason is None:
                outcomes[key] = "kept"
                return False
            partner = data.find(gateway, "tcp", entry.internal_port) if entry.same_port and entry.protocol == "udp" \
                else None
            if partner is not None and outcomes.get(partner.key) != "renewed":
                partner = None  # one port is sought when both halves are asked again in this pass
            outcomes[key], lost = self._renew(data, entry, client, public.address, reason, partner)
            return lost

        def restart(done: List[Tuple[str, str, int]]) -> None:
            if gateway not in report.rebooted_gateways:
                report.rebooted_gateways.append(gateway)
            self.log(f"gateway {gateway} lost its mappings during the renewal (epoch {client.epoch.epoch}); "
                     f"re-creating the {len(done)} handled before")

        walk(keys, handle, restart)
        remember(data, client)
        for outcome in outcomes.values():
            setattr(report, outcome, getattr(report, outcome) + 1)

    def _renew(self, data: LedgerData, entry: Entry, client: Client, public_address: Optional[str],
               reason: str, partner: Optional[Entry] = None) -> Tuple[str, bool]:
        """Renew one mapping: its outcome, and whether the reply showed a gateway reboot.

        ``partner`` is the TCP half of ``protocol: both``, renewed just before this UDP half:
        UDP asks for its port, and the two are moved onto one port when the gateway grants another.
        """
        what = f"{entry.protocol.upper()} internal port {entry.internal_port}"
        # the port this host holds (RFC 6886 section 3.3), so no second mapping is made; the UDP half of
        # protocol both follows its TCP half
        suggested = port_to_suggest(entry, entry.requested_external_port, partner)
        try:
            granted, _released = request(client, data, entry, entry, entry.protocol, entry.internal_port, suggested,
                                         entry.requested_lifetime, partner, public_address, self.clock)
            left = superseded(client, entry, granted)
            if left:
                self.log(left)
        except PortmapError as exc:
            note_failure(data, entry.key, str(exc), self.clock())
            self.log(f"renewal of {what} on {entry.gateway} failed: {exc}")
            return "failed", False
        renewed = enter(data, client, entry.protocol, entry.internal_port, entry.requested_external_port,
                        entry.requested_lifetime, granted, public_address, self.clock(), same_port=entry.same_port)
        if partner is not None:
            split = split_ports([data.find(*partner.key) or partner, renewed])
            if split:
                self.log(split)
        self.log(f"renewed {what} on {entry.gateway} ({reason}): {renewed.public_address}:{granted.external_port} "
                 f"for {granted.lifetime} s")
        return "renewed", granted.rebooted

    def _hook(self, change: Change, report: Report) -> bool:
        """Tell the hook of one change; whether it ran and succeeded (else it is told again next run)."""
        if not self.on_change:
            return False
        import subprocess  # pylint: disable=import-outside-toplevel  # only runs that tell a hook pay for it

        self.log(change.line())
        env = dict(os.environ)
        env.update(change.environment())
        try:
            # The job runs outside Ansible: no AnsibleModule.run_command here.
            result = subprocess.run(self.on_change, env=env, timeout=HOOK_TIMEOUT, check=False,  # pylint: disable=ansible-bad-function
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True)
        except (OSError, subprocess.SubprocessError) as exc:
            report.hook_failed += 1
            self.log(f"on-change hook {self.on_change[0]} could not run: {exc}; it is told again at the next run")
            return False
        if result.returncode != 0:
            report.hook_failed += 1
            self.log(f"on-change hook {self.on_change[0]} exited {result.returncode}: {result.stderr.strip()[:200]}; "
                     "it is told again at the next run")
            return False
        self.log(f"on-change hook {self.on_change[0]} ran")
        return True
