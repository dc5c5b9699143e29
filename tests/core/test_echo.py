"""Tests of responder.core.echo: ICMP, ICMPv6 and UDP echo through the tunnel; RFC 6040 ECN tables.

The captured packets come from Linux in a network namespace: ``ping`` (iputils) sending into
a TUN device, and the kernel answering echo requests written into it.
"""

from __future__ import annotations

import ipaddress
import struct

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from responder.core import echo as echo_module
from responder.core.echo import (
    DropReason,
    EchoDropped,
    EchoReply,
    EchoService,
    Ecn,
    IcmpMessage,
    InnerPacket,
    UdpDatagram,
    answer,
    build_ipv4,
    build_ipv6,
    decapsulate_ecn,
    echo_request,
    ecn_decapsulate,
    ecn_encapsulate,
    ecn_unexpected,
    internet_checksum,
    packet_ecn,
    read_packet,
    udp_packet,
    with_ecn,
)
from responder.core.enums import IpProtocol
from responder.core.errors import LocalError
from responder.core.payloads import TrafficSelector

ip = ipaddress.ip_address
V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address


def ts(
    start: str, end: str | None = None, proto: int = 0, ports: tuple[int, int] = (0, 65535)
) -> TrafficSelector:
    return TrafficSelector(IpProtocol(proto), ports[0], ports[1], ip(start), ip(end or start))


OWNED = (ts("10.9.0.0", "10.9.0.255"), ts("fd09::", "fd09::ffff"))
PEER4, OURS4 = V4("10.9.0.1"), V4("10.9.0.5")
PEER6, OURS6 = V6("fd09::1"), V6("fd09::5")

# ping -c1 -s 8 -p 0102030405060708 10.9.0.5 (iputils), as it left through the TUN device.
PING4 = bytes.fromhex("450000244a5e40004001dc630a0900010a09000508008583626700010102030405060708")
PING4_REPLY = bytes.fromhex(
    "45000024"  # version 4, IHL 5, TOS 0, Total Length 36
    "00004000"  # Identification 0, DF
    "400126c2"  # TTL 64, ICMP, header checksum
    "0a0900050a090001"  # addresses swapped
    "00008d83"  # type 0 code 0, checksum
    "626700010102030405060708"  # identifier, sequence number, data: as sent
)
# ping -6 -c1 -s 8 -p 0102030405060708 fd09::5 (flow label 0xf6d09).
PING6 = bytes.fromhex(
    "600f6d0900103a40fd090000000000000000000000000001fd090000000000000000000000000005"
    "8000130d627900010102030405060708"
)
PING6_REPLY = bytes.fromhex(
    "60000000"
    "00103a40"  # traffic class 0, flow label 0; Payload Length 16, ICMPv6, Hop Limit 64
    "fd090000000000000000000000000005fd090000000000000000000000000001"
    "8100120d627900010102030405060708"  # type 129 code 0, checksum, identifier, sequence, data
)


