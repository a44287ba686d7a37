"""The shared model-facing layer: tools from the registry, tool calls <-> actions, observations as text."""

from __future__ import annotations

import copy
import json

from hypothesis import example, given, settings
from hypothesis import strategies as st
from text_reader import read_observation

from metric_tracker_rl import MetricSubmissionRow, MetricTrackerRlAction, PayloadGeneratorMethod
from metric_tracker_rl.analysis_tools import GENERATOR_NAMES, TOOL_REGISTRY
from metric_tracker_rl.catalog.published import ANOMALY_TYPES, DIFFICULTIES, ENTITY_NAMES
from metric_tracker_rl.checks.tool import DESCRIPTION_CHARS
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.observation import render_observation
from metric_tracker_rl.view.prompt import first_prompt
from metric_tracker_rl.view.render import rounded
from metric_tracker_rl.view.tool_schemas import (
    REPAIRED_VALUE,
    SUBMIT_GENERATORS,
    SUBMIT_REPORT,
    action_tool_call,
    asks_repaired_values,
    model_tools,
    openai_tools,
    reported_families,
    tool_action,
)

ROW = {
    "date": "2026-03-10",
    "entity_type": "conversion_rate",
    "entity_name": "app_open_to_menu_open",
    "anomaly_type": "rate_spike_from_median",
    "detection_method": "get_rate_spike_from_median_rows",
    "baseline_value": 0.5,
    "observed_value": 0.7,
    "delta_value": 0.2,
    "severity": "high",
}


def test_one_tool_per_offered_registry_tool_then_the_two_submissions() -> None:
    # Every tool not offered answers a question an offered one answers: the rate and count scans are
    # get_median_filter_rows on a metric selection, rows_for_date is show_raw_data, and so on.
    not_offered = {
        "list_dates",
        "list_entities",
        "rows_for_date",
        "get_metric_median",
        "preview_submission",
        "get_rate_drop_from_median_rows",
        "get_rate_spike_from_median_rows",
        "get_absolute_drop_in_event_count_rows",
        "get_absolute_spike_in_event_count_rows",
        "payload_generator",
    }
    # A tool only an unlisted tier offers (the warehouse's metrics layer while it is unlisted) joins the clients'
    # lists when that tier is listed.
    unlisted = {
        spec.name for spec in TOOL_REGISTRY.values() if spec.offered_at and not set(spec.offered_at) & set(DIFFICULTIES)
    }
    assert unlisted == (set() if "warehouse" in DIFFICULTIES else {"metrics_layer"})
    assert not_offered < set(TOOL_REGISTRY)
    names = [tool.name for tool in model_tools()]
    assert names == [
        *(name for name in TOOL_REGISTRY if name not in not_offered | unlisted),
        SUBMIT_REPORT,
        SUBMIT_GENERATORS,
    ]
    report = openai_tools()[-2]["function"]["parameters"]
    assert report["required"] == ["rows"] and "$defs" not in json.dumps(report) and "$ref" not in json.dumps(report)
    items = report["properties"]["rows"]["items"]
    row_schema = MetricSubmissionRow.model_json_schema()
    assert items["required"] == row_schema["required"] and list(items["properties"]) == list(row_schema["properties"])
    assert items["properties"]["anomaly_type"]["enum"] == row_schema["properties"]["anomaly_type"]["enum"]


