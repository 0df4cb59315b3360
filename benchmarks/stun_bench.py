"""STUN classification wall time: a responsive coturn, and a silent one (figures, not assertions).

    .venv/bin/python -m benchmarks.stun_bench [--runs 20] [--silent-runs 3] [--timeout 3]

Builds the lab of tests/harness/natshapes.py (sealed namespaces, coturn on the WAN side) in two
shapes: ``full-cone`` (every test answered) and ``masquerade`` (the filtering tests pass by
getting no answer, so they wait their stated 0.8 s each); then stops coturn and measures the
silent server (Blocked, at the deadline).  Each classification runs in the host's namespace
and is timed there, from the first send to the verdict.  Everything started here is removed here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.harness import natshapes  # noqa: E402  pylint: disable=wrong-import-position
from tests.harness.netns import netns_available  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import plot  # noqa: E402  pylint: disable=wrong-import-position

RUNNER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from portmap.stun import StunClient
server, runs, timeout = (sys.argv[2], 3478), int(sys.argv[3]), float(sys.argv[4])
for _ in range(runs):
    client = StunClient(server, timeout=timeout)
    started = time.monotonic()
    found = client.classify()
    print(json.dumps({"wall": time.monotonic() - started, "type": found.classic, "sends": client.sends}), flush=True)
"""


def measure(lab: natshapes.NatLab, runs: int, timeout: float) -> List[Dict]:
    argv = [sys.executable, "-c", RUNNER, os.path.join(REPO, "plugins", "module_utils"), lab.server, str(runs),
            str(timeout)]
    proc = lab.run(lab.client_ns, argv, timeout=runs * (timeout + 5) + 30)
    if proc.returncode != 0:
        raise RuntimeError(f"the classification failed in {lab.client_ns}: {proc.stderr.strip()[-500:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def row(label: str, results: List[Dict]) -> str:
    walls = [r["wall"] for r in results]
    cut = plot.percentiles(walls)  # p1, p25, p50, p75, p99
    kinds = ", ".join(sorted({r["type"] for r in results}))
    sends = statistics.median(r["sends"] for r in results)
    return (f"| {label} | {kinds} | {len(walls)} | {statistics.median(walls) * 1000:.1f} | {cut['p75'] * 1000:.1f} | "
            f"{max(walls) * 1000:.1f} | {sends:g} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=20, help="classifications per responsive shape")
    parser.add_argument("--silent-runs", type=int, default=3, help="classifications against the silent server")
    parser.add_argument("--timeout", type=float, default=3.0, help="the first Binding request's deadline, seconds")
    args = parser.parse_args()
    ok, why = netns_available()
    usable, missing = natshapes.available()
    if not ok or not usable:
        print(f"stun_bench: {why or missing}", file=sys.stderr)
        return 2
    lines = ["| server | verdict | n | median ms | p75 ms | max ms | sends |", "|---|---|---|---|---|---|---|"]
    for shape in ("full-cone", "masquerade"):
        lab = natshapes.NatLab(shape)
        try:
            lab.create()
            lines.append(row(f"responsive, {shape}", measure(lab, args.runs, args.timeout)))
            if shape == "masquerade" and lab.coturn is not None:
                lab.stop(lab.coturn)
                lines.append(row(f"silent (coturn stopped), deadline {args.timeout:g} s",
                                 measure(lab, args.silent_runs, args.timeout)))
        finally:
            lab.destroy()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
