"""RFC 9329 TCP transport over memory streams: framing, attach, timeouts, isolation, writes.

Tests named ``test_aNN_...`` check requirement row ANN of
``shared/reference/responder-requirements.md`` and fail when that behaviour
is removed.  Streams come from :class:`tests.server.fakes.MemoryListener`;
the engine is :class:`tests.server.fakes.RecordingEngine`.
"""

from __future__ import annotations

import errno
import logging
import random

import pytest
import trio
import trio.testing

from responder.client import establish_on_stream
from responder.core.config import Config
from responder.core.enums import ExchangeType
from responder.core.events import ResponseReceived
from responder.core.ike_sa import IkeSaState
from responder.core.path import Path, Transport
from responder.core.tcp_framing import MAX_LENGTH, IkeFrame, StreamDeframer, frame_esp, frame_ike
from responder.server.connections import Phase
from responder.server.engine import Engine
from responder.server.streams import CLOSE_GRACE
from tests.fakes.pair import child_request, initiator_settings, responder_config, seeded
from tests.server.fakes import LOCAL, PEER, RecordingEngine, serving, settle

IKE = bytes(range(28)) + b"an IKE message"  # the transport does not parse IKE
ESP = bytes.fromhex("c0ffee01 00000001") + b"ciphertext"
PREFIX = b"IKETCP"
SUITE = "aes256gcm16-prfsha256-x25519"


async def read_until_closed(stream: trio.abc.Stream, limit: float = 5.0) -> bytes:
    """Everything the server writes until it closes the connection."""
    data = b""
    with trio.fail_after(limit):
        while chunk := await stream.receive_some():
            data += chunk
    return data


# ---------------------------------------------------------------------------
# Prefix (A9, A11, A13, A15)
# ---------------------------------------------------------------------------


async def test_a9_a11_prefix_byte_by_byte() -> None:
    """Rows A9, A11: the prefix split into single octets is waited for in full, then frames flow."""
    async with serving() as server:
        client = await server.listener.connect()
        data = PREFIX + frame_ike(IKE)
        for position in range(len(data)):
            await client.send_all(data[position : position + 1])
            await settle()
            if position < len(PREFIX) - 1:
                assert server.engine.calls == []
                assert server.table.connections()[0].phase is Phase.PREFIX
        assert server.engine.kinds() == ["attach", "ike"]
        assert server.engine.ike() == [IKE]


@pytest.mark.parametrize("seed", range(8))
async def test_a11_prefix_and_frames_in_random_splits(seed: int) -> None:
    """Row A11: however the stream is cut, the same frames arrive in the same order."""
    rng = random.Random(seed)
    messages = [bytes([i]) * rng.randrange(1, 300) for i in range(1, 6)]
    data = PREFIX + b"".join(frame_ike(m) for m in messages) + frame_esp(ESP)
    async with serving() as server:
        client = await server.listener.connect()
        position = 0
        while position < len(data):
            step = rng.randrange(1, 40)
            await client.send_all(data[position : position + step])
            position += step
            await settle()
        assert server.engine.ike() == messages
        assert server.engine.esp() == [ESP]


async def test_a13_no_attach_and_nothing_delivered_before_the_prefix() -> None:
    """Row A13: until all six prefix octets are in, the engine knows nothing of the connection."""
    async with serving() as server:
        client = await server.listener.connect()
        await client.send_all(b"IKETC")
        await settle()
        assert server.engine.calls == []
        assert server.engine.sinks == {}
        await client.send_all(b"P")
        await settle()
        assert server.engine.kinds() == ["attach"]
        path = server.engine.paths("attach")[0]
        assert path.transport is Transport.TCP
        assert path.connection == server.table.connections()[0].id
        assert str(path.remote_address) == "192.0.2.1"


