"""A small Trio IKEv2 initiator over RFC 9329 TCP, TLS or UDP, built on the core's own initiator.

Strategy: the same sans-IO :class:`~responder.core.endpoint.Endpoint` that
answers in the server also initiates (:meth:`Endpoint.initiate`); this module
only moves its messages and feeds it the clock, like the server's engine does,
for one IKE SA.  A :class:`Client` owns one transport (a "wire"):

* **TCP** (RFC 9329): the Originator writes the "IKETCP" prefix once, before
  its first frame (§4, §6.1, rows A9, A12), frames each IKE message with the
  Length and the non-ESP marker (§3.1) and reads the responder's frames with
  the core's :class:`~responder.core.tcp_framing.StreamDeframer` (the
  responder sends no prefix, row A10, so the deframer is primed with one);
  ESP frames go to the core's data plane (:meth:`Client.ping`);
* **TLS** (RFC 9329 Appendix A): the same inside a :class:`trio.SSLStream`,
  the prefix after the handshake (row A14);
* **UDP**: one connected datagram socket, with the non-ESP marker (RFC 3948
  §2.2) unless the responder's port is 500 (``non_esp_marker`` overrides).

There are no background tasks: the client reads only while one of its
coroutines runs, waiting for a message or for the core's next timer, so UDP
requests are retransmitted on the core's RFC 7296 §2.1 schedule and stream
requests are not (RFC 9329 §6.2, row A39; the core gives up after its TCP
response timeout).  COOKIE and INVALID_KE_PAYLOAD answers are followed by the
core.  The responder's own requests (liveness checks, rekeys, deletes) are
answered whenever the client is reading, for instance in :meth:`Client.process`;
with lifetimes in its :class:`~responder.core.initiator.InitiatorSettings` the
client rekeys too.  After an IKE SA rekey (either end's) :attr:`Client.sa` is
the new IKE SA.

Used by the tests, by ``bench/load.py`` (many processes) and by people
trying a responder by hand::

    client = await establish(settings, Config(), Transport.TCP, "127.0.0.1", 4500)
    async with client:
        if client.established:
            await client.liveness_check()
            await client.delete()

Opening the transport may raise (:class:`OSError`, :class:`trio.TooSlowError`,
:class:`trio.BrokenResourceError` for a failed TLS handshake,
:class:`FingerprintMismatch`); what happens in IKE is an outcome: the returned
:class:`Client` says whether the SA is up and, if not, why (``reason``).
"""

from __future__ import annotations

import hashlib
import os
import ssl
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_address
from types import TracebackType
from typing import Protocol

import attrs
import trio

from responder.core.config import Config, TrafficSelectorPolicy
from responder.core.data_plane import IPV4_IN_ESP, IPV6_IN_ESP
from responder.core.echo import EchoDropped, IcmpMessage, echo_request, read_packet
from responder.core.endpoint import Endpoint
from responder.core.enums import ExchangeType
from responder.core.errors import LocalError
from responder.core.events import (
    AuthenticationFailed,
    ChildSaEstablished,
    Event,
    IkeSaClosed,
    IkeSaEstablished,
    IkeSaRekeyed,
    ResponseReceived,
)
from responder.core.exchanges.create_child_sa import RekeyChildSa
from responder.core.exchanges.rekey_ike import RekeyIkeSa
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.initiator import InitiatorSettings
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.path import Path, Transport
from responder.core.payloads import TrafficSelector
from responder.core.selectors import to_selector
from responder.core.tcp_framing import (
    NAT_KEEPALIVE,
    NON_ESP_MARKER,
    STREAM_PREFIX,
    FramingError,
    IkeFrame,
    StreamDeframer,
    frame_esp,
    frame_ike,
)

__all__ = [
    "Client",
    "ClientResult",
    "FingerprintMismatch",
    "establish",
    "establish_on_stream",
    "pinned_context",
]

IPAddress = IPv4Address | IPv6Address
RandomBytes = Callable[[int], bytes]

UDP_RECEIVE_SIZE = 65536


def _anything(version: int) -> TrafficSelector:
    return to_selector(TrafficSelectorPolicy.any(version))


STREAM_CONNECTION_ID = 1  #: the ``Path.connection`` of the client's one stream


class FingerprintMismatch(Exception):
    """The TLS server's certificate is not the one pinned with ``tls_fingerprint``."""


