"""RFC 6886 section 3.6: the gateway lost its state when its epoch grew less than 7/8 of our time - 2 s."""

from __future__ import annotations

import pytest

from portmap.epoch import EpochObservation
from portmap.methods.natpmp import lost_state as gateway_lost_state


@pytest.mark.parametrize(
    "previous, current, lost",
    [
        (None, (0, 0.0), False),
        ((100, 1000.0), (100, 1000.0), False),
        ((100, 1000.0), (99, 1000.0), True),  # went back
        ((100, 1000.0), (0, 1000.5), True),
        ((100, 1000.0), (188, 1100.0), False),  # 88 >= 7/8*100 - 2 = 85.5
        ((100, 1000.0), (185, 1100.0), True),  # 85 < 85.5
        ((100, 1000.0), (186, 1100.0), False),  # 86 >= 85.5
        ((100, 1000.0), (101, 1003.0), False),  # short intervals: 2 s slack
        ((100, 1000.0), (100, 1004.0), True),  # 0 < 7/8*4 - 2 = 1.5
        ((100, 1000.0), (5000, 1100.0), False),  # gateway clock fast: fine
        ((100, 1000.0), (100, 990.0), False),  # our clock went back: no evidence
        ((100, 1000.0), (99, 990.0), True),  # ...but the epoch going back still is
        ((100, 1000.0), (112, 1016.0), False),  # exactly 7/8*16 - 2 = 12: not less
        ((100, 1000.0), (111, 1016.0), True),  # 11 < 12
        ((100, 1000.0), (100, 1002.25), False),  # 7/8*2.25 - 2 < 0: no interval this short is evidence
        ((100, 1000.0), (100, 1002.4), True),  # 0 < 7/8*2.4 - 2 = 0.1
        ((0, 0.0), (873, 1000.0), False),  # gateway clock 1/8 slow: tolerated
        ((0, 0.0), (872, 1000.0), True),
        ((2 ** 32 - 2, 1000.0), (2 ** 32 - 1, 1001.0), False),  # largest epochs
        ((2 ** 32 - 1, 1000.0), (0, 1001.0), True),
    ],
)
def test_gateway_lost_state(previous, current, lost):
    prev = EpochObservation(*previous) if previous else None
    assert gateway_lost_state(prev, EpochObservation(*current)) is lost


def test_observation_round_trip():
    observation = EpochObservation(42, 1234.5)
    assert EpochObservation.from_dict(observation.to_dict()) == observation
    assert EpochObservation.from_dict(None) is None
