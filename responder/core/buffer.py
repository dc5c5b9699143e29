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

import struct
from typing import Any

from responder.core.enums import PayloadType
from responder.core.errors import DecodeError, LocalError

__all__ = ["Layout", "Reader", "Writer"]

_unpack_u16 = struct.Struct(">H").unpack_from
_unpack_u32 = struct.Struct(">I").unpack_from
_pack_u16 = struct.Struct(">H").pack
_pack_u32 = struct.Struct(">I").pack


class Layout:
    """A run of fixed-size fields, pulled at once by :meth:`Reader.pull`.

    Each field is a ``struct`` format code and the field's name for error
    reports, e.g. ``Layout(("B", "Protocol ID"), ("B", "SPI Size"), ("H", "Notify
    Message Type"))``.  Codes are read big-endian without padding; ``x`` codes
    (RESERVED octets) yield no value.  One bounds check and one
    ``struct.unpack_from`` replace a ``pull_*`` call per field, which is where a
    pure-Python decoder spends its time.  (Writing has no counterpart: each value
    must be checked on its own as ``push_*`` does, and that costs what the calls do.)
    """

    __slots__ = ("fields", "size", "unpack_from")

    def __init__(self, *fields: tuple[str, str]) -> None:
        #: ``(name, size)`` of each field, in wire order.
        self.fields = tuple((name, struct.calcsize(">" + code)) for code, name in fields)
        layout = struct.Struct(">" + "".join(code for code, _ in fields))
        self.size = layout.size
        self.unpack_from = layout.unpack_from


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

    # Each pull checks its bounds inline and builds the error only when the check
    # fails: on the hot path a helper call per field costs more than the read.

    def _short_read(self, size: int, field: str, at: int) -> DecodeError:
        """The error for a ``size``-octet ``field`` at ``at`` (relative) that does not fit."""
        left = self._end - at
        return DecodeError(
            f"{field} needs {size} octet{'s' if size != 1 else ''}, only {left} remain",
            offset=self._offset + at,
            payload_type=self.payload_type,
        )

    def _short_layout(self, layout: Layout, start: int) -> DecodeError:
        """The error pulling ``layout``'s fields one by one from ``start`` would raise."""
        at = start
        for field, size in layout.fields:
            if size > self._end - at:
                return self._short_read(size, field, at)
            at += size
        raise LocalError(f"{layout.size} octets of {layout.fields} fit; no short read to report")

    def pull_u8(self, field: str = "1-octet field") -> int:
        start = self._pos
        if start >= self._end:
            raise self._short_read(1, field, start)
        self._pos = start + 1
        return self._data[start]

    def pull_u16(self, field: str = "2-octet field") -> int:
        start = self._pos
        if self._end - start < 2:
            raise self._short_read(2, field, start)
        self._pos = start + 2
        value: int = _unpack_u16(self._data, start)[0]
        return value

    def pull_u32(self, field: str = "4-octet field") -> int:
        start = self._pos
        if self._end - start < 4:
            raise self._short_read(4, field, start)
        self._pos = start + 4
        value: int = _unpack_u32(self._data, start)[0]
        return value

    def pull_bytes(self, size: int, field: str = "field") -> bytes:
        if size < 0:
            raise LocalError(f"cannot pull {size} octets")
        start = self._pos
        if size > self._end - start:
            raise self._short_read(size, field, start)
        self._pos = start + size
        return self._data[start : start + size]

    def pull(self, layout: Layout) -> tuple[Any, ...]:
        """The values of ``layout``'s fields, read with one bounds check.

        If the fields do not all fit, raises the :class:`DecodeError` that pulling
        them one by one would raise (at the first field that does not fit) and
        consumes nothing.
        """
        start = self._pos
        if layout.size > self._end - start:
            raise self._short_layout(layout, start)
        self._pos = start + layout.size
        return layout.unpack_from(self._data, start)

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
        start = self._pos
        if size < 0:
            raise LocalError(f"cannot take a window of {size} octets")
        if size > self._end - start:
            raise self._short_read(size, field, start)
        self._pos = start + size
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

    # As on the read side, each push makes its check inline (an int, not a bool, in range)
    # and calls out only to build the error.

    @staticmethod
    def _range_error(value: object, bits: int, field: str) -> LocalError:
        return LocalError(f"{field} {value!r} does not fit in {bits} bits")

    def push_u8(self, value: int, field: str = "1-octet field") -> None:
        if not isinstance(value, int) or type(value) is bool or not 0 <= value <= 0xFF:
            raise self._range_error(value, 8, field)
        self._data.append(value)

    def push_u16(self, value: int, field: str = "2-octet field") -> None:
        if not isinstance(value, int) or type(value) is bool or not 0 <= value <= 0xFFFF:
            raise self._range_error(value, 16, field)
        self._data += _pack_u16(value)

    def push_u32(self, value: int, field: str = "4-octet field") -> None:
        if not isinstance(value, int) or type(value) is bool or not 0 <= value <= 0xFFFF_FFFF:
            raise self._range_error(value, 32, field)
        self._data += _pack_u32(value)

    def push_bytes(self, value: bytes) -> None:
        self._data += value

    def reserve_u16(self) -> int:
        """Append a zero 2-octet placeholder; return its position for :meth:`patch_u16`."""
        position = len(self._data)
        self._data += b"\x00\x00"
        return position

    def patch_u16(self, position: int, value: int, field: str = "2-octet length") -> None:
        if not isinstance(value, int) or type(value) is bool or not 0 <= value <= 0xFFFF:
            raise self._range_error(value, 16, field)
        if not 0 <= position <= len(self._data) - 2:
            raise LocalError(f"no 2-octet placeholder at {position}")
        self._data[position : position + 2] = _pack_u16(value)

    def reserve_u32(self) -> int:
        """Append a zero 4-octet placeholder; return its position for :meth:`patch_u32`."""
        position = len(self._data)
        self._data += bytes(4)
        return position

    def patch_u32(self, position: int, value: int, field: str = "4-octet length") -> None:
        if not isinstance(value, int) or type(value) is bool or not 0 <= value <= 0xFFFF_FFFF:
            raise self._range_error(value, 32, field)
        if not 0 <= position <= len(self._data) - 4:
            raise LocalError(f"no 4-octet placeholder at {position}")
        self._data[position : position + 4] = _pack_u32(value)
