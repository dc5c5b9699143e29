"""Key exchange methods (Transform Type 4): MODP, ECP and Montgomery DH groups, ML-KEM-768.

Strategy: the core never draws randomness.  A :class:`KeyExchangeFactory` is
built by the shell with an injected ``random_bytes(n)`` and handed to the core;
every private key is derived deterministically from those octets, so two
factories fed the same octets produce the same public values and tests replay
published vectors through the real code path.  The one exception is ML-KEM
encapsulation, whose randomness the library draws itself (it cannot be
injected); it lives behind the same factory, so the core still only *receives*
key-exchange objects and never creates library keys.

Two entry points cover both roles for every method:

* :meth:`KeyExchangeFactory.initiate` returns a :class:`KeyExchange` whose
  ``public_value`` goes out first and whose ``shared_secret(peer_value)``
  checks the answer and computes the secret (initiator of IKE_SA_INIT or
  CREATE_CHILD_SA, or the side that starts an RFC 9370 additional exchange);
* :meth:`KeyExchangeFactory.respond` takes the peer's value first and returns
  ``(our public value, shared secret)``; a KEM responder cannot have a value
  before it sees the peer's (RFC 9370 §2.2.2).

Every check on the peer's value raises :class:`InvalidKeyExchangeValue` with a
reason naming the failed check; the state machine answers INVALID_SYNTAX
(RFC 6989 §2.5).  Checks, per family:

* length: exactly the table :data:`SIZES` (RFC 7296 §3.4, RFC 5903 §7,
  RFC 8031 §3.1, FIPS 203 §7.2/§7.3);
* MODP: ``1 < y < p-1`` (RFC 6989 §2.1);
* ECP: each coordinate below the field prime, and the point on the curve
  (RFC 6989 §2.3; the point at infinity cannot be encoded, RFC 5903 §7);
* X25519/X448: the all-zero result of a low-order point (RFC 7748 §6,
  RFC 8031 §2); the top bit of an X25519 value is masked, non-canonical values
  are accepted (RFC 8031 §3.2);
* ML-KEM-768: the encapsulation key's modulus check (FIPS 203 §7.2); a
  ciphertext is only checked for length (FIPS 203 §7.3), decapsulation
  rejects implicitly.

Shared secrets come in the form each method defines for g^ir (RFC 7296 §2.14):
MODP zero-padded to the length of p, ECP the x coordinate only (RFC 5903 §7),
X25519/X448 the raw 32/56 octets (RFC 8031 §2), ML-KEM the 32-octet K.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar

import attrs
from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x448, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from responder.core import modp
from responder.core.enums import KeyExchangeId
from responder.core.errors import InvalidKeyExchangeValue, LocalError

__all__ = [
    "SIZES",
    "KeyExchange",
    "KeyExchangeFactory",
    "KeyExchangeSizes",
    "RandomBytes",
    "supported_methods",
]

#: ``random_bytes(n)`` returns ``n`` octets from a cryptographically secure source.
RandomBytes = Callable[[int], bytes]


class KeyExchange(Protocol):
    """One side's key pair for one exchange (the initiating side, for a KEM)."""

    @property
    def method(self) -> KeyExchangeId:
        """The negotiated Transform Type 4 ID."""
        ...

    @property
    def public_value(self) -> bytes:
        """The Key Exchange Data of our KE payload (RFC 7296 §3.4)."""
        ...

    def shared_secret(self, peer_value: bytes) -> bytes:
        """Check the peer's Key Exchange Data and return the shared secret (g^ir).

        Raises :class:`InvalidKeyExchangeValue` naming the failed check.
        """
        ...


@attrs.frozen
class KeyExchangeSizes:
    """Octet lengths for one method: Key Exchange Data each way, and the shared secret.

    For DH groups both sides send values of the same length; for ML-KEM the
    initiator sends an encapsulation key and the responder a ciphertext.
    """

    initiator_value: int
    responder_value: int
    shared_secret: int


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _draw(random_bytes: RandomBytes, n: int) -> bytes:
    data = random_bytes(n)
    if not isinstance(data, bytes) or len(data) != n:
        raise LocalError(f"random_bytes({n}) returned {len(data)} octets")
    return data


