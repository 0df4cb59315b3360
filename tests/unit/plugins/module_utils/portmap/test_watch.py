"""The watch's decisions: renewal points, announcements, back-off, a bad ledger (no network, a fake clock)."""

from __future__ import annotations

import random
import socket

import pytest

from portmap import announce, wire_natpmp, wire_pcp
from portmap.announce import Announcement, Listener
from portmap.epoch import EpochObservation
from portmap.errors import GatewayTimeout
from portmap.ledger import Ledger, LedgerData
from portmap.methods.pcp import RESTORE_WAIT as PCP_RESTORE_WAIT
from portmap.watch import BACKOFF_CAP, Watcher

from tests.unit.plugins.module_utils.portmap.test_ledger import make_entry

GW = "127.0.0.1"


class Clock:
    def __init__(self, now=2000.0):
        self.now = now

    def __call__(self):
        return self.now


class QuietListener:
    problems = []

    def __init__(self, *_args, **_kwargs):
        self.closed = False
        self.ignored = 0

    def filenos(self):
        return []

    def receive(self, _ready):
        return []

    def close(self):
        self.closed = True


def unreachable(*_args, **_kwargs):
    raise GatewayTimeout("no answer from the gateway (test)")


def watcher(tmp_path, entries, seed=5, clock=None, factory=unreachable):
    ledger = Ledger(str(tmp_path / "ledger.json"))
    data = LedgerData()
    for entry in entries:
        data.put(entry)
    ledger.save(data)
    lines = []
    made = Watcher(ledger, factory, lines.append, rng=random.Random(seed), clock=clock or Clock(),
                   listener_factory=QuietListener)
    made.reload(force=True)
    return made, lines


def test_renewal_points_half_the_lease_and_pcp_between_half_and_five_eighths(tmp_path):
    natpmp = make_entry(8080)  # granted at 1000 for 3600 s: half at 2800
    pcp = make_entry(9090, method="pcp")
    watch, _lines = watcher(tmp_path, [natpmp, pcp])
    assert watch.point(natpmp) == pytest.approx(2800.05)
    at = watch.point(pcp)
    assert 2800.05 <= at <= 2800.05 + 3600 / 8
    assert watch.point(pcp) == at  # drawn once per grant
    again, _lines = watcher(tmp_path, [natpmp, pcp])
    assert again.point(pcp) == at  # seeded
    assert watch.point(make_entry(7070, method="upnp", permanent=True, lifetime=0)) is None
    assert watch.due(2800.0) == [] and watch.due(2800.1) == [GW]


def test_a_natpmp_announcement_of_lost_state_restores_at_once(tmp_path):
    watch, lines = watcher(tmp_path, [make_entry(8080)])
    watch.heard(Announcement("natpmp", GW, epoch=0, public_address="11.22.33.2"))
    assert watch.pending[GW][0] == 2000.0 and "restoring 1 mapping(s) now" in lines[-1]
    assert watch.due(2000.0) == [GW]


def test_a_pcp_announcement_waits_the_rfc_random_wait_once(tmp_path):
    watch, lines = watcher(tmp_path, [make_entry(8080, method="pcp")], seed=9)
    watch.heard(Announcement("pcp", GW, epoch=0))
    at = watch.pending[GW][0]
    assert 2000.0 <= at <= 2000.0 + PCP_RESTORE_WAIT
    assert at == 2000.0 + random.Random(9).uniform(0, PCP_RESTORE_WAIT)
    assert "PCP's random wait" in lines[-1]
    watch.heard(Announcement("pcp", GW, epoch=0))  # the repeats draw no new wait
    watch.heard(Announcement("natpmp", GW, epoch=0, public_address="11.22.33.2"))
    assert watch.pending[GW][0] == at and len(lines) == 1


def test_an_announcement_without_lost_state_does_nothing_unless_the_address_moved(tmp_path):
    watch, lines = watcher(tmp_path, [make_entry(8080)])  # epoch 50 seen at 1000; now 2000
    watch.heard(Announcement("natpmp", GW, epoch=1050, public_address="11.22.33.2"))
    assert watch.pending == {} and lines == []
    watch.clock.now = 1001.0
    watch.heard(Announcement("natpmp", GW, epoch=49, public_address="11.22.33.2"))  # crossed a reply
    assert watch.pending == {}
    watch.clock.now = 2000.0
    watch.heard(Announcement("natpmp", GW, epoch=1050, public_address="6.7.8.9"))
    assert watch.pending[GW][2] is True and "public address now 6.7.8.9" in lines[-1]


def test_upnp_notify_with_a_new_bootid_checks_the_gateway(tmp_path):
    watch, lines = watcher(tmp_path, [make_entry(8080, method="upnp")])
    watch.heard(Announcement("upnp", GW, boot_id=4, nts="ssdp:byebye"))
    assert watch.pending == {}
    watch.heard(Announcement("upnp", GW, boot_id=4, nts="ssdp:alive"))
    assert GW in watch.pending and "BOOTID 4" in lines[-1]
    watch.pending.clear()
    watch.heard(Announcement("upnp", GW, boot_id=4, nts="ssdp:alive"))  # the same boot: nothing
    assert watch.pending == {}
    watch.heard(Announcement("upnp", GW, boot_id=5, nts="ssdp:alive"))
    assert "BOOTID 5 (was 4)" in lines[-1]
    natpmp_only, _lines = watcher(tmp_path, [make_entry(8080)])
    natpmp_only.heard(Announcement("upnp", GW, boot_id=9, nts="ssdp:alive"))
    assert natpmp_only.pending == {}


