"""The fault matrix: every fault the simulated gateway can inject, for NAT-PMP and for PCP.

Each case names its expected outcome.  Random faults are seeded, so a run never flakes.
The gateway starts as if it had been up for 1000 s, so that its reboot shows in PCP too
(RFC 6887 section 8.5 forgives an epoch one second back).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Tuple

import pytest

from portmap import errors
from portmap.client import Client
from portmap.errors import GatewayTimeout, ResultCodeError
from portmap.ledger import Ledger
from portmap.lock import HostLock
from portmap.manage import Desired, Manager
from portmap.renew import Renewer
from simgw import SimulatedGateway

METHODS = ("natpmp", "pcp")
UPTIME = 1000

# What each result code must become, written out from the RFCs (not taken from the code under test).
NATPMP_RESULTS = [
    (1, errors.UnsupportedVersion, "UNSUPPORTED_VERSION"),
    (2, errors.NotAuthorized, "NOT_AUTHORIZED"),
    (3, errors.NetworkFailure, "NETWORK_FAILURE"),
    (4, errors.OutOfResources, "OUT_OF_RESOURCES"),
    (5, errors.UnsupportedOpcode, "UNSUPPORTED_OPCODE"),
    (6, errors.UnknownResultCode, "UNKNOWN_RESULT_6"),
    (200, errors.UnknownResultCode, "UNKNOWN_RESULT_200"),
]
PCP_RESULTS = [
    (1, errors.UnsupportedVersion, "UNSUPP_VERSION"),
    (2, errors.NotAuthorized, "NOT_AUTHORIZED"),
    (3, errors.MalformedRequest, "MALFORMED_REQUEST"),
    (4, errors.UnsupportedOpcode, "UNSUPP_OPCODE"),
    (5, errors.UnsupportedOption, "UNSUPP_OPTION"),
    (6, errors.MalformedOption, "MALFORMED_OPTION"),
    (7, errors.NetworkFailure, "NETWORK_FAILURE"),
    (8, errors.OutOfResources, "NO_RESOURCES"),
    (9, errors.UnsupportedProtocol, "UNSUPP_PROTOCOL"),
    (10, errors.UserQuotaExceeded, "USER_EX_QUOTA"),
    (11, errors.CannotProvideExternal, "CANNOT_PROVIDE_EXTERNAL"),
    (12, errors.AddressMismatch, "ADDRESS_MISMATCH"),
    (13, errors.ExcessiveRemotePeers, "EXCESSIVE_REMOTE_PEERS"),
    (14, errors.UnknownResultCode, "UNKNOWN_RESULT_14"),
]
RESULT_CASES = [("natpmp",) + case for case in NATPMP_RESULTS] + [("pcp",) + case for case in PCP_RESULTS]
MALFORMATIONS = [(m, how) for m in METHODS for how in ("version", "opcode", "port", "garbage", "long")] + [
    ("pcp", "nonce")]


@pytest.fixture
def gw(loopback_address, tmp_path):
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock"), uptime=UPTIME) as gateway:
        yield gateway


def make_client(gw, tmp_path, method: str, **kwargs: Any) -> Client:
    return Client(gw.address, method=method, lock_path=str(tmp_path / "lock"), **kwargs)


def fault(gw, kind: str, method: str, **params: Any) -> None:
    gw.ctl(dict({"cmd": "fault", "kind": kind, "methods": [method]}, **params))


def table(gw) -> Dict[Tuple[str, int], Dict[str, Any]]:
    return {(m["protocol"], m["internal_port"]): m for m in gw.ctl({"cmd": "table"})["mappings"]}


def answered(gw) -> List[Dict[str, Any]]:
    return gw.ctl({"cmd": "log"})["log"]


# ---------------------------------------------------------------- lost, slow and stray replies

@pytest.mark.parametrize("method", METHODS)
def test_thirty_percent_dropped_succeeds_within_the_default_deadline(gw, tmp_path, method):
    fault(gw, "drop", method, probability=0.3, seed=7)
    client = make_client(gw, tmp_path, method)
    slowest = 0.0
    for port in range(10000, 10020):
        start = time.monotonic()
        granted = client.map("tcp", port, port, 60)
        slowest = max(slowest, time.monotonic() - start)
        assert (granted.external_port, granted.method) == (port, method)
    log = answered(gw)
    assert sum(1 for e in log if e.get("fault") == "drop") >= 3  # the fault really bit
    assert len(log) > 20 and slowest < 3.0
    assert {m: table(gw)[("tcp", m)]["method"] for m in range(10000, 10020)} == dict.fromkeys(range(10000, 10020), method)


@pytest.mark.parametrize("method", METHODS)
def test_reply_delayed_past_one_retransmission_is_taken(gw, tmp_path, method):
    fault(gw, "delay", method, seconds=0.4, count=1)
    client = make_client(gw, tmp_path, method)
    start = time.monotonic()
    granted = client.map("tcp", 8080, 8080, 60)
    elapsed = time.monotonic() - start
    assert granted.external_port == 8080 and granted.lifetime == 60
    assert client.transport.sends == 2 and 0.25 < elapsed < 1.0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("where", ["port", "address"])
def test_reply_from_a_wrong_source_is_ignored_and_the_right_one_wins(gw, tmp_path, loopback_address_pool, method, where):
    params = {"port": 5350} if where == "port" else {"address": loopback_address_pool()}
    fault(gw, "wrong_source", method, count=1, **params)
    client = make_client(gw, tmp_path, method)
    assert client.map("udp", 5353, 5353, 120).external_port == 5353
    assert client.transport.sends == 1
    assert [e.get("fault") for e in answered(gw)] == ["wrong_source"]


@pytest.mark.parametrize("method, how", MALFORMATIONS)
def test_malformed_reply_is_ignored(gw, tmp_path, method, how):
    fault(gw, "malformed", method, how=how)
    with pytest.raises(GatewayTimeout):
        make_client(gw, tmp_path, method, timeout=0.5).map("tcp", 8080, 8080, 60)
    gw.ctl({"cmd": "clear_faults"})
    fault(gw, "malformed", method, how=how, then_correct=True, count=1)
    client = make_client(gw, tmp_path, method)  # (another port: under PCP 8080 belongs to the first nonce)
    assert client.map("tcp", 8081, 8081, 60).external_port == 8081
    assert client.transport.sends == 1  # the right reply right after the bad one was taken


@pytest.mark.parametrize("method, length", [("natpmp", n) for n in (0, 2, 8, 15)] + [("pcp", n) for n in (0, 2, 24, 56, 59)])
def test_truncated_reply_is_ignored(gw, tmp_path, method, length):
    """NAT-PMP's map reply has 16 bytes, PCP's 60."""
    fault(gw, "truncate", method, length=length)
    with pytest.raises(GatewayTimeout):
        make_client(gw, tmp_path, method, timeout=0.5).map("tcp", 8080, 8080, 60)
    gw.ctl({"cmd": "clear_faults"})
    fault(gw, "truncate", method, length=length, then_correct=True, count=1)
    assert make_client(gw, tmp_path, method).map("tcp", 8081, 8081, 60).external_port == 8081


@pytest.mark.parametrize("method", METHODS)
def test_late_reply_to_an_earlier_request_is_not_taken_for_the_current_one(gw, tmp_path, method):
    # The reply to the map of 8080 is held back; the client retransmits and gets the second copy.
    # The held copy then arrives just before the reply to the next request and must be ignored.
    fault(gw, "late", method, count=1)
    client = make_client(gw, tmp_path, method)
    first = client.map("tcp", 8080, 8080, 60)
    second = client.map("tcp", 8081, 8081, 90)
    assert (first.internal_port, first.external_port) == (8080, 8080)
    assert (second.internal_port, second.external_port, second.lifetime) == (8081, 8081, 90)
    assert [e.get("fault") for e in answered(gw)][0] == "late"


# ---------------------------------------------------------------- result codes

@pytest.mark.parametrize("method, code, cls, name", RESULT_CASES)
def test_each_result_code_is_a_clear_error_with_the_rfc_name(gw, tmp_path, method, code, cls, name):
    fault(gw, "result", method, code=code, count=1, ops=["map"])
    client = make_client(gw, tmp_path, method)
    with pytest.raises(ResultCodeError) as caught:
        client.map("udp", 5353, 5353, 60)
    assert type(caught.value) is cls  # pylint: disable=unidiomatic-typecheck
    assert (caught.value.method, caught.value.code, caught.value.name) == (method, code, name)
    assert f"{name} (result code {code})" in str(caught.value)
    assert ("udp", 5353) not in table(gw)
    assert client.map("udp", 5353, 5353, 60).external_port == 5353  # the next request is fine


# ---------------------------------------------------------------- reboots

def host(gw, tmp_path, method: str):
    lock = HostLock(str(tmp_path / "lock"))
    ledger = Ledger(str(tmp_path / "ledger.json"), lock)

    def client_factory(gateway: str, epoch: Any) -> Client:
        return Client(gateway, method=method, lock=lock, epoch=epoch)

    def manager() -> Manager:
        return Manager(ledger, Client(gw.address, method=method, lock=lock))

    def renewer(lines: List[str]) -> Renewer:
        return Renewer(ledger, client_factory, lines.append)

    return ledger, manager, renewer


WANT = [Desired("tcp", 8080, 8080, 3600), Desired("udp", 5353, 5353, 3600), Desired("tcp", 2222, 2222, 3600)]
KEYS = {("tcp", 8080), ("udp", 5353), ("tcp", 2222)}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("who", ["module", "job"])
def test_reboot_between_two_runs_restores_every_mapping(gw, tmp_path, method, who):
    ledger, manager, renewer = host(gw, tmp_path, method)
    assert manager().present(WANT)["changed"]
    gw.ctl({"cmd": "reboot"})
    assert table(gw) == {}
    lines: List[str] = []
    if who == "module":
        result = manager().present(WANT)
        assert result["changed"] and result["gateway_rebooted"]
        assert not manager().present(WANT)["changed"]  # and the next run has nothing to repair
    else:
        report = renewer(lines).run()
        assert (report.renewed, report.failed, report.rebooted_gateways) == (3, 0, [gw.address])
        again = renewer(lines).run()
        assert (again.renewed, again.kept, again.rebooted_gateways) == (0, 3, [])
    assert set(table(gw)) == KEYS
    assert {e.method for e in ledger.load().entries} == {method}


@pytest.mark.parametrize("method", METHODS)
def test_reboot_during_a_renewal_restores_every_mapping(gw, tmp_path, method):
    ledger, manager, renewer = host(gw, tmp_path, method)
    manager().present(WANT)
    # the gateway restarts just before the job's second map request: the first renewal is lost with it
    fault(gw, "reboot", method, ops=["map"], after=1, count=1)
    lines: List[str] = []
    report = renewer(lines).run(force=True)
    assert any("during the renewal" in line for line in lines), lines
    assert (report.renewed, report.kept, report.failed) == (3, 0, 0)
    assert report.rebooted_gateways == [gw.address]
    assert set(table(gw)) == KEYS  # all three are back in the gateway's table
    assert [e.get("fault") for e in answered(gw)].count("reboot") == 1
    entries = {(e.protocol, e.internal_port): e for e in ledger.load().entries}
    assert set(entries) == KEYS and all(e.last_renewal.ok for e in entries.values())
    assert not Renewer(ledger, lambda g, epoch: Client(g, method=method, lock=ledger.lock, epoch=epoch),
                       lines.append).run().rebooted_gateways  # and the next run sees nothing to repair


@pytest.mark.parametrize("method", METHODS)
def test_reboot_while_the_module_maps_a_list_restores_every_mapping(gw, tmp_path, method):
    _ledger, manager, _renewer = host(gw, tmp_path, method)
    manager().present(WANT)
    fault(gw, "reboot", method, ops=["map"], after=2, count=1)  # before the third map of the next run
    result = manager().present(WANT)
    assert result["changed"]
    assert sorted((m["protocol"], m["internal_port"]) for m in result["mappings"]) == sorted(KEYS)
    assert set(table(gw)) == KEYS
    assert not manager().present(WANT)["changed"]
