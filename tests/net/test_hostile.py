"""Issue 15 on real sockets: a hostile peer pushes each limit while well-behaved initiators get through.

The server is :func:`responder.server.serve` on 127.0.0.1 with TCP, TLS and
UDP listeners.  Hostile peers send from other loopback addresses (127.0.0.2
and up: Linux answers for all of 127.0.0.0/8), as Trio tasks beside the
server.  While each attack runs, :func:`handshakes` has a clean initiator
complete IKE_SA_INIT and IKE_AUTH with a Child SA on each transport in turn,
each within :data:`WITHIN` seconds.  Each test first checks that the attack
did reach the limit it is about.  The numbers (``connections_max`` 60 and
the like) are smaller than the defaults so that the tests stay quick; the
benchmark ``bench/hostile.py`` runs the same attacks at full size.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
import trustme

from responder.client import establish
from responder.core.config import Config, Limits
from responder.core.endpoint import Endpoint
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.path import Path as IkePath
from responder.core.path import Transport
from responder.core.tcp_framing import STREAM_PREFIX, frame_esp, frame_ike
from responder.server import ServerInfo
from tests.fakes.pair import child_request, initiator_settings, reverse, seeded
from tests.net.test_client import port_of, running_server

SUITE = "aes256gcm16-prfsha256-x25519"
HOST = "127.0.0.1"
NAME = "responder.example.test"
WITHIN = 1.0  #: seconds a clean initiator has for IKE_SA_INIT and IKE_AUTH under attack
UNKNOWN_ESP = frame_esp(b"\xde\xad\xbe\xef" + bytes(60))


@asynccontextmanager
async def server(tmp_path: Path, limits: Limits | None = None, **shell: Any) -> AsyncIterator[ServerInfo]:
    async with running_server(
        trustme.CA(), tmp_path, server_settings=shell, limits=limits or Limits()
    ) as info:
        yield info


async def handshakes(info: ServerInfo, transports: tuple[Transport, ...] = tuple(Transport)) -> None:
    """A clean initiator establishes an IKE SA and a Child SA on each transport, each within WITHIN."""
    for transport in transports:
        with trio.fail_after(WITHIN):
            client = await establish(
                initiator_settings(SUITE, child_request()),
                Config(),
                transport,
                HOST,
                port_of(info, transport),
                tls_fingerprint=info.tls_fingerprint if transport is Transport.TLS else None,
                timeout=WITHIN,
            )
        async with client:
            assert client.established, f"{transport.value}: {client.reason}"
            assert len(client.child_sas) == 1


def ike_sa_init_template() -> bytes:
    """An IKE_SA_INIT request the responder accepts; copies get a fresh SPIi (:func:`fresh`)."""
    initiator = Endpoint(Config(), seeded(70), KeyExchangeFactory(seeded(71)))
    path = IkePath(Transport.TCP, ip_address(HOST), 4500, ip_address(HOST), 40000, 1)
    initiator.initiate(initiator_settings(SUITE), reverse(path), 0.0)
    [request] = initiator.messages_to_send()
    return request.data


def fresh(template: bytes) -> bytes:
    return os.urandom(8) + template[8:]


async def connect_from(source: str, port: int) -> trio.SocketStream:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    await sock.bind((source, 0))
    await sock.connect((HOST, port))
    return trio.SocketStream(sock)


async def stays_open(stream: trio.SocketStream, seconds: float = 0.3) -> bool:
    """Whether the server leaves ``stream`` open for ``seconds`` (reading and dropping what it sends)."""
    with trio.move_on_after(seconds):
        try:
            while await stream.receive_some():
                pass
        except trio.BrokenResourceError:
            pass
        return False
    return True


async def until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    with trio.fail_after(seconds):
        while not condition():
            await trio.sleep(0.01)
    assert condition(), what


Attack = Callable[[trio.Event], Awaitable[None]]


async def under_attack(info: ServerInfo, attack: Attack, reached: Callable[[], bool], what: str) -> None:
    """Run ``attack`` until the handshakes are done; they start once ``reached()``."""
    done = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(attack, done)
        await until(reached, what)
        await handshakes(info)
        done.set()
        nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------- item 1: half-open floods


async def test_half_open_flood_from_one_source_over_tcp_locks_nobody_out(tmp_path: Path) -> None:
    """Item 1: one source floods IKE_SA_INITs on 20 TCP connections; it holds at most its own budgets."""
    template = ike_sa_init_template()
    async with server(tmp_path) as info:
        engine, port = info.engine, port_of(info, Transport.TCP)

        async def attack(done: trio.Event) -> None:
            streams = [await connect_from("127.0.0.2", port) for _ in range(20)]
            for stream in streams:
                await stream.send_all(STREAM_PREFIX)
            while not done.is_set():
                for stream in streams:
                    await stream.send_all(b"".join(frame_ike(fresh(template)) for _ in range(10)))
                await trio.sleep(0.01)

        await under_attack(info, attack, lambda: engine.stats.messages_in >= 2000, "2,000 requests")
        limits = Limits()
        assert engine.stats.half_open <= limits.half_open_per_source + 3  # the clean ones, done or not


async def test_half_open_flood_over_udp_from_one_source_locks_nobody_out(tmp_path: Path) -> None:
    template = ike_sa_init_template()
    async with server(tmp_path) as info:
        engine, port = info.engine, port_of(info, Transport.UDP)
        answers = 0

        async def attack(done: trio.Event) -> None:
            nonlocal answers
            sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            await sock.bind(("127.0.0.2", 0))
            async with trio.open_nursery() as nursery:

                async def count() -> None:
                    nonlocal answers
                    while True:
                        await sock.recv(65536)
                        answers += 1

                nursery.start_soon(count)
                while not done.is_set():
                    for _ in range(20):
                        await sock.sendto(bytes(4) + fresh(template), (HOST, port))
                    await trio.sleep(0.005)
                nursery.cancel_scope.cancel()

        await under_attack(info, attack, lambda: engine.stats.messages_in >= 2000, "2,000 requests")
        assert engine.stats.half_open <= Limits().half_open_per_source + 3
        assert answers <= Limits().half_open_per_source  # what is over the budget gets no answer


# --------------------------------------------------------------------------- item 5: slot exhaustion


async def test_one_frame_connections_from_60_sources_lock_nobody_out(tmp_path: Path) -> None:
    """Item 5: connections_max filled by connections carrying one ESP frame of no SA apiece."""
    async with server(tmp_path, connections_max=120, connections_per_source=20) as info:
        engine, port = info.engine, port_of(info, Transport.TCP)
        held: list[trio.SocketStream] = []

        async def attack(done: trio.Event) -> None:
            n = 0
            while not done.is_set():
                try:
                    stream = await connect_from(f"127.0.2.{n % 60 + 1}", port)
                    await stream.send_all(STREAM_PREFIX + UNKNOWN_ESP)
                    held.append(stream)
                except OSError:
                    pass
                n += 1
                if n % 20 == 0:
                    await trio.sleep(0.01)

        await under_attack(info, attack, lambda: len(held) >= 240, "240 squatting connections opened")
        assert engine.stats.esp_unknown_spi >= 120
        for stream in held:
            await trio.aclose_forcefully(stream)


async def test_stalled_connections_lock_nobody_out(tmp_path: Path) -> None:
    """Connections that send nothing (TCP) or never finish TLS fill connections_max; evicted first."""
    async with server(tmp_path, connections_max=100, connections_per_source=20) as info:
        tcp, tls = port_of(info, Transport.TCP), port_of(info, Transport.TLS)
        held: list[trio.SocketStream] = []

        async def attack(done: trio.Event) -> None:
            n = 0
            while not done.is_set():
                with suppress(OSError):
                    held.append(await connect_from(f"127.0.3.{n % 60 + 1}", tcp if n % 2 else tls))
                n += 1
                if n % 20 == 0:
                    await trio.sleep(0.01)

        await under_attack(info, attack, lambda: len(held) >= 200, "200 silent connections opened")
        for stream in held:
            await trio.aclose_forcefully(stream)


# --------------------------------------------------------------------------- item 6: closing connections


async def test_closed_connections_do_not_count_against_their_source(tmp_path: Path) -> None:
    """Item 6: an initiator closes 5 connections (its per-source limit) and reconnects at once, 5 times.

    On loopback the server usually sees the closes before the new connections;
    tests/server/test_stream_limits.py holds connections in their closing phase
    deterministically."""
    async with server(tmp_path, connections_max=100, connections_per_source=5) as info:
        port = port_of(info, Transport.TCP)
        for _ in range(5):
            streams = [await connect_from(HOST, port) for _ in range(5)]
            for stream in streams:
                await stream.send_all(STREAM_PREFIX + UNKNOWN_ESP)
            await trio.testing.wait_all_tasks_blocked(0.01)
            for stream in streams:
                await stream.aclose()
            await handshakes(info, (Transport.TCP, Transport.TLS))


# --------------------------------------------------------------------------- item 7: bursts


async def test_a_burst_of_200_requests_in_one_write_is_not_taken_for_a_slow_reader(tmp_path: Path) -> None:
    template = ike_sa_init_template()
    async with server(tmp_path) as info:
        stream = await connect_from("127.0.0.2", port_of(info, Transport.TCP))
        burst = STREAM_PREFIX + b"".join(frame_ike(fresh(template)) for _ in range(200))
        await stream.send_all(burst)
        await until(lambda: info.engine.stats.messages_in >= 200, "the burst delivered")
        await handshakes(info)
        assert await stays_open(stream)


@pytest.mark.parametrize("copies", [100])
async def test_a_burst_of_retransmissions_is_answered_in_full(tmp_path: Path, copies: int) -> None:
    """Item 7 with answers: 100 copies of one IKE_SA_INIT in one write, each answered from the store,
    as long as the rate of unprotected answers allows (raised here): no answer is lost, nothing closes."""
    request = fresh(ike_sa_init_template())
    limits = Limits(unprotected_replies_per_source=1000.0)
    async with server(tmp_path, limits) as info:
        stream = await connect_from("127.0.0.2", port_of(info, Transport.TCP))
        await stream.send_all(STREAM_PREFIX + frame_ike(request) * copies)
        received = b""
        with trio.fail_after(5):
            while received.count(request[:8]) < copies:
                received += await stream.receive_some()
        assert await stays_open(stream)
