# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""UPnP IGD documents: the root device description, SOAP control envelopes and faults.

Pure functions, bytes <-> values.  Anything on the LAN may serve a document, so
before a byte is parsed a document must be at most ``MAX_DOCUMENT`` octets and hold
no DOCTYPE and no entity declaration (no entity expansion, no external entities);
xml.etree then parses what is left.  Argument values are XML-escaped.  Every parser
raises MalformedPacket (or UpnpFault for a fault) and nothing else.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urljoin
from xml.etree import ElementTree

from . import errors
from .records import record_class

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Dict, List, Optional, Tuple

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}


def escape(text: str) -> str:
    """XML-escape a value for an element or an attribute (xml.sax.saxutils would pull in urllib.request)."""
    return "".join(_ESCAPES.get(char, char) for char in text)


MAX_DOCUMENT = 64 * 1024
SOAP_ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENCODING = "http://schemas.xmlsoap.org/soap/encoding/"
CONTROL_NS = "urn:schemas-upnp-org:control-1-0"
# The WAN connection services: the UPnP Forum's, and the same under the DSL Forum's TR-064 names, which some ISP
# routers (Huawei HG, AVM and others) give them; the actions are the same.  Each is spoken to in its own type.
SERVICE_PREFIXES = ("urn:schemas-upnp-org:service:WANIPConnection:", "urn:schemas-upnp-org:service:WANPPPConnection:",
                    "urn:dslforum-org:service:WANIPConnection:", "urn:dslforum-org:service:WANPPPConnection:")
IGDV2_LEASE_CAP = 604800  # WANIPConnection:2: a lease of 0 or above a week becomes a week

# WANIPConnection:2 section 2.5 (and UDA 1.1 section 3.2.2 for 402 and 501).
FAULT_NAMES = {
    401: "InvalidAction",
    402: "InvalidArgs",
    501: "ActionFailed",
    606: "ActionNotAuthorized",
    713: "SpecifiedArrayIndexInvalid",
    714: "NoSuchEntryInArray",
    715: "WildCardNotPermittedInSrcIP",
    716: "WildCardNotPermittedInExtPort",
    718: "ConflictInMappingEntry",
    724: "SamePortValuesRequired",
    725: "OnlyPermanentLeasesSupported",
    726: "RemoteHostOnlySupportsWildcard",
    727: "ExternalPortOnlySupportsWildcard",
    728: "NoPortMapsAvailable",
    729: "ConflictWithOtherMechanisms",
    730: "PortMappingNotFound",
    733: "InconsistentParameters",
}
FAULT_CLASSES = {
    402: errors.UpnpInvalidArgs,
    501: errors.UpnpActionFailed,
    606: errors.UpnpNotAuthorized,
    713: errors.UpnpNoSuchEntry,
    714: errors.UpnpNoSuchEntry,
    718: errors.UpnpConflict,
    725: errors.UpnpOnlyPermanentLeases,
    728: errors.UpnpNoPortMapsAvailable,
    729: errors.UpnpConflict,
    730: errors.UpnpNoSuchEntry,
}

_UNSAFE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")

# The plain answer of a successful action, as miniupnpd sends it: an envelope, its body and the
# action's response element with simple out arguments.  Only a subset of XML that is well-formed by
# construction and means the same with or without a parser: printable ASCII, no references, no CR,
# no CDATA, comments or processing instructions, declared prefixes, every element closed by its own
# name.  ``decode_response`` takes it without building a tree; anything else goes through the tree.
_S = rb"[ \t\r\n]*"
_PREFIX = rb"[A-Za-z][A-Za-z0-9]{0,15}"
_PLAIN_RESPONSE = re.compile(
    rb'(?:<\?xml version="1\.0"(?: encoding="(?:utf|UTF)-8")?\?>)?' + _S
    + rb"<(?P<e>" + _PREFIX + rb'):Envelope xmlns:(?P=e)="' + re.escape(SOAP_ENVELOPE).encode()
    + rb'"(?: (?P=e):encodingStyle="[\x20\x21\x23-\x25\x27-\x3b\x3d-\x7e]{0,200}")?>' + _S
    + rb"<(?P=e):Body>" + _S
    + rb"<(?P<u>" + _PREFIX + rb"):(?P<action>[A-Za-z]{1,64})Response"
    + rb' xmlns:(?P=u)="urn:(?:schemas-upnp-org|dslforum-org):service:[A-Za-z0-9:.\-]{1,100}"'
    + rb"(?:/>|>" + _S + rb"(?P<arguments>(?:<(?P<n>[A-Za-z][A-Za-z0-9_]{0,63})>"
    + rb"[\t\n\x20-\x25\x27-\x3b\x3d\x3f-\x7e]*</(?P=n)>" + _S + rb")*)"
    + rb"</(?P=u):(?P=action)Response>)" + _S
    + rb"</(?P=e):Body>" + _S + rb"</(?P=e):Envelope>" + _S + rb"\Z")
