"""Signature AUTH payloads: RSA, ECDSA, RSASSA-PSS, Ed25519 and Ed448 (RFC 7296 §3.8, RFC 7427, RFC 8420).

Strategy: an AUTH payload signed with a private key takes one of three shapes.

* Method 1, RSA Digital Signature (RFC 7296 §3.8): RSASSA-PKCS1-v1_5 with
  SHA-1, the octets of the signature only.
* Methods 9, 10 and 11, ECDSA (RFC 4754 §3): the curve fixes the hash (P-256
  with SHA-256, P-384 with SHA-384, P-521 with SHA-512) and the signature is
  ``r | s``, each padded to the curve's size.
* Method 14, Digital Signature (RFC 7427 §3): one octet giving the length of
  an ASN.1 AlgorithmIdentifier, the AlgorithmIdentifier (which names the
  scheme and its hash), then the signature; ECDSA signatures are DER
  ``Ecdsa-Sig-Value`` here, Ed25519 and Ed448 sign the octets themselves
  (RFC 8420 §2, hash "identity").

:func:`create_signature` picks the shape the peer can verify: method 14 with a
hash from the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4) when it sent one,
the key type's legacy method otherwise; :func:`signature_plan` says why, so
the log can tell a user whose peer cannot verify us.  :func:`verify_signature`
takes any of the three shapes and raises :class:`SignatureError` with a
one-line reason.  SHA-1 is refused inside method 14 (RFC 8247 §3.2: MUST NOT)
and accepted only in method 1, which has no other hash.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final, TypeAlias

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from responder.core.der import der_read, der_tlv
from responder.core.enums import AuthMethod, HashAlgorithm
from responder.core.payloads import AuthPayload

__all__ = [
    "ALGORITHM_IDENTIFIERS",
    "SIGNATURE_HASHES",
    "PrivateKey",
    "PublicKey",
    "Scheme",
    "SignatureError",
    "SignaturePlan",
    "create_signature",
    "key_description",
    "signature_plan",
    "verify_signature",
]

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
)
PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

#: What we list in our SIGNATURE_HASH_ALGORITHMS notify (RFC 7427 §4; SHA-1 left out, RFC 8247 §3.2).
SIGNATURE_HASHES: Final = (
    HashAlgorithm.SHA2_256,
    HashAlgorithm.SHA2_384,
    HashAlgorithm.SHA2_512,
    HashAlgorithm.IDENTITY,
)


class SignatureError(ValueError):
    """An AUTH payload does not verify, or cannot be made; the message is the reason, one line."""


class Scheme(enum.Enum):
    """The signature scheme an RFC 7427 AlgorithmIdentifier names."""

    RSA_PKCS1 = "RSASSA-PKCS1-v1_5"
    RSA_PSS = "RSASSA-PSS"
    ECDSA = "ECDSA"
    ED25519 = "Ed25519"
    ED448 = "Ed448"


_HASH_CLASSES: Final[dict[HashAlgorithm, type[hashes.HashAlgorithm]]] = {
    HashAlgorithm.SHA1: hashes.SHA1,
    HashAlgorithm.SHA2_256: hashes.SHA256,
    HashAlgorithm.SHA2_384: hashes.SHA384,
    HashAlgorithm.SHA2_512: hashes.SHA512,
}

_SHA_OIDS: Final = {  # DER OBJECT IDENTIFIER contents of the hash functions (RFC 4055 §2.1)
    HashAlgorithm.SHA1: bytes.fromhex("2b0e03021a"),
    HashAlgorithm.SHA2_256: bytes.fromhex("608648016503040201"),
    HashAlgorithm.SHA2_384: bytes.fromhex("608648016503040202"),
    HashAlgorithm.SHA2_512: bytes.fromhex("608648016503040203"),
}
_RSASSA_PSS_OID: Final = bytes.fromhex("2a864886f70d01010a")  # 1.2.840.113549.1.1.10
_MGF1_OID: Final = bytes.fromhex("2a864886f70d010108")  # 1.2.840.113549.1.1.8


def _pss_identifier(hash_algorithm: HashAlgorithm) -> bytes:
    """id-RSASSA-PSS with hash, MGF1 with the same hash and a salt as long as the hash (RFC 4055 §3.1).

    DER leaves out trailerField, whose value 1 is its DEFAULT (X.690 §11.5), as strongSwan and
    libreswan do.  RFC 7427 A.4.3 spells it out; libreswan 4.10 compares the identifier byte for
    byte with the DER form and refuses that one, so we send DER and verify both.
    """
    hash_id = der_tlv(0x30, der_tlv(0x06, _SHA_OIDS[hash_algorithm]) + b"\x05\x00")
    salt = _HASH_CLASSES[hash_algorithm]().digest_size
    parameters = (
        der_tlv(0xA0, hash_id)
        + der_tlv(0xA1, der_tlv(0x30, der_tlv(0x06, _MGF1_OID) + hash_id))
        + der_tlv(0xA2, der_tlv(0x02, bytes([salt])))
    )
    return der_tlv(0x30, der_tlv(0x06, _RSASSA_PSS_OID) + der_tlv(0x30, parameters))


#: RFC 7427 Appendix A (and RFC 8420 §2 for EdDSA): (scheme, hash) -> DER AlgorithmIdentifier.
ALGORITHM_IDENTIFIERS: Final[dict[tuple[Scheme, HashAlgorithm], bytes]] = {
    (Scheme.RSA_PKCS1, HashAlgorithm.SHA1): bytes.fromhex("300d06092a864886f70d0101050500"),  # A.1.1
    (Scheme.RSA_PKCS1, HashAlgorithm.SHA2_256): bytes.fromhex("300d06092a864886f70d01010b0500"),  # A.1.2
    (Scheme.RSA_PKCS1, HashAlgorithm.SHA2_384): bytes.fromhex("300d06092a864886f70d01010c0500"),  # A.1.3
    (Scheme.RSA_PKCS1, HashAlgorithm.SHA2_512): bytes.fromhex("300d06092a864886f70d01010d0500"),  # A.1.4
    (Scheme.ECDSA, HashAlgorithm.SHA1): bytes.fromhex("300906072a8648ce3d0401"),  # A.3.1
    (Scheme.ECDSA, HashAlgorithm.SHA2_256): bytes.fromhex("300a06082a8648ce3d040302"),  # A.3.2
    (Scheme.ECDSA, HashAlgorithm.SHA2_384): bytes.fromhex("300a06082a8648ce3d040303"),  # A.3.3
    (Scheme.ECDSA, HashAlgorithm.SHA2_512): bytes.fromhex("300a06082a8648ce3d040304"),  # A.3.4
    (Scheme.RSA_PSS, HashAlgorithm.SHA2_256): _pss_identifier(HashAlgorithm.SHA2_256),  # A.4.3, in DER
    (Scheme.RSA_PSS, HashAlgorithm.SHA2_384): _pss_identifier(HashAlgorithm.SHA2_384),
    (Scheme.RSA_PSS, HashAlgorithm.SHA2_512): _pss_identifier(HashAlgorithm.SHA2_512),
    (Scheme.ED25519, HashAlgorithm.IDENTITY): bytes.fromhex("300506032b6570"),  # RFC 8410 §3 id-Ed25519
    (Scheme.ED448, HashAlgorithm.IDENTITY): bytes.fromhex("300506032b6571"),  # RFC 8410 §3 id-Ed448
}
_BY_IDENTIFIER: Final = {der: key for key, der in ALGORITHM_IDENTIFIERS.items()}

# RFC 4754 §3 and §8: the ECDSA methods and the curve each one fixes.
_ECDSA_METHODS: Final[dict[str, tuple[AuthMethod, HashAlgorithm]]] = {
    "secp256r1": (AuthMethod.ECDSA_SHA256_P256, HashAlgorithm.SHA2_256),
    "secp384r1": (AuthMethod.ECDSA_SHA384_P384, HashAlgorithm.SHA2_384),
    "secp521r1": (AuthMethod.ECDSA_SHA512_P521, HashAlgorithm.SHA2_512),
}
_ECDSA_BY_METHOD: Final = {method: (curve, h) for curve, (method, h) in _ECDSA_METHODS.items()}


def key_description(key: PublicKey | PrivateKey) -> str:
    """``RSA-2048``, ``ECDSA P-256``, ``Ed25519``: for log lines."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        names = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"ECDSA {names.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "Ed25519"
    return "Ed448"


# --------------------------------------------------------------------------- signing


@attrs.frozen
class SignaturePlan:
    """How we sign for one peer: the method, and for method 14 the scheme and hash; ``note``
    explains a choice the peer may not be able to verify (for the log), else ``None``."""

    method: AuthMethod
    scheme: Scheme
    hash: HashAlgorithm
    note: str | None = None

    def __str__(self) -> str:
        if self.method is AuthMethod.DIGITAL_SIGNATURE:
            return f"{self.scheme.value} with {self.hash.name} (RFC 7427)"
        return f"{self.method.name}"


def _preferred_hashes(key: PrivateKey) -> tuple[HashAlgorithm, ...]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        first = _ECDSA_METHODS.get(key.curve.name, (None, HashAlgorithm.SHA2_256))[1]
        rest = (HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512)
        return (first, *(h for h in rest if h is not first))
    return (HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512)


def _legacy(key: PrivateKey, why: str, *, peer_sent_none: bool = False) -> SignaturePlan:
    """The key type's method from before RFC 7427 (RFC 7296 §3.8, RFC 4754)."""
    note = None if peer_sent_none else f"{why}: signing with the legacy method"
    if isinstance(key, rsa.RSAPrivateKey):
        return SignaturePlan(AuthMethod.RSA_DIGITAL_SIGNATURE, Scheme.RSA_PKCS1, HashAlgorithm.SHA1, note)
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _ECDSA_METHODS:
        method, hash_algorithm = _ECDSA_METHODS[key.curve.name]
        return SignaturePlan(method, Scheme.ECDSA, hash_algorithm, note)
    scheme = Scheme.ED25519 if isinstance(key, ed25519.Ed25519PrivateKey) else Scheme.ED448
    if isinstance(key, ec.EllipticCurvePrivateKey):  # a curve RFC 4754 has no method for
        scheme = Scheme.ECDSA
        return SignaturePlan(
            AuthMethod.DIGITAL_SIGNATURE,
            scheme,
            HashAlgorithm.SHA2_256,
            f"{why}, and {key_description(key)} has no method of its own: signing with RFC 7427 anyway",
        )
    return SignaturePlan(
        AuthMethod.DIGITAL_SIGNATURE,
        scheme,
        HashAlgorithm.IDENTITY,
        f"{why}, and {scheme.value} exists only as RFC 7427 Digital Signature: signing with it anyway",
    )


def signature_plan(
    key: PrivateKey, peer_hashes: Iterable[HashAlgorithm] | None, *, rsa_pss: bool = True
) -> SignaturePlan:
    """Choose how to sign with ``key`` so that the peer can verify it (RFC 7427 §4).

    ``peer_hashes`` is the peer's SIGNATURE_HASH_ALGORITHMS list (``None`` when
    it sent none).  With a list, method 14 with the first hash of ours the peer
    supports: for ECDSA the curve's own hash first, for RSA SHA-256 first,
    RSASSA-PSS unless ``rsa_pss`` is off (RFC 8247 §3.2 prefers it), Ed25519 and
    Ed448 with "identity" (RFC 8420 §2).  Without a list, or with none we can
    use, the legacy method of the key type, with a note for the log.
    """
    if peer_hashes is None:
        return _legacy(key, "the peer sent no SIGNATURE_HASH_ALGORITHMS", peer_sent_none=True)
    offered = set(peer_hashes)
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        scheme = Scheme.ED25519 if isinstance(key, ed25519.Ed25519PrivateKey) else Scheme.ED448
        if HashAlgorithm.IDENTITY in offered:
            return SignaturePlan(AuthMethod.DIGITAL_SIGNATURE, scheme, HashAlgorithm.IDENTITY)
        return _legacy(key, "the peer's SIGNATURE_HASH_ALGORITHMS lacks 'identity'")
    scheme = Scheme.ECDSA
    if isinstance(key, rsa.RSAPrivateKey):
        scheme = Scheme.RSA_PSS if rsa_pss else Scheme.RSA_PKCS1
    for hash_algorithm in _preferred_hashes(key):
        if hash_algorithm in offered:
            return SignaturePlan(AuthMethod.DIGITAL_SIGNATURE, scheme, hash_algorithm)
    listed = ", ".join(sorted(h.name for h in offered)) or "nothing"
    return _legacy(key, f"the peer's SIGNATURE_HASH_ALGORITHMS lists {listed}, no SHA-2")


def _sign(key: PrivateKey, scheme: Scheme, hash_algorithm: HashAlgorithm, octets: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return key.sign(octets)
    chosen = _HASH_CLASSES[hash_algorithm]()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(octets, ec.ECDSA(chosen))
    if scheme is Scheme.RSA_PSS:
        return key.sign(octets, padding.PSS(padding.MGF1(chosen), chosen.digest_size), chosen)
    return key.sign(octets, padding.PKCS1v15(), chosen)


def create_signature(
    key: PrivateKey, octets: bytes, peer_hashes: Iterable[HashAlgorithm] | None, *, rsa_pss: bool = True
) -> AuthPayload:
    """Our AUTH payload over ``octets`` (RFC 7296 §2.15), signed as :func:`signature_plan` chooses."""
    return sign_with_plan(key, octets, signature_plan(key, peer_hashes, rsa_pss=rsa_pss))


def sign_with_plan(key: PrivateKey, octets: bytes, plan: SignaturePlan) -> AuthPayload:
    """The AUTH payload of ``plan`` over ``octets``."""
    signature = _sign(key, plan.scheme, plan.hash, octets)
    if plan.method is AuthMethod.DIGITAL_SIGNATURE:  # RFC 7427 §3
        identifier = ALGORITHM_IDENTIFIERS[(plan.scheme, plan.hash)]
        return AuthPayload(plan.method, bytes([len(identifier)]) + identifier + signature)
    if plan.scheme is Scheme.ECDSA:  # RFC 4754 §3: r | s, each the size of the curve
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(signature)
        size = (key.curve.key_size + 7) // 8
        return AuthPayload(plan.method, r.to_bytes(size, "big") + s.to_bytes(size, "big"))
    return AuthPayload(plan.method, signature)


# --------------------------------------------------------------------------- verifying


def _hash_of(identifier: bytes) -> HashAlgorithm:
    """The hash of a DER AlgorithmIdentifier of a SHA function (parameters NULL or absent)."""
    tag, content, end = der_read(identifier, 0)
    if tag != 0x30 or end != len(identifier):
        raise ValueError("not a SEQUENCE")
    tag, oid, after = der_read(content, 0)
    if tag != 0x06 or content[after:] not in (b"", b"\x05\x00"):
        raise ValueError("not a hash identifier")
    for hash_algorithm, known in _SHA_OIDS.items():
        if known == oid:
            return hash_algorithm
    raise ValueError(f"unknown hash OID {oid.hex()}")


@attrs.frozen
class _PssParameters:
    hash: HashAlgorithm
    mgf_hash: HashAlgorithm
    salt_length: int


def _pss_parameters(identifier: bytes) -> _PssParameters | None:
    """RSASSA-PSS-params of an id-RSASSA-PSS AlgorithmIdentifier (RFC 4055 §3.1); ``None`` if not PSS."""
    try:
        tag, content, end = der_read(identifier, 0)
        tag_oid, oid, offset = der_read(content, 0)
    except ValueError:
        return None
    if tag != 0x30 or end != len(identifier) or tag_oid != 0x06 or oid != _RSASSA_PSS_OID:
        return None
    try:
        hash_algorithm = mgf_hash = HashAlgorithm.SHA1  # the defaults (RFC 4055 §3.1)
        salt, trailer = 20, 1
        tag, parameters, end = der_read(content, offset)
        if tag != 0x30 or end != len(content):
            raise ValueError("parameters are not a SEQUENCE")
        position = 0
        while position < len(parameters):
            tag, field, position = der_read(parameters, position)
            if tag == 0xA0:
                hash_algorithm = _hash_of(field)
            elif tag == 0xA1:
                _, mgf, _ = der_read(field, 0)
                _, mgf_oid, after = der_read(mgf, 0)
                if mgf_oid != _MGF1_OID:
                    raise ValueError("mask generation is not MGF1")
                mgf_hash = _hash_of(mgf[after:])
            elif tag in (0xA2, 0xA3):
                _, number, _ = der_read(field, 0)
                if not 1 <= len(number) <= 2:
                    raise ValueError("bad integer")
                if tag == 0xA2:
                    salt = int.from_bytes(number, "big")
                else:
                    trailer = int.from_bytes(number, "big")
            else:
                raise ValueError(f"unknown parameter tag {tag:#x}")
        if trailer != 1:
            raise ValueError("trailer field is not 1")
    except ValueError as error:
        raise SignatureError(f"malformed RSASSA-PSS parameters: {error}") from None
    return _PssParameters(hash_algorithm, mgf_hash, salt)


def _check_key(key: PublicKey, scheme: Scheme, what: str) -> None:
    wanted: dict[Scheme, type | tuple[type, ...]] = {
        Scheme.RSA_PKCS1: rsa.RSAPublicKey,
        Scheme.RSA_PSS: rsa.RSAPublicKey,
        Scheme.ECDSA: ec.EllipticCurvePublicKey,
        Scheme.ED25519: ed25519.Ed25519PublicKey,
        Scheme.ED448: ed448.Ed448PublicKey,
    }
    if not isinstance(key, wanted[scheme]):
        raise SignatureError(f"{what} needs a {scheme.value} key, the peer's is {key_description(key)}")


def _verify_digital_signature(key: PublicKey, octets: bytes, data: bytes) -> str:
    """Method 14 (RFC 7427 §3); the scheme and hash used, for the log."""
    if not data or len(data) < 1 + data[0]:
        raise SignatureError("Digital Signature AUTH data is shorter than its AlgorithmIdentifier length")
    identifier, signature = data[1 : 1 + data[0]], data[1 + data[0] :]
    known = _BY_IDENTIFIER.get(identifier)
    if known is not None:
        scheme, hash_algorithm = known
        salt = _HASH_CLASSES[hash_algorithm]().digest_size if scheme is Scheme.RSA_PSS else 0
        mgf_hash = hash_algorithm
    else:
        pss = _pss_parameters(identifier)
        if pss is None:
            raise SignatureError(f"unsupported signature AlgorithmIdentifier {identifier.hex()}")
        scheme, hash_algorithm, salt, mgf_hash = Scheme.RSA_PSS, pss.hash, pss.salt_length, pss.mgf_hash
    what = f"{scheme.value} with {hash_algorithm.name}"
    if hash_algorithm is HashAlgorithm.SHA1:
        raise SignatureError(f"{what} refused: SHA-1 MUST NOT be used in Digital Signatures (RFC 8247 §3.2)")
    _check_key(key, scheme, what)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, octets)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, octets, ec.ECDSA(_HASH_CLASSES[hash_algorithm]()))
        elif isinstance(key, rsa.RSAPublicKey):
            chosen = _HASH_CLASSES[hash_algorithm]()
            if scheme is Scheme.RSA_PSS:
                mgf = padding.MGF1(_HASH_CLASSES[mgf_hash]())
                key.verify(signature, octets, padding.PSS(mgf, salt), chosen)
            else:
                key.verify(signature, octets, padding.PKCS1v15(), chosen)
    except InvalidSignature:
        raise SignatureError(f"bad signature ({what})") from None
    return what


