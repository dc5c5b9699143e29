"""The IKEv2 payloads (RFC 7296 §3.3-§3.16, RFC 7383 §2.5) as frozen values.

Strategy: one ``@attrs.frozen`` class per payload type, each with a
``payload_type`` ClassVar, an ``encode_body(writer)`` method and a
``decode_body(reader, header)`` classmethod that handle everything after the
4-octet generic payload header (the chain and that header live in
:mod:`responder.core.messages`).  IDi/IDr, TSi/TSr and CERT/CERTREQ share a base
class but are distinct types, so ``IdiPayload(...) != IdrPayload(...)``.

Decoding is strict and checks structure only (RFC 7296 §3.3: "the total Payload
Length is consistent with the payload's internal lengths and counts"): each
length is checked against its container before it is used, at the offset of
the length field, and each count against what actually follows.  Checks run
before a value is built, so attrs validators never see peer input; they are
there for values built by our own code (``ValueError``/``TypeError``).
RESERVED fields are ignored on receipt and written as zero; fields that are not
reserved (Last Substruc, counts, lengths) must hold the value the structure
implies.  Policy is not the codec's: nonce sizes (16-256 octets, RFC 7296 §2.10),
proposal numbering, transform combinations and whether a payload may appear in
a given exchange are checked by the state machine.

Decoded values hold no raw wire octets except where the field *is* octets
(nonce data, SPI, notification data, ...) and in :class:`OpaquePayload` /
:class:`OpaqueTrafficSelector`, which keep what this codec does not understand
so it re-encodes unchanged.  Registry values are open IntEnums
(:mod:`responder.core.enums`), so unknown values survive round trips.
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar, Self, TypeAlias

import attrs

from responder.core.buffer import Layout, Reader, Writer
from responder.core.enums import (
    AuthMethod,
    CertEncoding,
    ConfigAttributeType,
    ConfigType,
    EncrId,
    EsnId,
    IdType,
    IntegId,
    IpProtocol,
    KeyExchangeId,
    NotifyType,
    OpenIntEnum,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformAttributeType,
    TransformType,
    TsType,
    member_lookup,
)

__all__ = [
    "KNOWN_PAYLOAD_CLASSES",
    "AnyTrafficSelector",
    "AuthPayload",
    "CertPayload",
    "CertReqPayload",
    "ConfigAttribute",
    "ConfigPayload",
    "EapCode",
    "EapPayload",
    "EncryptedFragmentPayload",
    "EncryptedPayload",
    "IdiPayload",
    "IdrPayload",
    "KePayload",
    "KnownPayload",
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
    "typed_transform_id",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- validators for values built by our own code (never peer input) ---------------------------


# Every decoded value passes through these, so they are written for speed: plain
# functions (not ``attrs.validators`` objects, whose ``__call__`` costs more than the
# check), ``type(x) is bool`` (bool cannot be subclassed) and no generators.


def _uint(bits: int) -> Any:
    limit = 1 << bits

    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, int) or type(value) is bool or not 0 <= value < limit:
            raise ValueError(f"{attribute.name} must be an integer in 0..{limit - 1}, got {value!r}")

    return check


def _octets(*, max_size: int | None = None) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, bytes):
            raise TypeError(f"{attribute.name} must be bytes, got {type(value).__name__}")
        if max_size is not None and len(value) > max_size:
            raise ValueError(f"{attribute.name} must be at most {max_size} octets, got {len(value)}")

    return check


def _tuple_of(member: type | tuple[type, ...], *, min_size: int = 0, max_size: int | None = None) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple):
            raise TypeError(f"{attribute.name} must be a tuple, got {type(value).__name__}")
        for item in value:
            if not isinstance(item, member):
                raise TypeError(f"{attribute.name} holds an item of the wrong type")
        if len(value) < min_size or (max_size is not None and len(value) > max_size):
            raise ValueError(f"{attribute.name} must hold {min_size}..{max_size} items, got {len(value)}")

    return check


def _bool(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``attrs.validators.instance_of(bool)``, with its error, at the cost of a plain function."""
    if value is not True and value is not False:
        raise TypeError(
            f"'{attribute.name}' must be {bool!r} (got {value!r} that is a {value.__class__!r}).",
            attribute,
            bool,
            value,
        )


# Converters: ``Enum(value)`` for every registry field, through ``member_lookup`` (a dict
# lookup instead of ``EnumType.__call__`` + ``Enum.__new__``; same members, same errors).  They
# are named functions because mypy's attrs plugin types ``__init__`` from a converter's
# signature only for those.  Decoders hand plain ints to constructors and let these convert,
# except where they need the member themselves (logic, error messages).
_auth_method = member_lookup(AuthMethod)
_cert_encoding = member_lookup(CertEncoding)
_config_attribute_type = member_lookup(ConfigAttributeType)
_config_type = member_lookup(ConfigType)
_id_type = member_lookup(IdType)
_ip_protocol = member_lookup(IpProtocol)
_key_exchange_id = member_lookup(KeyExchangeId)
_notify_type = member_lookup(NotifyType)
_payload_type = member_lookup(PayloadType)
_protocol_id = member_lookup(ProtocolId)
_transform_attribute_type = member_lookup(TransformAttributeType)
_transform_type = member_lookup(TransformType)
_ts_type = member_lookup(TsType)


def _to_auth_method(value: int) -> AuthMethod:
    return _auth_method(value)


def _to_cert_encoding(value: int) -> CertEncoding:
    return _cert_encoding(value)


def _to_config_attribute_type(value: int) -> ConfigAttributeType:
    return _config_attribute_type(value)


def _to_config_type(value: int) -> ConfigType:
    return _config_type(value)


