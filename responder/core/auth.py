"""IKE_AUTH authentication: the octets each side signs, and PSK AUTH values.

Strategy: authentication is split into two steps so that certificates
(a later issue) slot in beside shared keys without touching the state machine:

1. :func:`signed_octets` builds what is authenticated (RFC 7296 §2.15): the
   sender's first message, the peer's nonce and ``prf(SK_p, IDpayload)``.
2. An :class:`Authenticator` turns those octets into an AUTH payload and
   checks a received one.  :class:`PskAuthenticator` is the shared-key method
   (Auth Method 2); signatures (RFC 7427) will be another implementation.

AUTH values are compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hmac
from typing import Protocol

import attrs

from responder.core.enums import AuthMethod
from responder.core.payloads import AuthPayload, IdiPayload, IdrPayload
from responder.core.transforms import Prf

__all__ = [
    "KEY_PAD",
    "Authenticator",
    "PskAuthenticator",
    "psk_auth",
    "signed_octets",
]

KEY_PAD = b"Key Pad for IKEv2"  # RFC 7296 §2.15, 17 ASCII octets, no NUL


def signed_octets(
    prf: Prf, first_message: bytes, peer_nonce: bytes, sk_p: bytes, id_payload: IdiPayload | IdrPayload
) -> bytes:
    """RealMessage | NonceData | prf(SK_p, RestOfIDPayload) (RFC 7296 §2.15).

    ``first_message`` is the sender's IKE_SA_INIT message as sent (for the
    initiator, the request that succeeded); ``peer_nonce`` is the other side's
    nonce data; ``sk_p`` is the sender's SK_pi or SK_pr; RestOfIDPayload is the
    ID payload without its generic header: ID Type, three RESERVED octets, data.
    """
    rest_of_id = bytes([int(id_payload.id_type), 0, 0, 0]) + id_payload.data
    return first_message + peer_nonce + prf(sk_p, rest_of_id)


def psk_auth(prf: Prf, secret: bytes, octets: bytes) -> bytes:
    """AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>) (RFC 7296 §2.15)."""
    return prf(prf(secret, KEY_PAD), octets)


class Authenticator(Protocol):
    """One authentication method for one identity."""

    @property
    def method(self) -> AuthMethod: ...

    def create(self, prf: Prf, octets: bytes) -> AuthPayload:
        """Our AUTH payload over ``octets``."""
        ...

    def verify(self, prf: Prf, octets: bytes, received: AuthPayload) -> bool:
        """Whether the peer's AUTH payload authenticates ``octets``."""
        ...


@attrs.frozen
class PskAuthenticator:
    """Shared Key Message Integrity Code (Auth Method 2, RFC 7296 §2.15)."""

    secret: bytes = attrs.field(repr=False)

    @property
    def method(self) -> AuthMethod:
        return AuthMethod.SHARED_KEY_MIC

    def create(self, prf: Prf, octets: bytes) -> AuthPayload:
        return AuthPayload(AuthMethod.SHARED_KEY_MIC, psk_auth(prf, self.secret, octets))

    def verify(self, prf: Prf, octets: bytes, received: AuthPayload) -> bool:
        if received.method != AuthMethod.SHARED_KEY_MIC:
            return False
        return hmac.compare_digest(psk_auth(prf, self.secret, octets), received.data)
