# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""STUN wire format (RFC 8489, with RFC 5780's attributes): pure functions, bytes <-> values.

A message is a 20-octet header (type, length, the magic cookie 0x2112A442, a 96-bit
transaction id) and attributes (type, length, value padded to 4 octets).  Only what a
Binding client needs is given a meaning: XOR-MAPPED-ADDRESS (and MAPPED-ADDRESS, which RFC
3489 servers send instead), OTHER-ADDRESS (RFC 3489's CHANGED-ADDRESS has the same form),
RESPONSE-ORIGIN, CHANGE-REQUEST, ERROR-CODE, SOFTWARE; FINGERPRINT is verified when present,
and attributes after MESSAGE-INTEGRITY (but MESSAGE-INTEGRITY-SHA256 and FINGERPRINT) are
ignored.  A client sends only requests: what a server sends (responses, MESSAGE-INTEGRITY,
FINGERPRINT) is encoded by the simulated gateway (``simgw/stun_wire.py``), with this
module's header, attribute and XOR-MAPPED-ADDRESS encoders.
Attributes 0x0000-0x7FFF this module does not know are comprehension-required (RFC 8489
section 14): a response carrying one is reported in ``unknown_required``, and the
transaction fails (section 6.3.3, 6.3.4).
"""

from __future__ import annotations

import ipaddress
import os
import struct
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


def encode_attribute(attr_type: int, value: bytes) -> bytes:
    """An attribute: type, length, the value padded with zeros to 4 octets."""
    if not 0 <= attr_type <= 0xFFFF or len(value) > 0xFFFF:
        raise ValueError(f"STUN attribute 0x{attr_type:04x} of {len(value)} octets cannot be encoded")
    return struct.pack("!HH", attr_type, len(value)) + value + b"\x00" * (-len(value) % 4)


def encode_header(msg_type: int, length: int, transaction_id: bytes) -> bytes:
    """The 20-octet header of a message whose attributes take ``length`` octets."""
    if msg_type & 0xC000:
        raise ValueError(f"STUN message type 0x{msg_type:04x} has its top two bits set")
    if len(transaction_id) != 12:
        raise ValueError(f"a STUN transaction id has 12 octets, not {len(transaction_id)}")
    return struct.pack("!HHI", msg_type, length, MAGIC_COOKIE) + transaction_id


def encode(msg_type: int, transaction_id: bytes, attributes: Sequence[Tuple[int, bytes]] = ()) -> bytes:
    """A whole message."""
    body = b"".join(encode_attribute(t, v) for t, v in attributes)
    return encode_header(msg_type, len(body), transaction_id) + body


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


def xor_address(data: bytes, transaction_id: bytes) -> bytes:
    """MAPPED-ADDRESS's form to XOR-MAPPED-ADDRESS's and back (the xor is its own inverse): X-Port is xored
    with the cookie's top 16 bits, X-Address with the cookie and (IPv6) the transaction id."""
    pad = _xor_pad(transaction_id)
    return data[:2] + bytes(a ^ b for a, b in zip(data[2:4], pad)) + bytes(a ^ b for a, b in zip(data[4:], pad))


def decode_xor_address(value: bytes, transaction_id: bytes) -> Address:
    return decode_address(xor_address(value, transaction_id))


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
