"""What the segmented tiers' brief and system prompt say is what the generator and the grader do: the tiers a rule
names, the detection-method rule, the kinds an episode draws, the config's knobs, the holidays, the partner notices
and the release regressions."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from core_helpers import reset_episode, reset_world
from text_reader import read_observation

from metric_tracker_rl.analysis_tools import run_tool
from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES
from metric_tracker_rl.catalog.published import (
    CONFIG_MEANINGS,
    CONFIG_SELF_EXPLAINED,
    DETECTION_METHOD_RULE,
    GRADING_RULE,
    METHODS_ACCEPTED_WHEN_USED,
    SEGMENTED_TIERS,
)
from metric_tracker_rl.catalog.registry import Registry
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import COUNTS, TIERS
from metric_tracker_rl.catalog.validation import entity_names_of
from metric_tracker_rl.generation.anomalies.base import full_day
from metric_tracker_rl.generation.episode import CONTEXT_OBJECTIVE
from metric_tracker_rl.generation.kinds import INCIDENT_KIND_REGISTRY, KIND_FAMILY, IncidentKind, check_kind
from metric_tracker_rl.generation.kinds.cuboid import cuboid_depth
from metric_tracker_rl.generation.segmented import episode_kinds
from metric_tracker_rl.grading.grader import accepted_methods, grade_submission
from metric_tracker_rl.models import MetricSubmissionRow
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.report_step import overlap_traffic
from metric_tracker_rl.view.prompt import SYSTEM_PROMPT, first_prompt, segment_arguments
from metric_tracker_rl.view.tool_schemas import openai_tools
from metric_tracker_rl.world.context import EMPTY_NOTICES, share_in_words
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.segment_brief import RELEASE_MEANING, segmented_brief
from metric_tracker_rl.world.segments import REGRESSION_DAYS, ROLLOUT_STAGES

SEGMENT_KEYS = ("platform", "country", "app_version", "channel", "user_type")


def _scope(row: MetricSubmissionRow) -> dict[str, str]:
    return {key: value for key in SEGMENT_KEYS if (value := getattr(row, key, None)) is not None}


# --- the tiers a rule names -------------------------------------------------------------------------------------


def test_the_grading_rule_names_every_tier_whose_rows_are_multiplied_by_a_segment_credit() -> None:
    assert "at frontier it is" not in GRADING_RULE
    assert f"with segments ({', '.join(SEGMENTED_TIERS)}) it is multiplied by the segment credit" in GRADING_RULE
    for difficulty in SEGMENTED_TIERS:  # a right row on the whole funnel earns less than on its segment
        episode = reset_episode(difficulty=difficulty, seed=2)
        truth, public = episode.truth, episode.public
        row = truth.expected_rows[0]
        unscoped = row.model_copy(update=dict.fromkeys(_scope(row)))
        traffic = overlap_traffic(episode)
        with entity_names_of(difficulty):  # as the environment grades: with the tier's entity names
            scores = [
                grade_submission(
                    [r],
                    truth.expected_rows,
                    truth.neutral_keys,
                    public.dates,
                    segment_values=public.segment_values(),
                    leaf_traffic=traffic,
                ).score
                for r in (row, unscoped)
            ]
        assert scores[1] < scores[0], difficulty


def test_the_prompt_names_every_tier_with_segments_and_every_field_its_segment_tools_take() -> None:
    """Every segmented tier, each of its fields, and the fields its hourly data lacks (read off its tables)."""
    prompt = " ".join(SYSTEM_PROMPT.split())
    counted = [name for name in SEGMENTED_TIERS if TIERS[name].data == COUNTS]  # a raw-event tier has its own prompt
    assert "(frontier)" not in prompt and f"With segments ({', '.join(counted)})" in prompt
    assert not [name for name in SEGMENTED_TIERS if TIERS[name].data != COUNTS and name in prompt]
    said = segment_arguments()
    assert said in prompt
    for difficulty in counted:
        tables = reset_episode(difficulty=difficulty, seed=1).public.segments.sql_tables()
        fields = [f for f in SEGMENT_KEYS if f in tables["daily_by_segment"]]
        assert all(f in said for f in fields)
        not_hourly = [f for f in fields if f not in tables["hourly_by_segment"]]
        if not_hourly:
            named = re.search(rf"at ([a-z, ]*\b{difficulty}\b[a-z, ]*) also {' and '.join(not_hourly)}\b", said)
            assert named, (difficulty, said)  # tiers whose segments take the same fields are named together
            assert f"hourly data has no {' or '.join(not_hourly)}" in said


# --- detection_method -------------------------------------------------------------------------------------------


def test_the_schema_and_the_grading_rule_state_the_graders_one_detection_method_rule() -> None:
    schema = next(t for t in openai_tools() if t["function"]["name"] == "submit_report")["function"]["parameters"]
    described = schema["properties"]["rows"]["items"]["properties"]["detection_method"]["description"]
    assert DETECTION_METHOD_RULE in described and DETECTION_METHOD_RULE in GRADING_RULE
    assert DETECTION_METHOD_RULE in MetricSubmissionRow.model_fields["detection_method"].description
    for method in METHODS_ACCEPTED_WHEN_USED:
        assert method in DETECTION_METHOD_RULE
    for family in PUBLISHED_FAMILIES:
        listed = set(family.detection_methods)
        assert accepted_methods(family.name) == listed  # a method the episode never ran is not credited
        assert accepted_methods(family.name, METHODS_ACCEPTED_WHEN_USED) == listed | METHODS_ACCEPTED_WHEN_USED


@pytest.mark.parametrize("difficulty", ["hard", "frontier", "deep"])
def test_a_data_quality_row_can_name_the_tool_that_gives_its_values(difficulty: str) -> None:
    """check_impossible_counts confirms double logging without values; compare_count_to_median gives them, and the
    family lists it."""
    assert "compare_count_to_median" in PUBLISHED_FAMILIES["instrumentation_data_quality_issue"].detection_methods
    episode = reset_episode(difficulty=difficulty, seed=3, scenario_family="instrumentation_data_quality_issue")
    assert episode.truth.expected_rows
    for row in episode.truth.expected_rows:
        scope = {k: v for k, v in _scope(row).items() if k in ("platform", "country", "app_version")}
        outcome = run_tool(
            "compare_count_to_median", episode.public, {"date": row.date, "entity_name": row.entity_name, **scope}
        )
        assert outcome.ok, outcome.error
        assert outcome.result["baseline_value"] == pytest.approx(row.baseline_value, rel=0.02)
        assert outcome.result["observed_value"] == pytest.approx(row.observed_value, rel=0.02)


# --- holidays ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(1, 13))
def test_every_countrys_holidays_are_annotated_and_one_countrys_are_in_the_holidays_table_only(seed: int) -> None:
    episode = reset_episode(difficulty="deep", seed=seed)
    public = episode.public
    assert CONTEXT_OBJECTIVE in public.task["objective"]
    assert (
        "Holidays of every country are annotated, a single country's are in the holidays table only"
        in CONTEXT_OBJECTIVE
    )
    annotated = {a.date for a in public.annotations if a.kind == "public_holiday"}
    table = public.segments.context.holidays
    assert annotated == {h.date for h in table if h.country is None} != set()
    assert not annotated & {h.date for h in table if h.country is not None}


# --- release regressions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", ["frontier", pytest.param("deep", marks=pytest.mark.slow)])
def test_a_release_regression_runs_over_its_dates_as_the_brief_says(difficulty: str) -> None:
    """From the rollout's first date, REGRESSION_DAYS dates in a row, the same fall every date, on the new version;
    some runs end before the rollout is complete and some after."""
    low, high = REGRESSION_DAYS
    assert f"from the rollout's first date for {low} to {high} dates in a row" in RELEASE_MEANING
    assert f"whether or not the rollout has reached {ROLLOUT_STAGES[-1]:.0%}" in RELEASE_MEANING
    lengths = []
    for seed in range(1, 41):
        world = reset_world(difficulty=difficulty, seed=seed, incident_kinds=["release_regression", "web_tracking_bug"])
        runs: dict[int, list] = {}
        for incident in world.incidents:
            if incident.kind == "release_regression":
                record = incident.record
                runs.setdefault(record.day if record.continues is None else record.continues, []).append(incident)
        for first, run in runs.items():
            segment = run[0].segment
            [release] = [
                r for r in world.data.releases if (r.platform, r.version) == (segment.platform, segment.app_version)
            ]
            days = [incident.record.day for incident in run]
            assert days == list(range(release.start_day, release.start_day + len(run))) and first == days[0]
            assert low <= len(run) <= high
            assert len({(i.segment, i.record.entity_name, round(i.record.magnitude, 9)) for i in run}) == 1
            lengths.append(len(run))
    stages = len(ROLLOUT_STAGES)
    assert min(lengths) < stages <= max(lengths)  # fixed before the full rollout, and after it


# --- partner notices --------------------------------------------------------------------------------------------


def _notices_and_payments(seeds: range, **settings: object) -> tuple[list[tuple], int, int]:
    """Per notice, the kinds of the incidents it matches (same date, country, platform where it names one, the
    same hours) and whether it shares a date and country with any incident; the partner failures, and those noted."""
    notices, partner, noted = [], 0, 0
    for seed in seeds:
        world = reset_world(difficulty="deep", seed=seed, **settings)
        dates = window_calendar(world.data.num_days).iso_dates
        assert world.data.context is not None
        for notice in world.data.context.partner_status:
            on_date = [i for i in world.incidents if dates[i.record.day] == notice.date]
            touched = any(i.segment.country in (None, notice.country) for i in on_date)
            matched = [
                i.kind
                for i in on_date
                if (i.segment.platform, i.segment.country) == (notice.platform, notice.country)
                and i.record.hours == (notice.start_hour, notice.end_hour)
            ]
            notices.append((seed, matched, touched))
        failures = [i for i in world.incidents if i.kind == "partner_payment_failure"]
        partner += len(failures)
        noted += sum(bool(i.context) for i in failures)
    return notices, partner, noted


@pytest.mark.slow  # 90 deep worlds (the edit loop's check of note_share is in tests/test_context_tables.py)
def test_the_partner_notices_are_as_the_brief_says() -> None:
    """A notice either carries a partner failure's platform, country and hours exactly or touches no incident's
    date and country; a version's payment failure has none; at most EMPTY_NOTICES' top per episode match nothing;
    and the share of partner failures with one is note_share's."""
    text = segmented_brief("deep", 0.5)["context_tables"]["partner_status"]
    assert f"about 1 in 2 times (note_share), a payment_failure never; up to {EMPTY_NOTICES[1]} more" in text
    assert share_in_words(0.0) == "never" and share_in_words(1.0) == "always"
    notices, partner, noted = _notices_and_payments(range(1, 81))
    for seed, matched, touched in notices:
        assert matched in ([], ["partner_payment_failure"]), seed
        assert matched or not touched, seed
    unmatched = Counter(seed for seed, matched, _ in notices if not matched)
    assert max(unmatched.values()) <= EMPTY_NOTICES[1]
    assert partner >= 30 and abs(noted / partner - 0.5) <= 3 * (0.25 / partner) ** 0.5
    for share, expected in ((0.0, 0), (1.0, None)):
        _, partner, noted = _notices_and_payments(range(1, 11), note_share=share)
        assert noted == (partner if expected is None else expected)


