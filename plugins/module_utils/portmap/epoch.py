# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gateway epoch observations.

Every answer carries the gateway's epoch: seconds since its mapping table was last reset
(NAT-PMP, PCP), or its uptime (UPnP IGD's GetStatusInfo).  Each observation is kept with the
wall-clock time it was seen, so the check also works across processes (the ledger stores the
last observation).  Whether two observations show the gateway lost its mappings is the rule of
the method that made them (``Method.lost_state``).
"""

from __future__ import annotations

from .records import record_class


TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Dict, Optional


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
