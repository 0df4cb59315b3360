"""A stateful property test: three hosts and one simulated gateway, under each protocol.

Hypothesis's rule-based state machine drives the modules' code path (``Manager``) and the
renewal job (``Renewer``) of three hosts, each on a loopback address of its own with its own
ledger, against one simulated gateway (in this process, on loopback) that speaks the
protocol under test, through random sequences of: present (one or two mappings, TCP, UDP or
``protocol: both``, the same or another external port, ``strict_port``, ``exclusive``),
absent, a gateway reboot, a host the fleet does not manage taking a free port, and a renewal
run.  After every step:

- each host's rows in the gateway's table are exactly its ledger's (a host whose mappings a
  reboot took may lack some until its renewal runs), so the table is the union of the
  ledgers and of the other host's mappings, which the fleet never deletes;
- each result agrees with the table and the ledger (``tests/harness/agreement.py``), says
  ``changed`` when this host's rows or its ledger changed, and (a run without an error) not
  when neither did; a run without an error did what was asked (strict ports kept, absent
  mappings gone, ``exclusive``: nothing else left).

Two budgets: in ``make test`` a few derandomized examples per protocol (a few seconds each);
``make fuzz`` (scripts/fuzz.sh) sets FUZZ_FLEET_EXAMPLES and explores at random.  Every
sequence it shrank to is kept as an explicit test at the end of this file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from portmap.client import Client
from portmap.ledger import Ledger
from portmap.lock import HostLock
from portmap.manage import ApplyError, Manager, normalize
from portmap.renew import Renewer
from simgw import SimulatedGateway
from tests.conftest import next_loopback
from tests.harness.agreement import check, ledger_rows, simgw_rows

EXAMPLES = int(os.environ.get("FUZZ_FLEET_EXAMPLES", "0"))
METHODS = ("pcp", "natpmp", "upnp")
HOSTS = 3
PORTS = (25565, 25566, 25570)  # internal ports: few, so hosts and protocols meet on them
EXTERNAL = (None, 25565, 25566, 25567, 31000, 0)  # None: the internal port; 0: any
UPTIME = 1 << 20  # the gateway's epoch at start; a reboot halves it, so every reboot shows
# what a run may fail with: a strict port refused (PCP, NAT-PMP), a port another host holds (UPnP
# IGD names it), TCP and UDP of protocol both left on two ports
EXPECTED_ERRORS = ("strict_port", "is held by", "one external port")
STEPS: Counter = Counter()


def _settings(examples: int, steps: int) -> settings:
    return settings(max_examples=EXAMPLES or examples, stateful_step_count=steps if not EXAMPLES else 30,
                    derandomize=not EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class Host:
    def __init__(self, gw: SimulatedGateway, folder: str, method: str) -> None:
        self.gw, self.method, self.address = gw, method, next_loopback()
        self.folder = os.path.join(folder, self.address)
        os.mkdir(self.folder)
        self.ledger_path = os.path.join(self.folder, "ledger.json")

    def _client(self, lock: HostLock, epoch: Any = None) -> Client:
        return Client(self.gw.address, lock=lock, method=self.method, source_address=self.address, epoch=epoch,
                      description=f"portmap.natpmp {self.address}", timeout=2.0)

    def manager(self) -> Manager:
        lock = HostLock(os.path.join(self.folder, "lock"))
        return Manager(Ledger(self.ledger_path, lock), self._client(lock))

    def renew(self, force: bool) -> List[str]:
        lock = HostLock(os.path.join(self.folder, "lock"))
        log: List[str] = []
        Renewer(Ledger(self.ledger_path, lock), lambda _gateway, epoch: self._client(lock, epoch), log.append).run(
            force=force)
        return log

    def ledger(self) -> Set[Tuple[str, int, int]]:
        return ledger_rows(self.ledger_path)

    def entries(self) -> List[Dict[str, Any]]:
        if not os.path.exists(self.ledger_path):
            return []
        with open(self.ledger_path, encoding="utf-8") as handle:
            return json.load(handle)["mappings"]

    def declared(self) -> Set[Tuple[Any, ...]]:
        """The ledger with what was asked: a change of it is a change of the result."""
        return {(m["protocol"], m["internal_port"], m["external_port"], m["requested_external_port"],
                 m["requested_lifetime"]) for m in self.entries()}


specs = st.lists(
    st.fixed_dictionaries({"internal_port": st.sampled_from(PORTS), "external_port": st.sampled_from(EXTERNAL),
                           "protocol": st.sampled_from(("tcp", "udp", "both")),
                           "lifetime": st.sampled_from((3600, 7200))}),
    min_size=1, max_size=2, unique_by=lambda s: s["internal_port"])


class Fleet(RuleBasedStateMachine):
    method = "pcp"
    mappings_by = "internal-port"  # the simulated gateway's NAT-PMP and PCP (external-port: miniupnpd's way)

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="portmap-fleet-")
        self.gw = SimulatedGateway(address=next_loopback(), control_path=os.path.join(self.folder, "gw.sock"),
                                   igd="v2", uptime=UPTIME).start()
        self.gw.ctl({"cmd": "set", "mappings_by": self.mappings_by})
        self.uptime = UPTIME
        self.hosts = [Host(self.gw, self.folder, self.method) for _index in range(HOSTS)]
        self.other = next_loopback()  # a host the fleet does not manage
        self.others: Set[Tuple[str, int, int]] = set()
        self.stale: Set[str] = set()  # hosts whose ledgers may list mappings a reboot took

    def teardown(self) -> None:
        self.gw.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def table(self) -> Dict[str, Set[Tuple[str, int, int]]]:
        return simgw_rows(self.gw)

    def run(self, host: Host, how: str, desired: Any, **options: Any) -> Tuple[Dict[str, Any], Optional[str]]:
        STEPS[how] += 1
        before, declared = self.table().get(host.address, set()), host.declared()
        try:
            result, error = getattr(host.manager(), how)(desired, **options), None
        except ApplyError as exc:
            result, error = exc.result, str(exc)
        after = self.table().get(host.address, set())
        where = f"{self.method} {host.address} {how} {desired} {options}"
        assert error is None or any(e in error for e in EXPECTED_ERRORS), f"{where}: {error}"
        if before != after or declared != host.declared():
            assert result["changed"], f"{where}: {sorted(before)} -> {sorted(after)} but changed is false"
        elif error is None:  # a failed run may have deleted and made a mapping again on its port: changed either way
            assert not result["changed"], f"{where}: nothing changed ({sorted(after)}) but changed is true"
        check(after, host.ledger(), result, where, rebooted=host.address in self.stale)
        return result, error

    # ------------------------------------------------------------------ rules

    @rule(which=st.integers(0, HOSTS - 1), items=specs, strict=st.booleans(), exclusive=st.booleans())
    def present(self, which: int, items: List[Dict[str, Any]], strict: bool, exclusive: bool) -> None:
        host = self.hosts[which]
        desired = normalize(items, lambda i, name: f"mappings[{i}].{name}")
        result, error = self.run(host, "present", desired, strict_port=strict, exclusive=exclusive)
        if error is not None:
            return
        recorded = {(m["protocol"], m["internal_port"]): m for m in host.entries()}
        for want in desired:
            entry = recorded.get((want.protocol, want.internal_port))
            assert entry is not None and entry["requested_external_port"] == want.external_port, (want, result)
            if strict and want.external_port:
                assert entry["external_port"] == want.external_port, (want, result)
        if exclusive:
            assert set(recorded) == {(d.protocol, d.internal_port) for d in desired}, (desired, recorded)

    @rule(which=st.integers(0, HOSTS - 1), data=st.data(), strict=st.booleans())
    def move(self, which: int, data: st.DataObject, strict: bool) -> None:
        """One of the host's mappings asked for with another external port (TCP and UDP together, for both)."""
        entries = self.hosts[which].entries()
        if not entries:
            return
        entry = data.draw(st.sampled_from(sorted(entries, key=lambda m: (m["protocol"], m["internal_port"]))))
        external = data.draw(st.sampled_from([p for p in EXTERNAL if p not in (None, entry["requested_external_port"])]))
        item = {"internal_port": entry["internal_port"], "external_port": external,
                "protocol": "both" if entry["same_port"] else entry["protocol"], "lifetime": entry["requested_lifetime"]}
        self.present(which, [item], strict, False)

    @rule(which=st.integers(0, HOSTS - 1), port=st.sampled_from(PORTS), protocol=st.sampled_from(("tcp", "udp")))
    def absent(self, which: int, port: int, protocol: str) -> None:
        host = self.hosts[which]
        desired = normalize([{"internal_port": port, "protocol": protocol}], lambda i, name: name)
        result, error = self.run(host, "absent", desired)
        if error is None:
            assert all(r[:2] != (protocol, port) for r in host.ledger()), result

    @rule()
    def reboot(self) -> None:
        STEPS["reboot"] += 1
        self.gw.ctl({"cmd": "reboot"})
        self.uptime //= 2
        self.gw.ctl({"cmd": "set", "epoch": self.uptime})
        self.others = set()
        self.stale = {h.address for h in self.hosts}

    @rule(port=st.sampled_from(EXTERNAL[1:-1]), protocol=st.sampled_from(("tcp", "udp")))
    def another_host_takes(self, port: int, protocol: str) -> None:
        """The unmanaged host maps an external port nobody holds."""
        if any(p == protocol and e == port for rows in self.table().values() for p, _i, e in rows):
            return
        STEPS["another host takes a port"] += 1
        self.gw.ctl({"cmd": "map", "client": self.other, "protocol": protocol, "internal_port": 9000 + len(self.others),
                     "external_port": port, "lifetime": 3600})
        self.others.add((protocol, 9000 + len(self.others), port))

    @rule(which=st.integers(0, HOSTS - 1), force=st.booleans())
    def renewal(self, which: int, force: bool) -> None:
        STEPS["renewal"] += 1
        host = self.hosts[which]
        log = host.renew(force)
        assert not [line for line in log if "failed" in line], log
        self.stale.discard(host.address)

    # ------------------------------------------------------------------ the invariant

    @invariant()
    def the_table_is_the_union_of_the_ledgers(self) -> None:
        table = self.table()
        assert table.get(self.other, set()) == self.others, "the other host's mappings were touched"
        for host in self.hosts:
            check(table.get(host.address, set()), host.ledger(), where=f"{self.method} {host.address}",
                  rebooted=host.address in self.stale)
        assert set(table) <= {h.address for h in self.hosts} | {self.other}, table


