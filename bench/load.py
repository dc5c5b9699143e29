"""Benchmark: IKE SAs per second against the CLI-started responder, and its CPU time per SA.

Run: ``python bench/load.py [--seconds S | --count N] [--workers W] [--transports tcp,tls,udp]
[--suite x25519|modp2048] [--childless]``.

The responder is the real thing: ``python -m responder --tcp 127.0.0.1:0 --tls 127.0.0.1:0 --udp
127.0.0.1:0 --psk ... --id @responder.example --log-level warning`` in a subprocess (only the listeners
of the transports asked for), its bound ports and TLS certificate fingerprint read from what it
prints.  The load comes from ``--workers`` processes (multiprocessing, spawned), each running the
project's own Trio initiator, :func:`responder.client.establish`, in a loop: open the transport, IKE_SA_INIT
+ IKE_AUTH with PSK and (unless ``--childless``) one Child SA, as a real client would, then an
INFORMATIONAL Delete of the IKE SA, then close the connection.  Deleting keeps the responder's SA table at
a handful of entries whatever the rate, so the run measures handshakes, not a growing table.  One cycle
counts as *established* when the IKE SA came up (with its Child SA if one was asked for) and the
responder confirmed the delete; anything else is a failure, counted with its reason.  Every SA uses fresh
SPIs, nonces and key pairs (``os.urandom``), one new TCP connection or TLS session or UDP socket each.
The initiator proposes exactly the suite of bench/handshake.py (``x25519`` by default: IKE
aes256gcm16-prfsha256-x25519, ESP aes256gcm16), with its identities and PSK; the responder runs with the
CLI's default proposals (``modp2048``'s ESP aes128-sha256 is not among them, so that suite passes
``--config`` with a file naming both proposals).

Figures, per transport, all workers together:

* **established per second**: established cycles / wall clock from the moment all workers start to the
  moment the last finishes its last cycle; with the establish latency (median and 99th percentile,
  from opening the transport to the SA up, without the delete).  On a 2-core machine the workers
  and the responder share the cores, so this figure depends on the machine's load and on the
  initiator's cost as much as on the responder's;
* **responder CPU per SA**: user + system time of the responder process (``/proc/PID/stat``, read
  before and after the transport's run, with the responder otherwise idle) / established SAs.  It
  holds one SA's whole life at the responder: accepting the connection (and the TLS handshake),
  IKE_SA_INIT, IKE_AUTH with the Child SA, the Delete, the close, plus Trio's scheduling and the
  kernel's work on the responder's sockets (system time); printed split into user and system time.
  This is the robust figure: it does not depend on how fast the initiators are.  "busy" is the
  same CPU time over the wall clock (100% = one core, all the responder can use: it is one Python
  thread); well under 100% means the initiators, not the responder, set the rate;
* **initiator CPU per SA**: the workers' own CPU time per SA (``time.process_time``), for scale.

Baselines measured in the same run, in this process, before the responder starts (bench/handshake.py's
:class:`Bench` and :func:`crypto_only` for the same suite, timed by its :func:`per_call`):

* **core-to-core**: one whole handshake between two cores in memory, no I/O, one Child SA;
* **crypto only**: the cryptography of that handshake alone.

Each is printed as :func:`per_call`'s median wall time (what bench/handshake.py prints) and as the mean
CPU time per call over the same calls; the ratios use the CPU time, like the responder's figure, since
CPU time moves less than wall time when other processes compete for the cores.  Both baselines count
*both* ends' work (two key pairs, two exchanges, SKEYSEED and keys twice, four AUTH computations, each
message encrypted once and decrypted once), so the ratios compare the responder with **half** of each,
as the estimate of one side: ``responder CPU per SA / (core-to-core / 2)`` is the price of the real
server around the core (sockets, framing, TLS, Trio, the Delete exchange, the CLI's default proposals to
choose from), ``/ (crypto-only / 2)`` the price of everything that is not cryptography at the
responder.  Half is a fair estimate: the two ends do the same cryptography, and timing each end's calls
inside ``Bench.handshake`` (once, by hand, for x25519) put the responder at 51% of the whole.
``--childless`` drops the Child SA from the load only; the baselines keep theirs.

The benchmark exits non-zero when the responder fails to start, dies, or does not exit cleanly (code 0)
on SIGTERM at the end, and when any cycle fails; the reasons are printed.
"""