# ---------------------------------------------------------------------------
# Wires: how messages travel
# ---------------------------------------------------------------------------


class _Wire(Protocol):
    async def send(self, message: bytes) -> None: ...

    async def send_esp(self, packet: bytes) -> bool: ...

    async def receive(self) -> tuple[bytes, bool] | None:
        """The next IKE message, unframed; ``None`` once the responder closed the connection."""
        ...

    async def aclose(self) -> None: ...


@attrs.define(eq=False)
class _StreamWire:
    """RFC 9329 framing on a TCP or TLS stream, as the TCP Originator."""

    stream: trio.abc.Stream
    prefix_sent: bool = False
    esp_frames: int = 0
    broken: str | None = None
    _deframer: StreamDeframer = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._deframer = StreamDeframer()
        self._deframer.feed(STREAM_PREFIX)  # the responder never sends one (RFC 9329 §6.1, row A10)

    async def send(self, message: bytes) -> None:
        data = frame_ike(message)
        if not self.prefix_sent:
            data = STREAM_PREFIX + data  # RFC 9329 §4: once, first, by the Originator
            self.prefix_sent = True
        await self.stream.send_all(data)

    async def send_esp(self, packet: bytes) -> bool:
        """An ESP packet in a frame without the non-ESP marker (RFC 9329 §3.2)."""
        data = frame_esp(packet)
        if not self.prefix_sent:
            data = STREAM_PREFIX + data
            self.prefix_sent = True
        await self.stream.send_all(data)
        return True

    async def receive(self) -> tuple[bytes, bool] | None:
        """The next IKE message or ESP packet, with whether it is ESP; ``None`` at the end."""
        while True:
            try:
                frame = self._deframer.next_frame()
            except FramingError as error:
                self.broken = f"responder's stream cannot be framed: {error.reason}"
                return None
            if isinstance(frame, IkeFrame):
                return frame.message, False
            if frame is not None:
                self.esp_frames += 1
                return frame.packet, True
            try:
                data = await self.stream.receive_some()
            except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
                self.broken = f"connection broken: {error.__cause__ or error}"
                return None
            if not data:
                return None
            self._deframer.feed(bytes(data))

    async def aclose(self) -> None:
        with trio.move_on_after(1.0):
            await self.stream.aclose()  # TLS: close_notify; a cancelled aclose still closes


@attrs.define(eq=False)
class _UdpWire:
    """A connected UDP socket; the non-ESP marker unless talking to port 500."""

    socket: trio.socket.SocketType
    marker: bool
    esp_packets: int = 0
    broken: str | None = None

    async def send(self, message: bytes) -> None:
        try:
            await self.socket.send(NON_ESP_MARKER + message if self.marker else message)
        except OSError as error:  # e.g. ECONNREFUSED left by an ICMP error: the core retransmits
            self.broken = f"send failed: {error}"

    async def send_esp(self, packet: bytes) -> bool:
        """ESP in UDP (RFC 3948 §2.1): only on a port with the non-ESP marker; False on port 500."""
        if not self.marker:
            return False
        try:
            await self.socket.send(packet)
        except OSError as error:
            self.broken = f"send failed: {error}"
        return True

    async def receive(self) -> tuple[bytes, bool] | None:
        """The next IKE message or ESP packet, with whether it is ESP."""
        while True:
            try:
                data = await self.socket.recv(UDP_RECEIVE_SIZE)
            except OSError as error:  # ICMP port unreachable and the like: keep listening
                self.broken = f"receive failed: {error}"
                continue
            if not self.marker:
                return data, False
            if data[:4] == NON_ESP_MARKER:
                return data[4:], False
            if data != NAT_KEEPALIVE:
                self.esp_packets += 1
                return data, True

    async def aclose(self) -> None:
        self.socket.close()
        await trio.lowlevel.checkpoint()


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------


