"""The core's lab impairments, seen by the initiator (issue 13): force_cookie, force_invalid_ke,
refuse_child, rekey_collision; and how :class:`Impairments` reads its settings.

The initiator is the project's own core (:class:`tests.fakes.pair.Pair`): each test asserts what it
received and how it recovered (RFC 7296 §1.2, §2.6, §2.8.1, §2.21.3, §2.25.1).
"""

from __future__ import annotations

import pytest

from responder.core.config import ChildConfig, ConfigError, IdPattern, Impairments, PeerConfig, ResponseDelay
from responder.core.enums import ExchangeType, KeyExchangeId, NotifyType
from responder.core.events import (
    ChildSaDeleted,
    ChildSaEstablished,
    ChildSaRefused,
    IkeSaClosed,
    IkeSaInitRefused,
    ResponseReceived,
)
from responder.core.exchanges.create_child_sa import RekeyChildSa
from responder.core.exchanges.rekey_ike import RekeyIkeSa
from responder.core.ike_sa import IkeSaState
from responder.core.messages import decode_message
from responder.core.path import Transport
from responder.core.payloads import KePayload, NotifyPayload
from tests.core.test_lifecycle import SEEDS, assert_converged, child_of, create_child_request, make_pair
from tests.fakes.pair import (
    PSK,
    RESPONDER_ID,
    Pair,
    child_request,
    initiator_settings,
    read,
    responder_config,
)

IKE = "aes256gcm16-prfsha256-x25519"
COLLIDE = Impairments(rekey_collision=True)


def init_notifies(pair: Pair) -> list[NotifyType]:
    """The notify of each stateless IKE_SA_INIT answer the initiator received, in order."""
    out = []
    for direction, data in pair.wire:
        message = decode_message(data)
        if direction == "r->i" and message.header.exchange_type is ExchangeType.IKE_SA_INIT:
            first = message.payloads[0]
            if isinstance(first, NotifyPayload) and len(message.payloads) == 1:
                out.append(first.notify_type)
    return out


# --------------------------------------------------------------------------- force_cookie


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP])
def test_force_cookie_the_initiator_gets_a_cookie_then_its_sa(transport: Transport) -> None:
    """RFC 7296 §2.6: the first IKE_SA_INIT is answered with a COOKIE only (even over TCP, where
    RFC 9329 §6.3 would not ask); the initiator repeats it with the COOKIE first and gets its SA."""
    impair = Impairments(force_cookie=True)
    pair = Pair.create(responder_config(IKE, impair=impair), transport=transport)
    sa = pair.initiate(initiator_settings(IKE, child_request()))
    pair.pump()
    assert init_notifies(pair) == [NotifyType.COOKIE]
    [refused] = pair.events(IkeSaInitRefused, "initiator")
    assert refused.notify is NotifyType.COOKIE
    second = decode_message(pair.wire[2][1])  # the initiator's retry
    assert isinstance(second.payloads[0], NotifyPayload)
    assert second.payloads[0].notify_type is NotifyType.COOKIE
    assert sa.state is IkeSaState.ESTABLISHED and len(pair.events(ChildSaEstablished, "initiator")) == 1


# --------------------------------------------------------------------------- force_invalid_ke


def test_force_invalid_ke_names_the_group_and_the_retry_with_it_succeeds() -> None:
    """RFC 7296 §1.2, §3.10.1: KEi of x25519 is answered INVALID_KE_PAYLOAD naming ecp256 (which
    both proposals allow); the initiator retries with ecp256 and the IKE SA uses it."""
    pair = Pair.create(
        responder_config(f"{IKE}-ecp256", impair=Impairments(force_invalid_ke=KeyExchangeId.ECP_256))
    )
    sa = pair.initiate(initiator_settings(f"{IKE}-ecp256", child_request()))
    pair.pump()
    assert init_notifies(pair) == [NotifyType.INVALID_KE_PAYLOAD]
    refusal = decode_message(pair.wire[1][1]).payloads[0]
    assert isinstance(refusal, NotifyPayload) and refusal.data == (19).to_bytes(2, "big")  # ECP_256
    retry = decode_message(pair.wire[2][1])
    [ke] = [p for p in retry.payloads if isinstance(p, KePayload)]
    assert ke.group is KeyExchangeId.ECP_256
    assert sa.state is IkeSaState.ESTABLISHED
    assert sa.proposal is not None and sa.proposal.key_exchange is KeyExchangeId.ECP_256
    [ours] = pair.events(IkeSaInitRefused)
    assert "impairment force_invalid_ke" in ours.reason


def test_force_invalid_ke_leaves_an_initiator_that_cannot_use_the_group_alone() -> None:
    """An initiator that does not offer the forced group is answered as usual: no endless loop."""
    pair = Pair.create(
        responder_config(f"{IKE}-ecp256", impair=Impairments(force_invalid_ke=KeyExchangeId.ECP_256))
    )
    sa = pair.initiate(initiator_settings(IKE, child_request()))
    pair.pump()
    assert init_notifies(pair) == [] and sa.state is IkeSaState.ESTABLISHED


