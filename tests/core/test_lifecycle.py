"""The life of an SA in the sans-IO core: CREATE_CHILD_SA, rekeys from either end and at once,
lifetimes, liveness checks, INITIAL_CONTACT (RFC 7296 §1.3, §2.4, §2.8, §2.25; RFC 9329 §6.2).

Two real endpoints talk through :class:`tests.fakes.pair.Pair` with seeded randomness and real
X25519; time moves only through :func:`advance`, which runs both ends' timers in order.  After
each rekey the tests check that both ends hold the same pairs (our inbound SPI is the peer's
outbound SPI and the keys agree), which is what "both ends converge" means.
"""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from responder.core.child_sa import ChildSa, ChildSaState
from responder.core.config import (
    ChildConfig,
    Dpd,
    EspProposal,
    IdPattern,
    Impairments,
    Lifetime,
    Limits,
    Mode,
    PeerConfig,
)
from responder.core.enums import ExchangeType, IpProtocol, KeyExchangeId, NotifyType, ProtocolId
from responder.core.events import (
    ChildSaDeleted,
    ChildSaEstablished,
    ChildSaRefused,
    IkeSaClosed,
    IkeSaEstablished,
    IkeSaRekeyed,
    RequestAnswered,
    ResponseReceived,
)
from responder.core.exchanges import child as child_exchange
from responder.core.exchanges import create_child_sa
from responder.core.exchanges.create_child_sa import RekeyChildSa
from responder.core.exchanges.informational import DeleteChildSa
from responder.core.exchanges.rekey_ike import RekeyIkeSa, lowest_nonce_is_ours
from responder.core.ike_sa import REKEYED_GRACE, IkeSa, IkeSaState
from responder.core.message_layer import TCP_RESPONSE_TIMEOUT
from responder.core.path import Outgoing, Path, Transport
from responder.core.payloads import (
    DeletePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    SaPayload,
    TrafficSelector,
    TsiPayload,
    TsrPayload,
)
from responder.core.proposals import offer
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

IKE = "aes256gcm16-prfsha256-x25519"
NEVER = Lifetime(0.0, 0.0, 0.0)


def make_pair(
    esp: str = "aes256gcm16",
    *,
    child_lifetime: Lifetime = NEVER,
    ike_lifetime: Lifetime = NEVER,
    dpd: Dpd | None = None,
    initiator_esp: str | None = None,
    initiator_child_lifetime: Lifetime = NEVER,
    initiator_ike_lifetime: Lifetime = NEVER,
    transport: Transport = Transport.UDP,
    limits: Limits | None = None,
    seed: int = 1,
    window: int = 1,
    impair: Impairments | None = None,
) -> tuple[Pair, IkeSa, IkeSa]:
    """An established IKE SA with one Child SA, both ends' lifetimes as given; (pair, initiator's, ours)."""
    child = ChildConfig("net", esp_proposals=(EspProposal.parse(esp),), lifetime=child_lifetime)
    peer = PeerConfig(
        "alice",
        IdPattern.parse("alice@example.org"),
        PSK,
        local_id=RESPONDER_ID,
        children=(child,),
        ike_lifetime=ike_lifetime,
        dpd=dpd or Dpd(),
    )
    extra: dict[str, object] = {"limits": limits} if limits is not None else {}
    if impair is not None:
        extra["impair"] = impair
    pair = Pair.create(responder_config(IKE, peers=(peer,), **extra), transport=transport, seed=seed)
    request = child_request(initiator_esp or esp, lifetime=initiator_child_lifetime)
    settings = initiator_settings(IKE, request, ike_lifetime=initiator_ike_lifetime, window_size=window)
    initiator_sa = pair.initiate(settings)
    pair.pump()
    [responder_sa] = pair.responder.sas
    assert responder_sa.state is IkeSaState.ESTABLISHED and initiator_sa.state is IkeSaState.ESTABLISHED
    return pair, initiator_sa, responder_sa


def advance(pair: Pair, to: float, *, drop: bool = False) -> list[tuple[float, Outgoing]]:
    """Run both ends' timers in time order up to ``to``, delivering what they send; with ``drop`` the
    messages are lost instead, and returned (the responder's, with the time they left)."""
    lost: list[tuple[float, Outgoing]] = []
    while True:
        deadlines = [t for t in (pair.responder.get_timer(), pair.initiator.get_timer()) if t is not None]
        if not deadlines or min(deadlines) > to:
            break
        pair.now = max(pair.now, min(deadlines))
        pair.responder.handle_timer(pair.now)
        pair.initiator.handle_timer(pair.now)
        if drop:
            lost += [(pair.now, out) for out in pair.responder.messages_to_send()]
            pair.initiator.messages_to_send()
            pair.drain()
        else:
            pair.pump()
    pair.now = to
    return lost


def only_sa(pair: Pair, side: str) -> IkeSa:
    endpoint = pair.responder if side == "responder" else pair.initiator
    [sa] = [sa for sa in endpoint.sas if sa.state is IkeSaState.ESTABLISHED]
    return sa


