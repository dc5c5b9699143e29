#!/usr/bin/env python3
"""Harvest certificate-authentication known answers from strongSwan (initiator <-> responder).

Usage (root, after ``bash .ci/install-interop``)::

    python tests/vectors/harvest_strongswan_certs.py OUTDIR [--suite NAME ...] [--keep WORKDIR]

The sibling of harvest_strongswan.py (whose helpers it imports: the lab, the
pcap reader, the charon log parser, the independent key schedule and SK payload
decryption).  Per suite it generates a small PKI with ``cryptography.x509`` (a
CA, then an initiator and a responder leaf with the ipsecIKE EKU and a dNSName
SAN), runs two charon-systemd instances at log level 4 in two namespaces with
tcpdump between them, and lets the initiator establish one IKE SA with one
Child SA by mutual certificate authentication, then delete it.  Afterwards:

* every IKE message is taken from the pcap and every SK payload decrypted with
  the SK_e* both charons logged (they must agree, and must follow from the
  logged SKEYSEED as recomputed here);
* each side's signed octets are rebuilt here (RFC 7296 §2.15) and must equal
  the ``octets = message + nonce + prf(Sk_px, IDx')`` dumps of both charons;
* each AUTH payload is verified here with ``cryptography`` against the sender's
  leaf certificate (RFC 7427 AlgorithmIdentifier parsed with a small DER reader)
  and, for deterministic schemes (RSASSA-PKCS1-v1_5, Ed25519), re-signed with
  the sender's private key to the same octets;
* each CERTREQ must carry SHA-1(CA SubjectPublicKeyInfo) (RFC 7296 §3.7).

Outputs per suite: ``NAME.json``, ``NAME.pcap``, ``NAME.ikev2_decryption_table``,
the two charon logs, and the PKI (``NAME.ca.pem``, ``NAME.initiator.pem``,
``NAME.initiator.key.pem``, ``NAME.responder.pem``, ``NAME.responder.key.pem``:
throwaway test keys).  Keys and certificates are new on every run.
tests/vectors/README.md describes the format.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import re
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

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from tests.interop import charon_log
from tests.interop.lab import Lab
from tests.interop.pcap import read_packets
from tests.interop.strongswan import StrongSwan, SwanChild, SwanConn
from tests.interop.tshark import IKE_ENCRYPTION, IKE_INTEGRITY, IkeSaKeys, start_capture, stop_capture
from tests.vectors.harvest_strongswan import (
    INITIATOR,
    INNER_I,
    INNER_R,
    RESPONDER,
    SUITES,
    HarvestError,
    Suite,
    _child,
    _ike_messages,
    _log_values,
    _payload,
    check,
    decrypt_sk,
    ike_keymat,
    prf,
    walk_payloads,
)

# The IKE/ESP proposal of every certificate suite: AES-GCM, PRF_HMAC_SHA2_256, Curve25519.
PROPOSAL: Suite = SUITES["x25519-aes256gcm16-prfsha256"]
ID_I, ID_R = "initiator.lab", "responder.lab"
ORGANIZATION = "ikev2-responder known answers"
MTU = 9000  # no IP fragments (tests.interop.pcap does not reassemble) and no IKE fragmentation

# IANA values (RFC 7296 §3.5, §3.6, §3.8, §3.10.1; RFC 7427 §3, §4).
ID_FQDN, ID_DER_ASN1_DN = 2, 9
CERT_X509_SIGNATURE = 4
AUTH_RSA, AUTH_ECDSA_256, AUTH_DS = 1, 9, 14
N_SIGNATURE_HASH_ALGORITHMS = 16431
CERT, CERTREQ, AUTH, IDI, IDR, NOTIFY = 37, 38, 39, 35, 36, 41

_LOG_OCTETS = "octets = message + nonce + prf(Sk_px, IDx')"
_LOG_AUTH_LINE = re.compile(
    r"authentication of '(?P<id>.*)' (?P<mine>\(myself\) )?with (?P<scheme>.+) successful"
)


@dataclass(frozen=True)
class CertSuite:
    name: str
    description: str
    leaf_key: str  # "ecdsa-p256" | "rsa-2048" | "ed25519"
    ca_key: str
    charon_conf: str = ""  # extra lines in the charon { } section of strongswan.conf (both ends)
    dn_ids: bool = False  # IDs are the certificates' subject DNs (ID_DER_ASN1_DN), else ID_FQDN


CERT_SUITES = {
    s.name: s
    for s in (
        CertSuite(
            "cert-ecdsa-p256",
            "ECDSA P-256 leaves and CA, swanctl auth = pubkey: RFC 7427 Digital Signature",
            "ecdsa-p256",
            "ecdsa-p256",
        ),
        CertSuite(
            "cert-rsa2048",
            "RSA-2048 leaves and CA, swanctl auth = pubkey: RFC 7427 Digital Signature (PKCS#1 v1.5)",
            "rsa-2048",
            "rsa-2048",
        ),
        CertSuite(
            "cert-ed25519",
            "Ed25519 leaves under an ECDSA P-256 CA (the web-PKI profile of cryptography's verifier "
            "refuses Ed25519 issuers), swanctl auth = pubkey: RFC 7427 Digital Signature",
            "ed25519",
            "ecdsa-p256",
        ),
        CertSuite(
            "cert-rsa2048-pss",
            "RSA-2048 leaves and CA, charon.rsa_pss = yes: RFC 7427 Digital Signature with RSASSA-PSS; "
            "the IDs are the certificates' subject DNs",
            "rsa-2048",
            "rsa-2048",
            charon_conf="    rsa_pss = yes\n",
            dn_ids=True,
        ),
        CertSuite(
            "cert-rsa2048-legacy",
            "RSA-2048 leaves and CA, charon.signature_authentication = no: no SIGNATURE_HASH_ALGORITHMS, "
            "Auth Method 1 (RSA Digital Signature)",
            "rsa-2048",
            "rsa-2048",
            charon_conf="    signature_authentication = no\n",
        ),
        CertSuite(
            "cert-ecdsa-p256-legacy",
            "ECDSA P-256 leaves and CA, charon.signature_authentication = no: no "
            "SIGNATURE_HASH_ALGORITHMS, Auth Method 9 (ECDSA with SHA-256 on the P-256 curve)",
            "ecdsa-p256",
            "ecdsa-p256",
            charon_conf="    signature_authentication = no\n",
        ),
    )
}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


# --- the PKI ---------------------------------------------------------------------------------------


def new_key(kind: str) -> PrivateKey:
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """digitalSignature for every certificate here; keyCertSign and cRLSign for the CA."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _sign_hash(issuer_key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


