"""The seeded baseline funnel.

Generation has two stages so that anomalies change the data the way a real incident would:
1. `baseline_plan` draws the *expected* traffic and per-hour step conversion probabilities
   (weekly seasonality, weekday/weekend hour-of-day curves, a mild trend, day- and hour-level noise).
   Injectors then edit this plan (e.g. a step's conversion collapses for some hours).
2. `draw_counts` turns the plan into integer counts: app opens are Poisson around an over-dispersed
   mean and each later step is Binomial from the step before it, so a step can only exceed its
   predecessor where the plan says events are duplicated.
An incident on one date never changes the noise of another: dates whose plan an injector left alone take
their counts from one draw over the plan as it was made, and every date the injectors touched draws again
from its own stream.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from metric_tracker_rl.catalog.published import COUNT_COLUMNS
from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng

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
    shares: np.ndarray = curve / curve.sum()
    return shares


# A food-ordering app: lunch and dinner peaks on weekdays; later, broader days on weekends.
WEEKDAY_HOUR_SHARE = _hour_curve([(8.0, 1.2, 0.25), (12.5, 1.3, 0.9), (19.5, 1.6, 1.2)], floor=0.03)
WEEKEND_HOUR_SHARE = _hour_curve([(11.5, 2.0, 0.7), (14.0, 2.0, 0.4), (20.0, 2.0, 1.0), (23.5, 1.5, 0.3)], floor=0.05)
# Late-night sessions browse more and buy less.
HOUR_RATE_FACTORS = np.where((np.arange(HOURS) < 6) | (np.arange(HOURS) >= 23), 0.9, 1.0)


@dataclass(frozen=True)
class Calendar:
    """The window's dates and their labels: the same for every episode, so made once per window length."""

    dates: tuple[dt.date, ...]
    iso_dates: tuple[str, ...]
    weekday_names: tuple[str, ...]
    weekday_index: np.ndarray  # (D,) 0 = Monday, read-only
    weekend: np.ndarray  # (D,) bool, read-only


@cache
def window_calendar(num_days: int = NUM_DAYS) -> Calendar:
    dates = tuple(WINDOW_START + dt.timedelta(days=i) for i in range(num_days))
    weekday_index = np.array([d.weekday() for d in dates], dtype=np.int64)
    weekend = weekday_index >= 5
    for array in (weekday_index, weekend):
        array.setflags(write=False)
    return Calendar(
        dates, tuple(d.isoformat() for d in dates), tuple(d.strftime("%A") for d in dates), weekday_index, weekend
    )


def window_dates(num_days: int = NUM_DAYS) -> list[dt.date]:
    return list(window_calendar(num_days).dates)


def is_weekend(dates: list[dt.date]) -> np.ndarray:
    return np.array([d.weekday() >= 5 for d in dates])


def stage_means(traffic: np.ndarray, step_rates: np.ndarray) -> np.ndarray:
    """Expected opens per date and hour (D, 24, 5) whose journey stops at each event: the k-th column counts
    the opens that reach event k and go no further.

    Splitting a Poisson number of opens by where each one stops gives independent Poisson counts per stop
    (Poisson thinning), and the count of an event is the sum of the stops at it and after it. So one Poisson
    draw of these means gives exactly the model "opens are Poisson, each step is Binomial from the step
    before", in one call for every date instead of one call per date and step.
    """
    reach = np.empty((N_EVENTS, *traffic.shape))  # expected opens that reach each event, event axis first
    reach[0] = traffic
    for step in range(N_STEPS):
        np.multiply(reach[step], step_rates[..., step], out=reach[step + 1])
    reach[:N_STEPS] -= reach[1:]  # a rate is at most 1, so no difference is negative
    # C order (event axis last in memory too): numpy's Poisson sampler walks a contiguous array about 15% faster,
    # which is worth the copy.
    return np.ascontiguousarray(np.moveaxis(reach, 0, -1))


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
    # stage_means of the plan as it was made, before any injector edited it (see draw_counts).
    initial_stage_means: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.initial_stage_means = stage_means(self.traffic, self.step_rates)

    @property
    def num_days(self) -> int:
        return len(self.dates)


@dataclass(frozen=True)
class Seasonality:
    """The parts of a plan that only depend on the calendar, made once per window length."""

    daily_profile: np.ndarray  # (D,) weekday factor times trend
    hour_share: np.ndarray  # (D, 24) the hour-of-day curve of the date's day type
    rate_factor: np.ndarray  # (D, 4) weekend lift of each step's conversion
    noise_scale: np.ndarray  # (D + D*24 + D*4,) sigma of the day, hour and rate noise, in that order


@cache
def seasonality(num_days: int = NUM_DAYS) -> Seasonality:
    calendar = window_calendar(num_days)
    weekend = calendar.weekend[:, None]
    noise_scale = np.concatenate(
        [
            np.full(num_days, DAY_NOISE_SIGMA),
            np.full(num_days * HOURS, HOUR_NOISE_SIGMA),
            np.full(num_days * N_STEPS, RATE_NOISE_SIGMA),
        ]
    )
    parts = Seasonality(
        daily_profile=WEEKDAY_FACTORS[calendar.weekday_index] * (1.0 + DAILY_TREND * np.arange(num_days)),
        hour_share=np.where(weekend, WEEKEND_HOUR_SHARE, WEEKDAY_HOUR_SHARE),
        rate_factor=np.where(weekend, WEEKEND_RATE_FACTORS, 1.0),
        noise_scale=noise_scale,
    )
    for array in (parts.daily_profile, parts.hour_share, parts.rate_factor, parts.noise_scale):
        array.setflags(write=False)
    return parts


