"""IKE_AUTH with certificates, both ends in memory (tests.fakes.pair): every key type, mutual and
mixed with shared keys, CERT/CERTREQ, SIGNATURE_HASH_ALGORITHMS, IDr, and each refusal answered
AUTHENTICATION_FAILED with its reason.

Rows: B31 (public-key authentication), C1-C4 (RFC 7427), B17/B26 (AUTHENTICATION_FAILED).
"""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st

from responder.core.certificates import CertificateError, spki_sha1, validate_peer_certificate
from responder.core.config import (
    Config,
    ConfigError,
    Credential,
    Identity,
    IdPattern,
    PeerConfig,
    PskAuth,
    PubkeyAuth,
    Secret,
    SendCert,
    TrustStore,
)
from responder.core.enums import AuthMethod, CertEncoding, ExchangeType, NotifyType
from responder.core.errors import AuthenticationFailedError
from responder.core.events import AuthenticationFailed, IkeSaEstablished, RequestAnswered
from responder.core.exchanges import ike_auth
from responder.core.exchanges.certauth import peer_certificates
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.messages import Header, Message, decode_message
from responder.core.payloads import AuthPayload, CertPayload, CertReqPayload, IdrPayload, NotifyPayload
from responder.core.signatures import SIGNATURE_HASHES
from tests.fakes.pair import PSK, Pair, child_request, initiator_settings, read, responder_config
from tests.fakes.pki import NOW, Authority

SUITE = "aes256gcm16-prfsha256-x25519"
ALICE = "C=XX, O=Lab, CN=alice"
MOON = "C=XX, O=Lab, CN=moon"


@pytest.fixture(scope="module")
def root() -> Authority:
    return Authority.root()


def moon(root: Authority, key: str = "p256") -> Credential:
    return root.credential(MOON, key=key, dns=["moon.lab"], ips=["192.0.2.2"])


def alice(root: Authority, key: str = "p256") -> Credential:
    return root.credential(ALICE, key=key, index=1, emails=["alice@example.org"])


def cert_pair(
    root: Authority,
    *,
    peers: tuple[PeerConfig, ...] | None = None,
    responder_key: str = "p256",
    **config: object,
) -> Pair:
    if peers is None:
        peers = (PeerConfig("alice", IdPattern.parse(ALICE), PubkeyAuth()),)
    responder = responder_config(
        SUITE,
        peers=peers,
        credential=moon(root, responder_key),
        trust=TrustStore((root.certificate,)),
        **config,
    )
    pair = Pair.create(responder)
    pair.wall = NOW.timestamp()
    return pair


def cert_settings(root: Authority, key: str = "p256", **kwargs: object) -> object:
    values: dict[str, object] = {
        "psk": None,
        "credential": alice(root, key),
        "trust": TrustStore((root.certificate,)),
        "local_id": Identity.parse(ALICE),
    }
    values.update(kwargs)
    return initiator_settings(SUITE, child_request(), **values)


def messages(pair: Pair, exchange: ExchangeType, direction: str) -> list[bytes]:
    found = []
    for way, data in pair.wire:
        header = decode_message(data).header
        if way == direction and header.exchange_type == exchange:
            found.append(data)
    return found


@pytest.mark.parametrize("key", ["rsa2048", "p256", "p384", "p521", "ed25519", "ed448"])
def test_mutual_certificates_with_every_key_type(root: Authority, key: str) -> None:
    pair = cert_pair(root, responder_key=key)
    sa = pair.initiate(cert_settings(root, key))  # type: ignore[arg-type]
    pair.pump()
    assert sa.state is IkeSaState.ESTABLISHED
    [established] = pair.events(IkeSaEstablished)
    assert established.remote_id == ALICE and established.local_id == MOON
    [answered] = pair.events(RequestAnswered)[-1:]
    assert "peer 'alice', certificate CN=alice,O=Lab,C=XX" in answered.result
    assert sa.children  # the first Child SA came with it