@dataclass
class Pki:
    ca_key: PrivateKey
    ca: x509.Certificate
    keys: dict[str, PrivateKey]  # "initiator" | "responder"
    certs: dict[str, x509.Certificate]
    not_before: datetime.datetime


def make_pki(suite: CertSuite, now: datetime.datetime) -> Pki:
    """A CA and two leaves (ipsecIKE EKU, digitalSignature, dNSName SAN, AKI/SKI)."""
    not_before = now.replace(microsecond=0) - datetime.timedelta(days=1)
    not_after = not_before + datetime.timedelta(days=3650)
    ca_key = new_key(suite.ca_key)
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{suite.name} CA"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(ca=True),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, _sign_hash(ca_key))
    )
    keys: dict[str, PrivateKey] = {}
    certs: dict[str, x509.Certificate] = {}
    for who, fqdn in (("initiator", ID_I), ("responder", ID_R)):
        key = new_key(suite.leaf_key)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                x509.NameAttribute(NameOID.COMMON_NAME, fqdn),
            ]
        )
        certs[who] = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                _key_usage(ca=False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.IPSEC_IKE]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(fqdn)]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
            )
            .sign(ca_key, _sign_hash(ca_key))
        )
        keys[who] = key
    return Pki(ca_key, ca, keys, certs, not_before)


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def spki_sha1(cert: x509.Certificate) -> bytes:
    """SHA-1 of the DER SubjectPublicKeyInfo: what a CERTREQ names a CA by (RFC 7296 §3.7)."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha1(spki).digest()  # noqa: S324 - the RFC's choice, not ours


def rfc4514_for_strongswan(name: x509.Name) -> str:
    """A subject DN as swanctl's ``id`` option reads it (``O=..., CN=...``, in DER order)."""
    return ", ".join(attr.rfc4514_string() for attr in name)


