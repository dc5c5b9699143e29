"""Events: what the core tells the shell, which logs them and acts on them.

Strategy (after aioquic's ``events.py`` and wsproto): the core never logs.
Every outcome a person or the Trio layer cares about leaves the core as one of
these frozen values, in order, through ``next_event()``.  Events that carry
keys (for the opt-in Wireshark key log) keep them in ``repr=False`` fields.
"""

from __future__ import annotations

import attrs

from responder.core.enums import ExchangeType, NotifyType
from responder.core.keys import ChildSaKeys, IkeSaKeys

__all__ = [
    "AuthenticationFailed",
    "ChildSaDeleted",
    "ChildSaEstablished",
    "ChildSaRefused",
    "Event",
    "IkeSaClosed",
    "IkeSaEstablished",
    "IkeSaInitRefused",
    "MessageAccepted",
    "MessageDropped",
    "RequestAnswered",
    "ResponseReceived",
    "RetransmissionAnswered",
]


@attrs.frozen
class MessageDropped:
    """A message was discarded without an answer (junk, unknown SPI, replay, ...)."""

    reason: str
    spi_i: bytes = b""
    spi_r: bytes = b""


@attrs.frozen
class IkeSaInitRefused:
    """IKE_SA_INIT answered with an error or a COOKIE; no SA was kept (RFC 7296 §1.2, §2.6)."""

    spi_i: bytes
    notify: NotifyType
    reason: str


@attrs.frozen
class MessageAccepted:
    """A request or response of this IKE SA passed every check (RFC 9329 §6.1 "valid").

    Decrypted, authenticated, not a retransmission, inside the window: the shell
    answers on the path this message came from from now on.
    """

    spi_i: bytes
    spi_r: bytes
    exchange: ExchangeType
    message_id: int
    is_response: bool


@attrs.frozen
class RequestAnswered:
    """One exchange, as responder: the request's exchange and what was answered."""

    spi_i: bytes
    spi_r: bytes
    exchange: ExchangeType
    message_id: int
    result: str


@attrs.frozen
class ResponseReceived:
    """One exchange, as initiator: the response to a request of ours arrived."""

    spi_i: bytes
    spi_r: bytes
    exchange: ExchangeType
    message_id: int
    result: str


@attrs.frozen
class RetransmissionAnswered:
    """A retransmitted request got the cached response again (RFC 7296 §2.1)."""

    spi_i: bytes
    spi_r: bytes
    message_id: int


@attrs.frozen
class IkeSaEstablished:
    """IKE_AUTH completed: the IKE SA is up (RFC 7296 §1.2).

    ``keys`` and the transform names are there for the Wireshark key log.
    """

    spi_i: bytes
    spi_r: bytes
    local_id: str
    remote_id: str
    proposal: str
    encryption_name: str
    integrity_name: str | None
    keys: IkeSaKeys = attrs.field(repr=False)


@attrs.frozen
class AuthenticationFailed:
    """IKE_AUTH failed; AUTHENTICATION_FAILED was sent or received and the SA is gone."""

    spi_i: bytes
    spi_r: bytes
    reason: str


@attrs.frozen
class ChildSaEstablished:
    """A Child SA pair is installed.  SPIs are the inbound and outbound ESP SPIs."""

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
    is_original_initiator: bool = False


@attrs.frozen
class ChildSaRefused:
    """A Child SA was refused (by us or the peer); the IKE SA stays up (RFC 7296 §1.3.1)."""

    spi_i: bytes
    spi_r: bytes
    notify: NotifyType
    reason: str


@attrs.frozen
class ChildSaDeleted:
    """A Child SA pair was deleted by an INFORMATIONAL exchange (RFC 7296 §1.4.1)."""

    spi_i: bytes
    spi_r: bytes
    inbound_spi: bytes
    outbound_spi: bytes


@attrs.frozen
class IkeSaClosed:
    """The IKE SA is gone, with all of its Child SAs; ``reason`` says why."""

    spi_i: bytes
    spi_r: bytes
    reason: str


Event = (
    MessageDropped
    | IkeSaInitRefused
    | MessageAccepted
    | RequestAnswered
    | ResponseReceived
    | RetransmissionAnswered
    | IkeSaEstablished
    | AuthenticationFailed
    | ChildSaEstablished
    | ChildSaRefused
    | ChildSaDeleted
    | IkeSaClosed
)
