"""The dispatcher: from a message of an IKE SA to the exchange that handles it, and back out.

Strategy: this module is the only one that knows both the IKE SA
(:mod:`responder.core.ike_sa`) and the exchanges (:mod:`responder.core.exchanges`),
so the two never import each other.  It holds

* the legality table :data:`RESPONDERS` (h2's ``_transitions``): which
  exchange object answers a request of the peer's in which state of the SA;
  an unlisted pair is dropped, a listed one builds the object from the
  request;
* the path of every message through the SA's
  :class:`~responder.core.message_layer.MessageLayer` (:func:`receive`):
  retransmitted requests answered from the store before anything is
  decrypted, integrity, the window, legality, collisions with our exchanges
  in flight (RFC 7296 §2.25), the exchange's answer and the actions that
  follow its sending; responses matched to our requests;
* **the one boundary** where a :class:`~responder.core.errors.ProtocolError`
  raised by an exchange becomes the RFC's answer: a protected error notify,
  and the end of the SA where RFC 7296 §2.21 says so (INVALID_SYNTAX,
  AUTHENTICATION_FAILED, or any error before the SA is established);
* our own requests: :func:`start` queues an exchange, which is sent when the
  peer's window has room (unless it became obsolete while it waited);
  :func:`handle_timer` retransmits over UDP or gives up (RFC 7296 §2.1,
  RFC 9329 §6.2), and expires a half-open SA;
* the SA's life (RFC 7296 §2.4, §2.8): :func:`handle_timer` starts the rekey
  of a Child SA or of the IKE SA at its soft lifetime, the Delete of either at
  its hard lifetime (or of what the peer should have deleted after a rekey and
  did not), and a liveness check once the peer has been silent ``dpd_delay``;
* the ``rekey_collision`` lab impairment (:func:`_provoke_collision`): our
  rekey of what the peer rekeys, sent before our answer (RFC 7296 §2.8.1);
* RFC 9329 §6.2 (row A39): when the peer comes back on a new stream
  connection, our requests still waiting are sent once more there;
* deferred answers: an exchange that returned
  :class:`~responder.core.exchanges.base.Deferred` is resumed by
  :func:`resume` with the outside work's result.

Every function returns with the SA's messages and events queued on it, for
the endpoint to collect.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from responder.core.child_sa import ChildSaState
from responder.core.enums import ExchangeType, NotifyType
from responder.core.errors import DecodeError, IntegrityCheckFailed, ProtocolError, TemporaryFailure
from responder.core.esp_limits import LimitReached
from responder.core.events import (
    AnswerDeferred,
    ChildSaLimitReached,
    MessageAccepted,
    MessageDropped,
    RequestAnswered,
    ResponseReceived,
    RetransmissionAnswered,
)
from responder.core.exchanges.base import Collision, Deferred, Exchange, NextRound, Operation, Reply
from responder.core.exchanges.create_child_sa import RekeyChildSa, create_child_sa_responder
from responder.core.exchanges.ike_auth import IkeAuthResponder
from responder.core.exchanges.informational import (
    DeleteChildSa,
    DeleteIkeSa,
    InformationalResponder,
    LivenessCheck,
)
from responder.core.exchanges.rekey_ike import RekeyedRefusal, RekeyIkeSa
from responder.core.ike_sa import REKEYED_GRACE, Deferral, IkeSa, IkeSaState, ResponderFactory, without
from responder.core.instant import Instant
from responder.core.message_layer import (
    FragmentNotice,
    GiveUp,
    Malformed,
    PendingRequest,
    ReassemblyExpired,
    Received,
    Resend,
    Retransmit,
    Sent,
)
from responder.core.messages import Header, Message, decode_message
from responder.core.outcomes import Verdict
from responder.core.path import Path
from responder.core.payloads import NotifyPayload
from responder.core.summary import payload_summary

__all__ = ["RESPONDERS", "flush", "handle_timer", "receive", "resume", "start"]

RESPONDERS: Mapping[tuple[IkeSaState, ExchangeType], ResponderFactory] = MappingProxyType(
    {
        (IkeSaState.INIT_DONE, ExchangeType.IKE_AUTH): IkeAuthResponder.for_request,
        (IkeSaState.ESTABLISHED, ExchangeType.INFORMATIONAL): InformationalResponder.for_request,
        (IkeSaState.ESTABLISHED, ExchangeType.CREATE_CHILD_SA): create_child_sa_responder,
        (IkeSaState.REKEYED, ExchangeType.INFORMATIONAL): InformationalResponder.for_request,
        (IkeSaState.REKEYED, ExchangeType.CREATE_CHILD_SA): RekeyedRefusal.for_request,
    }
)
"""The legality table for the peer's requests (RFC 7296 §1.2-§1.4): ``(state, exchange) -> factory``.

