"""The RFC 9329 §6.1 connection rules as a sans-IO object: outcomes in, closings and deadlines out.

Rows A25, A32, A33, A37, A43: what counts as corrupt (and what resets the
count), when a connection carries an IKE SA, when its orphan grace period
starts again, and that the end of an SA touches only the connections that
carried it.  Time is explicit.
"""

from __future__ import annotations

from ipaddress import ip_address

from responder.core.config import Limits
from responder.core.connection import ConnectionRules
from responder.core.events import ConnectionClosing
from responder.core.outcomes import ReceiveOutcome, Verdict
from responder.core.path import Path, Transport

SA = b"\x01" * 8
OTHER = b"\x02" * 8


def path(connection: int) -> Path:
    remote = ip_address("192.0.2.1")
    return Path(Transport.TCP, ip_address("192.0.2.2"), 4500, remote, 40000 + connection, connection)


def rules(corrupt: int = 3, orphan: float = 10.0) -> ConnectionRules:
    judge = ConnectionRules(Limits(corrupt_messages_max=corrupt, orphan_timeout=orphan))
    for connection in (1, 2):
        judge.attach(path(connection))
    return judge


def ike(judge: ConnectionRules, connection: int, verdict: Verdict, spi: bytes = b"", now: float = 0) -> None:
    judge.on_ike(path(connection), ReceiveOutcome(verdict, spi), "why", bool(spi), now)


def test_corrupt_input_in_a_row_closes_and_anything_authenticated_resets_the_count() -> None:
    """Rows A32, A33: unknown SPIs, failed ICVs and unparseable IKE_SA_INITs count; a valid message,
    a retransmission, an authenticated message not acted on, and ESP to a known SPI reset."""
    judge = rules(corrupt=3)
    for reset in (Verdict.ACCEPTED, Verdict.RETRANSMISSION, Verdict.IGNORED, Verdict.REFUSED, None):
        ike(judge, 1, Verdict.CORRUPT)
        ike(judge, 1, Verdict.MALFORMED)
        if reset is None:
            judge.on_esp(path(1), True, b"\x00\x00\x10\x00", 0.0)
        else:
            ike(judge, 1, reset, SA if reset is not Verdict.REFUSED else b"")
        assert list(judge.closing()) == []
    ike(judge, 1, Verdict.CORRUPT)
    judge.on_esp(path(1), False, b"\xde\xad\xbe\xef", 0.0)
    ike(judge, 1, Verdict.CORRUPT)
    [closing] = judge.closing()
    assert closing == ConnectionClosing(
        1, "corrupt", "3 consecutive corrupt messages, the last one: IKE message dropped: why (RFC 9329 §6.1)"
    )
    ike(judge, 1, Verdict.CORRUPT)
    ike(judge, 1, Verdict.CORRUPT)
    ike(judge, 1, Verdict.CORRUPT)
    assert list(judge.closing()) == []  # closed once


def test_a_new_ike_sa_init_dropped_for_our_limits_is_neither_corrupt_nor_a_reset() -> None:
    judge = rules(corrupt=2)
    ike(judge, 1, Verdict.CORRUPT)
    ike(judge, 1, Verdict.LIMITED)
    ike(judge, 1, Verdict.CORRUPT)
    assert [c.kind for c in judge.closing()] == ["corrupt"]


def test_an_orphan_is_closed_after_the_grace_period_from_its_first_frame() -> None:
    """Row A25: a connection that never carried a live IKE SA closes ``orphan_timeout`` after its
    first frame."""
    judge = rules(orphan=10.0)
    judge.on_esp(path(1), False, b"\x00\x00\x10\x00", 3.0)
    assert judge.get_timer() == 13.0
    judge.handle_timer(12.9)
    assert list(judge.closing()) == []
    judge.handle_timer(13.0)
    [closing] = judge.closing()
    assert (closing.connection, closing.kind) == (1, "orphan")
    assert judge.get_timer() is None


def test_carrying_a_live_sa_stops_the_grace_and_its_end_starts_it_again() -> None:
    """Rows A25, A37: carried means created on it or a valid message came on it; when the SA ends,
    the connections that carried it, and only those, start their grace period."""
    judge = rules()
    ike(judge, 1, Verdict.CREATED, SA, now=1.0)
    ike(judge, 2, Verdict.ACCEPTED, SA, now=2.0)  # the SA moved to a new connection: both carry it
    ike(judge, 2, Verdict.CREATED, OTHER, now=2.0)
    assert judge.get_timer() is None
    assert judge.get(1).carried == {SA} and judge.get(2).carried == {SA, OTHER}  # type: ignore[union-attr]
    judge.sa_ended(SA, 5.0)
    assert judge.get_timer() == 15.0  # connection 1 only: 2 still carries OTHER
    judge.sa_ended(OTHER, 6.0)
    judge.handle_timer(16.0)
    assert [c.connection for c in judge.closing()] == [1, 2]


def test_a_refused_ike_sa_init_restarts_the_grace_so_the_retry_finds_the_connection_open() -> None:
    """Row A43: after INVALID_KE_PAYLOAD (or INVALID_MAJOR_VERSION) the initiator retries on the same
    connection; each new IKE_SA_INIT request starts the grace period again."""
    judge = rules(orphan=10.0)
    ike(judge, 1, Verdict.REFUSED, now=0.0)
    ike(judge, 1, Verdict.REFUSED, now=9.0)
    judge.handle_timer(12.0)
    assert list(judge.closing()) == [] and judge.get_timer() == 19.0
    ike(judge, 1, Verdict.LIMITED, now=18.0)
    assert judge.get_timer() == 28.0


def test_a_message_for_an_sa_that_no_longer_lives_carries_nothing() -> None:
    judge = rules()
    judge.on_ike(path(1), ReceiveOutcome(Verdict.ACCEPTED, SA), "", False, 0.0)
    assert judge.get(1).carried == set() and judge.get_timer() == 10.0  # type: ignore[union-attr]


def test_detached_connections_are_forgotten_with_their_deadlines() -> None:
    judge = rules()
    ike(judge, 1, Verdict.CREATED, SA)
    judge.on_esp(path(2), False, b"\x00\x00\x10\x00", 0.0)
    judge.detach(1)
    judge.detach(2)
    assert judge.get(1) is None and len(judge) == 0 and judge.get_timer() is None
    judge.sa_ended(SA, 1.0)
    ike(judge, 1, Verdict.CORRUPT)  # no longer attached: ignored
    judge.handle_timer(100.0)
    assert list(judge.closing()) == []
