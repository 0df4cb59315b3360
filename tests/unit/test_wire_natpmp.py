"""The NAT-PMP codec against bytes recorded from a real gateway (miniupnpd 2.3.1)."""

from __future__ import annotations

import pytest

from portmap import wire_natpmp as wire
from portmap.errors import (
    MalformedPacket,
    NetworkFailure,
    NotAuthorized,
    OutOfResources,
    UnknownResultCode,
    UnsupportedOpcode,
    UnsupportedVersion,
)

# (request args, request hex, reply hex) from ../shared/reference/wire-vectors.md
MAP_VECTORS = [
    (("tcp", 8080, 8080, 3600), "000200001f901f9000000e10", "00820000000000051f901f9000000e10"),
    (("udp", 5353, 5353, 120), "0001000014e914e900000078", "008100000000000514e914e900000078"),
    (("tcp", 8080, 0, 0), "000200001f90000000000000", "00820000000000051f90000000000000"),
    (("udp", 5353, 0, 0), "0001000014e9000000000000", "008100000000000514e9000000000000"),
]
PUBLIC_REQUEST = "0000"
PUBLIC_REPLY = "00800000000000050b162102"
UNSUPPORTED_OPCODE_REPLY = "008300050000000f"
RESERVED_WAN_REPLY = "008000030000000100000000"


def test_public_address_request_bytes():
    assert wire.encode_public_address_request().hex() == PUBLIC_REQUEST
    assert wire.public_address_request().data.hex() == PUBLIC_REQUEST


@pytest.mark.parametrize("args, request_hex, _reply", MAP_VECTORS)
def test_map_request_bytes(args, request_hex, _reply):
    assert wire.encode_map_request(*args).hex() == request_hex
    assert wire.map_request(*args).data.hex() == request_hex


def test_public_address_reply_decoded():
    reply = wire.decode_reply(bytes.fromhex(PUBLIC_REPLY))
    assert (reply.op, reply.result, reply.epoch, reply.public_address) == (128, 0, 5, "11.22.33.2")


@pytest.mark.parametrize("args, _request, reply_hex", MAP_VECTORS)
def test_map_reply_decoded_and_matched(args, _request, reply_hex):
    protocol, internal, external, lifetime = args
    reply = wire.decode_reply(bytes.fromhex(reply_hex))
    assert (reply.protocol, reply.internal_port, reply.external_port, reply.lifetime, reply.epoch) == (
        protocol, internal, external, lifetime, 5)
    assert wire.map_request(*args).match(bytes.fromhex(reply_hex)) == reply


@pytest.mark.parametrize("args, request_hex, _reply", MAP_VECTORS)
def test_server_decodes_the_requests(args, request_hex, _reply):
    assert wire.decode_request(bytes.fromhex(request_hex)) == wire.MapRequest(*args)


def test_server_decodes_public_and_other_requests():
    assert wire.decode_request(bytes.fromhex(PUBLIC_REQUEST)) == wire.PublicAddressRequest()
    assert wire.decode_request(bytes.fromhex("0003")) == wire.OtherRequest(0, 3)
    assert wire.decode_request(bytes.fromhex("0100")) == wire.OtherRequest(1, 0)
    with pytest.raises(MalformedPacket):
        wire.decode_request(b"\x00")
    with pytest.raises(MalformedPacket):
        wire.decode_request(bytes.fromhex("000200001f90"))  # truncated map request


@pytest.mark.parametrize("args, _request, reply_hex", MAP_VECTORS)
def test_server_encodes_the_replies(args, _request, reply_hex):
    protocol, internal, external, lifetime = args
    assert wire.encode_map_reply(protocol, 0, 5, internal, external, lifetime).hex() == reply_hex


def test_server_encodes_public_and_short_replies():
    assert wire.encode_public_address_reply(0, 5, "11.22.33.2").hex() == PUBLIC_REPLY
    assert wire.encode_short_reply(128 + 3, 5, 15).hex() == UNSUPPORTED_OPCODE_REPLY
    assert wire.encode_public_address_reply(3, 1, "0.0.0.0").hex() == RESERVED_WAN_REPLY
    assert wire.encode_announcement(5, "11.22.33.2").hex() == PUBLIC_REPLY


def test_unsupported_opcode_short_reply():
    reply = wire.decode_reply(bytes.fromhex(UNSUPPORTED_OPCODE_REPLY))
    assert (reply.op, reply.result, reply.epoch, reply.length) == (131, 5, 15, 8)
    assert wire.result_name(reply.result) == "UNSUPPORTED_OPCODE"


