"""The one mapping table every protocol of the simulated gateway shares, with its authorization rules."""

from __future__ import annotations

import ipaddress
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

Key = Tuple[Any, ...]  # (client, protocol, internal port)
PORT_RANGE = (1024, 65535)
EXTERNAL_PORTS = ("suggested", "random")
# NAT-PMP and PCP: "internal-port" keeps one mapping per client, protocol and internal port (a request renews
# it, whatever port it suggests); "external-port" is miniupnpd 2.3.1's way (checked against it): a request
# suggesting another port than the one the internal port is mapped from makes a second mapping (on the next
# free port when the suggested one is held), a NAT-PMP delete removes every mapping of the internal port and
# a PCP delete the oldest one made with its nonce
MAPPINGS_BY = ("internal-port", "external-port")


def parse_port_range(value: Any) -> Tuple[int, int]:
    """``"LOW-HIGH"`` (or a pair) as a range of ports from 1 to 65535."""
    if isinstance(value, str):
        low, _dash, high = value.partition("-")
        bounds = (int(low), int(high or low))
    else:
        bounds = (int(value[0]), int(value[1]))
    if not 1 <= bounds[0] <= bounds[1] <= 65535:
        raise ValueError(f"port range must be LOW-HIGH with 1 <= LOW <= HIGH <= 65535, got {value!r}")
    return bounds


@dataclass
class Mapping:
    client: str
    protocol: str
    internal_port: int
    external_port: int
    lifetime: int
    expires: float  # monotonic
    method: str = "natpmp"
    nonce: str = ""  # PCP: the nonce that made it (hex); only it may renew or delete the mapping
    description: str = ""  # UPnP: NewPortMappingDescription

    @property
    def permanent(self) -> bool:
        return self.expires == math.inf

    def remaining(self, now: float) -> int:
        """Whole seconds left, rounded up (UPnP's NewLeaseDuration, as miniupnpd counts): 0 for a permanent mapping."""
        return 0 if self.permanent else max(0, math.ceil(self.expires - now))

    def view(self, now: float) -> Dict[str, Any]:
        if self.method == "upnp":
            return dict(self._view(now), description=self.description)
        return self._view(now)

    def _view(self, now: float) -> Dict[str, Any]:
        return {
            "method": self.method,
            "nonce": self.nonce,
            "client": self.client,
            "protocol": self.protocol,
            "internal_port": self.internal_port,
            "external_port": self.external_port,
            "lifetime": self.lifetime,
            "expires_in": None if self.permanent else round(max(0.0, self.expires - now), 3),
        }


@dataclass
class Rule:
    action: str  # allow | deny
    network: ipaddress.IPv4Network
    low: int
    high: int

    @classmethod
    def parse(cls, data: Dict[str, Any]) -> "Rule":
        action = data.get("action")
        if action not in ("allow", "deny"):
            raise ValueError(f"rule action must be allow or deny, got {action!r}")
        ports = str(data.get("ports", "0-65535"))
        low, _dash, high = ports.partition("-")
        return cls(action, ipaddress.IPv4Network(data.get("client", "0.0.0.0/0"), strict=False),
                   int(low), int(high or low))

    def matches(self, client: str, port: int) -> bool:
        return ipaddress.IPv4Address(client) in self.network and self.low <= port <= self.high

    def view(self) -> Dict[str, Any]:
        return {"action": self.action, "client": str(self.network), "ports": f"{self.low}-{self.high}"}


