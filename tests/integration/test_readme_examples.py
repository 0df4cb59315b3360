"""Every YAML example of the README and every module's EXAMPLES, run as a new user would run them.

The examples are read from the files themselves (README.md's ```yaml blocks; the modules'
EXAMPLES), so an example that breaks fails here. They run on a fresh host: a network namespace
behind the simulated gateway (the default route leads to it: gateway discovery is real) with its
own view of /etc, /usr/local and /var/log, and a /var/lib that starts empty
(tests/harness/fleet.py). The collection is installed from the README's requirements.yml. The
plays run in check mode first (nothing may be made: no folder, no mapping), then for real.
Only what cannot exist here is replaced: the example gateway address 192.168.1.1 (the simulated
gateway's), the STUN server (coturn, started on the WAN side), the inventory group (the host is
put in it) and the on-change hook (a script this test writes at the example's path).
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from simgw import control
from tests.harness.fleet import Fleet
from tests.harness.netns import netns_available, wait_for
from tests.harness.playbook import BIN, REPO, environment

HOST = "fresh"
EXAMPLE_GATEWAY = "192.168.1.1"
EXAMPLE_STUN = "stun.example.net:3478"
EXAMPLE_FOLDER = "/path/to/this/folder"
HOOK_RECORD = "/var/lib/portmap-natpmp/hook-was-told"
NAT = """table ip nat {
  chain postrouting { type nat hook postrouting priority srcnat; oifname "wan0" masquerade; }
}
"""


def readme_examples():
    """(where, text) of every ```yaml block of README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [(f"README.md yaml block {i + 1}", block) for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", text, re.S))]


def module_examples():
    """(where, text) of each module's EXAMPLES, read without importing the module."""
    found = []
    for path in sorted((REPO / "plugins" / "modules").glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "EXAMPLES" for t in node.targets):
                found.append((f"{path.name} EXAMPLES", node.value.value))
    return found


def test_the_examples_are_found():
    """What the run below takes: the README's requirements.yml, its task and role examples, both modules'."""
    kinds = [kind_of(yaml.safe_load(text)) for _where, text in readme_examples()]
    assert kinds.count("requirements") == 1 and kinds.count("tasks") >= 1 and kinds.count("plays") >= 1, kinds
    assert [where for where, _text in module_examples()] == ["natpmp_info.py EXAMPLES", "natpmp_mapping.py EXAMPLES"]


def kind_of(document):
    if isinstance(document, dict) and "collections" in document:
        return "requirements"
    if isinstance(document, list) and document and all(isinstance(item, dict) and "hosts" in item for item in document):
        return "plays"
    if isinstance(document, list) and document and all(isinstance(item, dict) for item in document):
        return "tasks"
    return "other"


@pytest.fixture
def fresh_host(tmp_path):
    ok, why = netns_available()
    if not ok:
        pytest.skip(why)
    if not shutil.which("turnserver"):
        pytest.skip("coturn (turnserver) is not installed (make deps installs it)")
    fleet = Fleet(str(tmp_path / "fleet"))
    stun = None
    try:
        began = time.monotonic()
        fleet.create([["simgw", HOST]], empty=("/var/lib",))
        fleet.made_at = began
        site = fleet.site()
        subprocess.run(["ip", "netns", "exec", site["gw"], "nft", "-f", "-"], input=NAT, text=True, check=True)
        stun = subprocess.Popen(  # pylint: disable=consider-using-with
            ["ip", "netns", "exec", site["wan"], "turnserver", "-n", "-L", f"{site['wan_prefix']}.1", "--stun-only",
             "--no-tls", "--no-dtls", "--no-cli", "--log-file", "stdout", "--simple-log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: stun_listens(site["wan"]), what="coturn listening")
        yield fleet
    finally:
        if stun is not None:
            stun.terminate()
            stun.wait(10)
        problems = fleet.destroy()
        assert not problems, problems


def stun_listens(namespace):
    sockets = subprocess.run(["ip", "netns", "exec", namespace, "ss", "-uln"], capture_output=True, text=True, check=False)
    return ":3478" in sockets.stdout


def in_host(fleet, *argv, stdin=None):
    return subprocess.run(fleet.exec_argv(HOST, list(argv)), input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)


def substituted(where, text, fleet, used):
    """The example with only what cannot exist here replaced; ``used`` records what was."""
    site = fleet.site()
    for old, new in ((f"gateway: {EXAMPLE_GATEWAY}", f"gateway: {site['gw_lan_address']}"),
                     (EXAMPLE_STUN, f"{site['wan_prefix']}.1:3478")):
        if old in text:
            used.add(old)
            text = text.replace(old, new)
    assert EXAMPLE_GATEWAY not in text and "example.net" not in text, f"{where}: an address that cannot exist here"
    return text


def playbook_of(fleet, used):
    """The plays: each task example in a play of its own (in the README's order, then the modules'), then the
    README's plays as written."""
    plays, role_plays = [], []
    for where, text in readme_examples() + module_examples():
        document = yaml.safe_load(substituted(where, text, fleet, used))
        kind = kind_of(document)
        if kind == "tasks":
            plays.append({"name": where, "hosts": HOST, "gather_facts": False, "tasks": document})
        elif kind == "plays":
            role_plays.extend(document)
    return plays + role_plays


def requirements_of():
    [document] = [yaml.safe_load(text) for _where, text in readme_examples()
                  if kind_of(yaml.safe_load(text)) == "requirements"]
    return document


@pytest.mark.long
def test_every_example_runs_on_a_fresh_host(fresh_host, tmp_path):
    fleet = fresh_host
    started = time.monotonic()
    print(f"fresh host made in {started - fleet.made_at:.1f} s")
    # The collection, installed from the README's requirements.yml (its folder: this checkout).
    requirements = requirements_of()
    assert [c["name"] for c in requirements["collections"]] == [EXAMPLE_FOLDER]
    (tmp_path / "requirements.yml").write_text(yaml.safe_dump(
        {"collections": [dict(c, name=str(REPO)) for c in requirements["collections"]]}))
    env = environment(tmp_path / "collections", tmp_path)
    env.pop("PYTHONPATH")  # the installed collection only
    installed = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "-r", "requirements.yml", "-p",
                                "collections"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                               check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The hook the role example names, at its path, in the host's own view.
    roles = [play for play in playbook_of(fleet, set()) if "roles" in play]
    [hook] = {h for play in roles for role in play["roles"] for h in role["vars"].get("renewal_on_change", [])[:1]}
    made = in_host(fleet, "sh", "-c", f"mkdir -p {Path(hook).parent} && cat > {hook} && chmod 0755 {hook}",
                   stdin=f"#!/bin/sh\nenv | grep '^PORTMAP_' | sort >> {HOOK_RECORD}\n")
    assert made.returncode == 0, made.stderr
    groups = {play["hosts"] for play in roles}
    inventory = {"all": {"hosts": {HOST: {"ansible_connection": "local", "ansible_become_method": "su",
                                          "ansible_python_interpreter": fleet.host(HOST)["python"]}},
                         "children": {group: {"hosts": {HOST: {}}} for group in groups}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    used: set = set()
    (tmp_path / "examples.yml").write_text(yaml.safe_dump(playbook_of(fleet, used), sort_keys=False))
    assert used == {f"gateway: {EXAMPLE_GATEWAY}", EXAMPLE_STUN}, used

    def run(*extra):
        began = time.monotonic()
        done = subprocess.run([str(BIN / "ansible-playbook"), "-i", "inventory.yml", "examples.yml", *extra],
                              cwd=tmp_path, env=dict(env, ANSIBLE_PIPELINING="1", ANSIBLE_GATHER_SUBSET="min"),
                              capture_output=True, text=True, timeout=300, check=False)
        print(f"ansible-playbook {' '.join(extra) or '(real run)'}: {time.monotonic() - began:.1f} s")
        print("\n".join(done.stdout.splitlines()[-25:]))
        return done

    checked = run("--check")
    assert checked.returncode == 0, checked.stdout[-6000:] + checked.stderr[-3000:]
    assert in_host(fleet, "ls", "-A", "/var/lib").stdout.split() == [], "check mode made something in /var/lib"
    assert control(fleet.site()["control"], {"cmd": "table"})["mappings"] == [], "check mode made a mapping"

    real = run()
    assert real.returncode == 0, real.stdout[-6000:] + real.stderr[-3000:]
    ledger = json.loads(in_host(fleet, "cat", "/var/lib/portmap-natpmp/ledger.json").stdout)
    recorded = sorted((m["protocol"], m["internal_port"], m["external_port"]) for m in ledger["mappings"])
    table = sorted((m["protocol"], m["internal_port"], m["external_port"]) for m in control(fleet.site()["control"], {"cmd": "table"})["mappings"])
    # the role's list is the host's complete set: what the task examples left is gone, 51413 stays
    assert recorded == table == [("tcp", 51413, 51413), ("udp", 51413, 51413)], (recorded, table)
    told = in_host(fleet, "cat", HOOK_RECORD).stdout
    assert "PORTMAP_INTERNAL_PORT=51413" in told and "PORTMAP_PROTOCOL=both" in told, told
    print(f"README and module examples: check mode and real run on a fresh host in {time.monotonic() - started:.1f} s")
