"""Retransmission schedule, deadline and reply filtering, with a fake clock and network."""

from __future__ import annotations

import errno
import socket
import time

import pytest

from tests.unit.plugins.module_utils.portmap.fakes import GATEWAY, FakeChannel, FakeClock, silent
from portmap.errors import GatewayTimeout, GatewayUnreachable
from portmap.transport import Transport, retransmission_schedule


def make(script, timeout=3.0, clock=None):
    clock = clock or FakeClock()
    channels = []

    def factory():
        channels.append(FakeChannel(clock, script))
        return channels[-1]

    transport = Transport(GATEWAY[0], GATEWAY[1], timeout=timeout, clock=clock, channel_factory=factory)
    return transport, clock, channels


def accept_all(data):
    return data


def test_silent_gateway_rfc_schedule_then_timeout_at_the_deadline():
    transport, clock, channels = make(silent)
    start = clock.now
    with pytest.raises(GatewayTimeout) as caught:
        transport.exchange(b"\x00\x00", accept_all, "public address request")
    sends = [round(t - start, 6) for t, _data in channels[0].sent]
    assert sends == [0.0, 0.25, 0.75, 1.75]
    assert clock.now - start == pytest.approx(3.0)
    assert "4 sends" in str(caught.value) and "3 s" in str(caught.value)
    assert "192.0.2.1:5351" in str(caught.value)
    assert channels[0].closed


@pytest.mark.parametrize(
    "deadline, offsets",
    [
        (0.1, [0.0]),
        (0.25, [0.0]),
        (0.26, [0.0, 0.25]),
        (0.6, [0.0, 0.25]),
        (1.0, [0.0, 0.25, 0.75]),
        (3.0, [0.0, 0.25, 0.75, 1.75]),
        (3.75, [0.0, 0.25, 0.75, 1.75]),
        (10.0, [0.0, 0.25, 0.75, 1.75, 3.75, 7.75]),
    ],
)
def test_sends_follow_the_schedule_until_the_deadline(deadline, offsets):
    transport, clock, channels = make(silent, timeout=deadline)
    start = clock.now
    with pytest.raises(GatewayTimeout, match=f"{len(offsets)} sends"):
        transport.exchange(b"\x00\x00", accept_all, "public address request")
    assert [round(t - start, 6) for t, _data in channels[0].sent] == offsets
    assert retransmission_schedule(deadline) == offsets
    assert transport.sends == len(offsets)
    assert clock.now - start == pytest.approx(deadline)  # gives up at the deadline, not before or after


def test_every_send_repeats_the_same_bytes():
    transport, _clock, channels = make(silent)
    with pytest.raises(GatewayTimeout):
        transport.exchange(b"\x00\x02\x00\x00", accept_all, "x")
    assert {data for _t, data in channels[0].sent} == {b"\x00\x02\x00\x00"}


def test_schedule_function_matches_rfc_6886():
    assert retransmission_schedule(3.0) == [0.0, 0.25, 0.75, 1.75]
    # RFC 6886 3.1: 9 sends, the last at 63.75 s, giving up at 127.75 s.
    schedule = retransmission_schedule(127.75)
    assert len(schedule) == 9 and schedule[-1] == 63.75


def test_longer_deadline_more_sends():
    transport, clock, channels = make(silent, timeout=10.0)
    with pytest.raises(GatewayTimeout):
        transport.exchange(b"\x00\x00", accept_all, "x")
    assert len(channels[0].sent) == 6  # 0, .25, .75, 1.75, 3.75, 7.75


def test_reply_between_retransmissions_ends_the_exchange():
    def script(_data, n):
        return [(0.1, b"reply", GATEWAY)] if n == 3 else []

    transport, clock, channels = make(script)
    start = clock.now
    assert transport.exchange(b"q", accept_all, "x") == b"reply"
    assert len(channels[0].sent) == 3
    assert clock.now - start == pytest.approx(0.85)


def test_reply_from_wrong_address_or_port_is_ignored():
    def script(_data, n):
        return [(0.01, b"forged-addr", ("192.0.2.99", 5351)), (0.02, b"forged-port", (GATEWAY[0], 5350)),
                (0.03, b"right", GATEWAY)] if n == 1 else []

    transport, _clock, _channels = make(script)
    seen = []

    def parse(data):
        seen.append(data)
        return data

    assert transport.exchange(b"q", parse, "x") == b"right"
    assert seen == [b"right"]


def test_parse_returning_none_keeps_waiting():
    def script(_data, n):
        return [(0.01, b"stale", GATEWAY), (0.5, b"good", GATEWAY)] if n == 1 else []

    transport, _clock, channels = make(script)
    assert transport.exchange(b"q", lambda d: d if d == b"good" else None, "x") == b"good"
    assert len(channels[0].sent) == 2  # a resend at 0.25 s happened before the good reply


