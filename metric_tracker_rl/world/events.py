"""The raw event export of the warehouse rung: one row per event, in the shape analysts query a product-analytics
export (an event date in the reporting time zone, a UTC timestamp in microseconds, the event's name and a list of
key/value parameters, a pseudonymous user id and an optional login id, device, geo, app, traffic source and
privacy records, an ingestion time).

Held as flat numpy arrays (an `EventLog`: users, their sessions, the sessions' events), so an open episode costs
tens of bytes an event; `EventLog.sql_tables` builds the nested columns (DuckDB's STRUCT and LIST) as Arrow arrays
only when the SQL tool first needs them. Public, like segments.py: the generator that draws the log lives behind
the truth wall (metric_tracker_rl/generation/warehouse/).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from metric_tracker_rl.sql.columns import Labels, Nested, SqlTable
from metric_tracker_rl.world.funnel import WINDOW_START

# The reporting time zone: every reported date is the event's date there. It keeps no daylight saving time, so
# its offset from UTC is one number all year.
REPORTING_TIME_ZONE = "Asia/Tokyo"
REPORTING_UTC_OFFSET_HOURS = 9
MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND

# The five funnel events, then the everyday events around them (codes are positions in this tuple).
FUNNEL_EVENT_NAMES: tuple[str, ...] = (
    "app_open",
    "menu_open",
    "product_added_to_cart",
    "order_placed",
    "payment_successful",
)
EVERYDAY_EVENT_NAMES: tuple[str, ...] = (
    "first_open",
    "session_start",
    "screen_view",
    "user_engagement",
    "app_exception",
)
# Names a tracking deploy may give an event in place of its own (tracking_changelog says which, where and when).
RENAMED_EVENTS: dict[str, str] = {"menu_open": "menu_view", "product_added_to_cart": "add_to_cart"}
EVENT_NAMES: tuple[str, ...] = FUNNEL_EVENT_NAMES + EVERYDAY_EVENT_NAMES + tuple(RENAMED_EVENTS.values())


def event_code(name: str) -> int:
    return EVENT_NAMES.index(name)


# The parameters an event may carry, each with the value field it fills (a parameter is listed only on the events
# that carry it, as an export lists them).
PARAM_KEYS: dict[str, str] = {
    "session_id": "int_value",
    "engagement_time_msec": "int_value",
    "transaction_id": "string_value",
    "value": "double_value",
    "currency": "string_value",
    "debug_mode": "int_value",
    "traffic_type": "string_value",
    "experiment_variant": "string_value",
}
VARIANTS: tuple[str, ...] = ("control", "treatment")
INTERNAL_TRAFFIC = "internal"
CONSENT_VALUES: tuple[str, ...] = ("granted", "denied")

# Each country's currency (a price is recorded in it; the metrics layer converts to USD).
COUNTRY_CURRENCY: dict[str, str] = {
    "US": "USD",
    "GB": "GBP",
    "DE": "EUR",
    "FR": "EUR",
    "BR": "BRL",
    "IN": "INR",
    "JP": "JPY",
    "MX": "MXN",
}
CURRENCIES: tuple[str, ...] = tuple(dict.fromkeys(COUNTRY_CURRENCY.values()))
# How each channel is recorded as a traffic source: (source, medium).
CHANNEL_SOURCES: dict[str, tuple[str, str]] = {
    "organic": ("google", "organic"),
    "paid_search": ("google", "cpc"),
    "paid_social": ("instagram", "paid_social"),
    "referral": ("partner_blog", "referral"),
}
# Each platform's device category and operating system as the device record names them.
PLATFORM_DEVICE: dict[str, tuple[str, str]] = {
    "ios": ("mobile", "iOS"),
    "android": ("mobile", "Android"),
    "web": ("desktop", "Web"),
}


def day_start_micros(day: int) -> int:
    """UTC microseconds at which reporting date `day` (0 = the window's first) begins in the reporting zone."""
    start = dt.datetime.combine(WINDOW_START, dt.time(), tzinfo=dt.timezone.utc) + dt.timedelta(days=day)
    return int(start.timestamp()) * MICROS_PER_SECOND - REPORTING_UTC_OFFSET_HOURS * 3600 * MICROS_PER_SECOND


def reporting_day(timestamp_us: np.ndarray) -> np.ndarray:
    """(N,) the reporting date (days from the window's first) of UTC microsecond timestamps."""
    day: np.ndarray = (timestamp_us - day_start_micros(0)) // MICROS_PER_DAY
    return day


@dataclass(frozen=True)
class Users:
    """One row per pseudonymous user (index u): its id, optional login, device id, country, platform, channel,
    and first-touch date (days from the window's first; negative: before the window)."""

    pseudo_ids: np.ndarray  # (U,) object: str
    login_ids: np.ndarray  # (U,) object: str or None
    device_ids: np.ndarray  # (U,) object: str
    platform: Labels
    country: Labels
    channel: Labels
    first_touch_day: np.ndarray  # (U,) int16

    def then(self, other: Users) -> Users:
        """These users followed by `other`'s (their labels share values)."""

        def labels(mine: Labels, theirs: Labels) -> Labels:
            assert mine.values == theirs.values
            return Labels(np.concatenate([mine.codes, theirs.codes]), mine.values)

        return Users(
            pseudo_ids=np.concatenate([self.pseudo_ids, other.pseudo_ids]),
            login_ids=np.concatenate([self.login_ids, other.login_ids]),
            device_ids=np.concatenate([self.device_ids, other.device_ids]),
            platform=labels(self.platform, other.platform),
            country=labels(self.country, other.country),
            channel=labels(self.channel, other.channel),
            first_touch_day=np.concatenate([self.first_touch_day, other.first_touch_day]),
        )


@dataclass(frozen=True)
class Sessions:
    """One row per session (index s): its user, its id (the session's start in epoch seconds, as exports set it,
    so two users' ids may repeat), its app version and its consent."""

    user: np.ndarray  # (N,) int32: index into Users
    session_id: np.ndarray  # (N,) int64
    app_version: Labels
    consent_denied: np.ndarray  # (N,) bool


@dataclass(frozen=True)
class Events:
    """One row per event (index e), in time order within each session; parameters absent where marked (-1, NaN
    or False)."""

    session: np.ndarray  # (E,) int32: index into Sessions
    name: np.ndarray  # (E,) int8: index into EVENT_NAMES
    timestamp_us: np.ndarray  # (E,) int64, UTC
    ingested_us: np.ndarray  # (E,) int64, UTC
    engagement_msec: np.ndarray  # (E,) int32, -1: absent
    transaction: np.ndarray  # (E,) int64, -1: absent
    value: np.ndarray  # (E,) float64 in the currency of `currency`, NaN: absent
    currency: np.ndarray  # (E,) int8: index into CURRENCIES, -1: absent (with value)
    debug: np.ndarray  # (E,) bool
    internal: np.ndarray  # (E,) bool
    variant: np.ndarray  # (E,) int8: index into VARIANTS, -1: absent

    def __len__(self) -> int:
        return len(self.name)

    def take(self, rows: np.ndarray) -> Events:
        """The events at `rows` (positions or a mask), in that order."""
        return Events(**{name: getattr(self, name)[rows] for name in Events.__dataclass_fields__})


@dataclass(frozen=True)
class ReferenceLists:
    """The lists the metrics layer excludes by: internal accounts (login ids), test devices and known bots (device
    ids)."""

    internal_accounts: tuple[str, ...]
    test_devices: tuple[str, ...]
    known_bots: tuple[str, ...]


@dataclass(frozen=True)
class TrackingChange:
    """A deploy of the tracking plan: from `day` (days from the window's first) on `platform`, what changed."""

    day: int
    platform: str
    change: str


@dataclass(frozen=True)
class EventLog:
    """The raw events of an episode with their sessions and users."""

    users: Users
    sessions: Sessions
    events: Events
    num_days: int
    lists: ReferenceLists
    units_per_usd: np.ndarray  # (C, D): each currency of CURRENCIES per US dollar, by reporting date (NaN: no row)
    changelog: tuple[TrackingChange, ...] = ()

    def session_days(self) -> np.ndarray:
        """(N,) each session's reporting date: its first event's (events are grouped by session, in time order);
        -1 for a session with no event left in the window."""
        events = self.events
        first = np.searchsorted(events.session, np.arange(len(self.sessions.user)))
        inside = first < len(events)
        days = np.full(len(self.sessions.user), -1, dtype=np.int64)
        found = inside.copy()
        found[inside] = events.session[first[inside]] == np.flatnonzero(inside)
        days[found] = reporting_day(events.timestamp_us[first[found]])
        return days

    def sql_tables(self) -> dict[str, SqlTable]:
        """`events` (the nested export), `users`, the reference lists and `currency_rates`, as the SQL tool's
        columns."""
        lists = self.lists
        return {
            "events": self._events_table(),
            "users": self._users_table(),
            "internal_accounts": {"user_id": np.array(lists.internal_accounts, dtype=object)},
            "test_devices": {"device_id": np.array(lists.test_devices, dtype=object)},
            "known_bots": {"device_id": np.array(lists.known_bots, dtype=object)},
            "currency_rates": self._rates_table(),
            "tracking_changelog": {
                "date": np.datetime64(WINDOW_START, "D")
                + np.array([c.day for c in self.changelog], dtype="timedelta64[D]"),
                "platform": np.array([c.platform for c in self.changelog], dtype=object),
                "change": np.array([c.change for c in self.changelog], dtype=object),
            },
        }

    def _rates_table(self) -> SqlTable:
        """One row per currency and date with a rate (NaN in `units_per_usd`: the load has no row for it)."""
        days = self.num_days
        rates = self.units_per_usd.reshape(-1)
        loaded = ~np.isnan(rates)
        return {
            "currency": Labels(np.repeat(np.arange(len(CURRENCIES), dtype=np.int8), days)[loaded], CURRENCIES),
            "date": np.tile(
                np.datetime64(WINDOW_START, "D") + np.arange(days).astype("timedelta64[D]"), len(CURRENCIES)
            )[loaded],
            "units_per_usd": rates[loaded],
        }

    def _users_table(self) -> SqlTable:
        users = self.users
        first = np.datetime64(WINDOW_START, "D") + users.first_touch_day.astype("timedelta64[D]")
        return {
            "user_pseudo_id": users.pseudo_ids,
            "first_touch_date": first,
            "country": users.country,
            "platform": users.platform,
            "channel": users.channel,
        }

    def _events_table(self) -> SqlTable:
        import pyarrow as pa

        events, sessions, users = self.events, self.sessions, self.users
        user = sessions.user[events.session]
        denied = sessions.consent_denied[events.session]
        day = reporting_day(events.timestamp_us)  # a date before or after the window is a skewed clock's
        first_day = int(day.min(initial=0))
        dates = np.datetime64(WINDOW_START, "D") + np.arange(first_day, int(day.max(initial=0)) + 1).astype(
            "timedelta64[D]"
        )
        country = users.country.codes[user]
        platform = users.platform.codes[user]
        channel = users.channel.codes[user]
        platforms = users.platform.values
        return {
            "event_date": Nested(_dictionary(day - first_day, dates)),  # a byte a row: DATE in SQL
            "event_timestamp": events.timestamp_us,
            "event_name": Labels(events.name, EVENT_NAMES),
            "event_params": Nested(_params(events, sessions.session_id, denied)),
            "user_pseudo_id": Nested(_dictionary(*_pseudo_ids(events, user, denied, users.pseudo_ids))),
            "user_id": Nested(_dictionary(np.where(denied, -1, user), users.login_ids)),
            "device": Nested(
                pa.StructArray.from_arrays(
                    [
                        _dictionary(platform, np.array([PLATFORM_DEVICE[p][0] for p in platforms], dtype=object)),
                        _dictionary(platform, np.array([PLATFORM_DEVICE[p][1] for p in platforms], dtype=object)),
                        _dictionary(np.where(denied, -1, user), users.device_ids),
                    ],
                    names=["category", "operating_system", "device_id"],
                )
            ),
            "geo": Nested(
                pa.StructArray.from_arrays(
                    [_dictionary(country, np.array(users.country.values, dtype=object))], names=["country"]
                )
            ),
            "app_info": Nested(
                pa.StructArray.from_arrays(
                    [
                        _dictionary(
                            sessions.app_version.codes[events.session],
                            np.array(sessions.app_version.values, dtype=object),
                        )
                    ],
                    names=["version"],
                )
            ),
            "traffic_source": Nested(
                pa.StructArray.from_arrays(
                    [
                        _dictionary(
                            channel, np.array([CHANNEL_SOURCES[c][0] for c in users.channel.values], dtype=object)
                        ),
                        _dictionary(
                            channel, np.array([CHANNEL_SOURCES[c][1] for c in users.channel.values], dtype=object)
                        ),
                    ],
                    names=["source", "medium"],
                )
            ),
            "platform": Labels(platform, platforms),
            "privacy_info": Nested(
                pa.StructArray.from_arrays(
                    [_dictionary(denied.astype(np.int8), np.array(CONSENT_VALUES, dtype=object))],
                    names=["analytics_storage"],
                )
            ),
            "ingestion_timestamp": events.ingested_us,
        }


def _dictionary(codes: np.ndarray, values: np.ndarray) -> Any:
    """A column as an Arrow dictionary array (text from an object array, numbers from a numeric one): row i holds
    values[codes[i]]; NULL where the code is negative or the value is None."""
    import pyarrow as pa

    dictionary = pa.array(values, pa.string() if values.dtype == object else None)
    index_type = next(t for t in (np.int8, np.int16, np.int32) if len(values) <= np.iinfo(t).max)
    codes = np.asarray(codes)
    missing = codes < 0
    if dictionary.null_count:
        missing = missing | np.asarray(dictionary.is_null())[np.maximum(codes, 0)]
    indices = pa.array(np.maximum(codes, 0).astype(index_type), mask=missing if missing.any() else None)
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def _pseudo_ids(
    events: Events, user: np.ndarray, denied: np.ndarray, pseudo_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each event's user_pseudo_id as codes into its values: its user's, or for an event without consent a
    cookieless ping's random id of its own (a number and the event's second, as the SDK writes one), the same for
    an event and its repeats."""
    rows = np.flatnonzero(denied)
    mixed = (
        events.session[rows].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        + events.timestamp_us[rows].astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
        + events.name[rows].astype(np.uint64)
    )
    number = (mixed >> np.uint64(20)) % np.uint64(10**9) + np.uint64(10**9)
    seconds = events.timestamp_us[rows] // MICROS_PER_SECOND
    pairs, code = np.unique(np.stack([number.astype(np.int64), seconds], axis=1), axis=0, return_inverse=True)
    codes = user.astype(np.int64)
    codes[rows] = len(pseudo_ids) + code.reshape(-1)
    cookieless = np.array([f"{n}.{t}" for n, t in pairs.tolist()], dtype=object)
    return codes, np.concatenate([pseudo_ids, cookieless])


def _dictionary_of_numbers(numbers: np.ndarray, present: np.ndarray) -> Any:
    """A numeric column as an Arrow dictionary array (NULL where not `present`): SQL reads it as the numbers' own
    type, and an episode holds each distinct number once with a narrow index per row."""
    values, codes = np.unique(numbers[present], return_inverse=True)
    indices = np.full(len(numbers), -1, dtype=np.int64)
    indices[present] = codes
    return _dictionary(indices, values)


def _params(events: Events, session_id: np.ndarray, denied: np.ndarray) -> Any:
    """event_params: LIST<STRUCT(key, value STRUCT(string_value, int_value, double_value))>, each event listing
    only the parameters it carries, in PARAM_KEYS order (`session_id`: each session's, by session)."""
    import pyarrow as pa

    has_value = ~np.isnan(events.value)
    present = np.column_stack(
        [
            ~denied,  # session_id: an event without consent carries no identifier
            events.engagement_msec >= 0,
            events.transaction >= 0,
            has_value,
            has_value,  # currency beside value
            events.debug,
            events.internal,
            events.variant >= 0,
        ]
    )
    counts = present.sum(axis=1)
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    row, key = np.nonzero(present)  # row-major: each event's parameters together, in key order
    entries = len(row)
    # int_value as a dictionary without sorting every entry: each session's id (the entry's session is its code),
    # then the distinct engagement times, then debug_mode's 1.
    int_codes = np.full(entries, -1, dtype=np.int64)
    doubles = np.zeros(entries)
    texts = np.full(entries, -1, dtype=np.int64)
    keys = list(PARAM_KEYS)
    # The text values: transaction ids are built only for the events that carry one.
    text_values: list[str] = [*CURRENCIES, INTERNAL_TRAFFIC, *VARIANTS]
    at = {name: key == keys.index(name) for name in keys}
    int_codes[at["session_id"]] = events.session[row[at["session_id"]]]
    engagement, int_codes[at["engagement_time_msec"]] = np.unique(
        events.engagement_msec[row[at["engagement_time_msec"]]], return_inverse=True
    )
    int_codes[at["engagement_time_msec"]] += len(session_id)
    int_codes[at["debug_mode"]] = len(session_id) + len(engagement)
    int_values = np.concatenate([session_id, engagement.astype(np.int64), [1]])
    doubles[at["value"]] = events.value[row[at["value"]]]
    texts[at["currency"]] = events.currency[row[at["currency"]]]
    texts[at["traffic_type"]] = len(CURRENCIES)  # INTERNAL_TRAFFIC
    texts[at["experiment_variant"]] = len(CURRENCIES) + 1 + events.variant[row[at["experiment_variant"]]]
    transactions = events.transaction[row[at["transaction_id"]]]
    unique, inverse = np.unique(transactions, return_inverse=True)
    texts[at["transaction_id"]] = len(text_values) + inverse
    text_values += [f"T{number:09d}" for number in unique]
    value = pa.StructArray.from_arrays(
        [
            _dictionary(texts, np.array(text_values, dtype=object)),
            _dictionary(int_codes, int_values),
            _dictionary_of_numbers(doubles, at["value"]),
        ],
        names=["string_value", "int_value", "double_value"],
    )
    pairs = pa.StructArray.from_arrays([_dictionary(key, np.array(keys, dtype=object)), value], names=["key", "value"])
    return pa.ListArray.from_arrays(pa.array(offsets), pairs)
