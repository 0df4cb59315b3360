"""The simulated gateway answers the recorded requests with the real gateway's bytes.

Requests and replies from ../shared/reference/wire-vectors.md (miniupnpd 2.3.1); the
epoch (bytes 4-7) is the gateway's own, the public address set to the recorded one.
"""

from __future__ import annotations

import socket

import pytest

from simgw import SimulatedGateway

VECTORS = [
    ("0000", "00800000000000050b162102"),
    ("000200001f901f9000000e10", "00820000000000051f901f9000000e10"),
    ("0001000014e914e900000078", "008100000000000514e914e900000078"),
    ("000200001f90000000000000", "00820000000000051f90000000000000"),
    ("0001000014e9000000000000", "008100000000000514e9000000000000"),
    ("0003", "008300050000000f"),
]


def exchange(sock, request_hex):
    sock.send(bytes.fromhex(request_hex))
    return sock.recv(100)


def without_epoch(data):
    return data[:4] + b"\x00\x00\x00\x00" + data[8:]


@pytest.fixture
def sock(loopback_address, tmp_path):
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock"),
                          public_address="11.22.33.2"):
        conn = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        conn.settimeout(2)
        conn.connect((loopback_address, 5351))
        yield conn
        conn.close()


def test_same_bytes_as_miniupnpd_in_order(sock):
    # In the recorded order: the map replies depend on the earlier requests' state.
    for request_hex, reply_hex in VECTORS:
        got = exchange(sock, request_hex)
        assert without_epoch(got).hex() == without_epoch(bytes.fromhex(reply_hex)).hex(), request_hex


def test_version_1_answered_with_unsupported_version(sock):
    got = exchange(sock, "0100")
    assert got.hex()[:8] == "00800001" and len(got) == 8


def test_version_1_silent_like_miniupnpd(loopback_address, tmp_path):
    with SimulatedGateway(address=loopback_address, unsupported_version="silent"):
        conn = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        conn.settimeout(0.5)
        conn.connect((loopback_address, 5351))
        try:
            conn.send(bytes.fromhex("0100"))
            with pytest.raises(socket.timeout):
                conn.recv(100)
            conn.send(bytes.fromhex("0000"))
            assert len(conn.recv(100)) == 12  # still serving
        finally:
            conn.close()


@pytest.mark.parametrize("garbage", ["", "00", "0002", "000200001f90", "0080000000000005"])
def test_malformed_requests_get_no_reply(sock, garbage):
    if garbage:
        sock.send(bytes.fromhex(garbage))
    else:
        sock.send(b"")
    sock.settimeout(0.3)
    with pytest.raises(socket.timeout):
        sock.recv(100)
