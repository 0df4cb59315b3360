# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""portmap-natpmp: the command line on a managed host, and the renewal job's entry point.

    portmap-natpmp public
    portmap-natpmp table [--json]
    portmap-natpmp map tcp 8080 [--external-port 8080] [--lifetime 7200]
    portmap-natpmp delete tcp 8080
    portmap-natpmp status [--json]
    portmap-natpmp renew [--now] [--on-change CMD [ARG ...]]
    portmap-natpmp watch [--log FILE] [--upnp-check 60] [--on-change CMD [ARG ...]]
    portmap-natpmp nat --stun-server HOST:PORT [--json]

Exit codes: 0 success, 1 a request or renewal failed, 2 bad usage, 3 the on-change
hook failed.  Mappings made with ``map`` are recorded in the ledger, which ``renew``
keeps alive and ``status`` shows.
"""

from __future__ import annotations

import os
import sys
import time

from . import defaults
from .errors import InputError, PortmapError

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, Dict, List, Optional, Sequence

# The command starts often (the renewal job, shell loops): each subcommand imports
# only the modules it uses, inside the function that runs it.

PROG = "portmap-natpmp"
LOG_MODE = 0o644  # as the logrotate snippet creates it
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HOOK = 0, 1, 2, 3
HIDDEN, REST = "==SUPPRESS==", "..."  # argparse.SUPPRESS and argparse.REMAINDER without importing argparse


def say(text: str, stream: Any = None) -> None:
    """A line to standard output (or ``stream``)."""
    (stream or sys.stdout).write(f"{text}\n")


class Logger:
    """One line per action: to syslog (default), stderr, or a file.

    A file is opened for each line, unless ``keep_open`` (the watch): then it stays open, and
    after ``reopen()`` (SIGHUP, when logrotate moved it) the next line opens it at its path anew.
    """

    def __init__(self, target: str, keep_open: bool = False) -> None:
        self.target = target
        self.keep_open = keep_open
        self._handle: Any = None
        self._reopen = False
        if target == "syslog":
            import syslog  # Unix only; imported here so the rest runs anywhere

            syslog.openlog(PROG, syslog.LOG_PID, syslog.LOG_DAEMON)
            self._syslog = syslog

    def __call__(self, line: str) -> None:
        if self.target == "syslog":
            self._syslog.syslog(self._syslog.LOG_INFO, line)
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        if self.target == "stderr":
            say(f"{stamp} {PROG}: {line}", sys.stderr)
        else:
            if not self.keep_open:
                with os.fdopen(open_log(self.target), "a", encoding="utf-8") as handle:
                    handle.write(f"{stamp} {PROG}: {line}\n")
                return
            if self._reopen:
                self._reopen = False
                self.close()
            if self._handle is None:
                self._handle = os.fdopen(open_log(self.target), "a", encoding="utf-8")
            self._handle.write(f"{stamp} {PROG}: {line}\n")
            self._handle.flush()

    def reopen(self) -> None:
        """The next line opens the log file at its path again (logrotate moved it); safe in a signal handler."""
        self._reopen = True

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


def open_log(path: str) -> int:
    """The log file for appending; a new one gets mode 0644 whatever the umask (an existing one keeps its own)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, LOG_MODE)
    except FileExistsError:
        return os.open(path, os.O_WRONLY | os.O_APPEND)
    os.fchmod(fd, LOG_MODE)
    return fd


class Opt:
    """One option or positional argument of the command line, as ``argparse.add_argument`` takes it."""

    __slots__ = ("flags", "dest", "kwargs")

    def __init__(self, *flags: str, **kwargs: Any) -> None:
        self.flags = flags
        self.dest = kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")
        self.kwargs = kwargs

    @property
    def positional(self) -> bool:
        return not self.flags[0].startswith("-")

    @property
    def switch(self) -> bool:
        return self.kwargs.get("action") == "store_true"

    @property
    def rest(self) -> bool:
        return self.kwargs.get("nargs") == REST

    def default(self) -> Any:
        return False if self.switch else self.kwargs.get("default")

    def convert(self, text: str) -> Any:
        """The value as argparse makes it; ValueError (and its kin) when argparse would refuse it."""
        value = self.kwargs.get("type", str)(text)
        if "choices" in self.kwargs and value not in self.kwargs["choices"]:
            raise ValueError(text)
        return value


