"""The SQL the scan analyst sends, in the shapes a capable model wrote at deep: one statement reads every context
table, one scores every cuboid's rates and counts against the median of the same weekday (a robust z by the MAD of
its own series), and three scan the hours of each platform x country cell; later statements read a rollout's old and
new versions side by side and the dates around a fall. Every statement stays inside the query tool's limits (one
SELECT of at most 4000 characters, at most 120 rows a page)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# The rate of each funnel step as the scans name it (r1 to r4), with its numerator and denominator sums.
STEP_RATES: tuple[tuple[str, str, str, str], ...] = (
    ("r1", "app_open_to_menu_open", "m", "a"),
    ("r2", "menu_open_to_product_added_to_cart", "c", "m"),
    ("r3", "product_added_to_cart_to_order_placed", "o", "c"),
    ("r4", "order_placed_to_payment_successful", "p", "o"),
)
STEP_OF_RATE = {rate: step for rate, step, _, _ in STEP_RATES}
COUNT_SUMS = (
    "sum(app_opens) a, sum(menu_opens) m, sum(product_added_to_cart) c, sum(orders_placed) o, sum(payment_successful) p"
)
SQL_CHARS = 4000  # the query tool refuses a longer statement
PAGE = 120  # the most rows a page holds: every scan asks for one full page

# The cuboids of one and two dimensions (a version with its platform counts as one), and of three.
TWO_DIMENSION_SETS: tuple[tuple[str, ...], ...] = (
    ("platform",),
    ("country",),
    ("platform", "app_version"),
    ("channel",),
    ("user_type",),
    ("platform", "country"),
    ("country", "channel"),
    ("platform", "channel"),
    ("platform", "user_type"),
    ("country", "user_type"),
    ("channel", "user_type"),
)
THREE_DIMENSION_SETS: tuple[tuple[str, ...], ...] = (
    ("platform", "country", "channel"),
    ("platform", "country", "user_type"),
    ("country", "channel", "user_type"),
    ("platform", "channel", "user_type"),
    ("platform", "app_version", "channel"),
    ("platform", "app_version", "user_type"),
    ("platform", "app_version", "country"),
)


def listed(values: Iterable[str]) -> str:
    """Text literals for an IN list."""
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


def context_sql() -> str:
    """Every context table in one statement, a row per item with the same columns."""
    return (
        "SELECT 'experiment' kind, experiment name, platform, country, channel, user_type, target_step step, "
        "start_date::VARCHAR first_date, end_date::VARCHAR last_date, NULL::INTEGER start_hour, "
        "NULL::INTEGER end_hour FROM experiments "
        "UNION ALL SELECT 'campaign', campaign, NULL, country, channel, NULL, NULL, start_date::VARCHAR, "
        "end_date::VARCHAR, NULL, NULL FROM campaigns "
        "UNION ALL SELECT 'holiday', name, NULL, country, NULL, NULL, NULL, date::VARCHAR, date::VARCHAR, NULL, "
        "NULL FROM holidays "
        "UNION ALL SELECT 'partner', partner, platform, country, NULL, NULL, NULL, date::VARCHAR, date::VARCHAR, "
        "start_hour, end_hour FROM partner_status "
        "UNION ALL SELECT 'release', app_version, platform, NULL, NULL, NULL, NULL, min(rollout_start)::VARCHAR, "
        "NULL, NULL, NULL FROM releases GROUP BY platform, app_version ORDER BY kind, first_date"
    )


def scan_sql(
    sets: Sequence[tuple[str, ...]],
    skipped_dates: Iterable[str],
    min_events: int,
    floor_z: float,
    skipped_counts: str = "",
) -> str:
    """Every cuboid of `sets` on every date: its four step rates and (without a version) its app opens, each
    against the median of its own same weekday, as a robust z by the MAD of its own series; the rows beyond
    `floor_z`, strongest first. `skipped_counts` is a condition whose app-open rows are left out (moves the
    context explains already)."""
    grouping = ", ".join("(date, " + ", ".join(fields) + ")" for fields in sets)
    columns = "date, wd, platform, country, app_version, channel, user_type"
    rates = " UNION ALL ".join(
        f"SELECT {columns}, '{rate}' k, {num}/{den} v, {den} n FROM g" for rate, _, num, den in STEP_RATES
    )
    counts = f"SELECT {columns}, 'a', a, 1000 FROM g WHERE app_version IS NULL"
    if skipped_counts:
        counts += f" AND NOT ({skipped_counts})"
    skipped = listed(skipped_dates)
    z = "(v-med)/(1.4826*mad)"
    return (
        f"WITH g AS (SELECT date, dayofweek(date) wd, platform, country, app_version, channel, user_type, "
        f"{COUNT_SUMS} FROM daily_by_segment GROUP BY GROUPING SETS ({grouping})), "
        f"l AS ({rates} UNION ALL {counts}), "
        "b AS (SELECT *, median(v) OVER (PARTITION BY platform, country, app_version, channel, user_type, k, wd) "
        f"med FROM l WHERE n>={min_events}), "
        "d AS (SELECT *, median(abs(v-med)) OVER (PARTITION BY platform, country, app_version, channel, "
        "user_type, k) mad FROM b) "
        "SELECT date, platform pl, country co, app_version av, channel ch, user_type ut, k, n, round(v,4) v, "
        f"round(med,4) med, round({z},1) z FROM d WHERE "
        + (f"date NOT IN ({skipped}) AND " if skipped else "")
        + f"mad>0 AND abs({z})>{floor_z} ORDER BY abs({z}) DESC LIMIT {PAGE}"
    )


def stops_sql(skipped_dates: Iterable[str]) -> str:
    """Hours in which a step converted under 0.35 of that hour's median, per cell, platform and country: two or
    more such hours on a date and step."""
    rates = " UNION ALL ".join(
        f"SELECT date, hour, platform, country, '{rate}' k, {num}/{den} v, {den} n FROM h"
        for rate, _, num, den in STEP_RATES
    )
    skipped = listed(skipped_dates)
    return (
        f"WITH h AS (SELECT date, hour, platform, country, {COUNT_SUMS} FROM hourly_by_segment GROUP BY "
        "GROUPING SETS ((date, hour, platform, country), (date, hour, platform), (date, hour, country))), "
        f"l AS ({rates}), "
        "b AS (SELECT *, median(v) OVER (PARTITION BY platform, country, hour, k) med FROM l WHERE n>=8) "
        "SELECT date, platform, country, k, count(*) hrs, string_agg(hour::varchar, ',' ORDER BY hour) hs, "
        "round(avg(v),3) v, round(avg(med),3) med, sum(n) n FROM b WHERE v < 0.35*med "
        + (f"AND date NOT IN ({skipped}) " if skipped else "")
        + f"GROUP BY ALL HAVING count(*)>=2 ORDER BY hrs DESC, n DESC LIMIT {PAGE}"
    )


def opens_sql(skipped_dates: Iterable[str]) -> str:
    """Hours whose app opens collapsed ('low'), doubled ('high'), or rose while fewer of them reached the menu
    ('bot'), each against the same hour of the same day type, per cell, platform and country: three or more such
    hours on a date, the most opens moved first."""
    skipped = listed(skipped_dates)
    return (
        "WITH h AS (SELECT date, hour, platform, country, dayofweek(date) IN (0,6) we, sum(app_opens) a, "
        "sum(menu_opens) m FROM hourly_by_segment GROUP BY GROUPING SETS ((date, hour, platform, country), "
        "(date, hour, country), (date, hour, platform))), "
        "b AS (SELECT *, median(a) OVER (PARTITION BY platform, country, hour, we) med, median(m/a) OVER "
        "(PARTITION BY platform, country, hour, we) mr FROM h), "
        "f AS (SELECT *, CASE WHEN a>1.3*med AND m/a<0.85*mr THEN 'bot' WHEN a<0.55*med THEN 'low' "
        "WHEN a>1.6*med THEN 'high' END fl FROM b WHERE med>=10"
        + (f" AND date NOT IN ({skipped})" if skipped else "")
        + ") "
        "SELECT date, platform, country, fl, count(*) hrs, string_agg(hour::varchar, ',' ORDER BY hour) hs, "
        "sum(a) a, round(sum(med)) med, round(sum(m)/sum(a),3) r1, round(avg(mr),3) mr FROM f "
        "WHERE fl IS NOT NULL GROUP BY ALL HAVING count(*)>=3 ORDER BY abs(sum(a)-sum(med)) DESC, hrs DESC "
        f"LIMIT {PAGE}"
    )


def impossible_sql() -> str:
    """Hours in which a later event outnumbered the one before it, per date and cell (a count logged twice)."""
    return (
        "SELECT date, platform, country, app_version, "
        "sum(CASE WHEN menu_opens>app_opens THEN 1 ELSE 0 END) hm, "
        "sum(CASE WHEN orders_placed>product_added_to_cart THEN 1 ELSE 0 END) ho, "
        "sum(CASE WHEN payment_successful>orders_placed THEN 1 ELSE 0 END) hp, "
        "sum(app_opens) a, sum(menu_opens) m, sum(product_added_to_cart) c, sum(orders_placed) o, "
        "sum(payment_successful) p FROM hourly_by_segment GROUP BY ALL HAVING hm+ho+hp>=2 "
        f"ORDER BY hm+ho+hp DESC LIMIT {PAGE}"
    )


def versions_sql(windows: Sequence[tuple[str, str, str]]) -> str:
    """Each version's counts per date of the given rollout windows (platform, first date, last date): a new
    version beside the old ones while it rolls out."""
    within = " OR ".join(
        f"(platform='{platform}' AND date BETWEEN '{first}' AND '{last}')" for platform, first, last in windows
    )
    return (
        f"SELECT date, platform, app_version, {COUNT_SUMS} FROM daily_by_segment WHERE platform<>'web' "
        f"AND ({within}) GROUP BY ALL ORDER BY platform, date, app_version LIMIT {PAGE}"
    )


def series_sql(series: Sequence[tuple[str, dict[str, str], str, Sequence[str]]]) -> str:
    """Each series (an id, a cuboid, a step rate r1-r4 or the count 'a', its dates) read on its dates: the
    observed value and the median of the same weekday in the other weeks (the published baseline)."""
    parts, targets = [], []
    for ident, cuboid, rate, dates in series:
        where = " AND ".join(f"{field}='{value}'" for field, value in cuboid.items()) or "TRUE"
        value = (
            "sum(app_opens)::DOUBLE"
            if rate == "a"
            else next(
                f"sum({_column(num)})/nullif(sum({_column(den)}),0)" for r, _, num, den in STEP_RATES if r == rate
            )
        )
        parts.append(f"SELECT '{ident}' id, date, {value} v FROM daily_by_segment WHERE {where} GROUP BY date")
        targets += [f"('{ident}', DATE '{date}')" for date in dates]
    return (
        f"WITH s AS ({' UNION ALL '.join(parts)}), t(id, d) AS (VALUES {', '.join(targets)}) "
        "SELECT t.id, t.d date, (SELECT round(v,4) FROM s WHERE s.id=t.id AND s.date=t.d) obs, "
        "(SELECT round(median(v),4) FROM s WHERE s.id=t.id AND dayofweek(s.date)=dayofweek(t.d) "
        "AND s.date<>t.d) base FROM t ORDER BY t.id, t.d"
    )


def _column(alias: str) -> str:
    return {
        "a": "app_opens",
        "m": "menu_opens",
        "c": "product_added_to_cart",
        "o": "orders_placed",
        "p": "payment_successful",
    }[alias]
