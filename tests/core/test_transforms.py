"""Tests of responder.core.transforms against published vectors.

Vectors: RFC 4868 §2.7 (PRF and truncated integrity), RFC 7634 Appendix A
(ChaCha20-Poly1305 as used by ESP: key, salt, nonce, AAD, ciphertext and tag).
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from responder.core.enums import EncrId, IntegId, PrfId
from responder.core.errors import IntegrityCheckFailed, LocalError
from responder.core.transforms import (
    AeadCipher,
    encryption,
    integrity,
    prf,
    supported_encryption,
    supported_integrity,
    supported_prfs,
)
from tests.core.vectors_rfc4868 import RFC4868_CASES

_PRF_COLUMNS = {
    "PRF-HMAC-SHA-256": PrfId.HMAC_SHA2_256,
    "PRF-HMAC-SHA-384": PrfId.HMAC_SHA2_384,
    "PRF-HMAC-SHA-512": PrfId.HMAC_SHA2_512,
}

_AUTH_COLUMNS = {
    "HMAC-SHA-256-128": IntegId.HMAC_SHA2_256_128,
    # RFC 4868 typo: AUTH384-1 prints its 192-bit truncation under "-128".
    "HMAC-SHA-384-128": IntegId.HMAC_SHA2_384_192,
    "HMAC-SHA-384-192": IntegId.HMAC_SHA2_384_192,
    "HMAC-SHA-512-256": IntegId.HMAC_SHA2_512_256,
}


def _key(case_name: str, case: dict[str, str]) -> bytes:
    key = bytes.fromhex(case["Key"])
    # RFC 4868 typo: AUTH512-4 prints an 80-octet key; its expected values use the last 64.
    if case_name == "AUTH512-4":
        key = key[-64:]
    return key


_PRF_PARAMS = [
    pytest.param(name, column, id=f"{name}-{column}")
    for name, case in RFC4868_CASES.items()
    for column in case
    if column in _PRF_COLUMNS
]
_AUTH_PARAMS = [
    pytest.param(name, column, id=f"{name}-{column}")
    for name, case in RFC4868_CASES.items()
    for column in case
    if column in _AUTH_COLUMNS
]


def test_rfc4868_vector_table_is_complete() -> None:
    """RFC 4868 §2.7 has 6 PRF cases (3 hashes each) and 4 authenticator cases per hash."""
    assert len(_PRF_PARAMS) == 6 * 3 + 12
    assert len(_AUTH_PARAMS) == 12


@pytest.mark.parametrize(("case_name", "column"), _PRF_PARAMS)
def test_rfc4868_2_7_prf(case_name: str, column: str) -> None:
    """RFC 4868 §2.7.1 and §2.7.2: PRF-HMAC-SHA-256/384/512 outputs."""
    case = RFC4868_CASES[case_name]
    function = prf(_PRF_COLUMNS[column])
    output = function(_key(case_name, case), bytes.fromhex(case["Data"]))
    assert output.hex() == case[column]
    assert len(output) == function.output_size == function.key_size


@pytest.mark.parametrize(("case_name", "column"), _AUTH_PARAMS)
def test_rfc4868_2_7_2_truncated_integrity(case_name: str, column: str) -> None:
    """RFC 4868 §2.7.2: HMAC-SHA-256-128, HMAC-SHA-384-192, HMAC-SHA-512-256."""
    case = RFC4868_CASES[case_name]
    algorithm = integrity(_AUTH_COLUMNS[column])
    keyed = algorithm.keyed(_key(case_name, case))
    data = bytes.fromhex(case["Data"])
    icv = keyed.compute(data)
    assert icv.hex() == case[column]
    assert len(icv) == algorithm.icv_size
    assert keyed.verify(data, icv)
    assert not keyed.verify(data, bytes([icv[0] ^ 1]) + icv[1:])
    assert not keyed.verify(data + b"\x00", icv)


def test_hmac_sha1_96_rfc2404_case_1() -> None:
    """RFC 2404 §3 test case 1 (HMAC-SHA-1-96, the legacy INTEG transform)."""
    keyed = integrity(IntegId.HMAC_SHA1_96).keyed(bytes.fromhex("0b" * 20))
    assert keyed.compute(b"Hi There").hex() == "b617318655057264e28bc0b6"


def test_hmac_sha1_prf_rfc2202_case_2() -> None:
    """RFC 2202 §3 test case 2 (HMAC-SHA-1, the legacy PRF)."""
    output = prf(PrfId.HMAC_SHA1)(b"Jefe", b"what do ya want for nothing?")
    assert output.hex() == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"


# RFC 7634 Appendix A: ChaCha20-Poly1305 for ESP.
_A_KEYMAT = bytes(range(0x80, 0xA0)) + bytes.fromhex("a0a1a2a3")
_A_IV = bytes.fromhex("1011121314151617")
_A_AAD = bytes.fromhex("0102030400000005")  # SPI || 32-bit sequence number
_A_PLAINTEXT = bytes.fromhex(
    "45000054a6f200004001e778c6336405c000020508005b7a3a080000553bec10"
    "0007362708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223"
    "2425262728292a2b2c2d2e2f303132333435363701020204"
)
_A_CIPHERTEXT = bytes.fromhex(
    "24039428b97f417e3c13753a4f05087b67c352e6a7fab1b982d466ef407ae5c6"
    "14ee8099d52844eb61aa95dfab4c02f72aa71e7c4c4f64c9befe2facc638e8f3"
    "cbec163fac469b502773f6fb94e664da9165b82829f641e0"
)
_A_TAG = bytes.fromhex("76aaa8266b7fb0f7b11b369907e1ad43")


def test_rfc7634_appendix_a_esp_chacha20_poly1305() -> None:
    """RFC 7634 Appendix A: ciphertext and tag of the ESP example, and back."""
    algorithm = encryption(EncrId.CHACHA20_POLY1305, None)
    assert (algorithm.key_size, algorithm.iv_size, algorithm.icv_size) == (36, 8, 16)
    keyed = algorithm.keyed(_A_KEYMAT)
    sealed = keyed.encrypt(_A_IV, _A_PLAINTEXT, _A_AAD)
    assert sealed == _A_CIPHERTEXT + _A_TAG
    assert keyed.decrypt(_A_IV, sealed, _A_AAD) == _A_PLAINTEXT
    with pytest.raises(IntegrityCheckFailed) as failure:
        keyed.decrypt(_A_IV, sealed, bytes.fromhex("0102030400000006"), offset=24)
    assert failure.value.offset == 24
    assert failure.value.notify is None


def test_rfc3602_case_2_aes_cbc_128() -> None:
    """RFC 3602 §4 case #2: AES-128-CBC, 32 octets, via our keyed cipher."""
    keyed = encryption(EncrId.AES_CBC, 128).keyed(bytes.fromhex("c286696d887c9aa0611bbb3e2025a45a"))
    iv = bytes.fromhex("562e17996d093d28ddb3ba695a2e6f58")
    plaintext = bytes(range(32))
    ciphertext = keyed.encrypt(iv, plaintext, b"")
    assert ciphertext.hex() == "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1"
    assert keyed.decrypt(iv, ciphertext, b"") == plaintext


