"""Proposal selection: (local policy, offered SA payload) -> ChosenProposal | NoProposalChosen.

Strategy: RFC 7296 §2.7 and §3.3.6 as one deterministic procedure.

1. Each offered proposal is first checked on its own (protocol, SPI size,
   Transform Types).  A Transform Type we do not know, a type not valid for
   the protocol (RFC 7296 §3.3.3) or a missing mandatory type makes the
   *proposal* unacceptable; the other proposals are still considered.
   A transform we do not understand (unknown ID, unknown or repeated
   attribute, a Key Length on a fixed-size algorithm) makes only that
   *transform* unacceptable: it is skipped.
2. A local proposal and an offered one *match* when every Transform Type the
   offer contains has a value both accept.  Local proposals never mix AEAD and
   non-AEAD encryption (checked by :mod:`responder.config`), so the choices per
   type are independent: with AEAD, INTEG must be absent or offered as NONE
   (RFC 5282 §8, RFC 7296 §3.3); without AEAD, an integrity algorithm is chosen.
3. Preference.  By default the responder's order decides: local proposals
   in configuration order, for each the offered proposals in their order, and
   within the first matching pair each type's value in the local order.
   With ``prefer_initiator_order`` the loops swap and the initiator's order of
   proposals and of transforms decides.
4. ``ke_hint`` (the group of the KE payload that came with the SA payload)
   changes only the key-exchange choice of that first matching pair: if the
   pair allows the hinted group it is chosen, so a correct KEi never costs an
   INVALID_KE_PAYLOAD round trip (strongSwan does the same).  It never makes
   another pair win: when the pair does not allow it, the caller answers
   INVALID_KE_PAYLOAD with the group chosen (RFC 7296 §1.2, §3.10.1).

The response carries exactly one transform of each type offered, with its
attributes unchanged (RFC 7296 §2.7, §3.3.6); :meth:`ChosenProposal.transforms`
builds them.  When nothing matches, :class:`NoProposalChosen` says per offered
proposal why, for logs and events; the wire answer is NO_PROPOSAL_CHOSEN.
Proposal numbering (RFC 7296 §3.3.1) is not checked: the response simply
carries the number of the accepted proposal.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

import attrs

from responder.core.config import EncryptionAlgorithm, EspProposal, IkeProposal, algorithm_name
from responder.core.enums import (
    EncrId,
    EsnId,
    IntegId,
    KeyExchangeId,
    PrfId,
    ProtocolId,
    TransformAttributeType,
    TransformType,
)
from responder.core.errors import LocalError
from responder.core.payloads import Proposal, SaPayload, Transform, TransformAttribute
from responder.core.transforms import Encryption, Integrity, Prf, encryption, integrity, prf

__all__ = [
    "ChosenProposal",
    "NoProposalChosen",
    "ProposalRejection",
    "offer",
    "select_esp_proposal",
    "select_ike_proposal",
]

_ADDKE_TYPES = tuple(TransformType(n) for n in range(6, 13))


def _check_uint8(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFF:
        raise ValueError(f"{attribute.name} must be an integer in 0..255, got {value!r}")


@attrs.frozen
class ChosenProposal:
    """The suite the responder accepted (RFC 7296 §2.7).

    ``spi`` is the SPI of the accepted *offered* proposal: empty in
    IKE_SA_INIT, the initiator's new IKE SPI in an IKE SA rekey, the
    initiator's inbound ESP SPI for a Child SA.  A field is ``None`` when its
    Transform Type was not offered (and so is not in the response):
    ``prf`` for ESP, ``integrity`` for AEAD proposals without INTEG,
    ``key_exchange`` for Child SAs without KE, ``esn`` for an ESP proposal
    that lacks ESN (then 32-bit sequence numbers are used).  Offered as NONE,
    they are NONE and echoed.  ``additional_ke`` lists the RFC 9370 ADDKE
    types the initiator made optional and that were answered with NONE.
    """

    number: int = attrs.field(validator=_check_uint8)
    protocol_id: ProtocolId
    spi: bytes
    encryption: EncryptionAlgorithm
    prf: PrfId | None
    integrity: IntegId | None
    key_exchange: KeyExchangeId | None
    esn: EsnId | None
    additional_ke: tuple[TransformType, ...] = ()

    @property
    def is_aead(self) -> bool:
        return self.encryption_transform().is_aead

    def transforms(self) -> tuple[Transform, ...]:
        """One transform per negotiated type, in Transform Type order, for the response."""
        encr_id, bits = self.encryption
        attributes = () if bits is None else (TransformAttribute.key_length(bits),)
        chosen = [Transform(TransformType.ENCR, encr_id, attributes)]
        if self.prf is not None:
            chosen.append(Transform(TransformType.PRF, self.prf))
        if self.integrity is not None:
            chosen.append(Transform(TransformType.INTEG, self.integrity))
        if self.key_exchange is not None:
            chosen.append(Transform(TransformType.KE, self.key_exchange))
        if self.esn is not None:
            chosen.append(Transform(TransformType.ESN, self.esn))
        chosen.extend(Transform(t, KeyExchangeId.NONE) for t in sorted(self.additional_ke))
        return tuple(chosen)

    def as_proposal(self, spi: bytes) -> Proposal:
        """The proposal of the response SA payload: same number and protocol (RFC 7296 §3.3).

        ``spi`` is ours: empty in IKE_SA_INIT, our new IKE SPI in an IKE SA
        rekey, our inbound SPI for a Child SA.
        """
        return Proposal(self.number, self.protocol_id, self.transforms(), spi)

    def without_spi(self) -> ChosenProposal:
        """The suite alone, which many SAs negotiate alike and share (:mod:`responder.core.interning`,
        issue 14): the SPI is each SA's own, and kept as its SPIs or a Child SA's ``outbound_spi``."""
        return attrs.evolve(self, spi=b"") if self.spi else self

    def encryption_transform(self) -> Encryption:
        return encryption(*self.encryption)

    def prf_transform(self) -> Prf:
        """The PRF; :class:`LocalError` for Child SA proposals, which have none."""
        if self.prf is None:
            raise LocalError(f"a {self.protocol_id.name} proposal has no PRF")
        return prf(self.prf)

    def integrity_transform(self) -> Integrity | None:
        """The integrity algorithm, ``None`` with AEAD encryption."""
        if self.integrity is None or self.integrity == IntegId.NONE:
            return None
        return integrity(self.integrity)

    def __str__(self) -> str:
        names = [algorithm_name(self.encryption)]
        if self.integrity is not None and self.integrity != IntegId.NONE:
            names.append(algorithm_name(self.integrity))
        if self.prf is not None:
            names.append(algorithm_name(self.prf))
        if self.key_exchange is not None and self.key_exchange != KeyExchangeId.NONE:
            names.append(algorithm_name(self.key_exchange))
        if self.esn is not None:
            names.append(algorithm_name(self.esn))
        return f"{self.protocol_id.name} proposal #{self.number}: {'-'.join(names)}"


@attrs.frozen
class ProposalRejection:
    """Why one offered proposal was not accepted.

    ``unmatched`` lists the Transform Types for which no offered transform was
    acceptable (or that are unknown / missing); it is empty when the proposal
    failed as a whole (wrong protocol, SPI size).
    """

    number: int
    protocol_id: ProtocolId
    unmatched: tuple[TransformType, ...]
    reason: str

    def __str__(self) -> str:
        return f"#{self.number} {self.protocol_id.name}: {self.reason}"


@attrs.frozen
class NoProposalChosen:
    """No offered proposal was acceptable: one rejection per offered proposal, in offered order."""

    rejections: tuple[ProposalRejection, ...]

    def __str__(self) -> str:
        return "no proposal chosen: " + "; ".join(str(rejection) for rejection in self.rejections)


# ---------------------------------------------------------------------------
# Normalised local policy and offers
# ---------------------------------------------------------------------------


@attrs.frozen
class _Rules:
    protocol: ProtocolId
    spi_size: int
    allowed: frozenset[TransformType]
    mandatory: tuple[TransformType, ...]


_IKE_TYPES = frozenset(
    {TransformType.ENCR, TransformType.PRF, TransformType.INTEG, TransformType.KE, *_ADDKE_TYPES}
)
_ESP_TYPES = frozenset(
    {TransformType.ENCR, TransformType.INTEG, TransformType.KE, TransformType.ESN, *_ADDKE_TYPES}
)


def _ike_rules(spi_size: int) -> _Rules:
    # RFC 7296 §3.3.3: ENCR, PRF, INTEG (unless AEAD), D-H are mandatory for IKE.
    return _Rules(
        ProtocolId.IKE, spi_size, _IKE_TYPES, (TransformType.ENCR, TransformType.PRF, TransformType.KE)
    )


# RFC 7296 §3.3.3 lists ESN as mandatory for ESP; we accept its absence as "no ESN"
# (see select_esp_proposal), so only ENCR is enforced here.
_ESP_RULES = _Rules(ProtocolId.ESP, 4, _ESP_TYPES, (TransformType.ENCR,))


@attrs.frozen
class _Local:
    """A local proposal, as the matcher sees it; ``key_exchange`` ends with NONE when KE is optional."""

    text: str
    encryption: tuple[EncryptionAlgorithm, ...]
    prf: tuple[PrfId, ...]
    integrity: tuple[IntegId, ...]
    key_exchange: tuple[KeyExchangeId, ...]
    esn: tuple[EsnId, ...]
    aead: bool
    key_exchange_required: bool


# Cached: a configured proposal is a frozen value, and its text (every algorithm's name) took
# about 12 us to build for an IKE proposal and 5 us for an ESP one, for each proposal of the
# configuration at each negotiation (0.5 us from the cache): with the CLI's default proposals
# (two of each) some 35 us per IKE SA with a Child SA, 2% of the responder's CPU per PSK SA
# in bench/vs_strongswan.py (2026-12-02).  The bound keeps the values of old reloads from
# piling up.
@functools.lru_cache(maxsize=256)
def _local(policy: IkeProposal | EspProposal, *, require_key_exchange: bool) -> _Local:
    if isinstance(policy, IkeProposal):
        return _Local(
            str(policy),
            policy.encryption,
            policy.prf,
            policy.integrity,
            policy.key_exchange,
            (),
            policy.is_aead,
            True,
        )
    groups = policy.key_exchange if require_key_exchange else (*policy.key_exchange, KeyExchangeId.NONE)
    return _Local(
        str(policy),
        policy.encryption,
        (),
        policy.integrity,
        groups,
        policy.esn,
        policy.is_aead,
        require_key_exchange,
    )


@attrs.frozen
class _Offer:
    """The usable transforms of one offered proposal, per type, in offered order."""

    proposal: Proposal
    present: frozenset[TransformType]
    encryption: tuple[EncryptionAlgorithm, ...]
    prf: tuple[PrfId, ...]
    integrity: tuple[IntegId, ...]
    key_exchange: tuple[KeyExchangeId, ...]
    esn: tuple[EsnId, ...]
    addke_none: frozenset[TransformType]

    def offered_names(self, transform_type: TransformType) -> str:
        """Every offered transform of a type, usable or not, for messages."""
        names = []
        for transform in self.proposal.transforms:
            if transform.transform_type != transform_type:
                continue
            if transform_type == TransformType.ENCR:
                names.append(algorithm_name((EncrId(transform.transform_id), transform.key_length)))
            else:
                value = _typed_value(transform_type, transform.transform_id)
                names.append(algorithm_name(value) if value is not None else str(transform.transform_id))
        return ", ".join(names) or "nothing"


def _typed_value(
    transform_type: TransformType, transform_id: int
) -> PrfId | IntegId | KeyExchangeId | EsnId | None:
    if transform_type == TransformType.PRF:
        return PrfId(transform_id)
    if transform_type == TransformType.INTEG:
        return IntegId(transform_id)
    if transform_type == TransformType.KE or transform_type in _ADDKE_TYPES:
        return KeyExchangeId(transform_id)
    if transform_type == TransformType.ESN:
        return EsnId(transform_id)
    return None


def _usable(transform: Transform) -> bool:
    """RFC 7296 §3.3.6: a transform with an attribute we do not understand is unacceptable.

    The only attribute we understand is Key Length (TV format, once), and only
    on encryption transforms (§3.3.5: not for fixed-size algorithms).
    """
    attributes = transform.attributes
    if not attributes:
        return True
    return (
        transform.transform_type == TransformType.ENCR
        and len(attributes) == 1
        and attributes[0].attribute_type == TransformAttributeType.KEY_LENGTH
        and isinstance(attributes[0].value, int)
    )


def _offer(proposal: Proposal) -> _Offer:
    present: set[TransformType] = set()
    encryption_algorithms: list[EncryptionAlgorithm] = []
    prfs: list[PrfId] = []
    integrity_algorithms: list[IntegId] = []
    groups: list[KeyExchangeId] = []
    esn: list[EsnId] = []
    addke_none: set[TransformType] = set()
    for transform in proposal.transforms:
        transform_type = TransformType(transform.transform_type)
        present.add(transform_type)
        if not _usable(transform):
            continue
        if transform_type == TransformType.ENCR:
            encryption_algorithms.append((EncrId(transform.transform_id), transform.key_length))
        elif transform_type == TransformType.PRF:
            prfs.append(PrfId(transform.transform_id))
        elif transform_type == TransformType.INTEG:
            integrity_algorithms.append(IntegId(transform.transform_id))
        elif transform_type == TransformType.KE:
            groups.append(KeyExchangeId(transform.transform_id))
        elif transform_type == TransformType.ESN:
            esn.append(EsnId(transform.transform_id))
        elif transform_type in _ADDKE_TYPES and transform.transform_id == KeyExchangeId.NONE:
            addke_none.add(transform_type)
    return _Offer(
        proposal,
        frozenset(present),
        tuple(encryption_algorithms),
        tuple(prfs),
        tuple(integrity_algorithms),
        tuple(groups),
        tuple(esn),
        frozenset(addke_none),
    )


def _names(types: Sequence[TransformType]) -> str:
    return ", ".join(t.name for t in types)


def _structural_rejection(rules: _Rules, proposal: Proposal) -> ProposalRejection | None:
    """Checks that make a whole proposal unacceptable, before any algorithm is compared."""

    def reject(reason: str, unmatched: Sequence[TransformType] = ()) -> ProposalRejection:
        return ProposalRejection(proposal.number, proposal.protocol_id, tuple(unmatched), reason)

    if proposal.protocol_id != rules.protocol:
        if rules.protocol == ProtocolId.ESP and proposal.protocol_id == ProtocolId.AH:
            return reject("AH is not supported (ESP only)")
        return reject(f"wrong protocol {proposal.protocol_id.name}, expected {rules.protocol.name}")
    if len(proposal.spi) != rules.spi_size:
        return reject(f"SPI size wrong: {len(proposal.spi)}, expected {rules.spi_size} (RFC 7296 §3.3.1)")
    if rules.spi_size and proposal.spi == bytes(rules.spi_size):
        return reject("SPI is zero")
    types = [TransformType(t.transform_type) for t in proposal.transforms]
    unknown = sorted({t for t in types if not t.is_known})
    if unknown:
        numbers = ", ".join(str(int(t)) for t in unknown)
        return reject(f"unknown transform type {numbers} (RFC 7296 §3.3.6)", unknown)
    invalid = sorted({t for t in types if t not in rules.allowed})
    if invalid:
        return reject(
            f"transform type {_names(invalid)} not valid for {rules.protocol.name} (RFC 7296 §3.3.3)", invalid
        )
    missing = [t for t in rules.mandatory if t not in types]
    if missing:
        return reject(f"mandatory transform type {_names(missing)} missing (RFC 7296 §3.3.3)", missing)
    return None


# ---------------------------------------------------------------------------
# Matching one local proposal against one offer
# ---------------------------------------------------------------------------

_V = TypeVar("_V")


def _ordered(offered: Sequence[_V], local: Sequence[_V], initiator_first: bool) -> list[_V]:
    """The values both sides accept, in the preferred side's order, without repeats."""
    first, second = (offered, local) if initiator_first else (local, offered)
    result: list[_V] = []
    for value in first:
        if value in second and value not in result:
            result.append(value)
    return result


