"""The IKE SA core back to back: initiator and responder endpoints in memory, explicit ``now``.

Each test names the RFC rule (and the requirement row, e.g. B12) it checks.
"""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address, ip_network

import pytest

from responder.core.child_sa import ChildSaState
from responder.core.config import (
    AddressPool,
    ChildConfig,
    ChildlessPolicy,
    Config,
    EspProposal,
    IdPattern,
    Limits,
    Mode,
    PeerConfig,
    Secret,
    TrafficSelectorPolicy,
)
from responder.core.enums import ExchangeType, KeyExchangeId, NotifyType
from responder.core.events import (
    AuthenticationFailed,
    ChildSaEstablished,
    ChildSaRefused,
    IkeSaClosed,
    IkeSaEstablished,
    IkeSaInitRefused,
    MessageDropped,
    RequestAnswered,
    RetransmissionAnswered,
)
from responder.core.ike_sa import IkeSaState
from responder.core.messages import decode_header, decode_message
from responder.core.path import Transport
from responder.core.payloads import NotifyPayload, TsrPayload
from responder.core.selectors import to_selector
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
    reverse,
)

SUITES = {
    "x25519-aes256gcm16": ("aes256gcm16-prfsha256-x25519", "aes256gcm16"),
    "ecp384-aes256cbc-sha384": ("aes256-sha384-ecp384", "aes256-sha384"),
    "modp2048-aes128cbc-sha256": ("aes128-sha256-modp2048", "aes128-sha256"),
    "x448-chacha20poly1305": ("chacha20poly1305-prfsha512-x448", "chacha20poly1305"),
}


def established(pair: Pair) -> tuple[IkeSaEstablished, IkeSaEstablished]:
    [r] = pair.events(IkeSaEstablished, "responder")
    [i] = pair.events(IkeSaEstablished, "initiator")
    return i, r


@pytest.mark.parametrize("suite", SUITES)
def test_suite_handshake_with_child_sa(suite: str) -> None:
    """RFC 7296 §1.2 (row B1): four messages create an IKE SA and a Child SA; both ends agree on keys."""
    ike, esp = SUITES[suite]
    child = ChildConfig("suite", esp_proposals=(EspProposal.parse(esp),))
    peers = (
        PeerConfig(
            "alice", IdPattern.parse("alice@example.org"), PSK, local_id=RESPONDER_ID, children=(child,)
        ),
    )
    pair = Pair.create(responder_config(ike, peers=peers))
    sa = pair.initiate(initiator_settings(ike, child_request(esp)))
    pair.pump()
    i, r = established(pair)
    assert sa.state is IkeSaState.ESTABLISHED
    assert (i.spi_i, i.spi_r) == (r.spi_i, r.spi_r)
    assert i.keys == r.keys
    assert i.remote_id == "responder.example.org" and r.remote_id == "alice@example.org"
    [ci] = pair.events(ChildSaEstablished, "initiator")
    [cr] = pair.events(ChildSaEstablished, "responder")
    assert ci.inbound_spi == cr.outbound_spi and ci.outbound_spi == cr.inbound_spi
    assert ci.keys == cr.keys
    assert cr.local_ts == ("0.0.0.0/0",)
    assert [direction for direction, _ in pair.wire] == ["i->r", "r->i", "i->r", "r->i"]


def test_responder_preference_is_the_default_rfc7296_2_7() -> None:
    """Row B12: the responder's configured order wins unless prefer_initiator_order is set."""
    ours = "aes128gcm16-prfsha256-x25519"
    config = responder_config(ours)
    config = Config(
        ike_proposals=(
            *config.ike_proposals,
            *responder_config("aes256gcm16-prfsha256-x25519").ike_proposals,
        ),
        peers=config.peers,
    )
    pair = Pair.create(config)
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519,aes128gcm16-prfsha256-x25519"))
    pair.pump()
    assert established(pair)[1].encryption_name == "AES_GCM_16-128"

    import attrs

    pair = Pair.create(attrs.evolve(config, prefer_initiator_order=True))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519,aes128gcm16-prfsha256-x25519"))
    pair.pump()
    assert established(pair)[1].encryption_name == "AES_GCM_16-256"


