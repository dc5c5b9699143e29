"""Connection limits under hostile load: a well-behaved peer always gets through.

For each limit (connections in all, per source, buffered octets, prefix
timeout, first-frame timeout) a hostile peer pushes it while a well-behaved
peer still has its frames delivered and, with the real engine, completes an
IKE handshake.  Eviction takes the connection that has earned least, oldest
first: one that carries no live IKE SA (stalled, or open with unknown SPIs
only), then one that carries only half-open IKE SAs; never one that carries
an authenticated IKE SA (issue 15 items 5, 6).  A burst of requests is
slowed down, not closed (item 7).
"""

from __future__ import annotations

import contextlib
import logging
from functools import partial
from ipaddress import ip_address
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from responder.client import establish_on_stream
from responder.core.config import Config
from responder.core.endpoint import Endpoint
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.path import Path, Transport
from responder.core.tcp_framing import MAX_LENGTH, frame_esp, frame_ike
from responder.server.connections import Phase
from responder.server.engine import Engine
from responder.server.settings import ServerSettings
from responder.server.streams import ConnectionTable, serve_stream_listener
from tests.fakes.pair import child_request, initiator_settings, responder_config, seeded
from tests.server.fakes import LOCAL, RecordingEngine, Server, serving, settle

PREFIX = b"IKETCP"
IKE = bytes(28) + b"hello"
SUITE = "aes256gcm16-prfsha256-x25519"


async def is_closed(stream: trio.abc.Stream) -> bool:
    """True if the server closed ``stream`` (EOF); False if it is still open."""
    await settle()
    with trio.move_on_after(0.05):
        return await stream.receive_some() == b""
    return False


async def well_behaved(server: Server, remote: str, message: bytes = IKE) -> trio.abc.Stream:
    client = await server.listener.connect(remote=remote)
    await client.send_all(PREFIX + frame_ike(message))
    await settle()
    return client


async def handshake(server: Server, remote: str = "203.0.113.5", seed: int = 7) -> bool:
    """A full IKE_SA_INIT + IKE_AUTH over a new connection from ``remote``."""
    port = 50000 + seed
    stream = await server.listener.connect(remote=remote, port=port)
    path = Path(Transport.TCP, ip_address(remote), port, *LOCAL, 1)
    with trio.fail_after(10):
        client = await establish_on_stream(
            stream,
            initiator_settings(SUITE, child_request()),
            Config(),
            path=path,
            random_bytes=seeded(seed),
        )
    return client.established


def real_engine() -> Engine:
    return Engine(responder_config(SUITE), seeded(1))


# ---------------------------------------------------------------------------
# connections_max
# ---------------------------------------------------------------------------


async def test_total_limit_evicts_the_oldest_stalled_connection() -> None:
    async with serving(connections_max=3, connections_per_source=3) as server:
        hostile = [await server.listener.connect(remote=f"192.0.2.{i}") for i in (1, 2, 3)]
        await settle()
        assert len(server.table) == 3
        good = await well_behaved(server, "203.0.113.5")
        assert await is_closed(hostile[0])
        assert not await is_closed(hostile[1])
        assert not await is_closed(hostile[2])
        assert isinstance(server.engine, RecordingEngine)
        assert server.engine.ike() == [IKE]
        await good.send_all(frame_ike(b"more"))
        await settle()
        assert server.engine.ike() == [IKE, b"more"]
        assert server.table.stats["evicted"] == 1


async def test_a_flood_of_stalled_connections_never_locks_out_a_peer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "responder.server.streams")
    async with serving(real_engine(), connections_max=5, connections_per_source=5) as server:
        for i in range(40):
            await server.listener.connect(remote=f"192.0.2.{i % 10}")
        await settle()
        assert len(server.table) == 5
        assert await handshake(server)
        assert server.table.stats["evicted"] == 36
        # Evictions are logged, rate-limited per source: 10 sources, not 36 lines.
        lines = [r for r in caplog.records if "evicted" in r.getMessage()]
        assert 1 <= len(lines) <= 10


