"""The debugger's pure helpers, checked against real observations of an in-process environment."""

from __future__ import annotations

import base64
import json
import re
import struct
from types import SimpleNamespace
from xml.etree import ElementTree

import gradio as gr
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.catalog.published import (
    CONVERSION_METRIC_NAMES,
    COUNT_COLUMNS,
    RAW_EVENT_DIFFICULTIES,
    RESET_DIFFICULTIES,
)
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.models import MetricSubmissionRow
from metric_tracker_rl.serving.debugger import charts as drawing
from metric_tracker_rl.serving.debugger import forms, images, layout
from metric_tracker_rl.serving.debugger.page import DebuggerPage
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.reset_facts import instruction_for, tier_methods

TASK = "medium_mixed_three"


def run(env: MetricTrackerRlEnvironment, method: str, **arguments: object):
    observation = env.step(MetricTrackerRlAction(analysis_method=method, analysis_args=arguments))
    assert observation.status == "ok", observation.message
    return observation.analysis_result


@pytest.fixture(scope="module")
def debug_env() -> tuple[MetricTrackerRlEnvironment, object]:
    env = MetricTrackerRlEnvironment(debug=True)
    return env, env.reset(task_id=TASK)


@pytest.fixture(scope="module")
def charts() -> drawing.ChartData:
    """Chart data read with the same public tools the page uses."""
    env = MetricTrackerRlEnvironment()
    env.reset(task_id=TASK)
    daily = drawing.daily_frame(run(env, "show_raw_data", limit=28)["rows"])
    hourly = {d: run(env, "hourly_rows_for_date", date=d)["rows"] for d in daily["date"]}
    return drawing.ChartData(daily=daily, hourly=hourly, annotations=run(env, "get_annotations")["annotations"])


# --- reset controls -----------------------------------------------------------------------------------


def test_reset_kwargs_leaves_blank_fields_to_the_server() -> None:
    kwargs = forms.reset_kwargs(TASK, " ", forms.DEFAULT_CHOICE, None, "", None)
    assert kwargs == {"task_id": TASK}
    assert resolve_episode_config(**kwargs) == resolve_episode_config(task_id=TASK)


def test_reset_kwargs_parses_overrides_that_the_core_accepts() -> None:
    kwargs = forms.reset_kwargs(TASK, "17", "funnel_break", "medium", "0.2", " 2 ")
    assert kwargs == {
        "task_id": TASK,
        "seed": 17,
        "scenario_family": "funnel_break",
        "difficulty": "medium",
        "anomaly_density": 0.2,
        "anomaly_count": 2,
    }
    config = resolve_episode_config(**kwargs)
    assert (config.seed, config.scenario_family, config.anomaly_count) == (17, "funnel_break", 2)


@pytest.mark.parametrize(
    ("field", "args"),
    [("seed", ("x", None, None)), ("anomaly_count", (None, None, "1.5")), ("anomaly_density", (None, "lots", None))],
)
def test_reset_kwargs_names_the_field_of_a_bad_number(field: str, args: tuple) -> None:
    seed, density, count = args
    with pytest.raises(ValueError, match=field):
        forms.reset_kwargs(None, seed, None, None, density, count)


@pytest.mark.parametrize("difficulty", RESET_DIFFICULTIES)
def test_each_tiers_instruction_names_only_what_the_tier_has(difficulty: str) -> None:
    """The reset's instruction (the debugger's Episode tab shows it) names no tool the tier does not answer, and a
    tier of raw events names neither generator calls nor the count tiers' observation fields."""
    text = instruction_for(difficulty)
    answering = {method.name for method in tier_methods(difficulty)}
    named = {name for name in TOOL_REGISTRY if re.search(rf"\b{name}\b", text)}
    assert named <= answering, named - answering
    if difficulty in RAW_EVENT_DIFFICULTIES:
        assert not {"payload_generators", "available_methods", "get_annotations"} & set(re.findall(r"\w+", text))
        assert {"query", "metrics_layer"} <= named


