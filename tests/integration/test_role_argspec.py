"""A wrong role variable fails at once, before any task of the role runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration.test_playbooks import ANSIBLE_PLAYBOOK, PLAYBOOKS, collections_path  # noqa: F401  pylint: disable=unused-import


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"renewal_scheduler": "anacron"}, ["renewal_scheduler", "cron, systemd"]),
        ({"renewal_mappings": [{"protocol": "tcp"}]}, ["internal_port"]),
        ({"renewal_mappings": [{"internal_port": "eighty"}]}, ["internal_port", "int"]),
        ({"renewal_mappings": [{"internal_port": 80, "protocol": "sctp"}]}, ["protocol", "tcp, udp, both"]),
    ],
)
def test_wrong_variable_fails_before_any_task(collections_path, tmp_path, bad, words):  # noqa: F811  pylint: disable=redefined-outer-name
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_path), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "t"), ANSIBLE_HOME=str(tmp_path / "h"))
    proc = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", "--check",
                           str(PLAYBOOKS / "role_bad_vars.yml"),
                           "-e", json.dumps({"bad": bad, "ansible_python_interpreter": sys.executable})],
                          capture_output=True, text=True, env=env, check=False, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Validating arguments against arg spec" in output
    for word in words:
        assert word in output, output[-3000:]
    assert "Create the job's group" not in output  # no task of the role ran
