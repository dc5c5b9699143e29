"""Reader/Writer: every pull_* against its push_*, bounds and the offsets in errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from responder.core.buffer import Reader, Writer
from responder.core.enums import NotifyType, PayloadType
from responder.core.errors import DecodeError, LocalError


@pytest.mark.parametrize(
    ("push", "pull", "value", "wire"),
    [
        ("push_u8", "pull_u8", 0xAB, "ab"),
        ("push_u16", "pull_u16", 0x1234, "1234"),
        ("push_u32", "pull_u32", 0xDEADBEEF, "deadbeef"),
        ("push_u8", "pull_u8", 0, "00"),
        ("push_u16", "pull_u16", 0xFFFF, "ffff"),
        ("push_u32", "pull_u32", 0, "00000000"),
    ],
)
def test_integer_round_trip_is_big_endian(push: str, pull: str, value: int, wire: str) -> None:
    writer = Writer()
    getattr(writer, push)(value)
    assert writer.data == bytes.fromhex(wire)
    reader = Reader(bytes.fromhex(wire))
    assert getattr(reader, pull)() == value
    assert reader.at_end()


@given(st.lists(st.tuples(st.sampled_from([8, 16, 32]), st.integers(0, 2**32 - 1)), max_size=20), st.binary())
def test_mixed_sequence_round_trips(fields: list[tuple[int, int]], tail: bytes) -> None:
    writer = Writer()
    expected = []
    for bits, raw in fields:
        value = raw % (1 << bits)
        expected.append(value)
        {8: writer.push_u8, 16: writer.push_u16, 32: writer.push_u32}[bits](value)
    writer.push_bytes(tail)
    reader = Reader(writer.data)
    pulled = [{8: reader.pull_u8, 16: reader.pull_u16, 32: reader.pull_u32}[bits]() for bits, _ in fields]
    assert pulled == expected
    assert reader.pull_bytes(len(tail)) == tail
    assert reader.at_end()


def test_short_read_reports_absolute_offset_field_and_payload() -> None:
    reader = Reader(b"\x01\x02\x03", offset=100, payload_type=PayloadType.NONCE)
    assert reader.pull_u8() == 1
    with pytest.raises(DecodeError) as failure:
        reader.pull_u32("Message ID")
    error = failure.value
    assert type(error) is DecodeError
    assert error.offset == 101
    assert error.payload_type is PayloadType.NONCE
    assert error.notify is NotifyType.INVALID_SYNTAX
    assert error.reason == "Message ID needs 4 octets, only 2 remain"
    assert reader.position == 101  # a failed pull consumes nothing


def test_pull_bytes_and_rest() -> None:
    reader = Reader(b"abcdef")
    assert reader.pull_bytes(0) == b""
    assert reader.pull_bytes(2) == b"ab"
    assert reader.remaining == 4
    assert reader.pull_rest() == b"cdef"
    assert reader.pull_rest() == b""
    assert reader.at_end()
    with pytest.raises(DecodeError) as failure:
        reader.pull_bytes(1, "SPI")
    assert failure.value.offset == 6
    assert failure.value.reason == "SPI needs 1 octet, only 0 remain"


def test_sub_reader_is_bounded_and_keeps_absolute_offsets() -> None:
    reader = Reader(b"\x00\x01\x02\x03\x04\x05\x06\x07", offset=10)
    reader.pull_u8()
    sub = reader.sub_reader(3, payload_type=PayloadType.KE)
    assert reader.position == 14  # the parent skipped the window
    assert sub.position == 11
    assert sub.payload_type is PayloadType.KE
    assert sub.pull_u16() == 0x0102
    with pytest.raises(DecodeError) as failure:
        sub.pull_u16("Diffie-Hellman Group Num")  # octet 4 exists in the buffer but not in the window
    assert failure.value.offset == 13
    assert failure.value.payload_type is PayloadType.KE
    assert sub.pull_rest() == b"\x03"
    assert reader.pull_u8() == 4


def test_sub_reader_inherits_payload_type_and_checks_size() -> None:
    reader = Reader(b"\x00\x01", offset=5, payload_type=PayloadType.SA)
    assert reader.sub_reader(1).payload_type is PayloadType.SA
    with pytest.raises(DecodeError) as failure:
        reader.sub_reader(2, "proposal")
    assert failure.value.offset == 6
    assert failure.value.reason == "proposal needs 2 octets, only 1 remain"


def test_reader_error_builds_error_at_position_or_given_offset() -> None:
    reader = Reader(b"\x00\x00", offset=7, payload_type=PayloadType.TSi)
    reader.pull_u8()
    assert reader.error("x").offset == 8
    assert reader.error("x", offset=3).offset == 3
    assert reader.error("x").payload_type is PayloadType.TSi


def test_reader_refuses_non_bytes() -> None:
    with pytest.raises(LocalError):
        Reader(bytearray(b"ab"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "value"), [("push_u8", 256), ("push_u16", -1), ("push_u32", 2**32), ("push_u8", True)]
)
def test_writer_refuses_out_of_range(method: str, value: int) -> None:
    with pytest.raises(LocalError):
        getattr(Writer(), method)(value)


def test_writer_length_placeholders() -> None:
    writer = Writer()
    writer.push_u8(0xAA)
    at16 = writer.reserve_u16()
    at32 = writer.reserve_u32()
    writer.push_bytes(b"xyz")
    writer.patch_u16(at16, len(writer))
    writer.patch_u32(at32, 0x01020304)
    assert writer.data == bytes.fromhex("aa000a01020304") + b"xyz"
    assert len(writer) == 10
    with pytest.raises(LocalError):
        writer.patch_u16(9, 1)
    with pytest.raises(LocalError):
        writer.patch_u32(at32, 2**32)


def test_negative_sizes_and_bad_placeholders_are_local_errors() -> None:
    reader = Reader(b"abc")
    with pytest.raises(LocalError):
        reader.pull_bytes(-1)
    with pytest.raises(LocalError):
        reader.sub_reader(-1)
    assert reader.position == 0
    writer = Writer()
    writer.push_bytes(b"xyz")
    with pytest.raises(LocalError):
        writer.patch_u32(0, 1)  # only 3 octets written
