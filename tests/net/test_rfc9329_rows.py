"""RFC 9329 requirement rows against ``serve()`` on 127.0.0.1: listeners, and corruption over real sockets.

Each ``test_aNN_...`` checks row ANN of ``shared/reference/responder-requirements.md``
(``docs/rfc9329-rows.md`` says what each asserts).  Sockets bind port 0 (the
default port 4500 is checked in the configuration and then served on a free
port); every wait is bounded by ``fail_after``.
"""

from __future__ import annotations

import socket as stdlib_socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from ipaddress import ip_address

import attrs
import pytest
import trio

from responder.client import Client, establish, establish_on_stream, pinned_context
from responder.core.config import Config, Limits
from responder.core.enums import ExchangeType, PayloadType
from responder.core.events import ResponseReceived
from responder.core.ike_sa import IkeSaState
from responder.core.messages import Header, encode_header
from responder.core.path import Path, Transport
from responder.core.tcp_framing import STREAM_PREFIX, IkeFrame, StreamDeframer, frame_ike
from responder.server import ServerInfo, serve
from responder.server.settings import DEFAULT_LISTENERS, Listener, ServerSettings
from tests.fakes.pair import child_request, forge, initiator_settings, responder_config, seeded

SUITE = "aes256gcm16-prfsha256-x25519"
HOST = "127.0.0.1"


@asynccontextmanager
async def serving(listeners: tuple[Listener, ...]) -> AsyncIterator[ServerInfo]:
    settings = ServerSettings(config=responder_config(SUITE), listeners=listeners)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(10):
            info: ServerInfo = await nursery.start(partial(serve, settings))
        yield info
        nursery.cancel_scope.cancel()


async def handshake(info: ServerInfo, listener: Listener, seed: int) -> Client:
    """A full IKE SA with a Child SA through ``listener``, as bound."""
    with trio.fail_after(10):
        client = await establish(
            initiator_settings(SUITE, child_request()),
            Config(),
            listener.kind,
            listener.host,
            listener.port,
            tls_fingerprint=info.tls_fingerprint if listener.kind is Transport.TLS else None,
            random_bytes=seeded(seed),
        )
    assert client.established, client.reason
    assert info.engine.sa(client.spi_r) is not None
    return client


# ------------------------------------------------------------------- A3, A5, A6, A7: listeners


async def test_a3_a7_default_listeners_are_tcp_4500_with_udp_beside_it() -> None:
    """Rows A3, A7 (and A6): without a ``listen`` key the server listens on TCP port 4500, with UDP
    4500 beside it; the same listeners, on free ports here, serve a handshake each."""
    assert ServerSettings().listeners == DEFAULT_LISTENERS
    assert [(listener.kind, listener.port) for listener in DEFAULT_LISTENERS] == [
        (Transport.TCP, 4500),
        (Transport.UDP, 4500),
    ]
    free = tuple(attrs.evolve(listener, port=0) for listener in DEFAULT_LISTENERS)
    async with serving(free) as info:
        assert [listener.kind for listener in info.listeners] == [Transport.TCP, Transport.UDP]
        for seed, listener in enumerate(info.listeners, start=10):
            async with await handshake(info, listener, seed):
                pass
        assert info.engine.stats.ike_sas == 2


async def test_a5_every_configured_listener_listens() -> None:
    """Row A5 (and A4): each configured listener is listening once ``serve`` reports started:
    two TCP ports, a TLS port and a UDP port each complete a handshake."""
    listeners = (
        Listener(Transport.TCP, HOST, 0),
        Listener(Transport.TCP, HOST, 0),
        Listener(Transport.TLS, HOST, 0),
        Listener(Transport.UDP, HOST, 0),
    )
    async with serving(listeners) as info:
        assert len({listener.port for listener in info.listeners}) == 4
        for seed, listener in enumerate(info.listeners, start=20):
            async with await handshake(info, listener, seed) as client:
                assert client.transport is listener.kind
        assert info.engine.stats.ike_sas == 4


def free_port_for_tcp_and_udp() -> int:
    """A port that is free for both TCP and UDP on 127.0.0.1 right now."""
    for _ in range(20):
        with stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM) as tcp:
            tcp.bind((HOST, 0))
            port = int(tcp.getsockname()[1])
            with stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((HOST, port))
                except OSError:
                    continue
                return port
    pytest.skip("no port free for both TCP and UDP")


async def test_a6_udp_is_served_beside_tcp_on_the_same_port() -> None:
    """Row A6: the responder offers UDP beside TCP encapsulation (it does not choose for the
    client): both on one port number, as with the default 4500, each serving a handshake."""
    port = free_port_for_tcp_and_udp()
    async with serving((Listener(Transport.TCP, HOST, port), Listener(Transport.UDP, HOST, port))) as info:
        assert {(listener.kind, listener.port) for listener in info.listeners} == {
            (Transport.TCP, port),
            (Transport.UDP, port),
        }
        for seed, listener in enumerate(info.listeners, start=30):
            async with await handshake(info, listener, seed) as client:
                assert client.transport is listener.kind and client.path.remote_port == port


