"""One IKE SA: state, Message IDs, window, retransmission and the error boundary.

Strategy (aioquic's connection object, h2's transition table): an
:class:`IkeSa` is a synchronous machine.  It is fed whole IKE messages with the
:class:`Path` they came on and the current time ``now``; it queues messages to
send and :mod:`events <responder.core.events>`, and reports its next deadline
through :meth:`IkeSa.get_timer`.  It never reads a clock, never touches a
socket and draws randomness only from the injected ``random_bytes``.

The exchange logic itself lives in :mod:`responder.core.exchanges`; this
module owns what every exchange shares:

* the legality table ``(state, exchange, is_response) -> handler``
  (:data:`REQUEST_HANDLERS`): an unlisted pair is dropped;
* Message IDs and the window (RFC 7296 §2.1-§2.3): a retransmitted request
  gets the cached response byte for byte, an old one is dropped, responses
  are kept for ``window`` Message IDs; our own requests respect the peer's
  window;
* retransmission of our requests: RFC 7296 §2.1 exponential back-off over
  UDP; over TCP/TLS no retransmission, and an unanswered request ends the SA
  (RFC 9329 §6.2, row A39);
* the one boundary where a handler's :class:`ProtocolError` becomes the
  RFC's answer (a protected error notify) and, where the RFC asks, the end of
  the SA.
"""

from __future__ import annotations

import enum
import hashlib
from collections import deque
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING

import attrs

from responder.core.enums import ExchangeType, NotifyType
from responder.core.errors import DecodeError, IntegrityCheckFailed, ProtocolError
from responder.core.events import (
    Event,
    IkeSaClosed,
    MessageAccepted,
    MessageDropped,
    RequestAnswered,
    RetransmissionAnswered,
)
from responder.core.messages import EncryptedPayload, Header, Message, decode_message
from responder.core.path import Outgoing, Path, Transport
from responder.core.payloads import NotifyPayload, Payload
from responder.core.sk_payload import SkProtection, protect, unprotect

if TYPE_CHECKING:
    from responder.core.child_sa import ChildSa
    from responder.core.config import Config
    from responder.core.initiator import InitiatorSettings
    from responder.core.key_exchange import KeyExchange, KeyExchangeFactory
    from responder.core.keys import IkeSaKeys
    from responder.core.pool import PoolAllocator
    from responder.core.proposals import ChosenProposal
    from responder.core.transforms import Encryption, Integrity, Prf

__all__ = [
    "RETRANSMIT_BASE",
    "RETRANSMIT_TRIES",
    "IkeSa",
    "IkeSaState",
    "Outgoing",
    "Path",
    "PendingRequest",
    "Transport",
]

IPAddress = IPv4Address | IPv6Address

RETRANSMIT_BASE = 1.0  # seconds before the first retransmission (RFC 7296 §2.1)
RETRANSMIT_TRIES = 5  # sends in all: 1 + 4 retransmissions, doubling each time
TCP_RESPONSE_TIMEOUT = 31.0  # what the UDP schedule takes, 1+2+4+8+16 s; then RFC 9329 §6.2 ends the SA


class IkeSaState(enum.Enum):
    """Where an IKE SA is in its life (RFC 7296 §1.2)."""

    INIT_SENT = "init-sent"  #: initiator: IKE_SA_INIT request sent
    INIT_DONE = "init-done"  #: responder: IKE_SA_INIT answered, waiting for IKE_AUTH (half-open)
    AUTH_SENT = "auth-sent"  #: initiator: IKE_AUTH request sent
    ESTABLISHED = "established"  #: authenticated; INFORMATIONAL and CREATE_CHILD_SA allowed
    CLOSED = "closed"  #: gone; every further message is dropped


ResponseHandler = Callable[["IkeSa", Message, float], None]


@attrs.define(eq=False)
class PendingRequest:
    """A request of ours waiting for its response."""

    message_id: int
    exchange: ExchangeType
    data: bytes
    on_response: ResponseHandler
    sent_at: float
    sends: int = 1

    def deadline(self, stream: bool) -> float:
        if stream:
            return self.sent_at + TCP_RESPONSE_TIMEOUT
        return self.sent_at + RETRANSMIT_BASE * (1 << (self.sends - 1))


