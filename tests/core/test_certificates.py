"""Validating a peer's certificate (responder.core.certificates): each failure the issue lists is
its own test, with the one-line reason the log shows; ID binding (RFC 4945 §3.1); CERTREQ data.

Rows: B31 (RSA keys of at least 2048 bits, public-key authentication), C4 (CERTREQ names CAs).
"""

from __future__ import annotations

import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from responder.core.certificates import (
    CertificateError,
    certificate_binds,
    certificate_identity,
    certreq_data,
    certreq_hashes,
    validate_peer_certificate,
)
from responder.core.config import Identity, TrustStore
from responder.core.enums import IdType
from tests.fakes.pki import CLIENT_EKU, NOW, SERVER_EKU, Authority

WALL = NOW.timestamp()


@pytest.fixture(scope="module")
def root() -> Authority:
    return Authority.root()


def trust(root: Authority, **kwargs: object) -> TrustStore:
    return TrustStore((root.certificate,), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["rsa2048", "p256", "p384", "p521", "ed25519", "ed448"])
def test_a_leaf_of_every_key_type_validates(root: Authority, key: str) -> None:
    leaf, _ = root.issue("C=XX, O=Lab, CN=alice", key=key, emails=["alice@lab"])
    chain = validate_peer_certificate(leaf, (), trust(root), WALL)
    assert chain == [leaf, root.certificate]


def test_a_chain_through_an_intermediate_validates(root: Authority) -> None:
    intermediate = root.intermediate()
    leaf, _ = intermediate.issue()
    chain = validate_peer_certificate(leaf, (intermediate.certificate,), trust(root), WALL)
    assert chain == [leaf, intermediate.certificate, root.certificate]


def test_unknown_ca(root: Authority) -> None:
    stranger = Authority.root("C=XX, O=Elsewhere, CN=Other CA", index=7)
    leaf, _ = stranger.issue()
    with pytest.raises(CertificateError, match=r"unknown CA, no chain from issuer CN=Other CA,O=Elsewhere"):
        validate_peer_certificate(leaf, (), trust(root), WALL)


def test_missing_intermediate_is_an_unknown_ca(root: Authority) -> None:
    leaf, _ = root.intermediate().issue()
    with pytest.raises(CertificateError, match="unknown CA"):
        validate_peer_certificate(leaf, (), trust(root), WALL)


def test_no_ca_configured(root: Authority) -> None:
    leaf, _ = root.issue()
    with pytest.raises(CertificateError, match="no CA certificate is configured"):
        validate_peer_certificate(leaf, (), TrustStore(), WALL)


def test_expired(root: Authority) -> None:
    leaf, _ = root.issue(valid_from=NOW - datetime.timedelta(days=30), days=10)
    with pytest.raises(CertificateError, match=r"CN=peer,O=Lab,C=XX expired \(2026-05-12T12:00:00\+00:00\)"):
        validate_peer_certificate(leaf, (), trust(root), WALL)


def test_not_yet_valid(root: Authority) -> None:
    leaf, _ = root.issue(valid_from=NOW + datetime.timedelta(days=1))
    with pytest.raises(CertificateError, match=r"is not yet valid \(from 2026-06-02T12:00:00\+00:00\)"):
        validate_peer_certificate(leaf, (), trust(root), WALL)


def test_validity_is_the_wall_clock_given_not_the_machines(root: Authority) -> None:
    leaf, _ = root.issue(days=1)
    validate_peer_certificate(leaf, (), trust(root), WALL)
    with pytest.raises(CertificateError, match="expired"):
        validate_peer_certificate(leaf, (), trust(root), WALL + 2 * 86400)
    with pytest.raises(CertificateError, match="no wall-clock time"):
        validate_peer_certificate(leaf, (), trust(root), None)


def test_an_expired_intermediate(root: Authority) -> None:
    intermediate = root.intermediate()
    leaf, _ = intermediate.issue(days=5000)
    later = (NOW + datetime.timedelta(days=2000)).timestamp()
    with pytest.raises(
        CertificateError,
        match=r"CN=peer,O=Lab,C=XX: CA certificate CN=Lab Intermediate CA,O=Lab,C=XX expired",
    ):
        validate_peer_certificate(leaf, (intermediate.certificate,), trust(root), later)


@pytest.mark.parametrize(
    ("eku", "accepted"),
    [
        (None, True),  # no EKU: RFC 4945 §5.1.3.12 accepts it
        ((ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,), True),
        ((ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION), False),
        ((ExtendedKeyUsageOID.TIME_STAMPING,), False),
    ],
)
def test_eku_rules_of_rfc4945(
    root: Authority, eku: tuple[x509.ObjectIdentifier, ...] | None, accepted: bool
) -> None:
    leaf, _ = root.issue(eku=eku)
    if accepted:
        validate_peer_certificate(leaf, (), trust(root), WALL)
    else:
        with pytest.raises(
            CertificateError, match=r"wrong EKU \(.*\); ipsecIKE, anyExtendedKeyUsage or none"
        ):
            validate_peer_certificate(leaf, (), trust(root), WALL)


@pytest.mark.parametrize("eku", [SERVER_EKU, CLIENT_EKU], ids=["serverAuth", "clientAuth"])
def test_server_and_client_auth_are_accepted_or_not_by_configuration(
    root: Authority, eku: tuple[x509.ObjectIdentifier, ...]
) -> None:
    leaf, _ = root.issue(eku=eku)
    validate_peer_certificate(leaf, (), trust(root), WALL)
    strict = trust(root, accept_server_auth=False, accept_client_auth=False)
    with pytest.raises(CertificateError, match="wrong EKU"):
        validate_peer_certificate(leaf, (), strict, WALL)


