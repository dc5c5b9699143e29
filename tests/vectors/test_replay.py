"""A replay of the strongSwan harvests (tests/vectors/strongswan/) through the responder's core.

A responder :class:`~responder.core.endpoint.Endpoint` is given what strongSwan's responder had
drawn: ``random_bytes`` that yields the captured SPIr, Nr, the captured inbound ESP SPI and the
captured IV of the IKE_AUTH response (in the order the core draws them: an 8-octet IKE SPI and the
32-octet nonce in ``ike_sa_init.respond``, the 4-octet ESP SPI in ``child.respond_first_child``,
then the IV in ``IkeSa.protect``), and a key-exchange stand-in whose ``respond`` checks that the
peer value is the captured KEi and returns the captured KEr with the logged shared secret.  Fed the
captured IKE_SA_INIT and IKE_AUTH requests on the captured addresses and ports, it

* answers IKE_SA_INIT with the captured KE and Nonce, the captured SA payload (byte for byte for
  AES-GCM; for AES-CBC the same transforms, which strongSwan lists ENCR, INTEG, PRF, KE and we in
  Transform Type order) and the same NAT_DETECTION_DESTINATION_IP, and derives exactly the logged
  SK_* from them;
* verifies strongSwan's AUTH (over the captured request) and establishes the IKE SA and the Child
  SA, whose keys are the logged ones;
* answers IKE_AUTH with a message that unprotects with the logged SK_er (independently of the SA's
  own keys) to the captured IDr, SA (with the captured SPI), TSi and TSr, in the captured order.

Why the AUTH value differs, and how far it may.  The responder's AUTH signs its own IKE_SA_INIT
response (RFC 7296 §2.15: RealMessage2 | NonceIData | prf(SK_pr, IDr')).  That message is not
strongSwan's: strongSwan adds SIGNATURE_HASH_ALGORITHMS and MULTIPLE_AUTH_SUPPORTED, which our
responder does not send, and orders IKEV2_FRAGMENTATION_SUPPORTED (both send it) differently, and
with kernel-libipsec it sends a deliberately wrong NAT_DETECTION_SOURCE_IP hash (to fake a NAT
and move to UDP 4500), where ours is the true hash of 192.0.2.2:500; for AES-CBC the transform
order in the SA payload differs too.
:func:`_check_init_response` pins down exactly these differences and nothing else.  So a
byte-identical AUTH is impossible from our own message 2, and :func:`test_replay` asserts that

(a) our AUTH = psk_auth(prf, PSK, signed_octets(prf, OUR IKE_SA_INIT response, Ni, SK_pr, IDr)), and
(b) the same computation over the CAPTURED IKE_SA_INIT response gives exactly the captured AUTH
    (and the logged signed octets),

i.e. the only input that differs is RealMessage2; everything else in the two IKE_AUTH responses is
the same.

Byte-identical AUTH without a test hook: :attr:`IkeSa.init_response` is the SA's record of the
IKE_SA_INIT response it sent (what RealMessage2 is read from).  In
:func:`test_replay_with_strongswans_message_2` the test overwrites that record with the captured
response between the two exchanges, as if our core had sent strongSwan's message 2 byte for byte.
Then our IKE_AUTH response carries the captured AUTH, and, with the captured IV injected, it is the
captured message byte for byte for AES-GCM.  For AES-CBC it differs only in the padding octets:
strongSwan pads with random octets, our core with zeros (RFC 7296 §3.14 allows any); the pad
length, the unpadded plaintext and the message length are the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from ipaddress import ip_address
from pathlib import Path as FsPath
from typing import Any, TypeVar

import attrs
import pytest

from responder.core import transforms
from responder.core.auth import psk_auth, signed_octets
from responder.core.config import (
    ChildConfig,
    Config,
    EspProposal,
    Identity,
    IdPattern,
    IkeProposal,
    PeerConfig,
    Secret,
    TrafficSelectorPolicy,
)
from responder.core.endpoint import Endpoint
from responder.core.enums import (
    EncrId,
    ExchangeType,
    IdType,
    IntegId,
    KeyExchangeId,
    NotifyType,
    PrfId,
    TransformType,
)
from responder.core.events import ChildSaEstablished, Event, IkeSaEstablished, RequestAnswered
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.messages import Message, decode_message
from responder.core.path import Path, Transport
from responder.core.payloads import (
    AuthPayload,
    EncryptedPayload,
    IdrPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    Transform,
    TsiPayload,
    TsrPayload,
)
from responder.core.sk_payload import SkProtection, decrypt, unprotect

VECTORS = FsPath(__file__).with_name("strongswan")
NAMES = sorted(p.stem for p in VECTORS.glob("*.json"))

P = TypeVar("P")


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def _load(name: str) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text())
    return vector


def _one(payloads: Sequence[Payload], cls: type[P]) -> P:
    found = [p for p in payloads if isinstance(p, cls)]
    assert len(found) == 1, f"{len(found)} {cls.__name__}"
    return found[0]


def _by_type(proposal: Proposal) -> tuple[Transform, ...]:
    return tuple(sorted(proposal.transforms, key=lambda t: int(t.transform_type)))


def _notify(payloads: Sequence[Payload], notify_type: NotifyType) -> NotifyPayload:
    found = [p for p in payloads if isinstance(p, NotifyPayload) and p.notify_type == notify_type]
    assert len(found) == 1, f"{len(found)} {notify_type.name}"
    return found[0]


def _path(m: dict[str, Any]) -> Path:
    """The path a captured request came on, as the responder sees it (local = its destination)."""
    src_address, _, src_port = m["src"].rpartition(":")
    dst_address, _, dst_port = m["dst"].rpartition(":")
    return Path(Transport.UDP, ip_address(dst_address), int(dst_port), ip_address(src_address), int(src_port))


@attrs.define(eq=False)
class ScriptedRandom:
    """``random_bytes`` that hands out prepared octets in order and insists on the sizes."""

    draws: list[bytes]

    def __call__(self, n: int) -> bytes:
        assert self.draws, f"unexpected draw of {n} octets"
        value = self.draws.pop(0)
        assert len(value) == n, f"drew {n} octets where {len(value)} were prepared"
        return value


@attrs.frozen
class CapturedKeyExchange(KeyExchangeFactory):
    """A responder-side key exchange that returns the harvested KEr and g^ir.

    ``respond`` checks the method and that the peer value is the captured KEi.  The
    inherited ``random_bytes`` refuses to be drawn from: the stand-in makes no key.
    """

    method: KeyExchangeId
    ke_i: bytes
    ke_r: bytes
    shared_secret: bytes
    calls: list[KeyExchangeId] = attrs.Factory(list)

    def respond(self, method: KeyExchangeId, peer_value: bytes) -> tuple[bytes, bytes]:
        assert method == self.method
        assert peer_value == self.ke_i
        self.calls.append(method)
        return self.ke_r, self.shared_secret


def _never(n: int) -> bytes:
    raise AssertionError("the key-exchange stand-in must not draw randomness")


@attrs.frozen
class Replay:
    """The four captured messages of IKE_SA_INIT and IKE_AUTH, and what the harvest logged."""

    vector: dict[str, Any]
    init_request: dict[str, Any]
    init_response: dict[str, Any]
    auth_request: dict[str, Any]
    auth_response: dict[str, Any]

    @classmethod
    def load(cls, name: str) -> Replay:
        vector = _load(name)
        first = [m for m in vector["messages"] if m["ike_sa"] == 0][:4]
        kinds = [(m["exchange"], m["is_response"]) for m in first]
        assert kinds == [
            (ExchangeType.IKE_SA_INIT, False),
            (ExchangeType.IKE_SA_INIT, True),
            (ExchangeType.IKE_AUTH, False),
            (ExchangeType.IKE_AUTH, True),
        ]
        return cls(vector, *first)

    @property
    def ike_sa(self) -> dict[str, Any]:
        sa: dict[str, Any] = self.vector["ike_sas"][0]
        assert sa["created_by"] == "IKE_SA_INIT"
        return sa

    @property
    def child_sa(self) -> dict[str, Any]:
        child: dict[str, Any] = self.vector["child_sas"][0]
        assert child["created_by"].startswith("IKE_AUTH")
        return child

    @property
    def psk(self) -> bytes:
        return _h(self.vector["psk"])

    def prf(self) -> transforms.Prf:
        return transforms.prf(PrfId(self.vector["ike_transforms"]["prf"]))

    def sk_protection(self, side: str) -> SkProtection:
        """The protection of one direction, from the harvest's transform IDs and logged keys only."""
        t = self.vector["ike_transforms"]
        encryption = transforms.encryption(EncrId(t["encr"]), t["encr_key_bits"])
        integrity = transforms.integrity(IntegId(t["integ"])) if "integ" in t else None
        sa = self.ike_sa
        return SkProtection.create(encryption, integrity, _h(sa[f"sk_e{side}"]), _h(sa[f"sk_a{side}"]))

    def captured_iv(self) -> bytes:
        """The IV strongSwan drew for its IKE_AUTH response (the start of the SK payload body)."""
        sk = decode_message(_h(self.auth_response["raw"])).payloads[-1]
        assert isinstance(sk, EncryptedPayload)
        return sk.body[: self.sk_protection("r").encryption.iv_size]

    def config(self) -> Config:
        """The responder's side of the harvest: the suite's proposals, the peer, IDr, the tunnel."""
        id_i, id_r = self.vector["id_i"], self.vector["id_r"]
        assert id_i["type"] == id_r["type"] == IdType.ID_FQDN
        addresses = self.vector["addresses"]
        child = ChildConfig(
            "harvest",
            local_ts=(TrafficSelectorPolicy.parse(f"{addresses['inner_responder']}/32"),),
            remote_ts=(TrafficSelectorPolicy.parse(f"{addresses['inner_initiator']}/32"),),
            esp_proposals=(EspProposal.parse(self.vector["proposals"]["esp"]),),
        )
        peer = PeerConfig(
            "initiator",
            IdPattern.parse("fqdn:" + id_i["text"]),
            Secret(self.psk),
            local_id=Identity.parse("fqdn:" + id_r["text"]),
            children=(child,),
        )
        assert peer.remote_id.matches(Identity(id_i["type"], _h(id_i["data"])))
        assert peer.local_id == Identity(id_r["type"], _h(id_r["data"]))
        return Config(ike_proposals=(IkeProposal.parse(self.vector["proposals"]["ike"]),), peers=(peer,))

    def responder(self) -> tuple[Endpoint, ScriptedRandom, CapturedKeyExchange]:
        sa = self.ike_sa
        # After the response's IV, the rekey jitter of the IKE SA and of the Child SA (RFC 7296 §2.8.1).
        jitter = [b"\x80\x00", b"\x40\x00"]
        random_bytes = ScriptedRandom(
            [_h(sa["spi_r"]), _h(sa["nonce_r"]), _h(self.child_sa["spi_r"]), self.captured_iv(), *jitter]
        )
        kex = CapturedKeyExchange(
            _never, KeyExchangeId(sa["ke_method"]), _h(sa["ke_i"]), _h(sa["ke_r"]), _h(sa["shared_secret"])
        )
        return Endpoint(self.config(), random_bytes, kex), random_bytes, kex


