"""``python3 -m simgw``: run the simulated gateway; ``python3 -m simgw ctl SOCKET JSON...``: drive one."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
from typing import Any, List, Optional, Tuple

from ._codecs import wire_natpmp as wire
from .control import control
from .gateway import SPEAKS, SimulatedGateway
from .igd import IGD_SERVICES, IGD_VERSIONS, LEASE_POLICIES, parse_services
from .ssdp import SSDP_MODES
from .table import EXTERNAL_PORTS, parse_port_range


def _parse_listen(value: str) -> Tuple[str, int]:
    """ADDRESS, ADDRESS:PORT or :PORT; the address defaults to 127.0.0.1, the port to 5351."""
    host, colon, port = value.rpartition(":")
    if not colon:
        host, port = value, ""
    try:
        socket.inet_aton(host or "127.0.0.1")
        number = int(port or wire.SERVER_PORT)
    except (OSError, ValueError):
        number = -1
    if not 0 < number < 65536 or (host and host.count(".") != 3):
        raise argparse.ArgumentTypeError(f"{value!r} is not ADDRESS, ADDRESS:PORT or :PORT "
                                         "(an IPv4 address, a port 1-65535)")
    return host or "127.0.0.1", number


def _port_range(value: str) -> Tuple[int, int]:
    try:
        return parse_port_range(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _services(value: str) -> str:
    try:
        parse_services(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


def ctl(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m simgw ctl", description="Send control commands to a running simulated gateway.")
    parser.add_argument("control", help="path of the gateway's control socket")
    parser.add_argument("commands", nargs="+", help="JSON commands, e.g. '{\"cmd\": \"table\"}'")
    args = parser.parse_args(argv)
    status = 0
    for text in args.commands:
        answer = control(args.control, json.loads(text))
        print(json.dumps(answer))
        status |= 0 if answer.get("ok") else 1
    return status


def parser_of() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m simgw",
        description="Simulated NAT-PMP (RFC 6886) and PCP (RFC 6887) gateway with a JSON control channel and "
        "fault injection. "
        "Use 'python3 -m simgw ctl SOCKET JSON...' to send control commands.")
    parser.add_argument("--listen", default=("127.0.0.1", wire.SERVER_PORT), type=_parse_listen,
                        help="ADDRESS[:PORT] to serve (default 127.0.0.1:5351)")
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
                        help="protocols answered: both (default), natpmp, pcp, drop-pcp (NAT-PMP only, PCP dropped), "
                        "or none (NAT-PMP and PCP dropped: an IGD-only router with --igd)")
    parser.add_argument("--igd", choices=IGD_VERSIONS, default="off",
                        help="UPnP IGD too: off (default), v1 or v2 (InternetGatewayDevice:1 or :2), on the same table")
    parser.add_argument("--igd-service", type=_services, default="ip", metavar="KIND[=STATUS],...",
                        help="the IGD's WAN connection services, in order, each one of " + ", ".join(IGD_SERVICES)
                        + " (ip: WANIPConnection, default; ppp: WANPPPConnection:1; tr064-: the same under the DSL "
                        "Forum's TR-064 name urn:dslforum-org:service:...:1), with its own connection status after = "
                        "(e.g. ppp=Disconnected,ip: two uplinks, the first down); a status left out follows the "
                        "gateway's connection_status")
    parser.add_argument("--lease-policy", choices=LEASE_POLICIES, default="any",
                        help="UPnP leases: any (default), permanent-only (725 to a lease other than 0), no-permanent "
                        "(402 to lease 0), permanent-only-402 (402 InvalidArgs to a lease other than 0, as some "
                        "devices answer)")
    parser.add_argument("--http-port", type=int, default=5000, help="port of the IGD's description and control (default 5000)")
    parser.add_argument("--ssdp", choices=SSDP_MODES, default="unicast",
                        help="the IGD's SSDP responder: unicast (M-SEARCH sent to the --listen address, default), "
                        "multicast (also on the group 239.255.255.250; only inside a network namespace of its own), or off")
    parser.add_argument("--ssdp-port", type=int, default=1900, help="port of the SSDP responder (default 1900)")
    parser.add_argument("--external-ports", choices=EXTERNAL_PORTS, default="suggested",
                        help="external port of a new mapping: the suggested one (or the next free one), or random "
                        "(a free port drawn from --port-range whatever was suggested, as VPN providers' gateways do; "
                        "a renewal keeps its port, a reboot forgets it)")
    parser.add_argument("--port-range", type=_port_range, default="1024-65535",
                        help="LOW-HIGH, the external ports handed out (default 1024-65535)")
    parser.add_argument("--port-seed", type=int, default=0, help="seed of the random external ports")
    parser.add_argument("--ready-file", help="file written once the gateway listens")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ctl"]:
        return ctl(argv[1:])
    args = parser_of().parse_args(argv)
    address, port = args.listen
    try:
        gateway = SimulatedGateway(address, port, args.control, args.public_address, args.lifetime_cap,
                                   args.max_mappings, args.unsupported_version, args.announce, args.seed, args.speaks,
                                   args.uptime, args.external_ports, args.port_range, args.port_seed, args.igd, args.http_port,
                                   args.ssdp, args.ssdp_port, args.igd_service)
        gateway.lease_policy = args.lease_policy
        gateway.bind()
    except (OSError, ValueError) as exc:
        print(f"simgw: {exc}", file=sys.stderr)
        return 2

    def stop(_signum: int, _frame: Any) -> None:
        gateway.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"READY {address}:{port}" + (f" IGD {gateway.igd.location()}" if gateway.igd else ""), flush=True)
    if args.ready_file:
        with open(args.ready_file, "w", encoding="ascii") as handle:
            handle.write(f"{address}:{port}\n")
    gateway.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
