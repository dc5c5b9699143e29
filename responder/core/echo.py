"""The echo backend's packet logic: answer pings and UDP echo sent into the tunnel.

Strategy: an inner packet (what ESP tunnel mode carries, RFC 4303 §3.1.2) is
read once by :func:`read_packet` into an :class:`InnerPacket`, or refused with
an :class:`EchoDropped` naming a :class:`DropReason`; nothing here raises on
any octets.  The reader checks the IP header (RFC 791 §3.1; RFC 8200 §3),
walks the IPv6 extension headers RFC 8200 §4 lets a destination pass over,
and verifies the transport checksum of ICMP (RFC 792), ICMPv6 (RFC 4443 §2.3)
and UDP (RFC 768) with the pseudo-header of RFC 8200 §8.1 for IPv6.  Octets
after the IP length are TFC padding (RFC 4303 §2.4) and are ignored.

:func:`answer` then decides: an ICMP echo request (RFC 792, type 8), an
ICMPv6 echo request (RFC 4443 §4.1, type 128) or a UDP datagram to port 7
(RFC 862) addressed inside the traffic selectors we own is answered by
:func:`answer`'s :class:`EchoReply`.  Both packets must be traffic the Child
SA carries (RFC 4301 §5.1, §5.2): the request by its destination, the reply by
its source, each with its protocol and port; for ICMP the "port" is type and
code, high and low octet (RFC 4301 §4.4.1.1, RFC 7296 §3.13.1), so a selector
that lets in only type 8 cannot carry our type 0 answer and refuses it.

The reply swaps the addresses (and UDP ports), keeps the identifier, sequence
number and data, and has TTL / Hop Limit 64.  IPv4 replies are atomic
datagrams (DF set, MF clear, offset 0) with Identification 0, which
RFC 6864 §4.1 allows; the request arrived unfragmented, so the reply fits the
same path.  The DSCP of the request is copied (RFC 2474 §3 leaves the choice
to the node); the ECN field is Not-ECT, as ICMP and UDP echo are not
ECN-capable transports (RFC 3168 §5).  IPv6 replies carry flow label 0
(RFC 6437 §3 allows it) and no extension headers.

Not answered, each with its reason: fragments (no reassembly; an IPv6 atomic
fragment, RFC 8200 §4.5 with offset 0 and M clear, is read as a whole packet,
RFC 6946 §4), IPv4 options, IPv6 headers a destination must act on (a Routing
header with Segments Left, ESP, AH, unknown ones) and Hop-by-Hop or
Destination options whose type says "discard" (RFC 8200 §4.2), multicast or
broadcast destinations and unanswerable sources (RFC 1122 §3.2.2.6), and a
UDP source port of 0 or 7 (no reply port, or two echo services bouncing one
datagram forever).

The ECN helpers at the end are RFC 6040's tables for the data plane
(RFC 7296 §2.24 asks for RFC 6040 on every tunnel-mode SA; RFC 9329 §9.5 for
compatibility mode over TCP, whose outer headers are the TCP connection's).
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from collections.abc import Sequence
from typing import TypeAlias

import attrs

from responder.core.errors import LocalError
from responder.core.outbound import selects
from responder.core.payloads import TrafficSelector
from responder.core.selector_ranges import SelectorRange, holds, owned_ranges

__all__ = [
    "ECHO_PORT",
    "DropReason",
    "EchoDropped",
    "EchoReply",
    "EchoService",
    "Ecn",
    "IcmpMessage",
    "InnerPacket",
    "UdpDatagram",
    "answer",
    "build_ipv4",
    "build_ipv6",
    "decapsulate_ecn",
    "echo_request",
    "ecn_decapsulate",
    "ecn_encapsulate",
    "ecn_unexpected",
    "internet_checksum",
    "packet_ecn",
    "read_packet",
    "udp_packet",
    "with_ecn",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The UDP echo service's port (RFC 862).
ECHO_PORT = 7
#: TTL / Hop Limit of our replies.
REPLY_HOP_LIMIT = 64

_ICMP = 1
_UDP = 17
_ICMPV6 = 58
_ICMP_ECHO_REPLY, _ICMP_ECHO_REQUEST = 0, 8  # RFC 792
_ICMPV6_ECHO_REQUEST, _ICMPV6_ECHO_REPLY = 128, 129  # RFC 4443 §4.1, §4.2

# IPv6 extension headers (RFC 8200 §4.1, IANA "IPv6 Extension Header Types").
_HOP_BY_HOP, _ROUTING, _FRAGMENT, _ESP, _AH, _DEST_OPTIONS = 0, 43, 44, 50, 51, 60
_NO_NEXT_HEADER = 59
_OTHER_EXTENSIONS = frozenset({135, 139, 140, 253, 254})  # Mobility, HIP, Shim6, experiments
_PAD1, _PADN = 0, 1

_IPV4_HEAD = struct.Struct("!BBHHHBBH4s4s")
_IPV6_HEAD = struct.Struct("!IHBB16s16s")
_UDP_HEAD = struct.Struct("!HHHH")
_ICMP_HEAD = struct.Struct("!BBH")
_ECHO_HEAD = struct.Struct("!BBHHH")

_IPV4_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


class DropReason(enum.Enum):
    """Why a packet got no echo reply."""

    #: Empty, or the version nibble is neither 4 nor 6.
    NOT_IP = "not IP"
    #: A header or a length field runs past the octets received.
    TRUNCATED = "truncated"
    #: A length field that cannot be (IHL < 5, Total Length < header, UDP Length < 8, jumbogram).
    BAD_LENGTH = "bad length"
    #: The IPv4 header, ICMP, ICMPv6 or UDP checksum does not verify (or UDP over IPv6 has none).
    BAD_CHECKSUM = "bad checksum"
    #: A fragment: the echo backend does not reassemble.
    FRAGMENT = "fragment"
    #: An IPv4 header with options.
    IPV4_OPTIONS = "IPv4 options"
    #: An IPv6 extension header or option this destination would have to act on.
    EXTENSION_HEADER = "extension header"
    #: Not an ICMP or ICMPv6 echo request, nor UDP to port 7.
    NOT_ECHO = "not an echo request"
    #: The destination, protocol or port is outside the traffic selectors we own.
    NOT_OURS = "not ours"
    #: The reply would be outside the traffic selectors we own (e.g. ICMP type 0 not selected).
    REPLY_NOT_SELECTED = "reply not selected"
    #: Multicast or broadcast destination; multicast, unspecified or broadcast source; UDP port 0 or 7.
    BAD_ADDRESS = "unanswerable address"


class EchoService(enum.Enum):
    """Which echo answered."""

    ICMP = "ICMP echo"  #: RFC 792
    ICMPV6 = "ICMPv6 echo"  #: RFC 4443 §4
    UDP = "UDP echo"  #: RFC 862


class Ecn(enum.IntEnum):
    """The ECN field of the IP header (RFC 3168 §5)."""

    NOT_ECT = 0b00
    ECT_1 = 0b01
    ECT_0 = 0b10
    CE = 0b11


@attrs.frozen
class IcmpMessage:
    """An ICMP or ICMPv6 message whose checksum verified; ``body`` is everything after the checksum."""

    type: int
    code: int
    body: bytes


@attrs.frozen
class UdpDatagram:
    """A UDP datagram whose checksum verified (or was absent over IPv4, RFC 768)."""

    source_port: int
    destination_port: int
    payload: bytes


@attrs.frozen
class InnerPacket:
    """An IPv4 or IPv6 packet read by :func:`read_packet`.

    ``protocol`` is the upper-layer protocol after any extension headers;
    ``transport`` is filled for ICMP over IPv4, ICMPv6 over IPv6 and UDP,
    ``None`` for any other protocol (not checked).  ``traffic_class`` is the
    IPv4 TOS octet or the IPv6 Traffic Class (DSCP and ECN).
    """

    source: IPAddress
    destination: IPAddress
    protocol: int
    hop_limit: int
    traffic_class: int
    transport: IcmpMessage | UdpDatagram | None
    dont_fragment: bool = False

    @property
    def version(self) -> int:
        """4 or 6."""
        return self.source.version


@attrs.frozen
class EchoReply:
    """The answer to an echo request: ``packet`` goes back into the tunnel."""

    packet: bytes
    service: EchoService


@attrs.frozen
class EchoDropped:
    """A packet not answered, and why."""

    reason: DropReason
    detail: str


# --- checksums ---------------------------------------------------------------------------------


def _ones_sum(data: bytes) -> int:
    """The 16-bit one's complement sum of ``data`` (odd length padded with a zero octet, RFC 1071 §4.1).

    2**16 ≡ 1 (mod 0xFFFF), so the sum of the 16-bit words is the big number
    mod 0xFFFF, with 0xFFFF (negative zero) standing for a nonzero multiple.
    """
    if len(data) % 2:
        data += b"\0"
    number = int.from_bytes(data, "big")
    total = number % 0xFFFF
    return 0xFFFF if total == 0 and number else total


def internet_checksum(*parts: bytes) -> int:
    """The Internet checksum over the concatenation of ``parts`` (RFC 1071; RFC 791 §3.1).

    Each part but the last must have even length (pseudo-headers do).  Data
    that carries its own correct checksum gives 0.
    """
    return ~_ones_sum(b"".join(parts)) & 0xFFFF


def _pseudo_header(source: IPAddress, destination: IPAddress, protocol: int, length: int) -> bytes:
    if source.version == 4:
        return source.packed + destination.packed + struct.pack("!BBH", 0, protocol, length)  # RFC 768
    return source.packed + destination.packed + struct.pack("!I3xB", length, protocol)  # RFC 8200 §8.1


# --- reading -----------------------------------------------------------------------------------


def _drop(reason: DropReason, detail: str) -> EchoDropped:
    return EchoDropped(reason, detail)


def read_packet(packet: bytes) -> InnerPacket | EchoDropped:
    """Read an inner IPv4 (RFC 791) or IPv6 (RFC 8200) packet; never raises.

    Verifies the IPv4 header checksum and the ICMP, ICMPv6 and UDP checksums;
    octets past the IP length (TFC padding, RFC 4303 §2.4) are ignored.
    """
    packet = bytes(packet)
    if not packet:
        return _drop(DropReason.NOT_IP, "empty packet")
    version = packet[0] >> 4
    if version == 4:
        return _read_ipv4(packet)
    if version == 6:
        return _read_ipv6(packet)
    return _drop(DropReason.NOT_IP, f"IP version {version}")


def _read_ipv4(packet: bytes) -> InnerPacket | EchoDropped:
    if len(packet) < _IPV4_HEAD.size:
        return _drop(DropReason.TRUNCATED, f"{len(packet)} octets, an IPv4 header needs 20")
    head = _IPV4_HEAD.unpack_from(packet)
    version_ihl, tos, total_length, _ident, flags_offset, ttl, protocol, _checksum, src, dst = head
    header_length = (version_ihl & 0x0F) * 4
    if header_length < _IPV4_HEAD.size:
        return _drop(DropReason.BAD_LENGTH, f"IHL {header_length // 4} is below 5")
    if total_length < header_length:
        return _drop(DropReason.BAD_LENGTH, f"Total Length {total_length} below the header's {header_length}")
    if total_length > len(packet):
        return _drop(DropReason.TRUNCATED, f"Total Length {total_length}, {len(packet)} octets received")
    if internet_checksum(packet[:header_length]) != 0:
        return _drop(DropReason.BAD_CHECKSUM, "IPv4 header checksum")
    if flags_offset & 0x3FFF:
        return _drop(DropReason.FRAGMENT, f"IPv4 fragment (offset {(flags_offset & 0x1FFF) * 8})")
    if header_length > _IPV4_HEAD.size:
        return _drop(DropReason.IPV4_OPTIONS, f"{header_length - _IPV4_HEAD.size} octets of IPv4 options")
    source, destination = ipaddress.IPv4Address(src), ipaddress.IPv4Address(dst)
    payload = packet[header_length:total_length]
    transport = _read_transport(source, destination, protocol, payload)
    if isinstance(transport, EchoDropped):
        return transport
    return InnerPacket(
        source, destination, protocol, ttl, tos, transport, dont_fragment=bool(flags_offset & 0x4000)
    )


def _read_ipv6(packet: bytes) -> InnerPacket | EchoDropped:
    if len(packet) < _IPV6_HEAD.size:
        return _drop(DropReason.TRUNCATED, f"{len(packet)} octets, an IPv6 header needs 40")
    first_word, payload_length, next_header, hop_limit, src, dst = _IPV6_HEAD.unpack_from(packet)
    if payload_length == 0:
        return _drop(DropReason.BAD_LENGTH, "Payload Length 0 (a jumbogram or nothing)")
    end = _IPV6_HEAD.size + payload_length
    if end > len(packet):
        return _drop(
            DropReason.TRUNCATED, f"Payload Length {payload_length}, {len(packet) - 40} octets received"
        )
    payload = packet[_IPV6_HEAD.size : end]
    walked = _skip_extensions(next_header, payload)
    if isinstance(walked, EchoDropped):
        return walked
    protocol, offset = walked
    source, destination = ipaddress.IPv6Address(src), ipaddress.IPv6Address(dst)
    transport = _read_transport(source, destination, protocol, payload[offset:])
    if isinstance(transport, EchoDropped):
        return transport
    return InnerPacket(source, destination, protocol, hop_limit, (first_word >> 20) & 0xFF, transport)


def _skip_extensions(next_header: int, payload: bytes) -> tuple[int, int] | EchoDropped:
    """Pass over the extension headers a destination may pass over (RFC 8200 §4); (protocol, offset)."""
    offset = 0
    first = True
    while True:
        if next_header in (_HOP_BY_HOP, _DEST_OPTIONS, _ROUTING, _FRAGMENT):
            if next_header == _HOP_BY_HOP and not first:
                # RFC 8200 §4.3: Hop-by-Hop only immediately after the IPv6 header.
                return _drop(DropReason.EXTENSION_HEADER, "a Hop-by-Hop Options header not first")
            if len(payload) - offset < 8:
                return _drop(DropReason.TRUNCATED, f"extension header {next_header} at {offset}")
            following = payload[offset]
            length = 8 if next_header == _FRAGMENT else (payload[offset + 1] + 1) * 8
            if len(payload) - offset < length:
                return _drop(DropReason.TRUNCATED, f"extension header {next_header} of {length} octets")
            header = payload[offset : offset + length]
            refusal = _check_extension(next_header, header)
            if refusal is not None:
                return refusal
            next_header, offset, first = following, offset + length, False
            continue
        if next_header in (_ESP, _AH) or next_header in _OTHER_EXTENSIONS:
            return _drop(DropReason.EXTENSION_HEADER, f"IPv6 header {next_header} needs processing")
        return next_header, offset


def _check_extension(kind: int, header: bytes) -> EchoDropped | None:
    if kind == _FRAGMENT:
        offset_flags = int.from_bytes(header[2:4], "big")
        if offset_flags & 0xFFF9:  # offset or M set; RFC 6946 §4: an atomic fragment is a whole packet
            return _drop(DropReason.FRAGMENT, f"IPv6 fragment (offset {(offset_flags >> 3) * 8})")
        return None
    if kind == _ROUTING:
        segments_left = header[3]
        if segments_left:  # RFC 8200 §4.4: with Segments Left 0 the header is ignored
            return _drop(DropReason.EXTENSION_HEADER, f"Routing header with {segments_left} segments left")
        return None
    return _check_options(header[2:], "Hop-by-Hop" if kind == _HOP_BY_HOP else "Destination")


def _check_options(options: bytes, where: str) -> EchoDropped | None:
    """RFC 8200 §4.2: skip Pad1, PadN and unknown options whose top two bits are 00; refuse the rest."""
    at = 0
    while at < len(options):
        option = options[at]
        if option == _PAD1:
            at += 1
            continue
        if at + 2 > len(options) or at + 2 + options[at + 1] > len(options):
            return _drop(DropReason.TRUNCATED, f"{where} option {option} runs past its header")
        if option != _PADN and option >> 6:
            return _drop(DropReason.EXTENSION_HEADER, f"{where} option {option:#04x} must not be skipped")
        at += 2 + options[at + 1]
    return None


def _read_transport(
    source: IPAddress, destination: IPAddress, protocol: int, payload: bytes
) -> IcmpMessage | UdpDatagram | EchoDropped | None:
    if protocol == _UDP:
        return _read_udp(source, destination, payload)
    if (protocol, source.version) in ((_ICMP, 4), (_ICMPV6, 6)):
        name = "ICMP" if protocol == _ICMP else "ICMPv6"
        if len(payload) < _ICMP_HEAD.size:
            return _drop(DropReason.TRUNCATED, f"{len(payload)} octets of {name}")
        pseudo = b"" if protocol == _ICMP else _pseudo_header(source, destination, protocol, len(payload))
        if internet_checksum(pseudo, payload) != 0:
            return _drop(DropReason.BAD_CHECKSUM, f"{name} checksum")
        kind, code, _ = _ICMP_HEAD.unpack_from(payload)
        return IcmpMessage(kind, code, payload[_ICMP_HEAD.size :])
    return None


def _read_udp(source: IPAddress, destination: IPAddress, payload: bytes) -> UdpDatagram | EchoDropped:
    if len(payload) < _UDP_HEAD.size:
        return _drop(DropReason.TRUNCATED, f"{len(payload)} octets of UDP")
    source_port, destination_port, length, checksum = _UDP_HEAD.unpack_from(payload)
    if length < _UDP_HEAD.size:
        return _drop(DropReason.BAD_LENGTH, f"UDP Length {length}")
    if length > len(payload):
        return _drop(DropReason.TRUNCATED, f"UDP Length {length}, {len(payload)} octets received")
    datagram = payload[:length]
    if checksum == 0 and source.version == 6:
        return _drop(DropReason.BAD_CHECKSUM, "UDP over IPv6 without a checksum")  # RFC 8200 §8.1
    if checksum != 0 and internet_checksum(_pseudo_header(source, destination, _UDP, length), datagram):
        return _drop(DropReason.BAD_CHECKSUM, "UDP checksum")
    return UdpDatagram(source_port, destination_port, datagram[_UDP_HEAD.size :])


# --- answering ---------------------------------------------------------------------------------


def answer(
    packet: bytes, owned: Sequence[TrafficSelector], ranges: tuple[SelectorRange, ...] | None = None
) -> EchoReply | EchoDropped:
    """Answer an echo request addressed inside ``owned`` (our local traffic selectors); never raises.

    ICMP echo (RFC 792), ICMPv6 echo (RFC 4443 §4) and UDP echo (RFC 862) are
    answered; everything else comes back as :class:`EchoDropped` with its reason.
    ``ranges`` is :func:`owned_ranges` of ``owned``, if the caller keeps it.
    """
    fast = _answer_icmpv4(packet, owned_ranges(owned) if ranges is None else ranges)
    if fast is not None:
        return fast
    read = read_packet(packet)
    if isinstance(read, EchoDropped):
        return read
    if not any(_has_address(selector, read.destination) for selector in owned):
        return _drop(DropReason.NOT_OURS, f"{read.destination} is outside our traffic selectors")
    service = _service(read)
    if isinstance(service, EchoDropped):
        return service
    unanswerable = _unanswerable(read)
    if unanswerable is not None:
        return _drop(DropReason.BAD_ADDRESS, unanswerable)
    request_port, reply_port = _ports(read)
    if not any(selects(s, read.destination, read.protocol, request_port) for s in owned):
        return _drop(DropReason.NOT_OURS, f"{_flow(read.protocol, request_port)} is not selected")
    if not any(selects(s, read.destination, read.protocol, reply_port) for s in owned):
        return _drop(DropReason.REPLY_NOT_SELECTED, f"the reply's {_flow(read.protocol, reply_port)}")
    return EchoReply(_build_reply(read), service)


def _answer_icmpv4(packet: bytes, ranges: tuple[SelectorRange, ...]) -> EchoReply | None:
    """The common case, a well-formed ICMP echo request over IPv4 that we answer, done in place:
    the same checks and the same reply octets as the general path, which handles ``None``.

    What it buys (issue 12, ``bench/esp.py`` echo rows): the general path reads the packet
    into objects, verifies the ICMP checksum, then builds the reply and sums it again.  Here
    the request's checksum is verified once and the reply's is derived from it by RFC 1624's
    incremental update (only the type octet changes, 8 -> 0), so a 1400-octet ping costs one
    pass over its data instead of two, and no intermediate objects.
    """
    if len(packet) < 28 or packet[0] != 0x45 or packet[9] != _ICMP or packet[20] != _ICMP_ECHO_REQUEST:
        return None
    total_length = int.from_bytes(packet[2:4], "big")
    if not 28 <= total_length <= len(packet) or packet[21] != 0 or packet[6] & 0x3F or packet[7]:
        return None  # a code, a fragment or a bad length: the general path says which
    if _ones_sum(packet[:20]) != 0xFFFF or _ones_sum(packet[20:total_length]) != 0xFFFF:
        return None  # a checksum that does not verify (RFC 1071): the general path drops it
    source, destination = packet[12:16], packet[16:20]
    if source[0] >> 4 == 0xE or source in (b"\0\0\0\0", b"\xff\xff\xff\xff"):
        return None  # RFC 1122 §3.2.1.3: no answer to a multicast, unspecified or broadcast source
    if destination[0] >> 4 == 0xE or destination == b"\xff\xff\xff\xff":
        return None
    address = int.from_bytes(destination, "big")
    request_port, reply_port = _ICMP_ECHO_REQUEST << 8, _ICMP_ECHO_REPLY << 8  # RFC 4301 §4.4.1.1
    if not holds(ranges, 4, address, _ICMP, request_port) or not holds(ranges, 4, address, _ICMP, reply_port):
        return None
    # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), m the word holding type and code (0x0800 -> 0x0000).
    checksum = int.from_bytes(packet[22:24], "big")
    total = (~checksum & 0xFFFF) + (~(_ICMP_ECHO_REQUEST << 8) & 0xFFFF)
    total = (total & 0xFFFF) + (total >> 16)
    reply_checksum = ~total & 0xFFFF
    if reply_checksum in (0, 0xFFFF):
        return None  # the two zeros of one's complement: leave it to a full sum
    head = _IPV4_HEAD.pack(
        0x45, packet[1] & 0xFC, total_length, 0, 0x4000, REPLY_HOP_LIMIT, _ICMP, 0, destination, source
    )
    head_checksum = ~_ones_sum(head) & 0xFFFF
    reply = b"".join(
        (
            head[:10],
            head_checksum.to_bytes(2, "big"),
            head[12:],
            b"\0\0",
            reply_checksum.to_bytes(2, "big"),
            packet[24:total_length],
        )
    )
    return EchoReply(reply, EchoService.ICMP)


def _service(read: InnerPacket) -> EchoService | EchoDropped:
    transport = read.transport
    if isinstance(transport, UdpDatagram):
        if transport.destination_port == ECHO_PORT:
            return EchoService.UDP
        return _drop(DropReason.NOT_ECHO, f"UDP to port {transport.destination_port}")
    if isinstance(transport, IcmpMessage):
        request = _ICMP_ECHO_REQUEST if read.version == 4 else _ICMPV6_ECHO_REQUEST
        if (transport.type, transport.code) != (request, 0):
            return _drop(DropReason.NOT_ECHO, f"ICMP type {transport.type} code {transport.code}")
        if len(transport.body) < 4:
            return _drop(DropReason.TRUNCATED, "an echo request without identifier and sequence number")
        return EchoService.ICMP if read.version == 4 else EchoService.ICMPV6
    return _drop(DropReason.NOT_ECHO, f"IP protocol {read.protocol}")


def _unanswerable(read: InnerPacket) -> str | None:
    """Why the reply could not go back (RFC 1122 §3.2.2.6, §3.2.1.3), or ``None``."""
    if read.destination.is_multicast or read.destination == _IPV4_LIMITED_BROADCAST:
        return f"destination {read.destination} is not unicast"
    source = read.source
    if source.is_multicast or source.is_unspecified or source == _IPV4_LIMITED_BROADCAST:
        return f"source {source} cannot be answered"
    if isinstance(read.transport, UdpDatagram) and read.transport.source_port in (0, ECHO_PORT):
        return f"UDP source port {read.transport.source_port}"
    return None


def _ports(read: InnerPacket) -> tuple[int, int]:
    """The selector "ports" of the request (its destination port) and of the reply (its source port).

    For ICMP and ICMPv6, type in the high octet and code in the low one (RFC 4301 §4.4.1.1).
    """
    if isinstance(read.transport, UdpDatagram):
        return ECHO_PORT, ECHO_PORT
    if read.version == 4:
        return _ICMP_ECHO_REQUEST << 8, _ICMP_ECHO_REPLY << 8
    return _ICMPV6_ECHO_REQUEST << 8, _ICMPV6_ECHO_REPLY << 8


def _flow(protocol: int, port: int) -> str:
    if protocol in (_ICMP, _ICMPV6):
        return f"protocol {protocol} type {port >> 8} code {port & 0xFF}"
    return f"protocol {protocol} port {port}"


def _has_address(selector: TrafficSelector, address: IPAddress) -> bool:
    start, end = selector.start_address, selector.end_address
    return start.version == address.version and int(start) <= int(address) <= int(end)


def _build_reply(read: InnerPacket) -> bytes:
    source, destination = read.destination, read.source
    dscp = read.traffic_class & 0xFC  # ECN bits cleared to Not-ECT (RFC 3168 §5)
    transport = read.transport
    if isinstance(transport, UdpDatagram):
        return udp_packet(
            source, destination, ECHO_PORT, transport.source_port, transport.payload, traffic_class=dscp
        )
    assert isinstance(transport, IcmpMessage)  # _service let nothing else through
    identifier, sequence = struct.unpack_from("!HH", transport.body)
    return echo_request(
        source, destination, identifier, sequence, transport.body[4:], reply=True, traffic_class=dscp
    )


# --- building ----------------------------------------------------------------------------------


def build_ipv4(
    source: ipaddress.IPv4Address,
    destination: ipaddress.IPv4Address,
    protocol: int,
    payload: bytes,
    *,
    ttl: int = REPLY_HOP_LIMIT,
    tos: int = 0,
    identification: int = 0,
    dont_fragment: bool = True,
) -> bytes:
    """An IPv4 packet without options, header checksum filled in (RFC 791 §3.1)."""
    total_length = _IPV4_HEAD.size + len(payload)
    if total_length > 0xFFFF:
        raise LocalError(f"an IPv4 packet of {total_length} octets")
    flags = 0x4000 if dont_fragment else 0
    head = _IPV4_HEAD.pack(
        0x45, tos, total_length, identification, flags, ttl, protocol, 0, source.packed, destination.packed
    )
    checksum = internet_checksum(head)
    return head[:10] + checksum.to_bytes(2, "big") + head[12:] + payload


def build_ipv6(
    source: ipaddress.IPv6Address,
    destination: ipaddress.IPv6Address,
    next_header: int,
    payload: bytes,
    *,
    hop_limit: int = REPLY_HOP_LIMIT,
    traffic_class: int = 0,
    flow_label: int = 0,
) -> bytes:
    """An IPv6 packet (RFC 8200 §3); ``payload`` may begin with extension headers."""
    if len(payload) > 0xFFFF:
        raise LocalError(f"an IPv6 payload of {len(payload)} octets needs a jumbogram")
    first_word = (6 << 28) | (traffic_class << 20) | flow_label
    head = _IPV6_HEAD.pack(
        first_word, len(payload), next_header, hop_limit, source.packed, destination.packed
    )
    return head + payload


def _ip_packet(
    source: IPAddress, destination: IPAddress, protocol: int, payload: bytes, traffic_class: int
) -> bytes:
    if isinstance(source, ipaddress.IPv4Address) and isinstance(destination, ipaddress.IPv4Address):
        return build_ipv4(source, destination, protocol, payload, tos=traffic_class)
    if isinstance(source, ipaddress.IPv6Address) and isinstance(destination, ipaddress.IPv6Address):
        return build_ipv6(source, destination, protocol, payload, traffic_class=traffic_class)
    raise LocalError(f"{source} and {destination} are of different IP versions")


def echo_request(
    source: IPAddress,
    destination: IPAddress,
    identifier: int,
    sequence: int,
    data: bytes = b"",
    *,
    reply: bool = False,
    traffic_class: int = 0,
) -> bytes:
    """An ICMP (IPv4, RFC 792) or ICMPv6 (IPv6, RFC 4443 §4) echo request, or its reply with ``reply``.

    The ICMPv6 checksum covers the pseudo-header (RFC 8200 §8.1).
    """
    if source.version == 4:
        protocol, kind = _ICMP, _ICMP_ECHO_REPLY if reply else _ICMP_ECHO_REQUEST
    else:
        protocol, kind = _ICMPV6, _ICMPV6_ECHO_REPLY if reply else _ICMPV6_ECHO_REQUEST
    message = _ECHO_HEAD.pack(kind, 0, 0, identifier, sequence) + data
    pseudo = b"" if protocol == _ICMP else _pseudo_header(source, destination, protocol, len(message))
    checksum = internet_checksum(pseudo, message)
    message = message[:2] + checksum.to_bytes(2, "big") + message[4:]
    return _ip_packet(source, destination, protocol, message, traffic_class)


def udp_packet(
    source: IPAddress,
    destination: IPAddress,
    source_port: int,
    destination_port: int,
    payload: bytes,
    *,
    traffic_class: int = 0,
) -> bytes:
    """A UDP datagram in an IP packet, checksum over the pseudo-header (RFC 768; RFC 8200 §8.1).

    A computed checksum of 0 is sent as 0xFFFF (RFC 768), so 0 always means "none".
    """
    length = _UDP_HEAD.size + len(payload)
    head = _UDP_HEAD.pack(source_port, destination_port, length, 0)
    checksum = internet_checksum(_pseudo_header(source, destination, _UDP, length), head, payload) or 0xFFFF
    datagram = head[:6] + checksum.to_bytes(2, "big") + payload
    return _ip_packet(source, destination, _UDP, datagram, traffic_class)


# --- ECN (RFC 6040) ----------------------------------------------------------------------------

# RFC 6040 §4.2, Figure 4: the inner packet leaving the decapsulator, by (inner, outer); None = drop.
_DECAPSULATE: dict[tuple[Ecn, Ecn], Ecn | None] = {
    (Ecn.NOT_ECT, Ecn.NOT_ECT): Ecn.NOT_ECT,
    (Ecn.NOT_ECT, Ecn.ECT_0): Ecn.NOT_ECT,
    (Ecn.NOT_ECT, Ecn.ECT_1): Ecn.NOT_ECT,
    (Ecn.NOT_ECT, Ecn.CE): None,
    (Ecn.ECT_0, Ecn.NOT_ECT): Ecn.ECT_0,
    (Ecn.ECT_0, Ecn.ECT_0): Ecn.ECT_0,
    (Ecn.ECT_0, Ecn.ECT_1): Ecn.ECT_1,
    (Ecn.ECT_0, Ecn.CE): Ecn.CE,
    (Ecn.ECT_1, Ecn.NOT_ECT): Ecn.ECT_1,
    (Ecn.ECT_1, Ecn.ECT_0): Ecn.ECT_1,
    (Ecn.ECT_1, Ecn.ECT_1): Ecn.ECT_1,
    (Ecn.ECT_1, Ecn.CE): Ecn.CE,
    (Ecn.CE, Ecn.NOT_ECT): Ecn.CE,
    (Ecn.CE, Ecn.ECT_0): Ecn.CE,
    (Ecn.CE, Ecn.ECT_1): Ecn.CE,
    (Ecn.CE, Ecn.CE): Ecn.CE,
}

# The combinations RFC 6040 §4.2 marks "(!!!)": currently unused, so a sign of a broken or
# tampering node; RFC 6040 asks a decapsulator to be able to log them.
_UNEXPECTED = frozenset(
    {(Ecn.NOT_ECT, Ecn.ECT_0), (Ecn.NOT_ECT, Ecn.ECT_1), (Ecn.NOT_ECT, Ecn.CE), (Ecn.CE, Ecn.ECT_1)}
)


def ecn_decapsulate(outer: Ecn, inner: Ecn) -> Ecn | None:
    """The inner packet's ECN field after tunnel egress, or ``None`` to drop it (RFC 6040 §4.2).

    A CE mark on the outer header is never lost: it is copied into an
    ECN-capable inner packet, and a Not-ECT inner packet is dropped instead
    (RFC 9329 §9.5 says the same for TCP encapsulation).
    """
    return _DECAPSULATE[(Ecn(inner), Ecn(outer))]


def ecn_unexpected(outer: Ecn, inner: Ecn) -> bool:
    """Whether RFC 6040 §4.2 calls this arriving pair "currently unused" (worth a log line)."""
    return (Ecn(inner), Ecn(outer)) in _UNEXPECTED


def ecn_encapsulate(inner: Ecn, *, compatibility: bool) -> Ecn:
    """The outer header's ECN field at tunnel ingress (RFC 6040 §4.1).

    Normal mode copies the inner field; compatibility mode sends Not-ECT,
    which is what RFC 9329 §9.5 asks of TCP encapsulation.
    """
    return Ecn.NOT_ECT if compatibility else Ecn(inner)


def packet_ecn(packet: bytes) -> Ecn | None:
    """The ECN field of an IPv4 or IPv6 packet, ``None`` if it is too short or not IP."""
    if len(packet) >= 2 and packet[0] >> 4 == 4:
        return Ecn(packet[1] & 0b11)
    if len(packet) >= 2 and packet[0] >> 4 == 6:
        return Ecn((packet[1] >> 4) & 0b11)
    return None


def with_ecn(packet: bytes, ecn: Ecn) -> bytes | None:
    """``packet`` with its ECN field set to ``ecn``; ``None`` if it is not an IPv4 or IPv6 header.

    For IPv4 the header checksum is updated incrementally (RFC 1624 §3), so a
    packet whose checksum was wrong stays wrong.
    """
    if len(packet) >= _IPV4_HEAD.size and packet[0] >> 4 == 4:
        old_word = int.from_bytes(packet[0:2], "big")
        new_word = (old_word & ~0b11) | ecn
        old_checksum = int.from_bytes(packet[10:12], "big")
        # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')
        checksum = ~_ones_sum(
            (~old_checksum & 0xFFFF).to_bytes(2, "big")
            + (~old_word & 0xFFFF).to_bytes(2, "big")
            + new_word.to_bytes(2, "big")
        )
        return (
            packet[:1]
            + bytes([new_word & 0xFF])
            + packet[2:10]
            + (checksum & 0xFFFF).to_bytes(2, "big")
            + packet[12:]
        )
    if len(packet) >= _IPV6_HEAD.size and packet[0] >> 4 == 6:
        return packet[:1] + bytes([(packet[1] & 0xCF) | (ecn << 4)]) + packet[2:]
    return None


def decapsulate_ecn(packet: bytes, outer: Ecn) -> bytes | None:
    """The inner ``packet`` as it leaves tunnel egress under ``outer`` (RFC 6040 §4.2); ``None`` = drop.

    Not an IP packet, also ``None``: there is no field to carry the mark.
    """
    inner = packet_ecn(packet)
    if inner is None:
        return None
    leaving = ecn_decapsulate(outer, inner)
    if leaving is None:
        return None
    if leaving == inner:
        return bytes(packet)
    return with_ecn(packet, leaving)