def naive_checksum(data: bytes) -> int:
    """RFC 1071 written the long way, to cross-check ``internet_checksum``."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def replied(packet: bytes, owned: tuple[TrafficSelector, ...] = OWNED) -> EchoReply:
    result = answer(packet, owned)
    assert isinstance(result, EchoReply), result
    return result


def dropped(packet: bytes, owned: tuple[TrafficSelector, ...] = OWNED) -> DropReason:
    result = answer(packet, owned)
    assert isinstance(result, EchoDropped), result
    assert result.detail
    return result.reason


def with_checksum(message: bytes, at: int, *parts: bytes) -> bytes:
    """``message`` with a fresh Internet checksum at ``at`` over ``parts`` + ``message``."""
    message = message[:at] + b"\0\0" + message[at + 2 :]
    return message[:at] + internet_checksum(*parts, message).to_bytes(2, "big") + message[at + 2 :]


def icmpv6_message(source: V6, destination: V6, identifier: int = 1, sequence: int = 1) -> bytes:
    return echo_request(source, destination, identifier, sequence, b"ping")[40:]


# --- known packets byte for byte ----------------------------------------------------------------


def test_ping_reply_bytes_ipv4() -> None:
    reply = replied(PING4)
    assert reply.service is EchoService.ICMP
    assert reply.packet == PING4_REPLY
    assert naive_checksum(reply.packet[:20]) == 0
    assert naive_checksum(reply.packet[20:]) == 0


def test_ping_reply_bytes_ipv6() -> None:
    reply = replied(PING6)
    assert reply.service is EchoService.ICMPV6
    assert reply.packet == PING6_REPLY
    pseudo = OURS6.packed + PEER6.packed + struct.pack("!I3xB", 16, 58)
    assert naive_checksum(pseudo + reply.packet[40:]) == 0


@pytest.mark.parametrize(
    ("request_hex", "kernel_hex"),
    [
        (  # Linux answering an echo request written into a TUN device: ID 0x3c5b, no DF
            "4500002400004000400126c00a0900070a09000108002425424200036162636465666768",
            "450000243c5b000040012a650a0900010a09000700002c25424200036162636465666768",
        ),
        (  # the same over IPv6: flow label 0x32907
            "6000000000103a40fd090000000000000000000000000007fd090000000000000000000000000001"
            "8000b1be424200036162636465666768",
            "6003290700103a40fd090000000000000000000000000001fd090000000000000000000000000007"
            "8100b0be424200036162636465666768",
        ),
    ],
)
def test_reply_matches_linux(request_hex: str, kernel_hex: str) -> None:
    """Our builder made the request sent then; our reply is Linux's but for IPv4 ID/DF and flow label."""
    request, kernel = bytes.fromhex(request_hex), bytes.fromhex(kernel_hex)
    ours = read_packet(request)
    assert isinstance(ours, InnerPacket)
    assert echo_request(ours.source, ours.destination, 0x4242, 3, b"abcdefgh") == request
    reply = replied(request, (ts("10.9.0.1"), ts("fd09::1"))).packet
    header = 20 if ours.version == 4 else 40
    assert reply[header:] == kernel[header:]  # the ICMP or ICMPv6 message, checksum included
    theirs, mine = read_packet(kernel), read_packet(reply)
    assert isinstance(theirs, InnerPacket)
    assert isinstance(mine, InnerPacket)
    assert attrs.evolve(mine, dont_fragment=theirs.dont_fragment) == theirs


# --- UDP echo (RFC 862) -------------------------------------------------------------------------


@pytest.mark.parametrize(("peer", "ours"), [(PEER4, OURS4), (PEER6, OURS6)])
def test_udp_echo_both_families(peer: V4 | V6, ours: V4 | V6) -> None:
    reply = replied(udp_packet(peer, ours, 40000, 7, b"echo me"))
    assert reply.service is EchoService.UDP
    assert reply.packet == udp_packet(ours, peer, 7, 40000, b"echo me")
    read = read_packet(reply.packet)
    assert isinstance(read, InnerPacket)
    assert (read.source, read.destination, read.hop_limit) == (ours, peer, 64)
    assert read.transport == UdpDatagram(7, 40000, b"echo me")


def test_udp_checksum_bytes_ipv4() -> None:
    packet = udp_packet(PEER4, OURS4, 0x1234, 7, b"ab")
    pseudo = PEER4.packed + OURS4.packed + bytes([0, 17]) + (10).to_bytes(2, "big")
    assert naive_checksum(pseudo + packet[20:]) == 0
    assert packet[20:28] == bytes.fromhex("12340007000a") + packet[26:28]


def test_udp_over_ipv4_without_checksum_is_answered() -> None:
    """RFC 768: checksum 0 means the sender computed none; our reply carries one."""
    request = udp_packet(PEER4, OURS4, 40000, 7, b"x")
    request = request[:26] + b"\0\0" + request[28:]
    reply = replied(request)
    assert reply.packet[26:28] != b"\0\0"


def test_udp_over_ipv6_without_checksum_is_dropped() -> None:
    """RFC 8200 §8.1: UDP over IPv6 must carry a checksum."""
    request = udp_packet(PEER6, OURS6, 40000, 7, b"x")
    assert dropped(request[:46] + b"\0\0" + request[48:]) is DropReason.BAD_CHECKSUM


