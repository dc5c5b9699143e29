"""IKE fragmentation (RFC 7383) through whole exchanges: two endpoints back to back in memory.

Rows of responder-requirements.md section E: E1 (negotiated only when both
sent IKEV2_FRAGMENTATION_SUPPORTED), E2 (a fragmented request gets a
fragmented response), E3 (the SKF structure on the wire), E4 (fragments
checked one by one, incomplete sets dropped after the timeout), E5
(retransmissions repeat every fragment), E6 (IKE_SA_INIT is never
fragmented); and RFC 9329 row A57 (never sent over TCP or TLS, but received).
IKE_AUTH is made large with many traffic selectors; ``fragment_size`` is 576.
"""

from __future__ import annotations

import pytest

from responder.core.config import Config, EspProposal, Limits, TrafficSelectorPolicy
from responder.core.enums import ExchangeType, NotifyType, PayloadType
from responder.core.events import IkeSaEstablished, MessageDropped, RetransmissionAnswered
from responder.core.fragments import split
from responder.core.ike_sa import IkeSa
from responder.core.initiator import ChildRequest
from responder.core.messages import EncryptedFragmentPayload, decode_message
from responder.core.path import Transport
from responder.core.payloads import NotifyPayload
from responder.core.selectors import to_selector
from responder.core.sk_payload import decrypt
from tests.fakes.pair import Pair, forge, initiator_settings, responder_config, sk_keys

SUITE = "aes256gcm16-prfsha256-x25519"
SMALL = Limits(fragment_size=576)
#: 60 IPv4 selectors each way: IKE_AUTH of about 2,100 octets, four or five fragments at 576.
SELECTORS = tuple(to_selector(TrafficSelectorPolicy.parse(f"10.{i}.0.0/16")) for i in range(60))
BIG_CHILD = ChildRequest((EspProposal.parse("aes256gcm16"),), SELECTORS, SELECTORS)


def is_fragment(data: bytes) -> bool:
    """Whether an IKE message's first payload is an SKF (RFC 7383 §2.5: Next Payload 53)."""
    return data[16] == PayloadType.SKF


def notify_types(data: bytes) -> set[NotifyType]:
    return {p.notify_type for p in decode_message(data).payloads if isinstance(p, NotifyPayload)}


def pair(
    transport: Transport = Transport.UDP,
    *,
    responder: Limits = SMALL,
    initiator: Limits = SMALL,
    enabled: bool = True,
) -> Pair:
    config = responder_config(SUITE, limits=responder, fragmentation=enabled)
    return Pair.create(config, transport=transport, initiator_config=Config(limits=initiator))


def start(p: Pair, *, offer: bool = True) -> tuple[IkeSa, list[bytes]]:
    """IKE_SA_INIT done: the initiator's SA and its IKE_AUTH request (one message or its fragments),
    not delivered."""
    sa = p.initiate(initiator_settings(SUITE, BIG_CHILD, fragmentation=offer))
    [request] = p.initiator.messages_to_send()
    [response] = p.to_responder(request.data)
    return sa, p.to_initiator(response)


def refragment(sa: IkeSa, whole: bytes, budget: int) -> list[bytes]:
    """The initiator's whole protected message cut into fragments of at most ``budget`` octets."""
    protection = sk_keys(sa)[0]
    opened = decrypt(protection, whole)
    header = decode_message(whole).header
    fragments = split(protection, header, opened.first_inner, opened.plaintext, budget, bytes)
    assert fragments is not None
    return list(fragments)


# ----------------------------------------------------------------------------- E1, E6: negotiation


@pytest.mark.parametrize(
    ("offer", "enabled", "negotiated"), [(True, True, True), (False, True, False), (True, False, False)]
)
def test_fragmentation_is_negotiated_only_when_both_send_the_notify_row_e1(
    offer: bool, enabled: bool, negotiated: bool
) -> None:
    """Row E1 (RFC 7383 §2.3): the responder answers IKEV2_FRAGMENTATION_SUPPORTED only if the
    initiator sent it and ``fragmentation`` is on; both SAs agree on the outcome."""
    p = pair(enabled=enabled)
    sa = p.initiate(initiator_settings(SUITE, BIG_CHILD, fragmentation=offer))
    [request] = p.initiator.messages_to_send()
    assert (NotifyType.IKEV2_FRAGMENTATION_SUPPORTED in notify_types(request.data)) is offer
    [response] = p.to_responder(request.data)
    assert (NotifyType.IKEV2_FRAGMENTATION_SUPPORTED in notify_types(response)) is negotiated
    p.to_initiator(response)
    responder_sa = p.responder.sa(sa.spi_r)
    assert responder_sa is not None
    assert responder_sa.layer.fragmentation is negotiated
    assert sa.layer.fragmentation is negotiated


