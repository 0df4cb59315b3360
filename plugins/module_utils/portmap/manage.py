# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative mappings: bring the gateway and the ledger to what was asked.

This is what the modules call (they only translate options and results).  It
knows nothing of Ansible.  ``changed`` is honest: a refresh of a mapping that was
recorded, not expired, not lost in a gateway reboot, and granted the same external
port again is no change.  In check mode nothing that alters the gateway is sent:
the prediction comes from the ledger plus the read-only public address request.
"""

from __future__ import annotations

import time

from .client import DEFAULT_LIFETIME, MAX_LIFETIME, PROTOCOLS, Client
from .errors import GatewayTimeout, GatewayUnreachable, InputError, PortmapError
from .ledger import Entry, Ledger, LedgerData, LedgerWriteFailed
from .reachability import assess, nat_facts
from .reconcile import (Undo, enter, gone, note_failure, port_to_suggest, predicted, release, remember, request, resume,
                        split_ports, superseded, walk)
from .records import field, record_class

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, Dict, List, Optional, Sequence

PROTOCOL_CHOICES = PROTOCOLS + ("both",)
PERMANENT = ("gateway {gateway} takes permanent leases only (UPnP IGD error 725, or 402 to a lease): {what} stays "
             "mapped until it is deleted (state: absent); the renewal job checks at every run that it is still there")
TABLE_LIMIT, TABLE_SECONDS = 1024, 10.0  # natpmp_info's listing of a UPnP IGD's table


@record_class(frozen=True)
class Desired:
    protocol: str
    internal_port: int
    external_port: int
    lifetime: int
    same_port: bool = False  # protocol "both": TCP and UDP on one external port


class ApplyError(PortmapError):
    """Some requests failed; ``result`` holds what was done before and around them."""

    def __init__(self, message: str, result: Dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


def _int_in_range(where: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{where} must be an integer from {low} to {high}, got {value!r}")
    return value


def normalize(specs: Sequence[Dict[str, Any]], where: Callable[[int, str], str]) -> List[Desired]:
    """Validate mapping specs (the module's options) and expand protocol 'both'.

    ``where(index, field)`` names a field in error messages, e.g. ``mappings[2].lifetime``.
    """
    desired: List[Desired] = []
    seen: Dict[Any, int] = {}
    for index, spec in enumerate(specs):
        internal = _int_in_range(where(index, "internal_port"), spec.get("internal_port"), 1, 65535)
        external = spec.get("external_port")
        external = internal if external is None else _int_in_range(where(index, "external_port"), external, 0, 65535)
        lifetime = spec.get("lifetime")
        lifetime = DEFAULT_LIFETIME if lifetime is None else _int_in_range(where(index, "lifetime"), lifetime, 1, MAX_LIFETIME)
        protocol = spec.get("protocol") or "tcp"
        if protocol not in PROTOCOL_CHOICES:
            raise InputError(f"{where(index, 'protocol')} must be one of {', '.join(PROTOCOL_CHOICES)}, got {protocol!r}")
        for proto in PROTOCOLS if protocol == "both" else (protocol,):
            key = (proto, internal)
            if key in seen:
                raise InputError(
                    f"{where(index, 'internal_port')}: {proto}/{internal} is already declared by entry {seen[key]}"
                )
            seen[key] = index
            desired.append(Desired(proto, internal, external, lifetime, protocol == "both"))
    return desired


def iso(timestamp: float) -> str:
    """UTC, to the second: 2026-12-02T02:19:03+00:00 (time.strftime: datetime is slow to import)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(int(timestamp)))


def view(entry: Entry) -> Dict[str, Any]:
    """A mapping as shown in diffs: only what the user declares and the gateway grants."""
    return {
        "protocol": entry.protocol,
        "internal_port": entry.internal_port,
        "external_port": entry.external_port,
        "lifetime": entry.lifetime,
    }


def returned(entry: Entry, now: float) -> Dict[str, Any]:
    """A ledger entry as the modules return it."""
    last = entry.last_renewal
    return dict(
        view(entry),
        gateway=entry.gateway,
        method=entry.method,
        public_address=entry.public_address,
        granted_at=entry.granted_at,
        expires_at=entry.expires_at,
        expires=None if entry.permanent else iso(entry.expires_at),
        time_left=round(entry.time_left(now), 3),
        expired=entry.expired(now),
        permanent=entry.permanent,
        internal_client=entry.internal_client,
        description=entry.description,
        last_renewal=None if last is None else {"time": last.time, "ok": last.ok, "error": last.error},
    )