def test_icmp_port_unreachable_fails_at_once():
    def script(_data, _n):
        return [(0.001, ConnectionRefusedError(), GATEWAY)]

    transport, clock, channels = make(script)
    start = clock.now
    with pytest.raises(GatewayUnreachable, match="ICMP port unreachable"):
        transport.exchange(b"q", accept_all, "public address request")
    assert len(channels[0].sent) == 1
    assert clock.now - start < 0.01


def test_refused_on_a_later_send_also_ends_at_once():
    class RefusingChannel(FakeChannel):
        def send(self, data):
            super().send(data)
            if len(self.sent) == 2:
                raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    clock = FakeClock()
    channels = []
    transport = Transport(GATEWAY[0], GATEWAY[1], clock=clock,
                          channel_factory=lambda: channels.append(RefusingChannel(clock, silent)) or channels[-1])
    with pytest.raises(GatewayUnreachable, match="192.0.2.1:5351"):
        transport.exchange(b"q", accept_all, "x")
    assert len(channels[0].sent) == 2 and channels[0].closed
    assert clock.now - 1000.0 == pytest.approx(0.25)


def test_host_unreachable_is_gateway_unreachable():
    def script(_data, _n):
        return [(0.01, OSError(errno.EHOSTUNREACH, "No route to host"), GATEWAY)]

    transport, _clock, channels = make(script)
    with pytest.raises(GatewayUnreachable, match="unreachable"):
        transport.exchange(b"q", accept_all, "x")
    assert len(channels[0].sent) == 1


def test_a_wrong_source_alone_never_ends_the_exchange():
    def script(_data, _n):
        return [(0.01, b"forged", ("192.0.2.99", 5351))]

    transport, clock, channels = make(script, timeout=1.0)
    with pytest.raises(GatewayTimeout, match="3 sends"):
        transport.exchange(b"q", accept_all, "x")
    assert len(channels[0].sent) == 3


def test_per_call_timeout_overrides_the_default():
    transport, clock, _channels = make(silent, timeout=3.0)
    start = clock.now
    with pytest.raises(GatewayTimeout):
        transport.exchange(b"q", accept_all, "x", timeout=1.0)
    assert clock.now - start == pytest.approx(1.0)


# Real sockets, on loopback only.

def test_real_silent_socket_times_out_at_the_deadline(loopback_address):
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind((loopback_address, 0))
    try:
        transport = Transport(loopback_address, listener.getsockname()[1], timeout=0.6)
        start = time.monotonic()
        with pytest.raises(GatewayTimeout):
            transport.exchange(b"\x00\x00", accept_all, "public address request")
        elapsed = time.monotonic() - start
        assert 0.6 <= elapsed < 0.9
        assert transport.sends == 2  # sent at 0 and 0.25 s; the next (0.75 s) is past the deadline
    finally:
        listener.close()


def test_real_nothing_listening_is_unreachable_fast(loopback_address):
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((loopback_address, 0))
    port = probe.getsockname()[1]
    probe.close()  # the port is now closed: the kernel answers ICMP port unreachable
    transport = Transport(loopback_address, port, timeout=3.0)
    start = time.monotonic()
    with pytest.raises(GatewayUnreachable):
        transport.exchange(b"\x00\x00", accept_all, "public address request")
    assert time.monotonic() - start < 0.2


def test_reply_from_names_the_only_source_that_may_answer():
    """A STUN server answers a CHANGE-REQUEST from its other address: the caller says which."""
    other = ("192.0.2.2", 3479)
    transport, _clock, _channels = make(lambda _data, _n: [(0.01, b"from the other", other), (0.02, b"from us", GATEWAY)])
    assert transport.exchange(b"x", accept_all, "x") == b"from us"  # by default only the address sent to
    transport, _clock, _channels = make(lambda _data, _n: [(0.01, b"from us", GATEWAY), (0.02, b"from the other", other)])
    assert transport.exchange(b"x", accept_all, "x", reply_from=other) == b"from the other"


def test_peer_names_the_far_end_in_messages():
    clock = FakeClock()
    transport = Transport(GATEWAY[0], GATEWAY[1], timeout=0.5, clock=clock, peer="STUN server",
                          channel_factory=lambda: FakeChannel(clock, silent))
    with pytest.raises(GatewayTimeout, match="no answer from STUN server 192.0.2.1:5351 to the Binding request"):
        transport.exchange(b"x", accept_all, "Binding request")
