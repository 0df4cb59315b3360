# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""STUN wire format (RFC 8489, with RFC 5780's attributes): pure functions, bytes <-> values.

A message is a 20-octet header (type, length, the magic cookie 0x2112A442, a 96-bit
transaction id) and attributes (type, length, value padded to 4 octets).  Only what a
Binding client needs is given a meaning: XOR-MAPPED-ADDRESS (and MAPPED-ADDRESS, which RFC
3489 servers send instead), OTHER-ADDRESS (RFC 3489's CHANGED-ADDRESS has the same form),
RESPONSE-ORIGIN, CHANGE-REQUEST, ERROR-CODE, SOFTWARE; FINGERPRINT is verified when present
and MESSAGE-INTEGRITY can be computed and verified with a key (the RFC 5769 vectors).
Attributes 0x0000-0x7FFF this module does not know are comprehension-required (RFC 8489
section 14): a response carrying one is reported in ``unknown_required``, and the
transaction fails (section 6.3.3, 6.3.4).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import stringprep
import struct
import unicodedata
import zlib

from .errors import MalformedPacket
from .records import record_class

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import List, Optional, Sequence, Tuple

MAGIC_COOKIE = 0x2112A442
HEADER_SIZE = 20
FINGERPRINT_XOR = 0x5354554E

BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111

MAPPED_ADDRESS = 0x0001
CHANGE_REQUEST = 0x0003  # RFC 5780 section 7.2
SOURCE_ADDRESS = 0x0004  # RFC 3489, obsolete
CHANGED_ADDRESS = 0x0005  # RFC 3489, OTHER-ADDRESS's predecessor
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A
REALM = 0x0014
NONCE = 0x0015
MESSAGE_INTEGRITY_SHA256 = 0x001C
PASSWORD_ALGORITHM = 0x001D
USERHASH = 0x001E
XOR_MAPPED_ADDRESS = 0x0020
PADDING = 0x0026  # RFC 5780
RESPONSE_PORT = 0x0027  # RFC 5780
PRIORITY = 0x0024  # RFC 8445 (ICE)
USE_CANDIDATE = 0x0025  # RFC 8445
SOFTWARE = 0x8022
ALTERNATE_SERVER = 0x8023
FINGERPRINT = 0x8028
RESPONSE_ORIGIN = 0x802B  # RFC 5780
OTHER_ADDRESS = 0x802C  # RFC 5780

# The comprehension-required attributes this module knows (RFC 8489 section 18.3.1, RFC 5780,
# the ICE ones of the RFC 5769 vectors); any other type below 0x8000 fails a response.
KNOWN_REQUIRED = frozenset({
    MAPPED_ADDRESS, CHANGE_REQUEST, SOURCE_ADDRESS, CHANGED_ADDRESS, USERNAME, MESSAGE_INTEGRITY,
    ERROR_CODE, UNKNOWN_ATTRIBUTES, REALM, NONCE, MESSAGE_INTEGRITY_SHA256, PASSWORD_ALGORITHM,
    USERHASH, XOR_MAPPED_ADDRESS, PADDING, RESPONSE_PORT, PRIORITY, USE_CANDIDATE,
})

CHANGE_IP = 0x04
CHANGE_PORT = 0x02

FAMILY_IPV4 = 0x01
FAMILY_IPV6 = 0x02

if TYPE_CHECKING:
    Address = Tuple[str, int]


@record_class(frozen=True)
class Attribute:
    type: int
    value: bytes
    offset: int  # where its header starts in the message


@record_class(frozen=True)
class Message:
    msg_type: int
    transaction_id: bytes
    attributes: Tuple[Attribute, ...]
    raw: bytes

    def get(self, attr_type: int) -> Optional[bytes]:
        """The first attribute of this type (RFC 8489 section 14: later duplicates are ignored)."""
        for attribute in self.attributes:
            if attribute.type == attr_type:
                return attribute.value
        return None

    def find(self, attr_type: int) -> Optional[Attribute]:
        return next((a for a in self.attributes if a.type == attr_type), None)

    def unknown_required(self) -> Tuple[int, ...]:
        return tuple(a.type for a in self.attributes if a.type < 0x8000 and a.type not in KNOWN_REQUIRED)


def new_transaction_id() -> bytes:
    return os.urandom(12)


def _pad(value: bytes, padding: bytes = b"\x00") -> bytes:
    return value + padding * (-len(value) % 4)


def _attribute(attr_type: int, value: bytes, padding: bytes = b"\x00") -> bytes:
    if not 0 <= attr_type <= 0xFFFF or len(value) > 0xFFFF:
        raise ValueError(f"STUN attribute 0x{attr_type:04x} of {len(value)} octets cannot be encoded")
    return struct.pack("!HH", attr_type, len(value)) + _pad(value, padding)


def _header(msg_type: int, length: int, transaction_id: bytes) -> bytes:
    if len(transaction_id) != 12:
        raise ValueError(f"a STUN transaction id has 12 octets, not {len(transaction_id)}")
    return struct.pack("!HHI", msg_type, length, MAGIC_COOKIE) + transaction_id


def encode(msg_type: int, transaction_id: bytes, attributes: Sequence[Tuple[int, bytes]] = (),
           integrity_key: Optional[bytes] = None, fingerprint: bool = False, padding: bytes = b"\x00") -> bytes:
    """A whole message; MESSAGE-INTEGRITY (with ``integrity_key``) and FINGERPRINT are added last, in that order."""
    if msg_type & 0xC000:
        raise ValueError(f"STUN message type 0x{msg_type:04x} has its top two bits set")
    body = b"".join(_attribute(t, v, padding) for t, v in attributes)
    if integrity_key is not None:
        covered = _header(msg_type, len(body) + 24, transaction_id) + body
        body += _attribute(MESSAGE_INTEGRITY, hmac.new(integrity_key, covered, hashlib.sha1).digest())
    if fingerprint:
        covered = _header(msg_type, len(body) + 8, transaction_id) + body
        body += _attribute(FINGERPRINT, struct.pack("!I", zlib.crc32(covered) ^ FINGERPRINT_XOR))
    return _header(msg_type, len(body), transaction_id) + body


def decode(datagram: bytes) -> Message:
    """Parse a STUN message; MalformedPacket for anything that is not one (RFC 8489 section 6.3)."""
    if len(datagram) < HEADER_SIZE:
        raise MalformedPacket(f"a STUN message has at least {HEADER_SIZE} octets, got {len(datagram)}")
    msg_type, length, cookie = struct.unpack_from("!HHI", datagram)
    if msg_type & 0xC000:
        raise MalformedPacket("not a STUN message: the first two bits are not zero")
    if cookie != MAGIC_COOKIE:
        raise MalformedPacket(f"not a STUN message: magic cookie 0x{cookie:08x}")
    if length % 4 or length != len(datagram) - HEADER_SIZE:
        raise MalformedPacket(f"STUN message length {length} does not match the datagram's {len(datagram) - HEADER_SIZE} octets")
    attributes: List[Attribute] = []
    at = HEADER_SIZE
    integrity_seen = False
    while at < len(datagram):
        if at + 4 > len(datagram):
            raise MalformedPacket(f"truncated STUN attribute header at octet {at}")
        attr_type, attr_length = struct.unpack_from("!HH", datagram, at)
        end = at + 4 + attr_length
        if end > len(datagram):
            raise MalformedPacket(f"STUN attribute 0x{attr_type:04x} runs past the message end")
        value = datagram[at + 4:end]
        if attr_type == FINGERPRINT:
            if attr_length != 4 or end != len(datagram):
                raise MalformedPacket("FINGERPRINT must be the last attribute, 4 octets long")
            expected = zlib.crc32(datagram[:at]) ^ FINGERPRINT_XOR
            if struct.unpack("!I", value)[0] != expected:
                raise MalformedPacket("FINGERPRINT does not match: not a STUN message")
        if not integrity_seen or attr_type in (MESSAGE_INTEGRITY_SHA256, FINGERPRINT):
            attributes.append(Attribute(attr_type, bytes(value), at))  # after MESSAGE-INTEGRITY: ignored
        integrity_seen = integrity_seen or attr_type == MESSAGE_INTEGRITY
        at = end + (-attr_length % 4)
    if at != len(datagram):
        raise MalformedPacket("STUN attribute padding runs past the message end")
    return Message(msg_type, bytes(datagram[8:20]), tuple(attributes), bytes(datagram))


# ------------------------------------------------------------------ addresses

def encode_address(address: Address) -> bytes:
    """MAPPED-ADDRESS form (also OTHER-ADDRESS, RESPONSE-ORIGIN): family, port, address."""
    ip = ipaddress.ip_address(address[0])
    family = FAMILY_IPV4 if ip.version == 4 else FAMILY_IPV6
    return struct.pack("!BBH", 0, family, address[1]) + ip.packed


def decode_address(value: bytes) -> Address:
    if len(value) < 4:
        raise MalformedPacket(f"a STUN address attribute has at least 4 octets, got {len(value)}")
    family, port = value[1], struct.unpack_from("!H", value, 2)[0]
    size = {FAMILY_IPV4: 4, FAMILY_IPV6: 16}.get(family)
    if size is None or len(value) != 4 + size:
        raise MalformedPacket(f"STUN address attribute: family {family} with {len(value) - 4} address octets")
    return str(ipaddress.ip_address(value[4:])), port


def _xor_pad(transaction_id: bytes) -> bytes:
    return struct.pack("!I", MAGIC_COOKIE) + transaction_id


def _xor(data: bytes, transaction_id: bytes) -> bytes:
    """X-Port is xored with the cookie's top 16 bits, X-Address with the cookie and (IPv6) the transaction id."""
    pad = _xor_pad(transaction_id)
    return data[:2] + bytes(a ^ b for a, b in zip(data[2:4], pad)) + bytes(a ^ b for a, b in zip(data[4:], pad))


def encode_xor_address(address: Address, transaction_id: bytes) -> bytes:
    return _xor(encode_address(address), transaction_id)


def decode_xor_address(value: bytes, transaction_id: bytes) -> Address:
    return decode_address(_xor(value, transaction_id))


def change_request(change_ip: bool, change_port: bool) -> bytes:
    return struct.pack("!I", (CHANGE_IP if change_ip else 0) | (CHANGE_PORT if change_port else 0))


# ------------------------------------------------------------------ Binding

def binding_request(transaction_id: bytes, change_ip: bool = False, change_port: bool = False) -> bytes:
    """A Binding request; with RFC 5780's CHANGE-REQUEST when asked to answer from another address or port."""
    attributes = [(CHANGE_REQUEST, change_request(change_ip, change_port))] if change_ip or change_port else []
    return encode(BINDING_REQUEST, transaction_id, attributes)


@record_class(frozen=True)
class BindingResponse:
    """What a Binding response says (success or error)."""

    success: bool
    mapped: Optional[Address]  # XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS
    xor_mapped: Optional[Address]
    plain_mapped: Optional[Address]
    other_address: Optional[Address]  # OTHER-ADDRESS, else CHANGED-ADDRESS
    response_origin: Optional[Address]
    software: str
    error_code: int
    error_reason: str
    unknown_required: Tuple[int, ...]


def _optional(decoder, value: Optional[bytes], *args) -> Optional[Address]:
    return None if value is None else decoder(value, *args)


def parse_binding_response(datagram: bytes, transaction_id: bytes) -> Optional[BindingResponse]:
    """The response to the Binding request with this transaction id, or None for any other datagram.

    A malformed attribute the response needs (an address) makes it None too: a response
    that cannot be read is dropped, as a lost one would be.
    """
    try:
        message = decode(datagram)
    except MalformedPacket:
        return None
    if message.transaction_id != transaction_id or message.msg_type not in (BINDING_SUCCESS, BINDING_ERROR):
        return None
    try:
        xor_mapped = _optional(decode_xor_address, message.get(XOR_MAPPED_ADDRESS), transaction_id)
        plain = _optional(decode_address, message.get(MAPPED_ADDRESS))
        other = _optional(decode_address, message.get(OTHER_ADDRESS) or message.get(CHANGED_ADDRESS))
        origin = _optional(decode_address, message.get(RESPONSE_ORIGIN))
        code, reason = 0, ""
        if message.msg_type == BINDING_ERROR:
            value = message.get(ERROR_CODE)
            if value is None or len(value) < 4:
                raise MalformedPacket("a STUN error response without a valid ERROR-CODE")
            code = (value[2] & 0x07) * 100 + value[3]
            reason = value[4:].decode("utf-8", "replace")
    except MalformedPacket:
        return None
    software = (message.get(SOFTWARE) or b"").decode("utf-8", "replace")
    return BindingResponse(message.msg_type == BINDING_SUCCESS, xor_mapped or plain, xor_mapped, plain, other,
                           origin, software, code, reason, message.unknown_required())


def encode_binding_response(transaction_id: bytes, mapped: Address, other_address: Optional[Address] = None,
                            response_origin: Optional[Address] = None, xor: bool = True,
                            extra: Sequence[Tuple[int, bytes]] = ()) -> bytes:
    """A Binding success response, as a server sends it (for tests and the simulated server)."""
    attributes = [(XOR_MAPPED_ADDRESS, encode_xor_address(mapped, transaction_id)) if xor
                  else (MAPPED_ADDRESS, encode_address(mapped))]
    if other_address is not None:
        attributes.append((OTHER_ADDRESS, encode_address(other_address)))
    if response_origin is not None:
        attributes.append((RESPONSE_ORIGIN, encode_address(response_origin)))
    return encode(BINDING_SUCCESS, transaction_id, list(attributes) + list(extra))


def encode_error_response(transaction_id: bytes, code: int, reason: str) -> bytes:
    value = struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode("utf-8")
    return encode(BINDING_ERROR, transaction_id, [(ERROR_CODE, value)])


# ------------------------------------------------------------------ MESSAGE-INTEGRITY

def saslprep(text: str) -> str:
    """RFC 4013's mapping (B.1 to nothing, C.1.2 to space) and NFKC; prohibited characters are not checked."""
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c))
    return unicodedata.normalize("NFKC", mapped)


def short_term_key(password: str) -> bytes:
    return saslprep(password).encode("utf-8")


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """RFC 8489 section 9.2.2 (MD5): MD5(username ":" realm ":" SASLprep(password))."""
    return hashlib.md5(f"{username}:{realm}:{saslprep(password)}".encode("utf-8")).digest()  # nosec: the RFC's key


def verify_integrity(message: Message, key: bytes) -> bool:
    """Whether MESSAGE-INTEGRITY is present and right for ``key`` (RFC 8489 section 14.5)."""
    attribute = message.find(MESSAGE_INTEGRITY)
    if attribute is None or len(attribute.value) != 20:
        return False
    raw = message.raw
    covered = raw[:2] + struct.pack("!H", attribute.offset + 24 - HEADER_SIZE) + raw[4:attribute.offset]
    return hmac.compare_digest(hmac.new(key, covered, hashlib.sha1).digest(), attribute.value)
