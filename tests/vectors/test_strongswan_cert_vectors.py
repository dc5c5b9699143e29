"""Certificate authentication against strongSwan's known answers (tests/vectors/strongswan-certs/).

harvest_strongswan_certs.py recorded six IKE_SA_INIT + IKE_AUTH exchanges between
two charons authenticating with certificates (ECDSA P-256, RSA-2048 with
PKCS#1 v1.5 and with RSASSA-PSS, Ed25519, and the legacy methods 1 and 9).
Here the responder's core decodes and unprotects them with the harvested keys;
responder.core.auth.signed_octets rebuilds each side's signed octets, which
must equal the octets both charons logged; responder.core.signatures verifies
every AUTH payload with the sender's certificate, chooses the method charon
chose from the same SIGNATURE_HASH_ALGORITHMS, and for the deterministic
schemes (RSASSA-PKCS1-v1_5, Ed25519) signs the same octets to charon's AUTH
data byte for byte.  charon's RFC 7427 AlgorithmIdentifiers are compared with
the module's Appendix A constants, its CERTREQs with SHA-1 of the CA's
SubjectPublicKeyInfo (RFC 7296 §3.7), and its SIGNATURE_HASH_ALGORITHMS
notifies with what the interop notes say charon sends.

Expected values come from the harvest's JSON, the PEM files beside it and the
charon logs (parsed here with tests.interop.charon_log), never from the core.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from responder.core import keys, transforms
from responder.core.auth import signed_octets
from responder.core.dn import dn_from_text, dn_match
from responder.core.enums import (
    AuthMethod,
    CertEncoding,
    EncrId,
    ExchangeType,
    HashAlgorithm,
    IdType,
    NotifyType,
    PrfId,
)
from responder.core.messages import Message, decode_message, encode_message
from responder.core.payloads import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    IdiPayload,
    IdrPayload,
    NotifyPayload,
    Payload,
)
from responder.core.signatures import (
    ALGORITHM_IDENTIFIERS,
    Scheme,
    SignatureError,
    create_signature,
    signature_plan,
    verify_signature,
)
from responder.core.sk_payload import SkProtection, unprotect
from tests.interop import charon_log

VECTORS = Path(__file__).with_name("strongswan-certs")
NAMES = sorted(p.stem for p in VECTORS.glob("*.json"))
SIDES = ("initiator", "responder")

#: What charon chose for each suite's configuration (harvest_strongswan_certs.CERT_SUITES):
#: (Auth Method, RFC 7427 scheme and hash or None for a legacy method, RSASSA-PSS configured).
CHARON_CHOICE: dict[str, tuple[AuthMethod, tuple[Scheme, HashAlgorithm] | None, bool]] = {
    "cert-ecdsa-p256": (AuthMethod.DIGITAL_SIGNATURE, (Scheme.ECDSA, HashAlgorithm.SHA2_256), False),
    "cert-rsa2048": (AuthMethod.DIGITAL_SIGNATURE, (Scheme.RSA_PKCS1, HashAlgorithm.SHA2_256), False),
    "cert-ed25519": (AuthMethod.DIGITAL_SIGNATURE, (Scheme.ED25519, HashAlgorithm.IDENTITY), False),
    "cert-rsa2048-pss": (AuthMethod.DIGITAL_SIGNATURE, (Scheme.RSA_PSS, HashAlgorithm.SHA2_256), True),
    "cert-rsa2048-legacy": (AuthMethod.RSA_DIGITAL_SIGNATURE, None, False),
    "cert-ecdsa-p256-legacy": (AuthMethod.ECDSA_SHA256_P256, None, False),
}

#: The interop notes: charon sends SIGNATURE_HASH_ALGORITHMS "sha256 sha384 sha512 identity".
CHARON_HASHES = (
    HashAlgorithm.SHA2_256,
    HashAlgorithm.SHA2_384,
    HashAlgorithm.SHA2_512,
    HashAlgorithm.IDENTITY,
)

P = TypeVar("P")
_LOG_OCTETS = "octets = message + nonce + prf(Sk_px, IDx')"


def _load(name: str) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text())
    return vector


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def _cert(name: str, who: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((VECTORS / f"{name}.{who}.pem").read_bytes())


def _private_key(
    name: str, who: str
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key((VECTORS / f"{name}.{who}.key.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
    return key


def _public_key(
    name: str, who: str
) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
    key = _cert(name, who).public_key()
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)
    return key


def _all(payloads: Sequence[Payload], cls: type[P]) -> list[P]:
    return [p for p in payloads if isinstance(p, cls)]


def _one(payloads: Sequence[Payload], cls: type[P]) -> P:
    found = _all(payloads, cls)
    assert len(found) == 1, f"{len(found)} {cls.__name__}"
    return found[0]


def _prf(vector: dict[str, Any]) -> transforms.Prf:
    return transforms.prf(PrfId(vector["ike_transforms"]["prf"]))


def _exchange(vector: dict[str, Any], exchange: ExchangeType) -> tuple[dict[str, Any], dict[str, Any]]:
    """(request, response) of the one exchange of that type."""
    request, response = (m for m in vector["messages"] if m["exchange"] == exchange)
    assert (request["is_response"], response["is_response"]) == (False, True)
    return request, response


def _decoded(m: dict[str, Any]) -> Message:
    return decode_message(_h(m["raw"]))


def _unprotected(vector: dict[str, Any], m: dict[str, Any]) -> tuple[Payload, ...]:
    t = vector["ike_transforms"]
    encr = transforms.encryption(EncrId(t["encr"]), t["encr_key_bits"])
    sa = vector["ike_sas"][0]
    side = "i" if m["sender_is_ike_sa_initiator"] else "r"
    protection = SkProtection.create(encr, None, _h(sa[f"sk_e{side}"]), b"")
    return unprotect(protection, _h(m["raw"]))[0].payloads


def _hash_notify(payloads: Sequence[Payload]) -> tuple[HashAlgorithm, ...] | None:
    """The SIGNATURE_HASH_ALGORITHMS list (RFC 7427 §4), None when the notify is absent."""
    found = [
        n for n in _all(payloads, NotifyPayload) if n.notify_type == NotifyType.SIGNATURE_HASH_ALGORITHMS
    ]
    if not found:
        return None
    (notify,) = found
    data = notify.data
    return tuple(HashAlgorithm(int.from_bytes(data[i : i + 2], "big")) for i in range(0, len(data), 2))


def _auth_case(
    vector: dict[str, Any], who: str
) -> tuple[bytes, AuthPayload, tuple[HashAlgorithm, ...] | None]:
    """(signed octets rebuilt by the core, the AUTH payload, the peer's hash list) for one side."""
    init_request, init_response = _exchange(vector, ExchangeType.IKE_SA_INIT)
    auth_request, auth_response = _exchange(vector, ExchangeType.IKE_AUTH)
    sa = vector["ike_sas"][0]
    # RFC 7296 §2.15: the sender's IKE_SA_INIT message, the peer's nonce, the sender's SK_p and ID.
    initiator = who == "initiator"
    first = init_request if initiator else init_response
    auth_message = auth_request if initiator else auth_response
    peer_nonce, sk_p = (sa["nonce_r"], sa["sk_pi"]) if initiator else (sa["nonce_i"], sa["sk_pr"])
    id_class: type[IdiPayload | IdrPayload] = IdiPayload if initiator else IdrPayload
    peer_init = init_response if initiator else init_request
    inner = _unprotected(vector, auth_message)
    id_payload: IdiPayload | IdrPayload = _one(inner, id_class)
    octets = signed_octets(_prf(vector), _h(first["raw"]), _h(peer_nonce), _h(sk_p), id_payload)
    return octets, _one(inner, AuthPayload), _hash_notify(_decoded(peer_init).payloads)


def _charon_octets(name: str) -> dict[str, list[bytes]]:
    """The signed octets each charon logged at level 4, in log order (own and peer's)."""
    out = {}
    for who in SIDES:
        _, dumps = charon_log.parse((VECTORS / f"{name}.{who}.log").read_text())
        out[who] = charon_log.dumps(dumps, _LOG_OCTETS)
    return out


# --- the tests ---------------------------------------------------------------------------------------


def test_vectors_present() -> None:
    assert sorted(CHARON_CHOICE) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_message_round_trips(name: str) -> None:
    vector = _load(name)
    for m in vector["messages"]:
        raw = _h(m["raw"])
        message = decode_message(raw)
        assert encode_message(message) == raw, f"frame {m['frame']}"
        assert [int(p.payload_type) for p in message.payloads] == [p["type"] for p in m["payloads"]]


@pytest.mark.parametrize("name", NAMES)
def test_ike_sa_keys(name: str) -> None:
    """SK_pi and SK_pr, which the signed octets depend on, come out of the core's key schedule."""
    vector = _load(name)
    t = vector["ike_transforms"]
    sa = vector["ike_sas"][0]
    seed = keys.skeyseed(_prf(vector), _h(sa["nonce_i"]), _h(sa["nonce_r"]), _h(sa["shared_secret"]))
    assert seed == _h(sa["skeyseed"])
    derived = keys.derive_ike_sa_keys(
        _prf(vector),
        transforms.encryption(EncrId(t["encr"]), t["encr_key_bits"]),
        None,
        seed,
        _h(sa["nonce_i"]),
        _h(sa["nonce_r"]),
        _h(sa["spi_i"]),
        _h(sa["spi_r"]),
    )
    for field in ("sk_d", "sk_ei", "sk_er", "sk_pi", "sk_pr"):
        assert getattr(derived, field) == _h(sa[field]), field


@pytest.mark.parametrize("name", NAMES)
def test_ike_auth_carries_the_ids_and_certificates(name: str) -> None:
    """IDi/IDr as harvested, one CERT (X.509 Certificate - Signature) holding the sender's leaf."""
    vector = _load(name)
    auth_request, auth_response = _exchange(vector, ExchangeType.IKE_AUTH)
    for who, m, id_class in (
        ("initiator", auth_request, IdiPayload),
        ("responder", auth_response, IdrPayload),
    ):
        inner = _unprotected(vector, m)
        id_payload = _one(inner, id_class)
        record = vector["auth"][who]
        assert (id_payload.id_type, id_payload.data) == (record["id_type"], _h(record["id_data"]))
        cert = _one(inner, CertPayload)
        assert cert.encoding == CertEncoding.X509_CERT_SIGNATURE
        assert cert.data == _cert(name, who).public_bytes(serialization.Encoding.DER)
        auth = _one(inner, AuthPayload)
        assert (auth.method, auth.data) == (record["auth_method"], _h(record["auth_data"]))


@pytest.mark.parametrize("name", NAMES)
def test_signed_octets_are_charons(name: str) -> None:
    """RFC 7296 §2.15 octets from responder.core.auth equal both charons' level-4 dumps."""
    vector = _load(name)
    logged = _charon_octets(name)
    # Each charon logs the initiator's octets first (built or verified), then the responder's.
    assert logged["initiator"] == logged["responder"]
    for index, who in enumerate(SIDES):
        octets, _, _ = _auth_case(vector, who)
        assert octets == logged["initiator"][index], who
        assert octets == _h(vector["auth"][who]["octets"]), who


@pytest.mark.parametrize("name", NAMES)
def test_charons_signatures_verify(name: str) -> None:
    vector = _load(name)
    for who in SIDES:
        octets, auth, _ = _auth_case(vector, who)
        verify_signature(_public_key(name, who), octets, auth)
        with pytest.raises(SignatureError):
            verify_signature(_public_key(name, who), octets + b"\0", auth)
        other = "responder" if who == "initiator" else "initiator"
        with pytest.raises(SignatureError):  # the other leaf: same type, another key
            verify_signature(_public_key(name, other), octets, auth)


@pytest.mark.parametrize("name", NAMES)
def test_we_choose_the_method_charon_chose(name: str) -> None:
    """From the same SIGNATURE_HASH_ALGORITHMS (or none), signature_plan picks charon's method and scheme."""
    vector = _load(name)
    method, scheme_hash, rsa_pss = CHARON_CHOICE[name]
    for who in SIDES:
        _, auth, peer_hashes = _auth_case(vector, who)
        assert auth.method == method
        plan = signature_plan(_private_key(name, who), peer_hashes, rsa_pss=rsa_pss)
        assert plan.method == method
        if scheme_hash is not None:
            assert (plan.scheme, plan.hash) == scheme_hash


@pytest.mark.parametrize("name", NAMES)
def test_our_signature_over_charons_octets(name: str) -> None:
    """Deterministic schemes reproduce charon's AUTH data byte for byte; the others verify."""
    vector = _load(name)
    _, _, rsa_pss = CHARON_CHOICE[name]
    for who in SIDES:
        octets, auth, peer_hashes = _auth_case(vector, who)
        ours = create_signature(_private_key(name, who), octets, peer_hashes, rsa_pss=rsa_pss)
        assert ours.method == auth.method
        key = _private_key(name, who)
        deterministic = isinstance(key, ed25519.Ed25519PrivateKey) or (
            isinstance(key, rsa.RSAPrivateKey) and not rsa_pss
        )
        if deterministic:  # RSASSA-PKCS1-v1_5 (method 1 and 14) and Ed25519
            assert ours == auth, who
        verify_signature(_public_key(name, who), octets, ours)


def _charon_identifier(vector: dict[str, Any]) -> bytes:
    identifiers = {
        _h(vector["auth"][who]["auth_data"])[1 : 1 + _h(vector["auth"][who]["auth_data"])[0]] for who in SIDES
    }
    (identifier,) = identifiers
    return identifier


@pytest.mark.parametrize(
    "name", sorted(n for n, c in CHARON_CHOICE.items() if c[1] and c[1][0] != Scheme.RSA_PSS)
)
def test_charons_algorithm_identifiers_are_appendix_a(name: str) -> None:
    """ECDSA with SHA-256, sha256WithRSAEncryption, Ed25519: charon sends our constants byte for byte."""
    scheme_hash = CHARON_CHOICE[name][1]
    assert scheme_hash is not None
    assert _charon_identifier(_load(name)) == ALGORITHM_IDENTIFIERS[scheme_hash]


def test_charons_pss_identifier_is_ours() -> None:
    """charon leaves out the DEFAULT trailerField (DER, X.690 §11.5) that RFC 7427 A.4.3 spells;
    so do we (libreswan accepts only this form), byte for byte."""
    vector = _load("cert-rsa2048-pss")
    assert _charon_identifier(vector) == ALGORITHM_IDENTIFIERS[(Scheme.RSA_PSS, HashAlgorithm.SHA2_256)]
    assert vector["auth"]["initiator"]["pss_salt_length"] == 32


@pytest.mark.parametrize("name", NAMES)
def test_certreq_is_sha1_of_the_ca_public_key_info(name: str) -> None:
    """RFC 7296 §3.7: the responder's IKE_SA_INIT CERTREQ and the initiator's IKE_AUTH one name the CA."""
    vector = _load(name)
    ca = x509.load_pem_x509_certificate((VECTORS / f"{name}.ca.pem").read_bytes())
    spki = ca.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = CertReqPayload(CertEncoding.X509_CERT_SIGNATURE, hashlib.sha1(spki).digest())  # noqa: S324
    _, init_response = _exchange(vector, ExchangeType.IKE_SA_INIT)
    auth_request, _ = _exchange(vector, ExchangeType.IKE_AUTH)
    assert _all(_decoded(init_response).payloads, CertReqPayload) == [expected]
    assert _all(_unprotected(vector, auth_request), CertReqPayload) == [expected]


@pytest.mark.parametrize("name", NAMES)
def test_signature_hash_algorithms_notify(name: str) -> None:
    """Both IKE_SA_INIT messages list sha256 sha384 sha512 identity; none if signature_authentication = no."""
    vector = _load(name)
    legacy = CHARON_CHOICE[name][1] is None
    for m in _exchange(vector, ExchangeType.IKE_SA_INIT):
        assert _hash_notify(_decoded(m).payloads) == (None if legacy else CHARON_HASHES)


def test_dn_ids_match_the_certificate_subjects() -> None:
    """With DN IDs, charon's IDi is the certificate's subject DER; its IDr is the DN the initiator was
    configured with, encoded by charon (PrintableString, the certificate has UTF8String), which
    dn_from_text reproduces and dn_match accepts for the certificate's subject."""
    vector = _load("cert-rsa2048-pss")
    for who in SIDES:
        record = vector["auth"][who]
        assert record["id_type"] == IdType.ID_DER_ASN1_DN
        subject = _cert("cert-rsa2048-pss", who).subject.public_bytes()
        id_data = _h(record["id_data"])
        assert dn_match(subject, id_data, wildcards=False), who
    assert (
        _h(vector["auth"]["initiator"]["id_data"])
        == _cert("cert-rsa2048-pss", "initiator").subject.public_bytes()
    )
    responder_id = _h(vector["auth"]["responder"]["id_data"])
    assert responder_id != _cert("cert-rsa2048-pss", "responder").subject.public_bytes()
    assert responder_id == dn_from_text(vector["swanctl_ids"]["responder"])
