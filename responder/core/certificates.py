"""Certificates in IKE: validating a peer's chain, binding it to the peer's ID, CERTREQ data.

Strategy: :func:`validate_peer_certificate` runs the checks RFC 4945 §5 and
RFC 8247 ask for, in the order that gives a user the most useful reason:

1. the end-entity certificate itself: validity at the wall-clock time the
   caller passes (the core reads no clock), key size (RSA below
   ``min_rsa_bits`` is refused, RFC 8247 §3.1.1), keyUsage digitalSignature
   where keyUsage is present (RFC 4945 §5.1.3.2), extendedKeyUsage
   (RFC 4945 §5.1.3.12: none, ipsecIKE or anyExtendedKeyUsage accepted;
   serverAuth and clientAuth by configuration);
2. the chain to a trust anchor, built and checked by
   ``cryptography.x509.verification`` with the web-PKI profile loosened the
   way IKE needs (no SAN required, any EKU; see ../shared/library-facts.md);
3. revocation, by the CRL files the configuration names (RFC 5280 §6.3): a
   certificate of the chain listed in a CRL its issuer signed is refused;
4. the ID binding (RFC 4945 §3.1, §5.1.2): the peer's ID must be a SAN of its
   type, or the subject for ID_DER_ASN1_DN (:func:`certificate_binds`).

Each failure raises :class:`CertificateError` with one line that names it:
unknown CA, expired, not yet valid, wrong EKU, ID not in the certificate,
key too small, revoked.  CERTREQ payloads name trust anchors by the SHA-1 of
their SubjectPublicKeyInfo (RFC 7296 §3.7): :func:`certreq_data`.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import itertools
from collections.abc import Callable, Iterable, Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from responder.core.cert_identity import certificate_binds, subject_alt_names
from responder.core.config.credentials import TrustStore
from responder.core.enums import IdType
from responder.core.identity import Identity
from responder.core.signatures import PublicKey, key_description

__all__ = [
    "IPSEC_IKE",
    "CertificateError",
    "certificate_binds",
    "certificate_identity",
    "certreq_data",
    "describe",
    "peer_public_key",
    "printable",
    "spki_sha1",
    "validate_peer_certificate",
]

#: id-kp-ipsecIKE (RFC 4945 §5.1.3.12, RFC 4945 refers to it as the IKE EKU).
IPSEC_IKE = ObjectIdentifier("1.3.6.1.5.5.7.3.17")

_SHA1_SIZE = 20
_CURVES = frozenset(("secp256r1", "secp384r1", "secp521r1"))


class CertificateError(ValueError):
    """A peer's certificate is not acceptable; the message is the reason, one line."""


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped (``\\x0a``): names from a peer's
    certificate go into log lines and must not forge or break them."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _name_text(name: Callable[[], x509.Name], empty: str) -> str:
    try:
        return printable(name().rfc4514_string()) or empty
    except ValueError:  # parsed lazily: a malformed string inside is found only now
        return "(unreadable name)"


def describe(certificate: x509.Certificate) -> str:
    """``"CN=alice,O=Lab"``-style subject for log lines (RFC 4514 order), escaped, never raising."""
    return _name_text(lambda: certificate.subject, "(empty subject)")


def spki_sha1(certificate: x509.Certificate) -> bytes:
    """SHA-1 of the certificate's SubjectPublicKeyInfo, as CERTREQ names a CA (RFC 7296 §3.7)."""
    spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha1(spki).digest()  # noqa: S324 - the RFC names CAs by SHA-1


def certreq_data(anchors: Iterable[x509.Certificate]) -> bytes:
    """The Certification Authority field of a CERTREQ: concatenated SHA-1 SPKI hashes (RFC 7296 §3.7)."""
    return b"".join(spki_sha1(anchor) for anchor in anchors)


def certreq_hashes(data: bytes) -> tuple[bytes, ...]:
    """The SHA-1 hashes a received CERTREQ names (a trailing partial hash is ignored)."""
    return tuple(data[i : i + _SHA1_SIZE] for i in range(0, len(data) - _SHA1_SIZE + 1, _SHA1_SIZE))


