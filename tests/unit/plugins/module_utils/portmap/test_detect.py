"""Method auto: PCP, NAT-PMP and UPnP IGD asked at once, against scripted gateways on a fake clock (no sockets)."""

from __future__ import annotations

import pytest

from tests.unit.plugins.module_utils.portmap.fakes import FakeChannel, FakeSsdp
from tests.unit.plugins.module_utils.portmap.fakes_upnp import GATEWAY, FakeIgd, vector
from tests.unit.plugins.module_utils.portmap.test_client_pcp import DualGateway, natpmp_refusal
from portmap import detect
from portmap.client import Client
from portmap.errors import GatewayUnreachable
from portmap.methods import upnp as upnp_method

START = 1000.0
SSDP_ANSWER = vector("v2-ssdp-InternetGatewayDevice-2")  # LOCATION on the gateway's address


class Local(FakeChannel):
    def local_address(self) -> str:
        return "192.0.2.10"


class Refusing(FakeChannel):
    """Nothing listens on the gateway's port 5351: every send is answered by ICMP port unreachable."""

    def send(self, data: bytes) -> None:
        self.sent.append((self.clock.now, data))
        self.queue.append((self.clock.now + 0.001, ConnectionRefusedError(111, "Connection refused"), None))

    def local_address(self) -> str:
        return "192.0.2.10"


def outcomes(detection):
    """A probe's Detection as natpmp_info reads it: per method True, None or the error; ``speaks``: those that answered."""
    return dict(detection.view(), speaks=detection.speaking())


def rig(tmp_path, port5351="silent", ssdp_delay=0.005, ssdp_source=(GATEWAY, 1900), answer=SSDP_ANSWER, timeout=3.0):
    """A client under auto whose gateway speaks what ``port5351`` says (a DualGateway, "silent" or
    "refused") and answers the IGD search after ``ssdp_delay`` (None: not at all)."""
    igd = FakeIgd()
    clock = igd.clock
    channels = []
    if port5351 == "refused":
        def channel():
            channels.append(Refusing(clock, lambda _d, _n: []))
            return channels[-1]
    else:
        behaviour = port5351 if callable(port5351) else (lambda _d, _n: [])
        fixed = [(0.001, port5351, (GATEWAY, 5351))] if isinstance(port5351, bytes) else None

        def channel():
            channels.append(Local(clock, (lambda _d, _n: fixed) if fixed else behaviour))
            return channels[-1]
    ssdp = FakeSsdp(clock, None if ssdp_delay is None else
                    (lambda data, _address: [(ssdp_delay, answer, ssdp_source)] if b"InternetGatewayDevice:2" in data
                     else []))
    client = Client(GATEWAY, timeout=timeout, method="auto", lock_path=str(tmp_path / "lock"), clock=clock,
                    channel_factory=channel, datagrams_factory=ssdp, stream_factory=igd.streams,
                    wallclock=lambda: 5000.0)
    return client, igd, channels, ssdp


def elapsed(igd):
    return igd.clock.now - START


def test_a_upnp_only_gateway_with_nothing_on_5351_is_chosen_at_the_igds_answer(tmp_path):
    client, igd, channels, ssdp = rig(tmp_path, "refused")
    public = client.public_address()
    assert client.method == "upnp" and public.method == "upnp"
    assert client.detection.chosen_after == pytest.approx(0.005, abs=0.011)
    assert client.detection.chosen_after < 0.5
    assert public.address == "11.22.33.2"  # GetExternalIPAddress of the IGD found
    assert igd.actions()[0] == "GET /rootDesc.xml"
    assert [len(c.sent) for c in channels] == [1, 1]  # refused at once: not sent again
    assert ssdp.closed
    assert "ICMP port unreachable" in client.detection.outcomes["pcp"]


def test_a_upnp_only_gateway_that_drops_5351_is_chosen_after_the_grace(tmp_path):
    client, igd, _channels, _ssdp = rig(tmp_path, "silent")
    client.public_address()
    assert client.method == "upnp"
    assert client.detection.chosen_after == pytest.approx(upnp_method.GRACE, abs=0.011)
    assert client.detection.chosen_after < 0.5  # within what Tailscale's portmapper gives services on the LAN
    assert igd.actions()[:2] == ["GET /rootDesc.xml", "GetStatusInfo"]


