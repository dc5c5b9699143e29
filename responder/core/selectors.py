"""Traffic selector narrowing (RFC 7296 §2.9, §3.13.1).

Strategy: a selector is a box of three intervals (addresses, IP protocol,
ports) and narrowing is box intersection.  Each offered selector is
intersected with each local policy selector; the non-empty intersections are
the answer, in the offered order (then the policy order), without repeats.
An empty answer means TS_UNACCEPTABLE.  TSi and TSr are narrowed separately
(TSi against the child's ``remote_ts``, TSr against its ``local_ts``): local
policy is the product of the two lists, so per-side narrowing is exact.

Rules from RFC 7296 §3.13.1: IPv4 selectors only meet IPv4 ones; IP protocol
0 means any protocol and meets every protocol, giving the more specific one;
ports (ICMP type and code for ICMP) intersect as ranges, and the OPAQUE form
(start 65535, end 0) survives only a policy that allows every port.
Selectors of types we do not parse (``OpaqueTrafficSelector``) are ignored,
so they never appear in the answer (§2.9).

The first-selector rule of §2.9 (the initiator puts the packet that
triggered the request first) needs no extra step: intersecting keeps a
selector the policy covers unchanged, and offered order is kept, so when the
policy accepts that packet the answer begins with it; when it does not, §2.9
asks for narrowing to an acceptable subset of the rest, which is what
intersection gives.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TypeAlias

from responder.core.config import TrafficSelectorPolicy
from responder.core.enums import IpProtocol
from responder.core.errors import LocalError
from responder.core.payloads import AnyTrafficSelector, TrafficSelector

__all__ = [
    "describe_selector",
    "intersect",
    "narrow",
    "to_policy",
    "to_selector",
    "within",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

_ALL_PORTS = (0, 0xFFFF)
_OPAQUE = (0xFFFF, 0)


def to_selector(policy: TrafficSelectorPolicy) -> TrafficSelector:
    """The wire form of a policy selector."""
    return TrafficSelector(
        IpProtocol(policy.ip_protocol),
        policy.start_port,
        policy.end_port,
        policy.start_address,
        policy.end_address,
    )


def to_policy(selector: TrafficSelector) -> TrafficSelectorPolicy:
    """A received selector as policy, e.g. to check a rekey keeps its selectors (RFC 7296 §2.9.2).

    Raises :class:`LocalError` for OPAQUE or reversed port ranges, which policy cannot express.
    """
    if selector.start_port > selector.end_port:
        raise LocalError("a selector with OPAQUE or reversed ports has no policy form")
    return TrafficSelectorPolicy(
        selector.start_address,
        selector.end_address,
        int(selector.ip_protocol),
        selector.start_port,
        selector.end_port,
    )


def _ports(first: TrafficSelector, second: TrafficSelector) -> tuple[int, int] | None:
    a = (first.start_port, first.end_port)
    b = (second.start_port, second.end_port)
    if a == _OPAQUE or b == _OPAQUE:
        # OPAQUE: the ports are not available (RFC 7296 §3.13.1); only "all ports" covers that.
        if a in (_OPAQUE, _ALL_PORTS) and b in (_OPAQUE, _ALL_PORTS):
            return _OPAQUE
        return None
    start, end = max(a[0], b[0]), min(a[1], b[1])
    return (start, end) if start <= end else None


def _address_range(selector: TrafficSelector) -> tuple[int, int]:
    return int(selector.start_address), int(selector.end_address)


def intersect(first: TrafficSelector, second: TrafficSelector) -> TrafficSelector | None:
    """The traffic both selectors cover, or ``None``."""
    if first.start_address.version != second.start_address.version:
        return None
    start = max(_address_range(first)[0], _address_range(second)[0])
    end = min(_address_range(first)[1], _address_range(second)[1])
    if start > end:
        return None
    if first.ip_protocol == 0:
        protocol = second.ip_protocol
    elif second.ip_protocol in (0, first.ip_protocol):
        protocol = first.ip_protocol
    else:
        return None
    ports = _ports(first, second)
    if ports is None:
        return None
    return TrafficSelector(protocol, ports[0], ports[1], _address(first, start), _address(first, end))


def _address(like: TrafficSelector, value: int) -> IPAddress:
    if like.start_address.version == 4:
        return ipaddress.IPv4Address(value)
    return ipaddress.IPv6Address(value)


def within(answered: Sequence[AnyTrafficSelector], offered: Sequence[TrafficSelector]) -> bool:
    """Whether every selector the responder answered lies inside one we offered (RFC 7296 §2.9:
    the responder may only narrow).  A reversed range (start above end) is inside nothing."""
    for selector in answered:
        if not isinstance(selector, TrafficSelector):
            return False
        if not any(intersect(selector, ours) == selector for ours in offered):
            return False
    return bool(answered)


def narrow(
    policy: Sequence[TrafficSelectorPolicy], offered: Sequence[AnyTrafficSelector]
) -> tuple[TrafficSelector, ...]:
    """The parts of ``offered`` that ``policy`` allows (RFC 7296 §2.9); empty means TS_UNACCEPTABLE.

    Result order: offered order, then policy order; exact repeats are dropped.
    """
    policy_selectors = [to_selector(p) for p in policy]
    result: list[TrafficSelector] = []
    for selector in offered:
        if not isinstance(selector, TrafficSelector):
            continue  # unknown TS type: ignored, never returned (§2.9)
        for allowed in policy_selectors:
            part = intersect(selector, allowed)
            if part is not None and part not in result:
                result.append(part)
    return tuple(result)


def describe_selector(selector: TrafficSelector) -> str:
    """A selector as text, in policy notation where policy can express it (for logs and events).

    A peer may send what policy cannot: OPAQUE ports (start 65535, end 0) and
    ports with IP protocol 0 (RFC 7296 §3.13.1 asks for 0-65535 there, but the
    selector is still narrowed as offered); those are spelled out instead of
    raising from :func:`to_policy`.
    """
    try:
        return str(to_policy(selector))
    except (LocalError, ValueError):
        ports = (selector.start_port, selector.end_port)
        port_text = "opaque" if ports == _OPAQUE else f"{ports[0]}-{ports[1]}"
        return f"{selector.start_address}-{selector.end_address}[{int(selector.ip_protocol)}/{port_text}]"
