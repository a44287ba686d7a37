"""The audit expert's reading of changes that last dates: a lasting finder's date with no neighbouring date that
departs too is noise and left out (a synthetic case, and an episode whose report held such a date), and a regional
sign-out is read from returning users' sessions alone (an episode where a new users' fall was read as one) and
leaves a fall its siblings share to a wider segment; a search-ads pause is read from an app store's paid search
alone."""

from __future__ import annotations

import re
import statistics
from dataclasses import replace

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lab.calibration.interface import record_episode
from metric_tracker_rl.agents.audit_coinciding import bridged
from metric_tracker_rl.agents.audit_expert import ALL_FINDERS, AuditInvestigation
from metric_tracker_rl.agents.audit_incident_scans import (
    PLATFORM_COUNTRY_CHANNEL,
    PLATFORM_COUNTRY_USERS,
    RETURNING,
    daily_scan,
)
from metric_tracker_rl.agents.audit_lasting import EDGE_SHARE
from metric_tracker_rl.agents.warehouse_findings import RATE_DROP, Finding
from metric_tracker_rl.catalog.published import row_key
from metric_tracker_rl.catalog.task_splits import UNTUNED_FIRST_OFFSET
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT
from metric_tracker_rl.catalog.versions import tier_at
from metric_tracker_rl.generation.audit.truth import audit_rows
from metric_tracker_rl.generation.audit.world import audit_mix, build_audit_world
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.engine import EpisodeTables, open_database
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

# The version whose episodes this module's seeds were chosen on (the rules it tests are the same at version 2).
AUDIT_V1 = tier_at("audit", 1)

DATES = [f"2026-03-{day:02d}" for day in range(1, 15)]
MENU = RATE_COLUMNS[0]
SIGNED_OUT = Segment(platform="ios", country="FR", user_type="returning")
# Eval episodes of the expert's tuning seeds (past the untuned calibration's), each a case below.
TUNING = AUDIT.calibration_seed_base + UNTUNED_FIRST_OFFSET + 400
LONE_DATE_SEED, NEW_USERS_FALL_SEED = TUNING + 35, TUNING + 36
LASTING = {finder.name for finder in ALL_FINDERS if finder.lasting}
SIGN_OUT = next(finder for finder in ALL_FINDERS if finder.name == "regional_sign_out")
ADS = next(finder for finder in ALL_FINDERS if finder.name == "search_ads_pause")
# The sign-out scan's test of each segment alone, before it leaves a fall its siblings share to a wider segment.
EACH_SEGMENT = daily_scan(
    "regional_sign_out", 0, PLATFORM_COUNTRY_USERS, -1, 0.3, 4.0, run=2, grow=2.5, least=8.0, only=RETURNING
)


def _sign_out(day: int, segment: Segment = SIGNED_OUT, kind: str = "regional_sign_out") -> Finding:
    return Finding(DATES[day], MENU, RATE_DROP, segment, kind=kind)


def test_a_lasting_finders_date_stays_only_beside_another_of_its_metric_and_segment() -> None:
    investigation = AuditInvestigation(dates=DATES, finders=ALL_FINDERS)
    lone, pair = [_sign_out(3)], [_sign_out(6), _sign_out(7)]
    assert investigation.without_lone_dates([*lone, *pair]) == pair
    elsewhere = _sign_out(4, Segment(platform="ios", country="GB", user_type="returning"))
    assert investigation.without_lone_dates([*lone, elsewhere]) == []  # a neighbour of another segment
    shift = _sign_out(3, kind="level_shift")  # a finder whose change may hold one date
    assert investigation.without_lone_dates([shift]) == [shift]
    assert investigation.without_lone_dates([*lone, _sign_out(4, kind="level_shift")]) == [
        *lone,
        _sign_out(4, kind="level_shift"),
    ]  # a neighbour found by another scan counts


