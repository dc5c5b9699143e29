"""The engine with recording sinks and the core's initiator as the peer, under ``autojump_clock``.

Each connection is a :class:`RecordingSink`; :class:`Peer` moves messages
between the core initiator and the engine on whichever connection a test
says, so reconnection (new connection number, new remote port, same SPIs)
is one argument.  Tests named ``test_aNN_...`` check RFC 9329 requirement rows.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from ipaddress import ip_address

import attrs
import pytest
import trio
from trio.testing import MockClock

from responder.core.config import Config
from responder.core.dispatch import RESPONDERS
from responder.core.endpoint import Endpoint
from responder.core.enums import ExchangeType, NotifyType
from responder.core.errors import LocalError
from responder.core.events import (
    AnswerDeferred,
    ChildSaEstablished,
    Event,
    IkeSaClosed,
    IkeSaEstablished,
    IkeSaInitRefused,
    MessageDropped,
    RequestAnswered,
)
from responder.core.exchanges.base import Deferred, Exchange, Initiate, Reply
from responder.core.exchanges.informational import LivenessCheck
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.instant import Instant
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.message_layer import Received
from responder.core.messages import decode_header, decode_message
from responder.core.path import Outgoing, Path, Transport
from responder.core.payloads import NotifyPayload
from responder.server.engine import Engine
from responder.server.logs import RateLimiter
from responder.server.router import Router
from tests.fakes.pair import child_request, initiator_settings, responder_config, reverse, seeded

IKE = "aes256gcm16-prfsha256-x25519"
RESPONDER = ip_address("192.0.2.2")
INITIATOR = ip_address("192.0.2.1")


def tcp(connection: int, remote_port: int) -> Path:
    """A TCP connection as the responder sees it."""
    return Path(Transport.TCP, RESPONDER, 4500, INITIATOR, remote_port, connection)


UDP = Path(Transport.UDP, RESPONDER, 4500, INITIATOR, 4500)
UDP_SOCKET = Path(Transport.UDP, RESPONDER, 4500, RESPONDER, 0)  # what a UDP socket attaches with


@attrs.define(eq=False)
class RecordingSink:
    """A sink that keeps what it is given, with the time; ``alive=False`` refuses like a closing one."""

    sent: list[tuple[float, bytes, Path]] = attrs.Factory(list)
    esp: list[tuple[bytes, Path]] = attrs.Factory(list)
    alive: bool = True
    closed: str | None = None

    def send_ike(self, message: bytes, path: Path) -> bool:
        if not self.alive:
            return False
        self.sent.append((trio.current_time(), message, path))
        return True

    def send_esp(self, packet: bytes, path: Path, tos: int = 0, df: bool | None = None) -> bool:
        self.esp.append((packet, path))
        return self.alive

    def close(self, reason: str) -> None:
        self.closed = reason

    def take(self) -> list[tuple[bytes, Path]]:
        out = [(message, path) for _, message, path in self.sent]
        self.sent.clear()
        return out


@attrs.define(eq=False)
class RecordingObserver:
    seen: list[tuple[Event, Path | None]] = attrs.Factory(list)

    def observe(self, event: Event, path: Path | None) -> None:
        self.seen.append((event, path))

    def of(self, kind: type[Event]) -> list[tuple[Event, Path | None]]:
        return [(e, p) for e, p in self.seen if isinstance(e, kind)]


@attrs.define(eq=False)
class Peer:
    """The core initiator on one side, the engine on the other; sinks per connection."""

    engine: Engine
    observer: RecordingObserver
    initiator: Endpoint = attrs.Factory(lambda: Endpoint(Config(), seeded(7), KeyExchangeFactory(seeded(8))))
    sinks: dict[int | None, RecordingSink] = attrs.Factory(dict)

    def connect(self, path: Path) -> RecordingSink:
        sink = RecordingSink()
        self.sinks[path.connection] = sink
        self.engine.attach(UDP_SOCKET if path.connection is None else path, sink)
        return sink

    def send(self, path: Path) -> int:
        """Deliver what the initiator queued to the engine, as arriving on ``path``."""
        out = self.initiator.messages_to_send()
        for message in out:
            self.engine.receive_ike(message.data, path)
        return len(out)

    def answer(self) -> int:
        """Deliver what the engine sent, on every connection, to the initiator."""
        moved = 0
        for sink in self.sinks.values():
            for message, path in sink.take():
                self.initiator.receive(message, reverse(path), trio.current_time())
                moved += 1
        return moved

    def pump(self, path: Path) -> None:
        for _ in range(20):
            if not self.send(path) + self.answer():
                return
        raise AssertionError("endpoints kept talking")

    def establish(self, path: Path, *, child: bool = True) -> IkeSa:
        """A full handshake on ``path``; returns the initiator's SA."""
        settings = initiator_settings(IKE, child_request() if child else None)
        sa = self.initiator.initiate(settings, reverse(path), trio.current_time())
        self.pump(path)
        assert sa.state is IkeSaState.ESTABLISHED
        return sa

    def informational(self, sa: IkeSa) -> bytes:
        """An empty INFORMATIONAL request of the initiator (not yet delivered)."""
        self.initiator.request_liveness_check(sa.local_spi, trio.current_time())
        [message] = self.initiator.messages_to_send()
        return message.data


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    observer = RecordingObserver()
    engine = Engine(responder_config(IKE), seeded(1), KeyExchangeFactory(seeded(2)), (observer,))
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        yield Peer(engine, observer)
        nursery.cancel_scope.cancel()


