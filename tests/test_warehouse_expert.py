"""The warehouse expert: its recount of the metrics layer is the dashboard's, each rule it applies is a clause of
its SQL (so an ablation drops exactly that rule), every statement fits the query tool, and through the tools it
finds each data defect the world holds by its trace in the raw events."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.agents import make_agent, play
from metric_tracker_rl.agents.expert_core.queries import compact
from metric_tracker_rl.agents.warehouse_expert import Investigation, investigate
from metric_tracker_rl.agents.warehouse_findings import in_parts, kept_by, widened
from metric_tracker_rl.agents.warehouse_scans import context_tests_and_hours_sql, date_runs, run_scan_sql
from metric_tracker_rl.agents.warehouse_sql import (
    ALL_RULES,
    CONTEXT_SQL,
    RULES,
    Fixes,
    metric_values_sql,
    sessions_cte,
    wanted_values,
)
from metric_tracker_rl.agents.warehouse_traces import revenue_values_sql, traces_sql
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import WAREHOUSE
from metric_tracker_rl.generation.warehouse.truth import DATA_QUALITY, expected_rows
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld, build_warehouse_world
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.engine import EpisodeTables, open_database
from metric_tracker_rl.sql.sandbox import WAREHOUSE_MAX_SQL_CHARS
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.segments import Segment

FIXED = Fixes(
    renamed=(("menu_view", "menu_open"),),
    skewed=True,
    late_loaded=True,
    retried=True,
    bots=tuple(f"{n:010d}.1776697200" for n in range(4)),
    resent=True,
    mislabelled=tuple((f"2026-03-{day}", "ios", "IN", "EUR", "INR") for day in range(10, 15)),
)
ASKED = [(i, "2026-03-20", "android", None, None, None, None, i % 5) for i in range(150)]
HOSTS = [f"2026-03-{day}" for day in range(10, 30)]


def _world(seed: int) -> WarehouseWorld:
    return build_warehouse_world(WAREHOUSE, resolve_episode_config(seed=seed, difficulty="warehouse"))


def _runner(world: WarehouseWorld):  # type: ignore[no-untyped-def]
    tables = EpisodeTables(open_database(), world.sql_tables())

    def run(sql: str) -> list[dict[str, object]]:
        columns, rows, _ = tables.run(sql, 0, 5000)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    return run


def test_the_experts_sessions_are_the_dashboards() -> None:
    world = _world(3)
    run = _runner(world)
    mine = run(
        sessions_cte() + " SELECT date, platform, app_version, country, count(*) sessions, sum(m1) menu, "
        "sum(m4) paid FROM s GROUP BY ALL ORDER BY ALL"
    )
    board = run(
        "SELECT date, platform, app_version, country, sessions, menu_sessions menu, payment_sessions paid "
        "FROM dashboard ORDER BY ALL"
    )
    assert mine == board and len(board) > 1000


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_is_a_clause_of_the_recount(rule: str) -> None:
    """Leaving a rule out changes the statement that counts sessions, except currency, which only revenue reads;
    every rule changes the statement that recounts revenue."""
    changed = sessions_cte(ALL_RULES - {rule}) != sessions_cte(ALL_RULES)
    assert changed == (rule != "currency")
    asked = [(0, "2026-03-20", "ios", None, None)]
    assert revenue_values_sql(ALL_RULES - {rule}, FIXED, asked) != revenue_values_sql(ALL_RULES, FIXED, asked)


def test_the_experts_revenue_is_the_dashboards() -> None:
    """Its recount of revenue_usd (each purchase once, in its own currency at its date's rate) equals the
    dashboard's on every date and platform; without de-duplication or currency it does not."""
    world = _world(3)
    run = _runner(world)
    board = run("SELECT CAST(date AS VARCHAR) d, platform, sum(revenue_usd) r FROM dashboard GROUP BY ALL ORDER BY ALL")
    asked = [(i, row["d"], row["platform"], None, None) for i, row in enumerate(board)]
    for rules, equal in ((ALL_RULES, True), (ALL_RULES - {"deduplication"}, False), (ALL_RULES - {"currency"}, False)):
        mine = run(revenue_values_sql(rules, Fixes(), asked))
        close = [abs(m["value"] - b["r"]) <= 1e-6 * max(b["r"], 1.0) for m, b in zip(mine, board, strict=True)]
        assert all(close) if equal else sum(close) < 0.5 * len(close), rules


@pytest.mark.parametrize("rules", [ALL_RULES, *(ALL_RULES - {rule} for rule in RULES)])
def test_every_statement_fits_the_query_tool(rules: frozenset[str]) -> None:
    """As sent (compact), with every fix a world can call for; a long list of rows goes in parts that fit."""
    statements = [
        CONTEXT_SQL,
        traces_sql(rules),
        context_tests_and_hours_sql(rules, FIXED, 2.5),
        run_scan_sql(rules, FIXED, (0, 1, 2, 3), {1: 5.0, 2: 7.0}, HOSTS),
    ]
    assert max(len(compact(sql)) for sql in statements) <= WAREHOUSE_MAX_SQL_CHARS
    parts = in_parts("values", ASKED, lambda part: metric_values_sql(rules, FIXED, part))
    sent = []
    try:
        statement = next(parts)
        while True:
            sent.append(statement[1])
            statement = parts.send([])
    except StopIteration:
        pass
    assert len(sent) >= 2 and max(len(compact(sql)) for sql in sent) <= WAREHOUSE_MAX_SQL_CHARS
    assert sum(sql.count("'2026-03-20'") for sql in sent) == len(ASKED)
    revenue = in_parts("revenue", [row[:5] for row in ASKED], lambda part: revenue_values_sql(rules, FIXED, part))
    assert all(len(compact(statement)) <= WAREHOUSE_MAX_SQL_CHARS for statement in _sent(revenue))


def _sent(parts):  # type: ignore[no-untyped-def]
    """The statements a generator of parts yields, each answered with no rows."""
    sent = []
    try:
        statement = next(parts)
        while True:
            sent.append(statement[1])
            statement = parts.send([])
    except StopIteration:
        return sent


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 5])
def test_the_expert_finds_each_data_defect_by_its_trace(seed: int) -> None:
    """Every date of every defect the world holds comes back as a data_quality row on its metric, and no defect
    row names a date the world's defects do not hold."""
    world = _world(seed)
    dates = window_calendar(world.log.num_days).iso_dates
    findings = investigate(_runner(world))
    defects = {(dates[row.day], row.metric) for row in expected_rows(world) if row.family == DATA_QUALITY}
    reported = {(f.date, f.metric) for f in findings if f.anomaly_type == DATA_QUALITY}
    assert defects and reported == defects


