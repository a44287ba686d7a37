"""What a model reads at every tier is what the grader expects: each fact-stating line of the brief, the system
prompt and the tool descriptions, checked against the episode's truth over a few seeds (the incident count and what
it counts, a null episode's right report, where a data defect's trace may be, which tier a tool description names).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from text_reader import read_observation

from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.catalog.published import (
    BASELINE_RULE,
    DEFECTS_NOT_COUNTED,
    FAMILY_ENTITY_TYPE,
    VERSION_PEERS,
)
from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.catalog.shown_config import incident_line, shown_config
from metric_tracker_rl.catalog.task_splits import NULL_EVERY, calibration_reset_kwargs, null_offset, task_range
from metric_tracker_rl.catalog.tasks import EpisodeConfig, resolve_episode_config
from metric_tracker_rl.catalog.tiers import DEEP_MIX, EVENTS, TIERS, WAREHOUSE_DEFECTS
from metric_tracker_rl.generation.audit.truth import audit_rows
from metric_tracker_rl.generation.audit.world import audit_mix, build_audit_world
from metric_tracker_rl.generation.defects import DEFECT_REGISTRY
from metric_tracker_rl.generation.kinds import KIND_FAMILY
from metric_tracker_rl.generation.segment_plan import segmented_plan
from metric_tracker_rl.generation.segmented import FALLBACK_KIND
from metric_tracker_rl.generation.warehouse.events import draw_event_log
from metric_tracker_rl.generation.warehouse.truth import DATA_QUALITY, ExpectedRow, expected_rows, incident_rows
from metric_tracker_rl.generation.warehouse.world import DEFECT_COUNT, WarehouseWorld, build_warehouse_world
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.serving.debugger.forms import status_markdown
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.columns import Labels, Nested
from metric_tracker_rl.view.observation import render_observation
from metric_tracker_rl.view.prompt import first_prompt, system_prompt
from metric_tracker_rl.view.tool_schemas import openai_tools
from metric_tracker_rl.world.audit_brief import AUDIT_FAMILIES, FINDINGS_RULE, NOT_UNIFORM, SEGMENT_RULE, departs
from metric_tracker_rl.world.daily_panel import peer_median, same_weekday_peers
from metric_tracker_rl.world.metrics_layer import counted_sessions, dashboard, segment_metric
from metric_tracker_rl.world.segments import world_of
from metric_tracker_rl.world.warehouse_brief import (
    BENIGN_CHANGES,
    COMPUTED_TABLES,
    DEFECT_FAMILY,
    DEFECT_REPORTING,
    QUERY_CREDIT,
    TRACE_RULE,
    TRACE_TABLES,
    UNIFORM_MOVE,
    WAREHOUSE_INCIDENT_FAMILIES,
)

RAW_EVENT_TIERS = tuple(name for name, tier in TIERS.items() if tier.data == EVENTS)
EMPTY_IS_RIGHT = re.compile(r"right report is empty|submit an empty report", re.IGNORECASE)


# --- the tool descriptions ---------------------------------------------------------------------------------------


def _descriptions(node: Any) -> Iterator[str]:
    """Every description a tool schema holds: the tool's and each argument's, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield value
            else:
                yield from _descriptions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _descriptions(item)


def _tiers_named(text: str) -> set[str]:
    return {name for name in TIERS if re.search(rf"\b{name}\b", text, re.IGNORECASE)}


def test_every_tool_description_a_tier_offers_names_only_tiers_that_serve_it_as_written() -> None:
    """A description that names a tier (the metrics layer's once began "Warehouse:" at the audit) names the tier
    reading it and only tiers that offer the same text."""
    offered = {tier: {tool["function"]["name"]: tool["function"] for tool in openai_tools(tier)} for tier in TIERS}
    for tier, tools in offered.items():
        for name, function in tools.items():
            for text in _descriptions(function):
                named = _tiers_named(text)
                serving = {
                    other for other, theirs in offered.items() if name in theirs and text in _descriptions(theirs[name])
                }
                assert not named or (tier in named and named <= serving), (tier, name, text)


# --- a null episode's right report ------------------------------------------------------------------------------

NULL_BLOCKS = (0, 1)  # the first two blocks of NULL_EVERY calibration seeds, each holding one null episode


