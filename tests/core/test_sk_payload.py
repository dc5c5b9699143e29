"""Tests of SK payload protection (RFC 7296 §3.14, RFC 5282, RFC 7634).

The one published IKEv2 SK vector is RFC 7634 Appendix B (ChaCha20-Poly1305);
the whole protected message is reproduced byte for byte.  AES-GCM and
AES-CBC known answers come from real strongSwan exchanges (tests/vectors/).
"""

from __future__ import annotations

import contextlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from responder.core.enums import EncrId, ExchangeType, IntegId, NotifyType, PayloadType, PrfId
from responder.core.errors import DecodeError, IntegrityCheckFailed, LocalError
from responder.core.keys import derive_ike_sa_keys
from responder.core.messages import Header, encode_header
from responder.core.sk_payload import (
    SkProtection,
    decrypt,
    protect_bytes,
    sk_protections,
    unprotect,
)
from responder.core.transforms import Encryption, Integrity, encryption, integrity, prf

# RFC 7634 Appendix B
B_KEY = bytes(range(0x80, 0xA0)) + bytes.fromhex("a0a1a2a3")
B_IV = bytes.fromhex("1011121314151617")
B_HEADER = Header(
    spi_i=bytes.fromhex("c0c1c2c3c4c5c6c7"),
    spi_r=bytes.fromhex("d0d1d2d3d4d5d6d7"),
    exchange_type=ExchangeType.INFORMATIONAL,
    is_initiator=False,
    is_response=False,
    message_id=9,
)
B_NOTIFY = bytes.fromhex("0000000c000040010000000a")
B_MESSAGE = bytes.fromhex(
    "c0c1c2c3c4c5c6c7d0d1d2d3d4d5d6d72e202500000000090000004529000029"
    "1011121314151617"  # IV
    "610394701f8d017f7c12924889"  # ciphertext
    "6b71bfe25236efd7cdc67066906315b2"  # ICV
)


def chacha() -> SkProtection:
    return SkProtection.create(encryption(EncrId.CHACHA20_POLY1305, None), None, B_KEY)


def test_rfc7634_appendix_b_whole_protected_message() -> None:
    """RFC 7634 Appendix B: INFORMATIONAL with N(SET_WINDOW_SIZE=10), ChaCha20-Poly1305."""
    assert protect_bytes(chacha(), B_HEADER, PayloadType.NOTIFY, B_NOTIFY, B_IV) == B_MESSAGE


def test_rfc7634_appendix_b_unprotect() -> None:
    """The same message decrypts to the Notify payload, and decodes to it."""
    opened = decrypt(chacha(), B_MESSAGE)
    assert opened.outer.header == B_HEADER
    assert opened.first_inner is PayloadType.NOTIFY
    assert opened.plaintext == B_NOTIFY
    message, plaintext = unprotect(chacha(), B_MESSAGE)
    assert plaintext == B_NOTIFY
    assert message.header == B_HEADER
    [notify] = message.payloads
    assert notify.payload_type is PayloadType.NOTIFY
    assert notify.notify_type is NotifyType.SET_WINDOW_SIZE  # type: ignore[union-attr]
    assert notify.data == bytes.fromhex("0000000a")  # type: ignore[union-attr]


SUITES: list[tuple[Encryption, Integrity | None]] = [
    (encryption(EncrId.AES_GCM_16, 128), None),
    (encryption(EncrId.AES_GCM_16, 256), None),
    (encryption(EncrId.CHACHA20_POLY1305, None), None),
    (encryption(EncrId.AES_CBC, 128), integrity(IntegId.HMAC_SHA2_256_128)),
    (encryption(EncrId.AES_CBC, 192), integrity(IntegId.HMAC_SHA2_384_192)),
    (encryption(EncrId.AES_CBC, 256), integrity(IntegId.HMAC_SHA2_512_256)),
    (encryption(EncrId.AES_CBC, 256), integrity(IntegId.HMAC_SHA1_96)),
]
SUITE_IDS = [f"{e.name}+{i.name if i else 'AEAD'}" for e, i in SUITES]


def make_protection(encr: Encryption, integ: Integrity | None, seed: int = 1) -> SkProtection:
    key = bytes((seed + n) % 256 for n in range(encr.key_size))
    ikey = bytes((seed * 7 + n) % 256 for n in range(integ.key_size)) if integ else b""
    return SkProtection.create(encr, integ, key, ikey)


