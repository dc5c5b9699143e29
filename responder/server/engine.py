"""The engine: the sans-IO endpoint, the clock, the SA runners and the router, wired together.

Strategy: transports call :class:`Engine` synchronously (:class:`EngineInput`
in :mod:`~responder.server.contracts`).  The engine reads the clocks
(``trio.current_time()`` for deadlines, ``time.time()`` for the wall clock the
core needs for certificates), hands each message to the core's
:class:`~responder.core.endpoint.Endpoint`, and after every call into the core
does the same three things (:meth:`Engine._after_core`):

1. starts one task per new IKE SA (:class:`~responder.server.sa_runner.SaRunners`,
   in the engine's SA nursery, never a connection's: an IKE SA outlives the
   connection it came on, RFC 9329 §6.1, §10, rows A26, A28) and pokes the
   task of the SA the call touched, whose deadline may have moved;
2. hands each outgoing IKE message or ESP packet to the
   :class:`~responder.server.router.Router`, which finds its sink;
3. drains the events: each goes to the log (:mod:`~responder.server.logs`)
   and to the observers with the path of its SA (named by ``local_spi``);
   a :class:`~responder.core.events.ConnectionClosing` closes that stream
   connection through its sink.

The RFC 9329 §6.1 connection rules (corruption, orphans, which SAs a
connection carries) are the core's: the engine tells the endpoint when a
stream is attached and detached, runs its connection timers in one task, and
carries out what it decides.  It never parses an IKE header: what became of a
message is the :class:`~responder.core.outcomes.ReceiveOutcome` the core
returns.

Requests of our own over TCP are sent once and not retransmitted; the core
ends the SA when no response arrives (RFC 9329 §6.2, row A39), and sends a
request still waiting once more when the peer comes back on a new
connection; over UDP the core schedules the RFC 7296 §2.1 retransmissions
and the SA's task delivers them.  Rekeys, expiry and liveness checks are
the core's deadlines too: the SA's task wakes for them like for any other.
On shutdown :meth:`Engine.delete_all` sends the Delete of every IKE SA and
waits a bounded time for the answers (RFC 9329 row A24).

Row A30 policy: a new IKE_SA_INIT on a connection that already carries a live
IKE SA is processed (and logged); the older SA keeps its own path until its
next valid message.

Logging what peers cause: every line about an IKE SA that has not
authenticated (IKE_SA_INIT answered or refused, a half-open SA expiring, a
dropped message of no known SA, a failed IKE_AUTH) goes through one
:class:`~responder.server.logs.RateLimiter` with a budget per source address
(``log_lines_per_source`` lines per ``log_interval``) and one for all
(``log_lines_max``), since an unauthenticated peer can cause them at will;
lines naming the SAs of one connection name three and count the rest; every
event line is clipped to :data:`~responder.server.logs.LOG_LINE_MAX`
characters.

Lab impairments of what we send (``drop_response``, ``delay_response``,
``duplicate_response``, ``corrupt_icv``, ``tcp_close_after``) sit between
the core and the router (:mod:`~responder.server.impair`).

ESP is looked up by SPI in the core and counted per connection (per UDP
socket) and per IKE SA.  Decrypted packets of the API backend go to
:attr:`Engine.inner_packets`; those of a backend with an
:class:`~responder.server.contracts.InnerSink` attached
(:meth:`Engine.attach_backend`: the TUN device) go to that sink, and what it
reads back goes out through :meth:`Engine.send_routed`.  Those of the TUN
backend while no device is attached are dropped and counted
(``stats.tun_no_device``), never handed to the API's channel.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from types import MappingProxyType
from typing import TypeVar

import attrs
import trio

from responder.core.config import Config
from responder.core.data_plane import IPV4_IN_ESP, IPV6_IN_ESP, Backend, DataPlane, InnerPacket
from responder.core.dispatch import RESPONDERS
from responder.core.endpoint import Endpoint, Reconfigured
from responder.core.enums import ExchangeType
from responder.core.errors import LocalError
from responder.core.esp import EspSa
from responder.core.events import ConnectionClosing, Event, IkeSaClosed, MessageDropped
from responder.core.exchanges.create_child_sa import RekeyChildSa
from responder.core.exchanges.rekey_ike import RekeyIkeSa
from responder.core.ike_sa import IkeSa, IkeSaState, ResponderFactory
from responder.core.initiator import InitiatorSettings
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.outbound import Unrouted
from responder.core.outcomes import ReceiveOutcome, Verdict
from responder.core.path import Path
from responder.server.contracts import Earned, EventObserver, InnerSink, Sink
from responder.server.impair import OutboundImpairer
from responder.server.logs import RateLimiter, clip, describe_event, event_level, spi_list, spis, where
from responder.server.router import Router, SinkKey, sink_key
from responder.server.sa_runner import SaRunners

__all__ = ["Engine", "EngineStats"]

logger = logging.getLogger("responder.server.engine")

T = TypeVar("T")


@attrs.frozen
class EngineStats:
    """A snapshot of the engine's counters (read-only)."""

    ike_sas: int  #: IKE SAs the core holds, half-open included
    half_open: int  #: IKE SAs waiting for IKE_AUTH
    sa_tasks: int  #: per-SA timer tasks alive
    connections: int  #: stream connections attached
    udp_sockets: int  #: UDP sockets attached
    messages_in: int  #: IKE messages handed to the core
    messages_out: int  #: IKE messages queued on a sink
    sends_dropped: int  #: IKE messages with no sink, or refused by it
    internal_errors: int  #: exceptions caught around the core and the observers
    esp_packets: int  #: ESP packets received (each Child SA's own counters: ``Endpoint.data_plane``)
    esp_unknown_spi: int  #: of those, with an SPI of no Child SA of ours
    esp_per_connection: Mapping[SinkKey, int]  #: by connection number or UDP socket
    esp_per_sa: Mapping[bytes, int]  #: by our IKE SPI
    closed_corrupt: int = 0  #: connections closed for consecutive corrupt input (rows A32, A33)
    closed_orphan: int = 0  #: connections closed for carrying no live IKE SA (row A25)
    replies_held_back: int = (
        0  #: answers to unprotected messages not sent, over their rate (RFC 7296 §2.21.4)
    )
    log_lines_held_back: int = 0  #: log lines held back by the rate limits
    esp_dropped: int = 0  #: ESP packets of our Child SAs that did not open (replay, integrity, ...)
    echoed: int = 0  #: echo requests the echo backend answered
    inner_dropped: int = 0  #: packets for the API backend dropped: its reader fell behind
    #: decrypted packets outside their Child SA's selectors, dropped (RFC 4301 §5.2)
    not_selected: int = 0
    #: Decrypted packets of TUN-backend Child SAs dropped because no device was attached (a reload
    #: that added the first such child, shutdown): never handed to :attr:`Engine.inner_packets`.
    tun_no_device: int = 0
    #: The TUN device's counters (:mod:`responder.server.tun`), empty without one.
    tun: Mapping[str, int] = MappingProxyType({})


