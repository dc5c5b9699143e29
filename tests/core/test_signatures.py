"""Signature AUTH payloads (responder.core.signatures): RFC 7427 Appendix A and B byte for byte,
every method both ways, the choice of method from SIGNATURE_HASH_ALGORITHMS, and every refusal.

Requirement rows: C1-C9 of responder-requirements.md (signature authentication).
"""

from __future__ import annotations

import functools

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from responder.core.enums import AuthMethod, HashAlgorithm
from responder.core.payloads import AuthPayload
from responder.core.signatures import (
    ALGORITHM_IDENTIFIERS,
    SIGNATURE_HASHES,
    PrivateKey,
    Scheme,
    SignatureError,
    create_signature,
    signature_plan,
    verify_signature,
)

OCTETS = b"RealMessage | NonceData | prf(SK_p, IDx')"


@functools.cache
def key(name: str) -> PrivateKey:
    makers = {
        "rsa2048": lambda: rsa.generate_private_key(65537, 2048),
        "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
        "p521": lambda: ec.generate_private_key(ec.SECP521R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
        "ed448": ed448.Ed448PrivateKey.generate,
    }
    made: PrivateKey = makers[name]()
    return made


ONLY_512 = (HashAlgorithm.SHA2_512,)
KEYS = ("rsa2048", "p256", "p384", "p521", "ed25519", "ed448")


# --------------------------------------------------------------------------- RFC 7427 Appendix A


@pytest.mark.parametrize(
    ("scheme", "hash_algorithm", "rfc_hex"),
    [
        (Scheme.RSA_PKCS1, HashAlgorithm.SHA1, "300d 0609 2a86 4886 f70d 0101 0505 00"),  # A.1.1
        (Scheme.RSA_PKCS1, HashAlgorithm.SHA2_256, "300d 0609 2a86 4886 f70d 0101 0b05 00"),  # A.1.2
        (Scheme.RSA_PKCS1, HashAlgorithm.SHA2_384, "300d 0609 2a86 4886 f70d 0101 0c05 00"),  # A.1.3
        (Scheme.RSA_PKCS1, HashAlgorithm.SHA2_512, "300d 0609 2a86 4886 f70d 0101 0d05 00"),  # A.1.4
        (Scheme.ECDSA, HashAlgorithm.SHA1, "3009 0607 2a86 48ce 3d04 01"),  # A.3.1
        (Scheme.ECDSA, HashAlgorithm.SHA2_256, "300a 0608 2a86 48ce 3d04 0302"),  # A.3.2
        (Scheme.ECDSA, HashAlgorithm.SHA2_384, "300a 0608 2a86 48ce 3d04 0303"),  # A.3.3
        (Scheme.ECDSA, HashAlgorithm.SHA2_512, "300a 0608 2a86 48ce 3d04 0304"),  # A.3.4
        (
            Scheme.RSA_PSS,
            HashAlgorithm.SHA2_256,
            "3041 0609 2a86 4886 f70d 0101 0a30 34a0 0f30 0d06 0960 8648 0165 0304 0201 0500"
            "a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0201 0500 a203"
            "0201 20",
        ),  # A.4.3 in DER: without its trailerField [3] INTEGER 1, the DEFAULT (X.690 §11.5)
    ],
)
def test_algorithm_identifiers_are_rfc7427_appendix_a(
    scheme: Scheme, hash_algorithm: HashAlgorithm, rfc_hex: str
) -> None:
    assert ALGORITHM_IDENTIFIERS[(scheme, hash_algorithm)] == bytes.fromhex(rfc_hex.replace(" ", ""))


def test_eddsa_identifiers_are_rfc8410() -> None:
    assert ALGORITHM_IDENTIFIERS[(Scheme.ED25519, HashAlgorithm.IDENTITY)].hex() == "300506032b6570"
    assert ALGORITHM_IDENTIFIERS[(Scheme.ED448, HashAlgorithm.IDENTITY)].hex() == "300506032b6571"


def test_auth_payload_starts_as_rfc7427_appendix_b() -> None:
    """B.1 with sha256WithRSAEncryption: method 14, RESERVED, length 0x0f, then the identifier."""
    auth = create_signature(key("rsa2048"), OCTETS, [HashAlgorithm.SHA2_256], rsa_pss=False)
    body = bytes([auth.method, 0, 0, 0]) + auth.data
    assert body[:20].hex() == "0e0000000f300d06092a864886f70d01010b0500"
    assert len(auth.data) == 1 + 15 + 256


# --------------------------------------------------------------------------- signing and verifying


@pytest.mark.parametrize("name", KEYS)
@pytest.mark.parametrize("peer_hashes", [None, SIGNATURE_HASHES], ids=["legacy", "rfc7427"])
@pytest.mark.parametrize("rsa_pss", [True, False], ids=["pss", "pkcs1"])
def test_every_key_signs_what_it_verifies(
    name: str, peer_hashes: tuple[HashAlgorithm, ...] | None, rsa_pss: bool
) -> None:
    private = key(name)
    auth = create_signature(private, OCTETS, peer_hashes, rsa_pss=rsa_pss)
    assert verify_signature(private.public_key(), OCTETS, auth)
    with pytest.raises(SignatureError, match="bad signature"):
        verify_signature(private.public_key(), OCTETS + b"x", auth)


@pytest.mark.parametrize(
    ("name", "peer_hashes", "method", "scheme", "hash_algorithm"),
    [
        ("rsa2048", None, AuthMethod.RSA_DIGITAL_SIGNATURE, Scheme.RSA_PKCS1, HashAlgorithm.SHA1),
        ("p256", None, AuthMethod.ECDSA_SHA256_P256, Scheme.ECDSA, HashAlgorithm.SHA2_256),
        ("p384", None, AuthMethod.ECDSA_SHA384_P384, Scheme.ECDSA, HashAlgorithm.SHA2_384),
        ("p521", None, AuthMethod.ECDSA_SHA512_P521, Scheme.ECDSA, HashAlgorithm.SHA2_512),
        ("rsa2048", SIGNATURE_HASHES, AuthMethod.DIGITAL_SIGNATURE, Scheme.RSA_PSS, HashAlgorithm.SHA2_256),
        ("p256", SIGNATURE_HASHES, AuthMethod.DIGITAL_SIGNATURE, Scheme.ECDSA, HashAlgorithm.SHA2_256),
        ("p384", SIGNATURE_HASHES, AuthMethod.DIGITAL_SIGNATURE, Scheme.ECDSA, HashAlgorithm.SHA2_384),
        ("p521", SIGNATURE_HASHES, AuthMethod.DIGITAL_SIGNATURE, Scheme.ECDSA, HashAlgorithm.SHA2_512),
        ("p256", ONLY_512, AuthMethod.DIGITAL_SIGNATURE, Scheme.ECDSA, HashAlgorithm.SHA2_512),
        ("ed25519", SIGNATURE_HASHES, AuthMethod.DIGITAL_SIGNATURE, Scheme.ED25519, HashAlgorithm.IDENTITY),
        ("ed448", SIGNATURE_HASHES, AuthMethod.DIGITAL_SIGNATURE, Scheme.ED448, HashAlgorithm.IDENTITY),
    ],
)
def test_the_method_follows_the_peers_hash_list(
    name: str,
    peer_hashes: tuple[HashAlgorithm, ...] | None,
    method: AuthMethod,
    scheme: Scheme,
    hash_algorithm: HashAlgorithm,
) -> None:
    """RFC 7427 §4: method 14 with a hash the peer listed; the key type's own method without a list."""
    plan = signature_plan(key(name), peer_hashes)
    assert (plan.method, plan.scheme, plan.hash) == (method, scheme, hash_algorithm)
    assert plan.note is None
    auth = create_signature(key(name), OCTETS, peer_hashes)
    assert auth.method == method
    if method is AuthMethod.DIGITAL_SIGNATURE:
        identifier = ALGORITHM_IDENTIFIERS[(scheme, hash_algorithm)]
        assert auth.data[0] == len(identifier) and auth.data[1 : 1 + len(identifier)] == identifier


def test_ecdsa_legacy_signature_is_r_and_s_of_the_curve_size() -> None:
    """RFC 4754 §3: r | s, each 32, 48 or 66 octets, so even a short r keeps its place."""
    for name, size in (("p256", 32), ("p384", 48), ("p521", 66)):
        assert len(create_signature(key(name), OCTETS, None).data) == 2 * size


def test_rsa_method_1_is_pkcs1_with_sha1() -> None:
    auth = create_signature(key("rsa2048"), OCTETS, None)
    public = key("rsa2048").public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(auth.data, OCTETS, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - method 1 is SHA-1


def test_a_peer_without_a_usable_hash_gets_a_note() -> None:
    """The log says why the peer may not verify us (the issue: "says in the log why")."""
    plan = signature_plan(key("rsa2048"), [HashAlgorithm.SHA1])
    assert plan.method is AuthMethod.RSA_DIGITAL_SIGNATURE
    assert plan.note is not None and "no SHA-2" in plan.note
    ed = signature_plan(key("ed25519"), None)
    assert ed.method is AuthMethod.DIGITAL_SIGNATURE
    assert ed.note is not None and "Ed25519" in ed.note
    ed = signature_plan(key("ed25519"), [HashAlgorithm.SHA2_256])
    assert ed.note is not None and "identity" in ed.note


# --------------------------------------------------------------------------- refusals


def test_sha1_inside_method_14_is_refused() -> None:
    """RFC 8247 §3.2: SHA-1 MUST NOT sign in RFC 7427 Digital Signatures."""
    private = key("rsa2048")
    assert isinstance(private, rsa.RSAPrivateKey)
    identifier = ALGORITHM_IDENTIFIERS[(Scheme.RSA_PKCS1, HashAlgorithm.SHA1)]
    signature = private.sign(OCTETS, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - method 1 is SHA-1
    auth = AuthPayload(AuthMethod.DIGITAL_SIGNATURE, bytes([len(identifier)]) + identifier + signature)
    with pytest.raises(SignatureError, match="SHA-1"):
        verify_signature(private.public_key(), OCTETS, auth)


#: RFC 7427 Appendix A.4.3 as printed: RSASSA-PSS with SHA-256 and an explicit trailerField 1.
RFC7427_A43 = bytes.fromhex(
    "3046 0609 2a86 4886 f70d 0101 0a30 39a0 0f30 0d06 0960 8648 0165 0304 0201 0500"
    "a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0201 0500 a203"
    "0201 20a3 0302 0101".replace(" ", "")
)


def test_our_pss_identifiers_are_der_without_the_default_trailer_field() -> None:
    """We send the DER form strongSwan and libreswan send (libreswan 4.10 refuses RFC 7427's
    printed A.4.3, "no acceptable ECDSA/RSA-PSS ASN.1 signature hash proposal"): A.4.3 less
    its last element, trailerField [3] INTEGER 1, with the lengths adjusted."""
    for hash_algorithm, salt in (
        (HashAlgorithm.SHA2_256, 32),
        (HashAlgorithm.SHA2_384, 48),
        (HashAlgorithm.SHA2_512, 64),
    ):
        ours = ALGORITHM_IDENTIFIERS[(Scheme.RSA_PSS, hash_algorithm)]
        assert ours[1] == len(ours) - 2 == 0x41 and ours[13:15] == bytes([0x30, 0x34])
        assert ours.endswith(bytes([0xA2, 3, 2, 1, salt])) and b"\xa3\x03\x02\x01\x01" not in ours
    der = ALGORITHM_IDENTIFIERS[(Scheme.RSA_PSS, HashAlgorithm.SHA2_256)]
    assert der[15:] == RFC7427_A43[15:-5]


def test_pss_with_rfc7427_printed_identifier_verifies() -> None:
    """A peer that sends A.4.3 as printed (explicit trailerField 1) is still verified."""
    private = key("rsa2048")
    assert isinstance(private, rsa.RSAPrivateKey)
    signature = private.sign(OCTETS, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    auth = AuthPayload(AuthMethod.DIGITAL_SIGNATURE, bytes([len(RFC7427_A43)]) + RFC7427_A43 + signature)
    assert "RSASSA-PSS with SHA2_256" in verify_signature(private.public_key(), OCTETS, auth)


def test_pss_with_explicit_other_salt_verifies() -> None:
    """Parameters are read from the AlgorithmIdentifier, not assumed (RFC 4055 §3.1)."""
    private = key("rsa2048")
    assert isinstance(private, rsa.RSAPrivateKey)
    # A.4.3 with saltLength 20 instead of 32
    identifier = bytearray(ALGORITHM_IDENTIFIERS[(Scheme.RSA_PSS, HashAlgorithm.SHA2_256)])
    assert identifier[-3:].hex() == "020120"
    identifier[-1] = 20
    signature = private.sign(OCTETS, padding.PSS(padding.MGF1(hashes.SHA256()), 20), hashes.SHA256())
    auth = AuthPayload(AuthMethod.DIGITAL_SIGNATURE, bytes([len(identifier)]) + bytes(identifier) + signature)
    assert "RSASSA-PSS" in verify_signature(private.public_key(), OCTETS, auth)


@pytest.mark.parametrize(
    ("signer", "verifier", "peer_hashes"),
    [
        ("p256", "rsa2048", SIGNATURE_HASHES),
        ("rsa2048", "p256", None),
        ("p256", "p384", None),
        ("ed25519", "ed448", SIGNATURE_HASHES),
        ("ed25519", "p256", SIGNATURE_HASHES),
    ],
)
def test_a_key_of_another_type_is_refused_by_name(
    signer: str, verifier: str, peer_hashes: tuple[HashAlgorithm, ...] | None
) -> None:
    auth = create_signature(key(signer), OCTETS, peer_hashes)
    with pytest.raises(SignatureError, match="needs a"):
        verify_signature(key(verifier).public_key(), OCTETS, auth)


@pytest.mark.parametrize(
    ("method", "data", "reason"),
    [
        (AuthMethod.SHARED_KEY_MIC, b"\x00" * 32, "not a signature method"),
        (AuthMethod.NULL_AUTHENTICATION, b"", "not a signature method"),
        (AuthMethod.DIGITAL_SIGNATURE, b"", "shorter than"),
        (AuthMethod.DIGITAL_SIGNATURE, b"\x30\x30\x05", "shorter than"),
        (AuthMethod.DIGITAL_SIGNATURE, b"\x03\x30\x01\x00sig", "unsupported signature AlgorithmIdentifier"),
        (AuthMethod.ECDSA_SHA256_P256, b"\x01" * 63, "expected 64"),
    ],
)
def test_malformed_auth_data_is_refused_with_a_reason(method: AuthMethod, data: bytes, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify_signature(key("p256").public_key(), OCTETS, AuthPayload(method, data))


@given(method=st.sampled_from([1, 9, 10, 11, 14, 200]), data=st.binary(max_size=300))
def test_any_auth_data_is_verified_or_refused_never_crashes(method: int, data: bytes) -> None:
    """Property: peer-supplied AUTH data only ever yields SignatureError."""
    for name in ("rsa2048", "p256", "ed25519"):
        with pytest.raises(SignatureError):
            verify_signature(key(name).public_key(), OCTETS, AuthPayload(method, data))


@given(identifier=st.binary(min_size=1, max_size=120), signature=st.binary(max_size=80))
def test_any_algorithm_identifier_is_parsed_or_refused(identifier: bytes, signature: bytes) -> None:
    """Property: the PSS parameter parser meets hostile DER and answers SignatureError only."""
    pss_prefix = bytes.fromhex("06092a864886f70d01010a")
    wrapped = b"\x30" + bytes([len(pss_prefix) + len(identifier)]) + pss_prefix + identifier
    for candidate in (identifier, wrapped):
        if len(candidate) > 255:
            continue
        auth = AuthPayload(AuthMethod.DIGITAL_SIGNATURE, bytes([len(candidate)]) + candidate + signature)
        with pytest.raises(SignatureError):
            verify_signature(key("rsa2048").public_key(), OCTETS, auth)
