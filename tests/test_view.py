"""The text a model reads: it reads back as what it shows, its numbers grade like full-precision ones, and the
reference agents decide from it alone."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from core_helpers import draws_family, reset_episode
from hypothesis import example, given, settings
from hypothesis import strategies as st
from text_reader import ViewParseError, parse, read_observation

from metric_tracker_rl.adapters.session import Step
from metric_tracker_rl.adapters.transcript import CUT_CELL, TaskRun, cut_results, unseen_submitted_rows
from metric_tracker_rl.agents import Agent, make_agent, run_episode
from metric_tracker_rl.agents.recording import record_episode
from metric_tracker_rl.catalog.published import AGGREGATE_DIFFICULTIES, ANOMALY_TYPES, COUNT_DIFFICULTIES, DIFFICULTIES
from metric_tracker_rl.grading.grader import grade_submission
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.cells import CUT_MARK
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.view.render import _float_text, _number_text, render, round_number, rounded

keys = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True)
numbers = st.integers(-(10**9), 10**9) | st.floats(allow_nan=False, allow_infinity=False, width=64)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
scalars = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3), max_leaves=12
)
rows = st.lists(
    st.dictionaries(st.sampled_from(["date", "entity_name", "value", "note", "flag"]), scalars, min_size=1),
    min_size=1,
    max_size=6,
)
documents = st.dictionaries(keys, json_values | rows, max_size=6)


@settings(max_examples=100, deadline=None)
@given(document=documents)
@example(document={"rows": [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}]})  # a column shared by every row
@example(document={"rows": [{"a": "x | y", "b": '"quoted"'}, {"a": "", "b": None}]})  # separators in cells
@example(document={"rows": [{"a": 1}, {"b": 2}]})  # rows with different columns
@example(document={"rows": [{"a": 1, "b": "x"}, {"b": "y", "a": 2}]})  # the same columns in another order
@example(document={"n": "12", "t": "true", "z": "null", "s": " padded ", "r": "3 rows", "e": "", "l": "[1]"})
@example(document={"nested": {"deeper": {"x": 0.000012345, "y": 123456.7, "z": -0.0}}, "empty": {}, "none": []})
@example(document={"rows": [{"a": 1}, {"a": 1}]})  # every column shared
def test_text_reads_back_as_the_value_it_shows(document: dict) -> None:
    assert parse(render(document)) == rounded(document)


@settings(max_examples=300, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
@example(value=999.95)
@example(value=0.000123456)
@example(value=-41234.5)
def test_numbers_keep_four_significant_digits(value: float) -> None:
    shown = round_number(value)
    assert abs(shown - value) <= 5e-4 * abs(value) + 0.5 * (abs(value) >= 1000)
    assert parse(render({"x": value}))["x"] == rounded(value)


@settings(max_examples=500, deadline=None)
@given(value=st.floats(width=64))
@example(value=999.95)
@example(value=999.9499999999999)
@example(value=1e-4)
@example(value=0.000099995)
@example(value=-0.0)
@example(value=5e-324)
def test_the_fast_float_text_is_the_general_rule(value: float) -> None:
    """Table cells format floats in one step where that gives the text of the general rule (round, then write
    the shortest text); every float, at any magnitude, reads the same either way."""
    assert _float_text(value) == _number_text(value)
    assert render({"x": value}) == f"x: {_number_text(value)}"


@pytest.mark.parametrize("text", ["no key here", "rows: 2 rows\n  a\n  1", "a: 1\n    b: 2"])
def test_text_render_did_not_write_is_refused(text: str) -> None:
    with pytest.raises(ViewParseError):
        parse(text)


def _config(family: str, difficulty: str, seed: int) -> dict:
    return {"seed": seed, "difficulty": difficulty, "scenario_family": family}


# The listed tiers whose data are counts, which the rows' text reads (a raw-event tier has tests of its own).
COUNT_TIERS = tuple(d for d in DIFFICULTIES if d in COUNT_DIFFICULTIES)
FAMILY_AND_DIFFICULTY = st.sampled_from([(f, d) for d in COUNT_TIERS for f in ANOMALY_TYPES if draws_family(d, f)])


@settings(max_examples=60, deadline=None)
@given(family_and_difficulty=FAMILY_AND_DIFFICULTY, seed=st.integers(0, 10**6))
@example(family_and_difficulty=("hourly_traffic_mix_shift", "hard"), seed=0)
@example(family_and_difficulty=("instrumentation_data_quality_issue", "easy"), seed=1)
def test_rows_copied_from_the_text_grade_as_full_precision_rows(
    family_and_difficulty: tuple[str, str], seed: int
) -> None:
    """Every family's expected rows, shown as a model reads them and copied back, earn the full score: the text's
    four significant digits stay inside the grader's 2% tolerance."""
    family, difficulty = family_and_difficulty
    episode = reset_episode(**_config(family, difficulty, seed))
    truth = episode.truth
    shown = parse(render({"rows": [row.model_dump() for row in truth.expected_rows]}))
    copied = [MetricSubmissionRow(**row) for row in shown.get("rows", [])]
    segments = episode.public.segment_values()
    full = grade_submission(
        list(truth.expected_rows),
        truth.expected_rows,
        truth.neutral_keys,
        episode.public.dates,
        segment_values=segments,
    )
    from_text = grade_submission(
        copied, truth.expected_rows, truth.neutral_keys, episode.public.dates, segment_values=segments
    )
    assert from_text.score == full.score == 1.0
    for original, copy in zip(truth.expected_rows, copied, strict=True):
        for field in ("baseline_value", "observed_value", "delta_value"):
            assert math.isclose(getattr(copy, field), getattr(original, field), rel_tol=5e-4, abs_tol=1e-12)


