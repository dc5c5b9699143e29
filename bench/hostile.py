"""Benchmark: a clean initiator's handshake latency while hostile peers attack the responder.

Run: ``python bench/hostile.py [--handshakes N] [--attack-seconds S] [--attacks a,b,...]
[--transports tcp,tls,udp] [--rate R] [--connections C] [--timeout T]``.

The responder is the real thing, as in bench/load.py: ``python -m responder --tcp 127.0.0.1:0 --tls
127.0.0.1:0 --udp 127.0.0.1:0 --psk ... --id @responder.example --log-level info`` in a subprocess, with
the CLI's defaults for everything else (limits included), its bound ports and TLS fingerprint read from
what it prints, its log (stderr) written to a temporary file whose size is the log output.  Every phase
below gets a **fresh responder**, so what one attack leaves behind (half-open IKE SAs live for 30 s)
does not weigh on the next; each fresh responder first completes one unmeasured handshake per
transport, so imports and first-use costs are out of the figures.

The **clean initiator** is bench/load.py's cycle, in this process: :func:`responder.client.establish`
(IKE_SA_INIT + IKE_AUTH with PSK, x25519 and AES-GCM, one Child SA, fresh SPIs, nonces and keys), then
an INFORMATIONAL Delete, then the transport closed.  It connects from 127.0.0.1; every attacker uses
other loopback addresses (127.0.0.2 and up), so the per-source limits separate them as they would on
a network.  The **latency** of a handshake is from opening the transport to the IKE SA up (without
the Delete); a handshake **fails** when it is not up within ``--timeout`` seconds, when the transport
cannot be opened, or when the Delete is not confirmed; failures are counted with their reason.

The clean initiator always runs to the same schedule: ``--handshakes`` handshakes per transport, one
at a time, transports taking turns, their starts spread evenly over ``--attack-seconds`` (a handshake
that runs late pushes the next one back).  Spread-out handshakes are slower than back-to-back ones
(idle cores and cold caches: x1.4 on this project's 2-core machine), so the baseline is spread out
the same way as the measurement under attack.

1. **Baseline**: the schedule with no attack.
2. **Each attack**: the attacker starts in a separate process (multiprocessing, spawned: its CPU is
   never in this process's event loop) and says when its attack is in place (its connections opened,
   its first requests sent); then the clean initiator runs the schedule, so its samples cover the
   whole attack; then the attacker is told to stop (and killed if it does not) and reports what it
   achieved.  On a 2-core machine the attacker shares the cores with the responder and the clean
   initiator, so its own CPU time is printed too: an attacker busy a third of a core slows the clean
   initiator a little by itself.

The attacks (``--rate`` hostile messages a second, default 300, where a rate applies):

* ``half-open-tcp``: one RFC 9329 TCP connection from 127.0.0.2 ("IKETCP", then frames: Length, the
  non-ESP marker, the message) carrying valid IKE_SA_INIT requests (the core's own initiator builds
  each, fresh SPIi, nonce and KE) at ``--rate``, never an IKE_AUTH; reconnects when closed;
* ``half-open-udp``: the same over UDP from 200 source addresses (127.0.1.1-200), non-ESP marker; a
  COOKIE answer is echoed (RFC 7296 §2.6), as any attacker that owns its source addresses can;
* ``slot-exhaustion``: ``--connections`` (default 1,000) TCP connections from 60 sources
  (127.0.2.1-60), each "IKETCP" and one ESP frame with an unknown SPI, then held open; reopened
  when closed;
* ``stalled``: ``--connections`` connections from 60 sources (127.0.3.1-60) that never get anywhere:
  a third connect to the TCP listener and send nothing, a third connect to the TLS listener and send
  nothing, a third send a ClientHello to the TLS listener and never answer the server; reopened when
  closed;
* ``burst``: one TCP connection from 127.0.0.3 writes 200 IKE_SA_INIT requests (fresh SPIs) in one
  ``send_all``, then the next 200 once that returns and 0.2 s have passed, reading what comes back;
  a responder that keeps up or applies back-pressure (stops reading) is fine, one that closes the
  connection shows in "closed by the responder";
* ``garbage``: at ``--rate``, two thirds as UDP datagrams from 200 sources (127.0.4.1-200), one third
  as frames on 20 TCP connections (127.0.5.1-20): random octets, IKE_SA_INIT with major version 3,
  with a zero SPIi, with the response flag, truncated, with a Length beyond the datagram, an unknown
  exchange type, IKE_AUTH for an unknown IKE SA, ESP with an unknown SPI, and on TCP now and then a
  framing fault (a Length of 0) that must close the connection; reconnects when closed.

Output, one line per (phase, transport), the baseline first (the attack lines are one line each in
the output; the attacker's part is the same on each transport's line)::

    baseline         tcp  clean handshake median    8.3 ms p95   10.1 ms, 0/20 failed
    half-open-udp    udp  clean handshake median   12.7 ms p95 3062.7 ms (x1.53 of 8.3 ms without attack),
        5/20 failed; attacker: 11341 IKE_SA_INIT sent from 200 sources (1617 echoing a COOKIE); answers:
        SA 1710, COOKIE 1617
      FAILED 5x: not established: no answer within 5.0s

with ``FAILED Kx: reason`` lines under a transport that had failures, and after each attack's
transports one line for the responder during the attack::

    half-open-udp    responder: CPU 14% of a core (attacker 30%), log 271199 B = 17456.2 B per 1,000
        hostile messages (11341 messages; 73228 B counted as the clean handshakes')

* ``median`` and ``p95`` (nearest rank) are over the successful handshakes; ``x`` is the median under
  attack over the baseline median of the same transport: near 1 means the attack did not reach the
  clean initiator, ``-`` that no handshake succeeded;
* ``failed`` counts clean handshakes that did not complete: the figure that matters most;
* ``attacker`` says what the attacker achieved: messages sent, connections opened, refused (the
  connect failed) and closed by the responder (with how long they were held), and the responder's
  answers by kind (``SA`` for an IKE_SA_INIT accepted, else the first Notify's type);
* ``responder`` is its CPU over the attack's wall time (100% = one core, all it can use; the
  attacker's beside it), and what it logged at level info during the attack, less the clean
  handshakes' share (measured per handshake in the baseline), per 1,000 hostile messages (a
  connection of ``slot-exhaustion`` or ``stalled`` counts as one message): what a flood costs in
  log volume.

The benchmark exits non-zero when the baseline has failures, when a responder fails to start, dies
or does not exit 0 on SIGTERM, when an attacker crashes or does not stop, or (``--max-failed K``) when
more than K clean handshakes of one (attack, transport) failed; clean failures under attack are
otherwise figures, not errors.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import math
import multiprocessing
import os
import queue
import random
import re
import resource
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from ipaddress import ip_address
from multiprocessing.synchronize import Event

import attrs
import trio
from handshake import SUITES, Bench  # bench/ is sys.path[0]
from load import (
    HOST,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Bound,
    Job,
    Responder,
    cpu_seconds,
    cycle,
    positive,
    transports,
)

from responder.client import pinned_context
from responder.core.config import Config
from responder.core.endpoint import Endpoint
from responder.core.enums import ExchangeType, NotifyType, PayloadType
from responder.core.initiator import InitiatorSettings
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.path import Path, Transport
from responder.core.tcp_framing import (
    NON_ESP_MARKER,
    STREAM_PREFIX,
    FramingError,
    IkeFrame,
    StreamDeframer,
    frame_esp,
    frame_ike,
)

ALL_TRANSPORTS = (Transport.TCP, Transport.TLS, Transport.UDP)
SUITE = "x25519"  #: bench/handshake.py's suite, for the clean initiator and the attackers' IKE_SA_INITs
READY_TIMEOUT = 20.0  #: seconds for an attacker to start and put its attack in place
ATTACKER_STOP_TIMEOUT = 10.0  #: seconds for an attacker to stop and report once told to
HEADER_SIZE = 28  #: the IKE header (RFC 7296 §3.1)
BURST = 200  #: IKE_SA_INIT requests per write of the burst attack
BURST_INTERVAL = 0.2  #: seconds at least from one burst to the next
SOURCES = 60  #: source addresses of the connection attacks (the default per-source limit is 20)
UDP_SOURCES = 200  #: source addresses of the UDP floods
GARBAGE_STREAMS = 20  #: TCP connections of the garbage attack
SPARE_FILES = 500  #: open files an attacker needs beside its connections (UDP sockets, pipes, modules)
RECONNECT_PAUSE = 0.05  #: seconds an attacker waits before reopening a closed connection
SECONDS = re.compile(r"\d+\.\d+")  #: failure reasons name the time left: one decimal groups them
ATTACKS = ("half-open-tcp", "half-open-udp", "slot-exhaustion", "stalled", "burst", "garbage")


# ---------------------------------------------------------------------------
# The responder process
# ---------------------------------------------------------------------------


class BenchError(Exception):
    """Something that ends the benchmark: a responder that does not start or dies, a broken attacker."""


@contextlib.contextmanager
def fresh_responder(phase: str, problems: list[str]) -> Iterator[tuple[Responder, Bound]]:
    """A responder for one phase; stopped at the end, and what went wrong added to ``problems``.

    Raises :class:`BenchError` if it does not start or died during the phase.
    """
    log = tempfile.TemporaryFile(prefix="bench-hostile-log-")  # noqa: SIM115 (closed by stop())
    responder = Responder.start(ALL_TRANSPORTS, log_level="info", log=log)
    try:
        try:
            bound = responder.wait_bound(ALL_TRANSPORTS, START_TIMEOUT)
        except RuntimeError as error:
            raise BenchError(f"{phase}: {error}") from None
        yield responder, bound
    finally:
        died = not responder.alive()
        tail = responder.log_tail()
        code = responder.stop()
        if died:
            raise BenchError(f"{phase}: the responder died (exit code {code}); its log ends:\n{tail}")
    if code is None:
        problems.append(f"{phase}: the responder did not exit within {STOP_TIMEOUT:g}s of SIGTERM (killed)")
    elif code != 0:
        problems.append(f"{phase}: the responder exited with code {code} after SIGTERM")


# ---------------------------------------------------------------------------
# The clean initiator
# ---------------------------------------------------------------------------


@attrs.frozen
class Sample:
    """One transport's clean handshakes: latencies of the successful ones, failures by reason."""

    transport: Transport
    latencies: tuple[float, ...]
    failures: dict[str, int]

    @property
    def attempts(self) -> int:
        return len(self.latencies) + self.failed

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else math.nan

    @property
    def p95(self) -> float:
        """Nearest rank: the smallest latency at least 95% of the handshakes did not exceed."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def clean_jobs(bound: Bound, kinds: Sequence[Transport], timeout: float) -> dict[Transport, Job]:
    ike, esp = SUITES[SUITE]
    return {
        kind: Job(kind, *bound.listeners[kind], bound.fingerprint, ike, esp, True, 0.0, None, timeout)
        for kind in kinds
    }


async def clean_handshakes(
    jobs: dict[Transport, Job], count: int, window: float, alive: Callable[[], bool]
) -> dict[Transport, Sample]:
    """``count`` cycles per transport, transports taking turns, starts spread evenly over ``window``
    seconds (back to back when 0, or when a cycle ran late); stops if the responder is not ``alive``."""
    ike, esp = SUITES[SUITE]
    settings, config = Bench(ike, esp, seed=1).settings, Config()
    order = [kind for _ in range(count) for kind in jobs]
    latencies: dict[Transport, list[float]] = {kind: [] for kind in jobs}
    failures: dict[Transport, collections.Counter[str]] = {kind: collections.Counter() for kind in jobs}
    start = trio.current_time()
    for index, kind in enumerate(order):
        await trio.sleep_until(start + window * index / len(order))
        if not alive():
            raise BenchError("the responder died")
        outcome = await cycle(jobs[kind], settings, config)
        if isinstance(outcome, str):
            failures[kind][SECONDS.sub(lambda m: f"{float(m[0]):.1f}", outcome)] += 1
        else:
            latencies[kind].append(outcome)
    return {kind: Sample(kind, tuple(latencies[kind]), dict(failures[kind])) for kind in jobs}


def warm_up(jobs: dict[Transport, Job], responder: Responder) -> None:
    """One unmeasured cycle per transport on a fresh responder."""
    trio.run(clean_handshakes, jobs, 1, 0.0, responder.alive)


# ---------------------------------------------------------------------------
# What the attackers send
# ---------------------------------------------------------------------------


def initiator_settings() -> InitiatorSettings:
    return Bench(*SUITES[SUITE], seed=1).settings


def ike_sa_init(
    settings: InitiatorSettings,
    transport: Transport,
    local: tuple[str, int],
    remote: tuple[str, int],
) -> bytes:
    """A valid IKE_SA_INIT request from the core's own initiator: fresh SPIi, nonce and KE, NAT-D for
    the addresses it really travels between."""
    endpoint = Endpoint(Config(), os.urandom, KeyExchangeFactory(os.urandom))
    connection = None if transport is Transport.UDP else 1
    path = Path(transport, ip_address(local[0]), local[1], ip_address(remote[0]), remote[1], connection)
    endpoint.initiate(settings, path, 0.0)
    [message] = endpoint.messages_to_send()
    return message.data


def with_cookie(request: bytes, cookie: bytes) -> bytes:
    """``request`` again with N(COOKIE) as its first payload (RFC 7296 §2.6)."""
    notify_length = 8 + len(cookie)
    notify = (
        bytes([request[16], 0])
        + notify_length.to_bytes(2, "big")
        + bytes([0, 0])  # protocol ID, SPI size
        + NotifyType.COOKIE.to_bytes(2, "big")
        + cookie
    )
    body = request[HEADER_SIZE:]
    header = (
        request[:16]
        + bytes([PayloadType.NOTIFY])
        + request[17:24]
        + (HEADER_SIZE + len(notify) + len(body)).to_bytes(4, "big")
    )
    return header + notify + body


def first_notify(message: bytes) -> tuple[NotifyType, bytes] | None:
    """The type and data of ``message``'s first payload if it is a Notify (no SPI expected)."""
    if len(message) < HEADER_SIZE + 8 or message[16] != PayloadType.NOTIFY:
        return None
    length = int.from_bytes(message[HEADER_SIZE + 2 : HEADER_SIZE + 4], "big")
    spi_size = message[HEADER_SIZE + 5]
    notify_type = NotifyType(int.from_bytes(message[HEADER_SIZE + 6 : HEADER_SIZE + 8], "big"))
    return notify_type, message[HEADER_SIZE + 8 + spi_size : HEADER_SIZE + length]


