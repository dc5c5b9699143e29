"""Benchmark: the running responder process at scale (issue 14): memory and CPU per IKE SA held.

Run: ``python bench/scale_wire.py [--tcp-levels 1000,10000,19000] [--udp-levels 1000,50000]
[--shared-levels 1000,50000] [--per-connection 100] [--batch 400] [--checks 2000] [--rounds 5] [--idle 3]
[--workers 2]``.

Three scenarios, each against its own ``python -m responder`` (the CLI, as bench/load.py starts
it, with a ``[responder.limits]`` file that raises ``ike_sa_max``, ``connections_max``,
``connections_per_source``, the ``half_open_*`` limits and ``cookie_threshold`` to fit the levels):

* ``tcp-each``: RFC 9329 TCP, a connection per IKE SA (19,000 at most: a process may hold
  20,000 open files here, and the responder holds one per connection);
* ``udp``: IKE over UDP (port 4500 rules: the non-ESP marker), every SA of a worker on one socket;
* ``tcp-shared``: TCP with ``--per-connection`` IKE SAs on each connection (RFC 9329 §6.1 lets
  an initiator carry several IKE SAs on one connection).

The load comes from ``--workers`` spawned processes, each driving many IKE SAs with the project's
own sans-IO core as initiator (:class:`~responder.core.endpoint.Endpoint`) over raw sockets with
one ``selectors`` loop: one UDP socket per worker, or one TCP socket per connection, bound to
loopback sources 127.0.0.2 and up (``IP_BIND_ADDRESS_NO_PORT``, so that ephemeral ports are
counted per source).  Each handshake costs the initiator one handshake's cryptography (x25519,
AES-GCM, PSK, one Child SA: bench/handshake.py's suite), and up to ``--window`` handshakes per
worker are in flight, so the responder is the slow side.  Each scenario fills its responder level
by level; at each level, with everything held:

* **RSS per SA**: the growth of the responder's ``VmRSS`` (``/proc/PID/status``) since it held
  nothing (after a warm-up of a few handshakes, Deleted), over the SAs held;
* **new SA**: the responder's CPU for ``--batch`` extra handshakes (a new connection each in
  ``tcp-each``; in ``tcp-shared`` new connections carrying ``--batch-per-connection`` SAs each),
  per handshake;
* **check**: ``--checks`` liveness checks (empty INFORMATIONAL requests, RFC 7296 §2.4) on held
  SAs chosen at random, one outstanding per worker: the responder's CPU per check, and the
  latency from the request's send to its answer's arrival (p50, p99);
* **Delete**: the responder's CPU per INFORMATIONAL Delete of the batch's SAs;
* **close**: the responder's CPU per connection close (the batch's connections, once their SAs
  are deleted; the worker half-closes and waits for the responder's end);
* **idle**: the responder's CPU over ``--idle`` seconds with nothing sent, as a share of a core.

CPU is the responder process's, from ``/proc/PID/task/*/schedstat`` (nanoseconds; the same
time as ``utime + stime`` in ``/proc/PID/stat``, without its 10 ms ticks), read around each
phase after the workers report it done, plus a short settle; ``--rounds`` rounds of the
batch, checks, Deletes and closes per level, and each figure is the median of its rounds.
The table gives every figure per level, then the ratio of the largest level to the smallest of
each scenario beside the issue's goals: within 10% for new SA, check and Delete; closing costs
the same at any scale; at most 16 KiB RSS per TCP SA with its own connection and 8 KiB per UDP
SA; p99 check latency under 5 ms; idle CPU near zero.  ``SCALE_WIRE_PROFILE=DIR`` runs each
responder under cProfile, written to ``DIR/SCENARIO.prof`` when it stops.  Exits 1 when a
responder fails to start, dies or does not exit 0 on SIGTERM, or a level cannot be filled
(reasons printed).
"""

from __future__ import annotations

import argparse
import collections
import math
import multiprocessing
import os
import random
import selectors
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from ipaddress import ip_address
from multiprocessing.connection import Connection as Pipe
from pathlib import Path as FilePath

