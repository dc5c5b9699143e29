"""Open TCP and TLS connections: ids, limits, eviction by what a connection has earned, shutdown.

Strategy: one :class:`ConnectionTable` per server, shared by every ``tcp`` and
``tls`` listener, knows each open :class:`Connection` in the order they were
accepted.  The accept loop of :mod:`responder.server.streams` asks
:meth:`ConnectionTable.admit` before it starts a task for a new stream, so
admission is synchronous and needs no lock.  Two limits apply
(``connections_max`` in all, ``connections_per_source`` per remote address);
when one is reached, a connection of the source holding most connections
(for the per-source limit, the newcomer's own; an IPv6 source counts by its
``half_open_ipv6_prefix``) is evicted: the one that has *earned* least
(:class:`~responder.server.contracts.Earned`, from the engine), the oldest of
those first:

* a connection that carries no live IKE SA has earned nothing, whatever its
  phase: in its TLS handshake, waiting for the "IKETCP" prefix or its first
  frame, or open but carrying only refused IKE_SA_INITs, unknown SPIs or ESP
  of no SA (RFC 9329 §6.1 lets the responder close those, row A25);
* one that carries only half-open IKE SAs has earned more;
* one that carries an authenticated IKE SA is never evicted.

If every connection has earned that much, the new one is refused (and for
:data:`RECHECK_FULL_TABLE` seconds further ones are refused without looking
again).  So a peer cannot keep a well-behaved one out by opening connections
and sending nothing, or one frame apiece, or IKE_SA_INITs it never
completes: it only ever replaces its own, and a peer with one connection in
its handshake is the last to give way.  A connection that is
closing (reading has ended; it writes what is queued and closes within a
second) no longer counts against any limit (:meth:`ConnectionTable.release`),
so a peer that closes connections and reconnects at once finds its slots.

A :class:`Connection` is also the :class:`~responder.server.contracts.Sink` the
engine sends through: :meth:`Connection.send_ike` frames the message
(RFC 9329 §3.1) and queues it, without blocking, in a bounded channel that one
writer task empties.  The reader hands the engine a request only when the
queue has room for its answer (:meth:`Connection.wait_for_room`), so a peer
that sends many requests at once is slowed down by TCP's own flow control
rather than closed; a queue that stays full for ``slow_reader_timeout``, or
that overflows with messages of our own, means the peer does not read, and
the connection is closed (the engine keeps the SA, RFC 9329 §6.1, row A26).

Every limit hit is logged through a per-key :class:`LimitLog`, because a
peer can trigger them at will.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Iterator
from ipaddress import IPv4Address, IPv6Address, IPv6Network

import attrs
import trio

from responder.core.errors import LocalError
from responder.core.path import Path, Transport
from responder.core.tcp_framing import frame_esp, frame_ike
from responder.server.contracts import Earned
from responder.server.logs import RateLimiter
from responder.server.settings import ServerSettings

__all__ = [
    "SEND_QUEUE_MESSAGES",
    "Connection",
    "ConnectionTable",
    "LimitLog",
    "Phase",
]

log = logging.getLogger("responder.server.streams")

IPAddress = IPv4Address | IPv6Address
#: What ``connections_per_source`` counts by: an IPv4 address or an IPv6 prefix.
Source = IPv4Address | IPv6Network

SEND_QUEUE_MESSAGES = 32  #: messages a connection may have waiting to be written
#: Room the reader wants in the send queue before it hands the engine another frame: the
#: answer, and what else the core may send in the same turn (a request of ours sent again).
ROOM_PER_FRAME = 2
LIMIT_LOG_INTERVAL = 10.0  #: seconds between two log lines about the same limit and source
#: How many of the sources holding most connections are compared for the least earned connection.
SOURCES_COMPARED = 16
#: Seconds for which a table found full of authenticated connections refuses without looking again.
RECHECK_FULL_TABLE = 0.1


class Phase(enum.Enum):
    """Where a connection is in its life; the first three are *stalled* (they have earned nothing)."""

    HANDSHAKE = "tls-handshake"  #: TLS handshake running (within ``prefix_timeout``)
    PREFIX = "prefix"  #: waiting for "IKETCP" (RFC 9329 §6.1, within ``prefix_timeout``)
    FIRST_FRAME = "first-frame"  #: prefix seen, no IKE or ESP frame yet (``first_frame_timeout``)
    OPEN = "open"  #: has carried a frame; evicted by what its IKE SAs earned
    CLOSING = "closing"  #: reading is over; flushing and closing; counts against no limit

    @property
    def stalled(self) -> bool:
        return self in (Phase.HANDSHAKE, Phase.PREFIX, Phase.FIRST_FRAME)


class LimitLog:
    """Limit hits and closes, logged through :class:`~responder.server.logs.RateLimiter` on trio's clock.

    At most one line per key per ``interval`` seconds; the next one says how
    many were held back.  Memory is bounded by the limiter's ``max_keys``.
    """

    def __init__(self, interval: float = LIMIT_LOG_INTERVAL, total: int | None = None) -> None:
        self._limiter = RateLimiter(interval, total=total)

    def log(self, level: int, key: Hashable, message: str, *args: object) -> bool:
        """Log ``message % args`` on this module's logger unless ``key`` is being held back."""
        return self._limiter.log(log, level, key, trio.current_time(), message, *args)


