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
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeAlias

import attrs

from responder.core.child_sa import ChildSa
from responder.core.config import Config
from responder.core.enums import ExchangeType
from responder.core.events import Event, IkeSaClosed, PathChanged
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

__all__ = ["IkeSa", "IkeSaState", "ResponderFactory", "Services"]


class IkeSaState(enum.Enum):
    """Where an IKE SA is in its life (RFC 7296 §1.2, §1.4)."""

    INIT_SENT = "init-sent"  #: initiator: IKE_SA_INIT request sent
    INIT_DONE = "init-done"  #: responder: IKE_SA_INIT answered, waiting for IKE_AUTH (half-open)
    AUTH_SENT = "auth-sent"  #: initiator: IKE_AUTH request sent
    ESTABLISHED = "established"  #: authenticated; INFORMATIONAL and CREATE_CHILD_SA allowed
    CLOSED = "closed"  #: gone; every further message is dropped


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
    proposal: ChosenProposal | None = None
    prf: Prf | None = None
    encryption: Encryption | None = None
    integrity: Integrity | None = None
    keys: IkeSaKeys | None = attrs.field(default=None, repr=False)
    nonce_i: bytes = b""
    nonce_r: bytes = b""
    init_request: bytes = attrs.field(default=b"", repr=False)  #: the IKE_SA_INIT request that succeeded
    init_response: bytes = attrs.field(default=b"", repr=False)
    peer_supports_childless: bool = False
    nat_detected_local: bool = False
    nat_detected_remote: bool = False

    # Authenticated in IKE_AUTH
    local_id: str = ""
    remote_id: str = ""
    peer_name: str | None = None
    #: Child SAs by our inbound SPI (RFC 7296 §1.4.1: a Delete names the sender's inbound SPIs).
    children: dict[bytes, ChildSa] = attrs.Factory(dict)

    #: The peer's requests accepted whose answers were deferred, by Message ID.
    deferred: dict[int, Deferral] = attrs.Factory(dict)
    #: The peer's exchanges that take several rounds (IKE_AUTH with EAP, RFC 7296 §2.16), by type.
    continuing: dict[ExchangeType, Exchange] = attrs.Factory(dict)
    #: What this SA initiates with (the initiator role only).
    settings: InitiatorSettings | None = None
    #: New IKE SAs this one made (an IKE SA rekey, RFC 7296 §1.3.2), for the endpoint to take.
    spawned: list[IkeSa] = attrs.Factory(list)

    _outgoing: list[Outgoing] = attrs.Factory(list)
    _events: deque[Event] = attrs.Factory(deque)

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
        self._outgoing.append(Outgoing(path or self.path, data))

    def messages_to_send(self) -> list[Outgoing]:
        """Messages queued since the last call, oldest first."""
        out, self._outgoing = self._outgoing, []
        return out

    def emit(self, event: Event) -> None:
        self._events.append(event)

    def next_event(self) -> Event | None:
        """The oldest event not yet taken, or ``None``."""
        return self._events.popleft() if self._events else None

    # ------------------------------------------------------------------ life

    def moved_to(self, path: Path) -> None:
        """A valid message came on ``path``: our requests go there from now on (RFC 9329 §6.1, A36)."""
        if path != self.path:
            previous, self.path = self.path, path
            self.emit(PathChanged(*self.ids, path, previous))

    def get_timer(self) -> float | None:
        """The next time :func:`responder.core.dispatch.handle_timer` has work for this SA, or ``None``."""
        if self.state is IkeSaState.CLOSED:
            return None
        deadline = self.layer.get_timer(self.path.transport.is_stream)
        if self.state is IkeSaState.INIT_DONE:
            expiry = self.created_at + self.config.limits.half_open_timeout
            deadline = expiry if deadline is None else min(deadline, expiry)
        return deadline

    def close(self, reason: str) -> None:
        """End the SA and all of its Child SAs (RFC 7296 §1.4.1); every exchange in flight is abandoned."""
        if self.state is IkeSaState.CLOSED:
            return
        self.state = IkeSaState.CLOSED
        abandoned = [*self.layer.abandon_all(), *(d.exchange for d in self.deferred.values())]
        abandoned += self.continuing.values()
        self.deferred.clear()
        self.continuing.clear()
        for exchange in {id(e): e for e in abandoned}.values():  # a deferred round is also continuing
            exchange.abandon(self, reason)
        self.emit(IkeSaClosed(*self.ids, reason))