IKE_SA_INIT requests never reach an SA (none exists before the first is
answered: :class:`~responder.core.endpoint.Endpoint` admits them).
"""

#: Errors after which the IKE SA cannot go on (RFC 7296 §2.21.2-§2.21.4, RFC 9329 row A34).
_FATAL = (NotifyType.INVALID_SYNTAX, NotifyType.AUTHENTICATION_FAILED)


def _drop(sa: IkeSa, reason: str, *, authenticated: bool) -> Verdict:
    sa.emit(MessageDropped(reason, *sa.ids, authenticated=authenticated))
    return Verdict.IGNORED if authenticated else Verdict.CORRUPT


# --------------------------------------------------------------------------- receiving


def receive(sa: IkeSa, data: bytes, header: Header, path: Path, when: Instant) -> Verdict:
    """Handle a message whose header names this SA (RFC 7296 §2.1-§2.3, §3.14)."""
    if sa.state is IkeSaState.CLOSED:
        return _drop(sa, "IKE SA is closed", authenticated=False)
    if header.is_initiator == sa.is_original_initiator:
        return _drop(sa, "Initiator flag names the wrong sender", authenticated=False)
    name = header.exchange_type.name
    if header.exchange_type is ExchangeType.IKE_SA_INIT:
        return _ike_sa_init_response(sa, data, header, path, when)
    layer = sa.layer
    if not header.is_response:
        stored = layer.stored_response(header.message_id, data)
        if stored is not None:
            # RFC 7296 §2.1: a retransmitted request (bitwise identical; for a fragmented one, its
            # fragment 1, RFC 7383 §2.6.1) gets the stored response, nothing else, wherever it
            # came from (RFC 9329 §6.2: a new connection).
            return _retransmission(sa, header.message_id, stored, path)
        if layer.being_answered(header.message_id, data):
            return _drop(sa, f"request {header.message_id} is still being answered", authenticated=True)
    if not layer.protected:
        return _drop(sa, f"{name} before keys exist", authenticated=False)
    # The structure up to the SK payload is checked before the ICV, so an error there is
    # unauthenticated: dropped, never answered (RFC 7296 §2.21.2, §3.10.1 INVALID_SYNTAX
    # "only ... if the Message ID and cryptographic checksum were valid").
    try:
        opened = layer.open(data, path, when.now)
    except IntegrityCheckFailed as error:
        return _drop(sa, f"{name}: {error.reason}", authenticated=False)
    except DecodeError as error:
        return _drop(sa, f"{name}: {error}", authenticated=False)
    if isinstance(opened, FragmentNotice):
        # RFC 7383 §2.6: a fragment kept waits for the rest; one discarded is dropped silently.
        if opened.kept:
            return Verdict.FRAGMENT
        return _drop(sa, opened.reason, authenticated=opened.authenticated)
    if isinstance(opened, Resend):
        return _retransmission(sa, opened.message_id, opened.packets, path)
    if isinstance(opened, Malformed):
        return _malformed(sa, opened, path, when)
    if header.is_response:
        return _response(sa, opened, when)
    return _request(sa, opened, when)


def _retransmission(sa: IkeSa, message_id: int, stored: tuple[bytes, ...], path: Path) -> Verdict:
    """Send every packet (every fragment, RFC 7383 §2.6.1) of a stored response again."""
    for packet in stored:
        sa.send(packet, path)
    sa.emit(RetransmissionAnswered(*sa.ids, message_id))
    if path.connection is not None and path.connection != sa.path.connection:
        _resend_pending(sa, path)  # the peer is back on a new connection (RFC 9329 §6.2)
    return Verdict.RETRANSMISSION


def _malformed(sa: IkeSa, opened: Malformed, path: Path, when: Instant) -> Verdict:
    """Authenticated but malformed: a request we would take gets INVALID_SYNTAX or
    UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296 §2.21.2, §2.21.3, RFC 9329 row A34); a
    response, or a request outside the window, is dropped."""
    header = opened.header
    kind = header.exchange_type
    taken = kind in sa.continuing or (sa.state, kind) in sa.services.responders or _answers_all(sa)
    if header.is_response or sa.layer.request_status(header.message_id) is not None or not taken:
        return _drop(sa, f"{kind.name}: {opened.error}", authenticated=True)
    sa.last_heard = when.now
    sa.layer.begin(header.message_id, opened.data)
    _answer_error(sa, header, opened.error, path)
    return Verdict.ACCEPTED


def _request(sa: IkeSa, request: Received, when: Instant) -> Verdict:
    header = request.header
    refused = sa.layer.request_status(header.message_id)
    if refused is not None:
        return _drop(sa, refused, authenticated=True)
    exchange = sa.continuing.get(header.exchange_type)
    if exchange is None:
        factory = sa.services.responders.get((sa.state, header.exchange_type))
        exchange = factory(sa, request) if factory is not None else None
        if exchange is None:
            reason = f"{header.exchange_type.name} request not allowed in {sa.state.name}"
            if not _answers_all(sa):
                return _drop(sa, reason, authenticated=True)
            # RFC 7296 §2.21.3: once authenticated, "all requests having errors MUST result in a
            # response"; INVALID_SYNTAX, which ends the IKE SA on both ends.
            sa.layer.begin(header.message_id, request.data)
            _answer_error(sa, header, DecodeError(reason, offset=18), request.path)
            flush(sa, when)
            return Verdict.ACCEPTED
    heard(sa, request.path, when)
    sa.layer.begin(header.message_id, request.data)
    names = payload_summary(request.message.payloads)
    sa.emit(MessageAccepted(*sa.ids, header.exchange_type, header.message_id, False, names))
    try:
        if sa.config.impair.rekey_collision:
            _provoke_collision(sa, exchange, when)
        _collide(sa, exchange)
        result = exchange.respond(sa, request, when)
    except ProtocolError as error:
        _answer_error(sa, header, error, request.path)
    else:
        _deliver(sa, exchange, header, request.path, result, when)
    flush(sa, when)
    return Verdict.ACCEPTED


def _answers_all(sa: IkeSa) -> bool:
    """Whether every authenticated request in the window gets an answer (RFC 7296 §2.21.3): once the
    peer is authenticated (before, a request the state does not take is dropped)."""
    return sa.state in (IkeSaState.ESTABLISHED, IkeSaState.REKEYED)


def heard(sa: IkeSa, path: Path, when: Instant) -> None:
    """A valid message of the peer's (IKE, or ESP that opened): it is alive (RFC 7296 §2.4), and our
    requests go where it came from (RFC 9329 §6.1, A36); on a new stream connection, those still
    waiting go there once more (RFC 9329 §6.2, A39)."""
    sa.last_heard = when.now
    if sa.moved_to(path) and path.connection is not None:
        _resend_pending(sa, path)


def _resend_pending(sa: IkeSa, path: Path) -> None:
    assert path.connection is not None
    for packet in sa.layer.resend_on(path.connection):
        sa.send(packet, path)


def _provoke_collision(sa: IkeSa, theirs: Exchange, when: Instant) -> None:
    """The ``rekey_collision`` lab impairment: the peer's rekey of a Child SA or of the IKE SA meets
    our rekey of the same SA, sent before we answer theirs, so both ends see a collision that the
    nonces settle (RFC 7296 §2.8.1, §2.25.1).  Only when nothing of ours is in flight or waiting."""
    intent = theirs.intent
    ours: Exchange
    if intent.operation is Operation.REKEY_CHILD and len(intent.children) == 1:
        [target] = intent.children
        child = sa.children.get(target)
        if child is None or child.state is not ChildSaState.INSTALLED:
            return
        ours = RekeyChildSa.of(target)
    elif intent.operation is Operation.REKEY_IKE:
        ours = RekeyIkeSa()
    else:
        return
    if sa.layer.pending or sa.layer.queued or not sa.layer.has_room:
        return
    start(sa, ours, when)


def _collide(sa: IkeSa, theirs: Exchange) -> None:
    """Judge the peer's request against each exchange of ours in flight (RFC 7296 §2.25).

    ``LINK`` needs nothing here: the two exchanges noted each other in
    :meth:`~responder.core.exchanges.base.Exchange.collide` and settle it
    when both are done.
    """
    refuse: list[str] = []
    for request in list(sa.layer.pending.values()):
        verdict = request.exchange.collide(sa, theirs)
        if verdict is Collision.YIELD:
            # §2.25.2: answer theirs, forget ours (no retransmission, its response ignored).
            del sa.layer.pending[request.message_id]
            request.exchange.abandon(sa, f"yielded to the peer's {theirs.name} request")
        elif verdict is Collision.REFUSE:
            refuse.append(f"our {request.exchange.name} request {request.message_id} is in flight")
    if refuse:
        raise TemporaryFailure("; ".join(refuse))


def _deliver(
    sa: IkeSa, exchange: Exchange, request: Header, path: Path, result: Reply | Deferred, when: Instant
) -> None:
    """Send a reply (then apply what follows its sending), or note a deferred answer."""
    kind, message_id = request.exchange_type, request.message_id
    if isinstance(result, Deferred):
        sa.deferred = {**sa.deferred, message_id: Deferral(exchange, request, path)}
        sa.emit(AnswerDeferred(*sa.ids, kind, message_id, result.work))
        return
    sent = sa.layer.answer(request, sa.header(kind, message_id, is_response=True), result.payloads, path)
    _send_packets(sa, sent, path)
    if result.done:
        sa.continuing = without(sa.continuing, kind)
    else:
        sa.continuing = {**sa.continuing, kind: exchange}
    sa.emit(RequestAnswered(*sa.ids, kind, message_id, result.result))
    for action in result.after_send:
        action.apply(sa, sent, when)


def _answer_error(sa: IkeSa, request: Header, error: ProtocolError, path: Path) -> None:
    """The boundary: turn an exchange's error into the RFC's answer (RFC 7296 §2.21)."""
    kind, message_id = request.exchange_type, request.message_id
    lasting = sa.continuing.get(kind)  # an error ends an exchange of several rounds
    sa.continuing = without(sa.continuing, kind)
    if lasting is not None:
        lasting.abandon(sa, error.reason)
    notify = error.answer
    if notify is None:
        sa.layer.forget(message_id)
        sa.emit(MessageDropped(f"{kind.name}: {error.reason}", *sa.ids, authenticated=True))
        return
    payloads = (NotifyPayload(notify, error.notify_data, *error.notify_spi),)
    sent = sa.layer.answer(request, sa.header(kind, message_id, is_response=True), payloads, path)
    _send_packets(sa, sent, path)
    sa.emit(RequestAnswered(*sa.ids, kind, message_id, f"refused with {notify.name}: {error.reason}"))
    if notify in _FATAL or sa.state is not IkeSaState.ESTABLISHED:
        sa.close(f"{kind.name} request refused with {notify.name}: {error.reason}")


def _response(sa: IkeSa, response: Received, when: Instant) -> Verdict:
    # A response that matches nothing keeps our request pending: it is still
    # retransmitted, and times out (RFC 7296 §2.1).
    header = response.header
    request = sa.layer.response_to(header)
    if request is None:
        return _drop(sa, f"response {header.message_id} matches no request of ours", authenticated=True)
    heard(sa, response.path, when)
    names = payload_summary(response.message.payloads)
    sa.emit(MessageAccepted(*sa.ids, header.exchange_type, header.message_id, True, names))
    _complete(sa, request, response, when)
    flush(sa, when)
    return Verdict.ACCEPTED


def _ike_sa_init_response(sa: IkeSa, data: bytes, header: Header, path: Path, when: Instant) -> Verdict:
    """IKE_SA_INIT reaches an SA only as the response to our request (RFC 7296 §2.2: Message ID 0)."""
    pending = sa.layer.pending.get(0)
    if not (
        header.is_response
        and header.message_id == 0
        and sa.state is IkeSaState.INIT_SENT
        and pending is not None
        and pending.exchange_type is ExchangeType.IKE_SA_INIT
    ):
        return _drop(sa, "unexpected IKE_SA_INIT", authenticated=False)
    try:
        message = decode_message(data)
    except DecodeError as error:
        return _drop(sa, f"IKE_SA_INIT response: {error}", authenticated=False)
    request = sa.layer.response_to(header)
    assert request is not None  # checked above
    _complete(sa, request, Received(message, b"", data, path), when)
    flush(sa, when)
    return Verdict.ACCEPTED


def _complete(sa: IkeSa, request: PendingRequest[Exchange], response: Received, when: Instant) -> None:
    exchange = request.exchange
    try:
        outcome = exchange.process_response(sa, response, when)
    except ProtocolError as error:
        # A response cannot be answered; one we cannot accept leaves the exchange
        # failed, and with it the IKE SA (RFC 7296 §2.21: close the SA rather than
        # go on with state the peer does not share).
        exchange.abandon(sa, error.reason)
        sa.close(f"{exchange.name} response {request.message_id} unacceptable: {error.reason}")
        return
    if sa.state is IkeSaState.CLOSED:
        return
    if isinstance(outcome, NextRound):
        if outcome.same_message_id:
            _send(sa, request.message_id, exchange, when)
        else:
            sa.layer.queued = (exchange, *sa.layer.queued)  # its next round goes before anything queued
        return
    sa.emit(ResponseReceived(*sa.ids, exchange.exchange_type, request.message_id, outcome.result))
    for follow in outcome.then:
        sa.layer.enqueue(follow)


# --------------------------------------------------------------------------- our requests


def start(sa: IkeSa, exchange: Exchange, when: Instant) -> None:
    """Start an exchange of ours: sent now if the peer's window has room, else queued (RFC 7296 §2.3)."""
    sa.layer.enqueue(exchange)
    flush(sa, when)


