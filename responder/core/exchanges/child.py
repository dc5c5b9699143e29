"""The first Child SA, negotiated inside IKE_AUTH (RFC 7296 §1.2, §2.9, §2.17, §2.19).

Responder side, in this order:

1. pick the peer's first child configuration whose traffic selectors
   intersect what was offered (RFC 7296 §2.9);
2. a configuration marked ``refuse`` answers TS_UNACCEPTABLE (a policy that
   keeps the IKE SA but refuses its Child SA);
3. a CP request is answered from the child's address pool (RFC 7296 §2.19,
   §3.15): one address per family asked for, DNS servers if asked, never a
   netmask; an exhausted pool answers INTERNAL_ADDRESS_FAILURE; TSi is then
   narrowed to the leased addresses;
4. ESP proposal selection (NO_PROPOSAL_CHOSEN), mode (USE_TRANSPORT_MODE,
   RFC 7296 §1.3.1), Child SA KEYMAT (§2.17).

Every failure raises :class:`ChildSaError`; the IKE_AUTH handler answers it
next to IDr and AUTH, so the IKE SA survives (RFC 7296 §2.21.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address

from responder.core.child_sa import ChildSa
from responder.core.config import ChildConfig, EspProposal, Mode, TrafficSelectorPolicy
from responder.core.enums import (
    ConfigAttributeType,
    ConfigType,
    EsnId,
    NotifyType,
    ProtocolId,
    TransformType,
)
from responder.core.errors import ChildSaError, DecodeError, LocalError
from responder.core.events import ChildSaEstablished
from responder.core.exchanges.common import esp_spi, find, notifies
from responder.core.ike_sa import IkeSa
from responder.core.keys import derive_child_sa_keys
from responder.core.messages import Message
from responder.core.payloads import (
    AnyTrafficSelector,
    ConfigAttribute,
    ConfigPayload,
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
from responder.core.proposals import ChosenProposal, NoProposalChosen, select_esp_proposal
from responder.core.selectors import narrow, to_policy

__all__ = [
    "child_established_event",
    "describe",
    "has_child_payloads",
    "install_child",
    "offer_esp",
    "respond_first_child",
]

_ADDRESS_ATTRIBUTES = {
    ConfigAttributeType.INTERNAL_IP4_ADDRESS: 4,
    ConfigAttributeType.INTERNAL_IP6_ADDRESS: 6,
}


def has_child_payloads(message: Message) -> bool:
    return any(isinstance(p, SaPayload | TsiPayload | TsrPayload) for p in message.payloads)


def respond_first_child(
    sa: IkeSa, message: Message, children: Sequence[ChildConfig]
) -> tuple[tuple[Payload, ...], ChildSa]:
    """Negotiate the Child SA an IKE_AUTH request asks for; raises ChildSaError."""
    sa_payload = find(message, SaPayload)
    tsi = find(message, TsiPayload)
    tsr = find(message, TsrPayload)
    if sa_payload is None or tsi is None or tsr is None:
        raise DecodeError("IKE_AUTH with only part of SA, TSi and TSr", offset=28)

    child = _select_child(children, tsi.selectors, tsr.selectors)
    if child.refuse:
        raise ChildSaError(f"child '{child.name}' refuses Child SAs by policy", NotifyType.TS_UNACCEPTABLE)

    cp_reply: list[Payload] = []
    remote_policy: tuple[TrafficSelectorPolicy, ...] = child.remote_ts
    request = find(message, ConfigPayload)
    owner = sa.local_spi
    pool = sa.pools.get(child.pool) if child.pool is not None else None
    if request is not None and request.cfg_type == ConfigType.CFG_REQUEST and pool is not None:
        reply, leased = _lease(pool, owner, request)
        if leased:
            remote_policy = tuple(TrafficSelectorPolicy(a, a) for a in leased)
            cp_reply.append(ConfigPayload(ConfigType.CFG_REPLY, reply))
    try:
        remote_ts = narrow(remote_policy, tsi.selectors)
        local_ts = narrow(child.local_ts, tsr.selectors)
        if not remote_ts or not local_ts:
            raise ChildSaError("traffic selectors do not fit the leased address", NotifyType.TS_UNACCEPTABLE)
        chosen = select_esp_proposal(
            child.esp_proposals, sa_payload, prefer_initiator_order=sa.config.prefer_initiator_order
        )
        if isinstance(chosen, NoProposalChosen):
            raise ChildSaError(f"no ESP proposal acceptable: {chosen}", NotifyType.NO_PROPOSAL_CHOSEN)
        transport_asked = bool(notifies(message, NotifyType.USE_TRANSPORT_MODE))
        if child.mode is Mode.TRANSPORT and not transport_asked:
            raise ChildSaError(f"child '{child.name}' requires transport mode", NotifyType.NO_PROPOSAL_CHOSEN)
        mode = Mode.TRANSPORT if transport_asked and child.mode is Mode.TRANSPORT else Mode.TUNNEL
    except ChildSaError:
        if pool is not None:
            pool.release(owner)
        raise

    inbound_spi = esp_spi(sa.random_bytes)
    record = install_child(sa, child.name, chosen, inbound_spi, chosen.spi, local_ts, remote_ts, mode)
    payloads: list[Payload] = [
        *cp_reply,
        SaPayload((chosen.as_proposal(inbound_spi),)),
        TsiPayload(remote_ts),
        TsrPayload(local_ts),
    ]
    if mode is Mode.TRANSPORT:
        payloads.append(NotifyPayload(NotifyType.USE_TRANSPORT_MODE))
    return tuple(payloads), record


def _select_child(
    children: Sequence[ChildConfig], tsi: Sequence[AnyTrafficSelector], tsr: Sequence[AnyTrafficSelector]
) -> ChildConfig:
    for child in children:
        if narrow(child.remote_ts, tsi) and narrow(child.local_ts, tsr):
            return child
    def text(selectors: Sequence[AnyTrafficSelector]) -> str:
        return ", ".join(describe(t) if isinstance(t, TrafficSelector) else "opaque" for t in selectors)

    offered = f"{text(tsi)} === {text(tsr)}"
    raise ChildSaError(f"no child configuration covers {offered}", NotifyType.TS_UNACCEPTABLE)


def _lease(
    pool: object, owner: bytes, request: ConfigPayload
) -> tuple[tuple[ConfigAttribute, ...], list[IPv4Address | IPv6Address]]:
    """Lease one address per family asked for; answer DNS servers of the families asked for."""
    from responder.core.pool import PoolAllocator

    assert isinstance(pool, PoolAllocator)
    asked = {a.attribute_type for a in request.attributes}
    reply: list[ConfigAttribute] = []
    leased: list[IPv4Address | IPv6Address] = []
    for attribute in request.attributes:
        family = _ADDRESS_ATTRIBUTES.get(attribute.attribute_type)
        if family is None:
            continue
        wanted = _requested_address(attribute, family)
        address = pool.lease(owner, family, wanted)
        if address is None:
            pool.release(owner)
            raise ChildSaError(
                f"address pool {pool.pool.name} has no IPv{family} address left",
                NotifyType.INTERNAL_ADDRESS_FAILURE,
            )
        leased.append(address)
        value = address.packed + (bytes([128]) if family == 6 else b"")
        reply.append(ConfigAttribute(attribute.attribute_type, value))
    for dns in pool.pool.dns:
        kind = (
            ConfigAttributeType.INTERNAL_IP4_DNS if dns.version == 4 else ConfigAttributeType.INTERNAL_IP6_DNS
        )
        if kind in asked:
            reply.append(ConfigAttribute(kind, dns.packed))
    return tuple(reply), leased


def _requested_address(attribute: ConfigAttribute, family: int) -> IPv4Address | IPv6Address | None:
    """An address the initiator asks for by value (RFC 7296 §3.15.3), if well formed and not zero."""
    size = 4 if family == 4 else 17
    if len(attribute.value) != size:
        return None
    address = IPv4Address(attribute.value) if family == 4 else IPv6Address(attribute.value[:16])
    return None if int(address) == 0 else address


def install_child(
    sa: IkeSa,
    name: str,
    chosen: ChosenProposal,
    inbound_spi: bytes,
    outbound_spi: bytes,
    local_ts: tuple[TrafficSelector, ...],
    remote_ts: tuple[TrafficSelector, ...],
    mode: Mode,
) -> ChildSa:
    """Derive KEYMAT (RFC 7296 §2.17), record the Child SA, announce it."""
    assert sa.prf is not None and sa.keys is not None  # IKE_AUTH runs with keys
    keys = derive_child_sa_keys(
        sa.prf,
        sa.keys.sk_d,
        chosen.encryption_transform(),
        chosen.integrity_transform(),
        sa.nonce_i,
        sa.nonce_r,
    )
    record = ChildSa(name, chosen, inbound_spi, outbound_spi, local_ts, remote_ts, mode, keys)
    sa.children.append(record)
    sa.emit(child_established_event(sa, record))
    return record


def describe(selector: TrafficSelector) -> str:
    """A selector as text, in policy notation where policy can express it.

    A peer may send what policy cannot: OPAQUE ports (start 65535, end 0) and
    ports with IP protocol 0 (RFC 7296 §3.13.1 asks for 0-65535 there, but the
    selector is still narrowed as offered); those are spelled out instead of
    raising from :func:`to_policy`.
    """
    try:
        return str(to_policy(selector))
    except (LocalError, ValueError):
        ports = (selector.start_port, selector.end_port)
        port_text = "opaque" if ports == (0xFFFF, 0) else f"{ports[0]}-{ports[1]}"
        return f"{selector.start_address}-{selector.end_address}[{int(selector.ip_protocol)}/{port_text}]"


def child_established_event(sa: IkeSa, child: ChildSa) -> ChildSaEstablished:
    encr = child.proposal.encryption_transform()
    integ = child.proposal.integrity_transform()
    return ChildSaEstablished(
        spi_i=sa.spi_i,
        spi_r=sa.spi_r,
        inbound_spi=child.inbound_spi,
        outbound_spi=child.outbound_spi,
        proposal=str(child.proposal),
        mode=child.mode.value,
        local_ts=tuple(describe(t) for t in child.local_ts),
        remote_ts=tuple(describe(t) for t in child.remote_ts),
        encryption_name=encr.name,
        integrity_name=integ.name if integ is not None else None,
        esn=child.proposal.esn == EsnId.ESN,
        keys=child.keys,
        is_original_initiator=sa.is_original_initiator,
    )


def offer_esp(proposals: Sequence[EspProposal], spi: bytes) -> SaPayload:
    """The SA payload offering our ESP proposals with our inbound SPI (RFC 7296 §3.3)."""
    offered = []
    for number, proposal in enumerate(proposals, start=1):
        transforms: list[Transform] = []
        for encr, bits in proposal.encryption:
            attributes = (TransformAttribute.key_length(bits),) if bits is not None else ()
            transforms.append(Transform(TransformType.ENCR, encr, attributes))
        transforms += [Transform(TransformType.INTEG, i) for i in proposal.integrity]
        transforms += [Transform(TransformType.KE, k) for k in proposal.key_exchange]
        transforms += [Transform(TransformType.ESN, e) for e in proposal.esn]
        offered.append(Proposal(number, ProtocolId.ESP, tuple(transforms), spi=spi))
    return SaPayload(tuple(offered))
