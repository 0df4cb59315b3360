"""Our client against the real miniupnpd, in sealed namespaces: the mapping really forwards."""

from __future__ import annotations

import json
import sys
import textwrap
import time

import pytest

from tests.harness.interop import LISTENER, client_script, wan_connect

pytestmark = pytest.mark.netns


def run_client(topology, body):
    result = topology.run(topology.hosts[0], client_script(body))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_map_forwards_tcp_from_the_wan_and_delete_stops_it(topology, miniupnpd):
    import subprocess
    listener = topology.popen(topology.hosts[0], [sys.executable, "-c", LISTENER, "8080"],
                              stdout=subprocess.PIPE, text=True)
    assert listener.stdout.readline().strip() == "listening"
    assert wan_connect(topology, 8080).startswith("failed"), "reachable before any mapping?"

    results = run_client(topology, textwrap.dedent("""
        c = Client()
        out([c.gateway, c.found_in])
        out(c.public_address().to_dict())
        out(c.map("tcp", 8080, 8080, 3600).to_dict())
    """))
    assert results[0] == [topology.gw_lan_address, "/proc/net/route"]  # discovery inside the namespace
    assert results[1]["address"] == topology.gw_wan_address
    granted = results[2]
    assert (granted["external_port"], granted["lifetime"]) == (8080, 3600)
    print(f"miniupnpd granted {granted}")

    assert wan_connect(topology, 8080) == "hello from the host"

    results = run_client(topology, textwrap.dedent("""
        c = Client()
        out(c.delete("tcp", 8080).to_dict())
    """))
    assert (results[0]["external_port"], results[0]["lifetime"]) == (0, 0)
    time.sleep(0.2)
    assert wan_connect(topology, 8080).startswith("failed")


def test_udp_map_renew_and_delete_all(topology, miniupnpd):
    results = run_client(topology, textwrap.dedent("""
        c = Client()
        first = c.map("udp", 5353, 5353, 120)
        again = c.map("udp", 5353, 5353, 120)
        other = c.map("udp", 5354, 0, 120)
        out([first.to_dict(), again.to_dict(), other.to_dict()])
        out(c.delete_all("udp").to_dict())
        out(c.map("udp", 5353, 5353, 60).to_dict())
    """))
    first, again, other = results[0]
    assert first["external_port"] == again["external_port"] == 5353
    assert other["external_port"] > 0
    assert results[1]["lifetime"] == 0
    assert results[2]["external_port"] == 5353


def test_errors_from_the_real_gateway(topology, miniupnpd):
    results = run_client(topology, textwrap.dedent("""
        c = Client(timeout=1.0)
        try:
            c.map("tcp", 80, 80, 60)  # outside the allow rules
        except errors.NotAuthorized as exc:
            out(["refused", str(exc)])
        from portmap.transport import Transport
        raw = Transport(c.gateway, timeout=1.0)
        from portmap import wire_natpmp as wire
        reply = raw.exchange(bytes.fromhex("0003"), lambda d: wire.decode_reply(d), "opcode 3")
        out(["opcode3", reply.op, reply.result, reply.length])
        start = __import__("time").monotonic()
        try:
            raw.exchange(bytes.fromhex("0100"), lambda d: d, "version 1 request")
        except errors.GatewayTimeout:
            out(["version1", round(__import__("time").monotonic() - start, 2)])
    """))
    assert results[0][0] == "refused" and "NOT_AUTHORIZED" in results[0][1] and "192.168.77.1:5351" in results[0][1]
    assert results[1] == ["opcode3", 131, 5, 8]
    assert results[2][0] == "version1" and 1.0 <= results[2][1] < 1.5


# ------------------------------------------------------------------ PCP (RFC 6887) against miniupnpd


def test_auto_speaks_pcp_and_the_mapping_forwards(topology, miniupnpd):
    import subprocess
    listener = topology.popen(topology.hosts[0], [sys.executable, "-c", LISTENER, "9090"],
                              stdout=subprocess.PIPE, text=True)
    assert listener.stdout.readline().strip() == "listening"
    results = run_client(topology, textwrap.dedent("""
        c = Client(method="auto")
        public = c.public_address()
        out(public.to_dict())
        granted = c.map("tcp", 9090, 9090, 600)
        out(granted.to_dict())
        out(c.attempts)
    """))
    public, granted, attempts = results
    # ANNOUNCE tells the epoch only; the NAT-PMP request sent with it may have told the address already
    assert public["method"] == "pcp" and public["address"] in (None, topology.gw_wan_address)
    assert granted["method"] == "pcp" and len(granted["nonce"]) == 24
    assert (granted["external_port"], granted["lifetime"], granted["public_address"]) == (9090, 600, topology.gw_wan_address)
    assert (attempts[0]["method"], attempts[0]["outcome"]) == ("pcp", "answered")  # chosen at PCP's answer
    assert attempts[-1]["method"] == "pcp" and len([a for a in attempts if a["method"] == "pcp"]) == 2
    print(f"miniupnpd granted over PCP {granted}")
    assert wan_connect(topology, 9090) == "hello from the host"

    # Renewal with the same nonce keeps the mapping; another nonce may not delete it.
    nonce = granted["nonce"]
    results = run_client(topology, textwrap.dedent(f"""
        c = Client(method="pcp")
        out(c.map("tcp", 9090, 9090, 600, nonce={nonce!r}).to_dict())
        try:
            c.delete("tcp", 9090, nonce="b34a4c039996c8d53c0d9663")
        except errors.NotAuthorized as exc:
            out(["refused", str(exc)])
    """))
    renewed, refused = results
    assert (renewed["external_port"], renewed["nonce"]) == (9090, nonce)
    assert refused[0] == "refused" and "NOT_AUTHORIZED (result code 2)" in refused[1] and "PCP" in refused[1]
    assert wan_connect(topology, 9090) == "hello from the host", "the refused delete removed the mapping"

    results = run_client(topology, textwrap.dedent(f"""
        c = Client(method="pcp")
        out(c.delete("tcp", 9090, nonce={nonce!r}).to_dict())
    """))
    assert results[0]["lifetime"] == 0
    time.sleep(0.2)
    assert wan_connect(topology, 9090).startswith("failed")


