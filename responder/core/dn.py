"""Distinguished names (ID_DER_ASN1_DN, RFC 7296 §3.5) in DER and in strongSwan's text form.

Strategy: a DN travels as the DER encoding of an X.501 ``Name`` (a SEQUENCE OF
RDNs, each a SET OF attribute type and value).  Configuration writes it as
strongSwan does (``C=CH, O=strongSwan, CN=moon``: left to right is DER order,
the reverse of RFC 4514 strings), so :func:`dn_from_text` encodes exactly the
octets a strongSwan peer sends, and :func:`dn_match` compares the way
strongSwan does (printable and e-mail values case-insensitively; ``*`` values
as wildcards in patterns).  :func:`dn_decode` reads the DER back for logs and
matching; anything malformed raises :class:`DnError`.  A small DER reader and
writer of its own keeps this module free of ASN.1 dependencies; certificate
subjects (issue 10) come from ``cryptography`` instead.
"""

from __future__ import annotations

import re
from typing import Final, TypeAlias

from responder.core.der import DerError, der_read, der_tlv
from responder.core.errors import ConfigError

__all__ = ["Dn", "DnAttribute", "DnError", "dn_decode", "dn_from_text", "dn_match", "dn_text"]


_PRINTABLE_STRING: Final = 0x13
_UTF8_STRING: Final = 0x0C
_IA5_STRING: Final = 0x16
_PRINTABLE_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?"
)

# (names, first one printed; dotted OID; string type strongSwan encodes it with when printable)
_DN_ATTRIBUTES: Final[tuple[tuple[tuple[str, ...], str, int], ...]] = (
    (("CN",), "2.5.4.3", _PRINTABLE_STRING),
    (("C",), "2.5.4.6", _PRINTABLE_STRING),
    (("L",), "2.5.4.7", _PRINTABLE_STRING),
    (("ST",), "2.5.4.8", _PRINTABLE_STRING),
    (("STREET",), "2.5.4.9", _PRINTABLE_STRING),
    (("O",), "2.5.4.10", _PRINTABLE_STRING),
    (("OU",), "2.5.4.11", _PRINTABLE_STRING),
    (("T", "title"), "2.5.4.12", _PRINTABLE_STRING),
    (("D", "description"), "2.5.4.13", _PRINTABLE_STRING),
    (("serialNumber", "SN"), "2.5.4.5", _PRINTABLE_STRING),
    (("S", "surname"), "2.5.4.4", _PRINTABLE_STRING),
    (("G", "givenName"), "2.5.4.42", _PRINTABLE_STRING),
    (("I", "initials"), "2.5.4.43", _PRINTABLE_STRING),
    (("postalCode",), "2.5.4.17", _PRINTABLE_STRING),
    (("dnQualifier",), "2.5.4.46", _PRINTABLE_STRING),
    (("pseudonym",), "2.5.4.65", _PRINTABLE_STRING),
    (("DC",), "0.9.2342.19200300.100.1.25", _PRINTABLE_STRING),
    (("UID",), "0.9.2342.19200300.100.1.1", _PRINTABLE_STRING),
    (("E", "Email", "emailAddress"), "1.2.840.113549.1.9.1", _IA5_STRING),
)
_DN_BY_NAME: Final = {name.lower(): (oid, tag) for names, oid, tag in _DN_ATTRIBUTES for name in names}
_DN_NAME_OF_OID: Final = {oid: names[0] for names, oid, _tag in _DN_ATTRIBUTES}
_EMAIL_OID: Final = "1.2.840.113549.1.9.1"
_DOTTED_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")

#: One RDN attribute as (dotted OID, ASN.1 string tag, value octets); an RDN is a tuple of them.
DnAttribute: TypeAlias = tuple[str, int, bytes]
Dn: TypeAlias = tuple[tuple[DnAttribute, ...], ...]


class DnError(Exception):
    """The octets are not a well-formed DER Name."""


def _der(tag: int, body: bytes) -> bytes:
    return der_tlv(tag, body)


def _der_oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    if arcs[0] < 2 and arcs[1] >= 40:
        raise ConfigError(f"OID {dotted}: second arc must be below 40")
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _der(0x06, bytes(body))


