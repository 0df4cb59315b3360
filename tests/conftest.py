"""Shared test setup: import paths, the network guard, and loopback addresses per test.

The network guard: in the pytest process, every IPv4/IPv6 destination outside loopback
is refused before the socket call is made, so no test can ever send to the machine's
real router or anywhere else. Traffic inside the tests' own network namespaces runs in
subprocesses started with ``ip netns exec``, in namespaces whose links never reach the
root namespace.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (os.path.join(REPO, "plugins", "module_utils"), REPO):
    if path not in sys.path:
        sys.path.insert(0, path)


class NetworkGuardError(AssertionError):
    pass


def check_destination(address) -> None:
    """Raise unless ``address`` (a socket address tuple) is on loopback."""
    if not isinstance(address, tuple) or not address:
        return  # Unix sockets: paths or abstract names
    host = address[0]
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        raise NetworkGuardError(f"tests may only target loopback or namespaces they created, not {host!r}") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if not ip.is_loopback:
        raise NetworkGuardError(f"tests may only target loopback or namespaces they created, not {host}")


_real = {name: getattr(socket.socket, name) for name in ("connect", "connect_ex", "sendto", "sendmsg")}


def _guarded_connect(self, address):
    check_destination(address)
    return _real["connect"](self, address)


def _guarded_connect_ex(self, address):
    check_destination(address)
    return _real["connect_ex"](self, address)


def _guarded_sendto(self, data, *args):
    check_destination(args[-1])
    return _real["sendto"](self, data, *args)


def _guarded_sendmsg(self, buffers, ancdata=(), flags=0, address=None):
    if address is not None:
        check_destination(address)
        return _real["sendmsg"](self, buffers, ancdata, flags, address)
    return _real["sendmsg"](self, buffers, ancdata, flags)


socket.socket.connect = _guarded_connect
socket.socket.connect_ex = _guarded_connect_ex
socket.socket.sendto = _guarded_sendto
socket.socket.sendmsg = _guarded_sendmsg


# Loopback addresses: a distinct 127.0.0.N per test (and per extra client), never reused
# within a run; N depends on the process id so that two runs on one machine do not meet.
_counter = itertools.count()
_BASE = 10 + (os.getpid() % 20) * 10


def next_loopback() -> str:
    n = next(_counter)
    second, last = divmod(_BASE + n, 250)
    return f"127.0.{second}.{last + 2}"


@pytest.fixture
def loopback_address() -> str:
    return next_loopback()


@pytest.fixture
def loopback_address_pool():
    return next_loopback