def test_the_submission_tools_read_as_the_registry_tools_do() -> None:
    """The registry's tools are held to their text by the tool checker (metric_tracker_rl.checks); the two
    submission tools, in every tier's list, to the same."""
    low, high = DESCRIPTION_CHARS
    for tool in openai_tools()[-2:]:
        assert low <= len(tool["function"]["description"]) <= high
        assert tool["function"]["parameters"]["type"] == "object"
        for name, prop in tool["function"]["parameters"]["properties"].items():
            assert "anyOf" not in prop and "title" not in prop, (tool["function"]["name"], name)
    submission = {tool["function"]["name"]: tool for tool in openai_tools()[-2:]}
    for tier in DIFFICULTIES:  # the ones a tier offers (a raw-event tier: submit_report only) read as these
        offered = [tool for tool in openai_tools(tier) if tool["function"]["name"] in submission]
        assert offered, tier
        for tool in offered:
            function = tool["function"]
            assert low <= len(function["description"]) <= high, (tier, function["name"])
            properties = function["parameters"]["properties"].values()
            assert all("anyOf" not in prop and "title" not in prop for prop in properties), tier
            # A tier that offers every family reads the shared tool (less repaired_value, which only a tier that
            # asks it offers); one that offers some, its own texts and enums.
            shared = copy.deepcopy(submission[function["name"]])
            items = shared["function"]["parameters"]["properties"].get("rows", {}).get("items", {})
            if not asks_repaired_values(tier):
                items.get("properties", {}).pop(REPAIRED_VALUE, None)
            assert (tool == shared) == (reported_families(tier) == ANOMALY_TYPES), tier
            offers = REPAIRED_VALUE in json.dumps(function["parameters"])
            assert offers == (function["name"] == SUBMIT_REPORT and asks_repaired_values(tier)), tier


def test_registry_examples_round_trip() -> None:
    for name, spec in TOOL_REGISTRY.items():
        action = tool_action(name, json.dumps(spec.example))
        assert action == MetricTrackerRlAction(analysis_method=name, analysis_args=spec.example)
        assert action_tool_call(action) == (name, spec.example)


ENTITIES = [(kind, name) for kind, names in ENTITY_NAMES.items() for name in names]


@settings(deadline=None)
@given(
    rows=st.lists(
        st.sampled_from(ENTITIES).flatmap(
            lambda entity: st.builds(
                MetricSubmissionRow,
                date=st.just("2026-03-10"),
                entity_type=st.just(entity[0]),
                entity_name=st.just(entity[1]),
                baseline_value=st.floats(allow_nan=False, allow_infinity=False),
                observed_value=st.floats(allow_nan=False, allow_infinity=False),
                delta_value=st.floats(allow_nan=False, allow_infinity=False),
            )
        ),
        max_size=3,
    ),
    generators=st.lists(
        st.sampled_from(sorted(GENERATOR_NAMES)).flatmap(
            lambda name: (
                st.builds(PayloadGeneratorMethod, method_name=st.just(name), threshold=st.floats(0, 1e6))
                if name == "get_rows_with_abs_diff_from_median_gt"
                else st.builds(
                    PayloadGeneratorMethod,
                    method_name=st.just(name),
                    threshold_multiplier=st.none() | st.floats(0.5, 9.0),
                )
            )
        ),
        min_size=1,
        max_size=3,
    ),
)
@example(rows=[], generators=[PayloadGeneratorMethod(method_name="get_funnel_break_rows")])
def test_submissions_round_trip_through_json(
    rows: list[MetricSubmissionRow], generators: list[PayloadGeneratorMethod]
) -> None:
    for action in (MetricTrackerRlAction(classifications=rows), MetricTrackerRlAction(payload_generators=generators)):
        name, arguments = action_tool_call(action)
        assert tool_action(name, json.dumps(arguments)) == action
        assert tool_action(name, arguments) == action


@settings(deadline=None)
@given(
    name=st.sampled_from([SUBMIT_REPORT, SUBMIT_GENERATORS, "task_overview", "no_such_tool"]),
    text=st.text(max_size=40) | st.from_regex(r"\{\"(rows|generators)\": ?\[.{0,20}\]\}", fullmatch=True),
)
@example(name=SUBMIT_REPORT, text="{not json")
@example(name=SUBMIT_REPORT, text="[1, 2]")
@example(name=SUBMIT_REPORT, text='{"rows": [{"date": "2026-03-10"}]}')
@example(name=SUBMIT_GENERATORS, text='{"generators": []}')
def test_mistakes_come_back_as_readable_strings(name: str, text: str) -> None:
    outcome = tool_action(name, text)
    if isinstance(outcome, str):
        assert outcome.startswith("error: ")
        if name == "no_such_tool":
            assert "valid tools:" in outcome and SUBMIT_REPORT in outcome
        return
    # An action only for a call whose text is one JSON object that the tool's arguments accept: the action is
    # that call, and sending it back as a tool call gives the same arguments.
    assert name != "no_such_tool"
    arguments = json.loads(text or "{}")
    assert isinstance(arguments, dict)
    assert tool_action(*action_tool_call(outcome)) == outcome
    if name == "task_overview":
        assert outcome == MetricTrackerRlAction(analysis_method=name, analysis_args=arguments)


