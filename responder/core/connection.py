"""RFC 9329 §6.1 rules for stream connections: which IKE SAs each one carries, corruption, orphans.

Strategy: the shell tells the core when a TCP or TLS connection is attached
(its "IKETCP" prefix arrived) and when it is gone; the endpoint hands every
message's outcome on such a connection to :class:`ConnectionRules`, which
judges the connection, never the IKE SAs it carried, and asks the shell to
close it with a :class:`~responder.core.events.ConnectionClosing` event:

* **corruption** (rows A32, A33, A64): ``corrupt_messages_max`` corrupt
  inputs in a row close the connection.  Corrupt is what cannot be
  authenticated (:attr:`~responder.core.outcomes.ReceiveOutcome.corrupt`: a
  header that does not decode, unknown SPIs, a failed integrity check, an
  IKE_SA_INIT that does not parse) and ESP whose SPI is no Child SA of ours.
  Anything that proves the sender holds an SA's keys, a new IKE_SA_INIT that
  parses, and ESP to a known SPI reset the count, so a few unknown ESP SPIs
  during a rekey never close anything (A33);
* **orphans** (rows A25, A41, A43): a connection that carries no live IKE SA
  (all the SAs it carried have ended, or it only ever carried refused
  IKE_SA_INITs, unknown SPIs or ESP) is closed ``orphan_timeout`` seconds
  after its first frame or after its last live SA ended ("a few seconds",
  §6.1).  A new IKE_SA_INIT request that creates no SA starts the grace
  period again, so the retry after INVALID_KE_PAYLOAD or
  INVALID_MAJOR_VERSION finds the connection open (A43).  "Carried" means a
  new SA was answered on it, or a valid message of a live SA (or a copy of
  one) arrived on it: an SA that moved to a newer connection keeps the older
  one open while the SA lives, until the Originator closes it (A37).

Deadlines are kept in :class:`~responder.core.deadlines.Deadlines`, and each
SA knows the connections that carry it, so neither a message nor the end of
an SA looks at every connection.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from responder.core.config import Limits
from responder.core.deadlines import Deadlines
from responder.core.events import ConnectionClosing
from responder.core.outcomes import ReceiveOutcome, Verdict
from responder.core.path import Path

__all__ = ["ConnectionRules", "StreamConnection"]

#: Outcomes after which the connection carries the SA named (RFC 9329 §6.1 "valid" messages).
_NONE: tuple[ConnectionClosing, ...] = ()
_CARRYING = (Verdict.CREATED, Verdict.ACCEPTED, Verdict.RETRANSMISSION)


@attrs.define(eq=False, slots=True)
class StreamConnection:
    """What the core knows of one attached TCP or TLS connection."""

    path: Path
    #: Live IKE SAs (our SPIs) created on it or whose valid messages came on it (A25, A37).
    carried: set[bytes] = attrs.Factory(set)
    orphan_since: float | None = None  #: since when it carries no live IKE SA (row A25)
    corrupt: int = 0  #: consecutive corrupt inputs (rows A32, A33)
    closing: bool = False  #: the core asked the shell to close it

    @property
    def id(self) -> int:
        assert self.path.connection is not None  # only stream paths are attached
        return self.path.connection


@attrs.define(eq=False)
class ConnectionRules:
    """The RFC 9329 §6.1 judge of every attached stream connection of one endpoint."""

    limits: Limits
    _connections: dict[int, StreamConnection] = attrs.field(init=False, factory=dict)
    _carriers: dict[bytes, set[int]] = attrs.field(init=False, factory=dict)  # local SPI -> connections
    _orphans: Deadlines[int] = attrs.field(init=False, factory=Deadlines)
    _closing: list[ConnectionClosing] = attrs.field(init=False, factory=list)

    def __len__(self) -> int:
        return len(self._connections)

    def get(self, connection: int) -> StreamConnection | None:
        return self._connections.get(connection)

    def closing(self) -> Sequence[ConnectionClosing]:
        """Connections the rules decided to close since the last call."""
        if not self._closing:  # the usual case, per packet: no list to make
            return _NONE
        out, self._closing = self._closing, []
        return out

    # ------------------------------------------------------------------ the shell's notices

    def attach(self, path: Path) -> None:
        """A connection's prefix arrived; until its first frame the shell's ``first_frame_timeout`` rules."""
        if path.connection is None:
            return
        self._connections[path.connection] = StreamConnection(path)

    def detach(self, connection: int) -> None:
        """The connection is gone (closed by either side)."""
        gone = self._connections.pop(connection, None)
        if gone is None:
            return
        self._orphans.set(connection, None)
        for local_spi in gone.carried:
            carriers = self._carriers.get(local_spi)
            if carriers is not None:
                carriers.discard(connection)
                if not carriers:
                    del self._carriers[local_spi]

    # ------------------------------------------------------------------ judging input

    def on_ike(self, path: Path, outcome: ReceiveOutcome, reason: str, live: bool, now: float) -> None:
        """Judge one IKE message's outcome; ``live`` says whether the SA it names still exists."""
        connection = self._find(path)
        if connection is None:
            return
        if outcome.corrupt:
            self._corrupt(connection, f"IKE message dropped: {reason}" if reason else "IKE message dropped")
        elif outcome.verdict is not Verdict.LIMITED:
            connection.corrupt = 0
            if outcome.verdict in _CARRYING and outcome.local_spi and live:
                self._carry(connection, outcome.local_spi)
        if outcome.new_sa_request and not connection.carried and not connection.closing:
            # Refused (INVALID_KE_PAYLOAD, INVALID_MAJOR_VERSION, ...) or dropped for our limits:
            # the grace period starts again, so that the retry finds the connection open (A43).
            self._start_grace(connection, now)
        self._maybe_orphaned(connection, now)

    def on_esp(self, path: Path, known: bool, spi: bytes, now: float, opened: bytes | None = None) -> None:
        """One ESP packet: to a Child SA of ours, or not (rows A32, A33); ``opened`` names our SPI of
        the IKE SA whose Child SA it authenticated for (the connection carries that SA now)."""
        connection = self._find(path)
        if connection is None:
            return
        if opened is not None:
            self._carry(connection, opened)
        if known:
            connection.corrupt = 0
        else:  # RFC 9329 §6.1: a few in a row are normal during a rekey (row A33)
            self._corrupt(connection, f"ESP with unknown SPI {spi.hex()}")
        self._maybe_orphaned(connection, now)

    def inherit(self, old: bytes, new: bytes) -> None:
        """A rekey made IKE SA ``new`` from ``old``: it goes on on the connections that carried ``old``
        (RFC 7296 §1.3.2; RFC 9329 §6.1: a connection carrying a live IKE SA is no orphan)."""
        for connection_id in tuple(self._carriers.get(old, ())):
            connection = self._connections.get(connection_id)
            if connection is not None:
                self._carry(connection, new)

    def sa_ended(self, local_spi: bytes, now: float) -> None:
        """An IKE SA is gone: the connections that carried it may be orphans now (row A25)."""
        for connection_id in self._carriers.pop(local_spi, ()):
            connection = self._connections.get(connection_id)
            if connection is not None:
                connection.carried.discard(local_spi)
                self._maybe_orphaned(connection, now)

    # ------------------------------------------------------------------ time

    def get_timer(self) -> float | None:
        return self._orphans.earliest()

    def handle_timer(self, now: float) -> None:
        """Close the connections whose grace period has run out (RFC 9329 §6.1, A25)."""
        for connection_id in self._orphans.due(now):
            connection = self._connections.get(connection_id)
            if connection is None or connection.closing or connection.carried:
                continue
            connection.orphan_since = None
            self._close(
                connection,
                "orphan",
                f"carried no live IKE SA for {self.limits.orphan_timeout:g}s (RFC 9329 §6.1)",
            )

    # ------------------------------------------------------------------ helpers

    def _find(self, path: Path) -> StreamConnection | None:
        return self._connections.get(path.connection) if path.connection is not None else None

    def _corrupt(self, connection: StreamConnection, what: str) -> None:
        """One more corrupt input in a row (RFC 9329 §6.1, rows A32, A33, A64)."""
        connection.corrupt += 1
        if connection.corrupt >= self.limits.corrupt_messages_max:
            count, connection.corrupt = connection.corrupt, 0
            self._close(
                connection,
                "corrupt",
                f"{count} consecutive corrupt messages, the last one: {what} (RFC 9329 §6.1)",
            )

    def _carry(self, connection: StreamConnection, local_spi: bytes) -> None:
        if connection.orphan_since is None and local_spi in connection.carried:
            return  # the usual case, per ESP packet: nothing changes
        connection.carried.add(local_spi)
        self._carriers.setdefault(local_spi, set()).add(connection.id)
        connection.orphan_since = None
        self._orphans.set(connection.id, None)

    def _maybe_orphaned(self, connection: StreamConnection, now: float) -> None:
        """Start the grace period of a connection that has carried frames but no live IKE SA."""
        if not connection.carried and connection.orphan_since is None and not connection.closing:
            self._start_grace(connection, now)

    def _start_grace(self, connection: StreamConnection, now: float) -> None:
        connection.orphan_since = now
        self._orphans.set(connection.id, now + self.limits.orphan_timeout)

    def _close(self, connection: StreamConnection, kind: str, reason: str) -> None:
        if connection.closing:
            return
        connection.closing = True
        connection.orphan_since = None
        self._orphans.set(connection.id, None)
        self._closing.append(ConnectionClosing(connection.id, kind, reason))
