"""The episode state machine: reset builds an episode, step runs a tool or grades a submission.

Agent mistakes (bad reset settings, unknown tools, bad arguments, malformed submissions) come back as
observations with status "error" that say what is valid; they never raise and never use a submission. A call refused
before anything ran uses no step either; one that ran uses its step, whatever it answered (docs/tools.md, "Which
calls cost a step").
"""

from __future__ import annotations

import asyncio
import atexit
import secrets
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import EnvironmentMetadata

from metric_tracker_rl import __version__
from metric_tracker_rl.analysis_tools import generate_rows, run_tool
from metric_tracker_rl.analysis_tools.sql import sandbox_of
from metric_tracker_rl.analysis_tools.tools.query import needs_sandbox, open_statement
from metric_tracker_rl.catalog.task_splits import TaskProviderMixin
from metric_tracker_rl.catalog.tasks import RESET_KEYS, resolve_episode_config
from metric_tracker_rl.catalog.tiers import COUNTS, TIERS
from metric_tracker_rl.catalog.validation import entity_names_of
from metric_tracker_rl.catalog.versions import is_published, versions_of
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.models import (
    MetricSubmissionRow,
    MetricTrackerRlAction,
    MetricTrackerRlObservation,
    MetricTrackerRlState,
)
from metric_tracker_rl.serving.mcp_surface import MCP_ACTIONS, McpToolSurface
from metric_tracker_rl.serving.memory_release import release_soon
from metric_tracker_rl.serving.report_step import (
    REFUSED,
    debug_payload,
    error_fields,
    grade_report,
    refused_fields,
    refused_report,
)
from metric_tracker_rl.serving.reset_facts import (
    INSTRUCTION,
    catalogs,
    episode_catalogs,
    instruction_for,
    published_facts,
    tier_methods,
)
from metric_tracker_rl.serving.reset_turns import TurnNotGiven, in_build_thread, reset_turns
from metric_tracker_rl.serving.rubric import SubmissionRubric
from metric_tracker_rl.serving.statement_turns import Waited, run_in_turns
from metric_tracker_rl.serving.step_bound import (
    OVERRUN_CODE,
    OVERRUN_REASON,
    GivenUp,
    step_bound_s,
    uncancelled,
    within_bound,
)
from metric_tracker_rl.sql import ledger
from metric_tracker_rl.sql.pool import CLIENT

# Analysis tools whose cost grows with the request: they take a worker thread (see step_async). A SQL query waits
# for a SQL worker process, up to its time limit, on threads of its own (metric_tracker_rl.sql.pool).
THREADED_TOOLS = frozenset({"payload_generator", "preview_submission", "query"})
SQL_TOOL = "query"
# Threads that release what a finished episode's tools opened (its SQL database), off the event loop.
_RELEASER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="episode-release")
# At exit, every release finishes before the SQL pool stops its workers (atexit runs this first: it is registered
# after the pool's own handler).
atexit.register(_RELEASER.shutdown, wait=True)
NO_EPISODE_OVER_HTTP = (
    "No active episode. Over HTTP every /step request gets a fresh environment (HTTP is stateless), so an "
    "episode needs the WebSocket session at /ws (MetricTrackerRlEnv in Python): send reset, then steps."
)
NO_EPISODE = (
    "No active episode in this session: it has not been reset. Send reset first. A session keeps its episode "
    "only while its connection stays open, so a new connection (also one opened again after a lost one) starts "
    "without an episode."
)
# True while the server runs a stateless HTTP /step request (set by metric_tracker_rl.serving.hardening): its
# environment was built for that one request, which is what a step without an episode then has to say.
STATELESS_STEP: ContextVar[bool] = ContextVar("stateless_step", default=False)