@attrs.frozen
class _Match:
    encryption: EncryptionAlgorithm
    prf: PrfId | None
    integrity: IntegId | None
    key_exchange: tuple[KeyExchangeId | None, ...]  # candidates, preferred first
    esn: EsnId | None
    additional_ke: tuple[TransformType, ...]


def _match(local: _Local, offer: _Offer, initiator_first: bool) -> _Match | list[TransformType]:
    """The choice for this pair, or the Transform Types that found no acceptable value."""
    misses: list[TransformType] = []
    present = offer.present

    encryption_choices = _ordered(offer.encryption, local.encryption, initiator_first)
    if not encryption_choices:
        misses.append(TransformType.ENCR)

    prf_choice: PrfId | None = None
    if TransformType.PRF in present:
        prf_choices = _ordered(offer.prf, local.prf, initiator_first)
        if prf_choices:
            prf_choice = prf_choices[0]
        else:
            misses.append(TransformType.PRF)

    integrity_choice: IntegId | None = None
    if local.aead:
        # RFC 5282 §8, RFC 7296 §3.3: with a combined-mode cipher INTEG is absent or NONE.
        if TransformType.INTEG in present:
            if IntegId.NONE in offer.integrity:
                integrity_choice = IntegId.NONE
            else:
                misses.append(TransformType.INTEG)
    else:
        integrity_choices = _ordered(offer.integrity, local.integrity, initiator_first)
        if integrity_choices:
            integrity_choice = integrity_choices[0]
        else:
            misses.append(TransformType.INTEG)

    key_exchange_choices: tuple[KeyExchangeId | None, ...] = (None,)
    if TransformType.KE in present:
        key_exchange_choices = tuple(_ordered(offer.key_exchange, local.key_exchange, initiator_first))
        if not key_exchange_choices:
            misses.append(TransformType.KE)
    elif local.key_exchange_required:
        misses.append(TransformType.KE)

    esn_choice: EsnId | None = None
    if TransformType.ESN in present:
        esn_choices = _ordered(offer.esn, local.esn, initiator_first)
        if esn_choices:
            esn_choice = esn_choices[0]
        else:
            misses.append(TransformType.ESN)
    elif local.esn and EsnId.NO_ESN not in local.esn:
        misses.append(TransformType.ESN)

    # RFC 9370 §2.2.1: additional key exchanges are not implemented; an ADDKE type is
    # acceptable only when the initiator offered NONE for it, and NONE is the answer.
    additional = sorted(t for t in present if t in _ADDKE_TYPES)
    misses.extend(t for t in additional if t not in offer.addke_none)

    if misses:
        return misses
    return _Match(
        encryption_choices[0],
        prf_choice,
        integrity_choice,
        key_exchange_choices,
        esn_choice,
        tuple(additional),
    )