# --- a small DER reader for RFC 7427 AlgorithmIdentifiers ------------------------------------------


def der_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """(tag, contents, end) of the DER TLV at ``pos`` (definite lengths only)."""
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    check(pos + length <= len(data), "DER length beyond the data")
    return tag, data[pos : pos + length], pos + length


def der_oid(contents: bytes) -> str:
    arcs, value = [], 0
    for byte in contents:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def parse_algorithm_identifier(algid: bytes) -> tuple[str, bytes | None]:
    """AlgorithmIdentifier DER -> (dotted OID, parameters TLV or None)."""
    tag, body, end = der_tlv(algid)
    check(tag == 0x30 and end == len(algid), "AlgorithmIdentifier is not one DER SEQUENCE")
    tag, oid, pos = der_tlv(body)
    check(tag == 0x06, "AlgorithmIdentifier does not start with an OID")
    return der_oid(oid), (body[pos:] or None)


def dn_attributes(der: bytes) -> list[tuple[str, bytes]]:
    """Name DER -> [(attribute OID, value contents)] in order, string types dropped."""
    tag, rdns, _ = der_tlv(der)
    check(tag == 0x30, "Name is not a SEQUENCE")
    out, pos = [], 0
    while pos < len(rdns):
        tag, rdn, pos = der_tlv(rdns, pos)
        check(tag == 0x31, "RDN is not a SET")
        rpos = 0
        while rpos < len(rdn):
            _, attribute, rpos = der_tlv(rdn, rpos)
            _, oid, vpos = der_tlv(attribute)
            _, value, _ = der_tlv(attribute, vpos)
            out.append((der_oid(oid), value))
    return out


def pss_salt_length(params: bytes) -> int:
    """saltLength of RSASSA-PSS-params (RFC 4055 §3.1); 20 when absent (the ASN.1 default)."""
    tag, body, _ = der_tlv(params)
    check(tag == 0x30, "RSASSA-PSS-params is not a SEQUENCE")
    pos = 0
    while pos < len(body):
        tag, contents, pos = der_tlv(body, pos)
        if tag == 0xA2:
            _, value, _ = der_tlv(contents)
            return int.from_bytes(value, "big")
    return 20


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# RFC 7427 signature algorithms by their public cryptography names: (key kind, hash name).
_SIGNATURE_OIDS: dict[str, tuple[str, str | None]] = {
    SignatureAlgorithmOID.ECDSA_WITH_SHA256.dotted_string: ("ecdsa", "sha256"),
    SignatureAlgorithmOID.ECDSA_WITH_SHA384.dotted_string: ("ecdsa", "sha384"),
    SignatureAlgorithmOID.ECDSA_WITH_SHA512.dotted_string: ("ecdsa", "sha512"),
    SignatureAlgorithmOID.RSA_WITH_SHA1.dotted_string: ("rsa-pkcs1", "sha1"),
    SignatureAlgorithmOID.RSA_WITH_SHA256.dotted_string: ("rsa-pkcs1", "sha256"),
    SignatureAlgorithmOID.RSA_WITH_SHA384.dotted_string: ("rsa-pkcs1", "sha384"),
    SignatureAlgorithmOID.RSA_WITH_SHA512.dotted_string: ("rsa-pkcs1", "sha512"),
    SignatureAlgorithmOID.RSASSA_PSS.dotted_string: ("rsa-pss", None),
    SignatureAlgorithmOID.ED25519.dotted_string: ("ed25519", None),
}


def _pss_verifies(
    public_key: rsa.RSAPublicKey, signature: bytes, octets: bytes, hash_: hashes.HashAlgorithm, salt: int
) -> bool:
    try:
        public_key.verify(signature, octets, padding.PSS(padding.MGF1(hash_), salt), hash_)
    except InvalidSignature:
        return False
    return True


