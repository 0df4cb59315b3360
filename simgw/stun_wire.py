"""STUN's server side (RFC 8489, RFC 5780): Binding responses, MESSAGE-INTEGRITY and FINGERPRINT.

The client's codec (``portmap.wire_stun``) builds requests and reads responses; what only a
server sends is encoded here, with that codec's header, attribute and XOR-MAPPED-ADDRESS
primitives: success and error responses, the address attributes, MESSAGE-INTEGRITY with
short-term and long-term (MD5) keys, and FINGERPRINT.  The unit tests' STUN server answers
with it, and RFC 5769's test vectors hold its bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import stringprep
import struct
import unicodedata
import zlib
from typing import Optional, Sequence, Tuple

from ._codecs import wire_stun

Address = Tuple[str, int]


def attribute(attr_type: int, value: bytes, padding: bytes = b"\x00") -> bytes:
    """An attribute as the client's codec encodes it, padded with ``padding`` (RFC 5769's vectors pad with spaces)."""
    encoded = wire_stun.encode_attribute(attr_type, value)
    return encoded[:4 + len(value)] + padding * (len(encoded) - 4 - len(value))


def encode(msg_type: int, transaction_id: bytes, attributes: Sequence[Tuple[int, bytes]] = (),
           integrity_key: Optional[bytes] = None, fingerprint: bool = False, padding: bytes = b"\x00") -> bytes:
    """A whole message; MESSAGE-INTEGRITY (with ``integrity_key``) and FINGERPRINT are added last, in that order."""
    header = wire_stun.encode_header
    body = b"".join(attribute(t, v, padding) for t, v in attributes)
    if integrity_key is not None:
        covered = header(msg_type, len(body) + 24, transaction_id) + body
        body += attribute(wire_stun.MESSAGE_INTEGRITY, hmac.new(integrity_key, covered, hashlib.sha1).digest())
    if fingerprint:
        covered = header(msg_type, len(body) + 8, transaction_id) + body
        body += attribute(wire_stun.FINGERPRINT, struct.pack("!I", zlib.crc32(covered) ^ wire_stun.FINGERPRINT_XOR))
    return header(msg_type, len(body), transaction_id) + body


# ------------------------------------------------------------------ addresses

def encode_address(address: Address) -> bytes:
    """MAPPED-ADDRESS form (also OTHER-ADDRESS, RESPONSE-ORIGIN): family, port, address."""
    ip = ipaddress.ip_address(address[0])
    family = wire_stun.FAMILY_IPV4 if ip.version == 4 else wire_stun.FAMILY_IPV6
    return struct.pack("!BBH", 0, family, address[1]) + ip.packed


def encode_xor_address(address: Address, transaction_id: bytes) -> bytes:
    return wire_stun.xor_address(encode_address(address), transaction_id)


# ------------------------------------------------------------------ Binding responses

def encode_binding_response(transaction_id: bytes, mapped: Address, other_address: Optional[Address] = None,
                            response_origin: Optional[Address] = None, xor: bool = True,
                            extra: Sequence[Tuple[int, bytes]] = ()) -> bytes:
    """A Binding success response, as a server sends it."""
    attributes = [(wire_stun.XOR_MAPPED_ADDRESS, encode_xor_address(mapped, transaction_id)) if xor
                  else (wire_stun.MAPPED_ADDRESS, encode_address(mapped))]
    if other_address is not None:
        attributes.append((wire_stun.OTHER_ADDRESS, encode_address(other_address)))
    if response_origin is not None:
        attributes.append((wire_stun.RESPONSE_ORIGIN, encode_address(response_origin)))
    return wire_stun.encode(wire_stun.BINDING_SUCCESS, transaction_id, list(attributes) + list(extra))


def encode_error_response(transaction_id: bytes, code: int, reason: str) -> bytes:
    value = struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode("utf-8")
    return wire_stun.encode(wire_stun.BINDING_ERROR, transaction_id, [(wire_stun.ERROR_CODE, value)])


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


def verify_integrity(message: wire_stun.Message, key: bytes) -> bool:
    """Whether MESSAGE-INTEGRITY is present and right for ``key`` (RFC 8489 section 14.5)."""
    found = message.find(wire_stun.MESSAGE_INTEGRITY)
    if found is None or len(found.value) != 20:
        return False
    raw = message.raw
    covered = raw[:2] + struct.pack("!H", found.offset + 24 - wire_stun.HEADER_SIZE) + raw[4:found.offset]
    return hmac.compare_digest(hmac.new(key, covered, hashlib.sha1).digest(), found.value)
