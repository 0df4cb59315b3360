"""The collection as users get it: build the tarball, install it, run the command from it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from simgw import SimulatedGateway

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "install_command.yml"

pytestmark = pytest.mark.skipif(not (BIN / "ansible-galaxy").exists(), reason="ansible-galaxy is not installed")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("tarball")
    env = dict(os.environ, ANSIBLE_HOME=str(work / "home"), ANSIBLE_NOCOLOR="1")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(REPO), "--output-path", str(work)],
                   check=True, capture_output=True, env=env)
    tarball = work / "portmap-natpmp-0.1.0.tar.gz"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(work / "collections")],
                   check=True, capture_output=True, env=env)
    return tarball, work / "collections" / "ansible_collections" / "portmap" / "natpmp", work


def test_tarball_content(installed):
    tarball, _root, _work = installed
    names = tarfile.open(tarball).getnames()  # pylint: disable=consider-using-with
    for needed in ("plugins/module_utils/portmap/cli.py", "plugins/modules/natpmp_mapping.py",
                   "roles/renewal/tasks/main.yml", "roles/renewal/meta/argument_specs.yml", "README.md"):
        assert needed in names
    for unwanted in (".venv", "tests/output", ".ci", "scripts"):
        assert not any(name == unwanted or name.startswith(unwanted + "/") for name in names), unwanted
    # only Python source under plugins/ (a stray profiler dump once sat in plugins/module_utils)
    members = tarfile.open(tarball).getmembers()  # pylint: disable=consider-using-with
    strays = [m.name for m in members if m.isfile() and m.name.startswith("plugins/") and not m.name.endswith(".py")]
    assert not strays, strays


# Folders tests and tools leave in a checkout; none is part of the collection.
STRAYS = (".ansible/collections/ansible_collections/portmap/natpmp/README.md", ".cache/pm/x", ".hypothesis/x",
          ".pytest_cache/x", "tests/output/x", ".venv/x", ".venv-matrix/x", ".venv-bench-upnp/x", "build/x",
          "plugins/module_utils/portmap/__pycache__/x.pyc")


def not_the_collection(tarball):
    """Members under a dot-folder, tests/output, a virtualenv or build/: what the tarball must not carry."""
    found = []
    for member in tarfile.open(tarball).getmembers():  # pylint: disable=consider-using-with
        parts = member.name.split("/")
        folders = parts if member.isdir() else parts[:-1]
        if any(part.startswith(".") or part == "__pycache__" for part in folders) or \
                member.name.split("/")[0] == "build" or member.name.startswith("tests/output"):
            found.append(member.name)
    return found


def test_tarball_holds_only_the_collection(installed):
    tarball, _root, _work = installed
    assert not_the_collection(tarball) == []
    manifest = json.load(tarfile.open(tarball).extractfile("MANIFEST.json"))  # pylint: disable=consider-using-with
    description = manifest["collection_info"]["description"]
    assert "UPnP IGD" in description and "planned" not in description, description


def test_build_ignores_what_tests_and_tools_leave_in_the_checkout(tmp_path):
    """A copy of the checkout with the folders tests and tools leave in it (a stale nested copy of the collection
    under .ansible/ once made up half the tarball): none of them reaches the tarball."""
    source = tmp_path / "src"
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    for stray in STRAYS:
        (source / stray).parent.mkdir(parents=True, exist_ok=True)
        (source / stray).write_text("not the collection\n")
    env = dict(os.environ, ANSIBLE_HOME=str(tmp_path / "home"), ANSIBLE_NOCOLOR="1")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(source), "--output-path", str(tmp_path)],
                   check=True, capture_output=True, env=env)
    assert not_the_collection(tmp_path / "portmap-natpmp-0.1.0.tar.gz") == []


@pytest.mark.long
def test_command_from_the_installed_collection(installed, loopback_address, tmp_path):
    _tarball, root, work = installed
    lib = tmp_path / "lib"
    command = tmp_path / "portmap-natpmp"
    host_python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable  # no venv: stdlib only
    extra = {"renewal_lib_dir": str(lib), "renewal_command_path": str(command), "renewal_python": host_python,
             "collection_root": str(root), "ansible_python_interpreter": sys.executable}
    env = dict(os.environ, ANSIBLE_HOME=str(work / "home"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(work / "collections"))
    subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(PLAYBOOK),
                    "-e", json.dumps(extra)], check=True, capture_output=True, env=env)
    assert command.read_text().startswith(f"#!{host_python}\n")
    package = root / "plugins" / "module_utils" / "portmap"
    modules = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py"))  # subpackages too
    assert sorted(p.relative_to(lib / "portmap").as_posix() for p in (lib / "portmap").rglob("*.py")) == modules
    compiled = {(p.parent.parent / p.name.split(".")[0]).relative_to(lib / "portmap").as_posix()
                for p in (lib / "portmap").rglob("__pycache__/*.pyc")}
    assert compiled == {name[:-3] for name in modules}  # the job's user need not compile them at every run

    clean_env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}  # nothing of ours on the path
    common = ["--gateway", loopback_address, "--ledger", str(tmp_path / "ledger.json"), "--lock", str(tmp_path / "lock")]

    def run(*args):
        return subprocess.run([str(command), *common, *args], capture_output=True, text=True, env=clean_env,
                              check=False, timeout=60)

    assert "renew" in run("--help").stdout
    with SimulatedGateway(address=loopback_address):
        assert "public address 11.22.33.2" in run("public").stdout
        mapped = run("map", "tcp", "8080", "--lifetime", "600")
        assert mapped.returncode == 0, mapped.stderr
        assert "8080" in run("status").stdout
        renewed = run("renew", "--now", "--log", "stderr")
        assert renewed.returncode == 0 and "1 renewed" in renewed.stderr
        assert run("delete", "tcp", "8080").returncode == 0


@pytest.mark.parametrize("method", ["natpmp", "pcp", "upnp"])
def test_the_modules_from_the_tarball_bundle_every_method(installed, loopback_address, tmp_path, method):
    """Ansible bundles a module's module_utils for the host (AnsiballZ), finding them by their import
    statements: the methods, loaded inside functions (``methods.REGISTRY``), must be found too.  The host's
    Python here is the system's, which has neither Ansible nor this collection."""
    _tarball, _root, work = installed
    host_python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    env = dict(os.environ, ANSIBLE_HOME=str(work / "home"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(work / "collections"), ANSIBLE_LOCALHOST_WARNING="0")
    args = {"gateway": loopback_address, "method": method, "ledger_path": str(tmp_path / "ledger.json"),
            "mappings": [{"internal_port": 8080, "lifetime": 600}]}
    if method == "upnp":
        args["upnp_url"] = f"http://{loopback_address}:5000/rootDesc.xml"
    probe = subprocess.run([host_python, "-c", "import ansible"], capture_output=True, check=False)
    assert probe.returncode != 0, "the host's Python must not have Ansible for this test"
    with SimulatedGateway(address=loopback_address, igd="v2", control_path=str(tmp_path / "gw.sock")) as gateway:
        ran = subprocess.run([str(BIN / "ansible"), "localhost", "-o", "-c", "local", "-m", "portmap.natpmp.natpmp_mapping",
                              "-a", json.dumps(args), "-e", f"ansible_python_interpreter={host_python}"],
                             capture_output=True, text=True, env=env, check=False, timeout=120)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        result = json.loads(ran.stdout.split(" => ", 1)[1])  # localhost | CHANGED => {...}
        assert (result["changed"], result["method"]) == (True, method), result
        assert [(m["method"], m["external_port"]) for m in gateway.ctl({"cmd": "table"})["mappings"]] == [(method, 8080)]
