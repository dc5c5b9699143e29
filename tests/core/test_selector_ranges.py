"""Selectors as integers (responder.core.selector_ranges): the same answers as the selectors
themselves (RFC 7296 §3.13.1, RFC 4301 §4.4.1.1), and RFC 4301 §5.2's check of a decrypted packet."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from responder.core.echo import echo_request, udp_packet
from responder.core.enums import IpProtocol
from responder.core.outbound import selects
from responder.core.payloads import TrafficSelector
from responder.core.selector_ranges import admitted, holds, owned_ranges

V4 = ipaddress.IPv4Address


@st.composite
def selectors(draw: st.DrawFn) -> TrafficSelector:
    first = draw(st.integers(0, 255))
    last = draw(st.integers(first, 255))
    protocol = draw(st.sampled_from([0, 1, 6, 17]))
    ports = draw(st.sampled_from([(0, 0xFFFF), (0xFFFF, 0), (7, 7), (0x0800, 0x08FF), (1000, 2000)]))
    return TrafficSelector(
        IpProtocol(protocol), ports[0], ports[1], V4(f"10.0.0.{first}"), V4(f"10.0.0.{last}")
    )


@given(
    st.lists(selectors(), min_size=1, max_size=3),
    st.integers(0, 255),
    st.sampled_from([1, 6, 17]),
    st.integers(0, 0xFFFF),
)
def test_holds_answers_as_the_selectors_do(
    owned: list[TrafficSelector], host: int, protocol: int, port: int
) -> None:
    address = V4(f"10.0.0.{host}")
    expected = any(selects(s, address, protocol, port) for s in owned)
    assert holds(owned_ranges(owned), 4, int(address), protocol, port) is expected


def test_admitted_checks_source_against_theirs_and_destination_against_ours() -> None:
    ours = owned_ranges([TrafficSelector(IpProtocol.ANY, 0, 0xFFFF, V4("192.0.2.0"), V4("192.0.2.255"))])
    theirs = owned_ranges([TrafficSelector(IpProtocol.ANY, 0, 0xFFFF, V4("10.1.0.0"), V4("10.1.0.255"))])
    ping = echo_request(V4("10.1.0.2"), V4("192.0.2.10"), 1, 1)
    assert admitted(ping, ours, theirs)
    assert not admitted(echo_request(V4("10.2.0.2"), V4("192.0.2.10"), 1, 1), ours, theirs)  # source
    assert not admitted(echo_request(V4("10.1.0.2"), V4("198.51.100.1"), 1, 1), ours, theirs)  # destination
    assert not admitted(ping[:19], ours, theirs) and not admitted(b"", ours, theirs)
    udp_only = owned_ranges([TrafficSelector(IpProtocol.UDP, 7, 7, V4("192.0.2.0"), V4("192.0.2.255"))])
    assert not admitted(ping, udp_only, theirs)  # ICMP is not UDP port 7
    assert admitted(udp_packet(V4("10.1.0.2"), V4("192.0.2.10"), 40000, 7, b"x"), udp_only, theirs)
