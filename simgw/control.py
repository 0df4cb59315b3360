"""The control channel: a Unix socket, one JSON command per line in, one JSON answer per line out."""

from __future__ import annotations

import ipaddress
import json
import os
import selectors
import socket
import time
from typing import TYPE_CHECKING, Any, Dict, Optional

from ._codecs import wire_natpmp as wire
from .streams import StreamServer
from .table import Mapping, Rule

if TYPE_CHECKING:  # pragma: no cover
    from .gateway import SimulatedGateway

COMMANDS = ("table", "status", "reboot", "set", "map", "rules", "log", "clear_log", "fault", "clear_faults")


def control(path: str, command: Dict[str, Any], timeout: float = 10.0) -> Dict[str, Any]:
    """Send one control command and return the gateway's answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(path)
        conn.sendall(json.dumps(command).encode() + b"\n")
        buffer = b""
        while not buffer.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            buffer += chunk
    return json.loads(buffer)


class ControlChannel(StreamServer):
    """The control socket of one gateway, served in the gateway's loop, and the commands it runs."""

    def __init__(self, gateway: "SimulatedGateway", path: str) -> None:
        super().__init__()
        self.gw = gateway
        self.path = path

    # ------------------------------------------------------------------ socket

    def bind(self, selector: selectors.BaseSelector) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        os.chmod(self.path, 0o600)
        self.listen(listener, selector)

    def close(self) -> None:
        super().close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def received(self, conn: socket.socket, buffer: bytes, peer: str) -> Optional[bytes]:
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                answer = self.command_line(line)
                conn.setblocking(True)
                try:
                    conn.sendall(json.dumps(answer).encode() + b"\n")
                except OSError:
                    self.drop(conn)
                    return None
                conn.setblocking(False)
        return buffer

    # ------------------------------------------------------------------ commands

    def command_line(self, line: bytes) -> Dict[str, Any]:
        try:
            command = json.loads(line)
            if not isinstance(command, dict):
                raise ValueError("a command is a JSON object")
            return dict(self.command(command), ok=True)
        except (ValueError, KeyError, TypeError) as exc:
            return {"ok": False, "error": str(exc)}

    def command(self, command: Dict[str, Any]) -> Dict[str, Any]:
        """Run one control command; see README.md."""
        gw = self.gw
        name = command.get("cmd")
        now = time.monotonic()
        gw.table.expire(now)
        if name == "table":
            return {"epoch": gw.epoch, "mappings": [m.view(now) for m in gw.table.rows()]}
        if name == "status":
            status = {"epoch": gw.epoch, "public_address": gw.public_address, "mappings": len(gw.table),
                      "requests": gw.requests, "replies": gw.replies}
            status.update({key: getattr(gw, key) for key in gw.settings() if key != "public_address"})
            if gw.igd is not None:
                status.update(igd=f"v{gw.igd.version}", igd_service=gw.igd.services[0].name,
                              igd_services=[service.view() for service in gw.igd.services], location=gw.igd.location(),
                              ssdp=gw.igd.ssdp.mode)
            return dict(status, rules=[r.view() for r in gw.table.rules], faults=gw.faults.views())
        if name == "reboot":
            gw.reboot()
            # counted in the same turn of the loop as the reboot: no request can come between
            return {"epoch": gw.epoch, "mappings": len(gw.table)}
        if name == "set":
            if "epoch" in command:  # as if the gateway had been up this long (tests age ledgers)
                gw.started = now - int(command["epoch"])
            for key, check in gw.settings().items():
                if key in command:
                    setattr(gw, key, check(command[key]))
            return {}
        if name == "map":  # a mapping held by another client, e.g. to take a port away
            client = str(ipaddress.IPv4Address(command["client"]))
            protocol = command.get("protocol", "tcp")
            if protocol not in wire.PROTOCOL_OPS:
                raise ValueError("protocol must be tcp or udp")
            key = (client, protocol, int(command["internal_port"]))
            lifetime = int(command.get("lifetime", 3600))
            nonce = str(command.get("nonce", ""))
            gw.table[key] = Mapping(client, protocol, key[2], int(command["external_port"]), lifetime, now + lifetime,
                                    "pcp" if nonce else "natpmp", nonce)
            return {"mappings": len(gw.table)}
        if name == "rules":
            gw.table.rules = [Rule.parse(r) for r in command.get("rules", [])]
            return {"rules": [r.view() for r in gw.table.rules]}
        if name == "log":
            return {"log": gw.log[-int(command.get("last", len(gw.log) or 1)):] if gw.log else []}
        if name == "clear_log":
            gw.log = []
            return {}
        if name == "fault":
            return {"faults": gw.faults.add(command)}
        if name == "clear_faults":
            gw.faults.clear()
            gw.clear_held()
            return {}
        raise ValueError(f"unknown command {name!r}; commands: {', '.join(COMMANDS)}")
