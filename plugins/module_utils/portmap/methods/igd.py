# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""UPnP IGD's session with one gateway: discovery, the IGD's control actions, and what a mapping needs of them.

Discovery searches by SSDP (unicast to a known gateway's port 1900, the group only
when no gateway was given) or takes the description URL (``upnp_url``).  Anything on
the LAN can answer a search: only descriptions and control URLs on the gateway's own
address are used.  Every WAN connection service of the IGDs found (an IGD may list
several: one per uplink, or one that is down) is ranked as miniupnpc's
``UPNP_GetValidIGD`` ranks them: connected (GetStatusInfo says Connected or Up) with a
public address (GetExternalIPAddress), then connected, then any; the first of the best
rank is used, and ``choice()`` says which and why.  Other IGDs are heard out only when
no service found is connected.  Every public operation runs within one deadline of
``timeout`` seconds, discovery included when it has not happened yet.

The internal client of a mapping is the local address of the connection that reaches
the gateway (or ``source_address``).  GetStatusInfo's uptime is UPnP's epoch: the session
keeps the last one read; whether it shows a restart is the UPnP method's rule, applied by the
client (``methods/upnp.py``), in one place for every protocol.
"""

from __future__ import annotations

import time

from .. import wire_ssdp, wire_upnp
from ..errors import (GatewayTimeout, MalformedPacket, NoPublicAddress, PortmapError, UpnpActionFailed, UpnpConflict,
                      UpnpFault, UpnpInvalidArgs, UpnpNoSuchEntry, UpnpOnlyPermanentLeases, UpnpProtocolError)
from ..reachability import is_public
from ..records import record_class
from ..transport_upnp import Datagrams, Http, gateway_url, search

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Callable, List, Optional, Tuple
    from ..transport_upnp import StreamFactory

DEFAULT_TIMEOUT = 3.0
NO_PUBLIC_ADDRESS = "the gateway has no public address: is there a second NAT upstream?"
_CONTENT_TYPE = ("Content-Type", 'text/xml; charset="utf-8"')
CONNECTED = ("Connected", "Up")  # GetStatusInfo's words for a connection that is up (miniupnpc takes "Up" too)
CONNECTED_PUBLIC, CONNECTED_ONLY, ANY = 1, 2, 3  # the ranks of a WAN connection service, best first
WHY = {CONNECTED_PUBLIC: "connected, with the public address {address}",
       CONNECTED_ONLY: "connected, without a public address (it reports {address!r})",
       ANY: "none is connected; the first service found"}


@record_class(frozen=True)
class Candidate:
    """A WAN connection service discovery looked at: what it answered and its rank (``CONNECTED_PUBLIC`` best)."""

    description: wire_upnp.Description  # with ``service`` the one looked at
    status: Optional[wire_upnp.StatusInfo]  # None when GetStatusInfo failed (``problem`` says how)
    external_address: str
    rank: int
    problem: str = ""

    def view(self) -> dict:
        return {"description_url": self.description.url, "service_type": self.description.service.service_type,
                "control_url": self.description.service.control_url,
                "status": self.status.status if self.status is not None else f"unknown ({self.problem})",
                "external_address": self.external_address, "rank": self.rank}


@record_class(frozen=True)
class Granted:
    """A mapping as the IGD took it.

    ``lifetime`` is the lease the gateway holds it for: the one asked, or IGDv2's
    cap of 604800 s; 0 with ``permanent`` when the gateway takes permanent leases only.
    """

    protocol: str
    external_port: int
    internal_port: int
    internal_client: str
    lifetime: int
    permanent: bool
    description: str


class IgdSession:
    """Talks to the UPnP IGD of ``gateway`` (an IPv4 address already known).  ``multicast``: the
    gateway was not given but found from the default route, so an SSDP search the gateway does not
    answer by unicast may also go to the multicast group (``_search``)."""

    def __init__(self, gateway: str, *, upnp_url: Optional[str] = None, multicast: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, source_address: Optional[str] = None, uptime: Optional[int] = None,
                 clock: Callable[[], float] = time.monotonic,
                 datagrams_factory: Optional[Callable[[], Datagrams]] = None,
                 stream_factory: Optional[StreamFactory] = None) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.gateway = gateway
        self.upnp_url = upnp_url
        self.multicast = multicast
        self.timeout = timeout
        self.source_address = source_address
        self.description: Optional[wire_upnp.Description] = None
        self.status: Optional[wire_upnp.StatusInfo] = None
        self.uptime = uptime  # the last uptime seen (e.g. from the ledger)
        self.internal_client: Optional[str] = source_address
        self.tried: List[str] = []  # description URLs tried, for error messages
        self.resumed = False  # the IGD is the one kept from an earlier run (``resume``)
        self.candidates: List[Candidate] = []  # the services discovery ranked, in the order asked
        self.chosen: Optional[Candidate] = None
        self._clock = clock
        self._datagrams_factory = datagrams_factory
        self._http = Http(gateway, clock=clock, stream_factory=stream_factory, source_address=source_address)

    # ------------------------------------------------------------------ plumbing

    def resume(self, description_url: str, device_type: str, service_type: str, control_url: str,
               version: int) -> None:
        """Use the IGD an earlier run found (kept in the ledger): no SSDP, no description fetched.

        The control URL must be on the gateway's address, as when it was found; ``resumed``
        tells the caller that a failure may mean the IGD moved (discover it again then).
        """
        self._http.check(control_url)
        self.description = wire_upnp.Description(description_url, device_type,
                                                 wire_upnp.Service(service_type, control_url, version))
        self.resumed = True

    def internal_client_address(self) -> str:
        """This host's address towards the gateway: what its mappings point to."""
        return self._client(self.deadline())

    def deadline(self) -> float:
        return self._clock() + self.timeout

    @property
    def where(self) -> str:
        return self.description.service.control_url if self.description else f"{self.gateway} (UPnP IGD)"

    @property
    def version(self) -> int:
        return self.description.service.version if self.description else 0

    def _call(self, action: wire_upnp.Action, deadline: float, what: str = "") -> dict:
        service = (self.description or self.discover(deadline)).service
        body, soap_action = wire_upnp.encode_action(service.service_type, action)
        status, reason, _headers, answer = self._http.exchange(
            "POST", service.control_url, deadline, body, (_CONTENT_TYPE, ("SOAPAction", soap_action)), action.name)
        if self.internal_client is None and self._http.local_address not in (None, "", "0.0.0.0"):
            self.internal_client = self._http.local_address
        try:
            if status == 500 or status == 200:
                return wire_upnp.decode_response(answer, action.name)
        except UpnpFault as fault:
            raise wire_upnp.fault_error(fault.code, self._context(action, what)) from None
        except MalformedPacket as exc:
            raise MalformedPacket(f"{self._context(action, what)}: {exc}") from None
        raise UpnpProtocolError(f"{self._context(action, what)}: HTTP {status} {reason[:80]}")

    def _context(self, action: wire_upnp.Action, what: str) -> str:
        return f"UPnP IGD {action.name}{what} at {self.where}"

    # ------------------------------------------------------------------ discovery

    def discover(self, deadline: Optional[float] = None) -> wire_upnp.Description:
        """The IGD service to talk to (found once per session): its description and status.

        Every WAN connection service of each IGD found is ranked (module docstring); a
        connected one with a public address ends the ranking.  When the deadline comes in
        the middle, the best service ranked so far is used.
        """
        if self.description is not None:
            return self.description
        deadline = self.deadline() if deadline is None else deadline
        locations = [self.upnp_url] if self.upnp_url else self._search(deadline, first=True)
        problems: List[str] = []
        try:
            for last in (bool(self.upnp_url), True):
                for location in locations:
                    found = self._fetch(location, deadline, problems)
                    if found is not None and self._rank(found, deadline) == CONNECTED_PUBLIC:
                        return self._choose()
                if last or any(c.rank < ANY for c in self.candidates):
                    break
                # No service of the IGDs that answered is connected: hear the others out.
                locations = [loc for loc in self._search(self._clock() + (deadline - self._clock()) / 2, first=False)
                             if loc not in self.tried]
        except GatewayTimeout:
            if not self.candidates:
                raise
        if self.candidates:
            return self._choose()
        detail = "; ".join(problems) or "no other IGD answered the search"
        raise PortmapError(f"no usable UPnP IGD on gateway {self.gateway}: {detail}")

    def _rank(self, found: wire_upnp.Description, deadline: float) -> int:
        """Rank each of ``found``'s services (``candidates``) until one is connected with a public address; the best rank."""
        best = ANY
        for service in found.services or (found.service,):
            looked_at = self.description = wire_upnp.Description(found.url, found.device_type, service, found.services)
            status: Optional[wire_upnp.StatusInfo] = None
            address, rank, problem = "", ANY, ""
            try:
                status = wire_upnp.status_info(self._call(wire_upnp.get_status_info(), deadline))
                if status.status in CONNECTED:
                    rank = CONNECTED_ONLY
                    address = self._call(wire_upnp.get_external_ip_address(), deadline).get("NewExternalIPAddress", "")
                    rank = CONNECTED_PUBLIC if is_public(address) else CONNECTED_ONLY
            except GatewayTimeout:
                raise  # the deadline: ``discover`` takes the best ranked so far
            except PortmapError as exc:  # a fault, a broken answer, a control URL that does not answer
                problem = str(exc)
            finally:
                self.description = None
            self.candidates.append(Candidate(looked_at, status, address[:60], rank, problem))
            best = min(best, rank)
            if rank == CONNECTED_PUBLIC:
                break
        return best

    def _choose(self) -> wire_upnp.Description:
        """The first candidate of the best rank becomes the service in use; its GetStatusInfo is the session's."""
        self.chosen = min(self.candidates, key=lambda candidate: candidate.rank)
        self.description = self.chosen.description
        if self.chosen.status is not None:
            self._observe(self.chosen.status)
        return self.description

    def choice(self) -> Optional[dict]:
        """The service in use and why (for natpmp_info): ``candidates`` are the services ranked, in the order asked."""
        if self.description is None:
            return None
        service = self.description.service
        if self.chosen is None:
            why = "kept from an earlier run (no discovery)" if self.resumed else "the only one"
        else:
            why = WHY[self.chosen.rank].format(address=self.chosen.external_address)
            others = len(self.candidates) - 1
            if others:
                why += f"; {others} other service(s) ranked (1: connected with a public address, 2: connected, 3: any)"
        return {"description_url": self.description.url, "device_type": self.description.device_type,
                "service_type": service.service_type, "control_url": service.control_url, "version": service.version,
                "why": why, "candidates": [candidate.view() for candidate in self.candidates]}

    def _fetch(self, location: str, deadline: float, problems: List[str]) -> Optional[wire_upnp.Description]:
        self.tried.append(location)
        try:
            response = self._http.request("GET", location, deadline, what="description")
            if response.status != 200:
                raise UpnpProtocolError(f"HTTP {response.status} for the description at {location}")
            found = self._on_gateway(wire_upnp.parse_description(response.body, location))
        except GatewayTimeout:
            raise
        except PortmapError as exc:
            problems.append(str(exc))
            return None
        return found

    def _on_gateway(self, found: wire_upnp.Description) -> wire_upnp.Description:
        """``found`` with only the services whose control URL is on the gateway's address (UpnpProtocolError: none)."""
        usable, refused = [], None
        for service in found.services or (found.service,):
            try:
                self._http.check(service.control_url)
            except UpnpProtocolError as exc:
                refused = refused or exc
                continue
            usable.append(service)
        if refused is not None and not usable:
            raise refused
        return wire_upnp.Description(found.url, found.device_type, usable[0], tuple(usable))

    def _search(self, deadline: float, first: bool) -> List[str]:
        """The description URLs the gateway's IGD answered with.  The gateway (the default route's
        router, or the one given) is asked by unicast M-SEARCH to its port 1900; only when it was not
        given (``multicast``) and that got no answer in half the time left, by multicast too."""
        def accept(message: wire_ssdp.SsdpMessage, source: Tuple[str, int]) -> bool:
            if source[0] != self.gateway:
                return False
            try:
                gateway_url(message.location, self.gateway)
            except UpnpProtocolError:
                return False
            return True

        ways: List[Optional[str]] = [self.gateway, None] if self.multicast else [self.gateway]
        answers: List[Tuple[wire_ssdp.SsdpMessage, Tuple[str, int]]] = []
        for index, gateway in enumerate(ways):
            until = deadline if index == len(ways) - 1 else self._clock() + (deadline - self._clock()) / 2
            answers = search(gateway, until, accept=accept, clock=self._clock, datagrams_factory=self._datagrams_factory,
                             source_address=self.source_address, first=first)
            if answers:
                break
        rank = {target: index for index, target in enumerate(wire_ssdp.SEARCH_TARGETS)}
        answers.sort(key=lambda item: rank.get(item[0].target, len(rank)))
        locations: List[str] = []
        for message, _source in answers:
            if message.location not in locations:
                locations.append(message.location)
        if not locations and first:
            how = f"unicast to {self.gateway}:1900" + (", then multicast to 239.255.255.250:1900" if self.multicast else "")
            raise GatewayTimeout(f"no UPnP IGD on gateway {self.gateway} answered the SSDP search ({how}) "
                                 f"within {self.timeout:.3g} s")
        return locations

    # ------------------------------------------------------------------ actions

    def _status(self, deadline: float) -> wire_upnp.StatusInfo:
        return self._observe(wire_upnp.status_info(self._call(wire_upnp.get_status_info(), deadline)))

    def _observe(self, status: wire_upnp.StatusInfo) -> wire_upnp.StatusInfo:
        self.uptime = status.uptime
        self.status = status
        return status

    def status_info(self) -> wire_upnp.StatusInfo:
        """GetStatusInfo (``uptime`` becomes its uptime)."""
        deadline = self.deadline()
        self.discover(deadline)
        return self._status(deadline)

    def external_address(self, deadline: Optional[float] = None) -> str:
        """GetExternalIPAddress; NoPublicAddress when the gateway has none that is public."""
        deadline = self.deadline() if deadline is None else deadline
        values = self._call(wire_upnp.get_external_ip_address(), deadline)
        address = values.get("NewExternalIPAddress", "")
        if not is_public(address):
            raise NoPublicAddress(f"{NO_PUBLIC_ADDRESS} (UPnP IGD at {self.where} reports external address "
                                  f"{address[:60]!r}, not a public IPv4 address)")
        return address

    def specific_entry(self, protocol: str, external_port: int,
                       deadline: Optional[float] = None) -> Optional[wire_upnp.PortMappingEntry]:
        """GetSpecificPortMappingEntry: the gateway's entry for the port, or None."""
        deadline = self.deadline() if deadline is None else deadline
        try:
            values = self._call(wire_upnp.get_specific_port_mapping_entry(protocol, external_port), deadline,
                                f" for {external_port}/{protocol}")
        except UpnpNoSuchEntry:
            return None
        return wire_upnp.specific_entry(values, protocol, external_port)

    def map(self, protocol: str, internal_port: int, external_port: int, lifetime: int, description: str,
            exact: bool = False) -> Granted:
        """AddPortMapping for this host; ``external_port`` is a suggestion unless ``exact``.

        725 OnlyPermanentLeasesSupported, or 402 InvalidArgs to a lease above 0: the mapping
        is asked once more with lease 0, reported permanent (IGDv1; IGDv2 holds lease 0 for
        604800 s); when that is refused too, the error names both answers.  718 on a
        suggested port: AddAnyPortMapping (IGDv2) or the following ports (IGDv1), within the
        deadline.  501 from a gateway without a public address: NoPublicAddress.  An
        AddPortMapping of a port this host already holds replaces that mapping (miniupnpd, as
        the specification has it): a port this host holds for another internal port is never
        asked for (GetSpecificPortMappingEntry first), it counts as held by another host.
        """
        deadline = self.deadline()
        self.discover(deadline)
        port = external_port or internal_port
        client = self._client(deadline)
        other = self._other_mapping(protocol, port, internal_port, client, deadline)
        if other is not None:
            if exact:
                raise PortmapError(f"external port {port}/{protocol} on gateway {self.gateway} (UPnP IGD at "
                                   f"{self.where}) is held by this host's mapping of internal port {other.internal_port}")
            return self._following(protocol, port, internal_port, client, lifetime, description, deadline)
        try:
            return self._add(protocol, port, internal_port, client, lifetime, description, deadline)
        except UpnpConflict as conflict:
            if exact:
                raise self._conflict(conflict, protocol, port, deadline) from None
            if self.version >= 2:
                return self._add(protocol, port, internal_port, client, lifetime, description, deadline, any_port=True)
            for candidate in range(port + 1, 65536):
                try:
                    return self._add(protocol, candidate, internal_port, client, lifetime, description, deadline)
                except UpnpConflict:
                    continue
            raise
        except UpnpActionFailed as failed:
            self._no_public_address(failed, deadline)
            raise

    def _other_mapping(self, protocol: str, port: int, internal_port: int, client: str,
                       deadline: float) -> Optional[wire_upnp.PortMappingEntry]:
        """This host's mapping of ``port`` to another internal port, which an AddPortMapping would replace."""
        held = self.specific_entry(protocol, port, deadline)
        return held if held is not None and held.internal_client == client and held.internal_port != internal_port \
            else None

    def _following(self, protocol: str, port: int, internal_port: int, client: str, lifetime: int, description: str,
                   deadline: float) -> Granted:
        """The first port after ``port`` that nobody holds (or this mapping does), within the deadline."""
        for candidate in range(port + 1, 65536):
            held = self.specific_entry(protocol, candidate, deadline)
            if held is not None and (held.internal_client, held.internal_port) != (client, internal_port):
                continue
            try:
                return self._add(protocol, candidate, internal_port, client, lifetime, description, deadline)
            except UpnpConflict:
                continue
        raise PortmapError(f"no external port from {port + 1} on is free for {protocol} on gateway {self.gateway} "
                           f"(UPnP IGD at {self.where})")

    def _client(self, deadline: float) -> str:
        if self.internal_client is None:
            self._status(deadline)  # any action tells the local address of the connection
        if self.internal_client is None:
            raise PortmapError(f"cannot tell this host's address towards gateway {self.gateway}: pass source_address")
        return self.internal_client

    def _add(self, protocol: str, port: int, internal_port: int, client: str, lifetime: int, description: str,
             deadline: float, any_port: bool = False) -> Granted:
        lease, permanent = lifetime, False
        if self.version >= 2 and lease > wire_upnp.IGDV2_LEASE_CAP:
            lease = wire_upnp.IGDV2_LEASE_CAP  # the gateway would cap it: report what it grants
        what = f" of {port}/{protocol} to {client}:{internal_port}"
        action = wire_upnp.add_port_mapping(protocol, port, internal_port, client, lease, description, any_port)
        try:
            values = self._call(action, deadline, what)
        except (UpnpOnlyPermanentLeases, UpnpInvalidArgs) as refused:
            if lease == 0:
                raise
            # 725 OnlyPermanentLeasesSupported, or 402 InvalidArgs as devices in the field answer a lease they refuse:
            # asked once more with lease 0.  That is permanent under IGDv1; IGDv2 reads it as its cap of 604800 s.
            lease, permanent = (wire_upnp.IGDV2_LEASE_CAP, False) if self.version >= 2 else (0, True)
            action = wire_upnp.add_port_mapping(protocol, port, internal_port, client, 0, description, any_port)
            try:
                values = self._call(action, deadline, what)
            except UpnpFault as again:
                raise wire_upnp.fault_error(again.code, f"UPnP IGD at {self.where} refuses lease {lifetime} "
                                            f"({refused.name}) and lease 0 ({again.name}) for {port}/{protocol}") from None
        granted_port = wire_upnp.reserved_port(values) if any_port else port
        return Granted(protocol, granted_port, internal_port, client, lease, permanent, description)

    def _conflict(self, conflict: UpnpConflict, protocol: str, port: int, deadline: float) -> UpnpConflict:
        try:
            holder = self.specific_entry(protocol, port, deadline)
        except PortmapError:
            holder = None
        who = (f"held by {holder.internal_client}:{holder.internal_port} ({holder.description!r})" if holder
               else "held by another host or another mechanism")
        return UpnpConflict(conflict.code, conflict.name, f"external port {port}/{protocol} on gateway {self.gateway} "
                            f"(UPnP IGD at {self.where}) is {who}")

    def _no_public_address(self, failed: UpnpActionFailed, deadline: float) -> None:
        try:
            self.external_address(deadline)
        except NoPublicAddress as exc:
            raise NoPublicAddress(f"{exc}; {failed}") from None
        except PortmapError:
            return

    def delete(self, protocol: str, external_port: int) -> bool:
        """DeletePortMapping; False when the gateway had no such mapping (714)."""
        deadline = self.deadline()
        try:
            self._call(wire_upnp.delete_port_mapping(protocol, external_port), deadline, f" of {external_port}/{protocol}")
        except UpnpNoSuchEntry:
            return False
        return True

    def list_mappings(self, limit: int = 1024, seconds: Optional[float] = None
                      ) -> Tuple[List[wire_upnp.PortMappingEntry], bool]:
        """The gateway's table (GetListOfPortMappings on IGDv2, else entry by entry) and whether it was cut:
        at most ``limit`` entries, within ``seconds`` (default: the session's timeout)."""
        deadline = self._clock() + (self.timeout if seconds is None else seconds)
        self.discover(deadline)
        if self.version >= 2:
            entries: List[wire_upnp.PortMappingEntry] = []
            try:
                for protocol in ("tcp", "udp"):
                    try:
                        values = self._call(wire_upnp.get_list_of_port_mappings(protocol, count=limit), deadline)
                    except UpnpNoSuchEntry:
                        continue  # 730 PortMappingNotFound: none of this protocol
                    entries.extend(wire_upnp.port_listing(values))
                return entries[:limit], len(entries) > limit
            except UpnpFault:
                pass  # an IGDv2 without the listing: entry by entry
        entries = []
        for index in range(limit):
            try:
                values = self._call(wire_upnp.get_generic_port_mapping_entry(index), deadline)
            except UpnpNoSuchEntry:
                return entries, False
            except GatewayTimeout:
                if entries and self._clock() >= deadline:
                    return entries, True  # out of time: what was read, said to be cut
                raise
            entries.append(wire_upnp.generic_entry(values))
        return entries, True
