"""CREATE_CHILD_SA (RFC 7296 §1.3), refused for now.

:class:`CreateChildSaRefusal` answers every CREATE_CHILD_SA request with
NO_ADDITIONAL_SAS, which RFC 7296 §1.3 allows a minimal implementation.  It
still states what the request asks for (:attr:`Exchange.intent`: a new Child
SA, a rekey of one named by REKEY_SA, or a rekey of the IKE SA itself), so a
collision with an exchange of ours in flight is judged as RFC 7296 §2.25 says
(a request to rekey an IKE SA we are closing gets TEMPORARY_FAILURE).  The
lifecycle issue replaces the refusal with the exchanges that answer.
"""

from __future__ import annotations

import attrs

from responder.core.enums import ExchangeType, NotifyType, ProtocolId
from responder.core.errors import ChildSaError
from responder.core.exchanges.base import Exchange, Intent, Operation, Reply
from responder.core.exchanges.common import find, notifies
from responder.core.ike_sa import IkeSa
from responder.core.instant import Instant
from responder.core.message_layer import Received
from responder.core.payloads import SaPayload

__all__ = ["CreateChildSaRefusal", "create_child_sa_intent"]


def create_child_sa_intent(sa: IkeSa, request: Received) -> Intent:
    """What a CREATE_CHILD_SA request asks for (RFC 7296 §1.3.1-§1.3.3)."""
    message = request.message
    rekey = notifies(message, NotifyType.REKEY_SA)
    if rekey:
        named = rekey[0].spi
        ours = frozenset(c.inbound_spi for c in sa.children.values() if c.outbound_spi == named)
        return Intent(Operation.REKEY_CHILD, ours)
    offered = find(message, SaPayload)
    if offered is not None and any(p.protocol_id == ProtocolId.IKE for p in offered.proposals):
        return Intent(Operation.REKEY_IKE)
    return Intent(Operation.CREATE_CHILD)


@attrs.define(eq=False)
class CreateChildSaRefusal(Exchange):
    """The peer's CREATE_CHILD_SA request, refused with NO_ADDITIONAL_SAS (RFC 7296 §1.3)."""

    exchange_type = ExchangeType.CREATE_CHILD_SA

    @classmethod
    def for_request(cls, sa: IkeSa, request: Received) -> CreateChildSaRefusal:
        return cls(intent=create_child_sa_intent(sa, request))

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply:
        raise ChildSaError("CREATE_CHILD_SA is not supported yet", NotifyType.NO_ADDITIONAL_SAS)
