"""The TUN backend's selector lookup (issue 12; RFC 4301 §4.4.1, §5.1, §5.2): which Child SA carries a
packet from the host, read without raising from any octets, most specific entry first, the newest
pair among equals."""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import given
from hypothesis import strategies as st

from responder.core.config import TrafficSelectorPolicy
from responder.core.echo import build_ipv4, build_ipv6, echo_request, udp_packet
from responder.core.outbound import Flow, OutboundTable, Unrouted, read_flow, selects
from responder.core.payloads import TrafficSelector
from responder.core.selector_ranges import flow_admitted, owned_ranges
from responder.core.selectors import to_selector

HOST = ipaddress.ip_address("10.99.0.1")  # an address on the responder's host (local side)
PEER = ipaddress.ip_address("10.250.1.1")  # the peer's inner address (remote side)


def ts(text: str) -> TrafficSelector:
    return to_selector(TrafficSelectorPolicy.parse(text))


def tcp(source: str, destination: str, sport: int, dport: int) -> bytes:
    segment = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x02, 65535, 0, 0)
    return build_ipv4(ipaddress.IPv4Address(source), ipaddress.IPv4Address(destination), 6, segment)


# --- read_flow --------------------------------------------------------------------------------------


def test_an_icmp_echo_reads_type_and_code_as_both_ports() -> None:
    """RFC 7296 §3.13.1: ICMP type in the high octet, code in the low one."""
    flow = read_flow(echo_request(HOST, PEER, identifier=1, sequence=1))
    assert flow == Flow(HOST, PEER, 1, 8 << 8, 8 << 8, 28)
    reply = read_flow(echo_request(HOST, PEER, identifier=1, sequence=1, reply=True))
    assert reply is not None and reply.destination_port == 0


def test_udp_and_tcp_ports_and_tfc_padding() -> None:
    packet = udp_packet(HOST, PEER, 5353, 53, b"query")
    flow = read_flow(packet + bytes(16))  # RFC 4303 §2.4 TFC padding after the IP length
    assert flow == Flow(HOST, PEER, 17, 5353, 53, len(packet))
    assert read_flow(tcp("10.99.0.1", "10.250.1.1", 40000, 443)) == Flow(HOST, PEER, 6, 40000, 443, 40)


def test_a_later_ipv4_fragment_has_no_ports() -> None:
    """RFC 4301 §4.4.1.1: only the first fragment carries the ports."""
    packet = bytearray(udp_packet(HOST, PEER, 5353, 53, b"query"))
    packet[6:8] = (0x2000 | 3).to_bytes(2, "big")  # MF, offset 24
    flow = read_flow(bytes(packet))
    assert flow is not None and (flow.protocol, flow.source_port, flow.destination_port) == (17, None, None)


def test_ipv6_extension_headers_are_walked_to_the_upper_layer() -> None:
    source, destination = ipaddress.IPv6Address("fd99::1"), ipaddress.IPv6Address("fd00::2")
    datagram = udp_packet(source, destination, 1000, 2000, b"x")[40:]
    hop_by_hop = bytes([60, 0, 1, 4, 0, 0, 0, 0])  # next: Destination Options; PadN
    destination_options = bytes([44, 0, 1, 4, 0, 0, 0, 0])  # next: Fragment
    first_fragment = bytes([17, 0, 0, 1, 0, 0, 0, 7])  # offset 0, M set
    packet = build_ipv6(source, destination, 0, hop_by_hop + destination_options + first_fragment + datagram)
    assert read_flow(packet) == Flow(source, destination, 17, 1000, 2000, len(packet))
    later_fragment = bytes([17, 0, 0, 0x10, 0, 0, 0, 7])  # offset 16
    flow = read_flow(build_ipv6(source, destination, 44, later_fragment + datagram))
    assert flow is not None and (flow.protocol, flow.source_port) == (17, None)
    assert read_flow(build_ipv6(source, destination, 0, hop_by_hop[:4])) is None  # cut short


