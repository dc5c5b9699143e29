"""Every decoding error: its class, the notify it answers with, its offset and payload type.

Inputs are written by hand.  In a message the first payload starts at offset 28
(generic header 28..31, body from 32); offsets below are absolute.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from responder.core.enums import NotifyType, PayloadType
from responder.core.errors import DecodeError, InvalidMajorVersion, UnsupportedCriticalPayload
from responder.core.messages import (
    MAX_PAYLOADS,
    VendorIdPayload,
    decode_header,
    decode_message,
    decode_payload,
    decode_payloads,
)

SPIS = bytes.fromhex("0123456789abcdef") + bytes(8)


def message(first: int, chain: str, *, version: int = 0x20, length_delta: int = 0) -> bytes:
    """An IKE_SA_INIT request around ``chain`` (hex), with a correct Length unless told otherwise."""
    body = bytes.fromhex(chain)
    length = 28 + len(body) + length_delta
    return SPIS + bytes([first, version, 34, 0x08]) + bytes(4) + length.to_bytes(4, "big") + body


SA, KE, IDI, AUTH, CERT, NONCE, NOTIFY, DELETE, TSI, SK, CP, EAP, SKF = (
    PayloadType.SA,
    PayloadType.KE,
    PayloadType.IDi,
    PayloadType.AUTH,
    PayloadType.CERT,
    PayloadType.NONCE,
    PayloadType.NOTIFY,
    PayloadType.DELETE,
    PayloadType.TSi,
    PayloadType.SK,
    PayloadType.CP,
    PayloadType.EAP,
    PayloadType.SKF,
)
T_LAST = "00 00 00 08 01 00 00 0c"  # transform ENCR AES_CBC, Last Substruc 0
T_MORE = "03 00 00 08 01 00 00 0c"  # the same with Last Substruc 3
P_ONE = "00 00 00 10 01 01 00 01" + T_LAST  # a 16-octet IKE proposal with one transform
TS_V4 = "07 00 00 10 00 00 ff ff 00 00 00 00 ff ff ff ff"

Syntax = (DecodeError, NotifyType.INVALID_SYNTAX)
Version = (InvalidMajorVersion, NotifyType.INVALID_MAJOR_VERSION)
Critical = (UnsupportedCriticalPayload, NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD)

# (id, input, (class, notify), offset, payload type, fragment of the reason)
MESSAGE_ERRORS: list[
    tuple[str, bytes, tuple[type[DecodeError], NotifyType], int, PayloadType | None, str]
] = [
    # IKE header (RFC 7296 §3.1)
    ("empty", b"", Syntax, 0, None, "needs 28 octets, only 0"),
    ("truncated-header", message(0, "")[:27], Syntax, 0, None, "needs 28 octets, only 27"),
    ("major-version-1", message(0, "", version=0x10), Version, 17, None, "major version 1"),
    ("major-version-3", message(0, "", version=0x30), Version, 17, None, "major version 3"),
    ("header-length-below-28", message(0, "", length_delta=-8), Syntax, 24, None, "Length 20 is shorter"),
    ("header-length-beyond-data", message(0, "", length_delta=4), Syntax, 24, None, "Length 32 differs"),
    ("header-length-short-of-data", message(0, "ff ff ff ff", length_delta=-4), Syntax, 24, None, "differs"),
    # generic payload header and chain (RFC 7296 §3.2)
    ("generic-header-truncated", message(NONCE, "00 00"), Syntax, 28, NONCE, "needs 4 octets, only 2"),
    ("payload-length-below-4", message(NONCE, "00 00 00 03 ff ff"), Syntax, 30, NONCE, "Payload Length 3"),
    (
        "payload-length-beyond-message",
        message(NONCE, "00 00 00 20 01 02 03 04"),
        Syntax,
        30,
        NONCE,
        "runs past",
    ),
    (
        "second-payload-length-beyond-message",
        message(NOTIFY, "28 00 00 08 00 00 40 04 00 00 00 ff"),
        Syntax,
        38,
        NONCE,
        "Payload Length 255 runs past",
    ),
    ("next-payload-missing", message(NONCE, "29 00 00 08 01 02 03 04"), Syntax, 36, NOTIFY, "needs 4 octets"),
    (
        "octets-after-last-payload",
        message(NONCE, "00 00 00 08 01 02 03 04 ff ff"),
        Syntax,
        36,
        NONCE,
        "2 octets",
    ),
    ("octets-after-empty-chain", message(0, "ff"), Syntax, 28, None, "1 octets follow the last payload"),
    # unknown payloads and the critical bit (RFC 7296 §2.5, §3.2)
    ("critical-unknown-payload", message(200, "00 80 00 05 aa"), Critical, 29, PayloadType(200), "critical"),
    (
        "critical-unknown-after-known",
        message(NONCE, "31 00 00 08 01 02 03 04 00 ff 00 04"),
        Critical,
        37,
        PayloadType.GSPM,
        "critical",
    ),
    # Encrypted payloads are last (RFC 7296 §3.14, RFC 7383 §2.5)
    ("sk-not-last", message(SK, "23 00 00 08 aa bb cc dd ee ff"), Syntax, 36, SK, "must be the last"),
    (
        "skf-not-last",
        message(SKF, "23 00 00 0c 00 01 00 02 aa bb cc dd 00"),
        Syntax,
        40,
        SKF,
        "must be the last",
    ),
    # SA payload, proposals, transforms, attributes (RFC 7296 §3.3)
    ("sa-empty", message(SA, "00 00 00 04"), Syntax, 32, SA, "no proposal"),
    (
        "proposal-last-substruc-1",
        message(SA, "00 00 00 14 01" + P_ONE[2:]),
        Syntax,
        32,
        SA,
        "Last Substruc is 1",
    ),
    (
        "proposal-more-but-sa-ends",
        message(SA, "00 00 00 14 02" + P_ONE[2:]),
        Syntax,
        32,
        SA,
        "SA payload ends",
    ),
    (
        "proposal-last-but-octets-follow",
        message(SA, "00 00 00 16" + P_ONE + "00 00"),
        Syntax,
        48,
        SA,
        "2 octets follow the proposal whose Last Substruc is 0",
    ),
    (
        "proposal-length-below-8",
        message(SA, "00 00 00 0c 00 00 00 07 01 01 00 01"),
        Syntax,
        34,
        SA,
        "Length 7",
    ),
    (
        "proposal-length-beyond-sa",
        message(SA, "00 00 00 14 00 00 00 20" + P_ONE[12:]),
        Syntax,
        34,
        SA,
        "runs past",
    ),
    (
        "proposal-spi-size-beyond-proposal",
        message(SA, "00 00 00 14 00 00 00 10 01 03 10 01" + T_LAST),
        Syntax,
        38,
        SA,
        "SPI Size 16",
    ),
    (
        "num-transforms-zero",
        message(SA, "00 00 00 14 00 00 00 10 01 01 00 00" + T_LAST),
        Syntax,
        39,
        SA,
        "is 0",
    ),
    (
        "num-transforms-beyond-proposal",
        message(SA, "00 00 00 14 00 00 00 10 01 01 00 02" + T_MORE),
        Syntax,
        39,
        SA,
        "Num Transforms is 2 but the proposal ends after 1",
    ),
    (
        "num-transforms-short-of-proposal",
        message(SA, "00 00 00 1c 00 00 00 18 01 01 00 01" + T_LAST + T_LAST),
        Syntax,
        48,
        SA,
        "8 octets follow the last of 1 transforms",
    ),
    (
        "transform-last-substruc-contradicts-count",
        message(SA, "00 00 00 1c 00 00 00 18 01 01 00 02" + T_LAST + T_LAST),
        Syntax,
        40,
        SA,
        "Last Substruc is 0, Num Transforms implies 3",
    ),
    (
        "transform-length-below-8",
        message(SA, "00 00 00 14 00 00 00 10 01 01 00 01 00 00 00 07 01 00 00 0c"),
        Syntax,
        42,
        SA,
        "Transform Length 7",
    ),
    (
        "transform-length-beyond-proposal",
        message(SA, "00 00 00 14 00 00 00 10 01 01 00 01 00 00 00 10 01 00 00 0c"),
        Syntax,
        42,
        SA,
        "Transform Length 16 runs past",
    ),
    (
        "key-length-in-tlv-format",
        message(SA, "00 00 00 1a 00 00 00 16 01 01 00 01 00 00 00 0e 01 00 00 0c 00 0e 00 02 01 00"),
        Syntax,
        48,
        SA,
        "Key Length attribute must use the TV format",
    ),
    (
        "attribute-length-beyond-transform",
        message(SA, "00 00 00 1a 00 00 00 16 01 01 00 01 00 00 00 0e 01 00 00 0c 00 10 00 05 01 00"),
        Syntax,
        50,
        SA,
        "Attribute Length 5",
    ),
    (
        "tv-attribute-truncated",
        message(SA, "00 00 00 16 00 00 00 12 01 01 00 01 00 00 00 0a 01 00 00 0c 80 0e"),
        Syntax,
        50,
        SA,
        "Attribute Value needs 2 octets",
    ),
    (
        "attribute-type-truncated",
        message(SA, "00 00 00 15 00 00 00 11 01 01 00 01 00 00 00 09 01 00 00 0c 80"),
        Syntax,
        48,
        SA,
        "Attribute Type needs 2 octets, only 1",
    ),
    # fixed-layout payloads cut short
    ("ke-truncated", message(KE, "00 00 00 07 00 13 00"), Syntax, 34, KE, "RESERVED needs 2 octets, only 1"),
    ("idi-empty-body", message(IDI, "00 00 00 04"), Syntax, 32, IDI, "ID Type needs 1 octet"),
    ("auth-truncated", message(AUTH, "00 00 00 06 02 00"), Syntax, 33, AUTH, "RESERVED needs 3 octets"),
    ("cert-empty-body", message(CERT, "00 00 00 04"), Syntax, 32, CERT, "Cert Encoding needs 1 octet"),
    # Notify (RFC 7296 §3.10)
    (
        "notify-spi-beyond-payload",
        message(NOTIFY, "00 00 00 0c 03 08 40 09 aa bb cc dd"),
        Syntax,
        33,
        NOTIFY,
        "SPI Size 8",
    ),
    (
        "notify-truncated",
        message(NOTIFY, "00 00 00 07 00 00 40"),
        Syntax,
        34,
        NOTIFY,
        "Notify Message Type needs",
    ),
    # Delete (RFC 7296 §3.11)
    (
        "delete-count-disagrees-with-length",
        message(DELETE, "00 00 00 10 03 04 00 03 11 11 11 11 22 22 22 22"),
        Syntax,
        34,
        DELETE,
        "Num of SPIs 3 x SPI Size 4 = 12 octets, but 8 follow",
    ),
    (
        "delete-ike-with-spi-size",
        message(DELETE, "00 00 00 08 01 04 00 00"),
        Syntax,
        33,
        DELETE,
        "SPI Size 4 in an IKE",
    ),
    (
        "delete-ike-with-spis",
        message(DELETE, "00 00 00 08 01 00 00 01"),
        Syntax,
        34,
        DELETE,
        "Num of SPIs 1 in an IKE",
    ),
    (
        "delete-esp-with-8-octet-spi",
        message(DELETE, "00 00 00 10 03 08 00 01 11 11 11 11 22 22 22 22"),
        Syntax,
        33,
        DELETE,
        "SPI Size 8 for ESP",
    ),
    # Traffic selectors (RFC 7296 §3.13)
    (
        "ts-ipv4-selector-length-20",
        message(TSI, "00 00 00 1c 01 00 00 00 07 00 00 14" + "00" * 16),
        Syntax,
        38,
        TSI,
        "Selector Length 20 for TS_IPV4_ADDR_RANGE, must be 16",
    ),
    (
        "ts-ipv6-selector-length-16",
        message(TSI, "00 00 00 18 01 00 00 00 08 00 00 10" + "00" * 12),
        Syntax,
        38,
        TSI,
        "must be 40",
    ),
    ("ts-count-zero", message(TSI, "00 00 00 08 00 00 00 00"), Syntax, 32, TSI, "Number of TSs is 0"),
    ("ts-count-too-large", message(TSI, "00 00 00 18 02 00 00 00" + TS_V4), Syntax, 32, TSI, "ends after 1"),
    (
        "ts-count-too-small",
        message(TSI, "00 00 00 28 01 00 00 00" + TS_V4 + TS_V4),
        Syntax,
        52,
        TSI,
        "16 octets follow the last of 1 traffic selectors",
    ),
    (
        "ts-selector-beyond-payload",
        message(TSI, "00 00 00 0c 01 00 00 00 0a 00 00 10"),
        Syntax,
        38,
        TSI,
        "Selector Length 16 runs past",
    ),
    (
        "ts-selector-length-below-4",
        message(TSI, "00 00 00 0c 01 00 00 00 0a 00 00 02"),
        Syntax,
        38,
        TSI,
        "below",
    ),
    # Configuration payload (RFC 7296 §3.15)
    (
        "cp-attribute-beyond-payload",
        message(CP, "00 00 00 0c 01 00 00 00 00 01 00 04"),
        Syntax,
        38,
        CP,
        "Length 4",
    ),
    (
        "cp-attribute-header-truncated",
        message(CP, "00 00 00 0b 01 00 00 00 00 01 00"),
        Syntax,
        38,
        CP,
        "Length needs",
    ),
    ("cp-truncated", message(CP, "00 00 00 06 01 00"), Syntax, 33, CP, "RESERVED needs 3 octets"),
    # EAP (RFC 7296 §3.16)
    (
        "eap-length-mismatch",
        message(EAP, "00 00 00 09 01 05 00 06 01"),
        Syntax,
        34,
        EAP,
        "EAP Length 6 differs",
    ),
    ("eap-success-with-type", message(EAP, "00 00 00 09 03 05 00 05 01"), Syntax, 34, EAP, "must be 4"),
    ("eap-request-without-type", message(EAP, "00 00 00 08 01 05 00 04"), Syntax, 34, EAP, "no Type octet"),
    ("eap-truncated", message(EAP, "00 00 00 06 01 05"), Syntax, 34, EAP, "Length needs 2 octets"),
    # Encrypted Fragment (RFC 7383 §2.5)
    ("skf-fragment-zero", message(SKF, "00 00 00 08 00 00 00 02"), Syntax, 32, SKF, "Fragment Number 0"),
    (
        "skf-number-above-total",
        message(SKF, "00 00 00 08 00 03 00 02"),
        Syntax,
        32,
        SKF,
        "exceeds Total Fragments 2",
    ),
    (
        "skf-later-fragment-names-inner",
        message(SKF, "23 00 00 08 00 02 00 02"),
        Syntax,
        28,
        SKF,
        "fragment 2",
    ),
    ("skf-truncated", message(SKF, "00 00 00 06 00 01"), Syntax, 34, SKF, "Total Fragments needs 2 octets"),
    # chain limit
    (
        "too-many-payloads",
        message(PayloadType.VENDOR, "2b 00 00 04" * MAX_PAYLOADS + "00 00 00 04"),
        Syntax,
        28 + 4 * MAX_PAYLOADS,
        PayloadType.VENDOR,
        f"more than {MAX_PAYLOADS} payloads",
    ),
]


def _check(
    decode: Callable[[], object],
    expected: tuple[type[DecodeError], NotifyType],
    offset: int,
    payload_type: PayloadType | None,
    reason: str,
) -> None:
    error_class, notify = expected
    with pytest.raises(DecodeError) as failure:
        decode()
    error = failure.value
    assert type(error) is error_class
    assert error.notify is notify
    assert error.offset == offset
    assert error.payload_type == payload_type
    assert reason in error.reason


@pytest.mark.parametrize(
    ("name", "data", "expected", "offset", "payload_type", "reason"),
    MESSAGE_ERRORS,
    ids=[row[0] for row in MESSAGE_ERRORS],
)
def test_message_error(
    name: str,
    data: bytes,
    expected: tuple[type[DecodeError], NotifyType],
    offset: int,
    payload_type: PayloadType | None,
    reason: str,
) -> None:
    _check(lambda: decode_message(data), expected, offset, payload_type, reason)


INNER_ERRORS: list[
    tuple[str, PayloadType, str, tuple[type[DecodeError], NotifyType], int, PayloadType, str]
] = [
    ("sk-inside-sk", SK, "00 00 00 08 aa bb cc dd", Syntax, 100, SK, "MUST NOT contain another"),
    ("skf-inside-sk", SKF, "00 00 00 08 00 01 00 01", Syntax, 100, SKF, "MUST NOT contain another"),
    (
        "sk-after-inner-payload",
        NONCE,
        "2e 00 00 05 01 00 00 00 04",
        Syntax,
        105,
        SK,
        "MUST NOT contain another",
    ),
    ("critical-unknown-inner", PayloadType(200), "00 80 00 04", Critical, 101, PayloadType(200), "critical"),
    ("inner-length-beyond", NONCE, "00 00 00 09 00", Syntax, 102, NONCE, "runs past"),
    ("inner-trailing-octets", NONCE, "00 00 00 04 00", Syntax, 104, NONCE, "1 octets follow"),
]


@pytest.mark.parametrize(
    ("name", "first", "chain", "expected", "offset", "payload_type", "reason"),
    INNER_ERRORS,
    ids=[row[0] for row in INNER_ERRORS],
)
def test_inner_chain_error_offsets_count_from_the_given_offset(
    name: str,
    first: PayloadType,
    chain: str,
    expected: tuple[type[DecodeError], NotifyType],
    offset: int,
    payload_type: PayloadType,
    reason: str,
) -> None:
    _check(
        lambda: decode_payloads(first, bytes.fromhex(chain), offset=100),
        expected,
        offset,
        payload_type,
        reason,
    )


def test_decode_header_errors() -> None:
    data = message(0, "")
    _check(lambda: decode_header(data[:27]), Syntax, 0, None, "needs 28 octets")
    _check(lambda: decode_header(data[:17] + b"\x00" + data[18:]), Version, 17, None, "major version 0")
    short = data[:24] + (27).to_bytes(4, "big")
    _check(lambda: decode_header(short), Syntax, 24, None, "Length 27 is shorter")


def test_decode_single_payload_refuses_trailing_octets() -> None:
    _check(
        lambda: decode_payload(NONCE, bytes.fromhex("00 00 00 05 01 ff"), offset=10),
        Syntax,
        15,
        NONCE,
        "1 octets",
    )


def test_critical_payload_error_names_the_payload_type_in_its_notify_data() -> None:
    with pytest.raises(UnsupportedCriticalPayload) as failure:
        decode_message(message(200, "00 80 00 05 aa"))
    assert failure.value.notify_data == b"\xc8"


def test_exactly_max_payloads_is_accepted() -> None:
    decoded = decode_message(message(PayloadType.VENDOR, "2b 00 00 04" * (MAX_PAYLOADS - 1) + "00 00 00 04"))
    assert decoded.payloads == (VendorIdPayload(b""),) * MAX_PAYLOADS


def test_critical_bit_on_a_known_payload_is_kept_not_refused() -> None:
    decoded = decode_message(message(NONCE, "00 80 00 05 01"))
    assert decoded.payloads[0].critical is True


def test_version_check_precedes_the_length_check() -> None:
    """RFC 7296 §2.5: a message of another major version is answered as such, whatever follows."""
    _check(lambda: decode_message(message(0, "", version=0x10, length_delta=99)), Version, 17, None, "major")


def test_decode_payload_of_type_none_is_a_decode_error() -> None:
    """RFC 7296 §3.2: Next Payload 0 ends the chain; asking for a payload of that type is an error."""
    from responder.core.messages import decode_payload

    with pytest.raises(DecodeError, match="names no payload") as caught:
        decode_payload(PayloadType.NONE, bytes(4), offset=40)
    assert caught.value.offset == 40
