"""RFC 9329 requirement rows through the server: the real engine behind the stream transport.

Each ``test_aNN_...`` checks row ANN of ``shared/reference/responder-requirements.md``
and fails when the behaviour it names is removed; ``docs/rfc9329-rows.md`` says
what each one asserts.  The responder is :class:`~responder.server.engine.Engine`
behind :func:`~responder.server.streams.serve_stream_listener` on a
:class:`~tests.server.fakes.MemoryListener` (memory streams, ``autojump_clock``
for the grace periods); the Originator is the core's own initiator
(:class:`~responder.core.endpoint.Endpoint`) writing RFC 9329 frames by hand,
so a test can send exactly the octets it needs (forged ICVs, malformed
payloads, ESP with unknown SPIs) on exactly the connection it names.  UDP,
where a row needs it, is a recording sink attached to the same engine.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import hypothesis
import hypothesis.strategies as st
import pytest
import trio
import trio.testing

from responder.core.config import Config, Limits
from responder.core.endpoint import Endpoint
from responder.core.enums import ExchangeType, NotifyType, PayloadType, ProtocolId
from responder.core.events import (
    ChildSaEstablished,
    Event,
    IkeSaClosed,
    IkeSaInitRefused,
    ResponseReceived,
)
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.messages import Header, Message, decode_message, encode_message, encode_payloads
from responder.core.path import Path, Transport
from responder.core.payloads import DeletePayload, NotifyPayload
from responder.core.sk_payload import protect_bytes, unprotect
from responder.core.tcp_framing import STREAM_PREFIX, IkeFrame, StreamDeframer, frame_esp, frame_ike
from responder.server.connections import Connection, ConnectionTable
from responder.server.engine import Engine
from responder.server.settings import ServerSettings
from responder.server.streams import serve_stream_listener
from tests.fakes.pair import (
    child_request,
    forge,
    initiator_settings,
    responder_config,
    reverse,
    seeded,
    sk_keys,
)
from tests.server.fakes import LOCAL, PEER, MemoryListener

SUITE = "aes256gcm16-prfsha256-x25519"
LOCAL_ADDRESS, LOCAL_PORT = LOCAL
UDP_SOCKET = Path(Transport.UDP, LOCAL_ADDRESS, LOCAL_PORT, LOCAL_ADDRESS, 0)  # what a UDP socket attaches


def udp_from(port: int) -> Path:
    """A datagram from the Originator's ``port``, as the responder sees it."""
    return Path(Transport.UDP, LOCAL_ADDRESS, LOCAL_PORT, PEER, port)


# --------------------------------------------------------------------------- the responder


@attrs.define(eq=False)
class UdpRecorder:
    """A UDP socket's sink: keeps what the engine sends; ``close`` is recorded (and must stay unused)."""

    sent: list[tuple[bytes, Path]] = attrs.Factory(list)
    closes: list[str] = attrs.Factory(list)

    def send_ike(self, message: bytes, path: Path) -> bool:
        self.sent.append((message, path))
        return True

    def close(self, reason: str) -> None:
        self.closes.append(reason)

    def take(self) -> list[tuple[bytes, Path]]:
        out, self.sent = self.sent, []
        return out


@attrs.define(eq=False)
class Server:
    listener: MemoryListener
    engine: Engine
    table: ConnectionTable
    udp: UdpRecorder

    def connection(self, port: int) -> Connection | None:
        """The open connection from the Originator's ``port``, if the server still has it."""
        return next((c for c in self.table.connections() if c.remote_port == port), None)

    def is_open(self, port: int) -> bool:
        connection = self.connection(port)
        return connection is not None and connection.reason is None


@asynccontextmanager
async def serving(config: Config | None = None, **limits: Any) -> AsyncIterator[Server]:
    """A server of ``config``, or of the usual responder with these ``Limits`` (orphan_timeout=...)."""
    settings = ServerSettings()
    config = config or responder_config(SUITE, limits=Limits(**limits))
    engine = Engine(config, seeded(1), KeyExchangeFactory(seeded(2)))
    listener = MemoryListener()
    table = ConnectionTable(settings)
    udp = UdpRecorder()
    engine.attach(UDP_SOCKET, udp)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await nursery.start(
            partial(
                serve_stream_listener,
                listener,
                Transport.TCP,
                engine,
                table,
                settings,
                None,
                addresses=listener.addresses,
            )
        )
        yield Server(listener, engine, table, udp)
        nursery.cancel_scope.cancel()


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


# --------------------------------------------------------------------------- the Originator


