"""The client against the simulated gateway on loopback: every operation (the faults: test_fault_matrix.py)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
import time

import pytest

from portmap import wire_natpmp as wire
from portmap import wire_pcp
from portmap.client import Client
from portmap.epoch import EpochObservation
from portmap.errors import (
    GatewayTimeout,
    GatewayUnreachable,
    NotAuthorized,
    OutOfResources,
)
from simgw import SimulatedGateway, control


@pytest.fixture
def client_port_alone():
    """The tests that listen on 127.0.0.1:5350 (where every announcement to loopback goes) take turns,
    across pytest-xdist workers and across runs on this machine: two listeners there would split the
    datagrams between them, and one would hear the other's gateway."""
    path = os.path.join(tempfile.gettempdir(), f"portmap-natpmp-127.0.0.1-{wire.CLIENT_PORT}.lock")
    with open(path, "a", encoding="ascii") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-timeout ends a wait that never ends
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def client(gw, tmp_path):
    return Client(gw.address, lock_path=str(tmp_path / "lock"))


def make_client(gw, tmp_path, **kwargs):
    return Client(gw.address, lock_path=str(tmp_path / "lock"), **kwargs)


def table(gw):
    return [(m["client"], m["protocol"], m["internal_port"], m["external_port"]) for m in gw.ctl({"cmd": "table"})["mappings"]]


def test_public_address(client, gw):
    public = client.public_address()
    assert (public.address, public.gateway, public.method) == ("11.22.33.2", gw.address, "natpmp")


def test_map_renew_delete(client, gw):
    tcp = client.map("tcp", 8080, 8080, 3600)
    udp = client.map("udp", 5353, 5353, 120)
    assert (tcp.external_port, tcp.lifetime, udp.external_port, udp.lifetime) == (8080, 3600, 5353, 120)
    assert client.map("tcp", 8080, 8080, 3600).external_port == 8080
    assert len(table(gw)) == 2
    client.delete("tcp", 8080)
    assert [row[1:] for row in table(gw)] == [("udp", 5353, 5353)]
    client.delete_all("udp")
    assert table(gw) == []


def test_external_port_zero_gets_a_port(client):
    granted = client.map("tcp", 7000, 0, 600)
    assert granted.external_port >= 1024


def test_conflicting_suggestion_gets_another_port(gw, tmp_path, loopback_address_pool):
    first = make_client(gw, tmp_path, source_address=loopback_address_pool())
    second = make_client(gw, tmp_path, source_address=loopback_address_pool())
    assert first.map("tcp", 8080, 9000, 600).external_port == 9000
    other = second.map("tcp", 8080, 9000, 600).external_port
    assert other not in (0, 9000)
    assert second.map("tcp", 8080, 9000, 600).external_port == other  # renewal keeps it


def test_lifetime_cap_granted_not_asked(client, gw):
    gw.ctl({"cmd": "set", "lifetime_cap": 300})
    assert client.map("tcp", 8080, 8080, 7200).lifetime == 300


def test_table_full_is_out_of_resources(client, gw):
    gw.ctl({"cmd": "set", "max_mappings": 1})
    client.map("tcp", 1, 1, 60)
    with pytest.raises(OutOfResources, match="OUT_OF_RESOURCES"):
        client.map("tcp", 2, 2, 60)


def test_rules_refuse_with_not_authorized(client, gw):
    gw.ctl({"cmd": "rules", "rules": [{"action": "deny", "client": "0.0.0.0/0", "ports": "1-1023"}]})
    with pytest.raises(NotAuthorized) as caught:
        client.map("tcp", 22, 22, 60)
    assert "NOT_AUTHORIZED" in str(caught.value) and f"{gw.address}:5351" in str(caught.value)
    assert client.map("tcp", 2222, 2222, 60).external_port == 2222


def test_unsupported_version_reply_recognised(gw):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    sock.connect((gw.address, 5351))
    sock.send(bytes.fromhex("0100"))
    reply = wire.decode_reply(sock.recv(100))
    sock.close()
    assert wire.is_unsupported_version(reply) and reply.op == 128


@pytest.mark.parametrize("deadline", [1.0, None])
def test_silent_gateway_times_out_at_the_deadline(gw, tmp_path, deadline):
    """None: the default deadline (3 s), not the RFC's 128 s."""
    gw.ctl({"cmd": "fault", "kind": "drop"})
    client = make_client(gw, tmp_path, **({"timeout": deadline} if deadline else {}))
    expected = deadline or 3.0
    start = time.monotonic()
    with pytest.raises(GatewayTimeout):
        client.public_address()
    elapsed = time.monotonic() - start
    assert expected <= elapsed < expected + 0.3
    print(f"SILENT GATEWAY: gave up after {elapsed:.3f} s with deadline {expected:g} s, "
          f"{client.transport.sends} sends")


def test_nothing_listening_is_unreachable_fast(tmp_path, loopback_address):
    client = Client(loopback_address, lock_path=str(tmp_path / "lock"))
    start = time.monotonic()
    with pytest.raises(GatewayUnreachable):
        client.public_address()
    assert time.monotonic() - start < 0.5


def test_gateway_reboot_detected(gw, tmp_path):
    wall = [10000.0]
    client = make_client(gw, tmp_path, wallclock=lambda: wall[0])
    client.map("tcp", 8080, 8080, 3600)
    wall[0] += 600  # ten minutes pass for us...
    gw.ctl({"cmd": "reboot"})  # ...and the gateway restarts: its epoch is back near 0
    renewed = client.map("tcp", 8080, 8080, 3600)
    assert renewed.rebooted and client.rebooted


