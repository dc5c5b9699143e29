"""The responder itself, started from its command line inside a lab namespace.

Strategy: interop tests run the responder exactly as a user would, as
``python -m responder --tcp ... --udp ... --tls ... --psk ... --id ... --keylog DIR``
(:func:`start_responder`), in a namespace of the test's :class:`~tests.interop.lab.Lab`
so that it is stopped by PID with everything else.  Its stdout and stderr go to
one file; :class:`Responder` reads that file: whether every listener asked for
is bound (checked independently with ``ss`` inside the namespace, so readiness
does not depend on the wording of a log line), the TLS certificate fingerprint
and the lab PSK it prints, the connection snippets (:meth:`Responder.snippet`), and its one-line-per-exchange
log (:meth:`Responder.answered`).  :meth:`Responder.stop` sends SIGTERM (or
SIGINT) and returns the exit code, which must be 0 after a clean shutdown.
The key-log files the responder writes with ``--keylog DIR`` are exposed as
paths, ready for tshark (``WIRESHARK_CONFIG_DIR=DIR``).

``IKEV2_RESPONDER_COMMAND`` (a shell-quoted command line) replaces
``python -m responder``, e.g. to test an installed ``ikev2-responder``.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.interop.lab import LabError, Netns, Proc, wait_until

__all__ = [
    "REPO",
    "Responder",
    "ResponderListener",
    "bound_sockets",
    "responder_command",
    "start_responder",
]

REPO = Path(__file__).resolve().parents[2]

#: ``AB:CD:...`` (32 colon-separated octets): the SHA-256 fingerprint the CLI prints for ``--tls``.
_FINGERPRINT = re.compile(r"(?i)fingerprint\b[^\n]*?\b((?:[0-9a-f]{2}:){31}[0-9a-f]{2})\b")
#: The line announcing the generated lab PSK: ``lab PSK (LAB SECRET: random, ...): SECRET``.
_PSK = re.compile(r"(?im)^lab psk\b[^\n]*?:\s*(\S+)\s*$")


@dataclass(frozen=True)
class ResponderListener:
    """One listener asked of the CLI: ``kind`` is ``tcp``, ``tls`` or ``udp``."""

    kind: str
    host: str
    port: int

    @property
    def flag(self) -> list[str]:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return [f"--{self.kind}", f"{host}:{self.port}"]

    @property
    def protocol(self) -> str:
        """The socket protocol ``ss`` reports: ``tcp`` for tcp and tls, ``udp`` for udp."""
        return "udp" if self.kind == "udp" else "tcp"


def responder_command() -> list[str]:
    """``python -m responder`` (this interpreter), or ``$IKEV2_RESPONDER_COMMAND`` split like a shell."""
    override = os.environ.get("IKEV2_RESPONDER_COMMAND", "").strip()
    return shlex.split(override) if override else [sys.executable, "-m", "responder"]


def bound_sockets(netns: Netns) -> set[tuple[str, str, int]]:
    """Every listening TCP socket and bound UDP socket in ``netns`` as (protocol, address, port)."""
    out = netns.run("ss", "-H", "-n", "-l", "-t", "-u", check=False).stdout
    found = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        address, _, port = fields[4].rpartition(":")
        if port.isdigit():
            found.add((fields[0], address.strip("[]"), int(port)))
    return found


class Responder:
    """A running ``python -m responder`` and what it printed."""

    def __init__(
        self,
        proc: Proc,
        output: Path,
        listeners: Sequence[ResponderListener],
        keylog_dir: Path | None,
        psk: str | None,
    ) -> None:
        self.proc = proc
        self.output_path = output
        self.listeners = list(listeners)
        self.keylog_dir = keylog_dir
        self._psk = psk
        self.returncode: int | None = None

    # -- what it printed -------------------------------------------------------

    def output(self) -> str:
        """Everything the responder wrote so far (stdout and stderr, interleaved)."""
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def tail(self, chars: int = 6000) -> str:
        return self.output()[-chars:]

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout: float = 10.0, what: str = ""
    ) -> re.Match[str]:
        """The first match of ``pattern`` in the output, waiting up to ``timeout`` seconds for it."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern

        def found() -> re.Match[str] | None:
            match = regex.search(self.output())
            if match is None and not self.proc.alive():
                raise LabError(
                    f"responder exited {self.proc.popen.returncode} before printing "
                    f"{what or regex.pattern!r}:\n{self.tail()}"
                )
            return match

        match: re.Match[str] = wait_until(found, timeout, what or f"responder output {regex.pattern!r}")
        return match

    def lines(self, pattern: str) -> list[str]:
        """The output lines matching the regular expression ``pattern``."""
        regex = re.compile(pattern)
        return [line for line in self.output().splitlines() if regex.search(line)]

    def answered(self, exchange: str, result: str = "") -> list[str]:
        """Log lines of requests of ``exchange`` (``INFORMATIONAL``, ...) the responder answered.

        The engine logs one line per exchange: ``... SPIs I/R INFORMATIONAL #2 answered: liveness check``.
        """
        return self.lines(rf"\b{exchange} #\d+ answered: .*{re.escape(result)}")

    def wait_answered(self, exchange: str, result: str = "", timeout: float = 10.0) -> str:
        """Wait for (and return) the first log line of an answered ``exchange`` request."""
        pattern = rf"[^\n]*\b{exchange} #\d+ answered: [^\n]*{re.escape(result)}[^\n]*"
        return self.wait_for(pattern, timeout, f"{exchange} answered: {result}").group(0)

    def snippet(self, title: str, timeout: float = 10.0) -> str:
        """The block the CLI printed under ``===== TITLE... =====`` (e.g. ``libreswan ipsec.conf``)."""
        pattern = rf"(?ms)^===== {re.escape(title)}[^\n]*=====\n(.*?)(?=^===== )"
        return self.wait_for(pattern, timeout, f"the {title!r} block").group(1)

    @property
    def psk(self) -> str:
        """The PSK in use: the one given with ``--psk``, else the lab PSK the CLI printed."""
        if self._psk is not None:
            return self._psk
        return self.wait_for(_PSK, 10, "the generated lab PSK").group(1).strip('"')

    def fingerprint(self, timeout: float = 10.0) -> str:
        """The SHA-256 fingerprint of the TLS certificate, as printed (colon hex)."""
        return self.wait_for(_FINGERPRINT, timeout, "the TLS certificate fingerprint").group(1)

    # -- key log -----------------------------------------------------------------

    def _keylog(self, name: str) -> Path:
        if self.keylog_dir is None:
            raise LabError("the responder was started without --keylog")
        return self.keylog_dir / name

    @property
    def ike_table(self) -> Path:
        """``DIR/ikev2_decryption_table`` (tshark's IKEv2 decryption table)."""
        return self._keylog("ikev2_decryption_table")

    @property
    def esp_table(self) -> Path:
        """``DIR/esp_sa`` (tshark's ESP SA table)."""
        return self._keylog("esp_sa")

    @property
    def tls_keylog(self) -> Path:
        """``DIR/tls-keys.log`` (NSS key log of the TLS listeners)."""
        return self._keylog("tls-keys.log")

    # -- lifetime ------------------------------------------------------------------

    def alive(self) -> bool:
        return self.proc.alive()

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal the responder, wait for it (SIGKILL after ``timeout``) and return its exit code."""
        if self.returncode is None:
            self.returncode = self.proc.stop(sig, timeout)
        return self.returncode


def start_responder(
    netns: Netns,
    workdir: Path,
    *,
    tcp: Sequence[str] = (),
    tls: Sequence[str] = (),
    udp: Sequence[str] = (),
    psk: str | None = "interop-test-psk",
    local_id: str | None = "@responder.lab",
    keylog: bool = True,
    log_level: str = "debug",
    extra_args: Sequence[str] = (),
    timeout: float = 20.0,
) -> Responder:
    """Start ``python -m responder`` in ``netns`` and wait until every listener is bound.

    ``tcp``/``tls``/``udp`` are ``HOST:PORT`` strings (each becomes one flag);
    ``psk=None`` lets the CLI generate the lab PSK (read it with :attr:`Responder.psk`).
    The key log goes to ``workdir/keylog`` when ``keylog`` is set.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    listeners = [
        ResponderListener(kind, host.strip("[]"), int(port))
        for kind, specs in (("tcp", tcp), ("tls", tls), ("udp", udp))
        for host, _, port in (spec.rpartition(":") for spec in specs)
    ]
    argv = [*responder_command(), "--log-level", log_level]
    for listener in listeners:
        argv += listener.flag
    if psk is not None:
        argv += ["--psk", psk]
    if local_id is not None:
        argv += ["--id", local_id]
    keylog_dir = None
    if keylog:
        keylog_dir = workdir / "keylog"
        argv += ["--keylog", str(keylog_dir)]
    argv += list(extra_args)
    output = workdir / "responder.out"
    proc = netns.spawn(argv, log=output, env={"PYTHONUNBUFFERED": "1"}, cwd=REPO)
    responder = Responder(proc, output, listeners, keylog_dir, psk)
    wanted = {(listener.protocol, listener.host, listener.port) for listener in listeners}

    def ready() -> bool:
        if not proc.alive():
            raise LabError(f"responder exited {proc.popen.returncode} at start:\n{responder.tail()}")
        return wanted <= bound_sockets(netns)

    try:
        wait_until(ready, timeout, f"the responder to bind {sorted(wanted)}", interval=0.1)
    except LabError as exc:
        raise LabError(f"{exc}\n---- responder output ----\n{responder.tail()}") from None
    return responder
