"""An initiator endpoint and a responder endpoint wired back to back in memory.

After aioquic's ``client_and_server`` and h11's ``ConnectionPair``: both
sides are real :class:`~responder.core.endpoint.Endpoint` objects; messages
move between them only when :meth:`Pair.pump` says so, and time moves only
when a test sets ``now``.  Randomness is seeded, so every run is byte for
byte the same.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from ipaddress import ip_address
from typing import TypeVar

import attrs

from responder.core.config import (
    Config,
    EspProposal,
    Identity,
    IdPattern,
    IkeProposal,
    PeerConfig,
    Secret,
    TrafficSelectorPolicy,
)
from responder.core.dispatch import RESPONDERS
from responder.core.endpoint import Endpoint
from responder.core.enums import ExchangeType
from responder.core.events import Event
from responder.core.ike_sa import IkeSa, IkeSaState, ResponderFactory
from responder.core.initiator import ChildRequest, InitiatorSettings
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.messages import Header, Message, encode_payloads
from responder.core.path import Outgoing, Path, Transport
from responder.core.payloads import Payload, TrafficSelector
from responder.core.selectors import to_selector
from responder.core.sk_payload import SkProtection, protect_bytes, sk_protections, unprotect

E = TypeVar("E")

PSK = Secret.parse("correct horse battery staple")
INITIATOR_ID = Identity.parse("alice@example.org")
RESPONDER_ID = Identity.parse("@responder.example.org")


def seeded(seed: int) -> Callable[[int], bytes]:
    """Deterministic ``random_bytes`` for tests (never for production)."""
    return random.Random(seed).randbytes


def reverse(path: Path) -> Path:
    """The same path seen from the other end."""
    return Path(
        path.transport,
        path.remote_address,
        path.remote_port,
        path.local_address,
        path.local_port,
        path.connection,
    )


def any_selectors() -> tuple[TrafficSelector, ...]:
    return (to_selector(TrafficSelectorPolicy.any(4)),)


def child_request(esp: str = "aes256gcm16", **kwargs: object) -> ChildRequest:
    return ChildRequest((EspProposal.parse(esp),), any_selectors(), any_selectors(), **kwargs)  # type: ignore[arg-type]


def responder_config(ike: str, **kwargs: object) -> Config:
    """A responder that knows one peer, alice@example.org, with :data:`PSK`."""
    peers = kwargs.pop(
        "peers", (PeerConfig("alice", IdPattern.parse("alice@example.org"), PSK, local_id=RESPONDER_ID),)
    )
    return Config(ike_proposals=(IkeProposal.parse(ike),), peers=peers, **kwargs)  # type: ignore[arg-type]


def initiator_settings(ike: str, child: ChildRequest | None = None, **kwargs: object) -> InitiatorSettings:
    proposals = tuple(IkeProposal.parse(p) for p in ike.split(","))
    local_id, psk = kwargs.pop("local_id", INITIATOR_ID), kwargs.pop("psk", PSK)
    return InitiatorSettings(proposals, local_id, psk, child=child, **kwargs)  # type: ignore[arg-type]


def sk_keys(sa: IkeSa) -> tuple[SkProtection, SkProtection]:
    """The SK protections of (the original initiator's, the original responder's) messages of ``sa``."""
    assert sa.keys is not None and sa.encryption is not None, "the SA has no keys yet"
    return sk_protections(sa.keys, sa.encryption, sa.integrity, is_original_initiator=True)


def protect(protection: SkProtection, header: Header, payloads: tuple[Payload, ...], iv: bytes) -> bytes:
    """A whole protected message: ``payloads`` encoded inside an SK payload (RFC 7296 §3.14)."""
    first_inner, inner = encode_payloads(payloads)
    return protect_bytes(protection, header, first_inner, inner, iv)


def forge(
    sa: IkeSa,
    exchange: ExchangeType,
    payloads: tuple[Payload, ...],
    *,
    message_id: int,
    from_initiator: bool = True,
    is_response: bool = False,
) -> bytes:
    """A message of ``sa`` as one end would protect it (with a seeded IV), for tests that go off script."""
    header = Header(
        spi_i=sa.spi_i,
        spi_r=sa.spi_r,
        exchange_type=exchange,
        is_initiator=from_initiator,
        is_response=is_response,
        message_id=message_id,
    )
    protection = sk_keys(sa)[0 if from_initiator else 1]
    iv = seeded(message_id)(protection.encryption.iv_size)
    return protect(protection, header, payloads, iv)


def read(sa: IkeSa, data: bytes, *, from_initiator: bool) -> Message:
    """Open a protected message of ``sa`` sent by the original initiator (or responder)."""
    return unprotect(sk_keys(sa)[0 if from_initiator else 1], data)[0]


@attrs.define(eq=False)
class Pair:
    """Two endpoints and the wire between them."""

    responder: Endpoint
    initiator: Endpoint
    path: Path  # as the initiator sees it
    now: float = 0.0
    wall: float | None = None  #: the wall clock both ends see (certificate validity), None: unknown
    responder_events: list[Event] = attrs.Factory(list)
    initiator_events: list[Event] = attrs.Factory(list)
    wire: list[tuple[str, bytes]] = attrs.Factory(list)  # ("i->r" | "r->i", message) in order

    @classmethod
    def create(
        cls,
        config: Config,
        *,
        transport: Transport = Transport.UDP,
        seed: int = 1,
        initiator_config: Config | None = None,
        responders: Mapping[tuple[IkeSaState, ExchangeType], ResponderFactory] = RESPONDERS,
    ) -> Pair:
        """``responders`` replaces the responder's legality table (tests add exchanges of their own)."""
        path = Path(transport, ip_address("192.0.2.1"), 500, ip_address("192.0.2.2"), 500, None)
        if transport is not Transport.UDP:
            path = Path(transport, ip_address("192.0.2.1"), 40001, ip_address("192.0.2.2"), 4500, 1)
        responder = Endpoint(config, seeded(seed), KeyExchangeFactory(seeded(seed + 100)), responders)
        initiator = Endpoint(
            initiator_config or Config(), seeded(seed + 200), KeyExchangeFactory(seeded(seed + 300))
        )
        return cls(responder, initiator, path)

    def initiate(self, settings: InitiatorSettings) -> IkeSa:
        sa = self.initiator.initiate(settings, self.path, self.now, wall=self.wall)
        return sa

    def deliver(
        self, outgoing: list[Outgoing], to_responder: bool, drop: Callable[[bytes], bool] | None
    ) -> int:
        moved = 0
        for message in outgoing:
            self.wire.append(("i->r" if to_responder else "r->i", message.data))
            if drop is not None and drop(message.data):
                continue
            target = self.responder if to_responder else self.initiator
            if message.esp:  # ESP (RFC 4303) goes to the data plane
                target.receive_esp(message.data, reverse(message.path), self.now)
            else:
                target.receive(message.data, reverse(message.path), self.now, wall=self.wall)
            moved += 1
        return moved

    def pump(self, *, drop: Callable[[bytes], bool] | None = None, rounds: int = 20) -> None:
        """Move messages both ways until the wire is quiet; collect events."""
        for _ in range(rounds):
            moved = self.deliver(self.initiator.messages_to_send(), True, drop)
            moved += self.deliver(self.responder.messages_to_send(), False, drop)
            self.drain()
            if not moved:
                return
        raise AssertionError("endpoints kept talking")

    def to_responder(self, data: bytes) -> list[bytes]:
        """Hand ``data`` to the responder as if the initiator sent it; return what it sends back."""
        self.responder.receive(data, reverse(self.path), self.now, wall=self.wall)
        self.drain()
        return [out.data for out in self.responder.messages_to_send()]

    def esp_to_responder(self, data: bytes) -> list[bytes]:
        """Hand an ESP packet to the responder as if the initiator sent it; return what it sends back."""
        self.responder.receive_esp(data, reverse(self.path), self.now)
        self.drain()
        return [out.data for out in self.responder.messages_to_send()]

    def to_initiator(self, data: bytes) -> list[bytes]:
        """Hand ``data`` to the initiator as if the responder sent it; return what it sends back."""
        self.initiator.receive(data, self.path, self.now, wall=self.wall)
        self.drain()
        return [out.data for out in self.initiator.messages_to_send()]

    def drain(self) -> None:
        while (event := self.responder.next_event()) is not None:
            self.responder_events.append(event)
        while (event := self.initiator.next_event()) is not None:
            self.initiator_events.append(event)

    def events(self, kind: type[E], side: str = "responder") -> list[E]:
        source = self.responder_events if side == "responder" else self.initiator_events
        return [e for e in source if isinstance(e, kind)]