def test_ike_auth_is_fragmented_both_ways_over_udp_rows_e2_e3_e6() -> None:
    """Rows E2, E3, E6: with a 576-octet fragment size, IKE_SA_INIT goes whole; the IKE_AUTH request
    and its response go as SKF fragments of at most 576 - 20 - 8 octets (port 500: no marker), are
    reassembled, and the IKE SA comes up."""
    p = pair()
    sa = p.initiate(initiator_settings(SUITE, BIG_CHILD, fragmentation=True))
    p.pump()
    assert p.events(IkeSaEstablished) and p.events(IkeSaEstablished, "initiator")
    (_, init_request), (_, init_response), *auth = p.wire
    assert not is_fragment(init_request) and not is_fragment(init_response)  # E6
    requests = [data for direction, data in auth if direction == "i->r"]
    responses = [data for direction, data in auth if direction == "r->i"]
    assert len(requests) >= 3 and len(responses) >= 3
    for fragments in (requests, responses):
        assert all(is_fragment(data) and len(data) <= 576 - 28 for data in fragments)
        numbers = []
        for data in fragments:
            skf = decode_message(data).payloads[-1]
            assert isinstance(skf, EncryptedFragmentPayload)
            assert skf.total_fragments == len(fragments)
            numbers.append(skf.fragment_number)
        assert numbers == list(range(1, len(fragments) + 1))
    responder_sa = p.responder.sa(sa.spi_r)
    assert responder_sa is not None and responder_sa.layer.reassembly is not None
    assert responder_sa.layer.reassembly.reassembled == 1
    assert sa.layer.reassembly is not None and sa.layer.reassembly.reassembled == 1
    assert not p.events(MessageDropped)


def test_without_negotiation_large_messages_go_whole() -> None:
    """Row E1: no IKEV2_FRAGMENTATION_SUPPORTED from the initiator, no fragments from either end."""
    p = pair()
    p.initiate(initiator_settings(SUITE, BIG_CHILD))
    p.pump()
    assert p.events(IkeSaEstablished)
    assert not any(is_fragment(data) for _, data in p.wire)
    assert max(len(data) for _, data in p.wire) > 1500


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.TLS])
def test_no_fragment_is_ever_sent_over_streams_even_when_negotiated_row_a57(transport: Transport) -> None:
    """Row A57 (RFC 9329 §7.5): negotiated over TCP/TLS, but every message goes whole."""
    p = pair(transport)
    sa = p.initiate(initiator_settings(SUITE, BIG_CHILD, fragmentation=True))
    p.pump()
    assert p.events(IkeSaEstablished)
    assert sa.layer.fragmentation
    assert not any(is_fragment(data) for _, data in p.wire)
    assert len(p.wire) == 4


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.UDP])
def test_fragments_are_received_on_any_transport_row_a57(transport: Transport) -> None:
    """Row A57: an implementation "MUST support receiving them" over TCP too.  The initiator's
    whole IKE_AUTH request is refragmented by the test and handed over in reverse order."""
    p = pair(transport)
    sa, out = start(p)
    fragments = refragment(sa, out[0], 500) if transport.is_stream else out
    assert len(fragments) > 2
    answers: list[bytes] = []
    for data in reversed(fragments):
        answers += p.to_responder(data)
    assert p.events(IkeSaEstablished)
    assert answers and all(is_fragment(a) for a in answers) is (not transport.is_stream)


# ----------------------------------------------------------------------------- E4: checks, timeout


def test_fragments_on_an_sa_that_did_not_negotiate_are_dropped_row_e1() -> None:
    """Row E1: an SKF on an IKE SA without IKEV2_FRAGMENTATION_SUPPORTED is dropped, unanswered."""
    p = pair()
    sa, [whole] = start(p, offer=False)
    fragments = refragment(sa, whole, 500)
    for data in fragments:
        assert p.to_responder(data) == []
    drops = p.events(MessageDropped)
    assert len(drops) == len(fragments) and "not negotiated" in drops[0].reason
    assert not p.events(IkeSaEstablished)


