"""The per-host lock: reentrant in one object, exclusive between objects and processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

from portmap.errors import LockTimeout
from portmap.lock import HostLock

from tests.unit.conftest import MODULE_UTILS, drop_to_nobody


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
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, MODULE_UTILS, path],
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


NOBODY_SCRIPT = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[1])
    from portmap.errors import LockTimeout
    from portmap.lock import HostLock
    path = sys.argv[2]
    lock = HostLock(path, timeout=float(sys.argv[3]))
    try:
        lock.acquire()
    except LockTimeout:
        print("timeout")
    else:
        print("locked", lock.held)
        lock.release()
    try:
        os.close(os.open(path, os.O_RDWR))
        print("writable")
    except PermissionError:
        print("read-only")
""")


@pytest.fixture
def shared_folder():
    """A folder user nobody can enter (pytest's tmp_path is 0700); removed afterwards."""
    folder = tempfile.mkdtemp(prefix="portmap-lock-")
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder)


def as_nobody(python, path, timeout):
    out = subprocess.run([python, "-c", NOBODY_SCRIPT, MODULE_UTILS, path, str(timeout)], capture_output=True,
                         text=True, check=False, timeout=30, cwd="/", preexec_fn=drop_to_nobody)
    assert out.returncode == 0, out.stderr
    lock_result, access = out.stdout.splitlines()
    return access, lock_result


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_another_user_locks_a_root_made_file(unprivileged_python, shared_folder, umask):
    """The renewal job runs unprivileged: flock() on a read-only descriptor is enough,
    and the file root made is 0644 whatever root's umask."""
    path = os.path.join(shared_folder, "lock")
    old = os.umask(umask)
    try:
        root_lock = HostLock(path)
        root_lock.acquire()
    finally:
        os.umask(old)
    try:
        st = os.stat(path)
        assert (st.st_mode & 0o777, st.st_uid) == (0o644, 0)
        # While root holds it, nobody waits and times out: the lock is real for them too.
        assert as_nobody(unprivileged_python, path, 0.2) == ("read-only", "timeout")
    finally:
        root_lock.release()
    assert as_nobody(unprivileged_python, path, 2) == ("read-only", "locked True")


def test_root_locks_a_file_the_job_user_made_in_a_sticky_folder(unprivileged_python, shared_folder):
    """After a reboot /run/lock is empty and the unprivileged job may create the file first."""
    sticky = os.path.join(shared_folder, "lock-dir")
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    path = os.path.join(sticky, "lock")
    assert as_nobody(unprivileged_python, path, 2) == ("writable", "locked True")
    assert os.stat(path).st_uid == 65534
    with HostLock(path, timeout=1) as lock:
        assert lock.held


def test_an_existing_lock_file_is_opened_without_o_creat(tmp_path, monkeypatch):
    """With fs.protected_regular (the systemd default) root may not O_CREAT-open another
    user's file in a sticky folder such as /run/lock; an existing file is opened plainly."""
    import portmap.lock as lock_module

    path = str(tmp_path / "lock")
    with HostLock(path):  # creates it
        pass
    flags = []
    real_open = os.open

    def spy(file, flag, *args):
        if file == path:
            flags.append(flag)
        return real_open(file, flag, *args)

    monkeypatch.setattr(lock_module.os, "open", spy)
    with HostLock(path):
        pass
    assert flags and not any(flag & os.O_CREAT for flag in flags)
    assert all(flag & (os.O_WRONLY | os.O_RDWR) == 0 for flag in flags)


def test_a_new_lock_file_is_0644_whatever_the_umask(tmp_path):
    path = str(tmp_path / "lock")
    old = os.umask(0o077)
    try:
        with HostLock(path):
            pass
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_lock_timeout_is_measured_on_the_injected_clock(tmp_path):
    path = str(tmp_path / "lock")
    clock = StepClock()
    with HostLock(path):
        waiter = HostLock(path, timeout=0.5, clock=clock, sleep=clock.sleep)
        with pytest.raises(LockTimeout, match=str(tmp_path)):
            waiter.acquire()
    assert 0.5 <= clock.now < 0.6
    assert not waiter.held
