"""When an ESP SA has carried enough: soft and hard lifetimes in octets, packets and sequence numbers.

Strategy: RFC 4301 §4.4.2.1 gives every SA a soft and a hard lifetime, by
time and by traffic.  Time is the IKE SA's timers' job
(:func:`responder.core.dispatch.handle_timer`); traffic is counted where the
packets are, so :class:`EspLimits` is asked after every packet the data plane
opens or seals (:meth:`EspLimits.after`) and says, once, when the pair
reaches a limit: the soft one starts the same Child SA rekey the timer
starts (RFC 7296 §2.8), the hard one its Delete, after which the pair carries
nothing (:attr:`EspLimits.expired`, as Linux XFRM drops packets of an expired
state).  The core then acts on the :class:`LimitReached` it is handed
(:func:`responder.core.dispatch.child_limit`).

The limits:

* ``rekey_bytes``/``life_bytes`` and ``rekey_packets``/``life_packets`` of
  the child (:class:`~responder.core.config.VolumeLifetime`), for either
  direction: each one-way SA keeps its own counters (octets of the inner
  packets, as :class:`~responder.core.esp.EspCounters` counts them);
* the sequence number (RFC 4303 §3.3.3: the sender's counter must never
  cycle, so the SA is rekeyed well before it would).  The soft limit is the
  point where one eighth of the space is left (:func:`soft_sequence`: about
  537 million packets before 2^32 without ESN, far beyond any traffic with
  ESN); it counts our outbound counter and the peer's, whose sender must stop
  at the same end.  Our counter at its last value is the hard limit.
"""

from __future__ import annotations

import functools
from typing import Final

import attrs

from responder.core.config import VolumeLifetime
from responder.core.esp import EspCounters

__all__ = ["SEQUENCE_LIMIT", "EspLimits", "LimitReached", "soft_sequence"]

#: The name a sequence number limit has in events and log lines.
SEQUENCE_LIMIT: Final = "sequence numbers"
_RESERVE_SHIFT: Final = 3  # one eighth of the sequence space is left when the rekey starts


@functools.lru_cache(maxsize=8)  # one int for every pair (32 octets per Child SA held, issue 14)
def soft_sequence(max_seq: int) -> int:
    """The sequence number from which the pair is rekeyed (RFC 4303 §3.3.3): 7/8 of ``max_seq``."""
    return max_seq - (max_seq >> _RESERVE_SHIFT)


@attrs.frozen(slots=True)
class LimitReached:
    """A Child SA pair (``inbound_spi``, our inbound SPI) reached a limit: ``limit`` names it
    (``rekey_bytes``, ``life_packets``, ``sequence numbers``, ...), ``outbound`` says which
    direction's counter, ``hard`` whether it is the hard lifetime (delete) or the soft one (rekey)."""

    inbound_spi: bytes
    limit: str
    outbound: bool
    hard: bool

    def describe(self) -> str:
        """``"life_bytes (outbound) reached"``, for events and log lines."""
        return f"{self.limit} ({'outbound' if self.outbound else 'inbound'}) reached"


@attrs.define(eq=False, slots=True)
class EspLimits:
    """The limits of one Child SA pair and whether each already fired (once per pair)."""

    volume: VolumeLifetime
    max_seq: int
    soft_seq: int = attrs.field(init=False)
    soft_fired: bool = False  #: the rekey was asked for (never again for this pair)
    expired: bool = False  #: a hard limit fired: the pair carries no more packets
    _counted: bool = attrs.field(init=False)  # any octet or packet limit at all (per packet: one test)
    _retry: LimitReached | None = attrs.field(init=False, default=None)  #: a hard limit to report again

    def __attrs_post_init__(self) -> None:
        self.soft_seq = soft_sequence(self.max_seq)
        self._counted = bool(self.volume)

    def after(
        self, inbound_spi: bytes, counters: EspCounters, seq: int, *, outbound: bool
    ) -> LimitReached | None:
        """What a packet just counted (``seq`` its sequence number) reached, if anything new."""
        if self.expired or (not self._counted and seq < self.soft_seq):
            return None
        volume = self.volume
        hard = None
        if volume.life_bytes and counters.octets >= volume.life_bytes:
            hard = "life_bytes"
        elif volume.life_packets and counters.packets >= volume.life_packets:
            hard = "life_packets"
        elif outbound and seq >= self.max_seq:
            hard = SEQUENCE_LIMIT
        if hard is not None:
            self.expired = True
            return LimitReached(inbound_spi, hard, outbound, hard=True)
        if self.soft_fired:
            return None
        soft = None
        if volume.rekey_bytes and counters.octets >= volume.rekey_bytes:
            soft = "rekey_bytes"
        elif volume.rekey_packets and counters.packets >= volume.rekey_packets:
            soft = "rekey_packets"
        elif seq >= self.soft_seq:
            soft = SEQUENCE_LIMIT
        if soft is None:
            return None
        self.soft_fired = True
        return LimitReached(inbound_spi, soft, outbound, hard=False)

    def rearm(self, reached: LimitReached) -> None:
        """``reached`` fired and could not be acted on: it fires again with the next packet (a hard
        limit stays in force meanwhile: the pair carries nothing more)."""
        if reached.hard:
            self._retry = reached
        else:
            self.soft_fired = False

    def take_retry(self) -> LimitReached | None:
        """The hard limit to report again (:meth:`rearm`), once; for a packet the pair refuses."""
        retry, self._retry = self._retry, None
        return retry

    def exhausted(self, inbound_spi: bytes) -> LimitReached | None:
        """Our sequence counter cannot go on (RFC 4303 §3.3.3): the hard limit, if it had not fired."""
        if self.expired:
            return None
        self.expired = True
        return LimitReached(inbound_spi, SEQUENCE_LIMIT, outbound=True, hard=True)