def verify_auth(
    method: int, data: bytes, public_key: PublicKey, octets: bytes, private_key: PrivateKey
) -> dict[str, Any]:
    """Verify an AUTH payload (method, data) over ``octets``; describe what was found.

    For deterministic schemes the signature is also re-created with ``private_key``
    and must come out identical.
    """
    out: dict[str, Any] = {}
    if method == AUTH_DS:  # RFC 7427 §3: length octet, AlgorithmIdentifier, signature
        n = data[0]
        algid, signature = data[1 : 1 + n], data[1 + n :]
        oid, params = parse_algorithm_identifier(algid)
        check(oid in _SIGNATURE_OIDS, f"unknown RFC 7427 signature algorithm {oid}")
        kind, hash_name = _SIGNATURE_OIDS[oid]
        out.update(
            algorithm_identifier=algid.hex(),
            algorithm_oid=oid,
            algorithm_parameters=params.hex() if params else None,
        )
    elif method == AUTH_RSA:  # RFC 7296 §3.8: RSASSA-PKCS1-v1_5, SHA-1 by convention
        kind, hash_name, signature = "rsa-pkcs1", "sha1", data
    elif method == AUTH_ECDSA_256:  # RFC 4754 §7: r | s, SHA-256, P-256
        kind, hash_name, signature = "ecdsa-raw", "sha256", data
        check(len(signature) == 64, "ECDSA P-256 AUTH data is not 64 octets")
    else:
        raise HarvestError(f"unexpected Auth Method {method}")
    try:
        if kind in ("ecdsa", "ecdsa-raw"):
            assert isinstance(public_key, ec.EllipticCurvePublicKey) and hash_name
            der = signature
            if kind == "ecdsa-raw":
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
            public_key.verify(der, octets, ec.ECDSA(_HASHES[hash_name]()))
        elif kind == "rsa-pkcs1":
            assert isinstance(public_key, rsa.RSAPublicKey) and isinstance(private_key, rsa.RSAPrivateKey)
            assert hash_name
            public_key.verify(signature, octets, padding.PKCS1v15(), _HASHES[hash_name]())
            again = private_key.sign(octets, padding.PKCS1v15(), _HASHES[hash_name]())
            check(again == signature, "RSASSA-PKCS1-v1_5 re-signed here differs from charon's")
            out["reproduced_here"] = True
        elif kind == "rsa-pss":
            assert isinstance(public_key, rsa.RSAPublicKey) and params is not None
            salt = pss_salt_length(params)
            # The hash is named inside the parameters; trying each one spares a second DER walk.
            hash_name = next(
                (
                    name
                    for name, cls in _HASHES.items()
                    if _pss_verifies(public_key, signature, octets, cls(), salt)
                ),
                None,
            )
            if hash_name is None:
                raise InvalidSignature
            out["pss_salt_length"] = salt
        elif kind == "ed25519":
            assert isinstance(public_key, ed25519.Ed25519PublicKey)
            assert isinstance(private_key, ed25519.Ed25519PrivateKey)
            public_key.verify(signature, octets)
            check(private_key.sign(octets) == signature, "Ed25519 re-signed here differs from charon's")
            out["reproduced_here"] = True
    except InvalidSignature:
        raise HarvestError(f"AUTH ({kind}) does not verify with the sender's certificate") from None
    out.update(signature_kind=kind, hash=hash_name, signature=signature.hex())
    return out


# --- running the peers -----------------------------------------------------------------------------


@dataclass
class CertRun:
    suite: CertSuite
    pki: Pki
    pcap: Path
    initiator_log: str
    responder_log: str
    charon_version: str
    ids: dict[str, str]  # the swanctl id of each end


def _cert_conn(
    local: str,
    remote: str,
    local_id: str | None,
    remote_id: str,
    local_ts: str,
    remote_ts: str,
    files: dict[str, Path],
) -> SwanConn:
    return SwanConn(
        local_addrs=local,
        remote_addrs=remote,
        local_id=local_id,  # type: ignore[arg-type]  # None: the certificate's subject DN
        remote_id=remote_id,
        auth="pubkey",
        psk=None,
        local_cert=files["cert"],
        local_key=files["key"],
        ca_certs=(files["ca"],),
        proposals=PROPOSAL.ike_proposal,
        extra={"fragmentation": "no"},
        children=[
            SwanChild(
                local_ts=f"{local_ts}/32", remote_ts=f"{remote_ts}/32", esp_proposals=PROPOSAL.esp_proposal
            )
        ],
    )


