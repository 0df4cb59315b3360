"""Test hosts for molecule: each a network namespace behind a gateway, with its own view of files.

Every host gets a network namespace (from netns.Topology, sealed) and a persistent mount
namespace in which /etc, /usr/local, /var/lib and /var/log are overlays (the machine's
files below, the host's own changes above) and /run/lock a tmpfs, so the role's cron file,
user, command, units and ledger stay per host and the machine's own files are untouched.
A wrapper per host runs Python inside both namespaces: it is the host's
``ansible_python_interpreter``. The gateway (the simulated one, or miniupnpd) runs in the
gateway namespace. Everything is recorded in a state file, so a later process (molecule's
destroy) removes it all, also after a failed run.

    python -m tests.harness.fleet create STATE_DIR --hosts a b c [--gateway simgw|miniupnpd]
    python -m tests.harness.fleet destroy STATE_DIR
    python -m tests.harness.fleet job STATE_DIR HOST [--now]   # run the job as cron would
    python -m tests.harness.fleet ctl STATE_DIR JSON            # simulated gateway control
    python -m tests.harness.fleet listen STATE_DIR HOST PORT    # a TCP listener on a host
    python -m tests.harness.fleet wan-connect STATE_DIR PORT    # connect from the WAN side
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

from .netns import Topology, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OVERLAID = ("/etc", "/usr/local", "/var/lib", "/var/log")
WATCHED = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/cron.d", "/usr/local/sbin", "/var/lib")


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

    @property
    def topology(self) -> Topology:
        return Topology(hosts=len(self.state["hosts"]), tag=self.state["tag"])

    def host(self, name: str) -> Dict[str, Any]:
        return self.state["hosts"][name]

    # ------------------------------------------------------------------ create

    def create(self, names: List[str], gateway: str = "simgw", python: str = sys.executable) -> None:
        if self.state:
            self.destroy()
        topo = Topology(hosts=len(names))
        self.state = {"tag": topo.tag, "gateway": gateway, "hosts": {}, "pids": [], "mounts": [],
                      "fingerprint": fingerprint(), "python": python}
        self.save()  # recorded before anything exists, so destroy always knows what to remove
        try:
            topo.create()
            self.state["namespaces"] = topo.namespaces
            self.state["gw_lan_address"] = topo.gw_lan_address
            self.state["gw_wan_address"] = topo.gw_wan_address
            self.state["wan"] = topo.wan
            self.state["gw"] = topo.gw
            self.save()
            topo.assert_sealed()
            for name, netns, address in zip(names, topo.hosts, topo.host_addresses):
                self._make_host(name, netns, address, python)
            self._start_gateway(topo, python)
        except BaseException:
            self.destroy()
            raise

    def _make_host(self, name: str, netns: str, address: str, python: str) -> None:
        folder = os.path.join(self.state_dir, "hosts", name)
        os.makedirs(folder, exist_ok=True)
        mnt = os.path.join(folder, "mnt")
        open(mnt, "a", encoding="ascii").close()
        subprocess.run(["unshare", f"--mount={mnt}", "--propagation", "private", "true"], check=True)
        self.state["mounts"].append(mnt)
        self.state["hosts"][name] = {"netns": netns, "mnt": mnt, "dir": folder, "address": address,
                                     "python": os.path.join(folder, "python")}
        self.save()
        script = ["set -e"]
        for path in OVERLAID:
            upper = os.path.join(folder, "overlay", path.strip("/").replace("/", "_"))
            script.append(f"mkdir -p {upper}/up {upper}/work")
            script.append(f"mount -t overlay overlay -o lowerdir={path},upperdir={upper}/up,workdir={upper}/work {path}")
        script.append("mount -t tmpfs -o mode=1777 tmpfs /run/lock")
        subprocess.run(["nsenter", f"--mount={mnt}", "--", "sh", "-c", "\n".join(script)], check=True)
        wrapper = self.host(name)["python"]
        with open(wrapper, "w", encoding="ascii") as handle:
            handle.write(f"#!/bin/sh\nexec nsenter --net=/run/netns/{netns} --mount={mnt} -- {python} \"$@\"\n")
        os.chmod(wrapper, 0o755)

    def _start_gateway(self, topo: Topology, python: str) -> None:
        log = open(os.path.join(self.state_dir, "gateway.log"), "a", encoding="utf-8")  # pylint: disable=consider-using-with
        if self.state["gateway"] == "miniupnpd":
            from .miniupnpd import Miniupnpd
            daemon = Miniupnpd(topo)
            self.state["miniupnpd_folder"] = daemon.folder
            self.save()
            daemon.start()
            self.state["pids"].append(daemon.pid)
        else:
            control = os.path.join(self.state_dir, "gw.sock")
            process = subprocess.Popen(  # pylint: disable=consider-using-with
                ["ip", "netns", "exec", topo.gw, python, "-m", "simgw",
                 "--listen", f"{topo.gw_lan_address}:5351", "--control", control,
                 "--public-address", topo.gw_wan_address, "--announce", "multicast"],
                stdout=log, stderr=log, start_new_session=True, cwd=REPO)
            self.state["pids"].append(process.pid)
            self.state["control"] = control
            self.save()
            wait_for(lambda: os.path.exists(control), what="the simulated gateway's control socket")
        self.save()

    # ------------------------------------------------------------------ destroy

    def destroy(self) -> List[str]:
        """Remove everything the state records; returns what could not be removed."""
        problems = []
        for pid in self.state.get("pids", []):
            _end(pid)
        if self.state.get("tag"):
            self.topology.destroy_by_name(self.state.get("namespaces") or self.topology.namespaces)
        for mnt in self.state.get("mounts", []):
            subprocess.run(["umount", mnt], capture_output=True, check=False)
        if self.state.get("miniupnpd_folder"):
            shutil.rmtree(self.state["miniupnpd_folder"], ignore_errors=True)
        before = self.state.get("fingerprint")
        if before and fingerprint() != before:
            problems.append("the machine's own files changed: " + json.dumps(
                {k: v for k, v in fingerprint().items() if before.get(k) != v}))
        shutil.rmtree(os.path.join(self.state_dir, "hosts"), ignore_errors=True)
        for leftover in ("fleet.json", "gw.sock"):
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
    create.add_argument("--gateway", choices=("simgw", "miniupnpd"), default="simgw")
    create.add_argument("--python", default=sys.executable)
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
    listen = sub.add_parser("listen")
    listen.add_argument("state_dir")
    listen.add_argument("host")
    listen.add_argument("port", type=int)
    connect = sub.add_parser("wan-connect")
    connect.add_argument("state_dir")
    connect.add_argument("port", type=int)
    args = parser.parse_args(argv)
    fleet = Fleet(args.state_dir)
    if args.command == "create":
        fleet.create(args.hosts, args.gateway, args.python)
        print(json.dumps({"hosts": fleet.state["hosts"], "control": fleet.state.get("control")}))
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
        answer = control(fleet.state["control"], json.loads(args.command_json))
        print(json.dumps(answer))
        return 0 if answer.get("ok") else 1
    if args.command == "listen":
        code = ("import socket, sys\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                "s.bind(('0.0.0.0', int(sys.argv[1])))\ns.listen(8)\n"
                "while True:\n    c, _peer = s.accept()\n    c.sendall(b'hello from the host\\n')\n    c.close()\n")
        process = subprocess.Popen(fleet.exec_argv(args.host, [fleet.state["python"], "-c", code, str(args.port)]),  # pylint: disable=consider-using-with
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        fleet.state["pids"].append(process.pid)
        fleet.save()
        time.sleep(0.3)
        return 0
    if args.command == "wan-connect":
        code = ("import socket, sys\ns = socket.socket()\ns.settimeout(2)\n"
                "try:\n    s.connect((sys.argv[1], int(sys.argv[2])))\n    print(s.recv(100).decode().strip())\n"
                "except OSError as exc:\n    print('failed: ' + exc.__class__.__name__)\n")
        result = subprocess.run(["ip", "netns", "exec", fleet.state["wan"], fleet.state["python"], "-c", code,
                                 fleet.state["gw_wan_address"], str(args.port)],
                                capture_output=True, text=True, check=False, timeout=30)
        print(result.stdout.strip())
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
