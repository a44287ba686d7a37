"""The standing traffic every episode's export holds and the metrics layer's rules exclude or repair: staff on
internal accounts and the office network, QA on the office network checking each new mobile release's checkout
(orders placed, never paid), test devices and developer builds, the device farm's launch tests (the app opened
and closed, many times a day), the web checkout suite on listed test devices (orders whose test cards are declined,
on a few dates), known bots, exact repeats of events (an SDK resends a batch) and events ingested past the cut-off
(devices that were offline; the export ends when the dashboard closes the window's last date, so its last dates do
not hold them yet). None is an incident: the dashboard applies the rules, so none of it reaches it; a model that
skips a rule sees it: a release whose orders are not paid, a farm of devices that open the app and do nothing (as
bots do), web payments failing on the suite's dates, rates and counts that read late events the dashboard never
counts and fall at the window's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.generation.identities import draw_identities
from metric_tracker_rl.generation.warehouse.sessions import SessionDraw
from metric_tracker_rl.sql.columns import Labels
from metric_tracker_rl.world.events import MICROS_PER_SECOND, Events, ReferenceLists, Users, day_start_micros
from metric_tracker_rl.world.funnel import HOURS, N_STEPS

if TYPE_CHECKING:
    from metric_tracker_rl.generation.segment_plan import SegmentedPlan


@dataclass(frozen=True)
class StandingSource:
    """Identities of one kind of standing traffic: how many, where, how often, how deep, and how they are
    recorded (`tagged`: share of their events carrying the internal or debug parameter; `list`: the reference
    list that names them, or None)."""

    kind: str
    identities: int
    platform: str
    country: str
    sessions_per_day: float
    full_funnel_share: float  # sessions that reach payment; the rest stop at a uniform step before it
    working_hours: bool  # Tokyo office hours (9 to 18) or any hour
    logged_in: bool
    tagged: float
    listed: str | None


# The kinds in session-kind order (0 is the world's own traffic).
STANDING_SOURCES: tuple[StandingSource, ...] = (
    StandingSource("internal_account", 6, "web", "JP", 2.0, 0.6, True, True, 0.5, "internal_accounts"),
    StandingSource("office", 4, "ios", "JP", 1.5, 0.3, True, False, 1.0, None),
    StandingSource("test_device", 3, "android", "JP", 1.5, 0.7, True, False, 0.7, "test_devices"),
    StandingSource("developer_device", 2, "ios", "JP", 1.0, 0.5, True, False, 1.0, None),
    StandingSource("known_bot", 4, "web", "US", 6.0, 0.0, False, False, 0.0, "known_bots"),
    # Release builds on the farm's devices: no debug tag, only the test_devices list names them.
    StandingSource("device_farm", 3, "android", "JP", 6.0, 0.0, False, False, 0.0, "test_devices"),
)
RELEASE_QA = "release_qa"  # office QA on each new mobile version's first dates (all tagged internal)
WEB_CHECKOUT_TESTS = "web_checkout_tests"  # the web checkout suite on listed test devices (untagged)
SESSION_KINDS: tuple[str, ...] = (
    "world",
    *(source.kind for source in STANDING_SOURCES),
    RELEASE_QA,
    WEB_CHECKOUT_TESTS,
)
INTERNAL_KINDS = ("internal_account", "office", RELEASE_QA)  # their tagged events carry traffic_type = internal
# Their tagged events carry debug_mode = 1.
DEBUG_KINDS = ("test_device", "developer_device", "device_farm", WEB_CHECKOUT_TESTS)
QA_TESTERS = 3  # per mobile platform, each on its own device, in the office
QA_DAYS = 5  # dates from a release's first on which QA checks its checkout
QA_SESSIONS_PER_DAY = 2.0  # per tester and date: each places an order and stops before paying
QA_DEPTH = 3  # steps past the open: menu, cart, order
# The web checkout suite: on a few dates of the window (before a web deploy), from the office, WEB_TEST_DEVICES
# listed test devices each run its checkout tests in one block of WEB_TEST_HOURS hours, each test an order placed with a
# test card that is declined (never paid).
WEB_TEST_RUNS = (2, 4)  # dates with a run, inclusive
WEB_TEST_DEVICES = 3
WEB_TESTS_PER_DEVICE = 5.0  # orders per device and run (Poisson)
WEB_TEST_HOURS = 2
REPEAT_SHARE = 0.02  # of events: sent again, identical, in a later batch
# Of each platform's sessions: those whose device went offline at some event and queued it and the rest, ingested
# LATE_DAYS after they happened (a web page cannot queue).
OFFLINE_SHARE: dict[str, float] = {"ios": 0.15, "android": 0.2, "web": 0.0}
LATE_DAYS = (2.0, 6.0)
# Of mobile purchases: a payment_successful the payment SDK sends again (its acknowledgement was lost) with the same
# transaction_id, RESEND_DELAY_S later.
RESENT_PURCHASE_SHARE = 0.3
RESEND_DELAY_S = (2.0, 30.0)


def standing_sessions(
    plan: SegmentedPlan, key: EpisodeKey, channel_values: tuple[str, ...]
) -> tuple[SessionDraw, Users, ReferenceLists]:
    """The standing sources' sessions (users numbered from 0), their users, and the reference lists."""

    rng = derive_rng(key, "warehouse-standing")
    layout = plan.layout
    platforms, countries = layout.values_of("platform"), layout.values_of("country")
    parts: list[dict[str, np.ndarray]] = []
    user_platform: list[int] = []
    user_country: list[int] = []
    logged: list[bool] = []
    listed: dict[str, list[int]] = {"internal_accounts": [], "test_devices": [], "known_bots": []}
    for position, source in enumerate(STANDING_SOURCES, start=1):
        first_user = len(user_platform)
        counts = rng.poisson(source.sessions_per_day, (source.identities, plan.num_days))
        identity, day = np.nonzero(counts)
        identity, day = np.repeat(identity, counts[identity, day]), np.repeat(day, counts[identity, day])
        hour = rng.integers(9, 18, len(day)) if source.working_hours else rng.integers(0, HOURS, len(day))
        full = rng.random(len(day)) < source.full_funnel_share
        depth = np.where(full, N_STEPS, rng.integers(0, N_STEPS, len(day)))
        parts.append(
            {
                "cell": _busiest_cells(plan, source.platform, source.country, day),
                "day": day,
                "hour": hour,
                "depth": depth if source.full_funnel_share else np.zeros(len(day), dtype=np.int64),
                "user": first_user + identity,
                "kind": np.full(len(day), position, dtype=np.int8),
            }
        )
        user_platform += [platforms.index(source.platform)] * source.identities
        user_country += [countries.index(source.country)] * source.identities
        logged += [source.logged_in] * source.identities
        if source.listed is not None:
            listed[source.listed] += list(range(first_user, first_user + source.identities))
    qa, qa_platform = _release_checks(plan, rng, len(user_platform))
    if qa:
        parts.append(qa)
    user_platform += [platforms.index(p) for p in qa_platform]
    user_country += [countries.index(QA_COUNTRY)] * len(qa_platform)
    logged += [False] * len(qa_platform)
    listed["test_devices"] += list(range(len(user_platform), len(user_platform) + WEB_TEST_DEVICES))
    parts.append(_web_checkout_tests(plan, derive_rng(key, "warehouse-web-tests"), len(user_platform)))
    user_platform += [platforms.index("web")] * WEB_TEST_DEVICES
    user_country += [countries.index(QA_COUNTRY)] * WEB_TEST_DEVICES
    logged += [False] * WEB_TEST_DEVICES
    joined = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    sessions = len(joined["day"])
    draw = SessionDraw(
        cell=joined["cell"],
        channel=np.zeros(sessions, dtype=np.int64),
        new=np.zeros(sessions, dtype=bool),
        day=joined["day"],
        hour=joined["hour"],
        depth=joined["depth"],
        user=joined["user"],
        kind=joined["kind"],
    )
    count = len(user_platform)
    first_touch = -rng.integers(30, 365, count).astype(np.int16)
    touch_s = day_start_micros(0) // MICROS_PER_SECOND + first_touch.astype(np.int64) * 86_400
    pseudo, logins, devices = draw_identities(rng, touch_s, np.array(logged))
    users = Users(
        pseudo_ids=pseudo,
        login_ids=logins,
        device_ids=devices,
        platform=Labels(np.array(user_platform, dtype=np.int8), platforms),
        country=Labels(np.array(user_country, dtype=np.int8), countries),
        channel=Labels(np.zeros(count, dtype=np.int8), channel_values),
        first_touch_day=first_touch,
    )
    lists = ReferenceLists(
        internal_accounts=tuple(str(users.login_ids[u]) for u in listed["internal_accounts"]),
        test_devices=tuple(str(users.device_ids[u]) for u in listed["test_devices"]),
        known_bots=tuple(str(users.device_ids[u]) for u in listed["known_bots"]),
    )
    return draw, users, lists


