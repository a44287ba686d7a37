"""Named tasks and the reading of a reset's arguments into a validated episode configuration (`EpisodeConfig`, the
typed reset model of episode_config.py, whose names this module also exports)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from metric_tracker_rl.catalog.episode_config import (
    CUBOID_KNOBS,
    CUSTOM_FAMILY,
    DEFAULT_DECOY_RATIO,
    DIAL_KNOBS,
    MAGNITUDE_SCALE_RANGE,
    MAX_CONCURRENCY,
    MAX_CUBOID_DEPTH,
    MAX_DECOY_RATIO,
    MAX_DENSITY,
    MECHANISM_KNOBS,
    SEGMENT_KNOBS,
    EpisodeConfig,
    at_version,
    cuboid_defaults,
    dial_defaults,
    difficulty_default,
    incident_count,
    is_cuboid,
    is_segmented,
    tier_config,
    tier_fields,
)
from metric_tracker_rl.catalog.published import RESET_DIFFICULTIES, SCENARIO_FAMILIES
from metric_tracker_rl.catalog.setting_checks import check_kinds_family
from metric_tracker_rl.catalog.task_splits import split_task_arguments
from metric_tracker_rl.catalog.tiers import TIERS, Tier
from metric_tracker_rl.catalog.validation import check_name_in_any_case
from metric_tracker_rl.catalog.versions import tier_at

# The public names: this module's, and those of episode_config.py that its importers read from here.
__all__ = [
    "CUBOID_KNOBS",
    "DEFAULT_DECOY_RATIO",
    "DEFAULT_TASK_ID",
    "DEFAULT_TASK_ORDER",
    "DIAL_KNOBS",
    "GRADER_NAME",
    "MAGNITUDE_SCALE_RANGE",
    "MAX_CONCURRENCY",
    "MAX_CUBOID_DEPTH",
    "MAX_DECOY_RATIO",
    "MAX_DENSITY",
    "NAMED_TASK_ORDER",
    "RESET_KEYS",
    "RETRY_COST",
    "TASKS",
    "TASK_ALIASES",
    "EpisodeConfig",
    "TaskSpec",
    "cuboid_defaults",
    "get_task_spec",
    "incident_count",
    "knob_value",
    "resolve_episode_config",
    "task_catalog",
    "tier_config",
    "tier_fields",
]


# Under a curriculum budget, the k-th graded submission is credited its score minus RETRY_COST * (k - 1): a retry
# that improves the report still pays, probing submissions to read the feedback do not.
RETRY_COST = 0.25
RESET_KEYS = (
    "task_id",
    "seed",
    "scenario_family",
    "difficulty",
    "version",
    "anomaly_density",
    "anomaly_count",
    "anomalies",
    "max_steps",
    "max_submissions",
    "incident_kinds",
    "decoy_ratio",
    "dimensions",
    "max_cuboid_depth",
    "magnitude_scale",
    "concurrency",
    "note_share",
    "split",
    "index",
)


@dataclass(frozen=True)
class TaskSpec:
    task_id: str
    objective: str
    grader_name: str
    config: EpisodeConfig = field(repr=False)

    @property
    def difficulty(self) -> str:
        return self.config.difficulty


GRADER_NAME = "metric_tracker_rl.grading.grader.grade_submission"
TASKS: dict[str, TaskSpec] = {
    spec.task_id: spec
    for spec in (
        TaskSpec(
            "easy_two_spikes",
            "Two conversion-rate spikes hide in four weeks of funnel data. Report each one with its date, "
            "metric, baseline, observed value, delta and severity; nothing else.",
            GRADER_NAME,
            tier_config(
                TIERS["easy"],
                seed=101,
                scenario_family="rate_spike_from_median",
                anomaly_count=2,
                task_id="easy_two_spikes",
            ),
        ),
        TaskSpec(
            "medium_mixed_three",
            "Three incidents of different families are mixed with a marketing campaign, late-arriving data and "
            "unannotated shifts in timing, one of them on an incident's date. Report the incidents (once per date "
            "when one lasts two dates), classify each family correctly and leave the explained and benign days out.",
            GRADER_NAME,
            tier_config(
                TIERS["medium"], seed=202, scenario_family="mixed", anomaly_count=3, task_id="medium_mixed_three"
            ),
        ),
        TaskSpec(
            "hard_mixed_multi",
            "Four weaker incidents of different families, plus a campaign, a holiday, late-arriving data and "
            "unannotated swings in demand and timing, some timing shifts on incident dates. Separate incidents from "
            "explained days, benign fluctuations and side effects, and report only the incidents, once per date "
            "they cover.",
            GRADER_NAME,
            tier_config(TIERS["hard"], seed=303, scenario_family="mixed", anomaly_count=4, task_id="hard_mixed_multi"),
        ),
        TaskSpec(
            "frontier_segments",
            "Four incidents hide in eight weeks of funnel data split by platform, country and app version: some "
            "confined to one segment and barely visible in the aggregate, some caused by a release on its new "
            "version only, some lasting several dates. Holidays and releases are annotated; traffic moving between "
            "segments and one segment's swings in demand or timing are benign. Report each incident once per date "
            "on the segment it is confined to.",
            GRADER_NAME,
            tier_config(
                TIERS["frontier"], seed=404, scenario_family="mixed", anomaly_count=4, task_id="frontier_segments"
            ),
        ),
        TaskSpec(
            "deep_cuboids",
            "Four incidents hide in eight weeks of funnel data split by platform, country, app version, acquisition "
            "channel and user type, each confined to a combination of one to three of those dimensions (one of "
            "them all three), two on the same date, one lasting two dates. "
            "Experiments, campaigns, holidays, releases and payment partners' notices are in context tables; "
            "their intended effects are not incidents. Report each incident once per date on the combination it "
            "is confined to.",
            GRADER_NAME,
            tier_config(TIERS["deep"], seed=505, scenario_family="mixed", anomaly_count=4, task_id="deep_cuboids"),
        ),
        TaskSpec(
            "abyss_faint_cuboids",
            "Four incidents hide in eight weeks of funnel data split by platform, country, app version, acquisition "
            "channel and user type, each at the edge of its own segment's noise (the brief publishes the noise "
            "model) and confined to a combination of those dimensions, among benign blips in single leaf segments "
            "and the explained effects of the context tables. Report each incident once per date on the "
            "combination it is confined to.",
            GRADER_NAME,
            tier_config(
                TIERS["abyss"], seed=606, scenario_family="mixed", anomaly_count=4, task_id="abyss_faint_cuboids"
            ),
        ),
        TaskSpec(
            "warehouse_raw_events",
            "Four incidents hide in eight weeks of a food-ordering app's raw analytics events, beside data defects "
            "(numbers recorded wrongly while users did as before) and benign changes. A metrics layer defines every "
            "number and the dashboard applies it; the events, their side tables and the tracking changelog tell "
            "what is real from what is the data. Report each incident once per date on the segment it is confined "
            "to, and each data defect on the dashboard metric it corrupts.",
            GRADER_NAME,
            tier_config(
                TIERS["warehouse"], seed=709, scenario_family="mixed", anomaly_count=4, task_id="warehouse_raw_events"
            ),
        ),
    )
}
# The one default list of tasks: every named task, easiest first. Every entry point plays it by default (inference.py,
# Inspect's dataset, the lab), the Task API's eval split holds it (a task named after the split was published
# is appended to the split, so no published index moves), and the catalogs list it. NAMED_TASK_ORDER is the same tuple
# under its older name, which clients still import.
DEFAULT_TASK_ORDER: tuple[str, ...] = tuple(TASKS)
NAMED_TASK_ORDER: tuple[str, ...] = DEFAULT_TASK_ORDER
DEFAULT_TASK_ID = DEFAULT_TASK_ORDER[0]
# Former task ids, accepted wherever a task id is (reset, get_task_spec, Inspect, inference.py) and resolved to the
# task they always named. The ids were changed to say what the tasks hold; the episodes were not, so a score
# recorded under a former id is a score on the same episode.
TASK_ALIASES: dict[str, str] = {"easy_single_spike": "easy_two_spikes", "medium_mixed_pair": "medium_mixed_three"}


def get_task_spec(task_id: str) -> TaskSpec:
    """The named task, its id (or former id, TASK_ALIASES) in any letter case; a ValueError names the valid ids."""
    name = check_name_in_any_case("task_id", task_id, (*TASKS, *TASK_ALIASES))
    return TASKS[TASK_ALIASES.get(name, name)]


def knob_value(name: str, value: Any) -> Any:
    """A DIAL_KNOBS value as reset takes it: text (a command-line flag's) read as the knob's kind, a list from
    comma-separated names; a value of another type is returned as given, for reset to validate. A ValueError
    names the knob and what it takes."""
    kind = DIAL_KNOBS.get(name)
    if kind is None:
        raise ValueError(f"unknown knob {name!r}; valid: {', '.join(DIAL_KNOBS)}")
    if kind is list:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return list(value) if isinstance(value, tuple) else value
    if not isinstance(value, str):
        return value
    try:
        return kind(value)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{name} must be {what}, got {value!r}") from None


def resolve_episode_config(secret: str = "", **kwargs: Any) -> EpisodeConfig:
    """The episode config of a reset's arguments: a named task's config, or a difficulty's defaults, with the
    arguments set; EpisodeConfig checks every value, this checks which arguments go together.

    Without task_id and without other settings, the first task of DEFAULT_TASK_ORDER is used. With settings but no
    task_id, unspecified fields take the defaults of the chosen difficulty. `split` and `index` (OpenEnv's Task API
    convention) stand for that task's own reset arguments. `secret` is the server's held-out secret, never a reset
    argument. The config is `standard` when it equals its named task's or difficulty's defaults in everything but
    the seed.
    """
    unknown = sorted(set(kwargs) - set(RESET_KEYS))
    if unknown:
        raise ValueError(f"unknown reset argument(s) {', '.join(unknown)}; valid: {', '.join(RESET_KEYS)}")
    if "split" in kwargs or "index" in kwargs:
        kwargs = split_task_arguments(kwargs)
    overrides = {k: v for k, v in kwargs.items() if v is not None}
    task_id = overrides.pop("task_id", None)
    if task_id is not None:
        task_id = get_task_spec(task_id).task_id  # names are accepted in any letter case
        _check_task_tier(task_id, overrides.get("difficulty"))
    version = overrides.pop("version", None)
    if task_id is not None or not overrides:
        base = get_task_spec(task_id if task_id is not None else DEFAULT_TASK_ID).config
    else:
        base = difficulty_default(_tier_named(overrides.get("difficulty", "medium"), version))
    tier = _tier_named(overrides.get("difficulty", base.difficulty), version)
    base = at_version(base, tier)
    family = check_name_in_any_case(
        "scenario_family", overrides.get("scenario_family", base.scenario_family), SCENARIO_FAMILIES
    )
    _check_knobs_apply(overrides, tier)
    settings = {name: overrides[name] for name in _PLAIN_SETTINGS if name in overrides}
    if "anomalies" in overrides:
        family = CUSTOM_FAMILY
    config = replace(
        base,
        tier=tier,
        scenario_family=family,
        **_count_settings(overrides, base, tier, family),
        **_knob_settings(overrides, base, tier),
        **settings,
    )
    if "incident_kinds" in overrides:  # naming them all is still naming them
        check_kinds_family(family)
    reference = base if base.task_id is not None else difficulty_default(tier)
    return replace(config, standard=config == replace(reference, seed=config.seed), secret=secret)


# Reset arguments that set the config's field of their name as given (EpisodeConfig checks them).
_PLAIN_SETTINGS = ("seed", "anomaly_density", "anomalies", "max_steps", "max_submissions")


def _check_task_tier(task_id: str, difficulty: object) -> None:
    """A named task is an episode of its own tier: a reset that names another difficulty beside it would build a
    hybrid (one tier's brief over another's data), so it is refused."""
    own = TASKS[task_id].difficulty
    if difficulty is not None and _tier_named(difficulty).name != own:
        raise ValueError(
            f"task {task_id} is at difficulty {own!r}, not {difficulty!r}: drop difficulty, or drop "
            f"task_id for a seeded episode at {difficulty!r}"
        )


def _tier_named(name: object, version: object = None) -> Tier:
    """The tier a reset's difficulty names, in any letter case, at `version` (None: its latest)."""
    return tier_at(check_name_in_any_case("difficulty", name, RESET_DIFFICULTIES), version)


def _check_knobs_apply(overrides: dict[str, Any], tier: Tier) -> None:
    """A segmented tier's knobs are reset arguments there only, and a cuboid tier's dial at a cuboid tier only;
    the message names the listed tiers where they apply. A tier that hides its mechanisms (the audit) takes none
    that names or sizes one, so the message names it for `dimensions` only."""
    given = [name for name in MECHANISM_KNOBS if name in overrides]
    if given and tier.hides_mechanisms:
        raise ValueError(
            f"{', '.join(given)} cannot be set at difficulty {tier.name!r}: it draws its mechanisms "
            "itself and names none; set seed, scenario_family, anomaly_count or max_steps"
        )
    for knobs, separator, applies in ((SEGMENT_KNOBS, " and ", is_segmented), (CUBOID_KNOBS, ", ", is_cuboid)):
        given = [name for name in knobs if name in overrides]
        if given and not applies(tier):
            names_mechanism = any(name in MECHANISM_KNOBS for name in given)
            where = " or ".join(
                repr(name)
                for name, other in TIERS.items()
                if applies(other) and other.listed and not (names_mechanism and other.hides_mechanisms)
            )
            raise ValueError(
                f"{separator.join(given)} appl{'y' if len(given) > 1 else 'ies'} at difficulty {where} "
                f"only, not {tier.name!r}"
            )


def _count_settings(overrides: dict[str, Any], base: EpisodeConfig, tier: Tier, family: str) -> dict[str, Any]:
    """anomaly_count and anomaly_count_range: as given, from a given density, the difficulty's range (drawn when
    the episode is built), the named task's, or the custom anomalies' number; none in a null scenario."""
    density = overrides.get("anomaly_density", base.anomaly_density)
    count: Any
    if "anomalies" in overrides and isinstance(overrides["anomalies"], (list, tuple)):
        count = len(overrides["anomalies"])
    elif family == "null":
        if overrides.get("anomaly_count", 0) != 0:
            raise ValueError("scenario_family 'null' has no anomalies; leave anomaly_count unset or 0")
        count = 0
    elif "anomaly_count" in overrides:
        count = overrides["anomaly_count"]
    elif "anomaly_density" in overrides or (base.task_id is None and tier.count_range is None):
        valid_density = isinstance(density, (int, float)) and not isinstance(density, bool) and math.isfinite(density)
        count = min(tier.max_incidents, max(1, round(density * tier.window_days))) if valid_density else 0
    elif base.task_id is None:
        count = None  # drawn from the difficulty's range when the episode is built
    else:
        count = min(base.anomaly_count or 0, tier.max_incidents)
    return {"anomaly_count": count, "anomaly_count_range": tier.count_range if count is None else None}


def _knob_settings(overrides: dict[str, Any], base: EpisodeConfig, tier: Tier) -> dict[str, Any]:
    """A segmented tier's knobs and a cuboid tier's dial: as given, else the base config's at its own tier, else
    the tier's defaults."""
    same_tier = base.tier == tier
    knobs: dict[str, Any] = (
        {"incident_kinds": base.incident_kinds, "decoy_ratio": base.decoy_ratio}
        if is_segmented(tier)
        else {"incident_kinds": (), "decoy_ratio": DEFAULT_DECOY_RATIO}
    )
    dial = (
        {name: getattr(base, name) for name in CUBOID_KNOBS}
        if same_tier and is_cuboid(tier)
        else dial_defaults(tier) or {name: getattr(EpisodeConfig, name) for name in CUBOID_KNOBS}
    )
    given = {name: overrides[name] for name in (*SEGMENT_KNOBS, *CUBOID_KNOBS) if name in overrides}
    return {**knobs, **dial, **given}


def task_catalog() -> list[dict[str, Any]]:
    return [
        {
            "task_id": t.task_id,
            "difficulty": t.difficulty,
            "objective": t.objective,
            "grader_name": t.grader_name,
            "config": t.config.public_dict(),
        }
        for t in TASKS.values()
    ]
