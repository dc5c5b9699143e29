"""Rekeying the IKE SA with CREATE_CHILD_SA (RFC 7296 §1.3.2, §2.8, §2.8.2, §2.18, §2.25.2).

A rekey makes a new IKE SA beside the old one: new SPIs (each end supplies
its own in the SA payload), SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)
with the old SA's PRF (:func:`~responder.core.keys.rekey_skeyseed`), the
SK_* keys cut as in §2.14 with the new SPIs and nonces, Message IDs from 0
and windows of 1 on both sides.  The initiator of the rekey is the new SA's
original initiator.  The new SA inherits every Child SA of the old one
(:func:`~responder.core.exchanges.base.move_children`) and with them their
address leases; the old SA is ``REKEYED``: it answers only INFORMATIONAL
requests (its Delete) and refuses CREATE_CHILD_SA with TEMPORARY_FAILURE
(§2.8.2: "an IKE SA that it is currently trying to close").  The rekey's
initiator deletes the old SA, and that Delete is the last request on it
(§2.8).  Should the peer not delete an old SA it should, we do after
:data:`~responder.core.ike_sa.REKEYED_GRACE`.

* :class:`RekeyIkeResponder` answers the peer's rekey.
* :class:`RekeyIkeSa` is ours, at the IKE SA's soft lifetime.  It offers
  our IKE proposals with the SA's current key exchange method first.

Collisions (§2.8.2, §2.25.2): if both ends rekey at once, each answers the
other as usual (the two exchanges are linked); once ours is answered, the new
IKE SA holding the lowest of the four nonces is deleted by the end that made
it, the other inherits the Child SAs, and the end that made the survivor
deletes the old SA.  If the peer deletes the old SA while our rekey waits
(it finished first without noticing ours), ours is forgotten and the Child
SAs go to the SA the peer's rekey made.  A request to create or rekey a
Child SA while ours is in flight is refused with TEMPORARY_FAILURE.
"""

from __future__ import annotations

import attrs

from responder.core.config import IkeProposal
from responder.core.enums import ExchangeType, KeyExchangeId, NotifyType
from responder.core.errors import (
    ChildSaError,
    DecodeError,
    InvalidKePayload,
    InvalidKeyExchangeValue,
    TemporaryFailure,
)
from responder.core.events import IkeSaRekeyed
from responder.core.exchanges.base import (
    AfterSend,
    Collision,
    Done,
    Exchange,
    Intent,
    NextRound,
    Operation,
    Reply,
    SpawnIkeSa,
    move_children,
)
from responder.core.exchanges.common import error_notify, fresh_spi, require
from responder.core.exchanges.ike_auth import announce_established
from responder.core.exchanges.informational import DeleteIkeSa
from responder.core.ike_sa import REKEYED_GRACE, RETRY_DELAY, IkeSa, IkeSaState
from responder.core.instant import Instant
from responder.core.key_exchange import KeyExchange
from responder.core.keys import derive_ike_sa_keys, rekey_skeyseed
from responder.core.message_layer import Received, Sent
from responder.core.messages import Message
from responder.core.payloads import KePayload, NoncePayload, NotifyPayload, Payload, SaPayload
from responder.core.proposals import ChosenProposal, NoProposalChosen, offer, select_ike_proposal
from responder.core.sk_payload import sk_protections

__all__ = [
    "REKEYING_IKE_SA",
    "RekeyIkeResponder",
    "RekeyIkeSa",
    "RekeyedRefusal",
    "key_exchange_methods",
    "lowest_nonce_is_ours",
]

NONCE_SIZE = 32  #: RFC 7296 §2.10, as in IKE_SA_INIT
MAX_KE_RETRIES = 2  #: INVALID_KE_PAYLOAD answers we follow in one rekey of ours
REKEYING_IKE_SA = Intent(Operation.REKEY_IKE)


