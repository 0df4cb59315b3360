"""RFC 5780 behaviour discovery and the classic names, through a scripted network (no sockets)."""

from __future__ import annotations

import pytest

from portmap import reachability, stun
from portmap.errors import GatewayTimeout, StunError
from portmap.stun import ADDRESS, ADDRESS_AND_PORT, INDEPENDENT, StunClient
from simgw import stun_wire
from tests.unit.plugins.module_utils.portmap.stunnet import LOCAL, OTHER, PRIMARY, PUBLIC, Network


def client(network: Network, timeout: float = 3.0) -> StunClient:
    return StunClient(PRIMARY, timeout=timeout, clock=network.clock, endpoint_factory=network.endpoint)


SHAPES = [
    # mapping, filtering (None, None: no NAT, no firewall), classic name
    (None, None, stun.OPEN_INTERNET),
    (None, ADDRESS_AND_PORT, stun.SYMMETRIC_FIREWALL),
    (INDEPENDENT, INDEPENDENT, stun.FULL_CONE),
    (INDEPENDENT, ADDRESS, stun.RESTRICTED_CONE),
    (INDEPENDENT, ADDRESS_AND_PORT, stun.PORT_RESTRICTED_CONE),
    (ADDRESS, ADDRESS_AND_PORT, stun.SYMMETRIC),
    (ADDRESS_AND_PORT, ADDRESS_AND_PORT, stun.SYMMETRIC),
    (ADDRESS_AND_PORT, INDEPENDENT, stun.SYMMETRIC),
]


@pytest.mark.parametrize("mapping, filtering, name", SHAPES)
def test_each_nat_shape_is_classified(mapping, filtering, name):
    network = Network(mapping, filtering)
    found = client(network).classify()
    assert found.classic == name
    assert found.mapping == (mapping or INDEPENDENT)
    assert found.filtering == (filtering or INDEPENDENT)
    assert found.rfc5780 and found.other_address == OTHER
    assert found.behind_nat is (mapping is not None)
    assert found.mapped == ((PUBLIC, 50000) if mapping else (LOCAL, 40000))
    assert found.as_dict()["type"] == name and found.as_dict()["address"] == found.mapped[0]


@pytest.mark.parametrize("lost", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("mapping, filtering, name", SHAPES)
def test_one_lost_datagram_changes_no_verdict(mapping, filtering, name, lost):
    assert client(Network(mapping, filtering, drop=(lost,))).classify().classic == name


def test_mapping_tests_share_a_port_filtering_gets_a_fresh_one():
    network = Network(ADDRESS_AND_PORT, ADDRESS_AND_PORT)
    client(network).classify()
    mapping_port, filtering_port = network.endpoints
    assert mapping_port.sent_to == [PRIMARY, (OTHER[0], PRIMARY[1]), OTHER]  # tests I, II, III
    assert filtering_port.sent_to[0] == PRIMARY and set(filtering_port.sent_to) == {PRIMARY}
    assert mapping_port.port != filtering_port.port
    assert mapping_port.closed and filtering_port.closed


def test_a_test_passing_by_no_answer_waits_the_stated_time_with_retransmissions():
    network = Network(INDEPENDENT, ADDRESS_AND_PORT)
    found = client(network).classify()
    # test I, II (mapping: answered), I (filtering: answered), then II and III unanswered: 3 sends of 0.8 s each
    assert network.sends == 2 + 1 + 3 + 3
    assert found.elapsed == pytest.approx(2 * stun.NO_ANSWER_WAIT + 3 * 0.002, abs=1e-6)
    assert found.elapsed < 2.0


def test_silent_server_is_blocked_after_the_deadline():
    network = Network(silent=True)
    stun_client = client(network, timeout=3.0)
    found = stun_client.classify()
    assert (found.classic, found.mapped, found.mapping, found.filtering) == (stun.BLOCKED, None, None, None)
    assert found.elapsed == pytest.approx(3.0)
    assert stun_client.sends == 4  # 0, 0.25, 0.75, 1.75 s
    with pytest.raises(GatewayTimeout, match="no answer from STUN server 192.0.2.1:3478"):
        client(Network(silent=True), timeout=1.0).reflexive()


def test_server_without_rfc5780_still_gives_the_reflexive_address():
    network = Network(INDEPENDENT, ADDRESS_AND_PORT, rfc5780=False)
    found = client(network).classify()
    assert (found.mapped, found.rfc5780, found.mapping, found.filtering, found.classic) == (
        (PUBLIC, 50000), False, None, None, None)
    assert len(network.endpoints) == 1 and network.sends == 1
    assert client(Network(rfc5780=False)).reflexive() == (PUBLIC, 50000)


def test_an_answer_from_the_wrong_address_does_not_count():
    """A server that ignores CHANGE-REQUEST answers from its primary address: no filtering test passes."""
    found = client(Network(INDEPENDENT, INDEPENDENT, honour_change=False)).classify()
    assert found.filtering == ADDRESS_AND_PORT


def test_error_response_and_unknown_required_attribute_fail_the_transaction():
    with pytest.raises(StunError, match="error 400 'Bad Request'"):
        client(Network(error=400)).classify()
    with pytest.raises(StunError, match=r"comprehension-required attributes .*\(0x7001\).*RFC 8489"):
        client(Network(extra=((0x7001, b"?"),))).classify()
    found = client(Network(extra=((0xC001, b"?"),))).classify()  # comprehension-optional: ignored
    assert found.classic == stun.PORT_RESTRICTED_CONE


def test_other_transactions_are_ignored():
    network = Network(INDEPENDENT, INDEPENDENT)
    stun_client = client(network)
    endpoint = network.endpoint()
    stale = stun_wire.encode_binding_response(bytes(12), ("203.0.113.9", 1))  # another transaction id
    endpoint.queue.append((network.clock.now + 0.001, stale, PRIMARY))
    endpoint.queue.append((network.clock.now + 0.001, b"\x00" * 40, PRIMARY))
    response = stun_client.binding(endpoint, PRIMARY, 0.8)
    assert response.mapped == (PUBLIC, 50000)


@pytest.mark.parametrize("text, expected", [
    ("11.22.33.1:3478", ("11.22.33.1", 3478)),
    ("11.22.33.1", ("11.22.33.1", 3478)),
    ("127.0.0.1:19302", ("127.0.0.1", 19302)),
])
def test_parse_server(text, expected):
    assert stun.parse_server(text) == expected


@pytest.mark.parametrize("text", ["11.22.33.1:0", "11.22.33.1:65536", ":3478", "11.22.33.1:x"])
def test_parse_server_refuses(text):
    with pytest.raises(ValueError, match="host:port"):
        stun.parse_server(text)


def test_nat_facts_without_a_server_contacts_nobody():
    facts = reachability.nat_facts("100.64.3.7", None)
    assert facts["nat"] is None and facts["reachable"] is False and facts["double_nat"] is True
    assert facts["warnings"] == ["the gateway's public address 100.64.3.7 is in the carrier-grade NAT range: "
                                 "this mapping is not reachable from the Internet"]
    assert reachability.nat_facts("11.22.33.2", None) == {"nat": None, "reachable": None, "double_nat": None, "warnings": []}
