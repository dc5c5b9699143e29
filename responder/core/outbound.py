"""Which Child SA carries a packet: the selector lookup of the TUN backend (RFC 4301 §4.4.1, §5.1, §5.2).

Strategy: a packet the host's stack hands to the TUN device is read once by
:func:`read_flow` into a :class:`Flow` (addresses, the upper-layer protocol
after any IPv6 extension headers, and its "ports"), or refused with ``None``;
nothing here raises on any octets.  An :class:`OutboundTable` holds the
traffic selectors of every installed Child SA of the TUN backend and finds
the one whose **remote** selectors hold the packet's destination (address,
protocol, destination port) and whose **local** selectors hold its source
(address, protocol, source port), as RFC 4301 §5.1 asks of outbound traffic
(the SPD-S lookup, §4.4.1, with each Child SA's negotiated selectors as its
entry).  :func:`~responder.core.selector_ranges.flow_admitted` is the same test the other way round
for a decrypted packet (RFC 4301 §5.2: source in the remote selectors,
destination in the local ones), so a peer cannot put into the host's stack
traffic its Child SA does not carry.

Ports, as RFC 4301 §4.4.1.1 and RFC 7296 §3.13.1 define them:

* TCP, UDP, SCTP, UDP-Lite and DCCP: the source and destination ports;
* ICMP and ICMPv6: type in the high octet, code in the low one, checked
  against the selectors of both sides (IKEv2 carries it in both TSi and TSr);
* any other protocol, and a non-initial fragment (whose ports are not in the
  packet): no ports (``None``), which only a selector for every port (0-65535)
  or the OPAQUE form (65535-0) admits, or one with IP protocol 0.

IP protocol 0 in a selector means any protocol and any port.

**Which entry wins** when several match (two Child SAs whose selectors
overlap, or the old and new pair during a rekey, RFC 7296 §2.8): the most
specific one, that is the smallest remote address range, then the smallest
local address range, then a named protocol over "any", then the smallest
port range; among equally specific ones the Child SA installed last (the new
pair of a rekey carries the traffic while the old one waits for its Delete).
A lookup ranks only the entries that can hold the destination: those with a
remote selector of exactly that address (indexed) and those of the wider ones
whose remote address ranges hold it.  That list is kept per destination
(:data:`CANDIDATES_CACHED` of them at most) until a Child SA is installed or
removed, so the steady flow to one peer costs no set and no scan of every
wide entry per packet.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterator, Sequence
from typing import TypeAlias

import attrs

from responder.core.payloads import TrafficSelector

__all__ = [
    "CANDIDATES_CACHED",
    "PORTED_PROTOCOLS",
    "Flow",
    "OutboundTable",
    "Unrouted",
    "read_flow",
    "selects",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

_ICMP, _ICMPV6 = 1, 58
#: Protocols whose first four octets are a source and a destination port (RFC 4301 §4.4.1.1).
PORTED_PROTOCOLS = frozenset({6, 17, 33, 132, 136})  # TCP, UDP, DCCP, SCTP, UDP-Lite
#: IPv6 extension headers walked over to find the upper-layer protocol (RFC 8200 §4.1).
_HOP_BY_HOP, _ROUTING, _FRAGMENT, _DESTINATION, _AH = 0, 43, 44, 60, 51
_EXTENSIONS_MAX = 8  #: a chain longer than this is not read (no ports)
_ALL_PORTS = (0, 0xFFFF)
_OPAQUE = (0xFFFF, 0)
#: Destinations whose candidate entries a table remembers; past that it forgets them all and starts again.
CANDIDATES_CACHED = 4096


class Unrouted(enum.Enum):
    """Why a packet from the TUN device went into no Child SA."""

    #: Not an IPv4 or IPv6 packet, or its header is cut short.
    NOT_IP = "not_ip"
    #: No installed Child SA of the TUN backend has selectors that hold it.
    NO_SA = "no_sa"


@attrs.frozen(slots=True)
class Flow:
    """What the selectors look at in one IP packet; ``length`` is its IP length (without
    octets after it, such as TFC padding, RFC 4303 §2.4)."""

    source: IPAddress
    destination: IPAddress
    protocol: int
    source_port: int | None
    destination_port: int | None
    length: int


def read_flow(packet: bytes) -> Flow | None:
    """The flow of an IPv4 (RFC 791) or IPv6 (RFC 8200) packet, ``None`` if it is neither; never raises.

    Checksums are not verified: the packet came from the host's stack (outbound)
    or through ESP's integrity check (inbound), and the stack that receives it checks them.
    """
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4:
        return _read_ipv4(packet)
    if version == 6:
        return _read_ipv6(packet)
    return None


def _read_ipv4(packet: bytes) -> Flow | None:
    if len(packet) < 20:
        return None
    header = (packet[0] & 0x0F) * 4
    total = int.from_bytes(packet[2:4], "big")
    if header < 20 or total < header or total > len(packet):
        return None
    protocol = packet[9]
    offset = int.from_bytes(packet[6:8], "big") & 0x1FFF
    source = ipaddress.IPv4Address(packet[12:16])
    destination = ipaddress.IPv4Address(packet[16:20])
    payload = packet[header:total] if offset == 0 else b""  # RFC 4301 §4.4.1.1: no ports in later fragments
    ports = _ports(protocol, 4, payload)
    return Flow(source, destination, protocol, ports[0], ports[1], total)


def _read_ipv6(packet: bytes) -> Flow | None:
    if len(packet) < 40:
        return None
    total = 40 + int.from_bytes(packet[4:6], "big")
    if total > len(packet) or (total == 40 and packet[6] != 59):  # a jumbogram (Payload Length 0)
        return None
    source = ipaddress.IPv6Address(packet[8:24])
    destination = ipaddress.IPv6Address(packet[24:40])
    protocol, offset = packet[6], 40
    known = True  # whether the upper-layer header is in this packet
    walked = 0
    while protocol in (_HOP_BY_HOP, _ROUTING, _FRAGMENT, _DESTINATION, _AH):
        if offset + 8 > total:
            return None
        walked += 1
        if walked > _EXTENSIONS_MAX:
            known = False  # a longer chain: the upper layer is not looked for
            break
        if protocol == _FRAGMENT:
            later = int.from_bytes(packet[offset + 2 : offset + 4], "big") >> 3 != 0
            protocol, offset = packet[offset], offset + 8
            if later:  # RFC 4301 §4.4.1.1: a non-initial fragment has no ports
                known = False
                break
            continue
        # RFC 4302 §2.2 (AH: 4-octet units, less 2); RFC 8200 §4.3 (8-octet units, less 1)
        size = (packet[offset + 1] + 2) * 4 if protocol == _AH else (packet[offset + 1] + 1) * 8
        protocol, offset = packet[offset], offset + size
    if offset > total:
        return None
    ports = _ports(protocol, 6, packet[offset:total] if known else b"")
    return Flow(source, destination, protocol, ports[0], ports[1], total)


def _ports(protocol: int, version: int, payload: bytes) -> tuple[int | None, int | None]:
    """(source port, destination port) as the selectors see them; ``None`` where there are none."""
    if protocol in PORTED_PROTOCOLS and len(payload) >= 4:
        return int.from_bytes(payload[0:2], "big"), int.from_bytes(payload[2:4], "big")
    if (protocol, version) in ((_ICMP, 4), (_ICMPV6, 6)) and len(payload) >= 2:
        type_code = payload[0] << 8 | payload[1]  # RFC 7296 §3.13.1
        return type_code, type_code
    return None, None


def selects(selector: TrafficSelector, address: IPAddress, protocol: int, port: int | None) -> bool:
    """Whether ``selector`` holds this address, protocol and port (RFC 7296 §3.13.1, RFC 4301 §4.4.1.1)."""
    start, end = selector.start_address, selector.end_address
    if start.version != address.version or not int(start) <= int(address) <= int(end):
        return False
    if selector.ip_protocol == 0:
        return True
    if selector.ip_protocol != protocol:
        return False
    ports = (selector.start_port, selector.end_port)
    if port is None:
        return ports in (_ALL_PORTS, _OPAQUE)
    return selector.start_port <= port <= selector.end_port


@attrs.frozen(slots=True)
class _Range:
    """A selector as integers, read once when its Child SA is installed."""

    version: int
    first: int
    last: int
    protocol: int
    ports: tuple[int, int]
    rank: tuple[int, int, int]  #: its specificity: address span, any protocol (1) or not (0), port span

    @classmethod
    def of(cls, selector: TrafficSelector) -> _Range:
        first, last = int(selector.start_address), int(selector.end_address)
        protocol, ports = int(selector.ip_protocol), (selector.start_port, selector.end_port)
        # RFC 4301 §4.4.1.1: OPAQUE (65535-0) holds only packets whose ports are unknown, which a
        # selector of every port holds too: it ranks as wide as all ports, never as one port.
        port_span = 0xFFFF if not protocol or ports == _OPAQUE else max(ports[1] - ports[0], 0)
        rank = (last - first, 0 if protocol else 1, port_span)
        return cls(selector.start_address.version, first, last, protocol, ports, rank)

    def holds(self, version: int, address: int, protocol: int, port: int | None) -> bool:
        """:func:`selects`, on integers."""
        if version != self.version or not self.first <= address <= self.last:
            return False
        if self.protocol == 0:
            return True
        if self.protocol != protocol:
            return False
        if port is None:
            return self.ports in (_ALL_PORTS, _OPAQUE)
        return self.ports[0] <= port <= self.ports[1]


@attrs.define(eq=False, slots=True)
class _Entry:
    child: bytes  #: our inbound SPI of the Child SA
    local_ts: tuple[TrafficSelector, ...]
    remote_ts: tuple[TrafficSelector, ...]
    order: int  #: when it was installed (higher: later)
    local: tuple[_Range, ...] = attrs.field(init=False)
    remote: tuple[_Range, ...] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.local = tuple(_Range.of(selector) for selector in self.local_ts)
        self.remote = tuple(_Range.of(selector) for selector in self.remote_ts)


def _holds(
    ranges: tuple[_Range, ...], version: int, address: int, protocol: int, port: int | None
) -> tuple[int, int, int] | None:
    """The specificity of the most specific range that holds the address, protocol and port."""
    best: tuple[int, int, int] | None = None
    for selector in ranges:
        if selector.holds(version, address, protocol, port) and (best is None or selector.rank < best):
            best = selector.rank
    return best


@attrs.define(eq=False)
class OutboundTable:
    """The selectors of every installed Child SA of the TUN backend, by our inbound SPI (see the module).

    Remote selectors of one address (a client's inner or leased address, the
    usual case) are indexed by that address, so a lookup only ranks the
    entries with such a selector for the packet's destination and those with
    a wider remote selector.
    """

    _entries: dict[bytes, _Entry] = attrs.field(init=False, factory=dict)
    _hosts: dict[tuple[int, int], set[bytes]] = attrs.field(init=False, factory=dict)
    _wide: set[bytes] = attrs.field(init=False, factory=set)  #: entries with a wider remote selector
    _installed: int = attrs.field(init=False, default=0)
    #: (IP version, destination) -> the entries that may hold it; emptied by :meth:`add` and :meth:`remove`.
    _candidates: dict[tuple[int, int], tuple[_Entry, ...]] = attrs.field(init=False, factory=dict)

    def add(
        self, child: bytes, local_ts: Sequence[TrafficSelector], remote_ts: Sequence[TrafficSelector]
    ) -> None:
        """Add (or replace) the Child SA with our inbound SPI ``child``."""
        self.remove(child)
        self._candidates.clear()
        self._installed += 1
        entry = self._entries[child] = _Entry(child, tuple(local_ts), tuple(remote_ts), self._installed)
        for selector in entry.remote:
            if selector.first == selector.last:
                self._hosts.setdefault((selector.version, selector.first), set()).add(child)
            else:
                self._wide.add(child)

    def remove(self, child: bytes) -> None:
        entry = self._entries.pop(child, None)
        if entry is None:
            return
        self._candidates.clear()
        self._wide.discard(child)
        for selector in entry.remote:
            key = (selector.version, selector.first)
            same = self._hosts.get(key)
            if same is not None:
                same.discard(child)
                if not same:
                    del self._hosts[key]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, child: object) -> bool:
        return child in self._entries

    def remote_selectors(self) -> Iterator[TrafficSelector]:
        """Every remote selector of every entry (what the shell routes into the TUN device)."""
        for entry in self._entries.values():
            yield from entry.remote_ts

    def lookup(self, packet: bytes) -> bytes | Unrouted:
        """Our inbound SPI of the Child SA that carries ``packet`` outbound (RFC 4301 §5.1), or why none."""
        flow = read_flow(packet)
        if flow is None:
            return Unrouted.NOT_IP
        version, destination, source = flow.source.version, int(flow.destination), int(flow.source)
        best: tuple[tuple[int, ...], bytes] | None = None
        for entry in self._candidates_for(version, destination):
            remote = _holds(entry.remote, version, destination, flow.protocol, flow.destination_port)
            if remote is None:
                continue
            local = _holds(entry.local, version, source, flow.protocol, flow.source_port)
            if local is None:
                continue
            key = (remote[0], local[0], remote[1], local[1], remote[2], local[2], -entry.order)
            if best is None or key < best[0]:
                best = (key, entry.child)
        return Unrouted.NO_SA if best is None else best[1]

    def _ranges(self, child: bytes) -> tuple[_Range, ...]:
        return self._entries[child].remote

    def _candidates_for(self, version: int, destination: int) -> tuple[_Entry, ...]:
        """The entries with a remote address range that holds ``destination`` (remembered)."""
        key = (version, destination)
        found = self._candidates.get(key)
        if found is None:
            children = self._hosts.get(key, set()) | {
                child
                for child in self._wide
                if any(r.version == version and r.first <= destination <= r.last for r in self._ranges(child))
            }
            found = tuple(self._entries[child] for child in children)
            if len(self._candidates) >= CANDIDATES_CACHED:
                self._candidates.clear()
            self._candidates[key] = found
        return found
