"""The responder's core against known answers harvested from strongSwan (tests/vectors/strongswan/).

Every captured message decodes and re-encodes to the same octets; SKEYSEED and
SK_* (initial and rekeyed IKE SA) and the Child SA keys come out as charon
logged them; every SK payload unprotects with the logged keys to the payloads
the harvest found.  IKE_AUTH carries the harvested IDs (type and data), AUTH
(method and data), the Child SA's ESP proposal (the SPI each end chose, the
suite's transforms) and the configured TSi/TSr; the CREATE_CHILD_SA exchanges
carry the harvested nonces and KE values, the Child SA rekey an ESP proposal,
the TS and REKEY_SA naming the old Child SA, the IKE SA rekey an IKE proposal
with the new SPIs and no REKEY_SA.  responder.core.auth reproduces both PSK
AUTH values.  The tshark side of the comparison is
tests/interop/test_harness_tshark.py.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from responder.core import keys, transforms
from responder.core.enums import (
    AuthMethod,
    EncrId,
    ExchangeType,
    IdType,
    IntegId,
    IpProtocol,
    NotifyType,
    PrfId,
    ProtocolId,
    TransformType,
)
from responder.core.messages import decode_message, encode_message
from responder.core.payloads import (
    AuthPayload,
    EncryptedPayload,
    IdiPayload,
    IdrPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    TrafficSelector,
    Transform,
    TransformAttribute,
    TsiPayload,
    TsrPayload,
)
from responder.core.sk_payload import SkProtection, unprotect

VECTORS = Path(__file__).with_name("strongswan")
NAMES = sorted(p.stem for p in VECTORS.glob("*.json"))


def _load(name: str) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text())
    return vector


def _transforms(
    vector: dict[str, Any],
) -> tuple[transforms.Prf, transforms.Encryption, transforms.Integrity | None]:
    t = vector["ike_transforms"]
    integ = transforms.integrity(IntegId(t["integ"])) if "integ" in t else None
    return (
        transforms.prf(PrfId(t["prf"])),
        transforms.encryption(EncrId(t["encr"]), t["encr_key_bits"]),
        integ,
    )


def _esp_transforms(vector: dict[str, Any]) -> tuple[transforms.Encryption, transforms.Integrity | None]:
    t = vector["esp_transforms"]
    integ = transforms.integrity(IntegId(t["integ"])) if "integ" in t else None
    return transforms.encryption(EncrId(t["encr"]), t["encr_key_bits"]), integ


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def test_vectors_present() -> None:
    assert NAMES == ["modp2048-aes256cbc-sha256", "x25519-aes256gcm16-prfsha256"]


@pytest.mark.parametrize("name", NAMES)
def test_every_message_round_trips(name: str) -> None:
    vector = _load(name)
    for m in vector["messages"]:
        raw = _h(m["raw"])
        message = decode_message(raw)
        assert encode_message(message) == raw, f"frame {m['frame']}"
        header = message.header
        assert (header.spi_i.hex(), header.spi_r.hex()) == (m["spi_i"], m["spi_r"])
        assert (int(header.exchange_type), header.message_id) == (m["exchange"], m["message_id"])
        assert (header.is_response, header.is_initiator) == (
            m["is_response"],
            m["sender_is_ike_sa_initiator"],
        )
        assert [int(p.payload_type) for p in message.payloads] == [p["type"] for p in m["payloads"]]


@pytest.mark.parametrize("name", NAMES)
def test_ike_sa_keys(name: str) -> None:
    vector = _load(name)
    prf, encr, integ = _transforms(vector)
    first, rekeyed = vector["ike_sas"]
    seed = keys.skeyseed(prf, _h(first["nonce_i"]), _h(first["nonce_r"]), _h(first["shared_secret"]))
    assert seed == _h(first["skeyseed"])
    new_seed = keys.rekey_skeyseed(
        prf, _h(first["sk_d"]), _h(rekeyed["shared_secret"]), _h(rekeyed["nonce_i"]), _h(rekeyed["nonce_r"])
    )
    assert new_seed == _h(rekeyed["skeyseed"])
    for sa in (first, rekeyed):
        derived = keys.derive_ike_sa_keys(
            prf,
            encr,
            integ,
            _h(sa["skeyseed"]),
            _h(sa["nonce_i"]),
            _h(sa["nonce_r"]),
            _h(sa["spi_i"]),
            _h(sa["spi_r"]),
        )
        for field in ("sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr"):
            assert getattr(derived, field) == _h(sa[field]), field


@pytest.mark.parametrize("name", NAMES)
def test_child_sa_keys(name: str) -> None:
    vector = _load(name)
    prf, _, _ = _transforms(vector)
    encr, integ = _esp_transforms(vector)
    frames = {m["frame"]: m for m in vector["messages"]}
    for child in vector["child_sas"]:
        request_frame = int(child["created_by"].split("(frames ")[1].split(",")[0])
        parent = vector["ike_sas"][frames[request_frame]["ike_sa"]]
        shared = _h(child["shared_secret"]) if child["shared_secret"] else None
        derived = keys.derive_child_sa_keys(
            prf, _h(parent["sk_d"]), encr, integ, _h(child["nonce_i"]), _h(child["nonce_r"]), shared
        )
        assert derived.encryption_i == _h(child["encr_i"])
        assert derived.encryption_r == _h(child["encr_r"])
        assert derived.integrity_i == _h(child["integ_i"])
        assert derived.integrity_r == _h(child["integ_r"])


# --- the contents of the protected messages -----------------------------------------------------
#
# Expected values come from the harvest's own records (the JSON: suite transforms, IDs, AUTH
# values, SPIs and addresses, written by harvest_strongswan.py's independent parser) or from the
# configuration harvest_strongswan.py gave charon, never from responder.core's decoder.

P = TypeVar("P")

# Transform types in the order of RFC 7296 §3.3.2, keyed as in the JSON's *_transforms.
_TRANSFORM_KEYS = (
    ("encr", TransformType.ENCR),
    ("prf", TransformType.PRF),
    ("integ", TransformType.INTEG),
    ("ke", TransformType.KE),
    ("esn", TransformType.ESN),
)


def _all(payloads: Sequence[Payload], cls: type[P]) -> list[P]:
    return [p for p in payloads if isinstance(p, cls)]


def _one(payloads: Sequence[Payload], cls: type[P]) -> P:
    found = _all(payloads, cls)
    assert len(found) == 1, f"{len(found)} {cls.__name__}"
    return found[0]


def _pairs(vector: dict[str, Any], exchange: ExchangeType) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(request, response) for every exchange of that type, in capture order."""
    messages = [m for m in vector["messages"] if m["exchange"] == exchange]
    pairs = []
    for request in (m for m in messages if not m["is_response"]):
        (response,) = (
            m
            for m in messages
            if m["is_response"]
            and (m["ike_sa"], m["message_id"]) == (request["ike_sa"], request["message_id"])
        )
        pairs.append((request, response))
    return pairs


