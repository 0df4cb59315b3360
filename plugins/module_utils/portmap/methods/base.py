# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every protocol the client speaks provides: the ``Method`` interface, and the records it returns.

A method is one protocol (PCP, NAT-PMP, UPnP IGD) spoken to one gateway for one client.
Its instance does the operations; its class holds the protocol's facts, which the renewal
job, the watch and the ledger need without a client (the epoch rule, the renewal point,
the announcements and how to read them, what the ledger keeps).  A method talks through
the client that made it (``client``): the gateway, the transport, the per-host lock, the
clocks, and ``client.observe`` for the epochs its answers carry.

A method that cannot do an operation says so (``CannotList`` for ``table``, ``None`` from
``holds``); ``NotImplementedError`` marks what a new method must provide.
"""

from __future__ import annotations

from ..errors import PortmapError
from ..records import asdict, record_class

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: importing typing slows the command's start
    from typing import Any, Callable, Dict, List, Optional, Tuple


class CannotList(PortmapError):
    """The protocol has no way to read the gateway's table."""


@record_class(frozen=True)
class PublicAddress:
    """The gateway's answer to the read-only request (NAT-PMP op 0, PCP ANNOUNCE, UPnP GetExternalIPAddress).

    A PCP ANNOUNCE carries no address: ``address`` is then the one a MAP of this
    client reported, or None.
    """

    gateway: str
    address: Optional[str]
    epoch: int
    method: str
    rebooted: bool

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@record_class(frozen=True)
class Mapping:
    """A mapping as the gateway granted it (lifetime 0: deleted)."""

    gateway: str
    protocol: str
    internal_port: int
    external_port: int
    lifetime: int
    epoch: int
    method: str
    rebooted: bool
    nonce: str = ""  # PCP: the mapping's nonce, hex; reuse it to renew or delete the mapping
    public_address: Optional[str] = None
    permanent: bool = False  # UPnP IGD: the gateway takes permanent leases only (lifetime 0, kept until deleted)
    internal_client: str = ""  # UPnP IGD: the address the mapping points to (this host's)
    description: str = ""  # UPnP IGD: what the gateway's pages show

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@record_class
class Probe:
    """One method's detection request in flight (``detect``) and what became of it."""

    method: str
    send: Callable[[], None]
    receive: Callable[[float], Any]
    fileno: Optional[Callable[[], int]]
    accept: Callable[[bytes, Tuple[str, int]], Any]  # the reply, None to ignore; raises to refuse
    asked: str  # what the request asks, for messages
    answer_wait: Callable[[float], float]  # ``Method.answer_wait``
    sends_limit: Optional[int]  # ``Method.detection_sends``
    lingers_for: Tuple[str, ...]  # ``Method.lingers_for``
    outcome: Optional[str] = None  # None: no answer yet; "answered"; else why it is refused
    reply: Any = None
    seconds: float = 0.0
    sends: int = 0


@record_class(frozen=True)
class Heard:
    """What the watch should do about an announcement: renew the gateway's mappings at ``at``, and why."""

    at: float
    why: str
    force: bool = False


