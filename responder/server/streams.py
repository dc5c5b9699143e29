"""RFC 9329 TCP and TLS transports: accept, deframe, hand frames to the engine, write its answers.

Strategy (trio's ``serve_listeners``, without its let-it-crash handlers):
:func:`serve_stream_listener` runs its own accept loop; each accepted stream
is admitted by the shared :class:`~responder.server.connections.ConnectionTable`
(limits, eviction of stalled connections) and then served by one task in the
listener's nursery.  Whatever goes wrong on one connection (a framing error,
a TLS failure, a reset, even a bug) is caught in that task, logged with the
reason and ends that connection only; accept errors such as EMFILE are logged
and retried after a short sleep (style rule 11).

Per connection, in stream order:

* ``tls`` listeners wrap the stream in :class:`trio.SSLStream`; the handshake
  counts against ``prefix_timeout`` and the prefix then travels inside TLS
  (RFC 9329 §4, Appendix A, row A14);
* the octets go to a :class:`~responder.core.tcp_framing.StreamDeframer`: the
  whole "IKETCP" prefix must arrive within ``prefix_timeout`` (however it is
  split, rows A9, A11), and only then is the connection attached to the
  engine as a sink (row A13: nothing reaches an IKE SA over a connection
  without the prefix); the first IKE or ESP frame must follow within
  ``first_frame_timeout``;
* IKE frames go to ``engine.receive_ike``, ESP frames to
  ``engine.receive_esp_batch`` (rows A16, A17, A22), with this connection's
  :class:`~responder.core.path.Path`: the ESP frames of one read in a row are
  one batch (issue 12), so the engine runs once per batch and its answers
  leave in one write; empty messages and NAT-keepalives are dropped by the
  deframer (rows A19, A45);
* the engine may end the connection through its sink
  (:meth:`~responder.server.connections.Connection.close`): too much corrupt
  input (rows A32, A33) or no live IKE SA any more (row A25).  Reading stops
  at once, even between two frames of one read; what is queued is written;
* a :class:`~responder.core.tcp_framing.FramingError` (wrong prefix, Length 0
  or 1, Length above the maximum: rows A15, A18, A20, A21) closes the
  connection, never the IKE SA; a partly received frame is dropped with it
  (RFC 9329 §6.1, row A29);
* at most ``buffer_per_connection`` octets are ever held unparsed: each read
  asks for no more than the room left;
* one writer task writes what the engine queued through the connection's
  sink, so writes never interleave, joining whatever is queued into one
  ``send_all``; the responder never writes a prefix (RFC 9329 §6.1, row A10);
* back-pressure: a frame goes to the engine only when the send queue has
  room for its answer; meanwhile nothing is read, and TCP's flow control
  slows the peer down.  A queue that stays full for ``slow_reader_timeout``
  closes the connection (a peer that sends but never reads).

The SA lives in the engine, not here: a connection that closes is detached
and its IKE SAs wait for the Originator to reconnect (RFC 9329 §6.1, row A26).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import ssl
from collections.abc import Callable
from functools import partial
from ipaddress import IPv4Address, IPv6Address, ip_address

import trio

from responder.core.errors import LocalError
from responder.core.path import Transport
from responder.core.tcp_framing import MAX_LENGTH, FramingError, IkeFrame, StreamDeframer
from responder.server.connections import ROOM_PER_FRAME, Connection, ConnectionTable, Phase
from responder.server.contracts import EngineInput
from responder.server.settings import ServerSettings

__all__ = [
    "ACCEPT_RETRY_DELAY",
    "CLOSE_GRACE",
    "RECEIVE_SIZE",
    "WRITE_BATCH",
    "AddressFinder",
    "ConnectionTable",
    "serve_stream_listener",
    "stream_addresses",
]

log = logging.getLogger("responder.server.streams")

IPAddress = IPv4Address | IPv6Address
#: Local address and port, remote address and port of an accepted stream.
AddressFinder = Callable[[trio.abc.Stream], tuple[IPAddress, int, IPAddress, int]]

RECEIVE_SIZE = 65536  #: most octets asked of the stream at once (TLS gives at most 16 KiB anyway)
CLOSE_GRACE = 1.0  #: seconds to flush and close gracefully (TLS close_notify) before cutting
ACCEPT_RETRY_DELAY = 0.1  #: seconds to wait after a failed accept (EMFILE, ENOBUFS, ...)
BACKLOG_WAIT = 0.1  #: seconds a reader lets a program behind on the API backend catch up, at most
WRITE_BATCH = 65536  #: most octets of queued frames the writer joins into one send

#: Accept errors that mean "out of resources": worth a warning and a retry, not a crash.
_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

# Outcomes that are a peer's ordinary goodbye, or that the engine has logged already
# (closed_by_engine): logged at DEBUG, every other one at INFO (rate-limited).
_QUIET_OUTCOMES = frozenset({"peer_closed", "shutdown", "closed_by_engine"})


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return address


def stream_addresses(stream: trio.abc.Stream) -> tuple[IPAddress, int, IPAddress, int]:
    """Local address and port, remote address and port of a :class:`trio.SocketStream`.

    Looks through :class:`trio.SSLStream` wrappers.  Raises :class:`OSError`
    when the peer is already gone, :class:`LocalError` for a stream with no
    socket (tests pass ``addresses=`` to :func:`serve_stream_listener`).
    """
    inner: trio.abc.Stream = stream
    while isinstance(inner, trio.SSLStream):
        inner = inner.transport_stream
    if not isinstance(inner, trio.SocketStream):
        raise LocalError(f"{type(inner).__name__} has no socket: pass addresses= to serve_stream_listener")
    local = inner.socket.getsockname()
    remote = inner.socket.getpeername()
    return (
        _unmapped(ip_address(local[0])),
        int(local[1]),
        _unmapped(ip_address(remote[0])),
        int(remote[1]),
    )


async def serve_stream_listener(
    listener: trio.abc.Listener[trio.abc.Stream] | trio.SocketListener,
    kind: Transport,
    engine: EngineInput,
    table: ConnectionTable,
    settings: ServerSettings,
    ssl_context: ssl.SSLContext | None,
    *,
    addresses: AddressFinder = stream_addresses,
    max_frame_length: int = MAX_LENGTH,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept RFC 9329 streams on ``listener`` and serve each one until it closes.

    ``kind`` is :attr:`Transport.TCP` (``ssl_context`` ``None``) or
    :attr:`Transport.TLS` (``ssl_context`` from
    :func:`responder.server.tls.server_context`).  ``addresses`` finds the
    local and remote address of a stream (tests with memory streams supply
    their own); ``max_frame_length`` bounds the RFC 9329 Length field (rows
    A20, A21; at most 65535).  Reports started once accepting.

    Runs until :meth:`ConnectionTable.aclose_all` stops it (then it returns
    once its connections are closed) or the listener is closed; the listener
    is closed on the way out.  Cancelling this task cuts its connections.
    """
    if kind is Transport.UDP:
        raise LocalError("serve_stream_listener serves tcp and tls listeners, not udp")
    if (kind is Transport.TLS) != (ssl_context is not None):
        raise LocalError(
            f"a {kind.value} listener needs {'an' if kind is Transport.TLS else 'no'} SSL context"
        )
    try:
        async with trio.open_nursery() as nursery:
            with table.accepting():
                task_status.started()
                await _accept_loop(
                    listener, kind, engine, table, settings, ssl_context, addresses, max_frame_length, nursery
                )
            await trio.aclose_forcefully(listener)  # no new connections while the open ones finish
    finally:
        await trio.aclose_forcefully(listener)