def _frames(created_by: str) -> tuple[int, int] | None:
    match = re.search(r"\(frames (\d+), (\d+)\)$", created_by)
    return (int(match[1]), int(match[2])) if match else None


def _made_by(vector: dict[str, Any], request: dict[str, Any], response: dict[str, Any]) -> tuple[str, int]:
    """("ike_sas" | "child_sas", index) of the one SA the harvest says this exchange created."""
    frames = (request["frame"], response["frame"])
    (made,) = (
        (kind, index)
        for kind in ("ike_sas", "child_sas")
        for index, sa in enumerate(vector[kind])
        if _frames(sa["created_by"]) == frames
    )
    return made


def _unprotected(vector: dict[str, Any], m: dict[str, Any]) -> tuple[Payload, ...]:
    _, encr, integ = _transforms(vector)
    sa = vector["ike_sas"][m["ike_sa"]]
    side = "i" if m["sender_is_ike_sa_initiator"] else "r"
    protection = SkProtection.create(encr, integ, _h(sa[f"sk_e{side}"]), _h(sa[f"sk_a{side}"]))
    return unprotect(protection, _h(m["raw"]))[0].payloads


def _expected_transforms(ids: dict[str, int], *, ke: bool = True) -> tuple[Transform, ...]:
    """The suite's transforms (JSON ``ike_transforms``/``esp_transforms``), in transform-type order."""
    out = []
    for key, transform_type in _TRANSFORM_KEYS:
        if key in ids and (ke or key != "ke"):
            attributes = (TransformAttribute.key_length(ids["encr_key_bits"]),) if key == "encr" else ()
            out.append(Transform(transform_type, ids[key], attributes))
    return tuple(out)