# --- incident kinds and the families they draw -----------------------------------------------------------------


def _segments_brief(**reset: object) -> dict:
    return read_observation(first_prompt(MetricTrackerRlEnvironment().reset(**reset))).brief.get("segments", {})


KIND_RESETS = [
    {"difficulty": "deep", "seed": 4},
    {"difficulty": "frontier", "seed": 4},
    {"difficulty": "deep", "seed": 5, "incident_kinds": ["country_bots", "level_shift"]},
    {"difficulty": "deep", "seed": 6, "scenario_family": "funnel_break"},
    {"difficulty": "deep", "seed": 6, "scenario_family": "absolute_spike_in_event_count"},
    {"difficulty": "deep", "seed": 7, "dimensions": ["platform", "app_version", "channel"], "max_cuboid_depth": 2},
]


@pytest.mark.parametrize("reset", KIND_RESETS)
def test_the_brief_shows_each_kind_the_episode_may_draw_with_its_registered_family_and_definition(reset: dict) -> None:
    shown = _segments_brief(**reset)["incident_kinds"]
    config = resolve_episode_config(**reset)
    kinds = episode_kinds(TIERS[config.difficulty], config)
    assert [row["kind"] for row in shown] == [kind.name for kind in kinds]
    for row, kind in zip(shown, kinds, strict=True):
        if kind.name in INCIDENT_KIND_REGISTRY:
            assert kind.family == KIND_FAMILY[kind.name]
        assert (row["family"], row["definition"]) == (kind.family, kind.definition)
    assert "incident_kinds" not in _segments_brief(difficulty="deep", seed=4, scenario_family="null")


