"""IKE and ESP proposals of local policy, in strongSwan's keywords (RFC 7296 §3.3.2, RFC 8247).

Strategy: an :class:`IkeProposal` or :class:`EspProposal` lists acceptable
algorithms per transform type in order of preference, parsed from strongSwan's
dash-separated keywords (``aes256gcm16-prfsha256-x25519``) so interop
configurations can be copied across; ``str()`` parses back to an equal value.
Validation refuses what this implementation cannot do (an algorithm the
transforms do not implement, AEAD and non-AEAD mixed in one proposal, an
integrity algorithm beside AEAD).  Choosing among a peer's offers is
:mod:`responder.core.proposals`' job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, TypeAlias, TypeVar

import attrs

from responder.core.enums import EncrId, EsnId, IntegId, KeyExchangeId, PrfId
from responder.core.errors import ConfigError
from responder.core.key_exchange import supported_methods
from responder.core.transforms import encryption, supported_encryption, supported_integrity, supported_prfs
from responder.core.validation import check_text, duplicates, is_int

__all__ = [
    "DEFAULT_ESP_PROPOSALS",
    "DEFAULT_IKE_PROPOSALS",
    "EncryptionAlgorithm",
    "EspProposal",
    "IkeProposal",
    "algorithm_name",
    "key_exchange_keyword",
]

#: An encryption transform and its Key Length attribute in bits (``None`` when it takes none).
EncryptionAlgorithm: TypeAlias = tuple[EncrId, int | None]


_ENCRYPTION_KEYWORDS: Final[dict[str, EncryptionAlgorithm]] = {
    "aes128": (EncrId.AES_CBC, 128),
    "aes192": (EncrId.AES_CBC, 192),
    "aes256": (EncrId.AES_CBC, 256),
    "aes": (EncrId.AES_CBC, 128),
    **{
        f"aes{bits}gcm{icv}": (EncrId.AES_GCM_16, bits)
        for bits in (128, 192, 256)
        for icv in ("16", "128", "")
    },
    "chacha20poly1305": (EncrId.CHACHA20_POLY1305, None),
    # ESP only, with integrity, and never by default (RFC 8221 §5; IKE proposals refuse it).
    "null": (EncrId.NULL, None),
    # Known to strongSwan, refused by validation here (not implemented):
    **{f"aes{bits}ctr": (EncrId.AES_CTR, bits) for bits in (128, 192, 256)},
    **{f"aes{bits}ccm16": (EncrId.AES_CCM_16, bits) for bits in (128, 192, 256)},
    **{f"camellia{bits}": (EncrId.CAMELLIA_CBC, bits) for bits in (128, 192, 256)},
    "3des": (EncrId.DES3, None),
}
_PRF_KEYWORDS: Final = {
    "prfsha1": PrfId.HMAC_SHA1,
    "prfsha256": PrfId.HMAC_SHA2_256,
    "prfsha384": PrfId.HMAC_SHA2_384,
    "prfsha512": PrfId.HMAC_SHA2_512,
    "prfmd5": PrfId.HMAC_MD5,
    "prfaesxcbc": PrfId.AES128_XCBC,
    "prfaescmac": PrfId.AES128_CMAC,
}
_INTEGRITY_KEYWORDS: Final = {
    "sha1": IntegId.HMAC_SHA1_96,
    "sha": IntegId.HMAC_SHA1_96,
    "sha256": IntegId.HMAC_SHA2_256_128,
    "sha2_256": IntegId.HMAC_SHA2_256_128,
    "sha384": IntegId.HMAC_SHA2_384_192,
    "sha2_384": IntegId.HMAC_SHA2_384_192,
    "sha512": IntegId.HMAC_SHA2_512_256,
    "sha2_512": IntegId.HMAC_SHA2_512_256,
    "md5": IntegId.HMAC_MD5_96,
    "aesxcbc": IntegId.AES_XCBC_96,
    "aescmac": IntegId.AES_CMAC_96,
}
#: strongSwan derives an IKE proposal's PRFs from its integrity algorithms when none is given.
_PRF_OF_INTEGRITY: Final = {
    IntegId.HMAC_SHA1_96: PrfId.HMAC_SHA1,
    IntegId.HMAC_SHA2_256_128: PrfId.HMAC_SHA2_256,
    IntegId.HMAC_SHA2_384_192: PrfId.HMAC_SHA2_384,
    IntegId.HMAC_SHA2_512_256: PrfId.HMAC_SHA2_512,
    IntegId.HMAC_MD5_96: PrfId.HMAC_MD5,
    IntegId.AES_XCBC_96: PrfId.AES128_XCBC,
    IntegId.AES_CMAC_96: PrfId.AES128_CMAC,
}
_KE_KEYWORDS: Final = {
    "x25519": KeyExchangeId.CURVE25519,
    "curve25519": KeyExchangeId.CURVE25519,
    "x448": KeyExchangeId.CURVE448,
    "curve448": KeyExchangeId.CURVE448,
    "ecp256": KeyExchangeId.ECP_256,
    "ecp384": KeyExchangeId.ECP_384,
    "ecp521": KeyExchangeId.ECP_521,
    "modp2048": KeyExchangeId.MODP_2048,
    "modp3072": KeyExchangeId.MODP_3072,
    "modp4096": KeyExchangeId.MODP_4096,
    "modp6144": KeyExchangeId.MODP_6144,
    "modp8192": KeyExchangeId.MODP_8192,
    "modp1024": KeyExchangeId.MODP_1024,
    "modp1536": KeyExchangeId.MODP_1536,
    "modp768": KeyExchangeId.MODP_768,
    "ecp192": KeyExchangeId.ECP_192,
    "ecp224": KeyExchangeId.ECP_224,
    "ecp224bp": KeyExchangeId.BRAINPOOL_P224R1,
    "ecp256bp": KeyExchangeId.BRAINPOOL_P256R1,
    "ecp384bp": KeyExchangeId.BRAINPOOL_P384R1,
    "ecp512bp": KeyExchangeId.BRAINPOOL_P512R1,
    "mlkem512": KeyExchangeId.ML_KEM_512,
    "mlkem768": KeyExchangeId.ML_KEM_768,
    "mlkem1024": KeyExchangeId.ML_KEM_1024,
}
_ESN_KEYWORDS: Final = {"noesn": EsnId.NO_ESN, "esn": EsnId.ESN}


_T = TypeVar("_T")


def _first_names(table: dict[str, _T]) -> dict[_T, str]:
    names: dict[_T, str] = {}
    for keyword, value in table.items():
        names.setdefault(value, keyword)
    return names


_ENCRYPTION_NAMES: Final = _first_names(_ENCRYPTION_KEYWORDS)
_PRF_NAMES: Final = _first_names(_PRF_KEYWORDS)
_INTEGRITY_NAMES: Final = _first_names(_INTEGRITY_KEYWORDS)
_KE_NAMES: Final = _first_names(_KE_KEYWORDS)
_ESN_NAMES: Final = _first_names(_ESN_KEYWORDS)


def key_exchange_keyword(text: str) -> KeyExchangeId | None:
    """The key exchange method of a strongSwan keyword (``x25519``, ``ecp256``, ``modp2048``, ...),
    any case; ``None`` if it names none (RFC 7296 §3.3.2 Transform Type 4)."""
    return _KE_KEYWORDS.get(text.strip().lower())


def algorithm_name(value: EncryptionAlgorithm | PrfId | IntegId | KeyExchangeId | EsnId) -> str:
    """The strongSwan keyword of an algorithm (``aes256gcm16``, ``prfsha256``, ``x25519``, ...).

    Falls back to the IANA name (with the key length) for algorithms without one.
    """
    if isinstance(value, tuple):
        name = _ENCRYPTION_NAMES.get(value)
        if name is not None:
            return name
        transform_id, bits = value
        return transform_id.name if bits is None else f"{transform_id.name}-{bits}"
    if isinstance(value, PrfId):
        return _PRF_NAMES.get(value, value.name)
    if isinstance(value, IntegId):
        return _INTEGRITY_NAMES.get(value, value.name)
    if isinstance(value, KeyExchangeId):
        return _KE_NAMES.get(value, value.name)
    return _ESN_NAMES.get(value, value.name)


def _is_aead(algorithm: EncryptionAlgorithm) -> bool:
    return supported_encryption(*algorithm) and encryption(*algorithm).is_aead


def _check_encryption(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple):
        raise ConfigError(f"expected a tuple, got {type(value).__name__}", attribute.name)
    if not value:
        raise ConfigError("needs at least one encryption algorithm", attribute.name)
    for index, item in enumerate(value):
        field = f"{attribute.name}[{index}]"
        if not (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], EncrId)
            and (item[1] is None or is_int(item[1]))
        ):
            raise ConfigError("expected (EncrId, key bits or None)", field)
        if not supported_encryption(*item):
            raise ConfigError(f"{algorithm_name(item)} is not supported", field)
    for index in duplicates(value):
        raise ConfigError(f"duplicate {algorithm_name(value[index])}", f"{attribute.name}[{index}]")
    if len({_is_aead(item) for item in value}) > 1:
        raise ConfigError(
            "AEAD and non-AEAD algorithms in one proposal; use two proposals (RFC 7296 §2.7)", attribute.name
        )


def _enum_members(
    kind: type[PrfId | IntegId | KeyExchangeId | EsnId],
    supported: Sequence[PrfId | IntegId | KeyExchangeId | EsnId],
    what: str,
    *,
    min_size: int = 0,
) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple):
            raise ConfigError(f"expected a tuple, got {type(value).__name__}", attribute.name)
        for index, item in enumerate(value):
            field = f"{attribute.name}[{index}]"
            if not isinstance(item, kind):
                raise ConfigError(f"expected a {kind.__name__}, got {type(item).__name__}", field)
            if item not in supported:
                raise ConfigError(f"{algorithm_name(item)} is not supported", field)
        for index in duplicates(value):
            raise ConfigError(f"duplicate {value[index].name}", f"{attribute.name}[{index}]")
        if len(value) < min_size:
            raise ConfigError(f"needs at least {min_size} {what}", attribute.name)

    return check


def _check_integrity_needed(
    encryption_algorithms: tuple[EncryptionAlgorithm, ...], integrity: tuple[IntegId, ...]
) -> None:
    aead = _is_aead(encryption_algorithms[0])
    if aead and integrity:
        raise ConfigError(
            "AEAD encryption takes no integrity algorithm (RFC 5282 §8); put it in its own proposal",
            "integrity",
        )
    if not aead and not integrity:
        raise ConfigError("non-AEAD encryption needs an integrity algorithm", "integrity")


def _tokens(text: str) -> list[str]:
    if not isinstance(text, str):
        raise ConfigError(f"expected a string, got {type(text).__name__}")
    tokens = [token.strip() for token in text.strip().lower().split("-")]
    if any(not token for token in tokens):
        raise ConfigError(f"proposal {text!r} has an empty algorithm name")
    for index in duplicates(tokens):
        raise ConfigError(f"proposal {text!r} names {tokens[index]!r} twice")
    return tokens


@attrs.frozen
class IkeProposal:
    """One IKE SA proposal of local policy, algorithms in order of preference (RFC 7296 §3.3).

    AEAD and non-AEAD encryption are not mixed; an AEAD proposal has no
    integrity algorithm (RFC 5282 §8), a non-AEAD one needs at least one.
    """

    encryption: tuple[EncryptionAlgorithm, ...] = attrs.field(validator=_check_encryption)
    prf: tuple[PrfId, ...] = attrs.field(validator=_enum_members(PrfId, supported_prfs(), "PRF", min_size=1))
    integrity: tuple[IntegId, ...] = attrs.field(
        validator=_enum_members(IntegId, supported_integrity(), "integrity")
    )
    key_exchange: tuple[KeyExchangeId, ...] = attrs.field(
        validator=_enum_members(KeyExchangeId, supported_methods(), "key exchange method", min_size=1)
    )

    def __attrs_post_init__(self) -> None:
        _check_integrity_needed(self.encryption, self.integrity)
        for index, algorithm in enumerate(self.encryption):
            if algorithm[0] == EncrId.NULL:  # RFC 8221 §5 allows it for ESP only; RFC 8247 §2.1 lists none
                raise ConfigError(
                    "ENCR_NULL is for ESP only, never for IKE (RFC 8221 §5)", f"encryption[{index}]"
                )

    @property
    def is_aead(self) -> bool:
        return _is_aead(self.encryption[0])

    @classmethod
    def parse(cls, text: str) -> IkeProposal:
        """A proposal from strongSwan keywords, e.g. ``aes256gcm16-prfsha256-x25519-ecp256``.

        Without a ``prf...`` keyword the PRFs follow the integrity algorithms
        (``sha256`` gives ``prfsha256``), as strongSwan does; AEAD proposals
        must name their PRF.
        """
        check_text(text)
        encryption_algorithms: list[EncryptionAlgorithm] = []
        prfs: list[PrfId] = []
        integrity: list[IntegId] = []
        groups: list[KeyExchangeId] = []
        for token in _tokens(text):
            if token in _ENCRYPTION_KEYWORDS:
                encryption_algorithms.append(_ENCRYPTION_KEYWORDS[token])
            elif token in _PRF_KEYWORDS:
                prfs.append(_PRF_KEYWORDS[token])
            elif token in _INTEGRITY_KEYWORDS:
                integrity.append(_INTEGRITY_KEYWORDS[token])
            elif token in _KE_KEYWORDS:
                groups.append(_KE_KEYWORDS[token])
            elif token in _ESN_KEYWORDS:
                raise ConfigError(f"{token!r} is an ESP keyword; IKE proposals have no ESN")
            else:
                raise ConfigError(f"unknown algorithm {token!r} in proposal {text!r}")
        if not prfs:
            for algorithm in integrity:
                derived = _PRF_OF_INTEGRITY.get(algorithm)
                if derived is not None and derived not in prfs:
                    prfs.append(derived)
        return cls(tuple(encryption_algorithms), tuple(prfs), tuple(integrity), tuple(groups))

    def __str__(self) -> str:
        return "-".join(
            [algorithm_name(a) for a in self.encryption]
            + [algorithm_name(a) for a in self.integrity]
            + [algorithm_name(a) for a in self.prf]
            + [algorithm_name(a) for a in self.key_exchange]
        )


_DEFAULT_ESN: Final = (EsnId.NO_ESN, EsnId.ESN)


@attrs.frozen
class EspProposal:
    """One ESP proposal of local policy (RFC 7296 §3.3; RFC 4303 for ESN).

    ``esn`` defaults to both values, NO_ESN preferred: a peer that asks for
    extended sequence numbers gets them, one that offers both gets 32-bit
    ones (strongSwan's default accepts only ``noesn``).  ``key_exchange``
    lists the groups acceptable for PFS in CREATE_CHILD_SA; whether a key
    exchange is required is the caller's decision (see
    :func:`responder.core.proposals.select_esp_proposal`).
    """

    encryption: tuple[EncryptionAlgorithm, ...] = attrs.field(validator=_check_encryption)
    integrity: tuple[IntegId, ...] = attrs.field(
        validator=_enum_members(IntegId, supported_integrity(), "integrity")
    )
    esn: tuple[EsnId, ...] = attrs.field(
        default=_DEFAULT_ESN, validator=_enum_members(EsnId, _DEFAULT_ESN, "ESN value", min_size=1)
    )
    key_exchange: tuple[KeyExchangeId, ...] = attrs.field(
        default=(), validator=_enum_members(KeyExchangeId, supported_methods(), "key exchange method")
    )

    def __attrs_post_init__(self) -> None:
        _check_integrity_needed(self.encryption, self.integrity)

    @property
    def is_aead(self) -> bool:
        return _is_aead(self.encryption[0])

    @classmethod
    def parse(cls, text: str) -> EspProposal:
        """A proposal from strongSwan keywords, e.g. ``aes256gcm16-esn`` or ``aes256-sha256-ecp256``.

        ``esn`` / ``noesn`` choose the ESN values (both: ``noesn-esn``);
        without either, both are accepted.  Key exchange keywords are PFS groups.
        """
        check_text(text)
        encryption_algorithms: list[EncryptionAlgorithm] = []
        integrity: list[IntegId] = []
        groups: list[KeyExchangeId] = []
        esn: list[EsnId] = []
        for token in _tokens(text):
            if token in _ENCRYPTION_KEYWORDS:
                encryption_algorithms.append(_ENCRYPTION_KEYWORDS[token])
            elif token in _INTEGRITY_KEYWORDS:
                integrity.append(_INTEGRITY_KEYWORDS[token])
            elif token in _KE_KEYWORDS:
                groups.append(_KE_KEYWORDS[token])
            elif token in _ESN_KEYWORDS:
                esn.append(_ESN_KEYWORDS[token])
            elif token in _PRF_KEYWORDS:
                raise ConfigError(f"{token!r} is a PRF; ESP proposals have none")
            else:
                raise ConfigError(f"unknown algorithm {token!r} in proposal {text!r}")
        return cls(tuple(encryption_algorithms), tuple(integrity), tuple(esn) or _DEFAULT_ESN, tuple(groups))

    def __str__(self) -> str:
        names = (
            [algorithm_name(a) for a in self.encryption]
            + [algorithm_name(a) for a in self.integrity]
            + [algorithm_name(a) for a in self.key_exchange]
        )
        if self.esn != _DEFAULT_ESN:
            names += [algorithm_name(a) for a in self.esn]
        return "-".join(names)


DEFAULT_IKE_PROPOSALS: Final = (
    IkeProposal.parse(
        "aes256gcm16-aes128gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-modp2048"
    ),
    IkeProposal.parse("aes256-aes128-sha256-sha384-sha512-x25519-ecp256-ecp384-modp2048"),
)

DEFAULT_ESP_PROPOSALS: Final = (
    EspProposal.parse("aes256gcm16-aes128gcm16-chacha20poly1305"),
    EspProposal.parse("aes256-sha256"),
)
