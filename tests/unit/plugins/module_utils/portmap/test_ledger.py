"""The ledger: format, atomic writes that keep owner and mode, errors that touch nothing."""

from __future__ import annotations

import json
import os
import stat

import pytest

from portmap import ledger as ledger_mod
from portmap.epoch import EpochObservation
from portmap.ledger import Entry, Ledger, LedgerData, LedgerError, Notified, Renewal
from portmap.lock import HostLock

from tests.unit.conftest import drop_to_nobody


def make_entry(port=8080, protocol="tcp", gateway="127.0.0.1", **over):
    fields = dict(
        gateway=gateway,
        protocol=protocol,
        internal_port=port,
        external_port=port,
        lifetime=3600,
        granted_at=1000.0,
        expires_at=4600.0,
        requested_external_port=port,
        requested_lifetime=3600,
        epoch=EpochObservation(50, 1000.0),
        public_address="11.22.33.2",
        last_renewal=Renewal(1000.0, True, ""),
    )
    fields.update(over)
    return Entry(**fields)


@pytest.fixture
def request_cleanup():
    actions = []
    yield actions
    for action in actions:
        action()


@pytest.fixture
def ledger(tmp_path):
    return Ledger(str(tmp_path / "ledger.json"), HostLock(str(tmp_path / "lock")))


def test_missing_file_is_an_empty_ledger(ledger):
    assert ledger.load().entries == []
    assert not os.path.exists(ledger.path)


def test_round_trip_keeps_every_field(ledger):
    data = LedgerData()
    data.put(make_entry(8080))
    data.put(make_entry(53, "udp", nonce="0a0b0c0d0e0f101112131415", method="pcp"))
    ledger.save(data)
    loaded = ledger.load()
    assert [e.key for e in loaded.entries] == [("127.0.0.1", "tcp", 8080), ("127.0.0.1", "udp", 53)]
    assert (loaded.entries[1].nonce, loaded.entries[1].method) == ("0a0b0c0d0e0f101112131415", "pcp")
    assert loaded.entries[0].epoch == EpochObservation(50, 1000.0)
    assert loaded.entries[0].last_renewal == Renewal(1000.0, True, "")
    document = json.loads(open(ledger.path, encoding="utf-8").read())
    assert document["schema"] == ledger_mod.SCHEMA_VERSION
    assert set(document["mappings"][0]) == {
        "gateway", "protocol", "internal_port", "external_port", "lifetime", "granted_at", "expires_at",
        "requested_external_port", "requested_lifetime", "epoch", "method", "nonce", "public_address",
        "last_renewal", "same_port", "notified", "internal_client", "description", "permanent",
    }
    assert document["gateways"] == {}


def test_gateway_records_round_trip(ledger):
    data = LedgerData([make_entry(8080, method="upnp", internal_client="192.168.1.20", description="portmap.natpmp web1",
                                  permanent=True)])
    kept = {"description_url": "http://192.168.1.1:5000/rootDesc.xml", "device_type": "urn:x:device:InternetGatewayDevice:2",
            "service_type": "urn:schemas-upnp-org:service:WANIPConnection:2",
            "control_url": "http://192.168.1.1:5000/ctl/IPConn", "version": 2}
    data.gateways["127.0.0.1"] = ledger_mod.GatewayRecord("upnp", EpochObservation(3600, 1000.0), {"upnp": kept})
    ledger.save(data)
    loaded = ledger.load()
    assert loaded.gateways == data.gateways
    entry = loaded.entries[0]
    assert (entry.internal_client, entry.description, entry.permanent) == ("192.168.1.20", "portmap.natpmp web1", True)
    assert not entry.expired(10 ** 10) and entry.time_left(10 ** 10) == 0.0  # a permanent lease never runs out


@pytest.mark.parametrize("gateways, message", [
    ("[]", "'gateways' is not an object"),
    ('{"10.0.0.1": 5}', "gateway '10.0.0.1' is invalid: is not an object"),
    ('{"10.0.0.1": {"method": "upnp", "upnp": {"control_url": 1}}}', "gateway '10.0.0.1' is invalid: field 'upnp'"),
])
def test_a_bad_gateway_record_is_an_error_naming_it(ledger, gateways, message):
    with open(ledger.path, "w", encoding="utf-8") as handle:
        handle.write('{"schema": 2, "mappings": [], "gateways": %s}' % gateways)
    with pytest.raises(LedgerError, match=message):
        ledger.load()


