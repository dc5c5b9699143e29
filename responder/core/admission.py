"""Who may start IKE SAs, and how often we answer the unauthenticated (RFC 7296 §2.6, §2.21.4).

Strategy: nothing about an IKE_SA_INIT request is authenticated, so what a
peer can make us hold and send before it has proven anything is bounded here,
for the :class:`~responder.core.endpoint.Endpoint` to consult before it
answers:

* :class:`HalfOpenBudgets` counts half-open IKE SAs (IKE_SA_INIT answered,
  IKE_AUTH not yet) in budgets kept **separately for streams (TCP, TLS) and
  datagrams (UDP)**, so that a flood over one never starves the other:
  ``half_open_max`` per kind, ``half_open_per_source`` per source address (an
  IPv6 source counts by its ``half_open_ipv6_prefix``, since a host has a
  whole /64 to send from), and ``half_open_per_connection`` per stream
  connection (RFC 9329 §6.3 rules out COOKIEs over TCP, so the budget is the
  defence there).  strongSwan calls the per-source budget
  ``block_threshold``.  When ``half_open_max`` of a kind is reached, a
  request from a source that holds fewer half-open SAs than the source that
  holds most may still get in (:meth:`HalfOpenBudgets.fair_share_victim`):
  the endpoint ends the oldest half-open SA of that greediest source.  So
  many sources that each stay within ``half_open_per_source`` (and, over
  UDP, echo COOKIEs) cannot keep out a source that holds none; it would take
  ``half_open_max`` sources holding one apiece.
* :class:`ReplyRate` is a token bucket per source (and one for all) for the
  messages we send over UDP in answer to unprotected messages: stateless
  refusals, COOKIE requests, INVALID_MAJOR_VERSION, and a half-open SA's
  stored IKE_SA_INIT response sent again.  COOKIE and INVALID_KE_PAYLOAD,
  steps of a normal handshake, are held to their source's bucket only, so
  forged requests from ever-new addresses cannot starve a clean initiator
  of them.  Over TCP and TLS the source is proven and nothing can be
  reflected, so the endpoint does not limit those answers.  RFC 7296 §2.21.4: "A node needs to limit
  the rate at which it will send messages in response to unprotected
  messages."  Its memory is bounded: past ``max_sources`` the oldest source
  is forgotten.

Both are pure bookkeeping: they read no clock (``now`` is passed in).
"""

from __future__ import annotations

import itertools
from collections import Counter, OrderedDict
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from typing import TypeVar

import attrs

from responder.core.config import Limits
from responder.core.path import Path

__all__ = ["HalfOpenBudgets", "ReplyRate", "SourceKey", "source_key"]

#: A budget's key: ``"stream"`` or ``"udp"``, and the source (an IPv4 address or an IPv6 prefix).
SourceKey = tuple[str, IPv4Address | IPv6Network]


def _kind(path: Path) -> str:
    return "stream" if path.transport.is_stream else "udp"


