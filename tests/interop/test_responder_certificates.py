"""Certificate authentication (RFC 7296 §3.6-3.8, RFC 7427, RFC 4945, RFC 8420) and IKE
fragmentation (RFC 7383) between real peers and the CLI-started responder.

Topology: as in test_responder_strongswan.py (charon on 192.0.2.1 with kernel-libipsec, the
responder on 192.0.2.2, UDP 500/4500) and test_responder_libreswan.py (pluto on 198.51.100.1
behind the espintcp stand-in, the responder on TCP 4500 or TLS 443).

The certificates come from the lab PKI command (``python -m responder certs``, the files a
user would make: RSA, ECDSA P-256, Ed25519 under a P-256 CA) or, where that command has no
switch for it (ECDSA P-384, a CA + intermediate + leaves chain of RSA-4096), from the test
PKI builder ``tests/fakes/pki.py`` with leaves valid around the real clock.  charon gets
the CA in ``swanctl/x509ca``, its certificate in ``x509`` and its key in ``private``; pluto
imports the client's PKCS#12 bundle into its NSS database and trusts the CA with
``certutil -t "CT,,"``.  The responder runs with ``--cert``/``--key``/``--ca`` and no
peers (lab certificate mode), or with a TOML file of ``[peers.NAME]`` with mixed
``auth``/``local_auth``.  Every capture is decrypted by tshark with the responder's own key
log (``--keylog``).

Interop facts these tests pin down are written beside the assertions that prove them and
summarised in docs/interop.md.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.fakes.pki import Authority
from tests.interop.conftest import Capture, TsharkHelper
from tests.interop.lab import Lab, Netns, Proc, run_command, wait_until
from tests.interop.libreswan import Libreswan, PlutoConn, redirect_tcp
from tests.interop.pcap import read_packets
from tests.interop.responder_proc import Responder, responder_command
from tests.interop.strongswan import StrongSwan, SwanChild, SwanConn
from tests.interop.tshark import find_all
from tests.interop.vici import ViciError

INI, RESP = "192.0.2.1", "192.0.2.2"
INNER_I, INNER_R = "10.250.1.1", "10.250.2.1"
PLUTO, PLUTO_RESP = "198.51.100.1", "198.51.100.2"
STANDIN_PORT = 14500
IKE_SA_INIT, IKE_AUTH = 34, 35
#: IKE payload types (RFC 7296 §3.2, RFC 7383 §2.5).
IDI, IDR, CERT, CERTREQ, SK, SKF = 35, 36, 37, 38, 46, 53
CERT_X509_SIGNATURE = 4
#: charon's proposals: tshark 4.0 decrypts AES-GCM (not ChaCha20-Poly1305).
PROPOSALS = "aes256gcm16-prfsha256-x25519"
PSK = "interop-certificates-psk"


# ---------------------------------------------------------------------------
# The PKI
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """The files of one lab PKI: a trust anchor, the responder's chain and key, a client's."""

    ca: Path  #: the root CA (PEM), the only trust anchor on both sides
    responder_cert: Path  #: leaf first, then intermediates (PEM)
    responder_key: Path
    client_cert: Path  #: the client's leaf alone (PEM)
    client_key: Path
    client_id: str  #: the client's IDi, a SAN of its certificate
    responder_id: str = "responder.lab"  #: our IDr, a SAN of our certificate
    intermediates: tuple[Path, ...] = ()  #: PEM files of the intermediate CAs, if any
    client_p12: Path | None = None
    client_p12_password: Path | None = None


def pki_command(directory: Path, key_type: str, *, rsa_bits: int = 2048, client: str = "alice") -> Pki:
    """The lab PKI made by ``python -m responder certs`` (as a user would make it)."""
    argv = [
        *responder_command(),
        "certs",
        "--dir",
        str(directory),
        "--key-type",
        key_type,
        "--client",
        client,
    ]
    if key_type == "rsa":
        argv += ["--rsa-bits", str(rsa_bits)]
    out = run_command(argv).stdout
    assert f"wrote {directory}/{client}.p12" in out, out
    return Pki(
        ca=directory / "ca.pem",
        responder_cert=directory / "responder.pem",
        responder_key=directory / "responder.key",
        client_cert=directory / f"{client}.pem",
        client_key=directory / f"{client}.key",
        client_id=f"{client}@lab",
        client_p12=directory / f"{client}.p12",
        client_p12_password=directory / f"{client}.p12.password",
    )


def _pem(*certificates: Any) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _key_pem(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def built_pki(directory: Path, key: str, *, intermediate: bool = False, root: str = "Interop Root CA") -> Pki:
    """A PKI of ``key`` keys (``p384``, ``rsa4096``, ...) from tests/fakes/pki.py, valid now.

    With ``intermediate``, the leaves are issued by an intermediate CA of the same key type,
    which travels in the CERT payloads (the peers trust only the root).
    """
    directory.mkdir(parents=True, exist_ok=True)
    index = 200 + sum(map(ord, root))  # another root name, another key (make_key caches per index)
    authority = Authority.root(f"C=XX, O=Lab, CN={root}", key=key, index=index)
    issuer = (
        authority.intermediate(f"C=XX, O=Lab, CN={root} Intermediate", key=key) if intermediate else authority
    )
    now = datetime.datetime.now(datetime.UTC)
    start, days = now - datetime.timedelta(hours=1), 30
    chain = [issuer.certificate] if intermediate else []
    responder_cert, responder_key = issuer.issue(
        "C=XX, O=Lab, CN=responder.lab",
        key=key,
        index=index + 1,
        dns=["responder.lab"],
        valid_from=start,
        days=days,
    )
    client_cert, client_key = issuer.issue(
        "C=XX, O=Lab, CN=alice@lab",
        key=key,
        index=index + 2,
        emails=["alice@lab"],
        valid_from=start,
        days=days,
    )
    files = {
        "ca.pem": _pem(authority.certificate),
        "responder.pem": _pem(responder_cert, *chain),
        "responder.key": _key_pem(responder_key),
        "alice.pem": _pem(client_cert),
        "alice.key": _key_pem(client_key),
        "intermediate.pem": _pem(*chain),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return Pki(
        ca=directory / "ca.pem",
        responder_cert=directory / "responder.pem",
        responder_key=directory / "responder.key",
        client_cert=directory / "alice.pem",
        client_key=directory / "alice.key",
        client_id="alice@lab",
        intermediates=(directory / "intermediate.pem",) if intermediate else (),
    )


def cert_args(pki: Pki, *, ca: Path | None = None) -> list[str]:
    """The responder's flags for ``pki``: our chain and key, the CA we trust (lab certificate mode)."""
    return ["--cert", str(pki.responder_cert), "--key", str(pki.responder_key), "--ca", str(ca or pki.ca)]


