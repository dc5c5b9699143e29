"""IKE_AUTH (RFC 7296 §1.2, §2.15, §2.21.2; RFC 6023).

Responder (:class:`IkeAuthResponder`): find the peer by its IDi (exact or
wildcard patterns, or the lab "any ID" mode), verify its AUTH, check that the
Child SA request is whole (SA, TSi and TSr come together or not at all), then
answer with IDr, our AUTH and the first Child SA.  Every check that can fail
runs before anything is reported, so a failure leaves nothing behind: the
dispatcher's boundary answers AUTHENTICATION_FAILED or INVALID_SYNTAX and
closes the SA.
The IKE SA is established, and reported so, only once the response is on its
way (:class:`EstablishIkeSa`, an after-send action); a Child SA failure is
answered next to IDr and AUTH and keeps the IKE SA (RFC 7296 §2.21.3).

Initiator (:class:`IkeAuthInitiator`): send IDi, AUTH and the Child SA
request (or none, childless), verify the responder's AUTH and install the
Child SA it accepted.
"""

from __future__ import annotations

import attrs

from responder.core.auth import PskAuthenticator, signed_octets
from responder.core.certificates import certificate_binds, certificate_identity
from responder.core.config import (
    LAB_PEER_NAME,
    ChildlessPolicy,
    Identity,
    Mode,
    PeerConfig,
    PskAuth,
    PubkeyAuth,
    SendCert,
)
from responder.core.enums import AuthMethod, ConfigAttributeType, ConfigType, ExchangeType, NotifyType
from responder.core.errors import AuthenticationFailedError, ChildSaError, DecodeError, LocalError
from responder.core.events import AuthenticationFailed, ChildSaRefused, IkeSaEstablished
from responder.core.exchanges.base import (
    AfterSend,
    Done,
    Exchange,
    InstallChildSa,
    NextRound,
    Reply,
    Report,
    child_established,
)
from responder.core.exchanges.certauth import (
    asks_for_our_certificate,
    cert_payloads,
    certreq_payload,
    peer_certreq,
    peer_certreq_cas,
    sign,
    verify_peer_signature,
)
from responder.core.exchanges.child import accept_first_child, child_payloads, negotiate_first_child
from responder.core.exchanges.common import error_notify, find, fresh_spi, notifies, require
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.initiator import ChildRequest
from responder.core.instant import Instant
from responder.core.message_layer import Received, Sent
from responder.core.messages import Message
from responder.core.payloads import (
    AuthPayload,
    ConfigAttribute,
    ConfigPayload,
    IdiPayload,
    IdrPayload,
    NotifyPayload,
    Payload,
    TsiPayload,
    TsrPayload,
)
from responder.core.proposals import offer

__all__ = ["EstablishIkeSa", "IkeAuthInitiator", "IkeAuthResponder", "announce_established"]


def _window_notify(size: int) -> NotifyPayload:
    return NotifyPayload(NotifyType.SET_WINDOW_SIZE, size.to_bytes(4, "big"))  # RFC 7296 §3.10.1


def _peer_window(message: Message) -> int | None:
    """The SET_WINDOW_SIZE the peer announced, if well formed (RFC 7296 §2.3)."""
    for notify in notifies(message, NotifyType.SET_WINDOW_SIZE):
        if len(notify.data) == 4 and int.from_bytes(notify.data, "big") >= 1:
            return int.from_bytes(notify.data, "big")
    return None


@attrs.frozen(slots=True)
class EstablishIkeSa:
    """The IKE SA is up: state, identities, windows (RFC 7296 §2.3: one until now), the event."""

    local: Identity
    remote: Identity
    window_size: int
    peer_window: int

    def apply(self, sa: IkeSa, sent: Sent, when: Instant) -> None:
        _establish(sa, self.local, self.remote, self.window_size, self.peer_window, when.now)
        sa.forget_auth_state()  # the response is stored; the Child SA, if any, has its keys


def _establish(
    sa: IkeSa, local: Identity, remote: Identity, window_size: int, peer_window: int, now: float
) -> None:
    sa.state = IkeSaState.ESTABLISHED
    sa.local_id, sa.remote_id, sa.peer_identity = str(local), str(remote), remote
    sa.layer.window_size, sa.layer.peer_window = window_size, peer_window
    sa.start_lifetime(now)
    announce_established(sa)


