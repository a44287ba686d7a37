"""Names and published definitions shared by the generator, the tools, the grader and the wire types.

Everything here is public (no ground truth): the reset observation and the episode brief carry the definitions an
agent needs (metrics, entities, families, severity and baseline rules, the bounds of benign fluctuations); the
rest are the names the tools and the grader share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES, EntityType
from metric_tracker_rl.catalog.tiers import COUNTS, EVENTS, TIERS, DataKind, Holding

# --- funnel ---------------------------------------------------------------------------------------

FUNNEL_EVENTS: tuple[str, ...] = (
    "app_open",
    "menu_open",
    "product_added_to_cart",
    "order_placed",
    "payment_successful",
)
COUNT_COLUMNS: tuple[str, ...] = (
    "app_opens",
    "menu_opens",
    "product_added_to_cart",
    "orders_placed",
    "payment_successful",
)
EVENT_TO_COLUMN = dict(zip(FUNNEL_EVENTS, COUNT_COLUMNS, strict=True))


@dataclass(frozen=True)
class ConversionMetric:
    name: str
    numerator: str  # count column
    denominator: str  # count column

    @property
    def formula(self) -> str:
        return f"{self.numerator} / {self.denominator}"

    @property
    def is_adjacent_step(self) -> bool:
        return COUNT_COLUMNS.index(self.numerator) == COUNT_COLUMNS.index(self.denominator) + 1


def _metric(num_event: str, den_event: str) -> ConversionMetric:
    return ConversionMetric(f"{den_event}_to_{num_event}", EVENT_TO_COLUMN[num_event], EVENT_TO_COLUMN[den_event])


# Adjacent steps first (these are also the funnel steps), then the end-to-end ratios.
CONVERSION_METRICS: tuple[ConversionMetric, ...] = (
    _metric("menu_open", "app_open"),
    _metric("product_added_to_cart", "menu_open"),
    _metric("order_placed", "product_added_to_cart"),
    _metric("payment_successful", "order_placed"),
    _metric("product_added_to_cart", "app_open"),
    _metric("order_placed", "app_open"),
    _metric("payment_successful", "app_open"),
)
CONVERSION_METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in CONVERSION_METRICS)
CONVERSION_BY_NAME = {m.name: m for m in CONVERSION_METRICS}
FUNNEL_STEPS: tuple[str, ...] = tuple(m.name for m in CONVERSION_METRICS if m.is_adjacent_step)

# --- entities -------------------------------------------------------------------------------------

# The events a tracking bug that logs each event more than once can push over the step before it (impossible in a
# real funnel): each converts over half of the step before (a menu open, an order, a payment), so the extra copies
# outnumber it; a cart add, about a third of the menu opens, stays under them. The data-quality family injects only
# these, so they are its valid entity names: the brief's families table and task_overview both read them here.
DATA_QUALITY_EVENTS: tuple[str, ...] = ("menu_opens", "orders_placed", "payment_successful")
ENTITY_TYPES: tuple[str, ...] = ("conversion_rate", "event_count", "funnel_step", "hourly_mix", "data_quality")
ENTITY_NAMES: dict[str, tuple[str, ...]] = {
    "conversion_rate": CONVERSION_METRIC_NAMES,
    "event_count": COUNT_COLUMNS,
    "funnel_step": FUNNEL_STEPS,
    "hourly_mix": COUNT_COLUMNS,
    "data_quality": DATA_QUALITY_EVENTS,
}
# At a raw-event tier (the warehouse) a data defect is reported as a data_quality row on the metric of the dashboard
# it corrupts, named as the counts and rates are everywhere else: any count (app_opens stands for the dashboard's
# sessions, menu_opens for menu_sessions, ...) or step rate. Every other entity type keeps its names.
RAW_EVENT_DATA_QUALITY_NAMES: tuple[str, ...] = (*COUNT_COLUMNS, *FUNNEL_STEPS, "revenue_usd")
RAW_EVENT_ENTITY_NAMES: dict[str, tuple[str, ...]] = {**ENTITY_NAMES, "data_quality": RAW_EVENT_DATA_QUALITY_NAMES}
# The names a report row may name where an episode's data are counts or raw events (tiers.Tier.data).
ENTITY_NAMES_BY_DATA: dict[DataKind, dict[str, tuple[str, ...]]] = {
    COUNTS: ENTITY_NAMES,
    EVENTS: RAW_EVENT_ENTITY_NAMES,
}
# The names valid at some tier, each type's names of counts first.
ENTITY_NAMES_AT_SOME_TIER: dict[str, tuple[str, ...]] = {
    entity_type: tuple(dict.fromkeys(name for names in ENTITY_NAMES_BY_DATA.values() for name in names[entity_type]))
    for entity_type in ENTITY_NAMES
}
ENTITY_VALUE_DEFINITIONS: dict[str, str] = {
    "conversion_rate": "daily numerator count / daily denominator count",
    "event_count": "daily event count",
    "funnel_step": "daily step conversion (next step count / this step count)",
    # As daily_panel.hourly_profiles computes it: the day type is the `weekend` flag (Saturday and Sunday), which a
    # holiday does not set, and the per-hour medians are scaled back to a profile that sums to 1.
    "hourly_mix": "observed_value: total-variation distance (0 to 1) of the date's hourly shares of the event from "
    "its day type's profile: each hour's median share over the other dates of the same day type (weekend = Saturday "
    "or Sunday, the `weekend` flag; a holiday counts as a weekday), renormalised to sum to 1; baseline_value: the "
    "median of that distance on the same weekday in the other weeks; only a rise means the hours moved",
    "data_quality": "daily event count of the event whose instrumentation misbehaves",
}

# --- anomaly families -----------------------------------------------------------------------------

# Derived from the published families (metric_tracker_rl/catalog/families.py): a new family is an entry there, not here.
ANOMALY_TYPES: tuple[str, ...] = PUBLISHED_FAMILIES.names
if TYPE_CHECKING:  # a checker sees a name; the row model's schema sees the enum of the published names
    AnomalyType = str
else:
    AnomalyType = Literal[ANOMALY_TYPES]  # the same JSON enum as the names written out
FAMILY_ENTITY_TYPE: dict[str, EntityType] = PUBLISHED_FAMILIES.entity_types()
# Detection methods the grader accepts for each family (any one earns the method credit).
ACCEPTED_DETECTION_METHODS: dict[str, frozenset[str]] = PUBLISHED_FAMILIES.accepted_detection_methods()
# Each family's own generator tool, in publication order.
FAMILY_GENERATORS: tuple[str, ...] = PUBLISHED_FAMILIES.generators()
# (entity type, sign of the move) -> the family a directional count or rate scan names for the row.
DIRECTIONAL_FAMILIES: dict[tuple[str, int], str] = PUBLISHED_FAMILIES.directional()
if not set(FAMILY_ENTITY_TYPE.values()) <= set(ENTITY_TYPES):
    raise ValueError(f"a published family names an unknown entity type: {FAMILY_ENTITY_TYPE}")

# --- grading (grader.py applies it; the tools publish it) ----------------------------------------------

# A matched row's quality: its key, then each field right (values: a third each for baseline, observed, delta).
QUALITY_WEIGHTS: dict[str, float] = {
    "key": 0.35,
    "anomaly_type": 0.25,
    "detection_method": 0.10,
    "values": 0.20,
    "severity": 0.10,
}
# Methods accepted for every family, but only from an episode that used them (ran at least one successful call):
# a row found with SQL may say `query`, and claiming it costs the query step it stands for.
METHODS_ACCEPTED_WHEN_USED: frozenset[str] = frozenset({"query"})
# Which detection_method earns the credit: the grading rule and the report row's schema say it in these words.
DETECTION_METHOD_RULE = (
    f"one of its family's detection_methods, or {' or '.join(sorted(METHODS_ACCEPTED_WHEN_USED))}"
    " once the episode ran it"
)
# The listed tiers with segments, where a row's quality is multiplied by its segment credit.
SEGMENTED_TIERS: tuple[str, ...] = tuple(name for name, tier in TIERS.items() if tier.listed and tier.dimensions)
RELATIVE_TOLERANCE = 0.02  # of the expected value (of the expected baseline for a delta)
# A defect row's repaired value, where a tier asks it (the audit from its version 2): within this share of the
# expected repaired value, half the audit's margin, so the dashboard's own value (which departs from it by more than
# the margin) is never within it.
REPAIRED_TOLERANCE = 0.05
# What happens to a submission with a row invalid without any truth (catalog.validation.validate_rows says which):
# it is refused before grading, so no such row is ever a false positive.
REFUSED_ROWS_RULE = (
    "A submission with an invalid row (a date outside the window, an entity not valid for its type, a segment value "
    "the episode does not have) or a key repeated is refused before grading, using no submission."
)
GRADING_RULE = (
    "score = recall_quality * precision. recall_quality = the sum of the expected rows' quality / the number of "
    "expected rows (a missed row has quality 0). A reported row's quality = {key} for its key (date, entity_type, "
    "entity_name) + {anomaly_type} anomaly_type + {detection_method} detection_method ({method_rule}) + {values} "
    "values (baseline, observed and delta each within {tolerance:.0%} of the expected value, the delta of the "
    "expected baseline: a third each) + {severity} severity; with segments ({segmented}) it is multiplied by the "
    "segment credit. precision = (matched + 1) / (matched + false_positives + 1), where matched = the expected keys"
    " reported and false_positives = every other row, a side effect of an incident (a neutral row) included. "
    f"{REFUSED_ROWS_RULE} So report each incident on its root-cause key, one row per date it lasts. One graded"
    " submission by default; it ends the episode, and its result then lists every submitted row's verdict and the "
    "expected keys no row reported."
).format(
    tolerance=RELATIVE_TOLERANCE,
    method_rule=DETECTION_METHOD_RULE,
    segmented=", ".join(SEGMENTED_TIERS),
    **QUALITY_WEIGHTS,
)

# The segment credit where a tier's config says `overlap` (deep; grader.segment_overlap applies it). Published in
# task_overview's grading entry and the brief's segments at such a tier; frontier keeps its table.
OVERLAP_CREDIT_RULE = (
    "The segment credit is coverage x purity: coverage = T(R and I) / T(I), purity = T(R and I) / T(R), R the row's "
    "segment and I the incident's, each the traffic matching every field it names (an omitted field: all its "
    "values; R and I: both, none where they name different values of a field); T(S) = the app_opens of S on the "
    "incident's date as observed (daily_by_segment). The exact segment earns 1, one sharing no traffic with the "
    "incident 0, a row without segment T(I) / T(all traffic)."
)

# Where a tier's config sets `twin_z` (abyss): two segments the data of a date cannot tell apart are credited alike
# (generation/twins.py finds them, grader.truths_of grades against them). Published in task_overview's grading entry;
# the brief's incident_shape points there.
TWIN_CREDIT_RULE = (
    "Where a row's segment is its incident's with one field more or less, the row is credited as the incident's own "
    "(segment credit 1, its values judged on its own segment's data) on a date when the incident's fall would stand "
    "under {twin_z:g} in the traffic one of the two holds and the other does not, sized as the brief's incident_shape "
    "sizes an all-day incident (z = f / sd, f the fall that date, n, p and L that traffic's, expected): the data "
    "cannot tell the two apart. Only an all-day incident on a step's conversion has such segments."
)


# --- severity -------------------------------------------------------------------------------------

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
# Upper bounds (exclusive) of low, medium, high; anything above the last bound is critical.
RELATIVE_SEVERITY_BOUNDS: tuple[float, float, float] = (0.15, 0.30, 0.60)
HOURLY_MIX_SEVERITY_BOUNDS: tuple[float, float, float] = (0.05, 0.10, 0.20)
SEVERITY_RULE = (
    "Judged on the row's own baseline_value and observed_value (for a funnel_break, the step's daily conversion), "
    "never on the family's magnitude. hourly_mix: by |delta| (a distance in [0, 1]): < 0.05 low, < 0.10 medium, "
    "< 0.20 high, else critical. Every other entity type: by |delta| / |baseline|: < 0.15 low, < 0.30 medium, "
    "< 0.60 high, else critical."
)


def severity_for(entity_type: str, baseline: float, observed: float) -> Severity:
    """The published severity rule (the grader's truth and the tools' rows both use it)."""
    delta = abs(observed - baseline)
    if entity_type == "hourly_mix":
        deviation, bounds = delta, HOURLY_MIX_SEVERITY_BOUNDS
    else:
        deviation, bounds = delta / max(abs(baseline), 1e-12), RELATIVE_SEVERITY_BOUNDS
    for label, bound in zip(SEVERITIES, bounds, strict=False):
        if deviation < bound:
            return label
    return "critical"


def severity_indices(entity_type: str, baseline: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """The same rule over arrays of finite values: the index into SEVERITIES of each element's label."""
    delta = np.abs(observed - baseline)
    if entity_type == "hourly_mix":
        deviation, bounds = delta, HOURLY_MIX_SEVERITY_BOUNDS
    else:
        deviation, bounds = delta / np.maximum(np.abs(baseline), 1e-12), RELATIVE_SEVERITY_BOUNDS
    # The first bound above the deviation names the label: the count of bounds at or below it.
    indices: np.ndarray = np.searchsorted(np.asarray(bounds), deviation, side="right")
    return indices