RECORDING_AGENTS = ("expert", "scripted", "readme_baseline")


class TextRecordingAgent(Agent):
    """A reference agent that keeps every observation it is handed."""

    def __init__(self, agent_name: str) -> None:
        self.agent, self.handed = make_agent(agent_name), []

    def begin(self, observation: SeenObservation) -> None:
        self.handed.append(observation)
        self.agent.begin(observation)

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        self.handed.append(observation)
        return self.agent.act(observation)


@pytest.mark.parametrize("agent_name", RECORDING_AGENTS)
def test_an_agent_is_handed_only_the_texts_of_its_record(agent_name: str) -> None:
    """Every observation an agent decides from is what the record's text reads back as: the brief (to begin and
    to act), then each tool result in order (the last one too, unless it ended the episode)."""
    env = MetricTrackerRlEnvironment()
    for index in range(6):
        agent, run = TextRecordingAgent(agent_name), TaskRun(agent_name)
        run_episode(
            agent,
            lambda **kw: run.reset(env, **kw),  # noqa: B023
            lambda action: run.act(env, action),  # noqa: B023
            seed=700 + index,
            difficulty=DIFFICULTIES[index % 3],
        )
        brief, *results = [m["content"] for m in run.messages if m["role"] in ("user", "tool")]
        texts = [observation.text for observation in agent.handed]
        assert texts == [brief, brief, *results][: len(texts)] and len(texts) >= len(results) + 1
        assert agent.handed == [read_observation(text) for text in texts]


# The reference agents read the aggregate tiers; the edit loop plays the first, the sweeps of the others are slow.
SWEPT_TIERS = [
    pytest.param(difficulty, marks=() if index == 0 else pytest.mark.slow)
    for index, difficulty in enumerate(AGGREGATE_DIFFICULTIES)
]


@pytest.mark.parametrize("difficulty", SWEPT_TIERS)
def test_the_scripted_agents_records_show_every_number_it_submits(difficulty: str) -> None:
    env = MetricTrackerRlEnvironment()
    for seed in range(90_000, 90_030):
        run = record_episode(make_agent("scripted"), env, {"seed": seed, "difficulty": difficulty})
        assert cut_results(run) == 0
        assert unseen_submitted_rows(run) == []


