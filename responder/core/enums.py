"""IANA registries of IKEv2 as ``IntEnum`` classes.

Strategy: every wire value the codec reads is turned into one of these enums.
Values the registry does not (yet) know must survive a parse/serialize round
trip unchanged, so each enum is *open*: an unknown value becomes a pseudo-member
named ``UNKNOWN_<value>`` that compares and encodes like the integer it is
(RFC 7296 §3.3.6: unknown transform IDs are skipped, §3.10.1: unknown notify
status types are ignored; both need the value kept).

Names follow the IANA "Internet Key Exchange Version 2 (IKEv2) Parameters"
registry, with the registry's prefixes (``ENCR_``, ``PRF_``, ``AUTH_``) dropped
where the class name already says them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TypeVar, cast

__all__ = [
    "AuthMethod",
    "CertEncoding",
    "ConfigAttributeType",
    "ConfigType",
    "EncrId",
    "EsnId",
    "ExchangeType",
    "HashAlgorithm",
    "IdType",
    "IntegId",
    "IpProtocol",
    "KeyExchangeId",
    "NotifyType",
    "OpenIntEnum",
    "PayloadType",
    "PrfId",
    "ProtocolId",
    "TransformAttributeType",
    "TransformType",
    "TsType",
    "member_lookup",
]


class OpenIntEnum(enum.IntEnum):
    """An ``IntEnum`` whose unknown values become ``UNKNOWN_<n>`` pseudo-members.

    Pseudo-members are cached, so ``X(n) is X(n)`` holds for unknown values too.
    The value range is bounded by the wire field (at most 16 bits here), so the
    cache is bounded as well.
    """

    @classmethod
    def _missing_(cls, value: object) -> OpenIntEnum | None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 0xFFFF:
            return None
        cached = cls._value2member_map_.get(value)
        if cached is not None:
            assert isinstance(cached, cls)  # internal invariant of the cache, not peer input
            return cached
        pseudo = int.__new__(cls, value)
        pseudo._name_ = f"UNKNOWN_{value}"
        pseudo._value_ = value
        cls._value2member_map_[value] = pseudo
        return pseudo

    @property
    def is_known(self) -> bool:
        """True when the value is named in the registry (not a pseudo-member)."""
        return self._name_ in type(self).__members__


_E = TypeVar("_E", bound=OpenIntEnum)


def member_lookup(enum_class: type[_E]) -> Callable[[int], _E]:
    """A faster ``enum_class(value)`` for the codec's hot paths and converters, with the same results.

    ``enum_class(value)`` costs two Python-level calls (``EnumType.__call__``,
    ``Enum.__new__``) before it reaches the value-to-member dict; the returned
    function looks in that dict directly and falls back to ``enum_class(value)``
    for everything else (the first sight of an unknown value, which creates and
    caches its pseudo-member, and invalid or unhashable values, which raise as
    before).  The dict is the live one: pseudo-members cached later are found too.
    """
    members = cast("dict[object, _E]", enum_class._value2member_map_)

    def lookup(value: int) -> _E:
        if type(value) is enum_class:  # already a member: Enum.__new__'s own first test
            return value
        try:
            return members[value]
        except (KeyError, TypeError):
            return enum_class(value)

    lookup.__name__ = lookup.__qualname__ = f"{enum_class.__name__}_lookup"
    return lookup


class ExchangeType(OpenIntEnum):
    """IKEv2 Exchange Types (RFC 7296 §3.1; RFC 9242; RFC 9370)."""

    IKE_SA_INIT = 34
    IKE_AUTH = 35
    CREATE_CHILD_SA = 36
    INFORMATIONAL = 37
    IKE_SESSION_RESUME = 38
    GSA_AUTH = 39
    GSA_REGISTRATION = 40
    GSA_REKEY = 41
    IKE_INTERMEDIATE = 43
    IKE_FOLLOWUP_KE = 44


class PayloadType(OpenIntEnum):
    """IKEv2 Payload Types (RFC 7296 §3.2; RFC 7383 for SKF)."""

    NONE = 0
    SA = 33
    KE = 34
    IDi = 35
    IDr = 36
    CERT = 37
    CERTREQ = 38
    AUTH = 39
    NONCE = 40
    NOTIFY = 41
    DELETE = 42
    VENDOR = 43
    TSi = 44
    TSr = 45
    SK = 46
    CP = 47
    EAP = 48
    GSPM = 49
    IDg = 50
    GSA = 51
    KD = 52
    SKF = 53
    PS = 54


class TransformType(OpenIntEnum):
    """Transform Type Values (RFC 7296 §3.3.2; RFC 9370 §2.2.1 for ADDKE)."""

    ENCR = 1
    PRF = 2
    INTEG = 3
    KE = 4  # "Diffie-Hellman Group (D-H)" in RFC 7296; renamed "Key Exchange Method" by RFC 9370
    ESN = 5
    ADDKE1 = 6
    ADDKE2 = 7
    ADDKE3 = 8
    ADDKE4 = 9
    ADDKE5 = 10
    ADDKE6 = 11
    ADDKE7 = 12


class EncrId(OpenIntEnum):
    """Transform Type 1 - Encryption Algorithm Transform IDs."""

    DES_IV64 = 1
    DES = 2
    DES3 = 3
    RC5 = 4
    IDEA = 5
    CAST = 6
    BLOWFISH = 7
    IDEA3 = 8
    DES_IV32 = 9
    NULL = 11
    AES_CBC = 12
    AES_CTR = 13
    AES_CCM_8 = 14
    AES_CCM_12 = 15
    AES_CCM_16 = 16
    AES_GCM_8 = 18
    AES_GCM_12 = 19
    AES_GCM_16 = 20
    NULL_AUTH_AES_GMAC = 21
    CAMELLIA_CBC = 23
    CAMELLIA_CTR = 24
    CAMELLIA_CCM_8 = 25
    CAMELLIA_CCM_12 = 26
    CAMELLIA_CCM_16 = 27
    CHACHA20_POLY1305 = 28
    AES_CCM_8_IIV = 29
    AES_GCM_16_IIV = 30
    CHACHA20_POLY1305_IIV = 31


class PrfId(OpenIntEnum):
    """Transform Type 2 - Pseudorandom Function Transform IDs."""

    HMAC_MD5 = 1
    HMAC_SHA1 = 2
    HMAC_TIGER = 3
    AES128_XCBC = 4
    HMAC_SHA2_256 = 5
    HMAC_SHA2_384 = 6
    HMAC_SHA2_512 = 7
    AES128_CMAC = 8


class IntegId(OpenIntEnum):
    """Transform Type 3 - Integrity Algorithm Transform IDs."""

    NONE = 0
    HMAC_MD5_96 = 1
    HMAC_SHA1_96 = 2
    DES_MAC = 3
    KPDK_MD5 = 4
    AES_XCBC_96 = 5
    HMAC_MD5_128 = 6
    HMAC_SHA1_160 = 7
    AES_CMAC_96 = 8
    AES_128_GMAC = 9
    AES_192_GMAC = 10
    AES_256_GMAC = 11
    HMAC_SHA2_256_128 = 12
    HMAC_SHA2_384_192 = 13
    HMAC_SHA2_512_256 = 14


class KeyExchangeId(OpenIntEnum):
    """Transform Type 4 - Key Exchange Method Transform IDs (DH groups, KEMs)."""

    NONE = 0
    MODP_768 = 1
    MODP_1024 = 2
    MODP_1536 = 5
    MODP_2048 = 14
    MODP_3072 = 15
    MODP_4096 = 16
    MODP_6144 = 17
    MODP_8192 = 18
    ECP_256 = 19
    ECP_384 = 20
    ECP_521 = 21
    MODP_1024_160 = 22
    MODP_2048_224 = 23
    MODP_2048_256 = 24
    ECP_192 = 25
    ECP_224 = 26
    BRAINPOOL_P224R1 = 27
    BRAINPOOL_P256R1 = 28
    BRAINPOOL_P384R1 = 29
    BRAINPOOL_P512R1 = 30
    CURVE25519 = 31
    CURVE448 = 32
    GOST3410_2012_256 = 33
    GOST3410_2012_512 = 34
    ML_KEM_512 = 35
    ML_KEM_768 = 36
    ML_KEM_1024 = 37


class EsnId(OpenIntEnum):
    """Transform Type 5 - Extended Sequence Numbers Transform IDs."""

    NO_ESN = 0
    ESN = 1


class TransformAttributeType(OpenIntEnum):
    """IKEv2 Transform Attribute Types (RFC 7296 §3.3.5)."""

    KEY_LENGTH = 14


class ProtocolId(OpenIntEnum):
    """Security Protocol Identifiers (RFC 7296 §3.3.1)."""

    RESERVED = 0  # used by notifies that concern no SA (RFC 7296 §3.10)
    IKE = 1
    AH = 2
    ESP = 3
    FC_ESP_HEADER = 4
    FC_CT_AUTHENTICATION = 5
    GIKE_UPDATE = 6


class IdType(OpenIntEnum):
    """IKEv2 Identification Payload ID Types (RFC 7296 §3.5; RFC 7619)."""

    ID_IPV4_ADDR = 1
    ID_FQDN = 2
    ID_RFC822_ADDR = 3
    ID_IPV6_ADDR = 5
    ID_DER_ASN1_DN = 9
    ID_DER_ASN1_GN = 10
    ID_KEY_ID = 11
    ID_FC_NAME = 12
    ID_NULL = 13


class CertEncoding(OpenIntEnum):
    """IKEv2 Certificate Encodings (RFC 7296 §3.6; RFC 7670)."""

    PKCS7_WRAPPED_X509 = 1
    PGP = 2
    DNS_SIGNED_KEY = 3
    X509_CERT_SIGNATURE = 4
    KERBEROS_TOKEN = 6
    CRL = 7
    ARL = 8
    SPKI = 9
    X509_CERT_ATTRIBUTE = 10
    RAW_RSA_KEY = 11
    HASH_URL_X509_CERT = 12
    HASH_URL_X509_BUNDLE = 13
    OCSP_CONTENT = 14
    RAW_PUBLIC_KEY = 15


class AuthMethod(OpenIntEnum):
    """IKEv2 Authentication Method (RFC 7296 §3.8; RFC 4754; RFC 7619; RFC 7427)."""

    RSA_DIGITAL_SIGNATURE = 1
    SHARED_KEY_MIC = 2
    DSS_DIGITAL_SIGNATURE = 3
    ECDSA_SHA256_P256 = 9
    ECDSA_SHA384_P384 = 10
    ECDSA_SHA512_P521 = 11
    GENERIC_SECURE_PASSWORD = 12
    NULL_AUTHENTICATION = 13
    DIGITAL_SIGNATURE = 14


class NotifyType(OpenIntEnum):
    """IKEv2 Notify Message Types: errors below 16384, status types above (RFC 7296 §3.10.1)."""

    # Error types
    UNSUPPORTED_CRITICAL_PAYLOAD = 1
    INVALID_IKE_SPI = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_SYNTAX = 7
    INVALID_MESSAGE_ID = 9
    INVALID_SPI = 11
    NO_PROPOSAL_CHOSEN = 14
    INVALID_KE_PAYLOAD = 17
    AUTHENTICATION_FAILED = 24
    SINGLE_PAIR_REQUIRED = 34
    NO_ADDITIONAL_SAS = 35
    INTERNAL_ADDRESS_FAILURE = 36
    FAILED_CP_REQUIRED = 37
    TS_UNACCEPTABLE = 38
    INVALID_SELECTORS = 39
    UNACCEPTABLE_ADDRESSES = 40
    UNEXPECTED_NAT_DETECTED = 41
    USE_ASSIGNED_HoA = 42
    TEMPORARY_FAILURE = 43
    CHILD_SA_NOT_FOUND = 44
    INVALID_GROUP_ID = 45
    AUTHORIZATION_FAILED = 46
    STATE_NOT_FOUND = 47
    # Status types
    INITIAL_CONTACT = 16384
    SET_WINDOW_SIZE = 16385
    ADDITIONAL_TS_POSSIBLE = 16386
    IPCOMP_SUPPORTED = 16387
    NAT_DETECTION_SOURCE_IP = 16388
    NAT_DETECTION_DESTINATION_IP = 16389
    COOKIE = 16390
    USE_TRANSPORT_MODE = 16391
    HTTP_CERT_LOOKUP_SUPPORTED = 16392
    REKEY_SA = 16393
    ESP_TFC_PADDING_NOT_SUPPORTED = 16394
    NON_FIRST_FRAGMENTS_ALSO = 16395
    MOBIKE_SUPPORTED = 16396
    ADDITIONAL_IP4_ADDRESS = 16397
    ADDITIONAL_IP6_ADDRESS = 16398
    NO_ADDITIONAL_ADDRESSES = 16399
    UPDATE_SA_ADDRESSES = 16400
    COOKIE2 = 16401
    NO_NATS_ALLOWED = 16402
    AUTH_LIFETIME = 16403
    MULTIPLE_AUTH_SUPPORTED = 16404
    ANOTHER_AUTH_FOLLOWS = 16405
    REDIRECT_SUPPORTED = 16406
    REDIRECT = 16407
    REDIRECTED_FROM = 16408
    TICKET_LT_OPAQUE = 16409
    TICKET_REQUEST = 16410
    TICKET_ACK = 16411
    TICKET_NACK = 16412
    TICKET_OPAQUE = 16413
    LINK_ID = 16414
    USE_WESP_MODE = 16415
    ROHC_SUPPORTED = 16416
    EAP_ONLY_AUTHENTICATION = 16417
    CHILDLESS_IKEV2_SUPPORTED = 16418
    QUICK_CRASH_DETECTION = 16419
    IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420
    IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421
    IKEV2_MESSAGE_ID_SYNC = 16422
    IPSEC_REPLAY_COUNTER_SYNC = 16423
    SECURE_PASSWORD_METHODS = 16424
    PSK_PERSIST = 16425
    PSK_CONFIRM = 16426
    ERX_SUPPORTED = 16427
    IFOM_CAPABILITY = 16428
    SENDER_REQUEST_ID = 16429
    IKEV2_FRAGMENTATION_SUPPORTED = 16430
    SIGNATURE_HASH_ALGORITHMS = 16431
    CLONE_IKE_SA_SUPPORTED = 16432
    CLONE_IKE_SA = 16433
    PUZZLE = 16434
    USE_PPK = 16435
    PPK_IDENTITY = 16436
    NO_PPK_AUTH = 16437
    INTERMEDIATE_EXCHANGE_SUPPORTED = 16438
    IP4_ALLOWED = 16439
    IP6_ALLOWED = 16440
    ADDITIONAL_KEY_EXCHANGE = 16441
    USE_AGGFRAG = 16442
    SUPPORTED_AUTH_METHODS = 16443

    @property
    def is_error(self) -> bool:
        """Error types are 0-16383, status types 16384-65535 (RFC 7296 §3.10.1)."""
        return int(self) < 16384


class TsType(OpenIntEnum):
    """IKEv2 Traffic Selector Types (RFC 7296 §3.13.1)."""

    TS_IPV4_ADDR_RANGE = 7
    TS_IPV6_ADDR_RANGE = 8
    TS_FC_ADDR_RANGE = 9
    TS_SECLABEL = 10


class ConfigType(OpenIntEnum):
    """IKEv2 Configuration Payload CFG Types (RFC 7296 §3.15)."""

    CFG_REQUEST = 1
    CFG_REPLY = 2
    CFG_SET = 3
    CFG_ACK = 4


class ConfigAttributeType(OpenIntEnum):
    """IKEv2 Configuration Payload Attribute Types (RFC 7296 §3.15.1 and later RFCs)."""

    INTERNAL_IP4_ADDRESS = 1
    INTERNAL_IP4_NETMASK = 2
    INTERNAL_IP4_DNS = 3
    INTERNAL_IP4_NBNS = 4
    INTERNAL_IP4_DHCP = 6
    APPLICATION_VERSION = 7
    INTERNAL_IP6_ADDRESS = 8
    INTERNAL_IP6_DNS = 10
    INTERNAL_IP6_DHCP = 12
    INTERNAL_IP4_SUBNET = 13
    SUPPORTED_ATTRIBUTES = 14
    INTERNAL_IP6_SUBNET = 15
    MIP6_HOME_PREFIX = 16
    INTERNAL_IP6_LINK = 17
    INTERNAL_IP6_PREFIX = 18
    HOME_AGENT_ADDRESS = 19
    P_CSCF_IP4_ADDRESS = 20
    P_CSCF_IP6_ADDRESS = 21
    FTT_KAT = 22
    EXTERNAL_SOURCE_IP4_NAT_INFO = 23
    TIMEOUT_PERIOD_FOR_LIVENESS_CHECK = 24
    INTERNAL_DNS_DOMAIN = 25
    INTERNAL_DNSSEC_TA = 26


class HashAlgorithm(OpenIntEnum):
    """IKEv2 Hash Algorithms for SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4)."""

    SHA1 = 1
    SHA2_256 = 2
    SHA2_384 = 3
    SHA2_512 = 4
    IDENTITY = 5


class IpProtocol(OpenIntEnum):
    """A few IP protocol numbers used in traffic selectors; 0 means any (RFC 7296 §3.13.1)."""

    ANY = 0
    ICMP = 1
    TCP = 6
    UDP = 17
    ICMPV6 = 58
