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
  timeout:
    description:
      - Overall deadline, in seconds, for each request to the gateway.
      - Requests are retransmitted within it on the RFC 6886 schedule (250 ms, doubling).
      - An ICMP port unreachable answer fails the request at once.
    type: float
    default: 3
  ledger_path:
    description:
      - The ledger, a JSON file in which the host records the mappings it holds (NAT-PMP
        cannot list them). Its format is specified in the collection's README.
      - When not given, C(/var/lib/portmap-natpmp/ledger.json); that folder is created with
        mode C(0755) when missing.
      - The folder of a path given here must exist.
    type: path
requirements:
  - Python 3.8 or newer on the managed host; nothing outside the standard library.
  - C(netifaces) is used to find the gateway when it is importable, and never required.
notes:
  - Requests are serialized across processes on the host by a lock file in C(/run/lock),
    which the renewal job shares.
seealso:
  - name: RFC 6886 (NAT-PMP)
    description: NAT Port Mapping Protocol.
    link: https://www.rfc-editor.org/rfc/rfc6886
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