# How a version's baseline reads its peers: the rule every segment's follows, its dates whatever the version's traffic
# (a property test holds the truth's baselines to it, tests/test_text_truth.py).
VERSION_PEERS = (
    "A version's peers are those dates whatever its traffic (get_releases): before its rollout its counts are 0 "
    "and are peers, its rates have no value and are skipped; once it is replaced, its counts and rates are peers "
    "however small."
)
BASELINE_RULE = (
    "baseline_value = median of the entity's value on the same weekday in the other weeks of the window, the date "
    "excluded (three peers in four weeks, seven in eight: see baseline_dates); a peer without a value is skipped (a "
    "rate whose denominator is 0, as for a version before its rollout) and an even number of peers gives the mean "
    "of the middle two, so one unusual peer cannot move it but a change that lasts for weeks can. delta_value = "
    "observed_value - baseline_value; robust z = delta_value / (1.4826 * median |delta_value| over the entity's "
    "dates). " + VERSION_PEERS
)


# What each kind of calendar note means. Every kind but `release` explains its date: the move it describes is not
# an incident. A release note is realistic calendar noise in these tiers: it neither explains nor causes a move.
ANNOTATION_MEANINGS: dict[str, str] = {
    "marketing_campaign": "explains the burst of opens in its hours and its side effects",
    "public_holiday": "explains a day of lower, weekend-like traffic",
    "data_freshness": "explains the date's incomplete counts (late-arriving data)",
    "release": "an app version shipped; at this difficulty no incident comes from a release, but one may fall on a "
    "release's date: judge that date like any other",
}


