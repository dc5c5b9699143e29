"""INFORMATIONAL exchanges and the Child SA limit, responder side, with explicit ``now``.

Each test names the RFC 7296 section (or RFC 9329 row) and the requirement row it checks.
Requests the initiator's API cannot send (Deletes of Child SAs, odd payloads) are forged with
the SA's own keys (:func:`tests.fakes.pair.forge`), so they pass the ICV and reach the handlers.
"""

from __future__ import annotations

import attrs
import pytest

from responder.core.config import ChildConfig, EspProposal, IdPattern, Limits, PeerConfig
from responder.core.enums import (
    EncrId,
    EsnId,
    ExchangeType,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformType,
)
from responder.core.errors import DecodeError
from responder.core.events import (
    ChildSaDeleted,
    ChildSaEstablished,
    IkeSaClosed,
    MessageDropped,
    RequestAnswered,
    ResponseReceived,
)
from responder.core.exchanges.base import Done, NextRound
from responder.core.exchanges.informational import LivenessCheck
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.instant import Instant
from responder.core.message_layer import Received
from responder.core.messages import Header, Message, decode_message, encode_message, encode_payloads
from responder.core.path import Transport
from responder.core.payloads import (
    DeletePayload,
    NoncePayload,
    NotifyPayload,
    OpaquePayload,
    Payload,
    Proposal,
    SaPayload,
    Transform,
    TransformAttribute,
    TsiPayload,
    TsrPayload,
    VendorIdPayload,
)
from responder.core.sk_payload import protect_bytes
from tests.fakes.pair import (
    PSK,
    RESPONDER_ID,
    Pair,
    any_selectors,
    child_request,
    forge,
    initiator_settings,
    read,
    responder_config,
    sk_keys,
)

IKE = "aes256gcm16-prfsha256-x25519"


def established(transport: Transport = Transport.UDP, **config: object) -> tuple[Pair, IkeSa, IkeSa]:
    """An IKE SA with one Child SA; returns the pair, the initiator's SA and the responder's SA."""
    child = ChildConfig("net", esp_proposals=(EspProposal.parse("aes256gcm16"),))
    peers = (
        PeerConfig(
            "alice", IdPattern.parse("alice@example.org"), PSK, local_id=RESPONDER_ID, children=(child,)
        ),
    )
    pair = Pair.create(responder_config(IKE, peers=peers, **config), transport=transport)
    initiator_sa = pair.initiate(initiator_settings(IKE, child_request()))
    pair.pump()
    [responder_sa] = pair.responder.sas
    assert responder_sa.state is IkeSaState.ESTABLISHED and initiator_sa.state is IkeSaState.ESTABLISHED
    return pair, initiator_sa, responder_sa


def ask(pair: Pair, sa: IkeSa, exchange: ExchangeType, *payloads: Payload) -> Message:
    """Send a forged request with the next Message ID; return the one (protected) response, opened."""
    request = forge(sa, exchange, payloads, message_id=sa.layer.next_expected)
    [response] = pair.to_responder(request)
    message = read(sa, response, from_initiator=False)
    header = message.header
    assert (header.is_response, header.is_initiator, header.exchange_type) == (True, False, exchange)
    assert header.message_id == decode_message(request).header.message_id
    return message


def test_liveness_check_gets_empty_response() -> None:
    """RFC 7296 §1.4, §2.4 (row B8, B1): an empty INFORMATIONAL request gets an empty, protected response."""
    pair, initiator_sa, responder_sa = established()
    pair.initiator.request_liveness_check(initiator_sa.local_spi, pair.now)
    pair.pump()
    request, response = pair.wire[-2][1], pair.wire[-1][1]
    assert read(responder_sa, request, from_initiator=True).payloads == ()
    opened = read(responder_sa, response, from_initiator=False)
    assert opened.payloads == () and opened.header.is_response and opened.header.message_id == 2
    assert pair.events(RequestAnswered)[-1].result == "liveness check"
    assert pair.events(ResponseReceived, "initiator")[-1].result == "alive"
    assert responder_sa.state is IkeSaState.ESTABLISHED