def pairs(sa: IkeSa) -> set[tuple[bytes, bytes]]:
    return {(c.inbound_spi, c.outbound_spi) for c in sa.children.values()}


def assert_converged(pair: Pair, children: int = 1) -> tuple[IkeSa, IkeSa]:
    """Both ends hold one established IKE SA with the same SPIs, and the same Child SA pairs, installed,
    with keys that agree (what one sends with, the other receives with)."""
    ours, theirs = only_sa(pair, "responder"), only_sa(pair, "initiator")
    assert ours.spis == theirs.spis
    assert len(ours.children) == children
    assert {(o, i) for i, o in pairs(theirs)} == pairs(ours)
    for child in ours.children.values():
        peer_child = theirs.children[child.outbound_spi]
        assert child.state is peer_child.state is ChildSaState.INSTALLED
        assert child.params.keys == peer_child.params.keys
        assert child.params.initiated != peer_child.params.initiated
        assert (
            pair.responder.receive_esp(child.inbound_spi + bytes(12), pair.path, pair.now) == ours.local_spi
        )
    return ours, theirs


def child_of(sa: IkeSa) -> ChildSa:
    [child] = sa.children.values()
    return child


# --------------------------------------------------------------------------- CREATE_CHILD_SA, answering


def create_child_request(
    sa: IkeSa, *extra: Payload, esp: str = "aes256gcm16", spi: bytes = b"\x0a\x0b\x0c\x0d"
) -> bytes:
    payloads: tuple[Payload, ...] = (
        offer((EspProposal.parse(esp),), spi),
        NoncePayload(bytes(range(32))),
        *extra,
        TsiPayload(any_selectors()),
        TsrPayload(any_selectors()),
    )
    return forge(sa, ExchangeType.CREATE_CHILD_SA, payloads, message_id=sa.layer.next_expected)


def test_a_new_child_sa_is_created_up_to_the_limit() -> None:
    """RFC 7296 §1.3.1 (row B22): CREATE_CHILD_SA makes a new pair with the request's SPI as our outbound
    and KEYMAT from this exchange's nonces; past ``child_sa_max`` the answer is NO_ADDITIONAL_SAS."""
    pair, _, ours = make_pair(limits=Limits(child_sa_max=2))
    [response] = pair.to_responder(create_child_request(ours))
    message = read(ours, response, from_initiator=False)
    kinds = [type(p) for p in message.payloads]
    assert kinds == [SaPayload, NoncePayload, TsiPayload, TsrPayload]
    assert len(ours.children) == 2
    new = next(c for c in ours.children.values() if c.outbound_spi == b"\x0a\x0b\x0c\x0d")
    assert message.payloads[0].proposals[0].spi == new.inbound_spi
    assert new.params.keys != child_of_first(ours).params.keys
    assert not new.params.initiated and new.state is ChildSaState.INSTALLED
    [refused] = pair.to_responder(create_child_request(ours, spi=b"\x0a\x0b\x0c\x0e"))
    assert read(ours, refused, from_initiator=False).payloads == (
        NotifyPayload(NotifyType.NO_ADDITIONAL_SAS),
    )
    assert len(ours.children) == 2 and ours.state is IkeSaState.ESTABLISHED


def child_of_first(sa: IkeSa) -> ChildSa:
    return next(iter(sa.children.values()))


def test_pfs_by_policy_requires_a_ke_and_names_our_group() -> None:
    """RFC 7296 §1.3, §3.10.1: a child whose proposals name a group requires a KEi of it; a request
    without one, or with another group, is answered INVALID_KE_PAYLOAD naming ours."""
    pair, _initiator, ours = make_pair("aes256gcm16-ecp256", initiator_esp="aes256gcm16-ecp256")
    [response] = pair.to_responder(create_child_request(ours, esp="aes256gcm16-x25519-ecp256"))
    refusal = read(ours, response, from_initiator=False).payloads
    assert refusal == (
        NotifyPayload(NotifyType.INVALID_KE_PAYLOAD, int(KeyExchangeId.ECP_256).to_bytes(2, "big")),
    )
    assert len(ours.children) == 1


def test_a_ke_the_policy_does_not_require_is_taken_at_the_initiators_choice() -> None:
    """swanctl.conf semantics: proposals without a group take a KEi of a group our IKE proposals allow."""
    pair, initiator, _ours = make_pair("aes256gcm16", initiator_esp="aes256gcm16-x25519")
    pair.initiator.start(initiator.local_spi, RekeyChildSa.of(child_of(initiator).inbound_spi), pair.now)
    pair.pump()
    responder, _peer = assert_converged(pair)
    assert child_of(responder).params.proposal.key_exchange is KeyExchangeId.CURVE25519
    assert "PFS CURVE25519" in pair.events(RequestAnswered)[-2].result


# --------------------------------------------------------------------------- Child SA rekeys


