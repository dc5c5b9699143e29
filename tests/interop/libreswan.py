"""A private libreswan (pluto) instance inside a lab namespace, for IKE over TCP.

Strategy: libreswan is unpacked privately (``.ci/install-interop`` puts it in
/opt/libreswan, since its Debian package conflicts with strongSwan).  Each
instance gets its own ipsec.conf, secrets file, NSS database, run directory
(control socket) and log; pluto runs in the foreground under the lab, with
``--impair tcp-skip-setsockopt-espintcp`` because this kernel has no espintcp
ULP.  pluto then sends no RFC 9329 Length field, so a TCP peer must be reached
through the stand-in (:mod:`tests.interop.espintcp_standin`): in front of an
initiator, an nftables ``redirect`` (:func:`redirect_tcp`) hands pluto's
connection to the stand-in, whose own socket carries a mark the rule skips.
pluto cannot install Child SAs here, so tests use childless IKE SAs
(``omit-v2-ike-auth-child``) or a Child SA the responder refuses.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.interop.lab import LabError, Netns, Proc, run_command, wait_until
from tests.interop.require import LIBRESWAN_PREFIX

__all__ = [
    "ESPINTCP_STANDIN",
    "Libreswan",
    "PlutoConn",
    "libreswan_binaries",
    "redirect_tcp",
    "start_standin",
]

ESPINTCP_STANDIN = Path(__file__).with_name("espintcp_standin.py")
STANDIN_MARK = 0x2A


def libreswan_binaries(prefix: Path = LIBRESWAN_PREFIX) -> tuple[Path, Path, Path]:
    """(pluto, whack, addconn) inside the private tree."""
    base = prefix / "usr" / "libexec" / "ipsec"
    return base / "pluto", base / "whack", base / "addconn"


@dataclass
class PlutoConn:
    """One ipsec.conf ``conn`` section (IKEv2 only)."""

    name: str = "lab"
    left: str = "%defaultroute"
    right: str = "%any"
    leftid: str = "@initiator.lab"
    rightid: str = "@responder.lab"
    authby: str = "secret"
    psk: str | None = "interop-test-psk"
    enable_tcp: str = "yes"  # yes | no | fallback
    tcp_remoteport: int | None = 4500
    ike: str | None = None  # e.g. "aes_gcm256-sha2_256-dh19"; None: pluto's defaults
    esp: str | None = None
    leftsubnet: str | None = None
    rightsubnet: str | None = None
    auto: str = "add"
    extra: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        options: dict[str, str | int | None] = {
            "ikev2": "insist",
            "left": self.left,
            "right": self.right,
            "leftid": self.leftid,
            "rightid": self.rightid,
            "authby": self.authby,
            "enable-tcp": self.enable_tcp,
            "tcp-remoteport": self.tcp_remoteport,
            "ike": self.ike,
            "esp": self.esp,
            "leftsubnet": self.leftsubnet,
            "rightsubnet": self.rightsubnet,
            "keyingtries": 1,
            "leftupdown": "/bin/true",
            "rightupdown": "/bin/true",
            "auto": self.auto,
            **self.extra,
        }
        lines = [f"conn {self.name}"]
        lines += [f"\t{key}={value}" for key, value in options.items() if value is not None]
        return "\n".join(lines) + "\n"


def redirect_tcp(netns: Netns, dport: int, to_port: int, mark: int = STANDIN_MARK) -> None:
    """In ``netns``, send locally originated TCP to ``dport`` to local port ``to_port`` instead,
    except connections whose socket carries ``mark`` (the stand-in's own onward connection)."""
    netns.nft(f"""table ip ikr_standin {{
    chain output {{
        type nat hook output priority -100; policy accept;
        meta l4proto tcp meta mark != {mark:#x} tcp dport {dport} redirect to :{to_port}
    }}
}}
""")


def start_standin(
    netns: Netns,
    *,
    role: str,
    listen: str,
    connect: str | None = None,
    bind: str | None = None,
    tls: bool = False,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    tls_keylog: Path | None = None,
    tls_fingerprint: str | None = None,
    log: Path,
    timeout: float = 10.0,
) -> Proc:
    """Start :mod:`espintcp_standin` inside ``netns`` and wait until it listens."""
    argv = [sys.executable, str(ESPINTCP_STANDIN), "--role", role, "--listen", listen]
    if role == "initiator":
        argv += ["--mark", str(STANDIN_MARK)]
    if connect:
        argv += ["--connect", connect]
    if bind:
        argv += ["--bind", bind]
    if tls:
        argv += ["--tls"]
    if tls_cert is not None and tls_key is not None:
        argv += ["--tls-cert", str(tls_cert), "--tls-key", str(tls_key)]
    if tls_keylog is not None:
        argv += ["--tls-keylog", str(tls_keylog)]
    if tls_fingerprint is not None:
        argv += ["--tls-fingerprint", tls_fingerprint]
    proc = netns.spawn(argv, log=log, env={"PYTHONUNBUFFERED": "1"})

    def ready() -> bool:
        if not proc.alive():
            raise LabError(f"stand-in exited: {proc.log_text()[-2000:]}")
        return "READY" in proc.log_text()

    wait_until(ready, timeout, f"stand-in {role} on {listen}")
    return proc


class Libreswan:
    """A pluto in ``netns`` with its files under ``workdir``."""

    ESTABLISHED = re.compile(r"STATE_V2_ESTABLISHED_IKE_SA|ESTABLISHED_IKE_SA")

    def __init__(
        self,
        netns: Netns,
        workdir: Path,
        *,
        listen_tcp: bool = False,
        listen: str | None = None,
        impairs: Sequence[str] = ("tcp-skip-setsockopt-espintcp",),
        debug: str = "none",
        prefix: Path = LIBRESWAN_PREFIX,
    ) -> None:
        self.netns = netns
        self.dir = workdir
        self.listen_tcp = listen_tcp
        self.listen = listen  # pluto's only address (--listen), so a stand-in can own the wire address
        self.impairs = list(impairs)
        self.debug = debug
        self.pluto, self.whack_bin, self.addconn_bin = libreswan_binaries(prefix)
        self.rundir = workdir / "run"
        self.nssdir = workdir / "nss"
        self.ipsecdir = workdir / "ipsec.d"
        self.config = workdir / "ipsec.conf"
        self.secrets = workdir / "ipsec.secrets"
        self.log_path = workdir / "pluto.log"
        self.ctlsocket = self.rundir / "pluto.ctl"
        self.proc: Proc | None = None
        self.conns: list[PlutoConn] = []
        for d in (self.rundir, self.nssdir, self.ipsecdir):
            d.mkdir(parents=True, exist_ok=True)

    def configure(self, *conns: PlutoConn) -> None:
        self.conns = list(conns)
        setup = [
            "config setup",
            f"\tdumpdir={self.rundir}",
            f"\tplutodebug={self.debug}",
            f"\tlisten-tcp={'yes' if self.listen_tcp else 'no'}",
            "\tuniqueids=yes",
        ]
        self.config.write_text("\n".join(setup) + "\n\n" + "\n".join(c.render() for c in conns))
        secret_lines = [
            f'{c.leftid} {c.rightid} : PSK "{c.psk}"'
            for c in conns
            if c.authby == "secret" and c.psk is not None
        ]
        self.secrets.write_text("\n".join(secret_lines) + "\n")
        os.chmod(self.secrets, 0o600)

    def start(self, timeout: float = 20.0) -> None:
        if not (self.nssdir / "cert9.db").exists():
            run_command(["certutil", "-N", "-d", f"sql:{self.nssdir}", "--empty-password"])
        argv = [
            str(self.pluto),
            "--config",
            str(self.config),
            "--nofork",
            "--rundir",
            str(self.rundir),
            "--nssdir",
            str(self.nssdir),
            "--secretsfile",
            str(self.secrets),
            "--ipsecdir",
            str(self.ipsecdir),
            "--logfile",
            str(self.log_path),
            "--log-no-append",
        ]
        if self.listen_tcp:
            argv.append("--listen-tcp")
        if self.listen is not None:
            argv += ["--listen", self.listen]
        for impair in self.impairs:
            argv += ["--impair", impair]
        self.proc = self.netns.spawn(argv, log=self.dir / "pluto.stdout")

        def ready() -> bool:
            if self.proc is not None and not self.proc.alive():
                raise LabError(
                    f"pluto exited {self.proc.popen.returncode}: {self.proc.log_text()[-2000:]}"
                    f"{self.log_text()[-2000:]}"
                )
            return self.ctlsocket.exists() and "listening for IKE messages" in self.log_text()

        wait_until(ready, timeout, f"pluto's control socket {self.ctlsocket}")
        self.whack("--listen")
        for conn in self.conns:
            self.add(conn.name)

    def add(self, name: str) -> None:
        self.netns.run(
            str(self.addconn_bin), "--config", str(self.config), "--ctlsocket", str(self.ctlsocket), name
        )

    def whack(self, *args: str, check: bool = True, timeout: float = 30.0) -> str:
        proc = self.netns.run(
            str(self.whack_bin), "--rundir", str(self.rundir), *args, check=check, timeout=timeout
        )
        return proc.stdout + proc.stderr

    def initiate(self, name: str = "lab") -> str:
        return self.whack("--initiate", "--name", name, "--asynchronous")

    def showstates(self) -> str:
        return self.whack("--showstates")

    def ike_established(self) -> bool:
        return bool(self.ESTABLISHED.search(self.showstates()))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.alive():
            self.whack("--shutdown", check=False, timeout=10)
            self.proc.stop()
