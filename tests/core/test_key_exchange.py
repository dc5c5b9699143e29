"""Tests of responder.core.key_exchange and responder.core.modp.

Known answers: RFC 5903 §8 (whole KE payloads of groups 19, 20, 21), RFC 8031
Appendix A, RFC 7748 §5.2 and §6 (X25519, X448), RFC 3526 §3-4 (MODP
parameters).  Every vector goes through the factory with a scripted
``random_bytes``, so the key derivation is exercised too.  Peer checks follow
RFC 6989 §2, RFC 7748 §6 / RFC 8031 §2 and FIPS 203 §7.
"""

from __future__ import annotations

import ast
import hashlib
import struct
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from responder.core import modp
from responder.core.enums import KeyExchangeId
from responder.core.errors import InvalidKeyExchangeValue, LocalError
from responder.core.key_exchange import SIZES, KeyExchangeFactory, KeyExchangeSizes, supported_methods
from tests.core.vectors_rfc3526 import RFC3526_FORMULAS, RFC3526_GENERATORS, RFC3526_PRIMES
from tests.core.vectors_rfc5903 import RFC5903_CASES
from tests.core.vectors_rfc7748 import RFC7748_DH, RFC7748_ITERATED, RFC7748_SINGLE, RFC8031_CURVE25519

ALL_METHODS = [
    KeyExchangeId.MODP_2048,
    KeyExchangeId.MODP_3072,
    KeyExchangeId.ECP_256,
    KeyExchangeId.ECP_384,
    KeyExchangeId.ECP_521,
    KeyExchangeId.CURVE25519,
    KeyExchangeId.CURVE448,
    KeyExchangeId.ML_KEM_768,
]
DH_METHODS = [m for m in ALL_METHODS if m is not KeyExchangeId.ML_KEM_768]
MODP_METHODS = [KeyExchangeId.MODP_2048, KeyExchangeId.MODP_3072]
ECP_METHODS = {19: KeyExchangeId.ECP_256, 20: KeyExchangeId.ECP_384, 21: KeyExchangeId.ECP_521}
MONTGOMERY = {"X25519": KeyExchangeId.CURVE25519, "X448": KeyExchangeId.CURVE448}
ECP_PRIMES = {
    KeyExchangeId.ECP_256: 2**256 - 2**224 + 2**192 + 2**96 - 1,
    KeyExchangeId.ECP_384: 2**384 - 2**128 - 2**96 + 2**32 - 1,
    KeyExchangeId.ECP_521: 2**521 - 1,
}


# ---------------------------------------------------------------------------
# Injected randomness for tests
# ---------------------------------------------------------------------------


def stream(seed: bytes) -> Callable[[int], bytes]:
    """A deterministic ``random_bytes``: SHAKE-256 of the seed and a call counter."""
    counter = 0

    def random_bytes(n: int) -> bytes:
        nonlocal counter
        counter += 1
        return hashlib.shake_256(seed + counter.to_bytes(8, "big")).digest(n)

    return random_bytes


def scripted(*chunks: bytes) -> Callable[[int], bytes]:
    """A ``random_bytes`` returning the given octets, one chunk per call, of the asked length."""
    queue = list(chunks)

    def random_bytes(n: int) -> bytes:
        chunk = queue.pop(0)
        assert len(chunk) == n, f"asked for {n} octets, script has {len(chunk)}"
        return chunk

    return random_bytes


def ecp_scalar(d: int) -> Callable[[int], bytes]:
    """A ``random_bytes`` that makes the factory derive exactly the ECP private key ``d``.

    The factory computes d = (c mod (n-1)) + 1 (FIPS 186-5 A.2.1); c = d-1 < n-1
    survives the reduction whatever the number of octets asked for.
    """
    return lambda n: (d - 1).to_bytes(n, "big")


def ke_payload(next_payload: int, method: KeyExchangeId, data: bytes) -> bytes:
    """RFC 7296 §3.4: Next Payload, C+RESERVED, Payload Length, DH Group Num, RESERVED, data."""
    return struct.pack("!BBHHH", next_payload, 0, 8 + len(data), method, 0) + data


def factory(seed: bytes = b"seed") -> KeyExchangeFactory:
    return KeyExchangeFactory(stream(seed))