import attrs
from handshake import SUITES, Bench  # bench/ is sys.path[0]
from load import START_TIMEOUT, STOP_TIMEOUT, Responder

from responder.core.config import Config
from responder.core.endpoint import Endpoint
from responder.core.enums import ExchangeType
from responder.core.events import AuthenticationFailed, IkeSaClosed, IkeSaEstablished, ResponseReceived
from responder.core.initiator import InitiatorSettings
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.path import Path, Transport

HOST = "127.0.0.1"
MARKER = bytes(4)  #: the non-ESP marker (RFC 3948 §2.2; RFC 9329 §3.1)
SETTLE = 0.2  #: seconds for the responder to finish a phase's last work before its CPU is read
WARM_UP = 20  #: handshakes (Deleted again) before the empty responder's RSS is read
PHASE_TIMEOUT = 600.0  #: seconds a worker may take for one command
SOURCES_PER_WORKER = 16  #: loopback source addresses per worker (TCP)


# ---------------------------------------------------------------------------
# The responder process, read from /proc
# ---------------------------------------------------------------------------


def cpu_ns(pid: int) -> int:
    """User + system CPU nanoseconds of every thread of process ``pid`` (``/proc/PID/task/*/schedstat``)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(FilePath(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
    return total


def rss_bytes(pid: int) -> int:
    """``VmRSS`` of process ``pid`` in octets (``/proc/PID/status``)."""
    for line in FilePath(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def limits_file(directory: FilePath, most_sas: int, most_connections: int, window: int) -> FilePath:
    """A ``[responder.limits]`` table with room for the levels (docs/configuration.md)."""
    path = directory / "scale-limits.toml"
    connections = max(most_connections, 1)
    path.write_text(
        "[responder.limits]\n"
        f"ike_sa_max = {most_sas + 1000}\n"
        f"connections_max = {connections + 100}\n"
        f"connections_per_source = {connections + 100}\n"
        f"half_open_max = {window * 8 + 100}\n"
        f"half_open_per_source = {window * 8 + 100}\n"
        f"half_open_per_connection = {window * 8 + 100}\n"
        f"cookie_threshold = {window * 8 + 100}\n"
        # Shutdown sends a Delete of every SA held (RFC 9329 row A24), about 0.3 ms each here;
        # the CLI cuts a shutdown short after shutdown_grace + shutdown_timeout + 5 s.
        f"shutdown_timeout = {5 + most_sas / 1000}\n"
    )
    return path


# ---------------------------------------------------------------------------
# The load generator (one per worker process)
# ---------------------------------------------------------------------------


@attrs.define(eq=False, slots=True)
class Stream:
    """One TCP connection of a worker: its socket, what it has read, the SAs it carries."""

    sock: socket.socket
    path: Path
    buffer: bytearray = attrs.Factory(bytearray)
    sas: int = 0
    eof: bool = False


@attrs.define(eq=False)
class Generator:
    """Many initiator IKE SAs in one core :class:`Endpoint`, over raw sockets and one selector."""

    kind: str  #: "udp", "tcp-each" or "tcp-shared"
    port: int
    sources: list[str]
    per_connection: int
    batch_per_connection: int
    window: int
    seed: int
    settings: InitiatorSettings = attrs.field(init=False)
    endpoint: Endpoint = attrs.field(init=False)
    selector: selectors.DefaultSelector = attrs.field(init=False, factory=selectors.DefaultSelector)
    udp: socket.socket | None = attrs.field(init=False, default=None)
    udp_path: Path | None = attrs.field(init=False, default=None)
    streams: dict[int, Stream] = attrs.field(init=False, factory=dict)
    next_connection: int = attrs.field(init=False, default=1)
    held: list[bytes] = attrs.field(init=False, factory=list)
    #: our SPI -> (what we wait for: "up", "check", "delete"; when the request left)
    pending: dict[bytes, tuple[str, float]] = attrs.field(init=False, factory=dict)
    done: list[tuple[bytes, float]] = attrs.field(init=False, factory=list)  #: finished (SPI, latency)
    failures: collections.Counter[str] = attrs.field(init=False, factory=collections.Counter)

    def __attrs_post_init__(self) -> None:
        rng = random.Random(self.seed)
        ike, esp = SUITES["x25519"]
        self.settings = Bench(ike, esp, seed=1).settings  # bench/handshake.py's initiator: IDs, PSK, Child SA
        factory = KeyExchangeFactory(random.Random(rng.random()).randbytes)
        self.endpoint = Endpoint(Config(), rng.randbytes, factory)
        if self.kind == "udp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            sock.bind((self.sources[0], 0))
            sock.setblocking(False)
            self.udp = sock
            lport = sock.getsockname()[1]
            self.udp_path = Path(
                Transport.UDP, ip_address(self.sources[0]), lport, ip_address(HOST), self.port
            )
            self.selector.register(sock, selectors.EVENT_READ, None)

    # ------------------------------------------------------------------ sockets

    def connect(self) -> Stream:
        number = self.next_connection
        self.next_connection += 1
        source = self.sources[number % len(self.sources)]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_IP, getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24), 1)
        sock.bind((source, 0))
        sock.connect((HOST, self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"IKETCP")  # RFC 9329 §3
        sock.setblocking(False)
        lport = sock.getsockname()[1]
        path = Path(Transport.TCP, ip_address(source), lport, ip_address(HOST), self.port, number)
        stream = Stream(sock, path)
        self.streams[number] = stream
        self.selector.register(sock, selectors.EVENT_READ, stream)
        return stream

    def flush(self) -> None:
        for out in self.endpoint.messages_to_send():
            if out.path.connection is None:
                assert self.udp is not None
                self.udp.sendto(MARKER + out.data, (HOST, self.port))
                continue
            stream = self.streams.get(out.path.connection)
            if stream is None or stream.eof:
                self.failures["message for a closed connection"] += 1
                continue
            body = MARKER + out.data
            stream.sock.sendall((len(body) + 2).to_bytes(2, "big") + body)  # RFC 9329 §3.1

    def pump(self, timeout: float) -> None:
        """Wait up to ``timeout`` for input; hand every message to the core; run its timers; send."""
        for key, _ in self.selector.select(timeout):
            stream: Stream | None = key.data
            if stream is None:
                self._read_udp()
            else:
                self._read_stream(stream)
        now = time.monotonic()
        due = self.endpoint.get_timer()
        if due is not None and due <= now:
            self.endpoint.handle_timer(now)
        self._events()
        self.flush()

    def _read_udp(self) -> None:
        assert self.udp is not None and self.udp_path is not None
        while True:
            try:
                data = self.udp.recv(65536)
            except BlockingIOError:
                return
            arrived = time.perf_counter()
            if data[:4] == MARKER:
                self.endpoint.receive(data[4:], self.udp_path, time.monotonic())
                self._events(arrived)

    def _read_stream(self, stream: Stream) -> None:
        try:
            data = stream.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        arrived = time.perf_counter()
        if not data:
            stream.eof = True
            self.selector.unregister(stream.sock)
            return
        buffer = stream.buffer
        buffer += data
        while len(buffer) >= 2 and len(buffer) >= (length := int.from_bytes(buffer[:2], "big")):
            body = bytes(buffer[2:length])
            del buffer[:length]
            if body[:4] == MARKER:
                self.endpoint.receive(body[4:], stream.path, time.monotonic())
                self._events(arrived)

    def _events(self, arrived: float | None = None) -> None:
        when = time.perf_counter() if arrived is None else arrived
        while (event := self.endpoint.next_event()) is not None:
            waiting = self.pending.get(event.local_spi)
            if waiting is None:
                continue
            what, started = waiting
            finished = (
                (what == "up" and isinstance(event, IkeSaEstablished))
                or (
                    what == "check"
                    and isinstance(event, ResponseReceived)
                    and event.exchange is ExchangeType.INFORMATIONAL
                )
                or (what == "delete" and isinstance(event, IkeSaClosed))
            )
            if finished:
                del self.pending[event.local_spi]
                self.done.append((event.local_spi, when - started))
            elif isinstance(event, IkeSaClosed | AuthenticationFailed):
                del self.pending[event.local_spi]
                self.failures[f"{what}: {type(event).__name__}: {getattr(event, 'reason', '')}"] += 1
        self.endpoint.new_sas()  # the core's list of new SAs is the shell's to take

    # ------------------------------------------------------------------ commands

    def _run(self, count: int, start: object, timeout: float = PHASE_TIMEOUT) -> list[tuple[bytes, float]]:
        """Start ``count`` operations through ``start()`` (which fills ``pending``), ``window`` at a
        time, until each finished or failed; the finished ones with their latencies."""
        self.done = []
        started = 0
        deadline = time.monotonic() + timeout
        failed_before = sum(self.failures.values())
        while len(self.done) + sum(self.failures.values()) - failed_before < count:
            while started < count and len(self.pending) < self.window:
                start(started)  # type: ignore[operator]
                started += 1
                self.flush()
            self.pump(0.05)
            if time.monotonic() > deadline:
                self.failures[f"timed out with {len(self.pending)} pending"] += 1
                self.pending.clear()
                break
        return self.done

    def establish(self, count: int, per_connection: int) -> list[bytes]:
        """``count`` new IKE SAs, ``per_connection`` on each new TCP connection; their SPIs."""
        current: list[Stream | None] = [None]

        def start(_: int) -> None:
            if self.udp_path is not None:
                path = self.udp_path
            else:
                stream = current[0]
                if stream is None or stream.sas >= per_connection:
                    stream = current[0] = self.connect()
                stream.sas += 1
                path = stream.path
            sa = self.endpoint.initiate(self.settings, path, time.monotonic())
            self.pending[sa.local_spi] = ("up", time.perf_counter())

        return [spi for spi, _ in self._run(count, start)]

    def deletes(self, spis: Sequence[bytes]) -> int:
        def start(index: int) -> None:
            self.endpoint.request_delete(spis[index], time.monotonic())
            self.pending[spis[index]] = ("delete", time.perf_counter())

        return len(self._run(len(spis), start))

    def checks(self, count: int, rng: random.Random) -> list[float]:
        """``count`` liveness checks on held SAs at random, one outstanding at a time: latencies."""
        window, self.window = self.window, 1

        def start(_: int) -> None:
            spi = rng.choice(self.held)
            while spi in self.pending:
                spi = rng.choice(self.held)
            self.endpoint.request_liveness_check(spi, time.monotonic())
            self.pending[spi] = ("check", time.perf_counter())

        try:
            return [latency for _, latency in self._run(count, start)]
        finally:
            self.window = window

    def close_idle_streams(self) -> int:
        """Half-close every connection that carries no held SA and wait for the responder's end."""
        held_connections = {self.endpoint.sa(spi).path.connection for spi in self.held}  # type: ignore[union-attr]
        closing = [s for n, s in self.streams.items() if n not in held_connections]
        for stream in closing:
            stream.sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + 30.0
        while any(not s.eof for s in closing) and time.monotonic() < deadline:
            self.pump(0.05)
        for stream in closing:
            if not stream.eof:
                self.failures["connection not closed by the responder"] += 1
                self.selector.unregister(stream.sock)
            stream.sock.close()
            del self.streams[stream.path.connection]  # type: ignore[arg-type]
        return len(closing)

    def idle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.pump(min(left, 0.5))


