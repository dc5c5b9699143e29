"""The ESP anti-replay window (RFC 4303 §3.4.3 and Appendix A).

Strategy: the window is the highest sequence number authenticated so far
(``top``, the full 64-bit value when ESN is used) and a bitmap held in one
``int``: bit ``i`` set means ``top - i`` was received.  Receiving is split the
way RFC 4303 §3.4.3 orders it: :meth:`ReplayWindow.check` runs before the
integrity check and rejects duplicates and numbers left of the window cheaply;
:meth:`ReplayWindow.update` runs only once the ICV (or the AEAD tag) has
verified, so a forged packet can never move the window.

With ESN only the low-order 32 bits travel; :meth:`ReplayWindow.check` infers
the high-order 32 bits as RFC 4303 Appendix A2.2 does (the window either lies
in one 2^32 subspace, case A, or straddles two, case B) and returns the full
64-bit number, which the caller must feed to the ICV (§2.2.1) or the AAD
(RFC 4106 §5, RFC 7634 §2.1).  A wrong guess (a packet from far left of the
window taken for one from the next subspace) then fails the integrity check,
and the window is not updated.  The optional re-synchronisation heuristic of
Appendix A3 is not implemented.

Size: RFC 4303 §3.4.3 requires support for at least 32 and says 64 SHOULD be
the default; any size of 1 or more is accepted here.  RFC 9329 (row A48 of the
requirements) dropped RFC 8229's advice to use a window of 1 over TCP: a normal
window is kept over every transport.
"""

from __future__ import annotations

import enum
import functools
from typing import Final

import attrs

from responder.core.errors import LocalError

__all__ = [
    "DEFAULT_REPLAY_WINDOW",
    "MAX_SEQ_32",
    "MAX_SEQ_64",
    "ReplayRejection",
    "ReplayWindow",
]

#: RFC 4303 §3.4.3: "a window size of 64 is preferred and SHOULD be employed as the default".
DEFAULT_REPLAY_WINDOW: Final = 64
MAX_SEQ_32: Final = (1 << 32) - 1  #: the last sequence number of an SA without ESN
MAX_SEQ_64: Final = (1 << 64) - 1  #: the last sequence number of an SA with ESN
_LOW: Final = 1 << 32


class ReplayRejection(enum.Enum):
    """Why :meth:`ReplayWindow.check` refused a sequence number."""

    DUPLICATE = "duplicate"  #: inside the window and already received
    TOO_OLD = "too old"  #: left of the window, or 0 (never sent, RFC 4303 §3.3.3)


def _check_size(instance: object, attribute: object, value: int) -> None:
    if value < 1:
        raise LocalError(f"a replay window holds at least one packet, not {value}")


@functools.lru_cache(maxsize=16)  # one int per window size for every SA (36 octets per SA held, issue 14)
def _ones(count: int) -> int:
    return (1 << count) - 1


@attrs.define(eq=False, slots=True, on_setattr=attrs.setters.NO_OP)  # ``size`` is checked at construction
class ReplayWindow:
    """A sliding receive window of ``size`` sequence numbers (RFC 4303 §3.4.3, Appendix A).

    ``esn`` says whether the SA uses 64-bit Extended Sequence Numbers; then
    :meth:`check` takes the 32 bits of the packet and infers the rest.
    """

    size: int = attrs.field(default=DEFAULT_REPLAY_WINDOW, validator=_check_size)
    esn: bool = False
    #: The highest sequence number authenticated so far (0: none yet).
    top: int = 0
    #: Bit ``i`` set: ``top - i`` was received (bit 0 is ``top`` itself once one arrived).
    bitmap: int = 0
    _mask: int = attrs.field(init=False, repr=False)  #: ``size`` one bits, made once

    def __attrs_post_init__(self) -> None:
        self._mask = _ones(self.size)

    def infer(self, seq: int) -> int:
        """The full sequence number of a packet carrying the 32-bit ``seq`` (RFC 4303 Appendix A2.2).

        Without ESN that is ``seq`` itself.  With ESN the result can be negative
        (before the SA's first packet) or above 2^64 - 1; :meth:`check` rejects both.
        """
        if not self.esn:
            return seq
        top_low, top_high = self.top & MAX_SEQ_32, self.top >> 32
        bottom = (top_low - self.size + 1) & MAX_SEQ_32  # Bl, the window's left edge (mod 2^32)
        if top_low >= self.size - 1:
            # Case A: the window lies within one subspace.
            high = top_high if seq >= bottom else top_high + 1
        else:
            # Case B: the window spans two subspaces; its left part is in the previous one.
            high = top_high - 1 if seq >= bottom else top_high
        return (high << 32) | seq if high >= 0 else seq - _LOW

    def check(self, seq: int) -> int | ReplayRejection:
        """Before the integrity check: the full sequence number to verify with, or why not.

        ``seq`` is the 32-bit Sequence Number field of the packet (RFC 4303 §2.2).
        The result is what the ICV or AAD must cover; pass it to :meth:`update`
        once the packet has authenticated.
        """
        if not 0 <= seq <= MAX_SEQ_32:
            raise LocalError(f"a Sequence Number field holds 32 bits, not {seq}")
        full = self.infer(seq)
        if full <= 0 or full > MAX_SEQ_64:
            return ReplayRejection.TOO_OLD
        if full > self.top:
            return full
        offset = self.top - full
        if offset >= self.size:
            return ReplayRejection.TOO_OLD
        if self.bitmap >> offset & 1:
            return ReplayRejection.DUPLICATE
        return full

    def update(self, full: int) -> None:
        """After the integrity check: record ``full`` (a value :meth:`check` returned) as received.

        RFC 4303 §3.4.3: "The receive window is updated only if the integrity
        verification succeeds."  A value left of the window is ignored.
        """
        if full > self.top:
            shift = full - self.top
            self.bitmap = ((self.bitmap << shift) | 1) & self._mask if shift < self.size else 1
            self.top = full
            return
        offset = self.top - full
        if offset < self.size:
            self.bitmap |= 1 << offset

    def seen(self, full: int) -> bool:
        """Whether ``full`` is inside the window and was received (for logs and tests)."""
        offset = self.top - full
        return 0 <= offset < self.size and bool(self.bitmap >> offset & 1)
