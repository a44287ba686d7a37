"""What a model reads matches what the environment does, at every difficulty: the query tool's tables and limits,
the hourly-mix definition, the data-quality entities, the suspicious-date ranking, reset errors and table cells.
Each test reads the text and checks it against the real tables, data or behaviour."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np
import pytest
from core_helpers import reset_episode
from hypothesis import given, settings
from hypothesis import strategies as st
from text_reader import parse as parse_view
from text_reader import read_observation

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.analysis_tools import run_tool
from metric_tracker_rl.analysis_tools.comparisons import broken_step_hours
from metric_tracker_rl.catalog.published import COUNT_COLUMNS, ENTITY_NAMES, ENTITY_VALUE_DEFINITIONS
from metric_tracker_rl.catalog.task_splits import SPLITS, get_split
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.settings import ServerSettings
from metric_tracker_rl.view import render
from metric_tracker_rl.view.observation import render_observation
from metric_tracker_rl.view.prompt import first_prompt
from metric_tracker_rl.view.tool_schemas import model_tools
from metric_tracker_rl.world.traffic_split import version_labels

MODEL_TOOLS = {tool.name: tool for tool in model_tools()}


@lru_cache(maxsize=8)
def _episode(seed: int, difficulty: str, family: str = "mixed") -> Any:
    return reset_episode(seed=seed, difficulty=difficulty, scenario_family=family)


def _brief(difficulty: str, seed: int = 3) -> dict[str, Any]:
    observation = MetricTrackerRlEnvironment().reset(seed=seed, difficulty=difficulty)
    return read_observation(first_prompt(observation)).brief


# --- the query tool's description ----------------------------------------------------------------------


def _described_tables(description: str, brief: dict[str, Any]) -> tuple[dict[str, list[str]], set[str]]:
    """The tables the description names with their columns (groups expanded as it defines them), and which of
    them it says exist at frontier only."""
    counts = re.search(r"<counts> = ([a-z_, ]+?)(?:;|$)", description)
    assert counts is not None and "<rates> = the brief's conversion_metrics by name" in description
    assert "<dimensions> = the brief's segments.dimensions" in description
    groups = {
        "<counts>": counts.group(1).split(", "),
        "<rates>": [metric["metric"] for metric in brief["conversion_metrics"]],
        "<dimensions>": list(brief["segments"]["dimensions"]),
    }
    tables_text = description.split("Tables: ", 1)[1]
    everywhere_text, frontier_text = tables_text.split("with segments: ", 1)
    tables: dict[str, list[str]] = {}
    frontier_only: set[str] = set()
    for text, at_frontier in ((everywhere_text, False), (frontier_text, True)):
        for name, columns in re.findall(r"([a-z_]+)\(([^)]*)\)", text):
            tables[name] = [column for item in columns.split(", ") for column in groups.get(item, [item])]
            if at_frontier:
                frontier_only.add(name)
    return tables, frontier_only


def _columns_of(public: Any, table: str) -> list[str] | None:
    """The columns the query tool answers for a table (None: the tool has no such table)."""
    outcome = run_tool("query", public, {"sql": f"SELECT * FROM {table} LIMIT 0"})
    return outcome.result["columns"] if outcome.ok else None


def test_the_query_description_names_every_table_and_column_and_no_other() -> None:
    """Compared with the tables an easy and a frontier episode's SQL tool really holds: every table and column
    is named, in order, nothing else is, and the frontier-only tables are exactly those easy lacks."""
    description = MODEL_TOOLS["query"].parameters["properties"]["sql"]["description"]
    easy, frontier = _episode(3, "easy").public, _episode(3, "frontier").public
    try:
        tables, frontier_only = _described_tables(description, _brief("frontier"))
        assert set(tables) == set(frontier.sql_tables())
        assert set(tables) - frontier_only == set(easy.sql_tables())
        for name, columns in tables.items():
            assert _columns_of(frontier, name) == columns, name
            assert _columns_of(easy, name) == (None if name in frontier_only else columns), name
    finally:
        easy.close()
        frontier.close()


def test_the_query_description_is_true_at_deep_where_daily_by_segment_has_a_column_per_dimension() -> None:
    """Deep reads the same description against its own brief: its daily_by_segment names channel and user_type
    too, and its context tables are the ones the brief lists (get_context), not the description."""
    description = MODEL_TOOLS["query"].parameters["properties"]["sql"]["description"]
    brief = _brief("deep")
    deep = _episode(3, "deep").public
    try:
        tables, _ = _described_tables(description, brief)
        context = set(brief["segments"]["context_tables"]) - {"reading"}
        assert set(deep.sql_tables()) == set(tables) | context
        for name, columns in tables.items():
            assert _columns_of(deep, name) == columns, name
        assert {"channel", "user_type"} <= set(tables["daily_by_segment"])
    finally:
        deep.close()


def _sql_description() -> str:
    return MODEL_TOOLS["query"].parameters["properties"]["sql"]["description"]


def test_the_query_description_states_the_limits_the_tool_enforces() -> None:
    """The row cap counts the whole result before paging: a page of one row of a result one over the cap is
    refused, so limit does not cap a query."""
    description = _sql_description()
    limits = re.search(
        r"max (\d+) chars, ([\d.]+) s CPU; past a busy server's step bound, ([\d.]+) s, an error "
        r"using no step\); a result over (\d+) rows is refused before paging "
        r"\(limit pages it, caps nothing",
        description,
    )
    assert limits is not None
    assert float(limits.group(3)) == ServerSettings.model_fields["step_timeout_s"].default
    characters, rows = int(limits.group(1)), int(limits.group(4))
    public = _episode(3, "easy").public
    try:
        padded = "SELECT 1" + " " * (characters - len("SELECT 1"))
        assert run_tool("query", public, {"sql": padded}).ok
        assert not run_tool("query", public, {"sql": padded + " "}).ok
        assert run_tool("query", public, {"sql": f"SELECT * FROM range({rows})"}).result["row_count"] == rows
        for limit in (1, 120):
            too_many = run_tool("query", public, {"sql": f"SELECT * FROM range({rows + 1})", "limit": limit})
            assert not too_many.ok and str(rows) in (too_many.error or "")
        capped = run_tool("query", public, {"sql": f"SELECT * FROM range({rows + 1}) LIMIT {rows}", "limit": 1})
        assert capped.ok and capped.result["row_count"] == rows
    finally:
        public.close()


@settings(max_examples=25, deadline=None)
@given(extra=st.integers(-3, 300))
def test_a_text_cell_longer_than_the_description_says_is_cut_there_and_marked(extra: int) -> None:
    match = re.search(r"Text over (\d+) chars is cut there: (\S+)\(cut, N chars\)\.", _sql_description())
    assert match is not None
    longest, ellipsis = int(match.group(1)), match.group(2)
    length = longest + extra
    public = _episode(3, "easy").public
    # repeat() is refused (it builds a value as large as asked): a string of the length asked by aggregation.
    sql = f"SELECT string_agg(chr(97 + (range % 26)::INTEGER), '' ORDER BY range) AS t FROM range({length})"
    (row,) = run_tool("query", public, {"sql": sql}).result["rows"]
    text = "".join(chr(97 + i % 26) for i in range(length))
    if length <= longest:
        assert row["t"] == text
    else:
        assert row["t"] == f"{text[:longest]}{ellipsis}(cut, {length} chars)"
    shown = parse_view(render.render({"rows": [row]}))["rows"][0]["t"]
    assert shown == row["t"]


def test_nan_and_infinities_read_as_the_description_says_and_nan_sorts_first_under_desc() -> None:
    """A division by zero gives NaN (0/0) or Infinity (x/0), shown as those words, not as null (a missing value);
    NaN sorts above every number, Infinity included, so ORDER BY x DESC lists it first and NULL last."""
    description = _sql_description()
    assert "x/0 is Infinity, 0/0 NaN, shown so; NaN sorts above every number (first under DESC)" in description
    public = _episode(3, "easy").public
    try:
        result = run_tool(
            "query",
            public,
            {
                "sql": (
                    "SELECT x FROM (VALUES (2.0), (0.0 / 0.0), (-1.0 / 0), (NULL), (1.0 / 0), (7.5)) t(x) "
                    "ORDER BY x DESC"
                )
            },
        ).result
        assert [row["x"] for row in result["rows"]] == ["NaN", "Infinity", 7.5, 2.0, "-Infinity", None]
        env = MetricTrackerRlEnvironment()
        env.reset(seed=3, difficulty="easy")
        text = render_observation(
            env.step(
                MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": "SELECT 0 / 0 AS r, 1 / 0 AS s"})
            )
        )
        assert "r | s\n" in text and "NaN | Infinity" in text
        env.close()
    finally:
        public.close()


# --- the hourly-mix distance ---------------------------------------------------------------------------


def _profile_distance(hourly: np.ndarray, weekend: list[bool], day: int, event: int, renormalise: bool) -> float:
    """The hourly-mix distance as the published definition words it, from the raw hourly counts."""
    shares = hourly[:, :, event] / hourly[:, :, event].sum(axis=1, keepdims=True)
    others = [d for d in range(len(weekend)) if d != day and weekend[d] == weekend[day]]
    profile = np.median(shares[others], axis=0)
    if renormalise:
        profile = profile / profile.sum()
    return float(0.5 * np.abs(shares[day] - profile).sum())


def test_the_hourly_mix_definition_computes_the_tools_distance_on_a_holiday_and_an_ordinary_date() -> None:
    """Read off the frontier brief's entity definition: per-hour medians over the other dates of the date's day
    type (the `weekend` flag, false on a holiday), renormalised to sum to 1. Without the renormalisation, or with
    the holiday counted as a weekend, the numbers differ from the tool's."""
    definition = ENTITY_VALUE_DEFINITIONS["hourly_mix"]
    assert "renormalised to sum to 1" in definition and "a holiday counts as a weekday" in definition
    public = _episode(3, "frontier").public
    try:
        overview = run_tool("task_overview", public, {}).result
        assert {e["entity_type"]: e["value"] for e in overview["entities"]}["hourly_mix"] == definition
        daily = run_tool(
            "query", public, {"sql": "SELECT date, weekend FROM daily ORDER BY date", "limit": 120}
        ).result["rows"]
        weekend = [row["weekend"] for row in daily]
        holidays = [note.date for note in public.annotations if note.kind == "public_holiday"]
        assert holidays and all(
            "weekend-like" in note.note for note in public.annotations if note.kind == "public_holiday"
        )
        hourly = public.data.hourly.astype(float)
        gaps = []
        for date in (*holidays, "2026-03-11", "2026-03-14"):
            day = public.dates.index(date)
            for event, name in enumerate(COUNT_COLUMNS):
                shown = run_tool("compare_hourly_mix_to_baseline", public, {"date": date, "entity_name": name}).result[
                    "observed_value"
                ]
                assert shown == pytest.approx(_profile_distance(hourly, weekend, day, event, True), rel=1e-9)
                gaps.append(abs(shown - _profile_distance(hourly, weekend, day, event, False)))
            if date in holidays:
                assert not weekend[day]
                as_weekend = [True if d == day else flag for d, flag in enumerate(weekend)]
                assert _profile_distance(hourly, as_weekend, day, 0, True) != pytest.approx(
                    run_tool(
                        "compare_hourly_mix_to_baseline", public, {"date": date, "entity_name": "app_opens"}
                    ).result["observed_value"],
                    rel=1e-3,
                )
        assert max(gaps) > 1e-6  # the renormalisation is a step that changes the number
    finally:
        public.close()


