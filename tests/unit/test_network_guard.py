"""The guard in tests/conftest.py refuses any destination outside loopback, before sending."""

from __future__ import annotations

import socket

import pytest

from tests import conftest
from tests.conftest import GUARD_MESSAGE, NetworkGuardError


@pytest.fixture
def spies(monkeypatch):
    """Replace the real socket calls behind the guard: any call that gets through is recorded
    (and not made), so a refused call is proven never to have reached the socket."""
    calls = []
    for name in conftest.GUARDED:
        monkeypatch.setitem(conftest._real, name,
                            lambda sock, *args, _name=name: calls.append((_name, args)) or 0)
    return calls


def test_guard_is_installed():
    assert conftest.guard_installed()
    for name in conftest.GUARDED:
        assert getattr(socket.socket, name) is not conftest._real[name]


@pytest.mark.parametrize("address", ["192.168.1.1", "8.8.8.8", "10.0.0.1", "11.22.33.2", "0.0.0.0",
                                     "224.0.0.1", "255.255.255.255"])
def test_ipv4_outside_loopback_refused_before_the_real_call(address, spies):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(NetworkGuardError, match=GUARD_MESSAGE) as caught:
            sock.sendto(b"\x00\x00", (address, 5351))
        assert address in str(caught.value)
        with pytest.raises(NetworkGuardError, match=address.replace(".", r"\.")):
            sock.sendto(b"\x00\x00", 0, (address, 5351))
        with pytest.raises(NetworkGuardError, match=address.replace(".", r"\.")):
            sock.connect((address, 5351))
        with pytest.raises(NetworkGuardError, match=address.replace(".", r"\.")):
            sock.connect_ex((address, 5351))
        with pytest.raises(NetworkGuardError, match=address.replace(".", r"\.")):
            sock.sendmsg([b"\x00\x00"], [], 0, (address, 5351))
    finally:
        sock.close()
    assert spies == []  # the check happened before any real call: nothing was sent


def test_spies_see_calls_that_pass(spies):
    """The spies do record what gets through, so the empty list above means something."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.sendto(b"x", ("127.0.0.1", 9))
        sock.connect(("127.0.0.1", 9))
        sock.sendmsg([b"x"])
    finally:
        sock.close()
    assert [name for name, _args in spies] == ["sendto", "connect", "sendmsg"]


@pytest.mark.parametrize("address", ["2001:db8::1", "fe80::1%1", "::ffff:192.168.1.1", "::", "ff02::1"])
def test_ipv6_outside_loopback_refused(address, spies):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 sockets")
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        with pytest.raises(NetworkGuardError, match=GUARD_MESSAGE):
            sock.sendto(b"x", (address, 5351, 0, 0))
        with pytest.raises(NetworkGuardError, match=GUARD_MESSAGE):
            sock.connect((address, 5351))
    finally:
        sock.close()
    assert spies == []


def test_host_names_refused_without_resolving(spies):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(NetworkGuardError, match="router.example"):
            sock.sendto(b"x", ("router.example", 5351))
    finally:
        sock.close()
    assert spies == []


def test_tcp_connect_refused(spies):
    sock = socket.socket()
    try:
        with pytest.raises(NetworkGuardError, match=r"192\.168\.77\.1"):
            sock.connect(("192.168.77.1", 80))
        with pytest.raises(NetworkGuardError, match=r"192\.168\.77\.1"):
            sock.connect_ex(("192.168.77.1", 80))
    finally:
        sock.close()
    assert spies == []


def test_loopback_allowed_for_real(loopback_address):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind((loopback_address, 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.sendto(b"ping", receiver.getsockname())
        sender.sendto(b"pong", ("127.0.0.1", 9))  # nothing listens; allowed all the same
        receiver.settimeout(1)
        assert receiver.recv(10) == b"ping"
        sender.connect(receiver.getsockname())
        sender.send(b"again")
        assert receiver.recv(10) == b"again"
    finally:
        sender.close()
        receiver.close()


def test_ipv6_loopback_allowed():
    try:
        receiver = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        receiver.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    sender = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sender.sendto(b"ping6", receiver.getsockname())
        receiver.settimeout(1)
        assert receiver.recv(10) == b"ping6"
    finally:
        sender.close()
        receiver.close()


def test_unix_sockets_allowed(tmp_path):
    path = str(tmp_path / "s")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sender.sendto(b"unix", path)
        sender.connect(path)
        sender.send(b"again")
        receiver.settimeout(1)
        assert receiver.recv(10) == b"unix"
        assert receiver.recv(10) == b"again"
    finally:
        sender.close()
        receiver.close()


def test_check_destination_directly():
    conftest.check_destination(("127.9.8.7", 1), socket.AF_INET)
    conftest.check_destination(("::1", 1, 0, 0), socket.AF_INET6)
    conftest.check_destination(("::ffff:127.0.0.1", 1, 0, 0), socket.AF_INET6)
    conftest.check_destination("/run/x.sock", socket.AF_UNIX)
    for address, family in [(("128.0.0.1", 1), socket.AF_INET), (("126.255.255.255", 1), socket.AF_INET),
                            (("::2", 1, 0, 0), socket.AF_INET6)]:
        with pytest.raises(NetworkGuardError, match=address[0].replace(".", r"\.")):
            conftest.check_destination(address, family)
