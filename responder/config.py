"""The responder's configuration model: whom it accepts, with which algorithms and selectors.

Strategy: every piece of configuration is an ``@attrs.frozen`` value that checks
itself when built, so a ``Config`` that exists is a valid one and the core never
re-checks it.  Values are built in code here; a later TOML loader builds the
same objects.  Text forms follow strongSwan's conventions (proposal keywords
such as ``aes256gcm16-prfsha256-x25519``, identities such as ``@moon.example``
or ``C=CH, O=strongSwan, CN=moon``, selectors such as ``10.0.0.0/24[tcp/443]``)
so interop test configurations can be copied across; each ``parse`` has a
``__str__`` that parses back to an equal value.

Errors are :class:`ConfigError` (a ``ValueError``) whose ``field`` names the
offending field relative to the object being built (``"integrity"``,
``"children[1].name"``).  Containers prefix the paths they know, and a loader
wraps each construction in :func:`config_path` so a user sees
``peers[0].psk: empty secret``.

This module is imported by the sans-IO core, so it must not import trio,
socket, time or logging.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final, TypeAlias, TypeVar

import attrs

from responder.core.enums import EncrId, EsnId, IdType, IntegId, KeyExchangeId, PrfId
from responder.core.key_exchange import supported_methods
from responder.core.transforms import encryption, supported_encryption, supported_integrity, supported_prfs

__all__ = [
    "ANY_IPV4",
    "ANY_IPV6",
    "DEFAULT_ESP_PROPOSALS",
    "DEFAULT_IKE_PROPOSALS",
    "AddressPool",
    "ChildConfig",
    "ChildlessPolicy",
    "Config",
    "ConfigError",
    "EncryptionAlgorithm",
    "EspProposal",
    "IdPattern",
    "IdPatternKind",
    "Identity",
    "IkeProposal",
    "Limits",
    "Mode",
    "PeerConfig",
    "Secret",
    "TrafficSelectorPolicy",
    "algorithm_name",
    "config_path",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
#: An encryption transform and its Key Length attribute in bits (``None`` when it takes none).
EncryptionAlgorithm: TypeAlias = tuple[EncrId, int | None]


# ---------------------------------------------------------------------------
# Errors and validators
# ---------------------------------------------------------------------------


class ConfigError(ValueError):
    """A configuration value is not acceptable.

    ``field`` is the path of the offending field (``"peers[0].psk"``), empty
    when the error concerns a whole value (a text that does not parse);
    ``message`` says what is wrong with it.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field

    def within(self, prefix: str) -> ConfigError:
        """The same error seen from a container: ``prefix`` is put in front of the path."""
        if not self.field:
            path = prefix
        elif self.field.startswith("["):
            path = prefix + self.field
        else:
            path = f"{prefix}.{self.field}"
        return ConfigError(self.message, path)


@contextlib.contextmanager
def config_path(prefix: str) -> Iterator[None]:
    """Prefix the field path of any :class:`ConfigError` raised inside the block.

    ``with config_path("peers[0].psk"): Secret.parse(text)`` turns
    ``empty secret`` into ``peers[0].psk: empty secret``.
    """
    try:
        yield
    except ConfigError as exc:
        raise exc.within(prefix) from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _instance_of(kind: type | tuple[type, ...], what: str) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ConfigError(f"expected {what}, got {type(value).__name__}", attribute.name)

    return check


def _optional_instance_of(kind: type | tuple[type, ...], what: str) -> Any:
    inner = _instance_of(kind, what)

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            inner(instance, attribute, value)

    return check


def _tuple_of(kind: type | tuple[type, ...], what: str, *, min_size: int = 0) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple):
            raise ConfigError(f"expected a tuple of {what}, got {type(value).__name__}", attribute.name)
        for index, item in enumerate(value):
            if not isinstance(item, kind) or isinstance(item, bool):
                raise ConfigError(f"expected {what}, got {type(item).__name__}", f"{attribute.name}[{index}]")
        if len(value) < min_size:
            raise ConfigError(f"needs at least {min_size} {what}", attribute.name)

    return check


def _check_name(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"expected a string, got {type(value).__name__}", attribute.name)
    if not value:
        raise ConfigError("empty name", attribute.name)
    if any(char.isspace() or not char.isprintable() for char in value):
        raise ConfigError(f"name {value!r} holds whitespace or control characters", attribute.name)


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(f"expected a number, got {type(value).__name__}", attribute.name)
    if not value > 0:
        raise ConfigError(f"must be positive, got {value}", attribute.name)


def _check_text(text: object) -> None:
    """Configuration text must be a string that UTF-8 can carry (argv may hold lone surrogates)."""
    if not isinstance(text, str):
        raise ConfigError(f"expected a string, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{text!r} holds characters UTF-8 cannot encode") from None


def _ascii_number(text: str) -> int | None:
    """A decimal number written in ASCII digits (``int()`` also takes other scripts' digits)."""
    if text.isascii() and text.isdigit() and len(text) <= 10:
        return int(text)
    return None


def _positive_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not _is_int(value):
        raise ConfigError(f"expected an integer, got {type(value).__name__}", attribute.name)
    _positive(instance, attribute, value)


