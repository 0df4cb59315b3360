"""Fuzzing: random and mutated datagrams into the client's reply parsers, the client, and the simulated gateway.

Properties:
- the reply parsers of both protocols never raise; a datagram they accept really answers
  the request (opcode, internal port, nonce and protocol for PCP, delete semantics);
- the client, fed garbage, ignores it: with only garbage it ends in GatewayTimeout (nothing
  else), with garbage and then the right reply it returns the right result;
- the simulated gateway's request handler never raises, and stays silent where the RFCs say
  to drop (RFC 6886: a datagram shorter than 2 octets or with the response bit set; RFC 6887
  section 8.3: shorter than 2 octets, R bit set, or of version 2 and shorter than 24 octets).

Two run lengths: in ``make test`` a few hundred derandomized examples per test (never flaky);
``make fuzz`` (scripts/fuzz.sh) sets FUZZ_EXAMPLES and runs at least 100,000 cases, random.
The number of cases each test really ran is printed at the end of the module.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.plugins.module_utils.portmap.fakes import GATEWAY, FakeChannel, FakeClock
from fuzzing import FUZZ, mutated
from portmap import wire_natpmp, wire_pcp
from portmap.client import Client
from portmap.errors import GatewayTimeout
from simgw import SimulatedGateway

CASES: Counter = Counter()
VALID_ANSWERS: Counter = Counter()

NONCE = bytes(range(1, 13))
OTHER_NONCE = bytes(range(101, 113))
EPOCH = 500
LOCAL = "192.168.1.10"

# Valid datagrams to mutate: replies of both protocols, successes and errors.
NATPMP_REPLIES = [
    wire_natpmp.encode_public_address_reply(0, EPOCH, "11.22.33.2"),
    wire_natpmp.encode_map_reply("tcp", 0, EPOCH, 8080, 8080, 3600),
    wire_natpmp.encode_map_reply("tcp", 0, EPOCH, 8080, 0, 0),
    wire_natpmp.encode_map_reply("udp", 0, EPOCH, 8080, 9000, 60),
    wire_natpmp.encode_map_reply("tcp", 2, EPOCH, 8080, 0, 0),
    wire_natpmp.encode_short_reply(128, 1, EPOCH),
]
PCP_REPLIES = [
    wire_pcp.encode_map_response(0, 3600, EPOCH, NONCE, 6, 8080, 8080, "11.22.33.2"),
    wire_pcp.encode_map_response(0, 0, EPOCH, NONCE, 6, 8080, 8080, "11.22.33.2"),
    wire_pcp.encode_map_response(2, 0, EPOCH, NONCE, 6, 8080, 8080, "::"),
    wire_pcp.encode_map_response(0, 3600, EPOCH, OTHER_NONCE, 6, 8080, 8080, "11.22.33.2"),
    wire_pcp.encode_response(wire_pcp.OP_ANNOUNCE, 0, 0, EPOCH),
    wire_pcp.encode_response(wire_pcp.OP_MAP, 1, 0, EPOCH),
]
REQUESTS = [
    wire_natpmp.encode_public_address_request(),
    wire_natpmp.encode_map_request("tcp", 8080, 8080, 3600),
    wire_natpmp.encode_map_request("udp", 0, 0, 0),
    wire_pcp.encode_announce_request(LOCAL),
    wire_pcp.encode_map_request(LOCAL, NONCE, "tcp", 8080, 8080, 3600),
    wire_pcp.encode_map_request(LOCAL, NONCE, "udp", 5353, 0, 0),
]


@pytest.fixture(scope="module", autouse=True)
def report_cases():
    yield
    total = sum(CASES.values())
    print("\nFUZZ CASES: " + ", ".join(f"{name} {count}" for name, count in sorted(CASES.items()))
          + f"; total {total} (of the client's, {VALID_ANSWERS['client']} drew a valid answer, not garbage)")


def datagrams(seeds: List[bytes]) -> st.SearchStrategy:
    return st.one_of(st.binary(max_size=1200), mutated(seeds))


# ---------------------------------------------------------------- reply parsers

NATPMP_PENDING = {
    "public": wire_natpmp.public_address_request(),
    "map": wire_natpmp.map_request("tcp", 8080, 8080, 3600),
    "delete": wire_natpmp.map_request("tcp", 8080, 0, 0),
}
PCP_PENDING = {
    "announce": wire_pcp.announce_request(),
    "map": wire_pcp.map_request("tcp", 8080, 8080, 3600, NONCE),
    "delete": wire_pcp.map_request("tcp", 8080, 0, 0, NONCE),
}


@FUZZ
@given(which=st.sampled_from(sorted(NATPMP_PENDING)), datagram=datagrams(NATPMP_REPLIES + PCP_REPLIES))
def test_natpmp_reply_parser(which: str, datagram: bytes) -> None:
    CASES["natpmp parser"] += 1
    pending = NATPMP_PENDING[which]
    wire_pcp.unsupported_version_answer(datagram)  # must not raise either
    reply = pending.match(datagram)
    if reply is None:
        return
    assert datagram[0] == wire_natpmp.VERSION
    if wire_natpmp.is_unsupported_version(reply):
        return
    request = pending.encode(LOCAL)
    assert reply.op == 128 + request[1]
    if reply.result != wire_natpmp.Result.SUCCESS:
        assert pending.error(reply) is not None
        return
    if which == "public":
        assert reply.public_address is not None
    elif which == "map":
        assert (reply.internal_port, reply.external_port != 0, reply.lifetime != 0) == (8080, True, True)
    else:
        assert (reply.internal_port, reply.external_port, reply.lifetime) == (8080, 0, 0)


@FUZZ
@given(which=st.sampled_from(sorted(PCP_PENDING)), datagram=datagrams(PCP_REPLIES + NATPMP_REPLIES))
def test_pcp_reply_parser(which: str, datagram: bytes) -> None:
    CASES["pcp parser"] += 1
    pending = PCP_PENDING[which]
    wire_pcp.unsupported_version_answer(datagram)
    reply = pending.match(datagram)
    if reply is None:
        return
    assert datagram[0] == wire_pcp.VERSION and len(datagram) % 4 == 0 and 24 <= len(datagram) <= 1100
    assert reply.op == pending.op
    if which == "announce":
        return
    if reply.nonce is None:
        assert reply.result != wire_pcp.Result.SUCCESS  # only an error may come without the MAP body
        return
    assert (reply.nonce, reply.protocol_number, reply.internal_port) == (NONCE, 6, 8080)
    if reply.result != wire_pcp.Result.SUCCESS:
        assert pending.error(reply) is not None
    elif which == "map":
        assert reply.lifetime != 0 and reply.external_port != 0
    else:
        assert reply.lifetime == 0


# ---------------------------------------------------------------- the client end to end

def right_reply(method: str, request: bytes) -> bytes:
    if method == "natpmp":
        return wire_natpmp.encode_map_reply("tcp", 0, EPOCH, 8080, 8080, 3600)
    return wire_pcp.encode_map_response(0, 3600, EPOCH, request[24:36], 6, 8080, 8080, "11.22.33.2")


class LocalChannel(FakeChannel):
    def local_address(self) -> str:
        return LOCAL


def run_client(tmp_path_factory: Any, method: str, garbage: List[bytes], then_right: bool) -> Tuple[Any, int]:
    clock = FakeClock()

    def script(data: bytes, _n: int) -> List[Tuple[float, bytes, tuple]]:
        answers = [(0.001 * (i + 1), g, GATEWAY) for i, g in enumerate(garbage)]
        if then_right:
            answers.append((0.001 * (len(garbage) + 1), right_reply(method, data), GATEWAY))
        return answers

    channels: List[FakeChannel] = []

    def channel() -> FakeChannel:
        channels.append(LocalChannel(clock, script))
        return channels[-1]

    client = Client(GATEWAY[0], port=GATEWAY[1], method=method, clock=clock, channel_factory=channel,
                    lock_path=str(tmp_path_factory.getbasetemp() / "fuzz.lock"), nonce_factory=lambda: NONCE,
                    wallclock=lambda: 5000.0)
    return client.map("tcp", 8080, 8080, 3600), sum(len(c.sent) for c in channels)


def is_right(method: str, datagram: bytes) -> bool:
    """Whether a garbage datagram happens to be a valid answer (then the client may take it)."""
    if method == "natpmp":
        reply = NATPMP_PENDING["map"].match(datagram)
        return reply is not None and not wire_natpmp.is_unsupported_version(reply)
    return PCP_PENDING["map"].match(datagram) is not None or wire_pcp.unsupported_version_answer(datagram) is not None


@FUZZ
@given(method=st.sampled_from(["natpmp", "pcp"]), then_right=st.booleans(),
       garbage=st.lists(datagrams(NATPMP_REPLIES + PCP_REPLIES), min_size=1, max_size=4))
def test_client_ignores_garbage(tmp_path_factory, method: str, then_right: bool, garbage: List[bytes]) -> None:
    CASES["client"] += 1
    if any(is_right(method, g) or wire_pcp.unsupported_version_answer(g) is not None for g in garbage):
        VALID_ANSWERS["client"] += 1
        return
    if then_right:
        granted, _sends = run_client(tmp_path_factory, method, garbage, True)
        assert (granted.internal_port, granted.external_port, granted.lifetime, granted.method) == (
            8080, 8080, 3600, method)
    else:
        with pytest.raises(GatewayTimeout):
            run_client(tmp_path_factory, method, garbage, False)


# ---------------------------------------------------------------- the simulated gateway

def must_stay_silent(data: bytes, speaks: str) -> bool:
    if len(data) < 2 or data[1] & 0x80:
        return True  # both RFCs: too short, or a response (R bit) rather than a request
    if data[0] == wire_pcp.VERSION and speaks == "drop-pcp":
        return True  # the mode that drops PCP
    # RFC 6887 8.3: a version the server speaks, in a message shorter than a header
    return data[0] == wire_pcp.VERSION and speaks in ("both", "pcp") and len(data) < 24


GATEWAYS: Dict[str, SimulatedGateway] = {}


def gateway(speaks: str) -> SimulatedGateway:
    """One gateway per mode, never bound to a socket: handle() is called directly."""
    if speaks not in GATEWAYS:
        GATEWAYS[speaks] = SimulatedGateway(address="127.0.0.1", speaks=speaks, uptime=1000)
    return GATEWAYS[speaks]


@FUZZ
@given(speaks=st.sampled_from(["both", "natpmp", "pcp", "drop-pcp"]), data=datagrams(REQUESTS))
def test_gateway_handles_anything(speaks: str, data: bytes) -> None:
    CASES["gateway"] += 1
    gw = gateway(speaks)
    entry: Dict[str, Any] = {}
    reply = gw.handle(data, LOCAL, entry)
    if must_stay_silent(data, speaks):
        assert reply is None, (data.hex(), reply)
    if reply is not None:
        assert isinstance(reply, bytes) and 8 <= len(reply) <= 1100
        assert reply[1] & 0x80  # whatever it answers is a response
    if len(gw.table) > 1000:
        gw.table.clear()  # keep the table small over a long run
