"""One benchmark measurement, run as its own process (also inside a network namespace).

    python benchmarks/worker.py latency --tool TOOL[,TOOL...] --op map|public --gateway G --n N [--port P] [--block K]
    python benchmarks/worker.py load --gateway G --method natpmp|pcp --seconds S --sockets K
    python benchmarks/worker.py fill --gateway G --count N
    python benchmarks/worker.py ledger --gateway G --count N --ledger PATH --lock PATH

Prints one JSON object.  TOOL: ours-natpmp, ours-pcp, ours-cli (the `portmap-natpmp` command,
a process per request), pypi (the PyPI NAT-PMP package; run with an interpreter that has it),
natpmpc (Debian's, a process per request).  Only the standard library is needed, except for
the pypi tool.  The client measured is the `portmap` package of this checkout's
plugins/module_utils, or of the folder named by PORTMAP_BENCH_MODULE_UTILS (another revision's,
as benchmarks/compare.py lays it out).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE_UTILS = os.environ.get("PORTMAP_BENCH_MODULE_UTILS") or os.path.join(REPO, "plugins", "module_utils")
sys.path.insert(0, MODULE_UTILS)

from portmap import wire_natpmp, wire_pcp  # noqa: E402  pylint: disable=wrong-import-position
from portmap.client import Client  # noqa: E402  pylint: disable=wrong-import-position
from portmap.errors import PortmapError  # noqa: E402  pylint: disable=wrong-import-position

CLI = [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); from portmap.cli import main; "
       "sys.exit(main())", MODULE_UTILS]


def timed(call: Callable[[], Any], n: int) -> Dict[str, Any]:
    """Seconds per call; failures are counted and their time kept too (give-up times)."""
    times: List[float] = []
    errors: List[str] = []
    for _call in range(n):
        start = time.perf_counter()
        try:
            call()
        except Exception as exc:  # pylint: disable=broad-except  # a peer's own error types
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
        times.append(time.perf_counter() - start)
    return {"times": times, "errors": len(errors), "first_error": errors[0] if errors else ""}


def run_checked(argv: List[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:150]}")


def latency(args: argparse.Namespace) -> Dict[str, Any]:
    """One tool's times; TOOL may be a comma-separated list: the tools then take turns in blocks of
    --block calls (the first of them rotating from block to block), each on a port of its own
    (--port, --port + 1, ...), so that load on the machine falls on all of them alike: {tool: times}."""
    folder = tempfile.mkdtemp(prefix="portmap-bench-")
    try:
        tools = args.tool.split(",")
        calls = {tool: request(tool, args.op, args.gateway, args.port + index, os.path.join(folder, str(index)))
                 for index, tool in enumerate(tools)}
        if len(tools) == 1:
            return timed(calls[tools[0]], args.n)
        results: Dict[str, Any] = {tool: {"times": [], "errors": 0, "first_error": ""} for tool in tools}
        for start in range(0, args.n, args.block):
            turn = start // args.block % len(tools)
            for tool in tools[turn:] + tools[:turn]:
                part, row = timed(calls[tool], min(args.block, args.n - start)), results[tool]
                row["times"] += part["times"]
                row["errors"] += part["errors"]
                row["first_error"] = row["first_error"] or part["first_error"]
        return results
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def request(tool: str, op: str, gateway: str, port: int, folder: str) -> Callable[[], Any]:
    """The tool's request, ready to call: ``op`` (map ``port``, or public) to ``gateway``."""
    os.makedirs(folder)
    lock = os.path.join(folder, "lock")
    if tool in ("ours-natpmp", "ours-pcp"):
        client = Client(gateway, method=tool.split("-")[1], lock_path=lock)
        nonce = {"value": ""}

        def ours() -> None:
            if op == "public":
                client.public_address()
            else:
                granted = client.map("tcp", port, port, 3600, nonce=nonce["value"])
                nonce["value"] = granted.nonce
        return ours
    if tool == "ours-cli":
        base = CLI + ["--gateway", gateway, "--method", "natpmp", "--lock", lock,
                      "--ledger", os.path.join(folder, "ledger.json")]
        argv = base + (["public"] if op == "public" else ["map", "tcp", str(port), "--lifetime", "3600"])
        return lambda: run_checked(argv)
    if tool == "natpmpc":
        argv = ["natpmpc", "-g", gateway] + ([] if op == "public" else ["-a", str(port), str(port), "tcp", "3600"])
        return lambda: run_checked(argv)
    if tool == "pypi":
        import natpmp  # pylint: disable=import-outside-toplevel,import-error

        if op == "public":
            return lambda: natpmp.get_public_address(gateway_ip=gateway)
        return lambda: natpmp.map_tcp_port(port, port, 3600, gateway_ip=gateway)
    raise SystemExit(f"unknown tool {tool}")


