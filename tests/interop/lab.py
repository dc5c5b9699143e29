"""Network namespaces, veth pairs and the processes started inside them.

Strategy: one :class:`Lab` owns everything a test (or the vector harvest)
creates: namespaces named ``ikr-<pid>-<n>-<hint>``, veth pairs created directly
inside them (so no interface ever appears in the root namespace), and every
process it started, remembered by PID.  :meth:`Lab.close` stops those processes
(SIGTERM to the process group led by each PID, then SIGKILL), kills whatever
still runs inside the lab's own namespaces (``ip netns pids``) and deletes the
namespaces.  It runs from pytest finalizers, from ``with`` blocks and, as a last
resort, from ``atexit``; :func:`remove_stale_namespaces` clears namespaces left
by a run that was killed outright.  Only the addresses a test assigns inside
these namespaces (and loopback) carry traffic.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import re
import signal
import subprocess
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = [
    "Lab",
    "LabError",
    "Netns",
    "Proc",
    "remove_stale_namespaces",
    "run_command",
    "wait_until",
]

_PREFIX = "ikr"
_NAME_RE = re.compile(rf"^{_PREFIX}-(\d+)-\d+-")
_live_labs: weakref.WeakSet[Lab] = weakref.WeakSet()


class LabError(RuntimeError):
    """A lab command failed or a condition was not reached in time."""


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns a truthy value, or raise LabError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def run_command(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv),
        capture_output=True,
        timeout=timeout,
        env=dict(env) if env is not None else None,
        input=input.decode() if input is not None else None,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        raise LabError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _namespace_pids(name: str) -> list[int]:
    proc = run_command(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def _delete_namespace(name: str) -> None:
    # Everything still running inside one of our namespaces was started by us
    # (directly or by a daemon we started): end it by PID before deleting.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _namespace_pids(name)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        with contextlib.suppress(LabError):
            wait_until(lambda: not _namespace_pids(name), 3.0, f"processes in {name} to exit")
    run_command(["ip", "netns", "delete", name], check=False)


def remove_stale_namespaces() -> list[str]:
    """Delete ``ikr-<pid>-...`` namespaces whose creating process no longer exists."""
    proc = run_command(["ip", "netns", "list"], check=False)
    removed = []
    for line in proc.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NAME_RE.match(name)
        if match and not _pid_alive(int(match.group(1))):
            _delete_namespace(name)
            removed.append(name)
    return removed


class Proc:
    """A process the lab started, stopped by PID (its own process group)."""

    def __init__(
        self, popen: subprocess.Popen[bytes], argv: Sequence[str], log: Path | None, netns: Netns | None
    ) -> None:
        self.popen = popen
        self.argv = list(argv)
        self.log = log
        self.netns = netns

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 5.0) -> int:
        """Signal the process group led by our PID, escalate to SIGKILL, reap; return the exit code."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        else:
            # The leader is gone; children left in its group are still ours.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        return self.popen.returncode

    def __repr__(self) -> str:
        return f"Proc(pid={self.pid}, argv={self.argv[:3]}...)"


class Netns:
    """One network namespace of a lab."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self.name = name

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed to run inside this namespace (``ip netns exec`` execs, keeping the PID)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self,
        *argv: str,
        check: bool = True,
        timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a short command inside the namespace and return its result."""
        return run_command(self.argv(argv), check=check, timeout=timeout, env=env, input=input)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        log: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdout: int | IO[Any] | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        """Start a long-running process inside the namespace; the lab stops it."""
        return self.lab.spawn(argv, netns=self, log=log, env=env, stdout=stdout, cwd=cwd)

    def add_address(self, ifname: str, address: str) -> None:
        self.run("ip", "addr", "add", address, "dev", ifname)

    def add_local_addresses(self, addresses: Iterable[str], ifname: str = "lo") -> None:
        """Extra local addresses (e.g. tunnel inner addresses); on ``lo`` since this kernel has no dummy."""
        for address in addresses:
            self.add_address(ifname, address)

    def nft(self, ruleset: str) -> None:
        """Load an nftables ruleset into this namespace."""
        self.run("nft", "-f", "-", input=ruleset.encode())

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"