class Method:
    """One protocol, spoken to ``client.gateway`` for ``client``."""

    name = ""  # as the user chooses it (``method``) and the ledger records it
    title = ""  # as messages name it
    asked = ""  # what its detection probe asks, for messages
    detection_sends: Optional[int] = None  # how many sends of the retransmission schedule its probe makes (None: all)
    lingers_for: Tuple[str, ...] = ()  # detection, once this method is chosen: the methods whose answer it still waits for
    keeps: Optional[str] = None  # the field of the ledger's gateway record this method keeps between runs
    by_external_port = False  # the gateway keeps mappings by external port (else by internal port)
    deletes_without_detection = False  # a mapping made with it is deleted with it, without asking what the gateway speaks
    refusal_is_final = False  # a refused detection probe says the gateway does not speak it (detection's error)
    detection_answers_public = False  # detection's answer is the public address request's (no second request)
    epoch_name = "epoch"  # what the gateway's epoch is called in this method
    periodic_check = False  # the watch looks at the gateway every ``check`` seconds (no reliable announcements)
    announcements: Optional[Tuple[int, str, str]] = None  # (port, group, what) the watch listens on
    options: Tuple[str, ...] = ()  # the client's options only this method takes

    def __init__(self, client: Any) -> None:
        self.client = client

    # ------------------------------------------------------------------ the protocol's facts (class level)

    @classmethod
    def answer_wait(cls, budget: float) -> float:
        """Detection: how long after the start an answer of this method waits for the preferred methods' answers."""
        return 0.0

    @classmethod
    def lost_state(cls, previous: Any, current: Any) -> bool:
        """Whether the epoch observation ``current`` shows the gateway lost its mappings since ``previous``."""
        raise NotImplementedError

    @classmethod
    def renewal_spread(cls, lifetime: int, rng: Any) -> float:
        """Seconds after the half of ``lifetime`` that a mapping is renewed (0: at the half)."""
        return 0.0

    @classmethod
    def restore_wait(cls, rng: Any) -> Tuple[float, str]:
        """How long after an announced restart the mappings are restored, and the rule that says so."""
        return 0.0, ""

    @classmethod
    def decode_announcement(cls, data: bytes, source: str) -> Optional[Any]:
        """The announcement in ``data`` (an ``announce.Announcement``), or None when it is not this method's."""
        return None

    @classmethod
    def heard(cls, announcement: Any, view: Any) -> Optional[Heard]:
        """What the watch does about ``announcement`` from a gateway whose mappings use this method (``view``:
        ``watch.GatewayView``); None: nothing."""
        return None

    @classmethod
    def check_kept(cls, kept: Any) -> None:
        """Raise ValueError when ``kept`` (the ledger's field ``keeps``) is not what this method writes."""

    @classmethod
    def usable_beside(cls, client: Any) -> bool:
        """Whether the client can speak this method while another is in use (to delete what it made)."""
        return True

    # ------------------------------------------------------------------ detection

    def probe(self, settle: bool) -> Tuple[Probe, List[Any]]:
        """This method's detection request (not sent yet), and what to close after (``settle``: the
        detection hears every method out, so nothing kept from an earlier run stands in for an answer)."""
        raise NotImplementedError

    def _probe(self, send: Callable[[], None], receive: Callable[[float], Any], fileno: Optional[Callable[[], int]],
               accept: Callable[[bytes, Tuple[str, int]], Any], outcome: Optional[str] = None) -> Probe:
        cls = type(self)
        return Probe(self.name, send, receive, fileno, accept, cls.asked, cls.answer_wait, cls.detection_sends,
                     cls.lingers_for, outcome=outcome)

    def detected(self, reply: Any) -> None:
        """Detection chose this method with ``reply``: take what it tells (epoch, address)."""

    def noticed(self, reply: Any) -> None:
        """Detection heard ``reply`` from this method, another one being chosen: take what it tells."""

    # ------------------------------------------------------------------ between runs

    def kept(self) -> Optional[Dict[str, Any]]:
        """What the ledger keeps for this method between runs (``keeps``), or None."""
        return None

    def resume(self, kept: Optional[Dict[str, Any]]) -> None:
        """What an earlier run kept (``kept()``)."""

    def choice(self) -> Optional[Dict[str, Any]]:
        """What was chosen among the gateway's services and why (natpmp_info), or None."""
        return None

    # ------------------------------------------------------------------ operations

    def public_address(self) -> PublicAddress:
        raise NotImplementedError

    def map(self, protocol: str, internal_port: int, external_port: int, lifetime: int, nonce: str,
            made_with: Optional[str], exact: bool) -> Mapping:
        """Create or renew a mapping (``external_port`` a suggestion, exact with ``exact`` where the protocol can ask so)."""
        raise NotImplementedError

    def delete(self, protocol: str, internal_port: int, nonce: str, made_with: Optional[str],
               external_port: Optional[int]) -> Mapping:
        raise NotImplementedError

    def delete_all(self, protocol: str, nonce: str) -> Mapping:
        raise NotImplementedError

    def holds(self, protocol: str, external_port: int, internal_port: int) -> Optional[bool]:
        """Whether the gateway's table has this host's mapping of ``external_port`` to ``internal_port``
        (read-only); None when the protocol cannot tell."""
        return None

    def unrecorded(self, protocol: str, external_port: int) -> Optional[Any]:
        """This host's mapping of ``external_port`` in the gateway's table, or None (also: cannot tell)."""
        return None

    def table(self, limit: int, seconds: float) -> Tuple[List[Any], bool]:
        """The gateway's table (every host's) and whether it was cut; ``CannotList`` where the protocol cannot."""
        raise CannotList(f"{self.title} cannot list the gateway's mappings")

    def own_address(self) -> str:
        """This host's address as the gateway's table shows it; "" when not known."""
        return ""

    def confirm(self) -> None:
        """Read-only: make sure the gateway answers in this method (``probe`` of the client); PortmapError if not."""
        self.public_address()
