"""``bench/hostile.py``: every attack, briefly, as a user runs it; its message builders; a responder death.

The smoke test runs the benchmark with tiny numbers (three clean handshakes per transport, attacks
of one second) and reads every line back: the baseline, one line per (attack, transport) with its
figures and the attacker's, one responder line per attack.  It asserts that the output is complete
and parseable, not that the responder withstands every attack (clean failures under attack are
figures the benchmark reports; the run fails only when the baseline fails, a responder dies or an
attacker breaks).  Each run happens in a session of its own, so that any process it leaves behind
(responder, attacker) can be found and fails the test.
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from responder.core.enums import ExchangeType, NotifyType
from responder.core.errors import DecodeError
from responder.core.messages import decode_message
from responder.core.path import Transport
from responder.core.payloads import KePayload, NoncePayload, NotifyPayload, SaPayload

BENCH = Path(__file__).resolve().parents[1] / "bench"
SMOKE_BUDGET = 40.0  #: seconds: the whole smoke run, seven fresh responders and six attackers included
ATTACKS = ("half-open-tcp", "half-open-udp", "slot-exhaustion", "stalled", "burst", "garbage")
NUMBER = r"(?:[\d.]+|-)"

LINE = re.compile(
    rf"^(?P<phase>[a-z-]+)\s+(?P<kind>tcp|tls|udp)\s+clean handshake median\s+(?P<median>{NUMBER}) ms"
    rf" p95\s+(?P<p95>{NUMBER}) ms(?: \(x(?P<ratio>{NUMBER}) of (?P<base>[\d.]+) ms without attack\))?,"
    r" (?P<failed>\d+)/(?P<total>\d+) failed(?:; attacker: (?P<attacker>.+))?$",
    re.MULTILINE,
)
RESPONDER = re.compile(
    r"^(?P<phase>[a-z-]+)\s+responder: CPU (?P<cpu>\d+)% of a core \(attacker (?P<attacker>\d+)%\),"
    rf" log (?P<bytes>\d+) B = (?P<per>{NUMBER}) B per 1,000 hostile messages \((?P<messages>\d+) messages;",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def hostile() -> Iterator[ModuleType]:
    """bench/hostile.py as a module (it imports its siblings by name, as a script does)."""
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("hostile")
    finally:
        sys.path.remove(str(BENCH))


def session_processes(session: int) -> list[str]:
    """The command lines of the processes still in ``session`` (Linux ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # state, ppid, pgrp, session, ...
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


def assert_nothing_left(session: int) -> None:
    deadline = time.monotonic() + 5.0  # multiprocessing's resource tracker exits just after its parent
    while (left := session_processes(session)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, left


def start_bench(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(BENCH / "hostile.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=BENCH.parent,
        start_new_session=True,
    )


def test_smoke_every_attack_and_transport_is_reported() -> None:
    bench = start_bench("--handshakes", "3", "--attack-seconds", "1", "--timeout", "2")
    try:
        stdout, stderr = bench.communicate(timeout=SMOKE_BUDGET)
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.wait()
    output = stdout + stderr
    assert bench.returncode == 0, output
    assert_nothing_left(bench.pid)

    lines = {(m["phase"], m["kind"]): m for m in LINE.finditer(stdout)}
    expected = {(phase, kind) for phase in ("baseline", *ATTACKS) for kind in ("tcp", "tls", "udp")}
    assert set(lines) == expected, output
    for kind in ("tcp", "tls", "udp"):
        base = lines["baseline", kind]
        assert base["failed"] == "0" and base["total"] == "3", output
        assert float(base["median"]) > 0 and float(base["p95"]) >= float(base["median"]), output
        assert base["ratio"] is None and base["attacker"] is None
    for attack in ATTACKS:
        for kind in ("tcp", "tls", "udp"):
            line = lines[attack, kind]
            assert line["total"] == "3" and 0 <= int(line["failed"]) <= 3, output
            assert line["base"] == lines["baseline", kind]["median"], output
            if int(line["failed"]) < 3:
                assert float(line["median"]) > 0 and float(line["ratio"]) > 0, output
            assert line["attacker"].strip(), output
    responder = {m["phase"]: m for m in RESPONDER.finditer(stdout)}
    assert set(responder) == set(ATTACKS), output
    for attack, line in responder.items():
        assert int(line["messages"]) > 0, (attack, output)  # the attacker did attack
        assert line["per"] != "-", (attack, output)
    assert "slot-exhaustion" in stdout and re.search(r"\d+ connections opened", stdout)
    assert re.search(r"^total [\d.]+ s$", stdout, re.MULTILINE), output


def test_a_responder_that_dies_ends_the_run_with_an_error() -> None:
    bench = start_bench(
        "--attacks", "half-open-tcp", "--handshakes", "30", "--attack-seconds", "5", "--timeout", "2"
    )
    try:
        deadline = time.monotonic() + 30.0
        responder = None
        while responder is None:  # the attack's responder, once its attacker is running beside it
            assert time.monotonic() < deadline, "no attack started"
            assert bench.poll() is None, bench.communicate()
            processes = session_processes(bench.pid)
            if any("multiprocessing" in p for p in processes):
                responder = next(int(p.split(":")[0]) for p in processes if "-m responder" in p)
            time.sleep(0.2)
        time.sleep(1.0)  # well into the attack
        os.kill(responder, signal.SIGKILL)
        stdout, stderr = bench.communicate(timeout=30.0)
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.wait()
    assert bench.returncode == 1, stdout + stderr
    assert "error: half-open-tcp: the responder died (exit code -9)" in stderr, stderr
    assert_nothing_left(bench.pid)


def test_ike_sa_init_is_valid_and_a_cookie_goes_first(hostile: ModuleType) -> None:
    settings = hostile.initiator_settings()
    request = hostile.ike_sa_init(settings, Transport.UDP, ("127.0.0.2", 5000), ("127.0.0.1", 4500))
    message = decode_message(request)
    assert message.header.exchange_type is ExchangeType.IKE_SA_INIT and message.header.is_initiator
    types = [type(payload) for payload in message.payloads]
    assert types[:3] == [SaPayload, KePayload, NoncePayload], types
    again = hostile.ike_sa_init(settings, Transport.UDP, ("127.0.0.2", 5000), ("127.0.0.1", 4500))
    assert again[:8] != request[:8]  # a fresh SPIi each time

    with_cookie = decode_message(hostile.with_cookie(request, b"\x01" * 20))
    assert with_cookie.header == message.header
    assert with_cookie.payloads[0] == NotifyPayload(NotifyType.COOKIE, b"\x01" * 20)
    assert with_cookie.payloads[1:] == message.payloads
    assert hostile.first_notify(hostile.with_cookie(request, b"\x02" * 8)) == (NotifyType.COOKIE, b"\x02" * 8)
    assert hostile.classify(request) == "SA"
    assert hostile.classify(hostile.with_cookie(request, b"c")) == "COOKIE"
    assert hostile.classify(b"short") == "short"


def test_garbage_is_never_a_valid_ike_sa_init(hostile: ModuleType) -> None:
    template = hostile.ike_sa_init(
        hostile.initiator_settings(), Transport.UDP, ("127.0.0.2", 5000), ("127.0.0.1", 4500)
    )
    rng = hostile.random.Random(3)
    undecodable = 0
    for _ in range(200):
        message = hostile.garbage(rng, template)
        assert message != template
        try:
            header = decode_message(message).header
        except DecodeError:
            undecodable += 1
            continue
        assert (
            header.major_version != 2
            or header.spi_i == bytes(8)
            or header.is_response
            or header.exchange_type is not ExchangeType.IKE_SA_INIT
            or header.spi_r != bytes(8)
        ), message.hex()
    assert undecodable > 50  # most of it does not even decode
