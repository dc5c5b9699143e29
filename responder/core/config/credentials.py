"""Credentials in the configuration: pre-shared keys, and how a peer authenticates.

Strategy: a :class:`Secret` never shows its octets (``repr`` and ``str`` print
``<secret>``).  How a configured peer proves its identity is a choice, one
value per method: :class:`PskAuth` today (RFC 7296 §2.15, AUTH method 2);
public-key signatures (RFC 7427) and EAP (RFC 7296 §2.16) join the
:data:`PeerAuth` union in their own issues.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeAlias

import attrs

from responder.core.errors import ConfigError
from responder.core.validation import check_text, instance_of

__all__ = ["PeerAuth", "PskAuth", "Secret", "as_peer_auth"]


def _check_secret(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bytes):
        raise ConfigError(f"expected bytes, got {type(value).__name__}")
    if not value:
        raise ConfigError("empty secret")


@attrs.frozen(repr=False)
class Secret:
    """A pre-shared key (RFC 7296 §2.15); its octets never appear in a repr or a log line."""

    value: bytes = attrs.field(validator=_check_secret)

    def __repr__(self) -> str:
        return "<secret>"

    def __str__(self) -> str:
        return "<secret>"

    @classmethod
    def parse(cls, text: str) -> Secret:
        """A secret from configuration text.

        ``0x`` followed by an even number of hex digits gives those octets,
        ``0s`` followed by base64 gives the decoded octets (both strongSwan
        conventions); any other text is taken as its UTF-8 octets, of any
        length, without a terminating NUL (RFC 7296 §2.15: ASCII secrets of 64
        octets and more MUST work).  A text secret that itself begins with
        ``0x`` or ``0s`` must be written in hex.
        """
        check_text(text)
        if not isinstance(text, str):
            raise ConfigError(f"expected a string, got {type(text).__name__}")
        prefix, rest = text[:2].lower(), text[2:]
        if prefix == "0x":
            if not rest:
                raise ConfigError("'0x' is not followed by hex digits")
            if len(rest) % 2:
                raise ConfigError(f"odd number of hex digits ({len(rest)}) after '0x'")
            try:
                return cls(bytes.fromhex(rest))
            except ValueError:
                raise ConfigError("not a hex string after '0x'") from None
        if prefix == "0s":
            try:
                value = base64.b64decode(rest, validate=True)
            except binascii.Error:
                raise ConfigError("not valid base64 after '0s'") from None
            if not value:
                raise ConfigError("empty secret")
            return cls(value)
        return cls(text.encode("utf-8"))


@attrs.frozen
class PskAuth:
    """The peer and the responder both authenticate with one shared key (RFC 7296 §2.15).

    The AUTH payloads of both directions are computed with ``secret``
    (authentication method 2, Shared Key Message Integrity Code).
    """

    secret: Secret = attrs.field(validator=instance_of(Secret, "a Secret"))

    def __str__(self) -> str:
        return "psk"


#: How a peer authenticates; one class per method (public keys and EAP come with their issues).
PeerAuth: TypeAlias = PskAuth


def as_peer_auth(value: PeerAuth | Secret) -> PeerAuth:
    """A bare :class:`Secret` stands for :class:`PskAuth` with that secret (attrs converter)."""
    return PskAuth(value) if isinstance(value, Secret) else value