_PLAIN_ARGUMENT = re.compile(rb"<([A-Za-z][A-Za-z0-9_]*)>([^<]*)<")


@record_class(frozen=True)
class Service:
    """The WAN connection service of an IGD: where to send its SOAP actions."""

    service_type: str
    control_url: str
    version: int


@record_class(frozen=True)
class Description:
    """A root description: its URL, its device type, the service in use, and every WAN connection service in it
    (``services``, in order of preference: IGD version, WANIPConnection before WANPPPConnection, document order)."""

    url: str
    device_type: str
    service: Service
    services: Tuple[Service, ...] = ()


@record_class(frozen=True)
class StatusInfo:
    status: str
    last_error: str
    uptime: int


@record_class(frozen=True)
class PortMappingEntry:
    """One row of the gateway's table (GetSpecificPortMappingEntry fills only part of it)."""

    protocol: str
    external_port: int
    internal_port: int
    internal_client: str
    enabled: bool
    description: str
    lease: int
    remote_host: str = ""


@record_class(frozen=True)
class Action:
    """A SOAP request: the action's name and its arguments, in the order the service defines."""

    name: str
    arguments: Tuple[Tuple[str, str], ...] = ()


# ------------------------------------------------------------------ documents


def parse_document(data: bytes) -> ElementTree.Element:
    """The XML element tree of a document that passed the safety checks."""
    if not isinstance(data, (bytes, bytearray)):
        raise errors.MalformedPacket("a UPnP document must be bytes")
    if len(data) > MAX_DOCUMENT:
        raise errors.MalformedPacket(f"UPnP document of {len(data)} octets refused (more than {MAX_DOCUMENT})")
    if _UNSAFE.search(data):
        raise errors.MalformedPacket("UPnP document with a DOCTYPE or an entity declaration refused")
    try:
        return ElementTree.fromstring(bytes(data))
    except (ElementTree.ParseError, ValueError, LookupError) as exc:
        raise errors.MalformedPacket(f"UPnP document is not well-formed XML: {exc}") from None


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child_text(element: ElementTree.Element, name: str) -> str:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return ""


def _service_version(service_type: str) -> int:
    tail = service_type.rsplit(":", 1)[-1]
    return int(tail) if _DIGITS.fullmatch(tail) and len(tail) < 4 else 0


def parse_description(data: bytes, url: str) -> Description:
    """The root description's WANIPConnection and WANPPPConnection services (``SERVICE_PREFIXES``), every one of them.

    ``service`` is the first in order of preference (v2 first, WANIPConnection before
    WANPPPConnection, then document order); which one is used is the session's choice.  Each
    controlURL is resolved against URLBase, or against ``url`` (where the description came
    from) when it has none.
    """
    root = parse_document(data)
    if _local(root.tag) != "root":
        raise errors.MalformedPacket(f"UPnP description at {url} has no root element")
    base = _child_text(root, "URLBase") or url
    found: List[Tuple[int, int, Service]] = []
    order = 0
    for device in root.iter():
        if _local(device.tag) != "device":
            continue
        for service_list in device:
            if _local(service_list.tag) != "serviceList":
                continue
            for service in service_list:
                service_type = _child_text(service, "serviceType")
                control = _child_text(service, "controlURL")
                if not service_type.startswith(SERVICE_PREFIXES) or not control:
                    continue
                version = _service_version(service_type)
                ip_first = 0 if "WANIPConnection" in service_type else 1
                try:
                    resolved = urljoin(base, control)
                except ValueError:
                    continue
                found.append((-version, ip_first * 1000 + order, Service(service_type, resolved, version)))
                order += 1
    if not found:
        raise errors.MalformedPacket(f"UPnP description at {url} has no WANIPConnection or WANPPPConnection service")
    found.sort(key=lambda item: (item[0], item[1]))
    top = [child for child in root if _local(child.tag) == "device"]
    services = tuple(item[2] for item in found)
    return Description(url, _child_text(top[0], "deviceType") if top else "", services[0], services)


