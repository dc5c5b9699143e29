"""The shell's lab impairments: our responses dropped, delayed, sent twice, corrupted, or followed by a
closed connection (issue 13; the core's own are in :mod:`responder.core.config.impairments`).

Strategy: the engine hands every batch of messages the core wants sent to
:meth:`OutboundImpairer.send` instead of straight to the router.  Without an
impairment of this kind it forwards the batch untouched.  With one, it reads
the IKE header of each message (the core's :func:`decode_header`: the one
place the shell looks into IKE octets, and only in a lab) to learn whether
it is a response, of which IKE SA (our SPI) and to which Message ID ``N``:

* the **first transmission** of our response to ``N`` of an IKE SA is
  impaired, every packet of it (all RFC 7383 fragments, which leave in one
  batch); the copies that the initiator's retransmissions ask for later pass
  unharmed, so a retransmitting initiator recovers (RFC 7296 §2.1);
* ``drop_response``: it is not sent;
* ``delay_response``: it is sent ``seconds`` later (:meth:`run` holds it
  under the engine's clock), and copies asked for meanwhile are not sent, as
  they would overtake it;
* ``duplicate_response``: it is sent twice, back to back; the initiator
  must ignore the second copy (RFC 7296 §2.1: a response it no longer waits for);
* ``corrupt_icv``: the last octet of each packet (the ICV, or the AEAD tag,
  of the Encrypted payload, RFC 7296 §3.14) has its lowest bit flipped, so
  the initiator's integrity check fails and it drops the message
  (RFC 7296 §2.21.2);
* ``tcp_close_after``: once it is queued on a TCP or TLS connection, the
  connection is closed gracefully (what is queued is written first); the
  IKE SA stays and the initiator may reconnect (RFC 9329 §6.1, §6.2); over
  UDP nothing happens.

Precedence on one ``N``: drop, then delay; a delayed response gets the
others when it leaves.  Stateless answers (SPIr zero), our requests and ESP
are never impaired.  What an impairment does is logged at INFO, at most 20
lines per 10 s per impairment, so a flood of IKE SAs cannot flood the log.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence

import attrs
import trio

from responder.core.config import Impairments
from responder.core.errors import DecodeError
from responder.core.messages import Header, decode_header
from responder.core.path import Outgoing, Path
from responder.server.logs import RateLimiter, spis, where

__all__ = ["OutboundImpairer", "corrupt_icv"]

logger = logging.getLogger("responder.server.impair")

#: IKE SAs whose impaired Message IDs are remembered (the oldest are forgotten past it).
REMEMBERED_MAX = 100_000

_Key = tuple[bytes, int]  # (our SPI, Message ID)


def corrupt_icv(data: bytes) -> bytes:
    """``data`` with the lowest bit of its last octet flipped: the ICV (or AEAD tag) of an IKE message's
    Encrypted payload, which is its last payload (RFC 7296 §3.14), no longer verifies."""
    return data[:-1] + bytes([data[-1] ^ 0x01]) if data else data


@attrs.define(eq=False)
class OutboundImpairer:
    """Applies the shell's impairments to what the engine sends; see the module docstring.

    ``route`` sends one message (the router's), ``close`` ends a stream
    connection (the router's, with a reason for its log).
    """

    impairments_of: Callable[[], Impairments]  #: the configuration's (it may be reloaded)
    route: Callable[[Outgoing], None]
    close: Callable[[Path, str], object]
    counts: Counter[str] = attrs.field(factory=Counter)  #: how often each impairment acted
    _seen: dict[bytes, set[int]] = attrs.field(init=False, factory=dict)  #: our SPI -> impaired IDs
    _held: set[_Key] = attrs.field(init=False, factory=set)  #: delayed, not yet sent
    _delayed: list[tuple[float, int, Outgoing, int]] = attrs.field(init=False, factory=list)
    _order: itertools.count[int] = attrs.field(init=False, factory=itertools.count)
    _wake: trio.Event = attrs.field(init=False, factory=trio.Event)
    _lines: RateLimiter = attrs.field(init=False, factory=lambda: RateLimiter(10.0, burst=20, total=200))

    @property
    def impairments(self) -> Impairments:
        return self.impairments_of()

    @property
    def active(self) -> bool:
        """Whether any impairment of the shell's is on (else :meth:`send` only forwards)."""
        impair = self.impairments
        return any(
            value is not None
            for value in (
                impair.drop_response,
                impair.delay_response,
                impair.duplicate_response,
                impair.corrupt_icv,
                impair.tcp_close_after,
            )
        )

    def send(self, batch: Sequence[Outgoing]) -> None:
        """Send one batch of the core's messages (one call into the core), impaired as configured."""
        if not self.active and not self._held:
            for outgoing in batch:
                self.route(outgoing)
            return
        fresh: set[_Key] = set()  # first transmissions in this batch (all fragments of one message)
        delay = self.impairments.delay_response
        for outgoing in batch:
            found = self._response(outgoing)
            if found is None:
                self.route(outgoing)
                continue
            key, header = found
            if key not in fresh:  # else another fragment of a first transmission in this batch
                if key in self._held:
                    self._note("delay_response", outgoing, header, "copy not sent: the response is held")
                    continue
                if header.message_id in self._seen.get(key[0], ()):
                    self.route(outgoing)  # a retransmission answered from the cache: unharmed
                    continue
                fresh.add(key)
                self._remember(key)
            message_id = header.message_id
            if self.impairments.drop_response == message_id:
                self._note("drop_response", outgoing, header, "not sent")
                continue
            if delay is not None and delay.message_id == message_id:
                self._held.add(key)
                due = trio.current_time() + delay.seconds
                heapq.heappush(self._delayed, (due, next(self._order), outgoing, message_id))
                self._note("delay_response", outgoing, header, f"held for {delay.seconds:g} s")
                self._wake.set()
                continue
            self._emit(outgoing, header)

    def forget(self, local_spi: bytes) -> None:
        """The IKE SA is gone: forget which of its responses were impaired."""
        self._seen.pop(local_spi, None)

    async def run(self) -> None:
        """Send delayed responses when they are due (under the engine's clock); runs until cancelled."""
        while True:
            self._wake = trio.Event()
            due = self._delayed[0][0] if self._delayed else math.inf
            with trio.move_on_at(due):
                await self._wake.wait()
            now = trio.current_time()
            while self._delayed and self._delayed[0][0] <= now:
                _, _, outgoing, _ = heapq.heappop(self._delayed)
                found = self._response(outgoing)
                if found is None:  # pragma: no cover - only responses are held
                    self.route(outgoing)
                    continue
                key, header = found
                self._held.discard(key)
                self._note("delay_response", outgoing, header, "sent now, late")
                self._emit(outgoing, header)

    # ------------------------------------------------------------------ internals

    def _response(self, outgoing: Outgoing) -> tuple[_Key, Header] | None:
        """(our SPI, Message ID) and the header of a response of an IKE SA; ``None`` for anything else."""
        if outgoing.esp:
            return None
        try:
            header, _, _ = decode_header(outgoing.data)
        except DecodeError:
            return None
        if not header.is_response or header.spi_r == bytes(8):
            return None  # our requests, stateless answers
        ours = header.spi_i if header.is_initiator else header.spi_r  # the I flag says who sent it
        return (ours, header.message_id), header

    def _remember(self, key: _Key) -> None:
        spi, message_id = key
        if spi not in self._seen and len(self._seen) >= REMEMBERED_MAX:
            del self._seen[next(iter(self._seen))]
        self._seen.setdefault(spi, set()).add(message_id)

    def _emit(self, outgoing: Outgoing, header: Header) -> None:
        """Send a first transmission with corrupt_icv, duplicate_response and tcp_close_after applied."""
        impair, message_id = self.impairments, header.message_id
        if impair.corrupt_icv == message_id:
            outgoing = attrs.evolve(outgoing, data=corrupt_icv(outgoing.data))
            self._note("corrupt_icv", outgoing, header, "sent with its ICV corrupted")
        self.route(outgoing)
        if impair.duplicate_response == message_id:
            self.route(outgoing)
            self._note("duplicate_response", outgoing, header, "sent twice")
        if impair.tcp_close_after == message_id and outgoing.path.connection is not None:
            self._note("tcp_close_after", outgoing, header, "sent; closing the connection")
            self.close(outgoing.path, f"impairment tcp_close_after={message_id}")

    def _note(self, name: str, outgoing: Outgoing, header: Header, what: str) -> None:
        self.counts[name] += 1
        self._lines.log(
            logger,
            logging.INFO,
            name,
            trio.current_time(),
            "%s %s impairment %s: %s #%d response %s",
            where(outgoing.path),
            spis(header.spi_i, header.spi_r),
            name,
            header.exchange_type.name,
            header.message_id,
            what,
        )
