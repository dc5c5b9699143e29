"""libreswan (pluto) against the CLI-started responder over RFC 9329 TCP and TLS.

Topology: the initiator namespace holds pluto on 198.51.100.1 and the
espintcp stand-in (nftables redirects pluto's connection to it; it adds the
RFC 9329 Length field pluto leaves to the kernel, and for TLS wraps the stream
in TLS, checking the certificate fingerprint the responder printed).  The
responder namespace holds ``python -m responder --tcp 198.51.100.2:4500`` (or
``--tls 198.51.100.2:443``) ``--psk ... --id @responder.lab --keylog DIR``.

pluto cannot install Child SAs here, so it runs childless
(``--impair omit-v2-ike-auth-child``, RFC 6023).  Its connection has
``dpddelay=2``/``dpdtimeout=10``, but libreswan 4.10 schedules IKEv2 liveness
probes only for Child SAs: a childless IKE SA never gets one on its own, so the
test starts pluto's own liveness exchange with ``--impair
initiate-v2-liveness:SERIAL`` (the probe pluto would send on ``dpddelay``, sent
now).  pluto runs with ``plutodebug=base`` so that its log shows the response
being processed and the NAT detection outcome.

:func:`run_libreswan` is shared with test_responder_tshark.py, which decrypts
the same kind of capture with the responder's key log.
"""

from __future__ import annotations

import hashlib
import re
import signal
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import trustme

from tests.interop.conftest import Capture, TsharkHelper
from tests.interop.espintcp_standin import check_fingerprint
from tests.interop.lab import Lab, Proc, wait_until
from tests.interop.libreswan import Libreswan, PlutoConn, redirect_tcp
from tests.interop.responder_proc import Responder

INI, RESP = "198.51.100.1", "198.51.100.2"
STANDIN_PORT = 14500
PSK = "interop-libreswan-psk"
PORTS = {"tcp": 4500, "tls": 443}
LIVENESS_RESPONSE = "received an INFORMATIONAL liveness check response"


@dataclass
class LibreswanRun:
    """What :func:`run_libreswan` leaves behind: every party still running, the capture still on."""

    transport: str
    port: int
    pluto: Libreswan
    responder: Responder
    standin: Proc
    capture: Capture
    serial: int  # pluto's IKE SA serial number
    init_line: str  # the responder's IKE_SA_INIT log line
    auth_line: str  # the responder's IKE_AUTH log line
    liveness_line: str  # the responder's INFORMATIONAL (liveness) log line


def run_libreswan(
    transport: str,
    *,
    netns: Lab,
    libreswan: Callable[..., Libreswan],
    standin: Callable[..., Proc],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
) -> LibreswanRun:
    """pluto establishes a childless IKE SA over ``transport`` (tcp or tls), then one liveness exchange."""
    port = PORTS[transport]
    ini_ns, resp_ns = netns.pair(f"{INI}/24", f"{RESP}/24", hints=("pluto", "resp"))
    capture = tshark.capture(resp_ns, "veth0", f"libreswan-{transport}")
    resp = responder(resp_ns, **{transport: [f"{RESP}:{port}"]}, psk=PSK, local_id="@responder.lab")
    pluto = libreswan(
        ini_ns, "pluto", impairs=("tcp-skip-setsockopt-espintcp", "omit-v2-ike-auth-child"), debug="base"
    )
    pluto.configure(
        PlutoConn(
            left=INI,
            right=RESP,
            leftid="@initiator.lab",
            rightid="@responder.lab",
            psk=PSK,
            tcp_remoteport=port,
            extra={"dpddelay": "2", "dpdtimeout": "10"},
        )
    )
    pluto.start()
    redirect_tcp(ini_ns, port, STANDIN_PORT)
    proc = standin(
        ini_ns,
        role="initiator",
        listen=f"0.0.0.0:{STANDIN_PORT}",
        tls=transport == "tls",
        tls_fingerprint=resp.fingerprint() if transport == "tls" else None,
    )

    pluto.initiate("lab")
    wait_until(pluto.ike_established, 15, "pluto's IKE SA to be established")
    match = re.search(r'#(\d+): "lab":\d+\(tcp\) STATE_V2_ESTABLISHED_IKE_SA', pluto.showstates())
    assert match is not None, pluto.showstates()
    serial = int(match.group(1))
    init_line = resp.wait_answered("IKE_SA_INIT")
    auth_line = resp.wait_answered("IKE_AUTH")

    pluto.whack("--impair", f"initiate-v2-liveness:{serial}")
    liveness_line = resp.wait_answered("INFORMATIONAL", "liveness check")
    wait_until(lambda: LIVENESS_RESPONSE in pluto.log_text(), 10, "pluto to process the liveness response")
    return LibreswanRun(
        transport, port, pluto, resp, proc, capture, serial, init_line, auth_line, liveness_line
    )


def _connection(line: str) -> str:
    """``tcp 198.51.100.1:40312 conn 1`` (the peer half of a responder log line)."""
    match = re.search(r"\b(tcp|tls) \S+ conn \d+", line)
    assert match is not None, line
    return match.group(0)