class MetricTrackerRlEnvironment(
    McpToolSurface,
    TaskProviderMixin,
    Environment[MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState],
):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, *, debug: bool = False, held_out_secret: str = "") -> None:
        """`debug` puts the ground truth in every observation (never in training); `held_out_secret` mixes a
        secret into every random stream so that episodes cannot be rebuilt from their seed (the server reads
        both from its settings once, at start-up)."""
        super().__init__()
        self.rubric: SubmissionRubric = SubmissionRubric()  # the grade's components, as OpenEnv's rubrics (rubric.py)
        self._debug = debug
        self._held_out_secret = held_out_secret.strip()
        self._episode: Episode | None = None
        self._episode_id: str | None = None
        self._steps = 0
        self._submissions = 0
        self._done = False
        self._last_score: float | None = None
        self._episode_score = 0.0  # best graded score so far = the sum of the episode's rewards
        self._released: Future[None] | None = None  # the release of the previous episode's resources
        self._methods_used: set[str] = set()  # analysis methods the episode ran successfully (the grader's due)
        # One step of a session at a time, however many a client sends at once: the step budget is counted and
        # spent inside, so concurrent calls never run more steps than the budget. The threading lock serves
        # threads that call `step`; the event loop's callers queue on an asyncio lock first, so the loop itself
        # never blocks on a step running in a thread.
        self._step_lock = threading.Lock()
        self._async_step_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._statement_waits = Waited()  # how long the running statement step has waited for SQL workers
        self._answered: tuple[int, MetricTrackerRlObservation] | None = None  # the last numbered step's answer

    # --- OpenEnv interface -------------------------------------------------------------------------

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> MetricTrackerRlObservation:
        try:
            if "secret" in kwargs:  # the server's own argument, never a client's: unknown like any other
                raise ValueError(f"unknown reset argument(s) secret; valid: {', '.join(RESET_KEYS)}")
            config = resolve_episode_config(seed=seed, secret=self._episode_secret(), **kwargs)
            episode = build_episode(config)
        except ValueError as exc:
            return self._reset_failed(str(exc), "reset with valid settings to start one")
        if self._episode is not None and self._episode.public.holds_resources():
            # The old episode's SQL database: destroying one takes 10-40 ms, which reset (on the event loop)
            # leaves to a release thread.
            self._released = _RELEASER.submit(self._episode.public.close)
            self._released.add_done_callback(lambda _: release_soon())  # what it freed goes back to the system
        elif self._episode is not None:
            release_soon()
        self._episode, self._episode_id = episode, episode_id or str(uuid.uuid4())
        self._steps = self._submissions = 0
        self._done, self._last_score, self._episode_score = False, None, 0.0
        self._methods_used = set()
        self._answered = None
        self.rubric.reset()
        return self._observation(
            status="ready",
            reward=None,
            message=f"Episode ready: {episode.public.task['objective']}",
            instruction=instruction_for(config.difficulty, config.tier.repaired_values),
            config=episode.public.task["config"],
            **published_facts(episode),
            **episode_catalogs(config.tier),
            available_methods=tier_methods(config.difficulty),
        )

    def _reset_failed(self, why: str, retry: str) -> MetricTrackerRlObservation:
        """A reset that built nothing. A running episode is left as it was, and the observation shows its true
        budgets; with none running (none yet, or the last one over), no budget is left: the observation says so."""
        if self._episode is None or self._done:
            over = "" if self._episode is None else " (the last one is over)"
            return MetricTrackerRlObservation(
                status="error",
                reward=0.0,
                done=False,
                message=f"reset failed: {why} No episode is active{over}: {retry}.",
                available_tasks=catalogs()["available_tasks"],
            )
        return self._observation(
            status="error",
            reward=0.0,
            message=f"reset failed: {why} The current episode is unchanged and goes on (its budgets below).",
            available_tasks=catalogs()["available_tasks"],
        )

    async def reset_async(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> MetricTrackerRlObservation:
        """Both transports await this: the episode is built on a thread, in its client's turn (`reset_turns`,
        weighed by what the reset asks to build, in the lane of its kind's cost), after the session's running step.
        A reset whose build has not started within the step bound is answered so, and leaves the queue."""
        kind = f"{kwargs.get('difficulty')}/{kwargs.get('task_id')}"[:200]  # what decides a build's cost
        async with self._session_turn():
            try:
                async with reset_turns().turn(CLIENT.get(), kind, wait_s=step_bound_s()) as lane_thread:
                    return await in_build_thread(self.reset, seed, episode_id, executor=lane_thread, **kwargs)
            except TurnNotGiven as refused:
                return self._reset_failed(str(refused), "send the reset again to start one")

    def _episode_secret(self) -> str:
        """What the next episode's random streams mix in: nothing in open mode; in held-out mode the server's secret
        and a fresh nonce, so each reset draws a new episode of the same settings. Graded feedback on one reset
        (which rows matched) then says nothing about the episode any other reset of those settings gives."""
        if not self._held_out_secret:
            return ""
        return f"{self._held_out_secret}\n{secrets.token_hex(16)}"

    def step(
        self, action: MetricTrackerRlAction, timeout_s: float | None = None, **kwargs: Any
    ) -> MetricTrackerRlObservation:
        if isinstance(action, MCP_ACTIONS):  # MCP tool discovery and calls (metric_tracker_rl.serving.mcp_surface)
            return self.mcp_step(action)
        with self._step_lock:
            answered = self._answered
            if action.step_id is not None and answered is not None and answered[0] == action.step_id:
                return answered[1]  # sent again after a lost connection: its answer, not a second run
            observation = self._step_alone(action)
            if action.step_id is not None:
                self._answered = (action.step_id, observation)
            return observation

    def _step_alone(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        """One step, with no other step of this session running (the caller holds the step lock)."""
        if self._episode is None:
            return MetricTrackerRlObservation(
                status="error",
                reward=0.0,
                done=False,
                instruction=INSTRUCTION,
                message=NO_EPISODE_OVER_HTTP if STATELESS_STEP.get() else NO_EPISODE,
            )
        if self._done:
            return self._observation(
                status="error", reward=0.0, message="The episode is over; call reset to start a new one."
            )
        fields = self._act(action)
        if fields.pop(REFUSED, False):
            return self._observation(**fields)  # nothing ran: no step used
        self._steps += 1
        if not self._done and self._steps >= self._episode.config.max_steps:
            self._done = True
            fields["truncated"] = True
            fields["message"] += " Step budget spent: the episode is cut off before a report was graded."
        observation = self._observation(**fields)
        if observation.status == "graded":
            self.rubric(action, observation)
        return observation

    async def step_async(
        self, action: MetricTrackerRlAction, timeout_s: float | None = None, **kwargs: Any
    ) -> MetricTrackerRlObservation:
        """The WebSocket endpoint awaits this. An analysis call is a fraction of a millisecond of CPU work, less
        than handing it to a worker thread costs (and with the GIL, threads add no parallelism), so it runs on
        the event loop. Calls whose cost grows with the request (submissions, merged generator calls, previews
        of up to 200 rows) run on a worker thread so they never hold up other sessions. A step that can wait (a
        statement, or any step queued behind this session's running one) answers within the server's step bound
        and ends with its connection (`step_bound`)."""
        if isinstance(action, MCP_ACTIONS):  # MCP tool discovery and calls (metric_tracker_rl.serving.mcp_surface)
            return await self.mcp_step_async(action)
        if action.analysis_method != SQL_TOOL and not self._session_turn().locked():
            async with self._session_turn():
                return await self._step_async_alone(action, timeout_s, **kwargs)
        outcome = await within_bound(self._step_in_turn(action, timeout_s, **kwargs), step_bound_s())
        return self._given_up(outcome) if isinstance(outcome, GivenUp) else outcome

    async def _step_in_turn(
        self, action: MetricTrackerRlAction, timeout_s: float | None, **kwargs: Any
    ) -> MetricTrackerRlObservation:
        async with self._session_turn():
            return await self._step_async_alone(action, timeout_s, **kwargs)

    def _session_turn(self) -> asyncio.Lock:
        """The asyncio lock that queues this session's steps on the running event loop (made for the loop that
        first needs it: an in-process user may drive one environment from successive loops)."""
        loop = asyncio.get_running_loop()
        if self._async_step_lock is None or self._async_step_lock[0] is not loop:
            self._async_step_lock = (loop, asyncio.Lock())
        return self._async_step_lock[1]

    async def _step_async_alone(
        self, action: MetricTrackerRlAction, timeout_s: float | None, **kwargs: Any
    ) -> MetricTrackerRlObservation:
        answered = self._answered
        if action.step_id is not None and answered is not None and answered[0] == action.step_id:
            return answered[1]  # sent again after a lost connection (see `step`): not run a second time
        # Unknown tools, invalid arguments and mixed actions end in a cheap error observation: inline too.
        if action.analysis_method is not None and action.analysis_method not in THREADED_TOOLS:
            return self.step(action, timeout_s=timeout_s, **kwargs)
        if action.analysis_method == SQL_TOOL and self._episode is not None and not self._done:
            return await self._statement_step(action, timeout_s, **kwargs)
        # Cheap and bounded by its own work; once on its thread it finishes, and a step given up meanwhile answers it.
        return await uncancelled(asyncio.to_thread(self.step, action, timeout_s=timeout_s, **kwargs))

    async def _statement_step(
        self, action: MetricTrackerRlAction, timeout_s: float | None, **kwargs: Any
    ) -> MetricTrackerRlObservation:
        """A statement waits for its client's turn at the SQL workers (sql.fair_gate): one client's slow queries
        hold up neither another client's nor anyone's submissions. The event loop awaits the worker's reply, then
        the step reads it (cheap work, on the loop like any analysis call). An episode's first statement opens its
        sandbox (building its tables) on a thread first. Until the reply is read nothing of the step has happened,
        so a step given up on the way (`step_bound`) leaves the episode as it was."""
        episode, began = self._playing, time.monotonic()
        statement = open_statement(episode.public, action.analysis_args)
        if statement is None and needs_sandbox(episode.public, action.analysis_args):
            await asyncio.to_thread(sandbox_of, episode.public)
            ledger.record(sandbox_open_s=time.monotonic() - began)
            statement = open_statement(episode.public, action.analysis_args)
        if statement is None:  # arguments the tool refuses: its error, inline
            return self.step(action, timeout_s=timeout_s, **kwargs)
        sandbox, sql, offset, limit = statement
        self._statement_waits = Waited()
        try:
            await run_in_turns(sandbox, sql, offset, limit, self._statement_waits)
        finally:
            ledger.record(statements=1, step_s=time.monotonic() - began)
        return self.step(action, timeout_s=timeout_s, **kwargs)

    def _given_up(self, outcome: GivenUp) -> MetricTrackerRlObservation:
        """What a step the server gave up answers: why, and that nothing was used. (A closed connection reads
        nothing; the observation is built all the same for the transport to drop.)"""
        seconds = self._statement_waits.seconds
        waited = f" It waited {seconds:.0f} s of that for a SQL worker." if seconds else ""
        message = (
            f"This step was not run: the server could not finish it within its step time bound of "
            f"{outcome.bound_s:g} s (STEP_TIMEOUT_S) because it is busy.{waited} No step was used and the "
            "episode goes on: send the step again, or a cheaper statement (filter or aggregate earlier)."
        )
        if outcome.reason == "overrun":
            message = (
                f"This step was not run: {OVERRUN_REASON}, so the server closes this connection (code "
                f"{OVERRUN_CODE}) and drops what was sent ahead. No step was used; the episode ends with the "
                "connection. Send a message once the previous one is answered."
            )
        if self._episode is None:
            return MetricTrackerRlObservation(status="error", reward=0.0, done=False, message=message)
        return self._observation(**error_fields(message))

    def close(self) -> None:
        """OpenEnv calls this when the session ends: release what the episode's tools opened, and soon the
        memory the session freed."""
        if self._episode is not None:
            self._episode.public.close()
            release_soon()

    @property
    def _playing(self) -> Episode:
        """The episode a step acts on (a step without one is answered before it gets here)."""
        if self._episode is None:
            raise RuntimeError("no episode: reset first")
        return self._episode

    @property
    def has_episode(self) -> bool:
        """Whether a reset has built an episode (cheaper than reading `state`, which MCP calls ask each time)."""
        return self._episode is not None

    @property
    def episode_difficulty(self) -> str | None:
        """The current episode's tier (None before a reset): MCP's tools/list offers its tools."""
        return self._episode.config.difficulty if self._episode is not None else None

    @property
    def expected_row_count(self) -> int | None:
        """How many incidents the current episode holds (for repository tools such as the calibration; agents
        never see it before their report is graded)."""
        return len(self._episode.truth.expected_rows) if self._episode else None

    @property
    def state(self) -> MetricTrackerRlState:
        return MetricTrackerRlState(
            episode_id=self._episode_id,
            step_count=self._steps,
            task_id=self._episode.config.task_id if self._episode else None,
            submissions_used=self._submissions,
            done=self._done,
            last_score=self._last_score,
            episode_score=self._episode_score if self._episode else None,
        )

    def get_metadata(self) -> EnvironmentMetadata:
        held_out = "on" if self._held_out_secret else "off"
        return EnvironmentMetadata(
            name="metric_tracker_rl",
            description="Investigate a seeded synthetic product funnel with read-only analysis tools and submit "
            "an anomaly report that a deterministic grader scores. "
            f"Held-out mode: {held_out} (when on, episodes cannot be rebuilt from their seed with the "
            f"public package). {tier_versions_text()}",
            version=__version__,
        )

    # --- internals -----------------------------------------------------------------------------------

    def _act(self, action: MetricTrackerRlAction) -> dict[str, Any]:
        """The observation fields of one step (the observation is built once, when the step is complete)."""
        method, classifications, generators = action.analysis_method, action.classifications, action.payload_generators
        if method is not None and classifications is None and generators is None:
            return self._analysis(method, action.analysis_args)
        modes = [
            name
            for name, value in (
                ("analysis_method", method),
                ("classifications", classifications),
                ("payload_generators", generators),
            )
            if value is not None
        ]
        if len(modes) != 1:
            found = ", ".join(modes) if modes else "none"
            return refused_fields(
                f"An action needs exactly one of analysis_method, classifications or payload_generators "
                f"(found: {found}). Use classifications=[] to submit an empty report."
            )
        if classifications is not None:
            with entity_names_of(self._playing.config.difficulty):
                return self._submit(list(classifications), generated=False)
        if COUNTS not in self._playing.public.holds:  # the generators read counts
            return refused_fields(
                "Generator calls read the count tables, which this episode does not have (its data are "
                "raw events): submit rows (classifications) instead; no submission used."
            )
        rows, errors = generate_rows(self._playing.public, list(generators or []))
        if errors:
            return refused_fields("Payload generators failed (no submission used): " + " | ".join(errors))
        return self._submit([MetricSubmissionRow(**row) for row in rows], generated=True)

    def _analysis(self, method: str, arguments: dict[str, Any]) -> dict[str, Any]:
        outcome = run_tool(method, self._playing.public, arguments)
        if not outcome.ok:
            return (refused_fields if outcome.refused else error_fields)(outcome.error or f"{method} failed.")
        self._methods_used.add(method)
        return {"status": "ok", "reward": 0.0, "message": f"{method} ran.", "analysis_result": outcome.result}

    def _submit(self, rows: list[MetricSubmissionRow], *, generated: bool) -> dict[str, Any]:
        """Grade a report (report_step): rows invalid without any truth are refused first, using no submission."""
        episode = self._playing
        refused = refused_report(rows, episode)
        if refused is not None:
            return refused
        fields, after = grade_report(
            rows, episode, frozenset(self._methods_used), self._submissions, self._episode_score
        )
        self._submissions, self._last_score, self._episode_score = after.submission, after.score, after.episode_score
        self._done = after.done
        return {**fields, "generated_rows": rows if generated else []}

    def _observation(self, **fields: Any) -> MetricTrackerRlObservation:
        """Step observations carry only what a step changes; the instruction, the visible config and the
        catalogs come with the reset observation (they stay the same for the whole episode)."""
        config = self._playing.config
        return MetricTrackerRlObservation(
            task_id=config.task_id,
            steps_remaining=config.max_steps - self._steps,
            submissions_remaining=config.max_submissions - self._submissions,
            episode_score=self._episode_score,
            done=self._done,
            debug=debug_payload(self._playing) if self._debug else None,
            **fields,
        )


def environment_factory(*, debug: bool = False, held_out_secret: str = "") -> type[MetricTrackerRlEnvironment]:
    """The environment class a server serves, its settings bound: OpenEnv instantiates a class once per session
    with no arguments (and treats any other callable as an instance)."""
    if not debug and not held_out_secret:
        return MetricTrackerRlEnvironment

    class ConfiguredEnvironment(MetricTrackerRlEnvironment):
        def __init__(self) -> None:
            super().__init__(debug=debug, held_out_secret=held_out_secret)

    ConfiguredEnvironment.__name__ = ConfiguredEnvironment.__qualname__ = (
        "DebugMetricTrackerRlEnvironment" if debug else "HeldOutMetricTrackerRlEnvironment"
    )
    return ConfiguredEnvironment


def tier_versions_text() -> str:
    """Each difficulty's playable versions, as /metadata states them (results are given by version)."""
    listed = "; ".join(
        f"{name} "
        + ", ".join(
            f"v{number}"
            + (" (latest)" if number == tier.version else "")
            + ("" if is_published(name, number) else " (draft)")
            for number in versions_of(name)
        )
        for name, tier in TIERS.items()
    )
    return f"Difficulties and their versions (reset(difficulty=..., version=N); the latest by default): {listed}."
