"""NAT shapes for STUN tests: coturn on the WAN side, the gateway's nftables NAT in a chosen shape.

Built on netns.Topology (sealed: every veth pair is made inside our namespaces).  coturn runs
in the namespace that plays the Internet with two addresses (RFC 5780 needs them), started
with ``-n`` so Debian's ``no-rfc5780`` configuration is not read.  Shapes:

    masquerade     oifname "wan0" masquerade                     (EIM, APDF: port restricted cone)
    fully-random   masquerade fully-random                       (APDM: symmetric)
    full-cone      masquerade, dnat of every high UDP port to the host, ct status dnat accept (EIM, EIF)
    no-nat         the client on the WAN side, no rules          (open Internet)
    firewall       the client on the WAN side, stateful input filter (symmetric UDP firewall)
    blocked        masquerade, UDP to the server dropped in forward
    double-nat     a carrier-grade NAT between the gateway and the Internet: the gateway's WAN side
                   is 100.64.0.2/24, a second namespace masquerades it to 11.22.33.2; the
                   simulated gateway (NAT-PMP/PCP) runs on the gateway and says 100.64.0.2
    one-address    masquerade, coturn on one address only: no RFC 5780, the reflexive address alone

Every namespace and process is removed by ``destroy``, also when ``create`` fails half-way.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from typing import List, Optional, Sequence

from .netns import Topology, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES = ("masquerade", "fully-random", "full-cone", "no-nat", "firewall", "blocked", "double-nat", "one-address")
SERVER = "11.22.33.1"
SERVER_OTHER = "11.22.33.3"
STUN_PORT = 3478
CGNAT_PUBLIC = "100.64.0.2"


def available() -> tuple:
    missing = [tool for tool in ("turnserver", "turnutils_natdiscovery", "nft") if not shutil.which(tool)]
    if missing:
        return False, f"not installed: {', '.join(missing)} (make deps installs coturn and nftables)"
    return True, ""


def _forward(extra: str = "") -> str:
    return f"""
table ip filter {{
    chain forward {{
        type filter hook forward priority filter; policy drop;
        {extra}
        ct state established,related accept
        iifname "lan0" oifname "wan0" accept
    }}
}}
"""


def _nat(masquerade: str = "masquerade", prerouting: str = "", oif: str = "wan0") -> str:
    return f"""
