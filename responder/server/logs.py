"""Readable log lines for the core's events, and a rate limiter for noisy ones.

Strategy: the core never logs; it hands out events (:mod:`responder.core.events`)
and the engine passes each one here together with the :class:`Path` of its SA.
:func:`describe_event` turns an event into one line that a person can grep:
the peer's address and transport, both SPIs in hex, the exchange and Message
ID, and what came of it (refusals carry the core's reason: which transform
type matched nothing, why AUTH failed, which selectors were unacceptable).

Lines are built field by field from the event; an event is never formatted
whole, so the keys that ride on :class:`IkeSaEstablished` and
:class:`ChildSaEstablished` (``repr=False``) can never reach a log line.

:class:`RateLimiter` lets a few lines per key through per interval, and a
bounded number in all, and counts the rest, which the next line of that key
reports as "(suppressed K similar)".  The engine, the connection table and
the UDP transport use it for anything a peer can trigger at will: drops,
full queues, limit hits, and every line about an IKE SA that has not
authenticated.  Its memory is bounded: past ``max_keys`` keys the oldest is
forgotten.  :func:`clip` bounds the length of a line, since a peer controls
some of its text (identities, the reasons of decode errors).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import OrderedDict
from collections.abc import Hashable, Iterable

import attrs

from responder.core.enums import NotifyType
from responder.core.events import (
    AnswerDeferred,
    AuthenticationFailed,
    ChildSaDeleted,
    ChildSaEstablished,
    ChildSaLimitReached,
    ChildSaRefused,
    ChildSasMoved,
    ConnectionClosing,
    EspSaRemoved,
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

__all__ = [
    "LOG_LINE_MAX",
    "RateLimiter",
    "address_port",
    "clip",
    "describe_event",
    "event_level",
    "spi_list",
    "spis",
    "where",
]

#: The longest log line about an event, in characters; the rest is cut (:func:`clip`).
LOG_LINE_MAX = 1024
#: How many SPIs a line names before it says "and N more" (:func:`spi_list`).
SPIS_NAMED = 3

#: IKE_SA_INIT refusals that are part of a normal exchange (RFC 7296 §1.2, §2.6).
_ROUTINE_REFUSALS = frozenset({NotifyType.COOKIE, NotifyType.INVALID_KE_PAYLOAD})


def spis(spi_i: bytes, spi_r: bytes = b"") -> str:
    """``SPIs 0123456789abcdef/0000000000000000`` (the responder's SPI as zeros when unknown)."""
    return f"SPIs {spi_i.hex() or '-'}/{spi_r.hex() or '0' * 16}"


def clip(line: str, limit: int = LOG_LINE_MAX) -> str:
    """``line``, cut to ``limit`` characters with a note of how many were cut."""
    if len(line) <= limit:
        return line
    keep = max(0, limit - 40)  # room for the note
    return f"{line[:keep]}... ({len(line) - keep} more characters)"


def spi_list(local_spis: Iterable[bytes], count: int, named: int = SPIS_NAMED) -> str:
    """``0123456789abcdef, ... and 997 more``: at most ``named`` of ``count`` SPIs, in hex."""
    shown = [spi.hex() for spi in itertools.islice(local_spis, named)]
    more = count - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def where(path: Path | None) -> str:
    """The peer's side of a path: ``tcp 192.0.2.1:40001 conn 3``."""
    if path is None:
        return "(no path)"
    conn = f" conn {path.connection}" if path.connection is not None else ""
    return f"{path.transport.value} {address_port(path.remote_address, path.remote_port)}{conn}"


def address_port(address: object, port: int) -> str:
    """``192.0.2.1:500`` or ``[2001:db8::1]:500``."""
    text = str(address)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def describe_event(event: Event, path: Path | None) -> str:
    """One log line for ``event``; never includes key material."""
    peer = where(path)
    match event:
        case RequestAnswered():
            ids = spis(event.spi_i, event.spi_r)
            return f"{peer} {ids} {event.exchange.name} #{event.message_id} answered: {event.result}"
        case AnswerDeferred():
            ids = spis(event.spi_i, event.spi_r)
            what = type(event.work).__name__
            exchange = f"{event.exchange.name} #{event.message_id}"
            return f"{peer} {ids} {exchange} answer deferred: waiting for {what}"
        case ResponseReceived():
            ids = spis(event.spi_i, event.spi_r)
            exchange = f"{event.exchange.name} #{event.message_id}"
            return f"{peer} {ids} {exchange} response received: {event.result}"
        case IkeSaInitRefused():
            refused = f"refused with {event.notify.name}: {event.reason}"
            return f"{peer} {spis(event.spi_i)} IKE_SA_INIT #0 {refused}"
        case AuthenticationFailed():
            ids = spis(event.spi_i, event.spi_r)
            return f"{peer} {ids} IKE_AUTH failed (AUTHENTICATION_FAILED): {event.reason}"
        case IkeSaEstablished():
            integrity = f" integrity {event.integrity_name}" if event.integrity_name else ""
            what = (
                "IKE SA established" if event.rekeyed is None else f"IKE SA {event.rekeyed.hex()} rekeyed to"
            )
            return (
                f"{peer} {spis(event.spi_i, event.spi_r)} {what}: "
                f"{event.remote_id!r} (us: {event.local_id!r}) proposal {event.proposal} "
                f"encryption {event.encryption_name}{integrity}"
            )
        case IkeSaRekeyed():
            deleter = "we delete it" if event.deleting else "the peer deletes it"
            ids = spis(event.spi_i, event.spi_r)
            return f"{peer} {ids} IKE SA rekeyed: IKE SA {event.heir.hex()} takes over; {deleter}"
        case ChildSaEstablished():
            what = (
                "Child SA established" if event.rekeyed is None else f"Child SA {event.rekeyed.hex()} rekeyed"
            )
            lifetime = ""
            if event.rekey_in is not None:
                lifetime += f"; rekey in {event.rekey_in:.0f} s"
            if event.expires_in is not None:
                lifetime += f"; expires in {event.expires_in:.0f} s"
            return (
                f"{peer} {spis(event.spi_i, event.spi_r)} {what}: ESP in "
                f"{event.inbound_spi.hex()} out {event.outbound_spi.hex()} {event.mode} "
                f"proposal {event.proposal} local {','.join(event.local_ts)} "
                f"remote {','.join(event.remote_ts)}{lifetime}"
            )
        case ChildSaRefused():
            ids = spis(event.spi_i, event.spi_r)
            return f"{peer} {ids} Child SA refused with {event.notify.name}: {event.reason}"
        case ChildSasMoved():
            moved = ", ".join(spi.hex() for spi in event.inbound_spis) or "none"
            ids = spis(event.spi_i, event.spi_r)
            return f"{peer} {ids} Child SAs {moved} moved to IKE SA {event.heir.hex()}"
        case ChildSaDeleted():
            reason = f": {event.reason}" if event.reason else ""
            return (
                f"{peer} {spis(event.spi_i, event.spi_r)} Child SA deleted: ESP in {event.inbound_spi.hex()} "
                f"out {event.outbound_spi.hex()}{reason}"
            )
        case ChildSaLimitReached():
            kind = "hard" if event.hard else "soft"
            direction = "outbound" if event.outbound else "inbound"
            return (
                f"{peer} {spis(event.spi_i, event.spi_r)} Child SA ESP in {event.inbound_spi.hex()} reached "
                f"its {kind} limit {event.limit} ({direction}): {event.action}"
            )
        case EspSaRemoved():
            return (
                f"{peer} ESP SAs in {event.inbound_spi.hex()} out {event.outbound_spi.hex()} removed: "
                f"in {event.packets_in} packets ({event.octets_in} octets), "
                f"out {event.packets_out} packets ({event.octets_out} octets); dropped "
                f"{event.replay_drops} replayed, {event.integrity_failures} failing integrity, "
                f"{event.malformed} malformed"
            )
        case IkeSaClosed():
            return f"{peer} {spis(event.spi_i, event.spi_r)} IKE SA closed: {event.reason}"
        case MessageAccepted():
            kind = "response" if event.is_response else "request"
            ids = spis(event.spi_i, event.spi_r)
            exchange = f"{event.exchange.name} #{event.message_id}"
            return f"{peer} {ids} {exchange} {kind} accepted{_listed(event.payloads)}"
        case MessageSent():
            kind = "response" if event.is_response else "request"
            ids = spis(event.spi_i, event.spi_r)
            return (
                f"{peer} {ids} {event.exchange.name} #{event.message_id} {kind} sent{_listed(event.payloads)}"
            )
        case PathChanged():
            # RFC 9329 §6.1 (rows A28, A36): answer on the path of the last valid message.
            ids = spis(event.spi_i, event.spi_r)
            return f"{peer} {ids} now sent on {where(event.path)} (was {where(event.previous)})"
        case RetransmissionAnswered():
            ids = spis(event.spi_i, event.spi_r)
            return f"{peer} {ids} #{event.message_id} retransmitted request answered from the cache"
        case MessageDropped():
            ids = f" {spis(event.spi_i, event.spi_r)}" if event.spi_i else ""
            return f"{peer}{ids} message dropped: {event.reason}"
        case ConnectionClosing():
            return f"{peer} closed: {event.reason}"
    return f"{peer} {type(event).__name__}"  # pragma: no cover - every Event kind is matched above


def _listed(names: tuple[str, ...]) -> str:
    """`` [ IDi N(INITIAL_CONTACT) AUTH ]``, as charon lists a message's payloads (`` [ ]``: none)."""
    return f" [ {' '.join(names)} ]" if names else " [ ]"


def event_level(event: Event) -> int:
    """The logging level of ``event``'s line."""
    if isinstance(event, MessageAccepted | MessageSent | RetransmissionAnswered):
        return logging.DEBUG
    if isinstance(event, AuthenticationFailed):
        return logging.WARNING
    if isinstance(event, ConnectionClosing):
        return logging.WARNING if event.kind == "corrupt" else logging.INFO
    if isinstance(event, IkeSaInitRefused) and event.notify not in _ROUTINE_REFUSALS:
        return logging.WARNING
    return logging.INFO


@attrs.define(eq=False)
class RateLimiter:
    """At most ``burst`` lines per key per ``interval`` seconds, ``total`` in all; counts the rest.

    Token buckets: a key may log ``burst`` lines at once and then one more every
    ``interval / burst`` seconds (``burst`` 1: one line per interval); all keys
    together ``total`` lines per interval, if ``total`` is set.  The overall
    budget bounds the log when a peer varies the key (a new source address per
    message: past ``max_keys`` a key is forgotten and would log afresh).
    ``check(key, now)`` returns ``None`` when the line must be suppressed, else
    the number of lines suppressed for that key since the last one let through
    (to be reported as "suppressed K similar").
    """

    interval: float = 10.0
    max_keys: int = 1024
    burst: int = 1
    total: int | None = None
    held_back: int = attrs.field(init=False, default=0)  #: lines suppressed since the start
    _last: OrderedDict[Hashable, tuple[float, float, int]] = attrs.field(init=False, factory=OrderedDict)
    _all: tuple[float, float] | None = attrs.field(init=False, default=None)

    def check(self, key: Hashable, now: float) -> int | None:
        tokens, last, suppressed = self._last.pop(key, (float(self.burst), now, 0))
        tokens = min(float(self.burst), tokens + (now - last) * self.burst / self.interval)
        everyone = math.inf
        if self.total is not None:
            everyone, everyone_last = self._all if self._all is not None else (float(self.total), now)
            everyone = min(float(self.total), everyone + (now - everyone_last) * self.total / self.interval)
        allowed = tokens >= 1.0 and everyone >= 1.0
        if allowed:
            tokens -= 1.0
            everyone -= 1.0
        if self.total is not None:
            self._all = (everyone, now)
        self._last[key] = (tokens, now, 0 if allowed else suppressed + 1)
        while len(self._last) > self.max_keys:
            self._last.popitem(last=False)
        if not allowed:
            self.held_back += 1
            return None
        return suppressed

    def log(
        self, logger: logging.Logger, level: int, key: Hashable, now: float, message: str, *args: object
    ) -> bool:
        """Log ``message % args`` unless ``key`` was logged less than ``interval`` ago; True if logged."""
        if not logger.isEnabledFor(level):
            return False
        suppressed = self.check(key, now)
        if suppressed is None:
            return False
        if suppressed:
            logger.log(level, message + " (suppressed %d similar)", *args, suppressed)
        else:
            logger.log(level, message, *args)
        return True
