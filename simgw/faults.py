"""Fault injection: what the simulated gateway does wrong, on purpose, to the next requests."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ._codecs import wire_pcp as pcp

FAULT_KINDS = ("drop", "delay", "wrong_source", "truncate", "malformed", "result", "late", "reboot",
               "close", "stall", "location", "description")


@dataclass
class Fault:
    """A fault applied to the next ``count`` requests (None: every one), or with ``probability``."""

    kind: str
    count: Optional[int] = None
    probability: float = 1.0
    params: Dict[str, Any] = field(default_factory=dict)
    ops: Optional[List[str]] = None  # "public" (NAT-PMP op 0, PCP ANNOUNCE), "map", a SOAP action, "description", "search"
    methods: Optional[List[str]] = None  # "natpmp", "pcp", "upnp" (HTTP), "ssdp": which protocol's requests
    after: int = 0  # matching requests let through before the fault applies

    def view(self) -> Dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "probability": self.probability,
                "ops": self.ops, "methods": self.methods, "after": self.after, **self.params}


class Faults:
    """The pending faults, taken in order by the requests they match; seeded probabilities."""

    def __init__(self, seed: int = 0) -> None:
        self.pending: List[Fault] = []
        self.random = random.Random(seed)

    def add(self, command: Dict[str, Any]) -> int:
        """Add the fault a control command describes; returns how many are pending."""
        kind = command.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, got {kind!r}")
        if kind == "result" and not isinstance(command.get("code"), int):
            raise ValueError("fault kind result needs an integer code")
        if kind == "description" and command.get("how", "oversized") not in ("oversized", "entity"):
            raise ValueError("fault kind description needs how oversized or entity")
        for number in ("seconds", "size", "length"):  # checked now, not when the fault strikes in the loop
            if number in command:
                float(command[number])
        if "seed" in command:
            self.random.seed(command["seed"])
        params = {k: v for k, v in command.items()
                  if k not in ("cmd", "kind", "count", "probability", "seed", "ops", "methods", "after")}
        count = command.get("count")
        self.pending.append(Fault(kind, None if count is None else int(count),
                                  float(command.get("probability", 1.0)), params, command.get("ops"),
                                  command.get("methods"), int(command.get("after", 0))))
        return len(self.pending)

    def clear(self) -> None:
        self.pending = []

    def views(self) -> List[Dict[str, Any]]:
        return [fault.view() for fault in self.pending]

    def take(self, kind: str, op: Optional[str] = None, method: Optional[str] = None) -> Optional[Fault]:
        """The first pending fault of ``kind`` that applies to this request (counted as used), or None."""
        for fault in self.pending:
            if fault.kind != kind or (op and fault.ops and op not in fault.ops):
                continue
            if method and fault.methods and method not in fault.methods:
                continue
            if fault.after > 0:
                fault.after -= 1
                continue
            if fault.probability < 1.0 and self.random.random() >= fault.probability:
                return None
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self.pending.remove(fault)
            return fault
        return None


def malform(reply: bytes, how: str) -> bytes:
    """A NAT-PMP or PCP reply made wrong in one way (the ``malformed`` fault's ``how``)."""
    if how == "version":
        return bytes([1]) + reply[1:]
    if how == "opcode":
        return reply[:1] + bytes([(reply[1] + 1) & 0xFF]) + reply[2:]
    pcp_reply = reply[:1] == bytes([pcp.VERSION])
    if how == "port":  # the internal port's high byte
        at = 40 if pcp_reply else 8
        return reply[:at] + bytes([reply[at] ^ 0xFF]) + reply[at + 1:] if len(reply) >= at + 2 else reply
    if how == "nonce" and pcp_reply and len(reply) >= pcp.MAP_LENGTH:
        return reply[:24] + bytes([reply[24] ^ 0xFF]) + reply[25:]
    if how == "garbage":
        return bytes(range(len(reply)))
    if how == "long":  # NAT-PMP: 4 bytes too many; PCP: no longer a multiple of 4
        return reply + (b"\x00\x00" if pcp_reply else b"\x00\x00\x00\x00")
    raise ValueError(f"unknown malformation {how!r}")