def _fleet(method: str, mappings_by: str = "internal-port") -> type:
    return type(f"Fleet_{method}_{mappings_by.replace('-', '_')}", (Fleet,),
                {"method": method, "mappings_by": mappings_by})


GATEWAYS = [(method, "internal-port") for method in METHODS] + [("pcp", "external-port"), ("natpmp", "external-port")]


@pytest.mark.timeout(0 if EXAMPLES else 300)  # make fuzz: as long as the budget takes
@pytest.mark.parametrize("method,mappings_by", GATEWAYS, ids=[f"{m}-{b}" for m, b in GATEWAYS])
def test_the_gateways_table_is_the_union_of_the_ledgers(method, mappings_by):
    run_state_machine_as_test(_fleet(method, mappings_by), settings=_settings(examples=40, steps=20))


def teardown_module():
    print(f"\nfleet state machine: {sum(STEPS.values())} steps ({', '.join(f'{k} {v}' for k, v in sorted(STEPS.items()))})")


# ---------------------------------------------------------------------- what it found, kept as tests


def replay(method: str, steps: List[Tuple[str, Dict[str, Any]]], mappings_by: str = "internal-port") -> None:
    """Run a sequence the state machine shrank to, with the invariant checked after every step."""
    machine = _fleet(method, mappings_by)()
    try:
        machine.the_table_is_the_union_of_the_ledgers()
        for name, arguments in steps:
            getattr(machine, name)(**arguments)
            machine.the_table_is_the_union_of_the_ledgers()
    finally:
        machine.teardown()


