"""missing_rate_rows: the daily load of currency_rates misses one currency's rows on some dates (the rates
provider's file left it out), so the dashboard's inner join to the rates drops every purchase in that currency on
those dates: revenue_usd falls in the country paying in it. Users paid the same: purchases in that currency are in
the events on dates currency_rates has no row for it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, span
from metric_tracker_rl.generation.defects.places import paying_country
from metric_tracker_rl.world.events import COUNTRY_CURRENCY, CURRENCIES, EventLog
from metric_tracker_rl.world.segments import Segment

MISSING_DAYS = (1, 3)
MIN_PURCHASES = 2  # the country's counted purchases in its currency on each of the dates


@register_defect("missing_rate_rows", "join")
def missing_rate_rows(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    days = span(rng, log, MISSING_DAYS)
    countries = log.users.country.values
    # A currency one country alone pays in (not USD, which every country's foreign cards pay in).
    payers = list(COUNTRY_CURRENCY.values())
    own = [
        c
        for c, country in enumerate(countries)
        if COUNTRY_CURRENCY[country] != "USD" and payers.count(COUNTRY_CURRENCY[country]) == 1
    ]
    country, currency = paying_country(log, places, own, days, MIN_PURCHASES, rng)
    rates = log.units_per_usd.copy()
    rates[currency, list(days)] = np.nan  # no row: the table builder leaves it out
    log = replace(log, units_per_usd=rates)
    segment = Segment(country=countries[country])
    return log, DefectRecord(
        "missing_rate_rows",
        days,
        segment,
        "revenue_usd",
        f"{segment.label()}: currency_rates has no {CURRENCIES[currency]} row on {len(days)} dates",
    )