def _address(address: IPAddress, port: int) -> str:
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


@attrs.define(eq=False)
class Connection:
    """One accepted TCP or TLS stream, and the sink the engine sends through.

    ``reason`` (why it closed, for the log) and ``outcome`` (a counter name in
    :attr:`ConnectionTable.stats`) are set once, by whatever ends it first.
    """

    id: int
    kind: Transport
    local_address: IPAddress
    local_port: int
    remote_address: IPAddress
    remote_port: int
    opened_at: float
    queue_size: int = SEND_QUEUE_MESSAGES
    phase: Phase = Phase.PREFIX
    prefix_at: float | None = None
    attached: bool = False
    counted: bool = True  #: counts against the limits (until it closes: :meth:`ConnectionTable.release`)
    #: What ``connections_per_source`` counts it under (set by :meth:`ConnectionTable.admit`).
    source: IPv4Address | IPv6Network | None = None
    graceful: bool = True  #: close with TLS close_notify / after flushing; False: cut at once
    reason: str | None = None
    outcome: str | None = None
    #: Rate-limits the lines about what cannot be framed (the table's own, when it made this one).
    limiter: LimitLog = attrs.field(factory=LimitLog)
    #: When everything the connection does is cut: a shutdown's deadline, ``-inf`` once aborted.
    cut_at: float = attrs.field(init=False, default=math.inf)
    #: Cancel scopes, as few as an idle connection can do with (each costs about 0.6 KiB: issue
    #: 14).  ``_reading`` is the scope of the connection's nursery, in which its task reads:
    #: cancelling it stops the reading.  A writer runs shielded from that in a scope of its own
    #: (``_cut``), so what is queued is still written; after the nursery, ``_cut`` is the scope
    #: of the graceful close.  :meth:`abort` cancels both.
    _reading: trio.CancelScope | None = attrs.field(init=False, default=None)
    _cut: trio.CancelScope | None = attrs.field(init=False, default=None)
    _reading_stopped: bool = attrs.field(init=False, default=False)
    #: Where a writer task starts, and the stream it writes (set by :meth:`serve_in`).
    _nursery: trio.Nursery | None = attrs.field(init=False, default=None)
    _write: Callable[[Connection], Awaitable[None]] | None = attrs.field(init=False, default=None)
    #: Writes what the stream takes at once without blocking, and says how many octets it took
    #: (a plain TCP socket's ``send``; ``None`` for TLS): see :meth:`send_ike`.
    _send_now: Callable[[bytes], int] | None = attrs.field(init=False, default=None)
    #: Frames waiting to be written, oldest first.  A list and a flag rather than a memory
    #: channel and a writer task per connection: a writer runs only while something is queued,
    #: which saves an idle task, a channel's state and its deques (about 4 KiB of RSS per held
    #: connection with bench/scale_wire.py, issue 14).
    _frames: list[bytes] = attrs.field(init=False, factory=list)
    _writing: bool = attrs.field(init=False, default=False)  #: a writer task is running
    _sending_closed: bool = attrs.field(init=False, default=False)
    _path: Path = attrs.field(init=False)
    _room: trio.Event | None = attrs.field(init=False, default=None)  #: set when the writer takes a frame

    def __attrs_post_init__(self) -> None:
        self._path = Path(
            self.kind, self.local_address, self.local_port, self.remote_address, self.remote_port, self.id
        )

    @property
    def path(self) -> Path:
        """The :class:`Path` every frame of this connection is delivered with."""
        return self._path

    @property
    def stalled(self) -> bool:
        return self.phase.stalled

    def describe(self) -> str:
        """``tls conn 7 192.0.2.1:40001``."""
        return f"{self.kind.value} conn {self.id} {_address(self.remote_address, self.remote_port)}"

    # ------------------------------------------------------------------ the Sink

    def send_ike(self, message: bytes, path: Path) -> bool:
        """Frame ``message`` (RFC 9329 §3.1) and queue it; never blocks, never raises.

        ``False`` when the connection is closing, when ``path`` is not this
        connection's, when the message is too long for a frame, or when the
        queue is full: then the peer is not reading and the connection closes.
        """
        if path.connection != self.id:
            log.error("%s: engine sent a message for conn %s here; dropped", self.describe(), path.connection)
            return False
        try:
            frame = frame_ike(message)
        except LocalError as error:
            log.error("%s: %s; dropped", self.describe(), error)
            return False
        return self._queue(frame, at_once=True)

    def _queue(self, frame: bytes, *, at_once: bool = False) -> bool:
        if self._sending_closed:
            return False
        if at_once and self._send_now is not None and not self._frames and not self._writing:
            # An IKE message on a plain TCP connection with nothing queued leaves at once, in the
            # engine's call: no writer task to start for it (a task per answer cost about 4% of
            # the CPU per SA over TCP, 1720 -> 1653 us in bench/load.py, issue 14).  What the socket
            # does not take now is queued for a writer as usual, so the order is kept.  ESP is
            # always queued: a writer joins a batch of ESP frames into one send.
            taken = self._send_now(frame)
            if taken == len(frame):
                return True
            frame = frame[taken:]
        if len(self._frames) >= self.queue_size:
            self.abort(f"slow reader: {self.queue_size} messages waiting to be written", "slow_reader")
            return False
        self._frames.append(frame)
        if not self._writing and self._nursery is not None and self._write is not None:
            self._writing = True
            self._nursery.start_soon(self._write, self)
        return True

    def send_esp(self, packet: bytes, path: Path, tos: int = 0, df: bool | None = None) -> bool:
        """Frame an ESP packet (RFC 9329 §3.2: Length, no marker) and queue it, like :meth:`send_ike`.

        ``tos`` and ``df`` are ignored: a TCP connection has one DSCP and its own DF handling,
        never a marking per packet (RFC 9329 §6.8, §9.3, rows A47, A60)."""
        if path.connection != self.id:
            log.error("%s: ESP packet for conn %s sent here; dropped", self.describe(), path.connection)
            return False
        try:
            frame = frame_esp(packet)
        except LocalError as error:
            # A [tun] mtu above what a frame carries makes this per packet: one line per interval.
            self.limiter.log(logging.ERROR, ("unframed", self.id), "%s: %s; dropped", self.describe(), error)
            return False
        return self._queue(frame)

    def take(self, octets: int) -> bytes | None:
        """For the writer (there is one at a time): the oldest queued frames joined, up to ``octets``
        (at least one frame); ``None`` when nothing is queued, and the writer ends then.

        A reader waiting for room may go on.
        """
        frames = self._frames
        if not frames:
            self._writing = False  # the next frame queued starts a writer again
            return None
        count, size = 1, len(frames[0])
        while count < len(frames) and size < octets:
            size += len(frames[count])
            count += 1
        taken = frames[0] if count == 1 else b"".join(frames[:count])
        del frames[:count]
        if self._room is not None:
            self._room.set()
        return taken

    @property
    def room(self) -> int:
        """Messages that can still be queued before the queue is full."""
        return self.queue_size - len(self._frames)

    async def wait_for_room(self, needed: int, timeout: float) -> bool:
        """Wait until ``needed`` messages fit in the send queue; ``False`` if they do not within ``timeout``.

        Back-pressure (issue 15 item 7): while the reader waits here it reads
        nothing, so TCP flow control slows the peer down.
        """
        needed = min(needed, self.queue_size)
        if self.room >= needed:  # the usual case: no cancel scope to build (measured in bench/esp_wire.py)
            await trio.lowlevel.checkpoint()
            return True
        with trio.move_on_after(timeout):
            while self.room < needed:
                self._room = trio.Event()
                await self._room.wait()
            return True
        return False

    def stop_sending(self) -> None:
        """No more messages are queued; a writer finishes what is already queued."""
        self._sending_closed = True

    def finish(self, reason: str, outcome: str) -> None:
        """Record why the connection ends (only the first reason counts)."""
        if self.reason is None:
            self.reason, self.outcome = reason, outcome

    # ------------------------------------------------------------------ the task's scopes

    def serve_in(
        self,
        nursery: trio.Nursery,
        write: Callable[[Connection], Awaitable[None]],
        send_now: Callable[[bytes], int] | None = None,
    ) -> None:
        """The task serving the stream reads in ``nursery`` and starts ``write(self)`` there when
        frames are queued (a writer runs only then: :meth:`take`).  ``send_now(data)``, if given,
        writes what the stream takes without blocking and returns how many octets it took."""
        self._nursery, self._write, self._reading = nursery, write, nursery.cancel_scope
        self._send_now = send_now
        if self._reading_stopped:
            nursery.cancel_scope.cancel()

    @contextlib.contextmanager
    def cut_scope(self, deadline: float = math.inf) -> Iterator[trio.CancelScope]:
        """A scope for writing or closing: shielded from the reading's end, cut by :meth:`abort`,
        and ending by ``deadline`` or :attr:`cut_at`, whichever is sooner.  One at a time."""
        with trio.CancelScope(shield=True, deadline=min(deadline, self.cut_at)) as scope:
            self._cut = scope
            try:
                yield scope
            finally:
                self._cut = None

    def stop_reading(self) -> None:
        """Reading stops (the reader gets :exc:`trio.Cancelled`); a writer goes on."""
        self._reading_stopped = True
        if self._reading is not None:
            self._reading.cancel()

    def writing_ends_by(self, deadline: float) -> None:
        """What is queued must be written by ``deadline`` (the close grace), or it is cut."""
        self.cut_at = min(self.cut_at, deadline)
        if self._cut is not None:
            self._cut.deadline = min(self._cut.deadline, deadline)

    # ------------------------------------------------------------------ ending

    def abort(self, reason: str, outcome: str) -> None:
        """End the connection now, without flushing or a TLS close_notify."""
        self.finish(reason, outcome)
        self.graceful = False
        self._sending_closed = True
        self.cut_at = -math.inf
        self.stop_reading()
        if self._cut is not None:
            self._cut.cancel()

    def close(self, reason: str) -> None:
        """The engine ends this connection (the :class:`~responder.server.contracts.Sink` method).

        Reading stops at once; what is queued is still written, then the
        stream closes gracefully (TLS close_notify) within the transport's
        close grace.  Used for corruption (RFC 9329 §6.1, rows A32, A33) and for
        a connection that carries no live IKE SA any more (row A25); the IKE
        SAs themselves are not touched.  Idempotent; never raises.
        """
        if self.reason is not None or self.phase is Phase.CLOSING:
            return
        self.finish(reason, "closed_by_engine")
        self.stop_reading()

    def shutdown(self, deadline: float) -> None:
        """Server shutdown: stop reading, write what is queued, close gracefully, cut at ``deadline``."""
        if self.stalled:
            self.abort("server shutting down", "shutdown")
            return
        self.finish("server shutting down", "shutdown")
        self.writing_ends_by(deadline)
        self.stop_reading()


