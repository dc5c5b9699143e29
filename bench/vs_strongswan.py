"""Benchmark: the responder's CPU per established IKE SA beside strongSwan's, both answering one strongSwan.

Run (as root, with strongSwan installed as for tests/interop): ``python bench/vs_strongswan.py
[--suites psk,ecdsa-p256] [--sas N] [--concurrency C] [--rounds R] [--own-count K]``.

Topology (tests/interop's lab: network namespaces joined by veth pairs, everything stopped by PID
at the end): one initiator namespace runs charon-systemd (kernel-libipsec, its own strongswan.conf,
driven through vici) and reaches two responder namespaces:

* **strongSwan**: charon-systemd on 192.0.2.2, UDP 500/4500, kernel-libipsec so that its Child SAs
  install (userspace ESP over TUN; this kernel has no ESP), one connection for the suite with
  ``unique = never``;
* **ours**: ``python -m responder --udp 198.51.100.2:500 --udp 198.51.100.2:4500`` (lab mode: the
  PSK for any ID, or ``--cert``/``--key``/``--ca``), ``--log-level warning``.

Both responders log nothing per SA (charon's file log at level -1, ours at warning), and both
have their per-source half-open limits and COOKIE thresholds raised out of the way (strongSwan's
``block_threshold``/``cookie_threshold``, our ``[responder.limits]``), since every SA comes from
one address.  kernel-libipsec on the initiator fakes a NAT, so IKE_AUTH and the Child SA move to
UDP 4500 at both responders alike.

Suites (the initiator offers exactly one proposal; both responders accept it):

* ``psk``: IKE aes256gcm16-prfsha256-x25519, ESP aes256gcm16, PSK both ways, one Child SA;
* ``ecdsa-p256``: the same algorithms, ECDSA P-256 certificates both ways (RFC 7427 signatures)
  from ``python -m responder certs --key-type ecdsa`` (one CA, ``responder.lab``, ``alice@lab``).

One **round** against one responder: ``--sas`` IKE SAs (default 500), each with its Child SA,
initiated by ``--concurrency`` threads (default 8) that each call vici's blocking ``initiate`` in
a loop, so that C IKE_SA_INITs/IKE_AUTHs are in flight at any time (charon's ``reuse_ikesa = no``
makes every ``initiate`` a new IKE SA; ``unique = never`` keeps charon from sending
INITIAL_CONTACT, which would make the responders close each other SA).  The responder process's
user+system CPU time (``/proc/PID/stat``, all its threads) is read before the first ``initiate``
and after the last has returned (plus ``SETTLE``): it holds IKE_SA_INIT, IKE_AUTH with the
authentication, the Child SA's negotiation and its installation, and the kernel's work on the
responder's sockets.  An SA counts as **established** when charon's ``list-sas`` shows it
ESTABLISHED with its Child SA INSTALLED.  Then (outside the measurement) charon deletes every SA
of the round and the next round starts once both sides hold none.  Rounds alternate between the
responders, in the order strongSwan, ours, ours, strongSwan, ... so that both see the same noise
and neither is always first; a warm-up round of ``--concurrency`` SAs each comes first, untimed.

Printed per round and, summed over the rounds, per suite: each responder's CPU per established
SA, the ratio ours/strongSwan (the issue's goal: at most 1.0 for ``psk``), and the initiator
charon's CPU per SA for scale.  Beside them, from bench/load.py's machinery in the same run (our
own Trio initiator, ``--workers`` processes, ``--own-count`` SAs per transport, each SA deleted
and its transport closed, against ``python -m responder`` on 127.0.0.1): our CPU per SA over TCP
and over UDP for the same suite, with the ratio TCP / UDP (goal: at most 1.3) to our UDP figure
with the strongSwan initiator and to our UDP figure with our own initiator.  Our own initiator's
figures also hold the Delete exchange and the close, which the strongSwan rounds leave out, so
the TCP ratio is a slight overestimate.

Exits 1 when a responder or charon fails to start or dies, or when any SA fails to establish
(reasons printed); 2 when the prerequisites (root, charon-systemd, swanctl, the plugins, TUN)
are missing.  tests/interop/test_bench_vs_strongswan.py runs it tiny.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import itertools
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # tests.interop's lab and strongSwan harness
    sys.path.insert(0, str(REPO))

import load  # noqa: E402 (bench/ is sys.path[0]): bench/load.py's machinery for our own initiator

from responder.core.path import Transport  # noqa: E402
from tests.interop.lab import Lab, LabError, Netns, remove_stale_namespaces, run_command, wait_until  # noqa: E402
from tests.interop.responder_proc import Responder, responder_command, start_responder  # noqa: E402
from tests.interop.strongswan import CHARON, PLUGINS, SWANCTL, StrongSwan, SwanChild, SwanConn  # noqa: E402
from tests.interop.vici import Vici, ViciError  # noqa: E402

IKE, ESP = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
PSK = "vs-strongswan benchmark psk"
INNER_I, INNER_R = "10.250.1.1", "10.250.2.1"  #: the Child SAs' traffic selectors (each /32)
#: (initiator address, responder address) per responder, each pair on its own veth link.
ADDRESSES = {"strongswan": ("192.0.2.1", "192.0.2.2"), "ours": ("198.51.100.1", "198.51.100.2")}
SETTLE = 0.2  #: seconds for the responder to finish its last work before its CPU is read
PLUGIN_DIR = Path("/usr/lib/ipsec/plugins")
REQUIRED_PLUGINS = ("kernel-libipsec", "openssl", "vici", "kernel-netlink", "socket-default")
#: Our limits for one source that opens many IKE SAs at once (strongSwan's equivalents below).
OUR_LIMITS = "[responder.limits]\nhalf_open_per_source = 100000\ncookie_threshold = 100000\n"


@attrs.frozen
class Suite:
    """What the initiator offers and how both ends authenticate."""

    name: str
    certificates: bool


SUITES = {"psk": Suite("psk", False), "ecdsa-p256": Suite("ecdsa-p256", True)}


@attrs.frozen
class Pki:
    """The files of ``python -m responder certs --key-type ecdsa --client alice``."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def client_id(self) -> str:
        return "alice@lab"

    @property
    def responder_id(self) -> str:
        return "responder.lab"