def worker(spec: dict[str, object], pipe: Pipe) -> None:
    """A worker process: a :class:`Generator`, driven by commands from the parent."""
    generator = Generator(**spec)  # type: ignore[arg-type]
    rng = random.Random(generator.seed)
    batch: list[bytes] = []
    while True:
        command, argument = pipe.recv()
        failed = sum(generator.failures.values())
        result: object = None
        if command == "fill":
            generator.held += generator.establish(int(argument), generator.per_connection)  # type: ignore[call-overload]
            result = len(generator.held)
        elif command == "batch":
            per = generator.batch_per_connection if generator.kind == "tcp-shared" else 1
            batch = generator.establish(int(argument), per)  # type: ignore[call-overload]
            result = len(batch)
        elif command == "delete":
            result = generator.deletes(batch)
            batch = []
        elif command == "close":
            result = generator.close_idle_streams() if generator.udp is None else 0
        elif command == "check":
            result = generator.checks(int(argument), rng)  # type: ignore[call-overload]
        elif command == "idle":
            generator.idle(float(argument))  # type: ignore[arg-type]
        elif command == "stop":
            pipe.send((None, {}))
            return
        new_failures = sum(generator.failures.values()) - failed
        pipe.send((result, dict(generator.failures) if new_failures else {}))