def _duplicates(items: Iterable[object]) -> list[int]:
    """Indexes of items equal to an earlier one."""
    seen: list[object] = []
    found: list[int] = []
    for index, item in enumerate(items):
        if item in seen:
            found.append(index)
        else:
            seen.append(item)
    return found


# ---------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------


def _check_secret(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bytes):
        raise ConfigError(f"expected bytes, got {type(value).__name__}")
    if not value:
        raise ConfigError("empty secret")


@attrs.frozen(repr=False)
class Secret:
    """A pre-shared key (RFC 7296 §2.15); its octets never appear in a repr or a log line."""

    value: bytes = attrs.field(validator=_check_secret)

    def __repr__(self) -> str:
        return "<secret>"

    def __str__(self) -> str:
        return "<secret>"

    @classmethod
    def parse(cls, text: str) -> Secret:
        """A secret from configuration text.

        ``0x`` followed by an even number of hex digits gives those octets,
        ``0s`` followed by base64 gives the decoded octets (both strongSwan
        conventions); any other text is taken as its UTF-8 octets, of any
        length, without a terminating NUL (RFC 7296 §2.15: ASCII secrets of 64
        octets and more MUST work).  A text secret that itself begins with
        ``0x`` or ``0s`` must be written in hex.
        """
        _check_text(text)
        if not isinstance(text, str):
            raise ConfigError(f"expected a string, got {type(text).__name__}")
        prefix, rest = text[:2].lower(), text[2:]
        if prefix == "0x":
            if not rest:
                raise ConfigError("'0x' is not followed by hex digits")
            if len(rest) % 2:
                raise ConfigError(f"odd number of hex digits ({len(rest)}) after '0x'")
            try:
                return cls(bytes.fromhex(rest))
            except ValueError:
                raise ConfigError("not a hex string after '0x'") from None
        if prefix == "0s":
            try:
                value = base64.b64decode(rest, validate=True)
            except binascii.Error:
                raise ConfigError("not valid base64 after '0s'") from None
            if not value:
                raise ConfigError("empty secret")
            return cls(value)
        return cls(text.encode("utf-8"))


# ---------------------------------------------------------------------------
# Distinguished names (ID_DER_ASN1_DN), in strongSwan's text form
# ---------------------------------------------------------------------------

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
_DnAttribute: TypeAlias = tuple[str, int, bytes]
_Dn: TypeAlias = tuple[tuple[_DnAttribute, ...], ...]


class _DerError(Exception):
    pass


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + body


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
    if pos + 2 > len(data):
        raise _DerError("truncated")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise _DerError("bad length")
        size = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        size = first
    if pos + size > len(data):
        raise _DerError("truncated")
    return tag, data[pos : pos + size], pos + size


def _dotted(body: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for octet in body:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise _DerError("empty OID")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs[1:])


def _dn_decode(der: bytes) -> _Dn:
    """The RDNs of a DER Name (SEQUENCE OF SET OF SEQUENCE {OID, string}); raises _DerError."""
    tag, body, end = _der_read(der, 0)
    if tag != 0x30 or end != len(der):
        raise _DerError("not a SEQUENCE")
    rdns: list[tuple[_DnAttribute, ...]] = []
    pos = 0
    while pos < len(body):
        tag, rdn_body, pos = _der_read(body, pos)
        if tag != 0x31:
            raise _DerError("RDN is not a SET")
        attributes: list[_DnAttribute] = []
        inner = 0
        while inner < len(rdn_body):
            tag, pair, inner = _der_read(rdn_body, inner)
            if tag != 0x30:
                raise _DerError("attribute is not a SEQUENCE")
            oid_tag, oid_body, after = _der_read(pair, 0)
            value_tag, value, after = _der_read(pair, after)
            if oid_tag != 0x06 or after != len(pair):
                raise _DerError("bad attribute")
            attributes.append((_dotted(oid_body), value_tag, value))
        if not attributes:
            raise _DerError("empty RDN")
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


def _dn_from_text(text: str) -> bytes:
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


def _dn_text(rdns: _Dn) -> str:
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


def _dn_values_equal(ours: _DnAttribute, theirs: _DnAttribute) -> bool:
    """strongSwan's comparison: OIDs equal, values equal, case-insensitive for printable and e-mail."""
    oid, tag, value = ours
    other_oid, other_tag, other_value = theirs
    if oid != other_oid:
        return False
    if tag == other_tag and (tag == _PRINTABLE_STRING or (tag == _IA5_STRING and oid == _EMAIL_OID)):
        return value.lower() == other_value.lower()
    return value == other_value


def _dn_match(pattern: bytes, candidate: bytes, *, wildcards: bool) -> bool:
    if pattern == candidate:
        return True
    try:
        ours, theirs = _dn_decode(pattern), _dn_decode(candidate)
    except _DerError:
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


# ---------------------------------------------------------------------------
# Identities and identity patterns (RFC 7296 §3.5)
# ---------------------------------------------------------------------------