def test_no_common_proposal_rfc7296_2_7() -> None:
    """NO_PROPOSAL_CHOSEN, unprotected with SPIr zero; the event says which transform type matched nothing."""
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519"))
    sa = pair.initiate(initiator_settings("aes128-sha256-modp2048"))
    pair.pump()
    [refused] = pair.events(IkeSaInitRefused)
    assert refused.notify is NotifyType.NO_PROPOSAL_CHOSEN
    assert "ENCR" in refused.reason and "KE" in refused.reason
    response = decode_message(pair.wire[1][1])
    assert response.header.spi_r == bytes(8)
    assert response.payloads == (NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN),)
    assert sa.state is IkeSaState.CLOSED
    assert list(pair.responder.sas) == []


def test_wrong_group_then_retry_rfc7296_1_2() -> None:
    """Row B13: INVALID_KE_PAYLOAD names the selected group; the retry with it is accepted."""
    offer = "aes256gcm16-prfsha256-x25519-ecp256"
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-ecp256"))
    pair.initiate(initiator_settings(offer, ke_method=KeyExchangeId.CURVE25519))
    pair.pump()
    [refused] = pair.events(IkeSaInitRefused)
    assert refused.notify is NotifyType.INVALID_KE_PAYLOAD
    response = decode_message(pair.wire[1][1])
    assert response.payloads == (NotifyPayload(NotifyType.INVALID_KE_PAYLOAD, (19).to_bytes(2, "big")),)
    assert response.header.spi_r == bytes(8)
    established(pair)
    assert len(pair.wire) == 6


def test_acceptable_kei_needs_no_retry() -> None:
    """When the initiator's KEi group is acceptable, it is chosen: no INVALID_KE_PAYLOAD round trip."""
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-ecp256-x25519"))
    pair.initiate(
        initiator_settings("aes256gcm16-prfsha256-x25519-ecp256", ke_method=KeyExchangeId.CURVE25519)
    )
    pair.pump()
    assert pair.events(IkeSaInitRefused) == []
    established(pair)
    assert len(pair.wire) == 4


def crowded_config(**kwargs: object) -> Config:
    return responder_config(
        "aes256gcm16-prfsha256-x25519", limits=Limits(cookie_threshold=0, half_open_max=10), **kwargs
    )


def test_cookie_then_retry_over_udp_rfc7296_2_6() -> None:
    """Row B10: above the threshold a COOKIE is asked for; the retry carrying it first is accepted."""
    pair = Pair.create(crowded_config())
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519", child_request()))
    pair.pump()
    [refused] = pair.events(IkeSaInitRefused)
    assert refused.notify is NotifyType.COOKIE
    cookie_response = decode_message(pair.wire[1][1])
    [cookie] = cookie_response.payloads
    assert isinstance(cookie, NotifyPayload) and cookie.notify_type is NotifyType.COOKIE
    retry = decode_message(pair.wire[2][1])
    assert retry.payloads[0] == cookie
    established(pair)