def test_a_forged_fragment_is_dropped_and_the_set_still_completes_row_e4() -> None:
    """Row E4: a fragment whose ICV fails is discarded before it is kept; the genuine one that
    follows completes the message."""
    p = pair()
    _, fragments = start(p)
    forged = bytearray(fragments[1])
    forged[-1] ^= 0xFF
    for data in [fragments[0], bytes(forged), *fragments[1:]]:
        p.to_responder(data)
    [drop] = p.events(MessageDropped)
    assert not drop.authenticated and "IKE fragment 2/" in drop.reason
    assert p.events(IkeSaEstablished)


def test_an_incomplete_request_is_forgotten_after_the_reassembly_timeout_row_e4() -> None:
    """Row E4 (RFC 7383 §2.6): the responder "acts as if no request message was received": the set
    is dropped at ``reassembly_timeout`` (a timer of the core), and the retransmission completes."""
    limits = Limits(fragment_size=576, reassembly_timeout=5.0)
    p = pair(responder=limits)
    sa, fragments = start(p)
    for data in fragments[:-1]:
        assert p.to_responder(data) == []
    assert p.responder.get_timer() == 5.0
    p.now = 5.0
    p.responder.handle_timer(p.now)
    p.drain()
    [expired] = p.events(MessageDropped)
    assert f"{len(fragments) - 1} of {len(fragments)} IKE fragments after 5 s" in expired.reason
    responder_sa = p.responder.sa(sa.spi_r)
    assert responder_sa is not None and responder_sa.layer.reassembly is not None
    assert len(responder_sa.layer.reassembly) == 0
    # The last fragment alone no longer completes anything; the whole set again does.
    assert p.to_responder(fragments[-1]) == []
    for data in fragments[:-1]:
        p.to_responder(data)
    assert p.events(IkeSaEstablished)


# ----------------------------------------------------------------------------- E5: retransmissions


def test_retransmitted_fragments_repeat_the_whole_response_once_row_e5() -> None:
    """Row E5 (RFC 7383 §2.6.1): the initiator's retransmission repeats every fragment of its
    request; the responder answers fragment 1 with every fragment of its stored response and
    ignores the others."""
    p = pair()
    _, fragments = start(p)
    response: list[bytes] = []
    for data in fragments:
        response += p.to_responder(data)
    assert len(response) > 1 and p.events(IkeSaEstablished)
    p.now = 1.0  # the response was lost: the initiator retransmits at 1 s (RFC 7296 §2.1)
    p.initiator.handle_timer(p.now)
    again = [out.data for out in p.initiator.messages_to_send()]
    assert again == fragments  # bitwise the same fragments
    answers = [p.to_responder(data) for data in again]
    assert answers[0] == response
    assert all(answer == [] for answer in answers[1:])
    assert len(p.events(RetransmissionAnswered)) == 1
    for data in response:
        p.to_initiator(data)
    assert p.events(IkeSaEstablished, "initiator")


def test_a_refragmented_retransmission_is_recognised_by_its_authenticated_fragment_1() -> None:
    """RFC 7383 §2.6.1, §2.5.2: a retransmission cut with another fragment size (another Total
    Fragments) is not bitwise the same, but its fragment 1 authenticates under an answered Message
    ID: the stored response goes out again."""
    p = pair()
    sa, fragments = start(p)
    response: list[bytes] = []
    for data in fragments:
        response += p.to_responder(data)
    protection = sk_keys(sa)[0]
    chunks = b"".join(decrypt(protection, data).plaintext for data in fragments)
    header = decode_message(fragments[0]).header
    smaller = split(protection, header, PayloadType.IDi, chunks, 300, lambda n: b"\x07" * n)
    assert smaller is not None and len(smaller) > len(fragments)
    assert p.to_responder(smaller[0]) == response
    assert p.to_responder(smaller[1]) == []


def test_an_unfragmented_copy_of_an_answered_fragmented_request_is_dropped() -> None:
    """A whole message under the Message ID of a request answered in fragments is not a bitwise
    copy of anything we stored: it is dropped as another request under that Message ID."""
    p = pair()
    sa, fragments = start(p)
    for data in fragments:
        p.to_responder(data)
    assert p.to_responder(forge(sa, ExchangeType.IKE_AUTH, (), message_id=1)) == []
    assert "answered for another request" in p.events(MessageDropped)[-1].reason
