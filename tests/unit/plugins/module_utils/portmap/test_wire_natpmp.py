"""The NAT-PMP codec against bytes recorded from a real gateway (miniupnpd 2.3.1).

Vectors from /work/shared/reference/wire-vectors.md: gateway 192.168.77.1, WAN
address 11.22.33.2, epoch 5.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portmap import wire_natpmp as wire
from portmap.errors import (
    MalformedPacket,
    NetworkFailure,
    NotAuthorized,
    OutOfResources,
    ResultCodeError,
    UnknownResultCode,
    UnsupportedOpcode,
    UnsupportedVersion,
)

# (map_request args, request hex, reply hex, decoded reply fields)
MAP_VECTORS = [
    (("tcp", 8080, 8080, 3600), "000200001f901f9000000e10", "00820000000000051f901f9000000e10",
     dict(op=130, result=0, epoch=5, protocol="tcp", internal_port=8080, external_port=8080, lifetime=3600)),
    (("udp", 5353, 5353, 120), "0001000014e914e900000078", "008100000000000514e914e900000078",
     dict(op=129, result=0, epoch=5, protocol="udp", internal_port=5353, external_port=5353, lifetime=120)),
    (("tcp", 8080, 0, 0), "000200001f90000000000000", "00820000000000051f90000000000000",
     dict(op=130, result=0, epoch=5, protocol="tcp", internal_port=8080, external_port=0, lifetime=0)),
    (("udp", 5353, 0, 0), "0001000014e9000000000000", "008100000000000514e9000000000000",
     dict(op=129, result=0, epoch=5, protocol="udp", internal_port=5353, external_port=0, lifetime=0)),
]
MAP_IDS = ["map-tcp-8080", "map-udp-5353", "delete-tcp-8080", "delete-udp-5353"]
PUBLIC_REQUEST = "0000"
PUBLIC_REPLY = "00800000000000050b162102"
OPCODE_3_REQUEST = "0003"
UNSUPPORTED_OPCODE_REPLY = "008300050000000f"
RESERVED_WAN_REPLY = "008000030000000100000000"

# Every reply vector and what it decodes to.
REPLY_VECTORS = [
    (PUBLIC_REPLY, dict(op=128, result=0, epoch=5, public_address="11.22.33.2", protocol=None,
                        internal_port=None, external_port=None, lifetime=None, length=12)),
    (RESERVED_WAN_REPLY, dict(op=128, result=3, epoch=1, public_address="0.0.0.0", length=12)),
    (UNSUPPORTED_OPCODE_REPLY, dict(op=131, result=5, epoch=15, public_address=None, protocol=None,
                                    internal_port=None, external_port=None, lifetime=None, length=8)),
] + [(reply, dict(fields, public_address=None, length=16)) for _args, _req, reply, fields in MAP_VECTORS]


# --------------------------------------------------------------------------- client side: requests


def test_public_address_request_bytes():
    assert wire.encode_public_address_request().hex() == PUBLIC_REQUEST
    assert wire.public_address_request().data.hex() == PUBLIC_REQUEST


@pytest.mark.parametrize("args, request_hex, _reply, _fields", MAP_VECTORS, ids=MAP_IDS)
def test_map_request_bytes(args, request_hex, _reply, _fields):
    assert wire.encode_map_request(*args).hex() == request_hex
    assert wire.map_request(*args).data.hex() == request_hex


def test_delete_all_request_bytes():
    assert wire.map_request("tcp", 0, 0, 0).data.hex() == "000200000000000000000000"
    assert wire.map_request("udp", 0, 0, 0).data.hex() == "000100000000000000000000"


def test_request_field_limits_are_inclusive():
    assert wire.encode_map_request("udp", 65535, 65535, 2 ** 32 - 1).hex() == "00010000ffffffffffffffff"
    assert wire.encode_map_request("udp", 0, 0, 0).hex() == "000100000000000000000000"


# --------------------------------------------------------------------------- client side: replies


@pytest.mark.parametrize("reply_hex, fields", REPLY_VECTORS, ids=lambda v: v if isinstance(v, str) else "")
def test_reply_vectors_decode(reply_hex, fields):
    reply = wire.decode_reply(bytes.fromhex(reply_hex))
    assert {name: getattr(reply, name) for name in fields} == fields


@pytest.mark.parametrize("args, _request, reply_hex, _fields", MAP_VECTORS, ids=MAP_IDS)
def test_map_reply_vectors_answer_their_requests(args, _request, reply_hex, _fields):
    pending = wire.map_request(*args)
    reply = pending.match(bytes.fromhex(reply_hex))
    assert reply == wire.decode_reply(bytes.fromhex(reply_hex))
    assert pending.error(reply) is None


def test_public_reply_vector_answers_the_public_request():
    pending = wire.public_address_request()
    reply = pending.match(bytes.fromhex(PUBLIC_REPLY))
    assert reply is not None and reply.public_address == "11.22.33.2"
    assert pending.error(reply) is None
    # ...and no mapping request
    assert wire.map_request("tcp", 8080, 8080, 3600).match(bytes.fromhex(PUBLIC_REPLY)) is None


def test_unsupported_opcode_8_byte_reply():
    reply = wire.decode_reply(bytes.fromhex(UNSUPPORTED_OPCODE_REPLY))
    assert (reply.op, reply.result, reply.epoch, reply.length) == (131, 5, 15, 8)
    assert reply.result_name == "UNSUPPORTED_OPCODE"
    assert not wire.is_unsupported_version(reply)
    # It answers the opcode-3 request (OP = 128 + 3), and nothing else.
    pending = wire.Pending(bytes.fromhex(OPCODE_3_REQUEST), "opcode 3 request", lambda reply, error: False)
    assert pending.match(bytes.fromhex(UNSUPPORTED_OPCODE_REPLY)) == reply
    error = pending.error(reply, "192.168.77.1:5351")
    assert error.__class__ is UnsupportedOpcode
    assert "UNSUPPORTED_OPCODE" in str(error) and "result code 5" in str(error) and "192.168.77.1:5351" in str(error)
    assert wire.public_address_request().match(bytes.fromhex(UNSUPPORTED_OPCODE_REPLY)) is None
    assert wire.map_request("tcp", 8080, 8080, 3600).match(bytes.fromhex(UNSUPPORTED_OPCODE_REPLY)) is None


def test_reserved_wan_result_3_is_network_failure():
    pending = wire.public_address_request()
    reply = pending.match(bytes.fromhex(RESERVED_WAN_REPLY))
    assert reply is not None
    assert (reply.result, reply.epoch, reply.public_address) == (3, 1, "0.0.0.0")
    error = pending.error(reply, "192.168.77.1:5351")
    assert error.__class__ is NetworkFailure
    assert error.code == 3 and error.name == "NETWORK_FAILURE" and error.method == "natpmp"
    assert "NETWORK_FAILURE" in str(error) and "192.168.77.1:5351" in str(error)


UNSUPPORTED_VERSION_PENDINGS = [
    ("public", wire.public_address_request, 0),
    ("map-tcp", lambda: wire.map_request("tcp", 8080, 8080, 3600), 2),
    ("map-udp", lambda: wire.map_request("udp", 5353, 5353, 120), 1),
    ("delete-tcp", lambda: wire.map_request("tcp", 8080, 0, 0), 2),
    ("delete-all-udp", lambda: wire.map_request("udp", 0, 0, 0), 1),
]


@pytest.mark.parametrize("name, make, request_op", UNSUPPORTED_VERSION_PENDINGS,
                         ids=[p[0] for p in UNSUPPORTED_VERSION_PENDINGS])
@pytest.mark.parametrize("reply_op", ["0", "128", "128+op"])
def test_unsupported_version_reply_whatever_its_op(name, make, request_op, reply_op):
    op = {"0": 0, "128": 128, "128+op": 128 + request_op}[reply_op]
    data = wire.encode_short_reply(op, wire.Result.UNSUPPORTED_VERSION, 77)
    assert len(data) == 8 and data.hex() == f"00{op:02x}00010000004d"
    reply = wire.decode_reply(data)
    assert wire.is_unsupported_version(reply)
    pending = make()
    assert pending.match(data) == reply, name
    error = pending.error(reply, "192.168.77.1:5351")
    assert error.__class__ is UnsupportedVersion
    assert "UNSUPPORTED_VERSION" in str(error) and "192.168.77.1:5351" in str(error)


def test_unsupported_version_needs_version_0_and_8_bytes():
    pending = wire.map_request("tcp", 8080, 8080, 3600)
    assert pending.match(bytes.fromhex("0180000100000005")) is None  # version 1
    assert pending.match(bytes.fromhex("008000010000000500")) is None  # 9 bytes
    assert not wire.is_unsupported_version(wire.decode_reply(bytes.fromhex("0082000500000005")))


@pytest.mark.parametrize(
    "code, cls",
    [(1, UnsupportedVersion), (2, NotAuthorized), (3, NetworkFailure), (4, OutOfResources),
     (5, UnsupportedOpcode), (6, UnknownResultCode), (200, UnknownResultCode), (65535, UnknownResultCode)],
)
def test_result_codes_become_distinct_errors(code, cls):
    pending = wire.map_request("udp", 5353, 5400, 120)
    reply = pending.match(wire.encode_map_reply("udp", code, 9, 5353, 0, 0))
    assert reply is not None
    error = pending.error(reply, "127.0.0.1:5351")
    assert error.__class__ is cls  # exactly this class, not a parent
    assert isinstance(error, ResultCodeError)
    assert error.code == code and error.method == "natpmp"
    assert error.name == wire.result_name(code)
    for part in (wire.result_name(code), f"result code {code}", "UDP", "5353", "5400", "127.0.0.1:5351"):
        assert part in str(error)


def test_result_names_are_the_rfc_names():
    assert [wire.result_name(code) for code in range(7)] == [
        "SUCCESS", "UNSUPPORTED_VERSION", "NOT_AUTHORIZED", "NETWORK_FAILURE", "OUT_OF_RESOURCES",
        "UNSUPPORTED_OPCODE", "UNKNOWN_RESULT_6"]


def test_error_replies_need_only_the_right_internal_port():
    """RFC 6886 3.5: external port and lifetime are undefined in an error reply."""
    pending = wire.map_request("tcp", 8080, 8080, 3600)
    assert pending.match(bytes.fromhex("00820002000000051f9012340000abcd")) is not None
    assert pending.match(bytes.fromhex("00820002000000051f9112340000abcd")) is None  # other internal port
    assert pending.match(bytes.fromhex("0082000200000005")) is not None  # 8-byte error reply, same OP
    assert pending.match(bytes.fromhex("0081000200000005")) is None  # 8-byte error reply, UDP's OP


GOOD = "00820000000000051f901f9000000e10"  # answers map TCP 8080->8080, 3600 s


@pytest.mark.parametrize(
    "bad, why",
    [
        ("01820000000000051f901f9000000e10", "version 1"),
        ("02820000000000051f901f9000000e10", "version 2 (PCP)"),
        ("00810000000000051f901f9000000e10", "UDP opcode for a TCP request"),
        ("00800000000000051f901f9000000e10", "public-address opcode, 16 bytes"),
        ("00020000000000051f901f9000000e10", "a request, not a reply"),
        ("00830000000000051f901f9000000e10", "opcode 131"),
        ("00820000000000051f901f9000000e", "15 bytes"),
        ("00820000000000051f901f9000000e1000", "17 bytes"),
        ("00820000000000051f901f90", "12 bytes"),
        ("0082000000000005", "8-byte SUCCESS"),
        ("00820000000000", "7 bytes"),
        ("008200", "3 bytes"),
        ("", "empty"),
        ("00820000000000051f911f9000000e10", "other internal port"),
        ("00820000000000050000000000000e10", "internal port 0"),
        ("00820000000000051f9000000000000e", "success with external port 0"),
        ("00820000000000051f901f9000000000", "success with lifetime 0"),
        ("ffffffffffffffffffffffffffffffff", "garbage"),
        ("000200001f901f9000000e10", "our own request reflected"),
    ],
)
def test_bad_replies_to_a_map_request_are_ignored(bad, why):
    pending = wire.map_request("tcp", 8080, 8080, 3600)
    assert pending.match(bytes.fromhex(GOOD)) is not None
    assert pending.match(bytes.fromhex(bad)) is None, why


@pytest.mark.parametrize(
    "bad, why",
    [
        ("00820000000000051f901f9000000000", "external port not 0"),
        ("00820000000000051f90000000000e10", "lifetime not 0"),
        ("00820000000000051f901f9000000e10", "both not 0"),
        ("00820000000000051f91000000000000", "other internal port"),
        ("0082000000000005", "8-byte SUCCESS"),
        ("00810000000000051f90000000000000", "UDP"),
    ],
)
def test_bad_replies_to_a_delete_are_ignored(bad, why):
    pending = wire.map_request("tcp", 8080, 0, 0)
    assert pending.match(bytes.fromhex("00820000000000051f90000000000000")) is not None
    assert pending.match(bytes.fromhex(bad)) is None, why


def test_delete_all_matches_internal_port_zero_only():
    pending = wire.map_request("tcp", 0, 0, 0)
    assert pending.match(wire.encode_map_reply("tcp", 0, 1, 0, 0, 0)) is not None
    assert pending.match(wire.encode_map_reply("tcp", 0, 1, 8080, 0, 0)) is None
    assert pending.match(wire.encode_map_reply("udp", 0, 1, 0, 0, 0)) is None


@pytest.mark.parametrize(
    "bad, why",
    [
        (PUBLIC_REPLY + "00", "13 bytes"),
        (PUBLIC_REPLY[:-2], "11 bytes"),
        ("0080000000000005", "8-byte SUCCESS"),
        ("01800000000000050b162102", "version 1"),
        ("00810000000000050b162102", "opcode 129"),
        ("00000000000000050b162102", "opcode 0 (a request)"),
        ("00820000000000051f901f9000000e10", "a mapping reply"),
        ("0000", "our own request reflected"),
        ("ffffffffffffffffffffffff", "garbage"),
    ],
)
def test_bad_replies_to_a_public_address_request_are_ignored(bad, why):
    pending = wire.public_address_request()
    assert pending.match(bytes.fromhex(PUBLIC_REPLY)) is not None
    assert pending.match(bytes.fromhex(bad)) is None, why


@pytest.mark.parametrize("data", ["", "00", "0080", "00800000000000", "0080000000000005", "0082000000000005",
                                  "ff" * 8, "01" + "00" * 15, "00800000000000050b16210200"])
def test_decode_reply_rejects_non_replies(data):
    with pytest.raises(MalformedPacket):
        wire.decode_reply(bytes.fromhex(data))


# --------------------------------------------------------------------------- server side


@pytest.mark.parametrize("args, request_hex, _reply, _fields", MAP_VECTORS, ids=MAP_IDS)
def test_server_decodes_the_map_requests(args, request_hex, _reply, _fields):
    assert wire.decode_request(bytes.fromhex(request_hex)) == wire.MapRequest(*args)


def test_server_decodes_public_and_other_requests():
    assert wire.decode_request(bytes.fromhex(PUBLIC_REQUEST)) == wire.PublicAddressRequest()
    assert wire.decode_request(bytes.fromhex(OPCODE_3_REQUEST)) == wire.OtherRequest(0, 3)
    assert wire.decode_request(bytes.fromhex("0100")) == wire.OtherRequest(1, 0)
    assert wire.decode_request(bytes.fromhex("0080")) == wire.OtherRequest(0, 128)


@pytest.mark.parametrize("data", ["", "00", "000200001f90", "000200001f901f9000000e1000", "000000"])
def test_server_rejects_malformed_requests(data):
    with pytest.raises(MalformedPacket):
        wire.decode_request(bytes.fromhex(data))


@pytest.mark.parametrize("args, _request, reply_hex, _fields", MAP_VECTORS, ids=MAP_IDS)
def test_server_encodes_the_map_replies(args, _request, reply_hex, _fields):
    protocol, internal, external, lifetime = args
    assert wire.encode_map_reply(protocol, 0, 5, internal, external, lifetime).hex() == reply_hex


def test_server_encodes_public_short_and_reserved_replies():
    assert wire.encode_public_address_reply(0, 5, "11.22.33.2").hex() == PUBLIC_REPLY
    assert wire.encode_announcement(5, "11.22.33.2").hex() == PUBLIC_REPLY
    assert wire.encode_short_reply(128 + 3, wire.Result.UNSUPPORTED_OPCODE, 15).hex() == UNSUPPORTED_OPCODE_REPLY
    assert wire.encode_public_address_reply(wire.Result.NETWORK_FAILURE, 1, "0.0.0.0").hex() == RESERVED_WAN_REPLY


# --------------------------------------------------------------------------- properties

PORTS = st.integers(0, 65535)
LIFETIMES = st.integers(0, 2 ** 32 - 1)
PROTOCOLS = st.sampled_from(["tcp", "udp"])
FAST = settings(max_examples=150, deadline=None, database=None)


@FAST
@given(PROTOCOLS, PORTS, PORTS, LIFETIMES)
def test_request_round_trip(protocol, internal, external, lifetime):
    data = wire.encode_map_request(protocol, internal, external, lifetime)
    assert len(data) == 12
    assert wire.decode_request(data) == wire.MapRequest(protocol, internal, external, lifetime)


@FAST
@given(PROTOCOLS, st.integers(0, 65535), st.integers(0, 2 ** 32 - 1), PORTS, PORTS, LIFETIMES)
def test_reply_round_trip(protocol, result, epoch, internal, external, lifetime):
    reply = wire.decode_reply(wire.encode_map_reply(protocol, result, epoch, internal, external, lifetime))
    assert (reply.protocol, reply.result, reply.epoch, reply.internal_port, reply.external_port,
            reply.lifetime, reply.length) == (protocol, result, epoch, internal, external, lifetime, 16)


@FAST
@given(PROTOCOLS, st.integers(1, 65535), st.integers(1, 65535), st.integers(1, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1))
def test_a_granted_mapping_answers_its_request(protocol, internal, granted_port, granted_lifetime, epoch):
    pending = wire.map_request(protocol, internal, internal, 3600)
    reply = pending.match(wire.encode_map_reply(protocol, 0, epoch, internal, granted_port, granted_lifetime))
    assert reply is not None and (reply.external_port, reply.lifetime) == (granted_port, granted_lifetime)


@FAST
@given(st.binary(max_size=40))
def test_match_never_raises_on_arbitrary_datagrams(data):
    for pending in (wire.public_address_request(), wire.map_request("tcp", 8080, 8080, 3600),
                    wire.map_request("udp", 5353, 0, 0)):
        reply = pending.match(data)
        if reply is not None:
            assert data[0] == 0 and len(data) in (8, 12, 16)
