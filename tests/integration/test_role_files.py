"""The renewal role's files and folders on a host of its own: what present makes and what it hands to the
job's user, what absent and a rollback remove (exactly what the role made), the client package's whole tree
(its subpackages too) as the installed command runs it, and the checks made before a converge reports ok (the
job's user can reach the ledger; the command's folder exists).

Each test makes one host (a sealed network namespace behind the simulated gateway, with its own view of
/etc, /usr/local, /var/lib and /var/log: tests/harness/fleet.py) and removes it, also on failure.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from simgw import control
from tests.harness.fleet import Fleet
from tests.harness.netns import netns_available
from tests.harness.playbook import REPO, run_playbook

DEFAULT_FOLDERS = ("/var/lib/portmap-natpmp", "/usr/local/lib/portmap-natpmp")
RECORD = "/usr/local/lib/portmap-natpmp/portmap-natpmp-created.json"
LIB = "/usr/local/lib/portmap-natpmp"
COMMAND = "/usr/local/sbin/portmap-natpmp"
PACKAGE = REPO / "plugins" / "module_utils" / "portmap"

pytestmark = pytest.mark.long  # each applies the role on a host of its own, most twice or more


@pytest.fixture
def host(request, tmp_path, collections_path):
    """One host behind the simulated gateway (``simgw``, or the fleet gateway a test parametrizes this fixture
    with, indirectly); yields (fleet, run, sh). ``run(check=..., collections=...)`` applies the role in check mode,
    or from another collections tree."""
    ok, why = netns_available()
    if not ok:
        pytest.skip(why)
    fleet = Fleet(str(tmp_path / "fleet"))
    fleet.create([[getattr(request, "param", "simgw"), "h1"]])
    try:
        def run(check=False, collections=None, **variables):
            extra = {"ansible_python_interpreter": fleet.host("h1")["python"],
                     "renewal_mappings": [{"internal_port": 8080, "lifetime": 3600}], **variables}
            proc, _recap = run_playbook("role_apply.yml", tmp_path, extra, collections_path=collections or collections_path,
                                        check=check, timeout=300)
            return proc

        def sh(script: str, check: bool = True) -> str:
            done = subprocess.run(fleet.exec_argv("h1", ["sh", "-c", script]), capture_output=True, text=True,
                                  check=False, timeout=60)
            if check:
                assert done.returncode == 0, done.stderr
            return done.stdout

        yield fleet, run, sh
    finally:
        problems = fleet.destroy()
        assert not problems, problems


def exists(sh, path: str) -> bool:
    return sh(f"test -e {path} && echo yes || true").strip() == "yes"


def owner(sh, path: str) -> str:
    return sh(f"stat -c %U:%G {path}").strip()


def dangling(sh, *folders: str) -> list:
    """Paths under ``folders`` owned by a user or group id the host does not know (a deleted user's)."""
    return sh(f"find {' '.join(folders)} -nouser -o -nogroup 2>/dev/null || true").split()


def table(fleet) -> list:
    return control(fleet.site()["control"], {"cmd": "table"})["mappings"]


def test_absent_removes_exactly_what_the_role_made(host):
    fleet, run, sh = host
    # Folders of other applications, which the role's files share: the job's user is the admin's,
    # the ledger's folder is given to it (only its owner may write there), the log folder to its group.
    sh("set -e; groupadd -r portmap-natpmp; useradd -r -g portmap-natpmp -s /usr/sbin/nologin -M portmap-natpmp\n"
       "mkdir -p /var/lib/shared /var/log/otherapp /usr/local/lib/apps\n"
       "echo other > /var/lib/shared/other.json; chown portmap-natpmp:portmap-natpmp /var/lib/shared\n"
       "echo other > /var/log/otherapp/other.log; chown root:portmap-natpmp /var/log/otherapp\n"
       "chmod 0775 /var/log/otherapp; echo other > /usr/local/lib/apps/other.py")
    variables = {"renewal_ledger_path": "/var/lib/shared/ledger.json",
                 "renewal_log_file": "/var/log/otherapp/portmap.log",
                 "renewal_lib_dir": "/usr/local/lib/apps",
                 "renewal_command_path": "/usr/local/sbin/portmap-natpmp"}
    proc = run(**variables)
    assert proc.returncode == 0, proc.stdout[-4000:]
    # present changed the owner of no folder it did not make
    assert owner(sh, "/var/log/otherapp") == "root:portmap-natpmp"
    assert owner(sh, "/var/lib/shared") == "portmap-natpmp:portmap-natpmp"
    assert owner(sh, "/usr/local/lib/apps") == "root:root"
    assert exists(sh, "/var/lib/shared/ledger.json") and exists(sh, "/usr/local/lib/apps/portmap/cli.py")
    sh("echo 'a line' > /var/log/otherapp/portmap.log; echo old > /var/log/otherapp/portmap.log.1")

    proc = run(renewal_state="absent", **variables)
    assert proc.returncode == 0, proc.stdout[-4000:]
    for kept in ("/var/lib/shared/other.json", "/var/log/otherapp/other.log", "/usr/local/lib/apps/other.py"):
        assert exists(sh, kept), f"{kept} was removed"
    for gone in ("/var/lib/shared/ledger.json", "/var/lib/shared/.portmap-natpmp.lock", "/var/log/otherapp/portmap.log",
                 "/var/log/otherapp/portmap.log.1", "/usr/local/lib/apps/portmap", "/usr/local/sbin/portmap-natpmp",
                 "/etc/cron.d/portmap-natpmp", "/etc/logrotate.d/portmap-natpmp"):
        assert not exists(sh, gone), f"{gone} is still there"
    assert owner(sh, "/var/log/otherapp") == "root:portmap-natpmp"
    assert "portmap-natpmp:" in sh("cat /etc/passwd"), "the admin's user was removed"
    assert table(fleet) == []


def test_absent_removes_the_folders_it_made_when_empty(host):
    _fleet, run, sh = host
    variables = {"renewal_ledger_path": "/var/lib/made/deep/ledger.json",
                 "renewal_log_file": "/var/log/pm-made/portmap.log", "renewal_user": "pm-job", "renewal_group": "pm-job"}
    proc = run(**variables)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert owner(sh, "/var/lib/made/deep") == owner(sh, "/var/log/pm-made") == "pm-job:pm-job"
    sh("echo mine > /var/log/pm-made/keep.txt")  # another file in a folder the role made
    proc = run(renewal_state="absent", **variables)
    assert proc.returncode == 0, proc.stdout[-4000:]
    for gone in ("/var/lib/made", "/usr/local/lib/portmap-natpmp", "/var/log/pm-made/portmap.log"):
        assert not exists(sh, gone), f"{gone} is still there"
    assert sh("cat /var/log/pm-made/keep.txt").strip() == "mine"
    assert "pm-job:" not in sh("cat /etc/passwd")
    assert dangling(sh, "/var/log/pm-made") == []  # what is kept is not left to the deleted user's id
    again = run(renewal_state="absent", **variables)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]


