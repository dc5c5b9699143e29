"""The IKEv2 message codec: IKE header and payload chain (RFC 7296 §3.1, §3.2).

Strategy (after h11's ``_readers.py`` and aioquic's ``packet.py``): a message is a
frozen :class:`Header` plus a tuple of frozen payload values
(:mod:`responder.core.payloads`, re-exported here).  Computed fields (the
header's Next Payload and Length, each payload's Next Payload and Payload
Length, every count and inner length) are not stored; they are written on
encode and checked on decode.

Decoding walks the chain in a loop (no recursion), one bounded
:class:`~responder.core.buffer.Reader` window per payload, and raises at the
place each check fails:

* header: at least 28 octets, major version 2 (``InvalidMajorVersion``), Length
  equal to the buffer (RFC 7296 §3.1);
* chain: each Payload Length at least 4 and within the message, at most
  :data:`MAX_PAYLOADS` payloads, no octets after the last payload;
* a payload type the codec does not parse is kept as :class:`OpaquePayload`,
  unless its critical bit is set (``UnsupportedCriticalPayload``, whose notify
  data is the type; RFC 7296 §2.5, §3.2);
* the Encrypted payload (SK) and the Encrypted Fragment payload (SKF) must be
  last (RFC 7296 §3.1, §3.14; RFC 7383 §2.5): their Next Payload field names
  the first *inner* payload, so the chain ends there and the message must end
  with them.  An inner chain (:func:`decode_payloads`) may hold neither
  ("an Encrypted payload MUST NOT contain another Encrypted payload", §3.1).

Every error is a :class:`~responder.core.errors.DecodeError` (or subclass) with
the absolute offset of the offending field and the payload type being decoded.
Reserved bits and octets are ignored on receipt and zero on send, so
``encode_message(decode_message(b)) == b`` whenever ``b``'s reserved fields are zero.
"""

from __future__ import annotations

from typing import Any

import attrs

from responder.core.buffer import Layout, Reader, Writer
from responder.core.enums import ExchangeType, PayloadType, member_lookup
from responder.core.errors import DecodeError, InvalidMajorVersion, LocalError, UnsupportedCriticalPayload
from responder.core.payloads import (
    KNOWN_PAYLOAD_CLASSES,
    AnyTrafficSelector,
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
    IdiPayload,
    IdrPayload,
    KePayload,
    KnownPayload,
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
    typed_transform_id,
)

__all__ = [
    "HEADER_SIZE",
    "MAX_PAYLOADS",
    "PAYLOAD_HEADER_SIZE",
    "AnyTrafficSelector",
    "AuthPayload",
    "CertPayload",
    "CertReqPayload",
    "ConfigAttribute",
    "ConfigPayload",
    "DeletePayload",
    "EapCode",
    "EapPayload",
    "EncryptedFragmentPayload",
    "EncryptedPayload",
    "Header",
    "IdiPayload",
    "IdrPayload",
    "KePayload",
    "KnownPayload",
    "Message",
    "NoncePayload",
    "NotifyPayload",
    "OpaquePayload",
    "OpaqueTrafficSelector",
    "Payload",
    "PayloadHeader",
    "Proposal",
    "SaPayload",
    "TrafficSelector",
    "Transform",
    "TransformAttribute",
    "TsiPayload",
    "TsrPayload",
    "VendorIdPayload",
    "decode_header",
    "decode_message",
    "decode_payload",
    "decode_payloads",
    "encode_header",
    "encode_message",
    "encode_payload",
    "encode_payloads",
    "is_new_sa_request",
    "typed_transform_id",
]

HEADER_SIZE = 28  # RFC 7296 §3.1
PAYLOAD_HEADER_SIZE = 4  # RFC 7296 §3.2


def is_new_sa_request(data: bytes) -> bool:
    """An IKE_SA_INIT request with SPIr zero, of any IKE version (RFC 7296 §3.1 header octets)."""
    return (
        len(data) >= HEADER_SIZE
        and data[18] == ExchangeType.IKE_SA_INIT
        and not data[19] & 0x20
        and data[8:16] == bytes(8)
    )


#: Most payloads accepted in one chain (outer or inner).  Real messages carry a
#: few dozen at most; the limit bounds the work a hostile message can cause.
MAX_PAYLOADS = 512

_FLAG_INITIATOR = 0x08  # RFC 7296 §3.1: I
_FLAG_VERSION = 0x10  # V
_FLAG_RESPONSE = 0x20  # R
_CRITICAL = 0x80  # RFC 7296 §3.2: C bit; the other 7 bits are RESERVED
_ENCRYPTED = (EncryptedPayload, EncryptedFragmentPayload)
_NONE = PayloadType.NONE  # a module constant: reading an enum member off its class is slow before 3.12


