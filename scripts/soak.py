"""Soak run: short lifetimes kept alive for many lifetimes across gateway reboots, by the timer job and by the watch.

    make soak                                           # 24 lifetimes of 6 s, two reboots (about 2.5 minutes)
    make soak SOAK_ARGS="--lifetime 60 --lifetimes 10"  # 60 s leases for 10 lifetimes (about 10 minutes)
    .venv/bin/python scripts/soak.py --lifetime 10 --lifetimes 30 --reboots 3 --seed 7

Needs root: everything runs in sealed network namespaces made here (tests/harness/netns.py's
Topology: wan, gw, and one host namespace per scheduler and protocol), removed at the end, also
on failure.  The simulated gateway runs in the gw namespace on its LAN address, speaking NAT-PMP,
PCP and UPnP IGDv2 on one table, announcing its restarts by multicast (NAT-PMP and PCP to
224.0.0.1:5350, SSDP ssdp:alive NOTIFY with a new BOOTID to 239.255.255.250:1900).  Six hosts,
each with its own ledger and lock file, hold three mappings each:

- the timer job (scheduler ``timer``): `portmap-natpmp renew` run as a process every half
  lifetime, as the cron line or systemd timer runs it, for one host per protocol;
- the watch (scheduler ``watch``): `portmap-natpmp watch` started once per host (one per
  protocol), ended with SIGTERM at the end; its exit status must be 0.

The gateway is rebooted through its control socket (``{"cmd": "reboot"}``), evenly spread and a
quarter interval after a job run; its table is sampled ten times a second and each row is
attributed to its host by the client address.  Printed, per scheduler and protocol: presence
(the share of the run during which every mapping of that host was in the gateway's table), the
restore time after each reboot (from the reboot to the first sample, 0.1 s apart, with all of that
host's mappings back) with its mean and maximum, next to the targets for the watch: NAT-PMP and
UPnP IGD restored in less than 1 s and present at least 99.5 % of the time; PCP restored within
5 s (its random wait, RFC 6887 section 14.1.3) + 1 s.  Exit status 1 when a mapping was not restored
after a reboot, a job run failed, or a watch did not exit 0 on SIGTERM (a missed target alone does
not fail the run: it is marked in the table, and the watch's log lines about the gateway are shown).
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

from simgw import control  # noqa: E402  pylint: disable=wrong-import-position
from tests.harness.netns import Topology, netns_available, wait_for  # noqa: E402  pylint: disable=wrong-import-position

METHODS = ("natpmp", "pcp", "upnp")
LABELS = {"natpmp": "NAT-PMP", "pcp": "PCP", "upnp": "UPnP IGD"}
SCHEDULERS = ("timer", "watch")
MAPPINGS = [("tcp", 8080), ("udp", 5353), ("tcp", 2222)]
HTTP_PORT = 5000
SAMPLE_EVERY = 0.1
# The watch's targets: (restore time limit s, least presence %) per protocol.
TARGETS = {"natpmp": (1.0, 99.5), "upnp": (1.0, 99.5), "pcp": (5.0 + 1.0, None)}
Key = Tuple[str, str, int]  # host address, protocol, internal port
CLI = "import sys; sys.path.insert(0, sys.argv.pop(1)); from portmap.cli import main; sys.exit(main())"


class Host:
    """One host namespace: a scheduler, a protocol, its address, ledger and lock."""

    def __init__(self, topo: Topology, index: int, scheduler: str, method: str, folder: str) -> None:
        self.topo = topo
        self.ns = topo.hosts[index]
        self.address = topo.host_addresses[index]
        self.scheduler = scheduler
        self.method = method
        self.name = f"{scheduler}-{method}"
        self.ledger = os.path.join(folder, f"{self.name}.json")
        self.lock = os.path.join(folder, f"{self.name}.lock")
        self.log = os.path.join(folder, f"{self.name}.log")
        self.keys: List[Key] = [(self.address, protocol, port) for protocol, port in MAPPINGS]
        self.watch: Optional[subprocess.Popen] = None
        self.missed = False  # the watch missed a target: its log is shown

    def argv(self, *args: str) -> List[str]:
        gateway = self.topo.gw_lan_address
        upnp = ["--upnp-url", f"http://{gateway}:{HTTP_PORT}/rootDesc.xml"] if self.method == "upnp" else []
        return [sys.executable, "-c", CLI, MODULE_UTILS, "--gateway", gateway, "--source-address", self.address,
                "--method", self.method, *upnp, "--ledger", self.ledger, "--lock", self.lock, *args]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return self.topo.run(self.ns, self.argv(*args))

    def start(self, *args: str) -> subprocess.Popen:
        return self.topo.popen(self.ns, self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Sampler(threading.Thread):
    """Reads the gateway's table ten times a second and keeps which mappings were there."""

    def __init__(self, socket_path: str) -> None:
        super().__init__(name="sampler", daemon=True)
        self.socket_path = socket_path
        self.samples: List[Tuple[float, frozenset]] = []
        self.errors = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            now = time.monotonic()
            try:
                rows = control(self.socket_path, {"cmd": "table"})["mappings"]
            except (OSError, ValueError, KeyError):
                self.errors += 1
            else:
                self.samples.append((now, frozenset((r["client"], r["protocol"], r["internal_port"]) for r in rows)))
            self.stopping.wait(max(0.0, SAMPLE_EVERY - (time.monotonic() - now)))

    def presence(self, keys: List[Key], start: float, end: float) -> float:
        """Share of [start, end] all ``keys`` were in the table at once (each sample stands until the next)."""
        inside = [(t, s) for t, s in self.samples if start <= t <= end]
        present = 0.0
        for (at, seen), (following, _next) in zip(inside, inside[1:]):
            if all(key in seen for key in keys):
                present += following - at
        span = inside[-1][0] - inside[0][0] if len(inside) > 1 else 0.0
        return present / span if span else 0.0

    def restored_at(self, keys: List[Key], after: float) -> Optional[float]:
        """The first sample after ``after`` with every key in the table."""
        for at, seen in self.samples:
            if at > after and all(key in seen for key in keys):
                return at
        return None