def _check_length(method: KeyExchangeId, peer_value: bytes, expected: int, rule: str) -> None:
    if len(peer_value) != expected:
        raise InvalidKeyExchangeValue(
            f"{method.name}: key exchange data is {len(peer_value)} octets, expected {expected} ({rule})"
        )


_K = TypeVar("_K")  # the library's (or our) private key
_P = TypeVar("_P")  # the checked, loaded peer value


class _DhGroup(Protocol[_K, _P]):
    """What a Diffie-Hellman-style method implements; :class:`_DhMethod` does the rest."""

    @property
    def method(self) -> KeyExchangeId: ...

    @property
    def size(self) -> int: ...

    @property
    def secret_size(self) -> int: ...

    def private_key(self, random_bytes: RandomBytes) -> _K: ...

    def public_value(self, key: _K) -> bytes: ...

    def load_peer(self, peer_value: bytes) -> _P: ...

    def compute(self, key: _K, peer: _P) -> bytes: ...


@attrs.frozen
class _DhKeyExchange(Generic[_K, _P]):
    """A :class:`KeyExchange` for a Diffie-Hellman group: both sides behave alike."""

    group: _DhGroup[_K, _P] = attrs.field(repr=False)
    method: KeyExchangeId
    public_value: bytes = attrs.field(repr=False)
    _key: _K = attrs.field(repr=False)

    def shared_secret(self, peer_value: bytes) -> bytes:
        """Check ``peer_value`` for this group and return g^ir in its defined form."""
        return self.group.compute(self._key, self.group.load_peer(peer_value))


@attrs.frozen
class _DhMethod(Generic[_K, _P]):
    group: _DhGroup[_K, _P]

    @property
    def sizes(self) -> KeyExchangeSizes:
        return KeyExchangeSizes(self.group.size, self.group.size, self.group.secret_size)

    def initiate(self, random_bytes: RandomBytes) -> KeyExchange:
        key = self.group.private_key(random_bytes)
        return _DhKeyExchange(self.group, self.group.method, self.group.public_value(key), key)

    def respond(self, random_bytes: RandomBytes, peer_value: bytes) -> tuple[bytes, bytes]:
        # The peer's value is checked before any key is made: junk costs no exponentiation.
        peer = self.group.load_peer(peer_value)
        key = self.group.private_key(random_bytes)
        return self.group.public_value(key), self.group.compute(key, peer)


# ---------------------------------------------------------------------------
# MODP groups 14, 15 (RFC 3526), through the adapter in responder.core.modp
# ---------------------------------------------------------------------------


