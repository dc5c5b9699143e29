"""COOKIE construction and secret rotation (RFC 7296 §2.6, §2.6.1; RFC 9329 §6.3)."""

from __future__ import annotations

import itertools
from ipaddress import ip_address

import pytest

from responder.core.cookies import CookieJar
from responder.core.errors import LocalError

NI = bytes(range(32))
SPI = bytes.fromhex("0102030405060708")
ADDRESS = ip_address("192.0.2.10")


def counting_random() -> CookieJar:
    counter = itertools.count(1)
    return CookieJar(lambda n: bytes([next(counter)]) * n, lifetime=60.0)


def test_cookie_verifies_and_fits_rfc7296_size() -> None:
    jar = counting_random()
    cookie = jar.make(0.0, NI, ADDRESS, SPI)
    assert 1 <= len(cookie) <= 64
    assert jar.check(1.0, cookie, NI, ADDRESS, SPI)


@pytest.mark.parametrize(
    ("nonce", "address", "spi"),
    [
        (NI[:-1] + b"\xff", ADDRESS, SPI),
        (NI, ip_address("192.0.2.11"), SPI),
        (NI, ADDRESS, bytes(8)),
    ],
)
def test_cookie_binds_nonce_address_and_spi(nonce: bytes, address: object, spi: bytes) -> None:
    jar = counting_random()
    cookie = jar.make(0.0, NI, ADDRESS, SPI)
    assert not jar.check(0.0, cookie, nonce, address, spi)  # type: ignore[arg-type]


def test_cookie_does_not_depend_on_port_or_ke() -> None:
    """RFC 9329 §6.3 (row A42) and RFC 7296 §2.6.1 (row B11): neither port nor KEi is an input."""
    import inspect

    parameters = set(inspect.signature(CookieJar.make).parameters)
    assert parameters == {"self", "now", "nonce_i", "address", "spi_i"}


def test_previous_secret_accepted_two_generations_old_refused() -> None:
    jar = counting_random()
    cookie = jar.make(0.0, NI, ADDRESS, SPI)
    assert jar.check(59.0, cookie, NI, ADDRESS, SPI)  # same generation
    assert jar.check(61.0, cookie, NI, ADDRESS, SPI)  # one rotation later: previous secret
    fresh = jar.make(61.0, NI, ADDRESS, SPI)
    assert fresh != cookie
    assert not jar.check(121.0, cookie, NI, ADDRESS, SPI)  # two rotations later
    assert jar.check(121.0, fresh, NI, ADDRESS, SPI)


def test_long_idle_rotates_past_every_old_secret() -> None:
    jar = counting_random()
    cookie = jar.make(0.0, NI, ADDRESS, SPI)
    assert not jar.check(10_000.0, cookie, NI, ADDRESS, SPI)


@pytest.mark.parametrize("cookie", [b"", b"\x00" * 36, b"\x00" * 35, b"\x00" * 64])
def test_malformed_cookies_refused(cookie: bytes) -> None:
    jar = counting_random()
    jar.make(0.0, NI, ADDRESS, SPI)
    assert not jar.check(0.0, cookie, NI, ADDRESS, SPI)


def test_same_randomness_same_cookie() -> None:
    assert counting_random().make(5.0, NI, ADDRESS, SPI) == counting_random().make(5.0, NI, ADDRESS, SPI)


def test_bad_lifetime_is_local_error() -> None:
    with pytest.raises(LocalError):
        CookieJar(lambda n: bytes(n), lifetime=0)
