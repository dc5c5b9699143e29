"""IKE identities and the patterns peers are matched by (RFC 7296 §3.5, RFC 4945 §3.1).

Strategy: an :class:`Identity` is an ID Type and Identification Data exactly as
they travel in IDi/IDr payloads, so one may hold whatever a peer sent; its text
form is strongSwan's (``@moon.example``, ``alice@example.org``, ``192.0.2.1``,
``C=CH, O=strongSwan, CN=moon``, ``keyid:0102``).  An :class:`IdPattern` says
which identities a configured peer covers: ``%any``, ``*@domain``,
``*.domain``, a DN with ``*`` values, or one identity, compared as strongSwan
compares them (FQDNs and e-mail domains case-insensitively, DNs by RDN).
Parse errors are :class:`~responder.core.errors.ConfigError`.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
from typing import Any, Final, TypeAlias

import attrs

from responder.core.dn import DnError, dn_decode, dn_from_text, dn_match, dn_text
from responder.core.enums import IdType
from responder.core.errors import ConfigError
from responder.core.validation import check_text, instance_of, optional_instance_of

__all__ = ["IdPattern", "IdPatternKind", "Identity"]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


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
        return Identity(IdType.ID_DER_ASN1_DN, dn_from_text(text))
    return _key_id(text, original)


@attrs.frozen
class Identity:
    """An IKE identity: ID Type and Identification Data as they travel (RFC 7296 §3.5).

    No syntax check is made on ``data``: an ``Identity`` may hold what a peer
    sent, and the state machine checks ID payloads itself.
    """

    id_type: IdType = attrs.field(converter=IdType, validator=instance_of(IdType, "an IdType"))
    data: bytes = attrs.field(validator=instance_of(bytes, "bytes"))

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
          order written (see :func:`dn_from_text`);
        * ``keyid:HEX`` (also ``keyid:#HEX``): ID_KEY_ID;
        * a type prefix forces the type: ``fqdn:``, ``email:``/``rfc822:``,
          ``ipv4:``, ``ipv6:``, ``dn:``/``asn1dn:``, ``keyid:``.
        """
        check_text(text)
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
            return cls(IdType.ID_DER_ASN1_DN, dn_from_text(stripped))
        if "@" in stripped:
            return _text_id(IdType.ID_RFC822_ADDR, stripped, text)
        return _text_id(IdType.ID_FQDN, stripped, text)

    def __str__(self) -> str:
        """Human-readable form for logs; for the types :meth:`parse` reads, it parses back."""
        if self.id_type in (IdType.ID_FQDN, IdType.ID_RFC822_ADDR):
            if len(self.data) > _CACHED_TEXT_MAX:  # a peer's long junk ID is not kept
                return _text_form.__wrapped__(self.id_type, self.data)
            return _text_form(self.id_type, self.data)
        if self.id_type is IdType.ID_IPV4_ADDR and len(self.data) == 4:
            return str(ipaddress.IPv4Address(self.data))
        if self.id_type is IdType.ID_IPV6_ADDR and len(self.data) == 16:
            return str(ipaddress.IPv6Address(self.data))
        if self.id_type is IdType.ID_DER_ASN1_DN:
            try:
                return dn_text(dn_decode(self.data))
            except DnError:
                return f"(invalid DN) {self.data.hex()}"
        if self.id_type is IdType.ID_KEY_ID:
            return f"keyid:{self.data.hex()}"
        if self.id_type is IdType.ID_NULL and not self.data:
            return "%null"
        return f"{self.id_type.name}:{self.data.hex()}"


#: The longest ID data whose text form is cached (so the cache holds at most about 256 KiB).
_CACHED_TEXT_MAX: Final = 255


@functools.lru_cache(maxsize=1024)
def _text_form(id_type: IdType, data: bytes) -> str:
    """An ID_FQDN or ID_RFC822_ADDR as text, with a type prefix where :meth:`Identity.parse`
    would read the bare text as another identity.

    Cached: each IKE SA the responder establishes turns both IDs into text (its events and
    log lines) three times, and the parse that proves the text unambiguous costs about 22 us
    a time against 0.6 us from the cache: some 65 us per SA, 3% of the responder's CPU per
    PSK SA in bench/vs_strongswan.py (2026-12-02).  Peers reuse few IDs; 1,024 entries do.
    """
    text = data.decode("utf-8", "backslashreplace")
    try:
        unambiguous = Identity.parse(text) == Identity(id_type, data)
    except ConfigError:
        unambiguous = False
    if unambiguous:
        return text
    return ("fqdn:" if id_type is IdType.ID_FQDN else "email:") + text


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

    kind: IdPatternKind = attrs.field(validator=instance_of(IdPatternKind, "an IdPatternKind"))
    identity: Identity | None = attrs.field(
        default=None, validator=optional_instance_of(Identity, "an Identity")
    )
    suffix: str = attrs.field(default="", validator=_check_pattern)

    @classmethod
    def parse(cls, text: str) -> IdPattern:
        """``%any``, ``*@domain``, ``*.domain``, a DN with ``*`` values, or one identity.

        ``*@example.org`` matches only ID_RFC822_ADDR identities of that
        domain, ``*.example.org`` only ID_FQDN names below it (not
        ``example.org`` itself).  Domains compare case-insensitively.
        """
        check_text(text)
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
            rdns = dn_decode(identity.data)
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
            return dn_match(ours.data, identity.data, wildcards=self.kind is IdPatternKind.DN_WILDCARD)
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
