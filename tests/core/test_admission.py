"""Admission of IKE_SA_INIT and answers to the unauthenticated (issue 15; RFC 7296 §2.6, §2.21, §3.1).

Half-open budgets per kind of transport, per source (IPv6 per prefix) and per stream connection;
the rate of answers to unprotected messages; the header octets of every stateless answer; an answer
for every authenticated request the SA's state does not take.  Hostile requests come from their own
paths while a well-behaved initiator (the core's initiator role) completes its handshake.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Network, ip_address

import pytest

from responder.core.admission import HalfOpenBudgets, ReplyRate, source_key
from responder.core.config import IkeProposal, Limits
from responder.core.enums import ExchangeType, KeyExchangeId, NotifyType
from responder.core.events import IkeSaClosed, IkeSaInitRefused, MessageDropped
from responder.core.ike_sa import IkeSaState
from responder.core.messages import Header, Message, decode_header, decode_message, encode_message
from responder.core.outcomes import Verdict
from responder.core.path import Path, Transport
from responder.core.payloads import (
    AuthPayload,
    IdiPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
)
from responder.core.proposals import offer
from tests.fakes.pair import (
    Pair,
    child_request,
    forge,
    initiator_settings,
    read,
    responder_config,
)

IKE = "aes256gcm16-prfsha256-x25519"
SERVER = ip_address("192.0.2.2")


def path(transport: Transport, source: str, port: int = 40000, connection: int | None = None) -> Path:
    """A path as the responder sees it, from ``source``."""
    if transport is not Transport.UDP and connection is None:
        connection = port
    return Path(transport, SERVER, 4500, ip_address(source), port, connection)


def ike_sa_init(
    spi_i: bytes, *, group: KeyExchangeId = KeyExchangeId.CURVE25519, version: int = 0x20
) -> bytes:
    """A well-formed IKE_SA_INIT request (its KE value all zeros: it is never completed)."""
    header = Header(
        spi_i=spi_i,
        spi_r=bytes(8),
        exchange_type=ExchangeType.IKE_SA_INIT,
        is_initiator=True,
        is_response=False,
        message_id=0,
    )
    payloads = (
        offer((IkeProposal.parse(IKE),)),
        KePayload(group, b"\x09" + bytes(31)),
        NoncePayload(bytes(range(32))),
    )
    data = bytearray(encode_message(Message(header, payloads)))
    data[17] = version
    return bytes(data)


def spi(number: int) -> bytes:
    return number.to_bytes(8, "big")


# --------------------------------------------------------------------------- the budgets themselves


def test_budgets_count_by_kind_source_and_connection() -> None:
    budgets = HalfOpenBudgets(Limits(half_open_max=3, half_open_per_source=2, half_open_per_connection=1))
    tcp_a1 = path(Transport.TCP, "198.51.100.1", 1)
    assert budgets.refusal(tcp_a1) is None
    budgets.add(b"a" * 8, tcp_a1)
    assert "half_open_per_connection (1)" in (budgets.refusal(tcp_a1) or "")
    tcp_a2 = path(Transport.TCP, "198.51.100.1", 2)
    budgets.add(b"b" * 8, tcp_a2)
    assert "half_open_per_source (2) reached by 198.51.100.1 over stream" in (
        budgets.refusal(path(Transport.TLS, "198.51.100.1", 3)) or ""
    )
    # UDP from the same address has budgets of its own (a flood over one kind never starves the other).
    assert budgets.refusal(path(Transport.UDP, "198.51.100.1")) is None
    budgets.add(b"c" * 8, path(Transport.TCP, "198.51.100.9", 4))
    assert "half_open_max (3) reached over stream" in (
        budgets.refusal(path(Transport.TCP, "203.0.113.1", 5)) or ""
    )
    assert budgets.refusal(path(Transport.UDP, "203.0.113.1")) is None
    budgets.remove(b"a" * 8)
    budgets.remove(b"a" * 8)  # idempotent
    assert budgets.refusal(tcp_a1) is None and len(budgets) == 2


def test_ipv6_sources_count_by_prefix_and_mapped_ipv4_as_ipv4() -> None:
    """A host owns a whole /64: its addresses share one budget; an IPv4-mapped address is its IPv4."""
    assert source_key(path(Transport.UDP, "2001:db8:1:2::1"), 64) == source_key(
        path(Transport.UDP, "2001:db8:1:2:ffff::9"), 64
    )
    assert source_key(path(Transport.UDP, "2001:db8:1:2::1"), 64)[1] == IPv6Network("2001:db8:1:2::/64")
    assert source_key(path(Transport.UDP, "2001:db8:1:3::1"), 64) != source_key(
        path(Transport.UDP, "2001:db8:1:2::1"), 64
    )
    assert source_key(path(Transport.UDP, "::ffff:198.51.100.7"), 64)[1] == IPv4Address("198.51.100.7")
    budgets = HalfOpenBudgets(Limits(half_open_per_source=1))
    budgets.add(b"a" * 8, path(Transport.UDP, "2001:db8:1:2::1"))
    assert budgets.refusal(path(Transport.UDP, "2001:db8:1:2::abcd")) is not None
    assert budgets.refusal(path(Transport.UDP, "2001:db8:1:99::1")) is None


def test_reply_rate_allows_bursts_then_the_rate_per_source_and_overall() -> None:
    rate = ReplyRate(per_source=5.0, overall=12.0)
    one, two = path(Transport.UDP, "198.51.100.1"), path(Transport.UDP, "198.51.100.2")
    assert sum(rate.allow(one, 0.0) for _ in range(20)) == 10  # a burst of twice the rate
    assert not rate.allow(one, 0.1) and rate.allow(one, 0.2)  # then 5 a second
    # The overall bucket (12 in a burst, 12 a second) has 3.4 left: another source gets 3.
    assert sum(rate.allow(two, 0.2) for _ in range(20)) == 3
    assert rate.held_back == (20 - 10) + 1 + (20 - 3)
    rate = ReplyRate(per_source=1.0, overall=100.0, max_sources=3)
    for host in range(10):
        rate.allow(path(Transport.UDP, f"198.51.100.{host + 1}"), 0.0)
    assert len(rate._sources) == 3  # memory stays bounded


# --------------------------------------------------------------------------- through the endpoint


def test_one_tcp_connection_cannot_fill_the_half_open_table() -> None:
    """Issue 15 item 1: a connection sending IKE_SA_INITs gets half_open_per_connection SAs, its source
    half_open_per_source; a clean initiator over UDP and one over TCP from elsewhere still get in."""
    pair = Pair.create(responder_config(IKE))
    hostile = path(Transport.TCP, "198.51.100.66", 50000, connection=7)
    verdicts = [pair.responder.receive(ike_sa_init(spi(n + 1)), hostile, 0.0).verdict for n in range(100)]
    assert verdicts.count(Verdict.CREATED) == 4 and verdicts.count(Verdict.LIMITED) == 96
    for connection in range(8, 20):  # more connections from the same source: 10 in all
        other = path(Transport.TCP, "198.51.100.66", 50000 + connection, connection=connection)
        pair.responder.receive(ike_sa_init(spi(1000 + connection)), other, 0.0)
    assert pair.responder.half_open_count == 10
    pair.responder.messages_to_send()
    pair.drain()
    dropped = [e.reason for e in pair.events(MessageDropped)]
    assert "half_open_per_connection (4) reached on conn 7" in dropped[0]
    assert "half_open_per_source (10) reached by 198.51.100.66 over stream" in dropped[-1]
    initiator = pair.initiate(initiator_settings(IKE, child_request()))  # the clean one, over UDP
    pair.pump()
    assert initiator.state is IkeSaState.ESTABLISHED
    tcp = Pair.create(responder_config(IKE), transport=Transport.TCP)
    for n in range(50):
        tcp.responder.receive(ike_sa_init(spi(n + 1)), hostile, 0.0)
    clean = tcp.initiate(initiator_settings(IKE, child_request()))
    tcp.pump()
    assert clean.state is IkeSaState.ESTABLISHED


def test_a_zero_initiator_spi_is_dropped() -> None:
    """RFC 7296 §3.1: SPIi "MUST NOT be zero"; such an IKE_SA_INIT makes nothing and gets nothing."""
    pair = Pair.create(responder_config(IKE))
    outcome = pair.responder.receive(ike_sa_init(bytes(8)), path(Transport.UDP, "198.51.100.1"), 0.0)
    assert outcome.verdict is Verdict.MALFORMED
    assert pair.responder.messages_to_send() == [] and pair.responder.ike_sa_count == 0
    pair.drain()
    assert "zero initiator SPI" in pair.events(MessageDropped)[0].reason


def test_answers_to_unprotected_messages_are_rate_limited() -> None:
    """RFC 7296 §2.21.4, issue 15 item 8: refusals and INVALID_MAJOR_VERSION from one source are
    answered at most in a burst of twice ``unprotected_replies_per_source``, then at that rate."""
    pair = Pair.create(responder_config(IKE, limits=Limits(unprotected_replies_per_source=5.0)))
    source = path(Transport.UDP, "198.51.100.1")
    for n in range(30):  # a group we do not take: INVALID_KE_PAYLOAD would name ours
        pair.responder.receive(ike_sa_init(spi(n + 1), group=KeyExchangeId.ECP_256), source, 0.0)
    for n in range(30):
        pair.responder.receive(ike_sa_init(spi(100 + n), version=0x30), source, 0.0)
    assert len(pair.responder.messages_to_send()) == 10
    assert pair.responder.replies_held_back == 50
    pair.responder.receive(ike_sa_init(spi(999), version=0x30), source, 1.0)  # five more a second
    assert len(pair.responder.messages_to_send()) == 1
    other = path(Transport.UDP, "198.51.100.2")  # another source has its own bucket
    pair.responder.receive(ike_sa_init(spi(555), version=0x30), other, 1.0)
    assert len(pair.responder.messages_to_send()) == 1


# --------------------------------------------------------------------------- header octets


def refusal(pair: Pair, request: bytes, source: Path) -> bytes:
    pair.responder.receive(request, source, 0.0)
    [answer] = pair.responder.messages_to_send()
    return answer.data


@pytest.mark.parametrize(
    ("notify", "make"),
    [
        (
            NotifyType.INVALID_KE_PAYLOAD,
            lambda: ike_sa_init(spi(7), group=KeyExchangeId.ECP_256, version=0x21),
        ),
        (NotifyType.NO_PROPOSAL_CHOSEN, None),
        (NotifyType.INVALID_SYNTAX, None),
        (NotifyType.COOKIE, None),
        (NotifyType.INVALID_MAJOR_VERSION, lambda: ike_sa_init(spi(7), version=0x31)),
    ],
    ids=lambda value: value.name if isinstance(value, NotifyType) else "",
)
def test_stateless_answers_carry_a_header_of_our_own(notify: NotifyType, make: object) -> None:
    """RFC 7296 §3.1, §2.6 (issue 15 item 3, row B10): version 2.0 (0x20) whatever the request said,
    the Version flag clear, the Response flag set, the Initiator flag clear, SPIr zero, SPIi and the
    Message ID copied."""
    limits = Limits(cookie_threshold=0) if notify is NotifyType.COOKIE else Limits()
    pair = Pair.create(responder_config(IKE, limits=limits))
    base = bytearray(ike_sa_init(spi(7), version=0x21))
    base[19] |= 0x10  # the Version flag ("I can speak a higher major version")
    if notify is NotifyType.NO_PROPOSAL_CHOSEN:
        other = responder_config("aes128-sha1-modp2048").ike_proposals
        message = decode_message(bytes(base))
        payloads = (offer(other), *message.payloads[1:])
        base = bytearray(encode_message(Message(message.header, payloads)))
        base[17], base[19] = 0x21, base[19] | 0x10
    elif notify is NotifyType.INVALID_SYNTAX:
        message = decode_message(bytes(base))
        base = bytearray(encode_message(Message(message.header, message.payloads[:1])))  # no KE, no Nonce
        base[17], base[19] = 0x21, base[19] | 0x10
    elif callable(make):
        base = bytearray(make())
        base[19] |= 0x10
    answer = refusal(pair, bytes(base), path(Transport.UDP, "198.51.100.1"))
    assert answer[17] == 0x20 and answer[19] == 0x20  # version 2.0; only the Response flag
    assert answer[:8] == bytes(base[:8]) and answer[8:16] == bytes(8) and answer[20:24] == bytes(base[20:24])
    if notify is not NotifyType.INVALID_MAJOR_VERSION:
        [payload] = decode_message(answer).payloads
        assert isinstance(payload, NotifyPayload) and payload.notify_type is notify


# --------------------------------------------------------------------------- out-of-state requests


def established() -> tuple[Pair, object]:
    pair = Pair.create(responder_config(IKE))
    pair.initiate(initiator_settings(IKE, child_request()))
    pair.pump()
    [ours] = pair.responder.sas
    return pair, ours


@pytest.mark.parametrize(
    "exchange", [ExchangeType.IKE_AUTH, ExchangeType(43), ExchangeType(99)], ids=["IKE_AUTH", "43", "99"]
)
def test_an_authenticated_request_the_state_does_not_take_is_answered_invalid_syntax(
    exchange: ExchangeType,
) -> None:
    """RFC 7296 §2.21.3, issue 15 item 4: after authentication "all requests having errors MUST result
    in a response": a second IKE_AUTH, or an exchange type we do not know, inside the window, gets
    INVALID_SYNTAX (fatal: the IKE SA ends on both ends) instead of silence and retransmissions."""
    pair, ours = established()
    request = forge(
        ours, exchange, (IdiPayload(1, b"\x01\x02\x03\x04"), AuthPayload(2, bytes(32))), message_id=2
    )
    [response] = pair.to_responder(request)
    header = decode_header(response)[0]
    assert header.is_response and header.message_id == 2 and header.exchange_type == exchange
    assert read(ours, response, from_initiator=False).payloads == (NotifyPayload(NotifyType.INVALID_SYNTAX),)
    assert ours.state is IkeSaState.CLOSED


# --------------------------------------------------------------------------- fair share past half_open_max


def test_fair_share_victim_is_the_oldest_of_the_greediest_source() -> None:
    budgets = HalfOpenBudgets(Limits(half_open_max=4, half_open_per_source=3))
    for n, source in enumerate(["198.51.100.1", "198.51.100.1", "198.51.100.2", "198.51.100.1"]):
        budgets.add(spi(n + 1), path(Transport.UDP, source))
    newcomer = path(Transport.UDP, "203.0.113.9")
    assert budgets.fair_share_victim(path(Transport.TCP, "203.0.113.9", connection=1)) is None  # room
    chosen = budgets.fair_share_victim(newcomer)
    assert chosen is not None
    victim, why = chosen
    assert victim == spi(1)
    assert "198.51.100.1 held the most half-open IKE SAs (3) and 203.0.113.9 0" in why
    # 198.51.100.2 holds 1: taking one from a source of 3 would leave it 2 and 198.51.100.1 2: allowed;
    # the greediest itself never gets in that way.
    assert budgets.fair_share_victim(path(Transport.UDP, "198.51.100.2")) is not None
    assert budgets.fair_share_victim(path(Transport.UDP, "198.51.100.1")) is None
    budgets.remove(spi(1))
    budgets.add(spi(9), newcomer)
    # Now 2, 1, 1: a second newcomer still takes from the source of two ...
    second = path(Transport.UDP, "203.0.113.10")
    chosen = budgets.fair_share_victim(second)
    assert chosen is not None and chosen[0] == spi(2)
    budgets.remove(spi(2))
    budgets.add(spi(10), second)
    # ... and with one apiece nobody holds two more than anybody else: a third waits its turn.
    third = path(Transport.UDP, "203.0.113.11")
    assert budgets.fair_share_victim(third) is None
    assert "half_open_max (4) reached over udp" in (budgets.refusal(third) or "")
    assert budgets.refusal(third, sharing=True) is None


def test_many_sources_within_their_budgets_cannot_keep_a_new_source_out() -> None:
    """The distributed flood bench/hostile.py showed: sources that each stay within
    half_open_per_source fill half_open_max over UDP; a clean initiator from another address proves
    its address with a COOKIE and takes the place of the greediest source's oldest half-open SA."""
    limits = Limits(half_open_max=20, half_open_per_source=5)
    pair = Pair.create(responder_config(IKE, limits=limits))
    n = 0
    for source in range(4):
        for _ in range(5):
            n += 1
            verdict = pair.responder.receive(
                ike_sa_init(spi(n)), path(Transport.UDP, f"198.51.100.{source}"), 0.0
            )
            assert verdict.verdict is Verdict.CREATED
    assert pair.responder.half_open_count == 20
    pair.responder.messages_to_send()
    # Without a COOKIE, a request from a new address cannot end anybody's half-open SA (it is spoofable).
    cookieless = pair.responder.receive(ike_sa_init(spi(99)), path(Transport.UDP, "203.0.113.7"), 0.0)
    assert cookieless.verdict is Verdict.REFUSED and pair.responder.half_open_count == 20
    pair.responder.messages_to_send()
    pair.drain()
    clean = pair.initiate(initiator_settings(IKE, child_request()))
    pair.pump()
    assert clean.state is IkeSaState.ESTABLISHED
    [ended] = [e for e in pair.events(IkeSaClosed) if "to make room" in e.reason]
    assert ended.spi_i == spi(1)  # the oldest of the first of the sources holding five
    assert pair.responder.half_open_count == 19


