"""The user-space ESP SA (RFC 4303): known answers, round trips, every reason to drop.

Known answers: RFC 7634 Appendix A (ChaCha20-Poly1305) byte for byte, and the ESP packets
strongSwan exchanged in the harvests of ``tests/vectors/strongswan/`` (AES-GCM-16 and
AES-CBC with HMAC-SHA2-256-128): each is opened with the captured keys in both roles, and
sealing the decrypted packet again with the captured IV gives strongSwan's bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from responder.core.child_sa import ChildSaParams
from responder.core.config import Mode
from responder.core.enums import EncrId, EsnId, IntegId, ProtocolId
from responder.core.errors import LocalError
from responder.core.esp import (
    NEXT_HEADER_DUMMY,
    Dropped,
    DropReason,
    EspInbound,
    EspOutbound,
    EspSuite,
    Opened,
    SequenceExhausted,
    esp_sa,
)
from responder.core.keys import ChildSaKeys
from responder.core.proposals import ChosenProposal
from responder.core.replay import MAX_SEQ_32, MAX_SEQ_64, ReplayWindow
from responder.core.transforms import encryption, integrity

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "strongswan"
SPI = bytes.fromhex("01020304")
IPV4 = 4

#: (ENCR, key bits, INTEG) of every suite the ESP SA supports.
SUITES = [
    (EncrId.AES_GCM_16, 128, None),
    (EncrId.AES_GCM_16, 256, None),
    (EncrId.CHACHA20_POLY1305, None, None),
    (EncrId.AES_CBC, 128, IntegId.HMAC_SHA1_96),
    (EncrId.AES_CBC, 128, IntegId.HMAC_SHA2_256_128),
    (EncrId.AES_CBC, 192, IntegId.HMAC_SHA2_384_192),
    (EncrId.AES_CBC, 256, IntegId.HMAC_SHA2_512_256),
    (EncrId.NULL, None, IntegId.HMAC_SHA2_256_128),
]
SUITE_IDS = [f"{e.name}-{b}-{i.name if i else 'AEAD'}" for e, b, i in SUITES]


def suite_of(encr: EncrId, bits: int | None, integ: IntegId | None, esn: bool) -> EspSuite:
    cipher = None if encr is EncrId.NULL else encryption(encr, bits)
    return EspSuite(cipher, None if integ is None else integrity(integ), esn)


def pair(suite: EspSuite, window: int = 64) -> tuple[EspOutbound, EspInbound]:
    """A sender and the receiver of the same one-way SA, with keys made of counting octets."""
    encr_size, integ_size = suite.key_sizes()
    encr_key, integ_key = bytes(range(encr_size)), bytes(range(100, 100 + integ_size))
    cipher, integ = suite.keyed(encr_key, integ_key)
    cipher2, integ2 = suite.keyed(encr_key, integ_key)
    outbound = EspOutbound(SPI, suite, cipher=cipher, integrity=integ)
    inbound = EspInbound(
        SPI, suite, cipher=cipher2, integrity=integ2, window=ReplayWindow(window, esn=suite.esn)
    )
    return outbound, inbound


def iv_for(outbound: EspOutbound, fill: int = 0xA5) -> bytes | None:
    return bytes([fill]) * outbound.iv_size if outbound.needs_random_iv else None


def seal(outbound: EspOutbound, inner: bytes, next_header: int = IPV4) -> bytes:
    return outbound.seal(inner, next_header, iv_for(outbound))


# ---------------------------------------------------------------------------
# RFC 7634 Appendix A
# ---------------------------------------------------------------------------

_A_KEYMAT = bytes(range(0x80, 0xA0)) + bytes.fromhex("a0a1a2a3")
_A_SOURCE = bytes.fromhex(
    "45000054a6f200004001e778c6336405c000020508005b7a3a080000553bec10"
    "0007362708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223"
    "2425262728292a2b2c2d2e2f3031323334353637"
)
# The ESP packet of the appendix after its 20-octet outer IPv4 header.
_A_ESP = bytes.fromhex(
    "0102030400000005101112131415161724039428b97f417e3c13753a"
    "4f05087b67c352e6a7fab1b982d466ef407ae5c614ee8099d52844eb61aa95df"
    "ab4c02f72aa71e7c4c4f64c9befe2facc638e8f3cbec163fac469b502773f6fb"
    "94e664da9165b82829f641e076aaa8266b7fb0f7b11b369907e1ad43"
)


def test_rfc7634_appendix_a_esp_packet() -> None:
    """RFC 7634 App. A: next sequence number 5, IV 0x1011..17, padding 1 2, Next Header 4."""
    suite = EspSuite(encryption(EncrId.CHACHA20_POLY1305, None), None)
    cipher, _ = suite.keyed(_A_KEYMAT, b"")
    outbound = EspOutbound(SPI, suite, cipher=cipher, integrity=None, last_seq=4)
    assert outbound.seal(_A_SOURCE, IPV4, bytes.fromhex("1011121314151617")) == _A_ESP
    cipher, _ = suite.keyed(_A_KEYMAT, b"")
    inbound = EspInbound(SPI, suite, cipher=cipher, integrity=None, window=ReplayWindow())
    assert inbound.open(_A_ESP) == Opened(IPV4, _A_SOURCE, 5)
    assert (inbound.counters.packets, inbound.counters.octets) == (1, len(_A_SOURCE))


# ---------------------------------------------------------------------------
# strongSwan's packets
# ---------------------------------------------------------------------------


def harvest_sas(vector: dict[str, object], initiated: bool) -> list[ChildSaParams]:
    """The Child SAs of a harvest as one end saw them: the initiator's (initiated) or the responder's."""
    transforms = vector["esp_transforms"]
    assert isinstance(transforms, dict)
    integ = transforms.get("integ")
    sas = []
    for child in vector["child_sas"]:  # type: ignore[attr-defined]
        proposal = ChosenProposal(
            1,
            ProtocolId.ESP,
            bytes.fromhex(child["spi_i"]),
            (EncrId(transforms["encr"]), transforms["encr_key_bits"]),
            None,
            None if integ is None else IntegId(integ),
            None,
            EsnId(transforms["esn"]),
        )
        keys = ChildSaKeys(
            *(bytes.fromhex(child[k] or "") for k in ("encr_i", "integ_i", "encr_r", "integ_r"))
        )
        ours, theirs = (child["spi_i"], child["spi_r"])[:: 1 if initiated else -1]
        sas.append(
            ChildSaParams(
                "harvest",
                proposal,
                bytes.fromhex(ours),
                bytes.fromhex(theirs),
                (),
                (),
                Mode.TUNNEL,
                keys,
                initiated=initiated,
            )
        )
    return sas


@pytest.mark.parametrize("initiated", [False, True], ids=["as-responder", "as-initiator"])
@pytest.mark.parametrize("suite", ["x25519-aes256gcm16-prfsha256", "modp2048-aes256cbc-sha256"])
def test_strongswan_esp_packets(suite: str, initiated: bool) -> None:
    """Every captured packet towards us opens to its ping; ours seal to strongSwan's bytes."""
    vector = json.loads((VECTORS / f"{suite}.json").read_text())
    sas = [esp_sa(params) for params in harvest_sas(vector, initiated)]
    towards_us = "responder->initiator" if initiated else "initiator->responder"
    opened = sealed = 0
    for packet in vector["esp_packets"]:
        raw = bytes.fromhex(packet["raw"])
        sa = sas[packet["child_sa"]]
        inner = bytes.fromhex(packet["inner_packet"])
        if packet["direction"] == towards_us:
            assert raw[:4] == sa.inbound.spi
            assert sa.open(raw) == Opened(packet["next_header"], inner, packet["seq"])
            assert sa.open(raw) == Dropped(DropReason.REPLAY)
            opened += 1
        else:
            assert raw[:4] == sa.outbound.spi
            iv = raw[8 : 8 + sa.outbound.iv_size]
            assert sa.seal(inner, packet["next_header"], iv) == raw
            assert sa.outbound.last_seq == packet["seq"]
            sealed += 1
    assert opened == sealed == 6
    assert [sa.inbound.counters.packets for sa in sas] == [2, 4]
    assert [sa.inbound.counters.replay_drops for sa in sas] == [2, 4]


