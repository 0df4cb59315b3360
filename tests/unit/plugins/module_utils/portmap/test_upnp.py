"""The UPnP IGD session and its transport, against a scripted IGD answering with miniupnpd's recorded answers."""

from __future__ import annotations

import re

import pytest

from tests.unit.plugins.module_utils.portmap.fakes_upnp import GATEWAY, LOCAL, URL, FakeIgd, body_of, edit, fault, http_answer, vector
from portmap import errors, transport_upnp, wire_ssdp
from portmap.transport_upnp import MAX_RESPONSE, Http
from portmap.epoch import EpochObservation
from portmap.methods import registry as methods
from portmap.methods.igd import NO_PUBLIC_ADDRESS, Granted, IgdSession


def session(igd: FakeIgd, **kwargs) -> IgdSession:
    kwargs.setdefault("timeout", 3.0)
    return IgdSession(GATEWAY, clock=igd.clock, datagrams_factory=igd.datagrams, stream_factory=igd.streams, **kwargs)


def argument(request: bytes, name: str) -> str:
    return re.search(f"<{name}>([^<]*)</{name}>".encode(), request).group(1).decode()


def requests_of(igd: FakeIgd, action: str):
    return [r for r in igd.requests if igd.key(r) == action]


# ------------------------------------------------------------------ discovery


def test_unicast_discovery_sends_every_target_at_once_and_stops_at_the_first_answer():
    igd = FakeIgd()
    s = session(igd)
    start = igd.clock.now
    found = s.discover()
    assert [target for target in wire_ssdp.SEARCH_TARGETS if any(target.encode() in d for d, _address in igd.searches)] == \
        list(wire_ssdp.SEARCH_TARGETS)
    assert {address for _data, address in igd.searches} == {(GATEWAY, 1900)}  # never the group
    assert all(b"HOST: 192.0.2.1:1900" in d for d, _address in igd.searches)
    assert found.service.control_url == f"http://{GATEWAY}:5000/ctl/IPConn"
    assert igd.actions() == ["GET /rootDesc.xml", "GetStatusInfo", "GetExternalIPAddress"]  # connected: its address?
    assert (s.status.status, s.uptime, s.internal_client) == ("Connected", 0, LOCAL)
    assert igd.clock.now - start < 0.1


def test_the_known_gateway_is_asked_by_unicast_first_even_when_multicast_is_allowed():
    igd = FakeIgd()
    session(igd, multicast=True).discover()
    assert {address for _data, address in igd.searches} == {(GATEWAY, 1900)}  # it answered: no multicast


def test_multicast_only_when_allowed_and_the_unicast_search_went_unanswered():
    igd = FakeIgd()
    igd.ssdp = lambda data, address: igd.ssdp_answers if address[0] == "239.255.255.250" and \
        b"InternetGatewayDevice:2" in data else []
    start = igd.clock.now
    found = session(igd, multicast=True).discover()
    assert found.service.control_url == f"http://{GATEWAY}:5000/ctl/IPConn"
    sent = [address for _data, address in igd.searches]
    assert set(sent[:len(wire_ssdp.SEARCH_TARGETS)]) == {(GATEWAY, 1900)}
    assert set(sent[len(wire_ssdp.SEARCH_TARGETS):]) == {("239.255.255.250", 1900)}
    assert all(b"MX: 1" in d for d, address in igd.searches if address[0] == "239.255.255.250")
    assert 1.4 < igd.clock.now - start < 1.6  # half of the 3 s deadline went to the unicast search
    silent = FakeIgd()
    silent.ssdp = igd.ssdp
    with pytest.raises(errors.GatewayTimeout, match=r"\(unicast to 192.0.2.1:1900\)"):
        session(silent).discover()  # a gateway given: never multicast
    assert {address for _data, address in silent.searches} == {(GATEWAY, 1900)}


