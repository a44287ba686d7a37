"""The audit incident finders' test helpers: an audit world's tables with one kind alone placed, and what a finder
returns on them."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from metric_tracker_rl.agents.audit_finders import FINDING_COLUMNS, Finder
from metric_tracker_rl.agents.audit_incident_scans import FINDERS
from metric_tracker_rl.catalog.seeding import derive_rng
from metric_tracker_rl.catalog.tasks import EpisodeConfig, resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT
from metric_tracker_rl.generation.audit.world import audit_mix
from metric_tracker_rl.generation.kinds import SegmentIncident
from metric_tracker_rl.generation.segmented import place_world
from metric_tracker_rl.generation.warehouse.benign import BENIGN_CHANGES
from metric_tracker_rl.generation.warehouse.events import draw_event_log
from metric_tracker_rl.sql.columns import SqlTable
from metric_tracker_rl.sql.engine import EpisodeTables, open_database
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.metrics_layer import dashboard
from metric_tracker_rl.world.segments import Segment

FINDER = {finder.name: finder for finder in FINDERS}
DATES = window_calendar(56).iso_dates
# Every kind draws in the eval split (seeds below 1,000,000), where the held-out ones are drawn too.
ALL_KINDS_TIER = replace(AUDIT, segmented=replace(audit_mix(AUDIT), held_out_kinds=()))

Finding = tuple[str, Segment]


def episode_config(seed: int, kind: str | None, count: int) -> EpisodeConfig:
    """An audit episode's settings with `count` incidents of `kind` alone (None: no incident): the audit's reset
    takes no setting that names a mechanism, so the test sets the config's field itself."""
    if kind is None:
        return resolve_episode_config(seed=seed, difficulty="audit", scenario_family="null")
    return replace(resolve_episode_config(seed=seed, difficulty="audit", anomaly_count=count), incident_kinds=(kind,))


@cache
def log_tables(seed: int, kind: str | None, decoys: bool) -> tuple[dict[str, SqlTable], tuple[SegmentIncident, ...]]:
    """The tables of an audit world's events with `kind` alone placed (None: no incident) and the warehouse's
    benign bursts of standing traffic, with (`decoys`) or without benign look-alikes; and its incidents."""
    config = episode_config(seed, None, 0) if kind is None else episode_config(seed, kind, 1)
    config = config if decoys else replace(config, decoy_ratio=0.0)
    placed = place_world(ALL_KINDS_TIER, config)
    log = draw_event_log(placed.plan, config.key)
    for index, name in enumerate(BENIGN_CHANGES):
        log, _ = BENIGN_CHANGES[name](log, derive_rng(config.key, "test-benign", index))
    tables = log.sql_tables()
    tables["dashboard"] = dashboard(log)
    return tables, tuple(placed.incidents)


def findings(finder: Finder, tables: dict[str, SqlTable]) -> list[Finding]:
    columns, rows, _ = EpisodeTables(open_database(), tables).run(finder.sql, 0, 5000)
    assert tuple(columns) == FINDING_COLUMNS
    assert {row[-1] for row in rows} <= {finder.name}
    return [
        (row[0], Segment(**{f: v for f, v in zip(columns[1:6], row[1:6], strict=True) if v is not None}))
        for row in rows
    ]


def holds(finding: Segment, root: Segment) -> bool:
    """Whether a finding's segment holds the root cause's (it names no field the root cause does not agree on)."""
    named = root.named()
    return all(named.get(field) == value for field, value in finding.named().items())


def covered(incident: SegmentIncident, found: list[Finding]) -> bool:
    return any(date == DATES[incident.record.day] and holds(segment, incident.segment) for date, segment in found)