def lowest_nonce_is_ours(ours: tuple[bytes, bytes], theirs: tuple[bytes, bytes]) -> bool:
    """Whether the lowest of the four nonces of two colliding rekeys is in ours (RFC 7296 §2.8.1).

    "Lowest" is octet by octet, a nonce that ends first being the lower: the
    order Python gives ``bytes``.
    """
    return min(ours) < min(theirs)


def _ike_proposals(sa: IkeSa) -> tuple[IkeProposal, ...]:
    """The IKE proposals this end accepts: the initiator's settings, or the configuration."""
    return sa.settings.ike_proposals if sa.settings is not None else sa.config.ike_proposals


def key_exchange_methods(sa: IkeSa) -> tuple[KeyExchangeId, ...]:
    """The key exchange methods our IKE proposals allow, in their order (also PFS's, in CREATE_CHILD_SA)."""
    methods: list[KeyExchangeId] = []
    for proposal in _ike_proposals(sa):
        methods += (m for m in proposal.key_exchange if m not in methods)
    return tuple(m for m in methods if sa.services.ke_factory.supports(m))


def _new_ike_sa(
    old: IkeSa,
    chosen: ChosenProposal,
    shared_secret: bytes,
    *,
    we_initiated: bool,
    nonces: tuple[bytes, bytes],
    spis: tuple[bytes, bytes],
    now: float,
) -> IkeSa:
    """The IKE SA a rekey of ``old`` makes (RFC 7296 §1.3.2, §2.18), established, its lifetime started.

    ``nonces`` and ``spis`` are the new SA's (initiator's, responder's): the
    rekey's initiator is its original initiator.
    """
    assert old.prf is not None and old.keys is not None
    nonce_i, nonce_r = nonces
    spi_i, spi_r = spis
    new = IkeSa(
        services=old.services,
        is_original_initiator=we_initiated,
        spi_i=spi_i,
        spi_r=spi_r,
        path=old.path,
        created_at=now,
        state=IkeSaState.ESTABLISHED,
        settings=old.settings,
    )
    new.local_id, new.remote_id, new.peer_name, new.peer = (
        old.local_id,
        old.remote_id,
        old.peer_name,
        old.peer,
    )
    new.peer_identity = old.peer_identity
    new.peer_supports_childless = old.peer_supports_childless
    if old.layer.reassembly is not None:  # what IKE_SA_INIT negotiated holds for the new SA too
        new.layer.enable_fragmentation(old.layer.reassembly.limits)
    new.nat_detected_local, new.nat_detected_remote = old.nat_detected_local, old.nat_detected_remote
    new.rekeyed_from = old.local_spi
    new.proposal = new.services.intern(chosen.without_spi())  # the SPIs are the new SA's (issue 14)
    prf, encryption, integrity = (
        chosen.prf_transform(),
        chosen.encryption_transform(),
        chosen.integrity_transform(),
    )
    # §2.18: the old SA's PRF and SK_d, the new g^ir and the rekey's nonces.
    seed = rekey_skeyseed(old.prf, old.keys.sk_d, shared_secret, nonce_i, nonce_r)
    new.keys = derive_ike_sa_keys(prf, encryption, integrity, seed, nonce_i, nonce_r, spi_i, spi_r)
    outbound, inbound = sk_protections(new.keys, encryption, integrity, is_original_initiator=we_initiated)
    new.layer.install_keys(inbound, outbound)  # windows stay 1 (§1.3.2)
    new.start_lifetime(now)
    announce_established(new)
    new.forget_auth_state()  # no IKE_AUTH: its SK_pi and SK_pr are never used
    return new


def retire(old: IkeSa, heir: IkeSa, *, deleting: bool, now: float) -> None:
    """``old`` was rekeyed: its Child SAs and queued requests go to ``heir``; it waits for its Delete,
    which we send (``deleting``) or the peer does (then we do after REKEYED_GRACE)."""
    move_children(old, heir)
    old.state = IkeSaState.REKEYED
    old.rekey_at = None
    old.doomed_at = None if deleting else now + REKEYED_GRACE
    old.emit(IkeSaRekeyed(*old.ids, heir.local_spi, deleting))