@given(st.floats(0.4, 0.8), st.floats(0.0, 0.99), st.floats(0.0, 0.99), st.integers(1, 3))
def test_a_runs_end_moving_far_less_than_its_run_is_left_out(
    move: float, first: float, last: float, inner: int
) -> None:
    """A lasting change is on or off: a date at either end of its run of three or more that moves less than
    EDGE_SHARE of the run's median move goes, one that moves as far stays; the run's inner dates always stay, and a
    level shift's run (its change may ramp) is left alone."""
    investigation = AuditInvestigation(dates=DATES, finders=ALL_FINDERS)

    def run(kind: str) -> list[Finding]:
        shares = [first, *([1.0] * inner), last]
        return [
            replace(_sign_out(2 + i, kind=kind), baseline=0.6, observed=0.6 * (1 - move * share))
            for i, share in enumerate(shares)
        ]

    lapse = run("regional_sign_out")
    typical = statistics.median(move * share for share in [first, *([1.0] * inner), last])
    assume(all(abs(move * share - EDGE_SHARE * typical) > 1e-6 for share in (first, last)))  # off the bar itself
    kept = investigation.without_faint_edges(lapse)
    assert kept == [
        f for f in lapse if f not in (lapse[0], lapse[-1]) or abs(f.observed / 0.6 - 1) >= EDGE_SHARE * typical
    ]
    assert lapse[1:-1] == [f for f in kept if f in lapse[1:-1]]
    assert investigation.without_faint_edges(run("level_shift")) == run("level_shift")


def test_the_lasting_finders_are_the_scans_of_runs_of_dates() -> None:
    """A finder is lasting exactly where its scan tests a run of two dates or more (its mechanism lasts that long)."""
    runs = {f.name for f in ALL_FINDERS if (m := re.search(r"WHERE rn = (\d+) ", f.sql)) and int(m.group(1)) >= 2}
    assert runs and runs == LASTING


def _world_and_tables(seed: int) -> tuple[WarehouseWorld, EpisodeTables]:
    world = build_audit_world(AUDIT_V1, resolve_episode_config(version=1, seed=seed, difficulty="audit"))
    return world, EpisodeTables(open_database(), world.sql_tables())


def _found(tables: EpisodeTables, sql: str) -> set[tuple[str, str | None, str | None, str | None]]:
    """A scan's findings as (date, platform, country, user type)."""
    columns, rows, _ = tables.run(sql, 0, 5000)
    found = [dict(zip(columns, row, strict=True)) for row in rows]
    return {(str(r["date"]), r["platform"], r["country"], r["user_type"]) for r in found}


@pytest.mark.slow  # an audit episode played, and its world built
def test_a_lone_date_of_a_sign_out_scan_is_left_out_of_the_report() -> None:
    """In this episode the sign-out scan passes a run of dates of iOS's returning users in France of which one
    departs past the margin alone: no sign-out (the truth holds no row on it), and the report leaves it out."""
    world, tables = _world_and_tables(LONE_DATE_SEED)
    lone = ("2026-03-06", "ios", "FR", "returning")
    assert lone in _found(tables, EACH_SEGMENT)  # the case: the scan's test flags the date
    dates = window_calendar(world.log.num_days).iso_dates
    key = row_key(lone[0], "conversion_rate", MENU)
    truth = {
        row_key(r.date, r.entity_type, r.entity_name)
        for r in map(lambda t: t.report_row(dates), audit_rows(world, audit_mix(AUDIT)))
    }
    assert key not in truth
    env = MetricTrackerRlEnvironment()
    try:
        run = record_episode("audit_expert", {"difficulty": "audit", "seed": LONE_DATE_SEED, "version": 1}, env)
    finally:
        env.close()
    assert run.graded is not None
    assert key not in {row_key(r.date, r.entity_type, r.entity_name) for r in run.graded.submitted_rows}


@pytest.mark.slow  # an audit world built and the sign-out scan run over it
def test_the_sign_out_scan_reads_returning_users_alone() -> None:
    """This episode's new users on iOS in the US fell far enough for the scan's test when every user type is read;
    read from returning users' sessions, it returns none but theirs."""
    _, tables = _world_and_tables(NEW_USERS_FALL_SEED)
    every_user = daily_scan("regional_sign_out", 0, PLATFORM_COUNTRY_USERS, -1, 0.3, 4.5, run=2, grow=2.5, least=8.0)
    assert ("2026-03-23", "ios", "US", "new") in _found(tables, every_user)  # the case
    found = _found(tables, EACH_SEGMENT)
    assert found and {user_type for *_, user_type in found} == {"returning"}
    assert _found(tables, SIGN_OUT.sql) <= found


WIDER_FALL_SEED = TUNING + 711  # android's returning users' menu step fell in several countries for some dates
WIDER_FALL_DATES = ("2026-04-18", "2026-04-19", "2026-04-20", "2026-04-21")


