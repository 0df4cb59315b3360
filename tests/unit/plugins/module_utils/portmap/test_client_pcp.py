"""The client's PCP side and its choice of protocol (auto, pcp, natpmp) against a scripted gateway (no sockets)."""

from __future__ import annotations

import pytest

from tests.unit.plugins.module_utils.portmap.fakes import GATEWAY, FakeChannel, FakeClock, FakeSsdp
from portmap import wire_natpmp, wire_pcp
from portmap.client import Client
from portmap.epoch import EpochObservation
from portmap.errors import GatewayTimeout, UnsupportedVersion

LOCAL = "192.168.1.10"  # the address the fake channel sends from
MAPPED_LOCAL = b"\x00" * 10 + b"\xff\xff" + bytes([192, 168, 1, 10])
PUBLIC = "11.22.33.2"
START = 1000.0  # FakeClock's start
NATPMP_PUBLIC_REQUEST = bytes.fromhex("0000")
NATPMP_DELETE_TCP_8080 = bytes.fromhex("000200001f90000000000000")


class LocalChannel(FakeChannel):
    """A fake channel that sends from LOCAL (the inherited one reports 0.0.0.0)."""

    def local_address(self) -> str:
        return LOCAL


class Nonces:
    """A deterministic nonce_factory: 0x11 * 12, then 0x12 * 12, ..."""

    def __init__(self):
        self.drawn = []

    def __call__(self) -> bytes:
        nonce = bytes([0x11 + len(self.drawn)]) * wire_pcp.NONCE_LENGTH
        self.drawn.append(nonce)
        return nonce


def outcomes(detection):
    """A probe's Detection as natpmp_info reads it: per method True, None or the error; ``speaks``: those that answered."""
    return dict(detection.view(), speaks=detection.speaking())


def natpmp_refusal(op=128, epoch=500):
    """A NAT-PMP gateway's answer to a request of a version it does not speak (8 bytes, result 1)."""
    return wire_natpmp.encode_short_reply(op, wire_natpmp.Result.UNSUPPORTED_VERSION, epoch)


class DualGateway:
    """Plays a gateway speaking PCP and/or NAT-PMP.

    ``pcp`` / ``natpmp``: "speak", "silent", or fixed bytes answered to every request
    of that protocol (e.g. an "unsupported version" reply).  ``grant`` decides what a
    mapping request gets: (internal, external, lifetime) -> (external, lifetime).
    """

    def __init__(self, pcp="speak", natpmp="speak", epoch=500, grant=None, delay=0.001):
        self.pcp = pcp
        self.natpmp = natpmp
        self.epoch = epoch
        self.grant = grant or (lambda internal, external, lifetime: (external or internal, lifetime))
        self.delay = delay
        self.requests = []  # decoded requests, both protocols, in order

    def __call__(self, data, _n):
        if data[0] == wire_pcp.VERSION:
            behaviour, answer = self.pcp, self._pcp
        else:
            behaviour, answer = self.natpmp, self._natpmp
        if behaviour == "silent":
            return []
        if isinstance(behaviour, bytes):
            return [(self.delay, behaviour, GATEWAY)]
        return [(self.delay, answer(data), GATEWAY)]

    def _pcp(self, data):
        request = wire_pcp.decode_request(data)
        self.requests.append(request)
        if isinstance(request, wire_pcp.AnnounceRequest):
            return wire_pcp.encode_response(wire_pcp.OP_ANNOUNCE, 0, 0, self.epoch)
        if request.lifetime == 0:
            return wire_pcp.encode_map_response(0, 0, self.epoch, request.nonce, request.protocol_number,
                                                request.internal_port, 0, PUBLIC)
        external, lifetime = self.grant(request.internal_port, request.external_port, request.lifetime)
        return wire_pcp.encode_map_response(0, lifetime, self.epoch, request.nonce, request.protocol_number,
                                            request.internal_port, external, PUBLIC)

    def _natpmp(self, data):
        request = wire_natpmp.decode_request(data)
        self.requests.append(request)
        if isinstance(request, wire_natpmp.PublicAddressRequest):
            return wire_natpmp.encode_public_address_reply(0, self.epoch, PUBLIC)
        if request.lifetime == 0:
            return wire_natpmp.encode_map_reply(request.protocol, 0, self.epoch, request.internal_port, 0, 0)
        external, lifetime = self.grant(request.internal_port, request.external_port, request.lifetime)
        return wire_natpmp.encode_map_reply(request.protocol, 0, self.epoch, request.internal_port, external, lifetime)


