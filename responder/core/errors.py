"""Error types of the sans-IO core.

Strategy (after h2's ``exceptions.py`` and h11's ``_util.py``): every check on
peer input raises, at the place the check is made, a subclass of
:class:`ProtocolError`.  Each class names the Notify Message Type the responder
answers with (``notify``), or ``None`` where the RFC's answer is silence.  One
boundary (:mod:`responder.core.dispatch`) turns them into responses and events.
:class:`LocalError` is different: it means the calling code misused the API and
it is never caught by that boundary.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import ClassVar

from responder.core.enums import NotifyType, PayloadType, ProtocolId

__all__ = [
    "AuthenticationFailedError",
    "ChildSaError",
    "ChildSaNotFound",
    "ConfigError",
    "DecodeError",
    "IntegrityCheckFailed",
    "InvalidKePayload",
    "InvalidKeyExchangeValue",
    "InvalidMajorVersion",
    "LocalError",
    "ProtocolError",
    "TemporaryFailure",
    "UnsupportedCriticalPayload",
    "config_path",
]


class ProtocolError(Exception):
    """Something the peer sent is not acceptable.

    ``notify`` is the Notify Message Type of the answer the RFC asks for, or
    ``None`` when the message is to be dropped without an answer.
    ``notify_data`` is the Notification Data of that answer.
    """

    notify: ClassVar[NotifyType | None] = NotifyType.INVALID_SYNTAX

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def answer(self) -> NotifyType | None:
        """The notify to answer with; ``notify`` unless an instance chooses its own."""
        return self.notify

    @property
    def notify_data(self) -> bytes:
        return b""

    @property
    def notify_spi(self) -> tuple[ProtocolId, bytes]:
        """The Protocol ID and SPI of the answer's Notify payload (none: RESERVED and empty)."""
        return ProtocolId.RESERVED, b""


class DecodeError(ProtocolError):
    """A message or payload does not decode (RFC 7296 §2.21.1, §3).

    ``offset`` is the octet offset, counted from the first octet of the buffer
    given to the decoder (the IKE header for whole messages), at which the check
    failed; ``payload_type`` is the payload being decoded at that point (``None``
    while in the IKE header).
    """

    notify: ClassVar[NotifyType | None] = NotifyType.INVALID_SYNTAX

    def __init__(self, reason: str, *, offset: int, payload_type: PayloadType | None = None) -> None:
        where = f"at offset {offset}"
        if payload_type is not None:
            where += f" in {payload_type.name} payload"
        super().__init__(f"{reason} ({where})")
        self.reason = reason
        self.offset = offset
        self.payload_type = payload_type


class UnsupportedCriticalPayload(DecodeError):
    """An unknown payload carried the critical bit (RFC 7296 §2.5, §3.2).

    The answer's Notification Data is the one-octet type of that payload
    (RFC 7296 §3.10.1).
    """

    notify: ClassVar[NotifyType | None] = NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD

    @property
    def notify_data(self) -> bytes:
        assert self.payload_type is not None  # always set by the codec
        return bytes([int(self.payload_type) & 0xFF])


class InvalidMajorVersion(DecodeError):
    """The IKE header's major version is not 2 (RFC 7296 §2.5).

    The message is dropped and an unauthenticated INVALID_MAJOR_VERSION SHOULD
    be sent (with the highest version we support in its header).
    """

    notify: ClassVar[NotifyType | None] = NotifyType.INVALID_MAJOR_VERSION


class IntegrityCheckFailed(DecodeError):
    """The ICV or AEAD tag of an Encrypted payload did not verify (RFC 7296 §3.14).

    Unauthenticated junk: the message is dropped without an answer (RFC 7296
    §2.21.2 asks for no response to a message that fails integrity).
    """

    notify: ClassVar[NotifyType | None] = None


class InvalidKeyExchangeValue(ProtocolError):
    """A peer's key exchange value failed the RFC 6989 / RFC 8031 checks.

    RFC 6989 §2.5: the answer to an invalid KE payload in a request is
    INVALID_SYNTAX.
    """

    notify: ClassVar[NotifyType | None] = NotifyType.INVALID_SYNTAX


class LocalError(Exception):
    """The caller misused the core's API (a bug in our code, never peer input)."""


class AuthenticationFailedError(ProtocolError):
    """The peer's AUTH does not verify or its ID is not allowed (RFC 7296 §2.21.2)."""

    notify: ClassVar[NotifyType | None] = NotifyType.AUTHENTICATION_FAILED


class TemporaryFailure(ProtocolError):
    """The request cannot be done now: an exchange of ours about the same SA is in flight (RFC 7296 §2.25).

    The peer waits and may retry later; the IKE SA stays.
    """

    notify: ClassVar[NotifyType | None] = NotifyType.TEMPORARY_FAILURE


class ChildSaError(ProtocolError):
    """A Child SA cannot be created; the IKE SA is kept (RFC 7296 §1.3.1, §2.21.3).

    The notify is chosen per instance: NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE,
    INTERNAL_ADDRESS_FAILURE, FAILED_CP_REQUIRED, NO_ADDITIONAL_SAS ...
    """

    def __init__(self, reason: str, notify: NotifyType) -> None:
        super().__init__(reason)
        self.child_notify = notify

    @property
    def answer(self) -> NotifyType | None:
        return self.child_notify


class ChildSaNotFound(ChildSaError):
    """A request to rekey a Child SA we do not have (RFC 7296 §2.25): CHILD_SA_NOT_FOUND, with the
    Protocol ID and SPI copied from the request's REKEY_SA notify."""

    def __init__(self, reason: str, protocol: ProtocolId, spi: bytes) -> None:
        super().__init__(reason, NotifyType.CHILD_SA_NOT_FOUND)
        self.protocol = protocol
        self.spi = spi

    @property
    def notify_spi(self) -> tuple[ProtocolId, bytes]:
        return self.protocol, self.spi


class InvalidKePayload(ChildSaError):
    """The KEi of a CREATE_CHILD_SA request is not of the group the chosen proposal needs
    (RFC 7296 §1.3, §3.10.1): INVALID_KE_PAYLOAD naming that group; the initiator may retry."""

    def __init__(self, reason: str, group: int) -> None:
        super().__init__(reason, NotifyType.INVALID_KE_PAYLOAD)
        self.group = group

    @property
    def notify_data(self) -> bytes:
        return self.group.to_bytes(2, "big")


class ConfigError(ValueError):
    """A configuration value is not acceptable.

    ``field`` is the path of the offending field (``"peers[0].psk"``), empty
    when the error concerns a whole value (a text that does not parse);
    ``message`` says what is wrong with it.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field

    def within(self, prefix: str) -> ConfigError:
        """The same error seen from a container: ``prefix`` is put in front of the path."""
        if not self.field:
            path = prefix
        elif self.field.startswith("["):
            path = prefix + self.field
        else:
            path = f"{prefix}.{self.field}"
        return ConfigError(self.message, path)


@contextlib.contextmanager
def config_path(prefix: str) -> Iterator[None]:
    """Prefix the field path of any :class:`ConfigError` raised inside the block.

    ``with config_path("peers[0].psk"): Secret.parse(text)`` turns
    ``empty secret`` into ``peers[0].psk: empty secret``.
    """
    try:
        yield
    except ConfigError as exc:
        raise exc.within(prefix) from None