def _events(endpoint: Endpoint) -> list[Event]:
    events: list[Event] = []
    while (event := endpoint.next_event()) is not None:
        events.append(event)
    return events


def _run_ike_sa_init(replay: Replay, endpoint: Endpoint, kex: CapturedKeyExchange) -> tuple[IkeSa, bytes]:
    endpoint.receive(_h(replay.init_request["raw"]), _path(replay.init_request), 0.0)
    (out,) = endpoint.messages_to_send()
    assert out.path == _path(replay.init_request)
    assert kex.calls == [kex.method]
    (sa,) = endpoint.sas
    assert sa.state is IkeSaState.INIT_DONE
    assert sa.init_response == out.data
    return sa, out.data


def _run_ike_auth(replay: Replay, endpoint: Endpoint, sa: IkeSa, random_bytes: ScriptedRandom) -> bytes:
    endpoint.receive(_h(replay.auth_request["raw"]), _path(replay.auth_request), 1.0)
    (out,) = endpoint.messages_to_send()
    assert out.path == _path(replay.auth_request)  # UDP 4500: answered where the request came from
    events = _events(endpoint)
    assert [type(e) for e in events if isinstance(e, IkeSaEstablished | ChildSaEstablished)] == [
        IkeSaEstablished,
        ChildSaEstablished,
    ]
    answered = [e for e in events if isinstance(e, RequestAnswered)]
    assert [(e.exchange, e.message_id) for e in answered] == [(ExchangeType.IKE_AUTH, 1)]
    assert sa.state is IkeSaState.ESTABLISHED
    assert random_bytes.draws == []  # SPIr, Nr, ESP SPI, IV: every prepared draw used, no other
    return out.data