def announce_established(sa: IkeSa) -> None:
    """Emit :class:`IkeSaEstablished` for ``sa`` (after IKE_AUTH, or as the new SA of a rekey)."""
    assert sa.keys is not None and sa.encryption is not None and sa.proposal is not None
    sa.emit(
        IkeSaEstablished(
            *sa.ids,
            local_id=sa.local_id,
            remote_id=sa.remote_id,
            proposal=str(sa.proposal),
            encryption_name=sa.encryption.name,
            integrity_name=sa.integrity.name if sa.integrity is not None else None,
            keys=sa.keys,
            rekeyed=sa.rekeyed_from,
        )
    )


# --------------------------------------------------------------------------- responder


@attrs.define(eq=False)
class IkeAuthResponder(Exchange):
    """The peer's IKE_AUTH request, answered in one round (shared keys; EAP would take several)."""

    exchange_type = ExchangeType.IKE_AUTH

    @classmethod
    def for_request(cls, sa: IkeSa, request: Received) -> IkeAuthResponder:
        return cls()

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply:
        """Answer an IKE_AUTH request (RFC 7296 §1.2)."""
        assert sa.prf is not None and sa.keys is not None  # keys exist past IKE_SA_INIT
        message = request.message
        config = sa.config
        idi = require(message, IdiPayload, "IDi")
        auth = find(message, AuthPayload)
        if auth is None:
            raise AuthenticationFailedError("IKE_AUTH without AUTH payload (EAP is not offered)")

        identity = Identity(idi.id_type, idi.data)
        signature = auth.method != AuthMethod.SHARED_KEY_MIC
        method = "a signature" if signature else "a shared key"
        # Configured peers in order, of the method the AUTH shows; then the lab peer of that method.
        peer = config.find_peer(identity, signature=signature)
        if peer is None:
            raise AuthenticationFailedError(f"no peer is configured for ID {identity} with {method}")
        octets = signed_octets(sa.prf, sa.init_request, sa.nonce_r, sa.keys.sk_pi, idi)
        sa.peer_certreq = sa.peer_certreq or peer_certreq(message)
        if cas := peer_certreq_cas(message):  # else the shared empty frozenset, not one per SA
            sa.peer_certreq_cas |= cas
        if isinstance(peer.auth, PubkeyAuth):
            how = verify_peer_signature(
                message, identity, auth, octets, config.trust, when.wall, cas=peer.auth.cas
            )
        elif PskAuthenticator(peer.auth.secret.value).verify(sa.prf, octets, auth):
            how = "shared key"
        else:
            raise AuthenticationFailedError(
                f"AUTH of {identity} does not verify with the shared key of peer '{peer.name}'"
            )
        sa.peer_name, sa.peer = peer.name, peer
        # RFC 7296 §2.4: the peer has no other IKE SA with us; the endpoint ends older ones.
        sa.initial_contact = bool(notifies(message, NotifyType.INITIAL_CONTACT))
        offered_child = child_payloads(message)  # SA, TSi, TSr all or none: INVALID_SYNTAX otherwise
        if offered_child is None and config.childless is ChildlessPolicy.NEVER:
            raise DecodeError(
                "IKE_AUTH without SA, TSi and TSr, but childless IKE SAs are not allowed", offset=28
            )

        payloads, local, signed = self._our_auth(sa, peer, message, request)
        window = config.window_size
        if window > 1:
            payloads.append(_window_notify(window))
        after: list[AfterSend] = [EstablishIkeSa(local, identity, window, _peer_window(message) or 1)]

        result = f"IKE SA established with {identity} (peer '{peer.name}', {how}; we {signed})"
        if offered_child is None:
            return Reply(tuple(payloads), result + ", childless (RFC 6023)", tuple(after))
        try:
            if config.childless is ChildlessPolicy.FORCE:
                raise ChildSaError("policy forces childless IKE SAs", NotifyType.NO_ADDITIONAL_SAS)
            child_reply, child = negotiate_first_child(sa, message, offered_child, peer.children)
        except ChildSaError as error:
            after.append(Report(ChildSaRefused(*sa.ids, error.child_notify, error.reason)))
            payloads.append(NotifyPayload(error.child_notify))
            refused = f"; Child SA refused with {error.child_notify.name}: {error.reason}"
            return Reply(tuple(payloads), result + refused, tuple(after))
        after.append(InstallChildSa(child))
        result += f"; Child SA {child.inbound_spi.hex()}/{child.outbound_spi.hex()}"
        return Reply((*payloads, *child_reply), result, tuple(after))

    @staticmethod
    def _our_auth(
        sa: IkeSa, peer: PeerConfig, message: Message, request: Received
    ) -> tuple[list[Payload], Identity, str]:
        """IDr, [CERT...], AUTH for ``peer`` (RFC 7296 §1.2), our identity, and how we signed."""
        assert sa.prf is not None and sa.keys is not None
        config = sa.config
        ours = peer.our_auth
        credential = config.credential
        # Lab mode: a shared-key initiator that asks for a certificate like ours gets it.
        if peer.name == LAB_PEER_NAME and credential is not None and sa.peer_certreq:
            ours = (
                PubkeyAuth()
                if asks_for_our_certificate(credential, config.trust.anchors, sa.peer_certreq_cas)
                else ours
            )
        requested = find(message, IdrPayload)  # RFC 7296 §2.15: the initiator may name whom it wants
        if isinstance(ours, PubkeyAuth) and credential is not None:
            local = peer.local_id or config.local_id or certificate_identity(credential.certificate)
            if not certificate_binds(credential.certificate, local):  # the lab peer's configured ID
                local = certificate_identity(credential.certificate)  # (Config checks other peers')
            if requested is not None:
                wanted = Identity(requested.id_type, requested.data)
                if certificate_binds(credential.certificate, wanted):
                    local = wanted  # answer as the identity asked for, which our certificate holds
            idr = IdrPayload(local.id_type, local.data)
            octets = signed_octets(sa.prf, sa.init_response, sa.nonce_i, sa.keys.sk_pr, idr)
            auth, signed = sign(credential, octets, sa.peer_signature_hashes, rsa_pss=config.trust.rsa_pss)
            send = peer.send_cert is SendCert.ALWAYS or (
                peer.send_cert is SendCert.IFASKED and sa.peer_certreq
            )
            certificates = cert_payloads(credential) if send else ()
            return [idr, *certificates, auth], local, signed
        assert isinstance(ours, PskAuth)  # Config checks a certificate exists for PubkeyAuth
        local = peer.local_id or config.local_id or Identity.from_address(request.path.local_address)
        idr = IdrPayload(local.id_type, local.data)
        our_octets = signed_octets(sa.prf, sa.init_response, sa.nonce_i, sa.keys.sk_pr, idr)
        return (
            [idr, PskAuthenticator(ours.secret.value).create(sa.prf, our_octets)],
            local,
            "used a shared key",
        )


