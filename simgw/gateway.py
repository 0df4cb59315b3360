"""A simulated NAT-PMP (RFC 6886) and PCP (RFC 6887) gateway with a control channel and fault injection.

Run it as a command to test playbooks without a router:

    python3 -m simgw --listen 127.0.0.5:5351 --control /tmp/gw.sock

and drive it with one JSON command per line on the control socket:

    python3 -m simgw ctl /tmp/gw.sock '{"cmd": "table"}'

The wire formats are the collection's own (plugins/module_utils/portmap/wire_natpmp.py
and wire_pcp.py, server side); their bytes are held to a real gateway's by the test
vectors.  ``--speaks`` selects the protocols: both (default), natpmp, pcp, or drop-pcp
(NAT-PMP only, PCP requests dropped without an answer).
The collection's README (section "The simulated gateway") lists every option and control command.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import selectors
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

_MODULE_UTILS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plugins", "module_utils")
if _MODULE_UTILS not in sys.path:
    sys.path.insert(0, _MODULE_UTILS)

from portmap import wire_natpmp as wire  # noqa: E402  pylint: disable=wrong-import-position
from portmap import wire_pcp as pcp  # noqa: E402  pylint: disable=wrong-import-position
from portmap.errors import MalformedPacket  # noqa: E402  pylint: disable=wrong-import-position

Address = Tuple[str, int]
PORT_RANGE = (1024, 65535)


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

    def view(self, now: float) -> Dict[str, Any]:
        return {
            "method": self.method,
            "nonce": self.nonce,
            "client": self.client,
            "protocol": self.protocol,
            "internal_port": self.internal_port,
            "external_port": self.external_port,
            "lifetime": self.lifetime,
            "expires_in": round(max(0.0, self.expires - now), 3),
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


@dataclass
class Fault:
    """A fault applied to the next ``count`` requests (None: every one), or with ``probability``."""

    kind: str
    count: Optional[int] = None
    probability: float = 1.0
    params: Dict[str, Any] = field(default_factory=dict)
    ops: Optional[List[str]] = None  # "public" (NAT-PMP op 0, PCP ANNOUNCE), "map": which requests
    methods: Optional[List[str]] = None  # "natpmp", "pcp": which protocol's requests
    after: int = 0  # matching requests let through before the fault applies


FAULT_KINDS = ("drop", "delay", "wrong_source", "truncate", "malformed", "result", "late", "reboot")
SPEAKS = ("both", "natpmp", "pcp", "drop-pcp")


class SimulatedGateway:
    """The gateway: a selectors loop in one thread (``start``/``stop``) or the caller's (``serve``)."""

    def __init__(
        self,
        address: str = "127.0.0.1",
        port: int = wire.SERVER_PORT,
        control_path: Optional[str] = None,
        public_address: str = "11.22.33.2",
        lifetime_cap: int = 86400,
        max_mappings: int = 65536,
        unsupported_version: str = "reply",
        announce: str = "off",
        seed: int = 0,
        speaks: str = "both",
        uptime: int = 0,
    ) -> None:
        self.uptime = uptime  # the epoch at start, as if the gateway had been up this long
        if speaks not in SPEAKS:
            raise ValueError(f"speaks must be one of {', '.join(SPEAKS)}, got {speaks!r}")
        self.speaks = speaks
        self.address = address
        self.port = port
        self.control_path = control_path
        self.public_address = public_address
        self.lifetime_cap = lifetime_cap
        self.max_mappings = max_mappings
        self.unsupported_version = unsupported_version
        self.announce_mode = announce
        self.random = random.Random(seed)
        self.rules: List[Rule] = []
        self.faults: List[Fault] = []
        self.table: Dict[Tuple[str, str, int], Mapping] = {}
        self.log: List[Dict[str, Any]] = []
        self.log_limit = 10000
        self.requests = 0
        self.replies = 0
        self.started = time.monotonic()
        self._timers: List[Tuple[float, Callable[[], None]]] = []
        self._announcer: Optional[socket.socket] = None  # the socket of the announcements under way
        self._announcing: List[Callable[[], None]] = []  # their timers' actions, cancelled by the next
        self._held: List[Tuple[Address, bytes]] = []  # replies held back by the "late" fault
        self._selector = selectors.DefaultSelector()
        self._sock: Optional[socket.socket] = None
        self._control: Optional[socket.socket] = None
        self._alt: Optional[socket.socket] = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._thread: Optional[threading.Thread] = None
        self._buffers: Dict[socket.socket, bytes] = {}
        self._lock = threading.Lock()
        if announce not in ("off", "loopback", "multicast"):
            raise ValueError(f"announce must be off, loopback or multicast, got {announce!r}")
        if announce == "multicast" and not in_private_netns():
            raise ValueError("announce=multicast is refused in the initial network namespace "
                             "(announcements must never leave the machine); use loopback or off")

    # ------------------------------------------------------------------ lifecycle

    def bind(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.address, self.port))
        self._sock.setblocking(False)
        self._selector.register(self._sock, selectors.EVENT_READ, self._on_datagram)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        if self.control_path:
            if os.path.exists(self.control_path):
                os.unlink(self.control_path)
            self._control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._control.bind(self.control_path)
            os.chmod(self.control_path, 0o600)
            self._control.listen(16)
            self._control.setblocking(False)
            self._selector.register(self._control, selectors.EVENT_READ, self._on_control_accept)
        self.started = time.monotonic() - self.uptime
        self._announce()

    def serve(self) -> None:
        """Run the loop until ``stop``."""
        while not self._stopping:
            timeout = None
            if self._timers:
                timeout = max(0.0, min(t for t, _action in self._timers) - time.monotonic())
            for key, _events in self._selector.select(timeout):
                key.data(key.fileobj)
            now = time.monotonic()
            due = [item for item in self._timers if item[0] <= now]
            if due:
                self._timers = [item for item in self._timers if item[0] > now]
                for _at, action in sorted(due, key=lambda item: item[0]):
                    action()
        self._close()

    def start(self) -> "SimulatedGateway":
        self.bind()
        self._thread = threading.Thread(target=self.serve, name="simgw", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def ctl(self, command: Dict[str, Any]) -> Dict[str, Any]:
        """A control command through the control socket (the loop may run in another thread); fails unless ok."""
        if not self.control_path:
            raise RuntimeError("this gateway has no control socket")
        answer = control(self.control_path, command)
        if not answer.get("ok"):
            raise AssertionError(f"control command {command!r} failed: {answer}")
        return answer

    def __enter__(self) -> "SimulatedGateway":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _close(self) -> None:
        self._stop_announcing()
        for sock in list(self._buffers):
            self._drop_conn(sock)
        for sock in (self._sock, self._control, self._alt, self._wake_r, self._wake_w):
            if sock is not None:
                try:
                    self._selector.unregister(sock)
                except (KeyError, ValueError):
                    pass
                sock.close()
        self._selector.close()
        if self.control_path and os.path.exists(self.control_path):
            os.unlink(self.control_path)

    def _on_wake(self, sock: socket.socket) -> None:
        sock.recv(64)

    # ------------------------------------------------------------------ state

    @property
    def epoch(self) -> int:
        return int(time.monotonic() - self.started)

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, m in self.table.items() if m.expires <= now]:
            del self.table[key]

    def _taken(self, protocol: str, port: int, owner: Tuple[str, str, int]) -> bool:
        return any(m.external_port == port and k[1] == protocol and k != owner for k, m in self.table.items())

    def _free_port(self, protocol: str, start: int, owner: Tuple[str, str, int]) -> Optional[int]:
        low, high = PORT_RANGE
        span = high - low + 1
        first = start if low <= start <= high else low
        used = {m.external_port for k, m in self.table.items() if k[1] == protocol and k != owner}
        for step in range(span):
            port = low + (first - low + step) % span
            if port not in used:
                return port
        return None

    def _authorized(self, client: str, port: int) -> bool:
        for rule in self.rules:
            if rule.matches(client, port):
                return rule.action == "allow"
        return True

    def reboot(self) -> None:
        self.table.clear()
        self.started = time.monotonic()
        self._announce()

    # ------------------------------------------------------------------ requests

    def _on_datagram(self, sock: socket.socket) -> None:
        try:
            data, source = sock.recvfrom(2048)
        except OSError:
            return
        self.requests += 1
        entry: Dict[str, Any] = {"time": time.time(), "client": f"{source[0]}:{source[1]}", "bytes": data.hex()}
        reply = self.handle(data, source[0], entry)
        if reply is None:
            entry.setdefault("answer", "none")
        else:
            self._deliver(source, reply, entry)
        if len(self.log) < self.log_limit:
            self.log.append(entry)

    def handle(self, data: bytes, client: str, entry: Dict[str, Any]) -> Optional[bytes]:
        """The reply to one request (before faults), or None for no reply."""
        self._expire()
        version = data[0] if data else 0
        if len(data) >= 2 and data[1] < wire.RESPONSE_BIT and self._take_fault(
                "reboot", "public" if data[1] == 0 else "map", "pcp" if version >= pcp.VERSION else "natpmp"):
            entry["fault"] = "reboot"
            self.reboot()  # the gateway restarts just before it handles this request
        pcp_spoken = self.speaks in ("both", "pcp")
        if version >= pcp.VERSION or (version != wire.VERSION and self.speaks == "pcp"):
            entry["method"] = "pcp"
            if self.speaks == "drop-pcp":
                entry["answer"] = "dropped: PCP is not spoken here"
                return None
            if pcp_spoken:
                return self._pcp(data, client, entry)
        entry["method"] = "natpmp"
        if self.speaks == "pcp":
            if len(data) < 2 or data[1] >= wire.RESPONSE_BIT:
                entry["answer"] = "ignored: no request"
                return None
            entry.update(version=version, op=data[1])
            # RFC 6887 section 9: a PCP-only server answers NAT-PMP with UNSUPP_VERSION, in PCP's form.
            return pcp.encode_response(data[1], pcp.RESULT_UNSUPP_VERSION, 0, self.epoch)
        try:
            request = wire.decode_request(data)
        except MalformedPacket as exc:
            entry["answer"] = f"ignored: {exc}"
            return None
        epoch = self.epoch
        if isinstance(request, wire.OtherRequest):
            entry.update(version=request.version, op=request.op)
            if request.op >= wire.RESPONSE_BIT:  # whatever its version: answering replies could loop between peers
                entry["answer"] = "ignored: a reply, not a request"
                return None
            if request.version != wire.VERSION:
                if self.unsupported_version == "silent":
                    entry["answer"] = "silent: unsupported version"
                    return None
                return wire.encode_short_reply(wire.RESPONSE_BIT, wire.RESULT_UNSUPPORTED_VERSION, epoch)
            return wire.encode_short_reply(wire.RESPONSE_BIT + request.op, wire.RESULT_UNSUPPORTED_OPCODE, epoch)
        if isinstance(request, wire.PublicAddressRequest):
            entry.update(version=0, op=0)
            forced = self._take_fault("result", "public", "natpmp")
            result = forced.params["code"] if forced else wire.RESULT_SUCCESS
            address = self.public_address if result == wire.RESULT_SUCCESS else "0.0.0.0"
            return wire.encode_public_address_reply(result, epoch, address)
        entry.update(version=0, op=wire.PROTOCOL_OPS[request.protocol], protocol=request.protocol,
                     internal_port=request.internal_port, external_port=request.external_port,
                     lifetime=request.lifetime)
        return self._map(request, client, epoch)

    def _map(self, request: wire.MapRequest, client: str, epoch: int) -> bytes:
        protocol, internal = request.protocol, request.internal_port

        def reply(result: int, external: int = 0, lifetime: int = 0) -> bytes:
            return wire.encode_map_reply(protocol, result, epoch, internal, external, lifetime)

        forced = self._take_fault("result", "map", "natpmp")
        if forced:
            return reply(forced.params["code"])
        if request.lifetime == 0:
            if internal == 0:
                for key in [k for k in self.table if k[0] == client and k[1] == protocol]:
                    del self.table[key]
            else:
                self.table.pop((client, protocol, internal), None)
            return reply(wire.RESULT_SUCCESS)
        if internal == 0:
            return reply(wire.RESULT_NOT_AUTHORIZED)
        if not self._authorized(client, internal):
            return reply(wire.RESULT_NOT_AUTHORIZED)
        key = (client, protocol, internal)
        lifetime = min(request.lifetime, self.lifetime_cap)
        existing = self.table.get(key)
        if existing is not None:
            existing.lifetime = lifetime
            existing.expires = time.monotonic() + lifetime
            return reply(wire.RESULT_SUCCESS, existing.external_port, lifetime)
        if len(self.table) >= self.max_mappings:
            return reply(wire.RESULT_OUT_OF_RESOURCES)
        suggested = request.external_port or internal
        external = self._free_port(protocol, suggested, key)
        if external is None:
            return reply(wire.RESULT_OUT_OF_RESOURCES)
        self.table[key] = Mapping(client, protocol, internal, external, lifetime, time.monotonic() + lifetime)
        return reply(wire.RESULT_SUCCESS, external, lifetime)

    # ------------------------------------------------------------------ PCP

    def _pcp(self, data: bytes, client: str, entry: Dict[str, Any]) -> Optional[bytes]:
        try:
            request = pcp.decode_request(data)
        except MalformedPacket as exc:
            entry["answer"] = f"ignored: {exc}"
            return None
        epoch = self.epoch
        if isinstance(request, pcp.OtherRequest):
            entry.update(version=request.version, op=request.op)
            if request.version != pcp.VERSION:
                return pcp.encode_response(request.op, pcp.RESULT_UNSUPP_VERSION, 0, epoch)
            return pcp.encode_response(request.op, 4, 0, epoch)  # UNSUPP_OPCODE (PEER among them)
        mismatch = pcp.ipv4_of(request.client_address) != client
        if isinstance(request, pcp.AnnounceRequest):
            entry.update(version=pcp.VERSION, op=pcp.OP_ANNOUNCE)
            forced = self._take_fault("result", "public", "pcp")
            result = forced.params["code"] if forced else pcp.RESULT_ADDRESS_MISMATCH if mismatch else pcp.RESULT_SUCCESS
            return pcp.encode_response(pcp.OP_ANNOUNCE, result, 0, epoch)
        entry.update(version=pcp.VERSION, op=pcp.OP_MAP, protocol=request.protocol, internal_port=request.internal_port,
                     external_port=request.external_port, lifetime=request.lifetime, nonce=request.nonce.hex())
        return self._pcp_map(request, client, epoch, mismatch)

    def _pcp_map(self, request: pcp.MapRequest, client: str, epoch: int, mismatch: bool) -> bytes:
        nonce = request.nonce.hex()

        def reply(result: int, lifetime: int = 0, external: int = request.external_port, address: str = "::") -> bytes:
            return pcp.encode_map_response(result, lifetime, epoch, request.nonce, request.protocol_number,
                                           request.internal_port, external, address)

        public = self.public_address
        forced = self._take_fault("result", "map", "pcp")
        if forced:
            return reply(forced.params["code"])
        if mismatch:
            return reply(pcp.RESULT_ADDRESS_MISMATCH)
        internal, protocol = request.internal_port, request.protocol
        if request.lifetime == 0 and internal == 0:  # every mapping of this nonce (protocol 0: of any protocol)
            for key in [k for k, m in self.table.items()
                        if k[0] == client and m.nonce == nonce and (not request.protocol_number or k[1] == protocol)]:
                del self.table[key]
            return reply(pcp.RESULT_SUCCESS, address=public)
        if not protocol:
            return reply(9)  # UNSUPP_PROTOCOL
        if internal == 0:
            return reply(3)  # MALFORMED_REQUEST: internal port 0 only deletes
        key = (client, protocol, internal)
        existing = self.table.get(key)
        if existing is not None and existing.nonce and existing.nonce != nonce:
            return reply(pcp.RESULT_NOT_AUTHORIZED, external=existing.external_port, address=public)
        if request.lifetime == 0:
            self.table.pop(key, None)
            return reply(pcp.RESULT_SUCCESS, external=existing.external_port if existing else request.external_port,
                         address=public)
        if not self._authorized(client, internal):
            return reply(pcp.RESULT_NOT_AUTHORIZED)
        lifetime = min(request.lifetime, self.lifetime_cap)
        if existing is not None:
            existing.lifetime, existing.expires = lifetime, time.monotonic() + lifetime
            existing.method, existing.nonce = "pcp", nonce
            return reply(pcp.RESULT_SUCCESS, lifetime, existing.external_port, public)
        if len(self.table) >= self.max_mappings:
            return reply(8)  # NO_RESOURCES
        external = self._free_port(protocol, request.external_port or internal, key)
        if external is None:
            return reply(8)
        self.table[key] = Mapping(client, protocol, internal, external, lifetime, time.monotonic() + lifetime, "pcp", nonce)
        return reply(pcp.RESULT_SUCCESS, lifetime, external, public)

    # ------------------------------------------------------------------ faults

    def _take_fault(self, kind: str, op: Optional[str] = None, method: Optional[str] = None) -> Optional[Fault]:
        for fault in self.faults:
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
                    self.faults.remove(fault)
            return fault
        return None

    def _send(self, destination: Address, data: bytes, sock: Optional[socket.socket] = None) -> None:
        try:
            (sock or self._sock).sendto(data, destination)
            self.replies += 1
        except OSError:
            pass

    def _deliver(self, destination: Address, reply: bytes, entry: Dict[str, Any]) -> None:
        entry["answer"] = reply.hex()
        method = entry.get("method")

        def take(kind: str) -> Optional[Fault]:
            return self._take_fault(kind, None, method)

        if take("drop"):
            entry["fault"] = "drop"
            return
        bad = take("truncate")
        if bad:
            entry["fault"] = "truncate"
            self._send(destination, reply[: int(bad.params.get("length", 4))])
            if not bad.params.get("then_correct", False):
                return
        bad = take("malformed")
        if bad:
            entry["fault"] = "malformed"
            self._send(destination, malform(reply, bad.params.get("how", "version")))
            if not bad.params.get("then_correct", False):
                return
        wrong = take("wrong_source")
        if wrong:
            entry["fault"] = "wrong_source"
            self._send_from_elsewhere(destination, reply, wrong.params)
        held, self._held = self._held, []
        late = take("late")
        if late:
            entry["fault"] = "late"
            self._held.append((destination, reply))
            return
        delay = take("delay")

        def send_all() -> None:
            self._send(destination, reply)
            for old_destination, old_reply in held:
                self._send(old_destination, old_reply)  # the stale reply arrives after the fresh one

        if delay:
            entry["fault"] = f"delay {delay.params.get('seconds', 0.5)}"
            self._timers.append((time.monotonic() + float(delay.params.get("seconds", 0.5)), send_all))
        else:
            # A held-back reply to an earlier request is delivered just before this one.
            for old_destination, old_reply in held:
                self._send(old_destination, old_reply)
            self._send(destination, reply)

    def _send_from_elsewhere(self, destination: Address, reply: bytes, params: Dict[str, Any]) -> None:
        source = params.get("address", self.address)
        port = int(params.get("port", 0))
        alt = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            alt.bind((source, port))
            alt.sendto(reply, destination)
        except OSError:
            pass
        finally:
            alt.close()

    # ------------------------------------------------------------------ announcements

    def _stop_announcing(self) -> None:
        if self._announcing:
            self._timers = [item for item in self._timers if item[1] not in self._announcing]
            self._announcing = []
        if self._announcer is not None:
            self._announcer.close()
            self._announcer = None

    def _announce(self) -> None:
        """Announce a (re)start; a reboot cancels the announcements of the previous start."""
        self._stop_announcing()
        if self.announce_mode == "off":
            return
        datagrams = []
        if self.speaks != "pcp":
            datagrams.append(wire.encode_announcement(self.epoch, self.public_address))
        if self.speaks in ("both", "pcp"):
            datagrams.append(pcp.encode_announcement(self.epoch))  # RFC 6887 section 14.1.3
        if self.announce_mode == "loopback":
            destination: Address = ("127.0.0.1", wire.CLIENT_PORT)
        else:
            destination = (wire.ANNOUNCE_GROUP, wire.CLIENT_PORT)
        sender = self._announcer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if self.announce_mode == "multicast":
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.address))
        # RFC 6886 3.2.1: up to 10 times, 250 ms apart, doubling.
        at, wait = time.monotonic(), 0.25

        def sender_of(data: bytes) -> Callable[[], None]:
            def send() -> None:
                self._send(destination, data, sender)
            return send

        for _send in range(10):
            for data in datagrams:
                action = sender_of(data)
                self._announcing.append(action)
                self._timers.append((at, action))
            at += wait
            wait *= 2
        self._announcing.append(self._stop_announcing)
        self._timers.append((at, self._stop_announcing))

    # ------------------------------------------------------------------ control channel

    def _on_control_accept(self, sock: socket.socket) -> None:
        try:
            conn, _peer = sock.accept()
        except OSError:
            return
        conn.setblocking(False)
        self._buffers[conn] = b""
        self._selector.register(conn, selectors.EVENT_READ, self._on_control_data)

    def _drop_conn(self, conn: socket.socket) -> None:
        self._buffers.pop(conn, None)
        try:
            self._selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()

    def _on_control_data(self, conn: socket.socket) -> None:
        try:
            chunk = conn.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            self._drop_conn(conn)
            return
        buffer = self._buffers[conn] + chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                answer = self.command_line(line)
                conn.setblocking(True)
                try:
                    conn.sendall(json.dumps(answer).encode() + b"\n")
                except OSError:
                    self._drop_conn(conn)
                    return
                conn.setblocking(False)
        self._buffers[conn] = buffer

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
        name = command.get("cmd")
        self._expire()
        now = time.monotonic()
        if name == "table":
            rows = sorted(self.table.values(), key=lambda m: (m.client, m.protocol, m.internal_port))
            return {"epoch": self.epoch, "mappings": [m.view(now) for m in rows]}
        if name == "status":
            return {"epoch": self.epoch, "public_address": self.public_address, "mappings": len(self.table),
                    "requests": self.requests, "replies": self.replies, "lifetime_cap": self.lifetime_cap,
                    "max_mappings": self.max_mappings, "unsupported_version": self.unsupported_version,
                    "speaks": self.speaks,
                    "rules": [r.view() for r in self.rules],
                    "faults": [{"kind": f.kind, "count": f.count, "probability": f.probability,
                                "ops": f.ops, "methods": f.methods, "after": f.after, **f.params}
                               for f in self.faults]}
        if name == "reboot":
            self.reboot()
            return {"epoch": self.epoch}
        if name == "set":
            if "epoch" in command:  # as if the gateway had been up this long (tests age ledgers)
                self.started = time.monotonic() - int(command["epoch"])
            for key in ("public_address", "lifetime_cap", "max_mappings", "unsupported_version", "speaks"):
                if key in command:
                    value = command[key]
                    if key == "public_address":
                        value = str(ipaddress.IPv4Address(value))
                    elif key == "unsupported_version" and value not in ("reply", "silent"):
                        raise ValueError("unsupported_version must be reply or silent")
                    elif key == "speaks" and value not in SPEAKS:
                        raise ValueError(f"speaks must be one of {', '.join(SPEAKS)}")
                    elif key in ("lifetime_cap", "max_mappings"):
                        value = int(value)
                    setattr(self, key, value)
            return {}
        if name == "map":  # a mapping held by another client, e.g. to take a port away
            client = str(ipaddress.IPv4Address(command["client"]))
            protocol = command.get("protocol", "tcp")
            if protocol not in wire.PROTOCOL_OPS:
                raise ValueError("protocol must be tcp or udp")
            key = (client, protocol, int(command["internal_port"]))
            lifetime = int(command.get("lifetime", 3600))
            nonce = str(command.get("nonce", ""))
            self.table[key] = Mapping(client, protocol, key[2], int(command["external_port"]), lifetime, now + lifetime,
                                      "pcp" if nonce else "natpmp", nonce)
            return {"mappings": len(self.table)}
        if name == "rules":
            self.rules = [Rule.parse(r) for r in command.get("rules", [])]
            return {"rules": [r.view() for r in self.rules]}
        if name == "log":
            return {"log": self.log[-int(command.get("last", len(self.log) or 1)):] if self.log else []}
        if name == "clear_log":
            self.log = []
            return {}
        if name == "fault":
            kind = command.get("kind")
            if kind not in FAULT_KINDS:
                raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, got {kind!r}")
            if kind == "result" and not isinstance(command.get("code"), int):
                raise ValueError("fault kind result needs an integer code")
            if "seed" in command:
                self.random.seed(command["seed"])
            params = {k: v for k, v in command.items()
                      if k not in ("cmd", "kind", "count", "probability", "seed", "ops", "methods", "after")}
            count = command.get("count")
            self.faults.append(Fault(kind, None if count is None else int(count),
                                     float(command.get("probability", 1.0)), params, command.get("ops"),
                                     command.get("methods"), int(command.get("after", 0))))
            return {"faults": len(self.faults)}
        if name == "clear_faults":
            self.faults = []
            self._held = []
            return {}
        raise ValueError(f"unknown command {name!r}; commands: table, status, reboot, set, map, rules, log, "
                         "clear_log, fault, clear_faults")


