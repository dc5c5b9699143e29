"""The message layer alone: windows, the response store, retransmission, protection, switching keys.

Two layers face each other with fixed keys and explicit ``now``; the exchange
objects they hold are plain strings (the layer is generic in them).  RFC 7296
§2.1-§2.3 and RFC 9329 §6.2 (rows B4, B6, B7, A39), and the seams the
exchanges above rely on: plaintext beside payloads (RFC 9242 IntAuth), a list
of packets per message (RFC 7383 fragments), keys switched between messages
(RFC 9370).
"""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from responder.core.config import Limits
from responder.core.enums import EncrId, ExchangeType, NotifyType, PayloadType
from responder.core.errors import DecodeError, IntegrityCheckFailed, LocalError
from responder.core.message_layer import (
    RETRANSMIT_TRIES,
    TCP_RESPONSE_TIMEOUT,
    FragmentNotice,
    GiveUp,
    Malformed,
    MessageLayer,
    Received,
    Retransmit,
)
from responder.core.messages import Header, encode_payloads
from responder.core.path import Path, Transport
from responder.core.payloads import NotifyPayload
from responder.core.sk_payload import SkProtection, protect_bytes
from responder.core.transforms import encryption
from tests.fakes.pair import seeded

PATH = Path(Transport.UDP, ip_address("192.0.2.2"), 500, ip_address("192.0.2.1"), 500)
NOTIFY = (NotifyPayload(NotifyType.SET_WINDOW_SIZE, (4).to_bytes(4, "big")),)


def keys(tag: int) -> SkProtection:
    return SkProtection.create(encryption(EncrId.AES_GCM_16, 128), None, bytes([tag]) * 20)


def layers(tag: int = 1) -> tuple[MessageLayer[str], MessageLayer[str]]:
    """(initiator's, responder's) layers: the initiator sends with keys(tag), the responder with tag+1."""
    initiator: MessageLayer[str] = MessageLayer(seeded(1))
    responder: MessageLayer[str] = MessageLayer(seeded(2))
    initiator.install_keys(keys(tag + 1), keys(tag))
    responder.install_keys(keys(tag), keys(tag + 1))
    return initiator, responder


def header(message_id: int, *, response: bool = False) -> Header:
    return Header(
        spi_i=b"\x01" * 8,
        spi_r=b"\x02" * 8,
        exchange_type=ExchangeType.INFORMATIONAL,
        is_initiator=not response,
        is_response=response,
        message_id=message_id,
    )


def request(layer: MessageLayer[str], message_id: int, now: float = 0.0) -> bytes:
    [packet] = layer.send(message_id, f"exchange {message_id}", header(message_id), NOTIFY, now).packets
    return packet


def take(layer: MessageLayer[str], data: bytes) -> Received:
    opened = layer.open(data, PATH)
    assert isinstance(opened, Received)
    assert layer.request_status(opened.header.message_id) is None
    layer.begin(opened.header.message_id, data)
    return opened


def test_open_gives_the_payloads_and_the_plaintext_they_came_from() -> None:
    """RFC 9242 §3.3.2 signs the inner payloads' octets: the layer hands them out beside the payloads."""
    initiator, responder = layers()
    sent = initiator.send(0, "exchange", header(0), NOTIFY, 0.0)
    opened = take(responder, sent.packets[0])
    assert opened.message.payloads == NOTIFY and opened.path == PATH
    assert opened.plaintext == sent.plaintext == encode_payloads(NOTIFY)[1]
    # IntAuth's A chunk: the IKE header and the Encrypted payload's generic header (no IV).
    assert opened.aad == sent.aad == sent.packets[0][:32]
    length = int.from_bytes(opened.aad[24:28], "big")
    assert opened.aad[16] == PayloadType.SK and length == len(sent.packets[0])


def test_open_tells_unauthenticated_from_authenticated_but_malformed() -> None:
    """RFC 7296 §2.21.2: a failed ICV raises (never answered); a good ICV around bad payloads is Malformed."""
    initiator, responder = layers()
    data = request(initiator, 0)
    with pytest.raises(IntegrityCheckFailed):
        responder.open(data[:-1] + bytes([data[-1] ^ 1]), PATH)
    garbage = protect_bytes(keys(1), header(0), PayloadType.NOTIFY, b"\x00\x00\x00\x09xx", bytes(8))
    opened = responder.open(garbage, PATH)
    assert isinstance(opened, Malformed) and opened.header == header(0)
    with pytest.raises(DecodeError):
        responder.open(data[:28], PATH)  # not even an Encrypted payload


