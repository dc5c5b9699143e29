"""The control socket: what the running responder holds, for an operator to see and end.

Strategy: a Unix stream socket (``--control PATH``, mode 0600: only its owner
may connect) carries one request and one answer per connection, each one
line of JSON.  The request names a command; the answer is
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``.  The
commands (the ``ikev2-responder`` subcommands of the same names print them,
:mod:`responder.control_client`):

* ``status``: version, uptime, listeners, how many SAs and connections, the
  lab impairments that are on;
* ``list-sas``: every IKE SA with its Child SAs (:func:`sa_view`), the way
  ``swanctl --list-sas`` shows them: SPIs in hex, identities, address,
  transport and connection, state, age, algorithms, rekey and expiry times,
  ESP packets counted;
* ``stats``: the engine's counters (:class:`~responder.server.engine.EngineStats`),
  the connection table's and each UDP socket's;
* ``terminate`` with ``ike`` (an SPI in hex, either side's) or ``peer`` (an
  identity as logged): deletes the matching established IKE SAs with an
  INFORMATIONAL Delete (RFC 7296 §1.4.1), as the responder does on shutdown.

Views are plain dicts of JSON types, built from the live objects at the
moment of the request (nothing is cached).  Times are seconds relative to
now; keys never appear.  A request is read within :data:`REQUEST_TIMEOUT`
and at most :data:`REQUEST_MAX` octets; anything else gets an error answer,
and one client's failure never touches the server.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from responder import __version__
from responder.core.errors import ConfigError, LocalError
from responder.core.esp import EspSa
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.selectors import describe_selector
from responder.server.connections import ConnectionTable
from responder.server.engine import Engine
from responder.server.logs import address_port
from responder.server.reload import Reloader
from responder.server.settings import Listener
from responder.server.udp import UdpListener

__all__ = [
    "COMMANDS",
    "REQUEST_MAX",
    "REQUEST_TIMEOUT",
    "Control",
    "control_in_use",
    "sa_view",
    "serve_control",
]

logger = logging.getLogger("responder.server.control")

REQUEST_MAX = 65536  #: octets of one request, at most
REQUEST_TIMEOUT = 5.0  #: seconds a client has to send its request
CLIENTS_MAX = 16  #: control connections served at once
COMMANDS = ("status", "list-sas", "stats", "terminate", "reload")

JSON = dict[str, Any]


def _hex_or_none(value: bytes | None) -> str | None:
    return value.hex() if value is not None else None


def _in(when: float | None, now: float) -> float | None:
    return None if when is None else round(when - now, 1)


def esp_view(esp: EspSa | None) -> JSON | None:
    """A Child SA's ESP counters (RFC 4303) as JSON types; ``None`` without an ESP SA."""
    if esp is None:
        return None
    received, sent = esp.inbound.counters, esp.outbound.counters
    return {
        "packets_in": received.packets,
        "octets_in": received.octets,
        "packets_out": sent.packets,
        "octets_out": sent.octets,
        "replay_drops": received.replay_drops,
        "integrity_failures": received.integrity_failures,
        "malformed": received.malformed,
        "last_seq_out": esp.outbound.last_seq,
        "highest_seq_in": esp.inbound.window.top,
    }


def sa_view(
    sa: IkeSa, now: float, esp_packets: int = 0, esp_sa: Callable[[bytes], EspSa | None] | None = None
) -> JSON:
    """One IKE SA and its Child SAs as JSON types; times in seconds from ``now``; ``esp_sa`` finds a
    Child SA's ESP SAs by our inbound SPI (``Engine.esp_sa``) for their counters."""
    path = sa.path
    children = []
    for child in sa.children.values():
        params = child.params
        children.append(
            {
                "inbound_spi": params.inbound_spi.hex(),
                "outbound_spi": params.outbound_spi.hex(),
                "name": params.name,
                "state": child.state.value,
                "mode": params.mode.value,
                "proposal": str(params.proposal),
                "local_ts": [describe_selector(ts) for ts in params.local_ts],
                "remote_ts": [describe_selector(ts) for ts in params.remote_ts],
                "age": round(now - child.installed_at, 1),
                "rekey_in": _in(child.rekey_at, now),
                "expires_in": _in(child.expires_at, now),
                "esp": esp_view(esp_sa(params.inbound_spi)) if esp_sa is not None else None,
            }
        )
    return {
        "local_spi": sa.local_spi.hex(),
        "spi_i": sa.spi_i.hex(),
        "spi_r": sa.spi_r.hex(),
        "role": "initiator" if sa.is_original_initiator else "responder",
        "state": sa.state.value,
        "peer_id": sa.remote_id or None,
        "local_id": sa.local_id or None,
        "peer_config": sa.peer_name,
        "transport": path.transport.value,
        "remote": address_port(path.remote_address, path.remote_port),
        "local": address_port(path.local_address, path.local_port),
        "connection": path.connection,
        "age": round(now - sa.created_at, 1),
        "established_for": None if sa.established_at is None else round(now - sa.established_at, 1),
        "last_heard_ago": round(now - sa.last_heard, 1) if sa.established_at is not None else None,
        "proposal": str(sa.proposal) if sa.proposal is not None else None,
        "encryption": sa.encryption.name if sa.encryption is not None else None,
        "integrity": sa.integrity.name if sa.integrity is not None else None,
        "rekey_in": _in(sa.rekey_at, now),
        "expires_in": _in(sa.expires_at, now),
        "rekeyed_from": _hex_or_none(sa.rekeyed_from),
        "esp_packets": esp_packets,
        "child_sas": children,
    }


