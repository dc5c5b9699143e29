"""What every exchange object is: the base class, its results, and what happens after a response is sent.

Strategy (strongSwan's task model, read not copied: each exchange a task with
``build``/``process``, the task manager resolving collisions): an
:class:`Exchange` carries one exchange of an IKE SA from start to end, in the
role we have in it.

* **The peer's request** (we answer).  :mod:`responder.core.dispatch` builds
  the object from the legality table (``state x exchange type``), asks our
  exchanges in flight whether it collides with them (:meth:`Exchange.collide`,
  RFC 7296 §2.25), then calls :meth:`Exchange.respond`.  That returns a
  :class:`Reply` (payloads, a line for the log, and :class:`AfterSend`
  actions that take effect only once the response is protected and queued:
  installing a Child SA, switching keys, closing the SA, handing a new IKE SA
  to the endpoint), or :class:`Deferred` when the answer needs work outside
  the core (an EAP backend, an OCSP lookup); :meth:`Exchange.resume` later
  gets that work's result.  A reply with ``done=False`` keeps the object for
  the peer's next request of the same type (EAP rounds, RFC 7296 §2.16).  A
  :class:`~responder.core.errors.ProtocolError` raised instead becomes the
  RFC's answer at the dispatcher's one boundary.
* **Our request** (we initiate).  :meth:`Exchange.build_request` gives the
  payloads when the peer's window has room; :meth:`Exchange.process_response`
  takes the answer and returns :class:`Done` (possibly naming exchanges of
  ours to start next) or :class:`NextRound` (send this
  exchange's next request: EAP rounds, or IKE_SA_INIT again after a COOKIE or
  INVALID_KE_PAYLOAD under the same Message ID).  :meth:`Exchange.abandon`
  says it will never complete (the SA closed, or the peer did not answer).
* **Collisions** (RFC 7296 §2.8.1, §2.8.2, §2.25).  Each exchange states its
  :class:`Intent` (what it does to which SA); one of ours in flight judges a
  request of the peer's against it and answers a :class:`Collision`: unrelated,
  linked (both go on and the nonces decide which new SA survives), refused
  with TEMPORARY_FAILURE, or ours yields.

The exchanges of each kind live in their own modules beside this one.
"""

from __future__ import annotations

import enum
from typing import ClassVar, Protocol

import attrs

from responder.core.child_sa import ChildSa, ChildSaState
from responder.core.enums import EsnId, ExchangeType
from responder.core.errors import LocalError
from responder.core.events import ChildSaEstablished, ChildSasMoved, Event
from responder.core.ike_sa import IkeSa
from responder.core.instant import Instant
from responder.core.message_layer import Received, Sent
from responder.core.payloads import Payload, TrafficSelector
from responder.core.selectors import describe_selector
from responder.core.sk_payload import SkProtection

__all__ = [
    "AfterSend",
    "CloseIkeSa",
    "Collision",
    "Deferred",
    "Done",
    "Exchange",
    "Initiate",
    "InstallChildSa",
    "Intent",
    "MoveChildSas",
    "NextRound",
    "Operation",
    "Reply",
    "Report",
    "SpawnIkeSa",
    "SwitchKeys",
    "child_established",
    "move_children",
]


class Operation(enum.Enum):
    """What an exchange does to an SA, in RFC 7296 §2.25's terms."""

    CREATE_CHILD = "create-child"
    REKEY_CHILD = "rekey-child"
    DELETE_CHILD = "delete-child"
    REKEY_IKE = "rekey-ike"
    DELETE_IKE = "delete-ike"


@attrs.frozen(slots=True)
class Intent:
    """An exchange's operation and the Child SAs it concerns (our inbound SPIs); ``None``: no SA changes."""

    operation: Operation | None = None
    children: frozenset[bytes] = frozenset()


NO_INTENT = Intent()


class Collision(enum.Enum):
    """How one of our exchanges in flight meets a request of the peer's (RFC 7296 §2.25)."""

    NONE = "none"  #: unrelated: answer the peer's request as usual
    LINK = "link"  #: answer as usual; once both are done the nonces decide what stays (§2.8.1, §2.8.2)
    REFUSE = "refuse"  #: answer the peer's request with TEMPORARY_FAILURE (§2.25)
    YIELD = "yield"  #: answer the peer's request as usual and forget ours (§2.25.2)


class AfterSend(Protocol):
    """Something that takes effect once a response is protected and queued, in reply order."""

    def apply(self, sa: IkeSa, sent: Sent, when: Instant) -> None: ...


