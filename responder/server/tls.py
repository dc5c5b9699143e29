"""The TLS server context for RFC 9329 Appendix A listeners (IKE and ESP inside TLS on 443).

Strategy: one :class:`ssl.SSLContext` per server, made by :func:`server_context`
and handed to every ``tls`` listener; :mod:`responder.server.streams` wraps each
accepted TCP stream in a :class:`trio.SSLStream` with it, and the "IKETCP"
prefix then travels inside TLS (RFC 9329 §4, Appendix B.1 step 3, row A14).
TLS adds nothing to IKE's own security, so the parameters follow RFC 9325
(RECOMMENDED by RFC 9329 Appendix A, row A67) without extras:

* TLS 1.2 and 1.3 only; TLS 1.2 restricted to ECDHE key exchange with AEAD
  ciphers (AES-GCM, ChaCha20-Poly1305): no static RSA key exchange, no CBC,
  no NULL (RFC 9325 §4.1, §4.2).  RFC 9329 Appendix A says peers SHOULD allow
  the NULL cipher; RFC 9325 forbids it and the RFC tells us to follow RFC 9325,
  so NULL is refused (TLS 1.3 has no NULL suite at all);
* no compression (RFC 9325 §3.3), no renegotiation (RFC 9325 §3.5);
* session tickets on, so a reconnecting Originator resumes (RFC 8229
  Appendix B.3, RFC 9329 Appendix B.3, row A69);
* no client certificate requested: IKE authenticates the peer
  (RFC 9329 Appendix B.1 step 2, row A68);
* optionally an NSS key log (``SSLKEYLOGFILE`` format) for Wireshark.

Without a certificate and key a self-signed ECDSA P-256 certificate is made
on the spot (:func:`self_signed_certificate`).  The :mod:`ssl` module loads
keys only from files, so the pair is written into a private temporary
directory (mode 0700, files 0600) that is removed as soon as it is loaded.
The certificate's SHA-256 fingerprint is returned for the operator to pin.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "SELF_SIGNED_NAME",
    "TLS12_CIPHERS",
    "fingerprint",
    "self_signed_certificate",
    "server_context",
]

#: Name in the self-signed certificate (RFC 6761 §6.4: ``.invalid`` never resolves).
SELF_SIGNED_NAME = "ikev2-responder.invalid"

#: OpenSSL cipher string for TLS 1.2: ECDHE with AEAD only (RFC 9325 §4.2).
#: TLS 1.3 suites are all AEAD and are left at OpenSSL's defaults.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!PSK"


def self_signed_certificate(
    name: str = SELF_SIGNED_NAME,
    addresses: Sequence[str] = ("127.0.0.1", "::1"),
    *,
    now: datetime.datetime | None = None,
    lifetime: datetime.timedelta = datetime.timedelta(days=365),
) -> tuple[bytes, bytes]:
    """A fresh ECDSA P-256 key and a self-signed certificate for it, both PEM: ``(cert, key)``.

    The certificate names ``name`` (CN and DNS SAN) and ``addresses`` (IP
    SANs), is valid from one hour before ``now`` (default: the wall clock)
    for ``lifetime``, and carries the serverAuth extended key usage.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    start = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(hours=1)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    alternative_names: list[x509.GeneralName] = [x509.DNSName(name)]
    alternative_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + lifetime)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert_pem, key_pem


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 fingerprint of the first certificate in ``cert_pem``: ``AB:CD:...`` (32 pairs)."""
    certificate = x509.load_pem_x509_certificate(cert_pem)
    return ":".join(f"{octet:02X}" for octet in certificate.fingerprint(hashes.SHA256()))


def _base_context(keylog_file: Path | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 9325 §3.1.1, §3.1.2
    context.set_ciphers(TLS12_CIPHERS)  # RFC 9325 §4.1, §4.2: ECDHE + AEAD only
    context.options |= ssl.OP_NO_COMPRESSION  # RFC 9325 §3.3
    context.options |= ssl.OP_NO_RENEGOTIATION  # RFC 9325 §3.5
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options &= ~ssl.OP_NO_TICKET  # RFC 9329 App. B.3 (row A69): resumption by ticket
    context.verify_mode = ssl.CERT_NONE  # RFC 9329 App. B.1 step 2 (row A68): no CertificateRequest
    if keylog_file is not None:
        # Secrets: the file is made owner-only before OpenSSL opens it (for append).
        os.close(os.open(keylog_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(keylog_file, 0o600)
        context.keylog_filename = str(keylog_file)
    return context


def server_context(
    cert: Path | None, key: Path | None, keylog_file: Path | None = None
) -> tuple[ssl.SSLContext, str]:
    """The server's TLS context and the SHA-256 fingerprint of its certificate.

    ``cert`` and ``key`` are PEM files (the certificate file may hold the
    chain after the leaf); with both ``None`` a self-signed certificate is
    made now.  ``keylog_file`` set appends the TLS secrets of every handshake
    to that file in the NSS key log format (for Wireshark; never in
    production).  Raises :class:`ValueError` when only one of ``cert`` and
    ``key`` is given, :class:`OSError` or :class:`ssl.SSLError` when they
    cannot be read or do not match.
    """
    if (cert is None) != (key is None):
        raise ValueError("a TLS certificate and its key go together: give both or neither")
    context = _base_context(keylog_file)
    if cert is not None and key is not None:
        context.load_cert_chain(cert, key)
        return context, fingerprint(cert.read_bytes())
    cert_pem, key_pem = self_signed_certificate()
    with tempfile.TemporaryDirectory(prefix="ikev2-responder-tls-") as directory:  # mode 0700
        cert_file, key_file = Path(directory, "cert.pem"), Path(directory, "key.pem")
        for path, data in ((cert_file, cert_pem), (key_file, key_pem)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
        context.load_cert_chain(cert_file, key_file)
    return context, fingerprint(cert_pem)
