"""SaRunners: one task per IKE SA, asleep until its SA's deadline (issue 14: pokes wake only when needed)."""

from __future__ import annotations

from typing import Any

import attrs
import trio
import trio.testing

from responder.core.ike_sa import IkeSaState
from responder.server.sa_runner import SaRunners


@attrs.define
class FakeSa:
    """What a runner reads of an IKE SA."""

    deadline: float | None
    local_spi: bytes = b"\x01" * 8
    spi_i: bytes = b"\x02" * 8
    spi_r: bytes = b"\x01" * 8
    state: IkeSaState = IkeSaState.ESTABLISHED

    def get_timer(self) -> float | None:
        return None if self.state is IkeSaState.CLOSED else self.deadline


async def test_a_poke_moves_the_alarm_without_a_wakeup(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ran: list[float] = []
    sa = FakeSa(deadline=100.0)

    def run_timer(local_spi: bytes, now: float) -> None:
        ran.append(now)
        sa.deadline = now + 100.0

    runners = SaRunners(run_timer, lambda _: True)
    sa_any: Any = sa
    async with trio.open_nursery() as nursery:
        await nursery.start(runners.run)
        runners.start(sa_any)
        await trio.testing.wait_all_tasks_blocked()
        (runner,) = runners._runners.values()
        assert runner.sleeping and runner.until == 100.0

        sa.deadline = 150.0  # later (a message put the liveness check off): the alarm moves
        runners.poke(sa.local_spi)
        assert runner.sleeping and runner.until == 150.0
        await trio.sleep(120.0 - trio.current_time())
        assert ran == [] and runner.sleeping and runner.until == 150.0  # not woken at 100

        sa.deadline = 130.0  # sooner: the alarm moves back, still without a wakeup
        runners.poke(sa.local_spi)
        assert runner.sleeping and runner.until == 130.0
        await trio.sleep(200.0 - trio.current_time())
        assert ran == [130.0]
        assert runner.until == 230.0

        sa.state = IkeSaState.CLOSED  # no deadline: the task wakes and ends
        runners.poke(sa.local_spi)
        await trio.testing.wait_all_tasks_blocked()
        assert len(runners) == 0 and runners.sa(sa.local_spi) is None
        assert trio.current_time() == 200.0
        nursery.cancel_scope.cancel()
