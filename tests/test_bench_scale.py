"""``bench/scale.py`` as a user runs it, with small numbers: it fills, measures and prints its table.

The 1,000 / 50,000 comparison itself is a benchmark, not a timed test (its figures are in the
closing notes and ``bench/README.md``); here a small run must complete, hold exactly the SAs it
says, and print one row per level with a ratio to the first.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"

ROW = re.compile(
    r"^\s+(?P<held>\d+) held:\s+(?P<us>[\d.]+) us .* ratio to 20: (?P<ratio>[\d.]+)$", re.MULTILINE
)


def test_smoke_two_levels_are_filled_measured_and_compared() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "scale.py"), "--held", "20,60", "--batches", "2", "--per-batch", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=BENCH.parent,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"filled\s+20 established IKE SAs", result.stdout)
    assert re.search(r"filled\s+60 established IKE SAs", result.stdout)
    rows = {int(m["held"]): (float(m["us"]), float(m["ratio"])) for m in ROW.finditer(result.stdout)}
    assert set(rows) == {20, 60}, result.stdout
    assert rows[20][1] == 1.0 and rows[60][1] > 0 and all(us > 0 for us, _ in rows.values())
