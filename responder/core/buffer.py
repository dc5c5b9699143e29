"""Byte-level reading and writing for the IKEv2 codec.

Strategy (after aioquic's ``buffer.py``): one :class:`Reader` type with
``pull_*`` methods and one :class:`Writer` type with ``push_*`` methods, all
big-endian ("network byte order", RFC 7296 §3).  A reader is a window onto an
immutable ``bytes`` object; :meth:`Reader.sub_reader` hands out a bounded
window for a payload or substructure, so a nested decoder cannot read past its
container (RFC 7296 §3.3: lengths are checked against the container) and no
octets are copied until a field is pulled.

Every short read raises :class:`~responder.core.errors.DecodeError` at the
place it happens, with the absolute offset of the field being read (counted
from the first octet of the buffer handed to the top-level decoder) and the
payload type being decoded.  The writer's checks catch our own mistakes, so
they raise :class:`~responder.core.errors.LocalError`.
"""

from __future__ import annotations

from responder.core.enums import PayloadType
from responder.core.errors import DecodeError, LocalError

__all__ = ["Reader", "Writer"]


class Reader:
    """A bounded, forward-only view of ``data`` (aioquic's ``Buffer``, read side).

    ``offset`` is the absolute offset of ``data[0]`` in the caller's buffer, used
    only in error reports.  ``payload_type`` is the payload being decoded (``None``
    in the IKE header), also for error reports.
    """

    __slots__ = ("_data", "_end", "_offset", "_pos", "payload_type")

    def __init__(self, data: bytes, *, offset: int = 0, payload_type: PayloadType | None = None) -> None:
        if not isinstance(data, bytes):
            raise LocalError(f"Reader needs bytes, got {type(data).__name__}")
        self._data = data
        self._pos = 0
        self._end = len(data)
        self._offset = offset
        self.payload_type = payload_type

    @property
    def position(self) -> int:
        """Absolute offset of the next octet to be read."""
        return self._offset + self._pos

    @property
    def remaining(self) -> int:
        """Octets left in this window."""
        return self._end - self._pos

    def at_end(self) -> bool:
        return self._pos == self._end

    def error(self, reason: str, *, offset: int | None = None) -> DecodeError:
        """A :class:`DecodeError` at ``offset`` (default: the current position) in this payload.

        The caller raises it where its check fails: ``raise reader.error(...)``.
        """
        return DecodeError(
            reason, offset=self.position if offset is None else offset, payload_type=self.payload_type
        )

    def _take(self, size: int, field: str) -> int:
        if size > self._end - self._pos:
            raise DecodeError(
                f"{field} needs {size} octet{'s' if size != 1 else ''}, only {self._end - self._pos} remain",
                offset=self.position,
                payload_type=self.payload_type,
            )
        start = self._pos
        self._pos += size
        return start

    def pull_u8(self, field: str = "1-octet field") -> int:
        return self._data[self._take(1, field)]

    def pull_u16(self, field: str = "2-octet field") -> int:
        start = self._take(2, field)
        return int.from_bytes(self._data[start : start + 2], "big")

    def pull_u32(self, field: str = "4-octet field") -> int:
        start = self._take(4, field)
        return int.from_bytes(self._data[start : start + 4], "big")

    def pull_bytes(self, size: int, field: str = "field") -> bytes:
        if size < 0:
            raise LocalError(f"cannot pull {size} octets")
        start = self._take(size, field)
        return self._data[start : start + size]

    def pull_rest(self) -> bytes:
        """Every octet left in this window (possibly none)."""
        start = self._pos
        self._pos = self._end
        return self._data[start : self._end]

    def sub_reader(
        self, size: int, field: str = "substructure", *, payload_type: PayloadType | None = None
    ) -> Reader:
        """A reader over the next ``size`` octets, which this reader skips.

        The new reader reports errors for ``payload_type`` (default: this
        reader's).  Raises :class:`DecodeError` if fewer than ``size`` octets remain.
        """
        if size < 0:
            raise LocalError(f"cannot take a window of {size} octets")
        start = self._take(size, field)
        sub = Reader.__new__(Reader)
        sub._data = self._data  # shared, not copied: the window is [start, start + size)
        sub._pos = start
        sub._end = start + size
        sub._offset = self._offset
        sub.payload_type = self.payload_type if payload_type is None else payload_type
        return sub


class Writer:
    """An append-only buffer (aioquic's ``Buffer``, write side).

    Length fields are written as placeholders with :meth:`reserve_u16` /
    :meth:`reserve_u32` and filled in with :meth:`patch_u16` / :meth:`patch_u32`
    once what they cover has been written.
    """

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data = bytearray()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def data(self) -> bytes:
        return bytes(self._data)

    @staticmethod
    def _check(value: int, bits: int, field: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
            raise LocalError(f"{field} {value!r} does not fit in {bits} bits")

    def push_u8(self, value: int, field: str = "1-octet field") -> None:
        self._check(value, 8, field)
        self._data.append(value)

    def push_u16(self, value: int, field: str = "2-octet field") -> None:
        self._check(value, 16, field)
        self._data += value.to_bytes(2, "big")

    def push_u32(self, value: int, field: str = "4-octet field") -> None:
        self._check(value, 32, field)
        self._data += value.to_bytes(4, "big")

    def push_bytes(self, value: bytes) -> None:
        self._data += value

    def reserve_u16(self) -> int:
        """Append a zero 2-octet placeholder; return its position for :meth:`patch_u16`."""
        position = len(self._data)
        self._data += b"\x00\x00"
        return position

    def patch_u16(self, position: int, value: int, field: str = "2-octet length") -> None:
        self._check(value, 16, field)
        if not 0 <= position <= len(self._data) - 2:
            raise LocalError(f"no 2-octet placeholder at {position}")
        self._data[position : position + 2] = value.to_bytes(2, "big")

    def reserve_u32(self) -> int:
        """Append a zero 4-octet placeholder; return its position for :meth:`patch_u32`."""
        position = len(self._data)
        self._data += bytes(4)
        return position

    def patch_u32(self, position: int, value: int, field: str = "4-octet length") -> None:
        self._check(value, 32, field)
        if not 0 <= position <= len(self._data) - 4:
            raise LocalError(f"no 4-octet placeholder at {position}")
        self._data[position : position + 4] = value.to_bytes(4, "big")
