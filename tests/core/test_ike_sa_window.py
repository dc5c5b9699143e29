"""Message IDs, the window and retransmission (RFC 7296 §2.1-§2.3; RFC 9329 §6.2), explicit ``now``.

Each test names the RFC section and the requirement row (B4, B6, B7, B8, A39) it checks.
Requests the initiator's API cannot send out of order are forged with the SA's own keys
(:func:`tests.fakes.pair.forge`), so they pass the ICV and meet the window checks.
"""

from __future__ import annotations

import attrs
import pytest

from responder.core.enums import ExchangeType, NotifyType
from responder.core.events import (
    IkeSaClosed,
    IkeSaEstablished,
    MessageAccepted,
    MessageDropped,
    RequestAnswered,
    ResponseReceived,
    RetransmissionAnswered,
)
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.message_layer import RETRANSMIT_TRIES, TCP_RESPONSE_TIMEOUT
from responder.core.messages import decode_header, decode_message, encode_message
from responder.core.path import Transport
from responder.core.payloads import NotifyPayload
from tests.fakes.pair import (
    Pair,
    forge,
    initiator_settings,
    protect,
    read,
    responder_config,
    sk_keys,
)

IKE = "aes256gcm16-prfsha256-x25519"


def established(*, window: int = 1, transport: Transport = Transport.UDP) -> tuple[Pair, IkeSa, IkeSa]:
    pair = Pair.create(responder_config(IKE, window_size=window), transport=transport)
    initiator_sa = pair.initiate(initiator_settings(IKE))
    pair.pump()
    [responder_sa] = pair.responder.sas
    assert initiator_sa.state is IkeSaState.ESTABLISHED and responder_sa.state is IkeSaState.ESTABLISHED
    return pair, initiator_sa, responder_sa


def informational(sa: IkeSa, message_id: int) -> bytes:
    """An empty INFORMATIONAL request from the original initiator."""
    return forge(sa, ExchangeType.INFORMATIONAL, (), message_id=message_id)


def dropped(pair: Pair, data: bytes, *, reason: str) -> None:
    """``data`` gets no answer and a MessageDropped event saying ``reason``."""
    assert pair.to_responder(data) == []
    event = pair.responder_events[-1]
    assert isinstance(event, MessageDropped) and reason in event.reason, event


# --------------------------------------------------------------------------- the responder's cache


def test_retransmitted_informational_gets_cached_response_byte_for_byte() -> None:
    """RFC 7296 §2.1 (row B4): a retransmitted request gets the stored response again, bitwise
    identical, and is otherwise ignored (no second RequestAnswered, no MessageAccepted)."""
    pair, initiator_sa, _ = established()
    pair.initiator.request_liveness_check(initiator_sa.local_spi, pair.now)
    pair.pump()
    request, response = pair.wire[-2][1], pair.wire[-1][1]
    answered = len(pair.events(RequestAnswered))
    accepted = len(pair.events(MessageAccepted))
    for _ in range(3):
        assert pair.to_responder(request) == [response]
    assert [e.message_id for e in pair.events(RetransmissionAnswered)] == [2, 2, 2]
    assert len(pair.events(RequestAnswered)) == answered
    assert len(pair.events(MessageAccepted)) == accepted


def test_retransmission_is_answered_only_after_authentication() -> None:
    """RFC 7296 §2.1, §2.4 (row B4, B8): only a bitwise copy of an authenticated request gets the stored
    response (it is recognised before decryption by being identical); the same Message ID with a
    broken ICV, or the request in the clear, gets nothing."""
    pair, initiator_sa, responder_sa = established()
    pair.initiator.request_liveness_check(initiator_sa.local_spi, pair.now)
    pair.pump()
    request = pair.wire[-2][1]
    tampered = request[:-1] + bytes([request[-1] ^ 0x80])
    dropped(pair, tampered, reason="INFORMATIONAL")
    plain = encode_message(read(responder_sa, request, from_initiator=True))
    dropped(pair, plain, reason="without an Encrypted payload")
    assert pair.events(RetransmissionAnswered) == []
    assert responder_sa.state is IkeSaState.ESTABLISHED


