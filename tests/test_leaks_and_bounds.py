"""No label leaks through any response, no internals in error messages, and bounded work and results."""

from __future__ import annotations

import types
import typing
from collections import Counter
from collections.abc import Iterator
from itertools import product
from typing import Any

import pytest
from annotated_types import Ge, Gt, Le, Lt, MaxLen
from core_helpers import reset_episode
from pydantic import BaseModel
from reliability_support import INTERNALS, record

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.analysis_tools import MAX_RESULT_ROWS, TOOL_REGISTRY
from metric_tracker_rl.analysis_tools.arguments import WINDOW
from metric_tracker_rl.analysis_tools.tools.preview_submission import MAX_PREVIEW_ROWS
from metric_tracker_rl.catalog.published import (
    CONVERSION_METRIC_NAMES,
    COUNT_COLUMNS,
    DIFFICULTIES,
    fluctuation_bounds,
    row_key,
)
from metric_tracker_rl.models import MAX_GENERATOR_CALLS, MetricSubmissionRow, PayloadGeneratorMethod
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.report_step import MAX_SUBMISSION_ROWS

MAX_RESULT_BYTES = 256 * 1024  # documented bound on one serialized observation after a tool call
SWEEP = [
    {"task_id": "medium_mixed_three"},
    {"task_id": "hard_mixed_multi"},
    {"task_id": "frontier_segments"},
    {"seed": 7, "difficulty": "hard", "anomaly_count": 4},
    {"seed": 11, "difficulty": "medium"},
    {"seed": 12, "scenario_family": "funnel_break", "anomaly_count": 2},
    # a drawn incident count (5) and a Saturday shared by a count spike and a marketing campaign
    {"seed": 4, "difficulty": "hard"},
    # an incident over two dates, two timing shifts and a demand swing
    {"seed": 30001, "difficulty": "hard"},
]
# "magnitude" names a public reset setting; the fluctuation kinds name what the truth says about a date
LABEL_WORDS = ("expected_rows", "neutral_keys", "injections", "timing_shift", "demand_swing", "continues from")
COUNTS: Counter[str] = Counter()


def tool_calls() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every tool with many argument combinations, valid and invalid."""
    thresholds = (1e-9, 0.5, 3.0, 100.0)
    for tool, spec in TOOL_REGISTRY.items():
        fields = spec.args_model.model_fields
        yield tool, spec.example
        yield tool, {}
        yield tool, {"no_such_argument": 1}
        if "date" in fields:
            names = {"compare_rate_to_median": CONVERSION_METRIC_NAMES}.get(tool, COUNT_COLUMNS)
            for date in WINDOW:
                yield tool, {"date": date} if "entity_name" not in fields else {"date": date, "entity_name": names[0]}
            if "entity_name" in fields:
                for date, name in product(WINDOW[::5], names):
                    yield tool, {"date": date, "entity_name": name}
            yield tool, {"date": "2026-02-30"}
        if "threshold_multiplier" in fields:
            for threshold in thresholds:
                yield tool, {"threshold_multiplier": threshold}
            yield tool, {"threshold_multiplier": 0}
        if "threshold" in fields:
            for threshold in (0.0, 0.01, 100.0, 5000.0):
                yield tool, {"threshold": threshold}
        if "metric_name" in fields:
            yield tool, {"metric_name": "not_a_metric"}
        if "limit" in fields:
            yield tool, {"limit": 28}
            yield tool, {"limit": 0}


def injected_values(truth: Any) -> list[str]:
    """Strings only the labels hold: injection descriptions and the magnitudes' full-precision spellings."""
    values = [r.description for r in truth.injections] + [f.description for f in truth.fluctuations]
    values += [repr(float(r.magnitude)) for r in truth.injections if len(repr(float(r.magnitude))) > 6]
    return values


# The published bounds' names (the brief's benign_fluctuations, which the reset observation carries) spell part of
# a label: they are public vocabulary, not a label of this episode.
PUBLISHED_NAMES = tuple(
    sorted(
        {
            name
            for difficulty in DIFFICULTIES
            for name in fluctuation_bounds(difficulty)
            if any(word in name for word in LABEL_WORDS)
        },
        key=len,
        reverse=True,
    )
)


def assert_no_leak(text: str, truth: Any) -> None:
    for name in PUBLISHED_NAMES:
        text = text.replace(name, "")
    for word in LABEL_WORDS:
        assert word not in text, word
    for value in injected_values(truth):
        assert value not in text, value
    for expected in truth.expected_rows:
        assert row_key(expected.date, expected.entity_type, expected.entity_name) not in text
    for key in truth.neutral_keys:
        assert key not in text