@attrs.define(eq=False)
class Client:
    """One IKE SA initiated over one transport, and the open transport itself.

    ``events`` holds every core event so far, in order; ``reason`` says why
    the last operation did not succeed (``None`` after a success).
    """

    endpoint: Endpoint
    sa: IkeSa
    path: Path
    _wire: _Wire
    events: list[Event] = attrs.Factory(list)
    reason: str | None = None
    closed: bool = False
    #: Inner packets received through the Child SAs (ESP, RFC 4303), oldest first.
    inner: list[bytes] = attrs.Factory(list)

    # ------------------------------------------------------------------ outcome

    @property
    def transport(self) -> Transport:
        return self.path.transport

    @property
    def established(self) -> bool:
        """True while the IKE SA is up."""
        return self.sa.state is IkeSaState.ESTABLISHED

    @property
    def spi_i(self) -> bytes:
        return self.sa.spi_i

    @property
    def spi_r(self) -> bytes:
        return self.sa.spi_r

    @property
    def ike_sa_established(self) -> IkeSaEstablished | None:
        return next((e for e in self.events if isinstance(e, IkeSaEstablished)), None)

    @property
    def child_sas(self) -> list[ChildSaEstablished]:
        return [e for e in self.events if isinstance(e, ChildSaEstablished)]

    # ------------------------------------------------------------------ operations

    async def liveness_check(self, timeout: float = 10.0) -> bool:
        """An empty INFORMATIONAL request (RFC 7296 §2.4); True once its response arrived."""
        self._require_established()
        mark = len(self.events)
        self.endpoint.request_liveness_check(self.sa.local_spi, trio.current_time())

        def answered() -> bool:
            return any(
                isinstance(e, ResponseReceived) and e.exchange is ExchangeType.INFORMATIONAL
                for e in self.events[mark:]
            )

        return await self._run(answered, timeout)

    async def delete(self, timeout: float = 10.0) -> bool:
        """Delete the IKE SA (RFC 7296 §1.4.1); True once the responder confirmed it.

        The transport stays open (RFC 9329 §6.1: the Originator then closes
        it, or reuses it); call :meth:`aclose`.
        """
        self._require_established()
        self.endpoint.request_delete(self.sa.local_spi, trio.current_time())
        mark = len(self.events)

        def deleted() -> bool:
            return any(isinstance(e, IkeSaClosed) and e.reason == "deleted by us" for e in self.events[mark:])

        return await self._run(deleted, timeout)

    async def rekey(self, child: bytes | None = None, timeout: float = 10.0) -> bool:
        """Rekey the IKE SA, or the Child SA whose inbound SPI is ``child`` (RFC 7296 §1.3.2, §1.3.3);
        True once our exchange is answered (whatever the answer: see :attr:`events`)."""
        self._require_established()
        mark = len(self.events)
        exchange = RekeyIkeSa() if child is None else RekeyChildSa.of(child)
        self.endpoint.start(self.sa.local_spi, exchange, trio.current_time(), wall=time.time())

        def answered() -> bool:
            return any(
                isinstance(e, ResponseReceived) and e.exchange is ExchangeType.CREATE_CHILD_SA
                for e in self.events[mark:]
            )

        return await self._run(answered, timeout)

    async def ping(
        self,
        destination: IPAddress,
        *,
        count: int = 1,
        source: IPAddress | None = None,
        data: bytes = b"ikev2-responder ping",
        timeout: float = 5.0,
    ) -> int:
        """Send ``count`` echo requests to ``destination`` through the first Child SA (ESP, tunnel
        mode, RFC 4303) and return how many echo replies came back within ``timeout`` seconds.

        ``source`` defaults to our own address of the transport when it is of the same IP version,
        else a private or unique local address.  A reply counts when it comes from ``destination``
        with the identifier, sequence number and data sent, whoever built it (the echo backend, or
        a host's own stack behind the TUN backend).
        """
        self._require_established()
        if not self.sa.children:
            raise LocalError("the IKE SA has no Child SA to ping through")
        child = next(iter(self.sa.children))
        source = source or self._inner_source(destination.version)
        identifier = int.from_bytes(self.sa.spi_i[:2], "big")
        expected: set[tuple[IPAddress, int, int, bytes]] = set()
        for sequence in range(1, count + 1):
            request = echo_request(source, destination, identifier=identifier, sequence=sequence, data=data)
            expected.add((destination, identifier, sequence, data))
            next_header = IPV4_IN_ESP if destination.version == 4 else IPV6_IN_ESP
            self.endpoint.send_inner(self.sa.local_spi, child, request, next_header, trio.current_time())
        mark = len(self.inner)

        def answered() -> int:
            return len(expected & {_echo_reply_key(packet) for packet in self.inner[mark:]})

        await self._run(lambda: answered() == count, timeout, expect_answer=False)
        got = answered()
        if got < count and self.reason is None:
            self.reason = f"{count - got} of {count} echo replies missing after {timeout:g}s"
        return got

    def _inner_source(self, version: int) -> IPAddress:
        if self.path.local_address.version == version:
            return self.path.local_address
        return ip_address("10.255.0.2" if version == 4 else "fd00::2")

    async def process(self, seconds: float) -> None:
        """Read for ``seconds``: answer the responder's requests, run the core's timers."""
        await self._run(lambda: False, seconds, expect_answer=False)

    async def aclose(self) -> None:
        """Close the transport (without deleting the SA: see :meth:`delete`)."""
        if not self.closed:
            self.closed = True
            await self._wire.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ the loop

    def _require_established(self) -> None:
        if not self.established:
            raise LocalError(f"the IKE SA is {self.sa.state.value}, not established")

    def _drain(self) -> None:
        while (event := self.endpoint.next_event()) is not None:
            self.events.append(event)
            if isinstance(event, IkeSaRekeyed) and event.local_spi == self.sa.local_spi:
                heir = self.endpoint.sa(event.heir)
                if heir is not None:
                    self.sa = heir  # RFC 7296 §1.3.2: the new IKE SA carries on

    async def _flush(self) -> None:
        for outgoing in self.endpoint.messages_to_send():
            if outgoing.esp:
                if not await self._wire.send_esp(outgoing.data):
                    self.reason = "ESP cannot go over UDP port 500 (RFC 3948: it needs the non-ESP marker)"
            else:
                await self._wire.send(outgoing.data)

    def _closed_reason(self) -> str:
        for event in reversed(self.events):
            if isinstance(event, AuthenticationFailed | IkeSaClosed):
                return event.reason
        return "IKE SA closed"

    async def _run(self, done: Callable[[], bool], timeout: float, *, expect_answer: bool = True) -> bool:
        """Move messages and timers until ``done()``, the SA closes, the wire ends or ``timeout``."""
        self.reason = None
        deadline = trio.current_time() + timeout
        while True:
            self._drain()
            await self._flush()
            if done():
                return True
            if self.sa.state is IkeSaState.CLOSED:
                self.reason = self._closed_reason()
                return False
            timer = self.endpoint.get_timer()
            wake = deadline if timer is None else min(deadline, timer)
            message: tuple[bytes, bool] | None = None
            received = False
            with trio.move_on_at(wake):
                message = await self._wire.receive()
                received = True
            now = trio.current_time()
            if received:
                if message is None:
                    broken = getattr(self._wire, "broken", None)
                    self.reason = broken or "the responder closed the connection"
                    return False
                data, esp = message
                if esp:
                    self.endpoint.receive_esp(data, self.path, now)
                    self.inner += [p.payload for p in self.endpoint.data_plane.take_inner()]
                else:
                    self.endpoint.receive(data, self.path, now, wall=time.time())
            elif timer is not None and now >= timer:
                self.endpoint.handle_timer(now, wall=time.time())
            elif now >= deadline:
                self._drain()
                if expect_answer:
                    self.reason = f"no answer within {timeout:g}s"
                return False


