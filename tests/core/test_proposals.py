"""Tests of responder.core.proposals: RFC 7296 §2.7 / §3.3.6 selection, RFC 5282 §8 AEAD rules."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from responder.core.config import DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS, EspProposal, IkeProposal
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
from responder.core.errors import ConfigError, LocalError
from responder.core.payloads import Proposal, SaPayload, Transform, TransformAttribute
from responder.core.proposals import (
    ChosenProposal,
    NoProposalChosen,
    ProposalRejection,
    select_esp_proposal,
    select_ike_proposal,
)

# --- building offers ---------------------------------------------------------------------------


def encr(transform_id: int, bits: int | None = None, *extra: TransformAttribute) -> Transform:
    attributes = (() if bits is None else (TransformAttribute.key_length(bits),)) + extra
    return Transform(TransformType.ENCR, transform_id, attributes)


def prf(transform_id: int) -> Transform:
    return Transform(TransformType.PRF, transform_id)


def integ(transform_id: int) -> Transform:
    return Transform(TransformType.INTEG, transform_id)


def ke(transform_id: int) -> Transform:
    return Transform(TransformType.KE, transform_id)


def esn(transform_id: int) -> Transform:
    return Transform(TransformType.ESN, transform_id)


GCM256 = encr(EncrId.AES_GCM_16, 256)
GCM128 = encr(EncrId.AES_GCM_16, 128)
CBC256 = encr(EncrId.AES_CBC, 256)
CBC128 = encr(EncrId.AES_CBC, 128)
CHACHA = encr(EncrId.CHACHA20_POLY1305)
SHA256 = prf(PrfId.HMAC_SHA2_256)
SHA384 = prf(PrfId.HMAC_SHA2_384)
HMAC256 = integ(IntegId.HMAC_SHA2_256_128)
HMAC1 = integ(IntegId.HMAC_SHA1_96)
X25519 = ke(KeyExchangeId.CURVE25519)
ECP256 = ke(KeyExchangeId.ECP_256)
MODP2048 = ke(KeyExchangeId.MODP_2048)
ESP_SPI = bytes.fromhex("c0ffee01")


def ike_sa(*proposals: tuple[Transform, ...], spi: bytes = b"") -> SaPayload:
    return SaPayload(tuple(Proposal(n, ProtocolId.IKE, t, spi) for n, t in enumerate(proposals, start=1)))


def esp_sa(
    *proposals: tuple[Transform, ...], spi: bytes = ESP_SPI, protocol: ProtocolId = ProtocolId.ESP
) -> SaPayload:
    return SaPayload(tuple(Proposal(n, protocol, t, spi) for n, t in enumerate(proposals, start=1)))


AEAD_POLICY = IkeProposal.parse("aes256gcm16-aes128gcm16-prfsha256-prfsha384-x25519-ecp256")
CBC_POLICY = IkeProposal.parse("aes256-aes128-sha256-sha1-ecp256-modp2048")


def choose_ike(
    offered: SaPayload,
    policy: tuple[IkeProposal, ...] = (AEAD_POLICY, CBC_POLICY),
    *,
    initiator: bool = False,
    ke_hint: KeyExchangeId | None = None,
    spi_size: int = 0,
) -> ChosenProposal:
    chosen = select_ike_proposal(
        policy, offered, prefer_initiator_order=initiator, ke_hint=ke_hint, spi_size=spi_size
    )
    assert isinstance(chosen, ChosenProposal), str(chosen)
    return chosen


def reject_ike(
    offered: SaPayload, policy: tuple[IkeProposal, ...] = (AEAD_POLICY, CBC_POLICY), **kw: int
) -> NoProposalChosen:
    result = select_ike_proposal(policy, offered, prefer_initiator_order=False, **kw)  # type: ignore[arg-type]
    assert isinstance(result, NoProposalChosen), str(result)
    assert len(result.rejections) == len(offered.proposals)
    return result


# --- preference --------------------------------------------------------------------------------


def test_responder_order_picks_our_first_proposal_and_our_transform_order() -> None:
    offered = ike_sa(
        (CBC128, CBC256, HMAC1, HMAC256, SHA256, MODP2048, ECP256), (GCM128, GCM256, SHA384, SHA256, ECP256)
    )
    chosen = choose_ike(offered)
    assert chosen.number == 2
    assert chosen.encryption == (EncrId.AES_GCM_16, 256)
    assert chosen.prf is PrfId.HMAC_SHA2_256
    assert chosen.integrity is None
    assert chosen.key_exchange is KeyExchangeId.ECP_256
    assert chosen.esn is None and chosen.spi == b""


def test_initiator_order_picks_their_first_proposal_and_their_transform_order() -> None:
    offered = ike_sa(
        (CBC128, CBC256, HMAC1, HMAC256, SHA256, MODP2048, ECP256), (GCM128, GCM256, SHA384, SHA256, ECP256)
    )
    chosen = choose_ike(offered, initiator=True)
    assert chosen.number == 1
    assert chosen.encryption == (EncrId.AES_CBC, 128)
    assert chosen.integrity is IntegId.HMAC_SHA1_96
    assert chosen.prf is PrfId.HMAC_SHA2_256
    assert chosen.key_exchange is KeyExchangeId.MODP_2048
    chosen = choose_ike(ike_sa((GCM128, GCM256, SHA384, SHA256, ECP256, X25519)), initiator=True)
    assert (chosen.encryption, chosen.prf, chosen.key_exchange) == (
        (EncrId.AES_GCM_16, 128),
        PrfId.HMAC_SHA2_384,
        KeyExchangeId.ECP_256,
    )


def test_ke_hint_picks_the_kei_group_within_the_chosen_pair() -> None:
    offered = ike_sa((GCM256, SHA256, ECP256, X25519))
    assert choose_ike(offered).key_exchange is KeyExchangeId.CURVE25519
    assert choose_ike(offered, ke_hint=KeyExchangeId.ECP_256).key_exchange is KeyExchangeId.ECP_256
    assert choose_ike(offered, initiator=True).key_exchange is KeyExchangeId.ECP_256
    assert (
        choose_ike(offered, initiator=True, ke_hint=KeyExchangeId.CURVE25519).key_exchange
        is KeyExchangeId.CURVE25519
    )
    # A hint the pair does not allow changes nothing: the caller answers INVALID_KE_PAYLOAD.
    assert choose_ike(offered, ke_hint=KeyExchangeId.MODP_2048).key_exchange is KeyExchangeId.CURVE25519


def test_ke_hint_never_makes_another_pair_win() -> None:
    offered = ike_sa((GCM256, SHA256, X25519), (CBC256, HMAC256, SHA256, MODP2048))
    chosen = choose_ike(offered, ke_hint=KeyExchangeId.MODP_2048)
    assert chosen.number == 1 and chosen.key_exchange is KeyExchangeId.CURVE25519
    other_pair = select_ike_proposal((CBC_POLICY,), offered, prefer_initiator_order=False)
    assert not isinstance(other_pair, NoProposalChosen) and other_pair.key_exchange is KeyExchangeId.MODP_2048


# --- AEAD and integrity (RFC 5282 §8, RFC 7296 §3.3) --------------------------------------------


def test_aead_with_integ_none_echoes_none() -> None:
    chosen = choose_ike(ike_sa((GCM256, SHA256, integ(IntegId.NONE), X25519)))
    assert chosen.integrity is IntegId.NONE
    assert chosen.integrity_transform() is None
    assert integ(IntegId.NONE) in chosen.transforms()


def test_aead_without_integ_has_no_integ_transform() -> None:
    chosen = choose_ike(ike_sa((GCM256, SHA256, X25519)))
    assert chosen.integrity is None and chosen.is_aead
    assert [t.transform_type for t in chosen.transforms()] == [
        TransformType.ENCR,
        TransformType.PRF,
        TransformType.KE,
    ]


def test_aead_with_real_integrity_is_rejected() -> None:
    result = reject_ike(ike_sa((GCM256, SHA256, HMAC256, X25519)), (AEAD_POLICY,))
    (rejection,) = result.rejections
    assert rejection.unmatched == (TransformType.INTEG,)
    assert "RFC 5282 §8" in rejection.reason


def test_mixed_offer_takes_the_consistent_combination() -> None:
    # An initiator that (wrongly) mixes GCM and CBC with an INTEG: only CBC + INTEG is consistent.
    chosen = choose_ike(ike_sa((GCM256, CBC256, HMAC256, SHA256, ECP256)))
    assert chosen.encryption == (EncrId.AES_CBC, 256)
    assert chosen.integrity is IntegId.HMAC_SHA2_256_128
    # With INTEG NONE offered too, the AEAD policy (ours first) wins and answers NONE.
    chosen = choose_ike(ike_sa((GCM256, CBC256, HMAC256, integ(IntegId.NONE), SHA256, ECP256)))
    assert chosen.encryption == (EncrId.AES_GCM_16, 256)
    assert chosen.integrity is IntegId.NONE


def test_non_aead_needs_an_integrity_algorithm() -> None:
    (rejection,) = reject_ike(ike_sa((CBC256, SHA256, ECP256)), (CBC_POLICY,)).rejections
    assert rejection.unmatched == (TransformType.INTEG,)
    assert "INTEG not offered but required" in rejection.reason
    (rejection,) = reject_ike(ike_sa((CBC256, integ(IntegId.NONE), SHA256, ECP256)), (CBC_POLICY,)).rejections
    assert rejection.unmatched == (TransformType.INTEG,)


# --- unknown types, unknown IDs, attributes (RFC 7296 §3.3.6) -----------------------------------


def test_unknown_transform_type_makes_only_that_proposal_unacceptable() -> None:
    odd = Transform(TransformType(200), 1)
    offered = ike_sa((GCM256, SHA256, X25519, odd), (GCM128, SHA256, X25519))
    assert choose_ike(offered).number == 2
    (rejection,) = reject_ike(ike_sa((GCM256, SHA256, X25519, odd))).rejections
    assert rejection.unmatched == (TransformType(200),)
    assert "unknown transform type 200" in rejection.reason


def test_unknown_transform_id_is_skipped() -> None:
    chosen = choose_ike(
        ike_sa((encr(EncrId(1234), 256), GCM128, prf(PrfId(999)), SHA256, ke(KeyExchangeId(777)), X25519))
    )
    assert chosen.encryption == (EncrId.AES_GCM_16, 128)
    assert chosen.prf is PrfId.HMAC_SHA2_256
    assert chosen.key_exchange is KeyExchangeId.CURVE25519


def test_transform_with_unknown_attribute_is_skipped() -> None:
    odd_attribute = TransformAttribute(TransformAttributeType(99), 1)
    offered = ike_sa((encr(EncrId.AES_GCM_16, 256, odd_attribute), GCM128, SHA256, X25519))
    assert choose_ike(offered).encryption == (EncrId.AES_GCM_16, 128)
    doubled = encr(EncrId.AES_GCM_16, 256, TransformAttribute.key_length(128))
    assert choose_ike(ike_sa((doubled, GCM128, SHA256, X25519))).encryption == (EncrId.AES_GCM_16, 128)


@pytest.mark.parametrize(
    "transforms",
    [
        (
            GCM256,
            Transform(TransformType.PRF, PrfId.HMAC_SHA2_256, (TransformAttribute.key_length(256),)),
            X25519,
        ),
        (encr(EncrId.CHACHA20_POLY1305, 256), SHA256, X25519),
        (encr(EncrId.AES_GCM_16), SHA256, X25519),
        (encr(EncrId.AES_GCM_16, 192), SHA256, X25519),
        (GCM256, SHA256, ke(KeyExchangeId.NONE)),
        (GCM256, SHA256, ke(KeyExchangeId.MODP_1024)),
    ],
    ids=[
        "key-length-on-prf",
        "key-length-on-chacha",
        "gcm-without-key-length",
        "gcm-192",
        "ke-none",
        "modp1024",
    ],
)
def test_unacceptable_single_transforms(transforms: tuple[Transform, ...]) -> None:
    (rejection,) = reject_ike(ike_sa(transforms)).rejections
    assert len(rejection.unmatched) == 1
    assert rejection.reason.startswith("no acceptable")


def test_chacha_without_key_length_is_fine() -> None:
    policy = (IkeProposal.parse("chacha20poly1305-prfsha256-x25519"),)
    assert choose_ike(ike_sa((CHACHA, SHA256, X25519)), policy).encryption == (EncrId.CHACHA20_POLY1305, None)


# --- structural rejections and reasons ---------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "spi_size", "reason", "unmatched"),
    [
        (esp_sa((GCM256, SHA256, X25519)), 0, "wrong protocol ESP, expected IKE", ()),
        (ike_sa((GCM256, SHA256, X25519), spi=bytes(range(8))), 0, "SPI size wrong: 8, expected 0", ()),
        (ike_sa((GCM256, SHA256, X25519)), 8, "SPI size wrong: 0, expected 8", ()),
        (ike_sa((GCM256, SHA256, X25519), spi=bytes(8)), 8, "SPI is zero", ()),
        (
            ike_sa((GCM256, SHA256, X25519, esn(0))),
            0,
            "transform type ESN not valid for IKE",
            (TransformType.ESN,),
        ),
        (ike_sa((GCM256, SHA256)), 0, "mandatory transform type KE missing", (TransformType.KE,)),
        (ike_sa((GCM256, X25519)), 0, "mandatory transform type PRF missing", (TransformType.PRF,)),
        (ike_sa((SHA256, X25519)), 0, "mandatory transform type ENCR missing", (TransformType.ENCR,)),
    ],
)
def test_structural_rejections(
    offered: SaPayload, spi_size: int, reason: str, unmatched: tuple[TransformType, ...]
) -> None:
    (rejection,) = reject_ike(offered, spi_size=spi_size).rejections
    assert reason in rejection.reason
    assert rejection.unmatched == unmatched


def test_rejections_are_per_proposal_and_printable() -> None:
    offered = ike_sa(
        (CBC256, HMAC256, SHA256, ke(KeyExchangeId.MODP_1024)), (encr(EncrId.DES3), HMAC1, SHA256, ECP256)
    )
    result = reject_ike(offered)
    first, second = result.rejections
    assert first == ProposalRejection(
        1,
        ProtocolId.IKE,
        (TransformType.KE,),
        "no acceptable KE (offered modp1024) "
        "[closest local proposal aes256-aes128-sha256-sha1-prfsha256-prfsha1-ecp256-modp2048]",
    )
    assert second.unmatched == (TransformType.ENCR,)
    assert "offered 3des" in second.reason
    text = str(result)
    assert text.startswith("no proposal chosen: #1 IKE: no acceptable KE")
    assert "; #2 IKE: no acceptable ENCR" in text


def test_empty_policy_rejects_everything() -> None:
    (rejection,) = reject_ike(ike_sa((GCM256, SHA256, X25519)), ()).rejections
    assert rejection.reason == "no local proposals configured"


def test_ike_rekey_keeps_the_initiator_spi() -> None:
    spi = bytes.fromhex("0102030405060708")
    chosen = choose_ike(ike_sa((GCM256, SHA256, X25519), spi=spi), spi_size=8)
    assert chosen.spi == spi
    ours = bytes.fromhex("1112131415161718")
    assert chosen.as_proposal(ours).spi == ours
    with pytest.raises(LocalError):
        select_ike_proposal(
            (AEAD_POLICY,), ike_sa((GCM256, SHA256, X25519)), prefer_initiator_order=False, spi_size=4
        )


# --- the response proposal ---------------------------------------------------------------------


def test_chosen_transforms_and_response_proposal() -> None:
    offered = ike_sa((X25519, HMAC256, SHA256, CBC256, ECP256), (GCM256, SHA256, X25519))
    chosen = choose_ike(offered, initiator=True)
    assert chosen.transforms() == (CBC256, SHA256, HMAC256, ECP256)
    proposal = chosen.as_proposal(b"")
    assert proposal == Proposal(1, ProtocolId.IKE, (CBC256, SHA256, HMAC256, ECP256), b"")
    assert chosen.encryption_transform().name == "AES_CBC-256"
    assert chosen.prf_transform().name == "HMAC_SHA2_256"
    integrity = chosen.integrity_transform()
    assert integrity is not None and integrity.icv_size == 16
    assert str(chosen) == "IKE proposal #1: aes256-sha256-prfsha256-ecp256"
    # Every chosen transform is one of the offered transforms, attributes unchanged (RFC 7296 §3.3.6).
    assert set(chosen.transforms()) <= set(offered.proposals[0].transforms)


# --- ESP ---------------------------------------------------------------------------------------

ESP_POLICY = (EspProposal.parse("aes256gcm16-aes128gcm16"), EspProposal.parse("aes256-sha256"))


def choose_esp(
    offered: SaPayload,
    policy: tuple[EspProposal, ...] = ESP_POLICY,
    *,
    initiator: bool = False,
    require: bool = False,
    ke_hint: KeyExchangeId | None = None,
) -> ChosenProposal:
    chosen = select_esp_proposal(
        policy, offered, prefer_initiator_order=initiator, require_key_exchange=require, ke_hint=ke_hint
    )
    assert isinstance(chosen, ChosenProposal), str(chosen)
    return chosen


def reject_esp(
    offered: SaPayload, policy: tuple[EspProposal, ...] = ESP_POLICY, *, require: bool = False
) -> ProposalRejection:
    result = select_esp_proposal(policy, offered, prefer_initiator_order=False, require_key_exchange=require)
    assert isinstance(result, NoProposalChosen), str(result)
    (rejection,) = result.rejections
    return rejection


def test_esp_basic_choice_keeps_initiator_spi() -> None:
    chosen = choose_esp(esp_sa((GCM128, GCM256, esn(EsnId.ESN), esn(EsnId.NO_ESN))))
    assert chosen.protocol_id is ProtocolId.ESP
    assert chosen.spi == ESP_SPI
    assert chosen.encryption == (EncrId.AES_GCM_16, 256)
    assert chosen.esn is EsnId.NO_ESN  # our default prefers 32-bit sequence numbers
    assert chosen.prf is None and chosen.key_exchange is None
    ours = bytes.fromhex("0badf00d")
    assert chosen.as_proposal(ours) == Proposal(1, ProtocolId.ESP, (GCM256, esn(EsnId.NO_ESN)), ours)
    with pytest.raises(LocalError, match="ESP proposal has no PRF"):
        chosen.prf_transform()
    assert str(chosen) == "ESP proposal #1: aes256gcm16-noesn"


def test_esp_esn_negotiation() -> None:
    both = esp_sa((GCM256, esn(EsnId.ESN), esn(EsnId.NO_ESN)))
    assert choose_esp(both, initiator=True).esn is EsnId.ESN
    assert choose_esp(esp_sa((GCM256, esn(EsnId.ESN)))).esn is EsnId.ESN
    noesn_only = (EspProposal.parse("aes256gcm16-noesn"),)
    rejection = reject_esp(esp_sa((GCM256, esn(EsnId.ESN))), noesn_only)
    assert rejection.unmatched == (TransformType.ESN,)
    assert "offered esn" in rejection.reason


def test_esp_without_esn_transform_means_no_esn() -> None:
    chosen = choose_esp(esp_sa((CBC256, HMAC256)))
    assert chosen.esn is None
    assert chosen.transforms() == (CBC256, HMAC256)
    rejection = reject_esp(esp_sa((GCM256,)), (EspProposal.parse("aes256gcm16-esn"),))
    assert rejection.unmatched == (TransformType.ESN,)
    assert "ESN not offered but required" in rejection.reason


def test_esp_rejects_ah_and_bad_spis() -> None:
    assert (
        reject_esp(esp_sa((HMAC256, esn(0)), protocol=ProtocolId.AH)).reason
        == "AH is not supported (ESP only)"
    )
    assert "SPI size wrong: 8, expected 4" in reject_esp(esp_sa((GCM256,), spi=bytes(range(8)))).reason
    assert reject_esp(esp_sa((GCM256,), spi=bytes(4))).reason == "SPI is zero"
    rejection = reject_esp(esp_sa((GCM256, SHA256)))
    assert rejection.unmatched == (TransformType.PRF,)
    assert "not valid for ESP" in rejection.reason


def test_esp_key_exchange_rules() -> None:
    no_pfs = ESP_POLICY
    pfs = (EspProposal.parse("aes256gcm16-ecp256-x25519"),)
    # Absent or NONE: fine unless a key exchange is required.
    assert choose_esp(esp_sa((GCM256,)), no_pfs).key_exchange is None
    assert choose_esp(esp_sa((GCM256, ke(KeyExchangeId.NONE))), no_pfs).key_exchange is KeyExchangeId.NONE
    assert reject_esp(esp_sa((GCM256,)), pfs, require=True).reason.startswith("KE not offered but required")
    assert reject_esp(esp_sa((GCM256, ke(KeyExchangeId.NONE))), pfs, require=True).unmatched == (
        TransformType.KE,
    )
    # A group the initiator insists on needs one in our policy.
    assert reject_esp(esp_sa((GCM256, ECP256)), no_pfs).unmatched == (TransformType.KE,)
    assert choose_esp(esp_sa((GCM256, ECP256)), pfs).key_exchange is KeyExchangeId.ECP_256
    # Optional PFS offered: our groups first, NONE last; the KEi (or its absence) decides via ke_hint.
    optional = esp_sa((GCM256, ke(KeyExchangeId.NONE), X25519, ECP256))
    assert choose_esp(optional, pfs).key_exchange is KeyExchangeId.ECP_256
    assert choose_esp(optional, pfs, initiator=True).key_exchange is KeyExchangeId.NONE
    assert choose_esp(optional, pfs, ke_hint=KeyExchangeId.NONE).key_exchange is KeyExchangeId.NONE
    assert (
        choose_esp(optional, pfs, ke_hint=KeyExchangeId.CURVE25519).key_exchange is KeyExchangeId.CURVE25519
    )
    assert (
        choose_esp(optional, pfs, require=True, ke_hint=KeyExchangeId.NONE).key_exchange
        is KeyExchangeId.ECP_256
    )


def test_additional_key_exchanges_only_as_none() -> None:
    addke1 = Transform(TransformType.ADDKE1, KeyExchangeId.ML_KEM_768)
    addke1_none = Transform(TransformType.ADDKE1, KeyExchangeId.NONE)
    addke3_none = Transform(TransformType.ADDKE3, KeyExchangeId.NONE)
    chosen = choose_ike(ike_sa((GCM256, SHA256, X25519, addke3_none, addke1, addke1_none)))
    assert chosen.additional_ke == (TransformType.ADDKE1, TransformType.ADDKE3)
    assert chosen.transforms()[-2:] == (addke1_none, addke3_none)
    (rejection,) = reject_ike(ike_sa((GCM256, SHA256, X25519, addke1))).rejections
    assert rejection.unmatched == (TransformType.ADDKE1,)
    assert "RFC 9370" in rejection.reason


# --- properties --------------------------------------------------------------------------------

_ENCR_POOL = [GCM256, GCM128, CBC256, CBC128, CHACHA, encr(EncrId.AES_GCM_16, 192), encr(EncrId(999), 128)]
_PRF_POOL = [SHA256, SHA384, prf(PrfId.HMAC_SHA1), prf(PrfId.AES128_XCBC)]
_INTEG_POOL = [HMAC256, HMAC1, integ(IntegId.NONE), integ(IntegId.AES_XCBC_96)]
_KE_POOL = [X25519, ECP256, MODP2048, ke(KeyExchangeId.MODP_1024), ke(KeyExchangeId.NONE)]
_ESN_POOL = [esn(EsnId.ESN), esn(EsnId.NO_ESN)]


def _some(pool: list[Transform], *, min_size: int = 0) -> st.SearchStrategy[list[Transform]]:
    return st.lists(st.sampled_from(pool), min_size=min_size, max_size=len(pool), unique=True)


_IKE_PROPOSAL = st.builds(
    lambda e, p, i, k: tuple(e + p + i + k),
    _some(_ENCR_POOL, min_size=1),
    _some(_PRF_POOL, min_size=1),
    _some(_INTEG_POOL),
    _some(_KE_POOL, min_size=1),
)
_ESP_PROPOSAL = st.builds(
    lambda e, i, k, n: tuple(e + i + k + n),
    _some(_ENCR_POOL, min_size=1),
    _some(_INTEG_POOL),
    _some(_KE_POOL),
    _some(_ESN_POOL),
)


def _check_response(offered: SaPayload, chosen: ChosenProposal) -> None:
    """RFC 7296 §2.7: one transform of each offered type, each one of the offered transforms."""
    proposal = next(p for p in offered.proposals if p.number == chosen.number)
    response = chosen.transforms()
    assert [t.transform_type for t in response] == sorted({t.transform_type for t in proposal.transforms})
    assert set(response) <= set(proposal.transforms)
    assert chosen.spi == proposal.spi


@given(
    st.lists(_IKE_PROPOSAL, min_size=1, max_size=4), st.booleans(), st.sampled_from([None, *KeyExchangeId])
)
def test_ike_selection_properties(
    proposals: list[tuple[Transform, ...]], initiator: bool, hint: KeyExchangeId | None
) -> None:
    offered = ike_sa(*proposals)
    result = select_ike_proposal(
        DEFAULT_IKE_PROPOSALS, offered, prefer_initiator_order=initiator, ke_hint=hint
    )
    if isinstance(result, NoProposalChosen):
        assert [r.number for r in result.rejections] == [p.number for p in offered.proposals]
        assert all(r.reason for r in result.rejections)
        return
    _check_response(offered, result)
    assert result.key_exchange in {k for p in DEFAULT_IKE_PROPOSALS for k in p.key_exchange}
    suite = (result.encryption_transform(), result.prf_transform(), result.integrity_transform())
    assert suite[0].is_aead == (suite[2] is None)
    # The hint changes the key exchange method only, and only to itself.
    unhinted = select_ike_proposal(DEFAULT_IKE_PROPOSALS, offered, prefer_initiator_order=initiator)
    assert isinstance(unhinted, ChosenProposal)
    assert attrs.evolve(unhinted, key_exchange=result.key_exchange) == result
    assert result.key_exchange in (unhinted.key_exchange, hint)


@given(st.lists(_ESP_PROPOSAL, min_size=1, max_size=4), st.booleans(), st.booleans())
def test_esp_selection_properties(
    proposals: list[tuple[Transform, ...]], initiator: bool, require: bool
) -> None:
    offered = esp_sa(*proposals)
    result = select_esp_proposal(
        DEFAULT_ESP_PROPOSALS, offered, prefer_initiator_order=initiator, require_key_exchange=require
    )
    if isinstance(result, NoProposalChosen):
        assert len(result.rejections) == len(proposals)
        return
    _check_response(offered, result)
    assert not require  # the default ESP proposals have no PFS group
    assert result.key_exchange in (None, KeyExchangeId.NONE)
    assert result.encryption_transform().is_aead == (result.integrity_transform() is None)


# --- ENCR_NULL (RFC 8221 §5: ESP only, with integrity, never by default) -----------------------

NULL = encr(EncrId.NULL)


def test_encr_null_is_chosen_only_when_configured() -> None:
    offered = esp_sa((NULL, HMAC256, esn(EsnId.NO_ESN)))
    refused = reject_esp(offered, DEFAULT_ESP_PROPOSALS)  # the defaults never accept it
    assert "ENCR" in str(refused)
    chosen = choose_esp(offered, (EspProposal.parse("null-sha256"),))
    assert chosen.encryption == (EncrId.NULL, None) and chosen.integrity is IntegId.HMAC_SHA2_256_128
    assert not chosen.is_aead and chosen.encryption_transform().key_size == 0
    assert str(chosen) == "ESP proposal #1: null-sha256-noesn"
    assert all(EncrId.NULL not in [e for e, _ in p.encryption] for p in DEFAULT_ESP_PROPOSALS)


def test_encr_null_needs_integrity_and_is_never_for_ike() -> None:
    """RFC 4303 §5 / RFC 8221 §5: NULL without integrity is refused; IKE never takes it, as a
    policy (configuration error) nor from a peer's offer (no proposal chosen)."""
    with pytest.raises(ConfigError, match="needs an integrity algorithm"):
        EspProposal.parse("null")
    with pytest.raises(ConfigError, match="ENCR_NULL is for ESP only"):
        IkeProposal.parse("null-sha256-x25519")
    reject_ike(ike_sa((NULL, SHA256, HMAC256, X25519)))
    assert reject_esp(esp_sa((NULL,)), (EspProposal.parse("null-sha256"),))  # NULL offered alone