def test_pcp_address_mismatch_from_the_real_gateway(topology, miniupnpd):
    """A request whose client address is not its source (another NAT in between) gets ADDRESS_MISMATCH."""
    results = run_client(topology, textwrap.dedent("""
        from portmap import wire_pcp
        from portmap.transport import Transport
        nonce = bytes.fromhex("d5e352346f39173dd08c34dd")
        pending = wire_pcp.map_request("tcp", 9092, 9092, 600, nonce)
        data = wire_pcp.encode_map_request("192.168.77.99", nonce, "tcp", 9092, 9092, 600)
        raw = Transport(Client().gateway, timeout=2.0)
        reply = raw.exchange(data, pending.match, "MAP with another client address")
        error = pending.error(reply, raw.where)
        out([reply.result, reply.lifetime, error.__class__.__name__, str(error)])
    """))
    code, lifetime, name, message = results[0]
    assert (code, lifetime, name) == (12, 0, "AddressMismatch")
    assert "ADDRESS_MISMATCH (result code 12)" in message and "another NAT" in message


def test_forced_natpmp_still_works_on_a_pcp_gateway(topology, miniupnpd):
    results = run_client(topology, textwrap.dedent("""
        c = Client(method="natpmp")
        out(c.map("udp", 5360, 5360, 120).to_dict())
        out(c.delete("udp", 5360).to_dict())
    """))
    assert results[0]["method"] == "natpmp" and results[0]["external_port"] == 5360 and results[0]["nonce"] == ""
    assert results[1]["lifetime"] == 0


@pytest.mark.parametrize("method", ["natpmp", "pcp"])
def test_the_watch_restores_the_mappings_when_miniupnpd_restarts(topology, miniupnpd, tmp_path, method):
    """miniupnpd announces its start (NAT-PMP: 224.0.0.1:5350; PCP: ANNOUNCE): the watch on the host restores
    the mapping, and a connection from the WAN reaches the host again."""
    import os
    import signal
    import subprocess

    from tests.harness.interop import MODULE_UTILS
    from tests.harness.netns import wait_for

    env = dict(os.environ, PYTHONPATH=MODULE_UTILS)
    log = tmp_path / "watch.log"
    base = [sys.executable, "-c", "import sys; from portmap.cli import main; sys.exit(main())",
            "--gateway", topology.gw_lan_address, "--method", method, "--ledger", str(tmp_path / "ledger.json")]
    made = topology.run(topology.hosts[0], base + ["map", "tcp", "8080", "--lifetime", "3600"], env=env)
    assert made.returncode == 0, made.stderr
    listener = topology.popen(topology.hosts[0], [sys.executable, "-c", LISTENER, "8080"],
                              stdout=subprocess.PIPE, text=True)
    assert listener.stdout.readline().strip() == "listening"
    assert wan_connect(topology, 8080) == "hello from the host"
    watch = topology.popen(topology.hosts[0], base + ["watch", "--log", str(log), "--seed", "3"], env=env)
    wait_for(lambda: log.exists() and "watch: listening" in log.read_text(), what="the watch to listen")
    time.sleep(3)  # up a while, so its new epoch shows the restart
    miniupnpd.restart()
    restarted = time.monotonic()  # the restart empties miniupnpd's table: the log below shows the loss seen
    wait_for(lambda: wan_connect(topology, 8080) == "hello from the host", timeout=8, interval=0.1,
             what="the WAN connection to reach the host again")
    back = time.monotonic() - restarted
    text = log.read_text()
    print(f"{method}: the WAN reaches the host {back:.2f} s after miniupnpd restarted\n{text}")
    assert "announcement (epoch" in text and "the gateway lost its mappings" in text
    limit = 1.5 if method == "natpmp" else 5.0 + 1.5
    assert back < limit
    watch.send_signal(signal.SIGTERM)
    assert watch.wait(timeout=15) == 0