from __future__ import annotations

import argparse
import collections
import math
import multiprocessing
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import IO

import attrs
import trio
from handshake import PSK, RESPONDER_ID, SUITES, Bench, check, crypto_only, per_call  # bench/ is sys.path[0]

from responder.client import FingerprintMismatch, establish
from responder.core.config import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    Config,
    EspProposal,
    Identity,
    IkeProposal,
    TrustStore,
)
from responder.core.initiator import InitiatorSettings
from responder.core.path import Transport
from responder.pem_files import load_certificates, load_credential

PSK_TEXT = "benchmark shared key"  #: the text of bench/handshake.py's PSK, as the CLI's --psk takes it
RESPONDER_ID_TEXT = "@responder.example"  #: bench/handshake.py's responder ID, as the CLI's --id takes it
assert PSK.value == PSK_TEXT.encode()
assert Identity.parse(RESPONDER_ID_TEXT) == RESPONDER_ID
HOST = "127.0.0.1"
START_TIMEOUT = 30.0  #: seconds for the responder to print its listeners, and for workers to start
STOP_TIMEOUT = 15.0  #: seconds for the responder to exit after SIGTERM (its shutdown_timeout is 5 s)
SETTLE = 0.2  #: seconds left for the responder to finish the last closes before its CPU is read

LISTENER = re.compile(r"\b(tcp|tls|udp)://(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):(\d{1,5})\b")
FINGERPRINT = re.compile(r"\b(?:[0-9A-F]{2}:){31}[0-9A-F]{2}\b")