def _check_init_response(replay: Replay, ours: bytes) -> None:
    """Our IKE_SA_INIT response beside strongSwan's: where they agree and the only places they differ."""
    theirs = _h(replay.init_response["raw"])
    our_message, their_message = decode_message(ours), decode_message(theirs)
    assert our_message.header == their_message.header  # SPIs, exchange, flags, Message ID
    for cls in (KePayload, NoncePayload):
        assert _one(our_message.payloads, cls) == _one(their_message.payloads, cls), cls.__name__
    # The SA payload: the same one proposal and transforms.  Ours lists them in Transform Type
    # order; strongSwan puts INTEG before PRF, so with an integrity transform the octets differ
    # (RFC 7296 §3.3 sets no order).
    (our_proposal,) = _one(our_message.payloads, SaPayload).proposals
    (their_proposal,) = _one(their_message.payloads, SaPayload).proposals
    assert attrs.evolve(our_proposal, transforms=_by_type(our_proposal)) == attrs.evolve(
        their_proposal, transforms=_by_type(their_proposal)
    )
    assert our_proposal.transforms == _by_type(our_proposal)
    if "integ" in replay.vector["ike_transforms"]:
        types = [t.transform_type for t in their_proposal.transforms]
        assert types == [TransformType.ENCR, TransformType.INTEG, TransformType.PRF, TransformType.KE]
    else:
        assert our_proposal == their_proposal
    sa = replay.ike_sa
    assert _one(our_message.payloads, KePayload).data == _h(sa["ke_r"])
    assert _one(our_message.payloads, NoncePayload).data == _h(sa["nonce_r"])
    destination = NotifyType.NAT_DETECTION_DESTINATION_IP
    assert _notify(our_message.payloads, destination) == _notify(their_message.payloads, destination)
    # NAT_DETECTION_SOURCE_IP: ours is the true hash of the responder's 192.0.2.2:500, strongSwan's
    # (kernel-libipsec) deliberately is not, so that both ends believe in a NAT.
    source = NotifyType.NAT_DETECTION_SOURCE_IP
    local = _path(replay.init_request)
    true_hash = hashlib.sha1(  # noqa: S324 (RFC 7296 §2.23)
        _h(sa["spi_i"]) + _h(sa["spi_r"]) + local.local_address.packed + local.local_port.to_bytes(2, "big")
    ).digest()
    assert _notify(our_message.payloads, source).data == true_hash
    assert _notify(their_message.payloads, source).data != true_hash
    # After SA, KE, Nonce and the two NAT notifies: the same CHILDLESS_IKEV2_SUPPORTED and
    # IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 §2.3: strongSwan's initiator offered it), and two
    # notifies only strongSwan sends.
    ours_rest, theirs_rest = our_message.payloads[5:], their_message.payloads[5:]
    assert all(isinstance(p, NotifyPayload) for p in (*ours_rest, *theirs_rest))
    childless = NotifyPayload(NotifyType.CHILDLESS_IKEV2_SUPPORTED)
    assert list(ours_rest) == [childless, NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)]
    assert [p.notify_type for p in theirs_rest if isinstance(p, NotifyPayload)] == [
        NotifyType.IKEV2_FRAGMENTATION_SUPPORTED,
        NotifyType.SIGNATURE_HASH_ALGORITHMS,
        NotifyType.CHILDLESS_IKEV2_SUPPORTED,
        NotifyType.MULTIPLE_AUTH_SUPPORTED,
    ]
    assert theirs_rest[2] == childless
    assert ours != theirs  # hence RealMessage2, and with it the responder's AUTH, differ


