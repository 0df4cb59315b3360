"""``portmap-natpmp watch`` in sealed namespaces, against the simulated gateway with announcements on.

The gateway runs in the gateway namespace with ``--announce multicast`` (NAT-PMP and PCP
announcements to 224.0.0.1:5350) and ``--ssdp multicast`` (UPnP IGD ``ssdp:alive`` NOTIFY to
239.255.255.250:1900), which stay inside the namespaces.  The watch runs as a process in a host
namespace, as the service would run it; the gateway's table is read through its control socket.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from portmap import wire_natpmp, wire_pcp
from simgw import control
from tests.harness.interop import MODULE_UTILS
from tests.harness.netns import Topology, existing_namespaces, wait_for

pytestmark = pytest.mark.netns

GW = "192.168.77.1"
HTTP_PORT = 5000
UPNP_URL = f"http://{GW}:{HTTP_PORT}/rootDesc.xml"
MAPPINGS = (("tcp", 8080), ("udp", 5353))
ENTRY = "import sys; from portmap.cli import main; sys.exit(main())"


class Lab:
    """A topology, the simulated gateway in it, and the hosts' ledgers and watch processes."""

    def __init__(self, tmp_path, hosts: int, gateway_options) -> None:
        self.tmp = tmp_path
        self.topo = Topology(hosts=hosts).create()
        self.topo.assert_sealed()
        self.sock = str(tmp_path / "gw.sock")
        self.gw_log = open(tmp_path / "gw.log", "w", encoding="utf-8")  # pylint: disable=consider-using-with
        self.topo.popen(self.topo.gw, [sys.executable, "-m", "simgw", "--listen", f"{GW}:5351", "--control", self.sock,
                                       "--public-address", self.topo.gw_wan_address, "--uptime", "5000",
                                       *gateway_options],
                        stdout=self.gw_log, stderr=subprocess.STDOUT, cwd=os.getcwd())
        wait_for(lambda: os.path.exists(self.sock), what="the simulated gateway's control socket")
        self.watches = {}

    def host(self, index: int) -> str:
        return self.topo.host_addresses[index]

    def argv(self, index: int, method: str, *args: str, timeout: float = 1.0):
        extra = ["--upnp-url", UPNP_URL] if method == "upnp" else []
        return [sys.executable, "-c", ENTRY, "--gateway", GW, "--method", method, *extra, "--timeout", str(timeout),
                "--ledger", str(self.tmp / f"h{index}.json"), *args]

    def command(self, index: int, method: str, *args: str) -> subprocess.CompletedProcess:
        result = self.topo.run(self.topo.hosts[index], self.argv(index, method, *args),
                               env=dict(os.environ, PYTHONPATH=MODULE_UTILS))
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def map(self, index: int, method: str, lifetime: int = 3600, mappings=MAPPINGS) -> None:
        for protocol, port in mappings:
            self.command(index, method, "map", protocol, str(port), "--lifetime", str(lifetime))

    def watch(self, index: int, method: str, *args: str, timeout: float = 1.0) -> subprocess.Popen:
        log = self.tmp / f"watch{index}.log"
        process = self.topo.popen(self.topo.hosts[index],
                                  self.argv(index, method, "watch", "--log", str(log), "--seed", "7", *args,
                                            timeout=timeout),
                                  env=dict(os.environ, PYTHONPATH=MODULE_UTILS), stdout=subprocess.DEVNULL,
                                  stderr=open(self.tmp / f"watch{index}.err", "w", encoding="utf-8"))  # pylint: disable=consider-using-with
        self.watches[index] = process
        wait_for(lambda: "watch: listening" in self.log(index), timeout=10, what="the watch to listen")
        time.sleep(0.5)  # its first pass (the renewal job's, at start) is over
        return process

    def log(self, index: int) -> str:
        path = self.tmp / f"watch{index}.log"
        return path.read_text() if path.exists() else ""

    def ctl(self, command):
        return control(self.sock, command)

    def held(self, index: int):
        """The (protocol, internal port) pairs the gateway's table holds for host ``index``."""
        return {(r["protocol"], r["internal_port"]) for r in self.ctl({"cmd": "table"})["mappings"]
                if r["client"].split(":")[0] == self.host(index)}

    def restored_after(self, index: int, limit: float, want=MAPPINGS) -> float:
        """Reboot the gateway; seconds until every mapping of host ``index`` was back (sampled every 20 ms)."""
        rebooted = self.ctl({"cmd": "reboot"})
        start = time.monotonic()
        # the count in the reboot's own answer: a table read now may already hold what the watch restored
        assert rebooted["mappings"] == 0, "the reboot did not empty the table"
        while time.monotonic() - start < limit:
            if self.held(index) == set(want):
                return time.monotonic() - start
            time.sleep(0.02)
        raise AssertionError(f"not restored within {limit} s; watch log:\n{self.log(index)}")

    def stop_watch(self, index: int) -> int:
        process = self.watches.pop(index)
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=15)

    def close(self) -> None:
        for index in list(self.watches):
            self.watches.pop(index).kill()
        self.topo.destroy()
        self.gw_log.close()