class Rig:
    """A client on a fake clock and fake channels, talking to ``gateway``."""

    def __init__(self, tmp_path, gateway, method="auto", timeout=3.0, wallclock=None, epoch=None, ssdp=None):
        self.clock = FakeClock(START)
        self.gateway = gateway
        self.channels = []
        self.nonces = Nonces()
        self.ssdp = FakeSsdp(self.clock, ssdp)  # an IGD's searches: unanswered unless ``ssdp`` answers them
        self.client = Client(GATEWAY[0], port=GATEWAY[1], timeout=timeout, lock_path=str(tmp_path / "lock"),
                             clock=self.clock, channel_factory=self.channel, wallclock=wallclock or (lambda: 5000.0),
                             epoch=epoch, method=method, nonce_factory=self.nonces, datagrams_factory=self.ssdp)

    def channel(self):
        self.channels.append(LocalChannel(self.clock, self.gateway))
        return self.channels[-1]

    def datagrams(self):
        """Every datagram sent, in order, across the exchanges."""
        return [data for channel in self.channels for _at, data in channel.sent]

    def send_times(self, index):
        """Offsets from the start of the clock of the sends of exchange ``index``."""
        return [round(at - START, 6) for at, _data in self.channels[index].sent]


def is_pcp(data):
    return data[0] == wire_pcp.VERSION


def is_natpmp(data):
    return data[0] == wire_natpmp.VERSION


# --------------------------------------------------------------------------- auto on a PCP gateway


def test_auto_on_a_pcp_gateway_asks_all_three_at_once_then_maps_with_pcp(tmp_path):
    gateway = DualGateway(grant=lambda internal, external, lifetime: (40001, 600))
    rig = Rig(tmp_path, gateway)
    client = rig.client
    assert client.method is None

    public = client.public_address()
    announce, natpmp = rig.channels[0].sent[0][1], rig.channels[1].sent[0][1]
    assert len(announce) == 24 and announce[0] == 2 and announce[1] == wire_pcp.OP_ANNOUNCE
    assert announce[4:8] == b"\x00" * 4  # lifetime 0
    assert announce[8:24] == MAPPED_LOCAL  # the client's address, IPv4-mapped
    assert natpmp == NATPMP_PUBLIC_REQUEST
    searches = [data for _at, data, _address in rig.ssdp.sent]
    assert searches and all(data.startswith(b"M-SEARCH * HTTP/1.1\r\n") for data in searches)
    assert {address for _at, _data, address in rig.ssdp.sent} == {(GATEWAY[0], 1900)}  # unicast to the gateway
    assert {round(at - START, 6) for at, _data in rig.channels[0].sent + rig.channels[1].sent} == {0.0}  # together
    assert rig.clock.now - START == pytest.approx(0.001, abs=0.011)  # one round trip: PCP and NAT-PMP answered
    assert client.method == "pcp"
    # ANNOUNCE carries no address; NAT-PMP's answer to the request sent with it does
    assert (public.address, public.epoch, public.method, public.rebooted) == (PUBLIC, 500, "pcp", False)
    assert [(a["method"], a["outcome"]) for a in client.attempts][0] == ("pcp", "answered")
    assert rig.nonces.drawn == []  # ANNOUNCE needs no nonce
    assert rig.ssdp.closed and all(channel.closed for channel in rig.channels)

    granted = client.map("tcp", 8080, 8080, 3600)
    request = rig.datagrams()[-1]
    assert len(request) == wire_pcp.MAP_LENGTH and is_pcp(request)
    assert rig.nonces.drawn == [b"\x11" * 12]
    assert gateway.requests[-1] == wire_pcp.MapRequest("::ffff:" + LOCAL, b"\x11" * 12, "tcp", 6, 8080, 8080,
                                                       wire_pcp.ANY_IPV4, 3600)
    assert granted.nonce == "11" * 12
    assert granted.public_address == PUBLIC
    assert (granted.external_port, granted.lifetime, granted.internal_port) == (40001, 600, 8080)
    assert (granted.method, granted.epoch, granted.protocol, granted.rebooted) == ("pcp", 500, "tcp", False)
    assert client.public_address_seen == PUBLIC
    assert client.public_address().address == PUBLIC  # what a MAP reported, ANNOUNCE carries none
    assert all(is_pcp(d) for d in rig.datagrams()[2:])


