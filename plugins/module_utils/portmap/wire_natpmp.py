# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NAT-PMP wire format (RFC 6886): pure encode and decode, both directions.

No sockets, no clocks.  Requests are built with ``public_address_request`` and
``map_request``; each returns a ``Pending`` whose ``parse`` accepts only the reply
that answers it.  The server side (``decode_request`` and the ``encode_*_response``
functions) is used by the simulated gateway in the tests.
"""

from __future__ import annotations

import enum
import ipaddress
import struct

from .errors import (
    MalformedPacket,
    NetworkFailure,
    NotAuthorized,
    OutOfResources,
    ResultCodeError,
    UnknownResultCode,
    UnsupportedOpcode,
    UnsupportedVersion,
)
from .records import record_class

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Callable, Optional, Union

METHOD = "natpmp"
VERSION = 0
SERVER_PORT = 5351
CLIENT_PORT = 5350  # announcements go to 224.0.0.1 on this port
ANNOUNCE_GROUP = "224.0.0.1"

OP_PUBLIC_ADDRESS = 0
OP_MAP_UDP = 1
OP_MAP_TCP = 2
RESPONSE_BIT = 128

PROTOCOL_OPS = {"udp": OP_MAP_UDP, "tcp": OP_MAP_TCP}
OP_PROTOCOLS = {op: name for name, op in PROTOCOL_OPS.items()}


class Result(enum.IntEnum):
    """NAT-PMP result codes, named as RFC 6886 section 3.5 names them."""

    SUCCESS = 0
    UNSUPPORTED_VERSION = 1
    NOT_AUTHORIZED = 2
    NETWORK_FAILURE = 3
    OUT_OF_RESOURCES = 4
    UNSUPPORTED_OPCODE = 5


RESULT_ERRORS = {
    Result.UNSUPPORTED_VERSION: UnsupportedVersion,
    Result.NOT_AUTHORIZED: NotAuthorized,
    Result.NETWORK_FAILURE: NetworkFailure,
    Result.OUT_OF_RESOURCES: OutOfResources,
    Result.UNSUPPORTED_OPCODE: UnsupportedOpcode,
}

MAX_LIFETIME = 0xFFFFFFFF

_HEADER = struct.Struct("!BBHI")  # version, op, result, epoch: every reply starts so
_PUBLIC_REPLY = struct.Struct("!BBHI4s")  # 12 bytes
_MAP_REQUEST = struct.Struct("!BBHHHI")  # 12 bytes
_MAP_REPLY = struct.Struct("!BBHIHHI")  # 16 bytes
SHORT_REPLY_LENGTH = _HEADER.size  # 8 bytes: error replies without a body


# --------------------------------------------------------------------------- values


@record_class(frozen=True)
class PublicAddressRequest:
    """Opcode 0."""


@record_class(frozen=True)
class MapRequest:
    """Opcodes 1 (UDP) and 2 (TCP); lifetime 0 deletes, internal port 0 deletes all."""

    protocol: str
    internal_port: int
    external_port: int
    lifetime: int


@record_class(frozen=True)
class OtherRequest:
    """A request of another version or opcode (the server answers it with an error)."""

    version: int
    op: int


@record_class(frozen=True)
class Reply:
    """A decoded reply.  Fields that the reply does not carry are None."""

    op: int
    result: int
    epoch: int
    public_address: Optional[str] = None
    protocol: Optional[str] = None
    internal_port: Optional[int] = None
    external_port: Optional[int] = None
    lifetime: Optional[int] = None
    length: int = 0

    @property
    def result_name(self) -> str:
        return result_name(self.result)


if TYPE_CHECKING:
    Request = Union[PublicAddressRequest, MapRequest, OtherRequest]


def result_name(code: int) -> str:
    try:
        return Result(code).name
    except ValueError:
        return f"UNKNOWN_RESULT_{code}"


def result_error(code: int, detail: str = "") -> ResultCodeError:
    """The exception for a non-zero result code, named as in RFC 6886."""
    cls = RESULT_ERRORS.get(code, UnknownResultCode)
    return cls(METHOD, code, result_name(code), detail)


# --------------------------------------------------------------------------- client side


def encode_public_address_request() -> bytes:
    return struct.pack("!BB", VERSION, OP_PUBLIC_ADDRESS)


def encode_map_request(protocol: str, internal_port: int, external_port: int, lifetime: int) -> bytes:
    op = PROTOCOL_OPS[protocol]  # the values are the caller's to check (the client's public methods do)
    return _MAP_REQUEST.pack(VERSION, op, 0, internal_port, external_port, lifetime)


def decode_reply(data: bytes) -> Reply:
    """Decode any NAT-PMP reply; raise MalformedPacket for anything else.

    An 8-byte reply (a header with no body) is valid only with a non-zero result:
    gateways send it for an unsupported version or opcode.
    """
    if len(data) < SHORT_REPLY_LENGTH:
        raise MalformedPacket(f"reply of {len(data)} bytes is shorter than a NAT-PMP header")
    version, op, result, epoch = _HEADER.unpack_from(data)
    if version != VERSION:
        raise MalformedPacket(f"reply has version {version}, not {VERSION}")
    if len(data) == SHORT_REPLY_LENGTH:
        if result == Result.SUCCESS:
            raise MalformedPacket("8-byte reply with result SUCCESS has no body")
        return Reply(op=op, result=result, epoch=epoch, length=len(data))
    if op == RESPONSE_BIT + OP_PUBLIC_ADDRESS:
        if len(data) != _PUBLIC_REPLY.size:
            raise MalformedPacket(f"public address reply of {len(data)} bytes, expected {_PUBLIC_REPLY.size}")
        address = str(ipaddress.IPv4Address(data[8:12]))
        return Reply(op=op, result=result, epoch=epoch, public_address=address, length=len(data))
    if op - RESPONSE_BIT in OP_PROTOCOLS:
        if len(data) != _MAP_REPLY.size:
            raise MalformedPacket(f"mapping reply of {len(data)} bytes, expected {_MAP_REPLY.size}")
        _v, _o, _r, _e, internal, external, lifetime = _MAP_REPLY.unpack(data)
        return Reply(
            op=op,
            result=result,
            epoch=epoch,
            protocol=OP_PROTOCOLS[op - RESPONSE_BIT],
            internal_port=internal,
            external_port=external,
            lifetime=lifetime,
            length=len(data),
        )
    raise MalformedPacket(f"reply with opcode {op} and {len(data)} bytes is no NAT-PMP reply")


def is_unsupported_version(reply: Reply) -> bool:
    """An "unsupported version" answer, whatever its OP (0, 128 or 128 + request op)."""
    return reply.length == SHORT_REPLY_LENGTH and reply.result == Result.UNSUPPORTED_VERSION


@record_class(frozen=True)
class Pending:
    """A request on its way: the bytes to send and the test a reply must pass.

    ``match(datagram)`` returns the Reply when the datagram answers this request
    (with SUCCESS or with an error code) and None for anything else, which the
    caller ignores while it keeps waiting.  ``error(reply)`` is the exception for
    a reply with a non-zero result, else None.
    """

    data: bytes
    what: str
    accept: Callable[..., bool]

    def encode(self, local_address: str) -> bytes:  # pylint: disable=unused-argument
        """The datagram (a NAT-PMP request does not carry the client's address)."""
        return self.data

    def match(self, datagram: bytes) -> Optional[Reply]:
        try:
            reply = decode_reply(datagram)
        except MalformedPacket:
            return None
        if is_unsupported_version(reply):
            return reply
        if reply.op != RESPONSE_BIT + self.data[1]:
            return None
        if reply.result != Result.SUCCESS:
            # RFC 6886 3.5: ports and lifetime are undefined in error replies.
            if reply.length == SHORT_REPLY_LENGTH or self.accept(reply, error=True):
                return reply
            return None
        return reply if self.accept(reply, error=False) else None

    def error(self, reply: Reply, where: str = "") -> Optional[ResultCodeError]:
        if reply.result == Result.SUCCESS:
            return None
        detail = f"{self.what} at gateway {where}" if where else self.what
        return result_error(reply.result, detail)


def public_address_request() -> Pending:
    def accept(reply: Reply, error: bool) -> bool:
        return reply.public_address is not None

    return Pending(encode_public_address_request(), "public address request", accept)


def map_request(protocol: str, internal_port: int, external_port: int, lifetime: int) -> Pending:
    """A mapping request; lifetime 0 makes it a delete, internal port 0 a delete-all."""
    data = encode_map_request(protocol, internal_port, external_port, lifetime)
    delete = lifetime == 0

    def accept(reply: Reply, error: bool) -> bool:
        if reply.internal_port != internal_port:
            return False
        if error:
            return True  # RFC 6886 3.5: port and lifetime are undefined in error replies
        if delete:
            return reply.external_port == 0 and reply.lifetime == 0
        return reply.external_port != 0 and reply.lifetime != 0

    if delete and internal_port == 0:
        what = f"delete of every {protocol.upper()} mapping"
    elif delete:
        what = f"delete of {protocol.upper()} mapping of internal port {internal_port}"
    else:
        what = (
            f"{protocol.upper()} mapping of internal port {internal_port} "
            f"(suggested external port {external_port}, lifetime {lifetime} s)"
        )
    return Pending(data, what, accept)


# --------------------------------------------------------------------------- server side


def decode_request(data: bytes) -> Request:
    """Decode a request as a gateway sees it; raise MalformedPacket when it is none."""
    if len(data) < 2:
        raise MalformedPacket(f"request of {len(data)} bytes is shorter than a NAT-PMP header")
    version, op = data[0], data[1]
    if version != VERSION or op >= RESPONSE_BIT:
        return OtherRequest(version, op)
    if op == OP_PUBLIC_ADDRESS:
        if len(data) != 2:
            raise MalformedPacket(f"public address request of {len(data)} bytes, expected 2")
        return PublicAddressRequest()
    if op in OP_PROTOCOLS:
        if len(data) != _MAP_REQUEST.size:
            raise MalformedPacket(f"mapping request of {len(data)} bytes, expected {_MAP_REQUEST.size}")
        _v, _o, _reserved, internal, external, lifetime = _MAP_REQUEST.unpack(data)
        return MapRequest(OP_PROTOCOLS[op], internal, external, lifetime)
    return OtherRequest(version, op)


def encode_public_address_reply(result: int, epoch: int, address: str) -> bytes:
    packed = ipaddress.IPv4Address(address).packed
    return _PUBLIC_REPLY.pack(VERSION, RESPONSE_BIT + OP_PUBLIC_ADDRESS, result, epoch, packed)


def encode_map_reply(
    protocol: str, result: int, epoch: int, internal_port: int, external_port: int, lifetime: int
) -> bytes:
    op = PROTOCOL_OPS[protocol]
    return _MAP_REPLY.pack(VERSION, RESPONSE_BIT + op, result, epoch, internal_port, external_port, lifetime)


def encode_short_reply(op: int, result: int, epoch: int) -> bytes:
    """The 8-byte error reply (unsupported version or opcode); ``op`` is the reply's OP."""
    return _HEADER.pack(VERSION, op, result, epoch)


def encode_announcement(epoch: int, address: str) -> bytes:
    """RFC 6886 3.2.1: the unsolicited public address reply sent to 224.0.0.1:5350."""
    return encode_public_address_reply(Result.SUCCESS, epoch, address)
