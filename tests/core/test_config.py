"""Tests of responder.config: every parser both ways, validation messages that name fields, lookups."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from responder.core.config import (
    ANY_IPV4,
    ANY_IPV6,
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    AddressPool,
    ChildConfig,
    ChildlessPolicy,
    Config,
    ConfigError,
    EspProposal,
    Identity,
    IdPattern,
    IdPatternKind,
    IkeProposal,
    Limits,
    Mode,
    PeerConfig,
    PskAuth,
    Secret,
    TrafficSelectorPolicy,
    algorithm_name,
    config_path,
)
from responder.core.enums import EncrId, EsnId, IdType, IntegId, KeyExchangeId, PrfId

# ---------------------------------------------------------------------------
# ConfigError and paths
# ---------------------------------------------------------------------------


def test_config_error_paths() -> None:
    assert str(ConfigError("bad")) == "bad"
    assert str(ConfigError("bad", "psk")) == "psk: bad"
    assert str(ConfigError("bad", "psk").within("peers[0]")) == "peers[0].psk: bad"
    assert str(ConfigError("bad", "[2].name").within("peers")) == "peers[2].name: bad"
    assert str(ConfigError("bad").within("pools[1]")) == "pools[1]: bad"
    assert isinstance(ConfigError("x"), ValueError)


def test_config_path_prefixes_errors() -> None:
    with pytest.raises(ConfigError, match=r"^peers\[0\]\.psk: empty secret$"), config_path("peers[0].psk"):
        Secret.parse("")
    # A loader nests one config_path per level it builds.
    with (
        pytest.raises(ConfigError, match=r"^peers\[0\]\.children\[0\]\.local_ts: needs at least 1"),
        config_path("peers[0]"),
        config_path("children[0]"),
    ):
        ChildConfig("c", local_ts=())


# ---------------------------------------------------------------------------
# Secret (RFC 7296 §2.15)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0x0102", b"\x01\x02"),
        ("0X0a0B", b"\x0a\x0b"),
        ("0sAQI=", b"\x01\x02"),
        ("abc", b"abc"),
        ("with spaces ", b"with spaces "),
        ("x" * 64, b"x" * 64),
        ("y" * 300, b"y" * 300),
        ("pässwörd", "pässwörd".encode()),
    ],
)
def test_secret_parse(text: str, value: bytes) -> None:
    assert Secret.parse(text).value == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty secret"),
        ("0x", "'0x' is not followed by hex digits"),
        ("0xabc", "odd number of hex digits"),
        ("0xzz", "not a hex string"),
        ("0s!!", "not valid base64"),
        ("0s", "empty secret"),
    ],
)
def test_secret_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Secret.parse(text)


def test_secret_never_shows_its_octets() -> None:
    secret = Secret(b"hunter2")
    assert repr(secret) == "<secret>"
    assert str(secret) == "<secret>"
    peer = PeerConfig("p", IdPattern.any(), secret)
    assert "hunter2" not in repr(peer)
    assert "hunter2" not in repr(Config(any_id_psk=secret))


def test_secret_type_checks() -> None:
    with pytest.raises(ConfigError, match="expected bytes"):
        Secret("text")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expected a string"):
        Secret.parse(b"x")  # type: ignore[arg-type]


@given(st.binary(min_size=1, max_size=80))
def test_secret_hex_round_trip(value: bytes) -> None:
    assert Secret.parse("0x" + value.hex()).value == value


@given(st.text(min_size=1, max_size=100).filter(lambda t: t[:2].lower() not in ("0x", "0s")))
def test_secret_text_is_its_utf8(text: str) -> None:
    assert Secret.parse(text).value == text.encode("utf-8")


# ---------------------------------------------------------------------------
# Identity (RFC 7296 §3.5), strongSwan notation
# ---------------------------------------------------------------------------

MOON_DN = bytes.fromhex(
    "3031310b300906035504061302434831133011060355040a130a7374726f6e675377616e310d300b060355040313046d6f6f6e"
)


@pytest.mark.parametrize(
    ("text", "id_type", "data"),
    [
        ("@moon.strongswan.org", IdType.ID_FQDN, b"moon.strongswan.org"),
        ("moon.strongswan.org", IdType.ID_FQDN, b"moon.strongswan.org"),
        ("  @moon  ", IdType.ID_FQDN, b"moon"),
        ("fqdn:192.0.2.1", IdType.ID_FQDN, b"192.0.2.1"),
        ("carol@strongswan.org", IdType.ID_RFC822_ADDR, b"carol@strongswan.org"),
        ("@@carol@strongswan.org", IdType.ID_RFC822_ADDR, b"carol@strongswan.org"),
        ("email:carol", IdType.ID_RFC822_ADDR, b"carol"),
        ("192.0.2.1", IdType.ID_IPV4_ADDR, bytes([192, 0, 2, 1])),
        ("ipv4:192.0.2.1", IdType.ID_IPV4_ADDR, bytes([192, 0, 2, 1])),
        ("2001:db8::1", IdType.ID_IPV6_ADDR, IPv6Address("2001:db8::1").packed),
        ("keyid:0a0b0c", IdType.ID_KEY_ID, b"\x0a\x0b\x0c"),
        ("keyid:#0A0B", IdType.ID_KEY_ID, b"\x0a\x0b"),
        ("@#0102", IdType.ID_KEY_ID, b"\x01\x02"),
        ("C=CH, O=strongSwan, CN=moon", IdType.ID_DER_ASN1_DN, MOON_DN),
        ("C=CH,O=strongSwan,CN=moon", IdType.ID_DER_ASN1_DN, MOON_DN),
        ("dn:c=CH, o=strongSwan, cn=moon", IdType.ID_DER_ASN1_DN, MOON_DN),
    ],
)
def test_identity_parse(text: str, id_type: IdType, data: bytes) -> None:
    identity = Identity.parse(text)
    assert identity == Identity(id_type, data)
    assert Identity.parse(str(identity)) == identity


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty identity"),
        ("   ", "empty identity"),
        ("%any", "it is a pattern"),
        ("@", "has no name"),
        ("@moon base", "whitespace"),
        ("keyid:abc", "even, non-zero number of hex digits"),
        ("keyid:", "even, non-zero number of hex digits"),
        ("keyid:zz", "not hex"),
        ("ipv4:2001:db8::1", "address is not IPv4"),
        ("ipv6:192.0.2.1", "address is not IPv6"),
        ("ipv4:moon", "is not an IP address"),
        ("XX=foo, CN=moon", "unknown DN attribute 'XX'"),
        ("CN=", "empty value"),
        ("CN=moon, oops", "not of the form NAME=value"),
        ("CN=moon\\", "lone backslash"),
    ],
)
def test_identity_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Identity.parse(text)


def test_dn_follows_strongswan_order_and_string_types() -> None:
    dn = Identity.parse("C=CH, O=strongSwan, CN=moon")
    # DER order = written order: C first, as strongSwan encodes "C=CH, O=strongSwan, CN=moon".
    assert dn.data.index(b"CH") < dn.data.index(b"strongSwan") < dn.data.index(b"moon")
    assert str(dn) == "C=CH, O=strongSwan, CN=moon"
    # PrintableString (0x13) unless the value needs UTF8String (0x0c); e-mail is IA5String (0x16).
    assert b"\x13\x04moon" in dn.data
    assert b"\x0c\x04m\xc3\xb6n" in Identity.parse("CN=mön").data
    assert b"\x0c\x03a_b" in Identity.parse("CN=a_b").data
    assert b"\x16\x07a@b.org" in Identity.parse("E=a@b.org").data


def test_dn_escapes_multivalued_rdns_and_oids() -> None:
    dn = Identity.parse(r"CN=Smith\, John, O=Acme+OU=Lab, 2.5.4.97=x")
    # The members of a multi-valued RDN are a DER SET: sorted by their encoding.
    assert str(dn) == r"CN=Smith\, John, OU=Lab+O=Acme, 2.5.4.97=x"
    assert Identity.parse(str(dn)) == dn
    assert str(Identity.parse(r"CN=a\2Cb")) == r"CN=a\,b"
    assert str(Identity.parse(r"CN=\ lead")) == r"CN=\ lead"
    assert str(Identity.parse("SN=42, serialNumber=43")) == "serialNumber=42, serialNumber=43"


def test_identity_str_names_the_type_when_the_text_alone_would_not() -> None:
    assert str(Identity.parse("fqdn:192.0.2.1")) == "fqdn:192.0.2.1"
    assert str(Identity.parse("email:carol")) == "email:carol"
    assert str(Identity(IdType.ID_FQDN, b"a@b")) == "fqdn:a@b"
    assert str(Identity(IdType.ID_RFC822_ADDR, b"C=CH")) == "email:C=CH"
    assert str(Identity.parse("carol@example.org")) == "carol@example.org"


def test_identity_str_of_what_peers_may_send() -> None:
    assert str(Identity(IdType.ID_DER_ASN1_DN, b"\x30\x05junk")) == "(invalid DN) 30056a756e6b"
    assert str(Identity(IdType.ID_IPV4_ADDR, b"\x01\x02")) == "ID_IPV4_ADDR:0102"
    assert str(Identity(IdType.ID_FQDN, b"a\xffb")) == "fqdn:a\\xffb"
    assert str(Identity(IdType.ID_NULL, b"")) == "%null"
    assert str(Identity(IdType.ID_DER_ASN1_GN, b"\x01")) == "ID_DER_ASN1_GN:01"
    assert str(Identity(IdType(200), b"\x01")) == "UNKNOWN_200:01"
    assert Identity.from_address(IPv4Address("192.0.2.7")) == Identity(
        IdType.ID_IPV4_ADDR, bytes([192, 0, 2, 7])
    )


_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)


@given(st.lists(_LABEL, min_size=2, max_size=4))
def test_fqdn_round_trip(labels: list[str]) -> None:
    name = ".".join(labels)
    if name.replace(".", "").isdigit():
        return  # could read as an address
    identity = Identity.parse("@" + name)
    assert identity == Identity(IdType.ID_FQDN, name.encode())
    assert Identity.parse(str(identity)) == identity


@given(st.text(min_size=1, max_size=20).filter(lambda t: t.strip() == t and "\x00" not in t))
def test_dn_value_round_trip(value: str) -> None:
    try:
        identity = Identity.parse("CN=" + value.replace("\\", "\\\\").replace(",", "\\,").replace("+", "\\+"))
    except ConfigError:
        return  # e.g. a value made only of characters stripped as whitespace
    assert Identity.parse(str(identity)) == identity


# ---------------------------------------------------------------------------
# IdPattern
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "identity", "expected"),
    [
        ("%any", "@moon", True),
        ("%ANY", "192.0.2.1", True),
        ("*@example.org", "carol@example.org", True),
        ("*@example.org", "carol@EXAMPLE.ORG", True),
        ("*@example.org", "carol@sub.example.org", False),
        ("*@example.org", "@example.org", False),
        ("*@example.org", "fqdn:carol@example.org", False),
        ("*.example.org", "@moon.example.org", True),
        ("*.example.org", "@MOON.Example.ORG", True),
        ("*.example.org", "@a.b.example.org", True),
        ("*.example.org", "@example.org", False),
        ("*.example.org", "@badexample.org", False),
        ("*.example.org", "carol@moon.example.org", False),
        ("@moon.example.org", "@Moon.Example.Org", True),
        ("@moon.example.org", "email:moon.example.org", False),
        ("Carol@Example.org", "Carol@example.ORG", True),
        ("Carol@Example.org", "carol@example.org", False),
        ("192.0.2.1", "192.0.2.1", True),
        ("192.0.2.1", "192.0.2.2", False),
        ("192.0.2.1", "fqdn:192.0.2.1", False),
        ("keyid:0102", "keyid:0102", True),
        ("keyid:0102", "@#0103", False),
        ("C=CH, O=strongSwan, CN=moon", "c=ch, o=STRONGSWAN, cn=MOON", True),
        ("C=CH, O=strongSwan, CN=moon", "C=CH, O=strongSwan, CN=sun", False),
        ("C=CH, O=strongSwan, CN=moon", "C=CH, O=strongSwan", False),
        ("C=CH, O=strongSwan, CN=moon", "O=strongSwan, C=CH, CN=moon", False),
        ("C=CH, O=strongSwan, CN=*", "C=CH, O=strongSwan, CN=carol", True),
        ("C=CH, O=strongSwan, CN=*", "C=CH, O=other, CN=carol", False),
        ("C=CH, O=strongSwan, CN=*", "C=CH, O=strongSwan, OU=x", False),
        ("E=a@b.org", "E=A@B.ORG", True),
        ("CN=a_b", "CN=A_B", False),  # UTF8String values compare exactly, as strongSwan does
    ],
)
def test_id_pattern_matches(pattern: str, identity: str, expected: bool) -> None:
    assert IdPattern.parse(pattern).matches(Identity.parse(identity)) is expected


def test_dn_pattern_matches_other_string_types() -> None:
    # The same DN with UTF8String values (as some CAs write it) matches ours.
    utf8 = (
        bytes(MOON_DN)
        .replace(b"\x13\x0astrongSwan", b"\x0c\x0astrongSwan")
        .replace(b"\x13\x04moon", b"\x0c\x04moon")
    )
    assert utf8 != MOON_DN
    assert IdPattern.parse("C=CH, O=strongSwan, CN=moon").matches(Identity(IdType.ID_DER_ASN1_DN, utf8))
    assert not IdPattern.parse("C=CH, O=strongSwan, CN=moon").matches(
        Identity(IdType.ID_DER_ASN1_DN, b"\x30")
    )


@pytest.mark.parametrize(
    ("text", "kind", "printed"),
    [
        ("%any", IdPatternKind.ANY, "%any"),
        ("*@Example.org", IdPatternKind.RFC822_DOMAIN, "*@example.org"),
        ("*.Example.org", IdPatternKind.FQDN_SUFFIX, "*.example.org"),
        ("@moon", IdPatternKind.EXACT, "moon"),
        ("C=CH, CN=*", IdPatternKind.DN_WILDCARD, "C=CH, CN=*"),
    ],
)
def test_id_pattern_parse_and_str(text: str, kind: IdPatternKind, printed: str) -> None:
    pattern = IdPattern.parse(text)
    assert pattern.kind is kind
    assert str(pattern) == printed
    assert IdPattern.parse(str(pattern)) == pattern


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("*@", "must be followed by a domain"),
        ("*@a@b", "must be followed by a domain"),
        ("*.", "must be followed by a domain"),
        ("*.a*", "must be followed by a domain"),
        ("foo*bar", "only '\\*@domain'"),
        ("", "empty identity"),
    ],
)
def test_id_pattern_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        IdPattern.parse(text)


def test_id_pattern_validation() -> None:
    with pytest.raises(ConfigError, match="EXACT pattern needs identity"):
        IdPattern(IdPatternKind.EXACT)
    with pytest.raises(ConfigError, match="suffix: suffix must be lower case"):
        IdPattern(IdPatternKind.FQDN_SUFFIX, suffix=".A")
    with pytest.raises(ConfigError, match="ANY pattern takes no suffix"):
        IdPattern(IdPatternKind.ANY, suffix="x")


# ---------------------------------------------------------------------------
# Proposals
# ---------------------------------------------------------------------------

GCM256 = (EncrId.AES_GCM_16, 256)
GCM128 = (EncrId.AES_GCM_16, 128)
CBC256 = (EncrId.AES_CBC, 256)
CBC128 = (EncrId.AES_CBC, 128)
CHACHA = (EncrId.CHACHA20_POLY1305, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "aes256gcm16-prfsha256-x25519",
            IkeProposal((GCM256,), (PrfId.HMAC_SHA2_256,), (), (KeyExchangeId.CURVE25519,)),
        ),
        (
            "AES256GCM16-PRFSHA256-CURVE25519",
            IkeProposal((GCM256,), (PrfId.HMAC_SHA2_256,), (), (KeyExchangeId.CURVE25519,)),
        ),
        (
            "aes256gcm128-aes128gcm-chacha20poly1305-prfsha384-ecp384-x448-mlkem768",
            IkeProposal(
                (GCM256, GCM128, CHACHA),
                (PrfId.HMAC_SHA2_384,),
                (),
                (KeyExchangeId.ECP_384, KeyExchangeId.CURVE448, KeyExchangeId.ML_KEM_768),
            ),
        ),
        (
            "aes256-sha256-modp2048",
            IkeProposal(
                (CBC256,), (PrfId.HMAC_SHA2_256,), (IntegId.HMAC_SHA2_256_128,), (KeyExchangeId.MODP_2048,)
            ),
        ),
        (
            "aes128-sha1-sha512-ecp521-modp3072",
            IkeProposal(
                (CBC128,),
                (PrfId.HMAC_SHA1, PrfId.HMAC_SHA2_512),
                (IntegId.HMAC_SHA1_96, IntegId.HMAC_SHA2_512_256),
                (KeyExchangeId.ECP_521, KeyExchangeId.MODP_3072),
            ),
        ),
        (
            "aes192-sha384-prfsha512-ecp256",
            IkeProposal(
                ((EncrId.AES_CBC, 192),),
                (PrfId.HMAC_SHA2_512,),
                (IntegId.HMAC_SHA2_384_192,),
                (KeyExchangeId.ECP_256,),
            ),
        ),
    ],
)
def test_ike_proposal_parse(text: str, expected: IkeProposal) -> None:
    proposal = IkeProposal.parse(text)
    assert proposal == expected
    assert IkeProposal.parse(str(proposal)) == proposal


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty algorithm name"),
        ("aes256--sha256", "empty algorithm name"),
        ("aes256gcm16-prfsha256", "key_exchange: needs at least 1"),
        ("aes256gcm16-x25519", "prf: needs at least 1 PRF"),
        ("x25519-prfsha256", "encryption: needs at least one"),
        ("aes256gcm16-sha256-prfsha256-x25519", "integrity: AEAD encryption takes no integrity"),
        ("aes256-prfsha256-x25519", "integrity: non-AEAD encryption needs an integrity algorithm"),
        ("aes256gcm16-aes256-sha256-x25519", "encryption: AEAD and non-AEAD"),
        ("aes192gcm16-prfsha256-x25519", r"encryption\[0\]: aes192gcm16 is not supported"),
        ("3des-sha256-x25519", r"encryption\[0\]: 3des is not supported"),
        ("aes256-sha256-modp1024", r"key_exchange\[0\]: modp1024 is not supported"),
        ("aes256-md5-prfsha256-x25519", r"integrity\[0\]: md5 is not supported"),
        ("aes256-sha256-prfmd5-x25519", r"prf\[0\]: prfmd5 is not supported"),
        ("aes256-sha256-rot13", "unknown algorithm 'rot13'"),
        ("aes256-aes256-sha256-x25519", "names 'aes256' twice"),
        ("aes256-sha256-x25519-esn", "ESP keyword"),
    ],
)
def test_ike_proposal_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        IkeProposal.parse(text)


def test_ike_proposal_constructor_errors_name_fields() -> None:
    with pytest.raises(ConfigError, match=r"^key_exchange\[0\]: NONE is not supported$"):
        IkeProposal((GCM256,), (PrfId.HMAC_SHA2_256,), (), (KeyExchangeId.NONE,))
    with pytest.raises(ConfigError, match=r"^encryption\[1\]: duplicate aes256gcm16$"):
        IkeProposal((GCM256, GCM256), (PrfId.HMAC_SHA2_256,), (), (KeyExchangeId.ECP_256,))
    with pytest.raises(ConfigError, match=r"^encryption\[0\]: expected \(EncrId"):
        IkeProposal(((20, 256),), (PrfId.HMAC_SHA2_256,), (), (KeyExchangeId.ECP_256,))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^prf\[0\]: expected a PrfId"):
        IkeProposal((GCM256,), (5,), (), (KeyExchangeId.ECP_256,))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^integrity: expected a tuple"):
        IkeProposal((GCM256,), (PrfId.HMAC_SHA2_256,), [], (KeyExchangeId.ECP_256,))  # type: ignore[arg-type]


def test_default_ike_proposals() -> None:
    aead, cbc = DEFAULT_IKE_PROPOSALS
    groups = (KeyExchangeId.CURVE25519, KeyExchangeId.ECP_256, KeyExchangeId.ECP_384, KeyExchangeId.MODP_2048)
    assert aead.is_aead and not cbc.is_aead
    assert aead.encryption == (GCM256, GCM128, CHACHA)
    assert aead.prf == (PrfId.HMAC_SHA2_256, PrfId.HMAC_SHA2_384, PrfId.HMAC_SHA2_512)
    assert aead.key_exchange == groups and cbc.key_exchange == groups
    assert cbc.encryption == (CBC256, CBC128)
    assert cbc.prf == aead.prf  # derived from sha256-sha384-sha512
    assert Config().ike_proposals == DEFAULT_IKE_PROPOSALS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aes256gcm16", EspProposal((GCM256,), ())),
        ("aes256gcm16-esn", EspProposal((GCM256,), (), (EsnId.ESN,))),
        ("aes256gcm16-noesn", EspProposal((GCM256,), (), (EsnId.NO_ESN,))),
        ("aes256gcm16-esn-noesn", EspProposal((GCM256,), (), (EsnId.ESN, EsnId.NO_ESN))),
        ("aes256gcm16-noesn-esn", EspProposal((GCM256,), (), (EsnId.NO_ESN, EsnId.ESN))),
        (
            "aes128-sha256-sha1-ecp256",
            EspProposal(
                (CBC128,),
                (IntegId.HMAC_SHA2_256_128, IntegId.HMAC_SHA1_96),
                key_exchange=(KeyExchangeId.ECP_256,),
            ),
        ),
        (
            "chacha20poly1305-x25519-esn",
            EspProposal((CHACHA,), (), (EsnId.ESN,), (KeyExchangeId.CURVE25519,)),
        ),
    ],
)
def test_esp_proposal_parse(text: str, expected: EspProposal) -> None:
    proposal = EspProposal.parse(text)
    assert proposal == expected
    assert EspProposal.parse(str(proposal)) == proposal


def test_esp_proposal_default_esn_accepts_both_preferring_no_esn() -> None:
    assert EspProposal.parse("aes256gcm16").esn == (EsnId.NO_ESN, EsnId.ESN)
    assert str(EspProposal.parse("aes256gcm16-noesn-esn")) == "aes256gcm16"
    assert str(EspProposal.parse("aes256gcm16-esn")) == "aes256gcm16-esn"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("aes256gcm16-prfsha256", "is a PRF"),
        ("aes256gcm16-sha256", "integrity: AEAD encryption takes no integrity"),
        ("aes256", "integrity: non-AEAD encryption needs"),
        ("aes256gcm16-esn-esn", "names 'esn' twice"),
        ("sha256", "encryption: needs at least one"),
        ("aes256gcm16-blowfish", "unknown algorithm 'blowfish'"),
        ("aes256gcm16-modp768", r"key_exchange\[0\]: modp768 is not supported"),
    ],
)
def test_esp_proposal_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EspProposal.parse(text)


def test_esp_proposal_constructor_errors() -> None:
    with pytest.raises(ConfigError, match=r"^esn: needs at least 1 ESN value$"):
        EspProposal((GCM256,), (), ())
    with pytest.raises(ConfigError, match=r"^esn\[0\]: UNKNOWN_7 is not supported$"):
        EspProposal((GCM256,), (), (EsnId(7),))


def test_algorithm_names() -> None:
    assert algorithm_name(GCM256) == "aes256gcm16"
    assert algorithm_name(CBC128) == "aes128"
    assert algorithm_name(CHACHA) == "chacha20poly1305"
    assert algorithm_name((EncrId.AES_GCM_8, 128)) == "AES_GCM_8-128"
    assert algorithm_name((EncrId.NULL, None)) == "null"  # strongSwan's keyword (ESP only)
    assert algorithm_name((EncrId.NULL_AUTH_AES_GMAC, None)) == "NULL_AUTH_AES_GMAC"
    assert algorithm_name(PrfId.HMAC_SHA2_256) == "prfsha256"
    assert algorithm_name(IntegId.HMAC_SHA1_96) == "sha1"
    assert algorithm_name(IntegId.NONE) == "NONE"
    assert algorithm_name(KeyExchangeId.CURVE25519) == "x25519"
    assert algorithm_name(KeyExchangeId.GOST3410_2012_256) == "GOST3410_2012_256"
    assert algorithm_name(EsnId.ESN) == "esn"


_IKE_AEAD = ["aes256gcm16", "aes128gcm16", "chacha20poly1305"]
_IKE_CBC = ["aes128", "aes192", "aes256"]
_INTEG = ["sha1", "sha256", "sha384", "sha512"]
_PRF = ["prfsha1", "prfsha256", "prfsha384", "prfsha512"]
_KE = ["x25519", "x448", "ecp256", "ecp384", "ecp521", "modp2048", "modp3072", "mlkem768"]


@given(
    st.booleans(),
    st.lists(st.sampled_from(_IKE_AEAD + _IKE_CBC), min_size=1, unique=True),
    st.lists(st.sampled_from(_INTEG), min_size=1, unique=True),
    st.lists(st.sampled_from(_PRF), unique=True),
    st.lists(st.sampled_from(_KE), min_size=1, unique=True),
)
def test_ike_proposal_text_round_trip(
    aead: bool, encryption: list[str], integrity: list[str], prfs: list[str], groups: list[str]
) -> None:
    encryption = [e for e in encryption if (e in _IKE_AEAD) == aead]
    if not encryption or (aead and not prfs):
        return
    tokens = encryption + ([] if aead else integrity) + prfs + groups
    proposal = IkeProposal.parse("-".join(tokens))
    assert IkeProposal.parse(str(proposal)) == proposal
    assert len(proposal.encryption) == len(encryption)
    assert [algorithm_name(g) for g in proposal.key_exchange] == groups


# ---------------------------------------------------------------------------
# Traffic selector policy (RFC 7296 §3.13.1)
# ---------------------------------------------------------------------------


def _ts(start: str, end: str, proto: int = 0, ports: tuple[int, int] = (0, 65535)) -> TrafficSelectorPolicy:
    return TrafficSelectorPolicy(ipaddress.ip_address(start), ipaddress.ip_address(end), proto, *ports)


@pytest.mark.parametrize(
    ("text", "expected", "printed"),
    [
        ("10.0.0.0/24", _ts("10.0.0.0", "10.0.0.255"), "10.0.0.0/24"),
        ("0.0.0.0/0", ANY_IPV4, "0.0.0.0/0"),
        ("::/0", ANY_IPV6, "::/0"),
        ("192.0.2.1", _ts("192.0.2.1", "192.0.2.1"), "192.0.2.1/32"),
        ("192.0.2.1[tcp/443]", _ts("192.0.2.1", "192.0.2.1", 6, (443, 443)), "192.0.2.1/32[tcp/443]"),
        ("10.0.0.1-10.0.0.9", _ts("10.0.0.1", "10.0.0.9"), "10.0.0.1-10.0.0.9"),
        ("10.0.0.0-10.0.0.255", _ts("10.0.0.0", "10.0.0.255"), "10.0.0.0/24"),
        (
            "2001:db8::/64[udp/500-4500]",
            _ts("2001:db8::", "2001:db8::ffff:ffff:ffff:ffff", 17, (500, 4500)),
            "2001:db8::/64[udp/500-4500]",
        ),
        ("10.0.0.0/8[icmp]", _ts("10.0.0.0", "10.255.255.255", 1), "10.0.0.0/8[icmp]"),
        ("10.0.0.0/8 [6/80]", _ts("10.0.0.0", "10.255.255.255", 6, (80, 80)), "10.0.0.0/8[tcp/80]"),
        ("10.0.0.0/8[tcp/%any]", _ts("10.0.0.0", "10.255.255.255", 6), "10.0.0.0/8[tcp]"),
        ("10.0.0.0/8[%any]", _ts("10.0.0.0", "10.255.255.255"), "10.0.0.0/8"),
        ("::1[ipv6-icmp]", _ts("::1", "::1", 58), "::1/128[icmpv6]"),
        ("10.0.0.0/8[99]", _ts("10.0.0.0", "10.255.255.255", 99), "10.0.0.0/8[99]"),
    ],
)
def test_traffic_selector_policy_parse(text: str, expected: TrafficSelectorPolicy, printed: str) -> None:
    policy = TrafficSelectorPolicy.parse(text)
    assert policy == expected
    assert str(policy) == printed
    assert TrafficSelectorPolicy.parse(printed) == policy


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not 'addresses'"),
        ("10.0.0.1/24", "has host bits set"),
        ("10.0.0.9-10.0.0.1", "range runs backwards"),
        ("10.0.0.1-::1", "range mixes IPv4 and IPv6"),
        ("nonsense", "does not appear to be an IPv4 or IPv6 address"),
        ("10.0.0.0/8[foo]", "unknown protocol 'foo'"),
        ("10.0.0.0/8[256]", "unknown protocol '256'"),
        ("10.0.0.0/8[tcp/x]", "port 'x' is not a number"),
        ("10.0.0.0/8[tcp/70000]", "not within 0..65535"),
        ("10.0.0.0/8[tcp/9-1]", "not within 0..65535 and ordered"),
        ("10.0.0.0/8[/80]", "a port needs a protocol"),
        ("10.0.0.0/8[tcp", "is not 'addresses'"),
    ],
)
def test_traffic_selector_policy_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrafficSelectorPolicy.parse(text)


def test_traffic_selector_policy_validation_names_fields() -> None:
    with pytest.raises(ConfigError, match=r"^end_address: 10.0.0.1 is below start_address 10.0.0.2$"):
        _ts("10.0.0.2", "10.0.0.1")
    with pytest.raises(
        ConfigError, match=r"^end_address: start and end addresses are of different IP versions"
    ):
        _ts("10.0.0.2", "::1")
    with pytest.raises(ConfigError, match=r"^ip_protocol: ports need a protocol"):
        _ts("10.0.0.1", "10.0.0.1", 0, (80, 80))
    with pytest.raises(ConfigError, match=r"^end_port: 1 is below start_port 2$"):
        _ts("10.0.0.1", "10.0.0.1", 6, (2, 1))
    with pytest.raises(ConfigError, match=r"^ip_protocol: must be an integer in 0..255"):
        _ts("10.0.0.1", "10.0.0.1", 256)
    with pytest.raises(ConfigError, match=r"^start_address: expected an IP address"):
        TrafficSelectorPolicy("10.0.0.1", IPv4Address("10.0.0.1"))  # type: ignore[arg-type]


def test_traffic_selector_policy_helpers() -> None:
    assert TrafficSelectorPolicy.any(4) is ANY_IPV4
    assert TrafficSelectorPolicy.any(6) is ANY_IPV6
    assert TrafficSelectorPolicy.host(IPv4Address("10.1.2.3")) == _ts("10.1.2.3", "10.1.2.3")
    assert ANY_IPV6.version == 6


_PORTS = st.one_of(
    st.just((0, 65535)),
    st.tuples(st.integers(0, 65535), st.integers(0, 65535)).map(lambda p: (min(p), max(p))),
)


@given(
    st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 6, 17, 58, 132, 99]), _PORTS
)
def test_traffic_selector_policy_text_round_trip(a: int, b: int, proto: int, ports: tuple[int, int]) -> None:
    if proto == 0:
        ports = (0, 65535)
    policy = TrafficSelectorPolicy(IPv4Address(min(a, b)), IPv4Address(max(a, b)), proto, *ports)
    assert TrafficSelectorPolicy.parse(str(policy)) == policy


@given(st.integers(0, 2**128 - 1), st.integers(0, 2**128 - 1))
def test_traffic_selector_policy_ipv6_round_trip(a: int, b: int) -> None:
    policy = TrafficSelectorPolicy(IPv6Address(min(a, b)), IPv6Address(max(a, b)))
    assert TrafficSelectorPolicy.parse(str(policy)) == policy


# ---------------------------------------------------------------------------
# Pools, children, peers, limits, Config
# ---------------------------------------------------------------------------


def test_address_pool_validation() -> None:
    pool = AddressPool("vips", IPv4Network("10.3.0.0/28"), None, (IPv4Address("10.3.0.1"),))
    assert pool.ipv6 is None
    AddressPool("v6", None, IPv6Network("2001:db8::/120"))
    with pytest.raises(ConfigError, match=r"^ipv4: a pool needs an IPv4 or an IPv6 network$"):
        AddressPool("none", None, None)
    with pytest.raises(ConfigError, match=r"^name: empty name$"):
        AddressPool("", IPv4Network("10.3.0.0/28"), None)
    with pytest.raises(ConfigError, match=r"^ipv6: expected an IPv6Network"):
        AddressPool("x", None, IPv4Network("10.3.0.0/28"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^dns\[0\]: expected IP addresses"):
        AddressPool("x", IPv4Network("10.3.0.0/28"), None, ("10.0.0.1",))  # type: ignore[arg-type]


def test_child_config_defaults_and_validation() -> None:
    child = ChildConfig("default")
    assert child.mode is Mode.TUNNEL
    assert child.local_ts == (ANY_IPV4, ANY_IPV6) == child.remote_ts
    assert child.esp_proposals == DEFAULT_ESP_PROPOSALS
    assert [str(p) for p in DEFAULT_ESP_PROPOSALS] == [
        "aes256gcm16-aes128gcm16-chacha20poly1305",
        "aes256-sha256",
    ]
    assert child.pool is None and child.refuse is False
    with pytest.raises(ConfigError, match=r"^local_ts: needs at least 1 TrafficSelectorPolicy$"):
        ChildConfig("c", local_ts=())
    with pytest.raises(ConfigError, match=r"^remote_ts\[0\]: expected TrafficSelectorPolicy, got str$"):
        ChildConfig("c", remote_ts=("10.0.0.0/8",))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^esp_proposals: needs at least 1 EspProposal$"):
        ChildConfig("c", esp_proposals=())
    with pytest.raises(ConfigError, match=r"^pool: empty name$"):
        ChildConfig("c", pool="")
    with pytest.raises(ConfigError, match=r"^name: name 'a b' holds whitespace"):
        ChildConfig("a b")
    with pytest.raises(ConfigError, match=r"^mode: expected a Mode"):
        ChildConfig("c", mode="tunnel")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^refuse: expected a bool"):
        ChildConfig("c", refuse=1)  # type: ignore[arg-type]


def test_peer_config_validation() -> None:
    peer = PeerConfig("carol", IdPattern.parse("carol@example.org"), Secret.parse("0x0102"))
    assert [c.name for c in peer.children] == ["default"]
    assert peer.child("default") is peer.children[0]
    assert peer.child("other") is None
    with pytest.raises(ConfigError, match=r"^children\[1\]\.name: duplicate child name 'a'$"):
        PeerConfig("p", IdPattern.any(), Secret(b"k"), children=(ChildConfig("a"), ChildConfig("a")))
    with pytest.raises(ConfigError, match=r"^children: needs at least 1 ChildConfig$"):
        PeerConfig("p", IdPattern.any(), Secret(b"k"), children=())
    with pytest.raises(ConfigError, match=r"^auth: expected a PskAuth or PubkeyAuth, got bytes$"):
        PeerConfig("p", IdPattern.any(), b"k")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^remote_id: expected an IdPattern"):
        PeerConfig("p", "%any", Secret(b"k"))  # type: ignore[arg-type]


def test_limits() -> None:
    limits = Limits()
    assert (limits.half_open_max, limits.half_open_timeout, limits.cookie_threshold) == (1000, 30.0, 100)
    assert (limits.cookie_secret_lifetime, limits.ike_sa_max) == (300.0, 10000)
    assert Limits(cookie_threshold=0).cookie_threshold == 0
    assert Limits(half_open_timeout=5).half_open_timeout == 5
    with pytest.raises(ConfigError, match=r"^half_open_max: must be positive, got 0$"):
        Limits(half_open_max=0)
    with pytest.raises(ConfigError, match=r"^half_open_max: expected an integer, got float$"):
        Limits(half_open_max=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^half_open_timeout: must be positive"):
        Limits(half_open_timeout=-1.0)
    with pytest.raises(ConfigError, match=r"^cookie_threshold: must be an integer >= 0"):
        Limits(cookie_threshold=-1)
    with pytest.raises(ConfigError, match=r"^ike_sa_max: expected an integer, got bool$"):
        Limits(ike_sa_max=True)
    with pytest.raises(ConfigError, match=r"^cookie_secret_lifetime: expected a number, got str$"):
        Limits(cookie_secret_lifetime="5")  # type: ignore[arg-type]


def _peer(name: str, pattern: str, *children: ChildConfig) -> PeerConfig:
    return PeerConfig(
        name, IdPattern.parse(pattern), Secret(name.encode()), children=children or (ChildConfig("c"),)
    )


def test_config_defaults() -> None:
    config = Config()
    assert config.peers == () and config.any_id_psk is None and config.local_id is None
    assert config.window_size == 1 and config.limits == Limits()
    assert config.childless is ChildlessPolicy.ALLOW
    assert config.prefer_initiator_order is False
    assert config.lab_peer is None
    assert config.find_peer(Identity.parse("@anyone")) is None  # authenticates nobody


def test_config_validation_names_fields() -> None:
    pool = AddressPool("vips", IPv4Network("10.3.0.0/28"), None)
    with pytest.raises(ConfigError, match=r"^peers\[1\]\.name: duplicate peer name 'a'$"):
        Config(peers=(_peer("a", "%any"), _peer("a", "@x")))
    with pytest.raises(ConfigError, match=r"^peers\[0\]\.name: peer names starting with '%' are reserved"):
        Config(peers=(_peer("%lab", "%any"),))
    with pytest.raises(ConfigError, match=r"^peers\[1\]\.children\[0\]\.pool: no pool named 'nope'$"):
        Config(peers=(_peer("a", "%any"), _peer("b", "%any", ChildConfig("c", pool="nope"))), pools=(pool,))
    with pytest.raises(ConfigError, match=r"^lab_children\[0\]\.pool: no pool named 'vips'$"):
        Config(lab_children=(ChildConfig("c", pool="vips"),))
    with pytest.raises(ConfigError, match=r"^lab_children\[1\]\.name: duplicate child name 'c'$"):
        Config(lab_children=(ChildConfig("c"), ChildConfig("c")))
    with pytest.raises(ConfigError, match=r"^pools\[1\]\.name: duplicate pool name 'vips'$"):
        Config(pools=(pool, pool))
    with pytest.raises(ConfigError, match=r"^ike_proposals: needs at least 1 IkeProposal$"):
        Config(ike_proposals=())
    with pytest.raises(ConfigError, match=r"^window_size: must be an integer in 1..2\^31, got 0$"):
        Config(window_size=0)
    with pytest.raises(ConfigError, match=r"^window_size: must be an integer in 1..2\^31"):
        Config(window_size=2**31 + 1)
    assert Config(window_size=2**31).window_size == 2**31
    with pytest.raises(ConfigError, match=r"^childless: expected a ChildlessPolicy"):
        Config(childless="allow")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^peers\[0\]: expected PeerConfig, got str$"):
        Config(peers=("carol",))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^local_id: expected an Identity"):
        Config(local_id="@moon")  # type: ignore[arg-type]


def test_find_peer_uses_configuration_order() -> None:
    exact = _peer("carol", "carol@example.org")
    domain = _peer("example", "*@example.org")
    hosts = _peer("hosts", "*.example.org")
    config = Config(peers=(exact, domain, hosts))
    assert config.find_peer(Identity.parse("carol@example.org")) is exact
    assert config.find_peer(Identity.parse("dave@example.org")) is domain
    assert config.find_peer(Identity.parse("@moon.example.org")) is hosts
    assert config.find_peer(Identity.parse("@example.com")) is None
    # Order, not specificity, decides: a wildcard first shadows the exact entry.
    assert Config(peers=(domain, exact)).find_peer(Identity.parse("carol@example.org")) is domain


def test_find_peer_falls_back_to_the_lab_peer() -> None:
    lab_child = ChildConfig("lab", refuse=True)
    config = Config(
        peers=(_peer("carol", "carol@example.org"),), any_id_psk=Secret(b"lab"), lab_children=(lab_child,)
    )
    peer = config.find_peer(Identity.parse("@anything"))
    # Built once with the configuration: every SA of the lab peer holds the same one (issue 14).
    assert peer is not None and peer is config.lab_peer is config.find_peer(Identity.parse("@other"))
    assert peer.name == "%lab"
    assert peer.auth == PskAuth(Secret(b"lab"))
    assert peer.children == (lab_child,)
    assert peer.local_id is None
    assert peer.remote_id.kind is IdPatternKind.ANY
    found = config.find_peer(Identity.parse("carol@example.org"))
    assert found is not None and found.name == "carol"


def test_config_pool_lookup() -> None:
    pool = AddressPool("vips", IPv4Network("10.3.0.0/28"), None)
    config = Config(pools=(pool,), lab_children=(ChildConfig("c", pool="vips"),))
    assert config.pool("vips") is pool
    with pytest.raises(KeyError):
        config.pool("other")


def test_config_module_stays_out_of_io() -> None:
    import ast
    from pathlib import Path

    import responder.config

    tree = ast.parse(Path(responder.config.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not imported & {"trio", "socket", "time", "logging"}


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (TrafficSelectorPolicy.parse, "10.0.0.1[tcp/\u0668\u0660]", "is not a number"),
        (TrafficSelectorPolicy.parse, "10.0.0.1[tcp/1-\u0662]", "is not a number"),
        (TrafficSelectorPolicy.parse, "10.0.0.1[\u0666/80]", "unknown protocol"),
        (TrafficSelectorPolicy.parse, "10.0.0.1[tcp/99999999999999999999]", "is not a number"),
        (Identity.parse, "C=DE,CN=\udcff", "UTF-8 cannot encode"),
        (IdPattern.parse, "*@\udcff", "UTF-8 cannot encode"),
        (Secret.parse, "\udcff", "UTF-8 cannot encode"),
    ],
)
def test_parsers_refuse_foreign_digits_and_unencodable_text(parse: Any, text: str, message: str) -> None:
    """int() reads digits of every script and argv may carry lone surrogates: both are ConfigErrors."""
    with pytest.raises(ConfigError, match=message):
        parse(text)