@attrs.frozen(slots=True)
class _Retire:
    """After our answer to the peer's rekey: the old SA hands everything to the new one (§1.3.2)."""

    heir: IkeSa

    def apply(self, sa: IkeSa, sent: Sent, when: Instant) -> None:
        retire(sa, self.heir, deleting=False, now=when.now)


def _nonce(message: Message) -> bytes:
    nonce = require(message, NoncePayload, "Nonce").data
    if not 16 <= len(nonce) <= 256:
        raise DecodeError(f"nonce of {len(nonce)} octets (RFC 7296 §3.9)", offset=28)
    return nonce


# --------------------------------------------------------------------------- the peer's rekey


@attrs.define(eq=False)
class RekeyIkeResponder(Exchange):
    """The peer's rekey of the IKE SA (RFC 7296 §1.3.2).

    ``partner`` is our own rekey when both are in flight (§2.8.2); ``made`` the
    new IKE SA our answer makes, ``nonces`` this exchange's (Ni, Nr).
    """

    exchange_type = ExchangeType.CREATE_CHILD_SA

    partner: RekeyIkeSa | None = None
    made: IkeSa | None = attrs.field(default=None, repr=False)
    nonces: tuple[bytes, bytes] = (b"", b"")

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply:
        message = request.message
        sa_payload = require(message, SaPayload, "SA")
        nonce_i = _nonce(message)
        ke = require(message, KePayload, "KE")  # §1.3.2: "The KEi payload MUST be included"
        limit = sa.config.limits.ike_sa_max
        if sa.services.sa_count() >= limit:  # the old SA lingers until deleted: each rekey holds two
            raise TemporaryFailure(f"{limit} IKE SAs held (ike_sa_max)")
        chosen = select_ike_proposal(
            _ike_proposals(sa),
            sa_payload,
            prefer_initiator_order=sa.config.prefer_initiator_order,
            ke_hint=ke.group,
            spi_size=8,
        )
        if isinstance(chosen, NoProposalChosen):
            raise ChildSaError(f"no IKE proposal acceptable: {chosen}", NotifyType.NO_PROPOSAL_CHOSEN)
        group = chosen.key_exchange
        assert group is not None  # IKE proposals always choose a method
        if ke.group != group:
            raise InvalidKePayload(
                f"KEi of {ke.group.name}, the chosen proposal needs {group.name}", int(group)
            )
        if chosen.spi == bytes(8):
            raise DecodeError("IKE SA rekey with a zero SPI", offset=28)
        try:
            ke_value, shared_secret = sa.services.ke_factory.respond(group, ke.data)
        except InvalidKeyExchangeValue as error:
            raise ChildSaError(f"KEi refused: {error.reason}", NotifyType.NO_PROPOSAL_CHOSEN) from None
        our_spi = fresh_spi(sa.services.random_bytes, 8)
        nonce_r = sa.services.random_bytes(NONCE_SIZE)
        new = _new_ike_sa(
            sa,
            chosen,
            shared_secret,
            we_initiated=False,
            nonces=(nonce_i, nonce_r),
            spis=(chosen.spi, our_spi),
            now=when.now,
        )
        self.made, self.nonces = new, (nonce_i, nonce_r)
        after: list[AfterSend] = [SpawnIkeSa(new)]
        if self.partner is None:
            after.append(_Retire(new))
        payloads = (
            SaPayload((chosen.as_proposal(our_spi),)),
            NoncePayload(nonce_r),
            KePayload(group, ke_value),
        )
        collision = (
            "; we rekey it too: the nonces decide (RFC 7296 §2.8.2)" if self.partner is not None else ""
        )
        result = f"IKE SA rekeyed by the peer: new SPIs {chosen.spi.hex()}/{our_spi.hex()}{collision}"
        return Reply(payloads, result, tuple(after))