def test_a_copy_of_an_answered_request_gets_the_stored_packets_only_if_bitwise_identical() -> None:
    """RFC 7296 §2.1 (row B4): the response is stored with a hash of its request; a copy is
    recognised before decryption; another request under the same Message ID is not."""
    initiator, responder = layers()
    data = request(initiator, 0)
    take(responder, data)
    sent = responder.answer(header(0), header(0, response=True), ())
    assert responder.stored_response(0, data) == sent.packets and len(sent.packets) == 1
    other = request(initiator, 0, now=1.0)  # same Message ID, another IV: other octets
    assert other != data and responder.stored_response(0, other) is None
    assert responder.request_status(0) == "request Message ID 0 was answered for another request"
    assert responder.next_expected == 1


def test_the_window_moves_and_old_responses_go() -> None:
    """RFC 7296 §2.3 (row B7): window 2 takes two requests at once; a response is forgotten when a
    request at its Message ID plus the window arrives."""
    initiator, responder = layers()
    responder.window_size = 2
    initiator.peer_window = 2
    copies = {n: request(initiator, n) for n in range(4)}
    assert responder.request_status(2) == "request Message ID 2 outside the window [0, 2)"
    for n in (1, 0):  # out of order
        take(responder, copies[n])
        responder.answer(header(n), header(n, response=True), ())
    assert responder.next_expected == 2
    take(responder, copies[2])  # 2 >= 0 + 2: the response to 0 may go
    assert responder.stored_response(0, copies[0]) is None
    assert responder.stored_response(1, copies[1]) is not None


def test_a_request_being_answered_is_not_taken_twice() -> None:
    """A deferred answer: a copy of the request meanwhile is recognised and ignored."""
    initiator, responder = layers()
    data = request(initiator, 0)
    take(responder, data)
    assert responder.being_answered(0, data)
    assert responder.request_status(0) == "request Message ID 0 is being answered for another request"
    responder.answer(header(0), header(0, response=True), ())
    assert not responder.being_answered(0, data)
    with pytest.raises(LocalError):
        responder.answer(header(5), header(5, response=True), ())  # never taken


def test_a_copy_is_answered_after_the_keys_were_switched() -> None:
    """RFC 9370 §2.2.2: keys may change after a response; the peer's retransmission of the request
    (still under the old keys) must get the stored response, not be taken for junk."""
    initiator, responder = layers(1)
    data = request(initiator, 0)
    take(responder, data)
    sent = responder.answer(header(0), header(0, response=True), ())
    responder.install_keys(keys(7), keys(8))
    assert responder.stored_response(0, data) == sent.packets
    with pytest.raises(IntegrityCheckFailed):
        responder.open(request(initiator, 1), PATH)  # new requests need the new keys


def test_our_requests_wait_for_the_peers_window_and_take_consecutive_ids() -> None:
    """RFC 7296 §2.3: no more requests in flight than the peer's window; the rest wait, in order."""
    initiator, _ = layers()
    for name in "abc":
        initiator.enqueue(name)
    assert initiator.next_to_send() == (0, "a")
    initiator.send(0, "a", header(0), (), 0.0)
    assert initiator.next_to_send() is None  # window 1
    assert initiator.response_to(header(0, response=True)) is not None
    assert initiator.next_to_send() == (1, "b")


def test_a_response_must_match_message_id_and_exchange() -> None:
    initiator, _ = layers()
    initiator.send(0, "a", header(0), (), 0.0)
    wrong = Header(
        spi_i=b"\x01" * 8,
        spi_r=b"\x02" * 8,
        exchange_type=ExchangeType.CREATE_CHILD_SA,
        is_initiator=False,
        is_response=True,
        message_id=0,
    )
    assert initiator.response_to(wrong) is None and 0 in initiator.pending
    assert initiator.response_to(header(1, response=True)) is None
    pending = initiator.response_to(header(0, response=True))
    assert pending is not None and pending.exchange == "a" and not initiator.pending


def test_udp_retransmits_the_same_packets_with_backoff_then_gives_up() -> None:
    """RFC 7296 §2.1 (row B8): bitwise identical retransmissions after 1, 2, 4, 8 s; given up after 16."""
    initiator, _ = layers()
    [packet] = initiator.send(0, "a", header(0), (), 0.0).packets
    now, resent = 0.0, 0
    while (deadline := initiator.get_timer(stream=False)) is not None:
        now = deadline
        for action in initiator.handle_timer(now, stream=False):
            if isinstance(action, Retransmit):
                assert action.packets == (packet,)
                resent += 1
            else:
                assert isinstance(action, GiveUp) and action.request.exchange == "a"
    assert (resent, now) == (RETRANSMIT_TRIES - 1, 31.0)
    assert not initiator.pending


