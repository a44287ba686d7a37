"""A statement's turns at the SQL workers, fair between clients (`sql.fair_gate`).

A statement waits for its client's turn, then runs in a worker from the event loop (`Sandbox.prefetch`), which
keeps its outcome for the step to read. A turn that turns slow on the last worker not running a slow statement is
demoted: the statement is stopped and asked again; after two demotions the last turn runs to its end wherever it
is granted. A stopped statement that answered its stop counts as the CPU time it cost its worker (a busy machine
stretches a cheap one's wall time past QUICK_S; its client asks again as the quick client it is), one that had to
be killed as the time it held its turn (its client asks again as a slow one). A step given up on the way
(`step_bound`: its bound passed, or its requester left, on a socket or over HTTP) stops its statement in its
worker, and the turn lasts until the worker is free again. Every phase is summed in the process's statement ledger
(`sql.ledger`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from metric_tracker_rl.serving.step_bound import step_given_up
from metric_tracker_rl.sql import ledger
from metric_tracker_rl.sql.pool import CLIENT, STOPPED_CPU, gate

DEMOTED_TURNS = 2  # turns that may be demoted before the last one, which runs to its end


class Waited:
    """The seconds a statement has waited for its turns so far (read when its step is given up)."""

    def __init__(self) -> None:
        self.seconds = 0.0


async def run_in_turns(sandbox: Any, sql: str, offset: int, limit: int, waited: Waited) -> None:
    """Run the statement in its client's turns until it runs to its end; its outcome is the sandbox's to read."""
    for _ in range(DEMOTED_TURNS):
        if await _turn(sandbox, sql, offset, limit, waited, may_demote=True):
            return
    await _turn(sandbox, sql, offset, limit, waited, may_demote=False)


async def _turn(sandbox: Any, sql: str, offset: int, limit: int, waited: Waited, may_demote: bool) -> bool:
    """One turn: whether the statement ran to its end (False: demoted, and stopped)."""
    asked = time.monotonic()
    async with gate().turn(CLIENT.get()) as turn:
        granted = time.monotonic()
        waited.seconds += granted - asked
        ledger.record(gate_wait_s=granted - asked)
        stopped: list[float] = []  # the CPU its statement cost, if it is stopped (`STOPPED_CPU`)
        token = STOPPED_CPU.set(stopped)
        running = asyncio.ensure_future(sandbox.prefetch(sql, offset, limit))  # in a copy of this context
        STOPPED_CPU.reset(token)
        demoted = asyncio.ensure_future(turn.demoted.wait() if may_demote else asyncio.Event().wait())
        try:
            await asyncio.wait({running, demoted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            demoted.cancel()
            if not running.done():
                running.cancel()  # demoted, or the step given up: the statement is stopped in its worker
                try:
                    await running  # until its worker is free again
                except asyncio.CancelledError:
                    if not running.done() or step_given_up():
                        raise  # the step was given up while its demoted statement stopped: it ends here
                finally:
                    ledger.record(reruns=1, rerun_s=time.monotonic() - granted)
                    if stopped:  # it answered its stop: its CPU time, not the wall time a busy machine stretched
                        turn.seconds = sum(stopped)
        if running.done() and not running.cancelled():
            turn.seconds = running.result()
            return True
        return False