def flush(sa: IkeSa, when: Instant) -> None:
    """Send queued exchanges of ours while the peer's window has room (RFC 7296 §2.3).

    One that became obsolete while it waited is dropped before it is numbered.
    """
    layer = sa.layer
    while sa.state is not IkeSaState.CLOSED and layer.queued and layer.has_room:
        exchange = layer.queued[0]
        reason = exchange.obsolete(sa)
        if reason is not None:
            layer.queued = layer.queued[1:]
            exchange.abandon(sa, reason)
            continue
        if layer.pending and (
            exchange.exclusive or any(request.exchange.exclusive for request in layer.pending.values())
        ):
            break  # an IKE SA rekey goes alone (RFC 7296 §1.3.2, §2.25.1)
        next_request = layer.next_to_send()
        assert next_request is not None  # the queue is not empty and the window has room
        _send(sa, *next_request, when)


def _send(sa: IkeSa, message_id: int, exchange: Exchange, when: Instant) -> None:
    payloads = exchange.build_request(sa, when)
    header = sa.header(exchange.exchange_type, message_id, is_response=False)
    if exchange.protected:
        sent = sa.layer.send(message_id, exchange, header, payloads, when.now, sa.path)
    else:
        data = sa.layer.send_unprotected(message_id, exchange, Message(header, payloads), when.now)
        sent = Sent((data,))
    exchange.sent(sa, sent)
    _send_packets(sa, sent, None)