def test_key_usage_without_digital_signature(root: Authority) -> None:
    leaf, _ = root.issue(key_usage=False)
    with pytest.raises(CertificateError, match="keyUsage lacks digitalSignature"):
        validate_peer_certificate(leaf, (), trust(root), WALL)
    without, _ = root.issue(key_usage=None)  # absent keyUsage is fine
    validate_peer_certificate(without, (), trust(root), WALL)


def test_rsa_key_too_small(root: Authority) -> None:
    leaf, _ = root.issue(key="rsa1024")
    with pytest.raises(CertificateError, match=r"key too small \(RSA-1024, at least RSA-2048 required"):
        validate_peer_certificate(leaf, (), trust(root), WALL)
    validate_peer_certificate(leaf, (), trust(root, min_rsa_bits=1024), WALL)  # B31: configurable


def test_revoked_by_a_crl(root: Authority) -> None:
    leaf, _ = root.issue("C=XX, O=Lab, CN=mallory")
    other, _ = root.issue("C=XX, O=Lab, CN=bob")
    crl = root.crl([leaf])
    with pytest.raises(CertificateError, match=r"CN=mallory,O=Lab,C=XX is revoked \(since "):
        validate_peer_certificate(leaf, (), trust(root, crls=(crl,)), WALL)
    validate_peer_certificate(other, (), trust(root, crls=(crl,)), WALL)


def test_a_crl_not_signed_by_the_issuer_is_ignored(root: Authority) -> None:
    leaf, _ = root.issue()
    forger = Authority(root.certificate, Authority.root(index=9).key)  # same name, another key
    validate_peer_certificate(leaf, (), trust(root, crls=(forger.crl([leaf]),)), WALL)


def test_a_revoked_intermediate(root: Authority) -> None:
    intermediate = root.intermediate()
    leaf, _ = intermediate.issue()
    crl = root.crl([intermediate.certificate])
    with pytest.raises(CertificateError, match=r"Lab Intermediate CA.* is revoked"):
        validate_peer_certificate(leaf, (intermediate.certificate,), trust(root, crls=(crl,)), WALL)


def test_a_ca_constraint_narrows_the_anchors(root: Authority) -> None:
    other = Authority.root("C=XX, O=Lab, CN=Second CA", index=8)
    leaf, _ = root.issue()
    both = TrustStore((root.certificate, other.certificate))
    validate_peer_certificate(leaf, (), both, WALL)
    with pytest.raises(CertificateError, match="unknown CA"):
        validate_peer_certificate(leaf, (), both, WALL, cas=(other.certificate,))


# --------------------------------------------------------------------------- ID binding


@pytest.mark.parametrize(
    ("identity", "binds"),
    [
        (Identity.parse("alice.lab"), True),
        (Identity.parse("ALICE.LAB"), True),  # FQDNs compare case-insensitively
        (Identity.parse("bob.lab"), False),
        (Identity.parse("alice@lab"), True),
        (Identity.parse("bob@lab"), False),
        (Identity.parse("192.0.2.7"), True),
        (Identity.parse("2001:db8::7"), True),
        (Identity.parse("192.0.2.8"), False),
        (Identity.parse("C=XX, O=Lab, CN=alice"), True),
        (Identity.parse("C=XX, O=Lab, CN=Alice"), False),  # a UTF8String CN compares exactly (strongSwan too)
        (Identity.parse("C=XX, O=Lab, CN=bob"), False),
        (Identity.parse("O=Lab, C=XX, CN=alice"), False),  # RDN order matters
        (Identity.parse("keyid:0102"), False),
    ],
)
def test_the_id_must_be_in_the_certificate(root: Authority, identity: Identity, binds: bool) -> None:
    """RFC 4945 §3.1: a SAN of the ID's type, or the subject for ID_DER_ASN1_DN."""
    leaf, _ = root.issue(
        "C=XX, O=Lab, CN=alice", dns=["alice.lab"], emails=["alice@lab"], ips=["192.0.2.7", "2001:db8::7"]
    )
    assert certificate_binds(leaf, identity) is binds


def test_an_fqdn_in_the_subject_cn_does_not_bind(root: Authority) -> None:
    """RFC 4945 §3.2.3: an FQDN ID is matched against dNSName SANs, never the CN."""
    leaf, _ = root.issue("CN=alice.lab")
    assert not certificate_binds(leaf, Identity.parse("alice.lab"))


def test_our_identity_comes_from_the_certificate(root: Authority) -> None:
    leaf, _ = root.issue("C=XX, O=Lab, CN=moon", dns=["moon.lab"])
    identity = certificate_identity(leaf)
    assert identity.id_type is IdType.ID_DER_ASN1_DN and str(identity) == "C=XX, O=Lab, CN=moon"
    assert certificate_binds(leaf, Identity.parse("moon.lab"))


# --------------------------------------------------------------------------- CERTREQ


def spki(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def test_certreq_names_each_ca_by_the_sha1_of_its_public_key_info(root: Authority) -> None:
    """RFC 7296 §3.7: concatenated 20-octet SHA-1 hashes of the CAs' SubjectPublicKeyInfo."""
    other = Authority.root("C=XX, O=Lab, CN=Second CA", index=8)
    data = certreq_data((root.certificate, other.certificate))
    expected = [
        hashlib.sha1(spki(ca)).digest()  # noqa: S324 - RFC 7296 §3.7 names CAs by SHA-1
        for ca in (root.certificate, other.certificate)
    ]
    assert data == b"".join(expected) and len(data) == 40
    assert certreq_hashes(data) == tuple(expected)
    assert certreq_hashes(data + b"\x01\x02") == tuple(expected)  # a partial hash is ignored
