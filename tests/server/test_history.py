"""The web console's History: ladders built from the core's events, and their bounds (no I/O)."""

from __future__ import annotations

import itertools
from ipaddress import ip_address

from responder.core.enums import ExchangeType, NotifyType
from responder.core.events import (
    ChildSaRefused,
    IkeSaClosed,
    IkeSaEstablished,
    IkeSaInitRefused,
    MessageAccepted,
    MessageSent,
    RequestAnswered,
    ResponseReceived,
)
from responder.core.keys import IkeSaKeys
from responder.core.path import Path, Transport
from responder.server.history import REFUSALS_MAX, History

PATH = Path(Transport.TCP, ip_address("192.0.2.2"), 4500, ip_address("192.0.2.1"), 40001, connection=3)
SPI_I = bytes.fromhex("0102030405060708")
KEYS = IkeSaKeys(*(b"k" * 32 for _ in range(7)))


def spi(number: int) -> bytes:
    return number.to_bytes(8, "big")


def history(**options: object) -> History:
    ticks = itertools.count(1000)
    return History(clock=lambda: float(next(ticks)), **options)  # type: ignore[arg-type]


def accepted(local: bytes, exchange: ExchangeType, message_id: int, *payloads: str) -> MessageAccepted:
    return MessageAccepted(local, SPI_I, local, exchange, message_id, False, payloads)


def sent(local: bytes, exchange: ExchangeType, message_id: int, *payloads: str) -> MessageSent:
    return MessageSent(local, SPI_I, local, exchange, message_id, True, payloads)


def established(local: bytes) -> IkeSaEstablished:
    return IkeSaEstablished(local, SPI_I, local, "me", "alice", "aes256gcm16", "AES_GCM_16-256", None, KEYS)


def handshake(recorder: History, local: bytes) -> None:
    recorder.observe(accepted(local, ExchangeType.IKE_SA_INIT, 0, "SA", "KE", "No"), PATH)
    recorder.observe(sent(local, ExchangeType.IKE_SA_INIT, 0, "SA", "KE", "No"), PATH)
    recorder.observe(accepted(local, ExchangeType.IKE_AUTH, 1, "IDi", "AUTH", "N(INITIAL_CONTACT)"), PATH)
    recorder.observe(
        RequestAnswered(local, SPI_I, local, ExchangeType.IKE_AUTH, 1, "IKE SA established"), PATH
    )
    recorder.observe(established(local), PATH)
    recorder.observe(sent(local, ExchangeType.IKE_AUTH, 1, "IDr", "AUTH"), PATH)


def test_a_ladder_has_each_message_both_ways_with_payloads_and_the_answer_on_its_response() -> None:
    recorder = history()
    handshake(recorder, spi(1))
    record = recorder.record(spi(1))
    assert record is not None
    ladder = record.ladder()
    assert ladder["peer"] == "tcp 192.0.2.1:40001 conn 3"
    assert ladder["peer_id"] == "alice" and ladder["established"] and ladder["closed"] is None
    rows = ladder["rows"]
    messages = [
        (r["direction"], r["exchange"], r["message_id"], r["response"])
        for r in rows
        if r["kind"] == "message"
    ]
    assert messages == [
        ("in", "IKE_SA_INIT", 0, False),
        ("out", "IKE_SA_INIT", 0, True),
        ("in", "IKE_AUTH", 1, False),
        ("out", "IKE_AUTH", 1, True),
    ]
    assert rows[2]["payloads"] == ["IDi", "AUTH", "N(INITIAL_CONTACT)"]  # notifies by type
    # RequestAnswered comes before the response is sent: its result lands on that response.
    assert rows[-1]["result"] == "IKE SA established" and "result" not in rows[2]
    notes = [r for r in rows if r["kind"] == "note"]
    assert [n["event"] for n in notes] == ["IkeSaEstablished"]
    assert "'alice'" in notes[0]["text"] and "aes256gcm16" in notes[0]["text"]
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)


def test_our_requests_get_the_peers_answer_and_refusals_are_notes() -> None:
    recorder = history()
    handshake(recorder, spi(1))
    request = MessageSent(spi(1), SPI_I, spi(1), ExchangeType.CREATE_CHILD_SA, 0, False, ("SA", "Ni", "TSi"))
    response = MessageAccepted(
        spi(1), SPI_I, spi(1), ExchangeType.CREATE_CHILD_SA, 0, True, ("N(NO_PROPOSAL_CHOSEN)",)
    )
    recorder.observe(request, PATH)
    recorder.observe(response, PATH)
    recorder.observe(
        ResponseReceived(spi(1), SPI_I, spi(1), ExchangeType.CREATE_CHILD_SA, 0, "refused"), PATH
    )
    recorder.observe(
        ChildSaRefused(spi(1), SPI_I, spi(1), NotifyType.NO_PROPOSAL_CHOSEN, "no ESP proposal"), PATH
    )
    record = recorder.record(spi(1))
    assert record is not None
    *_, answer, note = record.rows
    assert (answer["direction"], answer["response"], answer["result"]) == ("in", True, "refused")
    assert note["event"] == "ChildSaRefused"
    assert note["text"] == "Child SA refused with NO_PROPOSAL_CHOSEN: no ESP proposal"