def _der_read(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """One DER TLV at ``pos``: (tag, body, position after it)."""
    try:
        return der_read(data, pos)
    except DerError as error:
        raise DnError(str(error)) from None


def _dotted(body: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for octet in body:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise DnError("empty OID")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs[1:])


def dn_decode(der: bytes) -> Dn:
    """The RDNs of a DER Name (SEQUENCE OF SET OF SEQUENCE {OID, string}); raises DnError."""
    tag, body, end = _der_read(der, 0)
    if tag != 0x30 or end != len(der):
        raise DnError("not a SEQUENCE")
    rdns: list[tuple[DnAttribute, ...]] = []
    pos = 0
    while pos < len(body):
        tag, rdn_body, pos = _der_read(body, pos)
        if tag != 0x31:
            raise DnError("RDN is not a SET")
        attributes: list[DnAttribute] = []
        inner = 0
        while inner < len(rdn_body):
            tag, pair, inner = _der_read(rdn_body, inner)
            if tag != 0x30:
                raise DnError("attribute is not a SEQUENCE")
            oid_tag, oid_body, after = _der_read(pair, 0)
            value_tag, value, after = _der_read(pair, after)
            if oid_tag != 0x06 or after != len(pair):
                raise DnError("bad attribute")
            attributes.append((_dotted(oid_body), value_tag, value))
        if not attributes:
            raise DnError("empty RDN")
        rdns.append(tuple(attributes))
    return tuple(rdns)


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _strip_unescaped(value: str) -> str:
    """Strip surrounding whitespace, keeping a trailing space that is escaped (``\\ ``)."""
    value = value.lstrip()
    while value.endswith(" ") and not value[:-1].endswith("\\"):
        value = value[:-1]
    return value


def _unescape(value: str) -> str:
    """RFC 4514 §3 value unescaping: ``\\,`` and friends, and ``\\XX`` hex pairs (UTF-8)."""
    out = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char != "\\":
            out.extend(char.encode("utf-8"))
            index += 1
            continue
        pair = value[index + 1 : index + 3]
        if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
            out.append(int(pair, 16))
            index += 3
        elif index + 1 < len(value):
            out.extend(value[index + 1].encode("utf-8"))
            index += 2
        else:
            raise ConfigError(f"value {value!r} ends with a lone backslash")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"value {value!r} escapes octets that are not UTF-8") from None


def _escape(value: str) -> str:
    """RFC 4514 §2.4 escaping of one attribute value."""
    out = []
    for index, char in enumerate(value):
        if char in ',+"\\<>;' or (index == 0 and char in "# ") or (index == len(value) - 1 and char == " "):
            out.append("\\" + char)
        elif not char.isprintable():
            out.append("".join(f"\\{octet:02X}" for octet in char.encode("utf-8")))
        else:
            out.append(char)
    return "".join(out)


def dn_from_text(text: str) -> bytes:
    """DER of a strongSwan-style DN, RDNs in the order written (``C=CH, O=strongSwan, CN=moon``).

    strongSwan's left-to-right order is the DER order (RFC 4514 strings run the
    other way).  ``+`` joins attributes of one multi-valued RDN.  Strings are
    encoded as strongSwan does: PrintableString when the value allows it,
    UTF8String otherwise, IA5String for e-mail addresses, so a DN configured
    here equals, octet for octet, the one a strongSwan peer sends.
    """
    rdns: list[bytes] = []
    for part in _split_unescaped(text, ","):
        attributes: list[bytes] = []
        for item in _split_unescaped(part, "+"):
            name, equals, raw = item.partition("=")
            name = name.strip()
            if not equals or not name:
                raise ConfigError(f"RDN {item.strip()!r} is not of the form NAME=value")
            known = _DN_BY_NAME.get(name.lower())
            if known is not None:
                oid, tag = known
            elif _DOTTED_OID.fullmatch(name):
                oid, tag = name, _PRINTABLE_STRING
            else:
                raise ConfigError(f"unknown DN attribute {name!r}")
            value = _unescape(_strip_unescaped(raw))
            if not value:
                raise ConfigError(f"empty value for DN attribute {name!r}")
            if tag == _PRINTABLE_STRING and not set(value) <= _PRINTABLE_CHARS:
                tag = _UTF8_STRING
            if tag == _IA5_STRING and not value.isascii():
                tag = _UTF8_STRING
            attributes.append(_der(0x30, _der_oid(oid) + _der(tag, value.encode("utf-8"))))
        rdns.append(_der(0x31, b"".join(sorted(attributes))))  # DER orders a SET's members
    return _der(0x30, b"".join(rdns))


def dn_text(rdns: Dn) -> str:
    def value_text(tag: int, value: bytes) -> str:
        if tag == 0x1E:  # BMPString
            return value.decode("utf-16-be", "replace")
        return value.decode("utf-8", "replace")

    return ", ".join(
        "+".join(
            f"{_DN_NAME_OF_OID.get(oid, oid)}={_escape(value_text(tag, value))}" for oid, tag, value in rdn
        )
        for rdn in rdns
    )


def _dn_values_equal(ours: DnAttribute, theirs: DnAttribute) -> bool:
    """strongSwan's comparison: OIDs equal, values equal, case-insensitive for printable and e-mail."""
    oid, tag, value = ours
    other_oid, other_tag, other_value = theirs
    if oid != other_oid:
        return False
    if tag == other_tag and (tag == _PRINTABLE_STRING or (tag == _IA5_STRING and oid == _EMAIL_OID)):
        return value.lower() == other_value.lower()
    return value == other_value


def dn_match(pattern: bytes, candidate: bytes, *, wildcards: bool) -> bool:
    if pattern == candidate:
        return True
    try:
        ours, theirs = dn_decode(pattern), dn_decode(candidate)
    except DnError:
        return False
    if len(ours) != len(theirs):
        return False
    for rdn, other in zip(ours, theirs, strict=True):
        if len(rdn) != len(other):
            return False
        for attribute, other_attribute in zip(rdn, other, strict=True):
            if wildcards and attribute[2] == b"*" and attribute[0] == other_attribute[0]:
                continue
            if not _dn_values_equal(attribute, other_attribute):
                return False
    return True
