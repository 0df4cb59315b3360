"""Gateway discovery: parsers on real routing-table texts; real discovery only in a sealed
namespace pair made (and removed) by the test.  Nothing here reads the root namespace's
routes: tests/unit/conftest.py makes every real discovery source fail the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
import uuid

import pytest

from portmap import discovery
from portmap.errors import DiscoveryError

MODULE_UTILS = os.path.dirname(os.path.dirname(os.path.abspath(discovery.__file__)))


def proc_route(*rows: str) -> str:
    """/proc/net/route as the kernel prints it: tab-separated, each line padded to 127 columns."""
    header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
    return "".join(f"{line:<127}\n" for line in (header,) + rows)


# Gateway 192.168.1.1 (c0 a8 01 01) printed little-endian: 0101A8C0.
PROC_ROUTE = proc_route(
    "eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0",
    "eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0",
)

# A laptop on Wi-Fi and a VPN, and a default route through an interface (no gateway).
PROC_ROUTE_SEVERAL_DEFAULTS = proc_route(
    "wlan0\t00000000\t014DA8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0",
    "tun0\t00000000\t0100080A\t0003\t0\t0\t50\t00000000\t0\t0\t0",
    "ppp0\t00000000\t00000000\t0001\t0\t0\t10\t00000000\t0\t0\t0",
    "eth0\t00000000\t0101A8C0\t0001\t0\t0\t5\t00000000\t0\t0\t0",  # no RTF_GATEWAY flag: not via a router
    "wlan0\t004DA8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0",
    "tun0\t0000080A\t00000000\t0001\t0\t0\t50\t0000FFFF\t0\t0\t0",
)

PROC_ROUTE_DEFAULT_DOWN = proc_route(
    "eth1\t00000000\t0101A8C0\t0002\t0\t0\t5\t00000000\t0\t0\t0",  # not RTF_UP
    "eth0\t00000000\tFE0A000A\t0003\t0\t0\t100\t00000000\t0\t0\t0",  # 10.0.10.254
)

PROC_ROUTE_NO_DEFAULT = proc_route(
    "eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0",
    "eth0\t000010AC\t0101A8C0\t0003\t0\t0\t100\t0000FFFF\t0\t0\t0",  # 172.16/16 via a gateway: not default
    "eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000080\t0\t0\t0",  # 0.0.0.0/1: not default
)

MACOS_ROUTE_GET = """   route to: default
destination: default
       mask: default
    gateway: 10.0.1.1
  interface: en0
      flags: <UP,GATEWAY,DONE,STATIC,PRCLONING,GLOBAL>
 recvpipe  sendpipe  ssthresh  rtt,msec    rttvar  hopcount      mtu     expire
       0         0         0         0         0         0      1500         0
"""

MACOS_ROUTE_GET_VPN = """   route to: default
destination: default
       mask: default
    gateway: link#17
  interface: utun3
      flags: <UP,GATEWAY,DONE,STATIC,PRCLONING,GLOBAL>
"""

FREEBSD_ROUTE_GET = """   route to: default
destination: default
       mask: default
    gateway: 192.168.10.254
        fib: 0
  interface: em0
      flags: <UP,GATEWAY,DONE,STATIC>
 recvpipe  sendpipe  ssthresh  rtt,msec    mtu        weight    expire
       0         0         0         0      1500         1         0
"""

FREEBSD_NETSTAT = """Routing tables

Internet:
Destination        Gateway            Flags     Netif Expire
default            172.16.0.1         UGS      vtnet0
127.0.0.1          link#2             UH          lo0
172.16.0.0/24      link#1             U        vtnet0
"""

MACOS_NETSTAT = """Routing tables

Internet:
Destination        Gateway            Flags           Netif Expire
default            link#17            UCSg            utun3
default            192.168.178.1      UGScg             en0
127                127.0.0.1          UCS               lo0
192.168.178        link#6             UCS               en0      !

