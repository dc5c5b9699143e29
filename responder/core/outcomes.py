"""What became of one message handed to the core: the typed outcome of ``Endpoint.receive``.

Strategy: the shell must never parse IKE bytes to learn what the core did
with them, and the RFC 9329 §6.1 connection rules (rows A25, A32, A33) need
to know more than "dropped": whether the message proved the sender holds the
SA's keys.  So every call to :meth:`~responder.core.endpoint.Endpoint.receive`
returns a :class:`ReceiveOutcome`: a :class:`Verdict`, and the local SPI of
the IKE SA concerned, if any.
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["ReceiveOutcome", "Verdict"]


class Verdict(enum.Enum):
    """What the core did with one IKE message."""

    #: A valid message of an IKE SA (RFC 9329 §6.1): a request taken (answered now or later,
    #: also with an error notify), or the response to a request of ours.
    ACCEPTED = "accepted"
    #: An IKE fragment whose ICV verified, kept until its message is complete (RFC 7383 §2.6).
    FRAGMENT = "fragment"
    #: A bitwise copy of a request already answered: the stored response went out again (RFC 7296 §2.1).
    RETRANSMISSION = "retransmission"
    #: A new IKE_SA_INIT request answered: a half-open IKE SA exists now.
    CREATED = "created"
    #: A new IKE_SA_INIT request (of any IKE version) answered without keeping anything: COOKIE,
    #: INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN, INVALID_MAJOR_VERSION (RFC 7296 §2.5, §2.6).
    REFUSED = "refused"
    #: A new IKE_SA_INIT request dropped for our own limits (``half_open_max``, ``ike_sa_max``).
    LIMITED = "limited"
    #: A new IKE_SA_INIT request that does not parse, answered with INVALID_SYNTAX (RFC 7296 §2.21.1).
    MALFORMED = "malformed"
    #: Authenticated (or a bitwise copy of an authenticated message) but not acted on: outside the
    #: window, a response to nothing of ours, not allowed in the SA's state, a copy of a request
    #: still being answered, or of IKE_SA_INIT once IKE_AUTH began.
    IGNORED = "ignored"
    #: Not authenticated and not acted on: a header that does not decode, unknown SPIs, a failed
    #: integrity check, a broken structure, an IKE_SA_INIT message no SA expects.
    CORRUPT = "corrupt"


@attrs.frozen(slots=True)
class ReceiveOutcome:
    """The verdict on one message, and our SPI of the IKE SA it concerned (empty if none)."""

    verdict: Verdict
    local_spi: bytes = b""

    @property
    def corrupt(self) -> bool:
        """Counts towards closing its stream connection (RFC 9329 §6.1, rows A32, A33)."""
        return self.verdict in (Verdict.CORRUPT, Verdict.MALFORMED)

    @property
    def new_sa_request(self) -> bool:
        """A new IKE_SA_INIT request that parsed (answered or dropped for our limits)."""
        return self.verdict in (Verdict.CREATED, Verdict.REFUSED, Verdict.LIMITED)

    @property
    def authenticated(self) -> bool:
        """The sender proved it holds the SA's keys, or repeated a message of the SA bit for bit
        (a late copy of IKE_SA_INIT included)."""
        return self.verdict in (Verdict.ACCEPTED, Verdict.FRAGMENT, Verdict.RETRANSMISSION, Verdict.IGNORED)