def classify(message: bytes) -> str:
    """What kind of answer ``message`` is: ``SA`` (an IKE_SA_INIT accepted), a Notify type, ..."""
    if len(message) < HEADER_SIZE:
        return "short"
    notify = first_notify(message)
    if notify is not None:
        return notify[0].name
    return PayloadType(message[16]).name


def garbage(rng: random.Random, template: bytes) -> bytes:
    """One undecodable or unacceptable message (without framing or marker), from a valid IKE_SA_INIT."""
    kind = rng.randrange(8)
    if kind == 0:  # random octets
        return rng.randbytes(rng.randrange(1, 300))
    if kind == 1:  # major version 3 (RFC 7296 §2.5: INVALID_MAJOR_VERSION)
        return template[:17] + b"\x30" + template[18:]
    if kind == 2:  # a zero SPIi
        return bytes(8) + template[8:]
    if kind == 3:  # IKE_SA_INIT with the response flag
        return template[:19] + bytes([template[19] | 0x20]) + template[20:]
    if kind == 4:  # truncated in the middle of a payload
        return template[: rng.randrange(HEADER_SIZE, len(template))]
    if kind == 5:  # a Length beyond what arrived
        return template[:24] + (len(template) + 100).to_bytes(4, "big") + template[28:]
    if kind == 6:  # an unknown exchange type
        return template[:18] + b"\x63" + template[19:]
    # IKE_AUTH for an IKE SA that does not exist: random SPIs, an "encrypted" body
    body = rng.randbytes(rng.randrange(40, 200))
    header = (
        rng.randbytes(16)
        + bytes([PayloadType.SK, 0x20, ExchangeType.IKE_AUTH, 0x08])
        + (1).to_bytes(4, "big")
        + (HEADER_SIZE + len(body)).to_bytes(4, "big")
    )
    return header + body


