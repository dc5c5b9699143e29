"""What the initiator role asks for (RFC 7296 §1.2, §2.19; RFC 6023).

The same core that answers also initiates: tests and benchmarks use it as the
peer, and later the responder uses the same machinery to start rekeys and
liveness checks of its own.  These values say what an IKE SA we initiate
should propose and request, and (for tests of the lifecycle) when it rekeys
its IKE SA and Child SA and checks liveness by itself: by default never.
"""

from __future__ import annotations

import attrs

from responder.core.config import (
    NO_LIFETIME,
    Credential,
    Dpd,
    EspProposal,
    Identity,
    IkeProposal,
    Lifetime,
    Mode,
    Secret,
    TrustStore,
)
from responder.core.enums import KeyExchangeId
from responder.core.payloads import TrafficSelector

__all__ = ["ChildRequest", "InitiatorSettings"]


@attrs.frozen
class ChildRequest:
    """The first Child SA to ask for in IKE_AUTH (RFC 7296 §1.2, §2.9, §2.19)."""

    esp_proposals: tuple[EspProposal, ...]
    tsi: tuple[TrafficSelector, ...]
    tsr: tuple[TrafficSelector, ...]
    mode: Mode = Mode.TUNNEL
    request_ipv4: bool = False  #: ask for INTERNAL_IP4_ADDRESS and DNS in a CP request
    request_ipv6: bool = False  #: ask for INTERNAL_IP6_ADDRESS and DNS in a CP request
    lifetime: Lifetime = NO_LIFETIME  #: when we rekey and expire the Child SA (and its successors)


@attrs.frozen
class InitiatorSettings:
    """An IKE SA to initiate, authenticated with a shared key or a certificate.

    With a ``credential`` our IKE_AUTH is signed with its key and carries its
    chain (RFC 7296 §3.6, RFC 7427); without one, ``psk`` makes our AUTH.
    ``psk`` also checks a responder that answers with a shared key, ``trust``
    one that signs (and its CAs are named in our CERTREQ).

    ``ke_method`` is the group of the first KEi (default: the first group of
    the first proposal); an INVALID_KE_PAYLOAD answer switches to the group the
    responder names if it is among ours.  ``child`` ``None`` asks for a
    childless IKE SA (RFC 6023), which needs the responder's support.
    """

    ike_proposals: tuple[IkeProposal, ...]
    local_id: Identity
    psk: Secret | None
    remote_id: Identity | None = None
    child: ChildRequest | None = None
    ke_method: KeyExchangeId | None = None
    window_size: int = 1
    initial_contact: bool = False  #: send INITIAL_CONTACT in IKE_AUTH (RFC 7296 §2.4)
    ike_lifetime: Lifetime = NO_LIFETIME  #: when we rekey and expire the IKE SA
    dpd: Dpd = attrs.field(factory=Dpd)  #: our liveness checks (RFC 7296 §2.4)
    credential: Credential | None = None  #: our certificate and key (we sign with it)
    trust: TrustStore | None = None  #: CAs a signing responder's certificate must lead to
    rsa_pss: bool = True  #: RSASSA-PSS rather than PKCS#1 v1.5 for RFC 7427 RSA signatures
    #: offer IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 §2.3); sizes and bounds from ``Config.limits``
    fragmentation: bool = False
