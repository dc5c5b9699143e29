"""The lab PKI: a CA, a responder certificate and client certificates for IKEv2.

Strategy: one step that computes and one that writes.  :func:`issue` turns a
:class:`PkiRequest` and the time into an :class:`IssuedPki` held in memory
(keys, certificates, PKCS#12 bundles and the files they go to) and checks
every leaf with :func:`ike_verifier`; :func:`write` puts it on disk, refusing
to replace a file unless told to (``force``) and creating every private key
and password file with mode 0600.  The command, ``ikev2-responder certs``,
and what it prints live in :mod:`responder.pki_cli`.

What real clients require of the certificates (RFC 4945 §5.1.3; the
strongSwan interoperability notes on Windows, Apple and Android clients):

- **CA**: basicConstraints CA:true (critical, pathLen 0: no intermediates
  here), keyUsage keyCertSign + cRLSign (critical), a subjectKeyIdentifier.
- **Responder**: a subjectAltName holding the responder ID (DNS or IP
  address) and the extra ``--san`` names, since macOS/iOS require the remote
  ID among the SANs and Android's strongSwan app the server address or name;
  EKU serverAuth (Windows refuses a gateway certificate without it, macOS
  wants it too), id-kp-ipsecIKE (RFC 4945 §5.1.3.12) and
  IP Security IKE Intermediate (1.3.6.1.5.5.8.2.2, older macOS); keyUsage
  digitalSignature, plus keyEncipherment for RSA keys (Windows); the
  authority and subject key identifiers.
- **Clients**: a subjectAltName e-mail address ``NAME@lab`` (an
  ID_RFC822_ADDR identity that strongSwan, libreswan, Android's app and
  Apple's Local ID all take from the certificate; a NAME with an ``@`` is used
  as it is), EKU clientAuth (Windows picks its machine certificate by it) and
  id-kp-ipsecIKE, the same keyUsage and key identifiers.

Key types (``--key-type``): ``ecdsa`` (default: P-256 with SHA-256, which
every target above takes, RFC 7427 signatures), ``rsa`` (3072 bits by
default: 128-bit strength, NIST SP 800-57, over RFC 8247's 2048-bit floor;
``--rsa-bits`` from 2048 to 8192) and ``ed25519`` (RFC 8420: strongSwan and
this responder; Windows, Apple and Android keychains do not take it).  The CA
key is RSA for ``rsa`` and ECDSA P-256 otherwise: the web-PKI profile of
``cryptography.x509.verification`` (on which the IKE policy of
:func:`ike_verifier` builds) refuses Ed25519 as a certificate *signature*
algorithm, while an Ed25519 leaf key under an ECDSA CA is fine.

Validity starts one hour before now (clocks that are a little behind);
leaves last ``--days`` (365 by default, under Apple's 825-day ceiling), the
CA ten years or ``--days`` if longer.  Serial numbers are random (159 bits).
An existing CA (``ca.pem`` + ``ca.key``) in the directory signs the new
certificates instead of a new one, so clients can be added later
(``--no-responder --client bob``); ``--force`` makes everything anew.

PKCS#12 bundles (``NAME.p12``: key, certificate and CA) use PBE-SHA1-3DES
with a SHA-1 MAC, the encryption that Android, Windows, older macOS and NSS's
``pk12util`` all read (OpenSSL 3's default, AES-256 with PBKDF2, fails on
some of them).  Their password is random, printed and written beside them
(``NAME.p12.password``, 0600), unless ``--p12-password`` gives one.
"""

from __future__ import annotations

import datetime
import enum
import ipaddress
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Final, TypeAlias

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

__all__ = [
    "CA_NAME",
    "CLIENT_DOMAIN",
    "DEFAULT_DAYS",
    "DEFAULT_DIR",
    "DEFAULT_RESPONDER_ID",
    "DEFAULT_RSA_BITS",
    "DEFAULT_SANS",
    "IKE_INTERMEDIATE",
    "Issued",
    "IssuedPki",
    "KeyType",
    "OutputFile",
    "PkiError",
    "PkiRequest",
    "PrivateKey",
    "check_client",
    "client_identity",
    "ike_verifier",
    "issue",
    "parse_san",
    "show_san",
    "write",
]