def readme_schema_1_example():
    """The schema 1 ledger the README shows (the block after its marker comment)."""
    here = os.path.dirname(os.path.abspath(__file__))
    readme = os.path.join(here, *[os.pardir] * 5, "README.md")
    text = open(readme, encoding="utf-8").read()  # pylint: disable=consider-using-with
    after = text.split("<!-- ledger schema 1 example -->", 1)[1]
    return json.loads(after.split("```json", 1)[1].split("```", 1)[0])


def test_the_readme_schema_1_example_is_migrated_to_2_losing_no_field(ledger):
    old = readme_schema_1_example()
    assert old["schema"] == 1 and old["mappings"]
    with open(ledger.path, "w", encoding="utf-8") as handle:
        json.dump(old, handle)
    loaded = ledger.load()  # reading migrates in memory; the file stays as it was
    assert json.load(open(ledger.path, encoding="utf-8"))["schema"] == 1  # pylint: disable=consider-using-with
    entry = loaded.entries[0]
    assert (entry.internal_client, entry.description, entry.permanent) == ("", "", False)
    with ledger.transaction() as data:  # the next write (here a renewal's outcome) writes it back as schema 2
        data.entries[0].last_renewal = Renewal(1795000100.5, True, "")
    new = json.load(open(ledger.path, encoding="utf-8"))  # pylint: disable=consider-using-with
    assert new["schema"] == 2
    for before, after in zip(old["mappings"], new["mappings"]):
        before = dict(before, last_renewal={"time": 1795000100.5, "ok": True, "error": ""})
        assert {key: after[key] for key in before} == before  # every field of version 1, as it was
    first = old["mappings"][0]
    assert new["gateways"] == {first["gateway"]: {"method": first["method"], "epoch": first["epoch"], "upnp": None}}


def test_what_the_hook_was_told_and_one_port_are_kept(ledger):
    data = LedgerData()
    data.put(make_entry(51413, same_port=True, notified=Notified(51414, "11.22.33.2")))
    data.put(make_entry(51413, "udp", same_port=True, notified=None))
    ledger.save(data)
    tcp, udp = ledger.load().entries
    assert (tcp.same_port, tcp.notified) == (True, Notified(51414, "11.22.33.2"))
    assert (udp.same_port, udp.notified) == (True, None)


def test_an_entry_from_before_the_hook_field_counts_as_told(ledger):
    """No spurious hook call after an upgrade: an old entry's endpoint is what the hook last heard."""
    entry = make_entry(8080).to_dict()
    for name in ("notified", "same_port"):
        del entry[name]
    with open(ledger.path, "w", encoding="utf-8") as handle:
        json.dump({"schema": 1, "mappings": [entry]}, handle)
    (loaded,) = ledger.load().entries
    assert loaded.notified == Notified(8080, "11.22.33.2") and loaded.same_port is False


def test_new_file_mode_0644(ledger):
    ledger.save(LedgerData([make_entry()]))
    assert stat.S_IMODE(os.stat(ledger.path).st_mode) == 0o644