def _null_episode(tier: str, block: int) -> tuple[str, dict[str, Any], float]:
    """A null calibration task's text (system prompt and brief), its brief, and the score of an empty report."""
    reset = calibration_reset_kwargs(tier, null_offset(tier, block))
    assert reset.get("scenario_family") == "null", reset
    session = EpisodeSession(MetricTrackerRlEnvironment())
    seen = session.reset(**reset)
    session.call("submit_report", {"rows": []})
    return f"{system_prompt(tier)}\n{seen.text}", read_observation(seen.text).brief, session.score


@pytest.mark.slow
@pytest.mark.parametrize("block", NULL_BLOCKS)
@pytest.mark.parametrize("tier", list(TIERS))
def test_wherever_the_text_calls_the_empty_report_right_it_scores_one(tier: str, block: int) -> None:
    """Every tier's null tasks: where a line calls the empty report right (the tiers of counts), it scores 1.0;
    where the data are raw events no line does (an episode's data defects are still there to report, and no line
    at these rungs names an episode's answer), the empty report scores 0, and the incidents line is the tier's
    rule, data defects not counted."""
    text, brief, score = _null_episode(tier, block)
    if TIERS[tier].data == EVENTS:
        assert not EMPTY_IS_RIGHT.search(text) and score == 0.0
        assert brief["incidents"] == incident_line({"difficulty": tier}) and DEFECTS_NOT_COUNTED in brief["incidents"]
    else:
        assert EMPTY_IS_RIGHT.search(brief["incidents"]) and score == 1.0


# --- a null episode reads as every other one where the data are raw events --------------------------------------

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _everything_read_before_submitting(tier: str, offset: int) -> str:
    """What a model, or a client over the wire, can read of a calibration episode before it submits: the system
    prompt, the tool list, the reset's text and observation as sent, /state, the task_overview tool's answer and
    the debugger's episode line; its seed and episode id masked (every episode differs in those)."""
    reset = calibration_reset_kwargs(tier, offset)
    env = MetricTrackerRlEnvironment()
    observation = env.reset(**reset)
    texts = [
        system_prompt(tier),
        json.dumps(openai_tools(tier)),
        render_observation(observation),
        observation.model_dump_json(),
        env.state.model_dump_json(),
        status_markdown(observation, observation.config),
        env.step(MetricTrackerRlAction(analysis_method="task_overview")).model_dump_json(),
    ]
    return UUID.sub("<id>", "\n".join(texts).replace(str(reset["seed"]), "<seed>"))


@pytest.mark.slow
@pytest.mark.parametrize("tier", RAW_EVENT_TIERS)
def test_a_null_episode_reads_as_every_other_episode_of_a_tier_of_raw_events(tier: str) -> None:
    """At the warehouse and the audit no line names an episode's answer: a null episode (no business incident)
    shows the same text as the episode before it, but for its seed and id, and no setting that says null."""
    null = null_offset(tier, 0)
    other = null - 1 if null % NULL_EVERY else null + 1
    assert calibration_reset_kwargs(tier, null)["scenario_family"] == "null"
    assert "scenario_family" not in calibration_reset_kwargs(tier, other)
    null_text = _everything_read_before_submitting(tier, null)
    assert null_text == _everything_read_before_submitting(tier, other)
    observation = MetricTrackerRlEnvironment().reset(**calibration_reset_kwargs(tier, null))
    assert not {"scenario_family", "anomaly_count", "anomaly_count_range"} & set(observation.config)
    assert observation.config["standard"] and "no business incident in this episode" not in null_text


# --- what the incidents line counts ------------------------------------------------------------------------------

FIRST_NULL = -1  # stands for the tier's first null episode (null_offset), wherever its draw put it
COUNT_OFFSETS = (0, 1, 2, FIRST_NULL)
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


def _world_and_rows(tier: str, offset: int) -> tuple[EpisodeConfig, WarehouseWorld, list[ExpectedRow]]:
    reset = calibration_reset_kwargs(tier, null_offset(tier, 0) if offset == FIRST_NULL else offset)
    config = resolve_episode_config(**reset)
    if TIERS[tier].hides_mechanisms:
        world = build_audit_world(TIERS[tier], config)
        return config, world, audit_rows(world, audit_mix(TIERS[tier]))
    world = build_warehouse_world(TIERS[tier], config)
    return config, world, expected_rows(world)