def test_udp_checksum_zero_is_sent_as_ffff() -> None:
    """RFC 768: a computed 0 goes out as all ones."""
    probe = udp_packet(PEER4, OURS4, 4000, 7, b"\0\0")
    payload = probe[26:28]  # adds exactly the one's complement of the rest: the sum becomes 0xFFFF
    packet = udp_packet(PEER4, OURS4, 4000, 7, payload)
    assert packet[26:28] == b"\xff\xff"
    assert isinstance(read_packet(packet), InnerPacket)
    assert replied(udp_packet(OURS4, PEER4, 4000, 7, payload), (ts(str(PEER4)),))


def test_udp_length_shorter_than_ip_payload_trims() -> None:
    request = udp_packet(PEER4, OURS4, 40000, 7, b"abc")
    longer = build_ipv4(PEER4, OURS4, 17, request[20:] + b"junk")
    assert replied(longer).packet == udp_packet(OURS4, PEER4, 7, 40000, b"abc")


@pytest.mark.parametrize("source_port", [0, 7])
def test_udp_source_port_0_or_7_is_not_answered(source_port: int) -> None:
    """Port 0 has no reply port; port 7 would bounce between two echo services."""
    assert dropped(udp_packet(PEER4, OURS4, source_port, 7, b"x")) is DropReason.BAD_ADDRESS


def test_udp_to_another_port_is_not_echo() -> None:
    assert dropped(udp_packet(PEER4, OURS4, 40000, 9, b"x")) is DropReason.NOT_ECHO


# --- what the reply carries ---------------------------------------------------------------------


def test_reply_copies_dscp_and_clears_ecn() -> None:
    request = echo_request(PEER4, OURS4, 1, 2, b"x", traffic_class=0xB8 | Ecn.ECT_0)
    read = read_packet(replied(request).packet)
    assert isinstance(read, InnerPacket)
    assert read.traffic_class == 0xB8
    request6 = echo_request(PEER6, OURS6, 1, 2, b"x", traffic_class=0x28 | Ecn.CE)
    assert replied(request6).packet[:4] == bytes.fromhex("62800000")  # Traffic Class 0x28 spans the nibbles


def test_tfc_padding_after_the_ip_length_is_ignored() -> None:
    """RFC 4303 §2.4: octets after the inner packet's length are padding."""
    assert replied(PING4 + bytes(13)).packet == PING4_REPLY
    assert replied(PING6 + bytes(13)).packet == PING6_REPLY


# --- IPv6 extension headers (RFC 8200 §4) ---------------------------------------------------------


