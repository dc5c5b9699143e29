"""Benchmark: whole IKE_SA_INIT + IKE_AUTH handshakes in one process, beside their crypto alone.

Run: ``python bench/handshake.py [--suite x25519|modp2048|all] [--seconds S] [--seed N]``.

A handshake is an initiator :class:`~responder.core.endpoint.Endpoint` and a responder
``Endpoint`` (fresh ones each time, so no state piles up; building them costs a few
microseconds) exchanging the four messages in memory, with no I/O: PSK authentication, one
Child SA (tunnel, any IPv4), both sides' events drained as a shell would.  Suites:

* ``x25519``: IKE aes256gcm16-prfsha256-x25519, ESP aes256gcm16;
* ``modp2048``: IKE aes128-sha256-modp2048 (AES-CBC-128, HMAC-SHA2-256-128, PRF-HMAC-SHA2-256),
  ESP aes128-sha256.

"Crypto only" is the cryptography of the same handshake measured in the same run, through the
core's own primitives with nothing of the protocol around them:

* both key pairs and both exchanges (``KeyExchangeFactory.initiate``/``respond`` and
  ``shared_secret``);
* SKEYSEED and SK_* on both sides, Child SA KEYMAT on both sides;
* the four PSK AUTH computations (initiator creates and responder checks AUTHi, responder
  creates and initiator checks AUTHr), each ``signed_octets`` (with its prf(SK_p, ID')) and
  ``psk_auth`` over the real IKE_SA_INIT messages;
* the two IKE_AUTH messages keyed, encrypted (and MACed for CBC) by the sender, checked and
  decrypted by the receiver, at the sizes the handshake really sends.

Not in it: NAT detection hashes, encoding and parsing, proposal and selector logic, state.  The
ratio handshake / crypto-only is the price of everything that is not cryptography.

Randomness: ``random.Random(seed).randbytes``, one stream per endpoint and per key-exchange
factory, so a run is reproducible (bench code only: the core itself takes whatever
``random_bytes`` it is given, ``os.urandom`` in the shell).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from ipaddress import ip_address

import attrs

from responder.core.auth import psk_auth, signed_octets
from responder.core.config import (
    ChildConfig,
    Config,
    EspProposal,
    Identity,
    IdPattern,
    IkeProposal,
    PeerConfig,
    Secret,
    TrafficSelectorPolicy,
)
from responder.core.endpoint import Endpoint
from responder.core.enums import ExchangeType
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.initiator import ChildRequest, InitiatorSettings
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.keys import derive_child_sa_keys, derive_ike_sa_keys, skeyseed
from responder.core.messages import decode_header
from responder.core.path import Path, Transport
from responder.core.payloads import IdiPayload, IdrPayload
from responder.core.selectors import to_selector

SUITES = {
    "x25519": ("aes256gcm16-prfsha256-x25519", "aes256gcm16"),
    "modp2048": ("aes128-sha256-modp2048", "aes128-sha256"),
}

PSK = Secret.parse("benchmark shared key")
INITIATOR_ID = Identity.parse("@initiator.example")
RESPONDER_ID = Identity.parse("@responder.example")
PATH = Path(Transport.UDP, ip_address("192.0.2.1"), 500, ip_address("192.0.2.2"), 500)  # initiator's view
REVERSE = Path(Transport.UDP, ip_address("192.0.2.2"), 500, ip_address("192.0.2.1"), 500)


def per_call(function: Callable[[], object], seconds: float) -> float:
    """Median seconds per call over batches filling about ``seconds`` (as in bench/codec.py)."""
    calls = 1
    while True:  # size a batch to ~10 ms
        start = time.perf_counter()
        for _ in range(calls):
            function()
        if time.perf_counter() - start > 0.01:
            break
        calls *= 2
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        start = time.perf_counter()
        for _ in range(calls):
            function()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


@attrs.frozen
class Handshake:
    """What one handshake produced, for the checks and for the crypto-only sizes."""

    initiator: IkeSa
    responder: IkeSa | None
    wire: tuple[bytes, ...]  # IKE_SA_INIT request, response, IKE_AUTH request, response


@attrs.define
class Bench:
    """One suite: the two configurations and the seeded randomness of every party."""

    ike: str
    esp: str
    seed: int
    responder_config: Config = attrs.field(init=False)
    settings: InitiatorSettings = attrs.field(init=False)
    _streams: list[Callable[[int], bytes]] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        esp = (EspProposal.parse(self.esp),)
        any4 = TrafficSelectorPolicy.any(4)
        child = ChildConfig("bench", local_ts=(any4,), remote_ts=(any4,), esp_proposals=esp)
        peer = PeerConfig(
            "initiator", IdPattern.parse("@initiator.example"), PSK, local_id=RESPONDER_ID, children=(child,)
        )
        self.responder_config = Config(ike_proposals=(IkeProposal.parse(self.ike),), peers=(peer,))
        selectors = (to_selector(any4),)
        self.settings = InitiatorSettings(
            (IkeProposal.parse(self.ike),),
            INITIATOR_ID,
            PSK,
            remote_id=RESPONDER_ID,
            child=ChildRequest(esp, selectors, selectors),
        )
        self._streams = [random.Random(self.seed * 10 + i).randbytes for i in range(4)]

    def handshake(self) -> Handshake:
        """One IKE_SA_INIT + IKE_AUTH between fresh endpoints, messages moved by hand."""
        r_random, r_kex, i_random, i_kex = self._streams
        responder = Endpoint(self.responder_config, r_random, KeyExchangeFactory(r_kex))
        initiator = Endpoint(Config(), i_random, KeyExchangeFactory(i_kex))
        sa = initiator.initiate(self.settings, PATH, 0.0)
        wire = []
        for _ in range(2):
            (request,) = initiator.messages_to_send()
            responder.receive(request.data, REVERSE, 0.0)
            (response,) = responder.messages_to_send()
            initiator.receive(response.data, PATH, 0.0)
            wire += [request.data, response.data]
        for endpoint in (responder, initiator):
            while endpoint.next_event() is not None:
                pass
        return Handshake(sa, responder.sa(sa.spi_r), tuple(wire))


def check(sample: Handshake) -> None:
    """The benchmark measures real work: both SAs and the Child SA are up, keys agree."""
    i, r = sample.initiator, sample.responder
    assert r is not None
    assert i.state is r.state is IkeSaState.ESTABLISHED
    assert i.keys == r.keys and i.keys is not None
    assert len(i.children) == len(r.children) == 1
    [ic], [rc] = i.children.values(), r.children.values()
    assert ic.params.keys == rc.params.keys
    assert ic.inbound_spi == rc.outbound_spi
    exchanges = [decode_header(m)[0].exchange_type for m in sample.wire]
    assert exchanges == [ExchangeType.IKE_SA_INIT] * 2 + [ExchangeType.IKE_AUTH] * 2


def crypto_only(sample: Handshake, seed: int) -> Callable[[], object]:
    """The cryptography of ``sample``'s handshake, as a function to time (see the module docstring)."""
    i = sample.initiator
    assert i.proposal is not None and i.prf is not None and i.encryption is not None
    assert i.children
    prf, encr, integ = i.prf, i.encryption, i.integrity
    method = i.proposal.key_exchange
    assert method is not None
    child = next(iter(i.children.values())).params.proposal
    esp_encr, esp_integ = child.encryption_transform(), child.integrity_transform()
    nonce_i, nonce_r, spi_i, spi_r = i.nonce_i, i.nonce_r, i.spi_i, i.spi_r
    init_request, init_response, auth_request, auth_response = sample.wire
    idi = IdiPayload(INITIATOR_ID.id_type, INITIATOR_ID.data)
    idr = IdrPayload(RESPONDER_ID.id_type, RESPONDER_ID.data)
    psk = PSK.value
    icv = integ.icv_size if integ is not None else encr.icv_size
    # Per IKE_AUTH message: the AAD/MAC prefix (IKE header + SK header), the IV, the padded plaintext.
    messages = []
    for data in (auth_request, auth_response):
        head_end, iv_end = 32, 32 + encr.iv_size
        messages.append((data[:head_end], data[head_end:iv_end], bytes(len(data) - iv_end - icv)))
    factory_i = KeyExchangeFactory(random.Random(seed * 10 + 5).randbytes)
    factory_r = KeyExchangeFactory(random.Random(seed * 10 + 6).randbytes)

    def run() -> None:
        kex = factory_i.initiate(method)
        public_r, secret_r = factory_r.respond(method, kex.public_value)
        secret_i = kex.shared_secret(public_r)
        keys = []
        for secret in (secret_i, secret_r):
            seed = skeyseed(prf, nonce_i, nonce_r, secret)
            sa_keys = derive_ike_sa_keys(prf, encr, integ, seed, nonce_i, nonce_r, spi_i, spi_r)
            derive_child_sa_keys(prf, sa_keys.sk_d, esp_encr, esp_integ, nonce_i, nonce_r)
            keys.append(sa_keys)
        k = keys[0]
        auth_i = [
            psk_auth(prf, psk, signed_octets(prf, init_request, nonce_r, k.sk_pi, idi)) for _ in range(2)
        ]
        auth_r = [
            psk_auth(prf, psk, signed_octets(prf, init_response, nonce_i, k.sk_pr, idr)) for _ in range(2)
        ]
        assert auth_i[0] == auth_i[1] and auth_r[0] == auth_r[1]
        directions = ((k.sk_ei, k.sk_ai), (k.sk_er, k.sk_ar))
        for (head, iv, plaintext), (sk_e, sk_a) in zip(messages, directions, strict=True):
            sender, receiver = encr.keyed(sk_e), encr.keyed(sk_e)
            if integ is None:
                sealed = sender.encrypt(iv, plaintext, head)
                opened = receiver.decrypt(iv, sealed, head)
            else:
                ciphertext = sender.encrypt(iv, plaintext, b"")
                mac = integ.keyed(sk_a).compute(head + iv + ciphertext)
                assert integ.keyed(sk_a).verify(head + iv + ciphertext, mac)
                opened = receiver.decrypt(iv, ciphertext, b"")
            assert opened == plaintext

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each measurement")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random.Random streams")
    args = parser.parse_args()

    print("randomness: random.Random(seed).randbytes, seed", args.seed)
    for name in SUITES if args.suite == "all" else [args.suite]:
        ike, esp = SUITES[name]
        bench = Bench(ike, esp, args.seed)
        sample = bench.handshake()
        check(sample)
        crypto = crypto_only(sample, args.seed)
        crypto()  # its own checks: exchanges agree, AUTH values repeat, messages decrypt
        sizes = "/".join(str(len(m)) for m in sample.wire)
        handshake = per_call(bench.handshake, args.seconds)
        crypto_time = per_call(crypto, args.seconds)
        print(f"{name}: IKE {ike}, ESP {esp}; messages {sizes} octets")
        print(f"  handshake (both ends): {handshake * 1e6:10.1f} us   {1 / handshake:8.1f} handshakes/s")
        print(f"  crypto only:           {crypto_time * 1e6:10.1f} us")
        print(f"  ratio handshake/crypto: {handshake / crypto_time:9.2f}x")


if __name__ == "__main__":
    main()