@pytest.mark.slow
@pytest.mark.parametrize("offset", COUNT_OFFSETS)
@pytest.mark.parametrize("tier", RAW_EVENT_TIERS)
def test_the_incidents_line_counts_business_incidents_and_their_rows_as_it_says(tier: str, offset: int) -> None:
    """The line is the tier's rule, the same in every episode of it: none in a null episode, else the drawn range,
    of business incidents (each injected incident, a second one too), never its data defects; at the warehouse
    every date of an incident whose metric has a value there is a row, at the audit the dates that are findings (an
    incident row departs from its baseline past the margin)."""
    config, world, rows = _world_and_rows(tier, offset)
    line = incident_line(shown_config(config))
    low, high = TIERS[tier].count_range or (0, 0)
    incidents = [i for i in world.incidents if i.record.continues is None]
    assert line == incident_line({"difficulty": tier}) and DEFECTS_NOT_COUNTED in line and world.defects
    assert line.startswith(f"between {low} and {high} business incidents,") and "none in a null episode" in line
    if config.scenario_family == "null":
        assert not incidents and not [r for r in rows if r.family != DATA_QUALITY]
    else:
        assert low <= len(incidents) <= high
    if not TIERS[tier].hides_mechanisms:  # the warehouse states its defects' count: "two or three" of them
        low, high = DEFECT_COUNT
        assert f"holds {NUMBER_WORDS[low]} or {NUMBER_WORDS[high]} defects" in DEFECT_REPORTING
        assert len(world.defects) <= high and {d.kind for d in world.defects} == {
            r.kind for r in rows if r.family == DATA_QUALITY
        }
    every_date = incident_rows(world, counted_sessions(world.log), change_points=not TIERS[tier].hides_mechanisms)
    reported = {(r.kind, r.day) for r in rows if r.family != DATA_QUALITY}
    if TIERS[tier].hides_mechanisms:
        assert reported == {(r.kind, r.day) for r in every_date if departs(r.observed, r.baseline)}
    else:
        valued = {(r.kind, r.day) for r in every_date if np.isfinite(r.observed) and np.isfinite(r.baseline)}
        assert (
            reported
            == valued
            == {(i.kind, i.record.day) for i in world.incidents}
            - {(r.kind, r.day) for r in every_date if (r.kind, r.day) not in valued}
        )


@pytest.mark.parametrize("tier", RAW_EVENT_TIERS)
def test_the_null_share_the_incidents_line_states_is_the_splits(tier: str) -> None:
    """ "one in NULL_EVERY eval calibration tasks, no train task": counted over both splits."""
    assert f"one in {NULL_EVERY} eval calibration tasks, no train task" in incident_line({"difficulty": tier})
    sweep = [task for task in task_range("eval") if task.get("difficulty") == tier and "seed" in task]
    nulls = [task for task in sweep if task.get("scenario_family") == "null"]
    assert sweep and len(nulls) * NULL_EVERY == len(sweep)
    assert not [task for task in task_range("train") if "scenario_family" in task]


# --- where a data defect's trace may be ------------------------------------------------------------------------


def _same_column(a: Any, b: Any) -> bool:
    if isinstance(a, Nested) or isinstance(b, Nested):
        return isinstance(a, Nested) and isinstance(b, Nested) and a.array.equals(b.array)
    if isinstance(a, Labels) or isinstance(b, Labels):
        return (
            isinstance(a, Labels)
            and isinstance(b, Labels)
            and len(a) == len(b)
            and np.array_equal(np.asarray(a.values, dtype=object)[a.codes], np.asarray(b.values, dtype=object)[b.codes])
        )
    left, right = np.asarray(a), np.asarray(b)
    if left.shape != right.shape:
        return False
    return bool(np.array_equal(left, right, equal_nan=left.dtype.kind == "f"))


@pytest.fixture(scope="module")
def drawn_logs() -> dict[int, Any]:
    logs = {}
    for seed in (11, 12):
        key = EpisodeKey.of(seed)
        logs[seed] = draw_event_log(segmented_plan(key, 56, world_of(DEEP_MIX.dimensions)), key)
    return logs


