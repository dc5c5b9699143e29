"""Every state, every exchange, as request and as response: real messages and Hypothesis mutations.

Strategy (h2's ``test_state_machines.py``, on real traffic): for each of four suites a reference
run of :class:`~tests.fakes.pair.Pair` captures the messages of the four exchanges (IKE_SA_INIT,
IKE_AUTH, INFORMATIONAL, and CREATE_CHILD_SA built by hand) and the stateless IKE_SA_INIT
refusals.  Protected messages are opened with the SA's keys, so a template is a header and the
*plaintext* payloads.  Each example rebuilds an SA in one state (seeded, so with the reference
run's SPIs and keys), takes templates, mutates them (header fields, the payload list, field
values through ``attrs.evolve``, raw plaintext octets), protects them again with the sender's
keys, so that the handlers and not only the ICV check see the mutations, and feeds them to the
:class:`~responder.core.endpoint.Endpoint`.  After every message (:func:`check`):

* nothing escapes ``Endpoint.receive``;
* every queued message decodes, and opens with the keys of the SA that sent it;
* every event is one of :data:`~responder.core.events.Event`'s types;
* the SA moved along its role's states only, and a closed SA is gone from the endpoint;
* unauthenticated input (no Encrypted payload, broken outer chain, bad ICV) changes nothing
  and gets no answer (RFC 7296 §2.21.2, §3.10.1; the only exception is the unauthenticated
  INVALID_MAJOR_VERSION of §2.5);
* a response answers the request that was fed (same Message ID and exchange), and is the
  cached response byte for byte, the normal answer, or one error notify of the RFC's kinds
  (fatal ones close the SA, §2.21.2, §2.21.3);
* an authenticated request inside the window of an exchange the state handles always gets
  exactly one response (§1.4, §2.21.3).
"""

from __future__ import annotations

import functools
import re
import typing
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Any

import attrs
import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responder.core import dispatch
from responder.core.config import (
    AddressPool,
    ChildConfig,
    Config,
    EspProposal,
    IdPattern,
    Limits,
    PeerConfig,
    Secret,
)
from responder.core.endpoint import Endpoint
from responder.core.enums import (
    ConfigAttributeType,
    ConfigType,
    EncrId,
    EsnId,
    ExchangeType,
    KeyExchangeId,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformType,
)
from responder.core.errors import DecodeError, IntegrityCheckFailed, LocalError
from responder.core.events import (
    ChildSaEstablished,
    Event,
    IkeSaClosed,
    MessageDropped,
    RetransmissionAnswered,
)
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.initiator import InitiatorSettings
from responder.core.instant import Instant
from responder.core.messages import (
    AuthPayload,
    ConfigAttribute,
    ConfigPayload,
    DeletePayload,
    EapCode,
    EapPayload,
    EncryptedPayload,
    Header,
    IdrPayload,
    KePayload,
    Message,
    NoncePayload,
    NotifyPayload,
    OpaquePayload,
    Payload,
    Proposal,
    SaPayload,
    Transform,
    TransformAttribute,
    TsiPayload,
    TsrPayload,
    VendorIdPayload,
    decode_header,
    decode_message,
    encode_header,
    encode_message,
    encode_payloads,
)
from responder.core.path import Path
from responder.core.sk_payload import SkProtection, protect_bytes, unprotect
from tests.fakes.pair import (
    PSK,
    RESPONDER_ID,
    Pair,
    any_selectors,
    child_request,
    forge,
    initiator_settings,
    read,
    responder_config,
    reverse,
    sk_keys,
)

SUITES = {
    "x25519-aes256gcm16": ("aes256gcm16-prfsha256-x25519", "aes256gcm16"),
    "ecp384-aes256cbc-sha384": ("aes256-sha384-ecp384", "aes256-sha384"),
    "modp2048-aes128cbc-sha256": ("aes128-sha256-modp2048", "aes128-sha256"),
    "x448-chacha20poly1305": ("chacha20poly1305-prfsha512-x448", "chacha20poly1305"),
}
STATES = (
    "responder INIT_DONE",
    "responder ESTABLISHED",
    "responder CLOSED",
    "initiator INIT_SENT",
    "initiator AUTH_SENT",
    "initiator ESTABLISHED",
)
EVENT_TYPES = typing.get_args(Event)

#: Where an SA may go from each state (RFC 7296 §1.2, §1.4.1): never back.
NEXT_STATES = {
    IkeSaState.INIT_SENT: {IkeSaState.INIT_SENT, IkeSaState.AUTH_SENT, IkeSaState.CLOSED},
    IkeSaState.AUTH_SENT: {IkeSaState.AUTH_SENT, IkeSaState.ESTABLISHED, IkeSaState.CLOSED},
    IkeSaState.INIT_DONE: {IkeSaState.INIT_DONE, IkeSaState.ESTABLISHED, IkeSaState.CLOSED},
    IkeSaState.ESTABLISHED: {IkeSaState.ESTABLISHED, IkeSaState.REKEYED, IkeSaState.CLOSED},
    IkeSaState.REKEYED: {IkeSaState.REKEYED, IkeSaState.CLOSED},
    IkeSaState.CLOSED: {IkeSaState.CLOSED},
}