def test_an_unreachable_gateway_is_backed_off_from(tmp_path):
    clock = Clock(2800.1)  # the renewal point has passed; the lease runs until 4600
    watch, lines = watcher(tmp_path, [make_entry(8080)], clock=clock)
    delays = []
    for _attempt in range(10):
        watch.act(GW)
        delays.append(round(watch.retry_at[GW] - clock.now, 3))
        clock.now = watch.retry_at[GW]
    assert delays == [0.5, 1, 2, 4, 8, 16, 32, BACKOFF_CAP, BACKOFF_CAP, BACKOFF_CAP]
    assert sum("trying again in" in line for line in lines) == 10
    assert watch.due(clock.now - 0.01) == [] and watch.due(clock.now) == [GW]


def test_the_back_off_leaves_room_before_a_lease_ends(tmp_path):
    clock = Clock(4599.1)  # 0.9 s left
    watch, _lines = watcher(tmp_path, [make_entry(8080)], clock=clock)
    watch.act(GW)
    assert watch.retry_at[GW] - clock.now == pytest.approx(0.3)


def test_an_announcement_overrides_the_back_off(tmp_path):
    clock = Clock(2800.1)
    watch, _lines = watcher(tmp_path, [make_entry(8080)], clock=clock)
    for _attempt in range(5):
        watch.act(GW)
    clock.now += 1
    assert watch.due(clock.now) == []  # backing off for 8 s
    watch.heard(Announcement("natpmp", GW, epoch=0, public_address="11.22.33.2"))
    assert watch.due(clock.now) == [GW]


def test_a_bad_ledger_keeps_the_last_good_one_and_leaves_the_file_alone(tmp_path):
    clock = Clock(2800.1)
    watch, lines = watcher(tmp_path, [make_entry(8080), make_entry(9090)], clock=clock)
    path = tmp_path / "ledger.json"
    path.write_text("{ not json")
    watch.reload()
    assert watch.kept and len(watch.data.entries) == 2
    assert lines[-1].startswith("watch: ledger") and "keeping the last good one (2 mapping(s))" in lines[-1]
    watch.reload()
    assert len([x for x in lines if "keeping the last good one" in x]) == 1  # logged once
    watch.act(GW)  # renews from memory; the failure is noted there, not in the file
    assert path.read_text() == "{ not json"
    assert watch.data.entries[0].last_renewal.ok is False
    good = LedgerData()
    good.put(make_entry(8080))
    Ledger(str(path)).save(good)
    watch.reload()
    assert not watch.kept and len(watch.data.entries) == 1 and "is good again: 1 mapping(s)" in lines[-1]


def test_the_newest_epoch_of_the_ledger_counts(tmp_path):
    watch, _lines = watcher(tmp_path, [make_entry(8080)])  # the mapping's epoch: 50 at 1000
    from portmap.ledger import GatewayRecord  # pylint: disable=import-outside-toplevel

    watch.heard(Announcement("natpmp", GW, epoch=15, public_address="11.22.33.2"))
    assert GW in watch.pending  # epoch 15 after 50: lost, by the mapping's epoch alone
    watch.pending.clear()
    watch.data.gateways[GW] = GatewayRecord("natpmp", EpochObservation(10, 1995.0))  # a later pass saw 10
    watch.heard(Announcement("natpmp", GW, epoch=15, public_address="11.22.33.2"))
    assert watch.pending == {}  # consistent with the gateway's own, newer record


def test_announcements_decoded():
    natpmp = announce.decode(wire_natpmp.encode_announcement(7, "11.22.33.2"), GW, ("natpmp", "pcp"))
    assert (natpmp.kind, natpmp.epoch, natpmp.public_address) == ("natpmp", 7, "11.22.33.2")
    pcp = announce.decode(wire_pcp.encode_announcement(9), GW, ("natpmp", "pcp"))
    assert (pcp.kind, pcp.epoch) == ("pcp", 9)
    notify = ("NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n"
              "USN: uuid:x::upnp:rootdevice\r\nLOCATION: http://127.0.0.1:5000/rootDesc.xml\r\n"
              "BOOTID.UPNP.ORG: 12\r\n\r\n").encode()
    upnp = announce.decode(notify, GW, ("upnp",))
    assert (upnp.kind, upnp.boot_id, upnp.nts) == ("upnp", 12, "ssdp:alive")
    map_reply = wire_natpmp.encode_map_reply("tcp", 0, 7, 8080, 8080, 3600)  # a reply, not an announcement
    for other in (map_reply, b"", b"\x00", b"\x02" * 3, b"M-SEARCH * HTTP/1.1\r\n\r\n", bytes(range(256))):
        assert announce.decode(other, GW, ("natpmp", "pcp")) is None


def test_the_listener_keeps_only_what_the_gateways_send():
    listener = Listener({"127.0.0.1": "127.0.0.1"}, ())  # no port bound: a socket of its own below
    inbox = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inbox.bind(("127.0.0.1", 0))
    inbox.setblocking(False)
    listener.sockets.append((inbox, ("natpmp", "pcp")))
    senders = []
    try:
        for source in ("127.0.0.1", "127.0.0.2"):
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            senders.append(sender)
            sender.bind((source, 0))
            sender.sendto(wire_natpmp.encode_announcement(0, "11.22.33.2"), inbox.getsockname())
        import select  # pylint: disable=import-outside-toplevel

        select.select([inbox], [], [], 1.0)
        heard = []
        for _round in range(20):
            heard += listener.receive(listener.filenos())
            if len(heard) + listener.ignored >= 2:
                break
            select.select([inbox], [], [], 0.05)
        assert [(a.kind, a.source) for a in heard] == [("natpmp", "127.0.0.1")]
        assert listener.ignored == 1 and listener.last_ignored == "natpmp announcement from 127.0.0.2"
    finally:
        listener.close()
        for sender in senders:
            sender.close()