def test_ike_sa_init_response_carries_certreq_and_signature_hashes(root: Authority) -> None:
    """RFC 7296 §3.7 (CERTREQ naming our CA), RFC 7427 §4 (row C3: the responder includes it)."""
    pair = cert_pair(root)
    pair.initiate(cert_settings(root))  # type: ignore[arg-type]
    pair.pump()
    response = decode_message(messages(pair, ExchangeType.IKE_SA_INIT, "r->i")[0])
    [certreq] = [p for p in response.payloads if isinstance(p, CertReqPayload)]
    assert certreq.encoding is CertEncoding.X509_CERT_SIGNATURE
    assert certreq.data == spki_sha1(root.certificate)
    [hashes] = [
        p
        for p in response.payloads
        if isinstance(p, NotifyPayload) and p.notify_type is NotifyType.SIGNATURE_HASH_ALGORITHMS
    ]
    assert hashes.data == b"".join(int(h).to_bytes(2, "big") for h in SIGNATURE_HASHES)


def test_psk_only_configuration_sends_neither(root: Authority) -> None:
    pair = Pair.create(responder_config(SUITE))
    pair.initiate(initiator_settings(SUITE, child_request()))
    pair.pump()
    response = decode_message(messages(pair, ExchangeType.IKE_SA_INIT, "r->i")[0])
    assert not [p for p in response.payloads if isinstance(p, CertReqPayload)]
    assert NotifyType.SIGNATURE_HASH_ALGORITHMS not in [
        p.notify_type for p in response.payloads if isinstance(p, NotifyPayload)
    ]


def auth_response(pair: Pair, sa: IkeSa) -> list[object]:
    return list(read(sa, messages(pair, ExchangeType.IKE_AUTH, "r->i")[0], from_initiator=False).payloads)


@pytest.mark.parametrize(
    ("send_cert", "initiator_asks", "sent"),
    [
        (SendCert.IFASKED, True, True),
        (SendCert.IFASKED, False, False),
        (SendCert.ALWAYS, False, True),
        (SendCert.NEVER, True, False),
    ],
)
def test_our_cert_goes_when_asked_or_configured(
    root: Authority, send_cert: SendCert, initiator_asks: bool, sent: bool
) -> None:
    """swanctl's send_cert; an initiator's CERTREQ in IKE_AUTH is an ask (RFC 7296 §3.7)."""
    peers = (PeerConfig("alice", IdPattern.parse(ALICE), PubkeyAuth(), send_cert=send_cert),)
    pair = cert_pair(root, peers=peers)
    trust = TrustStore((root.certificate,)) if initiator_asks else None
    settings = cert_settings(root, trust=trust)
    sa = pair.initiate(settings)  # type: ignore[arg-type]
    pair.pump()
    payloads = auth_response(pair, sa)
    certificates = [p for p in payloads if isinstance(p, CertPayload)]
    assert bool(certificates) is sent
    if sent:
        sent_certificate = x509.load_der_x509_certificate(certificates[0].data)
        assert sent_certificate.subject == moon(root).certificate.subject
        kinds = [type(p).__name__ for p in payloads]
        assert kinds.index("IdrPayload") < kinds.index("CertPayload") < kinds.index("AuthPayload")


def test_what_the_peer_asked_for_is_not_kept_after_ike_auth(root: Authority) -> None:
    """RFC 7296 §3.7, RFC 7427 §4: the peer's CERTREQ and signature hashes chose our certificate and
    signature in IKE_AUTH; the SA keeps neither after it (issue 14)."""
    pair = cert_pair(root)
    sa = pair.initiate(cert_settings(root))  # type: ignore[arg-type]
    pair.pump()
    assert any(isinstance(p, CertPayload) for p in auth_response(pair, sa))
    [ours] = pair.responder.sas
    assert ours.state is IkeSaState.ESTABLISHED and ours.peer_certreq
    assert ours.peer_certreq_cas == frozenset() and ours.peer_signature_hashes is None


def test_an_intermediate_goes_with_our_certificate_and_the_peers_is_used(root: Authority) -> None:
    intermediate = root.intermediate()
    responder_credential = intermediate.credential(MOON, dns=["moon.lab"])
    client = intermediate.credential(ALICE, emails=["alice@example.org"])
    config = responder_config(
        SUITE,
        peers=(PeerConfig("alice", IdPattern.parse(ALICE), PubkeyAuth()),),
        credential=responder_credential,
        trust=TrustStore((root.certificate,)),
    )
    pair = Pair.create(config)
    pair.wall = NOW.timestamp()
    sa = pair.initiate(cert_settings(root, credential=client))  # type: ignore[arg-type]
    pair.pump()
    assert sa.state is IkeSaState.ESTABLISHED
    certificates = [p for p in auth_response(pair, sa) if isinstance(p, CertPayload)]
    assert len(certificates) == 2  # leaf and intermediate, no root


