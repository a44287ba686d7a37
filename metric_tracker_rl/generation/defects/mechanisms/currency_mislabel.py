"""currency_mislabel: one mobile platform's app labels one country's purchases EUR while their values stay in the
country's currency: revenue_usd there is converted at the wrong rate (a currency the country does not use)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, span
from metric_tracker_rl.world.events import COUNTRY_CURRENCY, CURRENCIES, EventLog, event_code
from metric_tracker_rl.world.metrics_layer import counted_events
from metric_tracker_rl.world.segments import Segment

MISLABEL = "EUR"  # the currency a mislabelling app sends
MISLABEL_DAYS = (5, 8)  # dates until a hotfix reaches the mislabelling build's users (about a week)
MISLABEL_MIN_PURCHASES = 2  # a mislabelled segment's counted purchases in its own currency on each of its dates


@register_defect("currency_mislabel", "join")
def currency_mislabel(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    users = log.users
    days = span(rng, log, MISLABEL_DAYS)
    events = log.events
    local = np.array([CURRENCIES.index(COUNTRY_CURRENCY[c]) for c in users.country.values])[places.country]
    # Purchases the metrics layer counts: a segment with none on a date would show no change there.
    paid = np.flatnonzero(
        counted_events(log)
        & (events.name == event_code("payment_successful"))
        & (events.currency == local[events.session])
        & np.isin(places.day, days)[events.session]
    )
    counts = np.zeros((len(users.platform.values), len(users.country.values), log.num_days), dtype=np.int64)
    np.add.at(
        counts,
        (places.platform[events.session[paid]], places.country[events.session[paid]], places.day[events.session[paid]]),
        1,
    )
    # A mobile app's, in a country whose currency is neither the label's nor USD, with purchases on every date.
    candidates = [
        (p, c)
        for p, name in enumerate(users.platform.values)
        if name != "web"
        for c, country in enumerate(users.country.values)
        if COUNTRY_CURRENCY[country] not in (MISLABEL, "USD")
    ]
    enough = [pc for pc in candidates if counts[pc[0], pc[1], list(days)].min() >= MISLABEL_MIN_PURCHASES]
    pool = enough or [max(candidates, key=lambda pc: int(counts[pc[0], pc[1], list(days)].min()))]
    platform, country = pool[int(rng.integers(len(pool)))]
    touched = ((places.platform == platform) & (places.country == country) & np.isin(places.day, days))[
        events.session
    ] & (events.currency == local[events.session])
    currency = np.where(touched, CURRENCIES.index(MISLABEL), events.currency).astype(np.int8)
    log = replace(log, events=replace(events, currency=currency))
    segment = Segment(platform=users.platform.values[platform], country=users.country.values[country])
    return log, DefectRecord(
        "currency_mislabel",
        days,
        segment,
        "revenue_usd",
        f"{segment.label()}: the app labelled {int(touched.sum())} values {MISLABEL}",
    )