def row_key(date: str, entity_type: str, entity_name: str) -> str:
    return f"{date}|{entity_type}|{entity_name}"


# --- hours at a segmented tier (the tools read them; the generator places hourly incidents where they can) --------

# An hour with fewer events than this at a step's earlier event is too noisy to judge a conversion by
# (detect_funnel_break leaves it out).
MIN_HOURLY_DENOMINATOR = 20
# Where the hours of an incident are served (a brief states it at a tier whose channel and user type are daily).
HOURLY_EVIDENCE_GRAIN = (
    "An incident whose evidence is a block of hours (a funnel_break, an hourly_traffic_mix_shift, an "
    "absolute_drop_in_event_count of hours) is confined to platform, country and/or app_version, where hours "
    "are served; a change confined by channel or user type is always an all-day change."
)


# Benign, unannotated fluctuations (medium and hard): a day's demand swings by a share in DEMAND_SWING_SHARE
# (every event and hour together, conversion unchanged), or people use the app TIMING_SHIFT_HOURS earlier or
# later (the hour-of-day curve of every event moves, daily totals and conversion do not). Neither is an
# incident. On easy and medium every count incident moves its day's volume by at least COUNT_INCIDENT_MIN_SHARE,
# well clear of any demand swing, so the daily total tells the two apart.
DEMAND_SWING_SHARE: tuple[float, float] = (0.06, 0.14)
TIMING_SHIFT_HOURS: tuple[int, ...] = (1, 2)
COUNT_INCIDENT_MIN_SHARE = 0.28
# Difficulties whose demand swings overlap the count incidents' magnitudes (which reach down into the swings): no
# published threshold separates them, their signature does. A swing scales every hour of every event together;
# a count incident there is confined to a block of hours, so it moves every event's hour-of-day mix as well.
# Each tier's config (tiers.py) says whether its swings overlap.
OVERLAPPING_DEMAND_SWING_SHARE: dict[str, tuple[float, float]] = {
    tier.name: tier.aggregate.overlapping_demand_swing_share
    for tier in TIERS.values()
    if tier.aggregate is not None and tier.aggregate.overlapping_demand_swing_share is not None
}
# On those difficulties the day's audience may differ too (a school holiday, a big match): every one of the first
# AUDIENCE_SWING_STEPS funnel steps converts better or worse together, by a relative share in AUDIENCE_SWING_SHARE,
# as far as a rate incident moves its one step. Not an incident: a rate incident moves one step alone.
AUDIENCE_SWING_SHARE: tuple[float, float] = (0.15, 0.30)
AUDIENCE_SWING_STEPS = 3


