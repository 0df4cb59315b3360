"""The per-host lock: reentrant in one object, exclusive between objects and processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

from portmap.errors import LockTimeout, PortmapError
from portmap.lock import LOCK_NAME, HostLock, lock_path_for

from tests.unit.conftest import MODULE_UTILS, NOBODY, drop_to_nobody


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


def run_as_nobody(python, path):
    """What user nobody gets when it tries to take the lock at ``path`` (the error's text)."""
    out = subprocess.run([python, "-c", NOBODY_SCRIPT, MODULE_UTILS, path, "0.2"], capture_output=True,
                         text=True, check=False, timeout=30, cwd="/", preexec_fn=drop_to_nobody)
    assert out.returncode != 0, out.stdout
    return out.stderr


def as_nobody(python, path, timeout):
    out = subprocess.run([python, "-c", NOBODY_SCRIPT, MODULE_UTILS, path, str(timeout)], capture_output=True,
                         text=True, check=False, timeout=30, cwd="/", preexec_fn=drop_to_nobody)
    assert out.returncode == 0, out.stderr
    lock_result, access = out.stdout.splitlines()
    return access, lock_result


def _nobody_folder(parent):
    """A folder owned by user nobody, mode 0755: the ledger folder the role gives the job's user."""
    folder = os.path.join(parent, "job")
    os.mkdir(folder, 0o755)
    os.chown(folder, NOBODY, NOBODY)
    return folder


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o077])
def test_root_makes_the_lock_0600_for_the_folder_owner(unprivileged_python, shared_folder, umask):
    """root (the modules) makes the lock beside the ledger; it belongs to the folder's
    owner (the job's user), mode 0600 whatever the umask, and locks for both."""
    path = os.path.join(_nobody_folder(shared_folder), LOCK_NAME)
    old = os.umask(umask)
    try:
        root_lock = HostLock(path)
        root_lock.acquire()
    finally:
        os.umask(old)
    try:
        st = os.stat(path)
        assert (st.st_mode & 0o777, st.st_uid) == (0o600, NOBODY)
        # While root holds it, the job's user waits and times out: the lock is real for it too.
        assert as_nobody(unprivileged_python, path, 0.2) == ("writable", "timeout")
    finally:
        root_lock.release()
    assert as_nobody(unprivileged_python, path, 2) == ("writable", "locked True")


def test_another_user_cannot_take_the_lock(unprivileged_python, shared_folder):
    """Any local user could hold a lock file it can open and stop every renewal: it cannot open this one."""
    path = os.path.join(shared_folder, LOCK_NAME)  # root's folder, mode 0755
    with HostLock(path):
        pass
    assert os.stat(path).st_mode & 0o777 == 0o600
    out = run_as_nobody(unprivileged_python, path)
    assert "cannot open the lock file" in out and "Permission denied" in out
    # ...nor open it read-only for flock(), the way the old 0644 lock allowed
    probe = subprocess.run([unprivileged_python, "-c", "import os, sys; os.open(sys.argv[1], os.O_RDONLY)", path],
                           capture_output=True, text=True, check=False, cwd="/", preexec_fn=drop_to_nobody)
    assert probe.returncode != 0 and "PermissionError" in probe.stderr
    with HostLock(path, timeout=0.5) as lock:
        assert lock.held


def test_another_user_cannot_make_the_lock_first(unprivileged_python, shared_folder):
    path = os.path.join(shared_folder, LOCK_NAME)
    out = run_as_nobody(unprivileged_python, path)
    assert "Permission denied" in out
    assert not os.path.exists(path)


@pytest.mark.parametrize("mode", [0o1777, 0o777, 0o775, 0o757])
def test_a_folder_others_can_write_is_refused(tmp_path, mode):
    """In a folder others can write, anyone could make the lock first or replace it."""
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, mode)
    with pytest.raises(PortmapError, match=r"writable by users other than its owner .*chmod go-w"):
        HostLock(str(folder / LOCK_NAME)).acquire()
    assert not (folder / LOCK_NAME).exists()


def test_a_symlink_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    os.chmod(target, 0o644)
    path = tmp_path / LOCK_NAME
    path.symlink_to(target)
    with pytest.raises(PortmapError, match="is a symbolic link; refusing"):
        HostLock(str(path)).acquire()
    assert target.read_text() == "precious\n"
    assert os.stat(target).st_mode & 0o777 == 0o644  # not made the lock's 0600


def test_a_lock_of_another_user_is_refused(tmp_path):
    path = tmp_path / LOCK_NAME
    path.write_text("")
    os.chown(path, 4321, 4321)
    with pytest.raises(PortmapError, match="belongs to user id 4321, not to root or to the owner of its folder"):
        HostLock(str(path)).acquire()


def test_a_lock_that_is_not_a_file_is_refused(tmp_path):
    (tmp_path / LOCK_NAME).mkdir()
    with pytest.raises(PortmapError, match="cannot open the lock file|not a regular file"):
        HostLock(str(tmp_path / LOCK_NAME)).acquire()


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(PortmapError, match="folder .*nothere does not exist"):
        HostLock(str(tmp_path / "nothere" / LOCK_NAME)).acquire()


def test_the_lock_goes_beside_the_ledger():
    assert lock_path_for("/var/lib/portmap-natpmp/ledger.json") == "/var/lib/portmap-natpmp/.portmap-natpmp.lock"
    assert lock_path_for("relative.json") == os.path.join(os.getcwd(), ".portmap-natpmp.lock")


def test_lock_timeout_is_measured_on_the_injected_clock(tmp_path):
    path = str(tmp_path / "lock")
    clock = StepClock()
    with HostLock(path):
        waiter = HostLock(path, timeout=0.5, clock=clock, sleep=clock.sleep)
        with pytest.raises(LockTimeout, match=str(tmp_path)):
            waiter.acquire()
    assert 0.5 <= clock.now < 0.6
    assert not waiter.held