def test_what_is_not_an_ip_packet() -> None:
    good = echo_request(HOST, PEER, identifier=1, sequence=1)
    assert read_flow(b"") is None
    assert read_flow(b"\x50" + good[1:]) is None  # version 5
    assert read_flow(good[:19]) is None
    assert read_flow(good[:27]) is None  # Total Length past the end
    assert read_flow(b"\x44" + good[1:]) is None  # IHL 4
    assert read_flow(bytes([0x60]) + bytes(39)) is None  # IPv6, Payload Length 0, Next Header 0


@given(st.binary(max_size=200))
def test_read_flow_never_raises(data: bytes) -> None:
    flow = read_flow(data)
    assert flow is None or flow.length <= len(data)


@given(st.binary(min_size=1, max_size=80), st.integers(0, 63))
def test_read_flow_never_raises_on_damaged_packets(noise: bytes, at: int) -> None:
    for packet in (
        udp_packet(HOST, PEER, 1, 2, b"data"),
        echo_request(PEER.__class__("10.0.0.1"), PEER, 1, 1),
    ):
        damaged = packet[:at] + noise + packet[at + len(noise) :]
        flow = read_flow(damaged)
        assert flow is None or isinstance(flow, Flow)


# --- selects ---------------------------------------------------------------------------------------


def test_selects_protocol_ports_and_opaque() -> None:
    assert selects(ts("10.250.1.0/24"), PEER, 17, 53)
    assert not selects(ts("10.250.1.0/24[tcp]"), PEER, 17, 53)
    assert selects(ts("10.250.1.0/24[udp/53]"), PEER, 17, 53)
    assert not selects(ts("10.250.1.0/24[udp/54]"), PEER, 17, 53)
    assert selects(ts("10.250.1.0/24[udp]"), PEER, 17, None)  # every port: also no ports
    assert not selects(ts("10.250.1.0/24[udp/53]"), PEER, 17, None)
    opaque = TrafficSelector(17, 0xFFFF, 0, PEER, PEER)  # type: ignore[arg-type]
    assert selects(opaque, PEER, 17, None) and not selects(opaque, PEER, 17, 53)
    assert not selects(ts("fd00::/8"), PEER, 17, 53)  # other IP version


# --- the table --------------------------------------------------------------------------------------


def test_the_child_whose_remote_holds_the_destination_and_local_the_source() -> None:
    table = OutboundTable()
    table.add(b"AAAA", [ts("10.99.0.0/24")], [ts("10.250.1.1/32")])
    table.add(b"BBBB", [ts("10.99.0.0/24")], [ts("10.250.2.0/24")])
    assert table.lookup(echo_request(HOST, PEER, 1, 1)) == b"AAAA"
    assert table.lookup(echo_request(HOST, ipaddress.ip_address("10.250.2.7"), 1, 1)) == b"BBBB"
    assert table.lookup(echo_request(HOST, ipaddress.ip_address("10.250.3.1"), 1, 1)) is Unrouted.NO_SA
    # the source must be in the local selectors too (RFC 4301 §5.1)
    stranger = ipaddress.ip_address("192.0.2.1")
    assert table.lookup(echo_request(stranger, PEER, 1, 1)) is Unrouted.NO_SA
    assert table.lookup(b"\x00junk") is Unrouted.NOT_IP
    table.remove(b"AAAA")
    assert table.lookup(echo_request(HOST, PEER, 1, 1)) is Unrouted.NO_SA and len(table) == 1


def test_the_most_specific_entry_wins_whatever_the_order() -> None:
    wide, narrow = (
        (b"WIDE", [ts("0.0.0.0/0")], [ts("10.0.0.0/8")]),
        (b"NARR", [ts("0.0.0.0/0")], [ts("10.250.1.0/24")]),
    )
    for order in ((wide, narrow), (narrow, wide)):
        table = OutboundTable()
        for entry in order:
            table.add(*entry)
        assert table.lookup(echo_request(HOST, PEER, 1, 1)) == b"NARR"
        assert table.lookup(echo_request(HOST, ipaddress.ip_address("10.1.1.1"), 1, 1)) == b"WIDE"