@attrs.define(eq=False)
class RekeyedRefusal(Exchange):
    """A CREATE_CHILD_SA on an IKE SA that was rekeyed already: TEMPORARY_FAILURE (RFC 7296 §2.8.2)."""

    exchange_type = ExchangeType.CREATE_CHILD_SA

    @classmethod
    def for_request(cls, sa: IkeSa, request: Received) -> RekeyedRefusal:
        return cls()

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply:
        raise TemporaryFailure("the IKE SA was rekeyed and is being deleted")


# --------------------------------------------------------------------------- our rekey


@attrs.define(eq=False)
class RekeyIkeSa(Exchange):
    """Our rekey of the IKE SA (RFC 7296 §1.3.2), at its soft lifetime."""

    exchange_type = ExchangeType.CREATE_CHILD_SA
    exclusive = True
    intent: Intent = attrs.field(default=REKEYING_IKE_SA, kw_only=True)

    method: KeyExchangeId | None = None
    partner: RekeyIkeResponder | None = None
    retries: int = 0
    _proposals: tuple[IkeProposal, ...] = ()
    _spi: bytes = b""
    _nonce: bytes = attrs.field(default=b"", repr=False)
    _kex: KeyExchange | None = attrs.field(default=None, repr=False)

    def obsolete(self, sa: IkeSa) -> str | None:
        return None if sa.state is IkeSaState.ESTABLISHED else f"the IKE SA is {sa.state.value}"

    def build_request(self, sa: IkeSa, when: Instant) -> tuple[Payload, ...]:
        """SA (with our new SPI), Ni, KEi (RFC 7296 §1.3.2)."""
        proposals = _ike_proposals(sa)
        if self.method is None:
            current = sa.proposal.key_exchange if sa.proposal is not None else None
            listed = [m for p in proposals for m in p.key_exchange]
            self.method = current if current in listed else listed[0]
        method = self.method
        self._proposals = tuple(
            attrs.evolve(p, key_exchange=(method, *(m for m in p.key_exchange if m != method)))
            if method in p.key_exchange
            else p
            for p in proposals
        )
        self._spi = fresh_spi(sa.services.random_bytes, 8)
        self._nonce = sa.services.random_bytes(NONCE_SIZE)
        self._kex = sa.services.ke_factory.initiate(method)
        return (
            offer(self._proposals, self._spi),
            NoncePayload(self._nonce),
            KePayload(method, self._kex.public_value),
        )

    def process_response(self, sa: IkeSa, response: Received, when: Instant) -> Done | NextRound:
        message = response.message
        refusal = error_notify(message.payloads)
        if refusal is not None:
            return self._refused(sa, refusal, when.now)
        chosen, nonce_r, shared_secret = self._accept(sa, message)
        self._kex = None
        new = _new_ike_sa(
            sa,
            chosen,
            shared_secret,
            we_initiated=True,
            nonces=(self._nonce, nonce_r),
            spis=(self._spi, chosen.spi),
            now=when.now,
        )
        sa.spawned += (new,)
        made = f"IKE SA rekeyed: new SPIs {self._spi.hex()}/{chosen.spi.hex()}"
        theirs = self.partner.made if self.partner is not None else None
        if theirs is not None and theirs.state is IkeSaState.ESTABLISHED:
            assert self.partner is not None
            if lowest_nonce_is_ours((self._nonce, nonce_r), self.partner.nonces):
                # §2.8.2: ours holds the lowest nonce: we delete it; the peer's inherits the Child SAs
                # and the peer, which made it, deletes the old SA.
                new.layer.enqueue(
                    DeleteIkeSa("redundant after a rekey collision (lowest nonce, RFC 7296 §2.8.2)")
                )
                retire(sa, theirs, deleting=False, now=when.now)
                return Done(f"{made}; collision: the peer's survives")
            theirs.doomed_at = when.now + REKEYED_GRACE  # the peer deletes the SA it made
            sa.touched += (theirs,)  # the endpoint takes its new deadline
            retire(sa, new, deleting=True, now=when.now)
            return Done(f"{made}; collision: ours survives", then=(DeleteIkeSa("rekeyed"),))
        retire(sa, new, deleting=True, now=when.now)
        return Done(made, then=(DeleteIkeSa("rekeyed"),))

    def _accept(self, sa: IkeSa, message: Message) -> tuple[ChosenProposal, bytes, bytes]:
        sa_payload = require(message, SaPayload, "SA")
        ke = require(message, KePayload, "KE")
        nonce_r = _nonce(message)
        if len(sa_payload.proposals) != 1:
            raise DecodeError("the responder's SA payload must carry exactly one proposal", offset=28)
        chosen = select_ike_proposal(self._proposals, sa_payload, prefer_initiator_order=True, spi_size=8)
        if isinstance(chosen, NoProposalChosen) or chosen.spi == bytes(8):
            raise DecodeError("the responder chose an IKE proposal we did not offer", offset=28)
        if ke.group != self.method or chosen.key_exchange != self.method or self._kex is None:
            raise DecodeError(f"KEr of {ke.group.name}, we sent {self.method}", offset=28)
        try:
            shared_secret = self._kex.shared_secret(ke.data)
        except InvalidKeyExchangeValue as error:
            raise DecodeError(f"KEr refused: {error.reason}", offset=28) from None
        return chosen, nonce_r, shared_secret

    def _refused(self, sa: IkeSa, refusal: NotifyPayload, now: float) -> Done | NextRound:
        kind = refusal.notify_type
        if kind == NotifyType.INVALID_KE_PAYLOAD and self.retries < MAX_KE_RETRIES:
            data = refusal.data
            wanted = KeyExchangeId(int.from_bytes(data, "big")) if len(data) == 2 else None
            if wanted is not None and wanted in key_exchange_methods(sa):
                self.retries += 1
                self.method = wanted
                return NextRound()
        self._kex = None
        if self._settle_with_partner(sa, now):
            return Done(f"refused with {kind.name}; the peer's rekey stands")
        if kind == NotifyType.TEMPORARY_FAILURE:
            sa.rekey_at = now + RETRY_DELAY * (1 + sa.jitter())  # §2.25: wait, then retry
            return Done(f"refused with TEMPORARY_FAILURE; retried in {sa.rekey_at - now:.0f} s")
        return Done(f"refused with {kind.name}; the IKE SA ends at its hard lifetime")

    def _settle_with_partner(self, sa: IkeSa, now: float) -> bool:
        """Ours failed or is forgotten: the peer's linked rekey is the only one; its SA inherits."""
        theirs = self.partner.made if self.partner is not None else None
        if theirs is None or theirs.state is not IkeSaState.ESTABLISHED or sa.state is IkeSaState.REKEYED:
            return False
        retire(sa, theirs, deleting=False, now=now)
        return True

    def abandon(self, sa: IkeSa, reason: str) -> None:
        """§2.25.2: the peer deleted the old SA while ours waited, or ours went unanswered: the SA the
        peer's rekey made (if any) takes the Child SAs."""
        self._kex = None
        theirs = self.partner.made if self.partner is not None else None
        if theirs is None or theirs.state is not IkeSaState.ESTABLISHED or sa.state is IkeSaState.REKEYED:
            return
        if sa.state is IkeSaState.CLOSED:
            move_children(sa, theirs)
        else:  # yielded to the peer's Delete, which ends the old SA once answered
            retire(sa, theirs, deleting=False, now=sa.last_heard)

    def collide(self, sa: IkeSa, theirs: Exchange) -> Collision:
        """RFC 7296 §2.25.2 while we rekey the IKE SA."""
        operation = theirs.intent.operation
        if operation is Operation.REKEY_IKE and isinstance(theirs, RekeyIkeResponder):
            self.partner, theirs.partner = theirs, self
            return Collision.LINK  # §2.8.2: answer as usual; the nonces decide later
        if operation in (Operation.CREATE_CHILD, Operation.REKEY_CHILD):
            return Collision.REFUSE  # "SHOULD reply with TEMPORARY_FAILURE"
        if operation is Operation.DELETE_IKE:
            return Collision.YIELD  # "reply as usual, and forget about its own rekeying request"
        return Collision.NONE