@attrs.define(eq=False)
class Control:
    """What the control socket answers from: the engine, the connection table, the UDP sockets."""

    engine: Engine
    table: ConnectionTable
    listeners: Sequence[Listener] = ()
    udp: Sequence[UdpListener] = ()
    started: float = attrs.field(factory=time.time)
    clock: Callable[[], float] = trio.current_time
    reloader: Reloader | None = None

    def handle(self, request: object) -> JSON:
        """The answer to one decoded request; never raises."""
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return {"ok": False, "error": 'a request is a JSON object with a "command" string'}
        command = request["command"]
        try:
            if command == "status":
                return {"ok": True, "result": self.status()}
            if command == "list-sas":
                return {"ok": True, "result": self.list_sas()}
            if command == "stats":
                return {"ok": True, "result": self.stats()}
            if command == "terminate":
                return {"ok": True, "result": self.terminate(request.get("ike"), request.get("peer"))}
            if command == "reload":
                return {"ok": True, "result": self.reload()}
        except (LocalError, ConfigError) as error:
            return {"ok": False, "error": str(error)}
        return {"ok": False, "error": f"unknown command {command!r} (known: {', '.join(COMMANDS)})"}

    def status(self) -> JSON:
        stats = self.engine.stats
        sas = list(self.engine.sas())
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started, 1),
            "listeners": [str(listener) for listener in self.listeners],
            "ike_sas": stats.ike_sas,
            "half_open": stats.half_open,
            "established": sum(sa.state is IkeSaState.ESTABLISHED for sa in sas),
            "child_sas": sum(len(sa.children) for sa in sas),
            "connections": self.table.counted,
            "udp_sockets": stats.udp_sockets,
            "impairments": self.engine.config.impair.settings(),
        }

    def list_sas(self, limit: int | None = None) -> list[JSON]:
        """Every IKE SA's view, oldest first (the first ``limit`` only, if given)."""
        now = self.clock()
        esp = self.engine.stats.esp_per_sa
        sas = itertools.islice(self.engine.sas(), limit)
        return [sa_view(sa, now, esp.get(sa.local_spi, 0), self.engine.esp_sa) for sa in sas]

    def stats(self) -> JSON:
        stats = attrs.asdict(self.engine.stats)
        stats["esp_per_connection"] = {str(key): value for key, value in stats["esp_per_connection"].items()}
        stats["esp_per_sa"] = {key.hex(): value for key, value in stats["esp_per_sa"].items()}
        stats["tun"] = dict(stats["tun"])
        return {
            "engine": stats,
            "connections": dict(self.table.stats),
            "udp": {f"{address_port(*udp.local)}": attrs.asdict(udp.stats) for udp in self.udp},
        }

    def reload(self) -> JSON:
        """Load the configuration again and apply it (:mod:`responder.server.reload`)."""
        if self.reloader is None:
            raise LocalError("this responder was started without a way to reload its configuration")
        report = self.reloader.reload("control")
        return {
            "kept": report.kept,
            "ended": list(report.ended),
            "restart_needed": list(report.restart_needed),
        }

    def terminate(self, ike: object, peer: object) -> JSON:
        """Delete the IKE SAs named by an SPI (either side's) or by the peer's identity."""
        if (ike is None) == (peer is None):
            raise LocalError('terminate takes one of "ike" (an SPI in hex) or "peer" (an identity)')
        if ike is not None:
            if not isinstance(ike, str):
                raise LocalError('"ike" is an SPI in hex')
            wanted = ike.lower().removeprefix("0x")
            chosen = [sa for sa in self.engine.sas() if wanted in (sa.spi_i.hex(), sa.spi_r.hex())]
            what = f"IKE SA {wanted}"
        else:
            if not isinstance(peer, str):
                raise LocalError('"peer" is an identity, as list-sas shows it')
            chosen = [sa for sa in self.engine.sas() if sa.remote_id == peer]
            what = f"peer {peer}"
        if not chosen:
            raise LocalError(f"no IKE SA for {what}")
        deleted, skipped = [], []
        for sa in chosen:
            if sa.state not in (IkeSaState.ESTABLISHED, IkeSaState.REKEYED):
                skipped.append(f"{sa.local_spi.hex()} ({sa.state.value}: a half-open SA ends by itself)")
            elif self.engine.being_deleted(sa.local_spi):
                skipped.append(f"{sa.local_spi.hex()} (its Delete is already under way)")
            else:
                self.engine.request_delete(sa.local_spi)
                deleted.append(sa.local_spi.hex())
                logger.info("control: IKE SA %s deleted on request", sa.local_spi.hex())
        if not deleted:
            raise LocalError(f"{what}: nothing to delete: {', '.join(skipped)}")
        return {"deleted": deleted, "skipped": skipped}