@record_class
class Outcome:
    """What one call of ``present`` or ``absent`` did, and what it returns."""

    client: Client
    now: float
    changed: bool = False
    before: List[Dict[str, Any]] = field(default_factory=list)
    results: List[Dict[str, Any]] = field(default_factory=list)
    removed: List[Dict[str, Any]] = field(default_factory=list)
    failures: List[str] = field(default_factory=list)
    public_address: Optional[str] = None
    recorded_public_address: Optional[str] = None  # the ledger's (PCP's ANNOUNCE tells no address)
    recorded_epoch: Optional[int] = None  # the ledger's, before this run
    warnings: List[str] = field(default_factory=list)

    def finish(self, data: LedgerData) -> Dict[str, Any]:
        gateway = self.client.gateway
        after = sorted((view(e) for e in data.for_gateway(gateway)), key=_sort_key)
        result = {
            "changed": self.changed,
            "gateway": gateway,
            # What the gateway said in this run; what the ledger knows is under "recorded".
            "public_address": self.public_address,
            "epoch": self.client.epoch.epoch if self.client.answered and self.client.epoch else None,
            "recorded": {
                "public_address": self.recorded_public_address,
                "epoch": self.recorded_epoch,
            },
            "gateway_rebooted": self.client.rebooted,
            "method": self.client.method,
            "mappings": self.results,
            "removed": self.removed,
            "diff": {"before": {"mappings": self.before}, "after": {"mappings": after}},
        }
        result.update(assess(self.public_address).as_dict())  # reachable, double_nat, warnings
        result["warnings"] = self.warnings + result["warnings"]
        return result


def _sort_key(item: Dict[str, Any]) -> Any:
    return (item["protocol"], item["internal_port"])


