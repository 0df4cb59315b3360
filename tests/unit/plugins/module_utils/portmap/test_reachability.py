"""Special-purpose ranges and the reachable / double_nat verdict."""

from __future__ import annotations

import pytest

from portmap.reachability import assess, range_warning, special_range

CGNAT_WARNING = ("the gateway's public address 100.64.3.7 is in the carrier-grade NAT range: "
                 "this mapping is not reachable from the Internet")


@pytest.mark.parametrize("address, name", [
    ("0.1.2.3", "'this network' range"),
    ("10.1.2.3", "private range"),
    ("172.16.0.1", "private range"),
    ("172.31.255.255", "private range"),
    ("192.168.1.1", "private range"),
    ("100.64.0.0", "carrier-grade NAT range"),
    ("100.127.255.255", "carrier-grade NAT range"),
    ("127.0.0.1", "loopback range"),
    ("169.254.1.1", "link-local range"),
    ("192.0.0.8", "IETF protocol assignments range"),
    ("192.0.2.7", "documentation range (TEST-NET-1)"),
    ("198.51.100.7", "documentation range (TEST-NET-2)"),
    ("203.0.113.7", "documentation range (TEST-NET-3)"),
    ("198.18.0.1", "benchmarking range"),
    ("198.19.255.255", "benchmarking range"),
    ("224.0.0.1", "multicast range"),
    ("240.0.0.1", "reserved range"),
    ("255.255.255.255", "limited broadcast range"),
])
def test_special_ranges(address, name):
    assert special_range(address).name == name
    assert range_warning(address) == (f"the gateway's public address {address} is in the {name}: "
                                      "this mapping is not reachable from the Internet")


@pytest.mark.parametrize("address", ["11.22.33.2", "100.63.255.255", "100.128.0.0", "172.32.0.1", "8.8.8.8",
                                     "198.20.0.0", "1.1.1.1", "not an address", "2001:db8::1", ""])
def test_global_or_other_addresses(address):
    assert special_range(address) is None and range_warning(address) is None


def test_cgnat_warning_words():
    assert range_warning("100.64.3.7") == CGNAT_WARNING


@pytest.mark.parametrize("public, seen, reachable, double_nat, warnings", [
    (None, None, None, None, 0),
    (None, "11.22.33.2", None, None, 0),  # no gateway address: nothing to compare
    ("11.22.33.2", None, None, None, 0),  # nothing tells
    ("11.22.33.2", "11.22.33.2", True, False, 0),  # STUN confirms
    ("11.22.33.2", "11.22.33.9", False, True, 1),  # STUN disagrees
    ("100.64.3.7", None, False, True, 1),  # the range tells
    ("100.64.3.7", "11.22.33.2", False, True, 2),
    ("100.64.3.7", "100.64.3.7", False, True, 1),  # a STUN server inside the carrier's network
])
def test_assess(public, seen, reachable, double_nat, warnings):
    verdict = assess(public, seen, "11.22.33.1:3478")
    assert (verdict.reachable, verdict.double_nat, len(verdict.warnings)) == (reachable, double_nat, warnings)
    assert verdict.as_dict() == {"reachable": reachable, "double_nat": double_nat, "warnings": verdict.warnings}


def test_disagreement_warning_names_both_addresses_and_the_server():
    (text,) = assess("11.22.33.2", "11.22.33.9", "11.22.33.1:3478").warnings
    assert "11.22.33.1:3478" in text and "11.22.33.9" in text and "11.22.33.2" in text
    assert text.endswith("this mapping is not reachable from the Internet")
    assert assess("100.64.3.7").warnings == [CGNAT_WARNING]