def control_in_use(path: Path) -> bool:
    """Whether a server answers on the Unix socket ``path`` (a stale file does not)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


async def serve_control(
    path: Path, control: Control, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Listen on the Unix socket ``path`` (0600) and answer each request; removes it on the way out.

    A stale socket file is replaced; one a live server answers on is an error
    (:class:`LocalError`), as is a path that is not a socket.
    """
    try:
        found = path.lstat()
    except FileNotFoundError:
        found = None
    except OSError as error:
        raise LocalError(f"control socket {path}: {error.strerror or error}") from None
    if found is not None:
        if not stat.S_ISSOCK(found.st_mode):
            raise LocalError(f"control socket {path}: exists and is not a socket")
        if control_in_use(path):
            raise LocalError(f"control socket {path}: another responder answers on it")
        try:  # stale: a responder that was killed left it (another one starting may remove it first)
            path.unlink(missing_ok=True)
        except OSError as error:
            raise LocalError(f"control socket {path}: {error.strerror or error}") from None
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(str(path))
        # Only its owner may connect; nobody can before listen() below, so there is no window.
        os.chmod(path, 0o600)
        inode = path.stat().st_ino
        sock.listen(16)
    except OSError as error:
        sock.close()
        raise LocalError(f"control socket {path}: {error.strerror or error}") from None
    listener = trio.SocketListener(sock)
    clients: set[trio.SocketStream] = set()
    logger.info("control socket on %s", path)
    try:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                try:
                    stream = await listener.accept()
                except OSError as error:
                    if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                        await trio.sleep(0.1)
                        continue
                    raise
                if len(clients) >= CLIENTS_MAX:  # one owner's tools, not a crowd: refuse the rest
                    await trio.aclose_forcefully(stream)
                    continue
                clients.add(stream)
                nursery.start_soon(_answer, stream, control, clients)
    finally:
        with contextlib.suppress(OSError):  # first: the await below may be cancelled at once
            if path.stat().st_ino == inode:
                path.unlink()
        await listener.aclose()


async def _answer(stream: trio.SocketStream, control: Control, clients: set[trio.SocketStream]) -> None:
    """Read one request line, write one answer line, close; never raises (but Cancelled)."""
    try:
        with trio.move_on_after(REQUEST_TIMEOUT * 2):  # a client that never reads its answer
            await _answer_one(stream, control)
    finally:
        clients.discard(stream)
        await trio.aclose_forcefully(stream)


async def _answer_one(stream: trio.SocketStream, control: Control) -> None:
    """Read one request line and write one answer line."""
    answer: JSON
    try:
        request = await _read_line(stream)
    except (LocalError, trio.BrokenResourceError, trio.TooSlowError) as error:
        answer = {"ok": False, "error": f"bad request: {error or 'too slow'}"}
    else:
        try:
            answer = control.handle(json.loads(request))
        except (ValueError, RecursionError) as error:
            answer = {"ok": False, "error": f"bad request: not JSON ({type(error).__name__})"}
        except Exception:  # style rule 11: a bug in one answer never ends the server
            logger.exception("control: internal error answering a request")
            answer = {"ok": False, "error": "internal error (see the responder's log)"}
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await stream.send_all(json.dumps(answer).encode() + b"\n")


async def _read_line(stream: trio.SocketStream) -> bytes:
    data = bytearray()
    with trio.fail_after(REQUEST_TIMEOUT):
        while b"\n" not in data:
            chunk = await stream.receive_some(REQUEST_MAX + 1 - len(data))
            if not chunk:
                break
            data += chunk
            if len(data) > REQUEST_MAX:
                raise LocalError(f"longer than {REQUEST_MAX} octets")
    return bytes(data.split(b"\n", 1)[0])
