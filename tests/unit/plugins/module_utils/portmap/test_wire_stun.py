"""The STUN codec against the RFC 5769 test vectors, round trips, and what a client must refuse."""

from __future__ import annotations

import struct

import pytest

from portmap import wire_stun
from portmap.errors import MalformedPacket

# RFC 5769 section 2.1: a sample request (SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
# MESSAGE-INTEGRITY, FINGERPRINT), padded with spaces, short-term password below.
REQUEST = bytes.fromhex(
    "000100582112a442b7e7a701bc34d686fa87dfae"
    "80220010" "5354554e207465737420636c69656e74"
    "00240004" "6e0001ff"
    "80290008" "932ff9b151263b36"
    "00060009" "6576746a3a68367659202020"
    "00080014" "9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"
    "80280004" "e57a3bcf")
# Section 2.2: the IPv4 response, mapped address 192.0.2.1:32853.
RESPONSE_V4 = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae"
    "8022000b" "7465737420766563746f7220"
    "00200008" "0001a147e112a643"
    "00080014" "2b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004" "c07d4c96")
# Section 2.3: the IPv6 response, mapped address [2001:db8:1234:5678:11:2233:4455:6677]:32853.
RESPONSE_V6 = bytes.fromhex(
    "010100482112a442b7e7a701bc34d686fa87dfae"
    "8022000b" "7465737420766563746f7220"
    "00200014" "0002a1470113a9faa5d3f179bc25f4b5bed2b9d9"
    "00080014" "a382954e4be67bf11784c97c8292c275bfe3ed41"
    "80280004" "c8fb0b4c")
PASSWORD = "VOkJxbRl1RmTxUk/WvJxBt"
# Section 2.4: a request with long-term credentials (no FINGERPRINT); user "マトリックス",
# realm "example.org", password "The<U+00AD>M<U+00AA>tr<U+2168>" ("TheMatrIX" after SASLprep).
LONG_TERM = bytes.fromhex(
    "000100602112a44278ad3433c6ad72c029da412e"
    "00060012" "e3839ee38388e383aae38383e382afe382b90000"
    "0015001c" "662f2f3439396b39353464364f4c33346f4c39465354767936347341"
    "0014000b" "6578616d706c652e6f726700"
    "00080014" "f67024656dd64a3e02b8e0712e85c9a28ca89666")
TXID = bytes.fromhex("b7e7a701bc34d686fa87dfae")


def test_rfc5769_sample_request():
    message = wire_stun.decode(REQUEST)  # FINGERPRINT verified in decode
    assert (message.msg_type, message.transaction_id) == (wire_stun.BINDING_REQUEST, TXID)
    assert message.get(wire_stun.SOFTWARE) == b"STUN test client"
    assert message.get(wire_stun.USERNAME) == b"evtj:h6vY"
    assert message.get(wire_stun.PRIORITY) == bytes.fromhex("6e0001ff")
    assert wire_stun.verify_integrity(message, wire_stun.short_term_key(PASSWORD))
    assert not wire_stun.verify_integrity(message, b"wrong")
    assert message.unknown_required() == ()


def test_rfc5769_sample_request_is_encoded_byte_for_byte():
    encoded = wire_stun.encode(
        wire_stun.BINDING_REQUEST, TXID,
        [(wire_stun.SOFTWARE, b"STUN test client"), (wire_stun.PRIORITY, bytes.fromhex("6e0001ff")),
         (0x8029, bytes.fromhex("932ff9b151263b36")), (wire_stun.USERNAME, b"evtj:h6vY")],
        integrity_key=wire_stun.short_term_key(PASSWORD), fingerprint=True, padding=b" ")
    assert encoded == REQUEST


@pytest.mark.parametrize("datagram, address", [
    (RESPONSE_V4, ("192.0.2.1", 32853)),
    (RESPONSE_V6, ("2001:db8:1234:5678:11:2233:4455:6677", 32853)),
])
def test_rfc5769_sample_responses(datagram, address):
    response = wire_stun.parse_binding_response(datagram, TXID)
    assert response is not None and response.success
    assert response.mapped == response.xor_mapped == address
    assert response.software == "test vector"
    assert wire_stun.verify_integrity(wire_stun.decode(datagram), wire_stun.short_term_key(PASSWORD))
    assert wire_stun.parse_binding_response(datagram, bytes(12)) is None  # another transaction


def test_rfc5769_long_term_credentials():
    message = wire_stun.decode(LONG_TERM)
    username = message.get(wire_stun.USERNAME).decode("utf-8")
    assert username == "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"
    assert wire_stun.saslprep("The\u00adM\u00aatr\u2168") == "TheMatrIX"
    key = wire_stun.long_term_key(username, "example.org", "The\u00adM\u00aatr\u2168")
    assert wire_stun.verify_integrity(message, key)
    assert not wire_stun.verify_integrity(message, wire_stun.long_term_key(username, "example.org", "TheMatrix"))