async def _accept_loop(
    listener: trio.abc.Listener[trio.abc.Stream] | trio.SocketListener,
    kind: Transport,
    engine: EngineInput,
    table: ConnectionTable,
    settings: ServerSettings,
    ssl_context: ssl.SSLContext | None,
    addresses: AddressFinder,
    max_frame_length: int,
    nursery: trio.Nursery,
) -> None:
    while True:
        try:
            stream: trio.abc.Stream = await listener.accept()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            log.info("%s listener closed; no more connections accepted", kind.value)
            return
        except OSError as error:
            level = logging.WARNING if error.errno in _CAPACITY_ERRNOS else logging.ERROR
            table.limiter.log(
                level,
                ("accept", kind, error.errno),
                "%s accept failed (%s); retrying in %.1fs",
                kind.value,
                error,
                ACCEPT_RETRY_DELAY,
            )
            await trio.sleep(ACCEPT_RETRY_DELAY)
            continue
        try:
            local_address, local_port, remote_address, remote_port = addresses(stream)
        except OSError as error:  # the peer reset before we looked
            log.debug("%s connection gone before it was served: %s", kind.value, error)
            await trio.aclose_forcefully(stream)
            continue
        connection = table.admit(
            kind, local_address, local_port, remote_address, remote_port, trio.current_time()
        )
        if connection is None:
            await trio.aclose_forcefully(stream)
            continue
        nursery.start_soon(
            _serve_connection, connection, stream, engine, table, settings, ssl_context, max_frame_length
        )


