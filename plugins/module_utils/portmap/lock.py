# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-host lock: one lock file serializes every exchange with the gateway.

RFC 6886 section 3.1 asks clients on one host not to interleave requests.  The
ledger takes the same lock, so there is only one lock and no ordering to get wrong.
The lock is reentrant within one HostLock object (the ledger holds it while the
client runs its exchanges); two HostLock objects exclude each other even in one
process, because flock() locks belong to open file descriptions.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
import threading
import time
from typing import Callable, Optional

from .errors import LockTimeout, PortmapError

LOCK_NAME = "portmap-natpmp.lock"


def default_lock_path() -> str:
    """/run/lock on Linux, /var/run elsewhere, else the temporary folder."""
    for folder in ("/run/lock", "/var/run"):
        if os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK):
            return os.path.join(folder, LOCK_NAME)
    return os.path.join(tempfile.gettempdir(), LOCK_NAME)


class HostLock:
    def __init__(
        self,
        path: Optional[str] = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = path or default_lock_path()
        self.timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self._fd: Optional[int] = None
        self._depth = 0
        self._mutex = threading.RLock()

    def _open(self) -> int:
        # Read-only is enough for flock(), so a job user can lock a file root made.
        # An existing file is opened without O_CREAT: with fs.protected_regular (the
        # systemd default) an O_CREAT open of another user's file in a sticky folder
        # such as /run/lock fails even for root.  A new file gets mode 0644 whatever
        # the umask, so every user can open it.
        try:
            for _attempt in range(3):
                try:
                    return os.open(self.path, os.O_RDONLY)
                except FileNotFoundError:
                    pass
                try:
                    fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    continue  # another process made it meanwhile: open that one
                try:
                    os.fchmod(fd, 0o644)
                except OSError:
                    pass
                return fd
            return os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise PortmapError(f"cannot open lock file {self.path}: {exc.strerror}") from exc

    def acquire(self) -> None:
        self._mutex.acquire()
        if self._depth:
            self._depth += 1
            return
        try:
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