# ---------------------------------------------------------------------------
# The responder process
# ---------------------------------------------------------------------------


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` so far, from ``/proc/PID/stat`` (Linux).

    Counted in clock ticks (``SC_CLK_TCK``, usually 100 a second): a run needs a few seconds for
    the per-SA figure to be good to a percent.
    """
    data = Path(f"/proc/{pid}/stat").read_text()
    fields = data[data.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 (state) is fields[0]
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick  # fields 14 utime, 15 stime


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    return sum(cpu_times(pid))


@attrs.frozen
class Bound:
    """What the responder printed: its listeners with their bound ports, the TLS fingerprint."""

    listeners: dict[Transport, tuple[str, int]]
    fingerprint: str | None


def parse_output(lines: Sequence[str], wanted: Sequence[Transport]) -> Bound | None:
    """The bound listeners once ``lines`` name one of each ``wanted`` kind (and the fingerprint for TLS).

    ``None`` while something is still missing.  A port 0 never counts (that is the request, not
    the answer); the first bound address of each kind wins.
    """
    listeners: dict[Transport, tuple[str, int]] = {}
    fingerprint = None
    for line in lines:
        for kind, host, port in LISTENER.findall(line):
            transport = Transport(kind)
            if int(port) != 0 and transport not in listeners:
                listeners[transport] = (host.strip("[]"), int(port))
        if fingerprint is None and (match := FINGERPRINT.search(line)):
            fingerprint = match.group()
    if any(kind not in listeners for kind in wanted):
        return None
    if Transport.TLS in wanted and fingerprint is None:
        return None
    return Bound({kind: listeners[kind] for kind in wanted}, fingerprint)


def in_defaults(ike: str, esp: str) -> bool:
    """Whether the CLI's default proposals accept the one-proposal suite ``ike``/``esp``."""
    wanted_ike, wanted_esp = IkeProposal.parse(ike), EspProposal.parse(esp)

    def covered(one: IkeProposal | EspProposal, defaults: Sequence[IkeProposal | EspProposal]) -> bool:
        fields = [f.name for f in attrs.fields(type(one))]  # every field is a tuple of choices
        return any(all(set(getattr(one, f)) <= set(getattr(d, f)) for f in fields) for d in defaults)

    return covered(wanted_ike, DEFAULT_IKE_PROPOSALS) and covered(wanted_esp, DEFAULT_ESP_PROPOSALS)


@attrs.define(eq=False)
class Responder:
    """``python -m responder`` in a subprocess; its outputs read by threads so it never blocks.

    With ``log`` (a file opened for binary writing, bench/hostile.py) its log (stderr) goes
    there instead, so that its size can be measured; :meth:`stop` closes it.
    """

    process: subprocess.Popen[str]
    command: list[str]
    log: IO[bytes] | None = None
    stdout: list[str] = attrs.Factory(list)
    stderr: collections.deque[str] = attrs.Factory(lambda: collections.deque(maxlen=200))
    stderr_lines: int = 0
    _changed: threading.Condition = attrs.Factory(threading.Condition)

    @classmethod
    def start(
        cls,
        wanted: Sequence[Transport],
        extra: Sequence[str] = (),
        *,
        log_level: str = "warning",
        log: IO[bytes] | None = None,
        interpreter: Sequence[str] = (),
    ) -> Responder:
        """``interpreter``: arguments of Python's before ``-m responder`` (bench/scale_wire.py's
        ``-m cProfile -o FILE``)."""
        command = [sys.executable, *interpreter, "-m", "responder"]
        for kind in wanted:
            command += [f"--{kind.value}", f"{HOST}:0"]
        command += ["--psk", PSK_TEXT, "--id", RESPONDER_ID_TEXT, "--log-level", log_level, *extra]
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if log is None else log,
            text=True,
            errors="replace",
        )
        responder = cls(process, command, log)
        streams = [(process.stdout, responder._out)]
        if log is None:
            streams.append((process.stderr, responder._err))
        for stream, sink in streams:
            threading.Thread(target=responder._read, args=(stream, sink), daemon=True).start()
        return responder

    def _read(self, stream: IO[str], sink: Callable[[str], None]) -> None:
        for line in stream:
            with self._changed:
                sink(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _out(self, line: str) -> None:
        self.stdout.append(line)

    def _err(self, line: str) -> None:
        self.stderr.append(line)
        self.stderr_lines += 1

    def wait_bound(self, wanted: Sequence[Transport], timeout: float) -> Bound:
        """Wait until the responder has printed every listener asked for; raise if it dies first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                logged = self.log_tail(200).splitlines() if self.log is not None else self.stderr
                bound = parse_output([*self.stdout, *logged], wanted)
                if bound is not None:
                    return bound
                if self.process.poll() is not None:
                    raise RuntimeError(f"the responder exited with code {self.process.returncode}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"the responder printed no listeners within {timeout:g}s")
                self._changed.wait(min(left, 0.2))

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_bytes(self) -> int:
        """Octets the responder has logged so far into ``log``."""
        assert self.log is not None
        return os.fstat(self.log.fileno()).st_size

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of ``log``."""
        assert self.log is not None
        size = self.log_bytes()
        data = os.pread(self.log.fileno(), min(size, 64 * 1024), max(0, size - 64 * 1024))
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then its exit code; ``None`` if it had to be killed after ``timeout`` seconds."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return None
        finally:
            if self.log is not None:
                self.log.close()

    def tail(self, lines: int = 20) -> str:
        if self.log is not None:
            return self.log_tail(lines)
        with self._changed:
            return "\n".join([*self.stdout[-lines:], *list(self.stderr)[-lines:]])


def suite_config(ike: str, esp: str, directory: Path) -> list[str]:
    """``--config FILE`` arguments for a suite outside the CLI's defaults (empty when inside them)."""
    if in_defaults(ike, esp):
        return []
    path = directory / "load-suite.toml"
    path.write_text(
        f'[responder]\nproposals = ["{ike}", "default"]\n\n'
        f'[lab]\nany_id_psk = "{PSK_TEXT}"\n\n'
        f'[lab.children.bench]\nesp_proposals = ["{esp}", "default"]\n'
    )
    return ["--config", str(path)]


# ---------------------------------------------------------------------------
# The workers
# ---------------------------------------------------------------------------


@attrs.frozen
class Certificates:
    """A worker's certificate authentication: PEM files and the two IDs as the CLI writes them."""

    cert: str  #: our chain, leaf first
    key: str  #: its private key
    ca: str  #: the CA the responder's certificate must lead to
    local_id: str  #: our IDi, bound to our certificate
    remote_id: str  #: the responder's IDr


@attrs.frozen
class Job:
    """What one worker does: cycles against one listener for ``seconds``, or ``count`` cycles.

    With ``certificates`` the worker signs its AUTH with a certificate and checks the
    responder's signature instead of using the PSK (bench/vs_strongswan.py's ECDSA suite).
    """

    transport: Transport
    host: str
    port: int
    fingerprint: str | None
    ike: str
    esp: str
    child: bool
    seconds: float
    count: int | None
    timeout: float
    certificates: Certificates | None = None


@attrs.frozen
class WorkerResult:
    """What one worker measured (times from ``time.monotonic``, the same clock in every process)."""

    established: int
    failures: dict[str, int]
    latencies: tuple[float, ...]
    start: float
    end: float
    cpu: float
    error: str | None = None


async def cycle(job: Job, settings: InitiatorSettings, config: Config) -> float | str:
    """One establish -> delete -> close; the establish latency in seconds, or why it failed."""
    start = time.perf_counter()
    try:
        client = await establish(
            settings,
            config,
            job.transport,
            job.host,
            job.port,
            tls_fingerprint=job.fingerprint,
            timeout=job.timeout,
        )
    except (OSError, trio.TooSlowError, trio.BrokenResourceError, FingerprintMismatch) as error:
        if isinstance(error, trio.TooSlowError):
            return f"transport: not open within {job.timeout:g}s"
        return f"transport: {type(error).__name__}: {error}"
    async with client:
        if not client.established:
            return f"not established: {client.reason}"
        latency = time.perf_counter() - start
        if job.child and len(client.child_sas) != 1:
            return f"IKE SA without its Child SA: {len(client.child_sas)} Child SAs"
        if not await client.delete(job.timeout):
            return f"delete: {client.reason}"
    return latency


async def run_job(job: Job) -> WorkerResult:
    settings = Bench(job.ike, job.esp, seed=1).settings  # bench/handshake.py's initiator: IDs, PSK, Child SA
    if not job.child:
        settings = attrs.evolve(settings, child=None)
    if job.certificates is not None:
        files = job.certificates
        settings = attrs.evolve(
            settings,
            local_id=Identity.parse(files.local_id),
            psk=None,
            remote_id=Identity.parse(files.remote_id),
            credential=load_credential(Path(files.cert), Path(files.key)),
            trust=TrustStore(anchors=load_certificates(Path(files.ca))),
        )
    config = Config()
    failures: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    cpu = time.process_time()
    start = time.monotonic()
    deadline = start + job.seconds
    done = 0
    while (done < job.count) if job.count is not None else (time.monotonic() < deadline):
        done += 1
        outcome = await cycle(job, settings, config)
        if isinstance(outcome, str):
            failures[outcome] += 1
        else:
            latencies.append(outcome)
    end = time.monotonic()
    return WorkerResult(
        len(latencies), dict(failures), tuple(latencies), start, end, time.process_time() - cpu
    )


def worker(job: Job, barrier: Barrier, results: multiprocessing.Queue[WorkerResult]) -> None:
    """A worker process: wait for the others, run ``job``, report (errors too, so the parent never waits)."""
    barrier.wait(START_TIMEOUT)
    now = time.monotonic()
    try:
        result = trio.run(run_job, job)
    except Exception as error:
        result = WorkerResult(0, {}, (), now, time.monotonic(), 0.0, f"{type(error).__name__}: {error}")
    results.put(result)


# ---------------------------------------------------------------------------
# One transport
# ---------------------------------------------------------------------------


@attrs.frozen
class Run:
    """One transport's figures, all workers together."""

    transport: Transport
    workers: int
    established: int
    failures: dict[str, int]
    wall: float
    responder_user: float
    responder_system: float
    initiator_cpu: float
    latencies: tuple[float, ...]

    @property
    def responder_cpu(self) -> float:
        return self.responder_user + self.responder_system

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def rate(self) -> float:
        return self.established / self.wall if self.wall > 0 else 0.0

    @property
    def cpu_per_sa(self) -> float:
        return self.responder_cpu / self.established if self.established else math.nan

    @property
    def initiator_cpu_per_sa(self) -> float:
        return self.initiator_cpu / self.established if self.established else math.nan

    @property
    def busy(self) -> float:
        """The responder's CPU time over the wall clock: 1.0 is one core."""
        return self.responder_cpu / self.wall if self.wall > 0 else 0.0

    def latency(self, fraction: float) -> float:
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_transport(responder: Responder, jobs: Sequence[Job]) -> Run:
    """One process per job, started together; the responder's CPU read around them."""
    workers = len(jobs)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers + 1)
    results: multiprocessing.Queue[WorkerResult] = context.Queue()
    processes = [context.Process(target=worker, args=(job, barrier, results), daemon=True) for job in jobs]
    for process in processes:
        process.start()
    try:
        before = cpu_times(responder.pid)
        try:
            barrier.wait(START_TIMEOUT)  # every worker imported and ready: go
        except threading.BrokenBarrierError:
            raise RuntimeError(f"the workers were not ready within {START_TIMEOUT:g}s") from None
        collected: list[WorkerResult] = []
        while len(collected) < workers:
            try:
                collected.append(results.get(timeout=1.0))
            except queue.Empty:
                if all(p.exitcode is not None for p in processes) and results.empty():
                    codes = [p.exitcode for p in processes]
                    raise RuntimeError(
                        f"{workers - len(collected)} workers died (exit codes {codes})"
                    ) from None
        time.sleep(SETTLE)
        after = cpu_times(responder.pid)
    finally:
        for process in processes:
            process.join(5.0)
            if process.is_alive():
                process.kill()
    failures: collections.Counter[str] = collections.Counter()
    for result in collected:
        failures.update(result.failures)
        if result.error is not None:
            failures[f"worker crashed: {result.error}"] += 1
    return Run(
        jobs[0].transport,
        workers,
        sum(r.established for r in collected),
        dict(failures),
        max(r.end for r in collected) - min(r.start for r in collected),
        after[0] - before[0],
        after[1] - before[1],
        sum(r.cpu for r in collected),
        tuple(latency for r in collected for latency in r.latencies),
    )


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


@attrs.frozen
class Baseline:
    """bench/handshake.py's figures for the suite, both ends of a handshake, in seconds.

    ``*_wall`` is :func:`per_call`'s median wall time, as bench/handshake.py prints it; ``*_cpu``
    the mean CPU time per call over the same calls, which is what the ratios use: the responder's
    figure is CPU time too, and CPU time moves less than wall time when other processes compete.
    """

    handshake_wall: float
    handshake_cpu: float
    crypto_wall: float
    crypto_cpu: float


def describe(run: Run, baseline: Baseline) -> list[str]:
    """The transport's paragraph: rate and latency, responder CPU and its ratios, failures."""
    lines = [
        f"  established: {run.established} IKE SAs in {run.wall:.2f} s = {run.rate:.1f}/s;"
        f" failures {run.failed}"
    ]
    if run.established:
        side, crypto_side = baseline.handshake_cpu / 2, baseline.crypto_cpu / 2
        lines += [
            f"  establish latency: p50 {run.latency(0.5) * 1e3:.1f} ms, p99 {run.latency(0.99) * 1e3:.1f} ms",
            f"  responder CPU: {run.responder_cpu:.2f} s = {run.cpu_per_sa * 1e6:.1f} us per SA"
            f" (user {run.responder_user:.2f} s + system {run.responder_system:.2f} s, busy {run.busy:.0%}"
            f" of a core); {run.cpu_per_sa / side:.2f}x core-to-core per side,"
            f" {run.cpu_per_sa / crypto_side:.2f}x crypto per side",
            f"  initiator CPU: {run.initiator_cpu_per_sa * 1e6:.1f} us per SA (all workers)",
        ]
    for reason, count in sorted(run.failures.items(), key=lambda item: -item[1]):
        lines.append(f"  FAILED {count}x: {reason}")
    return lines


TABLE_HEADER = (
    f"{'transport':<9} {'SAs':>7} {'failed':>6} {'SAs/s':>8} {'p50 ms':>7} {'resp us/SA':>10}"
    f" {'x c2c/2':>8} {'x crypto/2':>10} {'resp busy':>9} {'init us/SA':>10}"
)


def table_row(run: Run, baseline: Baseline) -> str:
    """One line of the final table; ``-`` where a figure per SA has no SA to divide by."""
    head = f"{run.transport.value:<9} {run.established:>7} {run.failed:>6} {run.rate:>8.1f}"
    if not run.established:
        return head + f" {'-':>7} {'-':>10} {'-':>8} {'-':>10} {run.busy:>9.0%} {'-':>10}"
    side, crypto_side = baseline.handshake_cpu / 2, baseline.crypto_cpu / 2
    return (
        head + f" {run.latency(0.5) * 1e3:>7.1f} {run.cpu_per_sa * 1e6:>10.1f}"
        f" {run.cpu_per_sa / side:>7.2f}x {run.cpu_per_sa / crypto_side:>9.2f}x"
        f" {run.busy:>9.0%} {run.initiator_cpu_per_sa * 1e6:>10.1f}"
    )


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def transports(text: str) -> list[Transport]:
    try:
        kinds = [Transport(part.strip().lower()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a list of tcp, tls, udp") from None
    if not kinds or len(set(kinds)) != len(kinds):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a list of tcp, tls, udp without repeats")
    return kinds


def positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def timed(function: Callable[[], object], seconds: float) -> tuple[float, float]:
    """:func:`per_call`'s median wall time per call, and the mean CPU time per call of the same calls."""
    calls = 0

    def counted() -> object:
        nonlocal calls
        calls += 1
        return function()

    cpu = time.process_time()
    wall = per_call(counted, seconds)
    return wall, (time.process_time() - cpu) / calls


def measure_baseline(ike: str, esp: str, seconds: float) -> Baseline:
    """bench/handshake.py's core-to-core handshake and crypto-only cost for the suite, both checked first."""
    bench = Bench(ike, esp, seed=1)
    sample = bench.handshake()
    check(sample)
    crypto = crypto_only(sample, 1)
    crypto()
    return Baseline(*timed(bench.handshake, seconds), *timed(crypto, seconds))


def jobs_for(args: argparse.Namespace, kind: Transport, bound: Bound, ike: str, esp: str) -> list[Job]:
    """One job per worker; ``--count`` shared out exactly."""
    host, port = bound.listeners[kind]
    job = Job(
        kind, host, port, bound.fingerprint, ike, esp, not args.childless, args.seconds, None, args.timeout
    )
    if args.count is None:
        return [job] * args.workers
    share, extra = divmod(args.count, args.workers)
    return [attrs.evolve(job, count=share + (i < extra)) for i in range(args.workers) if share + (i < extra)]


def load(
    args: argparse.Namespace, kinds: Sequence[Transport], ike: str, esp: str, baseline: Baseline
) -> tuple[list[Run], list[str]]:
    """Start the responder, load it over each transport in turn, stop it: the runs and what went wrong."""
    runs: list[Run] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as directory:
        responder = Responder.start(kinds, suite_config(ike, esp, Path(directory)))
        try:
            bound = responder.wait_bound(kinds, START_TIMEOUT)
            where = " ".join(
                f"{kind.value}://{host}:{port}" for kind, (host, port) in bound.listeners.items()
            )
            print(f"responder: python -m responder (pid {responder.pid}) on {where}")
            for kind in kinds:
                if not responder.alive():
                    break
                jobs = jobs_for(args, kind, bound, ike, esp)
                what = f"{args.count} cycles" if args.count is not None else f"{args.seconds:g} s"
                print(f"{kind.value}: {len(jobs)} worker{'s' if len(jobs) > 1 else ''}, {what}")
                run = run_transport(responder, jobs)
                runs.append(run)
                for line in describe(run, baseline):
                    print(line, flush=True)
                if run.failed:
                    problems.append(f"{kind.value}: {run.failed} cycles failed")
                if run.established == 0:
                    problems.append(f"{kind.value}: no IKE SA established")
        except RuntimeError as error:
            problems.append(str(error))
        finally:
            died = not responder.alive()
            code = responder.stop()
    if died:
        problems.append(f"the responder died (exit code {code})")
    elif code is None:
        problems.append(f"the responder did not exit within {STOP_TIMEOUT:g}s of SIGTERM (killed)")
    elif code != 0:
        problems.append(f"the responder exited with code {code} after SIGTERM")
    else:
        print("responder: stopped cleanly by SIGTERM (exit code 0)")
    if problems:
        sys.stdout.flush()
        print("responder output (tail):\n" + responder.tail(), file=sys.stderr)
    elif responder.stderr_lines:
        print(f"responder: {responder.stderr_lines} lines on stderr at log level warning; the last ones:")
        for line in list(responder.stderr)[-5:]:
            print(f"  | {line}")
    return runs, problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--seconds", type=positive(float), default=10.0, help="load per transport (default 10)"
    )
    parser.add_argument("--count", type=positive(int), help="cycles per transport instead of --seconds")
    parser.add_argument("--workers", type=positive(int), default=2, help="initiator processes (default 2)")
    parser.add_argument("--transports", type=transports, default="tcp,tls,udp", help="default tcp,tls,udp")
    parser.add_argument("--suite", choices=list(SUITES), default="x25519", help="bench/handshake.py's suites")
    parser.add_argument("--childless", action="store_true", help="IKE SAs without a Child SA (RFC 6023)")
    parser.add_argument("--timeout", type=positive(float), default=10.0, help="seconds per establish/delete")
    parser.add_argument("--baseline-seconds", type=positive(float), default=1.0, help="per baseline figure")
    args = parser.parse_args(argv)
    kinds: list[Transport] = args.transports
    ike, esp = SUITES[args.suite]

    print(
        f"suite {args.suite}: IKE {ike}, ESP {esp};",
        "no Child SA" if args.childless else "one Child SA",
        "per IKE SA; each IKE SA deleted, then its transport closed",
    )
    baseline = measure_baseline(ike, esp, args.baseline_seconds)
    print("baseline (this process, both ends of one handshake, bench/handshake.py; median wall, mean CPU):")
    for name, wall, cpu in (
        ("core-to-core handshake:", baseline.handshake_wall, baseline.handshake_cpu),
        ("crypto only:           ", baseline.crypto_wall, baseline.crypto_cpu),
    ):
        half = cpu / 2 * 1e6
        print(
            f"  {name} {wall * 1e6:8.1f} us wall, {cpu * 1e6:8.1f} us CPU;  per side (half): {half:8.1f} us"
        )
    runs, problems = load(args, kinds, ike, esp, baseline)
    print()
    print(TABLE_HEADER)
    for run in runs:
        print(table_row(run, baseline))
    print(
        "(x c2c/2, x crypto/2: the responder's CPU per SA over half the CPU time of a core-to-core"
        f" handshake ({baseline.handshake_cpu * 1e6:.1f} us) and of its crypto"
        f" ({baseline.crypto_cpu * 1e6:.1f} us), each of which counts both ends)"
    )
    if problems:
        sys.stdout.flush()
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
