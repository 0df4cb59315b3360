"""RFC 6886 section 3.6: the gateway lost its state when its epoch grew less than 7/8 of our time - 2 s."""

from __future__ import annotations

import pytest

from portmap.epoch import EpochObservation, gateway_lost_state


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
    ],
)
def test_gateway_lost_state(previous, current, lost):
    prev = EpochObservation(*previous) if previous else None
    assert gateway_lost_state(prev, EpochObservation(*current)) is lost


def test_observation_round_trip():
    observation = EpochObservation(42, 1234.5)
    assert EpochObservation.from_dict(observation.to_dict()) == observation
    assert EpochObservation.from_dict(None) is None