# --- the data-quality entities -------------------------------------------------------------------------

DATA_QUALITY = "instrumentation_data_quality_issue"


@pytest.mark.parametrize("difficulty", ["easy", "frontier"])
def test_the_brief_and_task_overview_name_the_same_data_quality_entities(difficulty: str) -> None:
    brief = _brief(difficulty)
    [family] = [row for row in brief["families"] if row["family"] == DATA_QUALITY]
    public = _episode(3, difficulty).public
    overview = run_tool("task_overview", public, {}).result
    listed = {e["entity_type"]: e["entity_names"].split(",") for e in overview["entities"]}["data_quality"]
    assert family["root_cause_entities"] == listed


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10**6), difficulty=st.sampled_from(["easy", "medium", "hard", "frontier"]))
def test_every_data_quality_incident_is_on_a_published_entity_and_no_other_name_is_accepted(
    seed: int, difficulty: str
) -> None:
    """What the injector produces (a seed sweep of the family alone, and of frontier's web tracking bugs) stays
    inside the published names, and a row on any other event is refused rather than graded as a miss."""
    published = ENTITY_NAMES["data_quality"]
    reset = {"incident_kinds": ["web_tracking_bug"]} if difficulty == "frontier" else {"scenario_family": DATA_QUALITY}
    env = MetricTrackerRlEnvironment()
    env.reset(seed=seed, difficulty=difficulty, **reset)
    expected = env._episode.truth.expected_rows  # noqa: SLF001 (the truth, to check the published names)
    assert expected and all(row.entity_type == "data_quality" and row.entity_name in published for row in expected)
    row = expected[0].model_dump(exclude_none=True)
    others = [{**row, "entity_name": event} for event in COUNT_COLUMNS if event not in published]
    preview = run_tool("preview_submission", env._episode.public, {"rows": [row, *others]}).result  # noqa: SLF001
    assert preview["valid_row_count"] == 1 and [issue["row_index"] for issue in preview["issues"]] == [
        i + 1 for i in range(len(others))
    ]
    assert all(f"valid: {', '.join(published)}" in issue["message"] for issue in preview["issues"])