def test_absent_without_a_record_takes_only_the_default_folders_as_its_own(host):
    _fleet, run, sh = host
    variables = {"renewal_log_file": "/var/log/pm-made/portmap.log"}
    proc = run(**variables)
    assert proc.returncode == 0, proc.stdout[-4000:]
    sh(f"rm -f {RECORD}")  # a host the role installed before it kept a record
    proc = run(renewal_state="absent", **variables)
    assert proc.returncode == 0, proc.stdout[-4000:]
    for gone in DEFAULT_FOLDERS + ("/var/log/pm-made/portmap.log",):
        assert not exists(sh, gone), f"{gone} is still there"
    assert exists(sh, "/var/log/pm-made")  # not a default folder: not known as the role's
    assert dangling(sh, "/var/log/pm-made") == []


@pytest.mark.parametrize("made_by_module", [True, False], ids=["default-folder", "foreign-folder"])
def test_a_rollback_leaves_nothing_to_the_deleted_user(host, made_by_module):
    fleet, run, sh = host
    if made_by_module:  # the default ledger folder, made by a module run as root before the role's first run
        folder, variables = "/var/lib/portmap-natpmp", {}
        sh("mkdir -p /var/lib/portmap-natpmp && echo '{\"schema\": 2, \"gateways\": {}, \"mappings\": []}' "
           "> /var/lib/portmap-natpmp/ledger.json")
    else:  # another application's folder
        folder, variables = "/var/lib/shared", {"renewal_ledger_path": "/var/lib/shared/ledger.json"}
        sh("mkdir -p /var/lib/shared && echo other > /var/lib/shared/other.json")
    # granted 60 s: cron cannot keep it, and the run rolls back
    assert control(fleet.site()["control"], {"cmd": "set", "lifetime_cap": 60})["ok"]
    proc = run(**variables)
    assert proc.returncode != 0 and "Nothing of the job was installed" in proc.stdout, proc.stdout[-4000:]
    assert "portmap-natpmp:" not in sh("cat /etc/passwd")
    assert dangling(sh, folder) == [], sh(f"ls -lan {folder}")
    assert owner(sh, folder) == "root:root"
    assert not exists(sh, "/usr/local/lib/portmap-natpmp")
    assert table(fleet) == []