@pytest.mark.parametrize(
    ("kwargs", "shown", "hidden"),
    [
        ({"difficulty": "audit", "seed": 3}, "difficulty=audit, anomaly_count=3 to 6 (drawn)", "anomaly_density"),
        ({"task_id": "warehouse_raw_events"}, "difficulty=warehouse, anomaly_count=4", "anomaly_density"),
        ({"task_id": TASK, "anomaly_density": 0.2}, "difficulty=medium, anomaly_count=6", "anomaly_density"),
    ],
)
def test_the_episode_line_shows_the_incident_count_as_the_tier_sets_it(kwargs: dict, shown: str, hidden: str) -> None:
    config = resolve_episode_config(**kwargs).public_dict()
    line = forms.episode_setting(config)
    assert shown in line and hidden not in line, line


@pytest.mark.parametrize("difficulty", RESET_DIFFICULTIES)
def test_the_cuboid_note_follows_the_tier(difficulty: str) -> None:
    """A tier of raw events has dimensions the cuboid chart cannot read: its note names them and the query tool,
    never that the episode has no dimensions."""
    config = resolve_episode_config(difficulty=difficulty, seed=1).public_dict()
    tab = SimpleNamespace(held_out=False, config=config, dimensions={})
    note = DebuggerPage.cuboid_note(tab)
    if difficulty in RAW_EVENT_DIFFICULTIES:
        assert "no dimensions" not in note and all(field in note for field in config["dimensions"])
        assert "query tool" in note
    elif not config.get("dimensions") and difficulty in ("easy", "medium", "hard"):
        assert note == layout.CUBOID_NOTE_FLAT


def test_status_markdown_shows_budgets_and_the_score() -> None:
    env = MetricTrackerRlEnvironment()
    ready = env.reset(task_id=TASK)
    text = forms.status_markdown(ready, ready.config)
    assert "task_id=medium_mixed_three" in text and "Steps left: 40" in text and "score" not in text
    graded = env.step(MetricTrackerRlAction(classifications=[]))
    text = forms.status_markdown(graded, ready.config)
    assert f"{graded.reward:.4f}" in text and "submissions left: 0" in text and "task_id=medium_mixed_three" in text


# --- tool forms ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TOOL_REGISTRY))
def test_prefilled_arguments_are_a_valid_call_and_help_lists_every_argument(name: str) -> None:
    spec = TOOL_REGISTRY[name]
    info = spec.info()
    spec.args_model.model_validate(forms.default_arguments(info))
    help_text = forms.describe_method(info)
    for argument in spec.args_model.model_fields:
        assert f"`{argument}`" in help_text


def test_prefill_takes_schema_defaults_and_the_example() -> None:
    assert forms.default_arguments(TOOL_REGISTRY["show_raw_data"].info()) == {"limit": 7, "offset": 0}
    assert forms.default_arguments(TOOL_REGISTRY["rows_for_date"].info()) == {"date": "2026-03-10"}
    assert "| `date` | string | yes |" in forms.describe_method(TOOL_REGISTRY["rows_for_date"].info())


def test_parse_arguments() -> None:
    assert forms.parse_arguments("  ") == {}
    assert forms.parse_arguments('{"limit": 3}') == {"limit": 3}
    with pytest.raises(ValueError, match="JSON object"):
        forms.parse_arguments("[1, 2]")
    with pytest.raises(ValueError, match="line 1, column 2"):
        forms.parse_arguments("{limit: 3")
    with pytest.raises(ValueError, match="line 3, column 1"):
        forms.parse_arguments('{\n  "limit": 3,\n}')


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
@example(429.84408455082803)
@example(0.0)
@example(-0.000123456789)
@example(12345.0)
@example(99.99999)
def test_shown_numbers_stay_far_inside_the_grading_tolerance(value: float) -> None:
    shown = forms.format_number(value)
    if value.is_integer():
        assert shown == value and isinstance(shown, int)
    else:
        assert abs(shown - value) <= max(5e-4 * abs(value), 0.05 if abs(value) >= 100 else 0.0)
        assert shown == (round(shown, 1) if abs(value) >= 100 else float(f"{shown:.4g}"))  # short to read
    assert forms.format_number("text") == "text" and forms.format_number(True) is True


