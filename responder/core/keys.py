"""The IKEv2 key schedule (RFC 7296 §2.13 to §2.18).

Strategy: pure functions from negotiated transforms, nonces, SPIs and shared
secrets to frozen key records.  Secrets are ``repr=False`` so a stray log line
or traceback never prints them.  The order in which keys are cut from prf+
output is the RFC's and is written out once, in :func:`derive_ike_sa_keys` and
:func:`derive_child_sa_keys`.

Inputs are octet strings exactly as they appear on the wire: nonces "stripped
of any headers", SPIs as 8 octets each, and the key-exchange shared secret in
the encoding its method defines (RFC 7296 §2.14; RFC 5903 §7; RFC 8031 §3).
"""

from __future__ import annotations

import attrs

from responder.core.errors import LocalError
from responder.core.transforms import Encryption, Integrity, Prf

__all__ = [
    "ChildSaKeys",
    "IkeSaKeys",
    "derive_child_sa_keys",
    "derive_ike_sa_keys",
    "prf_plus",
    "rekey_skeyseed",
    "skeyseed",
]

_PRF_PLUS_MAX_BLOCKS = 255  # the counter is one octet (RFC 7296 §2.13)


def prf_plus(prf: Prf, key: bytes, seed: bytes, length: int) -> bytes:
    """prf+ (K, S) = T1 | T2 | ... truncated to ``length`` octets (RFC 7296 §2.13).

    T1 = prf (K, S | 0x01), Tn = prf (K, Tn-1 | S | n).  At most 255 blocks can
    be produced; asking for more is a :class:`LocalError`.
    """
    blocks = -(-length // prf.output_size)
    if blocks > _PRF_PLUS_MAX_BLOCKS:
        raise LocalError(f"prf+ cannot produce {length} octets with {prf.name}")
    out = bytearray()
    previous = b""
    for counter in range(1, blocks + 1):
        previous = prf(key, previous + seed + bytes([counter]))
        out += previous
    return bytes(out[:length])


def skeyseed(prf: Prf, nonce_i: bytes, nonce_r: bytes, shared_secret: bytes) -> bytes:
    """SKEYSEED = prf(Ni | Nr, g^ir) for a new IKE SA (RFC 7296 §2.14)."""
    return prf(nonce_i + nonce_r, shared_secret)


def rekey_skeyseed(
    old_prf: Prf, old_sk_d: bytes, shared_secret: bytes, nonce_i: bytes, nonce_r: bytes
) -> bytes:
    """SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) for a rekeyed IKE SA (RFC 7296 §2.18).

    The old IKE SA's PRF is used, since the rekeying exchange belongs to it.
    The nonces are those of the CREATE_CHILD_SA exchange.
    """
    return old_prf(old_sk_d, shared_secret + nonce_i + nonce_r)


@attrs.frozen
class IkeSaKeys:
    """The seven keys of an IKE SA (RFC 7296 §2.14).

    ``sk_ai``/``sk_ar`` are empty for AEAD encryption (RFC 5282 §7.1).
    """

    sk_d: bytes = attrs.field(repr=False)
    sk_ai: bytes = attrs.field(repr=False)
    sk_ar: bytes = attrs.field(repr=False)
    sk_ei: bytes = attrs.field(repr=False)
    sk_er: bytes = attrs.field(repr=False)
    sk_pi: bytes = attrs.field(repr=False)
    sk_pr: bytes = attrs.field(repr=False)


def derive_ike_sa_keys(
    prf: Prf,
    encryption: Encryption,
    integrity: Integrity | None,
    skeyseed_value: bytes,
    nonce_i: bytes,
    nonce_r: bytes,
    spi_i: bytes,
    spi_r: bytes,
) -> IkeSaKeys:
    """{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr).

    RFC 7296 §2.14; SK_d, SK_pi and SK_pr take the PRF's preferred key length
    (§2.13); for AEAD there is no integrity transform and SK_a* are empty.
    """
    if len(spi_i) != 8 or len(spi_r) != 8:
        raise LocalError("IKE SPIs are 8 octets each")
    if encryption.is_aead != (integrity is None):
        raise LocalError("an integrity transform is needed exactly when the encryption is not AEAD")
    integ_size = integrity.key_size if integrity is not None else 0
    sizes = (
        prf.key_size,
        integ_size,
        integ_size,
        encryption.key_size,
        encryption.key_size,
        prf.key_size,
        prf.key_size,
    )
    stream = prf_plus(prf, skeyseed_value, nonce_i + nonce_r + spi_i + spi_r, sum(sizes))
    parts = []
    position = 0
    for size in sizes:
        parts.append(stream[position : position + size])
        position += size
    return IkeSaKeys(*parts)


@attrs.frozen
class ChildSaKeys:
    """Keying material of one Child SA pair (RFC 7296 §2.17).

    ``*_i`` protect traffic from the initiator to the responder, ``*_r`` the
    other direction.  Encryption keys include the AEAD salt; integrity keys are
    empty for AEAD.
    """

    encryption_i: bytes = attrs.field(repr=False)
    integrity_i: bytes = attrs.field(repr=False)
    encryption_r: bytes = attrs.field(repr=False)
    integrity_r: bytes = attrs.field(repr=False)


def derive_child_sa_keys(
    prf: Prf,
    sk_d: bytes,
    encryption: Encryption,
    integrity: Integrity | None,
    nonce_i: bytes,
    nonce_r: bytes,
    shared_secret: bytes | None = None,
) -> ChildSaKeys:
    """KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) (RFC 7296 §2.17).

    Keys are taken in this order: initiator-to-responder encryption, then
    integrity, then responder-to-initiator encryption, then integrity.  For the
    first Child SA (in IKE_AUTH) the nonces are those of IKE_SA_INIT and there is
    no ``shared_secret``; in CREATE_CHILD_SA with a KE exchange it is prepended.
    """
    integ_size = integrity.key_size if integrity is not None else 0
    seed = (shared_secret or b"") + nonce_i + nonce_r
    keymat = prf_plus(prf, sk_d, seed, 2 * (encryption.key_size + integ_size))
    e, a = encryption.key_size, integ_size
    return ChildSaKeys(
        encryption_i=keymat[0:e],
        integrity_i=keymat[e : e + a],
        encryption_r=keymat[e + a : 2 * e + a],
        integrity_r=keymat[2 * e + a : 2 * e + 2 * a],
    )
