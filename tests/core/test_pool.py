"""Tests of responder.core.pool: deterministic virtual address leases (RFC 7296 §2.19, §3.15.3)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from responder.core.config import AddressPool
from responder.core.errors import LocalError
from responder.core.pool import PoolAllocator

A, B, C = b"owner-a", b"owner-b", b"owner-c"


def allocator(ipv4: str | None = "10.3.0.0/29", ipv6: str | None = None) -> PoolAllocator:
    return PoolAllocator(
        AddressPool("vips", IPv4Network(ipv4) if ipv4 else None, IPv6Network(ipv6) if ipv6 else None)
    )


def test_lowest_free_skipping_network_and_broadcast() -> None:
    pool = allocator()
    leased = [pool.lease(bytes([n]), 4) for n in range(6)]
    assert leased == [IPv4Address(f"10.3.0.{n}") for n in range(1, 7)]
    assert pool.lease(b"late", 4) is None  # .0 and .7 are never handed out
    assert pool.in_use(4) == 6


def test_same_owner_gets_the_same_address() -> None:
    pool = allocator()
    first = pool.lease(A, 4)
    assert pool.lease(A, 4) == first
    assert pool.lease(A, 4, IPv4Address("10.3.0.5")) == first  # an existing lease wins over a request
    assert pool.in_use(4) == 1
    assert pool.leases(A) == (first,)
    assert pool.owner_of(IPv4Address("10.3.0.1")) == A


def test_requested_address_is_honoured_when_free_and_inside() -> None:
    pool = allocator()
    assert pool.lease(A, 4, IPv4Address("10.3.0.5")) == IPv4Address("10.3.0.5")
    assert pool.lease(B, 4, IPv4Address("10.3.0.5")) == IPv4Address("10.3.0.1")  # taken: lowest free
    assert pool.lease(C, 4, IPv4Address("192.0.2.1")) == IPv4Address("10.3.0.2")  # outside the pool
    assert pool.lease(b"d", 4, IPv4Address("10.3.0.0")) == IPv4Address("10.3.0.3")  # network address
    assert pool.lease(b"e", 4, IPv4Address("10.3.0.7")) == IPv4Address("10.3.0.4")  # broadcast address


def test_release_frees_the_lowest_again() -> None:
    pool = allocator()
    for owner in (A, B, C):
        pool.lease(owner, 4)
    pool.release(A)
    pool.release(b"nobody")  # no error
    assert pool.owner_of(IPv4Address("10.3.0.1")) is None
    assert pool.lease(b"d", 4) == IPv4Address("10.3.0.1")
    assert pool.lease(b"e", 4) == IPv4Address("10.3.0.4")
    assert pool.leases(A) == ()


def test_exhaustion_then_release() -> None:
    pool = allocator("10.3.0.0/30")
    assert pool.lease(A, 4) == IPv4Address("10.3.0.1")
    assert pool.lease(B, 4) == IPv4Address("10.3.0.2")
    assert pool.lease(C, 4) is None
    pool.release(B)
    assert pool.lease(C, 4) == IPv4Address("10.3.0.2")


def test_leases_are_per_owner_and_family() -> None:
    pool = allocator("10.3.0.0/29", "2001:db8:1::/64")
    assert pool.supports(4) and pool.supports(6)
    assert pool.lease(A, 6) == IPv6Address("2001:db8:1::1")  # the subnet-router anycast ::0 is skipped
    assert pool.lease(A, 4) == IPv4Address("10.3.0.1")
    assert pool.lease(B, 6) == IPv6Address("2001:db8:1::2")
    assert pool.leases(A) == (IPv4Address("10.3.0.1"), IPv6Address("2001:db8:1::1"))
    pool.release(A)
    assert pool.leases(A) == ()
    assert (pool.in_use(4), pool.in_use(6)) == (0, 1)


def test_missing_family_gives_nothing() -> None:
    pool = allocator("10.3.0.0/29", None)
    assert not pool.supports(6)
    assert pool.lease(A, 6) is None
    assert pool.in_use(6) == 0
    assert pool.owner_of(IPv6Address("::1")) is None
    v6_only = allocator(None, "2001:db8::/126")
    assert v6_only.lease(A, 4) is None
    assert v6_only.lease(A, 6) == IPv6Address("2001:db8::1")


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ("10.3.0.0/31", ["10.3.0.0", "10.3.0.1"]),  # RFC 3021
        ("10.3.0.9/32", ["10.3.0.9"]),
        ("10.3.0.0/30", ["10.3.0.1", "10.3.0.2"]),
        ("2001:db8::/127", ["2001:db8::", "2001:db8::1"]),  # RFC 6164
        ("2001:db8::5/128", ["2001:db8::5"]),
        ("2001:db8::/126", ["2001:db8::1", "2001:db8::2", "2001:db8::3"]),
    ],
)
def test_small_networks(network: str, expected: list[str]) -> None:
    v4 = "." in network
    pool = allocator(network if v4 else None, None if v4 else network)
    version = 4 if v4 else 6
    got = [pool.lease(bytes([n]), version) for n in range(len(expected) + 1)]
    assert [str(a) for a in got[:-1]] == expected
    assert got[-1] is None


def test_argument_checks() -> None:
    pool = allocator()
    with pytest.raises(LocalError, match="IP version is 4 or 6"):
        pool.lease(A, 5)
    with pytest.raises(LocalError, match="not an IPv4 address"):
        pool.lease(A, 4, IPv6Address("::1"))


def test_large_ipv6_pool_is_cheap() -> None:
    pool = allocator(None, "2001:db8::/64")
    for n in range(2000):
        pool.lease(n.to_bytes(4, "big"), 6)
    assert pool.lease(b"last", 6) == IPv6Address(2000 + 1 + int(IPv6Address("2001:db8::")))


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["lease", "release"]), st.integers(0, 7), st.one_of(st.none(), st.integers(0, 9))
    ),
    max_size=60,
)


@given(_OPS)
def test_against_a_model(ops: list[tuple[str, int, int | None]]) -> None:
    """Compared with a plain model: lowest free of .1-.6, requests honoured when free and usable."""
    pool = allocator()
    usable = list(range(1, 7))
    model: dict[int, int] = {}  # owner -> host number
    for op, owner_number, wanted in ops:
        owner = bytes([owner_number])
        if op == "release":
            pool.release(owner)
            model.pop(owner_number, None)
            continue
        requested = None if wanted is None else IPv4Address(f"10.3.0.{wanted}")
        got = pool.lease(owner, 4, requested)
        if owner_number in model:
            expected: int | None = model[owner_number]
        else:
            taken = set(model.values())
            if wanted is not None and wanted in usable and wanted not in taken:
                expected = wanted
            else:
                expected = next((n for n in usable if n not in taken), None)
            if expected is not None:
                model[owner_number] = expected
        assert got == (None if expected is None else IPv4Address(f"10.3.0.{expected}"))
        assert pool.in_use(4) == len(model)


def test_transfer_hands_the_leases_to_the_heir() -> None:
    """An IKE SA rekey keeps the client's virtual addresses: they pass to the new IKE SA."""
    pool = allocator("10.3.0.0/29", "2001:db8:1::/64")
    v4, v6 = pool.lease(A, 4), pool.lease(A, 6)
    pool.transfer(A, B)
    assert pool.leases(A) == () and pool.leases(B) == (v4, v6)
    assert pool.owner_of(v4) == B  # type: ignore[arg-type]
    pool.release(A)  # the old SA ending frees nothing
    assert pool.lease(C, 4) != v4
    pool.transfer(b"nobody", C)  # nothing to hand over: no error
    with pytest.raises(LocalError, match="heir"):
        pool.transfer(B, C)  # C holds an IPv4 address already
