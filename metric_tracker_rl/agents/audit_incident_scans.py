"""Finders for changes in what users did (audit_finders.Finder, kind "incident"): each one statement over the
metrics layer's counted sessions (warehouse_sql.sessions_cte) that compares every segment of a search, on every
date (or block of hours), with the same weekday's other dates, and returns those that departed beyond sampling
noise and by a clear share. None knows where or when to look: the segments searched are whole dimensions, and the
dates are all of the window's.

- `daily_scan`: a step's conversion (or the sessions) per date and segment against the same weekday's other dates
  (pooled), pooled over a run of consecutive dates where a change lasts several;
- `hour_scan`: a step's conversions in blocks of hours per date and segment against its arrivals at the rate of
  the same weekday's other dates.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from metric_tracker_rl.agents.audit_finders import Finder, over_sessions
from metric_tracker_rl.agents.warehouse_sql import sessions_cte, sql_literal
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS

ALIASES = {"platform": "p", "country": "c", "channel": "h", "user_type": "u"}
SPREAD = 0.06  # a segment's conversion (or sessions) varies from date to date by about this share, beyond sampling


SEGMENT = (
    "nullif(p, '') platform, NULL app_version, nullif(c, '') country, nullif(h, '') channel, "
    "nullif(u, '') user_type"
)  # a finding's segment columns, from a segment's keys


def _sessions(step: int | None, only: str = "TRUE", part: str | None = None) -> str:
    """After sessions_cte: `l`, one row per session with its segment (empty text for none), the arrivals d and
    conversions n of `step` (the sessions themselves, n = d = 1, where None; with `part`, n = 1 for the sessions
    it keeps), of the sessions `only` keeps."""
    d, n = ("m0", "m0") if step is None else (f"m{step}", f"m{step + 1}")
    if part is not None:
        n = f"({part})::INT"
    return f", l AS (SELECT date, platform p0, country c0, channel h0, user_type u0, {d} d, {n} n FROM s WHERE {only})"


def _grouped(sets: Sequence[Sequence[str]], hours: bool = False, by_step: bool = False) -> str:
    """After `l`: `g`, per date (and hour) and segment of `sets`, its conversions n and arrivals d (a field the
    segment leaves open is empty text, so segments join on every field); `by_step`: per step k too."""
    grouping = ", ".join("(" + ", ".join(ALIASES[f] + "0" for f in fields) + ")" for fields in sets)
    used = {ALIASES[f] for fields in sets for f in fields}
    keys = ", ".join(f"coalesce({a}0, '') {a}" if a in used else f"'' {a}" for a in "pchu")
    also = ("hr, " if hours else "") + ("k, " if by_step else "")  # grouped by these too
    return (
        f", g AS (SELECT date, {also}{keys}, sum(n) n, sum(d) d FROM l GROUP BY date, {also}GROUPING SETS ({grouping}))"
    )


def daily_scan(
    what: str,
    step: int | None,
    sets: Sequence[Sequence[str]],
    direction: int,
    share: float,
    z: float,
    run: int = 1,
    least: float = 10.0,
    only: str = "TRUE",
    grow: float | None = None,
    part: str | None = None,
    alone: Sequence[str] = (),
) -> str:
    """Per date and segment of `sets`: a step's conversion (`step`: 0 the menu step .. 3 payment) or, with None,
    the sessions, against the same weekday's other dates (their pooled rate, or mean sessions), read over `run`
    consecutive dates ending on it; each date of a run whose residual passes `z` in `direction` (-1 a fall) and
    whose move passes `share` of its expected value on the run (half of it on the date itself, within a run) is a
    finding. A date
    expecting fewer than `least` conversions (sessions) in its segment is not read: so few are far from normal.
    `only` (a condition on the session's columns) reads some sessions alone, e.g. one user type's. `grow` (a lower
    z) extends each finding of one date to the next two dates on either side, in turn, that pass it and `share`: a
    change of a few dates seldom passes `z` on each of them, and a date beside one is far likelier to hold it.
    `part` (with `step` None; a condition on the session's columns) reads the share of the segment's sessions it
    keeps, as a rate: a change of those sessions alone, not of every session alike. `alone` (fields of the
    segments searched): a finding stands alone, or is none; see _alone."""
    metric = "sessions" if step is None else RATE_COLUMNS[step]
    if step is None and part is None:  # sessions: Poisson against the other dates' mean, the date's zero kept
        expected = "(sum(n) OVER w - n) / nullif(count(*) OVER w - 1, 0)"
        variance = "e"
    else:
        expected = "d * (sum(n) OVER w - n) / nullif(sum(d) OVER w - d, 0)"
        variance = "e * greatest(1 - e / nullif(d, 0), 0.05)"
    sign = "" if direction > 0 else "-"
    own = share if run == 1 else share / 2  # a date of a run moves by half the run's share at least
    return (
        sessions_cte()
        + _sessions(step, only, part)
        + _grouped(sets)
        + ", grid AS (SELECT k.*, t.date FROM (SELECT DISTINCT p, c, h, u FROM g) k CROSS JOIN "
        "(SELECT DISTINCT date FROM g) t), "
        "z AS (SELECT grid.*, coalesce(n, 0) n, coalesce(d, 0) d FROM grid LEFT JOIN g USING (date, p, c, h, u)), "
        f"x AS (SELECT *, {expected} e FROM z WINDOW w AS (PARTITION BY p, c, h, u, isodow(date))), "
        f"y AS (SELECT *, {variance} v FROM x WHERE e >= {least}), "
        f"r AS (SELECT *, sum(n - e) OVER o rr, sum(e) OVER o re, sum(v + ({SPREAD} * e) ^ 2) OVER o rv, "
        f"count(*) OVER o rn FROM y WINDOW o AS (PARTITION BY p, c, h, u ORDER BY date RANGE BETWEEN "
        f"INTERVAL {run - 1} DAY PRECEDING AND CURRENT ROW)), "
        f"hit AS (SELECT date last, p, c, h, u FROM r WHERE rn = {run} AND {sign}rr / sqrt(rv) >= {z} "
        f"AND {sign}rr >= {share} * re), "
        f"days AS (SELECT DISTINCT y.date, y.p, y.c, y.h, y.u FROM hit JOIN y ON y.p = hit.p AND y.c = hit.c "
        f"AND y.h = hit.h AND y.u = hit.u AND y.date BETWEEN hit.last - {run - 1} AND hit.last "
        f"WHERE {sign}(y.n - y.e) >= {own:g} * y.e)"
        + ("" if grow is None else _grown(sign, share, grow, variance))
        + ("" if not alone else _alone("days" if grow is None else "grown", sign, variance, alone))
        + " "
        + _select(metric, what, "alone" if alone else "days" if grow is None else "grown")
    )


SIBLING_SHARE, SIBLING_Z = 0.2, 3.0  # a sibling's own date that moves this far, beyond sampling noise, moved too
SIBLINGS = 2  # siblings that moved with a finding make it a wider change's (one is as often a sibling's noise)


def _alone(source: str, sign: str, variance: str, fields: Sequence[str]) -> str:
    """After daily_scan's `source`: `alone`, its findings that fewer than SIBLINGS sibling segments (sharing one of
    `fields` with it, differing in another) moved with, by SIBLING_SHARE and SIBLING_Z, within a date of it. A
    change of one segment leaves its siblings be; one that siblings show too is a wider change's, read at its own
    segment elsewhere (a run grown by a date reaches the date beside a wider change's)."""
    keys = [ALIASES[f] for f in fields]
    sibling = " OR ".join(
        f"(o.{k} = f.{k} AND ({' OR '.join(f'o.{j} <> f.{j}' for j in keys if j != k)}))" for k in keys
    )
    return (
        f", moved AS (SELECT date, p, c, h, u FROM x WHERE e >= 5 AND {sign}(n - e) >= {SIBLING_SHARE} * e AND "
        f"{sign}(n - e) / sqrt({variance} + ({SPREAD} * e) ^ 2) >= {SIBLING_Z}), "
        f"alone AS (SELECT * FROM {source} f WHERE (SELECT count(DISTINCT (o.p, o.c, o.h, o.u)) FROM moved o "
        f"WHERE abs(o.date - f.date) <= 1 AND ({sibling})) < {SIBLINGS})"
    )


def _grown(sign: str, share: float, z: float, variance: str) -> str:
    """After daily_scan's `days`: `grown`, its dates and those beside them that pass `z` and `share` (read down to
    a few expected conversions), one date out at a time, two at most."""
    near = (
        "SELECT b.date, b.p, b.c, b.h, b.u FROM {0} a JOIN near b ON b.p = a.p AND b.c = a.c AND b.h = a.h "
        "AND b.u = a.u AND abs(b.date - a.date) = 1"
    )
    return (
        f", near AS (SELECT date, p, c, h, u FROM x WHERE e >= 3 AND {sign}(n - e) >= {share} * e AND "
        f"{sign}(n - e) / sqrt({variance} + ({SPREAD} * e) ^ 2) >= {z}), "
        f"one AS (SELECT * FROM days UNION {near.format('days')}), "
        f"grown AS (SELECT * FROM one UNION {near.format('one')})"
    )


def _select(metric: str, what: str, source: str = "days") -> str:
    """The findings of `source` (date, p, c, h, u), one per date and segment, in FINDING_COLUMNS' order."""
    return (
        f"SELECT DISTINCT strftime(date, '%Y-%m-%d') date, {SEGMENT}, '{metric}' metric, '{what}' what "
        f"FROM {source} ORDER BY ALL"
    )


# The rest of an outage's date converts as usual (a fall of the whole day is no block of hours): at least this
# share of what it would.
REST_SHARE = 0.6
BLOCKS = (4, 6, 8, 10)  # the lengths of hours a block scan reads (every checkout outage holds one of them whole)


def hour_scan(what: str, step: int, sets: Sequence[Sequence[str]], share: float, z: float) -> str:
    """Per date, segment of `sets` and block of BLOCKS hours: a step's conversions in the block (by the hour of
    the session's app_open) against its arrivals there at the segment's rate on the same weekday's other dates; a
    block whose conversions are at most `share` of that expected and fall beyond `z` (the signed root of the
    binomial likelihood ratio: a few sessions an hour are far from normal), while the date's other hours convert
    at REST_SHARE of their expected at least, is a finding on its date."""
    frames = ", ".join(
        f"x{length} AS (PARTITION BY p, c, h, u, date ORDER BY hr ROWS BETWEEN CURRENT ROW AND {length - 1} FOLLOWING)"
        for length in BLOCKS
    )
    sums = ", ".join(
        "[" + ", ".join(f"sum({x}) OVER x{length}" for length in BLOCKS) + f"] {name}"
        for x, name in (("n", "ln"), ("d", "ld"), ("q * d", "le"))
    )
    return (
        sessions_cte(hours=True)
        + f", l AS (SELECT date, hr, platform p0, country c0, channel h0, user_type u0, m{step} d, m{step + 1} n "
        "FROM s)"
        + _grouped(sets, hours=True)
        + ", grid AS (SELECT k.*, t.date, hr FROM (SELECT DISTINCT p, c, h, u FROM g) k CROSS JOIN "
        "(SELECT DISTINCT date FROM g) t CROSS JOIN (SELECT range hr FROM range(24))), "
        "z AS (SELECT grid.*, coalesce(n, 0) n, coalesce(d, 0) d FROM grid "
        "LEFT JOIN g USING (date, hr, p, c, h, u)), "
        "q AS (SELECT *, least((sum(n) OVER v - sum(n) OVER t) / nullif(sum(d) OVER v - sum(d) OVER t, 0), 0.98) q "
        "FROM z WINDOW v AS (PARTITION BY p, c, h, u, isodow(date)), t AS (PARTITION BY p, c, h, u, date)), "
        f"b AS (SELECT date, p, c, h, u, {sums}, sum(n) OVER t dn, sum(q * d) OVER t de FROM q "
        f"WINDOW {frames}, t AS (PARTITION BY p, c, h, u, date)), "
        "k AS (SELECT date, p, c, h, u, dn, de, unnest(ln) n, unnest(ld) d, unnest(le) e FROM b), "
        f"days AS (SELECT DISTINCT date, p, c, h, u FROM k WHERE e > 0 AND n <= {share} * e "
        f"AND dn - n >= {REST_SHARE} * (de - e) AND {_binomial_z('n', 'd', 'e')} <= -{z}) "
        + _select(RATE_COLUMNS[step], what)
    )


def _binomial_z(n: str, d: str, e: str) -> str:
    """The signed root of the likelihood ratio of `n` conversions of `d` arrivals against `e` expected."""
    return (
        f"-sqrt(2 * (coalesce({n} * ln(nullif({n}, 0) / {e}), 0) + coalesce(({d} - {n}) * "
        f"ln(nullif({d} - {n}, 0) / ({d} - {e})), 0)))"
    )


# The segments each finder searches: the kind of segment its mechanism holds (the expert knows them).
PLATFORM, COUNTRY = (("platform",),), (("country",),)
ORGANIC_NEW = "channel = 'organic' AND user_type = 'new'"  # the users an app store's feature brings
# A platform's organic new users in a country: their sessions rising far, and their share of its sessions rising.
PLATFORM_COUNTRY = (("platform", "country"),)
NEWCOMERS_RISE = daily_scan("store_feature", None, PLATFORM_COUNTRY, 1, 1.5, 6.0, least=3.0, only=ORGANIC_NEW)
NEWCOMERS_SHARE = daily_scan("store_feature", None, PLATFORM_COUNTRY, 1, 0.3, 3.0, least=3.0, part=ORGANIC_NEW)


RETURNING = "user_type = 'returning'"
MOBILE_RETURNING = f"{RETURNING} AND platform IN ('ios', 'android')"  # the users push notifications reach
PLATFORM_USERS, COUNTRY_USERS = (("platform", "user_type"),), (("country", "user_type"),)
# Three fields: every platform's channels in every country, and every platform's user types in every country.
PLATFORM_COUNTRY_CHANNEL = (("platform", "country", "channel"),)
STORE_ADS = "channel = 'paid_search' AND platform IN ('ios', 'android')"  # the users an app store's search ads bring
PLATFORM_COUNTRY_USERS = (("platform", "country", "user_type"),)


def both(first: str, second: str) -> str:
    """The findings two daily scans both return (each one per date and segment, named alike), over one reading of
    the sessions."""
    read = [over_sessions(scan) for scan in (first, second)]
    if not all(rest is not None and not rest[0] and rest[1].startswith("WITH ") for rest in read):
        raise ValueError("both() joins daily scans, which read the sessions first")
    first, second = (f"SELECT * FROM ({rest[1]})" for rest in read if rest is not None)
    return f"{sessions_cte()} {first} INTERSECT {second} ORDER BY ALL"


FINDERS: tuple[Finder, ...] = (
    Finder(
        "checkout_outage_hours",
        hour_scan("checkout_outage_hours", 2, COUNTRY, 0.25, 4.5),
        kind="incident",
        family="funnel_break",
    ),
    Finder(
        "onboarding_break",
        daily_scan("onboarding_break", 0, (("platform", "user_type"),), -1, 0.4, 3.5, only="user_type = 'new'"),
        kind="incident",
        family="rate_drop_from_median",
    ),
    Finder(
        "paid_channel_stop",
        daily_scan("paid_channel_stop", None, (("country", "channel"),), -1, 0.6, 4.5, run=2, grow=2.5),
        kind="incident",
        family="absolute_drop_in_event_count",
        lasting=True,
    ),
    Finder(
        "price_rise",
        daily_scan("price_rise", 2, COUNTRY, -1, 0.4, 4.0, run=3),
        kind="incident",
        family="rate_drop_from_median",
        lasting=True,
    ),
    Finder(
        "promo_surge",
        daily_scan("promo_surge", 1, COUNTRY, 1, 0.35, 4.0, least=15.0, grow=2.5),
        kind="incident",
        family="rate_spike_from_median",
    ),
    # A store's wave of installs: organic new users' sessions on a platform in a country rise far, and their share
    # of its sessions rises too (a demand swing or a mix shift brings every user alike, so the share holds however
    # far the sessions rise; where other users' sessions fell, the share rises with no more newcomers).
    Finder(
        "store_feature", both(NEWCOMERS_RISE, NEWCOMERS_SHARE), kind="incident", family="absolute_spike_in_event_count"
    ),
    Finder(
        "search_outage_hours",
        hour_scan("search_outage_hours", 1, PLATFORM, 0.25, 4.5),
        kind="incident",
        family="funnel_break",
    ),
    # Narrow segments: one user type of a platform or country, read from that user type's sessions alone.
    Finder(
        "push_delivery_lapse",
        daily_scan("push_delivery_lapse", None, PLATFORM_USERS, -1, 0.3, 4.0, run=2, grow=2.5, only=MOBILE_RETURNING),
        kind="incident",
        family="absolute_drop_in_event_count",
        lasting=True,
    ),
    Finder(
        "stored_card_challenge",
        daily_scan("stored_card_challenge", 3, COUNTRY_USERS, -1, 0.35, 4.5, run=2, least=5.0, only=RETURNING),
        kind="incident",
        family="rate_drop_from_median",
        lasting=True,
    ),
    Finder(
        "member_price_sale",
        daily_scan("member_price_sale", 1, COUNTRY_USERS, 1, 0.35, 4.0, least=15.0, grow=2.5, only=RETURNING),
        kind="incident",
        family="rate_spike_from_median",
    ),
    # Three fields: a run of dates whose sessions fell far in one app store's paid search in one country (read from
    # those sessions), or whose menu step fell far for one platform's returning users in one country (read from
    # theirs: a user who has no session yet loses none to a sign-out). Listed last, so a wider segment's finding on
    # the date and metric goes first (dedupe keeps the first).
    Finder(
        "search_ads_pause",
        daily_scan(
            "search_ads_pause",
            None,
            PLATFORM_COUNTRY_CHANNEL,
            -1,
            0.6,
            4.0,
            run=2,
            grow=2.5,
            least=8.0,
            only=STORE_ADS,
        ),
        kind="incident",
        family="absolute_drop_in_event_count",
        lasting=True,
    ),
    # One platform in one country: a fall its platform shows in another country, or its country on another
    # platform, about the date is a wider change's, which leaves this scan a lower bar.
    Finder(
        "regional_sign_out",
        daily_scan(
            "regional_sign_out",
            0,
            PLATFORM_COUNTRY_USERS,
            -1,
            0.3,
            4.0,
            run=2,
            grow=2.5,
            least=8.0,
            only=RETURNING,
            alone=("platform", "country"),
        ),
        kind="incident",
        family="rate_drop_from_median",
        lasting=True,
        alone=True,
    ),
)


# Cuboids of one or two fields a second incident on a date may hold (no app version: a version's falls are its
# release's).
CUBOIDS = (
    ("platform",),
    ("country",),
    ("channel",),
    ("user_type",),
    ("platform", "country"),
    ("platform", "channel"),
    ("platform", "user_type"),
    ("country", "channel"),
    ("country", "user_type"),
    ("channel", "user_type"),
)
HOST_LEAST = 8  # a cuboid's arrivals at the step on the date, at the least (an outage earlier leaves fewer)
HOST_TOP = 30


def host_falls_sql(free: Mapping[str, Sequence[int]], fall: float) -> str:
    """On each date of `free`, each of its steps listed (k: 1 the menu step .. 4 payment), its conversion per cuboid
    of CUBOIDS against the same weekday's other dates (pooled), where it fell by `fall` of its expected at least:
    the HOST_TOP strongest falls, each with z, its relative fall over its sampling noise and a date's usual spread
    (SPREAD), and `beside`, the lower z of the dates on either side of it (NULL where neither was read)."""
    listed = (
        " OR ".join(
            f"date = DATE '{d}' AND k IN ({', '.join(map(str, steps))})" for d, steps in sorted(free.items()) if steps
        )
        or "FALSE"
    )
    return (
        sessions_cte() + ", l AS (SELECT date, platform p0, country c0, channel h0, user_type u0, k, "
        "[m0, m1, m2, m3][k] d, [m1, m2, m3, m4][k] n FROM s, range(1, 5) t(k))"
        + _grouped(CUBOIDS, by_step=True)
        + ", x AS (SELECT *, d * (sum(n) OVER w - n) / nullif(sum(d) OVER w - d, 0) e FROM g "
        "WINDOW w AS (PARTITION BY k, p, c, h, u, isodow(date))), "
        f"zs AS (SELECT *, round((n - e) / e / sqrt(greatest(d - e, 0.05 * d) / (d * e) + {SPREAD} ^ 2), 2) z "
        f"FROM x WHERE d >= {HOST_LEAST} AND e > 0), "
        "y AS (SELECT *, least(CASE WHEN lag(date) OVER o = date - 1 THEN lag(z) OVER o END, "
        "CASE WHEN lead(date) OVER o = date + 1 THEN lead(z) OVER o END) beside FROM zs "
        "WINDOW o AS (PARTITION BY k, p, c, h, u ORDER BY date)) "
        f"SELECT strftime(date, '%Y-%m-%d') date, k, {SEGMENT}, z, beside FROM y "
        f"WHERE ({listed}) AND n <= {1 - fall:g} * e "
        f"ORDER BY z LIMIT {HOST_TOP}"
    )


FIELDS = ("platform", "country", "channel", "user_type")
# Every cuboid of one to three fields: a second incident's cuboid keeps one of its host's values and may name two
# fields more.
NESTED = tuple(c for size in (1, 2, 3) for c in itertools.combinations(FIELDS, size))


def cuboid_falls_sql(date: str, step: int, within: Mapping[str, str]) -> str:
    """On `date`, `step`'s (1 the menu step .. 4 payment) conversions n, arrivals d and the conversions e expected at
    the same weekday's other dates' rate (pooled), per cuboid of NESTED that agrees with `within` (field: value) on
    every field both name, where it fell: the cuboids of one fall, from its widest reading to its narrowest."""
    agree = " AND ".join(f"({ALIASES[f]} = '' OR {ALIASES[f]} = {sql_literal(v)})" for f, v in within.items())
    return (
        sessions_cte() + f", l AS (SELECT date, platform p0, country c0, channel h0, user_type u0, m{step - 1} d, "
        f"m{step} n FROM s)"
        + _grouped(NESTED)
        + ", x AS (SELECT *, d * (sum(n) OVER w - n) / nullif(sum(d) OVER w - d, 0) e FROM g "
        "WINDOW w AS (PARTITION BY p, c, h, u, isodow(date))) "
        f"SELECT {SEGMENT}, n, d, round(e, 3) e FROM x WHERE date = {sql_literal(date)} "
        f"AND {agree or 'TRUE'} AND d >= {HOST_LEAST} AND n < e ORDER BY ALL"
    )