QA_COUNTRY = "JP"  # the office's


def _release_checks(
    plan: SegmentedPlan, rng: np.random.Generator, first_user: int
) -> tuple[dict[str, np.ndarray], list[str]]:
    """QA's sessions on each mobile release's version in the office's country over its first QA_DAYS dates (each
    an order placed and not paid), and each tester's platform (QA_TESTERS per mobile platform)."""
    from metric_tracker_rl.world.segments import Segment

    platforms = sorted({release.platform for release in plan.releases})
    parts: list[dict[str, np.ndarray]] = []
    for release in plan.releases:
        (cell,) = plan.cells(Segment(platform=release.platform, country=QA_COUNTRY, app_version=release.version))
        days = np.arange(release.start_day, min(release.start_day + QA_DAYS, plan.num_days))
        counts = rng.poisson(QA_SESSIONS_PER_DAY, (QA_TESTERS, len(days)))
        tester, at = np.nonzero(counts)
        tester, at = np.repeat(tester, counts[tester, at]), np.repeat(at, counts[tester, at])
        user = first_user + platforms.index(release.platform) * QA_TESTERS + tester
        parts.append(
            {
                "cell": np.full(len(at), cell),
                "day": days[at],
                "hour": rng.integers(9, 18, len(at)),
                "depth": np.full(len(at), QA_DEPTH),
                "user": user,
                "kind": np.full(len(at), SESSION_KINDS.index(RELEASE_QA), dtype=np.int8),
            }
        )
    joined = (
        {name: np.concatenate([part[name] for part in parts]).astype(parts[0][name].dtype) for name in parts[0]}
        if parts
        else {}
    )
    return joined, [platform for platform in platforms for _ in range(QA_TESTERS)]