# ---------------------------------------------------------------------------
# What the wire shows
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WireMessage:
    """One IKE message from the capture: who sent it, its exchange and its first payload."""

    sender: str
    exchange: int
    response: bool
    first_payload: int
    length: int
    datagram: int  # UDP payload octets
    payloads: tuple[int, ...] = field(default=())  # the unencrypted payload chain


def wire_messages(pcap: Path) -> list[WireMessage]:
    """Every IKE message in a UDP capture (the non-ESP marker stripped on 4500; ESP skipped)."""
    found = []
    for packet in read_packets(pcap):
        if packet.proto != 17 or not {500, 4500} & {packet.sport, packet.dport}:
            continue
        data = packet.payload
        if 4500 in (packet.sport, packet.dport):
            if data[:4] != b"\0\0\0\0":
                continue  # ESP in UDP (or a NAT-T keepalive)
            data = data[4:]
        if len(data) < 28:
            continue
        chain, next_payload, offset = [], data[16], 28
        while next_payload and offset + 4 <= len(data):
            chain.append(next_payload)
            if next_payload in (SK, SKF):
                break
            next_payload, size = data[offset], int.from_bytes(data[offset + 2 : offset + 4], "big")
            offset += size
        found.append(
            WireMessage(
                packet.src,
                data[18],
                bool(data[19] & 0x20),
                data[16],
                int.from_bytes(data[24:28], "big"),
                len(packet.payload),
                tuple(chain),
            )
        )
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class DecryptedAuth:
    """One IKE_AUTH message as tshark decrypted it (reassembled first, if it came as SKF)."""

    response: bool
    payloads: list[int]  #: the inner payload types, in order
    cert_encodings: list[str]
    fragments: int  #: 0 for an SK payload, else Total Fragments
    length: int  #: the IKE message's Length (of this fragment, if one)


def decrypted_auth_messages(
    tshark: TsharkHelper, pcap: Path, keylog: Path, prefs: Sequence[str] = ()
) -> list[DecryptedAuth]:
    """Every IKE_AUTH message tshark decrypted with the responder's key log alone.

    tshark 4.0 decrypts each SKF fragment on its own (each must, or this fails) and shows the
    reassembled inner payloads in the last one (RFC 7383 §2.5); an SK payload shows them in
    its ``isakmp.enc.contained``.
    """
    result = []
    for packet in tshark.dissect(pcap, config_dir=keylog, prefs=prefs):
        for message in find_all(packet, "isakmp"):
            if not isinstance(message, dict) or int(message.get("isakmp.exchangetype", 0)) != IKE_AUTH:
                continue
            encrypted = message["isakmp.typepayload_tree"]
            assert isinstance(encrypted.get("isakmp.enc.decrypted"), dict), f"not decrypted: {message}"
            total = int(encrypted.get("isakmp.frag.total", 0))
            if total:
                if int(encrypted["isakmp.frag.number"]) != total:
                    continue
                inner = [int(v) for v in _as_list(encrypted.get("isakmp.typepayload", []))]
            else:
                contained = encrypted["isakmp.enc.decrypted"].get("isakmp.enc.contained")
                inner = (
                    [int(v) for v in _as_list(contained.get("isakmp.typepayload", []))] if contained else []
                )
            result.append(
                DecryptedAuth(
                    response=message["isakmp.flags_tree"]["isakmp.flag_r"] == "1",
                    payloads=inner,
                    cert_encodings=[str(v) for v in find_all(encrypted, "isakmp.cert.encoding")],
                    fragments=total,
                    length=int(message["isakmp.length"]),
                )
            )
    return result


