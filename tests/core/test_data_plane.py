"""The ESP data plane in the core (issue 12): a ping through the tunnel between two endpoints in
memory, over UDP and TCP paths, every suite; the echo backend answers only addresses we own; what
does not open is dropped with its reason (RFC 4303 §3.4)."""

from __future__ import annotations

import ipaddress

import attrs
import pytest

from responder.core.config import (
    ChildConfig,
    ConfigError,
    EspProposal,
    IdPattern,
    Mode,
    PeerConfig,
    TrafficSelectorPolicy,
)
from responder.core.data_plane import IPV4_IN_ESP, IPV6_IN_ESP, Backend
from responder.core.echo import EchoReply, answer, echo_request, read_packet
from responder.core.events import EspSaRemoved, PathChanged
from responder.core.exchanges.informational import DeleteChildSa
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.initiator import ChildRequest
from responder.core.outbound import Unrouted
from responder.core.path import Transport
from responder.core.payloads import TrafficSelector
from responder.core.selectors import to_selector
from tests.fakes.pair import PSK, RESPONDER_ID, Pair, initiator_settings, responder_config, reverse

SUITE = "aes256gcm16-prfsha256-x25519"
ME = ipaddress.ip_address("10.1.0.2")
THEM = ipaddress.ip_address("192.0.2.10")


def tunnel(
    esp: str = "aes256gcm16", transport: Transport = Transport.UDP, **child: object
) -> tuple[Pair, IkeSa]:
    proposals = (EspProposal.parse(esp),)
    children = (ChildConfig("net", esp_proposals=proposals, **child),)  # type: ignore[arg-type]
    peer = PeerConfig(
        "alice", IdPattern.parse("alice@example.org"), PSK, local_id=RESPONDER_ID, children=children
    )
    pair = Pair.create(responder_config(SUITE, peers=(peer,)), transport=transport)
    both = (to_selector(TrafficSelectorPolicy.any(4)), to_selector(TrafficSelectorPolicy.any(6)))
    request = ChildRequest((EspProposal.parse(esp),), both, both)
    sa = pair.initiate(initiator_settings(SUITE, request))
    pair.pump()
    assert sa.state is IkeSaState.ESTABLISHED and len(sa.children) == 1
    return pair, sa


def ping(pair: Pair, sa: IkeSa, packet: bytes, next_header: int = IPV4_IN_ESP) -> list[bytes]:
    [child] = sa.children
    assert pair.initiator.send_inner(sa.local_spi, child, packet, next_header, pair.now)
    pair.pump()
    return [inner.payload for inner in pair.initiator.data_plane.take_inner()]


@pytest.mark.parametrize(
    "esp", ["aes256gcm16", "aes128gcm16", "chacha20poly1305", "aes256-sha256", "aes128-sha512"]
)
@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP])
def test_a_ping_through_the_tunnel_is_answered(esp: str, transport: Transport) -> None:
    pair, sa = tunnel(esp, transport)
    request = echo_request(ME, THEM, identifier=7, sequence=1, data=b"through the tunnel")
    [reply] = ping(pair, sa, request)
    expected = answer(request, (_any4(),))
    assert isinstance(expected, EchoReply) and reply == expected.packet
    parsed = read_packet(reply)
    assert not hasattr(parsed, "reason") and parsed.source == THEM and parsed.destination == ME  # type: ignore[union-attr]
    [esp_out] = [data for way, data in pair.wire if way == "r->i" and data[:4] != bytes(4)][-1:]
    [child] = sa.children.values()
    assert esp_out[:4] == child.inbound_spi  # ESP to the initiator's SPI, on the same path
    [responder_sa] = pair.responder.sas
    counters = pair.responder.data_plane.sa(child.outbound_spi)
    assert counters is not None and counters.inbound.counters.packets == 1
    assert pair.responder.data_plane.echoed == 1 and responder_sa.state is IkeSaState.ESTABLISHED


def test_ipv6_echo() -> None:
    pair, sa = tunnel()
    six = echo_request(
        ipaddress.ip_address("fd00::2"), ipaddress.ip_address("2001:db8::1"), identifier=1, sequence=9
    )
    [reply] = ping(pair, sa, six, IPV6_IN_ESP)
    assert reply[0] >> 4 == 6


def _any4() -> TrafficSelector:
    return to_selector(TrafficSelectorPolicy.any(4))


