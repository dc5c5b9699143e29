"""One shared copy of the equal, immutable values that many SAs hold.

Strategy: most IKE SAs of one endpoint negotiate the same suite and the same
traffic selectors, and each would otherwise keep its own equal copy of them
(issue 14: two suites, four selectors with their addresses and integer ranges
were about 1.1 KiB of every SA with one Child SA held, measured).  An
:class:`Interner` maps each value to the first equal one it was given, so an
SA keeps that one and its own copy is freed.  Only immutable values go in
(frozen attrs classes, tuples of them).

Some of those values come from the peer (the selectors it offered, the number of
its proposal), so the table is bounded: when it holds ``limit`` values it
starts again empty.  Values handed out before stay shared by the SAs that hold
them; a peer that sends a new value with every SA only makes the table start
again more often, never grow past ``limit``.  One endpoint owns one interner
(:attr:`responder.core.ike_sa.Services.intern`), so endpoints, and tests, share
nothing.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar, cast

__all__ = ["INTERN_LIMIT", "Interner"]

T = TypeVar("T", bound=Hashable)

#: Values an :class:`Interner` holds at most: the suites and selectors of a few thousand
#: different peers, a few hundred KiB at worst.
INTERN_LIMIT = 4096


class Interner:
    """``interner(value)`` is the first value equal to ``value`` it was given, else ``value``."""

    __slots__ = ("_table", "limit")

    def __init__(self, limit: int = INTERN_LIMIT) -> None:
        self.limit = limit
        self._table: dict[Hashable, Hashable] = {}

    def __len__(self) -> int:
        return len(self._table)

    def __call__(self, value: T) -> T:
        table = self._table
        shared = table.get(value)
        if shared is not None:
            return cast(T, shared)
        if len(table) >= self.limit:
            table.clear()  # bounded: what was handed out stays shared; the table starts again
        table[value] = value
        return value
