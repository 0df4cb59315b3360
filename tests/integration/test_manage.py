"""The declarative layer the modules call (manage.Manager), against the simulated gateway.

The playbook tests cover the modules end to end; these pin the rules of `changed`, check
mode and the ledger that are awkward to reach from a playbook (expiry, a moved port, a
declared change, failures recorded per mapping).
"""

from __future__ import annotations

import json

import pytest

from portmap.client import Client
from portmap import ledger as ledger_module, manage
from portmap.errors import InputError
from portmap.manage import ApplyError, Desired
from tests.harness.faces import WANT, manager


def requests(gw):
    return [(e.get("op"), e.get("internal_port"), e.get("lifetime")) for e in gw.ctl({"cmd": "log"})["log"]]


def test_first_run_changed_second_not(gw, tmp_path):
    assert manager(gw, tmp_path).present(WANT)["changed"]
    assert not manager(gw, tmp_path).present(WANT)["changed"]


def test_expired_mapping_is_changed(gw, tmp_path):
    manager(gw, tmp_path).present(WANT)
    path = tmp_path / "ledger.json"
    document = json.loads(path.read_text())
    document["mappings"][0]["expires_at"] = 1.0  # lapsed long ago
    path.write_text(json.dumps(document))
    assert manager(gw, tmp_path).present(WANT)["changed"]


def test_another_port_granted_is_changed(gw, tmp_path, loopback_address_pool):
    manager(gw, tmp_path).present(WANT)
    gw.ctl({"cmd": "reboot"})  # the gateway forgets our mapping...
    other = Client(gw.address, lock_path=str(tmp_path / "lock2"), source_address=loopback_address_pool())
    other.map("tcp", 9999, 8080, 600)  # ...and another client takes 8080
    result = manager(gw, tmp_path).present(WANT)
    assert result["changed"] and result["mappings"][0]["external_port"] != 8080


def test_declared_lifetime_change_is_changed(gw, tmp_path):
    manager(gw, tmp_path).present(WANT)
    result = manager(gw, tmp_path).present([Desired("tcp", 8080, 8080, 600)])
    assert result["changed"] and result["mappings"][0]["lifetime"] == 600


def test_check_mode_sends_only_the_public_address_request(gw, tmp_path):
    gw.ctl({"cmd": "clear_log"})
    result = manager(gw, tmp_path, check_mode=True).present(WANT + [Desired("udp", 53, 53, 60)])
    assert result["changed"]
    assert requests(gw) == [(0, None, None)]
    assert not (tmp_path / "ledger.json").exists()
    manager(gw, tmp_path).present(WANT)
    gw.ctl({"cmd": "clear_log"})
    result = manager(gw, tmp_path, check_mode=True).absent(WANT)
    assert result["changed"] and result["removed"][0]["internal_port"] == 8080
    assert requests(gw) == []
    assert len(json.loads((tmp_path / "ledger.json").read_text())["mappings"]) == 1


def test_failure_is_recorded_per_mapping_and_the_rest_is_kept(gw, tmp_path):
    manager(gw, tmp_path).present(WANT + [Desired("tcp", 8081, 8081, 3600)])
    gw.ctl({"cmd": "rules", "rules": [{"action": "deny", "ports": "8081-8081"}]})
    with pytest.raises(ApplyError) as caught:
        manager(gw, tmp_path).present(WANT + [Desired("tcp", 8081, 8081, 3600)])
    assert "NOT_AUTHORIZED" in str(caught.value)
    entries = {m["internal_port"]: m for m in json.loads((tmp_path / "ledger.json").read_text())["mappings"]}
    assert entries[8080]["last_renewal"]["ok"] is True
    assert entries[8081]["last_renewal"]["ok"] is False
    assert "NOT_AUTHORIZED" in entries[8081]["last_renewal"]["error"]


def test_timeout_keeps_the_ledger_entry_and_records_it(gw, tmp_path):
    manager(gw, tmp_path).present(WANT)
    gw.ctl({"cmd": "fault", "kind": "drop", "ops": ["map"]})
    with pytest.raises(ApplyError, match="no answer"):
        manager(gw, tmp_path, timeout=0.5).absent(WANT)
    entry = json.loads((tmp_path / "ledger.json").read_text())["mappings"][0]
    assert entry["internal_port"] == 8080 and entry["last_renewal"]["ok"] is False


def test_info_reports_a_silent_gateway_without_failing(gw, tmp_path):
    manager(gw, tmp_path).present(WANT)
    gw.ctl({"cmd": "fault", "kind": "drop"})
    facts = manager(gw, tmp_path, timeout=0.5).info()
    assert not facts["answers"] and "no answer" in facts["error"]
    assert facts["mappings"][0]["internal_port"] == 8080 and facts["mappings"][0]["time_left"] > 3500
    assert facts["mappings"][0]["last_renewal"]["ok"] is True


def test_normalize_names_fields_and_refuses_duplicates():
    def where(index, name):
        return f"mappings[{index}].{name}"

    assert manage.normalize([{"internal_port": 80, "protocol": "both"}], where) == [
        Desired("tcp", 80, 80, 7200, same_port=True), Desired("udp", 80, 80, 7200, same_port=True)]
    with pytest.raises(InputError, match=r"mappings\[1\].internal_port: tcp/80 is already declared by entry 0"):
        manage.normalize([{"internal_port": 80}, {"internal_port": 80, "external_port": 81}], where)