def test_delete_child_sa_answers_with_our_inbound_spi() -> None:
    """RFC 7296 §1.4.1 (row B25): Delete(ESP, the initiator's inbound SPI) closes both directions of the
    pair; the response lists the responder's inbound SPI of that pair; ChildSaDeleted is emitted."""
    pair, _, responder_sa = established()
    [theirs] = pair.events(ChildSaEstablished, "initiator")
    [ours] = pair.events(ChildSaEstablished, "responder")
    response = ask(
        pair,
        responder_sa,
        ExchangeType.INFORMATIONAL,
        DeletePayload(ProtocolId.ESP, 4, (theirs.inbound_spi,)),
    )
    assert response.payloads == (DeletePayload(ProtocolId.ESP, 4, (ours.inbound_spi,)),)
    [deleted] = pair.events(ChildSaDeleted)
    assert (deleted.inbound_spi, deleted.outbound_spi) == (ours.inbound_spi, ours.outbound_spi)
    assert responder_sa.children == {} and responder_sa.state is IkeSaState.ESTABLISHED


def test_delete_of_known_and_unknown_spis_lists_only_known() -> None:
    """RFC 7296 §1.4.1 (row B25): SPIs we do not know are ignored; the known one is answered."""
    pair, _, responder_sa = established()
    [theirs] = pair.events(ChildSaEstablished, "initiator")
    [ours] = pair.events(ChildSaEstablished, "responder")
    delete = DeletePayload(ProtocolId.ESP, 4, (b"\xde\xad\xbe\xef", theirs.inbound_spi, theirs.inbound_spi))
    response = ask(pair, responder_sa, ExchangeType.INFORMATIONAL, delete)
    assert response.payloads == (DeletePayload(ProtocolId.ESP, 4, (ours.inbound_spi,)),)
    assert len(pair.events(ChildSaDeleted)) == 1


def test_delete_with_unknown_spi_is_ignored() -> None:
    """RFC 7296 §1.4.1 (row B25): a Delete naming no SA of ours gets an empty response and changes nothing."""
    pair, _, responder_sa = established()
    response = ask(
        pair,
        responder_sa,
        ExchangeType.INFORMATIONAL,
        DeletePayload(ProtocolId.ESP, 4, (b"\x00\x00\x12\x34",)),
    )
    assert response.payloads == ()
    assert pair.events(ChildSaDeleted) == [] and len(responder_sa.children) == 1
    assert pair.events(RequestAnswered)[-1].result == "Delete of unknown SPIs ignored"


def test_delete_of_ike_sa_closes_it() -> None:
    """RFC 7296 §1.4.1 (row B25): Delete of the IKE SA gets an empty response; the SA and its Child SAs
    are gone (IkeSaClosed, no longer in the endpoint), and a retransmitted Delete is dropped."""
    pair, initiator_sa, responder_sa = established()
    pair.initiator.request_delete(initiator_sa.local_spi, pair.now)
    pair.pump()
    request, response = pair.wire[-2][1], pair.wire[-1][1]
    assert read(responder_sa, request, from_initiator=True).payloads == (DeletePayload(ProtocolId.IKE, 0),)
    assert read(responder_sa, response, from_initiator=False).payloads == ()
    [closed] = pair.events(IkeSaClosed)
    assert "deleted by the peer" in closed.reason
    assert responder_sa.state is IkeSaState.CLOSED and list(pair.responder.sas) == []
    assert initiator_sa.state is IkeSaState.CLOSED and list(pair.initiator.sas) == []
    assert pair.to_responder(request) == []
    assert "unknown SPIs" in pair.events(MessageDropped)[-1].reason


@pytest.mark.parametrize(
    "notify_type",
    [NotifyType(40000), NotifyType(8000), NotifyType.INITIAL_CONTACT],
    ids=lambda n: n.name,
)
def test_notifies_in_a_request_are_ignored(notify_type: NotifyType) -> None:
    """RFC 7296 §3.10.1 (row B8): unrecognised error types in a request, and status types, MUST be
    ignored; the request still gets its (empty) response and the SA stays up.  (AUTHENTICATION_FAILED
    reported in an INFORMATIONAL, §2.21.2, is a different case: see the next test.)"""
    pair, _, responder_sa = established()
    response = ask(pair, responder_sa, ExchangeType.INFORMATIONAL, NotifyPayload(notify_type, b"\x01\x02"))
    assert response.payloads == ()
    assert responder_sa.state is IkeSaState.ESTABLISHED


