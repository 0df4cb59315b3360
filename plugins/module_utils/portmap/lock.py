# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-host lock: one lock file serializes every exchange with the gateway.

RFC 6886 section 3.1 asks clients on one host not to interleave requests.  The
ledger takes the same lock, so there is only one lock and no ordering to get wrong.
The lock is reentrant within one HostLock object (the ledger holds it while the
client runs its exchanges); two HostLock objects exclude each other even in one
process, because flock() locks belong to open file descriptions.

The lock file lives beside the ledger (``.portmap-natpmp.lock`` in the ledger's
folder), so only the folder's owner (the renewal job's user) and root can take it:
``flock()`` needs only a descriptor, and a lock file other users could open would let
any of them stop every renewal.  The file is made with mode 0600 and belongs to the
folder's owner; it is opened with ``O_NOFOLLOW``, and a lock that is not a regular
file, or belongs to anyone but root or the folder's owner, is refused.  So is a
folder that users other than its owner and root can write.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from _thread import RLock  # threading.RLock itself, without importing threading

from .errors import LockTimeout, PortmapError

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Callable, Optional

LOCK_NAME = ".portmap-natpmp.lock"
LOCK_MODE = 0o600


def lock_path_for(ledger_path: str) -> str:
    """The lock file that goes with a ledger: beside it, in the same folder."""
    return os.path.join(os.path.dirname(os.path.abspath(ledger_path)), LOCK_NAME)


def check_private_folder(folder: str, what: str) -> os.stat_result:
    """The folder's status, unless users other than its owner and root could write in it."""
    try:
        status = os.stat(folder)
    except FileNotFoundError:
        raise PortmapError(f"the {what} folder {folder} does not exist") from None
    except OSError as exc:
        raise PortmapError(f"cannot examine the {what} folder {folder}: {exc.strerror}") from None
    if not stat.S_ISDIR(status.st_mode):
        raise PortmapError(f"the {what} folder {folder} is not a folder")
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PortmapError(
            f"the {what} folder {folder} is writable by users other than its owner (mode "
            f"{status.st_mode & 0o7777:04o}): any of them could take the lock or replace the ledger; use a "
            f"folder that only its owner can write (chmod go-w {folder}, or another folder)"
        )
    return status


class HostLock:
    """The lock file at ``path``.  With ``missing_ok`` (the default ledger on a host where its folder
    was never made: nothing is recorded, and a read makes nothing), a missing folder is no error:
    the lock then serializes this process only, until the folder exists."""

    def __init__(
        self,
        path: str,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        missing_ok: bool = False,
    ) -> None:
        self.path = path
        self.missing_ok = missing_ok
        self.timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self._fd: Optional[int] = None
        self._depth = 0
        self._mutex = RLock()

    def _open(self) -> int:
        folder = os.path.dirname(os.path.abspath(self.path))
        folder_status = check_private_folder(folder, "lock file's")
        owner = folder_status.st_uid
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, LOCK_MODE)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PortmapError(f"the lock file {self.path} is a symbolic link; refusing to use it "
                                   "(remove it: the lock is made again when needed)") from None
            raise PortmapError(f"cannot open the lock file {self.path}: {exc.strerror}") from None
        try:
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                raise PortmapError(f"the lock file {self.path} is not a regular file; refusing to use it")
            if status.st_uid not in (0, owner):
                raise PortmapError(
                    f"the lock file {self.path} belongs to user id {status.st_uid}, not to root or to the "
                    f"owner of its folder (user id {owner}); refusing to use it (remove it: the lock is made again)"
                )
            if os.geteuid() == 0 and (status.st_uid, status.st_gid) != (owner, folder_status.st_gid):
                os.fchown(fd, owner, folder_status.st_gid)  # root made it: the job's user must be able to open it too
            if status.st_mode & 0o7777 != LOCK_MODE:
                os.fchmod(fd, LOCK_MODE)
        except PortmapError:
            os.close(fd)
            raise
        except OSError as exc:
            os.close(fd)
            raise PortmapError(f"cannot prepare the lock file {self.path}: {exc.strerror}") from None
        return fd

    def acquire(self) -> None:
        self._mutex.acquire()
        if self._depth:
            self._depth += 1
            return
        try:
            if self.missing_ok and not os.path.isdir(os.path.dirname(os.path.abspath(self.path))):
                self._depth = 1  # no folder, no file to lock: this process only (release knows: no descriptor)
                return
            fd = self._open()
            deadline = self._clock() + self.timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        os.close(fd)
                        raise PortmapError(f"cannot lock {self.path}: {exc.strerror}") from exc
                    if self._clock() >= deadline:
                        os.close(fd)
                        raise LockTimeout(
                            f"another process holds the lock {self.path} for more than {self.timeout:g} s"
                        ) from None
                    self._sleep(0.01)
        except BaseException:
            self._mutex.release()
            raise
        self._fd = fd
        self._depth = 1

    def release(self) -> None:
        if not self._depth:
            raise RuntimeError("release of a HostLock that is not held")
        self._depth -= 1
        if not self._depth and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._mutex.release()

    @property
    def held(self) -> bool:
        return self._depth > 0

    def __enter__(self) -> "HostLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class ProcessLock:
    """The lock of a client used without a ledger: it serializes this process only."""

    def __init__(self) -> None:
        self.path = ""
        self._mutex = RLock()
        self._depth = 0

    def __enter__(self) -> "ProcessLock":
        self._mutex.acquire()
        self._depth += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._depth -= 1
        self._mutex.release()

    @property
    def held(self) -> bool:
        return self._depth > 0