def test_a_data_quality_incident_cannot_be_requested_on_an_unpublished_event() -> None:
    outside = next(event for event in COUNT_COLUMNS[1:] if event not in ENTITY_NAMES["data_quality"])
    observation = MetricTrackerRlEnvironment().reset(
        difficulty="easy",
        anomalies=[{"family": DATA_QUALITY, "date": "2026-03-10", "entity_name": outside, "magnitude": 1.5}],
    )
    assert observation.status == "error" and outside in observation.message


# --- list_suspicious_dates: hourly mixes by their rise only ---------------------------------------------


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10**6), difficulty=st.sampled_from(["easy", "medium", "hard", "frontier"]))
def test_the_suspicious_dates_a_model_reads_rank_hourly_mixes_by_their_rise_and_show_null_where_none_rose(
    seed: int, difficulty: str
) -> None:
    """The description says hourly mixes rank by rises only, null if none rose: in the text a model reads, a
    date's score is the largest |z| of its counts and rates or the largest rise of its mixes (a mix below its
    usual distance adds nothing), every hourly-mix z shown is positive, and a null stands for a date none of
    whose mixes rose."""
    assert "hourly mixes rank by rises only, null if none rose" in MODEL_TOOLS["list_suspicious_dates"].description
    env = MetricTrackerRlEnvironment()
    env.reset(seed=seed, difficulty=difficulty)
    public = env._episode.public  # noqa: SLF001 (the numbers behind the text)
    panel = public.panel
    mixes = [panel.index("hourly_mix", name) for name in COUNT_COLUMNS]
    others = [k for k, (kind, _) in enumerate(panel.keys) if kind in ("conversion_rate", "event_count")]
    for offset in range(0, len(public.dates), 28):
        shown = read_observation(
            render_observation(
                env.step(
                    MetricTrackerRlAction(
                        analysis_method="list_suspicious_dates", analysis_args={"limit": 28, "offset": offset}
                    )
                )
            )
        ).analysis_result
        for entry in shown["dates"]:
            day = public.dates.index(entry["date"])
            rise = panel.filled_z[mixes, day].max()
            score = max(float(np.abs(panel.filled_z[others, day]).max()), float(rise), 0.0)
            assert entry["max_abs_robust_z"] == render.rounded(score)
            if rise > 0:
                assert entry["hourly_mix_z"] > 0 and entry["hourly_mix"] in COUNT_COLUMNS
            else:
                assert entry["hourly_mix"] is None and entry["hourly_mix_z"] is None


