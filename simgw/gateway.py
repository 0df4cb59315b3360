"""A simulated NAT-PMP (RFC 6886) and PCP (RFC 6887) gateway with a control channel and fault injection.

Run it from the collection's root to test playbooks without a router:

    python3 -m simgw --listen 127.0.0.5:5351 --control /tmp/gw.sock

and drive it with one JSON command per line on the control socket:

    python3 -m simgw ctl /tmp/gw.sock '{"cmd": "table"}'

This module is the gateway itself: its settings, its loop (one thread, selectors), the
datagrams in and out (with the faults applied to replies) and the announcements.  Each
protocol answers in a module of its own (natpmp.py, pcp.py), against the one table
(table.py); control.py is the control channel, faults.py the fault injection.
The collection's README (section "The simulated gateway") lists every option and control command.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._codecs import wire_natpmp as wire
from ._codecs import wire_pcp as pcp
from .control import ControlChannel, control
from .faults import Fault, Faults, malform
from .natpmp import NatPmp
from .netns import in_private_netns, refuse_multicast
from .igd import CONNECTION_STATUSES, IGD_VERSIONS, LEASE_POLICIES, Igd
from .pcp import Pcp
from .streams import unregister
from .table import EXTERNAL_PORTS, MAPPINGS_BY, PORT_RANGE, MappingTable, parse_port_range

Address = Tuple[str, int]
SPEAKS = ("both", "natpmp", "pcp", "drop-pcp", "none")

__all__ = ["SimulatedGateway", "control", "in_private_netns", "SPEAKS"]


def _choice(choices: Tuple[str, ...], message: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in choices:
            raise ValueError(message)
        return value
    return check


def _boolean(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    return check


class SimulatedGateway:  # pylint: disable=too-many-instance-attributes
    """The gateway: a selectors loop in one thread (``start``/``stop``) or the caller's (``serve``)."""

    def __init__(  # pylint: disable=too-many-arguments
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
        external_ports: str = "suggested",
        port_range: Tuple[int, int] = PORT_RANGE,
        port_seed: int = 0,
        igd: str = "off",
        http_port: int = 5000,
        ssdp: str = "unicast",
        ssdp_port: int = 1900,
        igd_service: str = "ip",
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
        self.faults = Faults(seed)
        self.table = MappingTable(external_ports, port_range, port_seed)
        self.natpmp = NatPmp(self)
        self.pcp = Pcp(self)
        self.lease_policy = "any"  # UPnP: permanent-only (725 for a lease), no-permanent (402 for lease 0),
        # permanent-only-402 (402 for a lease)
        self.secure_mode = False  # UPnP: a mapping only for the asking host (718; AddAnyPortMapping 606)
        # NAT-PMP and PCP: one mapping per internal port (RFCs 6886, 6887), or per external port as miniupnpd 2.3.1
        # keeps them (a request suggesting another port makes a second mapping; table.py, MAPPINGS_BY)
        self.mappings_by = "internal-port"
        self.connection_status = "Connected"  # UPnP: what GetStatusInfo says
        if igd not in IGD_VERSIONS:
            raise ValueError(f"igd must be one of {', '.join(IGD_VERSIONS)}, got {igd!r}")
        self.igd: Optional[Igd] = Igd(self, igd, http_port, ssdp, ssdp_port, igd_service) if igd != "off" else None
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
        self._control = ControlChannel(self, control_path) if control_path else None
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._thread: Optional[threading.Thread] = None
        if announce not in ("off", "loopback", "multicast"):
            raise ValueError(f"announce must be off, loopback or multicast, got {announce!r}")
        if announce == "multicast":
            refuse_multicast("announce", "announcements", "loopback or off")

    def settings(self) -> Dict[str, Callable[[Any], Any]]:
        """What the control command ``set`` may change: attribute names and how each value is checked."""
        return {
            "public_address": lambda value: str(ipaddress.IPv4Address(value)),
            "lifetime_cap": int,
            "max_mappings": int,
            "unsupported_version": _choice(("reply", "silent"), "unsupported_version must be reply or silent"),
            "speaks": _choice(SPEAKS, f"speaks must be one of {', '.join(SPEAKS)}"),
            "external_ports": _choice(EXTERNAL_PORTS, "external_ports must be suggested or random"),
            "port_range": lambda value: "-".join(map(str, parse_port_range(value))),
            "port_seed": int,
            "lease_policy": _choice(LEASE_POLICIES, f"lease_policy must be one of {', '.join(LEASE_POLICIES)}"),
            "secure_mode": _boolean("secure_mode"),
            "mappings_by": _choice(MAPPINGS_BY, f"mappings_by must be one of {', '.join(MAPPINGS_BY)}"),
            "connection_status": _choice(CONNECTION_STATUSES, f"connection_status must be one of {', '.join(CONNECTION_STATUSES)}"),
        }

    # The table's way of choosing external ports, as settings of the gateway.

    @property
    def external_ports(self) -> str:
        return self.table.external_ports

    @external_ports.setter
    def external_ports(self, value: str) -> None:
        self.table.external_ports = value

    @property
    def port_range(self) -> str:
        return "-".join(map(str, self.table.port_range))

    @port_range.setter
    def port_range(self, value: str) -> None:
        self.table.port_range = parse_port_range(value)

    @property
    def port_seed(self) -> int:
        return self.table.port_seed

    @port_seed.setter
    def port_seed(self, value: int) -> None:
        self.table.seed_ports(value)

    # ------------------------------------------------------------------ lifecycle

    def bind(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.address, self.port))
        self._sock.setblocking(False)
        self._selector.register(self._sock, selectors.EVENT_READ, self._on_datagram)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        if self._control is not None:
            self._control.bind(self._selector)
        if self.igd is not None:
            self.igd.bind(self._selector)
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
        if self._control is not None:
            self._control.close()
        if self.igd is not None:
            self.igd.close()
        for sock in (self._sock, self._wake_r, self._wake_w):
            if sock is not None:
                unregister(self._selector, sock)
                sock.close()
        self._selector.close()

    def _on_wake(self, sock: socket.socket) -> None:
        sock.recv(64)

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` in the loop at monotonic time ``when``."""
        self._timers.append((when, action))

    # ------------------------------------------------------------------ state

    @property
    def epoch(self) -> int:
        return int(time.monotonic() - self.started)

    def reboot(self) -> None:
        self.table.clear()
        self.started = time.monotonic()
        if self.igd is not None:
            self.igd.rebooted()
        self._announce()

    def clear_held(self) -> None:
        self._held = []

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
        self.record(entry)

    def record(self, entry: Dict[str, Any]) -> None:
        """Keep one request in the log the control command ``log`` shows."""
        if len(self.log) < self.log_limit:
            self.log.append(entry)

    def handle(self, data: bytes, client: str, entry: Dict[str, Any]) -> Optional[bytes]:
        """The reply to one request (before faults), or None for no reply."""
        self.table.expire(time.monotonic())
        version = data[0] if data else 0
        if len(data) >= 2 and data[1] < wire.RESPONSE_BIT and self.faults.take(
                "reboot", "public" if data[1] == 0 else "map", "pcp" if version >= pcp.VERSION else "natpmp"):
            entry["fault"] = "reboot"
            self.reboot()  # the gateway restarts just before it handles this request
        if self.speaks == "none":
            entry["answer"] = "dropped: neither NAT-PMP nor PCP is spoken here"
            return None
        pcp_spoken = self.speaks in ("both", "pcp")
        if version >= pcp.VERSION or (version != wire.VERSION and self.speaks == "pcp"):
            entry["method"] = "pcp"
            if self.speaks == "drop-pcp":
                entry["answer"] = "dropped: PCP is not spoken here"
                return None
            if pcp_spoken:
                return self.pcp.handle(data, client, entry)
        entry["method"] = "natpmp"
        if self.speaks == "pcp":
            if len(data) < 2 or data[1] >= wire.RESPONSE_BIT:
                entry["answer"] = "ignored: no request"
                return None
            entry.update(version=version, op=data[1])
            # RFC 6887 section 9: a PCP-only server answers NAT-PMP with UNSUPP_VERSION, in PCP's form.
            return pcp.encode_response(data[1], pcp.Result.UNSUPP_VERSION, 0, self.epoch)
        return self.natpmp.handle(data, client, entry)

    # ------------------------------------------------------------------ replies, with faults

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
            return self.faults.take(kind, None, method)

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
            self.at(time.monotonic() + float(delay.params.get("seconds", 0.5)), send_all)
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
        makers: List[Callable[[], bytes]] = []  # each send carries the epoch of its moment (RFC 6886 3.2.1)
        if self.speaks not in ("pcp", "none"):
            makers.append(self.natpmp.announcement)
        if self.speaks in ("both", "pcp"):
            makers.append(self.pcp.announcement)
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

        def sender_of(make: Callable[[], bytes]) -> Callable[[], None]:
            def send() -> None:
                self._send(destination, make(), sender)
            return send

        for _send in range(10):
            for make in makers:
                action = sender_of(make)
                self._announcing.append(action)
                self.at(at, action)
            at += wait
            wait *= 2
        self._announcing.append(self._stop_announcing)
        self.at(at, self._stop_announcing)