def run_cert_suite(suite: CertSuite, workdir: Path) -> CertRun:
    """IKE_SA_INIT, IKE_AUTH with certificates and a Child SA, then delete; torn down before returning."""
    pki = make_pki(suite, datetime.datetime.now(datetime.UTC))
    pki_dir = workdir / "pki"
    pki_dir.mkdir(parents=True)
    files: dict[str, dict[str, Path]] = {}
    (pki_dir / "ca.pem").write_text(cert_pem(pki.ca))
    for who in ("initiator", "responder"):
        (pki_dir / f"{who}.pem").write_text(cert_pem(pki.certs[who]))
        (pki_dir / f"{who}.key.pem").write_text(key_pem(pki.keys[who]))
        files[who] = {
            "cert": pki_dir / f"{who}.pem",
            "key": pki_dir / f"{who}.key.pem",
            "ca": pki_dir / "ca.pem",
        }
    if suite.dn_ids:
        ids = {w: rfc4514_for_strongswan(pki.certs[w].subject) for w in ("initiator", "responder")}
        local_ids: dict[str, str | None] = {"initiator": None, "responder": None}
    else:
        ids = {"initiator": ID_I, "responder": ID_R}
        local_ids = {"initiator": ID_I, "responder": ID_R}
    with Lab(workdir / "lab") as lab:
        ini_ns, resp_ns = lab.pair(f"{INITIATOR}/24", f"{RESPONDER}/24", hints=("ini", "resp"))
        for ns in (ini_ns, resp_ns):
            ns.run("ip", "link", "set", "veth0", "mtu", str(MTU))
        ini_ns.add_local_addresses([f"{INNER_I}/32"])
        resp_ns.add_local_addresses([f"{INNER_R}/32"])
        pcap = workdir / f"{suite.name}.pcap"
        capture = start_capture(ini_ns, "veth0", pcap)
        ini = StrongSwan(ini_ns, workdir / "initiator", log_level=4, extra_conf=suite.charon_conf)
        resp = StrongSwan(resp_ns, workdir / "responder", log_level=4, extra_conf=suite.charon_conf)
        ini.configure(
            _cert_conn(
                INITIATOR,
                RESPONDER,
                local_ids["initiator"],
                ids["responder"],
                INNER_I,
                INNER_R,
                files["initiator"],
            )
        )
        resp.configure(
            _cert_conn(
                RESPONDER,
                INITIATOR,
                local_ids["responder"],
                ids["initiator"],
                INNER_R,
                INNER_I,
                files["responder"],
            )
        )
        try:
            resp.start()
            ini.start()
            assert ini.events is not None and resp.events is not None
            ini.initiate(child="lab")
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
        return CertRun(suite, pki, pcap, ini.log_text(), resp.log_text(), version, ids)


# --- turning a run into a vector -------------------------------------------------------------------


def _all_payloads(payloads: list[dict[str, Any]], kind: int) -> list[bytes]:
    return [bytes.fromhex(p["data"]) for p in payloads if p["type"] == kind]


def _cert_like(body: bytes) -> dict[str, Any]:
    return {"encoding": body[0], "data": body[1:].hex()}


def _hash_algorithms(payloads: list[dict[str, Any]]) -> dict[str, Any] | None:
    for body in _all_payloads(payloads, NOTIFY):
        _, spi_size, notify_type = struct.unpack("!BBH", body[:4])
        if notify_type == N_SIGNATURE_HASH_ALGORITHMS:
            data = body[4 + spi_size :]
            return {
                "data": data.hex(),
                "hash_algorithms": [struct.unpack("!H", data[i : i + 2])[0] for i in range(0, len(data), 2)],
            }
    return None


