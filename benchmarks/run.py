"""The benchmarks: figures, not assertions, measured in one run; `make bench` writes docs/performance.md.

    make bench                                   # the full run
    .venv/bin/python -m benchmarks.run --quick   # few repetitions, no 2-minute give-up runs
    .venv/bin/python -m benchmarks.run --watch-seconds 60   # the idle watch measured 60 s, not 600

Every peer is measured in the same run against the same gateway: our client (NAT-PMP and PCP,
in-process, and the `portmap-natpmp` command as a process), the PyPI `NAT-PMP` package
(in-process, from `.venv-bench`), and Debian's `natpmpc` (a process per request).  Gateways: the
simulated gateway on loopback (127.0.9.1, port 5351, a process of its own) and miniupnpd in sealed
network namespaces.  UPnP IGD: benchmarks/upnp_bench.py (our IgdSession, the PyPI `miniupnpc`
binding from `.venv-bench-upnp`, Debian's `upnpc`) against miniupnpd's IGD.  Everything started
here is stopped here, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.harness import miniupnpd as miniupnpd_mod  # noqa: E402  pylint: disable=wrong-import-position
from tests.harness.netns import Topology, netns_available  # noqa: E402  pylint: disable=wrong-import-position
from simgw import control  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import plot  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import startup  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import upnp_bench  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks import watch_bench  # noqa: E402  pylint: disable=wrong-import-position

PYTHON = os.path.join(REPO, ".venv", "bin", "python")
BENCH_PYTHON = os.path.join(REPO, ".venv-bench", "bin", "python")
ANSIBLE_PLAYBOOK = os.path.join(REPO, ".venv", "bin", "ansible-playbook")
WORKER = os.path.join(REPO, "benchmarks", "worker.py")
GATEWAY = "127.0.9.1"
SILENT_GATEWAY = "127.0.9.2"
TOOLS = ["ours-natpmp", "ours-pcp", "pypi", "natpmpc", "ours-cli"]
LABELS = {"ours-natpmp": "portmap (NAT-PMP, in-process)", "ours-pcp": "portmap (PCP, in-process)",
          "pypi": "PyPI NAT-PMP 1.3.2 (in-process)", "natpmpc": "natpmpc (libnatpmp, a process each)",
          "ours-cli": "portmap-natpmp command (a process each)"}
PROCESS_TOOLS = {"natpmpc", "ours-cli"}
PLOT_NAME = "latency.svg"


# ---------------------------------------------------------------- helpers

def python_for(tool: str) -> str:
    return BENCH_PYTHON if tool == "pypi" else PYTHON


def worker(argv: Sequence[str], python: str = PYTHON, netns: Optional[Topology] = None, host: str = "",
           timeout: float = 600, module_utils: Optional[str] = None) -> Dict[str, Any]:
    """benchmarks/worker.py's JSON; ``module_utils``: the folder whose ``portmap`` it loads (default this checkout's)."""
    command = [python, WORKER, *argv]
    if netns is not None:
        command = netns.argv(host, command)
    env = dict(os.environ, PORTMAP_BENCH_MODULE_UTILS=module_utils) if module_utils else None
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout, env=env)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"worker {' '.join(argv)} failed: {proc.stderr.strip()[-500:]}") from None


def stats(times: List[float]) -> Dict[str, float]:
    """Median, n, and the nearest-rank percentiles p1 ... p99 the table and the plot use."""
    return {"median": statistics.median(times), "n": len(times), **plot.percentiles(times)}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


class SimGateway:
    """The simulated gateway as a process of its own on a loopback address."""

    def __init__(self, address: str, folder: str) -> None:
        self.control = os.path.join(folder, f"gw-{address}.sock")
        ready = os.path.join(folder, f"gw-{address}.ready")
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [PYTHON, "-m", "simgw", "--listen", f"{address}:5351",
             "--control", self.control, "--ready-file", ready, "--uptime", "1000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
        deadline = time.monotonic() + 10
        while not os.path.exists(ready):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"simulated gateway did not start: {self.process.stderr.read().decode()}")
            time.sleep(0.02)

    def ctl(self, command: Dict[str, Any]) -> Dict[str, Any]:
        return control(self.control, command)

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ---------------------------------------------------------------- measurements

def latency_table(n_inproc: int, n_process: int, netns: Optional[Topology] = None, host: str = "",
                  gateway: str = GATEWAY) -> Dict[str, Dict[str, Any]]:
    results: Dict[str, Dict[str, Any]] = {}
    for op in ("map", "public"):
        for index, tool in enumerate(TOOLS):
            n = n_process if tool in PROCESS_TOOLS else n_inproc
            argv = ["latency", "--tool", tool, "--op", op, "--gateway", gateway, "--n", str(n),
                    "--port", str(8000 + index)]
            out = worker(argv, python_for(tool), netns, host)
            if out.get("errors"):
                results[f"{tool}/{op}"] = {"error": f"{out['errors']} of {n} failed: {out['first_error']}"}
                continue
            results[f"{tool}/{op}"] = stats(out["times"][1:] if len(out["times"]) > 1 else out["times"])
    return results


def give_up(folder: str, quick: bool) -> Dict[str, Dict[str, Any]]:
    """Each tool with its defaults, against a gateway that never answers (all requests dropped)."""
    silent = SimGateway(SILENT_GATEWAY, folder)
    results: Dict[str, Dict[str, Any]] = {}
    try:
        silent.ctl({"cmd": "fault", "kind": "drop"})
        tools = ["ours-natpmp", "ours-pcp"] + ([] if quick else ["pypi", "natpmpc"])

        def one(tool: str) -> None:
            out = worker(["latency", "--tool", tool, "--op", "public", "--gateway", SILENT_GATEWAY, "--n", "1"],
                         python_for(tool), timeout=400)
            results[tool] = {"seconds": out["times"][0], "outcome": out["first_error"] or "answered"}

        threads = [threading.Thread(target=one, args=(tool,)) for tool in tools]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        silent.stop()
    return results


def capacity(gw: SimGateway, quick: bool) -> Dict[str, Any]:
    seconds = "2" if quick else "5"
    out: Dict[str, Any] = {}
    for method in ("natpmp", "pcp"):
        out[method] = worker(["load", "--gateway", GATEWAY, "--method", method, "--seconds", seconds, "--sockets", "16"])
    gw.ctl({"cmd": "reboot"})
    out["rss_empty_kib"] = gw.rss_kib()
    started = time.perf_counter()
    worker(["fill", "--gateway", GATEWAY, "--count", "10000"])
    out["fill_seconds"] = time.perf_counter() - started
    out["mappings"] = gw.ctl({"cmd": "status"})["mappings"]
    out["rss_10000_kib"] = gw.rss_kib()
    gw.ctl({"cmd": "reboot"})
    return out


def renewal_job(gw: SimGateway, folder: str, sizes: Sequence[int], repeats: int) -> Dict[int, Dict[str, float]]:
    results: Dict[int, Dict[str, float]] = {}
    for size in sizes:
        gw.ctl({"cmd": "reboot"})
        ledger = os.path.join(folder, f"ledger-{size}.json")
        lock = os.path.join(folder, "job.lock")
        worker(["ledger", "--gateway", GATEWAY, "--count", str(size), "--ledger", ledger, "--lock", lock])
        walls, peaks = [], []
        # The child reports its own VmHWM (the peak of its own address space after exec; a
        # child's ru_maxrss would start from the parent's size at fork).
        code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from portmap.cli import main\n"
                "try:\n    code = main()\nfinally:\n"
                "    print(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')), file=sys.stderr)\n"
                "sys.exit(code)")
        for _repeat in range(repeats):
            argv = [PYTHON, "-c", code, os.path.join(REPO, "plugins", "module_utils"), "--gateway", GATEWAY,
                    "--method", "natpmp", "--ledger", ledger, "--lock", lock, "renew", "--now",
                    "--log", os.path.join(folder, "job.log")]
            start = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
            walls.append(time.perf_counter() - start)
            if proc.returncode != 0:
                raise RuntimeError(f"renew --now with {size} entries exited {proc.returncode}: {proc.stderr[-300:]}")
            peaks.append(int(proc.stderr.split("VmHWM:")[1].split()[0]) / 1024)
        results[size] = {"wall": statistics.median(walls), "peak_mib": max(peaks)}
    gw.ctl({"cmd": "reboot"})
    return results


def playbooks(gw: SimGateway, folder: str, fleet: bool) -> Dict[str, float]:
    collections = os.path.join(folder, "collections")
    os.makedirs(os.path.join(collections, "ansible_collections", "portmap"), exist_ok=True)
    link = os.path.join(collections, "ansible_collections", "portmap", "natpmp")
    if not os.path.exists(link):
        os.symlink(REPO, link)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=os.path.join(folder, "t"), ANSIBLE_HOME=os.path.join(folder, "h"))
    items = [{"internal_port": port} for port in range(41000, 41050)]
    tasks = {
        "one mapping": {"internal_port": 8080},
        "50 mappings in one task": {"mappings": items},
    }
    books = {}
    for name, options in tasks.items():
        books[name] = [{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"portmap.natpmp.natpmp_mapping": dict(options, gateway=GATEWAY, method="natpmp")}]}]
    books["the same 50 as a loop of tasks"] = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"portmap.natpmp.natpmp_mapping": {"internal_port": "{{ item }}", "gateway": GATEWAY, "method": "natpmp"},
         "loop": list(range(41000, 41050))}]}]
    results: Dict[str, float] = {}
    for name, book in books.items():
        gw.ctl({"cmd": "reboot"})
        ledger = os.path.join(folder, f"pb-{len(results)}.json")
        for play in book:
            for task in play["tasks"]:
                task["portmap.natpmp.natpmp_mapping"]["ledger_path"] = ledger
        path = os.path.join(folder, f"pb-{len(results)}.yml")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(book, handle)  # JSON is YAML
        argv = [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", "-e",
                json.dumps({"ansible_python_interpreter": PYTHON}), path]
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=600)
        results[name] = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"playbook '{name}' failed: {proc.stdout[-800:]}")
    if fleet:
        results["fleet: 5 namespaced hosts, molecule converge"] = fleet_converge(env)
    gw.ctl({"cmd": "reboot"})
    return results


def fleet_converge(env: Dict[str, str]) -> float:
    menv = dict(env, PATH=os.path.join(REPO, ".venv", "bin") + ":" + env["PATH"], PY_COLORS="0", NO_COLOR="1")
    menv.pop("ANSIBLE_HOME", None)
    menv.pop("ANSIBLE_LOCAL_TEMP", None)

    def molecule(step: str) -> Tuple[float, subprocess.CompletedProcess]:
        start = time.perf_counter()
        proc = subprocess.run(["molecule", step, "-s", "fleet"], capture_output=True, text=True, env=menv, cwd=REPO,
                              check=False, timeout=900)
        return time.perf_counter() - start, proc

    try:
        _t, created = molecule("create")
        if created.returncode != 0:
            raise RuntimeError(f"molecule create failed: {created.stdout[-800:]}")
        seconds, converged = molecule("converge")
        if converged.returncode != 0:
            raise RuntimeError(f"molecule converge failed: {converged.stdout[-800:]}")
        return seconds
    finally:
        molecule("destroy")


# ---------------------------------------------------------------- report

def latency_lines(title: str, table: Dict[str, Dict[str, Any]]) -> List[str]:
    lines = [f"### {title}", "", "| client | op | median ms | p99 ms | n | median vs portmap NAT-PMP |",
             "|---|---|---:|---:|---:|---:|"]
    for op in ("map", "public"):
        base = table.get(f"ours-natpmp/{op}", {}).get("median")
        for tool in TOOLS:
            row = table.get(f"{tool}/{op}")
            if row is None:
                continue
            if "error" in row:
                lines.append(f"| {LABELS[tool]} | {op} | - | - | - | {row['error']} |")
                continue
            ratio = f"{row['median'] / base:.2f}x" if base else "-"
            lines.append(f"| {LABELS[tool]} | {op} | {ms(row['median'])} | {ms(row['p99'])} | {row['n']} | {ratio} |")
    return lines + [""]


def plot_svg(data: Dict[str, Any]) -> str:
    sections = [("Simulated gateway on loopback", data["latency_simgw"])]
    if "latency_miniupnpd" in data:
        sections.append(("miniupnpd in sealed network namespaces", data["latency_miniupnpd"]))
    return plot.svg(sections, TOOLS, LABELS)


COMPARE_SECTION = [
    "`make bench-compare OLD=<rev> NEW=<rev> ROUNDS=<n>` (`benchmarks/compare.py`; OLD defaults to `HEAD~`,",
    "NEW to the working tree, ROUNDS to 6) measures two revisions of the client in one sitting, against the",
    "same gateways and peers, and prints a table: per figure OLD, NEW, NEW/OLD, the lowest and highest",
    "NEW/OLD of a single round (the noise), and PASS while NEW/OLD is at most 1.10 (`--bound 0.10`; the exit",
    "status is 1 when a figure fails). The figures: the in-process latency ratios of the tables above (our",
    "NAT-PMP and PCP client over the PyPI package, against the simulated gateway and miniupnpd; `IgdSession`",
    "over the miniupnpc binding, upnpc and the bare socket), the command over natpmpc (a process each, `map`",
    "and `public` with `--method natpmp`), and the start-up of `portmap-natpmp public` (benchmarks/startup.py).",
    "",
    "Each revision's `plugins/module_utils` is laid out by `git archive` in a temporary folder, never in the",
    "checkout; the benchmark code is the checkout's and loads the revision's package",
    "(`PORTMAP_BENCH_MODULE_UTILS` for benchmarks/worker.py and benchmarks/upnp_bench.py, the command installed",
    "from it as the role installs it). The rounds take the revisions in turn (OLD NEW, NEW OLD, ...), so that",
    "drift and load on a shared machine fall on both. Our client and its peers take turns in blocks in one",
    "worker, and a latency figure is our time over the peer's in that worker, the median over the rounds; the",
    "commands run one after the other, each revision's next to natpmpc. Each tool's time is the 10th",
    "percentile of its requests (`--percentile 50`: the median), the request's own cost, where the median of a",
    "busy machine also counts the waits for a core. A run of 6 rounds takes about 2 minutes, up to 5 on a busy",
    "machine. `public` without `--method` hears the other protocols out for 0.1 s (`detect.BRIEF`), so",
    "that wait is most of the start-up rows; the command rows show the start-up next to natpmpc.",
]


def report(data: Dict[str, Any], command: str, seconds: float) -> str:
    lines = ["# Performance", "",
             f"Measured by `{command}` on {data['date']}, in one run of {seconds:.0f} s, on {data['machine']}.",
             "Figures, not assertions: the ratios compare tools measured in the same run against the same gateway.",
             "`map` is a TCP mapping request for one port, repeated (the first, creating request is left out);",
             "`public` is NAT-PMP's public address request (PCP: ANNOUNCE). In-process tools are timed per call,",
             "the command-line tools per process (start-up included); both kinds are shown next to each other.", "",
             "## Per-request latency", ""]
    lines += [f"![latency distributions: whisker p1-p99, box p25-p75, bar median]({PLOT_NAME})", ""]
    lines += latency_lines("Simulated gateway on loopback", data["latency_simgw"])
    if "latency_miniupnpd" in data:
        lines += latency_lines("miniupnpd 2.3.1 in sealed network namespaces (client in the host namespace)",
                               data["latency_miniupnpd"])
    else:
        lines += [f"miniupnpd: not measured ({data.get('miniupnpd_skipped', 'skipped')}).", ""]
    lines += ["## UPnP IGD against miniupnpd", "",
              "miniupnpd 2.3.1's IGD (IGDv2) in sealed network namespaces, the client in the host namespace",
              "(`benchmarks/upnp_bench.py`): our `IgdSession` and the PyPI `miniupnpc` binding in-process,",
              "the IGD found once before timing; `upnpc` a process per request, given the description URL,",
              "so each run fetches the description first, and `-s` sends four actions. The in-process clients",
              "take turns in blocks in one process, after a few untimed calls; rounds alternate it with upnpc's.",
              "AddPortMapping makes a new external port each time (miniupnpd's nftables work dominates it).",
              "The floor row sends our GetExternalIPAddress request's bytes over a bare Python socket and reads",
              "the answer without parsing it: what any Python client pays before it looks at the answer.", ""]
    if data.get("upnp"):
        lines += data["upnp"] + ["", f"{data['upnp_rounds']} rounds.", ""]
    else:
        lines += [f"Not measured ({data.get('upnp_skipped', 'skipped')}).", ""]
    lines += ["## Time to give up on a gateway that never answers (each tool's defaults)", "",
              "| client | seconds | outcome |", "|---|---:|---|"]
    for tool, row in data["give_up"].items():
        outcome = " ".join(row["outcome"].split()).replace("|", "/")
        if len(outcome) > 110:
            outcome = outcome[:110].rsplit(" ", 1)[0] + " ..."
        lines.append(f"| {LABELS[tool]} | {row['seconds']:.2f} | {outcome} |")
    lines += ["", "## Playbook wall time (ansible-playbook, simulated gateway on loopback)", "",
              "| playbook | seconds |", "|---|---:|"]
    for name, value in data["playbooks"].items():
        lines.append(f"| {name} | {value:.2f} |")
    cap = data["capacity"]
    lines += ["", "## The simulated gateway", "",
              "Capacity: a load generator (another process) keeps 16 sockets busy, each sending its next MAP request",
              "as soon as the previous reply arrives.", "",
              "| | figure |", "|---|---:|",
              f"| NAT-PMP MAP requests per second | {cap['natpmp']['per_second']:.0f} |",
              f"| PCP MAP requests per second | {cap['pcp']['per_second']:.0f} |",
              f"| RSS, empty table | {cap['rss_empty_kib'] / 1024:.1f} MiB |",
              f"| RSS, {cap['mappings']} mappings | {cap['rss_10000_kib'] / 1024:.1f} MiB |",
              f"| time to make {cap['mappings']} mappings (32 in flight) | {cap['fill_seconds']:.2f} s |", "",
              "## The renewal job (`portmap-natpmp renew --now`, a process, NAT-PMP)", "",
              "Wall time is the median of the runs; peak memory is the process's own VmHWM.", "",
              "| ledger entries | wall time s | peak RSS MiB |", "|---:|---:|---:|"]
    for size, row in data["renewal"].items():
        lines.append(f"| {size} | {row['wall']:.3f} | {row['peak_mib']:.2f} |")
    rows, runs = data["startup"]
    lines += ["", "## Start-up (`portmap-natpmp public`, a process, simulated gateway on loopback)", "",
              "The command as the role installs it (compiled, the host's Python), next to `python3 -c pass`,",
              "the import of the standard-library modules it needs (its floor) and natpmpc.", ""]
    lines += startup.table(rows, runs)
    if "watch" in data:
        lines += ["", "## The watch, idle (`portmap-natpmp watch`, a process, simulated gateway on loopback)", "",
                  "The watch keeps a ledger of 500 NAT-PMP mappings of an hour (none due in the run) and listens for",
                  "announcements; its own CPU time (utime + stime) and memory are read from /proc after its start-up.",
                  "The timer job's row is what a timer at half the lifetime costs over the same period",
                  "(`benchmarks/watch_bench.py`).", ""]
        lines += watch_bench.table(data["watch"])
    lines += ["", "## Comparing two revisions (`make bench-compare`)", ""] + COMPARE_SECTION
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmarks against the peers; writes docs/performance.md.")
    parser.add_argument("--quick", action="store_true", help="few repetitions, skip the long give-up runs and the fleet")
    parser.add_argument("--output", default=os.path.join(REPO, "docs", "performance.md"))
    parser.add_argument("--watch-seconds", type=float, default=None,
                        help="how long the idle watch is measured (default 600, 30 with --quick)")
    args = parser.parse_args()
    if not os.path.exists(BENCH_PYTHON):
        print("benchmarks: .venv-bench is missing; run `make bench` (it installs benchmarks/requirements.txt)")
        return 2
    n_inproc, n_process = (50, 10) if args.quick else (1000, 100)
    started = time.perf_counter()
    data: Dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}",
    }
    folder = tempfile.mkdtemp(prefix="portmap-bench-")
    gw = SimGateway(GATEWAY, folder)
    try:
        print("latency against the simulated gateway ...", flush=True)
        data["latency_simgw"] = latency_table(n_inproc, n_process)
        print("give-up times ...", flush=True)
        data["give_up"] = give_up(folder, args.quick)
        print("simulated gateway capacity and memory ...", flush=True)
        data["capacity"] = capacity(gw, args.quick)
        print("renewal job ...", flush=True)
        data["renewal"] = renewal_job(gw, folder, [1, 50, 500], 1 if args.quick else 5)
        print("start-up ...", flush=True)
        startup_runs = 10 if args.quick else 100
        data["startup"] = (startup.measure(Path(REPO) / "plugins" / "module_utils", startup_runs)[0], startup_runs)
        watch_seconds = args.watch_seconds or (30.0 if args.quick else 600.0)
        print(f"the watch, idle for {watch_seconds:g} s ...", flush=True)
        data["watch"] = watch_bench.measure(watch_seconds)
        print("playbooks ...", flush=True)
        data["playbooks"] = playbooks(gw, folder, fleet=not args.quick)
    finally:
        gw.stop()
    ok, why = netns_available()
    ok_m, why_m = miniupnpd_mod.available()
    if ok and ok_m:
        print("latency against miniupnpd ...", flush=True)
        with Topology(hosts=1, tag="bn" + os.urandom(2).hex()) as topo:
            topo.assert_sealed()
            with miniupnpd_mod.Miniupnpd(topo):
                data["latency_miniupnpd"] = latency_table(n_inproc // 2, n_process // 2, topo, topo.hosts[0],
                                                          topo.gw_lan_address)
    else:
        data["miniupnpd_skipped"] = why or why_m
    print("UPnP IGD against miniupnpd ...", flush=True)
    data["upnp_rounds"] = 2 if args.quick else 5
    upnp_times, data["upnp_skipped"] = (upnp_bench.measure(2, 10, 100, 4) if args.quick
                                        else upnp_bench.measure(data["upnp_rounds"]))
    if upnp_times is not None:
        data["upnp"] = upnp_bench.table(upnp_times)
    shutil.rmtree(folder, ignore_errors=True)
    command = "make bench" if not args.quick else "python -m benchmarks.run --quick"
    text = report(data, command, time.perf_counter() - started)
    print(text)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write(text)
    plot_path = os.path.join(os.path.dirname(args.output), PLOT_NAME)
    with open(plot_path, "w", encoding="utf-8") as handle:
        handle.write(plot_svg(data))
    print(f"written to {args.output} and {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
