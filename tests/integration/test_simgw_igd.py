"""The simulated gateway's UPnP IGD on loopback: SSDP (unicast), the description, SOAP control on the
table NAT-PMP and PCP share, the control channel's IGD settings and the IGD faults."""

from __future__ import annotations

import http.client
import re
import socket
import time
from xml.etree import ElementTree

import pytest

from portmap import wire_natpmp as wire
from simgw import SimulatedGateway, control

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
SEARCH = ("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n"
          "ST: {st}\r\n\r\n")


def make_gateway(address, tmp_path, version="v2", **options):
    return SimulatedGateway(address=address, control_path=str(tmp_path / "gw.sock"), igd=version, http_port=5000,
                            uptime=1000, **options)


@pytest.fixture
def igd(loopback_address, tmp_path):
    """An IGDv2 on its own loopback address (SSDP unicast on port 1900, HTTP on 5000)."""
    with make_gateway(loopback_address, tmp_path) as gateway:
        yield gateway


def search(address, st, timeout=1.0, count=1):
    """The SSDP answers to one unicast M-SEARCH (headers upper-cased), within ``timeout`` or until ``count`` came."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(SEARCH.format(st=st).encode(), (address, 1900))
        answers = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(answers) < count:
            try:
                data = sock.recv(4096).decode()
            except socket.timeout:
                break
            lines = data.split("\r\n")
            assert lines[0] == "HTTP/1.1 200 OK"
            answers.append({k.strip().upper(): v.strip() for k, _c, v in (line.partition(":") for line in lines[1:] if line)})
        return answers


def get(address, path="/rootDesc.xml", timeout=3.0):
    conn = http.client.HTTPConnection(address, 5000, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def soap(address, action, version=2, service="WANIPConnection", path="/ctl/IPConn", timeout=3.0, **args):
    """(HTTP status, {name: text} of the response's arguments or of the UPnPError)."""
    urn = f"urn:schemas-upnp-org:service:{service}:{version}"
    body = "".join(f"<{k}>{v}</{k}>" for k, v in args.items())
    envelope = (f'<?xml version="1.0"?><s:Envelope xmlns:s="{SOAP}" '
                f's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
                f'<u:{action} xmlns:u="{urn}">{body}</u:{action}></s:Body></s:Envelope>')
    conn = http.client.HTTPConnection(address, 5000, timeout=timeout)
    try:
        headers = {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": f'"{urn}#{action}"'}
        conn.request("POST", path, envelope.encode(), headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    root = ElementTree.fromstring(data)
    body_element = root.find(f"{{{SOAP}}}Body")
    values = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in body_element.iter()}
    if response.status == 200:
        assert body_element[0].tag == f"{{{urn}}}{action}Response"
    return response.status, values


def add(address, external, internal=None, client=None, lease=3600, protocol="TCP", action="AddPortMapping", **extra):
    return soap(address, action, extra.pop("version", 2), extra.pop("service", "WANIPConnection"),
                extra.pop("path", "/ctl/IPConn"), NewRemoteHost="", NewExternalPort=external, NewProtocol=protocol,
                NewInternalPort=external if internal is None else internal, NewInternalClient=client or "127.0.0.1", NewEnabled=1,
                NewPortMappingDescription="test", NewLeaseDuration=lease, **extra)


def error(result):
    status, values = result
    assert status == 500, values
    return int(values["errorCode"])


# Envelopes recorded from miniupnpd 2.3.1 (Debian, IGDv2, secure_mode) in sealed namespaces, asked with curl.
ENCODING = 's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"'
MINIUPNPD = {
    "GetExternalIPAddress": f'<s:Envelope xmlns:s="{SOAP}" {ENCODING}><s:Body><u:GetExternalIPAddressResponse '
                            'xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2"><NewExternalIPAddress>11.22.33.2'
                            '</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>',
    "DeletePortMapping": f'<s:Envelope xmlns:s="{SOAP}" {ENCODING}><s:Body><u:DeletePortMappingResponse '
                         'xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2"></u:DeletePortMappingResponse>'
                         '</s:Body></s:Envelope>',
    "716": f'<s:Envelope xmlns:s="{SOAP}" {ENCODING}><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>'
           'UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>716'
           '</errorCode><errorDescription>Wildcard not permited in ExtPort</errorDescription></UPnPError></detail>'
           '</s:Fault></s:Body></s:Envelope>',
}


def envelope(address, action, **args):
    """The bytes of the answer's envelope."""
    body = "".join(f"<{k}>{v}</{k}>" for k, v in args.items())
    urn = "urn:schemas-upnp-org:service:WANIPConnection:2"
    conn = http.client.HTTPConnection(address, 5000, timeout=3)
    try:
        conn.request("POST", "/ctl/IPConn", f'<?xml version="1.0"?><s:Envelope xmlns:s="{SOAP}" {ENCODING}><s:Body>'
                     f'<u:{action} xmlns:u="{urn}">{body}</u:{action}></s:Body></s:Envelope>',
                     {"SOAPAction": f'"{urn}#{action}"'})
        data = conn.getresponse().read().decode()
    finally:
        conn.close()
    return data[data.index("<s:Envelope"):data.index("</s:Envelope>") + len("</s:Envelope>")]


def test_the_same_envelopes_as_miniupnpd(igd):
    address = igd.address
    assert envelope(address, "GetExternalIPAddress") == MINIUPNPD["GetExternalIPAddress"]
    assert envelope(address, "AddPortMapping", NewRemoteHost="", NewExternalPort=0, NewProtocol="TCP", NewInternalPort=8090,
                    NewInternalClient="127.0.0.1", NewEnabled=1, NewPortMappingDescription="x",
                    NewLeaseDuration=3600) == MINIUPNPD["716"]
    add(address, 8080)
    assert envelope(address, "DeletePortMapping", NewRemoteHost="", NewExternalPort=8080,
                    NewProtocol="TCP") == MINIUPNPD["DeletePortMapping"]


def table(gateway):
    return gateway.ctl({"cmd": "table"})["mappings"]


# ------------------------------------------------------------------ discovery and description


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_ssdp_unicast_and_the_description(loopback_address, tmp_path, version):
    number = version[1]
    with make_gateway(loopback_address, tmp_path, version):
        location = f"http://{loopback_address}:5000/rootDesc.xml"
        for st in ("urn:schemas-upnp-org:device:InternetGatewayDevice:1", "urn:schemas-upnp-org:service:WANIPConnection:1",
                   f"urn:schemas-upnp-org:service:WANIPConnection:{number}", "upnp:rootdevice"):
            answers = search(loopback_address, st)
            assert [(a["ST"], a["LOCATION"]) for a in answers] == [(st, location)], st
            assert answers[0]["USN"].startswith("uuid:") and answers[0]["USN"].endswith(st)
        assert search(loopback_address, "urn:schemas-upnp-org:service:WANIPConnection:3", timeout=0.5) == []
        assert len(search(loopback_address, "ssdp:all", count=9)) == 8  # rootdevice, uuid, 3 devices, 3 services
        status, body = get(loopback_address)
        assert status == 200 and b"<!DOCTYPE" not in body
        root = ElementTree.fromstring(body)
        ns = {"d": "urn:schemas-upnp-org:device-1-0"}
        types = [e.text for e in root.iter("{urn:schemas-upnp-org:device-1-0}deviceType")]
        assert types == [f"urn:schemas-upnp-org:device:{name}:{number}"
                         for name in ("InternetGatewayDevice", "WANDevice", "WANConnectionDevice")]
        services = {s.findtext("d:serviceType", namespaces=ns): s.findtext("d:controlURL", namespaces=ns)
                    for s in root.iter("{urn:schemas-upnp-org:device-1-0}service")}
        assert services[f"urn:schemas-upnp-org:service:WANIPConnection:{number}"] == "/ctl/IPConn"
        assert get(loopback_address, "/nothing")[0] == 404


def test_a_ppp_connection_and_its_status(loopback_address, tmp_path):
    with make_gateway(loopback_address, tmp_path, "v2", igd_service="ppp") as gateway:
        st = "urn:schemas-upnp-org:service:WANPPPConnection:1"
        assert [a["ST"] for a in search(loopback_address, st)] == [st]
        assert search(loopback_address, "urn:schemas-upnp-org:service:WANIPConnection:1", timeout=0.5) == []
        assert b"<controlURL>/ctl/PPPConn</controlURL>" in get(loopback_address)[1]
        ppp = {"service": "WANPPPConnection", "version": 1, "path": "/ctl/PPPConn"}
        assert add(loopback_address, 8080, **ppp)[0] == 200
        assert [m["method"] for m in table(gateway)] == ["upnp"]
        assert error(add(loopback_address, 8081, action="AddAnyPortMapping", **ppp)) == 401  # an IGDv2 action only
        assert soap(loopback_address, "GetStatusInfo", **ppp)[1]["NewConnectionStatus"] == "Connected"
        gateway.ctl({"cmd": "set", "connection_status": "Disconnected"})
        assert soap(loopback_address, "GetStatusInfo", **ppp)[1]["NewConnectionStatus"] == "Disconnected"
        assert gateway.ctl({"cmd": "status"})["igd_service"] == "WANPPPConnection"


def test_multicast_ssdp_refused_outside_a_namespace(loopback_address):
    with pytest.raises(ValueError, match="refused"):
        SimulatedGateway(address=loopback_address, igd="v2", ssdp="multicast")


# ------------------------------------------------------------------ actions


def test_add_list_delete(igd):
    address = igd.address
    expected = {"Body": "", "GetExternalIPAddressResponse": "", "NewExternalIPAddress": "11.22.33.2"}
    assert soap(address, "GetExternalIPAddress") == (200, expected)
    assert add(address, 8080)[0] == 200
    assert add(address, 5353, protocol="UDP", lease=60)[0] == 200
    rows = table(igd)
    assert [(m["method"], m["client"], m["protocol"], m["internal_port"], m["external_port"], m["description"])
            for m in rows] == [("upnp", "127.0.0.1", "tcp", 8080, 8080, "test"), ("upnp", "127.0.0.1", "udp", 5353, 5353, "test")]
    status, entry = soap(address, "GetSpecificPortMappingEntry", NewRemoteHost="", NewExternalPort=8080, NewProtocol="TCP")
    assert status == 200 and entry["NewInternalClient"] == "127.0.0.1" and 3590 <= int(entry["NewLeaseDuration"]) <= 3600
    generic = [soap(address, "GetGenericPortMappingEntry", NewPortMappingIndex=i) for i in range(3)]
    assert [g[1].get("NewExternalPort") for g in generic[:2]] == ["8080", "5353"]
    assert error(generic[2]) == 713
    status, listing = soap(address, "GetListOfPortMappings", NewStartPort=1, NewEndPort=65535, NewProtocol="TCP",
                           NewManage=1, NewNumberOfPorts=0)
    assert status == 200 and re.findall(r"<p:NewExternalPort>(\d+)</p:NewExternalPort>", listing["NewPortListing"]) == ["8080"]
    status, listing = soap(address, "GetListOfPortMappings", NewStartPort=9000, NewEndPort=9100, NewProtocol="TCP",
                           NewManage=1, NewNumberOfPorts=0)
    assert status == 200 and "<p:PortMappingList" in listing["NewPortListing"]  # empty, as miniupnpd answers (no 730)
    assert "PortMappingEntry" not in listing["NewPortListing"]
    assert error(soap(address, "GetListOfPortMappings", NewStartPort=9100, NewEndPort=9000, NewProtocol="TCP",
                      NewManage=1, NewNumberOfPorts=0)) == 733
    assert soap(address, "DeletePortMapping", NewRemoteHost="", NewExternalPort=8080, NewProtocol="TCP")[0] == 200
    assert error(soap(address, "DeletePortMapping", NewRemoteHost="", NewExternalPort=8080, NewProtocol="TCP")) == 714
    assert error(soap(address, "GetSpecificPortMappingEntry", NewRemoteHost="", NewExternalPort=8080,
                      NewProtocol="TCP")) == 714
    assert [m["protocol"] for m in table(igd)] == ["udp"]


def test_the_same_host_replaces_its_mapping_of_a_port(igd):
    assert add(igd.address, 8080)[0] == 200
    assert add(igd.address, 8080, internal=8081)[0] == 200  # as miniupnpd: the rule is replaced
    assert [(m["internal_port"], m["external_port"]) for m in table(igd)] == [(8081, 8080)]
    status, values = add(igd.address, 8080, internal=9000, action="AddAnyPortMapping")
    assert (status, values["NewReservedPort"]) == (200, "8080")
    assert [(m["internal_port"], m["external_port"]) for m in table(igd)] == [(9000, 8080)]


def test_invalid_arguments(igd):
    address = igd.address
    assert error(add(address, 0, internal=8080)) == 716
    assert error(add(address, 8080, protocol="SCTP")) == 402
    assert error(add(address, 8080, internal=0)) == 402
    assert error(soap(address, "AddPortMapping", NewExternalPort=8080)) == 402
    assert error(soap(address, "NoSuchAction")) == 401


def test_upnp_and_natpmp_share_the_table(igd):
    address = igd.address
    igd.ctl({"cmd": "map", "client": "192.168.77.200", "protocol": "tcp", "internal_port": 9, "external_port": 8080})
    assert error(add(address, 8080)) == 718  # held by another host's NAT-PMP mapping
    assert add(address, 8081)[0] == 200
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.connect((address, 5351))
        sock.send(wire.encode_map_request("tcp", 7000, 8081, 60))  # suggests the port UPnP holds
        reply = wire.decode_reply(sock.recv(100))
    assert reply.result == 0 and reply.external_port not in (8080, 8081)
    status, entry = soap(address, "GetSpecificPortMappingEntry", NewRemoteHost="", NewExternalPort=reply.external_port,
                         NewProtocol="TCP")
    assert status == 200 and entry["NewInternalPort"] == "7000"


def test_leases_v2_and_v1(loopback_address_pool, tmp_path):
    with make_gateway(loopback_address_pool(), tmp_path) as gateway:
        assert add(gateway.address, 8080, lease=0)[0] == 200
        assert add(gateway.address, 8081, lease=10 ** 7)[0] == 200
        assert [m["lifetime"] for m in table(gateway)] == [604800, 604800]  # IGDv2's cap, as miniupnpd
    with make_gateway(loopback_address_pool(), tmp_path, "v1") as gateway:
        assert add(gateway.address, 8080, lease=0)[0] == 200
        [row] = table(gateway)
        assert (row["lifetime"], row["expires_in"]) == (0, None)  # permanent
        entry = soap(gateway.address, "GetSpecificPortMappingEntry", version=1, NewRemoteHost="", NewExternalPort=8080,
                     NewProtocol="TCP")[1]
        assert entry["NewLeaseDuration"] == "0"
        assert error(soap(gateway.address, "AddAnyPortMapping", version=1, NewExternalPort=9000)) == 401  # not in v1


def test_lease_expiry(igd):
    assert add(igd.address, 8080, lease=1)[0] == 200
    time.sleep(1.2)
    assert table(igd) == []
    assert error(soap(igd.address, "GetGenericPortMappingEntry", NewPortMappingIndex=0)) == 713


def test_control_channel_settings(igd):
    address = igd.address
    igd.ctl({"cmd": "set", "lease_policy": "permanent-only"})
    assert error(add(address, 8080, lease=3600)) == 725
    igd.ctl({"cmd": "set", "lease_policy": "no-permanent"})
    assert error(add(address, 8080, lease=0)) == 402
    assert add(address, 8080, lease=3600)[0] == 200
    igd.ctl({"cmd": "set", "lease_policy": "any", "secure_mode": True})
    assert error(add(address, 8090, client="192.168.77.200")) == 718
    assert error(add(address, 8090, client="192.168.77.200", action="AddAnyPortMapping")) == 606
    igd.ctl({"cmd": "set", "secure_mode": False, "max_mappings": 1})
    assert error(add(address, 8091)) == 728
    bad = control(igd.control_path, {"cmd": "set", "lease_policy": "sometimes"})
    assert not bad["ok"] and "lease_policy" in bad["error"]
    bad = control(igd.control_path, {"cmd": "set", "secure_mode": "no"})
    assert not bad["ok"] and "secure_mode must be true or false" in bad["error"]
    status = igd.ctl({"cmd": "status"})
    assert (status["igd"], status["location"]) == ("v2", f"http://{address}:5000/rootDesc.xml")


def test_add_any_port_mapping(igd):
    address = igd.address
    igd.ctl({"cmd": "map", "client": "192.168.77.200", "protocol": "tcp", "internal_port": 9, "external_port": 8080})
    status, values = add(address, 8080, action="AddAnyPortMapping")
    assert status == 200 and values["NewReservedPort"] not in ("8080", "0")
    assert add(address, int(values["NewReservedPort"]), internal=8080, action="AddAnyPortMapping")[1]["NewReservedPort"] \
        == values["NewReservedPort"]  # the same mapping again: renewed, same port
    igd.ctl({"cmd": "set", "external_ports": "random", "port_range": "40000-40999"})
    status, values = add(address, 9000, action="AddAnyPortMapping")
    assert status == 200 and 40000 <= int(values["NewReservedPort"]) <= 40999


def test_uptime_restarts_with_a_reboot(igd):
    assert int(soap(igd.address, "GetStatusInfo")[1]["NewUptime"]) >= 1000
    assert soap(igd.address, "GetStatusInfo")[1]["NewConnectionStatus"] == "Connected"
    add(igd.address, 8080)
    igd.ctl({"cmd": "reboot"})
    assert int(soap(igd.address, "GetStatusInfo")[1]["NewUptime"]) < 5
    assert table(igd) == []


def test_no_public_address(igd):
    igd.ctl({"cmd": "set", "public_address": "100.64.0.5"})
    assert soap(igd.address, "GetExternalIPAddress")[1]["NewExternalIPAddress"] == ""
    assert error(add(igd.address, 8080)) == 501


# ------------------------------------------------------------------ faults


def test_soap_fault_with_any_code(igd):
    igd.ctl({"cmd": "fault", "kind": "result", "code": 729, "count": 1, "methods": ["upnp"], "ops": ["AddPortMapping"]})
    assert soap(igd.address, "GetExternalIPAddress")[0] == 200  # another action: untouched
    status, values = add(igd.address, 8080)
    assert (status, values["errorCode"], values["errorDescription"]) == (500, "729", "ConflictWithOtherMechanisms")
    assert add(igd.address, 8080)[0] == 200


def test_closed_connection_and_stall(igd):
    igd.ctl({"cmd": "fault", "kind": "close", "count": 1, "methods": ["upnp"]})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        soap(igd.address, "GetExternalIPAddress")
    igd.ctl({"cmd": "fault", "kind": "stall", "seconds": 3, "count": 1, "methods": ["upnp"]})
    conn = socket.create_connection((igd.address, 5000), timeout=1.0)
    try:
        conn.sendall(b"GET /rootDesc.xml HTTP/1.1\r\nHost: x\r\n\r\n")
        got = conn.recv(65536)
        assert got.startswith(b"HTTP/1.1 200 OK")
        with pytest.raises(socket.timeout):
            while True:  # half the answer came, then nothing
                if not conn.recv(65536):
                    pytest.fail("the connection was closed before the stall ended")
    finally:
        conn.close()
    assert get(igd.address)[0] == 200


def test_bad_descriptions(igd):
    igd.ctl({"cmd": "fault", "kind": "description", "how": "oversized", "size": 70000, "count": 1})
    status, body = get(igd.address)
    assert status == 200 and len(body) >= 70000
    igd.ctl({"cmd": "fault", "kind": "description", "how": "entity", "count": 1})
    assert b"<!ENTITY" in get(igd.address)[1]
    assert b"<!ENTITY" not in get(igd.address)[1]
    bad = control(igd.control_path, {"cmd": "fault", "kind": "description", "how": "huge"})
    assert not bad["ok"] and "oversized or entity" in bad["error"]
    assert get(igd.address)[0] == 200  # still serving


def test_ssdp_faults(igd):
    address = igd.address
    st = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
    igd.ctl({"cmd": "fault", "kind": "location", "host": "127.0.0.99", "count": 1, "methods": ["ssdp"]})
    assert search(address, st)[0]["LOCATION"] == "http://127.0.0.99:5000/rootDesc.xml"
    igd.ctl({"cmd": "fault", "kind": "drop", "count": 1, "methods": ["ssdp"]})
    assert search(address, st, timeout=0.5) == []
    igd.ctl({"cmd": "fault", "kind": "delay", "seconds": 1.0, "count": 1, "methods": ["ssdp"]})
    started = time.monotonic()
    assert search(address, st, timeout=0.6) == []
    answers = search(address, st, timeout=1.5)  # the delayed answer went to the first socket, this one gets its own
    assert len(answers) == 1 and time.monotonic() - started >= 0.6