def _uint(bits: int) -> Any:
    limit = 1 << bits

    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, int) or type(value) is bool or not 0 <= value < limit:
            raise ValueError(f"{attribute.name} must be an integer in 0..{limit - 1}, got {value!r}")

    return check


def _spi(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bytes) or len(value) != 8:
        raise ValueError(f"{attribute.name} must be 8 octets of bytes, got {value!r}")


_payload_type = member_lookup(PayloadType)
_exchange_type = member_lookup(ExchangeType)


def _to_exchange_type(value: int) -> ExchangeType:
    """``ExchangeType(value)``, faster (see ``member_lookup``); named, for mypy's attrs plugin."""
    return _exchange_type(value)


def _bool(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``attrs.validators.instance_of(bool)``, with its error, at the cost of a plain function."""
    if value is not True and value is not False:
        raise TypeError(
            f"'{attribute.name}' must be {bool!r} (got {value!r} that is a {value.__class__!r}).",
            attribute,
            bool,
            value,
        )


@attrs.frozen(kw_only=True)
class Header:
    """The IKE header (RFC 7296 §3.1) without its computed fields.

    Next Payload and Length are written by :func:`encode_message` (or given to
    :func:`encode_header`).  The reserved flag bits are not kept.
    """

    spi_i: bytes = attrs.field(validator=_spi)
    spi_r: bytes = attrs.field(validator=_spi)
    major_version: int = attrs.field(default=2, validator=_uint(4))
    minor_version: int = attrs.field(default=0, validator=_uint(4))
    exchange_type: ExchangeType = attrs.field(converter=_to_exchange_type, validator=_uint(8))
    is_initiator: bool = attrs.field(validator=_bool)
    is_response: bool = attrs.field(validator=_bool)
    version_flag: bool = attrs.field(default=False, validator=_bool)
    message_id: int = attrs.field(validator=_uint(32))


def _check_chain(_instance: object, _attribute: attrs.Attribute[Any], payloads: object) -> None:
    if not isinstance(payloads, tuple):
        raise TypeError("payloads must be a tuple")
    payload_classes = (*KNOWN_PAYLOAD_CLASSES.values(), OpaquePayload)
    exact = frozenset(payload_classes)  # a set lookup before an isinstance() walk over 18 classes
    for index, payload in enumerate(payloads):
        if type(payload) not in exact and not isinstance(payload, payload_classes):
            raise TypeError(f"payload {index} is a {type(payload).__name__}, not a payload")
        if isinstance(payload, _ENCRYPTED) and index != len(payloads) - 1:
            raise ValueError("an Encrypted (SK/SKF) payload must be the last payload (RFC 7296 §3.14)")


@attrs.frozen
class Message:
    """An IKE message: header and payloads in wire order (SK/SKF, if any, last)."""

    header: Header
    payloads: tuple[Payload, ...] = attrs.field(validator=_check_chain)


# --- header -------------------------------------------------------------------------------------


def encode_header(header: Header, next_payload: PayloadType, length: int) -> bytes:
    """The 28-octet IKE header with the given Next Payload and Length (RFC 7296 §3.1)."""
    writer = Writer()
    writer.push_bytes(header.spi_i)
    writer.push_bytes(header.spi_r)
    writer.push_u8(next_payload, "Next Payload")
    writer.push_u8(header.major_version << 4 | header.minor_version)
    writer.push_u8(header.exchange_type)
    writer.push_u8(
        (_FLAG_INITIATOR if header.is_initiator else 0)
        | (_FLAG_VERSION if header.version_flag else 0)
        | (_FLAG_RESPONSE if header.is_response else 0)
    )
    writer.push_u32(header.message_id)
    writer.push_u32(length, "Length")
    return writer.data


_IKE_HEADER = Layout(
    ("8s", "IKE SA Initiator's SPI"),
    ("8s", "IKE SA Responder's SPI"),
    ("B", "Next Payload"),
    ("B", "Version"),
    ("B", "Exchange Type"),
    ("B", "Flags"),
    ("I", "Message ID"),
    ("I", "Length"),
)
_GENERIC_PAYLOAD_HEADER = Layout(("B", "Next Payload"), ("B", "C, RESERVED"), ("H", "Payload Length"))


def _decode_header(reader: Reader) -> tuple[Header, PayloadType, int]:
    if reader.remaining < HEADER_SIZE:
        raise reader.error(f"IKE header needs {HEADER_SIZE} octets, only {reader.remaining} present")
    start = reader.position
    spi_i, spi_r, next_payload, version, exchange_type, flags, message_id, length = reader.pull(_IKE_HEADER)
    if version >> 4 != 2:
        raise InvalidMajorVersion(
            f"major version {version >> 4}, only 2 is supported (RFC 7296 §2.5)", offset=start + 17
        )
    if length < HEADER_SIZE:
        raise reader.error(
            f"Length {length} is shorter than the {HEADER_SIZE}-octet header", offset=start + 24
        )
    header = Header(
        spi_i=spi_i,
        spi_r=spi_r,
        major_version=2,
        minor_version=version & 0x0F,
        exchange_type=exchange_type,
        is_initiator=bool(flags & _FLAG_INITIATOR),  # the X bits are ignored on receipt
        is_response=bool(flags & _FLAG_RESPONSE),
        version_flag=bool(flags & _FLAG_VERSION),
        message_id=message_id,
    )
    return header, _payload_type(next_payload), length


def decode_header(data: bytes) -> tuple[Header, PayloadType, int]:
    """Decode the IKE header at the start of ``data`` (RFC 7296 §3.1).

    Returns the header, the first payload's type and the declared Length.  Only
    the header is examined: ``data`` may be the first 28 octets or the whole
    message, and the Length is not compared with it (:func:`decode_message` does).
    """
    return _decode_header(Reader(data))


# --- payload chain ------------------------------------------------------------------------------


def _decode_one(reader: Reader, payload_type: PayloadType) -> tuple[Payload, PayloadType]:
    """Decode the payload at ``reader``'s position; return it and the Next Payload field."""
    start = reader.position
    remaining = reader.remaining  # generic header included
    if remaining < PAYLOAD_HEADER_SIZE:
        raise DecodeError(
            f"generic payload header needs {PAYLOAD_HEADER_SIZE} octets, only {remaining} remain",
            offset=start,
            payload_type=payload_type,
        )
    next_payload, flags, length = reader.pull(_GENERIC_PAYLOAD_HEADER)
    next_payload = _payload_type(next_payload)
    critical = bool(flags & _CRITICAL)  # the 7 RESERVED bits are ignored on receipt
    if length < PAYLOAD_HEADER_SIZE:
        raise DecodeError(
            f"Payload Length {length} is shorter than the generic payload header",
            offset=start + 2,
            payload_type=payload_type,
        )
    if length > remaining:
        raise DecodeError(
            f"Payload Length {length} runs past the end of its container ({remaining} octets left)",
            offset=start + 2,
            payload_type=payload_type,
        )
    body = reader.sub_reader(length - PAYLOAD_HEADER_SIZE, payload_type=payload_type)
    cls = KNOWN_PAYLOAD_CLASSES.get(payload_type)
    if cls is None:
        if critical:
            raise UnsupportedCriticalPayload(
                "payload of a type this implementation does not support has the critical bit set",
                offset=start + 1,
                payload_type=payload_type,
            )
        return OpaquePayload(payload_type, body.pull_rest()), next_payload
    payload = cls.decode_body(body, PayloadHeader(next_payload, critical, length, start))
    if not body.at_end():
        raise body.error(f"{body.remaining} octets of the payload were not consumed")
    return payload, next_payload


def _decode_chain(first_type: PayloadType, reader: Reader, *, inner: bool) -> tuple[Payload, ...]:
    # The decoder checks every field it reads (lengths, ranges, types) and raises DecodeError;
    # the attrs validators of the payload classes guard values our own code builds and would
    # only check again what it just checked (issue 14: "validators run on values the codec just
    # produced").  Switched off while a chain is decoded: about 15% of a decode (the IKE_AUTH
    # request of bench/codec.py, best process time of alternating runs: 122 -> 104 us).
    was_disabled = attrs.validators.get_disabled()
    attrs.validators.set_disabled(True)
    try:
        return _decode_payload_chain(first_type, reader, inner=inner)
    finally:
        attrs.validators.set_disabled(was_disabled)


def _decode_payload_chain(first_type: PayloadType, reader: Reader, *, inner: bool) -> tuple[Payload, ...]:
    payloads: list[Payload] = []
    payload_type = first_type
    last_type: PayloadType | None = None
    while payload_type != _NONE:
        if len(payloads) == MAX_PAYLOADS:
            raise DecodeError(
                f"more than {MAX_PAYLOADS} payloads in one chain",
                offset=reader.position,
                payload_type=payload_type,
            )
        start = reader.position
        payload, next_payload = _decode_one(reader, payload_type)
        payloads.append(payload)
        last_type = payload_type
        if isinstance(payload, _ENCRYPTED):
            if inner:
                raise DecodeError(
                    "an Encrypted payload MUST NOT contain another Encrypted payload (RFC 7296 §3.1)",
                    offset=start,
                    payload_type=payload_type,
                )
            if not reader.at_end():
                raise DecodeError(
                    f"{reader.remaining} octets follow the {payload_type.name} payload, "
                    "which must be the last payload (RFC 7296 §3.14, RFC 7383 §2.5)",
                    offset=reader.position,
                    payload_type=payload_type,
                )
            break
        payload_type = next_payload
    if not reader.at_end():
        raise DecodeError(
            f"{reader.remaining} octets follow the last payload (Next Payload 0)",
            offset=reader.position,
            payload_type=last_type,
        )
    return tuple(payloads)


def _encode_chain(payloads: tuple[Payload, ...], writer: Writer, *, inner: bool) -> PayloadType:
    for index, payload in enumerate(payloads):
        is_last = index == len(payloads) - 1
        if isinstance(payload, _ENCRYPTED):
            if inner:
                raise LocalError("an Encrypted payload cannot be inside an Encrypted payload (RFC 7296 §3.1)")
            if not is_last:
                raise LocalError("an Encrypted (SK/SKF) payload must be the last payload (RFC 7296 §3.14)")
            next_payload = payload.first_inner_payload
        else:
            next_payload = PayloadType.NONE if is_last else payloads[index + 1].payload_type
        _encode_one(payload, next_payload, writer)
    return payloads[0].payload_type if payloads else PayloadType.NONE


def _encode_one(payload: Payload, next_payload: PayloadType, writer: Writer) -> None:
    start = len(writer)
    writer.push_u8(next_payload, "Next Payload")
    writer.push_u8(_CRITICAL if payload.critical else 0)
    length_at = writer.reserve_u16()
    payload.encode_body(writer)
    length = len(writer) - start
    if length > 0xFFFF:
        raise LocalError(
            f"{payload.payload_type.name} payload of {length} octets exceeds the 16-bit Payload Length"
        )
    writer.patch_u16(length_at, length)


def decode_payload(payload_type: PayloadType, data: bytes, *, offset: int = 0) -> tuple[Payload, PayloadType]:
    """Decode exactly one payload, generic header included; return it and its Next Payload field.

    ``data`` must hold the payload and nothing else.  For SK and SKF the Next
    Payload field is also in the value (``first_inner_payload``).
    """
    if payload_type == PayloadType.NONE:
        # Next Payload 0 ends a chain (RFC 7296 §3.2): there is no payload of that type.
        raise DecodeError("payload type 0 (NONE) names no payload", offset=offset)
    reader = Reader(data, offset=offset)
    payload, next_payload = _decode_one(reader, payload_type)
    if not reader.at_end():
        raise DecodeError(
            f"{reader.remaining} octets follow the payload", offset=reader.position, payload_type=payload_type
        )
    return payload, next_payload


def encode_payload(payload: Payload, next_payload: PayloadType = PayloadType.NONE) -> bytes:
    """One payload with its generic header; SK and SKF write their first inner type instead."""
    writer = Writer()
    if isinstance(payload, _ENCRYPTED):
        next_payload = payload.first_inner_payload
    _encode_one(payload, next_payload, writer)
    return writer.data


def decode_payloads(first_type: PayloadType, data: bytes, *, offset: int = 0) -> tuple[Payload, ...]:
    """Decode the inner payload chain of an Encrypted payload (RFC 7296 §3.14).

    ``first_type`` is the SK (or SKF fragment 1) Next Payload field, ``offset``
    where ``data`` starts in the message, for error reports.  SK and SKF may
    not appear in an inner chain.
    """
    return _decode_chain(first_type, Reader(data, offset=offset), inner=True)


def encode_payloads(payloads: tuple[Payload, ...]) -> tuple[PayloadType, bytes]:
    """Encode an inner chain; return the first payload's type (NONE if empty) and the octets."""
    writer = Writer()
    first = _encode_chain(tuple(payloads), writer, inner=True)
    return first, writer.data


# --- whole messages -----------------------------------------------------------------------------


def decode_message(data: bytes) -> Message:
    """Decode a whole IKE message (RFC 7296 §3); raises :class:`DecodeError` or a subclass."""
    reader = Reader(data)
    header, first_type, length = _decode_header(reader)
    if length != len(data):
        raise DecodeError(f"header Length {length} differs from the message's {len(data)} octets", offset=24)
    return Message(header, _decode_chain(first_type, reader, inner=False))


def encode_message(message: Message) -> bytes:
    """Encode ``message``; Next Payload and Length fields are computed."""
    writer = Writer()
    first_type = _encode_chain(message.payloads, writer, inner=False)
    chain = writer.data
    return encode_header(message.header, first_type, HEADER_SIZE + len(chain)) + chain
