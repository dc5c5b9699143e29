"""Events: what the core tells the shell, which logs them and acts on them.

Strategy (after aioquic's ``events.py`` and wsproto): the core never logs.
Every outcome a person or the Trio layer cares about leaves the core as one of
these frozen values, in order, through ``next_event()``.  Every event about an
IKE SA names it by ``local_spi``, our own SPI of that SA (the key the endpoint
finds it by), beside both SPIs for the log; events about no SA (a refused
IKE_SA_INIT, junk, a stream connection the core closes) have an empty
``local_spi``.  Events that carry keys (for the opt-in Wireshark key log) keep
them in ``repr=False`` fields.
"""

from __future__ import annotations

import attrs

from responder.core.enums import ExchangeType, NotifyType
from responder.core.keys import ChildSaKeys, IkeSaKeys
from responder.core.path import Path

__all__ = [
    "AnswerDeferred",
    "AuthenticationFailed",
    "ChildSaDeleted",
    "ChildSaEstablished",
    "ChildSaLimitReached",
    "ChildSaRefused",
    "ChildSasMoved",
    "ConnectionClosing",
    "EspSaRemoved",
    "Event",
    "IkeSaClosed",
    "IkeSaEstablished",
    "IkeSaInitRefused",
    "IkeSaRekeyed",
    "MessageAccepted",
    "MessageDropped",
    "MessageSent",
    "PathChanged",
    "RequestAnswered",
    "ResponseReceived",
    "RetransmissionAnswered",
]


@attrs.frozen
class MessageDropped:
    """A message was discarded without an answer (junk, unknown SPI, replay, ...).

    ``authenticated`` says whether the message had passed its integrity check
    (or was a bitwise copy of one that had): such a message is no sign of
    corruption on its connection (RFC 9329 §6.1).
    """

    reason: str
    local_spi: bytes = b""
    spi_i: bytes = b""
    spi_r: bytes = b""
    authenticated: bool = False


@attrs.frozen
class IkeSaInitRefused:
    """IKE_SA_INIT answered with an error or a COOKIE; no SA was kept (RFC 7296 §1.2, §2.6).

    As initiator, the event says the responder asked for a retry (``local_spi`` set).
    """

    spi_i: bytes
    notify: NotifyType
    reason: str
    local_spi: bytes = b""


@attrs.frozen
class MessageAccepted:
    """A request or response of this IKE SA passed every check (RFC 9329 §6.1 "valid").

    Decrypted, authenticated, not a retransmission, inside the window: the
    SA answers on the path this message came from from now on.
    """

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    exchange: ExchangeType
    message_id: int
    is_response: bool
    #: Its payloads' names, charon's way (``("IDi", "N(INITIAL_CONTACT)", "AUTH")``): for the log.
    payloads: tuple[str, ...] = ()


@attrs.frozen
class MessageSent:
    """A message of this IKE SA went out for the first time (not a retransmission), with its payloads."""

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    exchange: ExchangeType
    message_id: int
    is_response: bool
    payloads: tuple[str, ...] = ()


@attrs.frozen
class PathChanged:
    """A valid message arrived on another path: the SA's requests go there now (RFC 9329 §6.1, A36)."""

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    path: Path
    previous: Path


@attrs.frozen
class RequestAnswered:
    """One exchange, as responder: the request's exchange and what was answered."""

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    exchange: ExchangeType
    message_id: int
    result: str


@attrs.frozen
class AnswerDeferred:
    """A request was accepted and its answer waits for work outside the core (RFC 7296 §2.1 allows
    a responder to take its time).

    ``work`` says what is needed (an EAP backend's answer, an OCSP response);
    the embedding program does it and hands the result back with
    ``Endpoint.resume(local_spi, message_id, result, now)``.  Copies of the
    request that arrive meanwhile are ignored.
    """

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    exchange: ExchangeType
    message_id: int
    work: object


@attrs.frozen
class ResponseReceived:
    """One exchange, as initiator: the response to a request of ours arrived."""

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    exchange: ExchangeType
    message_id: int
    result: str


@attrs.frozen
class RetransmissionAnswered:
    """A retransmitted request got the stored response again (RFC 7296 §2.1)."""

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    message_id: int


@attrs.frozen
class IkeSaEstablished:
    """The IKE SA is up: IKE_AUTH completed and its response is on its way (RFC 7296 §1.2), or a
    CREATE_CHILD_SA made it as the new IKE SA of a rekey (§1.3.2; ``rekeyed`` is then our SPI of the
    IKE SA it replaces).

    ``keys`` and the transform names are there for the Wireshark key log.
    """

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    local_id: str
    remote_id: str
    proposal: str
    encryption_name: str
    integrity_name: str | None
    keys: IkeSaKeys = attrs.field(repr=False)
    rekeyed: bytes | None = None