def _miss_reason(local: _Local, offer: _Offer, misses: Sequence[TransformType]) -> str:
    parts = []
    for transform_type in misses:
        offered = offer.offered_names(transform_type)
        if transform_type not in offer.present:
            parts.append(f"{transform_type.name} not offered but required")
        elif transform_type == TransformType.INTEG and local.aead:
            parts.append(f"INTEG {offered} offered with AEAD encryption, needs none or NONE (RFC 5282 §8)")
        elif transform_type in _ADDKE_TYPES:
            parts.append(
                f"{transform_type.name} {offered}: additional key exchanges (RFC 9370) not supported"
            )
        else:
            parts.append(f"no acceptable {transform_type.name} (offered {offered})")
    return f"{'; '.join(parts)} [closest local proposal {local.text}]"


def _select(
    locals_: Sequence[_Local],
    offered: SaPayload,
    rules: _Rules,
    *,
    prefer_initiator_order: bool,
    ke_hint: KeyExchangeId | None,
) -> ChosenProposal | NoProposalChosen:
    offers: list[_Offer | ProposalRejection] = []
    for proposal in offered.proposals:
        rejection = _structural_rejection(rules, proposal)
        offers.append(rejection if rejection is not None else _offer(proposal))
    candidates = [offer for offer in offers if isinstance(offer, _Offer)]
    if prefer_initiator_order:
        pairs = [(local, offer) for offer in candidates for local in locals_]
    else:
        pairs = [(local, offer) for local in locals_ for offer in candidates]
    for local, offer in pairs:
        match = _match(local, offer, prefer_initiator_order)
        if isinstance(match, _Match):
            group = (
                ke_hint if ke_hint is not None and ke_hint in match.key_exchange else match.key_exchange[0]
            )
            proposal = offer.proposal
            return ChosenProposal(
                proposal.number,
                proposal.protocol_id,
                proposal.spi,
                match.encryption,
                match.prf,
                match.integrity,
                group,
                match.esn,
                match.additional_ke,
            )
    return NoProposalChosen(tuple(_rejection(locals_, offer) for offer in offers))