@attrs.define(eq=False)
class Stream:
    """One TCP connection of the Originator; ``path`` is as the Originator sees it."""

    stream: trio.abc.Stream
    path: Path
    deframer: StreamDeframer = attrs.Factory(StreamDeframer)

    def __attrs_post_init__(self) -> None:
        self.deframer.feed(STREAM_PREFIX)  # the responder sends no prefix (row A10)

    @property
    def port(self) -> int:
        return self.path.local_port

    async def send(self, *messages: bytes) -> None:
        await self.stream.send_all(b"".join(frame_ike(message) for message in messages))

    async def receive(self, limit: float = 5.0) -> bytes:
        """The responder's next IKE message; EOFError once it closed the stream."""
        with trio.fail_after(limit):
            while (frame := self.deframer.next_frame()) is None:
                data = await self.stream.receive_some()
                if not data:
                    raise EOFError("the responder closed the connection")
                self.deframer.feed(bytes(data))
        assert isinstance(frame, IkeFrame)
        return frame.message

    async def closed_by_server(self, limit: float = 5.0) -> list[bytes]:
        """Wait until the responder closes the stream; the IKE messages it sent before, in order."""
        messages = []
        with trio.fail_after(limit):
            while True:
                try:
                    messages.append(await self.receive(limit))
                except EOFError:
                    return messages


@attrs.define(eq=False)
class Originator:
    """The core initiator, one endpoint for every connection and SA of the test."""

    server: Server
    endpoint: Endpoint = attrs.Factory(lambda: Endpoint(Config(), seeded(7), KeyExchangeFactory(seeded(8))))
    events: list[Event] = attrs.Factory(list)
    next_port: int = 40001

    async def connect(self, *, seen_port: int | None = None, prefix: bool = True) -> Stream:
        """A new connection; ``seen_port`` is the source port the responder sees (a NAT's)."""
        port, self.next_port = self.next_port, self.next_port + 1
        stream = await self.server.listener.connect(PEER, seen_port or port)
        if prefix:
            await stream.send_all(STREAM_PREFIX)
        return Stream(stream, Path(Transport.TCP, PEER, port, LOCAL_ADDRESS, LOCAL_PORT, port))

    def drain(self) -> list[Event]:
        new = []
        while (event := self.endpoint.next_event()) is not None:
            new.append(event)
        self.events += new
        return new

    async def run(self, conn: Stream) -> None:
        """Send what the core queued on ``conn``, feed it one answer per message; until quiet."""
        while out := self.endpoint.messages_to_send():
            await conn.send(*(o.data for o in out))
            for _ in out:
                self.endpoint.receive(await conn.receive(), conn.path, trio.current_time())
            self.drain()

    async def establish(self, conn: Stream, ike: str = SUITE, *, child: bool = True) -> IkeSa:
        settings = initiator_settings(ike, child_request() if child else None)
        sa = self.endpoint.initiate(settings, conn.path, trio.current_time())
        await self.run(conn)
        assert sa.state is IkeSaState.ESTABLISHED
        return sa

    async def liveness(self, sa: IkeSa, conn: Stream) -> None:
        """An empty INFORMATIONAL exchange on ``conn`` (also the RFC 9329 §6.1 "switch" signal, A31)."""
        mark = len(self.events)
        self.endpoint.request_liveness_check(sa.local_spi, trio.current_time())
        await self.run(conn)
        assert any(
            isinstance(e, ResponseReceived) and e.exchange is ExchangeType.INFORMATIONAL
            for e in self.events[mark:]
        )

    async def answer_request(self, conn: Stream) -> None:
        """Read one request of the responder's on ``conn`` and send the core's response."""
        self.endpoint.receive(await conn.receive(), conn.path, trio.current_time())
        self.drain()
        for out in self.endpoint.messages_to_send():
            await conn.send(out.data)

    def responder_sa(self, sa: IkeSa) -> IkeSa:
        found = self.server.engine.sa(sa.spi_r)
        assert found is not None
        return found


@asynccontextmanager
async def originator(config: Config | None = None, **limits: Any) -> AsyncIterator[Originator]:
    async with serving(config, **limits) as server:
        yield Originator(server)


def corrupt(sa: IkeSa, message_id: int = 1000) -> bytes:
    """A message of ``sa`` whose ICV does not verify (RFC 9329 §6.1: failed authentication)."""
    good = forge(sa, ExchangeType.INFORMATIONAL, (), message_id=message_id)
    return good[:-1] + bytes([good[-1] ^ 0x01])


def corrupt_header() -> bytes:
    """The rest of an IKE header after the SPIs: an INFORMATIONAL request, no payloads."""
    return bytes([0, 0x20, ExchangeType.INFORMATIONAL, 0x08]) + bytes(4) + (28).to_bytes(4, "big")