@pytest.mark.slow
def test_every_defect_mechanism_changes_only_the_tables_the_trace_rule_names(drawn_logs: dict[int, Any]) -> None:
    """Each registered mechanism (the audit's, the warehouse's among them), edited into a drawn log, changes no
    table of the export but those the system prompt names; together they change every one it names (so the rule
    names no table for nothing). The context tables, releases and standing lists are drawn before any defect."""
    assert set(WAREHOUSE_DEFECTS) <= set(DEFECT_REGISTRY)
    changed_by: dict[str, set[str]] = {}
    for seed, log in drawn_logs.items():
        clean = log.sql_tables()
        for index, name in enumerate(DEFECT_REGISTRY):
            edited, _ = DEFECT_REGISTRY[name].apply(log, derive_rng(EpisodeKey.of(seed), "trace-rule", index))
            tables = edited.sql_tables()
            assert set(tables) == set(clean)
            changed_by.setdefault(name, set()).update(
                table
                for table in clean
                if set(clean[table]) != set(tables[table])
                or not all(_same_column(clean[table][c], tables[table][c]) for c in clean[table])
            )
    outside = {name: tables - set(TRACE_TABLES) for name, tables in changed_by.items() if tables - set(TRACE_TABLES)}
    assert not outside
    assert set().union(*changed_by.values()) == set(TRACE_TABLES)
    assert all(changed_by.values()), [name for name, tables in changed_by.items() if not tables]
    for tier in RAW_EVENT_TIERS:
        prompt = " ".join(system_prompt(tier).split())
        assert TRACE_RULE in prompt and all(table in prompt for table in (*TRACE_TABLES, *COMPUTED_TABLES))
        assert "trace in the raw events or the tracking changelog" not in prompt


@pytest.mark.slow
def test_the_brief_and_prompt_at_a_tier_of_raw_events_call_no_report_right_by_itself() -> None:
    """The objective and the system prompt at the warehouse and the audit: no sentence says an episode holds no
    incident at all (they hold data defects), only that some hold no business incident."""
    for tier in RAW_EVENT_TIERS:
        env = MetricTrackerRlEnvironment()
        try:
            observation = env.reset(**calibration_reset_kwargs(tier, null_offset(tier, 0)))
        finally:
            env.close()
        assert observation.objective is not None
        assert "no business incident" in observation.objective
        assert "contain no incident" not in observation.objective
        assert json.dumps(observation.objective).count("empty report") == 0


# --- which segment a defect's row names ----------------------------------------------------------------------------

DASHBOARD_FIELDS = ("platform", "app_version", "country")


def _dashboard_rows(board: Any) -> dict[tuple[Any, ...], tuple[float, ...]]:
    keys = [board["date"].tolist()]
    for name in DASHBOARD_FIELDS:
        column = board[name]
        keys.append([column.values[code] for code in column.codes])
    numbers = [
        np.asarray(column, dtype=float)
        for name, column in board.items()
        if not isinstance(column, Labels) and name != "date"
    ]
    return {key: tuple(n[i] for n in numbers) for i, key in enumerate(zip(*keys, strict=True))}


@pytest.mark.slow
def test_every_defects_segment_holds_every_dashboard_row_it_changes_and_names_a_version_with_its_platform(
    drawn_logs: dict[int, Any],
) -> None:
    """The segment rule, as the truth's records hold it: each field the segment names is one every changed row of
    the dashboard shares (the segment is never narrower than the change), and a version comes with its platform."""
    for seed, log in drawn_logs.items():
        clean = _dashboard_rows(dashboard(log))
        width = len(next(iter(clean.values())))
        for index, name in enumerate(DEFECT_REGISTRY):
            edited, record = DEFECT_REGISTRY[name].apply(log, derive_rng(EpisodeKey.of(seed), "segment-rule", index))
            after = _dashboard_rows(dashboard(edited))
            changed = [
                key
                for key in set(clean) | set(after)
                if not np.allclose(clean.get(key, (0.0,) * width), after.get(key, (0.0,) * width), equal_nan=True)
            ]
            named = record.segment.normalised().named()
            assert changed, name
            for position, field in enumerate(DASHBOARD_FIELDS, start=1):
                if field in named:
                    assert {key[position] for key in changed} == {named[field]}, (name, field)
            assert "app_version" not in named or "platform" in named, name
    assert SEGMENT_RULE in FINDINGS_RULE


