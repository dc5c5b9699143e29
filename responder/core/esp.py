"""A user-space ESP SA: packets sealed and opened with the keys of a Child SA (RFC 4303).

Strategy: a Child SA pair (:class:`~responder.core.child_sa.ChildSaParams`)
becomes an :class:`EspSa` of two one-way SAs, :class:`EspOutbound` (our
sequence counter, :meth:`EspOutbound.seal`) and :class:`EspInbound` (the
anti-replay window of :mod:`responder.core.replay`, :meth:`EspInbound.open`).
Which half of the KEYMAT each direction uses follows RFC 7296 §2.17: the
keys ``*_i`` protect traffic from the initiator of the exchange that made the
pair, so with ``params.initiated`` we send with ``*_i`` and receive with
``*_r``, otherwise the reverse.

The packet (RFC 4303 §2)::

    SPI (4) | Sequence Number (4) | IV | ciphertext of
        (payload | Padding | Pad Length (1) | Next Header (1)) | ICV

Algorithms come from :mod:`responder.core.transforms`, keyed once per
direction: AES-GCM-16 (RFC 4106) and ChaCha20-Poly1305 (RFC 7634) with AAD =
SPI || Sequence Number (SPI || high || low 32 bits with ESN, RFC 4106 §5,
RFC 7634 §2.1); AES-CBC (RFC 3602) and ENCR_NULL (RFC 2410) with an HMAC
integrity transform (RFC 4868, RFC 2404) whose ICV covers SPI through Next
Header, plus the high-order 32 sequence bits with ESN, which are not sent
(RFC 4303 §2.2.1, §3.3.2.1).

Inbound processing follows RFC 4303 §3.4: length checks, the replay check
before anything costly (§3.4.3), the ICV before decryption (§3.4.4.1), the
window moved only after it verified, then the padding (§2.4) and dummy
packets (Next Header 59, §2.6), discarded and reported.  :meth:`EspInbound.open`
never raises on peer input; it returns :class:`Opened` or :class:`Dropped`.

Nothing here draws randomness: the IV is the caller's.  For the AEAD
algorithms :meth:`EspOutbound.seal` defaults to the 64-bit sequence number,
a counter that never repeats under one key (RFC 4106 §3.1; RFC 7634 §5);
AES-CBC needs an unpredictable IV (RFC 3602 §3), which the caller draws
(:attr:`EspOutbound.iv_size` octets) from its injected randomness.
"""

from __future__ import annotations

import enum
import functools
from typing import Final

import attrs

from responder.core.child_sa import ChildSaParams
from responder.core.config import EncryptionAlgorithm
from responder.core.enums import EncrId, EsnId
from responder.core.errors import IntegrityCheckFailed, LocalError
from responder.core.replay import (
    DEFAULT_REPLAY_WINDOW,
    MAX_SEQ_32,
    MAX_SEQ_64,
    ReplayRejection,
    ReplayWindow,
)
from responder.core.transforms import (
    Encryption,
    Integrity,
    KeyedEncryption,
    KeyedIntegrity,
    NullCipher,
    encryption,
)

__all__ = [
    "NEXT_HEADER_DUMMY",
    "DropReason",
    "Dropped",
    "EspCounters",
    "EspInbound",
    "EspOutbound",
    "EspSa",
    "EspSuite",
    "Opened",
    "SequenceExhausted",
    "esp_sa",
]

#: Next Header 59 ("no next header") marks a dummy packet (RFC 4303 §2.6).
NEXT_HEADER_DUMMY: Final = 59
_HEADER: Final = 8  # SPI and Sequence Number (RFC 4303 §2.1, §2.2)
_TRAILER: Final = 2  # Pad Length and Next Header (§2.5, §2.6)
_ALIGN: Final = 4  # "the ciphertext ... terminates on a 4-byte boundary" (§2.4)
_MAX_PAD: Final = 255
_PADDING: Final = bytes(range(1, _MAX_PAD + 1))  #: the default padding 1, 2, 3, ... (§2.4)


class SequenceExhausted(LocalError):
    """The outbound sequence number would cycle: the SA must be rekeyed (RFC 4303 §3.3.3)."""


class DropReason(enum.Enum):
    """Why :meth:`EspInbound.open` discarded a packet."""

    SHORT = "short"  #: fewer octets than SPI and Sequence Number
    WRONG_SPI = "wrong SPI"  #: the SPI is not this SA's
    TRUNCATED = "truncated"  #: too short for IV, trailer and ICV, or not whole cipher blocks
    REPLAY = "replay"  #: a duplicate inside the window (§3.4.3)
    TOO_OLD = "too old"  #: left of the window, or Sequence Number 0 (§3.4.3)
    INTEGRITY = "integrity"  #: the ICV or AEAD tag did not verify (§3.4.4)
    BAD_PADDING = "bad padding"  #: Pad Length too long, or padding not 1, 2, 3, ... (§2.4)
    DUMMY = "dummy"  #: Next Header 59, discarded silently (§2.6)
    EXPIRED = "expired"  #: the pair is past a hard lifetime (the data plane's, RFC 4301 §4.4.2.1)


