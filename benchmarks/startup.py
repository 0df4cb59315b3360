"""How fast `portmap-natpmp public` starts, next to `python3 -c pass` and Debian's natpmpc.

    .venv/bin/python -m benchmarks.startup [--runs N] [--module-utils DIR]

The command is installed as the renewal role installs it (the client package copied and
compiled with the host's Python, the thin entry script), into a temporary folder; the
simulated gateway answers on loopback.  Prints the median and best wall time of each over
N runs, and the import time of each of our modules (``python3 -X importtime``, self and
cumulative, microseconds) for the modules `public` loads.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from simgw import SimulatedGateway

REPO = Path(__file__).resolve().parents[1]
HOST_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
GATEWAY = "127.0.0.53"


def install(module_utils: Path, folder: Path) -> Path:
    """The command as the role lays it out: lib/portmap (compiled) and the entry script."""
    lib = folder / "lib"
    shutil.copytree(module_utils / "portmap", lib / "portmap", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([HOST_PYTHON, "-m", "compileall", "-q", str(lib / "portmap")], check=True)
    command = folder / "portmap-natpmp"
    command.write_text(f"#!{HOST_PYTHON}\nimport sys\nsys.path.insert(0, {str(lib)!r})\n"
                       "from portmap.cli import main\nsys.exit(main())\n")
    command.chmod(0o755)
    return command


def timed(argv: List[str], runs: int) -> Dict[str, float]:
    walls = []
    for _run in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        walls.append((time.perf_counter() - start) * 1000)
    return {"median": statistics.median(walls), "best": min(walls)}


def import_table(command: Path, ledger: Path) -> List[str]:
    proc = subprocess.run([HOST_PYTHON, "-X", "importtime", str(command), "--gateway", GATEWAY, "--ledger", str(ledger),
                           "public"], capture_output=True, text=True, check=True)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "portmap" not in line:
            continue
        _label, self_us, cumulative, name = (part.strip() for part in line.replace("import time:", "x|").split("|"))
        rows.append(f"| {name.strip()} | {self_us} | {cumulative} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--module-utils", default=str(REPO / "plugins" / "module_utils"),
                        help="the plugins/module_utils folder to install (another checkout's, to compare)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="portmap-startup-"))
    try:
        work.chmod(0o700)
        command = install(Path(args.module_utils), work)
        ledger = work / "ledger.json"
        with SimulatedGateway(address=GATEWAY, control_path=str(work / "gw.sock")):
            rows = {
                "python3 -c pass": timed([HOST_PYTHON, "-c", "pass"], args.runs),
                "portmap-natpmp public": timed([str(command), "--gateway", GATEWAY, "--ledger", str(ledger), "public"],
                                               args.runs),
            }
            natpmpc = shutil.which("natpmpc")
            if natpmpc:
                rows["natpmpc -g (public address)"] = timed([natpmpc, "-g", GATEWAY], args.runs)
            imports = import_table(command, ledger)
        base = rows["python3 -c pass"]["median"]
        print(f"| command ({args.runs} runs, {HOST_PYTHON}) | median ms | best ms | median vs python3 -c pass |")
        print("|---|---:|---:|---:|")
        for name, row in rows.items():
            print(f"| {name} | {row['median']:.1f} | {row['best']:.1f} | {row['median'] / base:.2f}x |")
        print()
        print("| module (`portmap-natpmp public`) | self us | cumulative us |")
        print("|---|---:|---:|")
        print("\n".join(imports))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
