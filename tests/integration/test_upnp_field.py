"""Routers in the field, through the modules' code path and the command, against the simulated IGD on loopback.

Three shapes of the simulated gateway (UPnP IGD only, NAT-PMP and PCP dropped; SSDP unicast to its
loopback address):

- ``tr064``: its one WAN connection service is named as TR-064 names it,
  ``urn:dslforum-org:service:WANPPPConnection:1``, and answers only to that type (devices too are TR-064's);
- ``two_wan``: two WAN connection services (two uplinks, as a MikroTik lists them), both ``WANIPConnection:2``,
  the first Disconnected (``/ctl/IPConn``), the second connected (``/ctl/IPConn2``);
- ``lease402``: an IGDv1 that answers 402 InvalidArgs to a lease other than 0 (permanent-only-402).
"""

from __future__ import annotations

import json

import pytest

from portmap.client import Client
from portmap.manage import Desired
from simgw import SimulatedGateway
from tests.harness.faces import cli
from tests.integration.test_upnp_manage import manager, table

WANT = [Desired("tcp", 8080, 8080, 3600)]
TR064_PPP = "urn:dslforum-org:service:WANPPPConnection:1"
SHAPES = {
    "tr064": {"igd": "v1", "igd_service": "tr064-ppp"},
    "two_wan": {"igd": "v2", "igd_service": "ip=Disconnected,ip"},
    "lease402": {"igd": "v1", "igd_service": "ip"},
}


@pytest.fixture
def shaped(request, loopback_address, tmp_path):
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock"), speaks="none",
                          **SHAPES[request.param]) as gateway:
        if request.param == "lease402":
            gateway.ctl({"cmd": "set", "lease_policy": "permanent-only-402"})
        yield gateway


def soap_log(gw):
    """(path-less) SOAP actions the IGD answered, with the HTTP status of each."""
    return [(e["op"], e.get("answer", "")) for e in gw.ctl({"cmd": "log"})["log"] if e.get("method") == "upnp"]


def kept(tmp_path, gw):
    return json.loads((tmp_path / "ledger.json").read_text())["gateways"][gw.address]["upnp"]


# ------------------------------------------------------------------ 1. TR-064 service names


@pytest.mark.parametrize("shaped", ["tr064"], indirect=True)
@pytest.mark.parametrize("method", ["auto", "upnp"])
def test_a_tr064_router_is_found_and_spoken_to_in_its_own_type(shaped, tmp_path, method):
    first = manager(shaped, tmp_path, method=method).present(WANT)
    assert first["changed"] and first["method"] == "upnp" and first["public_address"] == "11.22.33.2"
    assert table(shaped) == [("127.0.0.1", "tcp", 8080, 8080, 3600)]
    record = kept(tmp_path, shaped)
    assert record["service_type"] == TR064_PPP and record["control_url"] == f"http://{shaped.address}:5000/ctl/PPPConn"
    assert record["device_type"] == "urn:dslforum-org:device:InternetGatewayDevice:1"
    again = manager(shaped, tmp_path, method=method).present(WANT)  # the kept service, straight to SOAP
    assert not again["changed"] and table(shaped) == [("127.0.0.1", "tcp", 8080, 8080, 3600)]
    facts = manager(shaped, tmp_path, method=method).info()
    assert facts["speaks"]["upnp"] is True and facts["upnp_service"]["service_type"] == TR064_PPP
    assert facts["gateway_table"]["listed"] and facts["gateway_table"]["mappings"][0]["this_host"]
    assert manager(shaped, tmp_path, method=method).absent(WANT)["changed"] and table(shaped) == []


@pytest.mark.parametrize("shaped", ["tr064"], indirect=True)
def test_the_tr064_router_refuses_the_forums_type(shaped):
    """The simulated TR-064 service answers only to its own type: what makes the test above able to fail."""
    from tests.integration.test_simgw_igd import add, error  # pylint: disable=import-outside-toplevel

    forum = {"service": "WANPPPConnection", "version": 1, "path": "/ctl/PPPConn"}
    assert error(add(shaped.address, 8080, **forum)) == 401
    assert table(shaped) == []


@pytest.mark.parametrize("shaped", ["tr064"], indirect=True)
def test_the_command_on_a_tr064_router(shaped, tmp_path):
    mapped = cli(shaped, tmp_path, "--method", "upnp", "map", "tcp", "8080")
    assert mapped.returncode == 0, mapped.stderr
    assert "mapped TCP 11.22.33.2:8080 -> internal port 8080 for 7200 s (upnp)" in mapped.stdout
    public = cli(shaped, tmp_path, "--method", "auto", "public")
    assert public.returncode == 0, public.stderr
    assert f"UPnP IGD service {TR064_PPP} at http://{shaped.address}:5000/ctl/PPPConn" in public.stdout
    deleted = cli(shaped, tmp_path, "delete", "tcp", "8080")
    assert deleted.returncode == 0 and table(shaped) == []


# ------------------------------------------------------------------ 2. two WAN connection services, the first down


