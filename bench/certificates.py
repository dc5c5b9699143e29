"""Benchmark: the responder's CPU per handshake with certificate authentication, beside its crypto alone.

Run: ``python bench/certificates.py [--suite ecdsa-p256|rsa2048|all] [--seconds S]``.

A handshake is a fresh initiator :class:`~responder.core.endpoint.Endpoint` and a fresh
responder ``Endpoint`` exchanging IKE_SA_INIT and IKE_AUTH in memory (IKE
aes256gcm16-prfsha256-x25519, ESP aes256gcm16, one Child SA), both authenticating with
certificates from one CA: the initiator sends its certificate and a CERTREQ, the responder
validates the chain (``cryptography.x509.verification``, validity, EKU, keyUsage, key size,
ID binding), verifies the AUTH signature, signs its own AUTH and sends its certificate.  The
timer runs only around the responder's two ``receive`` calls (and the reading of what it
sends), so the figure is **the responder's CPU per handshake**.  Suites: the CA and both end
entities with ECDSA P-256 keys (signatures ECDSA with SHA-256, RFC 7427), or with RSA-2048
keys (RSASSA-PSS with SHA-256).  The same handshake with a shared key is printed beside them.

"Crypto only" is the cryptography the responder must do for the same handshake, measured in
the same run with the same primitives and nothing of the protocol around them:

* its X25519 key pair and the exchange; SKEYSEED, SK_* and the Child SA's KEYMAT;
* the IKE_AUTH request decrypted and the response encrypted (AES-GCM, real sizes);
* the CA's signature on the initiator's certificate checked, the initiator's AUTH signature
  checked over its signed octets (with their prf(SK_pi, IDi')), our signed octets and our
  AUTH signature made.

Not in it: the chain building and policy of the verification library beyond that one
signature, X.509 parsing, encoding and parsing of IKE, proposal and selector logic, state.
The ratio responder / crypto-only is the price of everything that is not cryptography.
"""

from __future__ import annotations

import argparse
import datetime
import random
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from handshake import PATH, REVERSE, per_call

from responder.core.auth import signed_octets
from responder.core.certificates import IPSEC_IKE
from responder.core.config import (
    ChildConfig,
    Config,
    Credential,
    EspProposal,
    Identity,
    IdPattern,
    IkeProposal,
    PeerConfig,
    PubkeyAuth,
    Secret,
    TrafficSelectorPolicy,
    TrustStore,
)
from responder.core.endpoint import Endpoint
from responder.core.enums import AuthMethod
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.initiator import ChildRequest, InitiatorSettings
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.keys import derive_child_sa_keys, derive_ike_sa_keys, skeyseed
from responder.core.payloads import IdiPayload, IdrPayload
from responder.core.selectors import to_selector
from responder.core.signatures import SIGNATURE_HASHES, PrivateKey, create_signature, verify_signature

IKE, ESP = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
SUITES = ("ecdsa-p256", "rsa2048")
NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
INITIATOR = "C=XX, O=Bench, CN=initiator"
RESPONDER = "C=XX, O=Bench, CN=responder"


def _key(suite: str) -> PrivateKey:
    if suite == "rsa2048":
        return rsa.generate_private_key(65537, 2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bench"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    subject: str, public: Any, issuer: x509.Certificate | None, signer: PrivateKey, *, ca: bool
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer is not None else _name(subject))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([IPSEC_IKE]), critical=False)
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    builder = builder.add_extension(usage, critical=True)
    if issuer is not None:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        builder = builder.add_extension(aki, critical=False)
    return builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]


