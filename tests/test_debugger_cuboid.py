"""The debugger's cuboid view without a browser: its queries run on the episode's own SQL and read back exactly the
cuboid's data, its baseline is the published rule, and its context table reader takes only the brief's tables."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl.catalog.published import CONVERSION_BY_NAME, COUNT_COLUMNS
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.debugger import cuboid as cuboids
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.world.segments import Segment


def all_rows(env: MetricTrackerRlEnvironment, sql: str) -> list[dict]:
    rows, offset = [], 0
    while offset is not None:
        observation = env.step(
            MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": sql, "limit": 120, "offset": offset})
        )
        assert observation.status == "ok", observation.message
        rows += observation.analysis_result["rows"]
        offset = observation.analysis_result.get("next_offset")
    return rows


DEEP_SEGMENTS: dict = {}


@pytest.fixture(scope="module")
def deep() -> MetricTrackerRlEnvironment:
    env = MetricTrackerRlEnvironment()
    DEEP_SEGMENTS.update(env.reset(seed=5, difficulty="deep", max_steps=500).segments or {})
    return env


def test_the_dimension_values_are_the_episodes(deep: MetricTrackerRlEnvironment) -> None:
    segments = deep._episode.public.segments  # noqa: SLF001 (the episode's own values, to compare)
    fields = cuboids.episode_fields(DEEP_SEGMENTS)
    assert fields == ("platform", "country", "app_version", "channel", "user_type")
    assert cuboids.episode_fields(None) == ()
    values = cuboids.dimension_values(all_rows(deep, cuboids.dimension_values_query(fields)), fields)
    assert values == {field: sorted(found) for field, found in segments.dimension_values().items()}


@settings(max_examples=12, deadline=None)
@given(
    choice=st.fixed_dictionaries(
        {},
        optional={
            "platform": st.sampled_from(["ios", "android", "web"]),
            "country": st.sampled_from(["US", "IN", "MX", "JP"]),
            "channel": st.sampled_from(["organic", "paid_social"]),
            "user_type": st.sampled_from(["new", "returning"]),
        },
    )
)
def test_a_cuboids_rows_are_its_own_data(deep: MetricTrackerRlEnvironment, choice: dict[str, str]) -> None:
    rows = all_rows(deep, cuboids.cuboid_query(choice))
    expected = deep._episode.public.segments.segment_daily(Segment(**choice))  # noqa: SLF001
    assert np.array_equal(np.array([[row[c] for c in COUNT_COLUMNS] for row in rows]), expected)


def test_a_cuboids_baseline_is_the_median_of_its_same_weekday_peers() -> None:
    rows = [{"date": f"d{i:02d}", **{c: 100 + i for c in COUNT_COLUMNS}} for i in range(28)]
    rows[9]["app_opens"] = 10  # one perturbed date: it is no peer's median
    dates, values, baseline = cuboids.cuboid_series(rows, "app_opens")
    assert dates[0] == "d00" and values[9] == 10
    # Date 2's peers are dates 9, 16 and 23: the median of (10, 116, 123).
    assert baseline[2] == 116 and baseline[9] == 116  # date 9's peers: 2, 16, 23
    metric = CONVERSION_BY_NAME["app_open_to_menu_open"]
    _, rates, _ = cuboids.cuboid_series(rows, metric.name)
    assert rates[9] == rows[9][metric.numerator] / 10
    with pytest.raises(ValueError, match="valid: app_opens"):
        cuboids.cuboid_series(rows, "revenue")


def test_a_cuboid_chooses_only_the_named_values_and_quotes_them() -> None:
    assert cuboids.cuboid_of({"platform": "web", "country": cuboids.ALL_VALUES, "channel": None}) == {"platform": "web"}
    assert "channel = 'it''s'" in cuboids.cuboid_query({"channel": "it's"})
    assert "WHERE" not in cuboids.cuboid_query({})


def test_only_the_briefs_context_tables_are_read() -> None:
    tables = cuboids.context_tables({"context_tables": {"experiments": "...", "campaigns": "..."}})
    assert tables == ["experiments", "campaigns"]
    assert cuboids.context_query("campaigns", tables).startswith("SELECT * FROM campaigns")
    with pytest.raises(ValueError, match="valid: experiments, campaigns"):
        cuboids.context_query("daily_by_segment; DROP", tables)
    assert cuboids.context_tables(None) == []


def test_the_tables_offered_at_deep_are_the_tables_the_sql_tool_holds() -> None:
    """The deep brief's context entry also explains how to read the tables (under a key that names no table):
    only the real tables are offered, and each one's query answers with its rows."""
    env = MetricTrackerRlEnvironment()
    observation = env.reset(seed=3, difficulty="deep")
    listed = observation.segments["context_tables"]
    tables = cuboids.context_tables(observation.segments)
    assert tables and set(tables) < set(listed)  # something listed there is not a table
    for table in tables:
        answer = env.step(
            MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": cuboids.context_query(table, tables)})
        )
        assert answer.status == "ok", (table, answer.message)