def demand_swing_share(difficulty: str) -> tuple[float, float]:
    """The range a demand swing's share of the day's volume is drawn from at a difficulty."""
    return OVERLAPPING_DEMAND_SWING_SHARE.get(difficulty, DEMAND_SWING_SHARE)


def fluctuation_bounds(difficulty: str) -> dict[str, list[float] | list[int] | list[str] | float | str]:
    """The benign fluctuations' bounds an episode of this difficulty publishes; the gap between demand swings and
    count incidents only where there is one."""
    bounds: dict[str, list[float] | list[int] | list[str] | float | str] = {
        "demand_swing_share": list(demand_swing_share(difficulty)),
        "timing_shift_hours": list(TIMING_SHIFT_HOURS),
    }
    meaning = (
        "demand_swing_share: of the day's expected volume, every event and hour together; timing_shift_hours: "
        "every event's hours, earlier or later"
    )
    if difficulty in OVERLAPPING_DEMAND_SWING_SHARE:
        bounds["audience_swing_share"] = list(AUDIENCE_SWING_SHARE)
        bounds["audience_swing_steps"] = list(FUNNEL_STEPS[:AUDIENCE_SWING_STEPS])
        meaning += (
            "; audience_swing_share: a relative change of the conversion probability of every one of the "
            "audience_swing_steps together, all in the same direction"
        )
    else:
        bounds["count_incident_min_share"] = COUNT_INCIDENT_MIN_SHARE
        meaning += "; count_incident_min_share: the least share of the day's volume a count incident moves"
    bounds["meaning"] = meaning + (
        ". These bound what was injected: a day's observed values add sampling noise, "
        "so an observed change can go a little past its bound."
    )
    return bounds


