"""The ESP data plane inside the core: every Child SA's ESP SA, and where inner packets go.

Strategy: the endpoint installs an :class:`~responder.core.esp.EspSa` for every
Child SA it installs (keyed by our inbound SPI, the SPI the peer sends to) and
removes it with the Child SA.  An ESP packet that opens (RFC 4303 §3.4: replay,
integrity, padding) carries an inner packet that goes to the Child SA's
backend (:class:`Backend`, chosen per child in the configuration):

* **echo** (the default for the responder's Child SAs): the core answers ICMP,
  ICMPv6 and UDP echo sent to addresses inside the selectors we own
  (:mod:`responder.core.echo`), sealed on the same Child SA and sent back on the
  path the request came on;
* **api**: the packet is queued for the program that embeds the core
  (:meth:`DataPlane.take_inner`), which sends its own with :meth:`DataPlane.seal`.
  The initiator role's Child SAs always use it.
* **tun**: like **api** at this boundary (queued, marked with its backend, for
  the shell to write into its TUN device), once the packet's addresses, protocol
  and ports are found inside the Child SA's selectors (RFC 4301 §5.2; else
  ``not_selected`` in :attr:`DataPlane.inner_drops`).  What the host sends back
  comes in through :meth:`DataPlane.route`, which finds the Child SA whose
  selectors hold it (:class:`~responder.core.outbound.OutboundTable`, RFC 4301 §5.1).

In tunnel mode an inner packet is an IP packet (Next Header 4 or 41), delivered
only from inside the peer's selectors to inside ours (RFC 4301 §5.2,
:func:`~responder.core.selector_ranges.admitted`; else ``not_selected``); in
transport mode it is the upper-layer payload alone, which the echo backend
cannot answer (counted as ``not_answered``).  Randomness for AES-CBC IVs comes
from the endpoint's injected ``random_bytes``.

Before any backend, an inner IP packet leaves the tunnel with the ECN field
RFC 6040 §4.2 gives it from the outer header's (:mod:`responder.core.outer_header`;
the shell reports the outer field, Not-ECT over TCP).  What we seal for a UDP
path carries the outer marking the child's policy asks for
(:attr:`~responder.core.path.Outgoing.tos`, ``df``); on a stream none (RFC 9329
rows A47, A60).  Every packet opened or sealed is counted against the pair's
limits (:mod:`responder.core.esp_limits`): what they reach waits in
:meth:`DataPlane.take_limits` for the endpoint, which starts the rekey or the
Delete; a pair past a hard limit carries nothing more (dropped as ``expired``).
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from collections.abc import Callable

import attrs

from responder.core.child_sa import ChildSaParams
from responder.core.config import NO_VOLUME_LIFETIME, ChildConfig, Mode, OuterPolicy
from responder.core.echo import EchoReply, answer
from responder.core.esp import Dropped, DropReason, EspSa, Opened, SequenceExhausted, esp_sa
from responder.core.esp_limits import EspLimits, LimitReached
from responder.core.interning import Interner
from responder.core.outbound import OutboundTable, Unrouted, read_flow
from responder.core.outer_header import Egress, decapsulate, marking
from responder.core.path import Outgoing, Path
from responder.core.selector_ranges import (
    SelectorRange,
    addresses_only,
    admitted,
    flow_admitted,
    owned_ranges,
)

__all__ = ["IPV4_IN_ESP", "IPV6_IN_ESP", "Backend", "DataPlane", "InnerPacket"]

IPV4_IN_ESP = 4  #: Next Header of an IPv4 packet in tunnel mode (RFC 4303 §2.6)
IPV6_IN_ESP = 41  #: ... of an IPv6 packet
_VERSIONS = {IPV4_IN_ESP: 4, IPV6_IN_ESP: 6}


class Backend(enum.Enum):
    """Where a Child SA's inner packets go (issue 12; ``backend`` of a child in the configuration)."""

    #: The core answers echo requests to addresses we own (ICMP, ICMPv6, UDP port 7).
    ECHO = "echo"
    #: A program embedding the responder takes them (``Engine.inner_packets``) and sends its own.
    API = "api"
    #: The shell's TUN device: the host's stack takes them, and routes its answers back (issue 12).
    TUN = "tun"


@attrs.frozen(slots=True)
class InnerPacket:
    """A decrypted packet for the API or TUN backend: which IKE SA and Child SA (our inbound SPI) it
    came on, its Next Header, its octets and the backend of its Child SA."""

    local_spi: bytes
    child: bytes
    next_header: int
    payload: bytes
    backend: Backend = Backend.API


@attrs.define(eq=False)
class _Installed:
    params: ChildSaParams
    esp: EspSa
    backend: Backend
    limits: EspLimits
    outer: OuterPolicy
    #: Our selectors and the peer's, read into integers once (:func:`owned_ranges`): for the echo
    #: backend and the RFC 4301 §5.2 check of what the pair delivers.
    ranges: tuple[SelectorRange, ...] = ()
    remote_ranges: tuple[SelectorRange, ...] = ()
    by_address: bool = True  #: no selector names a protocol (:func:`addresses_only`)


