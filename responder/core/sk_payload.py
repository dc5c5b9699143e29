"""Protecting and unprotecting the Encrypted (SK) payload.

Strategy: an :class:`SkProtection` is one direction of an IKE SA's
protection (encryption transform and key, integrity transform and key), keyed
once.  :func:`protect_bytes` turns a header and the encoded inner payloads into the
octets of a whole message; :func:`unprotect` does the reverse, checking in
this order and raising where each check is made:

1. the message structure up to the SK payload (the codec, :class:`DecodeError`);
2. that the SK payload is long enough for its IV and ICV
   (:class:`IntegrityCheckFailed`: nothing unauthenticated is answered);
3. the ICV (CBC with HMAC, RFC 7296 §3.14, compared in constant time) or the
   AEAD tag (RFC 5282 §5, RFC 7634 §3, checked by the library);
4. only then, authenticated structure: CBC block alignment and the Pad Length
   (:class:`DecodeError`, answered with INVALID_SYNTAX once the SA is up).

The wire layout (RFC 7296 §3.14)::

    IKE header | [unencrypted payloads] | SK generic header | IV | ciphertext | ICV

An IKE Fragment message (RFC 7383 §2.5) is the same with the SKF payload,
whose generic header is followed by Fragment Number and Total Fragments
before the IV: :func:`protect_fragment` builds one, :func:`decrypt` opens one.

For AEAD the associated data is everything before the IV, with both length
fields already final (RFC 5282 §5.1; RFC 7634 Appendix B).  For CBC+HMAC the
ICV covers everything before the ICV itself.

Padding: the sender pads the inner payloads to the cipher's block size (one
octet for the AEAD modes, sixteen for AES-CBC) with zero octets followed by the
one-octet Pad Length.  The IV is handed in (the core receives its randomness).
"""

from __future__ import annotations

import attrs

from responder.core.enums import PayloadType
from responder.core.errors import DecodeError, IntegrityCheckFailed, LocalError
from responder.core.keys import IkeSaKeys
from responder.core.messages import (
    EncryptedFragmentPayload,
    EncryptedPayload,
    Header,
    Message,
    decode_message,
    decode_payloads,
    encode_header,
)
from responder.core.transforms import Encryption, Integrity, KeyedEncryption, KeyedIntegrity

__all__ = [
    "IKE_HEADER_SIZE",
    "SKF_HEADER_SIZE",
    "SK_HEADER_SIZE",
    "Decrypted",
    "SkProtection",
    "decrypt",
    "protect_bytes",
    "protect_fragment",
    "sk_head",
    "sk_length",
    "sk_protections",
    "unprotect",
]

IKE_HEADER_SIZE = 28  # RFC 7296 §3.1
SK_HEADER_SIZE = 4  # generic payload header (RFC 7296 §3.2)
SKF_HEADER_SIZE = 8  # generic payload header, Fragment Number, Total Fragments (RFC 7383 §2.5)


@attrs.frozen
class SkProtection:
    """One direction of SK payload protection: transforms and their bound keys."""

    encryption: Encryption
    integrity: Integrity | None
    #: SK_e (the AEAD salt included), the same octets as the IKE SA's keys hold.  The keyed cipher
    #: is made for each message (:meth:`_cipher`) rather than held: an IKE SA sends a message now
    #: and then, and a held one was 72 octets per direction of every SA (issue 14, measured), its
    #: library object 2.4 KiB (see :class:`~responder.core.transforms.AeadCipher`).
    _key: bytes = attrs.field(repr=False)
    _mac: KeyedIntegrity | None = attrs.field(repr=False)

    @classmethod
    def create(
        cls,
        encryption: Encryption,
        integrity: Integrity | None,
        encryption_key: bytes,
        integrity_key: bytes = b"",
    ) -> SkProtection:
        """Bind the keys.  AEAD encryption takes no integrity transform (RFC 5282 §8)."""
        if encryption.is_aead != (integrity is None):
            raise LocalError("an integrity transform is needed exactly when the encryption is not AEAD")
        mac = integrity.keyed(integrity_key) if integrity is not None else None
        encryption.keyed(encryption_key, keep=False)  # a key of the wrong length fails here, not later
        return cls(encryption, integrity, encryption_key, mac)

    def _cipher(self) -> KeyedEncryption:
        """The encryption bound to SK_e, for one message."""
        return self.encryption.keyed(self._key, keep=False)

    @property
    def icv_size(self) -> int:
        """Octets of ICV after the ciphertext."""
        return self.integrity.icv_size if self.integrity is not None else self.encryption.icv_size

    def _pad_length(self, inner_length: int) -> int:
        return -(inner_length + 1) % self.encryption.block_size