def exchanges(sink: RecordingSink) -> list[tuple[ExchangeType, bool]]:
    """(exchange, is_response) of each message a sink got."""
    out = []
    for _, message, _ in sink.sent:
        header, _, _ = decode_header(message)
        out.append((header.exchange_type, header.is_response))
    return out


# --------------------------------------------------------------------------- handshake and routing


async def test_full_handshake_routed_through_the_connection_sink(
    peer: Peer, autojump_clock: MockClock
) -> None:
    conn = tcp(1, 40001)
    sink = peer.connect(conn)
    other = peer.connect(tcp(9, 40009))  # an unrelated connection never sees this SA's messages
    sa = peer.establish(conn)
    assert peer.engine.sa(sa.spi_r) is not None
    [(established, path)] = peer.observer.of(IkeSaEstablished)
    assert path == conn and established.spi_i == sa.spi_i
    stats = peer.engine.stats
    assert (stats.ike_sas, stats.half_open, stats.sa_tasks) == (1, 0, 1)
    assert (stats.messages_in, stats.messages_out, stats.sends_dropped) == (2, 2, 0)
    assert other.sent == [] and sink.sent == []  # all delivered by pump()
    assert peer.engine.carried(1) == (sa.spi_r,)


async def test_responses_go_to_the_connection_the_request_came_on(
    peer: Peer, autojump_clock: MockClock
) -> None:
    one, two = tcp(1, 40001), tcp(2, 40002)
    sink_one, sink_two = peer.connect(one), peer.connect(two)
    sa = peer.establish(one)
    peer.engine.receive_ike(peer.informational(sa), two)
    assert exchanges(sink_two) == [(ExchangeType.INFORMATIONAL, True)]
    assert sink_one.sent == []


async def test_a28_a36_reconnection_moves_responses_and_our_requests(
    peer: Peer, caplog: pytest.LogCaptureFixture, autojump_clock: MockClock
) -> None:
    """RFC 9329 §6.1: packets of an SA may come on a new connection from a new port (A28); we then
    send the SA's packets only on the connection that last carried a valid message (A36)."""
    caplog.set_level(logging.INFO, "responder.server.engine")
    one, two = tcp(1, 40001), tcp(2, 40002)
    sink_one = peer.connect(one)
    sa = peer.establish(one)
    peer.engine.detach(one)  # the old connection broke
    sink_two = peer.connect(two)
    peer.engine.receive_ike(peer.informational(sa), two)
    assert exchanges(sink_two) == [(ExchangeType.INFORMATIONAL, True)]
    peer.answer()
    assert peer.engine.carried(2) == (sa.spi_r,)  # a valid message of the SA came on it
    peer.engine.request_liveness_check(sa.spi_r)
    assert exchanges(sink_two) == [(ExchangeType.INFORMATIONAL, False)]
    assert peer.engine.sa(sa.spi_r).path == two  # type: ignore[union-attr]
    assert "now sent on tcp 192.0.2.1:40002 conn 2 (was tcp 192.0.2.1:40001 conn 1)" in caplog.text
    peer.answer()
    peer.send(two)  # the initiator's response to our liveness check
    assert sink_one.sent == [] and peer.engine.stats.sends_dropped == 0