# ---------------------------------------------------------------------------
# strongSwan against the responder
# ---------------------------------------------------------------------------


@dataclass
class CertRun:
    charon: StrongSwan
    charon_ns: Netns
    responder: Responder
    capture: Capture
    initiate_log: list[str]


def run_charon(
    pki: Pki,
    *,
    netns: Lab,
    strongswan: Callable[..., StrongSwan],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
    name: str,
    responder_args: list[str] | None = None,
    auth: str = "pubkey",
    remote_auth: str | None = None,
    psk: str | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    ca_certs: list[Path] | None = None,
    x509: list[Path] | None = None,
    initiate: bool = True,
) -> CertRun:
    """charon (client ``pki.client_id``) initiates over UDP to the responder (``pki.responder_id``)."""
    ini_ns, resp_ns = netns.pair(f"{INI}/24", f"{RESP}/24", hints=("charon", "resp"))
    ini_ns.add_local_addresses([f"{INNER_I}/32"])
    capture = tshark.capture(resp_ns, "veth0", name)
    resp = responder(
        resp_ns,
        udp=[f"{RESP}:500", f"{RESP}:4500"],
        psk=None,
        local_id=None,
        extra_args=responder_args if responder_args is not None else cert_args(pki),
    )
    charon = strongswan(ini_ns, "charon")
    charon.configure(
        SwanConn(
            local_addrs=INI,
            remote_addrs=RESP,
            local_id=pki.client_id,
            remote_id=pki.responder_id,
            auth=auth,
            remote_auth=remote_auth,
            psk=psk,
            local_cert=client_cert or (pki.client_cert if auth == "pubkey" else None),
            local_key=client_key or (pki.client_key if auth == "pubkey" else None),
            ca_certs=ca_certs if ca_certs is not None else [pki.ca],
            proposals=PROPOSALS,
            children=[
                SwanChild(esp_proposals="aes256gcm16", local_ts=f"{INNER_I}/32", remote_ts=f"{INNER_R}/32")
            ],
        )
    )
    for path in x509 or ():  # certificates charon holds without trusting them (intermediates)
        shutil.copy(path, charon.swanctl_dir / "x509" / path.name)
    charon.start()
    log = charon.initiate(child="lab") if initiate else []
    return CertRun(charon, ini_ns, resp, capture, log)


def _charon_child_installed(run: CertRun, responder_id: str) -> dict[str, Any]:
    # list-sas with noblock skips an IKE SA a charon thread still holds (right after initiate).
    sa: dict[str, Any] = wait_until(
        lambda: run.charon.list_sas().get("lab"), 5, "charon's list-sas to show the IKE SA"
    )
    assert sa["state"] == "ESTABLISHED" and sa["remote-id"] == responder_id, sa
    (child,) = sa["child-sas"].values()
    assert child["state"] == "INSTALLED" and child["encap"] == "yes", child
    assert child["local-ts"] == [f"{INNER_I}/32"] and child["remote-ts"] == [f"{INNER_R}/32"]
    (established,) = run.responder.lines(r"Child SA established: ESP in")
    assert f"ESP in {child['spi-out']} out {child['spi-in']} tunnel" in established
    return sa


def _scheme(log: str, who: str) -> str:
    """The scheme charon logged for an authentication (``authentication of 'X' with S successful``)."""
    match = re.search(rf"authentication of '{re.escape(who)}' with (\S+) successful", log)
    assert match is not None, f"no successful authentication of {who!r} in charon's log"
    return match.group(1)


def _own_scheme(log: str, who: str) -> str:
    match = re.search(rf"authentication of '{re.escape(who)}' \(myself\) with (\S+) successful", log)
    assert match is not None, f"charon did not authenticate itself as {who!r}"
    return match.group(1)


KEY_TYPES = {
    # id: (how to make the PKI, charon's scheme for our signature, charon's own scheme)
    "rsa2048": ("rsa", "RSA_EMSA_PSS_SHA2_256_SALT_32", "RSA_EMSA_PKCS1_SHA2_256"),
    "ecdsa-p256": ("ecdsa", "ECDSA_WITH_SHA256_DER", "ECDSA_WITH_SHA256_DER"),
    "ecdsa-p384": ("p384", "ECDSA_WITH_SHA384_DER", "ECDSA_WITH_SHA384_DER"),
    "ed25519": ("ed25519", "ED25519", "ED25519"),
}


