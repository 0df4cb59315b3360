"""Two revisions of the client measured side by side: request latency against the peers, and start-up.

    make bench-compare                              # OLD=HEAD~, NEW=the working tree
    make bench-compare OLD=HEAD~5 NEW=HEAD ROUNDS=8
    .venv/bin/python -m benchmarks.compare --old REV [--new REV] [--rounds 6] [--percentile 10] [--bound 0.10]

Each revision's plugins/module_utils is laid out in a temporary folder (``git archive``; the
working tree's is copied), so the checkout is never changed.  The benchmark code is this
checkout's and loads each revision's ``portmap`` package: benchmarks/worker.py and
benchmarks/upnp_bench.py through PORTMAP_BENCH_MODULE_UTILS, and the `portmap-natpmp` command
installed from it as the role installs it (benchmarks/startup.py).  The gateways and the peers
are started once and serve both revisions:
- in-process, against the simulated gateway on loopback (a process, 127.0.10.1) and against
  miniupnpd in sealed network namespaces: our NAT-PMP and PCP client and the PyPI NAT-PMP package
  taking turns in blocks in one worker (benchmarks/worker.py latency);
- UPnP IGD against miniupnpd: our IgdSession, the PyPI miniupnpc binding, a bare socket sending
  our request's bytes and upnpc, taking turns in blocks in one worker (benchmarks/upnp_bench.py);
- a process per request: `portmap-natpmp map` and `public` of both revisions and natpmpc against
  both gateways, and the start-up of `portmap-natpmp public` (simulated gateway 127.0.10.2),
  all run in turn, command after command (benchmarks/startup.py).
Every round measures each of these for both revisions, one right after the other, the order
swapped from round to round (OLD NEW, NEW OLD, ...), so that drift and load on the machine fall
on both alike.  Each tool's time is taken at a percentile of its requests (--percentile, default
the 10th: the request's own cost, where the median of a loaded machine also counts the waits for
a core).  A latency figure is our time over the peer's in the same worker and turn, the median
of that over the rounds (our time in brackets); for the commands, over natpmpc's in the same
runs.  Start-up: the time itself.  A figure passes while NEW/OLD is at most 1 + --bound.  Exit
status 0 when every figure passes, 1 when one does not, 2 when the comparison cannot start.
Everything started here is ended here (by pid), also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.harness import miniupnpd as miniupnpd_mod  # noqa: E402  pylint: disable=wrong-import-position
from tests.harness.netns import Topology, netns_available  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import run  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import startup  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import upnp_bench  # noqa: E402  pylint: disable=wrong-import-position

SIM_GATEWAY = "127.0.10.1"
STARTUP_GATEWAY = "127.0.10.2"
REVISIONS = ("OLD", "NEW")
SIMULATED, MINIUPNPD = "simulated gateway (loopback)", "miniupnpd, NAT-PMP/PCP"
UPNP, STARTUP = "miniupnpd, UPnP IGD", "start-up, simulated gateway"

# benchmarks/worker.py's in-process tools, taking turns in blocks in one worker; per figure: our
# tool, the peer, the request, the row.
IN_PROCESS = ("ours-natpmp", "ours-pcp", "pypi")
IN_PROCESS_FIGURES = [
    ("ours-natpmp", "pypi", "map", "NAT-PMP map: portmap / PyPI NAT-PMP"),
    ("ours-natpmp", "pypi", "public", "NAT-PMP public address: portmap / PyPI NAT-PMP"),
    ("ours-pcp", "pypi", "map", "PCP map: portmap / PyPI NAT-PMP's map"),
    ("ours-pcp", "pypi", "public", "PCP ANNOUNCE: portmap / PyPI NAT-PMP's public address"),
]
COMMAND_FIGURES = [("map", "map, a process each: portmap-natpmp / natpmpc"),
                   ("public", "public address, a process each: portmap-natpmp / natpmpc")]
# benchmarks/upnp_bench.py's tools, in one worker.
UPNP_TOOLS = ["ours", "binding", "socket", "upnpc"]
UPNP_FIGURES = [
    ("ours", "binding", "add", "AddPortMapping: IgdSession / PyPI miniupnpc binding"),
    ("ours", "upnpc", "add", "AddPortMapping: IgdSession / upnpc (a process each)"),
    ("ours", "binding", "external", "GetExternalIPAddress: IgdSession / PyPI miniupnpc binding"),
    ("ours", "socket", "external", "GetExternalIPAddress: IgdSession / bare socket, our request's bytes"),
]


class Settings:
    """How much each round measures."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.rounds = args.rounds
        self.percentile = args.percentile
        self.bound = args.bound
        # Requests per tool and kind, and how many in a row (miniupnpd's nftables work takes ~8 ms a map).
        self.in_process = {SIMULATED: (300, 20), MINIUPNPD: (80, 5)}
        self.upnp = (20, 100)  # AddPortMapping, GetExternalIPAddress per tool
        self.runs = 6  # of each command, per round


