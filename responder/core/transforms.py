"""Cryptographic transforms: encryption, PRF and integrity algorithms.

Strategy: each IANA transform the responder supports maps to one small,
immutable *algorithm* object that knows its sizes (key, IV, block, ICV) and can
be *keyed* once per SA direction.  Keying builds the library object (``AESGCM``,
``ChaCha20Poly1305``, an AES key schedule) once, so the per-message cost is the
cipher alone.  Everything runs on ``cryptography`` and on the standard
library's ``hmac``; nothing here draws randomness: IVs are handed in.

Sizes of keying material (RFC 7296 §2.13, §2.14, §2.17):

* AES-CBC takes ``key_bits/8`` octets (RFC 3602 §5.3).
* AES-GCM takes ``key_bits/8`` octets of key followed by a 4-octet salt
  (RFC 5282 §7.1, RFC 4106 §8.1).
* ChaCha20-Poly1305 takes 32 octets of key and a 4-octet salt (RFC 7634 §2, §4).
* ENCR_NULL (RFC 2410) takes none; ESP only, and only with an integrity
  transform (RFC 4303 §5, RFC 8221 §5); configuration refuses it for IKE.
* HMAC PRFs use keys of their output size as "preferred key length"
  (RFC 7296 §2.13, RFC 4868 §2.1.2); HMAC integrity keys are the hash's output
  size (RFC 4868 §2.1.1, RFC 2404).

Key-exchange methods live in :mod:`responder.core.key_exchange`.
"""

from __future__ import annotations

import functools
import hmac
from typing import Protocol

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from responder.core.enums import EncrId, IntegId, PrfId
from responder.core.errors import IntegrityCheckFailed, LocalError

__all__ = [
    "AeadCipher",
    "CbcCipher",
    "Encryption",
    "Integrity",
    "KeyedEncryption",
    "KeyedIntegrity",
    "NullCipher",
    "Prf",
    "encryption",
    "integrity",
    "prf",
    "supported_encryption",
    "supported_integrity",
    "supported_prfs",
]


# ---------------------------------------------------------------------------
# Encryption (Transform Type 1)
# ---------------------------------------------------------------------------


