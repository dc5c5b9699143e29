"""The TUN device's pieces that need no privilege (issue 12): which children use it, the routes a
Child SA's remote selectors become, when the route keeper wakes, and the counters in the engine's
stats, the control socket's ``stats`` and ``/metrics``.  The device itself: tests/net/test_tun.py."""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Iterator, Mapping
from ipaddress import IPv4Address, ip_address, ip_network
from pathlib import Path as FilePath

import attrs
import pytest
import trio

from responder.core.config import ChildConfig, Config, IdPattern, PeerConfig, Secret, TrafficSelectorPolicy
from responder.core.data_plane import Backend, InnerPacket
from responder.core.echo import echo_request
from responder.core.enums import ExchangeType
from responder.core.errors import LocalError
from responder.core.events import (
    ChildSaDeleted,
    IkeSaClosed,
    IkeSaEstablished,
    MessageAccepted,
    MessageDropped,
    PathChanged,
)
from responder.core.outbound import OutboundTable
from responder.core.path import Path, Transport
from responder.core.payloads import TrafficSelector
from responder.core.selectors import to_selector
from responder.server import tun
from responder.server.connections import ConnectionTable
from responder.server.control import Control
from responder.server.engine import Engine
from responder.server.metrics import render_metrics
from responder.server.settings import ServerSettings, TunSettings
from responder.server.tun import RouteWatch, TunDevice, routes_for, tun_children


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


def test_a_reversed_selector_becomes_no_route() -> None:
    """Review item 1: a remote selector with start above end (the decoder takes it, a peer's
    CREATE_CHILD_SA answer may carry it) holds no address: no route, named in ``skipped``, and no
    ValueError from ``summarize_address_range`` to end the route keeper."""
    backwards = TrafficSelector(0, 0, 0xFFFF, IPv4Address("10.250.1.9"), IPv4Address("10.250.1.1"))
    skipped: set[TrafficSelector] = set()
    assert routes_for([backwards, ts("10.250.2.1/32")], skipped) == {ip_network("10.250.2.1/32")}  # type: ignore[list-item]
    assert skipped == {backwards}


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


async def test_tun_packets_without_a_device_are_dropped_not_handed_to_the_api() -> None:
    """Review item 4: a TUN-backend Child SA's packets while no device is attached (a reload that
    added the first such child, shutdown) are counted as ``tun_no_device``, never put on the API
    backend's channel, where a program would take them for its own; the API's still go there."""
    engine = Engine(Config())
    ping = echo_request(ip_address("10.250.1.1"), ip_address("10.99.0.1"), identifier=1, sequence=1)
    for backend in (Backend.TUN, Backend.API, Backend.TUN):
        engine.data_plane._queue(InnerPacket(b"l" * 8, b"in__", 4, ping, backend))
    engine.receive_esp_batch((), UDP_PATH)  # what the batch decrypted is handed on after it
    assert engine.stats.tun_no_device == 2
    assert engine.inner_packets.receive_nowait().backend is Backend.API
    with pytest.raises(trio.WouldBlock):
        engine.inner_packets.receive_nowait()
    sink = FakeSink()
    engine.attach_backend(Backend.TUN, sink)
    engine.data_plane._queue(InnerPacket(b"l" * 8, b"in__", 4, ping, Backend.TUN))
    engine.receive_esp_batch((), UDP_PATH)
    assert [inner.payload for inner in sink.delivered] == [ping] and engine.stats.tun_no_device == 2
    assert "ikev2_responder_tun_no_device_dropped_total 2" in render_metrics(
        Control(engine, ConnectionTable(ServerSettings(), earned=engine.earned))
    )


# --- the device's keeper and reader, without a device (review items 1, 2, 3, 8) ---------------------

UDP_PATH = Path(Transport.UDP, IPv4Address("192.0.2.1"), 500, IPv4Address("192.0.2.7"), 500)


@attrs.define
class Peer:
    path: Path


@attrs.define
class FakeEngine:
    """What the route keeper reads of the engine: the TUN backend's selectors and the live IKE SAs."""

    table: OutboundTable = attrs.Factory(OutboundTable)
    peers: list[str] = attrs.Factory(list)
    failures: int = 0  #: calls of remote_selectors that raise, first
    inner_drops: dict[str, int] = attrs.Factory(dict)

    @property
    def data_plane(self) -> FakeEngine:
        return self

    @property
    def outbound(self) -> FakeEngine:
        return self

    def remote_selectors(self) -> Iterator[TrafficSelector]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("a bug in the keeper's input")
        return self.table.remote_selectors()

    def send_routed(self, packets: list[bytes]) -> list[str | None]:
        return [None for _ in packets]

    def sas(self) -> list[Peer]:
        return [Peer(attrs.evolve(UDP_PATH, remote_address=ip_address(peer))) for peer in self.peers]


@attrs.define(eq=False)
class RecordingTun(TunDevice):
    """A device whose ``ip`` commands are recorded (and all work) and whose reads are scripted."""

    calls: list[str] = attrs.Factory(list)
    reads: int = 0

    async def _ip(self, *arguments: str, check: bool = True) -> str | None:
        self.calls.append(" ".join(arguments))
        return None

    def _read(self) -> bytes:
        self.reads += 1
        raise OSError(errno.EBADFD, "File descriptor in bad state")


def device(engine: FakeEngine) -> RecordingTun:
    return RecordingTun(TunSettings(), engine, RouteWatch())  # type: ignore[arg-type]