@pytest.mark.parametrize("prefix", [b"IKETCX", b"GET / HTTP/1.1\r\n", b"\x00\x00IKETCP", b"\x16\x03\x01"])
async def test_a15_wrong_prefix_closes(prefix: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """Row A15: a stream that does not begin with "IKETCP" is closed, with a log line; nothing attached."""
    caplog.set_level(logging.INFO, "responder.server.streams")
    async with serving() as server:
        client = await server.listener.connect()
        await client.send_all(prefix + frame_ike(IKE))
        assert await read_until_closed(client) == b""
        await settle()
        assert server.engine.calls == []
        assert server.table.stats["framing_error"] == 1
        assert len(server.table) == 0
        assert "does not begin with 'IKETCP'" in caplog.text


# ---------------------------------------------------------------------------
# Length field (A16-A22, A45)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("after", [b"", frame_ike(IKE)])
async def test_a18_length_zero_closes(after: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """Row A18: Length 0 is fatal; the connection closes and what follows is never delivered."""
    caplog.set_level(logging.INFO, "responder.server.streams")
    async with serving() as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + frame_ike(IKE) + b"\x00\x00" + after)
        assert await read_until_closed(client) == b""
        await settle()
        assert server.engine.kinds() == ["attach", "ike", "detach"]
        assert server.table.stats["framing_error"] == 1
        assert "Length 0 is a fatal error" in caplog.text


async def test_a18_length_one_closes(caplog: pytest.LogCaptureFixture) -> None:
    """Row A18: Length 1 is fatal as well."""
    caplog.set_level(logging.INFO, "responder.server.streams")
    async with serving() as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX)
        await settle()
        await client.send_all(b"\x00\x01" + frame_ike(IKE))
        assert await read_until_closed(client) == b""
        await settle()
        assert server.engine.ike() == []
        assert server.engine.kinds() == ["attach", "detach"]
        assert "Length 1 is a fatal error" in caplog.text


async def test_a19_length_two_ignored() -> None:
    """Row A19: empty messages (Length 2) are silently ignored; the connection stays open."""
    async with serving() as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + b"\x00\x02" + frame_ike(IKE) + b"\x00\x02\x00\x02" + frame_ike(b"two"))
        await settle()
        assert server.engine.ike() == [IKE, b"two"]
        assert len(server.table) == 1
        assert server.table.stats["framing_error"] == 0


async def test_a45_keepalive_dropped() -> None:
    """Row A45: a NAT-keepalive (Length 3, 0xFF) is dropped silently, neither IKE nor ESP."""
    async with serving() as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + b"\x00\x03\xff" + frame_ike(IKE) + b"\x00\x03\xff")
        await settle()
        assert server.engine.kinds() == ["attach", "ike"]
        assert server.engine.esp() == []
        assert len(server.table) == 1


async def test_a17_a22_esp_frames_reach_receive_esp() -> None:
    """Rows A17, A22: a body without the non-ESP marker is ESP and goes to receive_esp, IKE to receive_ike."""
    async with serving() as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + frame_esp(ESP) + frame_ike(IKE) + frame_esp(ESP[::-1]))
        await settle()
        assert server.engine.kinds() == ["attach", "esp", "ike", "esp"]
        assert server.engine.esp() == [ESP, ESP[::-1]]
        assert server.table.stats["esp_frames"] == 2
        esp_path = server.engine.paths("esp")[0]
        assert esp_path == server.engine.paths("ike")[0] == server.engine.paths("attach")[0]


@pytest.mark.parametrize("length", [1501, MAX_LENGTH])
async def test_a20_a21_oversize_frame_closes(length: int, caplog: pytest.LogCaptureFixture) -> None:
    """Rows A20, A21: a Length above the configured maximum closes the connection at once."""
    caplog.set_level(logging.INFO, "responder.server.streams")
    async with serving(max_frame_length=1500) as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + frame_ike(IKE) + length.to_bytes(2, "big") + bytes(100))
        assert await read_until_closed(client) == b""
        await settle()
        assert server.engine.ike() == [IKE]
        assert f"Length {length} exceeds the maximum of 1500" in caplog.text