#: What the responder logs for the peer's signature and for its own, per key type.
RESPONDER_SCHEMES = {
    "rsa2048": ("RSASSA-PKCS1-v1_5 with SHA2_256", "RSASSA-PSS with SHA2_256 (RFC 7427)"),
    "ecdsa-p256": ("ECDSA with SHA2_256", "ECDSA with SHA2_256 (RFC 7427)"),
    "ecdsa-p384": ("ECDSA with SHA2_384", "ECDSA with SHA2_384 (RFC 7427)"),
    "ed25519": ("Ed25519 with IDENTITY", "Ed25519 with IDENTITY (RFC 7427)"),
}


def _keylog(resp: Responder) -> Path:
    assert resp.keylog_dir is not None
    return resp.keylog_dir


def check_certificate_exchange(run: CertRun, pki: Pki) -> None:
    """charon's log: our CERTREQ and SIGNATURE_HASH_ALGORITHMS in IKE_SA_INIT (RFC 7296 §3.7,
    RFC 7427 §4), its CERT and CERTREQ in IKE_AUTH, our certificate received and verified."""
    log = run.charon.log_text()
    assert re.search(r"parsed IKE_SA_INIT response 0 \[[^]]* CERTREQ N\(HASH_ALG\) N\(FRAG_SUP\) \]", log)
    assert "received SIGNATURE_HASH_ALGORITHMS notify" in log
    ca = _ca_subject(pki)
    assert f'received cert request for "{ca}"' in log
    assert f'sending cert request for "{ca}"' in log
    assert re.search(r"generating IKE_AUTH request 1 \[ IDi (CERT )+N\(INIT_CONTACT\) CERTREQ IDr AUTH ", log)
    assert re.search(r"parsed IKE_AUTH response 1 \[ IDr (CERT )+AUTH SA TSi TSr \]", log)
    assert re.search(r'received end entity cert "[^"]*CN=responder\.lab"', log)
    assert f'using trusted ca certificate "{ca}"' in log
    request = run.responder.lines(r"IKE_AUTH #1 request accepted")
    assert request and re.search(r"\[ IDi (CERT )+N\(INITIAL_CONTACT\) CERTREQ IDr AUTH ", request[0]), (
        request
    )
    response = run.responder.lines(r"IKE_AUTH #1 response sent")
    assert response and re.search(r"\[ IDr (CERT )+AUTH SA TSi TSr \]", response[0]), response


def _ca_subject(pki: Pki) -> str:
    """The CA's subject as charon prints it (RFC 4514 order reversed: ``O=.., CN=..``)."""
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    return ", ".join(reversed(ca.subject.rfc4514_string().split(",")))


def make_pki(tmp_path: Path, kind: str) -> Pki:
    if kind in ("rsa", "ecdsa", "ed25519"):
        return pki_command(tmp_path / "pki", kind)
    return built_pki(tmp_path / "pki", kind)


@pytest.mark.interop
@pytest.mark.hard_timeout(60)
@pytest.mark.parametrize("key_type", list(KEY_TYPES))
def test_c1_c2_strongswan_mutual_certificates(
    key_type: str,
    netns: Lab,
    strongswan: Callable[..., StrongSwan],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
    tmp_path: Path,
) -> None:
    """C1, C2: charon and the responder authenticate each other with certificates of one key
    type, CERTREQ both ways, our CERT in IKE_AUTH, the Child SA installed; tshark decrypts
    IKE_AUTH with our key log and sees both CERT payloads (X.509 Certificate - Signature)."""
    kind, our_scheme, charon_scheme = KEY_TYPES[key_type]
    pki = make_pki(tmp_path, kind)
    run = run_charon(
        pki, netns=netns, strongswan=strongswan, responder=responder, tshark=tshark, name=f"cert-{key_type}"
    )
    assert any("CHILD_SA lab{1} established" in line for line in run.initiate_log), run.initiate_log
    _charon_child_installed(run, pki.responder_id)
    log = run.charon.log_text()
    check_certificate_exchange(run, pki)
    assert _scheme(log, pki.responder_id) == our_scheme
    assert _own_scheme(log, pki.client_id) == charon_scheme
    (auth_line,) = run.responder.answered("IKE_AUTH")
    assert f"IKE SA established with {pki.client_id} (peer '%lab-pubkey', certificate " in auth_line
    assert f"{RESPONDER_SCHEMES[key_type][0]}; we signed with {RESPONDER_SCHEMES[key_type][1]}" in auth_line

    # The wire: CERTREQ in our IKE_SA_INIT response; IKE_AUTH both ways.  An ECDSA or Ed25519
    # IKE_AUTH fits 1280 octets; an RSA-2048 one (certificate + 256-octet AUTH) does not and
    # goes as SKF fragments both ways (RFC 7383).
    pcap = run.capture.stop()
    messages = wire_messages(pcap)
    (init_response,) = [m for m in messages if m.exchange == IKE_SA_INIT and m.response]
    assert CERTREQ in init_response.payloads
    auth_first = {m.first_payload for m in messages if m.exchange == IKE_AUTH}
    fragmented = key_type == "rsa2048"
    assert auth_first == ({SKF} if fragmented else {SK}), auth_first
    # tshark, with nothing but our key log, decrypts (and reassembles) IKE_AUTH both ways:
    # each carries one CERT of encoding 4 (X.509 Certificate - Signature); the request a CERTREQ.
    auths = decrypted_auth_messages(tshark, pcap, _keylog(run.responder))
    assert [a.response for a in auths] == [False, True], auths
    for auth in auths:
        assert auth.payloads.count(CERT) == 1 and auth.cert_encodings == [str(CERT_X509_SIGNATURE)], auth
        assert (CERTREQ in auth.payloads) is (not auth.response), auth
        assert (auth.fragments >= 2) is fragmented, auth
    assert run.responder.stop() == 0