@attrs.frozen(slots=True)
class Opened:
    """An authenticated, decrypted packet: its payload and the protocol in it (RFC 4303 §2.3, §2.6)."""

    next_header: int
    payload: bytes
    seq: int  #: the full sequence number (64 bits with ESN)


@attrs.frozen(slots=True)
class Dropped:
    """A discarded packet; ``seq`` is its full sequence number once known."""

    reason: DropReason
    seq: int | None = None


@attrs.define(eq=False, slots=True)
class EspCounters:
    """Per-direction counters of one SA.

    ``packets``/``octets`` count accepted (inbound) or sealed (outbound)
    packets and their payload octets (before padding); the rest count drops
    (inbound only).
    """

    packets: int = 0
    octets: int = 0
    replay_drops: int = 0  #: duplicates and numbers left of the window
    integrity_failures: int = 0
    malformed: int = 0  #: short, truncated, bad padding, wrong SPI
    dummies: int = 0  #: Next Header 59


@attrs.frozen(slots=True)
class EspSuite:
    """The transforms of an ESP SA.

    ``encryption`` is ``None`` for ENCR_NULL (RFC 2410), which needs an
    integrity transform (RFC 4303 §5: not both NULL; RFC 8221 §4, §5); an AEAD
    takes none (RFC 4303 §3.2, RFC 7296 §3.3.3).
    """

    encryption: Encryption | None
    integrity: Integrity | None
    esn: bool = False
    # What every packet needs, worked out once (per-packet property chains cost about 1 us
    # per packet in bench/esp.py): see the properties below for what each one is.
    _iv_size: int = attrs.field(init=False, eq=False, repr=False)
    _icv_size: int = attrs.field(init=False, eq=False, repr=False)
    _alignment: int = attrs.field(init=False, eq=False, repr=False)
    _is_aead: bool = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.encryption is None and self.integrity is None:
            raise LocalError("ENCR_NULL needs an integrity transform (RFC 4303 §5)")
        if self.encryption is not None and self.encryption.is_aead and self.integrity is not None:
            raise LocalError(f"{self.encryption.name} is an AEAD: no integrity transform")
        if self.encryption is not None and not self.encryption.is_aead and self.integrity is None:
            raise LocalError(f"{self.encryption.name} needs an integrity transform")
        encryption, integrity = self.encryption, self.integrity
        icv = 0 if encryption is None else encryption.icv_size
        if integrity is not None:
            icv = integrity.icv_size
        block = 1 if encryption is None else encryption.block_size
        object.__setattr__(self, "_iv_size", 0 if encryption is None else encryption.iv_size)
        object.__setattr__(self, "_icv_size", icv)
        object.__setattr__(self, "_alignment", max(block, _ALIGN))
        object.__setattr__(self, "_is_aead", encryption is not None and encryption.is_aead)

    @classmethod
    def of(cls, params: ChildSaParams) -> EspSuite:
        """The suite a Child SA negotiated (RFC 7296 §3.3.2, §3.3.5)."""
        proposal = params.proposal
        return _suite(proposal.encryption, proposal.integrity_transform(), proposal.esn == EsnId.ESN)

    @property
    def is_aead(self) -> bool:
        return self._is_aead

    @property
    def iv_size(self) -> int:
        return self._iv_size

    @property
    def icv_size(self) -> int:
        """The ICV's octets: the integrity transform's, or the AEAD tag's (RFC 4303 §2.8)."""
        return self._icv_size

    @property
    def alignment(self) -> int:
        """What payload, padding and trailer are padded to: the cipher block, at least 4 (§2.4)."""
        return self._alignment

    @property
    def max_seq(self) -> int:
        return MAX_SEQ_64 if self.esn else MAX_SEQ_32

    def key_sizes(self) -> tuple[int, int]:
        """Octets of encryption key (salt included) and of integrity key."""
        encr = 0 if self.encryption is None else self.encryption.key_size
        integ = 0 if self.integrity is None else self.integrity.key_size
        return encr, integ

    def keyed(
        self, encryption_key: bytes, integrity_key: bytes
    ) -> tuple[KeyedEncryption, KeyedIntegrity | None]:
        """Bind one direction's keys (RFC 7296 §2.17 cuts them from KEYMAT)."""
        if self.encryption is None:
            if encryption_key:
                raise LocalError("ENCR_NULL takes no key")
            cipher: KeyedEncryption = NullCipher()
        else:
            cipher = self.encryption.keyed(encryption_key)
        if self.integrity is None:
            if integrity_key:
                raise LocalError("an AEAD SA takes no integrity key")
            return cipher, None
        return cipher, self.integrity.keyed(integrity_key)

    def aad(self, spi: bytes, seq: int) -> bytes:
        """AEAD associated data: SPI || Sequence Number (RFC 4106 §5, RFC 7634 §2.1)."""
        return spi + seq.to_bytes(8 if self.esn else 4, "big")

    def icv_tail(self, seq: int) -> bytes:
        """What the ICV covers beyond the packet: the high-order 32 bits with ESN (RFC 4303 §2.2.1)."""
        return (seq >> 32).to_bytes(4, "big") if self.esn else b""


