"""What an established IKE SA keeps, and what it shares with the other SAs of its endpoint (issue 14)."""

from __future__ import annotations

import sys
from ipaddress import ip_address

import pytest

from responder.core.child_sa import ChildSa
from responder.core.errors import LocalError
from responder.core.exchanges.child import make_child
from responder.core.ike_sa import NOTHING, IkeSa, IkeSaState, without
from responder.core.interning import Interner
from responder.core.payloads import TrafficSelector
from responder.core.transforms import AeadCipher
from tests.fakes.pair import Pair, child_request, initiator_settings, responder_config

IKE = "aes256gcm16-prfsha256-x25519"


def _selector(last: int) -> TrafficSelector:
    return TrafficSelector(0, 0, 0xFFFF, ip_address("10.0.0.0"), ip_address(f"10.0.0.{last}"))


def test_interner_hands_out_the_first_equal_value() -> None:
    intern = Interner()
    first = (_selector(1),)
    assert intern(first) is first
    assert intern((_selector(1),)) is first
    other = (_selector(2),)
    assert intern(other) is other and len(intern) == 2


def test_interner_is_bounded_and_keeps_working_when_full() -> None:
    """A peer that offers a new value with every SA never grows the table past its limit: it starts
    again, and what it handed out before stays shared by whoever holds it."""
    intern = Interner(limit=8)
    kept = intern((_selector(1),))
    for last in range(2, 200):
        intern((_selector(last),))
        assert len(intern) <= 8
    again = (_selector(1),)
    assert intern(again) is again  # forgotten when the table started again: a new first copy
    assert intern((_selector(1),)) is again and kept == again


def _two_established(child: bool = True) -> tuple[Pair, list[IkeSa]]:
    pair = Pair.create(responder_config(IKE))
    for _ in range(2):
        pair.initiate(initiator_settings(IKE, child_request() if child else None))
    pair.pump()
    sas = list(pair.responder.sas)
    assert len(sas) == 2 and all(sa.state is IkeSaState.ESTABLISHED for sa in sas)
    return pair, sas


def _child(sa: IkeSa) -> ChildSa:
    [child] = sa.children.values()
    return child


def test_sas_that_negotiate_alike_share_one_suite_and_one_set_of_selectors() -> None:
    pair, (one, two) = _two_established()
    assert one.proposal is two.proposal and one.proposal is not None and one.proposal.spi == b""
    first, second = _child(one).params, _child(two).params
    assert first.proposal is second.proposal and first.proposal.spi == b""
    assert first.local_ts is second.local_ts and first.remote_ts is second.remote_ts
    assert first.outbound_spi != second.outbound_spi  # the peer's SPI stays each pair's own
    assert (one.encryption, one.prf) == (two.encryption, two.prf) and one.encryption is two.encryption
    installed = pair.responder._data_plane._installed
    a, b = installed[first.inbound_spi], installed[second.inbound_spi]
    assert a.ranges is b.ranges and a.remote_ranges is b.remote_ranges
    assert a.esp.inbound.suite is b.esp.inbound.suite is b.esp.outbound.suite


def _auth_state_forgotten(sa: IkeSa) -> None:
    assert sa.keys is not None and sa.keys.sk_d and sa.keys.sk_ei and sa.keys.sk_er
    assert (sa.keys.sk_pi, sa.keys.sk_pr) == (b"", b"")
    assert (sa.init_request, sa.init_response, sa.nonce_i, sa.nonce_r) == (b"", b"", b"", b"")
    assert sa.peer_signature_hashes is None and sa.peer_certreq_cas == frozenset()


def test_what_only_ike_auth_needs_is_forgotten_once_it_is_done() -> None:
    """RFC 7296 §2.15, §2.17: the IKE_SA_INIT messages, the nonces, SK_pi and SK_pr are used up by
    IKE_AUTH and its Child SA, on both ends; SAs whose peer named no CA share one empty set."""
    pair, (one, two) = _two_established()
    for sa in (one, two, *pair.initiator.sas):
        _auth_state_forgotten(sa)
        assert sa.children  # the first Child SA got its keys before
    assert one.peer_certreq_cas is two.peer_certreq_cas


