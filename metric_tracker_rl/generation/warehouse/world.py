"""A warehouse episode's world: the segmented world with its business incidents and benign look-alikes placed by
the registered kinds (generation/segmented.place_world), drawn as raw events (events.py), then data defects
edited into the event log (generation/defects/) on dates no other defect holds and (but in a drawn share of the
audit's episodes, DefectDraw.overlap_share) no incident holds, then benign bursts the standing rules exclude
(benign.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.catalog.tasks import EpisodeConfig
from metric_tracker_rl.catalog.tiers import Tier, WarehouseMix
from metric_tracker_rl.generation.defects import Defect, DefectRecord, defect_edits
from metric_tracker_rl.generation.defects.log_edits import covering
from metric_tracker_rl.generation.kinds import SegmentFluctuation, SegmentIncident
from metric_tracker_rl.generation.segment_plan import SegmentedPlan, drawn_order
from metric_tracker_rl.generation.segmented import context_tables, place_world
from metric_tracker_rl.generation.warehouse.benign import BENIGN_CHANGES, BenignRecord
from metric_tracker_rl.generation.warehouse.events import draw_event_log
from metric_tracker_rl.generation.warehouse.experiments import assign_experiments
from metric_tracker_rl.sql.columns import SqlTable
from metric_tracker_rl.world.context import ContextTables
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.funnel import WINDOW_START, window_calendar
from metric_tracker_rl.world.metrics_layer import dashboard, segment_metric
from metric_tracker_rl.world.segments import CELL_FIELDS, Release, segments_meet

DEFECT_COUNT = (2, 3)  # data defects per episode, inclusive
DEFECT_ATTEMPTS = 8  # draws of a defect's dates before it is left out
BENIGN_COUNT = (1, 2)  # benign bursts per episode, inclusive


@dataclass(frozen=True)
class DefectValues:
    """A defect's values on one of its dates: the metrics layer's value of its metric and segment had the defect
    not happened (the same log before it was edited in: no other defect holds the date; an incident on it stays),
    and the dashboard's."""

    day: int
    baseline: float
    observed: float


@dataclass(frozen=True)
class WarehouseWorld:
    """The event log (defects included), its dashboard, what was placed in it, each defect's values, and the
    context tables."""

    log: EventLog
    dashboard: SqlTable
    incidents: tuple[SegmentIncident, ...]
    fluctuations: tuple[SegmentFluctuation, ...]
    defects: tuple[DefectRecord, ...]
    defect_values: tuple[tuple[DefectValues, ...], ...]  # per defect, per date
    benign: tuple[BenignRecord, ...]  # bursts the standing rules exclude
    clean_dashboard: SqlTable  # the metrics layer over the events as they would be without any defect
    context: ContextTables
    releases: tuple[Release, ...]
    assignments: SqlTable  # experiment_assignments
    dimension_values: dict[str, list[str]]  # each dimension a row may name, with its values

    def sql_tables(self) -> dict[str, SqlTable]:
        """Every table of the episode as the SQL tool's columns: the export and its side tables, the dashboard, the
        context tables, the releases and the experiments' assignments."""
        tables = self.log.sql_tables()
        tables["dashboard"] = self.dashboard
        tables.update(self.context.sql_tables())
        tables["releases"] = _release_table(self.releases, self.log.num_days)
        tables["experiment_assignments"] = self.assignments
        return tables


@dataclass(frozen=True)
class DefectDraw:
    """What an episode's data defects are drawn from: the mechanisms by name, how many (inclusive), those of
    which the first is drawn (none: the first comes from all of them, as every later one does), and a group of them
    (`rationed`) of which an episode holds at most `ration`, and the share of episodes (`overlap_share`) in which one
    defect is placed on an incident's date and in a segment that shares traffic with the incident's; `weights`, how
    often each mechanism is drawn against the others (None: alike)."""

    mechanisms: Mapping[str, Defect]
    count: tuple[int, int] = DEFECT_COUNT
    first_from: tuple[str, ...] = ()
    rationed: frozenset[str] = frozenset()
    ration: int = 0
    overlap_share: float = 0.0
    weights: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if self.ration < 0 or not self.rationed <= set(self.mechanisms):
            raise ValueError(
                f"a ration of at least 0 over mechanisms the draw holds: {self.ration}, "
                f"{sorted(self.rationed - set(self.mechanisms))}"
            )
        if not 0 <= self.overlap_share <= 1:
            raise ValueError(f"overlap_share must be in [0, 1], got {self.overlap_share}")

    def allows(self, kind: str, placed: Sequence[DefectRecord]) -> bool:
        """Whether a defect of `kind` may join those placed: a rationed one only while its group's ration lasts."""
        return kind not in self.rationed or sum(d.kind in self.rationed for d in placed) < self.ration


def build_warehouse_world(tier: Tier, config: EpisodeConfig, draw: DefectDraw | None = None) -> WarehouseWorld:
    """The world of a warehouse episode: its kinds placed (those of `tier`), its events drawn, its defects (drawn
    as `draw` says; None: from every mechanism the tier names) edited in."""
    if draw is None:
        draw = DefectDraw(defect_edits(warehouse_mix(tier).defects))
    placed = place_world(tier, config)
    key = config.key
    log = clean = draw_event_log(placed.plan, key)
    rng = derive_rng(key, "warehouse-defects")
    log, defects = _edit_defects(log, key, rng, draw, placed.incidents)
    benign: list[BenignRecord] = []
    for index in range(int(rng.integers(BENIGN_COUNT[0], BENIGN_COUNT[1] + 1))):
        change = BENIGN_CHANGES[str(rng.choice(list(BENIGN_CHANGES)))]
        log, burst = change(log, derive_rng(key, "warehouse-benign", index))
        benign.append(burst)
    dates = window_calendar(placed.plan.num_days).iso_dates
    context = context_tables(placed.world, placed.incidents, placed.fluctuations, dates)
    log, assignments = assign_experiments(log, context.experiments)
    board, before = dashboard(log), dashboard(clean)
    values = tuple(
        tuple(
            DefectValues(
                day, segment_metric(before, d.segment, d.metric, day), segment_metric(board, d.segment, d.metric, day)
            )
            for day in d.days
        )
        for d in defects
    )
    return WarehouseWorld(
        log,
        board,
        tuple(sorted(placed.incidents, key=lambda i: i.record.day)),
        tuple(placed.fluctuations),
        tuple(defects),
        values,
        tuple(benign),
        before,
        context,
        placed.plan.releases,
        assignments,
        _dimension_values(placed.plan),
    )


