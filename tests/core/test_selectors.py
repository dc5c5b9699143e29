"""Tests of responder.core.selectors: RFC 7296 §2.9 narrowing, §3.13.1 selector semantics."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from responder.core.config import ANY_IPV4, ANY_IPV6, TrafficSelectorPolicy
from responder.core.enums import IpProtocol, TsType
from responder.core.errors import LocalError
from responder.core.payloads import AnyTrafficSelector, OpaqueTrafficSelector, TrafficSelector
from responder.core.selectors import intersect, narrow, to_policy, to_selector

ALL = (0, 65535)
OPAQUE = (65535, 0)


def ts(start: str, end: str | None = None, proto: int = 0, ports: tuple[int, int] = ALL) -> TrafficSelector:
    return TrafficSelector(
        IpProtocol(proto), ports[0], ports[1], ipaddress.ip_address(start), ipaddress.ip_address(end or start)
    )


def policy(text: str) -> TrafficSelectorPolicy:
    return TrafficSelectorPolicy.parse(text)


def contains(outer: TrafficSelector, inner: TrafficSelector) -> bool:
    """Whether ``outer`` covers all of ``inner``'s traffic."""
    return intersect(outer, inner) == inner


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (ts("10.0.0.0", "10.0.0.255"), ts("10.0.0.128", "10.0.1.255"), ts("10.0.0.128", "10.0.0.255")),
        (ts("10.0.0.0", "10.0.0.255"), ts("10.0.1.0", "10.0.1.255"), None),
        (ts("10.0.0.0", "10.0.0.255"), ts("::", "ffff::"), None),
        (ts("10.0.0.5"), ts("10.0.0.0", "10.0.0.255"), ts("10.0.0.5")),
        (ts("10.0.0.0", "10.0.0.9"), ts("10.0.0.9", "10.0.0.20"), ts("10.0.0.9")),
        # protocol 0 = any: meets every protocol and yields the specific one
        (ts("10.0.0.1", proto=0), ts("10.0.0.1", proto=6), ts("10.0.0.1", proto=6)),
        (ts("10.0.0.1", proto=6), ts("10.0.0.1", proto=0), ts("10.0.0.1", proto=6)),
        (ts("10.0.0.1", proto=6), ts("10.0.0.1", proto=17), None),
        # ports
        (
            ts("10.0.0.1", proto=6, ports=(80, 443)),
            ts("10.0.0.1", proto=6, ports=(443, 8080)),
            ts("10.0.0.1", proto=6, ports=(443, 443)),
        ),
        (ts("10.0.0.1", proto=6, ports=(80, 80)), ts("10.0.0.1", proto=6, ports=(443, 443)), None),
        (
            ts("10.0.0.1", proto=0),
            ts("10.0.0.1", proto=17, ports=(500, 500)),
            ts("10.0.0.1", proto=17, ports=(500, 500)),
        ),
        # OPAQUE ports survive only "all ports"
        (
            ts("10.0.0.1", proto=6, ports=OPAQUE),
            ts("10.0.0.0", "10.0.0.9"),
            ts("10.0.0.1", proto=6, ports=OPAQUE),
        ),
        (
            ts("10.0.0.1", proto=6, ports=OPAQUE),
            ts("10.0.0.1", proto=6, ports=OPAQUE),
            ts("10.0.0.1", proto=6, ports=OPAQUE),
        ),
        (ts("10.0.0.1", proto=6, ports=OPAQUE), ts("10.0.0.1", proto=6, ports=(80, 80)), None),
        # reversed (non-OPAQUE) port ranges are empty
        (ts("10.0.0.1", proto=6, ports=(90, 80)), ts("10.0.0.1"), None),
        # IPv6 with ports and ICMPv6 type/code in the ports
        (
            ts("2001:db8::", "2001:db8::ffff", 58, (0x8000, 0x81FF)),
            ts("2001:db8::10", "2001:db8:1::", 58, (0x8100, 0xFFFF)),
            ts("2001:db8::10", "2001:db8::ffff", 58, (0x8100, 0x81FF)),
        ),
    ],
)
def test_intersect(first: TrafficSelector, second: TrafficSelector, expected: TrafficSelector | None) -> None:
    assert intersect(first, second) == expected
    assert intersect(second, first) == expected


