"""A new user's first runs: a host without /var/lib/portmap-natpmp, what the command says, the renewal
job without a hook, a gateway that goes back from UPnP IGD to PCP, and UPnP IGD asked without a
given gateway (inside namespaces of the test's own)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from portmap.manage import Desired
from simgw import SimulatedGateway
from tests.harness.faces import MODULE_UTILS, cli, manager

REPO = os.path.dirname(os.path.dirname(MODULE_UTILS))
COMMAND = "import sys; from portmap.cli import main; sys.exit(main())"
DEFAULT_FOLDER = "/var/lib/portmap-natpmp"
WANT = [Desired("tcp", 8080, 8080, 3600)]

# Run inside a private mount namespace whose /var/lib is an empty tmpfs: each step is the command
# with the default ledger, and what /var/lib holds after it.
FRESH_HOST = r"""
import json, os, subprocess, sys
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/var/lib"], check=True)
steps = []
for args in json.loads(sys.argv[1]):
    done = subprocess.run([sys.executable, "-c", sys.argv[2], *args], capture_output=True, text=True, timeout=60)
    steps.append({"args": args, "rc": done.returncode, "out": done.stdout, "err": done.stderr,
                  "var_lib": sorted(os.listdir("/var/lib")),
                  "folder": sorted(os.listdir("/var/lib/portmap-natpmp")) if os.path.isdir("/var/lib/portmap-natpmp")
                  else None})
print(json.dumps(steps))
"""


def fresh_host(*commands):
    """The steps' results, run one after the other on a host whose /var/lib starts empty."""
    argv = ["unshare", "--mount", "--propagation", "private", sys.executable, "-c", FRESH_HOST,
            json.dumps([list(c) for c in commands]), COMMAND]
    done = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=MODULE_UTILS),
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def igd_gw(loopback_address, tmp_path):
    """PCP, NAT-PMP and UPnP IGD v2 on one loopback address."""
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock"), igd="v2") as gateway:
        yield gateway


def test_a_fresh_host_reads_without_creating_and_map_creates_the_default_folder(igd_gw):
    g = ["--gateway", igd_gw.address]
    public, status, table, renew, explicit, mapped, after = fresh_host(
        g + ["public"], g + ["status"], g + ["table"], g + ["renew", "--log", "stderr"],
        g + ["--ledger", "/var/lib/elsewhere/ledger.json", "public"], g + ["map", "tcp", "8080"], g + ["status"])
    for step in (public, status, table, renew):
        assert step["rc"] == 0, step
        assert step["var_lib"] == [], f"{step['args']} created {step['var_lib']}"
    assert "public address 11.22.33.2" in public["out"]
    assert f"ledger {DEFAULT_FOLDER}/ledger.json" in status["out"] and "no mappings" in status["out"]
    assert "tcp" not in table["out"] or "0 mapping(s)" in table["out"]
    assert explicit["rc"] == 1 and "/var/lib/elsewhere does not exist" in explicit["err"], explicit
    assert mapped["rc"] == 0 and "11.22.33.2:8080" in mapped["out"], mapped
    assert mapped["var_lib"] == ["portmap-natpmp"] and "ledger.json" in mapped["folder"]
    assert "tcp" in after["out"] and "8080" in after["out"]


def test_check_mode_on_a_fresh_host_creates_nothing(igd_gw):
    """The modules' code path (natpmp_mapping in check mode, natpmp_info) on a host without the folder."""
    script = ("from portmap.client import Client; from portmap.ledger import open_ledger; "
              "from portmap.manage import Desired, Manager; import json, os, sys; "
              "ledger = open_ledger(None, create_folder=False); "
              f"client = Client('{igd_gw.address}', method='auto', lock=ledger.lock); "
              "checked = Manager(ledger, client, check_mode=True).present([Desired('tcp', 8080, 8080, 3600)]); "
              "info = Manager(open_ledger(None, create_folder=False), "
              f"Client('{igd_gw.address}', method='auto')).info(); "
              "print(json.dumps([checked['changed'], info['mappings'], os.path.isdir('/var/lib/portmap-natpmp')]))")
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs tmpfs /var/lib && exec "$0" -c "$1"', sys.executable, script]
    done = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=MODULE_UTILS),
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    changed, mappings, created = json.loads(done.stdout)
    assert changed is True and mappings == [] and created is False
    assert igd_gw.ctl({"cmd": "table"})["mappings"] == []


def test_table_lists_over_upnp_on_a_pcp_gateway_that_speaks_it_too(igd_gw, tmp_path):
    assert cli(igd_gw, tmp_path, "map", "tcp", "8080").returncode == 0  # over PCP
    table = cli(igd_gw, tmp_path, "table")
    assert table.returncode == 0, table.stderr
    assert "1 mapping(s) on gateway" in table.stdout and "8080" in table.stdout and "(this host)" in table.stdout
    listed = json.loads(cli(igd_gw, tmp_path, "table", "--json").stdout)
    assert listed["listed"] and [m["external_port"] for m in listed["mappings"]] == [8080]
    public = cli(igd_gw, tmp_path, "public")
    assert public.returncode == 0 and "speaks pcp, natpmp, upnp; using pcp" in public.stdout, public.stdout


