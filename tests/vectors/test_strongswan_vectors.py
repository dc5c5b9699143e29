"""The responder's core against known answers harvested from strongSwan (tests/vectors/strongswan/).

Every captured message decodes and re-encodes to the same octets; SKEYSEED and
SK_* (initial and rekeyed IKE SA) and the Child SA keys come out as charon
logged them; every SK payload unprotects with the logged keys to the payloads
the harvest found, including IDs, AUTH and the CREATE_CHILD_SA nonces.  The
tshark side of the comparison is tests/interop/test_harness_tshark.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from responder.core import keys, transforms
from responder.core.enums import EncrId, IntegId, PrfId
from responder.core.messages import (
    AuthPayload,
    EncryptedPayload,
    IdiPayload,
    IdrPayload,
    KePayload,
    NoncePayload,
    decode_message,
    encode_message,
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


@pytest.mark.parametrize("name", NAMES)
def test_sk_payloads_unprotect_to_the_harvested_payloads(name: str) -> None:
    vector = _load(name)
    _, encr, integ = _transforms(vector)
    checked = 0
    for m in vector["messages"]:
        if m["exchange"] == 34:
            continue
        sa = vector["ike_sas"][m["ike_sa"]]
        side = "i" if m["sender_is_ike_sa_initiator"] else "r"
        protection = SkProtection.create(encr, integ, _h(sa[f"sk_e{side}"]), _h(sa[f"sk_a{side}"]))
        raw = _h(m["raw"])
        assert isinstance(decode_message(raw).payloads[-1], EncryptedPayload)
        message = unprotect(protection, raw)
        inner = message.payloads
        assert [int(p.payload_type) for p in inner] == [p["type"] for p in m["decrypted"]["payloads"]]
        if m["exchange"] == 35:
            ids = [p for p in inner if isinstance(p, (IdiPayload, IdrPayload))]
            auth = next(p for p in inner if isinstance(p, AuthPayload))
            if m["is_response"]:
                assert [p.data for p in ids] == [_h(vector["id_r"]["data"])]
                assert auth.data == _h(vector["auth"]["responder"]["auth"])
            else:
                assert [p.data for p in ids] == [_h(vector["id_i"]["data"]), _h(vector["id_r"]["data"])]
                assert auth.data == _h(vector["auth"]["initiator"]["auth"])
        if m["exchange"] == 36:
            nonce = next(p for p in inner if isinstance(p, NoncePayload)).data
            ke = next(p for p in inner if isinstance(p, KePayload)).data
            made = [
                sa
                for sa in vector["ike_sas"] + vector["child_sas"]
                if f"frames {m['frame']}," in sa["created_by"] or f", {m['frame']})" in sa["created_by"]
            ]
            (created,) = made
            key = "r" if m["is_response"] else "i"
            assert nonce == _h(created[f"nonce_{key}"])
            assert ke == _h(created[f"ke_{key}"])
        checked += 1
    assert checked == len(vector["messages"]) - 2