@attrs.frozen(slots=True)
class Reply:
    """The answer to a request of the peer's.

    ``result`` is one line for the log.  ``done=False`` keeps the exchange for
    the peer's next request of the same type (several rounds, RFC 7296 §2.16).
    """

    payloads: tuple[Payload, ...]
    result: str
    after_send: tuple[AfterSend, ...] = ()
    done: bool = True


@attrs.frozen(slots=True)
class Deferred:
    """The answer waits for ``work`` outside the core (see :class:`~responder.core.events.AnswerDeferred`)."""

    work: object


@attrs.frozen(slots=True)
class Done:
    """Our exchange is complete; ``result`` is one line for the log.

    ``then`` are exchanges of ours to start next, in order (IKE_AUTH after
    IKE_SA_INIT; the Delete of a redundant SA after a rekey collision).
    """

    result: str
    then: tuple[Exchange, ...] = ()


@attrs.frozen(slots=True)
class NextRound:
    """Send this exchange's next request: under a new Message ID, or under the same one
    (IKE_SA_INIT again after a COOKIE or INVALID_KE_PAYLOAD, RFC 7296 §2.2)."""

    same_message_id: bool = False


@attrs.define(eq=False)
class Exchange:
    """One exchange of an IKE SA, carried by this object in the role we have in it.

    Subclasses implement the half they need: :meth:`respond` (and
    :meth:`resume` if they defer) to answer, :meth:`build_request` and
    :meth:`process_response` to initiate.  Calling the other half is a bug
    (:class:`LocalError`).  ``intent`` says what it does to which SA
    (RFC 7296 §2.25), for collisions.
    """

    exchange_type: ClassVar[ExchangeType]
    #: Whether this exchange's messages are SK-protected (all but IKE_SA_INIT, RFC 7296 §1.2).
    protected: ClassVar[bool] = True
    #: Whether, queued on an IKE SA that is rekeyed, it goes with the Child SAs to the new IKE SA
    #: (a rekey or Delete of a Child SA); the others stay with the old SA.
    follows_child_sas: ClassVar[bool] = False
    #: Whether it goes out only when none of our requests is in flight, and holds back the others
    #: while it is (an IKE SA rekey: RFC 7296 §1.3.2 "SHOULD NOT start any new CREATE_CHILD_SA
    #: exchanges on the IKE SA that is being rekeyed"; §2.25.1 with a window above one).
    exclusive: ClassVar[bool] = False
    intent: Intent = attrs.field(default=NO_INTENT, kw_only=True)

    @property
    def name(self) -> str:
        return self.exchange_type.name

    # ------------------------------------------------------------------ the peer's request

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply | Deferred:
        """Answer the peer's request, or defer the answer; raises ProtocolError to refuse it."""
        raise LocalError(f"{type(self).__name__} does not answer requests")

    def resume(self, sa: IkeSa, result: object, when: Instant) -> Reply | Deferred:
        """Go on with a deferred answer, given the outside work's ``result``."""
        raise LocalError(f"{type(self).__name__} never defers")

    # ------------------------------------------------------------------ our request

    def obsolete(self, sa: IkeSa) -> str | None:
        """Why a queued request of ours is no longer wanted when its turn comes (the Child SA it was
        to rekey is gone, the IKE SA was rekeyed), or ``None`` to send it; checked before it is
        numbered, so a dropped request uses no Message ID."""
        return None

    def build_request(self, sa: IkeSa, when: Instant) -> tuple[Payload, ...]:
        """The payloads of our request (called when the peer's window has room)."""
        raise LocalError(f"{type(self).__name__} sends no requests")

    def sent(self, sa: IkeSa, sent: Sent) -> None:
        """Our request as it went out (IKE_SA_INIT's signed octets, RFC 7296 §2.15; IntAuth, RFC 9242)."""

    def process_response(self, sa: IkeSa, response: Received, when: Instant) -> Done | NextRound:
        """Take the peer's response; raises ProtocolError when it cannot be accepted."""
        raise LocalError(f"{type(self).__name__} sends no requests")

    def abandon(self, sa: IkeSa, reason: str) -> None:
        """It will never complete (the SA closed, or the peer did not answer): undo what it began."""

    # ------------------------------------------------------------------ collisions

    def collide(self, sa: IkeSa, theirs: Exchange) -> Collision:
        """Ours, in flight, meets the peer's request ``theirs`` (RFC 7296 §2.25); default: unrelated."""
        return Collision.NONE


# --------------------------------------------------------------------------- after-send actions


