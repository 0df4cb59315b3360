# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gateway epoch tracking (RFC 6886 section 3.6, RFC 6887 section 8.5).

Every reply carries the gateway's epoch: seconds since its mapping table was last
reset.  Each observation is kept with the wall-clock time it was seen, so the check
also works across processes (the ledger stores the last observation).
"""

from __future__ import annotations

from .records import record_class


TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Dict, Optional

NATPMP = "natpmp"
PCP = "pcp"


@record_class(frozen=True)
class EpochObservation:
    epoch: int
    seen_at: float  # wall clock, seconds since the Unix epoch

    def to_dict(self) -> Dict[str, Any]:
        return {"epoch": self.epoch, "seen_at": self.seen_at}

    @classmethod
    def from_dict(cls, data: Optional[Dict[str, Any]]) -> Optional["EpochObservation"]:
        if not data:
            return None
        return cls(int(data["epoch"]), float(data["seen_at"]))


def gateway_lost_state(previous: Optional[EpochObservation], current: EpochObservation) -> bool:
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


def pcp_lost_state(previous: Optional[EpochObservation], current: EpochObservation) -> bool:
    """The same question under RFC 6887 section 8.5, PCP's rule.

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


def lost_state(previous: Optional[EpochObservation], current: EpochObservation, method: str) -> bool:
    """The epoch check of the protocol ``method`` (``natpmp`` or ``pcp``) that observed ``current``."""
    if method == PCP:
        return pcp_lost_state(previous, current)
    return gateway_lost_state(previous, current)