@attrs.define(eq=False)
class DataPlane:
    """Every ESP SA of one endpoint (see the module docstring); ``queue_max`` bounds the queue of the
    API and TUN backends."""

    random_bytes: Callable[[int], bytes] = attrs.field(repr=False)
    queue_max: int = 4096
    #: Where pairs that negotiated the same selectors share their ranges (the endpoint's, issue 14).
    intern: Interner = attrs.field(factory=Interner, repr=False)
    _installed: dict[bytes, _Installed] = attrs.field(init=False, factory=dict)
    _inner: deque[InnerPacket] = attrs.field(init=False, factory=deque)
    _limits: list[LimitReached] = attrs.field(init=False, factory=list)
    #: Packets not delivered, by reason (an ESP drop reason, ``not_answered``, ``queue_full``,
    #: ``expired``: past a hard limit, ``ecn``: CE over a Not-ECT inner packet, RFC 6040 §4.2).
    drops: Counter[str] = attrs.field(init=False, factory=Counter)
    echoed: int = 0  #: echo requests answered
    #: Inner packets whose ECN field the outer one changed (``marked``) or that arrived with a
    #: pair RFC 6040 §4.2 calls currently unused (``unexpected``).
    ecn: Counter[str] = attrs.field(init=False, factory=Counter)
    #: Decrypted tunnel-mode packets not delivered, by reason: ``not_selected`` (outside the pair's
    #: selectors, RFC 4301 §5.2; every backend), ``not_ip`` (the TUN backend).
    inner_drops: Counter[str] = attrs.field(init=False, factory=Counter)
    #: The selectors of the TUN backend's Child SAs, for :meth:`route` (RFC 4301 §5.1).
    outbound: OutboundTable = attrs.field(init=False, factory=OutboundTable)

    def install(self, params: ChildSaParams, child: ChildConfig | None) -> None:
        """The ESP SA of a new Child SA pair, with its child's backend, limits and outer marking
        (``None``: the initiator role's, the API backend and no limits but the sequence numbers)."""
        esp = esp_sa(params) if child is None else esp_sa(params, replay_window=child.replay_window)
        limits = EspLimits(NO_VOLUME_LIFETIME if child is None else child.volume, esp.outbound.suite.max_seq)
        backend = Backend.API if child is None else Backend(child.backend)
        outer = OuterPolicy() if child is None else child.outer
        ranges, remote = (
            self.intern(owned_ranges(params.local_ts)),
            self.intern(owned_ranges(params.remote_ts)),
        )
        by_address = addresses_only(ranges, remote)
        self._installed[params.inbound_spi] = _Installed(
            params, esp, backend, limits, outer, ranges, remote, by_address
        )
        if backend is Backend.TUN and params.mode is Mode.TUNNEL:
            self.outbound.add(params.inbound_spi, params.local_ts, params.remote_ts)

    def remove(self, inbound_spi: bytes) -> EspSa | None:
        """Forget the ESP SA of the Child SA ``inbound_spi``; it is returned for its counters."""
        installed = self._installed.pop(inbound_spi, None)
        self.outbound.remove(inbound_spi)
        return None if installed is None else installed.esp

    def sa(self, inbound_spi: bytes) -> EspSa | None:
        """The ESP SA of the Child SA with our inbound SPI ``inbound_spi`` (for its counters)."""
        installed = self._installed.get(inbound_spi)
        return None if installed is None else installed.esp

    def receive(
        self, owner: bytes, packet: bytes, path: Path, ecn: int = 0
    ) -> tuple[Opened | Dropped, list[Outgoing]]:
        """Open an ESP packet of one of our Child SAs and deliver its inner packet; what it sends back.

        ``ecn`` is the outer header's ECN field as the transport saw it (Not-ECT over TCP).
        """
        installed = self._installed.get(packet[:4])
        if installed is None:
            return Dropped(DropReason.WRONG_SPI), []
        if installed.limits.expired:  # RFC 4301 §4.4.2.1: past its hard lifetime
            self.drops[DropReason.EXPIRED.value] += 1
            self._retry(installed.limits)
            return Dropped(DropReason.EXPIRED), []
        inbound = installed.esp.inbound
        result = inbound.open(packet)
        if isinstance(result, Dropped):
            self.drops[result.reason.value] += 1
            return result, []
        reached = installed.limits.after(
            installed.params.inbound_spi, inbound.counters, result.seq, outbound=False
        )
        if reached is not None:
            self._limits.append(reached)
        tunnel = installed.params.mode is Mode.TUNNEL and result.next_header in (IPV4_IN_ESP, IPV6_IN_ESP)
        payload = result.payload
        if ecn and tunnel:  # RFC 6040 §4.2, RFC 7296 §2.24: before any backend
            payload, egress = decapsulate(payload, ecn)
            if egress is Egress.DROPPED:
                self.drops["ecn"] += 1
                return result, []
            if egress is not Egress.UNCHANGED:
                self.ecn[egress.value] += 1
        if installed.backend is Backend.TUN:
            self._to_tun(owner, installed, result.next_header, payload)
            return result, []
        if tunnel and not admitted(payload, installed.ranges, installed.remote_ranges, installed.by_address):
            self.inner_drops["not_selected"] += 1  # RFC 4301 §5.2: outside the pair's selectors
            return result, []
        if installed.backend is Backend.API:
            self._queue(InnerPacket(owner, installed.params.inbound_spi, result.next_header, payload))
            return result, []
        reply = answer(payload, installed.params.local_ts, installed.ranges) if tunnel else None
        if not isinstance(reply, EchoReply):
            self.drops["not_answered"] += 1
            return result, []
        next_header = IPV4_IN_ESP if reply.packet[0] >> 4 == 4 else IPV6_IN_ESP
        sent = self._seal(installed, reply.packet, next_header, path)
        if sent is None:
            return result, []
        self.echoed += 1
        return result, [sent]

    def _queue(self, inner: InnerPacket) -> None:
        if len(self._inner) >= self.queue_max:
            self.drops["queue_full"] += 1
        else:
            self._inner.append(inner)

    def _to_tun(self, owner: bytes, installed: _Installed, next_header: int, payload: bytes) -> None:
        """Queue an IP packet for the TUN device if its Child SA carries it (RFC 4301 §5.2)."""
        child = installed.params.inbound_spi
        flow = read_flow(payload) if next_header in _VERSIONS else None
        if flow is None or flow.source.version != _VERSIONS[next_header] or child not in self.outbound:
            self.inner_drops["not_ip"] += 1
        elif not flow_admitted(flow, installed.ranges, installed.remote_ranges):
            self.inner_drops["not_selected"] += 1
        else:  # TFC padding after the IP length (RFC 4303 §2.4) stays out of the host's stack
            self._queue(InnerPacket(owner, child, next_header, payload[: flow.length], Backend.TUN))

    def route(self, packet: bytes) -> bytes | Unrouted:
        """Our inbound SPI of the TUN backend's Child SA whose selectors hold the IP packet ``packet``
        (RFC 4301 §5.1, :meth:`OutboundTable.lookup`), or why there is none."""
        return self.outbound.lookup(packet)

    def seal(self, inbound_spi: bytes, inner: bytes, next_header: int, path: Path) -> Outgoing | None:
        """The next ESP packet of the Child SA ``inbound_spi`` carrying ``inner``, to send on ``path``;
        ``None`` if the pair is gone or past a hard limit (counted as ``expired``)."""
        installed = self._installed.get(inbound_spi)
        return None if installed is None else self._seal(installed, inner, next_header, path)

    def _seal(self, installed: _Installed, inner: bytes, next_header: int, path: Path) -> Outgoing | None:
        limits = installed.limits
        if limits.expired:  # RFC 4301 §4.4.2.1
            self.drops["expired"] += 1
            self._retry(limits)
            return None
        outbound = installed.esp.outbound
        iv = self.random_bytes(outbound.iv_size) if outbound.needs_random_iv else None
        spi = installed.params.inbound_spi
        try:
            packet = outbound.seal(inner, next_header, iv)
        except SequenceExhausted:  # RFC 4303 §3.3.3: never cycle; the hard limit fires below
            reached = limits.exhausted(spi)
            if reached is not None:
                self._limits.append(reached)
            self.drops["expired"] += 1
            return None
        reached = limits.after(spi, outbound.counters, outbound.last_seq, outbound=True)
        if reached is not None:
            self._limits.append(reached)
        if path.transport.is_stream:  # one marking per connection (RFC 9329 §6.8, §9.3: A47, A60)
            return Outgoing(path, packet, esp=True)
        tos, df = marking(inner, installed.outer) if installed.params.mode is Mode.TUNNEL else (0, None)
        return Outgoing(path, packet, esp=True, tos=tos, df=df)

    @property
    def limits_reached(self) -> bool:
        """Whether :meth:`take_limits` has anything."""
        return bool(self._limits)

    def _retry(self, limits: EspLimits) -> None:
        retry = limits.take_retry()
        if retry is not None:
            self._limits.append(retry)

    def rearm(self, reached: LimitReached) -> None:
        """Let the limit ``reached`` fire again with a later packet (its IKE SA could not act on it)."""
        installed = self._installed.get(reached.inbound_spi)
        if installed is not None:
            installed.limits.rearm(reached)

    def take_limits(self) -> list[LimitReached]:
        """The limits Child SA pairs reached since the last call (each once), oldest first."""
        out, self._limits = self._limits, []
        return out

    def take_inner(self) -> list[InnerPacket]:
        """The packets queued for the API and TUN backends since the last call, oldest first."""
        out = list(self._inner)
        self._inner.clear()
        return out