@functools.lru_cache(maxsize=64)
def _suite(encr: EncryptionAlgorithm, integ: Integrity | None, esn: bool) -> EspSuite:
    """One :class:`EspSuite` per suite, shared by every pair that negotiated it (issue 14: 96
    octets per Child SA held); what goes in is chosen from our own proposals."""
    encr_id, key_bits = encr
    return EspSuite(None if encr_id == EncrId.NULL else encryption(encr_id, key_bits), integ, esn)


def _check_spi(instance: object, attribute: attrs.Attribute[bytes], value: bytes) -> None:
    if len(value) != 4:
        raise LocalError(f"an ESP SPI is 4 octets, not {len(value)}")


@attrs.define(eq=False, slots=True, on_setattr=attrs.setters.NO_OP)  # checks at construction only
class EspOutbound:
    """The sending half: SPI, keys, the sequence counter (RFC 4303 §3.3)."""

    spi: bytes = attrs.field(validator=_check_spi)
    suite: EspSuite
    _cipher: KeyedEncryption = attrs.field(repr=False, alias="cipher")
    _integrity: KeyedIntegrity | None = attrs.field(repr=False, alias="integrity")
    #: The sequence number of the last packet sealed (0: none yet; the first is 1, §3.3.3).
    last_seq: int = 0
    counters: EspCounters = attrs.Factory(EspCounters)

    @property
    def iv_size(self) -> int:
        """Octets of IV :meth:`seal` takes (AES-CBC: random ones from the caller)."""
        return self.suite.iv_size

    @property
    def needs_random_iv(self) -> bool:
        """Whether :meth:`seal` needs IV octets from the caller (AES-CBC, RFC 3602 §3)."""
        return self.suite.iv_size > 0 and not self.suite.is_aead

    def seal(self, inner: bytes, next_header: int, iv: bytes | None = None) -> bytes:
        """Protect ``inner`` as the next ESP packet (RFC 4303 §3.3).

        ``next_header`` is the IP protocol number of ``inner`` (4 for an IPv4
        packet in tunnel mode, 41 for IPv6; §2.6).  ``iv`` must be
        :attr:`iv_size` octets; for AES-GCM and ChaCha20-Poly1305 it may be left
        out and the 64-bit sequence number is used (RFC 4106 §3.1).  Raises
        :class:`SequenceExhausted` instead of letting the counter cycle
        (§3.3.3: the SA must be rekeyed first).
        """
        if not 0 <= next_header <= 255:
            raise LocalError(f"Next Header is one octet, not {next_header}")
        seq = self.last_seq + 1
        if seq > self.suite.max_seq:
            raise SequenceExhausted(f"ESP SA {self.spi.hex()}: sequence number would cycle; rekey it")
        if iv is None:
            if self.needs_random_iv:
                raise LocalError("AES-CBC needs an unpredictable IV from the caller (RFC 3602 §3)")
            iv = seq.to_bytes(8, "big") if self.suite.iv_size else b""
        if len(iv) != self.suite.iv_size:
            raise LocalError(f"the IV is {self.suite.iv_size} octets, not {len(iv)}")
        pad_length = -(len(inner) + _TRAILER) % self.suite._alignment
        plaintext = inner + _PADDING[:pad_length] + bytes((pad_length, next_header))
        header = self.spi + (seq & MAX_SEQ_32).to_bytes(4, "big")
        if self._integrity is None:
            packet = header + iv + self._cipher.encrypt(iv, plaintext, self.suite.aad(self.spi, seq))
        else:
            body = header + iv + self._cipher.encrypt(iv, plaintext, b"")
            packet = body + self._integrity.compute(body + self.suite.icv_tail(seq))
        self.last_seq = seq
        self.counters.packets += 1
        self.counters.octets += len(inner)
        return packet


