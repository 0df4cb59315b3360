"""The simulated STUN server's codec (simgw/stun_wire.py): RFC 5769's vectors encoded byte for byte, their
MESSAGE-INTEGRITY with short-term and long-term keys, and what it encodes read back by the client's codec."""

from __future__ import annotations

import pytest

from portmap import wire_stun
from simgw import stun_wire
from tests.unit.plugins.module_utils.portmap.stun_vectors import LONG_TERM, PASSWORD, REQUEST, TXID


def test_rfc5769_sample_request_is_encoded_byte_for_byte():
    encoded = stun_wire.encode(
        wire_stun.BINDING_REQUEST, TXID,
        [(wire_stun.SOFTWARE, b"STUN test client"), (wire_stun.PRIORITY, bytes.fromhex("6e0001ff")),
         (0x8029, bytes.fromhex("932ff9b151263b36")), (wire_stun.USERNAME, b"evtj:h6vY")],
        integrity_key=stun_wire.short_term_key(PASSWORD), fingerprint=True, padding=b" ")
    assert encoded == REQUEST


def test_rfc5769_long_term_credentials():
    message = wire_stun.decode(LONG_TERM)
    username = message.get(wire_stun.USERNAME).decode("utf-8")
    assert username == "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"
    assert stun_wire.saslprep("The\u00adM\u00aatr\u2168") == "TheMatrIX"
    key = stun_wire.long_term_key(username, "example.org", "The\u00adM\u00aatr\u2168")
    assert stun_wire.verify_integrity(message, key)
    assert not stun_wire.verify_integrity(message, stun_wire.long_term_key(username, "example.org", "TheMatrix"))


@pytest.mark.parametrize("address", [("11.22.33.2", 1), ("11.22.33.2", 65535), ("0.0.0.0", 3478),
                                     ("2001:db8::1", 40000), ("255.255.255.255", 2112)])
def test_address_round_trips(address):
    txid = bytes(range(12))
    assert wire_stun.decode_address(stun_wire.encode_address(address)) == address
    xored = stun_wire.encode_xor_address(address, txid)
    assert wire_stun.decode_xor_address(xored, txid) == address
    assert xored[2:4] != stun_wire.encode_address(address)[2:4] or address[1] == 0x2112 ^ 0x2112


def test_response_round_trip_with_rfc5780_attributes():
    txid = bytes(range(12))
    datagram = stun_wire.encode_binding_response(txid, ("11.22.33.2", 40001), other_address=("11.22.33.3", 3479),
                                                 response_origin=("11.22.33.1", 3478))
    response = wire_stun.parse_binding_response(datagram, txid)
    assert (response.mapped, response.other_address, response.response_origin) == (
        ("11.22.33.2", 40001), ("11.22.33.3", 3479), ("11.22.33.1", 3478))


def test_error_response():
    txid = bytes(range(12))
    response = wire_stun.parse_binding_response(stun_wire.encode_error_response(txid, 420, "Unknown Attribute"), txid)
    assert (response.success, response.error_code, response.error_reason) == (False, 420, "Unknown Attribute")
