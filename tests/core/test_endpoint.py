"""The endpoint: new SAs, typed receive outcomes, per-SA and global timers, O(1) counts."""

from __future__ import annotations

from responder.core.events import IkeSaClosed
from responder.core.ike_sa import IkeSaState
from responder.core.outcomes import ReceiveOutcome, Verdict
from responder.core.path import Transport
from tests.fakes.pair import Pair, initiator_settings, responder_config, reverse

IKE = "aes256gcm16-prfsha256-x25519"


def test_new_sas_lists_each_created_sa_once() -> None:
    pair = Pair.create(responder_config(IKE))
    sa = pair.initiate(initiator_settings(IKE))
    assert pair.initiator.new_sas() == [sa]
    assert pair.initiator.new_sas() == []
    pair.pump()
    [responder_sa] = pair.responder.new_sas()
    assert responder_sa.spis == sa.spis and not responder_sa.is_original_initiator
    assert pair.responder.new_sas() == []


def test_refused_ike_sa_init_creates_no_sa() -> None:
    pair = Pair.create(responder_config(IKE))
    pair.initiate(initiator_settings("aes128-sha256-modp2048"))
    pair.pump()
    assert pair.responder.new_sas() == []


def test_receive_outcomes_name_the_sa_and_say_whether_the_message_authenticated() -> None:
    """The shell learns from ``receive`` what became of a message without parsing it (RFC 9329 §6.1):
    a new IKE_SA_INIT answered, a valid message of an SA, a retransmission, a message the core could
    not authenticate, an authenticated one it did not act on, and an IKE_SA_INIT that does not parse."""
    pair = Pair.create(responder_config(IKE), transport=Transport.TCP)
    pair.initiate(initiator_settings(IKE))
    [init_request] = pair.initiator.messages_to_send()
    path = reverse(pair.path)
    created = pair.responder.receive(init_request.data, path, 0.0)
    [init_response] = pair.responder.messages_to_send()
    assert created == ReceiveOutcome(Verdict.CREATED, init_response.data[8:16])
    assert created.new_sa_request and not created.corrupt
    [auth_request] = pair.to_initiator(init_response.data)
    accepted = pair.responder.receive(auth_request, path, 0.0)
    assert accepted == ReceiveOutcome(Verdict.ACCEPTED, created.local_spi) and accepted.authenticated
    again = pair.responder.receive(auth_request, path, 0.0)
    assert again == ReceiveOutcome(Verdict.RETRANSMISSION, created.local_spi)
    forged = bytearray(auth_request)
    forged[-1] ^= 1  # the ICV no longer verifies
    outcome = pair.responder.receive(bytes(forged), path, 0.0)
    assert outcome == ReceiveOutcome(Verdict.CORRUPT, created.local_spi) and outcome.corrupt
    unknown = bytes(8) + auth_request[8:]
    assert pair.responder.receive(unknown, path, 0.0) == ReceiveOutcome(Verdict.CORRUPT)
    assert pair.responder.receive(b"\x00" * 5, path, 0.0).corrupt
    copy = pair.responder.receive(init_request.data, path, 0.0)  # IKE_AUTH arrived: ignored (RFC 7296 §2.1)
    assert copy == ReceiveOutcome(Verdict.IGNORED, created.local_spi) and not copy.corrupt
    broken = init_request.data[:-1]  # Length no longer matches
    assert pair.responder.receive(broken, path, 0.0) == ReceiveOutcome(Verdict.MALFORMED)
    pair.responder.messages_to_send()  # its INVALID_SYNTAX
    # An unknown payload with the critical bit parses far enough to be refused by name (RFC 7296 §2.5).
    critical = bytearray(init_request.data)
    first_type = critical[16]
    critical[16] = 0xC8  # an unassigned payload type, first in the chain ...
    unknown = bytes([first_type, 0x80]) + (4).to_bytes(2, "big")  # ... with its critical bit, empty
    data = bytes(critical[:24]) + (len(critical) + 4).to_bytes(4, "big") + unknown + bytes(critical[28:])
    assert pair.responder.receive(data, path, 0.0) == ReceiveOutcome(Verdict.REFUSED)
    [refusal] = pair.responder.messages_to_send()
    assert b"\x00\x00\x00\x01\xc8" in refusal.data  # UNSUPPORTED_CRITICAL_PAYLOAD naming type 200


def test_handle_sa_timer_runs_only_that_sa_and_only_when_due() -> None:
    pair = Pair.create(responder_config(IKE))
    pair.initiate(initiator_settings(IKE))
    pair.deliver(pair.initiator.messages_to_send(), True, None)
    pair.now = 1.0
    pair.initiate(initiator_settings(IKE))
    pair.deliver(pair.initiator.messages_to_send(), True, None)
    first, second = pair.responder.new_sas()
    assert first.get_timer() == 30.0 and second.get_timer() == 31.0
    pair.responder.handle_sa_timer(first.local_spi, 29.0)
    assert first.state is IkeSaState.INIT_DONE
    pair.responder.handle_sa_timer(first.local_spi, 31.5)  # both are due; only the one named runs
    assert first.state is IkeSaState.CLOSED and second.state is IkeSaState.INIT_DONE
    assert pair.responder.sa(first.spi_r) is None and pair.responder.sa(second.spi_r) is second
    events = []
    while (event := pair.responder.next_event()) is not None:
        events.append(event)
    assert [e.spi_r for e in events if isinstance(e, IkeSaClosed)] == [first.spi_r]
    pair.responder.handle_sa_timer(first.local_spi, 100.0)  # no longer held: nothing happens
    assert pair.responder.next_event() is None


def test_handle_timer_still_runs_every_due_sa() -> None:
    pair = Pair.create(responder_config(IKE))
    for _ in range(2):
        pair.initiate(initiator_settings(IKE))
        pair.deliver(pair.initiator.messages_to_send(), True, None)
    assert pair.responder.half_open_count == 2 and pair.responder.get_timer() == 30.0
    pair.responder.handle_timer(30.0)
    assert list(pair.responder.sas) == [] and pair.responder.half_open_count == 0
    assert pair.responder.get_timer() is None
