"""A mapping whose external port changes, or that strict_port refuses, behind the real miniupnpd.

miniupnpd 2.3.1 (secure_mode=yes, NAT-PMP, PCP and UPnP IGD on) in sealed namespaces, two hosts
behind it, each running the modules' code path (``Manager``) with a ledger of its own.  After
every run the gateway's own table (the DNAT rules of miniupnpd's nftables chain), each host's
ledger and the run's result must agree (``tests/harness/agreement.py``).  miniupnpd keeps its
mappings by external port, under every protocol: a request that suggests another port for an
internal port it already maps makes a second mapping, which is what these tests watch for.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.harness import miniupnpd as miniupnpd_mod
from tests.harness.agreement import check, ledger_rows, nft_rows
from tests.harness.interop import client_script
from tests.harness.netns import Topology, existing_namespaces

pytestmark = pytest.mark.netns

RUN = textwrap.dedent("""
    from portmap.ledger import Ledger
    from portmap.lock import HostLock
    from portmap.manage import ApplyError, Desired, Manager
    folder, method, how, wanted, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), \\
        json.loads(sys.argv[5])
    lock = HostLock(folder + "/lock")
    client = Client("192.168.77.1", lock=lock, method=method, description="portmap.natpmp " + folder[-2:])
    manager = Manager(Ledger(folder + "/ledger.json", lock), client)
    if how == "renew":  # the renewal job, every mapping due (--now)
        from portmap.renew import Renewer
        log = []
        make = lambda gateway, epoch: Client(gateway, lock=lock, method=method, epoch=epoch)
        report = Renewer(Ledger(folder + "/ledger.json", lock), make, log.append).run(force=True)
        out({"result": {"renewed": report.renewed, "failed": report.failed, "log": log}, "error": None})
        sys.exit(0)
    desired = [Desired(*w) for w in wanted]
    try:
        out({"result": getattr(manager, how)(desired, **options), "error": None})
    except ApplyError as exc:
        out({"result": exc.result, "error": str(exc)})
