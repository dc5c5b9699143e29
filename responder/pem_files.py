"""Reading certificates, private keys and CRLs from PEM (or DER) files for the configuration.

Strategy: the core holds ``cryptography`` objects and never touches files
(:class:`~responder.core.config.Credential`,
:class:`~responder.core.config.TrustStore`); the command line and the TOML
loader read the files here.  Every failure is a
:class:`~responder.core.config.ConfigError` that names the file and says what
was wrong with it, so ``--cert``, ``--key``, ``--ca`` and ``--crl`` (or
``certificates.cert`` and friends in the file) point the user at the right
place.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key

from responder.core.config import ConfigError, Credential
from responder.core.signatures import PrivateKey

__all__ = ["load_certificates", "load_credential", "load_crls", "load_private_key"]

_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PEM_CRL = b"-----BEGIN X509 CRL-----"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {str(path)!r}: {error.strerror or error}") from None


def load_certificates(path: Path) -> tuple[x509.Certificate, ...]:
    """Every certificate in a PEM file (in file order), or the one in a DER file."""
    data = _read(path)
    try:
        if _PEM_CERTIFICATE in data:
            certificates = tuple(x509.load_pem_x509_certificates(data))
        else:
            certificates = (x509.load_der_x509_certificate(data),)
    except ValueError:
        what = "a PEM certificate that does not decode" if _PEM_CERTIFICATE in data else "neither PEM nor DER"
        raise ConfigError(f"{str(path)!r} holds no readable certificate ({what})") from None
    for index, certificate in enumerate(certificates):
        try:
            certificate.public_key()
            certificate.subject.rfc4514_string()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            which = f"certificate {index + 1} of {str(path)!r}"
            raise ConfigError(f"{which} has a key or a name we cannot read") from None
    return certificates


def load_private_key(path: Path) -> PrivateKey:
    """An unencrypted private key (PKCS#8 or the traditional RSA/EC forms, PEM or DER)."""
    data = _read(path)
    loader = load_pem_private_key if b"-----BEGIN" in data else load_der_private_key
    try:
        key = loader(data, password=None)
    except TypeError:
        raise ConfigError(
            f"{str(path)!r}: encrypted private keys are not supported; decrypt it first"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        what = (
            "a PEM block that is not a private key we read"
            if b"-----BEGIN" in data
            else "neither PEM nor DER"
        )
        raise ConfigError(f"{str(path)!r} holds no readable private key ({what})") from None
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return key
    raise ConfigError(
        f"{str(path)!r}: {type(key).__name__} keys cannot sign IKE (RSA, ECDSA, Ed25519, Ed448 can)"
    )


def load_credential(cert_path: Path, key_path: Path) -> Credential:
    """Our certificate chain (leaf first) and its key."""
    chain = load_certificates(cert_path)
    key = load_private_key(key_path)
    try:
        return Credential(chain, key)
    except ConfigError as error:
        if "does not belong" in error.message:
            raise ConfigError(
                f"the private key in {str(key_path)!r} does not belong to the first certificate in "
                f"{str(cert_path)!r}"
            ) from None
        raise ConfigError(f"{str(cert_path)!r}: {error.message}") from None


def load_crls(path: Path) -> tuple[x509.CertificateRevocationList, ...]:
    """Every CRL in a PEM file, or the one in a DER file."""
    data = _read(path)
    try:
        if _PEM_CRL in data:
            blocks = data.split(_PEM_CRL)[1:]
            return tuple(x509.load_pem_x509_crl(_PEM_CRL + block) for block in blocks)
        return (x509.load_der_x509_crl(data),)
    except ValueError:
        what = "a PEM CRL that does not decode" if _PEM_CRL in data else "neither PEM nor DER"
        raise ConfigError(f"{str(path)!r} holds no readable CRL ({what})") from None
