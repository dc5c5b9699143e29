"""IKE_SA_INIT (RFC 7296 §1.2, §2.6, §2.7, §2.10, §2.14, §2.23; RFC 6023).

Responder: :func:`respond` answers a new request the endpoint admitted.  No
IKE SA exists before it, so this is the one exchange answered without an
exchange object: until a proposal, a KE value and a nonce are accepted,
nothing is kept, and the refusals (NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD,
COOKIE, INVALID_SYNTAX) are answered statelessly, with the responder SPI zero
and a header built fresh, never copied from the request (RFC 7296 §2.6, §3.1,
row B10).  Otherwise a half-open :class:`IkeSa` is returned with its keys,
its response stored in its message layer as the answer to Message ID 0: a
copy of the request gets that response again until the first encrypted
request moves the window on, and is ignored after (RFC 7296 §2.1).

Both roles negotiate IKE fragmentation (RFC 7383 §2.3, row E1): the
responder answers IKEV2_FRAGMENTATION_SUPPORTED only when the request
carried it and ``Config.fragmentation`` is on; the initiator offers it with
``InitiatorSettings.fragmentation``.  IKE_SA_INIT itself is never fragmented
(§2.2, row E6).

Initiator: :class:`IkeSaInitInitiator` sends the request, follows a COOKIE
(resent with the cookie as the first payload, RFC 7296 §2.6) and an
INVALID_KE_PAYLOAD (resent with the named group, keeping the cookie,
RFC 7296 §1.2, §2.6.1) under the same Message ID 0 (§2.2), then computes the
keys and starts IKE_AUTH.
"""

from __future__ import annotations

import attrs

from responder.core.config import ChildlessPolicy
from responder.core.cookies import CookieJar
from responder.core.enums import CertEncoding, ExchangeType, KeyExchangeId, NotifyType
from responder.core.errors import DecodeError, InvalidKeyExchangeValue, LocalError
from responder.core.events import IkeSaInitRefused
from responder.core.exchanges.base import Done, Exchange, NextRound
from responder.core.exchanges.certauth import (
    peer_certreq,
    peer_certreq_cas,
    peer_signature_hashes,
    signature_hashes_notify,
)
from responder.core.exchanges.common import error_notify, fresh_spi, nat_detection_hash, notifies, require
from responder.core.exchanges.ike_auth import IkeAuthInitiator
from responder.core.ike_sa import IkeSa, IkeSaState, Services
from responder.core.instant import Instant
from responder.core.key_exchange import KeyExchange
from responder.core.keys import derive_ike_sa_keys, skeyseed
from responder.core.message_layer import Received, Sent
from responder.core.messages import Header, Message, encode_message
from responder.core.path import Path
from responder.core.payloads import CertReqPayload, KePayload, NoncePayload, NotifyPayload, Payload, SaPayload
from responder.core.proposals import ChosenProposal, NoProposalChosen, offer, select_ike_proposal
from responder.core.sk_payload import sk_protections

__all__ = ["MAX_INIT_RETRIES", "NONCE_SIZE", "IkeSaInitInitiator", "InitRefusal", "refuse", "respond"]

NONCE_SIZE = 32  #: RFC 7296 §2.10: at least 128 bits and half the PRF key size (SHA-512: 32)
MAX_INIT_RETRIES = 4  #: COOKIE and INVALID_KE_PAYLOAD answers followed, at most


@attrs.frozen
class InitRefusal:
    """A stateless answer to an IKE_SA_INIT request; no SA was created."""

    response: bytes
    notify: NotifyType
    reason: str


def refuse(request: Header, notify: NotifyType, reason: str, data: bytes = b"") -> InitRefusal:
    """A stateless answer to an IKE_SA_INIT request: one notify, responder SPI zero, and a header
    of our own (version 2.0, no Version flag), never the request's (RFC 7296 §2.6, §3.1)."""
    header = Header(
        spi_i=request.spi_i,
        spi_r=bytes(8),
        exchange_type=ExchangeType.IKE_SA_INIT,
        is_initiator=False,
        is_response=True,
        message_id=request.message_id,
    )
    response = encode_message(Message(header, (NotifyPayload(notify, data),)))
    return InitRefusal(response, notify, reason)


def _nat_notifies(spi_i: bytes, spi_r: bytes, path: Path) -> tuple[NotifyPayload, NotifyPayload]:
    """NAT_DETECTION_SOURCE_IP and _DESTINATION_IP for what we send on ``path`` (RFC 7296 §2.23)."""
    return (
        NotifyPayload(
            NotifyType.NAT_DETECTION_SOURCE_IP,
            nat_detection_hash(spi_i, spi_r, path.local_address, path.local_port),
        ),
        NotifyPayload(
            NotifyType.NAT_DETECTION_DESTINATION_IP,
            nat_detection_hash(spi_i, spi_r, path.remote_address, path.remote_port),
        ),
    )