class KeyedEncryption(Protocol):
    """An encryption algorithm bound to one key (one direction of one SA)."""

    def encrypt(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """Return the ciphertext (for AEAD algorithms followed by the ICV)."""
        ...

    def decrypt(self, iv: bytes, ciphertext: bytes, aad: bytes, *, offset: int = 0) -> bytes:
        """Return the plaintext; AEAD algorithms raise IntegrityCheckFailed on a bad tag.

        ``offset`` is where the protected data starts in the caller's buffer, for the error.
        """
        ...


@attrs.frozen
class Encryption:
    """An encryption transform with its negotiated key length.

    ``key_size`` counts every octet taken from the keying material, the AEAD
    salt included; ``block_size`` is the alignment the plaintext is padded to.
    """

    transform_id: EncrId
    key_bits: int
    key_size: int
    iv_size: int
    block_size: int
    icv_size: int
    is_aead: bool

    @property
    def name(self) -> str:
        """A human-readable name, e.g. ``AES_GCM_16-256``."""
        if self.transform_id is EncrId.CHACHA20_POLY1305 or self.transform_id is EncrId.NULL:
            return self.transform_id.name
        return f"{self.transform_id.name}-{self.key_bits}"

    def keyed(self, key: bytes, *, keep: bool = True) -> KeyedEncryption:
        """Bind ``key`` (``key_size`` octets of keying material).

        An AEAD's library object is made at its first use and kept (``keep``, for ESP's per-packet
        path), or made for each message (an IKE SA's, which sends a message now and then): see
        :class:`AeadCipher`.
        """
        if len(key) != self.key_size:
            raise LocalError(f"{self.name} needs {self.key_size} octets of key, got {len(key)}")
        if self.transform_id is EncrId.AES_CBC:
            return CbcCipher(key)
        if self.transform_id is EncrId.NULL:
            return NullCipher()
        if self.transform_id is EncrId.AES_GCM_16:
            return AeadCipher(AESGCM, key, keep=keep)
        return AeadCipher(ChaCha20Poly1305, key, keep=keep)


class CbcCipher:
    """AES-CBC with an explicit per-message IV (RFC 3602; RFC 7296 §3.14).

    Integrity is a separate transform; the plaintext arrives already padded to
    the 16-octet block size.
    """

    __slots__ = ("_algorithm",)

    def __init__(self, key: bytes) -> None:
        self._algorithm = algorithms.AES(key)

    def encrypt(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        encryptor = Cipher(self._algorithm, modes.CBC(iv)).encryptor()
        return encryptor.update(plaintext) + encryptor.finalize()

    def decrypt(self, iv: bytes, ciphertext: bytes, aad: bytes, *, offset: int = 0) -> bytes:
        decryptor = Cipher(self._algorithm, modes.CBC(iv)).decryptor()
        return decryptor.update(ciphertext) + decryptor.finalize()


class NullCipher:
    """ENCR_NULL (RFC 2410): no key, no IV, the plaintext is the ciphertext."""

    __slots__ = ()

    def encrypt(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return plaintext

    def decrypt(self, iv: bytes, ciphertext: bytes, aad: bytes, *, offset: int = 0) -> bytes:
        return ciphertext


class AeadCipher:
    """AES-GCM or ChaCha20-Poly1305 with nonce = salt || 8-octet IV.

    RFC 5282 §4 and RFC 4106 §4 (GCM), RFC 7634 §2 (ChaCha20-Poly1305): the
    4-octet salt comes from the keying material, the 8-octet IV travels in the
    message, the 16-octet ICV follows the ciphertext.  The tag is checked by the
    library (``InvalidTag``), which compares in constant time.

    Memory (issue 14): the library's object holds OpenSSL contexts of about 2.4 KiB of RSS
    (measured: 20,000 ``AESGCM`` objects), and an IKE SA with one Child SA has four ciphers, half
    of what a held SA costs.  So the object is made at first use, and kept only with ``keep``
    (ESP, per packet); without it (IKE messages, now and then) it is made per message, which
    costs about 2 us each time against the 2.4 KiB held per cipher.  The keying material is held
    as it was cut from prf+ (the SA's key record holds the same object) and sliced into key and
    salt only when the library object is made: copies of both made up front were 408 octets per
    IKE SA with one Child SA (measured in the responder process, bench/scale_wire.py).
    """

    __slots__ = ("_aead", "_factory", "_keep", "_material", "_salt")

    def __init__(
        self,
        factory: type[AESGCM] | type[ChaCha20Poly1305],
        material: bytes,
        *,
        keep: bool = True,
    ) -> None:
        self._factory = factory
        self._material = material  #: the cipher key followed by the 4-octet salt
        self._keep = keep
        self._aead: AESGCM | ChaCha20Poly1305 | None = None
        self._salt = b""  #: cut with a kept library object (the per-packet path slices nothing)

    def _cipher(self) -> tuple[AESGCM | ChaCha20Poly1305, bytes]:
        """The library object and the salt."""
        aead = self._aead
        if aead is not None:
            return aead, self._salt
        material = self._material
        aead, salt = self._factory(material[:-4]), material[-4:]
        if self._keep:
            self._aead, self._salt = aead, salt
        return aead, salt

    def encrypt(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        aead, salt = self._cipher()
        return aead.encrypt(salt + iv, plaintext, aad)

    def decrypt(self, iv: bytes, ciphertext: bytes, aad: bytes, *, offset: int = 0) -> bytes:
        aead, salt = self._cipher()
        try:
            return aead.decrypt(salt + iv, ciphertext, aad)
        except InvalidTag:
            raise IntegrityCheckFailed("AEAD tag does not verify", offset=offset) from None


_AES_KEY_BITS = (128, 192, 256)


#: One object per transform, shared by every SA that negotiated it (issue 14: two
#: :class:`Encryption` and a :class:`Prf` per IKE SA with one Child SA were 256 octets).  Only
#: supported transforms are cached (a refusal raises), so a handful of entries at most; ``typed``
#: keeps a plain int from finding what an enum member put there.
@functools.lru_cache(maxsize=32, typed=True)
def encryption(transform_id: EncrId, key_bits: int | None) -> Encryption:
    """The :class:`Encryption` for a transform ID and Key Length attribute.

    RFC 7296 §3.3.5: AES transforms require the Key Length attribute; the
    fixed-key-size ChaCha20-Poly1305 must not carry one (RFC 7634 §4).  Raises
    :class:`LocalError` when the combination is not supported (proposal
    selection asks :func:`supported_encryption` first).
    """
    if transform_id is EncrId.AES_CBC and key_bits in _AES_KEY_BITS:
        return Encryption(transform_id, key_bits, key_bits // 8, 16, 16, 0, False)
    if transform_id is EncrId.AES_GCM_16 and key_bits in (128, 256):
        # RFC 5282 §3: the padding may be of any length; no alignment is needed.
        # 192-bit GCM exists in the registry but RFC 8247 lists only 128/256.
        return Encryption(transform_id, key_bits, key_bits // 8 + 4, 8, 1, 16, True)
    if transform_id is EncrId.CHACHA20_POLY1305 and key_bits is None:
        return Encryption(transform_id, 256, 36, 8, 1, 16, True)
    if transform_id is EncrId.NULL and key_bits is None:  # RFC 2410 §2: no key, no IV, no block
        return Encryption(transform_id, 0, 0, 0, 1, 0, False)
    raise LocalError(f"unsupported encryption transform {transform_id.name} key length {key_bits}")


def supported_encryption(transform_id: EncrId, key_bits: int | None) -> bool:
    """Whether :func:`encryption` accepts this transform and key length."""
    try:
        encryption(transform_id, key_bits)
    except LocalError:
        return False
    return True


# ---------------------------------------------------------------------------
# Pseudorandom functions (Transform Type 2)
# ---------------------------------------------------------------------------


_PRF_HASHES = {
    PrfId.HMAC_SHA1: ("sha1", 20),
    PrfId.HMAC_SHA2_256: ("sha256", 32),
    PrfId.HMAC_SHA2_384: ("sha384", 48),
    PrfId.HMAC_SHA2_512: ("sha512", 64),
}


@attrs.frozen
class Prf:
    """An HMAC-based PRF (RFC 2104; RFC 4868 §2.1.2 for SHA-2).

    HMAC accepts keys of any length, so SKEYSEED = prf(Ni | Nr, g^ir) needs no
    special case (RFC 7296 §2.14).  ``key_size`` is the preferred key length
    used for SK_d, SK_pi and SK_pr (RFC 7296 §2.13).
    """

    transform_id: PrfId
    hash_name: str
    output_size: int

    @property
    def key_size(self) -> int:
        return self.output_size

    @property
    def name(self) -> str:
        return self.transform_id.name

    def __call__(self, key: bytes, data: bytes) -> bytes:
        return hmac.digest(key, data, self.hash_name)


@functools.lru_cache(maxsize=32, typed=True)  # shared, like encryption()
def prf(transform_id: PrfId) -> Prf:
    """The :class:`Prf` for a transform ID; :class:`LocalError` if unsupported."""
    try:
        hash_name, size = _PRF_HASHES[transform_id]
    except KeyError:
        raise LocalError(f"unsupported PRF {transform_id.name}") from None
    return Prf(transform_id, hash_name, size)


def supported_prfs() -> tuple[PrfId, ...]:
    """PRF transform IDs this module implements."""
    return tuple(_PRF_HASHES)


# ---------------------------------------------------------------------------
# Integrity algorithms (Transform Type 3)
# ---------------------------------------------------------------------------


_INTEG_HASHES = {
    # transform: (hash, key octets, truncated ICV octets)
    IntegId.HMAC_SHA1_96: ("sha1", 20, 12),  # RFC 2404
    IntegId.HMAC_SHA2_256_128: ("sha256", 32, 16),  # RFC 4868 §2.1
    IntegId.HMAC_SHA2_384_192: ("sha384", 48, 24),
    IntegId.HMAC_SHA2_512_256: ("sha512", 64, 32),
}


class KeyedIntegrity:
    """An integrity algorithm bound to one key."""

    __slots__ = ("_hash_name", "_icv_size", "_key")

    def __init__(self, key: bytes, hash_name: str, icv_size: int) -> None:
        self._key = key
        self._hash_name = hash_name
        self._icv_size = icv_size

    def compute(self, data: bytes) -> bytes:
        """The truncated HMAC of ``data`` (RFC 4868 §2.1: leftmost bits)."""
        return hmac.digest(self._key, data, self._hash_name)[: self._icv_size]

    def verify(self, data: bytes, icv: bytes) -> bool:
        """Constant-time check of ``icv`` against ``data``."""
        return hmac.compare_digest(self.compute(data), icv)


@attrs.frozen
class Integrity:
    """An HMAC integrity transform truncated to ``icv_size`` octets."""

    transform_id: IntegId
    hash_name: str
    key_size: int
    icv_size: int

    @property
    def name(self) -> str:
        return self.transform_id.name

    def keyed(self, key: bytes) -> KeyedIntegrity:
        if len(key) != self.key_size:
            raise LocalError(f"{self.name} needs {self.key_size} octets of key, got {len(key)}")
        return KeyedIntegrity(key, self.hash_name, self.icv_size)


@functools.lru_cache(maxsize=32, typed=True)  # shared, like encryption()
def integrity(transform_id: IntegId) -> Integrity:
    """The :class:`Integrity` for a transform ID; :class:`LocalError` if unsupported."""
    try:
        hash_name, key_size, icv_size = _INTEG_HASHES[transform_id]
    except KeyError:
        raise LocalError(f"unsupported integrity transform {transform_id.name}") from None
    return Integrity(transform_id, hash_name, key_size, icv_size)


def supported_integrity() -> tuple[IntegId, ...]:
    """Integrity transform IDs this module implements (NONE is implied for AEAD)."""
    return tuple(_INTEG_HASHES)
