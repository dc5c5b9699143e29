"""The garbage collector's settings for the responder's own process (``ikev2-responder``).

A program that embeds the responder keeps its own settings: only the command calls
:func:`collect_less_often`, once it is serving.
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["YOUNG_THRESHOLD", "collect_less_often"]

#: The cyclic garbage collector's generation-0 threshold while serving (CPython's default: 700).
YOUNG_THRESHOLD: Final = 10_000


def collect_less_often() -> None:
    """Make the responder process's cyclic garbage collector do less work that finds nothing.

    Two settings, for the command's own process only (a program embedding the responder keeps
    its own collector settings):

    * :func:`gc.freeze` once serving: the modules, classes and configuration built at start
      are never garbage, and leave every later full collection, which then walks only what
      the SAs and connections hold;
    * a generation-0 threshold of :data:`YOUNG_THRESHOLD` allocations instead of 700: a
      handshake allocates thousands of short-lived objects that reference counting frees,
      and the collector ran every few hundred of them, almost always finding nothing.

    Together about 5-10% less CPU per new SA over UDP (bench/scale_wire.py, issue 14: 790 ->
    700-740 us per new SA with 1,000 to 50,000 SAs held, alternating runs).  Cycles are still
    collected, only in larger batches.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