def test_force_invalid_ke_must_be_a_group_we_accept() -> None:
    with pytest.raises(ConfigError, match="ecp521 is in none of our IKE proposals") as caught:
        responder_config(IKE, impair=Impairments(force_invalid_ke=KeyExchangeId.ECP_521))
    assert caught.value.field == "impair.force_invalid_ke"


# --------------------------------------------------------------------------- refuse_child


def test_refuse_child_the_ike_sa_comes_up_without_its_child_sa() -> None:
    """RFC 7296 §2.21.3: IKE_AUTH is answered with IDr and AUTH and TS_UNACCEPTABLE instead of the
    Child SA; the initiator holds an IKE SA without Child SAs, and a CREATE_CHILD_SA is refused too."""
    pair = Pair.create(responder_config(IKE, impair=Impairments(refuse_child=True)))
    sa = pair.initiate(initiator_settings(IKE, child_request()))
    pair.pump()
    assert sa.state is IkeSaState.ESTABLISHED and sa.children == {}
    [refused] = pair.events(ChildSaRefused, "initiator")
    assert refused.notify is NotifyType.TS_UNACCEPTABLE
    assert pair.events(ChildSaEstablished, "initiator") == []
    [ours] = pair.events(ChildSaRefused)
    assert "impairment refuse_child" in ours.reason


def test_refuse_child_refuses_a_later_create_child_sa_too() -> None:
    """A CREATE_CHILD_SA for a new pair (RFC 7296 §1.3.1) is answered TS_UNACCEPTABLE; the IKE SA stays."""
    pair, _, ours = make_pair(impair=Impairments(refuse_child=True))
    assert ours.children == {}
    [answer] = pair.to_responder(create_child_request(ours))
    message = read(ours, answer, from_initiator=False)
    notifies = [p.notify_type for p in message.payloads if isinstance(p, NotifyPayload)]
    assert notifies == [NotifyType.TS_UNACCEPTABLE]
    assert ours.state is IkeSaState.ESTABLISHED and ours.children == {}


# --------------------------------------------------------------------------- rekey_collision


@pytest.mark.parametrize("seed", SEEDS)
def test_rekey_collision_a_child_sa_rekey_meets_ours_and_the_nonces_decide(seed: int) -> None:
    """RFC 7296 §2.8.1, §2.25.1: the initiator's rekey of the pair gets our rekey of the same pair
    before its answer; both are answered, each end sees the collision, the pair with the lowest nonce
    is deleted by its maker and the old one too: one pair remains, the same on both ends."""
    pair, initiator, ours = make_pair("aes256gcm16-x25519", seed=seed, impair=COLLIDE)
    old = child_of(ours)
    pair.initiator.start(initiator.local_spi, RekeyChildSa.of(old.outbound_spi), pair.now)
    pair.pump()
    responder, _ = assert_converged(pair)
    assert child_of(responder).inbound_spi != old.inbound_spi
    # The initiator's view: a CREATE_CHILD_SA request of ours crossed its own, and its own rekey's
    # response says how the collision ended.
    theirs = [e.result for e in pair.events(ResponseReceived, "initiator")]
    assert any("collision: " in result for result in theirs)
    requests = [
        decode_message(data).header
        for direction, data in pair.wire
        if direction == "r->i" and not decode_message(data).header.is_response
    ]
    assert requests[0].exchange_type is ExchangeType.CREATE_CHILD_SA
    assert len(pair.events(ChildSaDeleted, "initiator")) == 2  # the old pair and the redundant one


def collision_outcomes_seen_by_the_initiator(kind: str) -> set[str]:
    outcomes = set()
    for seed in SEEDS:
        pair, initiator, ours = make_pair(seed=seed, impair=COLLIDE)
        exchange = RekeyIkeSa() if kind == "ike" else RekeyChildSa.of(child_of(ours).outbound_spi)
        pair.initiator.start(initiator.local_spi, exchange, pair.now)
        pair.pump()
        assert_converged(pair)
        [result] = [e.result for e in pair.events(ResponseReceived, "initiator") if "collision" in e.result]
        outcomes.add(result.rsplit("collision: ", 1)[1])
    return outcomes


@pytest.mark.parametrize("kind", ["child", "ike"])
def test_rekey_collision_the_seeds_show_both_outcomes_to_the_initiator(kind: str) -> None:
    """Over the seeds the initiator's rekey survives for some nonces and ours for others (§2.8.1),
    for a Child SA and for the IKE SA (§2.8.2): the impairment really races two rekeys."""
    assert collision_outcomes_seen_by_the_initiator(kind) == {"ours survives", "the peer's survives"}