def _auth_lines(log: str) -> dict[str, str]:
    """charon's 'authentication of ... with SCHEME successful' lines: {'myself'|'peer': scheme}."""
    lines, _ = charon_log.parse(log)
    out: dict[str, str] = {}
    for line in lines:
        match = _LOG_AUTH_LINE.search(line.text)
        if match:
            out["myself" if match["mine"] else "peer"] = match["scheme"]
    return out


def build_cert_vector(run: CertRun) -> tuple[dict[str, Any], list[IkeSaKeys]]:
    suite, pki = run.suite, run.pki
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
        "seed",
    ):
        check(
            ini_vals.get(label) == resp_vals.get(label), f"initiator and responder logs disagree on {label!r}"
        )
    messages, esp = _ike_messages(list(read_packets(run.pcap)))
    check(not esp, "ESP packets captured, but the scenario sends none")
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
    (shared,), (skeyseed,) = ini_vals["shared Diffie Hellman secret"], ini_vals["SKEYSEED"]
    check(prf(ni + nr, shared) == skeyseed, "SKEYSEED != prf(Ni | Nr, g^ir)")
    keys = {
        name: ini_vals[f"Sk_{name[3:]} secret"][0] for name in ("sk_d", "sk_ei", "sk_er", "sk_pi", "sk_pr")
    }
    keys["sk_ai"] = keys["sk_ar"] = b""
    check(ike_keymat(PROPOSAL, skeyseed, ni, nr, spi_i, spi_r) == keys, "SK_* != prf+(SKEYSEED, ...)")
    sa0 = {
        "created_by": "IKE_SA_INIT",
        "spi_i": spi_i.hex(),
        "spi_r": spi_r.hex(),
        "nonce_i": ni.hex(),
        "nonce_r": nr.hex(),
        "ke_method": struct.unpack("!H", ke_i[:2])[0],
        "ke_i": ke_i[4:].hex(),
        "ke_r": ke_r[4:].hex(),
        "shared_secret": shared.hex(),
        "skeyseed": skeyseed.hex(),
        **{k: v.hex() for k, v in keys.items()},
    }
    for m in messages:
        m["ike_sa"] = 0
        if m["exchange"] == 34:
            continue
        check((m["spi_i"], m["spi_r"]) == (spi_i.hex(), spi_r.hex()), f"frame {m['frame']}: unknown SPIs")
        raw = bytes.fromhex(m["raw"])
        sender_i = m["sender_is_ike_sa_initiator"]
        plain = decrypt_sk(PROPOSAL, raw, 28, keys["sk_ei" if sender_i else "sk_er"], b"")
        m["payloads"] = walk_payloads(46, raw[28:])
        m["decrypted"] = {
            "first_payload": raw[28],
            "plaintext": plain.hex(),
            "payloads": walk_payloads(raw[28], plain),
        }
    auth_req, auth_resp = messages[2], messages[3]
    check(
        (auth_req["exchange"], auth_req["is_response"], auth_resp["exchange"], auth_resp["is_response"])
        == (35, False, 35, True),
        "IKE_SA_INIT is not followed by one IKE_AUTH exchange",
    )

    ca_hash = spki_sha1(pki.ca)
    certreqs = {
        "ike_sa_init_response": [_cert_like(b) for b in _all_payloads(init_resp["payloads"], CERTREQ)],
        "ike_sa_init_request": [_cert_like(b) for b in _all_payloads(init_req["payloads"], CERTREQ)],
        "ike_auth_request": [
            _cert_like(b) for b in _all_payloads(auth_req["decrypted"]["payloads"], CERTREQ)
        ],
    }
    for where, found in certreqs.items():
        for c in found:
            check(c["encoding"] == CERT_X509_SIGNATURE, f"CERTREQ in {where}: encoding {c['encoding']}")
            check(bytes.fromhex(c["data"]) == ca_hash, f"CERTREQ in {where} is not SHA-1(CA SPKI)")
    check(bool(certreqs["ike_sa_init_response"]), "no CERTREQ in the IKE_SA_INIT response")

    logged_octets = {"initiator": ini_vals.get(_LOG_OCTETS, []), "responder": resp_vals.get(_LOG_OCTETS, [])}
    check(
        logged_octets["initiator"] == logged_octets["responder"] and len(logged_octets["initiator"]) == 2,
        "the charons' logged signed octets disagree (or are not two)",
    )
    schemes = {"initiator": _auth_lines(run.initiator_log), "responder": _auth_lines(run.responder_log)}
    auth: dict[str, Any] = {}
    for index, (who, msg, first_msg, nonce, id_type, sk_p) in enumerate(
        (
            ("initiator", auth_req, init_req, nr, IDI, keys["sk_pi"]),
            ("responder", auth_resp, init_resp, ni, IDR, keys["sk_pr"]),
        )
    ):
        inner = msg["decrypted"]["payloads"]
        id_body, auth_body = _payload(inner, id_type), _payload(inner, AUTH)
        assert id_body is not None and auth_body is not None
        octets = bytes.fromhex(first_msg["raw"]) + nonce + prf(sk_p, id_body)
        check(octets == logged_octets["initiator"][index], f"{who}: signed octets != charon's")
        cert_payloads = [_cert_like(b) for b in _all_payloads(inner, CERT)]
        check(
            [bytes.fromhex(c["data"]) for c in cert_payloads]
            == [pki.certs[who].public_bytes(serialization.Encoding.DER)],
            f"{who}: CERT payloads are not exactly the leaf certificate",
        )
        if suite.dn_ids:
            # charon encodes a DN it was given as a string with its own string types, and an end
            # without a configured id may answer with the IDr it was asked for: compare the
            # attributes, not the string types, and record whether the DER is the subject's own.
            subject = pki.certs[who].subject.public_bytes()
            check(
                id_body[0] == ID_DER_ASN1_DN and dn_attributes(id_body[4:]) == dn_attributes(subject),
                f"{who}: ID payload is not the certificate's subject DN",
            )
            id_is_subject_der = id_body[4:] == subject
        else:
            check(
                (id_body[0], id_body[4:]) == (ID_FQDN, run.ids[who].encode()),
                f"{who}: ID is not {run.ids[who]}",
            )
            id_is_subject_der = False
        method, data = auth_body[0], auth_body[4:]
        public_key = pki.certs[who].public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey)
        verified = verify_auth(method, data, public_key, octets, pki.keys[who])
        peer = "responder" if who == "initiator" else "initiator"
        check(
            schemes[who].get("myself") == schemes[peer].get("peer"),
            f"{who}: the two charons name the AUTH scheme differently",
        )
        auth[who] = {
            "id_type": id_body[0],
            "id_data": id_body[4:].hex(),
            "id_payload_data": id_body.hex(),
            "id_is_certificate_subject_der": id_is_subject_der,
            "auth_method": method,
            "auth_data": data.hex(),
            "octets": octets.hex(),
            "octets_logged_by_charon": True,
            "charon_scheme": schemes[who].get("myself"),
            "cert_payloads": cert_payloads,
            "signature_hash_algorithms_received": _hash_algorithms(
                (init_resp if who == "initiator" else init_req)["payloads"]
            ),
            **verified,
        }

    child_logs = {
        "seed": ini_vals.get("seed", []),
        "encr_i": ini_vals.get("encryption initiator key", []),
        "encr_r": ini_vals.get("encryption responder key", []),
        "integ_i": [],
        "integ_r": [],
    }
    child = _child(
        PROPOSAL,
        "IKE_AUTH",
        auth_req,
        auth_resp,
        auth_req["decrypted"]["payloads"],
        auth_resp["decrypted"]["payloads"],
        keys["sk_d"],
        b"",
        ni,
        nr,
        child_logs,
        0,
    )

    def cert_record(cert: x509.Certificate) -> dict[str, Any]:
        return {"pem": cert_pem(cert), "der": cert.public_bytes(serialization.Encoding.DER).hex()}

    vector: dict[str, Any] = {
        "suite": suite.name,
        "description": f"strongSwan initiator <-> strongSwan responder over UDP (IKE moves to UDP 4500 after "
        f"IKE_SA_INIT); mutual certificate authentication: {suite.description}; one Child SA; delete.",
        "produced_by": "python tests/vectors/harvest_strongswan_certs.py OUTDIR "
        "(see tests/vectors/README.md)",
        "strongswan_version": run.charon_version,
        "strongswan_conf": suite.charon_conf.strip() or None,
        "swanctl_auth": "pubkey",
        "leaf_key": suite.leaf_key,
        "ca_key": suite.ca_key,
        "proposals": {"ike": PROPOSAL.ike_proposal, "esp": PROPOSAL.esp_proposal},
        "ike_transforms": PROPOSAL.ike_transforms,
        "esp_transforms": PROPOSAL.esp_transforms,
        "validation_time": (pki.not_before + datetime.timedelta(days=1)).isoformat(),
        "certificates": {
            "ca": {**cert_record(pki.ca), "spki_sha1": ca_hash.hex()},
            **{
                who: {**cert_record(pki.certs[who]), "private_key_pem": key_pem(pki.keys[who])}
                for who in ("initiator", "responder")
            },
        },
        "swanctl_ids": run.ids,
        "id_i": {"type": auth["initiator"]["id_type"], "data": auth["initiator"]["id_data"]},
        "id_r": {"type": auth["responder"]["id_type"], "data": auth["responder"]["id_data"]},
        "addresses": {
            "initiator": INITIATOR,
            "responder": RESPONDER,
            "inner_initiator": INNER_I,
            "inner_responder": INNER_R,
        },
        "pcap": run.pcap.name,
        "messages": messages,
        "ike_sas": [sa0],
        "signature_hash_algorithms": {
            "initiator": _hash_algorithms(init_req["payloads"]),
            "responder": _hash_algorithms(init_resp["payloads"]),
        },
        "certreqs": certreqs,
        "auth": auth,
        "child_sas": [child],
        "not_logged_by_charon": [
            "nonces and KE public values (taken from the captured IKE_SA_INIT messages)",
            "plaintext of SK payloads (decrypted here with the logged SK_e*)",
            "the AUTH payloads and certificates (taken from the decrypted IKE_AUTH messages; the "
            "certificates and keys were generated here)",
            "DH private values and ECDSA/RSASSA-PSS signing randomness (a harvest cannot be replayed)",
        ],
    }
    table = [
        IkeSaKeys(
            spi_i,
            spi_r,
            keys["sk_ei"],
            keys["sk_er"],
            IKE_ENCRYPTION[(PROPOSAL.encr, PROPOSAL.encr_key_bits)],
            b"",
            b"",
            IKE_INTEGRITY[PROPOSAL.integ],
        )
    ]
    return vector, table