# --- a version's baseline -----------------------------------------------------------------------------------------


def _rule_baseline(values: list[float], day: int) -> float:
    """The baseline rule, word for word: the median of the other same-weekday dates' values, a date without a value
    skipped (a count of 0 is a value), the mean of the middle two of an even number; none without a peer."""
    peers = sorted(v for d, v in enumerate(values) if d % 7 == day % 7 and d != day and not np.isnan(v))
    if not peers:
        return float("nan")
    middle = len(peers) // 2
    return peers[middle] if len(peers) % 2 else (peers[middle - 1] + peers[middle]) / 2


SERIES = st.lists(st.one_of(st.just(0.0), st.just(float("nan")), st.floats(0, 1e6)), min_size=56, max_size=56)


@settings(max_examples=60, deadline=None)
@given(values=SERIES, day=st.integers(0, 55))
def test_the_baseline_the_truth_computes_is_the_published_rule_word_for_word(values: list[float], day: int) -> None:
    """Every same-weekday date is a peer whatever the traffic on it (a version's zero counts before its rollout and
    small ones after its replacement included); only a date without a value is skipped."""
    expected = _rule_baseline(values, day)
    got = float(peer_median(np.asarray(values), same_weekday_peers(len(values)))[day])
    assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert VERSION_PEERS in BASELINE_RULE and "real traffic" not in BASELINE_RULE


@pytest.mark.slow
def test_every_audit_rows_baseline_takes_its_peers_before_a_rollout_and_after_a_replacement() -> None:
    """An audit defect row's baseline, recomputed by the rule from the dashboard over every date of the window (a
    version's dates before its rollout, with counts 0, among them); some of the rows are on a version."""
    on_a_version = 0
    for offset in (0, 1, 2, 3):
        _, world, rows = _world_and_rows("audit", offset)
        for row in (r for r in rows if r.family == DATA_QUALITY):
            series = [segment_metric(world.dashboard, row.segment, row.metric, d) for d in range(world.log.num_days)]
            assert row.baseline == pytest.approx(_rule_baseline(series, row.day), rel=1e-9), row
            on_a_version += row.segment.app_version is not None
    assert on_a_version


# --- a count incident and a benign change of demand or mix ------------------------------------------------------

UNIFORM_KINDS = ("mix_shift", "segment_demand_swing")  # the benign changes of a segment's sessions the tiers draw
COUNT_FAMILIES = ("absolute_drop_in_event_count", "absolute_spike_in_event_count")


def _share_traffic(a: Any, b: Any) -> bool:
    named_a, named_b = a.normalised().named(), b.normalised().named()
    return all(named_a[field] == named_b[field] for field in set(named_a) & set(named_b))


@pytest.mark.slow
@pytest.mark.parametrize("tier", RAW_EVENT_TIERS)
def test_a_benign_change_of_demand_or_mix_is_never_a_row_and_a_count_incident_always_is(tier: str) -> None:
    """Each benign change of demand or mix moves a whole platform or country (as benign_fluctuations says) and no
    expected row of sessions shares its date and traffic; each count incident has a row (at the audit every one of
    them departs on some date), on a date no such change holds."""
    drawn = counted = 0
    for offset in COUNT_OFFSETS:
        _, world, rows = _world_and_rows(tier, offset)
        counts = [r for r in rows if r.family in COUNT_FAMILIES]
        for change in (f for f in world.fluctuations if f.kind in UNIFORM_KINDS):
            drawn += 1
            assert list(change.segment.named()) in (["platform"], ["country"]), change
            assert not [r for r in counts if r.day == change.day and _share_traffic(r.segment, change.segment)]
        for incident in (i for i in world.incidents if i.record.family in COUNT_FAMILIES):
            counted += 1
            assert [r for r in counts if r.kind == incident.kind and r.segment == incident.segment.normalised()]
    assert drawn and counted
    assert UNIFORM_MOVE in BENIGN_CHANGES and all(NOT_UNIFORM in f["definition"] for f in AUDIT_FAMILIES[:2])