def _to_id_type(value: int) -> IdType:
    return _id_type(value)


def _to_ip_protocol(value: int) -> IpProtocol:
    return _ip_protocol(value)


def _to_key_exchange_id(value: int) -> KeyExchangeId:
    return _key_exchange_id(value)


def _to_notify_type(value: int) -> NotifyType:
    return _notify_type(value)


def _to_payload_type(value: int) -> PayloadType:
    return _payload_type(value)


def _to_protocol_id(value: int) -> ProtocolId:
    return _protocol_id(value)


def _to_transform_attribute_type(value: int) -> TransformAttributeType:
    return _transform_attribute_type(value)


def _to_transform_type(value: int) -> TransformType:
    return _transform_type(value)


def _to_ts_type(value: int) -> TsType:
    return _ts_type(value)


def _critical() -> Any:
    """The C bit of the generic payload header, kept so round trips are exact (RFC 7296 §3.2)."""
    return attrs.field(default=False, kw_only=True, validator=_bool)


# Decoding reads fixed-size runs of fields with one ``Reader.pull`` (a ``Layout`` each): the
# same values and errors as field-by-field pulls, for a fraction of the calls.


@attrs.frozen
class PayloadHeader:
    """A decoded generic payload header (RFC 7296 §3.2), handed to ``decode_body``.

    ``offset`` is the absolute offset of its first octet (the Next Payload field).
    """

    next_payload: PayloadType
    critical: bool
    length: int
    offset: int


# --- SA payload: proposals, transforms, attributes (RFC 7296 §3.3) ----------------------------

_TRANSFORM_ID_ENUMS: dict[TransformType, type[OpenIntEnum]] = {
    TransformType.ENCR: EncrId,
    TransformType.PRF: PrfId,
    TransformType.INTEG: IntegId,
    TransformType.KE: KeyExchangeId,
    TransformType.ESN: EsnId,
    **{TransformType(n): KeyExchangeId for n in range(6, 13)},  # ADDKE1-7, RFC 9370 §2.2.1
}


_TRANSFORM_ID_LOOKUPS = {
    transform_type: member_lookup(registry) for transform_type, registry in _TRANSFORM_ID_ENUMS.items()
}


def typed_transform_id(transform_type: TransformType, transform_id: int) -> int:
    """``transform_id`` as the registry enum of ``transform_type`` (plain int if the type is unknown)."""
    lookup = _TRANSFORM_ID_LOOKUPS.get(transform_type)
    return lookup(transform_id) if lookup is not None else transform_id


_TRANSFORM_LENGTH = Layout(("x", "RESERVED"), ("H", "Transform Length"))
_TRANSFORM_TYPE_AND_ID = Layout(("B", "Transform Type"), ("x", "RESERVED"), ("H", "Transform ID"))
_PROPOSAL_LENGTH = Layout(("x", "RESERVED"), ("H", "Proposal Length"))
_PROPOSAL_HEAD = Layout(
    ("B", "Proposal Num"), ("B", "Protocol ID"), ("B", "SPI Size"), ("B", "Num Transforms")
)


_KEY_LENGTH = TransformAttributeType.KEY_LENGTH  # enum members are slow to read off the class before 3.12


def _check_attribute_value(
    instance: TransformAttribute, attribute: attrs.Attribute[Any], value: object
) -> None:
    if type(value) is bool or not isinstance(value, (int, bytes)):
        raise TypeError(f"value must be int (TV format) or bytes (TLV format), got {type(value).__name__}")
    if isinstance(value, int) and not 0 <= value <= 0xFFFF:
        raise ValueError(f"a TV attribute value must fit in 16 bits, got {value}")
    if isinstance(value, bytes) and len(value) > 0xFFFF:
        raise ValueError(f"a TLV attribute value must be at most 65535 octets, got {len(value)}")
    if instance.attribute_type == _KEY_LENGTH and not isinstance(value, int):
        raise ValueError("the Key Length attribute uses the TV format (RFC 7296 §3.3.5): give an int")


@attrs.frozen
class TransformAttribute:
    """A transform attribute (RFC 7296 §3.3.5).

    The format is kept in the type of ``value``: ``int`` for TV (AF=1, a 2-octet
    value), ``bytes`` for TLV (AF=0).  Key Length (14) is always TV.
    """

    attribute_type: TransformAttributeType = attrs.field(
        converter=_to_transform_attribute_type, validator=_uint(15)
    )
    value: int | bytes = attrs.field(validator=_check_attribute_value)

    @classmethod
    def key_length(cls, bits: int) -> TransformAttribute:
        return cls(TransformAttributeType.KEY_LENGTH, bits)

    @property
    def is_tv(self) -> bool:
        return isinstance(self.value, int)

    def encode(self, writer: Writer) -> None:
        if isinstance(self.value, int):
            writer.push_u16(0x8000 | self.attribute_type)
            writer.push_u16(self.value)
        else:
            writer.push_u16(self.attribute_type)
            writer.push_u16(len(self.value))
            writer.push_bytes(self.value)

    @classmethod
    def decode(cls, reader: Reader) -> TransformAttribute:
        start = reader.position
        word = reader.pull_u16("Attribute Type")
        attribute_type = word & 0x7FFF
        if word & 0x8000:  # AF=1: TV
            return cls(attribute_type, reader.pull_u16("Attribute Value"))
        if attribute_type == TransformAttributeType.KEY_LENGTH:
            raise reader.error("Key Length attribute must use the TV format (RFC 7296 §3.3.5)", offset=start)
        length_at = reader.position
        length = reader.pull_u16("Attribute Length")
        if length > reader.remaining:
            raise reader.error(
                f"Attribute Length {length} runs past the end of its transform "
                f"({reader.remaining} octets left)",
                offset=length_at,
            )
        return cls(attribute_type, reader.pull_bytes(length, "Attribute Value"))