def test_the_requested_idr_is_answered_when_our_certificate_holds_it(root: Authority) -> None:
    """RFC 7296 §2.15 / §3.5: the initiator names whom it wants; our certificate's SAN moon.lab."""
    pair = cert_pair(root)
    sa = pair.initiate(cert_settings(root, remote_id=Identity.parse("moon.lab")))  # type: ignore[arg-type]
    pair.pump()
    assert sa.state is IkeSaState.ESTABLISHED
    [idr] = [p for p in auth_response(pair, sa) if isinstance(p, IdrPayload)]
    assert Identity(idr.id_type, idr.data) == Identity.parse("moon.lab")


def test_psk_initiator_and_certificate_responder(root: Authority) -> None:
    """One side a shared key, the other a certificate (swanctl local/remote auth differ)."""
    peers = (PeerConfig("alice", IdPattern.parse("alice@example.org"), PSK, local_auth=PubkeyAuth()),)
    pair = cert_pair(root, peers=peers)
    settings = initiator_settings(SUITE, child_request(), trust=TrustStore((root.certificate,)))
    sa = pair.initiate(settings)
    pair.pump()
    assert sa.state is IkeSaState.ESTABLISHED
    [auth] = [p for p in auth_response(pair, sa) if isinstance(p, AuthPayload)]
    assert auth.method is AuthMethod.DIGITAL_SIGNATURE


def test_certificate_initiator_and_psk_responder(root: Authority) -> None:
    peers = (PeerConfig("alice", IdPattern.parse(ALICE), PubkeyAuth(), local_auth=PskAuth(PSK)),)
    pair = cert_pair(root, peers=peers)
    # the initiator signs with its certificate and checks the responder's AUTH with the shared key
    sa = pair.initiate(cert_settings(root, psk=PSK))  # type: ignore[arg-type]
    pair.pump()
    assert sa.state is IkeSaState.ESTABLISHED
    [auth] = [p for p in auth_response(pair, sa) if isinstance(p, AuthPayload)]
    assert auth.method is AuthMethod.SHARED_KEY_MIC
    assert pair.events(IkeSaEstablished)  # the responder accepted the certificate


def test_lab_pubkey_mode_accepts_any_id_its_certificate_holds(root: Authority) -> None:
    """--cert with --ca and no peers: any peer whose certificate comes from the CA."""
    pair = cert_pair(root, peers=(), lab_pubkey=True, any_id_psk=PSK)
    sa = pair.initiate(cert_settings(root))  # type: ignore[arg-type]
    pair.pump()
    assert sa.state is IkeSaState.ESTABLISHED
    assert "peer '%lab-pubkey'" in pair.events(RequestAnswered)[-1].result
    psk_pair = cert_pair(root, peers=(), lab_pubkey=True, any_id_psk=PSK)
    psk_sa = psk_pair.initiate(initiator_settings(SUITE, child_request()))
    psk_pair.pump()
    assert psk_sa.state is IkeSaState.ESTABLISHED  # and shared keys still work beside it
    [auth] = [p for p in auth_response(psk_pair, psk_sa) if isinstance(p, AuthPayload)]
    assert auth.method is AuthMethod.SHARED_KEY_MIC


# --------------------------------------------------------------------------- refusals


def refused(pair: Pair, reason: str) -> None:
    answered = pair.events(RequestAnswered)[-1]
    assert "AUTHENTICATION_FAILED" in answered.result and reason in answered.result, answered.result
    assert list(pair.responder.sas) == []
    assert pair.events(AuthenticationFailed, "initiator")


def test_unknown_ca_is_authentication_failed(root: Authority) -> None:
    stranger = Authority.root("C=XX, O=Elsewhere, CN=Other CA", index=7)
    pair = cert_pair(root)
    pair.initiate(cert_settings(root, credential=stranger.credential(ALICE)))  # type: ignore[arg-type]
    pair.pump()
    refused(pair, "unknown CA")


def test_expired_certificate_is_authentication_failed(root: Authority) -> None:
    pair = cert_pair(root)
    pair.wall = NOW.timestamp() + 400 * 86400
    pair.initiate(cert_settings(root, trust=None))  # type: ignore[arg-type]
    pair.pump()
    refused(pair, "expired")


