"""What a message may cost to read, in process: the structure check never parses, discounts strings, and each
client's budget is its own (the live attacks are tests/test_public_space.py)."""

from __future__ import annotations

import json

import pytest

from metric_tracker_rl.serving.message_cost import (
    MAX_JSON_DEPTH,
    MAX_JSON_ELEMENTS,
    PARSE_BUDGET_BURST_S,
    ParseBudget,
    parse_cost_s,
    structure_problem,
)

REPORT_ROW = {
    "date": "2026-03-10",
    "entity_type": "segment_conversion_rate",
    "entity_name": "visit_to_signup",
    "anomaly_type": "conversion_rate_drop_in_segment",
    "detection_method": "scan_segments",
    "baseline_value": 0.25,
    "observed_value": 0.12,
    "delta_value": -0.13,
    "severity": "high",
    "platform": "ios",
    "country": "DE",
    "app_version": "5.2",
    "channel": "paid",
    "user_type": "new",
}


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_full_report_is_within_the_limits_and_a_step_is_cheap_but_not_free(as_bytes: bool) -> None:
    text = json.dumps({"type": "step", "data": {"classifications": [REPORT_ROW] * 200}})
    message = text.encode() if as_bytes else text
    assert structure_problem(message) is None
    assert parse_cost_s(message) < PARSE_BUDGET_BURST_S  # sent at once, whatever the client sent before
    step = json.dumps({"type": "step", "data": {"analysis_method": "list_dates"}})
    assert 0 < parse_cost_s(step.encode() if as_bytes else step) < 1e-3


@pytest.mark.parametrize("as_bytes", [False, True])
def test_too_many_values_too_deep_and_too_long_numbers_are_named(as_bytes: bool) -> None:
    def check(text: str) -> str:
        problem = structure_problem(text.encode() if as_bytes else text)
        assert problem is not None
        return problem.message

    assert "too many JSON values" in check(json.dumps({"rows": [{}] * (MAX_JSON_ELEMENTS + 1)}))
    assert "nests too deeply" in check('{"x": ' + "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1) + "}")
    assert "digits" in check('{"seed": ' + "7" * 5000 + "}")


def test_commas_and_brackets_inside_strings_are_text() -> None:
    assert structure_problem(json.dumps({"sql": ",[{" * 100_000})) is None
    assert structure_problem(json.dumps({"sql": 'a\\",[' * 20_000})) is None  # escaped quotes stay inside


def test_a_client_in_debt_waits_and_another_does_not() -> None:
    budget = ParseBudget(rate=0.1, burst_s=PARSE_BUDGET_BURST_S)
    costly = parse_cost_s(json.dumps({"rows": [0] * MAX_JSON_ELEMENTS}))
    assert costly > 0
    for _ in range(int(PARSE_BUDGET_BURST_S / costly) + 3):
        budget.charge("attacker", costly)
    assert budget.delay_s("attacker") > 0
    assert budget.delay_s("victim") == 0