@attrs.define(eq=False, slots=True, on_setattr=attrs.setters.NO_OP)  # checks at construction only
class EspInbound:
    """The receiving half: SPI, keys, the anti-replay window (RFC 4303 §3.4)."""

    spi: bytes = attrs.field(validator=_check_spi)
    suite: EspSuite
    _cipher: KeyedEncryption = attrs.field(repr=False, alias="cipher")
    _integrity: KeyedIntegrity | None = attrs.field(repr=False, alias="integrity")
    window: ReplayWindow
    counters: EspCounters = attrs.Factory(EspCounters)

    def _drop(self, reason: DropReason, seq: int | None = None) -> Dropped:
        if reason is DropReason.REPLAY or reason is DropReason.TOO_OLD:
            self.counters.replay_drops += 1
        elif reason is DropReason.INTEGRITY:
            self.counters.integrity_failures += 1
        elif reason is DropReason.DUMMY:
            self.counters.dummies += 1
        else:
            self.counters.malformed += 1
        return Dropped(reason, seq)

    def open(self, packet: bytes) -> Opened | Dropped:
        """Check and decrypt one ESP packet (RFC 4303 §3.4); never raises on peer input."""
        suite = self.suite
        if len(packet) < _HEADER:
            return self._drop(DropReason.SHORT)
        if packet[:4] != self.spi:
            return self._drop(DropReason.WRONG_SPI)
        iv_end = _HEADER + suite._iv_size
        icv_start = len(packet) - suite._icv_size
        ciphertext_size = icv_start - iv_end
        if ciphertext_size < _TRAILER or ciphertext_size % (1 if suite._is_aead else suite._alignment):
            return self._drop(DropReason.TRUNCATED)
        seq = self.window.check(int.from_bytes(packet[4:8], "big"))
        if isinstance(seq, ReplayRejection):
            duplicate = seq is ReplayRejection.DUPLICATE
            return self._drop(DropReason.REPLAY if duplicate else DropReason.TOO_OLD)
        iv = packet[_HEADER:iv_end]
        if self._integrity is None:
            try:
                plaintext = self._cipher.decrypt(iv, packet[iv_end:], suite.aad(self.spi, seq), offset=iv_end)
            except IntegrityCheckFailed:
                return self._drop(DropReason.INTEGRITY, seq)
        else:
            if not self._integrity.verify(packet[:icv_start] + suite.icv_tail(seq), packet[icv_start:]):
                return self._drop(DropReason.INTEGRITY, seq)
            plaintext = self._cipher.decrypt(iv, packet[iv_end:icv_start], b"")
        self.window.update(seq)
        pad_length, next_header = plaintext[-2], plaintext[-1]
        end = len(plaintext) - _TRAILER - pad_length
        if end < 0 or plaintext[end:-_TRAILER] != _PADDING[:pad_length]:
            return self._drop(DropReason.BAD_PADDING, seq)
        if next_header == NEXT_HEADER_DUMMY:
            return self._drop(DropReason.DUMMY, seq)
        payload = plaintext[:end]
        self.counters.packets += 1
        self.counters.octets += len(payload)
        return Opened(next_header, payload, seq)


@attrs.define(eq=False, slots=True)
class EspSa:
    """Both directions of one Child SA pair, as ESP sees them."""

    inbound: EspInbound
    outbound: EspOutbound

    def seal(self, inner: bytes, next_header: int, iv: bytes | None = None) -> bytes:
        """:meth:`EspOutbound.seal` of the outbound half."""
        return self.outbound.seal(inner, next_header, iv)

    def open(self, packet: bytes) -> Opened | Dropped:
        """:meth:`EspInbound.open` of the inbound half."""
        return self.inbound.open(packet)


def esp_sa(params: ChildSaParams, *, replay_window: int = DEFAULT_REPLAY_WINDOW) -> EspSa:
    """The ESP SA pair of a negotiated Child SA (RFC 7296 §2.17, RFC 4303 §3.3, §3.4).

    We send to ``outbound_spi`` and receive on ``inbound_spi``; the exchange's
    initiator sends with ``encryption_i``/``integrity_i``, so ``initiated``
    (we were it) picks those for our outbound half.
    """
    suite = EspSuite.of(params)
    keys = params.keys
    if params.initiated:
        ours, theirs = (keys.encryption_i, keys.integrity_i), (keys.encryption_r, keys.integrity_r)
    else:
        ours, theirs = (keys.encryption_r, keys.integrity_r), (keys.encryption_i, keys.integrity_i)
    send_cipher, send_integrity = suite.keyed(*ours)
    receive_cipher, receive_integrity = suite.keyed(*theirs)
    return EspSa(
        inbound=EspInbound(
            params.inbound_spi,
            suite,
            cipher=receive_cipher,
            integrity=receive_integrity,
            window=ReplayWindow(replay_window, esn=suite.esn),
        ),
        outbound=EspOutbound(params.outbound_spi, suite, cipher=send_cipher, integrity=send_integrity),
    )