""")


@pytest.fixture
def lab(netns_ok, tmp_path):
    """Two hosts behind miniupnpd with NAT-PMP, PCP and UPnP IGD; removed after the test, also on failure."""
    ok, why = miniupnpd_mod.available()
    if not ok:
        pytest.skip(why)
    topo = Topology(hosts=2).create()
    daemon = miniupnpd_mod.Miniupnpd(topo, upnp=True)
    try:
        topo.assert_sealed()
        daemon.start()
        yield topo
    finally:
        daemon.stop()
        topo.destroy()
        left = set(topo.namespaces) & set(existing_namespaces())
        assert not left, f"namespaces left behind: {left}"


class Host:
    def __init__(self, topo, index, folder, method):
        folder.mkdir()
        self.topo, self.index, self.folder, self.method = topo, index, folder, method
        self.address = topo.host_addresses[index]

    def run(self, how, wanted, **options):
        argv = client_script(RUN) + [str(self.folder), self.method, how, json.dumps(wanted), json.dumps(options)]
        done = self.topo.run(self.topo.hosts[self.index], argv)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout.splitlines()[-1])
        print(f"{self.address} {how} {wanted} {options}: error {answer['error']}")
        return answer["result"], answer["error"]

    def rows(self):
        return nft_rows(self.topo).get(self.address, set())

    def agrees(self, result=None, where=""):
        check(self.rows(), ledger_rows(str(self.folder / "ledger.json")), result, f"{self.address} {where}")


@pytest.mark.parametrize("method", ["pcp", "natpmp", "upnp"])
def test_strict_port_held_by_another_host(lab, tmp_path, method):
    """Issue 22 items 3 (UPnP IGD) and 4 (PCP): trh1 holds 25565, trh2 has 22000 -> 22000 and asks for 25565
    with strict_port.  trh2 keeps 22000 on the gateway and in its ledger, nothing else is left forwarding to it,
    and under UPnP IGD the error names trh1."""
    trh1, trh2 = Host(lab, 0, tmp_path / "h0", method), Host(lab, 1, tmp_path / "h1", method)
    assert trh1.run("present", [["tcp", 25565, 25565, 3600]])[1] is None
    assert trh2.run("present", [["tcp", 22000, 22000, 3600]])[1] is None
    result, error = trh2.run("present", [["tcp", 22000, 25565, 3600]], strict_port=True)
    assert error is not None and "25565" in error
    if method == "upnp":
        assert f"held by {trh1.address}:25565" in error, error
    assert trh2.rows() == {("tcp", 22000, 22000)}, trh2.rows()
    assert not result["changed"]
    trh2.agrees(result, "after strict_port refused 25565")
    assert trh1.rows() == {("tcp", 25565, 25565)}
    trh1.agrees(where="the holder")
    removed, error = trh2.run("absent", [["tcp", 22000, 22000, 0]])
    assert error is None and removed["changed"] and trh2.rows() == set()
    trh2.agrees(removed, "after absent")


@pytest.mark.parametrize("method", ["pcp", "natpmp", "upnp"])
def test_a_changed_external_port_leaves_only_the_new_one(lab, tmp_path, method):
    """Issue 22 item 5: internal_port 25570, then external_port 31000; then state absent."""
    host = Host(lab, 0, tmp_path / "h0", method)
    first, error = host.run("present", [["tcp", 25570, 25570, 3600]])
    assert error is None and host.rows() == {("tcp", 25570, 25570)}
    host.agrees(first, "first run")
    moved, error = host.run("present", [["tcp", 25570, 31000, 3600]])
    assert error is None, error
    assert host.rows() == {("tcp", 25570, 31000)}, host.rows()
    assert moved["changed"] and moved["mappings"][0]["external_port"] == 31000
    host.agrees(moved, "after the move")
    again, error = host.run("present", [["tcp", 25570, 31000, 3600]])
    assert error is None and not again["changed"] and host.rows() == {("tcp", 25570, 31000)}
    host.agrees(again, "the run after")
    removed, error = host.run("absent", [["tcp", 25570, 31000, 0]])
    assert error is None, error
    assert [r["external_port"] for r in removed["removed"]] == [31000]
    assert host.rows() == set()
    host.agrees(removed, "after absent")


@pytest.mark.parametrize("method", ["pcp", "natpmp", "upnp"])
def test_a_renewal_asks_for_the_port_the_mapping_holds(lab, tmp_path, method):
    """25565 is trh1's, so trh2's mapping asking for it got 25566; trh1 then lets 25565 go.  The renewal asks for
    25566, the port trh2 holds: asking for 25565 made miniupnpd add a second mapping (NAT-PMP and PCP)."""
    trh1, trh2 = Host(lab, 0, tmp_path / "h0", method), Host(lab, 1, tmp_path / "h1", method)
    trh1.run("present", [["tcp", 25565, 25565, 3600]])
    made, error = trh2.run("present", [["tcp", 22000, 25565, 3600]])
    assert error is None and made["mappings"][0]["external_port"] != 25565
    granted = made["mappings"][0]["external_port"]
    assert trh1.run("absent", [["tcp", 25565, 25565, 0]])[1] is None
    renewed, _error = trh2.run("renew", [])
    assert (renewed["renewed"], renewed["failed"]) == (1, 0), renewed
    assert trh2.rows() == {("tcp", 22000, granted)}, trh2.rows()
    trh2.agrees(where="after the renewal")
    # external_port 0 (any): the port held is renewed (a suggestion of 0 is the internal port to miniupnpd)
    anyport, error = trh2.run("present", [["tcp", 22000, 0, 3600]])
    assert error is None and trh2.rows() == {("tcp", 22000, granted)}, trh2.rows()
    trh2.agrees(anyport, "after external_port 0")