def test_id_not_in_the_certificate_is_authentication_failed(root: Authority) -> None:
    peers = (PeerConfig("any", IdPattern.any(), PubkeyAuth()),)
    pair = cert_pair(root, peers=peers)
    pair.initiate(cert_settings(root, local_id=Identity.parse("bob@example.org")))  # type: ignore[arg-type]
    pair.pump()
    refused(pair, "ID bob@example.org is not in the certificate CN=alice,O=Lab,C=XX")


def test_a_bad_signature_is_authentication_failed(root: Authority, monkeypatch: pytest.MonkeyPatch) -> None:
    original = ike_auth.sign
    monkeypatch.setattr(ike_auth, "sign", lambda c, octets, *a, **k: original(c, octets + b"!", *a, **k))
    pair = cert_pair(root)
    pair.initiate(cert_settings(root))  # type: ignore[arg-type]
    pair.pump()
    refused(pair, "bad signature")


def test_no_certificate_with_a_signature_is_authentication_failed(root: Authority) -> None:
    pair = cert_pair(root)
    pair.initiate(cert_settings(root))  # type: ignore[arg-type]
    original = ike_auth.cert_payloads
    ike_auth.cert_payloads = lambda credential: ()  # type: ignore[assignment]
    try:
        pair.pump()
    finally:
        ike_auth.cert_payloads = original
    refused(pair, "sent a signature AUTH but no certificate")


def test_a_psk_peer_does_not_take_a_signature(root: Authority) -> None:
    """The AUTH method picks the peer: a shared-key peer of the same ID does not apply."""
    peers = (PeerConfig("alice", IdPattern.parse(ALICE), PSK),)
    pair = cert_pair(root, peers=peers)
    pair.initiate(cert_settings(root))  # type: ignore[arg-type]
    pair.pump()
    refused(pair, "no peer is configured for ID C=XX, O=Lab, CN=alice with a signature")


def test_without_a_wall_clock_nothing_validates(root: Authority) -> None:
    pair = cert_pair(root)
    pair.wall = None
    pair.initiate(cert_settings(root))  # type: ignore[arg-type]
    pair.pump()
    refused(pair, "no wall-clock time")


def test_config_refuses_certificate_auth_without_what_it_needs(root: Authority) -> None:
    with pytest.raises(ConfigError, match=r"peers\[0\]\.auth: certificate authentication needs a trusted CA"):
        Config(peers=(PeerConfig("a", IdPattern.any(), PubkeyAuth()),), credential=moon(root))
    with pytest.raises(ConfigError, match=r"peers\[0\]\.local_auth: .* needs our certificate and key"):
        Config(peers=(PeerConfig("a", IdPattern.any(), PSK, local_auth=PubkeyAuth()),))
    with pytest.raises(ConfigError, match="does not belong to the first certificate"):
        Credential(moon(root).chain, alice(root).private_key)


# --------------------------------------------------------------------------- the peer's CERT payloads


def cert_message(*payloads: object) -> Message:
    header = Header(
        spi_i=bytes(8),
        spi_r=bytes(8),
        exchange_type=ExchangeType.IKE_AUTH,
        is_initiator=True,
        is_response=False,
        message_id=1,
    )
    return Message(header, tuple(payloads))  # type: ignore[arg-type]


def test_unsupported_cert_encodings_are_ignored_and_said(root: Authority) -> None:
    """RFC 7296 §3.6: a hash-and-URL or PKCS#7 CERT is not understood: ignored with a note, no crash."""
    leaf = alice(root).certificate.public_bytes(Encoding.DER)
    message = cert_message(
        CertPayload(CertEncoding.HASH_URL_X509_CERT, b"\x00" * 20 + b"http://ca.lab/alice.der"),
        CertPayload(CertEncoding.X509_CERT_SIGNATURE, leaf),
        CertPayload(CertEncoding.PKCS7_WRAPPED_X509, b"\x30\x00"),
    )
    found = peer_certificates(message)
    assert found.leaf is not None and found.leaf.public_bytes(Encoding.DER) == leaf
    assert found.ignored == (
        "CERT encoding HASH_URL_X509_CERT ignored",
        "CERT encoding PKCS7_WRAPPED_X509 ignored",
    )


