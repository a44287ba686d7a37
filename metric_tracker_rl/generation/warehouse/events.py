"""Raw events from a segmented plan: one world seen at two grains.

The plan (generation/segment_plan.py) holds every cell's expected opens by date and hour, its step rates, and each
leaf's (channel x user type) share and conversion factors. Here a sample of that traffic (`SAMPLE_RATE` of the
expected opens) becomes sessions, each reaching the funnel steps its leaf's rates give it, owned by users, and
written as the events an app sends: the funnel's five among session starts, screen views, engagement, first opens
and errors. Every step is vectorised over all sessions, and every stream is derived by name from the episode key
(catalog.seeding), so an episode's events depend on its seed alone.
"""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.catalog.tiers import WAREHOUSE_SAMPLE_RATE
from metric_tracker_rl.generation.identities import draw_identities
from metric_tracker_rl.generation.segment_plan import SegmentedPlan
from metric_tracker_rl.generation.warehouse.sessions import SessionDraw
from metric_tracker_rl.generation.warehouse.standing import (
    OFFLINE_SHARE,
    flag_standing_events,
    resent_purchases,
    standing_repeats,
    standing_sessions,
)
from metric_tracker_rl.sql.columns import Labels
from metric_tracker_rl.world.events import (
    COUNTRY_CURRENCY,
    CURRENCIES,
    MICROS_PER_SECOND,
    EventLog,
    Events,
    Sessions,
    Users,
    day_start_micros,
    event_code,
    reporting_day,
)
from metric_tracker_rl.world.funnel import N_STEPS
from metric_tracker_rl.world.metrics_layer import LATE_CUTOFF_DAYS

SAMPLE_RATE = WAREHOUSE_SAMPLE_RATE  # of the world's expected app opens: the sessions the export holds
PRIOR_SESSIONS_MAX = 40  # a returning user's sessions before the window: uniform from 1
SESSIONS_PER_RETURNING_USER = 4.0  # a returning user's sessions in the window, on average
LOGGED_IN_SHARE = 0.6  # of returning users: those with a login id
# Of a country's sessions: analytics storage denied (the app then sends cookieless pings). Consent banners in the
# EU's and the UK's are declined far more often.
CONSENT_DENIED_SHARE: dict[str, float] = {"GB": 0.12, "DE": 0.12, "FR": 0.12}
CONSENT_DENIED_ELSEWHERE = 0.03
SCREEN_VIEWS_MEAN = 0.6  # screen views per session beside the funnel's events (at most MAX_SCREEN_VIEWS)
MAX_SCREEN_VIEWS = 4
EXCEPTION_SHARE = 0.03  # of sessions: one app_exception
EVENT_GAP_S = 25.0  # mean seconds between a session's events after its open
INGESTION_DELAY_S = 90.0  # mean seconds from an event to its ingestion
BASKET_USD = (3.1, 0.45)  # log-normal basket value in USD: mu, sigma of its log
ITEM_SHARE = 0.4  # an item added to the cart is worth this share of the basket
RATE_DRIFT = 0.004  # daily standard deviation of a currency's log rate
FOREIGN_CURRENCY_SHARE = 0.1  # of sessions outside the US: paid by a card billed in US dollars
USD_RATES: dict[str, float] = {"USD": 1.0, "GBP": 0.79, "EUR": 0.92, "BRL": 5.0, "INR": 83.0, "JPY": 150.0, "MXN": 17.0}

# A session's events in order: one column each (screen views take MAX_SCREEN_VIEWS); absent ones are skipped.
SESSION_LAYOUT: tuple[str, ...] = (
    "first_open",
    "session_start",
    "app_open",
    *("screen_view",) * MAX_SCREEN_VIEWS,
    "menu_open",
    "product_added_to_cart",
    "order_placed",
    "payment_successful",
    "app_exception",
    "user_engagement",
)
_FUNNEL_COLUMNS = [
    SESSION_LAYOUT.index(name) for name in ("menu_open", "product_added_to_cart", "order_placed", "payment_successful")
]


