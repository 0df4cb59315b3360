"""UPnP IGD latency against the real miniupnpd in sealed namespaces: ours, the PyPI miniupnpc binding, upnpc.

    /usr/bin/python3 -m venv .venv-bench-upnp && .venv-bench-upnp/bin/pip install -r benchmarks/requirements-upnp.txt
    .venv/bin/python -m benchmarks.upnp_bench [--rounds 5] [--n 60] [--n-external 600] [--n-process 20]

``make bench`` runs it too (``measure``), for the section "UPnP IGD against miniupnpd" of
docs/performance.md; scripts/bench.sh makes ``.venv-bench-upnp`` when it is missing.

Measured, per request, from the host namespace to miniupnpd's UPnP IGD (IGDv2) on the
gateway namespace: AddPortMapping (a new external port each time) and GetExternalIPAddress.
- ours: the IgdSession of plugins/module_utils/portmap, in-process, the IGD found once before timing;
- the PyPI ``miniupnpc`` binding (libminiupnpc), in-process, from ``.venv-bench-upnp``, the IGD
  selected once before timing;
- Debian's ``upnpc``, a process per request, given the description URL (``-u``): each run
  fetches the description, then ``-a`` sends AddPortMapping and ``-s`` four actions, among them
  GetExternalIPAddress.
Both in-process clients run in the same interpreter (the bench venv's), in alternating rounds
(each round in another order), so drift on the shared machine falls on all of them; each
in-process run starts with a few untimed GetExternalIPAddress calls (the interpreter's warm-up,
the same for both).  GetExternalIPAddress costs the gateway little, so it gets more samples
than AddPortMapping (about 9 ms of miniupnpd's nftables work each).  Every namespace and
process started here is removed here, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.harness.miniupnpd import Miniupnpd, available  # noqa: E402  pylint: disable=wrong-import-position
from tests.harness.netns import Topology, netns_available  # noqa: E402  pylint: disable=wrong-import-position

BENCH_PYTHON = os.path.join(REPO, ".venv-bench-upnp", "bin", "python")
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
GATEWAY = "192.168.77.1"
TOOLS = ("ours", "binding", "upnpc")
LABELS = {"ours": "portmap IgdSession (in-process)", "binding": "PyPI miniupnpc 2.3.3 binding (in-process)",
          "upnpc": "upnpc 2.2.4 (a process each)"}
OPS = {"add": "AddPortMapping", "external": "GetExternalIPAddress"}
WARMUP = 20


# ---------------------------------------------------------------- worker (runs inside the host namespace)

def work(tool: str, url: str, local: str, first_port: int, n: int, n_external: int) -> Dict[str, List[float]]:
    add: List[float] = []
    external: List[float] = []
    if tool == "ours":
        sys.path.insert(0, MODULE_UTILS)
        from portmap.upnp import IgdSession  # pylint: disable=import-outside-toplevel

        session = IgdSession(GATEWAY, upnp_url=url)
        session.discover()

        def add_one(port: int) -> None:
            session.map("tcp", port, port, 3600, "bench")

        def external_one() -> None:
            session.external_address()
    elif tool == "binding":
        import miniupnpc  # pylint: disable=import-outside-toplevel,import-error

        igd = miniupnpc.UPnP()
        igd.discoverdelay = 200
        igd.discover()
        igd.selectigd()

        def add_one(port: int) -> None:
            if not igd.addportmapping(port, "TCP", local, port, "bench", ""):
                raise RuntimeError("addportmapping failed")

        def external_one() -> None:
            igd.externalipaddress()
    else:
        def add_one(port: int) -> None:
            subprocess.run(["upnpc", "-u", url, "-a", local, str(port), str(port), "TCP", "3600"],
                           check=True, capture_output=True)

        def external_one() -> None:
            out = subprocess.run(["upnpc", "-u", url, "-s"], check=True, capture_output=True, text=True).stdout
            if "ExternalIPAddress" not in out:
                raise RuntimeError(f"upnpc -s printed no external address: {out[-300:]}")
    for _i in range(WARMUP if tool != "upnpc" else 0):
        external_one()
    for i in range(n):  # each request in a run of its own kind: the gateway's work for one is not timed in another
        start = time.perf_counter()
        add_one(first_port + i)
        add.append(time.perf_counter() - start)
    for _i in range(n_external):
        start = time.perf_counter()
        external_one()
        external.append(time.perf_counter() - start)
    return {"add": add, "external": external}


def cleanup(url: str, first_port: int, n: int) -> None:
    sys.path.insert(0, MODULE_UTILS)
    from portmap.upnp import IgdSession  # pylint: disable=import-outside-toplevel

    session = IgdSession(GATEWAY, upnp_url=url, timeout=10.0)
    for port in range(first_port, first_port + n):
        session.delete("tcp", port)


# ---------------------------------------------------------------- controller

def run_worker(topo: Topology, argv: List[str]) -> Any:
    result = topo.run(topo.hosts[0], [BENCH_PYTHON, os.path.abspath(__file__), *argv], timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"worker {argv} failed: {result.stderr[-800:]}")
    return json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else None


def bench(rounds: int, n: int, n_external: int, n_process: int) -> Dict[str, Dict[str, List[float]]]:
    times: Dict[str, Dict[str, List[float]]] = {tool: {op: [] for op in OPS} for tool in TOOLS}
    with Topology(hosts=1, tag="ub" + os.urandom(2).hex()) as topo, Miniupnpd(topo, upnp=True) as daemon:
        topo.assert_sealed()
        url, local = daemon.description_url, topo.host_addresses[0]
        port = 20000
        for round_ in range(rounds):
            for tool in TOOLS[round_ % len(TOOLS):] + TOOLS[:round_ % len(TOOLS)]:
                count, external = (n_process, n_process) if tool == "upnpc" else (n, n_external)
                got = run_worker(topo, ["--worker", tool, url, local, str(port), str(count), str(external)])
                run_worker(topo, ["--cleanup", url, str(port), str(count)])
                port += count
                for op in OPS:
                    times[tool][op].extend(got[op])
    return times


def rows(times: Dict[str, Dict[str, List[float]]]) -> List[Dict[str, Any]]:
    """Per request and tool: n, median and p90 (seconds), and the median's ratio to the binding's."""
    out = []
    for op, name in OPS.items():
        base = statistics.median(times["binding"][op])
        for tool in TOOLS:
            values = sorted(times[tool][op])
            median, p90 = statistics.median(values), values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
            out.append({"tool": tool, "label": LABELS[tool], "op": op,
                        "request": "upnpc -s (4 actions)" if tool == "upnpc" and op == "external" else name,
                        "n": len(values), "median": median, "p90": p90, "ratio": median / base})
    return out


def table(times: Dict[str, Dict[str, List[float]]]) -> List[str]:
    lines = ["| client | request | n | median ms | p90 ms | median vs binding |", "|---|---|---:|---:|---:|---:|"]
    for row in rows(times):
        lines.append(f"| {row['label']} | {row['request']} | {row['n']} | {row['median'] * 1000:.3f} "
                     f"| {row['p90'] * 1000:.3f} | {row['ratio']:.2f}x |")
    return lines


def unavailable() -> Optional[str]:
    """Why the comparison cannot run here, or None."""
    for ok, why in (netns_available(), available()):
        if not ok:
            return why
    if not os.path.exists(BENCH_PYTHON):
        return ".venv-bench-upnp is missing (scripts/bench.sh makes it: pip install -r benchmarks/requirements-upnp.txt)"
    if not shutil.which("upnpc"):
        return "Debian's upnpc (package miniupnpc) is not installed"
    return None


def measure(rounds: int = 5, n: int = 60, n_external: int = 600,
            n_process: int = 20) -> Tuple[Optional[Dict[str, Dict[str, List[float]]]], str]:
    """(the times, "") or (None, why not): what ``make bench`` and this module's command call."""
    why = unavailable()
    if why:
        return None, why
    return bench(rounds, n, n_external, n_process), ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=60, help="AddPortMapping requests per round, in-process clients")
    parser.add_argument("--n-external", type=int, default=600,
                        help="GetExternalIPAddress requests per round, in-process clients")
    parser.add_argument("--n-process", type=int, default=20, help="requests of each kind per round, upnpc")
    parser.add_argument("--worker", nargs=6, metavar=("TOOL", "URL", "LOCAL", "PORT", "N", "N_EXTERNAL"))
    parser.add_argument("--cleanup", nargs=3, metavar=("URL", "PORT", "N"))
    args = parser.parse_args()
    if args.worker:
        tool, url, local, port, count, external = args.worker
        print(json.dumps(work(tool, url, local, int(port), int(count), int(external))))
        return 0
    if args.cleanup:
        url, port, count = args.cleanup
        cleanup(url, int(port), int(count))
        return 0
    started = time.monotonic()
    times, why = measure(args.rounds, args.n, args.n_external, args.n_process)
    if times is None:
        print(f"upnp bench: {why}", file=sys.stderr)
        return 1
    print("\n".join(table(times)))
    print(f"\n{args.rounds} rounds, alternating clients; miniupnpd 2.3.1 (IGDv2) in sealed namespaces; "
          f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
