"""Security: forged replies change nothing, files are not writable by others, role variables cannot inject.

(The job running as its unprivileged user, and the modes of every file the role installs,
are checked on a namespaced host by the molecule scenario `default`.)
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List

import pytest

from portmap import wire_natpmp, wire_pcp
from portmap.client import Client
from portmap.ledger import Ledger
from portmap.lock import HostLock
from portmap.manage import Desired, Manager
from simgw import SimulatedGateway
from tests.harness.playbook import recap_counts, run_playbook

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); from portmap.cli import main; "
       "sys.exit(main())", os.path.join(REPO, "plugins", "module_utils")]


@pytest.fixture
def gw(loopback_address, tmp_path):
    with SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock"), uptime=1000) as gateway:
        yield gateway


def manager(gw, tmp_path, method: str) -> Manager:
    lock = HostLock(str(tmp_path / "lock"))
    return Manager(Ledger(str(tmp_path / "ledger.json"), lock), Client(gw.address, method=method, lock=lock))


def forged_reply(method: str, request: Dict[str, Any]) -> bytes:
    """A reply that would claim a reboot (epoch 0), another port, lifetime and address."""
    if method == "natpmp":
        return wire_natpmp.encode_map_reply("tcp", 0, 0, request["internal_port"], 1234, 99)
    return wire_pcp.encode_map_response(0, 99, 0, bytes.fromhex(request["nonce"]), 6, request["internal_port"],
                                        1234, "99.99.99.99")


@pytest.mark.parametrize("method", ["natpmp", "pcp"])
def test_a_reply_not_from_the_gateway_never_changes_state(gw, tmp_path, loopback_address_pool, method):
    want = [Desired("tcp", 8080, 8080, 3600)]
    first = manager(gw, tmp_path, method).present(want)
    gw.ctl({"cmd": "clear_log"})
    # The gateway's reply to the next map comes late; meanwhile others answer in its name.
    gw.ctl({"cmd": "fault", "kind": "delay", "seconds": 0.6, "count": 1, "ops": ["map"]})
    outcome: Dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(manager(gw, tmp_path, method).present(want)))
    worker.start()
    request: Dict[str, Any] = {}
    deadline = time.monotonic() + 5
    while not request and time.monotonic() < deadline:
        request = next((e for e in gw.ctl({"cmd": "log"})["log"] if e.get("internal_port") == 8080), {})
        time.sleep(0.01)
    assert request, "the map request never reached the gateway"
    client_host, client_port = request["client"].rsplit(":", 1)
    forged = forged_reply(method, request)
    sent = 0
    for source in [(loopback_address_pool(), 5351), (gw.address, 5350), (gw.address, 0)]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(source)
            sent += sock.sendto(forged, (client_host, int(client_port))) > 0
    worker.join(10)
    assert sent == 3
    assert outcome and not outcome["changed"] and not outcome["gateway_rebooted"]
    (mapping,) = outcome["mappings"]
    assert (mapping["external_port"], mapping["lifetime"]) == (8080, 3600)
    assert outcome["public_address"] == first["public_address"] == "11.22.33.2"
    (entry,) = Ledger(str(tmp_path / "ledger.json")).load().entries
    assert (entry.external_port, entry.lifetime, entry.public_address) == (8080, 3600, "11.22.33.2")


@pytest.mark.parametrize("umask", [0o000, 0o077], ids=["umask000", "umask077"])
def test_files_written_on_the_host_are_not_writable_by_others(gw, tmp_path, umask):
    """The ledger and the job's log file are 0644 whatever the umask: never writable by others under 000,
    and still readable by logrotate under 077.  The lock is 0600 (only its owner and root may take it)."""
    old = os.umask(umask)
    try:
        manager(gw, tmp_path, "natpmp").present([Desired("tcp", 8080, 8080, 3600)])
        log = tmp_path / "job.log"
        proc = subprocess.run(CLI + ["--gateway", gw.address, "--method", "natpmp", "--ledger",
                                     str(tmp_path / "ledger.json"), "--lock", str(tmp_path / "lock"), "renew",
                                     "--now", "--log", str(log)],
                              capture_output=True, text=True, check=False, timeout=60)
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    modes = {name: stat.S_IMODE(os.stat(tmp_path / name).st_mode) for name in ("ledger.json", "lock", "job.log")}
    assert modes == {"ledger.json": 0o644, "lock": 0o600, "job.log": 0o644}
    assert "renewed TCP internal port 8080" in log.read_text()


# ---------------------------------------------------------------- role variables

HOSTILE = [
    ("renewal_user", "root\nExecStartPre=/bin/sh -c id"),
    ("renewal_user", "portmap natpmp"),
    ("renewal_group", "wheel;id"),
    ("renewal_cron_file", "../../etc/passwd"),
    ("renewal_cron_file", "portmap.cron"),
    ("renewal_unit_name", "renew\n[Service]"),
    ("renewal_python", "/usr/bin/python3\nimport os"),
    ("renewal_command_path", "/usr/local/sbin/portmap-natpmp;id"),
    ("renewal_command_path", "portmap-natpmp"),
    ("renewal_lib_dir", "/usr/local/lib/$(id)"),
    ("renewal_ledger_path", "/var/lib/portmap natpmp/ledger.json"),
    ("renewal_systemd_unit_dir", "/etc/systemd/system\n"),
    ("renewal_logrotate_dir", "/etc/logrotate.d/`id`"),
    ("renewal_log_file", "/var/log/portmap.log {\n postrotate\n id\n endscript\n}\n/x"),
]


def assert_nothing_would_change(proc: subprocess.CompletedProcess) -> None:
    """The run (in check mode) stopped before any task that would change the host: a task that
    would create the group, the user or a file reports "changed" in check mode, whatever its name."""
    recap = [line for line in proc.stdout.splitlines() if line.startswith("localhost ") and "ok=" in line]
    assert recap and recap_counts(recap[-1])["changed"] == 0, proc.stdout[-3000:]
    assert "\nchanged: [localhost]" not in proc.stdout


def run_role(collections, tmp_path, extra: Dict[str, Any]) -> subprocess.CompletedProcess:
    proc, _recap = run_playbook("role_check_only.yml", tmp_path, extra, collections_path=collections, check=True,
                                quiet=True, timeout=120)
    return proc


@pytest.mark.parametrize("name, value", HOSTILE)
def test_role_refuses_names_and_paths_that_could_inject(collections_path, tmp_path, name, value):
    proc = run_role(collections_path, tmp_path, {name: value})
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{name} must be" in output, output[-3000:]
    assert_nothing_would_change(proc)


@pytest.mark.parametrize("hook, words", [
    (["set-port"], "absolute path"),
    (["/usr/local/bin/set-port", "--port\n* * * * * root id"], "line break"),
])
def test_role_refuses_a_hook_that_could_inject(collections_path, tmp_path, hook, words):
    proc = run_role(collections_path, tmp_path, {"renewal_on_change": hook, "renewal_mappings": [{"internal_port": 8080}]})
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and words in output, output[-3000:]
    assert_nothing_would_change(proc)


def cron_command(line: str) -> str:
    """What cron hands to /bin/sh: '\\%' becomes '%', an unescaped '%' ends the command (the rest is stdin)."""
    out: List[str] = []
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and line[index + 1:index + 2] == "%":
            out.append("%")
            index += 2
            continue
        assert char != "%", f"unescaped % in the cron line would cut the command: {line!r}"
        out.append(char)
        index += 1
    return "".join(out)


def test_cron_line_passes_hostile_hook_arguments_through_literally(tmp_path):
    marker = tmp_path / "owned"
    hook = ["/usr/local/bin/set-port", "a b", "$(touch {m})".format(m=marker), "`touch {m}`".format(m=marker),
            "; touch {m}".format(m=marker), "100%", "'", '"', "\\", "*", "~", "&&", "|", "$HOME", "# not a comment"]
    command = tmp_path / "portmap-natpmp"
    argv_out = tmp_path / "argv.json"
    command.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(argv_out)!r}, 'w'))\n")
    command.chmod(0o755)
    extra = {"out_dir": str(tmp_path), "renewal_command_path": str(command), "renewal_on_change": hook,
             "renewal_ledger_path": str(tmp_path / "ledger.json")}
    proc, _recap = run_playbook("render_cron_line.yml", tmp_path, extra, quiet=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    base = ["--method", "auto", "--timeout", "3", "--ledger", str(tmp_path / "ledger.json"), "renew", "--log", "syslog"]
    for name, expected in [("job", base + ["--on-change"] + hook), ("job_now", base + ["--now", "--on-change"] + hook)]:
        line = (tmp_path / name).read_text()
        assert "\n" not in line
        argv_out.unlink(missing_ok=True)
        subprocess.run(["/bin/sh", "-c", cron_command(line)], cwd=tmp_path, check=True, timeout=30,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert json.loads(argv_out.read_text()) == expected
    assert not marker.exists()