@pytest.mark.parametrize("reset", KIND_RESETS)
def test_the_families_table_lists_the_families_of_the_kinds_shown_and_the_config_no_kinds_again(reset: dict) -> None:
    brief = read_observation(first_prompt(MetricTrackerRlEnvironment().reset(**reset))).brief
    config = resolve_episode_config(**reset)
    kinds = episode_kinds(TIERS[config.difficulty], config)
    drawn = {kind.family for kind in kinds}
    assert sorted(row["family"] for row in brief["families"]) == sorted(drawn)
    assert "incident_kinds" not in brief["config"]
    # Without kinds (an episode with no incident), every family stays listed.
    null = read_observation(
        first_prompt(MetricTrackerRlEnvironment().reset(difficulty="deep", seed=4, scenario_family="null"))
    ).brief
    assert sorted(row["family"] for row in null["families"]) == sorted(PUBLISHED_FAMILIES.names)


# Each reset sweeps 12 worlds: the edit loop sweeps deep's and frontier's defaults, the other resets are slow.
@pytest.mark.parametrize(
    "reset",
    [pytest.param(reset, marks=() if index < 2 else pytest.mark.slow) for index, reset in enumerate(KIND_RESETS)],
)
def test_every_incident_is_one_of_the_kinds_shown_and_of_no_family_the_brief_rules_out(reset: dict) -> None:
    shown = _segments_brief(**reset)
    note = shown["families_drawn"]
    config = resolve_episode_config(**reset)
    kinds = {kind.name: kind for kind in episode_kinds(TIERS[config.difficulty], config)}
    absent = [family for family in PUBLISHED_FAMILIES.names if family not in {k.family for k in kinds.values()}]
    claims_no_all_day = "No incident moves a segment's counts together all day" in note
    assert claims_no_all_day == (not any(kind.count_all_day for kind in kinds.values()))
    for seed in range(12):
        world = reset_world(**{**reset, "seed": seed})
        for incident in world.incidents:
            assert incident.kind in kinds and incident.record.family not in absent, incident.kind
            if incident.record.entity_type == "event_count" and not kinds[incident.kind].count_all_day:
                assert incident.record.hours != full_day(), incident.kind  # a block of hours, never all day


