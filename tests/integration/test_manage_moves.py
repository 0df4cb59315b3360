"""A mapping whose external port changes, or that strict_port refuses, against the simulated gateway.

Two hosts on loopback addresses of their own share one simulated gateway that speaks PCP,
NAT-PMP and UPnP IGD (v2); each test runs once per protocol.  After every run the gateway's
table, each host's ledger and the run's result must agree (``tests/harness/agreement.py``).
"""

from __future__ import annotations

import pytest

from portmap.client import Client
from portmap.ledger import Ledger
from portmap.lock import HostLock
from portmap.manage import ApplyError, Desired, Manager
from simgw import SimulatedGateway
from tests.harness.agreement import check, ledger_rows, simgw_rows

METHODS = ["pcp", "natpmp", "upnp"]


@pytest.fixture
def gw(loopback_address, tmp_path):
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock"), igd="v2") as gateway:
        yield gateway


class Host:
    """One managed host: its own source address, lock and ledger."""

    def __init__(self, gw, folder, address, method):
        folder.mkdir()
        self.gw, self.folder, self.address, self.method = gw, folder, address, method

    def manager(self, check_mode=False):
        lock = HostLock(str(self.folder / "lock"))
        client = Client(self.gw.address, lock=lock, method=self.method, source_address=self.address,
                        description=f"portmap.natpmp {self.address}", timeout=2.0)
        return Manager(Ledger(str(self.folder / "ledger.json"), lock), client, check_mode=check_mode)

    def run(self, how, desired, **options):
        """``present`` or ``absent``: the result, or the ApplyError's (with its message)."""
        try:
            return getattr(self.manager(), how)(desired, **options), None
        except ApplyError as exc:
            return exc.result, str(exc)

    def rows(self):
        return simgw_rows(self.gw).get(self.address, set())

    def ledger(self):
        return ledger_rows(str(self.folder / "ledger.json"))

    def agrees(self, result=None, where=""):
        check(self.rows(), self.ledger(), result, f"{self.address} {where}")


@pytest.fixture(params=METHODS)
def hosts(request, gw, tmp_path, loopback_address_pool):
    return [Host(gw, tmp_path / f"h{i}", loopback_address_pool(), request.param) for i in (1, 2)]


def test_strict_port_held_by_another_host_keeps_the_mapping_this_host_had(hosts):
    """Issue 22 items 3 (UPnP) and 4 (PCP): trh1 holds 25565; trh2 has 22000 -> 22000 and asks for
    25565 with strict_port.  Its 22000 stays, on the gateway and in the ledger; no other port is left
    behind; under UPnP IGD the error names the host that holds 25565."""
    trh1, trh2 = hosts
    trh1.run("present", [Desired("tcp", 25565, 25565, 3600)])
    trh2.run("present", [Desired("tcp", 22000, 22000, 3600)])
    result, error = trh2.run("present", [Desired("tcp", 22000, 25565, 3600)], strict_port=True)
    assert error is not None and "25565" in error
    if trh2.method == "upnp":
        assert f"held by {trh1.address}:25565" in error, error
    assert trh2.rows() == {("tcp", 22000, 22000)}
    assert trh1.rows() == {("tcp", 25565, 25565)}
    assert not result["changed"], result
    trh2.agrees(result, "after the refused move")
    trh1.agrees(where="the holder")
    # the mapping it kept is still this host's to remove
    removed, error = trh2.run("absent", [Desired("tcp", 22000, 22000, 0)])
    assert error is None and removed["changed"] and trh2.rows() == set()
    trh2.agrees(removed, "after absent")
    assert trh1.rows() == {("tcp", 25565, 25565)}


