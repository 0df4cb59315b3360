# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger: what this host has mapped, kept on the host.

NAT-PMP cannot list a gateway's mappings, so the modules and the renewal job keep
a JSON file per host.  Its format is specified in the collection's README.  Reads
never modify the file; writes are atomic (temporary file and rename in the same
folder), keep the file's owner and mode, and happen under the client's per-host
lock.  A ledger that cannot be read or parsed is an error naming its path, and the
file is left untouched.
"""

from __future__ import annotations

import errno
import json
import os
from contextlib import contextmanager

from . import defaults
from .methods import registry as methods
from .epoch import EpochObservation
from .errors import PortmapError
from .lock import HostLock, check_private_folder, lock_path_for
from .records import asdict, field, record_class

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

SCHEMA_VERSION = 2
DEFAULT_PATH = defaults.LEDGER_PATH
NEW_FILE_MODE = 0o644
RESERVE = 64 * 1024  # bytes reserved for the write before the first request, on top of the current size


def _schema_1_to_2(document: Dict[str, Any]) -> Dict[str, Any]:
    """Schema 2 adds what UPnP IGD needs: per mapping its internal client, description and whether
    the lease is permanent; per gateway the protocol it was last spoken with, its last epoch (or
    UPnP uptime) and what UPnP discovery found.  Every field of version 1 is kept as it was."""
    migrated = dict(document)
    mappings = document.get("mappings")
    if isinstance(mappings, list):
        migrated["mappings"] = [dict(item, internal_client=item.get("internal_client", ""),
                                     description=item.get("description", ""), permanent=item.get("permanent", False))
                                if isinstance(item, dict) else item for item in mappings]
    gateways: Dict[str, Any] = {}
    for item in migrated.get("mappings") or []:
        if not isinstance(item, dict) or not isinstance(item.get("gateway"), str):
            continue
        seen = item.get("epoch") if isinstance(item.get("epoch"), dict) else None
        known = gateways.get(item["gateway"])
        if known is None or (seen and (not known["epoch"] or seen.get("seen_at", 0) > known["epoch"].get("seen_at", 0))):
            gateways[item["gateway"]] = {"method": item.get("method", methods.LEGACY), "epoch": seen, "upnp": None}
    migrated.setdefault("gateways", gateways)
    return migrated


# Migrations from older schema versions: MIGRATIONS[n] turns a version-n document
# into a version n+1 document.  Version 1 is the first published format.
MIGRATIONS: Dict[int, Callable[[Dict[str, Any]], Dict[str, Any]]] = {1: _schema_1_to_2}


class LedgerError(PortmapError):
    """The ledger cannot be read, parsed or written."""


@record_class
class Renewal:
    """The outcome of the last request for a mapping."""

    time: float
    ok: bool
    error: str = ""


@record_class
class Notified:
    """The public endpoint the on-change hook was last told for a mapping."""

    external_port: int
    public_address: str


@record_class
class Entry:
    gateway: str
    protocol: str
    internal_port: int
    external_port: int  # granted
    lifetime: int  # granted
    granted_at: float
    expires_at: float
    requested_external_port: int
    requested_lifetime: int
    epoch: Optional[EpochObservation]
    method: str = methods.LEGACY
    nonce: str = ""
    public_address: str = ""
    last_renewal: Optional[Renewal] = None
    same_port: bool = False  # protocol "both": TCP and UDP are kept on one external port
    notified: Optional[Notified] = None  # None: the hook was never told of this mapping
    internal_client: str = ""  # UPnP IGD: the address the mapping points to
    description: str = ""  # UPnP IGD: the mapping's description on the gateway
    permanent: bool = False  # UPnP IGD: a lease without end (lifetime 0), kept until deleted

    @property
    def key(self) -> Tuple[str, str, int]:
        return (self.gateway, self.protocol, self.internal_port)

    def time_left(self, now: float) -> float:
        """Seconds until the lease ends (a permanent one: 0.0, it never ends; see ``expired``)."""
        return 0.0 if self.permanent else max(0.0, self.expires_at - now)

    def expired(self, now: float) -> bool:
        return not self.permanent and self.expires_at <= now

    @property
    def endpoint(self) -> Notified:
        return Notified(self.external_port, self.public_address)

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["epoch"] = self.epoch.to_dict() if self.epoch else None
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Entry":
        renewal = data.get("last_renewal")
        return cls(
            gateway=_typed(data, "gateway", str),
            protocol=_typed(data, "protocol", str),
            internal_port=_typed(data, "internal_port", int),
            external_port=_typed(data, "external_port", int),
            lifetime=_typed(data, "lifetime", int),
            granted_at=float(_typed(data, "granted_at", (int, float))),
            expires_at=float(_typed(data, "expires_at", (int, float))),
            requested_external_port=_typed(data, "requested_external_port", int),
            requested_lifetime=_typed(data, "requested_lifetime", int),
            epoch=EpochObservation.from_dict(data.get("epoch")),
            method=_typed(data, "method", str, methods.LEGACY),
            nonce=_nonce(data),
            public_address=_typed(data, "public_address", str, ""),
            last_renewal=Renewal(**renewal) if renewal else None,
            same_port=_typed(data, "same_port", bool, False),
            notified=_notified(data),
            internal_client=_typed(data, "internal_client", str, ""),
            description=_typed(data, "description", str, ""),
            permanent=_typed(data, "permanent", bool, False),
        )


def _notified(data: Dict[str, Any]) -> Optional[Notified]:
    """What the hook was told; a ledger from before this field counts as told of what it records."""
    if "notified" not in data:
        return Notified(_typed(data, "external_port", int), _typed(data, "public_address", str, ""))
    told = data["notified"]
    if told is None:
        return None
    if not isinstance(told, dict):
        raise ValueError("mapping entry field 'notified' is not an object")
    return Notified(_typed(told, "external_port", int), _typed(told, "public_address", str, ""))


def _nonce(data: Dict[str, Any]) -> str:
    """A PCP nonce: 24 hex digits, or empty (NAT-PMP)."""
    nonce = _typed(data, "nonce", str, "")
    if nonce and (len(nonce) != 24 or any(c not in "0123456789abcdefABCDEF" for c in nonce)):
        raise ValueError(f"mapping entry field 'nonce' is not 24 hex digits ({nonce!r})")
    return nonce


def _typed(data: Dict[str, Any], name: str, kind: Any, default: Any = None) -> Any:
    if name not in data:
        if default is not None:
            return default
        raise ValueError(f"mapping entry lacks '{name}'")
    value = data[name]
    wrong = not isinstance(value, bool) if kind is bool else isinstance(value, bool) or not isinstance(value, kind)
    if wrong:
        raise ValueError(f"mapping entry field '{name}' has the wrong type ({type(value).__name__})")
    return value


@record_class
class GatewayRecord:
    """What a run learnt of a gateway: the protocol spoken, the last epoch (UPnP: uptime), and what
    the methods keep between runs (``kept``, by the ledger's field: ``Method.keeps``; UPnP IGD: what
    discovery found, so the next run goes straight to SOAP)."""

    method: str
    epoch: Optional[EpochObservation] = None
    kept: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        document: Dict[str, Any] = {"method": self.method, "epoch": self.epoch.to_dict() if self.epoch else None}
        for name in methods.KEPT_FIELDS:
            document[name] = self.kept.get(name)
        return document

    @classmethod
    def from_dict(cls, data: Any) -> "GatewayRecord":
        if not isinstance(data, dict):
            raise ValueError("is not an object")
        kept: Dict[str, Any] = {}
        for name in methods.KEPT_FIELDS:
            if data.get(name) is not None:
                methods.keeping(name).check_kept(data[name])
                kept[name] = data[name]
        return cls(_typed(data, "method", str, methods.LEGACY), EpochObservation.from_dict(data.get("epoch")), kept)


@record_class
class LedgerData:
    entries: List[Entry] = field(default_factory=list)
    gateways: Dict[str, GatewayRecord] = field(default_factory=dict)

    def find(self, gateway: str, protocol: str, internal_port: int) -> Optional[Entry]:
        for entry in self.entries:
            if entry.key == (gateway, protocol, internal_port):
                return entry
        return None

    def put(self, entry: Entry) -> None:
        self.entries = [e for e in self.entries if e.key != entry.key] + [entry]
        self.entries.sort(key=lambda e: e.key)

    def remove(self, gateway: str, protocol: str, internal_port: int) -> Optional[Entry]:
        entry = self.find(gateway, protocol, internal_port)
        if entry is not None:
            self.entries.remove(entry)
        return entry

    def for_gateway(self, gateway: str) -> List[Entry]:
        return [e for e in self.entries if e.gateway == gateway]

    def last_epoch(self, gateway: str) -> Optional[EpochObservation]:
        """The most recent epoch observation recorded for ``gateway``."""
        seen = [e.epoch for e in self.for_gateway(gateway) if e.epoch is not None]
        return max(seen, key=lambda o: o.seen_at) if seen else None

    def to_document(self) -> Dict[str, Any]:
        return {"schema": SCHEMA_VERSION, "gateways": {k: v.to_dict() for k, v in sorted(self.gateways.items())},
                "mappings": [e.to_dict() for e in self.entries]}


def parse_document(document: Any, path: str) -> LedgerData:
    """Validate, migrate and parse a decoded ledger document."""
    if not isinstance(document, dict) or not isinstance(document.get("schema"), int):
        raise LedgerError(f"ledger {path} is not a portmap.natpmp ledger (no integer 'schema' field)")
    version = document["schema"]
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"ledger {path} has schema version {version}, newer than the {SCHEMA_VERSION} this "
            "version of portmap.natpmp understands; upgrade the collection"
        )
    while version < SCHEMA_VERSION:
        migrate = MIGRATIONS.get(version)
        if migrate is None:
            raise LedgerError(f"ledger {path} has schema version {version}, which cannot be migrated")
        document = migrate(document)
        version += 1
        document["schema"] = version
    mappings = document.get("mappings")
    if not isinstance(mappings, list):
        raise LedgerError(f"ledger {path} has no 'mappings' list")
    entries = []
    for index, item in enumerate(mappings):
        try:
            if not isinstance(item, dict):
                raise ValueError("mapping entry is not an object")
            entries.append(Entry.from_dict(item))
        except (TypeError, ValueError, KeyError) as exc:
            raise LedgerError(f"ledger {path}: mapping #{index} is invalid: {exc}") from None
    raw_gateways = document.get("gateways", {})
    if not isinstance(raw_gateways, dict):
        raise LedgerError(f"ledger {path}: 'gateways' is not an object")
    gateways = {}
    for address, item in raw_gateways.items():
        try:
            gateways[address] = GatewayRecord.from_dict(item)
        except (TypeError, ValueError, KeyError) as exc:
            raise LedgerError(f"ledger {path}: gateway {address!r} is invalid: {exc}") from None
    return LedgerData(sorted(entries, key=lambda e: e.key), gateways)


def prepare_ledger_path(path: Optional[str], create_folder: bool = True) -> str:
    """The ledger's path: the default one's folder (also when the default path is given) is created
    (mode 0755) unless ``create_folder`` is False (then a missing folder reads as an empty ledger);
    another folder the user named must exist."""
    if not path or os.path.abspath(path) == DEFAULT_PATH:
        folder = os.path.dirname(DEFAULT_PATH)
        if create_folder and not os.path.isdir(folder):
            try:
                os.makedirs(folder, mode=0o755)
                os.chmod(folder, 0o755)
            except OSError as exc:
                raise LedgerError(f"cannot create the ledger folder {folder}: {exc.strerror}") from None
        return DEFAULT_PATH
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise LedgerError(f"ledger_path {path}: the folder {folder} does not exist")
    return path


def open_ledger(path: Optional[str] = None, create_folder: bool = True, lock_path: Optional[str] = None) -> "Ledger":
    """The ledger the modules and the command use: ``path`` (None: the default ledger) and its lock.

    ``create_folder`` False (check mode, read-only commands): the default ledger's folder is not
    made; while it does not exist the ledger reads as empty and its lock serializes this process
    only.  A folder the user named (``path``, ``lock_path``) must exist.
    """
    path = prepare_ledger_path(path, create_folder)
    return Ledger(path, HostLock(lock_path) if lock_path else HostLock(lock_path_for(path), missing_ok=True))


class Ledger:
    """The ledger file and the per-host lock beside it (``lock_path_for(path)`` unless given)."""

    def __init__(self, path: str = DEFAULT_PATH, lock: Optional[HostLock] = None) -> None:
        self.path = path
        self.lock = lock or HostLock(lock_path_for(path))

    @property
    def folder(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    def load(self) -> LedgerData:
        """The ledger's content; an empty ledger when the file does not exist."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return LedgerData()
        except (OSError, UnicodeDecodeError) as exc:
            raise LedgerError(f"cannot read ledger {self.path}: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise LedgerError(f"ledger {self.path} is not valid JSON ({exc}); it was left untouched") from None
        return parse_document(document, self.path)

    def _reserve(self, consequence: str = "") -> Tuple[int, str]:
        """The temporary file the write will use, made now with room for it, so a folder that cannot
        take the write (read-only, full, not ours) fails before anything is sent."""
        if not os.path.isdir(self.folder):
            raise LedgerError(f"cannot write ledger {self.path}: the folder {self.folder} does not exist{consequence}")
        try:
            size = os.stat(self.path).st_size
        except OSError:
            size = 0
        temporary = ""
        try:
            fd, temporary = _make_temporary(self.folder)
            try:
                _fill(fd, size + RESERVE)
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            if temporary:
                _unlink(temporary)
            raise LedgerError(f"cannot write ledger {self.path}: {exc.strerror or exc}{consequence}") from None
        return fd, temporary

    def _commit(self, data: LedgerData, fd: int, temporary: str) -> None:
        """Write ``data`` into the reserved temporary file and move it in place, keeping owner and mode."""
        try:
            try:
                current: Optional[os.stat_result] = os.stat(self.path)
            except FileNotFoundError:
                current = None
            text = (json.dumps(data.to_document(), indent=2, sort_keys=True) + "\n").encode("utf-8")
            os.lseek(fd, 0, os.SEEK_SET)
            written = 0
            while written < len(text):
                written += os.write(fd, text[written:])
            os.ftruncate(fd, len(text))
            os.fsync(fd)
            if current is not None:
                mode, uid, gid = current.st_mode & 0o7777, current.st_uid, current.st_gid
            else:
                folder_stat = os.stat(self.folder)
                mode, uid, gid = NEW_FILE_MODE, folder_stat.st_uid, folder_stat.st_gid
            os.fchmod(fd, mode)
            if os.geteuid() == 0:
                os.fchown(fd, uid, gid)
            os.close(fd)
            fd = -1
            os.replace(temporary, self.path)
        except OSError as exc:
            if fd >= 0:
                os.close(fd)
            _unlink(temporary)
            raise LedgerError(f"cannot write ledger {self.path}: {exc.strerror or exc}") from None
        try:
            dir_fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass

    def save(self, data: LedgerData) -> None:
        """Write atomically (under the lock), keeping the existing file's owner and mode."""
        with self.lock:
            self._commit(data, *self._reserve())

    @contextmanager
    def transaction(self, undo: Optional[Callable[[LedgerData, LedgerData], str]] = None) -> Iterator[LedgerData]:
        """Hold the host lock, yield the content, write it back if it changed.

        Before the body runs (before any request), the ledger is read and the write is
        proven possible: its temporary file is made in the ledger's folder with room
        for the new content.  The content is written back even when the body raises,
        so what was done before an error (a mapping granted, a renewal result) is
        never lost.  When the write still fails, ``undo(before, after)`` is called to
        take back on the gateway what the ledger cannot record; its account joins the
        error.
        """
        if not os.path.isdir(self.folder):
            raise LedgerError(f"cannot write ledger {self.path}: the folder {self.folder} does not exist; nothing "
                              "was sent to the gateway")
        check_private_folder(self.folder, "ledger")
        with self.lock:
            data = self.load()
            before = parse_document(data.to_document(), self.path)
            fd, temporary = self._reserve("; nothing was sent to the gateway")
            try:
                yield data
            except BaseException:
                self._finish(before, data, fd, temporary, undo, raising=True)
                raise
            self._finish(before, data, fd, temporary, undo, raising=False)

    def _finish(self, before: LedgerData, data: LedgerData, fd: int, temporary: str,
                undo: Optional[Callable[[LedgerData, LedgerData], str]], raising: bool) -> None:
        if data.to_document() == before.to_document():
            os.close(fd)
            _unlink(temporary)
            return
        try:
            self._commit(data, fd, temporary)
        except LedgerError as exc:
            account = undo(before, data) if undo is not None else ""
            error = LedgerWriteFailed(f"{exc}{'; ' + account if account else ''}")
            if raising:  # the body's own error is the one to see; this one is chained to it
                raise error from exc
            raise error from None


class LedgerWriteFailed(LedgerError):
    """The ledger could not be written after the gateway was asked; the message says what was undone."""


def _make_temporary(folder: str) -> Tuple[int, str]:
    """A new file of our own in ``folder`` (tempfile.mkstemp's guarantees: O_EXCL, mode 0600, no symlink)."""
    for _attempt in range(100):
        path = os.path.join(folder, f".ledger-{os.urandom(6).hex()}.tmp")
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", folder)


def _fill(fd: int, size: int) -> None:
    """Make ``size`` bytes of room in the file (allocated, so a full disk shows now)."""
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
                raise
    block = b"\0" * 4096
    left = size
    while left > 0:
        left -= os.write(fd, block[:left])
    os.fsync(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
