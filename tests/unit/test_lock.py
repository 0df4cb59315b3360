"""The per-host lock: reentrant in one object, exclusive between objects and processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from portmap.errors import LockTimeout
from portmap.lock import HostLock


class StepClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_reentrant_within_one_object(tmp_path):
    lock = HostLock(str(tmp_path / "lock"))
    with lock:
        with lock:
            assert lock.held
        assert lock.held
    assert not lock.held


def test_two_objects_exclude_each_other(tmp_path):
    path = str(tmp_path / "lock")
    clock = StepClock()
    first = HostLock(path)
    second = HostLock(path, timeout=2.0, clock=clock, sleep=clock.sleep)
    with first:
        with pytest.raises(LockTimeout) as caught:
            second.acquire()
        assert path in str(caught.value)
        assert clock.now >= 2.0
    second.acquire()
    second.release()


def test_release_without_acquire_is_an_error(tmp_path):
    with pytest.raises(RuntimeError):
        HostLock(str(tmp_path / "lock")).release()


HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from portmap.lock import HostLock
    lock = HostLock(sys.argv[2])
    lock.acquire()
    print("held", flush=True)
    sys.stdin.readline()
    lock.release()
""")


def test_across_processes(tmp_path):
    path = str(tmp_path / "lock")
    module_utils = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "module_utils")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, module_utils, path],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeout):
            HostLock(path, timeout=0.2).acquire()
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(10) == 0
        lock = HostLock(path, timeout=2.0)
        lock.acquire()
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_another_user_locks_a_root_made_file(tmp_path):
    """The renewal job runs unprivileged: flock() on a read-only descriptor is enough."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create the file as root and lock it as another user")
    import shutil
    import tempfile
    folder = tempfile.mkdtemp(prefix="portmap-lock-")
    try:
        os.chmod(folder, 0o755)
        path = os.path.join(folder, "lock")
        with HostLock(path):
            pass
        assert oct(os.stat(path).st_mode & 0o777) == "0o644" and os.stat(path).st_uid == 0
        module_utils = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "module_utils"))
        script = ("import sys; sys.path.insert(0, sys.argv[1]); from portmap.lock import HostLock; "
                  "l = HostLock(sys.argv[2], timeout=1); l.acquire(); print('locked', l.held)")
        out = subprocess.run([sys.executable, "-c", script, module_utils, path], capture_output=True, text=True,
                             check=False, preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
        assert out.stdout.strip() == "locked True", out.stderr
    finally:
        shutil.rmtree(folder)
