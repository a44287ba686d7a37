"""What a model reads at the warehouse is what the generator and the grader do: each data defect's metric, dates
and segment as the brief lists them, the defects' placement, the metric names' mapping to the metrics layer, an
incident's and a defect's values as the SQL tool reads them off the dashboard, the overlap credit's T, and a brief
that names no tool the tier does not offer."""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import pytest
from sweep_helpers import first_fast

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.catalog.seeding import derive_rng
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import WAREHOUSE, WAREHOUSE_DEFECTS
from metric_tracker_rl.generation.defects import defect_edits
from metric_tracker_rl.generation.warehouse.truth import DASHBOARD_COUNT, expected_rows, leaf_sessions
from metric_tracker_rl.generation.warehouse.world import DEFECT_COUNT, WarehouseWorld, build_warehouse_world
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.prompt import first_prompt, system_prompt
from metric_tracker_rl.view.tool_schemas import SUBMIT_GENERATORS, model_tools
from metric_tracker_rl.world.funnel import WINDOW_START
from metric_tracker_rl.world.segments import CELL_FIELDS, Segment
from metric_tracker_rl.world.warehouse_brief import DATA_DEFECTS, METRIC_NAMES

DEFECTS = defect_edits(WAREHOUSE_DEFECTS)  # the warehouse's mechanisms, by name

SEEDS = (2, 5, 9, 14, 21, 30)
SEGMENT_FIELDS = ("platform", "country", "app_version", "channel", "user_type")


@cache
def world(seed: int) -> WarehouseWorld:
    return build_warehouse_world(WAREHOUSE, resolve_episode_config(seed=seed, difficulty="warehouse"))


def published_fields(kind: str) -> set[str]:
    return {name for name in SEGMENT_FIELDS if name in DATA_DEFECTS[kind]["segment"]}


def published_metrics(kind: str) -> set[str]:
    """The dashboard metrics a defect's row may be on, as the brief names them (a count by its report name)."""
    named = set(re.findall(r"[a-z_]+", DATA_DEFECTS[kind]["metric"]))
    return {DASHBOARD_COUNT.get(name, name) for name in named} & {
        *DASHBOARD_COUNT.values(),
        *(
            "app_open_to_menu_open",
            "menu_open_to_product_added_to_cart",
            "product_added_to_cart_to_order_placed",
            "order_placed_to_payment_successful",
            "revenue_usd",
        ),
    }


@pytest.mark.parametrize("kind", list(DEFECTS))
def test_each_defect_is_on_the_metric_dates_and_segment_the_brief_lists(kind: str) -> None:
    """Every kind, drawn on a world's events with several streams: its record's metric, its dates' shape and the
    fields its segment names are the brief's."""
    assert set(DATA_DEFECTS) == set(DEFECTS)
    log = world(SEEDS[0]).log
    for stream in range(4):
        key = resolve_episode_config(seed=SEEDS[0], difficulty="warehouse").key
        _, record = DEFECTS[kind](log, derive_rng(key, f"text-{kind}", stream))
        assert record.metric in published_metrics(kind), (kind, record.metric)
        assert set(record.segment.normalised().named()) == published_fields(kind), (kind, record.segment)
        days = list(record.days)
        assert days == list(range(days[0], days[0] + len(days)))  # consecutive dates
        if kind == "tracking_stopped":
            assert days[-1] == log.num_days - 1  # to the window's last date
        if kind == "clock_skew":
            assert len(days) == 2  # the date that lost its sessions and the date before
        if kind == "late_load":
            assert len(days) == 1


@pytest.mark.parametrize("seed", SEEDS)
def test_two_or_three_defects_on_dates_no_incident_or_defect_holds_nor_their_neighbours(seed: int) -> None:
    placed = world(seed)
    assert len(placed.defects) <= DEFECT_COUNT[1]
    assert len(placed.defects) >= DEFECT_COUNT[0]  # the sweep's worlds all have room
    held = {i.record.day for i in placed.incidents}
    for k, defect in enumerate(placed.defects):
        reach = set(range(min(defect.days) - 1, max(defect.days) + 2))
        assert not reach & held
        assert not reach & {day for other in placed.defects[k + 1 :] for day in other.days}


def test_the_metric_names_are_the_metrics_layers_counts() -> None:
    for count, column in DASHBOARD_COUNT.items():
        assert f"{count} = {column}" in METRIC_NAMES


@cache
def played(seed: int) -> MetricTrackerRlEnvironment:
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty="warehouse", seed=seed)
    return env


