"""Self-test of the libreswan fixtures and the espintcp stand-in.

A libreswan initiator reaches a libreswan responder over TCP, and over TLS on
443, with a stand-in on each side doing the kernel's RFC 9329 framing (see
espintcp_standin.py).  Both ``whack --showstates`` show an established
childless IKE SA, and the wire capture dissected with the shipped Lua dissector
shows the IKETCP prefix and every IKE message framed with a correct Length.

Topology: initiator namespace 198.51.100.1 (pluto; nftables redirects its TCP
to the local stand-in); responder namespace 198.51.100.2 (the stand-in, on the
wire address) and 10.255.0.2 on lo (pluto, --listen there only, so the
connection it sees never comes from its own address).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from tests.interop.conftest import TsharkHelper
from tests.interop.espintcp_standin import SerializedTls, pump_add_length, pump_strip_length
from tests.interop.lab import Lab, Proc, wait_until
from tests.interop.libreswan import ESPINTCP_STANDIN, Libreswan, PlutoConn, redirect_tcp
from tests.interop.tshark import find_all

INI, RESP, PLUTO_R = "198.51.100.1", "198.51.100.2", "10.255.0.2"
STANDIN_PORT = 14500
IKE_SA_INIT, IKE_AUTH = 34, 35


def _ike(length: int, exchange: int = IKE_SA_INIT, fill: int = 0xAB) -> bytes:
    header = bytes(8) + bytes(8) + bytes([33, 0x20, exchange, 0x08]) + bytes(4) + struct.pack("!I", length)
    return header + bytes([fill]) * (length - 28)


def _run_pump(pump: Callable[..., None], data: bytes, prefix: bool) -> bytes:
    a_in, a_out = socket.socketpair()
    b_in, b_out = socket.socketpair()
    with a_in, a_out, b_in, b_out:
        t = threading.Thread(target=pump, args=(a_out, b_in, "test", prefix))
        t.start()
        a_in.sendall(data)
        a_in.shutdown(socket.SHUT_WR)
        t.join(5)
        b_in.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := b_out.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_standin_adds_and_strips_rfc9329_length() -> None:
    one, two = _ike(100), _ike(40, IKE_AUTH, 0xCD)
    unframed = b"IKETCP" + b"\0\0\0\0" + one + b"\0\0\0\0" + two
    framed = (
        b"IKETCP" + struct.pack("!H", 106) + b"\0\0\0\0" + one + struct.pack("!H", 46) + b"\0\0\0\0" + two
    )
    assert _run_pump(pump_add_length, unframed, prefix=True) == framed
    assert _run_pump(pump_strip_length, framed, prefix=True) == unframed
    # pluto's bare ESP cannot be framed (no length): the pump stops instead of guessing.
    with (
        _pair_with(b"\x12\x34\x56\x78" + bytes(40)) as (src, dst),
        pytest.raises(ValueError, match="non-IKE"),
    ):
        pump_add_length(src, dst, "test", False)
    with _pair_with(b"\x00\x01") as (src, dst), pytest.raises(ValueError, match="Length 1"):
        pump_strip_length(src, dst, "test", False)


@contextlib.contextmanager
def _pair_with(data: bytes) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A source socket holding ``data`` then EOF, and a sink."""
    src_w, src_r = socket.socketpair()
    dst_r, dst_w = socket.socketpair()
    with src_w, src_r, dst_r, dst_w:
        src_w.sendall(data)
        src_w.shutdown(socket.SHUT_WR)
        yield src_r, dst_w