def test_only_addresses_we_own_are_answered() -> None:
    """The echo backend answers inside our traffic selectors (local_ts) only."""
    pair, sa = tunnel(local_ts=(TrafficSelectorPolicy.parse("192.0.2.0/28"),))
    assert ping(pair, sa, echo_request(ME, ipaddress.ip_address("192.0.2.5"), identifier=1, sequence=1))
    assert (
        ping(pair, sa, echo_request(ME, ipaddress.ip_address("198.51.100.1"), identifier=1, sequence=2)) == []
    )
    assert pair.responder.data_plane.inner_drops["not_selected"] == 1  # RFC 4301 §5.2


@pytest.mark.parametrize("backend", ["echo", "api"])
def test_what_comes_from_outside_the_peers_selectors_is_dropped(backend: str) -> None:
    """RFC 4301 §5.2: a decrypted tunnel-mode packet must come from inside the peer's selectors (our
    remote_ts) and go to inside ours: a source the pair does not cover is dropped, whatever the
    backend (no echo reply leaves on an SA whose selectors do not hold its destination)."""
    pair, sa = tunnel(remote_ts=(TrafficSelectorPolicy.parse("10.1.0.0/24"),), backend=backend)
    inside = echo_request(ME, THEM, identifier=1, sequence=1)
    outside = echo_request(ipaddress.ip_address("10.2.0.9"), THEM, identifier=1, sequence=2)
    [child] = sa.children
    for packet in (inside, outside):
        assert pair.initiator.send_inner(sa.local_spi, child, packet, IPV4_IN_ESP, pair.now)
        pair.pump()
    plane = pair.responder.data_plane
    assert plane.inner_drops["not_selected"] == 1
    if backend == "echo":
        assert plane.echoed == 1
    else:
        assert [inner.payload for inner in plane.take_inner()] == [inside]


def test_a_replayed_packet_is_dropped_with_its_reason() -> None:
    """RFC 4303 §3.4.3: a copy of a packet already received is discarded (and counted)."""
    pair, sa = tunnel()
    [child] = sa.children
    pair.initiator.send_inner(
        sa.local_spi, child, echo_request(ME, THEM, identifier=1, sequence=1), IPV4_IN_ESP, pair.now
    )
    [esp] = pair.initiator.messages_to_send()
    for _ in range(2):
        pair.esp_to_responder(esp.data)
    assert pair.responder.last_esp == "dropped: replay"
    assert pair.responder.data_plane.drops["replay"] == 1 and pair.responder.data_plane.echoed == 1


def test_the_api_backend_queues_inner_packets_for_the_program() -> None:
    pair, sa = tunnel(backend="api")
    request = echo_request(ME, THEM, identifier=1, sequence=1)
    assert ping(pair, sa, request) == []  # nobody answered
    [inner] = pair.responder.data_plane.take_inner()
    assert inner.payload == request and inner.next_header == IPV4_IN_ESP
    [responder_sa] = pair.responder.sas
    assert inner.local_spi == responder_sa.local_spi
    # and the program answers through the same Child SA
    reply = answer(request, (_any4(),))
    assert isinstance(reply, EchoReply)
    assert pair.responder.send_inner(inner.local_spi, inner.child, reply.packet, IPV4_IN_ESP, pair.now)
    pair.pump()
    assert [p.payload for p in pair.initiator.data_plane.take_inner()] == [reply.packet]


def test_a_deleted_child_sa_takes_its_esp_sa_with_it() -> None:
    pair, sa = tunnel()
    [child] = sa.children.values()
    assert pair.responder.data_plane.sa(child.outbound_spi) is not None
    pair.initiator.request_delete(sa.local_spi, pair.now)
    pair.pump()
    assert pair.responder.data_plane.sa(child.outbound_spi) is None