def test_default_ledger_folder_created_0755_and_given_folder_must_exist(tmp_path, monkeypatch):
    default = tmp_path / "var" / "lib" / "portmap-natpmp" / "ledger.json"
    monkeypatch.setattr(ledger_module, "DEFAULT_PATH", str(default))
    assert ledger_module.prepare_ledger_path(None, create_folder=False) == str(default)
    assert not default.parent.exists()
    assert ledger_module.prepare_ledger_path(None) == str(default)
    assert oct(default.parent.stat().st_mode & 0o777) == "0o755"
    with pytest.raises(ledger_module.LedgerError, match="does not exist"):
        ledger_module.prepare_ledger_path(str(tmp_path / "missing" / "ledger.json"))


# ------------------------------------------------------------------ PCP and the fallback


def pcp_log(gw):
    """(method, op, internal port, lifetime, nonce) of each request the gateway saw."""
    return [(e.get("method"), e.get("op"), e.get("internal_port"), e.get("lifetime"), e.get("nonce"))
            for e in gw.ctl({"cmd": "log"})["log"]]


def test_pcp_nonce_is_recorded_and_reused_for_renewal_and_delete(gw, tmp_path):
    result = manager(gw, tmp_path, method="auto").present(WANT)
    assert result["changed"] and result["method"] == "pcp" and result["public_address"] == "11.22.33.2"
    nonce = json.loads((tmp_path / "ledger.json").read_text())["mappings"][0]["nonce"]
    assert len(nonce) == 24 and gw.ctl({"cmd": "table"})["mappings"][0]["nonce"] == nonce
    gw.ctl({"cmd": "clear_log"})
    assert not manager(gw, tmp_path, method="auto").present(WANT)["changed"]
    log = pcp_log(gw)  # auto asks PCP and NAT-PMP at once (and searches for an IGD), then maps with PCP
    assert sorted(log[:2]) == [("natpmp", 0, None, None, None), ("pcp", 0, None, None, None)]
    assert log[2:] == [("pcp", 1, 8080, 3600, nonce)]
    gw.ctl({"cmd": "clear_log"})
    assert manager(gw, tmp_path, method="auto").absent(WANT)["changed"]
    assert pcp_log(gw) == [("pcp", 1, 8080, 0, nonce)]
    assert gw.ctl({"cmd": "table"})["mappings"] == []


def test_pcp_check_mode_sends_only_announce_and_marks_the_address_as_the_ledger_s(gw, tmp_path):
    manager(gw, tmp_path, method="auto").present(WANT)
    gw.ctl({"cmd": "clear_log"})
    result = manager(gw, tmp_path, check_mode=True, method="pcp").present(WANT + [Desired("udp", 5353, 5353, 600)])
    assert result["changed"] and result["public_address"] is None  # the ANNOUNCE said no address
    assert result["recorded"]["public_address"] == "11.22.33.2" and result["epoch"] is not None
    assert pcp_log(gw) == [("pcp", 0, None, None, None)]  # read-only


def test_gateway_that_learns_pcp_gets_the_mapping_moved_to_pcp(gw, tmp_path):
    gw.ctl({"cmd": "set", "speaks": "natpmp"})
    first = manager(gw, tmp_path, method="auto").present(WANT)
    assert first["method"] == "natpmp" and first["changed"]
    gw.ctl({"cmd": "set", "speaks": "both"})
    gw.ctl({"cmd": "clear_log"})
    moved = manager(gw, tmp_path, method="auto").present(WANT)
    assert moved["method"] == "pcp" and moved["changed"] and moved["mappings"][0]["external_port"] == 8080
    log = pcp_log(gw)
    assert sorted(entry[:2] for entry in log[:2]) == [("natpmp", 0), ("pcp", 0)]  # both asked at every run
    log = log[1:]
    assert log[1] == ("natpmp", 2, 8080, 0, None)  # the NAT-PMP mapping is deleted with NAT-PMP...
    assert log[2][:4] == ("pcp", 1, 8080, 3600) and log[2][4]  # ...and made again with PCP and a nonce
    table = gw.ctl({"cmd": "table"})["mappings"]
    assert [(m["method"], m["internal_port"]) for m in table] == [("pcp", 8080)]
    entry = json.loads((tmp_path / "ledger.json").read_text())["mappings"][0]
    assert (entry["method"], entry["nonce"]) == ("pcp", log[2][4])
    assert not manager(gw, tmp_path, method="auto").present(WANT)["changed"]


def test_gateway_that_drops_pcp_gets_the_mapping_moved_to_natpmp(gw, tmp_path):
    assert manager(gw, tmp_path, method="auto").present(WANT)["method"] == "pcp"
    gw.ctl({"cmd": "set", "speaks": "drop-pcp"})
    moved = manager(gw, tmp_path, method="auto", timeout=1.5).present(WANT)
    assert moved["method"] == "natpmp" and moved["changed"]
    entry = json.loads((tmp_path / "ledger.json").read_text())["mappings"][0]
    assert (entry["method"], entry["nonce"]) == ("natpmp", "")
    assert not manager(gw, tmp_path, method="auto", timeout=1.5).present(WANT)["changed"]


def test_a_run_the_gateway_did_not_answer_reports_nothing_as_said_by_it(gw, tmp_path):
    """The epoch and address of a failed run are the ledger's, and marked so, not passed off as the gateway's."""
    manager(gw, tmp_path, method="natpmp").present(WANT)
    gw.ctl({"cmd": "fault", "kind": "drop"})
    with pytest.raises(ApplyError) as failed:
        manager(gw, tmp_path, method="natpmp", timeout=0.5).present(WANT)
    result = failed.value.result
    assert result["public_address"] is None and result["epoch"] is None
    assert result["recorded"]["public_address"] == "11.22.33.2" and isinstance(result["recorded"]["epoch"], int)