#: Where the command writes when no ``--dir`` is given (the repository's ``certs/``).
DEFAULT_DIR: Final = Path("certs")
#: The responder's identity and first SAN when no ``--responder-id`` is given.
DEFAULT_RESPONDER_ID: Final = "responder.lab"
#: Extra responder SANs when no ``--san`` is given: the loopback addresses the responder serves by default.
DEFAULT_SANS: Final = ("IP:127.0.0.1", "IP:::1")
#: The domain of a client's e-mail SAN when its name has no ``@``.
CLIENT_DOMAIN: Final = "lab"
#: The CA's common name, and its nickname in a PKCS#12 bundle (and so in an NSS database).
CA_NAME: Final = "ikev2-responder lab CA"
_ORGANIZATION: Final = "ikev2-responder lab"
#: IP Security IKE Intermediate, which older macOS releases look for on a gateway certificate.
IKE_INTERMEDIATE: Final = x509.ObjectIdentifier("1.3.6.1.5.5.8.2.2")
DEFAULT_DAYS: Final = 365
CA_DAYS: Final = 3650
DEFAULT_RSA_BITS: Final = 3072
#: A client name: it becomes a file name and the local part of an e-mail address.
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_DNS_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
#: Letters of generated PKCS#12 passwords: none that look alike when typed on a phone.
_PASSWORD_ALPHABET: Final = "abcdefghijkmnpqrstuvwxyz23456789"  # noqa: S105 (an alphabet)
_PASSWORD_LENGTH: Final = 16  # 80 bits

#: The private keys the responder reads (``--key``) and this module writes.
PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
)


class PkiError(Exception):
    """A request that cannot be carried out (a bad name, a file in the way); the message says why."""


class KeyType(enum.Enum):
    """The key type of the responder and client certificates (``--key-type``)."""

    RSA = "rsa"  #: RSA, ``--rsa-bits`` (3072); signed by an RSA CA
    ECDSA = "ecdsa"  #: ECDSA P-256 (RFC 7427 signatures); the default
    ED25519 = "ed25519"  #: Ed25519 (RFC 8420), under an ECDSA P-256 CA


@attrs.frozen
class PkiRequest:
    """What to make: the values of the ``certs`` subcommand's flags."""

    directory: Path = DEFAULT_DIR
    key_type: KeyType = KeyType.ECDSA
    rsa_bits: int = attrs.field(default=DEFAULT_RSA_BITS)
    #: The responder's ID (a DNS name or an IP address), its first SAN; ``None``: no responder certificate.
    responder_id: str | None = DEFAULT_RESPONDER_ID
    #: The responder's other SANs, as :func:`parse_san` reads them.
    sans: tuple[str, ...] = DEFAULT_SANS
    clients: tuple[str, ...] = ("client1",)
    days: int = attrs.field(default=DEFAULT_DAYS)
    force: bool = False
    #: One password for every PKCS#12 bundle; ``None``: a random one each, written beside it.
    p12_password: str | None = attrs.field(default=None, repr=False)

    @rsa_bits.validator
    def _check_bits(self, _: object, value: int) -> None:
        if not 2048 <= value <= 8192:
            raise PkiError(f"--rsa-bits {value}: from 2048 (RFC 8247) to 8192")

    @p12_password.validator
    def _check_password(self, _: object, value: str | None) -> None:
        if value == "":
            raise PkiError("--p12-password: not empty (Android and Windows refuse an empty one)")

    @days.validator
    def _check_days(self, _: object, value: int) -> None:
        if not 1 <= value <= 36500:
            raise PkiError(f"--days {value}: from 1 to 36500")


@attrs.frozen
class Issued:
    """One key with its certificate."""

    name: str  #: the file stem (``ca``, ``responder``, the client's name)
    key: PrivateKey = attrs.field(repr=False)
    cert: x509.Certificate


@attrs.frozen
class OutputFile:
    """One file to write: its path, its bytes, and whether it is secret (mode 0600)."""

    path: Path
    data: bytes = attrs.field(repr=False)
    secret: bool
    what: str  #: one line for the report


@attrs.frozen
class IssuedPki:
    """Everything :func:`issue` made, ready for :func:`write`."""

    request: PkiRequest
    ca: Issued
    ca_reused: bool  #: the directory's CA signed the certificates
    responder: Issued | None
    clients: tuple[Issued, ...]
    #: PKCS#12 password per bundle stem.
    passwords: dict[str, str] = attrs.field(repr=False)
    files: tuple[OutputFile, ...]


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------


