"""SQL workers killed from outside (the OOM killer, an operator) while they start: the pool starts another at once
and a statement waits for it, so a victim's query is answered rather than refused; a worker that fails on its own
(it exits with an error before it is ready) is still backed off, and a statement is told at once to retry."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from sql_helpers import CHEAP, kill_new_workers, sql_step

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql import pool as sql_pool
from metric_tracker_rl.sql import worker_process
from metric_tracker_rl.sql.pool import SqlPool
from metric_tracker_rl.sql.sandbox import NOT_READY_MESSAGE
from metric_tracker_rl.sql.worker_process import WorkerProcess

# Real SQL worker processes, killed and started again on timers: the whole suite's, not the edit loop's.
pytestmark = pytest.mark.slow


@pytest.fixture
def own_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlPool]:
    fresh = SqlPool(size=2)
    monkeypatch.setattr(sql_pool, "_POOL", fresh)
    try:
        yield fresh
    finally:
        fresh.close()


@pytest.fixture
def env() -> Iterator[MetricTrackerRlEnvironment]:
    environment = MetricTrackerRlEnvironment()
    environment.reset(seed=3, difficulty="easy", max_steps=400)
    try:
        yield environment
    finally:
        environment.close()


def ended_worker(command: list[str], end: signal.Signals | None) -> WorkerProcess:
    """A worker object over a real process running `command`, ended by `end` (or on its own), once reaped."""
    worker = WorkerProcess.__new__(WorkerProcess)
    worker.process = subprocess.Popen(command)
    if end is not None:
        time.sleep(0.2)
        os.kill(worker.process.pid, end)
    worker.process.wait(timeout=30)
    return worker


@pytest.mark.parametrize(
    ("command", "end", "outside"),
    [
        (["sleep", "30"], signal.SIGKILL, True),
        (["sleep", "30"], signal.SIGTERM, True),
        ([sys.executable, "-c", "import sys; sys.exit(3)"], None, False),
        ([sys.executable, "-c", "import os; os.abort()"], None, False),
    ],
)
def test_only_a_signal_from_outside_counts_as_killed_from_outside(
    command: list[str], end: signal.Signals | None, outside: bool
) -> None:
    assert ended_worker(command, end).killed_from_outside() is outside


def test_workers_killed_while_they_start_are_restarted_at_once_and_statements_wait_for_them(
    own_pool: SqlPool, env: MetricTrackerRlEnvironment
) -> None:
    """Every new worker is SIGKILLed as it appears, eight times over: the statements asked meanwhile wait and
    are answered, none is refused, and the pool never backs off (it took 0.25 + 0.5 + ... s before)."""
    killed: list[int] = []
    killer = threading.Thread(target=lambda: killed.extend(kill_new_workers(own_pool.worker_pids, 8)))
    killer.start()
    began = time.monotonic()
    answers = [sql_step(env) for _ in range(3)]
    killer.join()
    assert len(killed) == 8
    assert [answer.status for answer in answers] == ["ok"] * 3, answers[0].message
    assert answers[0].analysis_result["rows"] == [{"n": 28}]
    assert own_pool.start_failures == 0 and own_pool.replaced >= 8
    assert time.monotonic() - began < sql_pool.START_TIMEOUT_S


def test_a_statement_on_the_event_loop_waits_for_a_worker_killed_while_it_started(
    own_pool: SqlPool, env: MetricTrackerRlEnvironment
) -> None:
    killer = threading.Thread(target=kill_new_workers, args=(own_pool.worker_pids, 4))
    killer.start()
    action = MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": CHEAP})
    answer = asyncio.run(env.step_async(action))
    killer.join()
    assert answer.status == "ok", answer.message
    assert own_pool.start_failures == 0


def test_a_worker_that_fails_on_its_own_is_backed_off_and_a_statement_is_told_at_once_to_retry(
    own_pool: SqlPool, env: MetricTrackerRlEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that cannot start (here: its module is missing, so it exits with an error) is not restarted in a
    loop, and a statement does not wait the start timeout for it; once it can start again, SQL comes back."""
    monkeypatch.setattr(worker_process, "WORKER_MODULE", "metric_tracker_rl.sql.no_such_worker")
    began = time.monotonic()
    refused = sql_step(env)
    assert refused.status == "error" and NOT_READY_MESSAGE in refused.message
    assert time.monotonic() - began < 20  # told once the starts failed, not after START_TIMEOUT_S
    time.sleep(1.0)
    failures = own_pool.start_failures
    assert 2 <= failures <= 8, failures  # backed off: 0.25 s, then 0.5 s, ... between starts of each worker
    monkeypatch.setattr(worker_process, "WORKER_MODULE", "metric_tracker_rl.sql.worker")
    deadline = time.monotonic() + 60
    while (answer := sql_step(env)).status != "ok":
        assert NOT_READY_MESSAGE in answer.message and time.monotonic() < deadline
        time.sleep(0.1)
    assert own_pool.start_failures == 0


# --- a kill on the event loop's side ----------------------------------------------------------------------------


def test_a_kill_waits_for_no_exit_on_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's exit can take the kernel a while (it frees gigabytes): the kill returns at once and the process
    is reaped on a thread, so the loop goes on serving every other client meanwhile (it used to wait for the
    exit, half a second a kill under load)."""
    worker = WorkerProcess()
    reaped = threading.Event()
    real_wait = worker.process.wait

    def slow_wait(timeout: float | None = None) -> int:
        time.sleep(1.0)  # an exit that takes the kernel a second
        status = real_wait(timeout)
        reaped.set()
        return status

    monkeypatch.setattr(worker.process, "wait", slow_wait)

    async def scenario() -> float:
        began = time.monotonic()
        worker.kill()
        return time.monotonic() - began

    blocked_s = asyncio.run(scenario())
    assert blocked_s < 0.2 and not worker.alive
    assert reaped.wait(10)


def test_a_worker_killed_from_another_thread_is_unwatched_before_its_pipe_closes() -> None:
    """A worker killed while the loop waits for its reply: the loop's wait ends at once with WorkerFailed, and its
    reader is removed before the pipe closes, so a socket that takes the pipe's descriptor number is the loop's to
    watch (the kill path used to leave the reader on a number a client's socket then held: `File descriptor N is
    used by transport`)."""
    worker = WorkerProcess()
    worker.wait_ready()
    errors: list[dict[str, object]] = []

    async def scenario() -> tuple[type[BaseException] | None, float, bytes]:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        waiting = asyncio.ensure_future(worker.reply_async(60.0, worker.cpu_seconds()))
        await asyncio.sleep(0.05)
        began = time.monotonic()
        threading.Thread(target=worker.kill).start()
        failure: type[BaseException] | None = None
        try:
            await asyncio.wait_for(waiting, 5)
        except worker_process.WorkerFailed as exc:
            failure = type(exc)
        ended_s = time.monotonic() - began

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello\n")
        answer = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        server.close()
        await server.wait_closed()
        return failure, ended_s, answer

    failure, ended_s, answer = asyncio.run(scenario())
    assert failure is worker_process.WorkerFailed and ended_s < 1.0
    assert answer == b"hello\n" and not errors