def _detect_nat(sa: IkeSa, message: Message, path: Path) -> None:
    """Compare the peer's NAT detection hashes with what we see (RFC 7296 §2.23).

    Over TCP a detected NAT changes nothing (RFC 9329 §6.5, row A44); it is only
    recorded for the log.
    """
    spi_r = message.header.spi_r
    source = notifies(message, NotifyType.NAT_DETECTION_SOURCE_IP)
    destination = notifies(message, NotifyType.NAT_DETECTION_DESTINATION_IP)
    if not source or not destination:
        return
    remote = nat_detection_hash(sa.spi_i, spi_r, path.remote_address, path.remote_port)
    local = nat_detection_hash(sa.spi_i, spi_r, path.local_address, path.local_port)
    sa.nat_detected_remote = all(n.data != remote for n in source)
    sa.nat_detected_local = all(n.data != local for n in destination)


def _install_keys(sa: IkeSa, chosen: ChosenProposal, shared_secret: bytes) -> None:
    """SKEYSEED and SK_* (RFC 7296 §2.14), and the SK protections of both directions."""
    sa.proposal = sa.services.intern(chosen)  # one copy for the SAs that chose alike (issue 14)
    prf, encryption, integrity = (
        chosen.prf_transform(),
        chosen.encryption_transform(),
        chosen.integrity_transform(),
    )
    seed = skeyseed(prf, sa.nonce_i, sa.nonce_r, shared_secret)
    sa.keys = derive_ike_sa_keys(prf, encryption, integrity, seed, sa.nonce_i, sa.nonce_r, sa.spi_i, sa.spi_r)
    outbound, inbound = sk_protections(
        sa.keys, encryption, integrity, is_original_initiator=sa.is_original_initiator
    )
    sa.layer.install_keys(inbound, outbound)


# --------------------------------------------------------------------------- responder