def _check_run(run: LibreswanRun) -> None:
    pluto, resp = run.pluto, run.responder
    states = pluto.showstates()
    # The IKE SA is up over TCP on the port asked for, and childless.
    assert f'"lab":{run.port}(tcp) STATE_V2_ESTABLISHED_IKE_SA' in states, states
    assert "IPsec SAs: total(0)" in pluto.whack("--status")
    log = pluto.log_text()
    assert "initiator established IKE SA; authenticated peer using authby=secret and ID_FQDN " in log
    assert "'@responder.lab'" in log
    assert "IKE_AUTH response omitted CHILD SA payloads" in log
    assert "childless (RFC 6023)" in run.auth_line and "initiator.lab" in run.auth_line
    # pluto's liveness probe was answered: pluto processed the response to its request #2.
    assert LIVENESS_RESPONSE in log
    assert re.search(rf"Message ID: IKE #{run.serial} updating initiator received message response 2\b", log)
    assert "INFORMATIONAL #2 answered: liveness check" in run.liveness_line
    # RFC 9329 §6.5 (A44): the responder's NAT_DETECTION payloads are computed over TCP
    # addresses and ports.  Its source hash (198.51.100.2, the listener's port) matches what
    # pluto expects; the destination hash carries the stand-in's source port, not pluto's,
    # so pluto finds itself behind a NAT -- and nothing changes: the IKE SA stays on TCP.
    assert "NAT_TRAVERSAL that end is NOT behind NAT" in log
    assert "NAT_TRAVERSAL this end is behind NAT" in log
    # RFC 9329 §6.1 (A35, A36): one connection carried everything, and the responder answered
    # every exchange on it.
    assert pluto.ike_established()
    assert run.standin.log_text().count("connection from") == 1
    conns = {_connection(line) for line in (run.init_line, run.auth_line, run.liveness_line)}
    assert len(conns) == 1, conns
    assert conns.pop().startswith(run.transport)
    # Bad input never showed up: nothing was dropped or refused.
    assert not resp.lines(r"message dropped|refused with|closing|Traceback")


@pytest.mark.interop
@pytest.mark.hard_timeout(60)
def test_a3_a44_libreswan_tcp_4500_childless_liveness(
    netns: Lab,
    libreswan: Callable[..., Libreswan],
    standin: Callable[..., Proc],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
) -> None:
    run = run_libreswan(
        "tcp", netns=netns, libreswan=libreswan, standin=standin, responder=responder, tshark=tshark
    )
    _check_run(run)
    # RFC 9329 §2 (A3): TCP port 4500; the stand-in framed pluto's messages (A16) and the
    # responder accepted them after the IKETCP prefix (A9).
    assert run.responder.lines(r"listening on tcp://198\.51\.100\.2:4500")
    standin_log = run.standin.log_text()
    assert "pluto->wire: prefix" in standin_log
    assert standin_log.count("pluto->wire: IKE") == 3  # IKE_SA_INIT, IKE_AUTH, INFORMATIONAL
    assert standin_log.count("wire->pluto: record") == 3
    # The libreswan connection the CLI printed for this listener matches what pluto needed.
    conn = run.responder.snippet("libreswan ipsec.conf")
    for line in ("enable-tcp=yes", "tcp-remoteport=4500", f"right={RESP}", "rightid=@responder.lab"):
        assert line in conn.splitlines() or f"    {line}" in conn.splitlines(), (line, conn)
    assert f'PSK "{PSK}"' in run.responder.snippet("libreswan ipsec.secrets")
    assert run.responder.stop() == 0  # SIGTERM -> clean exit


@pytest.mark.interop
@pytest.mark.hard_timeout(60)
def test_a4_a67_libreswan_tls_443_childless_liveness(
    netns: Lab,
    libreswan: Callable[..., Libreswan],
    standin: Callable[..., Proc],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
) -> None:
    run = run_libreswan(
        "tls", netns=netns, libreswan=libreswan, standin=standin, responder=responder, tshark=tshark
    )
    _check_run(run)
    # RFC 9329 §2, Appendix A (A4, A67): TLS on an alternate port (443) with a self-signed
    # certificate whose printed fingerprint the stand-in verified before sending anything.
    fingerprint = run.responder.fingerprint().replace(":", "").lower()
    assert f"server certificate fingerprint verified: {fingerprint}" in run.standin.log_text()
    assert "(tls=True)" in run.standin.log_text()
    assert run.responder.lines(r"listening on tls://198\.51\.100\.2:443")
    tls_note = run.responder.snippet("TLS")
    assert f"tls://{RESP}:443" in tls_note and run.responder.fingerprint() in tls_note
    assert run.responder.stop(signal.SIGINT) == 0  # Ctrl-C -> clean exit


def test_standin_verifies_the_printed_fingerprint() -> None:
    """The stand-in's ``--tls-fingerprint`` check accepts the right certificate and refuses another."""
    issued = trustme.CA().issue_cert("responder.lab")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    issued.configure_cert(server_ctx)
    der = ssl.PEM_cert_to_DER_cert(issued.cert_chain_pems[0].bytes().decode())
    digest = hashlib.sha256(der).hexdigest()
    printed = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)).upper()
    for expected, ok in ((printed, True), (digest, True), ("00" * 32, False)):
        a, b = socket.socketpair()
        with a, b:
            server = threading.Thread(target=_tls_accept, args=(server_ctx, b), daemon=True)
            server.start()
            client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            client_ctx.check_hostname = False
            client_ctx.verify_mode = ssl.CERT_NONE
            with client_ctx.wrap_socket(a, server_hostname="responder.lab") as tls:
                if ok:
                    check_fingerprint(tls, expected)
                else:
                    with pytest.raises(ssl.SSLError, match="fingerprint"):
                        check_fingerprint(tls, expected)
            server.join(5)


def _tls_accept(ctx: ssl.SSLContext, sock: socket.socket) -> None:
    try:
        with ctx.wrap_socket(sock, server_side=True) as tls:
            tls.recv(1)
    except (OSError, ssl.SSLError):
        pass