def test_esp_sa_picks_keys_by_role() -> None:
    """RFC 7296 §2.17: the initiator sends with *_i; both ends of one pair talk, two initiators do not."""
    vector = json.loads((VECTORS / "x25519-aes256gcm16-prfsha256.json").read_text())
    initiator = esp_sa(harvest_sas(vector, True)[0])
    responder = esp_sa(harvest_sas(vector, False)[0])
    assert responder.open(initiator.seal(b"ping", IPV4)) == Opened(IPV4, b"ping", 1)
    assert initiator.open(responder.seal(b"pong", IPV4)) == Opened(IPV4, b"pong", 1)
    # The responder's SPIs with the initiator's keys: the peer's packets fail their tag.
    confused = esp_sa(attrs.evolve(harvest_sas(vector, False)[0], initiated=True))
    assert confused.open(initiator.seal(b"x", IPV4)) == Dropped(DropReason.INTEGRITY, 2)
    # Our own packets go to the peer's SPI, not ours.
    assert initiator.open(initiator.seal(b"loop", IPV4)) == Dropped(DropReason.WRONG_SPI)


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("esn", [False, True], ids=["32bit", "esn"])
@pytest.mark.parametrize(("encr", "bits", "integ"), SUITES, ids=SUITE_IDS)
def test_round_trip(encr: EncrId, bits: int | None, integ: IntegId | None, esn: bool) -> None:
    suite = suite_of(encr, bits, integ, esn)
    outbound, inbound = pair(suite)
    for size in (0, 1, 2, 3, 15, 16, 17, 100):
        inner = bytes(range(size))
        packet = seal(outbound, inner, 41)
        body = len(packet) - 8 - suite.iv_size - suite.icv_size
        assert body % suite.alignment == 0 and body >= size + 2
        assert body - size - 2 < suite.alignment  # minimal padding
        assert inbound.open(packet) == Opened(41, inner, outbound.last_seq)
    assert inbound.counters.packets == outbound.counters.packets == 8
    assert inbound.counters.octets == outbound.counters.octets == sum((0, 1, 2, 3, 15, 16, 17, 100))