Internet6:
Destination                             Gateway                                 Flags           Netif Expire
default                                 fe80::%utun0                            UGcIg           utun0
"""

LINUX_NETSTAT = """Kernel IP routing table
Destination     Gateway         Genmask         Flags   MSS Window  irtt Iface
0.0.0.0         192.168.0.254   0.0.0.0         UG        0 0          0 eth0
192.168.0.0     0.0.0.0         255.255.255.0   U         0 0          0 eth0
"""


@pytest.mark.parametrize(
    "text, gateway",
    [
        (PROC_ROUTE, "192.168.1.1"),
        (PROC_ROUTE_SEVERAL_DEFAULTS, "10.8.0.1"),  # lowest metric with a gateway: tun0 (50) over wlan0 (600)
        (PROC_ROUTE_DEFAULT_DOWN, "10.0.10.254"),
        (PROC_ROUTE_NO_DEFAULT, None),
        (proc_route(), None),
        ("", None),
        ("garbage\nnot a route table at all\n", None),
    ],
    ids=["one-default", "several-defaults", "default-down", "no-default", "header-only", "empty", "garbage"],
)
def test_parse_proc_net_route(text, gateway):
    assert discovery.parse_proc_net_route(text) == gateway


def test_proc_route_address_is_little_endian_hex():
    # 11.22.33.2 is 0b 16 21 02 on the wire; the kernel prints the u32 in host order.
    text = proc_route("eth0\t00000000\t0221160B\t0003\t0\t0\t0\t00000000\t0\t0\t0")
    assert discovery.parse_proc_net_route(text) == "11.22.33.2"


def test_proc_route_equal_metrics_first_wins():
    text = proc_route("eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0",
                      "eth1\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0")
    assert discovery.parse_proc_net_route(text) == "192.168.1.1"


@pytest.mark.parametrize(
    "text, gateway",
    [
        (MACOS_ROUTE_GET, "10.0.1.1"),
        (FREEBSD_ROUTE_GET, "192.168.10.254"),
        (MACOS_ROUTE_GET_VPN, None),  # a link, not an address
        (FREEBSD_NETSTAT, "172.16.0.1"),
        (MACOS_NETSTAT, "192.168.178.1"),  # the link# default and IPv6 defaults are skipped
        (LINUX_NETSTAT, "192.168.0.254"),
        ("route: writing to routing socket: not in table\n", None),
        ("", None),
    ],
    ids=["macos-route-get", "freebsd-route-get", "macos-route-get-vpn", "freebsd-netstat", "macos-netstat",
         "linux-netstat", "no-route", "empty"],
)
def test_parse_bsd_route(text, gateway):
    assert discovery.parse_bsd_route(text) == gateway


def test_explicit_gateway_is_used_and_no_source_is_asked():
    # The autouse fixture makes every source fail the test: none may be consulted.
    assert discovery.discover_gateway("192.168.1.1") == ("192.168.1.1", "explicit")
    assert discovery.discover_gateway(" 10.0.0.138 ") == ("10.0.0.138", "explicit")


@pytest.mark.parametrize("bad", ["router.local", "192.168.1", "::1", "fe80::1", "192.168.1.256", "1.2.3.4.5", "-1"])
def test_explicit_gateway_validated(bad):
    with pytest.raises(DiscoveryError, match="gateway must be an IPv4 address") as caught:
        discovery.discover_gateway(bad)
    assert repr(bad) in str(caught.value)


def test_validate_ipv4_names_its_field():
    with pytest.raises(DiscoveryError, match="source_address must be an IPv4 address"):
        discovery.validate_ipv4("nope", "source_address")


def test_nothing_found_says_how_to_pass_the_gateway(monkeypatch):
    asked = []

    def nothing(name):
        return lambda: asked.append(name)

    monkeypatch.setattr(discovery, "HAS_NETIFACES", False)
    monkeypatch.setattr(discovery, "SOURCES", [("netifaces", nothing("netifaces")),
                                               ("/proc/net/route", nothing("/proc/net/route")),
                                               ("route -n get default", nothing("route"))])
    with pytest.raises(DiscoveryError) as caught:
        discovery.discover_gateway()
    message = str(caught.value)
    assert asked == ["/proc/net/route", "route"]  # netifaces skipped when not importable
    assert "no default IPv4 gateway found" in message
    assert "looked in /proc/net/route, route -n get default" in message
    assert "'gateway'" in message and "--gateway" in message


def fake_netifaces(default_v4):
    gateways = {"default": {2: default_v4} if default_v4 else {}, 2: [default_v4] if default_v4 else []}
    return types.SimpleNamespace(AF_INET=2, gateways=lambda: gateways)


def test_netifaces_first_when_importable(monkeypatch):
    monkeypatch.setattr(discovery, "netifaces", fake_netifaces(("10.9.8.7", "eth0", True)))
    monkeypatch.setattr(discovery, "HAS_NETIFACES", True)
    monkeypatch.setattr(discovery, "SOURCES", [("netifaces", discovery._from_netifaces),
                                               ("/proc/net/route", lambda: pytest.fail("netifaces comes first")),
                                               ("route -n get default", lambda: pytest.fail("netifaces comes first"))])
    assert discovery.discover_gateway() == ("10.9.8.7", "netifaces")


def test_netifaces_is_the_first_real_source():
    assert [name for name, _source in discovery.SOURCES][0] == "netifaces"


def test_netifaces_import_is_optional():
    """The module imports, and discovery works, without netifaces installed."""
    code = ("import sys; sys.modules['netifaces'] = None; sys.path.insert(0, sys.argv[1]); "
            "from portmap import discovery; print(discovery.HAS_NETIFACES)")
    out = subprocess.run([sys.executable, "-c", code, MODULE_UTILS], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("gateways", [{"default": {}}, {}, None])
def test_netifaces_without_default_falls_back(monkeypatch, gateways):
    if gateways is None:
        def broken():
            raise OSError("netifaces failed")
        fake = types.SimpleNamespace(AF_INET=2, gateways=broken)
    else:
        fake = types.SimpleNamespace(AF_INET=2, gateways=lambda: gateways)
    monkeypatch.setattr(discovery, "netifaces", fake)
    monkeypatch.setattr(discovery, "HAS_NETIFACES", True)
    monkeypatch.setattr(discovery, "SOURCES", [("netifaces", discovery._from_netifaces),
                                               ("/proc/net/route", lambda: "192.168.5.1")])
    assert discovery.discover_gateway() == ("192.168.5.1", "/proc/net/route")


def test_from_proc_reads_the_given_file(tmp_path):
    path = tmp_path / "route"
    path.write_text(PROC_ROUTE_SEVERAL_DEFAULTS)
    assert discovery._from_proc(str(path)) == "10.8.0.1"
    assert discovery._from_proc(str(tmp_path / "missing")) is None


# --------------------------------------------------------------------------- a sealed namespace pair

NS_HOST = "198.51.100.2"  # TEST-NET-2: only ever inside the namespaces below
NS_GATEWAY = "198.51.100.1"
DISCOVER = """
from portmap import discovery
from portmap.errors import DiscoveryError
with open(discovery.PROC_ROUTE) as handle:
    print("proc:", discovery.parse_proc_net_route(handle.read()))