def test_a_kind_without_a_public_definition_is_refused() -> None:
    class Undefined(IncidentKind):
        name, family, entity_names = "undefined", "funnel_break", ("order_placed_to_payment_successful",)
        segment_meaning = magnitude_meaning = description = ""
        magnitude_range = magnitude_bounds = (0.0, 1.0)

        def place(self, world, stream, rng):  # type: ignore[no-untyped-def]
            return []

    with pytest.raises(ValueError, match="public definition"):
        Registry("incident kind", check=check_kind).register(Undefined())


# --- the config's knobs ----------------------------------------------------------------------------------------


CONFIG_RESETS = [{"difficulty": d, "seed": 3} for d in ("easy", "medium", "hard", "frontier", "deep")] + [
    {"task_id": "hard_mixed_multi"},
    {"difficulty": "deep", "seed": 3, "concurrency": 2, "note_share": 0.3},
    {"difficulty": "easy", "seed": 3, "anomalies": [{"family": "funnel_break", "date": "2026-03-04"}]},
]


@pytest.mark.parametrize("reset", CONFIG_RESETS)
def test_every_knob_the_config_shows_has_a_meaning(reset: dict) -> None:
    text = first_prompt(MetricTrackerRlEnvironment().reset(**reset))
    brief = read_observation(text).brief
    shown = set(brief["config"])
    assert shown <= set(CONFIG_MEANINGS) | CONFIG_SELF_EXPLAINED
    meanings = brief.get("config_meaning", {})
    assert set(meanings) == {key for key in brief["config"] if key in CONFIG_MEANINGS}
    # A segmented tier's decoy_ratio adds how many dates its weekdays hold (tests/test_abyss_text.py measures it).
    assert all(meaning.startswith(CONFIG_MEANINGS[key]) for key, meaning in meanings.items())
    assert "incidents" in brief  # what explains the rest
    assert "\nsteps_remaining: " in text and "\nsubmissions_remaining: " in text


def test_the_meanings_cover_every_field_a_config_may_show() -> None:
    visible = set(resolve_episode_config(difficulty="deep", seed=1).public_dict()) - {"anomaly_density"}
    assert visible <= set(CONFIG_MEANINGS) | CONFIG_SELF_EXPLAINED


@pytest.mark.slow  # 75 deep worlds (the edit loop checks the depth bounds in tests/test_deep_cuboids.py)
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_a_segment_names_at_most_max_cuboid_depth_fields_a_version_with_its_platform_counting_once(depth: int) -> None:
    meaning = CONFIG_MEANINGS["max_cuboid_depth"]
    assert "a version with its platform counting once" in meaning
    exceptions = [name for name in INCIDENT_KIND_REGISTRY if name in meaning]
    widest = 0
    for seed in range(25):
        world = reset_world(difficulty="deep", seed=seed, max_cuboid_depth=depth)
        for incident in world.incidents:
            named = incident.segment.named()
            assert cuboid_depth(incident.segment) == len(named) - ("app_version" in named and "platform" in named)
            bound = max(depth, 2) if incident.kind in exceptions else depth
            assert cuboid_depth(incident.segment) <= bound, (seed, incident.kind, named)
            widest = max(widest, len(named))
    if depth == 3:
        assert widest == 4  # platform, version and two more: depth 3