def test_submit_label_reads_the_budget_from_the_observation() -> None:
    env = MetricTrackerRlEnvironment()
    observation = env.reset(task_id=TASK, max_submissions=3)
    left = observation.submissions_remaining
    assert forms.submit_label(observation) == f"Submit report (uses 1 of {left} graded submissions left)"
    for _ in range(left - 1):
        observation = env.step(MetricTrackerRlAction(classifications=[]))
    assert "only graded submission left and ends the episode" in forms.submit_label(observation)
    observation = env.step(MetricTrackerRlAction(classifications=[]))
    assert observation.done and "episode over" in forms.submit_label(observation)
    assert "episode over" in forms.submit_label(None)


def test_an_error_in_the_status_keeps_the_episode_lines() -> None:
    env = MetricTrackerRlEnvironment()
    observation = env.reset(task_id=TASK)
    status = forms.status_markdown(observation, observation.config, "the arguments are not valid JSON")
    assert status.startswith("**error** — the arguments are not valid JSON")
    assert f"task_id={TASK}" in status and "Steps left: " in status
    assert "press Reset" in forms.status_markdown(None, {})


def test_result_table_shapes_real_tool_results() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(task_id=TASK)
    suspicious = forms.result_table(run(env, "list_suspicious_dates", limit=4))
    assert len(suspicious) == 4
    assert {"date", "max_abs_robust_z", "hourly_mix", "hourly_mix_z"} <= set(suspicious.columns)
    one_day = forms.result_table(run(env, "rows_for_date", date="2026-03-10"))
    assert len(one_day) == 1 and one_day.loc[0, "date"] == "2026-03-10"
    medians = forms.result_table(run(env, "get_metric_median", metric_name="app_opens"))
    assert isinstance(json.loads(medians.loc[0, "median_by_weekday"]), dict)  # nested values become JSON text
    overview = forms.result_table(run(env, "task_overview"))
    assert list(overview.columns) == ["entity_type", "entity_names", "value"]  # what each entity's values mean
    assert "total-variation distance" in overview.set_index("entity_type").loc["hourly_mix", "value"]
    assert len(forms.result_table(run(env, "hourly_rows_for_date", date="2026-03-10"))) == 24
    assert forms.result_table(None).empty


# --- payload builder ----------------------------------------------------------------------------------


def test_generated_rows_round_trip_through_the_editable_table() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(task_id=TASK)
    generated = run(env, "get_median_filter_rows", threshold_multiplier=3.0)["rows"]
    assert generated
    table = forms.merge_rows(forms.empty_payload(), generated)
    assert list(table.columns) == list(forms.SUBMISSION_COLUMNS)
    rows = forms.rows_from_frame(table)
    assert [MetricSubmissionRow(**r).model_dump() for r in rows] == [
        MetricSubmissionRow(**{k: forms.format_number(v) for k, v in g.items()}).model_dump() for g in generated
    ]
    # The table shows rounded values; submitted, they grade exactly as the generator's own rows do.
    graded = []
    for report in (rows, generated):
        fresh = MetricTrackerRlEnvironment()
        fresh.reset(task_id=TASK)
        graded.append(fresh.step(MetricTrackerRlAction(classifications=report)).reward_breakdown)
    assert graded[0] == graded[1]
    again = forms.merge_rows(table, generated[:1] + [{**generated[0], "date": "2026-03-02"}])
    assert len(again) == len(generated) + (generated[0]["date"] != "2026-03-02")


def test_rows_from_frame_drops_blank_rows_and_parses_typed_numbers() -> None:
    frame = pd.DataFrame(
        [
            {c: "" for c in forms.SUBMISSION_COLUMNS},
            {
                "date": "2026-03-10",
                "entity_type": "event_count",
                "entity_name": "app_opens",
                "anomaly_type": "absolute_spike_in_event_count",
                "detection_method": "compare_count_to_median",
                "baseline_value": "100",
                "observed_value": "150.5",
                "delta_value": "oops",
                "severity": "high",
            },
        ]
    )
    (row,) = forms.rows_from_frame(frame)
    assert row["baseline_value"] == 100.0 and row["observed_value"] == 150.5
    assert row["delta_value"] == "oops"  # left for the server's validation to name
    assert forms.rows_from_frame(None) == [] and forms.rows_from_frame(forms.empty_payload()) == []


