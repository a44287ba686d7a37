"""inverted_rate: the rates provider switches one currency's quote direction for a few daily loads (dollars per unit
instead of units per dollar) and the load checks no range, so currency_rates holds the reciprocal there and
revenue_usd in the country paying in that currency is multiplied many times over. Users paid the same: the events
are untouched; the trace is in currency_rates alone, the currency's rows on those dates far from its others."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, span
from metric_tracker_rl.generation.defects.places import paying_country
from metric_tracker_rl.world.events import COUNTRY_CURRENCY, CURRENCIES, EventLog
from metric_tracker_rl.world.segments import Segment

INVERTED_DAYS = (1, 3)  # daily loads until someone notices the feed changed
MIN_PURCHASES = 2  # the country's counted purchases in its currency on each of the dates
FAR_FROM_PARITY = 3.0  # a currency whose rate is at least this far from 1 (either way): its reciprocal is far off


@register_defect("inverted_rate", "join")
def inverted_rate(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    days = span(rng, log, INVERTED_DAYS)
    countries = log.users.country.values
    payers = list(COUNTRY_CURRENCY.values())
    typical = np.nanmedian(log.units_per_usd, axis=1)
    # A currency one country alone pays in, whose reciprocal is far from its rate.
    own = [
        c
        for c, country in enumerate(countries)
        if payers.count(COUNTRY_CURRENCY[country]) == 1
        and max(
            typical[CURRENCIES.index(COUNTRY_CURRENCY[country])],
            1 / typical[CURRENCIES.index(COUNTRY_CURRENCY[country])],
        )
        >= FAR_FROM_PARITY
    ]
    country, currency = paying_country(log, places, own, days, MIN_PURCHASES, rng)
    rates = log.units_per_usd.copy()
    rates[currency, list(days)] = 1 / rates[currency, list(days)]
    log = replace(log, units_per_usd=rates)
    segment = Segment(country=countries[country])
    return log, DefectRecord(
        "inverted_rate",
        days,
        segment,
        "revenue_usd",
        f"{segment.label()}: currency_rates holds dollars per {CURRENCIES[currency]} on {len(days)} dates",
    )
