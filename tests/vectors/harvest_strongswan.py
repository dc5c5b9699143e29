#!/usr/bin/env python3
"""Harvest IKEv2 known answers from a strongSwan initiator talking to a strongSwan responder.

Usage (root, after ``bash .ci/install-interop``)::

    python tests/vectors/harvest_strongswan.py OUTDIR [--suite NAME ...] [--keep WORKDIR]

For each suite two private charon-systemd instances run in two network
namespaces at log level 4 (``ike = 4, chd = 4``), with tcpdump on the veth
between them.  The initiator establishes an IKE SA with a Child SA (PSK), pings
through the tunnel (kernel-libipsec ESP in UDP 4500), rekeys the Child SA (with
PFS), pings, rekeys the IKE SA, pings and deletes the IKE SA.  Afterwards:

* every IKE message is taken from the pcap (UDP and non-ESP marker stripped),
* the key material is taken from both charons' logs (they must agree),
* encrypted payloads and ESP packets are decrypted here, with an implementation
  independent of ``responder.core`` (``cryptography`` primitives only), which
  also recomputes SKEYSEED, SK_*, Child SA KEYMAT and both AUTH values from the
  nonces, SPIs, shared secrets and the PSK; any disagreement aborts the harvest.

Outputs per suite: ``NAME.json`` (all values as lowercase hex strings),
``NAME.pcap``, ``NAME.ikev2_decryption_table`` and ``NAME.esp_sa`` (Wireshark
key tables), and the two charon logs (``NAME.initiator.log``/``.responder.log``).
The DH private values are random on every run, so a new harvest yields new
values; tests/vectors/README.md describes the format.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.interop import charon_log
from tests.interop.lab import Lab, wait_until
from tests.interop.pcap import Packet, read_packets
from tests.interop.strongswan import StrongSwan, SwanChild, SwanConn
from tests.interop.tshark import (
    ESP_ENCRYPTION,
    ESP_INTEGRITY,
    IKE_ENCRYPTION,
    IKE_INTEGRITY,
    EspSaKeys,
    IkeSaKeys,
    start_capture,
    stop_capture,
)

INITIATOR, RESPONDER = "192.0.2.1", "192.0.2.2"
INNER_I, INNER_R = "10.250.1.1", "10.250.2.1"
PSK = "ikev2-responder known answer PSK"  # 32 octets: long enough for any PRF here
ID_I, ID_R = "initiator.lab", "responder.lab"
ID_FQDN = 2

# IANA "IKEv2 Exchange Types" and "IKEv2 Payload Types" (RFC 7296 §3.1, §3.2).
EXCHANGES = {34: "IKE_SA_INIT", 35: "IKE_AUTH", 36: "CREATE_CHILD_SA", 37: "INFORMATIONAL"}
PAYLOADS = {
    33: "SA",
    34: "KE",
    35: "IDi",
    36: "IDr",
    37: "CERT",
    38: "CERTREQ",
    39: "AUTH",
    40: "Ni/Nr",
    41: "N",
    42: "D",
    43: "V",
    44: "TSi",
    45: "TSr",
    46: "SK",
    47: "CP",
    48: "EAP",
    53: "SKF",
}
N_REKEY_SA = 16393


@dataclass(frozen=True)
class Suite:
    name: str
    ike_proposal: str  # swanctl syntax
    esp_proposal: str
    encr: str  # "aes-gcm-16" | "aes-cbc"
    encr_key_bits: int
    integ: str | None  # "hmac-sha2-256-128" | None (AEAD)
    prf: str  # "hmac-sha2-256"
    ke_method: str
    ike_transforms: dict[str, int]  # IANA transform IDs
    esp_transforms: dict[str, int]


SUITES = {
    s.name: s
    for s in (
        Suite(
            "x25519-aes256gcm16-prfsha256",
            "aes256gcm16-prfsha256-x25519",
            "aes256gcm16-x25519",
            "aes-gcm-16",
            256,
            None,
            "hmac-sha2-256",
            "Curve25519",
            {"encr": 20, "encr_key_bits": 256, "prf": 5, "ke": 31},
            {"encr": 20, "encr_key_bits": 256, "ke": 31, "esn": 0},
        ),
        Suite(
            "modp2048-aes256cbc-sha256",
            "aes256-sha256-modp2048",
            "aes256-sha256-modp2048",
            "aes-cbc",
            256,
            "hmac-sha2-256-128",
            "hmac-sha2-256",
            "MODP-2048",
            {"encr": 12, "encr_key_bits": 256, "prf": 5, "integ": 12, "ke": 14},
            {"encr": 12, "encr_key_bits": 256, "integ": 12, "ke": 14, "esn": 0},
        ),
    )
}


class HarvestError(RuntimeError):
    """The harvested data disagree with themselves or with the RFCs."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise HarvestError(message)


