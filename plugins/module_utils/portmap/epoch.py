# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gateway epoch tracking (RFC 6886 section 3.6, RFC 6887 section 8.5).

Every reply carries the gateway's epoch: seconds since its mapping table was last
reset.  Each observation is kept with the wall-clock time it was seen, so the check
also works across processes (the ledger stores the last observation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional


@dataclass(frozen=True)
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