def source_key(path: Path, ipv6_prefix: int) -> SourceKey:
    """The budget a request on ``path`` counts against: its kind and source (IPv6 by prefix)."""
    address = path.remote_address
    if isinstance(address, IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return _kind(path), mapped
        return _kind(path), IPv6Network((address, ipv6_prefix), strict=False)
    return _kind(path), address


@attrs.define(eq=False)
class HalfOpenBudgets:
    """Half-open IKE SAs by kind of transport, by source and by stream connection."""

    limits: Limits
    _by_kind: Counter[str] = attrs.field(init=False, factory=Counter)
    _by_source: Counter[SourceKey] = attrs.field(init=False, factory=Counter)
    _by_connection: Counter[int] = attrs.field(init=False, factory=Counter)
    _held: dict[bytes, tuple[str, SourceKey, int | None]] = attrs.field(init=False, factory=dict)
    #: Each source's half-open SAs, oldest first.
    _of_source: dict[SourceKey, dict[bytes, None]] = attrs.field(init=False, factory=dict)
    #: Per kind, the sources by how many half-open SAs they hold (count -> sources, oldest first).
    _holders: dict[str, dict[int, dict[SourceKey, None]]] = attrs.field(init=False, factory=dict)

    def __len__(self) -> int:
        """Half-open IKE SAs in all."""
        return len(self._held)

    def __contains__(self, local_spi: object) -> bool:
        return local_spi in self._held

    def of_kind(self, path: Path) -> int:
        """Half-open IKE SAs of the kind of transport ``path`` is (the COOKIE threshold counts these)."""
        return self._by_kind[_kind(path)]

    def refusal(self, path: Path, *, sharing: bool = False) -> str | None:
        """Why a new half-open IKE SA from ``path`` would exceed a budget, or ``None`` if it fits.

        ``sharing``: ``half_open_max`` of the kind does not count, since the
        caller will make room with :meth:`fair_share_victim`.
        """
        limits = self.limits
        kind = _kind(path)
        if self._by_kind[kind] >= limits.half_open_max and not sharing:
            return f"half_open_max ({limits.half_open_max}) reached over {kind}"
        key = source_key(path, limits.half_open_ipv6_prefix)
        if self._by_source[key] >= limits.half_open_per_source:
            return f"half_open_per_source ({limits.half_open_per_source}) reached by {key[1]} over {kind}"
        connection = path.connection
        if connection is not None and self._by_connection[connection] >= limits.half_open_per_connection:
            return (
                f"half_open_per_connection ({limits.half_open_per_connection}) reached on conn {connection}"
            )
        return None

    def fair_share_victim(
        self, path: Path, busy: Callable[[bytes], bool] = lambda _: False
    ) -> tuple[bytes, str] | None:
        """With ``half_open_max`` of its kind reached, the half-open SA to end so that ``path``'s
        source gets one: the oldest of the source holding most, if that source holds at least two
        more than ``path``'s, skipping SAs that are ``busy`` (an IKE_AUTH answer in the making).
        Returns our SPI of it and why, or ``None`` (the request waits its turn).
        """
        kind = _kind(path)
        if self._by_kind[kind] < self.limits.half_open_max:
            return None
        holders = self._holders.get(kind)
        if not holders:
            return None
        most = max(holders)
        mine = self._by_source[source_key(path, self.limits.half_open_ipv6_prefix)]
        if mine + 2 > most:
            return None
        chosen = next(
            (
                (source, local_spi)
                for source in itertools.islice(holders[most], 16)
                for local_spi in self._of_source[source]
                if not busy(local_spi)
            ),
            None,
        )
        if chosen is None:
            return None
        greediest, oldest = chosen
        why = (
            f"half_open_max ({self.limits.half_open_max}) reached over {kind}: "
            f"{greediest[1]} held the most half-open IKE SAs ({most}) and {path.remote_address} {mine}"
        )
        return oldest, why

    def add(self, local_spi: bytes, path: Path) -> None:
        """A half-open SA made from a request on ``path``."""
        if local_spi in self._held:
            return
        kind = _kind(path)
        key = source_key(path, self.limits.half_open_ipv6_prefix)
        self._held[local_spi] = (kind, key, path.connection)
        self._by_kind[kind] += 1
        self._move(kind, key, +1)
        self._of_source.setdefault(key, {})[local_spi] = None
        if path.connection is not None:
            self._by_connection[path.connection] += 1

    def remove(self, local_spi: bytes) -> None:
        """The SA is no longer half-open (established, or gone); idempotent."""
        held = self._held.pop(local_spi, None)
        if held is None:
            return
        kind, key, connection = held
        _decrement(self._by_kind, kind)
        self._move(kind, key, -1)
        mine = self._of_source[key]
        del mine[local_spi]
        if not mine:
            del self._of_source[key]
        if connection is not None:
            _decrement(self._by_connection, connection)

    def _move(self, kind: str, key: SourceKey, step: int) -> None:
        """Count one half-open SA more or less for ``key``, and move it between the holder buckets."""
        before = self._by_source[key]
        after = before + step
        holders = self._holders.setdefault(kind, {})
        if before:
            bucket = holders[before]
            del bucket[key]
            if not bucket:
                del holders[before]
        if after > 0:
            self._by_source[key] = after
            holders.setdefault(after, {})[key] = None
        else:
            del self._by_source[key]


K = TypeVar("K")


def _decrement(counter: Counter[K], key: K) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


@attrs.define(eq=False)
class ReplyRate:
    """Token buckets for answers to unprotected messages: one per source, one for all (RFC 7296 §2.21.4).

    A source may send ``per_source`` answers a second on average, in bursts
    of twice that; all sources together ``overall`` a second, in bursts of one
    second's worth.
    """

    per_source: float
    overall: float
    ipv6_prefix: int = 64
    max_sources: int = 4096
    _sources: OrderedDict[SourceKey, tuple[float, float]] = attrs.field(init=False, factory=OrderedDict)
    _all: tuple[float, float] | None = attrs.field(init=False, default=None)
    held_back: int = attrs.field(init=False, default=0)  #: answers not sent since the start

    def allow(self, path: Path, now: float, *, overall: bool = True) -> bool:
        """Whether one more answer may go to the source of ``path`` now (it is counted if so).

        ``overall=False``: the bucket for all sources neither applies nor is spent.
        """
        key = source_key(path, self.ipv6_prefix)
        tokens, last = self._sources.pop(key, (2 * self.per_source, now))
        tokens = min(2 * self.per_source, tokens + (now - last) * self.per_source)
        everyone, everyone_last = self._all if self._all is not None else (self.overall, now)
        everyone = min(self.overall, everyone + (now - everyone_last) * self.overall)
        allowed = tokens >= 1.0 and (everyone >= 1.0 or not overall)
        if allowed:
            tokens -= 1.0
            if overall:
                everyone -= 1.0
        else:
            self.held_back += 1
        self._sources[key] = (tokens, now)
        self._all = (everyone, now)
        while len(self._sources) > self.max_sources:
            self._sources.popitem(last=False)
        return allowed