class Lab:
    """Owner of namespaces and processes; use as a context manager or call close()."""

    _counter = itertools.count(1)

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.namespaces: list[Netns] = []
        self.procs: list[Proc] = []
        self._closed = False
        _live_labs.add(self)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def netns(self, hint: str = "ns", *, ipv6: bool = False) -> Netns:
        """Create a namespace with loopback up (and IPv6 off unless asked, to keep captures quiet)."""
        hint = re.sub(r"[^A-Za-z0-9_]", "", hint)[:12] or "ns"
        name = f"{_PREFIX}-{os.getpid()}-{next(self._counter)}-{hint}"
        run_command(["ip", "netns", "add", name])
        ns = Netns(self, name)
        self.namespaces.append(ns)
        ns.run("ip", "link", "set", "lo", "up")
        if not ipv6:
            ns.run(
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            )
        return ns

    __call__ = netns

    def pair(
        self, a_address: str, b_address: str, *, hints: tuple[str, str] = ("a", "b"), ifname: str = "veth0"
    ) -> tuple[Netns, Netns]:
        """Two new namespaces joined by a veth pair ``ifname`` with the given CIDR addresses."""
        a, b = self.netns(hints[0]), self.netns(hints[1])
        self.link(a, a_address, b, b_address, a_ifname=ifname, b_ifname=ifname)
        return a, b

    def link(
        self,
        a: Netns,
        a_addresses: str | Sequence[str],
        b: Netns,
        b_addresses: str | Sequence[str],
        *,
        a_ifname: str = "veth0",
        b_ifname: str = "veth0",
    ) -> None:
        """Join two namespaces with a veth pair, assign the addresses (CIDR) and bring both ends up."""
        run_command(
            [
                "ip",
                "link",
                "add",
                a_ifname,
                "netns",
                a.name,
                "type",
                "veth",
                "peer",
                "name",
                b_ifname,
                "netns",
                b.name,
            ]
        )
        for ns, ifname, addresses in ((a, a_ifname, a_addresses), (b, b_ifname, b_addresses)):
            for address in [addresses] if isinstance(addresses, str) else addresses:
                ns.run("ip", "addr", "add", address, "dev", ifname, *(("nodad",) if ":" in address else ()))
            ns.run("ip", "link", "set", ifname, "up")

    def spawn(
        self,
        argv: Sequence[str],
        *,
        netns: Netns | None = None,
        log: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdout: int | IO[Any] | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        """Start a process (inside ``netns`` if given) in its own process group."""
        if self._closed:
            raise LabError("lab is closed")
        full = netns.argv(argv) if netns is not None else list(argv)
        out: int | IO[Any] | None = stdout
        log_file = None
        if out is None:
            if log is not None:
                log_file = open(log, "ab")  # noqa: SIM115 - closed right after Popen (the child keeps its copy)
                out = log_file
            else:
                out = subprocess.DEVNULL
        try:
            popen = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out is not subprocess.PIPE else subprocess.PIPE,
                env={**os.environ, **env} if env is not None else None,
                start_new_session=True,
                cwd=cwd,
            )
        finally:
            if log_file is not None:
                log_file.close()
        proc = Proc(popen, full, log, netns)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        """Stop every process (latest first), then delete every namespace. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        for proc in reversed(self.procs):
            try:
                proc.stop()
            except Exception as exc:  # keep tearing down
                errors.append(f"{proc!r}: {exc}")
        for ns in reversed(self.namespaces):
            try:
                _delete_namespace(ns.name)
            except Exception as exc:
                errors.append(f"{ns!r}: {exc}")
        _live_labs.discard(self)
        if errors:
            raise LabError("teardown problems: " + "; ".join(errors))


@atexit.register
def _close_live_labs() -> None:
    for lab in list(_live_labs):
        with contextlib.suppress(Exception):
            lab.close()