def _web_checkout_tests(plan: SegmentedPlan, rng: np.random.Generator, first_user: int) -> dict[str, np.ndarray]:
    """The web checkout suite's sessions: on WEB_TEST_RUNS dates, each of its devices' orders in one block of
    office hours, each stopping at the order (the test card is declined)."""
    runs = np.sort(
        rng.choice(
            np.arange(1, plan.num_days), int(rng.integers(WEB_TEST_RUNS[0], WEB_TEST_RUNS[1] + 1)), replace=False
        )
    )
    counts = rng.poisson(WEB_TESTS_PER_DEVICE, (WEB_TEST_DEVICES, len(runs)))
    device, run = np.nonzero(counts)
    device, run = np.repeat(device, counts[device, run]), np.repeat(run, counts[device, run])
    start = rng.integers(9, 18 - WEB_TEST_HOURS + 1, len(runs))[run]
    day = runs[run]
    kind = np.full(len(day), SESSION_KINDS.index(WEB_CHECKOUT_TESTS), dtype=np.int8)
    return {
        "cell": _busiest_cells(plan, "web", QA_COUNTRY, day),
        "day": day,
        "hour": start + rng.integers(0, WEB_TEST_HOURS, len(day)),
        "depth": np.full(len(day), QA_DEPTH),
        "user": first_user + device,
        "kind": kind,
    }


