#!/usr/bin/python
# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: natpmp_info
short_description: Facts about the host's PCP, NAT-PMP or UPnP IGD gateway and the mappings this host holds
version_added: 0.2.0
description:
  - Finds the gateway, asks it the read-only requests of the three protocols at once (PCP's
    ANNOUNCE, NAT-PMP's public address request and a UPnP IGD search; with a forced O(method) only
    that one's), and reports its public address, its epoch (under UPnP IGD, its uptime), which of the
    three it speaks, and the mappings the host's ledger records, with the time each has left and
    the result of its last renewal.
  - Where the gateway speaks UPnP IGD, which can list (also next to PCP or NAT-PMP, when its IGD
    answered the search), it also returns the gateway's own table, RV(gateway_table), with every
    host's mappings, their internal client, description and lease left, at most 1024 entries read
    within 10 s (the result says when it was cut).
  - Under UPnP IGD it says which WAN connection service of the IGD is used and why, RV(upnp_service).
    Every such service of the IGDs found (an IGD may list several, one per uplink or one that is down;
    the UPnP Forum's C(WANIPConnection) and C(WANPPPConnection) and the same under their TR-064 names,
    C(urn:dslforum-org:service:WANIPConnection:1) and C(urn:dslforum-org:service:WANPPPConnection:1)) is
    ranked as miniupnpc's C(UPNP_GetValidIGD) ranks them - connected with a public address, then
    connected, then any - and the first of the best rank is used.
  - A gateway that does not answer is reported (RV(answers=false) and RV(error)), not a failure.
  - With O(stun_server), it also classifies the NAT's behaviour with STUN (RFC 8489, RFC 5780)
    and tells whether the gateway's public address is the one the Internet sees (RV(double_nat),
    RV(reachable)). Without it no third party is contacted.
author:
  - portmap.natpmp maintainers (@portmap)
extends_documentation_fragment:
  - portmap.natpmp.common
  - portmap.natpmp.common.ATTRIBUTES
attributes:
  check_mode:
    support: full
    details:
      - The module changes nothing; it runs the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - It reads only; every run reports no change.
options:
  stun_server:
    description:
      - A STUN server, C(host:port) (port 3478 when left out), to classify the NAT with. The
        result tells the mapping and filtering behaviour of RFC 5780 when the server supports it (it
        needs two addresses), the classic name, and the address and port the server saw.
      - The first Binding request waits up to O(timeout); each later test waits 0.8 s with
        retransmissions, so a whole classification takes under 2 s with a server that answers.
      - By default no STUN server is contacted.
    type: str
"""

EXAMPLES = r"""
- name: Read the gateway's public address and this host's mappings
  portmap.natpmp.natpmp_info:
  register: nat

- name: Show them
  ansible.builtin.debug:
    msg: "{{ nat.public_address }}: {{ nat.mappings | map(attribute='external_port') | list }}"

- name: Classify the NAT with a STUN server, and warn when the mapping cannot be reached
  portmap.natpmp.natpmp_info:
    stun_server: stun.example.net:3478
  register: nat

- name: Fail when a second NAT is upstream
  ansible.builtin.assert:
    that: not nat.double_nat
    fail_msg: "{{ nat.public_address }} is not what the Internet sees ({{ nat.nat.address }})"

- name: Ask a given gateway, with a short deadline
  portmap.natpmp.natpmp_info:
    gateway: 192.168.1.1
    timeout: 1
"""

RETURN = r"""
gateway:
  description: The gateway's address.
  returned: always
  type: str
  sample: 192.168.1.1
gateway_found_in:
  description: Where the gateway's address came from.
  returned: always
  type: str
  sample: /proc/net/route
answers:
  description: Whether the gateway answered in either protocol.
  returned: always
  type: bool
  sample: true
method:
  description:
    - The protocol a change would use (with O(method=auto), the first the gateway speaks of
      V(pcp), V(natpmp) and V(upnp)), or null when the gateway did not answer.
  returned: always
  type: str
  sample: pcp
speaks:
  description: What the gateway answered, per protocol.
  returned: always
  type: dict
  contains:
    pcp:
      description: True when it answered PCP's ANNOUNCE; the error text when it did not; null when not asked.
      type: raw
      sample: true
    natpmp:
      description: True when it answered NAT-PMP's public address request; the error text when it did not; null when not asked.
      type: raw
      sample: true
    upnp:
      description: True when an IGD on its address answered the search and its actions; the error text when not; null when not asked.
      type: raw
      sample: false
