"""``bench/esp.py`` as a user runs it, briefly: every line it prints is a packet that opened and
was answered (echo) or delivered (api), with the core's time per packet beside the AEAD alone.

The figures are a benchmark, not a timed test: here only that they are there and sane.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
ROW = re.compile(
    r"^(?P<suite>\S+)\s+(?P<backend>echo|api)\s+(?P<size>\d+)\s+(?P<us>[\d.]+)\s+(?P<pps>\d+)\s+"
    r"(?P<mbit>[\d.]+)\s+(?P<aead>[\d.]+)\s+(?P<ratio>[\d.]+)x$",
    re.MULTILINE,
)


def test_smoke_two_suites_both_backends_both_sizes() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH / "esp.py"),
            "--seconds",
            "0.1",
            "--batch",
            "32",
            "--suite",
            "aes256gcm16,aes256-sha256",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BENCH.parent,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [m.groupdict() for m in ROW.finditer(result.stdout)]
    assert {(r["suite"], r["backend"], r["size"]) for r in rows} == {
        (suite, backend, size)
        for suite in ("aes256gcm16", "aes256-sha256")
        for backend in ("echo", "api")
        for size in ("1400", "64")
    }, result.stdout
    for row in rows:
        assert 0 < float(row["aead"]) < float(row["us"]), row
