# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PCP wire format (RFC 6887, version 2): pure encode and decode, both directions.

No sockets, no clocks.  The client side builds ANNOUNCE and MAP requests as a
``Pending`` (the same shape as ``wire_natpmp``'s, so the client drives both
protocols alike); a PCP request carries the client's own address, which is known
only once the socket exists, so ``Pending.encode(local_address)`` makes the bytes.
The server side (``decode_request`` and ``encode_*_response``) is used by the
simulated gateway in the tests.  Options are neither sent nor interpreted; those
a reply carries are skipped.
"""

from __future__ import annotations

import enum
import ipaddress
import struct

from . import wire_natpmp
from .errors import (
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
from .records import record_class

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Optional, Union

METHOD = "pcp"
VERSION = 2
RESPONSE_BIT = 0x80
OP_ANNOUNCE = 0
OP_MAP = 1

PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17}
NUMBER_PROTOCOLS = {number: name for name, number in PROTOCOL_NUMBERS.items()}


class Result(enum.IntEnum):
    """PCP result codes, named as RFC 6887 section 7.4 names them (they differ from NAT-PMP's above 2)."""

    SUCCESS = 0
    UNSUPP_VERSION = 1
    NOT_AUTHORIZED = 2
    MALFORMED_REQUEST = 3
    UNSUPP_OPCODE = 4
    UNSUPP_OPTION = 5
    MALFORMED_OPTION = 6
    NETWORK_FAILURE = 7
    NO_RESOURCES = 8
    UNSUPP_PROTOCOL = 9
    USER_EX_QUOTA = 10
    CANNOT_PROVIDE_EXTERNAL = 11
    ADDRESS_MISMATCH = 12
    EXCESSIVE_REMOTE_PEERS = 13


RESULT_ERRORS = {
    Result.UNSUPP_VERSION: UnsupportedVersion,
    Result.NOT_AUTHORIZED: NotAuthorized,
    Result.MALFORMED_REQUEST: MalformedRequest,
    Result.UNSUPP_OPCODE: UnsupportedOpcode,
    Result.UNSUPP_OPTION: UnsupportedOption,
    Result.MALFORMED_OPTION: MalformedOption,
    Result.NETWORK_FAILURE: NetworkFailure,
    Result.NO_RESOURCES: OutOfResources,
    Result.UNSUPP_PROTOCOL: UnsupportedProtocol,
    Result.USER_EX_QUOTA: UserQuotaExceeded,
    Result.CANNOT_PROVIDE_EXTERNAL: CannotProvideExternal,
    Result.ADDRESS_MISMATCH: AddressMismatch,
    Result.EXCESSIVE_REMOTE_PEERS: ExcessiveRemotePeers,
}
RESULT_HINTS = {
    Result.ADDRESS_MISMATCH: ("the gateway sees this host's requests come from another address than the one inside "
                              "them (another NAT between this host and the gateway?)"),
}

MAX_LIFETIME = 0xFFFFFFFF
MAX_MESSAGE = 1100  # RFC 6887 section 7
NONCE_LENGTH = 12
ANY_IPV4 = "::ffff:0.0.0.0"  # "no preference" for an IPv4 external address (RFC 6887 sections 5, 11.1)

_REQUEST_HEADER = struct.Struct("!BBHI16s")  # version, R|opcode, reserved, lifetime, client address: 24
_RESPONSE_HEADER = struct.Struct("!BBBBII12s")  # version, R|opcode, reserved, result, lifetime, epoch: 24
_MAP_BODY = struct.Struct("!12sB3sHH16s")  # nonce, protocol, reserved, internal, external, external address: 36
HEADER_LENGTH = 24
MAP_LENGTH = HEADER_LENGTH + _MAP_BODY.size  # 60


# --------------------------------------------------------------------------- values


@record_class(frozen=True)
class AnnounceRequest:
    client_address: str


@record_class(frozen=True)
class MapRequest:
    """A MAP request; lifetime 0 deletes (internal port 0 with it: every mapping of the nonce)."""

    client_address: str
    nonce: bytes
    protocol: str
    protocol_number: int
    internal_port: int
    external_port: int
    external_address: str
    lifetime: int


@record_class(frozen=True)
class OtherRequest:
    """A request of another version or opcode (the server answers it with an error)."""

    version: int
    op: int
    client_address: str = ""
    lifetime: int = 0


if TYPE_CHECKING:
    Request = Union[AnnounceRequest, MapRequest, OtherRequest]


@record_class(frozen=True)
class Reply:
    """A decoded response.  Fields the response does not carry are None."""

    op: int
    result: int
    lifetime: int
    epoch: int
    length: int
    nonce: Optional[bytes] = None
    protocol_number: Optional[int] = None
    internal_port: Optional[int] = None
    external_port: Optional[int] = None
    external_address: Optional[str] = None

    @property
    def result_name(self) -> str:
        return result_name(self.result)

    @property
    def protocol(self) -> Optional[str]:
        return None if self.protocol_number is None else NUMBER_PROTOCOLS.get(self.protocol_number)

    @property
    def public_address(self) -> Optional[str]:
        """The assigned external IPv4 address of a MAP response (None when absent or not IPv4)."""
        return ipv4_of(self.external_address) if self.external_address else None


def result_name(code: int) -> str:
    try:
        return Result(code).name
    except ValueError:
        return f"UNKNOWN_RESULT_{code}"


def result_error(code: int, detail: str = "") -> ResultCodeError:
    """The exception for a non-zero result code, named as in RFC 6887."""
    cls = RESULT_ERRORS.get(code, UnknownResultCode)
    hint = RESULT_HINTS.get(code)
    if hint:
        detail = f"{detail} ({hint})" if detail else hint
    return cls(METHOD, code, result_name(code), detail)


# --------------------------------------------------------------------------- addresses


def pack_address(address: str) -> bytes:
    """16 bytes: an IPv6 address as is, an IPv4 address IPv4-mapped (RFC 6887 section 5)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv4Address):
        return b"\x00" * 10 + b"\xff\xff" + ip.packed
    return ip.packed


def unpack_address(data: bytes) -> str:
    """The text form of a 16-byte address field; IPv4-mapped addresses as ``::ffff:a.b.c.d``."""
    ip = ipaddress.IPv6Address(data)
    if ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


def ipv4_of(address: str) -> Optional[str]:
    """The IPv4 address inside an IPv4-mapped address, else None (0.0.0.0 counts as none)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped
    if ip is None or int(ip) == 0:
        return None
    return str(ip)


# --------------------------------------------------------------------------- checks


def nonce_from_hex(text: str) -> bytes:
    """A nonce as the ledger keeps it (24 hex digits)."""
    try:
        nonce = bytes.fromhex(text)
    except ValueError:
        nonce = b""
    if len(nonce) != NONCE_LENGTH or len(text) != NONCE_LENGTH * 2:
        raise ValueError(f"a PCP nonce is {NONCE_LENGTH * 2} hex digits, got {text!r}")
    return nonce


# --------------------------------------------------------------------------- client side


def encode_announce_request(client_address: str) -> bytes:
    return _REQUEST_HEADER.pack(VERSION, OP_ANNOUNCE, 0, 0, pack_address(client_address))


def encode_map_request(
    client_address: str,
    nonce: bytes,
    protocol: str,
    internal_port: int,
    external_port: int,
    lifetime: int,
    external_address: str = ANY_IPV4,
) -> bytes:
    number = PROTOCOL_NUMBERS[protocol]  # the values are the caller's to check (the client's public methods do)
    header = _REQUEST_HEADER.pack(VERSION, OP_MAP, 0, lifetime, pack_address(client_address))
    body = _MAP_BODY.pack(nonce, number, b"\x00" * 3, internal_port, external_port, pack_address(external_address))
    return header + body


def _check_length(data: bytes, what: str) -> None:
    if len(data) < HEADER_LENGTH:
        raise MalformedPacket(f"{what} of {len(data)} bytes is shorter than a PCP header")
    if len(data) > MAX_MESSAGE or len(data) % 4:
        raise MalformedPacket(f"{what} of {len(data)} bytes: PCP messages are multiples of 4 up to {MAX_MESSAGE}")


def decode_reply(data: bytes) -> Reply:
    """Decode a PCP response; raise MalformedPacket for anything else."""
    _check_length(data, "reply")
    version, op, _reserved, result, lifetime, epoch, _zero = _RESPONSE_HEADER.unpack_from(data)
    if version != VERSION:
        raise MalformedPacket(f"reply has version {version}, not {VERSION}")
    if not op & RESPONSE_BIT:
        raise MalformedPacket("a request, not a response (R bit clear)")
    opcode = op & ~RESPONSE_BIT
    if opcode == OP_MAP and len(data) >= MAP_LENGTH:
        nonce, number, _r, internal, external, address = _MAP_BODY.unpack_from(data, HEADER_LENGTH)
        return Reply(op=opcode, result=result, lifetime=lifetime, epoch=epoch, length=len(data), nonce=nonce,
                     protocol_number=number, internal_port=internal, external_port=external,
                     external_address=unpack_address(address))
    if opcode == OP_MAP and result == Result.SUCCESS:
        raise MalformedPacket(f"MAP response of {len(data)} bytes, expected at least {MAP_LENGTH}")
    return Reply(op=opcode, result=result, lifetime=lifetime, epoch=epoch, length=len(data))


@record_class(frozen=True)
class Pending:
    """A request on its way: how to make its bytes, and the test a reply must pass.

    ``encode(local_address)`` gives the datagram (it carries the client's address);
    ``match(datagram)`` returns the Reply when the datagram answers this request,
    None for anything else (ignored); ``error(reply)`` is the exception for a
    non-zero result, else None.
    """

    op: int
    what: str
    nonce: bytes = b""
    protocol_number: int = 0
    internal_port: int = 0
    external_port: int = 0
    lifetime: int = 0

    def encode(self, local_address: str) -> bytes:
        if self.op == OP_ANNOUNCE:
            return encode_announce_request(local_address)
        return encode_map_request(local_address, self.nonce, NUMBER_PROTOCOLS[self.protocol_number],
                                  self.internal_port, self.external_port, self.lifetime)

    def match(self, datagram: bytes) -> Optional[Reply]:
        try:
            reply = decode_reply(datagram)
        except MalformedPacket:
            return None
        if reply.op != self.op:
            return None
        if self.op == OP_ANNOUNCE:
            return reply
        if reply.nonce is None:
            # A header-only MAP response: only an error may be so short.
            return reply if reply.result != Result.SUCCESS else None
        if (reply.nonce, reply.protocol_number, reply.internal_port) != (
            self.nonce, self.protocol_number, self.internal_port
        ):
            return None
        if reply.result != Result.SUCCESS:
            return reply
        if self.lifetime == 0:
            return reply if reply.lifetime == 0 else None
        return reply if reply.lifetime != 0 and reply.external_port != 0 else None

    def error(self, reply: Reply, where: str = "") -> Optional[ResultCodeError]:
        if reply.result == Result.SUCCESS:
            return None
        detail = f"PCP {self.what} at gateway {where}" if where else f"PCP {self.what}"
        return result_error(reply.result, detail)


def announce_request() -> Pending:
    return Pending(OP_ANNOUNCE, "ANNOUNCE request")


def map_request(protocol: str, internal_port: int, external_port: int, lifetime: int, nonce: bytes) -> Pending:
    """A MAP request; lifetime 0 makes it a delete, internal port 0 a delete of every mapping of the nonce."""
    number = PROTOCOL_NUMBERS[protocol]  # the values are the caller's to check (the client's public methods do)
    if lifetime == 0 and internal_port == 0:
        what = f"delete of every {protocol.upper()} mapping of nonce {nonce.hex()}"
    elif lifetime == 0:
        what = f"delete of {protocol.upper()} mapping of internal port {internal_port}"
    else:
        what = (f"{protocol.upper()} mapping of internal port {internal_port} "
                f"(suggested external port {external_port}, lifetime {lifetime} s)")
    return Pending(OP_MAP, what, nonce, number, internal_port, external_port, lifetime)


def unsupported_version_answer(datagram: bytes) -> Optional[int]:
    """The highest version a gateway speaks, when ``datagram`` says it does not speak ours; else None.

    RFC 6887 section 9: a NAT-PMP gateway answers a PCP request with its 8-byte
    reply of version 0 and result 1 (whatever its OP, see wire_natpmp); a PCP
    server answers a version it does not speak with a response header of its own
    version and result UNSUPP_VERSION.  Either is the signal to fall back.
    """
    if len(datagram) == wire_natpmp.SHORT_REPLY_LENGTH:
        try:
            reply = wire_natpmp.decode_reply(datagram)
        except MalformedPacket:
            return None
        return wire_natpmp.VERSION if wire_natpmp.is_unsupported_version(reply) else None
    if (
        HEADER_LENGTH <= len(datagram) <= MAX_MESSAGE
        and len(datagram) % 4 == 0
        and datagram[0] != wire_natpmp.VERSION
        and datagram[1] & RESPONSE_BIT
        and datagram[3] == Result.UNSUPP_VERSION
    ):
        return datagram[0]
    return None


# --------------------------------------------------------------------------- server side


def decode_request(data: bytes) -> Request:
    """Decode a request as a gateway sees it; raise MalformedPacket when it is none.

    Another version or opcode is returned as OtherRequest (answered with an error).
    """
    if len(data) < 2:
        raise MalformedPacket(f"request of {len(data)} bytes is shorter than a PCP header")
    version, op = data[0], data[1]
    if op & RESPONSE_BIT:
        raise MalformedPacket("a response, not a request (R bit set)")
    if version != VERSION:
        return OtherRequest(version, op)
    _check_length(data, "request")
    _v, _op, _reserved, lifetime, client = _REQUEST_HEADER.unpack_from(data)
    client_address = unpack_address(client)
    if op == OP_ANNOUNCE:
        return AnnounceRequest(client_address)
    if op == OP_MAP:
        if len(data) < MAP_LENGTH:
            raise MalformedPacket(f"MAP request of {len(data)} bytes, expected at least {MAP_LENGTH}")
        nonce, number, _r, internal, external, address = _MAP_BODY.unpack_from(data, HEADER_LENGTH)
        return MapRequest(client_address, nonce, NUMBER_PROTOCOLS.get(number, ""), number, internal, external,
                          unpack_address(address), lifetime)
    return OtherRequest(version, op, client_address, lifetime)


def encode_response(op: int, result: int, lifetime: int, epoch: int, body: bytes = b"", version: int = VERSION) -> bytes:
    """A response: the 24-byte header (``version``: the highest the server speaks) and an opcode body."""
    return _RESPONSE_HEADER.pack(version, RESPONSE_BIT | op, 0, result, lifetime, epoch, b"\x00" * 12) + body


def encode_map_response(
    result: int, lifetime: int, epoch: int, nonce: bytes, protocol_number: int, internal_port: int,
    external_port: int, external_address: str
) -> bytes:
    body = _MAP_BODY.pack(nonce, protocol_number, b"\x00" * 3, internal_port, external_port,
                          pack_address(external_address))
    return encode_response(OP_MAP, result, lifetime, epoch, body)


def encode_announcement(epoch: int) -> bytes:
    """RFC 6887 section 14.1.3: the unsolicited ANNOUNCE response a restarted server multicasts."""
    return encode_response(OP_ANNOUNCE, Result.SUCCESS, 0, epoch)
