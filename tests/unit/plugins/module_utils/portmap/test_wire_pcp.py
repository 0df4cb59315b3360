"""The PCP codec (RFC 6887, version 2) against bytes recorded from a real gateway (miniupnpd 2.3.1).

Vectors from /work/shared/reference/wire-vectors.md, section "PCP (RFC 6887, version 2)
on the same port 5351": gateway 192.168.77.1, WAN address 11.22.33.2, client
192.168.77.10, epoch 5 in the first reply and 6 in the later ones.  The recorded client
suggested the all-zeros external address "::"; ours suggests "::ffff:0.0.0.0".
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portmap import wire_pcp as wire
from portmap.errors import (
    AddressMismatch,
    CannotProvideExternal,
    ExcessiveRemotePeers,
    MalformedOption,
    MalformedPacket,
    MalformedRequest,
    NetworkFailure,
    NotAuthorized,
    OutOfResources,
    ResultCodeError,
    UnknownResultCode,
    UnsupportedOpcode,
    UnsupportedOption,
    UnsupportedProtocol,
    UnsupportedVersion,
    UserQuotaExceeded,
)

CLIENT = "192.168.77.10"
MAPPED_CLIENT = "::ffff:192.168.77.10"
OTHER_CLIENT = "192.168.77.99"
WAN = "11.22.33.2"
MAPPED_WAN = "::ffff:11.22.33.2"
GATEWAY = "192.168.77.1:5351"

NONCE = bytes.fromhex("0102030405060708090a0b0c")
MISMATCH_NONCE = bytes.fromhex("d5e352346f39173dd08c34dd")
OTHER_NONCE = bytes.fromhex("b34a4c039996c8d53c0d9663")

ANNOUNCE_REQUEST = "020000000000000000000000000000000000ffffc0a84d0a"
ANNOUNCE_RESPONSE = "028000000000000000000005000000000000000000000000"
MAP_REQUEST = ("020100000000025800000000000000000000ffffc0a84d0a"
               "0102030405060708090a0b0c060000002382238200000000000000000000000000000000")
MAP_RESPONSE = ("0281000000000258000000060000000000000000000000000102030405060708090a0b0c"
                "060000002382238200000000000000000000ffff0b162102")
MISMATCH_REQUEST = ("020100000000025800000000000000000000ffffc0a84d63"
                    "d5e352346f39173dd08c34dd060000002384238400000000000000000000000000000000")
MISMATCH_RESPONSE = ("0281000c0000000000000006000000000000000000000000d5e352346f39173dd08c34dd"
                     "060000002384238400000000000000000000000000000000")
REFUSED_DELETE_REQUEST = ("020100000000000000000000000000000000ffffc0a84d0a"
                          "b34a4c039996c8d53c0d9663060000002382238200000000000000000000000000000000")
REFUSED_DELETE_RESPONSE = ("028100020000000000000006000000000000000000000000b34a4c039996c8d53c0d9663"
                           "060000002382238200000000000000000000ffff0b162102")
DELETE_REQUEST = ("020100000000000000000000000000000000ffffc0a84d0a"
                  "0102030405060708090a0b0c060000002382238200000000000000000000000000000000")
DELETE_RESPONSE = ("0281000000000000000000060000000000000000000000000102030405060708090a0b0c"
                   "060000002382238200000000000000000000ffff0b162102")

# (client address, map_request args (protocol, internal, external, lifetime, nonce), request hex,
#  response hex, decoded response fields)
MAP_VECTORS = [
    (CLIENT, ("tcp", 9090, 9090, 600, NONCE), MAP_REQUEST, MAP_RESPONSE,
     {"op": 1, "result": 0, "lifetime": 600, "epoch": 6, "length": 60, "nonce": NONCE, "protocol_number": 6,
      "protocol": "tcp", "internal_port": 9090, "external_port": 9090, "external_address": MAPPED_WAN,
      "public_address": WAN, "result_name": "SUCCESS"}),
    (OTHER_CLIENT, ("tcp", 9092, 9092, 600, MISMATCH_NONCE), MISMATCH_REQUEST, MISMATCH_RESPONSE,
     {"op": 1, "result": 12, "lifetime": 0, "epoch": 6, "length": 60, "nonce": MISMATCH_NONCE, "protocol_number": 6,
      "protocol": "tcp", "internal_port": 9092, "external_port": 9092, "external_address": "::",
      "public_address": None, "result_name": "ADDRESS_MISMATCH"}),
    (CLIENT, ("tcp", 9090, 9090, 0, OTHER_NONCE), REFUSED_DELETE_REQUEST, REFUSED_DELETE_RESPONSE,
     {"op": 1, "result": 2, "lifetime": 0, "epoch": 6, "length": 60, "nonce": OTHER_NONCE, "protocol_number": 6,
      "protocol": "tcp", "internal_port": 9090, "external_port": 9090, "external_address": MAPPED_WAN,
      "public_address": WAN, "result_name": "NOT_AUTHORIZED"}),
    (CLIENT, ("tcp", 9090, 9090, 0, NONCE), DELETE_REQUEST, DELETE_RESPONSE,
     {"op": 1, "result": 0, "lifetime": 0, "epoch": 6, "length": 60, "nonce": NONCE, "protocol_number": 6,
      "protocol": "tcp", "internal_port": 9090, "external_port": 9090, "external_address": MAPPED_WAN,
      "public_address": WAN, "result_name": "SUCCESS"}),
]
MAP_IDS = ["map-tcp-9090", "address-mismatch", "refused-delete", "delete-tcp-9090"]

ANNOUNCE_FIELDS = {"op": 0, "result": 0, "lifetime": 0, "epoch": 5, "length": 24, "nonce": None, "protocol_number": None,
                   "protocol": None, "internal_port": None, "external_port": None, "external_address": None,
                   "public_address": None, "result_name": "SUCCESS"}


def unhex(text: str) -> bytes:
    return bytes.fromhex(text)


def patched(message, offset: int, replacement: str) -> bytes:
    """``message`` (hex or bytes) with the bytes at ``offset`` replaced by ``replacement`` (hex)."""
    data = bytearray(unhex(message) if isinstance(message, str) else message)
    new = unhex(replacement)
    assert offset + len(new) <= len(data)
    data[offset:offset + len(new)] = new
    return bytes(data)


# --------------------------------------------------------------------------- client side: requests


def test_announce_request_bytes():
    assert wire.encode_announce_request(CLIENT).hex() == ANNOUNCE_REQUEST
    assert wire.announce_request().encode(CLIENT).hex() == ANNOUNCE_REQUEST


@pytest.mark.parametrize("client, args, request_hex, _response, _fields", MAP_VECTORS, ids=MAP_IDS)
def test_map_request_bytes(client, args, request_hex, _response, _fields):
    protocol, internal, external, lifetime, nonce = args
    data = wire.encode_map_request(client, nonce, protocol, internal, external, lifetime, external_address="::")
    assert data.hex() == request_hex
    assert len(data) == wire.MAP_LENGTH == 60


@pytest.mark.parametrize("client, args, request_hex, _response, _fields", MAP_VECTORS, ids=MAP_IDS)
def test_default_suggested_external_address_is_ipv4_any(client, args, request_hex, _response, _fields):
    """RFC 6887 section 5: "no preference" for an IPv4 address is ::ffff:0.0.0.0, not "::"."""
    protocol, internal, external, lifetime, nonce = args
    expected = request_hex[:-32] + "00000000000000000000ffff00000000"
    assert wire.encode_map_request(client, nonce, protocol, internal, external, lifetime).hex() == expected
    assert wire.map_request(*args).encode(client).hex() == expected
    assert wire.ANY_IPV4 == "::ffff:0.0.0.0"


def test_map_request_header_and_body_layout():
    data = wire.encode_map_request("2001:db8::7", b"\xaa" * 12, "udp", 1, 65535, 2 ** 32 - 1, external_address="198.51.100.9")
    assert data.hex() == ("02010000ffffffff20010db8000000000000000000000007" + "aa" * 12
                          + "11000000" + "0001ffff" + "00000000000000000000ffffc6336409")


def test_pending_encode_uses_the_local_address():
    pending = wire.map_request("udp", 5353, 5354, 120, NONCE)
    assert pending.encode("10.0.0.2")[20:24] == bytes([10, 0, 0, 2])
    assert pending.encode("10.0.0.3")[20:24] == bytes([10, 0, 0, 3])
    assert pending.encode("10.0.0.2") == wire.encode_map_request("10.0.0.2", NONCE, "udp", 5353, 5354, 120)
    assert wire.announce_request().encode("10.0.0.2").hex() == "02000000" + "00000000" + "00" * 10 + "ffff0a000002"


def test_request_field_limits_are_inclusive():
    data = wire.encode_map_request(CLIENT, NONCE, "udp", 65535, 65535, 2 ** 32 - 1)
    assert data[4:8] == b"\xff\xff\xff\xff" and data[36] == 17 and data[40:44] == b"\xff\xff\xff\xff"
    data = wire.encode_map_request(CLIENT, NONCE, "tcp", 0, 0, 0)
    assert data[4:8] == b"\x00" * 4 and data[36] == 6 and data[40:44] == b"\x00" * 4
    assert wire.map_request("udp", 65535, 65535, 2 ** 32 - 1, NONCE).lifetime == 2 ** 32 - 1


def test_map_request_descriptions():
    assert wire.announce_request().what == "ANNOUNCE request"
    assert wire.map_request("tcp", 9090, 9091, 600, NONCE).what == (
        "TCP mapping of internal port 9090 (suggested external port 9091, lifetime 600 s)")
    assert wire.map_request("udp", 5353, 0, 0, NONCE).what == "delete of UDP mapping of internal port 5353"
    assert wire.map_request("tcp", 0, 0, 0, NONCE).what == (
        "delete of every TCP mapping of nonce 0102030405060708090a0b0c")


# --------------------------------------------------------------------------- client side: replies


def test_announce_response_decodes():
    reply = wire.decode_reply(unhex(ANNOUNCE_RESPONSE))
    assert {name: getattr(reply, name) for name in ANNOUNCE_FIELDS} == ANNOUNCE_FIELDS


@pytest.mark.parametrize("_client, _args, _request, response_hex, fields", MAP_VECTORS, ids=MAP_IDS)
def test_map_responses_decode(_client, _args, _request, response_hex, fields):
    reply = wire.decode_reply(unhex(response_hex))
    assert {name: getattr(reply, name) for name in fields} == fields


def test_announce_response_answers_the_announce_request():
    pending = wire.announce_request()
    reply = pending.match(unhex(ANNOUNCE_RESPONSE))
    assert reply == wire.decode_reply(unhex(ANNOUNCE_RESPONSE))
    assert reply.epoch == 5
    assert pending.error(reply) is None


@pytest.mark.parametrize("_client, args, _request, response_hex, _fields", MAP_VECTORS, ids=MAP_IDS)
def test_map_responses_answer_their_requests(_client, args, _request, response_hex, _fields):
    pending = wire.map_request(*args)
    reply = pending.match(unhex(response_hex))
    assert reply == wire.decode_reply(unhex(response_hex))


@pytest.mark.parametrize("_client, args, _request, _response, _fields", MAP_VECTORS, ids=MAP_IDS)
def test_map_responses_answer_only_their_own_request(_client, args, _request, _response, _fields):
    """Of the four recorded MAP responses (and the ANNOUNCE one), only the one to this request matches."""
    pending = wire.map_request(*args)
    others = [vector[3] for vector in MAP_VECTORS if vector[1] != args] + [ANNOUNCE_RESPONSE]
    assert len(others) == 4
    for other in others:
        assert pending.match(unhex(other)) is None, other


def test_vector_results_become_errors():
    reply = wire.map_request("tcp", 9090, 9090, 600, NONCE).match(unhex(MAP_RESPONSE))
    assert wire.map_request("tcp", 9090, 9090, 600, NONCE).error(reply, GATEWAY) is None
    assert wire.map_request("tcp", 9090, 9090, 0, NONCE).error(wire.decode_reply(unhex(DELETE_RESPONSE))) is None

    pending = wire.map_request("tcp", 9092, 9092, 600, MISMATCH_NONCE)
    error = pending.error(pending.match(unhex(MISMATCH_RESPONSE)), GATEWAY)
    assert error.__class__ is AddressMismatch
    assert (error.method, error.code, error.name) == ("pcp", 12, "ADDRESS_MISMATCH")
    assert "ADDRESS_MISMATCH (result code 12)" in str(error)
    assert "another NAT" in str(error) and GATEWAY in str(error) and "9092" in str(error)

    pending = wire.map_request("tcp", 9090, 9090, 0, OTHER_NONCE)
    error = pending.error(pending.match(unhex(REFUSED_DELETE_RESPONSE)), GATEWAY)
    assert error.__class__ is NotAuthorized
    assert (error.method, error.code, error.name) == ("pcp", 2, "NOT_AUTHORIZED")
    assert "NOT_AUTHORIZED (result code 2)" in str(error) and "delete" in str(error) and GATEWAY in str(error)
    assert "another NAT" not in str(error)


def test_a_map_does_not_accept_a_delete_response_and_vice_versa():
    assert wire.map_request("tcp", 9090, 9090, 600, NONCE).match(unhex(DELETE_RESPONSE)) is None
    assert wire.map_request("tcp", 9090, 9090, 0, NONCE).match(unhex(MAP_RESPONSE)) is None
    # A delete accepts any success with lifetime 0, whatever external port it names.
    assert wire.map_request("tcp", 9090, 0, 0, NONCE).match(unhex(DELETE_RESPONSE)) is not None
    assert wire.map_request("tcp", 9090, 0, 0, NONCE).match(patched(DELETE_RESPONSE, 42, "0000")) is not None


# Offsets in a MAP response: 0 version, 1 R|opcode, 3 result, 4 lifetime, 8 epoch, 24 nonce,
# 36 protocol, 40 internal port, 42 external port, 44 external address.
@pytest.mark.parametrize(
    "bad, why",
    [
        (patched(MAP_RESPONSE, 24, "ff"), "wrong nonce (first byte)"),
        (patched(MAP_RESPONSE, 35, "0d"), "wrong nonce (last byte)"),
        (patched(MAP_RESPONSE, 24, MISMATCH_NONCE.hex()), "another request's nonce"),
        (patched(MAP_RESPONSE, 36, "11"), "UDP, not TCP"),
        (patched(MAP_RESPONSE, 36, "00"), "protocol 0"),
        (patched(MAP_RESPONSE, 40, "2383"), "wrong internal port"),
        (patched(MAP_RESPONSE, 40, "0000"), "internal port 0"),
        (patched(MAP_RESPONSE, 1, "80"), "ANNOUNCE opcode"),
        (patched(MAP_RESPONSE, 1, "82"), "PEER opcode"),
        (patched(MAP_RESPONSE, 1, "83"), "opcode 3"),
        (patched(MAP_RESPONSE, 1, "01"), "R bit clear"),
        (patched(MAP_RESPONSE, 0, "01"), "version 1"),
        (patched(MAP_RESPONSE, 0, "00"), "version 0"),
        (patched(MAP_RESPONSE, 0, "03"), "version 3"),
        (unhex(MAP_RESPONSE) + b"\x00", "61 bytes"),
        (unhex(MAP_RESPONSE) + b"\x00\x00", "62 bytes"),
        (unhex(MAP_RESPONSE) + b"\x00\x00\x00", "63 bytes"),
        (unhex(MAP_RESPONSE)[:-1], "59 bytes"),
        (unhex(MAP_RESPONSE) + b"\x00" * (1104 - 60), "1104 bytes"),
        (unhex(MAP_RESPONSE)[:20], "20 bytes"),
        (unhex(MAP_RESPONSE)[:23], "23 bytes"),
        (unhex(MAP_RESPONSE)[:24], "24-byte success"),
        (unhex(MAP_RESPONSE)[:56], "56-byte success"),
        (patched(MAP_RESPONSE, 4, "00000000"), "success with lifetime 0"),
        (patched(MAP_RESPONSE, 42, "0000"), "success with external port 0"),
        (unhex(MAP_REQUEST), "our own request reflected"),
        (b"\xff" * 60, "garbage"),
        (b"", "empty"),
        (unhex("00820000000000051f901f9000000e10"), "a NAT-PMP reply"),
    ],
)
def test_bad_replies_to_a_map_request_are_ignored(bad, why):
    pending = wire.map_request("tcp", 9090, 9090, 600, NONCE)
    assert pending.match(unhex(MAP_RESPONSE)) is not None
    assert pending.match(bad) is None, why


@pytest.mark.parametrize(
    "bad, why",
    [
        (unhex(MAP_RESPONSE), "lifetime 600"),
        (patched(DELETE_RESPONSE, 4, "00000001"), "lifetime 1"),
        (patched(DELETE_RESPONSE, 24, "ff"), "wrong nonce"),
        (patched(DELETE_RESPONSE, 36, "11"), "UDP"),
        (patched(DELETE_RESPONSE, 40, "2383"), "wrong internal port"),
        (patched(DELETE_RESPONSE, 1, "01"), "R bit clear"),
        (unhex(DELETE_RESPONSE)[:24], "24-byte success"),
        (unhex(DELETE_REQUEST), "our own request reflected"),
    ],
)
def test_bad_replies_to_a_delete_are_ignored(bad, why):
    pending = wire.map_request("tcp", 9090, 9090, 0, NONCE)
    assert pending.match(unhex(DELETE_RESPONSE)) is not None
    assert pending.match(bad) is None, why


def test_delete_all_matches_internal_port_zero_only():
    pending = wire.map_request("udp", 0, 0, 0, NONCE)
    assert pending.match(wire.encode_map_response(0, 0, 6, NONCE, 17, 0, 0, "::")) is not None
    assert pending.match(wire.encode_map_response(0, 0, 6, NONCE, 17, 5353, 0, "::")) is None
    assert pending.match(wire.encode_map_response(0, 0, 6, NONCE, 6, 0, 0, "::")) is None
    assert pending.match(wire.encode_map_response(0, 0, 6, OTHER_NONCE, 17, 0, 0, "::")) is None


@pytest.mark.parametrize("lifetime", [600, 0], ids=["map", "delete"])
def test_header_only_error_replies_answer_a_map_request(lifetime):
    pending = wire.map_request("tcp", 9090, 9090, lifetime, NONCE)
    data = wire.encode_response(wire.OP_MAP, wire.Result.NOT_AUTHORIZED, 0, 6)
    assert len(data) == 24
    reply = pending.match(data)
    assert reply is not None
    assert (reply.op, reply.result, reply.epoch, reply.length, reply.nonce, reply.external_address) == (1, 2, 6, 24, None, None)
    assert pending.error(reply, GATEWAY).__class__ is NotAuthorized
    # ...but a header-only SUCCESS carries no mapping, and an ANNOUNCE error answers no MAP.
    assert pending.match(wire.encode_response(wire.OP_MAP, 0, 600, 6)) is None
    assert pending.match(wire.encode_response(wire.OP_ANNOUNCE, wire.Result.NOT_AUTHORIZED, 0, 6)) is None


def test_error_reply_with_a_body_must_match_nonce_protocol_and_port():
    pending = wire.map_request("tcp", 9092, 9092, 600, MISMATCH_NONCE)
    assert pending.match(unhex(MISMATCH_RESPONSE)) is not None
    assert pending.match(patched(MISMATCH_RESPONSE, 24, "00")) is None  # other nonce
    assert pending.match(patched(MISMATCH_RESPONSE, 36, "11")) is None  # UDP
    assert pending.match(patched(MISMATCH_RESPONSE, 40, "2382")) is None  # internal port 9090
    assert wire.map_request("udp", 9092, 9092, 600, MISMATCH_NONCE).match(unhex(MISMATCH_RESPONSE)) is None
    assert wire.map_request("tcp", 9092, 9092, 600, NONCE).match(unhex(MISMATCH_RESPONSE)) is None
    # An error reply's lifetime and external port do not matter (lifetime 0 answers a map).
    assert pending.match(patched(MISMATCH_RESPONSE, 42, "0000")) is not None
    assert pending.match(patched(MISMATCH_RESPONSE, 4, "00000e10")) is not None


@pytest.mark.parametrize(
    "bad, why",
    [
        (unhex(ANNOUNCE_REQUEST), "our own request reflected (R bit clear)"),
        (patched(ANNOUNCE_RESPONSE, 0, "01"), "version 1"),
        (patched(ANNOUNCE_RESPONSE, 1, "81"), "MAP opcode, 24 bytes"),
        (unhex(MAP_RESPONSE), "a MAP response"),
        (unhex(ANNOUNCE_RESPONSE) + b"\x00", "25 bytes"),
        (unhex(ANNOUNCE_RESPONSE)[:20], "20 bytes"),
        (unhex("00800000000000050b162102"), "NAT-PMP public address reply"),
        (unhex("0080000100000005"), "NAT-PMP unsupported version reply"),
        (b"", "empty"),
    ],
)
def test_bad_replies_to_an_announce_are_ignored(bad, why):
    pending = wire.announce_request()
    assert pending.match(unhex(ANNOUNCE_RESPONSE)) is not None
    assert pending.match(bad) is None, why


def test_an_announce_accepts_a_longer_response_and_an_error():
    pending = wire.announce_request()
    reply = pending.match(unhex(ANNOUNCE_RESPONSE) + unhex("02000000"))  # with an option
    assert reply is not None and (reply.length, reply.epoch) == (28, 5)
    reply = pending.match(wire.encode_response(wire.OP_ANNOUNCE, 7, 0, 9))
    assert reply is not None and reply.result == 7
    assert pending.error(reply, GATEWAY).__class__ is NetworkFailure


def test_options_after_a_map_response_are_skipped():
    pending = wire.map_request("tcp", 9090, 9090, 600, NONCE)
    option = unhex("0200000001000004") + b"\x00" * 4  # PREFER_FAILURE (no data), then a 4-byte option
    reply = pending.match(unhex(MAP_RESPONSE) + option)
    assert reply is not None
    assert (reply.length, reply.nonce, reply.external_port, reply.public_address) == (72, NONCE, 9090, WAN)


def test_message_length_limit_is_1100_bytes():
    longest = unhex(MAP_RESPONSE) + b"\x00" * (1100 - 60)
    assert wire.decode_reply(longest).length == 1100
    assert wire.map_request("tcp", 9090, 9090, 600, NONCE).match(longest) is not None
    with pytest.raises(MalformedPacket):
        wire.decode_reply(longest + b"\x00" * 4)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        unhex(ANNOUNCE_RESPONSE)[:23],
        unhex(ANNOUNCE_RESPONSE) + b"\x00",
        unhex(ANNOUNCE_RESPONSE) + b"\x00" * 2,
        unhex(MAP_RESPONSE) + b"\x00" * 1044,
        patched(ANNOUNCE_RESPONSE, 0, "01"),
        patched(ANNOUNCE_RESPONSE, 0, "00"),
        unhex(ANNOUNCE_REQUEST),
        unhex(MAP_REQUEST),
        unhex(MAP_RESPONSE)[:24],
        unhex(MAP_RESPONSE)[:56],
        b"\xff" * 24,
    ],
    ids=["empty", "23-bytes", "25-bytes", "26-bytes", "1104-bytes", "version-1", "version-0", "announce-request",
         "map-request", "24-byte-map-success", "56-byte-map-success", "garbage"],
)
def test_decode_reply_rejects_non_replies(data):
    with pytest.raises(MalformedPacket):
        wire.decode_reply(data)


def test_short_map_error_reply_decodes_without_a_body():
    reply = wire.decode_reply(unhex(MISMATCH_RESPONSE)[:28])
    assert (reply.op, reply.result, reply.length) == (1, 12, 28)
    assert (reply.nonce, reply.protocol, reply.internal_port, reply.public_address) == (None, None, None, None)


# --------------------------------------------------------------------------- result codes

RESULT_CLASSES = [
    (1, UnsupportedVersion, "UNSUPP_VERSION"),
    (2, NotAuthorized, "NOT_AUTHORIZED"),
    (3, MalformedRequest, "MALFORMED_REQUEST"),
    (4, UnsupportedOpcode, "UNSUPP_OPCODE"),
    (5, UnsupportedOption, "UNSUPP_OPTION"),
    (6, MalformedOption, "MALFORMED_OPTION"),
    (7, NetworkFailure, "NETWORK_FAILURE"),
    (8, OutOfResources, "NO_RESOURCES"),
    (9, UnsupportedProtocol, "UNSUPP_PROTOCOL"),
    (10, UserQuotaExceeded, "USER_EX_QUOTA"),
    (11, CannotProvideExternal, "CANNOT_PROVIDE_EXTERNAL"),
    (12, AddressMismatch, "ADDRESS_MISMATCH"),
    (13, ExcessiveRemotePeers, "EXCESSIVE_REMOTE_PEERS"),
    (14, UnknownResultCode, "UNKNOWN_RESULT_14"),
    (99, UnknownResultCode, "UNKNOWN_RESULT_99"),
    (255, UnknownResultCode, "UNKNOWN_RESULT_255"),
]


@pytest.mark.parametrize("code, cls, name", RESULT_CLASSES, ids=[f"{c[0]}-{c[2]}" for c in RESULT_CLASSES])
def test_result_codes_become_distinct_errors(code, cls, name):
    pending = wire.map_request("udp", 5353, 5400, 120, NONCE)
    reply = pending.match(wire.encode_map_response(code, 0, 6, NONCE, 17, 5353, 0, "::"))
    assert reply is not None and reply.result_name == name
    error = pending.error(reply, GATEWAY)
    assert error.__class__ is cls  # exactly this class, not a parent
    assert isinstance(error, ResultCodeError)
    assert (error.method, error.code, error.name) == ("pcp", code, name)
    for part in (f"{name} (result code {code})", "PCP", "UDP", "5353", "5400", "120 s", GATEWAY):
        assert part in str(error), part
    assert ("another NAT" in str(error)) is (code == 12)


@pytest.mark.parametrize("code, cls, name", RESULT_CLASSES, ids=[f"{c[0]}-{c[2]}" for c in RESULT_CLASSES])
def test_header_only_result_codes_become_distinct_errors(code, cls, name):
    pending = wire.map_request("tcp", 9090, 0, 0, NONCE)
    reply = pending.match(wire.encode_response(wire.OP_MAP, code, 0, 6))
    assert reply is not None
    error = pending.error(reply)
    assert error.__class__ is cls
    assert str(error).startswith("PCP delete of TCP mapping of internal port 9090")
    assert f"gateway answered {name} (result code {code})" in str(error)


def test_result_error_without_a_detail():
    error = wire.result_error(12)
    assert error.__class__ is AddressMismatch
    assert "another NAT" in error.detail
    assert str(error).endswith("ADDRESS_MISMATCH (result code 12)")
    error = wire.result_error(8)
    assert error.__class__ is OutOfResources
    assert str(error) == "gateway answered NO_RESOURCES (result code 8)"


def test_success_is_no_error():
    pending = wire.map_request("tcp", 9090, 9090, 600, NONCE)
    assert pending.error(wire.decode_reply(unhex(MAP_RESPONSE)), GATEWAY) is None
    assert wire.announce_request().error(wire.decode_reply(unhex(ANNOUNCE_RESPONSE))) is None


def test_result_names_are_the_rfc_6887_names():
    assert [wire.result_name(code) for code in range(15)] == [
        "SUCCESS", "UNSUPP_VERSION", "NOT_AUTHORIZED", "MALFORMED_REQUEST", "UNSUPP_OPCODE", "UNSUPP_OPTION",
        "MALFORMED_OPTION", "NETWORK_FAILURE", "NO_RESOURCES", "UNSUPP_PROTOCOL", "USER_EX_QUOTA",
        "CANNOT_PROVIDE_EXTERNAL", "ADDRESS_MISMATCH", "EXCESSIVE_REMOTE_PEERS", "UNKNOWN_RESULT_14"]


# --------------------------------------------------------------------------- falling back


@pytest.mark.parametrize("op", [0, 128, 129, 130], ids=lambda op: f"op-{op}")
def test_natpmp_unsupported_version_reply_means_version_0(op):
    data = bytes([0, op]) + unhex("000100000005")
    assert wire.unsupported_version_answer(data) == 0


@pytest.mark.parametrize("version", [1, 2, 3, 0xff])
def test_pcp_unsupp_version_header_gives_the_server_version(version):
    for op in (wire.OP_ANNOUNCE, wire.OP_MAP):
        data = wire.encode_response(op, wire.Result.UNSUPP_VERSION, 0, 6, version=version)
        assert data[0] == version and len(data) == 24
        assert wire.unsupported_version_answer(data) == version
    with_body = wire.encode_response(wire.OP_MAP, wire.Result.UNSUPP_VERSION, 0, 6, b"\x00" * 36, version=version)
    assert wire.unsupported_version_answer(with_body) == version


@pytest.mark.parametrize(
    "data, why",
    [
        (unhex("008300050000000f"), "NAT-PMP unsupported opcode (result 5)"),
        (unhex("0082000200000005"), "NAT-PMP 8-byte result 2"),
        (unhex("00800000000000050b162102"), "NAT-PMP public address reply"),
        (unhex("008000010000000500000000"), "12 bytes with result 1"),
        (unhex("0180000100000005"), "8 bytes of version 1"),
        (unhex("0280000100000005"), "8 bytes of version 2"),
        (unhex("00800001000000"), "7 bytes"),
        (unhex("008000010000000500"), "9 bytes"),
        (unhex(ANNOUNCE_RESPONSE), "PCP success header"),
        (unhex(MAP_RESPONSE), "PCP MAP success"),
        (unhex(MISMATCH_RESPONSE), "PCP result 12"),
        (unhex(REFUSED_DELETE_RESPONSE), "PCP result 2"),
        (wire.encode_response(wire.OP_MAP, wire.Result.UNSUPP_VERSION, 0, 6, version=0), "24 bytes of version 0"),
        (patched(patched(ANNOUNCE_RESPONSE, 1, "00"), 3, "01"), "result 1, R bit clear"),
        (wire.encode_response(0, 1, 0, 6, version=1) + b"\x00", "25 bytes"),
        (wire.encode_response(0, 1, 0, 6, version=1)[:20], "20 bytes"),
        (wire.encode_response(0, 1, 0, 6, b"\x00" * 1080, version=1), "1104 bytes"),
        (b"", "empty"),
        (b"\x00", "1 byte"),
        (b"\xff" * 8, "8 bytes of garbage"),
        (b"\xff" * 24, "24 bytes of garbage"),
    ],
)
def test_other_datagrams_are_no_unsupported_version_answer(data, why):
    assert wire.unsupported_version_answer(data) is None, why


def test_unsupported_version_answer_limits():
    assert wire.unsupported_version_answer(wire.encode_response(0, 1, 0, 6, b"\x00" * 1076, version=1)) == 1  # 1100 bytes
    assert wire.unsupported_version_answer(unhex(ANNOUNCE_REQUEST)[:3] + b"\x01" + b"\x00" * 20) is None  # a request


# --------------------------------------------------------------------------- nonces and addresses


def test_nonce_from_hex_round_trip():
    assert wire.nonce_from_hex("0102030405060708090a0b0c") == NONCE
    assert wire.nonce_from_hex("D5E352346F39173DD08C34DD") == MISMATCH_NONCE
    assert wire.nonce_from_hex(OTHER_NONCE.hex()) == OTHER_NONCE
    assert wire.nonce_from_hex(NONCE.hex()).hex() == "0102030405060708090a0b0c"


@pytest.mark.parametrize("text", ["", "0102030405060708090a0b", "0102030405060708090a0b0c0d", "0102030405060708090a0b0",
                                  "zz02030405060708090a0b0c", "0x02030405060708090a0b0c"])
def test_nonce_from_hex_rejects_bad_nonces(text):
    with pytest.raises(ValueError, match="24 hex digits"):
        wire.nonce_from_hex(text)


@pytest.mark.parametrize(
    "address, packed",
    [
        (CLIENT, "00000000000000000000ffffc0a84d0a"),
        (WAN, "00000000000000000000ffff0b162102"),
        (MAPPED_WAN, "00000000000000000000ffff0b162102"),
        ("::", "00000000000000000000000000000000"),
        ("::ffff:0.0.0.0", "00000000000000000000ffff00000000"),
        ("0.0.0.0", "00000000000000000000ffff00000000"),
        ("2001:db8::1", "20010db8000000000000000000000001"),
        ("fe80::1:2", "fe800000000000000000000000010002"),
    ],
)
def test_pack_address(address, packed):
    assert wire.pack_address(address).hex() == packed


@pytest.mark.parametrize(
    "packed, address",
    [
        ("00000000000000000000ffffc0a84d0a", MAPPED_CLIENT),
        ("00000000000000000000ffff0b162102", MAPPED_WAN),
        ("00000000000000000000ffff00000000", "::ffff:0.0.0.0"),
        ("00000000000000000000000000000000", "::"),
        ("20010db8000000000000000000000001", "2001:db8::1"),
        ("00000000000000000000000000000001", "::1"),
    ],
)
def test_unpack_address(packed, address):
    assert wire.unpack_address(unhex(packed)) == address
    assert wire.pack_address(address).hex() == packed


@pytest.mark.parametrize("address", ["", "300.1.1.1", "host.example", "::ffff:1.2.3", "1.2.3.4.5"])
def test_pack_address_rejects_non_addresses(address):
    with pytest.raises(ValueError):
        wire.pack_address(address)


@pytest.mark.parametrize("size", [0, 4, 15, 17])
def test_unpack_address_needs_16_bytes(size):
    with pytest.raises(ValueError):
        wire.unpack_address(b"\x01" * size)


@pytest.mark.parametrize(
    "address, ipv4",
    [
        (MAPPED_WAN, WAN),
        (MAPPED_CLIENT, CLIENT),
        (WAN, WAN),
        ("::ffff:0.0.0.1", "0.0.0.1"),
        ("::", None),
        ("::ffff:0.0.0.0", None),
        ("0.0.0.0", None),
        ("2001:db8::1", None),
        ("::1", None),
        ("::11.22.33.2", None),  # IPv4-compatible, not IPv4-mapped
    ],
)
def test_ipv4_of(address, ipv4):
    assert wire.ipv4_of(address) == ipv4


# --------------------------------------------------------------------------- server side


def test_server_decodes_the_announce_request():
    assert wire.decode_request(unhex(ANNOUNCE_REQUEST)) == wire.AnnounceRequest(MAPPED_CLIENT)


@pytest.mark.parametrize("client, args, request_hex, _response, _fields", MAP_VECTORS, ids=MAP_IDS)
def test_server_decodes_the_map_requests(client, args, request_hex, _response, _fields):
    protocol, internal, external, lifetime, nonce = args
    expected = wire.MapRequest(client_address=f"::ffff:{client}", nonce=nonce, protocol=protocol, protocol_number=6,
                               internal_port=internal, external_port=external, external_address="::", lifetime=lifetime)
    assert wire.decode_request(unhex(request_hex)) == expected


def test_server_decodes_our_own_map_request():
    data = wire.map_request("udp", 5353, 5354, 120, NONCE).encode("2001:db8::5")
    assert wire.decode_request(data) == wire.MapRequest("2001:db8::5", NONCE, "udp", 17, 5353, 5354, "::ffff:0.0.0.0", 120)
    # An unknown protocol number is kept, with no name.
    request = wire.decode_request(patched(MAP_REQUEST, 36, "84"))
    assert (request.protocol, request.protocol_number) == ("", 132)


def test_server_encodes_the_announce_response():
    reply = wire.decode_reply(unhex(ANNOUNCE_RESPONSE))
    assert wire.encode_response(reply.op, reply.result, reply.lifetime, reply.epoch).hex() == ANNOUNCE_RESPONSE
    assert wire.encode_response(wire.OP_ANNOUNCE, wire.Result.SUCCESS, 0, 5).hex() == ANNOUNCE_RESPONSE
    assert wire.encode_announcement(5).hex() == ANNOUNCE_RESPONSE


@pytest.mark.parametrize("_client, _args, _request, response_hex, _fields", MAP_VECTORS, ids=MAP_IDS)
def test_server_re_encodes_the_map_responses(_client, _args, _request, response_hex, _fields):
    reply = wire.decode_reply(unhex(response_hex))
    data = wire.encode_map_response(reply.result, reply.lifetime, reply.epoch, reply.nonce, reply.protocol_number,
                                    reply.internal_port, reply.external_port, reply.external_address)
    assert data.hex() == response_hex


def test_server_encodes_the_map_responses_from_plain_values():
    assert wire.encode_map_response(0, 600, 6, NONCE, 6, 9090, 9090, WAN).hex() == MAP_RESPONSE
    assert wire.encode_map_response(12, 0, 6, MISMATCH_NONCE, 6, 9092, 9092, "::").hex() == MISMATCH_RESPONSE
    assert wire.encode_map_response(2, 0, 6, OTHER_NONCE, 6, 9090, 9090, WAN).hex() == REFUSED_DELETE_RESPONSE
    assert wire.encode_map_response(0, 0, 6, NONCE, 6, 9090, 9090, MAPPED_WAN).hex() == DELETE_RESPONSE


def test_server_answers_an_unsupported_version_with_its_own():
    data = wire.encode_response(wire.OP_MAP, wire.Result.UNSUPP_VERSION, 0, 6)
    assert data.hex() == "028100010000000000000006" + "00" * 12
    assert wire.encode_response(4, 1, 0, 6, version=1).hex() == "018400010000000000000006" + "00" * 12


@pytest.mark.parametrize(
    "data, expected",
    [
        (patched(ANNOUNCE_REQUEST, 0, "01"), wire.OtherRequest(1, 0)),
        (patched(MAP_REQUEST, 0, "01"), wire.OtherRequest(1, 1)),
        (patched(MAP_REQUEST, 0, "03"), wire.OtherRequest(3, 1)),
        (unhex("0000"), wire.OtherRequest(0, 0)),  # NAT-PMP
        (unhex("03"), None),  # version 3, one byte: too short even for that
        (patched(MAP_REQUEST, 1, "02"), wire.OtherRequest(2, 2, MAPPED_CLIENT, 600)),  # PEER
        (patched(ANNOUNCE_REQUEST, 1, "05"), wire.OtherRequest(2, 5, MAPPED_CLIENT, 0)),
        (patched(patched(ANNOUNCE_REQUEST, 1, "7f"), 4, "00000e10"), wire.OtherRequest(2, 127, MAPPED_CLIENT, 3600)),
    ],
    ids=["version-1-announce", "version-1-map", "version-3-map", "natpmp", "one-byte", "peer", "opcode-5", "opcode-127"],
)
def test_server_returns_other_versions_and_opcodes_as_other_requests(data, expected):
    if expected is None:
        with pytest.raises(MalformedPacket):
            wire.decode_request(data)
    else:
        assert wire.decode_request(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        unhex("02"),
        unhex(ANNOUNCE_RESPONSE),
        unhex(MAP_RESPONSE),
        patched(MAP_REQUEST, 1, "81"),
        patched(MAP_REQUEST, 0, "01")[:1] + b"\x80",
        unhex(MAP_REQUEST)[:24],
        unhex(MAP_REQUEST)[:56],
        unhex(MAP_REQUEST) + b"\x00",
        unhex(MAP_REQUEST) + b"\x00\x00",
        unhex(ANNOUNCE_REQUEST) + b"\x00\x00\x00",
        unhex(ANNOUNCE_REQUEST)[:20],
        unhex(ANNOUNCE_REQUEST)[:23],
        unhex(MAP_REQUEST) + b"\x00" * (1104 - 60),
    ],
    ids=["empty", "one-byte", "announce-response", "map-response", "map-r-bit", "version-1-r-bit", "24-byte-map",
         "56-byte-map", "61-byte-map", "62-byte-map", "27-byte-announce", "20-bytes", "23-bytes", "1104-bytes"],
)
def test_server_rejects_malformed_requests(data):
    with pytest.raises(MalformedPacket):
        wire.decode_request(data)


def test_server_accepts_requests_with_options():
    data = unhex(MAP_REQUEST) + unhex("02000000")
    assert wire.decode_request(data) == wire.decode_request(unhex(MAP_REQUEST))
    assert wire.decode_request(unhex(MAP_REQUEST) + b"\x00" * 1040).nonce == NONCE  # 1100 bytes


# --------------------------------------------------------------------------- properties

PORTS = st.integers(0, 65535)
LIFETIMES = st.integers(0, 2 ** 32 - 1)
PROTOCOLS = st.sampled_from(["tcp", "udp"])
NONCES = st.binary(min_size=12, max_size=12)
IPV4 = st.ip_addresses(v=4).map(str)
ADDRESSES = st.one_of(IPV4, st.ip_addresses(v=6).map(str))
FAST = settings(max_examples=150, deadline=None, database=None)


@FAST
@given(ADDRESSES, NONCES, PROTOCOLS, PORTS, PORTS, LIFETIMES, IPV4)
def test_request_round_trip(client, nonce, protocol, internal, external, lifetime, suggested):
    data = wire.encode_map_request(client, nonce, protocol, internal, external, lifetime, external_address=suggested)
    assert len(data) == 60
    request = wire.decode_request(data)
    assert request.__class__ is wire.MapRequest
    assert (request.nonce, request.protocol, request.internal_port, request.external_port, request.lifetime) == (
        nonce, protocol, internal, external, lifetime)
    assert wire.pack_address(request.client_address) == wire.pack_address(client)
    assert wire.ipv4_of(request.external_address) == (None if suggested == "0.0.0.0" else suggested)


@FAST
@given(st.integers(0, 255), LIFETIMES, LIFETIMES, NONCES, st.integers(0, 255), PORTS, PORTS, IPV4)
def test_response_round_trip(result, lifetime, epoch, nonce, number, internal, external, address):
    data = wire.encode_map_response(result, lifetime, epoch, nonce, number, internal, external, address)
    reply = wire.decode_reply(data)
    assert (reply.op, reply.result, reply.lifetime, reply.epoch, reply.length, reply.nonce, reply.protocol_number,
            reply.internal_port, reply.external_port) == (1, result, lifetime, epoch, 60, nonce, number, internal, external)
    assert reply.external_address == f"::ffff:{address}"


@FAST
@given(PROTOCOLS, NONCES, st.integers(1, 65535), st.integers(1, 65535), st.integers(1, 2 ** 32 - 1), LIFETIMES)
def test_a_granted_mapping_answers_its_request(protocol, nonce, internal, granted_port, granted_lifetime, epoch):
    pending = wire.map_request(protocol, internal, internal, 3600, nonce)
    number = wire.PROTOCOL_NUMBERS[protocol]
    reply = pending.match(wire.encode_map_response(0, granted_lifetime, epoch, nonce, number, internal, granted_port, WAN))
    assert reply is not None
    assert (reply.external_port, reply.lifetime, reply.epoch, reply.public_address) == (granted_port, granted_lifetime, epoch, WAN)


@FAST
@given(st.binary(max_size=80))
def test_match_never_raises_on_arbitrary_datagrams(data):
    for pending in (wire.announce_request(), wire.map_request("tcp", 9090, 9090, 600, NONCE),
                    wire.map_request("udp", 5353, 0, 0, NONCE)):
        reply = pending.match(data)
        if reply is not None:
            assert data[0] == 2 and data[1] & 0x80 and len(data) % 4 == 0 and len(data) >= 24
    version = wire.unsupported_version_answer(data)
    assert version is None or (version == 0 and len(data) == 8) or (version == data[0] and len(data) >= 24)
