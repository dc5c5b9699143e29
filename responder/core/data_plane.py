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

In tunnel mode an inner packet is an IP packet (Next Header 4 or 41); in
transport mode it is the upper-layer payload alone, which the echo backend
cannot answer (counted as ``not_answered``).  Randomness for AES-CBC IVs comes
from the endpoint's injected ``random_bytes``.
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from collections.abc import Callable

import attrs

from responder.core.child_sa import ChildSaParams
from responder.core.config import Mode
from responder.core.echo import EchoReply, answer
from responder.core.esp import Dropped, DropReason, EspSa, Opened, esp_sa
from responder.core.path import Outgoing, Path

__all__ = ["IPV4_IN_ESP", "IPV6_IN_ESP", "Backend", "DataPlane", "InnerPacket"]

IPV4_IN_ESP = 4  #: Next Header of an IPv4 packet in tunnel mode (RFC 4303 §2.6)
IPV6_IN_ESP = 41  #: ... of an IPv6 packet


class Backend(enum.Enum):
    """Where a Child SA's inner packets go (issue 12; ``backend`` of a child in the configuration)."""

    #: The core answers echo requests to addresses we own (ICMP, ICMPv6, UDP port 7).
    ECHO = "echo"
    #: A program embedding the responder takes them (``Engine.inner_packets``) and sends its own.
    API = "api"


@attrs.frozen(slots=True)
class InnerPacket:
    """A decrypted packet for the API backend: which IKE SA and Child SA (our inbound SPI) it came
    on, its Next Header and its octets."""

    local_spi: bytes
    child: bytes
    next_header: int
    payload: bytes


@attrs.define(eq=False)
class _Installed:
    params: ChildSaParams
    esp: EspSa
    backend: Backend


@attrs.define(eq=False)
class DataPlane:
    """Every ESP SA of one endpoint (see the module docstring); ``queue_max`` bounds the API queue."""

    random_bytes: Callable[[int], bytes] = attrs.field(repr=False)
    queue_max: int = 4096
    _installed: dict[bytes, _Installed] = attrs.field(init=False, factory=dict)
    _inner: deque[InnerPacket] = attrs.field(init=False, factory=deque)
    #: Packets not delivered, by reason (an ESP drop reason, ``not_answered``, ``queue_full``).
    drops: Counter[str] = attrs.field(init=False, factory=Counter)
    echoed: int = 0  #: echo requests answered

    def install(self, params: ChildSaParams, backend: Backend) -> None:
        self._installed[params.inbound_spi] = _Installed(params, esp_sa(params), backend)

    def remove(self, inbound_spi: bytes) -> EspSa | None:
        """Forget the ESP SA of the Child SA ``inbound_spi``; it is returned for its counters."""
        installed = self._installed.pop(inbound_spi, None)
        return None if installed is None else installed.esp

    def sa(self, inbound_spi: bytes) -> EspSa | None:
        """The ESP SA of the Child SA with our inbound SPI ``inbound_spi`` (for its counters)."""
        installed = self._installed.get(inbound_spi)
        return None if installed is None else installed.esp

    def receive(self, owner: bytes, packet: bytes, path: Path) -> tuple[Opened | Dropped, list[Outgoing]]:
        """Open an ESP packet of one of our Child SAs and deliver its inner packet; what it sends back."""
        installed = self._installed.get(packet[:4])
        if installed is None:
            return Dropped(DropReason.WRONG_SPI), []
        result = installed.esp.inbound.open(packet)
        if isinstance(result, Dropped):
            self.drops[result.reason.value] += 1
            return result, []
        if installed.backend is Backend.API:
            if len(self._inner) >= self.queue_max:
                self.drops["queue_full"] += 1
            else:
                self._inner.append(
                    InnerPacket(owner, installed.params.inbound_spi, result.next_header, result.payload)
                )
            return result, []
        tunnel = installed.params.mode is Mode.TUNNEL and result.next_header in (IPV4_IN_ESP, IPV6_IN_ESP)
        reply = answer(result.payload, installed.params.local_ts) if tunnel else None
        if not isinstance(reply, EchoReply):
            self.drops["not_answered"] += 1
            return result, []
        self.echoed += 1
        next_header = IPV4_IN_ESP if reply.packet[0] >> 4 == 4 else IPV6_IN_ESP
        return result, [Outgoing(path, self._seal(installed.esp, reply.packet, next_header), esp=True)]

    def seal(self, inbound_spi: bytes, inner: bytes, next_header: int) -> bytes | None:
        """The next ESP packet of the Child SA ``inbound_spi`` carrying ``inner``; ``None`` if it is gone."""
        installed = self._installed.get(inbound_spi)
        return None if installed is None else self._seal(installed.esp, inner, next_header)

    def _seal(self, esp: EspSa, inner: bytes, next_header: int) -> bytes:
        outbound = esp.outbound
        iv = self.random_bytes(outbound.iv_size) if outbound.needs_random_iv else None
        return outbound.seal(inner, next_header, iv)

    def take_inner(self) -> list[InnerPacket]:
        """The packets queued for the API backend since the last call, oldest first."""
        out = list(self._inner)
        self._inner.clear()
        return out
