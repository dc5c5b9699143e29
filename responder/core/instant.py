"""The time of one call into the core.

Strategy: the core reads no clock.  Every call that can act on time carries an
:class:`Instant`: ``now`` on the caller's monotonic clock, against which every
deadline is kept (retransmission, half-open expiry, the RFC 9329 connection
rules), and ``wall``, the wall-clock time in POSIX seconds, for what is
defined in calendar time (a certificate's validity, RFC 5280 §4.1.2.5), when
the caller knows it.
"""

from __future__ import annotations

import attrs

__all__ = ["Instant"]


@attrs.frozen(slots=True)
class Instant:
    """``now`` (monotonic seconds) and ``wall`` (POSIX seconds, ``None`` when not known)."""

    now: float
    wall: float | None = None