def unknown_esp(rng: random.Random) -> bytes:
    """An ESP packet whose SPI the responder never gave out: SPI, sequence number, a body."""
    return rng.randrange(1, 2**32).to_bytes(4, "big") + (1).to_bytes(4, "big") + rng.randbytes(32)


def client_hello() -> bytes:
    """The first flight of a TLS client: what the TLS listener gets before it must answer."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = pinned_context().wrap_bio(incoming, outgoing)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


# ---------------------------------------------------------------------------
# The attacker process
# ---------------------------------------------------------------------------


@attrs.frozen
class Plan:
    """What one attacker process does, and where the responder listens."""

    attack: str
    listeners: dict[Transport, tuple[str, int]]
    rate: float
    connections: int


@attrs.frozen
class AttackReport:
    """What an attacker achieved: a summary line, the hostile messages it sent, or why it crashed."""

    summary: str
    messages: int
    busy: float = 0.0  #: the attacker's CPU time over its wall time while attacking (1.0 = one core)
    error: str | None = None


@attrs.define(eq=False)
class Tally:
    """What an attack counts as it goes."""

    counts: collections.Counter[str] = attrs.Factory(collections.Counter)
    answers: collections.Counter[str] = attrs.Factory(collections.Counter)
    held: list[float] = attrs.Factory(list)  #: seconds each connection lasted before the responder closed it

    def opened(self) -> None:
        self.counts["connections"] += 1
        self.counts["open"] += 1
        self.counts["peak"] = max(self.counts["peak"], self.counts["open"])

    def closed(self, since: float, by_responder: bool) -> None:
        self.counts["open"] -= 1
        if by_responder:
            self.counts["closed"] += 1
            self.held.append(trio.current_time() - since)

    def connections(self) -> str:
        c = self.counts
        plural = "" if c["connections"] == 1 else "s"
        text = f"{c['connections']} connection{plural} opened (at most {c['peak']} open at once)"
        if c["refused"]:
            text += f", {c['refused']} connects failed"
        if c["closed"]:
            text += (
                f", {c['closed']} closed by the responder (median after {statistics.median(self.held):.1f} s)"
            )
        else:
            text += ", none closed by the responder"
        return text

    def answered(self) -> str:
        if not self.answers:
            return "no answers"
        return "answers: " + ", ".join(f"{kind} {n}" for kind, n in self.answers.most_common())


class Pacer:
    """Messages due at ``rate`` a second since the first call, handed out every 10 ms."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.start: float | None = None
        self.given = 0

    async def due(self) -> int:
        while True:
            now = trio.current_time()
            if self.start is None:
                self.start = now
            due = min(int((now - self.start) * self.rate) + 1 - self.given, max(1, int(self.rate / 10)))
            if due > 0:
                self.given += due
                return due
            await trio.sleep(0.01)