@pytest.mark.interop
@pytest.mark.hard_timeout(120)
def test_e1_e5_rsa4096_chain_fragments_ike_auth_both_ways(
    netns: Lab,
    strongswan: Callable[..., StrongSwan],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
    tmp_path: Path,
) -> None:
    """E1-E5 (RFC 7383), C3: an RSA-4096 root, intermediate and leaves.  Both sides trust only
    the root, so each sends its intermediate after its leaf; IKE_AUTH is then far above 1280
    octets both ways and goes as SKF fragments (charon's ``fragmentation = yes``, the swanctl
    default; our default ``fragment_size`` 1280): every datagram fits 1280 octets, none is
    IP-fragmented, and the SA comes up."""
    pki = built_pki(tmp_path / "pki", "rsa4096", intermediate=True)
    run = run_charon(
        pki,
        netns=netns,
        strongswan=strongswan,
        responder=responder,
        tshark=tshark,
        name="cert-rsa4096-chain",
        # Only the root is a trust anchor (x509ca); charon holds its intermediate untrusted in
        # x509/ (it sends it after its leaf, RFC 7296 §3.6) and must take ours from our CERTs.
        x509=list(pki.intermediates),
    )
    assert any("CHILD_SA lab{1} established" in line for line in run.initiate_log), run.initiate_log
    _charon_child_installed(run, pki.responder_id)
    log = run.charon.log_text()
    assert "fragmentation = 2" in log  # swanctl's default "yes" (FRAGMENTATION_YES)
    # E1: both announced IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT.
    assert re.search(r"generating IKE_SA_INIT request 0 \[[^]]*N\(FRAG_SUP\)", log)
    assert re.search(r"parsed IKE_SA_INIT response 0 \[[^]]*N\(FRAG_SUP\)", log)
    # E2/E3: charon split its request; it reassembled our response; the whole message then
    # carried our leaf and our intermediate (two CERT payloads).
    split = re.search(r"splitting IKE message \((\d+) bytes\) into (\d+) fragments", log)
    assert split is not None and int(split.group(1)) > 2500 and int(split.group(2)) >= 3, log
    # charon's workers may take the fragments in any order: the last one taken completes it
    reassembled = re.search(
        r"received fragment #\d+ of (\d+), reassembled fragmented IKE message \((\d+) bytes\)", log
    )
    assert reassembled is not None and int(reassembled.group(2)) > 2500, log
    assert re.search(r"parsed IKE_AUTH response 1 \[ IDr CERT CERT AUTH SA TSi TSr \]", log), log
    assert re.search(r'received issuer cert "[^"]*CN=Interop Root CA Intermediate"', log), log
    assert 'sending issuer cert "C=XX, O=Lab, CN=Interop Root CA Intermediate"' in log
    assert "reached self-signed root ca with a path length of 1" in log
    assert _scheme(log, pki.responder_id) == "RSA_EMSA_PSS_SHA2_256_SALT_32"
    assert "key: 4096 bit RSA" in log
    check_certificate_exchange(run, pki)
    # Our side: charon's request held its leaf and its intermediate, and the chain checked
    # out to the root.  charon signs RSASSA-PKCS1-v1_5 (its default, rsa_pss = no), with
    # SHA-384 for a 4096-bit key; we sign RSASSA-PSS with SHA-256.
    assert _own_scheme(log, pki.client_id) == "RSA_EMSA_PKCS1_SHA2_384"
    request = run.responder.lines(r"IKE_AUTH #1 request accepted")
    assert "[ IDi CERT CERT N(INITIAL_CONTACT) CERTREQ IDr AUTH " in request[0], request
    (auth_line,) = run.responder.answered("IKE_AUTH")
    assert "RSASSA-PKCS1-v1_5 with SHA2_384; we signed with RSASSA-PSS with SHA2_256" in auth_line

    # The capture: E4, E5 -- both sides sent IKE_AUTH only as SKF (payload 53) fragments,
    # every one within 1280 octets of IP datagram (UDP payload + 28), numbered 1..N.
    pcap = run.capture.stop()
    messages = wire_messages(pcap)
    auth = [m for m in messages if m.exchange == IKE_AUTH]
    requests = [m for m in auth if not m.response and m.sender == INI]
    responses = [m for m in auth if m.response and m.sender == RESP]
    assert len(requests) >= 3 and len(responses) >= 3, auth
    assert {m.first_payload for m in auth} == {SKF}, auth
    assert all(m.datagram + 28 <= 1280 for m in auth), [m.datagram for m in auth]
    assert max(m.datagram for m in responses) + 28 > 1000  # we filled the fragments
    # tshark reassembles and decrypts both messages with our key log: leaf and intermediate.
    auths = decrypted_auth_messages(tshark, pcap, _keylog(run.responder))
    assert [a.response for a in auths] == [False, True], auths
    assert [a.fragments for a in auths] == [len(requests), len(responses)], auths
    for auth in auths:
        assert auth.cert_encodings == [str(CERT_X509_SIGNATURE)] * 2, auth
        assert auth.payloads[:3] == ([IDI, CERT, CERT] if not auth.response else [IDR, CERT, CERT]), auth
    assert run.responder.stop() == 0


