"""Where the audit's recording faults land, shared by their mechanisms: a block of a date's hours (a collector's
outage or a replayed batch), the counted purchases of each segment by date (a fault on revenue needs some on
every date it lists, or it would move nothing there), and the country or mobile app version drawn by them."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.defects.log_edits import SessionPlaces
from metric_tracker_rl.world.events import (
    COUNTRY_CURRENCY,
    CURRENCIES,
    MICROS_PER_SECOND,
    EventLog,
    day_start_micros,
    event_code,
)
from metric_tracker_rl.world.metrics_layer import counted_events

HOUR_US = 3600 * MICROS_PER_SECOND
BLOCK_EARLIEST_HOUR = 8  # a block starts in the day's busier hours, so it holds a clear share of the date's traffic


def hour_block(rng: np.random.Generator, day: int, hours: tuple[int, int]) -> tuple[int, int]:
    """A drawn block of whole hours of reporting date `day` (UTC microseconds, end excluded), ending before the
    date does."""
    length = int(rng.integers(hours[0], hours[1] + 1))
    first = int(rng.integers(BLOCK_EARLIEST_HOUR, 24 - length))
    start = day_start_micros(day) + first * HOUR_US
    return start, start + length * HOUR_US


def counted_purchases(log: EventLog, places: SessionPlaces) -> np.ndarray:
    """(E,) positions of the payment events the metrics layer counts (each repeat left out)."""
    events = log.events
    return np.flatnonzero(
        counted_events(log) & (events.name == event_code("payment_successful")) & (places.day[events.session] >= 0)
    )


def fewest_on(counts: np.ndarray, days: tuple[int, ...]) -> np.ndarray:
    """For counts by (..., date), the fewest on any of `days`, per leading index."""
    fewest: np.ndarray = counts[..., list(days)].min(axis=-1)
    return fewest


def drawn_holding(fewest: np.ndarray, least: int, rng: np.random.Generator) -> tuple[int, ...]:
    """A drawn index of `fewest` (each place's fewest purchases on any of a defect's dates) holding at least `least`,
    or where none does, one holding the most."""
    pool = np.argwhere(fewest >= least)
    if not len(pool):
        pool = np.argwhere(fewest == fewest.max())
    return tuple(int(code) for code in pool[int(rng.integers(len(pool)))])


def paying_country(
    log: EventLog, places: SessionPlaces, own: list[int], days: tuple[int, ...], least: int, rng: np.random.Generator
) -> tuple[int, int]:
    """(country, its currency): drawn among the countries `own` (codes of the users' countries) by their counted
    purchases in their own currency on each of `days` (drawn_holding)."""
    events = log.events
    countries = log.users.country.values
    local = np.array([CURRENCIES.index(COUNTRY_CURRENCY[country]) for country in countries])
    paid = counted_purchases(log, places)
    paid = paid[events.currency[paid] == local[places.country[events.session[paid]]]]
    counts = np.zeros((len(countries), log.num_days), dtype=np.int64)
    np.add.at(counts, (places.country[events.session[paid]], places.day[events.session[paid]]), 1)
    country = own[drawn_holding(fewest_on(counts[own], days), least, rng)[0]]
    return country, int(local[country])


def paying_mobile_version(
    log: EventLog, places: SessionPlaces, days: tuple[int, ...], least: int, rng: np.random.Generator
) -> tuple[int, int]:
    """(platform, app version) codes: a mobile app version drawn by its counted purchases on each of `days`
    (drawn_holding)."""
    paid = log.events.session[counted_purchases(log, places)]
    versions = log.sessions.app_version.values
    counts = np.zeros((len(log.users.platform.values), len(versions), log.num_days), dtype=np.int64)
    np.add.at(counts, (places.platform[paid], places.version[paid], places.day[paid]), 1)
    mobile = [p for p, name in enumerate(log.users.platform.values) if name != "web"]
    at, version = drawn_holding(fewest_on(counts[mobile], days), least, rng)
    return mobile[at], version