def _rejection(locals_: Sequence[_Local], offer: _Offer | ProposalRejection) -> ProposalRejection:
    if isinstance(offer, ProposalRejection):
        return offer
    proposal = offer.proposal
    if not locals_:
        return ProposalRejection(proposal.number, proposal.protocol_id, (), "no local proposals configured")
    outcomes = []
    for index, local in enumerate(locals_):
        misses = _match(local, offer, False)
        assert not isinstance(misses, _Match)  # every pair failed, or we would not be here
        outcomes.append((len(misses), index, local, misses))
    _count, _index, local, misses = min(outcomes, key=lambda outcome: outcome[:2])
    return ProposalRejection(
        proposal.number, proposal.protocol_id, tuple(misses), _miss_reason(local, offer, misses)
    )


# ---------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------


def select_ike_proposal(
    policy: Sequence[IkeProposal],
    offered: SaPayload,
    *,
    prefer_initiator_order: bool,
    ke_hint: KeyExchangeId | None = None,
    spi_size: int = 0,
) -> ChosenProposal | NoProposalChosen:
    """Choose the IKE SA suite from SAi1 (or from an IKE SA rekey's SA payload).

    ``spi_size`` is 0 in IKE_SA_INIT and 8 when rekeying the IKE SA in
    CREATE_CHILD_SA (RFC 7296 §3.3.1).  A key exchange method is always
    chosen (NONE is never acceptable for IKE).  ``ke_hint`` is the group of
    the request's KE payload; see the module docstring for its exact effect.
    """
    if spi_size not in (0, 8):
        raise LocalError(f"IKE SPI size is 0 or 8, not {spi_size}")
    locals_ = [_local(p, require_key_exchange=True) for p in policy]
    return _select(
        locals_, offered, _ike_rules(spi_size), prefer_initiator_order=prefer_initiator_order, ke_hint=ke_hint
    )