def _check_keys(replay: Replay, sa: IkeSa) -> None:
    logged = replay.ike_sa
    assert sa.keys is not None
    for field in ("sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr"):
        assert getattr(sa.keys, field) == _h(logged[field]), field


def _check_child(replay: Replay, sa: IkeSa) -> None:
    (child,) = sa.children.values()
    logged = replay.child_sa
    assert (child.inbound_spi, child.outbound_spi) == (_h(logged["spi_r"]), _h(logged["spi_i"]))
    assert child.params.keys.encryption_i == _h(logged["encr_i"])
    assert child.params.keys.integrity_i == _h(logged["integ_i"])
    assert child.params.keys.encryption_r == _h(logged["encr_r"])
    assert child.params.keys.integrity_r == _h(logged["integ_r"])


def _auth_response_inner(replay: Replay, data: bytes) -> Message:
    return unprotect(replay.sk_protection("r"), data)[0]


@pytest.mark.parametrize("name", NAMES)
def test_replay(name: str) -> None:
    replay = Replay.load(name)
    endpoint, random_bytes, kex = replay.responder()

    sa, our_init_response = _run_ike_sa_init(replay, endpoint, kex)
    assert (sa.spi_i, sa.spi_r) == (_h(replay.ike_sa["spi_i"]), _h(replay.ike_sa["spi_r"]))
    _check_init_response(replay, our_init_response)
    # The initiator's kernel-libipsec fakes its NAT_DETECTION_SOURCE_IP too: we see it "behind a
    # NAT"; its NAT_DETECTION_DESTINATION_IP is the true hash of our address and port.
    assert (sa.nat_detected_remote, sa.nat_detected_local) == (True, False)
    _check_keys(replay, sa)  # SKEYSEED and SK_* from the captured nonces, SPIs and g^ir

    ours = _run_ike_auth(replay, endpoint, sa, random_bytes)  # verifies strongSwan's AUTH on the way
    _check_child(replay, sa)
    assert sa.remote_id == replay.vector["id_i"]["text"]

    theirs = _h(replay.auth_response["raw"])
    our_inner = _auth_response_inner(replay, ours).payloads  # with the logged SK_er, not sa.keys
    their_inner = _auth_response_inner(replay, theirs).payloads
    # IDr, SA (our inbound SPI = the captured one, the suite's transforms), TSi, TSr: as captured,
    # in the captured order; only AUTH differs.
    id_r = replay.vector["id_r"]
    assert _one(our_inner, IdrPayload) == IdrPayload(id_r["type"], _h(id_r["data"]))
    assert [type(p) for p in our_inner] == [type(p) for p in their_inner]
    for cls in (IdrPayload, SaPayload, TsiPayload, TsrPayload):
        assert _one(our_inner, cls) == _one(their_inner, cls), cls.__name__
    our_auth, their_auth = _one(our_inner, AuthPayload), _one(their_inner, AuthPayload)
    assert our_auth.method == their_auth.method
    assert our_auth.data != their_auth.data

    # AUTH = prf(prf(PSK, "Key Pad for IKEv2"), RealMessage2 | Ni | prf(SK_pr, IDr')) (RFC 7296 §2.15)
    prf, logged = replay.prf(), replay.ike_sa
    idr = _one(our_inner, IdrPayload)

    def auth_over(message_2: bytes) -> bytes:
        octets = signed_octets(prf, message_2, _h(logged["nonce_i"]), _h(logged["sk_pr"]), idr)
        return psk_auth(prf, replay.psk, octets)

    # (a) ours signs our own IKE_SA_INIT response ...
    assert our_auth.data == auth_over(our_init_response)
    # (b) ... and the same computation over strongSwan's gives strongSwan's AUTH exactly.
    captured_init_response = _h(replay.init_response["raw"])
    captured_auth = _h(replay.vector["auth"]["responder"]["auth"])
    assert auth_over(captured_init_response) == their_auth.data == captured_auth
    assert signed_octets(prf, captured_init_response, _h(logged["nonce_i"]), _h(logged["sk_pr"]), idr) == _h(
        replay.vector["auth"]["responder"]["octets"]
    )
    assert len(ours) == len(theirs)