@pytest.fixture
def lab(netns_ok, tmp_path):
    made = []

    def make(hosts: int = 1, options=("--announce", "multicast")):
        made.append(Lab(tmp_path, hosts, list(options)))
        return made[-1]

    try:
        yield make
    finally:
        for one in made:
            one.close()
            left = set(one.topo.namespaces) & set(existing_namespaces())
            assert not left, f"namespaces left behind: {left}"


UPNP_GATEWAY = ("--announce", "multicast", "--igd", "v2", "--http-port", str(HTTP_PORT), "--ssdp", "multicast")


@pytest.mark.parametrize("method", ["natpmp", "upnp"])
def test_a_reboot_is_repaired_within_a_second(lab, method):
    """NAT-PMP: the announcement restores at once; UPnP IGD: the ssdp:alive NOTIFY with a new BOOTID."""
    lab = lab(options=UPNP_GATEWAY if method == "upnp" else ("--announce", "multicast"))
    lab.map(0, method)
    lab.watch(0, method)
    times = []
    for _reboot in range(2):
        time.sleep(3)  # up a while: an epoch of 0 right after the last one would not show a reboot (RFC 6886 3.6)
        times.append(lab.restored_after(0, 5.0))
    print(f"{method}: restored {', '.join(f'{t:.3f} s' for t in times)} after the reboots")
    assert max(times) < 1.0, times
    log = lab.log(0)
    reason = "NAT-PMP announcement (epoch 0): the gateway lost its mappings; restoring 2 mapping(s) now" \
        if method == "natpmp" else "ssdp:alive with BOOTID"
    assert log.count(reason) == 2, log
    assert lab.stop_watch(0) == 0
    assert lab.log(0).rstrip().endswith("watch: stopped")
    assert json.loads((lab.tmp / "h0.json").read_text())["mappings"]  # whole, and still there


def test_pcp_restores_after_the_rfc_random_wait(lab):
    """RFC 6887 section 14.1.3: a random wait of 0 to 5 s, then every mapping renewed."""
    lab = lab()
    lab.map(0, "pcp")
    lab.watch(0, "pcp")
    restored = lab.restored_after(0, 8.0)
    line = [x for x in lab.log(0).splitlines() if "PCP's random wait" in x or "random wait" in x][-1]
    wait = float(line.split(" in ")[-1].split(" s ")[0])
    print(f"pcp: restored {restored:.3f} s after the reboot; the random wait drawn: {wait:.2f} s")
    assert 0.0 <= wait <= 5.0
    assert wait - 0.05 <= restored <= wait + 1.0, (wait, restored)
    assert lab.log(0).count("random wait") == 1  # the repeated announcements draw no new wait


def _announcement(kind: str) -> bytes:
    if kind == "natpmp":
        return wire_natpmp.encode_announcement(0, "6.6.6.6")
    if kind == "pcp":
        return wire_pcp.encode_announcement(0)
    return ("NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n"
            "USN: uuid:forged::upnp:rootdevice\r\nLOCATION: http://192.168.77.11:5000/rootDesc.xml\r\n"
            "BOOTID.UPNP.ORG: 99\r\n\r\n").encode()


FORGE = """
import socket, sys
data, group, port, to = bytes.fromhex(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
for destination in (group, to):
    s.sendto(data, (destination, port))
"""