@pytest.mark.parametrize("esp", ["aes256gcm16", "aes256gcm16-x25519"], ids=["no-pfs", "pfs"])
def test_the_initiator_rekeys_a_child_sa(esp: str) -> None:
    """RFC 7296 §1.3.3, §2.8 (row B22): REKEY_SA names the initiator's inbound SPI; both ends install the
    new pair and the initiator deletes the old one; ESP finds the new SPIs, not the old."""
    pair, initiator, ours = make_pair(esp)
    old = child_of(ours)
    pair.initiator.start(initiator.local_spi, RekeyChildSa.of(old.outbound_spi), pair.now)
    pair.pump()
    responder, _ = assert_converged(pair)
    new = child_of(responder)
    assert new.inbound_spi != old.inbound_spi and new.params.rekeyed == old.inbound_spi
    assert new.params.keys != old.params.keys
    assert pair.responder.receive_esp(old.inbound_spi + bytes(12), pair.path, pair.now) is None
    [deleted] = pair.events(ChildSaDeleted)
    assert deleted.inbound_spi == old.inbound_spi and "deleted by the peer" in deleted.reason
    if esp.endswith("x25519"):
        assert new.params.proposal.key_exchange is KeyExchangeId.CURVE25519


@pytest.mark.parametrize("esp", ["aes256gcm16", "aes256gcm16-x25519"], ids=["no-pfs", "pfs"])
def test_we_rekey_a_child_sa_at_its_soft_lifetime(esp: str) -> None:
    """RFC 7296 §2.8: at rekey_time less its jitter we rekey the pair, then delete the old one; the new
    pair gets a lifetime of its own; nothing happens at the old pair's hard lifetime any more."""
    lifetime = Lifetime(600.0, 660.0, 60.0)
    pair, _, ours = make_pair(esp, child_lifetime=lifetime)
    old = child_of(ours)
    assert old.rekey_at is not None and 540.0 <= old.rekey_at <= 600.0
    advance(pair, 600.0)
    responder, _ = assert_converged(pair)
    new = child_of(responder)
    assert new.inbound_spi != old.inbound_spi and new.params.initiated
    assert new.rekey_at is not None and new.rekey_at >= 540.0 + 540.0
    [deleted] = pair.events(ChildSaDeleted, "initiator")
    assert deleted.outbound_spi == old.inbound_spi
    assert any("rekeyed as" in e.result for e in pair.events(ResponseReceived))


