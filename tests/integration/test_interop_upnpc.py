"""Debian's upnpc (miniupnpc 2.2.4) against our simulated IGD: discovery by SSDP multicast inside
sealed namespaces, then add, list and delete with -u; and on loopback with -u only (no multicast)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from simgw import SimulatedGateway, control

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UPNPC = shutil.which("upnpc")

pytestmark = pytest.mark.skipif(not UPNPC, reason="upnpc is not installed (package miniupnpc; make deps installs it)")


def rows(sock):
    return [(m["method"], m["client"], m["protocol"], m["internal_port"], m["external_port"])
            for m in control(sock, {"cmd": "table"})["mappings"]]


def show(result):
    print(f"$ {' '.join(result.args)}\n{result.stdout}{result.stderr}")
    return result


def simgw_in_namespace(topology, sock, *options):
    """The simulated IGD in the gateway namespace, SSDP on the group there (a generator: stopped when resumed)."""
    process = topology.popen(topology.gw, [sys.executable, "-m", "simgw", "--listen", f"{topology.gw_lan_address}:5351",
                                           "--control", sock, "--public-address", topology.gw_wan_address,
                                           "--ssdp", "multicast", *options],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        ready = process.stdout.readline()
        assert ready.startswith("READY"), process.stderr.read()
        yield sock
    finally:
        topology.stop(process)


@pytest.fixture
def igd_in_namespace(topology, tmp_path):
    yield from simgw_in_namespace(topology, str(tmp_path / "gw.sock"), "--igd", "v2")


@pytest.mark.netns
def test_upnpc_discovers_adds_lists_deletes(topology, igd_in_namespace):
    sock = igd_in_namespace
    host, address = topology.hosts[0], topology.host_addresses[0]
    url = f"http://{topology.gw_lan_address}:5000/rootDesc.xml"

    def run(*args):
        return show(topology.run(host, [UPNPC, *args], timeout=30))

    status = run("-s")  # SSDP multicast, inside the namespaces only
    assert status.returncode == 0
    assert f"Found valid IGD : http://{topology.gw_lan_address}:5000/ctl/IPConn" in status.stdout
    assert f"ExternalIPAddress = {topology.gw_wan_address}" in status.stdout
    assert "Status : Connected" in status.stdout

    added = run("-u", url, "-a", address, "8080", "8080", "TCP", "3600")
    assert added.returncode == 0
    assert f"external {topology.gw_wan_address}:8080 TCP is redirected to internal {address}:8080" in added.stdout
    assert run("-u", url, "-a", address, "5353", "5353", "UDP", "600").returncode == 0
    assert rows(sock) == [("upnp", address, "tcp", 8080, 8080), ("upnp", address, "udp", 5353, 5353)]

    listed = run("-u", url, "-l")
    assert listed.returncode == 0
    assert f"TCP  8080->{address}:8080" in listed.stdout and f"UDP  5353->{address}:5353" in listed.stdout
    listing = run("-u", url, "-L")  # GetListOfPortMappings (IGDv2)
    assert listing.returncode == 0 and f"TCP  8080->{address}:8080" in listing.stdout

    deleted = run("-u", url, "-d", "8080", "TCP")
    assert deleted.returncode == 0 and "UPNP_DeletePortMapping() returned : 0" in deleted.stdout
    assert rows(sock) == [("upnp", address, "udp", 5353, 5353)]


def test_upnpc_on_loopback_with_a_url(loopback_address, tmp_path):
    """In the initial namespace: -u only, so upnpc sends no M-SEARCH at all."""
    sock = str(tmp_path / "gw.sock")
    url = f"http://{loopback_address}:5000/rootDesc.xml"
    with SimulatedGateway(address=loopback_address, control_path=sock, igd="v2", ssdp="off"):
        def run(*args):
            return show(subprocess.run([UPNPC, "-u", url, *args], capture_output=True, text=True, timeout=30, check=False))

        added = run("-a", "127.0.0.1", "8080", "8080", "TCP", "3600")
        assert added.returncode == 0 and "TCP is redirected to internal 127.0.0.1:8080" in added.stdout
        assert rows(sock) == [("upnp", "127.0.0.1", "tcp", 8080, 8080)]
        listed = run("-l")
        assert listed.returncode == 0 and "TCP  8080->127.0.0.1:8080" in listed.stdout
        assert run("-L").returncode == 0
        assert run("-d", "8080", "TCP").returncode == 0
        assert rows(sock) == []


LISTENER = """
import socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("", 1900))
sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton("239.255.255.250") + socket.inet_aton(sys.argv[1]))
sock.settimeout(0.5)
print("READY", flush=True)
deadline = time.monotonic() + 8
while time.monotonic() < deadline:
    try:
        data = sock.recv(4096).decode()
    except socket.timeout:
        continue
    if data.startswith("NOTIFY"):
        print(" | ".join(data.split("\\r\\n")), flush=True)
        if "BOOTID.UPNP.ORG: 2" in data:
            break