def test_aead_iv_defaults_to_the_sequence_number() -> None:
    """RFC 4106 §3.1: a counter is a valid IV; the core draws no randomness for it."""
    outbound, _ = pair(suite_of(EncrId.AES_GCM_16, 128, None, esn=True))
    outbound.last_seq = 0x1_0000_0002
    packet = outbound.seal(b"data", IPV4)
    assert packet[4:8] == (3).to_bytes(4, "big")  # only the low 32 bits travel
    assert packet[8:16] == (0x1_0000_0003).to_bytes(8, "big")


def test_cbc_needs_the_callers_iv() -> None:
    outbound, inbound = pair(suite_of(EncrId.AES_CBC, 128, IntegId.HMAC_SHA2_256_128, esn=False))
    assert outbound.needs_random_iv and outbound.iv_size == 16
    with pytest.raises(LocalError):
        outbound.seal(b"x", IPV4)
    with pytest.raises(LocalError):
        outbound.seal(b"x", IPV4, bytes(8))
    with pytest.raises(LocalError):
        outbound.seal(b"x", 256, bytes(16))
    assert outbound.last_seq == 0  # nothing consumed by a refused call
    first, second = outbound.seal(b"x", IPV4, bytes(16)), outbound.seal(b"x", IPV4, bytes([1]) * 16)
    assert first[8:24] == bytes(16) and second[8:24] == bytes([1]) * 16
    assert inbound.open(second) == Opened(IPV4, b"x", 2)
    assert inbound.open(first) == Opened(IPV4, b"x", 1)


