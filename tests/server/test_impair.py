"""The shell's lab impairments through the engine, seen by the initiator, under ``autojump_clock``
(issue 13): drop_response, delay_response, duplicate_response, corrupt_icv, tcp_close_after.

The initiator is the core's own (:class:`tests.server.test_engine.Peer`), so each test asserts what
it received and how it recovered: a retransmission over UDP (RFC 7296 §2.1), an integrity failure
dropped silently (§2.21.2), a second copy of a response ignored, a closed connection and the SA
carried on over a new one (RFC 9329 §6.1, §6.2).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import trio
from trio.testing import MockClock

from responder.core.config import Impairments
from responder.core.enums import ExchangeType
from responder.core.events import MessageDropped, ResponseReceived, RetransmissionAnswered
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.messages import decode_header
from responder.core.path import Outgoing, Path
from responder.server.engine import Engine
from responder.server.impair import OutboundImpairer, corrupt_icv
from tests.fakes.pair import child_request, initiator_settings, responder_config, reverse, seeded
from tests.server.test_engine import IKE, UDP, Peer, RecordingObserver, RecordingSink, tcp


def impairments(**settings: object) -> Impairments:
    impair = Impairments()
    for name, value in settings.items():
        impair = impair.with_setting(name, value)
    return impair


@pytest.fixture
async def nursery() -> AsyncIterator[trio.Nursery]:
    async with trio.open_nursery() as nursery:
        yield nursery
        nursery.cancel_scope.cancel()


async def impaired_peer(nursery: trio.Nursery, **settings: object) -> Peer:
    """The engine with ``settings`` as its impairments, running in ``nursery``."""
    config = responder_config(IKE, impair=impairments(**settings))
    engine = Engine(config, seeded(1), KeyExchangeFactory(seeded(2)), (RecordingObserver(),))
    await nursery.start(engine.run)
    observer = engine.observers[0]
    assert isinstance(observer, RecordingObserver)
    return Peer(engine, observer)


def start(peer: Peer, path: Path) -> IkeSa:
    """IKE_SA_INIT both ways; the initiator's IKE_AUTH request reaches the engine (Message ID 1)."""
    sa = peer.initiator.initiate(initiator_settings(IKE, child_request()), reverse(path), trio.current_time())
    peer.send(path)
    assert peer.answer() == 1
    assert peer.send(path) == 1  # IKE_AUTH
    return sa


def initiator_events(peer: Peer) -> list[object]:
    out = []
    while (event := peer.initiator.next_event()) is not None:
        out.append(event)
    return out


async def retransmit(peer: Peer) -> None:
    """Sleep until the initiator's retransmission timer and run it (RFC 7296 §2.1)."""
    timer = peer.initiator.get_timer()
    assert timer is not None
    await trio.sleep_until(timer)
    peer.initiator.handle_timer(trio.current_time())


def responses(sink: RecordingSink) -> list[tuple[ExchangeType, int]]:
    out = []
    for _, message, _ in sink.sent:
        header, _, _ = decode_header(message)
        if header.is_response:
            out.append((header.exchange_type, header.message_id))
    return out


# --------------------------------------------------------------------------- drop_response


