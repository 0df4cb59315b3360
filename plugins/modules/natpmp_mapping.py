#!/usr/bin/python
# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: natpmp_mapping
short_description: Ensure a port mapping on a PCP, NAT-PMP or UPnP IGD gateway exists or is gone
version_added: 0.2.0
description:
  - Asks the host's NAT gateway, with PCP (RFC 6887), NAT-PMP (RFC 6886) or UPnP IGD, to forward an
    external port to a port on this host for a lifetime, or to remove that forwarding.
  - NAT-PMP and PCP cannot list mappings, so the module records what it mapped in a ledger on
    the host (O(ledger_path)), with each PCP mapping's nonce, which renewals and deletes
    reuse; O(state=absent) and O(exclusive) act on what the ledger records.
  - UPnP IGD can read its table, so there a mapping that is gone from the gateway (deleted on the
    router's pages, lost in a restart) is made again and reported as a change, and O(state=absent)
    also removes a mapping of this host that the ledger does not record (matched by protocol,
    external port and this host's address; never another host's).
  - A UPnP IGD that takes permanent leases only (error 725 OnlyPermanentLeasesSupported, or 402
    InvalidArgs to a lease above 0, as devices in the field answer) is asked once more with lease 0;
    under IGDv1 the mapping is returned with RV(mappings[].lifetime=0) and
    RV(mappings[].permanent=true), the task warns that it stays until deleted, and the renewal job
    checks at every run that it is still there. When lease 0 is refused too, the error names both answers.
  - Under UPnP IGD the WAN connection services named as TR-064 names them
    (C(urn:dslforum-org:service:WANIPConnection:1), C(urn:dslforum-org:service:WANPPPConnection:1)) are
    found and spoken to like the UPnP Forum's, each in its own service type; of several in one IGD,
    the first one connected with a public address is used
    (RV(portmap.natpmp.natpmp_info#module:upnp_service) says which and why).
  - A mapping made with one protocol and found speaking the other at a later run (with
    O(method=auto)) is deleted with its own protocol and made again with the new one;
    that run reports a change.
  - A mapping has a lifetime. Running the module again renews it (the gateway's lease is
    refreshed) and reports no change when the gateway granted the same external port to a
    mapping that was recorded, not expired and not lost in a gateway reboot. Use the
    P(portmap.natpmp.renewal#role) role to keep mappings alive between runs.
  - The external port and lifetime returned are what the gateway granted, which may differ
    from what was asked.
  - A public address in a private, shared (100.64.0.0/10, carrier-grade NAT) or other special-purpose
    range means another NAT upstream. The mapping is still made; the task warns that it is not
    reachable from the Internet, and returns RV(reachable=false).
author:
  - portmap.natpmp maintainers (@portmap)
extends_documentation_fragment:
  - portmap.natpmp.common
  - portmap.natpmp.common.ATTRIBUTES
attributes:
  check_mode:
    support: full
    details:
      - Sends only read-only requests (NAT-PMP's public address request, PCP's ANNOUNCE, UPnP's
        GetStatusInfo, GetExternalIPAddress and GetSpecificPortMappingEntry), whose epoch or
        uptime reveals a gateway reboot, and predicts the rest from the ledger (and, under UPnP
        IGD, from the gateway's table).
  diff_mode:
    support: full
    details:
      - The before and after lists of this host's mappings on the gateway, as the ledger records them.
  idempotent:
    support: full
    details:
      - The second run renews the mappings' leases on the gateway and in the ledger, and reports no
        change unless the gateway lost its mappings, a mapping expired, or another external port was granted.
options:
  internal_port:
    description:
      - The port on this host, from 1 to 65535.
      - Exactly one of O(internal_port) and O(mappings) is required.
    type: int
  external_port:
    description:
      - The public port to suggest to the gateway, from 0 to 65535; C(0) lets the gateway choose.
      - The gateway may grant another port; see O(strict_port).
      - Changing it moves the mapping; nothing is left on the old port (NAT-PMP and PCP delete the
        mapping first and ask anew; UPnP IGD makes the new one, then deletes the old one).
      - Defaults to O(internal_port).
    type: int
  protocol:
    description:
      - The transport protocol to map; V(both) maps TCP and UDP.
    type: str
    choices: [tcp, udp, both]
    default: tcp
  lifetime:
    description:
      - Requested lifetime of the mapping, in seconds, from 1 to 4294967295.
      - The gateway may grant a shorter one. RFC 6886 recommends the default of two hours.
    type: int
    default: 7200
  state:
    description:
      - V(present) creates or renews the mappings; V(absent) deletes the mappings the ledger
        records for these ports and protocols and drops them from the ledger (under UPnP IGD, also
        this host's mapping of the external port that the ledger does not record).
    type: str
    choices: [present, absent]
    default: present
  strict_port:
    description:
      - Fail when the gateway grants another external port than the one suggested (not
        applied when O(external_port=0)). The mapping granted on the other port is deleted again.
      - A mapping this host already had keeps its port, on the gateway and in the ledger. Under
        UPnP IGD only the port suggested is asked for, and the error names the host that holds it.
      - When false, the other port is accepted and returned.
    type: bool
    default: false
  min_lifetime:
    description:
      - Fail when the gateway grants a lifetime shorter than this many seconds (some gateways cap
        leases, for example at 60 s). The mappings this task made are deleted again, so nothing is
        left that nobody would renew in time; mappings that existed before are kept.
      - V(0) accepts any lifetime. The P(portmap.natpmp.renewal#role) role sets it to 120 with cron.
    type: int
    default: 0
  mappings:
    description:
      - Several mappings in one task; mutually exclusive with O(internal_port).
    type: list
    elements: dict
    suboptions:
      internal_port:
        description: The port on this host, from 1 to 65535.
        type: int
        required: true
      external_port:
        description: The public port to suggest; C(0) lets the gateway choose; defaults to O(mappings[].internal_port).
        type: int
      protocol:
        description:
          - The transport protocol; V(both) maps TCP and UDP on one external port (UDP asks for the
            port TCP was granted; when the gateway grants another, the two are moved onto one port,
            and the task fails, keeping both, when the gateway will not give them one).
        type: str
        choices: [tcp, udp, both]
        default: tcp
      lifetime:
        description: Requested lifetime in seconds, from 1 to 4294967295.
        type: int
        default: 7200
  exclusive:
    description:
      - With O(mappings) and O(state=present), delete the mappings that the ledger records on this
        gateway and that are not in O(mappings).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Forward TCP port 8080 of the gateway to this host for two hours
  portmap.natpmp.natpmp_mapping:
    internal_port: 8080

- name: Forward a game server's ports, TCP and UDP, letting the gateway choose the public port
  portmap.natpmp.natpmp_mapping:
    internal_port: 27015
    external_port: 0
    protocol: both
    lifetime: 3600
  register: game

- name: Show the public endpoint
  ansible.builtin.debug:
    msg: "{{ game.public_address }}:{{ game.mappings[0].external_port }}"

- name: Declare every mapping of this host on a given gateway, removing the others
  portmap.natpmp.natpmp_mapping:
    gateway: 192.168.1.1
    mappings:
      - internal_port: 22
        external_port: 2222
      - internal_port: 51820
        protocol: udp
    exclusive: true

- name: Remove the mapping
  portmap.natpmp.natpmp_mapping:
    internal_port: 8080
    state: absent
"""

RETURN = r"""
gateway:
  description: The gateway's address.
  returned: always
  type: str
  sample: 192.168.1.1
public_address:
  description:
    - The gateway's public IPv4 address, as the gateway said it in this run; null when it did not
      (O(state=absent), a gateway that did not answer, PCP in check mode). What the ledger recorded
      is in RV(recorded.public_address).
    - Over PCP it is the address the gateway assigned in its MAP replies.
  returned: always
  type: str
  sample: 203.0.113.7
epoch:
  description:
    - The gateway's epoch (seconds since its mapping table was last reset), from its reply in this
      run; null when it did not answer.
  returned: always
  type: int
  sample: 86012
recorded:
  description: What the ledger knew of the gateway before this run, marked as such (not said by the gateway now).
  returned: always
  type: dict
  contains:
    public_address:
      description: The public address recorded with this host's mappings on the gateway, or null.
      type: str
      sample: 203.0.113.7
    epoch:
      description: The last epoch recorded for the gateway before this run, or null (a ledger with no mapping on it).
      type: int
      sample: 86000
gateway_rebooted:
  description: Whether the gateway lost its mappings (rebooted) since the ledger last heard from it.
  returned: always
  type: bool
  sample: false
method:
  description: The protocol spoken with the gateway, V(pcp), V(natpmp) or V(upnp) (with O(method=auto), the one chosen).
  returned: always
  type: str
  sample: pcp
mappings:
  description:
    - The mappings of O(state=present), as granted. In check mode, the prediction.
  returned: always
  type: list
  elements: dict
  contains:
    protocol:
      description: V(tcp) or V(udp).
      type: str
      sample: tcp
    internal_port:
      description: The port on this host.
      type: int
      sample: 8080
    external_port:
      description: The public port the gateway granted (in check mode, the one expected).
      type: int
      sample: 8080
    lifetime:
      description: The lifetime the gateway granted, in seconds (V(0) for a permanent UPnP lease).
      type: int
      sample: 7200
    permanent:
      description: UPnP IGD only - the gateway takes permanent leases only (725, or 402 to a lease); the mapping stays until deleted.
      type: bool
      sample: false
    internal_client:
      description: UPnP IGD only - the address of this host the mapping points to; empty otherwise. Not in check mode.
      type: str
      sample: 192.168.1.20
    description:
      description: UPnP IGD only - the mapping's description on the gateway; empty otherwise. Not in check mode.
      type: str
      sample: portmap.natpmp web1
    granted_at:
      description: When the gateway granted it, in seconds since the Unix epoch. Not in check mode.
      type: float
      sample: 1795000000.5
    expires_at:
      description: When the mapping lapses unless renewed, in seconds since the Unix epoch. Not in check mode.
      type: float
      sample: 1795007200.5
    expires:
      description: RV(mappings[].expires_at) in ISO 8601, UTC. Not in check mode.
      type: str
      sample: "2026-11-22T16:00:00+00:00"
    changed:
      description: Whether this mapping changed.
      type: bool
      sample: true
    predicted:
      description: True in check mode, where nothing was requested from the gateway.
      type: bool
      sample: false
reachable:
  description:
    - V(false) when the gateway's public address is in a private, shared (100.64.0.0/10, RFC 6598)
      or other special-purpose range (a second NAT upstream, such as carrier-grade NAT). The mapping
      is made but cannot be reached from the Internet, and the task warns. Otherwise null (only
      P(portmap.natpmp.natpmp_info#module) with a STUN server can confirm it).
  returned: always
  type: bool
  sample: null
double_nat:
  description: V(true) when the public address is in such a range; otherwise null.
  returned: always
  type: bool
  sample: null
removed:
  description:
    - The mappings deleted (with O(state=absent), or by O(exclusive)).
    - One that the ledger did not record (UPnP IGD) has C(recorded=false).
  returned: always
  type: list
  elements: dict
  sample: [{"protocol": "tcp", "internal_port": 8080, "external_port": 8080, "lifetime": 7200}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.portmap.natpmp.plugins.module_utils.common import (
    COMMON_ARGUMENT_SPEC,
    execute,
    open_ledger_and_client,
)
from ansible_collections.portmap.natpmp.plugins.module_utils.portmap.errors import InputError
from ansible_collections.portmap.natpmp.plugins.module_utils.portmap.manage import (
    PROTOCOL_CHOICES,
    Manager,
    normalize,
)


def main() -> None:
    argument_spec = dict(
        internal_port=dict(type="int"),
        external_port=dict(type="int"),
        protocol=dict(type="str", choices=list(PROTOCOL_CHOICES), default="tcp"),
        lifetime=dict(type="int", default=7200),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        strict_port=dict(type="bool", default=False),
        min_lifetime=dict(type="int", default=0),
        mappings=dict(
            type="list",
            elements="dict",
            options=dict(
                internal_port=dict(type="int", required=True),
                external_port=dict(type="int"),
                protocol=dict(type="str", choices=list(PROTOCOL_CHOICES), default="tcp"),
                lifetime=dict(type="int", default=7200),
            ),
        ),
        exclusive=dict(type="bool", default=False),
    )
    argument_spec.update(COMMON_ARGUMENT_SPEC)
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("internal_port", "mappings")],
        required_one_of=[("internal_port", "mappings")],
        supports_check_mode=True,
    )
    params = module.params

    def work():
        if params["exclusive"] and not params["mappings"]:
            raise InputError("exclusive needs the list form: give the mappings option, not internal_port")
        if params["exclusive"] and params["state"] == "absent":
            raise InputError("exclusive applies only to state=present")
        if params["mappings"] is not None:
            desired = normalize(params["mappings"], lambda i, name: f"mappings[{i}].{name}")
        else:
            desired = normalize([params], lambda i, name: name)
        ledger, client = open_ledger_and_client(module, create_folder=not module.check_mode)
        manager = Manager(ledger, client, check_mode=module.check_mode)
        if params["state"] == "absent":
            return manager.absent(desired)
        if params["min_lifetime"] < 0:
            raise InputError(f"min_lifetime must be 0 (no minimum) or a number of seconds, got {params['min_lifetime']}")
        return manager.present(desired, exclusive=params["exclusive"], strict_port=params["strict_port"],
                               min_lifetime=params["min_lifetime"])

    execute(module, work)


if __name__ == "__main__":
    main()