#: Error notifies the RFC has a responder answer with (RFC 7296 §2.5, §2.21, §3.10.1; RFC 6023).
RFC_ERRORS = {
    NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
    NotifyType.INVALID_MAJOR_VERSION,
    NotifyType.INVALID_SYNTAX,
    NotifyType.NO_PROPOSAL_CHOSEN,
    NotifyType.INVALID_KE_PAYLOAD,
    NotifyType.AUTHENTICATION_FAILED,
    NotifyType.SINGLE_PAIR_REQUIRED,
    NotifyType.NO_ADDITIONAL_SAS,
    NotifyType.INTERNAL_ADDRESS_FAILURE,
    NotifyType.FAILED_CP_REQUIRED,
    NotifyType.TS_UNACCEPTABLE,
    NotifyType.TEMPORARY_FAILURE,
    NotifyType.CHILD_SA_NOT_FOUND,
}
#: Errors after which the IKE SA is gone (RFC 7296 §2.21.2, §2.21.3).
FATAL = {NotifyType.INVALID_SYNTAX, NotifyType.AUTHENTICATION_FAILED}

# --------------------------------------------------------------------------- the SAs and their traffic


def suite_config(suite: str) -> tuple[Config, InitiatorSettings]:
    """Responder configuration and initiator settings of a suite: Child SA, CP from a pool, window 2."""
    ike, esp = SUITES[suite]
    pool = AddressPool("lab", ipv4=IPv4Network("10.9.0.0/24"), ipv6=None, dns=(IPv4Address("10.9.0.53"),))
    child = ChildConfig("net", esp_proposals=(EspProposal.parse(esp),), pool="lab")
    peers = (
        PeerConfig(
            "alice", IdPattern.parse("alice@example.org"), PSK, local_id=RESPONDER_ID, children=(child,)
        ),
    )
    config = responder_config(ike, peers=peers, pools=(pool,), window_size=2)
    return config, initiator_settings(ike, child_request(esp, request_ipv4=True), window_size=2)


def handshake(suite: str, *, drop_auth: bool = False, psk: Secret = PSK) -> tuple[Pair, IkeSa]:
    config, settings_ = suite_config(suite)
    pair = Pair.create(config)
    initiator_sa = pair.initiate(attrs.evolve(settings_, psk=psk))
    if drop_auth:
        pair.pump(drop=lambda data: decode_header(data)[0].exchange_type is ExchangeType.IKE_AUTH)
    else:
        pair.pump()
    return pair, initiator_sa


def only_sa(endpoint: Endpoint) -> IkeSa:
    [sa] = endpoint.sas
    return sa


@attrs.frozen
class Template:
    """A captured message: its header and payloads, opened if they were protected."""

    name: str
    message: Message
    protected: bool
    from_initiator: bool


def _gcm_proposal(spi: bytes) -> SaPayload:
    gcm = Transform(TransformType.ENCR, EncrId.AES_GCM_16, (TransformAttribute.key_length(256),))
    return SaPayload(
        (Proposal(1, ProtocolId.ESP, (gcm, Transform(TransformType.ESN, EsnId.NO_ESN)), spi=spi),)
    )