def test_breakdown_and_issue_tables_from_a_graded_submission() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(task_id=TASK)
    assert forms.breakdown_table(env.step(MetricTrackerRlAction(analysis_method="list_dates"))).empty
    row = {
        "date": "2026-03-10",
        "entity_type": "event_count",
        "entity_name": "app_opens",
        "anomaly_type": "absolute_spike_in_event_count",
        "detection_method": "compare_count_to_median",
        "baseline_value": 1.0,
        "observed_value": 2.0,
        "delta_value": 1.0,
        "severity": "low",
    }
    refused = env.step(MetricTrackerRlAction(classifications=[row, row]))
    assert refused.status == "error" and forms.breakdown_table(refused).empty
    issues = forms.issues_table(refused.submission_issues)
    assert list(issues["code"]) == ["duplicate_row"] and list(issues["row_index"]) == [1]
    graded = env.step(MetricTrackerRlAction(classifications=[row]))
    table = forms.breakdown_table(graded).set_index("component")["value"]
    assert table["score"] == forms.format_number(graded.reward)
    assert table["submitted_row_count"] == 1 and table["duplicate_row_count"] == 0
    env.reset(task_id=TASK, max_submissions=2)  # before the last submission: the score and the counts only
    coarse = forms.breakdown_table(env.step(MetricTrackerRlAction(classifications=[row]))).set_index("component")
    assert set(coarse.index) == {"score", "submitted_row_count", "matched_row_count", "false_positive_count"}
    assert forms.issues_table([]).empty


# --- chart data and figures ---------------------------------------------------------------------------


def test_marks_show_truth_only_with_a_debug_payload(debug_env, charts: drawing.ChartData) -> None:
    _, observation = debug_env
    public = drawing.marks_for(charts.annotations, None)
    assert public and not any(m.truth for m in public)
    assert {m.date for m in public} == {a["date"] for a in charts.annotations}
    with_truth = drawing.marks_for(charts.annotations, observation.debug)
    truth = {(m.date, m.entity_name, m.label) for m in with_truth if m.truth}
    assert truth == {(r["date"], r["entity_name"], r["anomaly_type"]) for r in observation.debug["expected_rows"]}
    assert drawing.expected_rows_table(None).empty
    assert len(drawing.expected_rows_table(observation.debug)) == len(observation.debug["expected_rows"])


def test_hourly_matrix_is_hour_by_date_shares(charts: drawing.ChartData) -> None:
    matrix = drawing.hourly_matrix(charts.hourly, "app_opens")
    assert matrix.shape == (24, 28) and list(matrix.columns) == charts.dates
    assert matrix.sum(axis=0).round(9).eq(1.0).all()
    counts = drawing.hourly_matrix(charts.hourly, "app_opens", normalise=False)
    assert counts.sum(axis=0).astype(int).tolist() == charts.daily["app_opens"].tolist()


def test_funnel_comparison_against_the_median_day(charts: drawing.ChartData) -> None:
    date = charts.dates[5]
    table = drawing.funnel_comparison(charts.daily, date)
    assert list(table["event"]) == list(COUNT_COLUMNS)
    assert table["date_share"].iloc[0] == 1.0 and table["median_share"].iloc[0] == 1.0
    assert table["median_count"].tolist() == charts.daily[list(COUNT_COLUMNS)].median().tolist()
    assert table["date_count"].tolist() == charts.daily.loc[5, list(COUNT_COLUMNS)].astype(float).tolist()
    assert drawing.funnel_comparison(charts.daily, "1999-01-01").empty


def parse(chart: str) -> ElementTree.Element:
    """A chart's HTML is well-formed XML (that is what the browser gets); parse it to read its parts."""
    return ElementTree.fromstring(chart)


