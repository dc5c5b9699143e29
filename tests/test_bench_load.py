"""``bench/load.py``: a fraction of a second of real load per transport, and its pure helpers.

The smoke test runs the benchmark as a user does (``python bench/load.py``), against the
CLI-started responder, with one worker and a short load per transport, and reads the figures
back from its final table.  A run whose handshakes all fail must exit non-zero and say why.
Both are bounded by a subprocess timeout (the smoke test by ``SMOKE_BUDGET``, ~20 s).
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from responder.core.path import Transport

BENCH = Path(__file__).resolve().parents[1] / "bench"
SMOKE_BUDGET = 20.0  #: seconds: the whole smoke run, responder start and three transports included
FINGERPRINT = ":".join(["AB"] * 32)

ROW = re.compile(
    r"^(?P<kind>tcp|tls|udp)\s+(?P<sas>\d+)\s+(?P<failed>\d+)\s+(?P<rate>[\d.]+)\s+(?P<p50>[\d.]+)"
    r"\s+(?P<cpu>[\d.]+)\s+(?P<c2c>[\d.]+)x\s+(?P<crypto>[\d.]+)x\s+(?P<busy>\d+)%\s+(?P<init>[\d.]+)$",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def load() -> Iterator[ModuleType]:
    """bench/load.py as a module (it imports its sibling bench/handshake.py by name, as a script does)."""
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("load")
    finally:
        sys.path.remove(str(BENCH))


def run_bench(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / "load.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=BENCH.parent,
        check=False,
    )


def test_smoke_every_transport_establishes_and_reports_its_figures() -> None:
    result = run_bench(
        "--seconds", "0.3", "--workers", "1", "--baseline-seconds", "0.05", timeout=SMOKE_BUDGET
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "core-to-core handshake:" in result.stdout and "crypto only:" in result.stdout
    assert "responder: stopped cleanly by SIGTERM (exit code 0)" in result.stdout
    rows = {match["kind"]: match for match in ROW.finditer(result.stdout)}
    assert sorted(rows) == ["tcp", "tls", "udp"], output
    for kind, row in rows.items():
        assert int(row["sas"]) > 0, kind
        assert int(row["failed"]) == 0, kind
        assert float(row["rate"]) > 0, kind
        assert float(row["p50"]) > 0, kind
        cpu = float(row["cpu"])
        # The responder did real work for each SA: about its half of the bare cryptography at least
        # (0.5, not 1: a short baseline on a busy machine can come out high).
        assert float(row["crypto"]) >= 0.5, (kind, row["crypto"])
        assert 10 < cpu < 1_000_000, (kind, cpu)
        assert float(row["c2c"]) > 0 and float(row["init"]) > 0, kind
    assert "FAILED" not in result.stdout


def test_failed_handshakes_exit_nonzero_with_reasons() -> None:
    # A timeout no handshake can meet: every cycle fails, and the run must say so.
    arguments = "--transports udp --count 2 --workers 1 --timeout 0.000001 --baseline-seconds 0.01"
    result = run_bench(*arguments.split(), timeout=SMOKE_BUDGET)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"^  FAILED 2x: ", result.stdout, re.MULTILINE), result.stdout
    assert "error: udp: 2 cycles failed" in result.stderr
    assert "error: udp: no IKE SA established" in result.stderr
    table_row = re.compile(r"^udp\s+0\s+2\s+0\.0\s+-\s", re.MULTILINE)  # no figure per SA without an SA
    assert table_row.search(result.stdout), result.stdout
    assert "responder: stopped cleanly by SIGTERM (exit code 0)" in result.stdout


def test_parse_output_waits_for_every_listener_and_the_fingerprint(load: ModuleType) -> None:
    wanted = [Transport.TCP, Transport.TLS, Transport.UDP]
    lines = [
        "listening on tcp://127.0.0.1:0 (asked)",
        "  tcp://127.0.0.1:40001",
        "udp://[::1]:40003 and later udp://127.0.0.1:9",
    ]
    assert load.parse_output(lines, wanted) is None  # no TLS listener yet
    lines.append("tls://127.0.0.1:40002")
    assert load.parse_output(lines, wanted) is None  # TLS without its fingerprint
    lines.append(f"TLS certificate SHA-256 fingerprint {FINGERPRINT}")
    bound = load.parse_output(lines, wanted)
    assert bound.listeners == {
        Transport.TCP: ("127.0.0.1", 40001),
        Transport.TLS: ("127.0.0.1", 40002),
        Transport.UDP: ("::1", 40003),
    }
    assert bound.fingerprint == FINGERPRINT
    assert load.parse_output(lines[:3], [Transport.UDP]).listeners == {Transport.UDP: ("::1", 40003)}


def test_parse_output_reads_what_the_cli_prints(load: ModuleType) -> None:
    from responder.cli import parse_invocation, render_start
    from responder.server.settings import Listener

    invocation = parse_invocation(
        ["--tcp", "127.0.0.1:0", "--tls", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--psk", "x", "--id", "@r"]
    )
    bound = [Listener(Transport.TCP, "127.0.0.1", 4501), Listener(Transport.TLS, "127.0.0.1", 4443)]
    bound.append(Listener(Transport.UDP, "127.0.0.1", 4502))
    text = render_start(bound, FINGERPRINT, invocation)
    result = load.parse_output(text.splitlines(), [Transport.TCP, Transport.TLS, Transport.UDP])
    assert result.listeners == {
        Transport.TCP: ("127.0.0.1", 4501),
        Transport.TLS: ("127.0.0.1", 4443),
        Transport.UDP: ("127.0.0.1", 4502),
    }
    assert result.fingerprint == FINGERPRINT


def test_cpu_seconds_reads_this_process(load: ModuleType) -> None:
    before = load.cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    after = load.cpu_seconds(os.getpid())
    assert 0.05 <= after - before <= 5.0
    assert after <= time.process_time() + 0.02  # same clock as the process's own CPU time


def test_suite_config_only_outside_the_cli_defaults(load: ModuleType, tmp_path: Path) -> None:
    from responder.config_file import load_config_path

    assert load.suite_config(*load.SUITES["x25519"], tmp_path) == []
    args = load.suite_config(*load.SUITES["modp2048"], tmp_path)
    assert args[0] == "--config"
    config = load_config_path(Path(args[1])).config
    assert config.ike_proposals[0].encryption == ((12, 128),)  # aes128, first
    assert config.lab_children[0].esp_proposals[0].integrity == (12,)  # sha256(-128), first


def test_count_is_shared_out_exactly(load: ModuleType) -> None:
    bound = load.Bound({Transport.TCP: ("127.0.0.1", 1)}, None)
    parser_args = load.argparse.Namespace(count=5, workers=3, childless=False, seconds=1.0, timeout=1.0)
    jobs = load.jobs_for(parser_args, Transport.TCP, bound, "ike", "esp")
    assert [job.count for job in jobs] == [2, 2, 1]
    parser_args.count = 1
    assert [job.count for job in load.jobs_for(parser_args, Transport.TCP, bound, "ike", "esp")] == [1]
