"""The little DER (ITU-T X.690) the core reads and writes itself: one tag-length-value at a time.

Strategy: distinguished names (:mod:`responder.core.dn`) and RFC 7427
AlgorithmIdentifiers (:mod:`responder.core.signatures`) are small, fixed
structures; two functions serve both, so neither needs an ASN.1 library.
Definite lengths only (DER); a length that overruns the data raises
:class:`DerError`.
"""

from __future__ import annotations

__all__ = ["DerError", "der_read", "der_tlv"]


class DerError(ValueError):
    """The octets are not well-formed DER where one element was expected."""


def der_tlv(tag: int, body: bytes) -> bytes:
    """One DER element: ``tag``, the definite length of ``body``, ``body``."""
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + body


def der_read(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """The element at ``pos``: (tag, body, position after it); :class:`DerError` if cut or malformed."""
    if pos + 2 > len(data):
        raise DerError("truncated")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DerError("bad length")
        size = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        size = first
    if pos + size > len(data):
        raise DerError("truncated")
    return tag, data[pos : pos + size], pos + size