@pytest.mark.parametrize("shaped", ["two_wan"], indirect=True)
def test_the_connected_wan_service_is_used_and_natpmp_info_says_why(shaped, tmp_path):
    result = manager(shaped, tmp_path).present(WANT)
    assert result["changed"] and table(shaped) == [("127.0.0.1", "tcp", 8080, 8080, 3600)]
    assert kept(tmp_path, shaped)["control_url"] == f"http://{shaped.address}:5000/ctl/IPConn2"
    adds = [(op, answer) for op, answer in soap_log(shaped) if op in ("AddPortMapping", "AddAnyPortMapping")]
    assert len(adds) == 1  # straight to the connected one: nothing asked of the one that is down
    facts = manager(shaped, tmp_path, method="upnp", upnp_url=f"http://{shaped.address}:5000/rootDesc.xml").info()
    chosen = facts["upnp_service"]
    assert chosen["service_type"] == "urn:schemas-upnp-org:service:WANIPConnection:2"
    assert chosen["why"].startswith("connected, with the public address 11.22.33.2")
    assert chosen["control_url"] == f"http://{shaped.address}:5000/ctl/IPConn2"
    assert [(c["control_url"].rsplit("/", 1)[1], c["status"], c["rank"]) for c in chosen["candidates"]] == [
        ("IPConn", "Disconnected", 3), ("IPConn2", "Connected", 1)]


@pytest.mark.parametrize("shaped", ["two_wan"], indirect=True)
def test_when_no_wan_service_is_up_the_first_is_used_and_its_refusal_reported(shaped, tmp_path):
    shaped.ctl({"cmd": "set", "connection_status": "Disconnected"})  # the second one follows the gateway's status
    with pytest.raises(Exception, match="ActionFailed"):
        manager(shaped, tmp_path, method="upnp").client.map("tcp", 8080, 8080, 600)
    facts = manager(shaped, tmp_path, method="upnp").info()
    assert facts["upnp_service"]["control_url"].endswith("/ctl/IPConn")
    assert facts["upnp_service"]["why"].startswith("none is connected")


@pytest.mark.parametrize("shaped", ["two_wan"], indirect=True)
def test_the_command_on_a_router_with_two_wan_services(shaped, tmp_path):
    mapped = cli(shaped, tmp_path, "--method", "upnp", "map", "tcp", "8080")
    assert mapped.returncode == 0, mapped.stderr
    assert table(shaped) == [("127.0.0.1", "tcp", 8080, 8080, 7200)]
    public = cli(shaped, tmp_path, "--method", "upnp", "--upnp-url", f"http://{shaped.address}:5000/rootDesc.xml",
                 "public")
    assert public.returncode == 0, public.stderr
    assert (f"UPnP IGD service urn:schemas-upnp-org:service:WANIPConnection:2 at http://{shaped.address}:5000/ctl/IPConn2: "
            "connected, with the public address 11.22.33.2") in public.stdout


# ------------------------------------------------------------------ 3. a lease refused with 402


@pytest.mark.parametrize("shaped", ["lease402"], indirect=True)
def test_402_to_a_lease_gives_a_permanent_mapping_the_job_checks(shaped, tmp_path):
    result = manager(shaped, tmp_path).present(WANT)
    (row,) = result["mappings"]
    assert (row["lifetime"], row["permanent"], row["expires"]) == (0, True, None)
    assert any("permanent leases only" in w and "402" in w for w in result["warnings"])
    assert table(shaped) == [("127.0.0.1", "tcp", 8080, 8080, 0)]
    answers = [answer for op, answer in soap_log(shaped) if op == "AddPortMapping"]
    assert len(answers) == 2  # the lease, refused; lease 0, taken
    assert not manager(shaped, tmp_path).present(WANT)["changed"]

    Client(shaped.address, method="upnp", lock_path=str(tmp_path / "other.lock")).delete("tcp", 8080, external_port=8080)
    renewed = cli(shaped, tmp_path, "--method", "auto", "renew", "--log", "stderr")
    assert renewed.returncode == 0, renewed.stderr
    assert "the permanent mapping is gone from the gateway's table" in renewed.stderr
    assert table(shaped) == [("127.0.0.1", "tcp", 8080, 8080, 0)]


@pytest.mark.parametrize("shaped", ["lease402"], indirect=True)
def test_the_command_with_402_to_a_lease(shaped, tmp_path):
    mapped = cli(shaped, tmp_path, "--method", "upnp", "map", "tcp", "8080")
    assert mapped.returncode == 0, mapped.stderr
    assert "mapped TCP 11.22.33.2:8080 -> internal port 8080 permanently (until deleted) (upnp)" in mapped.stdout
    assert "402 to a lease" in mapped.stderr


@pytest.mark.parametrize("shaped", ["lease402"], indirect=True)
def test_402_to_both_leases_names_both_answers(shaped, tmp_path):
    shaped.ctl({"cmd": "fault", "kind": "result", "code": 402, "ops": ["AddPortMapping"], "methods": ["upnp"]})
    mapped = cli(shaped, tmp_path, "--method", "upnp", "map", "tcp", "8080")
    assert mapped.returncode == 1
    assert "refuses lease 7200 (InvalidArgs) and lease 0 (InvalidArgs)" in mapped.stderr
    assert table(shaped) == []