def test_cookie_with_changed_ke_rfc7296_2_6_1() -> None:
    """Row B11: a cookie is accepted together with a changed KE (the shortened exchange)."""
    import attrs

    ecp_only = responder_config("aes256gcm16-prfsha256-ecp256").ike_proposals
    pair = Pair.create(attrs.evolve(crowded_config(), ike_proposals=ecp_only))
    pair.initiate(
        initiator_settings("aes256gcm16-prfsha256-x25519-ecp256", ke_method=KeyExchangeId.CURVE25519)
    )
    pair.pump()
    notifies = [e.notify for e in pair.events(IkeSaInitRefused)]
    assert notifies == [NotifyType.COOKIE, NotifyType.INVALID_KE_PAYLOAD]
    final = decode_message(pair.wire[4][1])
    assert isinstance(final.payloads[0], NotifyPayload) and final.payloads[0].notify_type is NotifyType.COOKIE
    established(pair)


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.TLS])
def test_no_cookie_over_tcp_rfc9329_6_3(transport: Transport) -> None:
    """Row A40: over TCP no COOKIE is sent without a puzzle, whatever the threshold."""
    pair = Pair.create(crowded_config(), transport=transport)
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519", child_request()))
    pair.pump()
    assert pair.events(IkeSaInitRefused) == []
    established(pair)


def test_wrong_psk_rfc7296_2_15() -> None:
    """AUTHENTICATION_FAILED, and nothing of the SA is left on the responder (row B17, B26)."""
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519"))
    sa = pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519", psk=Secret.parse("wrong")))
    pair.pump()
    [answered] = pair.events(RequestAnswered)
    assert "AUTHENTICATION_FAILED" in answered.result and "does not verify" in answered.result
    [closed] = pair.events(IkeSaClosed)
    assert "AUTHENTICATION_FAILED" in closed.reason
    assert list(pair.responder.sas) == []
    assert pair.events(AuthenticationFailed, "initiator")
    assert sa.state is IkeSaState.CLOSED


def test_unknown_id_rfc7296_2_15() -> None:
    pair = Pair.create(
        responder_config(
            "aes256gcm16-prfsha256-x25519",
            peers=(PeerConfig("bob", IdPattern.parse("bob@example.org"), PSK),),
        )
    )
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"))
    pair.pump()
    [answered] = pair.events(RequestAnswered)
    assert "AUTHENTICATION_FAILED" in answered.result and "no peer is configured" in answered.result
    assert list(pair.responder.sas) == []


def test_wildcard_and_any_id_lab_mode() -> None:
    """strongSwan-style patterns and the lab "any ID" mode authenticate the same PSK."""
    for peers, any_psk in (((PeerConfig("domain", IdPattern.parse("*@example.org"), PSK),), None), ((), PSK)):
        pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519", peers=peers, any_id_psk=any_psk))
        pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"))
        pair.pump()
        established(pair)


def test_long_ascii_and_hex_psk_rfc7296_2_15() -> None:
    """Row B17: ASCII secrets of any length (here 100 octets) and hex secrets with 0x."""
    for text in ("x" * 100, "0x" + "ab" * 40):
        secret = Secret.parse(text)
        peers = (PeerConfig("alice", IdPattern.parse("alice@example.org"), secret),)
        pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519", peers=peers))
        pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519", psk=secret))
        pair.pump()
        established(pair)


def test_ts_unacceptable_keeps_ike_sa_rfc7296_2_9() -> None:
    """Row B20: TS_UNACCEPTABLE when no configured selector intersects; the IKE SA stays up."""
    child = ChildConfig(
        "lan",
        local_ts=(TrafficSelectorPolicy.parse("10.1.0.0/16"),),
        remote_ts=(TrafficSelectorPolicy.parse("10.2.0.0/16"),),
    )
    peers = (PeerConfig("alice", IdPattern.parse("alice@example.org"), PSK, children=(child,)),)
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519", peers=peers))
    from responder.core.initiator import ChildRequest

    request = ChildRequest(
        (EspProposal.parse("aes256gcm16"),),
        (to_selector(TrafficSelectorPolicy.parse("192.168.0.0/24")),),
        (to_selector(TrafficSelectorPolicy.parse("172.16.0.0/24")),),
    )
    sa = pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519", request))
    pair.pump()
    [refused] = pair.events(ChildSaRefused)
    assert refused.notify is NotifyType.TS_UNACCEPTABLE
    assert pair.events(ChildSaRefused, "initiator")[0].notify is NotifyType.TS_UNACCEPTABLE
    established(pair)
    assert sa.state is IkeSaState.ESTABLISHED