def harvest(outdir: Path, names: list[str], keep: Path | None = None) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        suite = CERT_SUITES[name]
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"ikr-harvest-{name}-", dir=keep))
        try:
            run = run_cert_suite(suite, work)
            vector, table = build_cert_vector(run)
            shutil.copy(run.pcap, outdir / f"{name}.pcap")
            (outdir / f"{name}.initiator.log").write_text(run.initiator_log)
            (outdir / f"{name}.responder.log").write_text(run.responder_log)
            (outdir / f"{name}.ikev2_decryption_table").write_text("".join(k.line() + "\n" for k in table))
            (outdir / f"{name}.ca.pem").write_text(cert_pem(run.pki.ca))
            for who in ("initiator", "responder"):
                (outdir / f"{name}.{who}.pem").write_text(cert_pem(run.pki.certs[who]))
                (outdir / f"{name}.{who}.key.pem").write_text(key_pem(run.pki.keys[who]))
            path = outdir / f"{name}.json"
            path.write_text(json.dumps(vector, indent=1) + "\n")
            written.append(path)
            print(
                f"{name}: {len(vector['messages'])} IKE messages; AUTH methods "
                f"{vector['auth']['initiator']['auth_method']}/{vector['auth']['responder']['auth_method']} "
                f"({vector['auth']['initiator']['charon_scheme']}) -> {path}"
            )
        finally:
            if keep is None:
                shutil.rmtree(work, ignore_errors=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--suite", action="append", choices=sorted(CERT_SUITES), help="default: all suites")
    parser.add_argument("--keep", type=Path, help="keep the work directories (logs, configs) under this path")
    args = parser.parse_args(argv)
    harvest(args.outdir, args.suite or list(CERT_SUITES), args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
