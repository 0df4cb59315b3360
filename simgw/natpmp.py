"""NAT-PMP (RFC 6886), server side: public address and mapping requests against the shared table."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

from ._codecs import wire_natpmp as wire
from .side import Side


class NatPmp(Side):
    """The NAT-PMP side of a simulated gateway (its table, settings and faults are the gateway's)."""

    codec = wire
    method = "natpmp"

    def announcement(self) -> bytes:
        return wire.encode_announcement(self.gw.epoch, self.gw.public_address)

    def answer(self, request: Any, client: str, entry: Dict[str, Any]) -> Optional[bytes]:
        epoch = self.gw.epoch
        if isinstance(request, wire.OtherRequest):
            entry.update(version=request.version, op=request.op)
            if request.op >= wire.RESPONSE_BIT:  # whatever its version: answering replies could loop between peers
                entry["answer"] = "ignored: a reply, not a request"
                return None
            if request.version != wire.VERSION:
                if self.gw.unsupported_version == "silent":
                    entry["answer"] = "silent: unsupported version"
                    return None
                return wire.encode_short_reply(wire.RESPONSE_BIT, wire.Result.UNSUPPORTED_VERSION, epoch)
            return wire.encode_short_reply(wire.RESPONSE_BIT + request.op, wire.Result.UNSUPPORTED_OPCODE, epoch)
        if isinstance(request, wire.PublicAddressRequest):
            entry.update(version=0, op=0)
            forced = self.gw.faults.take("result", "public", self.method)
            result = forced.params["code"] if forced else wire.Result.SUCCESS
            address = self.gw.public_address if result == wire.Result.SUCCESS else "0.0.0.0"
            return wire.encode_public_address_reply(result, epoch, address)
        entry.update(version=0, op=wire.PROTOCOL_OPS[request.protocol], protocol=request.protocol,
                     internal_port=request.internal_port, external_port=request.external_port,
                     lifetime=request.lifetime)
        return self._map(request, client, epoch)

    def _map(self, request: wire.MapRequest, client: str, epoch: int) -> bytes:
        protocol, internal = request.protocol, request.internal_port
        table = self.gw.table

        def reply(result: int, external: int = 0, lifetime: int = 0) -> bytes:
            return wire.encode_map_reply(protocol, result, epoch, internal, external, lifetime)

        forced = self.gw.faults.take("result", "map", self.method)
        if forced:
            return reply(forced.params["code"])
        by_external = self.gw.mappings_by == "external-port"
        if request.lifetime == 0:
            if internal == 0:
                for key in [k for k in table if k[0] == client and k[1] == protocol]:
                    del table[key]
            elif by_external:  # miniupnpd: every mapping of the internal port
                for key, _mapping in table.of_internal(client, protocol, internal):
                    del table[key]
            else:
                table.pop((client, protocol, internal), None)
            return reply(wire.Result.SUCCESS)
        if internal == 0:
            return reply(wire.Result.NOT_AUTHORIZED)
        if not table.authorized(client, internal):
            return reply(wire.Result.NOT_AUTHORIZED)
        key = (client, protocol, internal)
        lifetime = min(request.lifetime, self.gw.lifetime_cap)
        existing = table.get(key)
        if by_external:  # miniupnpd: the mapping of the internal port on the suggested port, else another one
            suggested = request.external_port or internal
            existing = next((m for _k, m in table.of_internal(client, protocol, internal)
                             if m.external_port == suggested), None)
            if existing is None:
                mapping = table.add_another(client, protocol, internal, suggested, lifetime, self.gw.max_mappings,
                                            self.method)
                if mapping is None:
                    return reply(wire.Result.OUT_OF_RESOURCES)
                return reply(wire.Result.SUCCESS, mapping.external_port, lifetime)
        if existing is not None:
            existing.lifetime = lifetime
            existing.expires = time.monotonic() + lifetime
            return reply(wire.Result.SUCCESS, existing.external_port, lifetime)
        mapping = self.new_mapping(key, request.external_port or internal, lifetime)
        if mapping is None:
            return reply(wire.Result.OUT_OF_RESOURCES)
        return reply(wire.Result.SUCCESS, mapping.external_port, lifetime)
