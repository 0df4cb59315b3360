"""Gateway discovery: parsers on real routing-table texts; real discovery only in a namespace."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from portmap import discovery
from portmap.errors import DiscoveryError

PROC_ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
"""

PROC_ROUTE_TWO_DEFAULTS = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlan0\t00000000\t014DA8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
tun0\t00000000\t0100080A\t0003\t0\t0\t50\t00000000\t0\t0\t0
eth0\t00000000\t0101A8C0\t0001\t0\t0\t10\t00000000\t0\t0\t0
"""

PROC_ROUTE_NO_DEFAULT = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
eth0\t000010AC\t0101A8C0\t0003\t0\t0\t100\t0000FFFF\t0\t0\t0
"""

MACOS_ROUTE_GET = """   route to: default
destination: default
       mask: default
    gateway: 10.0.1.1
  interface: en0
      flags: <UP,GATEWAY,DONE,STATIC,PRCLONING>
"""

FREEBSD_ROUTE_GET = """   route to: default
destination: default
       mask: default
    gateway: 192.168.10.254
        fib: 0
  interface: em0
"""

NETSTAT = """Routing tables

Internet:
Destination        Gateway            Flags        Netif Expire
default            172.16.0.1         UGS          vtnet0
127.0.0.1          link#2             UH           lo0
"""


def test_proc_route_default():
    assert discovery.parse_proc_net_route(PROC_ROUTE) == "192.168.1.1"


def test_proc_route_lowest_metric_with_gateway_flag_wins():
    # eth0's route lacks RTF_GATEWAY; tun0 (metric 50) beats wlan0 (600)
    assert discovery.parse_proc_net_route(PROC_ROUTE_TWO_DEFAULTS) == "10.8.0.1"


def test_proc_route_without_default():
    assert discovery.parse_proc_net_route(PROC_ROUTE_NO_DEFAULT) is None
    assert discovery.parse_proc_net_route("") is None


@pytest.mark.parametrize("text, gateway", [(MACOS_ROUTE_GET, "10.0.1.1"), (FREEBSD_ROUTE_GET, "192.168.10.254"),
                                           (NETSTAT, "172.16.0.1"), ("no route\n", None)])
def test_bsd_route_outputs(text, gateway):
    assert discovery.parse_bsd_route(text) == gateway


def test_explicit_gateway_validated():
    assert discovery.discover_gateway("192.168.1.1") == ("192.168.1.1", "explicit")
    for bad in ("router.local", "192.168.1", "::1", "192.168.1.256"):
        with pytest.raises(DiscoveryError, match="gateway must be an IPv4 address"):
            discovery.discover_gateway(bad)


def test_nothing_found_says_how_to_pass_the_gateway(monkeypatch):
    monkeypatch.setattr(discovery, "SOURCES", [("/proc/net/route", lambda: None), ("route -n get default", lambda: None)])
    monkeypatch.setattr(discovery, "HAS_NETIFACES", False)
    with pytest.raises(DiscoveryError) as caught:
        discovery.discover_gateway()
    message = str(caught.value)
    assert "no default IPv4 gateway found" in message
    assert "/proc/net/route" in message and "gateway" in message and "--gateway" in message


def test_netifaces_first_when_importable(monkeypatch):
    fake = types.SimpleNamespace(AF_INET=2, gateways=lambda: {"default": {2: ("10.9.8.7", "eth0")}})
    monkeypatch.setattr(discovery, "netifaces", fake)
    monkeypatch.setattr(discovery, "HAS_NETIFACES", True)
    monkeypatch.setattr(discovery, "_from_proc", lambda path=None: pytest.fail("netifaces comes first"))
    monkeypatch.setattr(discovery, "SOURCES", [("netifaces", discovery._from_netifaces),
                                               ("/proc/net/route", lambda: pytest.fail("netifaces comes first"))])
    assert discovery.discover_gateway() == ("10.9.8.7", "netifaces")


def test_netifaces_without_default_falls_back(monkeypatch):
    fake = types.SimpleNamespace(AF_INET=2, gateways=lambda: {"default": {}})
    monkeypatch.setattr(discovery, "netifaces", fake)
    monkeypatch.setattr(discovery, "HAS_NETIFACES", True)
    monkeypatch.setattr(discovery, "SOURCES", [("netifaces", discovery._from_netifaces),
                                               ("/proc/net/route", lambda: "192.168.5.1")])
    assert discovery.discover_gateway() == ("192.168.5.1", "/proc/net/route")


@pytest.mark.netns
def test_real_discovery_inside_a_sealed_namespace():
    """The real /proc/net/route, read inside a namespace whose default route we made."""
    from tests.harness.netns import Topology, existing_namespaces, netns_available
    ok, why = netns_available()
    if not ok:
        pytest.skip(why)
    before = set(existing_namespaces())
    with Topology(hosts=1) as topo:
        topo.assert_sealed()
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from portmap import discovery; "
                "print(*discovery.discover_gateway())")
        module_utils = discovery.__file__.rsplit("/portmap/", 1)[0]
        result = topo.run(topo.hosts[0], [sys.executable, "-c", code, module_utils])
        assert result.stdout.split() == [topo.gw_lan_address, "/proc/net/route"], result.stderr
        # Without a default route: the error that names how to pass the gateway.
        topo.run(topo.hosts[0], ["ip", "route", "del", "default"], check=True)
        result = topo.run(topo.hosts[0], [sys.executable, "-c", code, module_utils])
        assert result.returncode != 0 and "pass the gateway's address explicitly" in result.stderr
    assert set(existing_namespaces()) == before
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.count(
        topo.tag) == 0
