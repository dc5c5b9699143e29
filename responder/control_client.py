"""``ikev2-responder status | list-sas | stats | terminate``: ask the running responder.

Strategy: each subcommand sends one request over the responder's control
socket (:mod:`responder.server.control`: one line of JSON each way) and
prints the answer, as readable text by default (``list-sas`` in the manner
of ``swanctl --list-sas``) or as the JSON itself with ``--json``.  The
socket is ``--control PATH``, by default :func:`default_control_path`, the
same default the server uses.  Exit status: 0 done, 1 the responder
refused (no such SA, ...) or could not be reached, 2 a usage error.
Standard library only (a blocking socket): this runs in a shell, not under
Trio.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["COMMANDS", "ControlError", "default_control_path", "main", "render", "request"]

COMMANDS = ("status", "list-sas", "stats", "terminate", "reload")
TIMEOUT = 10.0  #: seconds to wait for the responder's answer
SOCKET_NAME = "ikev2-responder.sock"


class ControlError(Exception):
    """The responder could not be asked, or said no; the message says why."""


def default_control_path() -> Path:
    """``$XDG_RUNTIME_DIR/ikev2-responder.sock``, else ``/tmp/ikev2-responder-UID/ikev2-responder.sock``.

    The directory under /tmp is made 0700 when missing; one that another
    user owns or others may enter is not used (:class:`ControlError`).
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / SOCKET_NAME
    directory = Path(f"/tmp/ikev2-responder-{os.getuid()}")  # noqa: S108 (checked below: ours, 0700)
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        info = directory.lstat()
    except OSError as error:
        raise ControlError(f"{directory}: {error.strerror or error}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ControlError(f"{directory} is not a directory of ours with mode 0700; use --control PATH")
    return directory / SOCKET_NAME


def request(path: Path, command: str, timeout: float = TIMEOUT, **fields: Any) -> Any:
    """Send ``command`` (with ``fields``) to the responder at ``path``; its ``result``.

    Raises :class:`ControlError` when nobody answers there or the responder refuses.
    """
    message = json.dumps({"command": command, **fields}).encode() + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(message)
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except FileNotFoundError:
        raise ControlError(f"no responder at {path} (start one, or name its --control PATH)") from None
    except ConnectionRefusedError:
        raise ControlError(f"no responder answers at {path} (a stale socket file?)") from None
    except OSError as error:
        raise ControlError(f"{path}: {error.strerror or error}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise ControlError(f"{path}: not an answer of ikev2-responder: {data[:80]!r}") from None
    if not isinstance(answer, dict) or "ok" not in answer:
        raise ControlError(f"{path}: not an answer of ikev2-responder")
    if not answer["ok"]:
        raise ControlError(str(answer.get("error", "refused")))
    return answer.get("result")


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    value = max(0.0, value)
    if value < 120:
        return f"{value:.0f}s"
    if value < 7200:
        return f"{value / 60:.0f}m"
    return f"{value / 3600:.1f}h"


def _sa_lines(sa: dict[str, Any]) -> list[str]:
    where = f"{sa['transport']} {sa['remote']}"
    if sa["connection"] is not None:
        where += f" conn {sa['connection']}"
    peer = sa["peer_id"] or "(not authenticated)"
    us = f" (us: {sa['local_id']})" if sa["local_id"] else ""
    lines = [
        f"IKE SA {sa['spi_i']}/{sa['spi_r']} {sa['state']}, {sa['role']}, age {_seconds(sa['age'])}",
        f"  peer {peer}{us} at {where}",
    ]
    if sa["proposal"]:
        timing = f"rekey in {_seconds(sa['rekey_in'])}, expires in {_seconds(sa['expires_in'])}"
        lines.append(f"  {sa['proposal']}; {timing}")
    if sa["rekeyed_from"]:
        lines.append(f"  rekeyed from IKE SA {sa['rekeyed_from']}")
    for child in sa["child_sas"]:
        lines.append(
            f"  Child SA {child['name']} {child['state']}: ESP in {child['inbound_spi']} "
            f"out {child['outbound_spi']} {child['mode']}, {child['proposal']}"
        )
        lines.append(
            f"    local {','.join(child['local_ts'])} remote {','.join(child['remote_ts'])}; "
            f"rekey in {_seconds(child['rekey_in'])}, expires in {_seconds(child['expires_in'])}"
        )
        esp = child.get("esp")
        if esp:
            lines.append(
                f"    ESP in {esp['packets_in']} packets ({esp['octets_in']} octets), "
                f"out {esp['packets_out']} packets ({esp['octets_out']} octets); dropped "
                f"{esp['replay_drops']} replayed, {esp['integrity_failures']} failing integrity, "
                f"{esp['malformed']} malformed"
            )
    if sa["esp_packets"]:
        lines.append(f"  ESP packets received: {sa['esp_packets']}")
    return lines


def render(command: str, result: Any) -> str:
    """The readable text of a ``command``'s result."""
    if command == "list-sas":
        if not result:
            return "no IKE SAs\n"
        lines: list[str] = []
        for sa in result:
            lines += _sa_lines(sa)
        return "\n".join(lines) + "\n"
    if command == "status":
        listeners = ", ".join(result["listeners"]) or "none"
        return (
            f"ikev2-responder {result['version']}, pid {result['pid']}, up {_seconds(result['uptime'])}\n"
            f"listening on {listeners}\n"
            f"IKE SAs: {result['ike_sas']} ({result['established']} established, "
            f"{result['half_open']} half-open); Child SAs: {result['child_sas']}; "
            f"connections: {result['connections']}; UDP sockets: {result['udp_sockets']}\n"
            + "".join(f"IMPAIRMENT ACTIVE: {name}\n" for name in result.get("impairments", ()))
        )
    if command == "reload":
        text = f"configuration reloaded: {result['kept']} IKE SA(s) kept\n"
        text += "".join(
            f"IKE SA {spi}: Delete sent (no peer covers it any more)\n" for spi in result["ended"]
        )
        if result["restart_needed"]:
            text += f"changed, applied only at a restart: {', '.join(result['restart_needed'])}\n"
        return text
    if command == "terminate":
        text = "".join(f"IKE SA {spi}: Delete sent\n" for spi in result["deleted"])
        return text + "".join(f"IKE SA {what}: left\n" for what in result["skipped"])
    lines = []
    for section, values in result.items():
        lines.append(f"{section}:")
        for key, value in values.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
            lines.append(f"  {key}: {value}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# The subcommands
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ikev2-responder",
        description="Ask the running ikev2-responder through its control socket.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "status": "version, uptime, listeners, how many SAs and connections",
        "list-sas": "every IKE SA and its Child SAs",
        "stats": "the counters: engine, connections, UDP sockets",
        "terminate": "delete IKE SAs (INFORMATIONAL Delete) by SPI or by peer identity",
        "reload": "read the configuration again (as SIGHUP does), keeping the IKE SAs it still allows",
    }
    for name in COMMANDS:
        sub = commands.add_parser(name, help=helps[name], description=helps[name])
        sub.add_argument("--control", metavar="PATH", help="the responder's control socket")
        sub.add_argument("--json", action="store_true", help="print the answer as JSON")
        if name == "terminate":
            which = sub.add_mutually_exclusive_group(required=True)
            which.add_argument("--ike", metavar="SPI", help="an SPI of the IKE SA in hex (either side's)")
            which.add_argument("--peer", metavar="ID", help="every IKE SA of this peer identity")
    return parser


def main(argv: Sequence[str], *, out: TextIO | None = None) -> int:
    """``ikev2-responder COMMAND [--control PATH] [--json] ...``; returns the exit status."""
    output = out or sys.stdout
    args = build_parser().parse_args(list(argv))
    fields: dict[str, Any] = {}
    if args.command == "terminate":
        fields = {"ike": args.ike} if args.ike is not None else {"peer": args.peer}
    try:
        path = Path(args.control) if args.control else default_control_path()
        result = request(path, args.command, **fields)
    except ControlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    output.write(json.dumps(result, indent=2) + "\n" if args.json else render(args.command, result))
    output.flush()
    return 0
