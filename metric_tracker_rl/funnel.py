"""The seeded baseline funnel.

Generation has two stages so that anomalies change the data the way a real incident would:
1. `baseline_plan` draws the *expected* traffic and per-hour step conversion probabilities
   (weekly seasonality, weekday/weekend hour-of-day curves, a mild trend, day- and hour-level noise).
   Injectors then edit this plan (e.g. a step's conversion collapses for some hours).
2. `draw_counts` turns the plan into integer counts: app opens are Poisson around an over-dispersed
   mean and each later step is Binomial from the step before it, so a step can only exceed its
   predecessor where the plan says events are duplicated.
Each date draws from its own stream, so an incident on one date never changes the noise of another.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from metric_tracker_rl.catalog import COUNT_COLUMNS
from metric_tracker_rl.seeding import EpisodeKey, derive_rng

# The calendar is part of the product, never derived from today's date.
WINDOW_START = dt.date(2026, 3, 2)  # a Monday
NUM_DAYS = 28
HOURS = 24
N_EVENTS = len(COUNT_COLUMNS)
N_STEPS = N_EVENTS - 1

BASE_DAILY_OPENS = 40_000.0
WEEKDAY_FACTORS = np.array([0.92, 0.90, 0.93, 0.97, 1.10, 1.18, 1.12])  # Mon..Sun
DAILY_TREND = 0.001
DAY_NOISE_SIGMA = 0.03
HOUR_NOISE_SIGMA = 0.06
BASE_STEP_RATES = np.array([0.62, 0.34, 0.56, 0.93])
WEEKEND_RATE_FACTORS = np.array([1.0, 1.06, 1.03, 1.0])
RATE_NOISE_SIGMA = 0.04  # on the logit scale, per date and step


def _hour_curve(peaks: list[tuple[float, float, float]], floor: float) -> np.ndarray:
    hours = np.arange(HOURS) + 0.5
    curve = np.full(HOURS, floor)
    for centre, width, weight in peaks:
        distance = np.minimum(np.abs(hours - centre), HOURS - np.abs(hours - centre))
        curve += weight * np.exp(-0.5 * (distance / width) ** 2)
    return curve / curve.sum()


# A food-ordering app: lunch and dinner peaks on weekdays; later, broader days on weekends.
WEEKDAY_HOUR_SHARE = _hour_curve([(8.0, 1.2, 0.25), (12.5, 1.3, 0.9), (19.5, 1.6, 1.2)], floor=0.03)
WEEKEND_HOUR_SHARE = _hour_curve([(11.5, 2.0, 0.7), (14.0, 2.0, 0.4), (20.0, 2.0, 1.0), (23.5, 1.5, 0.3)],
                                 floor=0.05)
# Late-night sessions browse more and buy less.
HOUR_RATE_FACTORS = np.where((np.arange(HOURS) < 6) | (np.arange(HOURS) >= 23), 0.9, 1.0)


def window_dates(num_days: int = NUM_DAYS) -> list[dt.date]:
    return [WINDOW_START + dt.timedelta(days=i) for i in range(num_days)]


def is_weekend(dates: list[dt.date]) -> np.ndarray:
    return np.array([d.weekday() >= 5 for d in dates])


@dataclass
class FunnelPlan:
    """Expected values that the counts are drawn from; injectors edit these arrays in place."""

    dates: list[dt.date]
    traffic: np.ndarray  # (D, 24) expected app opens
    step_rates: np.ndarray  # (D, 24, 4) probability of reaching the next step
    extra_opens: np.ndarray  # (D, 24) expected opens that never convert (e.g. bots)
    duplicate_factor: np.ndarray  # (D, 24, 5) >= 1: events logged this many times on average
    hour_shift: np.ndarray  # (D,) hours by which the date's timestamps are shifted
    ingested_fraction: np.ndarray  # (D, 24) share of events that reached the warehouse

    @property
    def num_days(self) -> int:
        return len(self.dates)


def baseline_plan(key: EpisodeKey, num_days: int = NUM_DAYS) -> FunnelPlan:
    rng = derive_rng(key, "funnel-plan")
    dates = window_dates(num_days)
    weekend = is_weekend(dates)
    weekday_index = np.array([d.weekday() for d in dates])
    day_index = np.arange(num_days)

    level = BASE_DAILY_OPENS * rng.uniform(0.8, 1.25)
    daily_mean = (level * WEEKDAY_FACTORS[weekday_index] * (1.0 + DAILY_TREND * day_index)
                  * rng.lognormal(0.0, DAY_NOISE_SIGMA, num_days))
    shares = np.where(weekend[:, None], WEEKEND_HOUR_SHARE, WEEKDAY_HOUR_SHARE)
    hour_noise = rng.lognormal(0.0, HOUR_NOISE_SIGMA, (num_days, HOURS))
    shares = shares * hour_noise
    shares /= shares.sum(axis=1, keepdims=True)
    traffic = daily_mean[:, None] * shares

    base_rates = np.minimum(BASE_STEP_RATES * rng.uniform(0.92, 1.08, N_STEPS), 0.97)
    day_rates = np.where(weekend[:, None], base_rates * WEEKEND_RATE_FACTORS, base_rates)
    logit = np.log(day_rates / (1 - day_rates)) + rng.normal(0.0, RATE_NOISE_SIGMA, (num_days, N_STEPS))
    day_rates = 1.0 / (1.0 + np.exp(-logit))
    step_rates = np.clip(day_rates[:, None, :] * HOUR_RATE_FACTORS[None, :, None], 0.0, 0.995)

    return FunnelPlan(
        dates=dates,
        traffic=traffic,
        step_rates=step_rates,
        extra_opens=np.zeros((num_days, HOURS)),
        duplicate_factor=np.ones((num_days, HOURS, N_EVENTS)),
        hour_shift=np.zeros(num_days, dtype=np.int64),
        ingested_fraction=np.ones((num_days, HOURS)),
    )


@dataclass(frozen=True)
class FunnelData:
    """The public data of an episode: integer counts per date and hour, and their daily sums."""

    dates: tuple[str, ...]
    weekdays: tuple[str, ...]
    weekend: np.ndarray  # (D,) bool
    hourly: np.ndarray  # (D, 24, 5) int64
    daily: np.ndarray = field(init=False)  # (D, 5) int64

    def __post_init__(self) -> None:
        object.__setattr__(self, "daily", self.hourly.sum(axis=1))
        object.__setattr__(self, "_date_positions", {date: i for i, date in enumerate(self.dates)})
        for array in (self.hourly, self.daily, self.weekend):
            array.setflags(write=False)

    def date_index(self, date: str) -> int:
        """Position of a date of the window (KeyError for any other)."""
        return self._date_positions[date]


def draw_counts(plan: FunnelPlan, key: EpisodeKey) -> FunnelData:
    hourly = np.empty((plan.num_days, HOURS, N_EVENTS), dtype=np.int64)
    # Which dates an incident touched, decided for all dates at once (most dates take none of the branches).
    surplus = plan.duplicate_factor - 1.0
    has_extra = plan.extra_opens.any(axis=1)
    has_surplus = surplus.any(axis=(1, 2))
    has_loss = (plan.ingested_fraction < 1.0).any(axis=1)
    step_rates = np.ascontiguousarray(plan.step_rates.transpose(0, 2, 1))  # (D, steps, 24)
    for day in range(plan.num_days):
        rng = derive_rng(key, "funnel-draw", day)
        counts = hourly[day]
        counts[:, 0] = rng.poisson(plan.traffic[day])
        for step in range(N_STEPS):
            counts[:, step + 1] = rng.binomial(counts[:, step], step_rates[day, step])
        if has_extra[day]:
            counts[:, 0] += rng.poisson(plan.extra_opens[day])
        if has_surplus[day]:
            counts += rng.poisson(counts * surplus[day])
        if plan.hour_shift[day]:
            counts[:] = np.roll(counts, int(plan.hour_shift[day]), axis=0)
        if has_loss[day]:
            counts[:] = rng.binomial(counts, plan.ingested_fraction[day][:, None])
    return FunnelData(
        dates=tuple(d.isoformat() for d in plan.dates),
        weekdays=tuple(d.strftime("%A") for d in plan.dates),
        weekend=is_weekend(plan.dates),
        hourly=hourly,
    )