# ---------------------------------------------------------------------------
# RFC 5903 §8: ECP groups 19, 20, 21
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("group", sorted(RFC5903_CASES))
def test_rfc5903_ke_payloads_and_shared_secret(group: int) -> None:
    """RFC 5903 §8.1-8.3: KEi and KEr payloads byte for byte, and g^ir = girx (RFC 5903 §7).

    The RFC prints each payload alone, so its Next Payload field is 0; the
    private keys i and r are fed to the factory as its random octets.
    """
    case = {k: bytes.fromhex(v) for k, v in RFC5903_CASES[group].items()}
    method = ECP_METHODS[group]
    initiator = KeyExchangeFactory(ecp_scalar(int.from_bytes(case["i"], "big"))).initiate(method)
    assert initiator.public_value == case["gix"] + case["giy"]
    assert ke_payload(0, method, initiator.public_value) == case["KEi"]

    responder = KeyExchangeFactory(ecp_scalar(int.from_bytes(case["r"], "big")))
    public_r, secret_r = responder.respond(method, case["KEi"][8:])
    assert ke_payload(0, method, public_r) == case["KEr"]
    assert secret_r == case["girx"]
    assert initiator.shared_secret(case["KEr"][8:]) == case["girx"]


# ---------------------------------------------------------------------------
# RFC 8031 and RFC 7748: groups 31 and 32
# ---------------------------------------------------------------------------


def test_rfc8031_appendix_a() -> None:
    """RFC 8031 Appendix A: 32 random octets per side, pub_i, pub_r and SHARED_SECRET.

    Also the KE payload length of RFC 8031 §3.1 (40), and that d_i/d_r are the
    little-endian readings of the clamped fixed_i/fixed_r (RFC 7748 §5).
    """
    v = {k: bytes.fromhex(h) for k, h in RFC8031_CURVE25519.items()}
    method = KeyExchangeId.CURVE25519
    initiator = KeyExchangeFactory(scripted(v["random_i"])).initiate(method)
    assert initiator.public_value == v["pub_i"]
    assert len(ke_payload(0, method, initiator.public_value)) == 40

    public_r, secret_r = KeyExchangeFactory(scripted(v["random_r"])).respond(method, v["pub_i"])
    assert public_r == v["pub_r"]
    assert secret_r == v["SHARED_SECRET"]
    assert initiator.shared_secret(public_r) == v["SHARED_SECRET"]

    # Clamping (RFC 7748 §5) leaves the same key: fixed_* gives the same public value.
    assert KeyExchangeFactory(scripted(v["fixed_i"])).initiate(method).public_value == v["pub_i"]
    assert int.from_bytes(v["fixed_i"], "little") == int.from_bytes(v["d_i"], "big")
    assert int.from_bytes(v["fixed_r"], "little") == int.from_bytes(v["d_r"], "big")


@pytest.mark.parametrize(
    ("function", "scalar", "u", "output"),
    RFC7748_SINGLE,
    ids=[f"{c[0]}-{i % 2 + 1}" for i, c in enumerate(RFC7748_SINGLE)],
)
def test_rfc7748_single_vectors(function: str, scalar: str, u: str, output: str) -> None:
    """RFC 7748 §5.2, first type; the second X25519 u has its top bit set (masked, RFC 8031 §3.2)."""
    kx = KeyExchangeFactory(scripted(bytes.fromhex(scalar))).initiate(MONTGOMERY[function])
    assert kx.shared_secret(bytes.fromhex(u)) == bytes.fromhex(output)


@pytest.mark.parametrize("function", ["X25519", "X448"])
def test_rfc7748_iterated_vectors(function: str) -> None:
    """RFC 7748 §5.2, second type: 1 and 1,000 iterations (1,000,000 skipped: minutes)."""
    method = MONTGOMERY[function]
    k = u = bytes([9 if function == "X25519" else 5]) + bytes(SIZES[method].shared_secret - 1)
    for iteration in range(1, 1001):
        k, u = KeyExchangeFactory(scripted(k)).initiate(method).shared_secret(u), k
        if iteration in RFC7748_ITERATED[function]:
            assert k.hex() == RFC7748_ITERATED[function][iteration]


@pytest.mark.parametrize("function", ["X25519", "X448"])
def test_rfc7748_diffie_hellman(function: str) -> None:
    """RFC 7748 §6.1 (X25519) and §6.2 (X448): Alice initiates, Bob responds, both get K."""
    v = {k: bytes.fromhex(h) for k, h in RFC7748_DH[function].items()}
    method = MONTGOMERY[function]
    alice = KeyExchangeFactory(scripted(v["a"])).initiate(method)
    assert alice.public_value == v["K_A"]
    public_b, secret_b = KeyExchangeFactory(scripted(v["b"])).respond(method, v["K_A"])
    assert (public_b, secret_b) == (v["K_B"], v["K"])
    assert alice.shared_secret(public_b) == v["K"]