class CertBench:
    """One suite: a CA, both credentials, both configurations, seeded randomness."""

    def __init__(self, suite: str, seed: int, *, psk: bool = False) -> None:
        ca_key = _key(suite)
        self.ca = _certificate("Bench CA", ca_key.public_key(), None, ca_key, ca=True)
        self.ca_key = ca_key
        keys = [_key(suite), _key(suite)]
        self.initiator_credential = Credential(
            (_certificate("initiator", keys[0].public_key(), self.ca, ca_key, ca=False),), keys[0]
        )
        self.responder_credential = Credential(
            (_certificate("responder", keys[1].public_key(), self.ca, ca_key, ca=False),), keys[1]
        )
        esp = (EspProposal.parse(ESP),)
        any4 = TrafficSelectorPolicy.any(4)
        child = ChildConfig("bench", local_ts=(any4,), remote_ts=(any4,), esp_proposals=esp)
        trust = TrustStore((self.ca,))
        secret = Secret.parse("benchmark shared key")
        auth = secret if psk else PubkeyAuth()
        peer = PeerConfig("initiator", IdPattern.parse(INITIATOR), auth, children=(child,))  # type: ignore[arg-type]
        self.config = Config(
            ike_proposals=(IkeProposal.parse(IKE),),
            peers=(peer,),
            credential=self.responder_credential,
            trust=trust,
        )
        selectors = (to_selector(any4),)
        self.settings = InitiatorSettings(
            (IkeProposal.parse(IKE),),
            Identity.parse(INITIATOR),
            secret if psk else None,
            child=ChildRequest(esp, selectors, selectors),
            credential=None if psk else self.initiator_credential,
            trust=trust,
        )
        self.wall = NOW.timestamp()
        self._streams = [random.Random(seed * 10 + i).randbytes for i in range(4)]
        self.last: tuple[IkeSa, IkeSa | None, list[bytes]] | None = None

    def handshake(self) -> float:
        """One handshake; returns the seconds spent inside the responder."""
        r_random, r_kex, i_random, i_kex = self._streams
        responder = Endpoint(self.config, r_random, KeyExchangeFactory(r_kex))
        initiator = Endpoint(Config(), i_random, KeyExchangeFactory(i_kex))
        sa = initiator.initiate(self.settings, PATH, 0.0, wall=self.wall)
        spent = 0.0
        wire: list[bytes] = []
        for _ in range(2):
            (request,) = initiator.messages_to_send()
            start = time.perf_counter()
            responder.receive(request.data, REVERSE, 0.0, wall=self.wall)
            (response,) = responder.messages_to_send()
            while responder.next_event() is not None:
                pass
            spent += time.perf_counter() - start
            initiator.receive(response.data, PATH, 0.0, wall=self.wall)
            wire += [request.data, response.data]
        while initiator.next_event() is not None:
            pass
        self.last = (sa, responder.sa(sa.spi_r), wire)
        return spent


