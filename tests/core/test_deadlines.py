"""The deadline heap: the earliest of many deadlines without scanning them, checked against a plain dict."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from responder.core.deadlines import Deadlines


def test_set_replace_clear_and_due() -> None:
    deadlines: Deadlines[str] = Deadlines()
    assert deadlines.earliest() is None and deadlines.due(100.0) == []
    deadlines.set("a", 5.0)
    deadlines.set("b", 3.0)
    deadlines.set("a", 1.0)  # moved earlier
    deadlines.set("b", None)  # cleared
    deadlines.set("c", 1.0)
    assert deadlines.earliest() == 1.0 and len(deadlines) == 2
    assert deadlines.due(0.5) == []
    assert deadlines.due(1.0) == ["a", "c"]  # ties in the order they were set
    assert deadlines.earliest() is None and deadlines.get("a") is None


def test_stale_entries_are_dropped_so_the_heap_stays_small() -> None:
    """Re-setting one key many times (a busy SA) does not make the heap grow without bound."""
    deadlines: Deadlines[int] = Deadlines()
    for step in range(10_000):
        deadlines.set(7, float(step))
    assert len(deadlines._heap) <= 2 * len(deadlines) + 65
    assert deadlines.earliest() == 9_999.0


def test_a_deadline_moved_later_keeps_its_one_entry() -> None:
    """An SA's deadline moves later all its life (half-open timeout, then lifetimes): the entry it
    has stands in for it and follows it when it comes to the top, so it never costs a second."""
    deadlines: Deadlines[str] = Deadlines()
    deadlines.set("sa", 1.0)
    for step in range(2, 100):
        deadlines.set("sa", float(step))
    assert len(deadlines._heap) == 1 and deadlines.earliest() == 99.0 and len(deadlines._heap) == 1
    assert deadlines.due(98.0) == [] and deadlines.due(99.0) == ["sa"]


def test_equal_deadlines_come_out_in_the_order_their_entries_were_pushed() -> None:
    deadlines: Deadlines[str] = Deadlines()
    deadlines.set("a", 1.0)
    deadlines.set("b", 5.0)
    deadlines.set("a", 5.0)  # later: "a" is pushed again only when its entry at 1.0 comes up
    assert deadlines.due(5.0) == ["b", "a"]


operations = st.lists(
    st.tuples(
        st.sampled_from(["set", "clear", "due"]),
        st.integers(0, 5),
        st.integers(0, 50).map(float),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_behaves_like_a_dict_of_deadlines(ops: list[tuple[str, int, float]]) -> None:
    deadlines: Deadlines[int] = Deadlines()
    model: dict[int, float] = {}
    for op, key, value in ops:
        if op == "set":
            deadlines.set(key, value)
            model[key] = value
        elif op == "clear":
            deadlines.set(key, None)
            model.pop(key, None)
        else:
            due = deadlines.due(value)
            assert sorted(due) == sorted(k for k, d in model.items() if d <= value)
            times = [model[k] for k in due]
            assert times == sorted(times)  # earliest first
            for key_due in due:
                del model[key_due]
        assert deadlines.earliest() == min(model.values(), default=None)
        assert len(deadlines) == len(model)