# --- the budgets and the window a brief states ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("tier", list(TIERS))
def test_the_budgets_and_window_each_brief_states_are_the_episodes(tier: str) -> None:
    """steps_remaining, submissions_remaining, max_steps and the window as every tier's brief states them: the
    tier's step and submission budgets, and as many dates as the tier's window, the truth's rows among them."""
    env = MetricTrackerRlEnvironment()
    try:
        observation = env.reset(**calibration_reset_kwargs(tier, 0))
        seen = read_observation(first_prompt(observation))
        truth = env._episode.truth  # noqa: SLF001 (the truth, to check the published window)
    finally:
        env.close()
    brief = seen.brief
    assert seen.steps_remaining == TIERS[tier].max_steps == brief["config"].get("max_steps", TIERS[tier].max_steps)
    assert seen.submissions_remaining == TIERS[tier].max_submissions
    window = brief["window"]
    assert window["days"] == TIERS[tier].window_days
    assert all(window["first_date"] <= row.date <= window["last_date"] for row in truth.expected_rows)


# --- what the grading rule, the instruction and the report tool say of a report ----------------------------------


def _reset(tier: str, offset: int = 0) -> tuple[MetricTrackerRlEnvironment, MetricTrackerRlObservation]:
    env = MetricTrackerRlEnvironment()
    return env, env.reset(**calibration_reset_kwargs(tier, offset))


def _brief(observation: MetricTrackerRlObservation) -> dict[str, Any]:
    """The brief as a model reads it from its first prompt."""
    return read_observation(first_prompt(observation)).brief


def _expected_rows(env: MetricTrackerRlEnvironment) -> list[MetricSubmissionRow]:
    return list(env._episode.truth.expected_rows)  # noqa: SLF001 (the truth, to submit what the grader expects)


FALSE_POSITIVES = re.compile(r"false_positives = every other row[^.]*\.")


@pytest.mark.parametrize("tier", RAW_EVENT_TIERS)
def test_a_repeated_key_or_an_invalid_row_is_refused_before_grading_as_the_grading_rule_says(tier: str) -> None:
    """No row the grading rule counts as a false positive is one the environment never grades: a report that
    repeats a key, or holds a row invalid without the truth, is refused before grading, using no submission, and
    the rule says so."""
    env, observation = _reset(tier)
    grading = _brief(observation)["segments"]["grading"]
    row = _expected_rows(env)[0]
    invalid = row.model_copy(update={"date": "1999-01-01"})
    for rows, said in (([row, row], "repeats the key of row 0"), ([invalid], "1999-01-01")):
        answer = env.step(MetricTrackerRlAction(classifications=rows))
        assert said in answer.message and "no submission used" in answer.message, answer.message
        assert answer.reward_breakdown is None and not answer.done
        assert answer.submissions_remaining == TIERS[tier].max_submissions
    clause = FALSE_POSITIVES.search(grading)
    assert clause is not None and "duplicate" not in clause.group(0) and "invalid" not in clause.group(0)
    assert "a key repeated is refused before grading, using no submission" in grading


REPORT_RULES = re.compile(r"the brief's (?:(\w+), )?(\w+) and (\w+) \(under segments\)")


@pytest.mark.parametrize("tier", RAW_EVENT_TIERS)
def test_the_instruction_points_at_the_briefs_own_rules_of_a_row(tier: str) -> None:
    """The reset's instruction (the debugger's Episode tab shows it) names the brief's entries that say how a row is
    reported, and they are there; it asks one row per date, as they and the truth do (no two expected rows share a
    key, and a finding of several dates has a row on each)."""
    env, observation = _reset(tier)
    segments = _brief(observation)["segments"]
    named = REPORT_RULES.search(observation.instruction)
    assert named is not None and set(named.groups()) - {None} <= set(segments), observation.instruction
    assert "report format" not in observation.instruction and "one row per date" in observation.instruction
    assert any("one row per" in segments[name] for name in named.groups() if name is not None)
    keys = [(row.date, row.entity_type, row.entity_name) for row in _expected_rows(env)]
    assert len(keys) == len(set(keys))


def _report_tool(tier: str) -> dict[str, Any]:
    [tool] = [tool["function"] for tool in openai_tools(tier) if tool["function"]["name"] == "submit_report"]
    return tool


