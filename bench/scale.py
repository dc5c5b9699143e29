"""Benchmark: the responder's CPU for one new handshake, with 1,000 and with 50,000 IKE SAs held.

Run: ``python bench/scale.py [--held 1000,50000] [--batches B] [--per-batch K] [--seed N]``.

One responder :class:`~responder.core.endpoint.Endpoint` per level is filled, through real
IKE_SA_INIT + IKE_AUTH handshakes (x25519, AES-GCM, PSK, one Child SA each), until it holds
that many established IKE SAs; the initiator side is a fresh ``Endpoint`` every 1,000
handshakes, so only the responder grows.  Then new handshakes are measured on every level in
turn, batch by batch, so that all levels see the same machine noise:

* timed: the responder's own work, ``receive()`` of the IKE_SA_INIT and IKE_AUTH requests and
  the taking of what it queued (messages, events, new SAs), in process CPU time;
* not timed: the initiator's side, and an INFORMATIONAL Delete of the measured SA afterwards,
  which keeps the number held where it was.

It prints, per level, the median over batches of the CPU per handshake, how much the
process's RSS grew per SA while filling, and the ratio of each level to the first: the
baseline measured in the same run.  The core keeps no per-message work that grows with the
SAs held (half-open SAs are counted as they change state, deadlines sit in a heap, SAs are
found by SPI), so the ratio should stay within 10% of 1.00.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import time
from ipaddress import ip_address

import attrs

from responder.core.config import (
    ChildConfig,
    Config,
    EspProposal,
    Identity,
    IdPattern,
    IkeProposal,
    Limits,
    PeerConfig,
    Secret,
    TrafficSelectorPolicy,
)
from responder.core.endpoint import Endpoint
from responder.core.ike_sa import IkeSaState
from responder.core.initiator import ChildRequest, InitiatorSettings
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.path import Path, Transport
from responder.core.selectors import to_selector

IKE, ESP = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
PSK = Secret.parse("benchmark shared key")
INITIATOR_ID = Identity.parse("@initiator.example")
RESPONDER_ID = Identity.parse("@responder.example")
INITIATORS_EVERY = 1000  #: handshakes per initiator Endpoint while filling


def paths(number: int) -> tuple[Path, Path]:
    """(the initiator's view, the responder's view) of a UDP path from a distinct client address."""
    client = f"198.18.{number // 250 % 250}.{number % 250 + 1}"
    initiator = Path(Transport.UDP, ip_address(client), 4500, ip_address("192.0.2.2"), 4500)
    responder = Path(Transport.UDP, ip_address("192.0.2.2"), 4500, ip_address(client), 4500)
    return initiator, responder


def responder_config(held: int) -> Config:
    any4 = TrafficSelectorPolicy.any(4)
    child = ChildConfig("bench", local_ts=(any4,), remote_ts=(any4,), esp_proposals=(EspProposal.parse(ESP),))
    peer = PeerConfig("clients", IdPattern.any(), PSK, local_id=RESPONDER_ID, children=(child,))
    limits = Limits(ike_sa_max=held + 10_000)  # room for every SA held; half-open limits as default
    return Config(ike_proposals=(IkeProposal.parse(IKE),), peers=(peer,), limits=limits)


def rss() -> int:
    """The process's resident set size in octets (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def settings() -> InitiatorSettings:
    any4 = (to_selector(TrafficSelectorPolicy.any(4)),)
    child = ChildRequest((EspProposal.parse(ESP),), any4, any4)
    return InitiatorSettings((IkeProposal.parse(IKE),), INITIATOR_ID, PSK, child=child)