def assert_clean_error(message: str) -> None:
    assert message
    assert not INTERNALS.search(message), message


@pytest.mark.parametrize("settings", SWEEP, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_no_response_leaks_labels_or_internals(settings: dict[str, Any]) -> None:
    truth = reset_episode(**settings).truth
    env = MetricTrackerRlEnvironment()
    reset = env.reset(**settings, max_steps=500, max_submissions=20)
    assert reset.status == "ready"
    assert_no_leak(reset.model_dump_json(), truth)
    steps_left = reset.steps_remaining
    for tool, args in tool_calls():
        if steps_left <= 2:  # the same episode again (more calls than one budget holds); two steps kept to submit
            steps_left = env.reset(**settings, max_steps=500, max_submissions=20).steps_remaining
        obs = env.step(MetricTrackerRlAction(analysis_method=tool, analysis_args=args))
        steps_left = obs.steps_remaining
        text = obs.model_dump_json()
        COUNTS["tool_calls"] += 1
        assert obs.debug is None
        assert_no_leak(text, truth)
        if obs.status == "error":
            COUNTS["tool_errors"] += 1
            assert_clean_error(obs.message)
        elif TOOL_REGISTRY[tool].kind == "analysis" and tool not in ("preview_submission", "payload_generator"):
            assert '"anomaly_type":"' not in text  # only generators propose typed rows
    # Graded feedback on an empty and on a wrong report names no expected date.
    for rows in (
        [],
        [
            MetricSubmissionRow(
                date=WINDOW[0],
                entity_type="event_count",
                entity_name="app_opens",
                anomaly_type="absolute_drop_in_event_count",
                detection_method="x",
                baseline_value=1.0,
                observed_value=0.0,
                delta_value=-1.0,
                severity="critical",
            )
        ],
    ):
        obs = env.step(MetricTrackerRlAction(classifications=rows))
        assert obs.status == "graded"
        text = obs.model_dump_json()
        assert_no_leak(text, truth)
        for expected in truth.expected_rows:
            assert expected.date not in text.replace(WINDOW[0], "") or expected.date == WINDOW[0]
    # Bad resets, submissions and state leave no internals in their messages either.
    for bad in ({"seed": -1}, {"task_id": "x"}, {"anomalies": [{"family": "nope", "date": "x"}]}):
        obs = env.reset(**bad)
        COUNTS["reset_errors"] += 1
        assert obs.status == "error"
        assert_clean_error(obs.message)
    obs = env.step(MetricTrackerRlAction(payload_generators=[{"method_name": "nope"}]))
    assert obs.status == "error"
    assert_clean_error(obs.message)
    assert_no_leak(env.state.model_dump_json(), truth)
    record("leak_sweep", {"episodes": len(SWEEP), **COUNTS})


def worst_case_arguments(tool: str) -> dict[str, Any]:
    """The largest result each tool can give: every metric, the smallest threshold, the longest listing."""
    fields = TOOL_REGISTRY[tool].args_model.model_fields
    args: dict[str, Any] = dict(TOOL_REGISTRY[tool].example)
    args.pop("metric_name", None)
    args.pop("metric_names", None)  # no selection means every metric the tool covers
    if "threshold_multiplier" in fields:
        args["threshold_multiplier"] = 1e-9
    if "threshold" in fields:
        args["threshold"] = 0.0
    if "limit" in fields:
        args["limit"] = next(c.le for c in fields["limit"].metadata if isinstance(c, Le))
    if tool == "payload_generator":
        generators = [n for n, s in TOOL_REGISTRY.items() if s.kind == "generator"]
        args["generator_methods"] = [
            {"method_name": generators[i % len(generators)], "threshold_multiplier": 1e-9}
            for i in range(MAX_GENERATOR_CALLS)
        ]
    if tool == "preview_submission":
        longest = {
            "date": "9" * 32,
            "entity_type": "conversion_rate",
            "entity_name": "n" * 128,
            "anomaly_type": "instrumentation_data_quality_issue",
            "detection_method": "m" * 128,
            "baseline_value": -1.2345678901234567e-300,
            "observed_value": 1.2345678901234567e300,
            "delta_value": 1.2345678901234567e300,
            "severity": "critical",
        }
        args["rows"] = [longest] * MAX_PREVIEW_ROWS
    return args


@pytest.mark.parametrize("tool", list(TOOL_REGISTRY))
def test_every_tool_result_is_capped_at_worst_case(tool: str) -> None:
    env = MetricTrackerRlEnvironment()
    answers_at = TOOL_REGISTRY[tool].answers_at
    if "hard" in answers_at:
        env.reset(task_id="hard_mixed_multi")
    elif "frontier" in answers_at:
        env.reset(task_id="frontier_segments")
    else:
        env.reset(difficulty=answers_at[0], seed=1)
    arguments = worst_case_arguments(tool)
    if tool == "compare_segments":  # the most segments: every version of every platform, on the latest date
        arguments.update(metric_name="app_opens", dimension="app_version", date="2026-04-26")
    obs = env.step(MetricTrackerRlAction(analysis_method=tool, analysis_args=arguments))
    assert obs.status == "ok", obs.message
    for value in obs.analysis_result.values():
        if isinstance(value, list):
            assert len(value) <= MAX_RESULT_ROWS
    size = len(obs.model_dump_json())
    assert size < MAX_RESULT_BYTES
    COUNTS["largest_result_bytes"] = max(COUNTS["largest_result_bytes"], size)
    record(
        "result_bounds", {"max_result_bytes": MAX_RESULT_BYTES, "largest_result_bytes": COUNTS["largest_result_bytes"]}
    )


def test_a_submission_over_the_row_cap_gets_a_clear_error() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(task_id="easy_two_spikes")
    row = MetricSubmissionRow(
        date=WINDOW[3],
        entity_type="event_count",
        entity_name="app_opens",
        anomaly_type="absolute_spike_in_event_count",
        detection_method="x",
        baseline_value=1.0,
        observed_value=2.0,
        delta_value=1.0,
        severity="critical",
    )
    obs = env.step(MetricTrackerRlAction(classifications=[row] * (MAX_SUBMISSION_ROWS + 1)))
    assert obs.status == "error" and f"at most {MAX_SUBMISSION_ROWS} rows" in obs.message
    assert env.state.submissions_used == 0
    repeated = env.step(MetricTrackerRlAction(classifications=[row] * MAX_SUBMISSION_ROWS))
    assert repeated.status == "error" and "repeats the key of row 0" in repeated.message
    assert env.state.submissions_used == 0
    assert env.step(MetricTrackerRlAction(classifications=[row])).status == "graded"


def _base_types(annotation: Any) -> set[Any]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return {t for arg in typing.get_args(annotation) for t in _base_types(arg)} - {type(None)}
    return {typing.get_origin(annotation) or annotation}


TOOL_ARGUMENT_MODELS = sorted({spec.args_model for spec in TOOL_REGISTRY.values()}, key=lambda m: m.__name__)
# The action's classifications are bounded elsewhere, with a clear error: the environment refuses more than
# MAX_SUBMISSION_ROWS rows without using a submission (and the message size bounds the list first).
# PayloadGeneratorMethod's numbers are validated again by the generator's own argument model.
WIRE_MODELS = [MetricTrackerRlAction, PayloadGeneratorMethod]
BOUNDED_ELSEWHERE = {("MetricTrackerRlAction", "classifications")}


@pytest.mark.parametrize("model", TOOL_ARGUMENT_MODELS + WIRE_MODELS, ids=lambda m: m.__name__)
def test_every_list_argument_has_a_max_length_and_every_number_bounds(model: type[BaseModel]) -> None:
    """Work per step is bounded structurally: tools are vectorised over the episode's fixed window, so their
    cost grows only with list arguments (capped) and loop-driving integers (bounded on both sides); tool
    numbers have a lower bound and reject NaN and infinities."""
    is_tool_model = model in TOOL_ARGUMENT_MODELS
    if is_tool_model:
        assert model.model_config.get("allow_inf_nan") is False
    for name, field in model.model_fields.items():
        kinds, constraints = _base_types(field.annotation), list(field.metadata)
        where = f"{model.__name__}.{name}"
        if list in kinds and (model.__name__, name) not in BOUNDED_ELSEWHERE:
            assert any(isinstance(c, MaxLen) for c in constraints), f"{where} needs max_length"
        if int in kinds:
            assert any(isinstance(c, (Ge, Gt)) for c in constraints), f"{where} needs a lower bound"
            assert any(isinstance(c, (Le, Lt)) for c in constraints), f"{where} needs an upper bound"
        if float in kinds and is_tool_model:
            assert any(isinstance(c, (Ge, Gt)) for c in constraints), f"{where} needs a lower bound"


def test_the_leak_check_catches_debug_output() -> None:
    """The checks above can fail: the debug payload (test-only) trips them."""
    settings = SWEEP[0]
    truth = reset_episode(**settings).truth
    obs = MetricTrackerRlEnvironment(debug=True).reset(**settings)
    with pytest.raises(AssertionError):
        assert_no_leak(obs.model_dump_json(), truth)
    for text in injected_values(truth):
        assert text in obs.model_dump_json()