def test_table_where_no_protocol_can_list_points_to_status(gw, tmp_path):
    table = cli(gw, tmp_path, "table")
    assert table.returncode == 1
    assert "cannot be listed" in table.stderr and "portmap-natpmp status" in table.stderr, table.stderr


def test_status_names_its_ledger_and_stderr_lines_have_time_stamps(gw, tmp_path):
    status = cli(gw, tmp_path, "status")
    assert f"ledger {tmp_path / 'ledger.json'}" in status.stdout
    cli(gw, tmp_path, "map", "tcp", "8080", "--lifetime", "600")
    renewed = cli(gw, tmp_path, "renew", "--now", "--log", "stderr")
    lines = renewed.stderr.splitlines()
    assert lines and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} portmap-natpmp: ", x) for x in lines), lines


def test_without_a_hook_a_change_is_logged_once_and_recorded(gw, tmp_path):
    cli(gw, tmp_path, "map", "tcp", "8080", "--lifetime", "600")
    first = cli(gw, tmp_path, "renew", "--log", "stderr")
    second = cli(gw, tmp_path, "renew", "--log", "stderr")
    assert "public endpoint of TCP internal port 8080" in first.stderr and "(new)" in first.stderr
    assert "public endpoint" not in second.stderr, second.stderr
    entry = json.loads((tmp_path / "ledger.json").read_text())["mappings"][0]
    assert entry["notified"] == {"external_port": 8080, "public_address": "11.22.33.2"}


def test_recorded_epoch_is_what_the_ledger_knew_before_the_run(gw, tmp_path):
    first = manager(gw, tmp_path, method="natpmp").present(WANT)
    assert first["recorded"] == {"public_address": None, "epoch": None}
    second = manager(gw, tmp_path, method="natpmp").present(WANT)
    assert second["recorded"]["public_address"] == "11.22.33.2" and second["recorded"]["epoch"] == first["epoch"]


def test_a_gateway_back_from_upnp_only_to_pcp_is_spoken_to_in_pcp(loopback_address, tmp_path):
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock"), igd="v2",
                          speaks="none") as gateway:
        first = manager(gateway, tmp_path, method="auto").present(WANT)
        assert first["method"] == "upnp"
        gateway.ctl({"cmd": "set", "speaks": "both"})  # PCP and NAT-PMP again
        module = manager(gateway, tmp_path, method="auto").present(WANT)
        assert module["method"] == "pcp" and module["changed"], module
        table = gateway.ctl({"cmd": "table"})["mappings"]
        assert [(m["method"], m["internal_port"]) for m in table] == [("pcp", 8080)]
        assert json.loads((tmp_path / "ledger.json").read_text())["gateways"][gateway.address]["method"] == "pcp"
        # the job likewise: back to UPnP only, then PCP again
        gateway.ctl({"cmd": "set", "speaks": "none"})
        assert manager(gateway, tmp_path, method="auto").present(WANT)["method"] == "upnp"
        gateway.ctl({"cmd": "set", "speaks": "both"})
        job = cli(gateway, tmp_path, "renew", "--now", "--log", "stderr")
        assert job.returncode == 0, job.stderr
        entry = json.loads((tmp_path / "ledger.json").read_text())["mappings"][0]
        assert entry["method"] == "pcp", job.stderr


def test_upnp_without_a_gateway_asks_the_default_route_s_router_by_unicast(topology, tmp_path):
    """--method upnp and natpmp_info's code path with no gateway given: the router of the default route is
    asked with a unicast M-SEARCH (the simulated IGD answers unicast only: it is in no multicast group)."""
    gw_ns = topology.gw
    control = str(tmp_path / "gw.sock")
    ready = str(tmp_path / "ready")
    topology.popen(gw_ns, [sys.executable, "-m", "simgw", "--listen", f"{topology.gw_lan_address}:5351",
                           "--control", control, "--speaks", "none", "--igd", "v2", "--ssdp", "unicast",
                           "--public-address", topology.gw_wan_address],
                   stdout=open(ready, "w", encoding="utf-8"), stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                   cwd=REPO)
    deadline = time.monotonic() + 10
    while not os.path.exists(control) and time.monotonic() < deadline:
        time.sleep(0.05)
    env = dict(os.environ, PYTHONPATH=MODULE_UTILS)
    common = [sys.executable, "-c", COMMAND, "--method", "upnp", "--ledger", str(tmp_path / "ledger.json"),
              "--lock", str(tmp_path / "lock")]
    table = topology.run(topology.hosts[0], common + ["table"], env=env)
    assert table.returncode == 0, table.stderr
    assert f"on gateway {topology.gw_lan_address} (UPnP IGD)" in table.stdout
    public = topology.run(topology.hosts[0], common + ["public"], env=env)
    assert public.returncode == 0 and f"public address {topology.gw_wan_address}" in public.stdout, public.stderr
