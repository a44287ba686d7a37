"""`check_tier`: what every tier's episodes must meet, checked by playing them through an environment as a client
would: a seed names one episode and different seeds name different ones, no label reaches an observation, an
error or the state, the tier's tool list fits its budget, and a mistake is an error observation after which the
episode goes on."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.catalog.published import RESET_DIFFICULTIES, row_key
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.checks.failure import require
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState
from metric_tracker_rl.view.tool_schemas import model_tools, schema_chars


class PlayableEnvironment(Protocol):
    """What the check plays: the environment's side of OpenEnv's interface (the server's MetricTrackerRlEnvironment,
    a subclass, a configured class)."""

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> MetricTrackerRlObservation: ...

    def step(
        self, action: MetricTrackerRlAction, timeout_s: float | None = None, **kwargs: Any
    ) -> MetricTrackerRlObservation: ...

    @property
    def state(self) -> MetricTrackerRlState: ...

    def close(self) -> None: ...


# Makes an environment; with debug=True, one with its truth in every observation (the environment's own switch, so
# the check reads the labels a debugging client would, and needs no generator of its own).
EnvironmentMaker = Callable[..., PlayableEnvironment]
UNKNOWN_TOOL = "no_such_tool"


@dataclass(frozen=True)
class Played:
    """One probe of an episode: each observation and the final state as JSON (the debug payload and the episode id
    left out), and the observations themselves."""

    texts: tuple[str, ...]
    observations: tuple[MetricTrackerRlObservation, ...]


def check_tier(make_env: EnvironmentMaker, tier: str, seeds: Sequence[int] = (0, 1)) -> None:
    """Check the tier `tier` on the episodes of `seeds` (two at least), played in environments `make_env()` builds
    (`make_env(debug=True)`: one that shows its truth). Raises CheckFailed naming the first check it fails."""
    subject = f"tier {tier!r}"
    require(tier in RESET_DIFFICULTIES, "registered", subject, f"one of {', '.join(RESET_DIFFICULTIES)}")
    require(len(set(seeds)) >= 2, "seeding", subject, "two different seeds at least to compare", list(seeds))
    check_tool_list(tier)
    plays: dict[int, tuple[str, ...]] = {}
    for seed in seeds:
        with_truth, plain = play(make_env(debug=True), tier, seed), play(make_env(), tier, seed)
        where = f"{subject} seed {seed}"
        require(
            plain.texts == with_truth.texts,
            "seeding",
            where,
            "the same episode from the same seed",
            _first_difference(plain.texts, with_truth.texts),
        )
        truth = with_truth.observations[0].debug
        require(truth is not None, "truth wall", where, "the truth in the observations of make_env(debug=True)")
        check_truth_wall(plain, labels(truth or {}), where)
        check_errors_are_observations(plain, where)
        plays[seed] = plain.texts
    distinct = set(plays.values())
    require(
        len(distinct) == len(plays),
        "seeding",
        subject,
        "a different episode from each seed",
        f"seeds {sorted(plays)} gave {len(distinct)} distinct episode(s)",
    )


def check_tool_list(tier: str) -> int:
    """The tier's tool list fits its budget and says when to use each tool (one description each); returns its
    size in characters."""
    size, budget = schema_chars(tier), TIERS[tier].tool_schema_budget
    require(size <= budget, "schema budget", f"tier {tier!r}", f"a tool list within {budget} characters", size)
    descriptions = [tool.description for tool in model_tools(tier)]
    repeated = sorted({text for text in descriptions if descriptions.count(text) > 1})
    require(not repeated, "schema budget", f"tier {tier!r}", "one description per tool", repeated)
    return size


def probe_actions(tier: str) -> list[MetricTrackerRlAction]:
    """Every tool that answers at the tier, called with its example; then the mistakes: a tool that does not exist,
    and the first tool with an argument it lacks; then the first tool again."""
    answering = [spec for spec in TOOL_REGISTRY.values() if tier in spec.answers_at]
    first = answering[0]
    return [
        *(MetricTrackerRlAction(analysis_method=spec.name, analysis_args=spec.example) for spec in answering),
        MetricTrackerRlAction(analysis_method=UNKNOWN_TOOL),
        MetricTrackerRlAction(analysis_method=first.name, analysis_args={**first.example, "not_an_argument": 1}),
        MetricTrackerRlAction(analysis_method=first.name, analysis_args=first.example),
    ]


def play(env: PlayableEnvironment, tier: str, seed: int) -> Played:
    """Reset to the seed's episode, step through the probe, then try a reset that must fail; close the env."""
    actions = probe_actions(tier)
    try:
        observations = [env.reset(seed=seed, difficulty=tier, max_steps=len(actions) + 1)]
        observations += [env.step(action) for action in actions]
        observations.append(env.reset(seed=-1, difficulty=tier))
        state = env.state.model_dump(mode="json", exclude={"episode_id"})
    finally:
        env.close()
    texts = [observation.model_dump_json(exclude={"debug"}) for observation in observations]
    return Played((*texts, json.dumps(state, sort_keys=True)), tuple(observations))


def labels(truth: dict[str, Any]) -> list[str]:
    """What only the truth (a debug observation's) holds, as text: the expected rows' and side-effect keys, the
    injections' and benign fluctuations' descriptions, and the magnitudes at full precision."""
    found = [row_key(row["date"], row["entity_type"], row["entity_name"]) for row in truth.get("expected_rows", [])]
    found += list(truth.get("neutral_keys", []))
    found += [item["description"] for item in truth.get("injections", []) + truth.get("fluctuations", [])]
    found += [text for item in truth.get("injections", []) if len(text := repr(float(item["magnitude"]))) > 6]
    return [text for text in found if text]


def check_truth_wall(played: Played, truth: list[str], where: str) -> None:
    """No label in any observation, error or the state; and no observation carries the debug payload."""
    for observation in played.observations:
        require(
            observation.debug is None, "truth wall", where, "no debug payload outside debug mode", observation.debug
        )
    for index, text in enumerate(played.texts):
        leaked = [label for label in truth if label in text]
        require(not leaked, "truth wall", f"{where} message {index}", "no label in what a client reads", leaked)


def check_errors_are_observations(played: Played, where: str) -> None:
    """The mistakes of the probe are error observations naming what is valid, and the episode goes on; a bad reset
    is one too, and leaves the episode as it was."""
    unknown, wrong, retried, bad_reset = played.observations[-4:]
    require(
        unknown.status == "error" and "valid" in unknown.message.lower(),
        "errors as observations",
        f"{where} calling {UNKNOWN_TOOL!r}",
        "an error observation listing the valid tools",
        unknown.message,
    )
    require(
        wrong.status == "error" and "valid arguments" in wrong.message.lower(),
        "errors as observations",
        f"{where} with an argument the tool lacks",
        "an error observation naming the valid arguments",
        wrong.message,
    )
    require(
        retried.status == "ok" and not retried.done,
        "errors as observations",
        where,
        "the episode going on after its mistakes",
        f"{retried.status}: {retried.message}",
    )
    require(
        bad_reset.status == "error" and bad_reset.steps_remaining == retried.steps_remaining,
        "errors as observations",
        f"{where} reset with seed -1",
        "an error observation, the episode unchanged",
        f"{bad_reset.status}: {bad_reset.message}",
    )


def _first_difference(first: Sequence[str], second: Sequence[str]) -> str:
    for index, (one, other) in enumerate(zip(first, second, strict=False)):
        if one != other:
            return f"message {index} differs: {one[:120]} / {other[:120]}"
    return f"{len(first)} against {len(second)} messages"