async def connect_from(source: str, target: tuple[str, int]) -> trio.SocketStream:
    """A TCP connection to ``target`` from the loopback address ``source``."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
    try:
        await sock.bind((source, 0))
        await sock.connect(target)
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def udp_from(source: str, target: tuple[str, int]) -> trio.socket.SocketType:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind((source, 0))
    await sock.connect(target)
    return sock


async def read_frames(stream: trio.SocketStream, tally: Tally) -> None:
    """Count the responder's IKE answers on a stream until it ends."""
    deframer = StreamDeframer()
    deframer.feed(STREAM_PREFIX)  # the responder sends none
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return
        deframer.feed(bytes(data))
        with contextlib.suppress(FramingError):
            while (frame := deframer.next_frame()) is not None:
                if isinstance(frame, IkeFrame):
                    tally.answers[classify(frame.message)] += 1


async def stream_session(
    source: str,
    target: tuple[str, int],
    tally: Tally,
    write: Callable[[trio.SocketStream], Awaitable[None]],
) -> None:
    """Connect from ``source``, run ``write`` while reading answers, reconnect whenever it ends."""
    while True:
        try:
            stream = await connect_from(source, target)
        except OSError:
            tally.counts["refused"] += 1
            await trio.sleep(RECONNECT_PAUSE * 4)
            continue
        tally.opened()
        since = trio.current_time()
        by_responder = True
        try:
            async with stream, trio.open_nursery() as nursery:

                async def writer(stream: trio.SocketStream = stream) -> None:
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await write(stream)
                        await trio.sleep_forever()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(writer)
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await read_frames(stream, tally)
                nursery.cancel_scope.cancel()
        except BaseException:
            by_responder = False
            raise
        finally:
            tally.closed(since, by_responder)
        await trio.sleep(RECONNECT_PAUSE)