@attrs.frozen
class Transform:
    """A transform substructure (RFC 7296 §3.3.2).

    Decoding gives ``transform_id`` as the registry enum of its type (``EncrId``
    for ENCR, ...); any int compares equal to it.
    """

    transform_type: TransformType = attrs.field(converter=_to_transform_type, validator=_uint(8))
    transform_id: int = attrs.field(validator=_uint(16))
    attributes: tuple[TransformAttribute, ...] = attrs.field(
        default=(), validator=_tuple_of(TransformAttribute)
    )

    @property
    def key_length(self) -> int | None:
        """The Key Length attribute's value in bits, or ``None`` if absent."""
        for attribute in self.attributes:
            if attribute.attribute_type == TransformAttributeType.KEY_LENGTH and isinstance(
                attribute.value, int
            ):
                return attribute.value
        return None

    def encode(self, writer: Writer, *, last: bool) -> None:
        start = len(writer)
        writer.push_u8(0 if last else 3)  # Last Substruc
        writer.push_u8(0)
        length_at = writer.reserve_u16()
        writer.push_u8(self.transform_type)
        writer.push_u8(0)
        writer.push_u16(self.transform_id)
        for attribute in self.attributes:
            attribute.encode(writer)
        writer.patch_u16(length_at, len(writer) - start, "Transform Length")

    @classmethod
    def decode(cls, reader: Reader, *, last: bool) -> Transform:
        """Decode one transform; ``last`` says which Last Substruc value the proposal's count implies."""
        start = reader.position
        last_substruc = reader.pull_u8("Last Substruc")
        expected = 0 if last else 3
        if last_substruc != expected:
            raise reader.error(
                f"transform Last Substruc is {last_substruc}, Num Transforms implies {expected}", offset=start
            )
        (length,) = reader.pull(_TRANSFORM_LENGTH)
        length_at = start + 2
        if length < 8:
            raise reader.error(f"Transform Length {length} is below the 8-octet minimum", offset=length_at)
        if length - 4 > reader.remaining:
            raise reader.error(
                f"Transform Length {length} runs past the end of its proposal "
                f"({reader.remaining + 4} octets left)",
                offset=length_at,
            )
        body = reader.sub_reader(length - 4, "transform")
        type_value, id_value = body.pull(_TRANSFORM_TYPE_AND_ID)  # fits: Transform Length is at least 8
        transform_type = _transform_type(type_value)
        transform_id = typed_transform_id(transform_type, id_value)
        attributes: list[TransformAttribute] = []
        while not body.at_end():
            attributes.append(TransformAttribute.decode(body))
        return cls(transform_type, transform_id, tuple(attributes))


@attrs.frozen
class Proposal:
    """A proposal substructure (RFC 7296 §3.3.1).

    ``spi`` is empty for an initial IKE SA, 8 octets when rekeying one, 4 for
    ESP/AH (its length is the wire's SPI Size).  Numbering is not checked here:
    a response carries the number of the accepted proposal.
    """

    number: int = attrs.field(validator=_uint(8))
    protocol_id: ProtocolId = attrs.field(converter=_to_protocol_id, validator=_uint(8))
    transforms: tuple[Transform, ...] = attrs.field(validator=_tuple_of(Transform, min_size=1, max_size=255))
    spi: bytes = attrs.field(default=b"", validator=_octets(max_size=255))

    def encode(self, writer: Writer, *, last: bool) -> None:
        start = len(writer)
        writer.push_u8(0 if last else 2)  # Last Substruc
        writer.push_u8(0)
        length_at = writer.reserve_u16()
        writer.push_u8(self.number)
        writer.push_u8(self.protocol_id)
        writer.push_u8(len(self.spi))
        writer.push_u8(len(self.transforms))
        writer.push_bytes(self.spi)
        last_index = len(self.transforms) - 1
        for index, transform in enumerate(self.transforms):
            transform.encode(writer, last=index == last_index)
        writer.patch_u16(length_at, len(writer) - start, "Proposal Length")

    @classmethod
    def decode(cls, reader: Reader) -> tuple[Proposal, bool]:
        """Decode one proposal; also return whether its Last Substruc says it is the last."""
        start = reader.position
        last_substruc = reader.pull_u8("Last Substruc")
        if last_substruc not in (0, 2):
            raise reader.error(f"proposal Last Substruc is {last_substruc}, must be 0 or 2", offset=start)
        (length,) = reader.pull(_PROPOSAL_LENGTH)
        length_at = start + 2
        if length < 8:
            raise reader.error(f"Proposal Length {length} is below the 8-octet minimum", offset=length_at)
        if length - 4 > reader.remaining:
            raise reader.error(
                f"Proposal Length {length} runs past the end of the SA payload "
                f"({reader.remaining + 4} octets left)",
                offset=length_at,
            )
        body = reader.sub_reader(length - 4, "proposal")
        number, protocol_id, spi_size, count = body.pull(_PROPOSAL_HEAD)  # fits: Proposal Length >= 8
        spi_size_at = start + 6
        count_at = start + 7
        if spi_size > body.remaining:
            raise body.error(
                f"SPI Size {spi_size} runs past the end of the proposal ({body.remaining} octets left)",
                offset=spi_size_at,
            )
        spi = body.pull_bytes(spi_size, "SPI")
        if count == 0:
            raise body.error("Num Transforms is 0; a proposal holds one or more transforms", offset=count_at)
        transforms: list[Transform] = []
        for index in range(count):
            if body.at_end():
                raise body.error(
                    f"Num Transforms is {count} but the proposal ends after {index}", offset=count_at
                )
            transforms.append(Transform.decode(body, last=index == count - 1))
        if not body.at_end():
            raise body.error(
                f"{body.remaining} octets follow the last of {count} transforms (Num Transforms)"
            )
        return cls(number, protocol_id, tuple(transforms), spi), last_substruc == 0