table ip nat {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        {prerouting}
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{oif}" {masquerade}
    }}
}}
"""


class NatLab(Topology):
    """A topology in one NAT shape, with coturn (and, for double-nat, the simulated gateway)."""

    def __init__(self, shape: str, tag: Optional[str] = None) -> None:
        if shape not in SHAPES:
            raise ValueError(f"unknown NAT shape {shape!r}; one of {', '.join(SHAPES)}")
        self.shape = shape
        self.double = shape == "double-nat"
        tag = tag or secrets.token_hex(3)
        super().__init__(hosts=1, wan_prefix="100.64.0" if self.double else "11.22.33", tag=tag)
        self.internet = f"pmi{tag}" if self.double else self.wan  # where coturn runs
        self.server = SERVER
        self.other = SERVER_OTHER
        self.coturn: Optional[subprocess.Popen] = None
        self.control = f"/tmp/pmgw{tag}.sock"  # the simulated gateway's control socket (double-nat)

    @property
    def namespaces(self) -> List[str]:
        return super().namespaces + ([self.internet] if self.double else [])

    @property
    def client_ns(self) -> str:
        """Where the client runs: the host behind the gateway, or the gateway itself for the WAN-side shapes."""
        return self.gw if self.shape in ("no-nat", "firewall") else self.hosts[0]

    @property
    def gateway(self) -> str:
        """The NAT-PMP gateway the client asks (the simulated one in double-nat)."""
        return self.gw_lan_address if self.client_ns != self.gw else self.wan_address

    def nft(self, ns: str, ruleset: str) -> None:
        result = self.run(ns, ["nft", "-f", "-"], input=ruleset)
        if result.returncode != 0:
            raise RuntimeError(f"nft in {ns} failed: {result.stderr.strip()}\n{ruleset}")

    def create(self) -> "NatLab":
        super().create()
        try:
            if self.double:
                self._carrier_grade_nat()
            self._in(self.internet, "addr", "add", f"{SERVER_OTHER}/24", "dev", "wan0")
            self._shape()
            self._start_coturn()
            if self.double:
                self._start_simulated_gateway()
        except BaseException:
            self.destroy()
            raise
        return self

    def _carrier_grade_nat(self) -> None:
        """The 'wan' namespace becomes the carrier's NAT: 100.64.0.1 inside, 11.22.33.2 outside."""
        self._in(self.wan, "link", "add", "up0", "type", "veth", "peer", "name", "wan0", "netns", self.internet)
        self._in(self.wan, "addr", "add", "11.22.33.2/24", "dev", "up0")
        self._in(self.wan, "link", "set", "up0", "up")
        self._in(self.internet, "addr", "add", f"{SERVER}/24", "dev", "wan0")
        self._in(self.internet, "link", "set", "wan0", "up")
        self._in(self.wan, "route", "add", "default", "via", SERVER)
        self.run(self.wan, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], check=True)
        self.nft(self.wan, _nat(oif="up0"))

    def _shape(self) -> None:
        host = self.host_addresses[0]
        if self.shape in ("masquerade", "double-nat", "one-address"):
            self.nft(self.gw, _nat() + _forward())
        elif self.shape == "fully-random":
            self.nft(self.gw, _nat("masquerade fully-random") + _forward())
        elif self.shape == "full-cone":
            self.nft(self.gw, _nat(prerouting=f'iifname "wan0" udp dport 1024-65535 dnat ip to {host}')
                     + _forward("ct status dnat accept"))
        elif self.shape == "blocked":
            self.nft(self.gw, _nat() + _forward(f"meta l4proto udp ip daddr {{ {SERVER}, {SERVER_OTHER} }} drop"))
        elif self.shape == "firewall":
            self.nft(self.gw, """
table ip filter {
    chain input {
        type filter hook input priority filter; policy accept;
        ct state established,related accept
        iifname "wan0" meta l4proto udp drop
    }
}
""")

    def _start_coturn(self) -> None:
        addresses = (SERVER,) if self.shape == "one-address" else (SERVER, SERVER_OTHER)
        listen = [word for address in addresses for word in ("-L", address)]
        self.coturn = self.popen(self.internet, [
            "turnserver", "-n", *listen, "--stun-only", "--no-tls", "--no-dtls", "--no-cli",
            "--log-file", "stdout", "--simple-log", "--pidfile", f"/tmp/pmturn{self.tag}.pid"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

        def listening() -> bool:
            if self.coturn is not None and self.coturn.poll() is not None:
                raise RuntimeError(f"turnserver exited with {self.coturn.returncode}")
            out = self.run(self.internet, ["ss", "-lnu"]).stdout
            return all(f"{address}:{STUN_PORT}" in out for address in addresses)
        wait_for(listening, timeout=15, what="coturn listening on both addresses")

    def _start_simulated_gateway(self) -> None:
        self.popen(self.gw, [sys.executable, "-m", "simgw",
                             "--listen", f"{self.gw_lan_address}:5351", "--control", self.control,
                             "--public-address", CGNAT_PUBLIC],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd=REPO)
        wait_for(lambda: os.path.exists(self.control), what="the simulated gateway's control socket")

    def destroy(self) -> None:
        super().destroy()
        for path in (self.control, f"/tmp/pmturn{self.tag}.pid"):
            if os.path.exists(path):
                os.unlink(path)

    # ------------------------------------------------------------------ clients

    def natdiscovery(self) -> subprocess.CompletedProcess:
        """coturn's own client: ``turnutils_natdiscovery -m -f SERVER`` from the client's namespace."""
        return self.run(self.client_ns, ["turnutils_natdiscovery", "-m", "-f", SERVER], timeout=60)

    def ours(self, args: Sequence[str], tmp: str) -> subprocess.CompletedProcess:
        """``portmap-natpmp ARGS`` (the package's command) from the client's namespace."""
        argv = [sys.executable, "-c", "import sys; from portmap.cli import main; sys.exit(main())",
                "--gateway", self.gateway, "--ledger", os.path.join(tmp, "ledger.json"),
                "--lock", os.path.join(tmp, "lock"), *args]
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "plugins", "module_utils"))
        return self.run(self.client_ns, argv, env=env, timeout=60)


def natdiscovery_verdict(output: str) -> tuple:
    """(mapping, filtering) in our words from turnutils_natdiscovery's output; None where it found none."""
    words = {"Endpoint Independent": "endpoint-independent", "Address Dependent": "address-dependent",
             "Address and Port Dependent": "address-and-port-dependent"}
    found = {"Mapping": None, "Filtering": None}
    for line in output.splitlines():
        line = line.strip().rstrip("!")
        if line.startswith("No NAT! (Endpoint Independent Mapping)"):
            found["Mapping"] = found["Mapping"] or "endpoint-independent"
        for kind in found:
            prefix = "NAT with "
            if line.startswith(prefix) and line.endswith(f" {kind}"):
                found[kind] = words.get(line[len(prefix):-len(kind) - 1])
    return found["Mapping"], found["Filtering"]