_TYPED_PREFIXES: Final = {
    "fqdn:": IdType.ID_FQDN,
    "dns:": IdType.ID_FQDN,
    "email:": IdType.ID_RFC822_ADDR,
    "rfc822:": IdType.ID_RFC822_ADDR,
    "userfqdn:": IdType.ID_RFC822_ADDR,
    "ipv4:": IdType.ID_IPV4_ADDR,
    "ipv6:": IdType.ID_IPV6_ADDR,
    "asn1dn:": IdType.ID_DER_ASN1_DN,
    "dn:": IdType.ID_DER_ASN1_DN,
    "keyid:": IdType.ID_KEY_ID,
}


def _text_id(id_type: IdType, text: str, original: str) -> Identity:
    if not text:
        raise ConfigError(f"identity {original!r} has no name")
    if any(char.isspace() or not char.isprintable() for char in text):
        raise ConfigError(f"identity {original!r} holds whitespace or control characters")
    return Identity(id_type, text.encode("utf-8"))


def _address_id(id_type: IdType, text: str, original: str) -> Identity:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError(f"identity {original!r}: {text!r} is not an IP address") from None
    if (id_type is IdType.ID_IPV4_ADDR) != (address.version == 4):
        raise ConfigError(f"identity {original!r}: address is not IPv{4 if address.version == 6 else 6}")
    return Identity.from_address(address)


def _key_id(text: str, original: str) -> Identity:
    digits = text.removeprefix("#").removeprefix("0x")
    if not digits or len(digits) % 2:
        raise ConfigError(f"identity {original!r}: a key ID is an even, non-zero number of hex digits")
    try:
        return Identity(IdType.ID_KEY_ID, bytes.fromhex(digits))
    except ValueError:
        raise ConfigError(f"identity {original!r}: key ID is not hex") from None


def _typed_id(id_type: IdType, text: str, original: str) -> Identity:
    if id_type in (IdType.ID_FQDN, IdType.ID_RFC822_ADDR):
        return _text_id(id_type, text, original)
    if id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
        return _address_id(id_type, text, original)
    if id_type is IdType.ID_DER_ASN1_DN:
        return Identity(IdType.ID_DER_ASN1_DN, _dn_from_text(text))
    return _key_id(text, original)


@attrs.frozen
class Identity:
    """An IKE identity: ID Type and Identification Data as they travel (RFC 7296 §3.5).

    No syntax check is made on ``data``: an ``Identity`` may hold what a peer
    sent, and the state machine checks ID payloads itself.
    """

    id_type: IdType = attrs.field(converter=IdType, validator=_instance_of(IdType, "an IdType"))
    data: bytes = attrs.field(validator=_instance_of(bytes, "bytes"))

    @classmethod
    def from_address(cls, address: IPAddress) -> Identity:
        """ID_IPV4_ADDR or ID_IPV6_ADDR for ``address`` (e.g. the local address a request came to)."""
        id_type = IdType.ID_IPV4_ADDR if address.version == 4 else IdType.ID_IPV6_ADDR
        return cls(id_type, address.packed)

    @classmethod
    def parse(cls, text: str) -> Identity:
        """An identity in strongSwan's notation.

        * ``@name`` or a bare host name: ID_FQDN (without the ``@``);
        * ``user@host`` (or ``@@user@host``): ID_RFC822_ADDR;
        * an IPv4 or IPv6 literal: ID_IPV4_ADDR / ID_IPV6_ADDR (packed);
        * ``C=CH, O=strongSwan, CN=moon``: ID_DER_ASN1_DN, DER RDNs in the
          order written (see :func:`_dn_from_text`);
        * ``keyid:HEX`` (also ``keyid:#HEX``): ID_KEY_ID;
        * a type prefix forces the type: ``fqdn:``, ``email:``/``rfc822:``,
          ``ipv4:``, ``ipv6:``, ``dn:``/``asn1dn:``, ``keyid:``.
        """
        _check_text(text)
        if not isinstance(text, str):
            raise ConfigError(f"expected a string, got {type(text).__name__}")
        stripped = text.strip()
        if not stripped:
            raise ConfigError("empty identity")
        if stripped.lower().startswith("%any"):
            raise ConfigError(f"{stripped!r} matches any identity: it is a pattern, not an identity")
        lowered = stripped.lower()
        for prefix, id_type in _TYPED_PREFIXES.items():
            if lowered.startswith(prefix):
                return _typed_id(id_type, stripped[len(prefix) :].strip(), text)
        if stripped.startswith("@#"):
            return _key_id(stripped[2:], text)
        if stripped.startswith("@@"):
            return _text_id(IdType.ID_RFC822_ADDR, stripped[2:], text)
        if stripped.startswith("@"):
            return _text_id(IdType.ID_FQDN, stripped[1:], text)
        try:
            return cls.from_address(ipaddress.ip_address(stripped))
        except ValueError:
            pass
        if "=" in stripped:
            return cls(IdType.ID_DER_ASN1_DN, _dn_from_text(stripped))
        if "@" in stripped:
            return _text_id(IdType.ID_RFC822_ADDR, stripped, text)
        return _text_id(IdType.ID_FQDN, stripped, text)

    def __str__(self) -> str:
        """Human-readable form for logs; for the types :meth:`parse` reads, it parses back."""
        if self.id_type in (IdType.ID_FQDN, IdType.ID_RFC822_ADDR):
            text = self.data.decode("utf-8", "backslashreplace")
            try:
                unambiguous = Identity.parse(text) == self
            except ConfigError:
                unambiguous = False
            if unambiguous:
                return text
            return ("fqdn:" if self.id_type is IdType.ID_FQDN else "email:") + text
        if self.id_type is IdType.ID_IPV4_ADDR and len(self.data) == 4:
            return str(ipaddress.IPv4Address(self.data))
        if self.id_type is IdType.ID_IPV6_ADDR and len(self.data) == 16:
            return str(ipaddress.IPv6Address(self.data))
        if self.id_type is IdType.ID_DER_ASN1_DN:
            try:
                return _dn_text(_dn_decode(self.data))
            except _DerError:
                return f"(invalid DN) {self.data.hex()}"
        if self.id_type is IdType.ID_KEY_ID:
            return f"keyid:{self.data.hex()}"
        if self.id_type is IdType.ID_NULL and not self.data:
            return "%null"
        return f"{self.id_type.name}:{self.data.hex()}"


