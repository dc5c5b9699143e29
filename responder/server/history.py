"""What the web console shows of the past: each IKE SA's messages and what became of them.

Strategy: :class:`History` is an :class:`~responder.server.contracts.EventObserver`
(registered by :func:`~responder.server.serve.serve` when the console is on)
that turns the core's events into one ladder per IKE SA, named by our SPI:

* a **message** row for each :class:`~responder.core.events.MessageAccepted`
  (in) and :class:`~responder.core.events.MessageSent` (out): exchange,
  Message ID, request or response, and the payloads as the core saw them
  (inner payloads decrypted, notifies with their types: ``N(INITIAL_CONTACT)``);
  what a request of the peer's came to (:class:`RequestAnswered`) or a
  response to ours (:class:`ResponseReceived`) is its ``result``;
* a **note** row for what happened to the SA in between: established,
  Child SAs made, refused and deleted, rekeys, a new path, a retransmission
  answered from the cache, an authenticated message dropped, and why it closed.

IKE_SA_INIT requests refused without keeping an SA (:class:`IkeSaInitRefused`:
a COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN...) have no SA to hang on:
they go to a list of their own.

Everything is bounded, since peers cause it at will: the latest
``messages`` rows per SA (older ones are counted, not kept), at most
:data:`LIVE_MAX` SAs tracked at once (past it the oldest never-established
one is forgotten first), ``closed_kept`` closed SAs kept for show, and
:data:`REFUSALS_MAX` refusals.  The observer is called synchronously by the
engine and never blocks; times are wall-clock seconds from ``clock``.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import Any, Final

import attrs

from responder.core.events import (
    AnswerDeferred,
    AuthenticationFailed,
    ChildSaDeleted,
    ChildSaEstablished,
    ChildSaRefused,
    ChildSasMoved,
    Event,
    IkeSaClosed,
    IkeSaEstablished,
    IkeSaInitRefused,
    IkeSaRekeyed,
    MessageAccepted,
    MessageDropped,
    MessageSent,
    PathChanged,
    RequestAnswered,
    ResponseReceived,
    RetransmissionAnswered,
)
from responder.core.path import Path
from responder.server.logs import where

__all__ = ["LIVE_MAX", "REFUSALS_MAX", "History", "SaRecord"]

LIVE_MAX: Final = 1000  #: IKE SAs tracked at once (live ones; closed ones have their own bound)
REFUSALS_MAX: Final = 100  #: IKE_SA_INIT refusals kept
_PENDING_MAX: Final = 16  #: results waiting for their response to be sent, per SA

JSON = dict[str, Any]


@attrs.define(eq=False)
class SaRecord:
    """One IKE SA's ladder: its rows, oldest first, and what is known of it."""

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    started: float
    rows: deque[JSON]
    peer: str = ""  #: where its first event came from (``tcp 192.0.2.1:40001 conn 3``)
    remote_id: str | None = None
    established: bool = False
    closed: float | None = None
    close_reason: str | None = None
    rows_dropped: int = 0  #: rows older than the ones kept
    pending: dict[int, str] = attrs.Factory(dict)  #: Message ID -> result of a response not yet sent

    def add(self, row: JSON) -> None:
        if self.rows.maxlen is not None and len(self.rows) == self.rows.maxlen:
            self.rows_dropped += 1
        self.rows.append(row)

    def summary(self) -> JSON:
        """What the SA table shows of an SA the engine no longer holds."""
        return {
            "local_spi": self.local_spi.hex(),
            "spi_i": self.spi_i.hex(),
            "spi_r": self.spi_r.hex(),
            "peer": self.peer,
            "peer_id": self.remote_id,
            "established": self.established,
            "started": self.started,
            "closed": self.closed,
            "close_reason": self.close_reason,
        }

    def ladder(self) -> JSON:
        return {**self.summary(), "rows_dropped": self.rows_dropped, "rows": list(self.rows)}