def test_pcp_wins_over_an_igd_that_answers_first(tmp_path):
    gateway = DualGateway(delay=0.02)
    client, igd, _channels, _ssdp = rig(tmp_path, gateway, ssdp_delay=0.001)
    public = client.public_address()
    assert client.method == "pcp" and public.method == "pcp"
    assert elapsed(igd) == pytest.approx(0.02, abs=0.011)
    assert igd.requests == []  # the IGD was found, not used


def test_natpmp_wins_over_an_igd_when_pcp_is_refused(tmp_path):
    client, _igd, _channels, _ssdp = rig(tmp_path, DualGateway(pcp=natpmp_refusal(0)), ssdp_delay=0.001)
    client.public_address()
    assert client.method == "natpmp"


def test_natpmp_waits_a_third_of_the_deadline_for_a_silent_pcp_even_with_an_igd(tmp_path):
    client, igd, _channels, _ssdp = rig(tmp_path, DualGateway(pcp="silent"), ssdp_delay=0.001)
    client.public_address()
    assert client.method == "natpmp"
    assert elapsed(igd) == pytest.approx(1.0, abs=0.011)


@pytest.mark.parametrize("source, answer", [
    (("192.0.2.99", 1900), SSDP_ANSWER),  # another host on the LAN answers
    ((GATEWAY, 1900), SSDP_ANSWER.replace(GATEWAY.encode() + b":", b"192.0.2.99:")),  # an IGD elsewhere
])
def test_igd_answers_from_elsewhere_are_ignored(tmp_path, source, answer):
    client, igd, _channels, _ssdp = rig(tmp_path, "refused", ssdp_source=source, answer=answer)
    with pytest.raises(GatewayUnreachable) as caught:
        client.public_address()
    assert "speaks none of PCP, NAT-PMP and UPnP IGD" in str(caught.value)
    assert "no answer to the UPnP IGD search" in str(caught.value)
    assert elapsed(igd) == pytest.approx(3.0)  # the search was heard out to the deadline
    assert client.method is None and igd.requests == []


def test_probe_hears_all_three_out(tmp_path):
    client, _igd, _channels, _ssdp = rig(tmp_path, DualGateway(), ssdp_delay=0.003)
    found = outcomes(client.probe())
    assert (found["pcp"], found["natpmp"], found["upnp"]) == (True, True, True)
    assert found["speaks"] == ["pcp", "natpmp", "upnp"]
    assert client.method == "pcp"


def test_the_brief_probe_hears_an_igd_that_holds_its_answer_as_miniupnpd_does(tmp_path):
    """The command's ``public``: miniupnpd answers a unicast M-SEARCH 50 ms late (minissdp.c, a delay "to
    prevent flooding"); a PCP gateway answering in 1 ms must still be said to speak UPnP IGD."""
    client, igd, _channels, _ssdp = rig(tmp_path, DualGateway(), ssdp_delay=0.05)
    found = outcomes(client.probe(brief=True))
    assert found["speaks"] == ["pcp", "natpmp", "upnp"] and client.method == "pcp"
    assert elapsed(igd) < detect.SETTLE  # heard out briefly, not for the whole settle time


def test_probe_on_a_upnp_only_gateway(tmp_path):
    client, _igd, _channels, _ssdp = rig(tmp_path, "refused")
    found = outcomes(client.probe())
    assert found["speaks"] == ["upnp"] and client.method == "upnp"
    assert "ICMP port unreachable" in found["pcp"] and "ICMP port unreachable" in found["natpmp"]
    assert client.public_address_seen == "11.22.33.2"


def test_a_pcp_choice_waits_briefly_for_natpmps_address_and_no_longer(tmp_path):
    gateway = DualGateway(natpmp="silent")  # a PCP gateway that drops NAT-PMP
    client, igd, _channels, _ssdp = rig(tmp_path, gateway, ssdp_delay=None)
    public = client.public_address()
    assert client.method == "pcp" and public.address is None
    assert elapsed(igd) == pytest.approx(0.001 + detect.LINGER, abs=0.011)  # not PCP's third of the deadline


def test_a_pcp_choice_takes_the_address_natpmp_told_with_it(tmp_path):
    client, _igd, _channels, _ssdp = rig(tmp_path, DualGateway(), ssdp_delay=None)
    assert client.public_address().address == "11.22.33.2" and client.method == "pcp"