def respond(
    *,
    services: Services,
    cookies: CookieJar,
    cookie_required: bool,
    data: bytes,
    message: Message,
    path: Path,
    when: Instant,
) -> IkeSa | InitRefusal:
    """Answer a new IKE_SA_INIT request (RFC 7296 §1.2)."""
    header = message.header
    config = services.config
    if header.message_id != 0:
        return refuse(header, NotifyType.INVALID_SYNTAX, f"IKE_SA_INIT with Message ID {header.message_id}")
    try:
        sa_payload = require(message, SaPayload, "SA")
        ke = require(message, KePayload, "KE")
        nonce = require(message, NoncePayload, "Nonce")
    except DecodeError as error:
        return refuse(header, NotifyType.INVALID_SYNTAX, error.reason)
    if not 16 <= len(nonce.data) <= 256:
        reason = f"nonce of {len(nonce.data)} octets (RFC 7296 §3.9)"
        return refuse(header, NotifyType.INVALID_SYNTAX, reason)

    if cookie_required:
        # RFC 7296 §2.6: the COOKIE must be the first payload; one that does not
        # verify is treated as absent, so a new cookie is sent.
        first = message.payloads[0]
        offered = (
            first.data
            if isinstance(first, NotifyPayload) and first.notify_type == NotifyType.COOKIE
            else None
        )
        now = when.now
        if offered is None or not cookies.check(now, offered, nonce.data, path.remote_address, header.spi_i):
            cookie = cookies.make(now, nonce.data, path.remote_address, header.spi_i)
            reason = "too many half-open SAs: " + ("cookie did not verify" if offered else "cookie requested")
            return refuse(header, NotifyType.COOKIE, reason, cookie)

    # The force_invalid_ke impairment hints its group instead of KEi's: where the proposal chosen
    # allows it, a KEi of another group is answered INVALID_KE_PAYLOAD naming it (RFC 7296 §1.2).
    forced = config.impair.force_invalid_ke
    chosen = select_ike_proposal(
        config.ike_proposals,
        sa_payload,
        prefer_initiator_order=config.prefer_initiator_order,
        ke_hint=forced if forced is not None else ke.group,
    )
    if isinstance(chosen, NoProposalChosen):
        return refuse(header, NotifyType.NO_PROPOSAL_CHOSEN, str(chosen))
    group = chosen.key_exchange
    assert group is not None  # select_ike_proposal always chooses a KE method
    if ke.group != group:
        # RFC 7296 §1.2, §3.10.1: name the group we selected; the initiator retries.
        return refuse(
            header,
            NotifyType.INVALID_KE_PAYLOAD,
            f"KEi uses {ke.group.name}, the selected proposal needs {group.name}"
            + (" (impairment force_invalid_ke)" if group == forced else ""),
            int(group).to_bytes(2, "big"),
        )
    try:
        ke_r, shared_secret = services.ke_factory.respond(group, ke.data)
    except InvalidKeyExchangeValue as error:
        # RFC 6989 §2.5: MAY answer INVALID_SYNTAX and forget the exchange.
        return refuse(header, NotifyType.INVALID_SYNTAX, f"KEi refused: {error.reason}")

    # The window stays one until IKE_AUTH completes (RFC 7296 §2.3).
    sa = IkeSa(
        services=services,
        is_original_initiator=False,
        spi_i=header.spi_i,
        spi_r=fresh_spi(services.random_bytes, 8),
        path=path,
        created_at=when.now,
        state=IkeSaState.INIT_DONE,
        nonce_i=nonce.data,
        nonce_r=services.random_bytes(NONCE_SIZE),
    )
    sa.peer_supports_childless = bool(notifies(message, NotifyType.CHILDLESS_IKEV2_SUPPORTED))
    _detect_nat(sa, message, path)
    payloads: list[Payload] = [
        SaPayload((chosen.as_proposal(b""),)),
        KePayload(group, ke_r),
        NoncePayload(sa.nonce_r),
        *_nat_notifies(sa.spi_i, sa.spi_r, path),
    ]
    if config.childless is not ChildlessPolicy.NEVER:
        payloads.append(NotifyPayload(NotifyType.CHILDLESS_IKEV2_SUPPORTED))  # RFC 6023 §3
    sa.peer_signature_hashes = peer_signature_hashes(message)
    sa.peer_certreq = peer_certreq(message)
    if cas := peer_certreq_cas(message):  # else the shared empty frozenset, not one per SA
        sa.peer_certreq_cas = cas
    if config.uses_certificates:
        if config.certreq_data:  # RFC 7296 §3.7: the CAs we trust
            payloads.append(CertReqPayload(CertEncoding.X509_CERT_SIGNATURE, config.certreq_data))
        payloads.append(signature_hashes_notify())  # RFC 7427 §4
    if config.fragmentation and notifies(message, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED):
        # RFC 7383 §2.3 (row E1): only if the initiator sent it.  Over TCP and TLS too: we then
        # receive fragments but never send any (RFC 9329 §7.5, row A57).
        payloads.append(NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
        sa.layer.enable_fragmentation(config.limits)
    sa.init_request = data
    response = Message(sa.header(ExchangeType.IKE_SA_INIT, 0, is_response=True), tuple(payloads))
    sa.init_response = sa.layer.answer_unprotected(0, data, response)
    _install_keys(sa, chosen, shared_secret)
    sa.send(sa.init_response, path)
    return sa


# --------------------------------------------------------------------------- initiator


@attrs.define(eq=False)
class IkeSaInitInitiator(Exchange):
    """Our IKE_SA_INIT request, and its retries after a COOKIE or INVALID_KE_PAYLOAD."""

    exchange_type = ExchangeType.IKE_SA_INIT
    protected = False

    key_exchange: KeyExchange | None = attrs.field(default=None, repr=False)
    method: KeyExchangeId | None = None
    cookie: bytes = b""
    retries: int = 0

    def _offered_groups(self, sa: IkeSa) -> list[KeyExchangeId]:
        assert sa.settings is not None
        return [k for p in sa.settings.ike_proposals for k in p.key_exchange]

    def build_request(self, sa: IkeSa, when: Instant) -> tuple[Payload, ...]:
        settings = sa.settings
        if settings is None:
            raise LocalError("an initiator SA needs InitiatorSettings")
        method = self.method or settings.ke_method or self._offered_groups(sa)[0]
        if self.key_exchange is None or self.key_exchange.method != method:
            self.key_exchange = sa.services.ke_factory.initiate(method)
        if not sa.nonce_i:
            sa.nonce_i = sa.services.random_bytes(NONCE_SIZE)
        payloads: list[Payload] = []
        if self.cookie:
            payloads.append(NotifyPayload(NotifyType.COOKIE, self.cookie))
        payloads += [
            offer(settings.ike_proposals),
            KePayload(method, self.key_exchange.public_value),
            NoncePayload(sa.nonce_i),
            *_nat_notifies(sa.spi_i, bytes(8), sa.path),
            NotifyPayload(NotifyType.CHILDLESS_IKEV2_SUPPORTED),
            signature_hashes_notify(),  # RFC 7427 §4: we verify signatures whatever we sign with
        ]
        if settings.fragmentation:
            payloads.append(NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))  # RFC 7383 §2.3
        return tuple(payloads)

    def sent(self, sa: IkeSa, sent: Sent) -> None:
        sa.init_request = sent.packets[0]  # AUTH signs the request that succeeds, as sent (§2.15)

    def process_response(self, sa: IkeSa, response: Received, when: Instant) -> Done | NextRound:
        """Follow a COOKIE or INVALID_KE_PAYLOAD, or accept the responder's choice."""
        message = response.message
        cookie = notifies(message, NotifyType.COOKIE)
        invalid_ke = notifies(message, NotifyType.INVALID_KE_PAYLOAD)
        if cookie or invalid_ke:
            if self.retries >= MAX_INIT_RETRIES:
                sa.close("IKE_SA_INIT: too many COOKIE/INVALID_KE_PAYLOAD answers")
                return Done("gave up")
            self.retries += 1
            if cookie:
                self.cookie = cookie[0].data
                reason = "responder asked for a cookie"
                sa.emit(IkeSaInitRefused(sa.spi_i, NotifyType.COOKIE, reason, sa.local_spi))
                return NextRound(same_message_id=True)
            data = invalid_ke[0].data
            wanted = KeyExchangeId(int.from_bytes(data, "big")) if len(data) == 2 else None
            offered = self._offered_groups(sa)
            if wanted is None or wanted not in offered or not sa.services.ke_factory.supports(wanted):
                sa.close(f"IKE_SA_INIT: responder wants group {wanted!s}, which we did not offer")
                return Done("refused")
            sa.emit(
                IkeSaInitRefused(
                    sa.spi_i, NotifyType.INVALID_KE_PAYLOAD, f"responder wants {wanted.name}", sa.local_spi
                )
            )
            self.method = wanted
            return NextRound(same_message_id=True)
        refusal = error_notify(message.payloads)
        if refusal is not None:
            sa.close(f"IKE_SA_INIT refused with {refusal.notify_type.name}")
            return Done("refused")
        settings, kex = sa.settings, self.key_exchange
        assert settings is not None and kex is not None  # set by build_request
        try:
            sa_payload = require(message, SaPayload, "SA")
            ke = require(message, KePayload, "KE")
            nonce = require(message, NoncePayload, "Nonce")
            if len(sa_payload.proposals) != 1:
                raise DecodeError("responder's SA payload must carry exactly one proposal", offset=28)
            if not 16 <= len(nonce.data) <= 256:
                raise DecodeError(f"nonce of {len(nonce.data)} octets", offset=28)
            chosen = select_ike_proposal(settings.ike_proposals, sa_payload, prefer_initiator_order=True)
            if isinstance(chosen, NoProposalChosen):
                raise DecodeError(f"responder chose a proposal we did not offer: {chosen}", offset=28)
            if ke.group != kex.method or chosen.key_exchange != kex.method:
                raise DecodeError(f"KEr group {ke.group.name} is not our {kex.method.name}", offset=28)
            shared_secret = kex.shared_secret(ke.data)
        except (DecodeError, InvalidKeyExchangeValue) as error:
            sa.close(f"IKE_SA_INIT response unacceptable: {error.reason}")
            return Done("unacceptable")
        if message.header.spi_r == bytes(8):
            sa.close("IKE_SA_INIT response with a zero responder SPI")
            return Done("unacceptable")
        sa.spi_r = message.header.spi_r
        sa.nonce_r = nonce.data
        sa.init_response = response.data
        sa.peer_supports_childless = bool(notifies(message, NotifyType.CHILDLESS_IKEV2_SUPPORTED))
        sa.peer_signature_hashes = peer_signature_hashes(message)
        sa.peer_certreq = peer_certreq(message)
        if settings.fragmentation and notifies(message, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED):
            sa.layer.enable_fragmentation(sa.config.limits)  # RFC 7383 §2.3: both sent it
        _detect_nat(sa, message, response.path)
        _install_keys(sa, chosen, shared_secret)
        self.key_exchange = None  # the private value is no longer needed
        if settings.child is None and not sa.peer_supports_childless:
            sa.close("responder does not announce CHILDLESS_IKEV2_SUPPORTED (RFC 6023)")
            return Done("childless refused")
        # RFC 7296 §2.2: our IKE_AUTH request is Message ID 1 (the next one); the
        # responder's first request of its own will be Message ID 0.
        sa.state = IkeSaState.AUTH_SENT
        return Done(f"proposal {chosen}", then=(IkeAuthInitiator(),))