class IdPatternKind(enum.Enum):
    """How an :class:`IdPattern` matches."""

    #: ``%any``: every identity.
    ANY = "any"
    #: One identity, compared as strongSwan does (FQDN case-insensitively, DNs by RDN).
    EXACT = "exact"
    #: ``*.example.org``: ID_FQDN names ending in ``.example.org``.
    FQDN_SUFFIX = "fqdn-suffix"
    #: ``*@example.org``: ID_RFC822_ADDR addresses in the domain ``example.org``.
    RFC822_DOMAIN = "rfc822-domain"
    #: A DN some of whose RDN values are ``*`` (``C=CH, O=strongSwan, CN=*``).
    DN_WILDCARD = "dn-wildcard"


def _check_pattern(instance: IdPattern, _attribute: attrs.Attribute[Any], suffix: object) -> None:
    if not isinstance(suffix, str):
        raise ConfigError(f"expected a string, got {type(suffix).__name__}", "suffix")
    needs_identity = instance.kind in (IdPatternKind.EXACT, IdPatternKind.DN_WILDCARD)
    if needs_identity != (instance.identity is not None):
        raise ConfigError(
            f"{instance.kind.name} pattern {'needs' if needs_identity else 'takes no'} identity"
        )
    needs_suffix = instance.kind in (IdPatternKind.FQDN_SUFFIX, IdPatternKind.RFC822_DOMAIN)
    if needs_suffix != bool(suffix):
        raise ConfigError(f"{instance.kind.name} pattern {'needs' if needs_suffix else 'takes no'} suffix")
    if suffix != suffix.lower():
        raise ConfigError("suffix must be lower case", "suffix")


def _fold_rfc822(data: bytes) -> bytes:
    local, at, domain = data.rpartition(b"@")
    return local + at + domain.lower() if at else data.lower()


@attrs.frozen
class IdPattern:
    """Which peer identities a :class:`PeerConfig` applies to; build it with :meth:`parse`."""

    kind: IdPatternKind = attrs.field(validator=_instance_of(IdPatternKind, "an IdPatternKind"))
    identity: Identity | None = attrs.field(
        default=None, validator=_optional_instance_of(Identity, "an Identity")
    )
    suffix: str = attrs.field(default="", validator=_check_pattern)

    @classmethod
    def parse(cls, text: str) -> IdPattern:
        """``%any``, ``*@domain``, ``*.domain``, a DN with ``*`` values, or one identity.

        ``*@example.org`` matches only ID_RFC822_ADDR identities of that
        domain, ``*.example.org`` only ID_FQDN names below it (not
        ``example.org`` itself).  Domains compare case-insensitively.
        """
        _check_text(text)
        if not isinstance(text, str):
            raise ConfigError(f"expected a string, got {type(text).__name__}")
        stripped = text.strip()
        if stripped.lower() == "%any":
            return cls(IdPatternKind.ANY)
        if stripped.startswith("*@"):
            domain = stripped[2:].lower()
            if not domain or "@" in domain or "*" in domain or any(c.isspace() for c in domain):
                raise ConfigError(f"pattern {text!r}: '*@' must be followed by a domain")
            return cls(IdPatternKind.RFC822_DOMAIN, suffix=domain)
        if stripped.startswith("*."):
            suffix = stripped[1:].lower()
            if len(suffix) < 2 or "*" in suffix or "@" in suffix or any(c.isspace() for c in suffix):
                raise ConfigError(f"pattern {text!r}: '*.' must be followed by a domain")
            return cls(IdPatternKind.FQDN_SUFFIX, suffix=suffix)
        identity = Identity.parse(stripped)
        if identity.id_type is IdType.ID_DER_ASN1_DN:
            rdns = _dn_decode(identity.data)
            if any(value == b"*" for rdn in rdns for _oid, _tag, value in rdn):
                return cls(IdPatternKind.DN_WILDCARD, identity)
            return cls(IdPatternKind.EXACT, identity)
        if "*" in stripped:
            raise ConfigError(
                f"pattern {text!r}: only '*@domain', '*.domain' and DN values '*' are wildcards"
            )
        return cls(IdPatternKind.EXACT, identity)

    @classmethod
    def any(cls) -> IdPattern:
        return cls(IdPatternKind.ANY)

    def matches(self, identity: Identity) -> bool:
        """Whether ``identity`` (typically the peer's IDi) is covered by this pattern."""
        if self.kind is IdPatternKind.ANY:
            return True
        if self.kind is IdPatternKind.FQDN_SUFFIX:
            name = identity.data.lower()
            suffix = self.suffix.encode("utf-8")
            return identity.id_type is IdType.ID_FQDN and name.endswith(suffix) and len(name) > len(suffix)
        if self.kind is IdPatternKind.RFC822_DOMAIN:
            _local, at, domain = identity.data.rpartition(b"@")
            return (
                identity.id_type is IdType.ID_RFC822_ADDR
                and bool(at)
                and domain.lower() == self.suffix.encode("utf-8")
            )
        assert self.identity is not None  # guaranteed by the validator
        ours = self.identity
        if identity.id_type is not ours.id_type:
            return False
        if ours.id_type is IdType.ID_DER_ASN1_DN:
            return _dn_match(ours.data, identity.data, wildcards=self.kind is IdPatternKind.DN_WILDCARD)
        if ours.id_type is IdType.ID_FQDN:
            return ours.data.lower() == identity.data.lower()
        if ours.id_type is IdType.ID_RFC822_ADDR:
            return _fold_rfc822(ours.data) == _fold_rfc822(identity.data)
        return ours.data == identity.data

    def __str__(self) -> str:
        if self.kind is IdPatternKind.ANY:
            return "%any"
        if self.kind is IdPatternKind.FQDN_SUFFIX:
            return f"*{self.suffix}"
        if self.kind is IdPatternKind.RFC822_DOMAIN:
            return f"*@{self.suffix}"
        return str(self.identity)