#: The name the issue gave :func:`establish`'s result.
ClientResult = Client


# ---------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------


def _echo_reply_key(packet: bytes) -> tuple[IPAddress, int, int, bytes] | None:
    """(source, identifier, sequence number, data) of an ICMP or ICMPv6 echo reply (RFC 792,
    RFC 4443 §4.2), whoever built it (the echo backend, a host's stack); ``None`` for anything else."""
    read = read_packet(packet)
    if isinstance(read, EchoDropped) or not isinstance(read.transport, IcmpMessage):
        return None
    message = read.transport
    if (message.type, message.code) != ((0 if read.version == 4 else 129), 0) or len(message.body) < 4:
        return None
    body = message.body
    return read.source, int.from_bytes(body[:2], "big"), int.from_bytes(body[2:4], "big"), body[4:]


def pinned_context() -> ssl.SSLContext:
    """A TLS client context that checks nothing itself: pair it with ``tls_fingerprint``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _socket_addresses(sock: trio.socket.SocketType) -> tuple[IPAddress, int, IPAddress, int]:
    local, remote = sock.getsockname(), sock.getpeername()
    return ip_address(local[0]), int(local[1]), ip_address(remote[0]), int(remote[1])


async def _start(
    wire: _Wire,
    path: Path,
    settings: InitiatorSettings,
    config: Config,
    random_bytes: RandomBytes,
    ke_factory: KeyExchangeFactory | None,
    timeout: float,
) -> Client:
    endpoint = Endpoint(config, random_bytes, ke_factory or KeyExchangeFactory(random_bytes))
    sa = endpoint.initiate(settings, path, trio.current_time(), wall=time.time())
    client = Client(endpoint, sa, path, wire)
    if not await client._run(lambda: client.established, timeout):
        client.reason = client.reason or "not established"
    return client


async def establish(
    settings: InitiatorSettings,
    config: Config,
    transport: Transport,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    tls_fingerprint: str | None = None,
    non_esp_marker: bool | None = None,
    random_bytes: RandomBytes = os.urandom,
    ke_factory: KeyExchangeFactory | None = None,
    timeout: float = 10.0,
) -> Client:
    """Open ``transport`` to ``host``:``port`` and run IKE_SA_INIT and IKE_AUTH within ``timeout`` seconds.

    ``settings`` says what to propose and ask for; ``config`` is the local
    endpoint's configuration (``Config()`` will do; it matters only for
    requests the responder sends us).  TLS: ``ssl_context`` defaults to the
    system's verifying context with ``server_hostname`` (default ``host``);
    ``tls_fingerprint`` (``AB:CD:...`` SHA-256, as the server prints it) pins
    the certificate instead, with :func:`pinned_context` by default.  UDP:
    the non-ESP marker is used unless ``port`` is 500, or as
    ``non_esp_marker`` says.  ``random_bytes`` and ``ke_factory`` may be
    seeded for reproducible tests.

    Returns a :class:`Client` whether or not the SA came up (see
    ``established`` and ``reason``); the caller closes it.  Raises when the
    transport cannot be opened (see the module docstring).
    """
    deadline = trio.current_time() + timeout
    wire: _Wire
    if transport is Transport.UDP:
        with trio.fail_at(deadline):
            [(family, kind, protocol, _, address), *_] = await trio.socket.getaddrinfo(
                host, port, type=trio.socket.SOCK_DGRAM
            )
        sock = trio.socket.socket(family, kind, protocol)
        try:
            await sock.connect(address)
            addresses = _socket_addresses(sock)
        except BaseException:
            sock.close()
            raise
        wire = _UdpWire(sock, port != 500 if non_esp_marker is None else non_esp_marker)
        path = Path(transport, *addresses, None)
    else:
        with trio.fail_at(deadline):
            tcp = await trio.open_tcp_stream(host, port)
        addresses = _socket_addresses(tcp.socket)
        stream: trio.abc.Stream = tcp
        if transport is Transport.TLS:
            if ssl_context is None:
                ssl_context = pinned_context() if tls_fingerprint else ssl.create_default_context()
            tls = trio.SSLStream(tcp, ssl_context, server_hostname=server_hostname or host)
            try:
                with trio.fail_at(deadline):
                    await tls.do_handshake()
                if tls_fingerprint is not None:
                    _check_fingerprint(tls, tls_fingerprint)
            except BaseException:
                await trio.aclose_forcefully(tls)
                raise
            stream = tls
        wire = _StreamWire(stream)
        path = Path(transport, *addresses, STREAM_CONNECTION_ID)
    return await _start(
        wire, path, settings, config, random_bytes, ke_factory, max(0.0, deadline - trio.current_time())
    )


def _check_fingerprint(stream: trio.SSLStream[trio.SocketStream], expected: str) -> None:
    der = stream.getpeercert(binary_form=True)
    got = ":".join(f"{octet:02X}" for octet in hashlib.sha256(der or b"").digest())
    if got != expected.upper():
        raise FingerprintMismatch(f"server certificate SHA-256 {got}, expected {expected.upper()}")


async def establish_on_stream(
    stream: trio.abc.Stream,
    settings: InitiatorSettings,
    config: Config,
    *,
    path: Path,
    random_bytes: RandomBytes = os.urandom,
    ke_factory: KeyExchangeFactory | None = None,
    timeout: float = 10.0,
) -> Client:
    """:func:`establish` on a stream the caller opened (TLS already wrapped), e.g. a memory stream.

    ``path`` is the stream as the client sees it (local = the client); its
    ``transport`` must be TCP or TLS.  The client writes the prefix first.
    """
    if not path.transport.is_stream:
        raise ValueError("establish_on_stream needs a TCP or TLS path")
    return await _start(_StreamWire(stream), path, settings, config, random_bytes, ke_factory, timeout)