async def half_open_tcp(plan: Plan, tally: Tally, ready: Callable[[], None]) -> None:
    settings, target = initiator_settings(), plan.listeners[Transport.TCP]
    pacer = Pacer(plan.rate)

    async def flood(stream: trio.SocketStream) -> None:
        local = stream.socket.getsockname()
        await stream.send_all(STREAM_PREFIX)
        while True:
            due = await pacer.due()
            data = b"".join(
                frame_ike(ike_sa_init(settings, Transport.TCP, local, target)) for _ in range(due)
            )
            await stream.send_all(data)
            tally.counts["sent"] += due
            ready()

    await stream_session("127.0.0.2", target, tally, flood)


async def half_open_udp(plan: Plan, tally: Tally, ready: Callable[[], None]) -> None:
    settings, target = initiator_settings(), plan.listeners[Transport.UDP]
    sockets = [await udp_from(f"127.0.1.{i}", target) for i in range(1, UDP_SOURCES + 1)]
    sent: collections.OrderedDict[bytes, bytes] = collections.OrderedDict()  # SPIi -> request, for COOKIEs

    async def answers(sock: trio.socket.SocketType) -> None:
        while True:
            try:
                data = await sock.recv(65536)
            except OSError:
                continue
            if data[:4] != NON_ESP_MARKER:
                continue
            message = data[4:]
            tally.answers[classify(message)] += 1
            notify = first_notify(message)
            request = sent.get(message[:8])
            if notify is not None and notify[0] is NotifyType.COOKIE and request is not None:
                with contextlib.suppress(OSError):
                    await sock.send(NON_ESP_MARKER + with_cookie(request, notify[1]))
                    tally.counts["cookies"] += 1
                    tally.counts["sent"] += 1

    with contextlib.ExitStack() as closing:
        for sock in sockets:
            closing.callback(sock.close)
        async with trio.open_nursery() as nursery:
            for sock in sockets:
                nursery.start_soon(answers, sock)
            pacer = Pacer(plan.rate)
            turn = 0
            while True:
                for _ in range(await pacer.due()):
                    sock = sockets[turn % len(sockets)]
                    turn += 1
                    request = ike_sa_init(settings, Transport.UDP, sock.getsockname(), target)
                    sent[request[:8]] = request
                    if len(sent) > 10_000:
                        sent.popitem(last=False)
                    with contextlib.suppress(OSError):
                        await sock.send(NON_ESP_MARKER + request)
                        tally.counts["sent"] += 1
                ready()


