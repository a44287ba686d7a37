"""Named tasks and the validated episode configuration (reset keyword arguments)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from metric_tracker_rl.spec.dimensions import DIMENSIONS
from metric_tracker_rl.spec.families import PUBLISHED_FAMILIES
from metric_tracker_rl.spec.plain_types import AnomalyRequest
from metric_tracker_rl.spec.published import RESET_DIFFICULTIES, SCENARIO_FAMILIES, WINDOW_DAYS
from metric_tracker_rl.spec.seeding import EpisodeKey, derive_rng, validate_seed
from metric_tracker_rl.spec.tiers import AGGREGATE_PER_WEEKDAY, DEFAULT_MAX_STEPS, DEFAULT_MAX_SUBMISSIONS, TIERS
from metric_tracker_rl.spec.validation import check_name_in_any_case, describe_validation_error

# Views of the tier configs (tiers.py), by difficulty: a tier is edited there, never here.
_AGGREGATE = {name: tier.aggregate for name, tier in TIERS.items() if tier.aggregate is not None}
# Annotated distractors per episode of an aggregate tier; a segmented tier's calendar (holidays, releases) comes with
# its world (generation/segmented.py).
DISTRACTORS_BY_DIFFICULTY: dict[str, tuple[str, ...]] = {name: mix.distractors for name, mix in _AGGREGATE.items()}
# Unannotated benign fluctuations per episode (see published.DEMAND_SWING_SHARE), each on its own open date: days
# that cross naive thresholds without being incidents. A segmented tier draws its look-alikes per incident.
BENIGN_FLUCTUATIONS: dict[str, tuple[str, ...]] = {name: mix.fluctuations for name, mix in _AGGREGATE.items()}
# Incidents whose date also has a timing shift (people used the app at other hours that day, as on a benign
# timing-shift date): every hourly mix moves, so "a date whose mixes all moved is a timing shift" no longer
# tells a date to drop. Up to this many incident dates per episode, among the families in SHIFTABLE_FAMILIES.
INCIDENT_TIMING_SHIFTS: dict[str, int] = {name: mix.incident_timing_shifts for name, mix in _AGGREGATE.items()}
# Families whose evidence does not depend on the hour-of-day shape, so a timing shift on their date leaves what
# identifies them intact: whole-day rate shifts, a funnel step that stops for some hours, count incidents.
SHIFTABLE_FAMILIES: tuple[str, ...] = PUBLISHED_FAMILIES.shiftable()
# Chance that an incident of a family that can persist (a whole-day rate shift, a double-firing release) goes on
# the next date as well: one expected row per date it covers.
MULTI_DAY_PROBABILITY: dict[str, float] = {name: mix.multi_day_probability for name, mix in _AGGREGATE.items()}
# Perturbed dates (incidents, distractors and fluctuations) may share a weekday, at most PERTURBED_PER_WEEKDAY
# of them in different weeks: a perturbed date then has at most one perturbed peer among its three same-weekday
# peers, so the median baseline stays between two clean values. On medium and hard the latest date's weekday is
# kept for its late-arriving data; the latest date itself never holds an incident.
PERTURBED_PER_WEEKDAY = AGGREGATE_PER_WEEKDAY
MAX_ANOMALIES: dict[str, int] = {name: tier.max_incidents for name, tier in TIERS.items()}
# Seeded medium and hard resets draw their incident count from this range (the visible config shows the range,
# not the count), so the number of incidents is something to find out. Easy keeps a fixed count. The empty
# report is the answer of the null scenario (scenario_family="null"), not of a standard episode.
ANOMALY_COUNT_RANGE: dict[str, tuple[int, int]] = {name: tier.count_range for name, tier in TIERS.items()
                                                   if tier.count_range is not None}
DEFAULT_DENSITY: dict[str, float] = {name: tier.default_density for name, tier in TIERS.items()}
MAX_DENSITY = 0.25
# Under a curriculum budget, the k-th graded submission is credited its score minus RETRY_COST * (k - 1): a retry
# that improves the report still pays, probing submissions to read the feedback do not.
RETRY_COST = 0.25
RESET_KEYS = ("task_id", "seed", "scenario_family", "difficulty", "anomaly_density", "anomaly_count",
              "anomalies", "max_steps", "max_submissions", "incident_kinds", "decoy_ratio", "dimensions",
              "max_cuboid_depth", "magnitude_scale", "concurrency", "note_share", "split", "index")
# The segmented tiers' curriculum knobs (reset arguments valid there only): which kinds of segment incident an
# episode draws from (empty: the tier's kinds) and benign look-alikes per incident (default: the tier's).
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
DIAL_KNOBS: dict[str, type] = {"incident_kinds": list, "decoy_ratio": float, "dimensions": list,
                               "max_cuboid_depth": int, "magnitude_scale": float, "concurrency": int,
                               "note_share": float}


@dataclass(frozen=True)
class EpisodeConfig:
    seed: int
    scenario_family: str
    difficulty: str
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

    @property
    def held_out(self) -> bool:
        return bool(self.secret)

    @cached_property
    def key(self) -> EpisodeKey:
        """Made once per config: a reset reads it for every stream it derives."""
        return EpisodeKey.of(self.seed, self.secret)

    def public_dict(self) -> dict[str, Any]:
        """Every field but the secret, in field order, as plain JSON values, and whether held-out mode is on.

        Built field by field: dataclasses.asdict would deep-copy every value, at about ten times the cost."""
        data: dict[str, Any] = {name: getattr(self, name) for name in _PUBLIC_FIELDS}
        data["anomalies"] = [a.model_dump() for a in self.anomalies]
        if self.anomaly_count_range is None:
            del data["anomaly_count_range"]
        else:
            data["anomaly_count_range"] = list(self.anomaly_count_range)
        # A segmented tier's curriculum knobs are shown where they apply, as plain JSON.
        tier = TIERS.get(self.difficulty)
        if tier is not None and tier.segmented is not None:
            data["incident_kinds"] = list(self.incident_kinds or tier.incident_kinds)
        else:
            del data["incident_kinds"], data["decoy_ratio"]
        if tier is not None and tier.segmented is not None and tier.segmented.cuboid_root_causes:
            data["dimensions"] = list(self.dimensions)
        else:
            for name in CUBOID_KNOBS:
                del data[name]
        data["held_out"] = self.held_out
        return data

    @classmethod
    def from_public(cls, visible: dict[str, Any]) -> EpisodeConfig:
        """The config an observation's visible `config` shows, to rebuild an open-mode episode locally
        (`generation.build_episode`). A held-out episode cannot be rebuilt without the server's secret, which the
        visible config never holds: that is a ValueError, as is a field this class does not have."""
        if visible.get("held_out"):
            raise ValueError("a held-out episode (held_out: true) cannot be rebuilt: the server's secret is part "
                             "of its seed and is never shown")
        unknown = set(visible) - set(_PUBLIC_FIELDS) - {"held_out"}
        if unknown:
            raise ValueError(f"unknown config field(s) {', '.join(sorted(unknown))}; "
                             f"valid: {', '.join(_PUBLIC_FIELDS)}")
        data = {name: value for name, value in visible.items() if name != "held_out"}
        data["anomalies"] = tuple(AnomalyRequest.model_validate(a) for a in data.get("anomalies", ()))
        if data.get("anomaly_count_range") is not None:
            data["anomaly_count_range"] = tuple(data["anomaly_count_range"])
        if data.get("incident_kinds") is not None:
            kinds = tuple(data["incident_kinds"])
            every = TIERS[data["difficulty"]].incident_kinds
            data["incident_kinds"] = () if set(kinds) == set(every) else kinds
        if data.get("dimensions") is not None:
            data["dimensions"] = tuple(data["dimensions"])
        return cls(**data)


_PUBLIC_FIELDS = tuple(f.name for f in fields(EpisodeConfig) if f.name != "secret")


def incident_count(config: EpisodeConfig) -> int:
    """The episode's number of incidents: fixed by the config, or drawn from its range (hidden from the agent)."""
    if config.anomaly_count is not None:
        return config.anomaly_count
    assert config.anomaly_count_range is not None, "a config without a count must carry a count range"
    low, high = config.anomaly_count_range
    return int(derive_rng(config.key, "anomaly_count").integers(low, high + 1))


