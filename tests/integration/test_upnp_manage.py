"""UPnP IGD through the modules' code path, the renewal job and the command, against the simulated IGD on loopback.

The gateway speaks UPnP IGD only (NAT-PMP and PCP dropped), so ``auto`` ends on UPnP; SSDP
searches are unicast to its loopback address (no multicast leaves this namespace).
"""

from __future__ import annotations

import json

import pytest

from portmap.client import Client
from portmap.ledger import Ledger
from portmap.lock import HostLock
from portmap.manage import Desired, Manager
from simgw import SimulatedGateway
from tests.harness.faces import cli

WANT = [Desired("tcp", 8080, 8080, 3600)]
OTHER_HOST = "192.168.77.200"


@pytest.fixture
def igd(loopback_address, tmp_path):
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock"), speaks="none",
                          igd="v2") as gateway:
        yield gateway


def manager(gw, tmp_path, check_mode=False, method="auto", **client_args):
    lock = HostLock(str(tmp_path / "lock"))
    client = Client(gw.address, lock=lock, method=method, description="portmap.natpmp test", **client_args)
    return Manager(Ledger(str(tmp_path / "ledger.json"), lock), client, check_mode=check_mode)


def upnp_ops(gw):
    """The IGD's log since the last clear: (method, op) of the SSDP searches and HTTP requests."""
    return [(e["method"], e["op"]) for e in gw.ctl({"cmd": "log"})["log"] if e.get("method") in ("upnp", "ssdp")]


def table(gw):
    return [(m["client"], m["protocol"], m["external_port"], m["internal_port"], m["lifetime"])
            for m in gw.ctl({"cmd": "table"})["mappings"]]


def ledger_of(tmp_path):
    return json.loads((tmp_path / "ledger.json").read_text())


def test_auto_maps_over_upnp_keeps_the_igd_and_goes_straight_to_soap_next_time(igd, tmp_path):
    first = manager(igd, tmp_path).present(WANT)
    assert first["changed"] and first["method"] == "upnp" and first["public_address"] == "11.22.33.2"
    (row,) = first["mappings"]
    assert (row["external_port"], row["lifetime"], row["permanent"], row["internal_client"]) == (8080, 3600, False,
                                                                                                 "127.0.0.1")
    assert row["description"] == "portmap.natpmp test"
    assert table(igd) == [("127.0.0.1", "tcp", 8080, 8080, 3600)]
    document = ledger_of(tmp_path)
    assert document["schema"] == 2
    kept = document["gateways"][igd.address]
    assert kept["method"] == "upnp" and kept["upnp"]["control_url"] == f"http://{igd.address}:5000/ctl/IPConn"
    assert document["mappings"][0]["method"] == "upnp"

    igd.ctl({"cmd": "clear_log"})
    again = manager(igd, tmp_path).present(WANT)
    assert not again["changed"] and again["method"] == "upnp"
    ops = upnp_ops(igd)
    assert ("ssdp", "search") not in ops and ("upnp", "description") not in ops  # straight to SOAP
    assert ops[0] == ("upnp", "GetStatusInfo") and ("upnp", "AddPortMapping") in ops


def test_a_kept_igd_that_moved_is_discovered_once_more(igd, tmp_path):
    manager(igd, tmp_path).present(WANT)
    document = ledger_of(tmp_path)
    record = document["gateways"][igd.address]["upnp"]
    record["control_url"] = record["control_url"].replace(":5000/", ":5999/")  # as a restarted miniupnpd's old port
    (tmp_path / "ledger.json").write_text(json.dumps(document))
    igd.ctl({"cmd": "clear_log"})
    result = manager(igd, tmp_path).present(WANT)
    assert result["method"] == "upnp" and not result["changed"]
    assert ("ssdp", "search") in upnp_ops(igd)
    assert ledger_of(tmp_path)["gateways"][igd.address]["upnp"]["control_url"].endswith(":5000/ctl/IPConn")


def test_a_restart_shows_in_the_uptime_and_the_mapping_is_made_again(igd, tmp_path):
    manager(igd, tmp_path).present(WANT)
    igd.ctl({"cmd": "set", "epoch": 5000})  # up for 5000 s ...
    manager(igd, tmp_path).present(WANT)
    igd.ctl({"cmd": "reboot"})  # ... then restarted: uptime 0, table empty
    assert table(igd) == []
    result = manager(igd, tmp_path).present(WANT)
    assert result["changed"] and result["gateway_rebooted"]
    assert table(igd) == [("127.0.0.1", "tcp", 8080, 8080, 3600)]


def test_a_mapping_deleted_behind_our_back_is_a_change(igd, tmp_path):
    manager(igd, tmp_path).present(WANT)
    Client(igd.address, method="upnp", lock_path=str(tmp_path / "other.lock")).delete("tcp", 8080, external_port=8080)
    assert table(igd) == []
    result = manager(igd, tmp_path).present(WANT)
    assert result["changed"] and not result["gateway_rebooted"]
    assert table(igd) == [("127.0.0.1", "tcp", 8080, 8080, 3600)]
    assert not manager(igd, tmp_path).present(WANT)["changed"]


