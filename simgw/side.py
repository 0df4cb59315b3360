"""What every protocol of the simulated gateway has: the gateway (its settings, table and faults)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

from ._codecs import MalformedPacket

from .table import Key, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from .gateway import SimulatedGateway


class Side:
    """One protocol spoken by a simulated gateway; ``method`` names it in the table, the log and faults."""

    method = ""
    codec: Any = None  # the wire module whose decode_request reads this protocol's requests

    def __init__(self, gateway: "SimulatedGateway") -> None:
        self.gw = gateway

    def answer(self, request: Any, client: str, entry: Dict[str, Any]) -> Optional[bytes]:
        """The reply to a decoded request (before faults), or None for no reply."""
        raise NotImplementedError

    def handle(self, data: bytes, client: str, entry: Dict[str, Any]) -> Optional[bytes]:
        """The reply to one datagram of this protocol (before faults), or None for no reply."""
        try:
            request = self.codec.decode_request(data)
        except MalformedPacket as exc:
            entry["answer"] = f"ignored: {exc}"
            return None
        return self.answer(request, client, entry)

    def new_mapping(self, key: Key, suggested: int, lifetime: int, nonce: str = "") -> Optional[Mapping]:
        """A new mapping in the table, or None when the table is full or no port is free."""
        return self.gw.table.add(key, suggested, lifetime, self.gw.max_mappings, self.method, nonce)