def peer_public_key(certificate: x509.Certificate) -> PublicKey:
    """The certificate's key if it is one we verify signatures with, else CertificateError."""
    try:
        key = certificate.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):  # an unsupported or malformed SubjectPublicKeyInfo
        raise CertificateError(f"certificate {describe(certificate)}: a key we cannot read") from None
    if isinstance(key, rsa.RSAPublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVES:  # RFC 4754, RFC 8247 §3.1: P-256, P-384, P-521
            raise CertificateError(
                f"certificate {describe(certificate)}: ECDSA on {key.curve.name} is not accepted "
                "(P-256, P-384 and P-521 are)"
            )
        return key
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return key
    raise CertificateError(f"certificate {describe(certificate)}: {type(key).__name__} is not supported")


# --------------------------------------------------------------------------- the end-entity checks


def _utc(wall: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(wall, datetime.UTC)


def _check_validity(certificate: x509.Certificate, when: datetime.datetime) -> None:
    """RFC 5280 §4.1.2.5, against the wall-clock time given."""
    if when < certificate.not_valid_before_utc:
        start = certificate.not_valid_before_utc.isoformat(timespec="seconds")
        raise CertificateError(f"certificate {describe(certificate)} is not yet valid (from {start})")
    if when > certificate.not_valid_after_utc:
        end = certificate.not_valid_after_utc.isoformat(timespec="seconds")
        raise CertificateError(f"certificate {describe(certificate)} expired ({end})")


def _extension(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except (ValueError, x509.DuplicateExtension) as error:
        raise CertificateError(f"certificate {describe(certificate)}: bad extensions ({error})") from None


def _check_key_usage(certificate: x509.Certificate) -> None:
    """RFC 4945 §5.1.3.2: where keyUsage is present, digitalSignature (or nonRepudiation) must be set."""
    usage = _extension(certificate, x509.KeyUsage)
    if isinstance(usage, x509.KeyUsage) and not (usage.digital_signature or usage.content_commitment):
        raise CertificateError(f"certificate {describe(certificate)}: keyUsage lacks digitalSignature")


def _check_eku(certificate: x509.Certificate, trust: TrustStore) -> None:
    """RFC 4945 §5.1.3.12: no EKU, ipsecIKE or anyExtendedKeyUsage; serverAuth/clientAuth by policy."""
    eku = _extension(certificate, x509.ExtendedKeyUsage)
    if not isinstance(eku, x509.ExtendedKeyUsage):
        return
    usages = set(eku)
    if usages & {IPSEC_IKE, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}:
        return
    if trust.accept_server_auth and ExtendedKeyUsageOID.SERVER_AUTH in usages:
        return
    if trust.accept_client_auth and ExtendedKeyUsageOID.CLIENT_AUTH in usages:
        return
    names = ", ".join(sorted(getattr(oid, "_name", oid.dotted_string) for oid in usages)) or "none"
    raise CertificateError(
        f"certificate {describe(certificate)}: wrong EKU ({names}); "
        "ipsecIKE, anyExtendedKeyUsage or none are accepted (RFC 4945 §5.1.3.12)"
    )


def _check_key_size(certificate: x509.Certificate, trust: TrustStore) -> None:
    key = peer_public_key(certificate)
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < trust.min_rsa_bits:
        raise CertificateError(
            f"certificate {describe(certificate)}: key too small ({key_description(key)}, "
            f"at least RSA-{trust.min_rsa_bits} required, RFC 8247 §3.1.1)"
        )


# --------------------------------------------------------------------------- the chain


def _policy() -> tuple[ExtensionPolicy, ExtensionPolicy]:
    """The web-PKI extension policies loosened for IKE (library-facts.md): any EKU, SAN and keyUsage."""
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, None)
    )
    ca = ExtensionPolicy.webpki_defaults_ca()
    ca = ca.may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    return ca, ee


def _build_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    when: datetime.datetime,
) -> list[x509.Certificate]:
    ca_policy, ee_policy = _policy()
    verifier = (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(when.replace(tzinfo=None))
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(leaf, list(intermediates)).chain)
    except VerificationError as error:
        text = printable(str(error))
        issuer = _name_text(lambda: leaf.issuer, "(empty issuer)")
        _check_path_validity(leaf, [*intermediates, *anchors], when)
        if "candidates exhausted" in text:
            detail = "" if "no interior errors" in text else f" ({text})"
            reason = f"unknown CA, no chain from issuer {issuer} to a trusted CA{detail}"
            raise CertificateError(f"certificate {describe(leaf)}: {reason}") from None
        if "not valid at validation time" in text:
            raise CertificateError(
                f"certificate {describe(leaf)}: a CA certificate of its chain is expired or not yet valid"
            ) from None
        raise CertificateError(f"certificate {describe(leaf)}: chain does not verify ({text})") from None


