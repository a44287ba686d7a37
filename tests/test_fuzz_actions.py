"""Hypothesis on the action models and every tool's arguments, in process.

Any JSON-like input either fails `MetricTrackerRlAction.model_validate` (the server answers VALIDATION_ERROR)
or is a valid action, and for valid actions `MetricTrackerRlEnvironment.step` never raises: every agent
mistake comes back as an error observation with a message.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from reliability_support import record

from metric_tracker_rl import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.analysis_tools import MAX_RESULT_ROWS, TOOL_REGISTRY
from metric_tracker_rl.analysis_tools.arguments import WINDOW
from metric_tracker_rl.analysis_tools.tools import LISTING
from metric_tracker_rl.catalog.published import ANOMALY_TYPES, CONVERSION_METRIC_NAMES, COUNT_COLUMNS, ENTITY_NAMES
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

EXAMPLES = 60
OUTCOMES: Counter[str] = Counter()
METRICS = COUNT_COLUMNS + CONVERSION_METRIC_NAMES

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.text(max_size=20)
    | st.floats(allow_nan=True, allow_infinity=True)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
numbers = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(10**6), 10**6)
    | st.sampled_from([1e-12, 0.001, 0.5, 1, 3.0, 100, 101, 10**9])
)
names = st.sampled_from(METRICS + tuple(n for group in ENTITY_NAMES.values() for n in group)) | st.text(max_size=30)


def row_values() -> st.SearchStrategy[dict[str, Any]]:
    """Rows that are often valid and often subtly wrong."""
    fields = {
        "date": st.sampled_from(WINDOW) | st.text(max_size=12),
        "entity_type": st.sampled_from(tuple(ENTITY_NAMES)) | st.text(max_size=12),
        "entity_name": names,
        "anomaly_type": st.sampled_from(ANOMALY_TYPES) | st.text(max_size=12),
        "detection_method": st.sampled_from(tuple(TOOL_REGISTRY)) | st.text(max_size=12),
        "baseline_value": numbers,
        "observed_value": numbers,
        "delta_value": numbers,
        "severity": st.sampled_from(["low", "medium", "high", "critical", "HIGH", ""]),
    }
    return st.fixed_dictionaries({}, optional={**fields, "extra": json_values})


def generator_calls() -> st.SearchStrategy[dict[str, Any]]:
    generators = tuple(n for n, s in TOOL_REGISTRY.items() if s.kind == "generator")
    return st.fixed_dictionaries(
        {"method_name": st.sampled_from(generators) | st.text(max_size=20)},
        optional={"metric_name": names, "metric_names": st.lists(names, max_size=6), "threshold_multiplier": numbers},
    )


# SQL as a model might write it, right or wrong, hostile or broken, and arbitrary text.
SQL_WORDS = (
    "SELECT",
    "*",
    "FROM",
    "daily",
    "hourly",
    "annotations",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "weekday",
    "date",
    "hour",
    "app_opens",
    "count(*)",
    "avg(orders_placed)",
    ">",
    "=",
    "1",
    "'2026-03-10'",
    ",",
    ";",
    "(",
    ")",
    "'",
    '"',
    "--",
    "/*",
    "*/",
    "LIMIT 3",
    "UNION ALL",
    "JOIN",
    "ON",
    "DROP TABLE daily",
    "read_csv('/etc/passwd')",
    "range(100000000)",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n FROM r)",
)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "sql": st.lists(st.sampled_from(SQL_WORDS), max_size=14).map(" ".join) | st.text(max_size=80),
    "date": st.sampled_from(WINDOW) | st.text(max_size=12),
    "entity_name": names,
    "metric_name": names,
    "metric_names": st.lists(names, max_size=40),
    "threshold_multiplier": numbers,
    "threshold": numbers,
    "limit": st.integers(-5, 40),
    "offset": st.integers(-5, 40),
    "rows": st.lists(row_values(), max_size=6),
    "generator_methods": st.lists(generator_calls(), max_size=5),
    "dimension": st.sampled_from(
        ["platform", "country", "app_version", "country,channel", "user_type,user_type", "platform,country,channel"]
    )
    | st.text(max_size=8),
    # A cuboid to drill into: valid pairs, a version without its platform, unknown fields and values, junk.
    "within": st.sampled_from(
        [
            "",
            "platform=ios",
            "platform=ios,user_type=new",
            "app_version=6.20.0",
            "channel=tv",
            "region=EU",
            "platform",
            "platform=ios,platform=web",
        ]
    )
    | st.text(max_size=12),
    # A segment scope below frontier (this fuzz runs on hard) must be refused as an error, never raise.
    "platform": st.sampled_from(["ios", "android", "web"]) | st.text(max_size=8),
    "country": st.sampled_from(["US", "IN"]) | st.text(max_size=8),
    "app_version": st.sampled_from(["web", "6.31.0"]) | st.text(max_size=8),
    "channel": st.sampled_from(["organic", "paid_social"]) | st.text(max_size=8),
    "user_type": st.sampled_from(["new", "returning"]) | st.text(max_size=8),
    # A context table below deep must be refused as an error too.
    "table": st.sampled_from(["experiments", "releases", "partner_status"]) | st.text(max_size=8),
}


def field_values(tool: str, field: str) -> st.SearchStrategy[Any]:
    """A field's values above; a field no strategy names yet (a new tool's) gets its example's value and text."""
    if field in FIELD_VALUES:
        return FIELD_VALUES[field]
    example = TOOL_REGISTRY[tool].example
    return (st.just(example[field]) if field in example else st.nothing()) | st.text(max_size=12)


