"""metric_tracker_rl on Inspect AI: `inspect eval metric_tracker_rl/metric_tracker --model <provider/model>`.

Each sample is one episode over its own WebSocket session; the model investigates with the environment's
analysis tools and submits one report; the score is the episode's score (the sum of its rewards)."""

from __future__ import annotations

from collections.abc import Sequence

from inspect_ai import Task, task
from inspect_ai._util.error import PrerequisiteError  # what Inspect's command line prints as its message alone

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
    port: int = 0,
    max_turns: int | None = None,
    incident_kinds: str | Sequence[str] | None = None,
    decoy_ratio: float | None = None,
    dimensions: str | Sequence[str] | None = None,
    max_cuboid_depth: int | None = None,
    magnitude_scale: float | None = None,
    concurrency: int | None = None,
    note_share: float | None = None,
    version: int | None = None,
) -> Task:
    """The benchmark as an Inspect task.

    Args:
      tasks: named tasks to run (comma-separated or a list); default: every named task
        (DEFAULT_TASK_ORDER), unless a sweep is asked for.
      difficulty: difficulties (comma-separated or a list): of the seed sweep (default: every difficulty), or
        without one, the named tasks at them (at a tier with none, the first episode of its sweep).
      seeds: episodes per difficulty in the seed sweep (0: no sweep).
      offset: the sweep's first episode in each difficulty's calibration sweep (to split a sweep into parts).
      held_out: run held-out episodes (the server mixes a secret into every random stream).
      base_url: URL of a running server; default: METRIC_TRACKER_URL, else a local server process for the run.
      port: the loopback port of that local server (default 0: a free one).
      max_turns: model turns per episode at most; default: the episode's step budget and half as many again.
      incident_kinds: the kinds of incident every episode draws from (comma-separated or a list; segmented tiers).
      decoy_ratio: benign look-alikes per incident (segmented tiers).
      dimensions: the dimensions a root cause may name, platform among them (cuboid tiers, as the rest below).
      max_cuboid_depth: the most dimensions a root cause names.
      magnitude_scale: every incident kind's magnitude range times this.
      concurrency: dates carrying a second incident in an overlapping cuboid.
      note_share: the share of partner payment failures with a partner_status notice.
      version: the version of each episode's tier to play (docs/versions.md); default: each tier's latest.
    A knob set makes every episode non-standard; one that a sample's tier does not take is an error naming it.
    """
    knobs = {
        "incident_kinds": incident_kinds,
        "decoy_ratio": decoy_ratio,
        "dimensions": dimensions,
        "max_cuboid_depth": max_cuboid_depth,
        "magnitude_scale": magnitude_scale,
        "concurrency": concurrency,
        "note_share": note_share,
    }
    try:
        dataset = episode_dataset(
            tasks,
            difficulty,
            whole_number("seeds", seeds),
            whole_number("offset", offset),
            knobs,
            None if version is None else whole_number("version", version, least=1),
        )
        solver = episode_agent(
            base_url=base_url,
            held_out=held_out,
            max_turns=None if max_turns is None else whole_number("max_turns", max_turns, least=1),
            port=whole_number("port", port),
        )
    except ValueError as exc:
        raise TaskArgumentError(f"metric_tracker: {exc}") from None
    return Task(
        dataset=dataset,
        solver=solver,
        scorer=episode_score(),
        metadata={"held_out": held_out},
        version="1.0.0",
    )


class TaskArgumentError(PrerequisiteError, ValueError):
    """A bad task argument (`-T name=value`): Inspect's command line prints its one line, not a traceback of the
    task's loading."""


def whole_number(name: str, value: object, least: int = 0) -> int:
    """A whole-number task argument as `-T` passes it (an int, or text when it is not one); a ValueError says what
    it takes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= least:
        return value
    raise ValueError(f"{name} must be a whole number, {least} or more, got {value!r}")
