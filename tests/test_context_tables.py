"""The context tables of the deep tier (metric_tracker_rl/world/context.py): present at deep and nowhere else, filled
from what the generator placed, true to the data (an experiment's intended effect shows in its arm and is no
incident; a breakage is one; a partner notice explains a payment incident or nothing; a campaign keeps its
cuboid's own conversion), and readable through get_context and the query tool alike."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import numpy as np
import pytest
from core_helpers import reset_episode, reset_world

from metric_tracker_rl.analysis_tools import run_tool
from metric_tracker_rl.catalog.published import CONVERSION_BY_NAME, COUNT_COLUMNS
from metric_tracker_rl.catalog.seeding import EpisodeKey
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.generation.kinds import BENIGN_KIND_REGISTRY, SegmentFluctuation
from metric_tracker_rl.generation.segment_plan import Calendar, SegmentWorld, segmented_plan
from metric_tracker_rl.generation.segmented import DrawnWorld, build_world
from metric_tracker_rl.world.context import (
    CONTEXT_TABLES,
    MATCHED_NOTICE_SHARE,
    NOTED_PAYMENT_SHARE,
    Campaign,
    Experiment,
    PartnerNotice,
)
from metric_tracker_rl.world.daily_panel import same_weekday_peer_lists
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.segment_brief import segmented_brief
from metric_tracker_rl.world.segments import SEGMENT_FIELDS, Segment, world_of

SEEDS = range(16)
CONTEXT_ONLY = ("experiments", "campaigns", "holidays", "partner_status")
PAYMENT_STEP = "order_placed_to_payment_successful"


@cache
def deep(seed: int) -> tuple[DrawnWorld, Episode]:
    """A deep episode with twice the default look-alikes (so every benign kind shows up in a short sweep)."""
    config = resolve_episode_config(seed=seed, difficulty="deep", decoy_ratio=2.0)
    return build_world(TIERS[config.difficulty], config), build_episode(config)


def _truth_keys(episode: Episode) -> set[tuple[str, str, str, Segment]]:
    return {
        (
            row.date,
            row.entity_name,
            row.anomaly_type,
            Segment(**{name: getattr(row, name, None) for name in SEGMENT_FIELDS}).normalised(),
        )
        for row in episode.truth.expected_rows
    }


def _dates(row: Experiment, episode: Episode) -> list[int]:
    dates = episode.public.dates
    return list(range(dates.index(row.start_date), dates.index(row.end_date) + 1))


def _rate(counts: np.ndarray, metric: str) -> np.ndarray:
    definition = CONVERSION_BY_NAME[metric]
    return counts[:, COUNT_COLUMNS.index(definition.numerator)] / counts[:, COUNT_COLUMNS.index(definition.denominator)]


def _arm(row: Experiment) -> Segment:
    return Segment(platform=row.platform, country=row.country, channel=row.channel, user_type=row.user_type)


# --- where the tables exist -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_every_context_table_is_in_a_deep_episodes_sql_and_none_at_frontier(seed: int) -> None:
    _, episode = deep(seed)
    assert set(CONTEXT_TABLES) <= set(episode.public.sql_tables())
    frontier = reset_episode(seed=seed, difficulty="frontier").public
    assert not set(CONTEXT_ONLY) & set(frontier.sql_tables())
    assert frontier.segments is not None and frontier.segments.context is None
    assert "context_tables" not in segmented_brief("frontier")


def test_only_a_tier_with_context_names_context_kinds() -> None:
    for name, tier in TIERS.items():
        if tier.segmented is not None and not tier.segmented.context:
            kinds = [*(tier.segmented.incident_kinds or ()), *(tier.segmented.benign_kinds or ())]
            assert tier.segmented.incident_kinds is not None and tier.segmented.benign_kinds is not None, name
            assert not {"experiment_effect", "campaign", "country_holiday"} & set(kinds), name


# --- true to the data -------------------------------------------------------------------------------------------


def test_an_experiments_intended_effect_shows_in_its_arms_targeted_step_and_is_no_incident() -> None:
    seen = 0
    for seed in SEEDS:
        world, episode = deep(seed)
        keys = _truth_keys(episode)
        placed = [f for f in world.fluctuations if f.kind == "experiment_effect"]
        placed += [i for i in world.incidents if i.kind == "experiment_breakage" and i.context]
        for item in placed:
            row = next(r for r in item.context if isinstance(r, Experiment))
            assert row in episode.public.segments.context.experiments  # type: ignore[union-attr]
            arm, days = _arm(row), _dates(row, episode)
            assert arm == item.segment
            # Its size, as the generator wrote it (behind the truth wall): "... by +12% ...".
            text = item.description if isinstance(item, SegmentFluctuation) else item.record.description
            effect = float(re.search(r"by ([+-]\d+)%", text).group(1)) / 100  # type: ignore[union-attr]
            rate = _rate(episode.public.segments.segment_daily(arm), row.target_step)
            peers = same_weekday_peer_lists(len(rate))
            changes = [rate[day] / np.median([rate[p] for p in peers[day] if p not in days]) - 1.0 for day in days]
            # Over its dates (each date's own noise is a few percent), the step moved as intended.
            assert np.sign(np.mean(changes)) == np.sign(effect) and abs(np.mean(changes)) > abs(effect) / 2, (
                seed,
                row,
                effect,
                changes,
            )
            for day in days:
                assert not any(
                    k[:2] == (episode.public.dates[day], row.target_step) and k[3] == arm.normalised() for k in keys
                ), (seed, row)
            seen += 1
    assert seen >= 8


def test_a_breaking_experiment_is_in_the_ground_truth_on_a_step_it_does_not_target() -> None:
    found = 0
    for seed in SEEDS:
        world, episode = deep(seed)
        keys = _truth_keys(episode)
        dates = episode.public.dates
        for incident in (i for i in world.incidents if i.kind == "experiment_breakage"):
            record = incident.record
            first = next(
                i
                for i in world.incidents
                if i.kind == incident.kind
                and i.segment == incident.segment
                and i.context
                and record.day in _dates(i.context[0], episode)
            )  # type: ignore[arg-type]
            row = first.context[0]
            assert isinstance(row, Experiment) and record.entity_name != row.target_step
            assert _arm(row) == incident.segment
            assert (
                dates[record.day],
                record.entity_name,
                "rate_drop_from_median",
                incident.segment.normalised(),
            ) in keys
            found += 1
    assert found >= 10


def test_partner_notices_explain_only_payment_incidents_or_nothing() -> None:
    explained = silent = unnoted = 0
    for seed in SEEDS:
        world, episode = deep(seed)
        dates = episode.public.dates
        notices = episode.public.segments.context.partner_status  # type: ignore[union-attr]
        for notice in notices:
            assert notice.status == notices[0].status  # one text: a notice never says what it hid
            day = dates.index(notice.date)
            touching = [i for i in world.incidents if i.record.day == day and _overlaps(notice, i.segment)]
            for incident in touching:
                start, end = incident.record.hours
                assert incident.record.entity_name == PAYMENT_STEP and incident.record.family == "funnel_break"
                assert (start, end) == (notice.start_hour, notice.end_hour)
            explained += bool(touching)
            silent += not touching
        for incident in (i for i in world.incidents if i.record.entity_name == PAYMENT_STEP):
            noted = [n for n in notices if n.date == dates[incident.record.day] and _overlaps(n, incident.segment)]
            unnoted += not noted
            assert len(noted) == (incident.kind == "partner_payment_failure" and bool(incident.context))
    assert explained and silent and unnoted, (explained, silent, unnoted)


@pytest.mark.slow
def test_the_partner_logs_shares_at_deeps_defaults_are_the_published_ones() -> None:
    """Over 200 seeds at deep's defaults: the share of notices that match a payment incident, and of payment
    incidents with a notice, are about the ones context.py states (and both kinds of notice are common)."""
    notices = matched = payments = noted = 0
    dates = window_calendar(TIERS["deep"].window_days).iso_dates
    for seed in range(200):
        world = reset_world(seed=seed, difficulty="deep")
        log = world.data.context.partner_status  # type: ignore[union-attr]
        breaks = [
            i for i in world.incidents if i.record.family == "funnel_break" and i.record.entity_name == PAYMENT_STEP
        ]
        notices += len(log)
        matched += sum(any(n.date == dates[i.record.day] and _overlaps(n, i.segment) for i in breaks) for n in log)
        payments += len(breaks)
        noted += sum(any(n.date == dates[i.record.day] and _overlaps(n, i.segment) for n in log) for i in breaks)
    assert abs(matched / notices - MATCHED_NOTICE_SHARE) <= 0.1, (matched, notices)
    assert abs(noted / payments - NOTED_PAYMENT_SHARE) <= 0.1, (noted, payments)
    assert min(matched, notices - matched, payments - noted) >= 30


def _overlaps(notice: PartnerNotice, segment: Segment) -> bool:
    """Whether the notice's platform and country and the segment's can name the same cell."""
    return (None in (notice.platform, segment.platform) or notice.platform == segment.platform) and (
        None in (notice.country, segment.country) or notice.country == segment.country
    )


def test_a_campaign_raises_its_cuboids_traffic_and_keeps_every_leafs_own_conversion() -> None:
    kind = BENIGN_KIND_REGISTRY["campaign"]
    for seed in range(6):
        key = EpisodeKey(seed)
        tier = TIERS["deep"]
        plan = segmented_plan(key, tier.window_days, world_of(tier.dimensions))
        world = SegmentWorld(plan, Calendar(plan.num_days, tier.perturbed_per_weekday), key, "deep", 1.0)
        before = plan.leaf_reach().copy()
        fluctuation = kind.place(world, np.random.default_rng(seed))
        assert fluctuation is not None and fluctuation.keeps_conversion
        campaign = fluctuation.context[0]
        assert isinstance(campaign, Campaign) and plan.split is not None
        after = plan.leaf_reach()
        live = before[..., 0] > 0  # (S, K, D): leaves with traffic (a version before its release has none)
        # Every leaf's own conversion through every event is as it was, on every date.
        np.testing.assert_allclose(
            after[live][:, 1:] / after[live][:, :1], before[live][:, 1:] / before[live][:, :1], rtol=1e-9
        )
        days = np.zeros(plan.num_days, dtype=bool)
        days[
            fluctuation.day : fluctuation.day
            + 1
            + (np.datetime64(campaign.end_date) - np.datetime64(campaign.start_date)).astype(int)
        ] = True
        inside = (
            np.outer(plan.layout.mask(Segment(country=campaign.country)), plan.split.mask(fluctuation.segment))[
                ..., None
            ]
            & days
        )  # (S, K, D)
        lift = np.divide(after[..., 0], before[..., 0], out=np.ones_like(before[..., 0]), where=live)
        assert np.allclose(lift[inside & live], lift[inside & live][0]) and lift[inside & live][0] >= 1.5
        assert np.allclose(lift[~inside], 1.0)


# --- reading them -----------------------------------------------------------------------------------------------


def _sql_rows(public: Any, table: str) -> list[dict[str, Any]]:
    outcome = run_tool("query", public, {"sql": f"SELECT * FROM {table}", "limit": 120})
    assert outcome.ok, outcome.error
    return outcome.result["rows"]  # type: ignore[index]


@pytest.mark.parametrize("seed", range(3))
def test_get_context_shows_each_table_as_the_query_tool_holds_it(seed: int) -> None:
    public = deep(seed)[1].public
    brief = segmented_brief("deep")["context_tables"]
    try:
        for table in CONTEXT_TABLES:
            outcome = run_tool("get_context", public, {"table": table})
            assert outcome.ok, outcome.error
            result = outcome.result
            assert result is not None and result["showing"] == f"{len(result['rows'])} of {len(result['rows'])}"
            columns = run_tool("query", public, {"sql": f"SELECT * FROM {table} LIMIT 0"}).result["columns"]
            assert brief[table].startswith(f"({', '.join(columns)})")  # type: ignore[index]
            if table != "releases":  # get_context shows a rollout's stages, SQL every date
                assert result["rows"] == _sql_rows(public, table)
    finally:
        public.close()


def test_get_context_errors_name_the_valid_tables_and_where_they_exist() -> None:
    public = deep(0)[1].public
    outcome = run_tool("get_context", public, {"table": "calendar"})
    assert not outcome.ok and all(table in (outcome.error or "") for table in CONTEXT_TABLES)
    assert not run_tool("get_context", public, {}).ok
    frontier = reset_episode(seed=0, difficulty="frontier").public
    error = run_tool("get_context", frontier, {"table": "experiments"}).error or ""
    assert "(only at deep, abyss)" in error and "get_releases" in error
    easy = reset_episode(seed=0, difficulty="easy").public
    error = run_tool("get_context", easy, {"table": "holidays"}).error or ""
    assert "not offered at difficulty 'easy' (only at deep, abyss)" in error and "get_releases" not in error


@pytest.mark.parametrize("note_share", [0.0, 1.0])
def test_the_resets_note_share_sets_which_partner_failures_get_a_notice(note_share: float) -> None:
    failures = 0
    for seed in range(4):
        world = reset_world(
            seed=seed,
            difficulty="deep",
            note_share=note_share,
            incident_kinds=("partner_payment_failure",),
            anomaly_count=3,
        )
        placed = [i for i in world.incidents if i.kind == "partner_payment_failure"]
        notices = set(world.data.context.partner_status)  # type: ignore[union-attr]
        for incident in placed:
            assert bool(incident.context) == (note_share == 1.0)
            assert set(incident.context) <= notices
        failures += len(placed)
    assert failures >= 6