def tier_config(difficulty: str, **settings: Any) -> EpisodeConfig:
    """A mixed episode at a tier's defaults (density, steps, submissions, decoy ratio), with `settings` set."""
    tier = TIERS[difficulty]
    defaults: dict[str, Any] = {
        "seed": 0, "scenario_family": "mixed", "difficulty": difficulty, "anomaly_density": tier.default_density,
        "max_steps": tier.max_steps, "max_submissions": tier.max_submissions,
        "decoy_ratio": DEFAULT_DECOY_RATIO if tier.segmented is None else tier.segmented.decoy_ratio}
    return EpisodeConfig(**{**defaults, **cuboid_defaults(difficulty), **settings})


def cuboid_defaults(difficulty: str) -> dict[str, Any]:
    """A cuboid tier's dial at its defaults (tiers.py), or nothing at any other tier."""
    mix = TIERS[difficulty].segmented
    if mix is None or not mix.cuboid_root_causes:
        return {}
    return {"dimensions": tier_fields(difficulty), "max_cuboid_depth": mix.max_cuboid_depth,
            "magnitude_scale": mix.magnitude_scale, "concurrency": mix.concurrency, "note_share": mix.note_share}


def tier_fields(difficulty: str) -> tuple[str, ...]:
    """The report fields of a segmented tier's dimensions, in its order."""
    return tuple(DIMENSIONS[name].field for name in TIERS[difficulty].dimensions)


