"""Named tasks and the validated episode configuration (reset keyword arguments)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any

from metric_tracker_rl.catalog.dimensions import DIMENSIONS
from metric_tracker_rl.catalog.plain_types import AnomalyRequest
from metric_tracker_rl.catalog.published import RESET_DIFFICULTIES, SCENARIO_FAMILIES
from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng, validate_seed
from metric_tracker_rl.catalog.setting_checks import (
    check_kinds_family,
    checked_anomalies,
    checked_incident_kinds,
    int_in,
    number_in,
)
from metric_tracker_rl.catalog.task_splits import split_task_arguments
from metric_tracker_rl.catalog.tiers import DEFAULT_MAX_STEPS, DEFAULT_MAX_SUBMISSIONS, TIERS, Tier
from metric_tracker_rl.catalog.validation import check_choice, check_name_in_any_case
from metric_tracker_rl.catalog.versions import tier_at

MAX_DENSITY = 0.25
CUSTOM_FAMILY = "custom"  # the scenario of a reset that lists its own anomalies
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
# The segmented tiers' curriculum knobs (reset arguments valid there only): which kinds of segment incident an
# episode draws from (empty: the tier's kinds) and benign look-alikes per incident (default: the tier's).
SEGMENT_KNOBS = ("incident_kinds", "decoy_ratio")
DEFAULT_DECOY_RATIO = 1.0
MAX_DECOY_RATIO = 2.0
# The dial of a tier whose root causes are cuboids (tiers.SegmentedMix.cuboid_root_causes): reset arguments valid
# there only, each defaulting to the tier's. `dimensions`: the fields root causes may name (platform always);
# `max_cuboid_depth`: the most dimensions one names; `magnitude_scale`: every kind's magnitude range times this;
# `concurrency`: dates carrying a second incident in an overlapping cuboid; `note_share`: incidents with a note.
CUBOID_KNOBS = ("dimensions", "max_cuboid_depth", "magnitude_scale", "concurrency", "note_share")
MAX_CUBOID_DEPTH = 3
MAGNITUDE_SCALE_RANGE = (0.25, 3.0)
MAX_CONCURRENCY = 3
# Every curriculum knob a client can set on each episode it plays (inference.py's flags, Inspect's -T parameters),
# with the kind of value reset takes: a segmented tier's two, then a cuboid tier's dial. Setting one makes the
# episodes non-standard; reset refuses it at a tier where it does not apply.
DIAL_KNOBS: dict[str, type] = {
    "incident_kinds": list,
    "decoy_ratio": float,
    "dimensions": list,
    "max_cuboid_depth": int,
    "magnitude_scale": float,
    "concurrency": int,
    "note_share": float,
}


@dataclass(frozen=True)
class EpisodeConfig:
    """The typed reset model: an episode's settings and the Tier they are for, so nothing downstream looks the tier
    up by name again (`difficulty` is its name). Validated where it is made, whichever way (a reset's arguments, a
    named task, a visible config, a `dataclasses.replace`): a wrong value is a ValueError that says what is valid,
    the message a reset then returns as its observation."""

    seed: int
    scenario_family: str
    tier: Tier
    anomaly_count: int | None  # None: drawn from anomaly_count_range when the episode is built
    anomaly_density: float
    task_id: str | None = None
    anomaly_count_range: tuple[int, int] | None = None
    anomalies: tuple[AnomalyRequest, ...] = ()
    max_steps: int = DEFAULT_MAX_STEPS
    max_submissions: int = DEFAULT_MAX_SUBMISSIONS
    incident_kinds: tuple[str, ...] = ()  # a segmented tier's: the kinds of incident drawn from (empty: the tier's)
    decoy_ratio: float = DEFAULT_DECOY_RATIO  # a segmented tier's: benign look-alikes per incident
    # A cuboid tier's dial (CUBOID_KNOBS; elsewhere left at these values and not shown).
    dimensions: tuple[str, ...] = ()
    max_cuboid_depth: int = 0
    magnitude_scale: float = 1.0
    concurrency: int = 0
    note_share: float = 0.0
    # A named task's or a difficulty's default settings, seed aside: the only episodes published scores use.
    standard: bool = False
    # The server's held-out secret (never shown): mixed into every random stream of the episode.
    secret: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        for name, value in _validated(self).items():
            object.__setattr__(self, name, value)

    @property
    def difficulty(self) -> str:
        return self.tier.name

    @property
    def version(self) -> int:
        """The version of its tier the episode plays (`Tier.version`)."""
        return self.tier.version

    @property
    def held_out(self) -> bool:
        return bool(self.secret)

    @cached_property
    def key(self) -> EpisodeKey:
        """Made once per config: a reset reads it for every stream it derives."""
        return EpisodeKey.of(self.seed, self.secret)

    def public_dict(self) -> dict[str, Any]:
        """Every field but the secret, in field order (the tier as its name, `difficulty`), as plain JSON values,
        and whether held-out mode is on.

        Built field by field: dataclasses.asdict would deep-copy every value, at about ten times the cost."""
        data: dict[str, Any] = {name: getattr(self, name) for name in _PUBLIC_FIELDS}
        data["anomalies"] = [a.model_dump() for a in self.anomalies]
        if self.anomaly_count_range is None:
            del data["anomaly_count_range"]
        else:
            data["anomaly_count_range"] = list(self.anomaly_count_range)
        # A segmented tier's curriculum knobs are shown where they apply, as plain JSON.
        if self.tier.segmented is not None:
            data["incident_kinds"] = list(self.incident_kinds or self.tier.incident_kinds)
        else:
            del data["incident_kinds"], data["decoy_ratio"]
        if _is_cuboid(self.tier):
            data["dimensions"] = list(self.dimensions)
        else:
            for name in CUBOID_KNOBS:
                del data[name]
        if self.tier.hides_mechanisms:
            for name in MECHANISM_KNOBS:
                data.pop(name, None)
        data["held_out"] = self.held_out
        return data

    @classmethod
    def from_public(cls, visible: dict[str, Any]) -> EpisodeConfig:
        """The config an observation's visible `config` shows, to rebuild an open-mode episode locally
        (`generation.build_episode`). A held-out episode cannot be rebuilt without the server's secret, which the
        visible config never holds: that is a ValueError, as is a field this class does not have."""
        if visible.get("held_out"):
            raise ValueError(
                "a held-out episode (held_out: true) cannot be rebuilt: the server's secret is part "
                "of its seed and is never shown"
            )
        unknown = set(visible) - set(_PUBLIC_FIELDS) - {"held_out"}
        if unknown:
            raise ValueError(
                f"unknown config field(s) {', '.join(sorted(unknown))}; valid: {', '.join(_PUBLIC_FIELDS)}"
            )
        data = {name: value for name, value in visible.items() if name not in ("held_out", "difficulty", "version")}
        if data.get("anomaly_count_range") is not None:
            data["anomaly_count_range"] = tuple(data["anomaly_count_range"])
        tier = tier_at(str(visible.get("difficulty")), visible.get("version"))
        if tier.hides_mechanisms:  # its settings that name or size a mechanism are its defaults, never shown
            defaults = _difficulty_default(tier)
            data.update({name: getattr(defaults, name) for name in MECHANISM_KNOBS if name not in data})
        return cls(tier=tier, **data)


# The visible config's fields: the tier shows as its name and its version, where the tier field stands.
_PUBLIC_FIELDS = tuple(
    name
    for f in fields(EpisodeConfig)
    if f.name != "secret"
    for name in (("difficulty", "version") if f.name == "tier" else (f.name,))
)


def _is_segmented(tier: Tier) -> bool:
    """Whether the tier splits traffic into segments (SEGMENT_KNOBS apply)."""
    return tier.segmented is not None


# The settings that name or size what can go wrong: a tier that hides its mechanisms neither takes nor shows them.
MECHANISM_KNOBS = ("incident_kinds", "decoy_ratio", "max_cuboid_depth", "magnitude_scale", "concurrency", "note_share")


def _is_cuboid(tier: Tier) -> bool:
    """Whether the tier's root causes are cuboids a reset's dial shapes (CUBOID_KNOBS apply)."""
    return tier.segmented is not None and tier.segmented.cuboid_root_causes


def _validated(config: EpisodeConfig) -> dict[str, Any]:
    """Every value of `config` checked against its tier, in the order a reset's arguments are read, normalized
    (numbers as floats, lists as tuples in the tier's order): the fields to set. Raises a ValueError that names
    what is valid."""
    tier = config.tier
    limit = tier.max_incidents
    check_choice("scenario_family", config.scenario_family, (*SCENARIO_FAMILIES, CUSTOM_FAMILY))
    checked: dict[str, Any] = {
        "seed": validate_seed(config.seed),
        "anomaly_density": number_in("anomaly_density", config.anomaly_density, 0.0, MAX_DENSITY),
        "anomalies": checked_anomalies(config.anomalies, limit, tier.name),
    }
    if config.anomaly_count is not None:
        checked["anomaly_count"] = int_in("anomaly_count", config.anomaly_count, 0, limit)
    elif config.anomaly_count_range is None:
        raise ValueError("a config without anomaly_count needs an anomaly_count_range to draw it from")
    checked["incident_kinds"] = checked_incident_kinds(config.incident_kinds, tier, config.scenario_family)
    checked["decoy_ratio"] = number_in("decoy_ratio", config.decoy_ratio, 0.0, MAX_DECOY_RATIO)
    if _is_cuboid(tier):
        checked.update(_cuboid_dial(config, tier))
    checked["max_steps"] = int_in("max_steps", config.max_steps, 1, 500)
    checked["max_submissions"] = int_in("max_submissions", config.max_submissions, 1, 20)
    return checked


def _cuboid_dial(config: EpisodeConfig, tier: Tier) -> dict[str, Any]:
    """A cuboid tier's dial (CUBOID_KNOBS), checked."""
    fields = tier_fields(tier)
    raw = config.dimensions
    if (
        not isinstance(raw, (list, tuple))
        or not all(isinstance(name, str) for name in raw)
        or "platform" not in raw
        or set(raw) - set(fields)
        or len(set(raw)) != len(raw)
    ):
        raise ValueError(
            f"dimensions must be a list of distinct dimensions of {tier.name!r} that includes "
            f"platform; valid: {', '.join(fields)}; got {raw!r}"
        )
    dimensions = tuple(name for name in fields if name in raw)
    free = [name for name in dimensions if name != "app_version"]
    depth = int_in("max_cuboid_depth", config.max_cuboid_depth, 1, MAX_CUBOID_DEPTH)
    if depth > len(free):
        raise ValueError(
            f"max_cuboid_depth {depth} needs at least {depth} dimensions besides app_version in play; "
            f"dimensions has {len(free)} ({', '.join(free)})"
        )
    low, high = MAGNITUDE_SCALE_RANGE
    return {
        "dimensions": dimensions,
        "max_cuboid_depth": depth,
        "magnitude_scale": number_in("magnitude_scale", config.magnitude_scale, low, high),
        "concurrency": int_in("concurrency", config.concurrency, 0, MAX_CONCURRENCY),
        "note_share": number_in("note_share", config.note_share, 0.0, 1.0),
    }


def incident_count(config: EpisodeConfig) -> int:
    """The episode's number of incidents: fixed by the config, or drawn from its range (hidden from the agent)."""
    if config.anomaly_count is not None:
        return config.anomaly_count
    assert config.anomaly_count_range is not None, "a config without a count must carry a count range"
    low, high = config.anomaly_count_range
    return int(derive_rng(config.key, "anomaly_count").integers(low, high + 1))


def tier_config(tier: Tier, **settings: Any) -> EpisodeConfig:
    """A mixed episode at a tier's defaults (density, steps, submissions, decoy ratio, dial), with `settings` set."""
    return EpisodeConfig(**{"seed": 0, "scenario_family": "mixed", "tier": tier, **_tier_defaults(tier), **settings})


def _tier_defaults(tier: Tier) -> dict[str, Any]:
    """The settings a tier gives an episode that sets none of them."""
    return {
        "anomaly_density": tier.default_density,
        "max_steps": tier.max_steps,
        "max_submissions": tier.max_submissions,
        "decoy_ratio": DEFAULT_DECOY_RATIO if tier.segmented is None else tier.segmented.decoy_ratio,
        **_dial_defaults(tier),
    }


def cuboid_defaults(difficulty: str) -> dict[str, Any]:
    """A cuboid tier's dial at its defaults (tiers.py), or nothing at any other tier."""
    return _dial_defaults(TIERS[difficulty])


def _dial_defaults(tier: Tier) -> dict[str, Any]:
    mix = tier.segmented
    if mix is None or not mix.cuboid_root_causes:
        return {}
    return {
        "dimensions": tier_fields(tier),
        "max_cuboid_depth": mix.max_cuboid_depth,
        "magnitude_scale": mix.magnitude_scale,
        "concurrency": mix.concurrency,
        "note_share": mix.note_share,
    }


def tier_fields(tier: Tier) -> tuple[str, ...]:
    """The report fields of a segmented tier's dimensions, in its order."""
    return tuple(DIMENSIONS[name].field for name in tier.dimensions)


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
        base = _difficulty_default(_tier_named(overrides.get("difficulty", "medium"), version))
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
    reference = base if base.task_id is not None else _difficulty_default(tier)
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


def at_version(config: EpisodeConfig, tier: Tier) -> EpisodeConfig:
    """`config` at `tier`, another version of its own tier: the settings it gives beside its tier's defaults, over
    the other version's defaults (a named task at an earlier version asks what it asked there)."""
    if tier is config.tier or tier.name != config.tier.name:
        return config
    defaults = _tier_defaults(config.tier)
    given = {
        f.name: getattr(config, f.name)
        for f in fields(EpisodeConfig)
        if f.name not in ("tier", "secret", "standard")
        and not (f.name in defaults and getattr(config, f.name) == defaults[f.name])
    }
    return tier_config(tier, **given)


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
    for knobs, separator, applies in ((SEGMENT_KNOBS, " and ", _is_segmented), (CUBOID_KNOBS, ", ", _is_cuboid)):
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
        if _is_segmented(tier)
        else {"incident_kinds": (), "decoy_ratio": DEFAULT_DECOY_RATIO}
    )
    dial = (
        {name: getattr(base, name) for name in CUBOID_KNOBS}
        if same_tier and _is_cuboid(tier)
        else _dial_defaults(tier) or {name: getattr(EpisodeConfig, name) for name in CUBOID_KNOBS}
    )
    given = {name: overrides[name] for name in (*SEGMENT_KNOBS, *CUBOID_KNOBS) if name in overrides}
    return {**knobs, **dial, **given}


def _difficulty_default(tier: Tier) -> EpisodeConfig:
    """The settings of a seeded reset that names only a difficulty (and perhaps a seed)."""
    if tier.count_range is not None:
        return tier_config(tier, anomaly_count=None, anomaly_count_range=tier.count_range)
    return tier_config(
        tier, anomaly_count=min(tier.max_incidents, max(1, round(tier.default_density * tier.window_days)))
    )


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
