"""Endpoint.reconfigure (a reload, issue 13): the new configuration decides from now on; an
established IKE SA a peer still covers stays under that peer's policy, one that no peer covers
is deleted with an INFORMATIONAL Delete (RFC 7296 §1.4.1) the initiator answers."""

from __future__ import annotations

import ipaddress

import attrs

from responder.core.config import (
    AddressPool,
    ChildConfig,
    Config,
    Dpd,
    EspProposal,
    IdPattern,
    Limits,
    PeerConfig,
    PubkeyAuth,
    TrustStore,
)
from responder.core.events import IkeSaClosed
from responder.core.ike_sa import IkeSaState
from responder.core.initiator import ChildRequest
from tests.fakes.pair import (
    PSK,
    RESPONDER_ID,
    Pair,
    any_selectors,
    child_request,
    initiator_settings,
    responder_config,
)
from tests.fakes.pki import Authority

SUITE = "aes256gcm16-prfsha256-x25519"


def up() -> tuple[Pair, bytes]:
    pair = Pair.create(responder_config(SUITE))
    sa = pair.initiate(initiator_settings(SUITE, child_request()))
    pair.pump()
    assert sa.state is IkeSaState.ESTABLISHED
    [responder_sa] = pair.responder.sas
    return pair, responder_sa.local_spi


def test_a_peer_that_still_covers_the_sa_keeps_it_and_lends_its_policy() -> None:
    pair, spi = up()
    alice = PeerConfig(
        "alice2", IdPattern.parse("*@example.org"), PSK, local_id=RESPONDER_ID, dpd=Dpd(delay=5.0)
    )
    result = pair.responder.reconfigure(responder_config(SUITE, peers=(alice,)), pair.now)
    assert (result.kept, result.ended) == (1, ())
    sa = pair.responder.sa(spi)
    assert sa is not None and sa.peer is alice and sa.peer_name == "alice2"
    assert sa.config is pair.responder.config  # every SA reads the new configuration
    pair.pump()
    assert pair.wire[-1][0] == "r->i"  # nothing was sent for it


def test_an_sa_no_peer_covers_is_deleted_and_the_initiator_answers() -> None:
    pair, spi = up()
    carol = PeerConfig("carol", IdPattern.parse("carol@example.org"), PSK)
    result = pair.responder.reconfigure(responder_config(SUITE, peers=(carol,)), pair.now)
    assert (result.kept, result.ended) == (0, (spi,))
    pair.pump()
    assert pair.responder.sa(spi) is None
    [closed] = pair.events(IkeSaClosed)
    assert "no peer of the new configuration covers it" in closed.reason
    assert list(pair.initiator.sas) == []  # the initiator took the Delete


def test_the_method_must_still_match() -> None:
    """An SA authenticated with a shared key is not kept by a certificate peer of the same ID."""
    pair, spi = up()
    root = Authority.root()
    pubkey = PeerConfig("alice", IdPattern.parse("alice@example.org"), PubkeyAuth())
    credential = root.credential("C=XX, O=Lab, CN=moon")
    config = responder_config(
        SUITE, peers=(pubkey,), trust=TrustStore((root.certificate,)), credential=credential
    )
    assert pair.responder.reconfigure(config, pair.now).ended == (spi,)


def test_new_proposals_apply_to_the_next_ike_sa_init() -> None:
    pair, _ = up()
    pair.responder.reconfigure(responder_config("aes128-sha256-modp2048"), pair.now)
    sa = pair.initiate(initiator_settings(SUITE, child_request()))
    pair.pump()
    assert sa.state is IkeSaState.CLOSED
    [closed] = [e for e in pair.events(IkeSaClosed, "initiator") if e.local_spi == sa.local_spi]
    assert "NO_PROPOSAL_CHOSEN" in closed.reason


def pool_config(network: str, dns: str) -> Config:
    pool = AddressPool("vips", ipaddress.IPv4Network(network), None, dns=(ipaddress.ip_address(dns),))
    children = (ChildConfig("net", pool="vips"),)
    peer = PeerConfig("all", IdPattern.parse("*@example.org"), PSK, local_id=RESPONDER_ID, children=children)
    return responder_config(SUITE, peers=(peer,), pools=(pool,))


def leased_sa(pair: Pair) -> bytes:
    request = ChildRequest(
        (EspProposal.parse("aes256gcm16"),), any_selectors(), any_selectors(), request_ipv4=True
    )
    sa = pair.initiate(initiator_settings(SUITE, request))
    pair.pump()
    assert sa.state is IkeSaState.ESTABLISHED
    return sa.spi_r


def test_a_changed_pool_keeps_the_leases_that_still_fit() -> None:
    """RFC 7296 §2.19: a virtual address stays its holder's; the next client gets another one."""
    pair = Pair.create(pool_config("10.9.0.0/29", "10.9.0.53"))
    leaked = leased_sa(pair)
    before = pair.responder._services.pools["vips"].leases(leaked)
    assert before == (ipaddress.IPv4Address("10.9.0.1"),)
    assert pair.responder.reconfigure(pool_config("10.9.0.0/29", "10.9.0.54"), pair.now).kept == 1
    second = leased_sa(pair)
    pools = pair.responder._services.pools["vips"]
    assert pools.leases(leaked) == before and pools.leases(second) == (ipaddress.IPv4Address("10.9.0.2"),)


def test_an_sa_whose_address_left_the_pool_is_deleted() -> None:
    pair = Pair.create(pool_config("10.9.0.0/29", "10.9.0.53"))
    spi = leased_sa(pair)
    result = pair.responder.reconfigure(pool_config("10.9.1.0/29", "10.9.0.53"), pair.now)
    assert (result.kept, result.ended) == (0, (spi,))
    pair.pump()
    [closed] = pair.events(IkeSaClosed)
    assert "its virtual address is not in the changed pool" in closed.reason


def test_the_ipv6_prefix_waits_for_a_restart() -> None:
    pair = Pair.create(responder_config(SUITE))
    config = responder_config(SUITE, limits=Limits(half_open_ipv6_prefix=48))
    pair.responder.reconfigure(config, pair.now)
    assert pair.responder.config.limits.half_open_ipv6_prefix == 64
    assert pair.responder.config == attrs.evolve(config, limits=Limits(half_open_ipv6_prefix=64))
