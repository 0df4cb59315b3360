"""A wrong role variable fails at once, before any task of the role could change the host."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.harness.playbook import recap_counts, run_playbook

ROLE = Path(__file__).resolve().parents[2] / "roles" / "renewal"


def run_role(collections_path, tmp_path, variables, playbook="role_check_only.yml"):
    proc, recap = run_playbook(playbook, tmp_path, variables, collections_path=collections_path, check=True,
                               quiet=True, timeout=120)
    return proc, proc.stdout + proc.stderr, recap


def assert_nothing_would_change(proc, recap):
    """Check mode: a task that would create the group, the user or a file reports "changed"."""
    assert proc.returncode != 0
    assert recap and recap_counts(recap)["changed"] == 0, proc.stdout[-3000:]
    assert "\nchanged: [localhost]" not in proc.stdout


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"renewal_scheduler": "anacron"}, ["renewal_scheduler", "cron, systemd, service"]),
        ({"renewal_mappings": [{"protocol": "tcp"}]}, ["internal_port"]),
        ({"renewal_mappings": [{"internal_port": "eighty"}]}, ["internal_port", "int"]),
        ({"renewal_mappings": [{"internal_port": 80, "protocol": "sctp"}]}, ["protocol", "tcp, udp, both"]),
    ],
)
def test_wrong_variable_fails_before_any_task(collections_path, tmp_path, bad, words):
    proc, output, recap = run_role(collections_path, tmp_path, {"bad": bad}, "role_bad_vars.yml")
    assert "Validating arguments against arg spec" in output
    for word in words:
        assert word in output, output[-3000:]
    assert_nothing_would_change(proc, recap)


@pytest.mark.parametrize("typo, meant", [
    ("renewal_mapings", "renewal_mappings"),
    ("renewal_sheduler", "renewal_scheduler"),
    ("renewal_on_chnage", "renewal_on_change"),
    ("renewal_zzzz", None),
])
def test_an_unknown_variable_is_named_with_the_closest_known_one(collections_path, tmp_path, typo, meant):
    variables = {"renewal_mappings": [{"internal_port": 8080}], typo: "x"}
    if typo == "renewal_mapings":
        variables = {typo: [{"internal_port": 8080}]}  # the case met: the list under a misspelt name
    proc, output, recap = run_role(collections_path, tmp_path, variables)
    assert f"{typo} is not a variable of the portmap.natpmp.renewal role" in output, output[-3000:]
    if meant:
        assert f"(did you mean {meant}?)" in output
    else:
        assert "did you mean" not in output
    assert_nothing_would_change(proc, recap)


def test_a_present_job_without_mappings_is_refused(collections_path, tmp_path):
    proc, output, recap = run_role(collections_path, tmp_path, {})
    assert "renewal_mappings is empty" in output and "renewal_state: absent" in output
    assert_nothing_would_change(proc, recap)


@pytest.mark.skipif(Path("/run/systemd/system").exists(), reason="not applicable here: systemd runs this host")
@pytest.mark.parametrize("scheduler, what", [("systemd", "the timer"), ("service", "the watch service")])
def test_a_systemd_scheduler_where_systemd_does_not_run_is_refused(collections_path, tmp_path, scheduler, what):
    proc, output, recap = run_role(collections_path, tmp_path, {
        "renewal_scheduler": scheduler, "renewal_mappings": [{"internal_port": 8080}]})
    assert f"renewal_scheduler is {scheduler}, but systemd does not run this host" in output, output[-3000:]
    assert f"so {what} would never start" in output and "renewal_scheduler_fallback: cron" in output
    assert_nothing_would_change(proc, recap)


@pytest.mark.parametrize("bad", ["srv/hook", "/srv/my hook", "/srv/hook\nExecStartPre=/bin/sh", "/srv/100%", ""])
def test_a_bad_writable_path_for_the_watch_is_refused(collections_path, tmp_path, bad):
    proc, output, recap = run_role(collections_path, tmp_path, {
        "renewal_scheduler": "service", "renewal_mappings": [{"internal_port": 8080}],
        "renewal_service_writable_paths": ["/srv/fine", bad]})
    assert "renewal_service_writable_paths[1] must be an absolute path" in output, output[-3000:]
    assert "renewal_service_writable_paths[0]" not in output
    assert_nothing_would_change(proc, recap)


def test_every_variable_the_role_sets_is_declared():
    """The unknown-variable check knows the role's own names: each register, fact and loop variable
    the tasks set is in renewal_own_variables (or it would be taken for a typo on a second run)."""
    own = set(yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["renewal_own_variables"])
    options = set(yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"])
    set_here = set()
    for path in (ROLE / "tasks").glob("*.yml"):
        text = path.read_text()
        set_here |= set(re.findall(r"(?:register|loop_var):\s*(renewal_\w+)", text))
        set_here |= set(re.findall(r"^\s+(renewal_\w+):", text, re.MULTILINE)) - options
    set_here |= set(yaml.safe_load((ROLE / "vars" / "main.yml").read_text()))
    assert set_here - own == set()
    assert not own & options
