"""Child SAs: what was negotiated, and where each pair is in its life (RFC 7296 §1.3, §2.8, §2.17).

Strategy: a :class:`ChildSa` pairs a frozen :class:`ChildSaParams` (the
negotiated ESP transforms, both SPIs, the narrowed traffic selectors, the mode
and the keys) with a :class:`ChildSaState`.  The IKE SA keeps its Child SAs by
our inbound SPI, the SPI the peer sends ESP to and names in a Delete or a
REKEY_SA notify of its own (RFC 7296 §1.4.1, §3.10.1).

The states are the ones RFC 7296 §2.25.1 reasons with: an exchange that
creates a Child SA holds it ``INSTALLING`` until its response is sent (or
received), a rekey in flight marks the old pair ``REKEYING`` and, once the
new pair is installed, ``REKEYED`` until the old one is deleted, and our own
Delete in flight marks it ``DELETING``.  A peer's request about a pair in one
of those states is a collision, answered as §2.25.1 says (see
:mod:`responder.core.exchanges.base`).
"""

from __future__ import annotations

import enum

import attrs

from responder.core.config import Mode
from responder.core.keys import ChildSaKeys
from responder.core.payloads import TrafficSelector
from responder.core.proposals import ChosenProposal

__all__ = ["ChildSa", "ChildSaParams", "ChildSaState"]


class ChildSaState(enum.Enum):
    """Where a Child SA pair is in its life (RFC 7296 §1.3, §2.8, §2.25.1)."""

    INSTALLING = "installing"  #: negotiated; its exchange has not completed yet
    INSTALLED = "installed"  #: carries traffic
    REKEYING = "rekeying"  #: a rekey of it is in flight (ours or the peer's)
    REKEYED = "rekeyed"  #: replaced by a newer pair; kept until its Delete completes (§2.8)
    DELETING = "deleting"  #: our Delete of it is in flight (§1.4.1)


@attrs.frozen(slots=True)
class ChildSaParams:
    """What one Child SA pair was negotiated with.

    ``inbound_spi`` is the SPI we chose (the peer sends to it);
    ``outbound_spi`` the one the peer chose.  ``local_ts``/``remote_ts`` are
    from our point of view.  ``initiated`` says whether we sent the request of
    the exchange that made the pair: KEYMAT is cut for that exchange's
    initiator first (RFC 7296 §2.17), so it says which keys are ours.
    ``rekeyed`` is our inbound SPI of the pair this one replaces, if any.
    ``proposal`` is the suite without the peer's SPI (that is ``outbound_spi``):
    it and the selectors are one copy shared by the pairs of the endpoint that
    negotiated alike (:mod:`responder.core.interning`, issue 14).
    """

    name: str
    proposal: ChosenProposal
    inbound_spi: bytes
    outbound_spi: bytes
    local_ts: tuple[TrafficSelector, ...]
    remote_ts: tuple[TrafficSelector, ...]
    mode: Mode
    keys: ChildSaKeys = attrs.field(repr=False)
    initiated: bool = False
    rekeyed: bytes | None = None


@attrs.define(eq=False, slots=True)
class ChildSa:
    """One Child SA pair of an IKE SA, its state and its deadlines (absolute times; ``None``: none).

    ``rekey_at`` is the soft lifetime (with its jitter drawn) or the time of
    a retry after TEMPORARY_FAILURE; ``expires_at`` the hard lifetime;
    ``doomed_at`` when we delete a pair the peer should have deleted (the
    old pair of a rekey the peer made, or the loser of a collision it must
    delete, RFC 7296 §2.8.1) if its Delete never came.
    """

    params: ChildSaParams
    state: ChildSaState = ChildSaState.INSTALLING
    installed_at: float = 0.0
    rekey_at: float | None = None
    expires_at: float | None = None
    doomed_at: float | None = None

    def deadline(self) -> float | None:
        """The earliest of the pair's deadlines that can still act."""
        times = [t for t in (self.expires_at, self.doomed_at) if t is not None]
        if self.rekey_at is not None and self.state is ChildSaState.INSTALLED:
            times.append(self.rekey_at)
        return min(times, default=None)

    @property
    def inbound_spi(self) -> bytes:
        return self.params.inbound_spi

    @property
    def outbound_spi(self) -> bytes:
        return self.params.outbound_spi

    @property
    def name(self) -> str:
        return self.params.name

    @property
    def counts_towards_limit(self) -> bool:
        """Whether it counts towards ``child_sa_max``: a replaced pair and one being deleted do not."""
        return self.state not in (ChildSaState.REKEYED, ChildSaState.DELETING)