def test_old_request_below_the_window_is_dropped() -> None:
    """RFC 7296 §2.1, §2.3 (row B4, B7): with window 1, request n+1 frees the response to n; a late
    retransmission of n is then ignored (MessageDropped), not answered anew."""
    pair, initiator_sa, _ = established()
    for _ in range(2):
        pair.initiator.request_liveness_check(initiator_sa.local_spi, pair.now)
        pair.pump()
    second_request, second_response = pair.wire[-2][1], pair.wire[-1][1]
    first_request = pair.wire[-4][1]
    assert decode_header(first_request)[0].message_id == 2
    dropped(pair, first_request, reason="outside the window [4, 5)")
    assert pair.to_responder(second_request) == [second_response]  # still cached


def test_request_beyond_the_window_is_dropped() -> None:
    """RFC 7296 §2.3 (row B7): a request above the window is not acted on and not answered
    (no INVALID_MESSAGE_ID in a response); the expected Message ID still works afterwards."""
    pair, _, responder_sa = established()
    assert responder_sa.layer.next_expected == 2 and responder_sa.layer.window_size == 1
    dropped(pair, informational(responder_sa, 3), reason="outside the window [2, 3)")
    dropped(pair, informational(responder_sa, 0xFFFFFFFF), reason="outside the window")
    assert responder_sa.layer.next_expected == 2
    [response] = pair.to_responder(informational(responder_sa, 2))
    assert read(responder_sa, response, from_initiator=False).header.message_id == 2


def test_window_of_four_is_announced_and_honoured() -> None:
    """RFC 7296 §2.3, §3.10.1 (row B7): with Config.window_size=4 the responder sends SET_WINDOW_SIZE(4)
    in IKE_AUTH, accepts four outstanding requests in any order, drops the fifth, keeps four responses
    and forgets a response once a request at its ID + 4 arrives."""
    pair, initiator_sa, responder_sa = established(window=4)
    auth_response = read(responder_sa, pair.wire[3][1], from_initiator=False)
    assert NotifyPayload(NotifyType.SET_WINDOW_SIZE, (4).to_bytes(4, "big")) in auth_response.payloads
    assert initiator_sa.layer.peer_window == 4
    requests = {n: informational(responder_sa, n) for n in range(2, 8)}
    responses: dict[int, bytes] = {}
    for n in (5, 3, 4):  # out of order, 2 still missing
        [responses[n]] = pair.to_responder(requests[n])
    dropped(pair, requests[6], reason="outside the window [2, 6)")
    [responses[2]] = pair.to_responder(requests[2])
    assert responder_sa.layer.next_expected == 6
    for n in (2, 3, 4, 5):
        assert pair.to_responder(requests[n]) == [responses[n]]
    [responses[6]] = pair.to_responder(requests[6])  # 6 >= 2 + 4: the response to 2 may go
    dropped(pair, requests[2], reason="outside the window [7, 11)")  # its response is gone
    for n in (3, 4, 5, 6):  # these four are still kept
        assert pair.to_responder(requests[n]) == [responses[n]]


def test_window_is_one_until_ike_auth_completes() -> None:
    """RFC 7296 §2.3 (row B7): "The window size is always one until the initial exchanges complete":
    an IKE_AUTH request with Message ID 2 is outside the half-open SA's window even with window 4."""
    pair = Pair.create(responder_config(IKE, window_size=4))
    pair.initiate(initiator_settings(IKE))
    pair.pump(drop=lambda data: decode_header(data)[0].exchange_type is ExchangeType.IKE_AUTH)
    [responder_sa] = pair.responder.sas
    assert responder_sa.state is IkeSaState.INIT_DONE and responder_sa.layer.window_size == 1
    auth = next(data for direction, data in pair.wire if decode_header(data)[0].message_id == 1)
    message = read(responder_sa, auth, from_initiator=True)
    moved = attrs.evolve(message.header, message_id=2)
    initiator_keys = sk_keys(responder_sa)[0]
    early = protect(initiator_keys, moved, message.payloads, bytes(initiator_keys.encryption.iv_size))
    dropped(pair, early, reason="outside the window [1, 2)")
    assert pair.to_responder(auth) != []
    assert pair.events(IkeSaEstablished) and responder_sa.layer.window_size == 4


