"""An IKE SA kept for seven simulated days through the real engine (RFC 7296 §1.3, §2.4, §2.8, §2.25).

The responder is the real :class:`~responder.server.engine.Engine` behind the RFC 9329 TCP transport
over memory streams; the initiator is :class:`responder.client.Client` (the core's initiator role).
Trio's ``MockClock`` (autojump) runs the days in seconds of wall time; randomness is seeded and the
key exchanges are real X25519.  Both ends rekey the IKE SA and the Child SA on their own timers
(minutes apart, with jitter), and every few simulated hours both ends are made to rekey the same SA
at the same instant, so §2.8.1 and §2.8.2 collisions happen on purpose as well as by chance.

After every simulated hour the test checks that the two ends agree: one IKE SA with the same SPIs,
the same Child SA pair (each end's inbound SPI is the other's outbound, the keys identical), Message
IDs in step both ways and nothing of ours pending.  At the end the initiator deletes the IKE SA and
the engine's tasks and tables are back where they were before the SA existed.
"""

from __future__ import annotations

import time

import pytest
import trio
import trio.testing

from responder.client import Client, establish_on_stream
from responder.core.config import (
    ChildConfig,
    Config,
    EspProposal,
    IdPattern,
    Lifetime,
    PeerConfig,
)
from responder.core.events import (
    ChildSaEstablished,
    IkeSaClosed,
    IkeSaEstablished,
    IkeSaRekeyed,
    RequestAnswered,
    ResponseReceived,
)
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.path import Path, Transport
from responder.server.engine import Engine
from tests.fakes.pair import PSK, RESPONDER_ID, child_request, initiator_settings, responder_config, seeded
from tests.server.fakes import LOCAL, PEER, serving

SUITE = "aes256gcm16-prfsha256-x25519"
DAY = 86400.0
HOUR = 3600.0


class Recorder:
    """An engine observer that keeps every event."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def observe(self, event: object, path: Path | None) -> None:
        self.events.append(event)

    def count(self, kind: type) -> int:
        return sum(isinstance(e, kind) for e in self.events)


def tasks_alive() -> int:
    """Every task under the root, counted through the nursery tree."""

    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(child) for nursery in task.child_nurseries for child in nursery.child_tasks)

    return walk(trio.lowlevel.current_root_task())


def our_spi(client: Client) -> bytes:
    """The responder's own SPI of the client's IKE SA: SPIr, or SPIi of an SA the responder rekeyed
    (the rekey's initiator is the new SA's original initiator, RFC 7296 §1.3.2)."""
    return client.sa.spi_r if client.sa.is_original_initiator else client.sa.spi_i


def table_sizes(engine: Engine) -> dict[str, int]:
    """How many entries each of the core's tables holds (the endpoint's, its connection rules')."""
    endpoint = engine._endpoint
    return {
        "sas": len(endpoint._sas),
        "half_open": len(endpoint._half_open),
        "init_digests": len(endpoint._init_digests),
        "digest_of": len(endpoint._digest_of),
        "esp": len(endpoint._esp),
        "deadlines": len(endpoint._deadlines),
        "by_identity": len(endpoint._by_identity),
        "connections": len(endpoint._connections),
        "sa_tasks": engine.stats.sa_tasks,
    }


def assert_in_step(engine: Engine, client: Client) -> IkeSa:
    """One IKE SA on each side, the same SPIs and Child SA pair, Message IDs in step, nothing pending."""
    ours = engine.sa(our_spi(client))
    assert ours is not None, "the responder lost the IKE SA the client holds"
    assert ours.state is IkeSaState.ESTABLISHED and client.sa.state is IkeSaState.ESTABLISHED
    assert ours.spis == client.sa.spis
    assert engine.stats.ike_sas == 1
    [mine] = ours.children.values()
    [theirs] = client.sa.children.values()
    assert (mine.inbound_spi, mine.outbound_spi) == (theirs.outbound_spi, theirs.inbound_spi)
    assert mine.params.keys == theirs.params.keys
    ours_layer, their_layer = ours.layer, client.sa.layer
    assert not ours_layer.pending and not their_layer.pending
    assert ours_layer.next_expected == their_layer.next_send_id
    assert their_layer.next_expected == ours_layer.next_send_id
    return ours