def _dns_name(text: str) -> str:
    labels = text.rstrip(".").split(".")
    if len(text) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise PkiError(f"{text!r} is not a DNS name (letters, digits and '-' in dot-separated labels)")
    return text.rstrip(".")


def parse_san(text: str) -> x509.GeneralName:
    """A responder SAN from ``--san``: ``DNS:name``, ``IP:address``, ``email:user@host`` or bare.

    A bare value is an IP address if it parses as one, else a DNS name.
    ``DNS:192.0.2.2`` writes an address as a DNS name, which Windows needs
    when the VPN connection names the server by its address (it refuses an
    iPAddress SAN there: error 13801).
    """
    kind, sep, value = text.partition(":")
    kind = kind.lower() if sep else ""
    if kind == "dns":
        if _is_ip(value):
            return x509.DNSName(value)
        return x509.DNSName(_dns_name(value))
    if kind == "ip":
        if not _is_ip(value):
            raise PkiError(f"--san {text}: {value!r} is not an IP address")
        return x509.IPAddress(ipaddress.ip_address(value))
    if kind == "email":
        if value.count("@") != 1 or not all(value.split("@")):
            raise PkiError(f"--san {text}: {value!r} is not an e-mail address")
        return x509.RFC822Name(value)
    if _is_ip(text):
        return x509.IPAddress(ipaddress.ip_address(text))
    return x509.DNSName(_dns_name(text))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def client_identity(name: str) -> str:
    """Client ``name``'s e-mail SAN and IKE identity (ID_RFC822_ADDR): ``name@lab``, or ``name`` with an @."""
    return name if "@" in name else f"{name}@{CLIENT_DOMAIN}"


def check_client(name: str) -> None:
    """Raise :class:`PkiError` unless ``name`` is a usable client name (``--client``)."""
    local, _, domain = name.partition("@")
    if not _NAME.fullmatch(local) or name.count("@") > 1 or ("@" in name and not domain):
        raise PkiError(f"--client {name!r}: a name of letters, digits, '.', '_' and '-', or user@domain")
    if domain:
        _dns_name(domain)
    if name in ("ca", "responder"):
        raise PkiError(f"--client {name!r}: that name is the CA's or the responder's file")


def show_san(name: x509.GeneralName) -> str:
    """``DNS:name``, ``IP:address`` or ``email:address``, as ``--san`` writes them."""
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    return str(name.value)


# ---------------------------------------------------------------------------
# Keys and certificates
# ---------------------------------------------------------------------------


def _new_key(key_type: KeyType, rsa_bits: int) -> PrivateKey:
    if key_type is KeyType.RSA:
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if key_type is KeyType.ECDSA:
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def _signature_hash(key: PrivateKey) -> hashes.SHA256 | None:
    """SHA-256 for RSA (PKCS#1 v1.5) and ECDSA signatures; none for EdDSA, which hashes itself."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _make_ca(key: PrivateKey, now: datetime.datetime, days: int) -> x509.Certificate:
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME))
        .issuer_name(_name(CA_NAME))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=max(days, CA_DAYS)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return builder.sign(key, _signature_hash(key))


def _make_leaf(
    ca: Issued,
    key: PrivateKey,
    common_name: str,
    sans: Sequence[x509.GeneralName],
    usages: Sequence[x509.ObjectIdentifier],
    now: datetime.datetime,
    days: int,
) -> x509.Certificate:
    public = key.public_key()
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    not_after = min(now + datetime.timedelta(days=days), ca.cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )
    return builder.sign(ca.key, _signature_hash(ca.key))


def _load_ca(directory: Path, now: datetime.datetime) -> Issued | None:
    """The directory's CA (``ca.pem`` + ``ca.key``) if it holds one; :class:`PkiError` if half of one."""
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    if not cert_path.exists() and not key_path.exists():
        return None
    if not (cert_path.exists() and key_path.exists()):
        raise PkiError(f"{directory} holds only one of ca.pem and ca.key: remove it or use --force")
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise PkiError(f"cannot reuse the CA in {directory}: {error}") from None
    if not isinstance(
        key,
        rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey,
    ):
        raise PkiError(f"{key_path}: not an RSA, ECDSA or EdDSA key")
    if key.public_key() != cert.public_key():
        raise PkiError(f"{key_path} is not the key of {cert_path}")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise PkiError(f"{cert_path} is not a CA certificate with a subject key identifier")
    if cert.not_valid_after_utc <= now:
        raise PkiError(f"{cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}: --force makes a new CA")
    return Issued("ca", key, cert)


