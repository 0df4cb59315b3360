"""A recording stand-in for ``systemctl``, for test hosts only.

It exists only because systemd is not PID 1 on the test machines: there, the renewal role's
``ansible.builtin.systemd_service`` tasks have no systemd to talk to. The fleet installs it as
``/usr/local/sbin/systemctl`` inside a host's own view of files (``create --systemd HOST``), never
on the machine. It answers what that module asks (``daemon-reload``, ``show``, ``is-enabled``,
``is-active``) and records what it is told (``enable``, ``disable``, ``start``, ``stop``,
``restart``) in ``/var/lib/systemctl-standin/units.json``; it starts nothing. The fleet's
``run-unit`` command runs a unit's ExecStart as its user, so the unit's command is really tested.

A unit is loaded when its file is in one of UNIT_DIRS; every call is appended to ``calls``.
"""

from __future__ import annotations

import json
import os
import sys

STATE = "/var/lib/systemctl-standin/units.json"
UNIT_DIRS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
COMMANDS = ("daemon-reload", "show", "is-enabled", "is-active", "enable", "disable", "start", "stop", "restart")


def _load():
    try:
        with open(STATE, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {"units": {}, "calls": []}


def _save(state):
    os.makedirs(os.path.dirname(STATE), exist_ok=True)
    with open(STATE + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
    os.replace(STATE + ".tmp", STATE)


def _loaded(unit):
    return any(os.path.exists(os.path.join(folder, unit)) for folder in UNIT_DIRS)


def main(argv):
    words = [word for word in argv if not word.startswith("-")]
    if not words:
        print("systemctl stand-in: no command", file=sys.stderr)
        return 1
    command, units = words[0], words[1:]
    if command not in COMMANDS:
        print(f"systemctl stand-in: {command} is not handled", file=sys.stderr)
        return 1
    state = _load()
    state["calls"].append(" ".join(words))
    status = 0
    for unit in units:
        record = state["units"].setdefault(unit, {"enabled": False, "active": False})
        if command == "show":
            loaded = _loaded(unit)
            print(f"Id={unit}\nLoadState={'loaded' if loaded else 'not-found'}\n"
                  f"ActiveState={'active' if record['active'] else 'inactive'}\n"
                  f"SubState={'running' if record['active'] else 'dead'}\n"
                  f"UnitFileState={('enabled' if record['enabled'] else 'disabled') if loaded else ''}")
        elif command == "is-enabled":
            print("enabled" if record["enabled"] else "disabled")
            status = status or (0 if record["enabled"] else 1)
        elif command == "is-active":
            print("active" if record["active"] else "inactive")
            status = status or (0 if record["active"] else 3)
        elif command in ("enable", "disable", "start", "stop", "restart"):
            if not _loaded(unit) and command != "stop":
                print(f"Unit {unit} not found.", file=sys.stderr)
                status = 5
                continue
            key, value = {"enable": ("enabled", True), "disable": ("enabled", False), "start": ("active", True),
                          "stop": ("active", False), "restart": ("active", True)}[command]
            record[key] = value
            record.setdefault("restarts", 0)
            record["restarts"] += command == "restart"
    _save(state)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
