"""Fuzzing the UPnP IGD parsers and session: SSDP answers, descriptions, SOAP answers, HTTP, as a hostile LAN would send them.

Seeds are miniupnpd's recorded answers (vectors/upnp/), mutated as in test_fuzz.py.
Properties:
- the SSDP parser never raises, and what it accepts has a LOCATION and a target;
- the description, SOAP and port listing parsers raise MalformedPacket or a UpnpFault
  and nothing else; an accepted description names a WAN connection service;
- a SOAP answer the plain-answer path accepts (no tree built) gives exactly what the XML tree
  gives for the same document: the short way is never less strict than the parser;
- an HTTP head the plain-head path reads (no header dict) gives the status, reason and
  Content-Length the header dict gives, and has no Transfer-Encoding;
- the HTTP client and the IGD session, fed any answer, return or raise a PortmapError,
  never another exception, and never read past the deadline; a URL they fetch is on the
  gateway's address.

Run lengths as in test_fuzz.py: a few hundred derandomized examples in ``make test``,
FUZZ_EXAMPLES random ones in ``make fuzz``; the counts are printed at the end.
"""

from __future__ import annotations

import glob
import os
import re
from collections import Counter
from typing import List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.plugins.module_utils.portmap.fakes_upnp import GATEWAY, URL, VECTORS, FakeIgd, body_of, vector
from portmap import errors, transport_upnp, wire_ssdp, wire_upnp
from portmap.transport_upnp import Http
from portmap.methods.igd import IgdSession
from test_fuzz import FUZZ, mutated

CASES: Counter = Counter()
ACCEPTED: Counter = Counter()

NAMES = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(VECTORS, "*.b64")))
SSDP = [vector(n) for n in NAMES if "-ssdp-" in n] + [
    b"NOTIFY * HTTP/1.1\r\nLOCATION: http://192.0.2.1:5000/rootDesc.xml\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n\r\n"]
HTTP = [vector(n) for n in NAMES if "-ssdp-" not in n]
BODIES = [body_of(raw) for raw in HTTP]
DESCRIPTIONS = [body_of(vector("v2-rootDesc")), body_of(vector("v1-rootDesc"))]
ACTIONS = ["GetExternalIPAddress", "GetStatusInfo", "AddPortMapping", "AddAnyPortMapping", "DeletePortMapping",
           "GetSpecificPortMappingEntry", "GetGenericPortMappingEntry", "GetListOfPortMappings"]
XML_PIECES = [b"<!DOCTYPE x>", b"<!ENTITY a 'b'>", b"&a;", b"]]>", b"<![CDATA[", b"</s:Body>", b"<errorCode>",
              b"\x00", b"<?xml version='1.0' encoding='utf-16'?>", b"xmlns:u=\"", b"<controlURL>http://192.0.2.66/x"]


@st.composite
def xml_mutated(draw: st.DrawFn, seeds: List[bytes]) -> bytes:
    """A document with XML-shaped pieces inserted, then byte mutations."""
    data = draw(st.sampled_from(seeds))
    for _step in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(XML_PIECES)) + data[at:]
    return draw(mutated([data])) if draw(st.booleans()) else data


def documents(seeds: List[bytes]) -> st.SearchStrategy:
    return st.one_of(st.binary(max_size=600), mutated(seeds), xml_mutated(seeds))


@pytest.fixture(scope="module", autouse=True)
def report_cases():
    yield
    total = sum(CASES.values())
    print("\nUPNP FUZZ CASES: " + ", ".join(f"{name} {count}" for name, count in sorted(CASES.items()))
          + f"; total {total}; accepted: " + ", ".join(f"{name} {count}" for name, count in sorted(ACCEPTED.items())))


@FUZZ
@given(data=st.one_of(st.binary(max_size=600), mutated(SSDP)))
def test_ssdp_parser(data: bytes) -> None:
    CASES["ssdp"] += 1
    message = wire_ssdp.decode(data)
    if message is None:
        return
    ACCEPTED["ssdp"] += 1
    assert message.kind in ("response", "notify") and message.location and message.target
    assert message.boot_id is None or 0 <= message.boot_id < 2 ** 31


@FUZZ
@given(data=documents(DESCRIPTIONS))
def test_description_parser(data: bytes) -> None:
    CASES["description"] += 1
    try:
        found = wire_upnp.parse_description(data, URL)
    except errors.MalformedPacket:
        return
    ACCEPTED["description"] += 1
    assert found.service.service_type.startswith(wire_upnp.SERVICE_PREFIXES)
    assert isinstance(found.service.control_url, str) and found.service.control_url
    assert b"<!DOCTYPE" not in data.upper() and b"<!ENTITY" not in data.upper()