@attrs.define(eq=False)
class History:
    """The event observer behind the console's ladders; see the module docstring."""

    messages: int = 100  #: rows kept per IKE SA
    closed_kept: int = 50  #: closed IKE SAs kept
    clock: Callable[[], float] = time.time
    live_max: int = LIVE_MAX
    #: Live IKE SAs, oldest first.
    _records: OrderedDict[bytes, SaRecord] = attrs.field(init=False, factory=OrderedDict)
    _closed: OrderedDict[bytes, SaRecord] = attrs.field(init=False, factory=OrderedDict)
    _refusals: deque[JSON] = attrs.field(init=False, factory=lambda: deque(maxlen=REFUSALS_MAX))
    #: Live IKE SAs whose ladder was dropped to stay within ``live_max``.
    forgotten: int = attrs.field(init=False, default=0)

    # ------------------------------------------------------------------ reading

    def record(self, local_spi: bytes) -> SaRecord | None:
        """The ladder of the IKE SA with our SPI ``local_spi``, live or closed."""
        return self._records.get(local_spi) or self._closed.get(local_spi)

    def closed_records(self) -> Iterator[SaRecord]:
        """Closed IKE SAs still kept, newest first."""
        return reversed(self._closed.values())

    @property
    def live_count(self) -> int:
        """IKE SAs whose ladder is kept and that have not closed."""
        return len(self._records)

    def refusals(self) -> list[JSON]:
        """IKE_SA_INIT requests refused without an SA, newest first."""
        return list(reversed(self._refusals))

    # ------------------------------------------------------------------ EventObserver

    def observe(self, event: Event, path: Path | None) -> None:
        now = self.clock()
        if isinstance(event, IkeSaInitRefused) and not event.local_spi:
            self._refusals.append(
                {
                    "time": now,
                    "peer": where(path),
                    "spi_i": event.spi_i.hex(),
                    "notify": event.notify.name,
                    "reason": event.reason,
                }
            )
            return
        if not event.local_spi or isinstance(event, AuthenticationFailed | IkeSaClosed | MessageDropped):
            record = self.record(event.local_spi) if event.local_spi else None
            if record is None:
                return  # about no SA, or an SA we never saw begin (or already forgot)
        else:
            record = self._track(event, path, now)
        self._apply(record, event, now)

    def _track(self, event: Event, path: Path | None, now: float) -> SaRecord:
        # A closed SA still gets its last rows: the answer to the peer's Delete leaves after IkeSaClosed.
        record = self.record(event.local_spi)
        if record is None:
            if len(self._records) >= self.live_max:
                self._forget_one()
            spi_i: bytes = getattr(event, "spi_i", b"")
            spi_r: bytes = getattr(event, "spi_r", b"")
            record = SaRecord(event.local_spi, spi_i, spi_r, now, deque(maxlen=self.messages))
            record.peer = where(path)
            self._records[event.local_spi] = record
        else:
            spi_r = getattr(event, "spi_r", b"")
            if spi_r and not record.spi_r:
                record.spi_r = spi_r
        return record

    def _forget_one(self) -> None:
        """Make room: the oldest SA that never authenticated, else the oldest of all."""
        victim = next((spi for spi, rec in self._records.items() if not rec.established), None)
        if victim is None:
            victim = next(iter(self._records))
        del self._records[victim]
        self.forgotten += 1

    def _apply(self, record: SaRecord, event: Event, now: float) -> None:
        match event:
            case MessageAccepted() | MessageSent():
                row: JSON = {
                    "time": now,
                    "kind": "message",
                    "direction": "in" if isinstance(event, MessageAccepted) else "out",
                    "exchange": event.exchange.name,
                    "message_id": event.message_id,
                    "response": event.is_response,
                    "payloads": list(event.payloads),
                }
                if isinstance(event, MessageSent) and event.is_response:
                    result = record.pending.pop(event.message_id, None)
                    if result is not None:
                        row["result"] = result
                record.add(row)
            case RequestAnswered():
                if not self._attach(record, "out", event.message_id, event.result):
                    if len(record.pending) >= _PENDING_MAX:
                        record.pending.clear()
                    record.pending[event.message_id] = event.result
            case ResponseReceived():
                self._attach(record, "in", event.message_id, event.result)
            case IkeSaClosed():
                if self._records.pop(event.local_spi, None) is None:
                    return  # closed already
                record.closed, record.close_reason = now, event.reason
                self._note(record, now, "closed", f"IKE SA closed: {event.reason}")
                if self.closed_kept:
                    self._closed[event.local_spi] = record
                    while len(self._closed) > self.closed_kept:
                        self._closed.popitem(last=False)
            case _:
                text = _note_text(event)
                if isinstance(event, IkeSaEstablished):
                    record.established, record.remote_id = True, event.remote_id
                if text is not None:
                    self._note(record, now, type(event).__name__, text)

    @staticmethod
    def _attach(record: SaRecord, direction: str, message_id: int, result: str) -> bool:
        """Put ``result`` on the latest response row going ``direction`` with ``message_id``."""
        for row in reversed(record.rows):
            if (
                row["kind"] == "message"
                and row["direction"] == direction
                and row["response"]
                and row["message_id"] == message_id
            ):
                row["result"] = result
                return True
        return False

    @staticmethod
    def _note(record: SaRecord, now: float, kind: str, text: str) -> None:
        record.add({"time": now, "kind": "note", "event": kind, "text": text})


def _note_text(event: Event) -> str | None:
    """One line for a note row (``None``: not shown); the SA is known, so no SPIs or address."""
    match event:
        case IkeSaEstablished():
            what = "IKE SA established" if event.rekeyed is None else f"rekeyed IKE SA {event.rekeyed.hex()}"
            return f"{what}: {event.remote_id!r} (us: {event.local_id!r}), {event.proposal}"
        case IkeSaRekeyed():
            deleter = "we delete this one" if event.deleting else "the peer deletes this one"
            return f"rekeyed: IKE SA {event.heir.hex()} takes over; {deleter}"
        case AuthenticationFailed():
            return f"IKE_AUTH failed (AUTHENTICATION_FAILED): {event.reason}"
        case ChildSaEstablished():
            what = "Child SA" if event.rekeyed is None else f"Child SA (rekey of {event.rekeyed.hex()})"
            return (
                f"{what} in {event.inbound_spi.hex()} out {event.outbound_spi.hex()} {event.mode}, "
                f"{event.proposal}, local {','.join(event.local_ts)} remote {','.join(event.remote_ts)}"
            )
        case ChildSaRefused():
            return f"Child SA refused with {event.notify.name}: {event.reason}"
        case ChildSaDeleted():
            reason = f": {event.reason}" if event.reason else ""
            return f"Child SA in {event.inbound_spi.hex()} out {event.outbound_spi.hex()} deleted{reason}"
        case ChildSasMoved():
            moved = ", ".join(spi.hex() for spi in event.inbound_spis) or "none"
            return f"Child SAs {moved} moved to IKE SA {event.heir.hex()}"
        case PathChanged():
            return f"now sent on {where(event.path)} (was {where(event.previous)})"
        case AnswerDeferred():
            work = type(event.work).__name__
            return f"{event.exchange.name} #{event.message_id} answer deferred: waiting for {work}"
        case RetransmissionAnswered():
            return f"#{event.message_id} retransmitted request answered from the cache"
        case MessageDropped():
            return f"message dropped: {event.reason}"
    return None
