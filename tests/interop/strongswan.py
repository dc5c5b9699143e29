"""A private strongSwan (charon-systemd) instance inside a lab namespace.

Strategy: each instance gets its own directory with a strongswan.conf that
includes none of Debian's files, an explicit plugin list (kernel-libipsec
first, so ESP runs in userspace over a TUN device), its own vici socket and a
file log.  Connections are written as swanctl.conf from :class:`SwanConn` and
loaded with ``swanctl --load-all``; control and events go over vici
(:mod:`tests.interop.vici`).  At ``log_level=4`` (``ike``/``chd``) charon
prints the key material as hex dumps, which :mod:`tests.interop.charon_log`
parses.  See docs/interop.md for running the same thing by hand.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.interop.lab import LabError, Netns, Proc, run_command, wait_until
from tests.interop.vici import EventLog, Message, Vici

__all__ = ["CHARON", "PLUGINS", "SWANCTL", "StrongSwan", "SwanChild", "SwanConn"]

CHARON = "/usr/sbin/charon-systemd"
SWANCTL = "/usr/sbin/swanctl"
#: Order matters: the first kernel-ipsec backend loaded wins (kernel-libipsec, userspace ESP).
PLUGINS = (
    "random nonce openssl aes sha1 sha2 hmac gcm kdf gmp pem pkcs1 pkcs8 x509 pubkey "
    "revocation constraints kernel-libipsec kernel-netlink socket-default vici"
)


@dataclass
class SwanChild:
    """One ``children`` entry of a swanctl connection."""

    name: str = "lab"
    local_ts: str = "dynamic"
    remote_ts: str = "dynamic"
    esp_proposals: str = "aes256gcm16"
    rekey_time: str = "0"
    life_time: str | None = None
    rand_time: str = "0s"
    start_action: str = "none"
    dpd_action: str = "clear"
    mode: str = "tunnel"
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class SwanConn:
    """One swanctl connection with PSK or certificate authentication."""

    name: str = "lab"
    local_addrs: str = "%any"
    remote_addrs: str = "%any"
    local_id: str = "initiator.lab"
    remote_id: str = "%any"
    auth: str = "psk"  # or "pubkey"
    remote_auth: str | None = None  # the peer's method when it differs from ``auth`` (mixed PSK/pubkey)
    psk: str | None = "interop-test-psk"
    local_cert: Path | None = None  # PEM certificate for auth = pubkey
    local_key: Path | None = None  # PEM private key
    ca_certs: Sequence[Path] = ()
    proposals: str = "aes256gcm16-prfsha256-x25519"
    local_port: int | None = None
    remote_port: int | None = None
    rekey_time: str = "0"
    reauth_time: str = "0"
    over_time: str | None = None
    rand_time: str = "0s"
    dpd_delay: str = "0s"
    mobike: bool = False
    children: Sequence[SwanChild] = (SwanChild(),)
    extra: dict[str, str] = field(default_factory=dict)


def _block(name: str, items: dict[str, Any], indent: int) -> list[str]:
    pad = "    " * indent
    lines = [f"{pad}{name} {{"]
    for key, value in items.items():
        if isinstance(value, dict):
            lines += _block(key, value, indent + 1)
        elif value is not None:
            lines.append(f"{pad}    {key} = {value}")
    lines.append(f"{pad}}}")
    return lines


def render_swanctl(conns: Sequence[SwanConn]) -> str:
    """swanctl.conf text for ``conns`` (certificates are referenced by file name in x509/, private/)."""
    connections: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for conn in conns:
        remote_auth = conn.remote_auth or conn.auth
        local: dict[str, Any] = {"auth": conn.auth, "id": conn.local_id}
        if conn.auth == "pubkey" and conn.local_cert is not None:
            local["certs"] = conn.local_cert.name
        children = {
            ch.name: {
                "local_ts": ch.local_ts,
                "remote_ts": ch.remote_ts,
                "esp_proposals": ch.esp_proposals,
                "rekey_time": ch.rekey_time,
                "life_time": ch.life_time,
                "rand_time": ch.rand_time,
                "start_action": ch.start_action,
                "dpd_action": ch.dpd_action,
                "mode": ch.mode,
                **ch.extra,
            }
            for ch in conn.children
        }
        connections[conn.name] = {
            "version": 2,
            "local_addrs": conn.local_addrs,
            "remote_addrs": conn.remote_addrs,
            "local_port": conn.local_port,
            "remote_port": conn.remote_port,
            "proposals": conn.proposals,
            "rekey_time": conn.rekey_time,
            "reauth_time": conn.reauth_time,
            "over_time": conn.over_time,
            "rand_time": conn.rand_time,
            "dpd_delay": conn.dpd_delay,
            "mobike": "yes" if conn.mobike else "no",
            **conn.extra,
            "local": local,
            "remote": {"auth": remote_auth, "id": conn.remote_id},
            "children": children,
        }
        if "psk" in (conn.auth, remote_auth) and conn.psk is not None:
            ids = (
                {"id-1": conn.local_id}
                if conn.remote_id == "%any"
                else {"id-1": conn.local_id, "id-2": conn.remote_id}
            )
            secrets[f"ike-{conn.name}"] = {**ids, "secret": _quote(conn.psk)}
    lines = _block("connections", connections, 0) + _block("secrets", secrets, 0)
    return "\n".join(lines) + "\n"


def _quote(secret: str) -> str:
    return secret if secret.startswith("0x") else '"' + secret.replace('"', '\\"') + '"'


class StrongSwan:
    """A charon-systemd instance in ``netns`` with its files under ``workdir``."""

    def __init__(
        self,
        netns: Netns,
        workdir: Path,
        *,
        log_level: int = 2,
        port: int = 500,
        port_nat_t: int = 4500,
        extra_conf: str = "",
    ) -> None:
        self.netns = netns
        self.dir = workdir
        self.log_level = log_level
        self.port = port
        self.port_nat_t = port_nat_t
        self.extra_conf = extra_conf
        self.conf = workdir / "strongswan.conf"
        self.swanctl_dir = workdir / "swanctl"
        self.vici_path = str(workdir / "charon.vici")
        self.log_path = workdir / "charon.log"
        self.proc: Proc | None = None
        self.events: EventLog | None = None
        self.conns: list[SwanConn] = []
        for sub in ("x509", "x509ca", "private", "conf.d"):
            (self.swanctl_dir / sub).mkdir(parents=True, exist_ok=True)

    @property
    def uri(self) -> str:
        return f"unix://{self.vici_path}"

    def render_strongswan_conf(self) -> str:
        level = self.log_level
        return f"""# private instance for tests/interop; no Debian includes
