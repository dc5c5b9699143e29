"""``bench/certificates.py`` as a user runs it, briefly: both certificate suites complete (the
benchmark's own checks: both ends established, the responder's peer authenticated by signature)
and print the responder's CPU per handshake beside its crypto-only cost and the ratio.

The figures are a benchmark, not a timed test: here only that they are there and sane.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
FIGURES = re.compile(
    r"^(?P<suite>ecdsa-p256|rsa2048): .*\n"
    r"  responder per handshake \(certificates\):\s+(?P<responder>[\d.]+) us.*\n"
    r"  crypto only \(responder's share\):\s+(?P<crypto>[\d.]+) us\n"
    r"  ratio responder/crypto:\s+(?P<ratio>[\d.]+)x\n"
    r"  same handshake with a shared key:\s+(?P<psk>[\d.]+) us",
    re.MULTILINE,
)


def test_smoke_both_suites() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "certificates.py"), "--seconds", "0.3"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BENCH.parent,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = {m["suite"]: m for m in FIGURES.finditer(result.stdout)}
    assert set(found) == {"ecdsa-p256", "rsa2048"}, result.stdout
    for figures in found.values():
        responder, crypto, ratio = (
            float(figures["responder"]),
            float(figures["crypto"]),
            float(figures["ratio"]),
        )
        assert 0 < crypto < responder and abs(responder / crypto - ratio) < 0.02, result.stdout