def _seconds(text: str) -> float:
    """A positive number of seconds (argparse turns the ValueError into a usage message naming the option)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ValueError(f"must be a positive number of seconds, got {text!r}")
    return value


# The command line, declared once: ``parser()`` builds argparse from it (help, usage errors,
# abbreviations), ``parse()`` reads well-formed command lines with it without importing argparse.
GLOBAL = (
    Opt("--gateway", help="the gateway's IPv4 address (default: the default route's router)"),
    Opt("--port", type=int, default=defaults.PORT, help=HIDDEN),
    Opt("--source-address", help="local address to send from (VPN, policy routing)"),
    Opt("--method", choices=defaults.METHODS, default=defaults.AUTO,
        help="protocol: auto (PCP, NAT-PMP and UPnP IGD asked at once, the first of them the gateway speaks; "
        "the default), pcp, natpmp, or upnp"),
    Opt("--upnp-url", help="UPnP IGD: the IGD's description URL (default: found by SSDP, or kept in the ledger)"),
    Opt("--description", help="UPnP IGD: the mappings' description (default: portmap.natpmp and the host name)"),
    Opt("--timeout", type=_seconds, default=defaults.TIMEOUT,
        help=f"deadline of each request, seconds (default {defaults.TIMEOUT:g})"),
    Opt("--ledger", default=None, help=f"the ledger file (default {defaults.LEDGER_PATH}; its folder is made by map "
        "and delete, and read as no ledger while it does not exist)"),
    Opt("--lock", default=None, help="the per-host lock file (default: .portmap-natpmp.lock beside the ledger); its "
        "folder must be writable by its owner only, like the ledger's"),
)
_PORT_PROTOCOLS = defaults.PROTOCOLS + ("both",)
_ON_CHANGE = Opt("--on-change", nargs=REST, metavar="CMD",
                 help="command (and arguments, no shell) run when a public endpoint changes; it gets PORTMAP_* "
                 "environment variables. Must come last.")
_WATCH = ("keep the ledger's mappings alive as a service: renew each at its RFC point, restore them when the gateway "
          "announces a restart (NAT-PMP, PCP, UPnP IGD NOTIFY), re-read the ledger when it changes")
COMMANDS = {
    "public": ("print the gateway's public address, epoch and the protocols it speaks", ()),
    "table": ("print the gateway's own table of mappings, every host's (UPnP IGD; NAT-PMP and PCP cannot list)", (
        Opt("--json", action="store_true", help="print JSON"),
    )),
    "map": ("create or renew a mapping and record it in the ledger", (
        Opt("protocol", choices=_PORT_PROTOCOLS),
        Opt("internal_port", type=int),
        Opt("--external-port", type=int, help="suggested public port (0: any; default: internal port)"),
        Opt("--lifetime", type=int, default=defaults.LIFETIME,
            help=f"requested lifetime, seconds (default {defaults.LIFETIME})"),
    )),
    "delete": ("delete a mapping on the gateway and from the ledger", (
        Opt("protocol", choices=_PORT_PROTOCOLS),
        Opt("internal_port", type=int),
    )),
    "status": ("the ledger's mappings, with time left and the last result", (
        Opt("--json", action="store_true", help="print JSON"),
    )),
    "renew": ("renew the ledger's mappings (what the renewal job runs)", (
        Opt("--now", action="store_true", help="renew every mapping now, not only those due"),
        Opt("--log", default="syslog", help="where to log one line per action: syslog (default), stderr, or a file path"),
        _ON_CHANGE,
    )),
    "watch": (_WATCH, (
        Opt("--log", default="syslog", help="where to log one line per action: syslog (default), stderr, or a file "
            "path (kept open; SIGHUP reopens it)"),
        Opt("--upnp-check", type=_seconds, default=60.0,
            help="UPnP IGD gateways: seconds between looks at their uptime and table, for gateways that announce "
            "no restart (default 60)"),
        Opt("--seed", type=int, help=HIDDEN),
        _ON_CHANGE,
    )),
    "nat": ("classify the NAT with a STUN server (RFC 5780) and tell whether mappings are reachable from the Internet", (
        Opt("--stun-server", required=True, metavar="HOST:PORT", help="the STUN server to ask"),
        Opt("--json", action="store_true", help="print JSON"),
    )),
}


def parser() -> Any:
    """The argparse parser of the command line (help and usage errors)."""
    import argparse  # pylint: disable=import-outside-toplevel

    def add(target: Any, opt: Opt) -> None:
        kwargs = dict(opt.kwargs)
        if kwargs.get("help") == HIDDEN:
            kwargs["help"] = argparse.SUPPRESS  # compared by identity
        if kwargs.get("type") not in (None, int, str):
            kwargs["type"] = _usage_type(kwargs["type"], argparse.ArgumentTypeError)
        target.add_argument(*opt.flags, **kwargs)

    main = argparse.ArgumentParser(
        prog=PROG,
        description="Open, renew and inspect port mappings on the NAT gateway with PCP (RFC 6887), "
                    "NAT-PMP (RFC 6886) or UPnP IGD.",
        epilog="Exit codes: 0 success, 1 a request or renewal failed, 2 bad usage, 3 the on-change hook failed.")
    for opt in GLOBAL:
        add(main, opt)
    sub = main.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (text, opts) in COMMANDS.items():
        command = sub.add_parser(name, help=text)
        for opt in opts:
            add(command, opt)
    return main


def _usage_type(convert: Callable[[str], Any], error: type) -> Callable[[str], Any]:
    """``convert`` with its ValueError's own message in argparse's usage error."""
    def wrapped(text: str) -> Any:
        try:
            return convert(text)
        except ValueError as exc:
            raise error(str(exc)) from exc
    return wrapped


class Args:
    """The parsed command line: one attribute per option (what ``argparse.Namespace`` holds)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def _read(opts: Sequence[Opt], argv: List[str], index: int, texts: dict, stop_at_word: bool) -> Optional[int]:
    """Read options (and, unless ``stop_at_word``, positionals) from ``argv[index:]`` into ``texts``.

    Returns where it stopped, or None when the command line is anything but plain (help, an
    abbreviation, a value that starts with a dash, a word too many or too few): argparse reads it then.
    """
    by_flag = {flag: opt for opt in opts if not opt.positional for flag in opt.flags}
    positionals = [opt for opt in opts if opt.positional]
    while index < len(argv):
        word = argv[index]
        if not word.startswith("-"):
            if stop_at_word:
                return index
            if not positionals:
                return None
            texts[positionals.pop(0).dest] = word
            index += 1
            continue
        flag, equals, inline = word.partition("=")
        opt = by_flag.get(flag)
        if opt is None or (equals and (opt.rest or opt.switch)):
            return None
        if opt.rest:
            texts[opt.dest] = argv[index + 1:]
            return len(argv)
        if opt.switch:
            texts[opt.dest] = True
            index += 1
        elif equals:
            texts[opt.dest] = inline
            index += 1
        elif index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            texts[opt.dest] = argv[index + 1]
            index += 2
        else:
            return None
    return None if positionals or stop_at_word else index


