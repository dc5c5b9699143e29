"""INFORMATIONAL (RFC 7296 §1.4, §1.4.1, §2.4, §2.21.2, §3.11).

Responder (:class:`InformationalResponder`): every INFORMATIONAL request gets
a response (RFC 7296 §1.4), an empty one for a liveness check.  A Delete of
the IKE SA is answered with an empty response, after which the SA and its
Child SAs are gone.  A Delete of ESP SPIs closes both directions of each pair
and the response lists our inbound SPIs of the same pairs (RFC 7296 §1.4.1);
SPIs we do not know are ignored.  Status notifies we do not understand are
ignored (§3.10.1).  An AUTHENTICATION_FAILED notify (the initiator rejected
our IKE_AUTH response, §2.21.2) is answered and ends the IKE SA.

A Delete of a Child SA we are deleting ourselves is answered without a
Delete payload for it (RFC 7296 §2.25.1); one we are rekeying is answered
as usual, with one.

Initiator: :class:`LivenessCheck` (an empty request, RFC 7296 §2.4),
:class:`DeleteIkeSa` and :class:`DeleteChildSa` (§1.4.1).  A Delete of ours
in flight meets the peer's requests as RFC 7296 §2.25 says: the peer's own
Delete of the IKE SA is answered and ours forgotten; a request to create or
rekey an SA of an IKE SA being closed, to rekey a Child SA being closed, or
to rekey the IKE SA while a Child SA is being closed, is refused with
TEMPORARY_FAILURE.
"""

from __future__ import annotations

import attrs

from responder.core.child_sa import ChildSaState
from responder.core.enums import ExchangeType, NotifyType, ProtocolId
from responder.core.errors import DecodeError
from responder.core.events import ChildSaDeleted
from responder.core.exchanges.base import (
    CloseIkeSa,
    Collision,
    Done,
    Exchange,
    Intent,
    NextRound,
    Operation,
    Reply,
)
from responder.core.exchanges.common import find_all
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.instant import Instant
from responder.core.message_layer import Received
from responder.core.payloads import DeletePayload, NotifyPayload, Payload

__all__ = ["DeleteChildSa", "DeleteIkeSa", "InformationalResponder", "LivenessCheck"]

DELETING_IKE_SA = Intent(Operation.DELETE_IKE)


@attrs.define(eq=False)
class InformationalResponder(Exchange):
    """The peer's INFORMATIONAL request: a liveness check, Deletes, notifies."""

    exchange_type = ExchangeType.INFORMATIONAL

    deletes: tuple[DeletePayload, ...] = ()

    @classmethod
    def for_request(cls, sa: IkeSa, request: Received) -> InformationalResponder:
        deletes = tuple(find_all(request.message, DeletePayload))
        if any(d.protocol_id == ProtocolId.IKE for d in deletes):
            return cls(deletes, intent=DELETING_IKE_SA)
        if deletes:
            named = {spi for d in deletes if d.protocol_id == ProtocolId.ESP for spi in d.spis}
            ours = frozenset(c.inbound_spi for c in sa.children.values() if c.outbound_spi in named)
            return cls(deletes, intent=Intent(Operation.DELETE_CHILD, ours))
        return cls(deletes)

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply:
        """Answer an INFORMATIONAL request."""
        message = request.message
        for delete in self.deletes:
            if delete.protocol_id not in (ProtocolId.IKE, ProtocolId.ESP, ProtocolId.AH):
                raise DecodeError(f"Delete of unknown protocol {delete.protocol_id}", offset=28)
        if any(n.notify_type == NotifyType.AUTHENTICATION_FAILED for n in find_all(message, NotifyPayload)):
            # RFC 7296 §2.21.2: an initiator that rejects our IKE_AUTH response says so in a
            # separate INFORMATIONAL exchange; the IKE SA is not usable, so it ends once answered.
            reason = "the peer reported AUTHENTICATION_FAILED for our IKE_AUTH response"
            return Reply((), "peer reported AUTHENTICATION_FAILED; IKE SA deleted", (CloseIkeSa(reason),))
        if self.intent.operation is Operation.DELETE_IKE:
            # RFC 7296 §1.4.1: the response is empty; the SA is gone once it is sent.
            reason = "deleted by the peer (INFORMATIONAL Delete of the IKE SA)"
            return Reply((), "IKE SA deleted by the peer", (CloseIkeSa(reason),))
        ours: list[bytes] = []
        gone: list[bytes] = []
        holder = sa
        if sa.state is IkeSaState.REKEYED and sa.heir is not None:
            # A Delete that crossed our rekey of the IKE SA: its Child SAs are the heir's now.
            holder = sa.heir
            sa.touched += (holder,)
        by_outbound = {child.outbound_spi: child for child in holder.children.values()}
        for spi in (spi for d in self.deletes if d.protocol_id == ProtocolId.ESP for spi in d.spis):
            child = by_outbound.pop(spi, None)  # we never create AH SAs; unknown SPIs are ignored
            if child is None:
                continue
            del holder.children[child.inbound_spi]
            gone.append(child.inbound_spi)
            # §2.25.1: a pair we are deleting ourselves is answered without a Delete payload.
            if child.state is not ChildSaState.DELETING:
                ours.append(child.inbound_spi)
            holder.emit(
                ChildSaDeleted(*holder.ids, child.inbound_spi, child.outbound_spi, "deleted by the peer")
            )
        if gone:
            payloads: tuple[Payload, ...] = (DeletePayload(ProtocolId.ESP, 4, tuple(ours)),) if ours else ()
            return Reply(payloads, f"deleted Child SAs {', '.join(s.hex() for s in gone)}")
        if self.deletes:
            return Reply((), "Delete of unknown SPIs ignored")
        return Reply((), "liveness check" if not message.payloads else "informational answered")