def hop_by_hop(next_header: int, options: bytes = bytes([1, 4, 0, 0, 0, 0])) -> bytes:
    """An extension header in the Hop-by-Hop / Destination Options layout, padded to 8 octets."""
    body = bytes([next_header, 0]) + options
    assert len(body) % 8 == 0
    return bytes([next_header, len(body) // 8 - 1]) + options


def test_ipv6_hop_by_hop_header_is_passed_over() -> None:
    message = icmpv6_message(PEER6, OURS6)
    request = build_ipv6(PEER6, OURS6, 0, hop_by_hop(58) + message)
    reply = replied(request)
    assert reply.packet == echo_request(OURS6, PEER6, 1, 1, b"ping", reply=True)


@pytest.mark.parametrize(
    ("chain", "reason"),
    [
        # Destination Options with an unknown option of action 00 (skip), then ICMPv6
        ([(60, hop_by_hop(58, bytes([0x1E, 4, 1, 2, 3, 4])))], None),
        # Pad1 options
        ([(60, hop_by_hop(58, bytes(6)))], None),
        # Hop-by-Hop, then Routing with Segments Left 0 (ignored), then an atomic fragment
        (
            [
                (0, hop_by_hop(43)),
                (43, bytes([44, 0, 0, 0, 0, 0, 0, 0])),
                (44, bytes([58, 0, 0, 0, 0, 0, 0, 1])),
            ],
            None,
        ),
        # an unknown option whose action says discard
        ([(60, hop_by_hop(58, bytes([0x5E, 4, 1, 2, 3, 4])))], DropReason.EXTENSION_HEADER),
        # the Jumbo Payload option (type 0xC2)
        ([(0, hop_by_hop(58, bytes([0xC2, 4, 0, 1, 0, 0])))], DropReason.EXTENSION_HEADER),
        # an option running past its header
        ([(60, hop_by_hop(58, bytes([1, 9, 0, 0, 0, 0])))], DropReason.TRUNCATED),
        # Routing header with segments left
        ([(43, bytes([58, 0, 0, 2, 0, 0, 0, 0]))], DropReason.EXTENSION_HEADER),
        # Hop-by-Hop not first
        ([(60, hop_by_hop(0)), (0, hop_by_hop(58))], DropReason.EXTENSION_HEADER),
        # a first fragment (M set) and a later one (offset 8)
        ([(44, bytes([58, 0, 0, 1, 0, 0, 0, 1]))], DropReason.FRAGMENT),
        ([(44, bytes([58, 0, 0, 8, 0, 0, 0, 1]))], DropReason.FRAGMENT),
        # ESP inside the inner packet, and a Mobility header
        ([(50, b"")], DropReason.EXTENSION_HEADER),
        ([(135, b"")], DropReason.EXTENSION_HEADER),
    ],
)
def test_ipv6_extension_headers(chain: list[tuple[int, bytes]], reason: DropReason | None) -> None:
    headers = b"".join(body for _, body in chain)
    request = build_ipv6(PEER6, OURS6, chain[0][0], headers + icmpv6_message(PEER6, OURS6))
    if reason is None:
        assert replied(request).packet == echo_request(OURS6, PEER6, 1, 1, b"ping", reply=True)
    else:
        assert dropped(request) is reason


def test_ipv6_no_next_header_is_not_echo() -> None:
    assert dropped(build_ipv6(PEER6, OURS6, 59, bytes(8))) is DropReason.NOT_ECHO


# --- each refusal -------------------------------------------------------------------------------


def ipv4_with(request: bytes, **fields: int) -> bytes:
    """``request`` with IPv4 header fields changed and the header checksum made right again."""
    head = bytearray(request[:20])
    for name, value in fields.items():
        at, size = {"version_ihl": (0, 1), "total_length": (2, 2), "flags": (6, 2), "protocol": (9, 1)}[name]
        head[at : at + size] = value.to_bytes(size, "big")
    return with_checksum(bytes(head), 10) + request[20:]


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"", DropReason.NOT_IP),
        (b"\x50" + bytes(30), DropReason.NOT_IP),
        (PING4[:19], DropReason.TRUNCATED),
        (PING6[:39], DropReason.TRUNCATED),
        (PING4[:30], DropReason.TRUNCATED),  # Total Length past the end
        (PING6[:50], DropReason.TRUNCATED),
        (ipv4_with(PING4, version_ihl=0x44), DropReason.BAD_LENGTH),
        (ipv4_with(PING4, total_length=19), DropReason.BAD_LENGTH),
        (PING6[:4] + b"\0\0" + PING6[6:], DropReason.BAD_LENGTH),  # Payload Length 0: jumbogram
        (PING4[:10] + b"\0\0" + PING4[12:], DropReason.BAD_CHECKSUM),
        (PING4[:-1] + b"\0", DropReason.BAD_CHECKSUM),
        (PING6[:-1] + b"\0", DropReason.BAD_CHECKSUM),
        (ipv4_with(PING4, flags=0x2000), DropReason.FRAGMENT),  # MF
        (ipv4_with(PING4, flags=0x0001), DropReason.FRAGMENT),  # offset 8
        (ipv4_with(PING4, protocol=6), DropReason.NOT_ECHO),
        (echo_request(PEER4, OURS4, 1, 1, reply=True), DropReason.NOT_ECHO),
        (echo_request(PEER6, OURS6, 1, 1, reply=True), DropReason.NOT_ECHO),
        (echo_request(PEER4, V4("10.9.1.5"), 1, 1), DropReason.NOT_OURS),
        (echo_request(PEER6, V6("fd08::5"), 1, 1), DropReason.NOT_OURS),
        (echo_request(V4(0), OURS4, 1, 1), DropReason.BAD_ADDRESS),
        (echo_request(V4("224.0.0.1"), OURS4, 1, 1), DropReason.BAD_ADDRESS),
        (echo_request(V6("::"), OURS6, 1, 1), DropReason.BAD_ADDRESS),
        (echo_request(PEER6, V6("ff02::1"), 1, 1), DropReason.BAD_ADDRESS),
        (udp_packet(PEER4, OURS4, 40000, 7, b"")[:24] + b"\0\x07" + bytes(2) + b"", DropReason.BAD_LENGTH),
    ],
)
def test_refusals(packet: bytes, reason: DropReason) -> None:
    assert dropped(packet, (*OWNED, ts("224.0.0.0", "239.255.255.255"), ts("ff00::", "ff0f::ffff"))) is reason


