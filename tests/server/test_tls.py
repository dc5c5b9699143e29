"""TLS for RFC 9329 Appendix A: the server context (RFC 9325 parameters) and TLS streams.

Handshakes run over memory streams through
:func:`~responder.server.streams.serve_stream_listener` with a ``tls``
listener, so what is tested is what the server does with each connection.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import ssl
import tempfile
import warnings
from contextlib import AbstractAsyncContextManager
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from responder.core.path import Transport
from responder.core.tcp_framing import frame_ike
from responder.server.tls import SELF_SIGNED_NAME, self_signed_certificate, server_context
from tests.server.fakes import RecordingEngine, Server, serving

PREFIX = b"IKETCP"
IKE = bytes(28) + b"inside TLS"
NAME = "responder.example.test"


def tls_serving(context: ssl.SSLContext, **limits: Any) -> AbstractAsyncContextManager[Server]:
    """A TLS listener whose engine echoes every IKE message back."""
    return serving(RecordingEngine(echo=True), ssl_context=context, **limits)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trustme_context(ca: trustme.CA, tmp_path: Path) -> ssl.SSLContext:
    leaf = ca.issue_cert(NAME, "127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    context, _ = server_context(cert, key, None)
    return context


def client_context(
    ca: trustme.CA | None = None,
    *,
    minimum: ssl.TLSVersion | None = None,
    maximum: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is not None:
        ca.configure_trust(context)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is deprecated: that is the point
        if ciphers is not None:
            context.set_ciphers(ciphers)
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
    return context


async def connect(
    server: Server, context: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> trio.SSLStream[trio.abc.Stream]:
    raw = await server.listener.connect()
    stream = trio.SSLStream(raw, context, server_hostname=NAME)
    if session is not None:
        stream.session = session
    with trio.fail_after(5):
        await stream.do_handshake()
    return stream


async def exchange(stream: trio.abc.Stream, message: bytes = IKE, *, prefix: bool = True) -> bytes:
    """Send one framed IKE message (after the prefix) and read the echo engine's answer."""
    await stream.send_all((PREFIX if prefix else b"") + frame_ike(message))
    expected = len(frame_ike(b"re:" + message))
    received = b""
    with trio.fail_after(5):
        while len(received) < expected:
            received += await stream.receive_some()
    return received


async def refused(server: Server, context: ssl.SSLContext) -> None:
    """A handshake that the server must refuse: the client sees it fail, the server counts it."""
    raw = await server.listener.connect()
    stream = trio.SSLStream(raw, context, server_hostname=NAME)
    with trio.fail_after(5), pytest.raises(trio.BrokenResourceError):
        await stream.do_handshake()
    await trio.aclose_forcefully(stream)
    await trio.testing.wait_all_tasks_blocked()
    assert server.engine.calls == []
    assert server.table.stats["tls_failed"] >= 1


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------


async def test_trustme_certificate_tls13_handshake_and_a14_prefix_inside_tls(
    ca: trustme.CA, trustme_context: ssl.SSLContext
) -> None:
    """Row A14: the "IKETCP" prefix and the frames travel inside TLS 1.3; the client verifies the server."""
    async with tls_serving(trustme_context) as server:
        stream = await connect(server, client_context(ca))
        assert stream.version() == "TLSv1.3"
        assert await exchange(stream) == frame_ike(b"re:" + IKE)
        assert server.engine.ike() == [IKE]
        assert server.engine.paths("ike")[0].transport is Transport.TLS


async def test_a14_prefix_outside_tls_is_refused(trustme_context: ssl.SSLContext) -> None:
    """Row A14: on a TLS port a cleartext "IKETCP" is not a TLS ClientHello: closed, nothing attached."""
    async with tls_serving(trustme_context) as server:
        raw = await server.listener.connect()
        await raw.send_all(PREFIX + frame_ike(IKE))
        with trio.fail_after(5):
            while await raw.receive_some():
                pass  # the server's alert, then EOF
        await trio.testing.wait_all_tasks_blocked()
        assert server.engine.calls == []
        assert server.table.stats["tls_failed"] == 1


async def test_tls12_handshake_uses_ecdhe_aead(ca: trustme.CA, trustme_context: ssl.SSLContext) -> None:
    async with tls_serving(trustme_context) as server:
        stream = await connect(server, client_context(ca, maximum=ssl.TLSVersion.TLSv1_2))
        assert stream.version() == "TLSv1.2"
        cipher = stream.cipher()
        assert cipher is not None and cipher[0].startswith("ECDHE-") and "GCM" in cipher[0]
        assert await exchange(stream) == frame_ike(b"re:" + IKE)