@pytest.mark.parametrize("answer", ["outside", "reversed", "transport"])
def test_a_rekey_answer_outside_what_we_offered_is_refused(
    answer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 7296 §2.9, §1.3.1: the peer answering our rekey may narrow the selectors we offered (the
    old pair's), never widen or invert them, nor turn a tunnel into transport mode.  Such an answer
    is malformed: the new pair is never installed (nor routed, nor given traffic)."""
    pair, _, ours = make_pair("aes256gcm16", child_lifetime=Lifetime(600.0, 660.0, 60.0))
    old = child_of(ours)
    outside = TrafficSelector(IpProtocol.ANY, 0, 65535, ip_address("fd00::"), ip_address("fd00::ffff"))
    inverted = TrafficSelector(IpProtocol.ANY, 0, 65535, ip_address("10.9.9.9"), ip_address("10.9.9.1"))
    if answer == "transport":  # the peer's side of the exchange: it answers USE_TRANSPORT_MODE
        monkeypatch.setattr(create_child_sa, "_mode", lambda configured, offered, name: Mode.TRANSPORT)
    else:  # ... or TSr outside what we offered (all of IPv4), or inverted
        bad = outside if answer == "outside" else inverted
        monkeypatch.setattr(create_child_sa, "narrow", lambda policy, offered: (bad,))
    advance(pair, 600.0)
    installed = [child.inbound_spi for child in ours.children.values()]
    assert installed in ([], [old.inbound_spi])  # the old pair, or none once the IKE SA ended
    assert len(pair.events(ChildSaEstablished)) == 1  # only the first pair was ever established


def test_an_ike_auth_answer_outside_what_we_asked_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 7296 §2.9 for the initiator role (the project's client): a first Child SA whose TSr lies
    outside the TSr we asked for is refused, and the IKE SA stays."""
    outside = TrafficSelector(IpProtocol.ANY, 0, 65535, ip_address("fd00::"), ip_address("fd00::ffff"))
    monkeypatch.setattr(child_exchange, "narrow", lambda policy, offered: (outside,))
    pair, theirs, _ = make_pair("aes256gcm16")
    assert theirs.state is IkeSaState.ESTABLISHED and not theirs.children
    [refused] = pair.events(ChildSaRefused, "initiator")
    assert refused.reason == "responder's TSi/TSr are not inside the ones we offered"


SEEDS = range(1, 9)  #: the nonces of these runs put the lowest in either end's rekey


@pytest.mark.parametrize("seed", SEEDS)
def test_both_ends_rekey_the_same_child_sa_at_once(seed: int) -> None:
    """RFC 7296 §2.8.1, §2.25.1: each end answers the other's rekey as usual; the new pair with the lowest
    nonce is deleted by its maker and the old one by the survivor's maker; one pair remains."""
    pair, initiator, ours = make_pair("aes256gcm16-x25519", seed=seed)
    old = child_of(ours)
    pair.initiator.start(initiator.local_spi, RekeyChildSa.of(old.outbound_spi), pair.now)
    pair.responder.start(ours.local_spi, RekeyChildSa.of(old.inbound_spi), pair.now)
    pair.pump()
    responder, _ = assert_converged(pair)
    survivor = child_of(responder)
    assert survivor.inbound_spi != old.inbound_spi
    assert any("collision" in e.result for e in pair.events(ResponseReceived))
    assert any("collision" in e.result for e in pair.events(ResponseReceived, "initiator"))
    assert len(pair.events(ChildSaDeleted)) == 2  # the old pair and the redundant new one


def test_a_rekey_of_a_pair_we_do_not_have_gets_child_sa_not_found() -> None:
    """RFC 7296 §2.25 (row B22): CHILD_SA_NOT_FOUND, with the Protocol ID and SPI of the REKEY_SA."""
    pair, _, ours = make_pair()
    rekey = NotifyPayload(NotifyType.REKEY_SA, b"", ProtocolId.ESP, b"\xde\xad\xbe\xef")
    request = forge(
        ours,
        ExchangeType.CREATE_CHILD_SA,
        (
            rekey,
            offer((EspProposal.parse("aes256gcm16"),), b"\x01\x02\x03\x04"),
            NoncePayload(bytes(32)),
            TsiPayload(any_selectors()),
            TsrPayload(any_selectors()),
        ),
        message_id=ours.layer.next_expected,
    )
    [response] = pair.to_responder(request)
    answer = read(ours, response, from_initiator=False).payloads
    assert answer == (NotifyPayload(NotifyType.CHILD_SA_NOT_FOUND, b"", ProtocolId.ESP, b"\xde\xad\xbe\xef"),)
    assert ours.state is IkeSaState.ESTABLISHED


def test_a_rekey_of_a_pair_we_are_deleting_gets_temporary_failure_and_the_delete_completes() -> None:
    """RFC 7296 §2.25.1: a rekey of a pair we are deleting is refused with TEMPORARY_FAILURE; the
    initiator does not retry at once (its retry finds the pair gone), and the pair's Delete completes."""
    pair, initiator, ours = make_pair()
    old = child_of(ours)
    pair.responder.start(ours.local_spi, DeleteChildSa.of((old.inbound_spi,), "test"), pair.now)
    pair.initiator.start(initiator.local_spi, RekeyChildSa.of(old.outbound_spi), pair.now)
    pair.pump()
    answered = [e.result for e in pair.events(RequestAnswered)]
    assert any("TEMPORARY_FAILURE" in r for r in answered)
    [result] = [e.result for e in pair.events(ResponseReceived, "initiator") if "TEMPORARY" in e.result]
    assert "refused with TEMPORARY_FAILURE" in result
    assert ours.children == {} and initiator.children == {}
    advance(pair, 60.0)  # nothing is retried on a pair that is gone
    assert ours.children == {} and len(pair.events(RequestAnswered)) == len(answered)


def test_a_delete_crossing_our_rekey_deletes_the_pair_we_made() -> None:
    """RFC 7296 §2.25.1: the peer's Delete of a pair we rekey is answered with a Delete payload; our
    rekey, finding the old pair gone, deletes the new one too: the peer wanted it gone."""
    pair, initiator, ours = make_pair()
    old = child_of(ours)
    pair.responder.start(ours.local_spi, RekeyChildSa.of(old.inbound_spi), pair.now)
    pair.initiator.start(initiator.local_spi, DeleteChildSa.of((old.outbound_spi,), "test"), pair.now)
    pair.pump()
    assert ours.children == {} and initiator.children == {}
    assert ours.state is initiator.state is IkeSaState.ESTABLISHED


def test_the_old_pair_is_deleted_by_us_if_the_peer_never_does() -> None:
    """RFC 7296 §2.8: the rekey's initiator deletes the old pair; if its Delete never comes we delete
    the old pair REKEYED_GRACE seconds later, so nothing is kept forever."""
    pair, initiator, ours = make_pair()
    old = child_of(ours)
    pair.initiator.start(initiator.local_spi, RekeyChildSa.of(old.outbound_spi), pair.now)

    def drop_delete(data: bytes) -> bool:
        return data[18] == ExchangeType.INFORMATIONAL and not data[19] & 0x20 and data[19] & 0x08 != 0

    pair.pump(drop=drop_delete)
    assert ours.children[old.inbound_spi].state is ChildSaState.REKEYED
    advance(pair, REKEYED_GRACE + 1.0)
    assert old.inbound_spi not in ours.children and len(ours.children) == 1


def test_a_child_sa_past_its_hard_lifetime_is_deleted() -> None:
    """RFC 7296 §2.8: a pair that was not rekeyed (rekey_time 0 here) is deleted at life_time, with a
    Delete both ends act on; the IKE SA stays."""
    pair, initiator, ours = make_pair(child_lifetime=Lifetime(0.0, 150.0, 0.0))
    advance(pair, 149.0)
    assert len(ours.children) == 1
    advance(pair, 151.0)
    assert ours.children == {} and initiator.children == {} and ours.state is IkeSaState.ESTABLISHED
    assert "lifetime expired" in pair.events(ChildSaDeleted)[-1].reason


# --------------------------------------------------------------------------- IKE SA rekeys


def test_the_initiator_rekeys_the_ike_sa() -> None:
    """RFC 7296 §1.3.2, §2.18 (row B22): new SPIs, keys from the old SK_d, Message IDs from 0; the
    Child SAs move to the new IKE SA and the old one is deleted by the rekey's initiator."""
    pair, initiator, ours = make_pair()
    child = child_of(ours)
    pair.initiator.start(initiator.local_spi, RekeyIkeSa(), pair.now)
    pair.pump()
    responder, peer = assert_converged(pair)
    assert responder.spis != ours.spis and responder.rekeyed_from == ours.local_spi
    assert child_of(responder) is child
    assert ours.state is initiator.state is IkeSaState.CLOSED
    assert pair.responder.sa(ours.local_spi) is None
    assert responder.keys != ours.keys and not responder.is_original_initiator
    assert (responder.layer.next_expected, responder.layer.next_send_id) == (0, 0)
    for new in (responder, peer):  # no IKE_AUTH: nonces, SK_pi and SK_pr are not kept (issue 14)
        assert new.keys is not None and (new.keys.sk_pi, new.keys.sk_pr, new.nonce_i) == (b"", b"", b"")
    [rekeyed] = pair.events(IkeSaRekeyed)
    assert rekeyed.heir == responder.local_spi and not rekeyed.deleting
    assert pair.events(IkeSaEstablished)[-1].rekeyed == ours.local_spi
    # The new SA works: a liveness check both ways, from Message ID 0.
    pair.initiator.request_liveness_check(peer.local_spi, pair.now)
    pair.responder.request_liveness_check(responder.local_spi, pair.now)
    pair.pump()
    assert (responder.layer.next_expected, responder.layer.next_send_id) == (1, 1)


def test_we_rekey_the_ike_sa_at_its_soft_lifetime() -> None:
    """RFC 7296 §2.8: our rekey of the IKE SA; we become the new SA's original initiator and delete
    the old SA; the new one's lifetime starts again."""
    pair, _, ours = make_pair(ike_lifetime=Lifetime(3600.0, 3960.0, 360.0))
    advance(pair, 3600.0)
    responder, _ = assert_converged(pair)
    assert responder.is_original_initiator and responder.rekeyed_from == ours.local_spi
    assert ours.state is IkeSaState.CLOSED
    assert responder.rekey_at is not None and responder.rekey_at > 3600.0 + 3000.0


@pytest.mark.parametrize("seed", SEEDS)
def test_both_ends_rekey_the_ike_sa_at_once(seed: int) -> None:
    """RFC 7296 §2.8.2, §2.25.2: both rekeys are answered; the new IKE SA with the lowest nonce is
    deleted by its maker, the other inherits the Child SAs, the old one is deleted; one IKE SA remains."""
    pair, initiator, ours = make_pair(seed=seed)
    child = child_of(ours)
    pair.initiator.start(initiator.local_spi, RekeyIkeSa(), pair.now)
    pair.responder.start(ours.local_spi, RekeyIkeSa(), pair.now)
    pair.pump()
    responder, _ = assert_converged(pair)
    assert child_of(responder) is child
    assert responder.local_spi != ours.local_spi
    assert len(list(pair.responder.sas)) == len(list(pair.initiator.sas)) == 1
    assert sum(isinstance(e, IkeSaClosed) for e in pair.responder_events) == 2


def test_a_child_sa_rekey_crossing_an_ike_sa_rekey_is_refused_both_ways_and_retried() -> None:
    """RFC 7296 §2.25.1, §2.25.2: a Child SA rekey while the IKE SA is being rekeyed gets
    TEMPORARY_FAILURE, and so does an IKE SA rekey while a Child SA is being rekeyed; each end waits a
    random while (§2.25: "MUST NOT immediately retry") and both rekeys then succeed."""
    pair, initiator, ours = make_pair()
    old_child = child_of(ours)
    pair.responder.start(ours.local_spi, RekeyIkeSa(), pair.now)
    pair.initiator.start(initiator.local_spi, RekeyChildSa.of(old_child.outbound_spi), pair.now)
    pair.pump()
    assert any("TEMPORARY_FAILURE" in e.result for e in pair.events(RequestAnswered))
    assert any("TEMPORARY_FAILURE" in e.result for e in pair.events(RequestAnswered, "initiator"))
    assert ours.state is IkeSaState.ESTABLISHED and child_of(ours) is old_child  # nothing changed yet
    assert ours.rekey_at is not None and 10.0 <= ours.rekey_at <= 20.0
    advance(pair, 25.0)
    responder, _ = assert_converged(pair)
    assert responder is not ours and child_of(responder).inbound_spi != old_child.inbound_spi


def test_the_peer_deleting_the_ike_sa_during_our_rekey_wins() -> None:
    """RFC 7296 §2.25.2: "reply as usual, and forget about its own rekeying request"."""
    pair, initiator, ours = make_pair()
    pair.responder.start(ours.local_spi, RekeyIkeSa(), pair.now)
    pair.initiator.request_delete(initiator.local_spi, pair.now)
    pair.pump()
    assert list(pair.responder.sas) == [] and list(pair.initiator.sas) == []


def test_a_create_child_sa_on_a_rekeyed_ike_sa_gets_temporary_failure() -> None:
    """RFC 7296 §2.8.2: the old IKE SA is one we are closing: TEMPORARY_FAILURE."""
    pair, initiator, ours = make_pair()
    pair.initiator.start(initiator.local_spi, RekeyIkeSa(), pair.now)

    def drop_delete(data: bytes) -> bool:
        return data[18] == ExchangeType.INFORMATIONAL

    pair.pump(drop=drop_delete)
    assert ours.state is IkeSaState.REKEYED
    [response] = pair.to_responder(create_child_request(ours))
    assert read(ours, response, from_initiator=False).payloads == (
        NotifyPayload(NotifyType.TEMPORARY_FAILURE),
    )
    advance(pair, REKEYED_GRACE + 1.0)
    assert ours.state is IkeSaState.CLOSED


def test_an_ike_sa_past_its_hard_lifetime_is_deleted() -> None:
    """RFC 7296 §2.8: an IKE SA whose rekey never succeeded is deleted at life_time, Child SAs with it."""
    pair, initiator, ours = make_pair(ike_lifetime=Lifetime(0.0, 200.0, 0.0))
    advance(pair, 199.0)
    assert ours.state is IkeSaState.ESTABLISHED
    advance(pair, 201.0)
    assert ours.state is IkeSaState.CLOSED and initiator.state is IkeSaState.CLOSED
    assert "lifetime expired" in pair.events(IkeSaClosed)[-1].reason


def test_invalid_ke_payload_on_our_rekey_retries_with_the_named_group() -> None:
    """RFC 7296 §1.3, §2.8: our KEi of the wrong group is answered INVALID_KE_PAYLOAD; we rekey again
    with the group the peer named, if we offered it."""
    pair, initiator, _ours = make_pair("aes256gcm16-ecp256", initiator_esp="aes256gcm16-x25519-ecp256")
    pair.initiator.start(initiator.local_spi, RekeyChildSa.of(child_of(initiator).inbound_spi), pair.now)
    pair.pump()
    responder, _ = assert_converged(pair)
    assert child_of(responder).params.proposal.key_exchange is KeyExchangeId.ECP_256
    assert any("INVALID_KE_PAYLOAD" in e.result for e in pair.events(RequestAnswered))


def test_lowest_nonce_is_octet_by_octet() -> None:
    """RFC 7296 §2.8.1: octet-by-octet comparison; a nonce that ends first is the lower."""
    assert lowest_nonce_is_ours((b"\x01\xff", b"\x09"), (b"\x02", b"\x03"))
    assert not lowest_nonce_is_ours((b"\x05", b"\x02\x00"), (b"\x02", b"\x07"))  # b"\x02" < b"\x02\x00"


# --------------------------------------------------------------------------- liveness


def test_a_liveness_check_goes_out_after_dpd_delay_of_silence() -> None:
    """RFC 7296 §2.4: after dpd_delay without a message from the peer, an empty INFORMATIONAL; its
    answer keeps the SA, and the next check waits another dpd_delay."""
    pair, _, ours = make_pair(dpd=Dpd(30.0))
    advance(pair, 29.0)
    assert pair.events(ResponseReceived) == []
    advance(pair, 31.0)
    assert [e.result for e in pair.events(ResponseReceived)] == ["alive"]
    assert ours.last_heard == 30.0
    advance(pair, 95.0)
    assert len(pair.events(ResponseReceived)) == 3


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP])
def test_a_dead_peer_ends_the_sa(transport: Transport) -> None:
    """RFC 7296 §2.1, §2.4; RFC 9329 §6.2 (row A39): an unanswered liveness check ends the IKE SA, over
    UDP after the retransmissions, over TCP after the response timeout without retransmission."""
    pair, _, ours = make_pair(dpd=Dpd(30.0), transport=transport)
    lost = advance(pair, 30.0 + TCP_RESPONSE_TIMEOUT - 0.5, drop=True)
    assert ours.state is IkeSaState.ESTABLISHED
    lost += advance(pair, 30.0 + TCP_RESPONSE_TIMEOUT + 0.5, drop=True)
    assert ours.state is IkeSaState.CLOSED
    assert [t for t, _ in lost] == ([30.0] if transport is Transport.TCP else [30.0, 31.0, 33.0, 37.0, 45.0])
    assert len({o.data for _, o in lost}) == 1  # bitwise the same each time (RFC 7296 §2.1)
    [closed] = pair.events(IkeSaClosed)
    assert "did not answer INFORMATIONAL" in closed.reason


