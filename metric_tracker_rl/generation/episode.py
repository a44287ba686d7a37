"""What every generator makes: an episode (its public data, its visible task and its hidden ground truth), the
objective a tier's episode states, and the ground truth made from the injection records alone.

Which keys are anomalous comes from what was injected; their numbers are read back from the final public data with
the published baseline rule (daily_panel.build_panel), on the segment each incident is confined to (the aggregate,
at an aggregate tier).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES
from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow, submission_row_type
from metric_tracker_rl.catalog.published import CONVERSION_BY_NAME, COUNT_COLUMNS, row_key, severity_for
from metric_tracker_rl.catalog.shown_config import shown_config
from metric_tracker_rl.catalog.tasks import TASKS, EpisodeConfig
from metric_tracker_rl.catalog.tiers import Tier
from metric_tracker_rl.generation.anomalies import ChangePointRecord, FamilyRegistry, InjectionRecord
from metric_tracker_rl.world.daily_panel import MetricPanel, build_panel, count_ratio, peer_median, same_weekday_peers
from metric_tracker_rl.world.public_episode import PublicEpisode
from metric_tracker_rl.world.segments import CELL_FIELDS, Segment, world_of

AGGREGATE_OBJECTIVE = (
    "Find every incident in four weeks of funnel data and report each one (date, entity, family, baseline, observed "
    "value, delta, severity). Days explained by the calendar and side effects of an incident are not incidents, nor "
    "are unannotated swings in demand or timing within their published bounds (a timing shift may also fall on an "
    "incident's date). An incident that lasts several dates is reported once per date. Some episodes contain no "
    "incident: then submit an empty report."
)


def visible_task(config: EpisodeConfig, tier_objective: str) -> dict[str, object]:
    """The task an observation shows: the task id, the objective (its named task's, else its tier's, which each
    generator states) and the visible config (catalog.shown_config)."""
    objective = tier_objective if config.task_id is None else TASKS[config.task_id].objective
    return {"task_id": config.task_id, "objective": objective, "config": shown_config(config)}


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
    # The overlap credit's T where the public data has no leaf counts (the warehouse): each leaf's weight per date,
    # (L, D), and the (L,) mask of a segment's leaves. None: the environment reads T from the public counts.
    segment_traffic: tuple[np.ndarray, Callable[[Segment], np.ndarray]] | None = None
    # Rows on the keys of expected rows, each on a segment the data cannot tell from its incident's (a tier with
    # SegmentedMix.twin_z): a row on that segment is graded against it (grading/grader.py).
    twin_rows: tuple[MetricSubmissionRow, ...] = ()

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


SEGMENTED_OBJECTIVE = (
    "Find every incident in eight weeks of funnel data split by platform, country and app version, and report "
    "each one on the segment it is confined to (date, entity, family, the segment's baseline, observed value, "
    "delta and severity, and its platform / country / app_version; omit a field that covers all its values). "
    "Holidays are annotated; releases are annotated and sometimes break the new version. Traffic moving between "
    "segments, swings in one segment's demand or timing, and side effects are not incidents. An incident that "
    "lasts several dates is reported once per date. Some episodes contain no incident: then submit an empty report."
)


# What a tier with context tables says instead of "Holidays are annotated;": the holidays of every country are
# annotated (and listed with a null country), a single country's are listed only.
CONTEXT_OBJECTIVE = (
    "Context tables (get_context) list experiments, campaigns, holidays by country, releases and "
    "payment partners' notices. Holidays of every country are annotated, a single country's are in "
    "the holidays table only;"
)


def segmented_objective(tier: Tier) -> str:
    """A segmented tier's objective: SEGMENTED_OBJECTIVE, naming the tier's own dimensions, and its context
    tables where it has them."""
    fields = world_of(tier.dimensions).fields
    if fields == CELL_FIELDS:
        return SEGMENTED_OBJECTIVE
    named = [name.replace("_", " ") for name in fields]
    objective = SEGMENTED_OBJECTIVE.replace(
        "platform, country and app version", f"{', '.join(named[:-1])} and {named[-1]}"
    ).replace("platform / country / app_version", " / ".join(fields))
    if tier.segmented is not None and tier.segmented.context:
        objective = objective.replace("Holidays are annotated;", CONTEXT_OBJECTIVE)
    return objective


def daily_series(daily: np.ndarray, entity_type: str, entity_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(D,) values of a count or rate entity from (D, 5) daily counts, and their baseline by the published rule
    (the median of the same weekday's other dates), as build_panel computes them for a funnel. An hourly mix has
    no daily series: a ValueError."""
    if entity_type in ("event_count", "data_quality"):
        values = daily[:, COUNT_COLUMNS.index(entity_name)].astype(float)
    elif entity_type in ("conversion_rate", "funnel_step"):
        metric = CONVERSION_BY_NAME[entity_name]
        values = count_ratio(
            daily[:, COUNT_COLUMNS.index(metric.numerator)], daily[:, COUNT_COLUMNS.index(metric.denominator)]
        )
    else:
        raise ValueError(f"{entity_type} has no daily series: an incident of it names cells only")
    return values, peer_median(values, same_weekday_peers(len(values)))


