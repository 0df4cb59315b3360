"""`python3 -m simgw` command line: --listen takes ADDRESS, ADDRESS:PORT or :PORT, and says so when it is neither."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simgw.__main__ import _parse_listen
from simgw.igd import parse_services

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value, expected", [("127.0.0.53", ("127.0.0.53", 5351)), ("127.0.0.53:6000", ("127.0.0.53", 6000)),
                                             (":6000", ("127.0.0.1", 6000))])
def test_listen_forms(value, expected):
    assert _parse_listen(value) == expected


@pytest.mark.parametrize("value", ["foo", "127.0.0.53:0", "127.0.0.53:65536", "127.0.0.53:x", "10.1:5351"])
def test_bad_listen_is_a_usage_error_naming_the_option(value):
    proc = subprocess.run([sys.executable, "-m", "simgw", "--listen", value, "--control", "/nonexistent/x.sock"],
                          cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "argument --listen" in proc.stderr and "ADDRESS:PORT" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_igd_service_forms():
    assert parse_services("ip") == [("ip", None)]
    assert parse_services("ip=Disconnected,ip") == [("ip", "Disconnected"), ("ip", None)]
    assert parse_services("tr064-ppp,ppp=Connecting") == [("tr064-ppp", None), ("ppp", "Connecting")]


@pytest.mark.parametrize("value, what", [("bogus", "igd service must be one of"), ("ip=Down", "status must be one of")])
def test_bad_igd_service_is_a_usage_error_naming_the_option(value, what):
    proc = subprocess.run([sys.executable, "-m", "simgw", "--igd", "v2", "--igd-service", value],
                          cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2 and "argument --igd-service" in proc.stderr and what in proc.stderr
    assert "Traceback" not in proc.stderr
