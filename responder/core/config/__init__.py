"""The configuration the sans-IO core reads, as frozen values that check themselves.

Strategy: one module per concern, all re-exported here:

* :mod:`~responder.core.config.credentials`: :class:`Secret`, our
  :class:`Credential`, the :class:`TrustStore`, and how a peer
  authenticates (:class:`PskAuth`, :class:`PubkeyAuth`: the :data:`PeerAuth` choice);
* :mod:`~responder.core.config.algorithms`: IKE and ESP proposals in
  strongSwan's keywords;
* :mod:`~responder.core.config.traffic_selectors`: selectors in strongSwan's
  notation;
* :mod:`~responder.core.config.model`: children, peers, pools, limits and the
  whole :class:`Config`;
* :mod:`~responder.core.config.impairments`: the lab :class:`Impairments`.

Identities and their patterns live in :mod:`responder.core.identity` (the
protocol uses them too) and are re-exported here for convenience.  Nothing in
this package imports anything outside :mod:`responder.core`; the TOML loader
(:mod:`responder.config_file`) and the command line build these values.
"""

from responder.core.config.algorithms import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    EncryptionAlgorithm,
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
)
from responder.core.config.impairments import IMPAIRMENT_NAMES, Impairments, ResponseDelay
from responder.core.config.model import (
    CHILD_LIFETIME,
    IKE_LIFETIME,
    LAB_PEER_NAME,
    LAB_PUBKEY_PEER_NAME,
    NO_LIFETIME,
    NO_VOLUME_LIFETIME,
    AddressPool,
    ChildConfig,
    ChildlessPolicy,
    Config,
    DfPolicy,
    Dpd,
    Lifetime,
    Limits,
    Mode,
    OuterPolicy,
    PeerConfig,
    VolumeLifetime,
)
from responder.core.config.traffic_selectors import ANY_IPV4, ANY_IPV6, TrafficSelectorPolicy
from responder.core.errors import ConfigError, config_path
from responder.core.identity import Identity, IdPattern, IdPatternKind

__all__ = [
    "ANY_IPV4",
    "ANY_IPV6",
    "CHILD_LIFETIME",
    "DEFAULT_ESP_PROPOSALS",
    "DEFAULT_IKE_PROPOSALS",
    "IKE_LIFETIME",
    "IMPAIRMENT_NAMES",
    "LAB_PEER_NAME",
    "LAB_PUBKEY_PEER_NAME",
    "NO_LIFETIME",
    "NO_VOLUME_LIFETIME",
    "AddressPool",
    "ChildConfig",
    "ChildlessPolicy",
    "Config",
    "ConfigError",
    "Credential",
    "DfPolicy",
    "Dpd",
    "EncryptionAlgorithm",
    "EspProposal",
    "IdPattern",
    "IdPatternKind",
    "Identity",
    "IkeProposal",
    "Impairments",
    "Lifetime",
    "Limits",
    "Mode",
    "OuterPolicy",
    "PeerAuth",
    "PeerConfig",
    "PskAuth",
    "PubkeyAuth",
    "ResponseDelay",
    "Secret",
    "SendCert",
    "TrafficSelectorPolicy",
    "TrustStore",
    "VolumeLifetime",
    "algorithm_name",
    "config_path",
]