@functools.cache
def corpus(suite: str) -> tuple[tuple[Template, ...], SkProtection, SkProtection]:
    """The suite's real messages, with the reference SA's (initiator, responder) protections."""
    pair, initiator_sa = handshake(suite)
    responder_sa = only_sa(pair.responder)
    templates: list[Template] = []

    def add(name: str, data: bytes, *, from_initiator: bool) -> None:
        if decode_header(data)[0].exchange_type is ExchangeType.IKE_SA_INIT:
            templates.append(Template(name, decode_message(data), False, from_initiator))
        else:
            message = read(responder_sa, data, from_initiator=from_initiator)
            templates.append(Template(name, message, True, from_initiator))

    def forged(name: str, exchange: ExchangeType, *payloads: Payload) -> None:
        request = forge(responder_sa, exchange, payloads, message_id=responder_sa.layer.next_expected)
        [response] = pair.to_responder(request)
        add(f"{name} request", request, from_initiator=True)
        add(f"{name} response", response, from_initiator=False)

    for index, name in enumerate(("IKE_SA_INIT request", "IKE_SA_INIT response", "IKE_AUTH request")):
        add(name, pair.wire[index][1], from_initiator=index != 1)
    add("IKE_AUTH response", pair.wire[3][1], from_initiator=False)
    pair.initiator.request_liveness_check(initiator_sa.local_spi, pair.now)
    pair.pump()
    add("liveness request", pair.wire[-2][1], from_initiator=True)
    add("liveness response", pair.wire[-1][1], from_initiator=False)
    pair.responder.request_liveness_check(responder_sa.local_spi, pair.now)
    pair.pump()
    add("responder's liveness request", pair.wire[-2][1], from_initiator=False)
    add("responder's liveness response", pair.wire[-1][1], from_initiator=True)
    [theirs] = [c.outbound_spi for c in responder_sa.children.values()]
    forged("Delete Child SA", ExchangeType.INFORMATIONAL, DeletePayload(ProtocolId.ESP, 4, (theirs,)))
    forged(
        "CREATE_CHILD_SA",
        ExchangeType.CREATE_CHILD_SA,
        _gcm_proposal(b"\x0a\x0b\x0c\x0d"),
        NoncePayload(bytes(range(32))),
        TsiPayload(any_selectors()),
        TsrPayload(any_selectors()),
    )
    forged(
        "notifies",
        ExchangeType.INFORMATIONAL,
        NotifyPayload(NotifyType(40000), b"status"),
        NotifyPayload(NotifyType.INITIAL_CONTACT),
        VendorIdPayload(b"vendor"),
    )
    forged("Delete IKE SA", ExchangeType.INFORMATIONAL, DeletePayload(ProtocolId.IKE, 0))
    assert responder_sa.state is IkeSaState.CLOSED

    # An AUTHENTICATION_FAILED answer: same seeds, so the same keys as the run above.
    failed, failed_initiator = handshake(suite, psk=Secret.parse("wrong"))
    templates.append(
        Template(
            "IKE_AUTH response AUTHENTICATION_FAILED",
            read(failed_initiator, failed.wire[3][1], from_initiator=False),
            True,
            False,
        )
    )
    initiator_keys, responder_keys = sk_keys(responder_sa)
    return tuple(templates) + refusals(), initiator_keys, responder_keys


@functools.cache
def refusals() -> tuple[Template, ...]:
    """The stateless IKE_SA_INIT answers: COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN."""
    ecp = "aes256gcm16-prfsha256-ecp256"
    runs = (
        ("COOKIE", responder_config(ecp, limits=Limits(cookie_threshold=0)), ecp),
        ("INVALID_KE_PAYLOAD", responder_config(ecp), "aes256gcm16-prfsha256-x25519-ecp256"),
        ("NO_PROPOSAL_CHOSEN", responder_config(ecp), "aes128-sha256-modp2048"),
    )
    templates = []
    for name, config, offer in runs:
        pair = Pair.create(config)
        pair.initiate(initiator_settings(offer))
        pair.pump()
        response = decode_message(pair.wire[1][1])
        templates.append(Template(f"IKE_SA_INIT response {name}", response, False, False))
    return tuple(templates)


@attrs.define(eq=False)
class World:
    """One SA in one state, the endpoint it lives in, and what was sent so far."""

    pair: Pair
    endpoint: Endpoint
    sa: IkeSa
    is_responder: bool
    sent: set[bytes]

    @property
    def path(self) -> Path:
        return reverse(self.pair.path) if self.is_responder else self.pair.path

    def keys(self, suite: str) -> tuple[SkProtection, SkProtection]:
        """(initiator's, responder's) protections: the SA's own, or the reference run's before it has keys."""
        if self.sa.keys is not None:
            return sk_keys(self.sa)
        _, initiator_keys, responder_keys = corpus(suite)
        return initiator_keys, responder_keys


def build(suite: str, state: str, variant: int) -> World:
    """An SA of ``suite`` in ``state``; ``variant`` adds a request of the SA's own that is outstanding."""
    if state == "initiator INIT_SENT":
        config, settings_ = suite_config(suite)
        pair = Pair.create(config)
        sa = pair.initiate(settings_)
        lost = {o.data for o in pair.initiator.messages_to_send()}
        return World(pair, pair.initiator, sa, False, lost)
    if state in ("responder INIT_DONE", "initiator AUTH_SENT"):
        pair, initiator_sa = handshake(suite, drop_auth=True)
        world = (
            World(pair, pair.responder, only_sa(pair.responder), True, set())
            if state == "responder INIT_DONE"
            else World(pair, pair.initiator, initiator_sa, False, set())
        )
    else:
        pair, initiator_sa = handshake(suite)
        responder_sa = only_sa(pair.responder)
        world = (
            World(pair, pair.initiator, initiator_sa, False, set())
            if state == "initiator ESTABLISHED"
            else World(pair, pair.responder, responder_sa, True, set())
        )
        if state == "responder CLOSED":
            pair.initiator.request_delete(initiator_sa.local_spi, pair.now)
            pair.pump()
            assert responder_sa.state is IkeSaState.CLOSED
        elif variant:
            # A request of our own is outstanding (its responses are then expected), RFC 7296 §2.3.
            if variant == 2 and not world.is_responder:
                world.endpoint.request_delete(world.sa.local_spi, pair.now)
            else:
                world.endpoint.request_liveness_check(world.sa.local_spi, pair.now)
            world.sent |= {o.data for o in world.endpoint.messages_to_send()}
    world.sent |= {data for _, data in pair.wire}
    pair.drain()
    return world


