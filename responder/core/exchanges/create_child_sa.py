"""CREATE_CHILD_SA for Child SAs: new ones, and rekeys from either end (RFC 7296 §1.3.1, §1.3.3, §2.8).

The legality table's factory, :func:`create_child_sa_responder`, reads what a
request of the peer's asks for (:func:`create_child_sa_intent`) and builds
the exchange that answers it:

* :class:`CreateChildResponder`: a new Child SA (§1.3.1), chosen by traffic
  selectors among the peer's child configurations as in IKE_AUTH, up to
  ``limits.child_sa_max`` pairs (then NO_ADDITIONAL_SAS);
* :class:`RekeyChildResponder`: a rekey of the pair named by REKEY_SA
  (§1.3.3), whose SPI is the one the peer receives on, our outbound SPI.  A
  pair we do not hold gets CHILD_SA_NOT_FOUND with that SPI; one we are
  deleting, or have replaced already, TEMPORARY_FAILURE (§2.25.1).  The new
  pair keeps the old one's selectors and mode (§2.8: "SHOULD NOT have
  different Traffic Selectors and algorithms");
* :class:`~responder.core.exchanges.rekey_ike.RekeyIkeResponder` for an SA
  payload of IKE proposals (§1.3.2).

Key exchange (PFS): a child configuration whose ESP proposals name key
exchange methods requires one of them in CREATE_CHILD_SA; one that names none
accepts a KEi of any method our IKE proposals allow, or none, as the
initiator chooses.  A KEi of another group than the one chosen is answered
INVALID_KE_PAYLOAD naming ours (§1.3, §3.10.1).  KEYMAT is prf+(SK_d, g^ir
(new) | Ni | Nr) with this exchange's nonces (§2.17).

Ours: :class:`RekeyChildSa` rekeys a pair at its soft lifetime, offering the
key exchange method the pair was made with when its proposals allow it.  It
then deletes the old pair, unless both ends rekeyed it at once: each answers
the other's request as usual, and once both are done the pair made with the
lowest of the four nonces is deleted by whoever made it, and the old one by
the end that made the survivor (§2.8.1).  TEMPORARY_FAILURE is retried after
a random delay (§2.25); CHILD_SA_NOT_FOUND removes the pair silently (§2.25).
"""

from __future__ import annotations

import attrs

from responder.core.child_sa import ChildSa, ChildSaState
from responder.core.config import EspProposal, Mode, TrafficSelectorPolicy
from responder.core.enums import ExchangeType, KeyExchangeId, NotifyType, ProtocolId
from responder.core.errors import (
    ChildSaError,
    ChildSaNotFound,
    DecodeError,
    InvalidKePayload,
    InvalidKeyExchangeValue,
    TemporaryFailure,
)
from responder.core.events import ChildSaDeleted
from responder.core.exchanges.base import (
    AfterSend,
    Collision,
    Done,
    Exchange,
    InstallChildSa,
    Intent,
    NextRound,
    Operation,
    Reply,
    child_established,
)
from responder.core.exchanges.child import child_payloads, make_child, select_child
from responder.core.exchanges.common import error_notify, find, fresh_spi, notifies, require
from responder.core.exchanges.informational import DeleteChildSa
from responder.core.exchanges.rekey_ike import RekeyIkeResponder, key_exchange_methods, lowest_nonce_is_ours
from responder.core.ike_sa import REKEYED_GRACE, RETRY_DELAY, IkeSa, IkeSaState
from responder.core.instant import Instant
from responder.core.key_exchange import KeyExchange
from responder.core.message_layer import Received, Sent
from responder.core.messages import Message
from responder.core.payloads import (
    AnyTrafficSelector,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    SaPayload,
    TrafficSelector,
    TsiPayload,
    TsrPayload,
)
from responder.core.proposals import ChosenProposal, NoProposalChosen, offer, select_esp_proposal
from responder.core.selectors import narrow, to_policy, within

__all__ = [
    "NONCE_SIZE",
    "ChildOffer",
    "CreateChildResponder",
    "RekeyChildResponder",
    "RekeyChildSa",
    "create_child_sa_intent",
    "create_child_sa_responder",
    "read_child_offer",
]

