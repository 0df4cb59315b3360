# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""UPnP IGD: mappings through the gateway's Internet Gateway Device, over SSDP and SOAP.

The IGD's session (discovery, the control actions) is ``igd.IgdSession``, imported when a
request is made: detection needs only the SSDP search, which is here.  The IGD found is
kept in the ledger (``kept``), so the next run goes straight to SOAP; when it no longer
answers there, it is discovered once more.  GetStatusInfo's uptime is UPnP's epoch.  The
gateway keeps mappings by external port: a mapping is deleted by its external port while
the table shows it as this host's.
"""

from __future__ import annotations

from .. import wire_ssdp
from ..errors import GatewayTimeout, GatewayUnreachable, UpnpProtocolError
from .registry import TITLES
from .base import Heard, Mapping, Method, Probe, PublicAddress
from .natpmp import lost_state as uptime_lost_state

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, Dict, List, Optional, Tuple

NAME = "upnp"
GRACE = 0.25  # seconds after the start: how long an IGD's answer to detection waits for PCP's and NAT-PMP's
NOTIFY_GAP = 5.0  # a NOTIFY without BOOTID checks the gateway at most this often
KEPT = ("description_url", "device_type", "service_type", "control_url", "version")  # the ledger's record of the IGD


class UpnpMethod(Method):
    name = NAME
    title = TITLES[NAME]
    asked = "UPnP IGD search (unicast M-SEARCH to port 1900)"
    detection_sends = 2  # the search's first two sends: an IGD answers at once or not at all
    keeps = NAME
    by_external_port = True
    periodic_check = True  # many home routers send no NOTIFY
    announcements = (wire_ssdp.PORT, wire_ssdp.MULTICAST_ADDRESS, "UPnP IGD NOTIFY")
    detection_answers_public = False  # an SSDP answer tells no address: GetExternalIPAddress does
    epoch_name = "uptime"
    options = ("upnp_url",)

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.session: Optional[Any] = client.options.get("igd")
        self._restart_told = False  # a Mapping told of the restart the uptime showed (one is enough)

    # ------------------------------------------------------------------ the protocol's facts

    @classmethod
    def answer_wait(cls, budget: float) -> float:
        return GRACE

    @classmethod
    def lost_state(cls, previous: Any, current: Any) -> bool:
        return uptime_lost_state(previous, current)  # the uptime goes back, or does not keep up with the clock

    @classmethod
    def chosen_by(cls, options: Dict[str, Any]) -> bool:
        """Under ``auto``: a description URL (or a session) given means this method, with no detection."""
        return bool(options.get("upnp_url") or options.get("igd") is not None)

    @classmethod
    def names_gateway(cls, options: Dict[str, Any]) -> Optional[str]:
        """The gateway a description URL names, when no gateway is given."""
        if not options.get("upnp_url"):
            return None
        from urllib.parse import urlsplit  # pylint: disable=import-outside-toplevel

        return urlsplit(options["upnp_url"]).hostname

    @classmethod
    def check_kept(cls, kept: Any) -> None:
        if not isinstance(kept, dict) or not all(isinstance(kept.get(k), str) for k in ("service_type", "control_url")):
            raise ValueError(f"field {NAME!r} is not an object with 'service_type' and 'control_url'")

    @classmethod
    def resumable(cls, kept: Any, options: Dict[str, Any]) -> bool:
        return bool(kept and kept.get("control_url")) and not cls.chosen_by(options)

    @classmethod
    def usable_beside(cls, client: Any) -> bool:
        answered = client.detection is not None and client.detection.replies.get(NAME) is not None
        return answered or NAME in client.kept or client.options.get("igd") is not None

    @classmethod
    def decode_announcement(cls, data: bytes, source: str) -> Optional[Any]:
        """SSDP NOTIFY to 239.255.255.250:1900 (UPnP Device Architecture 1.1 section 1.2.2)."""
        if data[:6] not in (b"NOTIFY", b"notify"):
            return None
        from ..announce import Announcement  # pylint: disable=import-outside-toplevel

        message = wire_ssdp.decode(data)
        if message is None or message.kind != "notify":
            return None
        return Announcement(NAME, source, boot_id=message.boot_id, nts=message.nts, location=message.location)

    @classmethod
    def heard(cls, announcement: Any, view: Any) -> Optional[Heard]:
        """``ssdp:alive`` with a new BOOTID.UPNP.ORG (or, without one, at most every ``NOTIFY_GAP`` s):
        the gateway's uptime and table are looked at."""
        if announcement.nts not in ("ssdp:alive", "ssdp:update"):
            return None
        now = view.now
        if announcement.boot_id is not None:
            known = view.memo.get("boot_id")
            view.memo["boot_id"] = announcement.boot_id
            if known == announcement.boot_id:
                return None
            why = f"ssdp:alive with BOOTID {announcement.boot_id}" + (f" (was {known})" if known is not None else "")
        elif now - view.last_pass < NOTIFY_GAP:
            return None
        else:
            why = "ssdp:alive"
        return Heard(now, f"{why}: checking the gateway's {len(view.entries)} mapping(s)")

    # ------------------------------------------------------------------ detection

    def probe(self, settle: bool) -> Tuple[Probe, List[Any]]:
        client = self.client
        if NAME in client.kept and not settle:  # the IGD an earlier run found stands in for the search
            return self._probe(lambda: None, lambda _timeout: None, None, lambda _data, _source: None,
                               outcome="answered"), []
        datagrams = self._datagrams()
        gateway = client.gateway
        destination = (gateway, wire_ssdp.PORT)
        searches = [wire_ssdp.encode_msearch(target, host=gateway) for target in wire_ssdp.SEARCH_TARGETS]
        prefixes = (f"http://{gateway}:", f"http://{gateway}/")  # the session checks the URL in full

        def send() -> None:
            for search in searches:
                datagrams.send(search, destination)

        def accept(datagram: bytes, sender: Tuple[str, int]) -> Any:
            if sender[0] != gateway:
                return None
            message = wire_ssdp.decode(datagram)
            if message is None or message.kind != "response" or not (message.location or "").startswith(prefixes):
                return None
            return message

        return self._probe(send, datagrams.receive, getattr(datagrams, "fileno", None), accept), [datagrams]

    def _datagrams(self) -> Any:
        factory = self.client.options.get("datagrams_factory")
        if factory is not None:
            return factory()
        from ..transport_upnp import UdpDatagrams  # pylint: disable=import-outside-toplevel

        return UdpDatagrams(self.client.transport.source_address)

    def detected(self, reply: Any) -> None:
        self.session = self._new_session(reply.location if reply is not None else None, kept=reply is None)

    # ------------------------------------------------------------------ the session

    def _new_session(self, location: Optional[str] = None, kept: bool = True) -> Any:
        """An IGD session: at ``location``, or the kept IGD (no SSDP), or one SSDP will find."""
        client = self.client
        options = client.options
        if options.get("igd") is not None:
            return options["igd"]
        from .igd import IgdSession  # pylint: disable=import-outside-toplevel

        session = IgdSession(client.gateway, upnp_url=location or options.get("upnp_url"),
                             multicast=options.get("multicast", False), timeout=client.transport.timeout,
                             source_address=client.transport.source_address, clock=client.clock,
                             datagrams_factory=options.get("datagrams_factory"),
                             stream_factory=options.get("stream_factory"))
        igd = client.kept.get(NAME)
        if kept and igd and not location:
            session.resume(igd.get("description_url", ""), igd.get("device_type", ""),
                           igd["service_type"], igd["control_url"], int(igd.get("version", 1)))
        return session

    def _igd(self) -> Any:
        if self.session is None:
            detection = self.client.detection
            answer = detection.replies.get(NAME) if detection is not None else None
            self.session = self._new_session(answer.location if answer is not None else None, kept=answer is None)
        return self.session

    def found(self) -> bool:
        return self.session is not None and self.session.description is not None

    def resume(self, kept: Optional[Dict[str, Any]]) -> None:
        if kept and self.session is not None and self.session.description is None and \
                self.client.options.get("igd") is None:
            self.session = self._new_session()

    def _call(self, operation: Callable[[Any], Any]) -> Any:
        """``operation(session)``; when a kept IGD no longer answers there, discover it once more and retry."""
        client = self.client
        with client.lock:
            try:
                return operation(self._igd())
            except (GatewayUnreachable, GatewayTimeout, UpnpProtocolError):
                if not (NAME in client.kept and self.session.resumed and client.options.get("igd") is None):
                    raise
            del client.kept[NAME]  # stale: the IGD moved (a restarted miniupnpd listens on a new port)
            self.session = self._new_session(kept=False)
            return operation(self._igd())

    def kept(self) -> Optional[Dict[str, Any]]:
        if self.session is None or self.session.description is None:
            return None
        found = self.session.description
        return {"description_url": found.url, "device_type": found.device_type,
                "service_type": found.service.service_type, "control_url": found.service.control_url,
                "version": found.service.version}

    def choice(self) -> Optional[Dict[str, Any]]:
        return self.session.choice() if self.session is not None else None

    # ------------------------------------------------------------------ operations

    def public_address(self) -> PublicAddress:
        """GetStatusInfo (its uptime is the epoch) and GetExternalIPAddress."""
        client = self.client

        def ask(igd: Any) -> str:
            if igd.description is None:  # discovery reads GetStatusInfo (to take a connected IGD)
                igd.discover()
                status = igd.status or igd.status_info()
            else:
                status = igd.status_info()
            client.observe(status.uptime, self)
            return igd.external_address()

        client.public_address_seen = self._call(ask)
        return PublicAddress(client.gateway, client.public_address_seen, client.epoch.epoch if client.epoch else 0,
                             NAME, client.rebooted)

    def map(self, protocol: str, internal_port: int, external_port: int, lifetime: int, nonce: str,
            made_with: Optional[str], exact: bool) -> Mapping:
        description = self.client.description
        granted = self._call(lambda igd: igd.map(protocol, internal_port, external_port, lifetime, description,
                                                 exact=exact))
        return self._mapping(protocol, internal_port, granted.external_port, granted.lifetime, granted.permanent,
                             granted.internal_client)

    def delete(self, protocol: str, internal_port: int, nonce: str, made_with: Optional[str],
               external_port: Optional[int], only: bool = False) -> Mapping:
        """DeletePortMapping by external port: ``external_port`` while the table shows it as this host's
        mapping of ``internal_port``, else this host's mappings of ``internal_port`` (never another host's)."""
        def remove(igd: Any) -> None:
            for port in self._ours(igd, protocol, internal_port, external_port):
                igd.delete(protocol, port)

        self._call(remove)
        return self._mapping(protocol, internal_port, 0, 0, False)

    def delete_all(self, protocol: str, nonce: str) -> Mapping:
        def remove(igd: Any) -> None:
            for port in self._ours(igd, protocol, None, None):
                igd.delete(protocol, port)

        self._call(remove)
        return self._mapping(protocol, 0, 0, 0, False)

    def holds(self, protocol: str, external_port: int, internal_port: int) -> Optional[bool]:
        """GetSpecificPortMappingEntry, read-only."""
        def look(igd: Any) -> bool:
            entry = igd.specific_entry(protocol, external_port)
            return entry is not None and entry.internal_port == internal_port and \
                entry.internal_client == igd.internal_client_address()

        return self._call(look)

    def unrecorded(self, protocol: str, external_port: int) -> Optional[Any]:
        def look(igd: Any) -> Optional[Any]:
            entry = igd.specific_entry(protocol, external_port)
            if entry is None or entry.internal_client != igd.internal_client_address():
                return None
            return entry

        return self._call(look)

    def table(self, limit: int, seconds: float) -> Tuple[List[Any], bool]:
        if self.client.active is self:
            return self._call(lambda igd: igd.list_mappings(limit, seconds))
        with self.client.lock:  # beside another method: the IGD the detection's search found, or the kept one
            return self._igd().list_mappings(limit, seconds)

    def own_address(self) -> str:
        return self.session.internal_client_address() if self.session is not None else ""

    def _ours(self, igd: Any, protocol: str, internal_port: Optional[int], external_port: Optional[int]) -> List[int]:
        """External ports of this host's mappings of ``internal_port`` (any with None); of ``external_port``
        only, when given and the gateway's table shows it as this host's mapping (never another host's)."""
        ours = igd.internal_client_address()
        if external_port is not None:
            entry = igd.specific_entry(protocol, external_port)
            mine = entry is not None and entry.internal_client == ours and internal_port in (None, entry.internal_port)
            return [external_port] if mine else []
        if internal_port is not None:
            entry = igd.specific_entry(protocol, internal_port)  # the usual case: the same port outside
            if entry is not None and entry.internal_port == internal_port and entry.internal_client == ours:
                return [internal_port]
        entries, _cut = igd.list_mappings()
        return [e.external_port for e in entries if e.protocol == protocol and e.internal_client == ours
                and internal_port in (None, e.internal_port)]

    def _mapping(self, protocol: str, internal_port: int, external_port: int, lifetime: int,
                 permanent: bool, internal_client: str = "") -> Mapping:
        client = self.client
        igd = self._igd()
        if igd.uptime is not None and (client.epoch is None or client.epoch.epoch != igd.uptime):
            client.observe(igd.uptime, self)  # discovery's GetStatusInfo: the uptime is UPnP's epoch
        seen = client.rebooted  # the client applied the rule to every uptime read (GetStatusInfo)
        # the restart is news to one reply only: the next ones of this run come after it (a second
        # restart shows in the uptime going back again, which GetStatusInfo reads at the next run)
        lost = seen and not self._restart_told
        client.rebooted = seen
        self._restart_told = seen
        return Mapping(client.gateway, protocol, internal_port, external_port, lifetime, igd.uptime or 0, NAME,
                       lost, public_address=client.public_address_seen, permanent=permanent,
                       internal_client=internal_client, description=client.description if lifetime or permanent else "")
