# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What NAT-PMP and PCP share: the gateway's port 5351, one exchange loop, announcements on 5350.

A gateway that speaks PCP may not speak NAT-PMP and the other way round; both answer a
version they do not speak with "unsupported version" in a form the other can read (RFC
6887 section 9).  ``Exchange`` runs a request in the protocol in use, or under ``auto``
PCP first and NAT-PMP after it when PCP is refused or gets no answer within
``PCP_SHARE`` of the deadline: both attempts fit in the one deadline.  Every answer's
epoch is observed (``client.observe``) and error results become exceptions.

``DatagramMethod`` is the part of the two methods that is the same: the operations over
``Exchange``, the detection probe, and the reaction to an announcement (the epoch rule).
"""

from __future__ import annotations

from .. import wire_natpmp, wire_pcp
from ..epoch import EpochObservation
from ..errors import GatewayTimeout, MalformedPacket, PortmapError, UnsupportedVersion
from ..records import record_class
from .registry import TITLES
from .base import Heard, Mapping, Method, Probe, PublicAddress  # noqa: F401  (Probe: annotations)

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, List, Optional, Tuple

PCP, NATPMP = wire_pcp.METHOD, wire_natpmp.METHOD
PAIR = (PCP, NATPMP)  # in order of preference
PCP_SHARE = 1 / 3  # of the deadline: PCP's first try under "auto", and how long a NAT-PMP answer waits for PCP's
ANNOUNCEMENTS = (wire_natpmp.CLIENT_PORT, wire_natpmp.ANNOUNCE_GROUP, "NAT-PMP and PCP announcements")
REORDERED = 2.0  # seconds: an announcement one second behind a reply seen this recently crossed it on the way


@record_class(frozen=True)
class VersionRefused:
    """The gateway answered "unsupported version": it speaks at most ``version``."""

    version: int
    epoch: int = 0


def _parse(pending: Any) -> Callable[[bytes], Any]:
    def parse(datagram: bytes) -> Any:
        version = wire_pcp.unsupported_version_answer(datagram)
        if version is not None:
            return VersionRefused(version)
        return pending.match(datagram)

    return parse


class Exchange:
    """The one exchange loop of NAT-PMP and PCP for ``client`` (its transport, lock, attempts and epochs)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def failed(self, method: str) -> bool:
        """Whether ``method`` went unanswered or was refused earlier in this client's life."""
        return any(a["method"] == method and a["outcome"] != "answered" for a in self.client.attempts)

    def candidates(self, made_with: Optional[str]) -> List[str]:
        client = self.client
        if client.requested_method not in PAIR:
            if made_with in PAIR and not self.failed(made_with):
                return [made_with] + [m for m in PAIR if m != made_with]
            if client.method in PAIR:
                return [client.method]
            return list(PAIR)
        return [client.requested_method]

    def run(self, build: Callable[[str], Any], made_with: Optional[str] = None,
            candidates: Optional[List[str]] = None) -> Tuple[Any, bool, str]:
        """Run the request ``build(method)`` makes; under ``auto``, PCP then NAT-PMP within the deadline.
        Returns the reply, whether it showed the gateway lost its mappings, and the method that answered."""
        client = self.client
        transport = client.transport
        candidates = candidates or self.candidates(made_with)
        start = client.clock()
        budget = transport.timeout
        timeouts: List[str] = []
        refused: List[str] = []
        for index, method in enumerate(candidates):
            last = index == len(candidates) - 1
            share = budget - (client.clock() - start) if last else budget * PCP_SHARE
            pending = build(method)
            began = client.clock()
            try:
                with client.lock:
                    reply = transport.exchange(pending.encode, _parse(pending), f"{TITLES[method]} {pending.what}",
                                               timeout=max(share, 1e-3))
            except GatewayTimeout as exc:
                client.attempts.append({"method": method, "outcome": "no answer", "seconds": client.clock() - began})
                timeouts.append(str(exc))
                if last:
                    raise GatewayTimeout("; ".join(timeouts + [f"gateway {transport.where} does not speak {r}"
                                                               for r in refused])) from None
                continue
            if isinstance(reply, VersionRefused):
                client.attempts.append({"method": method, "outcome": f"unsupported version (speaks {reply.version})",
                                        "seconds": client.clock() - began})
                refused.append(f"{TITLES[method]} (it speaks version {reply.version})")
                if last:
                    speaker = client.speaker(method)
                    raise UnsupportedVersion(method, 1, speaker.unsupported,
                                             "".join(f"{t}; " for t in timeouts) + f"gateway {transport.where} "
                                             "does not speak " + " nor ".join(refused))
                continue
            client.attempts.append({"method": method, "outcome": "answered", "seconds": client.clock() - began})
            if client.method is None or not made_with:
                client.use(method)  # a detour to the protocol a mapping was made with does not decide
            lost = client.observe(reply.epoch, client.speaker(method))
            error = pending.error(reply, transport.where)
            if error is not None:
                raise error
            return reply, lost, method
        raise PortmapError("no protocol to ask")  # not reached: ``candidates`` is never empty


