"""Deadlines of many things, with the earliest found without looking at all of them.

Strategy: a binary heap of ``(deadline, sequence, key)`` beside a map of each
key's current deadline.  Moving a key's deadline earlier pushes a new entry and
leaves the old one in the heap; an entry whose deadline is no longer the
key's is skipped when it reaches the top (lazy deletion).  Moving it later
pushes nothing: the old, earlier entry stands in for the key until it reaches
the top, and is pushed again then with the key's deadline of that moment.  So
every key has an entry no later than its deadline, which is all the earliest
needs; and a deadline that only moves later (an IKE SA's, from the half-open
timeout to its lifetime) costs one entry, not one per move (issue 14: about
100 octets per SA held, measured).  Setting a deadline costs O(log n), finding
the earliest O(1) amortised, and the heap is rebuilt from the map when stale
entries outnumber live ones, which keeps its size within a constant factor of
the number of keys.  Nothing here grows with the number of messages, and
nothing scans every key.  Equal deadlines come out in the order their entries
were pushed.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["Deadlines"]

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    """The current deadline of each key, and the earliest of them."""

    def __init__(self) -> None:
        self._current: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._sequence = itertools.count()  # ties broken by insertion; keys are never compared

    def __len__(self) -> int:
        return len(self._current)

    def get(self, key: K) -> float | None:
        return self._current.get(key)

    def set(self, key: K, deadline: float | None) -> None:
        """Give ``key`` a new deadline (``None``: none)."""
        if deadline is None:
            self._current.pop(key, None)
            return
        current = self._current.get(key)
        if current == deadline:
            return
        self._current[key] = deadline
        if current is not None and current < deadline:
            return  # later: the key's earlier entry stands in for it (see earliest())
        heapq.heappush(self._heap, (deadline, next(self._sequence), key))
        if len(self._heap) > 2 * len(self._current) + 64:
            self._heap = [(d, next(self._sequence), k) for k, d in self._current.items()]
            heapq.heapify(self._heap)

    def earliest(self) -> float | None:
        """The earliest deadline of any key, or ``None``."""
        heap = self._heap
        while heap:
            deadline, _, key = heap[0]
            current = self._current.get(key)
            if current == deadline:
                return deadline
            if current is not None and current > deadline:  # it moved later: its entry follows now
                heapq.heapreplace(heap, (current, next(self._sequence), key))
            else:
                heapq.heappop(heap)
        return None

    def due(self, now: float) -> list[K]:
        """The keys whose deadline is at or before ``now``, earliest first; their deadlines are cleared."""
        keys: list[K] = []
        while (deadline := self.earliest()) is not None and deadline <= now:
            _, _, key = heapq.heappop(self._heap)
            del self._current[key]
            keys.append(key)
        return keys
