"""Unit-test fixtures: no real gateway discovery in the root namespace, and an
interpreter an unprivileged user can run (for the lock and ledger permission tests).
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys

import pytest

from portmap import discovery

NOBODY = 65534
MODULE_UTILS = os.path.dirname(os.path.dirname(os.path.abspath(discovery.__file__)))
PROBE = "import sys; sys.path.insert(0, sys.argv[1]); import portmap.lock, portmap.ledger"


def pytest_configure(config):
    """ansible-test units runs pytest with a configuration of its own: declare pytest.ini's markers."""
    ini = configparser.ConfigParser()
    ini.read(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "pytest.ini"))
    for line in ini.get("pytest", "markers", fallback="").strip().splitlines():
        config.addinivalue_line("markers", line)


def _no_discovery_in_the_root_namespace():
    pytest.fail("a unit test ran real gateway discovery in the root namespace "
                "(pass a gateway, or monkeypatch portmap.discovery.SOURCES)")


@pytest.fixture(autouse=True)
def no_real_discovery(monkeypatch):
    """Every discovery source fails the test unless the test replaces SOURCES itself.

    Real discovery would find the machine's real router; it runs only inside the
    sealed namespace of test_discovery.py, in a subprocess.
    """
    monkeypatch.setattr(discovery, "SOURCES", [(name, _no_discovery_in_the_root_namespace)
                                               for name, _source in discovery.SOURCES])


def drop_to_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


_interpreter_cache = {}


@pytest.fixture(scope="session")
def unprivileged_python():
    """A Python interpreter that user ``nobody`` can execute (the package needs only the
    standard library); skips when not root or when there is none (e.g. pyenv under /root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a subprocess as user nobody")
    if "found" not in _interpreter_cache:
        found = None
        for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3")):
            if not candidate or not os.path.exists(candidate):
                continue
            try:
                probe = subprocess.run([candidate, "-c", PROBE, MODULE_UTILS],
                                       capture_output=True, timeout=10, check=False, preexec_fn=drop_to_nobody,
                                       cwd="/")
            except (OSError, subprocess.SubprocessError):
                continue
            if probe.returncode == 0:
                found = candidate
                break
        _interpreter_cache["found"] = found
    if not _interpreter_cache["found"]:
        pytest.skip("no Python interpreter that user nobody can execute")
    return _interpreter_cache["found"]