def _write_toml(path: Path, pki: Pki, peer: dict[str, str]) -> Path:
    body = "\n".join(f'{key} = "{value}"' for key, value in peer.items())
    path.write_text(
        f"""[responder]
id = "{pki.responder_id}"

[certificates]
cert = "{pki.responder_cert}"
key = "{pki.responder_key}"
cacerts = ["{pki.ca}"]

[peers.alice]
remote_id = "{pki.client_id}"
{body}
"""
    )
    return path


MIXED = {
    # id: (the responder's configuration, charon's local auth, charon's remote auth)
    "client-psk-responder-cert": ({"auth": "psk", "local_auth": "pubkey", "psk": PSK}, "psk", "pubkey"),
    "client-cert-responder-psk": ({"auth": "pubkey", "local_auth": "psk", "psk": PSK}, "pubkey", "psk"),
    "lab-psk-and-cert": (None, "psk", "pubkey"),
}


@pytest.mark.interop
@pytest.mark.hard_timeout(60)
@pytest.mark.parametrize("case", list(MIXED))
def test_c1_mixed_psk_and_certificate_authentication(
    case: str,
    netns: Lab,
    strongswan: Callable[..., StrongSwan],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
    tmp_path: Path,
) -> None:
    """C1 (RFC 7296 §2.15: each end picks its own method): PSK one way, a certificate signature
    the other, from ``[peers.alice] auth``/``local_auth`` in a TOML file; and lab mode with
    ``--psk`` and ``--cert``, where a PSK initiator that sends a CERTREQ gets our signature."""
    peer, charon_auth, charon_remote = MIXED[case]
    pki = pki_command(tmp_path / "pki", "ecdsa")
    if peer is None:
        args = [*cert_args(pki), "--psk", PSK, "--id", pki.responder_id]
    else:
        args = ["--config", str(_write_toml(tmp_path / "responder.toml", pki, peer))]
    run = run_charon(
        pki,
        netns=netns,
        strongswan=strongswan,
        responder=responder,
        tshark=tshark,
        name=f"mixed-{case}",
        responder_args=args,
        auth=charon_auth,
        remote_auth=charon_remote,
        psk=PSK,
    )
    assert any("CHILD_SA lab{1} established" in line for line in run.initiate_log), run.initiate_log
    _charon_child_installed(run, pki.responder_id)
    log = run.charon.log_text()
    (auth_line,) = run.responder.answered("IKE_AUTH")
    if charon_auth == "psk":
        assert f"authentication of '{pki.client_id}' (myself) with pre-shared key" in log
        assert _scheme(log, pki.responder_id) == "ECDSA_WITH_SHA256_DER"
        assert re.search(r"parsed IKE_AUTH response 1 \[ IDr CERT AUTH ", log), log
        # charon asked for our certificate (it authenticates us by one): CERTREQ in IKE_AUTH.
        assert re.search(r"generating IKE_AUTH request 1 \[ IDi N\(INIT_CONTACT\) CERTREQ IDr AUTH ", log), (
            log
        )
        assert "we signed with ECDSA with SHA2_256" in auth_line, auth_line
    else:
        assert _own_scheme(log, pki.client_id) == "ECDSA_WITH_SHA256_DER"
        assert f"authentication of '{pki.responder_id}' with pre-shared key successful" in log
        assert re.search(r"generating IKE_AUTH request 1 \[ IDi CERT ", log), log
        assert re.search(r"parsed IKE_AUTH response 1 \[ IDr AUTH ", log), log  # no CERT with a PSK
        assert "certificate CN=alice" in auth_line, auth_line
    peer_name = "'%lab'" if peer is None else "'alice'"
    assert f"IKE SA established with {pki.client_id} (peer {peer_name}" in auth_line, auth_line
    assert run.responder.stop() == 0


