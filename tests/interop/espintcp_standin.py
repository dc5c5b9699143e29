#!/usr/bin/env python3
"""Userspace stand-in for the kernel's espintcp ULP, between pluto and the wire.

Strategy: libreswan's pluto relies on the kernel (``TCP_ULP "espintcp"``) to
add and strip the RFC 9329 Length field.  This kernel has no espintcp, and
with ``--impair tcp-skip-setsockopt-espintcp`` pluto writes ``IKETCP`` and then
bare ``[non-ESP marker][IKE message]`` records.  This process sits on pluto's
side of the TCP connection and does the kernel's part:

* role ``initiator`` (in front of an initiating pluto; its connection arrives
  through an nftables ``redirect``, the onward destination is read with
  ``SO_ORIGINAL_DST`` or given with ``--connect``): pluto -> wire adds
  ``Length = 2 + 4 + IKE length``; wire -> pluto strips it.  ``--tls`` wraps
  the onward stream in TLS (the ``IKETCP`` prefix travels inside it), to reach
  a 443 listener; the server is not verified, unless ``--tls-ca`` names a CA
  or ``--tls-fingerprint`` the SHA-256 fingerprint of its certificate (as the
  responder prints it for a self-signed one).
* role ``responder`` (in front of a listening pluto): wire -> pluto strips the
  Length, pluto -> wire adds it; ``--tls-cert/--tls-key`` terminate TLS.

Only IKE messages can be framed: pluto's ESP goes through the kernel, and bare
ESP has no length to frame it by, so a non-zero first word from pluto ends that
connection.  Standard library only; runs as a separate process inside the
namespace (``python espintcp_standin.py --help``).  It prints ``READY`` once it
listens and one line per record it forwards.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import select
import socket
import ssl
import struct
import sys
import threading
from typing import Protocol

PREFIX = b"IKETCP"
SO_ORIGINAL_DST = 80
IKE_HEADER = 28


class Stream(Protocol):
    def recv(self, n: int) -> bytes: ...
    def sendall(self, data: bytes) -> None: ...


class SerializedTls:
    """One TLS connection shared by the two pump threads, one OpenSSL call at a time.

    OpenSSL forbids using one ``SSL`` object from two threads at once, and a
    pump reads while the other writes (a TLS 1.3 client's read also consumes
    the server's NewSessionTicket).  Unserialized, a write racing that read
    could vanish and the handshake stall.  Here the socket is non-blocking,
    every ``SSL_read``/``SSL_write`` runs under one lock, and waiting for the
    kernel happens in ``select`` outside it.
    """

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        sock.setblocking(False)

    def _wait(self, want_write: bool) -> None:
        # Short timeout: the other thread may have moved records through OpenSSL meanwhile.
        if want_write:
            select.select([], [self._sock], [], 0.05)
        else:
            select.select([self._sock], [], [], 0.05)

    def recv(self, n: int) -> bytes:
        while True:
            with self._lock:
                try:
                    return self._sock.recv(n)
                except ssl.SSLWantReadError:
                    want_write = False
                except ssl.SSLWantWriteError:
                    want_write = True
            self._wait(want_write)

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            with self._lock:
                try:
                    view = view[self._sock.send(view) :]
                    continue
                except ssl.SSLWantWriteError:
                    want_write = True
                except ssl.SSLWantReadError:
                    want_write = False
            # The lock is free while we wait, so the reader can drain the peer's
            # records (both ends writing into full buffers must not deadlock); the
            # retry repeats the same bytes, as OpenSSL asks of a retried write.
            self._wait(want_write)

    def shutdown(self, how: int) -> None:
        with self._lock:
            socket.socket.shutdown(self._sock, how)

    def close(self) -> None:
        with self._lock:
            self._sock.close()

    def getpeername(self) -> object:
        return self._sock.getpeername()


def log(message: str) -> None:
    print(message, flush=True)


def recv_exact(sock: Stream, n: int) -> bytes | None:
    """n bytes, or None at a clean end of stream before the first byte."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            if buf:
                raise EOFError(f"stream ended inside a record ({len(buf)} of {n} bytes)")
            return None
        buf += chunk
    return bytes(buf)


def pump_add_length(src: Stream, dst: Stream, tag: str, expect_prefix: bool) -> None:
    """Unframed records from pluto -> RFC 9329 framed records."""
    if expect_prefix:
        prefix = recv_exact(src, len(PREFIX))
        if prefix != PREFIX:
            raise ValueError(f"{tag}: expected the IKETCP prefix, got {prefix!r}")
        dst.sendall(prefix)
        log(f"{tag}: prefix")
    while True:
        marker = recv_exact(src, 4)
        if marker is None:
            return
        if marker != b"\0\0\0\0":
            raise ValueError(
                f"{tag}: pluto sent a non-IKE record (first word {marker.hex()}); cannot frame it"
            )
        header = recv_exact(src, IKE_HEADER)
        if header is None:
            raise EOFError(f"{tag}: stream ended after a non-ESP marker")
        (length,) = struct.unpack("!I", header[24:28])
        if length < IKE_HEADER or length > 0xFFFF - 6:
            raise ValueError(f"{tag}: implausible IKE length {length}")
        rest = recv_exact(src, length - IKE_HEADER) if length > IKE_HEADER else b""
        if rest is None:
            raise EOFError(f"{tag}: stream ended inside an IKE message")
        record = marker + header + rest
        dst.sendall(struct.pack("!H", 2 + len(record)) + record)
        log(f"{tag}: IKE {length} bytes, framed as {2 + len(record)}")


def pump_strip_length(src: Stream, dst: Stream, tag: str, expect_prefix: bool) -> None:
    """RFC 9329 framed records -> unframed records for pluto."""
    if expect_prefix:
        prefix = recv_exact(src, len(PREFIX))
        if prefix != PREFIX:
            raise ValueError(f"{tag}: expected the IKETCP prefix, got {prefix!r}")
        dst.sendall(prefix)
        log(f"{tag}: prefix")
    while True:
        raw = recv_exact(src, 2)
        if raw is None:
            return
        (length,) = struct.unpack("!H", raw)
        if length < 2:
            raise ValueError(f"{tag}: Length {length} is invalid (RFC 9329 §3)")
        body = recv_exact(src, length - 2) if length > 2 else b""
        if body is None:
            raise EOFError(f"{tag}: stream ended after a Length field")
        dst.sendall(body)
        log(f"{tag}: record {length} bytes, {len(body)} to pluto")


Endpoint = socket.socket | SerializedTls


def run_pump(func: object, src: Endpoint, dst: Endpoint, tag: str, prefix: bool) -> None:
    try:
        func(src, dst, tag, prefix)  # type: ignore[operator]
    except Exception as exc:
        log(f"{tag}: closing: {exc}")
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def original_dst(sock: socket.socket) -> tuple[str, int]:
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port = struct.unpack("!H", raw[2:4])[0]
    return socket.inet_ntoa(raw[4:8]), port


def parse_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def normalize_fingerprint(text: str) -> str:
    """``AB:CD:...``, ``ab cd ...`` or ``abcd...`` -> ``abcd...``."""
    return "".join(ch for ch in text.lower() if ch in "0123456789abcdef")


def check_fingerprint(sock: ssl.SSLSocket, expected: str) -> None:
    """Raise unless the server's certificate has the SHA-256 fingerprint ``expected``."""
    der = sock.getpeercert(binary_form=True)
    actual = hashlib.sha256(der).hexdigest() if der else "(no certificate)"
    if actual != normalize_fingerprint(expected):
        raise ssl.SSLError(
            f"server certificate fingerprint {actual} is not {normalize_fingerprint(expected)}"
        )
    log(f"server certificate fingerprint verified: {actual}")


def handle(client: socket.socket, args: argparse.Namespace, server_tls: ssl.SSLContext | None) -> None:
    try:
        if args.role == "initiator":
            target = parse_hostport(args.connect) if args.connect else original_dst(client)
        else:
            target = parse_hostport(args.connect)
        near: Endpoint = client
        if server_tls is not None:
            near = SerializedTls(server_tls.wrap_socket(client, server_side=True))
        onward = socket.socket(socket.AF_INET6 if ":" in target[0] else socket.AF_INET, socket.SOCK_STREAM)
        if args.mark:
            onward.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, args.mark)
        if args.bind:
            onward.bind((args.bind, 0))
        onward.connect(target)
        far: Endpoint = onward
        if args.tls:
            ctx = (
                ssl.create_default_context(cafile=args.tls_ca)
                if args.tls_ca
                else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            )
            if not args.tls_ca:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if args.tls_keylog:
                ctx.keylog_filename = args.tls_keylog
            wrapped = ctx.wrap_socket(onward, server_hostname=args.tls_server_name or target[0])
            if args.tls_fingerprint:
                check_fingerprint(wrapped, args.tls_fingerprint)
            far = SerializedTls(wrapped)
        log(f"connection from {near.getpeername()} -> {target} (tls={bool(args.tls or server_tls)})")
    except Exception as exc:
        log(f"connection setup failed: {exc}")
        client.close()
        return
    if args.role == "initiator":  # client side is pluto
        to_wire = (pump_add_length, near, far, "pluto->wire", True)
        to_pluto = (pump_strip_length, far, near, "wire->pluto", False)
    else:  # client side is the wire
        to_pluto = (pump_strip_length, near, far, "wire->pluto", True)
        to_wire = (pump_add_length, far, near, "pluto->wire", False)
    threads = [threading.Thread(target=run_pump, args=spec, daemon=True) for spec in (to_wire, to_pluto)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    near.close()
    far.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--role", choices=("initiator", "responder"), required=True)
    parser.add_argument("--listen", required=True, help="HOST:PORT to accept on")
    parser.add_argument("--connect", help="HOST:PORT onward (default for role initiator: SO_ORIGINAL_DST)")
    parser.add_argument("--bind", help="source address for the onward connection")
    parser.add_argument("--mark", type=lambda s: int(s, 0), default=0, help="SO_MARK for the onward socket")
    parser.add_argument("--tls", action="store_true", help="wrap the onward stream in TLS (role initiator)")
    parser.add_argument("--tls-ca", help="CA file to verify the onward TLS server (default: no verification)")
    parser.add_argument("--tls-server-name", help="SNI for the onward TLS connection")
    parser.add_argument(
        "--tls-fingerprint",
        help="SHA-256 fingerprint (hex, colons optional) the onward TLS server must present",
    )
    parser.add_argument("--tls-keylog", help="NSS key log file for Wireshark")
    parser.add_argument("--tls-cert", help="terminate TLS with this certificate (role responder)")
    parser.add_argument("--tls-key", help="private key for --tls-cert")
    args = parser.parse_args(argv)
    if args.role == "responder" and not args.connect:
        parser.error("role responder needs --connect (pluto's TCP listener)")

    server_tls = None
    if args.tls_cert:
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_keylog:
            server_tls.keylog_filename = args.tls_keylog

    host, port = parse_hostport(args.listen)
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(16)
    log(f"READY {args.role} listening on {host}:{port}")
    try:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=handle, args=(client, args, server_tls), daemon=True).start()
    except KeyboardInterrupt:
        return 0
    finally:
        listener.close()


if __name__ == "__main__":
    sys.exit(main())