async def test_a36_old_connection_still_accepted_while_open(peer: Peer, autojump_clock: MockClock) -> None:
    """RFC 9329 §6.1 (A36, A37): both connections are accepted; we send on the last valid one."""
    one, two = tcp(1, 40001), tcp(2, 40002)
    sink_one, sink_two = peer.connect(one), peer.connect(two)
    sa = peer.establish(one)
    peer.engine.receive_ike(peer.informational(sa), two)
    peer.answer()
    peer.engine.receive_ike(peer.informational(sa), one)  # back on the old one
    peer.answer()
    peer.engine.request_liveness_check(sa.spi_r)
    assert exchanges(sink_one) == [(ExchangeType.INFORMATIONAL, False)]
    assert sink_two.sent == []


async def test_a65_failed_icv_or_retransmission_on_a_new_connection_does_not_move_the_path(
    peer: Peer, autojump_clock: MockClock
) -> None:
    """RFC 9329 §10 (A65, A36): only a decrypted, authenticated, non-replayed message moves the path."""
    one, two, three = tcp(1, 40001), tcp(2, 40002), tcp(3, 40003)
    sink_one, sink_two, sink_three = peer.connect(one), peer.connect(two), peer.connect(three)
    sa = peer.establish(one)
    request = peer.informational(sa)
    forged = request[:-1] + bytes([request[-1] ^ 0x01])  # the ICV no longer verifies
    peer.engine.receive_ike(forged, two)
    assert sink_two.sent == []
    [(dropped, _)] = peer.observer.of(MessageDropped)
    assert "does not verify" in dropped.reason  # type: ignore[attr-defined]
    peer.engine.receive_ike(request, one)  # the genuine one, on the old connection
    [(response, _)] = sink_one.take()
    peer.engine.receive_ike(request, three)  # a retransmission: answered there, path unchanged
    assert [m for m, _ in sink_three.take()] == [response]
    peer.engine.request_liveness_check(sa.spi_r)
    assert exchanges(sink_one) == [(ExchangeType.INFORMATIONAL, False)]
    assert sink_two.sent == [] and sink_three.sent == []


async def test_a26_closing_the_connection_keeps_the_sa(peer: Peer, autojump_clock: MockClock) -> None:
    """RFC 9329 §6.1, §10 (A26): IKE SA state persists when the TCP connection is torn down."""
    one = tcp(1, 40001)
    peer.connect(one)
    sa = peer.establish(one)
    peer.engine.detach(one)
    await trio.sleep(600)
    assert peer.engine.sa(sa.spi_r) is not None
    assert peer.engine.stats.ike_sas == 1 and peer.engine.stats.sa_tasks == 1
    assert peer.observer.of(IkeSaClosed) == []
    assert peer.engine.carried(1) == ()


async def test_a30_new_ike_sa_init_on_a_connection_with_a_live_sa_is_processed(
    peer: Peer, caplog: pytest.LogCaptureFixture, autojump_clock: MockClock
) -> None:
    """RFC 9329 §6.1 (A30) policy: processed and logged; the connection answers for the newest SA."""
    caplog.set_level(logging.INFO, "responder.server.engine")
    one = tcp(1, 40001)
    peer.connect(one)
    first = peer.establish(one)
    second = peer.establish(one)
    assert first.spi_r != second.spi_r
    assert set(peer.engine.carried(1)) == {first.spi_r, second.spi_r}
    assert peer.engine.stats.ike_sas == 2
    assert f"live IKE SA {first.spi_r.hex()}: processed" in caplog.text


async def test_a30_retransmitted_ike_sa_init_is_not_a_second_sa(
    peer: Peer, caplog: pytest.LogCaptureFixture, autojump_clock: MockClock
) -> None:
    caplog.set_level(logging.INFO, "responder.server.engine")
    one = tcp(1, 40001)
    sink = peer.connect(one)
    peer.initiator.initiate(initiator_settings(IKE), reverse(one), trio.current_time())
    [request] = peer.initiator.messages_to_send()
    peer.engine.receive_ike(request.data, one)
    peer.engine.receive_ike(request.data, one)  # RFC 7296 §2.1: the same response again
    [first, second] = sink.take()
    assert first == second
    assert peer.engine.stats.ike_sas == 1
    assert "newest SA" not in caplog.text


# --------------------------------------------------------------------------- timers