def select_esp_proposal(
    policy: Sequence[EspProposal],
    offered: SaPayload,
    *,
    prefer_initiator_order: bool,
    require_key_exchange: bool = False,
    ke_hint: KeyExchangeId | None = None,
    pfs_groups: Sequence[KeyExchangeId] | None = None,
) -> ChosenProposal | NoProposalChosen:
    """Choose the Child SA suite from an SA payload of ESP proposals (SPI size 4).

    Key exchange: with ``require_key_exchange`` False (IKE_AUTH) a proposal
    without KE, or with KE NONE, is acceptable; with it True one of the local
    proposal's groups must be offered.  In CREATE_CHILD_SA pass
    ``pfs_groups`` instead (RFC 7296 §1.3.1, §1.3.3; swanctl.conf's
    semantics): a local proposal that lists key exchange methods then requires
    one of them (PFS by policy), and one that lists none takes any of
    ``pfs_groups`` or none, at the initiator's choice.  Pass the KEi group as
    ``ke_hint`` in CREATE_CHILD_SA, or ``KeyExchangeId.NONE`` when the request
    carries no KEi, so that the choice follows what the initiator actually
    sent where the proposal allows it.  In IKE_AUTH an SA payload carries no
    KE transform other than NONE (RFC 7296 §1.2), and a proposal that
    requires a group there is refused.

    ESN: RFC 7296 §3.3.3 makes the ESN transform mandatory for ESP.  A
    proposal without it is nevertheless accepted, as "no ESN", when the local
    proposal accepts NO_ESN; the chosen ``esn`` is then ``None`` and the
    response carries no ESN transform either (§2.7: one transform per type
    *offered*).  AH proposals are rejected.
    """
    if pfs_groups is None:
        locals_ = [_local(p, require_key_exchange=require_key_exchange) for p in policy]
    else:
        locals_ = [
            _local(p, require_key_exchange=True)
            if p.key_exchange
            else attrs.evolve(
                _local(p, require_key_exchange=False), key_exchange=(*pfs_groups, KeyExchangeId.NONE)
            )
            for p in policy
        ]
    return _select(
        locals_, offered, _ESP_RULES, prefer_initiator_order=prefer_initiator_order, ke_hint=ke_hint
    )


