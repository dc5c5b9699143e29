"""``responder.client`` against the real server on 127.0.0.1 over TCP, TLS and UDP.

The server is :func:`responder.server.serve` with every kind of listener on
port 0.  Retransmission behaviour is checked against silent peers of the
test's own, under the mock clock: UDP follows the core's RFC 7296 §2.1
schedule, TCP never retransmits (RFC 9329 §6.2, row A39).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
import trustme

from responder.client import Client, FingerprintMismatch, establish
from responder.core.config import Config, Limits
from responder.core.enums import NotifyType
from responder.core.errors import LocalError
from responder.core.events import IkeSaInitRefused
from responder.core.initiator import InitiatorSettings
from responder.core.path import Transport
from responder.core.tcp_framing import STREAM_PREFIX
from responder.server import ServerInfo, serve
from responder.server.settings import Listener, ServerSettings
from tests.fakes.pair import child_request, initiator_settings, responder_config

SUITE = "aes256gcm16-prfsha256-x25519"
HOST = "127.0.0.1"
NAME = "responder.example.test"


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@asynccontextmanager
async def running_server(
    ca: trustme.CA, tmp_path: Path, *, server_settings: dict[str, Any] | None = None, **config: Any
) -> AsyncIterator[ServerInfo]:
    """TCP, TLS and UDP listeners on 127.0.0.1 port 0; ``config`` for the core's :class:`Config`,
    ``server_settings`` for the other :class:`ServerSettings` keys (``connections_max`` and the like)."""
    leaf = ca.issue_cert(NAME, HOST)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    settings = ServerSettings(
        config=responder_config(SUITE, **config),
        listeners=tuple(Listener(kind, HOST, 0) for kind in (Transport.TCP, Transport.TLS, Transport.UDP)),
        tls_cert=cert,
        tls_key=key,
        **(server_settings or {}),
    )
    async with trio.open_nursery() as nursery:
        info: ServerInfo = await nursery.start(serve, settings)
        yield info
        nursery.cancel_scope.cancel()


def port_of(info: ServerInfo, kind: Transport) -> int:
    return next(listener.port for listener in info.listeners if listener.kind is kind)


def settings(suite: str = SUITE, **kwargs: Any) -> InitiatorSettings:
    return initiator_settings(suite, child_request(), **kwargs)


async def full_life(client: Client) -> None:
    """Established with a Child SA; a liveness check and a delete both answered."""
    assert client.established, client.reason
    assert client.reason is None
    assert len(client.child_sas) == 1
    assert client.spi_r != bytes(8)
    with trio.fail_after(10):
        assert await client.liveness_check()
        assert await client.delete()
    assert not client.established


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.UDP])
async def test_establish_liveness_delete(transport: Transport, ca: trustme.CA, tmp_path: Path) -> None:
    async with running_server(ca, tmp_path) as info:
        with trio.fail_after(10):
            client = await establish(settings(), Config(), transport, HOST, port_of(info, transport))
        async with client:
            assert client.path.transport is transport
            await full_life(client)
        await trio.testing.wait_all_tasks_blocked()
        assert info.engine.stats.ike_sas == 0


async def test_establish_over_tls_verified(ca: trustme.CA, tmp_path: Path) -> None:
    """Row A14 end to end: IKE inside TLS, the client verifying the server's certificate."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with running_server(ca, tmp_path) as info:
        with trio.fail_after(10):
            client = await establish(
                settings(),
                Config(),
                Transport.TLS,
                HOST,
                port_of(info, Transport.TLS),
                ssl_context=context,
                server_hostname=NAME,
            )
        async with client:
            assert client.path.transport is Transport.TLS
            await full_life(client)


async def test_tls_fingerprint_pinning(ca: trustme.CA, tmp_path: Path) -> None:
    async with running_server(ca, tmp_path) as info:
        assert info.tls_fingerprint is not None
        port = port_of(info, Transport.TLS)
        with trio.fail_after(10):
            client = await establish(
                settings(), Config(), Transport.TLS, HOST, port, tls_fingerprint=info.tls_fingerprint
            )
        async with client:
            assert client.established
        wrong = ":".join(["00"] * 32)
        with trio.fail_after(10), pytest.raises(FingerprintMismatch):
            await establish(settings(), Config(), Transport.TLS, HOST, port, tls_fingerprint=wrong)


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.UDP])
async def test_invalid_ke_payload_is_followed(transport: Transport, ca: trustme.CA, tmp_path: Path) -> None:
    """The client offers ECP-256 first; the responder wants X25519; the retry succeeds (A43 over TCP)."""
    async with running_server(ca, tmp_path) as info:
        with trio.fail_after(10):
            client = await establish(
                settings("aes256gcm16-prfsha256-ecp256-x25519"),
                Config(),
                transport,
                HOST,
                port_of(info, transport),
            )
        async with client:
            refusals = [e.notify for e in client.events if isinstance(e, IkeSaInitRefused)]
            assert refusals == [NotifyType.INVALID_KE_PAYLOAD]
            assert client.established


