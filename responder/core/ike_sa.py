"""One IKE SA: its state, what was negotiated and authenticated, its Child SAs.

Strategy: an :class:`IkeSa` is the state of one IKE SA and nothing more.  What
is done to it lives elsewhere:

* its messages (Message IDs, windows, retransmission, SK protection, stored
  responses) in its :class:`~responder.core.message_layer.MessageLayer`;
* each exchange, ours or the peer's, in an exchange object
  (:mod:`responder.core.exchanges`), which the message layer holds while our
  request waits for its response and the SA holds while the peer's request
  waits for an answer that was deferred, or for its next round (EAP);
* the moves from message to exchange, and the one boundary where a
  protocol error becomes the RFC's answer, in :mod:`responder.core.dispatch`.

What the SA wants sent and what it reports queue here (:meth:`send`,
:meth:`emit`) until the endpoint collects them.  It never reads a clock and
never draws randomness itself: both come from its :class:`Services`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import attrs

from responder.core.child_sa import ChildSa
from responder.core.config import CHILD_LIFETIME, Config, Dpd, EspProposal, Identity, Lifetime, PeerConfig
from responder.core.enums import ExchangeType, HashAlgorithm
from responder.core.events import Event, IkeSaClosed, PathChanged
from responder.core.interning import Interner
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.keys import IkeSaKeys
from responder.core.message_layer import MessageLayer, Received
from responder.core.messages import Header
from responder.core.path import Outgoing, Path
from responder.core.pool import PoolAllocator
from responder.core.proposals import ChosenProposal
from responder.core.transforms import Encryption, Integrity, Prf

if TYPE_CHECKING:  # the exchanges import this module; it names them only in annotations
    from responder.core.exchanges.base import Exchange
    from responder.core.initiator import InitiatorSettings

__all__ = [
    "NOTHING",
    "REKEYED_GRACE",
    "RETRY_DELAY",
    "IkeSa",
    "IkeSaState",
    "ResponderFactory",
    "Services",
    "without",
]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class IkeSaState(enum.Enum):
    """Where an IKE SA is in its life (RFC 7296 §1.2, §1.4)."""

    INIT_SENT = "init-sent"  #: initiator: IKE_SA_INIT request sent
    INIT_DONE = "init-done"  #: responder: IKE_SA_INIT answered, waiting for IKE_AUTH (half-open)
    AUTH_SENT = "auth-sent"  #: initiator: IKE_AUTH request sent
    ESTABLISHED = "established"  #: authenticated; INFORMATIONAL and CREATE_CHILD_SA allowed
    #: replaced by a new IKE SA that holds its Child SAs (§1.3.2, §2.8); it waits for its Delete
    REKEYED = "rekeyed"
    CLOSED = "closed"  #: gone; every further message is dropped


#: How long the peer has to delete what it should delete after a rekey (the replaced SA, or the
#: loser of a collision, RFC 7296 §2.8.1, §2.8.2) before we delete it ourselves.
REKEYED_GRACE = 30.0
#: After TEMPORARY_FAILURE a rekey is tried again after this long, plus up to as much again at
#: random: RFC 7296 §2.25 "MUST NOT immediately retry ... MAY retry ... over ... several minutes".
RETRY_DELAY = 10.0


#: The empty mapping of every IKE SA with no request deferred or continuing: those mappings are
#: replaced, never changed, so an SA with none holds this one (a dict each was 64 octets per SA
#: held, issue 14); :func:`without` takes a key out.
NOTHING: Mapping[Any, Any] = MappingProxyType({})


def without(mapping: Mapping[K, V], key: K) -> Mapping[K, V]:
    """``mapping`` less ``key`` (``mapping`` itself if it has no ``key``); :data:`NOTHING` once empty."""
    if key not in mapping:
        return mapping
    return {k: v for k, v in mapping.items() if k != key} or NOTHING


#: The CAs of a peer that named none (RFC 7296 §3.7): one empty set for every such SA, not one each
#: (216 octets per SA held, issue 14).
_NO_CAS: frozenset[bytes] = frozenset()

#: Builds the exchange object that answers a request of the peer's (see :mod:`responder.core.dispatch`),
#: or ``None`` when the request is not allowed after all (an extension that was not negotiated).
ResponderFactory: TypeAlias = "Callable[[IkeSa, Received], Exchange | None]"


@attrs.frozen(slots=True)
class Services:
    """What every IKE SA of one endpoint shares, by reference.

    ``responders`` is the legality table: which exchange object answers a
    request of the peer's in which state (:data:`responder.core.dispatch.RESPONDERS`
    unless an embedding program or a test extends it).
    """

    config: Config
    random_bytes: Callable[[int], bytes] = attrs.field(repr=False)
    ke_factory: KeyExchangeFactory = attrs.field(repr=False)
    pools: Mapping[str, PoolAllocator]
    responders: Mapping[tuple[IkeSaState, ExchangeType], ResponderFactory]
    #: How many IKE SAs the endpoint holds (a peer's IKE SA rekey is refused at ``ike_sa_max``).
    sa_count: Callable[[], int] = attrs.field(default=lambda: 0, repr=False)
    #: The one copy of the suites and selectors that many SAs negotiate alike (issue 14).
    intern: Interner = attrs.field(factory=Interner, repr=False)


@attrs.define(eq=False, slots=True)
class Deferral:
    """A request of the peer's whose answer waits for work outside the core."""

    exchange: Exchange
    request: Header
    path: Path


