"""What the gateway's own table, each host's ledger and a run's result must agree on.

A row is (protocol, internal port, external port) of one host.  The gateway's table is
read from the simulated gateway's control channel (``simgw_rows``) or from miniupnpd's
nftables DNAT chain (``nft_rows``); the ledger from its JSON file (``ledger_rows``).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, Optional, Set, Tuple

Row = Tuple[str, int, int]
NFT_PROTOCOLS = {6: "tcp", 17: "udp"}


def ledger_rows(path: str, gateway: Optional[str] = None) -> Set[Row]:
    """The mappings a ledger file records (of ``gateway`` only, when given); none when there is no file."""
    if not os.path.exists(path):
        return set()
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    return {(m["protocol"], m["internal_port"], m["external_port"]) for m in document.get("mappings", [])
            if gateway is None or m["gateway"] == gateway}


def simgw_rows(gw: Any) -> Dict[str, Set[Row]]:
    """The simulated gateway's table, per internal client."""
    rows: Dict[str, Set[Row]] = {}
    for m in gw.ctl({"cmd": "table"})["mappings"]:
        rows.setdefault(m["client"], set()).add((m["protocol"], m["internal_port"], m["external_port"]))
    return rows


def nft_rows(topology: Any) -> Dict[str, Set[Row]]:
    """miniupnpd's forwards, per internal client: the DNAT rules of its chain prerouting_miniupnpd."""
    listed = topology.run(topology.gw, ["nft", "-j", "list", "chain", "inet", "filter", "prerouting_miniupnpd"])
    if listed.returncode != 0:
        raise RuntimeError(f"nft list chain failed: {listed.stderr}")
    rows: Dict[str, Set[Row]] = {}
    for item in json.loads(listed.stdout)["nftables"]:
        rule = item.get("rule")
        if rule is None:
            continue
        protocol, port, dnat = None, None, None
        for expression in rule["expr"]:
            match = expression.get("match")
            if match is not None and match["left"].get("payload", {}).get("offset") == 72:  # the IPv4 protocol byte
                protocol = NFT_PROTOCOLS.get(match["right"])
            elif match is not None and match["left"].get("payload", {}).get("field") == "dport":
                port = match["right"]
            elif "dnat" in expression:
                dnat = expression["dnat"]
        if protocol is None or port is None or dnat is None:
            raise AssertionError(f"a DNAT rule of miniupnpd not understood: {rule}")
        rows.setdefault(dnat["addr"], set()).add((protocol, dnat["port"], port))
    return rows


def result_rows(items: Iterable[Dict[str, Any]]) -> Set[Row]:
    return {(m["protocol"], m["internal_port"], m["external_port"]) for m in items}


def check(table: Set[Row], ledger: Set[Row], result: Optional[Dict[str, Any]] = None, where: str = "",
          rebooted: bool = False) -> None:
    """The host's rows on the gateway are its ledger's (only some of them, when the gateway ``rebooted`` since
    the host's last renewal); the result's 'after' is the ledger, what it says it mapped is on the gateway and
    what it says it removed is not."""
    if rebooted:
        assert table <= ledger, f"{where}: gateway {sorted(table)} has more than the ledger {sorted(ledger)}"
    else:
        assert table == ledger, f"{where}: gateway {sorted(table)} != ledger {sorted(ledger)}"
    if result is None:
        return
    after = result_rows(result["diff"]["after"]["mappings"])
    assert after == ledger, f"{where}: the result's diff.after {sorted(after)} != ledger {sorted(ledger)}"
    mapped = result_rows(m for m in result["mappings"] if not m.get("predicted"))
    assert mapped <= table, f"{where}: the result's mappings {sorted(mapped - table)} are not on the gateway"
    removed = result_rows(result["removed"])
    assert not removed & table, f"{where}: the result says {sorted(removed & table)} were removed, the gateway has them"
