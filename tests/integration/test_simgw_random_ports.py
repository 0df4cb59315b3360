"""The simulated gateway's --external-ports random: it picks the external port itself, as VPN gateways do."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from portmap import wire_natpmp as wire
from simgw import SimulatedGateway, control

REPO = Path(__file__).resolve().parents[2]


def map_port(sock, protocol="tcp", internal=8080, suggested=8080, lifetime=60):
    sock.send(wire.encode_map_request(protocol, internal, suggested, lifetime))
    reply = wire.decode_reply(sock.recv(100))
    assert reply.result == wire.Result.SUCCESS, reply
    return reply.external_port


@pytest.fixture
def random_gw(loopback_address, tmp_path):
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock"),
                          external_ports="random", port_range=(8000, 8999), port_seed=7) as gateway:
        conn = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        conn.settimeout(2)
        conn.connect((loopback_address, 5351))
        yield gateway, conn
        conn.close()


def test_the_suggestion_is_ignored_and_a_renewal_keeps_the_port(random_gw):
    gateway, sock = random_gw
    first = map_port(sock)
    assert 8000 <= first <= 8999 and first != 8080  # the suggestion was free, and not taken
    assert map_port(sock) == first  # a renewal
    assert map_port(sock, suggested=first + 1) == first  # a renewal with another suggestion
    other = map_port(sock, "udp", 5353, 5353)
    assert 8000 <= other <= 8999 and other != 5353
    table = gateway.ctl({"cmd": "table"})["mappings"]
    assert sorted((m["protocol"], m["external_port"]) for m in table) == sorted([("tcp", first), ("udp", other)])


def test_a_reboot_forgets_the_port(random_gw):
    gateway, sock = random_gw
    before = map_port(sock)
    gateway.ctl({"cmd": "reboot"})
    after = map_port(sock)
    assert 8000 <= after <= 8999 and after != before


def test_the_seed_makes_the_ports_repeatable(loopback_address_pool):
    ports = []
    for _run in range(2):
        address = loopback_address_pool()
        with SimulatedGateway(address=address, external_ports="random", port_seed=3):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(2)
                sock.connect((address, 5351))
                ports.append([map_port(sock, "tcp", port, port) for port in (8080, 8081, 8082)])
    assert ports[0] == ports[1]
    assert ports[0] != [8080, 8081, 8082]


def test_set_switches_the_mode_at_run_time(gw):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.connect((gw.address, 5351))
        assert map_port(sock, internal=8080, suggested=8080) == 8080
        gw.ctl({"cmd": "set", "external_ports": "random", "port_range": "30000-30009", "port_seed": 1})
        status = gw.ctl({"cmd": "status"})
        assert (status["external_ports"], status["port_range"], status["port_seed"]) == ("random", "30000-30009", 1)
        assert 30000 <= map_port(sock, internal=9090, suggested=9090) <= 30009
        assert map_port(sock, internal=8080, suggested=8080) == 8080  # made before: renewed, kept
        bad = control(gw.control_path, {"cmd": "set", "external_ports": "sometimes"})
        assert not bad["ok"] and "suggested or random" in bad["error"]
        gw.ctl({"cmd": "set", "external_ports": "suggested"})
        assert map_port(sock, internal=7070, suggested=30005) == 30005


def test_command_line_options():
    result = subprocess.run([sys.executable, "-m", "simgw", "--external-ports", "random", "--port-range", "9-1"],
                            cwd=str(REPO), capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and "port range must be LOW-HIGH" in result.stderr
