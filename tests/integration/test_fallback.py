"""Method auto against each mode of the simulated gateway, with wall times.

The gateway speaks both protocols, NAT-PMP only (answering PCP with its 8-byte
"unsupported version"), PCP only (answering NAT-PMP with PCP's UNSUPP_VERSION),
NAT-PMP only while dropping PCP silently, or only UPnP IGD (dropping what comes to
port 5351), or nothing.  With ``auto`` (PCP, NAT-PMP and an IGD search asked at once)
every mode ends on the protocol the gateway speaks, within the one deadline; a forced
method fails with a clear error.
"""

from __future__ import annotations

import time

import pytest

from portmap.client import Client
from portmap.methods.port5351 import PCP_SHARE
from portmap.methods.upnp import GRACE as UPNP_GRACE
from portmap.errors import GatewayTimeout, UnsupportedVersion
from simgw import SimulatedGateway

TIMEOUT = 3.0


@pytest.fixture
def speaking(loopback_address, tmp_path):
    """A gateway factory: ``speaking(mode)`` starts the gateway in that mode."""
    started = []

    def start(mode, **options):
        gateway = SimulatedGateway(address=loopback_address, control_path=str(tmp_path / "gw.sock"), speaks=mode,
                                   **options)
        started.append(gateway.start())
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


def timed(client, operation):
    start = time.monotonic()
    result = operation(client)
    return result, time.monotonic() - start


def mapped(client):
    client.public_address()
    return client.map("tcp", 8080, 8080, 600)


@pytest.mark.parametrize("mode, igd, method, within", [
    ("both", "off", "pcp", (0, 0.1)),  # one round trip
    ("both", "v2", "pcp", (0, 0.1)),  # the IGD answers too: PCP is preferred
    ("pcp", "off", "pcp", (0, 0.1)),
    ("natpmp", "off", "natpmp", (0, 0.1)),  # PCP refused at once: no waiting
    ("drop-pcp", "off", "natpmp", (TIMEOUT * PCP_SHARE, TIMEOUT * PCP_SHARE + 0.3)),  # PCP's share goes by first
    ("none", "v2", "upnp", (UPNP_GRACE, 0.5)),  # UPnP IGD only, port 5351 dropped: chosen after the grace
    ("none", "v1", "upnp", (UPNP_GRACE, 0.5)),
])
def test_auto_ends_on_what_the_gateway_speaks(speaking, tmp_path, mode, igd, method, within):
    gateway = speaking(mode, igd=igd)
    client = Client(gateway.address, method="auto", timeout=TIMEOUT, lock_path=str(tmp_path / "lock"))
    start = time.monotonic()
    client.public_address()
    chosen = time.monotonic() - start
    granted = client.map("tcp", 8080, 8080, 600)
    print(f"auto against speaks={mode} igd={igd}: {method} chosen after {chosen:.3f} s "
          f"(detection {client.detection.chosen_after:.3f} s); tries "
          f"{[(a['method'], a['outcome']) for a in client.attempts]}")
    assert granted.method == method == client.method
    assert granted.external_port == 8080 and granted.lifetime == 600
    assert granted.public_address == "11.22.33.2"
    table = gateway.ctl({"cmd": "table"})["mappings"]
    assert [(m["method"], m["internal_port"], bool(m["nonce"])) for m in table] == [(method, 8080, method == "pcp")]
    assert within[0] <= client.detection.chosen_after < within[1]
    assert chosen < within[1] + 0.2  # the public address included (UPnP: description, status, address)
    if mode == "drop-pcp":
        outcomes = dict((a["method"], a["outcome"]) for a in client.attempts)
        assert outcomes["pcp"].startswith("no answer to the PCP ANNOUNCE request") and outcomes["natpmp"] == "answered"


