"""The module's code path and the renewal job's on one ledger at the same time, in-process.

Threads stand for the processes of a real host (a playbook run, the cron job, `status`):
each has its own lock object, as separate processes would (flock() locks belong to open
file descriptions, so two lock objects exclude each other in one process too).  Hundreds
of rounds; the ledger must stay valid at every read and lose no entry.
"""

from __future__ import annotations

import threading
from typing import Callable, List, Set, Tuple

import pytest

from portmap.client import Client
from portmap.ledger import Ledger
from portmap.lock import HostLock
from portmap.manage import Desired, Manager
from portmap.renew import Renewer
from simgw import SimulatedGateway

ROUNDS = 200
STEADY = [Desired("tcp", port, port, 3600) for port in range(10000, 10005)]  # declared every round
COMING_AND_GOING = [Desired("udp", port, port, 3600) for port in range(20000, 20003)]  # present, absent, ...
Key = Tuple[str, int]


@pytest.fixture
def gw(loopback_address, tmp_path):
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock"), uptime=1000) as gateway:
        yield gateway


@pytest.mark.parametrize("method", ["natpmp", "pcp"])
def test_module_and_job_on_one_ledger_lose_nothing(gw, tmp_path, method):
    path = str(tmp_path / "ledger.json")
    lock_path = str(tmp_path / "lock")

    def ledger() -> Ledger:  # a process of its own: its own lock object on the one lock file
        return Ledger(path, HostLock(lock_path, timeout=60))

    def manager() -> Manager:
        own = ledger()
        return Manager(own, Client(gw.address, method=method, lock=own.lock))

    problems: List[str] = []
    counts = {"module": 0, "coming": 0, "job": 0, "reads": 0}
    steady_done = threading.Event()
    finished = threading.Event()

    def guarded(name: str, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except Exception as exc:  # pylint: disable=broad-except  # reported by the main thread
                problems.append(f"{name}: {type(exc).__name__}: {exc}")
        return run

    def module_steady() -> None:
        for _round in range(ROUNDS):
            result = manager().present(STEADY)
            assert len(result["mappings"]) == len(STEADY)
            steady_done.set()
            counts["module"] += 1

    def module_coming_and_going() -> None:
        for round_ in range(ROUNDS):
            if round_ % 2 == 0:
                manager().present(COMING_AND_GOING)
            else:
                manager().absent(COMING_AND_GOING)
            counts["coming"] += 1

    def job() -> None:
        for _round in range(ROUNDS):
            own = ledger()
            report = Renewer(own, lambda g, epoch: Client(g, method=method, lock=own.lock, epoch=epoch),
                             lambda line: None).run(force=True)
            assert report.failed == 0, report
            counts["job"] += 1

    def reader() -> None:
        steady: Set[Key] = {(d.protocol, d.internal_port) for d in STEADY}
        own = ledger()
        while not finished.is_set():
            # Whether the steady entries were written is read before the ledger: read after it, a
            # ledger loaded just before the first write would count as one that lost them.
            written = steady_done.is_set()
            held = {(e.protocol, e.internal_port) for e in own.load().entries}  # never a torn file
            if written and not steady <= held:
                problems.append(f"reader: steady entries missing: {sorted(steady - held)}")
                return
            counts["reads"] += 1

    workers = [threading.Thread(target=guarded(name, body), name=name) for name, body in
               [("module", module_steady), ("coming", module_coming_and_going), ("job", job)]]
    watcher = threading.Thread(target=guarded("reader", reader), name="reader")
    watcher.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(300)
    finished.set()
    watcher.join(30)
    assert not problems, problems
    assert counts["module"] == counts["coming"] == counts["job"] == ROUNDS and counts["reads"] > ROUNDS

    final = ledger().load()
    held = {(e.protocol, e.internal_port) for e in final.entries}
    # ROUNDS is even: the last round of the coming-and-going worker removed its three
    assert held == {(d.protocol, d.internal_port) for d in STEADY}
    assert all(e.method == method and e.last_renewal.ok for e in final.entries)
    on_gateway = {(m["protocol"], m["internal_port"]) for m in gw.ctl({"cmd": "table"})["mappings"]}
    assert on_gateway == held
    print(f"CONCURRENCY {method}: {ROUNDS} rounds each of module present, module present/absent and "
          f"renew --now; {counts['reads']} reads of a valid ledger; {len(held)} entries kept")