def _check_path_validity(
    leaf: x509.Certificate, candidates: Sequence[x509.Certificate], when: datetime.datetime
) -> None:
    """Name an expired (or not yet valid) CA on the way from ``leaf`` up by issuer names: the
    verifier reports only that no path was found."""
    current, seen = leaf, 0
    while seen < len(candidates):
        try:
            issuer = next((c for c in candidates if c.subject == current.issuer), None)
        except ValueError:  # a malformed name: no path to name
            return
        if issuer is None:
            return
        try:
            _check_validity(issuer, when)
        except CertificateError as error:
            raise CertificateError(f"certificate {describe(leaf)}: CA {error}") from None
        if issuer.subject == issuer.issuer:
            return
        current, seen = issuer, seen + 1


def _check_revocation(chain: Sequence[x509.Certificate], trust: TrustStore) -> None:
    """A certificate listed in a CRL signed by its issuer is revoked (RFC 5280 §6.3)."""
    for certificate, issuer in itertools.pairwise(chain):
        for crl in trust.crls:
            if crl.issuer != certificate.issuer:
                continue
            try:
                signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            except (TypeError, ValueError):
                signed = False
            if not signed:
                continue
            revoked = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
            if revoked is not None:
                when = revoked.revocation_date_utc.isoformat(timespec="seconds")
                raise CertificateError(f"certificate {describe(certificate)} is revoked (since {when})")


def validate_peer_certificate(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    trust: TrustStore,
    wall: float | None,
    *,
    cas: Sequence[x509.Certificate] = (),
) -> list[x509.Certificate]:
    """Check a peer's end-entity certificate and its chain; the chain, leaf first, anchor last.

    ``wall`` is the wall-clock time in POSIX seconds (``None``: unknown, and
    then nothing can be validated).  ``cas``, when given, narrows the trust
    anchors to those (a peer's CA constraint, swanctl's ``cacerts``).
    """
    if wall is None:
        raise CertificateError("no wall-clock time to check certificate validity against")
    when = _utc(wall)
    _check_validity(leaf, when)
    _check_key_size(leaf, trust)
    _check_key_usage(leaf)
    _check_eku(leaf, trust)
    anchors = list(cas) if cas else list(trust.anchors)
    if not anchors:
        raise CertificateError(f"certificate {describe(leaf)}: unknown CA, no CA certificate is configured")
    chain = _build_chain(leaf, intermediates, anchors, when)
    _check_revocation(chain, trust)
    return chain


# --------------------------------------------------------------------------- identities


def certificate_identity(certificate: x509.Certificate) -> Identity:
    """Our own ID from our certificate: its subject DN, or its first SAN if the subject is empty."""
    if len(certificate.subject) > 0:
        return Identity(IdType.ID_DER_ASN1_DN, certificate.subject.public_bytes())
    for name in subject_alt_names(certificate):
        if isinstance(name, x509.DNSName):
            return Identity(IdType.ID_FQDN, name.value.encode("ascii"))
        if isinstance(name, x509.RFC822Name):
            return Identity(IdType.ID_RFC822_ADDR, name.value.encode("ascii"))
        if isinstance(name, x509.IPAddress):
            address = name.value
            if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
                return Identity.from_address(address)
    raise CertificateError(f"certificate {describe(certificate)} has neither a subject nor a usable SAN")
