"""``bench/rekey.py`` as a user runs it, with small numbers: it establishes, rekeys every SA twice
and prints the memory per SA before and after each cycle with the ratio to before.

The 1,000-SA figures are a benchmark, not a timed test (they are in the closing notes and
``bench/README.md``); here a small run must complete (its own assertions check that every SA was
replaced and still holds one Child SA) and print what it promises.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
AFTER = re.compile(
    r"^after rekey cycle (?P<cycle>\d): responder holds\s+(?P<kib>[\d.]+) KiB per SA "
    r"\(x(?P<ratio>[\d.]+) of before\)",
    re.MULTILINE,
)


def test_smoke_twenty_sas_rekeyed_twice() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "rekey.py"), "--sas", "20", "--cycles", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=BENCH.parent,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"before any rekey: responder holds\s+[\d.]+ KiB per SA", result.stdout)
    cycles = {int(m["cycle"]): float(m["ratio"]) for m in AFTER.finditer(result.stdout)}
    assert set(cycles) == {1, 2}, result.stdout
    # Nothing of the replaced SAs stays: the second cycle holds what the first did.
    assert abs(cycles[2] - cycles[1]) < 0.1 and 0.5 < cycles[1] < 1.5, result.stdout
