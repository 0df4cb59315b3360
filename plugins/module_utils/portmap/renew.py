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
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .client import Client
from .epoch import EpochObservation
from .errors import PortmapError
from .ledger import Entry, Ledger, LedgerData
from .reconcile import Undo, note_failure, record, walk

HOOK_TIMEOUT = 60


@dataclass
class Change:
    """A mapping whose public endpoint moved."""

    entry: Entry
    previous_external_port: int
    previous_public_address: str

    def environment(self) -> Dict[str, str]:
        e = self.entry
        return {
            "PORTMAP_GATEWAY": e.gateway,
            "PORTMAP_PROTOCOL": e.protocol,
            "PORTMAP_INTERNAL_PORT": str(e.internal_port),
            "PORTMAP_EXTERNAL_PORT": str(e.external_port),
            "PORTMAP_PUBLIC_ADDRESS": e.public_address,
            "PORTMAP_LIFETIME": str(e.lifetime),
            "PORTMAP_PREVIOUS_EXTERNAL_PORT": str(self.previous_external_port),
            "PORTMAP_PREVIOUS_PUBLIC_ADDRESS": self.previous_public_address,
        }


@dataclass
class Report:
    renewed: int = 0
    kept: int = 0
    failed: int = 0
    hook_failed: int = 0
    rebooted_gateways: List[str] = field(default_factory=list)
    changes: List[Change] = field(default_factory=list)


class Renewer:
    def __init__(
        self,
        ledger: Ledger,
        client_factory: Callable[[str, Optional[EpochObservation]], Client],
        log: Callable[[str], None],
        on_change: Optional[Sequence[str]] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.client_factory = client_factory
        self.log = log
        self.on_change = list(on_change) if on_change else None
        self.clock = clock

    def run(self, force: bool = False) -> Report:
        report = Report()
        clients: Dict[str, Client] = {}
        with self.ledger.transaction(Undo(clients.get)) as data:
            for gateway in sorted({e.gateway for e in data.entries}):
                self._gateway(data, gateway, force, report, clients)
        for change in report.changes:
            self._hook(change, report)
        return report

    def _due(self, entry: Entry, client: Client, now: float, force: bool) -> Optional[str]:
        if force:
            return "renewal asked for (--now)"
        if client.rebooted or client.lost_since(entry.epoch):
            return "gateway lost its mappings"
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
            public = client.public_address()
        except PortmapError as exc:
            now = self.clock()
            for key in keys:
                note_failure(data, key, str(exc), now)
            report.failed += len(keys)
            self.log(f"gateway {gateway}: {exc}; {len(keys)} mapping(s) not renewed")
            return
        if client.rebooted:
            report.rebooted_gateways.append(gateway)
            self.log(f"gateway {gateway} lost its mappings (epoch {public.epoch}); re-creating {len(keys)}")
        outcomes: Dict[Tuple[str, str, int], str] = {}  # kept | renewed | failed (the last word counts)
        first_seen: Dict[Tuple[str, str, int], Tuple[int, str]] = {}  # the endpoint before this run

        def handle(key: Tuple[str, str, int]) -> bool:
            entry = data.find(*key)
            assert entry is not None
            first_seen.setdefault(key, (entry.external_port, entry.public_address))
            reason = self._due(entry, client, self.clock(), force)
            if reason is None:
                outcomes[key] = "kept"
                return False
            outcomes[key], lost = self._renew(data, entry, client, public.address, reason)
            return lost

        def restart(done: List[Tuple[str, str, int]]) -> None:
            if gateway not in report.rebooted_gateways:
                report.rebooted_gateways.append(gateway)
            self.log(f"gateway {gateway} lost its mappings during the renewal (epoch {client.epoch.epoch}); "
                     f"re-creating the {len(done)} handled before")

        walk(keys, handle, restart)
        for outcome in outcomes.values():
            setattr(report, outcome, getattr(report, outcome) + 1)
        for key, (port, address) in first_seen.items():
            entry = data.find(*key)
            if entry is not None and (port, address) != (entry.external_port, entry.public_address):
                report.changes.append(Change(entry, port, address))

    def _renew(self, data: LedgerData, entry: Entry, client: Client, public_address: Optional[str],
               reason: str) -> Tuple[str, bool]:
        """Renew one mapping: its outcome, and whether the reply showed a gateway reboot."""
        what = f"{entry.protocol.upper()} internal port {entry.internal_port}"
        try:
            granted = client.map(entry.protocol, entry.internal_port, entry.requested_external_port,
                                 entry.requested_lifetime, nonce=entry.nonce, made_with=entry.method)
        except PortmapError as exc:
            note_failure(data, entry.key, str(exc), self.clock())
            self.log(f"renewal of {what} on {entry.gateway} failed: {exc}")
            return "failed", False
        renewed = record(data, client, entry.protocol, entry.internal_port, entry.requested_external_port,
                         entry.requested_lifetime, granted, public_address, self.clock())
        self.log(f"renewed {what} on {entry.gateway} ({reason}): {renewed.public_address}:{granted.external_port} "
                 f"for {granted.lifetime} s")
        return "renewed", granted.rebooted

    def _hook(self, change: Change, report: Report) -> None:
        entry = change.entry
        self.log(f"public endpoint of {entry.protocol.upper()} internal port {entry.internal_port} changed: "
                 f"{change.previous_public_address}:{change.previous_external_port} -> "
                 f"{entry.public_address}:{entry.external_port}")
        if not self.on_change:
            return
        env = dict(os.environ)
        env.update(change.environment())
        try:
            result = subprocess.run(self.on_change, env=env, timeout=HOOK_TIMEOUT, check=False,
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True)
        except (OSError, subprocess.SubprocessError) as exc:
            report.hook_failed += 1
            self.log(f"on-change hook {self.on_change[0]} could not run: {exc}")
            return
        if result.returncode != 0:
            report.hook_failed += 1
            self.log(f"on-change hook {self.on_change[0]} exited {result.returncode}: {result.stderr.strip()[:200]}")
        else:
            self.log(f"on-change hook {self.on_change[0]} ran")
