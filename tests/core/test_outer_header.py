"""The outer header of tunnel-mode ESP: RFC 6040 §4.2 at egress over the whole table, the DSCP, ECN
and DF bit of what we seal (RFC 4301 §5.1.2.1, §8.1, RFC 6040 §4.1), and none of it over TCP
(RFC 9329 §6.8, §9.3, §9.5: rows A47, A60, A62)."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address

import pytest

from responder.core.config import DfPolicy, OuterPolicy
from responder.core.data_plane import IPV4_IN_ESP
from responder.core.echo import (
    Ecn,
    InnerPacket,
    build_ipv4,
    echo_request,
    ecn_decapsulate,
    packet_ecn,
    read_packet,
    with_ecn,
)
from responder.core.outer_header import Egress, decapsulate, marking
from responder.core.path import Transport
from tests.core.test_data_plane import ME, THEM, tunnel
from tests.fakes.pair import reverse

ME4, THEM4 = IPv4Address(str(ME)), IPv4Address(str(THEM))

PING4 = echo_request(ME, THEM, identifier=1, sequence=1, traffic_class=46 << 2)
PING6 = echo_request(ip_address("fd00::2"), ip_address("2001:db8::1"), 1, 1, traffic_class=10 << 2)


@pytest.mark.parametrize("packet", [PING4, PING6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("inner", list(Ecn))
@pytest.mark.parametrize("outer", list(Ecn))
def test_decapsulation_follows_rfc6040_on_packets(packet: bytes, inner: Ecn, outer: Ecn) -> None:
    """RFC 6040 §4.2, every (inner, outer) pair: the leaving field is the table's, a Not-ECT packet
    under CE is dropped, the packet stays valid (IPv4 checksum updated), the DSCP is untouched."""
    arriving = with_ecn(packet, inner)
    assert arriving is not None
    leaving, egress = decapsulate(arriving, outer)
    expected = ecn_decapsulate(outer, inner)
    if expected is None:
        assert egress is Egress.DROPPED
        return
    assert packet_ecn(leaving) is expected
    parsed, original = read_packet(leaving), read_packet(packet)
    assert isinstance(parsed, InnerPacket) and isinstance(original, InnerPacket)  # checksums verified
    assert parsed.traffic_class == (original.traffic_class & 0xFC) | expected  # the DSCP untouched
    if expected is inner:
        assert leaving == arriving and egress in (Egress.UNCHANGED, Egress.UNEXPECTED)
    else:
        assert egress in (Egress.MARKED, Egress.UNEXPECTED)


def test_decapsulation_leaves_what_is_not_ip() -> None:
    assert decapsulate(b"\x00\x01", Ecn.CE) == (b"\x00\x01", Egress.UNCHANGED)
    assert decapsulate(b"", Ecn.CE) == (b"", Egress.UNCHANGED)


@pytest.mark.parametrize(
    "stub", [bytes([0x45, Ecn.ECT_0]) + bytes(8), bytes([0x60, 0x20]) + bytes(20)]
)  # ECT(0) both
def test_a_ce_mark_on_a_stub_of_an_ip_header_drops_it(stub: bytes) -> None:
    """RFC 6040 §4.2: the CE mark must reach the inner packet or the packet is dropped.  An ECN-capable
    "IPv4" or "IPv6" packet too short to carry a whole header cannot be marked: it is dropped."""
    assert decapsulate(stub, Ecn.CE)[1] is Egress.DROPPED


@pytest.mark.parametrize(
    ("policy", "tos", "df"),
    [
        (OuterPolicy(), (46 << 2) | Ecn.ECT_0, True),
        (OuterPolicy("clear"), Ecn.ECT_0, True),
        (OuterPolicy(8, DfPolicy.CLEAR), (8 << 2) | Ecn.ECT_0, False),
        (OuterPolicy("copy", DfPolicy.SET), (46 << 2) | Ecn.ECT_0, True),
    ],
)
def test_marking_of_an_ipv4_inner_packet(policy: OuterPolicy, tos: int, df: bool) -> None:
    """RFC 4301 §5.1.2.1: DSCP copied, cleared or fixed; ECN copied (RFC 6040 §4.1 normal mode); DF
    copied from the inner IPv4 header (RFC 4301 §8.1), set or cleared."""
    inner = with_ecn(build_ipv4(ME4, THEM4, 17, bytes(8), tos=46 << 2, dont_fragment=True), Ecn.ECT_0)
    assert inner is not None
    assert marking(inner, policy) == (tos, df)


def test_marking_copies_a_clear_df_and_sets_it_for_ipv6() -> None:
    clear = build_ipv4(ME4, THEM4, 17, bytes(8), dont_fragment=False)
    assert marking(clear, OuterPolicy()) == (0, False)
    assert marking(PING6, OuterPolicy()) == (10 << 2, True)  # IPv6 is never fragmented on its path
    assert marking(b"\x12\x34", OuterPolicy()) == (0, None)  # not IP: nothing to copy


def test_udp_esp_carries_the_marking_of_its_inner_packet() -> None:
    pair, sa = tunnel()
    [child] = sa.children
    assert pair.initiator.send_inner(sa.local_spi, child, PING4, IPV4_IN_ESP, pair.now)
    [esp] = pair.initiator.messages_to_send()
    assert esp.esp and esp.tos == 46 << 2  # the initiator role's default policy: copy


def test_a47_a60_esp_over_tcp_is_never_marked_per_packet() -> None:
    """RFC 9329 §6.8 (row A47) and §9.3 (row A60): over TCP the outer header is the connection's, so
    ESP we seal asks for no DSCP and no DF bit per packet, whatever the inner packet carries and
    whatever the child's policy; the stream sink ignores both (``StreamConnection.send_esp``)."""
    pair, sa = tunnel(transport=Transport.TCP, outer=OuterPolicy(46, DfPolicy.SET))
    [child] = sa.children
    assert pair.initiator.send_inner(sa.local_spi, child, PING4, IPV4_IN_ESP, pair.now)
    [esp] = pair.initiator.messages_to_send()
    assert (esp.tos, esp.df) == (0, None)
    pair.responder.receive_esp(esp.data, reverse(pair.path), pair.now)
    [reply] = [out for out in pair.responder.messages_to_send() if out.esp]
    assert reply.path.transport is Transport.TCP and (reply.tos, reply.df) == (0, None)


def test_a62_over_tcp_the_inner_ecn_field_is_left_as_it_is() -> None:
    """RFC 9329 §9.5 (row A62): the TCP outer header is not ECN-capable per packet, so the stream
    transports report Not-ECT (the default) and an ECT inner packet reaches the backend unchanged;
    the same packet under a CE outer header (UDP) is marked, and a Not-ECT one dropped."""
    pair, sa = tunnel(transport=Transport.TCP, backend="api")
    [child] = sa.children
    ect = with_ecn(PING4, Ecn.ECT_1)
    assert ect is not None
    for inner in (ect, PING4, ect):
        assert pair.initiator.send_inner(sa.local_spi, child, inner, IPV4_IN_ESP, pair.now)
    first, second, third = (esp.data for esp in pair.initiator.messages_to_send())
    pair.responder.receive_esp(first, reverse(pair.path), pair.now)
    pair.responder.receive_esp(second, reverse(pair.path), pair.now, Ecn.CE)
    pair.responder.receive_esp(third, reverse(pair.path), pair.now, Ecn.CE)
    plane = pair.responder.data_plane
    assert [packet_ecn(p.payload) for p in plane.take_inner()] == [Ecn.ECT_1, Ecn.CE]
    assert plane.drops["ecn"] == 1 and plane.ecn["marked"] == 1