async def test_half_open_sa_expires_by_its_own_task(peer: Peer, autojump_clock: MockClock) -> None:
    one = tcp(1, 40001)
    sink = peer.connect(one)
    peer.initiator.initiate(initiator_settings(IKE), reverse(one), trio.current_time())
    peer.send(one)
    assert exchanges(sink) == [(ExchangeType.IKE_SA_INIT, True)]
    assert peer.engine.stats.half_open == 1 and peer.engine.stats.sa_tasks == 1
    await trio.sleep(29.9)
    assert peer.engine.stats.half_open == 1
    await trio.sleep(0.2)  # half_open_timeout is 30 s
    stats = peer.engine.stats
    assert (stats.ike_sas, stats.half_open, stats.sa_tasks) == (0, 0, 0)
    [(closed, path)] = peer.observer.of(IkeSaClosed)
    assert "half-open" in closed.reason and path == one  # type: ignore[attr-defined]


async def test_a39_our_request_over_tcp_is_sent_once_and_ends_the_sa_unanswered(
    peer: Peer, autojump_clock: MockClock
) -> None:
    """RFC 9329 §6.2 (A39): no retransmission over TCP; no response in time deletes the IKE SA."""
    one = tcp(1, 40001)
    sink = peer.connect(one)
    sa = peer.establish(one)
    start = trio.current_time()
    peer.engine.request_liveness_check(sa.spi_r)
    await trio.sleep(30.9)
    assert peer.engine.sa(sa.spi_r) is not None
    await trio.sleep(30)
    assert exchanges(sink) == [(ExchangeType.INFORMATIONAL, False)]
    assert sink.sent[0][0] == start
    [(closed, path)] = peer.observer.of(IkeSaClosed)
    assert "RFC 9329 §6.2" in closed.reason and path == one  # type: ignore[attr-defined]
    assert peer.engine.stats.ike_sas == 0 and peer.engine.stats.sa_tasks == 0


async def test_our_request_over_udp_is_retransmitted(peer: Peer, autojump_clock: MockClock) -> None:
    """RFC 7296 §2.1: over UDP our request is retransmitted with exponential back-off, then the SA ends."""
    sink = peer.connect(UDP)
    sa = peer.establish(UDP)
    start = trio.current_time()
    peer.engine.request_liveness_check(sa.spi_r)
    await trio.sleep(60)
    times = [t - start for t, _, _ in sink.sent]
    assert times == [0.0, 1.0, 3.0, 7.0, 15.0]
    assert len({m for _, m, _ in sink.sent}) == 1  # bitwise identical
    [(closed, _)] = peer.observer.of(IkeSaClosed)
    assert "did not answer" in closed.reason  # type: ignore[attr-defined]
    assert peer.engine.stats.sa_tasks == 0


async def test_answered_request_cancels_the_timeout(peer: Peer, autojump_clock: MockClock) -> None:
    one = tcp(1, 40001)
    peer.connect(one)
    sa = peer.establish(one)
    peer.engine.request_liveness_check(sa.spi_r)
    peer.answer()
    peer.send(one)
    await trio.sleep(120)
    assert peer.engine.sa(sa.spi_r) is not None and peer.observer.of(IkeSaClosed) == []


# --------------------------------------------------------------------------- failures


@attrs.define(eq=False)
class RaisingSink:
    def send_ike(self, message: bytes, path: Path) -> bool:
        raise RuntimeError("broken sink")


async def test_dead_sink_never_raises(
    peer: Peer, caplog: pytest.LogCaptureFixture, autojump_clock: MockClock
) -> None:
    caplog.set_level(logging.INFO, "responder.server.engine")
    one = tcp(1, 40001)
    sink = peer.connect(one)
    sa = peer.establish(one)
    peer.engine.detach(one)
    request = peer.informational(sa)
    peer.engine.receive_ike(request, one)  # a late message of the closed connection
    peer.engine.request_liveness_check(sa.spi_r)
    assert peer.engine.stats.sends_dropped == 2 and sink.sent == []
    assert "connection gone" in caplog.text
    two, three = tcp(2, 40002), tcp(3, 40003)
    closing = peer.connect(two)
    closing.alive = False
    peer.engine.receive_ike(request, two)  # retransmitted: the cached response goes to a closing sink
    peer.engine.attach(three, RaisingSink())
    peer.engine.receive_ike(request, three)
    stats = peer.engine.stats
    # On each new connection: the cached response, and our liveness check sent once more (RFC 9329 §6.2).
    assert stats.sends_dropped == 6 and stats.internal_errors == 2
    assert "send queue full or closing" in caplog.text


