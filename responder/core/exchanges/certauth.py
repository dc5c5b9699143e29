"""Certificate authentication inside IKE_SA_INIT and IKE_AUTH, for both roles.

Strategy: what the two exchanges need for certificates, in one place so the
exchanges stay readable:

* IKE_SA_INIT: our SIGNATURE_HASH_ALGORITHMS notify (RFC 7427 §4) and CERTREQ
  naming the CAs we trust (RFC 7296 §3.7); reading the peer's.
* IKE_AUTH: the peer's CERT payloads (RFC 7296 §3.6: the first holds the key
  that signed AUTH; other encodings than X.509 Certificate - Signature are
  ignored and said so), their validation and ID binding
  (:mod:`responder.core.certificates`), the signature check
  (:mod:`responder.core.signatures`); our CERT payloads and our signature.

Every refusal is an :class:`~responder.core.errors.AuthenticationFailedError`
whose reason is one line: the dispatcher answers AUTHENTICATION_FAILED and the
log shows the reason (RFC 7296 §2.21.2).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

from responder.core.certificates import (
    CertificateError,
    certificate_binds,
    certreq_data,
    certreq_hashes,
    describe,
    peer_public_key,
    printable,
    spki_sha1,
    validate_peer_certificate,
)
from responder.core.config import Credential, Identity, TrustStore
from responder.core.enums import CertEncoding, HashAlgorithm, NotifyType
from responder.core.errors import AuthenticationFailedError
from responder.core.exchanges.common import find_all, notifies
from responder.core.messages import Message
from responder.core.payloads import AuthPayload, CertPayload, CertReqPayload, NotifyPayload
from responder.core.signatures import (
    SIGNATURE_HASHES,
    SignatureError,
    sign_with_plan,
    signature_plan,
    verify_signature,
)

__all__ = [
    "PeerCertificates",
    "asks_for_our_certificate",
    "cert_payloads",
    "certreq_payload",
    "peer_certificates",
    "peer_certreq",
    "peer_certreq_cas",
    "peer_signature_hashes",
    "sign",
    "signature_hashes_notify",
    "verify_peer_signature",
]


def signature_hashes_notify() -> NotifyPayload:
    """SIGNATURE_HASH_ALGORITHMS with the hashes we verify (RFC 7427 §4: 16-bit IDs)."""
    return NotifyPayload(
        NotifyType.SIGNATURE_HASH_ALGORITHMS, b"".join(int(h).to_bytes(2, "big") for h in SIGNATURE_HASHES)
    )


def peer_signature_hashes(message: Message) -> tuple[HashAlgorithm, ...] | None:
    """The hashes the peer's SIGNATURE_HASH_ALGORITHMS lists (``None`` if it sent none; RFC 7427 §4)."""
    found = notifies(message, NotifyType.SIGNATURE_HASH_ALGORITHMS)
    if not found:
        return None
    data = found[0].data
    return tuple(HashAlgorithm(int.from_bytes(data[i : i + 2], "big")) for i in range(0, len(data) - 1, 2))


def certreq_payload(anchors: Sequence[x509.Certificate]) -> CertReqPayload | None:
    """CERTREQ naming ``anchors`` (RFC 7296 §3.7), or ``None`` when we trust no CA."""
    if not anchors:
        return None
    return CertReqPayload(CertEncoding.X509_CERT_SIGNATURE, certreq_data(anchors))


def peer_certreq(message: Message) -> bool:
    """Whether the message carries a CERTREQ (swanctl's ``send_cert = ifasked`` looks at this)."""
    return bool(find_all(message, CertReqPayload))


def peer_certreq_cas(message: Message) -> frozenset[bytes]:
    """The CAs the message's X.509 CERTREQs name (SHA-1 hashes of SubjectPublicKeyInfo, §3.7)."""
    hashes: set[bytes] = set()
    for payload in find_all(message, CertReqPayload):
        if payload.encoding == CertEncoding.X509_CERT_SIGNATURE:
            hashes.update(certreq_hashes(payload.data))
    return frozenset(hashes)


