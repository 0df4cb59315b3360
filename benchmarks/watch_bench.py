"""What `portmap-natpmp watch` costs while it waits: CPU time and memory of the process, idle.

    .venv/bin/python -m benchmarks.watch_bench [--seconds 600] [--entries 500] [--lifetime 3600]

A simulated gateway on loopback (127.0.9.3, announcements to 127.0.0.1:5350) holds ``--entries``
NAT-PMP mappings of ``--lifetime`` seconds, made through the module's code path and recorded in a
ledger (benchmarks/worker.py ledger).  The watch is started on that ledger as a process, left alone
for ``--seconds`` and stopped with SIGTERM (its exit status must be 0).  Read from /proc: its CPU
time (utime + stime of /proc/PID/stat, clock ticks) at start-up done and at the end, and its
VmHWM and VmRSS (/proc/PID/status).  For comparison, the renewal job's cost over the same period:
the CPU time of one `renew --now` run (a process renewing every entry, what each run of a timer at
half the lifetime does) times the number of runs such a timer makes in the period.  Used by
benchmarks/run.py (`make bench`); run alone for the figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from simgw import control  # noqa: E402  pylint: disable=wrong-import-position

PYTHON = os.path.join(REPO, ".venv", "bin", "python")
if not os.path.exists(PYTHON):
    PYTHON = sys.executable
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
WORKER = os.path.join(REPO, "benchmarks", "worker.py")
GATEWAY = "127.0.9.3"
TICK = os.sysconf("SC_CLK_TCK")
TARGET_CPU_PERCENT = 1.0  # of one core
TARGET_RSS_MIB = 30.0
CLI = [PYTHON, "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); from portmap.cli import main; sys.exit(main())",
       MODULE_UTILS]


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid``, clock ticks (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields[0] is field 3 (state)


def memory_kib(pid: int) -> Dict[str, int]:
    """VmHWM and VmRSS of ``pid``, KiB."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(("VmHWM:", "VmRSS:")):
                values[line.split(":")[0]] = int(line.split()[1])
    return values