def test_contains() -> None:
    assert contains(ts("10.0.0.0", "10.0.0.255"), ts("10.0.0.7", proto=6, ports=(22, 22)))
    assert not contains(ts("10.0.0.7", proto=6, ports=(22, 22)), ts("10.0.0.0", "10.0.0.255"))
    assert contains(ts("10.0.0.0", "10.0.0.255"), ts("10.0.0.7", proto=6, ports=OPAQUE))
    assert not contains(ts("10.0.0.0", "10.0.0.255", 6, (22, 22)), ts("10.0.0.7", proto=6, ports=OPAQUE))


def test_narrow_keeps_offered_order_and_drops_repeats() -> None:
    offered = [ts("10.0.2.0", "10.0.2.255"), ts("10.0.0.0", "10.0.3.255"), ts("10.0.2.0", "10.0.2.255")]
    allowed = [policy("10.0.2.0/24"), policy("10.0.0.0/24")]
    assert narrow(allowed, offered) == (ts("10.0.2.0", "10.0.2.255"), ts("10.0.0.0", "10.0.0.255"))


def test_narrow_to_a_subset() -> None:
    # RFC 7296 §2.9's example: the initiator asks for 198.51.100.0/24, we allow a part.
    offered = [ts("198.51.100.0", "198.51.100.255")]
    assert narrow([policy("198.51.100.64/26[tcp]")], offered) == (
        ts("198.51.100.64", "198.51.100.127", proto=6),
    )
    assert narrow([policy("192.0.2.0/24")], offered) == ()  # TS_UNACCEPTABLE


def test_narrow_ipv4_only_meets_ipv4() -> None:
    offered = [to_selector(ANY_IPV4), to_selector(ANY_IPV6)]
    assert narrow([policy("2001:db8::/64[udp/53]")], offered) == (
        ts("2001:db8::", "2001:db8::ffff:ffff:ffff:ffff", 17, (53, 53)),
    )
    assert narrow([ANY_IPV4], offered) == (offered[0],)
    assert narrow([ANY_IPV4, ANY_IPV6], offered) == tuple(offered)


def test_narrow_ignores_selector_types_it_does_not_parse() -> None:
    label = OpaqueTrafficSelector(TsType.TS_SECLABEL, b"system_u:object_r:ipsec_spd_t:s0")
    offered: list[AnyTrafficSelector] = [label, ts("10.0.0.1")]
    assert narrow([ANY_IPV4], offered) == (ts("10.0.0.1"),)
    assert narrow([ANY_IPV4], [label]) == ()


def test_narrow_keeps_the_triggering_packet_first_rfc7296_2_9() -> None:
    """§2.9: when a packet triggered the request, its selector comes first and the responder "MUST
    narrow to a subset that includes the initiator's first choices"; when policy refuses the packet,
    the rest is narrowed instead of the whole request refused."""
    packet = ts("198.51.100.43", proto=6, ports=(49152, 49152))
    offered = [packet, ts("198.51.100.0", "198.51.100.255")]
    assert narrow([policy("198.51.100.0/24")], offered) == (packet, ts("198.51.100.0", "198.51.100.255"))
    assert narrow([policy("198.51.100.32/27")], offered)[0] == packet
    assert narrow([policy("198.51.100.128/25")], offered) == (ts("198.51.100.128", "198.51.100.255"),)
    assert narrow([policy("192.0.2.0/24")], offered) == ()
    assert narrow([policy("192.0.2.0/24")], []) == ()