@attrs.define(eq=False)
class Level:
    """One responder holding ``held`` established IKE SAs, and its measurements."""

    held: int
    seed: int
    responder: Endpoint = attrs.field(init=False)
    initiator: Endpoint = attrs.field(init=False)
    settings: InitiatorSettings = attrs.field(init=False, factory=settings)
    handshakes: int = 0
    bytes_per_sa: float = 0.0
    samples: list[float] = attrs.Factory(list)  #: CPU seconds per handshake, one per batch

    def __attrs_post_init__(self) -> None:
        rng = random.Random(self.seed)
        factory = KeyExchangeFactory(random.Random(rng.random()).randbytes)
        self.responder = Endpoint(responder_config(self.held), rng.randbytes, factory)
        self._new_initiator()

    def _new_initiator(self) -> None:
        rng = random.Random(self.seed * 1_000_003 + self.handshakes)
        factory = KeyExchangeFactory(random.Random(rng.random()).randbytes)
        self.initiator = Endpoint(Config(), rng.randbytes, factory)

    def fill(self) -> None:
        """Establish ``held`` IKE SAs through real handshakes."""
        before = rss()
        for _ in range(self.held):
            if self.handshakes % INITIATORS_EVERY == 0:
                self._new_initiator()
            self.handshake()
        self._new_initiator()  # the last initiator's SAs are not the responder's memory
        gc.collect()
        self.bytes_per_sa = (rss() - before) / self.held
        assert self.responder.ike_sa_count == self.held
        assert all(sa.state is IkeSaState.ESTABLISHED for sa in self.responder.sas)

    def handshake(self) -> tuple[bytes, float]:
        """One IKE_SA_INIT + IKE_AUTH; returns the initiator's SPI and the responder's CPU seconds."""
        number = self.handshakes
        self.handshakes += 1
        initiator_path, responder_path = paths(number)
        sa = self.initiator.initiate(self.settings, initiator_path, 0.0)
        spent = 0.0
        for _ in range(2):
            (request,) = self.initiator.messages_to_send()
            start = time.process_time()
            self.responder.receive(request.data, responder_path, 0.0)
            (response,) = self.responder.messages_to_send()
            while self.responder.next_event() is not None:
                pass
            self.responder.new_sas()
            spent += time.process_time() - start
            self.initiator.receive(response.data, initiator_path, 0.0)
        while self.initiator.next_event() is not None:
            pass
        self.initiator.new_sas()
        assert sa.state is IkeSaState.ESTABLISHED
        return sa.local_spi, spent

    def delete(self, local_spi: bytes) -> None:
        """The initiator deletes the SA (untimed), so the number held stays where it was."""
        number = self.handshakes - 1
        initiator_path, responder_path = paths(number)
        self.initiator.request_delete(local_spi, 0.0)
        (request,) = self.initiator.messages_to_send()
        self.responder.receive(request.data, responder_path, 0.0)
        (response,) = self.responder.messages_to_send()
        self.initiator.receive(response.data, initiator_path, 0.0)
        while self.responder.next_event() is not None:
            pass
        while self.initiator.next_event() is not None:
            pass

    def batch(self, size: int) -> None:
        spent = 0.0
        for _ in range(size):
            spi, cpu = self.handshake()
            spent += cpu
            self.delete(spi)
        self.samples.append(spent / size)
        assert self.responder.ike_sa_count == self.held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held", default="1000,50000", help="comma-separated numbers of IKE SAs held")
    parser.add_argument("--batches", type=int, default=20, help="measured batches per level")
    parser.add_argument("--per-batch", type=int, default=25, help="handshakes per batch")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    levels = [Level(int(n), args.seed + index) for index, n in enumerate(args.held.split(","))]

    print(f"suite: IKE {IKE}, ESP {ESP}, PSK, one Child SA; UDP paths from distinct addresses")
    for level in levels:
        start = time.perf_counter()
        level.fill()
        print(
            f"filled {level.held:>6} established IKE SAs in {time.perf_counter() - start:6.1f} s; "
            f"RSS grew by {level.bytes_per_sa / 1024:5.1f} KiB per SA"
        )
    for _ in range(args.batches):
        for level in levels:
            level.batch(args.per_batch)
    base = statistics.median(levels[0].samples)
    print(f"responder CPU per new handshake, median of {args.batches} batches of {args.per_batch}:")
    for level in levels:
        median = statistics.median(level.samples)
        spread = statistics.quantiles(level.samples, n=4) if len(level.samples) >= 2 else [median] * 3
        print(
            f"  {level.held:>6} held: {median * 1e6:8.1f} us "
            f"(quartiles {spread[0] * 1e6:7.1f}..{spread[2] * 1e6:7.1f})   "
            f"ratio to {levels[0].held}: {median / base:5.3f}"
        )


if __name__ == "__main__":
    main()