async def hold_many(
    plan: Plan,
    tally: Tally,
    ready: Callable[[], None],
    network: str,
    openings: Sequence[tuple[Transport, bytes]],
) -> None:
    """``plan.connections`` connections from ``SOURCES`` addresses of ``network``, each opening with
    the next of ``openings`` (where, what to send), then held; ready once every one was tried."""

    def opening(first: bytes) -> Callable[[trio.SocketStream], Awaitable[None]]:
        async def write(stream: trio.SocketStream) -> None:
            if first:
                await stream.send_all(first)
                tally.counts["sent"] += 1

        return write

    async with trio.open_nursery() as nursery:
        for index in range(plan.connections):
            kind, first = openings[index % len(openings)]
            source = f"{network}.{index % SOURCES + 1}"
            nursery.start_soon(stream_session, source, plan.listeners[kind], tally, opening(first))
            if index % 50 == 49:
                await trio.sleep(0)
        while tally.counts["connections"] + tally.counts["refused"] < plan.connections:
            await trio.sleep(0.05)
        ready()


async def slot_exhaustion(plan: Plan, tally: Tally, ready: Callable[[], None]) -> None:
    rng = random.Random(1)
    openings = [(Transport.TCP, STREAM_PREFIX + frame_esp(unknown_esp(rng))) for _ in range(16)]
    await hold_many(plan, tally, ready, "127.0.2", openings)


async def stalled(plan: Plan, tally: Tally, ready: Callable[[], None]) -> None:
    openings = [(Transport.TCP, b""), (Transport.TLS, b""), (Transport.TLS, client_hello())]
    await hold_many(plan, tally, ready, "127.0.3", openings)


async def burst(plan: Plan, tally: Tally, ready: Callable[[], None]) -> None:
    settings, target = initiator_settings(), plan.listeners[Transport.TCP]

    async def bursts(stream: trio.SocketStream) -> None:
        local = stream.socket.getsockname()
        await stream.send_all(STREAM_PREFIX)
        while True:
            next_burst = trio.current_time() + BURST_INTERVAL
            data = b"".join(
                frame_ike(ike_sa_init(settings, Transport.TCP, local, target)) for _ in range(BURST)
            )
            await stream.send_all(data)
            tally.counts["bursts"] += 1
            tally.counts["sent"] += BURST
            ready()
            await trio.sleep_until(next_burst)

    await stream_session("127.0.0.3", target, tally, bursts)


async def garbage_flood(plan: Plan, tally: Tally, ready: Callable[[], None]) -> None:
    settings = initiator_settings()
    udp_target, tcp_target = plan.listeners[Transport.UDP], plan.listeners[Transport.TCP]
    rng = random.Random(2)
    sockets = [await udp_from(f"127.0.4.{i}", udp_target) for i in range(1, UDP_SOURCES + 1)]
    templates = [ike_sa_init(settings, Transport.UDP, sock.getsockname(), udp_target) for sock in sockets[:8]]

    async def answers(sock: trio.socket.SocketType) -> None:
        while True:
            with contextlib.suppress(OSError):
                data = await sock.recv(65536)
                if data[:4] == NON_ESP_MARKER:
                    tally.answers[classify(data[4:])] += 1

    async def frames(stream: trio.SocketStream) -> None:
        await stream.send_all(STREAM_PREFIX)
        pacer = Pacer(plan.rate / 3 / GARBAGE_STREAMS)
        while True:
            data = b""
            for _ in range(await pacer.due()):
                if rng.randrange(50) == 0:
                    data += b"\x00\x00"  # Length 0: the responder must close the connection
                elif rng.randrange(8) == 0:
                    data += frame_esp(unknown_esp(rng))
                else:
                    data += frame_ike(garbage(rng, rng.choice(templates)))
                tally.counts["frames"] += 1
                tally.counts["sent"] += 1
            await stream.send_all(data)

    with contextlib.ExitStack() as closing:
        for sock in sockets:
            closing.callback(sock.close)
        async with trio.open_nursery() as nursery:
            for sock in sockets:
                nursery.start_soon(answers, sock)
            for i in range(1, GARBAGE_STREAMS + 1):
                nursery.start_soon(stream_session, f"127.0.5.{i}", tcp_target, tally, frames)
            pacer = Pacer(plan.rate * 2 / 3)
            while True:
                for _ in range(await pacer.due()):
                    sock = rng.choice(sockets)
                    if rng.randrange(8) == 0:
                        datagram = unknown_esp(rng)
                    else:
                        datagram = NON_ESP_MARKER + garbage(rng, rng.choice(templates))
                    with contextlib.suppress(OSError):
                        await sock.send(datagram)
                        tally.counts["datagrams"] += 1
                        tally.counts["sent"] += 1
                ready()


