"""The endpoint: every IKE SA by SPI, IKE_SA_INIT admission, stream connections, timers.

Strategy: the transports hand every IKE message (unframed) to
:meth:`Endpoint.receive` together with the :class:`~responder.core.path.Path`
it came on and the time; it returns a typed
:class:`~responder.core.outcomes.ReceiveOutcome`, so the shell never parses
IKE bytes.  The endpoint:

* decodes only the header, to find the SA by our own SPI (never by address
  or port: peers may come back from a new address or connection, RFC 9329
  §6.1, row A28), and hands the message to :mod:`responder.core.dispatch`;
* admits new IKE_SA_INIT requests: a copy of a request already answered gets
  the same response while the SA still keeps it, and is ignored once
  IKE_AUTH began (found by a hash of the whole message, RFC 7296 §2.1, row
  B5); past a half-open budget (per kind of transport, per source, per
  stream connection: :mod:`responder.core.admission`) or ``ike_sa_max`` SAs,
  new requests are dropped; a request with a zero SPIi is dropped (RFC 7296
  §3.1); above ``limits.cookie_threshold`` half-open SAs over UDP a COOKIE is
  asked for, over UDP only (over TCP RFC 9329 §6.3 advises against a COOKIE
  without a puzzle, row A40, and the half-open budgets defend instead);
* limits the rate of its answers to unprotected messages, per source and in
  all (RFC 7296 §2.21.4): what is over the rate is dropped;
* answers an unsupported major version with INVALID_MAJOR_VERSION
  (RFC 7296 §2.5, row B9);
* applies the RFC 9329 §6.1 connection rules to every message and ESP packet
  on a stream (:class:`~responder.core.connection.ConnectionRules`);
* knows each Child SA's inbound ESP SPI, so an ESP packet finds its IKE SA;
* keeps every deadline (SAs and connections) in a heap, and counts half-open
  SAs as they change state: no call looks at every SA;
* collects what the SAs queue, takes the IKE SAs they spawn (an IKE SA
  rekey), and forgets an SA, its leases and its ESP SPIs included, once it
  is closed;
* knows the IKE SAs of each peer identity, so that an IKE_AUTH with
  INITIAL_CONTACT ends the older ones (RFC 7296 §2.4);
* notes every SA whose deadline a call may have moved (:meth:`touched`), for
  a shell that runs one timer task per SA.

Like the SAs, it never reads a clock and never draws randomness itself.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping

import attrs

from responder.core import dispatch
from responder.core.admission import HalfOpenBudgets, ReplyRate
from responder.core.config import Config, PubkeyAuth
from responder.core.connection import ConnectionRules, StreamConnection
from responder.core.cookies import CookieJar
from responder.core.data_plane import DataPlane
from responder.core.deadlines import Deadlines
from responder.core.enums import ExchangeType, NotifyType
from responder.core.errors import DecodeError, InvalidMajorVersion, LocalError
from responder.core.esp import Dropped, Opened
from responder.core.events import (
    ChildSaDeleted,
    ChildSaEstablished,
    ChildSasMoved,
    EspSaRemoved,
    Event,
    IkeSaEstablished,
    IkeSaInitRefused,
    MessageAccepted,
    MessageDropped,
    MessageSent,
    RetransmissionAnswered,
)
from responder.core.exchanges import ike_sa_init
from responder.core.exchanges.base import Exchange
from responder.core.exchanges.common import fresh_spi
from responder.core.exchanges.informational import DeleteIkeSa, LivenessCheck
from responder.core.ike_sa import IkeSa, IkeSaState, ResponderFactory, Services
from responder.core.initiator import InitiatorSettings
from responder.core.instant import Instant
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.messages import (
    HEADER_SIZE,
    Header,
    Message,
    decode_header,
    decode_message,
    encode_message,
    is_new_sa_request,
)
from responder.core.outcomes import ReceiveOutcome, Verdict
from responder.core.path import Outgoing, Path
from responder.core.payloads import NotifyPayload
from responder.core.pool import PoolAllocator
from responder.core.summary import payload_summary

__all__ = ["Endpoint", "Reconfigured"]


@attrs.frozen
class Reconfigured:
    """What :meth:`Endpoint.reconfigure` did: how many established IKE SAs a peer still covers,
    and our SPIs of those that no peer covers any more (being deleted)."""

    kept: int
    ended: tuple[bytes, ...]


@attrs.define(eq=False)
class Endpoint:
    """All IKE SAs of one responder (or initiator) process.

    ``responders`` replaces the legality table (:data:`responder.core.dispatch.RESPONDERS`):
    a program that embeds the core can add exchanges of its own.
    """

    config: Config
    random_bytes: Callable[[int], bytes]
    ke_factory: KeyExchangeFactory
    responders: Mapping[tuple[IkeSaState, ExchangeType], ResponderFactory] = dispatch.RESPONDERS
    _services: Services = attrs.field(init=False)
    _sas: dict[bytes, IkeSa] = attrs.field(init=False, factory=dict)  # our SPI -> SA
    _half_open: HalfOpenBudgets = attrs.field(init=False)  # SAs in INIT_DONE, by kind, source, connection
    _replies: ReplyRate = attrs.field(init=False)  # answers to unprotected messages (RFC 7296 §2.21.4)
    # SHA-256 of each answered IKE_SA_INIT request -> its SA, kept while the SA lives,
    # so that a late copy never starts a second SA (RFC 7296 §2.1, row B5).
    _init_digests: dict[bytes, IkeSa] = attrs.field(init=False, factory=dict)
    _digest_of: dict[bytes, bytes] = attrs.field(init=False, factory=dict)  # our SPI -> that digest
    _esp: dict[bytes, bytes] = attrs.field(init=False, factory=dict)  # inbound ESP SPI -> our IKE SPI
    _deadlines: Deadlines[bytes] = attrs.field(init=False, factory=Deadlines)  # our SPI -> next timer
    _connections: ConnectionRules = attrs.field(init=False)
    _cookies: CookieJar = attrs.field(init=False)
    _outgoing: list[Outgoing] = attrs.field(init=False, factory=list)
    _events: deque[Event] = attrs.field(init=False, factory=deque)
    _new: list[IkeSa] = attrs.field(init=False, factory=list)  # created since the last new_sas()
    _touched: set[bytes] = attrs.field(init=False, factory=set)  # our SPIs whose deadline may have moved
    _by_identity: dict[str, set[bytes]] = attrs.field(init=False, factory=dict)  # remote ID -> our SPIs
    _data_plane: DataPlane = attrs.field(init=False)
    #: What became of the last ESP packet :meth:`receive_esp` took (for the shell's log line).
    last_esp: str = attrs.field(init=False, default="")

    def __attrs_post_init__(self) -> None:
        pools = {pool.name: PoolAllocator(pool) for pool in self.config.pools}
        self._services = Services(
            self.config, self.random_bytes, self.ke_factory, pools, self.responders, lambda: len(self._sas)
        )
        self._data_plane = DataPlane(self.random_bytes, intern=self._services.intern)
        limits = self.config.limits
        self._cookies = CookieJar(self.random_bytes, limits.cookie_secret_lifetime)
        self._connections = ConnectionRules(limits)
        self._half_open = HalfOpenBudgets(limits)
        self._replies = ReplyRate(
            limits.unprotected_replies_per_source,
            limits.unprotected_replies_max,
            limits.half_open_ipv6_prefix,
        )

    # ------------------------------------------------------------------ output

    def messages_to_send(self) -> list[Outgoing]:
        """Messages queued since the last call, oldest first."""
        out, self._outgoing = self._outgoing, []
        return out

    def next_event(self) -> Event | None:
        """The oldest event not yet taken, or ``None``."""
        return self._events.popleft() if self._events else None

    def new_sas(self) -> list[IkeSa]:
        """SAs created since the last call (an answered IKE_SA_INIT, a rekey, :meth:`initiate`), oldest first.

        The shell starts one timer task per SA from this list; an SA that is
        already closed again is still listed once.  Like :meth:`messages_to_send`
        and :meth:`next_event`, the list grows until it is taken.
        """
        out, self._new = self._new, []
        return out

    def touched(self) -> set[bytes]:
        """Our SPIs of the SAs whose deadline may have moved since the last call (their timer tasks
        look again); it includes SAs a call changed besides the one it named (an heir, an SA ended
        by INITIAL_CONTACT)."""
        out, self._touched = self._touched, set()
        return out

    # ------------------------------------------------------------------ views

    def sa(self, local_spi: bytes) -> IkeSa | None:
        """The live IKE SA with our SPI ``local_spi``."""
        return self._sas.get(local_spi)

    @property
    def sas(self) -> Iterator[IkeSa]:
        """Every live IKE SA (a snapshot)."""
        return iter(list(self._sas.values()))

    @property
    def ike_sa_count(self) -> int:
        return len(self._sas)

    @property
    def half_open_count(self) -> int:
        return len(self._half_open)

    @property
    def replies_held_back(self) -> int:
        """Answers to unprotected messages not sent, over their rate (RFC 7296 §2.21.4), since the start."""
        return self._replies.held_back

    def connection(self, connection: int) -> StreamConnection | None:
        """What the RFC 9329 §6.1 rules know of an attached stream connection."""
        return self._connections.get(connection)

    # ------------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        """The earliest deadline of any SA or stream connection, or ``None``."""
        sa, connection = self._deadlines.earliest(), self._connections.get_timer()
        if sa is None or connection is None:
            return sa if connection is None else connection
        return min(sa, connection)

    def handle_timer(self, now: float, *, wall: float | None = None) -> None:
        """Run every SA and connection timer that is due."""
        due = self._deadlines.due(now)
        for index, local_spi in enumerate(due):
            sa = self._sas.get(local_spi)
            if sa is None:
                continue
            try:
                self._run_timer(sa, now, wall)
            except BaseException:  # a bug: keep the deadlines of the SAs not yet run
                for rest in due[index + 1 :]:
                    if (other := self._sas.get(rest)) is not None:
                        self._deadlines.set(rest, other.get_timer())
                raise
        self.handle_connection_timers(now)

    def handle_sa_timer(self, local_spi: bytes, now: float, *, wall: float | None = None) -> None:
        """Run one SA's timer if its deadline has come (a shell with one task per SA calls this).

        Does nothing for an SA this endpoint no longer holds or whose
        deadline is still ahead.
        """
        sa = self._sas.get(local_spi)
        deadline = sa.get_timer() if sa is not None else None
        if sa is not None and deadline is not None and now >= deadline:
            self._run_timer(sa, now, wall)

    def _run_timer(self, sa: IkeSa, now: float, wall: float | None) -> None:
        when = Instant(now, wall)
        deadline = sa.get_timer()
        if deadline is not None and now >= deadline:
            dispatch.handle_timer(sa, when)
        self._collect(sa, when)

    def connection_timer(self) -> float | None:
        """The earliest deadline of the RFC 9329 §6.1 connection rules, or ``None``."""
        return self._connections.get_timer()

    def handle_connection_timers(self, now: float) -> None:
        """Close the stream connections whose grace period has run out (row A25)."""
        self._connections.handle_timer(now)
        self._events.extend(self._connections.closing())

    # ------------------------------------------------------------------ stream connections

    def attach_connection(self, path: Path) -> None:
        """A stream connection's "IKETCP" prefix arrived: its messages come with ``path`` (RFC 9329 §6.1)."""
        if path.connection is None:
            raise LocalError("attach_connection takes a TCP or TLS path")
        self._connections.attach(path)

    def detach_connection(self, connection: int) -> None:
        """A stream connection is gone; its IKE SAs stay (RFC 9329 §6.1, row A26)."""
        self._connections.detach(connection)

    # ------------------------------------------------------------------ input

    def receive(self, data: bytes, path: Path, now: float, *, wall: float | None = None) -> ReceiveOutcome:
        """Handle one IKE message (without non-ESP marker or RFC 9329 length) that arrived on ``path``."""
        mark = len(self._events)
        outcome = self._receive(data, path, Instant(now, wall))
        if path.connection is not None:
            live = outcome.local_spi in self._sas
            self._connections.on_ike(path, outcome, self._last_reason(mark), live, now)
            self._events.extend(self._connections.closing())
        return outcome

    def receive_esp(self, packet: bytes, path: Path, now: float, ecn: int = 0) -> bytes | None:
        """One ESP packet (RFC 4303): our SPI of the IKE SA whose Child SA it is for, or ``None``.

        The packet is opened by its Child SA's ESP SA (replay window, integrity,
        padding: :mod:`responder.core.esp`) and its inner packet goes to the
        child's backend (:mod:`responder.core.data_plane`); an echo answer is
        queued like any message.  ``ecn`` is the outer header's ECN field (over
        UDP; RFC 6040 §4.2).  A byte, packet or sequence number limit the pair
        reaches starts its rekey or Delete.  :attr:`last_esp` says what became
        of it.  On a stream, the RFC 9329 §6.1 rules count ESP to unknown SPIs as corrupt.
        """
        spi = packet[:4]
        owner = self._esp.get(spi)
        result: Opened | Dropped | None = None
        if owner is not None:
            result, replies = self._data_plane.receive(owner, packet, path, ecn)
            self._outgoing += replies
            if self._data_plane.limits_reached:
                self._limits_reached(now)
            if isinstance(result, Dropped):
                self.last_esp = f"dropped: {result.reason.value}"
            else:
                self.last_esp = "answered (echo)" if replies else "delivered"
                self._esp_heard(owner, path, now)
        else:
            self.last_esp = "unknown SPI"
        if path.connection is not None:
            opened = owner if isinstance(result, Opened) else None
            self._connections.on_esp(path, owner is not None, spi, now, opened)
            self._events.extend(self._connections.closing())
        return owner

    def _esp_heard(self, owner: bytes, path: Path, now: float) -> None:
        """ESP that authenticated moves the SA's path and shows the peer alive, as a valid IKE
        message does (RFC 9329 §6.1 row A36, RFC 7296 §2.4)."""
        sa = self._sas.get(owner)
        if sa is None:
            return
        # The usual case, per packet: a later liveness deadline only; the SA's timer, waking at the
        # earlier one, finds nothing due and looks again.  (``is`` first: the shell reuses paths.)
        if path is sa.path or path == sa.path:
            sa.last_heard = now
            return
        when = Instant(now)
        dispatch.heard(sa, path, when)
        self._collect(sa, when)
        self._deadlines.set(owner, sa.get_timer())

    @property
    def data_plane(self) -> DataPlane:
        """Every Child SA's ESP SA, and the inner packets queued for the API backend."""
        return self._data_plane

    def send_inner(
        self, local_spi: bytes | None, child: bytes, packet: bytes, next_header: int, now: float
    ) -> bool:
        """Send ``packet`` through the Child SA with our inbound SPI ``child`` of the IKE SA
        ``local_spi`` (``None``: whichever holds it, for the TUN backend's :meth:`DataPlane.route`),
        as ESP on the SA's path; ``False`` when there is no such Child SA or it is past a hard
        limit.  ``now`` times the rekey or Delete a limit starts."""
        sa = self._sas.get(self._esp.get(child, b"") if local_spi is None else local_spi)
        if sa is None or child not in sa.children:
            return False
        sealed = self._data_plane.seal(child, packet, next_header, sa.path)
        self._limits_reached(now)
        if sealed is None:
            return False
        self._outgoing.append(sealed)
        return True

    def _limits_reached(self, now: float) -> None:
        """Rekey or delete the Child SAs whose traffic reached a soft or hard limit (RFC 4301 §4.4.2.1)."""
        for reached in self._data_plane.take_limits():
            sa = self._sas.get(self._esp.get(reached.inbound_spi, b""))
            if sa is not None:
                when = Instant(now)
                if not dispatch.child_limit(sa, reached, when):
                    self._data_plane.rearm(reached)  # the IKE SA could not act: a later packet asks again
                self._collect(sa, when)

    def _last_reason(self, mark: int) -> str:
        """Why the message just handled was dropped or refused, for the connection judge's log line."""
        for index in range(len(self._events) - 1, mark - 1, -1):
            event = self._events[index]
            if isinstance(event, MessageDropped | IkeSaInitRefused):
                return event.reason
        return ""

    def _receive(self, data: bytes, path: Path, when: Instant) -> ReceiveOutcome:
        try:
            header, _, _ = decode_header(data)
        except InvalidMajorVersion as error:
            self._answer_major_version(data, path, error, when.now)
            return ReceiveOutcome(Verdict.REFUSED if is_new_sa_request(data) else Verdict.CORRUPT)
        except DecodeError as error:
            self._events.append(MessageDropped(f"from {path.describe()}: {error}"))
            return ReceiveOutcome(Verdict.CORRUPT)
        if is_new_sa_request(data):
            if header.spi_i == bytes(8):  # RFC 7296 §3.1: SPIi "MUST NOT be zero"
                reason = f"IKE_SA_INIT from {path.describe()} with a zero initiator SPI (RFC 7296 §3.1)"
                self._events.append(MessageDropped(reason))
                return ReceiveOutcome(Verdict.MALFORMED)
            return self._receive_ike_sa_init(data, header, path, when)
        local_spi = header.spi_r if header.is_initiator else header.spi_i
        sa = self._sas.get(local_spi)
        if (
            sa is None
            or sa.spi_i != header.spi_i
            or (sa.spi_r != header.spi_r and sa.state is not IkeSaState.INIT_SENT)
        ):
            # RFC 7296 §2.21.4: MAY answer INVALID_IKE_SPI; silence is the safer choice.
            reason = f"{header.exchange_type.name} from {path.describe()} for unknown SPIs"
            self._events.append(MessageDropped(reason, b"", header.spi_i, header.spi_r))
            return ReceiveOutcome(Verdict.CORRUPT)
        verdict = dispatch.receive(sa, data, header, path, when)
        self._collect(sa, when)
        return ReceiveOutcome(verdict, sa.local_spi)

    def _receive_ike_sa_init(self, data: bytes, header: Header, path: Path, when: Instant) -> ReceiveOutcome:
        digest = hashlib.sha256(data).digest()
        known = self._init_digests.get(digest)
        if known is not None:
            stored = known.layer.stored_response(0, data)
            if stored is not None:
                # RFC 7296 §2.1: a retransmission belonging to a half-open SA gets the same response.
                if not self._reply_allowed(path, header, when.now):
                    return ReceiveOutcome(Verdict.LIMITED, known.local_spi)
                self._outgoing += [Outgoing(path, packet) for packet in stored]
                self._events.append(RetransmissionAnswered(*known.ids, 0))
                return ReceiveOutcome(Verdict.RETRANSMISSION, known.local_spi)
            # RFC 7296 §2.1: one that belongs to an IKE SA whose IKE_AUTH request has
            # already been received is ignored.
            reason = "copy of the IKE_SA_INIT request after IKE_AUTH began: ignored (RFC 7296 §2.1)"
            self._events.append(MessageDropped(reason, *known.ids))
            return ReceiveOutcome(Verdict.IGNORED, known.local_spi)
        limits = self.config.limits
        # Past half_open_max a source holding fewer half-open SAs than the greediest may still
        # get in: the greediest one's oldest is ended once this request has proven its source.
        sharing = self._half_open.fair_share_victim(path, self._busy) is not None
        over = self._half_open.refusal(path, sharing=sharing)
        if over is None and len(self._sas) >= limits.ike_sa_max:
            over = f"ike_sa_max ({limits.ike_sa_max}) reached"
        if over is not None:
            reason = f"IKE_SA_INIT from {path.describe()}: {over}"
            self._events.append(MessageDropped(reason, b"", header.spi_i))
            return ReceiveOutcome(Verdict.LIMITED)
        try:
            message = decode_message(data)
        except DecodeError as error:
            self._refuse_undecodable(header, path, error, when.now)
            # An unknown critical payload parses far enough to be refused by name (RFC 7296 §2.5).
            malformed = error.answer in (NotifyType.INVALID_SYNTAX, None)
            return ReceiveOutcome(Verdict.MALFORMED if malformed else Verdict.REFUSED)
        # Over UDP only a request with a valid COOKIE (its source address proven) may end
        # another source's half-open SA.
        cookie_required = self.config.impair.force_cookie or (
            not path.transport.is_stream
            and (sharing or self._half_open.of_kind(path) >= limits.cookie_threshold)
        )  # the force_cookie impairment asks on every transport (RFC 9329 §6.3 has it not)
        outcome = ike_sa_init.respond(
            services=self._services,
            cookies=self._cookies,
            cookie_required=cookie_required,
            data=data,
            message=message,
            path=path,
            when=when,
        )
        if isinstance(outcome, ike_sa_init.InitRefusal):
            # COOKIE and INVALID_KE_PAYLOAD are steps of a normal handshake (RFC 7296 §1.2, §2.6):
            # only their source's bucket applies, so a flood from elsewhere cannot starve them.
            routine = outcome.notify in (NotifyType.COOKIE, NotifyType.INVALID_KE_PAYLOAD)
            if self._reply_allowed(path, header, when.now, routine=routine):
                self._outgoing.append(Outgoing(path, outcome.response))
            self._events.append(IkeSaInitRefused(header.spi_i, outcome.notify, outcome.reason))
            malformed = outcome.notify is NotifyType.INVALID_SYNTAX
            return ReceiveOutcome(Verdict.MALFORMED if malformed else Verdict.REFUSED)
        if sharing:
            self._evict_half_open(path, when)
        self._init_digests[digest] = outcome
        self._digest_of[outcome.local_spi] = digest
        self._half_open.add(outcome.local_spi, path)
        names = payload_summary(message.payloads)
        outcome.emit(MessageAccepted(*outcome.ids, ExchangeType.IKE_SA_INIT, 0, False, names))
        self._adopt(outcome, when)
        return ReceiveOutcome(Verdict.CREATED, outcome.local_spi)

    def _busy(self, local_spi: bytes) -> bool:
        """Whether a half-open SA is in the middle of an exchange (an IKE_AUTH answer deferred)."""
        sa = self._sas.get(local_spi)
        return sa is not None and bool(sa.deferred or sa.continuing)

    def _evict_half_open(self, path: Path, when: Instant) -> None:
        """End the half-open SA whose place a request from ``path`` takes (fair share, see admission)."""
        chosen = self._half_open.fair_share_victim(path, self._busy)
        if chosen is None:
            return
        local_spi, why = chosen
        victim = self._sas.get(local_spi)
        if victim is None:  # cannot happen: the budgets forget an SA when the endpoint does
            self._half_open.remove(local_spi)
            return
        victim.close(f"half-open IKE SA ended to make room: {why}")
        self._collect(victim, when)

    def _reply_allowed(self, path: Path, request: Header, now: float, *, routine: bool = False) -> bool:
        """Whether an answer to an unprotected message may go to ``path``'s source now (RFC 7296 §2.21.4).

        Over TCP and TLS always: the handshake proved the source, so nothing is
        reflected to a forged address, and what one connection asks for is
        paced by its own sending (back-pressure).  Over UDP within the
        source's bucket and, unless ``routine``, the bucket for all.
        """
        if path.transport.is_stream or self._replies.allow(path, now, overall=not routine):
            return True
        reason = (
            f"answer to {path.describe()} not sent: unprotected replies over their rate (RFC 7296 §2.21.4)"
        )
        self._events.append(MessageDropped(reason, b"", request.spi_i))
        return False

    def _refuse_undecodable(self, request: Header, path: Path, error: DecodeError, now: float) -> None:
        """An IKE_SA_INIT that does not decode: answer its notify unprotected (RFC 7296 §2.21.1)."""
        notify = error.answer
        self._events.append(IkeSaInitRefused(request.spi_i, notify or NotifyType.INVALID_SYNTAX, str(error)))
        if notify is not None and self._reply_allowed(path, request, now):
            refusal = ike_sa_init.refuse(request, notify, str(error), error.notify_data)
            self._outgoing.append(Outgoing(path, refusal.response))

    def _answer_major_version(self, data: bytes, path: Path, error: InvalidMajorVersion, now: float) -> None:
        """RFC 7296 §2.5: drop, and SHOULD answer INVALID_MAJOR_VERSION with version 2.0.

        Only requests are answered (never a response, to avoid loops); the reply
        copies the SPIs, exchange type and Message ID, in a header of our own.
        """
        self._events.append(MessageDropped(f"from {path.describe()}: {error}"))
        if len(data) < HEADER_SIZE or data[19] & 0x20:
            return
        response = Header(
            spi_i=data[0:8],
            spi_r=data[8:16],
            exchange_type=ExchangeType(data[18]),
            is_initiator=False,
            is_response=True,
            message_id=int.from_bytes(data[20:24], "big"),
        )
        if not self._reply_allowed(path, response, now):
            return
        notify = NotifyPayload(NotifyType.INVALID_MAJOR_VERSION)
        self._outgoing.append(Outgoing(path, encode_message(Message(response, (notify,)))))

    # ------------------------------------------------------------------ commands

    def initiate(
        self, settings: InitiatorSettings, path: Path, now: float, *, wall: float | None = None
    ) -> IkeSa:
        """Start an IKE SA as initiator; its IKE_SA_INIT request is queued."""
        sa = IkeSa(
            services=self._services,
            is_original_initiator=True,
            spi_i=fresh_spi(self.random_bytes, 8),
            spi_r=bytes(8),
            path=path,
            created_at=now,
            settings=settings,
        )
        self._sas[sa.local_spi] = sa
        self._new.append(sa)
        when = Instant(now, wall)
        dispatch.start(sa, ike_sa_init.IkeSaInitInitiator(), when)
        self._collect(sa, when)
        return sa

    def reconfigure(self, config: Config, now: float) -> Reconfigured:
        """Take a new configuration (a reload) and keep the IKE SAs it still allows.

        From now on every decision reads ``config``: proposals, peers, pools,
        limits, certificates.  An established IKE SA whose authenticated identity
        a peer of the new configuration still covers, with the method it
        authenticated with, stays and takes that peer's policy (children for
        later Child SAs, lifetimes from its next rekey); one that no peer covers
        any more is deleted with an INFORMATIONAL Delete (RFC 7296 §1.4.1).
        Half-open SAs finish their IKE_AUTH under the new configuration.
        A pool that keeps its name keeps the leases that still fit its ranges;
        an SA whose virtual address no longer fits is deleted too.  The new
        peer's lifetimes and liveness settings apply from the SA's next rekey
        (deadlines already drawn stay).  The credentials of kept SAs are not
        checked again: a reload that revokes a certificate or changes a key
        ends those SAs only through ``terminate`` or at their lifetime.
        ``half_open_ipv6_prefix`` keeps its old value until a restart (the
        half-open counts are keyed by it).
        """
        old_limits = self.config.limits
        if config.limits.half_open_ipv6_prefix != old_limits.half_open_ipv6_prefix:
            limits = attrs.evolve(config.limits, half_open_ipv6_prefix=old_limits.half_open_ipv6_prefix)
            config = attrs.evolve(config, limits=limits)
        pools, unleased = {}, set()
        for pool in config.pools:  # a pool by the same name keeps the leases that still fit it
            pools[pool.name] = PoolAllocator(pool)
            old = self._services.pools.get(pool.name)
            if old is not None:
                unleased |= pools[pool.name].take_over(old)
        self.config = config
        self._services = attrs.evolve(self._services, config=config, pools=pools)
        self._half_open.limits = config.limits
        self._connections.limits = config.limits
        self._cookies.lifetime = config.limits.cookie_secret_lifetime
        self._replies.per_source = config.limits.unprotected_replies_per_source
        self._replies.overall = config.limits.unprotected_replies_max
        kept, ended = 0, []
        for sa in list(self._sas.values()):
            sa.services = self._services
            if sa.is_original_initiator or sa.state not in (IkeSaState.ESTABLISHED, IkeSaState.REKEYED):
                continue
            peer = None
            if sa.peer_identity is not None and sa.peer is not None:
                signature = isinstance(sa.peer.auth, PubkeyAuth)
                peer = config.find_peer(sa.peer_identity, signature=signature)
            if peer is None or sa.local_spi in unleased:
                ended.append(sa.local_spi)
                why = "no peer of the new configuration covers it"
                if peer is not None:
                    why = "its virtual address is not in the changed pool"
                if sa.state is IkeSaState.ESTABLISHED and not self.being_deleted(sa.local_spi):
                    self.request_delete(sa.local_spi, now, why)
                continue
            sa.peer, sa.peer_name = peer, peer.name
            self._touched.add(sa.local_spi)  # lifetimes and liveness checks may have moved
            kept += 1
        return Reconfigured(kept, tuple(ended))

    def request_liveness_check(self, local_spi: bytes, now: float) -> None:
        """Start an empty INFORMATIONAL request on an established SA (RFC 7296 §2.4)."""
        self.start(local_spi, LivenessCheck(), now)

    def request_delete(self, local_spi: bytes, now: float, reason: str = "deleted by us") -> None:
        """Delete an established (or rekeyed) SA with an INFORMATIONAL Delete (RFC 7296 §1.4.1)."""
        self.start(local_spi, DeleteIkeSa(reason), now)

    def being_deleted(self, local_spi: bytes) -> bool:
        """Whether a Delete of ours for the IKE SA is queued or waiting for its answer."""
        sa = self._sas.get(local_spi)
        if sa is None:
            return False
        ours = [*sa.layer.queued, *(request.exchange for request in sa.layer.pending.values())]
        return any(isinstance(exchange, DeleteIkeSa) for exchange in ours)

    def delete_all(self, now: float, reason: str = "shutting down") -> list[bytes]:
        """Start the Delete of every established or rekeyed IKE SA that is not being deleted already
        (RFC 9329 row A24, on shutdown); returns our SPIs of every SA now being deleted."""
        deleting = []
        for sa in list(self._sas.values()):
            if sa.state not in (IkeSaState.ESTABLISHED, IkeSaState.REKEYED):
                continue
            if not self.being_deleted(sa.local_spi):
                self.start(sa.local_spi, DeleteIkeSa(reason), now)
            if sa.local_spi in self._sas:  # still open: its Delete waits for an answer
                deleting.append(sa.local_spi)
        return deleting

    def start(self, local_spi: bytes, exchange: Exchange, now: float, *, wall: float | None = None) -> None:
        """Start an exchange of ours on an established SA (queued behind the peer's window); a Delete
        of the IKE SA may also go on a rekeyed one."""
        sa = self._sas.get(local_spi)
        allowed = (IkeSaState.ESTABLISHED, IkeSaState.REKEYED) if isinstance(exchange, DeleteIkeSa) else ()
        if sa is None or (sa.state is not IkeSaState.ESTABLISHED and sa.state not in allowed):
            raise LocalError(f"no established IKE SA with our SPI {local_spi.hex()}")
        when = Instant(now, wall)
        dispatch.start(sa, exchange, when)
        self._collect(sa, when)

    def resume(
        self, local_spi: bytes, message_id: int, result: object, now: float, *, wall: float | None = None
    ) -> bool:
        """Hand a deferred answer its outside work's ``result`` (an
        :class:`~responder.core.events.AnswerDeferred` named the work).

        ``False`` when nothing waits for it any more (the SA closed meanwhile).
        """
        sa = self._sas.get(local_spi)
        if sa is None:
            return False
        when = Instant(now, wall)
        resumed = dispatch.resume(sa, message_id, result, when)
        self._collect(sa, when)
        return resumed

    # ------------------------------------------------------------------ bookkeeping

    def _adopt(self, sa: IkeSa, when: Instant) -> None:
        """Take a new SA (from IKE_SA_INIT, or spawned by another SA's rekey) and send what it queued."""
        self._sas[sa.local_spi] = sa
        self._new.append(sa)
        if sa.rekeyed_from is not None:
            self._connections.inherit(sa.rekeyed_from, sa.local_spi)
        dispatch.flush(sa, when)
        self._collect(sa, when)

    def _collect(self, sa: IkeSa, when: Instant) -> None:
        self._outgoing += sa.messages_to_send()
        local_spi = sa.local_spi
        self._touched.add(local_spi)
        heirs: list[bytes] = []
        while (event := sa.next_event()) is not None:
            if isinstance(event, IkeSaEstablished):
                self._events.append(event)
                self._established(sa, when)
                continue
            if isinstance(event, ChildSaEstablished):
                self._esp[event.inbound_spi] = local_spi
                child = sa.children.get(event.inbound_spi)
                if child is not None:  # as initiator no child config: the API backend
                    config = sa.peer.child(child.name) if sa.peer is not None else None
                    self._data_plane.install(child.params, config)
            elif isinstance(event, ChildSaDeleted):
                self._esp.pop(event.inbound_spi, None)
                self._events.append(event)
                self._remove_esp(local_spi, event.inbound_spi)
                continue
            elif isinstance(event, ChildSasMoved):
                for inbound_spi in event.inbound_spis:
                    self._esp[inbound_spi] = event.heir
                for pool in self._services.pools.values():
                    pool.transfer(local_spi, event.heir)
                heirs.append(event.heir)
            self._events.append(event)
        for header, names in sa.layer.take_sent():  # after the events that led to them
            self._events.append(
                MessageSent(*sa.ids, header.exchange_type, header.message_id, header.is_response, names)
            )
        if sa.spawned:
            spawned, sa.spawned = sa.spawned, ()
            for new in spawned:
                self._adopt(new, when)
        if sa.touched:
            others, sa.touched = sa.touched, ()
            for other in others:
                if self._sas.get(other.local_spi) is other and other is not sa:
                    self._collect(other, when)
        for heir_spi in heirs:  # requests that moved with the Child SAs go out on the heir
            heir = self._sas.get(heir_spi)
            if heir is not None and heir is not sa:
                dispatch.flush(heir, when)
                self._collect(heir, when)
        if sa.state is not IkeSaState.INIT_DONE:
            self._half_open.remove(local_spi)
        if sa.state is IkeSaState.CLOSED:
            self._forget(sa, when.now)
        else:
            self._deadlines.set(local_spi, sa.get_timer())

    def _established(self, sa: IkeSa, when: Instant) -> None:
        """Index the SA by its peer's identity; with INITIAL_CONTACT, end the peer's older IKE SAs:
        it says it holds no other (RFC 7296 §2.4), so they are closed without a Delete."""
        older = self._by_identity.setdefault(sa.remote_id, set())
        if sa.initial_contact and sa.rekeyed_from is None:
            for spi in sorted(older):
                other = self._sas.get(spi)
                # Only the same authenticated peer: the same configured peer and method, so that
                # a shared key's holder cannot end a certificate peer's SA by naming its identity.
                if other is not None and other is not sa and other.same_principal(sa):
                    other.close(f"INITIAL_CONTACT from {sa.remote_id} in the new IKE SA {sa.local_spi.hex()}")
                    self._collect(other, when)
        older.add(sa.local_spi)

    def _remove_esp(self, local_spi: bytes, inbound_spi: bytes) -> None:
        """Take a Child SA's ESP SAs out of the data plane and report what they carried."""
        esp = self._data_plane.remove(inbound_spi)
        if esp is None:
            return
        received, sent = esp.inbound.counters, esp.outbound.counters
        self._events.append(
            EspSaRemoved(
                local_spi,
                inbound_spi,
                esp.outbound.spi,
                received.packets,
                received.octets,
                sent.packets,
                sent.octets,
                received.replay_drops,
                received.integrity_failures,
                received.malformed,
            )
        )

    def _forget(self, sa: IkeSa, now: float) -> None:
        local_spi = sa.local_spi
        if self._sas.get(local_spi) is not sa:
            return
        del self._sas[local_spi]
        self._touched.discard(local_spi)  # its task ends with IkeSaClosed
        same_peer = self._by_identity.get(sa.remote_id)
        if same_peer is not None:
            same_peer.discard(local_spi)
            if not same_peer:
                del self._by_identity[sa.remote_id]
        self._deadlines.set(local_spi, None)
        digest = self._digest_of.pop(local_spi, None)
        if digest is not None:
            self._init_digests.pop(digest, None)
        for inbound_spi in sa.children:
            self._esp.pop(inbound_spi, None)
            self._remove_esp(local_spi, inbound_spi)
        for pool in self._services.pools.values():
            pool.release(local_spi)
        self._connections.sa_ended(local_spi, now)
        self._events.extend(self._connections.closing())