async def test_established_connections_are_never_evicted() -> None:
    async with serving(connections_max=2, connections_per_source=2) as server:
        first = await well_behaved(server, "203.0.113.1")
        second = await well_behaved(server, "203.0.113.2")
        third = await server.listener.connect(remote="192.0.2.9")
        await settle()
        assert await is_closed(third)
        assert not await is_closed(first)
        assert not await is_closed(second)
        assert server.table.stats["refused_total"] == 1
        assert [c.phase for c in server.table.connections()] == [Phase.OPEN, Phase.OPEN]


async def test_refusals_are_logged_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "responder.server.streams")
    async with serving(connections_max=1, connections_per_source=1) as server:
        await well_behaved(server, "203.0.113.1")
        for _ in range(20):
            await server.listener.connect(remote="192.0.2.9")
        await settle()
        assert server.table.stats["refused_total"] == 20
        lines = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(lines) == 1
        assert "connections_max (1) reached" in lines[0].getMessage()


# ---------------------------------------------------------------------------
# connections_per_source
# ---------------------------------------------------------------------------


async def test_per_source_limit_evicts_the_same_source_first() -> None:
    async with serving(connections_max=10, connections_per_source=2) as server:
        other = await server.listener.connect(remote="192.0.2.200")  # oldest of all, another source
        mine = [await server.listener.connect(remote="192.0.2.7") for _ in range(2)]
        await settle()
        newest = await server.listener.connect(remote="192.0.2.7")
        await newest.send_all(PREFIX + frame_ike(IKE))
        await settle()
        assert await is_closed(mine[0])
        assert not await is_closed(mine[1])
        assert not await is_closed(other)
        assert isinstance(server.engine, RecordingEngine)
        assert server.engine.ike() == [IKE]
        assert sum(c.remote_address == ip_address("192.0.2.7") for c in server.table.connections()) == 2


async def test_per_source_limit_refuses_when_none_is_stalled() -> None:
    async with serving(connections_max=10, connections_per_source=2) as server:
        await well_behaved(server, "192.0.2.7")
        await well_behaved(server, "192.0.2.7")
        extra = await server.listener.connect(remote="192.0.2.7")
        await settle()
        assert await is_closed(extra)
        assert server.table.stats["refused_per_source"] == 1
        other = await well_behaved(server, "203.0.113.5", b"other source")
        assert not await is_closed(other)
        assert isinstance(server.engine, RecordingEngine)
        assert server.engine.ike() == [IKE, IKE, b"other source"]


async def test_one_source_flooding_does_not_lock_out_another() -> None:
    async with serving(real_engine(), connections_max=6, connections_per_source=3) as server:
        for _ in range(30):
            await server.listener.connect(remote="192.0.2.66")
        await settle()
        assert sum(c.remote_address == ip_address("192.0.2.66") for c in server.table.connections()) == 3
        assert await handshake(server, "203.0.113.5")


# ---------------------------------------------------------------------------
# buffer_per_connection
# ---------------------------------------------------------------------------


async def test_buffer_holds_at_most_one_frame_and_all_frames_arrive() -> None:
    """With the smallest buffer allowed (one maximal frame), frames of every size in one burst arrive.

    Each read asks for no more than the room left; reading a fixed 64 KiB
    would overflow the buffer here and close the connection.
    """
    big = bytes(4) + bytes([9]) * (MAX_LENGTH - 6)
    burst = PREFIX + frame_ike(IKE) + MAX_LENGTH.to_bytes(2, "big") + big + frame_esp(b"\x01" * 40) * 100
    async with serving(buffer_per_connection=MAX_LENGTH) as server:
        client = await server.listener.connect()
        await client.send_all(burst)
        await settle()
        assert isinstance(server.engine, RecordingEngine)
        assert server.engine.ike() == [IKE, big[4:]]
        assert len(server.engine.esp()) == 100
        assert not await is_closed(client)


