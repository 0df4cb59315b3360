"""The client's operations against a scripted gateway (no sockets), and its epoch tracking."""

from __future__ import annotations

import json

import pytest

from tests.unit.plugins.module_utils.portmap.fakes import GATEWAY, FakeChannel, FakeClock
from portmap import wire_natpmp as wire
from portmap.client import Client
from portmap.epoch import EpochObservation
from portmap.errors import (
    InputError,
    GatewayTimeout,
    LockTimeout,
    NetworkFailure,
    NotAuthorized,
    OutOfResources,
    UnknownResultCode,
    UnsupportedOpcode,
    UnsupportedVersion,
)
from portmap.lock import HostLock


class ScriptedGateway:
    """Answers every request like the real one, granting what ``grant`` says."""

    def __init__(self, epoch=5, grant=None, result=0):
        self.epoch = epoch
        self.grant = grant or (lambda internal, external, lifetime: (external or internal, lifetime))
        self.result = result
        self.requests = []

    def __call__(self, data, _n):
        request = wire.decode_request(data)
        self.requests.append(request)
        if isinstance(request, wire.PublicAddressRequest):
            reply = wire.encode_public_address_reply(self.result, self.epoch, "11.22.33.2")
        elif request.lifetime == 0:
            reply = wire.encode_map_reply(request.protocol, self.result, self.epoch, request.internal_port, 0, 0)
        else:
            external, lifetime = self.grant(request.internal_port, request.external_port, request.lifetime)
            if self.result:
                external, lifetime = 0, 0
            reply = wire.encode_map_reply(request.protocol, self.result, self.epoch, request.internal_port,
                                          external, lifetime)
        return [(0.001, reply, GATEWAY)]


def make_client(tmp_path, gateway, wallclock=None, epoch=None, on_send=None):
    clock = FakeClock()
    channels = []

    def factory():
        channels.append(FakeChannel(clock, gateway, on_send))
        return channels[-1]

    client = Client(GATEWAY[0], port=GATEWAY[1], lock_path=str(tmp_path / "lock"), clock=clock,
                    channel_factory=factory, wallclock=wallclock or (lambda: 5000.0), epoch=epoch)
    return client, channels


# Recorded exchanges with miniupnpd 2.3.1 (wire-vectors.md): request bytes -> reply bytes.
RECORDED = {
    "0000": "00800000000000050b162102",
    "000200001f901f9000000e10": "00820000000000051f901f9000000e10",
    "0001000014e914e900000078": "008100000000000514e914e900000078",
    "000200001f90000000000000": "00820000000000051f90000000000000",
    "0001000014e9000000000000": "008100000000000514e9000000000000",
}


def recorded_gateway(data, _n):
    """Plays the real gateway: the recorded reply to a recorded request, silence otherwise."""
    reply = RECORDED.get(data.hex())
    return [(0.002, bytes.fromhex(reply), GATEWAY)] if reply else []


def test_recorded_exchanges(tmp_path):
    client, channels = make_client(tmp_path, recorded_gateway)
    public = client.public_address()
    assert (public.address, public.epoch, public.rebooted) == ("11.22.33.2", 5, False)
    tcp = client.map("tcp", 8080, 8080, 3600)
    assert (tcp.protocol, tcp.internal_port, tcp.external_port, tcp.lifetime, tcp.epoch) == ("tcp", 8080, 8080, 3600, 5)
    udp = client.map("udp", 5353, 5353, 120)
    assert (udp.protocol, udp.internal_port, udp.external_port, udp.lifetime) == ("udp", 5353, 5353, 120)
    gone = client.delete("tcp", 8080)
    assert (gone.internal_port, gone.external_port, gone.lifetime) == (8080, 0, 0)
    gone = client.delete("udp", 5353)
    assert (gone.internal_port, gone.external_port, gone.lifetime) == (5353, 0, 0)
    assert [len(c.sent) for c in channels] == [1, 1, 1, 1, 1]  # each answered at once
    assert not client.rebooted


def test_reserved_wan_address_vector_is_network_failure(tmp_path):
    def gateway(_data, _n):
        return [(0.002, bytes.fromhex("008000030000000100000000"), GATEWAY)]

    client, _channels = make_client(tmp_path, gateway)
    with pytest.raises(NetworkFailure) as caught:
        client.public_address()
    assert "NETWORK_FAILURE" in str(caught.value) and "192.0.2.1:5351" in str(caught.value)
    assert client.public_address_seen is None