def test_a_named_protocol_and_a_narrower_port_range_are_more_specific() -> None:
    table = OutboundTable()
    table.add(b"ANY_", [ts("10.99.0.0/24")], [ts("10.250.1.1/32")])
    table.add(b"UDP_", [ts("10.99.0.0/24")], [ts("10.250.1.1/32[udp]")])
    table.add(b"DNS_", [ts("10.99.0.0/24")], [ts("10.250.1.1/32[udp/53]")])
    assert table.lookup(udp_packet(HOST, PEER, 4000, 53, b"q")) == b"DNS_"
    assert table.lookup(udp_packet(HOST, PEER, 4000, 123, b"q")) == b"UDP_"
    assert table.lookup(echo_request(HOST, PEER, 1, 1)) == b"ANY_"


def test_icmp_type_and_code_narrow_like_ports() -> None:
    table = OutboundTable()
    table.add(b"PING", [ts("10.99.0.0/24[icmp/2048]")], [ts("10.250.1.1/32[icmp/2048]")])  # type 8 code 0
    assert table.lookup(echo_request(HOST, PEER, 1, 1)) == b"PING"
    assert table.lookup(echo_request(HOST, PEER, 1, 1, reply=True)) is Unrouted.NO_SA  # type 0


def test_among_equals_the_newest_pair_carries_the_traffic() -> None:
    """RFC 7296 §2.8: after a rekey the new pair carries the traffic; the old one waits for its Delete."""
    table = OutboundTable()
    table.add(b"OLD_", [ts("10.99.0.0/24")], [ts("10.250.1.1/32")])
    table.add(b"NEW_", [ts("10.99.0.0/24")], [ts("10.250.1.1/32")])
    assert table.lookup(echo_request(HOST, PEER, 1, 1)) == b"NEW_"
    table.remove(b"NEW_")
    assert table.lookup(echo_request(HOST, PEER, 1, 1)) == b"OLD_"


def test_an_opaque_selector_ranks_as_wide_as_all_ports() -> None:
    """RFC 4301 §4.4.1.1: OPAQUE (65535-0) holds only packets whose ports are unknown, like a
    selector of every port does; it is not the narrowest port range (issue 12 review item 5).  So
    for a later fragment the newer of the two carries it, whichever form it has."""
    opaque = TrafficSelector(17, 0xFFFF, 0, PEER, PEER)  # type: ignore[arg-type]
    fragment = bytearray(udp_packet(HOST, PEER, 5353, 53, b"query"))
    fragment[6:8] = (0x2000 | 3).to_bytes(2, "big")  # MF, offset 24: no ports
    for first, second in ((opaque, ts("10.250.1.1/32[udp]")), (ts("10.250.1.1/32[udp]"), opaque)):
        table = OutboundTable()
        table.add(b"OLD_", [ts("10.99.0.0/24")], [first])
        table.add(b"NEW_", [ts("10.99.0.0/24")], [second])
        assert table.lookup(bytes(fragment)) == b"NEW_"
        # a packet with ports: only the selector of every port holds it
        full = b"OLD_" if first != opaque else b"NEW_"
        assert table.lookup(udp_packet(HOST, PEER, 5353, 53, b"query")) == full


def test_the_candidates_kept_per_destination_follow_installs_and_removals() -> None:
    """The lookup's remembered candidates (review item 6) are dropped when a Child SA comes or goes."""
    table = OutboundTable()
    ping = echo_request(HOST, PEER, 1, 1)
    assert table.lookup(ping) is Unrouted.NO_SA
    table.add(b"WIDE", [ts("10.99.0.0/24")], [ts("10.250.0.0/16")])
    assert table.lookup(ping) == b"WIDE"
    table.add(b"HOST", [ts("10.99.0.0/24")], [ts("10.250.1.1/32")])
    assert table.lookup(ping) == b"HOST"
    table.remove(b"HOST")
    assert table.lookup(ping) == b"WIDE"
    table.remove(b"WIDE")
    assert table.lookup(ping) is Unrouted.NO_SA


