"""The dispatcher's seams, driven by small exchanges of the tests' own through ``Endpoint(responders=...)``.

What later issues build on, each shown working end to end between two real
endpoints: an answer deferred for outside work and resumed (EAP backends, OCSP),
actions that take effect only after the response is queued (new keys for
IKE_INTERMEDIATE with an additional key exchange, RFC 9370; a new IKE SA from a
rekey, RFC 7296 §1.3.2), an exchange of several rounds (EAP, RFC 7296 §2.16),
the wall clock beside ``now``, and collisions with an exchange of ours in
flight (RFC 7296 §2.25).
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import ip_address, ip_network

import attrs

from responder.core.config import AddressPool, ChildConfig, EspProposal, IdPattern, PeerConfig
from responder.core.dispatch import RESPONDERS
from responder.core.enums import EncrId, ExchangeType, NotifyType, ProtocolId
from responder.core.errors import TemporaryFailure
from responder.core.events import (
    AnswerDeferred,
    ChildSasMoved,
    IkeSaClosed,
    MessageAccepted,
    RequestAnswered,
    ResponseReceived,
)
from responder.core.exchanges.base import Deferred, Exchange, MoveChildSas, Reply, SpawnIkeSa, SwitchKeys
from responder.core.exchanges.create_child_sa import RekeyChildSa
from responder.core.exchanges.informational import InformationalResponder, LivenessCheck
from responder.core.ike_sa import IkeSa, IkeSaState, ResponderFactory
from responder.core.instant import Instant
from responder.core.message_layer import TCP_RESPONSE_TIMEOUT, Received
from responder.core.messages import decode_header
from responder.core.outcomes import ReceiveOutcome, Verdict
from responder.core.path import Transport
from responder.core.payloads import DeletePayload, NotifyPayload, Payload
from responder.core.proposals import offer
from responder.core.sk_payload import SkProtection, unprotect
from responder.core.transforms import encryption
from tests.fakes.pair import (
    PSK,
    RESPONDER_ID,
    Pair,
    child_request,
    forge,
    initiator_settings,
    protect,
    read,
    responder_config,
    reverse,
)

IKE = "aes256gcm16-prfsha256-x25519"
STATUS = NotifyType(40001)  # a private-use status notify (RFC 7296 §3.10.1)


Table = Mapping[tuple[IkeSaState, ExchangeType], ResponderFactory]


def with_informational(factory: ResponderFactory) -> Table:
    """The legality table with INFORMATIONAL of an established SA answered by ``factory``."""
    return {**RESPONDERS, (IkeSaState.ESTABLISHED, ExchangeType.INFORMATIONAL): factory}


def established(factory: ResponderFactory) -> tuple[Pair, IkeSa, IkeSa]:
    pair = Pair.create(responder_config(IKE), responders=with_informational(factory))
    initiator_sa = pair.initiate(initiator_settings(IKE))
    pair.pump()
    [responder_sa] = pair.responder.sas
    assert responder_sa.state is IkeSaState.ESTABLISHED
    return pair, initiator_sa, responder_sa


@attrs.frozen
class Lookup:
    """The outside work a deferring exchange asks for."""

    question: str


@attrs.define(eq=False)
class Deferring(Exchange):
    """Answers nothing at once; answers with what the outside work found."""

    exchange_type = ExchangeType.INFORMATIONAL
    fail: bool = False

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply | Deferred:
        return Deferred(Lookup("who is it?"))

    def resume(self, sa: IkeSa, result: object, when: Instant) -> Reply | Deferred:
        if self.fail:
            raise TemporaryFailure("the backend is busy")
        return Reply((NotifyPayload(STATUS, str(result).encode()),), f"resumed with {result}")


def test_a_deferred_answer_waits_for_resume_and_copies_meanwhile_are_ignored() -> None:
    pair, initiator_sa, responder_sa = established(lambda sa, request: Deferring())
    pair.initiator.request_liveness_check(initiator_sa.local_spi, pair.now)
    [request] = [o.data for o in pair.initiator.messages_to_send()]
    assert pair.to_responder(request) == []  # taken, not answered yet
    [deferred] = pair.events(AnswerDeferred)
    assert (deferred.local_spi, deferred.message_id, deferred.work) == (
        responder_sa.local_spi,
        2,
        Lookup("who is it?"),
    )
    assert pair.events(MessageAccepted)[-1].message_id == 2  # a valid message: it moves the SA's path
    copy = pair.responder.receive(request, reverse(pair.path), pair.now)
    assert copy == ReceiveOutcome(Verdict.IGNORED, responder_sa.local_spi)
    assert pair.responder.messages_to_send() == []

    assert pair.responder.resume(responder_sa.local_spi, 2, "alice", pair.now)
    [response] = [o.data for o in pair.responder.messages_to_send()]
    assert read(initiator_sa, response, from_initiator=False).payloads == (NotifyPayload(STATUS, b"alice"),)
    pair.drain()
    assert pair.events(RequestAnswered)[-1].result == "resumed with alice"
    assert not pair.responder.resume(responder_sa.local_spi, 2, "again", pair.now)  # nothing waits now
    assert pair.to_responder(request) == [response]  # a copy now gets the stored response
    assert pair.to_initiator(response) == []
    assert pair.events(ResponseReceived, "initiator")[-1].message_id == 2


def test_a_deferred_answer_can_end_in_an_error_notify() -> None:
    """The boundary applies to a resumed exchange as to any: TEMPORARY_FAILURE, the SA stays."""
    pair, initiator_sa, responder_sa = established(lambda sa, request: Deferring(fail=True))
    pair.initiator.request_liveness_check(initiator_sa.local_spi, pair.now)
    pair.deliver(pair.initiator.messages_to_send(), True, None)
    assert pair.responder.resume(responder_sa.local_spi, 2, None, pair.now)
    [response] = [o.data for o in pair.responder.messages_to_send()]
    payloads = read(initiator_sa, response, from_initiator=False).payloads
    assert payloads == (NotifyPayload(NotifyType.TEMPORARY_FAILURE),)
    assert responder_sa.state is IkeSaState.ESTABLISHED


def test_a_deferred_exchange_is_abandoned_when_its_sa_closes() -> None:
    abandoned: list[str] = []

    @attrs.define(eq=False)
    class Remembering(Deferring):
        def abandon(self, sa: IkeSa, reason: str) -> None:
            abandoned.append(reason)

    pair, initiator_sa, responder_sa = established(lambda sa, request: Remembering())
    pair.initiator.request_liveness_check(initiator_sa.local_spi, pair.now)
    pair.deliver(pair.initiator.messages_to_send(), True, None)
    pair.drain()
    assert pair.events(AnswerDeferred)
    pair.responder.request_delete(responder_sa.local_spi, pair.now)  # the SA ends meanwhile
    pair.pump()
    assert responder_sa.state is IkeSaState.CLOSED
    assert abandoned == ["deleted by us"]
    assert not pair.responder.resume(responder_sa.local_spi, 2, "late", pair.now)


@attrs.define(eq=False)
class Rekeying(Exchange):
    """Answers, then switches the SA to new keys (as IKE_INTERMEDIATE with a KE will, RFC 9370)."""

    exchange_type = ExchangeType.INFORMATIONAL

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply | Deferred:
        return Reply((), "keys switched", (SwitchKeys(inbound=NEW_INITIATOR, outbound=NEW_RESPONDER),))


def gcm(tag: int) -> SkProtection:
    return SkProtection.create(encryption(EncrId.AES_GCM_16, 256), None, bytes([tag]) * 36)


NEW_INITIATOR, NEW_RESPONDER = gcm(0x11), gcm(0x22)


def test_switched_keys_take_effect_after_the_response_is_protected() -> None:
    pair, _, responder_sa = established(lambda sa, request: Rekeying())
    request = forge(responder_sa, ExchangeType.INFORMATIONAL, (), message_id=2)
    [response] = pair.to_responder(request)
    read(responder_sa, response, from_initiator=False)  # still the old keys
    assert pair.to_responder(request) == [response]  # a copy under the old keys: the stored response
    old = forge(responder_sa, ExchangeType.INFORMATIONAL, (), message_id=3)
    outcome = pair.responder.receive(old, reverse(pair.path), pair.now)
    assert outcome.verdict is Verdict.CORRUPT  # new requests need the new keys
    new = protect(NEW_INITIATOR, decode_header(old)[0], (), bytes(8))
    assert pair.responder.receive(new, reverse(pair.path), pair.now).verdict is Verdict.ACCEPTED
    [answer] = [o.data for o in pair.responder.messages_to_send()]
    assert unprotect(NEW_RESPONDER, answer)[0].header.message_id == 3


@attrs.define(eq=False)
class Spawning(Exchange):
    """Hands a new IKE SA to the endpoint once its response is out (as an IKE SA rekey will)."""

    exchange_type = ExchangeType.INFORMATIONAL
    made: list[IkeSa] = attrs.Factory(list)

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply | Deferred:
        new = IkeSa(
            services=sa.services,
            is_original_initiator=False,
            spi_i=b"\xaa" * 8,
            spi_r=b"\xbb" * 8,
            path=request.path,
            created_at=when.now,
            state=IkeSaState.ESTABLISHED,
        )
        new.layer.install_keys(NEW_INITIATOR, NEW_RESPONDER)
        self.made.append(new)
        return Reply((), "new IKE SA", (SpawnIkeSa(new),))


@attrs.define(eq=False)
class Inheriting(Spawning):
    """Spawns a new IKE SA and hands it the Child SAs (the heir of an IKE SA rekey, RFC 7296 §2.8.2)."""

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply | Deferred:
        reply = super().respond(sa, request, when)
        assert isinstance(reply, Reply)
        self.made[-1].peer = sa.peer  # a rekey's new SA keeps the peer's policy
        return attrs.evolve(reply, after_send=(*reply.after_send, MoveChildSas(self.made[-1])))


def test_an_heir_gets_the_child_sas_their_esp_and_their_address_leases() -> None:
    """RFC 7296 §2.8.2: the surviving IKE SA "MUST inherit all the Child SAs"; their ESP finds the
    heir, and the virtual address stays leased when the old IKE SA ends (RFC 7296 §2.19)."""
    heir_maker = Inheriting()
    pool = AddressPool("vips", ip_network("10.9.0.0/29"), None)
    child = ChildConfig("net", pool="vips", esp_proposals=(EspProposal.parse("aes256gcm16"),))
    peer = PeerConfig("alice", IdPattern.any(), PSK, local_id=RESPONDER_ID, children=(child,))
    config = responder_config(IKE, peers=(peer,), pools=(pool,))

    def factory(sa: IkeSa, request: Received) -> Exchange:  # the first INFORMATIONAL makes the heir
        return heir_maker if not heir_maker.made else InformationalResponder.for_request(sa, request)

    pair = Pair.create(config, responders=with_informational(factory))
    first = pair.initiate(initiator_settings(IKE, child_request(request_ipv4=True)))
    pair.pump()
    [old] = pair.responder.sas
    [pair_spi] = old.children
    esp = pair_spi + bytes(20)
    assert pair.responder.receive_esp(esp, reverse(pair.path), pair.now) == old.local_spi
    # One request of ours in flight; behind it, waiting for the peer's window, a rekey of the Child
    # SA (it goes with the Child SAs) and a liveness check of the old IKE SA (it stays).
    pair.responder.request_liveness_check(old.local_spi, pair.now)
    pair.responder.start(old.local_spi, RekeyChildSa.of(pair_spi), pair.now)
    pair.responder.request_liveness_check(old.local_spi, pair.now)
    assert len(pair.responder.messages_to_send()) == 1 and len(old.layer.queued) == 2
    out = pair.to_responder(forge(old, ExchangeType.INFORMATIONAL, (), message_id=2))
    [heir] = heir_maker.made
    assert list(heir.children) == [pair_spi] and old.children == {}
    assert [type(e) for e in old.layer.queued] == [LivenessCheck]  # the old SA's own request stayed
    assert isinstance(heir.layer.pending[0].exchange, RekeyChildSa)  # the Child SA's went with it
    assert [decode_header(m)[0].spi_r for m in out] == [old.spi_r, heir.spi_r]
    [moved] = pair.events(ChildSasMoved)
    assert (moved.local_spi, moved.heir) == (old.local_spi, heir.local_spi)
    assert moved.inbound_spis == (pair_spi,)
    assert pair.responder.receive_esp(esp, reverse(pair.path), pair.now) == heir.local_spi
    delete = forge(old, ExchangeType.INFORMATIONAL, (DeletePayload(ProtocolId.IKE, 0, ()),), message_id=3)
    pair.to_responder(delete)  # the old IKE SA ends (its rekeyer deletes it)
    assert old.state is IkeSaState.CLOSED
    assert pair.responder.receive_esp(esp, reverse(pair.path), pair.now) == heir.local_spi
    [first_child] = first.children.values()
    assert first_child.params.local_ts[0].start_address == ip_address("10.9.0.1")
    other = pair.initiate(initiator_settings(IKE, child_request(request_ipv4=True)))
    pair.pump()
    [other_child] = other.children.values()  # 10.9.0.1 is still the heir's: the next one is given
    assert other_child.params.local_ts[0].start_address == ip_address("10.9.0.2")


def test_a_spawned_ike_sa_joins_the_endpoint_and_gets_its_messages() -> None:
    spawner = Spawning()
    pair, _, responder_sa = established(lambda sa, request: spawner)
    assert pair.responder.new_sas() == [responder_sa]
    [response] = pair.to_responder(forge(responder_sa, ExchangeType.INFORMATIONAL, (), message_id=2))
    [new] = spawner.made
    assert pair.responder.sa(b"\xbb" * 8) is new and pair.responder.new_sas() == [new]
    header = attrs.evolve(decode_header(response)[0], spi_i=new.spi_i, spi_r=new.spi_r, message_id=0)
    header = attrs.evolve(header, is_initiator=True, is_response=False)
    request = protect(NEW_INITIATOR, header, (), bytes(8))
    outcome = pair.responder.receive(request, reverse(pair.path), pair.now)
    assert outcome == ReceiveOutcome(Verdict.ACCEPTED, new.local_spi)  # answered by the new SA
    assert new.layer.next_expected == 1 and responder_sa.layer.next_expected == 3


def test_requests_a_spawned_ike_sa_queued_are_sent_when_the_endpoint_takes_it() -> None:
    """A rekey that loses the nonce comparison deletes the new IKE SA it made (RFC 7296 §2.8.2): an
    exchange queued on a freshly spawned SA goes out on that SA, Message ID 0, when it is adopted."""

    @attrs.define(eq=False)
    class SpawningWithCheck(Spawning):
        def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply | Deferred:
            reply = super().respond(sa, request, when)
            self.made[-1].layer.enqueue(LivenessCheck())
            return reply

    spawner = SpawningWithCheck()
    pair, _, responder_sa = established(lambda sa, request: spawner)
    out = pair.to_responder(forge(responder_sa, ExchangeType.INFORMATIONAL, (), message_id=2))
    [new] = spawner.made
    assert len(out) == 2  # the response on the old SA, then the new SA's request
    header = decode_header(out[1])[0]
    assert (header.spi_i, header.spi_r, header.message_id) == (new.spi_i, new.spi_r, 0)
    assert not header.is_response
    assert unprotect(NEW_RESPONDER, out[1])[0].payloads == () and 0 in new.layer.pending


def test_a_factory_may_decline_a_request_it_was_listed_for() -> None:
    """An extension's exchange is listed in the table but allowed only when negotiated: a factory that
    returns ``None`` makes the request "not allowed in this state"; on an authenticated IKE SA it is
    answered INVALID_SYNTAX (RFC 7296 §2.21.3: every request with an error gets a response)."""
    pair, _, responder_sa = established(lambda sa, request: None)
    request = forge(responder_sa, ExchangeType.INFORMATIONAL, (), message_id=2)
    outcome = pair.responder.receive(request, reverse(pair.path), pair.now)
    assert outcome == ReceiveOutcome(Verdict.ACCEPTED, responder_sa.local_spi)
    [response] = pair.responder.messages_to_send()
    assert read(responder_sa, response.data, from_initiator=False).payloads == (
        NotifyPayload(NotifyType.INVALID_SYNTAX),
    )
    assert responder_sa.state is IkeSaState.CLOSED  # INVALID_SYNTAX is fatal (§2.21.3)


@attrs.define(eq=False)
class Rounds(Exchange):
    """Three rounds of one exchange, as EAP takes in IKE_AUTH (RFC 7296 §2.16)."""

    exchange_type = ExchangeType.INFORMATIONAL
    round: int = 0

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply | Deferred:
        self.round += 1
        return Reply((), f"round {self.round}", done=self.round == 3)


def test_an_error_in_a_later_round_ends_the_exchange_and_abandons_it() -> None:
    """The boundary ends an exchange of several rounds: the next request starts a new one."""
    abandoned: list[str] = []

    @attrs.define(eq=False)
    class Failing(Rounds):
        def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply | Deferred:
            if self.round == 1:
                raise TemporaryFailure("the backend went away")
            return super().respond(sa, request, when)

        def abandon(self, sa: IkeSa, reason: str) -> None:
            abandoned.append(reason)

    made: list[Failing] = []

    def factory(sa: IkeSa, request: Received) -> Exchange:
        made.append(Failing())
        return made[-1]

    pair, _, responder_sa = established(factory)
    for message_id in (2, 3, 4):
        pair.to_responder(forge(responder_sa, ExchangeType.INFORMATIONAL, (), message_id=message_id))
    results = [e.result for e in pair.events(RequestAnswered)][-3:]
    assert results == ["round 1", "refused with TEMPORARY_FAILURE: the backend went away", "round 1"]
    assert abandoned == ["the backend went away"] and len(made) == 2


def test_every_request_given_up_is_abandoned_before_the_sa_closes() -> None:
    """RFC 9329 §6.2 over TCP: two requests of ours in flight (the peer's window is 2) time out
    together; both exchanges hear of it, then the SA ends."""
    abandoned: list[str] = []

    @attrs.define(eq=False)
    class Watched(LivenessCheck):
        def abandon(self, sa: IkeSa, reason: str) -> None:
            abandoned.append(reason)

    pair = Pair.create(responder_config(IKE, window_size=2), transport=Transport.TCP)
    initiator_sa = pair.initiate(initiator_settings(IKE))
    pair.pump()
    for _ in range(2):
        pair.initiator.start(initiator_sa.local_spi, Watched(), pair.now)
    assert len(pair.initiator.messages_to_send()) == 2  # sent, never delivered
    pair.initiator.handle_timer(pair.now + TCP_RESPONSE_TIMEOUT)
    assert abandoned == [f"peer did not answer INFORMATIONAL request {n}" for n in (2, 3)]
    assert initiator_sa.state is IkeSaState.CLOSED


def test_an_exchange_of_several_rounds_is_one_object_until_done() -> None:
    made: list[Rounds] = []

    def factory(sa: IkeSa, request: Received) -> Exchange:
        made.append(Rounds())
        return made[-1]

    pair, _, responder_sa = established(factory)
    for message_id in range(2, 6):
        pair.to_responder(forge(responder_sa, ExchangeType.INFORMATIONAL, (), message_id=message_id))
    results = [e.result for e in pair.events(RequestAnswered)][-4:]
    assert results == ["round 1", "round 2", "round 3", "round 1"]
    assert [m.round for m in made] == [3, 1]


@attrs.define(eq=False)
class Clock(Exchange):
    exchange_type = ExchangeType.INFORMATIONAL
    seen: list[Instant] = attrs.Factory(list)

    def respond(self, sa: IkeSa, request: Received, when: Instant) -> Reply | Deferred:
        self.seen.append(when)
        return Reply((), "time noted")


def test_the_wall_clock_reaches_the_exchange_beside_now() -> None:
    """Certificate validity needs calendar time (RFC 5280 §4.1.2.5); deadlines use the monotonic ``now``."""
    clock = Clock()
    pair, _, responder_sa = established(lambda sa, request: clock)
    request = forge(responder_sa, ExchangeType.INFORMATIONAL, (), message_id=2)
    pair.responder.receive(request, reverse(pair.path), 7.5, wall=1_765_000_000.25)
    assert clock.seen == [Instant(7.5, 1_765_000_000.25)]


# --------------------------------------------------------------------------- collisions (RFC 7296 §2.25)


def delete_in_flight() -> tuple[Pair, IkeSa, IkeSa]:
    """An established SA whose responder has sent a Delete of it that the initiator has not seen."""
    pair = Pair.create(responder_config(IKE))
    initiator_sa = pair.initiate(initiator_settings(IKE))
    pair.pump()
    [responder_sa] = pair.responder.sas
    pair.responder.request_delete(responder_sa.local_spi, pair.now)
    assert len(pair.responder.messages_to_send()) == 1 and responder_sa.layer.pending
    return pair, initiator_sa, responder_sa


def test_a_request_to_create_a_child_of_an_sa_being_closed_gets_temporary_failure() -> None:
    """§2.25.1: "If a peer receives a request to rekey a Child SA that it is currently trying to
    close, it SHOULD reply with TEMPORARY_FAILURE"; so does a new Child SA of an IKE SA being closed."""
    pair, _, responder_sa = delete_in_flight()
    child = offer((EspProposal.parse("aes256gcm16"),), b"\x0c\x0c\x0c\x0c")
    request = forge(responder_sa, ExchangeType.CREATE_CHILD_SA, (child,), message_id=2)
    [response] = pair.to_responder(request)
    payloads: tuple[Payload, ...] = read(responder_sa, response, from_initiator=False).payloads
    assert payloads == (NotifyPayload(NotifyType.TEMPORARY_FAILURE),)
    assert responder_sa.state is IkeSaState.ESTABLISHED and responder_sa.layer.pending


def test_a_delete_of_the_sa_we_are_deleting_is_answered_and_ours_forgotten() -> None:
    """§2.25.2: "If a peer receives a request to close an IKE SA that it is currently trying to close,
    it SHOULD reply as usual, and forget about its own close request"."""
    pair, _, responder_sa = delete_in_flight()
    delete = DeletePayload(ProtocolId.IKE, 0, ())
    request = forge(responder_sa, ExchangeType.INFORMATIONAL, (delete,), message_id=2)
    [response] = pair.to_responder(request)
    assert read(responder_sa, response, from_initiator=False).payloads == ()
    [closed] = pair.events(IkeSaClosed)
    assert closed.reason == "deleted by the peer (INFORMATIONAL Delete of the IKE SA)"
    assert pair.responder.sa(responder_sa.local_spi) is None and pair.responder.get_timer() is None