gateway_table:
  description:
    - The gateway's own table, read over UPnP IGD where the gateway speaks it (whatever O(method) chose
      for mappings); null when the gateway did not answer.
  returned: always
  type: dict
  contains:
    listed:
      description: Whether the table was read (false when no protocol the gateway speaks can list; NAT-PMP and PCP cannot).
      type: bool
      sample: true
    why:
      description: Why it was not read, or an empty string.
      type: str
      sample: ""
    cut:
      description: True when the table has more than was read (1024 entries, or 10 s).
      type: bool
      sample: false
    mappings:
      description: The gateway's mappings, every host's.
      type: list
      elements: dict
      sample: [{"protocol": "tcp", "external_port": 8080, "internal_client": "192.168.1.20", "internal_port": 8080,
                "description": "portmap.natpmp web1", "lease_left": 3540, "enabled": true, "remote_host": "",
                "this_host": true}]
upnp_service:
  description:
    - Under UPnP IGD, the WAN connection service in use and why it was chosen; null under PCP and NAT-PMP, and
      when no IGD was found.
  returned: always
  type: dict
  contains:
    description_url:
      description: The IGD's root description.
      type: str
      sample: http://192.168.1.1:5000/rootDesc.xml
    device_type:
      description: The IGD's device type.
      type: str
      sample: urn:schemas-upnp-org:device:InternetGatewayDevice:2
    service_type:
      description: The service's type, in which it is spoken to (the SOAPAction header and the body's namespace).
      type: str
      sample: urn:schemas-upnp-org:service:WANIPConnection:2
    control_url:
      description: Where its SOAP actions are sent.
      type: str
      sample: http://192.168.1.1:5000/ctl/IPConn
    version:
      description: The service's version.
      type: int
      sample: 2
    why:
      description:
        - "Why this service: V(connected, with the public address ...), V(connected, without a public address ...),
          V(none is connected; the first service found) or V(kept from an earlier run (no discovery)) (the ledger's,
          used without discovery); with how many other services were ranked."
      type: str
      sample: "connected, with the public address 203.0.113.7"
    candidates:
      description:
        - Every service discovery ranked, in the order asked; empty when the ledger's was used. Each has
          C(description_url), C(service_type), C(control_url), C(status) (GetStatusInfo's connection status, or
          why it is unknown), C(external_address) (asked of connected services only) and C(rank) (1 connected
          with a public address, 2 connected, 3 any).
      type: list
      elements: dict
      sample: [{"description_url": "http://192.168.1.1:2828/gateway_description.xml",
                "service_type": "urn:schemas-upnp-org:service:WANIPConnection:1",
                "control_url": "http://192.168.1.1:2828/upnp/control/wanipconn-1", "status": "Disconnected",
                "external_address": "", "rank": 3}]
public_address:
  description:
    - The gateway's public IPv4 address (NAT-PMP tells it; over PCP only a mapping does, so
      a PCP-only gateway's is the one the ledger recorded, or null); null when it did not answer.
  returned: always
  type: str
  sample: 203.0.113.7
epoch:
  description: The gateway's epoch (seconds since its mapping table was last reset); null when it did not answer.
  returned: always
  type: int
  sample: 86012
gateway_rebooted:
  description: Whether the gateway lost its mappings since the ledger last heard from it.
  returned: always
  type: bool
  sample: false
reachable:
  description:
    - V(true) only when STUN (O(stun_server)) saw the gateway's public address; V(false) when that
      address is in a private, shared (100.64.0.0/10, RFC 6598) or other special-purpose range, or
      STUN saw another; null when nothing tells.
  returned: always
  type: bool
  sample: true
double_nat:
  description:
    - Whether another NAT sits upstream of the gateway; V(true) when its public address is in a
      special-purpose range or differs from the one STUN saw, V(false) when STUN saw the same, null
      when no gateway address is known or nothing tells.
  returned: always
  type: bool
  sample: false
