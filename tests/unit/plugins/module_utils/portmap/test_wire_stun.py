"""The client's STUN codec against the RFC 5769 test vectors, the responses it reads, and what it must refuse.

Responses are made with the simulated server's encoders (simgw/stun_wire.py, tested in
tests/unit/test_simgw_stun_wire.py).
"""

from __future__ import annotations

import struct

import pytest

from portmap import wire_stun
from portmap.errors import MalformedPacket
from simgw import stun_wire
from tests.unit.plugins.module_utils.portmap.stun_vectors import PASSWORD, REQUEST, RESPONSE_V4, RESPONSE_V6, TXID


def test_rfc5769_sample_request():
    message = wire_stun.decode(REQUEST)  # FINGERPRINT verified in decode
    assert (message.msg_type, message.transaction_id) == (wire_stun.BINDING_REQUEST, TXID)
    assert message.get(wire_stun.SOFTWARE) == b"STUN test client"
    assert message.get(wire_stun.USERNAME) == b"evtj:h6vY"
    assert message.get(wire_stun.PRIORITY) == bytes.fromhex("6e0001ff")
    assert stun_wire.verify_integrity(message, stun_wire.short_term_key(PASSWORD))
    assert not stun_wire.verify_integrity(message, b"wrong")
    assert message.unknown_required() == ()


@pytest.mark.parametrize("datagram, address", [
    (RESPONSE_V4, ("192.0.2.1", 32853)),
    (RESPONSE_V6, ("2001:db8:1234:5678:11:2233:4455:6677", 32853)),
])
def test_rfc5769_sample_responses(datagram, address):
    response = wire_stun.parse_binding_response(datagram, TXID)
    assert response is not None and response.success
    assert response.mapped == response.xor_mapped == address
    assert response.software == "test vector"
    assert stun_wire.verify_integrity(wire_stun.decode(datagram), stun_wire.short_term_key(PASSWORD))
    assert wire_stun.parse_binding_response(datagram, bytes(12)) is None  # another transaction


def test_every_flipped_bit_of_a_vector_is_refused_by_the_fingerprint():
    key = stun_wire.short_term_key(PASSWORD)
    fingerprint_at = len(RESPONSE_V4) - 8
    for at in range(len(RESPONSE_V4)):
        for bit in (0, 7):
            data = bytearray(RESPONSE_V4)
            data[at] ^= 1 << bit
            try:
                message = wire_stun.decode(bytes(data))
            except MalformedPacket:
                continue
            # only a flip in FINGERPRINT's own type makes it another (optional) attribute, unchecked
            assert fingerprint_at <= at < fingerprint_at + 2 and message.find(wire_stun.FINGERPRINT) is None, (at, bit)
    assert stun_wire.verify_integrity(wire_stun.decode(RESPONSE_V4), key)


def test_binding_request_and_change_request():
    txid = bytes(range(12))
    plain = wire_stun.decode(wire_stun.binding_request(txid))
    assert (plain.msg_type, plain.transaction_id, plain.attributes) == (wire_stun.BINDING_REQUEST, txid, ())
    assert len(wire_stun.binding_request(txid)) == 20
    for change_ip, change_port, flags in [(True, True, 6), (False, True, 2), (True, False, 4)]:
        message = wire_stun.decode(wire_stun.binding_request(txid, change_ip, change_port))
        assert message.get(wire_stun.CHANGE_REQUEST) == struct.pack("!I", flags)


def test_rfc3489_server_mapped_and_changed_address():
    txid = bytes(range(12))
    datagram = wire_stun.encode(wire_stun.BINDING_SUCCESS, txid, [
        (wire_stun.MAPPED_ADDRESS, stun_wire.encode_address(("11.22.33.2", 40001))),
        (wire_stun.CHANGED_ADDRESS, stun_wire.encode_address(("11.22.33.3", 3479)))])
    response = wire_stun.parse_binding_response(datagram, txid)
    assert (response.mapped, response.xor_mapped, response.other_address) == (
        ("11.22.33.2", 40001), None, ("11.22.33.3", 3479))


