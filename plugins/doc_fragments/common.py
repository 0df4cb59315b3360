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
      - V(auto) asks in all three at once, read-only, with a PCP (RFC 6887) ANNOUNCE and a NAT-PMP
        (RFC 6886) public address request to the gateway's port 5351, and UPnP IGD searches
        (SSDP M-SEARCH, unicast to the gateway's port 1900). PCP is chosen as soon as it
        answers; NAT-PMP once it answered and PCP is refused or silent for a third of
        O(timeout); UPnP IGD once an IGD on the gateway's own address answered and PCP and
        NAT-PMP are refused or silent for 0.25 s. All of it fits in the one O(timeout), and a
        gateway that answers PCP or NAT-PMP only after retransmissions is still found.
      - NAT-PMP and PCP are asked anew at every run, so a gateway that learns PCP is used with
        it at the next run. What UPnP discovery found is kept in the ledger, so the next run
        goes straight to the IGD (and discovers it once more when it no longer answers there).
      - V(pcp), V(natpmp) and V(upnp) force one protocol.
      - The protocol used is returned, and recorded per mapping in the ledger.
    type: str
    choices: [auto, pcp, natpmp, upnp]
    default: auto
  upnp_url:
    description:
      - UPnP IGD only. The IGD's description URL, for example C(http://192.168.1.1:5000/rootDesc.xml),
        instead of finding it with SSDP. It must be plain C(http) on the gateway's address;
        without O(gateway) it names the gateway.
      - By default the IGD is found with SSDP, or taken from the ledger, where an earlier run kept
        it. The gateway (O(gateway), else the default route's router) is asked with a unicast
        M-SEARCH; only when O(gateway) is not given and the router does not answer within half of
        O(timeout) is the search multicast on the LAN.
    type: str
  description:
    description:
      - UPnP IGD only. The mappings' description, which the router's pages show.
      - By default C(portmap.natpmp) followed by a space and the host's name.
      - NAT-PMP and PCP have no description and ignore it.
    type: str
  timeout:
    description:
      - Overall deadline, in seconds, for each request to the gateway (with O(method=auto),
        for the three protocols asked at once, together).
      - Requests are retransmitted within it on the RFC 6886 schedule (250 ms, doubling);
        PCP requests too, as RFC 6887's first wait of 3 s would leave a single try.
      - An ICMP port unreachable answer fails the request at once.
    type: float
    default: 3
  ledger_path:
    description:
      - The ledger, a JSON file in which the host records the mappings it holds (neither
        NAT-PMP nor PCP can list them), with each PCP mapping's nonce and what UPnP discovery
        found. Its format is specified in the collection's README.
      - When not given, C(/var/lib/portmap-natpmp/ledger.json); that folder is created with
        mode C(0755) when missing, by a run that may change something. In check mode and by
        M(portmap.natpmp.natpmp_info) it is not created, and while it is missing the ledger reads
        as empty.
      - The folder of another path given here must exist.
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
  - name: UPnP IGD
    description: The UPnP Forum's Internet Gateway Device (WANIPConnection v1 and v2).
    link: https://openconnectivity.org/developer/specifications/upnp-resources/upnp/internet-gateway-device-igd-v-2-0/
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