@pytest.mark.slow
def test_the_expert_plays_through_the_tools_only() -> None:
    """Through the environment it reads the metrics layer, sends its queries and submits once, within the calls
    the calibration measured; its score is the episode's."""
    session = play(
        make_agent("warehouse_expert"), EpisodeSession(MetricTrackerRlEnvironment()), difficulty="warehouse", seed=3
    )
    assert session.graded and session.score > 0.5
    assert session.steps <= 16


@pytest.mark.slow
def test_without_the_time_zone_the_expert_still_reports() -> None:
    """A recount on UTC dates reads a date before the window (its first hours in Tokyo): the expert without the
    time-zone rule, as the ablation plays it, still plays its episode through and submits."""
    agent = make_agent("warehouse_expert", rules=ALL_RULES - {"time_zone"})
    session = play(agent, EpisodeSession(MetricTrackerRlEnvironment()), difficulty="warehouse", seed=16)
    assert session.graded


_NO_TABLES = EpisodeTables(open_database(), {})
_ASKED_ROWS = st.lists(
    st.tuples(st.integers(0, 20), st.sampled_from(["ios", "web", None]), st.integers(0, 4)), max_size=30
)


@settings(max_examples=40, deadline=None)
@given(_ASKED_ROWS)
def test_the_rows_asked_for_read_as_they_were_asked(picked: list[tuple[int, str | None, int]]) -> None:
    """Written as runs of dates, the rows asked for are, through the SQL tool's checks, exactly the rows a plain
    list would give: each i once, with its own date and fields."""
    asked = [
        (i, (dt.date(2026, 3, 2) + dt.timedelta(days=day)).isoformat(), platform, k)
        for i, (day, platform, k) in enumerate(picked)
    ]
    if not asked:
        return
    _, rows, _ = _NO_TABLES.run(
        f"WITH {wanted_values(asked, 'i, on_date, platform, k')} SELECT i, "
        "on_date::VARCHAR, platform, k FROM q ORDER BY i",
        0,
        100,
    )
    assert [tuple(row) for row in rows] == [tuple(row) for row in asked]


