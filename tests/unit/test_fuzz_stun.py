"""Fuzzing the STUN codec and client: random and mutated datagrams.

Properties:
- ``decode`` raises nothing but MalformedPacket; what it accepts has the cookie, a length
  that matches, attributes inside the message, and a FINGERPRINT (when present) that is right;
- ``parse_binding_response`` never raises; what it accepts answers this transaction;
- the simulated server's encode (simgw/stun_wire.py) -> the client's decode is the identity for Binding
  responses of any address, port and id;
- the client, fed garbage from the server's address, ignores it: with only garbage a Binding
  gets no answer, with garbage and then the right response it returns the right address.

Two run lengths, as tests/unit/test_fuzz.py: a derandomized quick run in ``make test``,
FUZZ_EXAMPLES cases (random) in ``make fuzz``.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from collections import Counter
from typing import List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import FUZZ, mutated
from portmap import wire_stun
from portmap.errors import MalformedPacket, StunError
from portmap.stun import StunClient
from simgw import stun_wire
from tests.unit.plugins.module_utils.portmap.stunnet import PRIMARY, Network

CASES: Counter = Counter()
VALID_ANSWERS: Counter = Counter()

TXID = bytes(range(1, 13))
SEEDS = [
    stun_wire.encode_binding_response(TXID, ("11.22.33.2", 40000), ("11.22.33.3", 3479), ("11.22.33.1", 3478)),
    stun_wire.encode_binding_response(TXID, ("2001:db8::7", 1), xor=False),
    stun_wire.encode_error_response(TXID, 420, "Unknown Attribute"),
    stun_wire.encode(wire_stun.BINDING_SUCCESS, TXID, [(wire_stun.SOFTWARE, b"coturn")], integrity_key=b"k",
                     fingerprint=True),
    wire_stun.binding_request(TXID, True, True),
    bytes.fromhex("0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643"
                  "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96"),  # RFC 5769 2.2
]


@pytest.fixture(scope="module", autouse=True)
def report_cases():
    yield
    total = sum(CASES.values())
    print("\nFUZZ CASES (STUN): " + ", ".join(f"{name} {count}" for name, count in sorted(CASES.items()))
          + f"; total {total} (of the client's, {VALID_ANSWERS['client']} drew a valid answer, not garbage)")


def fix_length(data: bytearray) -> None:
    if len(data) >= 4:
        data[2:4] = struct.pack("!H", (len(data) - 20) & 0xFFFF)  # gets past the length check


def datagrams() -> st.SearchStrategy:
    return st.one_of(st.binary(max_size=600), mutated(SEEDS, fix_length))


@FUZZ
@given(datagram=datagrams())
def test_decode_raises_only_malformed_packet(datagram: bytes) -> None:
    CASES["decode"] += 1
    try:
        message = wire_stun.decode(datagram)
    except MalformedPacket:
        return
    assert struct.unpack_from("!I", datagram, 4)[0] == wire_stun.MAGIC_COOKIE
    assert struct.unpack_from("!H", datagram, 2)[0] == len(datagram) - 20 and len(datagram) % 4 == 0
    for attribute in message.attributes:
        assert 20 <= attribute.offset and attribute.offset + 4 + len(attribute.value) <= len(datagram)
        assert datagram[attribute.offset + 4:attribute.offset + 4 + len(attribute.value)] == attribute.value
    fingerprint = message.find(wire_stun.FINGERPRINT)
    if fingerprint is not None:
        assert fingerprint.offset == len(datagram) - 8
        assert struct.unpack("!I", fingerprint.value)[0] == zlib.crc32(datagram[:-8]) ^ wire_stun.FINGERPRINT_XOR


@FUZZ
@given(datagram=datagrams())
def test_binding_response_parser_never_raises(datagram: bytes) -> None:
    CASES["parser"] += 1
    response = wire_stun.parse_binding_response(datagram, TXID)
    if response is None:
        return
    assert datagram[8:20] == TXID
    assert struct.unpack_from("!H", datagram)[0] in (wire_stun.BINDING_SUCCESS, wire_stun.BINDING_ERROR)
    assert response.success == (struct.unpack_from("!H", datagram)[0] == wire_stun.BINDING_SUCCESS)
    for address in (response.mapped, response.other_address, response.response_origin):
        if address is not None:
            ipaddress.ip_address(address[0])
            assert 0 <= address[1] <= 65535
    if not response.success:
        assert 0 <= response.error_code <= 799


addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)


@FUZZ
@given(txid=st.binary(min_size=12, max_size=12), mapped=addresses, port=st.integers(0, 65535),
       other=addresses, other_port=st.integers(0, 65535), xor=st.booleans())
def test_binding_response_round_trip(txid: bytes, mapped: str, port: int, other: str, other_port: int,
                                     xor: bool) -> None:
    CASES["round trip"] += 1
    datagram = stun_wire.encode_binding_response(txid, (mapped, port), (other, other_port), (other, other_port), xor)
    response = wire_stun.parse_binding_response(datagram, txid)
    assert response is not None and response.success
    assert (response.mapped, response.other_address, response.response_origin) == (
        (mapped, port), (other, other_port), (other, other_port))
    assert (response.xor_mapped is not None) == xor


@FUZZ
@given(garbage=st.lists(datagrams(), min_size=1, max_size=4), then_right=st.booleans())
def test_client_ignores_garbage(garbage: List[bytes], then_right: bool) -> None:
    CASES["client"] += 1
    if any(wire_stun.parse_binding_response(g, TXID) is not None for g in garbage):
        VALID_ANSWERS["client"] += 1
        return
    network = Network(silent=not then_right)
    client = StunClient(PRIMARY, clock=network.clock, endpoint_factory=network.endpoint, transaction_ids=lambda: TXID)
    endpoint = network.endpoint()
    endpoint.queue.extend((network.clock.now + 0.0001 * (i + 1), g, PRIMARY) for i, g in enumerate(garbage))
    try:
        response = client.binding(endpoint, PRIMARY, 0.8)
    except StunError as exc:  # only a valid response may raise, and garbage is not one
        raise AssertionError(f"garbage raised {exc}") from exc
    if then_right:
        assert response is not None and response.mapped == ("198.51.100.7", 50000)
    else:
        assert response is None