@attrs.frozen
class IkeSaRekeyed:
    """This IKE SA was rekeyed (RFC 7296 §1.3.2, §2.8): ``heir`` (our SPI) carries its Child SAs and
    every exchange from now on; this one waits only for its Delete (``deleting`` says whether we send
    it, as the initiator of the surviving rekey, or the peer does)."""

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    heir: bytes
    deleting: bool


@attrs.frozen
class AuthenticationFailed:
    """IKE_AUTH failed; AUTHENTICATION_FAILED was sent or received and the SA is gone."""

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    reason: str


@attrs.frozen
class ChildSaEstablished:
    """A Child SA pair is installed.  SPIs are the inbound and outbound ESP SPIs.

    ``initiated`` says whether we sent the request of the exchange that made
    it: its ``*_i`` keys then protect what we send (RFC 7296 §2.17: KEYMAT is
    cut for the exchange's initiator first).  ``rekeyed`` is our inbound SPI of
    the pair it replaces (RFC 7296 §1.3.3), if it is a rekey; ``expires_in``
    its hard lifetime in seconds (``None``: none).
    """

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    inbound_spi: bytes
    outbound_spi: bytes
    proposal: str
    mode: str
    local_ts: tuple[str, ...]
    remote_ts: tuple[str, ...]
    encryption_name: str
    integrity_name: str | None
    esn: bool
    keys: ChildSaKeys = attrs.field(repr=False)
    initiated: bool = False
    rekeyed: bytes | None = None
    rekey_in: float | None = None
    expires_in: float | None = None


@attrs.frozen
class ChildSaRefused:
    """A Child SA was refused (by us or the peer); the IKE SA stays up (RFC 7296 §1.3.1)."""

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    notify: NotifyType
    reason: str


@attrs.frozen
class ChildSaDeleted:
    """A Child SA pair was deleted, both directions together (RFC 7296 §1.4.1), and ``reason`` says why:
    an INFORMATIONAL Delete of either end, its hard lifetime, a rekey that replaced it."""

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    inbound_spi: bytes
    outbound_spi: bytes
    reason: str = ""


@attrs.frozen
class ChildSaLimitReached:
    """A Child SA pair's traffic reached a limit (RFC 4301 §4.4.2.1): ``limit`` names it
    (``rekey_bytes``, ``life_packets``, ``sequence numbers``, ...) and ``outbound`` the direction
    that counted it; a soft limit (``hard`` false) starts its rekey, a hard one its Delete.
    ``action`` says what the core did (``"rekey"``, ``"delete"``, or why nothing)."""

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    inbound_spi: bytes
    limit: str
    outbound: bool
    hard: bool
    action: str


@attrs.frozen
class EspSaRemoved:
    """The ESP SAs of a Child SA pair were removed from the data plane (the pair was deleted or
    its IKE SA closed), with what they carried in their lifetime: accepted packets and payload
    octets each way, and what was dropped inbound (RFC 4303 §3.4: replays and packets left of
    the window, failed integrity checks, malformed packets)."""

    local_spi: bytes
    inbound_spi: bytes
    outbound_spi: bytes
    packets_in: int
    octets_in: int
    packets_out: int
    octets_out: int
    replay_drops: int
    integrity_failures: int
    malformed: int


@attrs.frozen
class ChildSasMoved:
    """The Child SAs of this IKE SA now belong to another, its heir (RFC 7296 §1.3.2, §2.8.2).

    After an IKE SA rekey the surviving new IKE SA "MUST inherit all the Child
    SAs"; its address leases (RFC 7296 §2.19) go with them.  ``heir`` is our SPI
    of the IKE SA that holds them now; ``inbound_spis`` are the pairs moved.
    """

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    heir: bytes
    inbound_spis: tuple[bytes, ...]


@attrs.frozen
class IkeSaClosed:
    """The IKE SA is gone, with all of its Child SAs; ``reason`` says why."""

    local_spi: bytes
    spi_i: bytes
    spi_r: bytes
    reason: str


@attrs.frozen
class ConnectionClosing:
    """The core ends a stream connection (RFC 9329 §6.1): the shell closes it, its IKE SAs stay.

    ``kind`` is ``"corrupt"`` (too many corrupt messages in a row, rows A32,
    A33) or ``"orphan"`` (it carried no live IKE SA for ``orphan_timeout``,
    row A25).
    """

    connection: int
    kind: str
    reason: str
    local_spi: bytes = b""


Event = (
    MessageDropped
    | IkeSaInitRefused
    | MessageAccepted
    | MessageSent
    | PathChanged
    | RequestAnswered
    | AnswerDeferred
    | ResponseReceived
    | RetransmissionAnswered
    | IkeSaEstablished
    | IkeSaRekeyed
    | AuthenticationFailed
    | ChildSaEstablished
    | ChildSaRefused
    | ChildSaDeleted
    | ChildSaLimitReached
    | ChildSasMoved
    | EspSaRemoved
    | IkeSaClosed
    | ConnectionClosing
)
