"""Fakes for the server's transports: an in-memory listener and a recording engine.

:class:`MemoryListener` is written like the one in trio's own
``test_highlevel_serve_listeners.py`` (trio.testing has none): ``connect()``
hands the test the client end of a fresh memory stream pair and queues the
server end for ``accept()``.  Each connection gets the remote address and port
the test asks for, which :meth:`MemoryListener.addresses` reports to
:func:`~responder.server.streams.serve_stream_listener`.

:class:`RecordingEngine` implements
:class:`~responder.server.contracts.EngineInput` and records every call in
order; it can echo IKE messages back through the connection's sink and can be
told to fail on a given message, for tests of the write path and of failure
isolation.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import attrs
import trio
import trio.testing

from responder.core.path import Path, Transport
from responder.core.tcp_framing import MAX_LENGTH
from responder.server.connections import ConnectionTable
from responder.server.contracts import Sink
from responder.server.engine import Engine
from responder.server.settings import ServerSettings
from responder.server.streams import serve_stream_listener

IPAddress = IPv4Address | IPv6Address

LOCAL = (ip_address("198.51.100.1"), 4500)
PEER = ip_address("192.0.2.1")


@attrs.define(eq=False)
class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """Accepts in-memory streams that tests open with :meth:`connect`."""

    lockstep: bool = False  #: lockstep_stream_pair (writes block until read) instead of memory_stream_pair
    closed: bool = False
    accepted: list[trio.abc.Stream] = attrs.Factory(list)
    _queue: tuple[trio.MemorySendChannel[trio.abc.Stream], trio.MemoryReceiveChannel[trio.abc.Stream]] = (
        attrs.Factory(lambda: trio.open_memory_channel[trio.abc.Stream](1))
    )
    _addresses: dict[int, tuple[IPAddress, int, IPAddress, int]] = attrs.Factory(dict)
    _next_port: int = 40000
    accept_hook: Callable[[], object] | None = None  #: called before each accept (may raise OSError)

    async def connect(self, remote: str | IPAddress = PEER, port: int | None = None) -> trio.abc.Stream:
        """Open a connection "from" ``remote``; returns the client's end."""
        assert not self.closed
        pair = trio.testing.lockstep_stream_pair if self.lockstep else trio.testing.memory_stream_pair
        client, server = pair()
        if port is None:
            port, self._next_port = self._next_port, self._next_port + 1
        self._addresses[id(server)] = (*LOCAL, ip_address(remote), port)
        await self._queue[0].send(server)
        return client

    async def accept(self) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        if self.closed:
            raise trio.ClosedResourceError("listener closed")
        if self.accept_hook is not None:
            self.accept_hook()
        stream = await self._queue[1].receive()
        self.accepted.append(stream)
        return stream

    async def aclose(self) -> None:
        self.closed = True
        await trio.lowlevel.checkpoint()

    def addresses(self, stream: trio.abc.Stream) -> tuple[IPAddress, int, IPAddress, int]:
        """What :func:`serve_stream_listener` would read from a socket; pass as ``addresses=``."""
        return self._addresses[id(stream)]


@attrs.define(eq=False)
class RecordingEngine:
    """An :class:`EngineInput` that records what the transport hands it."""

    echo: bool = False  #: answer every IKE message with ``b"re:" + message`` through the sink
    fail_on: bytes | None = None  #: raise RuntimeError when this IKE message arrives
    calls: list[tuple[str, Path, bytes]] = attrs.Factory(list)
    ecn: list[int] = attrs.Factory(list)  #: the outer ECN field of each ESP packet, in order
    sinks: dict[int | None, Sink] = attrs.Factory(dict)
    batches: list[int] = attrs.Factory(list)  #: sizes of the ESP batches, in order

    def attach(self, path: Path, sink: Sink) -> None:
        self.calls.append(("attach", path, b""))
        self.sinks[path.connection] = sink

    def detach(self, path: Path) -> None:
        self.calls.append(("detach", path, b""))
        self.sinks.pop(path.connection, None)

    def receive_ike(self, message: bytes, path: Path) -> None:
        self.calls.append(("ike", path, message))
        if self.fail_on is not None and message == self.fail_on:
            raise RuntimeError("engine bug provoked by the test")
        if self.echo:
            self.sinks[path.connection].send_ike(b"re:" + message, path)

    def receive_esp(self, packet: bytes, path: Path, ecn: int = 0) -> None:
        self.calls.append(("esp", path, packet))
        self.ecn.append(ecn)

    def inner_backlog(self) -> bool:
        return False

    def receive_esp_batch(self, packets: Sequence[bytes], path: Path, ecn: int = 0) -> None:
        self.batches.append(len(packets))
        for packet in packets:
            self.receive_esp(packet, path, ecn)

    # ------------------------------------------------------------------ queries

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.calls]

    def ike(self) -> list[bytes]:
        return [data for kind, _, data in self.calls if kind == "ike"]

    def esp(self) -> list[bytes]:
        return [data for kind, _, data in self.calls if kind == "esp"]

    def paths(self, kind: str) -> list[Path]:
        return [path for k, path, _ in self.calls if k == kind]

    def send(self, connection: int, message: bytes) -> bool:
        """Send through the sink of ``connection`` as the engine would."""
        sink = self.sinks[connection]
        path = next(p for k, p, _ in reversed(self.calls) if k == "attach" and p.connection == connection)
        return sink.send_ike(message, path)


@attrs.define
class Server:
    """A stream listener served over a :class:`MemoryListener`, for the transport tests."""

    listener: MemoryListener
    engine: Any  # RecordingEngine, or the real Engine
    table: ConnectionTable
    settings: ServerSettings
    nursery: trio.Nursery


@asynccontextmanager
async def serving(
    engine: Any = None,
    *,
    ssl_context: ssl.SSLContext | None = None,
    lockstep: bool = False,
    max_frame_length: int = MAX_LENGTH,
    send_queue: int = 32,
    **limits: Any,
) -> AsyncIterator[Server]:
    """``serve_stream_listener`` (TLS when ``ssl_context`` is given); ``limits`` are ServerSettings keys."""
    settings = ServerSettings(**limits)
    listener = MemoryListener(lockstep=lockstep)
    engine = engine or RecordingEngine()
    table = ConnectionTable(
        settings, send_queue=send_queue, earned=engine.earned if isinstance(engine, Engine) else None
    )
    kind = Transport.TCP if ssl_context is None else Transport.TLS
    async with trio.open_nursery() as nursery:
        if isinstance(engine, Engine):
            await nursery.start(engine.run)
        await nursery.start(
            partial(
                serve_stream_listener,
                listener,
                kind,
                engine,
                table,
                settings,
                ssl_context,
                addresses=listener.addresses,
                max_frame_length=max_frame_length,
            )
        )
        yield Server(listener, engine, table, settings, nursery)
        nursery.cancel_scope.cancel()


async def settle() -> None:
    """Let every task run until all are blocked."""
    await trio.testing.wait_all_tasks_blocked()