def malform(reply: bytes, how: str) -> bytes:
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


def in_private_netns() -> bool:
    """True inside a network namespace made with ``ip netns add`` (one named in /run/netns).

    (/proc/1/ns/net, the initial namespace, may not be readable even by root in a sandbox;
    the named namespaces are what the tests create, so matching one of them is the safe test.)
    """
    try:
        own = os.stat("/proc/self/ns/net")
        names = os.listdir("/run/netns")
    except OSError:
        return False
    for name in names:
        try:
            other = os.stat(os.path.join("/run/netns", name))
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (own.st_dev, own.st_ino):
            return True
    return False


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


def _parse_listen(value: str) -> Address:
    host, _colon, port = value.rpartition(":")
    return host or "127.0.0.1", int(port or wire.SERVER_PORT)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ctl"]:
        parser = argparse.ArgumentParser(prog="python3 -m simgw ctl", description="Send control commands to a running simulated gateway.")
        parser.add_argument("control", help="path of the gateway's control socket")
        parser.add_argument("commands", nargs="+", help="JSON commands, e.g. '{\"cmd\": \"table\"}'")
        args = parser.parse_args(argv[1:])
        status = 0
        for text in args.commands:
            answer = control(args.control, json.loads(text))
            print(json.dumps(answer))
            status |= 0 if answer.get("ok") else 1
        return status
    parser = argparse.ArgumentParser(
        prog="python3 -m simgw",
        description="Simulated NAT-PMP (RFC 6886) and PCP (RFC 6887) gateway with a JSON control channel and "
        "fault injection. "
        "Use 'python3 -m simgw ctl SOCKET JSON...' to send control commands.")
    parser.add_argument("--listen", default="127.0.0.1:5351", help="ADDRESS:PORT to serve (default 127.0.0.1:5351)")
    parser.add_argument("--control", help="path of the Unix control socket")
    parser.add_argument("--public-address", default="11.22.33.2", help="the public address to report")
    parser.add_argument("--lifetime-cap", type=int, default=86400, help="longest lifetime granted, seconds")
    parser.add_argument("--max-mappings", type=int, default=65536, help="table size; beyond it OUT_OF_RESOURCES")
    parser.add_argument("--unsupported-version", choices=("reply", "silent"), default="reply",
                        help="answer a nonzero version with an 8-byte result 1 reply, or stay silent like miniupnpd")
    parser.add_argument("--announce", choices=("off", "loopback", "multicast"), default="off",
                        help="announcements on start and reboot: off, to 127.0.0.1:5350, or to 224.0.0.1:5350 "
                        "(multicast only inside a network namespace other than the initial one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault injection's random numbers")
    parser.add_argument("--uptime", type=int, default=0,
                        help="epoch at start, seconds, as if up that long (PCP forgives an epoch one second back, "
                        "so a reboot of a gateway up for less than two seconds does not show)")
    parser.add_argument("--speaks", choices=SPEAKS, default="both",
                        help="protocols answered: both (default), natpmp, pcp, or drop-pcp (NAT-PMP only, PCP dropped)")
    parser.add_argument("--ready-file", help="file written once the gateway listens")
    args = parser.parse_args(argv)
    address, port = _parse_listen(args.listen)
    try:
        gateway = SimulatedGateway(address, port, args.control, args.public_address, args.lifetime_cap,
                                   args.max_mappings, args.unsupported_version, args.announce, args.seed, args.speaks,
                                   args.uptime)
        gateway.bind()
    except (OSError, ValueError) as exc:
        print(f"simgw: {exc}", file=sys.stderr)
        return 2

    def stop(_signum: int, _frame: Any) -> None:
        gateway.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"READY {address}:{port}", flush=True)
    if args.ready_file:
        with open(args.ready_file, "w", encoding="ascii") as handle:
            handle.write(f"{address}:{port}\n")
    gateway.serve()
    return 0


