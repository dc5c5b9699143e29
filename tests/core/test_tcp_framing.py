"""RFC 9329 stream framing, sans-IO.  Test names carry the requirement rows (A9, A18, ...)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from responder.core.errors import LocalError
from responder.core.tcp_framing import (
    EspFrame,
    Frame,
    FramingError,
    IkeFrame,
    StreamDeframer,
    frame_esp,
    frame_ike,
)

IKE = bytes(range(28)) + b"payloads"  # any octets: the framer does not parse IKE
ESP = bytes.fromhex("c0ffee01") + b"\x00\x00\x00\x01" + b"ciphertext"


def frames(deframer: StreamDeframer) -> list[Frame]:
    out: list[Frame] = []
    while (frame := deframer.next_frame()) is not None:
        out.append(frame)
    return out


def stream(*parts: bytes) -> bytes:
    return b"IKETCP" + b"".join(parts)


def test_a9_a16_a17_ike_and_esp_frames() -> None:
    """Rows A9, A16, A17: prefix, then Length counting itself, non-ESP marker for IKE."""
    deframer = StreamDeframer()
    deframer.feed(stream(frame_ike(IKE), frame_esp(ESP)))
    assert frames(deframer) == [IkeFrame(IKE), EspFrame(ESP)]
    assert frame_ike(IKE)[:2] == (2 + 4 + len(IKE)).to_bytes(2, "big")
    assert frame_ike(IKE)[2:6] == bytes(4)
    assert frame_esp(ESP)[:2] == (2 + len(ESP)).to_bytes(2, "big")


def test_a11_prefix_one_byte_at_a_time() -> None:
    """Row A11: nothing is parsed until all six prefix octets have arrived."""
    deframer = StreamDeframer()
    data = stream(frame_ike(IKE))
    seen: list[Frame] = []
    for position in range(len(data)):
        deframer.feed(data[position : position + 1])
        seen += frames(deframer)
        assert deframer.awaiting_prefix == (position < 5)
    assert seen == [IkeFrame(IKE)]


@pytest.mark.parametrize("prefix", [b"IKETCX", b"GET / HTTP/1.1\r\n", b"\x00\x00IKETCP", b"iketcp"])
def test_a13_a15_wrong_prefix_closes(prefix: bytes) -> None:
    """Rows A13, A15: a stream that does not begin with "IKETCP" is closed, even before six octets."""
    deframer = StreamDeframer()
    deframer.feed(prefix[:3] if prefix.startswith(b"IKE") else prefix)
    if prefix.startswith(b"IKE"):
        assert deframer.next_frame() is None
        deframer.feed(prefix[3:])
    with pytest.raises(FramingError, match="IKETCP"):
        deframer.next_frame()
    assert deframer.failed is not None


@pytest.mark.parametrize("length", [b"\x00\x00", b"\x00\x01"])
def test_a18_length_zero_or_one_closes(length: bytes) -> None:
    """Row A18: Length 0 or 1 is a fatal error; the connection must be closed."""
    deframer = StreamDeframer()
    deframer.feed(stream(frame_ike(IKE), length, frame_ike(IKE)))
    assert deframer.next_frame() == IkeFrame(IKE)
    with pytest.raises(FramingError, match="fatal"):
        deframer.next_frame()
    with pytest.raises(LocalError):
        deframer.next_frame()  # a failed deframer is not used again


def test_a18_libreswan_without_length_field_closes() -> None:
    """pluto without espintcp writes IKETCP then 4 zero octets and the message: Length 0 (interop-notes)."""
    deframer = StreamDeframer()
    deframer.feed(stream(bytes(4) + IKE))
    with pytest.raises(FramingError):
        deframer.next_frame()


def test_a19_length_two_is_ignored() -> None:
    """Row A19: empty messages (Length 2) are silently ignored."""
    deframer = StreamDeframer()
    deframer.feed(stream(b"\x00\x02", b"\x00\x02", frame_ike(IKE)))
    assert frames(deframer) == [IkeFrame(IKE)]
    assert deframer.ignored == 2


def test_a45_nat_keepalive_is_dropped() -> None:
    """Row A45: a Length-3 frame carrying 0xFF is a NAT-keepalive, dropped without error."""
    deframer = StreamDeframer()
    deframer.feed(stream(b"\x00\x03\xff", frame_esp(ESP)))
    assert frames(deframer) == [EspFrame(ESP)]
    assert deframer.ignored == 1


@pytest.mark.parametrize("body", [b"\x01", b"\x00\x00", b"\x01\x02\x03", bytes(4)])
def test_a22_bodies_that_are_neither_ike_nor_esp_close(body: bytes) -> None:
    """Row A22: an ESP SPI is never zero, so 1-3 octet bodies (not 0xFF) and a bare marker are malformed."""
    deframer = StreamDeframer()
    deframer.feed(stream((2 + len(body)).to_bytes(2, "big") + body))
    with pytest.raises(FramingError):
        deframer.next_frame()


def test_a20_a21_frame_over_the_maximum_closes() -> None:
    """Rows A20, A21: a configured maximum bounds the Length; above it the connection closes."""
    deframer = StreamDeframer(max_length=1500)
    deframer.feed(stream((1501).to_bytes(2, "big")))
    with pytest.raises(FramingError, match="maximum"):
        deframer.next_frame()
    largest = StreamDeframer()
    body = b"\x01" * (0xFFFF - 2)
    largest.feed(stream(frame_esp(body)))
    assert frames(largest) == [EspFrame(body)]


def test_buffer_limit() -> None:
    deframer = StreamDeframer(max_length=100, max_buffer=200)
    deframer.feed(b"IKETCP" + b"\x00" * 150)
    with pytest.raises(FramingError, match="buffered"):
        deframer.feed(b"\x00" * 100)


def test_a29_partial_frame_stays_pending() -> None:
    """Row A29: a partly received message is only delivered once complete (and dropped with the deframer)."""
    deframer = StreamDeframer()
    data = frame_ike(IKE)
    deframer.feed(stream(data[:-1]))
    assert deframer.next_frame() is None
    assert deframer.buffered == len(data) - 1


def test_framing_refuses_what_cannot_be_framed() -> None:
    with pytest.raises(LocalError):
        frame_esp(bytes(8))
    with pytest.raises(LocalError):
        frame_ike(b"x" * 0xFFFF)
    with pytest.raises(LocalError):
        StreamDeframer(max_length=2)


messages = st.lists(
    st.one_of(
        st.binary(min_size=1, max_size=300).map(lambda b: ("ike", b)),
        st.binary(min_size=4, max_size=300).filter(lambda b: b[:4] != bytes(4)).map(lambda b: ("esp", b)),
        st.just(("keepalive", b"")),
        st.just(("empty", b"")),
    ),
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(items=messages, cuts=st.lists(st.integers(0, 10_000), max_size=30))
def test_random_splits_deliver_the_same_frames(items: list[tuple[str, bytes]], cuts: list[int]) -> None:
    """A23: whatever the split of the stream, the same frames come out in order."""
    wire = b"IKETCP"
    expected: list[Frame] = []
    for kind, body in items:
        if kind == "ike":
            wire += frame_ike(body)
            expected.append(IkeFrame(body))
        elif kind == "esp":
            wire += frame_esp(body)
            expected.append(EspFrame(body))
        elif kind == "keepalive":
            wire += b"\x00\x03\xff"
        else:
            wire += b"\x00\x02"
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    deframer = StreamDeframer()
    seen: list[Frame] = []
    for start, end in itertools.pairwise(points):
        deframer.feed(wire[start:end])
        seen += frames(deframer)
    assert seen == expected


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_any_stream_frames_or_fails_cleanly(data: bytes) -> None:
    """Any octets: frames come out or FramingError is raised, nothing else."""
    deframer = StreamDeframer()
    try:
        deframer.feed(b"IKETCP" + data)
        frames(deframer)
    except FramingError:
        assert deframer.failed is not None