def sk_protections(
    keys: IkeSaKeys,
    encryption: Encryption,
    integrity: Integrity | None,
    *,
    is_original_initiator: bool,
) -> tuple[SkProtection, SkProtection]:
    """(outbound, inbound) protections for one end of an IKE SA.

    The original initiator sends with SK_ei/SK_ai and receives with SK_er/SK_ar;
    the responder the other way round (RFC 7296 §2.14).
    """
    initiator = SkProtection.create(encryption, integrity, keys.sk_ei, keys.sk_ai)
    responder = SkProtection.create(encryption, integrity, keys.sk_er, keys.sk_ar)
    return (initiator, responder) if is_original_initiator else (responder, initiator)


def sk_length(protection: SkProtection, inner_length: int, header_size: int = SK_HEADER_SIZE) -> int:
    """Octets of an Encrypted payload (``header_size`` 8 for SKF, RFC 7383 §2.5) that carries
    ``inner_length`` octets of inner payloads: its header, the IV, the padded plaintext and the ICV."""
    padded = inner_length + protection._pad_length(inner_length) + 1
    return header_size + protection.encryption.iv_size + padded + protection.icv_size


def sk_head(protection: SkProtection, header: Header, first_inner: PayloadType, inner_length: int) -> bytes:
    """The IKE header and SK generic header of the whole protected message that carries
    ``inner_length`` octets of inner payloads (RFC 7296 §3.14): what the AEAD authenticates before
    the IV, and what RFC 9242 §3.3.2 signs, whether or not the message then goes as fragments."""
    length = sk_length(protection, inner_length)
    if length > 0xFFFF:
        raise LocalError(f"inner payloads too long for one SK payload ({inner_length} octets)")
    sk_header = bytes([first_inner, 0]) + length.to_bytes(2, "big")
    return encode_header(header, PayloadType.SK, IKE_HEADER_SIZE + length) + sk_header


def _seal(protection: SkProtection, head: bytes, inner: bytes, iv: bytes) -> bytes:
    """``head`` (everything before the IV), IV, encrypted padded ``inner``, ICV (RFC 7296 §3.14)."""
    encryption = protection.encryption
    if len(iv) != encryption.iv_size:
        raise LocalError(f"{encryption.name} needs a {encryption.iv_size}-octet IV, got {len(iv)}")
    pad_length = protection._pad_length(len(inner))
    plaintext = inner + bytes(pad_length) + bytes([pad_length])
    if encryption.is_aead:
        return head + iv + protection._cipher().encrypt(iv, plaintext, head)
    assert protection._mac is not None  # guaranteed by SkProtection.create
    unsigned = head + iv + protection._cipher().encrypt(iv, plaintext, b"")
    return unsigned + protection._mac.compute(unsigned)


def protect_bytes(
    protection: SkProtection, header: Header, first_inner: PayloadType, inner: bytes, iv: bytes
) -> bytes:
    """Protect already encoded inner payloads (RFC 7296 §3.14; RFC 5282 §5)."""
    return _seal(protection, sk_head(protection, header, first_inner, len(inner)), inner, iv)


def protect_fragment(
    protection: SkProtection,
    header: Header,
    first_inner: PayloadType,
    number: int,
    total: int,
    chunk: bytes,
    iv: bytes,
) -> bytes:
    """One IKE Fragment message: ``header`` and an Encrypted Fragment payload carrying ``chunk``
    of the original inner payloads (RFC 7383 §2.5).

    The IKE header is the original's but for Next Payload (SKF) and Length;
    the SKF's Next Payload is ``first_inner`` in fragment 1 and 0 in the
    others.  Its cryptography is the SK payload's; the AEAD's associated
    data runs to the end of the Total Fragments field (RFC 5282 §5.1: all
    that precedes the IV).
    """
    if not 1 <= number <= total <= 0xFFFF:
        raise LocalError(f"fragment {number} of {total} (RFC 7383 §2.5: 1 <= number <= total < 2^16)")
    next_payload = first_inner if number == 1 else PayloadType.NONE
    length = sk_length(protection, len(chunk), SKF_HEADER_SIZE)
    if length > 0xFFFF:
        raise LocalError(f"fragment too long for one SKF payload ({len(chunk)} octets)")
    skf_header = (
        bytes([next_payload, 0])
        + length.to_bytes(2, "big")
        + number.to_bytes(2, "big")
        + total.to_bytes(2, "big")
    )
    head = encode_header(header, PayloadType.SKF, IKE_HEADER_SIZE + length) + skf_header
    return _seal(protection, head, chunk, iv)


