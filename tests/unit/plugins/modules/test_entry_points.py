"""natpmp_mapping and natpmp_info through main(): what Ansible sees of them."""

from __future__ import annotations

from ansible_collections.portmap.natpmp.plugins.modules import natpmp_info, natpmp_mapping


def test_mapping_lifecycle(gateway, run_module, tmp_path):
    args = dict(gateway=gateway.address, ledger_path=str(tmp_path / "ledger.json"), internal_port=8080,
                external_port=8080, lifetime=600, method="natpmp")
    status, result = run_module(natpmp_mapping, check_mode=True, diff=True, **args)
    assert (status, result["changed"], len(gateway.ctl({"cmd": "table"})["mappings"])) == (0, True, 0)
    assert result["diff"]["before"] != result["diff"]["after"]

    status, result = run_module(natpmp_mapping, **args)
    assert (status, result["changed"], result["method"]) == (0, True, "natpmp")
    assert result["public_address"] == gateway.public_address
    assert [m["external_port"] for m in result["mappings"]] == [8080]
    assert len(gateway.ctl({"cmd": "table"})["mappings"]) == 1

    status, result = run_module(natpmp_mapping, **args)
    assert (status, result["changed"]) == (0, False)

    status, result = run_module(natpmp_mapping, state="absent", **args)
    assert (status, result["changed"], gateway.ctl({"cmd": "table"})["mappings"]) == (0, True, [])


def test_mapping_over_pcp(gateway, run_module, tmp_path):
    status, result = run_module(natpmp_mapping, gateway=gateway.address, ledger_path=str(tmp_path / "ledger.json"),
                                internal_port=9000, protocol="udp", lifetime=600)
    assert (status, result["changed"], result["method"]) == (0, True, "pcp")
    assert [(m["method"], m["protocol"]) for m in gateway.ctl({"cmd": "table"})["mappings"]] == [("pcp", "udp")]


def test_info_gateway_and_ledger(gateway, run_module, tmp_path):
    ledger = str(tmp_path / "ledger.json")
    run_module(natpmp_mapping, gateway=gateway.address, ledger_path=ledger, internal_port=8080, lifetime=600)
    status, result = run_module(natpmp_info, gateway=gateway.address, ledger_path=ledger)
    assert (status, result["changed"], result["answers"]) == (0, False, True)
    assert result["public_address"] == gateway.public_address
    assert [m["internal_port"] for m in result["mappings"]] == [8080]


def test_bad_arguments_fail(gateway, run_module, tmp_path):
    status, result = run_module(natpmp_mapping, gateway=gateway.address, ledger_path=str(tmp_path / "ledger.json"),
                                internal_port=8080, state="absent", exclusive=True, mappings=None)
    assert status == 1 and result["failed"] is True
    assert "exclusive" in result["msg"]