# --- independent crypto (RFC 7296 §2.13-2.17, RFC 5282, RFC 4106, RFC 3602, RFC 4868) -------------


def prf(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def prf_plus(key: bytes, seed: bytes, length: int) -> bytes:
    out, t, n = b"", b"", 1
    while len(out) < length:
        t = prf(key, t + seed + bytes([n]))
        out += t
        n += 1
    return out[:length]


def key_sizes(suite: Suite) -> tuple[int, int]:
    """(encryption key octets incl. salt, integrity key octets)."""
    encr = suite.encr_key_bits // 8 + (4 if suite.encr == "aes-gcm-16" else 0)
    return encr, 32 if suite.integ else 0


def ike_keymat(
    suite: Suite, skeyseed: bytes, ni: bytes, nr: bytes, spi_i: bytes, spi_r: bytes
) -> dict[str, bytes]:
    e, a = key_sizes(suite)
    sizes = [
        ("sk_d", 32),
        ("sk_ai", a),
        ("sk_ar", a),
        ("sk_ei", e),
        ("sk_er", e),
        ("sk_pi", 32),
        ("sk_pr", 32),
    ]
    stream = prf_plus(skeyseed, ni + nr + spi_i + spi_r, sum(n for _, n in sizes))
    out, pos = {}, 0
    for name, n in sizes:
        out[name], pos = stream[pos : pos + n], pos + n
    return out


def child_keymat(suite: Suite, sk_d: bytes, seed: bytes) -> dict[str, bytes]:
    e, a = key_sizes(suite)
    stream = prf_plus(sk_d, seed, 2 * (e + a))
    return {
        "encr_i": stream[:e],
        "integ_i": stream[e : e + a],
        "encr_r": stream[e + a : 2 * e + a],
        "integ_r": stream[2 * e + a :],
    }


def walk_payloads(first: int, data: bytes) -> list[dict[str, Any]]:
    """Generic payload chain (RFC 7296 §3.2) -> [{type, name, critical, data(hex, without header)}]."""
    out, kind, pos = [], first, 0
    while kind != 0:
        check(pos + 4 <= len(data), f"payload chain truncated at {pos}")
        nxt, flags, length = data[pos], data[pos + 1], struct.unpack("!H", data[pos + 2 : pos + 4])[0]
        check(4 <= length <= len(data) - pos, f"bad payload length {length} at {pos}")
        out.append(
            {
                "type": kind,
                "name": PAYLOADS.get(kind, str(kind)),
                "critical": bool(flags & 0x80),
                "data": data[pos + 4 : pos + length].hex(),
            }
        )
        if kind == 46:  # SK is always last; its next-payload names the first inner payload
            out[-1]["inner_first"] = nxt
            break
        kind, pos = nxt, pos + length
    return out


def proposals(sa_body: bytes) -> list[dict[str, Any]]:
    """SA payload body -> [{number, protocol, spi, transforms:[(type, id, key_bits)]}]."""
    out, pos = [], 0
    while pos < len(sa_body):
        last, length, num, proto, spi_size, _ = struct.unpack("!BxHBBBB", sa_body[pos : pos + 8])
        spi = sa_body[pos + 8 : pos + 8 + spi_size]
        tpos, transforms = pos + 8 + spi_size, []
        while tpos < pos + length:
            _, tlen, ttype, tid = struct.unpack("!BxHBxH", sa_body[tpos : tpos + 8])
            bits = None
            if tlen >= 12 and struct.unpack("!H", sa_body[tpos + 8 : tpos + 10])[0] == 0x800E:
                bits = struct.unpack("!H", sa_body[tpos + 10 : tpos + 12])[0]
            transforms.append([ttype, tid, bits])
            tpos += tlen
        out.append({"number": num, "protocol": proto, "spi": spi.hex(), "transforms": transforms})
        pos += length
        if last == 0:
            break
    return out


def decrypt_sk(suite: Suite, message: bytes, sk_payload_offset: int, sk_e: bytes, sk_a: bytes) -> bytes:
    """Encrypted payload -> plaintext inner payloads (padding and Pad Length removed)."""
    body_start = sk_payload_offset + 4
    length = struct.unpack("!H", message[sk_payload_offset + 2 : sk_payload_offset + 4])[0]
    body_end = sk_payload_offset + length
    if suite.encr == "aes-gcm-16":
        iv = message[body_start : body_start + 8]
        ciphertext = message[body_start + 8 : body_end]
        aad = message[:body_start]
        plain = AESGCM(sk_e[:-4]).decrypt(sk_e[-4:] + iv, ciphertext, aad)
    else:
        icv_len = 16
        icv = message[body_end - icv_len : body_end]
        mac = hmac.new(sk_a, message[: body_end - icv_len], hashlib.sha256).digest()[:icv_len]
        check(hmac.compare_digest(mac, icv), "SK payload ICV mismatch")
        iv = message[body_start : body_start + 16]
        ciphertext = message[body_start + 16 : body_end - icv_len]
        decryptor = Cipher(algorithms.AES(sk_e), modes.CBC(iv)).decryptor()
        plain = decryptor.update(ciphertext) + decryptor.finalize()
    pad_length = plain[-1]
    return plain[: -1 - pad_length]


def decrypt_esp(suite: Suite, datagram: bytes, key: bytes, integ_key: bytes) -> tuple[bytes, int]:
    """ESP packet (RFC 4303) -> (inner packet, next header)."""
    header = datagram[:8]
    if suite.encr == "aes-gcm-16":
        iv = datagram[8:16]
        plain = AESGCM(key[:-4]).decrypt(key[-4:] + iv, datagram[16:], header)
    else:
        icv = datagram[-16:]
        mac = hmac.new(integ_key, datagram[:-16], hashlib.sha256).digest()[:16]
        check(hmac.compare_digest(mac, icv), "ESP ICV mismatch")
        iv = datagram[8:24]
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        plain = decryptor.update(datagram[24:-16]) + decryptor.finalize()
    next_header, pad_length = plain[-1], plain[-2]
    return plain[: -2 - pad_length], next_header


# --- running the peers ---------------------------------------------------------------------------


@dataclass
class Run:
    suite: Suite
    pcap: Path
    initiator_log: str
    responder_log: str
    ike_rekey_event: dict[str, Any]
    child_rekey_event: dict[str, Any]
    charon_version: str


def _conn(
    suite: Suite, local: str, remote: str, local_id: str, remote_id: str, local_ts: str, remote_ts: str
) -> SwanConn:
    return SwanConn(
        local_addrs=local,
        remote_addrs=remote,
        local_id=local_id,
        remote_id=remote_id,
        psk=PSK,
        proposals=suite.ike_proposal,
        children=[
            SwanChild(
                local_ts=f"{local_ts}/32", remote_ts=f"{remote_ts}/32", esp_proposals=suite.esp_proposal
            )
        ],
    )


def run_suite(suite: Suite, workdir: Path, *, rekey: bool = True) -> Run:
    """Run the scenario in a fresh lab under ``workdir``; everything is torn down before returning."""
    with Lab(workdir / "lab") as lab:
        ini_ns, resp_ns = lab.pair(f"{INITIATOR}/24", f"{RESPONDER}/24", hints=("ini", "resp"))
        ini_ns.add_local_addresses([f"{INNER_I}/32"])
        resp_ns.add_local_addresses([f"{INNER_R}/32"])
        pcap = workdir / f"{suite.name}.pcap"
        capture = start_capture(ini_ns, "veth0", pcap)
        ini = StrongSwan(ini_ns, workdir / "initiator", log_level=4)
        resp = StrongSwan(resp_ns, workdir / "responder", log_level=4)
        ini.configure(_conn(suite, INITIATOR, RESPONDER, ID_I, ID_R, INNER_I, INNER_R))
        resp.configure(_conn(suite, RESPONDER, INITIATOR, ID_R, ID_I, INNER_R, INNER_I))
        ike_event: dict[str, Any] = {}
        child_event: dict[str, Any] = {}
        try:
            resp.start()
            ini.start()
            assert ini.events is not None and resp.events is not None
            ini.initiate(child="lab")

            def ping() -> None:
                ini_ns.run("ping", "-c", "2", "-i", "0.2", "-W", "2", "-I", INNER_I, INNER_R)

            ping()
            if rekey:
                mark = ini.events.mark()
                ini.rekey(child="lab")
                child_event = ini.events.wait_for("child-rekey", start=mark, timeout=15)
                resp.events.wait_for("child-rekey", timeout=15)
                ping()
                mark = ini.events.mark()
                ini.rekey(ike="lab")
                ike_event = ini.events.wait_for("ike-rekey", start=mark, timeout=15)
                resp.events.wait_for("ike-rekey", timeout=15)
                wait_until(lambda: len(ini.list_ike_sas()) == 1, 10, "the rekeyed IKE SA to be deleted")
                ping()
            time.sleep(0.3)
            ini.terminate(ike="lab")
            resp.events.wait_for("ike-updown", lambda e: "lab" in e and e.get("up") != "yes", timeout=10)
        finally:
            ini.stop()
            resp.stop()
            stop_capture(capture)
        version = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "charon-systemd"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        return Run(suite, pcap, ini.log_text(), resp.log_text(), ike_event, child_event, version)


# --- turning a run into a vector -----------------------------------------------------------------


def _log_values(text: str) -> dict[str, list[bytes]]:
    _, dumps = charon_log.parse(text)
    out: dict[str, list[bytes]] = {}
    for d in dumps:
        if d.complete:
            out.setdefault(d.label, []).append(bytes(d.data))
    return out


def _ike_messages(packets: list[Packet]) -> tuple[list[dict[str, Any]], list[Packet]]:
    messages, esp = [], []
    for p in packets:
        if p.proto != 17 or (4500 not in (p.sport, p.dport) and 500 not in (p.sport, p.dport)):
            continue
        data, marker = p.payload, False
        if 4500 in (p.sport, p.dport):
            if data == b"\xff":
                continue  # NAT-keepalive (RFC 3948)
            if data[:4] != b"\0\0\0\0":
                esp.append(p)
                continue
            data, marker = data[4:], True
        spi_i, spi_r, nxt, version, exchange, flags, msg_id, length = struct.unpack("!8s8sBBBBII", data[:28])
        check(length == len(data), f"frame {p.index}: IKE length {length} != datagram {len(data)}")
        messages.append(
            {
                "frame": p.index,
                "time": round(p.time, 6),
                "direction": "initiator->responder" if p.src == INITIATOR else "responder->initiator",
                "src": f"{p.src}:{p.sport}",
                "dst": f"{p.dst}:{p.dport}",
                "non_esp_marker": marker,
                "spi_i": spi_i.hex(),
                "spi_r": spi_r.hex(),
                "next_payload": nxt,
                "version": version,
                "exchange": exchange,
                "exchange_name": EXCHANGES.get(exchange, str(exchange)),
                "flags": flags,
                "is_response": bool(flags & 0x20),
                "sender_is_ike_sa_initiator": bool(flags & 0x08),
                "message_id": msg_id,
                "length": length,
                "raw": data.hex(),
            }
        )
    return messages, esp


def _payload(payloads: list[dict[str, Any]], kind: int) -> bytes | None:
    for p in payloads:
        if p["type"] == kind:
            return bytes.fromhex(p["data"])
    return None


def _notifies(payloads: list[dict[str, Any]]) -> list[int]:
    return [struct.unpack("!H", bytes.fromhex(p["data"])[2:4])[0] for p in payloads if p["type"] == 41]


def build_vector(run: Run) -> tuple[dict[str, Any], list[IkeSaKeys], list[EspSaKeys]]:
    suite = run.suite
    ini_vals, resp_vals = _log_values(run.initiator_log), _log_values(run.responder_log)
    for label in (
        "shared Diffie Hellman secret",
        "SKEYSEED",
        "Sk_d secret",
        "Sk_ei secret",
        "Sk_er secret",
        "Sk_pi secret",
        "Sk_pr secret",
        "encryption initiator key",
        "encryption responder key",
        "DH secret",
        "seed",
    ):
        check(
            ini_vals.get(label) == resp_vals.get(label), f"initiator and responder logs disagree on {label!r}"
        )
    messages, esp_packets = _ike_messages(list(read_packets(run.pcap)))
    check(len(messages) >= 4, "fewer than four IKE messages captured")

    # IKE SA 0 from IKE_SA_INIT.
    init_req, init_resp = messages[0], messages[1]
    check(
        init_req["exchange"] == 34 and init_resp["exchange"] == 34, "capture does not start with IKE_SA_INIT"
    )
    for m in (init_req, init_resp):
        m["payloads"] = walk_payloads(m["next_payload"], bytes.fromhex(m["raw"])[28:])
    ni, nr = _payload(init_req["payloads"], 40), _payload(init_resp["payloads"], 40)
    ke_i, ke_r = _payload(init_req["payloads"], 34), _payload(init_resp["payloads"], 34)
    assert ni and nr and ke_i and ke_r
    spi_i, spi_r = bytes.fromhex(init_resp["spi_i"]), bytes.fromhex(init_resp["spi_r"])
    shared = ini_vals["shared Diffie Hellman secret"]
    skeyseeds = ini_vals["SKEYSEED"]
    check(
        len(skeyseeds) == (2 if run.ike_rekey_event else 1), f"expected SKEYSEED dumps, got {len(skeyseeds)}"
    )

    def logged_keys(i: int) -> dict[str, bytes]:
        keys = {
            name: ini_vals[f"Sk_{name[3:]} secret"][i]
            for name in ("sk_d", "sk_ei", "sk_er", "sk_pi", "sk_pr")
        }
        if suite.integ:
            keys["sk_ai"], keys["sk_ar"] = ini_vals["Sk_ai secret"][i], ini_vals["Sk_ar secret"][i]
        else:
            keys["sk_ai"] = keys["sk_ar"] = b""
        return keys

    sa0_keys = logged_keys(0)
    check(prf(ni + nr, shared[0]) == skeyseeds[0], "SKEYSEED != prf(Ni | Nr, g^ir)")
    check(ike_keymat(suite, skeyseeds[0], ni, nr, spi_i, spi_r) == sa0_keys, "SK_* != prf+(SKEYSEED, ...)")
    ike_sas: list[dict[str, Any]] = [
        {
            "created_by": "IKE_SA_INIT",
            "spi_i": spi_i.hex(),
            "spi_r": spi_r.hex(),
            "nonce_i": ni.hex(),
            "nonce_r": nr.hex(),
            "ke_method": struct.unpack("!H", ke_i[:2])[0],
            "ke_i": ke_i[4:].hex(),
            "ke_r": ke_r[4:].hex(),
            "shared_secret": shared[0].hex(),
            "skeyseed": skeyseeds[0].hex(),
            **{k: v.hex() for k, v in sa0_keys.items()},
        }
    ]
    sa_by_spis = {(spi_i.hex(), spi_r.hex()): 0}

    def keys_of(index: int) -> dict[str, bytes]:
        return {k: bytes.fromhex(ike_sas[index][k]) for k in ("sk_ei", "sk_er", "sk_ai", "sk_ar")}

    child_sas: list[dict[str, Any]] = []
    child_logs = {
        "seed": ini_vals.get("seed", []),
        "encr_i": ini_vals.get("encryption initiator key", []),
        "encr_r": ini_vals.get("encryption responder key", []),
        "integ_i": ini_vals.get("integrity initiator key", []),
        "integ_r": ini_vals.get("integrity responder key", []),
        "dh": ini_vals.get("DH secret", []),
    }
    pending_request: dict[int, dict[str, Any]] = {}
    auth_values: dict[str, Any] = {}

    for m in messages:
        raw = bytes.fromhex(m["raw"])
        key = (m["spi_i"], m["spi_r"])
        m["ike_sa"] = sa_by_spis.get(key, 0 if m["exchange"] == 34 else None)
        if m["exchange"] == 34:
            continue
        check(m["ike_sa"] is not None, f"frame {m['frame']}: unknown SPIs {key}")
        check(m["next_payload"] == 46, f"frame {m['frame']}: expected an SK payload first")
        keys = keys_of(m["ike_sa"])
        sender_i = m["sender_is_ike_sa_initiator"]
        plain = decrypt_sk(
            suite, raw, 28, keys["sk_ei" if sender_i else "sk_er"], keys["sk_ai" if sender_i else "sk_ar"]
        )
        inner_first = raw[28]
        m["payloads"] = walk_payloads(46, raw[28:])
        m["decrypted"] = {
            "first_payload": inner_first,
            "plaintext": plain.hex(),
            "payloads": walk_payloads(inner_first, plain),
        }
        inner = m["decrypted"]["payloads"]
        if not m["is_response"]:
            pending_request[m["ike_sa"] * 2**32 + m["message_id"]] = m
            continue
        req = pending_request.pop(m["ike_sa"] * 2**32 + m["message_id"])
        req_inner = req["decrypted"]["payloads"]
        if m["exchange"] == 35:  # IKE_AUTH: AUTH values and the first Child SA
            sa0 = ike_sas[0]
            for who, msg, first_msg, nonce, id_type, sk_p in (
                ("initiator", req_inner, init_req, nr, 35, sa0["sk_pi"]),
                ("responder", inner, init_resp, ni, 36, sa0["sk_pr"]),
            ):
                id_body = _payload(msg, id_type)
                auth = _payload(msg, 39)
                assert id_body is not None and auth is not None
                octets = bytes.fromhex(first_msg["raw"]) + nonce + prf(bytes.fromhex(sk_p), id_body)
                expected = prf(prf(PSK.encode(), b"Key Pad for IKEv2"), octets)
                check(auth[4:] == expected, f"{who} AUTH payload != prf(prf(PSK, keypad), octets)")
                auth_values[who] = {
                    "auth_method": auth[0],
                    "id_payload_data": id_body.hex(),
                    "octets": octets.hex(),
                    "prf_psk_keypad": prf(PSK.encode(), b"Key Pad for IKEv2").hex(),
                    "auth": expected.hex(),
                }
            logged_auths = ini_vals["AUTH = prf(prf(secret, keypad), octets)"]
            check(
                [bytes.fromhex(auth_values[w]["auth"]) for w in ("initiator", "responder")]
                == logged_auths[:2],
                "logged AUTH values differ from the recomputed ones",
            )
            child_sas.append(
                _child(
                    suite,
                    "IKE_AUTH",
                    req,
                    m,
                    req_inner,
                    inner,
                    bytes.fromhex(sa0["sk_d"]),
                    b"",
                    bytes.fromhex(sa0["nonce_i"]),
                    bytes.fromhex(sa0["nonce_r"]),
                    child_logs,
                    len(child_sas),
                )
            )
        elif m["exchange"] == 36:
            sa_req, sa_resp = _payload(req_inner, 33), _payload(inner, 33)
            assert sa_req is not None and sa_resp is not None
            prop_r = proposals(sa_resp)[0]
            cni, cnr = _payload(req_inner, 40), _payload(inner, 40)
            cke_i, cke_r = _payload(req_inner, 34), _payload(inner, 34)
            assert cni and cnr
            parent = ike_sas[m["ike_sa"]]
            if prop_r["protocol"] == 1:  # IKE SA rekey (RFC 7296 §1.3.2)
                assert cke_i and cke_r
                new_spi_i, new_spi_r = (
                    bytes.fromhex(proposals(sa_req)[0]["spi"]),
                    bytes.fromhex(prop_r["spi"]),
                )
                new_shared, new_seed = shared[len(ike_sas)], skeyseeds[len(ike_sas)]
                check(
                    prf(bytes.fromhex(parent["sk_d"]), new_shared + cni + cnr) == new_seed,
                    "rekeyed SKEYSEED != prf(SK_d (old), g^ir (new) | Ni | Nr)",
                )
                new_keys = logged_keys(len(ike_sas))
                check(
                    ike_keymat(suite, new_seed, cni, cnr, new_spi_i, new_spi_r) == new_keys,
                    "rekeyed SK_* != prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)",
                )
                sa_by_spis[(new_spi_i.hex(), new_spi_r.hex())] = len(ike_sas)
                ike_sas.append(
                    {
                        "created_by": f"CREATE_CHILD_SA rekeying IKE SA {m['ike_sa']} (frames {req['frame']},"
                        f" {m['frame']})",
                        "spi_i": new_spi_i.hex(),
                        "spi_r": new_spi_r.hex(),
                        "nonce_i": cni.hex(),
                        "nonce_r": cnr.hex(),
                        "ke_method": struct.unpack("!H", cke_i[:2])[0],
                        "ke_i": cke_i[4:].hex(),
                        "ke_r": cke_r[4:].hex(),
                        "shared_secret": new_shared.hex(),
                        "skeyseed": new_seed.hex(),
                        "old_sk_d": parent["sk_d"],
                        **{k: v.hex() for k, v in new_keys.items()},
                    }
                )
            else:  # Child SA rekey (RFC 7296 §1.3.3), with PFS
                check(N_REKEY_SA in _notifies(req_inner), "CREATE_CHILD_SA for a Child SA without REKEY_SA")
                dh = child_logs["dh"][0] if cke_i else b""
                child_sas.append(
                    _child(
                        suite,
                        f"CREATE_CHILD_SA rekeying Child SA {len(child_sas) - 1}",
                        req,
                        m,
                        req_inner,
                        inner,
                        bytes.fromhex(parent["sk_d"]),
                        dh,
                        cni,
                        cnr,
                        child_logs,
                        len(child_sas),
                        cke_i,
                        cke_r,
                    )
                )

    esp_out = _esp(suite, esp_packets, child_sas)
    vector: dict[str, Any] = {
        "suite": suite.name,
        "description": "strongSwan initiator <-> strongSwan responder over UDP (kernel-libipsec fakes a NAT, "
        "so IKE moves to UDP 4500 with the non-ESP marker after IKE_SA_INIT); PSK; one Child SA; "
        "Child SA rekey with PFS, then IKE SA rekey; pings through the tunnel; delete.",
        "produced_by": "python tests/vectors/harvest_strongswan.py OUTDIR (see tests/vectors/README.md)",
        "strongswan_version": run.charon_version,
        "proposals": {"ike": suite.ike_proposal, "esp": suite.esp_proposal},
        "ike_transforms": suite.ike_transforms,
        "esp_transforms": suite.esp_transforms,
        "psk": PSK.encode().hex(),
        "psk_text": PSK,
        "id_i": {"type": ID_FQDN, "data": ID_I.encode().hex(), "text": ID_I},
        "id_r": {"type": ID_FQDN, "data": ID_R.encode().hex(), "text": ID_R},
        "addresses": {
            "initiator": INITIATOR,
            "responder": RESPONDER,
            "inner_initiator": INNER_I,
            "inner_responder": INNER_R,
        },
        "pcap": run.pcap.name,
        "messages": messages,
        "ike_sas": ike_sas,
        "auth": auth_values,
        "child_sas": child_sas,
        "esp_packets": esp_out,
        "not_logged_by_charon": [
            "nonces and KE public values "
            "(taken from the captured messages, decrypted here when in SK payloads)",
            "SPIs of the Child SAs apart from the 'adding inbound/outbound ESP SA' lines "
            "(taken from the decrypted SA payloads)",
            "DH private values (so a harvest cannot be replayed to the same bytes)",
            "plaintext of SK payloads (decrypted here with the logged SK_e*/SK_a*)",
        ],
    }
    ike_table, esp_table = tables_from_vector(vector, suite)
    return vector, ike_table, esp_table


def tables_from_vector(vector: dict[str, Any], suite: Suite) -> tuple[list[IkeSaKeys], list[EspSaKeys]]:
    """Wireshark key-table lines (ikev2_decryption_table, esp_sa) for every SA of a vector."""
    ike_table = [
        IkeSaKeys(
            bytes.fromhex(sa["spi_i"]),
            bytes.fromhex(sa["spi_r"]),
            bytes.fromhex(sa["sk_ei"]),
            bytes.fromhex(sa["sk_er"]),
            IKE_ENCRYPTION[(suite.encr, suite.encr_key_bits)],
            bytes.fromhex(sa["sk_ai"]),
            bytes.fromhex(sa["sk_ar"]),
            IKE_INTEGRITY[suite.integ],
        )
        for sa in vector["ike_sas"]
    ]
    initiator, responder = vector["addresses"]["initiator"], vector["addresses"]["responder"]
    esp_table = []
    for child in vector["child_sas"]:
        for src, dst, spi, encr, integ in (
            (initiator, responder, child["spi_r"], "encr_i", "integ_i"),
            (responder, initiator, child["spi_i"], "encr_r", "integ_r"),
        ):
            esp_table.append(
                EspSaKeys(
                    src,
                    dst,
                    int(spi, 16),
                    ESP_ENCRYPTION[suite.encr],
                    bytes.fromhex(child[encr]),
                    ESP_INTEGRITY[suite.integ],
                    bytes.fromhex(child[integ]),
                )
            )
    return ike_table, esp_table


def _child(
    suite: Suite,
    created_by: str,
    req: dict[str, Any],
    resp: dict[str, Any],
    req_inner: list[dict[str, Any]],
    resp_inner: list[dict[str, Any]],
    sk_d: bytes,
    dh: bytes,
    ni: bytes,
    nr: bytes,
    logs: dict[str, list[bytes]],
    index: int,
    ke_i: bytes | None = None,
    ke_r: bytes | None = None,
) -> dict[str, Any]:
    sa_req, sa_resp = _payload(req_inner, 33), _payload(resp_inner, 33)
    assert sa_req is not None and sa_resp is not None
    seed = dh + ni + nr
    check(logs["seed"][index] == seed, f"Child SA {index}: logged seed != [g^ir] | Ni | Nr")
    keys = child_keymat(suite, sk_d, seed)
    check(
        keys["encr_i"] == logs["encr_i"][index] and keys["encr_r"] == logs["encr_r"][index],
        f"Child SA {index}: encryption keys != prf+(SK_d, seed)",
    )
    if suite.integ:
        check(
            keys["integ_i"] == logs["integ_i"][index] and keys["integ_r"] == logs["integ_r"][index],
            f"Child SA {index}: integrity keys != prf+(SK_d, seed)",
        )
    return {
        "created_by": f"{created_by} (frames {req['frame']}, {resp['frame']})",
        "spi_i": proposals(sa_req)[0]["spi"],
        "spi_r": proposals(sa_resp)[0]["spi"],
        "nonce_i": ni.hex(),
        "nonce_r": nr.hex(),
        "ke_method": struct.unpack("!H", ke_i[:2])[0] if ke_i else None,
        "ke_i": ke_i[4:].hex() if ke_i else None,
        "ke_r": ke_r[4:].hex() if ke_r else None,
        "shared_secret": dh.hex() if dh else None,
        "keymat_seed": seed.hex(),
        **{k: v.hex() for k, v in keys.items()},
    }


def _esp(suite: Suite, packets: list[Packet], child_sas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_spi = {}
    for i, child in enumerate(child_sas):
        by_spi[child["spi_r"]] = (i, "encr_i", "integ_i")  # initiator -> responder uses the responder's SPI
        by_spi[child["spi_i"]] = (i, "encr_r", "integ_r")
    out = []
    for p in packets:
        spi, seq = p.payload[:4].hex(), struct.unpack("!I", p.payload[4:8])[0]
        check(spi in by_spi, f"frame {p.index}: ESP SPI {spi} belongs to no harvested Child SA")
        index, encr, integ = by_spi[spi]
        child = child_sas[index]
        inner, next_header = decrypt_esp(
            suite, p.payload, bytes.fromhex(child[encr]), bytes.fromhex(child[integ])
        )
        check(next_header == 4 and inner[9] == 1, f"frame {p.index}: ESP does not carry IPv4 ICMP")
        out.append(
            {
                "frame": p.index,
                "direction": "initiator->responder" if p.src == INITIATOR else "responder->initiator",
                "child_sa": index,
                "spi": spi,
                "seq": seq,
                "raw": p.payload.hex(),
                "next_header": next_header,
                "inner_packet": inner.hex(),
            }
        )
    return out


def harvest(outdir: Path, suite_names: list[str], keep: Path | None = None) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in suite_names:
        suite = SUITES[name]
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"ikr-harvest-{name}-", dir=keep))
        try:
            run = run_suite(suite, work)
            vector, ike_table, esp_table = build_vector(run)
            shutil.copy(run.pcap, outdir / f"{name}.pcap")
            (outdir / f"{name}.initiator.log").write_text(run.initiator_log)
            (outdir / f"{name}.responder.log").write_text(run.responder_log)
            (outdir / f"{name}.ikev2_decryption_table").write_text(
                "".join(k.line() + "\n" for k in ike_table)
            )
            (outdir / f"{name}.esp_sa").write_text("".join(k.line() + "\n" for k in esp_table))
            path = outdir / f"{name}.json"
            path.write_text(json.dumps(vector, indent=1) + "\n")
            written.append(path)
            print(
                f"{name}: {len(vector['messages'])} IKE messages, {len(vector['ike_sas'])} IKE SAs, "
                f"{len(vector['child_sas'])} Child SAs, {len(vector['esp_packets'])} ESP packets -> {path}"
            )
        finally:
            if keep is None:
                shutil.rmtree(work, ignore_errors=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--suite", action="append", choices=sorted(SUITES), help="default: all suites")
    parser.add_argument("--keep", type=Path, help="keep the work directories (logs, configs) under this path")
    args = parser.parse_args(argv)
    harvest(args.outdir, args.suite or list(SUITES), args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
