"""One task per IKE SA: it owns the waiting for that SA's deadlines.

Strategy (the design card's "each IKE SA's rekey and dead-peer detection in a
task of its own"): the core decides every deadline; a :class:`SaRunners`
task per SA sleeps until its SA's ``get_timer()``, or until poked because a
message changed it, then asks the engine to run that SA's timer alone.  The
tasks sleep in :class:`~responder.server.alarms.Alarms` (one timer for all
of them) rather than in a cancel scope each: about 1 KiB less per SA held.  The
tasks live in the engine's **SA nursery**, never under a connection: an IKE
SA outlives the connection it came on (RFC 9329 §6.1, §10, rows A26, A28).
A task ends when its SA closes, and the runner forgets the SA then, so what
an SA holds in the shell is released with it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import attrs
import trio

from responder.core.errors import LocalError
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.server.alarms import Alarms, Sleeper
from responder.server.logs import spis

__all__ = ["SaRunners"]

logger = logging.getLogger("responder.server.engine")
#: One name shared by every SA's task (trio would make a string per task; the SPI is in the logs).
_TASK_NAME = "ike-sa"


@attrs.define(eq=False, slots=True)
class _Runner(Sleeper):
    """One SA's task: it sleeps in the runners' :class:`Alarms` until its SA's deadline or a poke."""

    sa: IkeSa
    spawned: bool = False


@attrs.define(eq=False)
class SaRunners:
    """The per-SA tasks of one engine.

    ``run_timer(local_spi, now)`` runs one SA's timer in the core (the engine
    wraps it so nothing escapes); ``alive(sa)`` says whether the core still
    holds the SA.
    """

    run_timer: Callable[[bytes, float], None]
    alive: Callable[[IkeSa], bool]
    _runners: dict[bytes, _Runner] = attrs.field(init=False, factory=dict)  # our SPI -> its runner
    _nursery: trio.Nursery | None = attrs.field(init=False, default=None)
    _alarms: Alarms = attrs.field(init=False, factory=Alarms)

    def __len__(self) -> int:
        """Runners whose task is running."""
        return sum(1 for runner in self._runners.values() if runner.spawned)

    def sa(self, local_spi: bytes) -> IkeSa | None:
        """The SA a runner holds (also just after it closed, until its task ends)."""
        runner = self._runners.get(local_spi)
        return runner.sa if runner is not None else None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the SA nursery until cancelled."""
        if self._nursery is not None:
            raise LocalError("the SA runners are already running")
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._alarms.run, name="ike-sa-alarms")
            try:
                for runner in list(self._runners.values()):
                    self._spawn(runner)
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def start(self, sa: IkeSa) -> None:
        """A new SA: its task starts now (or when :meth:`run` starts)."""
        runner = _Runner(sa)
        self._runners[sa.local_spi] = runner
        self._spawn(runner)

    def poke(self, local_spi: bytes) -> None:
        """The SA's deadline may have changed: its task's alarm moves with it.

        The task is not woken for that (the usual case, a message from the peer putting its
        liveness check off, would otherwise cost a wakeup per message, issue 14): it sleeps on
        until the SA's current deadline.  No deadline (the SA closed, or has nothing pending)
        wakes it, so that a closed SA's task ends.
        """
        runner = self._runners.get(local_spi)
        if runner is None or not runner.sleeping:
            return  # a task that is not asleep reads the SA's timer before it sleeps
        deadline = runner.sa.get_timer()
        if deadline is None:
            self._alarms.wake(runner)
        else:
            self._alarms.move(runner, deadline)

    def _spawn(self, runner: _Runner) -> None:
        if self._nursery is not None and not runner.spawned:
            runner.spawned = True
            self._nursery.start_soon(self._run_sa, runner, name=_TASK_NAME)

    async def _run_sa(self, runner: _Runner) -> None:
        sa = runner.sa
        try:
            deadline = sa.get_timer()
            while sa.state is not IkeSaState.CLOSED and self.alive(sa):
                await self._alarms.sleep_until(runner, math.inf if deadline is None else deadline)
                due = sa.get_timer()  # it may have changed while we slept
                now = trio.current_time()
                if due is None or now < due:
                    deadline = due  # woken for a close, or nothing due yet: sleep until the current one
                    continue
                self.run_timer(sa.local_spi, now)
                deadline = sa.get_timer()
                if deadline == due:  # None once closed, so this SA is still open
                    logger.error("%s timer did not advance; waiting 1 s", spis(sa.spi_i, sa.spi_r))
                    await trio.sleep(1.0)
                    deadline = sa.get_timer()
        finally:
            if self._runners.get(sa.local_spi) is runner:
                del self._runners[sa.local_spi]
