# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NAT-PMP (RFC 6886): the public address request (op 0), MAP requests keyed by internal port."""

from __future__ import annotations

from .. import wire_natpmp
from ..epoch import EpochObservation
from .registry import TITLES
from .port5351 import DatagramMethod, decode_quietly

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Optional


def lost_state(previous: Optional[EpochObservation], current: EpochObservation) -> bool:
    """True when ``current`` shows that the gateway lost its mappings since ``previous``.

    RFC 6886 section 3.6: with the client's elapsed time dt and the gateway's
    elapsed epoch de, the gateway rebooted when de < 7/8 * dt - 2 (its clock may run
    1/8 slower than ours, and two seconds absorb rounding and transit time).  An
    epoch that went backwards is a reboot whatever the clocks say.
    """
    if previous is None:
        return False
    if current.epoch < previous.epoch:
        return True
    client_elapsed = max(0.0, current.seen_at - previous.seen_at)
    gateway_elapsed = current.epoch - previous.epoch
    return gateway_elapsed < client_elapsed * 7 / 8 - 2


class NatpmpMethod(DatagramMethod):
    name = wire_natpmp.METHOD
    title = TITLES[wire_natpmp.METHOD]
    asked = "NAT-PMP public address request"
    unsupported = "UNSUPPORTED_VERSION"

    @classmethod
    def answer_wait(cls, budget: float) -> float:
        from .port5351 import PCP_SHARE  # pylint: disable=import-outside-toplevel

        return budget * PCP_SHARE  # PCP is preferred: its answer may come later than NAT-PMP's

    @classmethod
    def lost_state(cls, previous: Any, current: Any) -> bool:
        return lost_state(previous, current)

    @classmethod
    def decode_announcement(cls, data: bytes, source: str) -> Optional[Any]:
        """RFC 6886 section 3.2.1: a public address reply (op 128) sent to 224.0.0.1:5350."""
        if data[:1] != bytes([wire_natpmp.VERSION]):
            return None
        from ..announce import Announcement  # pylint: disable=import-outside-toplevel

        reply = decode_quietly(lambda: wire_natpmp.decode_reply(data))
        if reply is None or reply.op != 128 or reply.result != 0 or reply.public_address is None:
            return None
        return Announcement(cls.name, source, epoch=reply.epoch, public_address=reply.public_address)

    def public_request(self) -> Any:
        return wire_natpmp.public_address_request()

    def map_request(self, protocol: str, internal_port: int, external_port: int, lifetime: int,
                    nonce: bytes) -> Any:
        return wire_natpmp.map_request(protocol, internal_port, external_port, lifetime)

    def address_of(self, reply: Any) -> Optional[str]:
        return None if reply.result else reply.public_address