@attrs.frozen(slots=True)
class CloseIkeSa:
    """End the IKE SA once the response is out (a Delete of it, RFC 7296 §1.4.1)."""

    reason: str

    def apply(self, sa: IkeSa, sent: Sent, when: Instant) -> None:
        sa.close(self.reason)


@attrs.frozen(slots=True)
class SwitchKeys:
    """Protect every later message with new keys, this response still with the old ones
    (IKE_INTERMEDIATE with an additional key exchange, RFC 9370 §2.2.2)."""

    inbound: SkProtection = attrs.field(repr=False)
    outbound: SkProtection = attrs.field(repr=False)

    def apply(self, sa: IkeSa, sent: Sent, when: Instant) -> None:
        sa.layer.install_keys(self.inbound, self.outbound)


@attrs.frozen(slots=True)
class SpawnIkeSa:
    """Hand a new IKE SA to the endpoint once the response is out (IKE SA rekey, RFC 7296 §1.3.2)."""

    new: IkeSa

    def apply(self, sa: IkeSa, sent: Sent, when: Instant) -> None:
        sa.spawned += (self.new,)


@attrs.frozen(slots=True)
class Report:
    """Emit an event once the response is out (so the log follows what the peer saw)."""

    event: Event

    def apply(self, sa: IkeSa, sent: Sent, when: Instant) -> None:
        sa.emit(self.event)


@attrs.frozen(slots=True)
class Initiate:
    """Start an exchange of ours once the response is out (queued behind the peer's window)."""

    exchange: Exchange

    def apply(self, sa: IkeSa, sent: Sent, when: Instant) -> None:
        sa.layer.enqueue(self.exchange)


@attrs.frozen(slots=True)
class InstallChildSa:
    """The Child SA negotiated in this exchange carries traffic once the response is out."""

    child: ChildSa

    def apply(self, sa: IkeSa, sent: Sent, when: Instant) -> None:
        child_established(sa, self.child, when.now)


@attrs.frozen(slots=True)
class MoveChildSas:
    """Once the response is out, the SA's Child SAs belong to ``heir`` (an IKE SA rekey, RFC 7296 §2.8)."""

    heir: IkeSa

    def apply(self, sa: IkeSa, sent: Sent, when: Instant) -> None:
        move_children(sa, self.heir)


def move_children(old: IkeSa, heir: IkeSa) -> None:
    """Hand ``old``'s Child SAs, and its queued requests about them, to ``heir`` (RFC 7296 §1.3.2,
    §2.8.2); requests about the old IKE SA itself (its Delete, a liveness check) stay with it.

    The endpoint sees :class:`~responder.core.events.ChildSasMoved` and sends
    their ESP, and their address leases, with the heir from then on.
    """
    moved = tuple(old.children)
    heir.children.update(old.children)
    old.children.clear()
    old.heir = heir
    staying = tuple(exchange for exchange in old.layer.queued if not exchange.follows_child_sas)
    for exchange in old.layer.queued:
        if exchange.follows_child_sas:
            heir.layer.enqueue(exchange)
    old.layer.queued = staying
    old.emit(ChildSasMoved(*old.ids, heir.local_spi, moved))


def child_established(sa: IkeSa, child: ChildSa, now: float) -> None:
    """Mark ``child`` installed on ``sa`` at ``now``, start its lifetime and announce it
    (RFC 7296 §2.17 keys in the event)."""
    child.state = ChildSaState.INSTALLED
    sa.children[child.inbound_spi] = child
    sa.start_child_lifetime(child, now)
    params = child.params
    encr = params.proposal.encryption_transform()
    integ = params.proposal.integrity_transform()
    sa.emit(
        ChildSaEstablished(
            *sa.ids,
            inbound_spi=params.inbound_spi,
            outbound_spi=params.outbound_spi,
            proposal=str(params.proposal),
            mode=params.mode.value,
            local_ts=_texts(params.local_ts),
            remote_ts=_texts(params.remote_ts),
            encryption_name=encr.name,
            integrity_name=integ.name if integ is not None else None,
            esn=params.proposal.esn == EsnId.ESN,
            keys=params.keys,
            initiated=params.initiated,
            rekeyed=params.rekeyed,
            rekey_in=None if child.rekey_at is None else child.rekey_at - now,
            expires_in=None if child.expires_at is None else child.expires_at - now,
        )
    )


def _texts(selectors: tuple[TrafficSelector, ...]) -> tuple[str, ...]:
    return tuple(describe_selector(selector) for selector in selectors)
