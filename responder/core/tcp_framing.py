"""RFC 9329 stream framing: the "IKETCP" prefix, the Length field, the non-ESP marker.

Strategy (h11's ``ReceiveBuffer``): a :class:`StreamDeframer` is fed whatever
octets a stream delivered, in pieces of any size, and hands out whole frames
with :meth:`StreamDeframer.next_frame`.  It knows nothing of sockets, TLS or
time: the same code serves TCP, TLS and the tests (RFC 9329 §3, row A23).
The shell applies the timeouts (to the prefix, to the first frame) while
:attr:`StreamDeframer.awaiting_prefix` and the frames it hands out say what
it is waiting for.

On the receiving side of a TCP Responder, in stream order:

* the six octets "IKETCP" come first, once; nothing is parsed before all six
  have arrived (RFC 9329 §4, §6.1, rows A9, A11); any other prefix closes the
  connection (§10, row A15);
* then frames: a 16-bit Length that counts itself (§3, row A16);
* Length 0 or 1 is fatal and closes the connection (§3.1, §3.2, row A18);
* Length 2 is an empty message, silently ignored (§3, row A19);
* a one-octet body 0xFF is a NAT-keepalive, silently dropped (§6.6, row A45);
* a body starting with four zero octets is IKE (the non-ESP marker, §3.1,
  row A17), anything else is ESP, whose SPI is never zero (§3.2, row A22);
  a body of one to three octets that is not a keepalive can be neither;
* a Length above the configured maximum closes the connection (§3, rows A20,
  A21: the protocol's own maximum is 65535 including the Length field).

A partly received frame is simply dropped with the deframer when the
connection breaks (§6.1, row A29).
"""

from __future__ import annotations

import attrs

from responder.core.errors import LocalError

__all__ = [
    "LENGTH_SIZE",
    "MAX_LENGTH",
    "NAT_KEEPALIVE",
    "NON_ESP_MARKER",
    "STREAM_PREFIX",
    "EspFrame",
    "Frame",
    "FramingError",
    "IkeFrame",
    "StreamDeframer",
    "frame_esp",
    "frame_ike",
]

STREAM_PREFIX = b"IKETCP"  # RFC 9329 §4, Figure 3
NON_ESP_MARKER = bytes(4)  # RFC 9329 §3.1
NAT_KEEPALIVE = b"\xff"  # RFC 3948 §2.3, RFC 9329 §6.6
LENGTH_SIZE = 2
MAX_LENGTH = 0xFFFF  # the Length field counts itself: bodies of at most 65533 octets (§3)


class FramingError(Exception):
    """The stream cannot be framed any more; the connection must be closed.

    Raised for a wrong prefix, a Length of 0 or 1, a Length above the maximum,
    or a body that is neither IKE, ESP nor a keepalive.  It is not a
    :class:`~responder.core.errors.ProtocolError`: no IKE SA is involved and
    nothing is answered (RFC 9329 §3.1: "MUST close the TCP connection").
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class IkeFrame:
    """An IKE message, without the Length field and the non-ESP marker."""

    message: bytes


@attrs.frozen
class EspFrame:
    """An ESP packet, without the Length field (RFC 9329 §3.2)."""

    packet: bytes


Frame = IkeFrame | EspFrame


@attrs.define(eq=False)
class StreamDeframer:
    """Turns the octets a TCP Originator sends into frames.

    ``max_length`` bounds the Length field (the frame, Length included);
    ``max_buffer`` bounds what may wait undelivered in the buffer.
    """

    max_length: int = MAX_LENGTH
    max_buffer: int = 2 * MAX_LENGTH
    _buffer: bytearray = attrs.field(factory=bytearray, init=False)
    _prefix_seen: bool = attrs.field(default=False, init=False)
    ignored: int = attrs.field(default=0, init=False)  #: empty messages and keepalives dropped
    failed: str | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        if not LENGTH_SIZE + 1 <= self.max_length <= MAX_LENGTH:
            raise LocalError(f"max_length must be within 3..{MAX_LENGTH}")
        if self.max_buffer < self.max_length:
            raise LocalError("max_buffer must hold at least one frame of max_length")

    @property
    def awaiting_prefix(self) -> bool:
        """True until all six prefix octets have arrived."""
        return not self._prefix_seen

    @property
    def buffered(self) -> int:
        """Octets received and not yet handed out."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Add octets from the stream; raises FramingError past ``max_buffer``."""
        self._check_usable()
        if len(self._buffer) + len(data) > self.max_buffer:
            self._fail(f"more than {self.max_buffer} octets buffered")
        self._buffer += data

    def next_frame(self) -> Frame | None:
        """The next whole frame, or ``None`` until more octets arrive."""
        self._check_usable()
        if not self._prefix_seen:
            prefix = bytes(self._buffer[: len(STREAM_PREFIX)])
            if not STREAM_PREFIX.startswith(prefix):
                self._fail(f"stream does not begin with 'IKETCP' (got {prefix!r})")
            if len(prefix) < len(STREAM_PREFIX):
                return None  # RFC 9329 §6.1: wait for the whole prefix
            del self._buffer[: len(STREAM_PREFIX)]
            self._prefix_seen = True
        while len(self._buffer) >= LENGTH_SIZE:
            length = int.from_bytes(self._buffer[:LENGTH_SIZE], "big")
            if length < LENGTH_SIZE:
                self._fail(f"Length {length} is a fatal error (RFC 9329 §3.1)")
            if length > self.max_length:
                self._fail(f"Length {length} exceeds the maximum of {self.max_length}")
            if len(self._buffer) < length:
                return None
            body = bytes(self._buffer[LENGTH_SIZE:length])
            del self._buffer[:length]
            if not body or body == NAT_KEEPALIVE:
                self.ignored += 1  # RFC 9329 §3 (empty) and §6.6 (keepalive)
                continue
            if body[:4] == NON_ESP_MARKER:
                if len(body) == len(NON_ESP_MARKER):
                    self._fail("non-ESP marker without an IKE message")
                return IkeFrame(body[4:])
            if len(body) < 4:
                self._fail(f"{len(body)}-octet message is neither IKE, ESP nor a NAT-keepalive")
            return EspFrame(body)
        return None

    def _check_usable(self) -> None:
        if self.failed is not None:
            raise LocalError(f"deframer already failed: {self.failed}")

    def _fail(self, reason: str) -> None:
        self.failed = reason
        self._buffer.clear()
        raise FramingError(reason)


def frame_ike(message: bytes) -> bytes:
    """Length | non-ESP marker | IKE message (RFC 9329 §3.1)."""
    length = LENGTH_SIZE + len(NON_ESP_MARKER) + len(message)
    if length > MAX_LENGTH:
        raise LocalError(f"IKE message of {len(message)} octets cannot be framed")
    return length.to_bytes(2, "big") + NON_ESP_MARKER + message


def frame_esp(packet: bytes) -> bytes:
    """Length | ESP packet (RFC 9329 §3.2); the SPI must not be zero."""
    if len(packet) < 4 or packet[:4] == NON_ESP_MARKER:
        raise LocalError("an ESP packet starts with a non-zero SPI")
    length = LENGTH_SIZE + len(packet)
    if length > MAX_LENGTH:
        raise LocalError(f"ESP packet of {len(packet)} octets cannot be framed")
    return length.to_bytes(2, "big") + packet
