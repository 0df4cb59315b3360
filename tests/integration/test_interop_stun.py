"""Our STUN classification against coturn behind real nftables NATs, next to coturn's own client.

For each NAT shape (tests/harness/natshapes.py) the lab is built in sealed namespaces, our
``portmap-natpmp nat --stun-server`` runs in the client's namespace, and so does
``turnutils_natdiscovery -m -f``: our classification is asserted, and our mapping and
filtering behaviours must be the ones coturn's client reports.
"""

from __future__ import annotations

import json

import pytest

from tests.harness import natshapes
from tests.harness.netns import existing_namespaces

pytestmark = pytest.mark.netns

EI, AD, APD = "endpoint-independent", "address-dependent", "address-and-port-dependent"
EXPECTED = {
    # shape: (classic name, mapping, filtering)
    "masquerade": ("Port Restricted-cone NAT", EI, APD),
    "fully-random": ("Symmetric NAT", APD, APD),
    "full-cone": ("Full-cone NAT", EI, EI),
    "no-nat": ("Open Internet", EI, EI),
    "firewall": ("Symmetric UDP Firewall", EI, APD),
    "blocked": ("Blocked", None, None),
    "double-nat": ("Port Restricted-cone NAT", EI, APD),
    "one-address": (None, None, None),  # no RFC 5780: the reflexive address only
}
CGNAT_WARNING = ("the gateway's public address 100.64.0.2 is in the carrier-grade NAT range: "
                 "this mapping is not reachable from the Internet")


@pytest.fixture
def lab(request, netns_ok):  # pylint: disable=unused-argument
    ok, why = natshapes.available()
    if not ok:
        pytest.skip(why)
    made = natshapes.NatLab(request.param)
    try:
        made.create()
        made.assert_sealed()
        yield made
    finally:
        made.destroy()
        left = set(made.namespaces) & set(existing_namespaces())
        assert not left, f"namespaces left behind: {left}"


@pytest.mark.parametrize("lab", list(EXPECTED), indirect=True)
def test_classification_matches_coturn(lab, tmp_path):
    classic, mapping, filtering = EXPECTED[lab.shape]
    ours = lab.ours(["--timeout", "2", "nat", "--stun-server", f"{lab.server}:3478", "--json"], str(tmp_path))
    assert ours.returncode == 0, ours.stderr
    facts = json.loads(ours.stdout)
    nat = facts["nat"]
    assert (nat["type"], nat["mapping"], nat["filtering"]) == (classic, mapping, filtering), nat
    theirs = lab.natdiscovery()
    assert natshapes.natdiscovery_verdict(theirs.stdout) == (mapping, filtering), theirs.stdout
    said = sorted({line.strip() for line in theirs.stdout.splitlines()
                   if line.strip().startswith(("NAT with", "No NAT", "STUN receive timeout"))})
    print(f"\nSTUN {lab.shape}: ours {classic} ({mapping}, {filtering}) in {nat['elapsed']} s; "
          f"turnutils_natdiscovery: {' / '.join(said) or 'no verdict'}")
    if classic == "Blocked":
        assert nat["address"] is None and nat["elapsed"] == pytest.approx(2.0, abs=0.3)  # the --timeout
        return
    if lab.shape == "one-address":
        assert (nat["rfc5780"], nat["address"], nat["behind_nat"]) == (False, "11.22.33.2", True)
        assert "Other addr" not in theirs.stdout and "UDP reflexive addr: 11.22.33.2" in theirs.stdout
        return
    assert nat["elapsed"] < 2.0 and nat["rfc5780"]
    assert nat["behind_nat"] is (lab.shape not in ("no-nat", "firewall"))
    if lab.shape == "double-nat":
        assert (facts["public_address"], facts["double_nat"], facts["reachable"]) == ("100.64.0.2", True, False)
        assert nat["address"] == "11.22.33.2"
        assert CGNAT_WARNING in facts["warnings"]
        assert any("saw this host as 11.22.33.2" in w for w in facts["warnings"])
        shown = lab.ours(["nat", "--stun-server", f"{lab.server}:3478"], str(tmp_path))
        assert f"warning: {CGNAT_WARNING}" in shown.stdout, shown.stdout
        assert "NAT type: Port Restricted-cone NAT" in shown.stdout
    else:
        assert (facts["double_nat"], facts["reachable"]) == (None, None)  # no gateway answered