#: Packets for the API backend the engine holds until the program reads them (``inner_packets``).
INNER_QUEUE = 1024


@attrs.define(eq=False)
class Engine:
    """The responder's endpoint behind the transports; see the module docstring.

    ``random_bytes`` feeds SPIs, nonces and IVs, ``ke_factory`` the key
    exchanges (default: one drawing from ``random_bytes``); tests inject seeded
    ones.  :meth:`run` must be running (it holds the SA nursery and the
    connection timers) for timers to fire.  The RFC 9329 connection rules take
    their limits from ``config.limits`` (``orphan_timeout``, ``corrupt_messages_max``).
    """

    config: Config
    random_bytes: Callable[[int], bytes] = attrs.field(default=os.urandom, repr=False)
    ke_factory: KeyExchangeFactory | None = attrs.field(default=None, repr=False)
    observers: Sequence[EventObserver] = ()
    log_interval: float = 10.0  #: seconds between two rate-limited lines of one kind
    #: Lines per ``log_interval`` about IKE SAs that have not authenticated, per source address ...
    log_lines_per_source: int = 20
    #: ... and in all; also the most rate-limited lines of every kind per ``log_interval``.
    log_lines_max: int = 200
    #: The wall clock handed to the core beside ``trio.current_time()`` (tests may fix it).
    wall_clock: Callable[[], float] = attrs.field(default=time.time, repr=False)
    #: The core's legality table (:data:`responder.core.dispatch.RESPONDERS`); programs may add exchanges.
    responders: Mapping[tuple[IkeSaState, ExchangeType], ResponderFactory] = attrs.field(
        default=RESPONDERS, repr=False
    )
    _endpoint: Endpoint = attrs.field(init=False)
    _router: Router = attrs.field(init=False)
    _runners: SaRunners = attrs.field(init=False)
    _impairer: OutboundImpairer = attrs.field(init=False)  #: lab impairments of what we send
    _limiter: RateLimiter = attrs.field(init=False)
    _peer_lines: RateLimiter = attrs.field(init=False)  #: lines about unauthenticated IKE SAs
    _counts: Counter[str] = attrs.field(init=False, factory=Counter)
    _esp_per_connection: Counter[SinkKey] = attrs.field(init=False, factory=Counter)
    _esp_per_sa: Counter[bytes] = attrs.field(init=False, factory=Counter)
    _connection_wake: trio.Event = attrs.field(init=False, factory=trio.Event)
    _connection_sleep: float | None = attrs.field(init=False, default=None)  #: the watcher's deadline
    _sa_closed: trio.Event = attrs.field(init=False, factory=trio.Event)  #: set whenever an SA closes
    _running: bool = attrs.field(init=False, default=False)
    #: During :meth:`delete_all`: our SPIs of the IKE SAs whose Delete is still unanswered.
    _deleting: set[bytes] | None = attrs.field(init=False, default=None)
    _inner_send: trio.MemorySendChannel[InnerPacket] = attrs.field(init=False)
    _inner_receive: trio.MemoryReceiveChannel[InnerPacket] = attrs.field(init=False)
    _sinks: dict[Backend, InnerSink] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self._inner_send, self._inner_receive = trio.open_memory_channel[InnerPacket](INNER_QUEUE)
        ke_factory = self.ke_factory or KeyExchangeFactory(self.random_bytes)
        self._endpoint = Endpoint(self.config, self.random_bytes, ke_factory, self.responders)
        self._limiter = RateLimiter(self.log_interval, total=self.log_lines_max)
        self._peer_lines = RateLimiter(
            self.log_interval, max_keys=4096, burst=self.log_lines_per_source, total=self.log_lines_max
        )
        self._router = Router(self._limiter)
        self._impairer = OutboundImpairer(lambda: self.config.impair, self._router.route, self._router.close)
        self._runners = SaRunners(self._run_sa_timer, self._alive)

    # ------------------------------------------------------------------ the SA nursery

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the SA nursery (one task per IKE SA, rows A26, A28) and the connection timers.

        Runs until cancelled.
        """
        if self._running:
            raise LocalError("the engine is already running")
        self._running = True
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._runners.run)
                nursery.start_soon(self._watch_connections, name="connection-timers")
                nursery.start_soon(self._impairer.run, name="delayed-responses")  # delay_response
                task_status.started()
        finally:
            self._running = False

    def _alive(self, sa: IkeSa) -> bool:
        return self._endpoint.sa(sa.local_spi) is sa

    def _run_sa_timer(self, local_spi: bytes, now: float) -> None:
        self._call(lambda: self._endpoint.handle_sa_timer(local_spi, now, wall=self.wall_clock()), None)

    async def _watch_connections(self) -> None:
        """Run the core's RFC 9329 §6.1 connection timers (orphan grace, row A25)."""
        while True:
            self._connection_wake = trio.Event()
            deadline = self._connection_sleep = self._endpoint.connection_timer()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._connection_wake.wait()
            now = trio.current_time()
            due = self._endpoint.connection_timer()
            if due is not None and now >= due:
                self._call(partial(self._endpoint.handle_connection_timers, now), None)

    # ------------------------------------------------------------------ EngineInput

    def attach(self, path: Path, sink: Sink) -> None:
        self._router.attach(path, sink)
        if path.connection is not None:
            # Until its first frame the transport's first_frame_timeout applies; the
            # orphan rule (row A25) starts with the first IKE or ESP message.
            self._endpoint.attach_connection(path)

    def detach(self, path: Path) -> None:
        self._router.detach(path)
        self._esp_per_connection.pop(sink_key(path), None)
        if path.connection is None:
            return
        live = self.carried(path.connection)
        self._endpoint.detach_connection(path.connection)
        if live:
            # RFC 9329 §6.1, §10 (row A26): the IKE SA outlives its connection.
            self._limiter.log(
                logger,
                logging.INFO,
                ("kept", path.remote_address),
                trio.current_time(),
                "%s closed; IKE SA %s kept for a new connection",
                where(path),
                spi_list(live, len(live)),
            )

    def receive_ike(self, message: bytes, path: Path) -> None:
        self._counts["messages_in"] += 1
        now = trio.current_time()

        def receive() -> ReceiveOutcome:
            return self._endpoint.receive(message, path, now, wall=self.wall_clock())

        outcome = self._call(receive, path)
        if outcome is not None and outcome.verdict is Verdict.CREATED and path.connection is not None:
            self._log_a30(path, path.connection, outcome.local_spi, now)

    def _log_a30(self, path: Path, connection: int, new: bytes, now: float) -> None:
        """RFC 9329 §6.1 (row A30): one IKE SA per connection; our policy is to process another.

        Rate-limited per source, and only then are the older SAs looked up: a
        peer that opens many SAs on one connection costs neither log nor time.
        """
        state = self._endpoint.connection(connection)
        if state is None or len(state.carried) < 2 or not logger.isEnabledFor(logging.INFO):
            return
        suppressed = self._peer_lines.check(("a30", path.remote_address), now)
        if suppressed is None:
            return
        older = [spi for spi in self.carried(connection) if spi != new]
        if older:
            logger.info(
                "%s new IKE SA on a connection carrying live IKE SA %s: processed (RFC 9329 §6.1)%s",
                where(path),
                spi_list(older, len(older)),
                f" (suppressed {suppressed} similar)" if suppressed else "",
            )

    def receive_esp(self, packet: bytes, path: Path, ecn: int = 0) -> None:
        """One ESP packet: :meth:`receive_esp_batch` of one."""
        self.receive_esp_batch((packet,), path, ecn)

    def receive_esp_batch(self, packets: Sequence[bytes], path: Path, ecn: int = 0) -> None:
        """ESP packets that arrived together on ``path`` (one read of a stream, one wakeup of a
        UDP socket), in order.

        Each packet goes to the core on its own (its SPI, replay window and ICV are its own,
        RFC 4303 §3.4); what the core then queued (echo replies, events, deadlines) is taken
        once for the batch: issue 12's batching, which leaves one write per batch to the
        transport instead of one per packet (``bench/esp_wire.py`` measures it).
        """
        endpoint, counts = self._endpoint, self._counts
        debug = logger.isEnabledFor(logging.DEBUG)  # a debug line is not even formatted at info
        key = sink_key(path)
        counts["esp_packets"] += len(packets)
        self._esp_per_connection[key] += len(packets)
        now = trio.current_time()
        unknown = 0
        try:
            for packet in packets:
                try:
                    owner = endpoint.receive_esp(packet, path, now, ecn)
                except Exception:
                    counts["internal_errors"] += 1
                    logger.exception("internal error handling %s", where(path))
                    if path.connection is not None and self._closing_now(path.connection):
                        break
                    continue
                if owner is None:
                    unknown += 1
                    if path.connection is not None and self._closing_now(path.connection):
                        break  # rows A32, A33: nothing more is read from a connection the core closes
                else:
                    self._esp_per_sa[owner] += 1
                if debug:
                    self._limiter.log(
                        logger,
                        logging.DEBUG,
                        ("esp", key),
                        now,
                        "%s ESP packet of %d octets, SPI %s%s: %s",
                        where(path),
                        len(packet),
                        packet[:4].hex(),
                        "" if owner is None else f" of IKE SA {owner.hex()}",
                        endpoint.last_esp,
                    )
        finally:
            counts["esp_unknown_spi"] += unknown
            self._after_core(path, None)
            for inner in endpoint.data_plane.take_inner():  # API and TUN backends (RFC 4303 §3.4 done)
                sink = self._sinks.get(inner.backend)
                if sink is not None:
                    sink.deliver(inner)
                    continue
                if inner.backend is not Backend.API:  # its device is not up (yet, or any more)
                    counts["tun_no_device"] += 1
                    continue
                try:
                    self._inner_send.send_nowait(inner)
                except trio.WouldBlock:
                    counts["inner_dropped"] += 1

    def esp_sa(self, inbound_spi: bytes) -> EspSa | None:
        """The ESP SAs of the Child SA with our inbound SPI ``inbound_spi``, for their counters
        (``inbound.counters``, ``outbound.counters``: RFC 4303 packets, octets and drops)."""
        return self._endpoint.data_plane.sa(inbound_spi)

    def _closing_now(self, connection: int) -> bool:
        state = self._endpoint.connection(connection)
        return state is None or state.closing

    def inner_backlog(self) -> bool:
        """Whether the program reading :attr:`inner_packets` is more than half a queue behind: then
        the transports let it run before they hand over more (back-pressure, not drops)."""
        return self._inner_send.statistics().current_buffer_used > INNER_QUEUE // 2

    @property
    def inner_packets(self) -> trio.MemoryReceiveChannel[InnerPacket]:
        """Decrypted packets of Child SAs whose backend is ``"api"`` (issue 12), oldest first; a
        program reads them and answers with :meth:`send_inner`.  When it falls behind by
        ``INNER_QUEUE`` packets, later ones are dropped (``stats.inner_dropped``)."""
        return self._inner_receive

    def send_inner(self, local_spi: bytes, child: bytes, packet: bytes, next_header: int) -> bool:
        """Send ``packet`` as ESP through the Child SA whose inbound SPI is ``child`` (RFC 4303 §3.3);
        ``False`` when that Child SA is gone or past a hard limit."""
        now = trio.current_time()
        try:
            return bool(
                self._call(
                    lambda: self._endpoint.send_inner(local_spi, child, packet, next_header, now), None
                )
            )
        finally:
            self._after_core(None, local_spi)

    def attach_backend(self, backend: Backend, sink: InnerSink) -> None:
        """Hand the decrypted packets of ``backend``'s Child SAs to ``sink`` (the TUN device) instead
        of :attr:`inner_packets`; its counters show in :attr:`stats` (``tun``)."""
        self._sinks[backend] = sink

    def detach_backend(self, backend: Backend) -> None:
        self._sinks.pop(backend, None)

    def send_routed(self, packets: Sequence[bytes]) -> list[str | None]:
        """Send IP packets from the TUN device, each through the TUN backend's Child SA whose
        selectors hold it (RFC 4301 §5.1); for each, ``None`` if sent, else why not (``no_sa``,
        ``not_ip``, ``internal_error``).  One batch, one pass over what the core queued."""
        results: list[str | None] = []
        now = trio.current_time()
        try:
            for packet in packets:
                try:
                    results.append(self._send_routed(packet, now))
                except Exception:
                    self._counts["internal_errors"] += 1
                    logger.exception("internal error routing a packet from the TUN device")
                    results.append("internal_error")
        finally:
            self._after_core(None, None)
        return results

    def _send_routed(self, packet: bytes, now: float) -> str | None:
        child = self._endpoint.data_plane.route(packet)  # the core's RFC 4301 §5.1 lookup
        if isinstance(child, Unrouted):
            return child.value
        next_header = IPV4_IN_ESP if packet[0] >> 4 == 4 else IPV6_IN_ESP
        sent = self._endpoint.send_inner(None, child, packet, next_header, now)
        return None if sent else Unrouted.NO_SA.value

    @property
    def data_plane(self) -> DataPlane:
        """The core's data plane: each Child SA's ESP counters, the TUN backend's selectors (read only)."""
        return self._endpoint.data_plane

    # ------------------------------------------------------------------ commands

    def initiate(self, settings: InitiatorSettings, path: Path) -> IkeSa:
        """Start an IKE SA as initiator on ``path`` (a sink must be attached for it)."""
        sa = self._endpoint.initiate(settings, path, trio.current_time(), wall=self.wall_clock())
        self._after_core(None, sa.local_spi)
        return sa

    def request_liveness_check(self, local_spi: bytes) -> None:
        """An empty INFORMATIONAL request on the SA's path (RFC 7296 §2.4; RFC 9329 §6.2 over TCP)."""
        try:
            self._endpoint.request_liveness_check(local_spi, trio.current_time())
        finally:
            self._after_core(None, local_spi)

    def request_delete(self, local_spi: bytes) -> None:
        """An INFORMATIONAL Delete of the IKE SA (RFC 7296 §1.4.1)."""
        try:
            self._endpoint.request_delete(local_spi, trio.current_time())
        finally:
            self._after_core(None, local_spi)

    def request_rekey(self, local_spi: bytes, child: bytes | None = None) -> None:
        """Rekey the IKE SA now, or its Child SA whose inbound SPI is ``child`` (RFC 7296 §1.3.2, §1.3.3)."""
        exchange = RekeyIkeSa() if child is None else RekeyChildSa.of(child)
        try:
            self._endpoint.start(local_spi, exchange, trio.current_time(), wall=self.wall_clock())
        finally:
            self._after_core(None, local_spi)

    def reconfigure(self, config: Config) -> Reconfigured | None:
        """Take a new core configuration (a reload): see :meth:`Endpoint.reconfigure`; ``None``
        if the core failed (logged as an internal error, the old configuration stays)."""
        outcome = self._call(lambda: self._endpoint.reconfigure(config, trio.current_time()), None)
        if outcome is not None:
            self.config = self._endpoint.config
        return outcome

    async def delete_all(self, grace: float) -> tuple[int, int]:
        """Send the Delete of every established or rekeyed IKE SA (RFC 9329 row A24, RFC 7296 §1.4.1) and
        wait up to ``grace`` seconds for the answers; returns (Deletes sent, SAs still open).

        :meth:`run` must be running for UDP retransmissions; an SA whose Delete
        goes unanswered simply ends with the server.
        """
        # Issue 14: the SAs still open are counted down as each one closes (``_dispatch``), and
        # every SA is looked at again only when a rekey made a new one meanwhile, so an SA that
        # closes costs the same with 50,000 held as with 10 (looking at them all again per
        # closed SA made a shutdown with 50,000 IKE SAs take minutes).
        sent: set[bytes] = set()
        self._deleting = unanswered = set()

        def start_deletes() -> None:
            now = trio.current_time()
            started = self._call(lambda: self._endpoint.delete_all(now), None) or []
            for local_spi in started:
                if local_spi not in sent and self._endpoint.sa(local_spi) is not None:
                    sent.add(local_spi)
                    unanswered.add(local_spi)
                    self._runners.poke(local_spi)

        try:
            created = self._counts["sas_created"]
            start_deletes()
            with trio.move_on_after(grace):
                while unanswered:
                    self._sa_closed = trio.Event()
                    await self._sa_closed.wait()
                    if self._counts["sas_created"] != created:  # a rekey made an IKE SA meanwhile
                        created = self._counts["sas_created"]
                        start_deletes()  # it is deleted too
        finally:
            self._deleting = None
        return len(sent), len(unanswered)

    def resume(self, local_spi: bytes, message_id: int, result: object) -> bool:
        """Answer a deferred request (see :class:`~responder.core.events.AnswerDeferred`)."""
        now = trio.current_time()
        resumed = self._call(
            lambda: self._endpoint.resume(local_spi, message_id, result, now, wall=self.wall_clock()),
            None,
            local_spi,
        )
        return bool(resumed)

    # ------------------------------------------------------------------ read-only views

    def sa(self, local_spi: bytes) -> IkeSa | None:
        """The live IKE SA with our SPI ``local_spi``."""
        return self._endpoint.sa(local_spi)

    def being_deleted(self, local_spi: bytes) -> bool:
        """Whether a Delete of ours for the IKE SA is already under way."""
        return self._endpoint.being_deleted(local_spi)

    def sas(self) -> Iterator[IkeSa]:
        """Every live IKE SA, half-open ones included (a snapshot; for status views, never to change)."""
        return self._endpoint.sas

    def carried(self, connection: int | None) -> tuple[bytes, ...]:
        """Our SPIs of the live IKE SAs a stream connection carries (RFC 9329 §6.1, rows A25, A37)."""
        state = self._endpoint.connection(connection) if connection is not None else None
        if state is None:
            return ()
        return tuple(sorted(spi for spi in state.carried if self._endpoint.sa(spi) is not None))

    def earned(self, connection: int) -> Earned:
        """What a stream connection has earned by the IKE SAs it carries (for eviction, issue 15)."""
        state = self._endpoint.connection(connection)
        earned = Earned.NOTHING
        for local_spi in state.carried if state is not None else ():
            sa = self._endpoint.sa(local_spi)
            if sa is None:
                continue
            if sa.established_at is not None or sa.rekeyed_from is not None:
                return Earned.AUTHENTICATED
            earned = Earned.HALF_OPEN
        return earned

    @property
    def stats(self) -> EngineStats:
        counts, routed = self._counts, self._router.counts
        return EngineStats(
            ike_sas=self._endpoint.ike_sa_count,
            half_open=self._endpoint.half_open_count,
            sa_tasks=len(self._runners),
            connections=self._router.connections,
            udp_sockets=self._router.udp_sockets,
            messages_in=counts["messages_in"],
            messages_out=routed["messages_out"],
            sends_dropped=routed["sends_dropped"],
            internal_errors=counts["internal_errors"] + routed["internal_errors"],
            esp_packets=counts["esp_packets"],
            esp_unknown_spi=counts["esp_unknown_spi"],
            esp_per_connection=MappingProxyType(dict(self._esp_per_connection)),
            esp_per_sa=MappingProxyType(dict(self._esp_per_sa)),
            closed_corrupt=counts["closed_corrupt"],
            closed_orphan=counts["closed_orphan"],
            replies_held_back=self._endpoint.replies_held_back,
            log_lines_held_back=self.log_lines_held_back,
            esp_dropped=sum(
                n for reason, n in self._endpoint.data_plane.drops.items() if reason != "not_answered"
            ),
            echoed=self._endpoint.data_plane.echoed,
            inner_dropped=counts["inner_dropped"],
            not_selected=self._endpoint.data_plane.inner_drops["not_selected"],
            tun_no_device=counts["tun_no_device"],
            tun=MappingProxyType(dict(sink.counters())) if (sink := self._sinks.get(Backend.TUN)) else {},
        )

    # ------------------------------------------------------------------ after every core call

    def _call(
        self, action: Callable[[], T], input_path: Path | None, touched: bytes | None = None
    ) -> T | None:
        """Run ``action`` on the core; a bug there is logged, never passed to the transport.

        ``touched`` names the SA whose deadline the call may have moved (a received
        message names its own through its outcome).
        """
        result: T | None = None
        try:
            result = action()
        except Exception:
            self._counts["internal_errors"] += 1
            logger.exception("internal error handling %s", where(input_path) if input_path else "a timer")
        finally:
            if isinstance(result, ReceiveOutcome):
                touched = result.local_spi
            self._after_core(input_path, touched)
        return result

    def _after_core(self, input_path: Path | None, touched: bytes | None) -> None:
        for sa in self._endpoint.new_sas():
            self._counts["sas_created"] += 1
            self._runners.start(sa)
            if sa.rekeyed_from is not None:
                pass  # made by a rekey: its IkeSaEstablished event says so
            elif sa.is_original_initiator:
                logger.info("%s %s IKE_SA_INIT #0 request sent", where(sa.path), spis(sa.spi_i))
            elif logger.isEnabledFor(logging.INFO):  # the proposal's text is not built at warning
                line = (
                    f"{where(sa.path)} {spis(sa.spi_i, sa.spi_r)} IKE_SA_INIT #0 answered: "
                    f"proposal {sa.proposal}; half-open until IKE_AUTH"
                )
                self._log_peer_line(logging.INFO, sa.path, line)
        self._impairer.send(self._endpoint.messages_to_send())  # to the router, unless impaired
        while (event := self._endpoint.next_event()) is not None:
            self._dispatch(event, input_path)
        if touched:
            self._runners.poke(touched)  # its timer may have changed
        for local_spi in self._endpoint.touched():  # and those of the SAs it reached (an heir, ...)
            self._runners.poke(local_spi)
        deadline = self._endpoint.connection_timer()
        if deadline is not None and (self._connection_sleep is None or deadline < self._connection_sleep):
            self._connection_wake.set()  # a connection's grace period ends before the watcher wakes

    def _dispatch(self, event: Event, input_path: Path | None) -> None:
        sa = self._runners.sa(event.local_spi) if event.local_spi else None
        path = sa.path if sa is not None else input_path
        if isinstance(event, ConnectionClosing):
            self._close_connection(event)
            return
        if isinstance(event, IkeSaClosed):
            if self._deleting is not None:
                self._deleting.discard(event.local_spi)
            self._esp_per_sa.pop(event.local_spi, None)
            self._impairer.forget(event.local_spi)
            self._runners.poke(event.local_spi)  # its task ends
            self._sa_closed.set()
        level = logging.INFO if isinstance(event, MessageDropped) else event_level(event)
        if logger.isEnabledFor(level):  # a debug line is not even formatted at info
            line = clip(describe_event(event, path))
            if sa is None or (sa.established_at is None and sa.rekeyed_from is None):
                self._log_peer_line(level, path, line)
            elif isinstance(event, MessageDropped):
                key = ("dropped", path.remote_address if path is not None else None)
                self._limiter.log(logger, level, key, trio.current_time(), "%s", line)
            else:
                logger.log(level, "%s", line)
        for observer in self.observers:
            try:
                observer.observe(event, path)
            except Exception:
                self._counts["internal_errors"] += 1
                logger.exception("observer %r failed", observer)

    def _log_peer_line(self, level: int, path: Path | None, line: str) -> None:
        """A line about an IKE SA that has not authenticated: within its source's budget and the total."""
        if not logger.isEnabledFor(level):
            return
        source = path.remote_address if path is not None else None
        suppressed = self._peer_lines.check(("peer", source), trio.current_time())
        if suppressed is None:
            return
        if suppressed:
            logger.log(level, "%s (%d lines about this peer held back before)", line, suppressed)
        else:
            logger.log(level, "%s", line)

    @property
    def log_lines_held_back(self) -> int:
        """Log lines held back by the rate limits since the start (what peers caused at will)."""
        return self._limiter.held_back + self._peer_lines.held_back

    def _close_connection(self, event: ConnectionClosing) -> None:
        """The core ends a stream connection (RFC 9329 §6.1); logged, rate-limited per peer."""
        connection = self._endpoint.connection(event.connection)
        if connection is None or not self._router.attached(connection.path):
            return
        self._counts[f"closed_{event.kind}"] += 1
        path = connection.path
        level = event_level(event)
        key = (event.kind, path.remote_address)
        self._limiter.log(logger, level, key, trio.current_time(), "%s", describe_event(event, path))
        self._router.close(path, event.reason)