def test_every_flipped_bit_of_a_vector_is_refused_by_the_fingerprint():
    key = wire_stun.short_term_key(PASSWORD)
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
    assert wire_stun.verify_integrity(wire_stun.decode(RESPONSE_V4), key)


@pytest.mark.parametrize("address", [("11.22.33.2", 1), ("11.22.33.2", 65535), ("0.0.0.0", 3478),
                                     ("2001:db8::1", 40000), ("255.255.255.255", 2112)])
def test_address_round_trips(address):
    txid = bytes(range(12))
    assert wire_stun.decode_address(wire_stun.encode_address(address)) == address
    xored = wire_stun.encode_xor_address(address, txid)
    assert wire_stun.decode_xor_address(xored, txid) == address
    assert xored[2:4] != wire_stun.encode_address(address)[2:4] or address[1] == 0x2112 ^ 0x2112


def test_binding_request_and_change_request():
    txid = bytes(range(12))
    plain = wire_stun.decode(wire_stun.binding_request(txid))
    assert (plain.msg_type, plain.transaction_id, plain.attributes) == (wire_stun.BINDING_REQUEST, txid, ())
    assert len(wire_stun.binding_request(txid)) == 20
    for change_ip, change_port, flags in [(True, True, 6), (False, True, 2), (True, False, 4)]:
        message = wire_stun.decode(wire_stun.binding_request(txid, change_ip, change_port))
        assert message.get(wire_stun.CHANGE_REQUEST) == struct.pack("!I", flags)


def test_response_round_trip_with_rfc5780_attributes():
    txid = bytes(range(12))
    datagram = wire_stun.encode_binding_response(txid, ("11.22.33.2", 40001), other_address=("11.22.33.3", 3479),
                                                 response_origin=("11.22.33.1", 3478))
    response = wire_stun.parse_binding_response(datagram, txid)
    assert (response.mapped, response.other_address, response.response_origin) == (
        ("11.22.33.2", 40001), ("11.22.33.3", 3479), ("11.22.33.1", 3478))


def test_rfc3489_server_mapped_and_changed_address():
    txid = bytes(range(12))
    datagram = wire_stun.encode(wire_stun.BINDING_SUCCESS, txid, [
        (wire_stun.MAPPED_ADDRESS, wire_stun.encode_address(("11.22.33.2", 40001))),
        (wire_stun.CHANGED_ADDRESS, wire_stun.encode_address(("11.22.33.3", 3479)))])
    response = wire_stun.parse_binding_response(datagram, txid)
    assert (response.mapped, response.xor_mapped, response.other_address) == (
        ("11.22.33.2", 40001), None, ("11.22.33.3", 3479))


def test_xor_mapped_address_wins_over_mapped_address():
    txid = bytes(range(12))
    datagram = wire_stun.encode(wire_stun.BINDING_SUCCESS, txid, [
        (wire_stun.MAPPED_ADDRESS, wire_stun.encode_address(("10.0.0.1", 1))),  # rewritten by an ALG
        (wire_stun.XOR_MAPPED_ADDRESS, wire_stun.encode_xor_address(("11.22.33.2", 40001), txid))])
    assert wire_stun.parse_binding_response(datagram, txid).mapped == ("11.22.33.2", 40001)


def test_error_response():
    txid = bytes(range(12))
    response = wire_stun.parse_binding_response(wire_stun.encode_error_response(txid, 420, "Unknown Attribute"), txid)
    assert (response.success, response.error_code, response.error_reason) == (False, 420, "Unknown Attribute")


def test_unknown_comprehension_required_attributes_are_reported_optional_ones_not():
    txid = bytes(range(12))
    mapped = (wire_stun.XOR_MAPPED_ADDRESS, wire_stun.encode_xor_address(("11.22.33.2", 1), txid))
    required = wire_stun.encode(wire_stun.BINDING_SUCCESS, txid, [mapped, (0x7FFF, b"x"), (0x0002, b"")])
    optional = wire_stun.encode(wire_stun.BINDING_SUCCESS, txid, [mapped, (0xC001, b"anything")])
    assert wire_stun.parse_binding_response(required, txid).unknown_required == (0x7FFF, 0x0002)
    assert wire_stun.parse_binding_response(optional, txid).unknown_required == ()


def test_attributes_after_message_integrity_are_ignored_except_fingerprint():
    txid = bytes(range(12))
    body = wire_stun.encode(wire_stun.BINDING_SUCCESS, txid, [
        (wire_stun.XOR_MAPPED_ADDRESS, wire_stun.encode_xor_address(("11.22.33.2", 1), txid))], integrity_key=b"k")
    extra = struct.pack("!HH", 0x7FFE, 4) + b"late"
    data = body[:2] + struct.pack("!H", len(body) - 20 + 8) + body[4:] + extra
    message = wire_stun.decode(data)
    assert message.unknown_required() == () and message.get(0x7FFE) is None
    assert wire_stun.verify_integrity(message, b"k")


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
    data = wire_stun.encode(wire_stun.BINDING_REQUEST, txid, fingerprint=True)
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