# The difficulties are the tiers of tiers.py, in its order: easy, medium and hard share one four-week aggregate
# funnel; frontier splits traffic by segment (platform, country, app version) over a longer window (see segments.py).
DIFFICULTIES: tuple[str, ...] = tuple(name for name, tier in TIERS.items() if tier.listed)
RESET_DIFFICULTIES: tuple[str, ...] = tuple(TIERS)  # what reset accepts: the listed tiers and any being built
AGGREGATE_DIFFICULTIES: tuple[str, ...] = tuple(name for name, tier in TIERS.items() if not tier.dimensions)
SEGMENTED_DIFFICULTIES: tuple[str, ...] = tuple(name for name, tier in TIERS.items() if tier.dimensions)


def difficulties_holding(*holdings: Holding) -> tuple[str, ...]:
    """The tiers (listed or not) whose episodes hold every one of `holdings`, in publication order: where a tool
    that reads them answers (analysis_tools.registry.ToolSpec.reads)."""
    return tuple(name for name, tier in TIERS.items() if tier.holds.issuperset(holdings))


# The tiers whose data are counts (the tools over counts answer there), and those whose data are a raw event export
# (the SQL tool over its tables and its metrics layer).
COUNT_DIFFICULTIES: tuple[str, ...] = difficulties_holding(COUNTS)
RAW_EVENT_DIFFICULTIES: tuple[str, ...] = difficulties_holding(EVENTS)
AGGREGATE_WINDOW_DAYS = TIERS[AGGREGATE_DIFFICULTIES[0]].window_days  # the window a difficulty not named here reads
FRONTIER_WINDOW_DAYS = TIERS["frontier"].window_days
LONGEST_WINDOW_DAYS = max(tier.window_days for tier in TIERS.values())
SCENARIO_FAMILIES: tuple[str, ...] = (*ANOMALY_TYPES, "mixed", "null")


