"""Log lines for events, and the rate limiter."""

from __future__ import annotations

import logging
from ipaddress import ip_address

import attrs
import pytest

from responder.core.enums import ExchangeType, NotifyType
from responder.core.events import (
    AnswerDeferred,
    AuthenticationFailed,
    ChildSaDeleted,
    ChildSaEstablished,
    ChildSaRefused,
    ConnectionClosing,
    Event,
    IkeSaClosed,
    IkeSaEstablished,
    IkeSaInitRefused,
    MessageAccepted,
    MessageDropped,
    MessageSent,
    PathChanged,
    RequestAnswered,
    ResponseReceived,
    RetransmissionAnswered,
)
from responder.core.keys import ChildSaKeys, IkeSaKeys
from responder.core.path import Path, Transport
from responder.server.logs import RateLimiter, describe_event, event_level, where

SPI_I = bytes.fromhex("0123456789abcdef")
SPI_R = bytes.fromhex("fedcba9876543210")
TCP = Path(Transport.TCP, ip_address("192.0.2.2"), 4500, ip_address("192.0.2.1"), 40001, 7)
UDP6 = Path(Transport.UDP, ip_address("2001:db8::2"), 4500, ip_address("2001:db8::1"), 4500)
IKE_KEYS = IkeSaKeys(*(bytes([0xA0 + n]) * 32 for n in range(7)))
CHILD_KEYS = ChildSaKeys(*(bytes([0xC0 + n]) * 36 for n in range(4)))


def test_path_descriptions() -> None:
    assert where(TCP) == "tcp 192.0.2.1:40001 conn 7"
    assert where(UDP6) == "udp [2001:db8::1]:4500"
    assert where(None) == "(no path)"


IDS = (SPI_R, SPI_I, SPI_R)  # local SPI (the responder's), SPIi, SPIr


class Backend:
    """Stands for outside work an answer waits for (an EAP server, say)."""


EVENTS: list[tuple[Event, list[str]]] = [
    (
        PathChanged(*IDS, TCP, UDP6),
        ["now sent on tcp 192.0.2.1:40001 conn 7 (was udp [2001:db8::1]:4500)"],
    ),
    (
        AnswerDeferred(*IDS, ExchangeType.IKE_AUTH, 3, Backend()),
        ["IKE_AUTH #3 answer deferred: waiting for Backend"],
    ),
    (
        RequestAnswered(*IDS, ExchangeType.IKE_AUTH, 1, "IKE SA established"),
        ["IKE_AUTH #1 answered: IKE SA established"],
    ),
    (
        ResponseReceived(*IDS, ExchangeType.INFORMATIONAL, 4, "alive"),
        ["INFORMATIONAL #4 response received: alive"],
    ),
    (
        IkeSaInitRefused(SPI_I, NotifyType.NO_PROPOSAL_CHOSEN, "no ENCR matched"),
        ["IKE_SA_INIT #0 refused with NO_PROPOSAL_CHOSEN: no ENCR matched", "0000000000000000"],
    ),
    (AuthenticationFailed(*IDS, "AUTH does not verify"), ["AUTHENTICATION_FAILED", "AUTH does not"]),
    (
        ChildSaRefused(*IDS, NotifyType.TS_UNACCEPTABLE, "no selector"),
        ["TS_UNACCEPTABLE: no selector"],
    ),
    (ChildSaDeleted(*IDS, b"\x11" * 4, b"\x22" * 4), ["in 11111111 out 22222222"]),
    (IkeSaClosed(*IDS, "deleted by the peer"), ["IKE SA closed: deleted by the peer"]),
    (MessageAccepted(*IDS, ExchangeType.INFORMATIONAL, 2, False), ["INFORMATIONAL #2 request"]),
    (
        MessageAccepted(*IDS, ExchangeType.IKE_AUTH, 1, False, ("IDi", "N(INITIAL_CONTACT)", "AUTH")),
        ["IKE_AUTH #1 request accepted [ IDi N(INITIAL_CONTACT) AUTH ]"],
    ),
    (
        MessageSent(*IDS, ExchangeType.IKE_AUTH, 1, True, ("IDr", "AUTH", "SA", "TSi", "TSr")),
        ["IKE_AUTH #1 response sent [ IDr AUTH SA TSi TSr ]"],
    ),
    (RetransmissionAnswered(*IDS, 3), ["#3 retransmitted"]),
    (MessageDropped("junk", *IDS), ["message dropped: junk"]),
    (
        IkeSaEstablished(*IDS, "responder", "alice", "aes", "AES_GCM_16-256", None, IKE_KEYS),
        ["IKE SA established: 'alice'", "AES_GCM_16-256"],
    ),
    (
        ChildSaEstablished(
            *IDS,
            b"\x11" * 4,
            b"\x22" * 4,
            "esp",
            "tunnel",
            ("10.0.0.0/8",),
            ("0.0.0.0/0",),
            "AES_GCM_16-256",
            None,
            False,
            CHILD_KEYS,
        ),
        ["Child SA established: ESP in 11111111 out 22222222 tunnel", "local 10.0.0.0/8"],
    ),
]