def test_pcp_map_and_delete_reuse_the_given_nonce(tmp_path):
    gateway = DualGateway()
    rig = Rig(tmp_path, gateway)
    rig.client.public_address()
    nonce = "0123456789abcdef01234567"

    renewed = rig.client.map("udp", 5353, 5353, 120, nonce=nonce)
    request = rig.datagrams()[-1]
    assert request[24:36] == bytes.fromhex(nonce)
    assert request[4:8] == (120).to_bytes(4, "big")
    assert renewed.nonce == nonce and renewed.lifetime == 120 and renewed.external_port == 5353

    deleted = rig.client.delete("udp", 5353, nonce=nonce)
    request = rig.datagrams()[-1]
    assert is_pcp(request) and request[1] == wire_pcp.OP_MAP
    assert request[4:8] == b"\x00" * 4  # lifetime 0: a delete
    assert request[24:36] == bytes.fromhex(nonce)
    assert gateway.requests[-1] == wire_pcp.MapRequest("::ffff:" + LOCAL, bytes.fromhex(nonce), "udp", 17, 5353, 0,
                                                       wire_pcp.ANY_IPV4, 0)
    assert (deleted.lifetime, deleted.external_port, deleted.nonce, deleted.method) == (0, 0, nonce, "pcp")
    assert rig.nonces.drawn == []  # no fresh nonce when one is given


# --------------------------------------------------------------------------- auto falls back to NAT-PMP


@pytest.mark.parametrize("op", [0, 128, 129])
def test_auto_takes_natpmp_when_pcp_gets_natpmp_unsupported_version_reply(tmp_path, op):
    rig = Rig(tmp_path, DualGateway(pcp=natpmp_refusal(op)))
    public = rig.client.public_address()
    assert [len(c.sent) for c in rig.channels] == [1, 1]  # one ANNOUNCE, one public address request, together
    assert is_pcp(rig.channels[0].sent[0][1]) and rig.channels[1].sent[0][1] == NATPMP_PUBLIC_REQUEST
    assert rig.client.method == "natpmp"
    assert (public.address, public.method, public.epoch) == (PUBLIC, "natpmp", 500)
    assert rig.clock.now - START == pytest.approx(0.001, abs=0.011)  # no waiting for PCP's share
    outcomes = dict((a["method"], a["outcome"]) for a in rig.client.attempts)
    assert "does not speak PCP" in outcomes["pcp"] and "speaks version 0" in outcomes["pcp"]
    assert outcomes["natpmp"] == "answered"


def test_auto_detects_before_the_first_request_that_is_a_map(tmp_path):
    gateway = DualGateway(pcp=natpmp_refusal(0), grant=lambda internal, external, lifetime: (40001, 600))
    rig = Rig(tmp_path, gateway)
    granted = rig.client.map("tcp", 8080, 8080, 3600)
    datagrams = rig.datagrams()
    assert len(datagrams) == 3 and is_pcp(datagrams[0]) and datagrams[1] == NATPMP_PUBLIC_REQUEST
    assert datagrams[2] == bytes.fromhex("000200001f901f9000000e10")
    assert (granted.method, granted.nonce, granted.external_port, granted.lifetime) == ("natpmp", "", 40001, 600)
    assert rig.client.method == "natpmp"


def test_auto_falls_back_on_a_pcp_unsupp_version_header(tmp_path):
    # A PCP server of another version answers with its own version and UNSUPP_VERSION.
    refusal = wire_pcp.encode_response(wire_pcp.OP_ANNOUNCE, wire_pcp.Result.UNSUPP_VERSION, 0, 500, version=1)
    rig = Rig(tmp_path, DualGateway(pcp=refusal))
    public = rig.client.public_address()
    assert rig.client.method == "natpmp" and public.address == PUBLIC
    assert "speaks version 1" in rig.client.attempts[0]["outcome"]
    assert rig.clock.now - START < 0.05