def test_dpd_timeout_bounds_the_wait() -> None:
    """dpd_timeout: a request of ours is given up that long after it was first sent, retransmitted
    over UDP with doubling intervals until then."""
    pair, _, ours = make_pair(dpd=Dpd(10.0, 100.0))
    lost = advance(pair, 10.0 + 99.0, drop=True)
    assert ours.state is IkeSaState.ESTABLISHED
    assert [t - 10.0 for t, _ in lost] == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0]  # past the default 5 sends
    advance(pair, 10.0 + 100.0, drop=True)
    assert ours.state is IkeSaState.CLOSED


def test_our_request_is_sent_again_on_the_peers_new_connection() -> None:
    """RFC 9329 §6.2 (row A39): if a new TCP connection for the IKE SA comes while our request waits, the
    request goes once more on it; its deadline still counts from the first sending."""
    pair, initiator, ours = make_pair(transport=Transport.TCP)
    pair.responder.request_liveness_check(ours.local_spi, pair.now)
    [lost] = pair.responder.messages_to_send()  # the connection died with it
    assert lost.path.connection == 1
    pair.now = 10.0
    new_path = Path(Transport.TCP, pair.path.local_address, 40002, pair.path.remote_address, 4500, 2)
    pair.initiator.request_liveness_check(initiator.local_spi, pair.now)
    [request] = pair.initiator.messages_to_send()
    pair.responder.receive(
        request.data,
        Path(Transport.TCP, new_path.remote_address, 4500, new_path.local_address, 40002, 2),
        pair.now,
    )
    out = pair.responder.messages_to_send()
    assert [o.path.connection for o in out] == [2, 2]  # our request again, and our response
    assert out[0].data == lost.data
    advance(pair, TCP_RESPONSE_TIMEOUT + 0.5, drop=True)
    assert ours.state is IkeSaState.CLOSED  # never answered: the deadline ran from t = 0


