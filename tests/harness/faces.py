"""The faces the tests drive: the command (a process, as the job runs it) and the manager (the modules' code path)."""

from __future__ import annotations

import os
import subprocess
import sys

from portmap.client import Client
from portmap.ledger import Ledger
from portmap.lock import HostLock
from portmap.manage import Desired, Manager

MODULE_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "plugins", "module_utils")
WANT = [Desired("tcp", 8080, 8080, 3600)]


def cli(gw, tmp_path, *args):
    """Run the command as a separate process, the way the job runs it."""
    argv = [sys.executable, "-c", "import sys; from portmap.cli import main; sys.exit(main())",
            "--gateway", gw.address, "--ledger", str(tmp_path / "ledger.json"), "--lock", str(tmp_path / "lock"),
            *args]
    env = dict(os.environ, PYTHONPATH=MODULE_UTILS)
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def manager(gw, tmp_path, check_mode=False, **client_args):
    """The modules' code path on a ledger in ``tmp_path``."""
    lock = HostLock(str(tmp_path / "lock"))
    ledger = Ledger(str(tmp_path / "ledger.json"), lock)
    client = Client(gw.address, lock=lock, **client_args)
    return Manager(ledger, client, check_mode=check_mode)