def _send_packets(sa: IkeSa, sent: Sent, path: Path | None) -> None:
    for packet in sent.packets:
        sa.send(packet, path)


# --------------------------------------------------------------------------- time and resumption


def handle_timer(sa: IkeSa, when: Instant) -> None:
    """Expire a half-open SA; retransmit or give up on our requests (RFC 7296 §2.1, RFC 9329 §6.2);
    then what the SA's life asks for now (:func:`_lifecycle`)."""
    if sa.state is IkeSaState.CLOSED:
        return
    if sa.state is IkeSaState.INIT_DONE and when.now >= sa.created_at + sa.config.limits.half_open_timeout:
        sa.close("half-open IKE SA expired: no IKE_AUTH request in time")
        return
    stream = sa.path.transport.is_stream
    actions = sa.layer.handle_timer(when.now, stream)
    unanswered = [action.request for action in actions if isinstance(action, GiveUp)]
    if unanswered:
        reasons = [f"peer did not answer {r.exchange.name} request {r.message_id}" for r in unanswered]
        for request, reason in zip(unanswered, reasons, strict=True):
            request.exchange.abandon(sa, reason)
        sa.close(reasons[0] + (" (no retransmission over TCP, RFC 9329 §6.2)" if stream else ""))
        return
    for action in actions:
        if isinstance(action, Retransmit):
            for packet in action.packets:
                sa.send(packet)
        elif isinstance(action, ReassemblyExpired):
            sa.emit(MessageDropped(action.reason, *sa.ids, authenticated=True))
    if sa.state in (IkeSaState.ESTABLISHED, IkeSaState.REKEYED):
        _lifecycle(sa, when)
        flush(sa, when)