# --------------------------------------------------------------------------- mutations

INTERESTING = [0, 1, 2, 3, 4, 5, 7, 8, 14, 16, 19, 20, 31, 32, 34, 35, 36, 37, 40, 255, 256, 16384, 0xFFFF]


def mutate_value(data: st.DataObject, value: object, depth: int) -> object:
    """A new value of about the same kind, for ``attrs.evolve``; validators may still refuse it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return data.draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, 0xFFFF), st.just(value ^ 1)))
    if value is None:
        return data.draw(st.sampled_from([None, 0, 1, 254]))
    if isinstance(value, bytes):
        op = data.draw(st.sampled_from(["random", "flip", "truncate", "extend", "empty"]))
        if op == "random" or not value:
            return data.draw(st.binary(max_size=40))
        if op == "flip":
            bit = data.draw(st.integers(0, len(value) * 8 - 1))
            return value[: bit // 8] + bytes([value[bit // 8] ^ (1 << bit % 8)]) + value[bit // 8 + 1 :]
        if op == "truncate":
            return value[: data.draw(st.integers(0, len(value) - 1))]
        return b"" if op == "empty" else value + data.draw(st.binary(min_size=1, max_size=8))
    if isinstance(value, IPv4Address | IPv6Address):
        return type(value)(data.draw(st.integers(0, (1 << value.max_prefixlen) - 1)))
    if isinstance(value, tuple):
        return mutate_tuple(data, value, depth)
    if attrs.has(type(value)) and depth < 4:
        return mutate_attrs(data, value, depth + 1)
    return value


def mutate_tuple(data: st.DataObject, value: tuple[object, ...], depth: int) -> tuple[object, ...]:
    if not value:
        return value
    op = data.draw(st.sampled_from(["drop", "duplicate", "reverse", "empty", "mutate", "mutate"]))
    index = data.draw(st.integers(0, len(value) - 1))
    if op == "drop":
        return value[:index] + value[index + 1 :]
    if op == "duplicate":
        return (*value[: index + 1], value[index], *value[index + 1 :])
    if op == "reverse":
        return value[::-1]
    if op == "empty":
        return ()
    return (*value[:index], mutate_value(data, value[index], depth), *value[index + 1 :])


def mutate_attrs(data: st.DataObject, value: Any, depth: int = 0) -> Any:
    """``attrs.evolve`` one field to a drawn value; keep ``value`` if the validators refuse."""
    fields = [f for f in attrs.fields(type(value)) if f.init]
    if not fields:
        return value
    field = data.draw(st.sampled_from(fields))
    new = mutate_value(data, getattr(value, field.name), depth)
    try:
        return attrs.evolve(value, **{field.alias: new})
    except (TypeError, ValueError, OverflowError):
        return value


EXTRA_PAYLOADS: tuple[Payload, ...] = (
    OpaquePayload(PayloadType(200), b"unknown"),
    NotifyPayload(NotifyType(40001)),
    NotifyPayload(NotifyType(12345), b"error?"),
    NotifyPayload(NotifyType.SET_WINDOW_SIZE, (7).to_bytes(4, "big")),
    NotifyPayload(NotifyType.REKEY_SA, b"", ProtocolId.ESP, b"\x00\x00\x01\x00"),
    DeletePayload(ProtocolId.IKE, 0),
    DeletePayload(ProtocolId.AH, 4, (b"\x00\x00\x01\x00",)),
    DeletePayload(ProtocolId.ESP, 4, ()),
    ConfigPayload(ConfigType.CFG_REQUEST, (ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_ADDRESS),)),
    ConfigPayload(ConfigType.CFG_SET, (ConfigAttribute(ConfigAttributeType.INTERNAL_IP6_ADDRESS, b"x"),)),
    EapPayload(EapCode.REQUEST, 1, 1, b"id"),
    KePayload(KeyExchangeId.CURVE25519, bytes(32)),
    NoncePayload(b""),
    IdrPayload(2, b"x"),
    AuthPayload(2, b""),
    VendorIdPayload(b""),
)

HEADER_OPS = ("exchange", "response", "initiator", "message_id", "version", "spi")
PAYLOAD_OPS = ("drop", "duplicate", "swap", "shuffle", "insert", "evolve", "evolve", "clear")
RAW_OPS = ("flip", "truncate", "insert", "first_type", "prepend_unknown", "length")
WIRE_MODES = ("as captured",) * 4 + ("protect", "plain", "wrong keys", "corrupt")


def mutate_header(data: st.DataObject, header: Header, sa: IkeSa) -> Header:
    op = data.draw(st.sampled_from(HEADER_OPS), label="header op")
    if op == "exchange":
        kinds = st.sampled_from([34, 35, 36, 37, 38, 43, 44]) | st.integers(0, 255)
        return attrs.evolve(header, exchange_type=data.draw(kinds))
    if op == "response":
        return attrs.evolve(header, is_response=not header.is_response)
    if op == "initiator":
        return attrs.evolve(header, is_initiator=not header.is_initiator)
    if op == "message_id":
        layer = sa.layer
        ids = [0, 1, 2, 3, layer.next_expected, layer.next_expected + 1, layer.next_send_id]
        ids.append(layer.next_send_id - 1)
        drawn = data.draw(st.sampled_from([i for i in ids if i >= 0]) | st.integers(0, 0xFFFFFFFF))
        return attrs.evolve(header, message_id=drawn)
    if op == "version":
        return attrs.evolve(
            header,
            major_version=data.draw(st.sampled_from([2, 2, 1, 3, 15])),
            minor_version=data.draw(st.integers(0, 15)),
            version_flag=data.draw(st.booleans()),
        )
    return attrs.evolve(header, spi_r=data.draw(st.sampled_from([bytes(8), b"\xff" * 8, sa.spi_i])))


def mutate_payloads(
    data: st.DataObject, payloads: tuple[Payload, ...], pool: list[Payload]
) -> tuple[Payload, ...]:
    op = data.draw(st.sampled_from(PAYLOAD_OPS), label="payload op")
    items = list(payloads)
    if op == "insert" or not items:
        items.insert(data.draw(st.integers(0, len(items))), data.draw(st.sampled_from(pool)))
        return tuple(items)
    index = data.draw(st.integers(0, len(items) - 1))
    if op == "drop":
        del items[index]
    elif op == "duplicate":
        items.insert(index, items[index])
    elif op == "swap":
        other = data.draw(st.integers(0, len(items) - 1))
        items[index], items[other] = items[other], items[index]
    elif op == "shuffle":
        items = data.draw(st.permutations(items))
    elif op == "clear":
        items = []
    else:
        items[index] = typing.cast(Payload, mutate_attrs(data, items[index]))
    return tuple(items)


def mutate_raw(data: st.DataObject, first: PayloadType, inner: bytes) -> tuple[PayloadType, bytes]:
    op = data.draw(st.sampled_from(RAW_OPS), label="raw op")
    if op == "first_type":
        return PayloadType(data.draw(st.integers(0, 255))), inner
    if op == "prepend_unknown":
        critical = data.draw(st.booleans())
        body = data.draw(st.binary(max_size=8))
        return PayloadType(data.draw(st.sampled_from([0x30, 0xC8, 0xFF]))), (
            bytes([first, 0x80 if critical else 0]) + (4 + len(body)).to_bytes(2, "big") + body + inner
        )
    if op == "insert":
        at = data.draw(st.integers(0, len(inner)))
        return first, inner[:at] + data.draw(st.binary(min_size=1, max_size=8)) + inner[at:]
    if not inner:
        return first, inner
    if op == "flip":
        bit = data.draw(st.integers(0, len(inner) * 8 - 1))
        return first, inner[: bit // 8] + bytes([inner[bit // 8] ^ (1 << bit % 8)]) + inner[bit // 8 + 1 :]
    if op == "truncate":
        return first, inner[: data.draw(st.integers(0, len(inner) - 1))]
    length = data.draw(st.sampled_from([0, 3, 4, 5, len(inner) - 1, len(inner) + 1, 0xFFFF]))
    return first, inner[:2] + max(0, min(length, 0xFFFF)).to_bytes(2, "big") + inner[4:]


def draw_message(data: st.DataObject, world: World, suite: str) -> bytes:
    """A captured message, aimed at ``world``'s SA and mutated; protected with the sender's keys."""
    own, _, _ = corpus(suite)
    every = [t for s in SUITES for t in corpus(s)[0]]
    incoming = [t for t in own if t.from_initiator == world.is_responder]  # what the SA usually receives
    templates = st.sampled_from(incoming) | st.sampled_from(own) | st.sampled_from(every)
    template = data.draw(templates, label="template")
    sa = world.sa
    header = template.message.header
    header = attrs.evolve(
        header,
        spi_i=sa.spi_i,
        spi_r=header.spi_r if header.exchange_type is ExchangeType.IKE_SA_INIT else sa.spi_r,
        is_initiator=world.is_responder,
    )
    if header.exchange_type is not ExchangeType.IKE_SA_INIT and data.draw(st.booleans(), label="aim"):
        # The Message ID the SA expects next, or that of its oldest outstanding request.
        wanted = min(sa.layer.pending, default=0) if header.is_response else sa.layer.next_expected
        header = attrs.evolve(header, message_id=wanted)
    payloads = template.message.payloads
    pool = [p for t in every for p in t.message.payloads] + list(EXTRA_PAYLOADS)
    raw = data.draw(st.booleans(), label="raw plaintext mutation")
    for _ in range(data.draw(st.integers(0, 3), label="mutations")):
        if data.draw(st.booleans()):
            header = mutate_header(data, header, sa)
        else:
            payloads = mutate_payloads(data, payloads, pool)
    mode = data.draw(st.sampled_from(WIRE_MODES), label="wire")
    try:
        first, inner = encode_payloads(payloads)
    except LocalError:
        first, inner = encode_payloads(template.message.payloads)
    if raw:
        first, inner = mutate_raw(data, first, inner)
    protected = template.protected if mode in ("as captured", "corrupt") else mode != "plain"
    initiator_keys, responder_keys = world.keys(suite)
    sender, receiver = (
        (initiator_keys, responder_keys) if world.is_responder else (responder_keys, initiator_keys)
    )
    if protected:
        key = receiver if mode == "wrong keys" else sender
        wire = protect_bytes(key, header, first, inner, bytes(key.encryption.iv_size))
    elif raw:
        wire = encode_header(header, first, 28 + len(inner)) + inner  # the mutated chain in the clear
    else:
        wire = encode_message(Message(header, payloads))
    if mode == "corrupt" and wire:
        at = data.draw(st.integers(0, len(wire) - 1))
        wire = wire[:at] + bytes([wire[at] ^ data.draw(st.integers(1, 255))]) + wire[at + 1 :]
    return wire


# --------------------------------------------------------------------------- the properties


def authentic(data: bytes, protection: SkProtection) -> bool:
    """Would ``data`` pass the structure and ICV checks of ``protection`` (what an attacker cannot fake)?"""
    try:
        outer = decode_message(data)
    except DecodeError:
        return False
    if not outer.payloads or not isinstance(outer.payloads[-1], EncryptedPayload):
        return False
    try:
        unprotect(protection, data)
    except IntegrityCheckFailed:
        return False
    except DecodeError:
        return True  # authenticated, malformed inside
    return True


def opened(world: World, data: bytes, suite: str) -> Message:
    """Decode a message the world's endpoint sent, opening it with the keys of the SA that sent it."""
    message = decode_message(data)
    if not message.payloads or not isinstance(message.payloads[-1], EncryptedPayload):
        return message
    header = message.header
    assert (header.spi_i, header.spi_r) == world.sa.spis, "only the SA under test has keys"
    initiator_keys, responder_keys = world.keys(suite)
    return unprotect(responder_keys if world.is_responder else initiator_keys, data)[0]