def start_gateway(topo: Topology, folder: str) -> str:
    sock, ready = os.path.join(folder, "gw.sock"), os.path.join(folder, "gw.ready")
    log = open(os.path.join(folder, "gw.log"), "w", encoding="utf-8")  # pylint: disable=consider-using-with
    process = topo.popen(topo.gw, [
        sys.executable, "-m", "simgw", "--listen", f"{topo.gw_lan_address}:5351", "--control", sock,
        "--ready-file", ready, "--public-address", topo.gw_wan_address, "--uptime", "1000", "--speaks", "both",
        "--announce", "multicast", "--igd", "v2", "--http-port", str(HTTP_PORT), "--ssdp", "multicast"],
        stdout=log, stderr=log, cwd=REPO)
    log.close()
    try:
        wait_for(lambda: os.path.exists(ready) or process.poll() is not None, what="the simulated gateway")
    finally:
        if process.poll() is not None or not os.path.exists(ready):
            with open(os.path.join(folder, "gw.log"), encoding="utf-8") as handle:
                raise RuntimeError(f"the simulated gateway did not start: {handle.read()[-800:]}")
    return sock


def timer_round(hosts: List[Host]) -> List[Tuple[Host, subprocess.CompletedProcess]]:
    """`renew` for every timer host at once (each host's own cron line), waited for."""
    started = [(host, host.start("renew", "--log", "stderr")) for host in hosts]
    results = []
    for host, process in started:
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        results.append((host, subprocess.CompletedProcess(process.args, process.returncode, out, err)))
    return results


def report(hosts: List[Host], sampler: Sampler, reboots: List[float], start: float, end: float,
           watch_exits: Dict[str, Optional[int]]) -> int:
    status = 0
    numbers = " ".join(f"{f'r{n}':>6}" for n in range(1, len(reboots) + 1))
    print(f"\n{'scheduler':<9} {'protocol':<9} {'presence':>9} {numbers} {'mean':>6} {'max':>6}  "
          f"{'target (watch)':<28} met")
    for host in hosts:
        presence = 100 * sampler.presence(host.keys, start, end)
        times: List[Optional[float]] = []
        for at in reboots:
            back = sampler.restored_at(host.keys, at)
            times.append(None if back is None else back - at)
        if any(t is None for t in times):
            status = 1
        done = [t for t in times if t is not None]
        cells = " ".join(f"{t:6.2f}" if t is not None else f"{'LOST':>6}" for t in times)
        mean = f"{sum(done) / len(done):6.2f}" if done else f"{'-':>6}"
        worst = f"{max(done):6.2f}" if done else f"{'-':>6}"
        if host.scheduler == "watch":
            limit, least = TARGETS[host.method]
            target = f"restore < {limit:g} s" + (f", >= {least:g} %" if least else "")
            met = len(done) == len(times) and all(t < limit for t in done) and (least is None or presence >= least)
            verdict = "yes" if met else "NO"
            if not met:
                host.missed = True
        else:
            target, verdict = "-", "-"
        print(f"{host.scheduler:<9} {LABELS[host.method]:<9} {presence:8.2f}% {cells} {mean} {worst}  "
              f"{target:<28} {verdict}")
    print()
    for number, at in enumerate(reboots, 1):
        print(f"reboot r{number} at {at - start:.1f} s")
    for name, code in watch_exits.items():
        print(f"{name}: exit status on SIGTERM {code}")
        if code != 0:
            status = 1
    return status