def test_x25519_top_bit_is_masked() -> None:
    """RFC 8031 §3.2: the most significant bit of the final X25519 octet is masked."""
    kx = factory().initiate(KeyExchangeId.CURVE25519)
    peer = bytes.fromhex(RFC7748_DH["X25519"]["K_B"])
    flipped = peer[:-1] + bytes([peer[-1] | 0x80])
    assert kx.shared_secret(flipped) == kx.shared_secret(peer)


# ---------------------------------------------------------------------------
# RFC 3526: MODP groups 14 and 15, and the adapter
# ---------------------------------------------------------------------------


def _pi_fixed(bits: int) -> int:
    """floor(pi * 2^bits) by Machin's formula with 64 guard bits (exact for these sizes)."""
    guard = 64
    one = 1 << (bits + guard)

    def arctan_inverse(x: int) -> int:
        total = term = one // x
        n, sign = 1, -1
        while term:
            term //= x * x
            n += 2
            total += sign * (term // n)
            sign = -sign
        return total

    return (4 * (4 * arctan_inverse(5) - arctan_inverse(239))) >> guard


def _probably_prime(n: int, bases: tuple[int, ...] = (2, 3)) -> bool:
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


@pytest.mark.parametrize("group_id", [14, 15])
def test_rfc3526_parameters(group_id: int) -> None:
    """RFC 3526 §3 (id 14) and §4 (id 15): p equals the published hex and formula, g = 2.

    Cheap extras: (p-1)/2 passes Miller-Rabin to bases 2 and 3 (the Sophie
    Germain property RFC 6989 §2.1 relies on) and g generates the order-q subgroup.
    """
    group = modp.GROUPS[KeyExchangeId(group_id)]
    assert group.p == int("".join(RFC3526_PRIMES[group_id].split()), 16)
    a, b, c, d = RFC3526_FORMULAS[group_id]
    assert group.p == 2**a - 2**b - 1 + 2**64 * (_pi_fixed(c) + d)
    assert group.g == RFC3526_GENERATORS[group_id] == 2
    assert group.size * 8 == a
    q = (group.p - 1) // 2
    assert _probably_prime(q)
    assert pow(group.g, q, group.p) == 1


@pytest.mark.parametrize("method", MODP_METHODS)
def test_modp_adapter_matches_pow_and_pads(method: KeyExchangeId) -> None:
    """RFC 7296 §3.4 and §2.14: y and g^ir are big-endian, zero-padded to len(p)."""
    group = modp.GROUPS[method]
    assert group.public_value(3) == (8).to_bytes(group.size, "big")  # padding shows
    assert group.exchange(2, 5) == (25).to_bytes(group.size, "big")
    x = int.from_bytes(hashlib.sha512(b"x").digest(), "big")
    y = pow(group.g, int.from_bytes(hashlib.sha512(b"y").digest(), "big"), group.p)
    assert group.public_value(x) == pow(group.g, x, group.p).to_bytes(group.size, "big")
    assert group.exchange(x, y) == pow(y, x, group.p).to_bytes(group.size, "big")


@pytest.mark.parametrize("method", MODP_METHODS)
def test_modp_adapter_refuses_unchecked_values(method: KeyExchangeId) -> None:
    """RFC 6989 §2.1 checks belong to the caller; reaching the adapter unchecked is a LocalError."""
    group = modp.GROUPS[method]
    for y in (0, 1, group.p - 1, group.p):
        with pytest.raises(LocalError):
            group.exchange(5, y)
    with pytest.raises(LocalError):
        group.public_value(1)


@pytest.mark.parametrize(("method", "bits"), [(KeyExchangeId.MODP_2048, 320), (KeyExchangeId.MODP_3072, 420)])
def test_modp_private_exponent_size(method: KeyExchangeId, bits: int) -> None:
    """RFC 3526 §8: exponent of twice the (higher) strength estimate, x = 2 + c mod (2^bits - 2)."""
    group = modp.GROUPS[method]
    assert group.exponent_bits == bits
    asked: list[int] = []
    draws = stream(b"exponent")

    def recording(n: int) -> bytes:
        asked.append(n)
        return draws(n)

    public = KeyExchangeFactory(recording).initiate(method).public_value
    assert asked == [(bits + 64 + 7) // 8]  # 64 extra bits against reduction bias
    c = int.from_bytes(stream(b"exponent")(asked[0]), "big")
    x = 2 + c % ((1 << bits) - 2)
    assert bits - 8 < x.bit_length() <= bits
    assert public == pow(2, x, group.p).to_bytes(group.size, "big")


def test_modp_backend_is_openssl() -> None:
    """RFC 3526 groups run on OpenSSL while the library has FFDH (the measured choice, modp.py)."""
    assert modp.BACKEND == "openssl"


def test_no_deprecation_warning_from_import_or_use() -> None:
    """RFC 3526 groups, no warnings: cryptography 50 deprecates FFDH, the adapter filters it (-W error)."""
    code = (
        "from responder.core.key_exchange import KeyExchangeFactory\n"
        "from responder.core.enums import KeyExchangeId as K\n"
        "f = KeyExchangeFactory(lambda n: bytes(range(1, n + 1)) if n < 256 else b'\\x07' * n)\n"
        "for m in (K.MODP_2048, K.MODP_3072):\n"
        "    a = f.initiate(m)\n"
        "    pub, secret = f.respond(m, a.public_value)\n"
        "    assert a.shared_secret(pub) == secret\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("method", MODP_METHODS)
def test_no_warning_in_process(method: KeyExchangeId) -> None:
    """Using MODP groups emits no warning at all (RFC 3526 groups through the adapter)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kx = factory().initiate(method)
        public, secret = factory(b"other").respond(method, kx.public_value)
        assert kx.shared_secret(public) == secret


def test_only_modp_touches_dh() -> None:
    """RFC 3526 groups: the adapter is the one place that uses cryptography's ``dh`` module."""
    package = Path(__file__).resolve().parents[2] / "responder"
    users = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                names = {a.name for a in node.names}
                if node.module.endswith("asymmetric.dh") or (
                    node.module.endswith("asymmetric") and "dh" in names
                ):
                    users.add(path.name)
            elif isinstance(node, ast.Import) and any(a.name.endswith("asymmetric.dh") for a in node.names):
                users.add(path.name)
    assert users == {"modp.py"}


# ---------------------------------------------------------------------------
# Peer value checks
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ALL_METHODS)
def test_wrong_length_refused(method: KeyExchangeId) -> None:
    """RFC 7296 §3.4, RFC 5903 §7, RFC 8031 §3.1, FIPS 203 §7.2-7.3: exact lengths only."""
    sizes = SIZES[method]
    kx = factory().initiate(method)
    for length in (0, sizes.responder_value - 1, sizes.responder_value + 1):
        with pytest.raises(InvalidKeyExchangeValue, match=f"is {length} octets, expected"):
            kx.shared_secret(bytes(length))
    for length in (0, sizes.initiator_value - 1, sizes.initiator_value + 1):
        with pytest.raises(InvalidKeyExchangeValue, match=f"is {length} octets, expected"):
            factory().respond(method, b"\x01" * length)


@pytest.mark.parametrize("method", MODP_METHODS)
def test_modp_range_check(method: KeyExchangeId) -> None:
    """RFC 6989 §2.1: 1 < y < p-1, so y in {0, 1, p-1, p, p+1, 2^bits-1} is refused."""
    group = modp.GROUPS[method]
    kx = factory().initiate(method)
    cases = {0: "y <= 1", 1: "y <= 1", group.p - 1: "y >= p-1", group.p: "y >= p-1"}
    cases |= {group.p + 1: "y >= p-1", (1 << (8 * group.size)) - 1: "y >= p-1"}
    for y, reason in cases.items():
        value = y.to_bytes(group.size, "big")
        with pytest.raises(InvalidKeyExchangeValue, match=reason) as info:
            kx.shared_secret(value)
        assert "RFC 6989 §2.1" in info.value.reason
        with pytest.raises(InvalidKeyExchangeValue, match=reason):
            factory().respond(method, value)
    # The edges inside the range are accepted.
    for y in (2, group.p - 2):
        assert len(kx.shared_secret(y.to_bytes(group.size, "big"))) == group.size


@pytest.mark.parametrize("group", sorted(RFC5903_CASES))
def test_ecp_point_checks(group: int) -> None:
    """RFC 6989 §2.3: the point must be on the curve; RFC 5903 §7: coordinates below p."""
    method = ECP_METHODS[group]
    good = bytes.fromhex(RFC5903_CASES[group]["gix"] + RFC5903_CASES[group]["giy"])
    half = len(good) // 2
    off_curve = good[:-1] + bytes([good[-1] ^ 1])
    zero = bytes(len(good))
    p = ECP_PRIMES[method].to_bytes(half, "big")
    x_too_big = p + good[half:]
    y_too_big = good[:half] + p
    kx = factory().initiate(method)
    for value, reason in [
        (off_curve, "not on the curve"),
        (zero, "not on the curve"),
        (x_too_big, "coordinate x is not below the field prime"),
        (y_too_big, "coordinate y is not below the field prime"),
    ]:
        with pytest.raises(InvalidKeyExchangeValue, match=reason):
            kx.shared_secret(value)
        with pytest.raises(InvalidKeyExchangeValue, match=reason):
            factory().respond(method, value)
    assert len(kx.shared_secret(good)) == half  # x coordinate only (RFC 5903 §7)


_P25519 = 2**255 - 19
_P448 = 2**448 - 2**224 - 1
LOW_ORDER = {
    KeyExchangeId.CURVE25519: [
        # u = 0, 1, the two points of order 8, and the non-canonical p-1, p, p+1 (and top-bit twins).
        *(u.to_bytes(32, "little") for u in (0, 1, _P25519 - 1, _P25519, _P25519 + 1)),
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        (0).to_bytes(31, "little") + b"\x80",
        (1).to_bytes(31, "little") + b"\x80",
    ],
    KeyExchangeId.CURVE448: [u.to_bytes(56, "little") for u in (0, 1, _P448 - 1, _P448, _P448 + 1)],
}


@pytest.mark.parametrize("method", [KeyExchangeId.CURVE25519, KeyExchangeId.CURVE448])
def test_montgomery_low_order_points(method: KeyExchangeId) -> None:
    """RFC 7748 §6.1-6.2 and RFC 8031 §2: a low-order point gives an all-zero secret, refused."""
    kx = factory().initiate(method)
    for value in LOW_ORDER[method]:
        with pytest.raises(InvalidKeyExchangeValue, match="all zero") as info:
            kx.shared_secret(value)
        assert "RFC 7748 §6" in info.value.reason
        with pytest.raises(InvalidKeyExchangeValue, match="all zero"):
            factory().respond(method, value)


def test_mlkem_malformed_encapsulation_key() -> None:
    """FIPS 203 §7.2 (draft-ietf-ipsecme-ikev2-mlkem): a coefficient >= q fails the modulus check."""
    ek = factory().initiate(KeyExchangeId.ML_KEM_768).public_value
    malformed = b"\xff\xff" + ek[2:]  # first 12-bit coefficient = 4095 >= 3329
    with pytest.raises(InvalidKeyExchangeValue, match="modulus check"):
        factory().respond(KeyExchangeId.ML_KEM_768, malformed)


# ---------------------------------------------------------------------------
# ML-KEM-768
# ---------------------------------------------------------------------------


def test_mlkem768_round_trip_and_sizes() -> None:
    """RFC 9370 §2.2.2 roles with FIPS 203 sizes: ek 1184, ciphertext 1088, K 32 octets.

    A ciphertext of the right length that was altered still decapsulates, to a
    different key (implicit rejection, FIPS 203 §6.3); the AUTH exchange fails later.
    """
    method = KeyExchangeId.ML_KEM_768
    initiator = factory().initiate(method)
    assert len(initiator.public_value) == 1184
    ciphertext, secret = factory(b"responder").respond(method, initiator.public_value)
    assert (len(ciphertext), len(secret)) == (1088, 32)
    assert initiator.shared_secret(ciphertext) == secret
    altered = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    assert initiator.shared_secret(altered) != secret
    assert SIZES[method] == KeyExchangeSizes(1184, 1088, 32)


# ---------------------------------------------------------------------------
# Table, factory, determinism
# ---------------------------------------------------------------------------


def test_sizes_table() -> None:
    """RFC 7296 §3.4 / RFC 3526, RFC 5903 §7, RFC 8031 §3.1, FIPS 203 §8: value and secret lengths."""
    assert supported_methods() == tuple(ALL_METHODS)
    expected = {
        KeyExchangeId.MODP_2048: (256, 256, 256),
        KeyExchangeId.MODP_3072: (384, 384, 384),
        KeyExchangeId.ECP_256: (64, 64, 32),
        KeyExchangeId.ECP_384: (96, 96, 48),
        KeyExchangeId.ECP_521: (132, 132, 66),
        KeyExchangeId.CURVE25519: (32, 32, 32),
        KeyExchangeId.CURVE448: (56, 56, 56),
        KeyExchangeId.ML_KEM_768: (1184, 1088, 32),
    }
    assert {m: (s.initiator_value, s.responder_value, s.shared_secret) for m, s in SIZES.items()} == expected


@pytest.mark.parametrize("method", ALL_METHODS)
def test_round_trip_sizes(method: KeyExchangeId) -> None:
    """Both roles agree, and every value has the length of the table (RFC 7296 §2.14 forms)."""
    sizes = SIZES[method]
    kx = factory().initiate(method)
    public, secret = factory(b"r").respond(method, kx.public_value)
    assert kx.method is method
    assert (len(kx.public_value), len(public), len(secret)) == (
        sizes.initiator_value,
        sizes.responder_value,
        sizes.shared_secret,
    )
    assert kx.shared_secret(public) == secret


@pytest.mark.parametrize("method", ALL_METHODS)
def test_determinism(method: KeyExchangeId) -> None:
    """RFC 7296 §2.12 fresh keys, drawn only from the injected octets: same octets, same keys.

    ML-KEM encapsulation is the documented exception: the library draws its
    randomness, so two responses to the same key differ.
    """
    assert factory().initiate(method).public_value == factory().initiate(method).public_value
    assert factory().initiate(method).public_value != factory(b"other").initiate(method).public_value
    peer = factory(b"peer").initiate(method).public_value
    first, second = factory().respond(method, peer), factory().respond(method, peer)
    if method is KeyExchangeId.ML_KEM_768:
        assert first[0] != second[0]
    else:
        assert first == second


@pytest.mark.parametrize(
    "method",
    [KeyExchangeId.NONE, KeyExchangeId.MODP_1024, KeyExchangeId.ML_KEM_1024, KeyExchangeId(999)],
    ids=lambda m: m.name,
)
def test_unsupported_method_is_local_error(method: KeyExchangeId) -> None:
    """RFC 7296 §3.3.2: only a negotiated Transform Type 4 ID reaches here; others are API misuse."""
    f = factory()
    assert not f.supports(method)
    with pytest.raises(LocalError):
        f.initiate(method)
    with pytest.raises(LocalError):
        f.respond(method, b"\x01" * 32)


def test_short_random_bytes_is_local_error() -> None:
    """RFC 7296 §2.12 / RFC 6989 §2.2: keys need fresh random octets; a short source is a LocalError."""
    f = KeyExchangeFactory(lambda n: bytes(n - 1))
    for method in ALL_METHODS:
        assert f.supports(method)
        with pytest.raises(LocalError):
            f.initiate(method)


def test_repr_hides_keys() -> None:
    """RFC 7296 §2.14: g^ir's inputs are secret, so private keys stay out of repr (house style 7)."""
    for method in ALL_METHODS:
        text = repr(factory().initiate(method))
        assert "key" not in text
        assert "public_value" not in text


@settings(max_examples=40, deadline=None)
@given(
    method=st.sampled_from(ALL_METHODS),
    data=st.data(),
)
def test_arbitrary_peer_values(method: KeyExchangeId, data: st.DataObject) -> None:
    """RFC 6989 §2.5: any peer value yields a secret or InvalidKeyExchangeValue, nothing else."""
    sizes = SIZES[method]
    lengths = {sizes.initiator_value, sizes.responder_value}
    peer = data.draw(
        st.one_of(
            st.binary(max_size=1300),
            *(st.binary(min_size=n, max_size=n) for n in lengths),
            *(st.sampled_from([b"\x00" * n, b"\xff" * n]) for n in lengths),
        )
    )
    kx = factory().initiate(method)
    calls: list[Callable[[], bytes]] = [
        lambda: kx.shared_secret(peer),
        lambda: factory().respond(method, peer)[1],
    ]
    for call in calls:
        try:
            secret = call()
        except InvalidKeyExchangeValue as exc:
            assert exc.reason
        else:
            assert len(secret) == sizes.shared_secret
