"""INFORMATIONAL (RFC 7296 §1.4, §1.4.1, §2.4, §3.11) and the CREATE_CHILD_SA refusal.

Responder: every INFORMATIONAL request gets a response (RFC 7296 §1.4), an
empty one for a liveness check.  A Delete of the IKE SA is answered with an
empty response, after which the SA and its Child SAs are gone.  A Delete of
ESP SPIs closes both directions of each pair and the response lists our
inbound SPIs of the same pairs (RFC 7296 §1.4.1); SPIs we do not know are
ignored.  Status notifies we do not understand are ignored (§3.10.1).  An
AUTHENTICATION_FAILED notify (the initiator rejected our IKE_AUTH response,
§2.21.2) is answered and ends the IKE SA.

CREATE_CHILD_SA is refused with NO_ADDITIONAL_SAS, which RFC 7296 §1.3
allows a minimal implementation; rekeying comes with the lifecycle issue.

Initiator: :func:`request_liveness_check` and :func:`request_delete` start
the same exchanges from our side.
"""

from __future__ import annotations

from responder.core.enums import ExchangeType, NotifyType, ProtocolId
from responder.core.errors import ChildSaError, DecodeError
from responder.core.events import ChildSaDeleted, ResponseReceived
from responder.core.exchanges.common import find_all
from responder.core.ike_sa import IkeSa
from responder.core.messages import Message
from responder.core.path import Path
from responder.core.payloads import DeletePayload, NotifyPayload, Payload

__all__ = ["refuse_create_child_sa", "request_delete", "request_liveness_check", "respond"]


def respond(sa: IkeSa, message: Message, path: Path, now: float) -> tuple[tuple[Payload, ...], str]:
    """Answer an INFORMATIONAL request."""
    deletes = find_all(message, DeletePayload)
    for delete in deletes:
        if delete.protocol_id not in (ProtocolId.IKE, ProtocolId.ESP, ProtocolId.AH):
            raise DecodeError(f"Delete of unknown protocol {delete.protocol_id}", offset=28)
    if any(n.notify_type == NotifyType.AUTHENTICATION_FAILED for n in find_all(message, NotifyPayload)):
        # RFC 7296 §2.21.2: an initiator that rejects our IKE_AUTH response says so in a
        # separate INFORMATIONAL exchange; the IKE SA is not usable, so it ends once answered.
        sa.close_after_response = "the peer reported AUTHENTICATION_FAILED for our IKE_AUTH response"
        return (), "peer reported AUTHENTICATION_FAILED; IKE SA deleted"
    if any(d.protocol_id == ProtocolId.IKE for d in deletes):
        # RFC 7296 §1.4.1: the response is empty; the SA is gone once it is sent.
        sa.close_after_response = "deleted by the peer (INFORMATIONAL Delete of the IKE SA)"
        return (), "IKE SA deleted by the peer"
    ours: list[bytes] = []
    for delete in deletes:
        if delete.protocol_id != ProtocolId.ESP:
            continue  # we never create AH SAs
        for spi in delete.spis:
            for child in [c for c in sa.children if c.outbound_spi == spi]:
                sa.children.remove(child)
                ours.append(child.inbound_spi)
                sa.emit(ChildSaDeleted(sa.spi_i, sa.spi_r, child.inbound_spi, child.outbound_spi))
    if ours:
        return (
            DeletePayload(ProtocolId.ESP, 4, tuple(ours)),
        ), f"deleted Child SAs {', '.join(s.hex() for s in ours)}"
    if deletes:
        return (), "Delete of unknown SPIs ignored"
    return (), "liveness check" if not message.payloads else "informational answered"


def refuse_create_child_sa(
    sa: IkeSa, message: Message, path: Path, now: float
) -> tuple[tuple[Payload, ...], str]:
    """RFC 7296 §1.3: a minimal implementation MAY refuse CREATE_CHILD_SA."""
    raise ChildSaError("CREATE_CHILD_SA is not supported yet", NotifyType.NO_ADDITIONAL_SAS)


def request_liveness_check(sa: IkeSa, now: float) -> None:
    """An empty INFORMATIONAL request (RFC 7296 §2.4)."""

    def on_response(sa: IkeSa, message: Message, now: float) -> None:
        sa.emit(
            ResponseReceived(
                sa.spi_i, sa.spi_r, ExchangeType.INFORMATIONAL, message.header.message_id, "alive"
            )
        )

    sa.start_request(ExchangeType.INFORMATIONAL, (), on_response, now)


def request_delete(sa: IkeSa, now: float) -> None:
    """Delete the IKE SA and its Child SAs (RFC 7296 §1.4.1)."""

    def on_response(sa: IkeSa, message: Message, now: float) -> None:
        sa.close("deleted by us")

    sa.start_request(ExchangeType.INFORMATIONAL, (DeletePayload(ProtocolId.IKE, 0, ()),), on_response, now)
