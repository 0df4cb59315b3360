"""Records miniupnpd's UPnP IGD answers into this folder (run as root: python3 -m tests.unit.plugins.module_utils.portmap.vectors.upnp.capture).

miniupnpd runs in sealed namespaces (tests/harness); the requests are sent from the
host namespace with plain sockets, and every answer is saved as received, headers
and body, one file each.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import textwrap

from tests.harness.miniupnpd import Miniupnpd
from tests.harness.netns import Topology

HERE = os.path.dirname(os.path.abspath(__file__))

SENDER = textwrap.dedent(r'''
    import json, socket, sys, time
    GW = sys.argv[1]
    PORT = int(sys.argv[2])
    jobs = json.loads(sys.stdin.read())
    out = {}

    def http(raw):
        sock = socket.create_connection((GW, PORT), timeout=5)
        sock.sendall(raw.encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
        return data.decode("latin-1")

    for name, kind, arg in jobs:
        if kind == "ssdp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(1.5)
            sock.sendto(arg.encode(), (GW, 1900))
            try:
                out[name] = sock.recvfrom(2048)[0].decode("latin-1")
            except socket.timeout:
                out[name] = None
            sock.close()
        else:
            out[name] = http(arg)
    print(json.dumps(out))
''')

SERVICE_V2 = "urn:schemas-upnp-org:service:WANIPConnection:2"
SERVICE_V1 = "urn:schemas-upnp-org:service:WANIPConnection:1"


def msearch(target: str) -> str:
    return (f"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: {target}\r\n\r\n")


def get(path: str, host: str) -> str:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"


def soap(service: str, action: str, args: dict, host: str) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in args.items())
    body = ('<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
            f'<u:{action} xmlns:u="{service}">{inner}</u:{action}></s:Body></s:Envelope>\r\n')
    return (f"POST /ctl/IPConn HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"
            f"SOAPAction: \"{service}#{action}\"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}")


def mapping(ext: int, client: str, lease: int = 3600, internal: int = 0) -> dict:
    return {"NewRemoteHost": "", "NewExternalPort": ext, "NewProtocol": "TCP", "NewInternalPort": internal or ext,
            "NewInternalClient": client, "NewEnabled": 1, "NewPortMappingDescription": "portmap vector",
            "NewLeaseDuration": lease}


def run(topo: Topology, host: int, jobs: list, port: int = 5000) -> dict:
    result = topo.run(topo.hosts[host], [sys.executable, "-c", SENDER, topo.gw_lan_address, str(port)],
                      input=json.dumps(jobs))
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout)


def save(prefix: str, answers: dict) -> None:
    for name, text in answers.items():
        if text is None:
            continue
        with open(os.path.join(HERE, f"{prefix}{name}.b64"), "w", encoding="ascii") as handle:
            handle.write(base64.encodebytes(text.encode("latin-1")).decode("ascii"))  # CRLFs kept exactly


def capture_v2() -> None:
    with Topology(hosts=2) as topo, Miniupnpd(topo, upnp=True):
        host = f"{topo.gw_lan_address}:5000"
        me, other = topo.host_addresses
        jobs = [[f"ssdp-{t.split(':')[-2]}-{t.rsplit(':', maxsplit=1)[-1]}", "ssdp", msearch(t)] for t in (
            "urn:schemas-upnp-org:device:InternetGatewayDevice:2", "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
            "urn:schemas-upnp-org:service:WANIPConnection:2", "urn:schemas-upnp-org:service:WANIPConnection:1")]
        jobs += [
            ["rootDesc", "http", get("/rootDesc.xml", host)],
            ["GetExternalIPAddress", "http", soap(SERVICE_V2, "GetExternalIPAddress", {}, host)],
            ["GetStatusInfo", "http", soap(SERVICE_V2, "GetStatusInfo", {}, host)],
            ["AddPortMapping", "http", soap(SERVICE_V2, "AddPortMapping", mapping(8080, me), host)],
            ["AddPortMapping-lease0", "http", soap(SERVICE_V2, "AddPortMapping", mapping(8081, me, 0), host)],
            ["AddPortMapping-other-client-718", "http", soap(SERVICE_V2, "AddPortMapping", mapping(8082, other), host)],
            ["AddAnyPortMapping", "http", soap(SERVICE_V2, "AddAnyPortMapping", mapping(8080, me, internal=8090), host)],
            ["AddAnyPortMapping-other-client-606", "http", soap(SERVICE_V2, "AddAnyPortMapping", mapping(8084, other), host)],
            ["GetSpecificPortMappingEntry", "http", soap(SERVICE_V2, "GetSpecificPortMappingEntry",
                                                         {"NewRemoteHost": "", "NewExternalPort": 8080, "NewProtocol": "TCP"}, host)],
            ["GetSpecificPortMappingEntry-714", "http", soap(SERVICE_V2, "GetSpecificPortMappingEntry",
                                                             {"NewRemoteHost": "", "NewExternalPort": 9999, "NewProtocol": "TCP"}, host)],
            ["GetGenericPortMappingEntry-0", "http", soap(SERVICE_V2, "GetGenericPortMappingEntry", {"NewPortMappingIndex": 0}, host)],
            ["GetGenericPortMappingEntry-713", "http", soap(SERVICE_V2, "GetGenericPortMappingEntry", {"NewPortMappingIndex": 50}, host)],
            ["GetListOfPortMappings", "http", soap(SERVICE_V2, "GetListOfPortMappings", {
                "NewStartPort": 0, "NewEndPort": 65535, "NewProtocol": "TCP", "NewManage": 0, "NewNumberOfPorts": 100}, host)],
            ["DeletePortMapping", "http", soap(SERVICE_V2, "DeletePortMapping",
                                               {"NewRemoteHost": "", "NewExternalPort": 8080, "NewProtocol": "TCP"}, host)],
            ["DeletePortMapping-again", "http", soap(SERVICE_V2, "DeletePortMapping",
                                                     {"NewRemoteHost": "", "NewExternalPort": 8080, "NewProtocol": "TCP"}, host)],
        ]
        save("v2-", run(topo, 0, jobs))
        # The other host's view of a port this host holds.
        save("v2-", run(topo, 1, [["AddPortMapping-held-718", "http", soap(SERVICE_V2, "AddPortMapping", mapping(8081, other), host)]]))


def capture_v1() -> None:
    with Topology(hosts=1) as topo, Miniupnpd(topo, upnp=True, igd_v1=True):
        host = f"{topo.gw_lan_address}:5000"
        me = topo.host_addresses[0]
        save("v1-", run(topo, 0, [
            ["ssdp-InternetGatewayDevice-1", "ssdp", msearch("urn:schemas-upnp-org:device:InternetGatewayDevice:1")],
            ["rootDesc", "http", get("/rootDesc.xml", host)],
            ["AddPortMapping", "http", soap(SERVICE_V1, "AddPortMapping", mapping(8080, me, 0), host)],
            ["GetListOfPortMappings", "http", soap(SERVICE_V1, "GetListOfPortMappings", {
                "NewStartPort": 0, "NewEndPort": 65535, "NewProtocol": "TCP", "NewManage": 0, "NewNumberOfPorts": 100}, host)],
        ]))


def capture_cgnat() -> None:
    with Topology(hosts=1, wan_prefix="100.64.0") as topo, Miniupnpd(topo, upnp=True):
        host = f"{topo.gw_lan_address}:5000"
        me = topo.host_addresses[0]
        save("cgnat-", run(topo, 0, [
            ["GetExternalIPAddress", "http", soap(SERVICE_V2, "GetExternalIPAddress", {}, host)],
            ["GetStatusInfo", "http", soap(SERVICE_V2, "GetStatusInfo", {}, host)],
            ["AddPortMapping-501", "http", soap(SERVICE_V2, "AddPortMapping", mapping(8080, me), host)],
        ]))


if __name__ == "__main__":
    capture_v2()
    capture_v1()
    capture_cgnat()
