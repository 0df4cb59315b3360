"""The host-side command (portmap-natpmp) and its renewal job, against the simulated gateway."""

from __future__ import annotations

import json
import subprocess
import sys

from portmap.client import Client
from tests.harness.faces import cli


def ledger(tmp_path):
    return {(m["protocol"], m["internal_port"]): m for m in json.loads((tmp_path / "ledger.json").read_text())["mappings"]}


def age(gw, tmp_path, seconds):
    """As if ``seconds`` passed since the grants: the ledger's times move back, the gateway's epoch on."""
    path = tmp_path / "ledger.json"
    document = json.loads(path.read_text())
    for mapping in document["mappings"]:
        mapping["granted_at"] -= seconds
        mapping["expires_at"] -= seconds
        mapping["epoch"]["seen_at"] -= seconds
    path.write_text(json.dumps(document))
    gw.ctl({"cmd": "set", "epoch": gw.ctl({"cmd": "status"})["epoch"] + seconds})


def map_requests(gw):
    return [e for e in gw.ctl({"cmd": "log"})["log"] if e.get("op") in (1, 2)]


def test_help_and_usage_errors(gw, tmp_path):
    shown = cli(gw, tmp_path, "--help")
    assert shown.returncode == 0
    for word in ("public", "map", "delete", "status", "renew", "Exit codes"):
        assert word in shown.stdout
    assert cli(gw, tmp_path, "map", "sctp", "80").returncode == 2
    bad = cli(gw, tmp_path, "map", "tcp", "70000")
    assert bad.returncode == 2 and "internal_port must be an integer from 1 to 65535" in bad.stderr


def test_public_map_status_delete(gw, tmp_path):
    public = cli(gw, tmp_path, "public")
    assert public.returncode == 0 and "public address 11.22.33.2" in public.stdout
    mapped = cli(gw, tmp_path, "map", "tcp", "8080", "--lifetime", "600")
    assert mapped.returncode == 0 and "11.22.33.2:8080" in mapped.stdout
    status = cli(gw, tmp_path, "status", "--json")
    rows = json.loads(status.stdout)
    assert [(r["protocol"], r["internal_port"], r["external_port"], r["lifetime"]) for r in rows] == [
        ("tcp", 8080, 8080, 600)]
    assert rows[0]["last_renewal"]["ok"] and 590 < rows[0]["time_left"] <= 600
    deleted = cli(gw, tmp_path, "delete", "tcp", "8080")
    assert deleted.returncode == 0 and gw.ctl({"cmd": "table"})["mappings"] == []
    assert "no mappings" in cli(gw, tmp_path, "status").stdout


def test_gateway_error_exit_1(gw, tmp_path):
    gw.ctl({"cmd": "rules", "rules": [{"action": "deny", "ports": "22-22"}]})
    refused = cli(gw, tmp_path, "map", "tcp", "22")
    assert refused.returncode == 1 and "NOT_AUTHORIZED" in refused.stderr


def test_renew_only_what_is_due(gw, tmp_path):
    assert cli(gw, tmp_path, "map", "tcp", "8080", "--lifetime", "600").returncode == 0
    assert cli(gw, tmp_path, "map", "udp", "5353", "--lifetime", "7200").returncode == 0
    gw.ctl({"cmd": "clear_log"})
    fresh = cli(gw, tmp_path, "renew", "--log", "stderr")
    assert fresh.returncode == 0 and "0 renewed, 2 not due" in fresh.stderr
    assert map_requests(gw) == []
    before = ledger(tmp_path)
    age(gw, tmp_path, 400)  # 200 s of 600 left: below half; the 7200 s one still has 6800 s
    due = cli(gw, tmp_path, "renew", "--log", "stderr")
    assert due.returncode == 0 and "1 renewed, 1 not due" in due.stderr
    assert [e["internal_port"] for e in map_requests(gw)] == [8080]
    after = ledger(tmp_path)
    assert after[("tcp", 8080)]["expires_at"] > before[("tcp", 8080)]["expires_at"]
    gw.ctl({"cmd": "clear_log"})
    forced = cli(gw, tmp_path, "renew", "--now", "--log", "stderr")
    assert "2 renewed" in forced.stderr and len(map_requests(gw)) == 2


def test_renew_recreates_everything_after_a_gateway_reboot(gw, tmp_path):
    for port in ("8080", "8081"):
        assert cli(gw, tmp_path, "map", "tcp", port).returncode == 0
    age(gw, tmp_path, 100)  # some time passed; the gateway has been up as long...
    gw.ctl({"cmd": "reboot"})  # ...until it restarts and forgets
    assert gw.ctl({"cmd": "table"})["mappings"] == []
    result = cli(gw, tmp_path, "renew", "--log", "stderr")
    assert result.returncode == 0, result.stderr
    assert "lost its mappings" in result.stderr and "2 renewed" in result.stderr
    assert sorted(m["internal_port"] for m in gw.ctl({"cmd": "table"})["mappings"]) == [8080, 8081]