nat:
  description: What STUN found, with O(stun_server); null without it.
  returned: always
  type: dict
  contains:
    server:
      description: The STUN server asked, as C(address:port).
      type: str
      sample: 203.0.113.1:3478
    type:
      description:
        - The classic name, V(Open Internet), V(Full-cone NAT), V(Restricted-cone NAT), V(Port Restricted-cone NAT),
          V(Symmetric NAT), V(Symmetric UDP Firewall) or V(Blocked) (no answer); null when a behaviour is unknown
          (a server without RFC 5780).
      type: str
      sample: Port Restricted-cone NAT
    mapping:
      description:
        - RFC 5780 mapping behaviour, V(endpoint-independent), V(address-dependent) or V(address-and-port-dependent);
          null when unknown.
      type: str
      sample: endpoint-independent
    filtering:
      description: RFC 5780 filtering behaviour, with the same values; null when unknown.
      type: str
      sample: address-and-port-dependent
    address:
      description: The address the STUN server saw this host's requests come from; null when blocked.
      type: str
      sample: 198.51.100.20
    port:
      description: The port it saw; null when blocked.
      type: int
      sample: 40012
    local_address:
      description: The local address the requests were sent from.
      type: str
      sample: 192.168.1.10
    local_port:
      description: The local port the requests were sent from.
      type: int
      sample: 40012
    behind_nat:
      description: Whether the server saw another address or port than the local ones.
      type: bool
      sample: true
    rfc5780:
      description: Whether the server supports RFC 5780 behaviour discovery (it sent OTHER-ADDRESS).
      type: bool
      sample: true
    elapsed:
      description: How long the classification took, in seconds.
      type: float
      sample: 1.62
error:
  description: Why the gateway did not answer; null when it did.
  returned: always
  type: str
  sample: null
mappings:
  description: The mappings the host's ledger records, on every gateway.
  returned: always
  type: list
  elements: dict
  contains:
    gateway:
      description: The gateway holding the mapping.
      type: str
      sample: 192.168.1.1
    protocol:
      description: V(tcp) or V(udp).
      type: str
      sample: tcp
    internal_port:
      description: The port on this host.
      type: int
      sample: 8080
    external_port:
      description: The public port granted.
      type: int
      sample: 8080
    lifetime:
      description: The lifetime granted, in seconds.
      type: int
      sample: 7200
    method:
      description: The protocol the mapping was made with.
      type: str
      sample: natpmp
    public_address:
      description: The public address the gateway reported when the mapping was granted.
      type: str
      sample: 203.0.113.7
    granted_at:
      description: When it was granted, in seconds since the Unix epoch.
      type: float
      sample: 1795000000.5
    expires_at:
      description: When it lapses unless renewed, in seconds since the Unix epoch.
      type: float
      sample: 1795007200.5
    expires:
      description: RV(mappings[].expires_at) in ISO 8601, UTC; null for a permanent lease.
      type: str
      sample: "2026-11-22T16:00:00+00:00"
    time_left:
      description: Seconds until it lapses (0 when expired, and for a permanent lease).
      type: float
      sample: 5320.2
    expired:
      description: Whether it has lapsed (never for a permanent lease).
      type: bool
      sample: false
    permanent:
      description: UPnP IGD only - a permanent lease (lifetime 0), kept until deleted.
      type: bool
      sample: false
    internal_client:
      description: UPnP IGD only - the address of this host the mapping points to; empty otherwise.
      type: str
      sample: 192.168.1.20
    description:
      description: UPnP IGD only - the mapping's description on the gateway; empty otherwise.
      type: str
      sample: portmap.natpmp web1
    last_renewal:
      description: The last request for this mapping, with its time, success and error.
      type: dict
      sample: {"time": 1795000000.5, "ok": true, "error": ""}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.portmap.natpmp.plugins.module_utils.common import (
    COMMON_ARGUMENT_SPEC,
    execute,
    open_ledger_and_client,
)
from ansible_collections.portmap.natpmp.plugins.module_utils.portmap.manage import Manager


def main() -> None:
    module = AnsibleModule(argument_spec=dict(COMMON_ARGUMENT_SPEC, stun_server=dict(type="str")), supports_check_mode=True)

    def work():
        ledger, client = open_ledger_and_client(module, create_folder=False)
        return dict(Manager(ledger, client).info(stun_server=module.params["stun_server"]), changed=False)

    execute(module, work)


if __name__ == "__main__":
    main()
