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
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

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


def walls(commands: Dict[str, List[str]], runs: int) -> Dict[str, List[float]]:
    """Wall times (ms) of each command, run in turn (so load on the machine hits them all alike)."""
    times: Dict[str, List[float]] = {name: [] for name in commands}
    for _run in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def interleaved(commands: Dict[str, List[str]], runs: int) -> Dict[str, Dict[str, float]]:
    """The median and best wall time (ms) of each command, run in turn."""
    return {name: {"median": statistics.median(values), "best": min(values)}
            for name, values in walls(commands, runs).items()}


def seed_ledger(command: Path, ledger: Path, mappings: int, gateway: str = GATEWAY, first_port: int = 20000) -> None:
    for port in range(first_port, first_port + mappings):
        subprocess.run([str(command), "--gateway", gateway, "--ledger", str(ledger), "map", "tcp", str(port)],
                       check=True, capture_output=True)


CASES = ("no ledger yet", "5 mappings held")


@contextlib.contextmanager
def installed(packages: Dict[str, Path], gateway: str = GATEWAY) -> Iterator[Dict[str, Dict[str, List[str]]]]:
    """Each named plugins/module_utils folder's command installed (a temporary folder, removed after), a ledger
    of 5 mappings made with it, and the simulated gateway answering on ``gateway``: per name, the argv of
    `portmap-natpmp public` in each of CASES."""
    work = Path(tempfile.mkdtemp(prefix="portmap-startup-"))
    try:
        work.chmod(0o700)
        argvs: Dict[str, Dict[str, List[str]]] = {}
        held: List[Tuple[Path, Path]] = []
        for index, (name, module_utils) in enumerate(packages.items()):
            folder = work / f"package{index}"
            folder.mkdir()
            command = install(module_utils, folder)
            ledgers = [folder / f"ledger{number}" / "ledger.json" for number in range(len(CASES))]
            for ledger in ledgers:
                ledger.parent.mkdir(mode=0o700)
            held.append((command, ledgers[1]))
            argvs[name] = {case: [str(command), "--gateway", gateway, "--ledger", str(ledger), "public"]
                           for case, ledger in zip(CASES, ledgers)}
        with SimulatedGateway(address=gateway, control_path=str(work / "gw.sock")):
            for index, (command, ledger) in enumerate(held):  # ports of its own: each PCP client has a nonce of its own
                seed_ledger(command, ledger, 5, gateway, 20000 + 100 * index)
            yield argvs
    finally:
        shutil.rmtree(work, ignore_errors=True)


def floor_commands() -> Dict[str, List[str]]:
    """The interpreter doing nothing, and importing what the command cannot do without."""
    return {"python3 -c pass": [HOST_PYTHON, "-c", "pass"], "python3 -c '" + FLOOR + "'": [HOST_PYTHON, "-c", FLOOR]}


def natpmpc_command(gateway: str = GATEWAY) -> Dict[str, List[str]]:
    """Debian's natpmpc asking for the public address, when it is installed."""
    natpmpc = shutil.which("natpmpc")
    return {"natpmpc -g (public address)": [natpmpc, "-g", gateway]} if natpmpc else {}


def measure(module_utils: Path, runs: int) -> Tuple[Dict[str, Dict[str, float]], List[str]]:
    """The start-up table (ms) and the import-time rows of our modules, against a simulated gateway on loopback."""
    with installed({"": module_utils}) as argvs:
        ours = {f"portmap-natpmp public ({case})": argv for case, argv in argvs[""].items()}
        rows = interleaved({**floor_commands(), **ours, **natpmpc_command()}, runs)
        imports = import_table(argvs[""][CASES[1]])
    return rows, imports


def table(rows: Dict[str, Dict[str, float]], runs: int) -> List[str]:
    base = rows["python3 -c pass"]["median"]
    lines = [f"| command ({runs} runs each, interleaved; {HOST_PYTHON}) | median ms | best ms | median vs python3 -c pass |",
             "|---|---:|---:|---:|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['median']:.1f} | {row['best']:.1f} | {row['median'] / base:.2f}x |")
    return lines


def import_table(argv: List[str]) -> List[str]:
    proc = subprocess.run([HOST_PYTHON, "-X", "importtime", *argv], capture_output=True, text=True, check=True)
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