# ---------------------------------------------------------------------------
# Proposals (strongSwan keywords; RFC 7296 §3.3.2, RFC 8247)
# ---------------------------------------------------------------------------

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
            and (item[1] is None or _is_int(item[1]))
        ):
            raise ConfigError("expected (EncrId, key bits or None)", field)
        if not supported_encryption(*item):
            raise ConfigError(f"{algorithm_name(item)} is not supported", field)
    for index in _duplicates(value):
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
        for index in _duplicates(value):
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
    for index in _duplicates(tokens):
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
        _check_text(text)
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
        _check_text(text)
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


# ---------------------------------------------------------------------------
# Traffic selectors (RFC 7296 §3.13.1)
# ---------------------------------------------------------------------------

_PROTOCOL_NAMES: Final = {
    "icmp": 1,
    "igmp": 2,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "sctp": 132,
}
_PROTOCOL_OF_NUMBER: Final = {number: name for name, number in reversed(_PROTOCOL_NAMES.items())}


def _check_end_address(
    instance: TrafficSelectorPolicy, attribute: attrs.Attribute[Any], value: object
) -> None:
    if not isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise ConfigError(f"expected an IP address, got {type(value).__name__}", attribute.name)
    if value.version != instance.start_address.version:
        raise ConfigError("start and end addresses are of different IP versions", attribute.name)
    if int(value) < int(instance.start_address):
        raise ConfigError(f"{value} is below start_address {instance.start_address}", attribute.name)


def _uint(limit: int) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not _is_int(value) or not 0 <= value <= limit:  # type: ignore[operator]
            raise ConfigError(f"must be an integer in 0..{limit}, got {value!r}", attribute.name)

    return check


def _check_end_port(instance: TrafficSelectorPolicy, attribute: attrs.Attribute[Any], value: object) -> None:
    _uint(0xFFFF)(instance, attribute, value)
    assert isinstance(value, int)
    if value < instance.start_port:
        raise ConfigError(f"{value} is below start_port {instance.start_port}", attribute.name)
    if instance.ip_protocol == 0 and (instance.start_port, value) != (0, 0xFFFF):
        raise ConfigError(
            "ports need a protocol (RFC 7296 §3.13.1: protocol 0 means all ports)", "ip_protocol"
        )


def _parse_port_range(text: str, original: str) -> tuple[int, int]:
    if text in ("", "%any"):
        return 0, 0xFFFF
    low, dash, high = text.partition("-")
    start = _ascii_number(low)
    end = _ascii_number(high) if dash else start
    if start is None or end is None:
        raise ConfigError(f"selector {original!r}: port {text!r} is not a number or range")
    if not (0 <= start <= end <= 0xFFFF):
        raise ConfigError(f"selector {original!r}: port range {text!r} is not within 0..65535 and ordered")
    return start, end