@FUZZ
@given(action=st.sampled_from(ACTIONS), data=documents(BODIES))
def test_soap_parsers(action: str, data: bytes) -> None:
    CASES["soap"] += 1
    try:
        values = wire_upnp.decode_response(data, action)
    except errors.UpnpFault as fault:
        ACCEPTED["soap fault"] += 1
        assert fault.method == "upnp" and 0 <= fault.code < 10 ** 6 and fault.name
        return
    except errors.MalformedPacket:
        return
    ACCEPTED["soap"] += 1
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())
    for parse in (wire_upnp.status_info, wire_upnp.reserved_port, wire_upnp.generic_entry, wire_upnp.port_listing,
                  lambda v: wire_upnp.specific_entry(v, "tcp", 8080)):
        try:
            parse(values)
        except errors.MalformedPacket:
            pass


PLAIN = [body for body in BODIES if b"Response" in body and b"Fault" not in body] + [
    b'<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
    b'\r\n <soap:Body>\t<m:GetStatusInfoResponse xmlns:m="urn:schemas-upnp-org:service:WANPPPConnection:1">\n'
    b"<NewConnectionStatus> Connected\t</NewConnectionStatus>\n<NewUptime>\n12</NewUptime><NewUptime>7</NewUptime>"
    b"<NewLastConnectionError></NewLastConnectionError></m:GetStatusInfoResponse></soap:Body></soap:Envelope>\r\n",
]
PLAIN_PIECES = [b"&amp;", b"&#65;", b"\r\n", b"]]>", b"<!-- c -->", b"<?pi x?>", b"<![CDATA[x]]>", b" ", b'xmlns:xml="urn:x" ',
                b'xmlns:u="" ', b"<x/>", b"<x>", b"</x>", b"<NewX>y</NewX>", b"Response"]
PLAIN_SWAPS = [(b"u:", b"s:"), (b"s:", b""), (b"u:", b""), (b'"', b"'"), (b"Response", b"Reply"), (b"Envelope", b"envelope"), (b"1.0", b"1.1"),
               (b"\r\n", b""), (b"<?xml", b" <?xml"), (b"envelope/", b"envelope"), (b"service:", b"device:")]
ODD_PIECES = [bytes([octet]) for octet in b"&;#<>]\r\n\t \x00\x0b\x7f\xff'\"=:a"] + [b"]]>", b"&amp;", b"\xc3\xa9", b"\r\n"]
PREFIXES = [b"xml", b"xmlns", b"XML", b"xmlfoo", b"s", b"u", b"a1", b"1a", b"a-b", b""]
# Where a plain answer holds something of its own: an argument's text, an attribute value, a prefix, a name.
PLAIN_SPOTS = [(re.compile(rb"<([A-Za-z][A-Za-z0-9_]*)>([^<]*)</"), 2), (re.compile(rb'="([^"]*)"'), 1),
               (re.compile(rb"</?([A-Za-z0-9]+):"), 1), (re.compile(rb"xmlns:([A-Za-z0-9]+)="), 1),
               (re.compile(rb"<([A-Za-z][A-Za-z0-9_]*)>"), 1), (re.compile(rb"(>)[ \t\r\n]*<"), 1)]


@st.composite
def plain_mutated(draw: st.DrawFn) -> bytes:
    """A plain answer with a text, value or name rewritten, a prefix renamed, a token swapped or an XML piece inserted."""
    data = draw(st.sampled_from(PLAIN))
    for _step in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["rewrite", "rewrite", "rewrite", "rename", "swap", "insert"]))
        if kind == "rewrite":
            pattern, group = draw(st.sampled_from(PLAIN_SPOTS[:1] * 4 + PLAIN_SPOTS))
            spots = [match.span(group) for match in pattern.finditer(data)]
            if spots:
                start, end = draw(st.sampled_from(spots))
                if draw(st.booleans()):
                    start = end = draw(st.integers(start, end))  # an insertion into it
                data = data[:start] + b"".join(draw(st.lists(st.sampled_from(ODD_PIECES), min_size=1, max_size=3))) + data[end:]
        elif kind == "rename":  # a prefix, everywhere it is declared and used
            used = sorted(set(re.findall(rb"<([A-Za-z0-9]+):", data)))
            if used:
                old = re.escape(draw(st.sampled_from(used)))
                data = re.sub(rb"(?<![A-Za-z0-9])" + old + rb"(?=[:=])", draw(st.sampled_from(PREFIXES)), data)
        elif kind == "swap":
            old, new = draw(st.sampled_from(PLAIN_SWAPS))
            if draw(st.booleans()):
                data = data.replace(old, new)
            else:
                at = data.find(old, draw(st.integers(0, len(data))))
                at = data.find(old) if at < 0 else at
                data = data if at < 0 else data[:at] + new + data[at + len(old):]
        else:
            after_tags = [at + 1 for at, octet in enumerate(data) if octet == ord(">")]
            at = draw(st.one_of(st.integers(0, len(data)), st.sampled_from(after_tags)))
            data = data[:at] + draw(st.sampled_from(PLAIN_PIECES)) + data[at:]
    return data