def _due(deadline: float | None, now: float) -> bool:
    return deadline is not None and now >= deadline


def _lifecycle(sa: IkeSa, when: Instant) -> None:
    """Start what the SA's deadlines ask for; each deadline that acts is cleared, so none repeats.

    RFC 7296 §2.8: an SA past its hard lifetime is deleted (the IKE SA with
    everything queued behind it dropped); one past its soft lifetime is
    rekeyed; what the peer should have deleted after a rekey and did not,
    we delete.  §2.4: a liveness check once the peer was silent ``dpd_delay``.
    """
    now = when.now
    if _due(sa.expires_at, now):
        sa.expires_at = sa.doomed_at = sa.rekey_at = None
        for child in sa.children.values():  # they end with the IKE SA's Delete
            child.rekey_at = child.expires_at = child.doomed_at = None
        for exchange in sa.layer.queued:
            exchange.abandon(sa, "the IKE SA expired")
        sa.layer.queued = ()
        sa.layer.enqueue(DeleteIkeSa("IKE SA lifetime expired"))
        return
    if _due(sa.doomed_at, now):
        sa.doomed_at = None
        sa.layer.enqueue(DeleteIkeSa(f"the peer did not delete it within {REKEYED_GRACE:g} s of its rekey"))
        return
    if sa.state is not IkeSaState.ESTABLISHED:
        return
    expired: list[bytes] = []
    doomed: list[bytes] = []
    for child in list(sa.children.values()):
        if _due(child.expires_at, now):
            child.expires_at = child.doomed_at = child.rekey_at = None
            if child.state is not ChildSaState.DELETING:  # a Delete of ours is already out
                expired.append(child.inbound_spi)
        elif _due(child.doomed_at, now):
            child.doomed_at = None
            doomed.append(child.inbound_spi)
        elif child.state is ChildSaState.INSTALLED and _due(child.rekey_at, now):
            child.rekey_at = None
            sa.layer.enqueue(RekeyChildSa.of(child.inbound_spi))
    if expired:
        sa.layer.enqueue(DeleteChildSa.of(tuple(expired), "Child SA lifetime expired"))
    if doomed:
        reason = f"replaced by a rekey; the peer did not delete it within {REKEYED_GRACE:g} s"
        sa.layer.enqueue(DeleteChildSa.of(tuple(doomed), reason))
    if _due(sa.rekey_at, now):
        sa.rekey_at = None
        sa.layer.enqueue(RekeyIkeSa())
    if _due(sa.liveness_due(), now):
        sa.layer.enqueue(LivenessCheck())


