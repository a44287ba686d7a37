"""The aggregate generator (easy, medium, hard): config -> funnel -> incidents and distractors -> public data + hidden
ground truth.

One funnel over four weeks: its baseline plan (funnel.baseline_plan), then, on dates drawn from the tier's calendar
(at most `perturbed_per_weekday` perturbed dates per weekday), the incidents of the published families (each its
family's injector, anomalies/), the annotated distractors the calendar explains and the unannotated benign
fluctuations the tier names (tiers.AggregateMix), then the counts drawn from the edited plan. Every random stream is
derived by name (seeding.derive_rng): the dates from "schedule", each incident from "anomaly/<family>", each
fluctuation from "fluctuation", each distractor from "distractor/<kind>".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from metric_tracker_rl.catalog.published import (
    AUDIENCE_SWING_SHARE,
    AUDIENCE_SWING_STEPS,
    TIMING_SHIFT_HOURS,
    demand_swing_share,
)
from metric_tracker_rl.catalog.seeding import derive_rng
from metric_tracker_rl.catalog.tasks import EpisodeConfig, incident_count
from metric_tracker_rl.catalog.tiers import LATE_DATA, AggregateMix, Tier
from metric_tracker_rl.generation.anomalies import FamilyRegistry, InjectionRecord
from metric_tracker_rl.generation.anomalies.rate_shift import MAX_STEP_RATE
from metric_tracker_rl.generation.episode import (
    AGGREGATE_OBJECTIVE,
    DistractorRecord,
    Episode,
    build_ground_truth,
    visible_task,
)
from metric_tracker_rl.world.daily_panel import build_panel
from metric_tracker_rl.world.funnel import WEEKEND_HOUR_SHARE, FunnelPlan, baseline_plan, draw_counts
from metric_tracker_rl.world.public_episode import Annotation, Counts, PublicEpisode
from metric_tracker_rl.world.segments import Segment

T = TypeVar("T")


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
    note = (
        f"Marketing push campaign '{name}' sent to all users at {start:02d}:00; expect a burst of app "
        f"opens until about {end:02d}:00."
    )
    return "marketing_campaign", note


def _incomplete_last_day(plan: FunnelPlan, day: int, rng: np.random.Generator) -> tuple[str, str]:
    cutoff = int(rng.integers(15, 21))
    plan.ingested_fraction[day, cutoff:] = rng.uniform(0.0, 0.15, 24 - cutoff)
    note = (
        f"Data freshness: events for this date after about {cutoff:02d}:00 have not fully arrived yet "
        "(late-arriving data); the date's totals are incomplete."
    )
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
    return (
        f"demand {'rose' if share > 0 else 'fell'} by {abs(share):.0%} all day (weather, a local event): "
        "every event and hour together, conversion unchanged"
    )


def _roll_hours(values: np.ndarray, hours: int) -> np.ndarray:
    """np.roll(values, hours, axis=0) for 0 < |hours| < 24, at a quarter of its cost (resets roll often)."""
    return np.concatenate((values[-hours:], values[:-hours]))


def _timing_shift(plan: FunnelPlan, day: int, rng: np.random.Generator, difficulty: str) -> str:  # noqa: ARG001
    """`difficulty` is unused: a timing shift is the same at every difficulty (FLUCTUATIONS share one signature)."""
    hours = int(rng.choice(TIMING_SHIFT_HOURS)) * (1 if rng.random() < 0.5 else -1)
    # The day's sessions keep their behaviour and just happen at other hours: traffic and conversion move together.
    plan.traffic[day] = _roll_hours(plan.traffic[day], hours)
    plan.step_rates[day] = _roll_hours(plan.step_rates[day], hours)
    return (
        f"people used the app about {abs(hours)} hour{'s' * (abs(hours) > 1)} "
        f"{'later' if hours > 0 else 'earlier'} than usual: the hour-of-day curve moved, daily totals and "
        "conversion did not"
    )


def _audience_swing(plan: FunnelPlan, day: int, rng: np.random.Generator, difficulty: str) -> str:  # noqa: ARG001
    """`difficulty` is unused: only difficulties with overlapping swings draw audience swings (BENIGN_FLUCTUATIONS)."""
    share = float(rng.uniform(*AUDIENCE_SWING_SHARE)) * (1 if rng.random() < 0.5 else -1)
    steps = slice(0, AUDIENCE_SWING_STEPS)
    plan.step_rates[day, :, steps] = np.minimum(plan.step_rates[day, :, steps] * (1.0 + share), MAX_STEP_RATE)
    return (
        f"a different audience: the first {AUDIENCE_SWING_STEPS} funnel steps all converted about "
        f"{abs(share):.0%} {'better' if share > 0 else 'worse'} than usual, together, all day"
    )


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


def _draw_day(
    num_days: int, taken: set[int], reserved_weekday: int | None, limit: int, rng: np.random.Generator
) -> int:
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


def _plan_anomalies(
    config: EpisodeConfig,
    tier: Tier,
    dates: list[str],
    taken: set[int],
    reserved_weekday: int | None,
    rng: np.random.Generator,
    families: FamilyRegistry,
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
        if (
            goes_on
            and families[first.family].persists
            and first.day + 1 in _open_days(len(dates), taken, reserved_weekday, tier.perturbed_per_weekday)
        ):
            taken.add(first.day + 1)
            planned.append(_Planned(first.family, first.day + 1, first.entity_name, None, continues=first.day))
    return sorted(planned, key=lambda p: p.day)


def _shifted_incident_days(
    config: EpisodeConfig, tier: Tier, planned: list[_Planned], rng: np.random.Generator, families: FamilyRegistry
) -> set[int]:
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


def validate_custom_anomalies(tier: Tier, config: EpisodeConfig, dates: list[str], families: FamilyRegistry) -> None:
    """A reset's own anomalies (`anomalies`), checked against the tier's calendar: a ValueError names what is
    wrong with which one and what is valid."""
    per_weekday: Counter[int] = Counter()
    days: set[int] = set()
    reserved_weekday = _reserved_weekday(tier, len(dates))
    limit = tier.perturbed_per_weekday
    for i, request in enumerate(config.anomalies):
        where = f"anomalies[{i}]"
        if request.family not in families:
            raise ValueError(f"{where}: unknown family {request.family!r}; valid: {', '.join(families)}")
        family = families[request.family]
        if request.date not in dates[:-1]:
            raise ValueError(
                f"{where}: date must be one of {dates[0]} .. {dates[-2]} (the last date is kept "
                f"for data-freshness notes), got {request.date!r}"
            )
        day = dates.index(request.date)
        weekday = day % 7
        if weekday == reserved_weekday:
            raise ValueError(
                f"{where}: on {config.difficulty} the latest date's weekday is kept for its "
                "late-arriving data, so its same-weekday baseline stays clean; choose another weekday"
            )
        if day in days:
            raise ValueError(f"{where}: {request.date} already holds a custom anomaly; one per date")
        if per_weekday[weekday] >= limit:
            same = ", ".join(dates[d] for d in sorted(days) if d % 7 == weekday)
            raise ValueError(
                f"{where}: at most {limit} anomalies may share a weekday (so each "
                f"same-weekday baseline has at most one perturbed peer); {same} already use "
                f"{request.date}'s weekday; choose another weekday"
            )
        per_weekday[weekday] += 1
        days.add(day)
        if request.entity_name is not None and request.entity_name not in family.entity_names:
            raise ValueError(
                f"{where}: entity_name {request.entity_name!r} is not valid for {request.family}; "
                f"valid: {', '.join(family.entity_names)}"
            )
        low, high = family.magnitude_bounds
        if request.magnitude is not None and not low <= request.magnitude <= high:
            raise ValueError(
                f"{where}: magnitude for {request.family} ({family.magnitude_meaning}) must be "
                f"between {low} and {high}, got {request.magnitude}"
            )


@dataclass(frozen=True)
class _Schedule:
    """The dates an episode's perturbations take: each distractor's, each fluctuation's, and the incidents'."""

    distractor_days: dict[str, int]
    fluctuation_days: list[int]
    incidents: list[_Planned]


def _schedule(tier: Tier, config: EpisodeConfig, dates: list[str], families: FamilyRegistry) -> _Schedule:
    """Every perturbation's date, from the stream "schedule": the late-data note always concerns the latest date;
    the other distractors, then the benign fluctuations, then the incidents take open dates."""
    mix = _mix(tier)
    num_days = len(dates)
    rng = derive_rng(config.key, "schedule")
    reserved_weekday = _reserved_weekday(tier, num_days)
    limit = tier.perturbed_per_weekday
    taken: set[int] = {dates.index(a.date) for a in config.anomalies}
    distractor_days: dict[str, int] = {}
    for kind in mix.distractors:
        day = num_days - 1 if kind == LATE_DATA else _draw_day(num_days, taken, reserved_weekday, limit, rng)
        distractor_days[kind] = day
        if kind != LATE_DATA:
            taken.add(day)
    # Benign fluctuations take open dates like the distractors, but nothing annotates them.
    fluctuation_days = []
    for _ in mix.fluctuations:
        day = _draw_day(num_days, taken, reserved_weekday, limit, rng)
        fluctuation_days.append(day)
        taken.add(day)
    incidents = _plan_anomalies(config, tier, dates, taken, reserved_weekday, rng, families)
    return _Schedule(distractor_days, fluctuation_days, incidents)


def _inject_incidents(
    plan: FunnelPlan,
    tier: Tier,
    config: EpisodeConfig,
    planned_incidents: list[_Planned],
    families: FamilyRegistry,
    dates: list[str],
) -> tuple[list[InjectionRecord], list[DistractorRecord]]:
    """Each planned incident's injection (a date that continues an incident keeps its magnitude), and the timing
    shifts drawn onto some incident dates (the day's sessions move first; the incident happens on top of them)."""
    key = config.key
    shifted_days = _shifted_incident_days(config, tier, planned_incidents, derive_rng(key, "incident-timing"), families)
    shifts: list[DistractorRecord] = []
    injections: list[InjectionRecord] = []
    by_day: dict[int, InjectionRecord] = {}
    for index, planned in enumerate(planned_incidents):
        family = families[planned.family]
        if planned.day in shifted_days:
            shift_rng = derive_rng(key, "incident-timing", planned.day)
            note = FLUCTUATIONS["timing_shift"](plan, planned.day, shift_rng, config.difficulty)
            shifts.append(DistractorRecord("timing_shift", planned.day, note))
        rng = derive_rng(key, f"anomaly/{planned.family}", index)
        entity = planned.entity_name or _pick(family.entity_names, rng)
        magnitude = planned.magnitude
        if planned.continues is not None:
            magnitude = by_day[planned.continues].magnitude
        elif magnitude is None:
            magnitude = family.draw_magnitude(config.difficulty, rng)
        record = family.inject(plan, planned.day, entity, magnitude, rng, config.difficulty)
        if planned.continues is not None:
            record = replace(
                record,
                continues=planned.continues,
                description=f"continues from {dates[planned.continues]}: {record.description}",
            )
        by_day[planned.day] = record
        injections.append(record)
    return injections, shifts


def _calendar(
    plan: FunnelPlan, config: EpisodeConfig, schedule: _Schedule, dates: list[str]
) -> tuple[list[Annotation], list[DistractorRecord]]:
    """The distractors on their dates, each with its annotation, and a routine release note on any date: realistic
    calendar noise that says nothing about the labels."""
    key = config.key
    annotations: list[Annotation] = []
    distractors: list[DistractorRecord] = []
    for kind, day in schedule.distractor_days.items():
        annotation_kind, note = DISTRACTORS[kind](plan, day, derive_rng(key, f"distractor/{kind}"))
        annotations.append(Annotation(dates[day], annotation_kind, note))
        distractors.append(DistractorRecord(kind, day, note))
    notes_rng = derive_rng(key, "annotations")
    release_day = int(notes_rng.integers(0, plan.num_days))
    annotations.append(
        Annotation(
            dates[release_day], "release", f"App release 5.{int(notes_rng.integers(10, 40))}.0 reached 100% of users."
        )
    )
    annotations.sort(key=lambda a: (a.date, a.kind))
    return annotations, distractors


def build_aggregate_episode(tier: Tier, config: EpisodeConfig, families: FamilyRegistry) -> Episode:
    """An aggregate tier's episode: the plan, edited by its incidents (drawn from `families`), its benign
    fluctuations and its distractors in that order, then its counts, its public data and its truth."""
    mix = _mix(tier)
    plan = baseline_plan(config.key, tier.window_days)
    dates = [d.isoformat() for d in plan.dates]
    if config.anomalies:
        validate_custom_anomalies(tier, config, dates, families)
    schedule = _schedule(tier, config, dates, families)
    injections, fluctuations = _inject_incidents(plan, tier, config, schedule.incidents, families, dates)
    for index, (kind, day) in enumerate(zip(mix.fluctuations, schedule.fluctuation_days, strict=True)):
        rng = derive_rng(config.key, "fluctuation", index)
        fluctuations.append(DistractorRecord(kind, day, FLUCTUATIONS[kind](plan, day, rng, config.difficulty)))
    annotations, distractors = _calendar(plan, config, schedule, dates)
    data = draw_counts(plan, config.key)
    public = PublicEpisode(
        Counts(data, build_panel(data), tuple(annotations)), visible_task(config, AGGREGATE_OBJECTIVE)
    )
    truth = build_ground_truth(
        [(record, Segment()) for record in injections], public, families, distractors, fluctuations
    )
    return Episode(config, public, truth)