@pytest.mark.parametrize("op", [0, 128, 130])
def test_unsupported_version_reply_is_raised(tmp_path, op):
    def gateway(_data, _n):
        return [(0.002, wire.encode_short_reply(op, 1, 5), GATEWAY)]

    client, channels = make_client(tmp_path, gateway)
    with pytest.raises(UnsupportedVersion, match="UNSUPPORTED_VERSION"):
        client.map("tcp", 8080, 8080, 3600)
    assert len(channels[0].sent) == 1
    assert not client.lock.held


def test_public_address(tmp_path):
    client, channels = make_client(tmp_path, ScriptedGateway())
    public = client.public_address()
    assert (public.address, public.epoch, public.method, public.gateway) == ("11.22.33.2", 5, "natpmp", GATEWAY[0])
    assert channels[0].sent[0][1].hex() == "0000"


def test_map_returns_what_the_gateway_granted_not_what_was_asked(tmp_path):
    gateway = ScriptedGateway(grant=lambda internal, external, lifetime: (40001, 600))
    client, channels = make_client(tmp_path, gateway)
    granted = client.map("tcp", 8080, 8080, 3600)
    assert (granted.external_port, granted.lifetime, granted.internal_port) == (40001, 600, 8080)
    assert channels[0].sent[0][1].hex() == "000200001f901f9000000e10"


def test_external_port_defaults_to_internal(tmp_path):
    gateway = ScriptedGateway()
    client, _channels = make_client(tmp_path, gateway)
    client.map("udp", 5353, lifetime=120)
    assert gateway.requests[-1] == wire.MapRequest("udp", 5353, 5353, 120)


def test_delete_and_delete_all_bytes(tmp_path):
    gateway = ScriptedGateway()
    client, channels = make_client(tmp_path, gateway)
    deleted = client.delete("tcp", 8080)
    assert (deleted.external_port, deleted.lifetime) == (0, 0)
    client.delete_all("udp")
    assert [c.sent[0][1].hex() for c in channels] == ["000200001f90000000000000", "000100000000000000000000"]


def test_a_fresh_channel_per_operation(tmp_path):
    client, channels = make_client(tmp_path, ScriptedGateway())
    client.public_address()
    client.map("tcp", 80)
    client.delete("tcp", 80)
    assert len(channels) == 3 and all(c.closed for c in channels)


@pytest.mark.parametrize(
    "code, cls, name",
    [(1, UnsupportedVersion, "UNSUPPORTED_VERSION"), (2, NotAuthorized, "NOT_AUTHORIZED"),
     (3, NetworkFailure, "NETWORK_FAILURE"), (4, OutOfResources, "OUT_OF_RESOURCES"),
     (5, UnsupportedOpcode, "UNSUPPORTED_OPCODE"), (9, UnknownResultCode, "UNKNOWN_RESULT_9")],
)
def test_result_codes_name_gateway_protocol_ports_and_result(tmp_path, code, cls, name):
    client, _channels = make_client(tmp_path, ScriptedGateway(result=code))
    with pytest.raises(cls) as caught:
        client.map("udp", 5353, 5400, 120)
    message = str(caught.value)
    for part in (name, f"result code {code}", "UDP", "5353", "5400", "192.0.2.1:5351"):
        assert part in message


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda c: c.map("tcp", 0), "internal_port"),
        (lambda c: c.map("tcp", 65536), "internal_port"),
        (lambda c: c.map("tcp", -1), "internal_port"),
        (lambda c: c.map("tcp", True), "internal_port"),
        (lambda c: c.map("tcp", 80, 65536), "external_port"),
        (lambda c: c.map("tcp", 80, 80, 0), "lifetime"),
        (lambda c: c.map("tcp", 80, 80, 2 ** 32), "lifetime"),
        (lambda c: c.map("tcp", 80, 80, 1.5), "lifetime"),
        (lambda c: c.map("tcp", 80, -1), "external_port"),
        (lambda c: c.map("sctp", 80), "protocol"),
        (lambda c: c.delete("tcp", 0), "internal_port"),
        (lambda c: c.delete("tcp", 65536), "internal_port"),
        (lambda c: c.delete("sctp", 80), "protocol"),
        (lambda c: c.delete_all("icmp"), "protocol"),
        (lambda c: c.map(None, 80), "protocol"),
        (lambda c: c.map("TCP", 80), "protocol"),
        (lambda c: c.map("tcp", 80, 80.0, 60), "external_port"),
        (lambda c: c.map("tcp", 80, 80, None), "lifetime"),
    ],
)
def test_bad_input_raises_before_any_packet(tmp_path, call, field):
    def no_send(data):
        pytest.fail(f"a packet was sent despite bad input: {data.hex()}")

    client, channels = make_client(tmp_path, ScriptedGateway(), on_send=no_send)
    with pytest.raises(InputError, match=field):
        call(client)
    assert channels == []  # not even a socket was made
    assert not client.lock.held


