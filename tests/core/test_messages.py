"""Hex <-> value tables for every payload and for whole messages (h11 ``test_io.py`` style).

The hex is written by hand from the figures of RFC 7296 §3 and RFC 7383 §2.5; each
row is checked both ways (decode(hex) == value and encode(value) == hex).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

import attrs
import pytest

from responder.core.enums import (
    AuthMethod,
    CertEncoding,
    ConfigAttributeType,
    ConfigType,
    EncrId,
    EsnId,
    ExchangeType,
    IdType,
    IntegId,
    IpProtocol,
    KeyExchangeId,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformAttributeType,
    TransformType,
    TsType,
)
from responder.core.errors import LocalError
from responder.core.messages import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    ConfigAttribute,
    ConfigPayload,
    DeletePayload,
    EapCode,
    EapPayload,
    EncryptedFragmentPayload,
    EncryptedPayload,
    Header,
    IdiPayload,
    IdrPayload,
    KePayload,
    Message,
    NoncePayload,
    NotifyPayload,
    OpaquePayload,
    OpaqueTrafficSelector,
    Payload,
    Proposal,
    SaPayload,
    TrafficSelector,
    Transform,
    TransformAttribute,
    TsiPayload,
    TsrPayload,
    VendorIdPayload,
    decode_header,
    decode_message,
    decode_payload,
    decode_payloads,
    encode_header,
    encode_message,
    encode_payload,
    encode_payloads,
)

KEY_32 = bytes(range(0x20, 0x40))
ANY_IPV4 = IPv4Address(0)  # 0.0.0.0 as the start of a traffic selector range
NONCE_32 = bytes(range(0xA0, 0xC0))
HASH_20 = bytes(range(0x50, 0x64))

# --- SA payloads --------------------------------------------------------------------------------

# Two IKE proposals (RFC 7296 §3.3): CBC+HMAC with ECP-256, and AES-GCM-16 with Curve25519.
IKE_PROPOSAL_1_HEX = (
    "02 00 00 2c 01 01 00 04"  # Last Substruc 2 (more), length 44, #1, IKE, SPI Size 0, 4 transforms
    "03 00 00 0c 01 00 00 0c 80 0e 01 00"  # ENCR AES_CBC, Key Length (TV) 256
    "03 00 00 08 02 00 00 05"  # PRF HMAC_SHA2_256
    "03 00 00 08 03 00 00 0c"  # INTEG HMAC_SHA2_256_128
    "00 00 00 08 04 00 00 13"  # KE ECP_256 (last transform)
)
IKE_PROPOSAL_2_HEX = (
    "00 00 00 24 02 01 00 03"  # last proposal, length 36, #2, IKE, SPI Size 0, 3 transforms
    "03 00 00 0c 01 00 00 14 80 0e 01 00"  # ENCR AES_GCM_16, Key Length 256
    "03 00 00 08 02 00 00 05"  # PRF HMAC_SHA2_256
    "00 00 00 08 04 00 00 1f"  # KE CURVE25519
)
SA_TWO_PROPOSALS_BODY_HEX = IKE_PROPOSAL_1_HEX + IKE_PROPOSAL_2_HEX
SA_TWO_PROPOSALS = SaPayload(
    (
        Proposal(
            1,
            ProtocolId.IKE,
            (
                Transform(TransformType.ENCR, EncrId.AES_CBC, (TransformAttribute.key_length(256),)),
                Transform(TransformType.PRF, PrfId.HMAC_SHA2_256),
                Transform(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
                Transform(TransformType.KE, KeyExchangeId.ECP_256),
            ),
        ),
        Proposal(
            2,
            ProtocolId.IKE,
            (
                Transform(TransformType.ENCR, EncrId.AES_GCM_16, (TransformAttribute.key_length(256),)),
                Transform(TransformType.PRF, PrfId.HMAC_SHA2_256),
                Transform(TransformType.KE, KeyExchangeId.CURVE25519),
            ),
        ),
    )
)

ESP_SA_BODY_HEX = (
    "00 00 00 28 01 03 04 03 12 34 56 78"  # proposal #1, ESP, SPI Size 4, 3 transforms, SPI
    "03 00 00 0c 01 00 00 14 80 0e 00 80"  # ENCR AES_GCM_16, Key Length 128
    "03 00 00 08 05 00 00 00"  # ESN: no
    "00 00 00 08 05 00 00 01"  # ESN: yes
)
ESP_SA_HEX = "00 00 00 2c" + ESP_SA_BODY_HEX  # SA, length 44
ESP_SA = SaPayload(
    (
        Proposal(
            1,
            ProtocolId.ESP,
            (
                Transform(TransformType.ENCR, EncrId.AES_GCM_16, (TransformAttribute.key_length(128),)),
                Transform(TransformType.ESN, EsnId.NO_ESN),
                Transform(TransformType.ESN, EsnId.ESN),
            ),
            spi=bytes.fromhex("12345678"),
        ),
    )
)

UNKNOWN_TRANSFORM_SA_HEX = (
    "00 00 00 1b"  # SA, length 27
    "00 00 00 17 07 fe 00 01"  # proposal #7, protocol 254 (unknown), 1 transform
    "00 00 00 0f c8 00 03 e7 7f f0 00 03 aa bb cc"  # type 200, ID 999, TLV attribute 0x7ff0 of 3 octets
)
UNKNOWN_TRANSFORM_SA = SaPayload(
    (
        Proposal(
            7,
            ProtocolId(254),
            (
                Transform(
                    TransformType(200),
                    999,
                    (TransformAttribute(TransformAttributeType(0x7FF0), b"\xaa\xbb\xcc"),),
                ),
            ),
        ),
    )
)

# --- table of single payloads: (id, payload type, hex with Next Payload 0, value) -------------

PAYLOAD_TABLE: list[tuple[str, PayloadType, str, Payload]] = [
    ("sa-two-ike-proposals", PayloadType.SA, "00 00 00 54" + SA_TWO_PROPOSALS_BODY_HEX, SA_TWO_PROPOSALS),
    ("sa-esp-with-spi", PayloadType.SA, ESP_SA_HEX, ESP_SA),
    ("sa-unknown-transform-tlv-attribute", PayloadType.SA, UNKNOWN_TRANSFORM_SA_HEX, UNKNOWN_TRANSFORM_SA),
    (
        "ke-curve25519",
        PayloadType.KE,
        "00 00 00 28 00 1f 00 00" + KEY_32.hex(),
        KePayload(KeyExchangeId.CURVE25519, KEY_32),
    ),
    (
        "idi-fqdn",
        PayloadType.IDi,
        "00 00 00 17 02 00 00 00" + b"vpn.example.com".hex(),
        IdiPayload(IdType.ID_FQDN, b"vpn.example.com"),
    ),
    (
        "idr-ipv4",
        PayloadType.IDr,
        "00 00 00 0c 01 00 00 00 c6 33 64 01",
        IdrPayload(IdType.ID_IPV4_ADDR, bytes([198, 51, 100, 1])),
    ),
    (
        "cert-x509",
        PayloadType.CERT,
        "00 00 00 09 04 30 82 01 0a",
        CertPayload(CertEncoding.X509_CERT_SIGNATURE, bytes.fromhex("3082010a")),
    ),
    (
        "certreq-one-ca-hash",
        PayloadType.CERTREQ,
        "00 00 00 19 04" + HASH_20.hex(),
        CertReqPayload(CertEncoding.X509_CERT_SIGNATURE, HASH_20),
    ),
    (
        "auth-psk",
        PayloadType.AUTH,
        "00 00 00 28 02 00 00 00" + KEY_32.hex(),
        AuthPayload(AuthMethod.SHARED_KEY_MIC, KEY_32),
    ),
    ("nonce-32", PayloadType.NONCE, "00 00 00 24" + NONCE_32.hex(), NoncePayload(NONCE_32)),
    (
        "nonce-critical-bit-kept",
        PayloadType.NONCE,
        "00 80 00 08 01 02 03 04",
        NoncePayload(b"\x01\x02\x03\x04", critical=True),
    ),
    (
        "notify-nat-d-source",
        PayloadType.NOTIFY,
        "00 00 00 1c 00 00 40 04" + HASH_20.hex(),
        NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, HASH_20),
    ),
    (
        "notify-rekey-sa-with-esp-spi",
        PayloadType.NOTIFY,
        "00 00 00 0c 03 04 40 09 aa bb cc dd",
        NotifyPayload(NotifyType.REKEY_SA, protocol_id=ProtocolId.ESP, spi=bytes.fromhex("aabbccdd")),
    ),
    (
        "notify-invalid-ke-payload",
        PayloadType.NOTIFY,
        "00 00 00 0a 00 00 00 11 00 13",
        NotifyPayload(NotifyType.INVALID_KE_PAYLOAD, b"\x00\x13"),
    ),
    ("notify-unknown-type", PayloadType.NOTIFY, "00 00 00 08 00 00 9c 40", NotifyPayload(NotifyType(40000))),
    (
        "delete-three-esp-spis",
        PayloadType.DELETE,
        "00 00 00 14 03 04 00 03 11 11 11 11 22 22 22 22 33 33 33 33",
        DeletePayload(ProtocolId.ESP, 4, (b"\x11" * 4, b"\x22" * 4, b"\x33" * 4)),
    ),
    ("delete-ike-sa", PayloadType.DELETE, "00 00 00 08 01 00 00 00", DeletePayload(ProtocolId.IKE, 0)),
    (
        "vendor-id",
        PayloadType.VENDOR,
        "00 00 00 14 88 2f e5 6d 6f d2 0d bc 22 51 61 3b 2e be 5b eb",
        VendorIdPayload(bytes.fromhex("882fe56d6fd20dbc2251613b2ebe5beb")),
    ),
    (
        "tsi-ipv4-single-host-tcp",
        PayloadType.TSi,
        "00 00 00 18 01 00 00 00 07 06 00 10 00 00 ff ff c6 33 64 42 c6 33 64 42",
        TsiPayload(
            (
                TrafficSelector(
                    IpProtocol.TCP, 0, 65535, IPv4Address("198.51.100.66"), IPv4Address("198.51.100.66")
                ),
            )
        ),
    ),
    (
        "tsr-ipv6-any-and-ipv4-udp-500",
        PayloadType.TSr,
        "00 00 00 40 02 00 00 00"
        "08 00 00 28 00 00 ff ff" + "00" * 16 + "ff" * 16 + "07 11 00 10 01 f4 01 f4 c0 00 02 00 c0 00 02 ff",
        TsrPayload(
            (
                TrafficSelector(
                    IpProtocol.ANY, 0, 65535, IPv6Address("::"), IPv6Address("ffff:" * 7 + "ffff")
                ),
                TrafficSelector(
                    IpProtocol.UDP, 500, 500, IPv4Address("192.0.2.0"), IPv4Address("192.0.2.255")
                ),
            )
        ),
    ),
    (
        "tsr-opaque-seclabel-selector",
        PayloadType.TSr,
        "00 00 00 21 02 00 00 00 0a 00 00 09 aa bb cc dd ee 07 00 00 10 00 00 ff ff 00 00 00 00 ff ff ff ff",
        TsrPayload(
            (
                OpaqueTrafficSelector(TsType.TS_SECLABEL, bytes.fromhex("aabbccddee")),
                TrafficSelector(IpProtocol.ANY, 0, 65535, ANY_IPV4, IPv4Address("255.255.255.255")),
            )
        ),
    ),
    (
        "sk-first-inner-idi",
        PayloadType.SK,
        "23 00 00 18" + bytes(range(20)).hex(),
        EncryptedPayload(PayloadType.IDi, bytes(range(20))),
    ),
    (
        "cp-request-empty-attributes",
        PayloadType.CP,
        "00 00 00 14 01 00 00 00 00 01 00 00 00 03 00 00 00 08 00 00",
        ConfigPayload(
            ConfigType.CFG_REQUEST,
            (
                ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_ADDRESS),
                ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_DNS),
                ConfigAttribute(ConfigAttributeType.INTERNAL_IP6_ADDRESS),
            ),
        ),
    ),
    (
        "cp-reply",  # RFC 7296 §3.15.2 and §3.15.3 examples
        PayloadType.CP,
        "00 00 00 31 02 00 00 00"
        "00 01 00 04 c6 33 64 ea"
        "00 0d 00 08 c6 33 64 00 ff ff ff c0"
        "00 08 00 11 20 01 0d b8 00 00 00 01 00 02 00 03 00 04 00 05 40",
        ConfigPayload(
            ConfigType.CFG_REPLY,
            (
                ConfigAttribute(
                    ConfigAttributeType.INTERNAL_IP4_ADDRESS, IPv4Address("198.51.100.234").packed
                ),
                ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_SUBNET, bytes.fromhex("c6336400ffffffc0")),
                ConfigAttribute(
                    ConfigAttributeType.INTERNAL_IP6_ADDRESS,
                    IPv6Address("2001:db8:0:1:2:3:4:5").packed + b"\x40",
                ),
            ),
        ),
    ),
    (
        "eap-request-identity",
        PayloadType.EAP,
        "00 00 00 09 01 05 00 05 01",
        EapPayload(EapCode.REQUEST, 5, 1),
    ),
    (
        "eap-response-identity",
        PayloadType.EAP,
        "00 00 00 0e 02 05 00 0a 01 61 6c 69 63 65",
        EapPayload(EapCode.RESPONSE, 5, 1, b"alice"),
    ),
    ("eap-success", PayloadType.EAP, "00 00 00 08 03 06 00 04", EapPayload(EapCode.SUCCESS, 6)),
    (
        "eap-unknown-code",
        PayloadType.EAP,
        "00 00 00 0a 07 01 00 06 aa bb",
        EapPayload(EapCode(7), 1, None, b"\xaa\xbb"),
    ),
    (
        "skf-fragment-1-of-3",
        PayloadType.SKF,
        "23 00 00 10 00 01 00 03 01 02 03 04 05 06 07 08",
        EncryptedFragmentPayload(PayloadType.IDi, 1, 3, bytes(range(1, 9))),
    ),
    (
        "skf-fragment-3-of-3",
        PayloadType.SKF,
        "00 00 00 0c 00 03 00 03 f0 f1 f2 f3",
        EncryptedFragmentPayload(PayloadType.NONE, 3, 3, bytes.fromhex("f0f1f2f3")),
    ),
    (
        "opaque-unknown-non-critical",
        PayloadType(200),
        "00 7f 00 07 01 02 03",  # reserved bits set: ignored, and not the critical bit
        OpaquePayload(PayloadType(200), b"\x01\x02\x03"),
    ),
    ("opaque-gspm-not-parsed", PayloadType.GSPM, "00 00 00 05 ff", OpaquePayload(PayloadType.GSPM, b"\xff")),
]
PAYLOAD_IDS = [row[0] for row in PAYLOAD_TABLE]
RESERVED_SET = {"opaque-unknown-non-critical"}  # rows whose hex has reserved bits set


@pytest.mark.parametrize(("name", "payload_type", "wire", "value"), PAYLOAD_TABLE, ids=PAYLOAD_IDS)
def test_payload_decodes_to_value(name: str, payload_type: PayloadType, wire: str, value: Payload) -> None:
    data = bytes.fromhex(wire)
    decoded, next_payload = decode_payload(payload_type, data)
    assert decoded == value
    assert type(decoded) is type(value)
    first_octet = PayloadType(data[0])
    assert next_payload == first_octet


@pytest.mark.parametrize(("name", "payload_type", "wire", "value"), PAYLOAD_TABLE, ids=PAYLOAD_IDS)
def test_payload_encodes_to_hex(name: str, payload_type: PayloadType, wire: str, value: Payload) -> None:
    expected = bytearray(bytes.fromhex(wire))
    if name in RESERVED_SET:
        expected[1] = 0  # reserved bits are zero on send
    assert value.payload_type == payload_type
    assert encode_payload(value) == bytes(expected)


def test_table_covers_every_payload_class() -> None:
    classes = {type(row[3]) for row in PAYLOAD_TABLE}
    assert classes == {
        SaPayload,
        KePayload,
        IdiPayload,
        IdrPayload,
        CertPayload,
        CertReqPayload,
        AuthPayload,
        NoncePayload,
        NotifyPayload,
        DeletePayload,
        VendorIdPayload,
        TsiPayload,
        TsrPayload,
        EncryptedPayload,
        ConfigPayload,
        EapPayload,
        EncryptedFragmentPayload,
        OpaquePayload,
    }


def test_decoded_values_use_registry_enums() -> None:
    decoded, _ = decode_payload(PayloadType.SA, bytes.fromhex("00 00 00 54" + SA_TWO_PROPOSALS_BODY_HEX))
    assert isinstance(decoded, SaPayload)
    transforms = decoded.proposals[0].transforms
    assert [type(t.transform_id) for t in transforms] == [EncrId, PrfId, IntegId, KeyExchangeId]
    assert transforms[0].key_length == 256
    assert transforms[1].key_length is None
    assert transforms[0].attributes[0].is_tv
    unknown, _ = decode_payload(PayloadType.SA, bytes.fromhex(UNKNOWN_TRANSFORM_SA_HEX))
    assert isinstance(unknown, SaPayload)
    transform = unknown.proposals[0].transforms[0]
    assert transform.transform_type.name == "UNKNOWN_200"
    assert type(transform.transform_id) is int
    assert not transform.attributes[0].is_tv


def test_distinct_classes_for_initiator_and_responder_payloads() -> None:
    selector = TrafficSelector(0, 0, 65535, ANY_IPV4, IPv4Address("255.255.255.255"))
    pairs: list[tuple[object, object]] = [
        (IdiPayload(IdType.ID_FQDN, b"a"), IdrPayload(IdType.ID_FQDN, b"a")),
        (TsiPayload((selector,)), TsrPayload((selector,))),
        (
            CertPayload(CertEncoding.X509_CERT_SIGNATURE, b""),
            CertReqPayload(CertEncoding.X509_CERT_SIGNATURE, b""),
        ),
    ]
    for first, second in pairs:
        assert first != second
        assert encode_payload(first)[4:] == encode_payload(second)[4:]  # type: ignore[arg-type]


# --- whole messages -----------------------------------------------------------------------------

SPI_I = bytes.fromhex("0123456789abcdef")
SPI_R = bytes.fromhex("fedcba9876543210")

IKE_SA_INIT_HEX = (
    "01 23 45 67 89 ab cd ef 00 00 00 00 00 00 00 00"  # SPIi, SPIr = 0
    "21 20 22 08 00 00 00 00 00 00 00 f4"  # next SA, v2.0, IKE_SA_INIT, I flag, MID 0, length 244
    "22 00 00 54"
    + SA_TWO_PROPOSALS_BODY_HEX  # SA (offset 28), next KE
    + "28 00 00 28 00 1f 00 00"
    + KEY_32.hex()  # KE (offset 112), next Nonce
    + "29 00 00 24"
    + NONCE_32.hex()  # Nonce (offset 152), next Notify
    + "29 00 00 1c 00 00 40 04"
    + HASH_20.hex()  # N(NAT_DETECTION_SOURCE_IP) (offset 188)
    + "00 00 00 1c 00 00 40 05"
    + HASH_20[::-1].hex()  # N(NAT_DETECTION_DESTINATION_IP) (offset 216)
)
IKE_SA_INIT = Message(
    Header(
        spi_i=SPI_I,
        spi_r=bytes(8),
        exchange_type=ExchangeType.IKE_SA_INIT,
        is_initiator=True,
        is_response=False,
        message_id=0,
    ),
    (
        SA_TWO_PROPOSALS,
        KePayload(KeyExchangeId.CURVE25519, KEY_32),
        NoncePayload(NONCE_32),
        NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, HASH_20),
        NotifyPayload(NotifyType.NAT_DETECTION_DESTINATION_IP, HASH_20[::-1]),
    ),
)

SK_BODY = bytes(range(16)) + bytes(range(100, 132)) + bytes(range(200, 216))  # IV || ciphertext || ICV
IKE_AUTH_HEX = (
    "01 23 45 67 89 ab cd ef fe dc ba 98 76 54 32 10"
    "2e 20 23 08 00 00 00 01 00 00 00 60"  # next SK, IKE_AUTH, I flag, MID 1, length 96
    "23 00 00 44" + SK_BODY.hex()  # SK: first inner payload IDi, length 68
)
IKE_AUTH = Message(
    Header(
        spi_i=SPI_I,
        spi_r=SPI_R,
        exchange_type=ExchangeType.IKE_AUTH,
        is_initiator=True,
        is_response=False,
        message_id=1,
    ),
    (EncryptedPayload(PayloadType.IDi, SK_BODY),),
)

# The decrypted inner chain of that IKE_AUTH request (offset 36 = where the plaintext would start).
IKE_AUTH_INNER_HEX = (
    "27 00 00 17 02 00 00 00"
    + b"vpn.example.com".hex()  # IDi (offset 36), next AUTH
    + "21 00 00 28 02 00 00 00"
    + KEY_32.hex()  # AUTH (offset 59), next SA
    + "2c 00 00 2c"
    + ESP_SA_BODY_HEX  # SA (offset 99), next TSi
    + "2d 00 00 18 01 00 00 00 07 00 00 10 00 00 ff ff 0a 00 00 00 0a 00 00 ff"  # TSi (offset 143)
    + "00 00 00 18 01 00 00 00 07 00 00 10 00 00 ff ff c0 00 02 00 c0 00 02 ff"  # TSr (offset 167)
)
IKE_AUTH_INNER = (
    IdiPayload(IdType.ID_FQDN, b"vpn.example.com"),
    AuthPayload(AuthMethod.SHARED_KEY_MIC, KEY_32),
    ESP_SA,
    TsiPayload((TrafficSelector(0, 0, 65535, IPv4Address("10.0.0.0"), IPv4Address("10.0.0.255")),)),
    TsrPayload((TrafficSelector(0, 0, 65535, IPv4Address("192.0.2.0"), IPv4Address("192.0.2.255")),)),
)

INFORMATIONAL_RESPONSE_HEX = (
    "01 23 45 67 89 ab cd ef fe dc ba 98 76 54 32 10"
    "00 20 25 30 00 00 00 07 00 00 00 1c"  # no payloads, INFORMATIONAL, R and V flags, MID 7, length 28
)
INFORMATIONAL_RESPONSE = Message(
    Header(
        spi_i=SPI_I,
        spi_r=SPI_R,
        exchange_type=ExchangeType.INFORMATIONAL,
        is_initiator=False,
        is_response=True,
        version_flag=True,
        message_id=7,
    ),
    (),
)

MESSAGE_TABLE = [
    ("ike-sa-init-request", IKE_SA_INIT_HEX, IKE_SA_INIT),
    ("ike-auth-request-sk", IKE_AUTH_HEX, IKE_AUTH),
    ("informational-empty-response", INFORMATIONAL_RESPONSE_HEX, INFORMATIONAL_RESPONSE),
]


@pytest.mark.parametrize(("name", "wire", "message"), MESSAGE_TABLE, ids=[row[0] for row in MESSAGE_TABLE])
def test_message_decodes_to_value(name: str, wire: str, message: Message) -> None:
    assert decode_message(bytes.fromhex(wire)) == message


@pytest.mark.parametrize(("name", "wire", "message"), MESSAGE_TABLE, ids=[row[0] for row in MESSAGE_TABLE])
def test_message_encodes_to_hex(name: str, wire: str, message: Message) -> None:
    assert encode_message(message) == bytes.fromhex(wire)


def test_inner_chain_both_ways() -> None:
    data = bytes.fromhex(IKE_AUTH_INNER_HEX)
    assert decode_payloads(PayloadType.IDi, data, offset=36) == IKE_AUTH_INNER
    assert encode_payloads(IKE_AUTH_INNER) == (PayloadType.IDi, data)
    assert encode_payloads(()) == (PayloadType.NONE, b"")
    assert decode_payloads(PayloadType.NONE, b"") == ()


def test_decode_header_returns_first_type_and_declared_length() -> None:
    data = bytes.fromhex(IKE_SA_INIT_HEX)
    header, first, length = decode_header(data[:28])  # the header alone is enough
    assert (header, first, length) == (IKE_SA_INIT.header, PayloadType.SA, 244)
    assert decode_header(data) == (header, first, length)
    assert encode_header(header, first, length) == data[:28]


def test_header_flags_each_map_to_one_bit() -> None:
    base = INFORMATIONAL_RESPONSE.header
    plain = attrs.evolve(base, is_response=False, version_flag=False)
    assert encode_header(plain, PayloadType.NONE, 28)[19] == 0x00
    assert encode_header(attrs.evolve(plain, is_initiator=True), PayloadType.NONE, 28)[19] == 0x08
    assert encode_header(attrs.evolve(plain, version_flag=True), PayloadType.NONE, 28)[19] == 0x10
    assert encode_header(attrs.evolve(plain, is_response=True), PayloadType.NONE, 28)[19] == 0x20
    assert encode_header(attrs.evolve(plain, minor_version=3), PayloadType.NONE, 28)[17] == 0x23


def test_unknown_registry_values_survive_a_round_trip() -> None:
    wire = bytearray(bytes.fromhex(INFORMATIONAL_RESPONSE_HEX))
    wire[18] = 0xF0  # exchange type 240: not in the registry
    message = decode_message(bytes(wire))
    assert message.header.exchange_type.name == "UNKNOWN_240"
    assert encode_message(message) == bytes(wire)


# --- reserved fields: ignored on receipt, zero on send ------------------------------------------

# Positions of reserved bits/octets in IKE_SA_INIT_HEX, with the bits to set there.
IKE_SA_INIT_RESERVED = {
    19: 0xC7,  # header flags X bits
    29: 0x7F,  # SA generic header RESERVED
    33: 0xFF,  # proposal 1 RESERVED
    41: 0xFF,  # transform 1 RESERVED (after Last Substruc)
    45: 0xFF,  # transform 1 RESERVED (after Transform Type)
    113: 0x7F,  # KE generic header RESERVED
    118: 0xFF,  # KE RESERVED
    119: 0xFF,
    153: 0x7F,  # Nonce generic header RESERVED
    189: 0x7F,  # Notify generic header RESERVED
}


def test_reserved_fields_are_ignored_on_receipt_and_zero_on_send() -> None:
    original = bytes.fromhex(IKE_SA_INIT_HEX)
    noisy = bytearray(original)
    for position, bits in IKE_SA_INIT_RESERVED.items():
        assert noisy[position] & bits == 0  # the table points at zero octets/bits
        noisy[position] |= bits
    decoded = decode_message(bytes(noisy))
    assert decoded == IKE_SA_INIT
    assert encode_message(decoded) == original


def test_reserved_octets_of_id_auth_ts_cp_and_attribute_r_bit_are_ignored() -> None:
    original = bytes.fromhex(IKE_AUTH_INNER_HEX)
    inner = bytearray(original)
    # IDi at 0 (RESERVED 5..7), AUTH at 23 (RESERVED 28..30), TSi at 107 (RESERVED 112..114),
    # and the generic headers' RESERVED bits of IDi and TSr.
    for position in (5, 6, 7, 28, 29, 30, 112, 113, 114):
        assert inner[position] == 0
        inner[position] = 0xEE
    inner[1] |= 0x7F
    inner[132] |= 0x7F
    assert decode_payloads(PayloadType.IDi, bytes(inner)) == IKE_AUTH_INNER
    assert encode_payloads(IKE_AUTH_INNER)[1] == original
    cp = bytearray(bytes.fromhex("00 00 00 10 01 ff ff ff 80 01 00 00 80 03 00 00"))
    decoded, _ = decode_payload(PayloadType.CP, bytes(cp))
    assert decoded == ConfigPayload(
        ConfigType.CFG_REQUEST,
        (
            ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_ADDRESS),
            ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_DNS),
        ),
    )
    assert encode_payload(decoded) == bytes.fromhex("00 00 00 10 01 00 00 00 00 01 00 00 00 03 00 00")


# --- changing one field changes only that field and the lengths around it ------------------------


def _differences(old: bytes, new: bytes) -> set[int]:
    assert len(old) == len(new)
    return {index for index, (a, b) in enumerate(zip(old, new, strict=True)) if a != b}


def _replace_payload(message: Message, index: int, payload: Payload) -> Message:
    payloads = list(message.payloads)
    payloads[index] = payload
    return attrs.evolve(message, payloads=tuple(payloads))


def test_changing_a_transform_id_changes_only_its_octets() -> None:
    original = bytes.fromhex(IKE_SA_INIT_HEX)
    message = decode_message(original)
    sa = message.payloads[0]
    assert isinstance(sa, SaPayload)
    proposal = sa.proposals[0]
    transforms = (attrs.evolve(proposal.transforms[0], transform_id=EncrId.AES_CTR), *proposal.transforms[1:])
    new_sa = attrs.evolve(sa, proposals=(attrs.evolve(proposal, transforms=transforms), sa.proposals[1]))
    changed = encode_message(_replace_payload(message, 0, new_sa))
    # SA at 28, proposal 1 at 32, transform 1 at 40, its Transform ID at 46..47: 0x000c -> 0x000d
    assert _differences(original, changed) == {47}
    assert changed[46:48] == b"\x00\x0d"


def test_changing_a_key_length_changes_only_its_value() -> None:
    original = bytes.fromhex(IKE_SA_INIT_HEX)
    message = decode_message(original)
    sa = message.payloads[0]
    assert isinstance(sa, SaPayload)
    proposal = sa.proposals[1]
    encr = attrs.evolve(proposal.transforms[0], attributes=(TransformAttribute.key_length(128),))
    new_sa = attrs.evolve(
        sa, proposals=(sa.proposals[0], attrs.evolve(proposal, transforms=(encr, *proposal.transforms[1:])))
    )
    changed = encode_message(_replace_payload(message, 0, new_sa))
    # proposal 2 at 76, its transform 1 at 84, attribute at 92, value at 94..95: 0x0100 -> 0x0080
    assert _differences(original, changed) == {94, 95}


def test_changing_a_notify_type_changes_only_its_octets() -> None:
    original = bytes.fromhex(IKE_SA_INIT_HEX)
    message = decode_message(original)
    notify = message.payloads[3]
    assert isinstance(notify, NotifyPayload)
    changed = encode_message(
        _replace_payload(message, 3, attrs.evolve(notify, notify_type=NotifyType.COOKIE))
    )
    # N at 188, Notify Message Type at 194..195: 0x4004 -> 0x4006
    assert _differences(original, changed) == {195}


def test_changing_a_nonce_octet_changes_only_that_octet() -> None:
    original = bytes.fromhex(IKE_SA_INIT_HEX)
    message = decode_message(original)
    nonce = NoncePayload(NONCE_32[:5] + b"\x00" + NONCE_32[6:])
    assert _differences(original, encode_message(_replace_payload(message, 2, nonce))) == {152 + 4 + 5}


def test_changing_the_nonce_length_changes_only_it_and_the_lengths_containing_it() -> None:
    original = bytes.fromhex(IKE_SA_INIT_HEX)
    message = decode_message(original)
    longer = NONCE_32 + bytes(range(16))
    changed = encode_message(_replace_payload(message, 2, NoncePayload(longer)))
    nonce_at, nonce_end = 152, 152 + 36
    expected = (
        original[:24]
        + (244 + 16).to_bytes(4, "big")  # IKE header Length
        + original[28 : nonce_at + 2]
        + (36 + 16).to_bytes(2, "big")  # Nonce Payload Length
        + longer
        + original[nonce_end:]
    )
    assert changed == expected


def test_changing_a_ts_port_changes_only_its_octets() -> None:
    original = bytes.fromhex(IKE_AUTH_INNER_HEX)
    payloads = decode_payloads(PayloadType.IDi, original)
    tsi = payloads[3]
    assert isinstance(tsi, TsiPayload)
    selector = tsi.selectors[0]
    assert isinstance(selector, TrafficSelector)
    new_tsi = TsiPayload((attrs.evolve(selector, start_port=500, end_port=500),))
    first, changed = encode_payloads((*payloads[:3], new_tsi, payloads[4]))
    assert first == PayloadType.IDi
    # TSi at 107 (inner offsets), selector at 115, Start Port at 119..120, End Port at 121..122
    assert _differences(original, changed) == {119, 120, 121, 122}
    assert changed[119:123] == bytes.fromhex("01f4 01f4")


def test_changing_the_sk_first_inner_type_changes_only_the_next_payload_octet() -> None:
    original = bytes.fromhex(IKE_AUTH_HEX)
    message = decode_message(original)
    sk = message.payloads[0]
    assert isinstance(sk, EncryptedPayload)
    changed = encode_message(
        _replace_payload(message, 0, attrs.evolve(sk, first_inner_payload=PayloadType.NOTIFY))
    )
    assert _differences(original, changed) == {28}
    assert changed[28] == 0x29


# --- values built by our own code: validators refuse what cannot be encoded faithfully -----------

V4 = IPv4Address("192.0.2.1")
V6 = IPv6Address("2001:db8::1")
ENCR = Transform(TransformType.ENCR, EncrId.AES_GCM_16, (TransformAttribute.key_length(128),))
SELECTOR = TrafficSelector(0, 0, 65535, V4, V4)
HEADER = IKE_AUTH.header


def _header(**changes: object) -> Header:
    return attrs.evolve(HEADER, **changes)  # type: ignore[arg-type]


INVALID_VALUES: list[tuple[str, Callable[[], object], type[Exception]]] = [
    ("header-short-spi", lambda: _header(spi_i=b"short"), ValueError),
    ("header-message-id-33-bits", lambda: _header(message_id=2**32), ValueError),
    ("header-exchange-type-256", lambda: _header(exchange_type=256), ValueError),
    ("header-major-version-16", lambda: _header(major_version=16), ValueError),
    ("header-flag-not-bool", lambda: _header(is_initiator=1), TypeError),
    (
        "attribute-key-length-tlv",
        lambda: TransformAttribute(TransformAttributeType.KEY_LENGTH, b"\x01\x00"),
        ValueError,
    ),
    ("attribute-type-16-bits", lambda: TransformAttribute(0x8000, 1), ValueError),
    ("attribute-tv-value-17-bits", lambda: TransformAttribute(1, 0x10000), ValueError),
    ("attribute-tlv-too-long", lambda: TransformAttribute(1, bytes(0x10000)), ValueError),
    ("attribute-bool-value", lambda: TransformAttribute(1, True), TypeError),
    ("transform-id-17-bits", lambda: Transform(TransformType.ENCR, 0x10000), ValueError),
    ("transform-attributes-list", lambda: Transform(TransformType.ENCR, 12, [ENCR.attributes[0]]), TypeError),  # type: ignore[arg-type]
    ("proposal-no-transforms", lambda: Proposal(1, ProtocolId.IKE, ()), ValueError),
    ("proposal-256-transforms", lambda: Proposal(1, ProtocolId.IKE, (ENCR,) * 256), ValueError),
    ("proposal-spi-256-octets", lambda: Proposal(1, ProtocolId.ESP, (ENCR,), bytes(256)), ValueError),
    ("sa-no-proposals", lambda: SaPayload(()), ValueError),
    ("delete-ike-with-spi-size", lambda: DeletePayload(ProtocolId.IKE, 4), ValueError),
    ("delete-ike-with-spis", lambda: DeletePayload(ProtocolId.IKE, 0, (b"",)), ValueError),
    ("delete-esp-spi-size-8", lambda: DeletePayload(ProtocolId.ESP, 8), ValueError),
    ("delete-spi-of-wrong-size", lambda: DeletePayload(ProtocolId.ESP, 4, (b"123",)), ValueError),
    ("delete-spis-list", lambda: DeletePayload(ProtocolId.ESP, 4, [b"1234"]), TypeError),  # type: ignore[arg-type]
    ("delete-65536-spis", lambda: DeletePayload(200, 0, (b"",) * 0x10000), ValueError),
    ("ts-mixed-versions", lambda: TrafficSelector(0, 0, 65535, V4, V6), ValueError),
    ("ts-address-string", lambda: TrafficSelector(0, 0, 65535, V4, "192.0.2.9"), TypeError),  # type: ignore[arg-type]
    ("ts-port-17-bits", lambda: TrafficSelector(0, 0, 0x10000, V4, V4), ValueError),
    (
        "opaque-selector-of-parsed-type",
        lambda: OpaqueTrafficSelector(TsType.TS_IPV4_ADDR_RANGE, b""),
        ValueError,
    ),
    ("ts-payload-empty", lambda: TsiPayload(()), ValueError),
    ("ts-payload-256-selectors", lambda: TsrPayload((SELECTOR,) * 256), ValueError),
    ("ts-payload-wrong-item", lambda: TsiPayload((V4,)), TypeError),  # type: ignore[arg-type]
    ("skf-fragment-0", lambda: EncryptedFragmentPayload(0, 0, 1, b""), ValueError),
    ("skf-number-above-total", lambda: EncryptedFragmentPayload(0, 3, 2, b""), ValueError),
    ("skf-total-17-bits", lambda: EncryptedFragmentPayload(0, 1, 0x10000, b""), ValueError),
    ("skf-later-fragment-inner", lambda: EncryptedFragmentPayload(PayloadType.IDi, 2, 3, b""), ValueError),
    ("eap-request-without-type", lambda: EapPayload(EapCode.REQUEST, 1), ValueError),
    ("eap-success-with-type", lambda: EapPayload(EapCode.SUCCESS, 1, 1), ValueError),
    ("eap-success-with-data", lambda: EapPayload(EapCode.SUCCESS, 1, None, b"x"), ValueError),
    ("eap-data-str", lambda: EapPayload(EapCode.REQUEST, 1, 1, "x"), TypeError),  # type: ignore[arg-type]
    ("opaque-of-parsed-type", lambda: OpaquePayload(PayloadType.NONCE, b""), ValueError),
    ("opaque-type-0", lambda: OpaquePayload(PayloadType.NONE, b""), ValueError),
    ("opaque-type-256", lambda: OpaquePayload(256, b""), ValueError),
    ("notify-type-17-bits", lambda: NotifyPayload(0x10000), ValueError),
    ("notify-spi-256-octets", lambda: NotifyPayload(NotifyType.REKEY_SA, spi=bytes(256)), ValueError),
    ("notify-data-str", lambda: NotifyPayload(NotifyType.COOKIE, "x"), TypeError),  # type: ignore[arg-type]
    ("ke-bytearray", lambda: KePayload(KeyExchangeId.ECP_256, bytearray()), TypeError),  # type: ignore[arg-type]
    ("critical-not-bool", lambda: NoncePayload(b"", critical=1), TypeError),  # type: ignore[arg-type]
    ("cp-attribute-type-16-bits", lambda: ConfigAttribute(0x8000), ValueError),
    ("message-payloads-list", lambda: Message(HEADER, [NoncePayload(b"")]), TypeError),  # type: ignore[arg-type]
    ("message-non-payload", lambda: Message(HEADER, ("x",)), TypeError),  # type: ignore[arg-type]
    ("message-sk-not-last", lambda: Message(HEADER, (*IKE_AUTH.payloads, NoncePayload(b""))), ValueError),
]


@pytest.mark.parametrize(("name", "build", "error"), INVALID_VALUES, ids=[row[0] for row in INVALID_VALUES])
def test_invalid_values_are_refused_at_construction(
    name: str, build: Callable[[], object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        build()


def test_encoding_refuses_an_encrypted_payload_in_an_inner_chain() -> None:
    with pytest.raises(LocalError):
        encode_payloads(IKE_AUTH.payloads)


def test_encoding_refuses_an_encrypted_payload_before_others_even_without_validators() -> None:
    with attrs.validators.disabled():
        message = Message(HEADER, (*IKE_AUTH.payloads, NoncePayload(b"")))
    with pytest.raises(LocalError):
        encode_message(message)


def test_encoding_refuses_a_payload_longer_than_its_length_field() -> None:
    assert len(encode_payload(NoncePayload(bytes(0xFFFF - 4)))) == 0xFFFF
    with pytest.raises(LocalError):
        encode_payload(NoncePayload(bytes(0xFFFF - 3)))