def test_a_ledger_the_jobs_user_cannot_reach_fails_the_converge(host):
    fleet, run, sh = host
    sh("mkdir -p /var/lib/locked && chmod 0700 /var/lib/locked")
    proc = run(renewal_ledger_path="/var/lib/locked/pm/ledger.json")
    assert proc.returncode != 0, proc.stdout[-4000:]
    failure = "\n".join(line for line in proc.stdout.splitlines() if line.startswith("fatal:"))
    assert "search (x) permission on /var/lib/locked" in failure, proc.stdout[-4000:]
    assert "does not exist" not in failure
    assert not exists(sh, "/var/lib/locked/pm") and "portmap-natpmp:" not in sh("cat /etc/passwd")
    assert table(fleet) == []


def test_a_missing_folder_of_the_command_fails_before_anything_changes(host):
    fleet, run, sh = host
    proc = run(renewal_command_path="/opt/nowhere/portmap-natpmp")
    assert proc.returncode != 0, proc.stdout[-4000:]
    assert "/opt/nowhere" in proc.stdout and "renewal_command_path" in proc.stdout, proc.stdout[-4000:]
    assert "changed=0" in proc.stdout, proc.stdout[-4000:]
    assert "portmap-natpmp:" not in sh("cat /etc/passwd")
    assert not any(exists(sh, path) for path in DEFAULT_FOLDERS)
    assert table(fleet) == []


def test_the_fallback_to_cron_says_so_and_what_it_cannot_do(host):
    _fleet, run, _sh = host
    short = run(renewal_scheduler="service", renewal_scheduler_fallback="cron",
                renewal_mappings=[{"internal_port": 8080, "lifetime": 30}])
    assert short.returncode != 0
    assert "set renewal_scheduler: systemd or service" not in short.stdout, short.stdout[-3000:]
    assert "systemd does not run this host" in short.stdout and "falls back to cron" in short.stdout, short.stdout[-3000:]
    proc = run(renewal_scheduler="service", renewal_scheduler_fallback="cron")
    assert proc.returncode == 0, proc.stdout[-4000:]
    notice = [line for line in proc.stdout.splitlines() if "falls back to cron" in line]
    assert notice, proc.stdout[-4000:]


