"""The real miniupnpd (Debian miniupnpd-nftables 2.3.1) as the gateway of a Topology.

It runs daemonized (in debug mode a request outside the allow rules stalls it for a
minute) inside the topology's gateway namespace, with the base nftables ruleset it needs
(it does not create its chains), and is stopped by its pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from typing import Optional

from .netns import Topology, wait_for

BINARY = "/usr/sbin/miniupnpd"

BASE_RULESET = """
table inet filter {
    chain forward {
        type filter hook forward priority 0; policy accept;
        jump miniupnpd
    }
    chain miniupnpd {
    }
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        jump prerouting_miniupnpd
    }
    chain prerouting_miniupnpd {
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        jump postrouting_miniupnpd
    }
    chain postrouting_miniupnpd {
    }
}
"""


def available() -> tuple:
    for tool in (BINARY, shutil.which("nft")):
        if not tool or not os.path.exists(tool):
            return False, "miniupnpd-nftables and nftables are not installed (make deps installs them)"
    return True, ""


class Miniupnpd:
    """``upnp`` also serves UPnP IGD on ``http_port`` (IGDv2, or v1 with ``igd_v1``); ``natpmp=False``
    turns NAT-PMP and PCP off (``enable_natpmp=no``: a UPnP-only gateway, nothing on port 5351).
    ``folder`` (and ``pid``, set after construction) take over a daemon another process started,
    to ``restart()`` or ``stop()`` it."""

    def __init__(self, topology: Topology, upnp: bool = False, http_port: int = 5000, igd_v1: bool = False,
                 secure_mode: bool = True, natpmp: bool = True, folder: Optional[str] = None) -> None:
        self.topology = topology
        self.upnp = upnp
        self.natpmp = natpmp
        self.http_port = http_port
        self.igd_v1 = igd_v1
        self.secure_mode = secure_mode
        self.folder = folder or tempfile.mkdtemp(prefix="portmap-miniupnpd-")  # a folder given: a daemon started before
        self.config = os.path.join(self.folder, "miniupnpd.conf")
        self.pidfile = os.path.join(self.folder, "miniupnpd.pid")
        self.pid: Optional[int] = None

    def start(self) -> "Miniupnpd":
        topo = self.topology
        ruleset = os.path.join(self.folder, "base.nft")
        with open(ruleset, "w", encoding="ascii") as handle:
            handle.write(BASE_RULESET)
        topo.run(topo.gw, ["nft", "delete", "table", "inet", "filter"])  # a restart: its rules go with it
        loaded = topo.run(topo.gw, ["nft", "-f", ruleset])
        if loaded.returncode != 0:
            raise RuntimeError(f"nft -f failed: {loaded.stderr}")
        with open(self.config, "w", encoding="ascii") as handle:
            handle.write(
                "ext_ifname=wan0\n"
                "listening_ip=lan0\n"
                f"enable_natpmp={'yes' if self.natpmp else 'no'}\n"
                + self._upnp_lines() +
                "ipv6_disable=yes\n"
                f"secure_mode={'yes' if self.secure_mode else 'no'}\n"
                f"lease_file={self.folder}/leases\n"
                f"uuid={uuid.uuid4()}\n"
                f"allow 1024-65535 {topo.lan_prefix}.0/24 1024-65535\n"
                "deny 0-65535 0.0.0.0/0 0-65535\n"
            )
        started = topo.run(topo.gw, [BINARY, "-f", self.config, "-P", self.pidfile])
        if started.returncode != 0:
            raise RuntimeError(f"miniupnpd did not start: {started.stderr}")
        wait_for(lambda: os.path.exists(self.pidfile) and open(self.pidfile, encoding="ascii").read().strip(),
                 what="miniupnpd's pid file")
        self.pid = int(open(self.pidfile, encoding="ascii").read().strip())
        wait_for(self._listening, what="miniupnpd listening")
        return self

    def restart(self) -> "Miniupnpd":
        """Stop and start again, as a gateway reboot: its mappings are gone (the lease file too)."""
        self._end()
        for leftover in ("leases", "miniupnpd.pid"):
            try:
                os.unlink(os.path.join(self.folder, leftover))
            except FileNotFoundError:
                pass
        return self.start()

    def _upnp_lines(self) -> str:
        if not self.upnp:
            return "enable_upnp=no\n"
        return f"enable_upnp=yes\nhttp_port={self.http_port}\n" + ("force_igd_desc_v1=yes\n" if self.igd_v1 else "")

    @property
    def description_url(self) -> str:
        return f"http://{self.topology.gw_lan_address}:{self.http_port}/rootDesc.xml"

    def _listening(self) -> bool:
        out = self.topology.run(self.topology.gw, ["ss", "-uln"]).stdout
        if self.natpmp and ":5351" not in out:
            return False
        return not self.upnp or f":{self.http_port} " in self.topology.run(self.topology.gw, ["ss", "-tln"]).stdout

    def stop(self) -> None:
        self._end()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _end(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.pid = None

    def __enter__(self) -> "Miniupnpd":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