def child_limit(sa: IkeSa, reached: LimitReached, when: Instant) -> bool:
    """A Child SA pair's traffic reached a limit (RFC 4301 §4.4.2.1, RFC 4303 §3.3.3): a soft one
    starts the rekey the timer would (RFC 7296 §2.8; not while one of either end runs), a hard one
    the Delete of the pair (not when ours is already out).  Each is reported once by the data plane;
    ``False`` when the IKE SA cannot act now (not established: being rekeyed, say), so that the
    data plane reports it again with a later packet."""
    child = sa.children.get(reached.inbound_spi)
    if child is None:
        return True  # gone: nothing to do, ever
    if sa.state is not IkeSaState.ESTABLISHED:
        return False
    action = "none: the pair is " + child.state.value
    if reached.hard and child.state is not ChildSaState.DELETING:
        child.rekey_at = child.expires_at = child.doomed_at = None
        sa.layer.enqueue(DeleteChildSa.of((child.inbound_spi,), f"Child SA {reached.describe()}"))
        action = "delete"
    elif not reached.hard and child.state is ChildSaState.INSTALLED:
        child.rekey_at = None
        sa.layer.enqueue(RekeyChildSa.of(child.inbound_spi))
        action = "rekey"
    sa.emit(
        ChildSaLimitReached(*sa.ids, child.inbound_spi, reached.limit, reached.outbound, reached.hard, action)
    )
    flush(sa, when)
    return True


def resume(sa: IkeSa, message_id: int, result: object, when: Instant) -> bool:
    """Answer a deferred request with the outside work's ``result``; ``False`` if none is waiting."""
    deferral = sa.deferred.get(message_id)
    sa.deferred = without(sa.deferred, message_id)
    if deferral is None or sa.state is IkeSaState.CLOSED:
        return False
    try:
        answer = deferral.exchange.resume(sa, result, when)
    except ProtocolError as error:
        _answer_error(sa, deferral.request, error, deferral.path)
    else:
        _deliver(sa, deferral.exchange, deferral.request, deferral.path, answer, when)
    flush(sa, when)
    return True
