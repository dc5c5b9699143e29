"""``bench/esp_wire.py`` as a user runs it, briefly: ESP through a responder process over TCP and
UDP with both backends; every line has a figure and no packet was lost or left unanswered.

The figures are a benchmark, not a timed test: here only that they are there and sane.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
ROW = re.compile(
    r"^(?P<transport>tcp|udp)\s+(?P<backend>echo|api)\s+(?P<size>\d+)\s+(?P<us>[\d.]+)\s+(?P<pps>\d+)\s+"
    r"(?P<mbit>[\d.]+)\s+(?P<aead>[\d.]+)\s+(?P<ratio>[\d.]+)x\s+(?P<wire>\d+)\s+(?P<lost>\d+)$",
    re.MULTILINE,
)


def test_smoke_both_transports_both_backends() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "esp_wire.py"), "--packets", "2000", "--sizes", "1400,64"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=BENCH.parent,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout
    rows = [m.groupdict() for m in ROW.finditer(result.stdout)]
    assert {(r["transport"], r["backend"], r["size"]) for r in rows} == {
        (transport, backend, size)
        for transport in ("tcp", "udp")
        for backend in ("echo", "api")
        for size in ("1400", "64")
    }, result.stdout
    for row in rows:
        assert 0 < float(row["aead"]) < float(row["us"]), row
        assert row["lost"] == "0", row  # TCP never loses; UDP is paced to the responder's buffer
