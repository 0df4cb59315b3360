"""UPnP IGD documents: miniupnpd's recorded descriptions and SOAP answers, envelopes, faults, the safety checks."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from tests.unit.plugins.module_utils.portmap.fakes_upnp import body_of, vector
from portmap import errors, wire_upnp

URL = "http://192.0.2.1:5000/rootDesc.xml"
SOAP_STYLE = b' s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"'


def answer(name: str, action: str) -> dict:
    return wire_upnp.decode_response(body_of(vector(name)), action)


# ------------------------------------------------------------------ descriptions


def test_miniupnpd_igdv2_description():
    found = wire_upnp.parse_description(body_of(vector("v2-rootDesc")), URL)
    assert found.device_type == "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
    assert found.service == wire_upnp.Service("urn:schemas-upnp-org:service:WANIPConnection:2",
                                              "http://192.0.2.1:5000/ctl/IPConn", 2)


def test_miniupnpd_igdv1_description():
    found = wire_upnp.parse_description(body_of(vector("v1-rootDesc")), URL)
    assert found.device_type.endswith("InternetGatewayDevice:1")
    assert (found.service.service_type, found.service.version) == ("urn:schemas-upnp-org:service:WANIPConnection:1", 1)


def description(services: str, base: str = "") -> bytes:
    return (f'<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0">{base}<device>'
            f"<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><deviceList><device>"
            f"<serviceList>{services}</serviceList></device></deviceList></device></root>").encode()


def service(kind: str, control: str) -> str:
    return f"<service><serviceType>urn:schemas-upnp-org:service:{kind}</serviceType><controlURL>{control}</controlURL></service>"


def test_v2_is_preferred_then_ip_over_ppp():
    doc = description(service("WANPPPConnection:1", "/ppp") + service("WANIPConnection:1", "/ip1") +
                      service("WANIPConnection:2", "/ip2"))
    assert wire_upnp.parse_description(doc, URL).service.control_url == "http://192.0.2.1:5000/ip2"
    doc = description(service("WANPPPConnection:1", "/ppp") + service("WANIPConnection:1", "/ip1"))
    assert wire_upnp.parse_description(doc, URL).service.control_url == "http://192.0.2.1:5000/ip1"
    doc = description(service("WANPPPConnection:1", "/ppp") + service("Layer3Forwarding:1", "/l3f"))
    assert wire_upnp.parse_description(doc, URL).service.control_url == "http://192.0.2.1:5000/ppp"


def test_control_url_is_resolved_against_urlbase():
    doc = description(service("WANIPConnection:1", "ctl/ip"), "<URLBase>http://192.0.2.1:49000/base/</URLBase>")
    assert wire_upnp.parse_description(doc, URL).service.control_url == "http://192.0.2.1:49000/base/ctl/ip"
    doc = description(service("WANIPConnection:1", "http://192.0.2.1:1/abs"))
    assert wire_upnp.parse_description(doc, URL).service.control_url == "http://192.0.2.1:1/abs"


@pytest.mark.parametrize("doc", [
    description(service("Layer3Forwarding:1", "/l3f")),
    description(service("WANIPConnection:1", "")),
    b"<notroot/>",
    b"<root><unclosed></root>",
    b"",
])
def test_descriptions_without_a_usable_service(doc):
    with pytest.raises(errors.MalformedPacket):
        wire_upnp.parse_description(doc, URL)


# ------------------------------------------------------------------ safety


@pytest.mark.parametrize("doc", [
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><root>&lol2;</root>',
    b'<?xml version="1.0"?><!doctype root SYSTEM "http://192.0.2.9/x.dtd"><root/>',
    b'<root><! ENTITY x SYSTEM "file:///etc/passwd"></root>',
])
def test_doctype_and_entities_are_refused_before_parsing(doc, monkeypatch):
    def never(*_args):
        raise AssertionError("the parser ran")
    monkeypatch.setattr(ElementTree, "fromstring", never)
    with pytest.raises(errors.MalformedPacket, match="DOCTYPE or an entity"):
        wire_upnp.parse_document(doc)


def test_documents_over_64_kib_are_refused():
    doc = description(service("WANIPConnection:1", "/ip") + "<!--" + "x" * 65536 + "-->")
    with pytest.raises(errors.MalformedPacket, match="65536"):
        wire_upnp.parse_description(doc, URL)


def test_argument_values_are_escaped():
    body, _soap_action = wire_upnp.encode_action(wire_upnp.SERVICE_PREFIXES[0] + "1", wire_upnp.add_port_mapping(
        "tcp", 8080, 8080, "192.0.2.10", 60, "a<b>&c</NewPortMappingDescription><x>"))
    assert b"a&lt;b&gt;&amp;c&lt;/NewPortMappingDescription&gt;&lt;x&gt;" in body
    values = {child.tag: child.text for child in ElementTree.fromstring(body).iter()}
    assert values["NewPortMappingDescription"] == "a<b>&c</NewPortMappingDescription><x>"


def test_a_bad_service_type_or_action_name_is_refused():
    with pytest.raises(ValueError):
        wire_upnp.encode_action('x" onload="', wire_upnp.get_status_info())
    with pytest.raises(ValueError):
        wire_upnp.encode_action("urn:x:1", wire_upnp.Action("Add><x"))


# ------------------------------------------------------------------ envelopes


def test_add_port_mapping_envelope_as_miniupnpd_takes_it():
    body, soap_action = wire_upnp.encode_action("urn:schemas-upnp-org:service:WANIPConnection:2", wire_upnp.add_port_mapping(
        "tcp", 8080, 8081, "192.0.2.10", 3600, "web"))
    assert soap_action == '"urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping"'
    assert body == (
        b'<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        b's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
        b'<u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2"><NewRemoteHost></NewRemoteHost>'
        b"<NewExternalPort>8080</NewExternalPort><NewProtocol>TCP</NewProtocol><NewInternalPort>8081</NewInternalPort>"
        b"<NewInternalClient>192.0.2.10</NewInternalClient><NewEnabled>1</NewEnabled>"
        b"<NewPortMappingDescription>web</NewPortMappingDescription><NewLeaseDuration>3600</NewLeaseDuration>"
        b"</u:AddPortMapping></s:Body></s:Envelope>\r\n")


@pytest.mark.parametrize("action, names", [
    (wire_upnp.get_external_ip_address(), []),
    (wire_upnp.get_status_info(), []),
    (wire_upnp.add_port_mapping("udp", 1, 2, "h", 0, "d", any_port=True),
     ["NewRemoteHost", "NewExternalPort", "NewProtocol", "NewInternalPort", "NewInternalClient", "NewEnabled",
      "NewPortMappingDescription", "NewLeaseDuration"]),
    (wire_upnp.delete_port_mapping("udp", 5), ["NewRemoteHost", "NewExternalPort", "NewProtocol"]),
    (wire_upnp.get_specific_port_mapping_entry("tcp", 5), ["NewRemoteHost", "NewExternalPort", "NewProtocol"]),
    (wire_upnp.get_generic_port_mapping_entry(3), ["NewPortMappingIndex"]),
    (wire_upnp.get_list_of_port_mappings("tcp"), ["NewStartPort", "NewEndPort", "NewProtocol", "NewManage", "NewNumberOfPorts"]),
])
def test_every_action_envelope_parses_with_its_arguments_in_order(action, names):
    body, _soap_action = wire_upnp.encode_action("urn:schemas-upnp-org:service:WANIPConnection:1", action)
    element = ElementTree.fromstring(body)[0][0]
    assert element.tag == "{urn:schemas-upnp-org:service:WANIPConnection:1}" + action.name
    assert [child.tag for child in element] == names


# ------------------------------------------------------------------ answers


def test_recorded_answers():
    assert answer("v2-GetExternalIPAddress", "GetExternalIPAddress") == {"NewExternalIPAddress": "11.22.33.2"}
    assert wire_upnp.status_info(answer("v2-GetStatusInfo", "GetStatusInfo")) == wire_upnp.StatusInfo(
        "Connected", "ERROR_NONE", 0)
    assert answer("v2-AddPortMapping", "AddPortMapping") == {}
    assert wire_upnp.reserved_port(answer("v2-AddAnyPortMapping", "AddAnyPortMapping")) == 8080
    assert answer("v2-DeletePortMapping", "DeletePortMapping") == {}
    assert answer("cgnat-GetExternalIPAddress", "GetExternalIPAddress") == {"NewExternalIPAddress": ""}


def test_recorded_entries():
    entry = wire_upnp.specific_entry(answer("v2-GetSpecificPortMappingEntry", "GetSpecificPortMappingEntry"), "tcp", 8080)
    assert entry == wire_upnp.PortMappingEntry("tcp", 8080, 8090, "192.168.77.10", True, "portmap vector", 3600)
    generic = wire_upnp.generic_entry(answer("v2-GetGenericPortMappingEntry-0", "GetGenericPortMappingEntry"))
    assert generic == entry
    listing = wire_upnp.port_listing(answer("v2-GetListOfPortMappings", "GetListOfPortMappings"))
    assert [(e.external_port, e.internal_port, e.lease) for e in listing] == [(8080, 8090, 3600), (8083, 8083, 3600),
                                                                              (8081, 8081, 604800)]
    assert {e.internal_client for e in listing} == {"192.168.77.10"}
    v1 = wire_upnp.port_listing(answer("v1-GetListOfPortMappings", "GetListOfPortMappings"))
    assert [(e.protocol, e.external_port, e.lease) for e in v1] == [("tcp", 8080, 604800)]


def test_a_port_listing_with_an_entity_is_refused():
    listing = ('<![CDATA[<!DOCTYPE p [<!ENTITY a "b">]><p:PortMappingList xmlns:p="x">&a;</p:PortMappingList>]]>')
    body = (f'<s:Envelope xmlns:s="{wire_upnp.SOAP_ENVELOPE}"><s:Body><u:GetListOfPortMappingsResponse xmlns:u="x">'
            f"<NewPortListing>{listing}</NewPortListing></u:GetListOfPortMappingsResponse></s:Body></s:Envelope>").encode()
    with pytest.raises(errors.MalformedPacket, match="DOCTYPE"):
        wire_upnp.port_listing(wire_upnp.decode_response(body, "GetListOfPortMappings"))


@pytest.mark.parametrize("name, action, cls, code, text", [
    ("v2-AddPortMapping-other-client-718", "AddPortMapping", errors.UpnpConflict, 718, "ConflictInMappingEntry"),
    ("v2-AddPortMapping-held-718", "AddPortMapping", errors.UpnpConflict, 718, "ConflictInMappingEntry"),
    ("v2-AddAnyPortMapping-other-client-606", "AddAnyPortMapping", errors.UpnpNotAuthorized, 606, "ActionNotAuthorized"),
    ("v2-GetSpecificPortMappingEntry-714", "GetSpecificPortMappingEntry", errors.UpnpNoSuchEntry, 714, "NoSuchEntryInArray"),
    ("v2-GetGenericPortMappingEntry-713", "GetGenericPortMappingEntry", errors.UpnpNoSuchEntry, 713,
     "SpecifiedArrayIndexInvalid"),
    ("cgnat-AddPortMapping-501", "AddPortMapping", errors.UpnpActionFailed, 501, "ActionFailed"),
])
def test_recorded_faults(name, action, cls, code, text):
    assert vector(name).startswith(b"HTTP/1.1 500 ")
    with pytest.raises(cls) as caught:
        answer(name, action)
    assert (caught.value.code, caught.value.name, caught.value.method) == (code, text, "upnp")
    assert str(caught.value) == f"gateway answered {text} (UPnP error {code})"
    assert isinstance(caught.value, errors.PortmapError)


@pytest.mark.parametrize("code, name", sorted(wire_upnp.FAULT_NAMES.items()))
def test_every_fault_has_its_name(code, name):
    error = wire_upnp.fault_error(code, "AddPortMapping of 8080/tcp")
    assert error.name == name and f"(UPnP error {code})" in str(error) and str(error).startswith("AddPortMapping of 8080/tcp: ")


def test_the_named_faults_are_the_igd_ones():
    assert {402, 501, 606, 713, 714, 715, 716, 718, 724, 725, 726, 727, 728, 729, 730, 733} <= set(wire_upnp.FAULT_NAMES)
    assert wire_upnp.fault_error(899).name == "UPnPError899"


@pytest.mark.parametrize("body", [
    b'<s:Envelope xmlns:s="x"><s:Body><s:Fault><faultcode>s:Client</faultcode></s:Fault></s:Body></s:Envelope>',
    b'<s:Envelope xmlns:s="x"><s:Body><s:Fault><UPnPError><errorCode>x1</errorCode></UPnPError></s:Fault></s:Body></s:Envelope>',
    b'<s:Envelope xmlns:s="x"><s:Body><u:OtherResponse xmlns:u="y"/></s:Body></s:Envelope>',
    b'<s:Envelope xmlns:s="x"></s:Envelope>',
    b"<html>500</html>",
])
def test_malformed_answers(body):
    with pytest.raises(errors.MalformedPacket):
        wire_upnp.decode_response(body, "AddPortMapping")


# ------------------------------------------------------------------ the plain-answer path

SUCCESSES = [("v2-GetExternalIPAddress", "GetExternalIPAddress"), ("cgnat-GetExternalIPAddress", "GetExternalIPAddress"),
             ("v2-GetStatusInfo", "GetStatusInfo"), ("cgnat-GetStatusInfo", "GetStatusInfo"),
             ("v2-AddPortMapping", "AddPortMapping"), ("v1-AddPortMapping", "AddPortMapping"),
             ("v2-AddPortMapping-lease0", "AddPortMapping"), ("v2-AddAnyPortMapping", "AddAnyPortMapping"),
             ("v2-DeletePortMapping", "DeletePortMapping"), ("v2-DeletePortMapping-again", "DeletePortMapping"),
             ("v2-GetSpecificPortMappingEntry", "GetSpecificPortMappingEntry"),
             ("v2-GetGenericPortMappingEntry-0", "GetGenericPortMappingEntry")]


def outcome(decode, data, action):
    try:
        return decode(data, action)
    except errors.PortmapError as exc:
        return type(exc), str(exc)


@pytest.mark.parametrize("name, action", SUCCESSES)
def test_miniupnpd_answers_take_the_plain_path_and_mean_what_the_tree_says(name, action, monkeypatch):
    data = body_of(vector(name))
    expected = wire_upnp._tree_response(data, action)  # pylint: disable=protected-access
    monkeypatch.setattr(ElementTree, "fromstring", lambda *_args: pytest.fail("the parser ran"))
    assert wire_upnp.decode_response(data, action) == expected


def plain(text: bytes = b"11.22.33.2", envelope: bytes = b"s", response: bytes = b"u", style: bytes = SOAP_STYLE,
          head: bytes = b'<?xml version="1.0"?>\r\n', inner: bytes = b"", tail: bytes = b"\r\n") -> bytes:
    return (head + b"<%s:Envelope xmlns:%s=\"http://schemas.xmlsoap.org/soap/envelope/\"%s><%s:Body>"
            b'<%s:GetExternalIPAddressResponse xmlns:%s="urn:schemas-upnp-org:service:WANIPConnection:2">'
            b"<NewExternalIPAddress>%s</NewExternalIPAddress>%s</%s:GetExternalIPAddressResponse></%s:Body></%s:Envelope>"
            % (envelope, envelope, style.replace(b"s:", envelope + b":"), envelope, response, response, text, inner,
               response, envelope, envelope) + tail)


@pytest.mark.parametrize("data, short", [
    (plain(), True),
    (plain(head=b" \n\t"), True),  # no declaration: white space may come first
    (plain(head=b'<?xml version="1.0" encoding="UTF-8"?>'), True),
    (plain(envelope=b"soap", response=b"soap", style=b""), True),
    (plain(text=b" 11.22.33.2\n\t", inner=b" \n<NewExternalIPAddress>7</NewExternalIPAddress>"), True),  # the last one
    (plain(text=b"a>b"), False),
    (plain(text=b"&amp;"), False),
    (plain(text=b"&#49;1"), False),
    (plain(text=b"1\r2"), False),  # the parser makes it 1\n2
    (plain(text=b"a]]>b"), False),
    (plain(text=b"<![CDATA[1]]>"), False),
    (plain(text=b"1\x0b2"), False),
    (plain(text=b"1\x00"), False),
    (plain(text=b"\xc3\xa9"), False),
    (plain(text=b"\xff"), False),
    (plain(inner=b"<!-- x -->"), False),
    (plain(inner=b"<?pi x?>"), False),
    (plain(inner=b"<NewX/>"), False),
    (plain(inner=b"<p:NewX>1</p:NewX>"), False),
    (plain(inner=b"<NewX>1</NewY>"), False),
    (plain(style=b' s:encodingStyle="a&b"'), False),
    (plain(style=b' s:encodingStyle="a<b"'), False),
    (plain(style=b' s:encodingStyle="a\x01"'), False),
    (plain(envelope=b"xml"), False),
    (plain(response=b"xml"), False),
    (plain(response=b"xmlns"), False),
    (plain(response=b"XmlFoo"), False),  # a legal prefix, left to the parser all the same
    (plain(head=b' <?xml version="1.0"?>'), False),
    (plain(head=b'<?xml version="1.1"?>'), False),
    (plain(tail=b"<x/>"), False),
    (plain(tail=b"\r\n" + b" " * wire_upnp.MAX_DOCUMENT), False),
    (plain().replace(b"GetExternalIPAddressResponse", b"GetStatusInfoResponse"), False),
    (plain().replace(b'xmlns:u="urn:schemas-upnp-org:service:', b'xmlns:u="urn:x:'), False),
    (plain().replace(b"envelope/", b"envelope"), False),
])
def test_the_plain_path_is_taken_only_where_it_means_what_the_tree_says(data, short):
    action = "GetExternalIPAddress"
    assert (wire_upnp._plain_response(data, action) is not None) is short  # pylint: disable=protected-access
    assert outcome(wire_upnp.decode_response, data, action) == outcome(wire_upnp._tree_response, data, action)  # pylint: disable=protected-access
    assert outcome(wire_upnp.decode_response, bytearray(data), action) == outcome(wire_upnp.decode_response, data, action)


@pytest.mark.parametrize("values", [{"NewUptime": "-1"}, {"NewUptime": "99999999999"}, {"NewUptime": "1e3"}])
def test_bad_numbers(values):
    with pytest.raises(errors.MalformedPacket):
        wire_upnp.status_info(values)