@attrs.frozen
class TrafficSelectorPolicy:
    """A range of traffic a Child SA may carry: addresses, IP protocol (0 = any), ports.

    Policy ranges are always ordered; the OPAQUE port form (65535..0) is
    something only peers send.  ICMP type and code travel in the ports as one
    16-bit number (RFC 7296 §3.13.1); give them that way.
    """

    start_address: IPAddress = attrs.field(
        validator=_instance_of((ipaddress.IPv4Address, ipaddress.IPv6Address), "an IP address")
    )
    end_address: IPAddress = attrs.field(validator=_check_end_address)
    ip_protocol: int = attrs.field(default=0, validator=_uint(0xFF))
    start_port: int = attrs.field(default=0, validator=_uint(0xFFFF))
    end_port: int = attrs.field(default=0xFFFF, validator=_check_end_port)

    @property
    def version(self) -> int:
        return self.start_address.version

    @classmethod
    def any(cls, version: int) -> TrafficSelectorPolicy:
        """Every address of one IP version, any protocol and port."""
        return ANY_IPV4 if version == 4 else ANY_IPV6

    @classmethod
    def host(cls, address: IPAddress) -> TrafficSelectorPolicy:
        """One address, any protocol and port (a leased virtual IP, say)."""
        return cls(address, address)

    @classmethod
    def parse(cls, text: str) -> TrafficSelectorPolicy:
        """strongSwan's selector syntax.

        The address part is ``net/prefix`` (host bits must be zero), one
        address, or ``first-last``; an optional ``[proto]``, ``[proto/port]``
        or ``[proto/low-high]`` follows, where ``proto`` is a name (``tcp``,
        ``udp``, ``icmp``, ``icmpv6``, ...), a number or ``%any`` and the port
        may be ``%any``.
        """
        _check_text(text)
        if not isinstance(text, str):
            raise ConfigError(f"expected a string, got {type(text).__name__}")
        match = re.fullmatch(r"\s*([^\[\]\s]+)\s*(?:\[([^\]]*)\])?\s*", text)
        if match is None:
            raise ConfigError(f"selector {text!r} is not 'addresses' or 'addresses[proto/port]'")
        addresses, extra = match.group(1), match.group(2)
        try:
            if "/" in addresses:
                network = ipaddress.ip_network(addresses)
                start: IPAddress = network.network_address
                end: IPAddress = network.broadcast_address
            elif "-" in addresses:
                low, _dash, high = addresses.partition("-")
                start, end = ipaddress.ip_address(low), ipaddress.ip_address(high)
            else:
                start = end = ipaddress.ip_address(addresses)
        except ValueError as exc:
            raise ConfigError(f"selector {text!r}: {exc}") from None
        protocol, start_port, end_port = 0, 0, 0xFFFF
        if extra is not None:
            proto_text, _slash, port_text = extra.strip().partition("/")
            proto_text = proto_text.strip().lower()
            if proto_text in ("", "%any", "any"):
                protocol = 0
            elif proto_text in _PROTOCOL_NAMES:
                protocol = _PROTOCOL_NAMES[proto_text]
            elif (number := _ascii_number(proto_text)) is not None and number <= 0xFF:
                protocol = number
            else:
                raise ConfigError(f"selector {text!r}: unknown protocol {proto_text!r}")
            start_port, end_port = _parse_port_range(port_text.strip().lower(), text)
            if protocol == 0 and (start_port, end_port) != (0, 0xFFFF):
                raise ConfigError(f"selector {text!r}: a port needs a protocol")
        if start.version != end.version:
            raise ConfigError(f"selector {text!r}: range mixes IPv4 and IPv6")
        if int(end) < int(start):
            raise ConfigError(f"selector {text!r}: range runs backwards")
        return cls(start, end, protocol, start_port, end_port)

    def __str__(self) -> str:
        start, end = self.start_address, self.end_address
        if isinstance(start, ipaddress.IPv4Address) and isinstance(end, ipaddress.IPv4Address):
            networks: list[Any] = list(ipaddress.summarize_address_range(start, end))
        elif isinstance(start, ipaddress.IPv6Address) and isinstance(end, ipaddress.IPv6Address):
            networks = list(ipaddress.summarize_address_range(start, end))
        else:  # pragma: no cover - excluded by the validators
            networks = []
        text = str(networks[0]) if len(networks) == 1 else f"{start}-{end}"
        if self.ip_protocol == 0:
            return text
        proto = _PROTOCOL_OF_NUMBER.get(self.ip_protocol, str(self.ip_protocol))
        if (self.start_port, self.end_port) == (0, 0xFFFF):
            return f"{text}[{proto}]"
        ports = (
            str(self.start_port) if self.start_port == self.end_port else f"{self.start_port}-{self.end_port}"
        )
        return f"{text}[{proto}/{ports}]"


ANY_IPV4: Final = TrafficSelectorPolicy(ipaddress.IPv4Address(0), ipaddress.IPv4Address(2**32 - 1))
ANY_IPV6: Final = TrafficSelectorPolicy(
    ipaddress.IPv6Address("::"), ipaddress.IPv6Address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
)


# ---------------------------------------------------------------------------
# Address pools (RFC 7296 §2.19, §3.15)
# ---------------------------------------------------------------------------


def _check_pool_networks(instance: AddressPool, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, ipaddress.IPv6Network):
        raise ConfigError(f"expected an IPv6Network, got {type(value).__name__}", attribute.name)
    if instance.ipv4 is None and value is None:
        raise ConfigError("a pool needs an IPv4 or an IPv6 network", "ipv4")