def test_standin_tls_carries_both_directions_at_once() -> None:
    """Both pump threads use one TLS connection at the same time (a write races
    the read that consumes TLS 1.3 session tickets); every byte arrives, in order."""
    ca = trustme.CA()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("standin.test").configure_cert(server_ctx)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client_ctx)
    raw_c, raw_s = socket.socketpair()
    accepted: list[ssl.SSLSocket] = []
    handshake = threading.Thread(
        target=lambda: accepted.append(server_ctx.wrap_socket(raw_s, server_side=True))
    )
    handshake.start()
    client = SerializedTls(client_ctx.wrap_socket(raw_c, server_hostname="standin.test"))
    handshake.join(10)
    server = SerializedTls(accepted[0])
    records = [bytes([i % 251]) * (1 + (i * 37) % 3000) for i in range(300)]
    expected = b"".join(records)
    got: dict[str, bytes] = {}

    def write(end: SerializedTls) -> None:
        for record in records:
            end.sendall(record)

    def read(end: SerializedTls, name: str) -> None:
        buf = bytearray()
        while len(buf) < len(expected):
            buf += end.recv(65536)
        got[name] = bytes(buf)

    threads = [
        threading.Thread(target=write, args=(client,)),
        threading.Thread(target=write, args=(server,)),
        threading.Thread(target=read, args=(client, "client")),
        threading.Thread(target=read, args=(server, "server")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    client.close()
    server.close()
    assert got == {"client": expected, "server": expected}


def test_standin_cli_help() -> None:
    out = subprocess.run(
        [sys.executable, str(ESPINTCP_STANDIN), "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert "--role" in out and "--tls" in out


@pytest.mark.interop
@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_libreswan_over_tcp_through_standins(
    transport: str,
    netns: Lab,
    libreswan: Callable[..., Libreswan],
    standin: Callable[..., Proc],
    tshark: TsharkHelper,
    tmp_path: Path,
) -> None:
    tls = transport == "tls"
    port = 443 if tls else 4500
    ini_ns, resp_ns = netns.pair(f"{INI}/24", f"{RESP}/24", hints=("ini", "resp"))
    resp_ns.add_local_addresses([f"{PLUTO_R}/32"])
    capture = tshark.capture(ini_ns, "veth0", f"wire-{transport}")

    resp = libreswan(resp_ns, "resp", listen_tcp=True, listen=PLUTO_R)
    resp.configure(
        PlutoConn(
            left=PLUTO_R, right="%any", leftid="@responder.lab", rightid="@initiator.lab", tcp_remoteport=None
        )
    )
    ini = libreswan(ini_ns, "ini", impairs=("tcp-skip-setsockopt-espintcp", "omit-v2-ike-auth-child"))
    ini.configure(
        PlutoConn(
            left=INI, right=RESP, leftid="@initiator.lab", rightid="@responder.lab", tcp_remoteport=port
        )
    )
    resp.start()
    ini.start()

    keylog = tmp_path / "tls-keys.log"
    cert_pem, key_pem = tmp_path / "responder.pem", tmp_path / "responder.key"
    if tls:
        issued = trustme.CA().issue_cert("responder.lab")
        issued.cert_chain_pems[0].write_to_path(str(cert_pem))
        issued.private_key_pem.write_to_path(str(key_pem))
    redirect_tcp(ini_ns, port, STANDIN_PORT)
    standin(
        ini_ns,
        role="initiator",
        listen=f"0.0.0.0:{STANDIN_PORT}",
        tls=tls,
        tls_keylog=keylog if tls else None,
    )
    standin(
        resp_ns,
        role="responder",
        listen=f"{RESP}:{port}",
        connect=f"{PLUTO_R}:4500",
        bind=RESP,
        tls_cert=cert_pem if tls else None,
        tls_key=key_pem if tls else None,
    )

    ini.initiate("lab")
    wait_until(
        lambda: ini.ike_established() and resp.ike_established(), 20, "IKE SA established on both sides"
    )
    ini_states, resp_states = ini.showstates(), resp.showstates()
    assert f'"lab":{port}(tcp) STATE_V2_ESTABLISHED_IKE_SA' in ini_states, ini_states
    assert "(tcp) STATE_V2_ESTABLISHED_IKE_SA" in resp_states, resp_states
    assert "childless" in resp.log_text() or "Child SA" not in resp_states

    packets = tshark.dissect(capture.stop(), prefs=[f"tls.keylog_file:{keylog}"] if tls else [])
    prefixes = [v for p in packets for v in find_all(p, "rfc9329.prefix")]
    assert prefixes == ["IKETCP"]
    messages = [(p, m) for p in packets for m in find_all(p, "isakmp")]
    exchanges = [int(m["isakmp.exchangetype"]) for _, m in messages]
    assert exchanges == [IKE_SA_INIT, IKE_SA_INIT, IKE_AUTH, IKE_AUTH]
    lengths = [int(v) for p in packets for v in find_all(p, "rfc9329.length")]
    assert lengths == [int(m["isakmp.length"]) + 6 for _, m in messages]
    if tls:
        assert all("tls" in p["frame"]["frame.protocols"].split(":") for p, _ in messages)
