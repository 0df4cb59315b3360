"""Fixtures for tests that need sealed network namespaces or real peers."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from tests.harness import miniupnpd as miniupnpd_mod
from tests.harness.netns import Topology, existing_namespaces, netns_available
from simgw import SimulatedGateway

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")


@pytest.fixture
def gw(loopback_address, tmp_path):
    """The simulated gateway on a loopback address of this test's own, with a control socket."""
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock")) as gateway:
        yield gateway


@pytest.fixture
def netns_ok():
    ok, why = netns_available()
    if not ok:
        pytest.skip(why)


@pytest.fixture
def topology(netns_ok):
    """One host behind a gateway; removed after the test, also on failure."""
    before = set(existing_namespaces())
    topo = Topology(hosts=1).create()
    try:
        topo.assert_sealed()
        yield topo
    finally:
        topo.destroy()
        left = set(existing_namespaces()) - before
        assert not left, f"namespaces left behind: {left}"


@pytest.fixture
def miniupnpd(topology):
    ok, why = miniupnpd_mod.available()
    if not ok:
        pytest.skip(why)
    with miniupnpd_mod.Miniupnpd(topology) as daemon:
        yield daemon
    assert not os.path.exists(f"/proc/{daemon.pid}") if daemon.pid else True


@pytest.fixture
def natpmpc():
    path = shutil.which("natpmpc")
    if not path:
        pytest.skip("natpmpc is not installed (make deps installs it)")
    return path


def client_script(body: str) -> list:
    """argv running ``body`` with the client package importable, printing JSON lines."""
    prelude = (
        "import json, sys\n"
        f"sys.path.insert(0, {MODULE_UTILS!r})\n"
        "from portmap.client import Client\n"
        "from portmap import errors\n"
        "def out(value):\n"
        "    print(json.dumps(value), flush=True)\n"
    )
    return [sys.executable, "-c", prelude + body]