async def _serve_connection(
    connection: Connection,
    stream: trio.abc.Stream,
    engine: EngineInput,
    table: ConnectionTable,
    settings: ServerSettings,
    ssl_context: ssl.SSLContext | None,
    max_frame_length: int,
) -> None:
    """One connection from admission to close; never raises (except Cancelled)."""
    try:
        if ssl_context is not None:
            stream = trio.SSLStream(stream, ssl_context, server_side=True)
        async with trio.open_nursery() as nursery:
            # The task reads in the nursery's scope, which Connection.stop_reading cancels; a writer
            # task runs only while frames are queued (Connection.take, issue 14), shielded from
            # that in Connection.cut_scope, so that what is queued still leaves.
            send_now = (
                partial(_send_now, stream.socket.fileno()) if isinstance(stream, trio.SocketStream) else None
            )
            connection.serve_in(nursery, partial(_write_loop, stream=stream), send_now)
            try:
                reason, outcome = await _read_loop(
                    connection, stream, engine, table, settings, max_frame_length
                )
                connection.finish(reason, outcome)
            finally:  # also when cancelled: the reading has ended either way
                connection.phase = Phase.CLOSING
                table.release(connection)  # its slot is free at once (issue 15 item 6)
                _detach(connection, engine)
                connection.stop_sending()  # a writer finishes what is queued, then returns
                connection.writing_ends_by(trio.current_time() + CLOSE_GRACE)
        if connection.graceful:
            with connection.cut_scope(trio.current_time() + CLOSE_GRACE):
                await stream.aclose()  # TLS: close_notify; a cancelled aclose still closes
    except Exception as error:  # style rule 11: one connection's failure never ends another
        connection.finish(f"internal error: {error!r}", "failed")
        log.exception("%s failed; closing it", connection.describe())
    finally:
        connection.stop_sending()  # its nursery is gone: nothing more is queued
        _detach(connection, engine)
        try:
            await trio.aclose_forcefully(stream)
        finally:
            table.remove(connection)
            _log_close(connection, table)


def _detach(connection: Connection, engine: EngineInput) -> None:
    if not connection.attached:
        return
    connection.attached = False
    try:
        engine.detach(connection.path)
    except Exception:
        log.exception("%s: engine.detach failed", connection.describe())


def _log_close(connection: Connection, table: ConnectionTable) -> None:
    outcome = connection.outcome or "shutdown"
    reason = connection.reason or "cancelled"
    table.stats[outcome] += 1
    lifetime = trio.current_time() - connection.opened_at
    if outcome in _QUIET_OUTCOMES:
        log.debug("%s closed after %.1fs: %s", connection.describe(), lifetime, reason)
        return
    table.limiter.log(
        logging.INFO,
        ("close", outcome, connection.remote_address),
        "%s closed after %.1fs: %s",
        connection.describe(),
        lifetime,
        reason,
    )


def _partial(deframer: StreamDeframer) -> str:
    if deframer.awaiting_prefix or not deframer.buffered:
        return ""
    # RFC 9329 §6.1 (row A29): a partly received message is discarded with the connection.
    return f"; {deframer.buffered} octets of a partial frame dropped"