async def test_self_signed_context_and_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without cert/key a self-signed certificate is made; its files are gone once loaded."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    context, fingerprint = server_context(None, None, None)
    assert list(scratch.iterdir()) == []  # the private directory was removed after loading
    async with tls_serving(context) as server:
        stream = await connect(server, client_context())
        der = stream.getpeercert(binary_form=True)
        assert der is not None
        assert fingerprint == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
        assert await exchange(stream) == frame_ike(b"re:" + IKE)


def test_self_signed_certificate_contents() -> None:
    now = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    cert_pem, key_pem = self_signed_certificate(now=now)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SELF_SIGNED_NAME
    assert cert.issuer == cert.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [SELF_SIGNED_NAME]
    assert san.get_values_for_type(x509.IPAddress) == [ip_address("127.0.0.1"), ip_address("::1")]
    assert cert.not_valid_before_utc == now - datetime.timedelta(hours=1)
    assert cert.not_valid_after_utc == now - datetime.timedelta(hours=1) + datetime.timedelta(days=365)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    cert.verify_directly_issued_by(cert)
    assert cert.signature_hash_algorithm is not None
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert b"PRIVATE KEY" in key_pem


def test_cert_without_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="give both or neither"):
        server_context(tmp_path / "cert.pem", None)


# ---------------------------------------------------------------------------
# RFC 9325 parameters (A67), no client certificate (A68), resumption (A69)
# ---------------------------------------------------------------------------


async def test_a67_tls11_client_refused(trustme_context: ssl.SSLContext) -> None:
    """Row A67 / RFC 9325 §3.1: TLS below 1.2 is refused by the server."""
    assert trustme_context.minimum_version is ssl.TLSVersion.TLSv1_2
    context = client_context(
        minimum=ssl.TLSVersion.TLSv1_1, maximum=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT:@SECLEVEL=0"
    )
    async with tls_serving(trustme_context) as server:
        await refused(server, context)