# ---------------------------------------------------------------------------
# Verification: the IKE policy (RFC 4945 §5.1.3) on cryptography's verifier
# ---------------------------------------------------------------------------

_IKE_EKUS: Final = frozenset(
    {
        ExtendedKeyUsageOID.IPSEC_IKE,
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    }
)


def _leaf_eku(_policy: Policy, _cert: x509.Certificate, value: x509.ExtendedKeyUsage | None) -> None:
    # RFC 4945 §5.1.3.12: no EKU, id-kp-ipsecIKE or anyExtendedKeyUsage; serverAuth and
    # clientAuth too, since Windows requires them and most deployed IKE certificates carry them.
    if value is not None and not _IKE_EKUS.intersection(value):
        raise ValueError("extendedKeyUsage allows no IKE use")


def _leaf_key_usage(_policy: Policy, _cert: x509.Certificate, value: x509.KeyUsage | None) -> None:
    # RFC 4945 §5.1.3.2: a keyUsage present must allow digitalSignature or nonRepudiation.
    if value is not None and not (value.digital_signature or value.content_commitment):
        raise ValueError("keyUsage allows neither digitalSignature nor nonRepudiation")


def _any_value(_policy: Policy, _cert: x509.Certificate, _value: x509.ExtensionType | None) -> None:
    """Accept the extension whatever it says (or its absence)."""


def ike_verifier(anchors: Sequence[x509.Certificate], when: datetime.datetime) -> ClientVerifier:
    """A verifier of IKE end-entity certificates chaining to ``anchors`` at time ``when``.

    cryptography's web-PKI client profile with three overrides (see the
    library notes): the leaf's EKU may be absent or must allow IKE (above),
    its SAN may be absent (a DN-only certificate), its keyUsage, when present,
    must allow signatures; CAs' EKUs are not checked.  Everything else (the
    signatures, validity, basicConstraints, the leaf's AKI) stays as the
    web PKI has it.  This checks what :func:`issue` makes; the IKE core
    authenticates peers with a policy of its own.
    """
    ee_policy = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _leaf_eku)
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, _any_value)
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _leaf_key_usage)
    )
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _any_value
    )
    return (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(when)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )


# ---------------------------------------------------------------------------
# issue(): everything in memory
# ---------------------------------------------------------------------------


def _pem_key(key: PrivateKey) -> bytes:
    """PKCS#8, unencrypted: what ``--key`` reads (and swanctl's ``private/``)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pkcs12(leaf: Issued, ca: x509.Certificate, password: str) -> bytes:
    """Key, certificate and CA, PBE-SHA1-3DES with a SHA-1 MAC (see the module's docstring)."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())  # noqa: S303 (the MAC old clients verify; the password is the secret)
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(
        leaf.name.encode(), leaf.key, leaf.cert, [pkcs12.PKCS12Certificate(ca, CA_NAME.encode())], encryption
    )


def _password() -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(_PASSWORD_LENGTH))


