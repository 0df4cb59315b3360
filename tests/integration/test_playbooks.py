"""natpmp_mapping and natpmp_info in real playbooks (ansible-playbook, no mocks) against
the simulated gateway on loopback, with an explicit gateway and a temporary ledger."""

from __future__ import annotations

import re

import pytest

from tests.harness.playbook import base_vars, recap_counts, run_playbook
from simgw import SimulatedGateway, control


@pytest.fixture
def gateway(tmp_path, loopback_address):
    """The simulated gateway on its own loopback address, with its control socket."""
    sock = str(tmp_path / "gw.sock")
    # Up for a while, so that a reboot shows in PCP's epoch too (RFC 6887 forgives one second back).
    with SimulatedGateway(address=loopback_address, port=5351, control_path=sock,
                          public_address="11.22.33.2", uptime=1000, igd="v2") as gw:
        gw.control_path = sock
        yield gw


@pytest.mark.parametrize("method", ["pcp", "natpmp", "upnp"])
def test_lifecycle(gateway, collections_path, tmp_path, method):
    proc, recap = run_playbook("mapping_lifecycle.yml", tmp_path, base_vars(gateway, tmp_path, method),
                               collections_path=collections_path)
    assert proc.returncode == 0, "the lifecycle playbook failed (output above)"
    assert recap_counts(recap)["failed"] == 0


def test_idempotence_recap(gateway, collections_path, tmp_path):
    """The demo-like single mapping task twice: the second recap says changed=0."""
    variables = base_vars(gateway, tmp_path)
    first, recap1 = run_playbook("apply_one.yml", tmp_path, variables, collections_path=collections_path)
    second, recap2 = run_playbook("apply_one.yml", tmp_path, variables, collections_path=collections_path)
    assert first.returncode == 0 and second.returncode == 0
    assert recap_counts(recap1)["changed"] == 1
    assert recap_counts(recap2)["changed"] == 0
    print(f"IDEMPOTENCE first run:  {recap1}")
    print(f"IDEMPOTENCE second run: {recap2}")
    table = control(gateway.control_path, {"cmd": "table"})["mappings"]
    assert [(m["protocol"], m["internal_port"]) for m in table] == [("tcp", 8080)]


def test_list_of_fifty_and_exclusive(gateway, collections_path, tmp_path):
    proc, _recap = run_playbook("mapping_list.yml", tmp_path, base_vars(gateway, tmp_path),
                                collections_path=collections_path)
    assert proc.returncode == 0, "the list playbook failed (output above)"
    timing = re.search(r"TIMING single-mapping task ([\d.]+) s; 50-mapping task ([\d.]+) s", proc.stdout)
    assert timing, "the playbook did not report its timings"
    print(f"WALL single-mapping task {timing.group(1)} s, 50-mapping task {timing.group(2)} s")


def test_options(gateway, collections_path, tmp_path, loopback_address_pool):
    variables = dict(base_vars(gateway, tmp_path), other_client=loopback_address_pool())
    proc, _recap = run_playbook("mapping_options.yml", tmp_path, variables, collections_path=collections_path)
    assert proc.returncode == 0, "the options playbook failed (output above)"


def test_bad_input(gateway, collections_path, tmp_path):
    variables = base_vars(gateway, tmp_path)
    seeded, _recap = run_playbook("apply_one.yml", tmp_path, variables, collections_path=collections_path)
    assert seeded.returncode == 0
    proc, _recap = run_playbook("mapping_bad_input.yml", tmp_path, variables, collections_path=collections_path)
    assert proc.returncode == 0, "the bad-input playbook failed (output above)"


RESULT_CODES = {
    "natpmp": [(3, "NETWORK_FAILURE"), (4, "OUT_OF_RESOURCES"), (5, "UNSUPPORTED_OPCODE"), (17, "UNKNOWN_RESULT_17")],
    "pcp": [(3, "MALFORMED_REQUEST"), (4, "UNSUPP_OPCODE"), (5, "UNSUPP_OPTION"), (6, "MALFORMED_OPTION"),
            (7, "NETWORK_FAILURE"), (8, "NO_RESOURCES"), (9, "UNSUPP_PROTOCOL"), (10, "USER_EX_QUOTA"),
            (11, "CANNOT_PROVIDE_EXTERNAL"), (12, "ADDRESS_MISMATCH"), (13, "EXCESSIVE_REMOTE_PEERS"),
            (99, "UNKNOWN_RESULT_99")],
}


@pytest.mark.parametrize("method", ["pcp", "natpmp"])
def test_gateway_errors_name_gateway_protocol_ports_and_result(gateway, collections_path, tmp_path, method):
    variables = dict(base_vars(gateway, tmp_path, method),
                     codes=[{"code": code, "name": name} for code, name in RESULT_CODES[method]])
    proc, _recap = run_playbook("mapping_gateway_errors.yml", tmp_path, variables, collections_path=collections_path)
    assert proc.returncode == 0, "the gateway-errors playbook failed (output above)"
