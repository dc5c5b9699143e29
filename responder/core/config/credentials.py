"""Credentials in the configuration: pre-shared keys, our certificate and key, trusted CAs.

Strategy: a :class:`Secret` never shows its octets (``repr`` and ``str`` print
``<secret>``), nor does a :class:`Credential` its private key.  How a
configured peer proves its identity is a choice, one value per method
(:data:`PeerAuth`): :class:`PskAuth` (RFC 7296 §2.15, AUTH method 2) or
:class:`PubkeyAuth` (a signature with a certificate's key: RFC 7296 §3.8,
RFC 7427); EAP (RFC 7296 §2.16) would join in its own issue.  What the
responder trusts (CA certificates, CRLs, the EKU policy) is one
:class:`TrustStore`.  Reading PEM files is the shell's job; these values
hold ``cryptography`` objects.
"""

from __future__ import annotations

import base64
import binascii
import enum
from typing import Any, TypeAlias

import attrs
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from responder.core.errors import ConfigError
from responder.core.validation import check_text, instance_of

__all__ = [
    "Credential",
    "PeerAuth",
    "PskAuth",
    "PubkeyAuth",
    "Secret",
    "SendCert",
    "TrustStore",
    "as_peer_auth",
]


def _check_secret(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bytes):
        raise ConfigError(f"expected bytes, got {type(value).__name__}")
    if not value:
        raise ConfigError("empty secret")


@attrs.frozen(repr=False)
class Secret:
    """A pre-shared key (RFC 7296 §2.15); its octets never appear in a repr or a log line."""

    value: bytes = attrs.field(validator=_check_secret)

    def __repr__(self) -> str:
        return "<secret>"

    def __str__(self) -> str:
        return "<secret>"

    @classmethod
    def parse(cls, text: str) -> Secret:
        """A secret from configuration text.

        ``0x`` followed by an even number of hex digits gives those octets,
        ``0s`` followed by base64 gives the decoded octets (both strongSwan
        conventions); any other text is taken as its UTF-8 octets, of any
        length, without a terminating NUL (RFC 7296 §2.15: ASCII secrets of 64
        octets and more MUST work).  A text secret that itself begins with
        ``0x`` or ``0s`` must be written in hex.
        """
        check_text(text)
        if not isinstance(text, str):
            raise ConfigError(f"expected a string, got {type(text).__name__}")
        prefix, rest = text[:2].lower(), text[2:]
        if prefix == "0x":
            if not rest:
                raise ConfigError("'0x' is not followed by hex digits")
            if len(rest) % 2:
                raise ConfigError(f"odd number of hex digits ({len(rest)}) after '0x'")
            try:
                return cls(bytes.fromhex(rest))
            except ValueError:
                raise ConfigError("not a hex string after '0x'") from None
        if prefix == "0s":
            try:
                value = base64.b64decode(rest, validate=True)
            except binascii.Error:
                raise ConfigError("not valid base64 after '0s'") from None
            if not value:
                raise ConfigError("empty secret")
            return cls(value)
        return cls(text.encode("utf-8"))


@attrs.frozen
class PskAuth:
    """The peer and the responder both authenticate with one shared key (RFC 7296 §2.15).

    The AUTH payloads of both directions are computed with ``secret``
    (authentication method 2, Shared Key Message Integrity Code).
    """

    secret: Secret = attrs.field(validator=instance_of(Secret, "a Secret"))

    def __str__(self) -> str:
        return "psk"


def _certificates(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(c, x509.Certificate) for c in value):
        raise ConfigError("expected a tuple of X.509 certificates", attribute.name)
    for certificate in value:
        _public_key(certificate, attribute.name)


def _public_key(certificate: x509.Certificate, field: str) -> object:
    """The certificate's key, or a ConfigError naming the certificate (an unsupported curve or type)."""
    try:
        return certificate.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(f"the key of certificate {_subject(certificate)} cannot be read", field) from None


def _subject(certificate: x509.Certificate) -> str:
    try:
        return certificate.subject.rfc4514_string() or "(empty subject)"
    except ValueError:
        return "(unreadable subject)"