@pytest.mark.slow
@pytest.mark.parametrize("tier", RAW_EVENT_TIERS)
def test_the_report_tool_offers_the_tiers_own_families_and_says_what_a_row_is(tier: str) -> None:
    """submit_report's enums at a tier of raw events are the families its brief lists and the data defects' (every
    family its kinds and the truth's rows name, over a few episodes), with their entity types; its texts speak of
    one row per date of a finding, never of rows copied from tool results."""
    tool = _report_tool(tier)
    rows = tool["parameters"]["properties"]["rows"]
    fields = rows["items"]["properties"]
    offered = set(fields["anomaly_type"]["enum"])
    _, observation = _reset(tier)
    assert offered == {family["family"] for family in _brief(observation)["families"]} | {DEFECT_FAMILY}
    assert set(fields["entity_type"]["enum"]) == {FAMILY_ENTITY_TYPE[family] for family in offered}
    kinds = {KIND_FAMILY[kind] for kind in (*TIERS[tier].incident_kinds, FALLBACK_KIND)}
    assert kinds <= offered
    if not TIERS[tier].hides_mechanisms:
        assert kinds == set(WAREHOUSE_INCIDENT_FAMILIES)
    for offset in COUNT_OFFSETS:
        truth = _world_and_rows(tier, offset)[2]
        assert {DEFECT_FAMILY if row.family == DATA_QUALITY else row.family for row in truth} <= offered
    for text in (tool["description"], rows["description"]):
        assert "one row per date of each finding" in text.lower() and "incident and date" not in text
        assert "copied from tool results" not in text


@pytest.mark.parametrize("tier", RAW_EVENT_TIERS)
def test_the_query_method_earns_its_credit_once_a_query_ran_as_the_brief_says(tier: str) -> None:
    """The truth's own rows, method query, submitted before any query ran earn no method credit, and after one
    query all of it: the brief's grading rule and the report tool's method say so."""
    accuracy = []
    for queried in (False, True):
        env, observation = _reset(tier)
        grading = _brief(observation)["segments"]["grading"]
        if queried:
            ran = env.step(MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": "SELECT 1 AS one"}))
            assert ran.status == "ok", ran.message
        rows = [row.model_copy(update={"detection_method": "query"}) for row in _expected_rows(env)]
        graded = env.step(MetricTrackerRlAction(classifications=rows))
        assert graded.reward_breakdown is not None, graded.message
        accuracy.append(graded.reward_breakdown.detection_method_accuracy)
    assert accuracy == [0.0, 1.0]
    assert "detection_method (query, credited only once the episode has run a query that succeeded)" in grading
    method = _report_tool(tier)["parameters"]["properties"]["rows"]["items"]["properties"]["detection_method"]
    assert method["description"] == QUERY_CREDIT


def _labels(column: Any) -> np.ndarray:
    return np.asarray(column.values, dtype=object)[column.codes]


@pytest.mark.slow
@pytest.mark.parametrize("tier", RAW_EVENT_TIERS)
def test_a_holiday_of_no_country_lowers_every_countrys_traffic_as_the_brief_says(tier: str) -> None:
    """A holidays row whose country is null (Good Friday, Easter Monday) lowers the sessions of every country
    against its same-weekday dates (no other holiday among them), over a few episodes; the brief says so."""
    on: dict[str, float] = {}
    usual: dict[str, float] = {}
    for offset in (0, 1, 2):
        _, world, _ = _world_and_rows(tier, offset)
        board = world.clean_dashboard
        dates, countries = np.asarray(board["date"]).astype(str), _labels(board["country"])
        sessions = np.asarray(board["sessions"], dtype=float)
        days, listed = sorted(set(dates)), {holiday.date for holiday in world.context.holidays}
        for holiday in (h for h in world.context.holidays if h.country is None):
            day = days.index(holiday.date)
            peers = [d for i, d in enumerate(days) if i % 7 == day % 7 and d not in listed]
            for country in set(countries):
                mine = countries == country
                on[country] = on.get(country, 0.0) + sessions[mine & (dates == holiday.date)].sum()
                usual[country] = usual.get(country, 0.0) + np.mean([sessions[mine & (dates == d)].sum() for d in peers])
    assert on and all(on[country] < 0.9 * usual[country] for country in on), {c: on[c] / usual[c] for c in on}
    _, observation = _reset(tier)
    brief = _brief(observation)
    assert "in every country where the country is null" in brief["benign_fluctuations"]
    assert "a null country: every country" in brief["segments"]["tables"]["holidays"]