async def test_commands_on_unknown_sas_are_local_errors(peer: Peer, autojump_clock: MockClock) -> None:
    with pytest.raises(LocalError):
        peer.engine.request_liveness_check(bytes(8))
    with pytest.raises(LocalError):
        peer.engine.request_delete(b"\x01" * 8)


async def test_garbage_is_dropped_and_the_engine_keeps_serving(peer: Peer, autojump_clock: MockClock) -> None:
    one = tcp(1, 40001)
    sink = peer.connect(one)
    unknown_spis = (
        b"\x01" * 16 + bytes([0, 0x20, ExchangeType.IKE_AUTH, 0x08]) + bytes(4) + (28).to_bytes(4, "big")
    )
    for junk in (b"", b"\x00" * 3, b"\xff" * 28, unknown_spis, unknown_spis + b"\xee" * 1000):
        peer.engine.receive_ike(junk, one)
    assert sink.sent == [] and peer.engine.stats.internal_errors == 0
    assert len(peer.observer.of(MessageDropped)) == 5
    peer.engine.receive_ike(bytes(range(200)), one)  # major version 1: RFC 7296 §2.5 answers it
    [(answer, _)] = sink.take()
    assert decode_message(answer).payloads == (NotifyPayload(NotifyType.INVALID_MAJOR_VERSION),)
    peer.establish(one)


async def test_refusal_reaches_observers_with_the_input_path(peer: Peer, autojump_clock: MockClock) -> None:
    one = tcp(1, 40001)
    sink = peer.connect(one)
    peer.initiator.initiate(initiator_settings("aes128-sha256-modp2048"), reverse(one), trio.current_time())
    peer.send(one)
    [(_, path)] = peer.observer.of(IkeSaInitRefused)
    assert path == one
    assert exchanges(sink) == [(ExchangeType.IKE_SA_INIT, True)]
    assert peer.engine.stats.ike_sas == 0 and peer.engine.stats.sa_tasks == 0


async def test_request_delete_ends_the_sa_and_its_task(peer: Peer, autojump_clock: MockClock) -> None:
    one = tcp(1, 40001)
    peer.connect(one)
    sa = peer.establish(one)
    peer.engine.request_delete(sa.spi_r)
    peer.pump(one)
    await trio.sleep(1)
    assert peer.engine.stats.ike_sas == 0 and peer.engine.stats.sa_tasks == 0
    assert peer.observer.of(IkeSaClosed) != []


async def test_engine_as_initiator_delivers_its_ike_sa_init(peer: Peer, autojump_clock: MockClock) -> None:
    """initiate(): the request goes out through the sink of the path given; its task retransmits over UDP."""
    sink = peer.connect(UDP)
    sa = peer.engine.initiate(initiator_settings(IKE), UDP)
    await trio.sleep(2)
    assert exchanges(sink) == [(ExchangeType.IKE_SA_INIT, False)] * 2  # sent, then resent after 1 s
    assert peer.engine.stats.sa_tasks == 1 and sa.state is IkeSaState.INIT_SENT


# --------------------------------------------------------------------------- ESP, observers, logs


async def test_esp_is_counted_per_connection_and_sa_and_dropped(
    peer: Peer, autojump_clock: MockClock
) -> None:
    one = tcp(1, 40001)
    sink = peer.connect(one)
    sa = peer.establish(one)
    [(child, _)] = peer.observer.of(ChildSaEstablished)
    inbound = child.inbound_spi  # type: ignore[attr-defined]
    for _ in range(3):
        peer.engine.receive_esp(inbound + bytes(4) + b"payload", one)
    peer.engine.receive_esp(b"\x99\x99\x99\x99" + bytes(12), one)
    stats = peer.engine.stats
    assert (stats.esp_packets, stats.esp_unknown_spi) == (4, 1)
    assert stats.esp_per_connection == {1: 4}
    assert stats.esp_per_sa == {sa.spi_r: 3}
    assert sink.sent == []
    peer.engine.request_delete(sa.spi_r)
    peer.pump(one)
    assert peer.engine.stats.esp_per_sa == {}  # forgotten with its SA
    assert peer.engine.stats.esp_per_connection == {1: 4}  # until the connection goes