def _anchors(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """CA certificates: readable keys the validation library takes as issuers."""
    _certificates(instance, attribute, value)
    assert isinstance(value, tuple)
    for certificate in value:
        key = _public_key(certificate, attribute.name)
        if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            raise ConfigError(
                f"CA certificate {_subject(certificate)} has an EdDSA key: the validation library "
                "does not accept Ed25519 or Ed448 signatures on certificates (use an ECDSA or RSA CA; "
                "EdDSA end-entity keys are fine)",
                attribute.name,
            )
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
            raise ConfigError(
                f"CA certificate {_subject(certificate)} has an RSA-{key.key_size} key: the validation "
                "library refuses CA keys below 2048 bits",
                attribute.name,
            )


@attrs.frozen
class PubkeyAuth:
    """The peer signs its AUTH with the key of its certificate (RFC 7296 §3.8, RFC 7427).

    Its chain must lead to a CA of :attr:`Config.trust`, or, when ``cas`` is
    given, to one of those (swanctl.conf's ``cacerts``: a CA constraint).  As
    our own side's method (:attr:`PeerConfig.local_auth`) it means: sign with
    :attr:`Config.credential`; ``cas`` is then unused.
    """

    cas: tuple[x509.Certificate, ...] = attrs.field(default=(), validator=_anchors)

    def __str__(self) -> str:
        return "pubkey"


#: How a peer authenticates; one class per method (EAP would come with its issue).
PeerAuth: TypeAlias = PskAuth | PubkeyAuth


def as_peer_auth(value: PeerAuth | Secret) -> PeerAuth:
    """A bare :class:`Secret` stands for :class:`PskAuth` with that secret (attrs converter)."""
    return PskAuth(value) if isinstance(value, Secret) else value


class SendCert(enum.Enum):
    """When our CERT payloads go in IKE_AUTH (swanctl.conf's ``send_cert``; RFC 7296 §3.6)."""

    #: When the peer sent a CERTREQ (in IKE_SA_INIT or IKE_AUTH).
    IFASKED = "ifasked"
    #: Always, with a signature AUTH.
    ALWAYS = "always"
    #: Never: the peer has our certificate already.
    NEVER = "never"


_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)


@attrs.frozen(repr=False)
class Credential:
    """Our certificate, the intermediates to send with it, and its private key.

    ``chain`` is leaf first; a self-signed root at its end is kept out of CERT
    payloads (the peer has it, RFC 7296 §3.6).  The key must be the leaf's:
    RSA, ECDSA (P-256, P-384, P-521), Ed25519 or Ed448 (RFC 8420).
    """

    chain: tuple[x509.Certificate, ...] = attrs.field(validator=_certificates)
    private_key: (
        rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
    ) = attrs.field()

    @private_key.validator
    def _check_key(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, _KEY_TYPES):
            raise ConfigError(f"unsupported private key type {type(value).__name__}", attribute.name)
        if not self.chain:
            raise ConfigError("a certificate chain needs at least one certificate", "chain")
        if _spki_of_certificate(self.chain[0]) != value.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        ):
            raise ConfigError("the private key does not belong to the first certificate", attribute.name)

    @property
    def certificate(self) -> x509.Certificate:
        """The end-entity certificate."""
        return self.chain[0]

    @property
    def to_send(self) -> tuple[x509.Certificate, ...]:
        """The chain as sent in CERT payloads: leaf and intermediates, no self-signed root."""
        chain = self.chain
        if len(chain) > 1 and chain[-1].subject == chain[-1].issuer:
            chain = chain[:-1]
        return chain

    def __repr__(self) -> str:
        return f"Credential({self.certificate.subject.rfc4514_string()!r}, <private key>)"


def _spki_of_certificate(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _crls(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(c, x509.CertificateRevocationList) for c in value):
        raise ConfigError("expected a tuple of CRLs", attribute.name)


def _min_rsa_bits(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1024 <= value <= 16384:
        raise ConfigError(f"must be an integer in 1024..16384, got {value!r}", attribute.name)


@attrs.frozen
class TrustStore:
    """What the responder trusts to vouch for peers (RFC 4945 §5; ``responder.core.certificates``).

    ``anchors``: CA certificates (also named in our CERTREQ, RFC 7296 §3.7).
    ``crls``: revocation lists checked against every chain (RFC 5280 §6.3).
    ``accept_server_auth`` / ``accept_client_auth``: whether an end-entity
    certificate whose EKU is only serverAuth or clientAuth is accepted
    (RFC 4945 §5.1.3.12 leaves it to policy; many deployed IKE certificates
    carry them).  ``min_rsa_bits``: smaller RSA keys are refused (RFC 8247
    §3.1.1: 2048).  ``rsa_pss``: sign with RSASSA-PSS rather than PKCS#1 v1.5
    when the peer takes RFC 7427 signatures (RFC 8247 §3.2).
    """

    anchors: tuple[x509.Certificate, ...] = attrs.field(default=(), validator=_anchors)
    crls: tuple[x509.CertificateRevocationList, ...] = attrs.field(default=(), validator=_crls)
    accept_server_auth: bool = attrs.field(default=True, validator=instance_of(bool, "a bool"))
    accept_client_auth: bool = attrs.field(default=True, validator=instance_of(bool, "a bool"))
    min_rsa_bits: int = attrs.field(default=2048, validator=_min_rsa_bits)
    rsa_pss: bool = attrs.field(default=True, validator=instance_of(bool, "a bool"))