def offer(proposals: Sequence[IkeProposal | EspProposal], spi: bytes = b"") -> SaPayload:
    """The SA payload offering our proposals, numbered from 1 (RFC 7296 §3.3).

    IKE proposals (IKE_SA_INIT) carry no SPI; ESP proposals carry our inbound
    SPI (RFC 7296 §3.3.1).  Transforms go in RFC 7296 §3.3.2's type order.
    """
    offered = []
    for number, proposal in enumerate(proposals, start=1):
        transforms = [
            Transform(
                TransformType.ENCR,
                encr,
                (TransformAttribute.key_length(bits),) if bits is not None else (),
            )
            for encr, bits in proposal.encryption
        ]
        if isinstance(proposal, IkeProposal):
            transforms += [Transform(TransformType.PRF, p) for p in proposal.prf]
        transforms += [Transform(TransformType.INTEG, i) for i in proposal.integrity]
        transforms += [Transform(TransformType.KE, k) for k in proposal.key_exchange]
        if isinstance(proposal, EspProposal):
            transforms += [Transform(TransformType.ESN, e) for e in proposal.esn]
        protocol = ProtocolId.IKE if isinstance(proposal, IkeProposal) else ProtocolId.ESP
        offered.append(Proposal(number, protocol, tuple(transforms), spi=spi))
    return SaPayload(tuple(offered))