def make_pki(directory: Path) -> Pki:
    """The lab PKI as a user makes it (ECDSA P-256 CA, responder and client)."""
    argv = [
        *responder_command(),
        "certs",
        "--dir",
        str(directory),
        "--key-type",
        "ecdsa",
        "--client",
        "alice",
    ]
    run_command(argv, env={**os.environ, "PYTHONPATH": str(REPO)})
    return Pki(directory)


# ---------------------------------------------------------------------------
# charon
# ---------------------------------------------------------------------------


class BenchCharon(StrongSwan):
    """tests/interop's charon with the benchmark's own strongswan.conf: quiet, many threads.

    ``log_level`` -1 (the default) logs nothing at all, like our responder at ``warning``
    (charon's level 0 already writes lines per SA).
    """

    def __init__(self, netns: Netns, workdir: Path, *, threads: int, extra: str, log_level: int) -> None:
        super().__init__(netns, workdir, log_level=log_level)
        self.threads = threads
        self.extra = extra

    def render_strongswan_conf(self) -> str:
        return f"""# private instance for bench/vs_strongswan.py; no Debian includes
charon {{
    load_modular = no
    load = {PLUGINS}
    threads = {self.threads}
    install_routes = no
    retransmit_tries = 2
    retransmit_timeout = 10.0
{self.extra}
    filelog {{
        main {{
            path = {self.log_path}
            time_format = %H:%M:%S
            ike_name = yes
            append = no
            default = {self.log_level}
        }}
    }}
    plugins {{
        vici {{
            socket = {self.uri}
        }}
    }}
}}
charon-systemd {{
    journal {{
        default = -1
    }}
}}
"""


