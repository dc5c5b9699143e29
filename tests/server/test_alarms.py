"""Alarms: many tasks asleep until their own deadlines on one timer (issue 14)."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

from responder.server.alarms import Alarms, Sleeper


async def _sleep_and_record(
    alarms: Alarms, sleeper: Sleeper, deadline: float, woke: list[tuple[str, float]], name: str
) -> None:
    await alarms.sleep_until(sleeper, deadline)
    woke.append((name, trio.current_time()))


async def _sleep(alarms: Alarms, sleeper: Sleeper, deadline: float) -> None:
    # sleep_until arms the alarm for the task that calls it: never nursery.start_soon(sleep_until)
    await alarms.sleep_until(sleeper, deadline)


async def test_each_sleeper_wakes_at_its_own_deadline(autojump_clock: trio.testing.MockClock) -> None:
    alarms = Alarms()
    woke: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(alarms.run)
        for name, at in (("c", 30.0), ("a", 10.0), ("b", 20.0)):
            nursery.start_soon(_sleep_and_record, alarms, Sleeper(), at, woke, name)
        await trio.sleep(40.0)
        assert len(alarms) == 0
        nursery.cancel_scope.cancel()
    assert woke == [("a", 10.0), ("b", 20.0), ("c", 30.0)]


async def test_a_sooner_deadline_wakes_the_keeper(autojump_clock: trio.testing.MockClock) -> None:
    """The keeper sleeps until the earliest deadline it knows: a sooner one arriving later counts."""
    alarms = Alarms()
    woke: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(alarms.run)
        nursery.start_soon(_sleep_and_record, alarms, Sleeper(), 100.0, woke, "late")
        await trio.sleep(1.0)
        nursery.start_soon(_sleep_and_record, alarms, Sleeper(), 5.0, woke, "soon")
        await trio.sleep(200.0)
        nursery.cancel_scope.cancel()
    assert woke == [("soon", 5.0), ("late", 100.0)]


async def test_wake_ends_a_sleep_early_and_its_deadline_no_longer_counts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    alarms = Alarms()
    sleeper = Sleeper()
    woke: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(alarms.run)
        nursery.start_soon(_sleep_and_record, alarms, sleeper, 50.0, woke, "first")
        await trio.sleep(3.0)
        assert sleeper.sleeping and len(alarms) == 1
        alarms.wake(sleeper)
        alarms.wake(sleeper)  # harmless: it is not asleep any more
        await trio.testing.wait_all_tasks_blocked()
        assert woke == [("first", 3.0)] and not sleeper.sleeping and len(alarms) == 0
        # The same sleeper sleeps again; the stale entry for 50 s must not wake it then.
        nursery.start_soon(_sleep_and_record, alarms, sleeper, 80.0, woke, "second")
        await trio.sleep(100.0)
        nursery.cancel_scope.cancel()
    assert woke == [("first", 3.0), ("second", 80.0)]


async def test_infinite_deadline_sleeps_until_woken(autojump_clock: trio.testing.MockClock) -> None:
    alarms = Alarms()
    sleeper = Sleeper()
    woke: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(alarms.run)
        nursery.start_soon(_sleep_and_record, alarms, sleeper, math.inf, woke, "forever")
        await trio.sleep(10_000.0)
        assert woke == [] and sleeper.sleeping and len(alarms) == 0
        alarms.wake(sleeper)
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    assert woke == [("forever", 10_000.0)]


async def test_a_past_deadline_is_a_checkpoint(autojump_clock: trio.testing.MockClock) -> None:
    alarms = Alarms()
    await trio.sleep(5.0)
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await alarms.sleep_until(Sleeper(), 1.0)
    await alarms.sleep_until(Sleeper(), 1.0)  # no keeper needed
    assert trio.current_time() == 5.0


async def test_cancelling_a_sleeper_removes_it(autojump_clock: trio.testing.MockClock) -> None:
    alarms = Alarms()
    sleeper = Sleeper()
    with trio.move_on_after(2.0):
        await alarms.sleep_until(sleeper, 60.0)
    assert trio.current_time() == 2.0
    assert not sleeper.sleeping and len(alarms) == 0


async def test_one_sleeper_sleeps_in_one_task_at_a_time(autojump_clock: trio.testing.MockClock) -> None:
    alarms = Alarms()
    sleeper = Sleeper()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_sleep, alarms, sleeper, 60.0)
        await trio.sleep(1.0)
        with pytest.raises(RuntimeError, match="one task at a time"):
            await alarms.sleep_until(sleeper, 30.0)
        nursery.cancel_scope.cancel()


async def test_the_heap_stays_proportional_to_the_sleepers(autojump_clock: trio.testing.MockClock) -> None:
    """Woken early again and again (a poke per message), a sleeper leaves stale entries; the heap
    is rebuilt so that it never holds many more than twice the live ones."""
    alarms = Alarms()
    sleepers = [Sleeper() for _ in range(100)]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(alarms.run)
        for round_ in range(50):
            for sleeper in sleepers:
                nursery.start_soon(_sleep, alarms, sleeper, 1_000.0 + round_)
            await trio.sleep(0.001)
            assert len(alarms) == 100
            assert len(alarms._heap) <= 2 * 100 + 64 + 1
            for sleeper in sleepers:
                alarms.wake(sleeper)
            await trio.sleep(0.001)
        assert len(alarms) == 0
        nursery.cancel_scope.cancel()


async def test_move_changes_a_sleep_without_waking_it(autojump_clock: trio.testing.MockClock) -> None:
    alarms = Alarms()
    sleeper, other = Sleeper(), Sleeper()
    woke: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(alarms.run)
        nursery.start_soon(_sleep_and_record, alarms, sleeper, 50.0, woke, "moved")
        nursery.start_soon(_sleep_and_record, alarms, other, 40.0, woke, "other")
        await trio.sleep(1.0)
        alarms.move(sleeper, 70.0)  # later: its entry for 50 goes stale
        assert sleeper.sleeping and sleeper.until == 70.0 and len(alarms) == 2
        alarms.move(sleeper, 10.0)  # sooner than the keeper's next deadline: the keeper looks again
        alarms.move(sleeper, 10.0)  # the same deadline: nothing to do
        assert len(alarms) == 2
        await trio.sleep(100.0)
        alarms.move(sleeper, 5.0)  # harmless when it does not sleep
        nursery.cancel_scope.cancel()
    assert woke == [("moved", 10.0), ("other", 40.0)]
