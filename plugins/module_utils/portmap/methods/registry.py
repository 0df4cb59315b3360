# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The protocols the client speaks, in order of preference: one ``Method`` each (``base``).

(The package's ``__init__.py`` stays empty, as Ansible requires of module_utils packages.)

Each entry names a method and loads it only when asked for (``load``): a NAT-PMP run
imports no UPnP code.  The imports are static ``from .x import`` statements inside
functions, so Ansible's module bundler still finds every file.  A new protocol is one
module in this folder, one line in ``REGISTRY``, and its name in the user-facing choice lists
(``defaults.METHODS``, the modules' ``method`` option).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, Dict, Optional, Tuple


def _pcp() -> Any:
    from .pcp import PcpMethod  # pylint: disable=import-outside-toplevel

    return PcpMethod


def _natpmp() -> Any:
    from .natpmp import NatpmpMethod  # pylint: disable=import-outside-toplevel

    return NatpmpMethod


def _upnp() -> Any:
    from .upnp import UpnpMethod  # pylint: disable=import-outside-toplevel

    return UpnpMethod


# (name, title, what the ledger's gateway record keeps for it or None, loader), most preferred first
REGISTRY: Tuple[Tuple[str, str, Optional[str], Callable[[], Any]], ...] = (
    ("pcp", "PCP", None, _pcp),
    ("natpmp", "NAT-PMP", None, _natpmp),
    ("upnp", "UPnP IGD", "upnp", _upnp),
)
NAMES = tuple(name for name, _title, _keeps, _load in REGISTRY)
TITLES: Dict[str, str] = {name: title for name, title, _keeps, _load in REGISTRY}
KEPT_FIELDS = tuple(keeps for _name, _title, keeps, _load in REGISTRY if keeps)
LEGACY = "natpmp"  # the method of ledger entries written before the ledger recorded it (the first protocol spoken)
_LOADERS = {name: load for name, _title, _keeps, load in REGISTRY}


def load(name: str) -> Any:
    """The method class of ``name`` (KeyError: no such method)."""
    return _LOADERS[name]()


def title(name: Optional[str]) -> str:
    """How messages name the method ``name``."""
    return TITLES.get(name or "", name or "no protocol")


def keeping(field_name: str) -> Any:
    """The method class that keeps ``field_name`` in the ledger's gateway record."""
    return load(next(name for name, _title, keeps, _load in REGISTRY if keeps == field_name))