@pytest.mark.parametrize(("event", "expected"), EVENTS, ids=[type(e).__name__ for e, _ in EVENTS])
def test_every_event_has_a_line_with_peer_and_spis(event: Event, expected: list[str]) -> None:
    line = describe_event(event, TCP)
    assert line.startswith("tcp 192.0.2.1:40001 conn 7 ")
    assert SPI_I.hex() in line
    if not isinstance(event, IkeSaInitRefused):
        assert f"{SPI_I.hex()}/{SPI_R.hex()}" in line
    for text in expected:
        assert text in line
    for secret in (*attrs.astuple(IKE_KEYS), *attrs.astuple(CHILD_KEYS)):
        assert secret.hex()[:8] not in line and repr(secret)[2:10] not in line


def test_connection_closing_names_the_connection_and_why() -> None:
    event = ConnectionClosing(7, "corrupt", "16 consecutive corrupt messages")
    assert describe_event(event, TCP) == "tcp 192.0.2.1:40001 conn 7 closed: 16 consecutive corrupt messages"
    assert event_level(event) == logging.WARNING
    assert event_level(ConnectionClosing(7, "orphan", "carried no live IKE SA")) == logging.INFO


def test_levels() -> None:
    assert event_level(MessageAccepted(*IDS, ExchangeType.IKE_AUTH, 1, False)) == logging.DEBUG
    assert event_level(AuthenticationFailed(*IDS, "x")) == logging.WARNING
    assert event_level(IkeSaInitRefused(SPI_I, NotifyType.NO_PROPOSAL_CHOSEN, "x")) == logging.WARNING
    assert event_level(IkeSaInitRefused(SPI_I, NotifyType.INVALID_KE_PAYLOAD, "x")) == logging.INFO
    assert event_level(IkeSaClosed(*IDS, "x")) == logging.INFO


def test_rate_limiter_lets_one_line_per_key_per_interval_and_counts_the_rest() -> None:
    limiter = RateLimiter(interval=10.0)
    assert limiter.check("a", 0.0) == 0
    assert limiter.check("a", 1.0) is None
    assert limiter.check("a", 9.9) is None
    assert limiter.check("b", 5.0) == 0  # keys are independent
    assert limiter.check("a", 10.0) == 2  # two suppressed since the last line
    assert limiter.check("a", 10.5) is None
    assert limiter.check("a", 25.0) == 1


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(interval=10.0, max_keys=3)
    for key in range(10):
        assert limiter.check(key, 0.0) == 0
    assert limiter.check(0, 1.0) == 0  # forgotten, so logged again
    assert limiter.check(9, 1.0) is None


def test_rate_limited_log_reports_the_suppressed_count(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("responder.server.test")
    caplog.set_level(logging.INFO, logger.name)
    limiter = RateLimiter(interval=10.0)
    results = [limiter.log(logger, logging.INFO, "k", t, "drop from %s", "192.0.2.1") for t in (0, 1, 2, 11)]
    assert results == [True, False, False, True]
    assert [r.getMessage() for r in caplog.records] == [
        "drop from 192.0.2.1",
        "drop from 192.0.2.1 (suppressed 2 similar)",
    ]
