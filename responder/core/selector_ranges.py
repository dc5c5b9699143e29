"""Traffic selectors read into integers once per Child SA, for the checks made per packet.

Strategy: a Child SA's selectors (RFC 7296 §3.13.1) are ``ipaddress`` values;
comparing those per packet costs more than the packet's cryptography.  When a
pair is installed its selectors become :data:`SelectorRange` tuples of plain
integers, and each packet is held against them:

* :func:`holds`: an address, protocol and "port" (ICMP type and code in the
  high and low octet, RFC 4301 §4.4.1.1) inside one of the ranges;
* :func:`admitted`: RFC 4301 §5.2, the check IPsec makes of a decrypted
  packet in tunnel mode: its source inside the peer's selectors (TSi, our
  ``remote_ts``) and its destination inside ours (TSr).  An IP header is read
  directly for the usual case of selectors that name no protocol; otherwise
  the packet's whole flow is read (:func:`~responder.core.outbound.read_flow`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

from responder.core.outbound import Flow, read_flow
from responder.core.payloads import TrafficSelector

__all__ = ["SelectorRange", "addresses_only", "admitted", "flow_admitted", "holds", "owned_ranges"]

#: (IP version, first address, last address, IP protocol, first port, last port).
SelectorRange: TypeAlias = tuple[int, int, int, int, int, int]

_ALL_PORTS = (0, 0xFFFF)
_OPAQUE = (0xFFFF, 0)


def owned_ranges(selectors: Sequence[TrafficSelector]) -> tuple[SelectorRange, ...]:
    """``selectors`` read into integers, once per Child SA rather than once per packet."""
    return tuple(
        (
            s.start_address.version,
            int(s.start_address),
            int(s.end_address),
            int(s.ip_protocol),
            s.start_port,
            s.end_port,
        )
        for s in selectors
    )


def holds(
    ranges: tuple[SelectorRange, ...], version: int, address: int, protocol: int, port: int | None
) -> bool:
    """Whether one of ``ranges`` covers this address, protocol and port (RFC 7296 §3.13.1).

    Protocol 0 covers every protocol and port; ``port`` ``None`` (a later fragment, or a
    protocol without ports) is covered only by all ports or OPAQUE (RFC 4301 §4.4.1.1).
    """
    for range_version, first, last, range_protocol, first_port, last_port in ranges:
        if range_version != version or not first <= address <= last:
            continue
        if range_protocol == 0:
            return True
        if range_protocol != protocol:
            continue
        if port is None:
            if (first_port, last_port) in (_ALL_PORTS, _OPAQUE):
                return True
        elif first_port <= port <= last_port:
            return True
    return False


def addresses_only(local: tuple[SelectorRange, ...], remote: tuple[SelectorRange, ...]) -> bool:
    """Whether no selector names a protocol: then addresses alone decide :func:`admitted`."""
    return all(r[3] == 0 for r in (*local, *remote))


def admitted(
    packet: bytes,
    local: tuple[SelectorRange, ...],
    remote: tuple[SelectorRange, ...],
    by_address: bool | None = None,
) -> bool:
    """RFC 4301 §5.2: whether a decrypted tunnel-mode ``packet`` is one its Child SA may carry:
    from inside ``remote`` (the peer's selectors) to inside ``local`` (ours).  ``by_address`` is
    :func:`addresses_only` of the two, if the caller keeps it."""
    version = packet[0] >> 4 if packet else 0
    size = 4 if version == 4 else 16 if version == 6 else 0
    header = 20 if version == 4 else 40
    if not size or len(packet) < header:
        return False
    if by_address is None:
        by_address = addresses_only(local, remote)
    if by_address:  # the usual case: read the two addresses from the IP header
        at = 12 if version == 4 else 8
        source = int.from_bytes(packet[at : at + size], "big")
        destination = int.from_bytes(packet[at + size : at + 2 * size], "big")
        return holds(remote, version, source, 0, None) and holds(local, version, destination, 0, None)
    flow = read_flow(packet)
    return flow is not None and flow_admitted(flow, local, remote)


def flow_admitted(flow: Flow, local: tuple[SelectorRange, ...], remote: tuple[SelectorRange, ...]) -> bool:
    """:func:`admitted` for a packet whose flow is read already (addresses, protocol and ports)."""
    version = flow.source.version
    return holds(remote, version, int(flow.source), flow.protocol, flow.source_port) and holds(
        local, version, int(flow.destination), flow.protocol, flow.destination_port
    )
