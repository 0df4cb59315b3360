# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one reconcile path that the modules (``manage``) and the renewal job (``renew``) share.

- ``enter``: a mapping the gateway granted (or, in check mode, the one predicted) becomes
  the ledger's entry.  This is the only place that builds an entry, so a protocol adds its
  fields here.
- ``port_to_suggest``, ``request``, ``gone``: the step the modules and the renewal job take
  for one mapping: the external port to ask for (the one this host holds, so no second
  mapping is made; the TCP half's for the UDP half of ``protocol: both``), the request, the
  TCP half moved onto the port UDP got when they differ (``one_port``), and whether a
  recorded mapping is gone from the gateway's table where its method can tell.
- ``walk``: go over a list of mappings one request at a time; when a reply shows the
  gateway rebooted during the pass, the mappings handled before are gone again and
  are handled once more, at most ``MAX_RESTARTS`` times.
- ``make_room``, ``superseded``, ``release``: one internal port has one mapping, deleted
  by what names it in its protocol.  A mapping that moves to another external port is
  deleted before it is asked anew (methods that keep mappings by internal port: NAT-PMP,
  PCP) or after the new one is granted (by external port: UPnP IGD), so no old port is left
  forwarding.
- ``Undo``: when the ledger cannot be written after the gateway granted something,
  take back on the gateway what the ledger will not record (a new mapping is deleted
  with its own nonce and protocol; a renewal keeps the old entry), and tell both facts.
"""

from __future__ import annotations

from .methods import registry as methods
from .client import Client, Mapping
from .errors import GatewayTimeout, GatewayUnreachable, PortmapError
from .ledger import Entry, GatewayRecord, LedgerData, Renewal

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar, Union
    T = TypeVar("T")

MAX_RESTARTS = 3  # reboots during one pass that send it back over the mappings handled before


def enter(data: LedgerData, client: Client, protocol: str, internal_port: int, requested_external_port: int,
          requested_lifetime: int, granted: Mapping, public_address: Optional[str], now: float,
          same_port: bool = False) -> Entry:
    """Put what the gateway granted into the ledger (replacing the entry of that mapping)."""
    previous = data.find(client.gateway, protocol, internal_port)
    entry = Entry(
        gateway=client.gateway,
        protocol=protocol,
        internal_port=internal_port,
        external_port=granted.external_port,
        lifetime=granted.lifetime,
        granted_at=now,
        expires_at=now + granted.lifetime,
        requested_external_port=requested_external_port,
        requested_lifetime=requested_lifetime,
        epoch=client.epoch,
        method=granted.method,
        nonce=granted.nonce,  # PCP's; empty for NAT-PMP
        public_address=granted.public_address or public_address or (previous.public_address if previous else ""),
        last_renewal=Renewal(now, True, ""),
        same_port=same_port,
        notified=previous.notified if previous else None,  # what the on-change hook was last told
        internal_client=granted.internal_client,  # UPnP IGD's; empty otherwise
        description=granted.description,
        permanent=granted.permanent,
    )
    data.put(entry)
    return entry


def remember(data: LedgerData, client: Client) -> None:
    """Keep what this run learnt of the client's gateway: the protocol spoken, the last epoch (or
    UPnP uptime) and what the method in use keeps (UPnP IGD: what discovery found), so the next
    run goes straight to it."""
    if not client.answered or client.active is None:
        return
    kept = {}
    field_name = client.active.keeps
    if field_name:
        previous = data.gateways.get(client.gateway)
        found = client.active.kept() or (previous.kept.get(field_name) if previous is not None else None)
        if found is not None:
            kept[field_name] = found
    data.gateways[client.gateway] = GatewayRecord(client.method, client.epoch, kept)


def resume(data: LedgerData, client: Client) -> None:
    """Give the client what an earlier run kept of its gateway (before the first request)."""
    known = data.gateways.get(client.gateway)
    if known is not None:
        client.resume(known.method, known.kept)


def port_to_suggest(entry: Optional[Entry], requested: int, partner: Optional[Entry] = None,
                    strict: bool = False) -> int:
    """The external port to ask for: the TCP half's for the UDP half of ``protocol: both``; else the port
    this host holds (or held before a reboot), renewed and never a second mapping (a gateway reads a
    suggestion of 0 as the internal port), unless another port is now declared or ``strict`` wants
    another; else the one declared."""
    if partner is not None:
        return partner.external_port
    declared = entry is not None and entry.requested_external_port != requested
    if entry is not None and (not declared or not requested) and not (strict and entry.external_port != requested):
        return entry.external_port
    return requested


def gone(client: Client, entry: Entry) -> bool:
    """Whether the gateway's table lacks this recorded mapping, where the method in use can read the
    table (UPnP IGD: deleted on the router's pages, or lost by a gateway whose uptime did not go back)."""
    return entry.method == client.method and \
        client.holds(entry.protocol, entry.external_port, entry.internal_port) is False


def request(client: Client, data: LedgerData, entry: Optional[Entry], held: Optional[Entry], protocol: str,
            internal_port: int, target: int, lifetime: int, partner: Optional[Entry], public_address: Optional[str],
            now: Callable[[], float], exact: bool = False) -> Tuple[Mapping, bool]:
    """Ask for one mapping on ``target``; returns what was granted and whether ``held`` (the ledger's
    ``entry`` while the gateway has it) was deleted first to move it.

    The mapping is renewed with what names it (its nonce, its protocol) unless it was deleted to move.
    ``partner``: the TCP half of ``protocol: both``, done just before; when the UDP half got another
    port, the two are moved onto one port and the TCP half recorded again (``one_port``)."""
    released = make_room(client, held, target)
    granted = client.map(protocol, internal_port, target, lifetime,
                         nonce=entry.nonce if entry is not None and not released else "",
                         made_with=entry.method if entry is not None and not released else None, exact=exact)
    if partner is not None and granted.external_port != partner.external_port:
        first = Mapping(partner.gateway, "tcp", partner.internal_port, partner.external_port, partner.lifetime,
                        partner.epoch.epoch if partner.epoch else 0, partner.method, False, partner.nonce,
                        partner.public_address)
        first, granted = one_port(client, first, granted, lifetime)
        enter(data, client, "tcp", partner.internal_port, partner.requested_external_port, partner.requested_lifetime,
              first, public_address, now(), same_port=True)
    return granted, released


def predicted(client: Client, entry: Optional[Entry], protocol: str, internal_port: int, external_port: int,
              lifetime: int) -> Mapping:
    """What a request would be granted, as check mode predicts it (the port and lifetime asked for)."""
    method = client.method or (entry.method if entry is not None else methods.LEGACY)
    return Mapping(client.gateway, protocol, internal_port, external_port, lifetime,
                   client.epoch.epoch if client.epoch else 0, method, False,
                   nonce=entry.nonce if entry is not None else "")


def one_port(client: Client, first: Mapping, second: Mapping, lifetime: int, tries: int = 3) -> Tuple[Mapping, Mapping]:
    """TCP and UDP of one internal port (``protocol: both``) granted different external ports:
    move one to the other's port (delete, then ask with that port) until both share one.

    Returns the two mappings as the gateway last granted them, equal ports or not (a
    gateway that picks ports itself may never give both one).
    """
    for _attempt in range(tries):
        if first.external_port == second.external_port:
            break
        first = _move(client, first, second.external_port, lifetime)
        if first.external_port == second.external_port:
            break
        second = _move(client, second, first.external_port, lifetime)
    return first, second


def _move(client: Client, mapping: Mapping, external_port: int, lifetime: int) -> Mapping:
    release(client, mapping)
    return client.map(mapping.protocol, mapping.internal_port, external_port, lifetime, made_with=mapping.method)


def split_ports(entries: Sequence[Entry]) -> str:
    """The plain report for a pair that could not get one port (empty when it did)."""
    if len({e.external_port for e in entries}) < 2:
        return ""
    first = entries[0]
    got = ", ".join(f"{e.protocol.upper()} got {e.external_port}" for e in entries)
    return (f"gateway {first.gateway} will not give TCP and UDP internal port {first.internal_port} one external "
            f"port ({got}); both mappings are kept, each on its own port")


def release(client: Client, mapping: Union[Entry, Mapping]) -> None:
    """Delete one mapping of this host by what names it in its protocol: PCP its nonce, NAT-PMP its
    internal port, UPnP IGD its external port (while the gateway shows it as this host's)."""
    by_external_port = mapping.method in methods.NAMES and methods.load(mapping.method).by_external_port
    client.delete(mapping.protocol, mapping.internal_port, mapping.nonce, mapping.method,
                  external_port=mapping.external_port if by_external_port else None)


def _by_external_port(client: Client, held: Entry) -> bool:
    """Whether ``held`` is kept by its external port: made with the method in use, which keeps them so."""
    return held.method == client.method and client.active is not None and client.active.by_external_port


def make_room(client: Client, held: Optional[Entry], external_port: int) -> bool:
    """Before asking for ``held``'s internal port on ``external_port``: whether its mapping was deleted first.

    One internal port has one mapping.  NAT-PMP and PCP gateways keep it by internal port and
    renew it on its old port whatever is suggested, or (miniupnpd) make a second one: to move
    it, it is deleted first and asked anew (with a new nonce).  A method that keeps mappings by
    external port (UPnP IGD) asks for the new one first and deletes the old one after (``superseded``).
    ``held`` is the ledger's entry while the gateway still has it (None: nothing to move).
    """
    if held is None or external_port in (0, held.external_port) or _by_external_port(client, held):
        return False
    release(client, held)
    return True


def superseded(client: Client, held: Optional[Entry], granted: Mapping) -> str:
    """A gateway that keeps mappings by external port granted ``held``'s internal port on another
    external port: the old one is deleted.

    Returns what went wrong ("" when nothing did): the new mapping is granted either way."""
    if held is None or not _by_external_port(client, held) or granted.method != held.method \
            or granted.external_port == held.external_port:
        return ""
    try:
        release(client, held)
    except (GatewayTimeout, GatewayUnreachable):
        raise
    except PortmapError as exc:
        return f"{_what(held)} moved to external port {granted.external_port}; deleting its old port " \
               f"{held.external_port} failed: {exc}"
    return ""


def note_failure(data: LedgerData, key: Tuple[str, str, int], message: str, now: float) -> None:
    """Record a failed request for a mapping the ledger has (nothing to note otherwise)."""
    entry = data.find(*key)
    if entry is not None:
        entry.last_renewal = Renewal(now, False, message)


def walk(items: Sequence[T], handle: Callable[[T], bool], restart: Callable[[List[T]], None]) -> None:
    """``handle`` each item in turn; it returns True when the reply showed a gateway reboot.

    Then the items handled before it are gone from the gateway: ``restart(those)`` is
    told, and they are handled again after it (at most ``MAX_RESTARTS`` times a pass).
    """
    queue, done, restarts = list(items), [], 0  # type: List[T], List[T], int
    while queue:
        item = queue.pop(0)
        if handle(item) and done and restarts < MAX_RESTARTS:
            restarts += 1
            restart(done)
            queue, done = done + queue, []
        done.append(item)


def _what(entry: Entry) -> str:
    return f"{entry.protocol.upper()} internal port {entry.internal_port} on {entry.gateway}"


class Undo:
    """Takes back on the gateway what a ledger write that failed would have recorded.

    Called by ``Ledger.transaction`` with the ledger as it is on disk (``before``) and
    as it would have been (``after``).  ``changed`` then tells whether the gateway is
    still different from before this run.
    """

    def __init__(self, client_for: Callable[[str], Optional[Client]]) -> None:
        self.client_for = client_for
        self.changed = False

    def __call__(self, before: LedgerData, after: LedgerData) -> str:
        account: List[str] = []
        old: Dict[Tuple[str, str, int], Entry] = {e.key: e for e in before.entries}
        new: Dict[Tuple[str, str, int], Entry] = {e.key: e for e in after.entries}
        for key, entry in sorted(new.items()):
            previous = old.get(key)
            made = entry.last_renewal is not None and entry.last_renewal.ok and (
                previous is None or (previous.method, previous.nonce) != (entry.method, entry.nonce))
            if made:
                account.append(self._take_back(entry, replaced=previous is not None))
            elif previous is not None and previous.external_port != entry.external_port:
                self.changed = True
                account.append(f"{_what(entry)} was renewed with external port {entry.external_port}; the ledger "
                               f"still says {previous.external_port}")
        for key, entry in sorted(old.items()):
            if key not in new:
                self.changed = True
                account.append(f"{_what(entry)} was deleted on the gateway, but the ledger still lists it")
        return "; ".join(account)

    def _take_back(self, entry: Entry, replaced: bool) -> str:
        client = self.client_for(entry.gateway)
        if replaced:
            self.changed = True  # the mapping it replaced (made with another protocol) is gone either way
        if client is None:
            self.changed = True
            return f"{_what(entry)} was granted but is not recorded; it lapses in {entry.lifetime} s"
        try:
            release(client, entry)
        except PortmapError as exc:
            self.changed = True
            return (f"{_what(entry)} was granted but is not recorded, and deleting it again failed ({exc}); "
                    f"it lapses in {entry.lifetime} s")
        return f"{_what(entry)} was granted, then deleted again on the gateway"