# --------------------------------------------------------------------------- INITIAL_CONTACT


def test_initial_contact_ends_older_sas_of_the_same_identity() -> None:
    """RFC 7296 §2.4: an IKE_AUTH with INITIAL_CONTACT says the peer holds no other IKE SA with us: the
    older SAs of that identity are closed (without a Delete the peer would not understand)."""
    pair, _, old = make_pair()
    pair.initiate(initiator_settings(IKE, child_request()))
    pair.pump()
    assert len(list(pair.responder.sas)) == 2  # without INITIAL_CONTACT both stay
    pair.initiate(initiator_settings(IKE, child_request(), initial_contact=True))
    pair.pump()
    [survivor] = pair.responder.sas
    assert survivor.initial_contact and old.state is IkeSaState.CLOSED
    closed = [e.reason for e in pair.events(IkeSaClosed)]
    assert len(closed) == 2 and all("INITIAL_CONTACT" in reason for reason in closed)
    assert pair.responder.receive_esp(child_of(survivor).inbound_spi + bytes(12), pair.path, pair.now)


def collision_outcomes(kind: str) -> set[str]:
    """Which end's rekey survived a simultaneous rekey, over :data:`SEEDS` (as our log says it)."""
    outcomes = set()
    for seed in SEEDS:
        pair, initiator, ours = make_pair(seed=seed)
        exchange = RekeyIkeSa if kind == "ike" else None
        if exchange is None:
            pair.initiator.start(initiator.local_spi, RekeyChildSa.of(child_of(ours).outbound_spi), pair.now)
            pair.responder.start(ours.local_spi, RekeyChildSa.of(child_of(ours).inbound_spi), pair.now)
        else:
            pair.initiator.start(initiator.local_spi, RekeyIkeSa(), pair.now)
            pair.responder.start(ours.local_spi, RekeyIkeSa(), pair.now)
        pair.pump()
        [result] = [e.result for e in pair.events(ResponseReceived) if "collision" in e.result]
        outcomes.add(result.rsplit("collision: ", 1)[1])
    return outcomes


