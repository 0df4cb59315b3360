"""UPnP IGD as routers in the field serve it: TR-064 service names, several WAN connection services, leases refused.

The documents are real devices' own, as published (stored in vectors/upnp/):

- ``huawei-hg531-rootDesc.xml``: the root description of a Huawei HG531 V1 DSL gateway, every service named
  ``urn:dslforum-org:...`` (TR-064), its WAN connection ``urn:dslforum-org:service:WANPPPConnection:1``. Posted in
  https://github.com/tailscale/tailscale/issues/10911 and kept as ``huaweiRootDescXML`` in tailscale's
  net/portmapper/upnp_test.go.
- ``mikrotik-chr-rootDesc.xml``: MikroTik RouterOS (CHR v7.10) with two WANDevices, each with its own
  ``WANIPConnection:1`` (one per uplink). Posted in https://github.com/tailscale/tailscale/issues/8364 and kept as
  ``mikrotikRootDescXML`` in the same file (its URLBase and presentation URL renamed there, as here).
- ``arris-nvg578lx-AddAnyPortMapping-402.xml``: an ARRIS NVG578LX's answer to a mapping asked with a lease:
  402 Invalid Args (the same mapping with lease 0 is accepted; its line ends kept as LF here, which an XML
  parser reads alike). Logged in
  https://github.com/tailscale/tailscale/issues/15223 (which led to tailscale pull request 15231).

The answers to the other actions are miniupnpd's recorded ones (vectors/upnp/*.b64), their service type
rewritten to the one each test speaks to.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.unit.plugins.module_utils.portmap.fakes_upnp import GATEWAY, LOCAL, VECTORS, FakeIgd, edit, fault, http_answer, vector
from portmap import errors, wire_ssdp, wire_upnp
from portmap.methods.igd import IgdSession

HUAWEI_URL = f"http://{GATEWAY}:49652/49652gatedesc.xml"
MIKROTIK_URL = f"http://{GATEWAY}:2828/gateway_description.xml"
TR064_PPP = "urn:dslforum-org:service:WANPPPConnection:1"
FORUM_IP1 = "urn:schemas-upnp-org:service:WANIPConnection:1"
MIKROTIK_WAN1 = f"http://{GATEWAY}:2828/upnp/control/yomkmsnooi/wanipconn-1"
MIKROTIK_WAN7 = f"http://{GATEWAY}:2828/upnp/control/xstnsgeuyh/wanipconn-7"


def document(name: str) -> bytes:
    with open(os.path.join(VECTORS, name), "rb") as handle:
        return handle.read()


def speaking(name: str, service_type: str) -> bytes:
    """miniupnpd's recorded answer to ``name``, in ``service_type``'s namespace."""
    return edit(vector(f"v2-{name}"), b"urn:schemas-upnp-org:service:WANIPConnection:2", service_type.encode())


def status(state: str, service_type: str = FORUM_IP1) -> bytes:
    return edit(speaking("GetStatusInfo", service_type), b">Connected<", f">{state}<".encode())


def external(address: str, service_type: str = FORUM_IP1) -> bytes:
    return edit(speaking("GetExternalIPAddress", service_type), b">11.22.33.2<", f">{address}<".encode())


def session(igd: FakeIgd, **kwargs) -> IgdSession:
    kwargs.setdefault("timeout", 3.0)
    return IgdSession(GATEWAY, clock=igd.clock, datagrams_factory=igd.datagrams, stream_factory=igd.streams, **kwargs)


def path_of(request: bytes) -> str:
    return request.split(b" ", 2)[1].decode()


def soap_type(request: bytes) -> str:
    return re.search(rb'SOAPAction: "([^#"]*)#', request).group(1).decode()


def body_type(request: bytes) -> str:
    return re.search(rb'<u:\w+ xmlns:u="([^"]*)"', request).group(1).decode()


# ------------------------------------------------------------------ 1. TR-064 service names


def test_a_tr064_description_gives_its_wanpppconnection():
    found = wire_upnp.parse_description(document("huawei-hg531-rootDesc.xml"), HUAWEI_URL)
    assert found.device_type == "urn:dslforum-org:device:InternetGatewayDevice:1"
    assert (found.service.service_type, found.service.control_url, found.service.version) == (
        TR064_PPP, f"http://{GATEWAY}:49652/ctrlt/WANPPPConnection_1", 1)
    assert [s.service_type for s in found.services] == [TR064_PPP]  # WANDSLLinkConfig and the others are not taken


def test_other_naming_authorities_stay_refused():
    text = document("huawei-hg531-rootDesc.xml").replace(b"urn:dslforum-org:service:WANPPPConnection:1",
                                                         b"urn:www-huawei-com:service:WANPPPConnection:1")
    with pytest.raises(errors.MalformedPacket, match="no WANIPConnection or WANPPPConnection service"):
        wire_upnp.parse_description(text, HUAWEI_URL)


def tr064_igd() -> FakeIgd:
    return FakeIgd({"GET /49652gatedesc.xml": http_answer(document("huawei-hg531-rootDesc.xml")),
                    "GetStatusInfo": status("Connected", TR064_PPP),
                    "GetExternalIPAddress": speaking("GetExternalIPAddress", TR064_PPP),
                    "AddPortMapping": speaking("AddPortMapping", TR064_PPP),
                    "GetSpecificPortMappingEntry": speaking("GetSpecificPortMappingEntry", TR064_PPP)})


def test_a_tr064_service_is_spoken_to_in_its_own_type():
    igd = tr064_igd()
    s = session(igd, upnp_url=HUAWEI_URL)
    granted = s.map("tcp", 8080, 8080, 3600, "web")
    assert (granted.external_port, granted.lifetime, granted.permanent) == (8080, 3600, False)
    soap = [r for r in igd.requests if not r.startswith(b"GET ")]
    assert [igd.key(r) for r in soap] == [
        "GetStatusInfo", "GetExternalIPAddress", "GetSpecificPortMappingEntry", "AddPortMapping"]
    assert {path_of(r) for r in soap} == {"/ctrlt/WANPPPConnection_1"}
    assert {soap_type(r) for r in soap} == {TR064_PPP} and {body_type(r) for r in soap} == {TR064_PPP}
    assert s.external_address() == "11.22.33.2"


def test_a_tr064_answer_is_read_like_the_forums():
    answer = wire_upnp.decode_response(speaking("GetExternalIPAddress", TR064_PPP).split(b"\r\n\r\n", 1)[1],
                                       "GetExternalIPAddress")
    assert answer == {"NewExternalIPAddress": "11.22.33.2"}


def test_discovery_searches_for_tr064_names_too():
    assert {"urn:dslforum-org:device:InternetGatewayDevice:1", "urn:dslforum-org:service:WANPPPConnection:1",
            "urn:dslforum-org:service:WANIPConnection:1"} <= set(wire_ssdp.SEARCH_TARGETS)
    igd = tr064_igd()
    answer = vector("v2-ssdp-InternetGatewayDevice-2").replace(
        b"urn:schemas-upnp-org:device:InternetGatewayDevice:2", b"urn:dslforum-org:service:WANPPPConnection:1").replace(
        b":5000/rootDesc.xml", b":49652/49652gatedesc.xml")
    igd.ssdp = lambda data, address: [(0.01, answer, (GATEWAY, 1900))] if b"ST: " + TR064_PPP.encode() in data else []
    found = session(igd).discover()
    assert found.service.service_type == TR064_PPP and found.url == HUAWEI_URL


# ------------------------------------------------------------------ 2. several WAN connection services


def test_every_wan_connection_service_is_listed_in_order():
    found = wire_upnp.parse_description(document("mikrotik-chr-rootDesc.xml"), MIKROTIK_URL)
    assert [s.control_url for s in found.services] == [MIKROTIK_WAN1, MIKROTIK_WAN7]
    assert found.service == found.services[0]


def mikrotik(states, addresses) -> FakeIgd:
    """The MikroTik with two uplinks; ``states``/``addresses``: per control URL, what its service answers."""
    def by_path(table):
        return lambda request: table[f"http://{GATEWAY}:2828{path_of(request)}"]
    return FakeIgd({"GET /gateway_description.xml": http_answer(document("mikrotik-chr-rootDesc.xml")),
                    "GetStatusInfo": by_path({url: status(state) for url, state in states.items()}),
                    "GetExternalIPAddress": by_path({url: external(a) for url, a in addresses.items()}),
                    "AddPortMapping": speaking("AddPortMapping", FORUM_IP1)})


@pytest.mark.parametrize("states, addresses, chosen, why", [
    ({MIKROTIK_WAN1: "Disconnected", MIKROTIK_WAN7: "Connected"}, {MIKROTIK_WAN1: "", MIKROTIK_WAN7: "11.22.33.2"},
     MIKROTIK_WAN7, "connected, with the public address 11.22.33.2"),
    ({MIKROTIK_WAN1: "Connected", MIKROTIK_WAN7: "Connected"}, {MIKROTIK_WAN1: "100.64.0.2", MIKROTIK_WAN7: "11.22.33.2"},
     MIKROTIK_WAN7, "connected, with the public address 11.22.33.2"),
    ({MIKROTIK_WAN1: "Connected", MIKROTIK_WAN7: "Disconnected"}, {MIKROTIK_WAN1: "100.64.0.2", MIKROTIK_WAN7: ""},
     MIKROTIK_WAN1, "connected, without a public address"),
    ({MIKROTIK_WAN1: "Disconnected", MIKROTIK_WAN7: "Up"}, {MIKROTIK_WAN1: "", MIKROTIK_WAN7: "192.168.1.2"},
     MIKROTIK_WAN7, "connected, without a public address"),
    ({MIKROTIK_WAN1: "Disconnected", MIKROTIK_WAN7: "Connecting"}, {MIKROTIK_WAN1: "", MIKROTIK_WAN7: ""},
     MIKROTIK_WAN1, "none is connected"),
])
def test_services_are_ranked_as_miniupnpc_ranks_them(states, addresses, chosen, why):
    igd = mikrotik(states, addresses)
    s = session(igd, upnp_url=MIKROTIK_URL)
    assert s.discover().service.control_url == chosen
    assert s.status.status == states[chosen]
    choice = s.choice()
    assert choice["control_url"] == chosen and why in choice["why"]
    assert [c["control_url"] for c in choice["candidates"]] == [MIKROTIK_WAN1, MIKROTIK_WAN7]
    assert [c["status"] for c in choice["candidates"]] == [states[MIKROTIK_WAN1], states[MIKROTIK_WAN7]]
    # Only a connected service is asked its address, as miniupnpc does.
    asked = [path_of(r) for r in igd.requests if igd.key(r) == "GetExternalIPAddress"]
    assert asked == [url.split(":2828", 1)[1] for url in (MIKROTIK_WAN1, MIKROTIK_WAN7)
                     if states[url] in ("Connected", "Up")][:len(asked)]
    mapped = s.map("tcp", 8080, 8080, 3600, "d")
    assert mapped.external_port == 8080
    assert path_of([r for r in igd.requests if igd.key(r) == "AddPortMapping"][0]) == chosen.split(":2828", 1)[1]


def test_the_first_connected_service_with_a_public_address_ends_the_ranking():
    igd = mikrotik({MIKROTIK_WAN1: "Connected", MIKROTIK_WAN7: "Connected"},
                   {MIKROTIK_WAN1: "11.22.33.2", MIKROTIK_WAN7: "11.22.33.7"})
    s = session(igd, upnp_url=MIKROTIK_URL)
    assert s.discover().service.control_url == MIKROTIK_WAN1
    assert [igd.key(r) for r in igd.requests] == ["GET /gateway_description.xml", "GetStatusInfo", "GetExternalIPAddress"]
    assert [c["status"] for c in s.choice()["candidates"]] == ["Connected"]  # the second was never asked


def test_a_service_that_fails_is_passed_over():
    states = {MIKROTIK_WAN1: "Connected", MIKROTIK_WAN7: "Connected"}
    igd = mikrotik(states, {MIKROTIK_WAN1: "", MIKROTIK_WAN7: "11.22.33.2"})
    igd.replies["GetStatusInfo"] = lambda r: fault(501) if b"wanipconn-1" in r else status("Connected")
    s = session(igd, upnp_url=MIKROTIK_URL)
    assert s.discover().service.control_url == MIKROTIK_WAN7
    first = s.choice()["candidates"][0]
    assert first["rank"] == 3 and "ActionFailed" in first["status"]


def test_a_service_off_the_gateway_is_dropped_and_never_asked():
    igd = mikrotik({MIKROTIK_WAN1: "Connected", MIKROTIK_WAN7: "Connected"},
                   {MIKROTIK_WAN1: "11.22.33.2", MIKROTIK_WAN7: "11.22.33.2"})
    igd.replies["GET /gateway_description.xml"] = edit(igd.replies["GET /gateway_description.xml"],
                                                       b"<controlURL>/upnp/control/yomkmsnooi/wanipconn-1",
                                                       b"<controlURL>http://192.0.2.66/upnp/control/yomkmsnooi/wanipconn-1")
    s = session(igd, upnp_url=MIKROTIK_URL)
    assert s.discover().service.control_url == MIKROTIK_WAN7
    assert [c["control_url"] for c in s.choice()["candidates"]] == [MIKROTIK_WAN7]
    assert all(b"wanipconn-1" not in r for r in igd.requests)


def test_the_uptime_is_the_chosen_services():
    """Each connection has its own uptime: a service passed over must not look like a restart."""
    igd = mikrotik({MIKROTIK_WAN1: "Disconnected", MIKROTIK_WAN7: "Connected"}, {MIKROTIK_WAN7: "11.22.33.2"})
    igd.replies["GetStatusInfo"] = lambda r: (status("Disconnected") if b"wanipconn-1" in r
                                              else edit(status("Connected"), b"<NewUptime>0<", b"<NewUptime>5000<"))
    s = session(igd, upnp_url=MIKROTIK_URL, uptime=4000)
    s.discover()
    assert s.uptime == 5000  # not the passed-over service's 0, which the UPnP rule would take for a restart


def test_a_kept_service_says_so():
    igd = FakeIgd()
    s = session(igd)
    s.resume(f"http://{GATEWAY}:5000/rootDesc.xml", wire_ssdp.IGD_V2, "urn:schemas-upnp-org:service:WANIPConnection:2",
             f"http://{GATEWAY}:5000/ctl/IPConn", 2)
    choice = s.choice()
    assert choice["control_url"] == f"http://{GATEWAY}:5000/ctl/IPConn" and "kept" in choice["why"]
    assert choice["candidates"] == []


# ------------------------------------------------------------------ 3. leases refused with 402


def arris_402() -> bytes:
    return http_answer(document("arris-nvg578lx-AddAnyPortMapping-402.xml"), "500 Internal Server Error")


def test_the_arris_answer_is_invalid_args():
    with pytest.raises(errors.UpnpInvalidArgs):
        wire_upnp.decode_response(document("arris-nvg578lx-AddAnyPortMapping-402.xml"), "AddAnyPortMapping")


@pytest.mark.parametrize("action, version, lifetime, permanent", [
    ("AddPortMapping", 1, 0, True),  # IGDv1: lease 0 is permanent
    ("AddPortMapping", 2, 604800, False),  # IGDv2 reads lease 0 as a week (as after 725)
    ("AddAnyPortMapping", 2, 604800, False),  # the ARRIS answered AddAnyPortMapping so, after a conflict
])
def test_402_to_a_lease_is_asked_again_with_lease_0(action, version, lifetime, permanent):
    def add(request):
        if re.search(rb"<NewLeaseDuration>0<", request):
            return vector("v2-AddAnyPortMapping" if action == "AddAnyPortMapping" else "v2-AddPortMapping")
        return arris_402()
    igd = FakeIgd({"AddPortMapping": add if action == "AddPortMapping" else fault(718), "AddAnyPortMapping": add},
                  version=version)
    granted = session(igd).map("tcp", 8080, 8080, 3600, "d")
    assert (granted.lifetime, granted.permanent) == (lifetime, permanent)
    leases = [re.search(rb"<NewLeaseDuration>(\d+)<", r).group(1) for r in igd.requests if igd.key(r) == action]
    assert leases == [b"3600", b"0"]  # once more, with lease 0, and no more


def test_402_to_both_leases_reports_both_answers():
    igd = FakeIgd({"AddPortMapping": arris_402()})
    with pytest.raises(errors.UpnpInvalidArgs, match=r"refuses lease 3600 \(InvalidArgs\) and lease 0 \(InvalidArgs\)"):
        session(igd).map("tcp", 8080, 8080, 3600, "d")
    assert len([r for r in igd.requests if igd.key(r) == "AddPortMapping"]) == 2


def test_402_then_another_refusal_is_that_refusal_with_both_named():
    igd = FakeIgd({"AddPortMapping": lambda r: fault(606) if b"<NewLeaseDuration>0<" in r else arris_402()})
    with pytest.raises(errors.UpnpNotAuthorized, match=r"refuses lease 3600 \(InvalidArgs\) and lease 0 "
                       r"\(ActionNotAuthorized\).*UPnP error 606"):
        session(igd).map("tcp", 8080, 8080, 3600, "d")


def test_402_to_lease_0_itself_is_not_asked_again():
    igd = FakeIgd({"AddPortMapping": arris_402()})
    with pytest.raises(errors.UpnpInvalidArgs):
        session(igd).map("tcp", 8080, 8080, 0, "d")
    assert len([r for r in igd.requests if igd.key(r) == "AddPortMapping"]) == 1


def test_local_address_is_the_internal_client_on_a_tr064_router():
    igd = tr064_igd()
    assert session(igd, upnp_url=HUAWEI_URL).internal_client_address() == LOCAL