def test_narrowing_to_policy_rfc7296_2_9() -> None:
    child = ChildConfig("lan", local_ts=(TrafficSelectorPolicy.parse("10.1.0.0/16"),))
    peers = (PeerConfig("alice", IdPattern.parse("alice@example.org"), PSK, children=(child,)),)
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519", peers=peers))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519", child_request()))
    pair.pump()
    [cr] = pair.events(ChildSaEstablished)
    assert cr.local_ts == ("10.1.0.0/16",)
    [ci] = pair.events(ChildSaEstablished, "initiator")
    assert ci.remote_ts == ("10.1.0.0/16",)


def test_refused_child_keeps_ike_sa_and_answers_liveness() -> None:
    """A policy refusing the peer's Child SA keeps the IKE SA (RFC 7296 §2.21.3), which then works."""
    peers = (
        PeerConfig(
            "alice", IdPattern.parse("alice@example.org"), PSK, children=(ChildConfig("no", refuse=True),)
        ),
    )
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519", peers=peers))
    sa = pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519", child_request()))
    pair.pump()
    assert pair.events(ChildSaRefused)[0].notify is NotifyType.TS_UNACCEPTABLE
    pair.initiator.request_liveness_check(sa.local_spi, pair.now)
    pair.pump()
    assert pair.events(RequestAnswered)[-1].result == "liveness check"


def test_childless_rfc6023() -> None:
    """CHILDLESS_IKEV2_SUPPORTED in IKE_SA_INIT; IKE_AUTH without SA/TS creates only the IKE SA."""
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519"))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"))
    pair.pump()
    init_response = decode_message(pair.wire[1][1])
    assert NotifyPayload(NotifyType.CHILDLESS_IKEV2_SUPPORTED) in init_response.payloads
    established(pair)
    assert pair.events(ChildSaEstablished) == []
    assert "childless" in pair.events(RequestAnswered)[0].result


def test_childless_never_policy_refuses() -> None:
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519", childless=ChildlessPolicy.NEVER))
    sa = pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"))
    pair.pump()
    assert sa.state is IkeSaState.CLOSED
    assert "CHILDLESS" in pair.events(IkeSaClosed, "initiator")[0].reason


def test_cp_reply_from_pool_rfc7296_2_19() -> None:
    """Row B21: INTERNAL_IP4_ADDRESS and DNS from the pool, no netmask; TSi narrowed to the address."""
    pool = AddressPool("lab", ipv4=ip_network("10.9.0.0/24"), ipv6=None, dns=(ip_address("10.9.0.53"),))
    child = ChildConfig("vip", pool="lab")
    peers = (PeerConfig("alice", IdPattern.parse("alice@example.org"), PSK, children=(child,)),)
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519", peers=peers, pools=(pool,)))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519", child_request(request_ipv4=True)))
    pair.pump()
    [cr] = pair.events(ChildSaEstablished)
    assert cr.remote_ts == ("10.9.0.1/32",)
    from responder.core.payloads import ConfigPayload
    from responder.core.sk_payload import sk_protections, unprotect

    responder_sa = next(iter(pair.responder.sas))
    assert responder_sa.keys is not None and responder_sa.encryption is not None
    _, inbound = sk_protections(
        responder_sa.keys, responder_sa.encryption, responder_sa.integrity, is_original_initiator=True
    )
    reply, _ = unprotect(inbound, pair.wire[3][1])
    [cp] = [p for p in reply.payloads if isinstance(p, ConfigPayload)]
    assert [(int(a.attribute_type), a.value) for a in cp.attributes] == [
        (1, IPv4Address("10.9.0.1").packed),
        (3, IPv4Address("10.9.0.53").packed),
    ]