def _proposal(payloads: Sequence[Payload]) -> Proposal:
    """The single proposal: the harvest configures one IKE and one ESP proposal (Suite.*_proposal)."""
    (proposal,) = _one(payloads, SaPayload).proposals
    assert proposal.number == 1
    return proposal


def _sorted_transforms(proposal: Proposal) -> tuple[Transform, ...]:
    return tuple(sorted(proposal.transforms, key=lambda t: int(t.transform_type)))


def _selector(address: str) -> TrafficSelector:
    """harvest_strongswan._conn configures ``local_ts``/``remote_ts`` as ADDRESS/32 with no protocol
    or port, which strongSwan sends as protocol 0 (any), ports 0-65535, ADDRESS-ADDRESS."""
    network = ipaddress.ip_network(f"{address}/32")
    return TrafficSelector(IpProtocol.ANY, 0, 0xFFFF, network.network_address, network.broadcast_address)


def _check_traffic_selectors(vector: dict[str, Any], payloads: Sequence[Payload]) -> None:
    addresses = vector["addresses"]
    assert _one(payloads, TsiPayload).selectors == (_selector(addresses["inner_initiator"]),)
    assert _one(payloads, TsrPayload).selectors == (_selector(addresses["inner_responder"]),)


def _rekey_sa(payloads: Sequence[Payload]) -> list[NotifyPayload]:
    return [n for n in _all(payloads, NotifyPayload) if n.notify_type == NotifyType.REKEY_SA]


@pytest.mark.parametrize("name", NAMES)
def test_sk_payloads_unprotect_to_the_harvested_payloads(name: str) -> None:
    vector = _load(name)
    checked = 0
    for m in vector["messages"]:
        if m["exchange"] == ExchangeType.IKE_SA_INIT:
            continue
        assert isinstance(decode_message(_h(m["raw"])).payloads[-1], EncryptedPayload)
        inner = _unprotected(vector, m)
        assert [int(p.payload_type) for p in inner] == [p["type"] for p in m["decrypted"]["payloads"]], (
            f"frame {m['frame']}"
        )
        checked += 1
    assert checked == len(vector["messages"]) - 2


@pytest.mark.parametrize("name", NAMES)
def test_ike_auth_contents(name: str) -> None:
    """IDi/IDr (type, data), AUTH (method, data), the Child SA's ESP proposal, TSi/TSr."""
    vector = _load(name)
    ((request, response),) = _pairs(vector, ExchangeType.IKE_AUTH)
    kind, index = _made_by(vector, request, response)
    assert (kind, index) == ("child_sas", 0)
    child = vector["child_sas"][index]
    id_i, id_r, auth = vector["id_i"], vector["id_r"], vector["auth"]
    for m, who, side in ((request, "initiator", "i"), (response, "responder", "r")):
        inner = _unprotected(vector, m)
        ids = _all(inner, IdiPayload) + _all(inner, IdrPayload)
        expected_ids: list[IdiPayload | IdrPayload] = [IdrPayload(id_r["type"], _h(id_r["data"]))]
        if who == "initiator":
            expected_ids.insert(0, IdiPayload(id_i["type"], _h(id_i["data"])))
        assert ids == expected_ids
        assert all(p.id_type == IdType.ID_FQDN for p in ids)  # harvest_strongswan.ID_FQDN
        auth_payload = _one(inner, AuthPayload)
        assert auth_payload.method == auth[who]["auth_method"] == AuthMethod.SHARED_KEY_MIC  # PSK config
        assert auth_payload.data == _h(auth[who]["auth"])
        proposal = _proposal(inner)
        assert proposal.protocol_id == ProtocolId.ESP
        assert len(proposal.spi) == 4 and proposal.spi == _h(child[f"spi_{side}"])
        # No key exchange in IKE_AUTH (RFC 7296 §1.2): strongSwan leaves the KE transform out.
        assert _sorted_transforms(proposal) == _expected_transforms(vector["esp_transforms"], ke=False)
        _check_traffic_selectors(vector, inner)
        assert _rekey_sa(inner) == []
        assert _all(inner, KePayload) == [] and _all(inner, NoncePayload) == []