# ---------------------------------------------------------------------------
# One scenario
# ---------------------------------------------------------------------------


@attrs.define
class Figures:
    """What one level measured (CPU in seconds per operation, RSS in octets per SA)."""

    held: int
    rss_per_sa: float = math.nan
    new_sa: float = math.nan
    check: float = math.nan
    p50: float = math.nan
    p99: float = math.nan
    delete: float = math.nan
    close: float = math.nan
    idle: float = math.nan  #: CPU seconds per second


@attrs.define(eq=False)
class Workers:
    """The worker processes of one scenario and the responder they load."""

    responder: Responder
    pipes: list[Pipe]
    processes: list[multiprocessing.process.BaseProcess]
    problems: list[str]

    def command(self, name: str, amounts: Sequence[object]) -> list[object]:
        """Send ``name`` with each worker's amount, wait for every answer; the results."""
        for pipe, amount in zip(self.pipes, amounts, strict=True):
            pipe.send((name, amount))
        results = []
        for pipe in self.pipes:
            if not pipe.poll(PHASE_TIMEOUT):
                raise RuntimeError(f"a worker did not finish {name} within {PHASE_TIMEOUT:g}s")
            result, failures = pipe.recv()
            for reason, count in failures.items():
                self.problems.append(f"{name}: {count}x {reason}")
            results.append(result)
        if not self.responder.alive():
            raise RuntimeError(f"the responder died during {name}")
        return results

    def timed(self, name: str, amounts: Sequence[object]) -> tuple[list[object], float]:
        """:meth:`command`, and the responder's CPU seconds it took (read after :data:`SETTLE`)."""
        before = cpu_ns(self.responder.pid)
        results = self.command(name, amounts)
        time.sleep(SETTLE)
        return results, (cpu_ns(self.responder.pid) - before) / 1e9