# --------------------------------------------------------------------------- our own requests


def test_initiator_honours_the_peers_window() -> None:
    """RFC 7296 §2.3 (row B7): an endpoint MUST NOT exceed the peer's window; further requests are
    queued and sent as responses come back, with consecutive Message IDs."""
    for window, in_flight in ((1, 1), (4, 4)):
        pair, initiator_sa, _ = established(window=window)
        for _ in range(6):
            pair.initiator.request_liveness_check(initiator_sa.local_spi, pair.now)
        sent = pair.initiator.messages_to_send()
        assert [decode_header(o.data)[0].message_id for o in sent] == list(range(2, 2 + in_flight))
        layer = initiator_sa.layer
        assert len(layer.pending) == in_flight and len(layer.queued) == 6 - in_flight
        pair.deliver(sent, True, None)
        pair.pump()
        # Responses to IKE_SA_INIT (0) and IKE_AUTH (1), then to the six checks.
        assert [e.message_id for e in pair.events(ResponseReceived, "initiator")] == list(range(8))
        assert initiator_sa.layer.pending == {} and not initiator_sa.layer.queued


def test_responder_requests_start_at_message_id_zero() -> None:
    """RFC 7296 §2.2 (row B6): each end counts its own requests; the original responder's first request
    is Message ID 0 and the original initiator expects exactly that (it used to expect 1)."""
    pair, initiator_sa, responder_sa = established()
    assert (initiator_sa.layer.next_expected, responder_sa.layer.next_send_id) == (0, 0)
    pair.responder.request_liveness_check(responder_sa.local_spi, pair.now)
    pair.pump()
    request, response = pair.wire[-2][1], pair.wire[-1][1]
    header = decode_header(request)[0]
    assert (header.message_id, header.is_initiator, header.is_response) == (0, False, False)
    assert read(responder_sa, response, from_initiator=True).header.message_id == 0
    assert pair.events(ResponseReceived)[-1].result == "alive"
    assert (initiator_sa.layer.next_expected, responder_sa.layer.next_send_id) == (1, 1)
    # The initiator's own counter is independent: its next request is still Message ID 2.
    pair.initiator.request_liveness_check(initiator_sa.local_spi, pair.now)
    pair.pump()
    assert decode_header(pair.wire[-2][1])[0].message_id == 2


def test_mismatched_response_keeps_the_request_pending() -> None:
    """RFC 7296 §2.1, §2.2 (row B6): a response with our Message ID but another exchange type matches
    no request; the request stays pending and is still retransmitted."""
    pair, initiator_sa, responder_sa = established()
    pair.initiator.request_liveness_check(initiator_sa.local_spi, pair.now)
    [request] = pair.initiator.messages_to_send()
    wrong = forge(
        responder_sa, ExchangeType.CREATE_CHILD_SA, (), message_id=2, from_initiator=False, is_response=True
    )
    assert pair.to_initiator(wrong) == []
    assert "matches no request" in pair.initiator_events[-1].reason  # type: ignore[union-attr]
    assert list(initiator_sa.layer.pending) == [2]
    pair.initiator.handle_timer(1.0)
    assert [o.data for o in pair.initiator.messages_to_send()] == [request.data]


def test_ike_sa_init_response_with_nonzero_message_id_is_dropped() -> None:
    """RFC 7296 §2.2 (row B6): IKE_SA_INIT messages carry Message ID 0; a response with another ID
    matches no request of ours."""
    pair = Pair.create(responder_config(IKE))
    initiator_sa = pair.initiate(initiator_settings(IKE))
    pair.deliver(pair.initiator.messages_to_send(), True, None)
    [response] = pair.responder.messages_to_send()
    message = decode_message(response.data)
    moved = encode_message(attrs.evolve(message, header=attrs.evolve(message.header, message_id=1)))
    assert pair.to_initiator(moved) == []
    assert initiator_sa.state is IkeSaState.INIT_SENT
    assert pair.initiator_events[-1] == MessageDropped("unexpected IKE_SA_INIT", *initiator_sa.ids)
    [auth] = pair.to_initiator(response.data)
    assert decode_header(auth)[0].exchange_type is ExchangeType.IKE_AUTH


