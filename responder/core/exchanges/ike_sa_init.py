"""IKE_SA_INIT (RFC 7296 §1.2, §2.6, §2.7, §2.10, §2.14, §2.23; RFC 6023).

Responder: :func:`respond` is called for a new request the endpoint admitted.
Until a proposal, a KE value and a nonce are accepted, nothing is kept: the
refusals (NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD, COOKIE, INVALID_SYNTAX) are
answered statelessly with the responder SPI zero (RFC 7296 §2.6, row B10).
Otherwise a half-open :class:`IkeSa` is returned with its keys computed.

Initiator: :func:`start` sends the request; the response handler follows a
COOKIE (resend with it as the first payload, RFC 7296 §2.6) and an
INVALID_KE_PAYLOAD (resend with the named group, keeping the cookie,
RFC 7296 §1.2, §2.6.1), then computes the keys and starts IKE_AUTH.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from responder.core.config import ChildlessPolicy, Config, IkeProposal
from responder.core.cookies import CookieJar
from responder.core.enums import (
    ExchangeType,
    KeyExchangeId,
    NotifyType,
    ProtocolId,
    TransformType,
)
from responder.core.errors import DecodeError, InvalidKeyExchangeValue, LocalError
from responder.core.events import IkeSaInitRefused, MessageDropped
from responder.core.exchanges.common import (
    error_notify,
    ike_spi,
    nat_detection_hash,
    notifies,
    require,
)
from responder.core.ike_sa import IkeSa, IkeSaState, PendingRequest
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.keys import derive_ike_sa_keys, skeyseed
from responder.core.messages import Header, Message, decode_message, encode_message
from responder.core.path import Path
from responder.core.payloads import (
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    Transform,
    TransformAttribute,
)
from responder.core.pool import PoolAllocator
from responder.core.proposals import ChosenProposal, NoProposalChosen, select_ike_proposal
from responder.core.sk_payload import sk_protections

__all__ = ["InitRefusal", "initiator_handle_ike_sa_init_response", "offer_ike", "respond", "start"]

NONCE_SIZE = 32  # RFC 7296 §2.10: at least 128 bits and half the PRF key size (SHA-512: 32)
MAX_INIT_RETRIES = 4  # COOKIE and INVALID_KE_PAYLOAD answers followed, at most


@attrs.frozen
class InitRefusal:
    """A stateless answer to an IKE_SA_INIT request; no SA was created."""

    response: bytes
    notify: NotifyType
    reason: str


def _refuse(message: Message, notify: NotifyType, reason: str, data: bytes = b"") -> InitRefusal:
    header = attrs.evolve(message.header, spi_r=bytes(8), is_initiator=False, is_response=True)
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
    sa.proposal = chosen
    sa.prf = chosen.prf_transform()
    sa.encryption = chosen.encryption_transform()
    sa.integrity = chosen.integrity_transform()
    seed = skeyseed(sa.prf, sa.nonce_i, sa.nonce_r, shared_secret)
    sa.keys = derive_ike_sa_keys(
        sa.prf, sa.encryption, sa.integrity, seed, sa.nonce_i, sa.nonce_r, sa.spi_i, sa.spi_r
    )
    sa.outbound, sa.inbound = sk_protections(
        sa.keys, sa.encryption, sa.integrity, is_original_initiator=sa.is_original_initiator
    )


def respond(
    *,
    config: Config,
    random_bytes: Callable[[int], bytes],
    ke_factory: KeyExchangeFactory,
    cookies: CookieJar,
    cookie_required: bool,
    pools: dict[str, PoolAllocator],
    data: bytes,
    message: Message,
    path: Path,
    now: float,
) -> IkeSa | InitRefusal:
    """Answer a new IKE_SA_INIT request (RFC 7296 §1.2)."""
    header = message.header
    if header.message_id != 0:
        return _refuse(message, NotifyType.INVALID_SYNTAX, f"IKE_SA_INIT with Message ID {header.message_id}")
    try:
        sa_payload = require(message, SaPayload, "SA")
        ke = require(message, KePayload, "KE")
        nonce = require(message, NoncePayload, "Nonce")
    except DecodeError as error:
        return _refuse(message, NotifyType.INVALID_SYNTAX, error.reason)
    if not 16 <= len(nonce.data) <= 256:
        return _refuse(
            message, NotifyType.INVALID_SYNTAX, f"nonce of {len(nonce.data)} octets (RFC 7296 §3.9)"
        )

    if cookie_required:
        # RFC 7296 §2.6: the COOKIE must be the first payload; one that does not
        # verify is treated as absent, so a new cookie is sent.
        first = message.payloads[0]
        offered = (
            first.data
            if isinstance(first, NotifyPayload) and first.notify_type == NotifyType.COOKIE
            else None
        )
        if offered is None or not cookies.check(now, offered, nonce.data, path.remote_address, header.spi_i):
            cookie = cookies.make(now, nonce.data, path.remote_address, header.spi_i)
            reason = "too many half-open SAs: " + ("cookie did not verify" if offered else "cookie requested")
            return _refuse(message, NotifyType.COOKIE, reason, cookie)

    chosen = select_ike_proposal(
        config.ike_proposals,
        sa_payload,
        prefer_initiator_order=config.prefer_initiator_order,
        ke_hint=ke.group,
    )
    if isinstance(chosen, NoProposalChosen):
        return _refuse(message, NotifyType.NO_PROPOSAL_CHOSEN, str(chosen))
    group = chosen.key_exchange
    assert group is not None  # select_ike_proposal always chooses a KE method
    if ke.group != group:
        # RFC 7296 §1.2, §3.10.1: name the group we selected; the initiator retries.
        return _refuse(
            message,
            NotifyType.INVALID_KE_PAYLOAD,
            f"KEi uses {ke.group.name}, the selected proposal needs {group.name}",
            int(group).to_bytes(2, "big"),
        )
    try:
        ke_r, shared_secret = ke_factory.respond(group, ke.data)
    except InvalidKeyExchangeValue as error:
        # RFC 6989 §2.5: MAY answer INVALID_SYNTAX and forget the exchange.
        return _refuse(message, NotifyType.INVALID_SYNTAX, f"KEi refused: {error.reason}")

    sa = IkeSa(
        config=config,
        random_bytes=random_bytes,
        ke_factory=ke_factory,
        is_original_initiator=False,
        spi_i=header.spi_i,
        spi_r=ike_spi(random_bytes),
        path=path,
        created_at=now,
        state=IkeSaState.INIT_DONE,
        nonce_i=nonce.data,
        nonce_r=random_bytes(NONCE_SIZE),
        pools=pools,  # window_size stays 1 until IKE_AUTH completes (RFC 7296 §2.3)
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
    response_header = Header(
        spi_i=sa.spi_i,
        spi_r=sa.spi_r,
        exchange_type=ExchangeType.IKE_SA_INIT,
        is_initiator=False,
        is_response=True,
        message_id=0,
    )
    sa.init_request = data
    sa.init_response = encode_message(Message(response_header, tuple(payloads)))
    _install_keys(sa, chosen, shared_secret)
    sa.next_request_id = 1
    sa.send(sa.init_response, path)
    return sa


# --------------------------------------------------------------------------- initiator


def offer_ike(proposals: tuple[IkeProposal, ...]) -> SaPayload:
    """The SA payload offering our IKE proposals, numbered from 1 (RFC 7296 §3.3)."""
    offered = []
    for number, proposal in enumerate(proposals, start=1):
        transforms: list[Transform] = []
        for encr, bits in proposal.encryption:
            attributes = (TransformAttribute.key_length(bits),) if bits is not None else ()
            transforms.append(Transform(TransformType.ENCR, encr, attributes))
        transforms += [Transform(TransformType.PRF, p) for p in proposal.prf]
        transforms += [Transform(TransformType.INTEG, i) for i in proposal.integrity]
        transforms += [Transform(TransformType.KE, k) for k in proposal.key_exchange]
        offered.append(Proposal(number, ProtocolId.IKE, tuple(transforms)))
    return SaPayload(tuple(offered))


def _offered_groups(sa: IkeSa) -> list[KeyExchangeId]:
    assert sa.settings is not None
    return [k for p in sa.settings.ike_proposals for k in p.key_exchange]


def start(sa: IkeSa, now: float, method: KeyExchangeId | None = None) -> None:
    """Send (or resend, after a COOKIE or INVALID_KE_PAYLOAD) our IKE_SA_INIT request."""
    settings = sa.settings
    if settings is None:
        raise LocalError("start() needs InitiatorSettings")
    method = method or settings.ke_method or _offered_groups(sa)[0]
    if sa.key_exchange is None or sa.key_exchange.method != method:
        sa.key_exchange = sa.ke_factory.initiate(method)
    if not sa.nonce_i:
        sa.nonce_i = sa.random_bytes(NONCE_SIZE)
    payloads: list[Payload] = []
    if sa.cookie:
        payloads.append(NotifyPayload(NotifyType.COOKIE, sa.cookie))
    payloads += [
        offer_ike(settings.ike_proposals),
        KePayload(method, sa.key_exchange.public_value),
        NoncePayload(sa.nonce_i),
        *_nat_notifies(sa.spi_i, bytes(8), sa.path),
        NotifyPayload(NotifyType.CHILDLESS_IKEV2_SUPPORTED),
    ]
    header = Header(
        spi_i=sa.spi_i,
        spi_r=bytes(8),
        exchange_type=ExchangeType.IKE_SA_INIT,
        is_initiator=True,
        is_response=False,
        message_id=0,
    )
    sa.init_request = encode_message(Message(header, tuple(payloads)))
    sa.pending[0] = PendingRequest(0, ExchangeType.IKE_SA_INIT, sa.init_request, _never, now)
    sa.send(sa.init_request)


def _never(sa: IkeSa, message: Message, now: float) -> None:
    raise LocalError("IKE_SA_INIT responses are routed by IkeSa.receive")  # pragma: no cover


def initiator_handle_ike_sa_init_response(sa: IkeSa, data: bytes, path: Path, now: float) -> None:
    """Follow a COOKIE or INVALID_KE_PAYLOAD, or accept the responder's choice."""
    from responder.core.exchanges import ike_auth  # ike_auth imports this module's helpers

    try:
        message = decode_message(data)
    except DecodeError as error:
        sa.emit(MessageDropped(f"IKE_SA_INIT response: {error}", *sa.spis))
        return
    cookie = notifies(message, NotifyType.COOKIE)
    invalid_ke = notifies(message, NotifyType.INVALID_KE_PAYLOAD)
    if cookie or invalid_ke:
        if sa.init_retries >= MAX_INIT_RETRIES:
            sa.close("IKE_SA_INIT: too many COOKIE/INVALID_KE_PAYLOAD answers")
            return
        sa.init_retries += 1
        if cookie:
            sa.cookie = cookie[0].data
            sa.emit(IkeSaInitRefused(sa.spi_i, NotifyType.COOKIE, "responder asked for a cookie"))
            start(sa, now, sa.key_exchange.method if sa.key_exchange else None)
            return
        data = invalid_ke[0].data
        wanted = KeyExchangeId(int.from_bytes(data, "big")) if len(data) == 2 else None
        if wanted is None or wanted not in _offered_groups(sa) or not sa.ke_factory.supports(wanted):
            sa.close(f"IKE_SA_INIT: responder wants group {wanted!s}, which we did not offer")
            return
        sa.emit(IkeSaInitRefused(sa.spi_i, NotifyType.INVALID_KE_PAYLOAD, f"responder wants {wanted.name}"))
        start(sa, now, wanted)
        return
    refusal = error_notify(message.payloads)
    if refusal is not None:
        sa.close(f"IKE_SA_INIT refused with {refusal.notify_type.name}")
        return
    sa.pending.pop(0, None)
    settings, kex = sa.settings, sa.key_exchange
    assert settings is not None and kex is not None  # set by start()
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
        return
    if message.header.spi_r == bytes(8):
        sa.close("IKE_SA_INIT response with a zero responder SPI")
        return
    sa.spi_r = message.header.spi_r
    sa.nonce_r = nonce.data
    sa.init_response = data
    sa.peer_supports_childless = bool(notifies(message, NotifyType.CHILDLESS_IKEV2_SUPPORTED))
    _detect_nat(sa, message, path)
    _install_keys(sa, chosen, shared_secret)
    sa.key_exchange = None  # the private value is no longer needed
    # RFC 7296 §2.2: our IKE_AUTH request is Message ID 1; the responder's first
    # request of its own will be Message ID 0.
    sa.next_send_id = 1
    sa.next_request_id = 0
    sa.state = IkeSaState.AUTH_SENT
    ike_auth.initiator_start(sa, now)
