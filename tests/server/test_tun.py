"""The TUN device's pieces that need no privilege (issue 12): which children use it, the routes a
Child SA's remote selectors become, when the route keeper wakes, and the counters in the engine's
stats, the control socket's ``stats`` and ``/metrics``.  The device itself: tests/net/test_tun.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from ipaddress import ip_address, ip_network

import attrs

from responder.core.config import ChildConfig, Config, IdPattern, PeerConfig, Secret, TrafficSelectorPolicy
from responder.core.data_plane import Backend, InnerPacket
from responder.core.echo import echo_request
from responder.core.events import ChildSaDeleted, IkeSaClosed, MessageDropped
from responder.core.selectors import to_selector
from responder.server.connections import ConnectionTable
from responder.server.control import Control
from responder.server.engine import Engine
from responder.server.metrics import render_metrics
from responder.server.settings import ServerSettings
from responder.server.tun import RouteWatch, routes_for, tun_children


def ts(text: str) -> object:
    return to_selector(TrafficSelectorPolicy.parse(text))


def test_routes_cover_each_selector_range_exactly() -> None:
    assert routes_for([ts("10.250.1.1/32")]) == {ip_network("10.250.1.1/32")}  # type: ignore[list-item]
    assert {str(n) for n in routes_for([ts("10.250.1.0-10.250.1.5[udp/53]")])} == {  # type: ignore[list-item]
        "10.250.1.0/30",
        "10.250.1.4/31",
    }
    assert {str(n) for n in routes_for([ts("0.0.0.0/0"), ts("fd00::/64"), ts("fd00::/64")])} == {  # type: ignore[list-item]
        "0.0.0.0/0",
        "fd00::/64",
    }


def test_tun_children_are_named_by_their_key_paths() -> None:
    tun, echo = ChildConfig("office", backend="tun"), ChildConfig("ping")
    peer = PeerConfig("alice", IdPattern.parse("alice@example.org"), Secret.parse("k"), children=(tun, echo))
    lab = (ChildConfig("all", backend="tun"),)
    assert tun_children(Config(peers=(peer,), lab_children=lab)) == ["peers.alice.children.office"]
    with_lab = Config(peers=(peer,), any_id_psk=Secret.parse("k"), lab_children=lab)
    assert tun_children(with_lab) == ["peers.alice.children.office", "lab.children.all"]
    assert tun_children(Config()) == []


def test_the_route_keeper_wakes_when_child_sas_come_or_go() -> None:
    watch = RouteWatch()
    watch.observe(MessageDropped("junk"), None)
    assert not watch.changed.is_set()
    watch.observe(ChildSaDeleted(b"l" * 8, b"i" * 8, b"r" * 8, b"in__", b"out_"), None)
    assert watch.changed.is_set()
    watch.changed = type(watch.changed)()
    watch.observe(IkeSaClosed(b"l" * 8, b"i" * 8, b"r" * 8, "deleted"), None)
    assert watch.changed.is_set()


@attrs.define
class FakeSink:
    """Stands in for the device: keeps what it is given, counts like it."""

    delivered: list[InnerPacket] = attrs.Factory(list)

    def deliver(self, inner: InnerPacket) -> None:
        self.delivered.append(inner)

    def counters(self) -> Mapping[str, int]:
        return {"to_device_packets": len(self.delivered), "out_dropped_no_sa": 2}


async def test_the_counters_show_in_stats_control_and_metrics() -> None:
    engine = Engine(Config())
    assert engine.stats.tun == {}
    engine.attach_backend(Backend.TUN, FakeSink())
    assert dict(engine.stats.tun) == {"to_device_packets": 0, "out_dropped_no_sa": 2}
    control = Control(engine, ConnectionTable(ServerSettings(), earned=engine.earned))
    stats = json.loads(json.dumps(control.stats()))
    assert stats["engine"]["tun"] == {"to_device_packets": 0, "out_dropped_no_sa": 2}
    metrics = render_metrics(control)
    assert 'ikev2_responder_tun_total{counter="out_dropped_no_sa"} 2' in metrics
    # nothing routed without a Child SA: each packet says why
    ping = echo_request(ip_address("10.99.0.1"), ip_address("10.250.1.1"), identifier=1, sequence=1)
    assert engine.send_routed([b"", ping]) == ["not_ip", "no_sa"]
    engine.detach_backend(Backend.TUN)
    assert engine.stats.tun == {}
