"""Benchmark: what 1,000 idle IKE SAs hold in the responder before and after a full rekey cycle.

Run: ``python bench/rekey.py [--sas N] [--cycles C] [--seed N]``.

One responder :class:`~responder.core.endpoint.Endpoint` establishes ``--sas`` IKE SAs (x25519,
AES-GCM, PSK, one Child SA each) with one initiator ``Endpoint``, in memory.  Then, ``--cycles``
times, the responder rekeys every Child SA and every IKE SA itself (CREATE_CHILD_SA with REKEY_SA,
then CREATE_CHILD_SA for the IKE SA, each followed by the Delete of what it replaced), answered
by the initiator.  It prints:

* the memory the responder's own objects hold per SA, before and after each cycle: the octets
  reachable from the responder ``Endpoint`` (``sys.getsizeof`` over ``gc.get_referents``,
  not counting what an empty ``Endpoint`` with the same configuration already reaches: the
  configuration, the code, the classes), and the ratio after/before, the baseline of the same
  run.  A rekey replaces every SPI, key, nonce, message layer and Child SA of an SA, so a ratio
  near 1.00 says nothing of the old ones stays behind;
* tracemalloc's view of the whole process (both ends) as a cross-check, per SA pair;
* the responder's CPU per SA for one full cycle (its ``receive()`` and ``handle_timer()``-free
  ``start()`` calls, and the taking of what it queued), and the ratio to its CPU per SA for the
  handshake that made the SA, measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
import tracemalloc
from collections.abc import Iterator
from ipaddress import ip_address

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
from responder.core.exchanges.create_child_sa import RekeyChildSa
from responder.core.exchanges.rekey_ike import RekeyIkeSa
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.initiator import ChildRequest, InitiatorSettings
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.path import Path, Transport
from responder.core.selectors import to_selector

IKE, ESP = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
PSK = Secret.parse("benchmark shared key")


def paths(number: int) -> tuple[Path, Path]:
    """(the initiator's view, the responder's view) of a UDP path from a distinct client address."""
    client = ip_address(f"198.18.{number // 250 % 250}.{number % 250 + 1}")
    server = ip_address("192.0.2.2")
    return Path(Transport.UDP, client, 4500, server, 4500), Path(Transport.UDP, server, 4500, client, 4500)


def responder_config(sas: int) -> Config:
    any4 = TrafficSelectorPolicy.any(4)
    child = ChildConfig("bench", local_ts=(any4,), remote_ts=(any4,), esp_proposals=(EspProposal.parse(ESP),))
    peer = PeerConfig(
        "clients", IdPattern.any(), PSK, local_id=Identity.parse("@responder.example"), children=(child,)
    )
    return Config(ike_proposals=(IkeProposal.parse(IKE),), peers=(peer,), limits=Limits(ike_sa_max=sas + 100))


def initiator_settings() -> InitiatorSettings:
    any4 = (to_selector(TrafficSelectorPolicy.any(4)),)
    child = ChildRequest((EspProposal.parse(ESP),), any4, any4)
    return InitiatorSettings(
        (IkeProposal.parse(IKE),), Identity.parse("@initiator.example"), PSK, child=child
    )


def reachable(root: object, skip: set[int]) -> Iterator[object]:
    """Every object reachable from ``root`` through ``gc.get_referents``, except those in ``skip``
    (and modules, classes and functions: code, not state)."""
    seen = set(skip)
    stack = [root]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type | type(sys) | type(reachable)):
            continue
        seen.add(id(item))
        yield item
        stack.extend(gc.get_referents(item))


def held_octets(endpoint: Endpoint, baseline: set[int]) -> int:
    return sum(sys.getsizeof(item) for item in reachable(endpoint, baseline))


class Bench:
    def __init__(self, sas: int, seed: int) -> None:
        rng = random.Random(seed)
        config = responder_config(sas)
        self.responder = Endpoint(
            config, rng.randbytes, KeyExchangeFactory(random.Random(rng.random()).randbytes)
        )
        self.initiator = Endpoint(
            Config(), rng.randbytes, KeyExchangeFactory(random.Random(rng.random()).randbytes)
        )
        empty = Endpoint(config, rng.randbytes, KeyExchangeFactory(rng.randbytes))
        self.baseline = {id(item) for item in reachable(empty, set())} - {id(empty)}
        self.baseline_keep = empty  # the ids above stay valid while it lives
        self.sas = sas
        self.by_address: dict[object, Path] = {}
        self.cpu = 0.0

    def _to_responder(self) -> int:
        moved = 0
        for message in self.initiator.messages_to_send():
            start = time.process_time()
            self.responder.receive(message.data, self._reverse(message.path), 0.0)
            self.cpu += time.process_time() - start
            moved += 1
        return moved

    def _to_initiator(self) -> int:
        start = time.process_time()
        out = self.responder.messages_to_send()
        while self.responder.next_event() is not None:
            pass
        self.responder.new_sas()
        self.cpu += time.process_time() - start
        for message in out:
            self.initiator.receive(message.data, self._reverse(message.path), 0.0)
        while self.initiator.next_event() is not None:
            pass
        self.initiator.new_sas()
        return len(out)

    @staticmethod
    def _reverse(path: Path) -> Path:
        return Path(
            path.transport, path.remote_address, path.remote_port, path.local_address, path.local_port
        )

    def pump(self) -> None:
        while self._to_responder() + self._to_initiator():
            pass

    def establish(self) -> float:
        settings = initiator_settings()
        self.cpu = 0.0
        for number in range(self.sas):
            initiator_path, _ = paths(number)
            self.initiator.initiate(settings, initiator_path, 0.0)
            self.pump()
        assert self.responder.ike_sa_count == self.sas
        assert all(sa.state is IkeSaState.ESTABLISHED and len(sa.children) == 1 for sa in self.responder.sas)
        return self.cpu / self.sas

    def rekey_all(self) -> float:
        """The responder rekeys every Child SA, then every IKE SA; returns its CPU per SA."""
        self.cpu = 0.0
        before = {sa.local_spi for sa in self.responder.sas}
        for sa in list(self.responder.sas):
            [child] = sa.children
            self._start(sa, RekeyChildSa.of(child))
            self._start(sa, RekeyIkeSa())
        after = list(self.responder.sas)
        assert len(after) == self.sas and not before & {sa.local_spi for sa in after}
        assert all(sa.state is IkeSaState.ESTABLISHED and len(sa.children) == 1 for sa in after)
        assert self.initiator.ike_sa_count == self.sas
        return self.cpu / self.sas

    def _start(self, sa: IkeSa, exchange: RekeyChildSa | RekeyIkeSa) -> None:
        start = time.process_time()
        self.responder.start(sa.local_spi, exchange, 0.0)
        self.cpu += time.process_time() - start
        self.pump()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sas", type=int, default=1000, help="IKE SAs held (each with one Child SA)")
    parser.add_argument("--cycles", type=int, default=2, help="full rekey cycles of every SA")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    tracemalloc.start()
    bench = Bench(args.sas, args.seed)
    gc.collect()
    traced_empty = tracemalloc.get_traced_memory()[0]
    handshake_cpu = bench.establish()
    gc.collect()
    first = held_octets(bench.responder, bench.baseline)
    traced_first = tracemalloc.get_traced_memory()[0] - traced_empty
    print(f"suite: IKE {IKE}, ESP {ESP}, PSK; {args.sas} idle IKE SAs with one Child SA each")
    print(
        f"before any rekey: responder holds {first / args.sas / 1024:6.2f} KiB per SA; "
        f"tracemalloc (both ends) {traced_first / args.sas / 1024:6.2f} KiB per SA pair"
    )
    print(f"responder CPU per handshake (IKE_SA_INIT + IKE_AUTH): {handshake_cpu * 1e6:8.1f} us (baseline)")
    for cycle in range(1, args.cycles + 1):
        rekey_cpu = bench.rekey_all()
        gc.collect()
        held = held_octets(bench.responder, bench.baseline)
        traced = tracemalloc.get_traced_memory()[0] - traced_empty
        print(
            f"after rekey cycle {cycle}: responder holds {held / args.sas / 1024:6.2f} KiB per SA "
            f"(x{held / first:5.3f} of before); tracemalloc {traced / args.sas / 1024:6.2f} KiB per SA pair "
            f"(x{traced / traced_first:5.3f}); responder CPU per SA for the cycle "
            f"{rekey_cpu * 1e6:8.1f} us (x{rekey_cpu / handshake_cpu:4.2f} of a handshake)"
        )


if __name__ == "__main__":
    main()
