"""Batching of ESP in the shell (issue 12): many frames per read and per wakeup reach the engine
as one batch, what is queued leaves in one write, and order and the RFC 9329 §6.1 rules hold.

``bench/esp_wire.py`` measures what batching buys; these tests pin down the behaviour.
"""

from __future__ import annotations

import logging
import socket as stdlib_socket
from ipaddress import ip_address

import attrs
import pytest
import trio

from responder.core.config import Config, Limits
from responder.core.path import Path, Transport
from responder.core.tcp_framing import frame_esp, frame_ike
from responder.server.connections import Connection
from responder.server.engine import Engine
from responder.server.streams import WRITE_BATCH, _write_loop
from responder.server.udp import UdpListener
from tests.fakes.pair import seeded
from tests.server.fakes import PEER, RecordingEngine, serving, settle

PREFIX = b"IKETCP"
IKE = bytes(range(28)) + b"an IKE message"


def esp(n: int) -> bytes:
    return bytes.fromhex("c0ffee01") + n.to_bytes(4, "big") + b"ciphertext"


async def test_esp_frames_of_one_read_arrive_as_batches_in_order() -> None:
    """40 ESP frames, an IKE frame, 5 more, in one write: batches of at most half the send queue
    (16 of 32), the IKE frame after the ESP before it and before the ESP after it."""
    async with serving(send_queue=32) as server:
        client = await server.listener.connect()
        first, second = [esp(n) for n in range(40)], [esp(n) for n in range(40, 45)]
        data = PREFIX + b"".join(map(frame_esp, first)) + frame_ike(IKE) + b"".join(map(frame_esp, second))
        await client.send_all(data)
        await settle()
        assert server.engine.esp() == first + second
        assert server.engine.kinds() == ["attach", *["esp"] * 40, "ike", *["esp"] * 5]
        assert server.engine.batches == [16, 16, 8, 5]
        assert server.table.stats["esp_frames"] == 45


