"""The audit expert's own rules, each on a case it decides: a block of stopped hours outranks a fall of the whole day
on the same date and step, a date's second incident is read only on the steps its incidents leave free, and a train
episode (its objective says so) leaves the held-out mechanisms' finders unread, a level shift's dates beside a defect
are its echo, and a release that broke its version for one user type is reported on that cuboid."""

from __future__ import annotations

from metric_tracker_rl.agents.audit_expert import ALL_FINDERS, AuditExpertAgent, AuditInvestigation
from metric_tracker_rl.agents.audit_incident_scans import HOST_TOP, host_falls_sql
from metric_tracker_rl.agents.warehouse_findings import FUNNEL_BREAK, RATE_DROP, Finding, dedupe
from metric_tracker_rl.agents.warehouse_scans import HOURS_WHAT, context_tests_and_hours_sql
from metric_tracker_rl.agents.warehouse_sql import ALL_RULES, NO_FIXES
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT, AUDIT_HELD_OUT_DEFECTS, AUDIT_HELD_OUT_KINDS
from metric_tracker_rl.generation.audit.world import build_audit_world
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld
from metric_tracker_rl.sql.engine import EpisodeTables, open_database
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.world.audit_brief import SPLIT_NOTE
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

STEP = RATE_COLUMNS[2]


def test_a_block_of_stopped_hours_outranks_a_fall_of_the_day() -> None:
    investigation = AuditInvestigation()
    fall = Finding("2026-03-10", STEP, RATE_DROP, Segment(country="US"), kind="level_shift")
    block = Finding("2026-03-10", STEP, FUNNEL_BREAK, Segment(country="US"), kind="checkout_outage_hours")
    other = Finding("2026-03-10", STEP, RATE_DROP, Segment(country="IN"), kind="price_rise")
    kept = dedupe(investigation.by_precedence([fall], [other, block]))
    assert kept == [block]
    assert dedupe(investigation.by_precedence([fall], [other])) == [fall]  # the warehouse's, then the finders'


def test_a_second_incident_is_read_on_the_free_steps_of_its_dates_only() -> None:
    world = build_audit_world(AUDIT, resolve_episode_config(seed=AUDIT.calibration_seed_base + 7, difficulty="audit"))
    dates = window_calendar(world.log.num_days).iso_dates
    tables = EpisodeTables(open_database(), world.sql_tables())
    free = {dates[10]: [2, 4], dates[20]: [1], dates[30]: []}
    columns, rows, _ = tables.run(host_falls_sql(free, 0.2), 0, 5000)
    found = [dict(zip(columns, row, strict=True)) for row in rows]
    assert found and len(found) <= HOST_TOP
    assert all(int(row["k"]) in free[str(row["date"])] for row in found)
    assert [row["z"] for row in found] == sorted(row["z"] for row in found)  # strongest fall first
    assert tables.run(host_falls_sql({dates[10]: []}, 0.2), 0, 5000)[1] == []


def _finders(split: str) -> set[str]:
    observation = SeenObservation(text=f"objective: an audit. {SPLIT_NOTE[split]}", status="ready")
    return {finder.name for finder in AuditExpertAgent().investigation(observation).finders}


def test_a_train_episode_leaves_the_held_out_finders_unread() -> None:
    held_out = set(AUDIT_HELD_OUT_KINDS) | set(AUDIT_HELD_OUT_DEFECTS)
    every = {finder.name for finder in ALL_FINDERS}
    assert held_out & every  # the held-out mechanisms have finders
    assert _finders("eval") == every
    assert _finders("train") == every - held_out


def test_a_run_of_level_shifts_that_meets_a_defect_is_its_echo() -> None:
    """A run that shares a date with a defect of an overlapping segment keeps only the defect's dates (those then go
    by the rule of a defect's date); a run in a segment apart from it, or one that meets only another incident,
    stays."""
    dates = [f"2026-03-{day:02d}" for day in range(1, 15)]
    investigation = AuditInvestigation(dates=dates)

    def run(first: int, last: int, segment: Segment) -> list[Finding]:
        return [Finding(dates[d], STEP, RATE_DROP, segment, kind="level_shift") for d in range(first, last + 1)]

    defect = Finding(dates[10], "sessions", "data_quality", Segment(platform="web"), kind="truncated_batches")
    leak = run(8, 10, Segment(platform="web"))
    apart = run(9, 10, Segment(platform="android"))
    onboarding = [Finding(dates[d], STEP, RATE_DROP, Segment(platform="ios"), kind="onboarding_break") for d in (4, 5)]
    beside = run(3, 5, Segment(platform="ios"))
    kept = investigation.without_echoes([*leak, *apart, *onboarding, *beside], [defect])
    assert kept == [leak[2], *apart, *onboarding, *beside]


def _release_findings(world: WarehouseWorld, narrowed: bool) -> list[Finding]:
    dates = window_calendar(world.log.num_days).iso_dates
    tables = EpisodeTables(open_database(), world.sql_tables())
    columns, rows, _ = tables.run(context_tests_and_hours_sql(ALL_RULES, NO_FIXES, 2.5, narrowed), 0, 5000)
    tests = [row for row in (dict(zip(columns, row, strict=True)) for row in rows) if row["what"] not in HOURS_WHAT]
    return AuditInvestigation(dates=dates, narrowed_releases=narrowed).releases(tests)


def test_a_release_that_breaks_its_version_for_one_user_type_is_reported_there() -> None:
    """The audit's release tests read the version's users of one country, channel or user type too, and the
    strongest fall names the cuboid the release broke; the warehouse's read the whole version."""
    world = build_audit_world(AUDIT, resolve_episode_config(seed=1_100_047, difficulty="audit"))
    broken = {i.segment.normalised() for i in world.incidents if i.kind == "release_regression"}
    assert len(broken) == 1 and next(iter(broken)).user_type is not None  # the case: one user type's
    assert {f.segment for f in _release_findings(world, narrowed=True)} == broken
    assert all(f.segment.user_type is None for f in _release_findings(world, narrowed=False))