def test_failed_renewal_exit_1_and_recorded(gw, tmp_path):
    assert cli(gw, tmp_path, "map", "tcp", "8080").returncode == 0
    assert ledger(tmp_path)[("tcp", 8080)]["method"] == "pcp"  # the simulated gateway speaks both
    gw.ctl({"cmd": "fault", "kind": "result", "code": 7, "ops": ["map"]})  # PCP's NETWORK_FAILURE
    result = cli(gw, tmp_path, "renew", "--now", "--log", str(tmp_path / "renew.log"))
    assert result.returncode == 1
    entry = ledger(tmp_path)[("tcp", 8080)]
    assert entry["last_renewal"]["ok"] is False and "NETWORK_FAILURE" in entry["last_renewal"]["error"]
    lines = (tmp_path / "renew.log").read_text().splitlines()
    assert any("failed" in line and "NETWORK_FAILURE" in line for line in lines)
    assert "FAILED" in cli(gw, tmp_path, "status").stdout


def test_silent_gateway_fails_every_mapping(gw, tmp_path):
    assert cli(gw, tmp_path, "map", "tcp", "8080").returncode == 0
    gw.ctl({"cmd": "fault", "kind": "drop"})
    result = cli(gw, tmp_path, "--timeout", "0.5", "renew", "--log", "stderr")
    assert result.returncode == 1 and "not renewed" in result.stderr


def hook_recorder(path):
    """An on-change hook that appends one line of its PORTMAP_* variables per call."""
    return [sys.executable, "-c",
            "import os, sys; open(sys.argv[1], 'a').write(' '.join(f'{k}={v}' for k, v in sorted(os.environ.items()) "
            "if k.startswith('PORTMAP_')) + '\\n')", str(path)]


def hook_calls(path):
    if not path.exists():
        return []
    return [dict(item.split("=", 1) for item in line.split()) for line in path.read_text().splitlines()]


def test_on_change_hook_gets_the_new_endpoint(gw, tmp_path, loopback_address_pool):
    out = tmp_path / "hook.out"
    hook = hook_recorder(out)
    assert cli(gw, tmp_path, "map", "tcp", "8080").returncode == 0
    first = cli(gw, tmp_path, "renew", "--log", "stderr", "--on-change", *hook)  # not due: only the hook is told
    assert first.returncode == 0, first.stderr
    (told,) = hook_calls(out)
    assert (told["PORTMAP_EXTERNAL_PORT"], told["PORTMAP_PREVIOUS_EXTERNAL_PORT"]) == ("8080", "")
    age(gw, tmp_path, 100)
    gw.ctl({"cmd": "reboot"})
    other = Client(gw.address, lock_path=str(tmp_path / "lock2"), source_address=loopback_address_pool())
    other.map("tcp", 9000, 8080, 600)  # someone else takes 8080 after the reboot
    gw.ctl({"cmd": "set", "public_address": "11.22.33.44"})
    result = cli(gw, tmp_path, "renew", "--log", "stderr", "--on-change", *hook)
    assert result.returncode == 0, result.stderr
    assert cli(gw, tmp_path, "renew", "--log", "stderr", "--on-change", *hook).returncode == 0
    calls = hook_calls(out)
    assert len(calls) == 2, calls  # told once of the mapping, once of the move, and not again
    fields = calls[1]
    assert fields["PORTMAP_PUBLIC_ADDRESS"] == "11.22.33.44"
    assert fields["PORTMAP_PREVIOUS_PUBLIC_ADDRESS"] == "11.22.33.2"
    assert fields["PORTMAP_PREVIOUS_EXTERNAL_PORT"] == "8080"
    assert fields["PORTMAP_EXTERNAL_PORT"] not in ("8080", "0")
    assert fields["PORTMAP_INTERNAL_PORT"] == "8080" and fields["PORTMAP_PROTOCOL"] == "tcp"


def test_hook_failure_exit_3(gw, tmp_path):
    assert cli(gw, tmp_path, "map", "tcp", "8080").returncode == 0
    gw.ctl({"cmd": "set", "public_address": "11.22.33.45"})
    result = cli(gw, tmp_path, "renew", "--now", "--log", "stderr", "--on-change", "/bin/false")
    assert result.returncode == 3 and "exited 1" in result.stderr


def test_hook_is_not_a_shell(gw, tmp_path):
    assert cli(gw, tmp_path, "map", "tcp", "8080").returncode == 0
    gw.ctl({"cmd": "set", "public_address": "11.22.33.46"})
    marker = tmp_path / "injected"
    result = cli(gw, tmp_path, "renew", "--now", "--log", "stderr", "--on-change",
                 "/bin/echo", f"x; touch {marker}")
    assert result.returncode == 0
    assert not marker.exists()