def test_forged_announcements_from_another_address_change_nothing(lab):
    lab = lab(hosts=2, options=UPNP_GATEWAY)
    lab.map(0, "natpmp")
    lab.map(0, "upnp", mappings=(("tcp", 2222),))
    lab.watch(0, "natpmp")
    lab.ctl({"cmd": "clear_log"})
    for kind, group, port in (("natpmp", "224.0.0.1", 5350), ("pcp", "224.0.0.1", 5350),
                              ("upnp", "239.255.255.250", 1900)):
        sent = lab.topo.run(lab.topo.hosts[1], [sys.executable, "-c", FORGE, _announcement(kind).hex(), group,
                                                str(port), lab.host(0)])
        assert sent.returncode == 0, sent.stderr
    time.sleep(1.5)
    asked = [e for e in lab.ctl({"cmd": "log"})["log"] if e["client"].split(":")[0] == lab.host(0)]
    assert asked == [], asked
    log = lab.log(0)
    assert "ignored" in log and f"announcement from {lab.host(1)}" in log, log
    assert "lost its mappings" not in log
    # the same listener hears the gateway itself: the test would see a deaf watch
    assert lab.restored_after(0, 3.0, want=MAPPINGS + (("tcp", 2222),)) < 1.0


def test_short_leases_kept_for_ten_lifetimes_with_30_percent_dropped(lab):
    """The simulator's lifetime cap (6 s), 10 lifetimes, 30 % of the requests dropped: never out of the table."""
    lab = lab(hosts=2, options=("--announce", "multicast", "--lifetime-cap", "6"))
    lab.map(0, "natpmp", lifetime=6)
    lab.map(1, "pcp", lifetime=6)
    # renewal at half the lease leaves 3 s (PCP: 2.25 s to 3 s): a deadline of 0.8 s per request (three
    # sends) leaves room for two failed requests in a row, and the retry, before the lease ends
    lab.watch(0, "natpmp", timeout=0.8)
    lab.watch(1, "pcp", timeout=0.8)
    lab.ctl({"cmd": "fault", "kind": "drop", "probability": 0.3, "seed": 11})
    start, missing, samples = time.monotonic(), [], 0
    while time.monotonic() - start < 60:
        for index in (0, 1):
            if lab.held(index) != set(MAPPINGS):
                missing.append((round(time.monotonic() - start, 2), index, sorted(lab.held(index))))
        samples += 1
        time.sleep(0.1)
    log = [e for e in lab.ctl({"cmd": "log"})["log"] if e.get("fault") == "drop"]
    print(f"{samples} samples of both hosts over 60 s; {len(log)} requests dropped; missing: {missing}")
    assert len(log) >= 10  # the fault did strike
    assert missing == [], lab.log(0) + lab.log(1)
    assert all(lab.stop_watch(i) == 0 for i in (0, 1))