def test_ike_auth_with_part_of_a_child_request_is_refused_and_never_established_rfc7296_1_2() -> None:
    """RFC 7296 §1.2, §2.21.2: SA and TSi without TSr is INVALID_SYNTAX, and the IKE SA closes.
    Everything in the request is checked before the SA changes: no IkeSaEstablished (whose keys
    would reach the key log), no Child SA, although IDi and AUTH were good."""
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519"))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519", child_request()))
    [init_request] = [o.data for o in pair.initiator.messages_to_send()]
    [auth_request] = pair.to_initiator(pair.to_responder(init_request)[0])
    [responder_sa] = pair.responder.sas
    good = read(responder_sa, auth_request, from_initiator=True).payloads
    assert any(isinstance(p, TsrPayload) for p in good)
    partial = tuple(p for p in good if not isinstance(p, TsrPayload))
    [answer] = pair.to_responder(forge(responder_sa, ExchangeType.IKE_AUTH, partial, message_id=1))
    refusal = read(responder_sa, answer, from_initiator=False).payloads
    assert refusal == (NotifyPayload(NotifyType.INVALID_SYNTAX),)
    assert responder_sa.state is IkeSaState.CLOSED
    assert pair.events(IkeSaEstablished) == [] and pair.events(ChildSaEstablished) == []
    assert "only part of SA, TSi and TSr" in pair.events(RequestAnswered)[-1].result


def test_authentication_is_checked_before_the_child_request_rfc7296_2_21_2() -> None:
    """A request with a bad AUTH is AUTHENTICATION_FAILED, whatever else is wrong with it."""
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519"))
    wrong = initiator_settings("aes256gcm16-prfsha256-x25519", child_request(), psk=Secret.parse("not it"))
    pair.initiate(wrong)
    [init_request] = [o.data for o in pair.initiator.messages_to_send()]
    [auth_request] = pair.to_initiator(pair.to_responder(init_request)[0])
    [responder_sa] = pair.responder.sas
    payloads = read(responder_sa, auth_request, from_initiator=True).payloads
    partial = tuple(p for p in payloads if not isinstance(p, TsrPayload))
    [answer] = pair.to_responder(forge(responder_sa, ExchangeType.IKE_AUTH, partial, message_id=1))
    refusal = read(responder_sa, answer, from_initiator=False).payloads
    assert refusal == (NotifyPayload(NotifyType.AUTHENTICATION_FAILED),)


def test_ike_sa_and_child_sa_are_reported_once_the_response_is_out() -> None:
    """The response first, then what it established: RequestAnswered, IkeSaEstablished,
    ChildSaEstablished; the Child SA pair is installed on both ends."""
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519"))
    initiator_sa = pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519", child_request()))
    pair.pump()
    reported = (RequestAnswered, IkeSaEstablished, ChildSaEstablished)
    assert [type(e) for e in pair.responder_events if type(e) in reported] == list(reported)
    [responder_sa] = pair.responder.sas
    [theirs] = responder_sa.children.values()
    [ours] = initiator_sa.children.values()
    assert theirs.state is ours.state is ChildSaState.INSTALLED
    assert (theirs.inbound_spi, theirs.outbound_spi) == (ours.outbound_spi, ours.inbound_spi)
    esp = theirs.inbound_spi + bytes(20)  # an ESP packet to the pair (RFC 4303 §2.1)
    assert pair.responder.receive_esp(esp, reverse(pair.path), pair.now) == responder_sa.local_spi