@pytest.mark.parametrize(
    "ciphers",
    [
        "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA",  # CBC
        "ECDHE-ECDSA-NULL-SHA:NULL-SHA256:NULL-SHA:@SECLEVEL=0",  # NULL
    ],
    ids=["cbc", "null"],
)
async def test_a67_tls12_cbc_or_null_only_client_refused(
    ciphers: str, trustme_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    """Row A67 / RFC 9325 §4.1, §4.2: TLS 1.2 offers with only CBC or NULL suites find no shared cipher."""
    caplog.set_level(logging.INFO, "responder.server.streams")
    async with tls_serving(trustme_context) as server:
        await refused(server, client_context(maximum=ssl.TLSVersion.TLSv1_2, ciphers=ciphers))
    assert "no shared cipher" in caplog.text.lower()


async def test_a67_tls12_rsa_key_exchange_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Row A67 / RFC 9325 §4.1: no static RSA key exchange, even with an RSA certificate."""
    caplog.set_level(logging.INFO, "responder.server.streams")
    leaf = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert(NAME, key_type=trustme.KeyType.RSA)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(leaf.cert_chain_pems[0].bytes())
    key.write_bytes(leaf.private_key_pem.bytes())
    context, _ = server_context(cert, key)
    async with tls_serving(context) as server:
        await refused(
            server,
            client_context(maximum=ssl.TLSVersion.TLSv1_2, ciphers="AES128-GCM-SHA256:AES256-GCM-SHA384"),
        )
        stream = await connect(server, client_context(maximum=ssl.TLSVersion.TLSv1_2))
        cipher = stream.cipher()
        assert cipher is not None and cipher[0].startswith("ECDHE-RSA-")
    assert "no shared cipher" in caplog.text.lower()


def test_a67_no_compression_no_renegotiation(trustme_context: ssl.SSLContext) -> None:
    """Row A67 / RFC 9325 §3.3, §3.5."""
    assert trustme_context.options & ssl.OP_NO_COMPRESSION
    assert trustme_context.options & ssl.OP_NO_RENEGOTIATION
    names = {cipher["name"] for cipher in trustme_context.get_ciphers()}
    tls12 = {c["name"] for c in trustme_context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 and all(n.startswith("ECDHE-") and ("GCM" in n or "CHACHA20" in n) for n in tls12)
    assert not any("NULL" in n or "CBC" in n or n.endswith("-SHA") for n in names)


async def test_a68_no_client_certificate_requested(ca: trustme.CA, trustme_context: ssl.SSLContext) -> None:
    """Row A68: the server sends no CertificateRequest; a client that has a certificate never sends it."""
    assert trustme_context.verify_mode is ssl.CERT_NONE
    client = client_context(ca)
    ca.issue_cert("alice@example.org").configure_cert(client)
    client_end, server_end = trio.testing.memory_stream_pair()
    server_stream = trio.SSLStream(server_end, trustme_context, server_side=True)
    client_stream = trio.SSLStream(client_end, client, server_hostname=NAME)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server_stream.do_handshake)
            nursery.start_soon(client_stream.do_handshake)
    assert server_stream.getpeercert(binary_form=True) is None
    assert server_stream.getpeercert() is None


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls13", "tls12"])
async def test_a69_session_resumption_on_reconnect(
    version: ssl.TLSVersion, ca: trustme.CA, trustme_context: ssl.SSLContext
) -> None:
    """Row A69: a reconnecting Originator resumes its TLS session (tickets)."""
    context = client_context(ca, maximum=version)
    async with tls_serving(trustme_context) as server:
        first = await connect(server, context)
        await exchange(first)  # reading lets the client take the TLS 1.3 tickets
        session = first.session
        assert session is not None and session.has_ticket
        assert not first.session_reused
        await first.aclose()
        second = await connect(server, context, session)
        assert second.session_reused
        assert await exchange(second, b"after reconnect") == frame_ike(b"re:after reconnect")
        assert server.engine.ike() == [IKE, b"after reconnect"]


# ---------------------------------------------------------------------------
# Key log, timeouts, shutdown
# ---------------------------------------------------------------------------


async def test_keylog_file_written(ca: trustme.CA, tmp_path: Path) -> None:
    leaf = ca.issue_cert(NAME)
    cert, key, keylog = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "tls-keys.log"
    cert.write_bytes(leaf.cert_chain_pems[0].bytes())
    key.write_bytes(leaf.private_key_pem.bytes())
    context, _ = server_context(cert, key, keylog)
    async with tls_serving(context) as server:
        tls13 = await connect(server, client_context(ca))
        await exchange(tls13)
        tls12 = await connect(server, client_context(ca, maximum=ssl.TLSVersion.TLSv1_2))
        await exchange(tls12)
    lines = keylog.read_text().splitlines()
    assert any(line.startswith("CLIENT_HANDSHAKE_TRAFFIC_SECRET ") for line in lines)
    assert any(line.startswith("CLIENT_TRAFFIC_SECRET_0 ") for line in lines)
    assert any(line.startswith("CLIENT_RANDOM ") for line in lines)  # TLS 1.2
    assert keylog.stat().st_mode & 0o777 == 0o600  # secrets: owner only, like the IKE key tables


async def test_handshake_counts_against_the_prefix_timeout(
    trustme_context: ssl.SSLContext, autojump_clock: trio.testing.MockClock
) -> None:
    """A peer that connects to a TLS port and never says hello is closed after prefix_timeout."""
    async with tls_serving(trustme_context, prefix_timeout=5.0) as server:
        raw = await server.listener.connect()
        start = trio.current_time()
        with trio.fail_after(60):
            assert await raw.receive_some() == b""
        assert trio.current_time() - start == pytest.approx(5.0)
        await trio.testing.wait_all_tasks_blocked()
        assert server.table.stats["prefix_timeout"] == 1


async def test_prefix_timeout_inside_tls(
    ca: trustme.CA, trustme_context: ssl.SSLContext, autojump_clock: trio.testing.MockClock
) -> None:
    """After the handshake the prefix must still come within prefix_timeout (counted from accept)."""
    async with tls_serving(trustme_context, prefix_timeout=5.0) as server:
        stream = await connect(server, client_context(ca))
        await stream.send_all(b"IKE")
        with trio.fail_after(60):
            assert await stream.receive_some() == b""  # close_notify: a clean TLS EOF
        await trio.testing.wait_all_tasks_blocked()
        assert server.table.stats["prefix_timeout"] == 1
        assert server.engine.calls == []


async def test_shutdown_sends_close_notify(ca: trustme.CA, trustme_context: ssl.SSLContext) -> None:
    """aclose_all closes TLS connections gracefully: the client sees a clean EOF, not a broken stream."""
    async with tls_serving(trustme_context) as server:
        stream = await connect(server, client_context(ca))
        await exchange(stream)
        with trio.fail_after(5):
            await server.table.aclose_all(trio.current_time() + 2)
            assert await stream.receive_some() == b""
        assert len(server.table) == 0