def _plain(argv: List[str]) -> Optional[Args]:
    """The command line read without argparse, or None when argparse must read it."""
    texts: dict = {}
    index = _read(GLOBAL, argv, 0, texts, stop_at_word=True)
    if index is None or argv[index] not in COMMANDS:
        return None
    opts = GLOBAL + COMMANDS[argv[index]][1]
    if _read(opts[len(GLOBAL):], argv, index + 1, texts, stop_at_word=False) is None:
        return None
    values = {"command": argv[index]}
    for opt in opts:
        if opt.dest not in texts:
            if opt.kwargs.get("required"):
                return None
            values[opt.dest] = opt.default()
        elif opt.switch or opt.rest:
            values[opt.dest] = texts[opt.dest]
        else:
            try:
                values[opt.dest] = opt.convert(texts[opt.dest])
            except (TypeError, ValueError, ArithmeticError):
                return None  # argparse says what is wrong
    return Args(**values)


def parse(argv: Sequence[str]) -> Args:
    """The parsed command line; argparse (imported only then) for help, usage errors and anything unusual."""
    words = list(argv)
    return _plain(words) or Args(**vars(parser().parse_args(words)))


def _nat(args: Args, ledger: Any, make_client: Callable[..., Any]) -> int:
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


def _table(args: Args, facts: Dict[str, Any]) -> int:
    """The gateway's own table (UPnP IGD lists it; NAT-PMP and PCP cannot, which is said plainly)."""
    table = facts.get("gateway_table")
    if not facts["answers"]:
        raise PortmapError(facts["error"])
    if args.json:
        import json  # pylint: disable=import-outside-toplevel

        say(json.dumps(dict(table, gateway=facts["gateway"], method=facts["method"]), indent=2))
        return EXIT_OK if table["listed"] else EXIT_FAILED
    if not table["listed"]:
        say(f"{PROG}: the table of gateway {facts['gateway']} cannot be listed: {table['why']}; "
            f"'{PROG} status' shows this host's mappings, from the ledger", sys.stderr)
        return EXIT_FAILED
    rows = table["mappings"]
    say(f"{len(rows)} mapping(s) on gateway {facts['gateway']} (UPnP IGD){'; the list was cut' if table['cut'] else ''}")
    if rows:
        say(f"{'proto':<5} {'external':>8} {'internal client':<22} {'lease left':>10}  description")
    for row in rows:
        left = "permanent" if not row["lease_left"] else f"{row['lease_left']} s"
        mark = " (this host)" if row["this_host"] else ""
        say(f"{row['protocol']:<5} {row['external_port']:>8} {row['internal_client'] + ':' + str(row['internal_port']):<22} "
            f"{left:>10}  {row['description']}{mark}")
    return EXIT_OK