def test_suites_refused() -> None:
    """RFC 4303 §5, §3.2: not NULL with no integrity; AEAD without, and non-AEAD with, an INTEG transform."""
    sha256 = integrity(IntegId.HMAC_SHA2_256_128)
    with pytest.raises(LocalError):
        EspSuite(None, None)
    with pytest.raises(LocalError):
        EspSuite(encryption(EncrId.AES_GCM_16, 128), sha256)
    with pytest.raises(LocalError):
        EspSuite(encryption(EncrId.AES_CBC, 128), None)
    with pytest.raises(LocalError):
        EspSuite(None, sha256).keyed(b"key", bytes(32))
    with pytest.raises(LocalError):
        EspOutbound(b"\x01", EspSuite(None, sha256), cipher=None, integrity=None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Sequence numbers (RFC 4303 §3.3.3) and the ESN ICV (§2.2.1)
# ---------------------------------------------------------------------------


def test_no_wraparound_without_esn() -> None:
    outbound, _ = pair(suite_of(EncrId.AES_GCM_16, 128, None, esn=False))
    outbound.last_seq = MAX_SEQ_32 - 1
    assert outbound.seal(b"last", IPV4)[4:8] == b"\xff\xff\xff\xff"
    with pytest.raises(SequenceExhausted):
        outbound.seal(b"one more", IPV4)
    assert outbound.last_seq == MAX_SEQ_32 and outbound.counters.packets == 1


def test_esn_crosses_2_32_and_stops_at_2_64() -> None:
    outbound, inbound = pair(suite_of(EncrId.AES_CBC, 128, IntegId.HMAC_SHA2_256_128, esn=True))
    outbound.last_seq = MAX_SEQ_32 - 2
    inbound.window.update(MAX_SEQ_32 - 2)
    packets = [seal(outbound, bytes([n])) for n in range(4)]
    assert [p[4:8].hex() for p in packets] == ["fffffffe", "ffffffff", "00000000", "00000001"]
    opened = [inbound.open(p) for p in reversed(packets)]
    assert [o.seq for o in opened if isinstance(o, Opened)] == [
        MAX_SEQ_32 + 2,
        MAX_SEQ_32 + 1,
        MAX_SEQ_32,
        MAX_SEQ_32 - 1,
    ]
    outbound.last_seq = MAX_SEQ_64
    with pytest.raises(SequenceExhausted):
        seal(outbound, b"x")


@pytest.mark.parametrize(("encr", "bits", "integ"), SUITES, ids=SUITE_IDS)
def test_esn_high_bits_are_authenticated_but_not_sent(
    encr: EncrId, bits: int | None, integ: IntegId | None
) -> None:
    """The same packet under a window in another subspace fails its ICV (RFC 4303 §2.2.1, RFC 4106 §5)."""
    suite = suite_of(encr, bits, integ, esn=True)
    outbound, inbound = pair(suite)
    plain_outbound, _ = pair(suite_of(encr, bits, integ, esn=False))
    outbound.last_seq = 1 << 32
    packet = seal(outbound, b"data")
    assert len(packet) == len(seal(plain_outbound, b"data"))
    assert inbound.open(packet) == Dropped(DropReason.INTEGRITY, 1)  # inferred 1, sent 2^32 + 1
    inbound.window.update(1 << 32)
    assert inbound.open(packet) == Opened(IPV4, b"data", (1 << 32) + 1)


# ---------------------------------------------------------------------------
# Drops (RFC 4303 §3.4)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("encr", "bits", "integ"), SUITES, ids=SUITE_IDS)
def test_tampering_fails_integrity_and_leaves_the_window(
    encr: EncrId, bits: int | None, integ: IntegId | None
) -> None:
    suite = suite_of(encr, bits, integ, esn=False)
    outbound, inbound = pair(suite)
    packet = seal(outbound, b"payload")
    for position in (4, 8, len(packet) - suite.icv_size - 1, len(packet) - 1):
        tampered = bytearray(packet)
        tampered[position] ^= 0x01
        result = inbound.open(bytes(tampered))
        assert isinstance(result, Dropped) and result.reason is DropReason.INTEGRITY
    assert inbound.counters.integrity_failures == 4
    assert inbound.window.top == 0
    assert inbound.open(packet) == Opened(IPV4, b"payload", 1)


def test_replay_and_beyond_the_window() -> None:
    outbound, inbound = pair(suite_of(EncrId.CHACHA20_POLY1305, None, None, esn=False), window=32)
    packets = [seal(outbound, bytes([n])) for n in range(40)]
    assert isinstance(inbound.open(packets[39]), Opened)
    assert inbound.open(packets[39]) == Dropped(DropReason.REPLAY)
    assert isinstance(inbound.open(packets[8]), Opened)  # seq 9: the left edge of 9..40
    assert inbound.open(packets[7]) == Dropped(DropReason.TOO_OLD)
    assert inbound.counters.replay_drops == 2
    assert inbound.counters.integrity_failures == 0


def test_short_wrong_spi_and_truncated() -> None:
    suite = suite_of(EncrId.AES_CBC, 128, IntegId.HMAC_SHA2_256_128, esn=False)
    outbound, inbound = pair(suite)
    packet = seal(outbound, b"x" * 20)
    assert inbound.open(packet[:7]) == Dropped(DropReason.SHORT)
    assert inbound.open(b"\x09\x09\x09\x09" + packet[4:]) == Dropped(DropReason.WRONG_SPI)
    assert inbound.open(packet[: 8 + 16 + 16]) == Dropped(DropReason.TRUNCATED)  # no ICV room
    assert inbound.open(packet[:-1]) == Dropped(DropReason.TRUNCATED)  # not whole blocks
    assert inbound.open(packet[:8] + bytes(16 + 16)) == Dropped(DropReason.TRUNCATED)
    assert inbound.counters.malformed == 5
    assert inbound.open(packet) == Opened(IPV4, b"x" * 20, 1)


def _null_packet(body: bytes, seq: int = 1) -> tuple[bytes, EspInbound]:
    """An ENCR_NULL + HMAC-SHA2-256 packet with a valid ICV over an arbitrary plaintext."""
    suite = suite_of(EncrId.NULL, None, IntegId.HMAC_SHA2_256_128, esn=False)
    _, inbound = pair(suite)
    head = SPI + seq.to_bytes(4, "big") + body
    icv = integrity(IntegId.HMAC_SHA2_256_128).keyed(bytes(range(100, 132))).compute(head)
    return head + icv, inbound


@pytest.mark.parametrize(
    "body",
    [
        b"abcd\x02\x01\x02\x04",  # padding 2, 1: not 1, 2
        b"abcd\x00\x00\x02\x04",  # zeros
        b"ab\x10\x04",  # Pad Length beyond the plaintext
    ],
    ids=["out-of-order", "zeros", "too-long"],
)
def test_bad_padding(body: bytes) -> None:
    """RFC 4303 §2.4: the receiver checks the 1, 2, 3, ... padding after the ICV verified."""
    packet, inbound = _null_packet(body)
    assert inbound.open(packet) == Dropped(DropReason.BAD_PADDING, 1)
    assert inbound.counters.malformed == 1
    assert inbound.window.seen(1)  # authenticated: the number is spent (§3.4.3)


def test_long_valid_padding_is_accepted() -> None:
    """Padding beyond the minimum (up to 255, e.g. to hide the length, §2.4) is fine."""
    packet, inbound = _null_packet(b"ab" + bytes(range(1, 13)) + b"\x0c\x29")
    assert inbound.open(packet) == Opened(41, b"ab", 1)


def test_dummy_packets_are_discarded() -> None:
    """RFC 4303 §2.6: Next Header 59 marks a dummy packet; discarded, reported, its number spent."""
    outbound, inbound = pair(suite_of(EncrId.AES_GCM_16, 256, None, esn=False))
    dummy = seal(outbound, b"\x00" * 12, NEXT_HEADER_DUMMY)
    assert inbound.open(dummy) == Dropped(DropReason.DUMMY, 1)
    assert inbound.open(dummy) == Dropped(DropReason.REPLAY)
    assert (inbound.counters.dummies, inbound.counters.packets) == (1, 0)


# ---------------------------------------------------------------------------
# Hypothesis
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("encr", "bits", "integ"), SUITES, ids=SUITE_IDS)
@given(data=st.binary(max_size=200), esn=st.booleans(), with_spi=st.booleans())
def test_open_never_raises(
    encr: EncrId, bits: int | None, integ: IntegId | None, data: bytes, esn: bool, with_spi: bool
) -> None:
    _, inbound = pair(suite_of(encr, bits, integ, esn))
    result = inbound.open(SPI + data if with_spi else data)
    assert isinstance(result, Dropped)  # a forgery would need the key


