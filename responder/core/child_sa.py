"""Child SA records (RFC 7296 §1.3, §2.17).

A Child SA pair is a value here: the negotiated ESP transforms, the SPIs of
both directions, the narrowed traffic selectors, the mode and the keys.  The
ESP data plane (a later issue) will consume these; the IKE SA only keeps them
so that INFORMATIONAL DELETE can find them (RFC 7296 §1.4.1).
"""

from __future__ import annotations

import attrs

from responder.core.config import Mode
from responder.core.keys import ChildSaKeys
from responder.core.payloads import TrafficSelector
from responder.core.proposals import ChosenProposal

__all__ = ["ChildSa"]


@attrs.frozen
class ChildSa:
    """One Child SA pair.

    ``inbound_spi`` is the SPI we chose (the peer sends to it);
    ``outbound_spi`` the one the peer chose.  ``local_ts``/``remote_ts`` are
    from our point of view.
    """

    name: str
    proposal: ChosenProposal
    inbound_spi: bytes
    outbound_spi: bytes
    local_ts: tuple[TrafficSelector, ...]
    remote_ts: tuple[TrafficSelector, ...]
    mode: Mode
    keys: ChildSaKeys = attrs.field(repr=False)