@attrs.define(eq=False)
class CountingStream(trio.abc.SendStream):
    writes: list[bytes] = attrs.Factory(list)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        self.writes.append(bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def test_the_writer_sends_what_is_queued_in_one_write() -> None:
    connection = Connection(1, Transport.TCP, PEER, 4500, PEER, 40001, 0.0, queue_size=64)
    packets = [esp(n) for n in range(50)]
    for packet in packets:
        assert connection.send_esp(packet, connection.path)
    connection.stop_sending()
    stream = CountingStream()
    await _write_loop(connection, stream)  # type: ignore[arg-type]
    assert b"".join(stream.writes) == b"".join(map(frame_esp, packets))
    assert len(stream.writes) == 1  # 50 frames of 20 octets: well under WRITE_BATCH
    assert len(stream.writes[0]) < WRITE_BATCH


async def test_esp_too_long_for_a_frame_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RFC 9329 §3.2: a frame's Length (2 octets) counts itself, so an ESP packet in a frame is at
    most 65533 octets.  A ``[tun] mtu`` near 65535 makes the host send packets past that, each one
    dropped: one log line per interval for them all, not one each (review item 7)."""
    connection = Connection(1, Transport.TCP, PEER, 4500, PEER, 40001, 0.0, queue_size=64)
    assert connection.send_esp(bytes.fromhex("c0ffee01") + bytes(65529), connection.path)  # 65533: fits
    for _ in range(100):
        assert not connection.send_esp(bytes.fromhex("c0ffee01") + bytes(65530), connection.path)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert lines == [f"{connection.describe()}: ESP packet of 65534 octets cannot be framed; dropped"]


async def test_the_writer_splits_a_long_queue_at_write_batch() -> None:
    connection = Connection(1, Transport.TCP, PEER, 4500, PEER, 40001, 0.0, queue_size=256)
    packets = [bytes.fromhex("c0ffee01") + bytes(1400) for _ in range(200)]  # 280 KB in all
    for packet in packets:
        assert connection.send_esp(packet, connection.path)
    connection.stop_sending()
    stream = CountingStream()
    await _write_loop(connection, stream)  # type: ignore[arg-type]
    assert b"".join(stream.writes) == b"".join(map(frame_esp, packets))
    assert 4 <= len(stream.writes) <= 6
    assert all(len(write) < WRITE_BATCH + 1500 for write in stream.writes)


async def test_a32_a_batch_stops_where_the_core_closes_its_connection() -> None:
    """Rows A32, A33: the core closes a connection after ``corrupt_messages_max`` unknown SPIs in a
    row; the rest of the batch that read it is not handed to the core."""
    engine = Engine(Config(limits=Limits(corrupt_messages_max=4)), seeded(1))
    async with serving(engine) as server:
        client = await server.listener.connect()
        await client.send_all(PREFIX + b"".join(frame_esp(esp(n)) for n in range(10)))
        await settle()
        assert engine.stats.esp_unknown_spi == 4  # the fifth to tenth were never opened
        assert await client.receive_some() == b""  # and the connection is closed


async def test_udp_datagrams_waiting_are_read_as_batches_in_order() -> None:
    """Datagrams already waiting when the socket task wakes are read in one go; ESP from one peer
    in a row is one batch, and an IKE message in between keeps its place."""
    udp = await UdpListener.open("127.0.0.1", 0, marker=True)
    engine = RecordingEngine()
    address, port = udp.local
    sender = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    first, second = [esp(n) for n in range(30)], [esp(n) for n in range(30, 40)]
    for datagram in [*first, bytes(4) + IKE, *second]:
        sender.sendto(datagram, (str(address), port))
    async with trio.open_nursery() as nursery:
        await nursery.start(udp.serve, engine)
        with trio.fail_after(5):
            while len(engine.esp()) < 40:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert engine.esp() == first + second
    assert [kind for kind in engine.kinds() if kind != "attach" and kind != "detach"] == [
        *["esp"] * 30,
        "ike",
        *["esp"] * 10,
    ]
    assert engine.batches == [30, 10]
    paths = engine.paths("esp")
    assert all(path is paths[0] for path in paths)  # one Path per peer, not one per datagram
    loopback = ip_address("127.0.0.1")
    assert paths[0] == Path(Transport.UDP, loopback, port, loopback, sender.getsockname()[1])
    sender.close()


async def test_udp_receive_buffer_is_set() -> None:
    udp = await UdpListener.open("127.0.0.1", 0, receive_buffer=1 << 21)
    try:
        assert udp.socket.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_RCVBUF) >= 1 << 21
    finally:
        udp.socket.close()


async def test_an_ike_answer_on_an_idle_plain_tcp_connection_leaves_at_once() -> None:
    """Issue 14: with nothing queued, an IKE message goes straight to the socket in the engine's
    call (no writer task); what the socket does not take is queued, and a writer sends it before
    anything queued later; ESP is always queued, for the writer's batching."""
    taken: list[bytes] = []
    room = [10_000]

    def send_now(data: bytes) -> int:
        n = min(len(data), room[0])
        taken.append(data[:n])
        room[0] -= n
        return n

    started: list[Connection] = []

    async def write(connection: Connection) -> None:
        started.append(connection)
        await trio.lowlevel.checkpoint()

    connection = Connection(1, Transport.TCP, PEER, 4500, PEER, 40001, 0.0, queue_size=64)
    async with trio.open_nursery() as nursery:
        connection.serve_in(nursery, write, send_now)
        assert connection.send_ike(b"first answer", connection.path)
        await settle()
        assert taken == [frame_ike(b"first answer")] and started == [] and connection.room == 64

        room[0] = 5  # the socket's buffer is nearly full: 5 octets go now, the rest is queued
        assert connection.send_ike(b"second answer", connection.path)
        assert connection.send_ike(b"third answer", connection.path)  # behind it: queued, in order
        assert connection.send_esp(esp(1), connection.path)
        assert taken[1:] == [frame_ike(b"second answer")[:5]]
        assert connection.take(WRITE_BATCH) == (
            frame_ike(b"second answer")[5:] + frame_ike(b"third answer") + frame_esp(esp(1))
        )
        await settle()
        assert started == [connection]

        room[0] = 10_000
        assert connection.take(WRITE_BATCH) is None  # the writer ends: nothing is queued
        assert connection.send_esp(esp(2), connection.path)  # ESP: queued for a writer
        assert len(taken) == 2
        await settle()
        assert started == [connection, connection]
        nursery.cancel_scope.cancel()
