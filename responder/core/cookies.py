"""Stateless COOKIEs for IKE_SA_INIT (RFC 7296 §2.6, §2.6.1; RFC 9329 §6.3).

Strategy: Cookie = <VersionIDofSecret> | SHA-256(Ni | IPi | SPIi | <secret>),
the construction RFC 7296 §2.6 suggests.  The secret rotates with ``now``:
every ``lifetime`` seconds a new one is drawn from the injected randomness; a
cookie made with the previous secret is still accepted, one made two
generations ago is not.

What is deliberately *not* hashed:

* the initiator's port, since the retry may come on another TCP connection
  or after a NAT rebinding (RFC 9329 §6.3, row A42);
* KEi, since the initiator may change its group between the COOKIE and the
  INVALID_KE_PAYLOAD retries (RFC 7296 §2.6.1, row B11).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

import attrs

from responder.core.errors import LocalError

__all__ = ["CookieJar"]

_VERSION_SIZE = 4
_SECRET_SIZE = 32


@attrs.define(eq=False)
class CookieJar:
    """Makes and checks COOKIE notification data; holds the rotating secret."""

    random_bytes: Callable[[int], bytes]
    lifetime: float
    _generation: int = attrs.field(default=-1, init=False)
    _current: bytes = attrs.field(default=b"", init=False, repr=False)
    _previous: bytes | None = attrs.field(default=None, init=False, repr=False)
    _rotated_at: float = attrs.field(default=0.0, init=False)

    def __attrs_post_init__(self) -> None:
        if self.lifetime <= 0:
            raise LocalError("cookie secret lifetime must be positive")

    def _rotate_if_due(self, now: float) -> None:
        if self._generation < 0:
            self._new_secret(now)
            return
        while now - self._rotated_at >= self.lifetime:
            self._new_secret(self._rotated_at + self.lifetime)

    def _new_secret(self, now: float) -> None:
        self._previous = self._current if self._generation >= 0 else None
        self._current = self.random_bytes(_SECRET_SIZE)
        if len(self._current) != _SECRET_SIZE:
            raise LocalError("random_bytes returned the wrong number of octets")
        self._generation = (self._generation + 1) & 0xFFFFFFFF
        self._rotated_at = now

    @staticmethod
    def _digest(secret: bytes, nonce_i: bytes, address: IPv4Address | IPv6Address, spi_i: bytes) -> bytes:
        return hashlib.sha256(nonce_i + address.packed + spi_i + secret).digest()

    def make(self, now: float, nonce_i: bytes, address: IPv4Address | IPv6Address, spi_i: bytes) -> bytes:
        """The COOKIE notification data for this initiator (36 octets, within 1..64)."""
        self._rotate_if_due(now)
        version = self._generation.to_bytes(_VERSION_SIZE, "big")
        return version + self._digest(self._current, nonce_i, address, spi_i)

    def check(
        self, now: float, cookie: bytes, nonce_i: bytes, address: IPv4Address | IPv6Address, spi_i: bytes
    ) -> bool:
        """Whether ``cookie`` was made by this jar, with the current or the previous secret."""
        self._rotate_if_due(now)
        if len(cookie) != _VERSION_SIZE + 32:
            return False
        version = int.from_bytes(cookie[:_VERSION_SIZE], "big")
        if version == self._generation:
            secret: bytes | None = self._current
        elif version == (self._generation - 1) & 0xFFFFFFFF:
            secret = self._previous
        else:
            return False
        if secret is None:
            return False
        return hmac.compare_digest(cookie[_VERSION_SIZE:], self._digest(secret, nonce_i, address, spi_i))