def share(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts)]


def measure(workers: Workers, figures: Figures, args: argparse.Namespace) -> None:
    """``--rounds`` rounds of new SAs, checks, Deletes and closes; the median of each figure.

    The median keeps one full garbage collection of the responder's (which walks everything it
    holds, bench/README.md) from standing for a phase it happened to land in.
    """
    n = args.workers
    new, check, delete, close, latencies = [], [], [], [], []
    for _ in range(args.rounds):
        made, cpu = workers.timed("batch", share(args.batch, n))
        new.append(cpu / max(1, sum(int(m) for m in made)))  # type: ignore[call-overload]
        answered, cpu = workers.timed("check", share(args.checks, n))
        flat = [x for lat in answered for x in lat]  # type: ignore[attr-defined]
        check.append(cpu / max(1, len(flat)))
        latencies += flat
        deleted, cpu = workers.timed("delete", [None] * n)
        delete.append(cpu / max(1, sum(int(d) for d in deleted)))  # type: ignore[call-overload]
        closed, cpu = workers.timed("close", [None] * n)
        if count := sum(int(c) for c in closed):  # type: ignore[call-overload]
            close.append(cpu / count)
    figures.new_sa, figures.check, figures.delete = map(statistics.median, (new, check, delete))
    if close:
        figures.close = statistics.median(close)
    if latencies:
        latencies.sort()
        figures.p50 = statistics.median(latencies)
        figures.p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]