async def test_drop_response_the_initiator_retransmits_and_gets_the_cached_answer(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    peer = await impaired_peer(nursery, drop_response=1)
    sink = peer.connect(UDP)
    sa = start(peer, UDP)
    assert responses(sink) == [] and sa.state is not IkeSaState.ESTABLISHED  # IKE_AUTH #1 dropped
    before = trio.current_time()
    await retransmit(peer)
    assert peer.send(UDP) == 1  # the same request again, one second later
    assert trio.current_time() - before == pytest.approx(1.0, abs=0.01)
    assert responses(sink) == [(ExchangeType.IKE_AUTH, 1)]
    peer.answer()
    assert sa.state is IkeSaState.ESTABLISHED
    assert [e for e, _ in peer.observer.of(RetransmissionAnswered)] == [
        RetransmissionAnswered(sa.spi_r, sa.spi_i, sa.spi_r, 1)
    ]


async def test_drop_response_zero_spares_stateless_answers_and_drops_the_ike_sa_init_response(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    """With force_cookie the COOKIE answer (no SA yet) arrives; the real IKE_SA_INIT response (#0)
    is the one dropped, and the initiator's retransmission gets it."""
    peer = await impaired_peer(nursery, drop_response=0, force_cookie=True)
    sink = peer.connect(UDP)
    sa = peer.initiator.initiate(initiator_settings(IKE, child_request()), reverse(UDP), trio.current_time())
    peer.send(UDP)
    assert responses(sink) == [(ExchangeType.IKE_SA_INIT, 0)]  # the COOKIE, SPIr zero
    peer.answer()
    peer.send(UDP)  # again, with the COOKIE: the SA is made, its response dropped
    assert responses(sink) == []
    await retransmit(peer)
    peer.pump(UDP)
    assert sa.state is IkeSaState.ESTABLISHED


# --------------------------------------------------------------------------- delay_response


async def test_delay_response_over_tcp_arrives_after_the_delay(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    peer = await impaired_peer(nursery, delay_response="1:5s")
    conn = tcp(1, 40001)
    sink = peer.connect(conn)
    sa = start(peer, conn)
    sent_at = trio.current_time()
    await trio.sleep(4.9)
    assert responses(sink) == []
    await trio.sleep(0.2)
    [(when, _, path)] = sink.sent
    assert when - sent_at == pytest.approx(5.0) and path == conn
    peer.answer()
    assert sa.state is IkeSaState.ESTABLISHED


async def test_delay_response_over_udp_holds_back_the_copies_asked_for_meanwhile(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    """The initiator retransmits at 1 s and 3 s; those copies would overtake the delayed response,
    so nothing leaves before 5 s; then exactly one response, and the SA is up."""
    peer = await impaired_peer(nursery, delay_response="1:5")
    sink = peer.connect(UDP)
    sa = start(peer, UDP)
    sent_at = trio.current_time()
    await retransmit(peer)
    peer.send(UDP)
    await retransmit(peer)
    peer.send(UDP)
    assert responses(sink) == [] and trio.current_time() - sent_at == pytest.approx(3.0)
    await trio.sleep(2.5)
    assert [when - sent_at for when, _, _ in sink.sent] == [pytest.approx(5.0)]
    peer.answer()
    assert sa.state is IkeSaState.ESTABLISHED


# --------------------------------------------------------------------------- duplicate_response


async def test_duplicate_response_the_initiator_sees_it_twice_and_ignores_the_second(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    peer = await impaired_peer(nursery, duplicate_response=1)
    sink = peer.connect(UDP)
    sa = start(peer, UDP)
    assert responses(sink) == [(ExchangeType.IKE_AUTH, 1)] * 2
    first, second = sink.sent[0][1], sink.sent[1][1]
    assert first == second
    initiator_events(peer)
    assert peer.answer() == 2
    assert sa.state is IkeSaState.ESTABLISHED
    dropped = [e for e in initiator_events(peer) if isinstance(e, MessageDropped)]
    assert len(dropped) == 1 and dropped[0].authenticated  # the copy: valid, but nobody waits for it
    peer.engine.receive_ike(peer.informational(sa), UDP)  # later responses go out once
    assert responses(sink) == [(ExchangeType.INFORMATIONAL, 2)]


# --------------------------------------------------------------------------- corrupt_icv


async def test_corrupt_icv_the_initiator_drops_it_as_an_integrity_failure_and_retransmits(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    peer = await impaired_peer(nursery, corrupt_icv=1)
    sink = peer.connect(UDP)
    sa = start(peer, UDP)
    [(_, corrupted, _)] = sink.sent
    initiator_events(peer)
    peer.answer()
    assert sa.state is not IkeSaState.ESTABLISHED
    [dropped] = [e for e in initiator_events(peer) if isinstance(e, MessageDropped)]
    assert not dropped.authenticated and dropped.reason == "IKE_AUTH: AEAD tag does not verify"
    await retransmit(peer)
    peer.send(UDP)
    [(_, clean, _)] = sink.sent
    assert clean == corrupt_icv(corrupted) and clean != corrupted  # only the ICV's last bit differs
    peer.answer()
    assert sa.state is IkeSaState.ESTABLISHED


def test_corrupt_icv_flips_the_lowest_bit_of_the_last_octet() -> None:
    assert corrupt_icv(b"\x00\x01\xfe") == b"\x00\x01\xff"
    assert corrupt_icv(b"\x10\xff") == b"\x10\xfe"
    assert corrupt_icv(b"") == b""


# --------------------------------------------------------------------------- tcp_close_after


async def test_tcp_close_after_the_connection_closes_and_the_sa_carries_on_over_a_new_one(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    """The IKE_AUTH response is written, then the connection is closed; the IKE SA stays, and the
    initiator's next request on a new connection is answered there (RFC 9329 §6.1, row A28)."""
    peer = await impaired_peer(nursery, tcp_close_after=1)
    one = tcp(1, 40001)
    sink = peer.connect(one)
    sa = start(peer, one)
    assert responses(sink) == [(ExchangeType.IKE_AUTH, 1)]
    assert sink.closed == "impairment tcp_close_after=1"
    peer.answer()
    assert sa.state is IkeSaState.ESTABLISHED
    peer.engine.detach(one)
    two = tcp(2, 40002)
    other = peer.connect(two)
    peer.engine.receive_ike(peer.informational(sa), two)
    assert responses(other) == [(ExchangeType.INFORMATIONAL, 2)] and other.closed is None
    peer.answer()
    assert [e for e in initiator_events(peer) if isinstance(e, ResponseReceived)]


async def test_tcp_close_after_leaves_udp_alone(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    peer = await impaired_peer(nursery, tcp_close_after=1)
    sink = peer.connect(UDP)
    peer.establish(UDP)
    assert sink.closed is None


# --------------------------------------------------------------------------- the impairer itself


async def test_without_impairments_every_message_is_forwarded_untouched(autojump_clock: MockClock) -> None:
    sent: list[Outgoing] = []
    impairer = OutboundImpairer(Impairments, sent.append, lambda path, reason: None)
    batch = [Outgoing(UDP, b"not even IKE"), Outgoing(UDP, b"\x00" * 8, esp=True)]
    impairer.send(batch)
    assert sent == batch and not impairer.active


async def test_junk_and_requests_are_never_impaired(autojump_clock: MockClock) -> None:
    sent: list[Outgoing] = []
    impair = impairments(drop_response=0, corrupt_icv=1)
    impairer = OutboundImpairer(lambda: impair, sent.append, lambda path, reason: None)
    junk = [Outgoing(UDP, b"short"), Outgoing(UDP, bytes(40)), Outgoing(UDP, b"\x01" * 8, esp=True)]
    impairer.send(junk)
    assert sent == junk and impairer.counts == {}


async def test_the_impairments_are_logged_when_they_act(
    nursery: trio.Nursery, autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "responder.server.impair")
    peer = await impaired_peer(nursery, drop_response=1)
    peer.connect(UDP)
    sa = start(peer, UDP)
    [line] = [r.getMessage() for r in caplog.records if r.name == "responder.server.impair"]
    assert f"SPIs {sa.spi_i.hex()}/{sa.spi_r.hex()}" in line
    assert line.endswith("impairment drop_response: IKE_AUTH #1 response not sent")
