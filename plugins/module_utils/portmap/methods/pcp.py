# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PCP (RFC 6887): ANNOUNCE, MAP requests that a nonce names (to renew and to delete)."""

from __future__ import annotations

from .. import wire_pcp
from ..epoch import EpochObservation
from .registry import TITLES
from .port5351 import DatagramMethod, decode_quietly

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Optional, Tuple

RESTORE_WAIT = 5.0  # RFC 6887 section 14.1.3: a random wait of 0 to 5 s before renewing after an ANNOUNCE
RENEW_SPREAD = 1 / 8  # RFC 6887 section 11.2.1: renew between 1/2 and 5/8 of the lifetime


def lost_state(previous: Optional[EpochObservation], current: EpochObservation) -> bool:
    """RFC 6887 section 8.5, PCP's epoch rule.

    An epoch that went back by more than one second is invalid (up to one second is
    allowed for reordered replies).  Otherwise, with client_delta the client's and
    server_delta the server's elapsed time, the epoch is invalid when
    client_delta + 2 < server_delta - server_delta / 16, or
    server_delta + 2 < client_delta - client_delta / 16.  An invalid epoch means the
    server's state cannot be trusted: every mapping is renewed.
    """
    if previous is None:
        return False
    if current.epoch + 1 < previous.epoch:
        return True
    client_delta = max(0.0, current.seen_at - previous.seen_at)
    server_delta = current.epoch - previous.epoch
    return client_delta + 2 < server_delta - server_delta / 16 or server_delta + 2 < client_delta - client_delta / 16


class PcpMethod(DatagramMethod):
    name = wire_pcp.METHOD
    title = TITLES[wire_pcp.METHOD]
    asked = "PCP ANNOUNCE request"
    unsupported = "UNSUPP_VERSION"
    lingers_for = ("natpmp",)  # chosen: NAT-PMP's answer, sent with it, tells the public address ANNOUNCE does not

    @classmethod
    def lost_state(cls, previous: Any, current: Any) -> bool:
        return lost_state(previous, current)

    @classmethod
    def renewal_spread(cls, lifetime: int, rng: Any) -> float:
        return rng.uniform(0.0, lifetime * RENEW_SPREAD)

    @classmethod
    def restore_wait(cls, rng: Any) -> Tuple[float, str]:
        return rng.uniform(0.0, RESTORE_WAIT), "PCP's random wait, RFC 6887 section 14.1.3"

    @classmethod
    def decode_announcement(cls, data: bytes, source: str) -> Optional[Any]:
        """RFC 6887 section 14.1.3: an unsolicited ANNOUNCE response sent to 224.0.0.1:5350."""
        if data[:1] != bytes([wire_pcp.VERSION]):
            return None
        from ..announce import Announcement  # pylint: disable=import-outside-toplevel

        response = decode_quietly(lambda: wire_pcp.decode_reply(data))
        if response is None or response.op != wire_pcp.OP_ANNOUNCE or response.result != 0:
            return None
        return Announcement(cls.name, source, epoch=response.epoch)

    def public_request(self) -> Any:
        return wire_pcp.announce_request()

    def map_request(self, protocol: str, internal_port: int, external_port: int, lifetime: int,
                    nonce: bytes) -> Any:
        return wire_pcp.map_request(protocol, internal_port, external_port, lifetime, nonce)

    def address_of(self, reply: Any) -> Optional[str]:
        return getattr(reply, "public_address", None) or None

    def nonce_of(self, nonce: bytes) -> str:
        return nonce.hex()