def test_answers_from_another_host_or_pointing_elsewhere_are_ignored():
    igd = FakeIgd()
    good = vector("v2-ssdp-InternetGatewayDevice-2")
    igd.ssdp_answers = [(0.01, good, ("192.0.2.66", 1900)),
                        (0.02, good.replace(b"192.0.2.1:5000", b"192.0.2.66:5000"), (GATEWAY, 1900)),
                        (0.03, good.replace(b"http://", b"https://"), (GATEWAY, 1900))]
    s = session(igd, multicast=True, timeout=1.0)
    with pytest.raises(errors.GatewayTimeout, match=r"no UPnP IGD on gateway 192.0.2.1 answered the SSDP search"):
        s.discover()
    assert igd.requests == []  # nothing was fetched


def test_upnp_url_skips_discovery():
    igd = FakeIgd()
    s = session(igd, upnp_url=URL)
    assert s.discover().service.version == 2
    assert igd.searches == []


@pytest.mark.parametrize("url, why", [
    ("http://192.0.2.66:5000/rootDesc.xml", "its host is not the gateway 192.0.2.1"),
    ("https://192.0.2.1/rootDesc.xml", "only plain http"),
    ("http://192.0.2.1:notaport/", "not a valid URL"),
])
def test_urls_off_the_gateway_are_refused(url, why):
    igd = FakeIgd()
    with pytest.raises(errors.PortmapError, match=why):
        session(igd, upnp_url=url).discover()
    assert igd.requests == []


def test_a_control_url_on_another_host_is_refused():
    desc = edit(vector("v2-rootDesc"), b"<controlURL>/ctl/IPConn", b"<controlURL>http://192.0.2.66/ctl/IPConn")
    igd = FakeIgd({"GET /rootDesc.xml": desc})
    with pytest.raises(errors.PortmapError, match="no usable UPnP IGD on gateway 192.0.2.1: .*192.0.2.66"):
        session(igd, upnp_url=URL).discover()
    assert igd.actions() == ["GET /rootDesc.xml"]


