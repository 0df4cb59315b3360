"""Test hosts for molecule: each a network namespace behind a gateway, with its own view of files.

Every host gets a network namespace (from netns.Topology, sealed) and a persistent mount
namespace in which /etc, /usr/local, /var/lib and /var/log are overlays (the machine's
files below, the host's own changes above) and /run/lock a tmpfs, so the role's cron file,
user, command, units and ledger stay per host and the machine's own files are untouched.
A wrapper per host runs Python inside both namespaces: it is the host's
``ansible_python_interpreter``. The gateway runs in the gateway namespace; ``--site`` adds
another gateway with hosts of its own, in a topology of its own (a mixed fleet). Gateways:

    simgw            the simulated gateway, PCP and NAT-PMP
    simgw-upnp       the simulated gateway, UPnP IGD v2 only (SSDP unicast, nothing answered on 5351)
    simgw-all        the simulated gateway, PCP, NAT-PMP and UPnP IGD v2 on one table
    miniupnpd        the real miniupnpd, PCP and NAT-PMP
    miniupnpd-upnp   the real miniupnpd, UPnP IGD only (enable_natpmp=no)
    miniupnpd-all    the real miniupnpd, PCP, NAT-PMP and UPnP IGD in one daemon

Everything is recorded in a state file before it exists, so a later process (molecule's
destroy) removes it all, also after a failed run.

    python -m tests.harness.fleet create STATE_DIR --hosts a b [--gateway G] [--site G c d] [--systemd a]
    python -m tests.harness.fleet destroy STATE_DIR
    python -m tests.harness.fleet job STATE_DIR HOST [--now]   # run the job as cron would
    python -m tests.harness.fleet ctl STATE_DIR JSON [--host H] # simulated gateway control (H's gateway)
    python -m tests.harness.fleet restart-gateway STATE_DIR [--http-port N]  # miniupnpd restarted
    python -m tests.harness.fleet listen STATE_DIR HOST PORT    # a TCP listener on a host
    python -m tests.harness.fleet wan-connect STATE_DIR PORT [--host H]  # connect from the WAN side
    python -m tests.harness.fleet run-unit STATE_DIR HOST UNIT  # start a unit's ExecStart as its User
    python -m tests.harness.fleet stop-unit STATE_DIR HOST UNIT # SIGTERM it; exits with its exit status
    python -m tests.harness.fleet await-mappings STATE_DIR PORT... [--within S] [--host H]

``--systemd HOST`` makes a host look run by systemd, in its own view only: a /run/systemd/system
folder and tests/harness/systemctl_standin.py as /usr/local/sbin/systemctl (systemd is not PID 1
on the test machines; the stand-in records what the role asks and starts nothing). ``run-unit``
then runs the installed unit's ExecStart in the host's namespaces as the unit's User and Group
(without the unit's sandbox), under a small supervisor that records its exit status.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from .interop import CONNECT, LISTENER
from .netns import Topology, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OVERLAID = ("/etc", "/usr/local", "/var/lib", "/var/log")
WATCHED = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/cron.d", "/usr/local/sbin", "/var/lib")
GATEWAYS = ("simgw", "simgw-upnp", "simgw-all", "miniupnpd", "miniupnpd-upnp", "miniupnpd-all")
STANDIN = os.path.join(REPO, "tests", "harness", "systemctl_standin.py")
# Runs argv, records its pid and then its exit status (for stop-unit): argv[1] pid file, argv[2] status file.
SUPERVISOR = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[3:])
with open(sys.argv[1], "w") as handle:
    handle.write(str(child.pid))
status = child.wait()
with open(sys.argv[2] + ".tmp", "w") as handle:
    handle.write(str(status))
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
"""
SIMGW_OPTIONS = {"simgw": ["--announce", "multicast"],
                 "simgw-upnp": ["--speaks", "none", "--igd", "v2", "--ssdp", "unicast"],
                 "simgw-all": ["--announce", "multicast", "--igd", "v2", "--ssdp", "unicast"]}