def test_reboot_detected_across_processes(gw, tmp_path):
    first = make_client(gw, tmp_path)
    first.public_address()
    stored = EpochObservation(first.epoch.epoch + 1000, first.epoch.seen_at - 1000).to_dict()
    # the stored observation says the gateway had been up 1000 s longer: it restarted since
    second = make_client(gw, tmp_path, epoch=EpochObservation.from_dict(stored))
    assert second.public_address().rebooted


def test_no_reboot_when_consistent(gw, tmp_path):
    first = make_client(gw, tmp_path)
    first.public_address()
    second = make_client(gw, tmp_path, epoch=first.epoch)
    assert not second.public_address().rebooted


@pytest.mark.parametrize("speaks, kinds", [("natpmp", {"natpmp"}), ("pcp", {"pcp"}), ("both", {"natpmp", "pcp"})])
def test_announcement_on_reboot_to_loopback(tmp_path, speaks, kinds, client_port_alone):  # pylint: disable=unused-argument
    """NAT-PMP's public address announcement and PCP's ANNOUNCE response, to 127.0.0.1:5350 only."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", wire.CLIENT_PORT))
    except OSError as exc:
        pytest.skip(f"127.0.0.1:{wire.CLIENT_PORT} is taken: {exc}")
    listener.settimeout(3)

    def kind(datagram):
        if datagram[0] == wire_pcp.VERSION:
            reply = wire_pcp.decode_reply(datagram)
            assert (reply.op, reply.result, reply.lifetime) == (wire_pcp.OP_ANNOUNCE, 0, 0)
            return "pcp", reply.epoch
        reply = wire.decode_reply(datagram)
        assert reply.public_address == "11.22.33.2"
        return "natpmp", reply.epoch

    try:
        with SimulatedGateway(address="127.0.0.1", port=0, announce="loopback", speaks=speaks,
                              control_path=str(tmp_path / "gw.sock")) as gateway:
            assert {kind(listener.recv(100))[0] for _announcement in range(len(kinds))} == kinds
            gateway.ctl({"cmd": "set", "epoch": 1000})  # as if up for a while
            listener.settimeout(0.05)
            while True:  # the first start's announcements so far
                try:
                    listener.recv(100)
                except socket.timeout:
                    break
            listener.settimeout(3)
            gateway.ctl({"cmd": "reboot"})
            after = [kind(listener.recv(100)) for _announcement in range(2 * len(kinds))]
            assert {k for k, _epoch in after} == kinds
            assert all(epoch < 5 for _k, epoch in after)  # the new start's, not the old one's repeats
    finally:
        listener.close()


def test_repeated_announcements_carry_the_epoch_of_their_moment(tmp_path, client_port_alone):  # pylint: disable=unused-argument
    """RFC 6886 3.2.1: each of the announcements (0, 0.25, 0.75, 1.75, 3.75 s ...) tells the epoch when it
    is sent; a repeat with the first one's epoch would look like a second reboot to a listening client."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", wire.CLIENT_PORT))
    except OSError as exc:
        pytest.skip(f"127.0.0.1:{wire.CLIENT_PORT} is taken: {exc}")
    listener.settimeout(6)
    try:
        with SimulatedGateway(address="127.0.0.1", port=0, announce="loopback", speaks="natpmp", uptime=1000,
                              control_path=str(tmp_path / "gw.sock")):
            epochs = [wire.decode_reply(listener.recv(100)).epoch for _announcement in range(5)]
    finally:
        listener.close()
    assert epochs[0] in (1000, 1001)
    assert epochs[-1] - epochs[0] >= 3, epochs  # the fifth is sent 3.75 s after the first


def test_multicast_announcements_refused_outside_a_namespace():
    with pytest.raises(ValueError, match="refused"):
        SimulatedGateway(address="127.0.0.1", announce="multicast")


def test_control_channel_commands(gw):
    path = gw.control_path
    assert control(path, {"cmd": "status"})["ok"]
    assert control(path, {"cmd": "set", "public_address": "11.22.33.9"})["ok"]
    assert control(path, {"cmd": "status"})["public_address"] == "11.22.33.9"
    bad = control(path, {"cmd": "nope"})
    assert not bad["ok"] and "unknown command" in bad["error"]
    bad = control(path, {"cmd": "fault", "kind": "explode"})
    assert not bad["ok"] and "fault kind" in bad["error"]
    bad = control(path, {"cmd": "set", "public_address": "not-an-ip"})
    assert not bad["ok"]
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(path)
        raw.sendall(b"{not json\n")
        assert b'"ok": false' in raw.recv(1000)
    assert control(path, {"cmd": "log"})["ok"]


def test_the_reboot_answer_counts_the_table_of_its_own_moment(gw, client):
    """A client that maps again on the reboot's announcement may do so before a second control request
    reads the table: the reboot's own answer says how many mappings the reboot left (the fleet harness's
    await-mappings relies on it)."""
    client.map("tcp", 8080, 8080, 3600)
    gw.ctl({"cmd": "set", "epoch": 1000})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        conn.settimeout(10)
        conn.connect(gw.control_path)
        conn.sendall(b'{"cmd": "reboot"}\n')
        probe.settimeout(1)
        probe.connect((gw.address, gw.port))
        epoch = 1000
        while epoch >= 1000:  # the reboot is done when the epoch is back near 0
            probe.send(b"\x00\x00")
            epoch = wire.decode_reply(probe.recv(64)).epoch
        client.map("tcp", 8080, 8080, 3600)  # made again before the reboot's answer is read
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = conn.recv(65536)
            assert chunk, "the control channel closed without an answer"
            answer += chunk
    assert len(table(gw)) == 1  # a table read now already holds the mapping made again
    assert json.loads(answer)["mappings"] == 0