@attrs.define(eq=False)
class LivenessCheck(Exchange):
    """An empty INFORMATIONAL request of ours (RFC 7296 §2.4)."""

    exchange_type = ExchangeType.INFORMATIONAL

    def obsolete(self, sa: IkeSa) -> str | None:
        return None if sa.state is IkeSaState.ESTABLISHED else f"the IKE SA is {sa.state.value}"

    def build_request(self, sa: IkeSa, when: Instant) -> tuple[Payload, ...]:
        return ()

    def process_response(self, sa: IkeSa, response: Received, when: Instant) -> Done | NextRound:
        return Done("alive")


@attrs.define(eq=False)
class DeleteIkeSa(Exchange):
    """Our Delete of the IKE SA and its Child SAs (RFC 7296 §1.4.1); ``reason`` says why, for the log."""

    exchange_type = ExchangeType.INFORMATIONAL
    reason: str = "deleted by us"
    intent: Intent = attrs.field(default=DELETING_IKE_SA, kw_only=True)

    def build_request(self, sa: IkeSa, when: Instant) -> tuple[Payload, ...]:
        return (DeletePayload(ProtocolId.IKE, 0, ()),)

    def process_response(self, sa: IkeSa, response: Received, when: Instant) -> Done | NextRound:
        sa.close(self.reason)
        return Done("IKE SA deleted")

    def collide(self, sa: IkeSa, theirs: Exchange) -> Collision:
        """RFC 7296 §2.25.2 for an IKE SA we are closing."""
        operation = theirs.intent.operation
        if operation is Operation.DELETE_IKE:
            return Collision.YIELD  # "reply as usual, and forget about its own close request"
        if operation in (Operation.REKEY_IKE, Operation.CREATE_CHILD, Operation.REKEY_CHILD):
            return Collision.REFUSE  # "trying to close": TEMPORARY_FAILURE (§2.25.1, §2.25.2)
        return Collision.NONE


@attrs.define(eq=False)
class DeleteChildSa(Exchange):
    """Our Delete of Child SA pairs, named by our inbound SPIs (RFC 7296 §1.4.1): both directions go
    once the response is in; ``reason`` says why (a hard lifetime, a rekey that replaced them)."""

    exchange_type = ExchangeType.INFORMATIONAL
    follows_child_sas = True
    spis: tuple[bytes, ...] = ()
    reason: str = "deleted by us"

    @classmethod
    def of(cls, spis: tuple[bytes, ...], reason: str) -> DeleteChildSa:
        return cls(spis, reason, intent=Intent(Operation.DELETE_CHILD, frozenset(spis)))

    def obsolete(self, sa: IkeSa) -> str | None:
        if not any(spi in sa.children for spi in self.spis):
            return "the Child SAs are already gone"
        return None

    def build_request(self, sa: IkeSa, when: Instant) -> tuple[Payload, ...]:
        self.spis = tuple(spi for spi in self.spis if spi in sa.children)
        for spi in self.spis:
            sa.children[spi].state = ChildSaState.DELETING
        return (DeletePayload(ProtocolId.ESP, 4, self.spis),)

    def process_response(self, sa: IkeSa, response: Received, when: Instant) -> Done | NextRound:
        deleted = []
        for spi in self.spis:
            child = sa.children.pop(spi, None)  # the peer's own Delete may have taken it already
            if child is not None:
                deleted.append(spi.hex())
                sa.emit(ChildSaDeleted(*sa.ids, child.inbound_spi, child.outbound_spi, self.reason))
        return Done(f"deleted Child SAs {', '.join(deleted)}" if deleted else "Child SAs already gone")

    def collide(self, sa: IkeSa, theirs: Exchange) -> Collision:
        """RFC 7296 §2.25.1: a rekey of a pair we are closing, or of the IKE SA meanwhile, waits."""
        operation = theirs.intent.operation
        if operation is Operation.REKEY_CHILD and theirs.intent.children & set(self.spis):
            return Collision.REFUSE
        if operation is Operation.REKEY_IKE:
            return Collision.REFUSE
        return Collision.NONE
