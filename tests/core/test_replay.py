"""The ESP anti-replay window (RFC 4303 §3.4.3, Appendix A): fixed cases and a reference model.

The model is the RFC's definition, not its algorithm: a packet is new when it is right of the
highest number authenticated so far, or inside the window (within ``size`` of it) and not yet
received.  Hypothesis drives both with random sequences, 32-bit and ESN (crossing 2^32
boundaries), where only the low 32 bits reach the window.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from responder.core.errors import LocalError
from responder.core.replay import (
    DEFAULT_REPLAY_WINDOW,
    MAX_SEQ_32,
    ReplayRejection,
    ReplayWindow,
)

LOW = 1 << 32


def accept(window: ReplayWindow, seq: int) -> int | ReplayRejection:
    """check, and update when accepted (as if the ICV verified)."""
    verdict = window.check(seq)
    if isinstance(verdict, int):
        window.update(verdict)
    return verdict


def test_default_size_is_rfc4303s_64() -> None:
    assert DEFAULT_REPLAY_WINDOW == 64
    assert ReplayWindow().size == 64
    with pytest.raises(LocalError):
        ReplayWindow(0)


def test_in_order_reordered_duplicate_and_too_old() -> None:
    window = ReplayWindow(32)
    assert [accept(window, seq) for seq in (1, 2, 3)] == [1, 2, 3]
    assert accept(window, 2) is ReplayRejection.DUPLICATE
    assert accept(window, 40) == 40
    assert accept(window, 9) == 9  # 40 - 9 = 31: the window's left edge
    assert accept(window, 8) is ReplayRejection.TOO_OLD  # 40 - 8 = 32: left of it
    assert accept(window, 3) is ReplayRejection.TOO_OLD
    assert accept(window, 9) is ReplayRejection.DUPLICATE
    assert window.seen(40) and window.seen(9) and not window.seen(10)


def test_zero_is_never_accepted() -> None:
    """RFC 4303 §3.3.3: the first packet carries 1; 0 is never sent."""
    assert ReplayWindow().check(0) is ReplayRejection.TOO_OLD
    assert ReplayWindow(esn=True).check(0) is ReplayRejection.TOO_OLD


def test_check_alone_does_not_move_the_window() -> None:
    """RFC 4303 §3.4.3: the window moves only once the ICV verified (update)."""
    window = ReplayWindow()
    assert window.check(7) == 7
    assert window.check(7) == 7  # not updated: a forged 7 cannot block the real one
    assert window.top == 0 and window.bitmap == 0
    window.update(7)
    assert window.check(7) is ReplayRejection.DUPLICATE


def test_a_jump_beyond_the_window_forgets_the_old_bits() -> None:
    window = ReplayWindow(8)
    for seq in (1, 2, 3):
        accept(window, seq)
    assert accept(window, 100) == 100
    assert window.bitmap == 1
    assert accept(window, 93) == 93 and accept(window, 92) is ReplayRejection.TOO_OLD


def test_update_left_of_the_window_is_ignored() -> None:
    window = ReplayWindow(4)
    window.update(10)
    window.update(2)
    assert (window.top, window.bitmap) == (10, 1)


def test_sequence_field_is_32_bits() -> None:
    with pytest.raises(LocalError):
        ReplayWindow().check(LOW)
    with pytest.raises(LocalError):
        ReplayWindow(esn=True).check(-1)


def test_esn_case_a_infers_the_next_subspace() -> None:
    """Appendix A2.2 case A (the window inside one subspace): low numbers below it are the next one."""
    window = ReplayWindow(64, esn=True, top=LOW - 10, bitmap=1)
    assert window.check(MAX_SEQ_32 - 3) == LOW - 4  # in the current subspace, right of top
    assert accept(window, 5) == LOW + 5  # wrapped: the next subspace
    assert window.top == LOW + 5
    assert window.bitmap >> 15 & 1  # LOW - 10 is still remembered


def test_esn_case_b_infers_the_previous_subspace() -> None:
    """Appendix A2.2 case B (the window straddles 2^32): high numbers are the previous subspace."""
    window = ReplayWindow(64, esn=True)
    for full in (LOW - 20, LOW + 3):
        window.update(full)
    assert window.check((LOW - 20) & MAX_SEQ_32) is ReplayRejection.DUPLICATE
    assert window.check((LOW - 5) & MAX_SEQ_32) == LOW - 5
    assert window.check(2) == LOW + 2
    assert window.check(4) == LOW + 4
    assert window.check((LOW - 60) & MAX_SEQ_32) == LOW - 60  # 3 - 63: the left edge
    # Further left, the number is taken for one 2^32 ahead; its ICV would fail.
    assert window.check((LOW - 61) & MAX_SEQ_32) == 2 * LOW - 61


def test_esn_before_the_first_packet() -> None:
    """Nothing received: numbers just below 2^32 would belong to subspace -1, so they are refused."""
    window = ReplayWindow(64, esn=True)
    assert window.check(MAX_SEQ_32) is ReplayRejection.TOO_OLD
    assert window.check(1) == 1


def test_esn_top_of_the_space() -> None:
    window = ReplayWindow(4, esn=True, top=(1 << 64) - 1, bitmap=1)
    assert window.check(0) is ReplayRejection.TOO_OLD  # would be 2^64: does not exist


# ---------------------------------------------------------------------------
# The reference model
# ---------------------------------------------------------------------------


def model_accepts(seen: set[int], highest: int, size: int, full: int) -> bool:
    if full <= 0:
        return False
    return full > highest or (highest - full < size and full not in seen)


@given(
    size=st.sampled_from([1, 2, 32, 64, 100]),
    sequence=st.lists(st.integers(0, 400), max_size=200),
)
def test_32_bit_window_matches_the_model(size: int, sequence: list[int]) -> None:
    window = ReplayWindow(size)
    seen: set[int] = set()
    highest = 0
    for seq in sequence:
        verdict = window.check(seq)
        expected = model_accepts(seen, highest, size, seq)
        assert (verdict == seq) is expected, (seq, verdict)
        if not expected:
            assert verdict is (
                ReplayRejection.DUPLICATE if seq in seen and highest - seq < size else ReplayRejection.TOO_OLD
            )
            continue
        window.update(seq)
        seen.add(seq)
        highest = max(highest, seq)
        assert window.top == highest


@st.composite
def esn_walks(draw: st.DrawFn) -> tuple[int, int, list[tuple[int, bool]]]:
    """A window size, a starting top (often near 2^32 or 2 * 2^32) and steps (offset, forged)."""
    size = draw(st.sampled_from([1, 32, 64, 128]))
    near = draw(st.sampled_from([0, LOW, 2 * LOW]))
    start = max(1, near + draw(st.integers(-3 * size, 3 * size)))
    small = st.integers(-2 * size, 3 * size)
    big = st.integers(1 << 30, (1 << 31) - 1)
    steps = draw(st.lists(st.tuples(st.one_of(small, small, big), st.booleans()), max_size=60))
    return size, start, steps


@given(esn_walks())
def test_esn_window_matches_the_model(walk: tuple[int, int, list[tuple[int, bool]]]) -> None:
    """Only the low 32 bits reach the window; what it infers agrees with the model.

    A number the model accepts is inferred exactly.  One it refuses is either refused or
    inferred as a different number, whose ICV (over the high bits, RFC 4303 §2.2.1) fails.
    Forged packets (``forged``: the ICV fails) never move the window.
    """
    size, start, steps = walk
    window = ReplayWindow(size, esn=True, top=start, bitmap=1)
    seen = {start}
    highest = current = start
    for offset, forged in steps:
        if abs(current + offset - highest) >= 1 << 31:
            continue  # beyond what 32 bits can say (Appendix A2.2 assumes less than 2^32 - W ahead)
        current = max(1, current + offset)
        verdict = window.check(current & MAX_SEQ_32)
        expected = model_accepts(seen, highest, size, current)
        if expected:
            assert verdict == current
        else:
            assert verdict != current
        if verdict == current and not forged:
            window.update(current)
            seen.add(current)
            highest = max(highest, current)
        assert window.top == highest
        assert all(window.seen(n) for n in seen if highest - n < size)