@pytest.mark.parametrize("difficulty", SWEPT_TIERS)
def test_the_experts_records_show_every_number_it_submits(difficulty: str) -> None:
    """30 fresh seeds per difficulty: no result cut, every submitted row's key and numbers in an earlier tool
    result, and the record fits the context targets (median <= 28,000 characters, max <= 36,000: the brief publishes
    each family's definition and detection methods)."""
    env = MetricTrackerRlEnvironment()
    sizes, scores = [], []
    for seed in range(90_000, 90_030):
        run = record_episode(make_agent("expert"), env, {"seed": seed, "difficulty": difficulty})
        assert cut_results(run) == 0
        assert unseen_submitted_rows(run) == []
        sizes.append(sum(len(m["content"]) + len(json.dumps(m.get("tool_calls") or "")) for m in run.messages))
        scores.append(run.score)
    assert sorted(sizes)[len(sizes) // 2] <= 28_000 and max(sizes) <= 36_000
    assert sum(scores) / len(scores) >= 0.95


def test_the_unseen_row_check_can_fail() -> None:
    run = record_episode(make_agent("expert"), MetricTrackerRlEnvironment(), {"seed": 3, "difficulty": "hard"})
    submission = next(
        call for m in run.messages for call in m.get("tool_calls") or [] if call["function"]["name"] == "submit_report"
    )
    row = submission["function"]["arguments"]["rows"][0]
    row["observed_value"] = row["observed_value"] * 1.01
    assert unseen_submitted_rows(run) == [row]


@settings(max_examples=100, deadline=None)
@given(table=rows, constant=st.sampled_from(["date", "entity_name", "value", "note", "flag"]), fill=scalars)
@example(table=[{"value": False}, {"value": 0}], constant="date", fill=None)  # equal in Python, not in the text
def test_only_declared_columns_are_stated_once(table: list[dict], constant: str, fill: Any) -> None:
    """A declared constant column moves to `same:` and reads back; a column that only happens to hold one value
    stays a column (the header of a tool's table must not depend on the page)."""
    declared = [{**row, constant: fill} for row in table]
    text = render({"rows": declared}, shared={"rows": frozenset({constant})})
    assert text.split("\n")[1].startswith("  same: ") and constant not in text.split("\n")[2].split(" | ")
    assert parse(text) == rounded({"rows": declared})
    header = render({"rows": declared}).split("\n")[1]
    assert "same:" not in header and constant in header.strip().split(" | ")
    if len(table) > 1 and len({json.dumps(row.get("value")) for row in table}) > 1:
        with pytest.raises(ValueError, match="declared constant but vary"):
            render({"rows": table}, shared={"rows": frozenset({"value"})})


def test_a_cut_result_is_one_the_record_did_not_page_on() -> None:
    """A page that shows part of a table counts as cut unless a later call reads on from a further offset."""

    def run_of(*calls: tuple[int, int, str]) -> TaskRun:
        run = TaskRun("pages")
        for number, offset, sql in calls:
            arguments = {"sql": sql, "limit": 100, **({"offset": offset} if offset else {})}
            call_id = f"call_{number}"
            run.messages += [
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"id": call_id, "type": "function", "function": {"name": "query", "arguments": arguments}}
                    ],
                },
                {"role": "tool", "tool_call_id": call_id, "name": "query", "content": "(a page)"},
            ]
            shown = [{"x": i} for i in range(offset, min(offset + 100, 109))]
            result = {"method": "query", "arguments": arguments, "row_count": 109, "offset": offset, "rows": shown}
            run.results[call_id] = Step(MetricTrackerRlObservation(status="ok", analysis_result=result), 0.0, False)
        return run

    assert cut_results(run_of((1, 0, "SELECT 1"))) == 1
    assert cut_results(run_of((1, 0, "SELECT 1"), (2, 100, "SELECT 1"))) == 0
    assert cut_results(run_of((1, 0, "SELECT 1"), (2, 100, "SELECT 2"))) == 1  # the next page of another query
    assert cut_results(run_of((2, 100, "SELECT 1"))) == 0  # the last page ends the table


def test_a_result_with_a_text_cell_cut_short_counts_as_cut() -> None:
    """The query tool cuts a long text cell at its limit and says so; a model never reads the rest."""
    env = MetricTrackerRlEnvironment()
    run = TaskRun("long text")
    run.reset(env, difficulty="deep", seed=0)
    long = "SELECT string_agg(CAST(date AS VARCHAR), ', ') t FROM daily_by_segment WHERE platform = 'web'"
    run.act(env, MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": long}))
    assert CUT_CELL.search(run.messages[-1]["content"]) and CUT_CELL.fullmatch(CUT_MARK.format(length=219))
    assert cut_results(run) == 1
    short = "SELECT string_agg(DISTINCT platform, ', ') t FROM daily_by_segment"
    run.act(env, MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": short}))
    assert cut_results(run) == 1  # a short cell is shown whole