def test_xor_mapped_address_wins_over_mapped_address():
    txid = bytes(range(12))
    datagram = wire_stun.encode(wire_stun.BINDING_SUCCESS, txid, [
        (wire_stun.MAPPED_ADDRESS, stun_wire.encode_address(("10.0.0.1", 1))),  # rewritten by an ALG
        (wire_stun.XOR_MAPPED_ADDRESS, stun_wire.encode_xor_address(("11.22.33.2", 40001), txid))])
    assert wire_stun.parse_binding_response(datagram, txid).mapped == ("11.22.33.2", 40001)


def test_unknown_comprehension_required_attributes_are_reported_optional_ones_not():
    txid = bytes(range(12))
    mapped = (wire_stun.XOR_MAPPED_ADDRESS, stun_wire.encode_xor_address(("11.22.33.2", 1), txid))
    required = wire_stun.encode(wire_stun.BINDING_SUCCESS, txid, [mapped, (0x7FFF, b"x"), (0x0002, b"")])
    optional = wire_stun.encode(wire_stun.BINDING_SUCCESS, txid, [mapped, (0xC001, b"anything")])
    assert wire_stun.parse_binding_response(required, txid).unknown_required == (0x7FFF, 0x0002)
    assert wire_stun.parse_binding_response(optional, txid).unknown_required == ()


def test_attributes_after_message_integrity_are_ignored_except_fingerprint():
    txid = bytes(range(12))
    body = stun_wire.encode(wire_stun.BINDING_SUCCESS, txid, [
        (wire_stun.XOR_MAPPED_ADDRESS, stun_wire.encode_xor_address(("11.22.33.2", 1), txid))], integrity_key=b"k")
    extra = struct.pack("!HH", 0x7FFE, 4) + b"late"
    data = body[:2] + struct.pack("!H", len(body) - 20 + 8) + body[4:] + extra
    message = wire_stun.decode(data)
    assert message.unknown_required() == () and message.get(0x7FFE) is None
    assert stun_wire.verify_integrity(message, b"k")


@pytest.mark.parametrize("datagram, why", [
    (b"", "at least 20"),
    (RESPONSE_V4[:19], "at least 20"),
    (b"\xc1" + RESPONSE_V4[1:], "first two bits"),
    (RESPONSE_V4[:4] + b"\x21\x12\xa4\x43" + RESPONSE_V4[8:], "magic cookie"),
    (RESPONSE_V4[:-1], "length"),
    (RESPONSE_V4 + b"\x00\x00\x00\x00", "length"),
    (RESPONSE_V4[:-4] + b"\x00\x00\x00\x00", "FINGERPRINT does not match"),
    (bytes.fromhex("000100042112a442") + bytes(12) + bytes.fromhex("00200008"), "runs past"),
    (bytes.fromhex("000100042112a442") + bytes(12) + bytes.fromhex("00060001"), "runs past"),
])
def test_malformed_messages(datagram, why):
    with pytest.raises(MalformedPacket, match=why):
        wire_stun.decode(datagram)
    assert wire_stun.parse_binding_response(datagram, TXID) is None


def test_fingerprint_not_last_is_malformed():
    txid = bytes(range(12))
    data = stun_wire.encode(wire_stun.BINDING_REQUEST, txid, fingerprint=True)
    data = data[:2] + struct.pack("!H", 16) + data[4:] + struct.pack("!HH", wire_stun.SOFTWARE, 4) + b"abcd"
    with pytest.raises(MalformedPacket, match="last attribute"):
        wire_stun.decode(data)


def test_bad_address_attributes_drop_the_response():
    txid = bytes(range(12))
    for value in (b"", b"\x00\x01\x00", b"\x00\x03\x00\x01\x01\x02\x03\x04", b"\x00\x01\x00\x01\x01\x02\x03"):
        data = wire_stun.encode(wire_stun.BINDING_SUCCESS, txid, [(wire_stun.XOR_MAPPED_ADDRESS, value)])
        assert wire_stun.parse_binding_response(data, txid) is None


def test_encode_refuses_what_cannot_be_sent():
    with pytest.raises(ValueError):
        wire_stun.encode(0xC001, bytes(12))
    with pytest.raises(ValueError):
        wire_stun.encode(wire_stun.BINDING_REQUEST, bytes(11))
    with pytest.raises(ValueError):
        wire_stun.encode(wire_stun.BINDING_REQUEST, bytes(12), [(0x10000, b"")])
