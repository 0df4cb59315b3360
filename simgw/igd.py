"""UPnP IGD (InternetGatewayDevice v1 or v2), server side: the root description and SOAP control.

The mappings are the gateway's one table, shared with NAT-PMP and PCP as miniupnpd shares
its rules: a UPnP mapping and a NAT-PMP mapping of the same external port collide.  The
answers follow miniupnpd 2.3.1 (Debian's build, IGDv2 unless v1 is asked for): the SOAP
bodies, the error codes (401, 402, 501, 606, 713, 714, 716, 718, 725, 728, 733) and the
IGDv2 lease rule (0 or over 604800 s becomes 604800 s).

Shapes of routers in the field (``service``, ``--igd-service``): one or more WAN connection
services, each the UPnP Forum's WANIPConnection or WANPPPConnection or the same under the
DSL Forum's TR-064 name (``urn:dslforum-org:service:...:1``), each with a connection status
of its own.  Unlike miniupnpd, a service answers only to its own service type (the
SOAPAction header and the body's namespace), as TR-064 devices do.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from .httpd import HttpServer, Request, Response
from .side import Side
from .ssdp import SERVER, SsdpResponder
from .table import Key, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from .gateway import SimulatedGateway

IGD_VERSIONS = ("off", "v1", "v2")
# A WAN connection service: WANIPConnection (of the IGD's version) or WANPPPConnection:1, or either under its TR-064
# name (urn:dslforum-org:service:...:1, as Huawei HG and other DSL routers name them).  --igd-service takes a list.
IGD_SERVICES = ("ip", "ppp", "tr064-ip", "tr064-ppp")
CONNECTION_STATUSES = ("Connected", "Disconnected", "Connecting", "Unconfigured", "PendingDisconnect", "Disconnecting")
LEASE_POLICIES = ("any", "permanent-only", "no-permanent", "permanent-only-402")
DESCRIPTION_PATH = "/rootDesc.xml"
IGDV2_LEASE_MAX = 604800
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ERRORS = {
    401: "Invalid Action", 402: "Invalid Args", 501: "Action Failed", 606: "Action not authorized",
    713: "SpecifiedArrayIndexInvalid", 714: "NoSuchEntryInArray", 715: "WildCardNotPermittedInSrcIP",
    716: "Wildcard not permited in ExtPort",  # miniupnpd 2.3.1's words
    718: "ConflictInMappingEntry", 724: "SamePortValuesRequired",
    725: "OnlyPermanentLeasesSupported", 726: "RemoteHostOnlySupportsWildcard",
    727: "ExternalPortOnlySupportsWildcard", 728: "NoPortMapsAvailable", 729: "ConflictWithOtherMechanisms",
    730: "PortMappingNotFound", 732: "WildCardNotPermittedInIntPort", 733: "InconsistentParameter",
}
PROTOCOLS = {"TCP": "tcp", "UDP": "udp"}
EMPTY_BUT_CLOSED = ("DeletePortMapping",)  # miniupnpd answers these with an empty element, not a self-closed one


class CData(str):
    """A value sent as it is, inside CDATA (the XML listing of GetListOfPortMappings, as miniupnpd sends it)."""


def _value(value: Any) -> str:
    return f"<![CDATA[{value}]]>" if isinstance(value, CData) else escape(str(value))


class SoapError(Exception):
    def __init__(self, code: int, description: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.description = description or ERRORS.get(code, "UPnPError")


def _urn(kind: str, name: str, version: int, authority: str = "schemas-upnp-org") -> str:
    return f"urn:{authority}:{kind}:{name}:{version}"


class WanService:  # pylint: disable=too-few-public-methods
    """One WAN connection service of the IGD: its type, control path, serviceId and its own connection status."""

    def __init__(self, kind: str, igd_version: int, path: str, status: Optional[str]) -> None:
        tr064 = kind.startswith("tr064-")
        self.name = "WANIPConnection" if kind.endswith("ip") else "WANPPPConnection"
        self.version = igd_version if kind == "ip" else 1
        self.service_type = _urn("service", self.name, self.version, "dslforum-org" if tr064 else "schemas-upnp-org")
        self.path = path
        self.service_id = (f"urn:dslforum-org:serviceId:{self.name}1" if tr064
                           else f"urn:upnp-org:serviceId:{self.name.replace('Connection', 'Conn')}1")
        self.tr064 = tr064
        self.status = status  # None: the gateway's connection_status

    def view(self) -> Dict[str, Any]:
        return {"service_type": self.service_type, "control_url": self.path, "status": self.status}


def parse_services(text: str) -> List[Tuple[str, Optional[str]]]:
    """``KIND[=STATUS],...`` (``--igd-service``): each WAN connection service and its own status (None: the gateway's)."""
    services: List[Tuple[str, Optional[str]]] = []
    for item in text.split(","):
        kind, _eq, status = item.strip().partition("=")
        if kind not in IGD_SERVICES:
            raise ValueError(f"igd service must be one of {', '.join(IGD_SERVICES)} (optionally =STATUS), got {kind!r}")
        if status and status not in CONNECTION_STATUSES:
            raise ValueError(f"igd service status must be one of {', '.join(CONNECTION_STATUSES)}, got {status!r}")
        services.append((kind, status or None))
    return services


def _public(address: str) -> bool:
    """A WAN address miniupnpd reports: not private, CGNAT or otherwise reserved."""
    return ipaddress.IPv4Address(address).is_global


def _port(value: Optional[str]) -> int:
    if value is None or not value.strip().isdigit() or int(value) > 65535:
        raise SoapError(402)
    return int(value)


def _protocol(value: Optional[str]) -> str:
    protocol = PROTOCOLS.get((value or "").strip().upper())
    if protocol is None:
        raise SoapError(402)
    return protocol


class Igd(Side):
    """The IGD of a simulated gateway: HTTP (description and control) and the SSDP responder."""

    method = "upnp"

    def __init__(self, gateway: "SimulatedGateway", version: str = "v2", http_port: int = 5000,  # pylint: disable=too-many-arguments
                 ssdp: str = "unicast", ssdp_port: int = 1900, service: str = "ip") -> None:
        super().__init__(gateway)
        if version not in ("v1", "v2"):
            raise ValueError(f"igd must be off, v1 or v2, got {version!r}")
        self.version = int(version[1])
        # The WAN connection services, in the description's order; their control paths /ctl/IPConn, /ctl/PPPConn
        # (then /ctl/IPConn2 ...).
        self.services: List[WanService] = []
        for kind, status in parse_services(service):
            base = "/ctl/" + ("IPConn" if kind.endswith("ip") else "PPPConn")
            taken = {s.path for s in self.services}
            path = next(p for p in [base] + [f"{base}{n}" for n in range(2, 100)] if p not in taken)
            self.services.append(WanService(kind, self.version, path, status))
        # Only TR-064 services: the devices and their other services are TR-064's too (as on a Huawei HG531).
        self.authority = "dslforum-org" if all(s.tr064 for s in self.services) else "schemas-upnp-org"
        self.current = self.services[0]  # the service the request being answered was sent to
        self.http_port = http_port
        self.uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"simgw://{gateway.address}/igd"))[:-1] + "0"  # devices: 0, 1, 2
        self.boot_id = 1
        self.http = HttpServer(gateway, (gateway.address, http_port), self.answer_http, SERVER)
        self.ssdp = SsdpResponder(self, ssdp, ssdp_port)
        self.actions: Dict[str, Callable[[Dict[str, str], str], List[Tuple[str, Any]]]] = {
            "GetExternalIPAddress": self.get_external_ip_address,
            "GetStatusInfo": self.get_status_info,
            "GetConnectionTypeInfo": lambda args, client: [("NewConnectionType", "IP_Routed"),
                                                           ("NewPossibleConnectionTypes", "IP_Routed")],
            "GetNATRSIPStatus": lambda args, client: [("NewRSIPAvailable", 0), ("NewNATEnabled", 1)],
            "AddPortMapping": self.add_port_mapping,
            "DeletePortMapping": self.delete_port_mapping,
            "GetSpecificPortMappingEntry": self.get_specific_port_mapping_entry,
            "GetGenericPortMappingEntry": self.get_generic_port_mapping_entry,
        }
        self.v2_actions: Dict[str, Callable[[Dict[str, str], str], List[Tuple[str, Any]]]] = {
            "AddAnyPortMapping": self.add_any_port_mapping,
            "GetListOfPortMappings": self.get_list_of_port_mappings,
        }
        self.common_actions: Dict[str, Callable[[Dict[str, str], str], List[Tuple[str, Any]]]] = {
            "GetCommonLinkProperties": lambda args, client: [
                ("NewWANAccessType", "Cable"), ("NewLayer1UpstreamMaxBitRate", 1000000000),
                ("NewLayer1DownstreamMaxBitRate", 1000000000), ("NewPhysicalLinkStatus", "Up")],
            "GetTotalBytesSent": lambda args, client: [("NewTotalBytesSent", 0)],
            "GetTotalBytesReceived": lambda args, client: [("NewTotalBytesReceived", 0)],
            "GetTotalPacketsSent": lambda args, client: [("NewTotalPacketsSent", 0)],
            "GetTotalPacketsReceived": lambda args, client: [("NewTotalPacketsReceived", 0)],
        }

    def bind(self, selector: Any) -> None:
        self.http.bind(selector)
        self.ssdp.bind(selector)

    def close(self) -> None:
        self.http.close()
        self.ssdp.close()

    def rebooted(self) -> None:
        self.boot_id += 1
        self.ssdp.notify()

    # ------------------------------------------------------------------ description and SSDP

    def location(self) -> str:
        return f"http://{self.gw.address}:{self.http_port}{DESCRIPTION_PATH}"

    def devices(self) -> List[Tuple[str, List[Tuple[str, str, str]]]]:
        """(device type, its services as (type, control path, serviceId)), root first."""
        v, a = self.version, self.authority
        return [(_urn("device", "InternetGatewayDevice", v if a != "dslforum-org" else 1, a),
                 [(_urn("service", "Layer3Forwarding", 1, a), "/ctl/L3F", "L3Forwarding1")]),
                (_urn("device", "WANDevice", v if a != "dslforum-org" else 1, a),
                 [(_urn("service", "WANCommonInterfaceConfig", 1, a), "/ctl/CmnIfCfg", "WANCommonIFC1")]),
                (_urn("device", "WANConnectionDevice", v if a != "dslforum-org" else 1, a),
                 [(s.service_type, s.path, s.service_id) for s in self.services])]

    def search_targets(self, st: str) -> List[Tuple[str, str]]:
        """The (ST, USN) pairs that answer a search for ``st`` (a type answers any version up to ours)."""
        root = f"uuid:{self.uuid}"
        every = [("upnp:rootdevice", f"{root}::upnp:rootdevice"), (root, root)]
        for device, services in self.devices():
            every += [(t, f"{root}::{t}") for t in [device] + [service[0] for service in services]]
        if st == "ssdp:all":
            return every
        if st in ("upnp:rootdevice", root):
            return [pair for pair in every if pair[0] == st]
        match = re.fullmatch(r"(urn:(?:schemas-upnp-org|dslforum-org):(?:device|service):[A-Za-z0-9]+):([0-9]+)", st)
        if match:
            for target, _usn in every:
                if target.rsplit(":", 1)[0] == match.group(1) and int(match.group(2)) <= int(target.rsplit(":", 1)[1]):
                    return [(st, f"{root}::{st}")]
        return []

    def description(self) -> str:
        """The root description: IGD, WANDevice and WANConnectionDevice nested, as miniupnpd serves them."""
        xml = ""
        for depth, (device, services) in reversed(list(enumerate(self.devices()))):
            name = device.split(":")[3]
            items = ""
            for service, path, service_id in services:
                short = path.rsplit("/", 1)[1]
                service_id = service_id if ":" in service_id else f"urn:upnp-org:serviceId:{service_id}"
                items += (f"<service><serviceType>{service}</serviceType><serviceId>{service_id}"
                          f"</serviceId><SCPDURL>/{short}.xml</SCPDURL><controlURL>{path}</controlURL>"
                          f"<eventSubURL>/evt/{short}</eventSubURL></service>")
            udn = self.uuid if depth == 0 else f"{self.uuid[:-1]}{depth}"
            xml = (f"<device><deviceType>{device}</deviceType><friendlyName>simgw {name}</friendlyName>"
                   "<manufacturer>portmap.natpmp</manufacturer><manufacturerURL>http://example.invalid/</manufacturerURL>"
                   f"<modelDescription>simulated {name}</modelDescription><modelName>simgw</modelName>"
                   f"<modelNumber>{self.version}</modelNumber><serialNumber>00000000</serialNumber>"
                   f"<UDN>uuid:{udn}</UDN><serviceList>{items}</serviceList>"
                   + (f"<deviceList>{xml}</deviceList>" if xml else "")
                   + (f"<presentationURL>http://{self.gw.address}/</presentationURL>" if depth == 0 else "")
                   + "</device>")
        return ('<?xml version="1.0"?>\r\n<root xmlns="urn:schemas-upnp-org:device-1-0" configId="1337">'
                f"<specVersion><major>1</major><minor>{1 if self.version == 2 else 0}</minor></specVersion>"
                f"{xml}</root>")

    def _description_response(self) -> Response:
        text = self.description()
        bad = self.gw.faults.take("description", "description", self.method)
        if bad:
            how = bad.params.get("how", "oversized")
            if how == "entity":
                text = text.replace("<root ", '<!DOCTYPE root [<!ENTITY name "simgw router">]>\r\n<root ', 1)
                text = text.replace("<friendlyName>simgw InternetGatewayDevice</friendlyName>",
                                    "<friendlyName>&name;</friendlyName>", 1)
            elif how == "oversized":
                padding = "x" * max(0, int(bad.params.get("size", 70000)) - len(text))
                text = text.replace("</root>", f"<!-- {padding} --></root>")
            else:
                raise ValueError(f"description fault how must be oversized or entity, got {how!r}")
        return Response(200, text.encode("utf-8"), "description")

    # ------------------------------------------------------------------ HTTP

    def answer_http(self, request: Request) -> Response:
        if request.method == "GET":
            if request.path == DESCRIPTION_PATH:
                return self._description_response()
            return Response(404, op="get")
        if request.method != "POST":
            return Response(405, op=request.method.lower())
        services = {s.path: (dict(self.actions, **self.v2_actions) if s.version == 2 else self.actions, s.service_type, s)
                    for s in self.services}
        services["/ctl/CmnIfCfg"] = (self.common_actions, _urn("service", "WANCommonInterfaceConfig", 1, self.authority),
                                     self.services[0])
        if request.path not in services:
            return Response(404, op="post")
        actions, service, self.current = services[request.path]
        try:
            name, namespace, args = self._parse_soap(request)
            spoken = request.headers.get("SOAPACTION", "").strip('"').rsplit("#", 1)[0] or namespace
            if spoken and spoken.rsplit(":", 1)[0] != service.rsplit(":", 1)[0]:
                raise SoapError(401, f"Invalid Action: this service is {service}")  # not its own type
        except SoapError as exc:
            return self._fault(exc, "soap")
        try:
            if self.gw.faults.take("reboot", name, self.method):
                self.gw.reboot()
            forced = self.gw.faults.take("result", name, self.method)
            if forced:
                raise SoapError(int(forced.params["code"]), str(forced.params.get("description", "")))
            if name not in actions:
                raise SoapError(401)
            self.gw.table.expire(time.monotonic())
            values = actions[name](args, request.client)
        except SoapError as exc:
            return self._fault(exc, name)
        body = "".join(f"<{key}>{_value(value)}</{key}>" for key, value in values)
        ns = escape(namespace or service, {'"': "&quot;"})  # the request's own namespace, as miniupnpd echoes it
        if values or name in EMPTY_BUT_CLOSED:
            inner = f"<u:{name}Response xmlns:u=\"{ns}\">{body}</u:{name}Response>"
        else:
            inner = f"<u:{name}Response xmlns:u=\"{ns}\"/>"
        envelope = (f'<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="{SOAP_ENV}" '
                    f's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>{inner}</s:Body></s:Envelope>\r\n')
        return Response(200, envelope.encode("utf-8"), name)

    @staticmethod
    def _parse_soap(request: Request) -> Tuple[str, str, Dict[str, str]]:
        text = request.body.decode("utf-8", "replace")
        if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
            raise SoapError(402, "Invalid Args: a document type is refused")
        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError as exc:
            raise SoapError(402) from exc
        body = root.find(f"{{{SOAP_ENV}}}Body")
        if body is None or len(body) == 0:
            raise SoapError(402)
        action = body[0]
        namespace, _brace, name = action.tag[1:].partition("}") if action.tag.startswith("{") else ("", "", action.tag)
        header = request.headers.get("SOAPACTION", "").strip('"')
        if "#" in header:
            name = header.rsplit("#", 1)[1] or name
        args = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in action}
        return name, namespace, args

    def _fault(self, error: SoapError, op: str) -> Response:
        body = (f'<s:Envelope xmlns:s="{SOAP_ENV}" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">'
                "<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>"
                '<UPnPError xmlns="urn:schemas-upnp-org:control-1-0">'
                f"<errorCode>{error.code}</errorCode><errorDescription>{escape(error.description)}</errorDescription>"
                "</UPnPError></detail></s:Fault></s:Body></s:Envelope>")
        return Response(500, body.encode("utf-8"), op)

    # ------------------------------------------------------------------ actions

    def _status(self) -> str:
        """The connection status of the service asked: its own, else the gateway's."""
        return self.current.status or self.gw.connection_status

    def _connected(self) -> None:
        """A mapping needs a connected WAN service with a public address: else 501 ActionFailed, as miniupnpd."""
        if self._status() != "Connected" or not _public(self.gw.public_address):
            raise SoapError(501)

    def get_external_ip_address(self, _args: Dict[str, str], _client: str) -> List[Tuple[str, Any]]:
        address = self.gw.public_address
        return [("NewExternalIPAddress", address if _public(address) and self._status() == "Connected" else "")]

    def get_status_info(self, _args: Dict[str, str], _client: str) -> List[Tuple[str, Any]]:
        return [("NewConnectionStatus", self._status()), ("NewLastConnectionError", "ERROR_NONE"),
                ("NewUptime", self.gw.epoch)]

    def _lease(self, args: Dict[str, str], any_port: bool) -> int:
        text = args.get("NewLeaseDuration", "0").strip() or "0"
        if not text.isdigit():
            raise SoapError(402)
        lease = int(text)
        policy = self.gw.lease_policy
        if policy == "permanent-only" and lease != 0:
            raise SoapError(725)
        if policy == "permanent-only-402" and lease != 0:
            raise SoapError(402)  # as devices in the field refuse a lease, instead of 725
        if policy == "no-permanent" and lease == 0:
            raise SoapError(402)
        if self.version == 2 or any_port:
            if lease == 0 or lease > IGDV2_LEASE_MAX:
                lease = IGDV2_LEASE_MAX
        return lease

    def _internal_client(self, args: Dict[str, str], client: str, refusal: int) -> str:
        internal = args.get("NewInternalClient", "").strip() or client
        try:
            internal = str(ipaddress.IPv4Address(internal))
        except ValueError as exc:
            raise SoapError(402) from exc
        if self.gw.secure_mode and internal != client:
            raise SoapError(refusal)
        return internal

    def _place(self, protocol: str, external: int, internal_client: str, internal: int, lease: int,
               description: str) -> Optional[Mapping]:
        """Map ``external``; None when another host holds it.

        A mapping of the same internal client on that port is replaced (its internal port may
        change), as miniupnpd replaces its rule.
        """
        table = self.gw.table
        held = table.holder(protocol, external)
        if held is not None and held[1].client != internal_client:
            return None
        if held is None and len(table) >= self.gw.max_mappings:
            raise SoapError(728)
        key: Key = (internal_client, protocol, internal)
        if key in table and (held is None or held[0] != key):  # the same internal port mapped from another port too
            key = (internal_client, protocol, internal, external)
        expires = math.inf if lease == 0 else time.monotonic() + lease
        mapping = Mapping(internal_client, protocol, internal, external, lease, expires, self.method, "", description)
        if held is None:
            table[key] = mapping
        else:
            table.replace(held[0], key, mapping)
        return mapping

    def _mapping_args(self, args: Dict[str, str]) -> Tuple[str, int]:
        for name in ("NewExternalPort", "NewInternalPort", "NewProtocol"):
            if name not in args:
                raise SoapError(402)
        internal = _port(args["NewInternalPort"])
        if internal == 0:
            raise SoapError(402)
        return _protocol(args["NewProtocol"]), internal

    def add_port_mapping(self, args: Dict[str, str], client: str) -> List[Tuple[str, Any]]:
        internal_client = self._internal_client(args, client, 718)
        protocol, internal = self._mapping_args(args)
        if args["NewExternalPort"].strip() in ("", "*", "0"):
            raise SoapError(716)
        external = _port(args["NewExternalPort"])
        lease = self._lease(args, False)
        self._connected()
        if not self.gw.table.authorized(internal_client, internal):
            raise SoapError(606 if self.version == 2 else 718)
        if self._place(protocol, external, internal_client, internal, lease,
                       args.get("NewPortMappingDescription", "")) is None:
            raise SoapError(718)
        return []

    def add_any_port_mapping(self, args: Dict[str, str], client: str) -> List[Tuple[str, Any]]:
        if "NewInternalClient" not in args:
            raise SoapError(402)
        protocol, internal = self._mapping_args(args)
        internal_client = self._internal_client(args, client, 606)
        text = args["NewExternalPort"].strip()
        if text not in ("*", "") and not text.isdigit():
            raise SoapError(402)
        lease = self._lease(args, True)
        self._connected()
        if not self.gw.table.authorized(internal_client, internal):
            raise SoapError(606)
        table = self.gw.table
        wanted = int(text) if text.isdigit() else 0
        held = table.holder(protocol, wanted) if wanted else None
        mine = held is not None and held[1].client == internal_client
        if not mine and (table.external_ports == "random" or not wanted or held is not None):
            wanted = table.free_port(protocol, wanted or internal, ("upnp", protocol, wanted)) or 0
            if not wanted:
                raise SoapError(728)
        mapping = self._place(protocol, wanted, internal_client, internal, lease,
                              args.get("NewPortMappingDescription", ""))
        if mapping is None:
            raise SoapError(718)
        return [("NewReservedPort", mapping.external_port)]

    def _held(self, args: Dict[str, str]) -> Tuple[Key, Mapping]:
        if "NewExternalPort" not in args or "NewProtocol" not in args:
            raise SoapError(402)
        external = _port(args["NewExternalPort"])
        if external == 0:
            raise SoapError(402)
        held = self.gw.table.holder(_protocol(args["NewProtocol"]), external)
        if held is None:
            raise SoapError(714)
        return held

    def delete_port_mapping(self, args: Dict[str, str], client: str) -> List[Tuple[str, Any]]:
        key, mapping = self._held(args)
        if self.gw.secure_mode and mapping.client != client:
            raise SoapError(606 if self.version == 2 else 714)
        del self.gw.table[key]
        return []

    def _describe(self, mapping: Mapping) -> str:
        if mapping.method == self.method:
            return mapping.description
        if mapping.method == "pcp":
            return "PCP MAP " + "x" * 24
        return f"NAT-PMP {mapping.external_port} {mapping.protocol}"

    def get_specific_port_mapping_entry(self, args: Dict[str, str], _client: str) -> List[Tuple[str, Any]]:
        _key, mapping = self._held(args)
        return [("NewInternalPort", mapping.internal_port), ("NewInternalClient", mapping.client), ("NewEnabled", 1),
                ("NewPortMappingDescription", self._describe(mapping)),
                ("NewLeaseDuration", mapping.remaining(time.monotonic()))]

    def get_generic_port_mapping_entry(self, args: Dict[str, str], _client: str) -> List[Tuple[str, Any]]:
        text = args.get("NewPortMappingIndex", "").strip()
        if not text.isdigit():
            raise SoapError(402)
        mappings = list(self.gw.table.values())
        if int(text) >= len(mappings):
            raise SoapError(713)
        mapping = mappings[int(text)]
        return [("NewRemoteHost", ""), ("NewExternalPort", mapping.external_port),
                ("NewProtocol", mapping.protocol.upper()), ("NewInternalPort", mapping.internal_port),
                ("NewInternalClient", mapping.client), ("NewEnabled", 1),
                ("NewPortMappingDescription", self._describe(mapping)),
                ("NewLeaseDuration", mapping.remaining(time.monotonic()))]

    def get_list_of_port_mappings(self, args: Dict[str, str], _client: str) -> List[Tuple[str, Any]]:
        for name in ("NewStartPort", "NewEndPort", "NewProtocol"):
            if name not in args:
                raise SoapError(402)
        start, end, protocol = _port(args["NewStartPort"]), _port(args["NewEndPort"]), _protocol(args["NewProtocol"])
        if start > end:
            raise SoapError(733)
        number = args.get("NewNumberOfPorts", "0").strip()
        limit = int(number) if number.isdigit() and int(number) > 0 else 1000
        now = time.monotonic()
        rows = sorted((m for m in self.gw.table.values() if m.protocol == protocol and start <= m.external_port <= end),
                      key=lambda m: m.external_port)[:limit]
        entries = "".join(
            "<p:PortMappingEntry><p:NewRemoteHost></p:NewRemoteHost>"
            f"<p:NewExternalPort>{m.external_port}</p:NewExternalPort><p:NewProtocol>{m.protocol.upper()}</p:NewProtocol>"
            f"<p:NewInternalPort>{m.internal_port}</p:NewInternalPort><p:NewInternalClient>{m.client}</p:NewInternalClient>"
            f"<p:NewEnabled>1</p:NewEnabled><p:NewDescription>{escape(self._describe(m))}</p:NewDescription>"
            f"<p:NewLeaseTime>{m.remaining(now)}</p:NewLeaseTime></p:PortMappingEntry>" for m in rows)
        listing = ('<p:PortMappingList xmlns:p="urn:schemas-upnp-org:gw:WANIPConnection" '
                   'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                   'xsi:schemaLocation="urn:schemas-upnp-org:gw:WANIPConnection '
                   'http://www.upnp.org/schemas/gw/WANIPConnection-v2.xsd">'
                   f"{entries}</p:PortMappingList>")
        return [("NewPortListing", CData(listing))]
