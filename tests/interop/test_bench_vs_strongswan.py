"""``bench/vs_strongswan.py`` run tiny: both suites, a few SAs, one round per responder.

It lives under tests/interop because it needs what the interop tests need (root for the
namespaces, charon-systemd, swanctl, the kernel-libipsec plugin, TUN): without them it skips
naming the gap, and under ``IKEV2_RESPONDER_REQUIRE_INTEROP=1`` (``.ci/run``) it fails instead.
The benchmark is run as a user runs it (``python bench/vs_strongswan.py``) and its final table
is read back: every SA established on both responders, every figure a number.  CPU time
comes in clock ticks (10 ms), so a run this small may read zero for a responder: the figures
are checked for their form, not their size.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.interop.conftest import PLUGIN_DIR, STRONGSWAN_HINT
from tests.interop.require import require, require_root, require_tool
from tests.interop.strongswan import CHARON, SWANCTL

BENCH = Path(__file__).resolve().parents[2] / "bench" / "vs_strongswan.py"
BUDGET = 150.0  #: seconds for the whole tiny run (two suites, two charons and two responders each)
#: A figure; ``nan`` where a tiny run's CPU time rounded to zero ticks and was divided by.
NUMBER = r"(\d+(?:\.\d+)?|nan)"
ROW = re.compile(
    rf"^(?P<suite>psk|ecdsa-p256)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}x\s+(?P<ours>\d+)\+(?P<ss>\d+)"
    rf"\s+{NUMBER}\s+{NUMBER}x\s+{NUMBER}\s+{NUMBER}x\s+{NUMBER}$",
    re.MULTILINE,
)


@pytest.mark.interop
def test_vs_strongswan_tiny_run_establishes_everything_and_prints_both_suites() -> None:
    require_root()
    require_tool("ip", "apt-get install iproute2")
    require_tool(CHARON, STRONGSWAN_HINT)
    require_tool(SWANCTL, STRONGSWAN_HINT)
    for plugin in ("kernel-libipsec", "openssl", "vici", "kernel-netlink", "socket-default"):
        require(
            (PLUGIN_DIR / f"libstrongswan-{plugin}.so").exists(),
            f"strongSwan plugin {plugin}",
            STRONGSWAN_HINT,
        )
    require(os.path.exists("/dev/net/tun"), "/dev/net/tun (kernel-libipsec needs TUN)", "modprobe tun")
    sas, rounds = 10, 1
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            *("--suites", "psk,ecdsa-p256", "--sas", str(sas), "--concurrency", "3"),
            *("--rounds", str(rounds), "--own-count", "4", "--workers", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=BUDGET,
        cwd=BENCH.parents[1],
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = {match.group("suite"): match for match in ROW.finditer(result.stdout)}
    assert set(rows) == {"psk", "ecdsa-p256"}, output
    for suite, row in rows.items():
        # Every SA of every round came up with its Child SA at both responders.
        assert int(row.group("ours")) == int(row.group("ss")) == sas * rounds, (suite, output)
        figures = [float(value) for value in row.groups()[1:]]
        assert all(value >= 0 or math.isnan(value) for value in figures), (suite, row.group(0))
    assert len(re.findall(r"^  round 1 (strongswan|ours)\s*:\s+10/10 established", result.stdout, re.M)) == 4