@attrs.frozen
class SaPayload:
    """Security Association payload: one or more proposals (RFC 7296 §3.3)."""

    payload_type: ClassVar[PayloadType] = PayloadType.SA
    proposals: tuple[Proposal, ...] = attrs.field(validator=_tuple_of(Proposal, min_size=1))
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        last_index = len(self.proposals) - 1
        for index, proposal in enumerate(self.proposals):
            proposal.encode(writer, last=index == last_index)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        if reader.at_end():
            raise reader.error("SA payload holds no proposal (RFC 7296 §3.3: one or more)")
        proposals: list[Proposal] = []
        while True:
            start = reader.position
            proposal, is_last = Proposal.decode(reader)
            proposals.append(proposal)
            if is_last:
                break
            if reader.at_end():
                raise reader.error(
                    "proposal Last Substruc 2 announces another proposal but the SA payload ends",
                    offset=start,
                )
        if not reader.at_end():
            raise reader.error(f"{reader.remaining} octets follow the proposal whose Last Substruc is 0")
        return cls(tuple(proposals), critical=header.critical)


# --- simple payloads --------------------------------------------------------------------------


_KE_HEAD = Layout(("H", "Diffie-Hellman Group Num"), ("2x", "RESERVED"))
_ID_HEAD = Layout(("B", "ID Type"), ("3x", "RESERVED"))
_AUTH_HEAD = Layout(("B", "Auth Method"), ("3x", "RESERVED"))
_NOTIFY_HEAD = Layout(("B", "Protocol ID"), ("B", "SPI Size"), ("H", "Notify Message Type"))
_DELETE_HEAD = Layout(("B", "Protocol ID"), ("B", "SPI Size"), ("H", "Num of SPIs"))


@attrs.frozen
class KePayload:
    """Key Exchange payload (RFC 7296 §3.4; RFC 9370 for additional key exchanges)."""

    payload_type: ClassVar[PayloadType] = PayloadType.KE
    group: KeyExchangeId = attrs.field(converter=_to_key_exchange_id, validator=_uint(16))
    data: bytes = attrs.field(validator=_octets())
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        writer.push_u16(self.group)
        writer.push_u16(0)
        writer.push_bytes(self.data)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        (group,) = reader.pull(_KE_HEAD)
        return cls(group, reader.pull_rest(), critical=header.critical)


@attrs.frozen
class _IdPayload:
    """Identification payload body: ID Type, 3 RESERVED octets, data (RFC 7296 §3.5)."""

    payload_type: ClassVar[PayloadType]
    id_type: IdType = attrs.field(converter=_to_id_type, validator=_uint(8))
    data: bytes = attrs.field(validator=_octets())
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        writer.push_u8(self.id_type)
        writer.push_bytes(bytes(3))
        writer.push_bytes(self.data)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        (id_type,) = reader.pull(_ID_HEAD)
        return cls(id_type, reader.pull_rest(), critical=header.critical)


@attrs.frozen
class IdiPayload(_IdPayload):
    """IDi: the initiator's identity (RFC 7296 §3.5)."""

    payload_type: ClassVar[PayloadType] = PayloadType.IDi


@attrs.frozen
class IdrPayload(_IdPayload):
    """IDr: the responder's identity (RFC 7296 §3.5)."""

    payload_type: ClassVar[PayloadType] = PayloadType.IDr


@attrs.frozen
class _CertLikePayload:
    """Cert Encoding octet followed by data (RFC 7296 §3.6, §3.7)."""

    payload_type: ClassVar[PayloadType]
    encoding: CertEncoding = attrs.field(converter=_to_cert_encoding, validator=_uint(8))
    data: bytes = attrs.field(validator=_octets())
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        writer.push_u8(self.encoding)
        writer.push_bytes(self.data)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        encoding = reader.pull_u8("Cert Encoding")
        return cls(encoding, reader.pull_rest(), critical=header.critical)


@attrs.frozen
class CertPayload(_CertLikePayload):
    """Certificate payload (RFC 7296 §3.6)."""

    payload_type: ClassVar[PayloadType] = PayloadType.CERT


@attrs.frozen
class CertReqPayload(_CertLikePayload):
    """Certificate Request payload (RFC 7296 §3.7).

    For X.509 encodings ``data`` is a concatenation of 20-octet CA public key hashes.
    """

    payload_type: ClassVar[PayloadType] = PayloadType.CERTREQ


@attrs.frozen
class AuthPayload:
    """Authentication payload (RFC 7296 §3.8)."""

    payload_type: ClassVar[PayloadType] = PayloadType.AUTH
    method: AuthMethod = attrs.field(converter=_to_auth_method, validator=_uint(8))
    data: bytes = attrs.field(validator=_octets())
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        writer.push_u8(self.method)
        writer.push_bytes(bytes(3))
        writer.push_bytes(self.data)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        (method,) = reader.pull(_AUTH_HEAD)
        return cls(method, reader.pull_rest(), critical=header.critical)


@attrs.frozen
class NoncePayload:
    """Nonce payload (RFC 7296 §3.9).

    The codec accepts any length, including zero: the 16..256-octet rule
    (RFC 7296 §2.10, §3.9) is policy for the state machine, which answers
    INVALID_SYNTAX itself.
    """

    payload_type: ClassVar[PayloadType] = PayloadType.NONCE
    data: bytes = attrs.field(validator=_octets())
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        writer.push_bytes(self.data)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        return cls(reader.pull_rest(), critical=header.critical)


