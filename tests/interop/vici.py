"""A minimal client for strongSwan's vici protocol (no third-party package needed).

Strategy: vici is length-prefixed packets over a UNIX socket (strongSwan's
``src/libcharon/plugins/vici/README.md``).  We speak only what the harness
needs: commands, streamed commands (``list-sas`` with ``list-sa`` events,
``initiate`` with ``control-log``), and event subscriptions collected by a
background thread (:class:`EventLog`).  Messages decode to nested dicts of
``str``/``list[str]``/``dict``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["EventLog", "Vici", "ViciError", "decode_message", "encode_message"]

CMD_REQUEST, CMD_RESPONSE, CMD_UNKNOWN = 0, 1, 2
EVENT_REGISTER, EVENT_UNREGISTER, EVENT_CONFIRM, EVENT_UNKNOWN, EVENT = 3, 4, 5, 6, 7
SECTION_START, SECTION_END, KEY_VALUE, LIST_START, LIST_ITEM, LIST_END = 1, 2, 3, 4, 5, 6

Message = dict[str, Any]


class ViciError(RuntimeError):
    """A vici command failed or the daemon answered something unexpected."""


def encode_message(msg: Message) -> bytes:
    out = bytearray()

    def value(v: str | bytes | int) -> bytes:
        raw = v if isinstance(v, bytes) else str(v).encode()
        return struct.pack("!H", len(raw)) + raw

    def name(n: str) -> bytes:
        raw = n.encode()
        return bytes([len(raw)]) + raw

    def walk(m: Message) -> None:
        for key, v in m.items():
            if isinstance(v, dict):
                out.append(SECTION_START)
                out.extend(name(key))
                walk(v)
                out.append(SECTION_END)
            elif isinstance(v, list):
                out.append(LIST_START)
                out.extend(name(key))
                for item in v:
                    out.append(LIST_ITEM)
                    out.extend(value(item))
                out.append(LIST_END)
            else:
                out.append(KEY_VALUE)
                out.extend(name(key))
                out.extend(value(v))

    walk(msg)
    return bytes(out)


def decode_message(data: bytes) -> Message:
    root: Message = {}
    stack: list[Message] = [root]
    current_list: list[str] | None = None
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise ViciError("truncated vici message")
        chunk = data[pos : pos + n]
        pos += n
        return chunk

    def name() -> str:
        return take(take(1)[0]).decode()

    def value() -> str:
        (n,) = struct.unpack("!H", take(2))
        return take(n).decode(errors="replace")

    while pos < len(data):
        kind = take(1)[0]
        if kind == SECTION_START:
            section: Message = {}
            stack[-1][name()] = section
            stack.append(section)
        elif kind == SECTION_END:
            stack.pop()
        elif kind == KEY_VALUE:
            key = name()
            stack[-1][key] = value()
        elif kind == LIST_START:
            current_list = []
            stack[-1][name()] = current_list
        elif kind == LIST_ITEM:
            if current_list is None:
                raise ViciError("list item outside a list")
            current_list.append(value())
        elif kind == LIST_END:
            current_list = None
        else:
            raise ViciError(f"unknown vici element {kind}")
    return root


class Vici:
    """One connection to a charon's vici socket."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Vici:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, kind: int, name: str | None = None, msg: Message | None = None) -> None:
        body = bytes([kind])
        if name is not None:
            body += bytes([len(name)]) + name.encode()
        if msg is not None:
            body += encode_message(msg)
        self.sock.sendall(struct.pack("!I", len(body)) + body)

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ViciError("vici socket closed")
            buf += chunk
        return bytes(buf)

    def recv(self) -> tuple[int, str | None, Message]:
        (length,) = struct.unpack("!I", self._recv_exact(4))
        body = self._recv_exact(length)
        kind, pos, name = body[0], 1, None
        if kind == EVENT:
            n = body[1]
            name, pos = body[2 : 2 + n].decode(), 2 + n
        return kind, name, decode_message(body[pos:]) if kind in (CMD_RESPONSE, EVENT) else {}

    def register(self, event: str) -> None:
        self._send(EVENT_REGISTER, event)
        kind, _, _ = self.recv()
        if kind != EVENT_CONFIRM:
            raise ViciError(f"event {event!r} not confirmed ({kind})")

    def request(self, command: str, msg: Message | None = None) -> Message:
        """Send a command and return its response; raises on ``success = no``."""
        return self.streamed(command, msg, None)[1]

    def streamed(
        self,
        command: str,
        msg: Message | None,
        event: str | None,
        on_event: Callable[[Message], None] | None = None,
    ) -> tuple[list[Message], Message]:
        """Run a command that streams ``event`` messages before its response."""
        if event is not None:
            self.register(event)
        events: list[Message] = []
        try:
            self._send(CMD_REQUEST, command, msg or {})
            while True:
                kind, name, body = self.recv()
                if kind == EVENT and name == event:
                    events.append(body)
                    if on_event is not None:
                        on_event(body)
                elif kind == CMD_RESPONSE:
                    break
                elif kind == CMD_UNKNOWN:
                    raise ViciError(f"unknown vici command {command!r}")
        finally:
            if event is not None:
                self._send(EVENT_UNREGISTER, event)
                kind, _, _ = self.recv()
        if body.get("success") == "no":
            raise ViciError(f"{command}: {body.get('errmsg', body)}")
        return events, body


class EventLog:
    """Collects vici events in a background thread; tests wait on them."""

    DEFAULT_EVENTS = ("ike-updown", "child-updown", "ike-rekey", "child-rekey", "log")

    def __init__(self, path: str, events: tuple[str, ...] = DEFAULT_EVENTS) -> None:
        self.conn = Vici(path, timeout=None)  # type: ignore[arg-type]
        for event in events:
            self.conn.register(event)
        self.events: list[tuple[float, str, Message]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, name=f"vici-events {path}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            while True:
                kind, name, body = self.conn.recv()
                if kind == EVENT and name is not None:
                    with self._cond:
                        self.events.append((time.monotonic(), name, body))
                        self._cond.notify_all()
        except (OSError, ViciError):
            return

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()
        self._thread.join(5)

    def of(self, name: str) -> list[Message]:
        with self._cond:
            return [body for _, n, body in self.events if n == name]

    def wait_for(
        self,
        name: str,
        predicate: Callable[[Message], bool] = lambda _m: True,
        timeout: float = 30.0,
        start: int = 0,
    ) -> Message:
        """Return the first event ``name`` (from index ``start``) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for _, n, body in self.events[start:]:
                    if n == name and predicate(body):
                        return body
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no {name!r} event matching within {timeout:.1f}s; "
                        f"saw {[n for _, n, _ in self.events if n != 'log']}"
                    )
                self._cond.wait(remaining)

    def mark(self) -> int:
        """An index to pass as ``start`` so that only later events count."""
        with self._cond:
            return len(self.events)
