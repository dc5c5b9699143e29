"""Settings for the whole test tree.

Hypothesis: no per-example deadline.  The property tests bound their work by the number of
examples; a wall-clock deadline of 200 ms only measures how busy the machine is (two cores
shared with interop daemons in CI) and made them fail at random.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("ikev2-responder", deadline=None)
settings.load_profile("ikev2-responder")