def run_scenario(
    kind: str, levels: Sequence[int], args: argparse.Namespace
) -> tuple[list[Figures], list[str]]:
    """Start a responder, fill it level by level and measure each; stop it."""
    transport = Transport.UDP if kind == "udp" else Transport.TCP
    most = max(levels) + args.batch
    connections = (
        0
        if kind == "udp"
        else (most if kind == "tcp-each" else max(levels) // args.per_connection + args.batch)
    )
    figures: list[Figures] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as directory:
        extra = [
            "--config",
            str(limits_file(FilePath(directory), most, connections, args.window)),
            "--no-control",
        ]
        profile = os.environ.get("SCALE_WIRE_PROFILE")
        interpreter = ["-m", "cProfile", "-o", str(FilePath(profile) / f"{kind}.prof")] if profile else []
        interpreter += os.environ.get("SCALE_WIRE_PYTHON_ARGS", "").split()  # e.g. -X tracemalloc wrap.py
        responder = Responder.start([transport], extra, interpreter=interpreter)
        context = multiprocessing.get_context("spawn")
        workers = Workers(responder, [], [], problems)
        try:
            bound = responder.wait_bound([transport], START_TIMEOUT)
            port = bound.listeners[transport][1]
            for index in range(args.workers):
                first = 2 + index * SOURCES_PER_WORKER
                spec = {
                    "kind": kind,
                    "port": port,
                    "sources": [f"127.0.0.{first + n}" for n in range(SOURCES_PER_WORKER)],
                    "per_connection": 1 if kind == "tcp-each" else args.per_connection,
                    "batch_per_connection": args.batch_per_connection,
                    "window": args.window,
                    "seed": args.seed * 100 + index,
                }
                parent, child = context.Pipe()
                process = context.Process(target=worker, args=(spec, child), daemon=True)
                process.start()
                workers.pipes.append(parent)
                workers.processes.append(process)
            n = args.workers
            workers.command("batch", share(WARM_UP, n))  # code paths warmed up, then nothing held
            workers.command("delete", [None] * n)
            workers.command("close", [None] * n)
            time.sleep(SETTLE)
            empty = rss_bytes(responder.pid)
            held = 0
            for level in levels:
                start = time.monotonic()
                got = workers.command("fill", share(level - held, n))
                held = sum(int(g) for g in got)  # type: ignore[call-overload]
                if held < level:
                    problems.append(f"{kind}: filled {held} of {level} SAs")
                    break
                time.sleep(SETTLE)
                level_figures = Figures(held, rss_per_sa=(rss_bytes(responder.pid) - empty) / held)
                print(
                    f"  {kind}: {held} IKE SAs held (filled in {time.monotonic() - start:.1f} s)", flush=True
                )
                measure(workers, level_figures, args)
                _, cpu = workers.timed("idle", [args.idle] * n)
                level_figures.idle = cpu / (args.idle + SETTLE)
                figures.append(level_figures)
            workers.command("stop", [None] * n)
        except RuntimeError as error:
            problems.append(f"{kind}: {error}")
        finally:
            for process in workers.processes:
                process.join(10.0)
                if process.is_alive():
                    process.kill()
            died = not responder.alive()
            stopping = time.monotonic()
            code = responder.stop(STOP_TIMEOUT + max(levels) / 500)  # it Deletes every SA it holds
            print(f"  {kind}: responder stopped in {time.monotonic() - stopping:.1f} s (exit code {code})")
    if died:
        problems.append(f"{kind}: the responder died (exit code {code}); its output:\n{responder.tail()}")
    elif code != 0:
        problems.append(
            f"{kind}: the responder exited with {code} after SIGTERM; its output:\n{responder.tail()}"
        )
    return figures, problems


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

SCENARIOS = {
    "tcp-each": "TCP, a connection per IKE SA",
    "udp": "UDP, one socket per worker",
    "tcp-shared": "TCP, several IKE SAs per connection",
}
HEADER = (
    f"{'scenario':<10} {'held':>6} {'RSS/SA KiB':>10} {'new SA us':>9} {'check us':>8} {'p50 ms':>6}"
    f" {'p99 ms':>6} {'Delete us':>9} {'close us':>8} {'idle %':>6}"
)


def row(kind: str, f: Figures) -> str:
    def us(value: float, width: int) -> str:
        return f"{value * 1e6:>{width}.1f}" if not math.isnan(value) else f"{'-':>{width}}"

    return (
        f"{kind:<10} {f.held:>6} {f.rss_per_sa / 1024:>10.2f} {us(f.new_sa, 9)} {us(f.check, 8)}"
        f" {f.p50 * 1e3:>6.2f} {f.p99 * 1e3:>6.2f} {us(f.delete, 9)} {us(f.close, 8)} {f.idle * 100:>6.2f}"
    )


def goals(kind: str, figures: Sequence[Figures]) -> list[str]:
    """The issue's goals for one scenario: the largest level against the smallest."""
    first, last = figures[0], figures[-1]
    lines = []

    def ratio(name: str, a: float, b: float, bound: float = 1.10) -> None:
        if math.isnan(a) or math.isnan(b) or a <= 0:
            return
        met = "met" if b / a <= bound else "NOT met"
        lines.append(
            f"  {name:<22} {last.held:>6} held / {first.held:>5} held: x{b / a:5.3f}"
            f"   goal <= x{bound:.2f}: {met}"
        )

    ratio("CPU per new SA", first.new_sa, last.new_sa)
    ratio("CPU per liveness check", first.check, last.check)
    ratio("CPU per Delete", first.delete, last.delete)
    ratio("CPU per connection close", first.close, last.close)
    bound = 8 * 1024 if kind == "udp" else 16 * 1024
    if kind != "tcp-shared":
        met = "met" if last.rss_per_sa <= bound else "NOT met"
        lines.append(
            f"  {'RSS per SA':<22} {last.held:>6} held: {last.rss_per_sa / 1024:6.2f} KiB"
            f"   goal <= {bound // 1024} KiB: {met}"
        )
    worst = max(f.p99 for f in figures)
    lines.append(
        f"  {'check latency p99':<22} worst level: {worst * 1e3:6.2f} ms   goal < 5 ms:"
        f" {'met' if worst < 0.005 else 'NOT met'}"
    )
    idle = max(f.idle for f in figures)
    lines.append(f"  {'idle CPU':<22} worst level: {idle * 100:6.2f}% of a core   goal: near zero")
    return lines


def levels(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if any(v <= 0 for v in values) or values != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"{text!r}: expected increasing positive numbers")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tcp-levels", type=levels, default="1000,10000,19000", help="a connection per SA")
    parser.add_argument("--udp-levels", type=levels, default="1000,50000")
    parser.add_argument("--shared-levels", type=levels, default="1000,50000", help="TCP, shared connections")
    parser.add_argument("--per-connection", type=int, default=100, help="IKE SAs per shared connection")
    parser.add_argument(
        "--batch-per-connection", type=int, default=4, help="shared: batch SAs per connection"
    )
    parser.add_argument("--batch", type=int, default=400, help="new SAs (then Deleted, closed) per level")
    parser.add_argument("--rounds", type=int, default=5, help="measurement rounds per level (median)")
    parser.add_argument("--checks", type=int, default=2000, help="liveness checks per level")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of idle CPU per level")
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument("--window", type=int, default=32, help="handshakes in flight per worker")
    parser.add_argument("--scenarios", default="tcp-each,udp,tcp-shared")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    ike, esp = SUITES["x25519"]
    print(f"suite: IKE {ike}, ESP {esp}, PSK, one Child SA; {args.workers} generator processes", flush=True)
    chosen = {"tcp-each": args.tcp_levels, "udp": args.udp_levels, "tcp-shared": args.shared_levels}
    results: dict[str, list[Figures]] = {}
    problems: list[str] = []
    started = time.monotonic()
    for kind in args.scenarios.split(","):
        print(f"{kind}: {SCENARIOS[kind]}", flush=True)
        figures, trouble = run_scenario(kind, chosen[kind], args)
        results[kind] = figures
        problems += trouble
    print()
    print(HEADER)
    for kind, figures in results.items():
        for figures_one in figures:
            print(row(kind, figures_one))
    print("(CPU: the responder process's, per operation; RSS: VmRSS growth since empty, per SA held)")
    for kind, figures in results.items():
        if len(figures) >= 1:
            print(f"goals, {kind} ({SCENARIOS[kind]}):")
            for line in goals(kind, figures):
                print(line)
    print(f"whole run: {time.monotonic() - started:.0f} s")
    if problems:
        sys.stdout.flush()
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