def change_point_baseline(values: np.ndarray, day: int, change_point: int) -> float:
    """A persistent incident's baseline on `day`: the median of `values` on the same weekday over the dates before
    its change point (a date without a value skipped; NaN when none has one)."""
    peers = values[day % 7 : change_point : 7]
    peers = peers[~np.isnan(peers)]
    return float(np.median(peers)) if len(peers) else float("nan")


def build_ground_truth(
    incidents: Sequence[tuple[InjectionRecord, Segment]],
    public: PublicEpisode,
    families: FamilyRegistry,
    distractors: Sequence[DistractorRecord] = (),
    fluctuations: Sequence[DistractorRecord] = (),
    twins: Sequence[tuple[Segment, ...]] = (),
) -> GroundTruth:
    """The truth of every tier, from the injection records alone: each incident's row is keyed on its record and
    names its segment (the aggregate is the segment of all values), and its numbers are read back from that
    segment's final public data with the published baseline rule. `twins` (aligned with `incidents`, or empty):
    the segments the data cannot tell from each incident's, whose rows, read the same way, are credited too (but
    where that segment's data has no value on the date: no row could report it)."""
    panels: dict[Segment, MetricPanel] = {Segment(): public.panel}
    row_type = submission_row_type(families.published.names)
    rows = [_truth_row(record, segment, public, families, panels, row_type) for record, segment in incidents]
    twin_rows = [
        _truth_row(record, twin, public, families, panels, row_type)
        for (record, _), segments in zip(incidents, twins, strict=bool(twins))
        for twin in segments
        if all(np.isfinite(_truth_values(record, twin.normalised(), public, panels)))
    ]
    neutral = {row_key(public.dates[record.day], t, n) for record, _ in incidents for t, n in record.neutral}
    expected = {row_key(r.date, r.entity_type, r.entity_name) for r in rows}
    return GroundTruth(
        tuple(rows),
        frozenset(neutral - expected),
        tuple(record for record, _ in incidents),
        tuple(distractors),
        tuple(fluctuations),
        twin_rows=tuple(twin_rows),
    )


def _truth_row(
    record: InjectionRecord,
    incident_segment: Segment,
    public: PublicEpisode,
    families: FamilyRegistry,
    panels: dict[Segment, MetricPanel],
    row_type: type[MetricSubmissionRow],
) -> MetricSubmissionRow:
    """The row of an incident's date on a segment, its numbers read back from that segment's public data
    (`panels`: the segments' panels built so far, kept for the next row)."""
    segment = incident_segment.normalised()
    family = families[record.family].public
    assert family.entity_type == record.entity_type
    baseline, observed = _truth_values(record, segment, public, panels)
    scope: dict[str, Any] = {} if segment.is_aggregate else {**dict.fromkeys(CELL_FIELDS), **segment.named()}
    return row_type(
        date=public.dates[record.day],
        entity_type=record.entity_type,
        entity_name=record.entity_name,
        anomaly_type=record.family,
        detection_method=family.generator,
        baseline_value=baseline,
        observed_value=observed,
        delta_value=observed - baseline,
        severity=severity_for(record.entity_type, baseline, observed),
        **scope,
    )


def _truth_values(
    record: InjectionRecord, segment: Segment, public: PublicEpisode, panels: dict[Segment, MetricPanel]
) -> tuple[float, float]:
    """(baseline, observed) of a record's entity on its date in a (normalised) segment's public data, by the
    published baseline rule (a persistent incident's: the same weekday before its change point)."""
    if segment.names_daily_field:  # a cuboid finer than a cell: its daily counts are all there is
        assert public.segments is not None, "a segment incident needs segmented data"
        values, baselines = daily_series(public.segments.segment_daily(segment), record.entity_type, record.entity_name)
        observed, baseline = float(values[record.day]), float(baselines[record.day])
    else:
        panel = panels.get(segment)
        if panel is None:
            assert public.segments is not None, "a segment incident needs segmented data"
            panel = panels[segment] = build_panel(public.segments.segment_funnel(segment))
        k = panel.index(record.entity_type, record.entity_name)
        observed = float(panel.values[k, record.day])
        baseline = float(panel.baseline[k, record.day])
    if isinstance(record, ChangePointRecord):  # the same weekday before the change point, from the same data
        assert public.segments is not None, "a persistent incident needs segmented data"
        values, _ = daily_series(public.segments.segment_daily(segment), record.entity_type, record.entity_name)
        observed, baseline = float(values[record.day]), change_point_baseline(values, record.day, record.change_point)
    return baseline, observed