try:
    print("found:", *discovery.discover_gateway())
except DiscoveryError as exc:
    print("error:", exc)
"""


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


@pytest.fixture
def sealed_namespaces():
    """Namespaces A (a host) and B (its router), joined by a veth pair created inside A
    with its peer moved to B: nothing reaches the root namespace.  Both are deleted
    afterwards, also when the test fails."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    if not shutil.which("ip"):
        pytest.skip("the ip command (iproute2) is not installed")
    tag = f"pmu{os.getpid()}{uuid.uuid4().hex[:6]}"
    host, router = f"{tag}a", f"{tag}b"
    created = []
    try:
        for name in (host, router):
            made = ip("netns", "add", name, check=False)
            if made.returncode != 0:
                if not created:
                    pytest.skip(f"ip netns add failed: {made.stderr.strip()}")
                raise AssertionError(f"ip netns add {name} failed: {made.stderr.strip()}")
            created.append(name)
        ip("-n", host, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", router)
        ip("-n", host, "link", "set", "lo", "up")
        ip("-n", router, "link", "set", "lo", "up")
        ip("-n", host, "addr", "add", f"{NS_HOST}/24", "dev", "v0")
        ip("-n", router, "addr", "add", f"{NS_GATEWAY}/24", "dev", "v1")
        ip("-n", host, "link", "set", "v0", "up")
        ip("-n", router, "link", "set", "v1", "up")
        ip("-n", host, "route", "add", "default", "via", NS_GATEWAY, "metric", "200")
        # Sealed: A's only links are lo and v0, and v0's peer is in B.
        links = ip("-n", host, "-o", "link", "show").stdout
        assert sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines()) == ["lo", "v0"]
        yield host, router
    finally:
        for name in reversed(created):
            ip("netns", "delete", name, check=False)
        left = set(ip("netns", "list", check=False).stdout.split()) & set(created)
        assert not left, f"namespaces left behind: {left}"


def run_in(namespace, code):
    env = dict(os.environ, PYTHONPATH=MODULE_UTILS)
    return subprocess.run(["ip", "netns", "exec", namespace, "/usr/bin/env", "python3", "-c", code],
                          capture_output=True, text=True, timeout=30, env=env, check=False)


@pytest.mark.netns
def test_real_discovery_inside_a_sealed_namespace(sealed_namespaces):
    """The real /proc/net/route, read inside a namespace whose default route we made."""
    host, _router = sealed_namespaces
    result = run_in(host, DISCOVER)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"proc: {NS_GATEWAY}"
    found = lines[1].split()
    assert found[:2] == ["found:", NS_GATEWAY]
    assert found[2] in ("/proc/net/route", "netifaces")  # netifaces first when the interpreter has it

    # The kernel's own text of that table, parsed here: the same answer.
    text = ip("netns", "exec", host, "cat", "/proc/net/route").stdout
    assert discovery.parse_proc_net_route(text) == NS_GATEWAY

    # A second, preferred default route (lower metric) through another router wins.
    ip("-n", host, "route", "add", "default", "via", "198.51.100.7", "metric", "50")
    result = run_in(host, DISCOVER)
    assert result.stdout.splitlines()[0] == "proc: 198.51.100.7", result.stderr

    # Without any default route: the error names how to pass the gateway.
    ip("-n", host, "route", "del", "default", "via", "198.51.100.7")
    ip("-n", host, "route", "del", "default", "via", NS_GATEWAY)
    result = run_in(host, DISCOVER)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "proc: None"
    assert lines[1].startswith("error: no default IPv4 gateway found")
    assert discovery.HOW_TO_PASS in lines[1]