@pytest.mark.parametrize("timeout, share, pcp_sends", [(3.0, 1.0, [0.0, 0.25, 0.75]), (6.0, 2.0, [0.0, 0.25, 0.75, 1.75])])
def test_auto_gives_a_silent_pcp_a_third_of_the_deadline_after_natpmp_answered(tmp_path, timeout, share, pcp_sends):
    rig = Rig(tmp_path, DualGateway(pcp="silent"), timeout=timeout)
    public = rig.client.public_address()
    assert [round(at - START, 2) for at, _data in rig.channels[0].sent] == pcp_sends
    assert all(is_pcp(d) for _at, d in rig.channels[0].sent)
    assert len(rig.channels[1].sent) == 1  # NAT-PMP answered the first request
    assert public.address == PUBLIC and rig.client.method == "natpmp"
    outcomes = dict((a["method"], a["outcome"]) for a in rig.client.attempts)
    assert outcomes["pcp"].startswith("no answer to the PCP ANNOUNCE request") and outcomes["natpmp"] == "answered"
    assert rig.clock.now - START == pytest.approx(share, abs=0.011)
    assert rig.clock.now - START <= timeout


def test_auto_finds_a_pcp_that_answers_late_after_retransmissions(tmp_path):
    gateway = DualGateway(natpmp=natpmp_refusal(128))
    answer = gateway.__call__
    gateway_calls = []

    def late(data, n):
        gateway_calls.append(n)
        return answer(data, n) if not is_pcp(data) or n >= 3 else []  # PCP answers its third send (0.75 s)

    rig = Rig(tmp_path, late)
    public = rig.client.public_address()
    assert rig.client.method == "pcp" and public.method == "pcp"
    assert rig.clock.now - START == pytest.approx(0.751, abs=0.011)


def test_auto_on_a_silent_gateway_times_out_after_the_whole_deadline(tmp_path):
    rig = Rig(tmp_path, DualGateway(pcp="silent", natpmp="silent"))
    with pytest.raises(GatewayTimeout) as caught:
        rig.client.public_address()
    assert rig.clock.now - START == pytest.approx(3.0)
    message = str(caught.value)
    assert "speaks none of PCP, NAT-PMP and UPnP IGD" in message
    assert "no answer to the PCP ANNOUNCE request within 3 s (4 sends)" in message
    assert "no answer to the NAT-PMP public address request within 3 s (4 sends)" in message
    assert "no answer to the UPnP IGD search" in message and "(2 sends)" in message
    assert [a["method"] for a in rig.client.attempts] == ["pcp", "natpmp", "upnp"]
    assert rig.client.method is None
    assert not rig.client.lock.held


# --------------------------------------------------------------------------- forced methods


def test_forced_pcp_on_a_natpmp_only_gateway_is_unsupported_version(tmp_path):
    rig = Rig(tmp_path, DualGateway(pcp=natpmp_refusal()), method="pcp")
    with pytest.raises(UnsupportedVersion) as caught:
        rig.client.public_address()
    message = str(caught.value)
    assert "192.0.2.1:5351" in message and "PCP" in message and "UNSUPP_VERSION" in message
    assert caught.value.method == "pcp"
    assert len(rig.datagrams()) == 1 and is_pcp(rig.datagrams()[0])  # no fallback when forced


def test_forced_natpmp_sends_only_natpmp(tmp_path):
    rig = Rig(tmp_path, DualGateway(), method="natpmp")
    public = rig.client.public_address()
    granted = rig.client.map("tcp", 8080, 8080, 3600)
    rig.client.delete("tcp", 8080)
    datagrams = rig.datagrams()
    assert datagrams[0] == NATPMP_PUBLIC_REQUEST and datagrams[2] == NATPMP_DELETE_TCP_8080
    assert all(is_natpmp(d) for d in datagrams) and len(datagrams) == 3
    assert public.address == PUBLIC and granted.method == "natpmp" and granted.nonce == ""
    assert [a["method"] for a in rig.client.attempts] == ["natpmp"] * 3


