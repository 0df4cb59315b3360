"""A public address in a special-purpose range: every face warns, and says reachable: false.

The simulated gateway on loopback says its public address is 100.64.3.7 (carrier-grade NAT):
natpmp_mapping still makes the mapping, warns in the words a user acts on and returns
reachable false; natpmp_info says the same; the renewal job logs the warning; the command's
``map`` prints it.  A global address gives no warning and reachable null (only STUN can confirm).
"""

from __future__ import annotations

import socket

import pytest

from portmap.ledger import Ledger
from portmap.lock import HostLock
from portmap.renew import Renewer
from portmap.client import Client
from tests.harness.faces import WANT, cli, manager
from tests.harness.playbook import ANSIBLE_PLAYBOOK, base_vars, run_playbook
from simgw import SimulatedGateway

CGNAT_WARNING = ("the gateway's public address 100.64.3.7 is in the carrier-grade NAT range: "
                 "this mapping is not reachable from the Internet")


@pytest.fixture
def cgnat_gw(loopback_address, tmp_path):
    sock = str(tmp_path / "gw.sock")
    with SimulatedGateway(address=loopback_address, control_path=sock, public_address="100.64.3.7",
                          uptime=1000) as gateway:
        gateway.control_path = sock
        yield gateway


def test_manager_warns_and_still_maps(cgnat_gw, tmp_path):
    result = manager(cgnat_gw, tmp_path, method="natpmp").present(WANT)
    assert (result["reachable"], result["double_nat"], result["warnings"]) == (False, True, [CGNAT_WARNING])
    assert result["changed"] and result["mappings"][0]["external_port"] == 8080
    assert [m["internal_port"] for m in cgnat_gw.ctl({"cmd": "table"})["mappings"]] == [8080]


def test_global_address_gives_no_warning(gw, tmp_path):
    result = manager(gw, tmp_path).present(WANT)
    assert gw.public_address not in ("", None) and (result["reachable"], result["double_nat"], result["warnings"]) == (
        None, None, [])


def test_pcp_takes_the_address_of_the_map_reply(cgnat_gw, tmp_path):
    result = manager(cgnat_gw, tmp_path, method="pcp").present(WANT)  # ANNOUNCE carries no address
    assert result["public_address"] == "100.64.3.7" and result["warnings"] == [CGNAT_WARNING]


def test_info_warns_without_stun(cgnat_gw, tmp_path):
    facts = manager(cgnat_gw, tmp_path).info()
    assert (facts["nat"], facts["reachable"], facts["double_nat"], facts["warnings"]) == (
        None, False, True, [CGNAT_WARNING])


def test_renewal_job_logs_the_warning(cgnat_gw, tmp_path):
    manager(cgnat_gw, tmp_path).present(WANT)
    lock = HostLock(str(tmp_path / "lock"))
    lines = []
    Renewer(Ledger(str(tmp_path / "ledger.json"), lock),
            lambda gateway, epoch: Client(gateway, lock=lock, epoch=epoch), lines.append).run(force=True)
    assert f"gateway {cgnat_gw.address}: {CGNAT_WARNING}" in lines
    assert any(line.startswith("renewed TCP internal port 8080") for line in lines)


def test_command_map_prints_the_warning(cgnat_gw, tmp_path):
    mapped = cli(cgnat_gw, tmp_path, "map", "tcp", "8080")
    assert mapped.returncode == 0, mapped.stderr
    assert f"portmap-natpmp: warning: {CGNAT_WARNING}" in mapped.stderr


def unused_udp_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason=f"{ANSIBLE_PLAYBOOK} is not installed")
def test_modules_warn_and_return_reachable_false(cgnat_gw, collections_path, tmp_path):
    variables = dict(base_vars(cgnat_gw, tmp_path),
                     stun_server=f"{cgnat_gw.address}:{unused_udp_port(cgnat_gw.address)}")
    proc, _recap = run_playbook("reachability.yml", tmp_path, variables, collections_path=collections_path)
    assert proc.returncode == 0, "the reachability playbook failed (output above)"
    warned = " ".join(proc.stdout.split()) + " ".join(proc.stderr.split())
    assert f"[WARNING]: {CGNAT_WARNING}" in warned
    assert variables["stun_server"].startswith("127.")  # loopback only: nothing leaves the machine