# ------------------------------------------------------------------- A32: corruption over real sockets


async def read_message(stream: trio.abc.Stream, deframer: StreamDeframer) -> bytes:
    with trio.fail_after(10):
        while (frame := deframer.next_frame()) is None:
            data = await stream.receive_some()
            assert data, "the responder closed the connection"
            deframer.feed(bytes(data))
    assert isinstance(frame, IkeFrame)
    return frame.message


async def open_stream(info: ServerInfo, kind: Transport) -> trio.abc.Stream:
    [listener] = [listener for listener in info.listeners if listener.kind is kind]
    stream: trio.abc.Stream = await trio.open_tcp_stream(HOST, listener.port)
    if kind is Transport.TLS:
        tls = trio.SSLStream(stream, pinned_context(), server_hostname=HOST)
        await tls.do_handshake()
        stream = tls
    return stream


@pytest.mark.parametrize("kind", [Transport.TCP, Transport.TLS], ids=lambda kind: kind.value)
async def test_a32_corrupt_stream_is_closed_and_the_sa_answers_on_the_next(kind: Transport) -> None:
    """Row A32 end to end: 16 messages in a row whose ICV fails close that connection (gracefully:
    a FIN, and TLS close_notify), never the IKE SA, which answers on the Originator's next connection."""
    async with serving((Listener(Transport.TCP, HOST, 0), Listener(Transport.TLS, HOST, 0))) as info:
        first = await open_stream(info, kind)
        with trio.fail_after(10):
            path = Path(kind, ip_address(HOST), 40000, ip_address(HOST), 4500, 1)
            client = await establish_on_stream(
                first, initiator_settings(SUITE), Config(), path=path, random_bytes=seeded(40)
            )
        assert client.established, client.reason
        sa = client.sa
        good = forge(sa, ExchangeType.INFORMATIONAL, (), message_id=99)
        bad = good[:-1] + bytes([good[-1] ^ 0x01])
        with trio.fail_after(10):
            await first.send_all(b"".join(frame_ike(bad) for _ in range(16)))
            assert await first.receive_some() == b""  # closed by the server, nothing sent
            await first.aclose()
        assert info.engine.stats.closed_corrupt == 1
        responder = info.engine.sa(client.spi_r)
        assert responder is not None and responder.state is IkeSaState.ESTABLISHED
        second = await open_stream(info, kind)
        async with second:
            client.endpoint.request_liveness_check(sa.local_spi, trio.current_time())
            [request] = client.endpoint.messages_to_send()
            await second.send_all(STREAM_PREFIX + frame_ike(request.data))
            deframer = StreamDeframer()
            deframer.feed(STREAM_PREFIX)  # the responder sends no prefix
            client.endpoint.receive(await read_message(second, deframer), path, trio.current_time())
        events = []
        while (event := client.endpoint.next_event()) is not None:
            events.append(event)
        [answered] = [e for e in events if isinstance(e, ResponseReceived)]
        assert answered.exchange is ExchangeType.INFORMATIONAL and answered.result == "alive"


async def test_connection_rules_reach_the_core_from_the_configuration() -> None:
    """``responder.limits.orphan_timeout`` and ``corrupt_messages_max`` rule the server's streams
    (RFC 9329 §6.1, rows A25, A32): three messages for unknown SPIs in a row close a connection at
    once; one such message leaves it open for the 0.25 s grace period only."""
    settings = ServerSettings(
        config=responder_config(SUITE, limits=Limits(orphan_timeout=0.25, corrupt_messages_max=3)),
        listeners=(Listener(Transport.TCP, HOST, 0),),
    )
    unknown = Header(
        spi_i=b"\x01" * 8,
        spi_r=b"\x02" * 8,
        exchange_type=ExchangeType.INFORMATIONAL,
        is_initiator=True,
        is_response=False,
        message_id=1,
    )
    junk = frame_ike(encode_header(unknown, PayloadType.NONE, 28))
    async with trio.open_nursery() as nursery:
        with trio.fail_after(10):
            info: ServerInfo = await nursery.start(partial(serve, settings))
            port = info.listeners[0].port
            for frames, closed_within in ((3, 0.2), (1, 5.0)):
                stream = await trio.open_tcp_stream(HOST, port)
                started = trio.current_time()
                await stream.send_all(STREAM_PREFIX + junk * frames)
                assert await stream.receive_some() == b""  # the responder closed it
                elapsed = trio.current_time() - started
                assert elapsed < closed_within, (frames, elapsed)
                if frames == 1:
                    assert elapsed >= 0.25  # not before the grace period ran out
                await stream.aclose()
            assert (info.engine.stats.closed_corrupt, info.engine.stats.closed_orphan) == (1, 1)
        nursery.cancel_scope.cancel()