def draw_event_log(plan: SegmentedPlan, key: EpisodeKey, sample_rate: float = SAMPLE_RATE) -> EventLog:
    """The episode's users, sessions and events, drawn from the plan as it stands (after the kinds' edits), with
    the standing traffic the metrics layer's rules exclude (standing.py)."""
    assert plan.split is not None and plan.leaf_shares is not None and plan.leaf_reach_factors is not None, (
        "the warehouse draws from a world with channel and user type"
    )
    world, users = _world_sessions(plan, key, sample_rate)
    extra, extra_users, lists = standing_sessions(plan, key, users.channel.values)
    draw = world.then(extra, len(users.pseudo_ids))
    users = users.then(extra_users)
    rng = derive_rng(key, "warehouse-sessions")
    start_us = (
        day_start_micros(0)
        + draw.day.astype(np.int64) * 86_400 * MICROS_PER_SECOND
        + ((draw.hour * 3600 + rng.random(len(draw)) * 3600) * MICROS_PER_SECOND).astype(np.int64)
    )
    layout = plan.layout
    versions = layout.values_of("app_version")
    version_code = np.array([versions.index(v) for v in layout.versions], dtype=np.int8)
    denied_share = np.array(
        [CONSENT_DENIED_SHARE.get(country, CONSENT_DENIED_ELSEWHERE) for country in layout.countries]
    )
    # A returning user's sessions before the window count too: its first here is numbered after them.
    earlier = np.where(users.first_touch_day >= 0, 0, rng.integers(1, PRIOR_SESSIONS_MAX + 1, len(users.pseudo_ids)))
    sessions = Sessions(
        user=draw.user,
        session_id=_session_numbers(draw.user, start_us) + earlier[draw.user],
        app_version=Labels(version_code[draw.cell], versions),
        consent_denied=(rng.random(len(draw)) < denied_share[draw.cell]) & (draw.kind == 0),
    )
    rates = _currency_rates(key, plan.num_days)
    currency = _paid_currency(
        key, np.array([CURRENCIES.index(COUNTRY_CURRENCY[c]) for c in layout.countries])[draw.cell]
    )
    events = flag_standing_events(
        _events(key, draw.new, draw.depth, start_us, currency, rates[currency, draw.day]), draw.kind, key
    )
    mobile = np.array([platform != "web" for platform in layout.platforms])[draw.cell]
    events = standing_repeats(events, np.array([OFFLINE_SHARE[p] for p in layout.platforms])[draw.cell], key)
    events = resent_purchases(events, mobile, key)
    keep = reporting_day(events.timestamp_us) < plan.num_days  # a session past midnight of the last date ends later
    # The export is taken when the dashboard closes the window's last date: an event ingested later is not in it.
    keep &= events.ingested_us < day_start_micros(plan.num_days - 1 + LATE_CUTOFF_DAYS)
    # Each session's events together, in time order (an event's repeats beside it).
    order = np.lexsort((events.name, events.timestamp_us, events.session))
    events = events.take(order[keep[order]])
    return EventLog(users, sessions, events, plan.num_days, lists, rates)


def _paid_currency(key: EpisodeKey, local: np.ndarray) -> np.ndarray:
    """(N,) each session's currency (a code of CURRENCIES): its country's, or US dollars for a card billed in
    them (FOREIGN_CURRENCY_SHARE of sessions outside the US)."""
    usd = CURRENCIES.index("USD")
    foreign = derive_rng(key, "warehouse-currency").random(len(local)) < FOREIGN_CURRENCY_SHARE
    paid: np.ndarray = np.where(foreign, usd, local).astype(np.int8)
    return paid


def _currency_rates(key: EpisodeKey, num_days: int) -> np.ndarray:
    """(C, D) units of each currency per US dollar by date: its usual rate, drifting a little each day."""
    steps = derive_rng(key, "warehouse-rates").normal(0.0, RATE_DRIFT, (len(CURRENCIES), num_days))
    base = np.array([USD_RATES[currency] for currency in CURRENCIES])
    rates: np.ndarray = np.round(base[:, None] * np.exp(np.cumsum(steps, axis=1)), 6)
    return rates


