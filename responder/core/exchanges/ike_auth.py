"""IKE_AUTH (RFC 7296 §1.2, §2.15, §2.21.2; RFC 6023).

Responder (:func:`respond`): find the peer by its IDi (exact or wildcard
patterns, or the lab "any ID" mode), verify its AUTH, then answer with IDr,
our AUTH and the first Child SA.  Every check that can fail the
authentication runs before the SA changes state, so a failure leaves nothing
behind: the boundary in :class:`IkeSa` answers AUTHENTICATION_FAILED and
closes the SA.  A Child SA failure is answered next to IDr and AUTH and keeps
the IKE SA (RFC 7296 §2.21.3).

Initiator (:func:`initiator_start`, then the response callback): send IDi,
AUTH and the Child SA request (or none, childless), verify the responder's
AUTH and install the Child SA it accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

from responder.core.auth import PskAuthenticator, signed_octets
from responder.core.config import ChildConfig, ChildlessPolicy, Identity, Mode
from responder.core.enums import (
    ConfigAttributeType,
    ConfigType,
    ExchangeType,
    IdType,
    NotifyType,
)
from responder.core.errors import AuthenticationFailedError, ChildSaError, DecodeError
from responder.core.events import (
    AuthenticationFailed,
    ChildSaRefused,
    IkeSaEstablished,
    ResponseReceived,
)
from responder.core.exchanges.child import (
    has_child_payloads,
    install_child,
    offer_esp,
    respond_first_child,
)
from responder.core.exchanges.common import error_notify, esp_spi, find, notifies, require
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.messages import Message
from responder.core.path import Path
from responder.core.payloads import (
    AuthPayload,
    ConfigAttribute,
    ConfigPayload,
    IdiPayload,
    IdrPayload,
    NotifyPayload,
    Payload,
    SaPayload,
    TrafficSelector,
    TsiPayload,
    TsrPayload,
)
from responder.core.proposals import NoProposalChosen, select_esp_proposal

__all__ = ["initiator_start", "respond"]


def _window_notify(size: int) -> NotifyPayload:
    return NotifyPayload(NotifyType.SET_WINDOW_SIZE, size.to_bytes(4, "big"))  # RFC 7296 §3.10.1


def _peer_window(message: Message) -> int | None:
    """The SET_WINDOW_SIZE the peer announced, if well formed (RFC 7296 §2.3)."""
    for notify in notifies(message, NotifyType.SET_WINDOW_SIZE):
        if len(notify.data) == 4 and int.from_bytes(notify.data, "big") >= 1:
            return int.from_bytes(notify.data, "big")
    return None


def _address_identity(path: Path) -> Identity:
    """Our ID when none is configured: the local address the request arrived on."""
    address = path.local_address
    id_type = IdType.ID_IPV4_ADDR if address.version == 4 else IdType.ID_IPV6_ADDR
    return Identity(id_type, address.packed)


def _established(sa: IkeSa, local: Identity, remote: Identity) -> None:
    assert sa.keys is not None and sa.encryption is not None and sa.proposal is not None
    sa.state = IkeSaState.ESTABLISHED
    sa.local_id, sa.remote_id = str(local), str(remote)
    sa.emit(
        IkeSaEstablished(
            spi_i=sa.spi_i,
            spi_r=sa.spi_r,
            local_id=sa.local_id,
            remote_id=sa.remote_id,
            proposal=str(sa.proposal),
            encryption_name=sa.encryption.name,
            integrity_name=sa.integrity.name if sa.integrity is not None else None,
            keys=sa.keys,
        )
    )


def respond(sa: IkeSa, message: Message, path: Path, now: float) -> tuple[tuple[Payload, ...], str]:
    """Answer an IKE_AUTH request (RFC 7296 §1.2)."""
    assert sa.prf is not None and sa.keys is not None  # keys exist past IKE_SA_INIT
    config = sa.config
    idi = require(message, IdiPayload, "IDi")
    auth = find(message, AuthPayload)
    if auth is None:
        raise AuthenticationFailedError("IKE_AUTH without AUTH payload (EAP is not offered)")
    wants_child = has_child_payloads(message)
    if not wants_child and config.childless is ChildlessPolicy.NEVER:
        raise DecodeError(
            "IKE_AUTH without SA, TSi and TSr, but childless IKE SAs are not allowed", offset=28
        )

    identity = Identity(idi.id_type, idi.data)
    # Configured peers in order; with any_id_psk set, the lab peer matches every ID.
    peer = config.find_peer(identity)
    if peer is None:
        raise AuthenticationFailedError(f"no peer is configured for ID {identity}")
    sa.peer_name = peer.name
    children: Sequence[ChildConfig] = peer.children
    local = peer.local_id or config.local_id
    authenticator = PskAuthenticator(peer.auth.secret.value)
    octets = signed_octets(sa.prf, sa.init_request, sa.nonce_r, sa.keys.sk_pi, idi)
    if not authenticator.verify(sa.prf, octets, auth):
        raise AuthenticationFailedError(
            f"AUTH of {identity} does not verify with the shared key of peer '{sa.peer_name}'"
        )

    local = local or _address_identity(path)
    idr = IdrPayload(local.id_type, local.data)
    our_octets = signed_octets(sa.prf, sa.init_response, sa.nonce_i, sa.keys.sk_pr, idr)
    payloads: list[Payload] = [idr, authenticator.create(sa.prf, our_octets)]
    sa.peer_window = _peer_window(message) or 1
    # RFC 7296 §2.3: the window is one until the initial exchanges complete.
    sa.window_size = config.window_size
    if sa.window_size > 1:
        payloads.append(_window_notify(sa.window_size))
    _established(sa, local, identity)

    result = f"IKE SA established with {identity} (peer '{sa.peer_name}')"
    if not wants_child:
        return tuple(payloads), result + ", childless (RFC 6023)"
    try:
        if config.childless is ChildlessPolicy.FORCE:
            raise ChildSaError("policy forces childless IKE SAs", NotifyType.NO_ADDITIONAL_SAS)
        child_payloads, record = respond_first_child(sa, message, children)
    except ChildSaError as error:
        sa.emit(ChildSaRefused(sa.spi_i, sa.spi_r, error.child_notify, error.reason))
        payloads.append(NotifyPayload(error.child_notify))
        return tuple(payloads), result + f"; Child SA refused with {error.child_notify.name}: {error.reason}"
    payloads += child_payloads
    return tuple(payloads), result + f"; Child SA {record.inbound_spi.hex()}/{record.outbound_spi.hex()}"


# --------------------------------------------------------------------------- initiator


def initiator_start(sa: IkeSa, now: float) -> None:
    """Send our IKE_AUTH request (RFC 7296 §1.2)."""
    settings = sa.settings
    assert settings is not None and sa.prf is not None and sa.keys is not None
    idi = IdiPayload(settings.local_id.id_type, settings.local_id.data)
    octets = signed_octets(sa.prf, sa.init_request, sa.nonce_r, sa.keys.sk_pi, idi)
    payloads: list[Payload] = [idi]
    if settings.remote_id is not None:
        payloads.append(IdrPayload(settings.remote_id.id_type, settings.remote_id.data))
    payloads.append(PskAuthenticator(settings.psk.value).create(sa.prf, octets))
    sa.window_size = settings.window_size
    if settings.window_size > 1:
        payloads.append(_window_notify(settings.window_size))
    child = settings.child
    if child is None:
        if not sa.peer_supports_childless:
            sa.close("responder does not announce CHILDLESS_IKEV2_SUPPORTED (RFC 6023)")
            return
    else:
        attributes: list[ConfigAttribute] = []
        if child.request_ipv4:
            attributes += [
                ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_ADDRESS),
                ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_DNS),
            ]
        if child.request_ipv6:
            attributes += [
                ConfigAttribute(ConfigAttributeType.INTERNAL_IP6_ADDRESS),
                ConfigAttribute(ConfigAttributeType.INTERNAL_IP6_DNS),
            ]
        if attributes:
            payloads.append(ConfigPayload(ConfigType.CFG_REQUEST, tuple(attributes)))
        sa.child_spi = esp_spi(sa.random_bytes)
        payloads += [
            offer_esp(child.esp_proposals, sa.child_spi),
            TsiPayload(child.tsi),
            TsrPayload(child.tsr),
        ]
        if child.mode is Mode.TRANSPORT:
            payloads.append(NotifyPayload(NotifyType.USE_TRANSPORT_MODE))
    sa.start_request(ExchangeType.IKE_AUTH, tuple(payloads), _on_response, now)


def _fail(sa: IkeSa, reason: str) -> None:
    sa.emit(AuthenticationFailed(sa.spi_i, sa.spi_r, reason))
    sa.close(f"IKE_AUTH failed: {reason}")


def _on_response(sa: IkeSa, message: Message, now: float) -> None:
    settings = sa.settings
    assert settings is not None and sa.prf is not None and sa.keys is not None
    refusal = error_notify(message.payloads)
    idr, auth = find(message, IdrPayload), find(message, AuthPayload)
    if idr is None or auth is None:
        _fail(sa, f"responder answered {refusal.notify_type.name if refusal else 'without IDr and AUTH'}")
        return
    remote = Identity(idr.id_type, idr.data)
    if settings.remote_id is not None and remote != settings.remote_id:
        _fail(sa, f"responder identifies as {remote}, expected {settings.remote_id}")
        return
    octets = signed_octets(sa.prf, sa.init_response, sa.nonce_i, sa.keys.sk_pr, idr)
    if not PskAuthenticator(settings.psk.value).verify(sa.prf, octets, auth):
        _fail(sa, f"AUTH of responder {remote} does not verify")
        return
    sa.peer_window = _peer_window(message) or 1
    _established(sa, settings.local_id, remote)
    result = "IKE SA established"
    child = settings.child
    if child is not None:
        result += "; " + _install_first_child(sa, message, refusal)
    sa.emit(ResponseReceived(sa.spi_i, sa.spi_r, ExchangeType.IKE_AUTH, message.header.message_id, result))


def _install_first_child(sa: IkeSa, message: Message, refusal: NotifyPayload | None) -> str:
    settings = sa.settings
    assert settings is not None and settings.child is not None
    sa_payload, tsi, tsr = find(message, SaPayload), find(message, TsiPayload), find(message, TsrPayload)
    if sa_payload is None or tsi is None or tsr is None:
        notify = refusal.notify_type if refusal is not None else NotifyType.NO_PROPOSAL_CHOSEN
        sa.emit(ChildSaRefused(sa.spi_i, sa.spi_r, notify, "responder refused the Child SA"))
        return f"Child SA refused with {notify.name}"
    chosen = select_esp_proposal(settings.child.esp_proposals, sa_payload, prefer_initiator_order=True)
    if isinstance(chosen, NoProposalChosen) or len(sa_payload.proposals) != 1:
        sa.emit(ChildSaRefused(sa.spi_i, sa.spi_r, NotifyType.NO_PROPOSAL_CHOSEN, "responder chose badly"))
        return "Child SA: responder chose an ESP proposal we did not offer"
    mode = Mode.TRANSPORT if notifies(message, NotifyType.USE_TRANSPORT_MODE) else Mode.TUNNEL
    local_ts = tuple(t for t in tsi.selectors if isinstance(t, TrafficSelector))
    remote_ts = tuple(t for t in tsr.selectors if isinstance(t, TrafficSelector))
    record = install_child(sa, "initiator", chosen, sa.child_spi, chosen.spi, local_ts, remote_ts, mode)
    return f"Child SA {record.inbound_spi.hex()}/{record.outbound_spi.hex()}"