def test_flow_admitted_checks_a_decrypted_packet_the_other_way_round() -> None:
    """RFC 4301 §5.2: source in the remote selectors, destination in the local ones."""
    table = OutboundTable()
    table.add(b"AAAA", [ts("10.99.0.0/24")], [ts("10.250.1.1/32")])
    local, remote = owned_ranges([ts("10.99.0.0/24")]), owned_ranges([ts("10.250.1.1/32")])
    inbound = read_flow(echo_request(PEER, HOST, 1, 1))
    spoofed = read_flow(echo_request(ipaddress.ip_address("10.250.1.2"), HOST, 1, 1))
    assert inbound is not None and spoofed is not None
    assert flow_admitted(inbound, local, remote)
    assert not flow_admitted(spoofed, local, remote)
    assert not flow_admitted(inbound, remote, local)  # the other way round is not admitted
    assert list(table.remote_selectors()) == [ts("10.250.1.1/32")]


# --- against a model --------------------------------------------------------------------------------

_OCTETS = st.integers(0, 3)


@st.composite
def selectors(draw: st.DrawFn) -> TrafficSelector:
    first, last = sorted((draw(_OCTETS), draw(_OCTETS)))
    protocol = draw(st.sampled_from([0, 1, 6, 17]))
    low, high = (0, 0xFFFF) if protocol == 0 else sorted((draw(st.integers(0, 3)), draw(st.integers(0, 3))))
    start = ipaddress.IPv4Address(f"10.0.0.{first}")
    return TrafficSelector(protocol, low, high, start, ipaddress.IPv4Address(f"10.0.0.{last}"))  # type: ignore[arg-type]


@st.composite
def packets(draw: st.DrawFn) -> bytes:
    source = ipaddress.IPv4Address(f"10.0.0.{draw(_OCTETS)}")
    destination = ipaddress.IPv4Address(f"10.0.0.{draw(_OCTETS)}")
    if draw(st.booleans()):
        return udp_packet(source, destination, draw(st.integers(0, 3)), draw(st.integers(0, 3)), b"")
    return tcp(str(source), str(destination), draw(st.integers(0, 3)), draw(st.integers(0, 3)))


def _model_holds(selector: TrafficSelector, address: ipaddress.IPv4Address, protocol: int, port: int) -> bool:
    in_range = selector.start_address <= address <= selector.end_address  # type: ignore[operator]
    return in_range and (
        selector.ip_protocol == 0
        or (selector.ip_protocol == protocol and selector.start_port <= port <= selector.end_port)
    )


@given(
    st.lists(
        st.tuples(
            st.lists(selectors(), min_size=1, max_size=2), st.lists(selectors(), min_size=1, max_size=2)
        ),
        max_size=5,
    ),
    packets(),
    st.sets(st.integers(0, 4), max_size=3),
)
def test_lookup_agrees_with_a_brute_force_model(
    entries: list[tuple[list[TrafficSelector], list[TrafficSelector]]], packet: bytes, removed: set[int]
) -> None:
    """The answer holds the packet both ways, no NO_SA while some entry holds it, and no matching
    entry has a smaller remote address range than the one chosen; removed entries never answer."""
    table = OutboundTable()
    for index, (local, remote) in enumerate(entries):
        table.lookup(packet)  # remembers candidates, which each add must forget
        table.add(index.to_bytes(4, "big"), local, remote)
    for index in removed:
        table.lookup(packet)
        table.remove(index.to_bytes(4, "big"))
    assert len(table) == len(entries) - len(removed & set(range(len(entries))))
    flow = read_flow(packet)
    assert flow is not None and flow.source_port is not None and flow.destination_port is not None
    matching = [
        index
        for index, (local, remote) in enumerate(entries)
        if index not in removed
        and any(_model_holds(s, flow.destination, flow.protocol, flow.destination_port) for s in remote)  # type: ignore[arg-type]
        and any(_model_holds(s, flow.source, flow.protocol, flow.source_port) for s in local)  # type: ignore[arg-type]
    ]
    result = table.lookup(packet)
    if not matching:
        assert result is Unrouted.NO_SA
        return
    assert isinstance(result, bytes) and int.from_bytes(result, "big") in matching

    def narrowest(index: int) -> int:
        return min(
            int(s.end_address) - int(s.start_address)
            for s in entries[index][1]
            if _model_holds(s, flow.destination, flow.protocol, flow.destination_port)  # type: ignore[arg-type]
        )

    assert narrowest(int.from_bytes(result, "big")) == min(narrowest(index) for index in matching)
