"""The message layer of one IKE SA: Message IDs, windows, retransmission, SK protection, the response cache.

Strategy: every IKE SA has one :class:`MessageLayer`, and it is the only
place that knows how messages of the SA are numbered, protected, stored and
repeated.  The exchanges above it see whole, authenticated messages
(:class:`Received`) and hand it payloads; the IKE SA's state is elsewhere
(:mod:`responder.core.ike_sa`).  The rules it applies:

* **The peer's requests** (RFC 7296 §2.1-§2.3).  A request is new when its
  Message ID lies in ``[next_expected, next_expected + window_size)`` and was
  neither answered nor is being answered.  Its response is stored (as the
  list of packets that carried it, so that RFC 7383 fragments fit later) with
  a hash of the request, until a request with a Message ID at least the
  response's plus the window arrives; a bitwise copy of an answered request
  gets the stored packets again, nothing else, and it is recognised *before*
  decryption (a retransmission authenticates itself by being identical), so
  it is answered even after the SA switched keys.  A copy of a request whose
  answer is still being worked out (deferred) is ignored.
* **Our requests** (RFC 7296 §2.3, §2.4).  Exchanges wait in a queue until the
  peer's window has room; each then gets the next Message ID.  Over UDP a
  request is retransmitted, bitwise identical, after 1, 2, 4 and 8 seconds and
  given up 16 seconds after the last one; over TCP and TLS it is sent once and
  given up after :data:`TCP_RESPONSE_TIMEOUT` (RFC 9329 §6.2, row A39).  With
  ``give_up_after`` set (``dpd_timeout``) a request is given up that long
  after it was first sent, retransmitted over UDP with the same doubling until
  then.  If the peer comes back on a new TCP connection while a request
  waits, it is sent once more there (:meth:`resend_on`, RFC 9329 §6.2); its
  deadline still counts from the first sending.  What giving up means is the
  IKE SA's business.
* **IKE fragmentation** (RFC 7383), once the SA negotiated it
  (:meth:`enable_fragmentation`).  A message of ours that would not fit one
  UDP datagram of ``limits.fragment_size`` on its path goes as fragments,
  each protected on its own (§2.5, :mod:`responder.core.fragments`); over
  TCP and TLS never (RFC 9329 §7.5, row A57).  The response store and our
  pending requests keep every fragment, so a retransmission repeats them all.
  The peer's fragments are checked one by one (ICV before anything is kept,
  §2.6) and reassembled on any transport; the whole message then goes
  through the same rules as one that came in one piece.  A fragment of a
  request we answered repeats our response when it is fragment 1 (a bitwise
  copy is recognised before decryption like any retransmission; the stored
  request digest of a fragmented request is fragment 1's) and is ignored
  otherwise (§2.6.1).
* **SK protection** (RFC 7296 §3.14).  :meth:`open` decodes the message once,
  checks the ICV or AEAD tag, decrypts and decodes the inner payloads, and
  hands back the decrypted plaintext beside them (IKE_INTERMEDIATE's IntAuth,
  RFC 9242 §3.3.2, signs exactly those octets); a message that fails before
  its integrity is proven raises, one that is authenticated but malformed
  comes back as :class:`Malformed` for the error boundary.  The keys of each
  direction can be switched between two messages (:meth:`install_keys`).

It is generic in the exchange objects it holds for our requests (``X``), so
it needs to know nothing about them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import attrs

from responder.core.config import Limits
from responder.core.enums import ExchangeType
from responder.core.errors import DecodeError, IntegrityCheckFailed, LocalError
from responder.core.fragments import (
    FragmentNotice,
    Reassembled,
    Reassembler,
    datagram_budget,
    split,
    whole_head,
)
from responder.core.messages import (
    EncryptedFragmentPayload,
    EncryptedPayload,
    Header,
    Message,
    Payload,
    decode_message,
    decode_payloads,
    encode_message,
    encode_payloads,
)
from responder.core.path import Path
from responder.core.sk_payload import SkProtection, decrypt, protect_bytes, sk_head, unprotect
from responder.core.summary import payload_summary

__all__ = [
    "RETRANSMIT_BASE",
    "RETRANSMIT_TRIES",
    "TCP_RESPONSE_TIMEOUT",
    "FragmentNotice",
    "GiveUp",
    "Malformed",
    "MessageLayer",
    "PendingRequest",
    "ReassemblyExpired",
    "Received",
    "Resend",
    "Retransmit",
    "Sent",
]

X = TypeVar("X")
V = TypeVar("V")

RETRANSMIT_BASE = 1.0  #: seconds before the first retransmission (RFC 7296 §2.1)
RETRANSMIT_TRIES = 5  #: sends in all over UDP: 1 + 4 retransmissions, doubling each time
#: Seconds a request of ours waits for its response over TCP/TLS, where it is never retransmitted
#: (RFC 9329 §6.2): what the UDP schedule takes, 1 + 2 + 4 + 8 + 16 s.
TCP_RESPONSE_TIMEOUT = 31.0


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _pop(table: dict[int, V], key: int) -> V | None:
    """``table.pop(key, None)``, and the table's memory back once it is empty: a dict keeps what it
    grew to hold after its last item goes, 160 octets per SA held that once had a request in it
    (issue 14, measured); ``clear()`` gives it back."""
    value = table.pop(key, None)
    if not table:
        table.clear()
    return value


@attrs.frozen(slots=True)
class Received:
    """A message of the SA that passed its integrity check, or an unprotected IKE_SA_INIT.

    ``message`` has the header and the payloads in order, the Encrypted
    payload replaced by the payloads inside it; ``plaintext`` is that inner
    payload chain as decrypted, without padding, and ``aad`` the octets from
    the IKE header to the end of the Encrypted payload's generic header (the
    AEAD associated data, RFC 5282 §5.1): together, what IKE_INTERMEDIATE's
    IntAuth signs (RFC 9242 §3.3.2).  Both are empty for IKE_SA_INIT.
    ``data`` is the message as it arrived on ``path``.
    """

    message: Message
    plaintext: bytes
    data: bytes
    path: Path
    aad: bytes = b""

    @property
    def header(self) -> Header:
        return self.message.header


@attrs.frozen(slots=True)
class Malformed:
    """A message that passed its integrity check but whose inner payloads do not decode."""

    header: Header
    error: DecodeError
    data: bytes


@attrs.frozen(slots=True)
class Sent:
    """One message as we sent it: the packets that carry it, and (if protected) the plaintext of its
    inner payloads and the octets before them up to the Encrypted payload's generic header, taken
    from the whole message before any fragmentation (RFC 9242 §3.3.2 signs those)."""

    packets: tuple[bytes, ...]
    plaintext: bytes = b""
    aad: bytes = b""


@attrs.define(eq=False, slots=True)
class PendingRequest(Generic[X]):
    """A request of ours waiting for its response: the exchange that sent it, and how to repeat it."""

    message_id: int
    exchange_type: ExchangeType
    exchange: X
    packets: tuple[bytes, ...]
    sent_at: float  #: the last time it was sent
    sends: int = 1
    first_sent_at: float = attrs.field()
    #: Stream connections it was sent on again after the peer came back on them (RFC 9329 §6.2).
    resent_on: list[int] = attrs.Factory(list)

    @first_sent_at.default
    def _first(self) -> float:
        return self.sent_at

    def deadline(self, stream: bool, give_up_after: float | None = None) -> float:
        """When to retransmit (UDP) or give up (TCP/TLS, after the last retransmission, or at
        ``give_up_after`` seconds from the first sending)."""
        if stream:
            return self.first_sent_at + (give_up_after or TCP_RESPONSE_TIMEOUT)
        retransmit = self.sent_at + RETRANSMIT_BASE * (1 << min(self.sends - 1, 30))
        if give_up_after is None:
            return retransmit
        return min(retransmit, self.first_sent_at + give_up_after)

    def out_of_time(self, now: float, stream: bool, give_up_after: float | None) -> bool:
        """Whether no response can be waited for any longer."""
        if give_up_after is not None:
            return now >= self.first_sent_at + give_up_after
        return stream or self.sends >= RETRANSMIT_TRIES


@attrs.frozen(slots=True)
class Retransmit:
    """Send these packets of a pending request again (UDP, RFC 7296 §2.1)."""

    packets: tuple[bytes, ...]


@attrs.frozen(slots=True)
class ReassemblyExpired:
    """An incomplete set of the peer's fragments timed out and was dropped (RFC 7383 §2.6)."""

    reason: str