@pytest.mark.parametrize(("encr", "bits", "integ"), SUITES, ids=SUITE_IDS)
@given(
    payloads=st.lists(st.binary(max_size=64), min_size=1, max_size=8),
    next_header=st.integers(0, 255).filter(lambda n: n != NEXT_HEADER_DUMMY),
    esn=st.booleans(),
    start=st.sampled_from([0, MAX_SEQ_32 - 3]),
)
def test_seal_open_round_trip_property(
    encr: EncrId,
    bits: int | None,
    integ: IntegId | None,
    payloads: list[bytes],
    next_header: int,
    esn: bool,
    start: int,
) -> None:
    outbound, inbound = pair(suite_of(encr, bits, integ, esn))
    outbound.last_seq = start
    if start:
        inbound.window.update(start)
    for payload in payloads:
        if outbound.last_seq == outbound.suite.max_seq:
            with pytest.raises(SequenceExhausted):
                seal(outbound, payload, next_header)
            break
        packet = seal(outbound, payload, next_header)
        assert inbound.open(packet) == Opened(next_header, payload, outbound.last_seq)


def test_suite_of_a_negotiated_null_esn_child_sa() -> None:
    """ENCR_NULL (RFC 2410) + HMAC-SHA2-256-128 with ESN, as a ChosenProposal would carry it."""
    proposal = ChosenProposal(
        1,
        ProtocolId.ESP,
        b"\xaa\xbb\xcc\xdd",
        (EncrId.NULL, None),
        None,
        IntegId.HMAC_SHA2_256_128,
        None,
        EsnId.ESN,
    )
    keys = ChildSaKeys(b"", bytes(32), b"", bytes(range(32)))
    ours = ChildSaParams("n", proposal, SPI, b"\xaa\xbb\xcc\xdd", (), (), Mode.TUNNEL, keys)
    theirs = attrs.evolve(ours, inbound_spi=ours.outbound_spi, outbound_spi=SPI, initiated=True)
    responder, initiator = esp_sa(ours), esp_sa(theirs, replay_window=32)
    assert responder.inbound.suite == EspSuite(None, integrity(IntegId.HMAC_SHA2_256_128), esn=True)
    assert (responder.outbound.iv_size, responder.outbound.needs_random_iv) == (0, False)
    assert initiator.inbound.window.size == 32 and initiator.inbound.window.esn
    packet = initiator.seal(b"clear", IPV4)
    assert b"clear" in packet  # no confidentiality, only integrity
    assert responder.open(packet) == Opened(IPV4, b"clear", 1)
    assert initiator.open(responder.seal(b"back", IPV4)) == Opened(IPV4, b"back", 1)