# --- detect_funnel_break: the hours it does not judge ------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(arrivals=st.integers(0, 60), step=st.integers(0, 3), hour=st.integers(0, 23))
def test_detect_funnel_break_judges_no_hour_with_fewer_arrivals_than_its_description_says(
    arrivals: int, step: int, hour: int
) -> None:
    """An hour where no one at a step goes on is broken exactly when at least as many arrived at the step as the
    description's floor; with fewer it is not judged."""
    match = re.search(r"\(<(\d+) arrivals: not judged\)", MODEL_TOOLS["detect_funnel_break"].description)
    assert match is not None
    floor = int(match.group(1))
    hourly = np.tile(np.array([400, 240, 120, 80, 72]), (1, 24, 1))
    hourly[0, hour, step] = arrivals
    hourly[0, hour, step + 1 :] = 0
    assert broken_step_hours(hourly)[0, hour, step] == (arrivals >= floor)


# --- reset settings: names in any case, errors that name what was passed ----------------------------------


@pytest.mark.parametrize(
    ("setting", "spelled", "name"),
    [
        ("difficulty", "FRONTIER", "frontier"),
        ("difficulty", "Hard", "hard"),
        ("scenario_family", "Funnel_Break", "funnel_break"),
        ("scenario_family", "NULL", "null"),
        ("task_id", "HARD_MIXED_MULTI", "hard_mixed_multi"),
    ],
)
def test_reset_names_are_accepted_in_any_letter_case(setting: str, spelled: str, name: str) -> None:
    """The same episode as the name in lower case: the same visible config (standard or not) and the same data."""
    seed = {} if setting == "task_id" else {"seed": 11}
    spelled_env, named_env = MetricTrackerRlEnvironment(), MetricTrackerRlEnvironment()
    spelled_reset = spelled_env.reset(**{setting: spelled}, **seed)
    named_reset = named_env.reset(**{setting: name}, **seed)
    assert spelled_reset.status == named_reset.status == "ready"
    assert spelled_reset.config == named_reset.config and spelled_reset.config[setting] == name
    assert (spelled_env._episode.public.data.hourly == named_env._episode.public.data.hourly).all()  # noqa: SLF001


