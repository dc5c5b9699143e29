"""The codec's fast paths give exactly what the plain paths they replace give.

``Reader.pull(layout)`` against field-by-field ``pull_*`` calls, ``member_lookup``
against ``Enum(value)``, and the hand-written validators against the
``attrs.validators`` they stand in for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from responder.core.buffer import Layout, Reader
from responder.core.enums import (
    ExchangeType,
    IntegId,
    NotifyType,
    OpenIntEnum,
    PayloadType,
    ProtocolId,
    member_lookup,
)
from responder.core.errors import DecodeError
from responder.core.messages import Header
from responder.core.payloads import NoncePayload, TrafficSelector

NOTIFY_HEAD = (("B", "Protocol ID"), ("B", "SPI Size"), ("H", "Notify Message Type"), ("3x", "RESERVED"))
PULLS: dict[str, Callable[[Reader, str], object]] = {
    "B": lambda reader, name: reader.pull_u8(name),
    "H": lambda reader, name: reader.pull_u16(name),
    "3x": lambda reader, name: reader.pull_bytes(3, name),
}


def _outcome(pull: Callable[[], object]) -> object:
    try:
        return pull()
    except DecodeError as error:
        return (type(error), error.reason, error.offset, error.payload_type)


@given(st.binary(max_size=10), st.integers(0, 100))
def test_layout_pull_equals_field_by_field_pulls(data: bytes, offset: int) -> None:
    together = Reader(data, offset=offset, payload_type=PayloadType.NOTIFY)
    one_by_one = Reader(data, offset=offset, payload_type=PayloadType.NOTIFY)

    def by_fields() -> object:
        values = [PULLS[code](one_by_one, name) for code, name in NOTIFY_HEAD]
        return tuple(value for value in values if not isinstance(value, bytes))

    expected = _outcome(by_fields)
    assert _outcome(lambda: together.pull(Layout(*NOTIFY_HEAD))) == expected
    if isinstance(expected, tuple) and expected and expected[0] is DecodeError:
        assert together.position == offset  # a failed pull consumes nothing
    else:
        assert together.position == one_by_one.position


def test_layout_short_read_names_the_first_field_that_does_not_fit() -> None:
    reader = Reader(b"\x00\x00\x01", offset=40, payload_type=PayloadType.NOTIFY)
    with pytest.raises(DecodeError) as failure:
        reader.pull(Layout(*NOTIFY_HEAD))
    assert failure.value.reason == "Notify Message Type needs 2 octets, only 1 remain"
    assert failure.value.offset == 42
    assert failure.value.payload_type is PayloadType.NOTIFY


def test_layout_reads_octet_strings_and_skips_reserved() -> None:
    reader = Reader(bytes.fromhex("0102 ffff c0000201"))
    assert reader.pull(Layout(("H", "a"), ("2x", "RESERVED"), ("4s", "b"))) == (0x0102, b"\xc0\x00\x02\x01")
    assert reader.at_end()


class Colour(OpenIntEnum):
    RED = 0
    GREEN = 1


@pytest.mark.parametrize(
    ("enum_class", "value"),
    [
        (Colour, 0),  # a member whose value is falsy
        (Colour, 1),
        (Colour, Colour.GREEN),
        (Colour, 7),  # unknown: a cached pseudo-member
        (Colour, 7.0),
        (Colour, True),  # bools are refused for unknown values, found for known ones
        (Colour, False),
        (Colour, True + 5),
        (Colour, 0x10000),
        (Colour, -1),
        (Colour, "1"),
        (Colour, None),
        (Colour, [1]),  # unhashable
        (PayloadType, PayloadType.SK),
        (PayloadType, 46),
        (NotifyType, IntegId.HMAC_SHA2_256_128),  # a member of another enum
        (ProtocolId, 200),
        (ExchangeType, 256),
    ],
)
def test_member_lookup_equals_the_enum_call(enum_class: type[OpenIntEnum], value: object) -> None:
    def outcome(convert: Callable[[object], object]) -> object:
        try:
            result = convert(value)
        except Exception as error:
            return type(error), str(error)
        return result, type(result), getattr(result, "name", None)

    lookup = member_lookup(enum_class)
    expected = outcome(enum_class)
    assert outcome(lookup) == expected  # type: ignore[arg-type]
    assert outcome(lookup) == expected  # type: ignore[arg-type]  # again: cached pseudo-members too
    if isinstance(expected, tuple) and isinstance(expected[0], enum_class):
        assert lookup(value) is expected[0]  # type: ignore[arg-type]


def test_converters_make_members_and_refuse_what_the_enum_refuses() -> None:
    header = Header(
        spi_i=bytes(8), spi_r=bytes(8), exchange_type=35, is_initiator=True, is_response=False, message_id=0
    )
    assert header.exchange_type is ExchangeType.IKE_AUTH
    with pytest.raises(ValueError):
        attrs.evolve(header, exchange_type="IKE_AUTH")


def _instance_of_error(
    cls: type, field: str, kind: type | tuple[type, ...], value: object
) -> tuple[object, ...]:
    with pytest.raises(TypeError) as failure:
        attrs.validators.instance_of(kind)(None, attrs.fields_dict(cls)[field], value)
    return failure.value.args


@pytest.mark.parametrize("value", [1, 0, None, "yes"])
def test_bool_validator_raises_what_instance_of_raises(value: object) -> None:
    with pytest.raises(TypeError) as failure:
        NoncePayload(b"", critical=value)  # type: ignore[arg-type]
    assert failure.value.args == _instance_of_error(NoncePayload, "critical", bool, value)


def test_start_address_validator_raises_what_instance_of_raises() -> None:
    end = ipaddress.IPv4Address("192.0.2.1")
    with pytest.raises(TypeError) as failure:
        TrafficSelector(0, 0, 65535, "192.0.2.0", end)  # type: ignore[arg-type]
    addresses = (ipaddress.IPv4Address, ipaddress.IPv6Address)
    assert failure.value.args == _instance_of_error(TrafficSelector, "start_address", addresses, "192.0.2.0")
