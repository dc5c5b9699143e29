"""Payload lists for the log (charon's way), from a real handshake between two cores."""

from __future__ import annotations

from responder.core.enums import ExchangeType, KeyExchangeId, NotifyType
from responder.core.events import MessageAccepted, MessageSent
from responder.core.payloads import ConfigPayload, KePayload, NotifyPayload, OpaquePayload
from responder.core.summary import payload_summary
from tests.fakes.pair import Pair, child_request, initiator_settings, responder_config

IKE = "aes256gcm16-prfsha256-x25519"


def test_names() -> None:
    payloads = (
        KePayload(KeyExchangeId.CURVE25519, bytes(32)),
        NotifyPayload(NotifyType.INITIAL_CONTACT),
        ConfigPayload(2),
        OpaquePayload(200, b"x"),
    )
    assert payload_summary(payloads) == ("KE", "N(INITIAL_CONTACT)", "CP(CFG_REPLY)", "UNKNOWN(200)")


def test_a_handshake_lists_what_went_each_way() -> None:
    pair = Pair.create(responder_config(IKE))
    pair.initiate(initiator_settings(IKE, child_request()))
    pair.pump()
    sent = [e for e in pair.responder_events if isinstance(e, MessageSent)]
    accepted = [e for e in pair.responder_events if isinstance(e, MessageAccepted)]
    init, auth = sent
    assert (init.exchange, init.is_response, init.message_id) == (ExchangeType.IKE_SA_INIT, True, 0)
    assert init.payloads[:3] == ("SA", "KE", "No")
    assert (auth.exchange, auth.message_id) == (ExchangeType.IKE_AUTH, 1)
    assert auth.payloads[0] == "IDr" and {"AUTH", "SA", "TSi", "TSr"} <= set(auth.payloads)
    init_request, auth_request = accepted
    assert init_request.exchange is ExchangeType.IKE_SA_INIT and init_request.payloads[:3] == (
        "SA",
        "KE",
        "No",
    )
    assert auth_request.payloads[0] == "IDi" and {"AUTH", "SA", "TSi", "TSr"} <= set(auth_request.payloads)
