"""The outer IP header of tunnel-mode ESP over UDP: ECN at egress, DSCP, ECN and DF at ingress.

Strategy: the kernel writes and reads the outer header of ESP-in-UDP (RFC 3948)
on our behalf; the shell tells it what to write per datagram and reports what
each received datagram carried.  This module decides, with pure functions:

* **egress** (:func:`decapsulate`): an inner IPv4 or IPv6 packet leaves the
  tunnel with the ECN field RFC 6040 §4.2 gives it from the outer header's
  (RFC 7296 §2.24 defers to RFC 6040): a CE mark is copied in, a Not-ECT inner
  packet under a CE outer header is dropped (the mark cannot be carried), the
  "currently unused" pairs are counted.  Over TCP (RFC 9329 §9.5, row A62)
  the outer header belongs to the TCP connection, so the shell reports
  Not-ECT and nothing changes.
* **ingress** (:func:`marking`): the outer header of a packet we seal copies
  the inner packet's ECN field (RFC 6040 §4.1 normal mode), and its DSCP and
  DF bit follow the child's ``dscp`` and ``df_bit`` settings
  (:class:`~responder.core.config.OuterPolicy`; RFC 4301 §5.1.2.1 and §8.1 name copy, set and
  clear).  An IPv6 inner packet is never fragmented on its path (RFC 8200
  §4.5), so ``copy`` sets DF for it.  Over TCP none of this applies: the
  connection has one DSCP and the kernel's TCP sets DF (RFC 9329 §6.8, §9.3,
  rows A47, A60), so the data plane asks for no marking there.
"""

from __future__ import annotations

import enum
from typing import Final

from responder.core.config import DfPolicy, OuterPolicy
from responder.core.echo import Ecn, ecn_decapsulate, ecn_unexpected, packet_ecn, with_ecn

__all__ = ["Egress", "decapsulate", "marking"]

_DF: Final = 0x40  # the DF flag in the IPv4 header's flags octet (RFC 791 §3.1)


class Egress(enum.Enum):
    """What RFC 6040 §4.2 did to an inner packet (for the data plane's counters)."""

    UNCHANGED = "unchanged"
    MARKED = "marked"  #: the outer CE was copied in
    UNEXPECTED = "unexpected"  #: a "currently unused" pair (worth counting)
    DROPPED = "dropped"  #: CE over a Not-ECT inner packet


def decapsulate(inner: bytes, outer: int) -> tuple[bytes, Egress]:
    """``inner`` as it leaves the tunnel under the outer ECN field ``outer`` (RFC 6040 §4.2).

    A packet that is not IPv4 or IPv6 (too short) is left as it is, for the
    backend to judge.  The IPv4 header checksum is updated incrementally
    (RFC 1624).
    """
    if not outer:  # Not-ECT outside leaves every inner field as it is
        return inner, Egress.UNCHANGED
    inner_ecn = packet_ecn(inner)
    if inner_ecn is None:
        return inner, Egress.UNCHANGED
    outer_ecn = Ecn(outer & 0b11)
    leaving = ecn_decapsulate(outer_ecn, inner_ecn)
    if leaving is None:
        return inner, Egress.DROPPED
    unexpected = ecn_unexpected(outer_ecn, inner_ecn)
    if leaving == inner_ecn:
        return inner, Egress.UNEXPECTED if unexpected else Egress.UNCHANGED
    changed = with_ecn(inner, leaving)
    if changed is None:  # too short for a whole IP header to mark: never lose the CE mark (§4.2)
        return inner, Egress.DROPPED
    return changed, Egress.UNEXPECTED if unexpected else Egress.MARKED


def marking(inner: bytes, policy: OuterPolicy) -> tuple[int, bool | None]:
    """The outer traffic class octet (DSCP and ECN) and DF bit (``None``: IPv4 outer only, the
    socket's default) for ESP carrying ``inner`` (RFC 4301 §5.1.2.1, RFC 6040 §4.1)."""
    version = inner[0] >> 4 if inner else 0
    if version == 4 and len(inner) >= 20:
        traffic_class, inner_df = inner[1], bool(inner[6] & _DF)
    elif version == 6 and len(inner) >= 40:
        traffic_class, inner_df = ((inner[0] & 0x0F) << 4) | (inner[1] >> 4), True
    else:  # not an IP packet (transport mode): nothing to copy
        traffic_class, inner_df = 0, None
    dscp = policy.dscp
    outer_dscp = traffic_class & 0xFC if dscp == "copy" else 0 if dscp == "clear" else int(dscp) << 2
    tos = outer_dscp | (traffic_class & 0b11)  # ECN: RFC 6040 §4.1 normal mode copies it
    df = policy.df
    return tos, inner_df if df is DfPolicy.COPY else df is DfPolicy.SET