def test_forced_pcp_on_silence_waits_the_whole_deadline(tmp_path):
    rig = Rig(tmp_path, DualGateway(pcp="silent", natpmp="silent"), method="pcp")
    with pytest.raises(GatewayTimeout) as caught:
        rig.client.public_address()
    assert rig.clock.now - START == pytest.approx(3.0)  # not a third of it
    assert rig.send_times(0) == [0.0, 0.25, 0.75, 1.75]
    assert len(rig.channels) == 1
    assert "PCP ANNOUNCE request within 3 s" in str(caught.value)
    assert "NAT-PMP" not in str(caught.value)


# --------------------------------------------------------------------------- runs do not remember


def test_the_choice_is_not_remembered_across_clients(tmp_path):
    gateway = DualGateway(pcp=natpmp_refusal())
    first = Rig(tmp_path, gateway)
    first.client.public_address()
    assert first.client.method == "natpmp"
    assert first.client.map("tcp", 8080).method == "natpmp"

    gateway.pcp = "speak"  # the gateway learnt PCP
    second = Rig(tmp_path, gateway, epoch=first.client.epoch)
    public = second.client.public_address()
    assert is_pcp(second.datagrams()[0]) and second.datagrams()[1] == NATPMP_PUBLIC_REQUEST
    assert len(second.datagrams()) == 2  # the detection's two requests, nothing more
    assert second.client.method == "pcp" and public.method == "pcp"
    assert not second.client.rebooted
    assert second.client.map("tcp", 8080).method == "pcp"


# --------------------------------------------------------------------------- moving a mapping between protocols


@pytest.mark.parametrize("old_nonce", ["", "aa" * 12])
def test_made_with_natpmp_is_deleted_over_natpmp_before_the_pcp_map(tmp_path, old_nonce):
    gateway = DualGateway()
    rig = Rig(tmp_path, gateway)
    rig.client.public_address()
    assert rig.client.method == "pcp"

    granted = rig.client.map("tcp", 8080, 8080, 3600, nonce=old_nonce, made_with="natpmp")
    datagrams = rig.datagrams()[2:]  # after the detection's ANNOUNCE and public address request
    assert len(datagrams) == 2
    assert datagrams[0] == NATPMP_DELETE_TCP_8080  # the old mapping, with its own protocol, first
    assert is_pcp(datagrams[1]) and datagrams[1][4:8] == (3600).to_bytes(4, "big")
    assert datagrams[1][24:36] == rig.nonces.drawn[-1]  # a new nonce, not the old one
    assert rig.nonces.drawn[-1] != bytes.fromhex("aa" * 12)
    assert granted.nonce == rig.nonces.drawn[-1].hex()
    assert (granted.method, granted.lifetime, granted.external_port) == ("pcp", 3600, 8080)
    assert rig.client.method == "pcp"


def test_made_with_the_current_method_is_not_deleted_first(tmp_path):
    rig = Rig(tmp_path, DualGateway())
    rig.client.public_address()
    nonce = "aa" * 12
    granted = rig.client.map("tcp", 8080, 8080, 3600, nonce=nonce, made_with="pcp")
    datagrams = rig.datagrams()[2:]
    assert len(datagrams) == 1 and is_pcp(datagrams[0])
    assert datagrams[0][4:8] == (3600).to_bytes(4, "big") and datagrams[0][24:36] == bytes.fromhex(nonce)
    assert granted.nonce == nonce


def test_made_with_pcp_is_not_deleted_when_pcp_was_refused_this_run(tmp_path):
    rig = Rig(tmp_path, DualGateway(pcp=natpmp_refusal()))
    rig.client.public_address()
    assert rig.client.method == "natpmp"
    granted = rig.client.map("tcp", 8080, 8080, 3600, nonce="aa" * 12, made_with="pcp")
    datagrams = rig.datagrams()
    assert len(datagrams) == 3  # ANNOUNCE, NAT-PMP public address, NAT-PMP map: no PCP delete in between
    assert datagrams[2] == bytes.fromhex("000200001f901f9000000e10")
    assert granted.method == "natpmp" and granted.nonce == ""


