"""The endpoint: every IKE SA by SPI, IKE_SA_INIT admission, half-open limits.

Strategy: the transports hand every IKE message (unframed) to
:meth:`Endpoint.receive` together with the :class:`Path` it came on and
``now``.  The endpoint:

* decodes only the header, to find the SA by our own SPI (never by address
  or port: peers may come back from a new address or connection, RFC 9329
  §6.1, row A28);
* admits new IKE_SA_INIT requests: a retransmission of a request already
  answered gets the same response (found by a hash of the whole message,
  RFC 7296 §2.1, row B5); above ``limits.half_open_max`` half-open SAs new
  requests are dropped; above ``limits.cookie_threshold`` a COOKIE is asked
  for, over UDP only (over TCP RFC 9329 §6.3 advises against a COOKIE without
  a puzzle, row A40, and the transport's connection limits defend instead);
* answers an unsupported major version with INVALID_MAJOR_VERSION
  (RFC 7296 §2.5, row B9);
* collects what the SAs queue, and forgets an SA, its leases included, once
  it is closed.

Like the SAs, it never reads a clock and never draws randomness itself.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator

import attrs

from responder.core.config import Config
from responder.core.cookies import CookieJar
from responder.core.enums import ExchangeType, NotifyType
from responder.core.errors import DecodeError, InvalidMajorVersion
from responder.core.events import Event, IkeSaInitRefused, MessageDropped, RetransmissionAnswered
from responder.core.exchanges import ike_sa_init, informational
from responder.core.exchanges.common import ike_spi
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.initiator import InitiatorSettings
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.messages import Header, Message, decode_header, decode_message, encode_message
from responder.core.path import Outgoing, Path
from responder.core.payloads import NotifyPayload
from responder.core.pool import PoolAllocator

__all__ = ["Endpoint"]


@attrs.define(eq=False)
class Endpoint:
    """All IKE SAs of one responder (or initiator) process."""

    config: Config
    random_bytes: Callable[[int], bytes]
    ke_factory: KeyExchangeFactory
    _sas: dict[bytes, IkeSa] = attrs.field(init=False, factory=dict)
    # SHA-256 of each answered IKE_SA_INIT request -> its SA, kept while the SA lives,
    # so that a late duplicate never starts a second SA (RFC 7296 §2.1, row B5).
    _half_open: dict[bytes, IkeSa] = attrs.field(init=False, factory=dict)
    _cookies: CookieJar = attrs.field(init=False)
    _pools: dict[str, PoolAllocator] = attrs.field(init=False)
    _outgoing: list[Outgoing] = attrs.field(init=False, factory=list)
    _events: deque[Event] = attrs.field(init=False, factory=deque)
    _new: list[IkeSa] = attrs.field(init=False, factory=list)  # created since the last new_sas()

    def __attrs_post_init__(self) -> None:
        self._cookies = CookieJar(self.random_bytes, self.config.limits.cookie_secret_lifetime)
        self._pools = {pool.name: PoolAllocator(pool) for pool in self.config.pools}

    # ------------------------------------------------------------------ output

    def messages_to_send(self) -> list[Outgoing]:
        out, self._outgoing = self._outgoing, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    @property
    def sas(self) -> Iterator[IkeSa]:
        return iter(list(self._sas.values()))

    def sa(self, local_spi: bytes) -> IkeSa | None:
        return self._sas.get(local_spi)

    def new_sas(self) -> list[IkeSa]:
        """SAs created since the last call (an answered IKE_SA_INIT, :meth:`initiate`), oldest first.

        The shell starts one timer task per SA from this list; an SA that is
        already closed again is still listed once.  Like :meth:`messages_to_send`
        and :meth:`next_event`, the list grows until it is taken.
        """
        out, self._new = self._new, []
        return out

    def find_sa(self, data: bytes) -> IkeSa | None:
        """The live SA that :meth:`receive` would hand ``data`` to, or ``None``.

        ``None`` for a new IKE_SA_INIT request, unknown SPIs or a header that
        does not decode.  Looks only at the header, like :meth:`receive`.
        """
        try:
            header, _, _ = decode_header(data)
        except DecodeError:
            return None
        if (
            header.exchange_type is ExchangeType.IKE_SA_INIT
            and not header.is_response
            and header.spi_r == bytes(8)
        ):
            return None
        sa = self._sas.get(header.spi_r if header.is_initiator else header.spi_i)
        if (
            sa is None
            or sa.spi_i != header.spi_i
            or (sa.spi_r != header.spi_r and sa.state is not IkeSaState.INIT_SENT)
        ):
            return None
        return sa

    @property
    def half_open_count(self) -> int:
        return sum(1 for sa in self._sas.values() if sa.state is IkeSaState.INIT_DONE)

    # ------------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        """The earliest deadline of any SA, or ``None``."""
        return min((t for sa in self._sas.values() if (t := sa.get_timer()) is not None), default=None)

    def handle_timer(self, now: float) -> None:
        for sa in list(self._sas.values()):
            self.handle_sa_timer(sa, now)

    def handle_sa_timer(self, sa: IkeSa, now: float) -> None:
        """Run one SA's timer if its deadline has come (the shell's per-SA task calls this).

        Does nothing for an SA this endpoint no longer holds or whose
        deadline is still ahead; what the SA queues is collected as usual.
        """
        if self._sas.get(sa.local_spi) is not sa:
            return
        deadline = sa.get_timer()
        if deadline is not None and now >= deadline:
            sa.handle_timer(now)
            self._collect(sa)

    # ------------------------------------------------------------------ input

    def receive(self, data: bytes, path: Path, now: float) -> None:
        """Handle one IKE message (without non-ESP marker or RFC 9329 length)."""
        try:
            header, _, _ = decode_header(data)
        except InvalidMajorVersion as error:
            self._answer_major_version(data, path, error)
            return
        except DecodeError as error:
            self._events.append(MessageDropped(f"from {path.describe()}: {error}"))
            return
        if (
            header.exchange_type is ExchangeType.IKE_SA_INIT
            and not header.is_response
            and header.spi_r == bytes(8)
        ):
            self._receive_ike_sa_init(data, header, path, now)
            return
        local_spi = header.spi_r if header.is_initiator else header.spi_i
        sa = self._sas.get(local_spi)
        if (
            sa is None
            or sa.spi_i != header.spi_i
            or (sa.spi_r != header.spi_r and sa.state is not IkeSaState.INIT_SENT)
        ):
            # RFC 7296 §2.21.4: MAY answer INVALID_IKE_SPI; silence is the safer choice.
            self._events.append(
                MessageDropped(
                    f"{header.exchange_type.name} from {path.describe()} for unknown SPIs",
                    header.spi_i,
                    header.spi_r,
                )
            )
            return
        sa.receive(data, header, path, now)
        self._collect(sa)

    def _receive_ike_sa_init(self, data: bytes, header: Header, path: Path, now: float) -> None:
        digest = hashlib.sha256(data).digest()
        known = self._half_open.get(digest)
        if known is not None and known.state is not IkeSaState.CLOSED:
            # RFC 7296 §2.1: the retransmitted request gets the same response.
            self._outgoing.append(Outgoing(path, known.init_response))
            self._events.append(RetransmissionAnswered(known.spi_i, known.spi_r, 0))
            return
        limits = self.config.limits
        if self.half_open_count >= limits.half_open_max or len(self._sas) >= limits.ike_sa_max:
            self._events.append(
                MessageDropped(
                    f"IKE_SA_INIT from {path.describe()}: half-open or IKE SA limit reached", header.spi_i
                )
            )
            return
        try:
            message = decode_message(data)
        except DecodeError as error:
            self._refuse_undecodable(data, path, error)
            return
        cookie_required = not path.transport.is_stream and self.half_open_count >= limits.cookie_threshold
        outcome = ike_sa_init.respond(
            config=self.config,
            random_bytes=self.random_bytes,
            ke_factory=self.ke_factory,
            cookies=self._cookies,
            cookie_required=cookie_required,
            pools=self._pools,
            data=data,
            message=message,
            path=path,
            now=now,
        )
        if isinstance(outcome, ike_sa_init.InitRefusal):
            self._outgoing.append(Outgoing(path, outcome.response))
            self._events.append(IkeSaInitRefused(header.spi_i, outcome.notify, outcome.reason))
            return
        self._sas[outcome.spi_r] = outcome
        self._half_open[digest] = outcome
        self._new.append(outcome)
        self._collect(outcome)

    def _refuse_undecodable(self, data: bytes, path: Path, error: DecodeError) -> None:
        """An IKE_SA_INIT that does not decode: answer its notify unprotected (RFC 7296 §2.21.1)."""
        header, _, _ = decode_header(data)
        notify = error.answer
        self._events.append(IkeSaInitRefused(header.spi_i, notify or NotifyType.INVALID_SYNTAX, str(error)))
        if notify is None:
            return
        response = Header(
            spi_i=header.spi_i,
            spi_r=bytes(8),
            exchange_type=ExchangeType.IKE_SA_INIT,
            is_initiator=False,
            is_response=True,
            message_id=header.message_id,
        )
        self._outgoing.append(
            Outgoing(path, encode_message(Message(response, (NotifyPayload(notify, error.notify_data),))))
        )

    def _answer_major_version(self, data: bytes, path: Path, error: InvalidMajorVersion) -> None:
        """RFC 7296 §2.5: drop, and SHOULD answer INVALID_MAJOR_VERSION with version 2.0.

        Only requests are answered (never a response, to avoid loops); the reply
        copies the SPIs, exchange type and Message ID.
        """
        self._events.append(MessageDropped(f"from {path.describe()}: {error}"))
        if len(data) < 28 or data[19] & 0x20:
            return
        response = Header(
            spi_i=data[0:8],
            spi_r=data[8:16],
            exchange_type=ExchangeType(data[18]),
            is_initiator=False,
            is_response=True,
            message_id=int.from_bytes(data[20:24], "big"),
        )
        notify = NotifyPayload(NotifyType.INVALID_MAJOR_VERSION)
        self._outgoing.append(Outgoing(path, encode_message(Message(response, (notify,)))))

    # ------------------------------------------------------------------ initiator

    def initiate(self, settings: InitiatorSettings, path: Path, now: float) -> IkeSa:
        """Start an IKE SA as initiator; its IKE_SA_INIT request is queued."""
        sa = IkeSa(
            config=self.config,
            random_bytes=self.random_bytes,
            ke_factory=self.ke_factory,
            is_original_initiator=True,
            spi_i=ike_spi(self.random_bytes),
            spi_r=bytes(8),
            path=path,
            created_at=now,
            settings=settings,
            pools=self._pools,
        )
        self._sas[sa.spi_i] = sa
        self._new.append(sa)
        ike_sa_init.start(sa, now)
        self._collect(sa)
        return sa

    def request_liveness_check(self, sa: IkeSa, now: float) -> None:
        """Start an empty INFORMATIONAL request on an established SA (RFC 7296 §2.4)."""
        informational.request_liveness_check(sa, now)
        self._collect(sa)

    def request_delete(self, sa: IkeSa, now: float) -> None:
        """Delete an established SA with an INFORMATIONAL Delete (RFC 7296 §1.4.1)."""
        informational.request_delete(sa, now)
        self._collect(sa)

    # ------------------------------------------------------------------ bookkeeping

    def _collect(self, sa: IkeSa) -> None:
        self._outgoing += sa.messages_to_send()
        while (event := sa.next_event()) is not None:
            self._events.append(event)
        if sa.state is IkeSaState.CLOSED:
            self._sas.pop(sa.local_spi, None)
            for digest in [d for d, s in self._half_open.items() if s is sa]:
                del self._half_open[digest]
            for pool in self._pools.values():
                pool.release(sa.local_spi)