# --------------------------------------------------------------------------- initiator


@attrs.define(eq=False)
class IkeAuthInitiator(Exchange):
    """Our IKE_AUTH request with a shared key or a certificate, and the first Child SA if asked for."""

    exchange_type = ExchangeType.IKE_AUTH

    child_spi: bytes = b""  #: our inbound ESP SPI offered in the request

    def build_request(self, sa: IkeSa, when: Instant) -> tuple[Payload, ...]:
        """IDi, [IDr], AUTH, [SET_WINDOW_SIZE], [CP, SA, TSi, TSr] (RFC 7296 §1.2)."""
        settings = sa.settings
        assert settings is not None and sa.prf is not None and sa.keys is not None
        idi = IdiPayload(settings.local_id.id_type, settings.local_id.data)
        octets = signed_octets(sa.prf, sa.init_request, sa.nonce_r, sa.keys.sk_pi, idi)
        payloads: list[Payload] = [idi]
        credential = settings.credential
        if credential is not None:  # RFC 7296 §1.2: IDi, [CERT,] [CERTREQ,] [IDr,] AUTH
            auth, _ = sign(credential, octets, sa.peer_signature_hashes, rsa_pss=settings.rsa_pss)
            payloads += cert_payloads(credential)
        elif settings.psk is not None:
            auth = PskAuthenticator(settings.psk.value).create(sa.prf, octets)
        else:
            raise LocalError("InitiatorSettings need a shared key or a credential")
        if settings.trust is not None:
            certreq = certreq_payload(settings.trust.anchors)
            if certreq is not None:
                payloads.append(certreq)
        if settings.remote_id is not None:
            payloads.append(IdrPayload(settings.remote_id.id_type, settings.remote_id.data))
        payloads.append(auth)
        if settings.initial_contact:
            payloads.append(NotifyPayload(NotifyType.INITIAL_CONTACT))
        if settings.window_size > 1:
            payloads.append(_window_notify(settings.window_size))
        child = settings.child
        if child is not None:
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
            self.child_spi = fresh_spi(sa.services.random_bytes, 4)
            # RFC 7296 §1.2: the first Child SA takes its keys from the IKE SA; no KE in its offer.
            first = tuple(attrs.evolve(p, key_exchange=()) for p in child.esp_proposals)
            payloads += [
                offer(first, self.child_spi),
                TsiPayload(child.tsi),
                TsrPayload(child.tsr),
            ]
            if child.mode is Mode.TRANSPORT:
                payloads.append(NotifyPayload(NotifyType.USE_TRANSPORT_MODE))
        return tuple(payloads)

    def process_response(self, sa: IkeSa, response: Received, when: Instant) -> Done | NextRound:
        settings = sa.settings
        assert settings is not None and sa.prf is not None and sa.keys is not None
        message = response.message
        refusal = error_notify(message.payloads)
        idr, auth = find(message, IdrPayload), find(message, AuthPayload)
        if idr is None or auth is None:
            answered = refusal.notify_type.name if refusal else "without IDr and AUTH"
            return _fail(sa, f"responder answered {answered}")
        remote = Identity(idr.id_type, idr.data)
        if settings.remote_id is not None and remote != settings.remote_id:
            return _fail(sa, f"responder identifies as {remote}, expected {settings.remote_id}")
        octets = signed_octets(sa.prf, sa.init_response, sa.nonce_i, sa.keys.sk_pr, idr)
        if auth.method != AuthMethod.SHARED_KEY_MIC:
            if settings.trust is None:
                return _fail(sa, f"responder {remote} signs, but no CA is configured to check it")
            try:
                verify_peer_signature(message, remote, auth, octets, settings.trust, when.wall)
            except AuthenticationFailedError as error:
                return _fail(sa, f"responder: {error.reason}")
        elif settings.psk is None or not PskAuthenticator(settings.psk.value).verify(sa.prf, octets, auth):
            return _fail(sa, f"AUTH of responder {remote} does not verify")
        _establish(sa, settings.local_id, remote, settings.window_size, _peer_window(message) or 1, when.now)
        result = "IKE SA established"
        if settings.child is not None:
            result += "; " + self._install_first_child(sa, message, settings.child, refusal, when.now)
        sa.forget_auth_state()  # after the first Child SA, whose KEYMAT takes the nonces (§2.17)
        return Done(result)

    def _install_first_child(
        self,
        sa: IkeSa,
        message: Message,
        request: ChildRequest,
        refusal: NotifyPayload | None,
        now: float,
    ) -> str:
        child = accept_first_child(sa, message, request, self.child_spi)
        if isinstance(child, str):
            notify = refusal.notify_type if refusal is not None else NotifyType.NO_PROPOSAL_CHOSEN
            sa.emit(ChildSaRefused(*sa.ids, notify, child))
            return f"Child SA refused with {notify.name}" if refusal is not None else f"Child SA: {child}"
        child_established(sa, child, now)
        return f"Child SA {child.inbound_spi.hex()}/{child.outbound_spi.hex()}"


def _fail(sa: IkeSa, reason: str) -> Done:
    sa.emit(AuthenticationFailed(*sa.ids, reason))
    sa.close(f"IKE_AUTH failed: {reason}")
    return Done(reason)