def test_udp_retransmission_backs_off_and_gives_up() -> None:
    """RFC 7296 §2.1, §2.4 (row B8): over UDP the initiator retransmits the same octets after 1, 2, 4 and
    8 s (exponential back-off), and after 5 sends and no answer closes the SA."""
    pair, initiator_sa, _ = established()
    pair.initiator.request_liveness_check(initiator_sa.local_spi, 0.0)
    [first] = pair.initiator.messages_to_send()
    sends = [0.0]
    while (deadline := pair.initiator.get_timer()) is not None:
        pair.initiator.handle_timer(deadline - 0.001)
        assert pair.initiator.messages_to_send() == []
        pair.initiator.handle_timer(deadline)
        out = pair.initiator.messages_to_send()
        if initiator_sa.state is IkeSaState.CLOSED:
            assert out == []
            break
        assert [o.data for o in out] == [first.data]
        sends.append(deadline)
    assert sends == [0.0, 1.0, 3.0, 7.0, 15.0] and len(sends) == RETRANSMIT_TRIES
    assert deadline == 31.0
    pair.drain()
    [closed] = pair.events(IkeSaClosed, "initiator")
    assert "did not answer INFORMATIONAL request 2" in closed.reason
    assert list(pair.initiator.sas) == [] and pair.initiator.get_timer() is None


def test_udp_retransmission_stops_when_the_response_arrives() -> None:
    """RFC 7296 §2.1 (row B8): the initiator keeps the request only until its response arrives."""
    pair, initiator_sa, _ = established()
    pair.initiator.request_liveness_check(initiator_sa.local_spi, 0.0)
    pair.initiator.handle_timer(1.0)
    [original, again] = pair.initiator.messages_to_send()
    assert original.data == again.data
    pair.deliver([again], True, None)
    pair.pump()
    assert initiator_sa.layer.pending == {} and pair.initiator.get_timer() is None
    assert pair.events(ResponseReceived, "initiator")[-1].result == "alive"


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.TLS], ids=lambda t: t.value)
def test_no_retransmission_over_tcp_and_close_at_the_response_timeout(transport: Transport) -> None:
    """RFC 9329 §6.2 (row A39): over TCP the exchange initiator does not retransmit; when no response
    comes in reasonable time (here TCP_RESPONSE_TIMEOUT) the IKE SA is deleted."""
    pair, initiator_sa, _ = established(transport=transport)
    pair.initiator.request_liveness_check(initiator_sa.local_spi, 100.0)
    assert len(pair.initiator.messages_to_send()) == 1
    assert pair.initiator.get_timer() == 100.0 + TCP_RESPONSE_TIMEOUT
    for now in (101.0, 103.0, 107.0, 115.0, 100.0 + TCP_RESPONSE_TIMEOUT - 0.001):
        pair.initiator.handle_timer(now)
        assert pair.initiator.messages_to_send() == []
    assert initiator_sa.state is IkeSaState.ESTABLISHED
    pair.initiator.handle_timer(100.0 + TCP_RESPONSE_TIMEOUT)
    assert pair.initiator.messages_to_send() == []
    pair.drain()
    [closed] = pair.events(IkeSaClosed, "initiator")
    assert "RFC 9329 §6.2" in closed.reason and list(pair.initiator.sas) == []


def test_responder_answers_while_its_own_request_is_outstanding() -> None:
    """RFC 7296 §2.3 (row B7): an endpoint MUST accept and process a request while its own request is
    outstanding (no deadlock)."""
    pair, initiator_sa, responder_sa = established()
    pair.responder.request_liveness_check(responder_sa.local_spi, pair.now)
    own = pair.responder.messages_to_send()
    assert len(own) == 1 and list(responder_sa.layer.pending) == [0]
    [response] = pair.to_responder(informational(responder_sa, 2))
    assert read(responder_sa, response, from_initiator=False).payloads == ()
    pair.deliver(own, False, None)
    pair.pump()
    assert responder_sa.layer.pending == {} and pair.events(ResponseReceived)[-1].result == "alive"
    assert initiator_sa.state is IkeSaState.ESTABLISHED