NONCE_SIZE = 32  #: as in IKE_SA_INIT: at least 128 bits and half the largest PRF key (RFC 7296 §2.10)
MAX_KE_RETRIES = 2  #: INVALID_KE_PAYLOAD answers we follow in one rekey of ours


def create_child_sa_intent(sa: IkeSa, request: Received) -> Intent:
    """What a CREATE_CHILD_SA request asks for (RFC 7296 §1.3.1-§1.3.3)."""
    message = request.message
    rekey = notifies(message, NotifyType.REKEY_SA)
    if rekey:
        child = sa.child_by_outbound(rekey[0].spi)
        return Intent(
            Operation.REKEY_CHILD, frozenset({child.inbound_spi}) if child is not None else frozenset()
        )
    offered = find(message, SaPayload)
    if offered is not None and any(p.protocol_id == ProtocolId.IKE for p in offered.proposals):
        return Intent(Operation.REKEY_IKE)
    return Intent(Operation.CREATE_CHILD)


def create_child_sa_responder(sa: IkeSa, request: Received) -> Exchange:
    """The legality table's factory for the peer's CREATE_CHILD_SA requests."""
    intent = create_child_sa_intent(sa, request)
    if intent.operation is Operation.REKEY_IKE:
        return RekeyIkeResponder(intent=intent)
    if intent.operation is Operation.REKEY_CHILD:
        return RekeyChildResponder(intent=intent)
    return CreateChildResponder(intent=intent)


# --------------------------------------------------------------------------- what a message offers


@attrs.frozen(slots=True)
class ChildOffer:
    """What a CREATE_CHILD_SA request carries for a Child SA: SA, Ni, [KEi], TSi, TSr (RFC 7296 §1.3.1)."""

    sa: SaPayload
    nonce: bytes
    ke: KePayload | None
    tsi: tuple[AnyTrafficSelector, ...]
    tsr: tuple[AnyTrafficSelector, ...]
    transport: bool  #: USE_TRANSPORT_MODE was asked for (§1.3.1)


def _nonce(message: Message) -> bytes:
    nonce = require(message, NoncePayload, "Nonce").data
    if not 16 <= len(nonce) <= 256:
        raise DecodeError(f"nonce of {len(nonce)} octets (RFC 7296 §3.9)", offset=28)
    return nonce


def read_child_offer(message: Message) -> ChildOffer:
    """The Child SA part of a CREATE_CHILD_SA request; INVALID_SYNTAX when something is missing."""
    payloads = child_payloads(message)
    if payloads is None:
        raise DecodeError("CREATE_CHILD_SA without SA, TSi and TSr", offset=28)
    sa_payload, tsi, tsr = payloads
    transport = bool(notifies(message, NotifyType.USE_TRANSPORT_MODE))
    return ChildOffer(
        sa_payload, _nonce(message), find(message, KePayload), tsi.selectors, tsr.selectors, transport
    )


@attrs.frozen(slots=True)
class _Negotiated:
    chosen: ChosenProposal
    ke_reply: KePayload | None
    shared_secret: bytes | None


def _negotiate(sa: IkeSa, offered: ChildOffer, proposals: tuple[EspProposal, ...]) -> _Negotiated:
    """The ESP proposal and, with PFS, the key exchange of a Child SA we answer for (RFC 7296 §1.3)."""
    hint = offered.ke.group if offered.ke is not None else KeyExchangeId.NONE
    chosen = select_esp_proposal(
        proposals,
        offered.sa,
        prefer_initiator_order=sa.config.prefer_initiator_order,
        ke_hint=hint,
        pfs_groups=key_exchange_methods(sa),
    )
    if isinstance(chosen, NoProposalChosen):
        raise ChildSaError(f"no ESP proposal acceptable: {chosen}", NotifyType.NO_PROPOSAL_CHOSEN)
    if sa.child_by_outbound(chosen.spi) is not None:
        raise ChildSaError(
            f"SPI {chosen.spi.hex()} is already the peer's SPI of a Child SA", NotifyType.NO_PROPOSAL_CHOSEN
        )
    group = chosen.key_exchange
    if group is None or group is KeyExchangeId.NONE:
        return _Negotiated(chosen, None, None)  # no PFS (a KEi sent anyway is not used)
    if offered.ke is None or offered.ke.group != group:
        sent = offered.ke.group.name if offered.ke is not None else "no KEi"
        raise InvalidKePayload(f"{sent}, the chosen proposal needs {group.name}", int(group))
    try:
        ke_value, shared_secret = sa.services.ke_factory.respond(group, offered.ke.data)
    except InvalidKeyExchangeValue as error:
        raise ChildSaError(f"KEi refused: {error.reason}", NotifyType.NO_PROPOSAL_CHOSEN) from None
    return _Negotiated(chosen, KePayload(group, ke_value), shared_secret)