# ------------------------------------------------------------------ SOAP


def encode_action(service_type: str, action: Action) -> Tuple[bytes, str]:
    """The SOAP body of ``action`` and the value of its SOAPAction header."""
    return _encode_action(service_type, action.name, action.arguments)


@functools.lru_cache(maxsize=64)
def _encode_action(service_type: str, name: str, arguments: Tuple[Tuple[str, str], ...]) -> Tuple[bytes, str]:
    # Keyed by the action's fields: a tuple of strings hashes in C, a record's __hash__ in Python.
    if not re.fullmatch(r"[A-Za-z0-9:.\-]+", service_type) or not re.fullmatch(r"[A-Za-z]+", name):
        raise ValueError(f"invalid UPnP service type or action {service_type!r} {name!r}")
    values = "".join(f"<{key}>{escape(str(value))}</{key}>" for key, value in arguments)
    body = (
        '<?xml version="1.0"?>\r\n'
        f'<s:Envelope xmlns:s="{SOAP_ENVELOPE}" s:encodingStyle="{SOAP_ENCODING}"><s:Body>'
        f'<u:{name} xmlns:u="{escape(service_type)}">{values}</u:{name}>'
        "</s:Body></s:Envelope>\r\n"
    )
    return body.encode("utf-8"), f'"{service_type}#{name}"'


def _body(root: ElementTree.Element) -> ElementTree.Element:
    if _local(root.tag) != "Envelope":
        raise errors.MalformedPacket("SOAP answer without an Envelope")
    for child in root:
        if _local(child.tag) == "Body":
            return child
    raise errors.MalformedPacket("SOAP answer without a Body")


def fault_error(code: int, detail: str = "") -> errors.UpnpFault:
    name = FAULT_NAMES.get(code, f"UPnPError{code}")
    return FAULT_CLASSES.get(code, errors.UpnpFault)(code, name, detail)


def _fault(body: ElementTree.Element) -> Optional[Tuple[int, str]]:
    for fault in body:
        if _local(fault.tag) != "Fault":
            continue
        for element in fault.iter():
            if _local(element.tag) == "UPnPError":
                code = _child_text(element, "errorCode")
                if not _DIGITS.fullmatch(code) or len(code) > 6:
                    raise errors.MalformedPacket(f"SOAP fault with errorCode {code[:20]!r}")
                return int(code), _child_text(element, "errorDescription")[:200]
        raise errors.MalformedPacket("SOAP fault without a UPnPError")
    return None


def decode_response(data: bytes, action: str) -> Dict[str, str]:
    """The out arguments of ``action``'s answer, by name.  A fault raises UpnpFault."""
    values = _plain_response(data, action)
    return values if values is not None else _tree_response(data, action)


def _tree_response(data: bytes, action: str) -> Dict[str, str]:
    body = _body(parse_document(data))
    fault = _fault(body)
    if fault is not None:
        raise fault_error(fault[0])
    for element in body:
        if _local(element.tag) == f"{action}Response":
            return {_local(child.tag): (child.text or "").strip() for child in element}
    raise errors.MalformedPacket(f"SOAP answer without a {action}Response")


def _plain_response(data: bytes, action: str) -> Optional[Dict[str, str]]:
    """The out arguments of a plain answer (``_PLAIN_RESPONSE``) to ``action``, or None for any other document.

    What it returns is what the tree gives for the same document (the fuzz tests compare them).
    """
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_DOCUMENT:
        return None
    match = _PLAIN_RESPONSE.match(data)
    if match is None or match.group("action") != action.encode("ascii", "replace"):
        return None
    if match.group("e")[:3].lower() == b"xml" or match.group("u")[:3].lower() == b"xml":
        return None  # prefixes reserved by Namespaces in XML: the parser's call
    arguments = match.group("arguments")
    if not arguments:
        return {}
    return {name.decode("ascii"): text.decode("ascii").strip() for name, text in _PLAIN_ARGUMENT.findall(arguments)}


# ------------------------------------------------------------------ actions


def _port_key(protocol: str, external_port: int, remote_host: str = "") -> Tuple[Tuple[str, str], ...]:
    return (("NewRemoteHost", remote_host), ("NewExternalPort", str(external_port)), ("NewProtocol", protocol.upper()))