def check(world: World, suite: str, wire: bytes) -> str:
    """Feed ``wire`` to the endpoint; check the properties of the module docstring; say what happened."""
    sa, endpoint = world.sa, world.endpoint
    before = sa.state
    initiator_keys, responder_keys = world.keys(suite)
    inbound = initiator_keys if world.is_responder else responder_keys
    fed: Header | None
    try:
        fed = decode_header(wire)[0]
    except DecodeError:
        fed = None
    is_request = len(wire) >= 28 and not wire[19] & 0x20
    exchange, message_id = (wire[18], int.from_bytes(wire[20:24], "big")) if len(wire) >= 28 else (0, 0)
    has_keys = sa.keys is not None and before is not IkeSaState.CLOSED
    genuine = has_keys and exchange != ExchangeType.IKE_SA_INIT and authentic(wire, inbound)
    expects_answer = (
        genuine
        and fed is not None
        and is_request
        and fed.is_initiator == world.is_responder
        and fed.spi_i == sa.spi_i
        and fed.spi_r == sa.spi_r
        and (before, ExchangeType(exchange))
        in {
            (IkeSaState.INIT_DONE, ExchangeType.IKE_AUTH),
            (IkeSaState.ESTABLISHED, ExchangeType.INFORMATIONAL),
            (IkeSaState.ESTABLISHED, ExchangeType.CREATE_CHILD_SA),
            (IkeSaState.REKEYED, ExchangeType.INFORMATIONAL),
            (IkeSaState.REKEYED, ExchangeType.CREATE_CHILD_SA),
        }
        and sa.layer.request_status(message_id) is None  # fresh and in the window (no retransmission)
    )
    next_request_id, window = sa.layer.next_expected, sa.layer.window_size

    endpoint.receive(wire, world.path, world.pair.now)  # nothing may escape

    out = [o.data for o in endpoint.messages_to_send()]
    events: list[object] = []
    while (event := endpoint.next_event()) is not None:
        events.append(event)
    if before is IkeSaState.CLOSED and fed is not None:
        dispatch.receive(sa, wire, fed, world.path, Instant(world.pair.now))  # the closed SA itself
        assert sa.messages_to_send() == []
        while (event := sa.next_event()) is not None:
            events.append(event)
    assert all(isinstance(e, EVENT_TYPES) for e in events), events

    # The SA moves forward only; a closed SA leaves the endpoint, once.
    assert sa.state in NEXT_STATES[before], (before, sa.state)
    if sa.state is IkeSaState.CLOSED:
        assert endpoint.sa(sa.local_spi) is None
        if before is not IkeSaState.CLOSED:
            assert sum(isinstance(e, IkeSaClosed) and e.spi_i == sa.spi_i for e in events) == 1
    else:
        assert endpoint.sa(sa.local_spi) is sa

    messages = [(data, opened(world, data, suite)) for data in out]  # all decode and open

    # Unauthenticated junk changes nothing and is not answered (only INVALID_MAJOR_VERSION may be).
    if has_keys and exchange != ExchangeType.IKE_SA_INIT and not genuine:
        assert sa.state is before
        assert (sa.layer.next_expected, sa.layer.window_size) == (next_request_id, window)
        assert any(isinstance(e, MessageDropped) for e in events)
        for _, message in messages:
            assert message.payloads == (NotifyPayload(NotifyType.INVALID_MAJOR_VERSION),), message

    answers = [(data, m) for data, m in messages if m.header.is_response]
    for data, message in messages:
        if not message.header.is_response:
            # A request of our own: only the next step after a response (IKE_AUTH after IKE_SA_INIT,
            # a retry after COOKIE / INVALID_KE_PAYLOAD, or a queued request the window now allows).
            assert not is_request and not world.is_responder, message
            continue
        check_answer(world, data, message, events, exchange, message_id)
    if expects_answer:
        assert len(answers) == 1, (events, answers)
    world.sent |= set(out)
    return outcome(before, sa.state, events, answers)