async def _read_loop(
    connection: Connection,
    stream: trio.abc.Stream,
    engine: EngineInput,
    table: ConnectionTable,
    settings: ServerSettings,
    max_frame_length: int,
) -> tuple[str, str]:
    """Read, deframe and deliver until the stream ends; returns ``(reason, outcome)``."""
    deframer = StreamDeframer(max_length=max_frame_length, max_buffer=settings.buffer_per_connection)
    prefix_deadline = connection.opened_at + settings.prefix_timeout
    if isinstance(stream, trio.SSLStream):
        with trio.move_on_at(prefix_deadline):
            try:
                await stream.do_handshake()
            except trio.BrokenResourceError as error:
                return f"TLS handshake failed: {error.__cause__ or error}", "tls_failed"
            connection.phase = Phase.PREFIX
        if connection.phase is Phase.HANDSHAKE:
            return f"no TLS handshake within {settings.prefix_timeout:g}s", "prefix_timeout"
    while True:
        if connection.phase is Phase.PREFIX:
            deadline = prefix_deadline
        elif connection.phase is Phase.FIRST_FRAME:
            assert connection.prefix_at is not None
            deadline = connection.prefix_at + settings.first_frame_timeout
        else:
            deadline = math.inf
        room = settings.buffer_per_connection - deframer.buffered
        if room <= 0:  # cannot happen while frames fit the buffer; kept as a guard
            return f"more than {settings.buffer_per_connection} octets buffered", "buffer_exceeded"
        data = b""
        # An open connection waits with no deadline and so without a cancel scope of its own,
        # which an idle connection would hold the whole time (about 1 KiB, issue 14).
        with trio.move_on_at(deadline) if deadline != math.inf else contextlib.nullcontext():
            try:
                data = await _receive(stream, min(RECEIVE_SIZE, room))
            except trio.BrokenResourceError as error:
                return f"connection broken: {error.__cause__ or error}{_partial(deframer)}", "broken"
            if not data:
                return f"peer closed the connection{_partial(deframer)}", "peer_closed"
        if not data:
            if connection.phase is Phase.PREFIX:
                got = min(deframer.buffered, 6)
                return (
                    f"no complete 'IKETCP' prefix within {settings.prefix_timeout:g}s "
                    f"(got {got} of 6 octets)",
                    "prefix_timeout",
                )
            return (
                f"no IKE or ESP frame within {settings.first_frame_timeout:g}s after the prefix"
                f"{_partial(deframer)}",
                "first_frame_timeout",
            )
        try:
            deframer.feed(data)
            ended = await _deliver(connection, deframer, engine, table, settings)
        except FramingError as error:
            outcome = "buffer_exceeded" if "buffered" in error.reason else "framing_error"
            return f"framing error: {error.reason}", outcome
        if ended is not None:
            return ended


def _send_now(descriptor: int, data: bytes) -> int:
    """Octets of ``data`` a plain TCP socket takes now, without blocking (``send(2)`` without flags
    is ``write(2)``).  0 when it takes none; an error also gives 0: the writer task that sends the
    rest then meets it and closes the connection (``_write_loop``)."""
    try:
        return os.write(descriptor, data)
    except OSError:
        return 0


async def _receive(stream: trio.abc.Stream, max_bytes: int) -> bytes:
    """What ``stream.receive_some(max_bytes)`` returns, as ``bytes`` (``b""`` at the end of the stream).

    A plain TCP stream is read from its socket here, with ``SocketStream.receive_some``'s own
    steps (a cancellation point, a non-blocking read, a wait until readable): an idle connection
    then waits three coroutine frames shallower, about 0.8 KiB less per held connection
    (tracemalloc in the responder process, bench/scale_wire.py, issue 14).  A read that had to
    wait has passed through the scheduler there, so only one that did not yields afterwards:
    one scheduler pass per message, not two.  ``recv(2)`` without flags is ``read(2)``.
    Errors are :exc:`trio.BrokenResourceError`, as there.
    """
    if not isinstance(stream, trio.SocketStream):
        return bytes(await stream.receive_some(max_bytes))
    descriptor = stream.socket.fileno()
    await trio.lowlevel.checkpoint_if_cancelled()
    waited = False
    while True:
        try:
            data = os.read(descriptor, max_bytes)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(descriptor)
            waited = True
            continue
        except OSError as error:
            raise trio.BrokenResourceError(error) from error
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return data