def test_forged_floods_from_ever_new_addresses_starve_no_clean_initiator() -> None:
    """The bucket for all sources is spent by forged requests from 3,000 addresses; a clean
    initiator over UDP still gets its COOKIE and INVALID_KE_PAYLOAD (its source's bucket only), and
    over TCP nothing is rate-limited at all (the source is proven, nothing is reflected)."""
    limits = Limits(cookie_threshold=0, unprotected_replies_max=100.0)
    pair = Pair.create(responder_config(IKE, limits=limits))
    for n in range(3000):
        forged = path(Transport.UDP, f"10.{n // 250}.{n % 250}.1")
        pair.responder.receive(ike_sa_init(spi(n + 1), version=0x31), forged, 0.0)
    answered = len(pair.responder.messages_to_send())
    assert answered == 100 and pair.responder.replies_held_back == 2900  # INVALID_MAJOR_VERSION
    clean = pair.initiate(initiator_settings("aes256gcm16-prfsha256-ecp256-x25519", child_request()))
    pair.pump()  # INVALID_KE_PAYLOAD, then a COOKIE, then the handshake
    assert clean.state is IkeSaState.ESTABLISHED
    refusals = [e.notify for e in pair.events(IkeSaInitRefused)]
    assert NotifyType.INVALID_KE_PAYLOAD in refusals and NotifyType.COOKIE in refusals
    tcp = path(Transport.TCP, "198.51.100.77", connection=3)
    for n in range(50):  # far over the per-source rate: every one answered over TCP
        pair.responder.receive(ike_sa_init(spi(5000 + n), group=KeyExchangeId.ECP_256), tcp, 0.0)
    assert len(pair.responder.messages_to_send()) == 50


def test_fair_share_skips_a_half_open_sa_whose_ike_auth_answer_is_in_the_making() -> None:
    budgets = HalfOpenBudgets(Limits(half_open_max=3, half_open_per_source=3))
    for n in range(3):
        budgets.add(spi(n + 1), path(Transport.UDP, "198.51.100.1"))
    newcomer = path(Transport.UDP, "203.0.113.9")
    chosen = budgets.fair_share_victim(newcomer, busy=lambda local_spi: local_spi == spi(1))
    assert chosen is not None and chosen[0] == spi(2)
    assert budgets.fair_share_victim(newcomer, busy=lambda _: True) is None
