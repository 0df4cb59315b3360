# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options shared by every module of the collection.
    DOCUMENTATION = r"""
options:
  gateway:
    description:
      - IPv4 address of the NAT gateway.
      - When not given, the host's default IPv4 router is used, found with C(netifaces)
        when it is importable, else in C(/proc/net/route) on Linux, else with
        C(route -n get default) on BSD and macOS.
    type: str
  source_address:
    description:
      - Local IPv4 address to send the requests from, for hosts with a VPN or policy routing.
      - By default the operating system chooses.
    type: str
  method:
    description:
      - The protocol spoken with the gateway.
      - V(auto) tries PCP (RFC 6887) first and falls back to NAT-PMP (RFC 6886) when the
        gateway answers that it does not speak PCP (in either protocol's form), or when PCP
        gets no answer within a third of O(timeout) (some gateways drop what they do not
        speak). Both tries fit in the one O(timeout). Nothing is remembered across runs, so
        a gateway that learns PCP is used with it at the next run.
      - V(pcp) and V(natpmp) force one protocol.
      - The protocol used is returned, and recorded per mapping in the ledger.
    type: str
    choices: [auto, pcp, natpmp]
    default: auto
  timeout:
    description:
      - Overall deadline, in seconds, for each request to the gateway (with O(method=auto),
        for PCP and the NAT-PMP fallback together).
      - Requests are retransmitted within it on the RFC 6886 schedule (250 ms, doubling);
        PCP requests too, as RFC 6887's first wait of 3 s would leave a single try.
      - An ICMP port unreachable answer fails the request at once.
    type: float
    default: 3
  ledger_path:
    description:
      - The ledger, a JSON file in which the host records the mappings it holds (neither
        NAT-PMP nor PCP can list them), with each PCP mapping's nonce. Its format is specified in the collection's README.
      - When not given, C(/var/lib/portmap-natpmp/ledger.json); that folder is created with
        mode C(0755) when missing.
      - The folder of a path given here must exist.
    type: path
requirements:
  - Python 3.8 or newer on the managed host; nothing outside the standard library.
  - C(netifaces) is used to find the gateway when it is importable, and never required.
notes:
  - Requests are serialized across processes on the host by the lock file C(.portmap-natpmp.lock)
    beside the ledger (mode 0600), which the renewal job shares. A ledger folder that users other
    than its owner can write is refused, since any of them could then hold the lock or replace the ledger.
  - Before the first request the ledger's write is proven possible (a read-only file system, a full
    disk or a missing folder fail with nothing sent); a write that still fails after the gateway
    granted a mapping deletes that mapping again and says so.
seealso:
  - name: RFC 6886 (NAT-PMP)
    description: NAT Port Mapping Protocol.
    link: https://www.rfc-editor.org/rfc/rfc6886
  - name: RFC 6887 (PCP)
    description: Port Control Protocol.
    link: https://www.rfc-editor.org/rfc/rfc6887
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports no change
        (and sends nothing that alters the target beyond what the first run did).
"""
