"""The installable checker (metric_tracker_rl.checks) passes what meets the contracts and names what does not: toy
tools in a registry of this test's own, each broken in one way, and environments whose seeding or truth wall is
broken. Every registered tool is checked in test_tool_contract.py; every tier here."""

from __future__ import annotations

import random
import re
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, Field

from metric_tracker_rl.analysis_tools.arguments import ToolArgs
from metric_tracker_rl.analysis_tools.registry import (
    AGGREGATE_TIERS,
    SEGMENTED_TIERS,
    ToolError,
    ToolFunction,
    ToolSpec,
)
from metric_tracker_rl.catalog.published import COUNT_COLUMNS, RESET_DIFFICULTIES
from metric_tracker_rl.catalog.registry import Registry
from metric_tracker_rl.catalog.tiers import COUNTS, TIERS
from metric_tracker_rl.checks import CheckFailed, check_tier, check_tool
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.world.public_episode import PublicEpisode


class ColumnArgs(ToolArgs):
    column: str = Field(description="A count column of the daily table")


class LooseColumnArgs(BaseModel):  # takes any extra argument silently: no extra="forbid"
    column: str = Field(description="A count column of the daily table")


class WordyArgs(ToolArgs):
    column: str = Field(description="A count column of the daily table, " + "spelled out at great length " * 4)
    other: str = Field("app_opens", description="Another count column, " + "spelled out at great length " * 4)
    third: str = Field("app_opens", description="A third count column, " + "spelled out at great length " * 4)


def column_total(episode: PublicEpisode, args: Any) -> dict[str, Any]:
    """A tool that meets the contract: the window's total of one count column."""
    if args.column not in COUNT_COLUMNS:
        raise ToolError(f"unknown column {args.column!r}; valid: {', '.join(COUNT_COLUMNS)}")
    return {"column": args.column, "total": int(episode.data.daily[:, COUNT_COLUMNS.index(args.column)].sum())}


def raises_on_a_bad_column(episode: PublicEpisode, args: Any) -> dict[str, Any]:
    return {"total": int(episode.data.daily[:, COUNT_COLUMNS.index(args.column)].sum())}  # ValueError, not ToolError


def numpy_total(episode: PublicEpisode, args: Any) -> dict[str, Any]:
    return {**column_total(episode, args), "mean": np.float64(1.5)}


def writes_to_the_episode(episode: PublicEpisode, args: Any) -> dict[str, Any]:
    episode.task["objective"] = "changed by a tool"
    return column_total(episode, args)


def draws_at_random(episode: PublicEpisode, args: Any) -> dict[str, Any]:
    return {**column_total(episode, args), "sample": random.random()}


def toy_tools(
    func: ToolFunction,
    args_model: type[BaseModel] = ColumnArgs,
    description: str = "Total of one daily count column over the window.",
    offered_at: tuple[str, ...] = AGGREGATE_TIERS,
) -> Registry[ToolSpec]:
    """A registry of this test's own holding one tool, `toy`: the package's registry is never touched."""
    registry: Registry[ToolSpec] = Registry("tool")
    registry.register(
        ToolSpec(
            "toy",
            description,
            args_model,
            func,
            "analysis",
            {"column": "app_opens"},
            reads=frozenset({COUNTS}),
            offered_only_at=offered_at,
        )
    )
    return registry


def test_a_tool_that_meets_the_contract_passes() -> None:
    check_tool("toy", toy_tools(column_total))


@pytest.mark.parametrize(
    ("tools", "check", "expected"),
    [
        (toy_tools(raises_on_a_bad_column), "errors as observations", "an outcome"),
        (toy_tools(numpy_total), "plain JSON", "a finite number|str, int, float"),
        (toy_tools(writes_to_the_episode), "read-only", "unchanged"),
        (toy_tools(draws_at_random), "deterministic", "the same answer"),
        (toy_tools(column_total, LooseColumnArgs), "schema", "refuses arguments it does not have"),
        (toy_tools(column_total, description="Totals."), "description", "20 to 110 characters"),
        (toy_tools(column_total, WordyArgs, offered_at=SEGMENTED_TIERS), "schema budget", "within"),
    ],
    ids=["raises", "numpy", "writes", "random", "loose-schema", "terse", "over-budget"],
)
def test_a_tool_broken_one_way_fails_the_check_that_names_it(
    tools: Registry[ToolSpec], check: str, expected: str
) -> None:
    with pytest.raises(CheckFailed) as failed:
        check_tool("toy", tools)
    assert failed.value.check == check and failed.value.subject.startswith("tool 'toy'")
    assert re.search(expected, failed.value.expected), failed.value.expected
    assert str(failed.value).startswith(f"{failed.value.subject}: check {check!r} failed: expected ")


