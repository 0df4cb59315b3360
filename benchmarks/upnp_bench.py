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
- the floor of any Python client: our GetExternalIPAddress request's bytes over a bare socket
  (connect, send, receive until the Content-Length is there, close) with the socket module's
  timeouts, as our transport uses them, and no parsing;
- Debian's ``upnpc``, a process per request, given the description URL (``-u``): each run
  fetches the description, then ``-a`` sends AddPortMapping and ``-s`` four actions, among them
  GetExternalIPAddress.
Both in-process clients run in one process of the bench venv's interpreter, taking turns in
blocks (10 AddPortMapping, 50 GetExternalIPAddress), after a few untimed GetExternalIPAddress
calls each (the interpreter's warm-up); each round is such a process and one of upnpc's, in
alternating order, so drift on the shared machine falls on all of them alike.
GetExternalIPAddress costs the gateway little, so it gets more samples than AddPortMapping
(about 9 ms of miniupnpd's nftables work each).  Every namespace and process started here is
removed here, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.harness.miniupnpd import Miniupnpd, available  # noqa: E402  pylint: disable=wrong-import-position
from tests.harness.netns import Topology, netns_available  # noqa: E402  pylint: disable=wrong-import-position

BENCH_PYTHON = os.path.join(REPO, ".venv-bench-upnp", "bin", "python")
# The client measured: this checkout's, or the plugins/module_utils folder named by
# PORTMAP_BENCH_MODULE_UTILS (another revision's: benchmarks/compare.py).
MODULE_UTILS = os.environ.get("PORTMAP_BENCH_MODULE_UTILS") or os.path.join(REPO, "plugins", "module_utils")
GATEWAY = "192.168.77.1"
TOOLS = ("ours", "binding", "socket", "upnpc")
LABELS = {"ours": "portmap IgdSession (in-process)", "binding": "PyPI miniupnpc 2.3.3 binding (in-process)",
          "socket": "floor: Python socket, our request's bytes, no parsing", "upnpc": "upnpc 2.2.4 (a process each)"}
OPS = {"add": "AddPortMapping", "external": "GetExternalIPAddress"}
WARMUP = 20
BLOCKS = {"add": 10, "external": 50}  # requests of one tool in a row, then the other's


# ---------------------------------------------------------------- worker (runs inside the host namespace)

def igd_module() -> Any:
    """The module of IgdSession in the revision measured (methods/igd.py; portmap/upnp.py before the methods)."""
    sys.path.insert(0, MODULE_UTILS)
    try:
        from portmap.methods import igd  # pylint: disable=import-outside-toplevel
    except ImportError:
        from portmap import upnp as igd  # pylint: disable=import-outside-toplevel,no-name-in-module
    return igd


def client(tool: str, url: str, local: str) -> Tuple[Optional[Callable[[int], None]], Callable[[], Any]]:
    """The tool's AddPortMapping (of a port; None: not measured) and GetExternalIPAddress, the IGD found once."""
    if tool == "socket":
        return None, bare_socket(url)
    if tool == "ours":
        session = igd_module().IgdSession(GATEWAY, upnp_url=url)
        session.discover()
        return (lambda port: session.map("tcp", port, port, 3600, "bench")), session.external_address
    if tool == "binding":
        import miniupnpc  # pylint: disable=import-outside-toplevel,import-error

        igd = miniupnpc.UPnP()
        igd.discoverdelay = 200
        igd.discover()
        igd.selectigd()

        def add_one(port: int) -> None:
            if not igd.addportmapping(port, "TCP", local, port, "bench", ""):
                raise RuntimeError("addportmapping failed")
        return add_one, igd.externalipaddress

    def add_process(port: int) -> None:
        subprocess.run(["upnpc", "-u", url, "-a", local, str(port), str(port), "TCP", "3600"], check=True,
                       capture_output=True)

    def external_process() -> None:
        out = subprocess.run(["upnpc", "-u", url, "-s"], check=True, capture_output=True, text=True).stdout
        if "ExternalIPAddress" not in out:
            raise RuntimeError(f"upnpc -s printed no external address: {out[-300:]}")
    return add_process, external_process


def bare_socket(url: str) -> Callable[[], bytes]:
    igd = igd_module()
    from portmap import wire_upnp  # pylint: disable=import-outside-toplevel

    session = igd.IgdSession(GATEWAY, upnp_url=url)
    service = session.discover().service
    body, soap_action = wire_upnp.encode_action(service.service_type, wire_upnp.get_external_ip_address())
    # The very bytes IgdSession sends (its transport's head for the action, then the envelope).
    host, port, _where, head = session._http._head(  # pylint: disable=protected-access
        "POST", service.control_url, len(body), (igd._CONTENT_TYPE, ("SOAPAction", soap_action)))  # pylint: disable=protected-access
    request = head + body

    def exchange() -> bytes:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(3.0)
            sock.connect((host, port))
            sock.settimeout(3.0)
            sock.sendall(request)
            sock.settimeout(3.0)
            data = sock.recv(65536)
            end = data.find(b"\r\n\r\n")
            length = int(data[data.find(b"Content-Length:") + 15:end].split(b"\r\n", 1)[0])
            while len(data) < end + 4 + length:
                data += sock.recv(65536)
            return data
        finally:
            sock.close()
    return exchange


def work(tools: List[str], url: str, local: str, first_port: int, n: int, n_external: int) -> Dict[str, Dict[str, List[float]]]:
    """The tools in one process, in alternating blocks; tool k maps ports first_port + k * n onwards.

    Each request kind in blocks of its own: the gateway's work for one is not timed in another.
    """
    made = {tool: client(tool, url, local) for tool in tools}
    times: Dict[str, Dict[str, List[float]]] = {tool: {op: [] for op in OPS} for tool in tools}
    for tool in tools:
        for _i in range(WARMUP if tool != "upnpc" else 0):
            made[tool][1]()
    for op, total in (("add", n), ("external", n_external)):
        block = min(BLOCKS[op], total) or 1
        for start in range(0, total, block):
            turn = start // block % len(tools)
            for tool in tools[turn:] + tools[:turn]:
                call, got = made[tool][0 if op == "add" else 1], times[tool][op]
                if call is None:
                    continue
                base = first_port + tools.index(tool) * n
                for i in range(start, min(start + block, total)):
                    began = time.perf_counter()
                    if op == "add":
                        call(base + i)
                    else:
                        call()
                    got.append(time.perf_counter() - began)
    return times


def cleanup(url: str, first_port: int, n: int) -> None:
    session = igd_module().IgdSession(GATEWAY, upnp_url=url, timeout=10.0)
    for port in range(first_port, first_port + n):
        session.delete("tcp", port)


# ---------------------------------------------------------------- controller

def run_worker(topo: Topology, argv: List[str], module_utils: Optional[str] = None) -> Any:
    """This module's worker in the host namespace; ``module_utils``: whose ``portmap`` it loads (default this checkout's)."""
    env = dict(os.environ, PORTMAP_BENCH_MODULE_UTILS=module_utils) if module_utils else None
    result = topo.run(topo.hosts[0], [BENCH_PYTHON, os.path.abspath(__file__), *argv], timeout=900, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"worker {argv} failed: {result.stderr[-800:]}")
    return json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else None


def bench(rounds: int, n: int, n_external: int, n_process: int) -> Dict[str, Dict[str, List[float]]]:
    times: Dict[str, Dict[str, List[float]]] = {tool: {op: [] for op in OPS} for tool in TOOLS}
    runs = [["ours", "binding", "socket"], ["upnpc"]]  # in-process ones in one process, upnpc's processes in another
    with Topology(hosts=1, tag="ub" + os.urandom(2).hex()) as topo, Miniupnpd(topo, upnp=True) as daemon:
        topo.assert_sealed()
        url, local = daemon.description_url, topo.host_addresses[0]
        port = 20000
        for round_ in range(rounds):
            for tools in runs[round_ % 2:] + runs[:round_ % 2]:
                tools = tools[round_ % len(tools):] + tools[:round_ % len(tools)]
                count, external = (n_process, n_process) if tools == ["upnpc"] else (n, n_external)
                got = run_worker(topo, ["--worker", ",".join(tools), url, local, str(port), str(count), str(external)])
                run_worker(topo, ["--cleanup", url, str(port), str(count * len(tools))])  # the floor maps none
                port += count * len(tools)
                for tool in tools:
                    for op in OPS:
                        times[tool][op].extend(got[tool][op])
    return times


def rows(times: Dict[str, Dict[str, List[float]]]) -> List[Dict[str, Any]]:
    """Per request and tool: n, median and p90 (seconds), and the median's ratio to the binding's."""
    out = []
    for op, name in OPS.items():
        base = statistics.median(times["binding"][op])
        for tool in TOOLS:
            values = sorted(times[tool][op])
            if not values:
                continue
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
    parser.add_argument("--worker", nargs=6, metavar=("TOOLS", "URL", "LOCAL", "PORT", "N", "N_EXTERNAL"))
    parser.add_argument("--cleanup", nargs=3, metavar=("URL", "PORT", "N"))
    args = parser.parse_args()
    if args.worker:
        tools, url, local, port, count, external = args.worker
        print(json.dumps(work(tools.split(","), url, local, int(port), int(count), int(external))))
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
