"""Benchmark: the responder's ESP data plane per packet, in the core, beside the AEAD alone.

Run: ``python bench/esp.py [--suite aes256gcm16,...] [--sizes 1400,64] [--seconds S]``.

One IKE SA with one Child SA is made between two in-memory endpoints (tunnel mode, the
responder's Child SA with the echo or the API backend).  For each inner packet size the
initiator seals a batch of ICMP echo requests; the timer then runs only around the
responder's :meth:`~responder.core.endpoint.Endpoint.receive_esp` calls and the taking of
what they produce:

* **echo**: open (replay window, ICV, padding), parse the request, build the reply, seal it,
  queue it: the figure a client pinging through the tunnel meets;
* **api**: open and queue the inner packet for the program (``take_inner``).

"AEAD only" is the cryptography of the same packet measured in the same run with
``cryptography`` directly: one decryption of the request and, for echo, one encryption of the
reply (AES-GCM or ChaCha20-Poly1305 with the SPI and sequence number as AAD; for AES-CBC with
HMAC-SHA2-256-128 the HMAC check and the decryption, then the encryption and the HMAC).  The
ratio core / AEAD is the price of everything that is not cryptography.

Not in it: sockets and the RFC 9329 framing (the shell's part), so this is the core's ceiling
on one core, not yet the figure over TCP or UDP the issue asks for (a later step).
"""

from __future__ import annotations

import argparse
import functools
import hmac
import ipaddress
import os
import random
import statistics
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

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
from responder.core.data_plane import IPV4_IN_ESP
from responder.core.echo import echo_request
from responder.core.endpoint import Endpoint
from responder.core.initiator import ChildRequest, InitiatorSettings
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.path import Path, Transport
from responder.core.selectors import to_selector

IKE = "aes256gcm16-prfsha256-x25519"
SUITES = ("aes256gcm16", "aes128gcm16", "chacha20poly1305", "aes256-sha256")
PSK = Secret.parse("benchmark shared key")
PATH = Path(
    Transport.TCP, ipaddress.ip_address("192.0.2.1"), 40001, ipaddress.ip_address("192.0.2.2"), 4500, 1
)
REVERSE = Path(Transport.TCP, PATH.remote_address, 4500, PATH.local_address, 40001, 1)
ME, THEM = ipaddress.ip_address("10.0.0.2"), ipaddress.ip_address("192.0.2.10")


def pair(esp: str, backend: str, seed: int) -> tuple[Endpoint, Endpoint, bytes, bytes]:
    """Both endpoints with one IKE SA and one Child SA; (initiator, responder, our SPI, child)."""
    streams = [random.Random(seed * 10 + i).randbytes for i in range(4)]
    any4 = TrafficSelectorPolicy.any(4)
    proposals = (EspProposal.parse(esp),)
    child = ChildConfig(
        "bench", local_ts=(any4,), remote_ts=(any4,), esp_proposals=proposals, backend=backend
    )
    peer = PeerConfig("i", IdPattern.parse("@initiator.example"), PSK, children=(child,))
    responder = Endpoint(
        Config(ike_proposals=(IkeProposal.parse(IKE),), peers=(peer,)),
        streams[0],
        KeyExchangeFactory(streams[1]),
    )
    initiator = Endpoint(Config(), streams[2], KeyExchangeFactory(streams[3]))
    selectors = (to_selector(any4),)
    settings = InitiatorSettings(
        (IkeProposal.parse(IKE),),
        Identity.parse("@initiator.example"),
        PSK,
        child=ChildRequest(proposals, selectors, selectors),
    )
    sa = initiator.initiate(settings, PATH, 0.0)
    for _ in range(2):
        (request,) = initiator.messages_to_send()
        responder.receive(request.data, REVERSE, 0.0)
        (response,) = responder.messages_to_send()
        initiator.receive(response.data, PATH, 0.0)
    [inbound] = sa.children
    return initiator, responder, sa.local_spi, inbound


