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

import json
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from .epoch import EpochObservation
from .errors import PortmapError
from .lock import HostLock

SCHEMA_VERSION = 1
DEFAULT_PATH = "/var/lib/portmap-natpmp/ledger.json"
NEW_FILE_MODE = 0o644

# Migrations from older schema versions: MIGRATIONS[n] turns a version-n document
# into a version n+1 document.  Version 1 is the first published format.
MIGRATIONS: Dict[int, Callable[[Dict[str, Any]], Dict[str, Any]]] = {}


class LedgerError(PortmapError):
    """The ledger cannot be read, parsed or written."""


@dataclass
class Renewal:
    """The outcome of the last request for a mapping."""

    time: float
    ok: bool
    error: str = ""


@dataclass
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
    method: str = "natpmp"
    nonce: str = ""
    public_address: str = ""
    last_renewal: Optional[Renewal] = None

    @property
    def key(self) -> Tuple[str, str, int]:
        return (self.gateway, self.protocol, self.internal_port)

    def time_left(self, now: float) -> float:
        return max(0.0, self.expires_at - now)

    def expired(self, now: float) -> bool:
        return self.expires_at <= now

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
            method=_typed(data, "method", str, "natpmp"),
            nonce=_nonce(data),
            public_address=_typed(data, "public_address", str, ""),
            last_renewal=Renewal(**renewal) if renewal else None,
        )


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
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"mapping entry field '{name}' has the wrong type ({type(value).__name__})")
    return value


@dataclass
class LedgerData:
    entries: List[Entry] = field(default_factory=list)

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
        return {"schema": SCHEMA_VERSION, "mappings": [e.to_dict() for e in self.entries]}


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
    return LedgerData(sorted(entries, key=lambda e: e.key))


class Ledger:
    def __init__(self, path: str = DEFAULT_PATH, lock: Optional[HostLock] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.lock = lock or HostLock()
        self.clock = clock

    def load(self) -> LedgerData:
        """The ledger's content; an empty ledger when the file does not exist."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return LedgerData()
        except (OSError, UnicodeDecodeError) as exc:
            raise LedgerError(f"cannot read ledger {self.path}: {exc}") from None
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise LedgerError(f"ledger {self.path} is not valid JSON ({exc}); it was left untouched") from None
        return parse_document(document, self.path)

    def save(self, data: LedgerData) -> None:
        """Write atomically, keeping the existing file's owner and mode."""
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        except OSError as exc:
            raise LedgerError(f"cannot stat ledger {self.path}: {exc.strerror}") from None
        text = json.dumps(data.to_document(), indent=2, sort_keys=True) + "\n"
        try:
            fd, temporary = tempfile.mkstemp(prefix=".ledger-", suffix=".tmp", dir=folder)
        except OSError as exc:
            raise LedgerError(f"cannot write ledger {self.path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            if current is not None:
                mode, uid, gid = current.st_mode & 0o7777, current.st_uid, current.st_gid
            else:
                folder_stat = os.stat(folder)
                mode, uid, gid = NEW_FILE_MODE, folder_stat.st_uid, folder_stat.st_gid
            os.chmod(temporary, mode)
            if os.geteuid() == 0:
                os.chown(temporary, uid, gid)
            os.replace(temporary, self.path)
        except OSError as exc:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise LedgerError(f"cannot write ledger {self.path}: {exc.strerror or exc}") from None
        try:
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass

    @contextmanager
    def transaction(self) -> Iterator[LedgerData]:
        """Hold the host lock, yield the content, write it back if it changed.

        The content is written back even when the body raises, so what was done
        before an error (a mapping granted, a renewal result) is never lost.
        """
        with self.lock:
            data = self.load()
            before = data.to_document()
            try:
                yield data
            finally:
                if data.to_document() != before:
                    self.save(data)