async def test_a20_largest_frame_accepted_by_default() -> None:
    """Row A20: without a configured maximum a 65533-octet message (Length 65535) is fine."""
    message = bytes(4) + bytes([7]) * (MAX_LENGTH - 2 - 4)
    async with serving() as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + MAX_LENGTH.to_bytes(2, "big") + message)
        await settle()
        assert server.engine.ike() == [message[4:]]


async def test_a29_partial_frame_dropped_on_close(caplog: pytest.LogCaptureFixture) -> None:
    """Row A29: a frame cut short by the connection's end is dropped, never delivered in part."""
    caplog.set_level(logging.DEBUG, "responder.server.streams")
    async with serving() as server:
        client = await server.listener.connect()
        whole = frame_ike(IKE)
        await client.send_all(PREFIX + whole + frame_ike(b"second message")[:9])
        await settle()
        await client.aclose()
        await settle()
        assert server.engine.kinds() == ["attach", "ike", "detach"]
        assert server.engine.ike() == [IKE]
        assert "9 octets of a partial frame dropped" in caplog.text


# ---------------------------------------------------------------------------
# Timeouts
# ---------------------------------------------------------------------------


async def test_prefix_timeout_closes(autojump_clock: trio.testing.MockClock) -> None:
    """No complete prefix within prefix_timeout: closed, never attached."""
    async with serving(prefix_timeout=5.0) as server:
        client = await server.listener.connect()
        await client.send_all(b"IKE")
        start = trio.current_time()
        assert await read_until_closed(client, 60) == b""
        assert trio.current_time() - start == pytest.approx(5.0)
        await settle()
        assert server.engine.calls == []
        assert server.table.stats["prefix_timeout"] == 1


async def test_prefix_timeout_counts_from_accept_even_when_trickled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One octet every second does not extend the prefix deadline (it is not an idle timer)."""
    async with serving(prefix_timeout=3.5) as server:
        client = await server.listener.connect()
        start = trio.current_time()
        for octet in PREFIX[:3]:
            await client.send_all(bytes([octet]))
            await trio.sleep(1)
        assert await read_until_closed(client, 60) == b""
        assert trio.current_time() - start == pytest.approx(3.5)
        await settle()
        assert server.table.stats["prefix_timeout"] == 1


async def test_first_frame_timeout_closes(autojump_clock: trio.testing.MockClock) -> None:
    """The prefix alone, then nothing but keepalives: closed first_frame_timeout after the prefix."""
    async with serving(prefix_timeout=5.0, first_frame_timeout=10.0) as server:
        client = await server.listener.connect()
        await trio.sleep(2)
        await client.send_all(PREFIX)
        start = trio.current_time()
        await client.send_all(b"\x00\x03\xff")  # keepalives are not a first frame
        assert await read_until_closed(client, 60) == b""
        assert trio.current_time() - start == pytest.approx(10.0)
        await settle()
        assert server.engine.kinds() == ["attach", "detach"]
        assert server.table.stats["first_frame_timeout"] == 1


async def test_no_timeout_once_a_frame_arrived(autojump_clock: trio.testing.MockClock) -> None:
    """After its first frame a quiet connection is left open (idle SAs are the engine's business)."""
    async with serving(prefix_timeout=5.0, first_frame_timeout=10.0) as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + frame_ike(IKE))
        await trio.sleep(3600)
        assert len(server.table) == 1
        assert server.table.connections()[0].phase is Phase.OPEN
        await client.send_all(frame_ike(b"later"))
        await settle()
        assert server.engine.ike() == [IKE, b"later"]


# ---------------------------------------------------------------------------
# Writing (A10), slow readers
# ---------------------------------------------------------------------------


async def test_a10_responder_never_writes_a_prefix() -> None:
    """Row A10: the responder's side of the stream starts with a frame, never with "IKETCP"."""
    async with serving(RecordingEngine(echo=True)) as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + frame_ike(IKE) + frame_ike(b"two"))
        await settle()
        with trio.fail_after(1):
            received = await client.receive_some()
        assert received == frame_ike(b"re:" + IKE) + frame_ike(b"re:two")
        assert not received.startswith(PREFIX)


