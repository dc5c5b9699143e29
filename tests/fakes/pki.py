"""A small PKI for tests: CAs, intermediates, end-entity certificates and CRLs, built to order.

trustme issues only RSA and P-256 leaves with fixed EKUs and SANs; certificate
tests need Ed25519 and Ed448 keys, ipsecIKE or no EKU, DN-only leaves, expired
and future certificates, small RSA keys and revocation, so this builds them
with ``cryptography.x509`` (see ../shared/library-facts.md, trustme).
Keys are cached per type: generating RSA keys is the slow part.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
from collections.abc import Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from responder.core.certificates import IPSEC_IKE
from responder.core.config import Credential
from responder.core.signatures import PrivateKey

__all__ = ["NOW", "Authority", "make_key", "name"]

#: The wall clock of certificate tests (POSIX seconds); certificates are valid around it.
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)

IKE_EKU = (IPSEC_IKE,)
SERVER_EKU = (ExtendedKeyUsageOID.SERVER_AUTH,)
CLIENT_EKU = (ExtendedKeyUsageOID.CLIENT_AUTH,)


@functools.cache
def make_key(kind: str, index: int = 0) -> PrivateKey:
    """A key of ``kind`` (rsa1024..rsa4096, p256/p384/p521, ed25519, ed448); ``index``: another one."""
    if kind.startswith("rsa"):
        return rsa.generate_private_key(65537, int(kind[3:]))
    curves = {"p256": ec.SECP256R1, "p384": ec.SECP384R1, "p521": ec.SECP521R1}
    if kind in curves:
        return ec.generate_private_key(curves[kind]())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ed448":
        return ed448.Ed448PrivateKey.generate()
    raise ValueError(kind)


def name(text: str) -> x509.Name:
    """``"C=CH, O=Lab, CN=moon"`` as an x509.Name, attributes in the order written (DER order)."""
    oids = {"C": NameOID.COUNTRY_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME}
    attributes = []
    for part in text.split(", "):
        key, value = part.split("=", 1)
        attributes.append(x509.NameAttribute(oids.get(key, NameOID.COMMON_NAME), value))
    return x509.Name(attributes)


def _hash_for(key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()


@attrs.frozen
class Authority:
    """A CA (root or intermediate) that issues certificates and CRLs."""

    certificate: x509.Certificate
    key: PrivateKey = attrs.field(repr=False)
    parent: Authority | None = None

    @classmethod
    def root(
        cls, subject: str = "C=XX, O=Lab, CN=Lab Root CA", key: str = "p256", index: int = 100
    ) -> Authority:
        private = make_key(key, index)
        builder = _base(name(subject), name(subject), private.public_key(), NOW, 3650)
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(_ca_usage(), critical=True)
        return cls(builder.sign(private, _hash_for(private)), private)

    def intermediate(
        self, subject: str = "C=XX, O=Lab, CN=Lab Intermediate CA", key: str = "p256"
    ) -> Authority:
        private = make_key(key, 101)
        builder = _base(name(subject), self.certificate.subject, private.public_key(), NOW, 1825)
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        builder = builder.add_extension(_ca_usage(), critical=True)
        builder = self._aki(builder)
        return Authority(builder.sign(self.key, _hash_for(self.key)), private, self)

    def _aki(self, builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
        ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )

    def issue(
        self,
        subject: str = "C=XX, O=Lab, CN=peer",
        *,
        key: str = "p256",
        index: int = 0,
        dns: Sequence[str] = (),
        emails: Sequence[str] = (),
        ips: Sequence[str] = (),
        eku: Sequence[x509.ObjectIdentifier] | None = IKE_EKU,
        key_usage: bool | None = True,
        valid_from: datetime.datetime | None = None,
        days: float = 365,
    ) -> tuple[x509.Certificate, PrivateKey]:
        """An end-entity certificate and its key; ``eku=None`` leaves EKU out, ``key_usage`` None
        leaves keyUsage out, False gives keyUsage without digitalSignature."""
        private = make_key(key, index)
        start = valid_from or NOW - datetime.timedelta(hours=1)
        builder = _base(name(subject), self.certificate.subject, private.public_key(), start, days)
        builder = self._aki(builder)
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.RFC822Name(e) for e in emails]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        if key_usage is not None:
            builder = builder.add_extension(_leaf_usage(key_usage), critical=True)
        return builder.sign(self.key, _hash_for(self.key)), private

    def credential(self, subject: str = "C=XX, O=Lab, CN=peer", **kwargs: object) -> Credential:
        """:meth:`issue`, as a Credential with the intermediates up to (not including) the root."""
        certificate, private = self.issue(subject, **kwargs)  # type: ignore[arg-type]
        chain = [certificate]
        authority: Authority | None = self
        while authority is not None and authority.parent is not None:
            chain.append(authority.certificate)
            authority = authority.parent
        return Credential(tuple(chain), private)

    def crl(self, revoked: Sequence[x509.Certificate]) -> x509.CertificateRevocationList:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(NOW - datetime.timedelta(days=1))
            .next_update(NOW + datetime.timedelta(days=7))
        )
        for certificate in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(certificate.serial_number)
                .revocation_date(NOW - datetime.timedelta(hours=2))
                .build()
            )
        return builder.sign(self.key, _hash_for(self.key))


def _base(
    subject: x509.Name, issuer: x509.Name, public: object, start: datetime.datetime, days: float
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)  # type: ignore[arg-type]
    )


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(False, False, False, False, False, True, True, False, False)


def _leaf_usage(digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature, False, not digital_signature, False, False, False, False, False, False
    )
