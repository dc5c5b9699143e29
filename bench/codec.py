"""Benchmark: decode and encode a typical IKE_AUTH request, beside the SK decrypt alone.

Run: ``python bench/codec.py [--seconds S]``.

The message is what a road-warrior initiator sends (strongSwan's shape): IDi,
INITIAL_CONTACT, AUTH (PSK), a CP request for IPv4/IPv6 addresses and DNS, an
ESP SA with two proposals, TSi/TSr for IPv4 and IPv6, and three status
notifies, protected with AES-GCM-256.  Every figure is measured in the same
run, so the ratios survive a noisy machine:

* decode = ``unprotect``: header, AEAD decryption, padding, payload parsing;
* encode = ``protect``: payload encoding, padding, AEAD encryption;
* SK decrypt alone = the same AES-GCM decryption through ``cryptography``
  with a prepared key, no parsing: the floor below which decode cannot go.
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from responder.core.enums import (
    AuthMethod,
    ConfigAttributeType,
    ConfigType,
    EncrId,
    EsnId,
    ExchangeType,
    IdType,
    IntegId,
    IpProtocol,
    NotifyType,
    ProtocolId,
    TransformAttributeType,
    TransformType,
)
from responder.core.messages import Header, encode_payloads
from responder.core.payloads import (
    AuthPayload,
    ConfigAttribute,
    ConfigPayload,
    IdiPayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    TrafficSelector,
    Transform,
    TransformAttribute,
    TsiPayload,
    TsrPayload,
)
from responder.core.sk_payload import SkProtection, protect_bytes, unprotect
from responder.core.transforms import encryption


def key_length(bits: int) -> tuple[TransformAttribute, ...]:
    return (TransformAttribute(TransformAttributeType.KEY_LENGTH, bits),)


def ike_auth_request_payloads() -> tuple[Payload, ...]:
    """The inner payloads of a typical IKE_AUTH request."""
    esp = SaPayload(
        (
            Proposal(
                1,
                ProtocolId.ESP,
                (
                    Transform(TransformType.ENCR, EncrId.AES_GCM_16, key_length(256)),
                    Transform(TransformType.ENCR, EncrId.AES_GCM_16, key_length(128)),
                    Transform(TransformType.ESN, EsnId.NO_ESN),
                ),
                spi=bytes.fromhex("c1a2b3d4"),
            ),
            Proposal(
                2,
                ProtocolId.ESP,
                (
                    Transform(TransformType.ENCR, EncrId.AES_CBC, key_length(256)),
                    Transform(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
                    Transform(TransformType.ESN, EsnId.NO_ESN),
                ),
                spi=bytes.fromhex("c1a2b3d4"),
            ),
        )
    )
    any4 = TrafficSelector(
        IpProtocol.ANY, 0, 65535, ipaddress.ip_address("0.0.0.0"),  # noqa: S104 (a traffic selector, not a bind)
        ipaddress.ip_address("255.255.255.255"),
    )
    any6 = TrafficSelector(
        IpProtocol.ANY,
        0,
        65535,
        ipaddress.ip_address("::"),
        ipaddress.ip_address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    )
    return (
        IdiPayload(IdType.ID_FQDN, b"roadwarrior.example.org"),
        NotifyPayload(NotifyType.INITIAL_CONTACT),
        AuthPayload(AuthMethod.SHARED_KEY_MIC, bytes(range(32))),
        ConfigPayload(
            ConfigType.CFG_REQUEST,
            tuple(
                ConfigAttribute(t)
                for t in (
                    ConfigAttributeType.INTERNAL_IP4_ADDRESS,
                    ConfigAttributeType.INTERNAL_IP4_DNS,
                    ConfigAttributeType.INTERNAL_IP6_ADDRESS,
                    ConfigAttributeType.INTERNAL_IP6_DNS,
                )
            ),
        ),
        esp,
        TsiPayload((any4, any6)),
        TsrPayload((any4, any6)),
        NotifyPayload(NotifyType.MOBIKE_SUPPORTED),
        NotifyPayload(NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED),
        NotifyPayload(NotifyType.NON_FIRST_FRAGMENTS_ALSO),
    )


def per_call(function: Callable[[], object], seconds: float) -> float:
    """Median seconds per call over batches filling about ``seconds``."""
    calls = 1
    while True:  # size a batch to ~10 ms
        start = time.perf_counter()
        for _ in range(calls):
            function()
        if time.perf_counter() - start > 0.01:
            break
        calls *= 2
    samples = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        start = time.perf_counter()
        for _ in range(calls):
            function()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each measurement")
    args = parser.parse_args()

    header = Header(
        spi_i=bytes.fromhex("0011223344556677"),
        spi_r=bytes.fromhex("8899aabbccddeeff"),
        exchange_type=ExchangeType.IKE_AUTH,
        is_initiator=True,
        is_response=False,
        message_id=1,
    )
    payloads = ike_auth_request_payloads()
    key = bytes(range(36))
    protection = SkProtection.create(encryption(EncrId.AES_GCM_16, 256), None, key)
    iv = bytes(8)
    def protect() -> bytes:
        first_inner, inner = encode_payloads(payloads)
        return protect_bytes(protection, header, first_inner, inner, iv)

    message = protect()
    assert unprotect(protection, message)[0].payloads == payloads  # the benchmark measures real work

    aead, nonce = AESGCM(key[:32]), key[32:] + iv
    aad, sealed = message[:32], message[40:]
    _, inner = encode_payloads(payloads)

    decode = per_call(lambda: unprotect(protection, message), args.seconds)
    encode = per_call(protect, args.seconds)
    decrypt = per_call(lambda: aead.decrypt(nonce, sealed, aad), args.seconds)
    print(f"IKE_AUTH request: {len(message)} octets, {len(payloads)} inner payloads ({len(inner)} octets)")
    print(f"  SK decrypt alone (AES-GCM-256): {decrypt * 1e6:8.2f} us   1.00x")
    print(f"  decode (unprotect + parse):     {decode * 1e6:8.2f} us   {decode / decrypt:5.2f}x")
    print(f"  encode (encode + protect):      {encode * 1e6:8.2f} us   {encode / decrypt:5.2f}x")


if __name__ == "__main__":
    main()
