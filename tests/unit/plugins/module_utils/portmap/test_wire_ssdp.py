"""SSDP codec: M-SEARCH requests, and miniupnpd's recorded answers and announcements."""

from __future__ import annotations

import pytest

from tests.unit.plugins.module_utils.portmap.fakes_upnp import recorded, vector
from portmap import wire_ssdp


def test_msearch_to_the_group_has_mx_1():
    data = wire_ssdp.encode_msearch(wire_ssdp.IGD_V2)
    assert data == (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n"
                    b"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n\r\n")


def test_unicast_msearch_names_the_gateway_and_has_no_mx():
    data = wire_ssdp.encode_msearch(wire_ssdp.WANIP_V1, host="192.168.77.1")
    assert b"HOST: 192.168.77.1:1900\r\n" in data and b"MX:" not in data
    assert data.endswith(b"ST: urn:schemas-upnp-org:service:WANIPConnection:1\r\n\r\n")


def test_the_eight_search_targets_v2_first_tr064_last():
    assert wire_ssdp.SEARCH_TARGETS == (
        "urn:schemas-upnp-org:device:InternetGatewayDevice:2", "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
        "urn:schemas-upnp-org:service:WANIPConnection:2", "urn:schemas-upnp-org:service:WANIPConnection:1",
        "urn:schemas-upnp-org:service:WANPPPConnection:1", "urn:dslforum-org:device:InternetGatewayDevice:1",
        "urn:dslforum-org:service:WANIPConnection:1", "urn:dslforum-org:service:WANPPPConnection:1")


@pytest.mark.parametrize("bad", ["a\r\nb", ""])
def test_header_injection_is_refused(bad):
    with pytest.raises(ValueError):
        wire_ssdp.encode_msearch(bad)


@pytest.mark.parametrize("name, target", [
    ("v2-ssdp-InternetGatewayDevice-2", wire_ssdp.IGD_V2),
    ("v2-ssdp-InternetGatewayDevice-1", wire_ssdp.IGD_V1),
    ("v2-ssdp-WANIPConnection-2", wire_ssdp.WANIP_V2),
    ("v2-ssdp-WANIPConnection-1", wire_ssdp.WANIP_V1),
    ("v1-ssdp-InternetGatewayDevice-1", wire_ssdp.IGD_V1),
])
def test_miniupnpd_answers(name, target):
    raw = recorded(name)
    message = wire_ssdp.decode(raw)
    assert message is not None
    assert (message.kind, message.target, message.location) == ("response", target, "http://192.168.77.1:5000/rootDesc.xml")
    assert message.usn.startswith("uuid:") and message.usn.endswith("::" + target)
    assert isinstance(message.boot_id, int) and str(message.boot_id) in raw.decode()


def test_notify():
    raw = (b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=120\r\n"
           b"LOCATION: http://192.168.77.1:5000/rootDesc.xml\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n"
           b"USN: uuid:1::upnp:rootdevice\r\nBOOTID.UPNP.ORG: 7\r\n\r\n")
    message = wire_ssdp.decode(raw)
    assert message == wire_ssdp.SsdpMessage("notify", "http://192.168.77.1:5000/rootDesc.xml", "upnp:rootdevice",
                                            "uuid:1::upnp:rootdevice", 7, "ssdp:alive")


@pytest.mark.parametrize("raw", [
    b"", b"\xff\xfe", b"M-SEARCH * HTTP/1.1\r\nST: x\r\nLOCATION: http://a/\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nST: x\r\nLOCATION: http://a/\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nST: x\r\n\r\n",  # no LOCATION
    b"HTTP/1.1 200 OK\r\nLOCATION: http://a/\r\n\r\n",  # no ST
    b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 2000,  # oversized
])
def test_what_is_not_an_answer_is_none(raw):
    assert wire_ssdp.decode(raw) is None


def test_headers_are_case_insensitive_and_a_bad_bootid_is_left_out():
    message = wire_ssdp.decode(b"HTTP/1.1 200 OK\nlocation: http://a/\nst: t\nbootid.upnp.org: -4\n\n")
    assert (message.location, message.target, message.boot_id) == ("http://a/", "t", None)


def test_the_vector_helper_rewrites_the_address():
    assert b"192.0.2.1:5000" in vector("v2-ssdp-InternetGatewayDevice-2")