def cpu_times(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and all its threads (bench/load.py's reader)."""
    return load.cpu_seconds(pid)


def system_time(pid: int) -> float:
    """System CPU seconds of process ``pid`` (the kernel's work on its sockets, mostly)."""
    return load.cpu_times(pid)[1]


# ---------------------------------------------------------------------------
# One round
# ---------------------------------------------------------------------------


@attrs.frozen
class Round:
    """One round against one responder."""

    target: str
    asked: int
    established: int
    failures: dict[str, int]
    responder_cpu: float
    initiator_cpu: float
    wall: float
    responder_system: float = 0.0  #: the part of ``responder_cpu`` spent in the kernel

    @property
    def cpu_per_sa(self) -> float:
        return self.responder_cpu / self.established if self.established else math.nan


def connect(vici_path: str, timeout: float) -> Vici:
    """A vici connection; charon's listen backlog is short, so a refused connect is tried again."""
    for attempt in range(50):
        try:
            return Vici(vici_path, timeout=timeout)
        except BlockingIOError:
            time.sleep(0.01 * (attempt + 1))
    return Vici(vici_path, timeout=timeout)


def initiate_many(
    vici_path: str, target: str, count: int, concurrency: int, timeout: float
) -> dict[str, int]:
    """``count`` blocking vici ``initiate`` calls of connection ``target``, ``concurrency`` at once.

    Returns the failures by reason (charon's error message); each thread has its own vici connection.
    """
    tickets = iter(range(count))
    lock = threading.Lock()
    failures: collections.Counter[str] = collections.Counter()
    request = {
        "ike": target,
        "child": target,
        "timeout": str(int(timeout * 1000)),
        "init-limits": "no",
        "loglevel": "-1",
    }

    def work() -> None:
        try:
            with connect(vici_path, timeout + 5) as vici:
                while True:
                    with lock:
                        if next(tickets, None) is None:
                            return
                    try:
                        vici.request("initiate", request)
                    except ViciError as error:
                        with lock:
                            failures[str(error)] += 1
        except OSError as error:
            with lock:
                failures[f"vici: {type(error).__name__}: {error}"] += 1

    threads = [threading.Thread(target=work, daemon=True) for _ in range(min(concurrency, count))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return dict(failures)


def established(charon: StrongSwan, target: str) -> int:
    """IKE SAs of ``target`` that charon shows ESTABLISHED with an INSTALLED Child SA."""
    return sum(
        1
        for _, sa in charon.list_ike_sas(ike=target)
        if sa.get("state") == "ESTABLISHED"
        and any(child.get("state") == "INSTALLED" for child in (sa.get("child-sas") or {}).values())
    )


def clear(initiator: StrongSwan, target: str, responder: StrongSwan | None, timeout: float = 120.0) -> None:
    """Delete every IKE SA of ``target`` from the initiator and wait until both sides hold none."""
    if initiator.list_ike_sas(ike=target):
        with contextlib.suppress(ViciError):
            initiator.terminate(ike=target, timeout=timeout)
    wait_until(lambda: not initiator.list_ike_sas(ike=target), timeout, f"charon to delete the {target} SAs")
    if responder is not None:
        wait_until(lambda: not responder.list_ike_sas(), timeout, "the strongSwan responder to hold no SA")


def run_round(
    initiator: StrongSwan,
    target: str,
    responder_pid: int,
    strongswan_responder: StrongSwan | None,
    sas: int,
    concurrency: int,
    timeout: float,
) -> Round:
    """One measured round: initiate ``sas`` IKE SAs at the responder, count them, delete them."""
    assert initiator.proc is not None
    before, before_i = cpu_times(responder_pid), cpu_times(initiator.proc.pid)
    before_system = system_time(responder_pid)
    start = time.monotonic()
    failures = initiate_many(initiator.vici_path, target, sas, concurrency, timeout)
    wall = time.monotonic() - start
    time.sleep(SETTLE)
    after, after_i = cpu_times(responder_pid), cpu_times(initiator.proc.pid)
    system = system_time(responder_pid) - before_system
    up = established(initiator, target)
    if up + sum(failures.values()) < sas:
        failures[f"initiate returned but the SA is not up with its Child SA ({sas - up} SAs)"] = sas - up
    clear(initiator, target, strongswan_responder)
    return Round(target, sas, up, failures, after - before, after_i - before_i, wall, system)


# ---------------------------------------------------------------------------
# One suite
# ---------------------------------------------------------------------------


def with_certificate(conn: SwanConn, pki: Pki | None, cert: str, key: str) -> SwanConn:
    """``conn`` as it is (PSK) without ``pki``, else authenticating both ways with certificates."""
    if pki is None:
        return conn
    ca = [pki.path("ca.pem")]
    return dataclasses.replace(
        conn, auth="pubkey", psk=None, local_cert=pki.path(cert), local_key=pki.path(key), ca_certs=ca
    )


def initiator_conn(target: str, pki: Pki | None) -> SwanConn:
    """The initiator's connection to ``target``; ``unique = never``: no INITIAL_CONTACT, so the
    SAs of one round never make the responder close each other."""
    local, remote = ADDRESSES[target]
    conn = SwanConn(
        name=target,
        local_addrs=local,
        remote_addrs=remote,
        local_id=pki.client_id if pki else "initiator.lab",
        remote_id=pki.responder_id if pki else "responder.lab",
        psk=PSK,
        proposals=IKE,
        children=[
            SwanChild(name=target, esp_proposals=ESP, local_ts=f"{INNER_I}/32", remote_ts=f"{INNER_R}/32")
        ],
        extra={"unique": "never"},
    )
    return with_certificate(conn, pki, "alice.pem", "alice.key")


def responder_conn(pki: Pki | None) -> SwanConn:
    """The strongSwan responder's one connection; ``unique = never`` keeps many SAs of one ID."""
    conn = SwanConn(
        name="bench",
        local_addrs=ADDRESSES["strongswan"][1],
        remote_addrs="%any",
        local_id=pki.responder_id if pki else "responder.lab",
        remote_id="%any",
        psk=PSK,
        proposals=IKE,
        children=[
            SwanChild(name="bench", esp_proposals=ESP, local_ts=f"{INNER_R}/32", remote_ts=f"{INNER_I}/32")
        ],
        extra={"unique": "never"},
    )
    return with_certificate(conn, pki, "responder.pem", "responder.key")


def our_arguments(pki: Pki | None) -> list[str]:
    if pki is None:
        return []
    return [
        *("--cert", str(pki.path("responder.pem")), "--key", str(pki.path("responder.key"))),
        *("--ca", str(pki.path("ca.pem")), "--id", pki.responder_id),
    ]


@attrs.frozen
class SuiteResult:
    suite: Suite
    rounds: tuple[Round, ...]
    own: tuple[load.Run, ...]

    def total(self, target: str) -> Round:
        mine = [r for r in self.rounds if r.target == target]
        failures: collections.Counter[str] = collections.Counter()
        for r in mine:
            failures.update(r.failures)
        return Round(
            target,
            sum(r.asked for r in mine),
            sum(r.established for r in mine),
            dict(failures),
            sum(r.responder_cpu for r in mine),
            sum(r.initiator_cpu for r in mine),
            sum(r.wall for r in mine),
            sum(r.responder_system for r in mine),
        )

    def own_run(self, kind: Transport) -> load.Run | None:
        return next((run for run in self.own if run.transport == kind), None)


def round_line(number: int | str, r: Round) -> str:
    return (
        f"  round {number} {r.target:<10}: {r.established:>5}/{r.asked} established in {r.wall:6.2f} s;"
        f" responder {r.responder_cpu:6.2f} s CPU (system {r.responder_system:5.2f} s)"
        f" = {r.cpu_per_sa * 1e6:8.1f} us/SA;"
        f" initiator {r.initiator_cpu / max(r.established, 1) * 1e6:8.1f} us/SA"
    )


def strongswan_rounds(
    args: argparse.Namespace,
    suite: Suite,
    pki: Pki | None,
    lab: Lab,
    ini: Netns,
    nets: dict[str, Netns],
    work: Path,
) -> list[Round]:
    """Start both responders and the initiator for ``suite``; warm up, then the alternating rounds."""
    threads = max(16, 2 * args.concurrency + 8)
    ss = BenchCharon(
        nets["strongswan"],
        work / "strongswan",
        threads=threads,
        extra=(
            "    block_threshold = 100000\n    cookie_threshold = 100000\n    cookie_threshold_ip = 100000\n"
        ),
        log_level=args.charon_log_level,
    )
    initiator = BenchCharon(
        ini,
        work / "initiator",
        threads=threads,
        extra="    reuse_ikesa = no\n",
        log_level=args.charon_log_level,
    )
    limits = work / "limits.toml"
    limits.write_text(OUR_LIMITS)
    ours: Responder | None = None
    try:
        ss.configure(responder_conn(pki))
        ss.start()
        _, our_address = ADDRESSES["ours"]
        ours = start_responder(
            nets["ours"],
            work / "ours",
            udp=[f"{our_address}:500", f"{our_address}:4500"],
            psk=None if pki is not None else PSK,
            local_id=None if pki is not None else "@responder.lab",
            keylog=False,
            log_level="warning",
            extra_args=["--config", str(limits), "--no-control", *our_arguments(pki)],
        )
        initiator.configure(*(initiator_conn(target, pki) for target in ADDRESSES))
        initiator.start()
        assert ss.proc is not None
        pids = {"strongswan": ss.proc.pid, "ours": ours.proc.pid}
        responders = {"strongswan": ss, "ours": None}
        rounds: list[Round] = []
        for target in ADDRESSES:  # warm-up, untimed: first-use paths, caches, charon's thread pool
            warm = run_round(
                initiator,
                target,
                pids[target],
                responders[target],
                args.concurrency,
                args.concurrency,
                args.timeout,
            )
            if warm.failures:
                raise RuntimeError(f"warm-up against {target} failed: {warm.failures}")
        order = itertools.cycle([("strongswan", "ours"), ("ours", "strongswan")])
        for number in range(1, args.rounds + 1):
            for target in next(order):
                r = run_round(
                    initiator,
                    target,
                    pids[target],
                    responders[target],
                    args.sas,
                    args.concurrency,
                    args.timeout,
                )
                rounds.append(r)
                print(round_line(number, r), flush=True)
            for name, proc in (
                ("strongSwan", ss.proc),
                ("ours", ours.proc),
                ("the initiator", initiator.proc),
            ):
                if proc is None or not proc.alive():
                    raise RuntimeError(f"{name} died")
        return rounds
    finally:
        for charon in (initiator, ss):
            with contextlib.suppress(Exception):
                charon.stop()
        if ours is not None:
            code = ours.stop()
            if code != 0:
                print(f"warning: our responder exited {code}:\n{ours.tail(2000)}", file=sys.stderr)


def own_runs(
    args: argparse.Namespace, suite: Suite, pki: Pki | None, work: Path
) -> tuple[list[load.Run], list[str]]:
    """bench/load.py's machinery: our own initiator over TCP and UDP against ``python -m responder``."""
    kinds = [Transport.TCP, Transport.UDP]
    extra = our_arguments(pki)
    certificates = None
    if pki is not None:
        certificates = load.Certificates(
            str(pki.path("alice.pem")),
            str(pki.path("alice.key")),
            str(pki.path("ca.pem")),
            pki.client_id,
            pki.responder_id,
        )
    runs: list[load.Run] = []
    problems: list[str] = []
    responder = load.Responder.start(kinds, [*extra, "--no-control"])
    try:
        bound = responder.wait_bound(kinds, load.START_TIMEOUT)
        for kind in kinds:
            host, port = bound.listeners[kind]
            share, rest = divmod(args.own_count, args.workers)
            jobs = [
                load.Job(
                    kind,
                    host,
                    port,
                    None,
                    IKE,
                    ESP,
                    True,
                    0.0,
                    share + (i < rest),
                    args.timeout,
                    certificates,
                )
                for i in range(args.workers)
                if share + (i < rest)
            ]
            run = load.run_transport(responder, jobs)
            runs.append(run)
            for reason, count in run.failures.items():
                problems.append(f"own initiator over {kind.value}: {count}x {reason}")
    finally:
        code = responder.stop()
    if code != 0:
        problems.append(f"python -m responder (own initiator runs) exited {code}: {responder.tail()}")
    return runs, problems


def run_suite(
    args: argparse.Namespace, suite: Suite, lab: Lab, ini: Netns, nets: dict[str, Netns], work: Path
) -> tuple[SuiteResult, list[str]]:
    pki = make_pki(work / "pki") if suite.certificates else None
    print(
        f"suite {suite.name}: IKE {IKE}, ESP {ESP},"
        f" {'ECDSA P-256 certificates' if pki else 'PSK'}, one Child SA;"
        f" {args.sas} SAs per round, {args.concurrency} at once, {args.rounds} rounds per responder",
        flush=True,
    )
    rounds = strongswan_rounds(args, suite, pki, lab, ini, nets, work)
    own, problems = own_runs(args, suite, pki, work)
    result = SuiteResult(suite, tuple(rounds), tuple(own))
    for target in ADDRESSES:
        total = result.total(target)
        for reason, count in total.failures.items():
            problems.append(f"{suite.name} against {target}: {count}x {reason}")
    return result, problems


# ---------------------------------------------------------------------------
# Output and main
# ---------------------------------------------------------------------------

HEADER = (
    f"{'suite':<11} {'sS us/SA':>9} {'ours us/SA':>10} {'ours/sS':>8} {'SAs':>9}"
    f" {'own TCP us/SA':>13} {'TCP/UDP(sS init)':>16} {'own UDP us/SA':>13} {'TCP/UDP(own)':>12}"
    f" {'init us/SA':>10}"
)


def ratio(a: float, b: float) -> float:
    """``a / b``, or nan where ``b`` is zero (a tiny run whose CPU time read zero ticks)."""
    return a / b if b else math.nan


def summary_row(result: SuiteResult) -> str:
    ss, ours = result.total("strongswan"), result.total("ours")
    tcp, udp = result.own_run(Transport.TCP), result.own_run(Transport.UDP)
    tcp_cpu = tcp.cpu_per_sa if tcp is not None else math.nan
    udp_cpu = udp.cpu_per_sa if udp is not None else math.nan
    initiator = (ss.initiator_cpu + ours.initiator_cpu) / max(ss.established + ours.established, 1)
    return (
        f"{result.suite.name:<11} {ss.cpu_per_sa * 1e6:>9.1f} {ours.cpu_per_sa * 1e6:>10.1f}"
        f" {ratio(ours.cpu_per_sa, ss.cpu_per_sa):>7.2f}x {ours.established:>4}+{ss.established:<4}"
        f" {tcp_cpu * 1e6:>13.1f} {ratio(tcp_cpu, ours.cpu_per_sa):>15.2f}x {udp_cpu * 1e6:>13.1f}"
        f" {ratio(tcp_cpu, udp_cpu):>11.2f}x {initiator * 1e6:>10.1f}"
    )


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run the benchmark (empty when nothing)."""
    gaps = []
    if os.geteuid() != 0:
        gaps.append("root (network namespaces, veth pairs)")
    for tool in (CHARON, SWANCTL):
        if not os.access(tool, os.X_OK):
            gaps.append(tool)
    for plugin in REQUIRED_PLUGINS:
        if not (PLUGIN_DIR / f"libstrongswan-{plugin}.so").exists():
            gaps.append(f"strongSwan plugin {plugin}")
    if not os.path.exists("/dev/net/tun"):
        gaps.append("/dev/net/tun")
    return gaps


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def suites(text: str) -> list[Suite]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in SUITES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a list of {', '.join(SUITES)}")
    return [SUITES[name] for name in names]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--suites", type=suites, default="psk,ecdsa-p256", help="default psk,ecdsa-p256")
    parser.add_argument("--sas", type=positive_int, default=500, help="IKE SAs per round (default 500)")
    parser.add_argument(
        "--concurrency", type=positive_int, default=8, help="initiations in flight (default 8)"
    )
    parser.add_argument("--rounds", type=positive_int, default=3, help="rounds per responder (default 3)")
    parser.add_argument(
        "--own-count", type=positive_int, default=600, help="SAs per transport, own initiator"
    )
    parser.add_argument("--workers", type=positive_int, default=2, help="own initiator processes (default 2)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per initiate (default 30)")
    parser.add_argument(
        "--charon-log-level", type=int, default=-1, help="both charons' file log (default -1)"
    )
    parser.add_argument("--keep", type=Path, help="keep the logs and files in this new directory")
    args = parser.parse_args(argv)
    gaps = missing_prerequisites()
    if gaps:
        print(
            f"cannot run: missing {', '.join(gaps)} (see docs/interop.md, .ci/install-interop)",
            file=sys.stderr,
        )
        return 2
    remove_stale_namespaces()
    results: list[SuiteResult] = []
    problems: list[str] = []
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True)
            directory = str(args.keep.resolve())
        else:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-vs-strongswan-"))
        lab = stack.enter_context(Lab(Path(directory) / "lab"))
        ini = lab.netns("bench-ini")
        nets = {target: lab.netns(f"bench-{target[:5]}") for target in ADDRESSES}
        for number, (target, (local, remote)) in enumerate(ADDRESSES.items()):
            lab.link(ini, f"{local}/24", nets[target], f"{remote}/24", a_ifname=f"veth{number}")
        ini.add_local_addresses([f"{INNER_I}/32"])
        nets["strongswan"].add_local_addresses([f"{INNER_R}/32"])  # kernel-libipsec routes from it
        for suite in args.suites:
            work = Path(directory) / suite.name
            work.mkdir()
            try:
                result, found = run_suite(args, suite, lab, ini, nets, work)
            except (LabError, RuntimeError, ViciError, OSError, subprocess.SubprocessError) as error:
                problems.append(f"{suite.name}: {type(error).__name__}: {error}")
                continue
            results.append(result)
            problems += found
    print()
    print(HEADER)
    for result in results:
        print(summary_row(result))
    print(
        "(sS: the strongSwan responder; ours/sS: goal <= 1.00 for psk; TCP/UDP: our CPU per SA over TCP"
        " (own initiator) over our UDP figure with the strongSwan initiator, then with our own; goal <= 1.30;"
        " init: the strongSwan initiator's CPU per SA)"
    )
    if problems:
        sys.stdout.flush()
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
