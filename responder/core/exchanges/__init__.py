"""The exchanges of an IKE SA, one module each.

Strategy: :data:`REQUEST_HANDLERS` is the legality table for requests,
``(state, exchange) -> handler``; an unlisted pair is dropped by
:class:`~responder.core.ike_sa.IkeSa` (h2's ``_transitions``).  A handler
returns the response payloads and a one-line result for the log, or raises a
:class:`~responder.core.errors.ProtocolError` that the SA's boundary turns into
the RFC's answer.  Responses to our own requests are routed to the callback
registered with the request.

IKE_SA_INIT requests never reach an SA: no SA exists before the first one is
answered, so :class:`~responder.core.sa_table.Endpoint` admits them and calls
:func:`~responder.core.exchanges.ike_sa_init.respond`.
"""

from __future__ import annotations

from collections.abc import Callable

from responder.core.enums import ExchangeType
from responder.core.exchanges.ike_auth import respond as respond_ike_auth
from responder.core.exchanges.ike_sa_init import initiator_handle_ike_sa_init_response
from responder.core.exchanges.informational import refuse_create_child_sa
from responder.core.exchanges.informational import respond as respond_informational
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.messages import Message
from responder.core.path import Path
from responder.core.payloads import Payload

__all__ = ["REQUEST_HANDLERS", "RequestHandler", "initiator_handle_ike_sa_init_response"]

RequestHandler = Callable[[IkeSa, Message, Path, float], tuple[tuple[Payload, ...], str]]

REQUEST_HANDLERS: dict[tuple[IkeSaState, ExchangeType], RequestHandler] = {
    (IkeSaState.INIT_DONE, ExchangeType.IKE_AUTH): respond_ike_auth,
    (IkeSaState.ESTABLISHED, ExchangeType.INFORMATIONAL): respond_informational,
    (IkeSaState.ESTABLISHED, ExchangeType.CREATE_CHILD_SA): refuse_create_child_sa,
}