@attrs.define(eq=False)
class IkeSa:
    """One IKE SA, either role.  Created by :class:`responder.core.sa_table.Endpoint`."""

    config: Config
    random_bytes: Callable[[int], bytes]
    ke_factory: KeyExchangeFactory
    is_original_initiator: bool
    spi_i: bytes
    spi_r: bytes
    path: Path
    created_at: float
    state: IkeSaState = IkeSaState.INIT_SENT

    # Negotiated in IKE_SA_INIT
    proposal: ChosenProposal | None = None
    prf: Prf | None = None
    encryption: Encryption | None = None
    integrity: Integrity | None = None
    nonce_i: bytes = b""
    nonce_r: bytes = b""
    init_request: bytes = b""  # the IKE_SA_INIT request that succeeded, as sent
    init_response: bytes = b""
    keys: IkeSaKeys | None = attrs.field(default=None, repr=False)
    outbound: SkProtection | None = attrs.field(default=None, repr=False)
    inbound: SkProtection | None = attrs.field(default=None, repr=False)
    peer_supports_childless: bool = False
    nat_detected_local: bool = False
    nat_detected_remote: bool = False

    # Authenticated in IKE_AUTH
    local_id: str = ""
    remote_id: str = ""
    peer_name: str | None = None
    children: list[ChildSa] = attrs.Factory(list)

    # Requests we answer (RFC 7296 §2.1, §2.3)
    window_size: int = 1
    next_request_id: int = 0  # lowest Message ID not yet answered
    responses: dict[int, bytes] = attrs.Factory(dict)
    _answered: dict[int, bytes] = attrs.Factory(dict)  # Message ID -> SHA-256 of the request answered

    # Requests we send
    peer_window: int = 1
    next_send_id: int = 0
    pending: dict[int, PendingRequest] = attrs.Factory(dict)
    queued: deque[tuple[ExchangeType, tuple[Payload, ...], ResponseHandler]] = attrs.Factory(deque)

    # The initiator role: what to ask for, and the IKE_SA_INIT state of retries
    settings: InitiatorSettings | None = None
    key_exchange: KeyExchange | None = attrs.field(default=None, repr=False)
    cookie: bytes = b""
    init_retries: int = 0
    child_spi: bytes = b""  # our inbound ESP SPI offered in the IKE_AUTH request
    close_after_response: str | None = None  # set by a handler that ends the SA once answered
    # Shared with the Endpoint: address pools by name (leases are owned by local_spi)
    pools: dict[str, PoolAllocator] = attrs.Factory(dict)

    _outgoing: list[Outgoing] = attrs.Factory(list)
    _events: deque[Event] = attrs.Factory(deque)

    # ------------------------------------------------------------------ output

    def messages_to_send(self) -> list[Outgoing]:
        """Messages queued since the last call, oldest first."""
        out, self._outgoing = self._outgoing, []
        return out

    def next_event(self) -> Event | None:
        """The oldest event not yet taken, or ``None``."""
        return self._events.popleft() if self._events else None

    def emit(self, event: Event) -> None:
        self._events.append(event)

    def send(self, data: bytes, path: Path | None = None) -> None:
        self._outgoing.append(Outgoing(path or self.path, data))

    # ------------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        """The next time :meth:`handle_timer` has work, or ``None``."""
        if self.state is IkeSaState.CLOSED:
            return None
        deadlines = [p.deadline(self.path.transport.is_stream) for p in self.pending.values()]
        if self.state is IkeSaState.INIT_DONE:
            deadlines.append(self.created_at + self.config.limits.half_open_timeout)
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        """Expire a half-open SA; retransmit or give up on our requests."""
        if self.state is IkeSaState.CLOSED:
            return
        if (
            self.state is IkeSaState.INIT_DONE
            and now >= self.created_at + self.config.limits.half_open_timeout
        ):
            self.close("half-open IKE SA expired: no IKE_AUTH request in time")
            return
        stream = self.path.transport.is_stream
        for request in list(self.pending.values()):
            if now < request.deadline(stream):
                continue
            if stream or request.sends >= RETRANSMIT_TRIES:
                self.close(
                    f"peer did not answer {request.exchange.name} request {request.message_id}"
                    + (" (no retransmission over TCP, RFC 9329 §6.2)" if stream else "")
                )
                return
            request.sends += 1
            request.sent_at = now
            self.send(request.data)

    # ------------------------------------------------------------------ life

    @property
    def spis(self) -> tuple[bytes, bytes]:
        return self.spi_i, self.spi_r

    @property
    def local_spi(self) -> bytes:
        return self.spi_i if self.is_original_initiator else self.spi_r

    def close(self, reason: str) -> None:
        """Forget the SA and all of its Child SAs (RFC 7296 §1.4.1)."""
        if self.state is IkeSaState.CLOSED:
            return
        self.state = IkeSaState.CLOSED
        self.pending.clear()
        self.queued.clear()
        self.emit(IkeSaClosed(self.spi_i, self.spi_r, reason))

    def header(self, exchange: ExchangeType, message_id: int, *, is_response: bool) -> Header:
        return Header(
            spi_i=self.spi_i,
            spi_r=self.spi_r,
            exchange_type=exchange,
            is_initiator=self.is_original_initiator,
            is_response=is_response,
            message_id=message_id,
        )

    def protect(self, header: Header, payloads: tuple[Payload, ...]) -> bytes:
        assert self.outbound is not None and self.encryption is not None  # keys exist past IKE_SA_INIT
        return protect(self.outbound, header, payloads, self.random_bytes(self.encryption.iv_size))

    # ------------------------------------------------------------------ input

    def receive(self, data: bytes, header: Header, path: Path, now: float) -> None:
        """Handle a message whose header says it belongs to this SA."""
        if self.state is IkeSaState.CLOSED:
            self.emit(MessageDropped("IKE SA is closed", *self.spis))
            return
        if header.is_initiator == self.is_original_initiator:
            self.emit(MessageDropped("Initiator flag names the wrong sender", *self.spis))
            return
        if header.exchange_type is ExchangeType.IKE_SA_INIT:
            self._receive_ike_sa_init(data, header, path, now)
            return
        if self.inbound is None:
            self.emit(MessageDropped(f"{header.exchange_type.name} before keys exist", *self.spis))
            return
        # The structure up to the SK payload is checked before the ICV, so an error
        # there is unauthenticated: dropped, never answered (RFC 7296 §2.21.2, §3.10.1
        # INVALID_SYNTAX "only ... if the Message ID and cryptographic checksum were valid").
        try:
            outer = decode_message(data)
        except DecodeError as error:
            self.emit(MessageDropped(f"{header.exchange_type.name}: {error}", *self.spis))
            return
        if not outer.payloads or not isinstance(outer.payloads[-1], EncryptedPayload):
            self.emit(MessageDropped(f"{header.exchange_type.name} without an Encrypted payload", *self.spis))
            return
        try:
            message = unprotect(self.inbound, data)
        except IntegrityCheckFailed as error:
            self.emit(MessageDropped(f"{header.exchange_type.name}: {error.reason}", *self.spis))
            return
        except DecodeError as error:
            # Authenticated but malformed.  A request we would otherwise handle gets
            # INVALID_SYNTAX or UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296 §2.21.2, §2.21.3,
            # RFC 9329 row A34); a response, or a request outside the window, is dropped.
            if not header.is_response and self._acceptable_request(header):
                self._answered[header.message_id] = hashlib.sha256(data).digest()
                self._answer_error(header, error, path, now)
            else:
                self.emit(MessageDropped(f"{header.exchange_type.name}: {error}", *self.spis))
            return
        if header.is_response:
            self._receive_response(message, path, now)
        else:
            self._receive_request(data, message, path, now)

    def _receive_ike_sa_init(self, data: bytes, header: Header, path: Path, now: float) -> None:
        from responder.core import exchanges  # the exchange handlers import this module

        # RFC 7296 §2.2: IKE_SA_INIT messages carry Message ID 0.
        if (
            header.is_response
            and header.message_id == 0
            and self.state is IkeSaState.INIT_SENT
            and 0 in self.pending
        ):
            exchanges.initiator_handle_ike_sa_init_response(self, data, path, now)
        else:
            self.emit(MessageDropped("unexpected IKE_SA_INIT", *self.spis))

    def _receive_request(self, data: bytes, message: Message, path: Path, now: float) -> None:
        header = message.header
        message_id = header.message_id
        cached = self.responses.get(message_id)
        if cached is not None:
            # RFC 7296 §2.1: a retransmitted request (bitwise identical) gets the stored
            # response, nothing else; another request under an answered Message ID is old.
            if self._answered.get(message_id) != hashlib.sha256(data).digest():
                self.emit(
                    MessageDropped(
                        f"request Message ID {message_id} was answered for another request", *self.spis
                    )
                )
                return
            self.send(cached, path)
            self.emit(RetransmissionAnswered(self.spi_i, self.spi_r, message_id))
            return
        if not self.next_request_id <= message_id < self.next_request_id + self.window_size:
            self.emit(
                MessageDropped(
                    f"request Message ID {message_id} outside the window "
                    f"[{self.next_request_id}, {self.next_request_id + self.window_size})",
                    *self.spis,
                )
            )
            return
        from responder.core import exchanges

        handler = exchanges.REQUEST_HANDLERS.get((self.state, header.exchange_type))
        if handler is None:
            self.emit(
                MessageDropped(
                    f"{header.exchange_type.name} request not allowed in {self.state.name}", *self.spis
                )
            )
            return
        self.path = path
        self._answered[message_id] = hashlib.sha256(data).digest()
        self.emit(MessageAccepted(self.spi_i, self.spi_r, header.exchange_type, message_id, False))
        try:
            payloads, result = handler(self, message, path, now)
        except ProtocolError as error:
            self._answer_error(header, error, path, now)
            return
        self._answer(header, payloads, path, result)
        if self.close_after_response is not None:
            self.close(self.close_after_response)

    def _acceptable_request(self, header: Header) -> bool:
        """A new request inside the window (RFC 7296 §2.3) of an exchange this state handles."""
        from responder.core import exchanges

        return (
            header.message_id not in self.responses
            and self.next_request_id <= header.message_id < self.next_request_id + self.window_size
            and (self.state, header.exchange_type) in exchanges.REQUEST_HANDLERS
        )

    def _answer(self, request: Header, payloads: tuple[Payload, ...], path: Path, result: str) -> None:
        response = self.protect(
            self.header(request.exchange_type, request.message_id, is_response=True), payloads
        )
        self._remember(request.message_id, response)
        self.send(response, path)
        self.emit(RequestAnswered(self.spi_i, self.spi_r, request.exchange_type, request.message_id, result))

    def _remember(self, message_id: int, response: bytes) -> None:
        """Cache a response; forget those the window no longer covers (RFC 7296 §2.3)."""
        self.responses[message_id] = response
        while self.next_request_id in self.responses:
            self.next_request_id += 1
        for old in [m for m in self.responses if m <= message_id - self.window_size]:
            del self.responses[old]
            self._answered.pop(old, None)

    def _answer_error(self, request: Header, error: ProtocolError, path: Path, now: float) -> None:
        """The boundary: turn a handler's error into the RFC's answer (RFC 7296 §2.21)."""
        notify = error.answer
        if notify is None:
            self.emit(MessageDropped(f"{request.exchange_type.name}: {error.reason}", *self.spis))
            return
        payloads = (NotifyPayload(notify, error.notify_data),)
        self._answer(request, payloads, path, f"refused with {notify.name}: {error.reason}")
        # RFC 7296 §2.21.2-§2.21.4, RFC 9329 row A34: syntax errors and failed
        # authentication end the IKE SA; other errors (Child SA ones) do not.
        if notify in (NotifyType.INVALID_SYNTAX, NotifyType.AUTHENTICATION_FAILED) or self.state is not (
            IkeSaState.ESTABLISHED
        ):
            self.close(f"{request.exchange_type.name} request refused with {notify.name}: {error.reason}")

    def _receive_response(self, message: Message, path: Path, now: float) -> None:
        # A response that does not match keeps our request pending: it is still
        # retransmitted, and times out (RFC 7296 §2.1).
        request = self.pending.get(message.header.message_id)
        if request is None or request.exchange is not message.header.exchange_type:
            self.emit(
                MessageDropped(f"response {message.header.message_id} matches no request of ours", *self.spis)
            )
            return
        del self.pending[request.message_id]
        self.path = path
        self.emit(MessageAccepted(self.spi_i, self.spi_r, request.exchange, request.message_id, True))
        try:
            request.on_response(self, message, now)
        except ProtocolError as error:
            # A response cannot be answered; one we cannot accept leaves the exchange
            # failed, and with it the IKE SA (RFC 7296 §2.21: close the SA rather than
            # go on with state the peer does not share).
            self.close(f"{request.exchange.name} response {request.message_id} unacceptable: {error.reason}")
            return
        self._flush_queue(now)

    # ------------------------------------------------------------------ our requests

    def start_request(
        self, exchange: ExchangeType, payloads: tuple[Payload, ...], on_response: ResponseHandler, now: float
    ) -> None:
        """Send a request now if the peer's window allows, else queue it (RFC 7296 §2.3)."""
        self.queued.append((exchange, payloads, on_response))
        self._flush_queue(now)

    def _flush_queue(self, now: float) -> None:
        while self.queued and len(self.pending) < self.peer_window and self.state is not IkeSaState.CLOSED:
            exchange, payloads, on_response = self.queued.popleft()
            message_id = self.next_send_id
            self.next_send_id += 1
            data = self.protect(self.header(exchange, message_id, is_response=False), payloads)
            self.pending[message_id] = PendingRequest(message_id, exchange, data, on_response, now)
            self.send(data)
