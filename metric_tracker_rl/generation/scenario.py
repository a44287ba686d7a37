"""Config -> funnel -> incidents and distractors -> public data + hidden ground truth.

The ground truth is made here from the injection records alone: which keys are anomalous comes from what
was injected; their numbers are read back from the final data with the published baseline rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from metric_tracker_rl.generation.anomalies import FAMILY_REGISTRY, FamilyRegistry, InjectionRecord
from metric_tracker_rl.generation.anomalies.rate_shift import MAX_STEP_RATE
from metric_tracker_rl.generation.frontier import build_world
from metric_tracker_rl.spec.families import PUBLISHED_FAMILIES
from metric_tracker_rl.spec.plain_types import MetricSubmissionRow, submission_row_type
from metric_tracker_rl.spec.published import (
    AUDIENCE_SWING_SHARE,
    AUDIENCE_SWING_STEPS,
    CONVERSION_BY_NAME,
    COUNT_COLUMNS,
    SEGMENTED_DIFFICULTIES,
    TIMING_SHIFT_HOURS,
    demand_swing_share,
    row_key,
    severity_for,
)
from metric_tracker_rl.spec.seeding import derive_rng
from metric_tracker_rl.spec.tasks import TASKS, EpisodeConfig, incident_count
from metric_tracker_rl.spec.tiers import LATE_DATA, TIERS, AggregateMix, Tier
from metric_tracker_rl.world.daily_panel import MetricPanel, build_panel, count_ratio, peer_median, same_weekday_peers
from metric_tracker_rl.world.funnel import (
    WEEKEND_HOUR_SHARE,
    FunnelData,
    FunnelPlan,
    baseline_plan,
    draw_counts,
    window_calendar,
)
from metric_tracker_rl.world.public_episode import Annotation, PublicEpisode
from metric_tracker_rl.world.segments import CELL_FIELDS, Segment, world_of

T = TypeVar("T")


def objective_for(config: EpisodeConfig) -> str:
    if config.task_id is not None:
        return TASKS[config.task_id].objective
    if config.difficulty in SEGMENTED_DIFFICULTIES:
        return segmented_objective(config.difficulty)
    return ("Find every incident in four weeks of funnel data and report each one (date, entity, family, "
            "baseline, observed value, delta, severity). Days explained by the calendar and side effects of an "
            "incident are not incidents, nor are unannotated swings in demand or timing within their published bounds "
            "(a timing shift may also fall on an incident's date). An incident that lasts several dates is reported "
            "once per date. Some episodes contain no incident: then submit an empty report.")

# The detection method of each family's expected rows: its own generator tool.
CANONICAL_METHOD: dict[str, str] = {family.name: family.generator for family in PUBLISHED_FAMILIES}


@dataclass(frozen=True)
class DistractorRecord:
    kind: str
    day: int
    description: str


@dataclass(frozen=True)
class GroundTruth:
    expected_rows: tuple[MetricSubmissionRow, ...]
    neutral_keys: frozenset[str]
    injections: tuple[InjectionRecord, ...]
    distractors: tuple[DistractorRecord, ...]  # annotated: the calendar explains them
    fluctuations: tuple[DistractorRecord, ...] = ()  # unannotated and benign: within published normal bounds

    @property
    def incident_count(self) -> int:
        """Incidents, not rows: an incident that lasts two dates has a row on each."""
        return sum(record.continues is None for record in self.injections)

    @property
    def expected_keys(self) -> frozenset[str]:
        return frozenset(row_key(r.date, r.entity_type, r.entity_name) for r in self.expected_rows)


@dataclass(frozen=True)
class Episode:
    config: EpisodeConfig
    public: PublicEpisode
    truth: GroundTruth


# --- distractors: days that look anomalous for a documented, legitimate reason ---------------------

CAMPAIGN_NAMES = ("Weekend Feast", "Lunch Rush", "Free Delivery Week", "Family Bundle", "Spring Menu")
HOLIDAYS = ("Founders Day", "Spring Bank Holiday", "Harvest Day", "Civic Holiday")


def _marketing_campaign(plan: FunnelPlan, day: int, rng: np.random.Generator) -> tuple[str, str]:
    start = int(rng.choice([11, 12, 17, 18]))
    end = start + int(rng.integers(3, 5))
    extra = rng.uniform(0.35, 0.7) * plan.traffic[day].sum()
    weights = plan.traffic[day, start:end] / plan.traffic[day, start:end].sum()
    plan.traffic[day, start:end] += extra * weights
    plan.step_rates[day, start:end, 0] *= 0.93  # campaign clicks browse a little less
    name = str(rng.choice(CAMPAIGN_NAMES))
    note = (f"Marketing push campaign '{name}' sent to all users at {start:02d}:00; expect a burst of app "
            f"opens until about {end:02d}:00.")
    return "marketing_campaign", note


def _incomplete_last_day(plan: FunnelPlan, day: int, rng: np.random.Generator) -> tuple[str, str]:
    cutoff = int(rng.integers(15, 21))
    plan.ingested_fraction[day, cutoff:] = rng.uniform(0.0, 0.15, 24 - cutoff)
    note = (f"Data freshness: events for this date after about {cutoff:02d}:00 have not fully arrived yet "
            "(late-arriving data); the date's totals are incomplete.")
    return "data_freshness", note


def _public_holiday(plan: FunnelPlan, day: int, rng: np.random.Generator) -> tuple[str, str]:
    total = plan.traffic[day].sum() * rng.uniform(0.75, 0.85)
    plan.traffic[day] = total * WEEKEND_HOUR_SHARE
    name = str(rng.choice(HOLIDAYS))
    return "public_holiday", f"Public holiday ({name}): lower traffic with a weekend-like daily pattern."


DISTRACTORS = {
    "marketing_campaign": _marketing_campaign,
    "incomplete_last_day": _incomplete_last_day,
    "public_holiday": _public_holiday,
}


# --- benign fluctuations: unannotated days that move within published bounds, never incidents ----------

def _demand_swing(plan: FunnelPlan, day: int, rng: np.random.Generator, difficulty: str) -> str:
    share = float(rng.uniform(*demand_swing_share(difficulty))) * (1 if rng.random() < 0.5 else -1)
    plan.traffic[day] *= 1.0 + share
    return (f"demand {'rose' if share > 0 else 'fell'} by {abs(share):.0%} all day (weather, a local event): "
            "every event and hour together, conversion unchanged")


def _roll_hours(values: np.ndarray, hours: int) -> np.ndarray:
    """np.roll(values, hours, axis=0) for 0 < |hours| < 24, at a quarter of its cost (resets roll often)."""
    return np.concatenate((values[-hours:], values[:-hours]))


def _timing_shift(plan: FunnelPlan, day: int, rng: np.random.Generator, difficulty: str) -> str:  # noqa: ARG001
    """`difficulty` is unused: a timing shift is the same at every difficulty (FLUCTUATIONS share one signature)."""
    hours = int(rng.choice(TIMING_SHIFT_HOURS)) * (1 if rng.random() < 0.5 else -1)
    # The day's sessions keep their behaviour and just happen at other hours: traffic and conversion move together.
    plan.traffic[day] = _roll_hours(plan.traffic[day], hours)
    plan.step_rates[day] = _roll_hours(plan.step_rates[day], hours)
    return (f"people used the app about {abs(hours)} hour{'s' * (abs(hours) > 1)} "
            f"{'later' if hours > 0 else 'earlier'} than usual: the hour-of-day curve moved, daily totals and "
            "conversion did not")


def _audience_swing(plan: FunnelPlan, day: int, rng: np.random.Generator, difficulty: str) -> str:  # noqa: ARG001
    """`difficulty` is unused: only difficulties with overlapping swings draw audience swings (BENIGN_FLUCTUATIONS)."""
    share = float(rng.uniform(*AUDIENCE_SWING_SHARE)) * (1 if rng.random() < 0.5 else -1)
    steps = slice(0, AUDIENCE_SWING_STEPS)
    plan.step_rates[day, :, steps] = np.minimum(plan.step_rates[day, :, steps] * (1.0 + share), MAX_STEP_RATE)
    return (f"a different audience: the first {AUDIENCE_SWING_STEPS} funnel steps all converted about "
            f"{abs(share):.0%} {'better' if share > 0 else 'worse'} than usual, together, all day")


FLUCTUATIONS = {"demand_swing": _demand_swing, "timing_shift": _timing_shift, "audience_swing": _audience_swing}


# --- scheduling ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Planned:
    family: str
    day: int
    entity_name: str
    magnitude: float | None
    continues: int | None = None  # the day of the incident this date continues


def _open_days(num_days: int, taken: set[int], reserved_weekday: int | None, limit: int) -> list[int]:
    """Dates that may still take a perturbation: not the latest, not taken, and their weekday not yet full (it
    holds fewer than `limit`, the tier's perturbed dates per weekday)."""
    per_weekday = [0] * 7
    for day in taken:
        per_weekday[day % 7] += 1
    open_weekday = [count < limit and weekday != reserved_weekday for weekday, count in enumerate(per_weekday)]
    return [d for d in range(num_days - 1) if open_weekday[d % 7] and d not in taken]


def _pick(options: Sequence[T], rng: np.random.Generator) -> T:
    """What `rng.choice(options)` draws (the same stream), without building an array: resets call it often."""
    return options[int(rng.integers(len(options)))]


def _draw_day(num_days: int, taken: set[int], reserved_weekday: int | None, limit: int,
              rng: np.random.Generator) -> int:
    """A uniformly drawn open date: perturbations share weekdays as chance has it, within the limit."""
    return _pick(_open_days(num_days, taken, reserved_weekday, limit), rng)


def _family_sequence(config: EpisodeConfig, rng: np.random.Generator, families: FamilyRegistry) -> list[str]:
    count = incident_count(config)
    if config.scenario_family == "mixed":
        order = list(rng.permutation(families.mixed_order()))
        return [str(order[i % len(order)]) for i in range(count)]
    if config.scenario_family == "null":
        return []
    return [config.scenario_family] * count


def _plan_anomalies(config: EpisodeConfig, tier: Tier, dates: list[str], taken: set[int],
                    reserved_weekday: int | None, rng: np.random.Generator, families: FamilyRegistry
                    ) -> list[_Planned]:
    if config.anomalies:
        return [_Planned(a.family, dates.index(a.date), a.entity_name or "", a.magnitude) for a in config.anomalies]
    mix = _mix(tier)
    planned, used_entities = [], set()
    taken = set(taken)
    for family_name in _family_sequence(config, rng, families):
        day = _draw_day(len(dates), taken, reserved_weekday, tier.perturbed_per_weekday, rng)
        taken.add(day)
        names = [n for n in families[family_name].entity_names if (family_name, n) not in used_entities]
        entity = _pick(names or families[family_name].entity_names, rng)
        used_entities.add((family_name, entity))
        planned.append(_Planned(family_name, day, entity, None))
    # Once every incident has its date, an incident of a family that can persist may go on over the next date,
    # if that date is still open.
    for first in list(planned):
        goes_on = rng.random() < mix.multi_day_probability
        if goes_on and families[first.family].persists and \
                first.day + 1 in _open_days(len(dates), taken, reserved_weekday, tier.perturbed_per_weekday):
            taken.add(first.day + 1)
            planned.append(_Planned(first.family, first.day + 1, first.entity_name, None, continues=first.day))
    return sorted(planned, key=lambda p: p.day)


def _shifted_incident_days(config: EpisodeConfig, tier: Tier, planned: list[_Planned], rng: np.random.Generator,
                           families: FamilyRegistry) -> set[int]:
    """Incident dates that also get a timing shift: drawn among the first dates of shiftable incidents."""
    if config.anomalies:
        return set()
    eligible = [p.day for p in planned if p.continues is None and families[p.family].public.shiftable]
    chosen: set[int] = set()
    for _ in range(min(_mix(tier).incident_timing_shifts, len(eligible))):
        day = _pick(eligible, rng)
        eligible.remove(day)
        chosen.add(day)
    return chosen


def _mix(tier: Tier) -> AggregateMix:
    assert tier.aggregate is not None, f"tier {tier.name!r} is not an aggregate tier"
    return tier.aggregate


def _reserved_weekday(tier: Tier, num_days: int) -> int | None:
    """The latest date's weekday when it carries late-arriving data: no other perturbation may take it."""
    late_data = LATE_DATA in _mix(tier).distractors
    return (num_days - 1) % 7 if late_data else None


def validate_custom_anomalies(config: EpisodeConfig, dates: list[str], families: FamilyRegistry) -> None:
    per_weekday: Counter[int] = Counter()
    days: set[int] = set()
    tier = TIERS[config.difficulty]
    reserved_weekday = _reserved_weekday(tier, len(dates))
    limit = tier.perturbed_per_weekday
    for i, request in enumerate(config.anomalies):
        where = f"anomalies[{i}]"
        if request.family not in families:
            raise ValueError(f"{where}: unknown family {request.family!r}; valid: {', '.join(families)}")
        family = families[request.family]
        if request.date not in dates[:-1]:
            raise ValueError(f"{where}: date must be one of {dates[0]} .. {dates[-2]} (the last date is kept "
                             f"for data-freshness notes), got {request.date!r}")
        day = dates.index(request.date)
        weekday = day % 7
        if weekday == reserved_weekday:
            raise ValueError(f"{where}: on {config.difficulty} the latest date's weekday is kept for its "
                             "late-arriving data, so its same-weekday baseline stays clean; choose another weekday")
        if day in days:
            raise ValueError(f"{where}: {request.date} already holds a custom anomaly; one per date")
        if per_weekday[weekday] >= limit:
            same = ", ".join(dates[d] for d in sorted(days) if d % 7 == weekday)
            raise ValueError(f"{where}: at most {limit} anomalies may share a weekday (so each "
                             f"same-weekday baseline has at most one perturbed peer); {same} already use "
                             f"{request.date}'s weekday; choose another weekday")
        per_weekday[weekday] += 1
        days.add(day)
        if request.entity_name is not None and request.entity_name not in family.entity_names:
            raise ValueError(f"{where}: entity_name {request.entity_name!r} is not valid for {request.family}; "
                             f"valid: {', '.join(family.entity_names)}")
        low, high = family.magnitude_bounds
        if request.magnitude is not None and not low <= request.magnitude <= high:
            raise ValueError(f"{where}: magnitude for {request.family} ({family.magnitude_meaning}) must be "
                             f"between {low} and {high}, got {request.magnitude}")


FRONTIER_OBJECTIVE = (
    "Find every incident in eight weeks of funnel data split by platform, country and app version, and report "
    "each one on the segment it is confined to (date, entity, family, the segment's baseline, observed value, "
    "delta and severity, and its platform / country / app_version; omit a field that covers all its values). "
    "Holidays are annotated; releases are annotated and sometimes break the new version. Traffic moving between "
    "segments, swings in one segment's demand or timing, and side effects are not incidents. An incident that "
    "lasts several dates is reported once per date. Some episodes contain no incident: then submit an empty report.")


# What a tier with context tables says instead of "Holidays are annotated;": the holidays of every country are
# annotated (and listed with a null country), a single country's are listed only.
CONTEXT_OBJECTIVE = ("Context tables (get_context) list experiments, campaigns, holidays by country, releases and "
                     "payment partners' notices. Holidays of every country are annotated, a single country's are in "
                     "the holidays table only;")


def segmented_objective(difficulty: str) -> str:
    """A segmented tier's objective: frontier's, naming the tier's own dimensions."""
    tier = TIERS[difficulty]
    fields = world_of(tier.dimensions).fields
    if fields == CELL_FIELDS:
        return FRONTIER_OBJECTIVE
    named = [name.replace("_", " ") for name in fields]
    objective = FRONTIER_OBJECTIVE.replace(
        "platform, country and app version", f"{', '.join(named[:-1])} and {named[-1]}").replace(
        "platform / country / app_version", " / ".join(fields))
    if tier.segmented is not None and tier.segmented.context:
        objective = objective.replace("Holidays are annotated;", CONTEXT_OBJECTIVE)
    return objective



def _build_frontier_episode(config: EpisodeConfig) -> Episode:
    """The segmented tier: its world comes from frontier.py; each expected row names its segment."""
    world = build_world(config)
    data = world.data
    calendar = window_calendar(data.num_days)
    aggregate = FunnelData(dates=calendar.iso_dates, weekdays=calendar.weekday_names, weekend=calendar.weekend,
                           hourly=data.hourly.sum(axis=0))
    task = {"task_id": config.task_id, "objective": objective_for(config), "config": config.public_dict()}
    public = PublicEpisode(aggregate, build_panel(aggregate), world.annotations, task, segments=data)
    fluctuations = [DistractorRecord(f.kind, f.day, f"{f.segment.label()}: {f.description}")
                    for f in world.fluctuations]
    truth = build_ground_truth([(i.record, i.segment) for i in world.incidents], public, FAMILY_REGISTRY, (),
                               fluctuations)
    return Episode(config, public, truth)


def build_episode(config: EpisodeConfig, families: FamilyRegistry = FAMILY_REGISTRY) -> Episode:
    """The episode a config names, as its tier (tiers.py) sets it: a segmented tier's from frontier.py, an
    aggregate tier's here. `families`: the injectors an aggregate tier's incidents are drawn from (a segmented
    tier's kinds use the published families)."""
    tier = TIERS[config.difficulty]
    if tier.segmented is not None:
        return _build_frontier_episode(config)
    mix = _mix(tier)
    key = config.key
    plan = baseline_plan(key, tier.window_days)
    dates = [d.isoformat() for d in plan.dates]
    last = plan.num_days - 1
    schedule_rng = derive_rng(key, "schedule")
    if config.anomalies:
        validate_custom_anomalies(config, dates, families)

    # Distractor dates: the late-data note always concerns the latest date; the others take open dates.
    reserved_weekday = _reserved_weekday(tier, plan.num_days)
    limit = tier.perturbed_per_weekday
    taken: set[int] = {dates.index(a.date) for a in config.anomalies}
    distractor_days: dict[str, int] = {}
    for kind in mix.distractors:
        day = last if kind == LATE_DATA else _draw_day(plan.num_days, taken, reserved_weekday, limit, schedule_rng)
        distractor_days[kind] = day
        if kind != LATE_DATA:
            taken.add(day)

    # Benign fluctuations take open dates like the distractors, but nothing annotates them.
    fluctuation_days = []
    for _ in mix.fluctuations:
        day = _draw_day(plan.num_days, taken, reserved_weekday, limit, schedule_rng)
        fluctuation_days.append(day)
        taken.add(day)

    planned_incidents = _plan_anomalies(config, tier, dates, taken, reserved_weekday, schedule_rng, families)
    fluctuations: list[DistractorRecord] = []
    shifted_days = _shifted_incident_days(config, tier, planned_incidents, derive_rng(key, "incident-timing"),
                                          families)
    injections: list[InjectionRecord] = []
    by_day: dict[int, InjectionRecord] = {}
    for index, planned in enumerate(planned_incidents):
        family = families[planned.family]
        if planned.day in shifted_days:  # the day's sessions move first; the incident happens on top of them
            shift_rng = derive_rng(key, "incident-timing", planned.day)
            note = FLUCTUATIONS["timing_shift"](plan, planned.day, shift_rng, config.difficulty)
            fluctuations.append(DistractorRecord("timing_shift", planned.day, note))
        rng = derive_rng(key, f"anomaly/{planned.family}", index)
        entity = planned.entity_name or _pick(family.entity_names, rng)
        magnitude = planned.magnitude
        if planned.continues is not None:
            magnitude = by_day[planned.continues].magnitude
        elif magnitude is None:
            magnitude = family.draw_magnitude(config.difficulty, rng)
        record = family.inject(plan, planned.day, entity, magnitude, rng, config.difficulty)
        if planned.continues is not None:
            record = replace(record, continues=planned.continues,
                             description=f"continues from {dates[planned.continues]}: {record.description}")
        by_day[planned.day] = record
        injections.append(record)

    for index, (kind, day) in enumerate(zip(mix.fluctuations, fluctuation_days, strict=True)):
        rng = derive_rng(key, "fluctuation", index)
        fluctuations.append(DistractorRecord(kind, day, FLUCTUATIONS[kind](plan, day, rng, config.difficulty)))

    annotations: list[Annotation] = []
    distractors: list[DistractorRecord] = []
    for kind, day in distractor_days.items():
        annotation_kind, note = DISTRACTORS[kind](plan, day, derive_rng(key, f"distractor/{kind}"))
        annotations.append(Annotation(dates[day], annotation_kind, note))
        distractors.append(DistractorRecord(kind, day, note))
    # A routine release note on any date: realistic calendar noise that says nothing about the labels.
    notes_rng = derive_rng(key, "annotations")
    release_day = int(notes_rng.integers(0, plan.num_days))
    annotations.append(Annotation(dates[release_day], "release",
                                  f"App release 5.{int(notes_rng.integers(10, 40))}.0 reached 100% of users."))
    annotations.sort(key=lambda a: (a.date, a.kind))

    data = draw_counts(plan, key)
    task = {"task_id": config.task_id, "objective": objective_for(config), "config": config.public_dict()}
    public = PublicEpisode(data, build_panel(data), tuple(annotations), task)
    truth = build_ground_truth([(record, Segment()) for record in injections], public, families, distractors,
                               fluctuations)
    return Episode(config, public, truth)


def daily_series(daily: np.ndarray, entity_type: str, entity_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(D,) values of a count or rate entity from (D, 5) daily counts, and their baseline by the published rule
    (the median of the same weekday's other dates), as build_panel computes them for a funnel. An hourly mix has
    no daily series: a ValueError."""
    if entity_type in ("event_count", "data_quality"):
        values = daily[:, COUNT_COLUMNS.index(entity_name)].astype(float)
    elif entity_type in ("conversion_rate", "funnel_step"):
        metric = CONVERSION_BY_NAME[entity_name]
        values = count_ratio(daily[:, COUNT_COLUMNS.index(metric.numerator)],
                             daily[:, COUNT_COLUMNS.index(metric.denominator)])
    else:
        raise ValueError(f"{entity_type} has no daily series: an incident of it names cells only")
    return values, peer_median(values, same_weekday_peers(len(values)))


def build_ground_truth(incidents: Sequence[tuple[InjectionRecord, Segment]], public: PublicEpisode,
                       families: FamilyRegistry, distractors: Sequence[DistractorRecord] = (),
                       fluctuations: Sequence[DistractorRecord] = ()) -> GroundTruth:
    """The truth of every tier, from the injection records alone: each incident's row is keyed on its record and
    names its segment (the aggregate is the segment of all values), and its numbers are read back from that
    segment's final public data with the published baseline rule."""
    panels: dict[Segment, MetricPanel] = {Segment(): public.panel}
    dates = public.data.dates
    row_type = submission_row_type(families.published.names)
    rows, neutral = [], set()
    for record, incident_segment in incidents:
        segment = incident_segment.normalised()
        family = families[record.family].public
        assert family.entity_type == record.entity_type
        if segment.names_daily_field:  # a cuboid finer than a cell: its daily counts are all there is
            assert public.segments is not None, "a segment incident needs segmented data"
            values, baselines = daily_series(public.segments.segment_daily(segment), record.entity_type,
                                             record.entity_name)
            observed, baseline = float(values[record.day]), float(baselines[record.day])
        else:
            panel = panels.get(segment)
            if panel is None:
                assert public.segments is not None, "a segment incident needs segmented data"
                panel = panels[segment] = build_panel(public.segments.segment_funnel(segment))
            k = panel.index(record.entity_type, record.entity_name)
            observed = float(panel.values[k, record.day])
            baseline = float(panel.baseline[k, record.day])
        scope = {} if segment.is_aggregate else {**dict.fromkeys(CELL_FIELDS), **segment.named()}
        rows.append(row_type(
            date=dates[record.day], entity_type=record.entity_type, entity_name=record.entity_name,
            anomaly_type=record.family, detection_method=family.generator,
            baseline_value=baseline, observed_value=observed, delta_value=observed - baseline,
            severity=severity_for(record.entity_type, baseline, observed), **scope,
        ))
        neutral |= {row_key(dates[record.day], t, n) for t, n in record.neutral}
    expected = {row_key(r.date, r.entity_type, r.entity_name) for r in rows}
    return GroundTruth(tuple(rows), frozenset(neutral - expected), tuple(record for record, _ in incidents),
                       tuple(distractors), tuple(fluctuations))
