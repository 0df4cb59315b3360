"""The one way the tests, the benchmarks and the demo run ``ansible-playbook``.

The collection under test is this checkout, seen through a collections tree whose
``ansible_collections/portmap/natpmp`` is a symbolic link to it; Ansible's own state
goes into the caller's folder, so runs never touch ``~/.ansible``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "tests" / "integration" / "playbooks"
BIN = Path(os.environ.get("PORTMAP_ANSIBLE_BIN") or Path(sys.executable).parent)
ANSIBLE_PLAYBOOK = BIN / "ansible-playbook"


def collections_tree(root: Path) -> Path:
    """A collections path (``root``) whose portmap.natpmp is this checkout."""
    namespace = root / "ansible_collections" / "portmap"
    namespace.mkdir(parents=True, exist_ok=True)
    link = namespace / "natpmp"
    if not link.exists():
        link.symlink_to(REPO)
    return root


def environment(collections_path: Optional[Path], workdir: Path) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-local"),
        ANSIBLE_HOME=str(workdir / "ansible-home"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        PYTHONPATH=str(REPO),
    )
    if collections_path is not None:
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collections_path)
    return env


def run_playbook(playbook: Any, workdir: Path, extra_vars: Optional[Dict[str, Any]] = None,
                 collections_path: Optional[Path] = None, check: bool = False, args: Sequence[str] = (),
                 timeout: float = 600, quiet: bool = False) -> Tuple[subprocess.CompletedProcess, str]:
    """Run ``playbook`` (a name in tests/integration/playbooks, or a path) on localhost.

    Returns the finished process and the last recap line ("" when there is none).
    """
    path = Path(playbook)
    if not path.is_absolute():
        path = PLAYBOOKS / path
    extra = dict(extra_vars or {})
    extra.setdefault("ansible_python_interpreter", sys.executable)
    argv = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", str(path), "-e", json.dumps(extra), *args]
    if check:
        argv.append("--check")
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=environment(collections_path, workdir),
                          cwd=str(workdir), timeout=timeout, check=False)
    recap = [line for line in proc.stdout.splitlines() if line.startswith("localhost ") and "ok=" in line]
    last = recap[-1] if recap else ""
    if not quiet:
        print(f"{path.name}: {time.monotonic() - started:.1f} s, recap: {last or None}")
        if proc.returncode != 0:
            print(proc.stdout[-20000:])
            print(proc.stderr[-5000:])
    return proc, last


def recap_counts(recap: str) -> Dict[str, int]:
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", recap)}


def ctl_argv(gw):
    """The simulated gateway's control command, as a playbook runs it."""
    return [sys.executable, "-m", "simgw", "ctl", gw.control_path]  # PYTHONPATH is the checkout


def base_vars(gw, tmp_path, method="auto"):
    """The variables every mapping playbook takes: the gateway, the ledger, the simulator's control."""
    return {
        "method": method,
        "gateway": gw.address,
        "ledger_path": str(tmp_path / "ledger.json"),
        "simgw_ctl": ctl_argv(gw),
    }
