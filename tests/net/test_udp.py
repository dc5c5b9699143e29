"""UDP listeners on real sockets (127.0.0.1 and ::1, port 0) with the core initiator as the peer.

Loopback keeps datagrams of one socket in order, so a datagram sent before a
handshake has been handled by the time the handshake's response arrives;
tests use that instead of sleeping.
"""

from __future__ import annotations

import errno
import logging
import socket as stdlib_socket
from ipaddress import ip_address

import attrs
import pytest
import trio
import trio.testing

from responder.core.config import Config
from responder.core.endpoint import Endpoint
from responder.core.events import Event, IkeSaEstablished
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.path import Path, Transport
from responder.server.engine import Engine
from responder.server.logs import RateLimiter
from responder.server.udp import UdpListener, UdpSink, UdpStats
from tests.fakes.pair import child_request, initiator_settings, responder_config, seeded

IKE = "aes256gcm16-prfsha256-x25519"
MARKER = bytes(4)
WILDCARD = "0.0.0.0"  # noqa: S104 - bound on purpose, to exercise IP_PKTINFO


def ipv6_loopback_available() -> bool:
    try:
        with stdlib_socket.socket(stdlib_socket.AF_INET6, stdlib_socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@attrs.define(eq=False)
class Recorder:
    seen: list[tuple[Event, Path | None]] = attrs.Factory(list)

    def observe(self, event: Event, path: Path | None) -> None:
        self.seen.append((event, path))


@attrs.define(eq=False)
class Server:
    engine: Engine
    udp: UdpListener
    recorder: Recorder

    @property
    def address(self) -> tuple[str, int]:
        address, port = self.udp.local
        return str(address), port


@attrs.define(eq=False)
class Client:
    """The core initiator behind a real UDP socket."""

    sock: trio.socket.SocketType
    server: tuple[str, int]
    marker: bool
    initiator: Endpoint = attrs.Factory(lambda: Endpoint(Config(), seeded(7), KeyExchangeFactory(seeded(8))))

    @classmethod
    async def open(cls, server: tuple[str, int], *, marker: bool) -> Client:
        family = stdlib_socket.AF_INET6 if ":" in server[0] else stdlib_socket.AF_INET
        sock = trio.socket.socket(family, stdlib_socket.SOCK_DGRAM)
        await sock.bind((server[0], 0))
        return cls(sock, server, marker)

    @property
    def path(self) -> Path:
        """The path as the initiator sees it."""
        local = self.sock.getsockname()
        return Path(Transport.UDP, ip_address(local[0]), local[1], ip_address(self.server[0]), self.server[1])

    async def send_raw(self, data: bytes) -> None:
        await self.sock.sendto(data, self.server)

    async def receive(self) -> tuple[bytes, tuple[str, int]]:
        data, sender = await self.sock.recvfrom(65535)
        if self.marker:
            assert data[:4] == MARKER, "every IKE message on a marker port starts with four zero octets"
            data = data[4:]
        return data, sender

    async def handshake(self) -> IkeSa:
        sa = self.initiator.initiate(initiator_settings(IKE, child_request()), self.path, trio.current_time())
        with trio.fail_after(5):
            while sa.state not in (IkeSaState.ESTABLISHED, IkeSaState.CLOSED):
                for out in self.initiator.messages_to_send():
                    await self.send_raw((MARKER if self.marker else b"") + out.data)
                data, _ = await self.receive()
                self.initiator.receive(data, self.path, trio.current_time())
        assert sa.state is IkeSaState.ESTABLISHED
        return sa


async def start_server(nursery: trio.Nursery, host: str, *, marker: bool) -> Server:
    """An engine and one UDP listener on ``host`` port 0, in pytest-trio's ``nursery``."""
    recorder = Recorder()
    engine = Engine(responder_config(IKE), seeded(1), KeyExchangeFactory(seeded(2)), (recorder,))
    await nursery.start(engine.run)
    udp = await UdpListener.open(host, 0, marker=marker)
    await nursery.start(udp.serve, engine)
    return Server(engine, udp, recorder)


@pytest.mark.parametrize("marker", [True, False], ids=["non-esp-marker", "plain-port-500-framing"])
async def test_full_handshake_over_udp(nursery: trio.Nursery, marker: bool) -> None:
    """RFC 7296 §1.2 over UDP; RFC 3948 §2.2: the non-ESP marker on ports other than 500 (row B3)."""
    server = await start_server(nursery, "127.0.0.1", marker=marker)
    client = await Client.open(server.address, marker=marker)
    sa = await client.handshake()
    [(established, path)] = [(e, p) for e, p in server.recorder.seen if isinstance(e, IkeSaEstablished)]
    assert established.spi_r == sa.spi_r
    assert path is not None and path.transport is Transport.UDP
    assert (str(path.remote_address), path.remote_port) == client.sock.getsockname()
    with trio.fail_after(5):
        while server.udp.stats.sent < 2:  # counted once sendto() returns, maybe after the client read it
            await trio.sleep(0.01)
    assert server.udp.stats.ike == 2 and server.udp.stats.sent == 2
    assert server.engine.stats.ike_sas == 1


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback (::1) on this machine")
async def test_full_handshake_over_udp_ipv6(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, "::1", marker=True)
    client = await Client.open(server.address, marker=True)
    await client.handshake()
    [path] = [p for e, p in server.recorder.seen if isinstance(e, IkeSaEstablished)]
    assert path is not None and path.local_address == ip_address("::1")


async def test_wildcard_socket_learns_the_local_address_and_answers_from_it(nursery: trio.Nursery) -> None:
    """RFC 7296 §2.11: the response comes from the address the request was sent to (IP_PKTINFO)."""
    server = await start_server(nursery, WILDCARD, marker=True)
    port = server.address[1]
    client = await Client.open(("127.0.0.1", port), marker=True)
    sa = await client.handshake()
    [path] = [p for e, p in server.recorder.seen if isinstance(e, IkeSaEstablished)]
    assert path is not None and path.local_address == ip_address("127.0.0.1")
    client.initiator.request_liveness_check(sa.local_spi, trio.current_time())
    [out] = client.initiator.messages_to_send()
    await client.send_raw(MARKER + out.data)
    with trio.fail_after(5):
        _, sender = await client.receive()
    assert sender == ("127.0.0.1", port)


async def test_nat_keepalive_is_dropped(nursery: trio.Nursery) -> None:
    """RFC 3948 §2.3: a single 0xFF octet is a NAT-keepalive, dropped without an answer."""
    server = await start_server(nursery, "127.0.0.1", marker=True)
    client = await Client.open(server.address, marker=True)
    await client.send_raw(b"\xff")
    await client.handshake()  # the first datagram the client gets is the IKE_SA_INIT response
    assert server.udp.stats.keepalives == 1
    assert server.engine.stats.messages_in == 2


async def test_garbage_is_logged_and_the_socket_keeps_serving(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "responder.server")
    server = await start_server(nursery, "127.0.0.1", marker=True)
    client = await Client.open(server.address, marker=True)
    for junk in (b"\x00", b"\x00\x00\x00", MARKER, b"\x01\x02"):
        await client.send_raw(junk)
    await client.send_raw(MARKER + b"\xee" * 60000)  # big IKE junk: the core drops it
    await client.send_raw(MARKER + bytes(range(40)))  # short IKE junk
    await client.handshake()
    assert server.udp.stats.garbage == 4
    assert server.engine.stats.messages_in == 4 and server.engine.stats.internal_errors == 0
    assert "neither IKE, ESP nor a NAT-keepalive" in caplog.text


async def test_esp_in_udp_is_counted(nursery: trio.Nursery) -> None:
    """RFC 3948 §2.1: a non-zero first word is ESP; the engine counts it and drops it."""
    server = await start_server(nursery, "127.0.0.1", marker=True)
    client = await Client.open(server.address, marker=True)
    await client.send_raw(b"\x12\x34\x56\x78" + (1).to_bytes(4, "big") + b"payload")
    await client.handshake()
    stats = server.engine.stats
    assert server.udp.stats.esp == 1
    assert (stats.esp_packets, stats.esp_unknown_spi) == (1, 1)
    assert list(stats.esp_per_connection.values()) == [1]


async def test_send_errors_are_logged_and_never_end_the_socket(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """A datagram the kernel refuses (Linux: EINVAL for port 0) is logged; the socket keeps serving."""
    caplog.set_level(logging.INFO, "responder.server.udp")
    server = await start_server(nursery, "127.0.0.1", marker=True)
    address, port = server.udp.local
    server.engine.initiate(initiator_settings(IKE), Path(Transport.UDP, address, port, address, 0))
    with trio.fail_after(5):
        while server.udp.stats.send_errors == 0:
            await trio.sleep(0.01)
    assert "send failed" in caplog.text and str(errno.EINVAL) in caplog.text
    client = await Client.open(server.address, marker=True)
    await client.handshake()


async def test_plain_port_never_reads_the_marker(nursery: trio.Nursery) -> None:
    """Port 500 (RFC 7296 §2): a datagram with four zero octets first is an IKE message with SPIi 0."""
    server = await start_server(nursery, "127.0.0.1", marker=False)
    client = await Client.open(server.address, marker=False)
    await client.send_raw(MARKER + b"\x01" * 40)
    await client.handshake()
    assert server.udp.stats.esp == 0 and server.engine.stats.messages_in == 3


async def test_open_chooses_the_framing_from_the_configured_port() -> None:
    plain = await UdpListener.open("127.0.0.1", 0, marker=None)
    try:
        assert plain.marker  # only port 500 is plain; port 0 is any other port
    finally:
        plain.socket.close()


async def test_the_udp_sink_frames_ike_and_esp_as_rfc_3948_says() -> None:
    """RFC 3948 §2.1, §2.2: on a marker port IKE gets four zero octets and ESP goes as it is; on
    port 500 (plain IKE) there is no ESP."""
    path = Path(Transport.UDP, ip_address("127.0.0.1"), 4500, ip_address("127.0.0.1"), 40000)
    esp = b"\xc0\x00\x00\x01" + bytes(16)
    for marker in (True, False):
        send, receive = trio.open_memory_channel[tuple[bytes, Path]](8)
        sink = UdpSink(send, UdpStats(), RateLimiter(), marker)
        assert sink.send_ike(b"ike", path)
        assert sink.send_esp(esp, path) is marker
        queued = [receive.receive_nowait()[0] for _ in range(2 if marker else 1)]
        assert queued == ([MARKER + b"ike", esp] if marker else [b"ike"])


@attrs.define(eq=False)
class SinkCatcher:
    """An engine that only keeps the sink a listener attaches."""

    sinks: list[UdpSink] = attrs.Factory(list)

    def attach(self, path: Path, sink: UdpSink) -> None:
        self.sinks.append(sink)

    def detach(self, path: Path) -> None:
        pass


async def test_a_datagram_leaves_in_the_senders_call_when_nothing_is_queued() -> None:
    """Issue 14: with nothing queued before it, a datagram is sent in the engine's call (no wakeup
    of the sender task); one that finds others queued goes behind them, so the order holds."""
    listener = await UdpListener.open("127.0.0.1", 0)
    _, port = listener.local
    peer = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    path = Path(Transport.UDP, ip_address("127.0.0.1"), port, ip_address("127.0.0.1"), peer.getsockname()[1])
    engine = SinkCatcher()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(listener.serve, engine)
            (sink,) = engine.sinks
            assert sink.send_ike(b"at once", path)
            assert listener.stats.sent == 1  # sent in the call, before this task yielded
            listener._sending = True  # as while the sender task holds a batch: queue, keep order
            assert sink.send_ike(b"queued", path)  # handed straight to the waiting sender task
            assert sink.send_ike(b"behind it", path)  # the sender has not caught up: behind it
            assert listener.stats.sent == 1
            await trio.testing.wait_all_tasks_blocked()
            assert listener.stats.sent == 3 and not listener._sending  # caught up
            assert sink.send_ike(b"at once again", path)
            assert listener.stats.sent == 4
            peer.settimeout(5.0)
            received = [peer.recv(100) for _ in range(4)]
            assert received == [MARKER + m for m in (b"at once", b"queued", b"behind it", b"at once again")]
            nursery.cancel_scope.cancel()
    finally:
        peer.close()
