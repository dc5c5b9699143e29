"""MODP Diffie-Hellman groups 14 and 15 (RFC 3526) behind one small adapter.

Strategy: this is the only module that touches ``cryptography``'s ``dh``
module.  cryptography 50 deprecates finite-field DH, and every attribute access
on that module emits ``CryptographyDeprecationWarning``; so the three classes
needed are fetched once, at import, under a filter that silences exactly that
warning, and nothing else in the project reaches for ``dh``.  Callers see a
:class:`ModpGroup` per group with two methods over plain integers and octets,
:meth:`ModpGroup.public_value` and :meth:`ModpGroup.exchange`; when the
library drops FFDH, only this file changes.

Implementation choice, measured on this machine for group 14 with a 320-bit
exponent: OpenSSL (``DHPrivateNumbers(...).private_key().exchange``) takes
~0.4 ms per operation, pure-Python ``pow`` ~2.7 ms for ``g^x`` and ~3.3 ms for
``y^x``, holding the GIL all along.  OpenSSL is ~8x faster and uses a
constant-time modular exponentiation, which Python's ``pow`` is not; so
OpenSSL it is, and ``pow`` remains as the fallback for a library without FFDH
(selected at import; :data:`BACKEND` names the one in use).

OpenSSL is also used for ``g^x``: the key's public number is not used by the
derivation (nor checked against the exponent), so the private key is loaded
with ``g`` as a placeholder public number and "exchanged" with ``g`` as the
peer value, which yields ``g^x mod p`` padded to the modulus length.  The test
suite cross-checks both functions against ``pow``.

Peer checks (``1 < y < p-1``, RFC 6989 §2.1; the exact length, RFC 7296 §3.4)
belong to :mod:`responder.core.key_exchange` and happen before
:meth:`ModpGroup.exchange` is called; a value out of range reaching this module is a bug
of the caller and raises :class:`LocalError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from types import MappingProxyType

import attrs

from responder.core.enums import KeyExchangeId
from responder.core.errors import LocalError

__all__ = [
    "BACKEND",
    "GROUPS",
    "ModpGroup",
]


def _hex(text: str) -> int:
    """Parse a hexadecimal constant as printed in RFC 3526 (spaces and line breaks allowed)."""
    return int("".join(text.split()), 16)


# RFC 3526 §3, "2048-bit MODP Group", assigned id 14.
_P_2048 = _hex("""
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
    C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
    83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
    670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B
    E39E772C 180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9
    DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
    15728E5A 8AACAA68 FFFFFFFF FFFFFFFF
""")

# RFC 3526 §4, "3072-bit MODP Group", assigned id 15.
_P_3072 = _hex("""
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
    C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
    83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
    670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B
    E39E772C 180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9
    DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
    15728E5A 8AAAC42D AD33170D 04507A33 A85521AB DF1CBA64
    ECFB8504 58DBEF0A 8AEA7157 5D060C7D B3970F85 A6E1E4C7
    ABF5AE8C DB0933D7 1E8C94E0 4A25619D CEE3D226 1AD2EE6B
    F12FFA06 D98A0864 D8760273 3EC86A64 521F2B18 177B200C
    BBE11757 7A615D6C 770988C0 BAD946E2 08E24FA0 74E5AB31
    43DB5BFC E0FD108E 4B82D120 A93AD2CA FFFFFFFF FFFFFFFF
""")


@attrs.frozen
class ModpGroup:
    """One MODP group: prime ``p``, generator ``g`` and the private exponent size.

    ``exponent_bits``: RFC 3526 §8 gives two strength estimates per group and
    asks for an exponent of at least twice the strength; we take the higher
    estimate (group 14: 160 bits of strength, exponent 320 bits; group 15: 210
    bits, exponent 420 bits).  RFC 7296 §2.12 and RFC 6989 §2.1 need no more:
    the exponent is fresh for every exchange.
    """

    method: KeyExchangeId
    p: int = attrs.field(repr=False)
    g: int
    exponent_bits: int

    @property
    def size(self) -> int:
        """Octets of ``p``: the length of a public value and of g^ir (RFC 7296 §2.14, §3.4)."""
        return (self.p.bit_length() + 7) // 8

    def public_value(self, private_exponent: int) -> bytes:
        """Return ``g^x mod p`` as ``size`` big-endian octets (RFC 7296 §3.4)."""
        self._check_exponent(private_exponent)
        return _compute(self, private_exponent, self.g)

    def exchange(self, private_exponent: int, peer_value: int) -> bytes:
        """Return ``y^x mod p`` as ``size`` big-endian octets: g^ir of RFC 7296 §2.14.

        ``peer_value`` must already have passed the RFC 6989 §2.1 range check
        ``1 < y < p-1``; a value outside it is the caller's bug (:class:`LocalError`).
        """
        self._check_exponent(private_exponent)
        if not 1 < peer_value < self.p - 1:
            raise LocalError(f"{self.method.name}: unchecked peer value reached the MODP adapter")
        return _compute(self, private_exponent, peer_value)

    def _check_exponent(self, private_exponent: int) -> None:
        if not 1 < private_exponent < self.p - 1:
            raise LocalError(f"{self.method.name}: private exponent out of range")


GROUPS: Mapping[KeyExchangeId, ModpGroup] = MappingProxyType(
    {
        KeyExchangeId.MODP_2048: ModpGroup(KeyExchangeId.MODP_2048, _P_2048, 2, 320),
        KeyExchangeId.MODP_3072: ModpGroup(KeyExchangeId.MODP_3072, _P_3072, 2, 420),
    }
)


# ---------------------------------------------------------------------------
# Backends: OpenSSL through cryptography's deprecated ``dh`` module, or pow.
# ---------------------------------------------------------------------------


def _pow_exchange(group: ModpGroup, private_exponent: int, base: int) -> bytes:
    return pow(base, private_exponent, group.p).to_bytes(group.size, "big")


def _openssl_backend() -> Callable[[ModpGroup, int, int], bytes] | None:
    """Fetch the ``dh`` classes once, silencing only their FFDH deprecation warning."""
    try:
        from cryptography.utils import CryptographyDeprecationWarning

        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=r".*\(FFDH\) is deprecated", category=CryptographyDeprecationWarning
            )
            from cryptography.hazmat.primitives.asymmetric import dh

            parameter_numbers = dh.DHParameterNumbers
            public_numbers = dh.DHPublicNumbers
            private_numbers = dh.DHPrivateNumbers
    except (ImportError, AttributeError):  # pragma: no cover - a cryptography without FFDH
        return None

    parameters = {method: parameter_numbers(group.p, group.g) for method, group in GROUPS.items()}

    def openssl_exchange(group: ModpGroup, private_exponent: int, base: int) -> bytes:
        numbers = parameters[group.method]
        # The public number is a placeholder: OpenSSL derives from the exponent alone.
        key = private_numbers(private_exponent, public_numbers(group.g, numbers)).private_key()
        secret = key.exchange(public_numbers(base, numbers).public_key())
        return secret.rjust(group.size, b"\x00")  # already padded by the library; kept explicit

    return openssl_exchange


_openssl = _openssl_backend()
_compute: Callable[[ModpGroup, int, int], bytes] = _openssl or _pow_exchange

#: Which implementation computes the exponentiations: ``"openssl"`` or ``"pow"``.
BACKEND: str = "openssl" if _openssl is not None else "pow"