def _word(value: Optional[bool]) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


def _client_factory(args: Args, lock: Any) -> Callable[..., Any]:
    from .client import Client  # pylint: disable=import-outside-toplevel

    def make(gateway: Optional[str] = None, epoch: Any = None) -> Any:
        return Client(gateway or args.gateway, port=args.port, timeout=args.timeout,
                      source_address=args.source_address, lock=lock, epoch=epoch, method=args.method,
                      upnp_url=_url_on(args.upnp_url, gateway),
                      description=args.description)
    return make


def _url_on(url: Optional[str], gateway: Optional[str]) -> Optional[str]:
    """``--upnp-url`` for a client of ``gateway`` (the renewal job's come from the ledger): only when it is on it."""
    if not url or not gateway:
        return url
    return url if url.startswith((f"http://{gateway}:", f"http://{gateway}/")) else None


def _watch(args: Args, ledger: Any, make_client: Callable[..., Any]) -> int:
    """Run the watch until SIGTERM (or SIGINT); SIGHUP reopens the log file."""
    # pylint: disable=import-outside-toplevel
    import random
    import signal

    from .watch import Watcher

    log = Logger(args.log, keep_open=True)
    watcher = Watcher(ledger, make_client, log, args.on_change, source_address=args.source_address,
                      upnp_check=args.upnp_check, rng=random.Random(args.seed))

    def stop(_signum: int, _frame: Any) -> None:
        watcher.stop()

    def reopen(_signum: int, _frame: Any) -> None:
        log.reopen()
        watcher.wake()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reopen)
    try:
        return watcher.run()
    finally:
        log.close()