def test_rows_per_sa_are_bounded_and_the_dropped_ones_counted() -> None:
    recorder = history(messages=3)
    handshake(recorder, spi(1))  # four messages and a note
    record = recorder.record(spi(1))
    assert record is not None
    assert len(record.rows) == 3 and record.rows_dropped == 2
    assert [r.get("exchange") for r in record.rows] == ["IKE_AUTH", None, "IKE_AUTH"]


def test_a_closed_sa_keeps_its_ladder_and_why_within_closed_kept() -> None:
    recorder = history(closed_kept=2)
    for number in (1, 2, 3):
        handshake(recorder, spi(number))
        recorder.observe(IkeSaClosed(spi(number), SPI_I, spi(number), "deleted by the peer"), PATH)
    assert [r.local_spi for r in recorder.closed_records()] == [spi(3), spi(2)]  # newest first
    assert recorder.record(spi(1)) is None
    record = recorder.record(spi(3))
    assert record is not None
    assert record.close_reason == "deleted by the peer" and record.closed is not None
    assert record.rows[-1]["text"] == "IKE SA closed: deleted by the peer"
    keep_none = history(closed_kept=0)
    handshake(keep_none, spi(1))
    keep_none.observe(IkeSaClosed(spi(1), SPI_I, spi(1), "expired"), PATH)
    assert keep_none.record(spi(1)) is None and list(keep_none.closed_records()) == []


def test_past_live_max_the_oldest_sa_that_never_authenticated_is_forgotten_first() -> None:
    recorder = history(live_max=3)
    handshake(recorder, spi(1))  # established
    recorder.observe(accepted(spi(2), ExchangeType.IKE_SA_INIT, 0, "SA"), PATH)  # half-open
    recorder.observe(accepted(spi(3), ExchangeType.IKE_SA_INIT, 0, "SA"), PATH)  # half-open
    recorder.observe(accepted(spi(4), ExchangeType.IKE_SA_INIT, 0, "SA"), PATH)
    assert recorder.record(spi(2)) is None and recorder.forgotten == 1
    assert all(recorder.record(spi(n)) is not None for n in (1, 3, 4))


def test_events_of_an_sa_never_seen_are_ignored() -> None:
    recorder = history()
    recorder.observe(IkeSaClosed(spi(9), SPI_I, spi(9), "expired"), PATH)
    assert recorder.record(spi(9)) is None and list(recorder.closed_records()) == []


def test_refused_ike_sa_init_requests_are_listed_newest_first_and_bounded() -> None:
    recorder = history()
    for number in range(REFUSALS_MAX + 5):
        refusal = IkeSaInitRefused(spi(number), NotifyType.NO_PROPOSAL_CHOSEN, f"refusal {number}")
        recorder.observe(refusal, PATH)
    refusals = recorder.refusals()
    assert len(refusals) == REFUSALS_MAX
    assert refusals[0] == {
        "time": refusals[0]["time"],
        "peer": "tcp 192.0.2.1:40001 conn 3",
        "spi_i": spi(REFUSALS_MAX + 4).hex(),
        "notify": "NO_PROPOSAL_CHOSEN",
        "reason": f"refusal {REFUSALS_MAX + 4}",
    }


def test_the_answer_to_a_delete_sent_after_the_sa_closed_joins_its_ladder() -> None:
    """The core reports IkeSaClosed before the response to the peer's Delete leaves."""
    recorder = history()
    handshake(recorder, spi(1))
    recorder.observe(accepted(spi(1), ExchangeType.INFORMATIONAL, 2, "D"), PATH)
    recorder.observe(
        RequestAnswered(spi(1), SPI_I, spi(1), ExchangeType.INFORMATIONAL, 2, "IKE SA deleted"), PATH
    )
    recorder.observe(IkeSaClosed(spi(1), SPI_I, spi(1), "deleted by the peer"), PATH)
    recorder.observe(MessageSent(spi(1), SPI_I, spi(1), ExchangeType.INFORMATIONAL, 2, True, ()), PATH)
    [record] = recorder.closed_records()
    assert record.rows[-1]["direction"] == "out" and record.rows[-1]["result"] == "IKE SA deleted"
    assert record.rows[-2]["text"] == "IKE SA closed: deleted by the peer"
    recorder.observe(IkeSaClosed(spi(1), SPI_I, spi(1), "again"), PATH)  # no second close
    assert record.close_reason == "deleted by the peer"
    assert recorder.live_count == 0