def request_bytes(method: str, port: int, local: str) -> bytes:
    if method == "natpmp":
        return wire_natpmp.encode_map_request("tcp", port, port, 3600)
    return wire_pcp.encode_map_request(local, bytes([port % 251 + 1]) * 12, "tcp", port, port, 3600)


def load(args: argparse.Namespace) -> Dict[str, Any]:
    """Closed loop: each of K sockets sends a request as soon as the previous reply came."""
    selector = selectors.DefaultSelector()
    socks = []
    for index in range(args.sockets):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect((args.gateway, 5351))
        sock.setblocking(False)
        data = request_bytes(args.method, 20000 + index, sock.getsockname()[0])
        selector.register(sock, selectors.EVENT_READ, data)
        sock.send(data)
        socks.append(sock)
    replies = lost = 0
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        events = selector.select(0.2)
        if not events:  # a lost datagram: send again on every socket
            lost += 1
            for sock in socks:
                sock.send(selector.get_key(sock).data)
            continue
        for key, _mask in events:
            try:
                key.fileobj.recv(2048)
            except BlockingIOError:
                continue
            replies += 1
            key.fileobj.send(key.data)
    for sock in socks:
        sock.close()
    return {"replies": replies, "seconds": args.seconds, "per_second": replies / args.seconds, "stalls": lost}


def fill(args: argparse.Namespace) -> Dict[str, Any]:
    """N distinct mappings, K requests in flight."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((args.gateway, 5351))
    sock.settimeout(1.0)
    granted, port, pending = 0, 30000, set()
    last = 30000 + args.count
    while granted < args.count:
        while port < last and len(pending) < 32:
            sock.send(wire_natpmp.encode_map_request("tcp", port, port, 86400))
            pending.add(port)
            port += 1
        try:
            reply = wire_natpmp.decode_reply(sock.recv(64))
        except socket.timeout:
            for again in pending:
                sock.send(wire_natpmp.encode_map_request("tcp", again, again, 86400))
            continue
        if reply.internal_port in pending and reply.result == 0:
            pending.discard(reply.internal_port)
            granted += 1
    sock.close()
    return {"granted": granted}


def ledger(args: argparse.Namespace) -> Dict[str, Any]:
    """A ledger of N entries, made through the module's code path."""
    from portmap.ledger import Ledger  # pylint: disable=import-outside-toplevel
    from portmap.lock import HostLock  # pylint: disable=import-outside-toplevel
    from portmap.manage import Desired, Manager  # pylint: disable=import-outside-toplevel

    lock = HostLock(args.lock)
    manager = Manager(Ledger(args.ledger, lock), Client(args.gateway, method="natpmp", lock=lock))
    result = manager.present([Desired("tcp", port, port, 3600) for port in range(40000, 40000 + args.count)])
    return {"entries": len(result["mappings"])}


def main() -> int:
    parser = argparse.ArgumentParser(description="One benchmark measurement.")
    sub = parser.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--tool", required=True)
    lat.add_argument("--op", choices=("map", "public"), default="map")
    lat.add_argument("--n", type=int, default=100)
    lat.add_argument("--port", type=int, default=8080)
    lat.add_argument("--block", type=int, default=1, help="calls of one tool in a row, with more than one tool")
    ld = sub.add_parser("load")
    ld.add_argument("--method", choices=("natpmp", "pcp"), default="natpmp")
    ld.add_argument("--seconds", type=float, default=5.0)
    ld.add_argument("--sockets", type=int, default=16)
    fl = sub.add_parser("fill")
    fl.add_argument("--count", type=int, default=10000)
    lg = sub.add_parser("ledger")
    lg.add_argument("--count", type=int, required=True)
    lg.add_argument("--ledger", required=True)
    lg.add_argument("--lock", required=True)
    for each in (lat, ld, fl, lg):
        each.add_argument("--gateway", required=True)
    args = parser.parse_args()
    try:
        result = {"latency": latency, "load": load, "fill": fill, "ledger": ledger}[args.what](args)
    except PortmapError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