def test_check_mode_on_a_fresh_host_makes_nothing(host, tmp_path, collections_path):
    """Whether or not the run gets through (the mapping task wants the ledger's folder), it makes nothing,
    and its rollback removes nothing."""
    fleet, _run, sh = host
    sh("mkdir -p /var/lib/other && echo other > /var/lib/other/keep.json")
    extra = {"ansible_python_interpreter": fleet.host("h1")["python"], "renewal_ledger_path": "/var/lib/new/ledger.json",
             "renewal_mappings": [{"internal_port": 8080, "lifetime": 3600}]}
    proc, _recap = run_playbook("role_apply.yml", tmp_path, extra, collections_path=collections_path, check=True)
    assert "portmap-natpmp:" not in sh("cat /etc/passwd")
    assert not any(exists(sh, path) for path in ("/var/lib/new", "/usr/local/lib/portmap-natpmp", RECORD))
    assert table(fleet) == [] and sh("cat /var/lib/other/keep.json").strip() == "other"
    assert "rescued=1" in proc.stdout or proc.returncode == 0, proc.stdout[-3000:]


def test_the_role_after_the_module_run_as_root_takes_the_ledger_for_the_job(host, tmp_path, collections_path):
    """The README's first example (the module, as root) leaves the default ledger root's; the role then
    predicts in check mode and, for real, gives the ledger and its lock to the job's user, whose job runs."""
    fleet, run, sh = host
    sh("set -e; mkdir -p /var/lib/portmap-natpmp; echo '{\"schema\": 2, \"gateways\": {}, \"mappings\": []}' "
       "> /var/lib/portmap-natpmp/ledger.json; touch /var/lib/portmap-natpmp/.portmap-natpmp.lock")
    extra = {"ansible_python_interpreter": fleet.host("h1")["python"],
             "renewal_mappings": [{"internal_port": 8080, "lifetime": 3600}]}
    check, _recap = run_playbook("role_apply.yml", tmp_path, extra, collections_path=collections_path, check=True)
    assert check.returncode == 0, check.stdout[-4000:]
    assert "portmap-natpmp:" not in sh("cat /etc/passwd")
    assert owner(sh, "/var/lib/portmap-natpmp/ledger.json") == "root:root"  # check mode changed nothing
    proc = run()
    assert proc.returncode == 0, proc.stdout[-4000:]
    for path in ("/var/lib/portmap-natpmp", "/var/lib/portmap-natpmp/ledger.json",
                 "/var/lib/portmap-natpmp/.portmap-natpmp.lock"):
        assert owner(sh, path) == "portmap-natpmp:portmap-natpmp", path
    job = fleet.run_job("h1", now=True)
    assert job.returncode == 0, job.stdout + job.stderr
    assert [m["internal_port"] for m in table(fleet)] == [8080]


def test_a_ledger_folder_given_to_the_user_alone_stays_unchanged_on_a_second_run(host):
    """The admin gives an existing folder to the job's user only (its group stays root's): the lock's group is
    the folder's, as the client sets it, so the role and the client do not take it back from each other."""
    _fleet, run, sh = host
    sh("set -e; useradd --system -U portmap-natpmp; mkdir -p /var/lib/shared; chown portmap-natpmp:root /var/lib/shared")
    variables = {"renewal_ledger_path": "/var/lib/shared/ledger.json"}
    first = run(**variables)
    assert first.returncode == 0, first.stdout[-4000:]
    again = run(**variables)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-4000:]
    assert owner(sh, "/var/lib/shared/.portmap-natpmp.lock") == "portmap-natpmp:root"


# ---------------------------------------------------------------- the client package's tree

# Modules of a throwaway subpackage, added to a copy of the collection only (paths below its portmap/): a module in
# a subpackage of its own, and one two folders down, below a folder that holds no module.
PROBES = {"methods/probe_extra.py": 'PROBE = "methods"\n',
          "probe_ns/deeper/__init__.py": "",
          "probe_ns/deeper/probe_deep.py": 'PROBE = "deeper"\n'}


def package_sources(root: Path = PACKAGE) -> dict:
    """Every module of the client package below ``root``, at any depth: relative path -> its sha256."""
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*.py")) if "__pycache__" not in path.parts}


def package_folders(modules) -> set:
    """The folders below portmap/ that the modules ``modules`` (relative paths) need, those above them too."""
    folders = set()
    for module in modules:
        parts = module.split("/")[:-1]
        folders.update("/".join(parts[:n]) for n in range(1, len(parts) + 1))
    return folders