def _mode(configured: Mode, offered: ChildOffer, name: str) -> Mode:
    """Transport only when asked for and allowed; a transport-only child refuses tunnel (§1.3.1)."""
    if configured is Mode.TRANSPORT and not offered.transport:
        raise ChildSaError(f"child '{name}' requires transport mode", NotifyType.NO_PROPOSAL_CHOSEN)
    return Mode.TRANSPORT if offered.transport and configured is Mode.TRANSPORT else Mode.TUNNEL


def _answer(
    negotiated: _Negotiated,
    inbound_spi: bytes,
    nonce: bytes,
    remote_ts: tuple[TrafficSelector, ...],
    local_ts: tuple[TrafficSelector, ...],
    mode: Mode,
) -> tuple[Payload, ...]:
    """SA, Nr, [KEr], TSi, TSr of our response (RFC 7296 §1.3.1), after USE_TRANSPORT_MODE if agreed."""
    payloads: list[Payload] = []
    if mode is Mode.TRANSPORT:
        payloads.append(NotifyPayload(NotifyType.USE_TRANSPORT_MODE))
    payloads += [SaPayload((negotiated.chosen.as_proposal(inbound_spi),)), NoncePayload(nonce)]
    if negotiated.ke_reply is not None:
        payloads.append(negotiated.ke_reply)
    payloads += [TsiPayload(remote_ts), TsrPayload(local_ts)]
    return tuple(payloads)


def _new_pair(
    sa: IkeSa,
    name: str,
    offered: ChildOffer,
    negotiated: _Negotiated,
    local_ts: tuple[TrafficSelector, ...],
    remote_ts: tuple[TrafficSelector, ...],
    mode: Mode,
    rekeyed: bytes | None = None,
) -> tuple[ChildSa, bytes, tuple[Payload, ...]]:
    """The pair our answer makes (our SPI and Nr fresh, KEYMAT from this exchange, RFC 7296 §2.17),
    our nonce, and the answer's payloads."""
    spi = fresh_spi(sa.services.random_bytes, 4)
    nonce = sa.services.random_bytes(NONCE_SIZE)
    child = make_child(
        sa,
        name,
        negotiated.chosen,
        spi,
        negotiated.chosen.spi,
        local_ts,
        remote_ts,
        mode,
        initiated=False,
        nonces=(offered.nonce, nonce),
        shared_secret=negotiated.shared_secret,
        rekeyed=rekeyed,
    )
    return child, nonce, _answer(negotiated, spi, nonce, remote_ts, local_ts, mode)


# --------------------------------------------------------------------------- the peer's requests


