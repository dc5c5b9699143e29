"""Liveness checks and lost connections through the engine, under ``autojump_clock`` (issue 11).

RFC 7296 §2.4 (a peer that stops answering is found by a liveness check and its IKE SA ended),
§2.1 (over UDP with retransmissions), RFC 9329 §6.2 (row A39: over TCP never retransmitted; a
request waiting when the initiator comes back on a new connection is sent once more there, and one
left unanswered past the deadline has ended the SA).  The peer is the core's initiator moved by
:class:`tests.server.test_engine.Peer`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from trio.testing import MockClock

from responder.core.config import Dpd, IdPattern, PeerConfig
from responder.core.enums import ExchangeType
from responder.core.events import IkeSaClosed, MessageDropped
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.message_layer import TCP_RESPONSE_TIMEOUT
from responder.server.engine import Engine
from tests.fakes.pair import PSK, RESPONDER_ID, responder_config, seeded
from tests.server.test_engine import IKE, UDP, Peer, RecordingObserver, exchanges, tcp

DPD_DELAY = 30.0


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    """The engine with liveness checks after ``DPD_DELAY`` seconds of silence."""
    alice = PeerConfig(
        "alice", IdPattern.parse("alice@example.org"), PSK, local_id=RESPONDER_ID, dpd=Dpd(DPD_DELAY)
    )
    observer = RecordingObserver()
    engine = Engine(
        responder_config(IKE, peers=(alice,)), seeded(1), KeyExchangeFactory(seeded(2)), (observer,)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        yield Peer(engine, observer)
        nursery.cancel_scope.cancel()


async def test_a_live_peer_answers_the_liveness_checks_and_keeps_its_sa(
    peer: Peer, autojump_clock: MockClock
) -> None:
    """RFC 7296 §2.4: a check after every DPD_DELAY of silence; each answer keeps the SA."""
    sink = peer.connect(UDP)
    sa = peer.establish(UDP)
    for _ in range(5):
        await trio.sleep(DPD_DELAY + 0.1)
        assert exchanges(sink) == [(ExchangeType.INFORMATIONAL, False)]
        peer.answer()
        peer.send(UDP)  # the initiator's (empty) response
    assert peer.engine.sa(sa.spi_r) is not None and peer.observer.of(IkeSaClosed) == []


async def test_a_dead_peer_over_udp_ends_its_sa_after_the_retransmissions(
    peer: Peer, autojump_clock: MockClock
) -> None:
    """RFC 7296 §2.1, §2.4: the check is retransmitted bitwise with back-off, then the SA ends."""
    sink = peer.connect(UDP)
    sa = peer.establish(UDP)
    start = trio.current_time()
    await trio.sleep(DPD_DELAY + 60)
    times = [t - start for t, _, _ in sink.sent]
    assert times == [30.0, 31.0, 33.0, 37.0, 45.0]
    assert len({message for _, message, _ in sink.sent}) == 1
    [(closed, _)] = peer.observer.of(IkeSaClosed)
    assert "did not answer INFORMATIONAL" in closed.reason  # type: ignore[attr-defined]
    assert peer.engine.sa(sa.spi_r) is None and peer.engine.stats.sa_tasks == 0


async def test_a_dead_peer_over_tcp_ends_its_sa_without_retransmission(
    peer: Peer, autojump_clock: MockClock
) -> None:
    """RFC 9329 §6.2 (row A39): over TCP the check is sent once; unanswered, the SA ends."""
    one = tcp(1, 40001)
    sink = peer.connect(one)
    sa = peer.establish(one)
    start = trio.current_time()
    await trio.sleep(DPD_DELAY + TCP_RESPONSE_TIMEOUT - 0.5)
    assert peer.engine.sa(sa.spi_r) is not None
    await trio.sleep(1.0)
    assert [t - start for t, _, _ in sink.sent] == [DPD_DELAY]
    [(closed, _)] = peer.observer.of(IkeSaClosed)
    assert "RFC 9329 §6.2" in closed.reason  # type: ignore[attr-defined]
    assert peer.engine.stats.sa_tasks == 0


async def test_a39_the_initiator_reconnects_before_the_deadline(
    peer: Peer, autojump_clock: MockClock
) -> None:
    """RFC 9329 §6.2 (row A39): the connection dies with our check pending; the initiator comes back
    on a new connection and our check is sent once more there; answered, the SA lives on."""
    one, two = tcp(1, 40001), tcp(2, 40002)
    sink_one = peer.connect(one)
    sa = peer.establish(one)
    await trio.sleep(DPD_DELAY + 0.1)
    [(lost, _)] = sink_one.take()  # our check went out and died with the connection
    peer.engine.detach(one)
    await trio.sleep(10)
    sink_two = peer.connect(two)
    peer.engine.receive_ike(peer.informational(sa), two)  # the initiator is back
    assert exchanges(sink_two) == [(ExchangeType.INFORMATIONAL, False), (ExchangeType.INFORMATIONAL, True)]
    assert sink_two.sent[0][1] == lost  # the same request, bitwise (RFC 7296 §2.1)
    peer.answer()
    peer.send(two)  # its answer to our check
    await trio.sleep(TCP_RESPONSE_TIMEOUT + 5)
    assert peer.engine.sa(sa.spi_r) is not None and peer.observer.of(IkeSaClosed) == []


async def test_a39_the_initiator_reconnects_after_the_deadline(peer: Peer, autojump_clock: MockClock) -> None:
    """RFC 9329 §6.2 (row A39): unanswered past the deadline the SA is gone; the initiator that comes
    back later finds no SA (its message names unknown SPIs and gets no answer)."""
    one, two = tcp(1, 40001), tcp(2, 40002)
    sink_one = peer.connect(one)
    sa = peer.establish(one)
    await trio.sleep(DPD_DELAY + 0.1)
    assert len(sink_one.take()) == 1
    peer.engine.detach(one)
    await trio.sleep(TCP_RESPONSE_TIMEOUT + 1)
    assert peer.engine.sa(sa.spi_r) is None
    sink_two = peer.connect(two)
    peer.engine.receive_ike(peer.informational(sa), two)
    assert sink_two.sent == []
    assert "unknown SPIs" in peer.observer.of(MessageDropped)[-1][0].reason  # type: ignore[attr-defined]