@dataclass(frozen=True)
class TaskSpec:
    task_id: str
    difficulty: str
    objective: str
    grader_name: str
    config: EpisodeConfig = field(repr=False)


GRADER_NAME = "metric_tracker_rl.grading.grader.grade_submission"
TASKS: dict[str, TaskSpec] = {
    spec.task_id: spec
    for spec in (
        TaskSpec(
            "easy_two_spikes", "easy",
            "Two conversion-rate spikes hide in four weeks of funnel data. Report each one with its date, "
            "metric, baseline, observed value, delta and severity; nothing else.",
            GRADER_NAME,
            tier_config("easy", seed=101, scenario_family="rate_spike_from_median", anomaly_count=2,
                        task_id="easy_two_spikes"),
        ),
        TaskSpec(
            "medium_mixed_three", "medium",
            "Three incidents of different families are mixed with a marketing campaign, late-arriving data and "
            "unannotated shifts in timing, one of them on an incident's date. Report the incidents (once per date "
            "when one lasts two dates), classify each family correctly and leave the explained and benign days out.",
            GRADER_NAME,
            tier_config("medium", seed=202, scenario_family="mixed", anomaly_count=3,
                        task_id="medium_mixed_three"),
        ),
        TaskSpec(
            "hard_mixed_multi", "hard",
            "Four weaker incidents of different families, plus a campaign, a holiday, late-arriving data and "
            "unannotated swings in demand and timing, some timing shifts on incident dates. Separate incidents from "
            "explained days, benign fluctuations and side effects, and report only the incidents, once per date "
            "they cover.",
            GRADER_NAME,
            tier_config("hard", seed=303, scenario_family="mixed", anomaly_count=4, task_id="hard_mixed_multi"),
        ),
        TaskSpec(
            "frontier_segments", "frontier",
            "Four incidents hide in eight weeks of funnel data split by platform, country and app version: some "
            "confined to one segment and barely visible in the aggregate, some caused by a release on its new "
            "version only, some lasting several dates. Holidays and releases are annotated; traffic moving between "
            "segments and one segment's swings in demand or timing are benign. Report each incident once per date "
            "on the segment it is confined to.",
            GRADER_NAME,
            tier_config("frontier", seed=404, scenario_family="mixed", anomaly_count=4, task_id="frontier_segments"),
        ),
        TaskSpec(
            "deep_cuboids", "deep",
            "Four incidents hide in eight weeks of funnel data split by platform, country, app version, acquisition "
            "channel and user type, each confined to a combination of one to three of those dimensions (one of "
            "them all three), two on the same date, one lasting two dates. "
            "Experiments, campaigns, holidays, releases and payment partners' notices are in context tables; "
            "their intended effects are not incidents. Report each incident once per date on the combination it "
            "is confined to.",
            GRADER_NAME,
            tier_config("deep", seed=505, scenario_family="mixed", anomaly_count=4, task_id="deep_cuboids"),
        ),
        TaskSpec(
            "abyss_faint_cuboids", "abyss",
            "Four incidents hide in eight weeks of funnel data split by platform, country, app version, acquisition "
            "channel and user type, each at the edge of its own segment's noise (the brief publishes the noise "
            "model) and confined to a combination of those dimensions, among benign blips in single leaf segments "
            "and the explained effects of the context tables. Report each incident once per date on the "
            "combination it is confined to.",
            GRADER_NAME,
            tier_config("abyss", seed=606, scenario_family="mixed", anomaly_count=4, task_id="abyss_faint_cuboids"),
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


def _int_in(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer between {low} and {high}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def resolve_episode_config(secret: str = "", **kwargs: Any) -> EpisodeConfig:
    """Build the episode config from reset kwargs: a named task's config with any fields overridden.

    Without task_id and without other settings, the first task of DEFAULT_TASK_ORDER is used. With
    settings but no task_id, unspecified fields take the defaults of the chosen difficulty. A Task API task
    (`split` and `index`) is resolved by `task_splits.resolve_reset`, which calls this. `secret` is the server's
    held-out secret, never a reset argument. The config is `standard` when it equals its named task's or difficulty's
    defaults in everything but the seed.
    """
    unknown = sorted(set(kwargs) - set(RESET_KEYS))
    if unknown:
        raise ValueError(f"unknown reset argument(s) {', '.join(unknown)}; valid: {', '.join(RESET_KEYS)}")
    overrides = {k: v for k, v in kwargs.items() if v is not None}
    if "split" in overrides or "index" in overrides:
        raise ValueError("split and index name a Task API task: resolve them with task_splits.resolve_reset")
    task_id = overrides.pop("task_id", None)
    if task_id is not None:
        task_id = get_task_spec(task_id).task_id  # names are accepted in any letter case
    if task_id is not None or not overrides:
        base = get_task_spec(task_id if task_id is not None else DEFAULT_TASK_ID).config
    else:
        difficulty = check_name_in_any_case("difficulty", overrides.get("difficulty", "medium"), RESET_DIFFICULTIES)
        base = tier_config(difficulty, anomaly_count=None)
    seed = validate_seed(overrides.get("seed", base.seed))
    difficulty = check_name_in_any_case("difficulty", overrides.get("difficulty", base.difficulty), RESET_DIFFICULTIES)
    family = check_name_in_any_case("scenario_family", overrides.get("scenario_family", base.scenario_family),
                                    SCENARIO_FAMILIES)

    density = overrides.get("anomaly_density", base.anomaly_density)
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not math.isfinite(density) \
            or not 0.0 <= density <= MAX_DENSITY:
        raise ValueError(f"anomaly_density must be a number between 0 and {MAX_DENSITY}, got {density!r}")
    limit = MAX_ANOMALIES[difficulty]
    if "anomaly_count" in overrides:
        count = _int_in("anomaly_count", overrides["anomaly_count"], 0, limit)
    elif "anomaly_density" in overrides or (base.task_id is None and difficulty not in ANOMALY_COUNT_RANGE):
        count = min(limit, max(1, round(density * WINDOW_DAYS[difficulty])))
    elif base.task_id is None:
        count = None  # drawn from the difficulty's range when the episode is built
    else:
        count = min(base.anomaly_count or 0, limit)

    anomalies: tuple[AnomalyRequest, ...] = ()
    if "anomalies" in overrides:
        raw = overrides["anomalies"]
        if not isinstance(raw, (list, tuple)) or len(raw) > limit:
            raise ValueError(f"anomalies must be a list of at most {limit} anomaly objects for difficulty "
                             f"{difficulty!r}, each with family, date, optional entity_name and magnitude")
        try:
            anomalies = tuple(a if isinstance(a, AnomalyRequest) else AnomalyRequest.model_validate(a) for a in raw)
        except ValidationError as exc:
            raise ValueError(f"invalid anomalies entry: {describe_validation_error(exc, limit=1)}; fields: family, "
                             "date, entity_name, magnitude") from None
        family, count = "custom", len(anomalies)
    if family == "null":
        if overrides.get("anomaly_count", 0) != 0:
            raise ValueError("scenario_family 'null' has no anomalies; leave anomaly_count unset or 0")
        count = 0
    incident_kinds, decoy_ratio = _segment_knobs(overrides, base, difficulty, family)
    dial = _cuboid_knobs(overrides, base, difficulty)
    count_range = ANOMALY_COUNT_RANGE[difficulty] if count is None else None
    config = replace(
        base, seed=seed, difficulty=difficulty, scenario_family=family, anomaly_density=float(density),
        anomaly_count=count, anomaly_count_range=count_range, anomalies=anomalies,
        task_id=task_id if task_id is not None else base.task_id,
        max_steps=_int_in("max_steps", overrides.get("max_steps", base.max_steps), 1, 500),
        max_submissions=_int_in("max_submissions", overrides.get("max_submissions", base.max_submissions), 1, 20),
        incident_kinds=incident_kinds, decoy_ratio=decoy_ratio, **dial,
    )
    reference = base if task_id is not None or base.task_id is not None else _difficulty_default(difficulty)
    standard = config == replace(reference, seed=seed)
    return replace(config, standard=standard, secret=secret)


def _segment_knobs(overrides: dict[str, Any], base: EpisodeConfig, difficulty: str, family: str
                   ) -> tuple[tuple[str, ...], float]:
    """incident_kinds and decoy_ratio, validated: at a segmented tier only; kinds with scenario_family 'mixed'
    only."""
    given = [name for name in ("incident_kinds", "decoy_ratio") if name in overrides]
    tier = TIERS[difficulty]
    if given and tier.segmented is None:
        where = " or ".join(repr(name) for name, other in TIERS.items() if other.segmented is not None and other.listed)
        raise ValueError(f"{' and '.join(given)} appl{'y' if len(given) > 1 else 'ies'} at difficulty {where} "
                         f"only, not {difficulty!r}")
    kinds: tuple[str, ...] = base.incident_kinds if tier.segmented is not None else ()
    if "incident_kinds" in overrides:
        raw = overrides["incident_kinds"]
        every = tier.incident_kinds
        valid = ", ".join(every)
        if not isinstance(raw, (list, tuple)) or not raw or not all(isinstance(k, str) for k in raw):
            raise ValueError(f"incident_kinds must be a non-empty list of incident kinds; valid: {valid}")
        unknown = [k for k in raw if k not in every]
        if unknown:
            raise ValueError(f"unknown incident kind(s) {', '.join(map(repr, unknown))}; valid: {valid}")
        if family not in ("mixed", "null"):
            raise ValueError("incident_kinds chooses among the kinds of a mixed scenario; use scenario_family "
                             f"'mixed' with it, not {family!r}")
        chosen = set(raw)
        kinds = () if chosen == set(every) else tuple(k for k in every if k in chosen)
    ratio = overrides.get("decoy_ratio", base.decoy_ratio if tier.segmented is not None else DEFAULT_DECOY_RATIO)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio) \
            or not 0.0 <= ratio <= MAX_DECOY_RATIO:
        raise ValueError(f"decoy_ratio must be a number between 0 and {MAX_DECOY_RATIO:g}, got {ratio!r}")
    return kinds, float(ratio)


def _cuboid_knobs(overrides: dict[str, Any], base: EpisodeConfig, difficulty: str) -> dict[str, Any]:
    """The cuboid dial (CUBOID_KNOBS), validated: at a cuboid tier only; unset knobs keep the base config's, or
    the tier's defaults when the base is another tier's."""
    given = [name for name in CUBOID_KNOBS if name in overrides]
    defaults = cuboid_defaults(difficulty)
    if not defaults:
        if given:
            where = " or ".join(repr(name) for name, tier in TIERS.items() if cuboid_defaults(name) and tier.listed)
            raise ValueError(f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} at difficulty {where} only, "
                             f"not {difficulty!r}")
        return {name: getattr(EpisodeConfig, name) for name in CUBOID_KNOBS}
    current = {name: getattr(base, name) for name in CUBOID_KNOBS} if base.difficulty == difficulty else defaults
    dial = {**current, **{name: overrides[name] for name in given}}
    fields = tier_fields(difficulty)
    raw = dial["dimensions"]
    if not isinstance(raw, (list, tuple)) or not all(isinstance(name, str) for name in raw) \
            or "platform" not in raw or set(raw) - set(fields) or len(set(raw)) != len(raw):
        raise ValueError(f"dimensions must be a list of distinct dimensions of {difficulty!r} that includes "
                         f"platform; valid: {', '.join(fields)}; got {raw!r}")
    dial["dimensions"] = tuple(name for name in fields if name in raw)
    free = [name for name in dial["dimensions"] if name != "app_version"]
    depth = _int_in("max_cuboid_depth", dial["max_cuboid_depth"], 1, MAX_CUBOID_DEPTH)
    if depth > len(free):
        raise ValueError(f"max_cuboid_depth {depth} needs at least {depth} dimensions besides app_version in play; "
                         f"dimensions has {len(free)} ({', '.join(free)})")
    dial["max_cuboid_depth"] = depth
    low, high = MAGNITUDE_SCALE_RANGE
    dial["magnitude_scale"] = _number_in("magnitude_scale", dial["magnitude_scale"], low, high)
    dial["concurrency"] = _int_in("concurrency", dial["concurrency"], 0, MAX_CONCURRENCY)
    dial["note_share"] = _number_in("note_share", dial["note_share"], 0.0, 1.0)
    return dial


def _number_in(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ValueError(f"{name} must be a number between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _difficulty_default(difficulty: str) -> EpisodeConfig:
    """The settings of a seeded reset that names only a difficulty (and perhaps a seed)."""
    tier = TIERS[difficulty]
    if tier.count_range is not None:
        return tier_config(difficulty, anomaly_count=None, anomaly_count_range=tier.count_range)
    return tier_config(difficulty, anomaly_count=min(tier.max_incidents,
                                                     max(1, round(tier.default_density * tier.window_days))))


def task_catalog() -> list[dict[str, Any]]:
    return [
        {"task_id": t.task_id, "difficulty": t.difficulty, "objective": t.objective,
         "grader_name": t.grader_name, "config": t.config.public_dict()}
        for t in TASKS.values()
    ]