def test_an_entity_laden_description_is_refused():
    desc = http_answer(b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><root>&a;</root>')
    igd = FakeIgd({"GET /rootDesc.xml": desc})
    with pytest.raises(errors.PortmapError, match="DOCTYPE or an entity declaration refused"):
        session(igd, upnp_url=URL).discover()


def test_the_connected_igd_is_picked():
    disconnected = edit(vector("v2-GetStatusInfo"), b">Connected<", b">Disconnected<")
    second = vector("v2-ssdp-InternetGatewayDevice-1").replace(b"5000/rootDesc.xml", b"5001/rootDesc.xml")
    igd = FakeIgd({"GetStatusInfo": lambda r: disconnected if b":5000" in r else vector("v2-GetStatusInfo"),
                   "GET /rootDesc.xml": lambda r: edit(vector("v2-rootDesc"), b"<controlURL>/ctl/IPConn",
                                                       b"<controlURL>http://192.0.2.1:5001/ctl/IPConn")
                   if b":5001" in r else vector("v2-rootDesc")})
    igd.ssdp_answers = [(0.01, vector("v2-ssdp-InternetGatewayDevice-2"), (GATEWAY, 1900)), (0.05, second, (GATEWAY, 1900))]
    s = session(igd)
    assert s.discover().service.control_url == "http://192.0.2.1:5001/ctl/IPConn"
    assert s.status.status == "Connected"
    # Across IGDs as across services: the disconnected one was ranked too (rank 3), the connected one won (rank 1).
    assert [(c["description_url"], c["rank"]) for c in s.choice()["candidates"]] == [
        (f"http://{GATEWAY}:5000/rootDesc.xml", 3), (f"http://{GATEWAY}:5001/rootDesc.xml", 1)]


def test_a_lone_disconnected_igd_is_still_used():
    igd = FakeIgd({"GetStatusInfo": edit(vector("v2-GetStatusInfo"), b">Connected<", b">Disconnected<")})
    s = session(igd, timeout=1.0)
    assert s.discover().service.version == 2 and s.status.status == "Disconnected"


# ------------------------------------------------------------------ actions


def test_external_address():
    igd = FakeIgd()
    assert session(igd).external_address() == "11.22.33.2"


@pytest.mark.parametrize("address", ["", "100.64.0.2", "192.168.1.1", "garbage"])
def test_no_public_address(address):
    answer = edit(vector("cgnat-GetExternalIPAddress"), b"<NewExternalIPAddress>", f"<NewExternalIPAddress>{address}".encode())
    igd = FakeIgd({"GetExternalIPAddress": answer})
    with pytest.raises(errors.NoPublicAddress, match="the gateway has no public address: is there a second NAT upstream"):
        session(igd).external_address()


def test_map_sends_this_hosts_address_and_reports_the_grant():
    igd = FakeIgd()
    granted = session(igd).map("tcp", 8080, 8080, 3600, "web server")
    assert granted == Granted("tcp", 8080, 8080, LOCAL, 3600, False, "web server")
    (request,) = requests_of(igd, "AddPortMapping")
    assert (argument(request, "NewInternalClient"), argument(request, "NewLeaseDuration"),
            argument(request, "NewProtocol"), argument(request, "NewPortMappingDescription")) == (LOCAL, "3600", "TCP", "web server")
    assert b'SOAPAction: "urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping"' in request
    assert request.startswith(b"POST /ctl/IPConn HTTP/1.1\r\nHost: 192.0.2.1:5000\r\n")


def test_source_address_is_the_internal_client():
    igd = FakeIgd()
    granted = session(igd, source_address="192.0.2.77").map("udp", 53, 53, 60, "dns")
    assert granted.internal_client == "192.0.2.77"


def test_igdv2_cap_is_reported_as_granted():
    igd = FakeIgd()
    granted = session(igd).map("tcp", 8080, 8080, 10 ** 6, "d")
    assert granted.lifetime == 604800 and not granted.permanent
    assert argument(requests_of(igd, "AddPortMapping")[0], "NewLeaseDuration") == "604800"


def test_igdv1_is_not_capped():
    igd = FakeIgd(version=1)
    assert session(igd).map("tcp", 8080, 8080, 10 ** 6, "d").lifetime == 10 ** 6


@pytest.mark.parametrize("version, lifetime, permanent", [
    (1, 0, True),  # IGDv1: lease 0 is permanent
    (2, 604800, False),  # IGDv2 reads lease 0 as its cap of 604800 s: that is what it holds
])
def test_only_permanent_leases(version, lifetime, permanent):
    igd = FakeIgd({"AddPortMapping": lambda r: fault(725, "OnlyPermanentLeasesSupported")
                   if argument(r, "NewLeaseDuration") != "0" else vector("v2-AddPortMapping")}, version=version)
    granted = session(igd).map("tcp", 8080, 8080, 3600, "d")
    assert (granted.lifetime, granted.permanent) == (lifetime, permanent)
    assert [argument(r, "NewLeaseDuration") for r in requests_of(igd, "AddPortMapping")] == ["3600", "0"]


def test_permanent_only_and_refusing_zero_is_an_error():
    igd = FakeIgd({"AddPortMapping": lambda r: fault(725) if argument(r, "NewLeaseDuration") != "0" else fault(402)})
    with pytest.raises(errors.UpnpInvalidArgs, match=r"refuses lease 3600 \(OnlyPermanentLeasesSupported\) and lease 0"):
        session(igd).map("tcp", 8080, 8080, 3600, "d")


def test_a_port_that_must_not_change_names_its_holder():
    igd = FakeIgd({"AddPortMapping": vector("v2-AddPortMapping-held-718")})
    with pytest.raises(errors.UpnpConflict) as caught:
        session(igd).map("tcp", 8080, 8080, 3600, "d", exact=True)
    message = str(caught.value)
    assert ("external port 8080/tcp on gateway 192.0.2.1 (UPnP IGD at http://192.0.2.1:5000/ctl/IPConn) "
            "is held by 192.168.77.10:8090 ('portmap vector')") in message
    assert "ConflictInMappingEntry (UPnP error 718)" in message
    assert igd.actions()[-1] == "GetSpecificPortMappingEntry"


def test_a_suggested_port_moves_with_add_any_port_mapping_on_igdv2():
    reserved = edit(vector("v2-AddAnyPortMapping"), b">8080<", b">8085<")
    igd = FakeIgd({"AddPortMapping": vector("v2-AddPortMapping-held-718"), "AddAnyPortMapping": reserved})
    granted = session(igd).map("tcp", 8080, 8080, 3600, "d")
    assert granted.external_port == 8085
    assert argument(requests_of(igd, "AddAnyPortMapping")[0], "NewExternalPort") == "8080"


def test_a_suggested_port_moves_to_the_following_ones_on_igdv1():
    igd = FakeIgd({"AddPortMapping": lambda r: vector("v2-AddPortMapping-held-718")
                   if argument(r, "NewExternalPort") in ("8080", "8081") else vector("v1-AddPortMapping")}, version=1)
    granted = session(igd).map("tcp", 8080, 8080, 3600, "d")
    assert granted.external_port == 8082
    assert "AddAnyPortMapping" not in igd.actions()


def test_igdv1_port_search_ends_at_the_deadline():
    igd = FakeIgd({"AddPortMapping": vector("v2-AddPortMapping-held-718")}, version=1)
    igd.delay = 0.05
    start = igd.clock.now
    with pytest.raises(errors.GatewayTimeout):
        session(igd, timeout=1.0).map("tcp", 8080, 8080, 3600, "d")
    assert igd.clock.now - start <= 1.0 + 1e-9
    assert 3 < len(requests_of(igd, "AddPortMapping")) < 20


def test_no_public_address_on_map():
    igd = FakeIgd({"AddPortMapping": vector("cgnat-AddPortMapping-501"),
                   "GetExternalIPAddress": vector("cgnat-GetExternalIPAddress")})
    with pytest.raises(errors.NoPublicAddress) as caught:
        session(igd).map("tcp", 8080, 8080, 3600, "d")
    assert str(caught.value).startswith(NO_PUBLIC_ADDRESS)
    assert "ActionFailed (UPnP error 501)" in str(caught.value)


def test_action_failed_with_a_public_address_stays_action_failed():
    igd = FakeIgd({"AddPortMapping": vector("cgnat-AddPortMapping-501")})
    with pytest.raises(errors.UpnpActionFailed, match="AddPortMapping of 8080/tcp to 192.0.2.10:8080 at http://192.0.2.1:5000"):
        session(igd).map("tcp", 8080, 8080, 3600, "d")


def test_uptime_is_the_epoch():
    """The session keeps the uptime GetStatusInfo read; the UPnP method's rule says what it shows (a restart when it
    went back, or did not keep up with the clock), as for NAT-PMP's epoch."""
    igd = FakeIgd({"GetStatusInfo": edit(vector("v2-GetStatusInfo"), b">0<", b">5<")})
    s = session(igd, uptime=100)
    s.status_info()
    assert s.uptime == 5
    rule = methods.load("upnp").lost_state
    assert rule(EpochObservation(100, 1000.0), EpochObservation(5, 1010.0))
    assert not rule(EpochObservation(4, 1000.0), EpochObservation(5, 1001.0))


def test_delete():
    igd = FakeIgd()
    assert session(igd).delete("tcp", 8080) is True
    igd = FakeIgd({"DeletePortMapping": fault(714, "NoSuchEntryInArray")})
    assert session(igd).delete("tcp", 8080) is False


def test_specific_entry():
    igd = FakeIgd()
    assert session(igd).specific_entry("tcp", 8080).internal_client == "192.168.77.10"
    igd = FakeIgd({"GetSpecificPortMappingEntry": vector("v2-GetSpecificPortMappingEntry-714")})
    assert session(igd).specific_entry("tcp", 9999) is None


def test_listing_igdv2():
    igd = FakeIgd({"GetListOfPortMappings": lambda r: vector("v2-GetListOfPortMappings")
                   if argument(r, "NewProtocol") == "TCP" else fault(730, "PortMappingNotFound")})
    entries, cut = session(igd).list_mappings()
    assert [e.external_port for e in entries] == [8080, 8083, 8081] and not cut


def test_listing_igdv1_entry_by_entry_to_713():
    igd = FakeIgd({"GetGenericPortMappingEntry": lambda r: vector("v2-GetGenericPortMappingEntry-0")
                   if argument(r, "NewPortMappingIndex") in ("0", "1") else vector("v2-GetGenericPortMappingEntry-713")},
                  version=1)
    entries, cut = session(igd).list_mappings()
    assert len(entries) == 2 and not cut
    assert igd.actions().count("GetGenericPortMappingEntry") == 3


def test_listing_is_cut_at_the_limit():
    igd = FakeIgd({"GetGenericPortMappingEntry": vector("v2-GetGenericPortMappingEntry-0")}, version=1)
    entries, cut = session(igd).list_mappings(limit=5)
    assert len(entries) == 5 and cut


def test_listing_is_cut_at_its_time_and_says_so():
    igd = FakeIgd({"GetGenericPortMappingEntry": vector("v2-GetGenericPortMappingEntry-0")}, version=1)
    igd.delay = 0.25  # every answer takes a quarter of a second
    start = igd.clock.now
    entries, cut = session(igd, timeout=30.0).list_mappings(limit=1024, seconds=2.0)
    assert cut and 0 < len(entries) < 1024
    assert igd.clock.now - start <= 2.0 + 0.26  # the listing's own time, not the session's 30 s


def test_an_http_error_is_named():
    igd = FakeIgd({"GetExternalIPAddress": http_answer(b"nope", "404 Not Found")})
    with pytest.raises(errors.UpnpProtocolError, match="GetExternalIPAddress at http://192.0.2.1:5000/ctl/IPConn: HTTP 404"):
        session(igd).external_address()


# ------------------------------------------------------------------ HTTP within the deadline


def http(igd: FakeIgd) -> Http:
    return Http(GATEWAY, clock=igd.clock, stream_factory=igd.streams)


def test_a_slow_drip_answer_is_bounded_by_the_deadline():
    igd = FakeIgd()
    igd.piece, igd.delay = 1, 0.01
    start = igd.clock.now
    with pytest.raises(errors.GatewayTimeout, match="within the deadline"):
        http(igd).request("GET", URL, start + 2.0)
    assert igd.clock.now - start <= 2.0 + 1e-9


def test_a_stall_mid_answer_times_out():
    igd = FakeIgd()
    igd.stall, igd.piece = 100, 50
    with pytest.raises(errors.GatewayTimeout):
        http(igd).request("GET", URL, igd.clock.now + 1.0)


def test_the_answer_is_read_in_pieces():
    igd = FakeIgd()
    igd.piece = 7
    response = http(igd).request("GET", URL, igd.clock.now + 1.0)
    assert response.status == 200 and response.body == body_of(vector("v2-rootDesc"))


@pytest.mark.parametrize("answer", [
    http_answer(b"x" * 10, extra="").replace(b"Content-Length: 10", f"Content-Length: {MAX_RESPONSE + 1}".encode()),
    b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (MAX_RESPONSE + 9000),
    b"HTTP/1.1 200 OK\r\n" + b"X-Pad: y\r\n" * 2000,
])
def test_oversized_answers_are_refused(answer):
    igd = FakeIgd({"GET /rootDesc.xml": answer})
    with pytest.raises(errors.UpnpProtocolError, match="octets"):
        http(igd).request("GET", URL, igd.clock.now + 1.0)


@pytest.mark.parametrize("answer, match", [
    (b"", "closed the connection before answering"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", "closed the connection in the middle"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "no HTTP status line"),
])
def test_broken_answers(answer, match):
    igd = FakeIgd({"GET /rootDesc.xml": answer})
    with pytest.raises(errors.UpnpProtocolError, match=match):
        http(igd).request("GET", URL, igd.clock.now + 1.0)


def test_chunked_and_close_delimited_answers():
    body = body_of(vector("v2-rootDesc"))
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
        b"%x\r\n%s\r\n" % (len(body[i:i + 500]), body[i:i + 500]) for i in range(0, len(body), 500)) + b"0\r\n\r\n"
    igd = FakeIgd({"GET /rootDesc.xml": chunked})
    assert http(igd).request("GET", URL, igd.clock.now + 1.0).body == body
    igd = FakeIgd({"GET /rootDesc.xml": b"HTTP/1.0 200 OK\r\n\r\n" + body})
    assert http(igd).request("GET", URL, igd.clock.now + 1.0).body == body


def test_a_request_after_the_deadline_is_not_sent():
    igd = FakeIgd()
    with pytest.raises(errors.GatewayTimeout):
        http(igd).request("GET", URL, igd.clock.now)
    assert igd.requests == []


HEADS = ["v2-GetExternalIPAddress", "v2-AddPortMapping", "v2-AddPortMapping-held-718", "v1-rootDesc", "v2-GetStatusInfo"]


def both_ways(answer: bytes) -> list:
    """What Http makes of ``answer`` with the header dict and without (status, reason, body), or the error."""
    out = []
    for answer_headers in (True, False):
        igd = FakeIgd({"GET /rootDesc.xml": answer})
        try:
            status, reason, headers, body = http(igd).exchange("GET", URL, igd.clock.now + 1.0, answer_headers=answer_headers)
            assert headers is not None or not answer_headers
            out.append((status, reason, body))
        except errors.PortmapError as exc:
            out.append((type(exc), str(exc)))
    return out


@pytest.mark.parametrize("name", HEADS)
def test_miniupnpd_heads_are_read_without_the_header_dict(name, monkeypatch):
    answer = vector(name)
    head = answer.split(b"\r\n\r\n", 1)[0]
    status, reason, headers = transport_upnp._parse_head(head, "w", "x")  # pylint: disable=protected-access
    assert transport_upnp._plain_framing(head) == (status, reason, headers["content-length"])  # pylint: disable=protected-access
    monkeypatch.setattr(transport_upnp, "_parse_head", lambda *_args: pytest.fail("the header dict was built"))
    igd = FakeIgd({"GET /rootDesc.xml": answer})
    got = http(igd).exchange("GET", URL, igd.clock.now + 1.0)
    assert got == (status, reason, None, body_of(answer))


BODY = b"hello, and more"  # Content-Length 5: "hello"
PLAIN_HEADS = [
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nServer: x",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\ncontent-LENGTH: 5\r\nServer: x",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length:   5  \r\nServer: x",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nContent-Length: 9",  # the first one counts
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\nServer: x",
    b"HTTP/1.1 200\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nServer: x",
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nServer: x",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nServer: x",  # read to the end
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5x\r\nServer: x",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 99999999999\r\nServer: x",
]
OTHER_HEADS = [  # read through the header dict
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n Content-Length: 5\r\nServer: x",  # the dict strips the name: still the length
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length : 5\r\nServer: x",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length:\t5\r\nServer: x",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nServer: \xe9",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nServer: x\ry",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nServer: x\nContent-Length: 3",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nServer_Name: x",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nno colon here",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nTransfer-Encoding: chunked",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\ntransfer-encoding: identity",
    b"HTTP/2.0 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nServer: x",
    b"HTTP/1.1 099 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nServer: x",
    b"HTTP/1.1 200OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nServer: x",
    b"\r\nHTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nServer: x",
]


@pytest.mark.parametrize("head, plain", [(head, True) for head in PLAIN_HEADS] + [(head, False) for head in OTHER_HEADS])
def test_a_head_is_read_the_same_with_or_without_the_header_dict(head, plain):
    assert (transport_upnp._plain_framing(head) is not None) is plain  # pylint: disable=protected-access
    with_dict, without = both_ways(head + b"\r\n\r\n" + BODY)
    assert with_dict == without


# ------------------------------------------------------------------ Client(method="upnp")


def upnp_client(igd: FakeIgd, tmp_path, **kwargs):
    from portmap.client import Client  # pylint: disable=import-outside-toplevel
    return Client(GATEWAY, method="upnp", lock_path=str(tmp_path / "lock"), clock=igd.clock,
                  igd=session(igd, upnp_url=URL), **kwargs)


def test_client_public_address_and_map(tmp_path):
    igd = FakeIgd()
    client = upnp_client(igd, tmp_path, description="web")
    public = client.public_address()
    assert (public.gateway, public.address, public.method, public.epoch, public.rebooted) == (GATEWAY, "11.22.33.2", "upnp", 0, False)
    granted = client.map("tcp", 8080, 8080, 3600)
    assert (granted.method, granted.external_port, granted.lifetime, granted.public_address, granted.nonce,
            granted.permanent) == ("upnp", 8080, 3600, "11.22.33.2", "", False)
    assert argument(requests_of(igd, "AddPortMapping")[0], "NewPortMappingDescription") == "web"
    assert client.method == "upnp"


def test_client_reports_a_permanent_lease(tmp_path):
    igd = FakeIgd({"AddPortMapping": lambda r: fault(725) if argument(r, "NewLeaseDuration") != "0"
                   else vector("v2-AddPortMapping")}, version=1)
    granted = upnp_client(igd, tmp_path).map("udp", 5353, 5353, 600)
    assert (granted.lifetime, granted.permanent, granted.external_port) == (0, True, 5353)


def test_client_delete_finds_this_hosts_mapping(tmp_path):
    mine = edit(vector("v2-GetSpecificPortMappingEntry"), b"192.168.77.10", LOCAL.encode())
    mine = edit(mine, b">8090<", b">8080<")
    igd = FakeIgd({"GetSpecificPortMappingEntry": mine})
    deleted = upnp_client(igd, tmp_path).delete("tcp", 8080)
    assert (deleted.external_port, deleted.lifetime, deleted.method) == (0, 0, "upnp")
    (request,) = requests_of(igd, "DeletePortMapping")
    assert argument(request, "NewExternalPort") == "8080"


def test_client_delete_never_removes_another_hosts_mapping(tmp_path):
    igd = FakeIgd()  # 8080 is held by 192.168.77.10, not by this host (192.0.2.10); the table holds none of ours
    upnp_client(igd, tmp_path).delete("tcp", 8080)
    assert "DeletePortMapping" not in igd.actions()


def test_client_delete_by_external_port(tmp_path):
    mine = edit(edit(vector("v2-GetSpecificPortMappingEntry"), b"192.168.77.10", LOCAL.encode()), b">8090<", b">8080<")
    igd = FakeIgd({"GetSpecificPortMappingEntry": mine})
    upnp_client(igd, tmp_path).delete("tcp", 8080, external_port=9000)
    assert [argument(r, "NewExternalPort") for r in requests_of(igd, "GetSpecificPortMappingEntry")] == ["9000"]
    assert [argument(r, "NewExternalPort") for r in requests_of(igd, "DeletePortMapping")] == ["9000"]


@pytest.mark.parametrize("holder", ["another host", "another internal port"])
def test_client_delete_by_external_port_never_removes_what_is_not_this_mapping(tmp_path, holder):
    """The port the ledger names may since be another host's (the gateway restarted), or this host's
    mapping of another internal port: it is left alone."""
    held = vector("v2-GetSpecificPortMappingEntry")  # 192.168.77.10:8090, not this host (192.0.2.10)
    if holder == "another internal port":
        held = edit(held, b"192.168.77.10", LOCAL.encode())
    igd = FakeIgd({"GetSpecificPortMappingEntry": held})
    upnp_client(igd, tmp_path).delete("tcp", 8080, external_port=9000)
    assert "DeletePortMapping" not in igd.actions()


def test_client_no_public_address(tmp_path):
    igd = FakeIgd({"GetExternalIPAddress": vector("cgnat-GetExternalIPAddress")})
    with pytest.raises(errors.NoPublicAddress):
        upnp_client(igd, tmp_path).public_address()


def test_client_upnp_url_names_the_gateway(tmp_path):
    from portmap.client import Client  # pylint: disable=import-outside-toplevel
    client = Client(method="upnp", upnp_url="http://192.0.2.5:5000/rootDesc.xml", lock_path=str(tmp_path / "lock"))
    assert (client.gateway, client.found_in, client.active.name) == ("192.0.2.5", "explicit", "upnp")
    assert client.active._igd().multicast is False  # pylint: disable=protected-access
    assert "upnp" not in Client(GATEWAY, lock_path=str(tmp_path / "lock"))._speakers  # pylint: disable=protected-access