@attrs.frozen
class AddressPool:
    """Virtual addresses leased through the Configuration payload (RFC 7296 §2.19).

    IPv4 pools skip the network and broadcast addresses (except /31 and
    /32), IPv6 pools the subnet-router anycast address (except /127 and /128);
    see :class:`responder.core.pool.PoolAllocator`.  ``dns`` servers are
    returned as INTERNAL_IP4_DNS / INTERNAL_IP6_DNS.
    """

    name: str = attrs.field(validator=_check_name)
    ipv4: ipaddress.IPv4Network | None = attrs.field(
        validator=_optional_instance_of(ipaddress.IPv4Network, "an IPv4Network")
    )
    ipv6: ipaddress.IPv6Network | None = attrs.field(validator=_check_pool_networks)
    dns: tuple[IPAddress, ...] = attrs.field(
        default=(), validator=_tuple_of((ipaddress.IPv4Address, ipaddress.IPv6Address), "IP addresses")
    )


# ---------------------------------------------------------------------------
# Children, peers, limits, the whole configuration
# ---------------------------------------------------------------------------


class Mode(enum.Enum):
    """Child SA encapsulation mode (RFC 7296 §1.3.1: tunnel unless USE_TRANSPORT_MODE is agreed)."""

    #: Tunnel mode (the default).
    TUNNEL = "tunnel"
    #: Transport mode, accepted when the initiator sends USE_TRANSPORT_MODE.
    TRANSPORT = "transport"


class ChildlessPolicy(enum.Enum):
    """Childless IKE SA initiation (RFC 6023), as the responder sees it (strongSwan's ``childless``)."""

    #: Announce CHILDLESS_IKEV2_SUPPORTED; accept IKE_AUTH with or without a Child SA.
    ALLOW = "allow"
    #: Announce it and accept only childless IKE_AUTH (a Child SA comes by CREATE_CHILD_SA).
    FORCE = "force"
    #: Do not announce it; an IKE_AUTH without SA/TS payloads is refused.
    NEVER = "never"


DEFAULT_ESP_PROPOSALS: Final = (
    EspProposal.parse("aes256gcm16-aes128gcm16-chacha20poly1305"),
    EspProposal.parse("aes256-sha256"),
)


