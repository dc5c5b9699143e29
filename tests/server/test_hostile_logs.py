"""Issue 15 item 2: what unauthenticated peers can make the responder log is bounded.

10,000 hostile requests reach the engine: IKE_SA_INITs from thousands of UDP
source addresses and on one TCP connection, messages naming SPIs of no SA,
and garbage.  The clock stands still (``mock_clock``), so no rate budget
refills while they arrive: the log must stay under :data:`LOG_BUDGET` octets
however the peers vary their addresses, no line may be longer than
:data:`~responder.server.logs.LOG_LINE_MAX`, and what was held back is counted.
An authenticated IKE SA afterwards is still logged in full.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest
import trio
from trio.testing import MockClock

from responder.core.config import Config
from responder.core.endpoint import Endpoint
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.path import Path, Transport
from responder.server.engine import Engine
from responder.server.logs import LOG_LINE_MAX, clip, spi_list
from tests.fakes.pair import initiator_settings, responder_config, reverse, seeded
from tests.server.test_engine import IKE, RESPONDER, Peer, RecordingObserver, RecordingSink, tcp

HOSTILE = 10_000
LOG_BUDGET = 100 * 1024  #: octets of log for all 10,000 hostile requests (about 400 lines)


def _udp_from(n: int) -> Path:
    return Path(Transport.UDP, RESPONDER, 4500, IPv4Address(0x0A000000 + n), 4500)


def _ike_sa_init() -> bytes:
    """One IKE_SA_INIT request of the core initiator; copies get a fresh SPIi each."""
    initiator = Endpoint(Config(), seeded(7), KeyExchangeFactory(seeded(8)))
    initiator.initiate(initiator_settings(IKE), reverse(tcp(1, 40001)), 0.0)
    [request] = initiator.messages_to_send()
    return request.data


def _hostile(template: bytes) -> Iterator[tuple[bytes, Path]]:
    for n in range(HOSTILE):
        kind = n % 4
        if kind == 0:  # IKE_SA_INIT from a new UDP source each time
            yield os.urandom(8) + template[8:], _udp_from(n)
        elif kind == 1:  # IKE_SA_INIT on one TCP connection
            yield os.urandom(8) + template[8:], tcp(1, 40001)
        elif kind == 2:  # an IKE message for an SA that does not exist
            ike_auth = template[16:18] + bytes([35, 0x08]) + (1).to_bytes(4, "big") + template[24:]
            yield os.urandom(16) + ike_auth, _udp_from(n)
        else:  # garbage, a wrong major version, a truncated header
            yield os.urandom(n % 64) + bytes([0x31]) * (n % 3), _udp_from(n)


def test_clip_and_spi_list() -> None:
    assert clip("x" * 10) == "x" * 10
    long = clip("y" * 5000)
    assert len(long) <= LOG_LINE_MAX and long.endswith(f"... ({5000 - (LOG_LINE_MAX - 40)} more characters)")
    spis = [i.to_bytes(8, "big") for i in range(1000)]
    assert spi_list(spis, 1000) == "0000000000000000, 0000000000000001, 0000000000000002 and 997 more"
    assert spi_list(spis[:2], 2) == "0000000000000000, 0000000000000001"


async def test_log_stays_bounded_for_10000_hostile_requests(
    caplog: pytest.LogCaptureFixture, mock_clock: MockClock
) -> None:
    caplog.set_level(logging.DEBUG + 1, "responder")  # INFO and up, as the CLI logs by default
    observer = RecordingObserver()
    engine = Engine(responder_config(IKE), seeded(1), KeyExchangeFactory(seeded(2)), (observer,))
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        peer = Peer(engine, observer)
        peer.connect(_udp_from(0))
        peer.connect(tcp(1, 40001))
        for message, path in _hostile(_ike_sa_init()):
            engine.receive_ike(message, path)
        assert engine.stats.internal_errors == 0
        assert engine.stats.half_open > 100  # the flood did reach the core
        size = len(caplog.text.encode())
        assert size < LOG_BUDGET, f"{size} octets logged for {HOSTILE} hostile requests"
        assert max(len(record.getMessage()) for record in caplog.records) <= LOG_LINE_MAX
        assert engine.log_lines_held_back > HOSTILE * 0.9
        # An authenticated peer is still logged in full, even with the budgets spent.
        caplog.clear()
        clean = tcp(2, 40002)
        peer.sinks[2] = RecordingSink()
        engine.attach(clean, peer.sinks[2])
        sa = peer.establish(clean)
        assert f"{sa.spi_r.hex()} IKE SA established" in caplog.text
        assert "Child SA established" in caplog.text
        nursery.cancel_scope.cancel()
    print(f"{HOSTILE} hostile requests: {size} octets of log, {engine.log_lines_held_back} lines held back")