class MappingTable(Dict[Key, Mapping]):
    """The mappings by (client, protocol, internal port), and the rules that authorize new ones.

    ``external_ports`` says how a new mapping's external port is chosen: ``suggested`` (the
    client's suggestion, or the next free port after it) or ``random`` (a free port drawn from
    ``port_range``, whatever was suggested, as the NAT-PMP gateways of VPN providers do; the other
    protocol of a client's internal port that has one gets the same port).
    """

    def __init__(self, external_ports: str = "suggested", port_range: Tuple[int, int] = PORT_RANGE,
                 port_seed: int = 0) -> None:
        super().__init__()
        self.rules: List[Rule] = []
        if external_ports not in EXTERNAL_PORTS:
            raise ValueError(f"external_ports must be suggested or random, got {external_ports!r}")
        self.external_ports = external_ports
        self.port_range = parse_port_range(port_range)
        self.port_seed = port_seed
        self.port_random = random.Random(port_seed)

    def seed_ports(self, seed: int) -> None:
        self.port_seed = seed
        self.port_random.seed(seed)

    def expire(self, now: float) -> None:
        for key in [k for k, m in self.items() if m.expires <= now]:
            del self[key]

    def holder(self, protocol: str, external_port: int) -> Optional[Tuple[Key, Mapping]]:
        """The mapping of ``protocol`` that holds ``external_port``, with its key, or None."""
        for key, mapping in self.items():
            if mapping.protocol == protocol and mapping.external_port == external_port:
                return key, mapping
        return None

    def replace(self, old: Key, new: Key, mapping: Mapping) -> None:
        """Put ``mapping`` under ``new`` in the place of ``old`` (GetGenericPortMappingEntry's order stays)."""
        items = [(new, mapping) if key == old else (key, value) for key, value in self.items() if key != new or key == old]
        self.clear()
        self.update(items)

    def of_internal(self, client: str, protocol: str, internal_port: int) -> List[Tuple[Key, Mapping]]:
        """The mappings of a client's internal port, oldest first."""
        return [(k, m) for k, m in self.items()
                if (m.client, m.protocol, m.internal_port) == (client, protocol, internal_port)]

    def add_another(self, client: str, protocol: str, internal_port: int, suggested: int, lifetime: int, limit: int,
                    method: str, nonce: str = "") -> Optional[Mapping]:
        """One more mapping of a client's internal port (``mappings_by`` external-port), on ``suggested`` or the
        next free port; None when ``limit`` mappings exist or no port is free."""
        if len(self) >= limit:
            return None
        external = self.free_port(protocol, suggested, ("", protocol, 0))
        if external is None:
            return None
        key: Key = (client, protocol, internal_port)
        if key in self:
            key = (client, protocol, internal_port, external)
        mapping = self[key] = Mapping(client, protocol, internal_port, external, lifetime, time.monotonic() + lifetime,
                                      method, nonce)
        return mapping

    def rows(self) -> List[Mapping]:
        return sorted(self.values(), key=lambda m: (m.client, m.protocol, m.internal_port))

    def free_port(self, protocol: str, start: int, owner: Key) -> Optional[int]:
        """The first port from ``start`` on (a random one under ``random``), wrapping around, that no other
        mapping of ``protocol`` holds."""
        low, high = self.port_range
        span = high - low + 1
        first = start if low <= start <= high else low
        used = {m.external_port for k, m in self.items() if k[1] == protocol and k != owner}
        if self.external_ports == "random":
            # One port per client and internal port, for TCP and UDP alike, as VPN providers' gateways give it.
            twin = self.get((owner[0], "udp" if protocol == "tcp" else "tcp", owner[2]))
            if twin is not None and twin.external_port not in used:
                return twin.external_port
            first = self.port_random.randint(low, high)
        for step in range(span):
            port = low + (first - low + step) % span
            if port not in used:
                return port
        return None

    def add(self, key: Key, suggested: int, lifetime: int, limit: int, method: str, nonce: str = "") -> Optional[Mapping]:
        """Map ``key`` to a free port (see ``external_ports``); None when ``limit`` mappings exist or no port is free."""
        if len(self) >= limit:
            return None
        external = self.free_port(key[1], suggested, key)
        if external is None:
            return None
        mapping = self[key] = Mapping(key[0], key[1], key[2], external, lifetime, time.monotonic() + lifetime, method, nonce)
        return mapping

    def authorized(self, client: str, port: int) -> bool:
        for rule in self.rules:
            if rule.matches(client, port):
                return rule.action == "allow"
        return True