async def test_events_reach_observers_with_the_sas_path(peer: Peer, autojump_clock: MockClock) -> None:
    one, two = tcp(1, 40001), tcp(2, 40002)
    peer.connect(one)
    peer.connect(two)
    sa = peer.establish(one)
    peer.engine.receive_ike(peer.informational(sa), two)
    answered = peer.observer.of(RequestAnswered)
    assert [(e.exchange, p) for e, p in answered] == [  # type: ignore[attr-defined]
        (ExchangeType.IKE_AUTH, one),
        (ExchangeType.INFORMATIONAL, two),
    ]


async def test_log_lines_name_the_exchange_and_never_keys(
    peer: Peer, caplog: pytest.LogCaptureFixture, autojump_clock: MockClock
) -> None:
    caplog.set_level(logging.DEBUG, "responder.server")
    one = tcp(1, 40001)
    peer.connect(one)
    sa = peer.establish(one)
    peer.engine.receive_ike(peer.informational(sa), one)
    lines = [r.getMessage() for r in caplog.records]
    spis = f"{sa.spi_i.hex()}/{sa.spi_r.hex()}"
    auth = [line for line in lines if "IKE_AUTH #1 answered" in line]
    assert len(auth) == 1
    assert "tcp 192.0.2.1:40001 conn 1" in auth[0] and spis in auth[0]
    assert any("IKE_SA_INIT #0 answered" in line and spis in line for line in lines)
    assert any("INFORMATIONAL #2 answered: liveness check" in line for line in lines)
    assert any("IKE SA established" in line and "alice@example.org" in line for line in lines)
    assert sa.keys is not None
    [(child, _)] = peer.observer.of(ChildSaEstablished)
    secrets = [
        getattr(sa.keys, name) for name in ("sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr")
    ]
    secrets += [value for value in attrs.astuple(child.keys) if isinstance(value, bytes)]  # type: ignore[attr-defined]
    text = caplog.text
    for secret in secrets:
        if secret:
            assert secret.hex() not in text and repr(secret)[2:-1] not in text


async def test_log_of_a_refusal_names_the_reason(
    peer: Peer, caplog: pytest.LogCaptureFixture, autojump_clock: MockClock
) -> None:
    caplog.set_level(logging.INFO, "responder.server.engine")
    one = tcp(1, 40001)
    peer.connect(one)
    peer.initiator.initiate(initiator_settings("aes128-sha256-modp2048"), reverse(one), trio.current_time())
    peer.send(one)
    [record] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "NO_PROPOSAL_CHOSEN" in record.getMessage() and "192.0.2.1:40001" in record.getMessage()


async def test_timers_before_run_start_once_it_runs(autojump_clock: MockClock) -> None:
    engine = Engine(responder_config(IKE), seeded(1), KeyExchangeFactory(seeded(2)))
    peer = Peer(engine, RecordingObserver())
    one = tcp(1, 40001)
    peer.connect(one)
    peer.initiator.initiate(initiator_settings(IKE), reverse(one), trio.current_time())
    peer.send(one)
    assert engine.stats.half_open == 1 and engine.stats.sa_tasks == 0
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        assert engine.stats.sa_tasks == 1
        await trio.sleep(31)
        assert engine.stats.half_open == 0 and engine.stats.sa_tasks == 0
        nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------- the router and the core's seams


async def test_router_sends_esp_through_send_esp_and_falls_back_to_the_wildcard_socket() -> None:
    """ESP leaves through the sink's ``send_esp`` (RFC 9329 §3.2 on a stream, RFC 3948 §2.1 on UDP);
    a UDP path finds the socket bound to every address of its port; a gone connection is counted."""
    router = Router(RateLimiter())
    stream, wildcard = RecordingSink(), RecordingSink()
    one = tcp(1, 40001)
    router.attach(one, stream)
    anywhere = ip_address(0)  # a socket bound to every IPv4 address
    router.attach(Path(Transport.UDP, anywhere, 4500, anywhere, 0), wildcard)
    router.route(Outgoing(one, b"\xc0\x00\x00\x01esp", esp=True))
    router.route(Outgoing(one, b"ike"))
    router.route(Outgoing(UDP, b"\xc0\x00\x00\x02esp", esp=True))
    router.route(Outgoing(tcp(2, 40002), b"ike"))
    assert stream.esp == [(b"\xc0\x00\x00\x01esp", one)] and stream.take() == [(b"ike", one)]
    assert wildcard.esp == [(b"\xc0\x00\x00\x02esp", UDP)]
    counts = router.counts
    assert (counts["esp_out"], counts["messages_out"], counts["sends_dropped"]) == (2, 1, 1)