@attrs.define(eq=False)
class CreateChildResponder(Exchange):
    """The peer's request for a new Child SA (RFC 7296 §1.3.1)."""

    exchange_type = ExchangeType.CREATE_CHILD_SA

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply:
        offered = read_child_offer(request.message)
        if sa.peer is None:
            raise ChildSaError(
                "this end started the IKE SA and takes no Child SAs", NotifyType.NO_ADDITIONAL_SAS
            )
        limit = sa.config.limits.child_sa_max
        if sa.live_children() >= limit:
            raise ChildSaError(f"the IKE SA holds {limit} Child SAs, the limit", NotifyType.NO_ADDITIONAL_SAS)
        config = select_child(sa.peer.children, offered.tsi, offered.tsr)
        if config.refuse:
            raise ChildSaError(
                f"child '{config.name}' refuses Child SAs by policy", NotifyType.TS_UNACCEPTABLE
            )
        if sa.config.impair.refuse_child:
            raise ChildSaError(
                "impairment refuse_child: every Child SA is refused", NotifyType.TS_UNACCEPTABLE
            )
        remote_policy = config.remote_ts
        pool = sa.services.pools.get(config.pool) if config.pool is not None else None
        leases = pool.leases(sa.local_spi) if pool is not None else ()
        if leases:  # the peer's side is its leased addresses (RFC 7296 §2.19)
            remote_policy = tuple(TrafficSelectorPolicy.host(address) for address in leases)
        remote_ts, local_ts = narrow(remote_policy, offered.tsi), narrow(config.local_ts, offered.tsr)
        if not remote_ts or not local_ts:
            raise ChildSaError(
                f"child '{config.name}' does not cover the selectors", NotifyType.TS_UNACCEPTABLE
            )
        mode = _mode(config.mode, offered, config.name)
        negotiated = _negotiate(sa, offered, config.esp_proposals)
        child, _, payloads = _new_pair(sa, config.name, offered, negotiated, local_ts, remote_ts, mode)
        pfs = f", PFS {negotiated.ke_reply.group.name}" if negotiated.ke_reply is not None else ""
        result = f"new Child SA {child.inbound_spi.hex()}/{child.outbound_spi.hex()} ('{config.name}'{pfs})"
        return Reply(payloads, result, (InstallChildSa(child),))


@attrs.define(eq=False)
class RekeyChildResponder(Exchange):
    """The peer's rekey of a Child SA (RFC 7296 §1.3.3, §2.8).

    ``partner`` is our own rekey of the same pair when both are in flight
    (RFC 7296 §2.8.1); it then settles which new pair survives.  ``made`` and
    ``nonces`` are the new pair's inbound SPI and this exchange's (Ni, Nr).
    """

    exchange_type = ExchangeType.CREATE_CHILD_SA

    partner: RekeyChildSa | None = None
    made: bytes | None = None
    nonces: tuple[bytes, bytes] = (b"", b"")

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply:
        message = request.message
        rekey = notifies(message, NotifyType.REKEY_SA)[0]
        if rekey.protocol_id != ProtocolId.ESP:
            raise ChildSaNotFound(f"REKEY_SA of protocol {rekey.protocol_id}", rekey.protocol_id, rekey.spi)
        old = sa.child_by_outbound(rekey.spi)
        if old is None:
            raise ChildSaNotFound(
                f"no Child SA with outbound SPI {rekey.spi.hex()}", ProtocolId.ESP, rekey.spi
            )
        if old.state in (ChildSaState.DELETING, ChildSaState.REKEYED):
            raise TemporaryFailure(f"Child SA {old.inbound_spi.hex()} is being deleted ({old.state.value})")
        offered = read_child_offer(message)
        params = old.params
        # §2.8: the new pair keeps the selectors and the mode of the old one.
        remote_ts = narrow(tuple(to_policy(t) for t in params.remote_ts), offered.tsi)
        local_ts = narrow(tuple(to_policy(t) for t in params.local_ts), offered.tsr)
        if not remote_ts or not local_ts:
            raise ChildSaError("the rekey's selectors leave the old pair's", NotifyType.TS_UNACCEPTABLE)
        mode = _mode(params.mode, offered, params.name)
        proposals, _ = sa.child_policy(params.name)
        negotiated = _negotiate(sa, offered, proposals)
        child, nonce, payloads = _new_pair(
            sa, params.name, offered, negotiated, local_ts, remote_ts, mode, rekeyed=old.inbound_spi
        )
        spi = child.inbound_spi
        self.made, self.nonces = spi, (offered.nonce, nonce)
        after: list[AfterSend] = [InstallChildSa(child)]
        if self.partner is None:
            after.append(_Replaced(old.inbound_spi))  # the peer deletes the old pair (§2.8)
        pfs = f", PFS {negotiated.ke_reply.group.name}" if negotiated.ke_reply is not None else ""
        collision = (
            "; we rekey it too: the nonces decide (RFC 7296 §2.8.1)" if self.partner is not None else ""
        )
        made = f"{spi.hex()}/{child.outbound_spi.hex()}"
        result = f"Child SA {old.inbound_spi.hex()} rekeyed as {made}{pfs}{collision}"
        return Reply(payloads, result, tuple(after))