def test_renew_pcp_mappings_with_their_nonce(gw, tmp_path):
    # Up for a while: PCP's epoch rule forgives a step back of one second (RFC 6887 section 8.5),
    # so a reboot right after the start would not show.
    gw.ctl({"cmd": "set", "epoch": 1000})
    assert cli(gw, tmp_path, "map", "udp", "5353", "--lifetime", "600").returncode == 0
    entry = ledger(tmp_path)[("udp", 5353)]
    assert entry["method"] == "pcp" and len(entry["nonce"]) == 24
    gw.ctl({"cmd": "clear_log"})
    renewed = cli(gw, tmp_path, "renew", "--now", "--log", "stderr")
    assert renewed.returncode == 0, renewed.stderr
    sent = map_requests(gw)
    assert [(e["method"], e["nonce"], e["lifetime"]) for e in sent] == [("pcp", entry["nonce"], 600)]
    assert ledger(tmp_path)[("udp", 5353)]["nonce"] == entry["nonce"]
    # A reboot, seen in ANNOUNCE's epoch, brings it back at the next run (not only with --now).
    gw.ctl({"cmd": "reboot"})
    assert gw.ctl({"cmd": "table"})["mappings"] == []
    again = cli(gw, tmp_path, "renew", "--log", "stderr")
    assert again.returncode == 0 and "lost its mappings" in again.stderr
    table = gw.ctl({"cmd": "table"})["mappings"]
    assert [(m["method"], m["nonce"], m["internal_port"]) for m in table] == [("pcp", entry["nonce"], 5353)]
    status = cli(gw, tmp_path, "status").stdout
    assert " pcp " in status and ":5353" in status


SLOW_TO_IMPORT = ("argparse", "dataclasses", "typing", "inspect", "datetime", "threading", "tempfile", "shutil",
                  "subprocess", "pathlib", "urllib", "http", "xml")


def test_the_usual_subcommands_import_only_what_they_use(gw, tmp_path):
    """The job runs often: ``public``, ``map``, ``renew`` and ``status`` import none of the slow modules."""
    from tests.harness.faces import MODULE_UTILS  # pylint: disable=import-outside-toplevel

    snippet = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from portmap.cli import main; code = main(); "
               "sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n'); sys.exit(code)")
    common = ["--gateway", gw.address, "--ledger", str(tmp_path / "ledger.json"), "--lock", str(tmp_path / "lock")]
    for args in (["public"], ["map", "tcp", "8081", "--lifetime", "600"], ["renew", "--now", "--log", "stderr"],
                 ["status"], ["delete", "tcp", "8081"]):
        # -S: no site module, whose .pth files may import anything; -I: PYTHONPATH and the user's site ignored
        proc = subprocess.run([sys.executable, "-I", "-S", "-c", snippet, MODULE_UTILS, *common, *args],
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        loaded = set(proc.stderr.rsplit("MODULES ", 1)[1].split())
        assert "portmap.client" in loaded or args == ["status"]
        slow = sorted(name for name in loaded if name.split(".")[0] in SLOW_TO_IMPORT)
        assert not slow, f"{' '.join(args)} imported {slow}"


UPNP_CODE = ("portmap.methods.upnp", "portmap.methods.igd", "portmap.wire_upnp", "portmap.transport_upnp",
             "portmap.wire_ssdp")


def test_a_natpmp_run_loads_no_upnp_code(gw, tmp_path):
    """Each method is loaded when it is used (``methods.REGISTRY``): a NAT-PMP run imports none of UPnP IGD's modules,
    nor PCP's; under ``auto`` the SSDP search is part of the detection, so UPnP's method is loaded there."""
    from tests.harness.faces import MODULE_UTILS  # pylint: disable=import-outside-toplevel

    snippet = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from portmap.cli import main; code = main(); "
               "sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n'); sys.exit(code)")
    common = ["--gateway", gw.address, "--ledger", str(tmp_path / "ledger.json"), "--lock", str(tmp_path / "lock")]
    for method, absent in (("natpmp", UPNP_CODE + ("portmap.methods.pcp",)), ("pcp", UPNP_CODE)):
        for args in (["public"], ["map", "tcp", "8082", "--lifetime", "600"], ["renew", "--now", "--log", "stderr"],
                     ["delete", "tcp", "8082"]):
            proc = subprocess.run([sys.executable, "-I", "-S", "-c", snippet, MODULE_UTILS, *common, "--method", method,
                                   *args], capture_output=True, text=True, timeout=60, check=False)
            assert proc.returncode == 0, proc.stderr
            loaded = set(proc.stderr.rsplit("MODULES ", 1)[1].split())
            assert f"portmap.methods.{method}" in loaded
            assert not loaded & set(absent), f"--method {method} {' '.join(args)} imported {sorted(loaded & set(absent))}"
