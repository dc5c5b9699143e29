"""Endpoint methods for the shell's per-SA tasks: new_sas(), find_sa(), handle_sa_timer()."""

from __future__ import annotations

from responder.core.events import IkeSaClosed
from responder.core.ike_sa import IkeSaState
from responder.core.path import Transport
from tests.fakes.pair import Pair, initiator_settings, responder_config

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


def test_find_sa_by_header() -> None:
    pair = Pair.create(responder_config(IKE), transport=Transport.TCP)
    sa = pair.initiate(initiator_settings(IKE))
    [init_request] = pair.initiator.messages_to_send()
    assert pair.responder.find_sa(init_request.data) is None  # a new IKE_SA_INIT
    [init_response] = pair.to_responder(init_request.data)
    assert pair.initiator.find_sa(init_response) is sa
    responder_sa = pair.responder.sa(init_response[8:16])
    assert responder_sa is not None
    auth = pair.to_initiator(init_response)
    assert pair.responder.find_sa(auth[0]) is responder_sa
    assert pair.responder.find_sa(b"\x00" * 5) is None  # no header
    wrong_spi_i = bytes(8) + auth[0][8:]
    assert pair.responder.find_sa(wrong_spi_i) is None


def test_handle_sa_timer_runs_only_that_sa_and_only_when_due() -> None:
    pair = Pair.create(responder_config(IKE))
    pair.initiate(initiator_settings(IKE))
    pair.deliver(pair.initiator.messages_to_send(), True, None)
    pair.now = 1.0
    pair.initiate(initiator_settings(IKE))
    pair.deliver(pair.initiator.messages_to_send(), True, None)
    first, second = pair.responder.new_sas()
    assert first.get_timer() == 30.0 and second.get_timer() == 31.0
    pair.responder.handle_sa_timer(first, 29.0)
    assert first.state is IkeSaState.INIT_DONE
    pair.responder.handle_sa_timer(first, 31.5)  # both are due; only the one named runs
    assert first.state is IkeSaState.CLOSED and second.state is IkeSaState.INIT_DONE
    assert pair.responder.sa(first.spi_r) is None and pair.responder.sa(second.spi_r) is second
    events = []
    while (event := pair.responder.next_event()) is not None:
        events.append(event)
    assert [e.spi_r for e in events if isinstance(e, IkeSaClosed)] == [first.spi_r]
    pair.responder.handle_sa_timer(first, 100.0)  # no longer held: nothing happens
    assert pair.responder.next_event() is None


def test_handle_timer_still_runs_every_due_sa() -> None:
    pair = Pair.create(responder_config(IKE))
    for _ in range(2):
        pair.initiate(initiator_settings(IKE))
        pair.deliver(pair.initiator.messages_to_send(), True, None)
    pair.responder.handle_timer(30.0)
    assert list(pair.responder.sas) == []