def test_an_ignored_encoding_shows_in_the_established_line(
    root: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = ike_auth.cert_payloads
    extra = CertPayload(CertEncoding.HASH_URL_X509_CERT, b"\x00" * 20 + b"http://ca.lab/x")
    monkeypatch.setattr(ike_auth, "cert_payloads", lambda credential: (*original(credential), extra))
    pair = cert_pair(root)
    sa = pair.initiate(cert_settings(root))  # type: ignore[arg-type]
    pair.pump()
    assert sa.state is IkeSaState.ESTABLISHED
    assert "CERT encoding HASH_URL_X509_CERT ignored" in pair.events(RequestAnswered)[-1].result


@given(data=st.binary(max_size=200), encoding=st.sampled_from([4, 12, 1, 200]))
def test_any_cert_payload_is_read_or_refused(data: bytes, encoding: int) -> None:
    """Property: hostile CERT data yields a certificate, a note, or AuthenticationFailedError."""
    try:
        found = peer_certificates(cert_message(CertPayload(encoding, data)))
    except AuthenticationFailedError as error:
        assert "not a DER certificate" in error.reason
    else:
        assert found.leaf is not None or found.ignored


def test_a_dn_pattern_with_wildcards_selects_the_peer(root: Authority) -> None:
    """swanctl.conf users write `remote { id = "C=XX, O=Lab, CN=*" }`; RFC 4945 §3.1 binds the DN."""
    peers = (
        PeerConfig("others", IdPattern.parse("C=XX, O=Other, CN=*"), PubkeyAuth()),
        PeerConfig("lab", IdPattern.parse("C=XX, O=Lab, CN=*"), PubkeyAuth()),
    )
    pair = cert_pair(root, peers=peers)
    sa = pair.initiate(cert_settings(root))  # type: ignore[arg-type]
    pair.pump()
    assert sa.state is IkeSaState.ESTABLISHED
    assert "peer 'lab'" in pair.events(RequestAnswered)[-1].result


def test_without_a_usable_hash_we_fall_back_and_the_log_says_why(
    root: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 7427 §4: an initiator listing only SHA-1 gets ECDSA method 9 (RFC 4754), and the reason."""
    from responder.core.exchanges import ike_sa_init

    only_sha1 = NotifyPayload(NotifyType.SIGNATURE_HASH_ALGORITHMS, b"\x00\x01")
    monkeypatch.setattr(ike_sa_init, "signature_hashes_notify", lambda: only_sha1)
    pair = cert_pair(root)
    sa = pair.initiate(cert_settings(root))  # type: ignore[arg-type]
    pair.pump()
    assert sa.state is IkeSaState.ESTABLISHED  # our initiator verifies method 9 too
    [auth] = [p for p in auth_response(pair, sa) if isinstance(p, AuthPayload)]
    assert auth.method is AuthMethod.ECDSA_SHA256_P256
    result = pair.events(RequestAnswered)[-1].result
    assert (
        "we signed with ECDSA_SHA256_P256 (the peer's SIGNATURE_HASH_ALGORITHMS lists SHA1, no SHA-2"
        in result
    )


# --------------------------------------------------------------------------- hostile certificates


P256_OID = bytes.fromhex("06082a8648ce3d030107")
PRIME192V2_OID = bytes.fromhex("06082a8648ce3d030102")  # a curve cryptography cannot load


def hostile(der: bytes, kind: str) -> bytes:
    if kind == "unsupported-curve":
        assert P256_OID in der
        return der.replace(P256_OID, PRIME192V2_OID)
    if kind == "bad-utf8-subject":
        cn = b"\x0c\x05alice"
        assert cn in der
        return der.replace(cn, b"\x0c\x05al\xff\xfee")
    cn = b"\x0c\x05alice"  # a CN that would forge a log line
    return der.replace(cn, b"\x0c\x05al\n\x1be")


@pytest.mark.parametrize("kind", ["unsupported-curve", "bad-utf8-subject", "control-characters"])
def test_a_hostile_certificate_is_authentication_failed(
    root: Authority, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever cryptography trips on in a peer's CERT is the peer's fault: AUTHENTICATION_FAILED
    and one clean log line, never an internal error (the review's B1)."""
    leaf = alice(root).certificate.public_bytes(Encoding.DER)
    payload = CertPayload(CertEncoding.X509_CERT_SIGNATURE, hostile(leaf, kind))
    monkeypatch.setattr(ike_auth, "cert_payloads", lambda credential: (payload,))
    pair = cert_pair(root)
    pair.initiate(cert_settings(root))  # type: ignore[arg-type]
    pair.pump()
    refused(pair, "")
    result = pair.events(RequestAnswered)[-1].result
    assert "\n" not in result and "\x1b" not in result


@pytest.mark.parametrize("curve", [ec.SECP192R1(), ec.SECP256K1(), ec.BrainpoolP256R1()])
def test_a_leaf_on_a_curve_ike_does_not_use_is_refused(root: Authority, curve: ec.EllipticCurve) -> None:
    """RFC 4754 and RFC 8247 §3.1 know P-256, P-384 and P-521 only."""
    key = ec.generate_private_key(curve)
    leaf, _ = root.issue(ALICE, emails=["alice@example.org"])
    builder = (
        x509.CertificateBuilder()
        .subject_name(leaf.subject)
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(leaf.not_valid_before_utc)
        .not_valid_after(leaf.not_valid_after_utc)
    )
    for extension in leaf.extensions:
        if not isinstance(extension.value, x509.SubjectKeyIdentifier):
            builder = builder.add_extension(extension.value, extension.critical)
    odd = builder.sign(root.key, hashes.SHA256())  # type: ignore[arg-type]
    with pytest.raises(CertificateError, match=f"ECDSA on {curve.name} is not accepted"):
        validate_peer_certificate(odd, (), TrustStore((root.certificate,)), NOW.timestamp())


def test_initial_contact_does_not_cross_peers_or_methods(root: Authority) -> None:
    """RFC 7296 §2.4: INITIAL_CONTACT ends the same authenticated peer's SAs; a holder of the lab
    PSK naming a certificate peer's DN must not end that peer's SA (the review's R1)."""
    lab = Secret.parse("a lab key that everyone in the lab knows")
    pair = cert_pair(root, any_id_psk=lab)
    alice_sa = pair.initiate(cert_settings(root))  # type: ignore[arg-type]
    pair.pump()
    assert alice_sa.state is IkeSaState.ESTABLISHED
    [ours] = pair.responder.sas
    mallory = initiator_settings(
        SUITE, child_request(), psk=lab, local_id=Identity.parse(ALICE), initial_contact=True
    )
    other = pair.initiate(mallory)
    pair.pump()
    assert other.state is IkeSaState.ESTABLISHED  # as the lab peer
    assert ours.state is IkeSaState.ESTABLISHED  # alice's certificate SA stays


def test_a_ca_constraint_alone_sends_certreq(root: Authority) -> None:
    """A peer with its own `cacerts` and no [certificates]: CERTREQ still names that CA (the review's B5)."""
    peer = PeerConfig(
        "alice", IdPattern.parse(ALICE), PubkeyAuth((root.certificate,)), local_auth=PskAuth(PSK)
    )
    pair = Pair.create(responder_config(SUITE, peers=(peer,)))
    pair.initiate(initiator_settings(SUITE, child_request()))
    pair.pump()
    response = decode_message(messages(pair, ExchangeType.IKE_SA_INIT, "r->i")[0])
    [certreq] = [p for p in response.payloads if isinstance(p, CertReqPayload)]
    assert certreq.data == spki_sha1(root.certificate)


def test_configuration_refuses_what_cannot_work(root: Authority) -> None:
    """Found at load, named: an ID we would sign as that our certificate does not hold (R6), an
    EdDSA CA the validation library refuses as an issuer (R4), a CA key that cannot be read (B2)."""
    peer = PeerConfig("alice", IdPattern.parse(ALICE), PubkeyAuth(), local_id=Identity.parse("vpn.elsewhere"))
    with pytest.raises(ConfigError, match=r"^peers\[0\]\.local_id: vpn\.elsewhere is not in our certificate"):
        responder_config(SUITE, peers=(peer,), credential=moon(root), trust=TrustStore((root.certificate,)))
    ed_root = Authority.root("CN=Ed CA", key="ed25519")
    with pytest.raises(ConfigError, match="has an EdDSA key: the validation library does not accept"):
        TrustStore((ed_root.certificate,))
    weird = x509.load_der_x509_certificate(
        hostile(root.certificate.public_bytes(Encoding.DER), "unsupported-curve")
    )
    with pytest.raises(ConfigError, match="cannot be read"):
        TrustStore((weird,))