def esp(spi: bytes, sequence: int = 1) -> bytes:
    return spi + sequence.to_bytes(4, "big") + bytes(32)


def notifies(message: bytes) -> dict[NotifyType, bytes]:
    return {p.notify_type: p.data for p in decode_message(message).payloads if isinstance(p, NotifyPayload)}


def request_ids(conn_events: list[Event]) -> list[NotifyType]:
    return [e.notify for e in conn_events if isinstance(e, IkeSaInitRefused)]


# ------------------------------------------------------------ A1, A13, A31: connections are the Originator's


async def test_a1_the_responder_never_opens_a_connection_nor_falls_back_to_udp(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Row A1 (and A27): with the SA's connection gone, a request of ours goes nowhere (no new
    connection, not the UDP socket) and the SA waits; the Originator's reconnection carries it."""
    async with originator() as peer:
        server = peer.server
        first = await peer.connect()
        sa = await peer.establish(first)
        await first.stream.aclose()
        await settle()
        assert server.engine.stats.connections == 0
        server.engine.request_liveness_check(sa.spi_r)
        assert server.engine.stats.sends_dropped == 1
        assert server.udp.sent == [] and len(server.listener.accepted) == 1
        assert peer.responder_sa(sa).state is IkeSaState.ESTABLISHED
        second = await peer.connect()
        await peer.liveness(sa, second)  # the Originator re-establishes the connection (A27)
        assert peer.responder_sa(sa).path.connection == server.connection(second.port).id  # type: ignore[union-attr]


async def test_a13_message_for_an_existing_sa_without_the_prefix_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Row A13: an INFORMATIONAL of a live SA on a new connection that does not begin with the
    prefix is never handed to the SA: no answer, the connection closed, the SA's path unchanged."""
    async with originator() as peer:
        first = await peer.connect()
        sa = await peer.establish(first)
        responder = peer.responder_sa(sa)
        expected = responder.layer.next_expected
        sneaky = await peer.connect(prefix=False)
        peer.endpoint.request_liveness_check(sa.local_spi, trio.current_time())
        [request] = peer.endpoint.messages_to_send()
        await sneaky.send(request.data)
        assert await sneaky.closed_by_server() == []
        assert responder.layer.next_expected == expected
        assert responder.path.connection == peer.server.connection(first.port).id  # type: ignore[union-attr]
        honest = await peer.connect()
        await honest.send(request.data)  # the same request behind the prefix: answered
        peer.endpoint.receive(await honest.receive(), honest.path, trio.current_time())
        assert responder.layer.next_expected == expected + 1