async def test_the_route_keeper_outlives_a_failure_and_a_reversed_selector(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Review item 1: whatever fails in one round is logged and counted; the next round runs."""
    engine = FakeEngine(failures=1)
    backwards = TrafficSelector(0, 0, 0xFFFF, IPv4Address("10.250.1.9"), IPv4Address("10.250.1.1"))
    engine.table.add(b"AAAA", [ts("10.99.0.0/24")], [backwards, ts("10.250.2.1/32")])  # type: ignore[list-item]
    tun_device = device(engine)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tun_device._keep_routes)
        await trio.testing.wait_all_tasks_blocked()
        assert tun_device.counters()["route_errors"] == 1 and tun_device.routes == frozenset()
        tun_device.watch.changed.set()
        await trio.testing.wait_all_tasks_blocked()
        tun_device.watch.changed.set()  # a second round: the reversed selector is not logged again
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert tun_device.routes == {"10.250.2.1/32"}
    assert tun_device.calls == ["route add 10.250.2.1/32 dev ikev2r0"]
    assert "keeping the routes failed" in caplog.text
    assert caplog.text.count("10.250.1.9-10.250.1.1: its range is empty") == 1


async def test_a_route_that_comes_to_hold_a_peer_is_taken_back_until_the_peer_leaves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Review item 2: the outer addresses are checked on every round, not only when a route is
    first added: a peer arriving inside a routed prefix takes that route away (its IKE and ESP
    would go into the device), and it comes back once the peer is gone."""
    engine = FakeEngine()
    engine.table.add(b"AAAA", [ts("10.99.0.0/24")], [ts("10.250.0.0/16")])  # type: ignore[list-item]
    tun_device = device(engine)
    await tun_device.sync_routes()
    assert tun_device.routes == {"10.250.0.0/16"}
    assert tun_device.watch.routes_to(ip_address("10.250.9.9"))
    engine.peers.append("10.250.9.9")
    await tun_device.sync_routes()
    await tun_device.sync_routes()
    assert tun_device.routes == frozenset()
    assert not tun_device.watch.routes_to(ip_address("10.250.9.9"))
    assert caplog.text.count("no route 10.250.0.0/16 into it: it holds 10.250.9.9") == 1
    engine.peers.clear()
    await tun_device.sync_routes()
    assert tun_device.routes == {"10.250.0.0/16"}
    assert tun_device.calls == [
        "route add 10.250.0.0/16 dev ikev2r0",
        "route del 10.250.0.0/16 dev ikev2r0",
        "route add 10.250.0.0/16 dev ikev2r0",
    ]


def test_the_keeper_wakes_when_a_peer_may_have_moved_into_a_route() -> None:
    """Review item 2: an IKE SA established, a path changed, or an IKE_SA_INIT from inside a
    routed prefix wakes the keeper; an IKE_SA_INIT from elsewhere does not."""
    ids = (b"l" * 8, b"i" * 8, b"r" * 8)
    init = MessageAccepted(*ids, ExchangeType.IKE_SA_INIT, 0, False)
    inside = attrs.evolve(UDP_PATH, remote_address=ip_address("10.250.9.9"))
    watch = RouteWatch()
    watch.route([ip_network("10.250.0.0/16"), ip_network("fd00::/64")])
    for event, path, wakes in [
        (init, UDP_PATH, False),
        (MessageAccepted(*ids, ExchangeType.INFORMATIONAL, 2, False), inside, False),
        (init, inside, True),
        (PathChanged(*ids, inside, UDP_PATH), inside, True),
        (IkeSaEstablished(*ids, "a", "b", "p", "enc", None, None), UDP_PATH, True),  # type: ignore[arg-type]
    ]:
        watch.changed = trio.Event()
        watch.observe(event, path)
        assert watch.changed.is_set() is wakes, event
    assert watch.routes_to(ip_address("fd00::1")) and not watch.routes_to(ip_address("fd01::1"))


async def test_a_read_error_stops_the_reader_instead_of_spinning(caplog: pytest.LogCaptureFixture) -> None:
    """Review item 3: after ``ip link del`` the descriptor polls readable and every read fails
    (EBADFD): one read, one log line, and the reader ends (here on a pipe that stays readable)."""
    tun_device = device(FakeEngine())
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    try:
        os.write(write_end, b"x")
        tun_device._fd = read_end
        with trio.fail_after(2):
            await tun_device._read_loop()
    finally:
        os.close(read_end)
        os.close(write_end)
    assert tun_device.reads == 1
    assert tun_device.counters()["from_device_errors"] == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "no more packets are read" in errors[0].getMessage()


async def test_an_ip_command_that_hangs_is_killed(
    tmp_path: FilePath, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Review item 8: each ``ip`` command has IP_TIMEOUT seconds; then it fails with a clear line
    (a LocalError at start, the error text later)."""
    fake = tmp_path / "ip"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(tun, "IP_TIMEOUT", 0.2)
    tun_device = TunDevice(TunSettings(), FakeEngine(), RouteWatch())  # type: ignore[arg-type]
    with trio.fail_after(5):
        text = await tun_device._ip("route", "add", "10.250.0.0/16", "dev", "ikev2r0", check=False)
        assert text == "'ip route add 10.250.0.0/16 dev ikev2r0' took more than 0.2 s and was killed"
        with pytest.raises(LocalError, match=r"'ip link set dev ikev2r0 up' took more than 0\.2 s"):
            await tun_device._ip("link", "set", "dev", "ikev2r0", "up")
    assert "took more than 0.2 s and was killed" in caplog.text