@FUZZ
@given(data=plain_mutated())
def test_the_plain_answer_path_agrees_with_the_tree(data: bytes) -> None:
    CASES["plain soap"] += 1
    named = re.search(rb":([A-Za-z]+)Response", data)
    action = named.group(1).decode() if named else "AddPortMapping"  # the action it answers (another: None, always)
    values = wire_upnp._plain_response(data, action)  # pylint: disable=protected-access
    if values is None:
        return
    ACCEPTED["plain soap"] += 1
    assert values == wire_upnp._tree_response(data, action)  # pylint: disable=protected-access


HEADS = [raw.split(b"\r\n\r\n", 1)[0] for raw in HTTP]
HEAD_LINES = [b"Content-Length: 7", b"content-length:12 ", b"CONTENT-LENGTH: x", b" Content-Length: 3", b"Content-Length :4",
              b"Transfer-Encoding: chunked", b"transfer-encoding:gzip", b"X-A: b", b"no colon", b"", b":", b"X_Y: 1"]
HEAD_PIECES = [bytes([octet]) for octet in b" \t\r\n:\x00\x0b\x1c\x7f\x85\xa0\xe9-_aZ5"]


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    """miniupnpd's heads with lines inserted, names and values rewritten from odd octets, cases changed."""
    lines = draw(st.sampled_from(HEADS)).split(b"\r\n")
    for _step in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["line", "rewrite", "case"]))
        at = draw(st.integers(0, len(lines) - 1))
        if kind == "line":
            lines.insert(max(1, at), draw(st.sampled_from(HEAD_LINES)))
        elif kind == "rewrite":
            line = lines[at]
            where = draw(st.integers(0, len(line)))
            cut = draw(st.integers(where, len(line)))
            lines[at] = line[:where] + b"".join(draw(st.lists(st.sampled_from(HEAD_PIECES), max_size=3))) + line[cut:]
        else:
            lines[at] = lines[at].swapcase() if draw(st.booleans()) else lines[at].lower()
    return b"\r\n".join(lines)


@FUZZ
@given(head=heads())
def test_the_plain_head_path_agrees_with_the_header_dict(head: bytes) -> None:
    CASES["plain head"] += 1
    framing = transport_upnp._plain_framing(head)  # pylint: disable=protected-access
    if framing is None:
        return
    ACCEPTED["plain head"] += 1
    status, reason, headers = transport_upnp._parse_head(head, "w", "x")  # pylint: disable=protected-access
    assert framing == (status, reason, headers.get("content-length")) and "transfer-encoding" not in headers


@FUZZ
@given(data=st.one_of(st.binary(max_size=600), mutated(HTTP)), piece=st.integers(1, 4096))
def test_http_client(data: bytes, piece: int) -> None:
    CASES["http"] += 1
    igd = FakeIgd({"GET /rootDesc.xml": data})
    igd.piece = piece
    start = igd.clock.now
    try:
        response = Http(GATEWAY, clock=igd.clock, stream_factory=igd.streams).request("GET", URL, start + 1.0)
    except errors.PortmapError:
        return
    finally:
        assert igd.clock.now <= start + 1.0 + 1e-9
    ACCEPTED["http"] += 1
    assert 100 <= response.status <= 999 and len(response.body) <= 64 * 1024


@FUZZ
@given(which=st.sampled_from(["GET /rootDesc.xml"] + ACTIONS), data=st.one_of(mutated(HTTP), st.sampled_from(HTTP)),
       operation=st.sampled_from(["map", "external", "list", "delete"]))
def test_session_survives_any_answer(which: str, data: bytes, operation: str) -> None:
    CASES["session"] += 1
    igd = FakeIgd({which: data})
    session = IgdSession(GATEWAY, upnp_url=URL, timeout=1.0, clock=igd.clock, stream_factory=igd.streams,
                         datagrams_factory=igd.datagrams)
    start = igd.clock.now
    try:
        if operation == "map":
            session.map("tcp", 8080, 8080, 3600, "fuzz")
        elif operation == "external":
            session.external_address()
        elif operation == "list":
            session.list_mappings(limit=20)
        else:
            session.delete("tcp", 8080)
    except errors.PortmapError:
        return
    finally:
        assert igd.clock.now <= start + 1.0 + 1e-9
    ACCEPTED["session"] += 1
    if session.description is not None:
        assert session.description.service.control_url.startswith(f"http://{GATEWAY}:")
