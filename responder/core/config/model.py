"""What the sans-IO core reads: peers, their children, address pools, limits, the whole configuration.

Strategy: every piece of configuration is an ``@attrs.frozen`` value that
checks itself when built, so a :class:`Config` that exists is a valid one and
the core never re-checks it.  Errors are :class:`ConfigError` (a
``ValueError``) whose ``field`` names the offending field relative to the
object being built (``"children[1].name"``); containers prefix the paths they
know, and the TOML loader (:mod:`responder.config_file`) and the command line
build these same values, translating paths back to the names they use.

What only the Trio shell reads (listeners, TLS files, the key log, logging,
stream connection limits) is not here: see :mod:`responder.server.settings`.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import math
from typing import Any, Final

import attrs
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from responder.core.cert_identity import certificate_binds
from responder.core.config.algorithms import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    EspProposal,
    IkeProposal,
    algorithm_name,
)
from responder.core.config.credentials import (
    Credential,
    PeerAuth,
    PskAuth,
    PubkeyAuth,
    Secret,
    SendCert,
    TrustStore,
    as_peer_auth,
)
from responder.core.config.impairments import Impairments
from responder.core.config.traffic_selectors import ANY_IPV4, ANY_IPV6, TrafficSelectorPolicy
from responder.core.errors import ConfigError
from responder.core.identity import Identity, IdPattern
from responder.core.validation import (
    check_name,
    duplicates,
    instance_of,
    is_int,
    optional_instance_of,
    positive,
    positive_int,
    seconds,
    tuple_of,
)

__all__ = [
    "CHILD_LIFETIME",
    "IKE_LIFETIME",
    "LAB_PEER_NAME",
    "LAB_PUBKEY_PEER_NAME",
    "MIN_FRAGMENT_SIZE",
    "NO_LIFETIME",
    "NO_VOLUME_LIFETIME",
    "AddressPool",
    "ChildConfig",
    "ChildlessPolicy",
    "Config",
    "DfPolicy",
    "Dpd",
    "Lifetime",
    "Limits",
    "Mode",
    "OuterPolicy",
    "PeerConfig",
    "VolumeLifetime",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# ---------------------------------------------------------------------------
# Address pools (RFC 7296 §2.19, §3.15)
# ---------------------------------------------------------------------------


def _check_pool_networks(instance: AddressPool, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, ipaddress.IPv6Network):
        raise ConfigError(f"expected an IPv6Network, got {type(value).__name__}", attribute.name)
    if instance.ipv4 is None and value is None:
        raise ConfigError("a pool needs an IPv4 or an IPv6 network", "ipv4")


@attrs.frozen
class AddressPool:
    """Virtual addresses leased through the Configuration payload (RFC 7296 §2.19).

    IPv4 pools skip the network and broadcast addresses (except /31 and
    /32), IPv6 pools the subnet-router anycast address (except /127 and /128);
    see :class:`responder.core.pool.PoolAllocator`.  ``dns`` servers are
    returned as INTERNAL_IP4_DNS / INTERNAL_IP6_DNS.
    """

    name: str = attrs.field(validator=check_name)
    ipv4: ipaddress.IPv4Network | None = attrs.field(
        validator=optional_instance_of(ipaddress.IPv4Network, "an IPv4Network")
    )
    ipv6: ipaddress.IPv6Network | None = attrs.field(validator=_check_pool_networks)
    dns: tuple[IPAddress, ...] = attrs.field(
        default=(), validator=tuple_of((ipaddress.IPv4Address, ipaddress.IPv6Address), "IP addresses")
    )


# ---------------------------------------------------------------------------
# Children, peers, limits, the whole configuration
# ---------------------------------------------------------------------------


class Mode(enum.Enum):
    """Child SA encapsulation mode (RFC 7296 §1.3.1: tunnel unless USE_TRANSPORT_MODE is agreed)."""

    #: Tunnel mode (the default).
    TUNNEL = "tunnel"
    #: Transport mode, accepted when the initiator sends USE_TRANSPORT_MODE.
    TRANSPORT = "transport"


class ChildlessPolicy(enum.Enum):
    """Childless IKE SA initiation (RFC 6023), as the responder sees it (strongSwan's ``childless``)."""

    #: Announce CHILDLESS_IKEV2_SUPPORTED; accept IKE_AUTH with or without a Child SA.
    ALLOW = "allow"
    #: Announce it and accept only childless IKE_AUTH (a Child SA comes by CREATE_CHILD_SA).
    FORCE = "force"
    #: Do not announce it; an IKE_AUTH without SA/TS payloads is refused.
    NEVER = "never"


def _duration(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(f"expected a number of seconds, got {type(value).__name__}", attribute.name)
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"must be a finite number of seconds >= 0, got {value}", attribute.name)


@attrs.frozen
class Lifetime:
    """When an SA is rekeyed and when it is deleted, in seconds after it was made.

    swanctl.conf's ``rekey_time``, ``life_time`` and ``rand_time``: the rekey
    starts at ``rekey_time`` less a random share of ``rand_time`` (RFC 7296 §2.8:
    jitter, so that two ends with the same policy seldom rekey at once), and at
    ``life_time`` the SA is deleted whether or not it was rekeyed.  0 means
    never.  :meth:`derive` fills in what a user leaves out the way strongSwan does.
    """

    rekey_time: float = attrs.field(validator=_duration)
    life_time: float = attrs.field(validator=_duration)
    rand_time: float = attrs.field(validator=_duration)

    def __attrs_post_init__(self) -> None:
        if self.rekey_time and self.life_time and self.life_time <= self.rekey_time:
            raise ConfigError(
                f"must be longer than rekey_time ({self.rekey_time:g}s), got {self.life_time:g}s", "life_time"
            )
        if self.rand_time > self.rekey_time and self.rekey_time:
            raise ConfigError(
                f"must not exceed rekey_time ({self.rekey_time:g}s), got {self.rand_time:g}s", "rand_time"
            )

    @classmethod
    def derive(
        cls, rekey_time: float, life_time: float | None = None, rand_time: float | None = None
    ) -> Lifetime:
        """strongSwan's defaults for what is not given: ``life_time`` 10% past ``rekey_time``,
        ``rand_time`` the difference (never more than ``rekey_time``)."""
        if life_time is None:
            life_time = rekey_time + rekey_time / 10
        if rand_time is None:
            rand_time = min(max(life_time - rekey_time, 0.0), rekey_time) if rekey_time and life_time else 0.0
        return cls(rekey_time, life_time, rand_time)

    def rekey_at(self, start: float, share: float) -> float | None:
        """When to rekey an SA made at ``start``; ``share`` in [0, 1) draws the jitter."""
        return start + self.rekey_time - share * self.rand_time if self.rekey_time else None

    def expires_at(self, start: float) -> float | None:
        """When an SA made at ``start`` is deleted (its hard lifetime)."""
        return start + self.life_time if self.life_time else None


#: Never rekeyed, never expired (the initiator role's default, for tests that drive rekeys themselves).
NO_LIFETIME: Final = Lifetime(0.0, 0.0, 0.0)
#: strongSwan's IKE SA defaults: rekey after 4 h, over_time 10% (24 min), rand_time the same.
IKE_LIFETIME: Final = Lifetime.derive(4 * 3600.0)
#: strongSwan's Child SA defaults: rekey after 1 h, life_time 10% longer, rand_time the difference.
CHILD_LIFETIME: Final = Lifetime.derive(3600.0)


def _count(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64):
        raise ConfigError(f"must be a whole number >= 0, got {value!r}", attribute.name)


@attrs.frozen
class VolumeLifetime:
    """When a Child SA is rekeyed and deleted by the traffic it carried (RFC 4301 §4.4.2.1).

    swanctl.conf's ``rekey_bytes``, ``life_bytes``, ``rekey_packets`` and
    ``life_packets``: each direction of the pair (each ESP SA, RFC 4301 §4.4.2.1
    "byte count" and the packets of RFC 7296 §2.8) counts the octets of the
    inner packets and the packets it sealed or opened; when either direction
    reaches a ``rekey_*`` limit (the soft lifetime) the pair is rekeyed, at a
    ``life_*`` limit (the hard lifetime) it is deleted and carries no more.  0
    means no limit.  :meth:`derive` fills in a hard limit 10% past a soft one
    given alone, as strongSwan does; unlike strongSwan there is no random
    share (``rand_bytes``/``rand_packets``): the soft limit is exact.
    """

    rekey_bytes: int = attrs.field(default=0, validator=_count)
    life_bytes: int = attrs.field(default=0, validator=_count)
    rekey_packets: int = attrs.field(default=0, validator=_count)
    life_packets: int = attrs.field(default=0, validator=_count)

    def __attrs_post_init__(self) -> None:
        for unit in ("bytes", "packets"):
            rekey, life = getattr(self, f"rekey_{unit}"), getattr(self, f"life_{unit}")
            if rekey and life and life <= rekey:
                raise ConfigError(f"must be more than rekey_{unit} ({rekey}), got {life}", f"life_{unit}")

    @classmethod
    def derive(
        cls,
        rekey_bytes: int = 0,
        life_bytes: int | None = None,
        rekey_packets: int = 0,
        life_packets: int | None = None,
    ) -> VolumeLifetime:
        """strongSwan's defaults for what is not given: a hard limit 10% past its soft one (at
        least one more; none without a soft one); a hard limit given alone keeps no soft limit."""
        if life_bytes is None:
            life_bytes = rekey_bytes + max(rekey_bytes // 10, 1) if rekey_bytes else 0
        if life_packets is None:
            life_packets = rekey_packets + max(rekey_packets // 10, 1) if rekey_packets else 0
        return cls(rekey_bytes, life_bytes, rekey_packets, life_packets)

    def __bool__(self) -> bool:
        return bool(self.rekey_bytes or self.life_bytes or self.rekey_packets or self.life_packets)


#: No limit on octets or packets (the default, as in strongSwan).
NO_VOLUME_LIFETIME: Final = VolumeLifetime()


class DfPolicy(enum.Enum):
    """The outer IPv4 header's DF bit (RFC 4301 §8.1)."""

    COPY = "copy"  #: from an IPv4 inner packet; set for IPv6 (RFC 8200 §4.5)
    SET = "set"
    CLEAR = "clear"


def _check_dscp(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value in ("copy", "clear"):
        return
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 63:
        return
    raise ConfigError(f'expected "copy", "clear" or a DSCP 0-63, got {value!r}', attribute.name)


@attrs.frozen
class OuterPolicy:
    """What the outer header of our ESP-in-UDP carries: ``dscp`` is ``"copy"`` (the inner
    packet's), ``"clear"`` (0) or a fixed DSCP 0-63; ``df`` a :class:`DfPolicy`."""

    dscp: str | int = attrs.field(default="copy", validator=_check_dscp)
    df: DfPolicy = attrs.field(default=DfPolicy.COPY, validator=instance_of(DfPolicy, "a DfPolicy"))


@attrs.frozen
class Dpd:
    """Liveness checks of our own (RFC 7296 §2.4), as swanctl.conf's ``dpd_delay`` and ``dpd_timeout``.

    After ``delay`` seconds without a valid message from the peer, an empty
    INFORMATIONAL request goes out; unanswered, it ends the IKE SA: over UDP
    after the retransmission schedule (RFC 7296 §2.1), over TCP after the
    response timeout (RFC 9329 §6.2), or after ``timeout`` seconds when that is
    set.  ``delay`` 0 (strongSwan's default) sends none.
    """

    delay: float = attrs.field(default=0.0, validator=_duration)
    timeout: float = attrs.field(default=0.0, validator=_duration)


def _check_selectors(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    tuple_of(TrafficSelectorPolicy, "TrafficSelectorPolicy", min_size=1)(_instance, attribute, value)


MAX_REPLAY_WINDOW = 65536  #: the largest anti-replay window a child may configure


@attrs.frozen
class ChildConfig:
    """A Child SA the responder agrees to (RFC 7296 §1.3, §2.9).

    ``local_ts`` narrows TSr and ``remote_ts`` narrows TSi.  ``pool`` names an
    :class:`AddressPool` to lease virtual addresses from.  ``refuse=True``
    makes the responder refuse this child with TS_UNACCEPTABLE while keeping
    the IKE SA (a lab switch to exercise that error path).
    """

    name: str = attrs.field(validator=check_name)
    mode: Mode = attrs.field(default=Mode.TUNNEL, validator=instance_of(Mode, "a Mode"))
    local_ts: tuple[TrafficSelectorPolicy, ...] = attrs.field(
        default=(ANY_IPV4, ANY_IPV6), validator=_check_selectors
    )
    remote_ts: tuple[TrafficSelectorPolicy, ...] = attrs.field(
        default=(ANY_IPV4, ANY_IPV6), validator=_check_selectors
    )
    esp_proposals: tuple[EspProposal, ...] = attrs.field(
        default=DEFAULT_ESP_PROPOSALS, validator=tuple_of(EspProposal, "EspProposal", min_size=1)
    )
    pool: str | None = attrs.field(default=None)
    refuse: bool = attrs.field(default=False, validator=instance_of(bool, "a bool"))
    #: Its soft and hard lifetimes in octets and packets (none by default).
    volume: VolumeLifetime = attrs.field(
        default=NO_VOLUME_LIFETIME, validator=instance_of(VolumeLifetime, "a VolumeLifetime")
    )
    #: The outer header of its ESP over UDP: DSCP and DF bit (RFC 4301 §8.1; not over TCP, row A47).
    outer: OuterPolicy = attrs.field(
        default=OuterPolicy(), validator=instance_of(OuterPolicy, "an OuterPolicy")
    )
    lifetime: Lifetime = attrs.field(default=CHILD_LIFETIME, validator=instance_of(Lifetime, "a Lifetime"))
    #: Where its inner packets go: ``"echo"`` (the core answers pings to our addresses), ``"api"``
    #: (a program embedding the responder), or ``"tun"`` (the shell's TUN device; tunnel mode only).
    backend: str = attrs.field(default="echo")
    #: Its anti-replay window in packets (RFC 4303 §3.4.3: 64 the default, at least 32 to interoperate;
    #: smaller ones are a lab knob), 1..65536.
    replay_window: int = attrs.field(default=64)

    @backend.validator
    def _check_backend(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in ("echo", "api", "tun"):
            raise ConfigError(f"expected 'echo', 'api' or 'tun', got {value!r}", attribute.name)
        if value == "tun" and self.mode is Mode.TRANSPORT:
            raise ConfigError("'tun' carries IP packets: it needs mode = 'tunnel'", attribute.name)

    @replay_window.validator
    def _check_replay_window(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_REPLAY_WINDOW:
            raise ConfigError(
                f"expected a number of packets from 1 to {MAX_REPLAY_WINDOW}, got {value!r}", attribute.name
            )

    @pool.validator
    def _check_pool(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            check_name(self, attribute, value)


def _check_children(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    tuple_of(ChildConfig, "ChildConfig", min_size=1)(_instance, attribute, value)
    assert isinstance(value, tuple)
    for index in duplicates(child.name for child in value):
        raise ConfigError(f"duplicate child name {value[index].name!r}", f"{attribute.name}[{index}].name")


@attrs.frozen
class PeerConfig:
    """A peer (or a family of peers): whom it covers, how it authenticates, what it may have.

    ``auth`` is how the peer proves its identity (:class:`PskAuth` or
    :class:`PubkeyAuth`; a bare :class:`Secret` is taken as
    ``PskAuth(secret)``).  ``local_auth`` is how we prove ours to it: ``None``
    means the same method (the same shared key, or our certificate), and
    mixing is allowed (swanctl.conf's ``local`` and ``remote`` sections).
    ``send_cert`` says when our CERT payloads go with a signature AUTH.
    ``local_id`` overrides :attr:`Config.local_id` for this peer.
    """

    name: str = attrs.field(validator=check_name)
    remote_id: IdPattern = attrs.field(validator=instance_of(IdPattern, "an IdPattern"))
    auth: PeerAuth = attrs.field(
        converter=as_peer_auth, validator=instance_of((PskAuth, PubkeyAuth), "a PskAuth or PubkeyAuth")
    )
    local_id: Identity | None = attrs.field(
        default=None, validator=optional_instance_of(Identity, "an Identity")
    )
    local_auth: PeerAuth | None = attrs.field(
        default=None, validator=optional_instance_of((PskAuth, PubkeyAuth), "a PskAuth or PubkeyAuth")
    )
    send_cert: SendCert = attrs.field(default=SendCert.IFASKED, validator=instance_of(SendCert, "a SendCert"))
    children: tuple[ChildConfig, ...] = attrs.field(
        default=(ChildConfig("default"),), validator=_check_children
    )
    ike_lifetime: Lifetime = attrs.field(default=IKE_LIFETIME, validator=instance_of(Lifetime, "a Lifetime"))
    dpd: Dpd = attrs.field(factory=Dpd, validator=instance_of(Dpd, "a Dpd"))

    @property
    def our_auth(self) -> PeerAuth:
        """How we authenticate to this peer (:attr:`local_auth`, else the peer's own method)."""
        return self.local_auth if self.local_auth is not None else self.auth

    def child(self, name: str) -> ChildConfig | None:
        """The child named ``name``, if any."""
        return next((child for child in self.children if child.name == name), None)


#: The smallest ``Limits.fragment_size`` (octets of IP datagram) accepted.
MIN_FRAGMENT_SIZE: Final = 256


@attrs.frozen
class Limits:
    """Resource limits the core enforces (RFC 7296 §2.6 for cookies, RFC 9329 §6.1 for streams).

    Half-open IKE SAs are budgeted separately over streams (TCP, TLS) and
    over UDP: ``half_open_max`` of each kind, ``half_open_per_source`` per
    source address (IPv6 sources per ``half_open_ipv6_prefix``),
    ``half_open_per_connection`` per stream connection
    (:mod:`responder.core.admission`).  ``cookie_threshold`` is the number of
    half-open IKE SAs over UDP from which IKE_SA_INIT is answered with a
    COOKIE; 0 demands a cookie always.  Answers to unprotected messages
    (stateless refusals, COOKIEs, INVALID_MAJOR_VERSION) are limited to
    ``unprotected_replies_per_source`` a second per source and
    ``unprotected_replies_max`` a second in all (RFC 7296 §2.21.4).
    ``orphan_timeout`` is how long a stream connection may carry no live IKE
    SA before the core closes it (RFC 9329 §6.1 "a few seconds", row A25);
    ``corrupt_messages_max`` consecutive corrupt messages close a stream
    connection (rows A32, A33).  Times are in seconds.

    IKE fragmentation (RFC 7383, once an IKE SA negotiated it): our messages
    that would not fit an IP datagram of ``fragment_size`` octets are sent as
    fragments over UDP (§2.5.1; strongSwan's ``charon.fragment_size``, 1280 by
    default as the RFC recommends for IPv6); the peer's fragmented messages
    are reassembled within these bounds, or dropped (§2.6, row E4): at most
    ``fragments_max`` fragments and ``reassembly_size_max`` octets of
    decrypted content per message, ``reassembly_timeout`` seconds from its
    first fragment, and ``reassemblies_per_sa`` messages at once per IKE SA.
    """

    half_open_max: int = attrs.field(default=1000, validator=positive_int)
    half_open_per_source: int = attrs.field(default=10, validator=positive_int)
    half_open_per_connection: int = attrs.field(default=4, validator=positive_int)
    half_open_ipv6_prefix: int = attrs.field(default=64)
    half_open_timeout: float = attrs.field(default=30.0, validator=positive)
    cookie_threshold: int = attrs.field(default=100)
    cookie_secret_lifetime: float = attrs.field(default=300.0, validator=positive)
    ike_sa_max: int = attrs.field(default=10000, validator=positive_int)
    child_sa_max: int = attrs.field(default=64, validator=positive_int)
    orphan_timeout: float = attrs.field(default=10.0, validator=seconds)
    corrupt_messages_max: int = attrs.field(default=16, validator=positive_int)
    unprotected_replies_per_source: float = attrs.field(default=10.0, validator=positive)
    unprotected_replies_max: float = attrs.field(default=1000.0, validator=positive)
    fragment_size: int = attrs.field(default=1280)
    fragments_max: int = attrs.field(default=64, validator=positive_int)
    reassembly_size_max: int = attrs.field(default=65535, validator=positive_int)
    reassembly_timeout: float = attrs.field(default=30.0, validator=seconds)
    reassemblies_per_sa: int = attrs.field(default=2, validator=positive_int)

    @fragment_size.validator
    def _check_fragment_size(self, attribute: attrs.Attribute[Any], value: object) -> None:
        # RFC 7383 §2.5.1: 576 for IPv4 is the usual floor; below 256 octets an IPv6 datagram
        # carries too little after its headers, the IV and the ICV.
        if not is_int(value) or not MIN_FRAGMENT_SIZE <= value <= 65535:  # type: ignore[operator]
            raise ConfigError(
                f"must be an integer in {MIN_FRAGMENT_SIZE}..65535, got {value!r}", attribute.name
            )

    @half_open_ipv6_prefix.validator
    def _check_prefix(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if not is_int(value) or not 16 <= value <= 128:  # type: ignore[operator]
            raise ConfigError(f"must be an integer in 16..128, got {value!r}", attribute.name)

    @cookie_threshold.validator
    def _check_cookie_threshold(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if not is_int(value) or value < 0:  # type: ignore[operator]
            raise ConfigError(f"must be an integer >= 0, got {value!r}", attribute.name)


def _certreq_data(config: Config) -> bytes:
    """SHA-1 of each trusted CA's SubjectPublicKeyInfo, in order, each CA once (RFC 7296 §3.7)."""
    cas = [*config.trust.anchors]
    for peer in config.peers:
        if isinstance(peer.auth, PubkeyAuth):
            cas += peer.auth.cas
    hashes: dict[bytes, None] = {}
    for ca in cas:
        spki = ca.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        hashes[hashlib.sha1(spki).digest()] = None  # noqa: S324 - the RFC names CAs by SHA-1
    return b"".join(hashes)


#: Name of the synthetic peer :meth:`Config.find_peer` returns in lab mode.
LAB_PEER_NAME: Final = "%lab"
#: Name of the lab peer that authenticates with a certificate.
LAB_PUBKEY_PEER_NAME: Final = "%lab-pubkey"


def _check_window(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not is_int(value) or not 1 <= value <= 2**31:  # type: ignore[operator]
        raise ConfigError(f"must be an integer in 1..2^31, got {value!r}", attribute.name)


@attrs.frozen
class Config:
    """Everything the responder's core needs to decide (RFC 7296 §3.3.4: the suites it accepts).

    Peers are looked up by their IDi in configuration order: the first pattern
    that matches wins, so put exact identities before wildcards.  With
    ``any_id_psk`` set (lab mode) every identity no peer claims authenticates
    with that key and gets ``lab_children``.  With neither peers nor
    ``any_id_psk`` the responder answers IKE_SA_INIT but authenticates nobody.
    ``local_id`` ``None`` means: the address the request arrived on.
    ``prefer_initiator_order`` switches proposal selection from our order to
    the initiator's (see :mod:`responder.core.proposals`).
    """

    ike_proposals: tuple[IkeProposal, ...] = attrs.field(
        default=DEFAULT_IKE_PROPOSALS, validator=tuple_of(IkeProposal, "IkeProposal", min_size=1)
    )
    peers: tuple[PeerConfig, ...] = attrs.field(default=(), validator=tuple_of(PeerConfig, "PeerConfig"))
    any_id_psk: Secret | None = attrs.field(default=None, validator=optional_instance_of(Secret, "a Secret"))
    lab_children: tuple[ChildConfig, ...] = attrs.field(
        default=(ChildConfig("default"),), validator=_check_children
    )
    local_id: Identity | None = attrs.field(
        default=None, validator=optional_instance_of(Identity, "an Identity")
    )
    pools: tuple[AddressPool, ...] = attrs.field(default=(), validator=tuple_of(AddressPool, "AddressPool"))
    prefer_initiator_order: bool = attrs.field(default=False, validator=instance_of(bool, "a bool"))
    window_size: int = attrs.field(default=1, validator=_check_window)
    limits: Limits = attrs.field(factory=Limits, validator=instance_of(Limits, "a Limits"))
    childless: ChildlessPolicy = attrs.field(
        default=ChildlessPolicy.ALLOW, validator=instance_of(ChildlessPolicy, "a ChildlessPolicy")
    )
    lab_ike_lifetime: Lifetime = attrs.field(
        default=IKE_LIFETIME, validator=instance_of(Lifetime, "a Lifetime")
    )
    lab_dpd: Dpd = attrs.field(factory=Dpd, validator=instance_of(Dpd, "a Dpd"))
    credential: Credential | None = attrs.field(
        default=None, validator=optional_instance_of(Credential, "a Credential")
    )
    trust: TrustStore = attrs.field(factory=TrustStore, validator=instance_of(TrustStore, "a TrustStore"))
    lab_pubkey: bool = attrs.field(default=False, validator=instance_of(bool, "a bool"))
    #: The Certification Authority field of our CERTREQ (RFC 7296 §3.7): the SHA-1 of the
    #: SubjectPublicKeyInfo of every CA we trust (the trust store's, then the peers' ``cas``),
    #: computed once here rather than for every IKE_SA_INIT.
    certreq_data: bytes = attrs.field(init=False, default=b"", eq=False, repr=False)
    #: :attr:`lab_peer` and :attr:`lab_pubkey_peer`, built once here: made afresh for each
    #: IKE_AUTH, the PeerConfig an SA keeps was 224 octets per SA held (issue 14).
    _lab_peers: tuple[PeerConfig | None, PeerConfig | None] = attrs.field(
        init=False, default=(None, None), eq=False, repr=False
    )
    #: Answer IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 §2.3; swanctl's ``fragmentation``).
    fragmentation: bool = attrs.field(default=True, validator=instance_of(bool, "a bool"))
    #: Lab impairments (``[impair]``, ``--impair``; :mod:`~responder.core.config.impairments`): all off.
    impair: Impairments = attrs.field(factory=Impairments, validator=instance_of(Impairments, "Impairments"))

    def __attrs_post_init__(self) -> None:
        forced = self.impair.force_invalid_ke
        if forced is not None and not any(forced in p.key_exchange for p in self.ike_proposals):
            raise ConfigError(
                f"{algorithm_name(forced)} is in none of our IKE proposals: no initiator could use it",
                "impair.force_invalid_ke",
            )
        for index, peer in enumerate(self.peers):
            if peer.name.startswith("%"):
                raise ConfigError(
                    f"peer names starting with '%' are reserved: {peer.name!r}", f"peers[{index}].name"
                )
        for index in duplicates(peer.name for peer in self.peers):
            raise ConfigError(f"duplicate peer name {self.peers[index].name!r}", f"peers[{index}].name")
        for index in duplicates(pool.name for pool in self.pools):
            raise ConfigError(f"duplicate pool name {self.pools[index].name!r}", f"pools[{index}].name")
        for index, peer in enumerate(self.peers):
            if isinstance(peer.our_auth, PubkeyAuth) and self.credential is None:
                raise ConfigError(
                    "authenticating with a certificate needs our certificate and key",
                    f"peers[{index}].local_auth",
                )
            if isinstance(peer.auth, PubkeyAuth) and not (peer.auth.cas or self.trust.anchors):
                raise ConfigError("certificate authentication needs a trusted CA", f"peers[{index}].auth")
        if self.lab_pubkey and (self.credential is None or not self.trust.anchors):
            raise ConfigError("lab certificate mode needs our certificate and a trusted CA", "lab_pubkey")
        pool_names = {pool.name for pool in self.pools}
        groups = [(f"peers[{i}].children", peer.children) for i, peer in enumerate(self.peers)]
        groups.append(("lab_children", self.lab_children))
        for path, children in groups:
            for index, child in enumerate(children):
                if child.pool is not None and child.pool not in pool_names:
                    raise ConfigError(f"no pool named {child.pool!r}", f"{path}[{index}].pool")
        self._check_local_ids()
        object.__setattr__(self, "certreq_data", _certreq_data(self))
        psk = None if self.any_id_psk is None else self._lab(LAB_PEER_NAME, PskAuth(self.any_id_psk))
        pubkey = self._lab(LAB_PUBKEY_PEER_NAME, PubkeyAuth()) if self.lab_pubkey else None
        object.__setattr__(self, "_lab_peers", (psk, pubkey))

    def _check_local_ids(self) -> None:
        """RFC 4945 §3.1: an identity we sign as must be one our certificate holds."""
        credential = self.credential
        if credential is None:
            return
        for index, peer in enumerate(self.peers):
            local = peer.local_id or self.local_id
            signs = isinstance(peer.our_auth, PubkeyAuth)
            if signs and local is not None and not certificate_binds(credential.certificate, local):
                where = f"peers[{index}].local_id" if peer.local_id is not None else "local_id"
                raise ConfigError(
                    f"{local} is not in our certificate (a subjectAltName of its type, or its subject "
                    "for a DN), and this peer checks our signature against it",
                    where,
                )

    @property
    def lab_peer(self) -> PeerConfig | None:
        """The catch-all peer of lab mode with a shared key (``any_id_psk`` set), named ``%lab``."""
        return self._lab_peers[0]

    @property
    def lab_pubkey_peer(self) -> PeerConfig | None:
        """The catch-all peer of lab mode with certificates (``lab_pubkey`` set), named ``%lab-pubkey``:
        any ID its certificate binds, from a CA of :attr:`trust`."""
        return self._lab_peers[1]

    def _lab(self, name: str, auth: PeerAuth) -> PeerConfig:
        return PeerConfig(
            name,
            IdPattern.any(),
            auth,
            children=self.lab_children,
            ike_lifetime=self.lab_ike_lifetime,
            dpd=self.lab_dpd,
        )

    @property
    def uses_certificates(self) -> bool:
        """Whether any peer may authenticate with a certificate, or we with ours (CERTREQ and
        SIGNATURE_HASH_ALGORITHMS go out in IKE_SA_INIT then)."""
        if self.credential is not None or self.trust.anchors or self.lab_pubkey:
            return True
        return any(isinstance(peer.auth, PubkeyAuth) for peer in self.peers)

    def find_peer(self, identity: Identity, *, signature: bool | None = None) -> PeerConfig | None:
        """The peer configuration for a peer's IDi.

        The first of :attr:`peers` whose ``remote_id`` matches, in
        configuration order, and, when ``signature`` is given, whose method
        is a signature (``True``) or a shared key (``False``), as the peer's
        AUTH payload shows; failing that, the lab peer of that method
        (``None`` outside lab mode).
        """
        for peer in self.peers:
            if signature is not None and isinstance(peer.auth, PubkeyAuth) != signature:
                continue
            if peer.remote_id.matches(identity):
                return peer
        if signature is None:
            return self.lab_peer or self.lab_pubkey_peer
        return self.lab_pubkey_peer if signature else self.lab_peer

    def pool(self, name: str) -> AddressPool:
        """The pool named ``name``; ``KeyError`` if there is none (children's references are checked)."""
        for pool in self.pools:
            if pool.name == name:
                return pool
        raise KeyError(name)