def test_the_host_lock_is_held_during_each_exchange(tmp_path):
    seen = []
    client = None

    def on_send(_data):
        seen.append(client.lock.held)
        other = HostLock(client.lock.path, timeout=0.0)
        with pytest.raises(LockTimeout):
            other.acquire()

    client, _channels = make_client(tmp_path, ScriptedGateway(), on_send=on_send)
    client.public_address()
    client.map("tcp", 80)
    assert seen == [True, True]
    assert not client.lock.held
    HostLock(client.lock.path, timeout=0.0).acquire()


def test_the_lock_is_released_after_a_timeout(tmp_path):
    client, channels = make_client(tmp_path, lambda _data, _n: [])
    with pytest.raises(GatewayTimeout, match="4 sends"):
        client.public_address()
    assert not client.lock.held
    other = HostLock(client.lock.path, timeout=0.0)
    other.acquire()
    other.release()


def test_epoch_consistent_no_reboot(tmp_path):
    times = iter([5000.0, 5100.0])
    gateway = ScriptedGateway(epoch=1000)
    client, _channels = make_client(tmp_path, gateway, wallclock=lambda: next(times))
    assert not client.public_address().rebooted
    gateway.epoch = 1100
    assert not client.map("tcp", 80).rebooted
    assert not client.rebooted
    assert client.epoch == EpochObservation(1100, 5100.0)


def test_epoch_going_back_is_a_reboot(tmp_path):
    gateway = ScriptedGateway(epoch=1000)
    times = iter([5000.0, 5001.0])
    client, _channels = make_client(tmp_path, gateway, wallclock=lambda: next(times))
    client.public_address()
    gateway.epoch = 3
    assert client.map("tcp", 80).rebooted
    assert client.rebooted


def test_epoch_growing_too_slowly_is_a_reboot(tmp_path):
    # 1000 s passed for us, only 100 s for the gateway: it restarted in between.
    previous = EpochObservation(5000, 4000.0)
    client, _channels = make_client(tmp_path, ScriptedGateway(epoch=5100), wallclock=lambda: 5000.0,
                                    epoch=previous)
    assert client.public_address().rebooted


@pytest.mark.parametrize(
    "epoch_now, rebooted",
    [
        (1500, False),  # 1000 s for both
        (1373, False),  # 873 >= 7/8 * 1000 - 2 = 873
        (1372, True),   # 872 < 873
        (499, True),    # went back
        (20, True),
    ],
)
def test_epoch_seed_from_a_serialized_observation(tmp_path, epoch_now, rebooted):
    stored = EpochObservation(500, 4000.0).to_dict()  # e.g. read from the ledger (JSON)
    seed = EpochObservation.from_dict(json.loads(json.dumps(stored)))
    client, _channels = make_client(tmp_path, ScriptedGateway(epoch=epoch_now), wallclock=lambda: 5000.0,
                                    epoch=seed)
    public = client.public_address()
    assert public.rebooted is rebooted
    assert client.rebooted is rebooted
    assert client.epoch == EpochObservation(epoch_now, 5000.0)


def test_rebooted_stays_set_and_each_result_reports_its_own_exchange(tmp_path):
    gateway = ScriptedGateway(epoch=1000)
    times = iter([5000.0, 5010.0, 5020.0])
    client, _channels = make_client(tmp_path, gateway, wallclock=lambda: next(times))
    assert not client.public_address().rebooted
    gateway.epoch = 2  # rebooted
    assert client.map("tcp", 80).rebooted
    gateway.epoch = 12  # consistent with the new epoch
    assert not client.map("tcp", 81).rebooted
    assert client.rebooted  # the client remembers


def test_without_a_seed_the_first_reply_is_no_reboot(tmp_path):
    client, _channels = make_client(tmp_path, ScriptedGateway(epoch=0))
    assert not client.public_address().rebooted


@pytest.mark.parametrize("timeout", [0, -1, 0.0, True, "3", None])
def test_the_timeout_is_checked_by_the_client(tmp_path, timeout):
    with pytest.raises(InputError, match="timeout must be a positive number of seconds"):
        Client(GATEWAY[0], port=GATEWAY[1], lock_path=str(tmp_path / "lock"), timeout=timeout)