def test_retransmitted_requests_get_identical_responses_rfc7296_2_1() -> None:
    """Rows B4, B5 (RFC 7296 §2.1): a copy of IKE_SA_INIT while the SA is half-open, and a copy of
    IKE_AUTH, get the stored responses byte for byte; a copy of IKE_SA_INIT that arrives once the
    IKE_AUTH request was received "belongs to an existing IKE SA ... (the responder ignores it)"."""
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519"))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519", child_request()))
    [init_request] = [o.data for o in pair.initiator.messages_to_send()]
    [init_response] = pair.to_responder(init_request)
    assert pair.to_responder(init_request) == [init_response]  # half-open: answered again
    [auth_request] = pair.to_initiator(init_response)
    [auth_response] = pair.to_responder(auth_request)
    assert pair.to_initiator(auth_response) == []
    assert len(pair.events(IkeSaEstablished)) == 1
    assert pair.to_responder(auth_request) == [auth_response]
    assert pair.to_responder(init_request) == []  # ignored now
    dropped = pair.events(MessageDropped)[-1]
    assert "after IKE_AUTH began" in dropped.reason and not dropped.authenticated  # it is plaintext
    assert len(pair.events(RetransmissionAnswered)) == 2
    assert len(pair.events(IkeSaEstablished)) == 1


def test_message_ids_and_half_open_expiry_rfc7296_2_2() -> None:
    """A half-open SA without IKE_AUTH expires after limits.half_open_timeout."""
    pair = Pair.create(
        responder_config("aes256gcm16-prfsha256-x25519", limits=Limits(half_open_timeout=10.0))
    )
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"))
    pair.pump(drop=lambda data: decode_header(data)[0].exchange_type is ExchangeType.IKE_AUTH)
    assert pair.responder.half_open_count == 1
    assert pair.responder.get_timer() == 10.0
    pair.responder.handle_timer(9.9)
    assert pair.responder.half_open_count == 1
    pair.responder.handle_timer(10.0)
    pair.drain()
    assert pair.responder.half_open_count == 0
    assert "half-open" in pair.events(IkeSaClosed)[0].reason


def test_same_randomness_same_bytes() -> None:
    """Two runs with the same injected randomness produce byte-identical messages."""
    runs = []
    for _ in range(2):
        pair = Pair.create(responder_config("aes256-sha256-modp2048"))
        pair.initiate(initiator_settings("aes256-sha256-modp2048", child_request("aes128-sha256")))
        pair.pump()
        runs.append(pair.wire)
    assert runs[0] == runs[1] and len(runs[0]) == 4


def test_responder_id_defaults_to_local_address() -> None:
    peers = (PeerConfig("alice", IdPattern.parse("alice@example.org"), PSK),)
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519", peers=peers))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"))
    pair.pump()
    assert established(pair)[0].remote_id == "192.0.2.2"


def test_unknown_spi_is_dropped() -> None:
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519"))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"))
    pair.pump()
    auth_request = bytearray(pair.wire[2][1])
    auth_request[8] ^= 0xFF  # another responder SPI
    pair.responder.receive(bytes(auth_request), pair.path, pair.now)
    pair.drain()
    assert "unknown SPIs" in pair.events(MessageDropped)[-1].reason
    assert pair.responder.messages_to_send() == []


def test_transport_mode_rfc7296_1_3_1() -> None:
    child = ChildConfig("host", mode=Mode.TRANSPORT)
    peers = (PeerConfig("alice", IdPattern.parse("alice@example.org"), PSK, children=(child,)),)
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519", peers=peers))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519", child_request(mode=Mode.TRANSPORT)))
    pair.pump()
    assert pair.events(ChildSaEstablished)[0].mode == "transport"
    assert pair.events(ChildSaEstablished, "initiator")[0].mode == "transport"


def test_esn_negotiated() -> None:
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519"))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519", child_request("aes256gcm16-esn")))
    pair.pump()
    assert pair.events(ChildSaEstablished)[0].esn is True


def test_selectors_helper() -> None:
    assert any_selectors() == (to_selector(TrafficSelectorPolicy.any(4)),)


def first_request(pair: Pair) -> bytes:
    """The initiator's IKE_SA_INIT request, not yet delivered."""
    [outgoing] = pair.initiator.messages_to_send()
    return outgoing.data