def main() -> int:  # pylint: disable=too-many-locals,too-many-branches,too-many-statements
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--lifetime", type=int, default=6, help="lifetime asked for, seconds (default 6)")
    parser.add_argument("--lifetimes", type=int, default=24, help="how many lifetimes the run lasts (default 24)")
    parser.add_argument("--reboots", type=int, default=2, help="gateway reboots, evenly spread (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="the watches' --seed (PCP's random waits; default 1)")
    args = parser.parse_args()
    if args.lifetime < 2 or args.lifetimes < 2 or args.reboots < 0:
        parser.error("--lifetime and --lifetimes must be at least 2, --reboots at least 0")
    ok, why = netns_available()
    if not ok:
        print(f"soak: {why}; the soak runs in network namespaces of its own (run it as root)")
        return 2
    duration = args.lifetime * args.lifetimes
    interval = args.lifetime / 2
    # reboots between job runs (a quarter interval after one), evenly spread over the run
    reboot_times = [round(duration * (n + 1) / (args.reboots + 1) / interval) * interval + interval / 4
                    for n in range(args.reboots)]
    pairs = [(scheduler, method) for scheduler in SCHEDULERS for method in METHODS]
    print(f"soak: {len(pairs)} hosts (timer job and watch, each over NAT-PMP, PCP and UPnP IGD) with {len(MAPPINGS)} "
          f"mappings each, lifetime {args.lifetime} s, {args.lifetimes} lifetimes ({duration} s), the job every "
          f"{interval:g} s, {args.reboots} gateway reboots", flush=True)
    status = 0
    watch_exits: Dict[str, Optional[int]] = {}
    with tempfile.TemporaryDirectory(prefix="portmap-soak-") as folder:
        topo = Topology(hosts=len(pairs), tag="sk" + os.urandom(2).hex())
        try:
            topo.create()
            topo.assert_sealed()
            sock = start_gateway(topo, folder)
            hosts = [Host(topo, index, scheduler, method, folder) for index, (scheduler, method) in enumerate(pairs)]
            for host in hosts:
                for protocol, port in MAPPINGS:
                    made = host.run("map", protocol, str(port), "--lifetime", str(args.lifetime))
                    if made.returncode:
                        print(f"map on the {host.name} host: {protocol} {port} failed: {made.stderr.strip()}")
                        return 1
            timers = [h for h in hosts if h.scheduler == "timer"]
            for number, host in enumerate(h for h in hosts if h.scheduler == "watch"):
                host.watch = topo.popen(host.ns, host.argv("watch", "--log", host.log, "--seed", str(args.seed + number)),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for host in hosts:
                if host.watch is not None:
                    wait_for(lambda h=host: "listening for" in _read(h.log) or h.watch.poll() is not None,
                             what=f"the {host.name} host's watch")
                    if host.watch.poll() is not None:
                        print(f"the {host.name} host's watch exited {host.watch.returncode}: {_read(host.log)[-800:]}")
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
                    for host, job in timer_round(timers):
                        runs += 1
                        if job.returncode:
                            failed += 1
                            print(f"  job run for the {host.name} host failed ({job.returncode}): {job.stderr.strip()}")
            end = time.monotonic()
            sampler.stopping.set()
            sampler.join(5)
            for host in hosts:
                if host.watch is not None:
                    topo.stop(host.watch, grace=15)
                    watch_exits[f"{host.name} watch"] = host.watch.returncode
            status = report(hosts, sampler, reboots, start, end, watch_exits)
            print(f"job runs: {runs}, failed: {failed}; table samples: {len(sampler.samples)} "
                  f"({sampler.errors} failed reads)")
            for host in hosts:
                state = json.loads(host.run("status", "--json").stdout or "[]")
                print(f"{host.name} host ledger: {len(state)} mappings, all last results ok: "
                      f"{all(r['last_renewal'] and r['last_renewal']['ok'] for r in state)}")
                if host.watch is not None:
                    lines = _read(host.log).splitlines()
                    print(f"  its watch log: {len(lines)} lines; last: {lines[-1] if lines else '-'}")
                    if host.missed or watch_exits.get(f"{host.name} watch") != 0:
                        for line in [line for line in lines if "gateway " in line][-12:]:
                            print(f"    {line}")
            status |= 1 if failed else 0
        finally:
            topo.destroy()
    return status


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