@attrs.frozen
class _Modp:
    """MODP group: public value and g^ir are big-endian, zero-padded to len(p) (RFC 7296 §2.14, §3.4)."""

    params: modp.ModpGroup

    @property
    def method(self) -> KeyExchangeId:
        return self.params.method

    @property
    def size(self) -> int:
        return self.params.size

    @property
    def secret_size(self) -> int:
        return self.params.size

    def private_key(self, random_bytes: RandomBytes) -> int:
        """A private exponent x with 2 <= x < 2^exponent_bits, from 64 extra random bits.

        ``exponent_bits`` is twice the group's strength (RFC 3526 §8); the 64
        extra bits make the reduction's bias negligible (as FIPS 186-5 A.2.1
        does for ECDSA keys).
        """
        bits = self.params.exponent_bits
        draw = int.from_bytes(_draw(random_bytes, (bits + 64 + 7) // 8), "big")
        return 2 + draw % ((1 << bits) - 2)

    def public_value(self, key: int) -> bytes:
        return self.params.public_value(key)

    def load_peer(self, peer_value: bytes) -> int:
        """RFC 7296 §3.4 length, then RFC 6989 §2.1: the peer's y must satisfy 1 < y < p-1."""
        _check_length(self.method, peer_value, self.size, "RFC 7296 §3.4")
        y = int.from_bytes(peer_value, "big")
        if y <= 1:
            raise InvalidKeyExchangeValue(f"{self.method.name}: public value y <= 1 (RFC 6989 §2.1)")
        if y >= self.params.p - 1:
            raise InvalidKeyExchangeValue(f"{self.method.name}: public value y >= p-1 (RFC 6989 §2.1)")
        return y

    def compute(self, key: int, peer: int) -> bytes:
        return self.params.exchange(key, peer)


# ---------------------------------------------------------------------------
# ECP groups 19, 20, 21 (RFC 5903)
# ---------------------------------------------------------------------------


@attrs.frozen
class _Ecp:
    """ECP group: value x||y without the X9.62 0x04 prefix, g^ir = x only (RFC 5903 §7)."""

    method: KeyExchangeId
    curve: ec.EllipticCurve = attrs.field(repr=False)
    field_prime: int = attrs.field(repr=False)  # RFC 5903 §3.x "Group Prime"
    order: int = attrs.field(repr=False)  # RFC 5903 §3.x "Group Order"

    @property
    def coordinate_size(self) -> int:
        """RFC 5903 §7: 256, 384 and 528 bits per coordinate."""
        return (self.field_prime.bit_length() + 7) // 8

    @property
    def size(self) -> int:
        return 2 * self.coordinate_size

    @property
    def secret_size(self) -> int:
        return self.coordinate_size

    def private_key(self, random_bytes: RandomBytes) -> ec.EllipticCurvePrivateKey:
        """d = (c mod (n-1)) + 1 with c of bitlen(n)+64 random bits (FIPS 186-5 A.2.1)."""
        draw = int.from_bytes(_draw(random_bytes, (self.order.bit_length() + 64 + 7) // 8), "big")
        return ec.derive_private_key(draw % (self.order - 1) + 1, self.curve)

    def public_value(self, key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)[1:]

    def load_peer(self, peer_value: bytes) -> ec.EllipticCurvePublicKey:
        """RFC 5903 §7 length and coordinate range, then RFC 6989 §2.3: the point is on the curve."""
        _check_length(self.method, peer_value, self.size, "RFC 5903 §7")
        half = self.coordinate_size
        for name, octets in (("x", peer_value[:half]), ("y", peer_value[half:])):
            if int.from_bytes(octets, "big") >= self.field_prime:
                raise InvalidKeyExchangeValue(
                    f"{self.method.name}: coordinate {name} is not below the field prime (RFC 5903 §7)"
                )
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(self.curve, b"\x04" + peer_value)
        except ValueError:
            raise InvalidKeyExchangeValue(
                f"{self.method.name}: point is not on the curve (RFC 6989 §2.3)"
            ) from None

    def compute(self, key: ec.EllipticCurvePrivateKey, peer: ec.EllipticCurvePublicKey) -> bytes:
        secret = key.exchange(ec.ECDH(), peer)
        if len(secret) != self.coordinate_size:  # the library pads x to the field size
            raise LocalError(f"{self.method.name}: library returned a {len(secret)}-octet secret")
        return secret


# ---------------------------------------------------------------------------
# Curve25519 and Curve448, groups 31 and 32 (RFC 8031, RFC 7748)
# ---------------------------------------------------------------------------

_MontgomeryPrivate = x25519.X25519PrivateKey | x448.X448PrivateKey
_MontgomeryPublic = x25519.X25519PublicKey | x448.X448PublicKey


@attrs.frozen
class _Montgomery:
    """X25519/X448: private key = ``size`` random octets, clamped by the library (RFC 7748 §5)."""

    method: KeyExchangeId
    size: int

    @property
    def secret_size(self) -> int:
        return self.size

    def private_key(self, random_bytes: RandomBytes) -> _MontgomeryPrivate:
        raw = _draw(random_bytes, self.size)
        if self.method is KeyExchangeId.CURVE25519:
            return x25519.X25519PrivateKey.from_private_bytes(raw)
        return x448.X448PrivateKey.from_private_bytes(raw)

    def public_value(self, key: _MontgomeryPrivate) -> bytes:
        return key.public_key().public_bytes_raw()

    def load_peer(self, peer_value: bytes) -> _MontgomeryPublic:
        """RFC 8031 §3.1: 32 or 56 octets; any such string is accepted (RFC 8031 §3.2)."""
        _check_length(self.method, peer_value, self.size, "RFC 8031 §3.1")
        if self.method is KeyExchangeId.CURVE25519:
            return x25519.X25519PublicKey.from_public_bytes(peer_value)
        return x448.X448PublicKey.from_public_bytes(peer_value)

    def compute(self, key: _MontgomeryPrivate, peer: _MontgomeryPublic) -> bytes:
        """X(d, pub_peer) (RFC 8031 §2); the all-zero result of a low-order point is refused."""
        try:
            if isinstance(key, x25519.X25519PrivateKey) and isinstance(peer, x25519.X25519PublicKey):
                return key.exchange(peer)
            if isinstance(key, x448.X448PrivateKey) and isinstance(peer, x448.X448PublicKey):
                return key.exchange(peer)
        except ValueError:  # the library refuses an all-zero result
            raise InvalidKeyExchangeValue(
                f"{self.method.name}: shared secret is all zero, the peer sent a low-order point "
                "(RFC 7748 §6, RFC 8031 §2)"
            ) from None
        raise LocalError(f"{self.method.name}: key types do not match")


# ---------------------------------------------------------------------------
# ML-KEM-768 (FIPS 203; RFC 9370; draft-ietf-ipsecme-ikev2-mlkem)
# ---------------------------------------------------------------------------

_MLKEM768_SEED = 64  # FIPS 203 §7.1: d || z
_MLKEM768_EK = 1184
_MLKEM768_CT = 1088
_MLKEM768_SECRET = 32


@attrs.frozen
class _MlKemInitiator:
    """The initiating side of ML-KEM-768: sends the encapsulation key, decapsulates the answer."""

    method: KeyExchangeId
    public_value: bytes = attrs.field(repr=False)
    _key: mlkem.MLKEM768PrivateKey = attrs.field(repr=False)

    def shared_secret(self, peer_value: bytes) -> bytes:
        """Ciphertext type check (length, FIPS 203 §7.3), then Decaps (implicit rejection)."""
        _check_length(self.method, peer_value, _MLKEM768_CT, "FIPS 203 §7.3")
        try:
            return self._key.decapsulate(peer_value)
        except ValueError:  # pragma: no cover - only raised for a wrong length, checked above
            raise InvalidKeyExchangeValue(f"{self.method.name}: malformed ciphertext") from None


@attrs.frozen
class _MlKem768:
    method: KeyExchangeId = KeyExchangeId.ML_KEM_768

    @property
    def sizes(self) -> KeyExchangeSizes:
        return KeyExchangeSizes(_MLKEM768_EK, _MLKEM768_CT, _MLKEM768_SECRET)

    def initiate(self, random_bytes: RandomBytes) -> KeyExchange:
        """Key pair from a 64-octet seed (FIPS 203 §6.1 ML-KEM.KeyGen_internal(d, z))."""
        key = mlkem.MLKEM768PrivateKey.from_seed_bytes(_draw(random_bytes, _MLKEM768_SEED))
        return _MlKemInitiator(self.method, key.public_key().public_bytes_raw(), key)

    def respond(self, random_bytes: RandomBytes, peer_value: bytes) -> tuple[bytes, bytes]:
        """Check the encapsulation key (FIPS 203 §7.2), encapsulate; return (ciphertext, K).

        The encapsulation randomness comes from the library's own generator:
        cryptography offers no way to inject it, so this result is not
        reproducible from ``random_bytes``.
        """
        _check_length(self.method, peer_value, _MLKEM768_EK, "FIPS 203 §7.2")
        try:
            public_key = mlkem.MLKEM768PublicKey.from_public_bytes(peer_value)
        except ValueError:
            raise InvalidKeyExchangeValue(
                f"{self.method.name}: encapsulation key fails the modulus check (FIPS 203 §7.2)"
            ) from None
        secret, ciphertext = public_key.encapsulate()
        return ciphertext, secret


# ---------------------------------------------------------------------------
# The table and the factory
# ---------------------------------------------------------------------------


class _Method(Protocol):
    @property
    def sizes(self) -> KeyExchangeSizes: ...

    def initiate(self, random_bytes: RandomBytes) -> KeyExchange: ...

    def respond(self, random_bytes: RandomBytes, peer_value: bytes) -> tuple[bytes, bytes]: ...


def _hex(text: str) -> int:
    """Parse a constant as printed in the RFC (spaces and line breaks allowed)."""
    return int("".join(text.split()), 16)


def _ecp(method: KeyExchangeId, curve: ec.EllipticCurve, prime: int, order: int) -> _Method:
    return _DhMethod(_Ecp(method, curve, prime, order))


_METHODS: Mapping[KeyExchangeId, _Method] = MappingProxyType(
    {
        KeyExchangeId.MODP_2048: _DhMethod(_Modp(modp.GROUPS[KeyExchangeId.MODP_2048])),
        KeyExchangeId.MODP_3072: _DhMethod(_Modp(modp.GROUPS[KeyExchangeId.MODP_3072])),
        # RFC 5903 §3.1-3.3: the generalized Mersenne prime p and the "Group Order" n.
        KeyExchangeId.ECP_256: _ecp(
            KeyExchangeId.ECP_256,
            ec.SECP256R1(),
            2**256 - 2**224 + 2**192 + 2**96 - 1,
            _hex("FFFFFFFF 00000000 FFFFFFFF FFFFFFFF BCE6FAAD A7179E84 F3B9CAC2 FC632551"),
        ),
        KeyExchangeId.ECP_384: _ecp(
            KeyExchangeId.ECP_384,
            ec.SECP384R1(),
            2**384 - 2**128 - 2**96 + 2**32 - 1,
            _hex("""
                FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF C7634D81 F4372DDF
                581A0DB2 48B0A77A ECEC196A CCC52973
            """),
        ),
        KeyExchangeId.ECP_521: _ecp(
            KeyExchangeId.ECP_521,
            ec.SECP521R1(),
            2**521 - 1,
            _hex("""
                01FFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF
                FFFA5186 8783BF2F 966B7FCC 0148F709 A5D03BB5 C9B8899C 47AEBB6F B71E9138
                6409
            """),
        ),
        KeyExchangeId.CURVE25519: _DhMethod(_Montgomery(KeyExchangeId.CURVE25519, 32)),
        KeyExchangeId.CURVE448: _DhMethod(_Montgomery(KeyExchangeId.CURVE448, 56)),
        KeyExchangeId.ML_KEM_768: _MlKem768(),
    }
)

#: Octet lengths per supported method (RFC 7296 §3.4, RFC 5903 §7, RFC 8031 §3.1, FIPS 203 §8).
SIZES: Mapping[KeyExchangeId, KeyExchangeSizes] = MappingProxyType(
    {method: impl.sizes for method, impl in _METHODS.items()}
)


def supported_methods() -> tuple[KeyExchangeId, ...]:
    """Every Transform Type 4 ID this module implements, in IANA order."""
    return tuple(sorted(_METHODS))


@attrs.frozen
class KeyExchangeFactory:
    """Makes key-exchange objects from injected randomness; the core receives one.

    ``random_bytes(n)`` must return ``n`` octets from a cryptographically
    secure source in production (``os.urandom`` in the shell) and any
    deterministic stream in tests.  Private keys depend only on those octets;
    ML-KEM encapsulation alone draws from the library (see :meth:`respond`).
    """

    random_bytes: RandomBytes = attrs.field(repr=False)

    def supports(self, method: KeyExchangeId) -> bool:
        """True when ``method`` can be negotiated with this factory."""
        return method in _METHODS

    def initiate(self, method: KeyExchangeId) -> KeyExchange:
        """A fresh key pair whose ``public_value`` we send first (RFC 7296 §1.2, §1.3; RFC 9370 §2.2.2).

        For ML-KEM-768 the public value is the encapsulation key and
        ``shared_secret`` takes the responder's ciphertext.
        Raises :class:`LocalError` for an unsupported method.
        """
        return self._method(method).initiate(self.random_bytes)

    def respond(self, method: KeyExchangeId, peer_value: bytes) -> tuple[bytes, bytes]:
        """Check the peer's value and return ``(our public value, shared secret)``.

        DH groups: a fresh key pair and the exchange.  ML-KEM-768: encapsulation
        to the peer's key; our "public value" is the ciphertext, and its
        randomness comes from the library, not from ``random_bytes``.
        Raises :class:`InvalidKeyExchangeValue` for a bad peer value,
        :class:`LocalError` for an unsupported method.
        """
        return self._method(method).respond(self.random_bytes, peer_value)

    def _method(self, method: KeyExchangeId) -> _Method:
        impl = _METHODS.get(method)
        if impl is None:
            raise LocalError(f"key exchange method {method!r} is not supported")
        return impl
