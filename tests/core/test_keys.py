"""Tests of the key schedule (RFC 7296 §2.13 to §2.18).

There is no RFC vector for the IKEv2 key schedule; known answers taken from a
real strongSwan exchange live in tests/vectors/ (the interop harness).  These
tests check the construction against the RFC's formulas written out
independently with the standard library's ``hmac``.
"""

from __future__ import annotations

import hmac

import pytest

from responder.core.enums import EncrId, IntegId, PrfId
from responder.core.errors import LocalError
from responder.core.keys import (
    derive_child_sa_keys,
    derive_ike_sa_keys,
    prf_plus,
    rekey_skeyseed,
    skeyseed,
)
from responder.core.transforms import encryption, integrity, prf

SHA256 = prf(PrfId.HMAC_SHA2_256)
NI = bytes(range(32))
NR = bytes(range(100, 132))
SPI_I = bytes.fromhex("0102030405060708")
SPI_R = bytes.fromhex("a1a2a3a4a5a6a7a8")
SHARED = bytes.fromhex("55" * 32)


def _h(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def test_prf_plus_blocks_follow_rfc7296_2_13() -> None:
    """T1 = prf(K, S | 0x01), T2 = prf(K, T1 | S | 0x02), T3 = prf(K, T2 | S | 0x03)."""
    key, seed = b"K" * 32, b"seed"
    t1 = _h(key, seed + b"\x01")
    t2 = _h(key, t1 + seed + b"\x02")
    t3 = _h(key, t2 + seed + b"\x03")
    assert prf_plus(SHA256, key, seed, 96) == t1 + t2 + t3
    assert prf_plus(SHA256, key, seed, 33) == (t1 + t2)[:33]
    assert prf_plus(SHA256, key, seed, 0) == b""


def test_prf_plus_refuses_more_than_255_blocks() -> None:
    """RFC 7296 §2.13: the counter is one octet, so 255 blocks at most."""
    assert len(prf_plus(SHA256, b"k", b"s", 255 * 32)) == 255 * 32
    with pytest.raises(LocalError):
        prf_plus(SHA256, b"k", b"s", 255 * 32 + 1)


def test_skeyseed_rfc7296_2_14() -> None:
    """SKEYSEED = prf(Ni | Nr, g^ir)."""
    assert skeyseed(SHA256, NI, NR, SHARED) == _h(NI + NR, SHARED)


def test_rekey_skeyseed_rfc7296_2_18_uses_old_prf() -> None:
    """SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr), with the old SA's PRF."""
    old_sk_d = b"\x11" * 48
    sha384 = prf(PrfId.HMAC_SHA2_384)
    assert rekey_skeyseed(sha384, old_sk_d, SHARED, NI, NR) == hmac.digest(
        old_sk_d, SHARED + NI + NR, "sha384"
    )


def test_ike_sa_keys_cbc_order_and_sizes_rfc7296_2_14() -> None:
    """{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)."""
    encr, integ = encryption(EncrId.AES_CBC, 256), integrity(IntegId.HMAC_SHA2_256_128)
    seed_value = skeyseed(SHA256, NI, NR, SHARED)
    keys = derive_ike_sa_keys(SHA256, encr, integ, seed_value, NI, NR, SPI_I, SPI_R)
    stream = prf_plus(SHA256, seed_value, NI + NR + SPI_I + SPI_R, 32 * 7)
    assert keys.sk_d == stream[0:32]
    assert keys.sk_ai == stream[32:64]
    assert keys.sk_ar == stream[64:96]
    assert keys.sk_ei == stream[96:128]
    assert keys.sk_er == stream[128:160]
    assert keys.sk_pi == stream[160:192]
    assert keys.sk_pr == stream[192:224]


def test_ike_sa_keys_aead_have_no_integrity_keys_rfc5282_7_1() -> None:
    """AES-GCM-256: SK_a* are absent, SK_e* are 36 octets (key and salt)."""
    encr = encryption(EncrId.AES_GCM_16, 256)
    sha512 = prf(PrfId.HMAC_SHA2_512)
    keys = derive_ike_sa_keys(sha512, encr, None, b"S" * 64, NI, NR, SPI_I, SPI_R)
    stream = prf_plus(sha512, b"S" * 64, NI + NR + SPI_I + SPI_R, 64 + 36 * 2 + 64 * 2)
    assert (keys.sk_ai, keys.sk_ar) == (b"", b"")
    assert keys.sk_d == stream[:64]
    assert keys.sk_ei == stream[64:100]
    assert keys.sk_er == stream[100:136]
    assert keys.sk_pi == stream[136:200]
    assert keys.sk_pr == stream[200:264]


def test_ike_sa_keys_do_not_appear_in_repr() -> None:
    keys = derive_ike_sa_keys(
        SHA256, encryption(EncrId.AES_GCM_16, 128), None, b"S" * 32, NI, NR, SPI_I, SPI_R
    )
    assert keys.sk_d.hex() not in repr(keys)
    assert keys.sk_ei.hex() not in repr(keys)


def test_ike_sa_keys_reject_inconsistent_transforms() -> None:
    with pytest.raises(LocalError):
        derive_ike_sa_keys(SHA256, encryption(EncrId.AES_CBC, 128), None, b"S", NI, NR, SPI_I, SPI_R)
    with pytest.raises(LocalError):
        derive_ike_sa_keys(
            SHA256,
            encryption(EncrId.AES_GCM_16, 128),
            integrity(IntegId.HMAC_SHA2_256_128),
            b"S",
            NI,
            NR,
            SPI_I,
            SPI_R,
        )
    with pytest.raises(LocalError):
        derive_ike_sa_keys(SHA256, encryption(EncrId.AES_GCM_16, 128), None, b"S", NI, NR, b"1234", SPI_R)


def test_child_sa_keymat_order_rfc7296_2_17() -> None:
    """KEYMAT = prf+(SK_d, Ni | Nr): encryption then integrity, initiator-to-responder first."""
    sk_d = b"D" * 32
    encr, integ = encryption(EncrId.AES_CBC, 128), integrity(IntegId.HMAC_SHA2_256_128)
    keys = derive_child_sa_keys(SHA256, sk_d, encr, integ, NI, NR)
    keymat = prf_plus(SHA256, sk_d, NI + NR, 2 * (16 + 32))
    assert keys.encryption_i == keymat[0:16]
    assert keys.integrity_i == keymat[16:48]
    assert keys.encryption_r == keymat[48:64]
    assert keys.integrity_r == keymat[64:96]


def test_child_sa_keymat_with_new_key_exchange_rfc7296_2_17() -> None:
    """KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr) when CREATE_CHILD_SA carries KE payloads."""
    sk_d = b"D" * 32
    encr = encryption(EncrId.AES_GCM_16, 256)
    keys = derive_child_sa_keys(SHA256, sk_d, encr, None, NI, NR, shared_secret=SHARED)
    keymat = prf_plus(SHA256, sk_d, SHARED + NI + NR, 72)
    assert keys.encryption_i == keymat[:36]
    assert keys.encryption_r == keymat[36:72]
    assert keys.integrity_i == keys.integrity_r == b""