@attrs.define(eq=False, slots=True)
class IkeSa:
    """One IKE SA, either role.  Created by :class:`responder.core.endpoint.Endpoint`."""

    services: Services = attrs.field(repr=False)
    is_original_initiator: bool
    spi_i: bytes
    spi_r: bytes
    path: Path  #: where the last valid message came from: our requests go there (RFC 9329 §6.1)
    created_at: float
    state: IkeSaState = IkeSaState.INIT_SENT
    layer: MessageLayer[Exchange] = attrs.field(init=False, repr=False)
    #: Our SPI of this SA, the one the endpoint finds it by: SPIi as original initiator, else SPIr
    #: (fixed at creation: only the peer's SPI is learnt later).
    local_spi: bytes = attrs.field(init=False)

    # Negotiated in IKE_SA_INIT (RFC 7296 §1.2, §2.14)
    #: The suite, without an SPI (the SA's are :attr:`spis`), shared by the SAs that chose alike.
    proposal: ChosenProposal | None = None
    keys: IkeSaKeys | None = attrs.field(default=None, repr=False)
    nonce_i: bytes = b""
    nonce_r: bytes = b""
    init_request: bytes = attrs.field(default=b"", repr=False)  #: the IKE_SA_INIT request that succeeded
    init_response: bytes = attrs.field(default=b"", repr=False)
    peer_supports_childless: bool = False
    #: The peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4), ``None`` if it sent none.
    peer_signature_hashes: tuple[HashAlgorithm, ...] | None = None
    #: The peer sent a CERTREQ (RFC 7296 §3.7), in IKE_SA_INIT or IKE_AUTH, and the CAs it named.
    peer_certreq: bool = False
    peer_certreq_cas: frozenset[bytes] = _NO_CAS
    nat_detected_local: bool = False
    nat_detected_remote: bool = False

    # Authenticated in IKE_AUTH
    local_id: str = ""
    remote_id: str = ""
    peer_name: str | None = None
    #: The peer's authenticated identity (its IDi, or the responder's IDr in the initiator role).
    peer_identity: Identity | None = None
    peer: PeerConfig | None = attrs.field(default=None, repr=False)  #: the responder role's peer policy
    initial_contact: bool = False  #: the peer's IKE_AUTH carried INITIAL_CONTACT (RFC 7296 §2.4)

    # Lifecycle (RFC 7296 §2.4, §2.8): absolute times, None for none
    established_at: float | None = None
    last_heard: float = 0.0  #: the last message of the peer's that authenticated
    rekey_at: float | None = None  #: soft lifetime (jitter drawn), or a retry after TEMPORARY_FAILURE
    expires_at: float | None = None  #: hard lifetime: we delete the SA
    doomed_at: float | None = None  #: we delete it if the peer has not (REKEYED_GRACE)
    rekeyed_from: bytes | None = None  #: our SPI of the IKE SA this one replaced
    #: Child SAs by our inbound SPI (RFC 7296 §1.4.1: a Delete names the sender's inbound SPIs).
    children: dict[bytes, ChildSa] = attrs.Factory(dict)

    #: The peer's requests accepted whose answers were deferred, by Message ID (:data:`NOTHING`).
    deferred: Mapping[int, Deferral] = NOTHING
    #: The peer's exchanges that take several rounds (IKE_AUTH with EAP, RFC 7296 §2.16), by type.
    continuing: Mapping[ExchangeType, Exchange] = NOTHING
    #: What this SA initiates with (the initiator role only).
    settings: InitiatorSettings | None = None
    #: The IKE SA that took this one's Child SAs after a rekey (RFC 7296 §2.8).
    heir: IkeSa | None = attrs.field(default=None, repr=False)

    # What waits for the endpoint to take it.  Tuples, grown by concatenation: they hold a few items
    # for a moment and nothing for the rest of the SA's life, and the empty tuple is one object for
    # all SAs where an empty list is 56 octets for each (a deque 624; issue 14, measured).
    #: New IKE SAs this one made (an IKE SA rekey, RFC 7296 §1.3.2).
    spawned: tuple[IkeSa, ...] = ()
    #: Other IKE SAs of the endpoint this one changed (their deadlines, their Child SAs), to look at again.
    touched: tuple[IkeSa, ...] = ()
    _outgoing: tuple[Outgoing, ...] = ()
    _events: tuple[Event, ...] = ()

    def __attrs_post_init__(self) -> None:
        self.layer = MessageLayer(self.services.random_bytes)
        self.local_spi = self.spi_i if self.is_original_initiator else self.spi_r

    # ------------------------------------------------------------------ names

    @property
    def spis(self) -> tuple[bytes, bytes]:
        return self.spi_i, self.spi_r

    @property
    def ids(self) -> tuple[bytes, bytes, bytes]:
        """``(local_spi, spi_i, spi_r)``: how every event names this SA."""
        return self.local_spi, self.spi_i, self.spi_r

    @property
    def config(self) -> Config:
        return self.services.config

    # The transforms :attr:`proposal` names, the objects every SA shares (fields of their own were
    # 24 octets per SA held, issue 14).

    @property
    def prf(self) -> Prf | None:
        return None if self.proposal is None else self.proposal.prf_transform()

    @property
    def encryption(self) -> Encryption | None:
        return None if self.proposal is None else self.proposal.encryption_transform()

    @property
    def integrity(self) -> Integrity | None:
        return None if self.proposal is None else self.proposal.integrity_transform()

    def header(self, exchange: ExchangeType, message_id: int, *, is_response: bool) -> Header:
        """A header of this SA, built fresh (RFC 7296 §3.1: version 2.0, our role in the I flag)."""
        return Header(
            spi_i=self.spi_i,
            spi_r=self.spi_r,
            exchange_type=exchange,
            is_initiator=self.is_original_initiator,
            is_response=is_response,
            message_id=message_id,
        )

    # ------------------------------------------------------------------ output

    def send(self, data: bytes, path: Path | None = None) -> None:
        """Queue an IKE message on ``path`` (default: the SA's path)."""
        self._outgoing += (Outgoing(path or self.path, data),)

    def messages_to_send(self) -> list[Outgoing]:
        """Messages queued since the last call, oldest first."""
        out, self._outgoing = self._outgoing, ()
        return list(out)

    def emit(self, event: Event) -> None:
        self._events += (event,)

    def next_event(self) -> Event | None:
        """The oldest event not yet taken, or ``None``."""
        if not self._events:
            return None
        event, self._events = self._events[0], self._events[1:]
        return event

    # ------------------------------------------------------------------ life

    def moved_to(self, path: Path) -> bool:
        """A valid message came on ``path``: our requests go there from now on (RFC 9329 §6.1, A36).

        ``True`` if the path changed.
        """
        if path == self.path:
            return False
        previous, self.path = self.path, path
        self.emit(PathChanged(*self.ids, path, previous))
        return True

    # ------------------------------------------------------------------ policy

    @property
    def ike_lifetime(self) -> Lifetime:
        """When this IKE SA is rekeyed and expires: the peer's policy, or the initiator's settings."""
        if self.settings is not None:
            return self.settings.ike_lifetime
        return self.peer.ike_lifetime if self.peer is not None else Lifetime(0.0, 0.0, 0.0)

    @property
    def dpd(self) -> Dpd:
        """Our liveness checks (RFC 7296 §2.4)."""
        if self.settings is not None:
            return self.settings.dpd
        return self.peer.dpd if self.peer is not None else Dpd()

    def child_policy(self, name: str) -> tuple[tuple[EspProposal, ...], Lifetime]:
        """The ESP proposals and the lifetime of the Child SAs named ``name`` (their child config)."""
        if self.settings is not None:
            child = self.settings.child
            return (child.esp_proposals, child.lifetime) if child is not None else ((), CHILD_LIFETIME)
        config = self.peer.child(name) if self.peer is not None else None
        if config is None and self.peer is not None:
            config = self.peer.children[0]
        if config is None:
            return (), CHILD_LIFETIME
        return config.esp_proposals, config.lifetime

    def forget_auth_state(self) -> None:
        """IKE_AUTH is done (or the SA was made by a rekey): drop what only IKE_AUTH needs.

        RFC 7296 §2.15: AUTH signs the IKE_SA_INIT messages and the nonces, with SK_pi and SK_pr;
        §2.17: the first Child SA, made in IKE_AUTH, takes its KEYMAT with those nonces.  Nothing
        later does: a rekey brings its own nonces and uses SK_d (§2.17, §2.18), a retransmitted
        IKE_AUTH request gets the stored response (§2.1), and the key log takes SK_e and SK_a.  The
        peer's CERTREQ CAs and signature hashes (§3.7, RFC 7427 §4) chose how we authenticated.
        Kept for the SA's life, the nonces, SK_pi, SK_pr and the signature hashes were about 330
        octets of every SA held, the IKE_SA_INIT messages about 0.5 KiB (issue 14, measured).
        """
        self.init_request = self.init_response = self.nonce_i = self.nonce_r = b""
        self.peer_signature_hashes = None
        self.peer_certreq_cas = _NO_CAS
        if self.keys is not None and (self.keys.sk_pi or self.keys.sk_pr):
            self.keys = attrs.evolve(self.keys, sk_pi=b"", sk_pr=b"")

    def jitter(self) -> float:
        """A share in [0, 1), from the SA's randomness, for rekey jitter (RFC 7296 §2.8.1)."""
        return int.from_bytes(self.services.random_bytes(2), "big") / 65536

    def start_lifetime(self, now: float) -> None:
        """The IKE SA is established (or made by a rekey) at ``now``: its lifetime starts."""
        lifetime = self.ike_lifetime
        self.established_at = self.last_heard = now
        self.rekey_at = lifetime.rekey_at(now, self.jitter() if lifetime.rand_time else 0.0)
        self.expires_at = lifetime.expires_at(now)
        timeout = self.dpd.timeout
        self.layer.give_up_after = timeout if timeout > 0 else None

    def start_child_lifetime(self, child: ChildSa, now: float) -> None:
        """``child`` is installed at ``now``: its rekey and expiry times, from its config."""
        _, lifetime = self.child_policy(child.name)
        child.installed_at = now
        child.rekey_at = lifetime.rekey_at(now, self.jitter() if lifetime.rand_time else 0.0)
        child.expires_at = lifetime.expires_at(now)

    def same_principal(self, other: IkeSa) -> bool:
        """Whether ``other``, of the same identity, authenticated through the same peer and method."""
        if self.peer_name != other.peer_name:
            return False
        if self.peer is None or other.peer is None:
            return self.peer is other.peer
        return type(self.peer.auth) is type(other.peer.auth)

    def live_children(self) -> int:
        """Child SAs that count towards ``limits.child_sa_max``."""
        return sum(1 for child in self.children.values() if child.counts_towards_limit)

    def child_by_outbound(self, spi: bytes) -> ChildSa | None:
        """The pair whose outbound SPI (the peer's inbound, what it names in REKEY_SA) is ``spi``."""
        for child in self.children.values():
            if child.outbound_spi == spi:
                return child
        return None

    # ------------------------------------------------------------------ time

    def liveness_due(self) -> float | None:
        """When our next liveness check is due: ``dpd.delay`` after the peer was last heard, while no
        request of ours is out or queued (one that is out checks liveness too)."""
        delay = self.dpd.delay
        if not delay or self.state is not IkeSaState.ESTABLISHED or self.layer.pending or self.layer.queued:
            return None
        return self.last_heard + delay

    def get_timer(self) -> float | None:
        """The next time :func:`responder.core.dispatch.handle_timer` has work for this SA, or ``None``."""
        state = self.state
        if state is IkeSaState.CLOSED:
            return None
        times = [self.layer.get_timer(self.path.transport.is_stream)]
        if state is IkeSaState.INIT_DONE:
            times.append(self.created_at + self.config.limits.half_open_timeout)
        elif state is IkeSaState.ESTABLISHED:
            times += (self.rekey_at, self.expires_at, self.doomed_at, self.liveness_due())
            times += (child.deadline() for child in self.children.values())
        elif state is IkeSaState.REKEYED:
            times += (self.expires_at, self.doomed_at)
        return min((t for t in times if t is not None), default=None)

    def close(self, reason: str) -> None:
        """End the SA and all of its Child SAs (RFC 7296 §1.4.1); every exchange in flight is abandoned."""
        if self.state is IkeSaState.CLOSED:
            return
        self.state = IkeSaState.CLOSED
        abandoned = [*self.layer.abandon_all(), *(d.exchange for d in self.deferred.values())]
        abandoned += self.continuing.values()
        self.deferred = self.continuing = NOTHING
        for exchange in {id(e): e for e in abandoned}.values():  # a deferred round is also continuing
            exchange.abandon(self, reason)
        self.emit(IkeSaClosed(*self.ids, reason))