async def test_cookie_is_followed_over_udp(ca: trustme.CA, tmp_path: Path) -> None:
    async with running_server(ca, tmp_path, limits=Limits(cookie_threshold=0)) as info:
        with trio.fail_after(10):
            client = await establish(settings(), Config(), Transport.UDP, HOST, port_of(info, Transport.UDP))
        async with client:
            refusals = [e.notify for e in client.events if isinstance(e, IkeSaInitRefused)]
            assert refusals == [NotifyType.COOKIE]
            assert client.established


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.UDP])
async def test_wrong_psk_is_an_outcome(transport: Transport, ca: trustme.CA, tmp_path: Path) -> None:
    from responder.core.config import Secret

    async with running_server(ca, tmp_path) as info:
        with trio.fail_after(10):
            client = await establish(
                settings(psk=Secret.parse("not the key")), Config(), transport, HOST, port_of(info, transport)
            )
        async with client:
            assert not client.established
            assert client.reason is not None and "AUTHENTICATION_FAILED" in client.reason
            with pytest.raises(LocalError):
                await client.liveness_check()


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.UDP])
async def test_process_answers_the_responders_requests(
    transport: Transport, ca: trustme.CA, tmp_path: Path
) -> None:
    """The responder's own liveness check (RFC 7296 §2.4) is answered while the client processes."""
    async with running_server(ca, tmp_path) as info:
        with trio.fail_after(10):
            client = await establish(settings(), Config(), transport, HOST, port_of(info, transport))
        async with client:
            responder_sa = info.engine.sa(client.spi_r)
            assert responder_sa is not None
            info.engine.request_liveness_check(client.spi_r)
            assert responder_sa.layer.pending
            await client.process(0.5)
            assert not responder_sa.layer.pending
            assert client.established and client.reason is None


async def test_connection_refused_raises() -> None:
    listener = trio.socket.socket()
    await listener.bind((HOST, 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    with trio.fail_after(10), pytest.raises(OSError):
        await establish(settings(), Config(), Transport.TCP, HOST, port)


# ---------------------------------------------------------------------------
# Retransmission: UDP on the core's schedule, never over TCP (RFC 9329 §6.2)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("marker", "expected"), [(None, True), (False, False)])
async def test_udp_retransmits_on_the_core_schedule(
    marker: bool | None, expected: bool, autojump_clock: trio.testing.MockClock
) -> None:
    """A silent UDP peer sees the request at 0, 1, 3, 7 and 15 s, then the client gives up (RFC 7296 §2.1)."""
    silent = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
    await silent.bind((HOST, 0))
    arrivals: list[tuple[float, bytes]] = []

    async def record() -> None:
        while True:
            data = await silent.recv(65536)
            arrivals.append((trio.current_time(), data))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(record)
        start = trio.current_time()
        client = await establish(
            settings(),
            Config(),
            Transport.UDP,
            HOST,
            silent.getsockname()[1],
            non_esp_marker=marker,
            timeout=60,
        )
        await client.aclose()
        nursery.cancel_scope.cancel()
    silent.close()
    assert [round(t - start) for t, _ in arrivals] == [0, 1, 3, 7, 15]
    assert len({data for _, data in arrivals}) == 1  # bitwise identical retransmissions
    assert arrivals[0][1].startswith(bytes(4)) is expected  # the non-ESP marker unless told otherwise
    assert not client.established
    assert client.reason is not None and "did not answer" in client.reason


async def test_tcp_never_retransmits(autojump_clock: trio.testing.MockClock) -> None:
    """A TCP peer that reads and never answers gets the prefix and one frame; the SA then times out."""
    received: list[bytes] = []
    done = trio.Event()

    async def swallow(stream: trio.SocketStream) -> None:
        while data := await stream.receive_some():
            received.append(data)
        done.set()

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(trio.serve_tcp, swallow, 0, host=HOST))
        port = listener.socket.getsockname()[1]
        start = trio.current_time()
        client = await establish(settings(), Config(), Transport.TCP, HOST, port, timeout=120)
        elapsed = trio.current_time() - start
        await client.aclose()
        with trio.fail_after(5):
            await done.wait()
        nursery.cancel_scope.cancel()
    stream = b"".join(received)
    assert stream.startswith(STREAM_PREFIX)
    length = int.from_bytes(stream[6:8], "big")
    assert len(stream) == len(STREAM_PREFIX) + length  # exactly one frame: no retransmission
    assert not client.established
    assert client.reason is not None and "no retransmission over TCP" in client.reason
    assert elapsed == pytest.approx(31.0)
