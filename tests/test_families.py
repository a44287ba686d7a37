"""Anomaly families and the hidden ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from core_helpers import custom_episode, episode, key_of, reset_episode, same_weekday_median

from metric_tracker_rl.analysis_tools import TOOL_REGISTRY, run_tool
from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES
from metric_tracker_rl.catalog.published import (
    ANOMALY_TYPES,
    CONVERSION_BY_NAME,
    COUNT_COLUMNS,
    FAMILY_ENTITY_TYPE,
    row_key,
    severity_for,
)
from metric_tracker_rl.catalog.tiers import AGGREGATE_PER_WEEKDAY, TIERS
from metric_tracker_rl.generation.anomalies import FAMILY_REGISTRY, register_family
from metric_tracker_rl.generation.episode import CANONICAL_METHOD
from metric_tracker_rl.models import MetricSubmissionRow
from metric_tracker_rl.world.funnel import FunnelData, window_dates

DATES = [d.isoformat() for d in window_dates()]


def entity_series(data: FunnelData, entity_type: str, entity_name: str) -> np.ndarray:
    """The daily value of an entity, recomputed from the public counts by its published definition."""
    daily = data.daily.astype(float)
    if entity_type in ("event_count", "data_quality"):
        return daily[:, COUNT_COLUMNS.index(entity_name)]
    if entity_type in ("conversion_rate", "funnel_step"):
        metric = CONVERSION_BY_NAME[entity_name]
        return daily[:, COUNT_COLUMNS.index(metric.numerator)] / daily[:, COUNT_COLUMNS.index(metric.denominator)]
    assert entity_type == "hourly_mix"
    column = COUNT_COLUMNS.index(entity_name)
    shares = data.hourly[:, :, column] / daily[:, None, column]
    distances = []
    for day in range(len(data.dates)):
        others = [d for d in range(len(data.dates)) if d != day and data.weekend[d] == data.weekend[day]]
        profile = np.median(shares[others], axis=0)
        distances.append(0.5 * np.abs(shares[day] - profile / profile.sum()).sum())
    return np.array(distances)


def test_every_registered_family_is_published_and_every_published_family_is_registered() -> None:
    """A family is an injector (the registry) plus a published entry (families.py): an injector without an entry
    makes incidents no tool, grader or wire enum knows; an entry without an injector publishes a family no episode
    holds. Derived from both sides, so adding a family needs no edit here."""
    assert set(FAMILY_REGISTRY) == set(PUBLISHED_FAMILIES.names) == set(ANOMALY_TYPES)
    assert len(PUBLISHED_FAMILIES.names) == len(ANOMALY_TYPES) and FAMILY_REGISTRY.mixed_order() == ANOMALY_TYPES
    wire_enum = MetricSubmissionRow.model_json_schema()["properties"]["anomaly_type"]["enum"]
    assert wire_enum == list(ANOMALY_TYPES)
    for name, family in FAMILY_REGISTRY.items():
        assert family.name == name and family.public is PUBLISHED_FAMILIES[name]
        assert family.entity_type == PUBLISHED_FAMILIES[name].entity_type == FAMILY_ENTITY_TYPE[name]


def test_registry_rejects_a_duplicate_family() -> None:
    before = dict(FAMILY_REGISTRY)
    with pytest.raises(ValueError, match="already registered"):
        register_family(FAMILY_REGISTRY["funnel_break"])
    assert before == FAMILY_REGISTRY


def test_every_published_family_has_a_generator_tool_and_a_tool_a_model_is_offered() -> None:
    """Each family's generator is a registered generator tool (its expected rows name it as their detection
    method), every tool the grader accepts for it is registered, and at least one of them is offered to models,
    so a model can earn the detection-method credit for every family."""
    for family in PUBLISHED_FAMILIES:
        assert TOOL_REGISTRY[family.generator].kind == "generator", family.name
        assert CANONICAL_METHOD[family.name] == family.generator
        assert family.accepted_methods <= set(TOOL_REGISTRY), family.name
        assert any(TOOL_REGISTRY[method].offered for method in family.accepted_methods), family.name


def _custom_cases() -> list[tuple[str, int]]:
    return [(family, seed) for family in ANOMALY_TYPES for seed in (1, 2, 3)]


@pytest.mark.parametrize(("family", "seed"), _custom_cases())
def test_custom_anomaly_is_found_by_its_public_generator_and_truth_follows_the_rules(family: str, seed: int) -> None:
    date = DATES[(5 * seed + ANOMALY_TYPES.index(family)) % 27]
    ep = custom_episode(seed, [{"family": family, "date": date}])
    (expected,) = ep.truth.expected_rows
    assert (expected.date, expected.anomaly_type, expected.entity_type) == (date, family, FAMILY_ENTITY_TYPE[family])

    outcome = run_tool(CANONICAL_METHOD[family], ep.public, {"threshold_multiplier": 3.0})
    assert outcome.ok, outcome.error
    found = {key_of(row): row for row in outcome.result["rows"]}
    # The family's own generator finds the incident and types it as the family the catalog publishes it for.
    assert found[key_of(expected)]["anomaly_type"] == family

    data, panel = ep.public.data, ep.public.panel
    day = data.dates.index(date)
    k = panel.index(expected.entity_type, expected.entity_name)
    series = entity_series(data, expected.entity_type, expected.entity_name)
    assert expected.observed_value == panel.values[k, day]
    assert expected.observed_value == pytest.approx(series[day], rel=1e-12)
    assert expected.baseline_value == pytest.approx(same_weekday_median(series, day), rel=1e-9)
    assert expected.delta_value == pytest.approx(expected.observed_value - expected.baseline_value, rel=1e-12)
    assert expected.severity == severity_for(expected.entity_type, expected.baseline_value, expected.observed_value)
    assert key_of(expected) not in ep.truth.neutral_keys


def test_neutral_keys_never_include_an_expected_key() -> None:
    neutral_seen = 0
    for seed in range(60):
        truth = episode(seed).truth
        assert not truth.neutral_keys & truth.expected_keys, seed
        neutral_seen += len(truth.neutral_keys)
    assert neutral_seen > 0


def test_mixed_scenarios_draw_every_family() -> None:
    counts = dict.fromkeys(ANOMALY_TYPES, 0)
    for seed in range(200):
        ep = reset_episode(
            seed=seed, scenario_family="mixed", difficulty="hard", anomaly_count=TIERS["hard"].max_incidents
        )
        assert len(ep.truth.expected_rows) == TIERS["hard"].max_incidents
        families = [row.anomaly_type for row in ep.truth.expected_rows]
        assert len(set(families)) == min(len(families), len(ANOMALY_TYPES)), seed  # mixed: distinct families first
        for family in families:
            counts[family] += 1
    assert all(n > 0 for n in counts.values()), counts


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_null_scenario_has_no_expected_rows(difficulty: str) -> None:
    for seed in range(5):
        truth = episode(seed, "null", difficulty).truth
        assert truth.expected_rows == () and truth.injections == () and not truth.neutral_keys


@pytest.mark.parametrize(
    ("difficulty", "kinds"),
    [
        ("easy", set()),
        ("medium", {"marketing_campaign", "data_freshness"}),
        ("hard", {"marketing_campaign", "data_freshness", "public_holiday"}),
    ],
)
def test_distractors_are_documented_and_carry_no_expected_row(difficulty: str, kinds: set[str]) -> None:
    for seed in range(25):
        ep = episode(seed, "mixed", difficulty)
        annotated = {a.kind: a.date for a in ep.public.annotations if a.kind != "release"}
        assert set(annotated) == kinds, seed
        assert len(ep.truth.distractors) == len(kinds)
        expected_dates = {row.date for row in ep.truth.expected_rows}
        for distractor in ep.truth.distractors:
            date = ep.public.dates[distractor.day]
            assert date in annotated.values()
            assert date not in expected_dates, (seed, distractor.kind)
        if "data_freshness" in kinds:
            assert annotated["data_freshness"] == ep.public.dates[-1]


@pytest.mark.parametrize(
    ("anomalies", "names"),
    [
        ([{"family": "bogus_family", "date": "2026-03-10"}], ["rate_drop_from_median", "funnel_break"]),
        ([{"family": "funnel_break", "date": "2026-05-01"}], ["2026-03-02", "2026-03-28"]),
        ([{"family": "funnel_break", "date": "2026-03-29"}], ["2026-03-02", "2026-03-28"]),
        (
            [{"family": "funnel_break", "date": day} for day in ("2026-03-10", "2026-03-17", "2026-03-24")],
            ["at most 2", "weekday", "2026-03-10, 2026-03-17"],
        ),
        (
            [{"family": "funnel_break", "date": "2026-03-10", "entity_name": "app_opens"}],
            ["app_open_to_menu_open", "order_placed_to_payment_successful"],
        ),
        ([{"family": "funnel_break", "date": "2026-03-10", "magnitude": 99.0}], ["between 3.0 and 9.0"]),
    ],
)
def test_invalid_custom_anomalies_are_rejected_with_the_valid_options(anomalies: list[dict], names: list[str]) -> None:
    with pytest.raises(ValueError) as error:
        reset_episode(seed=1, anomalies=anomalies, difficulty="easy")
    for name in names:
        assert name in str(error.value)


def test_custom_anomaly_entity_and_magnitude_are_honoured() -> None:
    ep = custom_episode(
        4,
        [
            {
                "family": "instrumentation_data_quality_issue",
                "date": "2026-03-12",
                "entity_name": "orders_placed",
                "magnitude": 1.5,
            }
        ],
    )
    (record,) = ep.truth.injections
    assert (record.entity_name, record.magnitude) == ("orders_placed", 1.5)
    assert ep.truth.expected_keys == {row_key("2026-03-12", "data_quality", "orders_placed")}


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_perturbed_dates_share_a_weekday_at_most_twice(difficulty: str) -> None:
    """Weekdays no longer tell incidents apart, yet each baseline keeps at most one perturbed peer."""
    shared = 0
    for seed in range(40):
        truth = episode(seed, "mixed", difficulty).truth
        days = [r.day for r in truth.injections] + [d.day for d in truth.distractors]
        assert len(set(days)) == len(days), seed
        per_weekday = np.bincount([day % 7 for day in days], minlength=7)
        assert per_weekday.max() <= AGGREGATE_PER_WEEKDAY, seed
        shared += int((per_weekday == AGGREGATE_PER_WEEKDAY).any())
    assert shared > 0


@pytest.mark.parametrize("difficulty", ["medium", "hard"])
def test_expected_baseline_stays_within_the_clean_peers_range_whatever_else_was_perturbed(difficulty: str) -> None:
    """The documented bound: each expected row's baseline lies between the lowest and highest value its three
    same-weekday peers take when the episode holds that incident alone (dates without a perturbation draw the
    same noise in both episodes), so it differs from the clean baseline by at most that peer range. Daily values
    only: an hourly-mix value is a distance between hour profiles, not a value of the date alone."""
    for seed in range(25):
        ep = episode(seed, "mixed", difficulty)
        dates = list(ep.public.dates)
        for record, expected in zip(ep.truth.injections, ep.truth.expected_rows, strict=True):
            if expected.entity_type == "hourly_mix":
                continue
            alone = custom_episode(
                seed,
                [
                    {
                        "family": record.family,
                        "date": dates[record.day],
                        "entity_name": record.entity_name,
                        "magnitude": record.magnitude,
                    }
                ],
            )
            series = entity_series(alone.public.data, expected.entity_type, expected.entity_name)
            peers = [series[d] for d in range(record.day % 7, len(dates), 7) if d != record.day]
            (clean,) = alone.truth.expected_rows
            assert clean.baseline_value == pytest.approx(float(np.median(peers)), rel=1e-9)
            slack = 1e-9 * max(abs(v) for v in peers)
            assert min(peers) - slack <= expected.baseline_value <= max(peers) + slack, (seed, expected)


def test_custom_anomalies_may_share_a_weekday_twice_but_not_three_times() -> None:

    mondays = ["2026-03-02", "2026-03-09", "2026-03-16"]
    two = [{"family": "rate_drop_from_median", "date": date} for date in mondays[:2]]
    ep = reset_episode(anomalies=two, difficulty="hard", seed=1)
    assert sorted(row.date for row in ep.truth.expected_rows) == mondays[:2]
    three = two + [{"family": "funnel_break", "date": mondays[2]}]
    with pytest.raises(ValueError, match=r"anomalies\[2\]: at most 2 anomalies may share a weekday.*2026-03-02"):
        reset_episode(anomalies=three, difficulty="hard", seed=1)
    twice = [{"family": "rate_drop_from_median", "date": mondays[0]}, {"family": "funnel_break", "date": mondays[0]}]
    with pytest.raises(ValueError, match=r"anomalies\[1\]: 2026-03-02 already holds a custom anomaly"):
        reset_episode(anomalies=twice, difficulty="easy", seed=1)


def test_custom_anomaly_cannot_share_the_late_data_weekday() -> None:

    sunday = "2026-03-22"  # same weekday as the latest date, which carries late-arriving data on medium/hard
    request = [{"family": "rate_drop_from_median", "date": sunday}]
    with pytest.raises(ValueError, match="latest date's weekday"):
        reset_episode(anomalies=request, difficulty="medium", seed=1)
    easy = reset_episode(anomalies=request, difficulty="easy", seed=1)
    assert [row.date for row in easy.truth.expected_rows] == [sunday]
