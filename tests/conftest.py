"""Shared test setup: import paths, the network guard, and loopback addresses per test.

The network guard: in the pytest process, every IPv4/IPv6 destination outside loopback
(127.0.0.0/8, ::1, ::ffff:127.0.0.0/104) is refused *before* the real socket call is
made, so no test can ever send to the machine's real router or anywhere else.  It is
installed by the ``pytest_configure`` hook (so it already covers collection) and
removed by ``pytest_unconfigure``; an autouse session fixture checks that it is still
in place when the tests run.  Unix (and netlink) sockets are allowed; any other family
(raw packet sockets, ...) is refused.

Traffic inside the tests' own network namespaces runs in subprocesses started with
``ip netns exec``, which the guard does not see: those namespaces' links never reach
the root namespace.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
for _path in (REPO, MODULE_UTILS):  # module_utils ends up first
    if _path not in sys.path:
        sys.path.insert(0, _path)

GUARD_MESSAGE = "tests may only target loopback or namespaces they created"


class NetworkGuardError(AssertionError):
    """A test tried to reach a destination outside loopback."""


_ALLOWED_FAMILIES = {socket.AF_UNIX} | ({socket.AF_NETLINK} if hasattr(socket, "AF_NETLINK") else set())


def check_destination(address, family=None) -> None:
    """Raise NetworkGuardError unless ``address`` (a socket address) is on loopback.

    ``family`` is the socket's family; without it the address's shape decides (a
    tuple is an internet address, anything else a Unix socket path or abstract name).
    """
    if family in _ALLOWED_FAMILIES:
        return
    if family is not None and family not in (socket.AF_INET, socket.AF_INET6):
        raise NetworkGuardError(f"{GUARD_MESSAGE}: socket family {family!r} to {address!r} is not allowed")
    if family is None and (not isinstance(address, tuple) or not address):
        return
    if not isinstance(address, tuple) or not address:
        raise NetworkGuardError(f"{GUARD_MESSAGE}, not {address!r}")
    host = address[0]
    try:
        ip = ipaddress.ip_address(str(host).split("%", maxsplit=1)[0])
    except ValueError:
        # A host name: resolving it could itself leave the machine.
        raise NetworkGuardError(f"{GUARD_MESSAGE}, not {host!r} (use a literal loopback address)") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if not ip.is_loopback:
        raise NetworkGuardError(f"{GUARD_MESSAGE}, not {host}")


GUARDED = ("connect", "connect_ex", "sendto", "sendmsg")
# The unguarded methods; the guarded ones look them up at call time, so a test can
# replace an entry with a spy and prove that a refused call never reaches the socket.
_real = {name: getattr(socket.socket, name) for name in GUARDED}


def _guarded_connect(self, address):
    check_destination(address, self.family)
    return _real["connect"](self, address)


def _guarded_connect_ex(self, address):
    check_destination(address, self.family)
    return _real["connect_ex"](self, address)


def _guarded_sendto(self, data, *args):
    # sendto(data, address) or sendto(data, flags, address)
    if args:
        check_destination(args[-1], self.family)
    return _real["sendto"](self, data, *args)


def _guarded_sendmsg(self, buffers, *args):
    # sendmsg(buffers[, ancdata[, flags[, address]]])
    if len(args) >= 3 and args[2] is not None:
        check_destination(args[2], self.family)
    return _real["sendmsg"](self, buffers, *args)


_GUARDS = {
    "connect": _guarded_connect,
    "connect_ex": _guarded_connect_ex,
    "sendto": _guarded_sendto,
    "sendmsg": _guarded_sendmsg,
}


def install_guard() -> None:
    for name, guard in _GUARDS.items():
        setattr(socket.socket, name, guard)


def remove_guard() -> None:
    for name, real in _real.items():
        setattr(socket.socket, name, real)


def guard_installed() -> bool:
    return all(getattr(socket.socket, name) is guard for name, guard in _GUARDS.items())


def pytest_configure(config):  # pylint: disable=unused-argument
    install_guard()


def pytest_unconfigure(config):  # pylint: disable=unused-argument
    remove_guard()


@pytest.fixture(scope="session", autouse=True)
def network_guard():
    """Every test runs with the guard in place (installed at configure time)."""
    if not guard_installed():
        install_guard()
    yield
    assert guard_installed(), "a test removed the network guard"


# Loopback addresses: a distinct 127.B.x.y per test (and per extra client), never reused
# within a run. Each process has a block B of its own: pytest-xdist's workers (gw0, gw1, ...)
# blocks next to each other from their controller's process id, a run without workers one from
# its own, so that neither two workers nor two runs on one machine meet.
_counter = itertools.count()


def _block() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
        slots = max(1, 250 // count)
        return 1 + (os.getppid() % slots) * count + int(worker[2:]) % count
    return 1 + os.getpid() % 250


_BLOCK = _block()


def next_loopback() -> str:
    third, last = divmod(next(_counter), 250)
    return f"127.{_BLOCK}.{third}.{last + 2}"


@pytest.fixture
def loopback_address() -> str:
    return next_loopback()


@pytest.fixture
def loopback_address_pool():
    return next_loopback


# ---------------------------------------------------------------- skips under CI
# CI has root, network namespaces and every peer: a test skipped there hides a broken one.
# Under CI=true every skip fails the run, except those whose reason starts with
# "not applicable here:" (a condition CI legitimately lacks, said so in the test).
NOT_APPLICABLE = "not applicable here:"
_skipped_under_ci = []


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_runtest_logreport(report):
    if report.skipped and _under_ci():
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if NOT_APPLICABLE not in reason:
            _skipped_under_ci.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):  # pylint: disable=unused-argument
    if _skipped_under_ci:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # pylint: disable=unused-argument
    if _skipped_under_ci:
        terminalreporter.write_line(f"CI=true and {len(_skipped_under_ci)} test(s) skipped; CI has root, namespaces and "
                                    "every peer, so a skip there hides a broken test:", red=True)
        for line in _skipped_under_ci:
            terminalreporter.write_line(f"  SKIPPED UNDER CI {line}", red=True)
