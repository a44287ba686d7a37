"""metric_tracker_rl on Inspect AI: `inspect eval metric_tracker_rl/metric_tracker --model <provider/model>`.

Each sample is one episode over its own WebSocket session; the model investigates with the environment's
analysis tools and submits one report; the score is the episode's score (the sum of its rewards)."""

from __future__ import annotations

from collections.abc import Sequence

from inspect_ai import Task, task

from metric_tracker_rl.adapters.inspect_eval.dataset import episode_dataset
from metric_tracker_rl.adapters.inspect_eval.scorer import episode_score
from metric_tracker_rl.adapters.inspect_eval.solver import episode_agent


@task
def metric_tracker(
    tasks: str | Sequence[str] | None = None,
    difficulty: str | Sequence[str] | None = None,
    seeds: int = 0,
    offset: int = 0,
    held_out: bool = False,
    base_url: str | None = None,
    max_turns: int = 60,
) -> Task:
    """The benchmark as an Inspect task.

    Args:
      tasks: named tasks to run (comma-separated or a list); default: every named task
        (DEFAULT_TASK_ORDER), unless a sweep is asked for.
      difficulty: difficulties of the seed sweep (comma-separated or a list); default: every difficulty.
      seeds: episodes per difficulty in the seed sweep (0: no sweep).
      offset: the sweep's first episode in each difficulty's calibration sweep (to split a sweep into parts).
      held_out: run held-out episodes (the server mixes a secret into every random stream).
      base_url: URL of a running server; default: METRIC_TRACKER_URL, else a local server process for the run.
      max_turns: model turns per episode at most.
    """
    return Task(
        dataset=episode_dataset(tasks, difficulty, seeds, offset),
        solver=episode_agent(base_url=base_url, held_out=held_out, max_turns=max_turns),
        scorer=episode_score(),
        metadata={"held_out": held_out},
        version="1.0.0",
    )
