"""Payload lists for the log, the way strongSwan's charon prints them: ``[ IDi N(INIT_CONTACT) AUTH ]``.

Strategy: one short name per payload (RFC 7296 §3.2's abbreviations, as charon
uses them), a Notify with its type, a CP with its type; :func:`payload_summary`
turns a message's payloads (the inner ones of an Encrypted payload) into
that tuple for :class:`~responder.core.events.MessageAccepted` and
:class:`~responder.core.events.MessageSent`.  Nothing secret: names only,
never values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from responder.core.payloads import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    ConfigPayload,
    DeletePayload,
    EapPayload,
    EncryptedFragmentPayload,
    EncryptedPayload,
    IdiPayload,
    IdrPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    SaPayload,
    TsiPayload,
    TsrPayload,
    VendorIdPayload,
)

__all__ = ["payload_summary"]

_NAMES: Final[dict[type, str]] = {
    SaPayload: "SA",
    KePayload: "KE",
    NoncePayload: "No",
    IdiPayload: "IDi",
    IdrPayload: "IDr",
    CertPayload: "CERT",
    CertReqPayload: "CERTREQ",
    AuthPayload: "AUTH",
    DeletePayload: "D",
    VendorIdPayload: "V",
    TsiPayload: "TSi",
    TsrPayload: "TSr",
    EncryptedPayload: "SK",
    EncryptedFragmentPayload: "EF",
    EapPayload: "EAP",
}


def payload_summary(payloads: Iterable[Payload]) -> tuple[str, ...]:
    """``("IDi", "N(INITIAL_CONTACT)", "AUTH", "SA", "TSi", "TSr")`` for a message's payloads, in order."""
    names = []
    for payload in payloads:
        if isinstance(payload, NotifyPayload):
            notify = payload.notify_type
            names.append(f"N({getattr(notify, 'name', notify)})")
        elif isinstance(payload, ConfigPayload):
            names.append(f"CP({getattr(payload.cfg_type, 'name', payload.cfg_type)})")
        else:
            names.append(_NAMES.get(type(payload), f"UNKNOWN({int(payload.payload_type)})"))
    return tuple(names)
