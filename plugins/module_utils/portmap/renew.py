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
(they are gone again), at most ``MAX_RESTARTS`` times.
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
from .ledger import Entry, Ledger, LedgerData, Renewal

HOOK_TIMEOUT = 60
MAX_RESTARTS = 3  # reboots during one run that send the job back over what it had done


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
        with self.ledger.transaction() as data:
            for gateway in sorted({e.gateway for e in data.entries}):
                self._gateway(data, gateway, force, report)
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

    def _gateway(self, data: LedgerData, gateway: str, force: bool, report: Report) -> None:
        entries = data.for_gateway(gateway)
        try:
            client = self.client_factory(gateway, data.last_epoch(gateway))
            public = client.public_address()
        except PortmapError as exc:
            now = self.clock()
            for entry in entries:
                entry.last_renewal = Renewal(now, False, str(exc))
            report.failed += len(entries)
            self.log(f"gateway {gateway}: {exc}; {len(entries)} mapping(s) not renewed")
            return
        if client.rebooted:
            report.rebooted_gateways.append(gateway)
            self.log(f"gateway {gateway} lost its mappings (epoch {public.epoch}); re-creating {len(entries)}")
        outcomes: Dict[int, str] = {}  # entry index -> kept | renewed | failed (the last word counts)
        changes: Dict[int, Change] = {}
        queue, done, restarts = list(range(len(entries))), [], 0
        while queue:
            index = queue.pop(0)
            entry = entries[index]
            reason = self._due(entry, client, self.clock(), force)
            if reason is None:
                outcomes[index] = "kept"
            else:
                outcome, lost, change = self._renew(entry, client, public.address, reason)
                outcomes[index] = outcome
                if change is not None:
                    first = changes.get(index)  # a mapping made twice keeps its first previous endpoint
                    changes[index] = Change(entry, first.previous_external_port, first.previous_public_address) \
                        if first else change
                if lost and done and restarts < MAX_RESTARTS:
                    # The gateway rebooted during this run: what was renewed before is gone again.
                    restarts += 1
                    if gateway not in report.rebooted_gateways:
                        report.rebooted_gateways.append(gateway)
                    self.log(f"gateway {gateway} lost its mappings during the renewal (epoch {client.epoch.epoch}); "
                             f"re-creating the {len(done)} handled before")
                    queue, done = done + queue, []
            done.append(index)
        for outcome in outcomes.values():
            setattr(report, outcome, getattr(report, outcome) + 1)
        report.changes.extend(change for change in changes.values()
                              if (change.previous_external_port, change.previous_public_address)
                              != (change.entry.external_port, change.entry.public_address))

    def _renew(self, entry: Entry, client: Client, public_address: Optional[str],
               reason: str) -> Tuple[str, bool, Optional[Change]]:
        """Renew one mapping: its outcome, whether the reply showed a gateway reboot, its endpoint change."""
        what = f"{entry.protocol.upper()} internal port {entry.internal_port}"
        try:
            granted = client.map(entry.protocol, entry.internal_port, entry.requested_external_port,
                                 entry.requested_lifetime, nonce=entry.nonce, made_with=entry.method)
        except PortmapError as exc:
            entry.last_renewal = Renewal(self.clock(), False, str(exc))
            self.log(f"renewal of {what} on {entry.gateway} failed: {exc}")
            return "failed", False, None
        now = self.clock()
        public_address = granted.public_address or public_address or entry.public_address
        previous_port, previous_address = entry.external_port, entry.public_address
        entry.external_port = granted.external_port
        entry.lifetime = granted.lifetime
        entry.granted_at = now
        entry.expires_at = now + granted.lifetime
        entry.epoch = client.epoch
        entry.public_address = public_address
        entry.method = granted.method
        entry.nonce = granted.nonce
        entry.last_renewal = Renewal(now, True, "")
        self.log(f"renewed {what} on {entry.gateway} ({reason}): {public_address}:{granted.external_port} "
                 f"for {granted.lifetime} s")
        changed = (previous_port, previous_address) != (granted.external_port, public_address)
        return "renewed", granted.rebooted, Change(entry, previous_port, previous_address) if changed else None

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
            # The job runs outside Ansible: no AnsibleModule.run_command here.
            result = subprocess.run(self.on_change, env=env, timeout=HOOK_TIMEOUT, check=False,  # pylint: disable=ansible-bad-function
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
