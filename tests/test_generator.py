"""The synthetic funnel: determinism, seasonality, integer counts, funnel order, per-date streams."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
from core_helpers import ROOT, custom_episode, data_digest, episode, reset_episode
from hypothesis import example, given, settings
from hypothesis import strategies as st

from metric_tracker_rl.catalog.published import ANOMALY_TYPES, COUNT_COLUMNS
from metric_tracker_rl.catalog.seeding import MAX_SEED, EpisodeKey, derive_rng
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.world.funnel import HOURS, N_EVENTS, N_STEPS, WINDOW_START, FunnelPlan, draw_counts, window_dates

SEEDS = range(20)

# Builds one episode and prints a digest of its public data. With FAKE_TODAY set, the clock (date.today,
# datetime.now, time.time) is moved before the package is imported, so any calendar read from it would show.
# C extensions that cache the real date types (numpy, pandas) are loaded first: they cannot take a subclass.
HASH_SCRIPT = """
import datetime, os, sys, time
import numpy, pandas
fake = os.environ.get("FAKE_TODAY")
if fake:
    day = datetime.date.fromisoformat(fake)
    stamp = time.mktime(day.timetuple()) + 12 * 3600
    class FakeDate(datetime.date):
        @classmethod
        def today(cls):
            return cls(day.year, day.month, day.day)
    class FakeDateTime(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls.fromtimestamp(stamp, tz)
        @classmethod
        def today(cls):
            return cls.fromtimestamp(stamp)
    datetime.date, datetime.datetime = FakeDate, FakeDateTime
    time.time = lambda: stamp
    assert datetime.date.today() == day
sys.path.insert(0, "tests")
from core_helpers import data_digest
print(data_digest(int(sys.argv[1])), str(datetime.date.today()))
"""


def _run_hash(seed: int, hash_seed: str, fake_today: str | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHASHSEED", "FAKE_TODAY")}
    env["PYTHONHASHSEED"] = hash_seed
    if fake_today:
        env["FAKE_TODAY"] = fake_today
    return subprocess.Popen(
        [sys.executable, "-c", HASH_SCRIPT, str(seed)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_same_config_gives_identical_bytes_across_processes_hash_seeds_and_dates() -> None:
    runs = [_run_hash(7, "1", None), _run_hash(7, "4242", "2031-11-23")]
    outputs = []
    for process in runs:
        stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr
        outputs.append(stdout.split())
    (hash_a, today_a), (hash_b, today_b) = outputs
    assert today_b == "2031-11-23" != today_a  # the clock really differed between the two processes
    # This process (another hash seed, the real clock) agrees too; a different seed does not.
    assert hash_a == hash_b == data_digest(7) != data_digest(8)


def test_calendar_is_fixed() -> None:
    dates = episode(0).public.dates
    assert dates[0] == WINDOW_START.isoformat() and len(dates) == 28


def test_weekend_days_have_more_app_opens_than_weekdays() -> None:
    for seed in SEEDS:
        data = episode(seed, "null", "easy").public.data
        opens = data.daily[:, COUNT_COLUMNS.index("app_opens")]
        assert np.median(opens[data.weekend]) > np.median(opens[~data.weekend]), seed


def test_weekend_hour_of_day_shape_differs_from_weekdays() -> None:
    for seed in SEEDS:
        data = episode(seed, "null", "easy").public.data
        share = data.hourly[:, :, 0] / data.daily[:, None, 0]
        weekday, weekend = share[~data.weekend].mean(axis=0), share[data.weekend].mean(axis=0)
        # Weekday mornings start early (a 08:00 commute peak); weekend mornings start later and nights run late.
        assert weekday[7] > 1.5 * weekend[7], seed
        assert weekend[0] > 3 * weekday[0], seed
        assert 0.5 * np.abs(weekday - weekend).sum() > 0.1, seed


def test_counts_are_integers() -> None:
    data = episode(3).public.data
    assert data.hourly.dtype == np.int64 and data.daily.dtype == np.int64
    assert (data.hourly >= 0).all()
    assert np.array_equal(data.daily, data.hourly.sum(axis=1))


def test_funnel_steps_never_exceed_their_predecessor_unless_explained() -> None:
    exempt_seen = 0
    for seed in range(40):
        ep = episode(seed, "mixed", "hard")
        data, truth = ep.public.data, ep.truth
        exempt = {r.day for r in truth.injections if r.family == "instrumentation_data_quality_issue"}
        exempt |= {d.day for d in truth.distractors if d.kind == "incomplete_last_day"}
        exempt_seen += len(exempt)
        for day in range(len(data.dates)):
            if day in exempt:
                continue
            assert (np.diff(data.hourly[day], axis=-1) <= 0).all(), (seed, data.dates[day])
            assert (np.diff(data.daily[day]) <= 0).all(), (seed, data.dates[day])
    assert exempt_seen > 40  # the sweep really exercised the exemptions


def test_injected_values_never_repeat_across_dates() -> None:
    by_entity: dict[tuple[str, str], list[float]] = defaultdict(list)
    for seed in range(60):
        ep = episode(seed, "mixed", "hard")
        observed = [r.observed_value for r in ep.truth.expected_rows]
        assert len(set(observed)) == len(observed), seed
        for row in ep.truth.expected_rows:
            by_entity[(row.entity_type, row.entity_name)].append(row.observed_value)
    for entity, values in by_entity.items():
        assert len(set(values)) == len(values), entity


def test_unperturbed_dates_match_the_null_scenario() -> None:
    compared = 0
    for seed in range(10):
        null = reset_episode(seed=seed, scenario_family="null", difficulty="easy")
        mixed = reset_episode(seed=seed, scenario_family="mixed", difficulty="easy", anomaly_count=4)
        assert not mixed.truth.distractors
        perturbed = {r.day for r in mixed.truth.injections}
        assert len(perturbed) == 4
        for day in range(len(null.public.dates)):
            same = np.array_equal(null.public.data.hourly[day], mixed.public.data.hourly[day])
            assert same == (day not in perturbed), (seed, day)
            compared += same
    assert compared == 10 * 24


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), difficulty=st.sampled_from(["easy", "medium", "hard"]))
def test_build_episode_is_deterministic(seed: int, difficulty: str) -> None:
    config = resolve_episode_config(seed=seed, scenario_family="mixed", difficulty=difficulty)
    first, second = build_episode(config), build_episode(config)
    assert first.public.dates == second.public.dates
    assert np.array_equal(first.public.data.hourly, second.public.data.hourly)
    assert np.array_equal(first.public.panel.values, second.public.panel.values, equal_nan=True)
    assert first.public.annotations == second.public.annotations
    assert first.truth.expected_rows == second.truth.expected_rows
    assert first.truth.neutral_keys == second.truth.neutral_keys


def _paired_custom_episodes(seed: int, first: dict, second: dict) -> tuple:
    alone = custom_episode(seed, [first], difficulty="easy")
    together = custom_episode(seed, [first, second], difficulty="easy")
    return alone.public.data, together.public.data


@pytest.mark.parametrize("family", ANOMALY_TYPES)
def test_a_second_incident_changes_only_its_own_date(family: str) -> None:
    """Perturbed dates are independent of each other too: adding an incident on date e leaves every other date,
    the first incident's date included, exactly as it was."""
    dates = [d.isoformat() for d in window_dates()]
    for seed in range(3):
        first = {
            "family": ANOMALY_TYPES[(ANOMALY_TYPES.index(family) + 1 + seed) % len(ANOMALY_TYPES)],
            "date": dates[2 + seed],
        }
        second = {"family": family, "date": dates[10 + seed]}
        alone, together = _paired_custom_episodes(seed, first, second)
        changed = [day for day in range(len(dates)) if not np.array_equal(alone.hourly[day], together.hourly[day])]
        assert changed == [10 + seed], (seed, changed)


def _flat_plan(traffic: float, rates: list[float]) -> FunnelPlan:
    """A plan with the same expectations on every date and hour."""
    days = len(window_dates())
    return FunnelPlan(
        dates=window_dates(),
        traffic=np.full((days, HOURS), traffic),
        step_rates=np.broadcast_to(np.array(rates), (days, HOURS, N_STEPS)).copy(),
        extra_opens=np.zeros((days, HOURS)),
        duplicate_factor=np.ones((days, HOURS, N_EVENTS)),
        hour_shift=np.zeros(days, dtype=np.int64),
        ingested_fraction=np.ones((days, HOURS)),
    )


def _z(values: np.ndarray) -> float:
    """How many standard errors the mean of values lies from 0."""
    spread = values.std()
    return 0.0 if spread == 0 and values.mean() == 0 else float(values.mean() / (spread / np.sqrt(len(values))))


@pytest.mark.parametrize(("traffic", "rates"), [(900.0, [0.62, 0.34, 0.56, 0.93]), (6.0, [0.5, 0.9, 0.05, 1.0])])
def test_counts_follow_poisson_opens_and_binomial_steps(traffic: float, rates: list[float]) -> None:
    """Over many dates and hours of fixed seeds, opens have the mean and variance of a Poisson count, and each
    step given its predecessor n has the mean n*r and variance n*r*(1-r) of a Binomial draw (within 5 standard
    errors)."""
    plan = _flat_plan(traffic, rates)
    counts = np.concatenate([draw_counts(plan, EpisodeKey.of(seed)).hourly.reshape(-1, N_EVENTS) for seed in range(40)])
    opens = counts[:, 0].astype(float)
    assert abs(_z(opens - traffic)) < 5
    assert abs(_z((opens - traffic) ** 2 - traffic)) < 5
    for step, rate in enumerate(rates):
        before, after = counts[:, step].astype(float), counts[:, step + 1].astype(float)
        assert (after <= before).all()
        residual = after - rate * before
        assert abs(_z(residual)) < 5, step
        assert abs(_z(residual**2 - before * rate * (1 - rate))) < 5, step
    assert (counts[:, 4] == counts[:, 3]).all() == (rates[3] == 1.0)


STREAMS = st.sampled_from(["funnel-plan", "funnel-noise", "funnel-draw", "schedule", "anomaly/funnel_break"])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, MAX_SEED), stream=STREAMS, index=st.integers(0, 2**32), secret=st.text(min_size=1))
@example(seed=0, stream="funnel-draw", index=0, secret="s")
@example(seed=MAX_SEED, stream="schedule", index=2**32, secret="\u00e9")
def test_streams_depend_on_seed_name_index_and_secret(seed: int, stream: str, index: int, secret: str) -> None:
    public, held_out = EpisodeKey.of(seed), EpisodeKey.of(seed, secret)

    def first_words(key: EpisodeKey, name: str = stream, position: int = index) -> list[int]:
        return derive_rng(key, name, position).integers(0, 2**63, 4).tolist()

    assert first_words(public) == first_words(EpisodeKey.of(seed))  # the same stream every time
    assert first_words(held_out) == first_words(EpisodeKey.of(seed, secret))
    others = [
        first_words(held_out),
        first_words(public, position=index + 1),
        first_words(public, name=stream + "/"),
        first_words(EpisodeKey.of(seed ^ 1)),
        first_words(EpisodeKey.of(seed, secret + "x")),
    ]
    assert first_words(public) not in others
    assert len({tuple(words) for words in others}) == len(others)
    assert repr(held_out) == f"EpisodeKey(seed={seed}, held_out=True)"  # the secret's digest is never printed
