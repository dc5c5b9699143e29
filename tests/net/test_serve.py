"""``serve()`` on 127.0.0.1 port 0: TCP, TLS and UDP listeners, a handshake over each, shutdown.

The peer is the core initiator driven over raw trio streams and a UDP socket
(RFC 9329 framing written by hand here, so these tests do not depend on the
client module).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import socket as stdlib_socket
import ssl
from ipaddress import ip_address
from pathlib import Path as FilePath

import attrs
import pytest
import trio
import trustme

from responder.client import establish
from responder.core.config import Config
from responder.core.endpoint import Endpoint
from responder.core.enums import ExchangeType
from responder.core.events import Event, IkeSaEstablished, ResponseReceived
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.path import Path, Transport
from responder.core.tcp_framing import NON_ESP_MARKER, STREAM_PREFIX, IkeFrame, StreamDeframer, frame_ike
from responder.server import ServerInfo, serve
from responder.server.settings import Listener, ServerSettings
from tests.fakes.pair import child_request, initiator_settings, responder_config, seeded

IKE = "aes256gcm16-prfsha256-x25519"
HOST = "127.0.0.1"


@attrs.define(eq=False)
class Recorder:
    seen: list[tuple[Event, Path | None]] = attrs.Factory(list)

    def observe(self, event: Event, path: Path | None) -> None:
        self.seen.append((event, path))

    def established(self) -> list[Path | None]:
        return [p for e, p in self.seen if isinstance(e, IkeSaEstablished)]


@pytest.fixture
def certificate(tmp_path: FilePath) -> tuple[trustme.CA, FilePath, FilePath]:
    ca = trustme.CA()
    leaf = ca.issue_cert(HOST)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return ca, cert, key


def settings_for(cert: FilePath, key: FilePath, **kwargs: object) -> ServerSettings:
    listeners = (
        Listener(Transport.TCP, HOST, 0),
        Listener(Transport.TLS, HOST, 0),
        Listener(Transport.UDP, HOST, 0),
    )
    return ServerSettings(  # type: ignore[misc]
        config=responder_config(IKE), listeners=listeners, tls_cert=cert, tls_key=key, **kwargs
    )


def port_of(info: ServerInfo, kind: Transport) -> int:
    [listener] = [listener for listener in info.listeners if listener.kind is kind]
    return listener.port


def new_initiator(seed: int) -> Endpoint:
    return Endpoint(Config(), seeded(seed), KeyExchangeFactory(seeded(seed + 1)))


async def read_ike(stream: trio.abc.Stream, buffer: bytearray) -> bytes:
    """The next IKE message on an RFC 9329 stream from the responder (which sends no prefix)."""
    while True:
        if len(buffer) >= 2 and len(buffer) >= (length := int.from_bytes(buffer[:2], "big")):
            body = bytes(buffer[2:length])
            del buffer[:length]
            assert body[:4] == NON_ESP_MARKER, "the responder sends only IKE on this stream"
            return body[4:]
        data = await stream.receive_some(65536)
        if not data:
            raise EOFError("the responder closed the stream")
        buffer += data


async def stream_handshake(
    stream: trio.abc.Stream, transport: Transport, port: int, seed: int, initiator: Endpoint | None = None
) -> IkeSa:
    """IKETCP, then IKE_SA_INIT and IKE_AUTH framed by RFC 9329 §3.1."""
    initiator = initiator or new_initiator(seed)
    path = Path(transport, ip_address(HOST), 40000, ip_address(HOST), port, 1)
    sa = initiator.initiate(initiator_settings(IKE, child_request()), path, trio.current_time())
    await stream.send_all(STREAM_PREFIX)
    buffer = bytearray()
    while sa.state not in (IkeSaState.ESTABLISHED, IkeSaState.CLOSED):
        for out in initiator.messages_to_send():
            await stream.send_all(frame_ike(out.data))
        initiator.receive(await read_ike(stream, buffer), path, trio.current_time())
    assert sa.state is IkeSaState.ESTABLISHED
    return sa


async def udp_handshake(port: int, seed: int) -> IkeSa:
    """IKE_SA_INIT and IKE_AUTH over UDP behind the non-ESP marker (any port but 500)."""
    sock = trio.socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    with sock:
        await sock.bind((HOST, 0))
        initiator = new_initiator(seed)
        path = Path(Transport.UDP, ip_address(HOST), sock.getsockname()[1], ip_address(HOST), port)
        sa = initiator.initiate(initiator_settings(IKE, child_request()), path, trio.current_time())
        while sa.state not in (IkeSaState.ESTABLISHED, IkeSaState.CLOSED):
            for out in initiator.messages_to_send():
                await sock.sendto(NON_ESP_MARKER + out.data, (HOST, port))
            data, _ = await sock.recvfrom(65535)
            assert data[:4] == NON_ESP_MARKER
            initiator.receive(data[4:], path, trio.current_time())
    assert sa.state is IkeSaState.ESTABLISHED
    return sa


async def read_until_eof(stream: trio.abc.Stream) -> bytes:
    """Everything the server writes until it closes ``stream``."""
    data = b""
    with contextlib.suppress(trio.BrokenResourceError):
        while chunk := await stream.receive_some(4096):
            data += chunk
    return data


async def until_closed(stream: trio.abc.Stream) -> None:
    """Read until the server closes ``stream`` (FIN or reset); fails if it sends anything."""
    with contextlib.suppress(trio.BrokenResourceError):
        assert await stream.receive_some(4096) == b""


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_serve_reports_bound_ports_and_handshakes_over_tcp_tls_and_udp(
    nursery: trio.Nursery, certificate: tuple[trustme.CA, FilePath, FilePath]
) -> None:
    ca, cert, key = certificate
    recorder = Recorder()
    with trio.fail_after(20):
        info: ServerInfo = await nursery.start(
            functools.partial(serve, settings_for(cert, key), observers=(recorder,))
        )
        assert [listener.kind for listener in info.listeners] == [Transport.TCP, Transport.TLS, Transport.UDP]
        assert all(listener.port != 0 and listener.host == HOST for listener in info.listeners)
        tcp_port, tls_port, udp_port = (
            port_of(info, kind) for kind in (Transport.TCP, Transport.TLS, Transport.UDP)
        )

        tcp = await trio.open_tcp_stream(HOST, tcp_port)
        async with tcp:
            await stream_handshake(tcp, Transport.TCP, tcp_port, seed=10)

        raw = await trio.open_tcp_stream(HOST, tls_port)
        tls = trio.SSLStream(raw, client_context(ca), server_hostname=HOST)
        async with tls:
            await tls.do_handshake()
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            assert info.tls_fingerprint == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
            await stream_handshake(tls, Transport.TLS, tls_port, seed=20)

        await udp_handshake(udp_port, seed=30)

    paths = recorder.established()
    assert [p.transport for p in paths if p is not None] == [Transport.TCP, Transport.TLS, Transport.UDP]
    assert info.engine.stats.ike_sas == 3


async def start_with_shutdown(
    nursery: trio.Nursery, settings: ServerSettings
) -> tuple[ServerInfo, trio.Event, trio.Event]:
    """serve() with a shutdown event: (info, shutdown, done); ``done`` is set once serve returns."""
    shutdown, done = trio.Event(), trio.Event()

    async def run(*, task_status: trio.TaskStatus[ServerInfo]) -> None:
        await serve(settings, task_status=task_status, shutdown=shutdown)
        done.set()

    info: ServerInfo = await nursery.start(run)
    return info, shutdown, done


async def test_shutdown_closes_connections_within_the_deadline_and_returns(
    nursery: trio.Nursery, certificate: tuple[trustme.CA, FilePath, FilePath]
) -> None:
    _, cert, key = certificate
    settings = settings_for(cert, key, shutdown_timeout=2.0, shutdown_grace=0.5)
    with trio.fail_after(20):
        info, shutdown, done = await start_with_shutdown(nursery, settings)
        tcp_port = port_of(info, Transport.TCP)
        busy = await trio.open_tcp_stream(HOST, tcp_port)
        await stream_handshake(busy, Transport.TCP, tcp_port, seed=10)
        stalled = await trio.open_tcp_stream(HOST, port_of(info, Transport.TLS))  # never says a word
        start = trio.current_time()
        shutdown.set()
        await done.wait()
        elapsed = trio.current_time() - start
        # RFC 9329 row A24: the IKE SA's Delete (unanswered here), then the server's FIN.
        deframer = StreamDeframer()
        deframer.feed(STREAM_PREFIX + await read_until_eof(busy))  # the responder sends no prefix
        frame = deframer.next_frame()
        assert isinstance(frame, IkeFrame) and frame.message[18] == ExchangeType.INFORMATIONAL
        await until_closed(stalled)
        await busy.aclose()
        await stalled.aclose()
    assert settings.shutdown_grace <= elapsed <= settings.shutdown_grace + settings.shutdown_timeout + 0.5
    with pytest.raises(OSError):
        await trio.open_tcp_stream(HOST, tcp_port)  # nothing listens any more


async def test_a_bad_connection_never_ends_the_server(
    nursery: trio.Nursery, certificate: tuple[trustme.CA, FilePath, FilePath]
) -> None:
    """RFC 9329 §4, §10 (row A15): a wrong prefix closes that connection; the server goes on."""
    _, cert, key = certificate
    with trio.fail_after(20):
        info: ServerInfo = await nursery.start(functools.partial(serve, settings_for(cert, key)))
        tcp_port = port_of(info, Transport.TCP)
        bad = await trio.open_tcp_stream(HOST, tcp_port)
        async with bad:
            await bad.send_all(b"GET / HTTP/1.1\r\n\r\n")
            await until_closed(bad)
        sock = trio.socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
        with sock:
            await sock.sendto(b"\x00\x01", (HOST, port_of(info, Transport.UDP)))
        good = await trio.open_tcp_stream(HOST, tcp_port)
        async with good:
            await stream_handshake(good, Transport.TCP, tcp_port, seed=40)
        await udp_handshake(port_of(info, Transport.UDP), seed=50)
    assert info.engine.stats.ike_sas == 2


async def test_keylog_dir_gets_tls_and_ike_keys(
    nursery: trio.Nursery, certificate: tuple[trustme.CA, FilePath, FilePath], tmp_path: FilePath
) -> None:
    ca, cert, key = certificate
    keys = tmp_path / "keys"
    keys.mkdir()
    settings = settings_for(cert, key, keylog_dir=keys)
    with trio.fail_after(20):
        info, shutdown, done = await start_with_shutdown(nursery, settings)
        tls_port = port_of(info, Transport.TLS)
        raw = await trio.open_tcp_stream(HOST, tls_port)
        tls = trio.SSLStream(raw, client_context(ca), server_hostname=HOST)
        async with tls:
            sa = await stream_handshake(tls, Transport.TLS, tls_port, seed=60)
        shutdown.set()
        await done.wait()
    assert "TRAFFIC_SECRET" in (keys / "tls-keys.log").read_text()
    others = [p.read_text() for p in keys.iterdir() if p.name != "tls-keys.log"]
    assert any(sa.spi_i.hex() in text for text in others)


async def test_a26_a28_a36_sa_survives_reconnection_over_real_tcp(
    nursery: trio.Nursery, certificate: tuple[trustme.CA, FilePath, FilePath]
) -> None:
    """RFC 9329 §6.1: the SA outlives its connection (A26); the Originator reconnects from a new
    port (A28); the response and our own next request go on the new connection (A36)."""
    _, cert, key = certificate
    with trio.fail_after(20):
        info: ServerInfo = await nursery.start(functools.partial(serve, settings_for(cert, key)))
        port = port_of(info, Transport.TCP)
        initiator = new_initiator(70)
        first = await trio.open_tcp_stream(HOST, port)
        async with first:
            sa = await stream_handshake(first, Transport.TCP, port, 70, initiator)
        with trio.fail_after(5):
            while info.engine.stats.connections:  # the server saw the close and detached the sink
                await trio.sleep(0.01)
        assert info.engine.sa(sa.spi_r) is not None
        second = await trio.open_tcp_stream(HOST, port)
        async with second:
            path = Path(Transport.TCP, ip_address(HOST), 40001, ip_address(HOST), port, 2)
            initiator.request_liveness_check(sa.local_spi, trio.current_time())
            [request] = initiator.messages_to_send()
            await second.send_all(STREAM_PREFIX + frame_ike(request.data))
            buffer = bytearray()
            initiator.receive(await read_ike(second, buffer), path, trio.current_time())
            info.engine.request_liveness_check(sa.spi_r)  # ours goes on the new connection
            ours = await read_ike(second, buffer)
            assert ours[8:16] == sa.spi_r and not ours[19] & 0x20  # a request of this SA


@pytest.mark.parametrize("kind", [Transport.TCP, Transport.TLS, Transport.UDP])
async def test_our_liveness_check_is_answered_through_responder_client(
    nursery: trio.Nursery, certificate: tuple[trustme.CA, FilePath, FilePath], kind: Transport
) -> None:
    """The path for requests we start: the connection (or address) of the last valid message."""
    _, cert, key = certificate
    recorder = Recorder()
    with trio.fail_after(20):
        info: ServerInfo = await nursery.start(
            functools.partial(serve, settings_for(cert, key), observers=(recorder,))
        )
        client = await establish(
            initiator_settings(IKE, child_request()),
            Config(),
            kind,
            HOST,
            port_of(info, kind),
            tls_fingerprint=info.tls_fingerprint if kind is Transport.TLS else None,
        )
        async with client:
            assert client.established
            info.engine.request_liveness_check(client.spi_r)
            with trio.move_on_after(5):
                while not any(isinstance(e, ResponseReceived) for e, _ in recorder.seen):
                    await client.process(0.05)
    [(alive, path)] = [(e, p) for e, p in recorder.seen if isinstance(e, ResponseReceived)]
    assert alive.result == "alive" and path is not None and path.transport is kind


async def test_tls_without_certificate_reports_the_self_signed_fingerprint(nursery: trio.Nursery) -> None:
    settings = ServerSettings(config=responder_config(IKE), listeners=(Listener(Transport.TLS, HOST, 0),))
    with trio.fail_after(20):
        info: ServerInfo = await nursery.start(functools.partial(serve, settings))
        assert info.tls_fingerprint is not None and len(info.tls_fingerprint.split(":")) == 32
        port = port_of(info, Transport.TLS)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the fingerprint is checked below instead
        tls = trio.SSLStream(await trio.open_tcp_stream(HOST, port), context)
        async with tls:
            await tls.do_handshake()
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            assert info.tls_fingerprint == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
            await stream_handshake(tls, Transport.TLS, port, seed=80)