@attrs.define(eq=False)
class GreedyStream(trio.abc.Stream):
    """A stream that ignores max_bytes (a broken transport): the buffer limit must still hold."""

    inner: trio.abc.Stream

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_buffer_exceeded_closes_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "responder.server.streams")
    settings = ServerSettings(buffer_per_connection=MAX_LENGTH)
    engine = RecordingEngine()
    table = ConnectionTable(settings)
    client, server_end = trio.testing.memory_stream_pair()

    class OneStream(trio.abc.Listener[trio.abc.Stream]):
        def __init__(self) -> None:
            self.given = False

        async def accept(self) -> trio.abc.Stream:
            await trio.lowlevel.checkpoint()
            if self.given:
                await trio.sleep_forever()
            self.given = True
            return GreedyStream(server_end)

        async def aclose(self) -> None:
            await trio.lowlevel.checkpoint()

    def addresses(stream: trio.abc.Stream) -> tuple[Any, int, Any, int]:
        return (*LOCAL, ip_address("192.0.2.1"), 40000)

    partial_frame = MAX_LENGTH.to_bytes(2, "big") + bytes(MAX_LENGTH - 10)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(
                serve_stream_listener,
                OneStream(),
                Transport.TCP,
                engine,
                table,
                settings,
                None,
                addresses=addresses,
            )
        )
        await client.send_all(PREFIX + partial_frame)
        await settle()
        assert len(table) == 1
        await client.send_all(bytes(100))  # would hold MAX_LENGTH + 90 octets unparsed
        assert await is_closed(client)
        await settle()
        assert table.stats["buffer_exceeded"] == 1
        assert f"more than {MAX_LENGTH} octets buffered" in caplog.text
        nursery.cancel_scope.cancel()


async def test_huge_length_trickled_cannot_hold_a_slot(autojump_clock: trio.testing.MockClock) -> None:
    """A Length of 65535 fed one octet a second stays in the first-frame phase: timed out, and evictable."""
    async with serving(
        real_engine(),
        connections_max=2,
        connections_per_source=2,
        prefix_timeout=5.0,
        first_frame_timeout=10.0,
    ) as server:

        async def trickle(remote: str) -> None:
            hostile = await server.listener.connect(remote=remote)
            await hostile.send_all(PREFIX + MAX_LENGTH.to_bytes(2, "big"))
            with contextlib.suppress(trio.BrokenResourceError):  # until the server closes it
                for _ in range(100):
                    await hostile.send_all(b"\x00")
                    await trio.sleep(1)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle, "192.0.2.66")
            await trio.sleep(9)
            assert server.table.connections()[0].phase is Phase.FIRST_FRAME
            assert await handshake(server, seed=1)  # room for one more: no eviction needed
            await trio.sleep(2)
            assert server.table.stats["first_frame_timeout"] == 1  # the trickler, 10 s after its prefix
            nursery.start_soon(trickle, "192.0.2.67")
            await trio.sleep(3)
            assert len(server.table) == 2
            assert await handshake(server, seed=2)  # the table is full: the trickler is evicted
            assert server.table.stats["evicted"] == 1
            nursery.cancel_scope.cancel()
        assert [c.phase for c in server.table.connections()] == [Phase.OPEN, Phase.OPEN]


# ---------------------------------------------------------------------------
# prefix_timeout, first_frame_timeout
# ---------------------------------------------------------------------------


async def test_prefix_timeout_frees_every_silent_connection(autojump_clock: trio.testing.MockClock) -> None:
    async with serving(
        real_engine(), connections_max=50, connections_per_source=50, prefix_timeout=5.0
    ) as server:
        silent = [await server.listener.connect(remote="192.0.2.66") for _ in range(50)]
        await trio.sleep(1)
        assert len(server.table) == 50
        await trio.sleep(4.5)
        assert len(server.table) == 0
        assert server.table.stats["prefix_timeout"] == 50
        assert all([await is_closed(s) for s in silent[:3]])
        assert await handshake(server)


