"""A gateway change is never lost: a ledger that cannot be written stops a run before
anything is sent, and a write that still fails afterwards is undone on the gateway.

For NAT-PMP and PCP, for the module (a real playbook) and the command: a read-only
file system, a missing folder, a full disk (a tiny tmpfs) and a ledger replaced by a
folder; then a folder that turns into a non-writable place while the request is in
flight.  After each, the gateway's table has no mapping the ledger does not record.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.harness.playbook import run_playbook

MODULE_UTILS = str(Path(__file__).resolve().parents[2] / "plugins" / "module_utils")
METHODS = ["natpmp", "pcp"]
CASES = ["read-only", "missing-folder", "disk-full", "ledger-is-a-folder"]
EXPECTED = {
    "read-only": "Read-only file system",
    "missing-folder": "does not exist",
    "disk-full": "No space left on device",
    "ledger-is-a-folder": "Is a directory",
}


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def mounts():
    """tmpfs mounts made by the test, unmounted afterwards (also on failure)."""
    made = []
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")

    def mount(folder: Path, options: str) -> Path:
        folder.mkdir()
        _mount("-t", "tmpfs", "-o", options, "tmpfs", str(folder))
        made.append(folder)
        return folder

    yield mount
    for folder in reversed(made):
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def ledger_for(case: str, tmp_path: Path, mount) -> Path:
    """A ledger path where the write cannot happen, in the way ``case`` names."""
    if case == "read-only":
        return mount(tmp_path / "ro", "ro,size=1m,mode=0755") / "ledger.json"
    if case == "missing-folder":
        return tmp_path / "no" / "such" / "folder" / "ledger.json"
    if case == "disk-full":
        folder = mount(tmp_path / "full", "size=64k,mode=0755")
        with open(folder / "filler", "wb", buffering=0) as handle:  # leave a few blocks, not the room the write needs
            try:
                handle.write(b"\0" * (60 * 1024))
            except OSError:
                pass
        return folder / "ledger.json"
    folder = tmp_path / "ok"
    folder.mkdir(mode=0o755)
    (folder / "ledger.json").mkdir()
    return folder / "ledger.json"


def cli(gw, ledger: Path, method: str, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-c", "import sys; from portmap.cli import main; sys.exit(main())",
            "--gateway", gw.address, "--method", method, "--ledger", str(ledger), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=MODULE_UTILS),
                          timeout=60, check=False)


def table(gw):
    return [(m["protocol"], m["internal_port"]) for m in gw.ctl({"cmd": "table"})["mappings"]]


def map_requests(gw):
    return [e for e in gw.ctl({"cmd": "log"})["log"] if e.get("op") in (1, 2) or e.get("opcode") == 1]


def recorded(ledger: Path):
    try:
        document = json.loads(ledger.read_text())
    except (OSError, ValueError):
        return []
    return [(m["protocol"], m["internal_port"]) for m in document["mappings"]]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", CASES)
def test_the_command_sends_nothing_when_the_ledger_cannot_be_written(gw, tmp_path, mounts, case, method):
    ledger = ledger_for(case, tmp_path, mounts)
    gw.ctl({"cmd": "clear_log"})
    proc = cli(gw, ledger, method, "map", "tcp", "8083")
    print(f"{case}/{method}: exit {proc.returncode}: {proc.stderr.strip()}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert str(ledger.parent) in proc.stderr and EXPECTED[case] in proc.stderr
    assert "Traceback" not in proc.stderr
    assert gw.ctl({"cmd": "log"})["log"] == []  # not a single request reached the gateway
    assert table(gw) == []


@contextlib.contextmanager
def ledger_turning_into_a_folder(gw, tmp_path: Path):
    """A ledger path that is fine when the run starts; while the gateway holds back its answer to
    the MAP (every answer, retransmissions too), the path becomes a folder, so the write after the
    grant fails although the check before the request passed."""
    folder = tmp_path / "ledger"
    folder.mkdir(mode=0o755)
    ledger = folder / "ledger.json"
    gw.ctl({"cmd": "fault", "kind": "delay", "seconds": 1.0, "ops": ["map"]})
    gw.ctl({"cmd": "clear_log"})
    done = threading.Event()

    def plant():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not done.is_set():
            if map_requests(gw):
                ledger.mkdir()
                return
            time.sleep(0.01)

    thread = threading.Thread(target=plant, daemon=True)
    thread.start()
    try:
        yield ledger
    finally:
        done.set()
        thread.join(5)


@pytest.mark.parametrize("method", METHODS)
def test_the_command_undoes_a_grant_it_cannot_record(gw, tmp_path, method):
    with ledger_turning_into_a_folder(gw, tmp_path) as ledger:
        proc = cli(gw, ledger, method, "map", "tcp", "8084")
    print(f"undo/{method}: exit {proc.returncode}: {proc.stderr.strip()}")
    assert ledger.is_dir(), "the test did not get to plant the folder in time"
    assert proc.returncode == 1
    assert "cannot write ledger" in proc.stderr and "was granted, then deleted again on the gateway" in proc.stderr
    assert len(map_requests(gw)) >= 2  # the MAP, then the delete
    assert table(gw) == []


def module_run(gw, collections_path, tmp_path, ledger: Path, method: str, port: int):
    out = tmp_path / f"result-{port}.json"
    proc, _recap = run_playbook("ledger_fault.yml", tmp_path, {
        "gateway": gw.address, "method": method, "ledger_path": str(ledger), "internal_port": port,
        "result_file": str(out)}, collections_path=collections_path)
    assert proc.returncode == 0, "the playbook itself failed (output above)"
    return json.loads(out.read_text())


@pytest.mark.parametrize("method", METHODS)
def test_the_module_sends_nothing_when_the_ledger_cannot_be_written(gw, collections_path, tmp_path, mounts, method):
    for port, case in enumerate(CASES, start=9001):
        ledger = ledger_for(case, tmp_path, mounts)
        gw.ctl({"cmd": "clear_log"})
        result = module_run(gw, collections_path, tmp_path, ledger, method, port)
        print(f"module {case}/{method}: failed={result.get('failed')} changed={result.get('changed')}: {result.get('msg')}")
        assert result["failed"] is True and result["changed"] is False
        assert EXPECTED[case] in result["msg"] and str(ledger.parent) in result["msg"]
        assert "module_stderr" not in result and "Traceback" not in result["msg"]  # an error of ours, not a crash
        assert gw.ctl({"cmd": "log"})["log"] == []
        assert table(gw) == []


@pytest.mark.parametrize("method", METHODS)
def test_the_module_undoes_a_grant_it_cannot_record_and_says_so(gw, collections_path, tmp_path, method):
    with ledger_turning_into_a_folder(gw, tmp_path) as ledger:
        result = module_run(gw, collections_path, tmp_path, ledger, method, 9100)
    print(f"module undo/{method}: changed={result['changed']}: {result['msg']}")
    assert result["failed"] is True
    assert result["changed"] is False  # granted and deleted again: the gateway is as it was
    assert "cannot write ledger" in result["msg"] and "deleted again on the gateway" in result["msg"]
    assert table(gw) == [] and recorded(ledger) == []


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", ["read-only", "disk-full"])
def test_the_renewal_job_sends_nothing_when_the_ledger_cannot_be_written(gw, tmp_path, mounts, case, method):
    """The job's ledger was fine when the mapping was made; then its file system went read-only or full."""
    folder = mounts(tmp_path / "state", "size=256k,mode=0755")
    ledger = folder / "ledger.json"
    made = cli(gw, ledger, method, "map", "tcp", "8085", "--lifetime", "600")
    assert made.returncode == 0, made.stderr
    if case == "read-only":
        _mount("-o", "remount,ro", str(folder))
    else:
        with open(folder / "filler", "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError:
                pass
    gw.ctl({"cmd": "clear_log"})
    proc = cli(gw, ledger, method, "renew", "--now", "--log", "stderr")
    print(f"renew {case}/{method}: exit {proc.returncode}: {proc.stderr.strip()}")
    assert proc.returncode == 1
    assert EXPECTED[case] in proc.stderr and str(folder) in proc.stderr
    assert gw.ctl({"cmd": "log"})["log"] == []
    assert table(gw) == recorded(ledger) == [("tcp", 8085)]  # the mapping stays, and so does its entry