def test_a_child_sa_after_ike_auth_needs_nonces_of_its_own() -> None:
    """The IKE_SA_INIT nonces are gone: a Child SA made without its exchange's nonces is a bug."""
    _, (sa, _) = _two_established()
    params = _child(sa).params
    with pytest.raises(LocalError, match="nonces"):
        make_child(
            sa,
            "n",
            params.proposal,
            b"\x01\x02\x03\x04",
            b"\x05\x06\x07\x08",
            (),
            (),
            params.mode,
            initiated=False,
        )


def test_ike_auth_state_is_kept_until_ike_auth_and_its_retransmission_is_still_answered() -> None:
    """RFC 7296 §2.1: the answer to a copy of the last request comes from the stored response, which
    needs none of what IKE_AUTH used."""
    pair = Pair.create(responder_config(IKE))
    pair.initiate(initiator_settings(IKE, child_request()))
    [init_request] = [out.data for out in pair.initiator.messages_to_send()]
    [init_response] = pair.to_responder(init_request)
    [sa] = pair.responder.sas
    assert sa.state is IkeSaState.INIT_DONE and sa.keys is not None
    assert sa.init_request and sa.init_response and sa.nonce_i and sa.nonce_r and sa.keys.sk_pi
    assert sa.peer_signature_hashes  # our initiator always sends them (RFC 7427 §4)
    [auth_request] = pair.to_initiator(init_response)
    [auth_response] = pair.to_responder(auth_request)
    assert pair.to_initiator(auth_response) == []
    assert sa.state is IkeSaState.ESTABLISHED and len(sa.children) == 1
    _auth_state_forgotten(sa)
    assert pair.to_responder(auth_request) == [auth_response]
    assert sa.state is IkeSaState.ESTABLISHED and len(sa.children) == 1


def test_an_established_sa_holds_no_empty_queues() -> None:
    """What waits for the endpoint is the shared empty tuple once taken, and a dict that emptied
    gives back the table it grew (issue 14)."""
    pair, (sa, _) = _two_established()
    assert sa.spawned == sa.touched == sa._outgoing == sa._events == sa.layer._sent == sa.layer.queued == ()
    assert sa.deferred is sa.continuing is NOTHING
    assert list(sa.layer._taken) == [1]  # the IKE_AUTH request and its response (RFC 7296 §2.1)
    pair.responder.request_liveness_check(sa.local_spi, pair.now)  # a request of ours, answered
    pair.pump()
    assert sa.layer.next_send_id == 1 and not sa.layer.pending
    assert sys.getsizeof(sa.layer.pending) == sys.getsizeof({})


def test_without_takes_a_key_out_and_gives_the_shared_empty_mapping_back() -> None:
    one = {1: "a"}
    assert without(one, 2) is one
    assert without({1: "a", 2: "b"}, 2) == {1: "a"}
    assert without(one, 1) is NOTHING and one == {1: "a"}


def test_keys_are_held_once() -> None:
    """The SK and ESP ciphers hold the very octets the key records hold, and make what they cut from
    them (the AEAD's key and salt, its library object) only when a message or packet needs it."""
    pair, (sa, _) = _two_established()
    assert sa.keys is not None and sa.layer.inbound is not None and sa.layer.outbound is not None
    assert sa.layer.inbound._key is sa.keys.sk_ei and sa.layer.outbound._key is sa.keys.sk_er
    params = _child(sa).params
    esp = pair.responder._data_plane._installed[params.inbound_spi].esp
    for cipher, key in (
        (esp.inbound._cipher, params.keys.encryption_i),
        (esp.outbound._cipher, params.keys.encryption_r),
    ):
        assert isinstance(cipher, AeadCipher) and cipher._material is key and cipher._aead is None