HEADER = Header(
    spi_i=bytes.fromhex("0011223344556677"),
    spi_r=bytes.fromhex("8899aabbccddeeff"),
    exchange_type=ExchangeType.IKE_AUTH,
    is_initiator=True,
    is_response=False,
    message_id=1,
)


@pytest.mark.parametrize(("encr", "integ"), SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("inner_length", [0, 1, 15, 16, 17, 100])
def test_round_trip_and_layout(encr: Encryption, integ: Integrity | None, inner_length: int) -> None:
    """Protect then unprotect returns the inner octets; lengths and padding follow RFC 7296 §3.14."""
    protection = make_protection(encr, integ)
    inner = bytes(range(inner_length))
    iv = bytes(range(encr.iv_size))
    data = protect_bytes(protection, HEADER, PayloadType.IDi, inner, iv)
    padded = inner_length + 1 + (-(inner_length + 1) % encr.block_size)  # pad to the block, Pad Length
    assert len(data) == 28 + 4 + encr.iv_size + padded + protection.icv_size
    assert int.from_bytes(data[24:28], "big") == len(data)
    assert data[16] == PayloadType.SK and data[28] == PayloadType.IDi
    assert int.from_bytes(data[30:32], "big") == len(data) - 28
    assert data[32 : 32 + encr.iv_size] == iv
    ciphertext_length = len(data) - 32 - encr.iv_size - protection.icv_size
    if not encr.is_aead:
        assert ciphertext_length % 16 == 0
        mac_key = bytes((1 * 7 + n) % 256 for n in range(integ.key_size))  # type: ignore[union-attr]
        expected = hmac.digest(mac_key, data[: -protection.icv_size], integ.hash_name)  # type: ignore[union-attr]
        assert data[-protection.icv_size :] == expected[: protection.icv_size]
    opened = decrypt(protection, data)
    assert (opened.outer.header, opened.first_inner, opened.plaintext) == (HEADER, PayloadType.IDi, inner)


@pytest.mark.parametrize(("encr", "integ"), SUITES, ids=SUITE_IDS)
def test_every_flipped_octet_is_refused(encr: Encryption, integ: Integrity | None) -> None:
    """No single-bit change anywhere in a protected message is accepted."""
    protection = make_protection(encr, integ)
    data = protect_bytes(protection, HEADER, PayloadType.IDi, b"\x01" * 20, bytes(encr.iv_size))
    for position in range(len(data)):
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        with pytest.raises(DecodeError):
            decrypt(protection, bytes(tampered))
    # Past the header and the SK generic header, every change fails authentication.
    for position in range(32, len(data)):
        tampered = bytearray(data)
        tampered[position] ^= 0x80
        with pytest.raises(IntegrityCheckFailed) as failure:
            decrypt(protection, bytes(tampered))
        assert failure.value.notify is None


@pytest.mark.parametrize(("encr", "integ"), SUITES, ids=SUITE_IDS)
def test_wrong_key_fails_integrity(encr: Encryption, integ: Integrity | None) -> None:
    data = protect_bytes(make_protection(encr, integ, 1), HEADER, PayloadType.IDi, b"x", bytes(encr.iv_size))
    with pytest.raises(IntegrityCheckFailed):
        decrypt(make_protection(encr, integ, 2), data)


def _cbc_message_with_plaintext(protection: SkProtection, plaintext: bytes, integ: Integrity) -> bytes:
    """A correctly MACed CBC message around an arbitrary (possibly malformed) plaintext."""
    encr = protection.encryption
    iv = bytes(16)
    keyed = encr.keyed(bytes((1 + n) % 256 for n in range(encr.key_size)))
    ciphertext = keyed.encrypt(iv, plaintext, b"") if len(plaintext) % 16 == 0 else plaintext
    sk_length = 4 + 16 + len(ciphertext) + integ.icv_size
    head = encode_header(HEADER, PayloadType.SK, 28 + sk_length) + bytes([PayloadType.IDi, 0])
    unsigned = head + sk_length.to_bytes(2, "big") + iv + ciphertext
    mac = integ.keyed(bytes((7 + n) % 256 for n in range(integ.key_size)))
    return unsigned + mac.compute(unsigned)


def test_authenticated_pad_length_overflow_is_invalid_syntax() -> None:
    """Pad Length larger than the plaintext before it: DecodeError (INVALID_SYNTAX) at that octet."""
    encr, integ = encryption(EncrId.AES_CBC, 128), integrity(IntegId.HMAC_SHA2_256_128)
    protection = make_protection(encr, integ)
    data = _cbc_message_with_plaintext(protection, bytes(15) + b"\x20", integ)
    with pytest.raises(DecodeError) as failure:
        decrypt(protection, data)
    assert type(failure.value) is DecodeError
    assert failure.value.notify is NotifyType.INVALID_SYNTAX
    assert failure.value.offset == 28 + 4 + 16 + 15
    assert failure.value.payload_type is PayloadType.SK


def test_authenticated_misaligned_ciphertext_is_invalid_syntax() -> None:
    """CBC ciphertext that is not a whole number of blocks, though MACed: DecodeError."""
    encr, integ = encryption(EncrId.AES_CBC, 128), integrity(IntegId.HMAC_SHA2_256_128)
    protection = make_protection(encr, integ)
    data = _cbc_message_with_plaintext(protection, bytes(20), integ)
    with pytest.raises(DecodeError) as failure:
        decrypt(protection, data)
    assert type(failure.value) is DecodeError
    assert failure.value.offset == 28 + 4 + 16


def test_too_short_encrypted_payload_is_dropped() -> None:
    """An SK payload too short for IV, Pad Length and ICV is unauthenticated junk."""
    protection = make_protection(encryption(EncrId.AES_GCM_16, 128), None)
    sk_body = bytes(8 + 16)  # IV and ICV but no Pad Length octet
    data = encode_header(HEADER, PayloadType.SK, 28 + 4 + len(sk_body)) + bytes([0, 0, 0, 28]) + sk_body
    with pytest.raises(IntegrityCheckFailed) as failure:
        decrypt(protection, data)
    assert failure.value.offset == 32


def test_message_without_sk_payload_is_refused() -> None:
    data = encode_header(HEADER, PayloadType.NONE, 28)
    with pytest.raises(DecodeError) as failure:
        decrypt(make_protection(encryption(EncrId.AES_GCM_16, 128), None), data)
    assert failure.value.offset == 28


def test_wrong_iv_length_is_local_error() -> None:
    protection = make_protection(encryption(EncrId.AES_GCM_16, 128), None)
    with pytest.raises(LocalError):
        protect_bytes(protection, HEADER, PayloadType.IDi, b"", b"")


def test_sk_protections_pair_the_directions() -> None:
    """RFC 7296 §2.14: SK_ei/SK_ai protect what the original initiator sends."""
    sha256 = prf(PrfId.HMAC_SHA2_256)
    encr, integ = encryption(EncrId.AES_CBC, 256), integrity(IntegId.HMAC_SHA2_256_128)
    keys = derive_ike_sa_keys(sha256, encr, integ, b"S" * 32, b"n" * 32, b"m" * 32, bytes(8), bytes(range(8)))
    i_out, i_in = sk_protections(keys, encr, integ, is_original_initiator=True)
    r_out, r_in = sk_protections(keys, encr, integ, is_original_initiator=False)
    request = protect_bytes(i_out, HEADER, PayloadType.IDi, b"hello", bytes(16))
    assert decrypt(r_in, request).plaintext == b"hello"
    response = protect_bytes(r_out, HEADER, PayloadType.IDr, b"world", bytes(16))
    assert decrypt(i_in, response).plaintext == b"world"
    with pytest.raises(IntegrityCheckFailed):
        decrypt(r_in, response)


@pytest.mark.parametrize(("encr", "integ"), SUITES, ids=SUITE_IDS)
@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 255), data=st.binary(max_size=300))
def test_random_input_raises_only_codec_errors(
    encr: Encryption, integ: Integrity | None, seed: int, data: bytes
) -> None:
    """Any octets, with any key: decodes or raises the codec's own error type."""
    protection = make_protection(encr, integ, seed)
    with contextlib.suppress(DecodeError):
        unprotect(protection, data)


@pytest.mark.parametrize(("encr", "integ"), SUITES, ids=SUITE_IDS)
@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 255), body=st.binary(max_size=200), first=st.integers(0, 255))
def test_random_sk_body_behind_valid_header_raises_only_codec_errors(
    encr: Encryption, integ: Integrity | None, seed: int, body: bytes, first: int
) -> None:
    """A structurally valid SK payload with random contents: only IntegrityCheckFailed."""
    protection = make_protection(encr, integ, seed)
    data = encode_header(HEADER, PayloadType.SK, 28 + 4 + len(body)) + bytes([first, 0])
    data += (4 + len(body)).to_bytes(2, "big") + body
    with pytest.raises(IntegrityCheckFailed):
        unprotect(protection, data)
