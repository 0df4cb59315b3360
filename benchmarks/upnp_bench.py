"""UPnP IGD latency against the real miniupnpd in sealed namespaces: ours, the PyPI miniupnpc binding, upnpc.

    /usr/bin/python3 -m venv .venv-bench-upnp && .venv-bench-upnp/bin/pip install -r benchmarks/requirements-upnp.txt
    .venv/bin/python -m benchmarks.upnp_bench [--rounds 5] [--n 60] [--n-process 20]

Measured, per request, from the host namespace to miniupnpd's UPnP IGD (IGDv2) on the
gateway namespace: AddPortMapping (a new external port each time) and GetExternalIPAddress.
- ours: the IgdSession of plugins/module_utils/portmap, in-process, the IGD found once before timing;
- the PyPI ``miniupnpc`` binding (libminiupnpc), in-process, from ``.venv-bench-upnp``, the IGD
  selected once before timing;
- Debian's ``upnpc``, a process per request, given the description URL (``-u``): each run
  fetches the description, then ``-a`` sends AddPortMapping and ``-s`` four actions, among them
  GetExternalIPAddress.
Both in-process clients run in the same interpreter (the bench venv's), in alternating rounds,
so drift on the shared machine falls on both.  Every namespace and process started here is
removed here, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.plot import percentiles  # noqa: E402  pylint: disable=wrong-import-position
from tests.harness.miniupnpd import Miniupnpd, available  # noqa: E402  pylint: disable=wrong-import-position
from tests.harness.netns import Topology, netns_available  # noqa: E402  pylint: disable=wrong-import-position

BENCH_PYTHON = os.path.join(REPO, ".venv-bench-upnp", "bin", "python")
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
GATEWAY = "192.168.77.1"
TOOLS = ("ours", "binding", "upnpc")
LABELS = {"ours": "portmap IgdSession (in-process)", "binding": "PyPI miniupnpc 2.3.3 binding (in-process)",
          "upnpc": "upnpc 2.2.4 (a process each)"}


# ---------------------------------------------------------------- worker (runs inside the host namespace)

def work(tool: str, url: str, local: str, first_port: int, n: int) -> Dict[str, List[float]]:
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
    for i in range(n):  # each request in a run of its own kind: the gateway's work for one is not timed in another
        start = time.perf_counter()
        add_one(first_port + i)
        add.append(time.perf_counter() - start)
    for i in range(n):
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


def bench(rounds: int, n: int, n_process: int) -> Dict[str, Dict[str, List[float]]]:
    times: Dict[str, Dict[str, List[float]]] = {tool: {"add": [], "external": []} for tool in TOOLS}
    with Topology(hosts=1) as topo, Miniupnpd(topo, upnp=True) as daemon:
        topo.assert_sealed()
        url, local = daemon.description_url, topo.host_addresses[0]
        port = 20000
        for _round in range(rounds):
            for tool in TOOLS:
                count = n_process if tool == "upnpc" else n
                got = run_worker(topo, ["--worker", tool, url, local, str(port), str(count)])
                run_worker(topo, ["--cleanup", url, str(port), str(count)])
                port += count
                for op in ("add", "external"):
                    times[tool][op].extend(got[op])
    return times


def table(times: Dict[str, Dict[str, List[float]]]) -> str:
    rows = ["| client | request | n | median ms | p99 ms | median vs binding |", "| --- | --- | --- | --- | --- | --- |"]
    names = {"add": "AddPortMapping", "external": "GetExternalIPAddress"}
    for op in ("add", "external"):
        base = percentiles(times["binding"][op])["p50"]
        for tool in TOOLS:
            values = times[tool][op]
            p = percentiles(values)
            request = names[op] if tool != "upnpc" or op == "add" else "upnpc -s (4 actions)"
            rows.append(f"| {LABELS[tool]} | {request} | {len(values)} | {p['p50'] * 1000:.3f} | {p['p99'] * 1000:.3f} "
                        f"| {p['p50'] / base:.2f}x |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=60, help="requests per round, in-process clients")
    parser.add_argument("--n-process", type=int, default=20, help="requests per round, upnpc")
    parser.add_argument("--worker", nargs=5, metavar=("TOOL", "URL", "LOCAL", "PORT", "N"))
    parser.add_argument("--cleanup", nargs=3, metavar=("URL", "PORT", "N"))
    args = parser.parse_args()
    if args.worker:
        tool, url, local, port, count = args.worker
        print(json.dumps(work(tool, url, local, int(port), int(count))))
        return 0
    if args.cleanup:
        url, port, count = args.cleanup
        cleanup(url, int(port), int(count))
        return 0
    for ok, why in (netns_available(), available()):
        if not ok:
            print(f"upnp bench: {why}", file=sys.stderr)
            return 1
    if not os.path.exists(BENCH_PYTHON) or not shutil.which("upnpc"):
        print("upnp bench: needs .venv-bench-upnp with miniupnpc (pip install miniupnpc) and Debian's upnpc",
              file=sys.stderr)
        return 1
    started = time.monotonic()
    times = bench(args.rounds, args.n, args.n_process)
    print(table(times))
    print(f"\n{args.rounds} rounds, alternating clients; miniupnpd 2.3.1 (IGDv2) in sealed namespaces; "
          f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