@pytest.mark.parametrize("kind", ["child", "ike"])
def test_the_seeds_cover_both_outcomes_of_a_collision(kind: str) -> None:
    """The collision tests above see both: ours survives for some nonces, the peer's for others."""
    assert collision_outcomes(kind) == {"ours survives", "the peer's survives"}


@pytest.mark.parametrize("seed", SEEDS)
def test_a_redundant_ike_sa_the_peer_never_deletes_is_deleted_by_us(seed: int) -> None:
    """RFC 7296 §2.8.2: after a collision the end that made the redundant IKE SA deletes it; if that
    Delete never comes, we delete it REKEYED_GRACE seconds later (and the old SA likewise)."""
    pair, initiator, ours = make_pair(seed=seed)
    pair.initiator.start(initiator.local_spi, RekeyIkeSa(), pair.now)
    pair.responder.start(ours.local_spi, RekeyIkeSa(), pair.now)

    def initiators_deletes(data: bytes) -> bool:  # the initiator's own Delete requests are lost
        return data[18] == ExchangeType.INFORMATIONAL and not data[19] & 0x20 and bool(data[19] & 0x08)

    pair.pump(drop=initiators_deletes)
    assert len([sa for sa in pair.responder.sas if sa.state is IkeSaState.ESTABLISHED]) <= 2
    deadline = pair.responder.get_timer()
    assert deadline is not None and deadline <= REKEYED_GRACE  # the endpoint knows the grace deadline
    advance(pair, REKEYED_GRACE + 1.0)
    _responder, _ = assert_converged(pair)
    assert len(list(pair.responder.sas)) == len(list(pair.initiator.sas)) == 1