def test_authentication_failed_from_the_initiator_ends_the_sa() -> None:
    """RFC 7296 §2.21.2: an initiator that rejects our IKE_AUTH response reports AUTHENTICATION_FAILED
    in a separate INFORMATIONAL; the request is answered and the IKE SA is gone."""
    pair, _, responder_sa = established()
    response = ask(
        pair, responder_sa, ExchangeType.INFORMATIONAL, NotifyPayload(NotifyType.AUTHENTICATION_FAILED)
    )
    assert response.payloads == ()
    assert responder_sa.state is IkeSaState.CLOSED
    assert "AUTHENTICATION_FAILED" in pair.events(IkeSaClosed)[-1].reason
    assert pair.responder.sa(responder_sa.spi_r) is None


def test_unknown_payload_without_critical_bit_is_ignored() -> None:
    """RFC 7296 §2.5, §3.2 (row B2): an unknown payload without the critical bit is skipped."""
    pair, _, responder_sa = established()
    response = ask(
        pair,
        responder_sa,
        ExchangeType.INFORMATIONAL,
        OpaquePayload(PayloadType(200), b"xyz"),
        VendorIdPayload(b"v"),
    )
    assert response.payloads == ()
    assert responder_sa.state is IkeSaState.ESTABLISHED


def forge_raw(sa: IkeSa, message_id: int, first_inner: PayloadType, inner: bytes) -> bytes:
    """An INFORMATIONAL request whose inner payload octets are given as is (protected with the SA's keys)."""
    header = Header(
        spi_i=sa.spi_i,
        spi_r=sa.spi_r,
        exchange_type=ExchangeType.INFORMATIONAL,
        is_initiator=True,
        is_response=False,
        message_id=message_id,
    )
    protection = sk_keys(sa)[0]
    return protect_bytes(protection, header, first_inner, inner, bytes(protection.encryption.iv_size))


def test_unsupported_critical_payload_is_answered_protected() -> None:
    """RFC 7296 §2.5, §3.10.1 (row B2, B26): a request with an unknown critical payload is rejected in
    its entirety with a protected UNSUPPORTED_CRITICAL_PAYLOAD whose data is the payload type.

    After IKE_AUTH the RFC does not make this error fatal (only §2.21.2, for IKE_AUTH and the
    INFORMATIONAL right after it), so the SA stays up and the next request is answered.
    """
    pair, _, responder_sa = established()
    unknown = bytes([PayloadType.NONE, 0x80, 0, 7]) + b"abc"  # type 200, critical, 3 octets of body
    [response] = pair.to_responder(forge_raw(responder_sa, 2, PayloadType(200), unknown))
    opened = read(responder_sa, response, from_initiator=False)
    assert opened.header.message_id == 2 and opened.header.is_response
    assert opened.payloads == (NotifyPayload(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, bytes([200])),)
    assert responder_sa.state is IkeSaState.ESTABLISHED
    assert ask(pair, responder_sa, ExchangeType.INFORMATIONAL).payloads == ()


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP], ids=lambda t: t.value)
def test_malformed_payload_inside_sk_is_answered_invalid_syntax(transport: Transport) -> None:
    """RFC 7296 §2.21.3, §3.10.1 (row B26), RFC 9329 §6 (row A34): an authenticated request that does
    not parse gets a protected INVALID_SYNTAX, which is fatal: the IKE SA is deleted without a Delete.
    (The brief cites §2.21.4, which is about messages outside any IKE SA; §2.21.3 is the rule here.)"""
    pair, _, responder_sa = established(transport)
    _, inner = encode_payloads((DeletePayload(ProtocolId.ESP, 4, (b"\x00\x00\x12\x34",)),))
    broken = inner[:-2]  # the Delete says one 4-octet SPI, two octets follow
    broken = broken[:2] + len(broken).to_bytes(2, "big") + broken[4:]
    [response] = pair.to_responder(forge_raw(responder_sa, 2, PayloadType.DELETE, broken))
    opened = read(responder_sa, response, from_initiator=False)
    assert opened.payloads == (NotifyPayload(NotifyType.INVALID_SYNTAX),)
    assert opened.header.message_id == 2 and opened.header.exchange_type is ExchangeType.INFORMATIONAL
    assert responder_sa.state is IkeSaState.CLOSED and list(pair.responder.sas) == []
    assert "INVALID_SYNTAX" in pair.events(IkeSaClosed)[0].reason