def dashboard_value(env: MetricTrackerRlEnvironment, date: str, metric: str, segment: dict[str, str]) -> float:
    """A metric of the dashboard for a segment of its columns on a date, as a model reads it with the SQL tool (a
    rate: the sum of its numerator rows over the sum of its denominator rows)."""
    where = " AND ".join([f"date = DATE '{date}'", *(f"{name} = '{value}'" for name, value in segment.items())])
    rates = {
        "app_open_to_menu_open": ("menu_sessions", "sessions"),
        "menu_open_to_product_added_to_cart": ("cart_sessions", "menu_sessions"),
        "product_added_to_cart_to_order_placed": ("order_sessions", "cart_sessions"),
        "order_placed_to_payment_successful": ("payment_sessions", "order_sessions"),
    }
    numerator, denominator = rates.get(metric, (DASHBOARD_COUNT.get(metric, metric), None))
    value = f"sum({numerator})" + (f" / sum({denominator})" if denominator else "")
    observation = env.step(
        MetricTrackerRlAction(
            analysis_method="query", analysis_args={"sql": f"SELECT {value} AS v FROM dashboard WHERE {where}"}
        )
    )
    assert observation.status == "ok", observation.message
    return float(observation.analysis_result["rows"][0]["v"] or 0.0)


@pytest.mark.parametrize("seed", first_fast(SEEDS[:3]))
def test_observed_values_are_the_dashboards_as_the_sql_tool_reads_them(seed: int) -> None:
    """A defect's observed value is the dashboard's; so is an incident's on a segment of the dashboard's columns
    (the metrics layer's value, which the dashboard holds where no defect is)."""
    env = played(seed)
    episode = env._episode  # noqa: SLF001 (the truth, to hold the text to it)
    assert episode is not None
    checked = 0
    for row in episode.truth.expected_rows:
        segment = {name: getattr(row, name) for name in SEGMENT_FIELDS if getattr(row, name) is not None}
        if set(segment) - set(CELL_FIELDS) or row.entity_name not in (
            *DASHBOARD_COUNT,
            *(
                "app_open_to_menu_open",
                "menu_open_to_product_added_to_cart",
                "product_added_to_cart_to_order_placed",
                "order_placed_to_payment_successful",
            ),
        ):
            continue
        assert dashboard_value(env, row.date, row.entity_name, segment) == pytest.approx(row.observed_value), row
        checked += 1
    assert checked


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_the_credits_traffic_is_the_dashboards_sessions_by_leaf(seed: int) -> None:
    """T (the brief's grading): each leaf's counted sessions; all leaves on a date sum to the dashboard's."""
    placed = world(seed)
    opens, leaves_of = leaf_sessions(placed)
    board = placed.dashboard
    days = (np.asarray(board["date"]) - np.datetime64(WINDOW_START, "D")).astype(int)
    per_day = np.bincount(days, np.asarray(board["sessions"], dtype=float), placed.log.num_days)
    np.testing.assert_array_equal(opens.sum(axis=0), per_day)
    assert leaves_of(Segment()).all() and not leaves_of(Segment(platform="web", app_version="6.19.0")).any()


def test_the_brief_and_system_prompt_name_no_tool_the_tier_does_not_offer() -> None:
    text = first_prompt(MetricTrackerRlEnvironment().reset(difficulty="warehouse", seed=SEEDS[0]))
    prompt = system_prompt("warehouse")
    offered = {tool.name for tool in model_tools("warehouse")}
    for name in [*TOOL_REGISTRY, SUBMIT_GENERATORS]:
        if name not in offered:
            assert not re.search(rf"\b{name}\b", text + prompt), name
    assert all(name in text + prompt for name in offered)
    assert "annotation" not in text.lower() and "get_" not in text


def test_the_brief_states_the_step_budget_and_every_defect() -> None:
    observation = MetricTrackerRlEnvironment().reset(difficulty="warehouse", seed=SEEDS[0])
    assert observation.steps_remaining == WAREHOUSE.max_steps
    text = first_prompt(observation)
    assert f"steps_remaining: {WAREHOUSE.max_steps}" in text
    assert all(kind in text for kind in DATA_DEFECTS)


@pytest.mark.parametrize("seed", [910_001, *SEEDS[:2]])
def test_a_row_exists_exactly_where_its_metric_and_baseline_have_values(seed: int) -> None:
    """The brief: a date whose metric has no value in its segment is no row. Each incident date and defect date is
    a row unless its value or baseline is undefined (seed 910001: a release's first date with no orders in its
    sampled segment)."""
    placed = world(seed)
    rows = expected_rows(placed)
    assert all(np.isfinite([row.baseline, row.observed]).all() for row in rows)
    dates = sum(len(values) for values in placed.defect_values) + len(placed.incidents)
    undefined = [
        value
        for values in placed.defect_values
        for value in values
        if not np.isfinite([value.baseline, value.observed]).all()
    ]
    assert len(rows) + len(undefined) <= dates
    if seed == 910_001:
        assert len(rows) < dates