charon {{
    load_modular = no
    load = {PLUGINS}
    port = {self.port}
    port_nat_t = {self.port_nat_t}
    install_routes = yes
    retransmit_tries = 3
    retransmit_timeout = 1.0
    retransmit_base = 1.4
    filelog {{
        main {{
            path = {self.log_path}
            time_format = %H:%M:%S
            ike_name = yes
            append = no
            flush_line = yes
            default = 1
            ike = {level}
            chd = {level}
            cfg = 2
            knl = 2
            net = 2
            enc = 1
            lib = 1
        }}
    }}
    plugins {{
        vici {{
            socket = {self.uri}
        }}
    }}
{self.extra_conf}
}}
charon-systemd {{
    journal {{
        default = -1
    }}
}}
"""

    def configure(self, *conns: SwanConn) -> None:
        """Write swanctl.conf (and copy certificates/keys) for ``conns``; load() applies it."""
        self.conns = list(conns)
        for conn in conns:
            if conn.local_cert is not None:
                shutil.copy(conn.local_cert, self.swanctl_dir / "x509" / conn.local_cert.name)
            if conn.local_key is not None:
                shutil.copy(conn.local_key, self.swanctl_dir / "private" / conn.local_key.name)
            for ca in conn.ca_certs:
                shutil.copy(ca, self.swanctl_dir / "x509ca" / ca.name)
        (self.swanctl_dir / "swanctl.conf").write_text(render_swanctl(conns))

    def start(self, timeout: float = 15.0) -> None:
        """Start charon-systemd in the namespace, wait for vici, subscribe to events, load the config."""
        self.conf.write_text(self.render_strongswan_conf())
        if os.path.exists(self.vici_path):
            os.unlink(self.vici_path)
        self.proc = self.netns.spawn(
            [CHARON], env={"STRONGSWAN_CONF": str(self.conf)}, log=self.dir / "charon.stdout"
        )

        def ready() -> bool:
            if self.proc is not None and not self.proc.alive():
                raise LabError(
                    f"charon exited {self.proc.popen.returncode}: "
                    f"{self.proc.log_text()[-2000:]}{self.log_text()[-2000:]}"
                )
            return os.path.exists(self.vici_path)

        wait_until(ready, timeout, f"charon's vici socket {self.vici_path}")
        self.events = EventLog(self.vici_path)
        if self.conns:
            self.load()

    def stop(self) -> None:
        if self.events is not None:
            self.events.close()
            self.events = None
        if self.proc is not None:
            self.proc.stop()

    def swanctl(self, *args: str, timeout: float = 60.0, check: bool = True) -> str:
        """Run ``swanctl ARGS --uri ...`` against this instance and return its output."""
        env = {**os.environ, "SWANCTL_DIR": str(self.swanctl_dir), "STRONGSWAN_CONF": str(self.conf)}
        return run_command([SWANCTL, *args, "--uri", self.uri], env=env, timeout=timeout, check=check).stdout

    def load(self) -> str:
        return self.swanctl("--load-all", "--noprompt")

    def vici(self, command: str, msg: Message | None = None) -> Message:
        with Vici(self.vici_path) as v:
            return v.request(command, msg)

    def initiate(self, child: str | None = "lab", ike: str | None = None, timeout: float = 30.0) -> list[str]:
        """Initiate (blocking until done) and return charon's control log lines; raise on failure."""
        msg: Message = {"timeout": str(int(timeout * 1000)), "init-limits": "no"}
        if child is not None:
            msg["child"] = child
        if ike is not None:
            msg["ike"] = ike
        with Vici(self.vici_path, timeout=timeout + 5) as v:
            logs, _ = v.streamed("initiate", msg, "control-log")
        return [entry.get("msg", "") for entry in logs]

    def list_sas(self, ike: str | None = None) -> dict[str, Message]:
        """IKE SAs keyed by connection name (as ``swanctl --list-sas`` shows them, structured)."""
        msg: Message = {"noblock": "yes"}
        if ike is not None:
            msg["ike"] = ike
        with Vici(self.vici_path) as v:
            events, _ = v.streamed("list-sas", msg, "list-sa")
        result: dict[str, Message] = {}
        for event in events:
            result.update(event)
        return result

    def list_ike_sas(self, ike: str | None = None) -> list[tuple[str, Message]]:
        """Every IKE SA as (connection name, details), including several of one connection while rekeying."""
        msg: Message = {"noblock": "yes"}
        if ike is not None:
            msg["ike"] = ike
        with Vici(self.vici_path) as v:
            events, _ = v.streamed("list-sas", msg, "list-sa")
        return [(name, sa) for event in events for name, sa in event.items()]

    def rekey(self, *, ike: str | None = None, child: str | None = None, reauth: bool = False) -> None:
        msg: Message = {}
        if ike is not None:
            msg["ike"] = ike
        if child is not None:
            msg["child"] = child
        if reauth:
            msg["reauth"] = "yes"
        self.vici("rekey", msg)

    def terminate(self, *, ike: str | None = None, child: str | None = None, timeout: float = 15.0) -> None:
        msg: Message = {"timeout": str(int(timeout * 1000))}
        if ike is not None:
            msg["ike"] = ike
        if child is not None:
            msg["child"] = child
        with Vici(self.vici_path, timeout=timeout + 5) as v:
            v.streamed("terminate", msg, "control-log")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