def test_ipv4_options_are_refused() -> None:
    message = PING4[20:]
    head = ipv4_with(PING4, version_ihl=0x46, total_length=len(PING4) + 4)[:20] + bytes([1, 1, 1, 0])
    packet = with_checksum(head, 10) + message
    assert dropped(packet) is DropReason.IPV4_OPTIONS


def test_icmp_of_four_octets_is_refused() -> None:
    message = with_checksum(bytes([8, 0, 0, 0]), 2)
    assert dropped(build_ipv4(PEER4, OURS4, 1, message)) is DropReason.TRUNCATED
    assert dropped(build_ipv4(PEER4, OURS4, 1, b"\x08\0")) is DropReason.TRUNCATED


def test_short_transport_and_extension_headers_are_truncated() -> None:
    udp = udp_packet(PEER4, OURS4, 40000, 7, b"abc")
    assert dropped(build_ipv4(PEER4, OURS4, 17, udp[20:27])) is DropReason.TRUNCATED  # under 8 octets
    assert dropped(build_ipv4(PEER4, OURS4, 17, udp[20:24] + b"\0\x40" + udp[26:])) is DropReason.TRUNCATED
    assert dropped(build_ipv6(PEER6, OURS6, 0, bytes([58, 0, 1, 4]))) is DropReason.TRUNCATED
    assert dropped(build_ipv6(PEER6, OURS6, 0, bytes([58, 1, 1, 4, 0, 0, 0, 0]))) is DropReason.TRUNCATED
    assert dropped(build_ipv6(PEER6, OURS6, 58, b"\x80\0")) is DropReason.TRUNCATED


def test_builders_refuse_misuse() -> None:
    with pytest.raises(LocalError):
        echo_request(PEER4, OURS6, 1, 1)
    with pytest.raises(LocalError):
        build_ipv4(PEER4, OURS4, 17, bytes(0xFFFF))
    with pytest.raises(LocalError):
        build_ipv6(PEER6, OURS6, 17, bytes(0x10000))


def test_icmp_protocol_number_in_the_other_family_is_not_echo() -> None:
    """ICMP (1) over IPv6 and ICMPv6 (58) over IPv4 are not echo requests of that family."""
    assert dropped(build_ipv6(PEER6, OURS6, 1, PING4[20:])) is DropReason.NOT_ECHO
    assert dropped(build_ipv4(PEER4, OURS4, 58, PING6[40:])) is DropReason.NOT_ECHO


def test_echo_request_with_nonzero_code_is_not_echo() -> None:
    message = with_checksum(bytes([8, 1, 0, 0, 0, 1, 0, 1]), 2)
    assert dropped(build_ipv4(PEER4, OURS4, 1, message)) is DropReason.NOT_ECHO


# --- traffic selectors --------------------------------------------------------------------------


def test_tcp_only_selector_does_not_answer_icmp() -> None:
    owned = (ts("192.0.2.10", proto=6, ports=(443, 443)),)
    assert dropped(echo_request(PEER4, V4("192.0.2.10"), 1, 1), owned) is DropReason.NOT_OURS
    assert dropped(udp_packet(PEER4, V4("192.0.2.10"), 4000, 7, b""), owned) is DropReason.NOT_OURS


