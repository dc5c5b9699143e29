"""Lab impairments over real sockets, seen by the project's client (issue 13).

The responder runs in-process (:func:`responder.testing.open_lab`) with impairments in its
configuration; :func:`responder.client.establish` is the initiator.  What each test asserts is what
that initiator saw: its retransmission answered (UDP), the connection closed under it (TCP,
RFC 9329 §6.1), and the start-up warnings that name every impairment.
"""

from __future__ import annotations

import logging

import pytest
import trio

from responder.core.config import Config, Impairments, Secret
from responder.core.events import MessageDropped, RetransmissionAnswered
from responder.core.path import Transport
from responder.testing import LAB_PSK, open_lab


def lab_config(**settings: object) -> Config:
    impair = Impairments()
    for name, value in settings.items():
        impair = impair.with_setting(name, value)
    return Config(any_id_psk=Secret.parse(LAB_PSK), impair=impair)


async def test_a_dropped_ike_auth_response_costs_the_client_one_retransmission() -> None:
    with trio.fail_after(20):
        async with open_lab(transports=(Transport.UDP,), config=lab_config(drop_response=1)) as lab:
            started = trio.current_time()
            async with await lab.client(Transport.UDP) as client:
                assert client.established and client.reason is None
                assert trio.current_time() - started >= 1.0  # RFC 7296 §2.1: it waited, then resent
                [answered] = lab.recorder.of(RetransmissionAnswered)
                assert answered.message_id == 1  # type: ignore[attr-defined]


async def test_a_corrupted_icv_is_dropped_by_the_client_which_then_gets_a_clean_copy() -> None:
    with trio.fail_after(20):
        async with (
            open_lab(transports=(Transport.UDP,), config=lab_config(corrupt_icv=1)) as lab,
            await lab.client(Transport.UDP) as client,
        ):
            assert client.established
            dropped = [e for e in client.events if isinstance(e, MessageDropped)]
            assert [e.reason for e in dropped] == ["IKE_AUTH: AEAD tag does not verify"]


async def test_tcp_close_after_the_client_sees_the_connection_close() -> None:
    """RFC 9329 §6.1: the responder closes the connection after IKE_AUTH; the client's IKE SA is up,
    and its next request finds the connection closed (the SA itself stays on the responder)."""
    with trio.fail_after(20):
        async with (
            open_lab(transports=(Transport.TCP,), config=lab_config(tcp_close_after=1)) as lab,
            await lab.client(Transport.TCP) as client,
        ):
            assert client.established
            assert not await client.liveness_check(timeout=5)
            # The close is seen as an end of stream, or as a reset if the request was written first.
            assert client.reason is not None
            assert client.reason == "the responder closed the connection" or client.reason.startswith(
                "connection broken"
            )
            assert lab.engine.sa(client.spi_r) is not None  # kept for a new connection


async def test_every_impairment_is_named_in_one_warning_at_start(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "responder.server.serve")
    config = lab_config(force_cookie=True, refuse_child=True, duplicate_response=2)
    with trio.fail_after(20):
        async with (
            open_lab(transports=(Transport.TCP,), config=config) as lab,
            await lab.client(Transport.TCP) as client,
        ):
            assert client.established and client.child_sas == []  # refuse_child
    lines = [r.getMessage() for r in caplog.records if "IMPAIRMENT ACTIVE" in r.getMessage()]
    assert [line.split(": ")[1] for line in lines] == ["force_cookie", "duplicate_response=2", "refuse_child"]
    assert all(r.levelno == logging.WARNING for r in caplog.records if "IMPAIRMENT" in r.getMessage())