def issue(request: PkiRequest, now: datetime.datetime) -> IssuedPki:
    """Make the keys, certificates and bundles ``request`` asks for, valid from ``now`` minus one hour.

    Raises :class:`PkiError` for a bad name, a half-present or unusable CA
    in the directory, or (without ``force``) a file that is already there.
    """
    for name in request.clients:
        check_client(name)
    if len(set(request.clients)) != len(request.clients):
        raise PkiError("--client: each name once")
    if request.responder_id is None and not request.clients:
        raise PkiError("nothing to make: --no-responder and no --client")
    responder_sans: list[x509.GeneralName] = []
    if request.responder_id is not None:
        first = parse_san(request.responder_id)
        if isinstance(first, x509.RFC822Name):
            raise PkiError(f"--responder-id {request.responder_id}: a DNS name or an IP address")
        responder_sans = [first, *(parse_san(text) for text in request.sans)]
        responder_sans = list(dict.fromkeys(responder_sans))  # once each, in order

    directory = request.directory
    existing_ca = None if request.force else _load_ca(directory, now)
    if not request.force:  # before any key is made: RSA keys take a while
        stems = (["responder"] if request.responder_id is not None else []) + list(request.clients)
        suffixes = [".pem", ".key", ".p12"] + ([".p12.password"] if request.p12_password is None else [])
        planned = [directory / f"{stem}{suffix}" for stem in stems for suffix in suffixes]
        in_the_way = [str(path) for path in planned if os.path.lexists(path)]
        if in_the_way:
            raise PkiError(
                f"not overwriting {', '.join(in_the_way)} (--force makes everything anew; "
                "--no-responder --client NAME adds a client to the CA there)"
            )
    if existing_ca is not None:
        ca = existing_ca
    else:
        ca_type = KeyType.RSA if request.key_type is KeyType.RSA else KeyType.ECDSA
        ca_key = _new_key(ca_type, request.rsa_bits)
        ca = Issued("ca", ca_key, _make_ca(ca_key, now, request.days))

    leaves: list[Issued] = []
    responder = None
    if request.responder_id is not None:
        key = _new_key(request.key_type, request.rsa_bits)
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.IPSEC_IKE, IKE_INTERMEDIATE]
        responder = Issued(
            "responder",
            key,
            _make_leaf(ca, key, request.responder_id, responder_sans, usages, now, request.days),
        )
        leaves.append(responder)
    clients = []
    for name in request.clients:
        key = _new_key(request.key_type, request.rsa_bits)
        sans = [x509.RFC822Name(client_identity(name))]
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.IPSEC_IKE]
        clients.append(Issued(name, key, _make_leaf(ca, key, name, sans, usages, now, request.days)))
    leaves += clients

    verifier = ike_verifier([ca.cert], now)
    for leaf in leaves:  # a mistake here would surface only on a client: check now
        try:
            verifier.verify(leaf.cert, [])
        except VerificationError as error:  # a reused CA the IKE profile refuses (an Ed25519 one, ...)
            issuer = ca.cert.subject.rfc4514_string()
            raise PkiError(f"the {leaf.name} certificate does not verify under {issuer}: {error}") from None

    files: list[OutputFile] = []
    if existing_ca is None:
        files += [
            OutputFile(
                directory / "ca.pem", _pem_cert(ca.cert), False, "CA certificate: trust it on clients"
            ),
            OutputFile(directory / "ca.key", _pem_key(ca.key), True, "CA key: signs more certificates"),
        ]
    passwords: dict[str, str] = {}
    for leaf in leaves:
        role = "responder" if leaf is responder else f"client {client_identity(leaf.name)}"
        password = request.p12_password if request.p12_password is not None else _password()
        passwords[leaf.name] = password
        files += [
            OutputFile(directory / f"{leaf.name}.pem", _pem_cert(leaf.cert), False, f"{role} certificate"),
            OutputFile(directory / f"{leaf.name}.key", _pem_key(leaf.key), True, f"{role} key (PKCS#8)"),
            OutputFile(
                directory / f"{leaf.name}.p12",
                _pkcs12(leaf, ca.cert, password),
                True,
                f"{role} PKCS#12: key, certificate and CA",
            ),
        ]
        if request.p12_password is None:
            files.append(
                OutputFile(
                    directory / f"{leaf.name}.p12.password",
                    password.encode() + b"\n",
                    True,
                    f"password of {leaf.name}.p12",
                )
            )
    return IssuedPki(
        request=request,
        ca=ca,
        ca_reused=existing_ca is not None,
        responder=responder,
        clients=tuple(clients),
        passwords=passwords,
        files=tuple(files),
    )


# ---------------------------------------------------------------------------
# write(): the files
# ---------------------------------------------------------------------------


def write(pki: IssuedPki) -> None:
    """Write every file of ``pki``: secrets 0600, certificates 0644 (less the umask), a new directory 0700.

    A file is created anew (``O_EXCL``, never through a symbolic link); with
    ``force`` an existing one is removed first, so it gets the new mode too.
    """
    directory = pki.request.directory
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for file in pki.files:
        if pki.request.force and os.path.lexists(file.path):
            file.path.unlink()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(file.path, flags, 0o600 if file.secret else 0o644)
        with os.fdopen(fd, "wb") as stream:
            stream.write(file.data)
