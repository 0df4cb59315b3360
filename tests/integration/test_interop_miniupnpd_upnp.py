"""Our UPnP IGD client against the real miniupnpd's UPnP, in sealed namespaces.

Debian's miniupnpd serves IGDv2; with force_igd_desc_v1=yes it serves IGDv1.  The
client runs in a host namespace: discovery by unicast and by multicast stays inside
the namespaces, and the mapping really forwards a TCP connection from the WAN side.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.harness import miniupnpd as miniupnpd_mod
from tests.harness.netns import Topology, existing_namespaces
from tests.harness.interop import LISTENER, MODULE_UTILS, client_script, wan_connect

pytestmark = pytest.mark.netns

SESSION = "from portmap.methods.igd import IgdSession\nGW = '192.168.77.1'\n"


@pytest.fixture
def lab(netns_ok):
    """make(hosts, wan_prefix, **miniupnpd options): a topology with miniupnpd serving UPnP IGD."""
    ok, why = miniupnpd_mod.available()
    if not ok:
        pytest.skip(why)
    made = []

    def make(hosts: int = 2, wan_prefix: str = "11.22.33", **options):
        topo = Topology(hosts=hosts, wan_prefix=wan_prefix).create()
        daemon = miniupnpd_mod.Miniupnpd(topo, upnp=True, **options)
        made.append((topo, daemon))
        topo.assert_sealed()
        daemon.start()
        return topo, daemon

    try:
        yield make
    finally:
        for topo, daemon in made:
            daemon.stop()
            topo.destroy()
            left = set(topo.namespaces) & set(existing_namespaces())
            assert not left, f"namespaces left behind: {left}"


def run(topo, body: str, host: int = 0):
    result = topo.run(topo.hosts[host], client_script(SESSION + textwrap.dedent(body)))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("igd_v1", [False, True], ids=["IGDv2", "IGDv1"])
def test_discover_map_forward_list_delete(lab, igd_v1):
    topo, daemon = lab(hosts=1, igd_v1=igd_v1)
    version = 1 if igd_v1 else 2
    listener = topo.popen(topo.hosts[0], [sys.executable, "-c", LISTENER, "8080"], stdout=subprocess.PIPE, text=True)
    assert listener.stdout.readline().strip() == "listening"
    assert wan_connect(topo, 8080).startswith("failed"), "reachable before any mapping?"

    results = run(topo, """
        import time
        for multicast in (False, True):
            start = time.monotonic()
            s = IgdSession(GW, multicast=multicast)
            d = s.discover()
            out([multicast, d.url, d.service.control_url, d.service.service_type, s.status.status, s.internal_client,
                 round(time.monotonic() - start, 3)])
        out(s.external_address())
        g = s.map("tcp", 8080, 8080, 3600, "portmap interop")
        out(g.__dict__)
        out([e.__dict__ for e in s.list_mappings()[0]])
    """)
    for multicast, (mc, url, control, service, status, client, seconds) in zip((False, True), results[:2]):
        print(f"IGDv{version} discovery ({'multicast' if mc else 'unicast'}): {url} -> {control} {service} {status}, "
              f"internal client {client}, {seconds} s")
        assert mc == multicast
        assert (url, control, status, client) == (daemon.description_url, "http://192.168.77.1:5000/ctl/IPConn",
                                                  "Connected", topo.host_addresses[0])
        assert service == f"urn:schemas-upnp-org:service:WANIPConnection:{version}"
    assert results[2] == topo.gw_wan_address
    granted = results[3]
    print(f"IGDv{version} granted {granted}")
    assert (granted["external_port"], granted["lifetime"], granted["permanent"], granted["internal_client"]) == (
        8080, 3600, False, topo.host_addresses[0])
    listing = results[4]
    print(f"IGDv{version} table {listing}")
    assert [(e["protocol"], e["external_port"], e["internal_client"], e["description"]) for e in listing] == [
        ("tcp", 8080, topo.host_addresses[0], "portmap interop")]
    assert 3500 < listing[0]["lease"] <= 3600

    reached = wan_connect(topo, 8080)
    print(f"IGDv{version} TCP from the WAN to {topo.gw_wan_address}:8080 with the mapping: {reached}")
    assert reached == "hello from the host"

    results = run(topo, f"""
        s = IgdSession(GW, upnp_url={daemon.description_url!r})
        out(s.delete("tcp", 8080))
        out(s.list_mappings()[0])
    """)
    assert results == [True, []]
    time.sleep(0.2)
    after = wan_connect(topo, 8080)
    print(f"IGDv{version} TCP from the WAN after the delete: {after}")
    assert after.startswith("failed")


def test_igdv2_caps_a_long_lease_and_says_so(lab):
    topo, _daemon = lab(hosts=1)
    results = run(topo, """
        s = IgdSession(GW)
        out(s.map("udp", 5353, 5353, 10 ** 6, "long").__dict__)
        out([e.lease for e in s.list_mappings()[0]])
    """)
    assert results[0]["lifetime"] == 604800
    assert 604700 < results[1][0] <= 604800


@pytest.mark.parametrize("igd_v1", [False, True], ids=["IGDv2", "IGDv1"])
def test_conflict_with_a_second_host(lab, igd_v1):
    topo, _daemon = lab(hosts=2, igd_v1=igd_v1)
    first = run(topo, """
        out(IgdSession(GW).map("tcp", 9000, 9000, 600, "first host").__dict__)
    """)
    assert first[0]["external_port"] == 9000
    results = run(topo, """
        from portmap import errors
        s = IgdSession(GW)
        try:
            s.map("tcp", 9000, 9000, 600, "second host", exact=True)
        except errors.UpnpConflict as exc:
            out(["conflict", str(exc)])
        moved = s.map("tcp", 9000, 9000, 600, "second host")
        out(moved.__dict__)
        out(sorted((e.external_port, e.internal_client) for e in s.list_mappings()[0]))
    """, host=1)
    conflict, moved, table = results
    print(f"IGDv{1 if igd_v1 else 2} second host, port 9000 exact: {conflict[1]}")
    print(f"IGDv{1 if igd_v1 else 2} second host, port 9000 suggested: {moved}")
    assert conflict[0] == "conflict"
    assert f"held by {topo.host_addresses[0]}:9000 ('first host')" in conflict[1]
    assert "ConflictInMappingEntry (UPnP error 718)" in conflict[1] and "192.168.77.1:5000" in conflict[1]
    assert moved["external_port"] != 9000 and moved["internal_client"] == topo.host_addresses[1]
    if igd_v1:
        assert moved["external_port"] == 9001  # the following port
    assert table == sorted([[9000, topo.host_addresses[0]], [moved["external_port"], topo.host_addresses[1]]])


def test_no_public_address_behind_cgnat(lab):
    topo, _daemon = lab(hosts=1, wan_prefix="100.64.0")
    results = run(topo, """
        from portmap import errors
        s = IgdSession(GW)
        out(s.discover().service.control_url)
        for call in (s.external_address, lambda: s.map("tcp", 8080, 8080, 600, "cgnat")):
            try:
                call()
            except errors.NoPublicAddress as exc:
                out(["no public address", str(exc)])
    """)
    print(f"CGNAT WAN 100.64.0.2: {results[1][1]} | {results[2][1]}")
    assert results[0] == "http://192.168.77.1:5000/ctl/IPConn"
    for kind, message in results[1:]:
        assert kind == "no public address"
        assert message.startswith("the gateway has no public address: is there a second NAT upstream?")
    assert "ActionFailed (UPnP error 501)" in results[2][1]


def test_client_method_upnp_forwards_and_deletes(lab):
    topo, _daemon = lab(hosts=1)
    listener = topo.popen(topo.hosts[0], [sys.executable, "-c", LISTENER, "8081"], stdout=subprocess.PIPE, text=True)
    assert listener.stdout.readline().strip() == "listening"
    results = run(topo, """
        c = Client(method="upnp", description="portmap client")
        out([c.gateway, c.found_in, c.options["multicast"]])
        out(c.public_address().to_dict())
        out(c.map("tcp", 8081, 8081, 1200).to_dict())
    """)
    assert results[0] == [topo.gw_lan_address, "/proc/net/route", True]  # no gateway given: SSDP to the group
    assert (results[1]["address"], results[1]["method"]) == (topo.gw_wan_address, "upnp")
    granted = results[2]
    print(f"Client(method='upnp') granted {granted}")
    assert (granted["external_port"], granted["lifetime"], granted["method"], granted["public_address"]) == (
        8081, 1200, "upnp", topo.gw_wan_address)
    assert wan_connect(topo, 8081) == "hello from the host"
    results = run(topo, """
        c = Client("192.168.77.1", method="upnp")
        out(c.delete("tcp", 8081).to_dict())
        out(c.table()[0])
    """)
    assert (results[0]["lifetime"], results[0]["external_port"], results[1]) == (0, 0, [])
    time.sleep(0.2)
    assert wan_connect(topo, 8081).startswith("failed")


@pytest.mark.parametrize("natpmp, upnp, chosen", [
    (True, True, "pcp"),  # miniupnpd speaks the three: PCP is preferred
    (False, True, "upnp"),  # enable_natpmp=no: nothing on 5351 (ICMP port unreachable), the IGD answers
])
def test_auto_against_the_real_miniupnpd(netns_ok, natpmp, upnp, chosen):
    """Method auto asks the three protocols at once; how long it takes to choose, against the real peer."""
    ok, why = miniupnpd_mod.available()
    if not ok:
        pytest.skip(why)
    topo = Topology(hosts=1).create()
    try:
        topo.assert_sealed()
        with miniupnpd_mod.Miniupnpd(topo, upnp=upnp, natpmp=natpmp):
            listener = topo.popen(topo.hosts[0], [sys.executable, "-c", LISTENER, "8181"], stdout=subprocess.PIPE,
                                  text=True)
            assert listener.stdout.readline().strip() == "listening"
            results = run(topo, """
                import time
                start = time.monotonic()
                c = Client(method="auto")
                public = c.public_address()
                chosen_in = time.monotonic() - start
                granted = c.map("tcp", 8181, 8181, 600)
                out([c.method, round(c.detection.chosen_after, 4), round(chosen_in, 4), public.address,
                     granted.external_port, c.detection.outcomes])
            """)
            method, detection, with_address, address, port, outcomes = results[0]
            print(f"auto against miniupnpd (natpmp={natpmp}, upnp={upnp}): {method} chosen after {detection} s "
                  f"({with_address} s with the public address); {outcomes}")
            assert method == chosen and port == 8181
            assert address in (topo.gw_wan_address, None)
            if chosen == "upnp":
                assert "ICMP port unreachable" in outcomes["pcp"] and "ICMP port unreachable" in outcomes["natpmp"]
                assert detection < 0.1  # refused at once: the IGD's answer decides
                assert address == topo.gw_wan_address
            else:
                assert detection < 0.1
            assert wan_connect(topo, 8181) == "hello from the host"
    finally:
        topo.destroy()
        left = set(topo.namespaces) & set(existing_namespaces())
        assert not left, f"namespaces left behind: {left}"


def test_the_job_repairs_a_restarted_upnp_only_miniupnpd(lab, tmp_path):
    """Ledger, renewal job and command over the real IGD: a restart empties its table; the job (not --now) sees
    it (uptime back, or the entry gone) and makes the mapping again."""
    topo, daemon = lab(hosts=1, natpmp=False)
    folder = tmp_path / "host"
    folder.mkdir(mode=0o700)
    command = ["-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); from portmap.cli import main; sys.exit(main())",
               MODULE_UTILS, "--ledger", str(folder / "ledger.json")]

    def portmap(*args):
        result = topo.run(topo.hosts[0], [sys.executable, *command, *args])
        print(f"portmap-natpmp {' '.join(args)} -> {result.returncode}\n{result.stdout}{result.stderr}")
        return result

    assert portmap("map", "tcp", "8282", "--lifetime", "3600").returncode == 0
    document = json.loads((folder / "ledger.json").read_text())
    assert document["mappings"][0]["method"] == "upnp"
    assert document["gateways"]["192.168.77.1"]["upnp"]["control_url"] == "http://192.168.77.1:5000/ctl/IPConn"
    listed = portmap("table")
    assert listed.returncode == 0 and "(this host)" in listed.stdout
    quiet = portmap("renew", "--log", "stderr")
    assert quiet.returncode == 0 and "0 renewed, 1 not due" in quiet.stderr
    time.sleep(1.2)  # the restarted gateway's uptime must be clearly less than the time since
    daemon.restart()
    assert "8282" not in portmap("table").stdout
    repaired = portmap("renew", "--log", "stderr")
    assert repaired.returncode == 0, repaired.stderr
    assert "1 renewed" in repaired.stderr
    assert "(this host)" in portmap("table").stdout
    listener = topo.popen(topo.hosts[0], [sys.executable, "-c", LISTENER, "8282"], stdout=subprocess.PIPE, text=True)
    assert listener.stdout.readline().strip() == "listening"
    assert wan_connect(topo, 8282) == "hello from the host"


def test_the_watch_restores_the_mapping_when_a_upnp_only_miniupnpd_restarts(lab, tmp_path):
    """miniupnpd multicasts ssdp:alive with a new BOOTID.UPNP.ORG when it starts: the watch on the host hears it
    (inside the namespaces), makes the mapping again, and a connection from the WAN reaches the host."""
    topo, daemon = lab(hosts=1, natpmp=False)
    folder = tmp_path / "host"
    folder.mkdir(mode=0o700)
    log = folder / "watch.log"
    command = [sys.executable, "-c",
               "import sys; sys.path.insert(0, sys.argv.pop(1)); from portmap.cli import main; sys.exit(main())",
               MODULE_UTILS, "--method", "upnp", "--ledger", str(folder / "ledger.json")]
    made = topo.run(topo.hosts[0], command + ["map", "tcp", "8383", "--lifetime", "3600"])
    assert made.returncode == 0, made.stderr
    listener = topo.popen(topo.hosts[0], [sys.executable, "-c", LISTENER, "8383"], stdout=subprocess.PIPE, text=True)
    assert listener.stdout.readline().strip() == "listening"
    watch = topo.popen(topo.hosts[0], command + ["watch", "--log", str(log)])
    deadline = time.monotonic() + 10
    while not (log.exists() and "watch: listening" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # the restarted gateway's uptime must be clearly less than the time since
    daemon.restart()
    restarted = time.monotonic()
    while wan_connect(topo, 8383) != "hello from the host" and time.monotonic() - restarted < 8:
        time.sleep(0.1)
    back = time.monotonic() - restarted
    text = log.read_text()
    print(f"the WAN reaches the host {back:.2f} s after miniupnpd restarted\n{text}")
    assert "ssdp:alive with BOOTID" in text and "lost its mappings" in text
    assert back < 2.0
    watch.send_signal(signal.SIGTERM)
    assert watch.wait(timeout=15) == 0