def test_unsupported_major_version_rfc7296_2_5() -> None:
    """Row B9: a request with major version 3 is dropped and answered INVALID_MAJOR_VERSION as 2.0."""
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519"))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"))
    request = bytearray(first_request(pair))
    request[17] = 0x30
    pair.responder.receive(bytes(request), pair.path, pair.now)
    [answer] = pair.responder.messages_to_send()
    response = decode_message(answer.data)
    assert response.header.major_version == 2 and response.header.is_response
    assert response.header.spi_i == bytes(request[:8])
    assert response.payloads == (NotifyPayload(NotifyType.INVALID_MAJOR_VERSION),)
    assert list(pair.responder.sas) == []


def test_unsupported_critical_payload_rfc7296_2_5() -> None:
    """Row B2: an unknown payload with the critical bit refuses the message with its type in the notify."""
    from responder.core.messages import Message, encode_message
    from responder.core.payloads import OpaquePayload

    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519"))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"))
    request = decode_message(first_request(pair))
    body = b"secret extension"
    data = bytearray(encode_message(Message(request.header, (*request.payloads, OpaquePayload(200, body)))))
    data[len(data) - len(body) - 3] |= 0x80  # the last payload's critical bit
    pair.responder.receive(bytes(data), pair.path, 0.0)
    [answer] = pair.responder.messages_to_send()
    assert decode_message(answer.data).payloads == (
        NotifyPayload(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, bytes([200])),
    )
    assert list(pair.responder.sas) == []


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP])
def test_nat_detection_hashes_rfc7296_2_23(transport: Transport) -> None:
    """Rows B27, A44: NAT_DETECTION_* computed from the addresses and ports the transport reports."""
    import hashlib

    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519"), transport=transport)
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"))
    pair.pump()
    response = decode_message(pair.wire[1][1])
    spis = response.header.spi_i + response.header.spi_r
    found = {p.notify_type: p.data for p in response.payloads if isinstance(p, NotifyPayload)}
    path = pair.path  # the initiator's view: local = initiator, remote = responder

    def digest(address: object, port: int) -> bytes:
        return hashlib.sha1(spis + address.packed + port.to_bytes(2, "big")).digest()  # type: ignore[attr-defined]  # noqa: S324 (RFC 7296 §2.23 uses SHA-1)

    assert found[NotifyType.NAT_DETECTION_SOURCE_IP] == digest(path.remote_address, path.remote_port)
    assert found[NotifyType.NAT_DETECTION_DESTINATION_IP] == digest(path.local_address, path.local_port)
    responder_sa = next(iter(pair.responder.sas))
    assert not responder_sa.nat_detected_local and not responder_sa.nat_detected_remote


def test_nat_detected_when_the_port_changes() -> None:
    """A rewritten source port (as a NAT or the espintcp stand-in does) is detected, and harmless."""
    from responder.core.path import Path
    from tests.fakes.pair import reverse

    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519"), transport=Transport.TCP)
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"))
    seen = reverse(pair.path)
    natted = Path(seen.transport, seen.local_address, seen.local_port, seen.remote_address, 61000, 7)
    pair.responder.receive(first_request(pair), natted, 0.0)
    responder_sa = next(iter(pair.responder.sas))
    assert responder_sa.nat_detected_remote and not responder_sa.nat_detected_local


def test_half_open_limit_drops_new_requests() -> None:
    """limits.half_open_max bounds the half-open table; beyond it new IKE_SA_INIT requests are dropped."""
    pair = Pair.create(responder_config("aes256gcm16-prfsha256-x25519", limits=Limits(half_open_max=1)))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"))
    pair.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"))
    for outgoing in pair.initiator.messages_to_send():
        pair.responder.receive(outgoing.data, pair.path, 0.0)
    pair.drain()
    assert pair.responder.half_open_count == 1
    assert "half_open_max (1) reached over udp" in pair.events(MessageDropped)[0].reason