def test_icmp_type_in_selector_ports() -> None:
    """RFC 4301 §4.4.1.1: type in the high octet of the port, code in the low one."""
    target = V4("192.0.2.10")
    both = (ts("192.0.2.10", proto=1, ports=(0x0000, 0x08FF)),)
    assert isinstance(answer(echo_request(PEER4, target, 1, 1), both), EchoReply)
    requests_only = (ts("192.0.2.10", proto=1, ports=(0x0800, 0x0800)),)
    assert dropped(echo_request(PEER4, target, 1, 1), requests_only) is DropReason.REPLY_NOT_SELECTED
    replies_only = (ts("192.0.2.10", proto=1, ports=(0, 0)),)
    assert dropped(echo_request(PEER4, target, 1, 1), replies_only) is DropReason.NOT_OURS
    split = (ts("192.0.2.10", proto=1, ports=(0, 0)), ts("192.0.2.10", proto=1, ports=(0x0800, 0x0800)))
    assert isinstance(answer(echo_request(PEER4, target, 1, 1), split), EchoReply)
    v6 = (ts("2001:db8::1", proto=58, ports=(0x8000, 0x81FF)),)
    assert isinstance(answer(echo_request(PEER6, V6("2001:db8::1"), 1, 1), v6), EchoReply)


def test_udp_port_selectors() -> None:
    target = V4("192.0.2.10")
    assert isinstance(
        answer(udp_packet(PEER4, target, 4000, 7, b""), (ts("192.0.2.10", proto=17, ports=(7, 7)),)),
        EchoReply,
    )
    assert (
        dropped(udp_packet(PEER4, target, 4000, 7, b""), (ts("192.0.2.10", proto=17, ports=(8, 100)),))
        is DropReason.NOT_OURS
    )
    # OPAQUE covers only packets whose ports are unknown (RFC 4301 §4.4.1.1)
    opaque = (ts("192.0.2.10", proto=17, ports=(65535, 0)),)
    assert dropped(udp_packet(PEER4, target, 4000, 7, b""), opaque) is DropReason.NOT_OURS
    assert dropped(echo_request(PEER4, target, 1, 1), (ts("192.0.2.10", proto=17),)) is DropReason.NOT_OURS