async def test_a31_empty_informational_on_a_fresh_connection_moves_the_path(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Row A31: the Originator reconnects and sends an empty INFORMATIONAL; it is answered there and
    every later message of ours goes on the new connection, not the old one (still open)."""
    async with originator() as peer:
        old = await peer.connect()
        sa = await peer.establish(old)
        new = await peer.connect()
        await peer.liveness(sa, new)
        server = peer.server
        assert peer.responder_sa(sa).path.connection == server.connection(new.port).id  # type: ignore[union-attr]
        server.engine.request_liveness_check(sa.spi_r)
        await peer.answer_request(new)  # our request came on the new connection ...
        with trio.move_on_after(1):
            await old.receive()
            pytest.fail("a message of the SA on the old connection")  # ... and nothing on the old one
        assert server.is_open(old.port) and server.engine.sa(sa.spi_r) is not None


# ------------------------------------------------------------ A25, A43: connections without a live SA


async def test_a25_connection_closed_a_grace_period_after_its_last_sa_is_deleted(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Row A25: after the DELETE the Originator should close the connection; if it does not, we do,
    ``orphan_timeout`` (default 10 s) later, with a log line.  Until then it stays open."""
    caplog.set_level(logging.INFO, "responder.server.engine")
    async with originator() as peer:
        conn = await peer.connect()
        sa = await peer.establish(conn)
        peer.endpoint.request_delete(sa.local_spi, trio.current_time())
        await peer.run(conn)
        assert peer.server.engine.sa(sa.spi_r) is None
        start = trio.current_time()
        await trio.sleep(9.9)
        assert peer.server.is_open(conn.port)
        assert await conn.closed_by_server() == []
        assert trio.current_time() - start == pytest.approx(10.0)
        assert peer.server.engine.stats.closed_orphan == 1
        assert "closed: carried no live IKE SA for 10s" in caplog.text


async def test_a25_orphan_timeout_is_configurable_and_counts_from_the_sa_s_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Row A25: the grace period is ``orphan_timeout``; an SA that expires half-open ends it too."""
    async with originator(orphan_timeout=2.5) as peer:
        conn = await peer.connect()
        peer.endpoint.initiate(initiator_settings(SUITE), conn.path, trio.current_time())
        [request] = peer.endpoint.messages_to_send()
        await conn.send(request.data)  # IKE_SA_INIT answered; IKE_AUTH never follows
        await conn.receive()
        start = trio.current_time()
        assert await conn.closed_by_server(60) == []
        # half_open_timeout (30 s) ends the SA; 2.5 s later the connection goes
        assert trio.current_time() - start == pytest.approx(30.0 + 2.5)
        assert peer.server.engine.stats.closed_orphan == 1


async def test_a25_a30_new_ike_sa_within_the_grace_keeps_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Row A25 (reused for another IKE session) and A30 (sequential reuse): a new IKE SA on the
    connection during the grace period keeps it open for as long as that SA lives."""
    async with originator() as peer:
        conn = await peer.connect()
        first = await peer.establish(conn)
        peer.endpoint.request_delete(first.local_spi, trio.current_time())
        await peer.run(conn)
        await trio.sleep(8)
        second = await peer.establish(conn)
        await trio.sleep(120)
        assert peer.server.is_open(conn.port)
        await peer.liveness(second, conn)
        assert peer.server.engine.stats.closed_orphan == 0


async def test_a25_a41_connection_with_only_refused_ike_sa_inits_is_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Rows A25, A41: a connection that only ever carried a refused IKE_SA_INIT (NO_PROPOSAL_CHOSEN)
    is closed ``orphan_timeout`` after the refusal (within RFC 9329 §6.3.1's 5-10 s)."""
    async with originator() as peer:
        conn = await peer.connect()
        peer.endpoint.initiate(initiator_settings("aes128-sha256-modp2048"), conn.path, trio.current_time())
        await peer.run(conn)
        [closed] = [e for e in peer.events if isinstance(e, IkeSaClosed)]
        assert "NO_PROPOSAL_CHOSEN" in closed.reason
        start = trio.current_time()
        assert await conn.closed_by_server(60) == []
        assert trio.current_time() - start == pytest.approx(10.0)


@pytest.mark.parametrize("error", ["INVALID_KE_PAYLOAD", "INVALID_MAJOR_VERSION"])
async def test_a43_connection_stays_open_after_an_error_that_asks_for_a_retry(
    error: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Row A43: after INVALID_KE_PAYLOAD (or INVALID_MAJOR_VERSION) the connection is not closed; the
    retry on the same connection, seconds later, establishes the SA.  The refusal gives the retry a
    whole ``orphan_timeout`` even on a connection whose grace period was already running."""
    async with originator() as peer:
        conn = await peer.connect()
        await conn.send(b"\xee" * 16 + corrupt_header())  # unknown SPIs: the grace period starts
        await trio.sleep(6)
        if error == "INVALID_KE_PAYLOAD":
            settings = initiator_settings("aes256gcm16-prfsha256-ecp256-x25519", child_request())
            sa = peer.endpoint.initiate(settings, conn.path, trio.current_time())
            [request] = peer.endpoint.messages_to_send()
            await conn.send(request.data)
            peer.endpoint.receive(await conn.receive(), conn.path, trio.current_time())
            assert request_ids(peer.drain()) == [NotifyType.INVALID_KE_PAYLOAD]
        else:
            header = Header(
                spi_i=b"\x01" * 8,
                spi_r=bytes(8),
                exchange_type=ExchangeType.IKE_SA_INIT,
                is_initiator=True,
                is_response=False,
                message_id=0,
            )
            version_3 = bytearray(encode_message(Message(header, ())))
            version_3[17] = 0x30  # major version 3 (RFC 7296 §3.1)
            await conn.send(bytes(version_3))
            answer = await conn.receive()
            assert notifies(answer) == {NotifyType.INVALID_MAJOR_VERSION: b""}
            settings = initiator_settings(SUITE, child_request())
            sa = peer.endpoint.initiate(settings, conn.path, trio.current_time())
        await trio.sleep(7)  # 13 s after the first frame, 7 s after the refusal
        assert peer.server.is_open(conn.port)
        await peer.run(conn)  # the retry (or the first IKEv2 request) on the same connection
        assert sa.state is IkeSaState.ESTABLISHED
        assert peer.server.table.stats["accepted"] == 1


# --------------------------------------------------------------------------- A32, A33, A64: corruption


async def test_a32_consecutive_corrupt_ike_closes_the_connection_not_the_sa(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Row A32: messages of a known SA that fail authentication are corrupt input; 15 in a row are
    borne, a valid exchange starts the count again, the 16th in a row closes the connection.  The
    IKE SA lives on (A26) and answers on the Originator's next connection (A28)."""
    caplog.set_level(logging.WARNING, "responder.server.engine")
    async with originator() as peer:
        conn = await peer.connect()
        sa = await peer.establish(conn)
        await conn.send(*(corrupt(sa) for _ in range(15)))
        await settle()
        assert peer.server.is_open(conn.port)
        await peer.liveness(sa, conn)  # valid: the count starts again
        await conn.send(*(corrupt(sa) for _ in range(15)))
        await settle()
        assert peer.server.is_open(conn.port)
        responder = peer.responder_sa(sa)
        expected = responder.layer.next_expected
        peer.endpoint.request_liveness_check(sa.local_spi, trio.current_time())
        [pending] = peer.endpoint.messages_to_send()
        await conn.send(corrupt(sa), pending.data)  # the 16th, and a valid request in the same read
        assert await conn.closed_by_server() == []  # reading stopped at the 16th: no answer
        assert peer.server.engine.stats.closed_corrupt == 1
        assert "16 consecutive corrupt messages" in caplog.text and "does not verify" in caplog.text
        assert responder.state is IkeSaState.ESTABLISHED and responder.layer.next_expected == expected
        again = await peer.connect()
        await again.send(pending.data)
        peer.endpoint.receive(await again.receive(), again.path, trio.current_time())
        assert any(isinstance(e, ResponseReceived) for e in peer.drain())


async def test_a32_a64_unparseable_messages_and_unknown_spis_count_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Rows A32, A64: IKE messages that do not parse (an IKE_SA_INIT among them), or name SPIs of no
    SA, are corrupt as well; ``corrupt_messages_max`` sets how many in a row close the connection."""
    async with originator(corrupt_messages_max=5) as peer:
        conn = await peer.connect()
        sa = await peer.establish(conn)
        unknown = bytes([0xEE]) * 8 + sa.spi_r + forge(sa, ExchangeType.INFORMATIONAL, (), message_id=2)[16:]
        broken_sa_payload = bytes([0, 0, 0, 3])  # a generic payload header claiming 3 octets
        unparsable_init = ike_header(
            b"\x01" * 8, bytes(8), PayloadType.SA, ExchangeType.IKE_SA_INIT, 0, broken_sa_payload
        )
        await conn.send(b"\x00" * 30, unknown, unparsable_init, b"\xff" * 40)
        await settle()
        assert peer.server.is_open(conn.port)
        await conn.send(unknown)
        answers = await conn.closed_by_server()  # RFC 7296 §2.5 and §2.21.1 answer two of them
        assert [set(notifies(answer)) for answer in answers] == [
            {NotifyType.INVALID_MAJOR_VERSION},
            {NotifyType.INVALID_SYNTAX},
        ]
        assert peer.server.engine.stats.closed_corrupt == 1
        assert peer.server.engine.stats.internal_errors == 0


async def test_a33_a_few_unknown_esp_spis_in_a_row_never_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Row A33: during a rekey a few ESP packets may carry SPIs we do not know yet; with ESP of a
    known SPI between them, any number of them leaves the connection open."""
    async with originator() as peer:
        conn = await peer.connect()
        await peer.establish(conn)
        [child] = [e for e in peer.events if isinstance(e, ChildSaEstablished)]
        known = child.outbound_spi  # the responder's inbound SPI
        frames = []
        for round_ in range(20):
            frames += [frame_esp(esp(b"\x77\x77\x77" + bytes([i]))) for i in range(3)]
            frames.append(frame_esp(esp(known, round_ + 1)))
        await conn.stream.send_all(b"".join(frames))
        await settle()
        assert peer.server.is_open(conn.port)
        assert peer.server.engine.stats.esp_unknown_spi == 60
        assert peer.server.engine.stats.closed_corrupt == 0


async def test_a32_a64_esp_with_unknown_spis_in_a_row_closes(autojump_clock: trio.testing.MockClock) -> None:
    """Rows A32, A64: ESP with SPIs of no Child SA, ``corrupt_messages_max`` (16) in a row: closed."""
    async with originator() as peer:
        conn = await peer.connect()
        sa = await peer.establish(conn)
        await conn.stream.send_all(b"".join(frame_esp(esp(b"\x66\x66\x66\x66", n)) for n in range(15)))
        await settle()
        assert peer.server.is_open(conn.port)
        await conn.stream.send_all(frame_esp(esp(b"\x66\x66\x66\x66", 16)))
        assert await conn.closed_by_server() == []
        assert peer.server.engine.stats.closed_corrupt == 1
        assert peer.responder_sa(sa).state is IkeSaState.ESTABLISHED


async def test_a34_invalid_syntax_ends_the_sa_not_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Row A34: an authenticated request that does not parse gets INVALID_SYNTAX and the IKE SA ends
    as usual; the TCP connection is not closed for it and carries the Originator's next IKE SA."""
    async with originator() as peer:
        conn = await peer.connect()
        sa = await peer.establish(conn)
        _, inner = encode_payloads((DeletePayload(ProtocolId.ESP, 4, (b"\x00\x00\x12\x34",)),))
        broken = inner[:-2]  # the Delete announces one 4-octet SPI; two octets follow
        broken = broken[:2] + len(broken).to_bytes(2, "big") + broken[4:]
        header = Header(
            spi_i=sa.spi_i,
            spi_r=sa.spi_r,
            exchange_type=ExchangeType.INFORMATIONAL,
            is_initiator=True,
            is_response=False,
            message_id=sa.layer.next_send_id,
        )
        protection = sk_keys(sa)[0]
        iv = bytes(protection.encryption.iv_size)
        await conn.send(protect_bytes(protection, header, PayloadType.DELETE, broken, iv))
        answer, _ = unprotect(sk_keys(sa)[1], await conn.receive())
        assert answer.header.is_response and answer.payloads == (NotifyPayload(NotifyType.INVALID_SYNTAX),)
        assert peer.server.engine.sa(sa.spi_r) is None
        await trio.sleep(5)
        assert peer.server.is_open(conn.port)
        await peer.establish(conn)
        assert peer.server.table.stats["accepted"] == 1


# --------------------------------------------------------------------------- A37: old and new connections


async def test_a37_old_and_new_connections_both_accepted_until_the_originator_closes_the_old(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Row A37: after the SA moved to a new connection, the old one is neither closed by us (not
    even after the orphan grace) nor refused: both carry the SA's exchanges until the Originator
    closes the old one; then the new one goes on alone."""
    async with originator() as peer:
        old = await peer.connect()
        sa = await peer.establish(old)
        new = await peer.connect()
        await peer.liveness(sa, new)
        server = peer.server
        assert peer.responder_sa(sa).path.connection == server.connection(new.port).id  # type: ignore[union-attr]
        await trio.sleep(60)
        assert server.is_open(old.port) and server.is_open(new.port)
        await peer.liveness(sa, old)
        assert peer.responder_sa(sa).path.connection == server.connection(old.port).id  # type: ignore[union-attr]
        await peer.liveness(sa, new)
        await old.stream.aclose()
        await trio.sleep(60)
        assert server.is_open(new.port)
        await peer.liveness(sa, new)
        assert server.engine.stats.closed_orphan == 0


# ------------------------------------------------------------ A40, A42, A44, A50, A53, A57: IKE over TCP


def udp_exchange(peer: Originator, port: int) -> None:
    """Move messages between the Originator's core and the engine over UDP from ``port`` until quiet."""
    for _ in range(20):
        out = peer.endpoint.messages_to_send()
        for message in out:
            peer.server.engine.receive_ike(message.data, udp_from(port))
        back = peer.server.udp.take()
        for data, path in back:
            peer.endpoint.receive(data, reverse(path), trio.current_time())
        peer.drain()
        if not out and not back:
            return
    raise AssertionError("endpoints kept talking")


async def test_a40_no_cookie_over_tcp_even_above_the_cookie_threshold(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Row A40: with ``cookie_threshold`` 0 every IKE_SA_INIT over UDP is asked for a COOKIE; over TCP
    none is (no COOKIE without a puzzle, and we have no puzzles): the SA is established at once."""
    async with originator(responder_config(SUITE, limits=Limits(cookie_threshold=0))) as peer:
        conn = await peer.connect()
        await peer.establish(conn)
        assert request_ids(peer.events) == []
        sa = peer.endpoint.initiate(initiator_settings(SUITE), reverse(udp_from(40100)), trio.current_time())
        udp_exchange(peer, 40100)
        assert request_ids(peer.events) == [NotifyType.COOKIE]
        assert sa.state is IkeSaState.ESTABLISHED


async def test_a42_cookie_returned_from_another_port_is_accepted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Row A42: the port is no input of the COOKIE, so a retry that comes back from another source
    port (a new NAT mapping, a new connection) passes and the handshake completes."""
    async with originator(responder_config(SUITE, limits=Limits(cookie_threshold=0))) as peer:
        settings = initiator_settings(SUITE, child_request())
        sa = peer.endpoint.initiate(settings, reverse(udp_from(40001)), trio.current_time())
        [request] = peer.endpoint.messages_to_send()
        peer.server.engine.receive_ike(request.data, udp_from(40001))
        [(answer, to)] = peer.server.udp.take()
        assert set(notifies(answer)) == {NotifyType.COOKIE} and to == udp_from(40001)
        peer.endpoint.receive(answer, reverse(to), trio.current_time())
        [retry] = peer.endpoint.messages_to_send()
        peer.server.engine.receive_ike(retry.data, udp_from(40002))
        [(answer, to)] = peer.server.udp.take()
        assert NotifyType.COOKIE not in notifies(answer) and to == udp_from(40002)
        assert peer.server.engine.stats.half_open == 1
        peer.endpoint.receive(answer, reverse(to), trio.current_time())
        udp_exchange(peer, 40002)
        assert sa.state is IkeSaState.ESTABLISHED


async def test_a44_nat_detection_over_tcp_hashes_the_tcp_addresses_and_ports(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Row A44: the IKE_SA_INIT response over TCP carries both NAT_DETECTION notifies, computed as over
    UDP (RFC 7296 §2.23) from the TCP connection's addresses and ports; no NAT here, none detected."""
    async with originator() as peer:
        conn = await peer.connect()
        peer.endpoint.initiate(initiator_settings(SUITE), conn.path, trio.current_time())
        [request] = peer.endpoint.messages_to_send()
        await conn.send(request.data)
        response = await conn.receive()
        header = decode_message(response).header
        spis = header.spi_i + header.spi_r

        def digest(address: Any, port: int) -> bytes:  # RFC 7296 §2.23 uses SHA-1
            return hashlib.sha1(spis + address.packed + port.to_bytes(2, "big")).digest()  # noqa: S324

        found = notifies(response)
        assert found[NotifyType.NAT_DETECTION_SOURCE_IP] == digest(LOCAL_ADDRESS, LOCAL_PORT)
        assert found[NotifyType.NAT_DETECTION_DESTINATION_IP] == digest(PEER, conn.port)
        responder = peer.server.engine.sa(header.spi_r)
        assert responder is not None
        assert not responder.nat_detected_local and not responder.nat_detected_remote


async def test_a53_a_nat_detected_over_tcp_changes_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """Rows A53, A44: a NAT (or libreswan's espintcp stand-in) rewrote the Originator's port; the NAT
    is detected, and nothing follows from it: no switch to UDP, every message stays on the connection."""
    async with originator() as peer:
        conn = await peer.connect(seen_port=61000)
        sa = await peer.establish(conn)
        responder = peer.responder_sa(sa)
        assert responder.nat_detected_remote and not responder.nat_detected_local
        server_side = peer.server.connection(61000)
        assert server_side is not None
        assert responder.path.transport is Transport.TCP and responder.path.connection == server_side.id
        peer.server.engine.request_liveness_check(sa.spi_r)
        await peer.answer_request(conn)
        await peer.liveness(sa, conn)
        assert peer.server.udp.sent == [] and peer.server.engine.stats.sends_dropped == 0
        assert responder.path.connection == server_side.id


async def test_a50_same_request_over_udp_then_tcp_is_answered_from_the_cache(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Row A50: an Originator switching from UDP to TCP resends the same request (same Message ID);
    it is answered from the response cache, byte for byte, on the TCP connection it came on.  A
    retransmission does not move the SA (A36); the next new request over TCP does."""
    async with originator() as peer:
        sa = peer.endpoint.initiate(
            initiator_settings(SUITE, child_request()), reverse(udp_from(4500)), trio.current_time()
        )
        udp_exchange(peer, 4500)
        assert sa.state is IkeSaState.ESTABLISHED
        peer.endpoint.request_liveness_check(sa.local_spi, trio.current_time())
        [request] = peer.endpoint.messages_to_send()
        peer.server.engine.receive_ike(request.data, udp_from(4500))
        [(over_udp, _)] = peer.server.udp.take()  # lost on its way back
        conn = await peer.connect()
        await conn.send(request.data)
        over_tcp = await conn.receive()
        assert over_tcp == over_udp
        responder = peer.responder_sa(sa)
        assert responder.path.transport is Transport.UDP
        peer.endpoint.receive(over_tcp, conn.path, trio.current_time())
        assert any(isinstance(e, ResponseReceived) for e in peer.drain())
        await peer.liveness(sa, conn)
        assert responder.path.connection == peer.server.connection(conn.port).id  # type: ignore[union-attr]
        assert peer.server.udp.sent == []


async def test_a57_ike_fragmentation_is_negotiated_over_tcp_but_never_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Row A57: an IKE_SA_INIT over TCP offering IKEV2_FRAGMENTATION_SUPPORTED gets it back (we
    "MUST support receiving" fragments there); what we send over TCP is never fragmented
    (``tests/core/test_fragmentation.py`` shows both with a large IKE_AUTH)."""
    async with originator() as peer:
        conn = await peer.connect()
        peer.endpoint.initiate(initiator_settings(SUITE), conn.path, trio.current_time())
        [request] = peer.endpoint.messages_to_send()
        message = decode_message(request.data)
        offer = NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)
        await conn.send(encode_message(Message(message.header, (*message.payloads, offer))))
        response = await conn.receive()
        found = notifies(response)
        assert NotifyType.NAT_DETECTION_SOURCE_IP in found  # a real IKE_SA_INIT response ...
        assert NotifyType.IKEV2_FRAGMENTATION_SUPPORTED in found  # ... that agrees to receive fragments


# ------------------------------------------------------------ A63: whatever arrives, the server goes on

#: Pieces of hostile input: (kind, body, a, b).  ``sa`` pieces carry a well-formed header with the
#: good SA's SPIs, ``init`` pieces an IKE_SA_INIT request header, ``esp-known`` the good SA's ESP SPI;
#: ``a`` and ``b`` pick header fields.  Unframed ``raw`` octets are rarer, so most streams stay framed
#: long enough to reach the engine.
PIECE = st.tuples(
    st.sampled_from(["ike", "sa", "sa", "init", "esp", "esp-known", "raw"]),
    st.one_of(st.binary(max_size=24), st.binary(min_size=40, max_size=200)),  # short and long bodies
    st.integers(0, 255),
    st.integers(0, 255),
)


def ike_header(spi_i: bytes, spi_r: bytes, first: int, exchange: int, message_id: int, body: bytes) -> bytes:
    """An IKEv2 header (RFC 7296 §3.1), Initiator flag set, with its Length right, then ``body``."""
    fixed = bytes([first, 0x20, exchange, 0x08]) + message_id.to_bytes(4, "big")
    return spi_i + spi_r + fixed + (28 + len(body)).to_bytes(4, "big") + body


def render(piece: tuple[str, bytes, int, int], sa: IkeSa, esp_spi: bytes) -> bytes:
    kind, body, a, b = piece
    if kind == "raw":
        return body
    if kind == "ike":
        return frame_ike(body or b"\x00")
    if kind == "sa":
        return frame_ike(ike_header(sa.spi_i, sa.spi_r, a, ExchangeType.IKE_SA_INIT + b % 4, b, body))
    if kind == "init":
        spi_i = (body[:8] or b"\x01").ljust(8, b"\x01")
        return frame_ike(ike_header(spi_i, bytes(8), a, ExchangeType.IKE_SA_INIT, 0, body[8:]))
    if kind == "esp":
        return frame_esp(b"\x99" + body[:3].rjust(3, b"\x01") + body[3:])
    return frame_esp(esp_spi + body)


async def fuzz(prefix: bool, pieces: list[tuple[str, bytes, int, int]], cuts: list[int]) -> None:
    async with originator() as peer:
        good = await peer.connect()
        sa = await peer.establish(good)
        [child] = [e for e in peer.events if isinstance(e, ChildSaEstablished)]
        data = b"".join(render(piece, sa, child.outbound_spi) for piece in pieces)
        hostile = await peer.connect(prefix=prefix)
        position = 0
        for cut in [*cuts, len(data)]:
            try:
                await hostile.stream.send_all(data[position : position + cut])
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                break  # the server closed it: fine
            position += cut
            await settle()
        await trio.sleep(1)
        await peer.liveness(sa, good)  # the other connection and its SA are unharmed
        late = await peer.connect()
        await peer.establish(late)  # and the server still accepts and serves new connections
        server = peer.server
        assert server.engine.stats.internal_errors == 0 and server.table.stats["failed"] == 0
        assert peer.responder_sa(sa).state is IkeSaState.ESTABLISHED


@hypothesis.settings(max_examples=100, deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow])
@hypothesis.given(
    prefix=st.sampled_from([True, True, True, False]),
    pieces=st.lists(PIECE, max_size=24),
    cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=16),
)
def test_a63_random_bytes_and_splits_never_crash_the_stream_server(
    prefix: bool, pieces: list[tuple[str, bytes, int, int]], cuts: list[int]
) -> None:
    """Row A63: injected or random octets, framed or not, cut anywhere, on one connection: that
    connection is closed or left open, no exception escapes the connection's task or the engine,
    and another connection, its IKE SA and new connections go on working."""
    trio.run(fuzz, prefix, pieces, cuts, clock=trio.testing.MockClock(autojump_threshold=0))