def test_streams_never_retransmit_and_give_up_at_the_response_timeout() -> None:
    """RFC 9329 §6.2 (row A39): over TCP a request is sent once; no response by the timeout ends it."""
    initiator, _ = layers()
    initiator.send(0, "a", header(0), (), 5.0)
    assert initiator.get_timer(stream=True) == 5.0 + TCP_RESPONSE_TIMEOUT
    assert initiator.handle_timer(5.0 + TCP_RESPONSE_TIMEOUT - 1, stream=True) == []
    [action] = initiator.handle_timer(5.0 + TCP_RESPONSE_TIMEOUT, stream=True)
    assert isinstance(action, GiveUp) and initiator.get_timer(stream=True) is None


def test_abandon_all_returns_every_exchange_sent_or_queued() -> None:
    initiator, _ = layers()
    initiator.send(0, "sent", header(0), (), 0.0)
    initiator.enqueue("queued")
    assert initiator.abandon_all() == ["sent", "queued"]
    assert not initiator.pending and not initiator.queued and initiator.get_timer(stream=False) is None


# ----------------------------------------------------------------------------- RFC 7383 fragments

SMALL = Limits(fragment_size=300)
BIG = (NotifyPayload(NotifyType.SET_WINDOW_SIZE, bytes(700)),)  # an inner chain of some 700 octets
TCP = Path(Transport.TCP, ip_address("192.0.2.2"), 4500, ip_address("192.0.2.1"), 40000, 1)


def fragmenting_layers() -> tuple[MessageLayer[str], MessageLayer[str]]:
    initiator, responder = layers()
    initiator.enable_fragmentation(SMALL)
    responder.enable_fragmentation(SMALL)
    return initiator, responder


def test_our_request_is_fragmented_over_udp_only_and_retransmitted_whole_rows_e3_e5_a57() -> None:
    """Rows E3, E5, A57: negotiated, a request too big for 300 octets goes as fragments over UDP,
    and its retransmission repeats every one; over TCP the same request goes whole."""
    initiator, _ = fragmenting_layers()
    sent = initiator.send(0, "big", header(0), BIG, 0.0, PATH)
    assert len(sent.packets) > 2 and all(len(p) <= 300 - 28 for p in sent.packets)
    # RFC 9242 §3.3.2 signs the whole message's header: Next Payload SK, not the SKF on the wire.
    assert len(sent.aad) == 32 and sent.aad[16] == PayloadType.SK and sent.packets[0][16] == PayloadType.SKF
    [retransmit] = initiator.handle_timer(1.0, stream=False)
    assert isinstance(retransmit, Retransmit) and retransmit.packets == sent.packets
    assert len(initiator.send(1, "big", header(1), BIG, 0.0, TCP).packets) == 1


def test_a_fragmented_request_is_answered_and_its_fragment_1_gets_every_response_fragment_row_e5() -> None:
    """Row E5 (RFC 7383 §2.6.1): the stored response keeps every fragment; a bitwise copy of
    fragment 1 is recognised before decryption, a copy of another fragment is not, and once
    authenticated it is ignored."""
    initiator, responder = fragmenting_layers()
    fragments = initiator.send(0, "big", header(0), BIG, 0.0, PATH).packets
    results = [responder.open(data, PATH, 0.0) for data in fragments]
    assert all(isinstance(r, FragmentNotice) and r.kept for r in results[:-1])
    request = results[-1]
    assert isinstance(request, Received) and request.message.payloads == BIG
    assert request.data == fragments[0]
    responder.begin(0, request.data)
    response = responder.answer(request.header, header(0, response=True), BIG, PATH)
    assert len(response.packets) > 2
    assert responder.stored_response(0, fragments[0]) == response.packets
    assert responder.stored_response(0, fragments[1]) is None
    late = responder.open(fragments[1], PATH, 2.0)
    assert isinstance(late, FragmentNotice) and late.authenticated and not late.kept
    for data in response.packets:
        opened = initiator.open(data, PATH, 0.0)
    assert isinstance(opened, Received) and opened.message.payloads == BIG


def test_fragments_of_a_response_to_nothing_are_dropped_after_their_icv() -> None:
    initiator, responder = fragmenting_layers()
    responder.begin(0, b"request")
    fragments = responder.answer(header(0), header(0, response=True), BIG, PATH).packets
    notice = initiator.open(fragments[0], PATH, 0.0)
    assert isinstance(notice, FragmentNotice) and notice.authenticated
    assert "response to no request" in notice.reason


def test_fragments_without_negotiation_are_dropped_unauthenticated_row_e1() -> None:
    initiator, responder = layers()
    initiator.enable_fragmentation(SMALL)
    fragments = initiator.send(0, "big", header(0), BIG, 0.0, PATH).packets
    notice = responder.open(fragments[0], PATH, 0.0)
    assert isinstance(notice, FragmentNotice) and not notice.authenticated and not notice.kept