def warehouse_mix(tier: Tier) -> WarehouseMix:
    mix = tier.segmented
    if not isinstance(mix, WarehouseMix):
        raise ValueError(f"tier {tier.name!r} has no raw events")
    return mix


def _edit_defects(
    log: EventLog, key: EpisodeKey, rng: np.random.Generator, draw: DefectDraw, incidents: Sequence[SegmentIncident]
) -> tuple[EventLog, list[DefectRecord]]:
    """The log with its defects edited in, and their records. The mechanisms go in a drawn order (weighted where
    the draw weighs them; the first from `draw.first_from` where it names any), each placed if its dates can be and
    its ration allows (one that cannot makes way for the next), until the drawn count are. Each defect's dates
    (with a day's margin each side) stay clear of the other defects' and of the incidents'; but in a drawn share of
    episodes (`draw.overlap_share`, a stream of its own) the first defect that can be is placed on an incident's
    date, in a segment sharing its traffic (overlapping_defect)."""
    count = int(rng.integers(draw.count[0], draw.count[1] + 1))
    kinds = drawn_order(list(draw.mechanisms), rng, draw.weights)
    if draw.first_from:
        firsts = list(draw.first_from)
        first = drawn_order(firsts, rng, draw.weights)[0] if draw.weights else str(rng.choice(firsts))
        kinds = [first, *(kind for kind in kinds if kind != first)]
    steer = derive_rng(key, "defect-overlap")
    overlap = bool(incidents) and steer.random() < draw.overlap_share
    incident_days = {incident.record.day for incident in incidents}
    defects: list[DefectRecord] = []
    held: set[int] = set()  # the defects' dates, a day's margin each side
    for index, kind in enumerate(kinds):
        if len(defects) == count:
            break
        if not draw.allows(kind, defects):
            continue
        placed = overlapping_defect(log, key, steer, draw.mechanisms[kind], index, incidents, held) if overlap else None
        for attempt in range(0 if placed else DEFECT_ATTEMPTS):
            edited, record = draw.mechanisms[kind](
                log, derive_rng(key, "warehouse-defect", index * DEFECT_ATTEMPTS + attempt)
            )
            if not _reach(record) & (held | incident_days):
                placed = edited, record
                break
        if placed:
            log, record = placed
            defects.append(record)
            held |= _reach(record)
            overlap = overlap and not overlaps_incident(record, incidents)
    return log, defects


def _reach(record: DefectRecord) -> set[int]:
    return set(range(min(record.days) - 1, max(record.days) + 2))


def overlapping_defect(
    log: EventLog,
    key: EpisodeKey,
    steer: np.random.Generator,
    defect: Defect,
    index: int,
    incidents: Sequence[SegmentIncident],
    held: set[int],
) -> tuple[EventLog, DefectRecord] | None:
    """The log with `defect` edited in on a drawn incident's date (its span drawn to cover it) and the defect's
    record, where one of DEFECT_ATTEMPTS draws lands clear of the other defects' dates and shares a date and
    traffic with an incident (overlaps_incident); None where none does."""
    for attempt in range(DEFECT_ATTEMPTS):
        target = incidents[int(steer.integers(len(incidents)))]
        with covering(target.record.day):
            edited, record = defect(log, derive_rng(key, "overlapping-defect", index * DEFECT_ATTEMPTS + attempt))
        if not _reach(record) & held and overlaps_incident(record, incidents):
            return edited, record
    return None


def overlaps_incident(record: DefectRecord, incidents: Sequence[SegmentIncident]) -> bool:
    """Whether the defect covers a date of an incident whose segment shares traffic with its own."""
    return any(
        incident.record.day in record.days and segments_meet(incident.segment, record.segment) for incident in incidents
    )


def _dimension_values(plan: SegmentedPlan) -> dict[str, list[str]]:
    """Each dimension's values, as a segmented episode's counts list them (SegmentedData.dimension_values)."""
    values = {name: list(plan.layout.values_of(name)) for name in CELL_FIELDS}
    for dimension in () if plan.split is None else plan.split.dimensions:
        values[dimension.field] = list(dimension.values)
    return values


def _release_table(releases: tuple[Release, ...], num_days: int) -> SqlTable:
    """One row per mobile release and date from its start: the share of its platform's users offered it."""
    rows = [(release, day) for release in releases for day in range(release.start_day, num_days)]
    start = np.datetime64(WINDOW_START, "D")
    return {
        "platform": np.array([r.platform for r, _ in rows], dtype=object),
        "app_version": np.array([r.version for r, _ in rows], dtype=object),
        "rollout_start": start + np.array([r.start_day for r, _ in rows], dtype="timedelta64[D]"),
        "date": start + np.array([day for _, day in rows], dtype="timedelta64[D]"),
        "rollout_share": np.array([r.offered_share(num_days)[day] for r, day in rows], dtype=float),
    }