class ConnectionTable:
    """Every open TCP/TLS connection of one server; admission, limits, eviction and shutdown.

    ``stats`` counts ``accepted``, ``refused_total`` and ``refused_per_source``
    at admission, one outcome per closed connection (``evicted``,
    ``peer_closed``, ``framing_error``, ``prefix_timeout``,
    ``first_frame_timeout``, ``tls_failed``, ``broken``, ``slow_reader``,
    ``buffer_exceeded``, ``closed_by_engine``, ``shutdown``, ``failed``) and the frames delivered
    (``ike_frames``, ``esp_frames``).
    """

    def __init__(
        self,
        settings: ServerSettings,
        *,
        send_queue: int = SEND_QUEUE_MESSAGES,
        earned: Callable[[int], Earned] | None = None,
    ) -> None:
        """``earned`` tells what an open connection (by id) has earned; without it every open
        connection counts as :attr:`Earned.AUTHENTICATED` and only stalled ones are evicted."""
        self.settings = settings
        self.send_queue = send_queue
        self.earned = earned
        self.stats: Counter[str] = Counter()
        self.limiter = LimitLog(total=settings.log_lines_max)
        self._connections: dict[int, Connection] = {}  # insertion order = oldest first
        self._sources: dict[Source, dict[int, Connection]] = {}  # counted connections, oldest first
        self._holders: dict[int, dict[Source, None]] = {}  # sources by how many they hold
        self._counted = 0  # connections that count against connections_max
        self._all_earned_until = -math.inf  # until then, refuse at connections_max without a scan
        self._next_id = 1
        self._closing = False
        self._listener_scopes: set[trio.CancelScope] = set()
        self._empty: trio.Event | None = None

    def __len__(self) -> int:
        return len(self._connections)

    @property
    def counted(self) -> int:
        """Connections that count against ``connections_max`` (open ones; closing ones do not)."""
        return self._counted

    def connections(self) -> list[Connection]:
        """Open connections, oldest first."""
        return list(self._connections.values())

    @property
    def closing(self) -> bool:
        """True once :meth:`aclose_all` has started: nothing more is admitted."""
        return self._closing

    # ------------------------------------------------------------------ admission

    def admit(
        self,
        kind: Transport,
        local_address: IPAddress,
        local_port: int,
        remote_address: IPAddress,
        remote_port: int,
        now: float,
    ) -> Connection | None:
        """A new :class:`Connection` for an accepted stream, or ``None``: close it at once.

        Makes room by evicting, from the source holding most connections (of
        this source for the per-source limit), the one that has earned least,
        oldest first.
        """
        peer = _address(remote_address, remote_port)
        if self._closing:
            self.stats["refused_shutdown"] += 1
            return None
        source = self.source_of(remote_address)
        per_source = self.settings.connections_per_source
        while len(self._sources.get(source, ())) >= per_source:
            victim = self._least_earned_of(source)
            if victim is None:
                self._refuse("per_source", source, peer, per_source)
                return None
            self._evict(victim, f"connections_per_source ({per_source}) reached by {source}")
        total = self.settings.connections_max
        while self._counted >= total:
            # Every connection carried an authenticated IKE SA a moment ago: refuse without
            # looking at them all again, so that a flood of connects costs little each.
            victim = self._least_earned() if now >= self._all_earned_until else None
            if victim is None:
                if now >= self._all_earned_until:
                    self._all_earned_until = now + RECHECK_FULL_TABLE
                self._refuse("total", None, peer, total)
                return None
            self._evict(victim, f"connections_max ({total}) reached")
        connection = Connection(
            self._next_id,
            kind,
            local_address,
            local_port,
            remote_address,
            remote_port,
            now,
            queue_size=self.send_queue,
            phase=Phase.HANDSHAKE if kind is Transport.TLS else Phase.PREFIX,
            source=source,
            limiter=self.limiter,
        )
        self._next_id += 1
        self._connections[connection.id] = connection
        self._count(connection, +1)
        self.stats["accepted"] += 1
        return connection

    def source_of(self, address: IPAddress) -> Source:
        """What ``connections_per_source`` counts by: an IPv4 address, or an IPv6 address's prefix
        (``limits.half_open_ipv6_prefix``: a host can connect from a whole /64)."""
        if isinstance(address, IPv6Address):
            return IPv6Network((address, self.settings.config.limits.half_open_ipv6_prefix), strict=False)
        return address

    def earned_by(self, connection: Connection) -> Earned:
        """What ``connection`` has earned: nothing while stalled, else what its IKE SAs earn."""
        if connection.stalled:
            return Earned.NOTHING
        if self.earned is None or connection.phase is not Phase.OPEN:
            return Earned.AUTHENTICATED
        return self.earned(connection.id)

    def _least_earned_of(self, source: Source) -> Connection | None:
        """The oldest of ``source``'s counted connections that earned least; ``None`` if all authenticated."""
        victim: Connection | None = None
        least = Earned.AUTHENTICATED
        for connection in self._sources.get(source, {}).values():  # oldest first
            earned = self.earned_by(connection)
            if earned < least:
                victim, least = connection, earned
                if earned is Earned.NOTHING:
                    break
        return victim

    def _least_earned(self) -> Connection | None:
        """The connection to evict for ``connections_max``: from the sources holding most connections
        first; among the first few of those, the connection that earned least (oldest first).

        Looks at a bounded number of connections unless nearly all carry an
        authenticated IKE SA, so a flood of connections costs little each.
        """
        for count in sorted(self._holders, reverse=True):
            victim: Connection | None = None
            least = Earned.AUTHENTICATED
            for source in itertools.islice(self._holders[count], SOURCES_COMPARED):
                candidate = self._least_earned_of(source)
                if candidate is not None and self.earned_by(candidate) < least:
                    victim, least = candidate, self.earned_by(candidate)
            if victim is not None:
                return victim
            if len(self._holders[count]) > SOURCES_COMPARED:  # the rest of this count, one by one
                for source in itertools.islice(self._holders[count], SOURCES_COMPARED, None):
                    candidate = self._least_earned_of(source)
                    if candidate is not None:
                        return candidate
        return None

    def _count(self, connection: Connection, step: int) -> None:
        """Count ``connection`` in (``+1``) or out (``-1``) of the limits and the per-source index."""
        source = connection.source
        assert source is not None  # set by admit()
        mine = self._sources.setdefault(source, {})
        before = len(mine)
        if step > 0:
            mine[connection.id] = connection
        else:
            del mine[connection.id]
        after = len(mine)
        self._counted += step
        if before:
            bucket = self._holders[before]
            del bucket[source]
            if not bucket:
                del self._holders[before]
        if after:
            self._holders.setdefault(after, {})[source] = None
        else:
            del self._sources[source]

    def _evict(self, victim: Connection, why: str) -> None:
        earned = self.earned_by(victim)
        self.stats[f"evicted_{earned.name.lower()}"] += 1
        self.limiter.log(
            logging.WARNING,
            ("evict", victim.source),
            "%s evicted in %s phase, carrying %s, after %.1fs: %s",
            victim.describe(),
            victim.phase.value,
            "no live IKE SA" if earned is Earned.NOTHING else "only half-open IKE SAs",
            trio.current_time() - victim.opened_at,
            why,
        )
        victim.abort(f"evicted while {victim.phase.value}: {why}", "evicted")
        self.remove(victim)

    def _refuse(self, limit: str, source: Source | None, peer: str, value: int) -> None:
        self.stats[f"refused_{limit}"] += 1
        setting = "connections_per_source" if limit == "per_source" else "connections_max"
        self.limiter.log(
            logging.WARNING,
            ("refuse", limit, source),
            "connection from %s refused: %s (%d) reached and each carries an authenticated IKE SA",
            peer,
            setting,
            value,
        )

    def release(self, connection: Connection) -> None:
        """``connection`` is closing: it no longer counts against the limits (idempotent)."""
        if not connection.counted or connection.id not in self._connections:
            return
        connection.counted = False
        self._count(connection, -1)
        self._all_earned_until = -math.inf

    def remove(self, connection: Connection) -> None:
        """Forget ``connection`` (idempotent); its slot is free at once."""
        self.release(connection)
        if self._connections.pop(connection.id, None) is None:
            return
        if not self._connections and self._empty is not None:
            self._empty.set()

    # ------------------------------------------------------------------ shutdown

    @contextlib.contextmanager
    def accepting(self) -> Iterator[trio.CancelScope]:
        """A cancel scope for one accept loop, cancelled by :meth:`aclose_all`."""
        scope = trio.CancelScope()
        if self._closing:
            scope.cancel()
        self._listener_scopes.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._listener_scopes.discard(scope)

    async def aclose_all(self, deadline: float) -> None:
        """Stop accepting and close every connection gracefully; cut what is left at ``deadline``.

        ``deadline`` is in :func:`trio.current_time` terms.  Open connections
        stop reading, write what is queued and close (TLS: close_notify);
        stalled ones are cut at once.  Returns when every connection is closed.
        """
        self._closing = True
        for scope in list(self._listener_scopes):
            scope.cancel()
        if not self._connections:
            return
        self._empty = trio.Event()
        for connection in self.connections():
            connection.shutdown(deadline)
        with trio.move_on_at(deadline):
            await self._empty.wait()
        for connection in self.connections():  # their deadline has passed: they are being cut
            connection.abort("cut: shutdown deadline passed", "shutdown")
        await self._empty.wait()