def test_write_keeps_owner_and_mode(ledger):
    ledger.save(LedgerData([make_entry()]))
    os.chmod(ledger.path, 0o600)
    if os.geteuid() == 0:
        os.chown(ledger.path, 65534, 65534)
    ledger.save(LedgerData([make_entry(), make_entry(9090)]))
    st = os.stat(ledger.path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (65534, 65534)
    assert len(ledger.load().entries) == 2


def test_write_is_atomic_no_temporary_left(ledger, tmp_path):
    ledger.save(LedgerData([make_entry()]))
    ledger.save(LedgerData([make_entry(9090)]))
    assert [name for name in os.listdir(tmp_path) if name != "lock"] == ["ledger.json"]


@pytest.mark.parametrize(
    "content, words",
    [
        ("{not json", "not valid JSON"),
        ("[]", "no integer 'schema'"),
        ('{"schema": 1}', "no 'mappings' list"),
        ('{"schema": 1, "mappings": [{"gateway": "x"}]}', "mapping #0 is invalid"),
        ('{"schema": 1, "mappings": [5]}', "mapping #0 is invalid"),
        ('{"schema": 99, "mappings": []}', "newer"),
        ('{"schema": 0, "mappings": []}', "cannot be migrated"),
    ],
)
def test_bad_ledger_is_an_error_naming_the_path_and_left_untouched(ledger, content, words):
    with open(ledger.path, "w", encoding="utf-8") as handle:
        handle.write(content)
    before = os.stat(ledger.path)
    with pytest.raises(LedgerError) as caught:
        with ledger.transaction() as data:
            data.put(make_entry())
    assert ledger.path in str(caught.value)
    assert words in str(caught.value)
    assert open(ledger.path, encoding="utf-8").read() == content
    assert os.stat(ledger.path).st_mtime_ns == before.st_mtime_ns


@pytest.mark.parametrize("nonce", ["zz" * 12, "ab" * 11, "ab" * 13])
def test_a_malformed_pcp_nonce_is_an_error_naming_the_path(ledger, nonce):
    entry = make_entry().to_dict()
    entry["nonce"] = nonce
    with open(ledger.path, "w", encoding="utf-8") as handle:
        json.dump({"schema": 1, "mappings": [entry]}, handle)
    with pytest.raises(LedgerError, match="mapping #0 is invalid: mapping entry field 'nonce' is not 24 hex digits") as caught:
        ledger.load()
    assert ledger.path in str(caught.value)


def test_a_pcp_nonce_is_kept(ledger):
    entry = make_entry()
    entry.nonce = "0102030405060708090a0b0c"
    ledger.save(LedgerData([entry]))
    assert ledger.load().entries[0].nonce == "0102030405060708090a0b0c"


def test_older_schema_is_migrated(ledger, monkeypatch):
    def from_zero(document):
        return {"mappings": [dict(m, requested_lifetime=m.pop("asked")) for m in document["entries"]]}

    monkeypatch.setitem(ledger_mod.MIGRATIONS, 0, from_zero)
    old = make_entry().to_dict()
    old["asked"] = old.pop("requested_lifetime")
    with open(ledger.path, "w", encoding="utf-8") as handle:
        json.dump({"schema": 0, "entries": [old]}, handle)
    assert ledger.load().entries[0].requested_lifetime == 3600
    with ledger.transaction() as data:
        data.entries[0].lifetime = 1
    assert json.load(open(ledger.path, encoding="utf-8"))["schema"] == ledger_mod.SCHEMA_VERSION


def test_transaction_saves_what_was_done_before_an_error(ledger):
    with pytest.raises(RuntimeError):
        with ledger.transaction() as data:
            data.put(make_entry())
            raise RuntimeError("gateway fell over")
    assert [e.internal_port for e in ledger.load().entries] == [8080]


def test_transaction_without_change_does_not_write(ledger):
    ledger.save(LedgerData([make_entry()]))
    before = os.stat(ledger.path).st_mtime_ns
    with ledger.transaction() as data:
        assert data.find("127.0.0.1", "tcp", 8080) is not None
    assert os.stat(ledger.path).st_mtime_ns == before


def test_transaction_holds_the_host_lock(ledger, tmp_path):
    other = HostLock(ledger.lock.path, timeout=0.05)
    with ledger.transaction():
        assert ledger.lock.held
        with pytest.raises(ledger_mod.PortmapError):
            other.acquire()
    other.acquire()
    other.release()


def test_last_epoch_is_the_newest_observation_for_that_gateway():
    data = LedgerData()
    data.put(make_entry(1, epoch=EpochObservation(10, 100.0)))
    data.put(make_entry(2, epoch=EpochObservation(90, 180.0)))
    data.put(make_entry(3, gateway="127.0.0.2", epoch=EpochObservation(500, 900.0)))
    assert data.last_epoch("127.0.0.1") == EpochObservation(90, 180.0)
    assert data.last_epoch("127.0.0.3") is None


def test_unwritable_folder_is_an_error_and_the_old_file_stays(request_cleanup, unprivileged_python):
    """Another user (the renewal job's) cannot write into root's folder: a clear error."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    tmp_path = Path(tempfile.mkdtemp(prefix="ledger-ro-"))  # pytest's tmp is 0700: nobody could not enter
    os.chmod(tmp_path, 0o755)
    request_cleanup.append(lambda: shutil.rmtree(tmp_path))
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o755)
    led = Ledger(str(folder / "ledger.json"), HostLock(str(tmp_path / "lock")))
    led.save(LedgerData([make_entry()]))
    own = tmp_path / "nobody"  # the job user's lock lives in a folder of its own
    own.mkdir(mode=0o755)
    os.chown(own, 65534, 65534)
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from portmap.ledger import Ledger, LedgerData, LedgerError\n"
        "from portmap.lock import HostLock\n"
        "led = Ledger(%r, HostLock(%r))\n"
        "try:\n    led.save(LedgerData())\nexcept LedgerError as exc:\n    print(exc)\n"
    ) % (os.path.abspath(os.path.dirname(ledger_mod.__file__) + "/.."), led.path, str(own / "lock"))
    out = subprocess.run(
        [unprivileged_python, "-c", script], capture_output=True, text=True, check=True, cwd="/",
        preexec_fn=drop_to_nobody,
    ).stdout
    assert "cannot write ledger" in out and led.path in out
    assert [e.internal_port for e in led.load().entries] == [8080]
