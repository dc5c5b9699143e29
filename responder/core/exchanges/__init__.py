"""The exchanges of an IKE SA, one module each, every one an :class:`~responder.core.exchanges.base.Exchange`.

* :mod:`~responder.core.exchanges.base`: the base class, its results
  (:class:`~responder.core.exchanges.base.Reply`,
  :class:`~responder.core.exchanges.base.Deferred`,
  :class:`~responder.core.exchanges.base.Done`,
  :class:`~responder.core.exchanges.base.NextRound`), the actions that take
  effect after a response is sent, and collisions (RFC 7296 §2.25);
* :mod:`~responder.core.exchanges.ike_sa_init`: IKE_SA_INIT, both roles;
* :mod:`~responder.core.exchanges.ike_auth`: IKE_AUTH, both roles, with
  :mod:`~responder.core.exchanges.child` for the first Child SA;
* :mod:`~responder.core.exchanges.informational`: the peer's INFORMATIONAL
  requests, our liveness checks and Deletes;
* :mod:`~responder.core.exchanges.create_child_sa`: CREATE_CHILD_SA (refused
  until the lifecycle issue).

Which exchange answers which request in which state is the legality table of
:mod:`responder.core.dispatch`, which imports these modules; none of them
imports the dispatcher.
"""
