"""Sealed network namespaces for tests: a WAN, a gateway and hosts behind it.

Every veth pair is created inside the namespaces (``ip link add ... netns A peer ... netns B``
run from within a namespace), never in the root namespace, so nothing a test host sends can
leave the machine. ``destroy`` ends every process started through the topology (by pid) and
deletes every namespace; it is idempotent and also cleans up after a half-made topology.

Layout (addresses are the defaults):
    wan   11.22.33.1/24          the "internet"
    gw    11.22.33.2/24 (WAN), 192.168.77.1/24 (LAN, on a bridge), forwarding on
    hN    192.168.77.(10+N)/24, default route via 192.168.77.1
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from typing import Dict, List, Optional, Sequence


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def netns_available() -> tuple:
    """(True, "") when namespaces can be made here, else (False, why)."""
    if os.geteuid() != 0:
        return False, "network namespaces need root"
    name = f"pmprobe{secrets.token_hex(3)}"
    try:
        made = _ip("netns", "add", name, check=False)
    except FileNotFoundError:
        return False, "iproute2 (ip) is not installed"
    if made.returncode != 0:
        return False, f"ip netns add failed: {made.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return True, ""


class Topology:
    def __init__(self, hosts: int = 1, wan_prefix: str = "11.22.33", lan_prefix: str = "192.168.77",
                 first_host: int = 10, tag: Optional[str] = None) -> None:
        self.tag = tag or secrets.token_hex(3)
        self.wan = f"pmw{self.tag}"
        self.gw = f"pmg{self.tag}"
        self.hosts = [f"pmh{self.tag}{i}" for i in range(hosts)]
        self.wan_address = f"{wan_prefix}.1"
        self.gw_wan_address = f"{wan_prefix}.2"
        self.gw_lan_address = f"{lan_prefix}.1"
        self.host_addresses = [f"{lan_prefix}.{first_host + i}" for i in range(hosts)]
        self.lan_prefix = lan_prefix
        self.veths: List[str] = []
        self.processes: List[subprocess.Popen] = []
        self.created: List[str] = []

    @property
    def namespaces(self) -> List[str]:
        return [self.wan, self.gw, *self.hosts]

    # ------------------------------------------------------------------ build

    def _in(self, ns: str, *args: str) -> None:
        _ip("-n", ns, *args)

    def create(self) -> "Topology":
        try:
            for ns in self.namespaces:
                _ip("netns", "add", ns)
                self.created.append(ns)
                self._in(ns, "link", "set", "lo", "up")
            # WAN link: both ends made inside namespaces.
            self._in(self.wan, "link", "add", "wan0", "type", "veth", "peer", "name", "wan0", "netns", self.gw)
            self._in(self.wan, "addr", "add", f"{self.wan_address}/24", "dev", "wan0")
            self._in(self.wan, "link", "set", "wan0", "up")
            self._in(self.gw, "addr", "add", f"{self.gw_wan_address}/24", "dev", "wan0")
            self._in(self.gw, "link", "set", "wan0", "up")
            # LAN: a bridge inside the gateway namespace, one veth per host.
            self._in(self.gw, "link", "add", "lan0", "type", "bridge")
            self._in(self.gw, "addr", "add", f"{self.gw_lan_address}/24", "dev", "lan0")
            self._in(self.gw, "link", "set", "lan0", "up")
            for index, (ns, address) in enumerate(zip(self.hosts, self.host_addresses)):
                port = f"h{index}"
                self._in(self.gw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
                self._in(self.gw, "link", "set", port, "master", "lan0")
                self._in(self.gw, "link", "set", port, "up")
                self._in(ns, "addr", "add", f"{address}/24", "dev", "eth0")
                self._in(ns, "link", "set", "eth0", "up")
                self._in(ns, "route", "add", "default", "via", self.gw_lan_address)
            self._in(self.gw, "route", "add", "default", "via", self.wan_address)
            self.run(self.gw, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], check=True)
        except BaseException:
            self.destroy()
            raise
        return self

    # ------------------------------------------------------------------ use

    def argv(self, ns: str, argv: Sequence[str]) -> List[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def run(self, ns: str, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("check", False)
        kwargs.setdefault("timeout", 60)
        return subprocess.run(self.argv(ns, argv), **kwargs)  # pylint: disable=subprocess-run-check

    def popen(self, ns: str, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(self.argv(ns, argv), **kwargs)  # pylint: disable=consider-using-with
        self.processes.append(process)
        return process

    def assert_sealed(self) -> None:
        """Every link of our namespaces leads to one of our namespaces, none to the root one."""
        ours = set(self.namespaces)
        for ns in self.namespaces:
            ids = self._netns_ids(ns)
            for line in _ip("-n", ns, "-o", "link", "show").stdout.splitlines():
                if "link-netns" not in line:
                    continue
                words = line.split()
                peer = words[words.index("link-netns") + 1] if "link-netns" in words else \
                    ids.get(words[words.index("link-netnsid") + 1])
                assert peer in ours, f"namespace {ns} has a link to {peer!r}, outside the test's own: {line}"
        root_ids = self._netns_ids(None)
        for line in _ip("-o", "link", "show").stdout.splitlines():
            words = line.split()
            if "link-netnsid" in words:
                peer = root_ids.get(words[words.index("link-netnsid") + 1])
                assert peer not in ours, f"the root namespace links into {peer}: {line}"

    @staticmethod
    def _netns_ids(ns: Optional[str]) -> Dict[str, str]:
        """nsid -> namespace name, as seen from ``ns`` (None: the root namespace)."""
        args = (["-n", ns] if ns else []) + ["netns", "list-id"]
        mapping: Dict[str, str] = {}
        for line in _ip(*args, check=False).stdout.splitlines():
            words = line.replace("(", " ").replace(")", " ").split()
            if len(words) >= 2 and words[0] == "nsid":
                name = words[words.index("name") + 1] if "name" in words else ""
                mapping[words[1]] = name
        return mapping

    # ------------------------------------------------------------------ cleanup

    def stop(self, process: subprocess.Popen, grace: float = 5.0) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(grace)

    def destroy(self) -> None:
        for process in reversed(self.processes):
            self.stop(process)
        self.processes = []
        for ns in reversed(self.created):
            self.kill_leftovers(ns)
            _ip("netns", "del", ns, check=False)
        self.created = []

    def destroy_by_name(self, namespaces: Sequence[str]) -> None:
        """Delete these namespaces of ours (a later process, from a recorded state)."""
        present = set(existing_namespaces())
        for ns in reversed(list(namespaces)):
            if ns in present:
                self.kill_leftovers(ns)
                _ip("netns", "del", ns, check=False)

    def kill_leftovers(self, ns: str) -> None:
        """End processes still running in our namespace (started by us through a helper)."""
        pids = _ip("netns", "pids", ns, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
        deadline = time.monotonic() + 3
        while pids and time.monotonic() < deadline:
            pids = _ip("netns", "pids", ns, check=False).stdout.split()
            time.sleep(0.05)
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass

    def __enter__(self) -> "Topology":
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def existing_namespaces() -> List[str]:
    return [line.split()[0] for line in _ip("netns", "list", check=False).stdout.splitlines() if line.strip()]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