def installed_package(sh) -> dict:
    """What is below the host's portmap/: relative path -> (type f/d, owner:group, mode, sha256 of a .py)."""
    found = {}
    listing = sh(f"cd {LIB}/portmap 2>/dev/null && find . -mindepth 1 -printf '%y %u:%g %m %P\\n' || true")
    for line in listing.splitlines():
        kind, who, mode, path = line.split(" ", 3)
        found[path] = [kind, who, mode, ""]
    sums = sh(f"cd {LIB}/portmap 2>/dev/null && find . -name '*.py' -exec sha256sum {{}} + || true")
    for line in sums.splitlines():
        digest, path = line.split(None, 1)
        found[path[2:]][3] = digest
    return found


def assert_package_installed(sh, sources: dict) -> None:
    """Every module of ``sources`` installed with its content (root's, 0644), every folder root's 0755, each module
    compiled into its folder's __pycache__, nothing else; the record names the modules and folders."""
    found = installed_package(sh)
    modules = {path: info for path, info in found.items() if path.endswith(".py")}
    assert {path: info[3] for path, info in modules.items()} == sources
    assert {tuple(info[:3]) for info in modules.values()} == {("f", "root:root", "644")}
    folders = {path: info for path, info in found.items() if info[0] == "d"}
    wanted = package_folders(sources) | {str(Path(module).parent / "__pycache__") for module in sources}
    assert set(folders) == wanted
    assert {tuple(info[:3]) for info in folders.values()} == {("d", "root:root", "755")}
    bytecode = {path for path in found if path.endswith(".pyc")}
    compiled = {str(Path(path).parent.parent / path.rpartition("/")[2].split(".")[0]) for path in bytecode}
    assert compiled == {module[:-3] for module in sources}, "the job's user would compile them at every run"
    assert set(found) == set(modules) | set(folders) | bytecode
    record = json.loads(sh(f"cat {RECORD}"))
    assert {f"{LIB}/portmap/{module}" for module in sources} == set(record["files"])
    assert {f"{LIB}/portmap/{folder}" for folder in wanted} <= set(record["folders"])


def collection_copy(root: Path, modules: dict) -> Path:
    """A collections tree (returned) whose portmap.natpmp is a copy of this checkout's collection with ``modules``
    (relative path below plugins/module_utils/portmap -> text) added."""
    target = root / "ansible_collections" / "portmap" / "natpmp"
    for folder in ("meta", "plugins", "roles"):
        shutil.copytree(REPO / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "galaxy.yml", target / "galaxy.yml")
    for relative, text in modules.items():
        path = target / "plugins" / "module_utils" / "portmap" / relative
        assert not path.exists(), f"{relative} is a module of the collection: choose another throwaway name"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def gone(sh) -> list:
    """What the role installs that is still on the host."""
    return [path for path in (LIB, COMMAND, "/etc/cron.d/portmap-natpmp", "/var/lib/portmap-natpmp") if exists(sh, path)]