@pytest.mark.parametrize("how", ["child deleted", "ike sa deleted"])
def test_removed_esp_sas_report_what_they_carried(how: str) -> None:
    """Issue 12: when a Child SA's ESP SAs leave the data plane (the Child SA is deleted, or its IKE
    SA ends) an ``EspSaRemoved`` event gives their lifetime counters for the log (RFC 4303 §3.4)."""
    pair, sa = tunnel()
    [child] = sa.children.values()
    request = echo_request(ME, THEM, identifier=7, sequence=1, data=b"x" * 100)
    assert len(ping(pair, sa, request)) == 1
    assert len(ping(pair, sa, request)) == 1
    [inbound] = sa.children
    replayed = pair.initiator.data_plane.sa(inbound)
    assert replayed is not None
    last = replayed.outbound.seal(request, IPV4_IN_ESP)
    pair.esp_to_responder(last)
    pair.esp_to_responder(last)  # a replay (RFC 4303 §3.4.3)
    forged = replayed.outbound.seal(request, IPV4_IN_ESP)  # a fresh number, so past the replay check
    pair.esp_to_responder(forged[:-1] + bytes([forged[-1] ^ 1]))  # a failed ICV, then a runt
    pair.esp_to_responder(last[:9])
    if how == "child deleted":
        pair.initiator.start(sa.local_spi, DeleteChildSa.of((inbound,), "test"), pair.now)
    else:
        pair.initiator.request_delete(sa.local_spi, pair.now)
    pair.pump()
    [removed] = pair.events(EspSaRemoved)
    assert removed.inbound_spi == child.outbound_spi and removed.outbound_spi == child.inbound_spi
    assert (removed.packets_in, removed.packets_out) == (3, 3)  # each request answered (echo)
    assert removed.octets_in == removed.octets_out == 3 * len(request)
    assert (removed.replay_drops, removed.integrity_failures, removed.malformed) == (1, 1, 1)
    assert pair.responder.data_plane.sa(child.outbound_spi) is None


def test_a48_esp_over_tcp_keeps_a_real_replay_window() -> None:
    """RFC 9329 row A48: over TCP packets from an old and a new connection can interleave, so the
    anti-replay window is a real one (RFC 4303 §3.4.3), not a window of 1: out-of-order packets
    inside it are accepted once each."""
    pair, sa = tunnel(transport=Transport.TCP)
    [child] = sa.children
    packets = []
    for sequence in (1, 2, 3):
        request = echo_request(ME, THEM, identifier=1, sequence=sequence)
        assert pair.initiator.send_inner(sa.local_spi, child, request, IPV4_IN_ESP, pair.now)
        [esp] = pair.initiator.messages_to_send()
        packets.append(esp.data)
    for data in (packets[2], packets[0], packets[1], packets[0]):  # 3, 1, 2, then 1 again
        pair.esp_to_responder(data)
    assert pair.responder.data_plane.echoed == 3
    assert pair.responder.last_esp == "dropped: replay"


@pytest.mark.parametrize("window", [4, 64])
def test_the_replay_window_is_the_childs(window: int) -> None:
    """``replay_window`` of the child sizes the inbound ESP SA's window (RFC 4303 §3.4.3): a packet
    ``window`` numbers behind the highest one received is too old, one inside it is accepted."""
    pair, sa = tunnel(replay_window=window)
    [child] = sa.children
    ours = pair.responder.data_plane.sa(sa.children[child].outbound_spi)
    assert ours is not None and ours.inbound.window.size == window
    packets = []
    for sequence in range(1, window + 3):
        request = echo_request(ME, THEM, identifier=1, sequence=sequence)
        assert pair.initiator.send_inner(sa.local_spi, child, request, IPV4_IN_ESP, pair.now)
        [esp] = pair.initiator.messages_to_send()
        packets.append(esp.data)
    pair.esp_to_responder(packets[-1])  # the highest first: window + 2
    pair.esp_to_responder(packets[1])  # number 2: exactly ``window`` behind, left of the window
    assert pair.responder.last_esp == "dropped: too old"
    pair.esp_to_responder(packets[2])  # number 3: the window's left edge
    assert pair.responder.last_esp == "answered (echo)"


def test_a36_esp_that_opens_moves_the_path_and_shows_the_peer_alive() -> None:
    """RFC 9329 §6.1 row A36: a decrypted, non-replayed ESP packet on another connection moves the
    SA's path there, as a valid IKE message does, and counts as hearing from the peer (RFC 7296
    §2.4); ESP that does not authenticate moves nothing."""
    pair, sa = tunnel(transport=Transport.TCP)
    [responder_sa] = pair.responder.sas
    [child] = sa.children
    first = responder_sa.path
    reconnected = attrs.evolve(pair.path, local_port=40002, connection=2)  # as the initiator sees it
    pair.now = 50.0
    assert pair.initiator.send_inner(
        sa.local_spi, child, echo_request(ME, THEM, identifier=1, sequence=1), 4, pair.now
    )
    [esp] = pair.initiator.messages_to_send()
    forged = esp.data[:-1] + bytes([esp.data[-1] ^ 1])
    pair.responder.receive_esp(forged, reverse(attrs.evolve(reconnected, connection=3)), pair.now)
    assert responder_sa.path == first and responder_sa.last_heard < 50.0
    pair.responder.receive_esp(esp.data, reverse(reconnected), pair.now)
    assert responder_sa.path == reverse(reconnected) and responder_sa.last_heard == 50.0
    [moved] = [e for e in pair.responder.messages_to_send() if e.esp]
    assert moved.path == reverse(reconnected)  # the echo reply goes where the request came from
    pair.drain()
    [changed] = pair.events(PathChanged)
    assert changed.path == reverse(reconnected) and changed.previous == first