@attrs.frozen
class Question:
    text: str


@attrs.define(eq=False)
class AskOutside(Exchange):
    """An INFORMATIONAL answer that waits for work outside the core, noting the time it was asked."""

    exchange_type = ExchangeType.INFORMATIONAL
    asked_at: list[Instant] = attrs.Factory(list)

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply | Deferred:
        self.asked_at.append(when)
        return Deferred(Question("may they?"))

    def resume(self, sa: IkeSa, result: object, when: Instant) -> Reply | Deferred:
        return Reply((), f"outside said {result}")


async def test_a_deferred_answer_is_resumed_through_the_engine_with_both_clocks(
    autojump_clock: MockClock,
) -> None:
    """The embedding program sees AnswerDeferred (with the work) among the events, does the work in a
    task of its own, and hands the result back with ``Engine.resume``; the core got the wall clock."""
    asker = AskOutside()
    table = {**RESPONDERS, (IkeSaState.ESTABLISHED, ExchangeType.INFORMATIONAL): lambda sa, request: asker}
    observer = RecordingObserver()
    engine = Engine(
        responder_config(IKE),
        seeded(1),
        KeyExchangeFactory(seeded(2)),
        (observer,),
        wall_clock=lambda: 1_765_000_000.0,
        responders=table,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        peer = Peer(engine, observer)
        one = tcp(1, 40001)
        sink = peer.connect(one)
        sa = peer.establish(one)
        await trio.sleep(5)
        engine.receive_ike(peer.informational(sa), one)
        [(deferred, _)] = observer.of(AnswerDeferred)
        assert isinstance(deferred, AnswerDeferred) and deferred.work == Question("may they?")
        assert asker.asked_at == [Instant(5.0, 1_765_000_000.0)]
        assert sink.take() == []

        async def backend() -> None:
            await trio.sleep(2)  # the outside work takes its time; other SAs are not held up
            assert engine.resume(deferred.local_spi, deferred.message_id, "yes")

        nursery.start_soon(backend)
        await trio.sleep(3)
        assert exchanges(sink) == [(ExchangeType.INFORMATIONAL, True)]
        answered = [e for e, _ in observer.of(RequestAnswered)][-1]
        assert isinstance(answered, RequestAnswered) and answered.result == "outside said yes"
        assert not engine.resume(deferred.local_spi, deferred.message_id, "again")
        nursery.cancel_scope.cancel()


async def test_a_resumed_answer_that_starts_a_request_wakes_the_sas_task(autojump_clock: MockClock) -> None:
    """After ``Engine.resume`` the SA's task looks at its deadline again: a request of ours that the
    resumed answer started is given up over TCP after 31 s (RFC 9329 §6.2), and the task ends."""

    @attrs.define(eq=False)
    class AskThenCheck(AskOutside):
        def resume(self, sa: IkeSa, result: object, when: Instant) -> Reply | Deferred:
            return Reply((), "answered; checking the peer", (Initiate(LivenessCheck()),))

    asker = AskThenCheck()
    table = {**RESPONDERS, (IkeSaState.ESTABLISHED, ExchangeType.INFORMATIONAL): lambda sa, request: asker}
    observer = RecordingObserver()
    engine = Engine(
        responder_config(IKE), seeded(1), KeyExchangeFactory(seeded(2)), (observer,), responders=table
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        peer = Peer(engine, observer)
        one = tcp(1, 40001)
        sink = peer.connect(one)
        sa = peer.establish(one)
        engine.receive_ike(peer.informational(sa), one)
        [(deferred, _)] = observer.of(AnswerDeferred)
        assert isinstance(deferred, AnswerDeferred)
        await trio.sleep(1)
        assert engine.resume(deferred.local_spi, deferred.message_id, "yes")
        assert exchanges(sink) == [(ExchangeType.INFORMATIONAL, True), (ExchangeType.INFORMATIONAL, False)]
        await trio.sleep(30.5)
        assert engine.stats.ike_sas == 1  # not before the response timeout
        await trio.sleep(1)
        [(closed, _)] = observer.of(IkeSaClosed)
        assert isinstance(closed, IkeSaClosed) and "did not answer INFORMATIONAL request 0" in closed.reason
        assert (engine.stats.ike_sas, engine.stats.sa_tasks) == (0, 0)
        nursery.cancel_scope.cancel()
