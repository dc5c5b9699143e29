"""Virtual address leases from an :class:`~responder.core.config.AddressPool` (RFC 7296 §2.19, §3.15).

Strategy: deterministic, so tests and lab runs repeat.  Each family keeps two
maps (owner -> address, address -> owner) as integers; a lease is the
requested address when it is in the pool and free (RFC 7296 §3.15.3: the
initiator MAY ask for one it had), else the lowest free address.  A scan hint
remembers where the lowest free address may be, so sequential leasing is
cheap even in an IPv6 /64.  The owner is any byte string the caller picks
(the state machine uses the IKE SA's local SPI); an owner has at most one
address per family, and asking again returns the same one.

Usable addresses: IPv4 networks skip the network and broadcast addresses,
except /31 (RFC 3021) and /32; IPv6 networks skip the subnet-router anycast
address (RFC 4291 §2.6.1), except /127 (RFC 6164) and /128.
"""

from __future__ import annotations

import ipaddress
from typing import TypeAlias

import attrs

from responder.core.config import AddressPool
from responder.core.errors import LocalError

__all__ = ["PoolAllocator"]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


@attrs.define(eq=False)
class _Family:
    """Leases of one IP version."""

    version: int
    first: int
    last: int
    by_owner: dict[bytes, int] = attrs.Factory(dict)
    by_address: dict[int, bytes] = attrs.Factory(dict)
    hint: int = 0  # no free address below this one

    def address(self, value: int) -> IPAddress:
        return ipaddress.IPv4Address(value) if self.version == 4 else ipaddress.IPv6Address(value)

    def lease(self, owner: bytes, requested: IPAddress | None) -> IPAddress | None:
        current = self.by_owner.get(owner)
        if current is not None:
            return self.address(current)
        if requested is not None:
            wanted = int(requested)
            if self.first <= wanted <= self.last and wanted not in self.by_address:
                return self._take(owner, wanted)
        candidate = max(self.hint, self.first)
        while candidate <= self.last and candidate in self.by_address:
            candidate += 1
        self.hint = candidate
        if candidate > self.last:
            return None
        return self._take(owner, candidate)

    def _take(self, owner: bytes, value: int) -> IPAddress:
        self.by_owner[owner] = value
        self.by_address[value] = owner
        return self.address(value)

    def release(self, owner: bytes) -> None:
        value = self.by_owner.pop(owner, None)
        if value is not None:
            del self.by_address[value]
            self.hint = min(self.hint, value)


def _family(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> _Family:
    low, high = int(network.network_address), int(network.broadcast_address)
    if network.version == 4 and network.prefixlen <= 30:
        low, high = low + 1, high - 1  # network and broadcast addresses
    elif network.version == 6 and network.prefixlen <= 126:
        low += 1  # subnet-router anycast
    return _Family(network.version, low, high, hint=low)


@attrs.define(eq=False)
class PoolAllocator:
    """Leases addresses of one pool; the only mutable state about pools in the core."""

    pool: AddressPool
    _families: dict[int, _Family] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        networks = [n for n in (self.pool.ipv4, self.pool.ipv6) if n is not None]
        self._families = {network.version: _family(network) for network in networks}

    def supports(self, version: int) -> bool:
        """Whether the pool has addresses of IP ``version`` (4 or 6)."""
        return version in self._families

    def lease(self, owner: bytes, version: int, requested: IPAddress | None = None) -> IPAddress | None:
        """An address of IP ``version`` for ``owner``, or ``None`` when there is none to give.

        An owner that already holds an address of that version gets it again
        (whatever it requests).  Otherwise a ``requested`` address inside the
        pool's usable range and free is granted (RFC 7296 §3.15.3); else the
        lowest free one.  ``None`` when the pool is exhausted or has no
        network of that version (the caller answers INTERNAL_ADDRESS_FAILURE).
        """
        if version not in (4, 6):
            raise LocalError(f"IP version is 4 or 6, not {version}")
        if requested is not None and requested.version != version:
            raise LocalError(f"requested {requested} is not an IPv{version} address")
        family = self._families.get(version)
        if family is None:
            return None
        return family.lease(owner, requested)

    def take_over(self, old: PoolAllocator) -> set[bytes]:
        """Keep the leases of ``old`` (this pool's previous definition, a reload) that still fit
        this pool's ranges; the owners whose address does not fit any more, who hold nothing now."""
        lost: set[bytes] = set()
        for version, family in old._families.items():
            mine = self._families.get(version)
            for owner, value in family.by_owner.items():
                if mine is not None and mine.first <= value <= mine.last and value not in mine.by_address:
                    mine._take(owner, value)
                else:
                    lost.add(owner)
        return lost

    def release(self, owner: bytes) -> None:
        """Give back every address ``owner`` holds (no error if it holds none)."""
        for family in self._families.values():
            family.release(owner)

    def transfer(self, owner: bytes, heir: bytes) -> None:
        """Hand every address ``owner`` holds to ``heir``, which holds none (an IKE SA rekey keeps
        the virtual address, RFC 7296 §2.19)."""
        for family in self._families.values():
            if heir in family.by_owner and owner in family.by_owner:
                raise LocalError("the heir of a lease already holds an address of that family")
            value = family.by_owner.pop(owner, None)
            if value is not None:
                family.by_owner[heir] = value
                family.by_address[value] = heir

    def leases(self, owner: bytes) -> tuple[IPAddress, ...]:
        """The addresses ``owner`` holds, IPv4 first."""
        return tuple(
            family.address(family.by_owner[owner])
            for _version, family in sorted(self._families.items())
            if owner in family.by_owner
        )

    def owner_of(self, address: IPAddress) -> bytes | None:
        """Who holds ``address``, if anyone."""
        family = self._families.get(address.version)
        return None if family is None else family.by_address.get(int(address))

    def in_use(self, version: int) -> int:
        """How many addresses of IP ``version`` are leased."""
        family = self._families.get(version)
        return 0 if family is None else len(family.by_owner)