# What each knob of a visible config means (the brief's config_meaning shows those an episode's config shows).
CONFIG_MEANINGS: dict[str, str] = {
    "scenario_family": "mixed: incidents of any family (with segments, of the incident_kinds); a family's name: "
    "that family only",
    "anomalies": "the incidents the reset asked for (family, date, entity, magnitude)",
    "incident_kinds": "the kinds drawn from, in turn",
    "decoy_ratio": "benign look-alikes per incident (at least 2 unless 0), each on its own dates, as many as fit",
    "dimensions": "the fields a segment may name",
    "max_cuboid_depth": "the most fields a segment names, a version with its platform counting once; "
    "partner_payment_failure and experiment_breakage may name 2 at any setting",
    "magnitude_scale": "every kind's default size range times this",
    "concurrency": "a count, not a switch: how many incidents (of the incident count, at most all but one; 0: none) "
    "are second incidents, each a level_shift of one date on another incident's date (mixed episodes "
    "with level_shift), on a step that date's incidents and experiments leave alone, in a segment "
    "that keeps one of that incident's field values and agrees with it on every field both name; "
    "with no step free, a segment_outage on a date of its own",
    "note_share": "the share of partner_payment_failures with a partner_status notice",
    "standard": "true: the tier's defaults but the seed (as published scores use)",
    "held_out": "true: seeded with a server secret, so its seed cannot rebuild it",
}
# Where the data are raw events a null episode of the defaults is standard too (no shown setting tells it apart).
STANDARD_WITH_NULL = "true: the tier's defaults but the seed (a null episode's too), as published scores use"
# Shown config keys that need no meaning: their name says it, or a brief entry does (incidents, steps_remaining,
# submissions_remaining).
CONFIG_SELF_EXPLAINED: frozenset[str] = frozenset(
    {"seed", "task_id", "difficulty", "version", "anomaly_count", "anomaly_count_range", "max_steps", "max_submissions"}
)


def config_meaning(config: Mapping[str, Any]) -> dict[str, str]:
    """The meaning of every knob a visible config shows that its name does not explain (at a tier that draws leaf
    blips, decoy_ratio's says how many it brings besides the look-alikes)."""
    meanings = {key: CONFIG_MEANINGS[key] for key in config if key in CONFIG_MEANINGS}
    tier = TIERS.get(str(config.get("difficulty")))  # its latest: these texts are every version's so far
    if "standard" in meanings and tier is not None and not tier.mix.shows_incident_count:
        meanings["standard"] = STANDARD_WITH_NULL
    if "decoy_ratio" in meanings and tier is not None and tier.segmented is not None:
        meanings["decoy_ratio"] += f" ({tier.perturbed_per_weekday} held dates a weekday at most)"
        if tier.segmented.leaf_blips:
            meanings["decoy_ratio"] += (
                f"; plus {tier.segmented.leaf_blips:g} leaf_blips per incident times this "
                "on dates still free, none if none is"
            )
    return meanings


def incident_count_statement(config: Mapping[str, Any]) -> str:
    """All an agent may infer about how many incidents an episode holds, from its visible config. The config's
    anomaly_density is not a count to multiply out: a seeded medium or hard episode draws its count from the
    range shown, whatever the density. Where the data are raw events (the warehouse and the audit) the visible config
    counts nothing: catalog.shown_config states the tier's rule instead."""
    count, count_range = config.get("anomaly_count"), config.get("anomaly_count_range")
    rows = "; an incident of several dates has a row on each"
    if count is not None:
        if count == 0:
            return "none: this episode holds no incident, so the right report is empty"
        return f"exactly {count}{rows}"
    if count_range is not None:
        low, high = count_range
        return f"between {low} and {high}, drawn per episode{rows}"
    raise ValueError(f"a visible config holds anomaly_count or anomaly_count_range: {sorted(config)}")


# Where the data are raw events, the incidents line counts business incidents (injected: what users did) only.
DEFECTS_NOT_COUNTED = "data defects are not counted here"
INCIDENT_ROWS = {
    False: "an incident of several dates has a row on each",
    True: "an incident has a row on each date that is a finding of it (findings), so it may have none",
}