@pytest.mark.parametrize("name", NAMES)
def test_create_child_sa_contents(name: str) -> None:
    """Child SA rekey (ESP, PFS, REKEY_SA) and IKE SA rekey (IKE, new 8-octet SPIs, no REKEY_SA)."""
    vector = _load(name)
    frames = {m["frame"]: m for m in vector["messages"]}
    made = []
    for request, response in _pairs(vector, ExchangeType.CREATE_CHILD_SA):
        kind, index = _made_by(vector, request, response)
        made.append(kind)
        new = vector[kind][index]
        ids = vector["ike_transforms"] if kind == "ike_sas" else vector["esp_transforms"]
        for m, side in ((request, "i"), (response, "r")):
            inner = _unprotected(vector, m)
            assert _one(inner, NoncePayload).data == _h(new[f"nonce_{side}"])
            ke = _one(inner, KePayload)
            assert ke.data == _h(new[f"ke_{side}"])
            assert ke.group == new["ke_method"] == ids["ke"]
            proposal = _proposal(inner)
            assert proposal.spi == _h(new[f"spi_{side}"])
            assert _sorted_transforms(proposal) == _expected_transforms(ids)
            rekey_sa = _rekey_sa(inner)
            if kind == "ike_sas":  # RFC 7296 §1.3.2: IKE proposal with the new SPIs, no TS, no REKEY_SA
                assert proposal.protocol_id == ProtocolId.IKE and len(proposal.spi) == 8
                assert _all(inner, TsiPayload) == [] and _all(inner, TsrPayload) == []
                assert rekey_sa == []
                continue
            # RFC 7296 §1.3.3: ESP proposal, TS, and in the request REKEY_SA naming the old Child SA
            # by the SPI its sender expects in inbound packets.
            assert proposal.protocol_id == ProtocolId.ESP and len(proposal.spi) == 4
            _check_traffic_selectors(vector, inner)
            if m is response:
                assert rekey_sa == []
                continue
            match = re.match(r"CREATE_CHILD_SA rekeying Child SA (\d+) ", new["created_by"])
            assert match is not None
            old = vector["child_sas"][int(match[1])]
            old_frames = _frames(old["created_by"])
            assert old_frames is not None
            same_sender = frames[old_frames[0]]["direction"] == m["direction"]
            assert len(rekey_sa) == 1, f"frame {m['frame']}: {len(rekey_sa)} REKEY_SA"
            notify = rekey_sa[0]
            assert notify.protocol_id == ProtocolId.ESP
            assert notify.spi == _h(old["spi_i" if same_sender else "spi_r"])
            assert notify.data == b""
    assert made == ["child_sas", "ike_sas"]  # the scenario: Child SA rekey, then IKE SA rekey


@pytest.mark.parametrize("name", NAMES)
def test_psk_auth_values_are_reproduced(name: str) -> None:
    """responder.core.auth gives the harvested signed octets and AUTH values of both ends."""
    from responder.core.auth import psk_auth, signed_octets

    vector = _load(name)
    prf, _, _ = _transforms(vector)
    first = vector["ike_sas"][0]
    psk = _h(vector["psk"])
    assert psk == vector["psk_text"].encode()
    ((init_request, init_response),) = _pairs(vector, ExchangeType.IKE_SA_INIT)
    ((auth_request, auth_response),) = _pairs(vector, ExchangeType.IKE_AUTH)
    cases: tuple[tuple[str, dict[str, Any], dict[str, Any], str, str, type[IdiPayload | IdrPayload]], ...] = (
        ("initiator", init_request, auth_request, "nonce_r", "sk_pi", IdiPayload),
        ("responder", init_response, auth_response, "nonce_i", "sk_pr", IdrPayload),
    )
    for who, first_message, auth_message, peer_nonce, sk_p, id_class in cases:
        inner = _unprotected(vector, auth_message)
        id_payload = _one(inner, id_class)
        assert bytes([id_payload.id_type, 0, 0, 0]) + id_payload.data == _h(
            vector["auth"][who]["id_payload_data"]
        )
        octets = signed_octets(
            prf, _h(first_message["raw"]), _h(first[peer_nonce]), _h(first[sk_p]), id_payload
        )
        assert octets == _h(vector["auth"][who]["octets"]), who
        value = psk_auth(prf, psk, octets)
        assert value == _h(vector["auth"][who]["auth"]), who
        assert value == _one(inner, AuthPayload).data, who