def tool_arguments(tool: str) -> st.SearchStrategy[Any]:
    """Arguments built from the tool's own fields (valid values mixed with junk), plus arbitrary JSON."""
    fields = list(TOOL_REGISTRY[tool].args_model.model_fields)
    known = st.fixed_dictionaries({}, optional={f: field_values(tool, f) | json_values for f in fields})
    keys = st.sampled_from(fields) | st.text(max_size=8) if fields else st.text(max_size=8)
    return known | st.dictionaries(keys, json_values, max_size=4) | json_values


def test_every_built_in_tool_field_has_a_fuzz_strategy() -> None:
    fields = {f for name in LISTING for f in TOOL_REGISTRY[name].args_model.model_fields}
    assert fields <= set(FIELD_VALUES)


@pytest.fixture(scope="module")
def env() -> Iterator[MetricTrackerRlEnvironment]:
    environment = MetricTrackerRlEnvironment()
    environment.reset(task_id="hard_mixed_multi", max_steps=500, max_submissions=20)
    yield environment
    record("in_process_action_fuzz", dict(OUTCOMES))


def checked_step(env: MetricTrackerRlEnvironment, raw: Any) -> None:
    """Validate a raw action like the server does, step it, and check the observation is a clear answer."""
    OUTCOMES["inputs"] += 1
    try:
        action = MetricTrackerRlAction.model_validate(raw)
    except ValidationError as exc:
        assert exc.errors(), raw
        OUTCOMES["validation_errors"] += 1
        return
    if env.state.done:
        env.reset(task_id="hard_mixed_multi", max_steps=500, max_submissions=20)
    obs = env.step(action)  # must not raise
    OUTCOMES[f"status_{obs.status}"] += 1
    assert obs.status in {"ok", "graded", "error"}
    assert obs.message
    assert obs.debug is None
    if obs.status == "error":
        assert obs.reward == 0.0
    if obs.analysis_result is not None:
        json.dumps(obs.analysis_result, allow_nan=False)  # plain, finite JSON
        assert len(obs.analysis_result.get("rows", [])) <= MAX_RESULT_ROWS
    obs.model_dump_json()


actions = (
    st.fixed_dictionaries(
        {},
        optional={
            "analysis_method": st.sampled_from(tuple(TOOL_REGISTRY)) | st.text(max_size=20) | json_values,
            "analysis_args": json_values,
            "classifications": st.lists(row_values(), max_size=4) | json_values,
            "payload_generators": st.lists(generator_calls(), max_size=4) | json_values,
            "metadata": json_values,
        },
    )
    | st.dictionaries(st.text(max_size=20), json_values, max_size=4)
    | json_values
)


@pytest.mark.slow
@given(raw=actions)
@settings(max_examples=4 * EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_action_validates_or_is_rejected_and_step_never_raises(env: MetricTrackerRlEnvironment, raw: Any) -> None:
    checked_step(env, raw)


@pytest.mark.slow
@pytest.mark.parametrize("tool", list(TOOL_REGISTRY))
def test_fuzzed_tool_arguments_never_raise(env: MetricTrackerRlEnvironment, tool: str) -> None:
    @given(args=tool_arguments(tool))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(args: Any) -> None:
        checked_step(env, {"analysis_method": tool, "analysis_args": args})

    run()


WRONG_TYPE_ROW = {
    "date": WINDOW[0],
    "entity_type": "conversion_rate",
    "entity_name": "app_opens",
    "anomaly_type": ANOMALY_TYPES[0],
    "detection_method": "get_median_filter_rows",
    "baseline_value": 1.0,
    "observed_value": 2.0,
    "delta_value": 1.0,
    "severity": "high",
}


def test_a_row_whose_entity_is_not_of_its_type_is_refused_with_the_valid_names() -> None:
    with pytest.raises(ValidationError) as caught:
        MetricSubmissionRow.model_validate(WRONG_TYPE_ROW)
    message = str(caught.value)
    assert "'app_opens' is not valid for entity_type 'conversion_rate'" in message
    assert all(name in message for name in ENTITY_NAMES["conversion_rate"])
    assert MetricSubmissionRow.model_validate({**WRONG_TYPE_ROW, "entity_type": "event_count"})


@given(rows=st.lists(row_values(), max_size=8))
@example(rows=[WRONG_TYPE_ROW])  # once accepted by the row model, then refused by the environment
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_submissions_are_graded_or_rejected(env: MetricTrackerRlEnvironment, rows: list[Any]) -> None:
    checked_step(env, {"classifications": rows})
    valid = []
    for raw in rows:
        with contextlib.suppress(ValidationError):
            valid.append(MetricSubmissionRow.model_validate(raw))
    # Rows that validate one by one make a gradable submission once their dates are in the episode's window (the
    # one thing a row cannot know) and their keys distinct.
    window, keys = set(WINDOW), set()
    gradable = [
        row
        for row in valid
        if row.date in window
        and (key := (row.date, row.entity_type, row.entity_name)) not in keys
        and not keys.add(key)
    ]
    if gradable:
        if env.state.done:
            env.reset(task_id="hard_mixed_multi", max_steps=500, max_submissions=20)
        assert env.step(MetricTrackerRlAction(classifications=gradable)).status == "graded"


def test_deep_nesting_inside_arguments_does_not_raise(env: MetricTrackerRlEnvironment) -> None:
    nested: Any = 1
    for _ in range(300):
        nested = {"k": [nested]}
    for tool in ("preview_submission", "payload_generator", "get_median_filter_rows"):
        for args in ({"rows": [nested]}, {"generator_methods": [nested]}, nested):
            checked_step(env, {"analysis_method": tool, "analysis_args": args})