@attrs.frozen(slots=True)
class Resend:
    """An authenticated fragment 1 of a request already answered: send the stored response again,
    all of its fragments (RFC 7383 §2.6.1)."""

    message_id: int
    packets: tuple[bytes, ...]


@attrs.frozen(slots=True)
class GiveUp(Generic[X]):
    """No response came for this request in time; the IKE SA decides what follows."""

    request: PendingRequest[X]


@attrs.frozen(slots=True)
class _Taken:
    """A request of the peer's from :meth:`MessageLayer.begin` until its response is dropped: the
    digest its copies are recognised by, and our response's packets once it is sent (``None``
    while it is being answered)."""

    request_digest: bytes
    packets: tuple[bytes, ...] | None = None


@attrs.define(eq=False, slots=True)
class MessageLayer(Generic[X]):
    """Message IDs, windows, retransmission, protection and stored responses of one IKE SA."""

    random_bytes: Callable[[int], bytes] = attrs.field(repr=False)
    inbound: SkProtection | None = attrs.field(default=None, repr=False)
    outbound: SkProtection | None = attrs.field(default=None, repr=False)
    #: How many requests of the peer's we take at once (what we announce, RFC 7296 §2.3).
    window_size: int = 1
    #: How many requests of ours the peer takes at once (what it announced).
    peer_window: int = 1
    #: Lowest Message ID of the peer's requests not yet answered.
    next_expected: int = 0
    #: Message ID of our next request.
    next_send_id: int = 0
    #: Seconds after which a request of ours is given up (``dpd_timeout``); ``None``: the defaults.
    give_up_after: float | None = None
    pending: dict[int, PendingRequest[X]] = attrs.Factory(dict)
    #: Requests of ours waiting for the peer's window, oldest first: a tuple (a few at most, now and
    #: then), as the empty tuple is shared where an empty list is 56 octets per SA held, an empty
    #: deque 624 (issue 14).
    queued: tuple[X, ...] = ()
    #: The peer's fragments being reassembled; ``None`` until RFC 7383 was negotiated.
    reassembly: Reassembler | None = None
    #: The peer's requests from :meth:`begin` until their response is dropped (RFC 7296 §2.1), by
    #: Message ID: one table for those being answered and those answered, as an SA held has one
    #: answered request and a second dict was 64 octets more (issue 14).
    _taken: dict[int, _Taken] = attrs.Factory(dict)
    #: What went out since :meth:`take_sent`: each message's header and payload names (for the log);
    #: a tuple, empty almost always, like the IKE SA's outgoing messages (issue 14).
    _sent: tuple[tuple[Header, tuple[str, ...]], ...] = ()

    # ------------------------------------------------------------------ keys

    @property
    def protected(self) -> bool:
        """True once SK keys exist (after IKE_SA_INIT)."""
        return self.inbound is not None

    def install_keys(self, inbound: SkProtection, outbound: SkProtection) -> None:
        """Protect every message from now on with these keys (RFC 7296 §2.14; RFC 9370 switches them)."""
        self.inbound, self.outbound = inbound, outbound

    def enable_fragmentation(self, limits: Limits) -> None:
        """RFC 7383 was negotiated in IKE_SA_INIT (§2.3): fragment what we send over UDP above
        ``limits.fragment_size``, and reassemble what the peer fragments within ``limits``."""
        if self.reassembly is None:
            self.reassembly = Reassembler(limits)

    @property
    def fragmentation(self) -> bool:
        """Whether the SA negotiated IKE fragmentation (RFC 7383 §2.3)."""
        return self.reassembly is not None

    def open(
        self, data: bytes, path: Path, now: float = 0.0
    ) -> Received | Malformed | FragmentNotice | Resend:
        """Authenticate and decrypt a protected message of this SA (RFC 7296 §3.14).

        Raises :class:`DecodeError` when the structure before the Encrypted
        payload does not decode, or there is none, and
        :class:`IntegrityCheckFailed` when the ICV or tag does not verify:
        both unauthenticated, so never answered (RFC 7296 §2.21.2).  A message
        that authenticates but whose inner payloads do not decode is returned
        as :class:`Malformed`.  An IKE Fragment message (RFC 7383 §2.6) gives
        the whole message once its last fragment is in, a
        :class:`FragmentNotice` before (kept, or discarded and why), or
        :class:`Resend` for fragment 1 of a request already answered; ``now``
        starts a new set's ``reassembly_timeout``.
        """
        if self.inbound is None:
            raise LocalError("open() before keys exist")
        outer = decode_message(data)
        sk = outer.payloads[-1] if outer.payloads else None
        if isinstance(sk, EncryptedFragmentPayload):
            return self._fragment(data, outer, sk, path, now)
        if not isinstance(sk, EncryptedPayload):
            raise DecodeError(f"{outer.header.exchange_type.name} without an Encrypted payload", offset=28)
        try:
            message, plaintext = unprotect(self.inbound, data, outer)
        except IntegrityCheckFailed:
            raise
        except DecodeError as error:  # the ICV verified: authenticated, but malformed inside
            return Malformed(outer.header, error, data)
        return Received(message, plaintext, data, path, data[: len(data) - len(sk.body)])

    def _fragment(
        self, data: bytes, outer: Message, fragment: EncryptedFragmentPayload, path: Path, now: float
    ) -> Received | Malformed | FragmentNotice | Resend:
        """One IKE Fragment message, checked as RFC 7383 §2.6 and §2.6.1 say."""
        assert self.inbound is not None  # checked by open()
        header = outer.header
        number, total = fragment.fragment_number, fragment.total_fragments
        name = f"IKE fragment {number}/{total} of {header.exchange_type.name} {header.message_id}"
        reassembly = self.reassembly
        if reassembly is None:
            return FragmentNotice(f"{name}: fragmentation was not negotiated (RFC 7383 §2.3)", False)
        early = reassembly.precheck(header, fragment)
        if early is not None:
            return early
        try:
            opened = decrypt(self.inbound, data, outer)
        except IntegrityCheckFailed as error:  # §2.6: the ICV of each fragment, before it is kept
            reassembly.discarded += 1
            return FragmentNotice(f"{name}: {error.reason}", False)
        except DecodeError as error:  # authenticated, but its padding is wrong
            reassembly.discarded += 1
            return FragmentNotice(f"{name}: {error}", True)
        message_id = header.message_id
        if header.is_response:
            request = self.pending.get(message_id)
            if request is None or request.exchange_type is not header.exchange_type:
                return FragmentNotice(f"{name}: response to no request of ours", True)
        else:
            answer = self._taken.get(message_id)
            if answer is not None and answer.packets is not None:
                if number == 1:  # §2.6.1: fragment 1 of an answered request repeats the response
                    return Resend(message_id, answer.packets)
                return FragmentNotice(
                    f"{name}: request already answered; only fragment 1 is (RFC 7383 §2.6.1)", True
                )
            refused = self.request_status(message_id)
            if refused is not None:
                return FragmentNotice(f"{name}: {refused}", True)
        result = reassembly.add(header, fragment, outer.payloads[:-1], opened.plaintext, data, now)
        if isinstance(result, FragmentNotice):
            return result
        return self._reassembled(result, path)

    def _reassembled(self, whole: Reassembled, path: Path) -> Received | Malformed:
        """The message a complete set of fragments carried, as if it had arrived whole (RFC 7383
        §2.6); ``data`` is fragment 1, the octets its copies are recognised by (§2.6.1)."""
        assert self.inbound is not None
        head = whole_head(self.inbound, whole)
        try:
            inner = decode_payloads(whole.first_inner, whole.plaintext, offset=len(head))
        except DecodeError as error:
            return Malformed(whole.header, error, whole.first_fragment)
        message = Message(whole.header, whole.outer + inner)
        return Received(message, whole.plaintext, whole.first_fragment, path, head)

    def take_sent(self) -> tuple[tuple[Header, tuple[str, ...]], ...]:
        """The header and payload names of each message sent since the last call (first sendings only)."""
        sent, self._sent = self._sent, ()
        return sent

    def _protect(self, header: Header, payloads: Sequence[Payload], path: Path | None) -> Sent:
        """Protect a message; as RFC 7383 fragments when the SA negotiated them and it would not fit
        one datagram on ``path`` (UDP only, §2.5.1)."""
        outbound = self.outbound
        if outbound is None:
            raise LocalError("protect before keys exist")
        self._sent += ((header, payload_summary(payloads)),)
        first_inner, plaintext = encode_payloads(tuple(payloads))
        head = sk_head(outbound, header, first_inner, len(plaintext))
        reassembly = self.reassembly
        budget = None
        if reassembly is not None and path is not None:
            budget = datagram_budget(path, reassembly.limits.fragment_size)
        if budget is not None:
            fragments = split(outbound, header, first_inner, plaintext, budget, self.random_bytes)
            if fragments is not None:
                return Sent(fragments, plaintext, head)
        iv = self.random_bytes(outbound.encryption.iv_size)
        data = protect_bytes(outbound, header, first_inner, plaintext, iv)
        return Sent((data,), plaintext, head)

    # ------------------------------------------------------------------ the peer's requests

    def stored_response(self, message_id: int, data: bytes) -> tuple[bytes, ...] | None:
        """Our stored response when ``data`` is a bitwise copy of the request it answered (RFC 7296 §2.1)."""
        answer = self._taken.get(message_id)
        if answer is None or answer.packets is None or answer.request_digest != _digest(data):
            return None
        return answer.packets

    def being_answered(self, message_id: int, data: bytes) -> bool:
        """A copy of a request accepted earlier whose answer is not sent yet (deferred)."""
        taken = self._taken.get(message_id)
        return taken is not None and taken.packets is None and taken.request_digest == _digest(data)

    def request_status(self, message_id: int) -> str | None:
        """``None`` for a new request inside the window, else why it is not taken (RFC 7296 §2.3)."""
        taken = self._taken.get(message_id)
        if taken is not None and taken.packets is not None:
            return f"request Message ID {message_id} was answered for another request"
        if taken is not None:
            return f"request Message ID {message_id} is being answered for another request"
        if not self.next_expected <= message_id < self.next_expected + self.window_size:
            return (
                f"request Message ID {message_id} outside the window "
                f"[{self.next_expected}, {self.next_expected + self.window_size})"
            )
        return None

    def begin(self, message_id: int, data: bytes) -> None:
        """Take a new request: no copy of it is processed again, and old responses may go.

        RFC 7296 §2.1: a response is kept until a request arrives whose Message
        ID is at least the response's plus the window size.
        """
        self._taken[message_id] = _Taken(_digest(data))
        if self.reassembly is not None:  # it may have come whole while its fragments were awaited
            self.reassembly.forget(False, message_id)
        oldest = message_id - self.window_size
        for old in [m for m, taken in self._taken.items() if m <= oldest and taken.packets is not None]:
            del self._taken[old]

    def forget(self, message_id: int) -> None:
        """A request taken with :meth:`begin` is dropped unanswered; a copy of it will be looked at anew."""
        taken = self._taken.get(message_id)
        if taken is not None and taken.packets is None:
            _pop(self._taken, message_id)

    def answer(
        self, request: Header, response: Header, payloads: Sequence[Payload], path: Path | None = None
    ) -> Sent:
        """Protect our response to a request taken with :meth:`begin`, store it (every fragment),
        move the window.  ``path`` is where it goes (fragmented only over UDP, RFC 7383 §2.5.1)."""
        sent = self._protect(response, payloads, path)
        self._store(request.message_id, sent.packets)
        return sent

    def answer_unprotected(self, message_id: int, request: bytes, response: Message) -> bytes:
        """Encode and store the response to a request that travels in the clear (IKE_SA_INIT,
        Message ID 0); returns its octets."""
        data = encode_message(response)
        self._taken[message_id] = _Taken(_digest(request))
        self._store(message_id, (data,))
        self._sent += ((response.header, payload_summary(response.payloads)),)
        return data

    def _store(self, message_id: int, packets: tuple[bytes, ...]) -> None:
        taken = self._taken.get(message_id)
        if taken is None or taken.packets is not None:
            raise LocalError(f"answer to request {message_id}, which was not taken with begin()")
        self._taken[message_id] = _Taken(taken.request_digest, packets)
        while (taken := self._taken.get(self.next_expected)) is not None and taken.packets is not None:
            self.next_expected += 1

    # ------------------------------------------------------------------ our requests

    def enqueue(self, exchange: X) -> None:
        """A request of ours, to be sent when the peer's window has room (RFC 7296 §2.3)."""
        self.queued += (exchange,)

    @property
    def has_room(self) -> bool:
        """Whether the peer's window takes another request of ours (RFC 7296 §2.3)."""
        return len(self.pending) < self.peer_window

    def next_to_send(self) -> tuple[int, X] | None:
        """The next queued exchange and its Message ID, if the peer's window has room."""
        if not self.queued or not self.has_room:
            return None
        message_id = self.next_send_id
        self.next_send_id += 1
        exchange, self.queued = self.queued[0], self.queued[1:]
        return message_id, exchange

    def send(
        self,
        message_id: int,
        exchange: X,
        header: Header,
        payloads: Sequence[Payload],
        now: float,
        path: Path | None = None,
    ) -> Sent:
        """Protect a request of ours (as fragments over UDP when needed, RFC 7383 §2.5) and wait for
        its response; its retransmissions repeat every fragment."""
        sent = self._protect(header, payloads, path)
        self.pending[message_id] = PendingRequest(
            message_id, header.exchange_type, exchange, sent.packets, now
        )
        return sent

    def send_unprotected(self, message_id: int, exchange: X, request: Message, now: float) -> bytes:
        """A request of ours in the clear (IKE_SA_INIT), waiting for its response like any other;
        returns its octets."""
        data = encode_message(request)
        header = request.header
        self.pending[message_id] = PendingRequest(message_id, header.exchange_type, exchange, (data,), now)
        self._sent += ((header, payload_summary(request.payloads)),)
        return data

    def response_to(self, header: Header) -> PendingRequest[X] | None:
        """The request of ours ``header`` answers (same Message ID and exchange type), now done."""
        request = self.pending.get(header.message_id)
        if request is None or request.exchange_type is not header.exchange_type:
            return None
        _pop(self.pending, header.message_id)
        if self.reassembly is not None:
            self.reassembly.forget(True, header.message_id)
        return request

    def resend_on(self, connection: int, limit: int = 4) -> list[bytes]:
        """Packets of our pending requests to send once more on a new stream connection of the peer's
        (RFC 9329 §6.2, row A39): each request at most once per connection and on at most ``limit``."""
        packets: list[bytes] = []
        for request in self.pending.values():
            if connection in request.resent_on or len(request.resent_on) >= limit:
                continue
            request.resent_on.append(connection)
            packets += request.packets
        return packets

    def abandon_all(self) -> list[X]:
        """Forget every request of ours, sent or queued; returns their exchanges."""
        exchanges = [request.exchange for request in self.pending.values()] + list(self.queued)
        self.pending.clear()
        self.queued = ()
        return exchanges

    # ------------------------------------------------------------------ time

    def get_timer(self, stream: bool) -> float | None:
        """When a request of ours is due for retransmission or giving up, or an incomplete set of
        fragments for dropping (RFC 7383 §2.6)."""
        give_up = self.give_up_after
        times = [request.deadline(stream, give_up) for request in self.pending.values()]
        if self.reassembly is not None and (expiry := self.reassembly.get_timer()) is not None:
            times.append(expiry)
        return min(times, default=None)

    def handle_timer(self, now: float, stream: bool) -> list[Retransmit | GiveUp[X] | ReassemblyExpired]:
        """Retransmit what is due over UDP; give up on what is out of time (RFC 7296 §2.1, RFC 9329 §6.2);
        drop incomplete sets of fragments past ``reassembly_timeout`` (RFC 7383 §2.6)."""
        actions: list[Retransmit | GiveUp[X] | ReassemblyExpired] = []
        if self.reassembly is not None:
            actions += [ReassemblyExpired(reason) for reason in self.reassembly.expire(now)]
        give_up = self.give_up_after
        for request in list(self.pending.values()):
            if now < request.deadline(stream, give_up):
                continue
            if request.out_of_time(now, stream, give_up):
                _pop(self.pending, request.message_id)
                actions.append(GiveUp(request))
                continue
            request.sends += 1
            request.sent_at = now
            actions.append(Retransmit(request.packets))
        return actions