def _check_selectors(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _tuple_of(TrafficSelectorPolicy, "TrafficSelectorPolicy", min_size=1)(_instance, attribute, value)


@attrs.frozen
class ChildConfig:
    """A Child SA the responder agrees to (RFC 7296 §1.3, §2.9).

    ``local_ts`` narrows TSr and ``remote_ts`` narrows TSi.  ``pool`` names an
    :class:`AddressPool` to lease virtual addresses from.  ``refuse=True``
    makes the responder refuse this child with TS_UNACCEPTABLE while keeping
    the IKE SA (a lab switch to exercise that error path).
    """

    name: str = attrs.field(validator=_check_name)
    mode: Mode = attrs.field(default=Mode.TUNNEL, validator=_instance_of(Mode, "a Mode"))
    local_ts: tuple[TrafficSelectorPolicy, ...] = attrs.field(
        default=(ANY_IPV4, ANY_IPV6), validator=_check_selectors
    )
    remote_ts: tuple[TrafficSelectorPolicy, ...] = attrs.field(
        default=(ANY_IPV4, ANY_IPV6), validator=_check_selectors
    )
    esp_proposals: tuple[EspProposal, ...] = attrs.field(
        default=DEFAULT_ESP_PROPOSALS, validator=_tuple_of(EspProposal, "EspProposal", min_size=1)
    )
    pool: str | None = attrs.field(default=None)
    refuse: bool = attrs.field(default=False, validator=_instance_of(bool, "a bool"))

    @pool.validator
    def _check_pool(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            _check_name(self, attribute, value)


def _check_children(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _tuple_of(ChildConfig, "ChildConfig", min_size=1)(_instance, attribute, value)
    assert isinstance(value, tuple)
    for index in _duplicates(child.name for child in value):
        raise ConfigError(f"duplicate child name {value[index].name!r}", f"{attribute.name}[{index}].name")


@attrs.frozen
class PeerConfig:
    """A peer (or a family of peers) the responder authenticates with a pre-shared key.

    ``local_id`` overrides :attr:`Config.local_id` for this peer.
    """

    name: str = attrs.field(validator=_check_name)
    remote_id: IdPattern = attrs.field(validator=_instance_of(IdPattern, "an IdPattern"))
    psk: Secret = attrs.field(validator=_instance_of(Secret, "a Secret"))
    local_id: Identity | None = attrs.field(
        default=None, validator=_optional_instance_of(Identity, "an Identity")
    )
    children: tuple[ChildConfig, ...] = attrs.field(
        default=(ChildConfig("default"),), validator=_check_children
    )

    def child(self, name: str) -> ChildConfig | None:
        """The child named ``name``, if any."""
        return next((child for child in self.children if child.name == name), None)


@attrs.frozen
class Limits:
    """Resource limits (RFC 7296 §2.6 for cookies).

    ``cookie_threshold`` is the number of half-open IKE SAs from which
    IKE_SA_INIT is answered with a COOKIE; 0 demands a cookie always.
    """

    half_open_max: int = attrs.field(default=1000, validator=_positive_int)
    half_open_timeout: float = attrs.field(default=30.0, validator=_positive)
    cookie_threshold: int = attrs.field(default=100)
    cookie_secret_lifetime: float = attrs.field(default=300.0, validator=_positive)
    ike_sa_max: int = attrs.field(default=10000, validator=_positive_int)

    @cookie_threshold.validator
    def _check_cookie_threshold(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if not _is_int(value) or value < 0:  # type: ignore[operator]
            raise ConfigError(f"must be an integer >= 0, got {value!r}", attribute.name)


DEFAULT_IKE_PROPOSALS: Final = (
    IkeProposal.parse(
        "aes256gcm16-aes128gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-modp2048"
    ),
    IkeProposal.parse("aes256-aes128-sha256-sha384-sha512-x25519-ecp256-ecp384-modp2048"),
)

#: Name of the synthetic peer :meth:`Config.find_peer` returns in lab mode.
LAB_PEER_NAME: Final = "%lab"


def _check_window(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not _is_int(value) or not 1 <= value <= 2**31:  # type: ignore[operator]
        raise ConfigError(f"must be an integer in 1..2^31, got {value!r}", attribute.name)


@attrs.frozen
class Config:
    """Everything the responder's core needs to decide (RFC 7296 §3.3.4: the suites it accepts).

    Peers are looked up by their IDi in configuration order: the first pattern
    that matches wins, so put exact identities before wildcards.  With
    ``any_id_psk`` set (lab mode) every identity no peer claims authenticates
    with that key and gets ``lab_children``.  With neither peers nor
    ``any_id_psk`` the responder answers IKE_SA_INIT but authenticates nobody.
    ``local_id`` ``None`` means: the address the request arrived on.
    ``prefer_initiator_order`` switches proposal selection from our order to
    the initiator's (see :mod:`responder.core.proposals`).
    """

    ike_proposals: tuple[IkeProposal, ...] = attrs.field(
        default=DEFAULT_IKE_PROPOSALS, validator=_tuple_of(IkeProposal, "IkeProposal", min_size=1)
    )
    peers: tuple[PeerConfig, ...] = attrs.field(default=(), validator=_tuple_of(PeerConfig, "PeerConfig"))
    any_id_psk: Secret | None = attrs.field(default=None, validator=_optional_instance_of(Secret, "a Secret"))
    lab_children: tuple[ChildConfig, ...] = attrs.field(
        default=(ChildConfig("default"),), validator=_check_children
    )
    local_id: Identity | None = attrs.field(
        default=None, validator=_optional_instance_of(Identity, "an Identity")
    )
    pools: tuple[AddressPool, ...] = attrs.field(default=(), validator=_tuple_of(AddressPool, "AddressPool"))
    prefer_initiator_order: bool = attrs.field(default=False, validator=_instance_of(bool, "a bool"))
    window_size: int = attrs.field(default=1, validator=_check_window)
    limits: Limits = attrs.field(factory=Limits, validator=_instance_of(Limits, "a Limits"))
    childless: ChildlessPolicy = attrs.field(
        default=ChildlessPolicy.ALLOW, validator=_instance_of(ChildlessPolicy, "a ChildlessPolicy")
    )

    def __attrs_post_init__(self) -> None:
        for index, peer in enumerate(self.peers):
            if peer.name.startswith("%"):
                raise ConfigError(
                    f"peer names starting with '%' are reserved: {peer.name!r}", f"peers[{index}].name"
                )
        for index in _duplicates(peer.name for peer in self.peers):
            raise ConfigError(f"duplicate peer name {self.peers[index].name!r}", f"peers[{index}].name")
        for index in _duplicates(pool.name for pool in self.pools):
            raise ConfigError(f"duplicate pool name {self.pools[index].name!r}", f"pools[{index}].name")
        pool_names = {pool.name for pool in self.pools}
        groups = [(f"peers[{i}].children", peer.children) for i, peer in enumerate(self.peers)]
        groups.append(("lab_children", self.lab_children))
        for path, children in groups:
            for index, child in enumerate(children):
                if child.pool is not None and child.pool not in pool_names:
                    raise ConfigError(f"no pool named {child.pool!r}", f"{path}[{index}].pool")

    @property
    def lab_peer(self) -> PeerConfig | None:
        """The catch-all peer of lab mode (``any_id_psk`` set), named ``%lab``."""
        if self.any_id_psk is None:
            return None
        return PeerConfig(LAB_PEER_NAME, IdPattern.any(), self.any_id_psk, children=self.lab_children)

    def find_peer(self, identity: Identity) -> PeerConfig | None:
        """The peer configuration for a peer's IDi.

        The first of :attr:`peers` whose ``remote_id`` matches, in
        configuration order; failing that, :attr:`lab_peer` (``None`` outside
        lab mode).
        """
        for peer in self.peers:
            if peer.remote_id.matches(identity):
                return peer
        return self.lab_peer

    def pool(self, name: str) -> AddressPool:
        """The pool named ``name``; ``KeyError`` if there is none (children's references are checked)."""
        for pool in self.pools:
            if pool.name == name:
                return pool
        raise KeyError(name)