@attrs.frozen(slots=True)
class _Replaced:
    """The old pair of a rekey the peer made: the peer deletes it; if it does not, we do after a grace."""

    inbound_spi: bytes

    def apply(self, sa: IkeSa, sent: Sent, when: Instant) -> None:
        _doom(sa, self.inbound_spi, when.now)


def _doom(sa: IkeSa, inbound_spi: bytes, now: float) -> None:
    """The peer should delete this pair (RFC 7296 §2.8, §2.8.1); we do it after REKEYED_GRACE if not."""
    child = sa.children.get(inbound_spi)
    if child is not None and child.state is not ChildSaState.DELETING:
        child.state = ChildSaState.REKEYED
        child.doomed_at = now + REKEYED_GRACE


# --------------------------------------------------------------------------- our rekey


def _pfs_method(child: ChildSa, proposals: tuple[EspProposal, ...]) -> KeyExchangeId | None:
    """The key exchange method for our rekey of ``child``: the one it was made with if our proposals
    list it, else the first they list; ``None`` when they list none (no PFS)."""
    listed = [group for proposal in proposals for group in proposal.key_exchange]
    previous = child.params.proposal.key_exchange
    if previous is not None and previous in listed:
        return previous
    return listed[0] if listed else None


def _first(proposals: tuple[EspProposal, ...], method: KeyExchangeId | None) -> tuple[EspProposal, ...]:
    """The proposals with ``method`` first among their groups, so that KEi matches the first choice."""
    if method is None:
        return proposals
    return tuple(
        attrs.evolve(p, key_exchange=(method, *(g for g in p.key_exchange if g != method)))
        if method in p.key_exchange
        else p
        for p in proposals
    )