Attack = Callable[[Plan, Tally, Callable[[], None]], Awaitable[None]]

RUNS: dict[str, Attack] = {
    "half-open-tcp": half_open_tcp,
    "half-open-udp": half_open_udp,
    "slot-exhaustion": slot_exhaustion,
    "stalled": stalled,
    "burst": burst,
    "garbage": garbage_flood,
}


def summarize(plan: Plan, tally: Tally) -> AttackReport:
    """The attacker's line: what it sent and what the responder did about it."""
    c = tally.counts
    if plan.attack == "half-open-tcp":
        text = f"{c['sent']} IKE_SA_INIT sent; {tally.connections()}; {tally.answered()}"
    elif plan.attack == "half-open-udp":
        text = (
            f"{c['sent']} IKE_SA_INIT sent from {UDP_SOURCES} sources ({c['cookies']} echoing a COOKIE);"
            f" {tally.answered()}"
        )
    elif plan.attack in ("slot-exhaustion", "stalled"):
        text = f"{tally.connections()}, {c['open']} still open at the end"
        messages = c["connections"]
        return AttackReport(text, messages)
    elif plan.attack == "burst":
        text = (
            f"{c['bursts']} bursts = {c['sent']} IKE_SA_INIT sent; {tally.connections()}; {tally.answered()}"
        )
    else:
        text = (
            f"{c['sent']} hostile messages ({c['datagrams']} datagrams from {UDP_SOURCES} sources,"
            f" {c['frames']} frames); {tally.connections()}; {tally.answered()}"
        )
    return AttackReport(text, c["sent"])


async def run_attack(plan: Plan, ready: Event, stop: Event) -> AttackReport:
    tally = Tally()
    cpu, start = time.process_time(), time.monotonic()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(RUNS[plan.attack], plan, tally, ready.set)
        while not stop.is_set():
            await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    busy = (time.process_time() - cpu) / (time.monotonic() - start)
    return attrs.evolve(summarize(plan, tally), busy=busy)


def attacker(plan: Plan, ready: Event, stop: Event, results: multiprocessing.Queue[AttackReport]) -> None:
    """The attacker process: attack until ``stop``, then report (a crash too, so the parent never waits)."""
    try:
        report = trio.run(run_attack, plan, ready, stop)
    except BaseException as error:  # reported to the parent, which exits non-zero
        report = AttackReport("", 0, error=f"{type(error).__name__}: {error}")
    results.put(report)


@contextlib.contextmanager
def attacking(plan: Plan, problems: list[str]) -> Iterator[Callable[[], AttackReport]]:
    """Start the attacker, wait until its attack is in place; yields the function that stops it and
    returns its report.  The process is gone when the block ends, whatever happened."""
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    results: multiprocessing.Queue[AttackReport] = context.Queue()
    process = context.Process(target=attacker, args=(plan, ready, stop, results), daemon=True)
    process.start()

    def finish() -> AttackReport:
        stop.set()
        try:
            return results.get(timeout=ATTACKER_STOP_TIMEOUT)
        except queue.Empty:
            return AttackReport(
                "", 0, error=f"no report within {ATTACKER_STOP_TIMEOUT:g}s of being told to stop"
            )

    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready.wait(0.1):
            if not process.is_alive():
                report = finish()
                raise BenchError(
                    f"{plan.attack}: the attacker stopped early: {report.error or report.summary}"
                )
            if time.monotonic() > deadline:
                problems.append(f"{plan.attack}: the attacker was not in place within {READY_TIMEOUT:g}s")
                break
        yield finish
    finally:
        stop.set()
        process.join(ATTACKER_STOP_TIMEOUT)
        if process.is_alive():
            process.kill()
            process.join()
            problems.append(f"{plan.attack}: the attacker did not stop and was killed")


# ---------------------------------------------------------------------------
# Phases and output
# ---------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e3:.1f}"


def sample_line(phase: str, sample: Sample, baseline: Sample | None) -> str:
    line = (
        f"{phase:<16} {sample.transport.value:<4} clean handshake"
        f" median {ms(sample.median):>6} ms p95 {ms(sample.p95):>6} ms"
    )
    if baseline is not None:
        ratio = sample.median / baseline.median
        shown = "-" if math.isnan(ratio) else f"{ratio:.2f}"
        line += f" (x{shown} of {ms(baseline.median)} ms without attack)"
    return line + f", {sample.failed}/{sample.attempts} failed"


def failure_lines(sample: Sample) -> list[str]:
    return [
        f"  FAILED {count}x: {reason}"
        for reason, count in sorted(sample.failures.items(), key=lambda item: -item[1])
    ]


@attrs.frozen
class Baseline:
    samples: dict[Transport, Sample]
    log_per_cycle: float  #: octets the responder logs per clean cycle at level info