def test_a_tool_the_registry_lacks_is_named_with_the_registrys_tools() -> None:
    with pytest.raises(CheckFailed, match=r"tool 'missing': check 'registered'.*\['toy'\]"):
        check_tool("missing", toy_tools(column_total))


@pytest.mark.parametrize(
    "tier",
    # the raw-event tiers build the largest episodes: the full suite checks them
    [t if TIERS[t].data == COUNTS else pytest.param(t, marks=pytest.mark.slow) for t in RESET_DIFFICULTIES],
)
def test_every_tier_meets_the_contract(tier: str) -> None:
    check_tier(MetricTrackerRlEnvironment, tier, seeds=(0, 1))


@pytest.mark.slow
@pytest.mark.parametrize("tier", RESET_DIFFICULTIES)
def test_every_tier_meets_the_contract_over_a_seed_sweep(tier: str) -> None:
    check_tier(MetricTrackerRlEnvironment, tier, seeds=range(2, 14))


class OneEpisodeEnvironment(MetricTrackerRlEnvironment):
    """Broken seeding: every seed plays seed 0's episode."""

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> MetricTrackerRlObservation:
        return super().reset(seed=0 if seed is not None and seed >= 0 else seed, episode_id=episode_id, **kwargs)


class UnseededEnvironment(MetricTrackerRlEnvironment):
    """Broken seeding: a seed is ignored for a fresh draw."""

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> MetricTrackerRlObservation:
        fresh = random.randrange(10**6) if seed is not None and seed >= 0 else seed
        return super().reset(seed=fresh, episode_id=episode_id, **kwargs)


class LeakyEnvironment(MetricTrackerRlEnvironment):
    """A broken truth wall: a step's message names the first expected row's key."""

    def step(self, action: Any, timeout_s: float | None = None, **kwargs: Any) -> MetricTrackerRlObservation:
        observation = super().step(action, timeout_s, **kwargs)
        row = self._playing.truth.expected_rows[0]
        observation.message += f" ({row.date}|{row.entity_type}|{row.entity_name})"
        return observation


class TruthlessEnvironment(MetricTrackerRlEnvironment):
    """Debug mode switched off for good: the check has no truth to look for."""

    def __init__(self, *, debug: bool = False) -> None:
        super().__init__()


@pytest.mark.parametrize(
    ("make_env", "check", "expected"),
    [
        (OneEpisodeEnvironment, "seeding", "a different episode from each seed"),
        (UnseededEnvironment, "seeding", "the same episode from the same seed"),
        (LeakyEnvironment, "truth wall", "no label in what a client reads"),
        (TruthlessEnvironment, "truth wall", "the truth in the observations of make_env(debug=True)"),
    ],
    ids=["one-episode", "unseeded", "leaky", "truthless"],
)
def test_a_tier_played_by_a_broken_environment_fails_the_check_that_names_it(
    make_env: Any, check: str, expected: str
) -> None:
    with pytest.raises(CheckFailed) as failed:
        check_tier(make_env, "easy", seeds=(0, 1))
    assert failed.value.check == check and failed.value.expected == expected
    assert failed.value.subject.startswith("tier 'easy'")


def test_a_tier_needs_two_seeds_and_a_known_name() -> None:
    with pytest.raises(CheckFailed, match="check 'seeding'.*two different seeds"):
        check_tier(MetricTrackerRlEnvironment, "easy", seeds=(3, 3))
    with pytest.raises(CheckFailed, match="tier 'expert': check 'registered'.*easy"):
        check_tier(MetricTrackerRlEnvironment, "expert")