@pytest.mark.parametrize("host", ["simgw-all"], indirect=True)
def test_the_installed_command_runs_the_whole_package_with_natpmp_and_upnp(host):
    """The role installs every module of the client package (every *.py below plugins/module_utils/portmap, at any
    depth); the command it installs runs from that package alone, NAT-PMP and UPnP IGD against the gateway; absent
    leaves nothing of it."""
    fleet, run, sh = host
    proc = run()
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert_package_installed(sh, package_sources())
    gateway = fleet.site()["gw_lan_address"]
    sh("mkdir -m 0700 /var/lib/pm-cli")

    def command(*args):
        """The installed command as root on the host: nothing of the checkout on its path or in its environment."""
        argv = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", COMMAND,
                "--gateway", gateway, "--ledger", "/var/lib/pm-cli/ledger.json", *args]
        done = subprocess.run(fleet.exec_argv("h1", argv), capture_output=True, text=True, check=False, timeout=60,
                              cwd="/")
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    public = command("--method", "natpmp", "public")
    assert "public address 11.22.33.2" in public and "using natpmp" in public, public
    mapped = command("--method", "natpmp", "map", "tcp", "8090", "--lifetime", "600")
    assert "mapped TCP 11.22.33.2:8090 -> internal port 8090 for 600 s (natpmp)" in mapped, mapped
    upnp = ["--method", "upnp", "--upnp-url", f"http://{gateway}:5000/rootDesc.xml"]
    mapped = command(*upnp, "map", "udp", "8091", "--lifetime", "900")
    assert "mapped UDP 11.22.33.2:8091 -> internal port 8091 for 900 s (upnp)" in mapped, mapped
    listed = command(*upnp, "table")
    assert f"3 mapping(s) on gateway {gateway} (UPnP IGD)" in listed, listed
    for port in ("8080", "8090", "8091"):
        assert f"{fleet.host('h1')['address']}:{port}" in listed, listed
    held = {(m["internal_port"], m["protocol"], m["method"]) for m in table(fleet)}
    assert {(8090, "tcp", "natpmp"), (8091, "udp", "upnp")} <= held
    assert {mapping[0] for mapping in held} == {8080, 8090, 8091}

    proc = run(renewal_state="absent")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert gone(sh) == []


def test_a_subpackage_is_installed_and_removed_by_absent(host, tmp_path):
    _fleet, run, sh = host
    copy = collection_copy(tmp_path / "copy", PROBES)
    proc = run(collections=copy)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert_package_installed(sh, package_sources(copy / "ansible_collections/portmap/natpmp/plugins/module_utils/portmap"))
    loaded = sh(f"/usr/bin/python3 -c 'import sys; sys.path.insert(0, \"{LIB}\"); "
                "import portmap.methods.probe_extra as a, portmap.probe_ns.deeper.probe_deep as b; print(a.PROBE, b.PROBE)'")
    assert loaded.split() == ["methods", "deeper"]
    proc = run(collections=copy, renewal_state="absent")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert gone(sh) == [], sh(f"find {LIB} 2>/dev/null || true")


@pytest.mark.timeout(900)  # four converges, each up to 100 s on a busy machine
def test_an_upgrade_keeps_the_package_tree_current(host, tmp_path):
    """A subpackage a newer collection brings is predicted by check mode and installed; a module and folders the
    collection no longer has (moved, renamed) are removed at the next converge, with their byte code, and the record
    no longer names them."""
    _fleet, run, sh = host
    copy = collection_copy(tmp_path / "copy", PROBES)
    proc = run()
    assert proc.returncode == 0, proc.stdout[-4000:]
    before = installed_package(sh)
    check = run(check=True, collections=copy)
    assert check.returncode == 0, check.stdout[-4000:]
    assert installed_package(sh) == before, "check mode changed the package"
    proc = run(collections=copy)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert_package_installed(sh, package_sources(copy / "ansible_collections/portmap/natpmp/plugins/module_utils/portmap"))
    proc = run()
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert_package_installed(sh, package_sources())
    record = sh(f"cat {RECORD}")
    assert "probe" not in record, record


def test_absent_keeps_what_someone_else_put_in_the_package_folder(host):
    """The package's folder goes whole only when all in it is the role's: a file someone else put there stays, with
    the folders it is in, and every module the role installed goes with its byte code."""
    _fleet, run, sh = host
    proc = run()
    assert proc.returncode == 0, proc.stdout[-4000:]
    sh(f"echo mine > {LIB}/portmap/methods/local_notes.txt")
    proc = run(renewal_state="absent")
    assert proc.returncode == 0, proc.stdout[-4000:]
    left = sorted(sh(f"cd {LIB} && find . -mindepth 1").split())
    assert left == ["./portmap", "./portmap/methods", "./portmap/methods/local_notes.txt"], left
    assert not exists(sh, COMMAND)