def asks_for_our_certificate(
    credential: Credential, anchors: Sequence[x509.Certificate], named: frozenset[bytes]
) -> bool:
    """Whether a CERTREQ naming ``named`` asks for a certificate like ours: it names no CA (any
    will do), or one that our chain leads to (an intermediate we send, or the trust anchor that
    issued the top of our chain)."""
    if not named:
        return True
    ours = {spki_sha1(certificate) for certificate in credential.chain[1:]}
    top = credential.chain[-1]
    ours.update(spki_sha1(anchor) for anchor in anchors if anchor.subject == top.issuer)
    return bool(ours & named)


def cert_payloads(credential: Credential) -> tuple[CertPayload, ...]:
    """Our certificate and its intermediates, leaf first (RFC 7296 §3.6)."""
    return tuple(
        CertPayload(CertEncoding.X509_CERT_SIGNATURE, certificate.public_bytes(Encoding.DER))
        for certificate in credential.to_send
    )


@attrs.frozen
class PeerCertificates:
    """The peer's CERT payloads read: the end-entity certificate, the rest, and what was ignored."""

    leaf: x509.Certificate | None
    intermediates: tuple[x509.Certificate, ...]
    ignored: tuple[str, ...]


def peer_certificates(message: Message) -> PeerCertificates:
    """Read the CERT payloads (RFC 7296 §3.6); unsupported encodings are ignored with a note."""
    certificates: list[x509.Certificate] = []
    ignored: list[str] = []
    for payload in find_all(message, CertPayload):
        if payload.encoding != CertEncoding.X509_CERT_SIGNATURE:
            ignored.append(f"CERT encoding {payload.encoding.name} ignored")
            continue
        try:
            certificates.append(x509.load_der_x509_certificate(payload.data))
        except ValueError:
            if not certificates:  # the one that signed AUTH must be readable
                raise AuthenticationFailedError(
                    "the peer's first CERT payload is not a DER certificate"
                ) from None
            ignored.append("a CERT payload that is not a DER certificate ignored")
    leaf = certificates[0] if certificates else None
    return PeerCertificates(leaf, tuple(certificates[1:]), tuple(ignored))


def verify_peer_signature(
    message: Message,
    identity: Identity,
    auth: AuthPayload,
    octets: bytes,
    trust: TrustStore,
    wall: float | None,
    *,
    cas: Sequence[x509.Certificate] = (),
) -> str:
    """Authenticate a peer by its certificate: chain, ID binding, then the AUTH signature.

    Returns a summary for the log (the certificate's subject and the scheme);
    raises AuthenticationFailedError with the reason otherwise.
    """
    certificates = peer_certificates(message)
    if certificates.leaf is None:
        raise AuthenticationFailedError(f"{identity} sent a signature AUTH but no certificate")
    leaf = certificates.leaf
    try:
        validate_peer_certificate(leaf, certificates.intermediates, trust, wall, cas=cas)
        key = peer_public_key(leaf)
    except CertificateError as error:
        raise AuthenticationFailedError(str(error)) from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        # cryptography parses lazily: whatever else a hostile certificate trips is still its fault
        reason = printable(f"{type(error).__name__}: {error}")[:200]
        raise AuthenticationFailedError(
            f"certificate {describe(leaf)} cannot be checked ({reason})"
        ) from None
    if not certificate_binds(leaf, identity):
        raise AuthenticationFailedError(
            f"ID {identity} is not in the certificate {describe(leaf)} (RFC 4945 §3.1: a SAN of its type, "
            "or the subject for a DN)"
        )
    try:
        scheme = verify_signature(key, octets, auth)
    except SignatureError as error:
        raise AuthenticationFailedError(f"AUTH of {identity}: {error}") from None
    summary = f"certificate {describe(leaf)}, {scheme}"
    if certificates.ignored:
        summary += "; " + "; ".join(certificates.ignored)
    return summary


def sign(
    credential: Credential, octets: bytes, peer_hashes: Sequence[HashAlgorithm] | None, *, rsa_pss: bool
) -> tuple[AuthPayload, str]:
    """Our signature AUTH payload over ``octets`` and a note for the log (RFC 7427 §4)."""
    plan = signature_plan(credential.private_key, peer_hashes, rsa_pss=rsa_pss)
    note = f"signed with {plan}" + (f" ({plan.note})" if plan.note else "")
    return sign_with_plan(credential.private_key, octets, plan), note