async def test_first_frame_timeout_and_eviction_after_the_prefix(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Connections that send the prefix and then nothing are timed out, and are evictable meanwhile."""
    async with serving(
        real_engine(), connections_max=4, connections_per_source=4, first_frame_timeout=10.0
    ) as server:
        lurkers = []
        for _ in range(4):
            lurker = await server.listener.connect(remote="192.0.2.66")
            await lurker.send_all(PREFIX)
            lurkers.append(lurker)
        await settle()
        assert [c.phase for c in server.table.connections()] == [Phase.FIRST_FRAME] * 4
        assert await handshake(server)
        assert server.table.stats["evicted"] == 1
        await trio.sleep(11)
        assert server.table.stats["first_frame_timeout"] == 3
        assert len(server.table) == 1  # the handshake's connection: never timed out, never evicted
        assert server.table.connections()[0].phase is Phase.OPEN


# ---------------------------------------------------------------------------
# Eviction by what a connection has earned (issue 15 items 5, 6)
# ---------------------------------------------------------------------------


def ike_sa_init(seed: int) -> bytes:
    """An IKE_SA_INIT request of the core initiator (its SA never goes further)."""
    initiator = Endpoint(Config(), seeded(seed), KeyExchangeFactory(seeded(seed + 1)))
    path = Path(Transport.TCP, LOCAL[0], LOCAL[1], ip_address("192.0.2.1"), 40000, 1)
    initiator.initiate(initiator_settings(SUITE), path, 0.0)
    [request] = initiator.messages_to_send()
    return request.data


async def test_one_frame_connections_cannot_hold_the_slots() -> None:
    """Item 5: connections that sent the prefix and one ESP frame of no SA fill connections_max;
    a well-behaved peer takes the slot of the oldest, and so does the next."""
    async with serving(real_engine(), connections_max=6, connections_per_source=3) as server:
        squatters = []
        for i in range(6):
            squatter = await server.listener.connect(remote=f"192.0.2.{i % 2}")
            await squatter.send_all(PREFIX + frame_esp(b"\xde\xad\xbe\xef" + bytes(40)))
            squatters.append(squatter)
        await settle()
        assert [c.phase for c in server.table.connections()] == [Phase.OPEN] * 6
        assert await handshake(server, "203.0.113.5", seed=7)
        assert await handshake(server, "203.0.113.6", seed=9)
        assert server.table.stats["evicted_nothing"] == 2
        assert await is_closed(squatters[0]) and await is_closed(squatters[1])
        assert not await is_closed(squatters[2])


async def test_eviction_order_nothing_then_half_open_never_authenticated() -> None:
    async with serving(real_engine(), connections_max=3, connections_per_source=3) as server:
        half_open = await well_behaved(server, "192.0.2.1", ike_sa_init(20))  # oldest
        esp_only = await server.listener.connect(remote="192.0.2.2")
        await esp_only.send_all(PREFIX + frame_esp(b"\xde\xad\xbe\xef" + bytes(40)))
        await settle()
        assert await handshake(server, "203.0.113.5", seed=7)
        assert server.table.stats["evicted_nothing"] == 0  # there was room
        assert await handshake(server, "203.0.113.6", seed=9)  # takes the ESP-only connection's slot
        assert server.table.stats["evicted_nothing"] == 1
        assert await is_closed(esp_only) and not await is_closed(half_open)
        assert await handshake(server, "203.0.113.7", seed=11)  # takes the half-open one's slot
        assert server.table.stats["evicted_half_open"] == 1
        assert await is_closed(half_open)
        late = await server.listener.connect(remote="192.0.2.9")  # every slot is authenticated now
        assert await is_closed(late)
        assert server.table.stats["refused_total"] == 1


async def test_closing_connections_free_their_slots_at_once() -> None:
    """Item 6: connections the engine closed that are still flushing count against no limit."""
    async with serving(
        RecordingEngine(), lockstep=True, connections_max=10, connections_per_source=2
    ) as server:
        mine = [await well_behaved(server, "192.0.2.7") for _ in range(2)]
        assert isinstance(server.engine, RecordingEngine)
        for connection in server.table.connections():
            assert server.engine.send(connection.id, b"unread answer")  # the writer blocks: nobody reads
            connection.close("test: closing")
        await settle()
        assert [c.phase for c in server.table.connections()] == [Phase.CLOSING] * 2
        assert server.table.counted == 0
        again = [await well_behaved(server, "192.0.2.7", b"again") for _ in range(2)]
        assert server.table.stats["refused_per_source"] == 0
        assert server.table.stats["evicted"] == 0
        assert not await is_closed(again[1])
        assert server.engine.ike()[-2:] == [b"again", b"again"]
        del mine


# ---------------------------------------------------------------------------
# Back-pressure (issue 15 item 7)
# ---------------------------------------------------------------------------


async def test_a_burst_of_requests_is_slowed_down_not_closed() -> None:
    """200 requests in one write, each answered: every answer arrives, in order, and the connection stays."""
    requests = [b"request %03d" % i for i in range(200)]
    async with serving(RecordingEngine(echo=True), lockstep=True) as server:
        client = await server.listener.connect()
        received = bytearray()
        expected = b"".join(frame_ike(b"re:" + request) for request in requests)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, PREFIX + b"".join(frame_ike(r) for r in requests))
            with trio.fail_after(5):
                while len(received) < len(expected):
                    received += await client.receive_some()
        assert bytes(received) == expected
        assert server.table.stats["slow_reader"] == 0
        assert not await is_closed(client)


async def test_a_peer_that_sends_but_never_reads_is_closed_after_slow_reader_timeout(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "responder.server.streams")
    requests = b"".join(frame_ike(b"request %03d" % i) for i in range(200))
    async with serving(RecordingEngine(echo=True), lockstep=True, slow_reader_timeout=3.0) as server:
        client = await server.listener.connect()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, PREFIX + requests)
            await trio.sleep(2.9)
            assert len(server.table) == 1  # waiting for room, not closed
            await trio.sleep(0.2)
            assert server.table.counted == 0  # closing: it writes what it can, then it is cut
            await trio.sleep(1.5)
            assert len(server.table) == 0
            nursery.cancel_scope.cancel()
        assert server.table.stats["slow_reader"] == 1
        assert "slow reader: no room in the send queue for 3s" in caplog.text


async def test_ipv6_sources_count_by_prefix() -> None:
    """A host has a whole /64 to connect from: connections_per_source counts the prefix
    (``half_open_ipv6_prefix``), so new addresses in it evict the prefix's own connections."""
    async with serving(connections_max=100, connections_per_source=5) as server:
        squatters = [await server.listener.connect(remote=f"2001:db8:1:2::{n:x}") for n in range(1, 31)]
        clean = await well_behaved(server, "2001:db8:9::1")
        assert server.table.stats["evicted"] == 25
        assert server.table.counted == 6
        assert [await is_closed(s) for s in squatters[-5:]] == [False] * 5
        assert not await is_closed(clean)


async def test_the_source_holding_most_connections_gives_one_up_first() -> None:
    """At connections_max the victim comes from the source holding most connections, not the oldest
    connection of all: a peer with one connection in its handshake survives a flood from elsewhere."""
    async with serving(connections_max=6, connections_per_source=6) as server:
        lone = await server.listener.connect(remote="203.0.113.5")  # the oldest of all, still stalled
        crowd = [await server.listener.connect(remote="192.0.2.66") for _ in range(5)]
        newcomer = await server.listener.connect(remote="198.51.100.9")
        await settle()
        assert await is_closed(crowd[0])
        assert not await is_closed(lone) and not await is_closed(newcomer)
        for _ in range(20):  # the crowd keeps coming: it only ever replaces its own
            await server.listener.connect(remote="192.0.2.66")
        await settle()
        assert not await is_closed(lone) and not await is_closed(newcomer)
        assert server.table.counted == 6