def test_policy_conversions() -> None:
    assert to_selector(policy("192.0.2.1[tcp/443]")) == ts("192.0.2.1", proto=6, ports=(443, 443))
    assert to_policy(ts("2001:db8::", "2001:db8::ff", 17, (1, 2))) == policy("2001:db8::/120[udp/1-2]")
    with pytest.raises(LocalError):
        to_policy(ts("10.0.0.1", proto=6, ports=OPAQUE))


# --- properties --------------------------------------------------------------------------------

_V4_BASE = int(ipaddress.IPv4Address("10.0.0.0"))
_V6_BASE = int(ipaddress.IPv6Address("2001:db8::"))
_PROTOCOLS = st.sampled_from([0, 0, 6, 17, 58])


@st.composite
def selectors(draw: st.DrawFn, *, allow_opaque: bool = True) -> TrafficSelector:
    """Small address and port spaces, so that overlaps are common."""
    version = draw(st.sampled_from([4, 4, 6]))
    a, b = sorted((draw(st.integers(0, 40)), draw(st.integers(0, 40))))
    base = _V4_BASE if version == 4 else _V6_BASE
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    proto = draw(_PROTOCOLS)
    if proto == 0:
        ports = ALL
    elif allow_opaque and draw(st.integers(0, 9)) == 0:
        ports = OPAQUE
    else:
        low, high = sorted((draw(st.integers(0, 30)), draw(st.integers(0, 30))))
        ports = draw(st.sampled_from([ALL, (low, high)]))
    return TrafficSelector(IpProtocol(proto), ports[0], ports[1], make(base + a), make(base + b))


_POLICIES = st.lists(selectors(allow_opaque=False).map(to_policy), max_size=4)
_OFFERS = st.lists(selectors(), max_size=5)


def _dedup(items: list[TrafficSelector]) -> tuple[TrafficSelector, ...]:
    return tuple(dict.fromkeys(items))


@given(_POLICIES, _OFFERS)
def test_every_result_is_inside_an_offered_and_a_policy_selector(
    allowed: list[TrafficSelectorPolicy], offered: list[TrafficSelector]
) -> None:
    for part in narrow(allowed, offered):
        assert any(contains(o, part) for o in offered)
        assert any(contains(to_selector(p), part) for p in allowed)


@given(_OFFERS)
def test_an_all_covering_policy_returns_the_offer(offered: list[TrafficSelector]) -> None:
    assert narrow([ANY_IPV4, ANY_IPV6], offered) == _dedup(offered)
    assert narrow([ANY_IPV6, ANY_IPV4], offered) == _dedup(offered)


@given(_POLICIES, _OFFERS, st.integers(0, 40), st.integers(0, 30), st.sampled_from([6, 17]))
def test_narrowing_loses_no_allowed_traffic(
    allowed: list[TrafficSelectorPolicy], offered: list[TrafficSelector], host: int, port: int, proto: int
) -> None:
    """A packet that an offered selector and a policy selector both cover is covered by the result."""
    for version, base in ((4, _V4_BASE), (6, _V6_BASE)):
        address = ipaddress.IPv4Address(base + host) if version == 4 else ipaddress.IPv6Address(base + host)
        packet = TrafficSelector(IpProtocol(proto), port, port, address, address)
        wanted = any(contains(o, packet) for o in offered) and any(
            contains(to_selector(p), packet) for p in allowed
        )
        covered = any(contains(part, packet) for part in narrow(allowed, offered))
        assert covered == wanted


@given(_POLICIES, selectors(), _OFFERS)
def test_packet_rule(
    allowed: list[TrafficSelectorPolicy], first: TrafficSelector, rest: list[TrafficSelector]
) -> None:
    packet = TrafficSelector(
        first.ip_protocol or IpProtocol.TCP, 7, 7, first.start_address, first.start_address
    )
    result = narrow(allowed, [packet, *rest])
    if any(contains(to_selector(p), packet) for p in allowed):
        assert result[0] == packet
    else:
        assert packet not in result
