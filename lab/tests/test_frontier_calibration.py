"""Frontier calibration on a small fixed sweep: the expert solves the segmented tier from what a model reads (the
SQL tool's results included), an expert blind to segments does not, shortcuts stay low, padding only lowers a
score, and the expert's record shows every number it submits and fits a model's context."""

from __future__ import annotations

import re
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.calibration.calibrate import calibrate
from lab.calibration.interface import message_texts, record_episode
from metric_tracker_rl.adapters.transcript import cut_results, unseen_submitted_rows
from metric_tracker_rl.agents.expert_core.classification import OUTAGE_HOURS, one_block
from metric_tracker_rl.agents.expert_core.queries import STEPS
from metric_tracker_rl.agents.expert_core.reports import SQL_CHARS, Report, values_queries
from metric_tracker_rl.catalog.dimensions import COUNTRIES
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs

SEEDS = 10  # the first ten episodes of the frontier sweep (one of them a null episode)
GAMING = (
    "top_k_dates",
    "top_k_dates_shift_aware",
    "side_effect_padder",
    "weekday_rule",
    "mass_generators",
    "readme_baseline",
    "scripted",
    "fixed_rule",
)
MESSAGE_CHARS = 48_000  # an expert episode's messages, median (the model view's budget)


@pytest.fixture(scope="module")
def sweep() -> dict:
    return calibrate(
        ["expert", "aggregate_only_expert", "next_date_padder", *GAMING],
        SEEDS,
        progress=False,
        difficulties=("frontier",),
    )["agents"]


@pytest.mark.slow
def test_expert_solves_frontier(sweep: dict) -> None:
    stats = sweep["expert"]["frontier"]
    assert stats["mean"] >= 0.9 and stats["min"] >= 0.7, stats
    assert sweep["expert"]["null"]["min"] == 1.0  # nothing reported where nothing happened


@pytest.mark.slow
def test_aggregate_only_expert_stays_low(sweep: dict) -> None:
    assert sweep["aggregate_only_expert"]["frontier"]["mean"] < 0.5


@pytest.mark.parametrize("agent", GAMING)
@pytest.mark.slow
def test_shortcuts_stay_low(sweep: dict, agent: str) -> None:
    assert sweep[agent]["frontier"]["mean"] <= 0.3, agent


@pytest.mark.slow
def test_padding_only_lowers(sweep: dict) -> None:
    assert sweep["next_date_padder"]["frontier"]["mean"] < sweep["expert"]["frontier"]["mean"]


@pytest.mark.slow  # plays reference agents' episodes
def test_expert_record_shows_what_it_submits() -> None:
    sizes = []
    for offset in range(4):
        run = record_episode("expert", calibration_reset_kwargs("frontier", offset))
        assert run.score >= 0.7, offset
        assert unseen_submitted_rows(run) == []
        assert cut_results(run) == 0
        sizes.append(sum(map(len, message_texts(run.messages))))
    assert statistics.median(sizes) <= MESSAGE_CHARS, sizes


reports = st.builds(
    Report,
    date=st.dates().map(lambda d: d.isoformat()),
    entity_type=st.sampled_from(["conversion_rate"]),
    entity_name=st.sampled_from([name for name, _, _ in STEPS]),
    anomaly_type=st.just("rate_drop_from_median"),
    platform=st.sampled_from([None, "ios", "android", "web"]),
    country=st.sampled_from([None, *COUNTRIES]),
    app_version=st.sampled_from([None, "6.30", "6.31"]),
)


@given(st.lists(reports, max_size=40))
def test_values_queries_cover_every_row_within_the_text_limit(rows: list[Report]) -> None:
    queries = values_queries(rows)
    assert all(len(sql) <= SQL_CHARS for sql in queries)
    # A row is listed by its date (the first typed as a date) and the number of its segment, entity and type.
    assert sum(len(re.findall(r"\((?:DATE )?'[0-9-]+', [0-9]+\)", sql)) for sql in queries) == len(rows)


@given(st.sets(st.integers(0, 23), min_size=1))
def test_one_block_means_low_hours_fit_an_outage(hours: set[int]) -> None:
    listed = sorted(hours)
    fits = any(all((hour - start) % 24 < OUTAGE_HOURS for hour in listed) for start in range(24))
    assert one_block(",".join(map(str, listed))) == fits