def _gateway(folder: str, max_mappings: int) -> subprocess.Popen:
    sock, ready = os.path.join(folder, "gw.sock"), os.path.join(folder, "gw.ready")
    process = subprocess.Popen(  # pylint: disable=consider-using-with
        [PYTHON, "-m", "simgw", "--listen", f"{GATEWAY}:5351", "--control", sock, "--ready-file", ready,
         "--uptime", "1000", "--announce", "loopback", "--max-mappings", str(max_mappings)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    deadline = time.monotonic() + 10
    while not os.path.exists(ready):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"simulated gateway did not start: {process.stderr.read().decode()}")
        time.sleep(0.02)
    return process


def _stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _make_ledger(count: int, lifetime: int, ledger: str, lock: str) -> None:
    if lifetime == 3600:
        argv = [PYTHON, WORKER, "ledger", "--gateway", GATEWAY, "--count", str(count), "--ledger", ledger, "--lock", lock]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
        if proc.returncode or json.loads(proc.stdout.strip().splitlines()[-1]).get("entries") != count:
            raise RuntimeError(f"the ledger of {count} entries was not made: {proc.stdout[-300:]} {proc.stderr[-300:]}")
        return
    for port in range(40000, 40000 + count):  # another lifetime: the command's `map`, once per entry
        proc = subprocess.run([*CLI, "--gateway", GATEWAY, "--method", "natpmp", "--ledger", ledger, "--lock", lock,
                               "map", "tcp", str(port), "--lifetime", str(lifetime)],
                              capture_output=True, text=True, check=False, timeout=60)
        if proc.returncode:
            raise RuntimeError(f"map tcp {port} failed: {proc.stderr.strip()}")


def _timer_run(ledger: str, lock: str, log: str) -> float:
    """CPU seconds (user + system) of one `renew --now` process over the whole ledger."""
    argv = [*CLI, "--gateway", GATEWAY, "--method", "natpmp", "--ledger", ledger, "--lock", lock,
            "renew", "--now", "--log", log]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # pylint: disable=consider-using-with
    try:
        _pid, status, usage = os.wait4(process.pid, 0)
    except BaseException:
        _stop(process)
        raise
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    if process.returncode:
        raise RuntimeError(f"renew --now exited {process.returncode}: {stderr[-300:]}")
    return usage.ru_utime + usage.ru_stime


def measure(seconds: float = 600.0, entries: int = 500, lifetime: int = 3600, timer_runs: int = 3,
            progress: bool = True) -> Dict[str, Any]:
    """The watch's CPU and memory over ``seconds`` idle with ``entries`` mappings, and the timer job's cost."""
    folder = tempfile.mkdtemp(prefix="portmap-watch-bench-")
    ledger, lock, log = (os.path.join(folder, name) for name in ("ledger.json", "job.lock", "watch.log"))
    gateway = _gateway(folder, max(1024, 2 * entries))
    watch = None
    try:
        _make_ledger(entries, lifetime, ledger, lock)
        on_gateway = len(control(os.path.join(folder, "gw.sock"), {"cmd": "table"})["mappings"])
        if on_gateway != entries:
            raise RuntimeError(f"{on_gateway} mappings on the gateway, {entries} wanted")
        timer = [_timer_run(ledger, lock, os.path.join(folder, "job.log")) for _run in range(timer_runs)]
        watch = subprocess.Popen(  # pylint: disable=consider-using-with
            [*CLI, "--gateway", GATEWAY, "--method", "natpmp", "--ledger", ledger, "--lock", lock,
             "watch", "--log", log], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while "listening for" not in (open(log, encoding="utf-8").read() if os.path.exists(log) else ""):
            if watch.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the watch did not start: exit {watch.poll()}, {watch.stderr.read().decode()[-300:]}")
            time.sleep(0.05)
        time.sleep(2.0)  # the start pass (nothing due) is over
        started, ticks_start = time.monotonic(), cpu_ticks(watch.pid)
        memory_start = memory_kib(watch.pid)
        if progress:
            print(f"  watch (pid {watch.pid}) idle with {entries} entries for {seconds:g} s ...", flush=True)
        samples: List[int] = []
        while time.monotonic() < started + seconds:
            time.sleep(min(10.0, max(0.0, started + seconds - time.monotonic())))
            if watch.poll() is not None:
                raise RuntimeError(f"the watch exited {watch.returncode} during the run: "
                                   f"{watch.stderr.read().decode()[-300:]}")
            samples.append(memory_kib(watch.pid)["VmRSS"])
        ticks_end, elapsed = cpu_ticks(watch.pid), time.monotonic() - started
        memory_end = memory_kib(watch.pid)
        exit_code = _stop(watch)
        watch_log = open(log, encoding="utf-8").read().splitlines()
    finally:
        if watch is not None:
            _stop(watch)
        _stop(gateway)
    subprocess.run(["rm", "-rf", folder], check=False)
    half = lifetime / 2
    timer_cpu = sorted(timer)[len(timer) // 2]
    return {
        "seconds": elapsed, "entries": entries, "lifetime": lifetime, "tick": TICK,
        "cpu_ticks": ticks_end - ticks_start, "cpu_seconds": (ticks_end - ticks_start) / TICK,
        "cpu_percent": 100.0 * (ticks_end - ticks_start) / TICK / elapsed,
        "cpu_startup_seconds": ticks_start / TICK,
        "hwm_mib": memory_end["VmHWM"] / 1024, "rss_mib": memory_end["VmRSS"] / 1024,
        "rss_start_mib": memory_start["VmRSS"] / 1024, "rss_max_sampled_mib": max(samples + [0]) / 1024,
        "exit_code": exit_code, "log_lines": len(watch_log),
        "timer_cpu_seconds": timer_cpu, "timer_runs_in_period": elapsed / half,
        "timer_cpu_percent": 100.0 * timer_cpu * (elapsed / half) / elapsed,
    }


def table(result: Dict[str, Any]) -> List[str]:
    """The figures as a Markdown table, next to the targets."""
    cpu_ok = "yes" if result["cpu_percent"] < TARGET_CPU_PERCENT else "NO"
    rss_ok = "yes" if result["hwm_mib"] < TARGET_RSS_MIB else "NO"
    half = result["lifetime"] / 2
    return [
        f"| `watch`, {result['entries']} NAT-PMP entries of {result['lifetime']} s, idle {result['seconds']:.0f} s "
        "| figure | target | met |",
        "|---|---:|---:|---|",
        f"| CPU, % of one core ({result['cpu_ticks']} ticks of 1/{result['tick']} s) | {result['cpu_percent']:.3f} % "
        f"| < {TARGET_CPU_PERCENT:g} % | {cpu_ok} |",
        f"| CPU seconds over the run (start-up before it: {result['cpu_startup_seconds']:.2f} s) "
        f"| {result['cpu_seconds']:.2f} | | |",
        f"| peak RSS (VmHWM) | {result['hwm_mib']:.1f} MiB | < {TARGET_RSS_MIB:g} MiB | {rss_ok} |",
        f"| final RSS (VmRSS; {result['rss_start_mib']:.1f} MiB at the start) | {result['rss_mib']:.1f} MiB | | |",
        f"| exit status on SIGTERM | {result['exit_code']} | 0 | {'yes' if result['exit_code'] == 0 else 'NO'} |",
        f"| timer job: CPU seconds of one `renew --now` run ({result['entries']} entries) "
        f"| {result['timer_cpu_seconds']:.2f} | | |",
        f"| timer job at every {half:g} s: runs in {result['seconds']:.0f} s, CPU % of one core "
        f"| {result['timer_runs_in_period']:.2f} runs, {result['timer_cpu_percent']:.3f} % | | |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="how long the watch is left alone (default 600)")
    parser.add_argument("--entries", type=int, default=500, help="ledger entries (default 500)")
    parser.add_argument("--lifetime", type=int, default=3600, help="their lifetime, seconds (default 3600)")
    args = parser.parse_args()
    result = measure(args.seconds, args.entries, args.lifetime)
    print("\n".join(table(result)))
    met = result["exit_code"] == 0 and result["cpu_percent"] < TARGET_CPU_PERCENT and result["hwm_mib"] < TARGET_RSS_MIB
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
