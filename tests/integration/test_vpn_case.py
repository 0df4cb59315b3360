"""The VPN case, without a VPN: a NAT-PMP gateway that caps leases at 60 s and picks the external
port itself (the simulated gateway's --external-ports random), protocol both with external_port 0,
and a torrent client told the port by the on-change hook.

- cron cannot keep a 60 s lease: asked with min_lifetime 120 (what the role passes under cron),
  the module takes back what it made and says why; nothing is left on the gateway;
- with a timer, the mapping is made on one port for TCP and UDP, and the hook is told once;
- a gateway reboot moves the port: whether converge (the module) or the job repairs it, the hook
  is told exactly once per change, with both protocols in one call.
"""

from __future__ import annotations

import json

import pytest

from portmap.manage import ApplyError, normalize
from simgw import SimulatedGateway
from tests.harness.faces import cli, manager

WANT = normalize([{"internal_port": 51413, "external_port": 0, "protocol": "both", "lifetime": 3600}],
                 lambda _i, name: name)


@pytest.fixture
def vpn(loopback_address, tmp_path):
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock"), lifetime_cap=60,
                          external_ports="random", port_range=(40000, 60000), port_seed=7, uptime=1000) as gateway:
        yield gateway


def ports(gw):
    return sorted((m["protocol"], m["external_port"], m["lifetime"]) for m in gw.ctl({"cmd": "table"})["mappings"])


def told(path):
    return path.read_text().splitlines() if path.exists() else []


def job(gw, tmp_path, out):
    hook = ["/bin/sh", "-c", 'echo "$PORTMAP_PROTOCOL $PORTMAP_EXTERNAL_PORT $PORTMAP_PREVIOUS_EXTERNAL_PORT" >> "$0"',
            str(out)]
    run = cli(gw, tmp_path, "--method", "natpmp", "renew", "--log", "stderr", "--on-change", *hook)
    assert run.returncode == 0, run.stderr
    return run


def test_a_capped_lease_under_cron_is_taken_back(vpn, tmp_path):
    with pytest.raises(ApplyError) as refused:
        manager(vpn, tmp_path, method="natpmp").present(WANT, min_lifetime=120)
    print(f"VPN cron: {refused.value}")
    assert "shorter than the 120 s needed" in str(refused.value) and "deleted again" in str(refused.value)
    assert refused.value.result["changed"] is False
    assert ports(vpn) == []
    ledger = tmp_path / "ledger.json"  # nothing to record: the run left the ledger as it was (none)
    assert not ledger.exists() or json.loads(ledger.read_text())["mappings"] == []


def test_one_port_a_reboot_and_the_hook_told_once_per_change(vpn, tmp_path):
    out = tmp_path / "hook.out"
    made = manager(vpn, tmp_path, method="natpmp").present(WANT)
    granted = {r["protocol"]: (r["external_port"], r["lifetime"]) for r in made["mappings"]}
    first = granted["tcp"][0]
    assert granted == {"tcp": (first, 60), "udp": (first, 60)} and first != 51413  # the gateway picked it
    job(vpn, tmp_path, out)
    job(vpn, tmp_path, out)
    assert told(out) == [f"both {first} "]  # the new mapping, once

    vpn.ctl({"cmd": "reboot"})  # the table is gone; the next request gets another random port
    job(vpn, tmp_path, out)  # the job sees the epoch reset and makes both again
    (second,) = {port for _p, port, _l in ports(vpn)}
    assert second != first and len(ports(vpn)) == 2
    job(vpn, tmp_path, out)
    assert told(out) == [f"both {first} ", f"both {second} {first}"]

    vpn.ctl({"cmd": "reboot"})
    again = manager(vpn, tmp_path, method="natpmp").present(WANT)  # converge repairs it this time
    assert again["changed"]  # (a second reboot within seconds does not show in NAT-PMP's epoch; the port does)
    (third,) = {port for _p, port, _l in ports(vpn)}
    assert third not in (first, second)
    job(vpn, tmp_path, out)  # not due: only the hook is told of what converge made
    job(vpn, tmp_path, out)
    assert told(out) == [f"both {first} ", f"both {second} {first}", f"both {third} {second}"]
    print(f"VPN hook calls: {told(out)}")