@pytest.mark.parametrize("setting", ["difficulty", "scenario_family", "task_id"])
def test_an_unknown_reset_name_says_that_any_case_is_accepted(setting: str) -> None:
    observation = MetricTrackerRlEnvironment().reset(**{setting: "no_such_name"})
    assert (
        observation.status == "error"
        and f"unknown {setting} 'no_such_name'; valid (in any case):" in observation.message
    )


@pytest.mark.parametrize(
    "reset",
    [
        {"split": "eval"},
        {"index": 2},
        {"split": "train", "index": 1, "max_steps": 5},
        {"split": "eval", "index": 0, "seed": 4},
    ],
)
def test_a_split_error_names_only_what_was_passed_and_the_valid_options(reset: dict[str, Any]) -> None:
    """The environment's reset always hands `seed` on (None when not passed): the error names it only when set."""
    message = MetricTrackerRlEnvironment().reset(**reset).message
    got = re.search(r"\(got ([^)]*)\)", message)
    assert got is not None and got.group(1).split(", ") == sorted(reset)
    for name in SPLITS:
        assert f"{name} (index 0 to {get_split(name).size() - 1})" in message


# --- version labels in tables ----------------------------------------------------------------------------


@given(base_minor=st.integers(0, 999))
def test_a_version_label_is_text_a_table_shows_bare_and_reads_back_as_itself(base_minor: int) -> None:
    labels = version_labels(base_minor)
    text = render.render({"rows": [{"platform": "ios", "app_version": label} for label in labels]})
    assert '"' not in text and [row["app_version"] for row in parse_view(text)["rows"]] == list(labels)


def test_the_release_and_segment_tables_a_model_reads_show_version_labels_without_quotes() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(seed=5, difficulty="frontier")
    versions = env._episode.public.segment_values()["app_version"]  # noqa: SLF001 (the episode's labels)
    calls = [
        ("get_releases", {}),
        ("query", {"sql": "SELECT DISTINCT platform, app_version FROM daily_by_segment ORDER BY ALL"}),
    ]
    seen = set()
    for method, arguments in calls:
        observation = env.step(MetricTrackerRlAction(analysis_method=method, analysis_args=arguments))
        text = render_observation(observation)
        rows = next(value for value in read_observation(text).analysis_result.values() if isinstance(value, list))
        seen |= {row["app_version"] for row in rows}
        assert all(f'"{label}"' not in text for label in versions), method
    assert seen == set(versions) and all(isinstance(label, str) for label in seen)