@pytest.mark.parametrize("mode, method, error, slow", [
    ("natpmp", "pcp", UnsupportedVersion, False),
    ("pcp", "natpmp", UnsupportedVersion, False),
    ("drop-pcp", "pcp", GatewayTimeout, True),
])
def test_a_forced_method_fails_clearly(speaking, tmp_path, mode, method, error, slow):
    gateway = speaking(mode)
    client = Client(gateway.address, method=method, timeout=TIMEOUT, lock_path=str(tmp_path / "lock"))
    start = time.monotonic()
    with pytest.raises(error) as raised:
        client.public_address()
    wall = time.monotonic() - start
    print(f"forced {method} against speaks={mode}: {error.__name__} after {wall:.3f} s: {raised.value}")
    assert gateway.address in str(raised.value)
    assert client.attempts == [{"method": method, "outcome": client.attempts[0]["outcome"], "seconds": client.attempts[0]["seconds"]}]
    if slow:
        assert TIMEOUT <= wall < TIMEOUT + 0.5  # a forced method has the whole deadline
    else:
        assert wall < 0.5 and "does not speak" in str(raised.value)


def test_auto_on_a_silent_gateway_gives_up_at_the_one_deadline(speaking, tmp_path):
    gateway = speaking("both")
    gateway.ctl({"cmd": "fault", "kind": "drop"})
    client = Client(gateway.address, method="auto", timeout=TIMEOUT, lock_path=str(tmp_path / "lock"))
    start = time.monotonic()
    with pytest.raises(GatewayTimeout) as raised:
        client.public_address()
    wall = time.monotonic() - start
    print(f"auto against a silent gateway: gave up after {wall:.3f} s: {raised.value}")
    assert TIMEOUT <= wall < TIMEOUT + 0.3
    assert "PCP ANNOUNCE" in str(raised.value) and "NAT-PMP public address" in str(raised.value)
    assert "UPnP IGD search" in str(raised.value)
    assert [a["method"] for a in client.attempts] == ["pcp", "natpmp", "upnp"]


def test_no_memory_across_runs(speaking, tmp_path):
    """RFC 6886 section 1.1: a gateway once found speaking only NAT-PMP is asked PCP again next run."""
    gateway = speaking("natpmp")
    first = Client(gateway.address, method="auto", lock_path=str(tmp_path / "lock"))
    assert first.public_address().method == "natpmp"
    gateway.ctl({"cmd": "set", "speaks": "both"})  # the gateway learnt PCP
    second = Client(gateway.address, method="auto", lock_path=str(tmp_path / "lock"), epoch=first.epoch)
    assert second.public_address().method == "pcp"


@pytest.mark.parametrize("port_5351, method, within", [
    ("dropped", "upnp", (UPNP_GRACE, UPNP_GRACE + 0.15)),  # PCP and NAT-PMP heard out for UPnP's wait
    ("unreachable", "upnp", (0, 0.1)),  # ICMP port unreachable: refused at once
    ("pcp", "pcp", (0, 0.1)),  # the gateway learnt PCP: spoken to in PCP, at its answer
])
def test_auto_with_a_kept_igd_asks_pcp_and_natpmp_first(loopback_address, tmp_path, port_5351, method, within):
    """The IGD kept in the ledger stands in for the SSDP search: it is used, with no search, only when
    neither PCP nor NAT-PMP answers within UPnP's wait (README: the kept-IGD figures)."""
    with SimulatedGateway(address=loopback_address, port=5352 if port_5351 == "unreachable" else 5351,
                          control_path=str(tmp_path / "gw.sock"), igd="v2", speaks="none") as gateway:
        found = Client(gateway.address, method="upnp", timeout=TIMEOUT, lock_path=str(tmp_path / "lock"))
        found.public_address()
        kept = found.active.kept()
        if port_5351 == "pcp":
            gateway.ctl({"cmd": "set", "speaks": "both"})
        gateway.ctl({"cmd": "clear_log"})
        client = Client(gateway.address, method="auto", timeout=TIMEOUT, lock_path=str(tmp_path / "lock"))
        client.resume("upnp", {"upnp": kept})
        start = time.monotonic()
        answer = client.public_address()
        wall = time.monotonic() - start
        print(f"auto with a kept IGD, port 5351 {port_5351}: {answer.method} after {wall:.3f} s "
              f"(chosen after {client.detection.chosen_after:.3f} s)")
        assert answer.method == method == client.method
        assert within[0] <= client.detection.chosen_after < within[1]
        assert wall < within[1] + 0.1
        assert [e for e in gateway.ctl({"cmd": "log"})["log"] if e.get("method") == "ssdp"] == []  # no search
        if method == "upnp":
            assert answer.address == "11.22.33.2"