def sealed_batch(initiator: Endpoint, local_spi: bytes, child: bytes, size: int, count: int) -> list[bytes]:
    data = bytes(max(0, size - 28))  # IPv4 + ICMP headers: 28 octets
    out = []
    for sequence in range(count):
        packet = echo_request(ME, THEM, identifier=1, sequence=sequence & 0xFFFF, data=data)
        assert initiator.send_inner(local_spi, child, packet, IPV4_IN_ESP, 0.0)
        [esp] = initiator.messages_to_send()
        out.append(esp.data)
    return out


def per_packet(make: Callable[[], list[bytes]], run: Callable[[list[bytes]], None], seconds: float) -> float:
    """Median seconds per packet over batches (each batch freshly sealed, outside the timer)."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        batch = make()
        start = time.perf_counter()
        run(batch)
        samples.append((time.perf_counter() - start) / len(batch))
    return statistics.median(samples)


def aead_only(esp: str, size: int, echo: bool) -> Callable[[list[bytes]], None]:
    """The cryptography alone for packets of ``size``: decrypt (and for echo encrypt) each one."""
    inner = bytes(size)
    plaintext = inner + bytes(range(1, (-(size + 2) % 4) + 1)) + b"\x00\x04"
    aad = bytes(8)
    if esp == "aes256-sha256":
        key, mac_key, iv = os.urandom(32), os.urandom(32), os.urandom(16)
        padded = plaintext + bytes(-len(plaintext) % 16)
        encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(padded) + encryptor.finalize()
        icv = hmac.digest(mac_key, aad + iv + ciphertext, "sha256")[:16]

        def cbc(batch: list[bytes]) -> None:
            for _ in batch:
                assert hmac.compare_digest(hmac.digest(mac_key, aad + iv + ciphertext, "sha256")[:16], icv)
                decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
                decryptor.update(ciphertext)
                decryptor.finalize()
                if echo:
                    again = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
                    out = again.update(padded) + again.finalize()
                    hmac.digest(mac_key, aad + iv + out, "sha256")

        return cbc
    bits = 128 if esp == "aes128gcm16" else 256
    aead: AESGCM | ChaCha20Poly1305 = (
        ChaCha20Poly1305(os.urandom(32)) if esp == "chacha20poly1305" else AESGCM(os.urandom(bits // 8))
    )
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, plaintext, aad)

    def gcm(batch: list[bytes]) -> None:
        for _ in batch:
            aead.decrypt(nonce, sealed, aad)
            if echo:
                aead.encrypt(nonce, plaintext, aad)

    return gcm


def receive_all(responder: Endpoint, batch: list[bytes]) -> None:
    """The responder takes a batch of ESP packets and what it produces is taken from it."""
    for data in batch:
        responder.receive_esp(data, REVERSE, 0.0)
    responder.messages_to_send()
    responder.data_plane.take_inner()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=",".join(SUITES), help="ESP proposals, comma-separated")
    parser.add_argument("--sizes", default="1400,64", help="inner packet sizes in octets")
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each measurement")
    parser.add_argument("--batch", type=int, default=256, help="packets per timed batch")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print("ESP in the core (no sockets): responder per packet beside the AEAD alone, one core")
    heading = ("suite", "backend", "size", "us/pkt", "pkt/s", "Mbit/s", "aead us", "ratio")
    print("{:18} {:7} {:>5} {:>8} {:>9} {:>8} {:>8} {:>6}".format(*heading))
    for esp in args.suite.split(","):
        for backend in ("echo", "api"):
            initiator, responder, spi, child = pair(esp, backend, args.seed)
            for size in (int(s) for s in args.sizes.split(",")):
                make = functools.partial(sealed_batch, initiator, spi, child, size, args.batch)
                run = functools.partial(receive_all, responder)
                check = make()[:1]
                run(check)
                assert responder.last_esp == ("answered (echo)" if backend == "echo" else "delivered")
                core = per_packet(make, run, args.seconds)
                crypto = aead_only(esp, size, backend == "echo")
                baseline = per_packet(lambda: [b""] * args.batch, crypto, args.seconds / 2)
                print(
                    f"{esp:18} {backend:7} {size:5d} {core * 1e6:8.2f} {1 / core:9.0f} "
                    f"{size * 8 / core / 1e6:8.1f} {baseline * 1e6:8.2f} {core / baseline:5.1f}x"
                )


if __name__ == "__main__":
    main()
