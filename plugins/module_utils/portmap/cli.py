# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""portmap-natpmp: the command line on a managed host, and the renewal job's entry point.

    portmap-natpmp public
    portmap-natpmp map tcp 8080 [--external-port 8080] [--lifetime 7200]
    portmap-natpmp delete tcp 8080
    portmap-natpmp status [--json]
    portmap-natpmp renew [--now] [--on-change CMD [ARG ...]]
    portmap-natpmp nat --stun-server HOST:PORT [--json]

Exit codes: 0 success, 1 a request or renewal failed, 2 bad usage, 3 the on-change
hook failed.  Mappings made with ``map`` are recorded in the ledger, which ``renew``
keeps alive and ``status`` shows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable, List, Optional, Sequence

from . import defaults
from .errors import InputError, PortmapError

# The command starts often (the renewal job, shell loops): each subcommand imports
# only the modules it uses, inside the function that runs it.

PROG = "portmap-natpmp"
LOG_MODE = 0o644  # as the logrotate snippet creates it
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HOOK = 0, 1, 2, 3


def say(text: str, stream: Any = None) -> None:
    """A line to standard output (or ``stream``)."""
    (stream or sys.stdout).write(f"{text}\n")


class Logger:
    """One line per action: to syslog (default), stderr, or a file."""

    def __init__(self, target: str) -> None:
        self.target = target
        if target == "syslog":
            import syslog  # Unix only; imported here so the rest runs anywhere

            syslog.openlog(PROG, syslog.LOG_PID, syslog.LOG_DAEMON)
            self._syslog = syslog

    def __call__(self, line: str) -> None:
        if self.target == "syslog":
            self._syslog.syslog(self._syslog.LOG_INFO, line)
        elif self.target == "stderr":
            say(f"{PROG}: {line}", sys.stderr)
        else:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            with os.fdopen(open_log(self.target), "a", encoding="utf-8") as handle:
                handle.write(f"{stamp} {PROG}: {line}\n")


def open_log(path: str) -> int:
    """The log file for appending; a new one gets mode 0644 whatever the umask (an existing one keeps its own)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, LOG_MODE)
    except FileExistsError:
        return os.open(path, os.O_WRONLY | os.O_APPEND)
    os.fchmod(fd, LOG_MODE)
    return fd


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog=PROG,
        description="Open, renew and inspect port mappings on the NAT gateway with PCP (RFC 6887) or "
                    "NAT-PMP (RFC 6886).",
        epilog="Exit codes: 0 success, 1 a request or renewal failed, 2 bad usage, 3 the on-change hook failed.")
    main.add_argument("--gateway", help="the gateway's IPv4 address (default: the default route's router)")
    main.add_argument("--port", type=int, default=defaults.PORT, help=argparse.SUPPRESS)
    main.add_argument("--source-address", help="local address to send from (VPN, policy routing)")
    main.add_argument("--method", choices=defaults.METHODS, default=defaults.AUTO,
                      help="protocol: auto (PCP, falling back to NAT-PMP; the default), pcp, or natpmp")
    main.add_argument("--timeout", type=_seconds, default=defaults.TIMEOUT,
                      help=f"deadline of each request, seconds (default {defaults.TIMEOUT:g})")
    main.add_argument("--ledger", default=defaults.LEDGER_PATH, help=f"the ledger file (default {defaults.LEDGER_PATH})")
    main.add_argument("--lock", default=None,
                      help="the per-host lock file (default: .portmap-natpmp.lock beside the ledger); its folder must "
                      "be writable by its owner only, like the ledger's")
    sub = main.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser("public", help="print the gateway's public address, epoch and the protocols it speaks")

    mapping = sub.add_parser("map", help="create or renew a mapping and record it in the ledger")
    mapping.add_argument("protocol", choices=defaults.PROTOCOLS + ("both",))
    mapping.add_argument("internal_port", type=int)
    mapping.add_argument("--external-port", type=int, help="suggested public port (0: any; default: internal port)")
    mapping.add_argument("--lifetime", type=int, default=defaults.LIFETIME,
                         help=f"requested lifetime, seconds (default {defaults.LIFETIME})")

    delete = sub.add_parser("delete", help="delete a mapping on the gateway and from the ledger")
    delete.add_argument("protocol", choices=defaults.PROTOCOLS + ("both",))
    delete.add_argument("internal_port", type=int)

    status = sub.add_parser("status", help="the ledger's mappings, with time left and the last result")
    status.add_argument("--json", action="store_true", help="print JSON")

    renew = sub.add_parser("renew", help="renew the ledger's mappings (what the renewal job runs)")
    renew.add_argument("--now", action="store_true", help="renew every mapping now, not only those due")
    renew.add_argument("--log", default="syslog",
                       help="where to log one line per action: syslog (default), stderr, or a file path")
    renew.add_argument("--on-change", nargs=argparse.REMAINDER, metavar="CMD",
                       help="command (and arguments, no shell) run when a public endpoint changes; it gets "
                       "PORTMAP_* environment variables. Must come last.")
    nat = sub.add_parser("nat", help="classify the NAT with a STUN server (RFC 5780) and tell whether mappings "
                                     "are reachable from the Internet")
    nat.add_argument("--stun-server", required=True, metavar="HOST:PORT", help="the STUN server to ask")
    nat.add_argument("--json", action="store_true", help="print JSON")
    return main


def _nat(args: argparse.Namespace, ledger: Any, make_client: Callable[..., Any]) -> int:
    # pylint: disable=import-outside-toplevel
    import json

    from .manage import Manager
    from .reachability import nat_facts  # it loads the STUN client

    try:
        client = make_client()
    except PortmapError as exc:  # no gateway found: STUN alone
        facts = dict(nat_facts(None, args.stun_server, args.timeout, args.source_address), gateway=None,
                     public_address=None, error=str(exc))
    else:
        facts = Manager(ledger, client).info(stun_server=args.stun_server)
    if args.json:
        keys = ("gateway", "public_address", "nat", "double_nat", "reachable", "warnings")
        say(json.dumps({key: facts.get(key) for key in keys}, indent=2))
        return EXIT_OK
    nat = facts["nat"]
    say(f"NAT type: {nat['type'] or 'unknown (the STUN server does not support RFC 5780)'}")
    say(f"mapping: {nat['mapping'] or '-'}, filtering: {nat['filtering'] or '-'}")
    seen = f"{nat['address']}:{nat['port']}" if nat["address"] else "nothing (no answer)"
    say(f"STUN server {nat['server']} saw {seen} (sent from {nat['local_address']}:{nat['local_port']})")
    say(f"gateway {facts['gateway'] or '-'}: public address {facts['public_address'] or 'unknown'}; "
        f"double NAT: {_word(facts['double_nat'])}; reachable from the Internet: {_word(facts['reachable'])}")
    for warning in facts["warnings"]:
        say(f"warning: {warning}")
    return EXIT_OK


def _word(value: Optional[bool]) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


def _seconds(text: str) -> float:
    """A positive number of seconds (argparse turns the error into a usage message)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _client_factory(args: argparse.Namespace, lock: Any) -> Callable[..., Any]:
    from .client import Client  # pylint: disable=import-outside-toplevel

    def make(gateway: Optional[str] = None, epoch: Any = None) -> Any:
        return Client(gateway or args.gateway, port=args.port, timeout=args.timeout,
                      source_address=args.source_address, lock=lock, epoch=epoch, method=args.method)
    return make