def mapping(internal_port: int, external_port: Optional[int], protocol: str = "tcp") -> Dict[str, Any]:
    return {"internal_port": internal_port, "external_port": external_port, "protocol": protocol, "lifetime": 3600}


@pytest.mark.parametrize("method", METHODS)
def test_two_internal_ports_asking_for_one_external_port_keep_both(method):
    """UPnP IGD: the second AddPortMapping of 31000 replaced this host's mapping of the first internal port
    (an IGD replaces a host's own mapping of a port), while the ledger kept both."""
    replay(method, [("present", {"which": 0, "items": [mapping(25565, 31000), mapping(25566, 31000)], "strict": False,
                                 "exclusive": False})])


@pytest.mark.parametrize("method", METHODS)
def test_absent_of_an_internal_port_leaves_the_ledgers_mapping_of_its_external_port(method):
    """UPnP IGD: absent of internal port 25565 (not in the ledger) looked for this host's unrecorded mapping of
    external port 25565 and deleted the ledger's mapping of internal port 25566, which holds it."""
    replay(method, [("present", {"which": 0, "items": [mapping(25566, 25565)], "strict": False, "exclusive": False}),
                    ("absent", {"which": 0, "port": 25565, "protocol": "tcp"})])


@pytest.mark.parametrize("method,mappings_by", GATEWAYS, ids=[f"{m}-{b}" for m, b in GATEWAYS])
def test_external_port_any_renews_the_port_the_mapping_holds(method, mappings_by):
    """PCP and NAT-PMP on a gateway that keeps mappings by external port (miniupnpd): host 0's mapping of 25565
    got 25566 (host 1 held 25565); host 1 lets 25565 go; external_port 0 (any) then suggested 0, which the
    gateway reads as the internal port: a second mapping on 25565, and the ledger forgot 25566."""
    mine = {"which": 0, "items": [mapping(25565, None)], "strict": False, "exclusive": False}
    replay(method, [("present", dict(mine, which=1)), ("present", mine),
                    ("absent", {"which": 1, "port": 25565, "protocol": "tcp"}),
                    ("present", dict(mine, items=[mapping(25565, 0)]))], mappings_by)