def test_a_changed_external_port_moves_the_mapping_and_absent_removes_the_new_one(hosts):
    """Issue 22 item 5: internal_port 25570, then external_port 31000: only 31000 forwards to the host;
    state absent then removes 31000 and says so."""
    host = hosts[0]
    first, error = host.run("present", [Desired("tcp", 25570, 25570, 3600)])
    assert error is None and host.rows() == {("tcp", 25570, 25570)}
    host.agrees(first, "first run")
    moved, error = host.run("present", [Desired("tcp", 25570, 31000, 3600)])
    assert error is None, error
    assert host.rows() == {("tcp", 25570, 31000)}, host.rows()
    assert moved["changed"] and moved["mappings"][0]["external_port"] == 31000 and moved["mappings"][0]["changed"]
    host.agrees(moved, "after the move")
    again, error = host.run("present", [Desired("tcp", 25570, 31000, 3600)])
    assert error is None and not again["changed"] and host.rows() == {("tcp", 25570, 31000)}
    removed, error = host.run("absent", [Desired("tcp", 25570, 31000, 0)])
    assert error is None, error
    assert [r["external_port"] for r in removed["removed"]] == [31000]
    assert host.rows() == set()
    host.agrees(removed, "after absent")


def test_a_move_of_both_protocols_leaves_no_port_behind(hosts):
    """protocol both, then another external port: TCP and UDP move together, nothing stays on the old port."""
    host = hosts[0]
    pair = [Desired("tcp", 25580, 25580, 3600, True), Desired("udp", 25580, 25580, 3600, True)]
    host.run("present", pair)
    moved, error = host.run("present", [Desired(d.protocol, 25580, 31080, 3600, True) for d in pair])
    assert error is None, error
    assert host.rows() == {("tcp", 25580, 31080), ("udp", 25580, 31080)}
    host.agrees(moved, "after the move")


def test_strict_port_refusing_a_new_mapping_leaves_nothing(hosts):
    trh1, trh2 = hosts
    trh1.run("present", [Desired("tcp", 25565, 25565, 3600)])
    result, error = trh2.run("present", [Desired("tcp", 25590, 25565, 3600)], strict_port=True)
    assert error is not None and trh2.rows() == set() and not result["changed"]
    trh2.agrees(result, "after the refusal")
    assert trh1.rows() == {("tcp", 25565, 25565)}


def test_absent_never_removes_another_hosts_mapping_on_the_port_the_ledger_names(hosts):
    """The gateway restarted and another host took the port this host's ledger still names: absent
    (which deletes by external port under UPnP IGD) leaves the other host's mapping alone."""
    trh1, trh2 = hosts
    trh2.run("present", [Desired("tcp", 22000, 22000, 3600)])
    trh2.gw.ctl({"cmd": "reboot"})
    trh1.run("present", [Desired("tcp", 22000, 22000, 3600)])
    trh2.run("absent", [Desired("tcp", 22000, 22000, 0)])
    assert trh1.rows() == {("tcp", 22000, 22000)}
    assert trh2.rows() == set() and trh2.ledger() == set()


@pytest.mark.parametrize("method", ["pcp", "natpmp"])
def test_the_simulated_gateway_keeps_mappings_by_external_port_as_miniupnpd(gw, tmp_path, loopback_address_pool,
                                                                            method):
    """mappings_by external-port, as miniupnpd 2.3.1 answered the same requests (see its interop tests): another
    suggested port makes a second mapping (the next free one when held), the port held is renewed; a PCP delete
    removes the oldest mapping made with the nonce, a NAT-PMP delete every mapping of the internal port."""
    gw.ctl({"cmd": "set", "mappings_by": "external-port"})
    gw.ctl({"cmd": "map", "client": "192.0.2.7", "protocol": "tcp", "internal_port": 9, "external_port": 25565})
    host = Host(gw, tmp_path / "h", loopback_address_pool(), method)
    client = Client(gw.address, lock_path=str(tmp_path / "lock"), method=method, source_address=host.address)
    first = client.map("tcp", 22000, 22000, 600)
    ports = [client.map("tcp", 22000, port, 600, nonce=first.nonce).external_port for port in (25565, 31000, 22000)]
    assert ports == [25566, 31000, 22000]
    assert host.rows() == {("tcp", 22000, 22000), ("tcp", 22000, 25566), ("tcp", 22000, 31000)}
    client.delete("tcp", 22000, first.nonce)
    assert host.rows() == ({("tcp", 22000, 25566), ("tcp", 22000, 31000)} if method == "pcp" else set())
