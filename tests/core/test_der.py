"""responder.core.der: the DER element reader and writer distinguished names and RFC 7427
AlgorithmIdentifiers share (X.690 §8.1, definite lengths)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from responder.core.der import DerError, der_read, der_tlv


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 70000])
def test_lengths_short_and_long_form_round_trip(size: int) -> None:
    body = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    element = der_tlv(0x04, body)
    assert element[0] == 0x04
    assert (element[1] < 0x80) is (size < 0x80)  # X.690 §8.1.3: short form below 128
    assert der_read(element + b"tail", 0) == (0x04, body, len(element))


@pytest.mark.parametrize(
    "data", [b"", b"\x30", b"\x30\x05abc", b"\x30\x80", b"\x30\x85\x00\x00\x00\x00\x01", b"\x30\x82\x01"]
)
def test_cut_or_malformed_lengths_raise(data: bytes) -> None:
    with pytest.raises(DerError):
        der_read(data, 0)


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=70))
def test_any_octets_are_read_or_refused(data: bytes, pos: int) -> None:
    """Property: never an exception other than DerError; what is read lies inside the data."""
    try:
        tag, body, end = der_read(data, pos)
    except DerError:
        return
    assert pos + 2 <= end <= len(data) and data[pos] == tag and data[end - len(body) : end] == body