@attrs.frozen
class NotifyPayload:
    """Notify payload (RFC 7296 §3.10).

    The SPI's length is the wire's SPI Size.  When ``spi`` is empty the RFC says
    ``protocol_id`` is sent as zero and ignored on receipt: it is kept as
    received (for exact round trips), and consumers must not act on it.
    """

    payload_type: ClassVar[PayloadType] = PayloadType.NOTIFY
    notify_type: NotifyType = attrs.field(converter=_to_notify_type, validator=_uint(16))
    data: bytes = attrs.field(default=b"", validator=_octets())
    protocol_id: ProtocolId = attrs.field(
        default=ProtocolId.RESERVED, converter=_to_protocol_id, validator=_uint(8)
    )
    spi: bytes = attrs.field(default=b"", validator=_octets(max_size=255))
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        writer.push_u8(self.protocol_id)
        writer.push_u8(len(self.spi))
        writer.push_u16(self.notify_type)
        writer.push_bytes(self.spi)
        writer.push_bytes(self.data)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        spi_size_at = reader.position + 1
        protocol_id, spi_size, notify_type = reader.pull(_NOTIFY_HEAD)
        if spi_size > reader.remaining:
            raise reader.error(
                f"SPI Size {spi_size} runs past the end of the payload ({reader.remaining} octets left)",
                offset=spi_size_at,
            )
        spi = reader.pull_bytes(spi_size, "SPI")
        return cls(
            notify_type,
            reader.pull_rest(),
            protocol_id,
            spi,
            critical=header.critical,
        )


def _check_delete(instance: DeletePayload, _attribute: attrs.Attribute[Any], spis: object) -> None:
    if not isinstance(spis, tuple) or not all(isinstance(spi, bytes) for spi in spis):
        raise TypeError("spis must be a tuple of bytes")
    if any(len(spi) != instance.spi_size for spi in spis):
        raise ValueError(f"every SPI must be spi_size ({instance.spi_size}) octets")
    if len(spis) > 0xFFFF:
        raise ValueError("at most 65535 SPIs fit in one Delete payload")
    if instance.protocol_id == ProtocolId.IKE and (instance.spi_size or spis):
        raise ValueError("an IKE SA Delete has SPI Size 0 and no SPIs (RFC 7296 §3.11)")
    if instance.protocol_id in (ProtocolId.AH, ProtocolId.ESP) and instance.spi_size != 4:
        raise ValueError("AH and ESP SPIs are 4 octets (RFC 7296 §3.11)")


@attrs.frozen
class DeletePayload:
    """Delete payload (RFC 7296 §3.11).

    For IKE: SPI Size 0 and no SPIs (the SPIs are in the header); for AH/ESP the
    SPI Size is 4.  ``spi_size`` is kept so an empty ESP Delete round-trips.
    """

    payload_type: ClassVar[PayloadType] = PayloadType.DELETE
    protocol_id: ProtocolId = attrs.field(converter=_to_protocol_id, validator=_uint(8))
    spi_size: int = attrs.field(validator=_uint(8))
    spis: tuple[bytes, ...] = attrs.field(default=(), validator=_check_delete)
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        writer.push_u8(self.protocol_id)
        writer.push_u8(self.spi_size)
        writer.push_u16(len(self.spis))
        for spi in self.spis:
            writer.push_bytes(spi)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        spi_size_at = reader.position + 1
        count_at = spi_size_at + 1
        protocol_id, spi_size, count = reader.pull(_DELETE_HEAD)
        protocol_id = _protocol_id(protocol_id)
        if protocol_id == ProtocolId.IKE and spi_size != 0:
            raise reader.error(
                f"SPI Size {spi_size} in an IKE SA Delete, must be 0 (RFC 7296 §3.11)", offset=spi_size_at
            )
        if protocol_id == ProtocolId.IKE and count != 0:
            raise reader.error(
                f"Num of SPIs {count} in an IKE SA Delete, must be 0 (RFC 7296 §3.11)", offset=count_at
            )
        if protocol_id in (ProtocolId.AH, ProtocolId.ESP) and spi_size != 4:
            raise reader.error(
                f"SPI Size {spi_size} for {protocol_id.name}, must be 4 (RFC 7296 §3.11)", offset=spi_size_at
            )
        if count * spi_size != reader.remaining:
            raise reader.error(
                f"Num of SPIs {count} x SPI Size {spi_size} = {count * spi_size} octets, "
                f"but {reader.remaining} follow",
                offset=count_at,
            )
        spis = tuple(reader.pull_bytes(spi_size, "SPI") for _ in range(count))
        return cls(protocol_id, spi_size, spis, critical=header.critical)


@attrs.frozen
class VendorIdPayload:
    """Vendor ID payload (RFC 7296 §3.12)."""

    payload_type: ClassVar[PayloadType] = PayloadType.VENDOR
    data: bytes = attrs.field(validator=_octets())
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        writer.push_bytes(self.data)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        return cls(reader.pull_rest(), critical=header.critical)


# --- traffic selectors (RFC 7296 §3.13) --------------------------------------------------------

_TS_ADDRESS_SIZE = {TsType.TS_IPV4_ADDR_RANGE: 4, TsType.TS_IPV6_ADDR_RANGE: 16}