@pytest.mark.slow
def test_the_run_scan_reads_the_level_shift_beside_its_host() -> None:
    """Given the date of the incident its concurrent level shift shares (a release on ios breaking
    product_added_to_cart_to_order_placed), the run scan reads that date's single fall of the world's concurrent
    level shift (ios, order to payment), too weak for a blind scan's bar."""
    world = _world(1)
    dates = window_calendar(world.log.num_days).iso_dates
    shifts = [
        i
        for i in world.incidents
        if i.kind == "level_shift" and sum(j.record.day == i.record.day for j in world.incidents) > 1
    ]
    assert len(shifts) == 1 and shifts[0].record.entity_name == "order_placed_to_payment_successful"
    date = dates[shifts[0].record.day]

    def single(hosts: list[str]) -> list[dict[str, object]]:
        rows = _runner(world)(run_scan_sql(ALL_RULES, Fixes(), (0, 1, 2, 3), {1: 5.0, 2: 7.0}, hosts))
        return [row for row in rows if row["first"] == date and row["k"] == 4 and row["n"] == 1]

    found = single([date])
    assert [(row["platform"], row["country"], row["channel"], row["user_type"]) for row in found] == [
        ("ios", None, None, None)
    ]
    assert -5.0 < float(found[0]["z"]) <= -3.0  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_fall_seen_strongest_in_part_of_its_cuboid_is_reported_on_the_cuboid() -> None:
    """The world's level shift on organic traffic is strongest, by chance, among its returning users; the rest of
    organic traffic fell as far, so the run scan names the parent it ripples through and the expert reports the
    shift's own cuboid, not its part."""
    world = _world(40)
    dates = window_calendar(world.log.num_days).iso_dates
    shift = next(i for i in world.incidents if i.kind == "level_shift" and i.record.day > 20)
    assert shift.segment.normalised() == Segment(channel="organic")
    rows = _runner(world)(run_scan_sql(ALL_RULES, Fixes(), (0, 1, 2, 3), {1: 5.0, 2: 7.0}))
    strongest = min(rows, key=lambda row: float(row["z"]))  # type: ignore[arg-type]
    assert (strongest["channel"], strongest["user_type"], strongest["wider"]) == ("organic", "returning", "organic")
    assert widened(strongest) == Segment(channel="organic")
    reported = {
        f.segment for f in investigate(_runner(world)) if f.kind == "level_shift" and f.date == dates[shift.record.day]
    }
    assert reported == {Segment(channel="organic")}


@pytest.mark.slow
def test_a_consent_drops_baseline_counts_only_what_the_rules_count() -> None:
    """In Japan, where staff test every release, a consent drop's app_opens without consent stand for fewer
    counted sessions than their number (by half as many again): the baseline is within 15% of the metrics layer's
    without the drop on each of its dates."""
    world = _world(21)
    dates = window_calendar(world.log.num_days).iso_dates
    truth = {dates[row.day]: row.baseline for row in expected_rows(world) if row.kind == "consent_drop"}
    found = {f.date: f.baseline for f in investigate(_runner(world)) if f.kind == "consent_drop"}
    assert truth and found.keys() == truth.keys()
    assert all(abs(found[date] - truth[date]) <= 0.15 * truth[date] for date in truth), (found, truth)


