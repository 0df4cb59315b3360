"""Debian's natpmpc (libnatpmp) against our simulated gateway, in sealed namespaces."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from simgw import control

pytestmark = pytest.mark.netns

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def simgw_in_namespace(topology, tmp_path):
    sock = str(tmp_path / "gw.sock")
    process = topology.popen(topology.gw, [sys.executable, "-m", "simgw", "--listen", f"{topology.gw_lan_address}:5351",
                                           "--control", sock, "--public-address", topology.gw_wan_address,
                                           "--announce", "multicast"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    ready = process.stdout.readline()
    assert ready.startswith("READY"), process.stderr.read()
    yield sock
    topology.stop(process)


def natpmpc_run(topology, natpmpc, *args):
    result = topology.run(topology.hosts[0], [natpmpc, "-g", topology.gw_lan_address, *args], timeout=30)
    print(result.stdout)
    return result


def test_natpmpc_public_map_delete(topology, natpmpc, simgw_in_namespace):
    public = natpmpc_run(topology, natpmpc)
    assert public.returncode == 0
    assert f"Public IP address : {topology.gw_wan_address}" in public.stdout

    mapped = natpmpc_run(topology, natpmpc, "-a", "7777", "7777", "tcp", "3600")
    assert mapped.returncode == 0
    assert "Mapped public port 7777 protocol TCP to local port 7777 liftime 3600" in mapped.stdout
    table = control(simgw_in_namespace, {"cmd": "table"})["mappings"]
    assert [(m["client"], m["protocol"], m["internal_port"], m["external_port"]) for m in table] == [
        (topology.host_addresses[0], "tcp", 7777, 7777)]

    udp = natpmpc_run(topology, natpmpc, "-a", "5353", "5353", "udp", "120")
    assert udp.returncode == 0 and "protocol UDP" in udp.stdout

    deleted = natpmpc_run(topology, natpmpc, "-a", "7777", "7777", "tcp", "0")
    assert deleted.returncode == 0
    table = control(simgw_in_namespace, {"cmd": "table"})["mappings"]
    assert [(m["protocol"], m["internal_port"]) for m in table] == [("udp", 5353)]

    natpmpc_run(topology, natpmpc, "-a", "5354", "5354", "udp", "120")
    assert len(control(simgw_in_namespace, {"cmd": "table"})["mappings"]) == 2
    delete_all = natpmpc_run(topology, natpmpc, "-a", "0", "0", "udp", "0")  # internal port 0, lifetime 0
    assert delete_all.returncode == 0
    assert control(simgw_in_namespace, {"cmd": "table"})["mappings"] == []
    log = control(simgw_in_namespace, {"cmd": "log"})["log"]
    assert log[-1]["internal_port"] == 0 and log[-1]["lifetime"] == 0
