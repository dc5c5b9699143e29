"""Hypothesis properties of the codec.

1. Any octets given to any decoder decode or raise the codec's ``DecodeError``,
   never anything else (no IndexError, ValueError from a validator, ...).
2. For generated valid values, decode(encode(x)) == x, for every payload type,
   for inner chains and for whole messages.
3. For decoded messages (reserved fields zero, as our encoder writes them),
   encode(decode(b)) == b; and re-encoding a decoded mutant is a fixed point.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responder.core.buffer import Reader
from responder.core.enums import PayloadType, ProtocolId, TransformAttributeType, TsType
from responder.core.errors import DecodeError
from responder.core.messages import (
    HEADER_SIZE,
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
    PayloadHeader,
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
from responder.core.payloads import KNOWN_PAYLOAD_CLASSES

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
small_bytes = st.binary(max_size=40)
critical = st.booleans()

# --- strategies: one per payload ----------------------------------------------------------------

transform_attributes = st.one_of(
    st.builds(TransformAttribute.key_length, u16),
    st.builds(TransformAttribute, st.integers(0, 0x7FFF), u16),
    st.builds(
        TransformAttribute,
        st.integers(0, 0x7FFF).filter(lambda t: t != TransformAttributeType.KEY_LENGTH),
        small_bytes,
    ),
)
transforms = st.builds(Transform, u8, u16, st.lists(transform_attributes, max_size=3).map(tuple))
proposals = st.builds(
    Proposal, u8, u8, st.lists(transforms, min_size=1, max_size=5).map(tuple), st.binary(max_size=8)
)
sa_payloads = st.builds(SaPayload, st.lists(proposals, min_size=1, max_size=3).map(tuple), critical=critical)
ke_payloads = st.builds(KePayload, u16, small_bytes, critical=critical)
idi_payloads = st.builds(IdiPayload, u8, small_bytes, critical=critical)
idr_payloads = st.builds(IdrPayload, u8, small_bytes, critical=critical)
cert_payloads = st.builds(CertPayload, u8, small_bytes, critical=critical)
certreq_payloads = st.builds(CertReqPayload, u8, small_bytes, critical=critical)
auth_payloads = st.builds(AuthPayload, u8, small_bytes, critical=critical)
nonce_payloads = st.builds(NoncePayload, small_bytes, critical=critical)
notify_payloads = st.builds(NotifyPayload, u16, small_bytes, u8, st.binary(max_size=16), critical=critical)
vendor_payloads = st.builds(VendorIdPayload, small_bytes, critical=critical)


@st.composite
def delete_payloads(draw: st.DrawFn) -> DeletePayload:
    protocol = draw(st.sampled_from([0, 1, 2, 3, 4, 200]))
    if protocol == ProtocolId.IKE:
        spi_size = 0
    elif protocol in (ProtocolId.AH, ProtocolId.ESP):
        spi_size = 4
    else:
        spi_size = draw(st.integers(0, 8))
    spis = draw(st.lists(st.binary(min_size=spi_size, max_size=spi_size), max_size=0 if protocol == 1 else 5))
    return DeletePayload(protocol, spi_size, tuple(spis), critical=draw(critical))


ipv4 = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
ipv6 = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
selectors = st.one_of(
    st.builds(TrafficSelector, u8, u16, u16, ipv4, ipv4),
    st.builds(TrafficSelector, u8, u16, u16, ipv6, ipv6),
    st.builds(
        OpaqueTrafficSelector,
        u8.filter(lambda t: t not in (TsType.TS_IPV4_ADDR_RANGE, TsType.TS_IPV6_ADDR_RANGE)),
        small_bytes,
        u8,
    ),
)
selector_tuples = st.lists(selectors, min_size=1, max_size=4).map(tuple)
tsi_payloads = st.builds(TsiPayload, selector_tuples, critical=critical)
tsr_payloads = st.builds(TsrPayload, selector_tuples, critical=critical)
cp_payloads = st.builds(
    ConfigPayload,
    u8,
    st.lists(st.builds(ConfigAttribute, st.integers(0, 0x7FFF), small_bytes), max_size=4).map(tuple),
    critical=critical,
)


@st.composite
def eap_payloads(draw: st.DrawFn) -> EapPayload:
    code = draw(u8)
    identifier = draw(u8)
    if code in (EapCode.REQUEST, EapCode.RESPONSE):
        return EapPayload(code, identifier, draw(u8), draw(small_bytes), critical=draw(critical))
    if code in (EapCode.SUCCESS, EapCode.FAILURE):
        return EapPayload(code, identifier, critical=draw(critical))
    return EapPayload(code, identifier, None, draw(small_bytes), critical=draw(critical))


sk_payloads = st.builds(EncryptedPayload, u8, small_bytes, critical=critical)


@st.composite
def skf_payloads(draw: st.DrawFn) -> EncryptedFragmentPayload:
    total = draw(st.integers(1, 0xFFFF))
    number = draw(st.integers(1, total))
    first = draw(u8) if number == 1 else 0
    return EncryptedFragmentPayload(first, number, total, draw(small_bytes), critical=draw(critical))


opaque_payloads = st.builds(
    OpaquePayload, st.integers(1, 255).filter(lambda t: t not in KNOWN_PAYLOAD_CLASSES), small_bytes
)

PAYLOAD_STRATEGIES: dict[str, st.SearchStrategy[Payload]] = {
    "SA": sa_payloads,
    "KE": ke_payloads,
    "IDi": idi_payloads,
    "IDr": idr_payloads,
    "CERT": cert_payloads,
    "CERTREQ": certreq_payloads,
    "AUTH": auth_payloads,
    "NONCE": nonce_payloads,
    "NOTIFY": notify_payloads,
    "DELETE": delete_payloads(),
    "VENDOR": vendor_payloads,
    "TSi": tsi_payloads,
    "TSr": tsr_payloads,
    "SK": sk_payloads,
    "CP": cp_payloads,
    "EAP": eap_payloads(),
    "SKF": skf_payloads(),
    "opaque": opaque_payloads,
}
clear_payloads = st.one_of(
    [strategy for name, strategy in PAYLOAD_STRATEGIES.items() if name not in ("SK", "SKF")]
)
headers = st.builds(
    Header,
    spi_i=st.binary(min_size=8, max_size=8),
    spi_r=st.binary(min_size=8, max_size=8),
    minor_version=st.integers(0, 15),
    exchange_type=u8,
    is_initiator=st.booleans(),
    is_response=st.booleans(),
    version_flag=st.booleans(),
    message_id=st.integers(0, 2**32 - 1),
)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    payloads = draw(st.lists(clear_payloads, max_size=6))
    tail = draw(st.one_of(st.none(), sk_payloads, skf_payloads()))
    if tail is not None:
        payloads.append(tail)
    return Message(draw(headers), tuple(payloads))


# --- 1. arbitrary input: decodes or raises DecodeError -----------------------------------------

PLAUSIBLE_OCTETS = [0, 1, 2, 3, 4, 5, 7, 8, 0x0C, 0x0E, 0x10, 0x28, 0x80]
FIRST_TYPES = [PayloadType(t) for t in (0, 1, 32, 49, 200, 255)] + list(KNOWN_PAYLOAD_CLASSES)


def _decodes_or_decode_error(decode: Callable[[], object]) -> None:
    """``decode`` raises DecodeError or gives values that pass every attrs validator: the decoder
    runs with the validators off (messages.py), so its own checks must leave nothing for them."""
    with contextlib.suppress(DecodeError):
        _validate_deeply(decode())


def _validate_deeply(value: object) -> None:
    if isinstance(value, tuple | list):
        for item in value:
            _validate_deeply(item)
    elif attrs.has(type(value)):
        attrs.validate(value)  # type: ignore[arg-type]
        for field in attrs.fields(type(value)):
            _validate_deeply(getattr(value, field.name))


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_any_octets_to_decode_message(data: bytes) -> None:
    _decodes_or_decode_error(lambda: decode_message(data))


@settings(max_examples=500)
@given(
    first=st.sampled_from(FIRST_TYPES),
    body=st.binary(max_size=200),
    version=st.sampled_from([0x20, 0x2F, 0x10]),
)
def test_any_chain_behind_a_valid_header(first: PayloadType, body: bytes, version: int) -> None:
    data = (
        bytes(16)
        + bytes([first, version, 34, 0])
        + bytes(4)
        + (HEADER_SIZE + len(body)).to_bytes(4, "big")
        + body
    )
    _decodes_or_decode_error(lambda: decode_message(data))


@pytest.mark.parametrize("first", FIRST_TYPES, ids=lambda t: t.name)
@settings(max_examples=150)
@given(data=st.binary(max_size=120))
def test_any_octets_to_decode_payloads(first: PayloadType, data: bytes) -> None:
    _decodes_or_decode_error(lambda: decode_payloads(first, data, offset=36))
    _decodes_or_decode_error(lambda: decode_payload(first, data))


@pytest.mark.parametrize("payload_type", list(KNOWN_PAYLOAD_CLASSES), ids=lambda t: t.name)
@settings(max_examples=200)
@given(body=st.binary(max_size=120), next_payload=u8, is_critical=st.booleans())
def test_any_octets_to_each_body_decoder(
    payload_type: PayloadType, body: bytes, next_payload: int, is_critical: bool
) -> None:
    header = PayloadHeader(PayloadType(next_payload), is_critical, 4 + len(body), 28)
    reader = Reader(body, offset=32, payload_type=payload_type)
    _decodes_or_decode_error(lambda: KNOWN_PAYLOAD_CLASSES[payload_type].decode_body(reader, header))


@pytest.mark.parametrize("payload_type", list(KNOWN_PAYLOAD_CLASSES), ids=lambda t: t.name)
@settings(max_examples=300)
@given(data=st.data())
def test_structured_noise_in_nested_payloads(payload_type: PayloadType, data: st.DataObject) -> None:
    """Bodies built from plausible small numbers reach deeper checks than uniform noise."""
    body = bytes(
        data.draw(st.lists(st.sampled_from([0, 1, 2, 3, 4, 5, 7, 8, 0x0C, 0x0E, 0x10, 0x80]), max_size=60))
    )
    wire = bytes([0, 0]) + (4 + len(body)).to_bytes(2, "big") + body
    _decodes_or_decode_error(lambda: decode_payload(payload_type, wire))


# --- 2. generated values: decode(encode(x)) == x ----------------------------------------------


@pytest.mark.parametrize("name", list(PAYLOAD_STRATEGIES))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_payload_round_trip(name: str, data: st.DataObject) -> None:
    payload = data.draw(PAYLOAD_STRATEGIES[name])
    next_payload = data.draw(st.sampled_from([PayloadType.NONE, PayloadType.NOTIFY]))
    wire = encode_payload(payload, next_payload)
    decoded, decoded_next = decode_payload(payload.payload_type, wire, offset=28)
    assert decoded == payload
    assert type(decoded) is type(payload)
    if isinstance(payload, EncryptedPayload | EncryptedFragmentPayload):
        assert decoded_next == payload.first_inner_payload
    else:
        assert decoded_next == next_payload


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(clear_payloads, max_size=8).map(tuple))
def test_inner_chain_round_trip(payloads: tuple[Payload, ...]) -> None:
    first, data = encode_payloads(payloads)
    assert decode_payloads(first, data) == payloads


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_message_round_trip(message: Message) -> None:
    wire = encode_message(message)
    assert decode_message(wire) == message
    assert encode_message(decode_message(wire)) == wire  # 3: our own octets have zero reserved fields


@settings(max_examples=200)
@given(headers, u8, st.integers(HEADER_SIZE, 2**32 - 1))
def test_header_round_trip(header: Header, next_payload: int, length: int) -> None:
    assert decode_header(encode_header(header, PayloadType(next_payload), length)) == (
        header,
        next_payload,
        length,
    )


# --- 3. mutants: decode or DecodeError; a decoded mutant re-encodes to a fixed point ----------


@pytest.mark.parametrize("name", list(PAYLOAD_STRATEGIES))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_payloads(name: str, data: st.DataObject) -> None:
    """A valid payload with one to three octets changed: decodes (to a fixed point) or DecodeError."""
    payload = data.draw(PAYLOAD_STRATEGIES[name])
    wire = bytearray(encode_payload(payload))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(wire) - 1))
        wire[position] = data.draw(st.one_of(st.sampled_from(PLAUSIBLE_OCTETS), u8))
    try:
        decoded, next_payload = decode_payload(payload.payload_type, bytes(wire))
    except DecodeError:
        return
    again = encode_payload(decoded, next_payload)
    assert decode_payload(payload.payload_type, again) == (decoded, next_payload)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(message=messages(), data=st.data())
def test_mutated_messages(message: Message, data: st.DataObject) -> None:
    wire = bytearray(encode_message(message))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(HEADER_SIZE - 12, len(wire) - 1))
        wire[position] = data.draw(u8)
    try:
        decoded = decode_message(bytes(wire))
    except DecodeError:
        return
    again = encode_message(decoded)
    assert decode_message(again) == decoded
    assert encode_message(decode_message(again)) == again