async def test_esp_goes_out_as_an_esp_frame_between_ike_frames() -> None:
    """RFC 9329 §3.2 (rows A16, A17): the sink frames ESP with its Length and no non-ESP marker,
    in the order it was queued with IKE messages; an ESP packet with a zero SPI is refused."""
    async with serving(RecordingEngine()) as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + frame_ike(IKE))
        await settle()
        sink = server.engine.sinks[server.table.connections()[0].id]
        path = server.engine.paths("attach")[0]
        esp = b"\xc0\x00\x00\x01" + bytes(range(40))
        assert sink.send_ike(b"one", path) and sink.send_esp(esp, path) and sink.send_ike(b"two", path)
        assert not sink.send_esp(bytes(4) + esp, path)  # a zero SPI is the non-ESP marker
        expected = frame_ike(b"one") + (2 + len(esp)).to_bytes(2, "big") + esp + frame_ike(b"two")
        received = b""
        with trio.fail_after(2):
            while len(received) < len(expected):
                received += await client.receive_some()
        assert received == expected


async def test_writes_never_interleave() -> None:
    """Many messages queued at once leave whole and in order (one writer per connection)."""
    async with serving(RecordingEngine(), lockstep=True) as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + frame_ike(IKE))
        await settle()
        connection = server.table.connections()[0].id
        messages = [bytes([i]) * (100 + i) for i in range(20)]
        assert all(server.engine.send(connection, m) for m in messages)
        expected = b"".join(frame_ike(m) for m in messages)
        received = b""
        with trio.fail_after(2):
            while len(received) < len(expected):
                received += await client.receive_some()
        assert received == expected


async def test_slow_reader_closed(caplog: pytest.LogCaptureFixture) -> None:
    """A peer that never reads fills its send queue; the connection closes, the sink says False."""
    caplog.set_level(logging.INFO, "responder.server.streams")
    async with serving(RecordingEngine(), lockstep=True, send_queue=4) as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + frame_ike(IKE))
        await settle()
        connection = server.table.connections()[0].id
        results = [server.engine.send(connection, b"answer %d" % i) for i in range(8)]
        # Four queued (the writer task starts with the first, and runs only once this task waits);
        # the fifth overflows the queue.
        assert results[:4] == [True] * 4
        assert results[4] is False
        await settle()
        assert len(server.table) == 0
        assert server.engine.kinds()[-1] == "detach"
        assert server.table.stats["slow_reader"] == 1
        assert "slow reader" in caplog.text


async def test_sink_refuses_after_close() -> None:
    """Once a connection is closed its sink returns False instead of raising."""
    async with serving(RecordingEngine()) as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + frame_ike(IKE))
        await settle()
        sink = server.engine.sinks[server.table.connections()[0].id]
        path = server.engine.paths("attach")[0]
        await client.aclose()
        await settle()
        assert sink.send_ike(b"too late", path) is False


# ---------------------------------------------------------------------------
# Isolation, accept errors, shutdown
# ---------------------------------------------------------------------------


async def test_failing_connection_leaves_others_working(caplog: pytest.LogCaptureFixture) -> None:
    """An exception while serving one connection closes that one only; the server keeps accepting."""
    caplog.set_level(logging.INFO, "responder.server.streams")
    async with serving(RecordingEngine(fail_on=b"boom")) as server:
        good = await server.listener.connect(remote="192.0.2.10")
        await good.send_all(PREFIX + frame_ike(IKE))
        bad = await server.listener.connect(remote="192.0.2.66")
        await bad.send_all(PREFIX + frame_ike(b"boom"))
        assert await read_until_closed(bad) == b""
        await good.send_all(frame_ike(b"still here"))
        late = await server.listener.connect(remote="192.0.2.11")
        await late.send_all(PREFIX + frame_ike(b"late"))
        await settle()
        assert server.engine.ike() == [IKE, b"boom", b"still here", b"late"]
        assert server.table.stats["failed"] == 1
        assert len(server.table) == 2
        assert "engine bug provoked by the test" in caplog.text