@pytest.mark.parametrize("esp", ["aes256gcm16", "aes256gcm16-x25519"], ids=["no-pfs", "pfs"])
async def test_an_sa_lives_seven_days_of_rekeys_from_both_ends(
    esp: str, autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """RFC 7296 §1.3.2, §1.3.3, §2.8, §2.8.1, §2.8.2, §2.25 (rows B22; issue 11): seven days of
    rekeys every few minutes from both ends, with and without PFS, collisions included."""
    wall = time.perf_counter()
    child = ChildConfig("net", esp_proposals=(EspProposal.parse(esp),), lifetime=Lifetime(240.0, 300.0, 40.0))
    peer = PeerConfig(
        "alice",
        IdPattern.parse("alice@example.org"),
        PSK,
        local_id=RESPONDER_ID,
        children=(child,),
        ike_lifetime=Lifetime(600.0, 700.0, 60.0),
    )
    recorder = Recorder()
    engine = Engine(responder_config(SUITE, peers=(peer,)), seeded(1), observers=(recorder,))
    settings = initiator_settings(
        SUITE,
        child_request(esp, lifetime=Lifetime(270.0, 330.0, 45.0)),
        ike_lifetime=Lifetime(660.0, 760.0, 90.0),
    )
    async with serving(engine) as server:
        await trio.testing.wait_all_tasks_blocked()
        tasks_before, tables_before = tasks_alive(), table_sizes(engine)
        stream = await server.listener.connect(PEER, 50000)
        path = Path(Transport.TCP, PEER, 50000, *LOCAL, 1)
        client = await establish_on_stream(stream, settings, Config(), path=path, random_bytes=seeded(2))
        assert client.established, client.reason
        spis_seen = {client.sa.spis}
        pairs_seen = {next(iter(client.sa.children))}
        hours = int(7 * DAY / HOUR)
        for hour in range(hours):
            if hour % 6 == 3:  # both ends rekey the Child SA at the same instant (§2.8.1)
                ours = engine.sa(our_spi(client))
                assert ours is not None
                [mine] = ours.children
                engine.request_rekey(ours.local_spi, mine)
                await client.rekey(next(iter(client.sa.children)))
            elif hour % 6 == 5:  # ... and the IKE SA (§2.8.2)
                engine.request_rekey(our_spi(client))
                await client.rekey()
            await client.process(HOUR)
            assert client.established, client.reason
            assert_in_step(engine, client)
            spis_seen.add(client.sa.spis)
            pairs_seen.add(next(iter(client.sa.children)))
        ike_rekeys = recorder.count(IkeSaRekeyed)
        child_rekeys = sum(
            isinstance(e, ChildSaEstablished) and e.rekeyed is not None for e in recorder.events
        )
        collisions = sum(
            isinstance(e, ResponseReceived | RequestAnswered) and "collision" in e.result
            for e in recorder.events
        )
        # Rekeys from both ends: the responder started some and answered others.
        started = [e for e in recorder.events if isinstance(e, ResponseReceived) and "rekeyed" in e.result]
        answered = [e for e in recorder.events if isinstance(e, RequestAnswered) and "rekeyed" in e.result]
        assert ike_rekeys >= 7 * DAY / 760 and child_rekeys >= 7 * DAY / 330
        assert started and answered and collisions >= hours // 6
        assert len(spis_seen) == len(pairs_seen) == hours + 1  # new SPIs every hour, never reused
        rekeyed = [e for e in recorder.events if isinstance(e, ChildSaEstablished) and e.rekeyed is not None]
        assert all(("x25519" in e.proposal) == esp.endswith("x25519") for e in rekeyed)  # PFS, or not
        # One IKE SA at a time was ever established besides its successors: none leaked.
        established = recorder.count(IkeSaEstablished)
        assert established == recorder.count(IkeSaClosed) + 1

        assert await client.delete()
        await client.aclose()
        await trio.testing.wait_all_tasks_blocked()
        stats = engine.stats
        assert (stats.ike_sas, stats.half_open, stats.sa_tasks, stats.connections) == (0, 0, 0, 0)
        assert table_sizes(engine) == tables_before
        assert tasks_alive() == tasks_before
    with capsys.disabled():
        print(
            f"\n7 simulated days ({esp}): {ike_rekeys} IKE SA rekeys, {child_rekeys} Child SA rekeys, "
            f"{collisions} collision outcomes, wall time {time.perf_counter() - wall:.1f} s"
        )