@attrs.frozen(slots=True)
class Decrypted:
    """An authenticated, decrypted SK payload: the outer message, and the inner chain's octets.

    ``plaintext`` is the inner payload chain without padding; ``offset`` is where
    it starts in the message (error offsets count from the IKE header).
    """

    outer: Message
    first_inner: PayloadType
    plaintext: bytes
    offset: int


def decrypt(protection: SkProtection, data: bytes, outer: Message | None = None) -> Decrypted:
    """Authenticate and decrypt the SK (or SKF, RFC 7383 §2.6) payload of ``data`` without decoding
    what is inside.

    ``outer`` is ``decode_message(data)`` when the caller has it already.
    Raises :class:`IntegrityCheckFailed` for anything that cannot be
    authenticated and :class:`DecodeError` for the structure around the SK
    payload and for authenticated padding that is wrong.
    """
    message = decode_message(data) if outer is None else outer
    first_inner, plaintext, offset = _open(protection, data, message)
    return Decrypted(message, first_inner, plaintext, offset)


def unprotect(protection: SkProtection, data: bytes, outer: Message | None = None) -> tuple[Message, bytes]:
    """Decode a protected message: the message with its inner payloads, and their plaintext.

    The SK payload is replaced by its inner payloads; payloads sent in the
    clear before it (rare, but allowed by RFC 7296 §3.14) are kept in front.
    The plaintext is the inner payload chain as decrypted, without padding
    (RFC 9242 §3.3.2 signs it).  Raises as :func:`decrypt` does, and
    :class:`DecodeError` for authenticated content that does not decode.
    """
    opened = decrypt(protection, data, outer)
    if isinstance(opened.outer.payloads[-1], EncryptedFragmentPayload):
        raise LocalError("unprotect() of an IKE Fragment message: reassemble it first (RFC 7383 §2.6)")
    inner = decode_payloads(opened.first_inner, opened.plaintext, offset=opened.offset)
    message = Message(opened.outer.header, opened.outer.payloads[:-1] + inner)
    return message, opened.plaintext


def _open(protection: SkProtection, data: bytes, message: Message) -> tuple[PayloadType, bytes, int]:
    sk = message.payloads[-1] if message.payloads else None
    if not isinstance(sk, EncryptedPayload | EncryptedFragmentPayload):
        raise DecodeError("message has no Encrypted payload", offset=IKE_HEADER_SIZE)
    # The codec has checked that the SK (SKF) payload is last and fills the message: its body,
    # IV || ciphertext || ICV, ends the message.
    iv_offset = len(data) - len(sk.body)
    encryption = protection.encryption
    iv_size, icv_size = encryption.iv_size, protection.icv_size
    ciphertext_offset = iv_offset + iv_size
    # The smallest plaintext is the Pad Length octet alone.
    if len(sk.body) < iv_size + 1 + icv_size:
        raise IntegrityCheckFailed(
            f"Encrypted payload of {len(sk.body)} octets cannot hold IV, Pad Length and ICV",
            offset=iv_offset,
            payload_type=PayloadType.SK,
        )
    iv = data[iv_offset:ciphertext_offset]
    if encryption.is_aead:
        # RFC 5282 §5.1: the AAD runs from the IKE header to the end of the SK header.
        aad = data[:iv_offset]
        plaintext = protection._cipher().decrypt(iv, data[ciphertext_offset:], aad, offset=iv_offset)
    else:
        assert protection._mac is not None  # guaranteed by SkProtection.create
        icv_offset = len(data) - icv_size
        if not protection._mac.verify(data[:icv_offset], data[icv_offset:]):
            raise IntegrityCheckFailed("ICV does not verify", offset=icv_offset, payload_type=PayloadType.SK)
        ciphertext = data[ciphertext_offset:icv_offset]
        if len(ciphertext) % encryption.block_size:
            raise DecodeError(
                f"ciphertext of {len(ciphertext)} octets is not a multiple of the "
                f"{encryption.block_size}-octet block",
                offset=ciphertext_offset,
                payload_type=PayloadType.SK,
            )
        plaintext = protection._cipher().decrypt(iv, ciphertext, b"")
    pad_length = plaintext[-1]
    if pad_length + 1 > len(plaintext):
        raise DecodeError(
            f"Pad Length {pad_length} exceeds the {len(plaintext) - 1} octets before it",
            offset=ciphertext_offset + len(plaintext) - 1,
            payload_type=PayloadType.SK,
        )
    return sk.first_inner_payload, plaintext[: len(plaintext) - pad_length - 1], ciphertext_offset