def panels(chart: str) -> dict[str, ElementTree.Element]:
    return {svg.get("data-column"): svg for svg in parse(chart).iter("svg")}


def marks(svg: ElementTree.Element) -> list[ElementTree.Element]:
    return [g for g in svg.iter() if g.tag == "g" and "mark" in (g.get("class") or "").split()]


def label_texts(svg: ElementTree.Element) -> list[str]:
    return [t.text for t in svg.iter() if t.tag == "text" and t.get("class") == "mark-label"]


def test_count_chart_marks_and_labels_each_expected_row_on_its_own_panel(debug_env, charts: drawing.ChartData) -> None:
    _, observation = debug_env
    public = panels(drawing.daily_counts_svg(charts, drawing.marks_for(charts.annotations, None), 3))
    assert set(public) == set(COUNT_COLUMNS)
    kinds = sorted(a["kind"] for a in charts.annotations)
    for svg in public.values():
        assert sorted(label_texts(svg)) == kinds  # every calendar note is labelled on every panel
        assert len([c for c in svg.iter() if c.tag == "circle"]) == 28

    debug = panels(drawing.daily_counts_svg(charts, drawing.marks_for(charts.annotations, observation.debug), 3))
    expected = [r for r in observation.debug["expected_rows"] if r["entity_name"] in COUNT_COLUMNS]
    for column, svg in debug.items():
        truth = [g for g in marks(svg) if "truth" in g.get("class")]
        assert sorted(g.get("data-date") for g in truth) == sorted(
            r["date"] for r in expected if r["entity_name"] == column
        )
        assert len(marks(svg)) == len(charts.annotations) + len(truth)