_GET_EXTERNAL_IP_ADDRESS = Action("GetExternalIPAddress")  # records are frozen: one of each will do
_GET_STATUS_INFO = Action("GetStatusInfo")


def get_external_ip_address() -> Action:
    return _GET_EXTERNAL_IP_ADDRESS


def get_status_info() -> Action:
    return _GET_STATUS_INFO


def add_port_mapping(protocol: str, external_port: int, internal_port: int, internal_client: str, lease: int,
                     description: str, any_port: bool = False) -> Action:
    """AddPortMapping, or AddAnyPortMapping (IGDv2) with ``any_port``: the same arguments."""
    return Action("AddAnyPortMapping" if any_port else "AddPortMapping", _port_key(protocol, external_port) + (
        ("NewInternalPort", str(internal_port)),
        ("NewInternalClient", internal_client),
        ("NewEnabled", "1"),
        ("NewPortMappingDescription", description),
        ("NewLeaseDuration", str(lease)),
    ))


def delete_port_mapping(protocol: str, external_port: int) -> Action:
    return Action("DeletePortMapping", _port_key(protocol, external_port))


def get_specific_port_mapping_entry(protocol: str, external_port: int) -> Action:
    return Action("GetSpecificPortMappingEntry", _port_key(protocol, external_port))


def get_generic_port_mapping_entry(index: int) -> Action:
    return Action("GetGenericPortMappingEntry", (("NewPortMappingIndex", str(index)),))


def get_list_of_port_mappings(protocol: str, start: int = 0, end: int = 65535, count: int = 1000) -> Action:
    return Action("GetListOfPortMappings", (
        ("NewStartPort", str(start)), ("NewEndPort", str(end)), ("NewProtocol", protocol.upper()),
        ("NewManage", "0"), ("NewNumberOfPorts", str(count)),
    ))


# ------------------------------------------------------------------ answers


def _int(values: Dict[str, str], name: str, maximum: int) -> int:
    text = values.get(name, "")
    if not _DIGITS.fullmatch(text) or len(text) > 10 or int(text) > maximum:
        raise errors.MalformedPacket(f"UPnP answer with {name} {text[:20]!r}")
    return int(text)


def status_info(values: Dict[str, str]) -> StatusInfo:
    return StatusInfo(values.get("NewConnectionStatus", ""), values.get("NewLastConnectionError", ""),
                      _int(values, "NewUptime", 2 ** 32 - 1) if values.get("NewUptime") else 0)


def reserved_port(values: Dict[str, str]) -> int:
    return _int(values, "NewReservedPort", 65535)


def _entry(values: Dict[str, str], protocol: str, external_port: int) -> PortMappingEntry:
    return PortMappingEntry(
        protocol=protocol.lower(),
        external_port=external_port,
        internal_port=_int(values, "NewInternalPort", 65535),
        internal_client=values.get("NewInternalClient", ""),
        enabled=values.get("NewEnabled", "1") in ("1", "true", "yes"),
        description=values.get("NewPortMappingDescription", values.get("NewDescription", "")),
        lease=_int(values, "NewLeaseDuration", 2 ** 32 - 1) if "NewLeaseDuration" in values else
        _int(values, "NewLeaseTime", 2 ** 32 - 1) if values.get("NewLeaseTime") else 0,
        remote_host=values.get("NewRemoteHost", ""),
    )


def specific_entry(values: Dict[str, str], protocol: str, external_port: int) -> PortMappingEntry:
    return _entry(values, protocol, external_port)


def generic_entry(values: Dict[str, str]) -> PortMappingEntry:
    protocol = values.get("NewProtocol", "").lower()
    if protocol not in ("tcp", "udp"):
        raise errors.MalformedPacket(f"UPnP table entry with protocol {protocol[:20]!r}")
    return _entry(values, protocol, _int(values, "NewExternalPort", 65535))


def port_listing(values: Dict[str, str]) -> List[PortMappingEntry]:
    """GetListOfPortMappings' NewPortListing: a PortMappingList document of its own."""
    listing = values.get("NewPortListing", "")
    if not listing:
        return []
    root = parse_document(listing.encode("utf-8"))
    if _local(root.tag) != "PortMappingList":
        raise errors.MalformedPacket("NewPortListing is not a PortMappingList")
    entries = []
    for element in root:
        if _local(element.tag) == "PortMappingEntry":
            entries.append(generic_entry({_local(child.tag): (child.text or "").strip() for child in element}))
    return entries