def test_delete_with_natpmp_detours_and_keeps_pcp(tmp_path):
    rig = Rig(tmp_path, DualGateway())
    rig.client.public_address()
    deleted = rig.client.delete("tcp", 8080, made_with="natpmp")
    assert rig.datagrams()[2:] == [NATPMP_DELETE_TCP_8080]
    assert (deleted.lifetime, deleted.external_port) == (0, 0)
    assert (deleted.method, deleted.nonce) == ("natpmp", "")  # labelled with the protocol really used
    assert rig.client.method == "pcp"
    rig.client.map("tcp", 9090)
    assert is_pcp(rig.datagrams()[-1])  # the detour did not decide the run's protocol


# --------------------------------------------------------------------------- epoch


@pytest.mark.parametrize(
    "pcp, back, rebooted",
    [
        ("speak", 1, False),  # PCP: up to one second back is reordering (RFC 6887 section 8.5)
        ("speak", 2, True),
        (natpmp_refusal(), 1, True),  # NAT-PMP: any step back is a reboot
    ],
)
def test_an_epoch_one_second_back_is_a_reboot_only_under_natpmp(tmp_path, pcp, back, rebooted):
    gateway = DualGateway(pcp=pcp, epoch=500)
    rig = Rig(tmp_path, gateway)
    assert not rig.client.public_address().rebooted
    previous = rig.client.epoch
    assert previous == EpochObservation(500, 5000.0)
    gateway.epoch = 500 - back
    public = rig.client.public_address()
    assert public.method == ("pcp" if pcp == "speak" else "natpmp")
    assert public.rebooted is rebooted
    assert rig.client.rebooted is rebooted
    assert rig.client.lost_since(previous) is rebooted
    assert rig.client.epoch == EpochObservation(500 - back, 5000.0)


# --------------------------------------------------------------------------- probe


def test_probe_under_auto_asks_both(tmp_path):
    rig = Rig(tmp_path, DualGateway())
    found = outcomes(rig.client.probe())
    assert found["upnp"].startswith("no answer to the UPnP IGD search")
    assert found == {"pcp": True, "natpmp": True, "upnp": found["upnp"], "speaks": ["pcp", "natpmp"]}
    assert rig.client.public_address_seen == PUBLIC  # from the NAT-PMP answer
    assert rig.client.method == "pcp"
    datagrams = rig.datagrams()
    assert is_pcp(datagrams[0]) and datagrams[1] == NATPMP_PUBLIC_REQUEST and len(datagrams) == 2
    assert rig.clock.now - START == pytest.approx(0.5, abs=0.02)  # the search is heard out for 0.5 s


def test_probe_asks_both_also_after_the_run_chose_one(tmp_path):
    rig = Rig(tmp_path, DualGateway())
    rig.client.public_address()
    found = outcomes(rig.client.probe())
    assert (found["pcp"], found["natpmp"], found["speaks"]) == (True, True, ["pcp", "natpmp"])
    assert rig.client.method == "pcp"


def test_a_timeout_after_a_refusal_names_both(tmp_path):
    rig = Rig(tmp_path, DualGateway(pcp=natpmp_refusal(), natpmp="silent"))
    with pytest.raises(GatewayTimeout) as caught:
        rig.client.public_address()
    message = str(caught.value)
    assert "NAT-PMP public address request" in message and "does not speak PCP" in message


def test_probe_under_auto_on_a_natpmp_only_gateway(tmp_path):
    rig = Rig(tmp_path, DualGateway(pcp=natpmp_refusal()))
    found = outcomes(rig.client.probe())
    assert isinstance(found["pcp"], str) and "does not speak PCP" in found["pcp"]
    assert found["natpmp"] is True and found["speaks"] == ["natpmp"]
    assert rig.client.method == "natpmp"
    assert rig.client.public_address_seen == PUBLIC