_PORTS = (("H", "Start Port"), ("H", "End Port"))
#: For each parsed TS Type: its Selector Length, the fields after that length, the address class.
_TS_RANGE_FORMS: dict[TsType, tuple[int, Layout, type[IPAddress]]] = {
    TsType.TS_IPV4_ADDR_RANGE: (
        16,
        Layout(*_PORTS, ("4s", "Starting Address"), ("4s", "Ending Address")),
        ipaddress.IPv4Address,
    ),
    TsType.TS_IPV6_ADDR_RANGE: (
        40,
        Layout(*_PORTS, ("16s", "Starting Address"), ("16s", "Ending Address")),
        ipaddress.IPv6Address,
    ),
}
_SELECTOR_HEAD = Layout(("B", "TS Type"), ("B", "IP Protocol ID"), ("H", "Selector Length"))
_TS_HEAD = Layout(("B", "Number of TSs"), ("3x", "RESERVED"))


_ADDRESS_CLASSES = (ipaddress.IPv4Address, ipaddress.IPv6Address)


def _check_start_address(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``attrs.validators.instance_of((IPv4Address, IPv6Address))``, with its error."""
    if not isinstance(value, _ADDRESS_CLASSES):
        raise TypeError(
            f"'{attribute.name}' must be {_ADDRESS_CLASSES!r} (got {value!r} that is a {value.__class__!r}).",
            attribute,
            _ADDRESS_CLASSES,
            value,
        )


def _check_end_address(instance: TrafficSelector, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, _ADDRESS_CLASSES):
        raise TypeError("end_address must be an IPv4Address or IPv6Address")
    if value.version != instance.start_address.version:
        raise ValueError("start_address and end_address must be of the same IP version")


@attrs.frozen
class TrafficSelector:
    """A TS_IPV4_ADDR_RANGE or TS_IPV6_ADDR_RANGE selector (RFC 7296 §3.13.1).

    The TS Type follows from the addresses' version.  Ports are not ordered:
    start 65535 / end 0 means OPAQUE.  ICMP type and code travel in the ports.
    """

    ip_protocol: IpProtocol = attrs.field(converter=_to_ip_protocol, validator=_uint(8))
    start_port: int = attrs.field(validator=_uint(16))
    end_port: int = attrs.field(validator=_uint(16))
    start_address: IPAddress = attrs.field(validator=_check_start_address)
    end_address: IPAddress = attrs.field(validator=_check_end_address)

    @property
    def ts_type(self) -> TsType:
        if self.start_address.version == 4:
            return TsType.TS_IPV4_ADDR_RANGE
        return TsType.TS_IPV6_ADDR_RANGE

    def encode(self, writer: Writer) -> None:
        start, end = self.start_address.packed, self.end_address.packed
        writer.push_u8(self.ts_type)
        writer.push_u8(self.ip_protocol)
        writer.push_u16(8 + 2 * len(start))
        writer.push_u16(self.start_port)
        writer.push_u16(self.end_port)
        writer.push_bytes(start)
        writer.push_bytes(end)


@attrs.frozen
class OpaqueTrafficSelector:
    """A selector of a TS Type this codec does not parse, kept for round trips.

    ``type_octet`` is the octet after TS Type (IP Protocol ID for types 7 and 8,
    reserved for TS_SECLABEL); ``data`` is everything after Selector Length.
    """

    ts_type: TsType = attrs.field(converter=_to_ts_type, validator=_uint(8))
    data: bytes = attrs.field(validator=_octets(max_size=0xFFFF - 4))
    type_octet: int = attrs.field(default=0, validator=_uint(8))

    def __attrs_post_init__(self) -> None:
        if self.ts_type in _TS_ADDRESS_SIZE:
            raise ValueError(f"{self.ts_type.name} is parsed: use TrafficSelector")

    def encode(self, writer: Writer) -> None:
        writer.push_u8(self.ts_type)
        writer.push_u8(self.type_octet)
        writer.push_u16(4 + len(self.data))
        writer.push_bytes(self.data)


AnyTrafficSelector: TypeAlias = TrafficSelector | OpaqueTrafficSelector


def _decode_selector(reader: Reader) -> AnyTrafficSelector:
    length_at = reader.position + 2
    ts_type, type_octet, length = reader.pull(_SELECTOR_HEAD)
    ts_type = _ts_type(ts_type)
    form = _TS_RANGE_FORMS.get(ts_type)
    if form is not None and length != form[0]:
        raise reader.error(
            f"Selector Length {length} for {ts_type.name}, must be {form[0]}", offset=length_at
        )
    if length < 4:
        raise reader.error(f"Selector Length {length} is below the 4-octet minimum", offset=length_at)
    if length - 4 > reader.remaining:
        raise reader.error(
            f"Selector Length {length} runs past the end of the payload ({reader.remaining + 4} octets left)",
            offset=length_at,
        )
    if form is None:
        return OpaqueTrafficSelector(ts_type, reader.pull_bytes(length - 4, "selector"), type_octet)
    _, rest, address = form  # the rest fits: Selector Length is exact and within the payload
    start_port, end_port, start, end = reader.pull(rest)
    return TrafficSelector(type_octet, start_port, end_port, address(start), address(end))


@attrs.frozen
class _TsPayload:
    """Traffic Selector payload body: count, 3 RESERVED octets, selectors (RFC 7296 §3.13)."""

    payload_type: ClassVar[PayloadType]
    selectors: tuple[AnyTrafficSelector, ...] = attrs.field(
        validator=_tuple_of((TrafficSelector, OpaqueTrafficSelector), min_size=1, max_size=255)
    )
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        writer.push_u8(len(self.selectors))
        writer.push_bytes(bytes(3))
        for selector in self.selectors:
            selector.encode(writer)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        count_at = reader.position
        (count,) = reader.pull(_TS_HEAD)
        if count == 0:
            raise reader.error("Number of TSs is 0; a TS payload holds one or more", offset=count_at)
        selectors: list[AnyTrafficSelector] = []
        for index in range(count):
            if reader.at_end():
                raise reader.error(
                    f"Number of TSs is {count} but the payload ends after {index}", offset=count_at
                )
            selectors.append(_decode_selector(reader))
        if not reader.at_end():
            raise reader.error(f"{reader.remaining} octets follow the last of {count} traffic selectors")
        return cls(tuple(selectors), critical=header.critical)


@attrs.frozen
class TsiPayload(_TsPayload):
    """TSi: selectors for the initiator's end (RFC 7296 §3.13)."""

    payload_type: ClassVar[PayloadType] = PayloadType.TSi


@attrs.frozen
class TsrPayload(_TsPayload):
    """TSr: selectors for the responder's end (RFC 7296 §3.13)."""

    payload_type: ClassVar[PayloadType] = PayloadType.TSr


# --- Encrypted payloads (RFC 7296 §3.14, RFC 7383 §2.5) ---------------------------------------


@attrs.frozen
class EncryptedPayload:
    """The Encrypted payload SK, still protected (RFC 7296 §3.14).

    ``first_inner_payload`` is the generic header's Next Payload field (the type
    of the first inner payload); ``body`` is IV || ciphertext || ICV, opened by
    :mod:`responder.core.sk_payload`.  It is always the last payload.
    """

    payload_type: ClassVar[PayloadType] = PayloadType.SK
    first_inner_payload: PayloadType = attrs.field(converter=_to_payload_type, validator=_uint(8))
    body: bytes = attrs.field(validator=_octets())
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        writer.push_bytes(self.body)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        return cls(header.next_payload, reader.pull_rest(), critical=header.critical)


def _check_fragment(
    instance: EncryptedFragmentPayload, _attribute: attrs.Attribute[Any], total: object
) -> None:
    if not isinstance(total, int) or not instance.fragment_number <= total <= 0xFFFF:
        raise ValueError(
            "total_fragments must be at least fragment_number and fit in 16 bits (RFC 7383 §2.5)"
        )
    if instance.fragment_number != 1 and instance.first_inner_payload != PayloadType.NONE:
        raise ValueError("only fragment 1 names the first inner payload (RFC 7383 §2.5)")


_SKF_HEAD = Layout(("H", "Fragment Number"), ("H", "Total Fragments"))


@attrs.frozen
class EncryptedFragmentPayload:
    """The Encrypted Fragment payload SKF, still protected (RFC 7383 §2.5).

    ``first_inner_payload`` is non-zero only in fragment 1; ``body`` is
    IV || ciphertext || ICV.  Like SK, it is always the last payload.
    """

    payload_type: ClassVar[PayloadType] = PayloadType.SKF
    first_inner_payload: PayloadType = attrs.field(converter=_to_payload_type, validator=_uint(8))
    fragment_number: int = attrs.field(validator=[_uint(16), attrs.validators.ge(1)])
    total_fragments: int = attrs.field(validator=_check_fragment)
    body: bytes = attrs.field(validator=_octets())
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        writer.push_u16(self.fragment_number)
        writer.push_u16(self.total_fragments)
        writer.push_bytes(self.body)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        number_at = reader.position
        number, total = reader.pull(_SKF_HEAD)
        if number == 0:
            raise reader.error(
                "Fragment Number 0; fragments are numbered from 1 (RFC 7383 §2.5)", offset=number_at
            )
        if number > total:
            raise reader.error(
                f"Fragment Number {number} exceeds Total Fragments {total} (RFC 7383 §2.5)", offset=number_at
            )
        if number != 1 and header.next_payload != PayloadType.NONE:
            raise reader.error(
                f"Next Payload is {header.next_payload.name} in fragment {number}; "
                "only fragment 1 names the first inner payload (RFC 7383 §2.5)",
                offset=header.offset,
            )
        return cls(header.next_payload, number, total, reader.pull_rest(), critical=header.critical)


# --- Configuration payload (RFC 7296 §3.15) ----------------------------------------------------


_CONFIG_ATTRIBUTE_HEAD = Layout(("H", "Attribute Type"), ("H", "Length"))
_CONFIG_HEAD = Layout(("B", "CFG Type"), ("3x", "RESERVED"))


@attrs.frozen
class ConfigAttribute:
    """A configuration attribute (RFC 7296 §3.15.1); the reserved R bit is not kept.

    An empty ``value`` asks for the attribute in a CFG_REQUEST.
    """

    attribute_type: ConfigAttributeType = attrs.field(
        converter=_to_config_attribute_type, validator=_uint(15)
    )
    value: bytes = attrs.field(default=b"", validator=_octets(max_size=0xFFFF))

    def encode(self, writer: Writer) -> None:
        writer.push_u16(self.attribute_type)
        writer.push_u16(len(self.value))
        writer.push_bytes(self.value)

    @classmethod
    def decode(cls, reader: Reader) -> ConfigAttribute:
        length_at = reader.position + 2
        word, length = reader.pull(_CONFIG_ATTRIBUTE_HEAD)
        if length > reader.remaining:
            raise reader.error(
                f"attribute Length {length} runs past the end of the payload "
                f"({reader.remaining} octets left)",
                offset=length_at,
            )
        return cls(word & 0x7FFF, reader.pull_bytes(length, "Value"))


@attrs.frozen
class ConfigPayload:
    """Configuration payload CP (RFC 7296 §3.15)."""

    payload_type: ClassVar[PayloadType] = PayloadType.CP
    cfg_type: ConfigType = attrs.field(converter=_to_config_type, validator=_uint(8))
    attributes: tuple[ConfigAttribute, ...] = attrs.field(default=(), validator=_tuple_of(ConfigAttribute))
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        writer.push_u8(self.cfg_type)
        writer.push_bytes(bytes(3))
        for attribute in self.attributes:
            attribute.encode(writer)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        (cfg_type,) = reader.pull(_CONFIG_HEAD)
        attributes: list[ConfigAttribute] = []
        while not reader.at_end():
            attributes.append(ConfigAttribute.decode(reader))
        return cls(cfg_type, tuple(attributes), critical=header.critical)


# --- EAP payload (RFC 7296 §3.16) --------------------------------------------------------------


class EapCode(OpenIntEnum):
    """EAP Codes (RFC 3748 §4; RFC 6696 for 5 and 6)."""

    REQUEST = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4
    INITIATE = 5
    FINISH = 6


_eap_code = member_lookup(EapCode)


def _to_eap_code(value: int) -> EapCode:
    return _eap_code(value)


_EAP_WITH_TYPE = (EapCode.REQUEST, EapCode.RESPONSE)
_EAP_BARE = (EapCode.SUCCESS, EapCode.FAILURE)

_EAP_HEAD = Layout(("B", "Code"), ("B", "Identifier"), ("H", "Length"))


def _check_eap(instance: EapPayload, _attribute: attrs.Attribute[Any], data: object) -> None:
    if not isinstance(data, bytes):
        raise TypeError("data must be bytes")
    if instance.code in _EAP_WITH_TYPE and instance.eap_type is None:
        raise ValueError("an EAP Request or Response has a Type (RFC 7296 §3.16)")
    if instance.code not in _EAP_WITH_TYPE and instance.eap_type is not None:
        raise ValueError("only an EAP Request or Response has a Type; put other octets in data")
    if instance.code in _EAP_BARE and data:
        raise ValueError("an EAP Success or Failure is the 4-octet header alone (RFC 7296 §3.16)")


@attrs.frozen
class EapPayload:
    """EAP payload: one EAP message (RFC 7296 §3.16, RFC 3748 §4).

    ``eap_type`` is present exactly for Request (1) and Response (2); ``data`` is
    the Type-Data, or for codes other than 1-4 everything after the 4-octet EAP
    header.  The EAP Length is not stored: it must equal the payload's.
    """

    payload_type: ClassVar[PayloadType] = PayloadType.EAP
    code: EapCode = attrs.field(converter=_to_eap_code, validator=_uint(8))
    identifier: int = attrs.field(validator=_uint(8))
    eap_type: int | None = attrs.field(default=None, validator=attrs.validators.optional(_uint(8)))
    data: bytes = attrs.field(default=b"", validator=_check_eap)
    critical: bool = _critical()

    def encode_body(self, writer: Writer) -> None:
        writer.push_u8(self.code)
        writer.push_u8(self.identifier)
        writer.push_u16(4 + (self.eap_type is not None) + len(self.data), "EAP Length")
        if self.eap_type is not None:
            writer.push_u8(self.eap_type)
        writer.push_bytes(self.data)

    @classmethod
    def decode_body(cls, reader: Reader, header: PayloadHeader) -> Self:
        length_at = reader.position + 2
        code, identifier, length = reader.pull(_EAP_HEAD)
        code = _eap_code(code)
        if length != reader.remaining + 4:
            raise reader.error(
                f"EAP Length {length} differs from the {reader.remaining + 4} octets the payload holds "
                "(RFC 7296 §3.16)",
                offset=length_at,
            )
        if code in _EAP_WITH_TYPE:
            if length < 5:
                raise reader.error(f"EAP {code.name} of Length {length} has no Type octet", offset=length_at)
            eap_type = reader.pull_u8("Type")
            return cls(code, identifier, eap_type, reader.pull_rest(), critical=header.critical)
        if code in _EAP_BARE and length != 4:
            raise reader.error(
                f"EAP {code.name} of Length {length}, must be 4 (RFC 7296 §3.16)", offset=length_at
            )
        return cls(code, identifier, None, reader.pull_rest(), critical=header.critical)


# --- payloads of types the codec does not parse ------------------------------------------------

KnownPayload: TypeAlias = (
    SaPayload
    | KePayload
    | IdiPayload
    | IdrPayload
    | CertPayload
    | CertReqPayload
    | AuthPayload
    | NoncePayload
    | NotifyPayload
    | DeletePayload
    | VendorIdPayload
    | TsiPayload
    | TsrPayload
    | EncryptedPayload
    | ConfigPayload
    | EapPayload
    | EncryptedFragmentPayload
)

KNOWN_PAYLOAD_CLASSES: dict[PayloadType, type[KnownPayload]] = {
    cls.payload_type: cls
    for cls in (
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
    )
}


def _check_opaque_type(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or not 1 <= value <= 0xFF:
        raise ValueError(f"payload_type must be in 1..255, got {value!r}")
    if value in KNOWN_PAYLOAD_CLASSES:
        raise ValueError(f"{PayloadType(value).name} is parsed by the codec: use its class")


@attrs.frozen
class OpaquePayload:
    """A payload of a type this codec does not parse, received without the critical bit.

    It is kept whole so it re-encodes unchanged (RFC 7296 §2.5, §3.2).  There is
    no ``critical`` field: an unknown critical payload fails decoding with
    UNSUPPORTED_CRITICAL_PAYLOAD, so a kept one never has the bit.
    """

    payload_type: PayloadType = attrs.field(converter=_to_payload_type, validator=_check_opaque_type)
    data: bytes = attrs.field(validator=_octets())

    @property
    def critical(self) -> bool:
        return False

    def encode_body(self, writer: Writer) -> None:
        writer.push_bytes(self.data)


Payload: TypeAlias = KnownPayload | OpaquePayload
