"""The integration tests run on several pytest-xdist workers (`make integration`): the network
guard holds in every worker, and no two workers share a loopback address."""

from __future__ import annotations

import os
import subprocess
import sys

from tests import conftest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_workers_of_one_run_get_loopback_blocks_of_their_own(monkeypatch):
    for count in (1, 2, 4):
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(count))
        blocks = set()
        for worker in range(count):
            monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{worker}")
            blocks.add(conftest._block())  # pylint: disable=protected-access
        assert len(blocks) == count and all(1 <= block <= 250 for block in blocks), blocks


def test_a_run_without_workers_gets_a_block_too(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert 1 <= conftest._block() <= 250  # pylint: disable=protected-access
    address = conftest.next_loopback()
    assert address.startswith(f"127.{conftest._BLOCK}.")  # pylint: disable=protected-access


def test_the_network_guard_holds_in_every_worker():
    """The guard's own tests, on two workers: each worker refuses what the guard refuses."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-v", "-p", "no:cacheprovider",
                             "tests/unit/test_network_guard.py"], cwd=REPO, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[gw0] " in result.stdout and "[gw1] " in result.stdout and " passed" in result.stdout, result.stdout
