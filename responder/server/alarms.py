"""Many tasks asleep until deadlines of their own, woken by one timer.

Each IKE SA's task waits for its own deadline (the design card's shape:
:mod:`responder.server.sa_runner`).  Sleeping in a Trio cancel scope of its
own costs a task about 1.1 KiB for as long as its SA is held: the scope, its
cancel status with two sets, an entry in Trio's deadline heap and the frames
of ``trio.sleep_forever`` (measured with tracemalloc in the responder
process, bench/scale_wire.py's UDP load, issue 14).  Here a sleeping task
parks itself with :func:`trio.lowlevel.wait_task_rescheduled` and its
deadline goes into one heap; one keeper task sleeps until the earliest
deadline and wakes the tasks whose time has come, about 0.2 KiB a task.

Strategy, as in :mod:`responder.core.deadlines`: a binary heap of
``(deadline, entry, sleeper)`` with lazy deletion.  A sleeper remembers the
entry number of its one live entry; an entry whose number is not its
sleeper's any more (the sleeper was woken early, or cancelled) is skipped
when it reaches the top, and the heap is rebuilt from its live entries when
stale ones outnumber them.  Sleeping and waking cost O(log n); nothing scans
every sleeper.  Cancellation works as for any Trio sleep: a sleeper whose
scope is cancelled gets :exc:`trio.Cancelled` and leaves the heap.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Awaitable

import attrs
import trio

__all__ = ["Alarms", "Sleeper"]

_NOT_IN_HEAP = -1


@attrs.define(eq=False, slots=True)
class Sleeper:
    """One task's place in :class:`Alarms`, reused for each of its sleeps."""

    #: The parked task, while it sleeps.
    _task: trio.lowlevel.Task | None = attrs.field(default=None, init=False, repr=False)
    #: The number of its live heap entry, or ``_NOT_IN_HEAP``.
    _entry: int = attrs.field(default=_NOT_IN_HEAP, init=False, repr=False)
    _alarms: Alarms | None = attrs.field(default=None, init=False, repr=False)
    _until: float = attrs.field(default=math.inf, init=False, repr=False)

    @property
    def sleeping(self) -> bool:
        return self._task is not None

    @property
    def until(self) -> float:
        """The deadline of the current sleep (``math.inf``: until woken; meaningless when awake)."""
        return self._until

    def _abort(self, _: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        """Trio's abort function for a sleep that is cancelled: a method rather than a closure per
        sleep (about 0.15 KiB less per sleeper)."""
        if self._alarms is not None:
            self._alarms._leave(self)
        return trio.lowlevel.Abort.SUCCEEDED


class Alarms:
    """Tasks asleep until their deadlines (:meth:`sleep_until`), and the keeper waking them (:meth:`run`)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Sleeper]] = []
        self._entries = itertools.count()
        self._live = 0  #: heap entries whose sleeper still waits for them
        self._keeper: trio.CancelScope | None = None  #: the keeper's sleep, while it sleeps
        self._keeper_deadline = math.inf

    def __len__(self) -> int:
        """Sleepers waiting for a deadline (not those asleep until woken)."""
        return self._live

    def sleep_until(self, sleeper: Sleeper, deadline: float) -> Awaitable[None]:
        """Sleep until ``deadline`` (``math.inf``: until woken), or until :meth:`wake`:
        ``await alarms.sleep_until(sleeper, deadline)``, at once, in the task that sleeps (the
        call arms the alarm for the calling task: never ``nursery.start_soon(alarms.sleep_until, ...)``).

        A checkpoint, like :func:`trio.sleep_until`: it may raise :exc:`trio.Cancelled`.  A plain
        method that arms the alarm and returns Trio's own wait, rather than a coroutine around
        it: a sleeping task then holds one coroutine frame less, about 0.2 KiB (issue 14).
        """
        if sleeper._task is not None:
            raise RuntimeError("a sleeper sleeps in one task at a time")
        if deadline <= trio.current_time():
            return trio.lowlevel.checkpoint()
        sleeper._task = trio.lowlevel.current_task()
        sleeper._alarms = self
        self._arm(sleeper, deadline)
        return trio.lowlevel.wait_task_rescheduled(sleeper._abort)

    def move(self, sleeper: Sleeper, deadline: float) -> None:
        """The current sleep of ``sleeper`` ends at ``deadline`` instead, sooner or later; it stays
        asleep until then (harmless when it does not sleep).  No wakeup just to sleep again."""
        if sleeper._task is None or deadline == sleeper._until:
            return
        self._disarm(sleeper)  # its old entry goes stale
        self._arm(sleeper, deadline)

    def wake(self, sleeper: Sleeper) -> None:
        """Wake ``sleeper`` now if it sleeps (harmless otherwise)."""
        task = sleeper._task
        if task is not None:
            self._leave(sleeper)
            trio.lowlevel.reschedule(task)

    async def run(self) -> None:
        """The keeper: wake each sleeper at its deadline, until cancelled."""
        heap = self._heap
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                _, entry, sleeper = heapq.heappop(heap)
                if sleeper._entry == entry:
                    self.wake(sleeper)
            while heap and heap[0][2]._entry != heap[0][1]:  # stale tops: the next live deadline
                heapq.heappop(heap)
            self._keeper_deadline = heap[0][0] if heap else math.inf
            with trio.CancelScope(deadline=self._keeper_deadline) as self._keeper:
                await trio.sleep_forever()
            self._keeper = None

    def _arm(self, sleeper: Sleeper, deadline: float) -> None:
        """File ``sleeper``'s deadline (none for ``math.inf``); the keeper looks again if it comes first."""
        sleeper._until = deadline
        if deadline != math.inf:
            self._push(sleeper, deadline)
            if deadline < self._keeper_deadline and self._keeper is not None:
                self._keeper.cancel()

    def _disarm(self, sleeper: Sleeper) -> None:
        """``sleeper``'s heap entry, if any, goes stale."""
        if sleeper._entry != _NOT_IN_HEAP:
            sleeper._entry = _NOT_IN_HEAP
            self._live -= 1

    def _push(self, sleeper: Sleeper, deadline: float) -> None:
        entry = next(self._entries)
        sleeper._entry = entry
        self._live += 1
        heapq.heappush(self._heap, (deadline, entry, sleeper))
        if len(self._heap) > 2 * self._live + 64:  # mostly stale: keep the heap proportional
            self._heap[:] = [item for item in self._heap if item[2]._entry == item[1]]
            heapq.heapify(self._heap)

    def _leave(self, sleeper: Sleeper) -> None:
        sleeper._task = None
        self._disarm(sleeper)