def test_rekey_collision_an_ike_sa_rekey_leaves_one_ike_sa() -> None:
    pair, initiator, ours = make_pair(seed=3, impair=COLLIDE)
    pair.initiator.start(initiator.local_spi, RekeyIkeSa(), pair.now)
    pair.pump()
    responder, _ = assert_converged(pair)
    assert responder.local_spi != ours.local_spi
    assert len(list(pair.responder.sas)) == len(list(pair.initiator.sas)) == 1
    assert sum(isinstance(e, IkeSaClosed) for e in pair.initiator_events) == 2


def test_without_the_impairment_a_rekey_does_not_collide() -> None:
    pair, initiator, ours = make_pair()
    pair.initiator.start(initiator.local_spi, RekeyChildSa.of(child_of(ours).outbound_spi), pair.now)
    pair.pump()
    assert not any("collision" in e.result for e in pair.events(ResponseReceived, "initiator"))


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("force_cookie", True, Impairments(force_cookie=True)),
        ("force_cookie", "yes", Impairments(force_cookie=True)),
        ("force_invalid_ke", "ECP256", Impairments(force_invalid_ke=KeyExchangeId.ECP_256)),
        ("drop_response", 1, Impairments(drop_response=1)),
        ("drop_response", "2", Impairments(drop_response=2)),
        ("drop_response", False, Impairments()),
        ("delay_response", "1:5", Impairments(delay_response=ResponseDelay(1, 5.0))),
        ("delay_response", "0:1.5m", Impairments(delay_response=ResponseDelay(0, 90.0))),
        ("duplicate_response", 0, Impairments(duplicate_response=0)),
        ("corrupt_icv", "1", Impairments(corrupt_icv=1)),
        ("tcp_close_after", 1, Impairments(tcp_close_after=1)),
        ("refuse_child", True, Impairments(refuse_child=True)),
        ("rekey_collision", "no", Impairments()),
    ],
)
def test_settings_read_toml_values_and_flag_text(name: str, value: object, expected: Impairments) -> None:
    assert Impairments().with_setting(name, value) == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("drop_outbound", True, "unknown impairment; known: force_cookie"),
        ("force_cookie", "3", "takes no argument"),
        ("force_cookie", 1, "takes no argument"),
        ("drop_response", True, "needs an argument: drop_response=N"),
        ("drop_response", "x", "expected a Message ID 0..4294967295, got 'x'"),
        ("drop_response", -1, "expected a Message ID"),
        ("drop_response", 2**32, "expected a Message ID"),
        ("drop_response", 1.5, "expected a Message ID"),
        ("corrupt_icv", 0, "has no ICV; N >= 1"),
        ("force_invalid_ke", "ecp999", "expected a key exchange keyword"),
        ("force_invalid_ke", 19, "expected a key exchange keyword"),
        ("delay_response", "5s", "expected N:SECONDS"),
        ("delay_response", "1:soon", "expected a duration"),
        ("delay_response", "1:0", "must be > 0 and at most 3600"),
        ("delay_response", "1:2h", "must be > 0 and at most 3600"),
        ("delay_response", 5, "expected a string N:SECONDS"),
    ],
)
def test_bad_settings_name_the_impairment(name: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Impairments().with_setting(name, value)
    assert caught.value.field == name


def test_every_active_impairment_is_described_in_one_line_naming_it() -> None:
    impair = Impairments()
    for name, value in [
        ("force_cookie", True),
        ("force_invalid_ke", "ecp256"),
        ("drop_response", 1),
        ("delay_response", "1:5s"),
        ("duplicate_response", 1),
        ("corrupt_icv", 1),
        ("tcp_close_after", 1),
        ("refuse_child", True),
        ("rekey_collision", True),
    ]:
        impair = impair.with_setting(name, value)
    lines = impair.describe()
    assert [line.split(":")[0] for line in lines] == [
        "force_cookie",
        "force_invalid_ke=ecp256",
        "drop_response=1",
        "delay_response=1",  # "delay_response=1:5s: ..." splits at its first colon
        "duplicate_response=1",
        "corrupt_icv=1",
        "tcp_close_after=1",
        "refuse_child",
        "rekey_collision",
    ]
    assert lines[3].startswith("delay_response=1:5s: ") and "5 s late" in lines[3]
    assert impair.active and not Impairments().active and Impairments().describe() == []


def test_a_peer_child_with_refuse_and_the_impairment_agree_on_the_notify() -> None:
    """``refuse_child`` answers as ``refuse = true`` does (TS_UNACCEPTABLE), for every child."""
    child = ChildConfig("net", refuse=False)
    peer = PeerConfig(
        "alice", IdPattern.parse("alice@example.org"), PSK, local_id=RESPONDER_ID, children=(child,)
    )
    pair = Pair.create(responder_config(IKE, peers=(peer,), impair=Impairments(refuse_child=True)))
    pair.initiate(initiator_settings(IKE, child_request()))
    pair.pump()
    [refused] = pair.events(ChildSaRefused, "initiator")
    assert refused.notify is NotifyType.TS_UNACCEPTABLE
