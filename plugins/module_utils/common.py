# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the modules share: their common options, and the one place errors become fail_json."""

from __future__ import annotations

from typing import Any, Callable, Dict

from ansible_collections.portmap.natpmp.plugins.module_utils.portmap.client import Client
from ansible_collections.portmap.natpmp.plugins.module_utils.portmap.errors import InputError, PortmapError
from ansible_collections.portmap.natpmp.plugins.module_utils.portmap.ledger import open_ledger
from ansible_collections.portmap.natpmp.plugins.module_utils.portmap.manage import ApplyError

COMMON_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "gateway": {"type": "str"},
    "source_address": {"type": "str"},
    "method": {"type": "str", "default": "auto", "choices": ["auto", "pcp", "natpmp", "upnp"]},
    "upnp_url": {"type": "str"},
    "description": {"type": "str"},
    "timeout": {"type": "float", "default": 3.0},
    "ledger_path": {"type": "path"},
}


def open_ledger_and_client(module: Any, create_folder: bool = True) -> Any:
    """The ledger and a client, from the common options; no packet is sent.

    ``create_folder`` False (natpmp_info, check mode): a missing default folder is an empty
    ledger and is not made; the client then serializes its requests within this process only.
    """
    params = module.params
    if params["timeout"] <= 0:
        raise InputError(f"timeout must be a positive number of seconds, got {params['timeout']}")
    ledger = open_ledger(params["ledger_path"], create_folder)
    ledger.load()  # a ledger that cannot be read fails here, before any request
    client = Client(  # validates the options and the gateway (or finds it); sends nothing
        params["gateway"],
        timeout=params["timeout"],
        source_address=params["source_address"],
        lock=ledger.lock,
        method=params["method"],
        upnp_url=params["upnp_url"],
        description=params["description"],
    )
    return ledger, client


def execute(module: Any, work: Callable[[], Dict[str, Any]]) -> None:
    """Run ``work`` and exit: its result, or fail_json with a message a sysadmin can act on.

    Only this package's own errors (PortmapError: bad input, what the gateway said, the
    ledger) become a plain message; any other exception is a bug and keeps its traceback.
    """
    try:
        result = work()
    except ApplyError as exc:
        details = dict(exc.result)
        _warn(module, details)
        diff = details.pop("diff", None)
        if module._diff and diff is not None:
            details["diff"] = diff
        module.fail_json(msg=str(exc), **details)
    except PortmapError as exc:
        module.fail_json(msg=str(exc))
    _warn(module, result)
    diff = result.pop("diff", None)
    if module._diff and diff is not None:
        result["diff"] = diff
    module.exit_json(**result)


def _warn(module: Any, result: Dict[str, Any]) -> None:
    """The result's ``warnings`` (e.g. a public address no one can reach) become module warnings."""
    for text in result.pop("warnings", None) or []:
        module.warn(text)