def test_known_mistakes_name_what_is_wrong() -> None:
    assert "not valid JSON" in tool_action(SUBMIT_REPORT, "{not json")
    assert "must be a JSON object" in tool_action("list_dates", "[]")
    invalid = tool_action(SUBMIT_REPORT, {"rows": [{"date": "2026-03-10"}]})
    assert "invalid rows" in invalid and "Nothing was submitted" in invalid and "entity_type" in invalid
    assert "extra" in tool_action(SUBMIT_REPORT, {"rows": [], "extra": 1})


def test_rendered_observations_read_back_as_what_they_show() -> None:
    env = MetricTrackerRlEnvironment()
    reset = env.reset(task_id="easy_two_spikes")
    brief = read_observation(first_prompt(reset))
    assert brief.status == "ready" and brief.brief["task_id"] == "easy_two_spikes" and brief.steps_remaining == 40
    assert brief.config["seed"] == reset.config["seed"] and brief.brief["window"]["days"] == 28
    # The bounds the objective calls published, and every family's root-cause keys and magnitudes.
    assert brief.brief["benign_fluctuations"]["count_incident_min_share"] == 0.28
    # On hard, demand swings overlap the count incidents' magnitudes: no gap is published there.
    hard = read_observation(first_prompt(env.reset(task_id="hard_mixed_multi"))).brief["benign_fluctuations"]
    assert "count_incident_min_share" not in hard and hard["demand_swing_share"] == [0.15, 0.4]
    env.reset(task_id="easy_two_spikes")
    assert {row["family"] for row in brief.brief["families"]} == {
        s["family"] for s in reset.available_synthetic_generator_methods
    }
    annotations = env.step(tool_action("get_annotations", {}))
    text = render_observation(annotations)
    assert not text.startswith("{") and "get_annotations ran" not in text  # no JSON wrapper, no echo
    seen_ok = read_observation(text)
    assert seen_ok.status == "ok" and seen_ok.steps_remaining == 39
    assert seen_ok.analysis_result == rounded(
        {k: v for k, v in annotations.analysis_result.items() if k not in ("method", "arguments")}
    )
    error = render_observation(
        env.step(tool_action("compare_rate_to_median", {"date": "1999-01-01", "entity_name": "x"}))
    )
    assert error.startswith("error: ") and "valid dates" in error and read_observation(error).status == "error"
    graded = read_observation(render_observation(env.step(tool_action(SUBMIT_REPORT, {"rows": [ROW]}))))
    assert graded.status == "graded" and graded.reward_breakdown.submitted_row_count == 1
    assert graded.expected_row_count == 2 and graded.submissions_remaining == 0 and graded.done


def test_a_long_result_pages_strongest_first_and_says_how_to_go_on() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(task_id="medium_mixed_three")
    first = env.step(tool_action("get_rows_with_abs_diff_from_median_gt", {"threshold": 0}))
    text = render_observation(first)
    total = first.analysis_result["row_count"]
    assert f"rows: 20 of {total} rows" in text and "next_offset: 20" in text
    second = read_observation(
        render_observation(
            env.step(tool_action("get_rows_with_abs_diff_from_median_gt", {"threshold": 0, "offset": 20, "limit": 5}))
        )
    )
    page = second.analysis_result
    assert page["offset"] == 20 and page["next_offset"] == 25 and len(page["rows"]) == 5
    assert "offset" not in read_observation(text).analysis_result  # the first page needs no offset line