@pytest.mark.slow  # an audit world built and the sign-out scan run over it twice
def test_the_sign_out_scan_leaves_a_fall_its_siblings_share_to_a_wider_segment() -> None:
    """In this episode android's returning users' menu step fell in several countries at once: read one country at
    a time, the scan's test passes in four of them; a sign-out is one platform in one country, and a fall its
    platform shows in another country (or its country on another platform) about the date is none."""
    _, tables = _world_and_tables(WIDER_FALL_SEED)
    every_one = EACH_SEGMENT
    wide = {(date, country) for date, platform, country, _ in _found(tables, every_one) if platform == "android"}
    assert len({country for date, country in wide if date in WIDER_FALL_DATES}) >= 4  # the case
    alone = _found(tables, SIGN_OUT.sql)
    assert not {f for f in alone if f[0] in WIDER_FALL_DATES and f[1] == "android"}
    assert alone <= _found(tables, every_one)  # the rule only drops findings


STORE_ADS_CASE_SEED = TUNING + 1_506  # web's organic users in the US fell far on two dates, by chance


@pytest.mark.slow  # an audit world built and the search-ads scan run over it twice
def test_the_search_ads_scan_reads_an_app_stores_paid_search_alone() -> None:
    """Search ads show in one app store, so they bring one mobile platform's paid-search users: read over every
    channel, the scan's test passes for web's organic users in the US on two dates here (no store's ads bring them);
    the finder reads those users alone and returns none but theirs."""
    _, tables = _world_and_tables(STORE_ADS_CASE_SEED)
    every_channel = daily_scan(
        "search_ads_pause", None, PLATFORM_COUNTRY_CHANNEL, -1, 0.6, 4.0, run=2, grow=2.5, least=5.0
    )
    columns, rows, _ = tables.run(every_channel, 0, 5000)
    found = {(str(r[0]), r[1], r[3], r[4]) for r in rows}
    assert {("2026-03-03", "web", "US", "organic"), ("2026-03-04", "web", "US", "organic")} <= found  # the case
    columns, rows, _ = tables.run(ADS.sql, 0, 5000)
    assert {(r[1], r[4]) for r in rows} <= {("ios", "paid_search"), ("android", "paid_search")}


def test_a_lasting_change_holds_through_a_defects_dates_between_dates_of_it_that_stand() -> None:
    """A sign-out on four dates, the middle two of which a defect sits on (its rule drops them: the defect leaves no
    sessions of the segment beside it to read the change in): the change stands on both sides, so it held through."""
    investigation = AuditInvestigation(dates=DATES, finders=ALL_FINDERS)
    run = [_sign_out(day) for day in (3, 4, 5, 6)]
    ends = [run[0], run[3]]
    assert bridged(ends, run, LASTING, investigation.day) == run
    assert bridged(ends[:1], run, LASTING, investigation.day) == ends[:1]  # nothing stands after the defect
    gap = [run[0], run[1], run[3]]  # the scan's run breaks before the last date: two runs
    assert bridged(ends, gap, LASTING, investigation.day) == ends
    elsewhere = _sign_out(4, Segment(platform="ios", country="GB", user_type="returning"))
    assert bridged(ends, [*run, elsewhere], LASTING, investigation.day) == run  # another segment's date is no bridge
    shifts = [replace(f, kind="level_shift") for f in run]  # a finder whose change may last one date
    assert bridged([shifts[0], shifts[3]], shifts, LASTING, investigation.day) == [shifts[0], shifts[3]]


@given(st.sets(st.integers(0, 13)), st.sets(st.integers(0, 13)))
def test_bridging_keeps_what_stands_and_adds_only_dates_of_a_run_between_two_that_do(
    scanned: set[int], standing: set[int]
) -> None:
    every = [_sign_out(day) for day in sorted(scanned)]
    kept = [f for f in every if DATES.index(f.date) in standing]
    out = bridged(kept, every, LASTING, AuditInvestigation(dates=DATES).day)
    assert set(kept) <= set(out) <= set(every)
    for f in set(out) - set(kept):
        at = DATES.index(f.date)
        before = max(d for d in standing & scanned if d < at)
        after = min(d for d in standing & scanned if d > at)
        assert set(range(before, after + 1)) <= scanned  # one unbroken run of the scan's dates