def test_rate_heatmap_and_funnel_charts(charts: drawing.ChartData) -> None:
    notes = drawing.marks_for(charts.annotations, None)
    rates = drawing.conversion_svg(charts, notes, 7)
    assert set(panels(rates)) == set(CONVERSION_METRIC_NAMES) and parse(rates).get("data-reset") == "7"
    heatmap = parse(drawing.hourly_heatmap_svg(charts, "orders_placed", notes, 7))
    (svg,) = [e for e in heatmap.iter() if e.tag == "svg"]
    (cells,) = [e for e in svg if e.tag == "image"]
    png = base64.b64decode(cells.get("href").removeprefix("data:image/png;base64,"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (28, 24)  # date x hour
    assert sorted(label_texts(svg)) == sorted(a["kind"] for a in charts.annotations)
    noted = charts.annotations[0]["date"]
    funnel = parse(drawing.funnel_svg(charts, noted, notes, 7))
    bars = [r for r in funnel.iter() if r.tag == "rect" and r.get("class") == "bar"]
    assert len(bars) == 2 * len(COUNT_COLUMNS)
    assert any(charts.annotations[0]["kind"] in text for text in label_texts(funnel))
    quiet = next(d for d in charts.dates if d not in {a["date"] for a in charts.annotations})
    assert label_texts(parse(drawing.funnel_svg(charts, quiet, notes, 7))) == []


def test_favicon_is_an_icon_file() -> None:
    icon = images.favicon_ico()
    (count,) = struct.unpack("<H", icon[4:6])
    width, height, *_, size, offset = struct.unpack("<BBBBHHII", icon[6:22])
    assert icon[:4] == b"\x00\x00\x01\x00" and count == 1 and (width, height) == (32, 32)
    assert icon[offset : offset + 8] == b"\x89PNG\r\n\x1a\n" and offset + size == len(icon)


@pytest.mark.parametrize("secret", ["", "kept-by-the-server"])
def test_the_comparison_table_lists_each_row_and_each_missed_incident_only_in_open_mode(secret: str) -> None:
    env = MetricTrackerRlEnvironment(held_out_secret=secret)
    env.reset(task_id="medium_mixed_three")
    rows = run(env, "get_median_filter_rows")["rows"]
    assert forms.comparison_table(env.step(MetricTrackerRlAction(analysis_method="list_dates"))).empty
    graded = env.step(MetricTrackerRlAction(classifications=rows))
    table = forms.comparison_table(graded)
    if secret:
        assert table.empty
        return
    verdicts = table[table["row"] != "missed"]
    assert list(verdicts["row"]) == [str(i) for i in range(len(rows))]
    assert list(verdicts["date"]) == [row["date"] for row in rows]
    assert (verdicts["verdict"] == "matched").sum() == graded.reward_breakdown.matched_row_count
    missed = table[table["row"] == "missed"]
    assert len(missed) == graded.expected_row_count - graded.reward_breakdown.matched_row_count >= 1
    assert all(verdict.startswith("missed: ") for verdict in missed["verdict"])


def test_the_preview_status_says_how_many_rows_are_valid() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(task_id="medium_mixed_three")
    rows = run(env, "get_median_filter_rows")["rows"][:13]
    rows.append({**rows[0], "date": "2026-01-01"})
    before = env.step(MetricTrackerRlAction(analysis_method="list_dates"))
    preview = env.step(MetricTrackerRlAction(analysis_method="preview_submission", analysis_args={"rows": rows}))
    status = forms.status_markdown(preview, {})
    assert "13 row(s) valid of 14, 1 issue(s); used a step, no submission." in status
    assert preview.steps_remaining == before.steps_remaining - 1
    assert preview.submissions_remaining == before.submissions_remaining
    assert "valid of" not in forms.status_markdown(env.step(MetricTrackerRlAction(analysis_method="list_dates")), {})


@pytest.mark.parametrize(("difficulty", "days"), [("easy", 28), ("frontier", 56)])
def test_the_charts_read_the_whole_window(difficulty: str, days: int) -> None:
    """Eight weeks at frontier take two pages of show_raw_data; the charts read both, and every day's hours."""
    env = MetricTrackerRlEnvironment()
    env.reset(seed=11, difficulty=difficulty, max_steps=500)
    data = drawing.read_chart_data(env.step)
    assert len(data.dates) == days == len(set(data.dates)) and sorted(data.dates) == data.dates
    assert set(data.hourly) == set(data.dates) and all(len(rows) == 24 for rows in data.hourly.values())
    assert drawing.daily_counts_svg(data, [], 1).count("<svg") >= 1


@pytest.mark.parametrize("difficulty", ["medium", *RAW_EVENT_DIFFICULTIES])
def test_the_payload_tab_shows_a_generator_picker_only_where_the_tier_has_generators(difficulty: str) -> None:
    """A reset shows the generator picker, its arguments and "Add generated rows" where the tier's reset lists
    generators, and hides them where it lists none (the tiers of raw events)."""
    observation = MetricTrackerRlEnvironment().reset(difficulty=difficulty, seed=3)
    current = SimpleNamespace(methods={method.name: method.model_dump() for method in observation.available_methods})
    with gr.Blocks():
        page = DebuggerPage("test", None)
    updates = page.reset_tools(current)
    generators = any(method["kind"] == "generator" for method in current.methods.values())
    assert generators == (difficulty not in RAW_EVENT_DIFFICULTIES)
    for part in (page.payload.generator_name, page.payload.generator_args, page.payload.generate_button):
        assert updates[part]["visible"] is generators


def test_the_count_charts_say_where_their_numbers_come_from(charts: drawing.ChartData) -> None:
    """A tier of counts charts its own counts; charts of the dashboard's numbers (a tier of raw events, data
    defects included) say so in their titles."""
    marks = drawing.marks_for(charts.annotations, None)
    dashboard = drawing.ChartData(daily=charts.daily, annotations=charts.annotations, dashboard=True)
    date = charts.dates[-1]
    for draw in (
        lambda data: drawing.daily_counts_svg(data, marks, 1),
        lambda data: drawing.conversion_svg(data, marks, 1),
        lambda data: drawing.funnel_svg(data, date, marks, 1),
    ):
        assert "dashboard" not in draw(charts) and "on the dashboard, as recorded (data defects included)" in draw(
            dashboard
        )