@pytest.mark.interop
@pytest.mark.hard_timeout(60)
def test_c2_strongswan_certificate_from_unknown_ca_is_refused(
    netns: Lab,
    strongswan: Callable[..., StrongSwan],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
    tmp_path: Path,
) -> None:
    """C2 (RFC 7296 §2.21.2, RFC 4945 §5.1): charon presents a certificate of a CA we do not
    trust: AUTHENTICATION_FAILED, our log names the unknown CA, no SA on either side."""
    pki = pki_command(tmp_path / "pki", "ecdsa")
    rogue = pki_command(tmp_path / "rogue", "ecdsa")
    run = run_charon(
        pki,
        netns=netns,
        strongswan=strongswan,
        responder=responder,
        tshark=tshark,
        name="unknown-ca",
        client_cert=rogue.client_cert,
        client_key=rogue.client_key,
        ca_certs=[pki.ca],
        initiate=False,
    )
    with pytest.raises(ViciError, match="failed"):
        run.charon.initiate(child="lab", timeout=15)
    log = run.charon.log_text()
    assert "received AUTHENTICATION_FAILED notify error" in log
    assert re.search(r"parsed IKE_AUTH response 1 \[ N\(AUTH_FAILED\) \]", log), log
    refused = run.responder.wait_for(r"[^\n]*IKE_AUTH #1 [^\n]*unknown CA[^\n]*", 5).group(0)
    assert "AUTHENTICATION_FAILED" in refused and "CN=alice" in refused, refused
    assert not run.responder.lines(r"IKE SA established")
    assert run.charon.list_sas() == {}
    assert run.responder.stop() == 0


# ---------------------------------------------------------------------------
# libreswan over TCP and TLS
# ---------------------------------------------------------------------------


def _nss_import(nssdir: Path, pki: Pki) -> str:
    """The client's PKCS#12 bundle into a new NSS database, its CA trusted for peers ("CT,,")."""
    assert pki.client_p12 is not None and pki.client_p12_password is not None
    db = f"sql:{nssdir}"
    nssdir.mkdir(parents=True, exist_ok=True)
    run_command(["certutil", "-N", "-d", db, "--empty-password"])
    run_command(["pk12util", "-i", str(pki.client_p12), "-d", db, "-w", str(pki.client_p12_password)])
    run_command(["certutil", "-M", "-d", db, "-n", "ikev2-responder lab CA", "-t", "CT,,"])
    return run_command(["certutil", "-L", "-d", db]).stdout


def _fingerprint(pem: Path) -> str:
    der = x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


LIBRESWAN_CASES = {
    # id: (transport, our rsa_pss, how pluto logs our signature)
    "tcp": ("tcp", True, "3072-bit RSASSA-PSS with SHA2_256"),
    "tls": ("tls", True, "3072-bit RSASSA-PSS with SHA2_256"),
    "tcp-pkcs1": ("tcp", False, "3072-bit PKCS#1 1.5 RSA with SHA2_256"),
}