@pytest.mark.parametrize(
    ("transform_id", "key_bits", "key_size", "iv_size", "block_size", "icv_size"),
    [
        (EncrId.AES_CBC, 128, 16, 16, 16, 0),
        (EncrId.AES_CBC, 192, 24, 16, 16, 0),
        (EncrId.AES_CBC, 256, 32, 16, 16, 0),
        (EncrId.AES_GCM_16, 128, 20, 8, 1, 16),
        (EncrId.AES_GCM_16, 256, 36, 8, 1, 16),
    ],
)
def test_encryption_sizes(
    transform_id: EncrId, key_bits: int, key_size: int, iv_size: int, block_size: int, icv_size: int
) -> None:
    """RFC 3602 §5.3, RFC 5282 §7.1: key material includes the 4-octet GCM salt."""
    algorithm = encryption(transform_id, key_bits)
    assert (algorithm.key_size, algorithm.iv_size, algorithm.block_size, algorithm.icv_size) == (
        key_size,
        iv_size,
        block_size,
        icv_size,
    )
    assert algorithm.is_aead == (transform_id is EncrId.AES_GCM_16)


def test_aes_gcm_nonce_is_salt_then_iv() -> None:
    """RFC 4106 §4 / RFC 5282 §4: the GCM nonce is the 4-octet salt followed by the 8-octet IV."""
    key, salt, iv = bytes(range(32)), b"\xa0\xa1\xa2\xa3", bytes(range(8))
    keyed = encryption(EncrId.AES_GCM_16, 256).keyed(key + salt)
    assert keyed.encrypt(iv, b"payload", b"aad") == AESGCM(key).encrypt(salt + iv, b"payload", b"aad")


