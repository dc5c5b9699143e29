"""The router: which sink carries each message the core wants sent.

Strategy: every open stream connection and every UDP socket registers a
:class:`~responder.server.contracts.Sink`.  The core chose each message's
path (a response goes where its request came from; a request of ours to the
SA's path, which moves only on a valid message: RFC 9329 §6.1, rows A36,
A65); the router only finds the sink: a stream by ``path.connection``, UDP by
``(local_address, local_port)``, falling back to the wildcard socket of that
port.  IKE messages go through ``send_ike``, ESP packets through ``send_esp``.
A message whose connection is gone is counted and dropped with a
rate-limited log line; the responder never opens a connection itself nor
falls back to UDP (RFC 9329 §6.1, row A1).
"""

from __future__ import annotations

import logging
from collections import Counter
from ipaddress import IPv4Address, IPv6Address

import attrs
import trio

from responder.core.path import Outgoing, Path
from responder.server.contracts import Sink
from responder.server.logs import RateLimiter, where

__all__ = ["Router", "SinkKey", "sink_key"]

logger = logging.getLogger("responder.server.engine")

IPAddress = IPv4Address | IPv6Address
SinkKey = int | tuple[IPAddress, int]  # a connection number, or a UDP socket's (local address, port)
_WILDCARD: dict[int, IPAddress] = {4: IPv4Address(0), 6: IPv6Address(0)}  # a socket bound to every address


def sink_key(path: Path) -> SinkKey:
    """How a path's sink is registered: its connection number, or its UDP socket's address."""
    return path.connection if path.connection is not None else (path.local_address, path.local_port)


@attrs.define(eq=False)
class Router:
    """The sinks of every stream connection and UDP socket, and what went through them."""

    limiter: RateLimiter
    #: ``messages_out``, ``esp_out``, ``sends_dropped``, ``internal_errors``
    counts: Counter[str] = attrs.field(factory=Counter)
    _sinks: dict[SinkKey, Sink] = attrs.field(init=False, factory=dict)

    @property
    def connections(self) -> int:
        return sum(1 for key in self._sinks if isinstance(key, int))

    @property
    def udp_sockets(self) -> int:
        return sum(1 for key in self._sinks if not isinstance(key, int))

    def attached(self, path: Path) -> bool:
        return sink_key(path) in self._sinks

    def attach(self, path: Path, sink: Sink) -> None:
        key = sink_key(path)
        if key in self._sinks:
            logger.warning("%s attached twice; the newer sink replaces the older", where(path))
        self._sinks[key] = sink
        logger.debug("attached %s", where(path) if path.connection is not None else key)

    def detach(self, path: Path) -> None:
        self._sinks.pop(sink_key(path), None)

    def route(self, outgoing: Outgoing) -> None:
        """Hand one message or packet to the sink of its path; count and log what cannot go."""
        path = outgoing.path
        key = sink_key(path)
        sink = self._sinks.get(key)
        if sink is None and path.connection is None:
            sink = self._sinks.get((_WILDCARD[path.local_address.version], path.local_port))
        sent = False
        if sink is not None:
            try:
                if outgoing.esp:
                    sent = sink.send_esp(outgoing.data, path, outgoing.tos, outgoing.df)
                else:
                    sent = sink.send_ike(outgoing.data, path)
            except Exception:  # a sink must not raise; one that does loses this message only
                self.counts["internal_errors"] += 1
                logger.exception("%s sink raised", where(path))
        if sent:
            self.counts["esp_out" if outgoing.esp else "messages_out"] += 1
            return
        self.counts["sends_dropped"] += 1
        self.limiter.log(
            logger,
            logging.INFO,
            ("unsent", key),
            trio.current_time(),
            "%s %s: %s of %d octets dropped",
            where(path),
            "connection gone" if sink is None else "send queue full or closing",
            "ESP packet" if outgoing.esp else "message",
            len(outgoing.data),
        )

    def close(self, path: Path, reason: str) -> bool:
        """End a stream connection through its sink (RFC 9329 §6.1); ``False`` if it is gone."""
        sink = self._sinks.get(sink_key(path))
        if sink is None:
            return False
        try:
            sink.close(reason)
        except Exception:  # a sink must not raise; one that does stays open
            self.counts["internal_errors"] += 1
            logger.exception("%s sink.close raised", where(path))
        return True