def _session_numbers(user: np.ndarray, start_us: np.ndarray) -> np.ndarray:
    """(N,) each session's number among its user's sessions in the window, from 1 in time order (the session_id
    parameter adds the user's sessions before the window: it names a session only together with its user)."""
    order = np.lexsort((start_us, user))
    ranked = user[order]
    first = np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1]
    position = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
    numbers = np.empty(len(order), dtype=np.int64)
    numbers[order] = position + 1
    return numbers


def _world_sessions(plan: SegmentedPlan, key: EpisodeKey, sample_rate: float) -> tuple[SessionDraw, Users]:
    """The world's own sessions and their users."""
    assert plan.split is not None
    cell, leaf, day, hour = _session_places(plan, key, sample_rate)
    depth = _steps_reached(plan, key, cell, leaf, day, hour)
    combos = plan.split.combinations
    fields = [d.field for d in plan.split.dimensions]
    channel_values = plan.split.dimensions[fields.index("channel")].values
    channel = np.array([channel_values.index(combo[fields.index("channel")]) for combo in combos])[leaf]
    new = np.array([combo[fields.index("user_type")] == "new" for combo in combos])[leaf]
    users, user = _users(plan, key, cell, channel, channel_values, new, day)
    kind = np.zeros(len(cell), dtype=np.int8)
    return SessionDraw(cell, channel, new, day, hour, depth, user, kind), users


def _session_places(
    plan: SegmentedPlan, key: EpisodeKey, sample_rate: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N,) each session's cell, leaf, date and hour: Poisson around the sampled expected opens of every leaf and
    hour, in (cell, leaf, date, hour) order."""
    assert plan.leaf_shares is not None
    expected = plan.traffic[:, None] * plan.leaf_shares[..., None] * sample_rate  # (S, K, D, 24)
    counts = derive_rng(key, "warehouse-opens").poisson(expected).reshape(-1)
    place = np.repeat(np.arange(counts.size), counts)
    cell, leaf, day, hour = np.unravel_index(place, expected.shape)
    return cell, leaf, day, hour


def _steps_reached(
    plan: SegmentedPlan, key: EpisodeKey, cell: np.ndarray, leaf: np.ndarray, day: np.ndarray, hour: np.ndarray
) -> np.ndarray:
    """(N,) funnel steps each session reaches past its open (0 to 4): each step at its cell's rate that hour
    times its leaf's factor on that step."""
    assert plan.leaf_reach_factors is not None
    factors = plan.leaf_reach_factors[cell, leaf, day]  # (N, 5): the leaf's factor on its reach of each event
    rates = plan.step_rates[cell, day, hour] * factors[:, 1:] / factors[:, :-1]
    passed = derive_rng(key, "warehouse-steps").random((len(cell), N_STEPS)) < np.minimum(rates, 1.0)
    depth: np.ndarray = np.cumprod(passed, axis=1).sum(axis=1)
    return depth


def _users(
    plan: SegmentedPlan,
    key: EpisodeKey,
    cell: np.ndarray,
    channel: np.ndarray,
    channel_values: tuple[str, ...],
    new: np.ndarray,
    day: np.ndarray,
) -> tuple[Users, np.ndarray]:
    """The users and each session's user: a new user's session is its first (its own user); a returning
    session's user is drawn from a pool of its platform, country and channel, sized for SESSIONS_PER_RETURNING_USER
    sessions each in the window."""
    layout = plan.layout
    platforms, countries = layout.values_of("platform"), layout.values_of("country")
    platform_of = np.array([platforms.index(p) for p in layout.platforms])[cell]
    country_of = np.array([countries.index(c) for c in layout.countries])[cell]
    group = (platform_of * len(countries) + country_of) * len(channel_values) + channel
    rng = derive_rng(key, "warehouse-users")
    pools = np.maximum(
        1, np.round(np.bincount(group[~new], minlength=group.max() + 1) / SESSIONS_PER_RETURNING_USER)
    ).astype(np.int64)
    member = np.where(new, np.arange(len(cell)), (rng.random(len(cell)) * pools[group]).astype(np.int64))
    identity = (new.astype(np.int64) * (group.max() + 1) + group) * len(cell) + member
    _, first, user = np.unique(identity, return_index=True, return_inverse=True)
    user = user.reshape(-1).astype(np.int32)
    count = len(first)
    first_touch = np.where(new[first], day[first], -rng.integers(1, 365, count)).astype(np.int16)
    touch_s = (
        day_start_micros(0) // MICROS_PER_SECOND
        + first_touch.astype(np.int64) * 86_400
        + rng.integers(0, 86_400, count)
    )
    logged_in = ~new[first] & (rng.random(count) < LOGGED_IN_SHARE)
    pseudo, logins, devices = draw_identities(rng, touch_s, logged_in)
    users = Users(
        pseudo_ids=pseudo,
        login_ids=logins,
        device_ids=devices,
        platform=Labels(platform_of[first].astype(np.int8), platforms),
        country=Labels(country_of[first].astype(np.int8), countries),
        channel=Labels(channel[first].astype(np.int8), channel_values),
        first_touch_day=first_touch,
    )
    return users, user