def fingerprint() -> Dict[str, str]:
    """What the machine's own files look like (to prove the hosts never touched them)."""
    result = {}
    for path in WATCHED:
        if os.path.isdir(path):
            result[path] = ",".join(sorted(os.listdir(path)))
        elif os.path.exists(path):
            with open(path, "rb") as handle:
                result[path] = hashlib.sha256(handle.read()).hexdigest()
    return result


def _topology(site: Dict[str, Any]) -> Topology:
    return Topology(hosts=len(site["hosts"]), tag=site["tag"], wan_prefix=site["wan_prefix"],
                    lan_prefix=site["lan_prefix"])


class Fleet:
    def __init__(self, state_dir: str) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.state_file = os.path.join(self.state_dir, "fleet.json")
        self.state: Dict[str, Any] = {}
        if os.path.exists(self.state_file):
            with open(self.state_file, encoding="utf-8") as handle:
                self.state = json.load(handle)

    def save(self) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        with open(self.state_file + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(self.state, handle, indent=2)
        os.replace(self.state_file + ".tmp", self.state_file)

    def host(self, name: str) -> Dict[str, Any]:
        return self.state["hosts"][name]

    def site(self, host: Optional[str] = None) -> Dict[str, Any]:
        """The gateway's record: the first site's, or that of the site ``host`` is in."""
        return self.state["sites"][self.host(host)["site"] if host else 0]

    # ------------------------------------------------------------------ create

    def create(self, sites: List[List[str]], python: str = sys.executable, systemd: Sequence[str] = (),
               empty: Sequence[str] = ()) -> None:
        """``sites``: one [gateway, host, ...] per gateway, each in a sealed topology of its own;
        the hosts of ``systemd`` look run by systemd (see the module's docstring); the folders of
        ``empty`` (of OVERLAID) start empty in every host's view (a tmpfs instead of an overlay)."""
        if self.state:
            self.destroy()
        self.state = {"sites": [], "hosts": {}, "pids": [], "mounts": [], "fingerprint": fingerprint(),
                      "python": python, "empty": list(empty)}
        self.save()  # recorded before anything exists, so destroy always knows what to remove
        try:
            for index, (gateway, *names) in enumerate(sites):
                self._make_site(index, gateway, names, python)
            for name in systemd:
                self._fake_systemd(name, python)
        except BaseException:
            self.destroy()
            raise

    def _make_site(self, index: int, gateway: str, names: List[str], python: str) -> None:
        # Site N: WAN 11.22.(33+N).0/24 (not a reserved range: miniupnpd refuses those), LAN 192.168.(77+N).0/24.
        wan_prefix, lan_prefix = f"11.22.{33 + index}", f"192.168.{77 + index}"
        topo = Topology(hosts=len(names), wan_prefix=wan_prefix, lan_prefix=lan_prefix)
        site = {"gateway": gateway, "tag": topo.tag, "hosts": names, "namespaces": topo.namespaces,
                "wan_prefix": wan_prefix, "lan_prefix": lan_prefix, "wan": topo.wan, "gw": topo.gw,
                "gw_lan_address": topo.gw_lan_address, "gw_wan_address": topo.gw_wan_address, "pids": []}
        self.state["sites"].append(site)
        self.save()
        topo.create()
        topo.assert_sealed()
        for name, netns, address in zip(names, topo.hosts, topo.host_addresses):
            self._make_host(name, netns, address, python, index)
        self._start_gateway(site, topo, python, os.path.join(self.state_dir, f"gw{index or ''}.sock"))

    def _make_host(self, name: str, netns: str, address: str, python: str, site: int) -> None:
        folder = os.path.join(self.state_dir, "hosts", name)
        os.makedirs(folder, exist_ok=True)
        mnt = os.path.join(folder, "mnt")
        open(mnt, "a", encoding="ascii").close()
        subprocess.run(["unshare", f"--mount={mnt}", "--propagation", "private", "true"], check=True)
        self.state["mounts"].append(mnt)
        self.state["hosts"][name] = {"netns": netns, "mnt": mnt, "dir": folder, "address": address,
                                     "python": os.path.join(folder, "python"), "site": site}
        self.save()
        script = ["set -e"]
        for path in OVERLAID:
            if path in self.state.get("empty", ()):
                script.append(f"mount -t tmpfs -o mode=0755 tmpfs {path}")
                continue
            upper = os.path.join(folder, "overlay", path.strip("/").replace("/", "_"))
            script.append(f"mkdir -p {upper}/up {upper}/work")
            script.append(f"mount -t overlay overlay -o lowerdir={path},upperdir={upper}/up,workdir={upper}/work {path}")
        script.append("mount -t tmpfs -o mode=1777 tmpfs /run/lock")
        subprocess.run(["nsenter", f"--mount={mnt}", "--", "sh", "-c", "\n".join(script)], check=True)
        wrapper = self.host(name)["python"]
        with open(wrapper, "w", encoding="ascii") as handle:
            handle.write(f"#!/bin/sh\nexec nsenter --net=/run/netns/{netns} --mount={mnt} -- {python} \"$@\"\n")
        os.chmod(wrapper, 0o755)

    def _fake_systemd(self, name: str, python: str) -> None:
        """/run/systemd/system and the recording systemctl stand-in, in the host's view only."""
        steps = ["set -e", "mount -t tmpfs -o mode=0755 tmpfs /run/systemd", "mkdir /run/systemd/system",
                 "mkdir -p /usr/local/sbin", "cat > /usr/local/sbin/systemctl", "chmod 0755 /usr/local/sbin/systemctl"]
        script = "\n".join(steps)
        subprocess.run(["nsenter", f"--mount={self.host(name)['mnt']}", "--", "sh", "-c", script],
                       input=f'#!/bin/sh\nexec {python} {STANDIN} "$@"\n', text=True, check=True)
        self.host(name)["systemd"] = True
        self.save()

    def _start_gateway(self, site: Dict[str, Any], topo: Topology, python: str, control: str) -> None:
        if site["gateway"].startswith("miniupnpd"):
            kind = site["gateway"]
            site["miniupnpd"] = {"upnp": kind != "miniupnpd", "natpmp": kind != "miniupnpd-upnp", "http_port": 5000}
            daemon = self._miniupnpd(site, topo)
            site["miniupnpd_folder"] = daemon.folder
            self.save()
            daemon.start()
            site["pids"].append(daemon.pid)
        else:
            log = open(os.path.join(self.state_dir, "gateway.log"), "a", encoding="utf-8")  # pylint: disable=consider-using-with
            process = subprocess.Popen(  # pylint: disable=consider-using-with
                ["ip", "netns", "exec", topo.gw, python, "-m", "simgw",
                 "--listen", f"{topo.gw_lan_address}:5351", "--control", control,
                 "--public-address", topo.gw_wan_address, *SIMGW_OPTIONS[site["gateway"]]],
                stdout=log, stderr=log, start_new_session=True, cwd=REPO)
            site["pids"].append(process.pid)
            site["control"] = control
            self.save()
            wait_for(lambda: os.path.exists(control), what="the simulated gateway's control socket")
        self.save()

    @staticmethod
    def _miniupnpd(site: Dict[str, Any], topo: Topology):
        from .miniupnpd import Miniupnpd
        return Miniupnpd(topo, folder=site.get("miniupnpd_folder"), **site["miniupnpd"])

    def restart_gateway(self, http_port: Optional[int] = None) -> Dict[str, Any]:
        """Restart the first site's miniupnpd (its mappings are gone), on another HTTP port if given."""
        site = self.site()
        if not site["gateway"].startswith("miniupnpd"):
            raise ValueError(f"restart-gateway restarts miniupnpd; this fleet's gateway is {site['gateway']}")
        if http_port:
            site["miniupnpd"]["http_port"] = http_port
        daemon = self._miniupnpd(site, _topology(site))
        daemon.pid = site["pids"][0]
        try:
            daemon.restart()
        finally:
            site["pids"] = [daemon.pid] if daemon.pid else []
            self.save()
        return {"pid": daemon.pid, "http_port": daemon.http_port}

    # ------------------------------------------------------------------ destroy

    def _sites(self) -> List[Dict[str, Any]]:
        if "sites" in self.state:
            return self.state["sites"]
        if self.state.get("tag"):  # a state written before sites existed (one gateway, top-level keys)
            return [{"tag": self.state["tag"], "hosts": list(self.state.get("hosts", {})),
                     "namespaces": self.state.get("namespaces") or Topology(
                         hosts=len(self.state.get("hosts", {})), tag=self.state["tag"]).namespaces,
                     "pids": [], "miniupnpd_folder": self.state.get("miniupnpd_folder")}]
        return []

    def destroy(self) -> List[str]:
        """Remove everything the state records; returns what could not be removed."""
        problems = []
        sites = self._sites()
        for pid in self.state.get("pids", []) + [pid for site in sites for pid in site.get("pids", [])]:
            _end(pid)
        for site in sites:
            Topology(tag=site["tag"]).destroy_by_name(site["namespaces"])
        for mnt in self.state.get("mounts", []):
            subprocess.run(["umount", mnt], capture_output=True, check=False)
        for site in sites:
            if site.get("miniupnpd_folder"):
                shutil.rmtree(site["miniupnpd_folder"], ignore_errors=True)
        before = self.state.get("fingerprint")
        if before and fingerprint() != before:
            problems.append("the machine's own files changed: " + json.dumps(
                {k: v for k, v in fingerprint().items() if before.get(k) != v}))
        shutil.rmtree(os.path.join(self.state_dir, "hosts"), ignore_errors=True)
        leftovers = ["fleet.json"] + [site["control"] for site in sites if site.get("control")]
        for leftover in leftovers:
            try:
                os.unlink(os.path.join(self.state_dir, leftover))
            except FileNotFoundError:
                pass
        self.state = {}
        return problems

    # ------------------------------------------------------------------ use

    def exec_argv(self, name: str, argv: List[str]) -> List[str]:
        host = self.host(name)
        return ["nsenter", f"--net=/run/netns/{host['netns']}", f"--mount={host['mnt']}", "--", *argv]

    def cron_job(self, name: str, now: bool = False, cron_file: str = "portmap-natpmp") -> Dict[str, str]:
        """The job's user and command, read from the role's cron file in the host's view."""
        listing = subprocess.run(self.exec_argv(name, ["cat", f"/etc/cron.d/{cron_file}"]), capture_output=True,
                                 text=True, check=True).stdout
        for line in listing.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            if now != line.startswith("@reboot"):
                continue
            fields = line.split(None, 1 if line.startswith("@") else 5)
            rest = fields[-1]
            user, command = rest.split(None, 1)
            return {"schedule": " ".join(fields[:-1]), "user": user, "command": command}
        raise LookupError(f"no {'@reboot' if now else 'periodic'} job in the cron file of {name}")

    def run_job(self, name: str, now: bool = False) -> subprocess.CompletedProcess:
        job = self.cron_job(name, now)
        # cron runs the line with /bin/sh as the user; '%' would be a newline (escaped as '\\%').
        command = re.sub(r"\\%", "%", job["command"])
        return subprocess.run(self.exec_argv(name, ["runuser", "-u", job["user"], "--", "/bin/sh", "-c", command]),
                              capture_output=True, text=True, check=False, timeout=120)

    def unit_command(self, name: str, unit: str, unit_dir: str = "/etc/systemd/system") -> Dict[str, Any]:
        """The ExecStart (as argv), User and Group of a unit installed on the host, read from its file.

        ExecStart is split as the role writes it: each argument in double quotes with \\ and \" escaped,
        %% for % and $$ for $."""
        text = subprocess.run(self.exec_argv(name, ["cat", os.path.join(unit_dir, unit)]), capture_output=True,
                              text=True, check=True).stdout
        settings: Dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key in ("ExecStart", "User", "Group"):
                settings[key] = value
        argv = [word.replace("%%", "%").replace("$$", "$") for word in shlex.split(settings["ExecStart"])]
        return {"argv": argv, "user": settings.get("User", "root"), "group": settings.get("Group", "root")}

    def run_unit(self, name: str, unit: str) -> Dict[str, Any]:
        """Start the unit's ExecStart in the host's namespaces as its User and Group, in the background."""
        command = self.unit_command(name, unit)
        folder = os.path.join(self.host(name)["dir"], "units")
        os.makedirs(folder, exist_ok=True)
        pid_file, status_file = os.path.join(folder, unit + ".pid"), os.path.join(folder, unit + ".status")
        for path in (pid_file, status_file):
            if os.path.exists(path):
                os.unlink(path)
        # nsenter (no PID namespace) and setpriv exec in place: the supervisor's child is the unit's process.
        argv = self.exec_argv(name, ["setpriv", f"--reuid={command['user']}", f"--regid={command['group']}",
                                     "--init-groups", "--", *command["argv"]])
        log = open(os.path.join(folder, unit + ".log"), "ab")  # pylint: disable=consider-using-with
        supervisor = subprocess.Popen([self.state["python"], "-c", SUPERVISOR, pid_file, status_file, *argv],  # pylint: disable=consider-using-with
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        self.state["pids"].append(supervisor.pid)  # destroy ends its process group, the unit's process too
        self.save()
        wait_for(lambda: os.path.exists(pid_file) and os.path.getsize(pid_file) > 0, what=f"{unit} on {name}")
        with open(pid_file, encoding="ascii") as handle:
            pid = int(handle.read())
        units = self.host(name).setdefault("units", {})
        units[unit] = {"pid": pid, "supervisor": supervisor.pid, "status_file": status_file}
        self.save()
        return {"pid": pid, **command}

    def stop_unit(self, name: str, unit: str, timeout: float = 10) -> int:
        """SIGTERM the unit's process started by run_unit; its exit status (128 + N for a signal N)."""
        record = self.host(name)["units"][unit]
        os.kill(record["pid"], signal.SIGTERM)
        wait_for(lambda: os.path.exists(record["status_file"]), timeout=timeout,
                 what=f"{unit} on {name} to exit after SIGTERM")
        with open(record["status_file"], encoding="ascii") as handle:
            status = int(handle.read())
        return 128 - status if status < 0 else status

    def await_mappings(self, ports: Sequence[int], within: float, host: Optional[str] = None,
                       reboot: bool = False) -> float:
        """Seconds until the gateway's table holds every one of ``ports`` (internal); LookupError after ``within``.

        With ``reboot``, the simulated gateway reboots first (its table empties) and the clock starts then."""
        from simgw import control
        path = self.site(host)["control"]
        start = time.monotonic()
        if reboot:
            rebooted = control(path, {"cmd": "reboot"})
            if not rebooted.get("ok"):
                raise LookupError("the simulated gateway did not reboot")
            # The count the reboot's own answer gives: a table read afterwards may already hold
            # the mappings a listening watch made again on the reboot's announcement.
            if rebooted.get("mappings") != 0:
                raise LookupError(f"the reboot left {rebooted.get('mappings')} mappings in the gateway's table")
        while True:
            table = control(path, {"cmd": "table"})
            held = {mapping["internal_port"] for mapping in table.get("mappings", [])}
            elapsed = time.monotonic() - start
            if set(ports) <= held:
                return elapsed
            if elapsed > within:
                raise LookupError(f"after {elapsed:.2f} s the gateway holds {sorted(held)}, not {sorted(ports)}")
            time.sleep(0.05)

    def listen(self, name: str, port: int) -> None:
        """A TCP listener on the host's port, answering ``hello from NAME`` (ended by destroy)."""
        argv = [self.state["python"], "-c", LISTENER, str(port), f"hello from {name}"]
        process = subprocess.Popen(self.exec_argv(name, argv), stdout=subprocess.PIPE,  # pylint: disable=consider-using-with
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        self.state["pids"].append(process.pid)
        self.save()
        if process.stdout.readline().strip() != b"listening":
            raise RuntimeError(f"the listener on {name}:{port} did not start")
        process.stdout.close()

    def wan_connect(self, port: int, host: Optional[str] = None) -> str:
        """Connect from the WAN side to the public address of the gateway (``host``'s) at ``port``."""
        site = self.site(host)
        result = subprocess.run(["ip", "netns", "exec", site["wan"], self.state["python"], "-c", CONNECT,
                                 site["gw_wan_address"], str(port)],
                                capture_output=True, text=True, check=False, timeout=30)
        return result.stdout.strip()


def _end(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="fleet", description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create")
    create.add_argument("state_dir")
    create.add_argument("--hosts", nargs="+", required=True)
    create.add_argument("--gateway", choices=GATEWAYS, default="simgw")
    create.add_argument("--site", nargs="+", action="append", default=[], metavar="GATEWAY HOST",
                        help="another gateway and the hosts behind it, in a topology of its own")
    create.add_argument("--python", default=sys.executable)
    create.add_argument("--systemd", nargs="+", default=[], metavar="HOST",
                        help="these hosts look run by systemd, with a recording systemctl stand-in")
    destroy = sub.add_parser("destroy")
    destroy.add_argument("state_dir")
    job = sub.add_parser("job")
    job.add_argument("state_dir")
    job.add_argument("host")
    job.add_argument("--now", action="store_true", help="the @reboot line (renew --now)")
    show = sub.add_parser("cron-line")
    show.add_argument("state_dir")
    show.add_argument("host")
    ctl = sub.add_parser("ctl")
    ctl.add_argument("state_dir")
    ctl.add_argument("command_json")
    ctl.add_argument("--host", help="the gateway of this host's site (default: the first site's)")
    restart = sub.add_parser("restart-gateway")
    restart.add_argument("state_dir")
    restart.add_argument("--http-port", type=int, help="listen on this HTTP port from now on (as after a restart "
                         "without a fixed http_port)")
    listen = sub.add_parser("listen")
    listen.add_argument("state_dir")
    listen.add_argument("host")
    listen.add_argument("port", type=int)
    connect = sub.add_parser("wan-connect")
    connect.add_argument("state_dir")
    connect.add_argument("port", type=int)
    connect.add_argument("--host", help="connect to this host's gateway (default: the first site's)")
    for name in ("run-unit", "stop-unit"):
        unit = sub.add_parser(name)
        unit.add_argument("state_dir")
        unit.add_argument("host")
        unit.add_argument("unit")
    wait = sub.add_parser("await-mappings")
    wait.add_argument("state_dir")
    wait.add_argument("ports", type=int, nargs="+")
    wait.add_argument("--within", type=float, default=2.0)
    wait.add_argument("--host", help="the gateway of this host's site (default: the first site's)")
    wait.add_argument("--reboot", action="store_true", help="reboot the simulated gateway first; the clock starts then")
    args = parser.parse_args(argv)
    fleet = Fleet(args.state_dir)
    if args.command == "create":
        for site in args.site:
            if site[0] not in GATEWAYS or len(site) < 2:
                parser.error(f"--site takes a gateway ({', '.join(GATEWAYS)}) and its hosts, not {' '.join(site)!r}")
        fleet.create([[args.gateway, *args.hosts], *args.site], args.python, args.systemd)
        print(json.dumps({"hosts": fleet.state["hosts"], "controls": [s.get("control") for s in fleet.state["sites"]]}))
        return 0
    if args.command == "destroy":
        problems = fleet.destroy()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    if not fleet.state:
        print(f"no fleet recorded in {args.state_dir}", file=sys.stderr)
        return 2
    if args.command == "job":
        result = fleet.run_job(args.host, args.now)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        return result.returncode
    if args.command == "cron-line":
        print(json.dumps(fleet.cron_job(args.host)))
        return 0
    if args.command == "ctl":
        from simgw import control
        answer = control(fleet.site(args.host)["control"], json.loads(args.command_json))
        print(json.dumps(answer))
        return 0 if answer.get("ok") else 1
    if args.command == "restart-gateway":
        print(json.dumps(fleet.restart_gateway(args.http_port)))
        return 0
    if args.command == "listen":
        fleet.listen(args.host, args.port)
        return 0
    if args.command == "run-unit":
        print(json.dumps(fleet.run_unit(args.host, args.unit)))
        return 0
    if args.command == "stop-unit":
        status = fleet.stop_unit(args.host, args.unit)
        print(json.dumps({"status": status}))
        return status
    if args.command == "await-mappings":
        try:
            print(json.dumps({"seconds": round(fleet.await_mappings(args.ports, args.within, args.host, args.reboot), 3)}))
        except LookupError as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    if args.command == "wan-connect":
        print(fleet.wan_connect(args.port, args.host))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