@attrs.define(eq=False)
class RekeyChildSa(Exchange):
    """Our rekey of the Child SA pair with inbound SPI ``target`` (RFC 7296 §1.3.3, §2.8, §2.8.1)."""

    exchange_type = ExchangeType.CREATE_CHILD_SA
    follows_child_sas = True

    target: bytes = b""
    method: KeyExchangeId | None = None  #: set by INVALID_KE_PAYLOAD
    partner: RekeyChildResponder | None = None
    retries: int = 0
    started: bool = False
    _proposals: tuple[EspProposal, ...] = ()
    _spi: bytes = b""
    _nonce: bytes = attrs.field(default=b"", repr=False)
    nonce_r: bytes = attrs.field(default=b"", repr=False)  #: the peer's, from its response
    _kex: KeyExchange | None = attrs.field(default=None, repr=False)
    #: What our request offered: TSi, TSr and the mode (the old pair's, RFC 7296 §2.9.2).
    _offered: tuple[tuple[TrafficSelector, ...], tuple[TrafficSelector, ...], Mode] | None = None

    @classmethod
    def of(cls, target: bytes) -> RekeyChildSa:
        return cls(target, intent=Intent(Operation.REKEY_CHILD, frozenset({target})))

    def obsolete(self, sa: IkeSa) -> str | None:
        child = sa.children.get(self.target)
        if sa.state is not IkeSaState.ESTABLISHED:
            return f"the IKE SA is {sa.state.value}"
        if child is None:
            return "the Child SA is gone"
        expected = ChildSaState.REKEYING if self.started else ChildSaState.INSTALLED
        if child.state is not expected:
            return f"the Child SA is {child.state.value}"
        if not sa.child_policy(child.name)[0]:
            return f"no ESP proposals for child '{child.name}'"
        return None

    def build_request(self, sa: IkeSa, when: Instant) -> tuple[Payload, ...]:
        """N(REKEY_SA), [N(USE_TRANSPORT_MODE)], SA, Ni, [KEi], TSi, TSr (RFC 7296 §1.3.3)."""
        child = sa.children[self.target]
        child.state = ChildSaState.REKEYING
        self.started = True
        proposals, _ = sa.child_policy(child.name)
        if self.method is None:
            self.method = _pfs_method(child, proposals)
        self._proposals = _first(proposals, self.method)
        self._spi = fresh_spi(sa.services.random_bytes, 4)
        self._nonce = sa.services.random_bytes(NONCE_SIZE)
        params = child.params
        payloads: list[Payload] = [NotifyPayload(NotifyType.REKEY_SA, b"", ProtocolId.ESP, self.target)]
        if params.mode is Mode.TRANSPORT:
            payloads.append(NotifyPayload(NotifyType.USE_TRANSPORT_MODE))
        payloads += [offer(self._proposals, self._spi), NoncePayload(self._nonce)]
        if self.method is not None:
            self._kex = sa.services.ke_factory.initiate(self.method)
            payloads.append(KePayload(self.method, self._kex.public_value))
        payloads += [TsiPayload(params.local_ts), TsrPayload(params.remote_ts)]
        self._offered = (params.local_ts, params.remote_ts, params.mode)
        return tuple(payloads)

    def process_response(self, sa: IkeSa, response: Received, when: Instant) -> Done | NextRound:
        message = response.message
        old = sa.children.get(self.target)
        refusal = error_notify(message.payloads)
        if refusal is not None:
            return self._refused(sa, refusal, old, when.now)
        new = self._accept(sa, message, old)
        child_established(sa, new, when.now)
        self._kex = None
        made = f"Child SA {self.target.hex()} rekeyed as {new.inbound_spi.hex()}/{new.outbound_spi.hex()}"
        if old is None:
            # The peer deleted the old pair while our rekey was in flight: it wants it gone.
            reason = "the pair it replaces was deleted by the peer meanwhile"
            return Done(f"{made}; {reason}", then=(DeleteChildSa.of((new.inbound_spi,), reason),))
        theirs = self.partner.made if self.partner is not None else None
        if theirs is not None and theirs in sa.children:
            assert self.partner is not None
            if lowest_nonce_is_ours((self._nonce, self.nonce_r), self.partner.nonces):
                # RFC 7296 §2.8.1: ours holds the lowest nonce: we delete it, the peer deletes the old.
                _doom(sa, self.target, when.now)
                reason = "redundant after a rekey collision (lowest nonce, RFC 7296 §2.8.1)"
                return Done(
                    f"{made}; collision: the peer's survives",
                    then=(DeleteChildSa.of((new.inbound_spi,), reason),),
                )
            _doom(sa, theirs, when.now)  # the peer deletes the pair it made
            old.state = ChildSaState.REKEYED
            reason = "rekeyed (collision: ours survives, RFC 7296 §2.8.1)"
            return Done(f"{made}; collision: ours survives", then=(DeleteChildSa.of((self.target,), reason),))
        old.state = ChildSaState.REKEYED
        return Done(made, then=(DeleteChildSa.of((self.target,), "rekeyed"),))

    def _accept(self, sa: IkeSa, message: Message, old: ChildSa | None) -> ChildSa:
        """The pair the peer agreed to; INVALID_SYNTAX (the IKE SA ends) when it is not what we offered."""
        sa_payload = require(message, SaPayload, "SA")
        tsi, tsr = require(message, TsiPayload, "TSi"), require(message, TsrPayload, "TSr")
        nonce = _nonce(message)
        if len(sa_payload.proposals) != 1:
            raise DecodeError("the responder's SA payload must carry exactly one proposal", offset=28)
        chosen = select_esp_proposal(
            self._proposals,
            sa_payload,
            prefer_initiator_order=True,
            require_key_exchange=self.method is not None,
        )
        if isinstance(chosen, NoProposalChosen) or len(chosen.spi) != 4:
            raise DecodeError("the responder chose an ESP proposal we did not offer", offset=28)
        shared: bytes | None = None
        if self.method is not None:
            ke = require(message, KePayload, "KE")
            if ke.group != self.method or chosen.key_exchange != self.method or self._kex is None:
                raise DecodeError(f"KEr of {ke.group.name}, we sent {self.method.name}", offset=28)
            try:
                shared = self._kex.shared_secret(ke.data)
            except InvalidKeyExchangeValue as error:
                raise DecodeError(f"KEr refused: {error.reason}", offset=28) from None
        elif chosen.key_exchange not in (None, KeyExchangeId.NONE):
            raise DecodeError("the responder chose a key exchange we did not send", offset=28)
        self.nonce_r = nonce
        local_ts = tuple(t for t in tsi.selectors if isinstance(t, TrafficSelector))
        remote_ts = tuple(t for t in tsr.selectors if isinstance(t, TrafficSelector))
        mode = Mode.TRANSPORT if notifies(message, NotifyType.USE_TRANSPORT_MODE) else Mode.TUNNEL
        if self._offered is not None:
            offered_tsi, offered_tsr, offered_mode = self._offered
            # RFC 7296 §2.9: the responder may narrow what we offered, never widen it; the new pair
            # is installed, routed and checked against these selectors (RFC 4301 §5.1, §5.2).
            if not within(tsi.selectors, offered_tsi) or not within(tsr.selectors, offered_tsr):
                raise DecodeError("the responder's TSi/TSr are not inside the ones we offered", offset=28)
            if mode is Mode.TRANSPORT and offered_mode is not Mode.TRANSPORT:  # RFC 7296 §1.3.1
                raise DecodeError("USE_TRANSPORT_MODE in the response to a tunnel mode request", offset=28)
        name = old.name if old is not None else "rekeyed"
        return make_child(
            sa,
            name,
            chosen,
            self._spi,
            chosen.spi,
            local_ts,
            remote_ts,
            mode,
            initiated=True,
            nonces=(self._nonce, nonce),
            shared_secret=shared,
            rekeyed=self.target,
        )

    def _refused(
        self, sa: IkeSa, refusal: NotifyPayload, old: ChildSa | None, now: float
    ) -> Done | NextRound:
        kind = refusal.notify_type
        if kind == NotifyType.INVALID_KE_PAYLOAD and self.retries < MAX_KE_RETRIES:
            data = refusal.data
            wanted = KeyExchangeId(int.from_bytes(data, "big")) if len(data) == 2 else None
            listed = {g for p in self._proposals for g in p.key_exchange}
            if wanted is not None and wanted in listed and sa.services.ke_factory.supports(wanted):
                self.retries += 1
                self.method = wanted
                return NextRound()  # a new exchange with the group the peer wants (RFC 7296 §1.3)
        self._kex = None
        if old is not None and old.state is ChildSaState.REKEYING:
            old.state = ChildSaState.INSTALLED
        if self._settle_with_partner(sa, now):
            return Done(f"refused with {kind.name}; the peer's rekey of the same pair stands")
        if kind == NotifyType.TEMPORARY_FAILURE and old is not None:
            old.rekey_at = now + RETRY_DELAY * (1 + sa.jitter())  # §2.25: wait, then retry
            return Done(f"refused with TEMPORARY_FAILURE; retried in {old.rekey_at - now:.0f} s")
        if kind == NotifyType.CHILD_SA_NOT_FOUND and old is not None:
            # §2.25: delete it silently; the initiator of the IKE SA creates it anew if it wants it.
            del sa.children[self.target]
            sa.emit(
                ChildSaDeleted(
                    *sa.ids,
                    old.inbound_spi,
                    old.outbound_spi,
                    "the peer does not know it (CHILD_SA_NOT_FOUND)",
                )
            )
            return Done("refused with CHILD_SA_NOT_FOUND; the pair is removed")
        return Done(f"refused with {kind.name}; the pair ends at its hard lifetime")

    def _settle_with_partner(self, sa: IkeSa, now: float) -> bool:
        """Ours failed or will never complete: a linked rekey of the peer's is the only one (§2.8.1)."""
        if self.partner is None or self.partner.made not in sa.children:
            return False
        _doom(sa, self.target, now)  # the peer made the survivor: it deletes the old pair
        return True

    def abandon(self, sa: IkeSa, reason: str) -> None:
        self._kex = None
        old = sa.children.get(self.target)
        if sa.state is IkeSaState.CLOSED or old is None:
            return
        if old.state is ChildSaState.REKEYING:
            old.state = ChildSaState.INSTALLED

    def collide(self, sa: IkeSa, theirs: Exchange) -> Collision:
        """RFC 7296 §2.25.1: the peer rekeys the same pair (linked, §2.8.1), or the IKE SA (refused)."""
        operation = theirs.intent.operation
        linked = operation is Operation.REKEY_CHILD and self.target in theirs.intent.children
        if linked and isinstance(theirs, RekeyChildResponder):
            self.partner, theirs.partner = theirs, self
            return Collision.LINK
        if operation is Operation.REKEY_IKE:
            return Collision.REFUSE
        return Collision.NONE
