"""The engine: the sans-IO endpoint, the clock, one task per IKE SA, and routing.

Strategy: transports call :class:`Engine` synchronously (:class:`EngineInput`
in :mod:`~responder.server.contracts`).  The engine reads the clock
(``trio.current_time()``), hands the message to the core's
:class:`~responder.core.sa_table.Endpoint` with it as ``now``, and after
every call into the core does the same three things (:meth:`Engine._after_core`):

1. starts one task per new IKE SA in the engine's **SA nursery**, never a
   connection's: an IKE SA outlives the connection it came on (RFC 9329 §6.1,
   §10, rows A26, A28).  The task sleeps until the SA's ``get_timer()`` (or
   until poked because a message changed it), runs the core's timer for that
   SA alone, and ends when the SA closes;
2. routes each :class:`Outgoing` to the sink registered for its path: a
   stream by ``path.connection``, UDP by ``(local_address, local_port)``
   (falling back to the wildcard socket of that port).  The core picks the
   path: a response goes where its request came from, a request of ours to
   ``sa.path``, which the core moves only on a valid message (decrypted,
   authenticated, in the window: RFC 9329 §6.1, §10, rows A36, A65).  A
   message whose connection is gone is logged (rate-limited) and dropped;
3. drains the events, hands each to the observers with the path of its SA
   (the path the message came on when no SA is involved) and logs it
   (:mod:`~responder.server.logs`).

Requests of our own over TCP are sent once and not retransmitted; the core
ends the SA when no response arrives (RFC 9329 §6.2, row A39); over UDP the
core schedules the RFC 7296 §2.1 retransmissions and the SA's task delivers
them.  RFC 9329 §6.2 also asks to resend a pending request on a *new*
connection of the SA; that belongs to the lifecycle issue and is not done
here: a request whose connection closed stays unanswered until the SA times out.

Row A30 policy: a new IKE_SA_INIT on a connection that already carries a live
IKE SA is processed (and logged); the connection then answers for the newest
SA, while the older SA keeps its own path until its next valid message.

The engine also judges each stream connection (RFC 9329 §6.1) and ends it
through its sink (:meth:`~responder.server.contracts.Sink.close`), never the
IKE SAs it carried:

* **corruption** (rows A32, A33, A64): ``corrupt_messages_max`` consecutive
  corrupt inputs close the connection.  Corrupt is an IKE message the core
  drops (a header that does not decode, unknown SPIs, a failed ICV or a broken
  structure on a known SA) except a new IKE_SA_INIT request (dropped only for
  our own half-open limits, or for its IKE version, which is answered); an
  IKE_SA_INIT that does not parse (refused with INVALID_SYNTAX); and ESP
  whose SPI is no Child SA of ours.  Any other message the core accepts,
  answers (also from its response cache or with an error notify) or refuses
  with a notify, and ESP with a known SPI, resets the count, so a few unknown
  ESP SPIs during a rekey never close anything (A33).
  The core's :class:`~responder.core.events.MessageDropped` does not say
  whether the message had authenticated, so an authenticated request the core
  drops (outside the window, not allowed in the SA's state) counts as well: a
  peer would need to send that many in a row with nothing valid between;
* **orphans** (rows A25, A41, A43): a connection that carries no live IKE SA
  (all the SAs it carried have closed or expired, or it only ever carried
  refused IKE_SA_INITs, unknown SPIs or ESP) is closed after
  ``orphan_timeout`` seconds ("a few seconds", §6.1).  The grace period starts
  with the connection's first frame (before it, the transport's
  ``first_frame_timeout`` rules) or when its last live SA ends; a new
  IKE_SA_INIT request that creates no SA (refused, or of another IKE version)
  starts it again, so the retry after INVALID_KE_PAYLOAD or
  INVALID_MAJOR_VERSION finds the connection open (row A43).
  "Carried" means a new SA answered on it, or an authenticated message of the
  SA arrived on it (ESP is not authenticated until the data-plane issue, so it
  carries nothing): an SA that moved to a newer connection keeps the older one
  open while the SA lives, until the Originator closes it (row A37).

ESP is counted per connection (per UDP socket) and per IKE SA and dropped;
the data plane is a later issue.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType

import attrs
import trio

from responder.core.config import Config
from responder.core.enums import ExchangeType, NotifyType
from responder.core.errors import LocalError
from responder.core.events import (
    ChildSaDeleted,
    ChildSaEstablished,
    Event,
    IkeSaClosed,
    IkeSaInitRefused,
    MessageAccepted,
    MessageDropped,
    RequestAnswered,
    ResponseReceived,
    RetransmissionAnswered,
)
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.initiator import InitiatorSettings
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.path import Outgoing, Path
from responder.core.sa_table import Endpoint
from responder.core.sk_payload import IKE_HEADER_SIZE
from responder.server.contracts import EventObserver, Sink
from responder.server.logs import RateLimiter, describe_event, event_level, spis, where

__all__ = ["Engine", "EngineStats"]

logger = logging.getLogger("responder.server.engine")

IPAddress = IPv4Address | IPv6Address
SinkKey = int | tuple[IPAddress, int]  # a connection number, or a UDP socket's (local address, port)
_WILDCARD: dict[int, IPAddress] = {4: IPv4Address(0), 6: IPv6Address(0)}  # a socket bound to every address

ORPHAN_TIMEOUT = 10.0  #: default ``Engine.orphan_timeout``: RFC 9329 §6.1 "a few seconds" (row A25)
CORRUPT_MESSAGES_MAX = 16  #: default ``Engine.corrupt_messages_max`` (rows A32, A33)

#: Events that show the core took a message as a well-formed IKE message of ours: they reset
#: the corruption count of the connection it came on (RFC 9329 §6.1, rows A32, A33); so does an
#: IkeSaInitRefused, unless the IKE_SA_INIT did not parse (INVALID_SYNTAX).
_ANSWERED = (MessageAccepted, RetransmissionAnswered, RequestAnswered, ResponseReceived)


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
    esp_packets: int  #: ESP packets received (counted and dropped)
    esp_unknown_spi: int  #: of those, with an SPI of no Child SA of ours
    esp_per_connection: Mapping[SinkKey, int]  #: by connection number or UDP socket
    esp_per_sa: Mapping[bytes, int]  #: by our IKE SPI
    closed_corrupt: int = 0  #: connections closed for consecutive corrupt input (rows A32, A33)
    closed_orphan: int = 0  #: connections closed for carrying no live IKE SA (row A25)


@attrs.define(eq=False)
class _SaRunner:
    sa: IkeSa
    wake: trio.Event = attrs.Factory(trio.Event)
    spawned: bool = False


@attrs.define(eq=False)
class _Connection:
    """What the engine knows of one attached stream connection (RFC 9329 §6.1)."""

    path: Path
    #: Live IKE SAs (our SPIs) created on it or whose authenticated messages came on it (A25, A37).
    carried: set[bytes] = attrs.Factory(set)
    orphan_since: float | None = None  #: since when it carries no live IKE SA (row A25)
    corrupt: int = 0  #: consecutive corrupt inputs (rows A32, A33)
    closing: bool = False  #: we asked its sink to close


@attrs.define(eq=False)
class Engine:
    """The responder's endpoint behind the transports; see the module docstring.

    ``random_bytes`` feeds SPIs, nonces and IVs, ``ke_factory`` the key
    exchanges (default: one drawing from ``random_bytes``); tests inject seeded
    ones.  :meth:`run` must be running (it holds the SA nursery) for timers to fire.
    ``orphan_timeout`` and ``corrupt_messages_max`` are the connection rules
    of the module docstring (the configuration file's
    ``responder.limits.orphan_timeout`` and ``corrupt_messages_max``).
    """

    config: Config
    random_bytes: Callable[[int], bytes] = attrs.field(default=os.urandom, repr=False)
    ke_factory: KeyExchangeFactory | None = attrs.field(default=None, repr=False)
    observers: Sequence[EventObserver] = ()
    log_interval: float = 10.0  #: seconds between two rate-limited lines of one kind
    #: Seconds a stream connection may carry no live IKE SA before we close it (row A25).
    orphan_timeout: float = attrs.field(default=ORPHAN_TIMEOUT, validator=attrs.validators.gt(0))
    #: Consecutive corrupt inputs on a stream connection that close it (rows A32, A33).
    corrupt_messages_max: int = attrs.field(default=CORRUPT_MESSAGES_MAX, validator=attrs.validators.ge(1))
    _endpoint: Endpoint = attrs.field(init=False)
    _nursery: trio.Nursery | None = attrs.field(init=False, default=None)
    _sinks: dict[SinkKey, Sink] = attrs.field(init=False, factory=dict)
    _runners: dict[bytes, _SaRunner] = attrs.field(init=False, factory=dict)  # our IKE SPI -> task
    _conn_sas: dict[int, list[bytes]] = attrs.field(init=False, factory=dict)  # newest SA last
    _sa_conn: dict[bytes, int] = attrs.field(init=False, factory=dict)
    _connections: dict[int, _Connection] = attrs.field(init=False, factory=dict)  # attached streams
    _orphan_wake: trio.Event = attrs.field(init=False, factory=trio.Event)
    _esp_spis: dict[bytes, bytes] = attrs.field(init=False, factory=dict)  # inbound ESP SPI -> IKE SPI
    _counts: Counter[str] = attrs.field(init=False, factory=Counter)
    _esp_per_connection: Counter[SinkKey] = attrs.field(init=False, factory=Counter)
    _esp_per_sa: Counter[bytes] = attrs.field(init=False, factory=Counter)
    _limiter: RateLimiter = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        ke_factory = self.ke_factory or KeyExchangeFactory(self.random_bytes)
        self._endpoint = Endpoint(self.config, self.random_bytes, ke_factory)
        self._limiter = RateLimiter(self.log_interval)

    # ------------------------------------------------------------------ the SA nursery

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the SA nursery (one task per IKE SA, rows A26, A28) until cancelled."""
        if self._nursery is not None:
            raise LocalError("the engine is already running")
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                for runner in list(self._runners.values()):
                    self._spawn(runner)
                nursery.start_soon(self._watch_orphans, name="orphan-connections")
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def _spawn(self, runner: _SaRunner) -> None:
        if self._nursery is not None and not runner.spawned:
            runner.spawned = True
            self._nursery.start_soon(self._run_sa, runner, name=f"ike-sa-{runner.sa.local_spi.hex()}")

    async def _run_sa(self, runner: _SaRunner) -> None:
        sa = runner.sa
        try:
            while sa.state is not IkeSaState.CLOSED and self._endpoint.sa(sa.local_spi) is sa:
                deadline = sa.get_timer()
                runner.wake = trio.Event()
                with trio.move_on_at(math.inf if deadline is None else deadline):
                    await runner.wake.wait()
                now = trio.current_time()
                if deadline is None or now < deadline or deadline != sa.get_timer():
                    continue  # poked: look at the SA's timer again
                self._call(functools.partial(self._endpoint.handle_sa_timer, sa, now), None, sa)
                if sa.get_timer() == deadline:  # None once closed, so this SA is still open
                    logger.error("%s timer did not advance; waiting 1 s", spis(sa.spi_i, sa.spi_r))
                    await trio.sleep(1.0)
        finally:
            if self._runners.get(sa.local_spi) is runner:
                del self._runners[sa.local_spi]
            self._forget_sa(sa.local_spi)

    async def _watch_orphans(self) -> None:
        """Close connections that carried no live IKE SA for ``orphan_timeout`` (RFC 9329 §6.1, A25)."""
        while True:
            self._orphan_wake = trio.Event()
            starts = [c.orphan_since for c in self._connections.values() if c.orphan_since is not None]
            with trio.move_on_at(min(starts, default=math.inf) + self.orphan_timeout):
                await self._orphan_wake.wait()
            now = trio.current_time()
            for connection in list(self._connections.values()):
                since = connection.orphan_since
                if since is not None and now >= since + self.orphan_timeout:
                    connection.orphan_since = None
                    self._close(
                        connection,
                        logging.INFO,
                        "orphan",
                        f"carried no live IKE SA for {self.orphan_timeout:g}s (RFC 9329 §6.1)",
                    )

    def _forget_sa(self, local_spi: bytes) -> None:
        self._sa_gone(local_spi)
        self._untrack(local_spi)
        for esp_spi in [e for e, ike in self._esp_spis.items() if ike == local_spi]:
            del self._esp_spis[esp_spi]
        self._esp_per_sa.pop(local_spi, None)

    # ------------------------------------------------------------------ EngineInput

    def attach(self, path: Path, sink: Sink) -> None:
        key = _sink_key(path)
        if key in self._sinks:
            logger.warning("%s attached twice; the newer sink replaces the older", where(path))
        self._sinks[key] = sink
        logger.debug("attached %s", where(path) if path.connection is not None else key)
        if path.connection is not None:
            # Until its first frame the transport's first_frame_timeout applies; the
            # orphan rule (row A25) starts with the first IKE or ESP message.
            self._connections[path.connection] = _Connection(path)

    def detach(self, path: Path) -> None:
        key = _sink_key(path)
        self._sinks.pop(key, None)
        self._esp_per_connection.pop(key, None)
        if path.connection is None:
            return
        self._connections.pop(path.connection, None)
        carried = self._conn_sas.pop(path.connection, [])
        live = [s.hex() for s in carried if self._endpoint.sa(s) is not None]
        if live:
            # RFC 9329 §6.1, §10 (row A26): the IKE SA outlives its connection.
            logger.info("%s closed; IKE SA %s kept for a new connection", where(path), ", ".join(live))

    def receive_ike(self, message: bytes, path: Path) -> None:
        now = trio.current_time()
        self._counts["messages_in"] += 1
        sa = self._endpoint.find_sa(message)
        carried: list[str] = []
        if sa is None and path.connection is not None:
            carried = [s.hex() for s in self._conn_sas.get(path.connection, ()) if self._endpoint.sa(s)]
        created = self._counts["sas_created"]
        events = self._call(functools.partial(self._endpoint.receive, message, path, now), path, sa)
        connection = self._connections.get(path.connection) if path.connection is not None else None
        if connection is not None:
            self._judge(connection, message, sa, events, self._counts["sas_created"] > created)
        if carried and self._counts["sas_created"] > created:
            # RFC 9329 §6.1 (row A30): one IKE SA per connection; our policy is to process it.
            logger.info(
                "%s new IKE SA on a connection carrying live IKE SA %s: processed, the "
                "connection answers for the newest SA (RFC 9329 §6.1)",
                where(path),
                ", ".join(carried),
            )

    def receive_esp(self, packet: bytes, path: Path) -> None:
        self._counts["esp_packets"] += 1
        self._esp_per_connection[_sink_key(path)] += 1
        owner = self._esp_spis.get(packet[:4])
        if owner is None:
            self._counts["esp_unknown_spi"] += 1
        else:
            self._esp_per_sa[owner] += 1
        connection = self._connections.get(path.connection) if path.connection is not None else None
        if connection is not None:
            if owner is None:  # RFC 9329 §6.1: a few in a row are normal during a rekey (row A33)
                self._corrupt_input(connection, f"ESP with unknown SPI {packet[:4].hex()}")
            else:
                connection.corrupt = 0
            self._maybe_orphaned(connection)
        self._limiter.log(
            logger,
            logging.DEBUG,
            ("esp", _sink_key(path)),
            trio.current_time(),
            "%s ESP packet of %d octets, SPI %s%s: counted and dropped (no data plane yet)",
            where(path),
            len(packet),
            packet[:4].hex(),
            "" if owner is None else f" of IKE SA {owner.hex()}",
        )

    # ------------------------------------------------------------------ commands

    def initiate(self, settings: InitiatorSettings, path: Path) -> IkeSa:
        """Start an IKE SA as initiator on ``path`` (a sink must be attached for it)."""
        sa = self._endpoint.initiate(settings, path, trio.current_time())
        self._after_core(None, sa)
        return sa

    def request_liveness_check(self, local_spi: bytes) -> None:
        """An empty INFORMATIONAL request on ``sa.path`` (RFC 7296 §2.4; RFC 9329 §6.2 over TCP)."""
        sa = self._established(local_spi)
        try:
            self._endpoint.request_liveness_check(sa, trio.current_time())
        finally:
            self._after_core(None, sa)

    def request_delete(self, local_spi: bytes) -> None:
        """An INFORMATIONAL Delete of the IKE SA (RFC 7296 §1.4.1)."""
        sa = self._established(local_spi)
        try:
            self._endpoint.request_delete(sa, trio.current_time())
        finally:
            self._after_core(None, sa)

    def _established(self, local_spi: bytes) -> IkeSa:
        sa = self._endpoint.sa(local_spi)
        if sa is None or sa.state is not IkeSaState.ESTABLISHED:
            raise LocalError(f"no established IKE SA with our SPI {local_spi.hex()}")
        return sa

    # ------------------------------------------------------------------ read-only views

    def sa(self, local_spi: bytes) -> IkeSa | None:
        """The live IKE SA with our SPI ``local_spi``."""
        return self._endpoint.sa(local_spi)

    def connection_sas(self, connection: int) -> tuple[bytes, ...]:
        """Our SPIs of the IKE SAs whose path is ``connection``, newest last."""
        return tuple(self._conn_sas.get(connection, ()))

    @property
    def stats(self) -> EngineStats:
        counts = self._counts
        return EngineStats(
            ike_sas=sum(1 for _ in self._endpoint.sas),
            half_open=self._endpoint.half_open_count,
            sa_tasks=sum(1 for r in self._runners.values() if r.spawned),
            connections=sum(1 for k in self._sinks if isinstance(k, int)),
            udp_sockets=sum(1 for k in self._sinks if not isinstance(k, int)),
            messages_in=counts["messages_in"],
            messages_out=counts["messages_out"],
            sends_dropped=counts["sends_dropped"],
            internal_errors=counts["internal_errors"],
            esp_packets=counts["esp_packets"],
            esp_unknown_spi=counts["esp_unknown_spi"],
            esp_per_connection=MappingProxyType(dict(self._esp_per_connection)),
            esp_per_sa=MappingProxyType(dict(self._esp_per_sa)),
            closed_corrupt=counts["closed_corrupt"],
            closed_orphan=counts["closed_orphan"],
        )

    # ------------------------------------------------------------------ after every core call

    def _call(
        self, action: Callable[[], None], input_path: Path | None, touched: IkeSa | None
    ) -> list[Event]:
        """Run ``action`` on the core; a bug there is logged, never passed to the transport.

        Returns the events the call produced, in order.
        """
        events: list[Event] = []
        try:
            action()
        except Exception:
            self._counts["internal_errors"] += 1
            logger.exception("internal error handling %s", where(input_path) if input_path else "a timer")
        finally:
            events = self._after_core(input_path, touched)
        return events

    def _after_core(self, input_path: Path | None, touched: IkeSa | None) -> list[Event]:
        for sa in self._endpoint.new_sas():
            self._start(sa)
        for outgoing in self._endpoint.messages_to_send():
            self._route(outgoing)
        events: list[Event] = []
        while (event := self._endpoint.next_event()) is not None:
            events.append(event)
            self._dispatch(event, input_path)
        if touched is not None:
            self._track(touched)
            runner = self._runners.get(touched.local_spi)
            if runner is not None:
                runner.wake.set()  # its timer may have changed
        return events

    def _start(self, sa: IkeSa) -> None:
        self._counts["sas_created"] += 1
        runner = _SaRunner(sa)
        self._runners[sa.local_spi] = runner
        self._spawn(runner)
        self._track(sa)
        connection = self._connections.get(sa.path.connection) if sa.path.connection is not None else None
        if connection is not None:
            self._carry(connection, sa.local_spi)
        if sa.is_original_initiator:
            logger.info("%s %s IKE_SA_INIT #0 request sent", where(sa.path), spis(sa.spi_i))
        else:
            logger.info(
                "%s %s IKE_SA_INIT #0 answered: proposal %s; half-open until IKE_AUTH",
                where(sa.path),
                spis(sa.spi_i, sa.spi_r),
                sa.proposal,
            )

    def _route(self, outgoing: Outgoing) -> None:
        path = outgoing.path
        key = _sink_key(path)
        sink = self._sinks.get(key)
        if sink is None and path.connection is None:
            sink = self._sinks.get((_WILDCARD[path.local_address.version], path.local_port))
        sent = False
        if sink is not None:
            try:
                sent = sink.send_ike(outgoing.data, path)
            except Exception:  # a sink must not raise; one that does loses this message only
                self._counts["internal_errors"] += 1
                logger.exception("%s sink raised", where(path))
        if sent:
            self._counts["messages_out"] += 1
            return
        self._counts["sends_dropped"] += 1
        self._limiter.log(
            logger,
            logging.INFO,
            ("unsent", key),
            trio.current_time(),
            "%s %s: message of %d octets dropped",
            where(path),
            "connection gone" if sink is None else "send queue full or closing",
            len(outgoing.data),
        )

    def _dispatch(self, event: Event, input_path: Path | None) -> None:
        spi_i = event.spi_i
        spi_r = getattr(event, "spi_r", b"")
        sa = self._sa_of(spi_i, spi_r)
        path = sa.path if sa is not None else input_path
        if isinstance(event, ChildSaEstablished) and sa is not None:
            self._esp_spis[event.inbound_spi] = sa.local_spi
        elif isinstance(event, ChildSaDeleted):
            self._esp_spis.pop(event.inbound_spi, None)
        elif isinstance(event, IkeSaClosed) and sa is not None:
            self._untrack(sa.local_spi)
            self._sa_gone(sa.local_spi)
            runner = self._runners.get(sa.local_spi)
            if runner is not None:
                runner.wake.set()  # its task ends
        if isinstance(event, MessageDropped):
            key = ("dropped", path.remote_address if path is not None else None)
            self._limiter.log(
                logger, logging.INFO, key, trio.current_time(), "%s", describe_event(event, path)
            )
        else:
            logger.log(event_level(event), "%s", describe_event(event, path))
        for observer in self.observers:
            try:
                observer.observe(event, path)
            except Exception:
                self._counts["internal_errors"] += 1
                logger.exception("observer %r failed", observer)

    def _sa_of(self, spi_i: bytes, spi_r: bytes) -> IkeSa | None:
        """The SA an event names: ours by SPIr as responder, by SPIi as initiator."""
        runner = self._runners.get(spi_r) if spi_r else None
        if runner is not None and not runner.sa.is_original_initiator and runner.sa.spi_i == spi_i:
            return runner.sa
        runner = self._runners.get(spi_i)
        if runner is not None and runner.sa.is_original_initiator:
            return runner.sa
        return None

    # ------------------------------------------------------------------ judging connections (A25, A32, A33)

    def _judge(
        self, connection: _Connection, message: bytes, sa: IkeSa | None, events: list[Event], created: bool
    ) -> None:
        """Count corrupt IKE input on ``connection``, note the live SA it carries, restart its grace."""
        first_request = _is_ike_sa_init_request(message)
        unparsed = [
            event
            for event in events
            if isinstance(event, IkeSaInitRefused) and event.notify is NotifyType.INVALID_SYNTAX
        ]
        if unparsed:
            self._corrupt_input(connection, f"IKE_SA_INIT refused: {unparsed[-1].reason}")
        elif created or any(isinstance(event, (*_ANSWERED, IkeSaInitRefused)) for event in events):
            connection.corrupt = 0
            if sa is not None and self._endpoint.sa(sa.local_spi) is sa:
                self._carry(connection, sa.local_spi)  # an authenticated message of a live SA
        elif not first_request:  # a new IKE_SA_INIT is dropped only for our limits or its version
            dropped = [event for event in events if isinstance(event, MessageDropped)]
            if dropped:
                self._corrupt_input(connection, f"IKE message dropped: {dropped[-1].reason}")
        if first_request and not unparsed and not connection.carried and not connection.closing:
            # Refused (INVALID_KE_PAYLOAD, INVALID_MAJOR_VERSION, ...): the grace period starts
            # again, so that the retry finds the connection open (RFC 9329 §6.4, row A43).
            self._orphaned(connection)
        self._maybe_orphaned(connection)

    def _corrupt_input(self, connection: _Connection, what: str) -> None:
        """One more corrupt input in a row (RFC 9329 §6.1, rows A32, A33, A64)."""
        connection.corrupt += 1
        if connection.corrupt >= self.corrupt_messages_max:
            count, connection.corrupt = connection.corrupt, 0
            self._close(
                connection,
                logging.WARNING,
                "corrupt",
                f"{count} consecutive corrupt messages, the last one: {what} (RFC 9329 §6.1)",
            )

    def _carry(self, connection: _Connection, local_spi: bytes) -> None:
        connection.carried.add(local_spi)
        connection.orphan_since = None

    def _maybe_orphaned(self, connection: _Connection) -> None:
        """Start the grace period of a connection that has carried frames but no live IKE SA."""
        if not connection.carried and connection.orphan_since is None and not connection.closing:
            self._orphaned(connection)

    def _orphaned(self, connection: _Connection) -> None:
        """``connection`` carries no live IKE SA from now on: its grace period (re)starts (row A25)."""
        connection.orphan_since = trio.current_time()
        self._orphan_wake.set()

    def _sa_gone(self, local_spi: bytes) -> None:
        for connection in self._connections.values():
            if local_spi in connection.carried:
                connection.carried.discard(local_spi)
                self._maybe_orphaned(connection)

    def _close(self, connection: _Connection, level: int, kind: str, reason: str) -> None:
        """End ``connection`` through its sink, never its IKE SAs; logged (rate-limited per peer)."""
        sink = self._sinks.get(_sink_key(connection.path))
        if sink is None or connection.closing:
            return
        connection.closing, connection.orphan_since = True, None
        self._counts[f"closed_{kind}"] += 1
        path = connection.path
        key = (kind, path.remote_address)
        self._limiter.log(logger, level, key, trio.current_time(), "%s closed: %s", where(path), reason)
        try:
            sink.close(reason)
        except Exception:  # a sink must not raise; one that does stays open
            self._counts["internal_errors"] += 1
            logger.exception("%s sink.close raised", where(path))

    # ------------------------------------------------------------------ which SAs a connection carries

    def _track(self, sa: IkeSa) -> None:
        local_spi = sa.local_spi
        new = sa.path.connection
        if sa.state is IkeSaState.CLOSED or new is None:
            self._untrack(local_spi)  # closed, or now on UDP: no connection carries it
            return
        if new not in self._sinks:
            return  # a connection already gone carries nothing; remember the last one for the log
        old = self._sa_conn.get(local_spi)
        if old == new:
            return
        self._untrack(local_spi)
        self._sa_conn[local_spi] = new
        self._conn_sas.setdefault(new, []).append(local_spi)
        if old is not None:
            # RFC 9329 §6.1 (rows A28, A36): answer on the connection of the last valid message.
            logger.info("%s %s now sent on connection %d (was %d)", where(sa.path), spis(*sa.spis), new, old)

    def _untrack(self, local_spi: bytes) -> None:
        old = self._sa_conn.pop(local_spi, None)
        if old is not None:
            carried = self._conn_sas.get(old)
            if carried is not None and local_spi in carried:
                carried.remove(local_spi)


def _is_ike_sa_init_request(message: bytes) -> bool:
    """A new IKE_SA_INIT request (responder SPI zero) of any IKE version, by its fixed header octets.

    RFC 7296 §3.1: SPIr at octets 8-15, Exchange Type at 18, the Response flag (0x20) at 19.
    """
    return (
        len(message) >= IKE_HEADER_SIZE
        and message[18] == ExchangeType.IKE_SA_INIT
        and not message[19] & 0x20
        and message[8:16] == bytes(8)
    )


def _sink_key(path: Path) -> SinkKey:
    return path.connection if path.connection is not None else (path.local_address, path.local_port)
