"""The modules' entry points, as Ansible runs them: main() with module arguments, against the
simulated gateway on a loopback address of the test's own (port 5351, as the modules speak).

The modules import the collection as ``ansible_collections.portmap.natpmp``: ansible-test
units provides that package; a plain pytest run gets it from a tree that links this checkout.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
try:
    import ansible_collections.portmap.natpmp  # noqa: F401  pylint: disable=unused-import
except ImportError:
    _ROOT = tempfile.mkdtemp(prefix="portmap-collections-")  # outside the checkout: nothing collects it twice
    atexit.register(shutil.rmtree, _ROOT, True)
    os.makedirs(os.path.join(_ROOT, "ansible_collections", "portmap"))
    os.symlink(REPO, os.path.join(_ROOT, "ansible_collections", "portmap", "natpmp"))
    sys.path.insert(0, _ROOT)

# pylint: disable=wrong-import-position
from ansible.module_utils.testing import patch_module_args

from simgw import SimulatedGateway


@pytest.fixture
def gateway(loopback_address, tmp_path):
    """The simulated gateway (the modules' lock goes beside the test's ledger)."""
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock")) as simulated:
        yield simulated


@pytest.fixture
def run_module(capsys):
    """run_module(module, **args): main() with those arguments; returns (exit status, result)."""

    def run(module, check_mode=False, diff=False, **args):
        args.update(_ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(args), pytest.raises(SystemExit) as exited:
            module.main()
        return exited.value.code, json.loads(capsys.readouterr().out)

    return run