def test_probe_under_auto_on_a_pcp_only_gateway(tmp_path):
    # A PCP-only server answers a version 0 request with its own header: version 2, UNSUPP_VERSION.
    refusal = wire_pcp.encode_response(wire_pcp.OP_ANNOUNCE, wire_pcp.Result.UNSUPP_VERSION, 0, 500)
    rig = Rig(tmp_path, DualGateway(natpmp=refusal))
    found = outcomes(rig.client.probe())
    assert found["pcp"] is True and found["speaks"] == ["pcp"]
    assert isinstance(found["natpmp"], str) and "does not speak NAT-PMP" in found["natpmp"]
    assert rig.client.method == "pcp" and rig.client.public_address_seen is None


def test_probe_under_auto_on_a_silent_gateway_stays_within_the_deadline(tmp_path):
    rig = Rig(tmp_path, DualGateway(pcp="silent", natpmp="silent"))
    found = outcomes(rig.client.probe())
    assert "PCP ANNOUNCE" in found["pcp"] and "NAT-PMP public address" in found["natpmp"]
    assert found["speaks"] == [] and rig.client.method is None
    assert rig.clock.now - START == pytest.approx(3.0)


@pytest.mark.parametrize("method, other", [("pcp", "natpmp"), ("natpmp", "pcp")])
def test_probe_with_a_forced_method_asks_only_it(tmp_path, method, other):
    rig = Rig(tmp_path, DualGateway(), method=method)
    found = outcomes(rig.client.probe())
    assert found[method] is True and found[other] is None and found["speaks"] == [method]
    assert rig.client.method == method
    check = is_pcp if method == "pcp" else is_natpmp
    assert len(rig.datagrams()) == 1 and check(rig.datagrams()[0])


# --------------------------------------------------------------------------- replies to ignore


def test_pcp_map_replies_of_other_mappings_are_ignored(tmp_path):
    nonce = b"\x11" * 12
    right = wire_pcp.encode_map_response(0, 600, 500, nonce, 6, 8080, 40001, PUBLIC)
    noise = [
        wire_pcp.encode_map_response(0, 600, 500, b"\x99" * 12, 6, 8080, 40002, PUBLIC),  # another nonce
        wire_pcp.encode_map_response(0, 600, 500, nonce, 6, 8081, 40003, PUBLIC),  # another internal port
        wire_pcp.encode_map_response(0, 600, 500, nonce, 17, 8080, 40004, PUBLIC),  # another protocol
        wire_pcp.encode_response(wire_pcp.OP_ANNOUNCE, 0, 0, 500),  # another opcode
    ]

    def gateway(data, _n):
        if not is_pcp(data) or data[1] != wire_pcp.OP_MAP:
            return [(0.001, wire_pcp.encode_response(wire_pcp.OP_ANNOUNCE, 0, 0, 500), GATEWAY)]
        return [(0.001 * (i + 1), d, GATEWAY) for i, d in enumerate(noise)] + [(0.01, right, GATEWAY)]

    rig = Rig(tmp_path, gateway)
    rig.client.public_address()
    granted = rig.client.map("tcp", 8080, 8080, 3600)
    assert (granted.external_port, granted.lifetime, granted.nonce) == (40001, 600, nonce.hex())
    assert len(rig.channels[-1].sent) == 1
    assert rig.clock.now - rig.channels[-1].sent[0][0] == pytest.approx(0.01)  # the map exchange took 10 ms


def test_replies_from_another_source_are_ignored(tmp_path):
    right = wire_pcp.encode_response(wire_pcp.OP_ANNOUNCE, 0, 0, 500)
    wrong = wire_pcp.encode_response(wire_pcp.OP_ANNOUNCE, 0, 0, 7)

    def gateway(_data, _n):
        return [
            (0.001, wrong, ("192.0.2.99", GATEWAY[1])),  # another address
            (0.002, wrong, (GATEWAY[0], 5350)),  # another port
            (0.003, natpmp_refusal(), (GATEWAY[0], 5350)),  # not a refusal from the gateway: no fallback
            (0.004, right, GATEWAY),
        ]

    rig = Rig(tmp_path, gateway)
    public = rig.client.public_address()
    assert public.epoch == 500 and rig.client.method == "pcp"
    assert len(rig.channels[0].sent) == 1
    assert [a["outcome"] for a in rig.client.attempts][0] == "answered"