def test_check_mode_reads_the_table_and_writes_nothing(igd, tmp_path):
    manager(igd, tmp_path).present(WANT)
    Client(igd.address, method="upnp", lock_path=str(tmp_path / "other.lock")).delete("tcp", 8080, external_port=8080)
    before = (tmp_path / "ledger.json").read_text()
    igd.ctl({"cmd": "clear_log"})
    result = manager(igd, tmp_path, check_mode=True).present(WANT + [Desired("udp", 5353, 5353, 600)])
    assert result["changed"] and all(r["predicted"] for r in result["mappings"])
    assert [r["changed"] for r in result["mappings"]] == [True, True]  # 8080 is gone from the table: predicted
    ops = {op for _method, op in upnp_ops(igd)}
    assert "GetSpecificPortMappingEntry" in ops
    assert not ops & {"AddPortMapping", "AddAnyPortMapping", "DeletePortMapping"}
    assert (tmp_path / "ledger.json").read_text() == before and table(igd) == []


@pytest.fixture
def igd_v1(loopback_address, tmp_path):
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock"), speaks="none",
                          igd="v1") as gateway:
        yield gateway


def test_a_permanent_lease_is_reported_and_checked_by_the_job(igd_v1, tmp_path):
    igd = igd_v1  # permanent leases are IGDv1's (IGDv2 reads lease 0 as 604800 s)
    igd.ctl({"cmd": "set", "lease_policy": "permanent-only"})
    result = manager(igd, tmp_path).present(WANT)
    (row,) = result["mappings"]
    assert (row["lifetime"], row["permanent"], row["expired"], row["expires"]) == (0, True, False, None)
    assert any("permanent leases only" in w and "stays mapped until it is deleted" in w for w in result["warnings"])
    assert table(igd) == [("127.0.0.1", "tcp", 8080, 8080, 0)]
    assert not manager(igd, tmp_path).present(WANT)["changed"]

    renewed = cli(igd, tmp_path, "--method", "auto", "renew", "--log", "stderr")
    assert renewed.returncode == 0, renewed.stderr
    assert "0 renewed, 1 not due" in renewed.stderr  # there and permanent: nothing to renew
    Client(igd.address, method="upnp", lock_path=str(tmp_path / "other.lock")).delete("tcp", 8080, external_port=8080)
    renewed = cli(igd, tmp_path, "--method", "auto", "renew", "--log", "stderr")
    assert renewed.returncode == 0, renewed.stderr
    assert "the permanent mapping is gone from the gateway's table" in renewed.stderr
    assert table(igd) == [("127.0.0.1", "tcp", 8080, 8080, 0)]


def test_a_permanent_lease_is_not_too_short_for_min_lifetime(igd_v1, tmp_path):
    igd_v1.ctl({"cmd": "set", "lease_policy": "permanent-only"})
    result = manager(igd_v1, tmp_path).present(WANT, min_lifetime=120)  # the role's rule under cron
    assert result["changed"] and result["mappings"][0]["permanent"]
    assert table(igd_v1) == [("127.0.0.1", "tcp", 8080, 8080, 0)]


def test_absent_removes_this_hosts_unrecorded_mapping_and_never_another_hosts(igd, tmp_path):
    Client(igd.address, method="upnp", lock_path=str(tmp_path / "other.lock")).map("tcp", 8080, 8080, 600)
    igd.ctl({"cmd": "map", "client": OTHER_HOST, "protocol": "tcp", "internal_port": 9, "external_port": 9090,
             "lifetime": 600})
    predicted = manager(igd, tmp_path, check_mode=True).absent([Desired("tcp", 8080, 8080, 0)])
    assert predicted["changed"] and len(table(igd)) == 2  # check mode: read only
    removed = manager(igd, tmp_path).absent([Desired("tcp", 8080, 8080, 0)])
    (gone,) = removed["removed"]
    assert removed["changed"] and gone == {"protocol": "tcp", "internal_port": 8080, "external_port": 8080,
                                           "lifetime": gone["lifetime"], "recorded": False}
    assert table(igd) == [(OTHER_HOST, "tcp", 9090, 9, 600)]
    untouched = manager(igd, tmp_path).absent([Desired("tcp", 9, 9090, 0)])  # another host's: left alone
    assert not untouched["changed"] and table(igd) == [(OTHER_HOST, "tcp", 9090, 9, 600)]


def test_info_lists_the_gateways_table_and_says_what_it_speaks(igd, tmp_path):
    manager(igd, tmp_path).present(WANT)
    igd.ctl({"cmd": "map", "client": OTHER_HOST, "protocol": "udp", "internal_port": 9, "external_port": 9090,
             "lifetime": 600})
    facts = manager(igd, tmp_path).info()
    assert facts["method"] == "upnp" and facts["speaks"]["upnp"] is True
    assert isinstance(facts["speaks"]["pcp"], str) and isinstance(facts["speaks"]["natpmp"], str)
    listing = facts["gateway_table"]
    assert listing["listed"] and not listing["cut"]
    rows = {(m["protocol"], m["external_port"]): m for m in listing["mappings"]}
    assert rows[("tcp", 8080)]["this_host"] and rows[("tcp", 8080)]["description"] == "portmap.natpmp test"
    assert not rows[("udp", 9090)]["this_host"] and rows[("udp", 9090)]["internal_client"] == OTHER_HOST
    assert 0 < rows[("udp", 9090)]["lease_left"] <= 600


