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


@pytest.fixture
def igd_in_namespace(topology, tmp_path):
    sock = str(tmp_path / "gw.sock")
    process = topology.popen(topology.gw, [sys.executable, "-m", "simgw", "--listen", f"{topology.gw_lan_address}:5351",
                                           "--control", sock, "--public-address", topology.gw_wan_address,
                                           "--igd", "v2", "--ssdp", "multicast"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    ready = process.stdout.readline()
    assert ready.startswith("READY"), process.stderr.read()
    yield sock
    topology.stop(process)


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
