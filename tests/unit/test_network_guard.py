"""The guard in tests/conftest.py refuses any destination outside loopback, before sending."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import NetworkGuardError


@pytest.mark.parametrize("address", ["192.168.1.1", "8.8.8.8", "10.0.0.1", "11.22.33.2"])
def test_udp_to_non_loopback_refused(address):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(NetworkGuardError, match=address):
            sock.sendto(b"\x00\x00", (address, 5351))
        with pytest.raises(NetworkGuardError, match=address):
            sock.connect((address, 5351))
        with pytest.raises(NetworkGuardError):
            sock.sendmsg([b"\x00\x00"], [], 0, (address, 5351))
    finally:
        sock.close()


def test_tcp_connect_ex_refused():
    sock = socket.socket()
    try:
        with pytest.raises(NetworkGuardError):
            sock.connect_ex(("192.168.77.1", 80))
    finally:
        sock.close()


def test_ipv6_non_loopback_refused():
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        with pytest.raises(NetworkGuardError):
            sock.sendto(b"x", ("2001:db8::1", 5351))
    finally:
        sock.close()


def test_loopback_allowed(loopback_address):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind((loopback_address, 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.sendto(b"ping", receiver.getsockname())
        receiver.settimeout(1)
        assert receiver.recv(10) == b"ping"
    finally:
        sender.close()
        receiver.close()