def baseline_plan(key: EpisodeKey, num_days: int = NUM_DAYS) -> FunnelPlan:
    """The expected traffic and conversion of every date and hour, before any incident or distractor.

    All the plan's randomness comes from two draws: the log-normal day and hour noise and the logit noise of
    the rates share one standard-normal draw (scaled per part), the level and the step rates one uniform draw."""
    rng = derive_rng(key, "funnel-plan")
    parts = seasonality(num_days)
    uniform = rng.random(1 + N_STEPS)
    noise = rng.standard_normal(parts.noise_scale.shape[0]) * parts.noise_scale
    hours_end = num_days * (1 + HOURS)
    lognormal = np.exp(noise[:hours_end])

    level = BASE_DAILY_OPENS * (0.8 + 0.45 * uniform[0])
    daily_mean = level * parts.daily_profile * lognormal[:num_days]
    shares = parts.hour_share * lognormal[num_days:hours_end].reshape(num_days, HOURS)
    traffic = shares * (daily_mean / shares.sum(axis=1))[:, None]

    base_rates = np.minimum(BASE_STEP_RATES * (0.92 + 0.16 * uniform[1:]), 0.97)
    day_rates = base_rates * parts.rate_factor
    logit = np.log(day_rates / (1.0 - day_rates)) + noise[hours_end:].reshape(num_days, N_STEPS)
    day_rates = 1.0 / (1.0 + np.exp(-logit))
    step_rates = np.minimum(day_rates[:, None, :] * HOUR_RATE_FACTORS[:, None], 0.995)

    return FunnelPlan(
        dates=list(window_calendar(num_days).dates),
        traffic=traffic,
        step_rates=step_rates,
        extra_opens=np.zeros((num_days, HOURS)),
        duplicate_factor=np.ones((num_days, HOURS, N_EVENTS)),
        hour_shift=np.zeros(num_days, dtype=np.int64),
        ingested_fraction=np.ones((num_days, HOURS)),
    )


@cache
def date_positions(dates: tuple[str, ...]) -> dict[str, int]:
    """Position of each ISO date in a window (cached: every episode has the same window; read only)."""
    return {date: i for i, date in enumerate(dates)}


@dataclass(frozen=True)
class FunnelData:
    """The public data of an episode: integer counts per date and hour, and their daily sums."""

    dates: tuple[str, ...]
    weekdays: tuple[str, ...]
    weekend: np.ndarray  # (D,) bool
    hourly: np.ndarray  # (D, 24, 5) int64
    daily: np.ndarray = field(init=False)  # (D, 5) int64
    _date_positions: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # hourly.sum(axis=1) (integer sums are exact in any order), at a third of the cost on an array this small.
        object.__setattr__(self, "daily", np.einsum("dhe->de", self.hourly))
        object.__setattr__(self, "_date_positions", date_positions(self.dates))
        for array in (self.hourly, self.daily, self.weekend):
            array.setflags(write=False)

    def date_index(self, date: str) -> int:
        """Position of a date of the window (KeyError for any other)."""
        return self._date_positions[date]


def _days_where(mask: np.ndarray | np.bool_) -> set[int]:
    return set(np.flatnonzero(mask).tolist())


def draw_counts(plan: FunnelPlan, key: EpisodeKey) -> FunnelData:
    """Integer counts for the plan: one Poisson draw of every date's stops as the plan was made, then every
    date an injector touched on its own stream (drawn again where its expectations changed, then its extra
    opens, duplicates, clock shift and lost events). A date's counts therefore depend only on its own plan."""
    stops = derive_rng(key, "funnel-noise").poisson(plan.initial_stage_means)
    means = stage_means(plan.traffic, plan.step_rates)
    redrawn = _days_where((means != plan.initial_stage_means).any(axis=(1, 2)))
    # Whole-plan checks first: most plans hold no extra opens, duplicates or lost events at all.
    extra = _days_where(plan.extra_opens.any(axis=1)) if plan.extra_opens.any() else set()
    surplus = (
        _days_where((plan.duplicate_factor != 1.0).any(axis=(1, 2))) if (plan.duplicate_factor != 1.0).any() else set()
    )
    loss = _days_where((plan.ingested_fraction < 1.0).any(axis=1)) if (plan.ingested_fraction < 1.0).any() else set()
    shifted = _days_where(plan.hour_shift != 0)
    date_rngs = {day: derive_rng(key, "funnel-draw", day) for day in sorted(redrawn | extra | surplus | loss | shifted)}
    for day in sorted(redrawn):
        stops[day] = date_rngs[day].poisson(means[day])
    hourly = stops  # each event's count is the sum of the stops at it and after it
    for event in range(N_STEPS - 1, -1, -1):
        hourly[..., event] += hourly[..., event + 1]
    for day, rng in date_rngs.items():
        counts = hourly[day]
        if day in extra:
            counts[:, 0] += rng.poisson(plan.extra_opens[day])
        if day in surplus:
            counts += rng.poisson(counts * (plan.duplicate_factor[day] - 1.0))
        if day in shifted:
            counts[:] = np.roll(counts, int(plan.hour_shift[day]), axis=0)
        if day in loss:
            counts[:] = rng.binomial(counts, plan.ingested_fraction[day][:, None])
    calendar = window_calendar(plan.num_days)
    if tuple(plan.dates) != calendar.dates:
        raise ValueError("a funnel plan covers the window's dates, in order")
    return FunnelData(
        dates=calendar.iso_dates, weekdays=calendar.weekday_names, weekend=calendar.weekend, hourly=hourly
    )