def run_baseline(args: argparse.Namespace, problems: list[str]) -> Baseline:
    kinds: list[Transport] = args.transports
    with fresh_responder("baseline", problems) as (responder, bound):
        jobs = clean_jobs(bound, kinds, args.timeout)
        warm_up(jobs, responder)
        log_before = responder.log_bytes()
        samples = trio.run(clean_handshakes, jobs, args.handshakes, args.attack_seconds, responder.alive)
        time.sleep(0.1)  # the last Delete's log lines
        logged = responder.log_bytes() - log_before
    for kind in kinds:
        print(sample_line("baseline", samples[kind], None))
        for line in failure_lines(samples[kind]):
            print(line)
        if samples[kind].failed:
            problems.append(f"baseline {kind.value}: {samples[kind].failed} clean handshakes failed")
    cycles = sum(s.attempts for s in samples.values())
    return Baseline(samples, logged / cycles if cycles else 0.0)


def run_one_attack(attack: str, args: argparse.Namespace, baseline: Baseline, problems: list[str]) -> None:
    kinds: list[Transport] = args.transports
    with fresh_responder(attack, problems) as (responder, bound):
        jobs = clean_jobs(bound, kinds, args.timeout)
        warm_up(jobs, responder)
        plan = Plan(attack, dict(bound.listeners), args.rate, args.connections)
        log_before, cpu_before, start = responder.log_bytes(), cpu_seconds(responder.pid), time.monotonic()
        with attacking(plan, problems) as finish:
            samples = trio.run(clean_handshakes, jobs, args.handshakes, args.attack_seconds, responder.alive)
            report = finish()
        wall = time.monotonic() - start
        cpu = cpu_seconds(responder.pid) - cpu_before
        logged = responder.log_bytes() - log_before
    if report.error is not None:
        raise BenchError(f"{attack}: the attacker failed: {report.error}")
    for kind in kinds:
        print(f"{sample_line(attack, samples[kind], baseline.samples[kind])}; attacker: {report.summary}")
        for line in failure_lines(samples[kind]):
            print(line)
        if args.max_failed is not None and samples[kind].failed > args.max_failed:
            problems.append(f"{attack} {kind.value}: {samples[kind].failed} clean handshakes failed")
    clean_share = baseline.log_per_cycle * sum(s.attempts for s in samples.values())
    hostile = max(0.0, logged - clean_share)
    per_thousand = f"{hostile / report.messages * 1000:.1f}" if report.messages else "-"
    print(
        f"{attack:<16} responder: CPU {cpu / wall:.0%} of a core (attacker {report.busy:.0%}), log {logged} B"
        f" = {per_thousand} B per 1,000 hostile messages ({report.messages} messages;"
        f" {clean_share:.0f} B counted as the clean handshakes')",
        flush=True,
    )


def attack_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in ATTACKS]
    if unknown or not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a list of {', '.join(ATTACKS)} without repeats")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--handshakes", type=positive(int), default=20, help="clean handshakes per transport (default 20)"
    )
    parser.add_argument(
        "--attack-seconds", type=positive(float), default=10.0, help="clean handshakes spread over (10)"
    )
    parser.add_argument("--attacks", type=attack_list, default=",".join(ATTACKS), help="default: all")
    parser.add_argument("--transports", type=transports, default="tcp,tls,udp", help="default tcp,tls,udp")
    parser.add_argument(
        "--rate", type=positive(float), default=300.0, help="hostile messages a second (default 300)"
    )
    parser.add_argument(
        "--connections", type=positive(int), default=1000, help="connections held (default 1000)"
    )
    parser.add_argument(
        "--timeout", type=positive(float), default=5.0, help="seconds per clean establish/delete (5)"
    )
    parser.add_argument("--max-failed", type=int, help="exit 1 if more clean handshakes of one line fail")
    args = parser.parse_args(argv)
    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if args.connections > open_files - SPARE_FILES:
        parser.error(
            f"--connections {args.connections}: at most {open_files - SPARE_FILES} (open files limit)"
        )
    print(
        f"clean initiator: {args.handshakes} handshakes per transport (PSK, {SUITE}, one Child SA, then"
        f" Delete and close), from {HOST}; each attack for {args.attack_seconds:g} s with a fresh"
        f" responder; --rate {args.rate:g}/s, --connections {args.connections}",
        flush=True,
    )
    problems: list[str] = []
    started = time.monotonic()
    try:
        baseline = run_baseline(args, problems)
        for attack in args.attacks:
            run_one_attack(attack, args, baseline, problems)
    except BenchError as error:
        problems.append(str(error))
    print(f"total {time.monotonic() - started:.1f} s")
    if problems:
        sys.stdout.flush()
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
