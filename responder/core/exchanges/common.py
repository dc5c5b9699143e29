"""Small helpers every exchange uses: finding payloads, NAT detection, fresh SPIs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from typing import TypeVar

from responder.core.enums import NotifyType
from responder.core.errors import DecodeError, LocalError
from responder.core.messages import Message
from responder.core.payloads import NotifyPayload, Payload

__all__ = [
    "error_notify",
    "find",
    "find_all",
    "fresh_spi",
    "nat_detection_hash",
    "notifies",
    "require",
]

P = TypeVar("P")


def find(message: Message, kind: type[P]) -> P | None:
    """The first payload of this class, or ``None``."""
    for payload in message.payloads:
        if isinstance(payload, kind):
            return payload
    return None


def find_all(message: Message, kind: type[P]) -> list[P]:
    return [p for p in message.payloads if isinstance(p, kind)]


def require(message: Message, kind: type[P], name: str) -> P:
    """The payload, or INVALID_SYNTAX when a mandatory payload is missing (RFC 7296 §3.10.1)."""
    payload = find(message, kind)
    if payload is None:
        raise DecodeError(f"{message.header.exchange_type.name} without {name} payload", offset=28)
    return payload


def notifies(message: Message, notify_type: NotifyType) -> list[NotifyPayload]:
    return [p for p in message.payloads if isinstance(p, NotifyPayload) and p.notify_type == notify_type]


def error_notify(payloads: tuple[Payload, ...]) -> NotifyPayload | None:
    """The first error-type notify, if any (RFC 7296 §3.10.1: types below 16384)."""
    for payload in payloads:
        if isinstance(payload, NotifyPayload) and payload.notify_type.is_error:
            return payload
    return None


def nat_detection_hash(spi_i: bytes, spi_r: bytes, address: IPv4Address | IPv6Address, port: int) -> bytes:
    """SHA-1(SPIi | SPIr | IP | Port) (RFC 7296 §2.23; RFC 9329 §6.5 uses the TCP port)."""
    return hashlib.sha1(spi_i + spi_r + address.packed + port.to_bytes(2, "big")).digest()  # noqa: S324


def fresh_spi(random_bytes: Callable[[int], bytes], size: int) -> bytes:
    """A fresh SPI: 8 octets, not zero, for an IKE SA (RFC 7296 §2.6: zero means "not yet");
    4 octets, above the reserved 0-255, for ESP (RFC 4303 §2.1)."""
    lowest = 1 if size == 8 else 256
    for _ in range(16):
        spi = random_bytes(size)
        if len(spi) != size:
            raise LocalError("random_bytes returned the wrong number of octets")
        if int.from_bytes(spi, "big") >= lowest:
            return spi
    raise LocalError("random_bytes keeps returning reserved SPIs")
