"""A warehouse episode opened in the web debugger, over a real server on loopback: the reset reads its charts from
what the tier offers (the dashboard's daily rows and the releases, through the query tool), draws them, and leaves
the cuboid page, which reads count tables, without dimensions."""

from __future__ import annotations

import pytest

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.catalog.published import CONVERSION_METRIC_NAMES, COUNT_COLUMNS
from metric_tracker_rl.catalog.tiers import WAREHOUSE
from metric_tracker_rl.serving.debugger import charts
from metric_tracker_rl.serving.debugger.tabs import TabSession
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.local_server import local_server
from metric_tracker_rl.view.tool_schemas import model_tools

pytestmark = pytest.mark.slow  # serves an episode on loopback

SEED = 75_003


def test_a_warehouse_episode_opens_in_the_debugger_with_its_dashboards_charts() -> None:
    with local_server(in_process=True) as url:
        tab = TabSession(url, None)
        try:
            observation = tab.reset(difficulty="warehouse", seed=SEED)
            assert observation.status != "error", observation.message
            data = tab.charts
            assert data is not None and tab.dimensions == {}
            assert len(data.dates) == WAREHOUSE.window_days == len(set(data.dates))
            assert set(COUNT_COLUMNS) | set(CONVERSION_METRIC_NAMES) <= set(data.daily.columns)
            assert {mark["kind"] for mark in data.annotations} == {"release"}
            marks = charts.marks_for(data.annotations, observation.debug)
            assert "<svg" in charts.daily_counts_svg(data, marks, 1) and "<svg" in charts.conversion_svg(data, marks, 1)
            assert data.dashboard and charts.DASHBOARD_SOURCE in charts.daily_counts_svg(data, marks, 1)
            assert "No hourly data" in charts.hourly_heatmap_svg(data, "app_opens", marks, 1)
            assert "<svg" in charts.funnel_svg(data, data.dates[-1], marks, 1)
            assert observation.steps_remaining == WAREHOUSE.max_steps  # the charts read in a session of their own
            # The tool picker holds the tier's tools: its SQL box and its metrics layer, readable; no generator.
            offered = [name for name, method in tab.methods.items() if method["offered"]]
            assert offered == [tool.name for tool in model_tools("warehouse") if tool.name in tab.methods]
            assert {"query", "metrics_layer"} <= set(offered)
            assert not [name for name, method in tab.methods.items() if method["kind"] == "generator"]
            layer = tab.step(MetricTrackerRlAction(analysis_method="metrics_layer", analysis_args={}))
            assert layer.status == "ok" and layer.analysis_result["definitions"], layer.message
        finally:
            tab.close()
    # The counts are the dashboard's, as the query tool reads it in process.
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty="warehouse", seed=SEED)
    rows = env.step(
        MetricTrackerRlAction(
            analysis_method="query", analysis_args={"sql": "SELECT sum(sessions) AS s FROM dashboard"}
        )
    ).analysis_result["rows"]
    assert data.daily["app_opens"].sum() == rows[0]["s"]
