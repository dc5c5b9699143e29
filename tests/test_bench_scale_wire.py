"""``bench/scale_wire.py`` as a user runs it, at tiny levels: every scenario fills its responder
process, measures each level and prints its row and its goals (issue 14).

The figures themselves are a benchmark's (bench/README.md, the closing notes); here a small run
must finish, hold what it says, and print a parseable row per level with positive CPU figures.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"

ROW = re.compile(
    r"^(?P<kind>tcp-each|udp|tcp-shared)\s+(?P<held>\d+)\s+(?P<rss>[\d.]+)\s+(?P<new>[\d.]+)\s+"
    r"(?P<check>[\d.]+)\s+(?P<p50>[\d.]+)\s+(?P<p99>[\d.]+)\s+(?P<delete>[\d.]+)\s+(?P<close>[\d.]+|-)\s+"
    r"(?P<idle>[\d.]+)$",
    re.MULTILINE,
)


def test_smoke_every_scenario_at_two_tiny_levels() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH / "scale_wire.py"),
            *("--tcp-levels", "50,100", "--udp-levels", "50,100", "--shared-levels", "50,100"),
            *("--per-connection", "10", "--batch", "20", "--checks", "20", "--idle", "0.3"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BENCH.parent,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {(m["kind"], int(m["held"])): m for m in ROW.finditer(result.stdout)}
    assert set(rows) == {(k, n) for k in ("tcp-each", "udp", "tcp-shared") for n in (50, 100)}, result.stdout
    for (kind, _), row in rows.items():
        assert float(row["new"]) > 0 and float(row["check"]) > 0 and float(row["delete"]) > 0
        assert float(row["p99"]) >= float(row["p50"]) > 0
        assert (row["close"] == "-") == (kind == "udp")  # UDP has no connection to close
    for kind in ("tcp-each", "udp", "tcp-shared"):
        assert f"goals, {kind}" in result.stdout
    assert "CPU per new SA" in result.stdout and "check latency p99" in result.stdout