def outcome(
    before: IkeSaState, after: IkeSaState, events: list[object], answers: list[tuple[bytes, Message]]
) -> str:
    """A label for Hypothesis's statistics (``--hypothesis-show-statistics``): what the input reached."""
    if before is not after:
        return f"{before.name} -> {after.name}"
    if answers:
        payloads = answers[0][1].payloads
        if any(isinstance(e, RetransmissionAnswered) for e in events):
            return "retransmission answered"
        if len(payloads) == 1 and isinstance(payloads[0], NotifyPayload) and payloads[0].notify_type.is_error:
            return f"answered {payloads[0].notify_type.name}"
        return "answered normally"
    dropped = [e.reason for e in events if isinstance(e, MessageDropped)]
    if dropped:
        return "dropped: " + re.sub(r"[0-9]+|\[.*\)|at offset.*|\(.*\)", "", dropped[0].split(":")[-1])[:50]
    return "handled: " + ", ".join(sorted({type(e).__name__ for e in events}))


def check_answer(
    world: World, data: bytes, message: Message, events: list[object], exchange: int, message_id: int
) -> None:
    """A response answers the fed request with its normal answer or one error notify of the RFC's kinds."""
    header = message.header
    assert header.exchange_type == exchange and header.message_id == message_id, header
    outer = decode_message(data).payloads
    protected = bool(outer) and isinstance(outer[-1], EncryptedPayload)
    if protected:
        assert header.is_initiator is not world.is_responder, "the I flag names the original initiator"
    payloads = message.payloads
    errors = [p for p in payloads if isinstance(p, NotifyPayload) and p.notify_type.is_error]
    assert all(e.notify_type in RFC_ERRORS for e in errors), errors
    if any(isinstance(e, RetransmissionAnswered) for e in events):
        assert data in world.sent, "a retransmitted request gets the cached octets (RFC 7296 §2.1)"
        return
    if len(payloads) == 1 and isinstance(payloads[0], NotifyPayload) and payloads[0].notify_type.is_error:
        notify = payloads[0]
        if notify.notify_type is NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD:
            assert len(notify.data) == 1
        if notify.notify_type is NotifyType.INVALID_KE_PAYLOAD:
            assert len(notify.data) == 2
        if notify.notify_type is NotifyType.INVALID_MAJOR_VERSION:
            assert not protected
        elif exchange == ExchangeType.IKE_SA_INIT:
            assert not protected and header.spi_r == bytes(8), "stateless refusal (RFC 7296 §2.6, row B10)"
        else:
            assert protected, "errors after IKE_SA_INIT are protected (RFC 7296 §2.21.2, §2.21.3)"
            if notify.notify_type in FATAL:
                assert world.sa.state is IkeSaState.CLOSED
        return
    kinds = {type(p) for p in payloads}
    if exchange == ExchangeType.IKE_SA_INIT:
        cookie = [p for p in payloads if isinstance(p, NotifyPayload) and p.notify_type is NotifyType.COOKIE]
        assert (cookie and len(payloads) == 1) or {SaPayload, KePayload, NoncePayload} <= kinds, payloads
    elif exchange == ExchangeType.IKE_AUTH:
        assert {IdrPayload, AuthPayload} <= kinds and protected, payloads
    elif exchange == ExchangeType.INFORMATIONAL:
        assert kinds <= {DeletePayload} and protected, payloads
    elif exchange == ExchangeType.CREATE_CHILD_SA:
        # RFC 7296 §1.3.1-§1.3.3: SA, Nr, [KEr], TSi, TSr for a Child SA; SA, Nr, KEr for the IKE SA.
        child = {SaPayload, NoncePayload, TsiPayload, TsrPayload} <= kinds
        assert protected and (child or {SaPayload, NoncePayload, KePayload} <= kinds), payloads
    else:
        raise AssertionError(f"unexpected normal answer to {ExchangeType(exchange).name}: {payloads}")


PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("state", STATES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_every_state_answers_mutated_real_messages_as_the_rfc_says(state: str, data: st.DataObject) -> None:
    """RFC 7296 §1.2-§1.4, §2.1-§2.3, §2.5, §2.21 (rows B1, B2, B4, B6-B8, B25, B26; RFC 9329 row A34):
    in every state, every exchange as request and as response, from real messages and mutations of
    them (re-protected with the SA's keys), either transitions or yields the RFC's answer."""
    suite = data.draw(st.sampled_from(sorted(SUITES)), label="suite")
    world = build(suite, state, data.draw(st.integers(0, 2), label="variant"))
    for _ in range(data.draw(st.integers(1, 3), label="messages")):
        hypothesis.event(check(world, suite, draw_message(data, world, suite)))


@pytest.mark.parametrize("suite", sorted(SUITES))
@pytest.mark.parametrize("state", STATES)
def test_every_state_meets_every_captured_message(state: str, suite: str) -> None:
    """RFC 7296 §1.2-§1.4, §2.1, §2.2 (rows B1, B4, B6, B8): the whole grid, without Hypothesis: each
    state receives each captured message of its suite as sent, and with the Response flag flipped
    (so every exchange arrives as request and as response), re-protected with the SA's keys."""
    templates, _, _ = corpus(suite)
    for template in templates:
        for flip in (False, True):
            world = build(suite, state, 1)
            sa = world.sa
            message = template.message
            header = attrs.evolve(
                message.header,
                spi_i=sa.spi_i,
                spi_r=message.header.spi_r if not template.protected else sa.spi_r,
                is_initiator=world.is_responder,
                is_response=message.header.is_response != flip,
            )
            if template.protected:
                sender = world.keys(suite)[0 if world.is_responder else 1]
                first, inner = encode_payloads(message.payloads)
                wire = protect_bytes(sender, header, first, inner, bytes(sender.encryption.iv_size))
            else:
                wire = encode_message(Message(header, message.payloads))
            check(world, suite, wire)


def test_grid_covers_every_exchange_both_ways() -> None:
    """RFC 7296 §1.2-§1.4 (row B1): the corpus holds requests and responses of all four exchanges."""
    templates, _, _ = corpus("x25519-aes256gcm16")
    seen = {(t.message.header.exchange_type, t.message.header.is_response) for t in templates}
    exchanges = {
        ExchangeType.IKE_SA_INIT,
        ExchangeType.IKE_AUTH,
        ExchangeType.INFORMATIONAL,
        ExchangeType.CREATE_CHILD_SA,
    }
    assert seen == {(e, r) for e in exchanges for r in (False, True)}


@pytest.mark.parametrize(
    ("protocol", "ports", "expected"),
    [
        (17, (0xFFFF, 0), "0.0.0.0-255.255.255.255[17/opaque]"),
        (0, (1, 0xFFFF), "0.0.0.0-255.255.255.255[0/1-65535]"),
    ],
    ids=["opaque-ports", "ports-without-protocol"],
)
def test_selectors_policy_cannot_express_still_establish(
    protocol: int, ports: tuple[int, int], expected: str
) -> None:
    """RFC 7296 §2.9, §3.13.1 (row B20), found by the property above: a TSi with OPAQUE ports, or with
    ports under IP protocol 0, narrowed against an "any" policy used to raise out of
    ``Endpoint.receive`` while the ChildSaEstablished event was written; now it is described as is."""
    ike = "aes256gcm16-prfsha256-x25519"
    pair = Pair.create(responder_config(ike))
    request = child_request()
    selector = attrs.evolve(request.tsi[0], ip_protocol=protocol, start_port=ports[0], end_port=ports[1])
    pair.initiate(initiator_settings(ike, attrs.evolve(request, tsi=(selector,))))
    pair.pump()
    [child] = pair.events(ChildSaEstablished)
    assert child.remote_ts == (expected,)