def test_info_on_a_natpmp_gateway_says_plainly_it_cannot_list(gw, tmp_path):
    facts = manager(gw, tmp_path).info()
    assert facts["method"] == "pcp" and not facts["gateway_table"]["listed"]
    assert "cannot list" in facts["gateway_table"]["why"]


def test_the_command_over_upnp(igd, tmp_path):
    mapped = cli(igd, tmp_path, "--method", "upnp", "--description", "from the command", "map", "tcp", "8080")
    assert mapped.returncode == 0, mapped.stderr
    assert "mapped TCP 11.22.33.2:8080 -> internal port 8080 for 7200 s (upnp)" in mapped.stdout
    public = cli(igd, tmp_path, "public")
    assert public.returncode == 0 and "speaks upnp; using upnp" in public.stdout
    listed = cli(igd, tmp_path, "table")
    assert listed.returncode == 0, listed.stderr
    assert "1 mapping(s) on gateway" in listed.stdout and "from the command (this host)" in listed.stdout
    as_json = json.loads(cli(igd, tmp_path, "table", "--json").stdout)
    assert as_json["listed"] and as_json["mappings"][0]["external_port"] == 8080
    deleted = cli(igd, tmp_path, "delete", "tcp", "8080")
    assert deleted.returncode == 0 and table(igd) == []


def test_the_command_says_when_the_gateway_cannot_list(gw, tmp_path):
    listed = cli(gw, tmp_path, "table")
    assert listed.returncode == 1 and "cannot be listed" in listed.stderr and "cannot list" in listed.stderr


def test_a_port_taken_by_another_host_is_asked_once_and_then_kept(igd, tmp_path):
    """8080 is another host's: the first run gets another port; later runs and the job keep that one
    (they ask for the port this host holds, not again for 8080), so nothing piles up on the gateway."""
    igd.ctl({"cmd": "map", "client": OTHER_HOST, "protocol": "tcp", "internal_port": 9, "external_port": 8080,
             "lifetime": 3600})
    first = manager(igd, tmp_path).present(WANT)
    granted = first["mappings"][0]["external_port"]
    assert first["changed"] and granted != 8080
    again = manager(igd, tmp_path).present(WANT)
    assert not again["changed"] and again["mappings"][0]["external_port"] == granted
    renewed = cli(igd, tmp_path, "--method", "upnp", "renew", "--now", "--log", "stderr")
    assert renewed.returncode == 0, renewed.stderr
    ours = [row for row in table(igd) if row[0] == "127.0.0.1"]
    assert ours == [("127.0.0.1", "tcp", granted, 8080, 3600)]  # one mapping of this host, on its port


def test_the_job_remakes_a_leased_mapping_gone_from_the_table(igd, tmp_path):
    """Deleted on the router's pages (or lost by a gateway whose uptime did not go back): the job sees it."""
    manager(igd, tmp_path).present(WANT)
    Client(igd.address, method="upnp", lock_path=str(tmp_path / "other.lock")).delete("tcp", 8080, external_port=8080)
    renewed = cli(igd, tmp_path, "--method", "auto", "renew", "--log", "stderr")
    assert renewed.returncode == 0, renewed.stderr
    assert "gone from the gateway's table" in renewed.stderr and "1 renewed" in renewed.stderr
    assert table(igd) == [("127.0.0.1", "tcp", 8080, 8080, 3600)]


def test_after_a_restart_each_mapping_is_made_again_once(igd, tmp_path):
    """The uptime that went back shows the restart once: the mappings after the first one are not taken for
    a second restart in the middle of the pass (which would make every mapping again, several times)."""
    two = WANT + [Desired("udp", 5353, 5353, 3600), Desired("tcp", 2222, 2222, 3600)]
    manager(igd, tmp_path).present(two)
    igd.ctl({"cmd": "set", "epoch": 5000})
    manager(igd, tmp_path).present(two)
    for how in ("module", "job"):
        igd.ctl({"cmd": "reboot"})
        igd.ctl({"cmd": "clear_log"})
        if how == "module":
            result = manager(igd, tmp_path).present(two)
            assert result["changed"] and result["gateway_rebooted"]
        else:
            renewed = cli(igd, tmp_path, "--method", "auto", "renew", "--log", "stderr")
            assert renewed.returncode == 0, renewed.stderr
            assert "during the renewal" not in renewed.stderr, renewed.stderr
        made = [op for method, op in upnp_ops(igd) if op in ("AddPortMapping", "AddAnyPortMapping")]
        assert len(made) == 3, (how, upnp_ops(igd))
        assert len(table(igd)) == 3
        igd.ctl({"cmd": "set", "epoch": 5000})
