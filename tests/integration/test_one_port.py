"""protocol: both keeps TCP and UDP on one external port, and the hook hears of it once.

A torrent client listens on one port for both protocols. The simulated gateway gives a
suggested port taken by another client the next free one, so another host holding UDP 51413
makes the two halves differ; the manager then moves them onto one port. A gateway that keeps
them apart is reported plainly, and both mappings are kept.
"""

from __future__ import annotations

import json

import pytest

from portmap.manage import ApplyError, normalize
from tests.harness.faces import cli, manager

BOTH = normalize([{"internal_port": 51413, "protocol": "both", "lifetime": 600}], lambda _i, name: name)


def ours(gw, other):
    """Our host's mappings of internal port 51413 on the gateway (not the other host's)."""
    return sorted((m["protocol"], m["external_port"]) for m in gw.ctl({"cmd": "table"})["mappings"]
                  if m["internal_port"] == 51413 and m["client"] != other)


def hold(gw, client, protocol, port):
    """Another host takes ``port`` (its internal port is the same number: one mapping each)."""
    assert gw.ctl({"cmd": "map", "client": client, "protocol": protocol, "internal_port": port, "external_port": port,
                   "lifetime": 3600})["ok"]


@pytest.mark.parametrize("method", ["natpmp", "pcp"])
def test_both_halves_are_moved_onto_one_port(gw, tmp_path, loopback_address_pool, method):
    other = loopback_address_pool()
    hold(gw, other, "udp", 51413)  # another host has UDP 51413: UDP gets 51414 first
    result = manager(gw, tmp_path, method=method).present(BOTH)
    ports = {r["protocol"]: r["external_port"] for r in result["mappings"]}
    print(f"one port/{method}: granted {ports}, table {ours(gw, other)}")
    assert ports["tcp"] == ports["udp"] != 51413
    assert ours(gw, other) == [("tcp", ports["tcp"]), ("udp", ports["udp"])]  # TCP 51413 was given back
    entries = json.loads((tmp_path / "ledger.json").read_text())["mappings"]
    assert {e["protocol"]: (e["external_port"], e["same_port"]) for e in entries} == {
        "tcp": (ports["tcp"], True), "udp": (ports["udp"], True)}
    assert not manager(gw, tmp_path, method=method).present(BOTH)["changed"]  # and it stays so


@pytest.mark.parametrize("method", ["natpmp", "pcp"])
def test_a_gateway_that_keeps_them_apart_is_reported_and_both_are_kept(gw, tmp_path, loopback_address_pool, method):
    other = loopback_address_pool()
    for port in range(51413, 51425):  # every port one protocol could move to is held for it elsewhere
        hold(gw, other, "udp" if port % 2 else "tcp", port)
    with pytest.raises(ApplyError) as failed:
        manager(gw, tmp_path, method=method).present(BOTH)
    print(f"apart/{method}: {failed.value}")
    assert "will not give TCP and UDP internal port 51413 one external port" in str(failed.value)
    assert "both mappings are kept" in str(failed.value)
    kept = ours(gw, other)
    assert [p for p, _port in kept] == ["tcp", "udp"] and kept[0][1] != kept[1][1]
    recorded = {e["protocol"]: e["external_port"] for e in json.loads((tmp_path / "ledger.json").read_text())["mappings"]}
    assert recorded == dict(kept)


def test_the_hook_hears_of_both_in_one_call(gw, tmp_path, loopback_address_pool):
    other = loopback_address_pool()
    hold(gw, other, "udp", 51413)
    manager(gw, tmp_path, method="natpmp").present(BOTH)
    out = tmp_path / "hook.out"
    hook = ["/bin/sh", "-c", 'echo "$PORTMAP_PROTOCOL $PORTMAP_EXTERNAL_PORT $PORTMAP_PREVIOUS_EXTERNAL_PORT" >> "$0"', str(out)]
    assert cli(gw, tmp_path, "--method", "natpmp", "renew", "--log", "stderr", "--on-change", *hook).returncode == 0
    assert cli(gw, tmp_path, "--method", "natpmp", "renew", "--log", "stderr", "--on-change", *hook).returncode == 0
    (port,) = {p for _proto, p in ours(gw, other)}
    assert out.read_text().splitlines() == [f"both {port} "]  # one call, for both, and only once