def test_reserved_wan_result_3_is_network_failure():
    pending = wire.public_address_request()
    reply = pending.match(bytes.fromhex(RESERVED_WAN_REPLY))
    assert reply is not None and reply.result == 3
    error = pending.error(reply, "192.168.77.1:5351")
    assert isinstance(error, NetworkFailure)
    assert "NETWORK_FAILURE" in str(error) and "192.168.77.1:5351" in str(error)


@pytest.mark.parametrize("op", [0, 128, 128 + 2])
def test_unsupported_version_reply_whatever_its_op(op):
    data = wire.encode_short_reply(op, 1, 77)
    reply = wire.decode_reply(data)
    assert wire.is_unsupported_version(reply)
    pending = wire.map_request("tcp", 8080, 8080, 3600)
    assert pending.match(data) == reply
    assert isinstance(pending.error(reply), UnsupportedVersion)


@pytest.mark.parametrize(
    "code, cls",
    [(1, UnsupportedVersion), (2, NotAuthorized), (3, NetworkFailure), (4, OutOfResources),
     (5, UnsupportedOpcode), (6, UnknownResultCode), (200, UnknownResultCode)],
)
def test_result_codes_become_distinct_errors(code, cls):
    pending = wire.map_request("udp", 5353, 5353, 120)
    reply = pending.match(wire.encode_map_reply("udp", code, 9, 5353, 0, 0))
    error = pending.error(reply, "127.0.0.1:5351")
    assert error.__class__ is cls  # exactly this class, not a parent
    assert error.code == code and error.method == "natpmp"
    assert wire.result_name(code) in str(error)
    assert "UDP" in str(error) and "5353" in str(error)


GOOD = "00820000000000051f901f9000000e10"


@pytest.mark.parametrize(
    "bad, why",
    [
        ("01820000000000051f901f9000000e10", "version 1"),
        ("00810000000000051f901f9000000e10", "UDP opcode for a TCP request"),
        ("00800000000000051f901f9000000e10", "public-address opcode"),
        ("00020000000000051f901f9000000e10", "a request, not a reply"),
        ("00820000000000051f901f9000000e", "15 bytes"),
        ("00820000000000051f901f9000000e1000", "17 bytes"),
        ("0082000000000005", "8-byte SUCCESS"),
        ("008200", "3 bytes"),
        ("", "empty"),
        ("00820000000000051f911f9000000e10", "other internal port"),
        ("00820000000000051f9000000000000e", "success with external port 0"),
        ("ffffffffffffffffffffffffffffffff", "garbage"),
    ],
)
def test_bad_replies_are_ignored(bad, why):
    pending = wire.map_request("tcp", 8080, 8080, 3600)
    assert pending.match(bytes.fromhex(GOOD)) is not None
    assert pending.match(bytes.fromhex(bad)) is None, why


@pytest.mark.parametrize(
    "bad, why",
    [
        ("00820000000000051f901f9000000000", "delete answered with external port"),
        ("00820000000000051f90000000000e10", "delete answered with a lifetime"),
    ],
)
def test_delete_reply_must_have_port_and_lifetime_zero(bad, why):
    pending = wire.map_request("tcp", 8080, 0, 0)
    assert pending.match(bytes.fromhex("00820000000000051f90000000000000")) is not None
    assert pending.match(bytes.fromhex(bad)) is None, why


def test_delete_all_matches_internal_port_zero():
    pending = wire.map_request("tcp", 0, 0, 0)
    assert pending.data.hex() == "000200000000000000000000"
    assert pending.match(wire.encode_map_reply("tcp", 0, 1, 0, 0, 0)) is not None
    assert pending.match(wire.encode_map_reply("tcp", 0, 1, 8080, 0, 0)) is None


def test_public_reply_of_wrong_length_is_ignored():
    assert wire.public_address_request().match(bytes.fromhex(PUBLIC_REPLY + "00")) is None


@pytest.mark.parametrize(
    "args, field",
    [
        (("tcp", 65536, 80, 60), "internal_port"),
        (("tcp", -1, 80, 60), "internal_port"),
        (("tcp", 80, 65536, 60), "external_port"),
        (("tcp", 80, 80, 2 ** 32), "lifetime"),
        (("tcp", 80, 80, -1), "lifetime"),
        (("sctp", 80, 80, 60), "protocol"),
        (("tcp", True, 80, 60), "internal_port"),
    ],
)
def test_request_fields_are_range_checked(args, field):
    with pytest.raises(ValueError, match=field):
        wire.encode_map_request(*args)
