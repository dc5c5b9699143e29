"""The first Child SA, negotiated inside IKE_AUTH (RFC 7296 §1.2, §2.9, §2.17, §2.19).

Responder side (:func:`negotiate_first_child`), in this order:

1. pick the peer's first child configuration whose traffic selectors
   intersect what was offered (RFC 7296 §2.9);
2. a configuration marked ``refuse`` answers TS_UNACCEPTABLE (a policy that
   keeps the IKE SA but refuses its Child SA), and so does every child while
   the ``refuse_child`` lab impairment is on;
3. a CP request is answered from the child's address pool (RFC 7296 §2.19,
   §3.15): one address per family asked for, DNS servers if asked, never a
   netmask; an exhausted pool answers INTERNAL_ADDRESS_FAILURE; TSi is then
   narrowed to the leased addresses;
4. ESP proposal selection (NO_PROPOSAL_CHOSEN), mode (USE_TRANSPORT_MODE,
   RFC 7296 §1.3.1), Child SA KEYMAT (§2.17).

Every failure raises :class:`ChildSaError`; the IKE_AUTH exchange answers it
next to IDr and AUTH, so the IKE SA survives (RFC 7296 §2.21.3).  The Child
SA comes back ``INSTALLING``: it is installed once the response is out.

Initiator side (:func:`accept_first_child`): check the responder's choice
against what we offered and install the pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address

from responder.core.child_sa import ChildSa, ChildSaParams
from responder.core.config import ChildConfig, Mode, TrafficSelectorPolicy
from responder.core.enums import ConfigAttributeType, ConfigType, NotifyType
from responder.core.errors import ChildSaError, DecodeError, LocalError
from responder.core.exchanges.common import find, fresh_spi, notifies
from responder.core.ike_sa import IkeSa
from responder.core.initiator import ChildRequest
from responder.core.keys import derive_child_sa_keys
from responder.core.messages import Message
from responder.core.payloads import (
    AnyTrafficSelector,
    ConfigAttribute,
    ConfigPayload,
    NotifyPayload,
    Payload,
    SaPayload,
    TrafficSelector,
    TsiPayload,
    TsrPayload,
)
from responder.core.pool import PoolAllocator
from responder.core.proposals import ChosenProposal, NoProposalChosen, select_esp_proposal
from responder.core.selectors import describe_selector, narrow, within

__all__ = ["accept_first_child", "child_payloads", "make_child", "negotiate_first_child", "select_child"]

_ADDRESS_ATTRIBUTES = {
    ConfigAttributeType.INTERNAL_IP4_ADDRESS: 4,
    ConfigAttributeType.INTERNAL_IP6_ADDRESS: 6,
}


def child_payloads(message: Message) -> tuple[SaPayload, TsiPayload, TsrPayload] | None:
    """SA, TSi and TSr of a request that asks for a Child SA; ``None`` when it asks for none.

    Only part of the three is INVALID_SYNTAX (RFC 7296 §1.2: they come together).
    """
    sa_payload, tsi, tsr = find(message, SaPayload), find(message, TsiPayload), find(message, TsrPayload)
    if sa_payload is None and tsi is None and tsr is None:
        return None
    if sa_payload is None or tsi is None or tsr is None:
        raise DecodeError(f"{message.header.exchange_type.name} with only part of SA, TSi and TSr", offset=28)
    return sa_payload, tsi, tsr


def negotiate_first_child(
    sa: IkeSa,
    message: Message,
    offered: tuple[SaPayload, TsiPayload, TsrPayload],
    children: Sequence[ChildConfig],
) -> tuple[tuple[Payload, ...], ChildSa]:
    """Negotiate the Child SA an IKE_AUTH request asks for; raises ChildSaError."""
    sa_payload, tsi, tsr = offered
    child = select_child(children, tsi.selectors, tsr.selectors)
    if child.refuse:
        raise ChildSaError(f"child '{child.name}' refuses Child SAs by policy", NotifyType.TS_UNACCEPTABLE)
    if sa.config.impair.refuse_child:
        raise ChildSaError("impairment refuse_child: every Child SA is refused", NotifyType.TS_UNACCEPTABLE)

    cp_reply: list[Payload] = []
    remote_policy: tuple[TrafficSelectorPolicy, ...] = child.remote_ts
    request = find(message, ConfigPayload)
    owner = sa.local_spi
    pool = sa.services.pools.get(child.pool) if child.pool is not None else None
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

    inbound_spi = fresh_spi(sa.services.random_bytes, 4)
    record = make_child(
        sa, child.name, chosen, inbound_spi, chosen.spi, local_ts, remote_ts, mode, initiated=False
    )
    payloads: list[Payload] = [
        *cp_reply,
        SaPayload((chosen.as_proposal(inbound_spi),)),
        TsiPayload(remote_ts),
        TsrPayload(local_ts),
    ]
    if mode is Mode.TRANSPORT:
        payloads.append(NotifyPayload(NotifyType.USE_TRANSPORT_MODE))
    return tuple(payloads), record


def select_child(
    children: Sequence[ChildConfig], tsi: Sequence[AnyTrafficSelector], tsr: Sequence[AnyTrafficSelector]
) -> ChildConfig:
    """The first child configuration whose selectors meet what was offered (RFC 7296 §2.9);
    TS_UNACCEPTABLE if none does."""
    for child in children:
        if narrow(child.remote_ts, tsi) and narrow(child.local_ts, tsr):
            return child

    def text(selectors: Sequence[AnyTrafficSelector]) -> str:
        return ", ".join(
            describe_selector(t) if isinstance(t, TrafficSelector) else "opaque" for t in selectors
        )

    offered = f"{text(tsi)} === {text(tsr)}"
    raise ChildSaError(f"no child configuration covers {offered}", NotifyType.TS_UNACCEPTABLE)


def _lease(
    pool: PoolAllocator, owner: bytes, request: ConfigPayload
) -> tuple[tuple[ConfigAttribute, ...], list[IPv4Address | IPv6Address]]:
    """Lease one address per family asked for; answer DNS servers of the families asked for."""
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


def make_child(
    sa: IkeSa,
    name: str,
    chosen: ChosenProposal,
    inbound_spi: bytes,
    outbound_spi: bytes,
    local_ts: tuple[TrafficSelector, ...],
    remote_ts: tuple[TrafficSelector, ...],
    mode: Mode,
    *,
    initiated: bool,
    nonces: tuple[bytes, bytes] | None = None,
    shared_secret: bytes | None = None,
    rekeyed: bytes | None = None,
) -> ChildSa:
    """A Child SA pair with its KEYMAT (RFC 7296 §2.17), ``INSTALLING`` until its exchange completes.

    ``initiated``: we sent the exchange's request.  ``nonces`` are the
    exchange's (Ni, Nr), by default IKE_SA_INIT's (the first Child SA, in
    IKE_AUTH); ``shared_secret`` the new key exchange's g^ir in CREATE_CHILD_SA
    with PFS; ``rekeyed`` our inbound SPI of the pair it replaces.
    """
    assert sa.prf is not None and sa.keys is not None  # Child SAs are made under SK protection
    nonce_i, nonce_r = nonces if nonces is not None else (sa.nonce_i, sa.nonce_r)
    if not nonce_i or not nonce_r:  # IKE_SA_INIT's are forgotten once IKE_AUTH is done
        raise LocalError("a Child SA after IKE_AUTH takes the nonces of its own exchange (RFC 7296 §2.17)")
    keys = derive_child_sa_keys(
        sa.prf,
        sa.keys.sk_d,
        chosen.encryption_transform(),
        chosen.integrity_transform(),
        nonce_i,
        nonce_r,
        shared_secret,
    )
    # Most pairs of an endpoint negotiate the same suite and selectors: they share one copy of each
    # (issue 14: about 0.6 KiB of every Child SA held; the peer's SPI is outbound_spi).
    intern = sa.services.intern
    params = ChildSaParams(
        name,
        intern(chosen.without_spi()),
        inbound_spi,
        outbound_spi,
        intern(local_ts),
        intern(remote_ts),
        mode,
        keys,
        initiated,
        rekeyed,
    )
    return ChildSa(params)


def accept_first_child(
    sa: IkeSa, message: Message, request: ChildRequest, inbound_spi: bytes
) -> ChildSa | str:
    """The Child SA the responder accepted in its IKE_AUTH response for what we asked (``request``), or
    why it is not acceptable."""
    sa_payload, tsi, tsr = find(message, SaPayload), find(message, TsiPayload), find(message, TsrPayload)
    if sa_payload is None or tsi is None or tsr is None:
        return "responder refused the Child SA"
    chosen = select_esp_proposal(request.esp_proposals, sa_payload, prefer_initiator_order=True)
    if isinstance(chosen, NoProposalChosen) or len(sa_payload.proposals) != 1:
        return "responder chose an ESP proposal we did not offer"
    mode = Mode.TRANSPORT if notifies(message, NotifyType.USE_TRANSPORT_MODE) else Mode.TUNNEL
    local_ts = tuple(t for t in tsi.selectors if isinstance(t, TrafficSelector))
    remote_ts = tuple(t for t in tsr.selectors if isinstance(t, TrafficSelector))
    # RFC 7296 §2.9: the responder may narrow what we offered, never widen it.
    if not within(tsi.selectors, request.tsi) or not within(tsr.selectors, request.tsr):
        return "responder's TSi/TSr are not inside the ones we offered"
    if mode is Mode.TRANSPORT and request.mode is not Mode.TRANSPORT:  # RFC 7296 §1.3.1
        return "responder answered USE_TRANSPORT_MODE to a tunnel mode request"
    return make_child(
        sa, "initiator", chosen, inbound_spi, chosen.spi, local_ts, remote_ts, mode, initiated=True
    )