def _print_mappings(rows: List[dict]) -> None:
    if not rows:
        say("no mappings in the ledger")
        return
    say(f"{'gateway':<16} {'method':<6} {'proto':<5} {'internal':>8} {'public endpoint':<22} {'time left':>10}  "
        "last result")
    for row in rows:
        last = row["last_renewal"]
        result = "-" if last is None else ("ok" if last["ok"] else f"FAILED: {last['error']}")
        endpoint = f"{row['public_address'] or '?'}:{row['external_port']}"
        left = "expired" if row["expired"] else f"{row['time_left']:.0f} s"
        say(f"{row['gateway']:<16} {row['method']:<6} {row['protocol']:<5} {row['internal_port']:>8} {endpoint:<22} "
            f"{left:>10}  {result}")


def dispatch(args: argparse.Namespace) -> int:
    """Run the subcommand ``args`` names; its exit code."""
    # pylint: disable=import-outside-toplevel
    from .ledger import Ledger
    from .lock import HostLock

    ledger = Ledger(args.ledger, HostLock(args.lock) if args.lock else None)
    if args.command == "status":
        from .manage import describe

        rows = [describe(e, time.time()) for e in ledger.load().entries]
        if args.json:
            import json

            say(json.dumps(rows, indent=2))
        else:
            _print_mappings(rows)
        return EXIT_OK
    make_client = _client_factory(args, ledger.lock)
    if args.command == "renew":
        from .renew import Renewer

        log = Logger(args.log)
        report = Renewer(ledger, make_client, log, args.on_change).run(force=args.now)
        log(f"renew: {report.renewed} renewed, {report.kept} not due, {report.failed} failed")
        if report.failed:
            return EXIT_FAILED
        return EXIT_HOOK if report.hook_failed else EXIT_OK
    from .manage import Manager, normalize

    if args.command == "public":
        facts = Manager(ledger, make_client()).info()
        if not facts["answers"]:
            raise PortmapError(facts["error"])
        say(f"public address {facts['public_address'] or 'unknown (PCP tells it with a mapping)'} "
            f"(gateway {facts['gateway']}, epoch {facts['epoch']}, speaks "
            f"{', '.join(m for m in ('pcp', 'natpmp') if facts['speaks'][m] is True)})")
        return EXIT_OK
    if args.command == "nat":
        return _nat(args, ledger, make_client)
    spec = {"internal_port": args.internal_port, "protocol": args.protocol}
    if args.command == "map":
        spec.update(external_port=args.external_port, lifetime=args.lifetime)
    desired = normalize([spec], lambda _index, name: name)
    manager = Manager(ledger, make_client())
    if args.command == "map":
        result = manager.present(desired)
        for row in result["mappings"]:
            say(f"mapped {row['protocol'].upper()} {result['public_address']}:{row['external_port']} -> "
                f"internal port {row['internal_port']} for {row['lifetime']} s")
        for warning in result["warnings"]:
            say(f"{PROG}: warning: {warning}", sys.stderr)
        return EXIT_OK
    result = manager.absent(desired)
    for row in result["removed"]:
        say(f"deleted {row['protocol'].upper()} internal port {row['internal_port']} "
            f"(was public port {row['external_port']})")
    if not result["removed"]:
        say("nothing recorded in the ledger for that port; nothing deleted")
    return EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        return dispatch(args)
    except PortmapError as exc:  # ApplyError included: what was done is in the ledger
        say(f"{PROG}: {exc}", sys.stderr)
        return EXIT_USAGE if isinstance(exc, InputError) else EXIT_FAILED