"""


@pytest.mark.netns
def test_a_reboot_is_announced_with_a_new_bootid(topology, igd_in_namespace):
    """ssdp:alive NOTIFY on the group, inside the namespaces, with BOOTID.UPNP.ORG counting the starts."""
    listener = topology.popen(topology.hosts[0], [sys.executable, "-c", LISTENER, topology.host_addresses[0]],
                              stdout=subprocess.PIPE, text=True)
    assert listener.stdout.readline().startswith("READY")
    assert control(igd_in_namespace, {"cmd": "reboot"})["ok"]
    lines = listener.stdout.read().splitlines()
    listener.wait(10)
    print("\n".join(lines))
    rebooted = [line for line in lines if "BOOTID.UPNP.ORG: 2" in line]
    assert rebooted, lines
    assert "NTS: ssdp:alive" in rebooted[0]
    assert f"LOCATION: http://{topology.gw_lan_address}:5000/rootDesc.xml" in rebooted[0]


# ------------------------------------------------------------------ routers in the field: what upnpc 2.2.4 does there
# The shapes of tests/integration/test_upnp_field.py: a TR-064 named service, two WAN connection services with the
# first one down, a device that answers 402 to a lease.  Asserted: what upnpc really does, supported or not.

SHAPES = {
    "tr064": ("v1", "tr064-ppp", "any"),
    "two_wan": ("v2", "ip=Disconnected,ip", "any"),
    "lease402": ("v1", "ip", "permanent-only-402"),
}


@pytest.fixture
def shaped_on_loopback(request, loopback_address, tmp_path):
    version, services, policy = SHAPES[request.param]
    sock = str(tmp_path / "gw.sock")
    with SimulatedGateway(address=loopback_address, control_path=sock, speaks="none", igd=version, ssdp="off",
                          igd_service=services) as gateway:
        gateway.ctl({"cmd": "set", "lease_policy": policy})
        url = f"http://{loopback_address}:5000/rootDesc.xml"

        def run(*args):
            return show(subprocess.run([UPNPC, "-u", url, *args], capture_output=True, text=True, timeout=30,
                                       check=False))
        yield sock, loopback_address, run


@pytest.mark.parametrize("shaped_on_loopback", ["tr064"], indirect=True)
def test_upnpc_does_not_support_tr064_service_names(shaped_on_loopback):
    """upnpc 2.2.4 takes only urn:schemas-upnp-org: WAN connection services (igd_desc_parse.c): on a router whose
    service is urn:dslforum-org:service:WANPPPConnection:1 it finds no control URL, posts to the description's base
    and every action fails with an HTTP error; nothing is mapped."""
    sock, address, run = shaped_on_loopback
    status = run("-s")
    assert f"Found valid IGD : http://{address}:5000/\n" in status.stdout
    assert "GetStatusInfo failed." in status.stdout and "GetExternalIPAddress failed. (errorcode=-3)" in status.stdout
    added = run("-a", "127.0.0.1", "8080", "8080", "TCP", "3600")
    assert "AddPortMapping(8080, 8080, 127.0.0.1) failed with code -3 (Miniupnpc HTTP error)" in added.stdout
    assert rows(sock) == []


@pytest.mark.parametrize("shaped_on_loopback", ["two_wan"], indirect=True)
def test_upnpc_with_a_url_takes_the_first_wan_service_even_when_it_is_down(shaped_on_loopback):
    """Given -u, upnpc 2.2.4 (UPNP_GetIGDFromUrl) uses the description's first WAN connection service without
    asking whether it is connected: here the one that is down, whose AddPortMapping fails (501)."""
    sock, address, run = shaped_on_loopback
    status = run("-s")
    assert f"Found valid IGD : http://{address}:5000/ctl/IPConn\n" in status.stdout
    assert "Status : Disconnected" in status.stdout
    added = run("-a", "127.0.0.1", "8080", "8080", "TCP", "3600")
    assert "AddPortMapping(8080, 8080, 127.0.0.1) failed with code 501 (Action Failed)" in added.stdout
    assert rows(sock) == []


@pytest.mark.parametrize("shaped_on_loopback", ["lease402"], indirect=True)
def test_upnpc_does_not_retry_a_lease_refused_with_402(shaped_on_loopback):
    """upnpc 2.2.4 reports the 402 and stops; asked for lease 0 itself, it gets the mapping (permanent)."""
    sock, _address, run = shaped_on_loopback
    refused = run("-a", "127.0.0.1", "8080", "8080", "TCP", "3600")
    assert "AddPortMapping(8080, 8080, 127.0.0.1) failed with code 402 (Invalid Args)" in refused.stdout
    assert rows(sock) == []
    permanent = run("-a", "127.0.0.1", "8080", "8080", "TCP", "0")
    assert "is redirected to internal 127.0.0.1:8080" in permanent.stdout
    assert rows(sock) == [("upnp", "127.0.0.1", "tcp", 8080, 8080)]


@pytest.fixture
def shaped_in_namespace(request, topology, tmp_path):
    version, services, policy = SHAPES[request.param]
    yield from simgw_in_namespace(topology, str(tmp_path / "gw.sock"), "--igd", version, "--igd-service", services,
                                  "--lease-policy", policy)


@pytest.mark.netns
@pytest.mark.parametrize("shaped_in_namespace", ["two_wan"], indirect=True)
def test_upnpc_discovery_passes_over_the_wan_service_that_is_down(topology, shaped_in_namespace):
    """Discovered by SSDP, upnpc 2.2.4 (UPNP_GetValidIGD) asks the first WAN connection service, finds it not
    connected, tries the second and takes it: the mapping is made there."""
    sock = shaped_in_namespace
    host, address = topology.hosts[0], topology.host_addresses[0]

    def run(*args):
        return show(topology.run(host, [UPNPC, *args], timeout=30))

    status = run("-s")
    assert f"Found valid IGD : http://{topology.gw_lan_address}:5000/ctl/IPConn2\n" in status.stdout
    assert "Status : Connected" in status.stdout and f"ExternalIPAddress = {topology.gw_wan_address}" in status.stdout
    added = run("-a", address, "8080", "8080", "TCP", "3600")
    assert f"external {topology.gw_wan_address}:8080 TCP is redirected to internal {address}:8080" in added.stdout
    assert rows(sock) == [("upnp", address, "tcp", 8080, 8080)]


@pytest.mark.netns
@pytest.mark.parametrize("shaped_in_namespace", ["tr064"], indirect=True)
def test_upnpc_discovery_of_a_tr064_router(topology, shaped_in_namespace):
    """Discovered by SSDP, the TR-064 router is still not one upnpc 2.2.4 can use: no WAN connection service of a type
    it knows (it found the device by its upnp:rootdevice answer), so it is no IGD to upnpc; nothing is mapped."""
    sock = shaped_in_namespace
    host, address = topology.hosts[0], topology.host_addresses[0]
    added = show(topology.run(host, [UPNPC, "-a", address, "8080", "8080", "TCP", "3600"], timeout=30))
    assert f"UPnP device found. Is it an IGD ? : http://{topology.gw_lan_address}:5000/\n" in added.stdout
    assert "No valid UPNP Internet Gateway Device found." in added.stderr
    assert rows(sock) == []