def responder_time(bench: CertBench, seconds: float) -> float:
    """Median responder seconds per handshake over batches filling about ``seconds``."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        samples.append(bench.handshake())
    samples.sort()
    return samples[len(samples) // 2]


def check(bench: CertBench, *, signature: bool) -> None:
    """The benchmark measures real work: both ends established by the method claimed."""
    assert bench.last is not None
    initiator, responder, _wire = bench.last
    assert responder is not None
    assert initiator.state is responder.state is IkeSaState.ESTABLISHED
    assert len(responder.children) == 1
    if signature:
        assert responder.peer is not None and isinstance(responder.peer.auth, PubkeyAuth)


def crypto_only(bench: CertBench, seed: int) -> Callable[[], object]:
    """The responder's cryptography of the last handshake, as a function to time (module docstring)."""
    assert bench.last is not None
    sa, _responder, wire = bench.last
    assert sa.prf is not None and sa.encryption is not None and sa.proposal is not None
    prf, encr = sa.prf, sa.encryption
    method = sa.proposal.key_exchange
    assert method is not None
    child = next(iter(sa.children.values())).params.proposal
    esp_encr, esp_integ = child.encryption_transform(), child.integrity_transform()
    nonce_i, nonce_r, spi_i, spi_r = sa.nonce_i, sa.nonce_r, sa.spi_i, sa.spi_r
    init_request, init_response, auth_request, auth_response = wire
    initiator_id, responder_id = Identity.parse(INITIATOR), Identity.parse(RESPONDER)
    idi = IdiPayload(initiator_id.id_type, initiator_id.data)
    idr = IdrPayload(responder_id.id_type, responder_id.data)
    leaf = bench.initiator_credential.certificate
    ca_public = bench.ca.public_key()
    assert sa.keys is not None
    their_octets = signed_octets(prf, init_request, nonce_r, sa.keys.sk_pi, idi)
    their_auth = create_signature(bench.initiator_credential.private_key, their_octets, SIGNATURE_HASHES)
    assert their_auth.method == AuthMethod.DIGITAL_SIGNATURE
    initiator_public = leaf.public_key()
    our_key = bench.responder_credential.private_key
    sizes = []
    for data in (auth_request, auth_response):
        sizes.append(
            (data[:32], data[32 : 32 + encr.iv_size], bytes(len(data) - 32 - encr.iv_size - encr.icv_size))
        )
    factory_i = KeyExchangeFactory(random.Random(seed * 10 + 5).randbytes)
    factory_r = KeyExchangeFactory(random.Random(seed * 10 + 6).randbytes)
    public_i = factory_i.initiate(method).public_value

    def check_ca_signature() -> None:
        if isinstance(ca_public, rsa.RSAPublicKey):
            ca_public.verify(leaf.signature, leaf.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(ca_public, ec.EllipticCurvePublicKey)
            ca_public.verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))

    def run() -> None:
        _public_r, secret = factory_r.respond(method, public_i)
        seed_key = skeyseed(prf, nonce_i, nonce_r, secret)
        keys = derive_ike_sa_keys(prf, encr, None, seed_key, nonce_i, nonce_r, spi_i, spi_r)
        derive_child_sa_keys(prf, keys.sk_d, esp_encr, esp_integ, nonce_i, nonce_r)
        (head_q, iv_q, plain_q), (head_r, iv_r, plain_r) = sizes
        sealed = encr.keyed(keys.sk_ei).encrypt(iv_q, plain_q, head_q)
        encr.keyed(keys.sk_ei).decrypt(iv_q, sealed, head_q)  # the request: only the decryption counts
        check_ca_signature()
        octets = signed_octets(prf, init_request, nonce_r, sa.keys.sk_pi, idi)  # type: ignore[union-attr]
        verify_signature(initiator_public, octets, their_auth)  # type: ignore[arg-type]
        ours = signed_octets(prf, init_response, nonce_i, sa.keys.sk_pr, idr)  # type: ignore[union-attr]
        create_signature(our_key, ours, SIGNATURE_HASHES)
        encr.keyed(keys.sk_er).encrypt(iv_r, plain_r, head_r)

    def encryption_of_request() -> None:  # subtracted: run() seals the request only to open it
        (head_q, iv_q, plain_q), _ = sizes
        encr.keyed(sa.keys.sk_ei).encrypt(iv_q, plain_q, head_q)  # type: ignore[union-attr]

    run.encryption_of_request = encryption_of_request  # type: ignore[attr-defined]
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent on each measurement")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random.Random streams")
    args = parser.parse_args()

    for name in SUITES if args.suite == "all" else [args.suite]:
        bench = CertBench(name, args.seed)
        bench.handshake()
        check(bench, signature=True)
        crypto = crypto_only(bench, args.seed)
        crypto()
        psk = CertBench(name, args.seed, psk=True)
        psk.handshake()
        check(psk, signature=False)
        # alternate the measurements so a noisy machine hits all of them alike
        responder, crypto_time, psk_time = [], [], []
        for _ in range(3):
            responder.append(responder_time(bench, args.seconds / 3))
            crypto_time.append(
                per_call(crypto, args.seconds / 3) - per_call(crypto.encryption_of_request, 0.05)  # type: ignore[attr-defined]
            )
            psk_time.append(responder_time(psk, args.seconds / 3))
        r, c, p = sorted(responder)[1], sorted(crypto_time)[1], sorted(psk_time)[1]
        sizes = "/".join(str(len(m)) for m in bench.last[2]) if bench.last else "?"
        print(f"{name}: IKE {IKE}, ESP {ESP}; certificates from one {name} CA; messages {sizes} octets")
        print(f"  responder per handshake (certificates): {r * 1e6:9.1f} us   {1 / r:8.1f} handshakes/s")
        print(f"  crypto only (responder's share):        {c * 1e6:9.1f} us")
        print(f"  ratio responder/crypto:                 {r / c:9.2f}x")
        print(f"  same handshake with a shared key:       {p * 1e6:9.1f} us   (certificates x{r / p:.2f})")


if __name__ == "__main__":
    main()