def _busiest_cells(plan: SegmentedPlan, platform: str, country: str, days: np.ndarray) -> np.ndarray:
    """(N,) for each date, the cell of this platform and country with the most expected traffic that date (the
    version most of its users run)."""
    from metric_tracker_rl.world.segments import Segment

    cells = plan.cells(Segment(platform=platform, country=country))
    busiest = cells[np.argmax(plan.traffic[cells].sum(axis=2), axis=0)]  # (D,)
    picked: np.ndarray = busiest[days]
    return picked


def flag_standing_events(events: Events, session_kind: np.ndarray, key: EpisodeKey) -> Events:
    """The standing sources' tags: each internal or debug source's events carry its parameter with its `tagged`
    share."""
    kind = session_kind[events.session]
    # Release QA: all tagged; the web checkout suite runs production builds: none.
    tagged_share = np.array([0.0, *(source.tagged for source in STANDING_SOURCES), 1.0, 0.0])[kind]
    tagged = derive_rng(key, "warehouse-tags").random(len(kind)) < tagged_share
    internal = np.isin(kind, [SESSION_KINDS.index(k) for k in INTERNAL_KINDS]) & tagged
    debug = np.isin(kind, [SESSION_KINDS.index(k) for k in DEBUG_KINDS]) & tagged
    return Events(
        **{
            **{name: getattr(events, name) for name in Events.__dataclass_fields__},
            "internal": internal,
            "debug": debug,
        }
    )


def standing_repeats(events: Events, offline_share: np.ndarray, key: EpisodeKey) -> Events:
    """Events sent again in a later batch (identical but for their ingestion), and sessions that went offline
    (`offline_share`: each session's chance): from a uniform event of the session on, its events are ingested
    LATE_DAYS after they happened. The events come grouped by session, in time order."""
    rng = derive_rng(key, "warehouse-repeats")
    repeated = np.flatnonzero(rng.random(len(events)) < REPEAT_SHARE)
    sessions = len(offline_share)
    first = np.searchsorted(events.session, np.arange(sessions))
    length = np.diff(np.r_[first, len(events)])
    offline = rng.random(sessions) < offline_share
    offline_from = (rng.random(sessions) * length).astype(np.int64)  # the position of the first queued event
    position = np.arange(len(events)) - first[events.session]
    late = offline[events.session] & (position >= offline_from[events.session])
    delay_s = np.where(late, rng.uniform(*LATE_DAYS, sessions)[events.session] * 86_400, 0.0)
    ingested = events.ingested_us + (delay_s * MICROS_PER_SECOND).astype(np.int64)
    delayed = Events(
        **{**{name: getattr(events, name) for name in Events.__dataclass_fields__}, "ingested_us": ingested}
    )
    again = delayed.take(repeated)
    resent = again.ingested_us + (rng.uniform(5, 600, len(repeated)) * MICROS_PER_SECOND).astype(np.int64)
    again = Events(**{**{name: getattr(again, name) for name in Events.__dataclass_fields__}, "ingested_us": resent})
    return Events(
        **{name: np.concatenate([getattr(delayed, name), getattr(again, name)]) for name in Events.__dataclass_fields__}
    )


def resent_purchases(events: Events, mobile: np.ndarray, key: EpisodeKey) -> Events:
    """A share of mobile sessions' payment_successful events sent again with the same transaction_id a few seconds
    later (`mobile`: by session), after the events (the caller sorts them)."""
    from metric_tracker_rl.world.events import event_code

    rng = derive_rng(key, "warehouse-resent-purchases")
    paid = np.flatnonzero((events.name == event_code("payment_successful")) & mobile[events.session])
    resent = events.take(paid[rng.random(len(paid)) < RESENT_PURCHASE_SHARE])
    delay = (rng.uniform(*RESEND_DELAY_S, len(resent)) * MICROS_PER_SECOND).astype(np.int64)
    resent = Events(
        **{
            **{name: getattr(resent, name) for name in Events.__dataclass_fields__},
            "timestamp_us": resent.timestamp_us + delay,
            "ingested_us": resent.ingested_us + delay,
        }
    )
    return Events(
        **{name: np.concatenate([getattr(events, name), getattr(resent, name)]) for name in Events.__dataclass_fields__}
    )
