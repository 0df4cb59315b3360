"""Fixtures for tests that need sealed network namespaces or real peers."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.harness import miniupnpd as miniupnpd_mod
from tests.harness.playbook import ANSIBLE_PLAYBOOK, collections_tree
from tests.harness.netns import Topology, existing_namespaces, netns_available
from simgw import SimulatedGateway


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
    """One host behind a gateway; removed after the test, also on failure.

    Only this test's own namespaces are checked afterwards: other tests (pytest-xdist workers,
    other runs on the machine) make and remove theirs at the same time.
    """
    topo = Topology(hosts=1).create()
    try:
        topo.assert_sealed()
        yield topo
    finally:
        topo.destroy()
        left = set(topo.namespaces) & set(existing_namespaces())
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


@pytest.fixture(scope="session")
def collections_path(tmp_path_factory):
    """A collections tree whose portmap.natpmp is this checkout, for ansible-playbook runs."""
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip(f"{ANSIBLE_PLAYBOOK} is not installed")
    return collections_tree(tmp_path_factory.mktemp("collections"))


def pytest_collection_modifyitems(config, items):  # pylint: disable=unused-argument
    """The tests marked ``long`` first (each worker of a parallel run takes the next test as it gets free: the
    longest started last would leave the others idle at the end), the others in their order."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