def _release_row(residuals: list[float]) -> dict[str, object]:
    """A release's test row on order to payment: each date 30 orders expected to pay, the residuals given."""
    return {
        "what": "release",
        "detail": "6.20.0",
        "k": 4,
        "platform": "ios",
        "country": None,
        "app_version": "6.20.0",
        "channel": None,
        "user_type": None,
        "first": "2026-03-06",
        "r": str(residuals),
        "e": str([30.0] * len(residuals)),
        "w": str([3.0] * len(residuals)),
    }


def test_a_release_is_a_fall_from_its_rollouts_first_dates() -> None:
    """A version whose payments fall from its first date is a regression on each date it lasts; one whose first
    three dates hold and whose later dates fall as far is not (a fall that starts later is something else's)."""
    investigation = Investigation(dates=[f"2026-03-{day:02d}" for day in range(2, 30)])
    found = investigation.releases([_release_row([-10.0, -10.0, -10.0, 0.0, 0.5, 0.0, 0.2])])
    assert [f.date for f in found] == ["2026-03-06", "2026-03-07", "2026-03-08"]
    assert {(f.metric, f.segment.app_version, f.kind) for f in found} == {
        ("order_placed_to_payment_successful", "6.20.0", "release_regression")
    }
    assert investigation.releases([_release_row([0.5, -0.5, 0.0, -12.0, -12.0, -12.0, 0.0])]) == []


def test_a_concurrent_cuboid_keeps_one_of_its_hosts_values_and_agrees_with_it() -> None:
    """As the brief words it: one of the host's values kept (its app version aside), no field both name differing."""
    host = Segment(platform="ios", app_version="6.20.0", channel="organic")
    assert kept_by(Segment(platform="ios", user_type="returning"), host)
    assert kept_by(Segment(channel="organic"), host)
    assert not kept_by(Segment(country="US"), host)  # keeps none of its values
    assert not kept_by(Segment(app_version="6.20.0"), host)  # a version is not kept
    assert not kept_by(Segment(platform="android", channel="organic"), host)  # disagrees on the platform


@given(st.sets(st.integers(0, 40), max_size=20))
def test_dates_as_runs_cover_each_date_once(days: set[int]) -> None:
    dates = [(dt.date(2026, 3, 2) + dt.timedelta(days=day)).isoformat() for day in days]
    runs = date_runs(dates)
    covered = [
        (dt.date.fromisoformat(a) + dt.timedelta(days=n)).isoformat()
        for a, b in runs
        for n in range((dt.date.fromisoformat(b) - dt.date.fromisoformat(a)).days + 1)
    ]
    assert covered == sorted(dates)
    assert all(_next(b) < c for (_, b), (c, _) in zip(runs, runs[1:], strict=False))  # a gap between runs


def _next(date: str) -> str:
    return (dt.date.fromisoformat(date) + dt.timedelta(days=1)).isoformat()


def test_an_experiments_fall_on_the_step_it_targets_is_its_intended_effect_and_another_steps_is_a_breakage() -> None:
    """The context lists an experiment by its arm and dates (its tests by its name): a fall on its target step in
    its arm is what it meant to do, and only the strongest fall of another step is reported, on each of its dates."""
    dates = list(window_calendar(56).iso_dates)
    context = [
        {
            "what": "experiment",
            "platform": "ios",
            "country": None,
            "detail": "new",
            "first": dates[40],
            "last": dates[42],
            "note": "menu_open_to_product_added_to_cart",
        }
    ]
    arm = {
        "what": "experiment",
        "detail": "exp_1",
        "platform": "ios",
        "country": None,
        "app_version": None,
        "channel": None,
        "user_type": "new",
        "first": dates[40],
        "offsets": [0, 1, 2],
    }
    fall = {"r": [-10.0, -10.0, -10.0], "e": [20.0, 20.0, 20.0], "w": [12.0, 12.0, 12.0]}  # z about -4.7
    intended, broken = {**arm, **fall, "k": 2}, {**arm, **fall, "k": 3, "r": [-8.0, -8.0, -8.0]}  # about -3.8
    investigation = Investigation(dates=dates, context=context)
    found = investigation.experiments([intended, broken])
    assert {(f.date, f.metric) for f in found} == {(d, "product_added_to_cart_to_order_placed") for d in dates[40:43]}
    assert investigation.experiments([intended]) == []