@pytest.mark.parametrize("name", NAMES)
def test_replay_with_strongswans_message_2(name: str) -> None:
    """With RealMessage2 = strongSwan's IKE_SA_INIT response, our IKE_AUTH response is strongSwan's.

    No hook in the core: the test overwrites the SA's record of the response it sent
    (:attr:`IkeSa.init_response`) with the captured one before IKE_AUTH, as if our core had sent
    strongSwan's octets.  AES-GCM: byte for byte the captured message.  AES-CBC: the same apart from
    the padding octets (strongSwan's are random, ours zero).
    """
    replay = Replay.load(name)
    endpoint, random_bytes, kex = replay.responder()
    sa, _ = _run_ike_sa_init(replay, endpoint, kex)
    sa.init_response = _h(replay.init_response["raw"])
    ours = _run_ike_auth(replay, endpoint, sa, random_bytes)
    theirs = _h(replay.auth_response["raw"])

    our_inner = _auth_response_inner(replay, ours).payloads
    assert our_inner == _auth_response_inner(replay, theirs).payloads
    assert _one(our_inner, AuthPayload).data == _h(replay.vector["auth"]["responder"]["auth"])
    assert len(ours) == len(theirs)
    protection = replay.sk_protection("r")
    if protection.encryption.is_aead:
        assert ours == theirs
        return
    # CBC: header, SK header and IV agree; the plaintext agrees up to the padding's contents.
    iv_end = 28 + 4 + protection.encryption.iv_size
    assert ours[:iv_end] == theirs[:iv_end]
    assert ours != theirs
    assert replay.auth_response["decrypted"]["plaintext"] == _plaintext(replay, ours).hex()


def _plaintext(replay: Replay, data: bytes) -> bytes:
    """The inner payloads' octets without padding, decrypted with the logged keys."""
    inner = decrypt(replay.sk_protection("r"), data).plaintext
    return inner