def _print_mappings(path: str, rows: List[dict]) -> None:
    if not rows:
        say(f"ledger {path}{'' if os.path.exists(path) else ' (not made yet)'}: no mappings in the ledger")
        return
    say(f"ledger {path}: {len(rows)} mapping(s)")
    say(f"{'gateway':<16} {'method':<6} {'proto':<5} {'internal':>8} {'public endpoint':<22} {'time left':>10}  "
        "last result")
    for row in rows:
        last = row["last_renewal"]
        result = "-" if last is None else ("ok" if last["ok"] else f"FAILED: {last['error']}")
        endpoint = f"{row['public_address'] or '?'}:{row['external_port']}"
        left = "permanent" if row.get("permanent") else "expired" if row["expired"] else f"{row['time_left']:.0f} s"
        say(f"{row['gateway']:<16} {row['method']:<6} {row['protocol']:<5} {row['internal_port']:>8} {endpoint:<22} "
            f"{left:>10}  {result}")


def dispatch(args: Args) -> int:
    """Run the subcommand ``args`` names; its exit code."""
    # pylint: disable=import-outside-toplevel
    from .ledger import open_ledger

    # map and delete make the default ledger's folder, as the modules do; the others only read it
    ledger = open_ledger(args.ledger, create_folder=args.command in ("map", "delete"), lock_path=args.lock)
    if args.command == "status":
        from .manage import returned

        rows = [returned(e, time.time()) for e in ledger.load().entries]
        if args.json:
            import json

            say(json.dumps(rows, indent=2))
        else:
            _print_mappings(ledger.path, rows)
        return EXIT_OK
    make_client = _client_factory(args, ledger.lock)
    if args.command == "renew":
        from .renew import Renewer

        log = Logger(args.log)
        if not os.path.isdir(ledger.folder):  # the default ledger, never made: nothing to renew
            log(f"renew: no ledger at {ledger.path}: nothing to renew")
            return EXIT_OK
        report = Renewer(ledger, make_client, log, args.on_change).run(force=args.now)
        log(f"renew: {report.renewed} renewed, {report.kept} not due, {report.failed} failed")
        if report.failed:
            return EXIT_FAILED
        return EXIT_HOOK if report.hook_failed else EXIT_OK
    if args.command == "watch":
        return _watch(args, ledger, make_client)
    from .manage import Manager, normalize

    if args.command == "public":  # every protocol heard out briefly (detect.BRIEF after the choice)
        facts = Manager(ledger, make_client()).info(table=False, brief=True)
        if not facts["answers"]:
            raise PortmapError(facts["error"])
        from .methods import registry as methods  # pylint: disable=import-outside-toplevel

        say(f"public address {facts['public_address'] or 'unknown (PCP tells it with a mapping)'} "
            f"(gateway {facts['gateway']}, {methods.load(facts['method']).epoch_name} {facts['epoch']}, "
            f"speaks {', '.join(m for m, outcome in facts['speaks'].items() if outcome is True)}; "
            f"using {facts['method']})")
        service = facts.get("upnp_service")
        if service:
            say(f"UPnP IGD service {service['service_type']} at {service['control_url']}: {service['why']}")
        return EXIT_OK
    if args.command == "table":
        return _table(args, Manager(ledger, make_client()).info())
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
            lease = "permanently (until deleted)" if row.get("permanent") else f"for {row['lifetime']} s"
            say(f"mapped {row['protocol'].upper()} {result['public_address']}:{row['external_port']} -> "
                f"internal port {row['internal_port']} {lease} ({result['method']})")
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
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        return dispatch(args)
    except PortmapError as exc:  # ApplyError included: what was done is in the ledger
        say(f"{PROG}: {exc}", sys.stderr)
        return EXIT_USAGE if isinstance(exc, InputError) else EXIT_FAILED
