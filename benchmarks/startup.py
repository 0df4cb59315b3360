"""How fast `portmap-natpmp public` starts, next to `python3 -c pass` and Debian's natpmpc.

    .venv/bin/python -m benchmarks.startup [--runs N] [--module-utils DIR]

The command is installed as the renewal role installs it (the client package copied and
compiled with the host's Python, the thin entry script), into a temporary folder; the
simulated gateway answers on loopback.  Prints the median and best wall time of each over
N runs (the commands run in turn), next to the import of the standard-library modules the
command needs (its floor), and the import time of each of our modules (``python3 -X importtime``, self and
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
from typing import Dict, List, Tuple

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


# The standard-library modules the command cannot do without (sockets, JSON, the codecs' struct
# and ipaddress, the lock's fcntl): their import alone is the floor under any pure-Python client.
FLOOR = "import socket, json, struct, fcntl, ipaddress, errno"


def interleaved(commands: Dict[str, List[str]], runs: int) -> Dict[str, Dict[str, float]]:
    """Wall time of each command, run in turn (so load on the machine hits them all alike)."""
    walls: Dict[str, List[float]] = {name: [] for name in commands}
    for _run in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            walls[name].append((time.perf_counter() - start) * 1000)
    return {name: {"median": statistics.median(values), "best": min(values)} for name, values in walls.items()}


def seed_ledger(command: Path, ledger: Path, mappings: int) -> None:
    for port in range(20000, 20000 + mappings):
        subprocess.run([str(command), "--gateway", GATEWAY, "--ledger", str(ledger), "map", "tcp", str(port)],
                       check=True, capture_output=True)


def measure(module_utils: Path, runs: int) -> Tuple[Dict[str, Dict[str, float]], List[str]]:
    """The start-up table (ms) and the import-time rows of our modules, against a simulated gateway on loopback."""
    work = Path(tempfile.mkdtemp(prefix="portmap-startup-"))
    try:
        work.chmod(0o700)
        command = install(module_utils, work)
        empty, held = work / "empty" / "ledger.json", work / "held" / "ledger.json"
        for folder in (empty.parent, held.parent):
            folder.mkdir(mode=0o700)
        with SimulatedGateway(address=GATEWAY, control_path=str(work / "gw.sock")):
            seed_ledger(command, held, 5)
            commands = {
                "python3 -c pass": [HOST_PYTHON, "-c", "pass"],
                "python3 -c '" + FLOOR + "'": [HOST_PYTHON, "-c", FLOOR],
                "portmap-natpmp public (no ledger yet)": [str(command), "--gateway", GATEWAY, "--ledger", str(empty), "public"],
                "portmap-natpmp public (5 mappings held)": [str(command), "--gateway", GATEWAY, "--ledger", str(held), "public"],
            }
            natpmpc = shutil.which("natpmpc")
            if natpmpc:
                commands["natpmpc -g (public address)"] = [natpmpc, "-g", GATEWAY]
            rows = interleaved(commands, runs)
            imports = import_table(command, held)
        return rows, imports
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(rows: Dict[str, Dict[str, float]], runs: int) -> List[str]:
    base = rows["python3 -c pass"]["median"]
    lines = [f"| command ({runs} runs each, interleaved; {HOST_PYTHON}) | median ms | best ms | median vs python3 -c pass |",
             "|---|---:|---:|---:|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['median']:.1f} | {row['best']:.1f} | {row['median'] / base:.2f}x |")
    return lines


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
    rows, imports = measure(Path(args.module_utils), args.runs)
    print("\n".join(table(rows, args.runs)))
    print()
    print("| module (`portmap-natpmp public`, 5 mappings held) | self us | cumulative us |")
    print("|---|---:|---:|")
    print("\n".join(imports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