async def test_accept_errors_are_logged_and_retried(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """EMFILE from accept() is logged and retried after a short sleep; the listener keeps serving."""
    caplog.set_level(logging.WARNING, "responder.server.streams")
    failures = [OSError(errno.EMFILE, "Too many open files")] * 3

    def hook() -> None:
        if failures:
            raise failures.pop()

    async with serving() as server:
        server.listener.accept_hook = hook
        client = await server.listener.connect()
        await client.send_all(PREFIX + frame_ike(IKE))
        await trio.sleep(1)
        assert server.engine.ike() == [IKE]
        assert "accept failed" in caplog.text
        assert "Too many open files" in caplog.text


async def test_detach_on_every_close_path_and_addresses_in_path() -> None:
    """Each attached connection is detached exactly once, with the path it was attached with."""
    async with serving() as server:
        a = await server.listener.connect(remote="192.0.2.20", port=50000)
        b = await server.listener.connect(remote="2001:db8::20", port=50001)
        await a.send_all(PREFIX + frame_ike(IKE))
        await b.send_all(PREFIX)
        await settle()
        await b.send_all(b"\x00\x00")  # Length 0: closed by the server
        await settle()
        await a.aclose()
        await settle()
        attached = server.engine.paths("attach")
        detached = server.engine.paths("detach")
        assert sorted(p.connection or 0 for p in attached) == sorted(p.connection or 0 for p in detached)
        assert set(attached) == set(detached)
        assert {(str(p.remote_address), p.remote_port) for p in attached} == {
            ("192.0.2.20", 50000),
            ("2001:db8::20", 50001),
        }


async def test_aclose_all_flushes_then_closes_and_stops_accepting() -> None:
    """Shutdown: queued answers are written, streams close, the listener stops; stalled ones are cut."""
    async with serving(RecordingEngine()) as server:
        open_client = await server.listener.connect()
        await open_client.send_all(PREFIX + frame_ike(IKE))
        stalled = await server.listener.connect()
        await stalled.send_all(b"IKE")
        await settle()
        connection = server.table.connections()[0].id
        assert server.engine.send(connection, b"goodbye")
        with trio.fail_after(5):
            await server.table.aclose_all(trio.current_time() + 2)
        assert len(server.table) == 0
        assert await read_until_closed(open_client) == frame_ike(b"goodbye")
        assert await read_until_closed(stalled) == b""
        await settle()
        assert server.listener.closed
        assert server.engine.kinds()[-1] == "detach"


async def test_aclose_all_cuts_at_the_deadline(autojump_clock: trio.testing.MockClock) -> None:
    """A peer that never reads cannot hold shutdown past its deadline."""
    async with serving(RecordingEngine(), lockstep=True) as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + frame_ike(IKE))
        await settle()
        assert server.engine.send(server.table.connections()[0].id, b"unread")
        start = trio.current_time()
        await server.table.aclose_all(start + 0.5)
        assert trio.current_time() - start <= 0.5 + 1e-9
        assert len(server.table) == 0


