"""RFC 6887 section 8.5: PCP's epoch rule, and each method's class keeping its own rule.

An epoch that went back by more than one second is invalid; otherwise, with
client_delta our elapsed time and server_delta the server's, the epoch is invalid when
client_delta + 2 < server_delta - server_delta/16 or server_delta + 2 < client_delta - client_delta/16.
"""

from __future__ import annotations

import pytest

from portmap.methods import registry as methods
from portmap.epoch import EpochObservation
from portmap.methods.natpmp import lost_state as gateway_lost_state
from portmap.methods.pcp import lost_state as pcp_lost_state


def lost_state(previous, current, method):
    """The rule of the method ``method``, as the client and the watch ask it."""
    return methods.load(method).lost_state(previous, current)


# (previous (epoch, seen_at) or None, current (epoch, seen_at), lost)
PCP_CASES = [
    (None, (0, 0.0), False),
    (None, (5, 1000.0), False),
    ((100, 1000.0), (100, 1000.0), False),
    # backwards: up to one second is reordering, more is invalid
    ((100, 1000.0), (99, 1000.0), False),
    ((100, 1000.0), (99, 1000.5), False),
    ((100, 1000.0), (99, 1001.0), False),  # server_delta + 2 = 1, not < 1 - 1/16
    ((100, 1000.0), (98, 1000.0), True),
    ((100, 1000.0), (98, 1000.5), True),
    ((100, 1000.0), (0, 1000.5), True),
    ((100, 1000.0), (99, 1002.0), True),  # back by 1, but 1 < 2 - 2/16: the delta rule
    # consistent deltas
    ((100, 1000.0), (200, 1100.0), False),
    ((0, 0.0), (86400, 86400.0), False),
    ((100, 1000.0), (101, 1003.0), False),  # short intervals: 2 s slack
    ((100, 1000.0), (100, 990.0), False),  # our clock went back: no evidence
    ((100, 1000.0), (99, 990.0), False),
    ((0, 0.0), (150, 160.0), False),  # server 1/16 slower: 152 < 150 is false
    ((0, 0.0), (160, 150.0), False),  # server 1/16 faster: 152 < 150 is false
    ((0, 0.0), (1500, 1600.0), False),  # 1502 < 1500 is false
    ((0, 0.0), (1600, 1500.0), False),
    # server slow (or restarted): server_delta + 2 < client_delta - client_delta/16
    ((0, 0.0), (1497, 1600.0), True),  # 1499 < 1500
    ((0, 0.0), (873, 1000.0), True),  # NAT-PMP tolerates 1/8, PCP 1/16
    ((100, 1000.0), (100, 1004.0), True),  # 2 < 3.75
    ((100, 1000.0), (0, 1100.0), True),
    # server fast: client_delta + 2 < server_delta - server_delta/16
    ((0, 0.0), (1600, 1497.0), True),  # 1499 < 1500
    ((100, 1000.0), (5000, 1100.0), True),
    ((100, 1000.0), (110, 1000.0), True),  # 2 < 9.375
    # exactly at the thresholds: not less, so valid
    ((0, 1000.0), (16, 1013.0), False),  # 15 < 16 - 1 is false
    ((0, 1000.0), (13, 1016.0), False),  # 15 < 16 - 1 is false
    ((0, 0.0), (32, 28.0), False),  # 30 < 32 - 2 is false
    ((0, 0.0), (28, 32.0), False),
    # ...and just past them
    ((0, 1000.0), (16, 1012.75), True),  # 14.75 < 15
    ((0, 1000.0), (17, 1013.0), True),  # 15 < 15.9375
    ((0, 1000.0), (12, 1016.0), True),  # 14 < 15
    ((0, 1000.0), (13, 1016.25), True),  # 15 < 15.234375
    ((0, 0.0), (32, 27.5), True),
    ((0, 0.0), (27, 32.0), True),
    # the smallest intervals that are evidence: client_delta * 15/16 > 2
    ((100, 1000.0), (100, 1002.125), False),  # 2 < 1.9921875 is false
    ((100, 1000.0), (100, 1002.25), True),  # 2 < 2.109375
    ((100, 1000.0), (103, 1000.0), True),  # 2 < 3 - 3/16
    ((100, 1000.0), (102, 1000.0), False),  # 2 < 2 - 1/8 is false
    # largest epochs
    ((2 ** 32 - 2, 1000.0), (2 ** 32 - 1, 1001.0), False),
    ((2 ** 32 - 1, 1000.0), (0, 1001.0), True),
    ((2 ** 32 - 1, 1000.0), (2 ** 32 - 2, 1000.0), False),
]


def observation(value):
    return EpochObservation(*value) if value is not None else None


@pytest.mark.parametrize("previous, current, lost", PCP_CASES)
def test_pcp_lost_state(previous, current, lost):
    assert pcp_lost_state(observation(previous), observation(current)) is lost


@pytest.mark.parametrize("previous, current, lost", PCP_CASES)
def test_lost_state_pcp_uses_the_pcp_rule(previous, current, lost):
    assert lost_state(observation(previous), observation(current), "pcp") is lost


# Observations on which the two rules disagree: (previous, current, NAT-PMP says, PCP says)
DISAGREEMENTS = [
    ((100, 1000.0), (99, 1000.5), True, False),  # back by 1 s: reordering for PCP
    ((100, 1000.0), (99, 1000.0), True, False),
    ((0, 0.0), (873, 1000.0), False, True),  # server 1/8 slow: fine for NAT-PMP only
    ((100, 1000.0), (5000, 1100.0), False, True),  # server fast: NAT-PMP does not care
    ((100, 1000.0), (100, 1002.25), False, True),  # 0 < 7/8*2.25 - 2 is false; 2 < 2.109375
]


@pytest.mark.parametrize("previous, current, natpmp_lost, pcp_lost", DISAGREEMENTS)
def test_lost_state_picks_the_rule_by_method(previous, current, natpmp_lost, pcp_lost):
    prev, cur = observation(previous), observation(current)
    assert natpmp_lost is not pcp_lost
    assert gateway_lost_state(prev, cur) is natpmp_lost
    assert pcp_lost_state(prev, cur) is pcp_lost
    assert lost_state(prev, cur, "natpmp") is natpmp_lost
    assert lost_state(prev, cur, "upnp") is natpmp_lost  # the uptime under RFC 6886's rule
    assert lost_state(prev, cur, "pcp") is pcp_lost


@pytest.mark.parametrize(
    "previous, current, lost",
    [
        ((100, 1000.0), (200, 1100.0), False),
        ((100, 1000.0), (50, 1100.0), True),
        ((100, 1000.0), (0, 1000.0), True),
    ],
)
def test_lost_state_where_the_rules_agree(previous, current, lost):
    prev, cur = observation(previous), observation(current)
    assert lost_state(prev, cur, "natpmp") is lost
    assert lost_state(prev, cur, "pcp") is lost


@pytest.mark.parametrize("method", ["natpmp", "pcp", "upnp"])
def test_lost_state_without_a_previous_observation(method):
    assert lost_state(None, EpochObservation(0, 0.0), method) is False
    assert lost_state(None, EpochObservation(2 ** 32 - 1, 1e9), method) is False


def test_method_names():
    assert (methods.load("natpmp").name, methods.load("pcp").name) == ("natpmp", "pcp")