def test_unauthenticated_messages_never_get_invalid_syntax() -> None:
    """RFC 7296 §2.21.2, §3.10.1 (INVALID_SYNTAX only "if the Message ID and cryptographic checksum were
    valid"), §2.4 (row B8, B26): junk with the SA's SPIs and the expected Message ID (no Encrypted
    payload, a broken outer chain, a bad ICV) is dropped unanswered and the SA stays up."""
    pair, _, responder_sa = established()
    header = Header(
        spi_i=responder_sa.spi_i,
        spi_r=responder_sa.spi_r,
        exchange_type=ExchangeType.INFORMATIONAL,
        is_initiator=True,
        is_response=False,
        message_id=2,
    )
    good = forge(responder_sa, ExchangeType.INFORMATIONAL, (), message_id=2)
    bad_icv = good[:-1] + bytes([good[-1] ^ 1])
    bad_length = good[:-4]  # header Length no longer matches
    plain = encode_message(Message(header, (DeletePayload(ProtocolId.IKE, 0),)))
    plain_broken = plain[:-1]
    for junk in (plain, plain_broken, bad_icv, bad_length):
        assert pair.to_responder(junk) == []
        assert isinstance(pair.responder_events[-1], MessageDropped)
    assert responder_sa.state is IkeSaState.ESTABLISHED and pair.events(IkeSaClosed) == []
    [response] = pair.to_responder(good)
    assert read(responder_sa, response, from_initiator=False).payloads == ()


def test_create_child_sa_beyond_the_limit_is_refused_with_no_additional_sas() -> None:
    """RFC 7296 §1.3 (row B1, B22): past ``limits.child_sa_max`` a new Child SA is refused with
    NO_ADDITIONAL_SAS; the answer is protected and the IKE SA (and its Child SA) stay."""
    pair, _, responder_sa = established(limits=Limits(child_sa_max=1))
    gcm = Transform(TransformType.ENCR, EncrId.AES_GCM_16, (TransformAttribute.key_length(256),))
    esn = Transform(TransformType.ESN, EsnId.NO_ESN)
    proposal = Proposal(1, ProtocolId.ESP, (gcm, esn), spi=b"\x0a\x0b\x0c\x0d")
    response = ask(
        pair,
        responder_sa,
        ExchangeType.CREATE_CHILD_SA,
        SaPayload((proposal,)),
        NoncePayload(bytes(range(32))),
        TsiPayload(any_selectors()),
        TsrPayload(any_selectors()),
    )
    assert response.payloads == (NotifyPayload(NotifyType.NO_ADDITIONAL_SAS),)
    assert responder_sa.state is IkeSaState.ESTABLISHED and len(responder_sa.children) == 1
    assert "NO_ADDITIONAL_SAS" in pair.events(RequestAnswered)[-1].result
    assert ask(pair, responder_sa, ExchangeType.INFORMATIONAL).payloads == ()  # Message IDs moved on


def test_unacceptable_response_to_our_request_ends_the_sa_without_raising() -> None:
    """RFC 7296 §2.21: a response our handler cannot accept ends the SA; nothing escapes the core."""
    pair, initiator_sa, responder_sa = established()

    @attrs.define(eq=False)
    class Unusable(LivenessCheck):
        def process_response(self, sa: IkeSa, response: Received, when: Instant) -> Done | NextRound:
            raise DecodeError("a response this request cannot use", offset=28)

    pair.initiator.start(initiator_sa.local_spi, Unusable(), pair.now)
    [request] = pair.initiator.messages_to_send()
    [response] = pair.to_responder(request.data)
    assert pair.to_initiator(response) == []
    assert initiator_sa.state is IkeSaState.CLOSED
    [closed] = pair.events(IkeSaClosed, "initiator")
    assert "INFORMATIONAL response" in closed.reason and "cannot use" in closed.reason
    assert responder_sa.state is IkeSaState.ESTABLISHED