async def test_cancelling_the_server_cuts_a_writer_within_the_close_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A writer runs shielded from the end of the reading (so that what is queued still leaves),
    but never past the close grace: a peer that never reads cannot hold a cancelled server.
    (Were it never cut, this test would hang: no outer scope reaches a shielded task.)"""
    async with serving(RecordingEngine(), lockstep=True) as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + frame_ike(IKE))
        await settle()
        assert server.engine.send(server.table.connections()[0].id, b"unread")
        await settle()  # the writer is blocked in send_all: the peer does not read
        start = trio.current_time()
        server.nursery.cancel_scope.cancel()
    assert trio.current_time() - start <= CLOSE_GRACE + 1e-9
    assert len(server.table) == 0


async def test_engine_close_still_writes_what_is_queued() -> None:
    """Connection.close (RFC 9329 §6.1, rows A25, A32) stops the reading at once; the answer
    queued before it still leaves, then the stream closes."""
    async with serving(RecordingEngine()) as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + frame_ike(IKE))
        await settle()
        connection = server.table.connections()[0]
        assert server.engine.send(connection.id, b"last words")
        connection.close("carries no IKE SA")
        data = await read_until_closed(client)
    assert data == frame_ike(b"last words")
    assert server.table.stats["closed_by_engine"] == 1


# ---------------------------------------------------------------------------
# With the real engine
# ---------------------------------------------------------------------------


async def read_frame(stream: trio.abc.Stream) -> bytes:
    """One IKE message from the responder's side of a stream (which carries no prefix)."""
    deframer = StreamDeframer()
    deframer.feed(PREFIX)
    with trio.fail_after(5):
        while (frame := deframer.next_frame()) is None:
            deframer.feed(bytes(await stream.receive_some()))
    assert isinstance(frame, IkeFrame)
    return frame.message


def client_path(port: int) -> Path:
    return Path(Transport.TCP, PEER, port, *LOCAL, 1)


async def test_end_to_end_handshake_over_memory_streams() -> None:
    """IKE_SA_INIT, IKE_AUTH with a Child SA, a liveness check and a delete through the transport."""
    engine = Engine(responder_config(SUITE), seeded(1))
    async with serving(engine) as server:
        stream = await server.listener.connect(PEER, 50000)
        with trio.fail_after(10):
            client = await establish_on_stream(
                stream,
                initiator_settings(SUITE, child_request()),
                Config(),
                path=client_path(50000),
                random_bytes=seeded(2),
            )
            assert client.established, client.reason
            assert len(client.child_sas) == 1
            responder_sa = engine.sa(client.spi_r)
            assert responder_sa is not None and responder_sa.state is IkeSaState.ESTABLISHED
            assert responder_sa.path.connection == server.table.connections()[0].id
            assert await client.liveness_check()
            assert await client.delete()
        assert engine.sa(client.spi_r) is None
        assert server.table.stats["ike_frames"] == 4


async def test_a29_partial_frame_dropped_the_sa_untouched_and_a28_new_connection() -> None:
    """Rows A29, A26, A28: a request cut short by a closed connection never reaches the SA, which
    stays up; the same request on a new connection from another port is answered."""
    engine = Engine(responder_config(SUITE), seeded(1))
    async with serving(engine) as server:
        stream = await server.listener.connect(PEER, 50000)
        with trio.fail_after(10):
            client = await establish_on_stream(
                stream, initiator_settings(SUITE), Config(), path=client_path(50000), random_bytes=seeded(2)
            )
        responder_sa = engine.sa(client.spi_r)
        assert responder_sa is not None
        expected_id = responder_sa.layer.next_expected
        client.endpoint.request_liveness_check(client.sa.local_spi, trio.current_time())
        [request] = client.endpoint.messages_to_send()
        frame = frame_ike(request.data)
        await stream.send_all(frame[: len(frame) - 1])
        await settle()
        await stream.aclose()
        await settle()
        assert engine.sa(client.spi_r) is responder_sa
        assert responder_sa.state is IkeSaState.ESTABLISHED
        assert responder_sa.layer.next_expected == expected_id  # nothing of the partial request was seen
        again = await server.listener.connect(PEER, 50001)
        await again.send_all(PREFIX + frame)
        response = await read_frame(again)
        client.endpoint.receive(response, client_path(50001), trio.current_time())
        events = []
        while (event := client.endpoint.next_event()) is not None:
            events.append(event)
        assert any(
            isinstance(e, ResponseReceived) and e.exchange is ExchangeType.INFORMATIONAL for e in events
        )
        assert responder_sa.layer.next_expected == expected_id + 1
