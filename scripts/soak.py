"""Soak run: short lifetimes kept alive by the renewal job for many lifetimes, across gateway reboots.

    make soak                       # 24 lifetimes of 6 s, two reboots (about 2.5 minutes)
    .venv/bin/python scripts/soak.py --lifetime 10 --lifetimes 30 --reboots 3

Two hosts (two loopback source addresses, each with its own ledger and lock file) hold three
mappings each on one simulated gateway on loopback, one host over NAT-PMP and one over PCP.
The renewal job runs as the cron line would run it, as a process (`portmap-natpmp renew`), every
half lifetime.  The gateway's table is sampled ten times a second through its control channel.
Printed: the share of the time each mapping was in the gateway's table, and for each reboot the
time until every mapping of each host was back.  Exit status 1 when a mapping was not restored
after a reboot or a job run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
sys.path.insert(0, REPO)

from simgw import SimulatedGateway, control  # noqa: E402  pylint: disable=wrong-import-position

GATEWAY = "127.0.8.1"
HOSTS = {"natpmp": "127.0.8.11", "pcp": "127.0.8.12"}  # method -> the host's source address
MAPPINGS = [("tcp", 8080), ("udp", 5353), ("tcp", 2222)]
SAMPLE_EVERY = 0.1
Key = Tuple[str, str, int]  # host address, protocol, internal port


def command(folder: str, method: str, *args: str) -> subprocess.CompletedProcess:
    """The host's `portmap-natpmp` as a process, the way the cron line runs it."""
    argv = [sys.executable, "-c", "import sys; from portmap.cli import main; sys.exit(main())",
            "--gateway", GATEWAY, "--source-address", HOSTS[method], "--method", method,
            "--ledger", os.path.join(folder, f"{method}.json"), "--lock", os.path.join(folder, f"{method}.lock"), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=MODULE_UTILS),
                          timeout=60, check=False)


class Sampler(threading.Thread):
    """Reads the gateway's table ten times a second and keeps when each mapping was there."""

    def __init__(self, socket_path: str) -> None:
        super().__init__(name="sampler", daemon=True)
        self.socket_path = socket_path
        self.samples: List[Tuple[float, frozenset]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            now = time.monotonic()
            rows = control(self.socket_path, {"cmd": "table"})["mappings"]
            self.samples.append((now, frozenset((r["client"], r["protocol"], r["internal_port"]) for r in rows)))
            self.stopping.wait(max(0.0, SAMPLE_EVERY - (time.monotonic() - now)))

    def presence(self, key: Key, start: float, end: float) -> float:
        """Share of [start, end] the mapping was in the table (each sample stands until the next)."""
        inside = [(t, s) for t, s in self.samples if start <= t <= end]
        present = 0.0
        for (at, seen), (following, _next) in zip(inside, inside[1:]):
            if key in seen:
                present += following - at
        span = inside[-1][0] - inside[0][0] if len(inside) > 1 else 0.0
        return present / span if span else 0.0

    def restored_at(self, keys: List[Key], after: float) -> Optional[float]:
        """The first sample after ``after`` with every key in the table."""
        for at, seen in self.samples:
            if at > after and all(key in seen for key in keys):
                return at
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--lifetime", type=int, default=6, help="lifetime asked for, seconds (default 6)")
    parser.add_argument("--lifetimes", type=int, default=24, help="how many lifetimes the run lasts (default 24)")
    parser.add_argument("--reboots", type=int, default=2, help="gateway reboots, evenly spread (default 2)")
    args = parser.parse_args()
    if args.lifetime < 2 or args.lifetimes < 2 or args.reboots < 0:
        parser.error("--lifetime and --lifetimes must be at least 2, --reboots at least 0")
    duration = args.lifetime * args.lifetimes
    interval = args.lifetime / 2
    # reboots between job runs (a quarter interval after one), evenly spread over the run
    reboot_times = [round(duration * (n + 1) / (args.reboots + 1) / interval) * interval + interval / 4
                    for n in range(args.reboots)]
    print(f"soak: 2 hosts (NAT-PMP and PCP) with {len(MAPPINGS)} mappings each, lifetime {args.lifetime} s, "
          f"{args.lifetimes} lifetimes ({duration} s), the job every {interval:g} s, {args.reboots} gateway reboots",
          flush=True)
    status = 0
    with tempfile.TemporaryDirectory(prefix="portmap-soak-") as folder:
        sock = os.path.join(folder, "gw.sock")
        with SimulatedGateway(address=GATEWAY, control_path=sock, uptime=1000):
            keys: Dict[str, List[Key]] = {m: [(a, p, port) for p, port in MAPPINGS] for m, a in HOSTS.items()}
            for method in HOSTS:
                for protocol, port in MAPPINGS:
                    made = command(folder, method, "map", protocol, str(port), "--lifetime", str(args.lifetime))
                    if made.returncode:
                        print(f"map {method} {protocol} {port} failed: {made.stderr.strip()}")
                        return 1
            sampler = Sampler(sock)
            sampler.start()
            start = time.monotonic()
            runs = failed = 0
            reboots: List[float] = []
            next_run = start + interval
            pending_reboots = [start + t for t in reboot_times]
            while time.monotonic() < start + duration:
                wake = min([next_run] + pending_reboots)
                time.sleep(max(0.0, wake - time.monotonic()))
                now = time.monotonic()
                if pending_reboots and now >= pending_reboots[0]:
                    pending_reboots.pop(0)
                    control(sock, {"cmd": "reboot"})
                    reboots.append(time.monotonic())
                    print(f"  {reboots[-1] - start:6.1f} s  gateway rebooted", flush=True)
                    continue
                if now >= next_run:
                    next_run += interval
                    for method in HOSTS:
                        job = command(folder, method, "renew", "--log", "stderr")
                        runs += 1
                        if job.returncode:
                            failed += 1
                            print(f"  job run for the {method} host failed ({job.returncode}): {job.stderr.strip()}")
            end = time.monotonic()
            sampler.stopping.set()
            sampler.join(5)
            print(f"\n{'host':<8} {'mapping':<10} {'present':>9}")
            for method, host_keys in keys.items():
                for key in host_keys:
                    print(f"{method:<8} {key[1]}/{key[2]:<6} {100 * sampler.presence(key, start, end):8.2f} %")
            print()
            for number, at in enumerate(reboots, 1):
                parts = []
                for method, host_keys in keys.items():
                    back = sampler.restored_at(host_keys, at)
                    if back is None:
                        status = 1
                        parts.append(f"{method} host NOT restored")
                    else:
                        parts.append(f"{method} host restored in {back - at:.2f} s")
                print(f"reboot {number} at {at - start:.1f} s: " + ", ".join(parts))
            print(f"job runs: {runs}, failed: {failed}; table samples: {len(sampler.samples)}")
            for method in HOSTS:
                state = json.loads(command(folder, method, "status", "--json").stdout or "[]")
                print(f"{method} host ledger: {len(state)} mappings, all last results ok: "
                      f"{all(r['last_renewal'] and r['last_renewal']['ok'] for r in state)}")
            status |= 1 if failed else 0
    return status


if __name__ == "__main__":
    sys.exit(main())
