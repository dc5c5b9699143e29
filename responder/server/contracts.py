"""What the server's parts promise each other.

Strategy: the Trio shell has three kinds of part, written and tested apart:

* **transports** (:mod:`~responder.server.streams` for TCP and TLS,
  :mod:`~responder.server.udp` for UDP) own sockets and streams.  They
  deframe what arrives and hand each IKE message to the engine with the
  :class:`~responder.core.path.Path` it came on; ESP goes to the engine's
  ESP handler.  Each open stream or UDP socket registers a :class:`Sink`
  through which the engine sends IKE messages and ESP packets.
* the **engine** (:mod:`~responder.server.engine`) owns the sans-IO
  :class:`~responder.core.endpoint.Endpoint`, the clock, one task per IKE SA
  (:mod:`~responder.server.sa_runner`) and the router
  (:mod:`~responder.server.router`), which sends every outgoing message to
  the sink of its path (RFC 9329 §6.1: the connection that last carried a
  valid message); it logs every event.
* **observers** (the Wireshark key log, :mod:`~responder.server.keylog`)
  see the core's events beside the path of the SA they concern.
* **inner sinks** (the TUN device, :mod:`~responder.server.tun`) take the
  decrypted packets of one backend's Child SAs (:class:`InnerSink`).

Every call across these lines is synchronous and never blocks: a sink queues
what it is given and a task of its own writes it, so the engine can run the
core's transitions without awaiting anything in between (no lock needed).

The core may also decide to end a stream connection (after too many
consecutive corrupt inputs on it, RFC 9329 §6.1, rows A32, A33, or once it
has carried no live IKE SA for a grace period, row A25); the engine does it
through the sink (:meth:`Sink.close`).  That never ends an IKE SA.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Protocol

from responder.core.data_plane import InnerPacket
from responder.core.events import Event
from responder.core.path import Path

__all__ = ["Earned", "EngineInput", "EventObserver", "InnerSink", "Sink"]


class Earned(enum.IntEnum):
    """What a stream connection has earned, by the IKE SAs it carries; the least is evicted first.

    A connection still in its TLS handshake or waiting for its prefix or
    first frame has earned :attr:`NOTHING` too.
    """

    NOTHING = 1  #: no live IKE SA: only refused IKE_SA_INITs, unknown SPIs, ESP of no SA, or silence
    HALF_OPEN = 2  #: only IKE SAs that have not authenticated (IKE_SA_INIT answered, IKE_AUTH not yet)
    AUTHENTICATED = 3  #: an IKE SA whose peer has authenticated: never evicted


class Sink(Protocol):
    """Where the engine sends unframed IKE messages for one connection or UDP socket."""

    def send_ike(self, message: bytes, path: Path) -> bool:
        """Queue ``message`` (no RFC 9329 length, no non-ESP marker) towards ``path``.

        The sink adds its own framing: the Length and non-ESP marker on a
        stream (RFC 9329 §3.1), the non-ESP marker on UDP ports other than
        500 (RFC 3948 §2.2).  Returns ``False`` when the message cannot be
        queued (the connection is closing, or its send queue is full, in
        which case the sink closes the connection); never raises, never blocks.
        """
        ...

    def send_esp(self, packet: bytes, path: Path, tos: int = 0, df: bool | None = None) -> bool:
        """Queue an ESP packet (RFC 4303) towards ``path``, framed as the transport needs.

        On a stream it becomes an RFC 9329 §3.2 ESP frame (Length, no
        marker); on UDP it is sent as it is, which only a socket with the
        non-ESP marker may do (RFC 3948 §2.1: port 4500, never 500).  ``tos``
        and ``df`` are the outer marking the core asks for
        (:class:`~responder.core.path.Outgoing`): a UDP socket applies them
        to this datagram, a stream ignores them (one marking per connection,
        RFC 9329 §6.8, §9.3).  Returns ``False`` when it cannot be queued;
        never raises, never blocks.
        """
        ...

    def close(self, reason: str) -> None:
        """End this connection gracefully: stop reading, write what is queued, then close.

        ``reason`` is logged with the close.  The transport detaches the sink
        soon after (not from inside this call); messages given to
        :meth:`send_ike` meanwhile may still be written.  Idempotent; a no-op
        for a UDP socket, which is shared by every peer.  Never raises, never
        blocks.
        """
        ...


class EngineInput(Protocol):
    """What transports call on the engine.  Every method returns at once."""

    def attach(self, path: Path, sink: Sink) -> None:
        """A stream connection (``path.connection`` set) or a UDP socket (``None``) is ready.

        For UDP the sink is keyed by ``(path.local_address, path.local_port)``;
        the remote half of ``path`` is ignored.
        """
        ...

    def detach(self, path: Path) -> None:
        """The connection or socket is gone; nothing more may be sent through its sink."""
        ...

    def receive_ike(self, message: bytes, path: Path) -> None:
        """One IKE message, unframed, as it arrived on ``path``."""
        ...

    def receive_esp(self, packet: bytes, path: Path, ecn: int = 0) -> None:
        """One ESP packet, as it arrived on ``path`` (RFC 4303; RFC 9329 §3.2, RFC 3948 §2.1);
        ``ecn`` is the outer IP header's ECN field where the transport sees it per packet (UDP),
        Not-ECT (0) on a stream (RFC 6040 §4.2, RFC 9329 §9.5)."""
        ...

    def inner_backlog(self) -> bool:
        """Whether a program reading decrypted packets (the API backend) has fallen behind, so that
        the transport should let it run before handing over more."""
        ...

    def receive_esp_batch(self, packets: Sequence[bytes], path: Path, ecn: int = 0) -> None:
        """ESP packets that arrived together on ``path``, in order: one read of a stream or one
        wakeup of a UDP socket (what the engine sends back is then written once per batch); all
        with the outer ECN field ``ecn``."""
        ...


class EventObserver(Protocol):
    """Sees every core event with the path of the SA it concerns (``None`` if unknown)."""

    def observe(self, event: Event, path: Path | None) -> None: ...


class InnerSink(Protocol):
    """Takes the decrypted packets of one backend's Child SAs (``Engine.attach_backend``)."""

    def deliver(self, inner: InnerPacket) -> None:
        """One decrypted packet; never blocks (the TUN device writes it at once or drops and counts it)."""
        ...

    def counters(self) -> Mapping[str, int]:
        """Its counters, for ``Engine.stats`` (packets and octets each way, drops by reason)."""
        ...
