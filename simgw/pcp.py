"""PCP (RFC 6887), server side: ANNOUNCE and MAP against the shared table, nonces kept per mapping."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

from ._codecs import wire_pcp as pcp
from .side import Side


class Pcp(Side):
    """The PCP side of a simulated gateway (its table, settings and faults are the gateway's)."""

    codec = pcp
    method = "pcp"

    def announcement(self) -> bytes:
        return pcp.encode_announcement(self.gw.epoch)  # RFC 6887 section 14.1.3

    def answer(self, request: Any, client: str, entry: Dict[str, Any]) -> Optional[bytes]:
        epoch = self.gw.epoch
        if isinstance(request, pcp.OtherRequest):
            entry.update(version=request.version, op=request.op)
            if request.version != pcp.VERSION:
                return pcp.encode_response(request.op, pcp.Result.UNSUPP_VERSION, 0, epoch)
            return pcp.encode_response(request.op, 4, 0, epoch)  # UNSUPP_OPCODE (PEER among them)
        mismatch = pcp.ipv4_of(request.client_address) != client
        if isinstance(request, pcp.AnnounceRequest):
            entry.update(version=pcp.VERSION, op=pcp.OP_ANNOUNCE)
            forced = self.gw.faults.take("result", "public", self.method)
            result = forced.params["code"] if forced else pcp.Result.ADDRESS_MISMATCH if mismatch else pcp.Result.SUCCESS
            return pcp.encode_response(pcp.OP_ANNOUNCE, result, 0, epoch)
        entry.update(version=pcp.VERSION, op=pcp.OP_MAP, protocol=request.protocol, internal_port=request.internal_port,
                     external_port=request.external_port, lifetime=request.lifetime, nonce=request.nonce.hex())
        return self._map(request, client, epoch, mismatch)

    def _map(self, request: pcp.MapRequest, client: str, epoch: int, mismatch: bool) -> bytes:
        nonce = request.nonce.hex()
        table = self.gw.table

        def reply(result: int, lifetime: int = 0, external: int = request.external_port, address: str = "::") -> bytes:
            return pcp.encode_map_response(result, lifetime, epoch, request.nonce, request.protocol_number,
                                           request.internal_port, external, address)

        public = self.gw.public_address
        forced = self.gw.faults.take("result", "map", self.method)
        if forced:
            return reply(forced.params["code"])
        if mismatch:
            return reply(pcp.Result.ADDRESS_MISMATCH)
        internal, protocol = request.internal_port, request.protocol
        if request.lifetime == 0 and internal == 0:  # every mapping of this nonce (protocol 0: of any protocol)
            for key in [k for k, m in table.items()
                        if k[0] == client and m.nonce == nonce and (not request.protocol_number or k[1] == protocol)]:
                del table[key]
            return reply(pcp.Result.SUCCESS, address=public)
        if not protocol:
            return reply(9)  # UNSUPP_PROTOCOL
        if internal == 0:
            return reply(3)  # MALFORMED_REQUEST: internal port 0 only deletes
        key = (client, protocol, internal)
        existing = table.get(key)
        if self.gw.mappings_by == "external-port":
            return self._map_by_external(request, client, nonce, reply)
        if existing is not None and existing.nonce and existing.nonce != nonce:
            return reply(pcp.Result.NOT_AUTHORIZED, external=existing.external_port, address=public)
        if request.lifetime == 0:
            table.pop(key, None)
            return reply(pcp.Result.SUCCESS, external=existing.external_port if existing else request.external_port,
                         address=public)
        if not table.authorized(client, internal):
            return reply(pcp.Result.NOT_AUTHORIZED)
        lifetime = min(request.lifetime, self.gw.lifetime_cap)
        if existing is not None:
            existing.lifetime, existing.expires = lifetime, time.monotonic() + lifetime
            existing.method, existing.nonce = "pcp", nonce
            return reply(pcp.Result.SUCCESS, lifetime, existing.external_port, public)
        mapping = self.new_mapping(key, request.external_port or internal, lifetime, nonce)
        if mapping is None:
            return reply(8)  # NO_RESOURCES
        return reply(pcp.Result.SUCCESS, lifetime, mapping.external_port, public)

    def _map_by_external(self, request: pcp.MapRequest, client: str, nonce: str, reply: Any) -> bytes:
        """miniupnpd 2.3.1's way: the internal port's mapping on the suggested port is renewed, another
        suggested port makes one more mapping; a delete removes the oldest mapping made with the nonce."""
        table, public = self.gw.table, self.gw.public_address
        internal, protocol = request.internal_port, request.protocol
        mappings = table.of_internal(client, protocol, internal)
        if request.lifetime == 0:
            mine = [(k, m) for k, m in mappings if m.nonce == nonce]
            if mappings and not mine:
                return reply(pcp.Result.NOT_AUTHORIZED, external=mappings[0][1].external_port, address=public)
            if mine:
                del table[mine[0][0]]
            return reply(pcp.Result.SUCCESS, external=mine[0][1].external_port if mine else request.external_port,
                         address=public)
        if not table.authorized(client, internal):
            return reply(pcp.Result.NOT_AUTHORIZED)
        lifetime = min(request.lifetime, self.gw.lifetime_cap)
        suggested = request.external_port or internal
        existing = next((m for _k, m in mappings if m.external_port == suggested), None)
        if existing is not None:
            if existing.nonce and existing.nonce != nonce:
                return reply(pcp.Result.NOT_AUTHORIZED, external=existing.external_port, address=public)
            existing.lifetime, existing.expires = lifetime, time.monotonic() + lifetime
            return reply(pcp.Result.SUCCESS, lifetime, existing.external_port, public)
        mapping = table.add_another(client, protocol, internal, suggested, lifetime, self.gw.max_mappings, self.method,
                                    nonce)
        if mapping is None:
            return reply(8)  # NO_RESOURCES
        return reply(pcp.Result.SUCCESS, lifetime, mapping.external_port, public)