def _events(
    key: EpisodeKey,
    new: np.ndarray,
    depth: np.ndarray,
    start_us: np.ndarray,
    currency: np.ndarray,
    units_per_usd: np.ndarray,
) -> Events:
    """Every session's events in SESSION_LAYOUT order, with their times, ingestion times and parameters."""
    rng = derive_rng(key, "warehouse-events")
    sessions, width = len(new), len(SESSION_LAYOUT)
    present = np.zeros((sessions, width), dtype=bool)
    present[:, 0] = new
    present[:, 1:3] = True
    views = np.minimum(rng.poisson(SCREEN_VIEWS_MEAN, sessions), MAX_SCREEN_VIEWS)
    present[:, 3 : 3 + MAX_SCREEN_VIEWS] = np.arange(MAX_SCREEN_VIEWS) < views[:, None]
    present[:, _FUNNEL_COLUMNS] = np.arange(N_STEPS) < depth[:, None]
    present[:, -2] = rng.random(sessions) < EXCEPTION_SHARE
    present[:, -1] = True
    gaps_s = rng.exponential(EVENT_GAP_S, (sessions, width))
    gaps_s[:, :3] = 0.001 * np.arange(3)  # the first open, the session's start and its open, a millisecond apart
    offsets_s = np.cumsum(np.where(present, gaps_s, 0.0), axis=1)
    session, column = np.nonzero(present)
    names = np.array([event_code(name) for name in SESSION_LAYOUT], dtype=np.int8)[column]
    timestamp = start_us[session] + (offsets_s[session, column] * MICROS_PER_SECOND).astype(np.int64)
    count = len(session)
    ingested = timestamp + ((1.0 + rng.exponential(INGESTION_DELAY_S, count)) * MICROS_PER_SECOND).astype(np.int64)
    engagement = np.full(count, -1, dtype=np.int32)
    viewed = np.isin(column, range(3, 3 + MAX_SCREEN_VIEWS))
    engagement[viewed] = (gaps_s[session[viewed], column[viewed]] * 1000).astype(np.int32)
    ending = column == width - 1
    engagement[ending] = (offsets_s[session[ending], -1] * 1000).astype(np.int32)
    basket_usd = rng.lognormal(*BASKET_USD, sessions)
    local = basket_usd * units_per_usd  # in the session's currency, at its date's rate
    value = np.full(count, np.nan)
    cart, order, paid = _FUNNEL_COLUMNS[1:]
    value[column == cart] = np.round(ITEM_SHARE * local[session[column == cart]], 2)
    purchase = (column == order) | (column == paid)
    value[purchase] = np.round(local[session[purchase]], 2)
    numbers = rng.permutation(sessions).astype(np.int64) + 1
    transaction = np.where(purchase, numbers[session], -1)
    return Events(
        session=session.astype(np.int32),
        name=names,
        timestamp_us=timestamp,
        ingested_us=ingested,
        engagement_msec=engagement,
        transaction=transaction,
        value=value,
        currency=np.where(np.isnan(value), -1, currency[session]).astype(np.int8),
        debug=np.zeros(count, dtype=bool),
        internal=np.zeros(count, dtype=bool),
        variant=np.full(count, -1, dtype=np.int8),
    )
