"""The renewal role's systemd units: valid for systemd-analyze verify, arguments quoted, no injection."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.harness.playbook import run_playbook

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def render(tmp_path, on_change, interval):
    command = tmp_path / "portmap-natpmp"
    command.write_text("#!/bin/sh\nexit 0\n")
    command.chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    extra = {"unit_dir": str(units), "renewal_command_path": str(command), "renewal_on_change": on_change,
             "renewal_interval": interval, "renewal_user": "root", "renewal_group": "root"}
    proc, _recap = run_playbook("render_units.yml", tmp_path, extra, quiet=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return units / "portmap-natpmp-renew.service", units / "portmap-natpmp-renew.timer"


@pytest.mark.skipif(not SYSTEMD_ANALYZE, reason="systemd-analyze is not installed")
def test_units_pass_systemd_analyze_verify(tmp_path):
    service, timer = render(tmp_path, ["/bin/echo", "endpoint changed"], 30)
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(service), str(timer)],
                            capture_output=True, text=True, check=False)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    text = timer.read_text()
    assert "OnUnitActiveSec=30s" in text and "AccuracySec=1s" in text and "OnBootSec=" in text


def test_exec_start_quotes_every_argument(tmp_path):
    hostile = ["/bin/echo", "a b", 'quote"d', "$HOME", "100%", "x;touch /tmp/owned"]
    service, _timer = render(tmp_path, hostile, 60)
    exec_start = [line for line in service.read_text().splitlines() if line.startswith("ExecStart=")][0]
    assert '"a b"' in exec_start
    assert '"quote\\"d"' in exec_start
    assert '"$$HOME"' in exec_start
    assert '"100%%"' in exec_start
    assert '"x;touch /tmp/owned"' in exec_start
    if SYSTEMD_ANALYZE:
        result = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(service)], capture_output=True,
                                text=True, check=False)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("lifetimes, cap, interval", [
    ([7200], 300, 300),  # half the lifetime, at most the cap
    ([120, 7200], 300, 60),  # half the shortest
    ([0, 600], 300, 300),  # a permanent UPnP lease (lifetime 0) takes no part: 600 // 2 = 300
    ([0, 400], 300, 200),
    ([0], 300, 300),  # only permanent leases: every cap
    ([0, 0], 900, 900),
    ([], 300, 300),
])
def test_the_interval_rule(tmp_path, lifetimes, cap, interval):
    out = tmp_path / "interval"
    extra = {"renewal_result": {"mappings": [{"lifetime": n} for n in lifetimes]}, "renewal_interval_cap": cap,
             "out_file": str(out)}
    proc, _recap = run_playbook("render_interval.yml", tmp_path, extra, quiet=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert int(out.read_text()) == interval