def test_the_tun_backend_queues_selected_packets_and_routes_the_answers_back() -> None:
    """Issue 12, the TUN backend at the core's boundary: a decrypted packet inside the Child SA's
    selectors is queued with its backend (RFC 4301 §5.2); one outside them is dropped; what the
    host answers is routed by the selectors into the same Child SA (RFC 4301 §5.1)."""
    pair, sa = tunnel(backend="tun", local_ts=(TrafficSelectorPolicy.parse("192.0.2.0/24"),))
    request = echo_request(ME, THEM, identifier=1, sequence=1)
    assert ping(pair, sa, request + bytes(8)) == []  # TFC padding (RFC 4303 §2.4) after the packet
    [inner] = pair.responder.data_plane.take_inner()
    assert inner.backend is Backend.TUN and inner.payload == request and inner.next_header == IPV4_IN_ESP
    outside = echo_request(ME, ipaddress.ip_address("198.51.100.1"), identifier=1, sequence=2)
    assert ping(pair, sa, outside) == [] and pair.responder.data_plane.take_inner() == []
    assert pair.responder.data_plane.inner_drops["not_selected"] == 1
    reply = answer(request, (_any4(),))
    assert isinstance(reply, EchoReply)
    assert pair.responder.data_plane.route(reply.packet) == inner.child
    assert pair.responder.send_inner(None, inner.child, reply.packet, IPV4_IN_ESP, pair.now)  # its IKE SA
    pair.pump()
    assert [p.payload for p in pair.initiator.data_plane.take_inner()] == [reply.packet]
    stray = echo_request(ipaddress.ip_address("203.0.113.1"), ME, identifier=1, sequence=1, reply=True)
    assert pair.responder.data_plane.route(stray) is Unrouted.NO_SA  # its source is not in local_ts
    assert pair.responder.data_plane.route(b"\xff") is Unrouted.NOT_IP


def test_a_deleted_tun_child_sa_leaves_the_lookup() -> None:
    pair, sa = tunnel(backend="tun")
    [child] = sa.children.values()
    assert child.outbound_spi in pair.responder.data_plane.outbound
    pair.initiator.request_delete(sa.local_spi, pair.now)
    pair.pump()
    assert len(pair.responder.data_plane.outbound) == 0
    reply = echo_request(THEM, ME, identifier=1, sequence=1, reply=True)
    assert pair.responder.data_plane.route(reply) is Unrouted.NO_SA
    assert not pair.responder.send_inner(None, child.outbound_spi, reply, IPV4_IN_ESP, pair.now)


def test_tun_needs_tunnel_mode() -> None:
    with pytest.raises(ConfigError, match="needs mode = 'tunnel'"):
        ChildConfig("net", mode=Mode.TRANSPORT, backend="tun")


def test_encr_null_with_integrity_round_trips_when_configured() -> None:
    """RFC 8221 §5: ENCR_NULL with HMAC-SHA2-256 (``null-sha256``), configured on both ends, makes
    a Child SA whose ESP carries the inner packet in the clear and authenticated."""
    pair, sa = tunnel("null-sha256")
    [child] = sa.children.values()
    assert child.params.proposal.encryption[1] is None and str(child.params.proposal).endswith(
        "null-sha256-noesn"
    )
    request = echo_request(ME, THEM, identifier=3, sequence=1, data=b"in the clear")
    [reply] = ping(pair, sa, request)
    expected = answer(request, (_any4(),))
    assert isinstance(expected, EchoReply) and reply == expected.packet
    sent = [data for way, data in pair.wire if way == "i->r" and data[:4] == child.outbound_spi]
    assert request in sent[-1]  # not encrypted: the inner packet is in the ESP payload as it is