def test_a_new_mapping_a_bad_ledger_and_the_signals(lab):
    lab = lab(options=("--announce", "multicast", "--lifetime-cap", "4"))
    lab.map(0, "natpmp", mappings=(("tcp", 8080),))
    process = lab.watch(0, "natpmp")
    lab.map(0, "natpmp", lifetime=4, mappings=(("udp", 9999),))  # the command changes the ledger
    wait_for(lambda: "watch: ledger changed: 2 mapping(s)" in lab.log(0), timeout=5, what="the watch to re-read")
    ledger = lab.tmp / "h0.json"
    good = ledger.read_text()
    ledger.write_text(good[: len(good) // 2])  # briefly invalid
    wait_for(lambda: "keeping the last good one (2 mapping(s))" in lab.log(0), timeout=5, what="the bad ledger noted")
    time.sleep(5)  # more than a lifetime of udp/9999: renewed from the last good content meanwhile
    assert lab.held(0) == {("tcp", 8080), ("udp", 9999)}
    assert ledger.read_text() == good[: len(good) // 2]  # the user's file was not overwritten
    ledger.write_text(good)
    wait_for(lambda: "is good again: 2 mapping(s)" in lab.log(0), timeout=5, what="the good ledger noted")
    # SIGHUP: the log file is reopened at its path (logrotate moved it)
    moved = lab.tmp / "watch0.log.1"
    os.rename(lab.tmp / "watch0.log", moved)
    process.send_signal(signal.SIGHUP)
    wait_for(lambda: "renewed UDP internal port 9999" in lab.log(0), timeout=5, what="a line in the new log file")
    assert process.poll() is None
    assert lab.stop_watch(0) == 0
    assert lab.log(0).rstrip().endswith("watch: stopped") and "watch: stopped" not in moved.read_text()
    json.loads(ledger.read_text())  # whole


def test_an_unreachable_gateway_is_backed_off_from_and_found_again(lab):
    lab = lab(options=("--announce", "multicast", "--lifetime-cap", "4"))
    lab.map(0, "natpmp", lifetime=4)
    process = lab.watch(0, "natpmp")
    lab.ctl({"cmd": "fault", "kind": "drop"})  # every request, until cleared
    lab.ctl({"cmd": "clear_log"})
    time.sleep(12)
    assert process.poll() is None, "the watch exited"
    sent = [e for e in lab.ctl({"cmd": "log"})["log"] if e["client"].split(":")[0] == lab.host(0)]
    log = lab.log(0)
    delays = [float(x.split("trying again in ")[1].split(" s")[0]) for x in log.splitlines() if "trying again in" in x]
    print(f"12 s unreachable: {len(sent)} datagrams sent; back-off delays {delays}")
    # the first retry comes sooner while the lease still runs (a third of what it has left), then 1, 2, 4 s
    assert delays[0] <= 0.5 and delays[1:4] == [1.0, 2.0, 4.0], delays
    assert len(sent) <= 40  # about 3 per pass (1 s timeout), 6 passes: no spinning
    lab.ctl({"cmd": "clear_faults"})
    wait_for(lambda: lab.held(0) == set(MAPPINGS), timeout=12, what="the mappings back")
    assert "answers again" in lab.log(0)
    assert lab.stop_watch(0) == 0


def test_upnp_without_notify_is_repaired_by_the_periodic_check(lab):
    lab = lab(options=("--speaks", "none", "--igd", "v2", "--http-port", str(HTTP_PORT), "--ssdp", "unicast"))
    lab.map(0, "upnp")
    lab.watch(0, "upnp", "--upnp-check", "2")  # its first pass was 0.5 s ago: the next check in 1.5 s
    restored = lab.restored_after(0, 5.0)
    print(f"upnp, no NOTIFY, checked every 2 s: restored {restored:.3f} s after the reboot")
    assert 1.0 <= restored <= 2.5
    assert "ssdp:alive" not in lab.log(0)
    assert lab.stop_watch(0) == 0


def test_the_on_change_hook_hears_of_a_new_public_address_after_a_reboot(lab):
    lab = lab()
    lab.map(0, "natpmp")
    told = lab.tmp / "told.txt"
    hook = ["/bin/sh", "-c", f'echo "$PORTMAP_PROTOCOL $PORTMAP_PUBLIC_ADDRESS $PORTMAP_PREVIOUS_PUBLIC_ADDRESS" >> {told}']
    lab.watch(0, "natpmp", "--on-change", *hook)
    wait_for(lambda: told.exists() and len(told.read_text().splitlines()) == 2, timeout=5,
             what="the hook told of the endpoints nobody was told of yet")
    assert sorted(x.strip() for x in told.read_text().splitlines()) == ["tcp 11.22.33.2", "udp 11.22.33.2"]
    time.sleep(3)
    lab.ctl({"cmd": "set", "public_address": "11.22.33.99"})
    assert lab.restored_after(0, 5.0) < 1.0
    wait_for(lambda: len(told.read_text().splitlines()) == 4, timeout=5, what="the hook told of the new address")
    assert sorted(told.read_text().splitlines()[2:]) == ["tcp 11.22.33.99 11.22.33.2", "udp 11.22.33.99 11.22.33.2"]
    # the watch logs that the hook ran once the hook has exited, after it wrote its line: wait for the log too
    wait_for(lambda: lab.log(0).count("on-change hook /bin/sh ran") >= 4, timeout=5, what="the fourth run logged")
    assert lab.log(0).count("on-change hook /bin/sh ran") == 4
    assert lab.stop_watch(0) == 0


def test_without_a_hook_a_new_endpoint_is_logged_once_across_restarts(lab):
    """No on-change hook: the watch logs a new public endpoint once and records it as told, so a
    restarted watch (or the job) does not call it new again."""
    one = lab()
    one.map(0, "natpmp")
    one.watch(0, "natpmp")
    assert one.stop_watch(0) == 0
    one.watch(0, "natpmp")
    assert one.stop_watch(0) == 0
    log = one.log(0)
    assert log.count("(new)") == len(MAPPINGS), log
    entries = json.loads((one.tmp / "h0.json").read_text())["mappings"]
    assert all(e["notified"] == {"external_port": e["external_port"], "public_address": e["public_address"]}
               for e in entries), entries