def at(times: List[float], percentile: float) -> float:
    """The nearest-rank percentile of the times."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(round(percentile / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------- the revisions

def git(*args: str) -> str:
    return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True, check=True).stdout.strip()


def resolve(rev: Optional[str]) -> Tuple[str, Optional[str]]:
    """(a label, the commit) of a revision; None: the working tree (no commit)."""
    if rev is None:
        changed = " + changes" if git("status", "--porcelain", "--", "plugins/module_utils") else ""
        return f"the working tree (HEAD {git('rev-parse', '--short', 'HEAD')}{changed})", None
    try:
        commit = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"compare: {rev!r} is not a revision of {REPO}") from None
    return f"{rev} ({commit[:10]})", commit


def lay_out(commit: Optional[str], dest: str) -> str:
    """The revision's plugins/module_utils under ``dest``; returns that folder."""
    folder = os.path.join(dest, "plugins", "module_utils")
    if commit is None:
        shutil.copytree(os.path.join(REPO, "plugins", "module_utils"), folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        os.makedirs(dest)
        archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar", commit, "plugins/module_utils"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    if not os.path.isfile(os.path.join(folder, "portmap", "cli.py")):
        raise SystemExit(f"compare: no plugins/module_utils/portmap/cli.py in {commit or 'the working tree'}")
    return folder


# ---------------------------------------------------------------- figures

class Figure:
    """One row: per revision and round, our time over the peer's (turns), or every run's time (runs)."""

    def __init__(self, where: str, what: str, absolute: bool = False, compared: bool = True) -> None:
        self.where = where
        self.what = what
        self.absolute = absolute  # a time, not a ratio to a peer
        self.compared = compared
        self.turns: Dict[str, Dict[int, Tuple[float, float]]] = {rev: {} for rev in REVISIONS}  # (ours / peer, ours)
        self.times: Dict[str, Dict[int, List[float]]] = {rev: {} for rev in REVISIONS}
        self.peer: Dict[int, List[float]] = {}
        self.errors: Dict[str, str] = {}

    def fail(self, rev: str, error: str) -> None:
        self.errors.setdefault(rev, " ".join(error.split())[:300])

    def measured(self) -> bool:
        return any(self.turns[rev] or self.times[rev] for rev in REVISIONS)

    def value(self, rev: str, percentile: float) -> Optional[Tuple[float, float]]:
        """(the figure, our time in seconds), or None."""
        if rev in self.errors:
            return None
        turns = list(self.turns[rev].values())
        if turns:
            return statistics.median(turn[0] for turn in turns), statistics.median(turn[1] for turn in turns)
        ours, peer = [t for times in self.times[rev].values() for t in times], [t for times in self.peer.values() for t in times]
        if ours and (peer or self.absolute):
            return (at(ours, percentile) if self.absolute else at(ours, percentile) / at(peer, percentile)), at(ours, percentile)
        return None

    def spread(self, percentile: float) -> str:
        """The lowest and highest NEW/OLD of a single round (the peer measured with each cancels out)."""
        old, new = self.turns["OLD"] or self.times["OLD"], self.turns["NEW"] or self.times["NEW"]
        quotients = []
        for round_ in sorted(set(old) & set(new)):
            if self.turns["OLD"]:
                quotients.append(new[round_][0] / old[round_][0])
            else:
                quotients.append(at(new[round_], percentile) / at(old[round_], percentile))
        return f"{min(quotients):.2f}-{max(quotients):.2f}" if quotients else "-"

    def cell(self, rev: str, percentile: float) -> str:
        value = self.value(rev, percentile)
        if value is None:
            return "error" if rev in self.errors else "not measured"
        if self.absolute:
            return f"{value[1] * 1000:.1f} ms"
        return f"{value[0]:.3f} ({value[1] * 1000:.3f} ms)"


def ratio(mine: List[float], theirs: List[float], percentile: float) -> Tuple[float, float]:
    """(our time / the peer's, our time) at the percentile."""
    return at(mine, percentile) / at(theirs, percentile), at(mine, percentile)


# ---------------------------------------------------------------- the turns (a worker per revision)

class Turns:
    """The in-process measurements, against gateways and peers started once for both revisions."""

    def __init__(self, settings: Settings, packages: Dict[str, str], figures: Dict[str, Figure]) -> None:
        self.settings = settings
        self.packages = packages
        self.figures = figures
        self.port = 8000  # ports of its own for each worker (each PCP client has a nonce of its own)
        self.upnp_port = 20000
        for where in (SIMULATED, MINIUPNPD):
            for ours, peer, op, what in IN_PROCESS_FIGURES:
                figures[f"{where}/{ours}/{peer}/{op}"] = Figure(where, what)
        for ours, peer, op, what in UPNP_FIGURES:
            figures[f"{UPNP}/{ours}/{peer}/{op}"] = Figure(UPNP, what)

    def guarded(self, where: str, rev: str, measure: Callable[[], None]) -> None:
        """One measurement; an error it meets marks its figures for this revision, and the run goes on."""
        try:
            measure()
        except (RuntimeError, ValueError, KeyError, subprocess.SubprocessError) as exc:
            for key, figure in self.figures.items():
                if key.startswith(where + "/"):
                    figure.fail(rev, f"{type(exc).__name__}: {exc}")

    def in_process(self, rev: str, round_: int, where: str, topo: Optional[Topology] = None) -> None:
        """benchmarks/worker.py latency: our client and the PyPI package in one worker, both requests."""
        host, gateway = (topo.hosts[0], topo.gw_lan_address) if topo is not None else ("", SIM_GATEWAY)

        def measure() -> None:
            for op in ("map", "public"):
                self.port += 10
                n, block = self.settings.in_process[where]
                argv = ["latency", "--tool", ",".join(IN_PROCESS), "--op", op, "--gateway", gateway,
                        "--n", str(n), "--port", str(self.port), "--block", str(block)]
                out = run.worker(argv, run.BENCH_PYTHON, topo, host, module_utils=self.packages[rev])
                for ours, peer, op_, _what in IN_PROCESS_FIGURES:
                    if op_ != op:
                        continue
                    figure, mine, theirs = self.figures[f"{where}/{ours}/{peer}/{op}"], out[ours], out[peer]
                    if mine["errors"] or theirs["errors"]:
                        figure.fail(rev, mine["first_error"] or theirs["first_error"])
                    else:  # the first, creating request left out
                        figure.turns[rev][round_] = ratio(mine["times"][1:], theirs["times"][1:], self.settings.percentile)
        self.guarded(where, rev, measure)

    def upnp(self, rev: str, round_: int, topo: Topology, url: str) -> None:
        """benchmarks/upnp_bench.py's worker, the tools in one process; then the mappings it made are deleted."""
        n_add, n_external = self.settings.upnp
        tools = UPNP_TOOLS[round_ % len(UPNP_TOOLS):] + UPNP_TOOLS[:round_ % len(UPNP_TOOLS)]

        def measure() -> None:
            port = self.upnp_port
            self.upnp_port += n_add * len(tools)
            argv = ["--worker", ",".join(tools), url, topo.host_addresses[0], str(port), str(n_add), str(n_external)]
            try:
                times = upnp_bench.run_worker(topo, argv, self.packages[rev])
            finally:  # miniupnpd's table as small at every turn
                upnp_bench.run_worker(topo, ["--cleanup", url, str(port), str(n_add * len(tools))], self.packages[rev])
            for ours, peer, op, _what in UPNP_FIGURES:
                self.figures[f"{UPNP}/{ours}/{peer}/{op}"].turns[rev][round_] = \
                    ratio(times[ours][op], times[peer][op], self.settings.percentile)
        self.guarded(UPNP, rev, measure)


# ---------------------------------------------------------------- the runs (every command in turn)

Command = Tuple[str, Optional[str], List[str]]  # (figure, revision or None for the peer, argv)


def commands(figures: Dict[str, Figure], installed: Dict[str, Dict[str, List[str]]], folder: str,
             topo: Optional[Topology]) -> List[Command]:
    """The processes of a round: start-up, and each revision's command next to natpmpc, against each gateway."""
    figures["startup/python"] = Figure(STARTUP, "python3 -c pass (the machine's pace)", absolute=True, compared=False)
    out: List[Command] = [("startup/python", None, startup.floor_commands()["python3 -c pass"])]
    for case in startup.CASES:
        figures[f"startup/{case}"] = Figure(STARTUP, f"portmap-natpmp public ({case})", absolute=True)
        out += [(f"startup/{case}", rev, installed[rev][case]) for rev in REVISIONS]
    gateways = [(SIMULATED, SIM_GATEWAY)] + ([(MINIUPNPD, topo.gw_lan_address)] if topo is not None else [])
    for index, (where, gateway) in enumerate(gateways):
        in_netns = in_netns_of(topo) if topo is not None and where == MINIUPNPD else list
        for op, what in COMMAND_FIGURES:
            key = f"{where}/command/{op}"
            figures[key] = Figure(where, what)
            for number, rev in enumerate(REVISIONS):
                ledger = os.path.join(folder, f"ledger-{rev}-{index}", "ledger.json")
                os.makedirs(os.path.dirname(ledger), mode=0o700, exist_ok=True)
                port = str(30000 + 10 * index + number)
                argv = [installed[rev][startup.CASES[0]][0], "--gateway", gateway, "--method", "natpmp",
                        "--ledger", ledger] + (["public"] if op == "public" else ["map", "tcp", port, "--lifetime", "3600"])
                out.append((key, rev, in_netns(argv)))
            natpmpc = ["natpmpc", "-g", gateway] + ([] if op == "public" else ["-a", "30009", "30009", "tcp", "3600"])
            out.append((key, None, in_netns(natpmpc)))
    return out


def in_netns_of(topo: Topology) -> Callable[[List[str]], List[str]]:
    return lambda argv: topo.argv(topo.hosts[0], argv)


def warm_up(figures: Dict[str, Figure], processes: List[Command]) -> List[Command]:
    """Each command once, untimed (a map's first request creates); those that fail are left out."""
    kept = []
    for key, rev, argv in processes:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        if done.returncode == 0:
            kept.append((key, rev, argv))
            continue
        for failed in REVISIONS if rev is None else [rev]:
            figures[key].fail(failed, f"{' '.join(argv)} exited {done.returncode}: {(done.stderr or done.stdout)[-200:]}")
    return kept


def runs_round(figures: Dict[str, Figure], processes: List[Command], round_: int, order: List[str], runs: int) -> None:
    """benchmarks/startup.py's runs: every command in turn, the revisions in this round's order."""
    keys = list(dict.fromkeys(key for key, _rev, _argv in processes))
    # Per figure: this round's first revision, the peer, the other revision.
    ranked = sorted(processes, key=lambda command: (keys.index(command[0]), 1 if command[1] is None
                                                    else 2 * order.index(command[1])))
    named = {f"{index}": argv for index, (_key, _rev, argv) in enumerate(ranked)}
    try:
        walls = startup.walls(named, runs)
    except subprocess.SubprocessError as exc:
        for key, rev, _argv in ranked:
            for failed in REVISIONS if rev is None else [rev]:
                figures[key].fail(failed, f"{type(exc).__name__}: {exc}")
        return
    for index, (key, rev, _argv) in enumerate(ranked):
        seconds = [ms / 1000 for ms in walls[f"{index}"]]
        figure = figures[key]
        if rev is not None:
            figure.times[rev][round_] = seconds
        elif figure.absolute:
            for each in REVISIONS:
                figure.times[each][round_] = seconds
        else:
            figure.peer[round_] = seconds


# ---------------------------------------------------------------- the run

def measure_all(settings: Settings, packages: Dict[str, str], figures: Dict[str, Figure], folder: str) -> List[str]:
    """Every round; returns what was not measured, and why."""
    turns = Turns(settings, packages, figures)
    skipped: List[str] = []
    ok, why = netns_available()
    ok_m, why_m = miniupnpd_mod.available()
    upnp_why = upnp_bench.unavailable()
    with contextlib.ExitStack() as stack:  # ended in reverse order, also on failure
        sim = run.SimGateway(SIM_GATEWAY, folder)
        stack.callback(sim.stop)
        topo: Optional[Topology] = None
        url = ""
        if ok and ok_m:
            topo = stack.enter_context(Topology(hosts=1, tag="bc" + os.urandom(2).hex()))
            topo.assert_sealed()
            url = stack.enter_context(miniupnpd_mod.Miniupnpd(topo, upnp=True)).description_url
            if upnp_why:
                skipped.append(f"UPnP IGD: not measured ({upnp_why})")
        else:
            skipped.append(f"miniupnpd: not measured ({why or why_m})")
        installed = stack.enter_context(startup.installed({rev: Path(packages[rev]) for rev in REVISIONS},
                                                          STARTUP_GATEWAY))
        processes = warm_up(figures, commands(figures, installed, folder, topo))
        for round_ in range(settings.rounds):
            started = time.monotonic()
            order = list(REVISIONS) if round_ % 2 == 0 else list(reversed(REVISIONS))
            for rev in order:
                turns.in_process(rev, round_, SIMULATED)
            if topo is not None:
                for rev in order:
                    turns.in_process(rev, round_, MINIUPNPD, topo)
                for rev in order if not upnp_why else []:
                    turns.upnp(rev, round_, topo, url)
            runs_round(figures, processes, round_, order, settings.runs)
            print(f"round {round_ + 1}/{settings.rounds} ({' '.join(order)}): {time.monotonic() - started:.0f} s",
                  flush=True)
    return skipped


def table(figures: Dict[str, Figure], settings: Settings) -> Tuple[List[str], int, int]:
    """The table's lines, how many figures were compared, and how many of them failed."""
    lines = ["| measured against | figure | OLD | NEW | NEW/OLD | single rounds | verdict |",
             "|---|---|---:|---:|---:|---:|---|"]
    compared = failed = 0
    places = [SIMULATED, MINIUPNPD, UPNP, STARTUP]
    for figure in sorted(figures.values(), key=lambda figure: places.index(figure.where)):  # stable: in its place
        old, new = (figure.value(rev, settings.percentile) for rev in REVISIONS)
        cells = f"| {figure.where} | {figure.what} | {figure.cell('OLD', settings.percentile)} " \
                f"| {figure.cell('NEW', settings.percentile)} |"
        if not figure.compared or not (figure.measured() or figure.errors):
            lines.append(f"{cells} | | |")
            continue
        compared += 1
        if old is None or new is None:
            failed += 1
            lines.append(f"{cells} - | - | FAIL |")
            continue
        quotient = new[0] / old[0]
        verdict = "PASS" if quotient <= 1 + settings.bound else "FAIL"
        failed += verdict == "FAIL"
        lines.append(f"{cells} {quotient:.3f} | {figure.spread(settings.percentile)} | {verdict} |")
    return lines, compared, failed


def report(figures: Dict[str, Figure], settings: Settings, header: List[str], skipped: List[str]) -> Tuple[List[str], bool]:
    lines, compared, failed = table(figures, settings)
    out = header + [
        f"Each tool's time: the {settings.percentile:g}th percentile of its requests. Latency: ours / the peer's, in the "
        "same worker and turn, the median over the rounds (our time in brackets); a process each: ours / natpmpc's, in "
        "the same runs. Start-up: the time itself. Single rounds: the lowest and highest NEW/OLD of one round (the "
        f"noise). PASS while NEW/OLD <= {1 + settings.bound:.2f}.", ""] + lines + [""]
    for figure in figures.values():
        out += [f"{rev}, {figure.where}, {figure.what}: {error}" for rev, error in figure.errors.items()]
    out += skipped
    out.append(f"{compared - failed} of {compared} figures within {settings.bound:.0%}: {'FAIL' if failed else 'PASS'}")
    return out, failed == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--old", default="HEAD~", help="the revision compared against (default HEAD~)")
    parser.add_argument("--new", default=None, help="the revision measured (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds, each measuring both revisions (default 6)")
    parser.add_argument("--percentile", type=float, default=10.0,
                        help="each tool's time is this percentile of its requests (default 10; 50: the median)")
    parser.add_argument("--bound", type=float, default=0.10, help="how far NEW/OLD may exceed 1 (default 0.10)")
    args = parser.parse_args()
    if args.rounds < 1 or not 0 <= args.percentile <= 100:
        parser.error("--rounds must be at least 1 and --percentile within 0-100")
    if not os.path.exists(run.BENCH_PYTHON):
        print("compare: .venv-bench is missing; `make bench-compare` installs the peers", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))  # the finally clauses end what was started
    settings = Settings(args)
    started = time.monotonic()
    labels = {"OLD": resolve(args.old), "NEW": resolve(args.new)}
    folder = tempfile.mkdtemp(prefix="portmap-compare-")
    try:
        packages = {rev: lay_out(commit, os.path.join(folder, rev.lower())) for rev, (_label, commit) in labels.items()}
        print(f"OLD: {labels['OLD'][0]}\nNEW: {labels['NEW'][0]}", flush=True)
        load = os.getloadavg()[0]
        figures: Dict[str, Figure] = {}
        skipped = measure_all(settings, packages, figures, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    header = ["", f"OLD: {labels['OLD'][0]}, NEW: {labels['NEW'][0]}; {settings.rounds} rounds, the revisions in turn "
              f"(OLD NEW, NEW OLD, ...); {os.cpu_count()} cores, Linux {platform.release()}, Python "
              f"{platform.python_version()}, load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end."]
    if max(load, os.getloadavg()[0]) > (os.cpu_count() or 1):
        header.append("The machine was busy (a load average above its cores): see how far single rounds strayed; "
                      "more rounds (--rounds, ROUNDS=) steady the medians.")
    lines, passed = report(figures, settings, header, skipped)
    print("\n".join(lines) + f"; {time.monotonic() - started:.0f} s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