async def _deliver(
    connection: Connection,
    deframer: StreamDeframer,
    engine: EngineInput,
    table: ConnectionTable,
    settings: ServerSettings,
) -> tuple[str, str] | None:
    """Hand every whole frame to the engine; attach once the prefix is complete (row A13).

    ESP frames in a row go to the engine as one batch (issue 12: one pass of the engine
    and one write of what it answers per batch, not per packet); an IKE frame first
    delivers the ESP before it, so order is kept.  A batch is at most half the send queue,
    and waits for room for an answer to each of its frames (back-pressure, issue 15 item
    7); ``(reason, outcome)`` if the room does not come within ``slow_reader_timeout``.
    """
    esp: list[bytes] = []
    batch_max = max(1, connection.queue_size // 2)
    while connection.reason is None:  # once closing (the engine may close it, rows A25, A32), stop
        frame = deframer.next_frame()
        if connection.phase is Phase.PREFIX and not deframer.awaiting_prefix:
            connection.phase = Phase.FIRST_FRAME
            connection.prefix_at = trio.current_time()
            engine.attach(connection.path, connection)
            connection.attached = True
        if frame is None:
            break
        if not isinstance(frame, IkeFrame):
            esp.append(frame.packet)
            if len(esp) < batch_max:
                continue
        ended = await _deliver_esp(connection, deframer, engine, table, settings, esp)
        if ended is not None or connection.reason is not None:
            return ended
        esp = []
        if isinstance(frame, IkeFrame):
            ended = await _wait_for_room(connection, deframer, settings, ROOM_PER_FRAME)
            if ended is not None or connection.reason is not None:  # closed while we waited
                return ended
            table.stats["ike_frames"] += 1
            engine.receive_ike(frame.message, connection.path)
    if esp and connection.reason is None:
        return await _deliver_esp(connection, deframer, engine, table, settings, esp)
    return None


async def _deliver_esp(
    connection: Connection,
    deframer: StreamDeframer,
    engine: EngineInput,
    table: ConnectionTable,
    settings: ServerSettings,
    packets: list[bytes],
) -> tuple[str, str] | None:
    if not packets:
        return None
    ended = await _wait_for_room(connection, deframer, settings, len(packets) + 1)
    if ended is not None or connection.reason is not None:
        return ended
    table.stats["esp_frames"] += len(packets)
    engine.receive_esp_batch(packets, connection.path)
    if engine.inner_backlog():  # the API backend's program is behind: let it read (back-pressure)
        deadline = trio.current_time() + BACKLOG_WAIT
        while engine.inner_backlog() and trio.current_time() < deadline:
            await trio.sleep(0)
    return None


async def _wait_for_room(
    connection: Connection, deframer: StreamDeframer, settings: ServerSettings, needed: int
) -> tuple[str, str] | None:
    # The usual case, room already there, awaits nothing: each read of the stream is the loop's
    # checkpoint, and one scheduler pass per batch here cost about 1.5 us per ESP packet (bench/esp_wire.py).
    has_room = connection.room >= min(needed, connection.queue_size)
    if not has_room and not await connection.wait_for_room(needed, settings.slow_reader_timeout):
        waited = f"{settings.slow_reader_timeout:g}s"
        return f"slow reader: no room in the send queue for {waited}{_partial(deframer)}", "slow_reader"
    if connection.phase is Phase.FIRST_FRAME:
        connection.phase = Phase.OPEN
    return None


async def _write_loop(connection: Connection, stream: trio.abc.Stream) -> None:
    """The connection's writer while frames are queued: they leave in the order the engine queued
    them, and the task ends once the queue is empty (the next frame starts another).

    Whatever is queued when the writer looks leaves in one ``send_all`` (up to
    ``WRITE_BATCH`` octets): one system call for a batch of ESP replies, not one each.
    """
    with connection.cut_scope():
        while (data := connection.take(WRITE_BATCH)) is not None:
            try:
                await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
                connection.abort(f"write failed: {error.__cause__ or error}", "broken")
                return
