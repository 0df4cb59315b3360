"""The simulated IGD's request parsers and SOAP actions under random input: no exception escapes,
every answer is HTTP 200 or a SOAP fault, and the table never holds two mappings of one port."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simgw import SimulatedGateway
from simgw.httpd import Request, parse_request
from simgw.ssdp import parse_search
from test_fuzz import FUZZ

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
ACTIONS = ["GetExternalIPAddress", "GetStatusInfo", "AddPortMapping", "AddAnyPortMapping", "DeletePortMapping",
           "GetSpecificPortMappingEntry", "GetGenericPortMappingEntry", "GetListOfPortMappings", "Nothing"]
ARGUMENTS = ["NewRemoteHost", "NewExternalPort", "NewProtocol", "NewInternalPort", "NewInternalClient", "NewEnabled",
             "NewPortMappingDescription", "NewLeaseDuration", "NewPortMappingIndex", "NewStartPort", "NewEndPort",
             "NewManage", "NewNumberOfPorts"]
VALUES = st.one_of(st.integers(-2, 70000).map(str), st.sampled_from(["TCP", "udp", "*", "", "127.0.0.1", "10.0.0.9",
                                                                    "host.invalid", "1e3", " 80"]),
                   st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="<&"), max_size=20))
CODES: Counter = Counter()


@pytest.fixture(scope="module")
def igd():
    """An IGD that is never bound: its HTTP handler is called directly."""
    gateway = SimulatedGateway(address="127.0.0.1", igd="v2", max_mappings=50)
    yield gateway.igd
    gateway.stop()


@FUZZ
@given(st.binary(max_size=600))
def test_ssdp_search_parser_never_raises(data):
    headers = parse_search(data)
    assert headers is None or "ST" in headers


@FUZZ
@given(st.binary(max_size=600))
def test_http_request_parser_raises_only_value_error(data):
    try:
        request = parse_request(data, "127.0.0.1")
    except ValueError:
        return
    assert request is None or isinstance(request, Request)


@FUZZ
@given(action=st.sampled_from(ACTIONS), arguments=st.dictionaries(st.sampled_from(ARGUMENTS), VALUES, max_size=8),
       header=st.booleans(), noise=st.binary(max_size=40))
def test_soap_actions_answer_200_or_a_fault(igd, action, arguments, header, noise):
    urn = "urn:schemas-upnp-org:service:WANIPConnection:2"
    body = "".join(f"<{k}>{v}</{k}>" for k, v in arguments.items())
    envelope = (f'<?xml version="1.0"?><s:Envelope xmlns:s="{SOAP}"><s:Body><u:{action} xmlns:u="{urn}">{body}'
                f"</u:{action}></s:Body></s:Envelope>").encode()
    if noise:  # sometimes not even XML
        envelope = envelope[: len(envelope) // 2] + noise
    headers = {"SOAPACTION": f'"{urn}#{action}"'} if header else {}
    response = igd.answer_http(Request("POST", "/ctl/IPConn", headers, envelope, "127.0.0.1"))
    assert response.status in (200, 500)
    CODES[response.status] += 1
    held = [(m.protocol, m.external_port) for m in igd.gw.table.values()]
    assert len(held) == len(set(held))
    if len(igd.gw.table) >= 50:
        igd.gw.table.clear()


def test_zz_report():
    print(f"simulated IGD fuzz: answers by HTTP status {dict(CODES)}")
    assert CODES[200] and CODES[500]