def verify_signature(key: PublicKey, octets: bytes, auth: AuthPayload) -> str:
    """Check a signature AUTH payload over ``octets`` with the peer's public ``key``.

    Returns the scheme that verified (for the log); raises
    :class:`SignatureError` naming the reason otherwise (a method we do not
    take, a key of the wrong type, SHA-1 in method 14, a bad signature).
    """
    method, data = auth.method, auth.data
    if method == AuthMethod.DIGITAL_SIGNATURE:
        return _verify_digital_signature(key, octets, data)
    if method == AuthMethod.RSA_DIGITAL_SIGNATURE:  # RFC 7296 §3.8: PKCS#1 v1.5 with SHA-1
        _check_key(key, Scheme.RSA_PKCS1, "RSA Digital Signature (method 1)")
        assert isinstance(key, rsa.RSAPublicKey)
        try:
            key.verify(data, octets, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - method 1 is SHA-1
        except InvalidSignature:
            raise SignatureError("bad signature (RSA Digital Signature, method 1)") from None
        return "RSASSA-PKCS1-v1_5 with SHA1 (method 1)"
    if method in _ECDSA_BY_METHOD:  # RFC 4754 §3
        curve, hash_algorithm = _ECDSA_BY_METHOD[method]
        what = f"{AuthMethod(method).name} (RFC 4754)"
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != curve:
            raise SignatureError(f"{what} needs a key on {curve}, the peer's is {key_description(key)}")
        size = (key.curve.key_size + 7) // 8
        if len(data) != 2 * size:
            raise SignatureError(f"{what}: signature is {len(data)} octets, expected {2 * size}")
        der = encode_dss_signature(int.from_bytes(data[:size], "big"), int.from_bytes(data[size:], "big"))
        try:
            key.verify(der, octets, ec.ECDSA(_HASH_CLASSES[hash_algorithm]()))
        except InvalidSignature:
            raise SignatureError(f"bad signature ({what})") from None
        return what
    name = method.name if isinstance(method, AuthMethod) else str(int(method))
    raise SignatureError(f"authentication method {name} is not a signature method we take")