@pytest.mark.parametrize("keep", [True, False])
def test_aead_cipher_holds_its_keying_material_once(keep: bool) -> None:
    """Memory (issue 14): the keyed AEAD holds the octets it was given, not a key and a salt cut
    from them up front; with ``keep`` it cuts the salt with the library object at first use."""
    material = bytes(range(36))
    keyed = encryption(EncrId.AES_GCM_16, 256).keyed(material, keep=keep)
    assert isinstance(keyed, AeadCipher)
    assert keyed._material is material and keyed._salt == b"" and keyed._aead is None
    iv = bytes(8)
    sealed = keyed.encrypt(iv, b"payload", b"aad")
    assert sealed == AESGCM(material[:32]).encrypt(material[32:] + iv, b"payload", b"aad")
    assert keyed.decrypt(iv, sealed, b"aad") == b"payload"
    assert (keyed._aead is not None, keyed._salt) == ((True, material[32:]) if keep else (False, b""))


def test_transforms_are_shared_between_sas() -> None:
    """Memory (issue 14): one algorithm object per transform, whoever asks for it."""
    assert encryption(EncrId.AES_GCM_16, 256) is encryption(EncrId.AES_GCM_16, 256)
    assert prf(PrfId.HMAC_SHA2_256) is prf(PrfId.HMAC_SHA2_256)
    assert integrity(IntegId.HMAC_SHA2_256_128) is integrity(IntegId.HMAC_SHA2_256_128)


def test_cbc_uses_the_given_iv() -> None:
    """AES-CBC output equals a direct CBC computation with the same IV (no hidden IV)."""
    key, iv = bytes(range(32)), bytes(range(16, 32))
    keyed = encryption(EncrId.AES_CBC, 256).keyed(key)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    assert keyed.encrypt(iv, bytes(32), b"") == encryptor.update(bytes(32)) + encryptor.finalize()


@pytest.mark.parametrize(
    ("transform_id", "key_bits"),
    [
        (EncrId.AES_CBC, None),
        (EncrId.AES_CBC, 100),
        (EncrId.AES_GCM_16, 192),
        (EncrId.AES_GCM_16, None),
        (EncrId.CHACHA20_POLY1305, 256),
        (EncrId.DES3, None),
        (EncrId.NULL, 128),
        (EncrId(999), 128),
    ],
)
def test_unsupported_encryption_is_refused(transform_id: EncrId, key_bits: int | None) -> None:
    assert not supported_encryption(transform_id, key_bits)
    with pytest.raises(LocalError):
        encryption(transform_id, key_bits)


def test_encr_null_has_no_key_no_iv_and_passes_the_plaintext() -> None:
    """RFC 2410: ENCR_NULL takes no Key Length, no key, no IV; what it encrypts is what it was given."""
    null = encryption(EncrId.NULL, None)
    assert (null.name, null.key_size, null.iv_size, null.icv_size, null.is_aead) == ("NULL", 0, 0, 0, False)
    keyed = null.keyed(b"")
    assert keyed.encrypt(b"", b"payload", b"") == b"payload" == keyed.decrypt(b"", b"payload", b"")


def test_unsupported_prf_and_integrity_are_refused() -> None:
    assert set(supported_prfs()) == {
        PrfId.HMAC_SHA1,
        PrfId.HMAC_SHA2_256,
        PrfId.HMAC_SHA2_384,
        PrfId.HMAC_SHA2_512,
    }
    assert IntegId.HMAC_MD5_96 not in supported_integrity()
    with pytest.raises(LocalError):
        prf(PrfId.HMAC_MD5)
    with pytest.raises(LocalError):
        integrity(IntegId.NONE)


def test_wrong_key_length_is_local_error() -> None:
    with pytest.raises(LocalError):
        encryption(EncrId.AES_GCM_16, 128).keyed(bytes(16))
    with pytest.raises(LocalError):
        integrity(IntegId.HMAC_SHA2_256_128).keyed(bytes(31))