class DatagramMethod(Method):
    """NAT-PMP or PCP: requests of a few bytes to the gateway's port 5351 (``Exchange``)."""

    unsupported = ""  # the name of the "unsupported version" result
    deletes_without_detection = True
    refusal_is_final = True  # ICMP port unreachable: nothing listens on 5351
    announcements = ANNOUNCEMENTS
    detection_answers_public = True

    # ------------------------------------------------------------------ the protocol's requests

    def public_request(self) -> Any:
        raise NotImplementedError

    def map_request(self, protocol: str, internal_port: int, external_port: int, lifetime: int,
                    nonce: bytes) -> Any:
        raise NotImplementedError

    def address_of(self, reply: Any) -> Optional[str]:
        """The public address a reply tells, or None."""
        return None

    def nonce_of(self, nonce: bytes) -> str:
        """What the ledger keeps to renew or delete the mapping made with ``nonce`` ("" when nothing)."""
        return ""

    # ------------------------------------------------------------------ detection

    def probe(self, settle: bool) -> Tuple[Probe, List[Any]]:
        transport = self.client.transport
        channel = transport.open_channel()
        pending = self.public_request()
        data = pending.encode(channel.local_address())
        source = (transport.gateway, transport.port)
        method, asked = self.name, self.asked

        def accept(datagram: bytes, sender: Tuple[str, int]) -> Any:
            if sender != source:
                return None
            version = wire_pcp.unsupported_version_answer(datagram)
            if version is not None:
                raise PortmapError(f"does not speak {TITLES[method]} (it answered the {asked}: unsupported version, "
                                   f"it speaks version {version})")
            return pending.match(datagram)

        return self._probe(lambda: channel.send(data), channel.receive, getattr(channel, "fileno", None),
                           accept), [channel]

    def detected(self, reply: Any) -> None:
        self.noticed(reply)
        self.client.observe(reply.epoch, self)

    def noticed(self, reply: Any) -> None:
        address = self.address_of(reply)
        if address is not None:
            self.client.public_address_seen = address

    # ------------------------------------------------------------------ operations

    def _exchange(self, build: Callable[[str], Any], made_with: Optional[str] = None,
                  candidates: Optional[List[str]] = None) -> Tuple[Any, bool, Any]:
        reply, lost, used = self.client.exchange.run(build, made_with, candidates)
        return reply, lost, self.client.speaker(used)

    def public_address(self) -> PublicAddress:
        reply, lost, used = self._exchange(lambda method: self.client.speaker(method).public_request())
        used.noticed(reply)
        return PublicAddress(self.client.gateway, self.client.public_address_seen, reply.epoch, used.name, lost)

    def confirm(self) -> None:
        reply, _lost, used = self._exchange(lambda method: self.client.speaker(method).public_request(),
                                            candidates=[self.name])
        used.noticed(reply)

    def _mapping(self, protocol: str, internal_port: int, external_port: int, lifetime: int, nonce: str,
                 made_with: Optional[str], candidates: Optional[List[str]] = None) -> Mapping:
        client = self.client
        drawn = wire_pcp.nonce_from_hex(nonce) if nonce else client.new_nonce()
        reply, lost, used = self._exchange(
            lambda method: client.speaker(method).map_request(protocol, internal_port, external_port, lifetime, drawn),
            made_with, candidates)
        address = used.address_of(reply)
        if address:
            client.public_address_seen = address
        return Mapping(
            gateway=client.gateway,
            protocol=protocol,
            internal_port=reply.internal_port,
            external_port=reply.external_port if lifetime else 0,
            lifetime=reply.lifetime,
            epoch=reply.epoch,
            method=used.name,
            rebooted=lost,
            nonce=used.nonce_of(drawn),
            public_address=client.public_address_seen,
        )

    def map(self, protocol: str, internal_port: int, external_port: int, lifetime: int, nonce: str,
            made_with: Optional[str], exact: bool) -> Mapping:
        return self._mapping(protocol, internal_port, external_port, lifetime, nonce, None)

    def delete(self, protocol: str, internal_port: int, nonce: str, made_with: Optional[str],
               external_port: Optional[int], only: bool = False) -> Mapping:
        """Lifetime 0 (NAT-PMP: suggested port 0); ``only``: in this method alone, no fallback."""
        return self._mapping(protocol, internal_port, 0, 0, nonce, made_with, candidates=[self.name] if only else None)

    def delete_all(self, protocol: str, nonce: str) -> Mapping:
        return self._mapping(protocol, 0, 0, 0, nonce, None)

    # ------------------------------------------------------------------ announcements

    @classmethod
    def heard(cls, announcement: Any, view: Any) -> Optional[Heard]:
        """An epoch announced: the gateway lost its mappings when the epoch rule of this method says so
        (an announcement sent just before the last reply crossed it: nothing); a new public address
        renews every mapping at once, so the on-change hook hears of it."""
        previous = view.previous_epoch
        now = view.now
        crossed = previous is not None and now - previous.seen_at <= REORDERED \
            and previous.epoch - 1 <= announcement.epoch <= previous.epoch
        name = TITLES[announcement.kind]
        count = len(view.entries)
        if previous is not None and (crossed or not cls.lost_state(previous, EpochObservation(announcement.epoch, now))):
            recorded = {e.public_address for e in view.entries if e.public_address}
            if announcement.public_address and recorded and announcement.public_address not in recorded:
                return Heard(now, f"{name} announcement: public address now {announcement.public_address}; "
                                  f"renewing its {count} mapping(s)", True)
            return None
        wait, rule = max((view.method(m).restore_wait(view.rng) for m in view.methods), key=lambda w: w[0])
        what = f"restoring {count} mapping(s) in {wait:.2f} s ({rule})" if rule else \
            f"restoring {count} mapping(s) now"
        return Heard(now + wait, f"{name} announcement (epoch {announcement.epoch}): the gateway lost its "
                                 f"mappings; {what}")


def decode_quietly(decode: Callable[[], Any]) -> Any:
    """``decode()``, or None when the datagram is not what it reads (an announcement never raises)."""
    try:
        return decode()
    except (MalformedPacket, ValueError, IndexError):
        return None