class Manager:
    def __init__(self, ledger: Ledger, client: Client, check_mode: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.ledger = ledger
        self.client = client
        self.check_mode = check_mode
        self.clock = clock

    # -------------------------------------------------------------- helpers

    def _start(self, data: LedgerData) -> Outcome:
        gateway = self.client.gateway
        if self.client.epoch is None:
            self.client.epoch = data.last_epoch(gateway)
        resume(data, self.client)
        run = Outcome(self.client, self.clock())
        run.before = sorted((view(e) for e in data.for_gateway(gateway)), key=_sort_key)
        run.recorded_public_address = next((e.public_address for e in data.for_gateway(gateway) if e.public_address), None)
        recorded_epoch = data.last_epoch(gateway)
        run.recorded_epoch = recorded_epoch.epoch if recorded_epoch else None
        return run

    def _lost(self, entry: Optional[Entry], now: float) -> bool:
        """Whether the recorded mapping is gone from the gateway (or never was).

        UPnP IGD can tell: its table is read (GetSpecificPortMappingEntry), so a mapping
        deleted on the router's pages, or lost in a restart, shows."""
        if entry is None or entry.expired(now) or self.client.lost_since(entry.epoch):
            return True
        return gone(self.client, entry)

    # -------------------------------------------------------------- present

    def _apply(self, body: Callable[[Outcome, LedgerData], None]) -> Dict[str, Any]:
        """Run ``body`` on the ledger's content: in a transaction, or (check mode) on a copy.

        The transaction proves the ledger can be written before the first request; if
        the write still fails afterwards, what the gateway granted is deleted again
        (``Undo``) and ``changed`` says whether the gateway is still different.
        """
        if self.check_mode:
            with self.ledger.lock:
                data = self.ledger.load()
                run = self._steps(data, body)
                return self._outcome(run, run.finish(data))
        undo = Undo(lambda gateway: self.client if gateway == self.client.gateway else None)
        run: Optional[Outcome] = None
        result: Dict[str, Any] = {}
        try:
            with self.ledger.transaction(undo) as data:
                run = self._steps(data, body)
                result = run.finish(data)
        except LedgerWriteFailed as exc:
            if run is None:
                raise
            result = dict(result, changed=undo.changed)
            raise ApplyError("; ".join(run.failures + [str(exc)]), result) from None
        return self._outcome(run, result)

    def _steps(self, data: LedgerData, body: Callable[[Outcome, LedgerData], None]) -> Outcome:
        run = self._start(data)
        try:
            body(run, data)
        except (GatewayTimeout, GatewayUnreachable) as exc:
            run.failures.append(str(exc))  # the gateway is gone: stop, keep what was done
        if not self.check_mode:
            remember(data, self.client)
        return run

    @staticmethod
    def _outcome(run: Outcome, result: Dict[str, Any]) -> Dict[str, Any]:
        if run.failures:
            raise ApplyError("; ".join(run.failures), result)
        return result

    def present(self, desired: Sequence[Desired], exclusive: bool = False, strict_port: bool = False,
                min_lifetime: int = 0) -> Dict[str, Any]:
        def body(run: Outcome, data: LedgerData) -> None:
            public = self.client.public_address()  # read-only; its epoch reveals a reboot
            run.public_address = public.address

            def restart(done: List[Desired]) -> None:  # the gateway rebooted: those are gone again
                redo = {(d.protocol, d.internal_port) for d in done}
                run.results = [r for r in run.results if (r["protocol"], r["internal_port"]) not in redo]

            walk(desired, lambda want: self._present_one(run, data, want, strict_port), restart)
            if min_lifetime:
                self._refuse_short(run, data, min_lifetime)
            if exclusive:
                wanted = {(d.protocol, d.internal_port) for d in desired}
                for entry in list(data.for_gateway(self.client.gateway)):
                    if (entry.protocol, entry.internal_port) not in wanted:
                        self._remove(run, data, entry)

        return self._apply(body)

    def _present_one(self, run: Outcome, data: LedgerData, want: Desired, strict_port: bool) -> bool:
        """Ensure one mapping; True when the gateway's reply showed it rebooted during this run."""
        gateway = self.client.gateway
        entry = data.find(gateway, want.protocol, want.internal_port)
        lost = self._lost(entry, run.now)
        port_declared = entry is not None and entry.requested_external_port != want.external_port
        declared_change = port_declared or (entry is not None and entry.requested_lifetime != want.lifetime)
        if self.check_mode:
            # Predict on the in-memory copy (check mode never writes the ledger), with the builder a
            # real run records with, so the diff's "after" shows what a real run would record.
            changed = lost or declared_change
            external = entry.external_port if entry is not None and not lost and not port_declared \
                else want.external_port
            lifetime = entry.lifetime if entry is not None and not changed else want.lifetime
            enter(data, self.client, want.protocol, want.internal_port, want.external_port, want.lifetime,
                  predicted(self.client, entry, want.protocol, want.internal_port, external, lifetime),
                  run.public_address, run.now, same_port=want.same_port)
            run.results.append({
                "protocol": want.protocol,
                "internal_port": want.internal_port,
                "external_port": external,
                "lifetime": want.lifetime,
                "changed": changed,
                "predicted": True,
            })
            run.changed |= changed
            return False
        key = (gateway, want.protocol, want.internal_port)
        partner = self._partner(data, want, run)
        strict = strict_port and want.external_port != 0
        target = port_to_suggest(entry, want.external_port, partner, strict)
        held = entry if entry is not None and not lost else None  # its mapping is on the gateway
        released = False
        try:
            granted, released = request(self.client, data, entry, held, want.protocol, want.internal_port, target,
                                        want.lifetime, partner, run.public_address, self.clock, exact=strict)
            if partner is not None:
                self._partner_moved(run, data, partner)
        except (GatewayTimeout, GatewayUnreachable) as exc:
            note_failure(data, key, str(exc), self.clock())
            raise
        except PortmapError as exc:
            note_failure(data, key, str(exc), self.clock())
            run.failures.append(str(exc) + (self._put_back(run, data, held) if released and held else ""))
            return False
        if granted.rebooted:
            lost = True  # the gateway rebooted since the previous request of this run
        port_moved = entry is not None and entry.external_port != granted.external_port
        method_moved = entry is not None and entry.method != granted.method  # re-created with the other protocol
        if granted.public_address:
            run.public_address = granted.public_address
        if strict and granted.external_port != want.external_port:
            release(self.client, granted)
            if released and held:
                kept = self._put_back(run, data, held)
            else:
                kept = ""
                data.remove(*key)
                run.changed |= entry is not None
            run.failures.append(
                f"gateway {gateway} granted {want.protocol.upper()} internal port {want.internal_port} the "
                f"external port {granted.external_port}, not the {want.external_port} asked for (strict_port); "
                f"the mapping was deleted again{kept}"
            )
            return granted.rebooted
        left = superseded(self.client, held, granted)
        if left:
            run.failures.append(left)
        recorded = enter(data, self.client, want.protocol, want.internal_port, want.external_port, want.lifetime,
                         granted, run.public_address, self.clock(), same_port=want.same_port)
        changed = lost or declared_change or port_moved or method_moved
        run.changed |= changed
        run.results.append(dict(returned(recorded, self.clock()), changed=changed, predicted=False))
        if granted.permanent:
            run.warnings.append(PERMANENT.format(gateway=gateway, what=f"{want.protocol.upper()} external port "
                                                 f"{granted.external_port} -> internal port {want.internal_port}"))
        if partner is not None:
            split = split_ports([e for e in (data.find(gateway, "tcp", want.internal_port), recorded) if e])
            if split:
                run.failures.append(split)
        return granted.rebooted

    def _put_back(self, run: Outcome, data: LedgerData, held: Entry) -> str:
        """A move refused after the mapping was deleted to make it (NAT-PMP, PCP): ask for its old port
        again, so a refused change leaves the mapping as it was.  Returns what to add to the failure."""
        try:
            again = self.client.map(held.protocol, held.internal_port, held.external_port, held.requested_lifetime)
        except (GatewayTimeout, GatewayUnreachable):
            data.remove(*held.key)
            run.changed = True
            raise
        except PortmapError as exc:
            data.remove(*held.key)
            run.changed = True
            return f"; its mapping on external port {held.external_port}, deleted to move it, could not be made again: {exc}"
        restored = enter(data, self.client, held.protocol, held.internal_port, held.requested_external_port,
                         held.requested_lifetime, again, run.public_address, self.clock(), same_port=held.same_port)
        changed = restored.external_port != held.external_port
        run.changed |= changed
        run.results.append(dict(returned(restored, self.clock()), changed=changed, predicted=False))
        return f"; this host's mapping is back on external port {restored.external_port}"

    def _refuse_short(self, run: Outcome, data: LedgerData, min_lifetime: int) -> None:
        """Mappings granted for less than ``min_lifetime``: those this run made are deleted again
        (a permanent UPnP lease, lifetime 0, never lapses: it is kept)."""
        made = {(r["protocol"], r["internal_port"]) for r in run.results if r.get("changed") and not r.get("predicted")}
        before = {(m["protocol"], m["internal_port"]) for m in run.before}
        short = [e for e in data.for_gateway(self.client.gateway)
                 if (e.protocol, e.internal_port) in made and e.lifetime < min_lifetime and not e.permanent]
        if not short:
            return
        taken_back = []
        for entry in short:
            if (entry.protocol, entry.internal_port) in before:
                continue  # it was there before this run: kept
            self._remove(run, data, entry)
            taken_back.append(entry)
        run.results = [r for r in run.results if (r["protocol"], r["internal_port"]) not in
                       {(e.protocol, e.internal_port) for e in taken_back}]
        run.removed = [r for r in run.removed if (r["protocol"], r["internal_port"]) not in
                       {(e.protocol, e.internal_port) for e in taken_back}]
        run.changed = bool(run.results and any(r.get("changed") for r in run.results)) or bool(run.removed)
        granted = ", ".join(f"{e.protocol.upper()} {e.internal_port}: {e.lifetime} s" for e in short)
        run.failures.append(
            f"gateway {self.client.gateway} granted lifetimes shorter than the {min_lifetime} s needed ({granted}); "
            + ("the mappings this run made were deleted again" if taken_back else "the existing mappings were kept"))

    def _partner(self, data: LedgerData, want: Desired, run: Outcome) -> Optional[Entry]:
        """For the UDP half of ``protocol: both``, the TCP half this run made or renewed."""
        if not want.same_port or want.protocol != "udp":
            return None
        tcp = data.find(self.client.gateway, "tcp", want.internal_port)
        done = any(r["protocol"] == "tcp" and r["internal_port"] == want.internal_port for r in run.results)
        return tcp if done else None

    def _partner_moved(self, run: Outcome, data: LedgerData, tcp: Entry) -> None:
        """The TCP half of ``protocol: both`` recorded again on another port (moved onto UDP's): its result too."""
        moved = data.find(*tcp.key)
        if moved is not None and moved.external_port != tcp.external_port:
            run.changed = True
            run.results = [dict(returned(moved, self.clock()), changed=True, predicted=False)
                           if (r["protocol"], r["internal_port"]) == (tcp.protocol, tcp.internal_port) else r
                           for r in run.results]

    # -------------------------------------------------------------- absent

    def absent(self, desired: Sequence[Desired]) -> Dict[str, Any]:
        """Remove the ledger's mappings of ``desired``; under UPnP IGD also a mapping of this host
        the ledger does not record (matched by protocol, external port and this host's address)."""
        def body(run: Outcome, data: LedgerData) -> None:
            for want in desired:
                entry = data.find(self.client.gateway, want.protocol, want.internal_port)
                if entry is not None:
                    self._remove(run, data, entry)
                else:
                    self._remove_unrecorded(run, data, want)

        return self._apply(body)

    def _remove_unrecorded(self, run: Outcome, data: LedgerData, want: Desired) -> None:
        """A mapping of this host the ledger does not record, where the method in use can read the table."""
        external_port = want.external_port or want.internal_port
        if any(e.protocol == want.protocol and e.external_port == external_port
               for e in data.for_gateway(self.client.gateway)):
            return  # the ledger's mapping of another internal port: not this one's to remove
        found = self.client.unrecorded(want.protocol, external_port)
        if found is None:
            return
        run.changed = True
        if not self.check_mode:
            try:
                self.client.delete(want.protocol, found.internal_port, external_port=found.external_port)
            except (GatewayTimeout, GatewayUnreachable):
                raise
            except PortmapError as exc:
                run.failures.append(str(exc))
                return
        run.removed.append({"protocol": want.protocol, "internal_port": found.internal_port,
                            "external_port": found.external_port, "lifetime": found.lease, "recorded": False})

    def _remove(self, run: Outcome, data: LedgerData, entry: Entry) -> None:
        run.changed = True
        if not self.check_mode:
            try:
                release(self.client, entry)
            except (GatewayTimeout, GatewayUnreachable) as exc:
                note_failure(data, entry.key, str(exc), self.clock())
                raise
            except PortmapError as exc:
                note_failure(data, entry.key, str(exc), self.clock())
                run.failures.append(str(exc))
                return
        data.remove(*entry.key)  # in check mode, from the in-memory copy only
        run.removed.append(view(entry))

    # -------------------------------------------------------------- info

    def info(self, stun_server: Optional[str] = None, settle: bool = True, table: bool = True,
             brief: bool = False) -> Dict[str, Any]:
        """Read-only facts; a gateway that does not answer is reported, not an error.

        Under ``auto`` the three protocols are asked at once and (``settle``) heard out, so the
        facts tell what the gateway speaks (``brief``: for ``detect.BRIEF`` after the choice); ``method`` is what a change would use.  Under UPnP
        IGD the gateway's table is listed too (``gateway_table``, unless ``table`` is False).
        With ``stun_server`` (``host:port``) the NAT's behaviour is classified with STUN too.
        """
        data = self.ledger.load()
        if self.client.epoch is None:
            self.client.epoch = data.last_epoch(self.client.gateway)
        resume(data, self.client)
        found = self.client.probe(settle, brief).view()
        speaks = [name for name, outcome in found.items() if outcome is True]
        errors = [outcome for outcome in found.values() if isinstance(outcome, str)]
        public = self.client.public_address_seen or next(
            (e.public_address for e in data.for_gateway(self.client.gateway) if e.public_address), None)
        now = self.clock()
        facts = {
            "gateway": self.client.gateway,
            "gateway_found_in": self.client.found_in,
            "public_address": public if speaks else None,
            "epoch": self.client.epoch.epoch if speaks and self.client.epoch else None,
            "gateway_rebooted": self.client.rebooted,
            "answers": bool(speaks),
            "method": self.client.method if speaks else None,
            "speaks": found,
            "error": None if speaks else "; ".join(errors),
            "mappings": [returned(e, now) for e in data.entries],
            "gateway_table": self._table() if speaks and table else None,
            "upnp_service": self.client.choice(),
        }
        transport = self.client.transport
        return dict(facts, **nat_facts(facts["public_address"], stun_server, transport.timeout, transport.source_address))

    def _table(self) -> Dict[str, Any]:
        """The gateway's own table where a protocol it speaks can list it (UPnP IGD, also next to PCP or
        NAT-PMP), at most 1024 entries and 10 s."""
        try:
            entries, cut = self.client.table(TABLE_LIMIT, TABLE_SECONDS)
            ours = self.client.own_address()
        except PortmapError as exc:
            return {"listed": False, "why": f"{exc}; the ledger's mappings are in 'mappings'", "mappings": [],
                    "cut": False}
        return {"listed": True, "why": "", "cut": cut, "mappings": [
            {"protocol": e.protocol, "external_port": e.external_port, "internal_client": e.internal_client,
             "internal_port": e.internal_port, "description": e.description, "lease_left": e.lease,
             "enabled": e.enabled, "remote_host": e.remote_host, "this_host": e.internal_client == ours}
            for e in entries]}