def test_with_a_window_of_two_an_ike_sa_rekey_waits_for_our_child_sa_rekey() -> None:
    """RFC 7296 §1.3.2, §2.25.1: with the peer's window at 2 our IKE SA rekey still goes alone: it waits
    for our Child SA rekey in flight, so the pair is never left REKEYING on the new IKE SA."""
    pair, _, ours = make_pair(window=2)
    assert ours.layer.peer_window == 2
    old_child = child_of(ours)
    pair.responder.start(ours.local_spi, RekeyChildSa.of(old_child.inbound_spi), pair.now)
    pair.responder.start(ours.local_spi, RekeyIkeSa(), pair.now)
    assert len(ours.layer.pending) == 1 and len(ours.layer.queued) == 1  # the IKE SA rekey waits
    pair.pump()
    responder, _ = assert_converged(pair)
    assert responder is not ours and child_of(responder).inbound_spi != old_child.inbound_spi


def test_a_child_sa_delete_crossing_our_ike_sa_rekey_reaches_the_heir() -> None:
    """RFC 7296 §2.25.2: a Delete of a Child SA sent on the old IKE SA while we rekeyed it is answered
    as usual, with a Delete payload; the pair is gone from the new IKE SA that had inherited it."""
    pair, _, ours = make_pair()
    child = child_of(ours)
    pair.responder.start(ours.local_spi, RekeyIkeSa(), pair.now)
    [request] = pair.responder.messages_to_send()
    [answer] = pair.to_initiator(request.data)
    pair.responder.receive(answer, reverse(pair.path), pair.now)
    pair.responder.messages_to_send()  # our Delete of the old IKE SA, still on its way
    assert ours.state is IkeSaState.REKEYED and ours.heir is not None
    delete = DeletePayload(ProtocolId.ESP, 4, (child.outbound_spi,))
    crossing = forge(ours, ExchangeType.INFORMATIONAL, (delete,), message_id=ours.layer.next_expected)
    [response] = pair.to_responder(crossing)
    assert read(ours, response, from_initiator=False).payloads == (
        DeletePayload(ProtocolId.ESP, 4, (child.inbound_spi,)),
    )
    assert ours.heir.children == {}
    assert pair.responder.receive_esp(child.inbound_spi + bytes(12), pair.path, pair.now) is None


def test_a_peers_ike_sa_rekey_at_ike_sa_max_gets_temporary_failure() -> None:
    """A rekey holds two IKE SAs until the old one's Delete: at ``ike_sa_max`` the peer's rekey waits
    (TEMPORARY_FAILURE, RFC 7296 §2.25), so rekeys cannot carry the count past the limit."""
    pair, initiator, ours = make_pair(limits=Limits(ike_sa_max=1))
    pair.initiator.start(initiator.local_spi, RekeyIkeSa(), pair.now)
    pair.pump()
    assert "TEMPORARY_FAILURE" in pair.events(RequestAnswered)[-1].result
    assert list(pair.responder.sas) == [ours] and ours.state is IkeSaState.ESTABLISHED


def test_a_new_child_sa_reusing_the_peers_spi_of_another_pair_is_refused() -> None:
    """Each pair is named by its SPIs (RFC 7296 §1.4.1, §3.10.1): a second pair with the SPI the peer
    already uses for one would make Deletes and REKEY_SA ambiguous, so it is refused."""
    pair, _, ours = make_pair()
    taken = child_of(ours).outbound_spi
    [response] = pair.to_responder(create_child_request(ours, spi=taken))
    assert read(ours, response, from_initiator=False).payloads == (
        NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN),
    )
    assert len(ours.children) == 1