@pytest.mark.interop
@pytest.mark.hard_timeout(60)
@pytest.mark.parametrize("case", list(LIBRESWAN_CASES))
def test_c1_a57_libreswan_rsa_certificates_over_tcp_and_tls(
    case: str,
    netns: Lab,
    libreswan: Callable[..., Libreswan],
    standin: Callable[..., Proc],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
    tmp_path: Path,
) -> None:
    """C1, A57: pluto authenticates with the RSA-3072 certificate of the lab PKI command from
    its NSS database (``authby=rsasig``, ``leftcert=``) over RFC 9329 TCP (through the
    espintcp stand-in) and over TLS on 443 (the stand-in wraps the stream and checks our
    certificate, the one ``--cert`` also gives IKE), and verifies ours: RSASSA-PSS by default,
    PKCS#1 v1.5 with ``[certificates] rsa_pss = false`` (lab mode from the TOML file,
    ``[lab] pubkey = true``).  IKE_AUTH is larger than 1280 octets both ways and is not
    fragmented over TCP (RFC 9329 §7.5, A57); tshark decrypts it with our key log and shows
    the CERT payloads."""
    transport, rsa_pss, our_signature = LIBRESWAN_CASES[case]
    port = {"tcp": 4500, "tls": 443}[transport]
    pki = pki_command(tmp_path / "pki", "rsa", rsa_bits=3072)
    if rsa_pss:
        args = cert_args(pki)
    else:
        config = tmp_path / "responder.toml"
        config.write_text(
            f"""[certificates]
cert = "{pki.responder_cert}"
key = "{pki.responder_key}"
cacerts = ["{pki.ca}"]
rsa_pss = false

[lab]
pubkey = true
"""
        )
        args = ["--config", str(config)]
    ini_ns, resp_ns = netns.pair(f"{PLUTO}/24", f"{PLUTO_RESP}/24", hints=("pluto", "resp"))
    capture = tshark.capture(resp_ns, "veth0", f"libreswan-cert-{case}")
    resp = responder(
        resp_ns, **{transport: [f"{PLUTO_RESP}:{port}"]}, psk=None, local_id="responder.lab", extra_args=args
    )
    pluto = libreswan(
        ini_ns, "pluto", impairs=("tcp-skip-setsockopt-espintcp", "omit-v2-ike-auth-child"), debug="base"
    )
    listing = _nss_import(pluto.nssdir, pki)
    assert re.search(r"^alice\s+u,u,u$", listing, re.M), listing
    assert re.search(r"^ikev2-responder lab CA\s+CT,,\s*$", listing, re.M), listing
    pluto.configure(
        PlutoConn(
            left=PLUTO,
            right=PLUTO_RESP,
            leftid="alice@lab",
            rightid="@responder.lab",
            authby="rsasig",
            psk=None,
            tcp_remoteport=port,
            extra={"leftcert": "alice", "rightca": "%same"},
        )
    )
    pluto.start()
    redirect_tcp(ini_ns, port, STANDIN_PORT)
    fingerprint = _fingerprint(pki.responder_cert)
    proc = standin(
        ini_ns,
        role="initiator",
        listen=f"0.0.0.0:{STANDIN_PORT}",
        tls=transport == "tls",
        tls_fingerprint=fingerprint if transport == "tls" else None,
    )
    pluto.initiate("lab")
    wait_until(pluto.ike_established, 15, "pluto's IKE SA to be established")
    states = pluto.showstates()
    assert f'"lab":{port}(tcp) STATE_V2_ESTABLISHED_IKE_SA' in states, states
    log = pluto.log_text()
    # pluto verified our signature and our certificate against the CA in its NSS database.
    assert (
        f"initiator established IKE SA; authenticated peer '{our_signature}' digital signature using "
        "peer certificate '@responder.lab' issued by CA 'O=ikev2-responder lab, CN=ikev2-responder lab CA'"
    ) in log, log
    # pluto signs RSASSA-PSS (authby=rsasig prefers it) with SHA-512, the first hash of ours it takes.
    (auth_line,) = resp.answered("IKE_AUTH")
    ours = "RSASSA-PSS with SHA2_256 (RFC 7427)" if rsa_pss else "RSASSA-PKCS1-v1_5 with SHA2_256 (RFC 7427)"
    assert (
        "IKE SA established with alice@lab (peer '%lab-pubkey', certificate CN=alice,O=ikev2-responder lab, "
        f"RSASSA-PSS with SHA2_512; we signed with {ours}), childless (RFC 6023)"
    ) in auth_line, auth_line
    # CERTREQ both ways: ours in IKE_SA_INIT, pluto's in IKE_AUTH; our CERT in the response.
    (init_sent,) = resp.lines(r"IKE_SA_INIT #0 response sent")
    assert " CERTREQ " in init_sent and "N(SIGNATURE_HASH_ALGORITHMS)" in init_sent, init_sent
    assert "IKE_AUTH #1 request accepted [ IDi CERT CERTREQ IDr AUTH ]" in resp.output()
    assert "IKE_AUTH #1 response sent [ IDr CERT AUTH ]" in resp.output()
    if transport == "tls":
        assert f"server certificate fingerprint verified: {fingerprint}" in proc.log_text()
    assert not resp.lines(r"message dropped|refused with|Traceback")

    # The capture, decrypted with our key log (and our TLS secrets): each IKE_AUTH is one SK
    # message over 1280 octets, unfragmented (A57), with one CERT of encoding 4.
    pcap = capture.stop()
    prefs = [f"tls.keylog_file:{resp.tls_keylog}"] if transport == "tls" else []
    auths = decrypted_auth_messages(tshark, pcap, _keylog(resp), prefs)
    assert [a.response for a in auths] == [False, True], auths
    for auth in auths:
        assert auth.fragments == 0 and auth.length > 1280, auth
        assert auth.payloads.count(CERT) == 1 and auth.cert_encodings == [str(CERT_X509_SIGNATURE)], auth
        assert (CERTREQ in auth.payloads) is (not auth.response), auth
    assert resp.stop() == 0