def test_addresses_of_the_other_family_are_not_ours() -> None:
    assert dropped(PING4, (ts("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),)) is DropReason.NOT_OURS
    assert dropped(PING6, (ts("0.0.0.1", "255.255.255.255"),)) is DropReason.NOT_OURS
    assert dropped(PING4, ()) is DropReason.NOT_OURS


# --- checksums ----------------------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_internet_checksum_matches_rfc_1071(data: bytes) -> None:
    assert internet_checksum(data) == naive_checksum(data)


def test_internet_checksum_edge_values() -> None:
    assert internet_checksum(b"") == 0xFFFF
    assert internet_checksum(b"\0\0\0") == 0xFFFF
    assert internet_checksum(b"\xff\xff") == 0  # one's complement negative zero
    # RFC 1071 §3 example words 0001 f203 f4f5 f6f7: sum ddf2, checksum 220d
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


# --- ECN (RFC 6040) -----------------------------------------------------------------------------

N, E0, E1, CE = Ecn.NOT_ECT, Ecn.ECT_0, Ecn.ECT_1, Ecn.CE

# RFC 6040 §4.2 Figure 4, row by row (inner), columns outer Not-ECT, ECT(0), ECT(1), CE.
DECAP_TABLE = {
    N: (N, N, N, None),
    E0: (E0, E0, E1, CE),
    E1: (E1, E1, E1, CE),
    CE: (CE, CE, CE, CE),
}


@pytest.mark.parametrize("inner", list(Ecn))
@pytest.mark.parametrize("outer", list(Ecn))
def test_ecn_decapsulation_table(outer: Ecn, inner: Ecn) -> None:
    column = [N, E0, E1, CE].index(outer)
    assert ecn_decapsulate(outer, inner) == DECAP_TABLE[inner][column]


def test_ecn_unexpected_combinations() -> None:
    flagged = {(o, i) for o in Ecn for i in Ecn if ecn_unexpected(o, i)}
    assert flagged == {(E0, N), (E1, N), (CE, N), (E1, CE)}


@pytest.mark.parametrize("inner", list(Ecn))
def test_ecn_encapsulation(inner: Ecn) -> None:
    """RFC 6040 §4.1: normal mode copies; compatibility mode (RFC 9329 §9.5, over TCP) sends Not-ECT."""
    assert ecn_encapsulate(inner, compatibility=False) is inner
    assert ecn_encapsulate(inner, compatibility=True) is N


@pytest.mark.parametrize("packet", [PING4, PING6])
@pytest.mark.parametrize("ecn", list(Ecn))
def test_with_ecn_keeps_the_packet_valid(packet: bytes, ecn: Ecn) -> None:
    changed = with_ecn(packet, ecn)
    assert changed is not None
    assert packet_ecn(changed) is ecn
    read, original = read_packet(changed), read_packet(packet)
    assert isinstance(read, InnerPacket)
    assert isinstance(original, InnerPacket)
    assert read.traffic_class == (original.traffic_class & 0xFC) | ecn
    assert attrs.evolve(read, traffic_class=original.traffic_class) == original


def test_decapsulate_ecn_on_packets() -> None:
    ect = with_ecn(PING4, E0)
    assert ect is not None
    assert decapsulate_ecn(PING4, N) == PING4
    assert decapsulate_ecn(PING4, CE) is None  # a Not-ECT packet cannot carry the mark: dropped
    marked = decapsulate_ecn(ect, CE)
    assert marked is not None
    assert packet_ecn(marked) is CE
    assert isinstance(read_packet(marked), InnerPacket)
    assert decapsulate_ecn(b"", N) is None
    assert packet_ecn(b"\x45") is None
    assert with_ecn(PING4[:10], CE) is None


# --- properties ---------------------------------------------------------------------------------

ipv4s = st.builds(V4, st.integers(0, 2**32 - 1))
ipv6s = st.builds(V6, st.integers(0, 2**128 - 1))


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert isinstance(answer(data, OWNED), EchoReply | EchoDropped)
    assert isinstance(read_packet(data), InnerPacket | EchoDropped)
    for ecn in Ecn:
        decapsulate_ecn(data, ecn)
        with_ecn(data, ecn)


@settings(max_examples=300)
@given(
    st.sampled_from(
        [PING4, PING6, udp_packet(PEER4, OURS4, 4000, 7, b"abc"), udp_packet(PEER6, OURS6, 4000, 7, b"")]
    ),
    st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 80),
)
def test_mutated_requests_never_raise(packet: bytes, changes: list[tuple[int, int]], cut: int) -> None:
    mutated = bytearray(packet)
    for at, value in changes:
        if at < len(mutated):
            mutated[at] = value
    result = answer(bytes(mutated[: len(mutated) - cut]), OWNED)
    assert isinstance(result, EchoReply | EchoDropped)


def request_strategy() -> st.SearchStrategy[tuple[bytes, V4 | V6, V4 | V6]]:
    def unicast(address: V4 | V6) -> bool:
        return not (address.is_multicast or address.is_unspecified or address == V4("255.255.255.255"))

    pairs = st.one_of(st.tuples(ipv4s, ipv4s), st.tuples(ipv6s, ipv6s)).filter(
        lambda pair: unicast(pair[0]) and unicast(pair[1])
    )
    data = st.binary(max_size=100)
    tclass = st.integers(0, 255)
    pings = st.builds(
        lambda pair, ident, seq, payload, tc: (
            echo_request(pair[0], pair[1], ident, seq, payload, traffic_class=tc),
            *pair,
        ),
        pairs,
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFF),
        data,
        tclass,
    )
    udps = st.builds(
        lambda pair, port, payload, tc: (
            udp_packet(pair[0], pair[1], port, 7, payload, traffic_class=tc),
            *pair,
        ),
        pairs,
        st.integers(8, 0xFFFF),
        data,
        tclass,
    )
    return st.one_of(pings, udps)


@settings(max_examples=300)
@given(request_strategy())
def test_every_valid_request_gets_a_valid_reply(generated: tuple[bytes, V4 | V6, V4 | V6]) -> None:
    request_bytes, source, destination = generated
    owned = (ts(str(destination)),)
    reply = replied(request_bytes, owned)
    request, read = read_packet(request_bytes), read_packet(reply.packet)
    assert isinstance(request, InnerPacket)
    assert isinstance(read, InnerPacket)  # every checksum of the reply verified
    assert (read.source, read.destination, read.protocol) == (destination, source, request.protocol)
    assert read.hop_limit == 64
    assert read.traffic_class == request.traffic_class & 0xFC
    if isinstance(request.transport, UdpDatagram):
        assert read.transport == UdpDatagram(7, request.transport.source_port, request.transport.payload)
    else:
        assert isinstance(request.transport, IcmpMessage)
        kind = 0 if source.version == 4 else 129
        assert read.transport == IcmpMessage(kind, 0, request.transport.body)
    # the reply is not itself answered: no echo loops
    assert isinstance(answer(reply.packet, (ts(str(source)),)), EchoDropped)


# --- the IPv4 ICMP fast path ---------------------------------------------------------------------


@settings(max_examples=300)
@given(
    st.binary(max_size=1500),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 255),
    st.integers(1, 255),
    st.sampled_from(["10.0.0.2", "192.0.2.99", "224.0.0.1", "0.0.0.0", "255.255.255.255"]),  # noqa: S104
    st.sampled_from(["192.0.2.10", "198.51.100.7", "239.1.1.1", "255.255.255.255"]),
    st.sampled_from([0, 1, 0x2000, 0x0004]),
    st.sampled_from(
        [
            (ts("192.0.2.0", "192.0.2.255"),),
            (ts("0.0.0.0", "255.255.255.255", 1, (0, 0x08FF)),),  # noqa: S104
            (ts("192.0.2.0", "192.0.2.255", 1, (0x0800, 0x08FF)),),  # the reply is not selected
        ]
    ),
)
def test_the_icmpv4_fast_path_gives_the_general_paths_answer(
    data: bytes,
    identifier: int,
    sequence: int,
    tos: int,
    ttl: int,
    source: str,
    destination: str,
    fragment: int,
    owned: tuple[TrafficSelector, ...],
) -> None:
    """``answer`` answers the common IPv4 ping in place (RFC 1624's incremental checksum): its octets
    must be the general path's (read, check, build: RFC 792, RFC 1122 §3.2.2.6), and whatever it
    declines the general path answers or refuses."""
    request = echo_request(ip(source), ip(destination), identifier, sequence, data)
    header = bytearray(request[:20])
    header[1], header[8] = tos, ttl
    header[6:8] = (int.from_bytes(header[6:8], "big") | fragment).to_bytes(2, "big")
    header[10:12] = b"\0\0"
    header[10:12] = internet_checksum(bytes(header)).to_bytes(2, "big")
    packet = bytes(header) + request[20:]
    general = _general_answer(packet, owned)
    fast = echo_module._answer_icmpv4(packet, echo_module.owned_ranges(owned))
    if fast is not None:
        assert fast == general
        assert internet_checksum(fast.packet[:20]) == 0 and internet_checksum(fast.packet[20:]) == 0
    elif isinstance(general, EchoReply):  # declined only for the two zeros of one's complement
        assert general.packet[22:24] in (b"\0\0", b"\xff\xff")
    assert answer(packet, owned) == general


def _general_answer(packet: bytes, owned: tuple[TrafficSelector, ...]) -> EchoReply | EchoDropped:
    """``answer`` with the fast path off."""
    original = echo_module._answer_icmpv4
    echo_module._answer_icmpv4 = lambda packet, owned: None
    try:
        return answer(packet, owned)
    finally:
        echo_module._answer_icmpv4 = original
