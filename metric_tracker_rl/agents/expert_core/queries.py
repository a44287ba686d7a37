"""The SQL both segmented experts read the segments with: each segment's step conversions against the published
baseline (the median of the same weekday in the other weeks), the hour-of-day shape of its app opens, and the hours
in which a step nearly stopped converting. Each function writes one statement for the query tool."""

from __future__ import annotations

import re
from typing import Any

from metric_tracker_rl.models import MetricTrackerRlAction

COUNTS = (
    "sum(app_opens) o, sum(menu_opens) m, sum(product_added_to_cart) c, sum(orders_placed) p, sum(payment_successful) y"
)
# The adjacent steps, each as (metric, numerator alias, denominator alias) of the segment sums above.
# The one-letter name of each segment field in the statements that name them.
ALIAS = {"platform": "p", "country": "c", "app_version": "v", "channel": "h", "user_type": "u"}
STEPS: tuple[tuple[str, str, str], ...] = (
    ("app_open_to_menu_open", "m", "o"),
    ("menu_open_to_product_added_to_cart", "c", "m"),
    ("product_added_to_cart_to_order_placed", "p", "c"),
    ("order_placed_to_payment_successful", "y", "p"),
)
STEP_INTO_EVENT = {
    "app_open_to_menu_open": "menu_opens",
    "product_added_to_cart_to_order_placed": "orders_placed",
    "order_placed_to_payment_successful": "payment_successful",
}
# The funnel's events by their alias in COUNTS.
EVENT_OF = {
    "o": "app_opens",
    "m": "menu_opens",
    "c": "product_added_to_cart",
    "p": "orders_placed",
    "y": "payment_successful",
}
# A segment's daily conversion moves with sampling (binomial) and with its cells' own day-to-day spread: about 2% of
# the rate for a platform or a country. A step is read as moved beyond RATE_SCAN_Z of that noise, and by at
# least SCAN_SHARE of its baseline.
RATE_SPREAD = 0.02
RATE_SCAN_Z, SCAN_SHARE = 4.0, 0.05
RELEASE_DAYS = 9  # a version is scanned from its release's first date to this many dates after it
# Hour-of-day shape: an hour whose ratio to its baseline is below LOW (above HIGH) times the day's median ratio moved
# on its own; hours with a baseline under HOUR_FLOOR app opens are too noisy to read.
LOW, HIGH, HOUR_FLOOR = 0.45, 1.8, 30
# A step nearly stopped converting in an hour: below STOP times the day's median for that step, in an hour where the
# day's median rate expects at least STOP_FLOOR conversions (so that none by chance is out of the question).
STOP, STOP_FLOOR, STOP_HOURS = 0.15, 12, 2


def _segment_sums(dimensions: tuple[str, ...]) -> str:
    """One row per date and segment: the sums of its cells' counts."""
    parts = {
        "all": f"SELECT date, NULL platform, NULL country, NULL app_version, {COUNTS} FROM daily_by_segment "
        "GROUP BY date",
        "platform": f"SELECT date, platform, NULL country, NULL app_version, {COUNTS} FROM daily_by_segment "
        "GROUP BY ALL",
        "country": f"SELECT date, NULL platform, country, NULL app_version, {COUNTS} FROM daily_by_segment "
        "GROUP BY ALL",
        "version": f"SELECT date, platform, NULL country, app_version, {COUNTS} FROM daily_by_segment "
        "WHERE platform <> 'web' GROUP BY ALL",
    }
    return " UNION ALL ".join(parts[d] for d in dimensions)


def rates_sql(dimensions: tuple[str, ...]) -> str:
    """Each segment's step conversions that moved beyond their noise (the change against the same-weekday
    baseline, and its z); a version only in the first dates of its release, where a regression would show."""
    steps = " UNION ALL ".join(
        f"SELECT date, platform, country, app_version, k, '{name}' entity_name, {num} num, {den} den FROM v"
        for name, num, den in STEPS
    )
    return (
        f"WITH s AS ({_segment_sums(dimensions)}), "
        "v AS (SELECT *, concat_ws('/', platform, country, app_version) k FROM s), "
        f"u AS ({steps}), "
        "b AS (SELECT a.date, a.platform, a.country, a.app_version, a.entity_name, "
        "any_value(a.num / nullif(a.den, 0)) observed_value, any_value(a.den) den, "
        "median(x.num / nullif(x.den, 0)) baseline_value FROM u a JOIN u x ON a.k = x.k "
        "AND a.entity_name = x.entity_name AND isodow(a.date) = isodow(x.date) AND a.date <> x.date GROUP BY ALL), "
        "w AS (SELECT *, (observed_value - baseline_value) / sqrt(baseline_value * greatest(1 - baseline_value, "
        f"0.02) / den + ({RATE_SPREAD} * baseline_value) ^ 2) z FROM b) "
        "SELECT date, platform, country, app_version, entity_name, round(observed_value / baseline_value - 1, 3) "
        "change, round(z, 1) z FROM w "
        f"WHERE abs(z) >= {RATE_SCAN_Z} AND abs(observed_value / baseline_value - 1) >= {SCAN_SHARE} "
        "AND (app_version IS NULL OR EXISTS (SELECT 1 FROM releases l WHERE l.platform = w.platform AND "
        f"l.app_version = w.app_version AND w.date BETWEEN l.rollout_start AND l.rollout_start + {RELEASE_DAYS})) "
        "ORDER BY date, entity_name, z"
    )


def hours_sql(dimensions: tuple[str, ...], holidays: list[str], cells: bool = False) -> str:
    """Per date and segment, the hours whose app opens moved apart from the rest of the day's hours, and `kept`:
    the share of the low hours' loss the other hours gained (an outage loses the opens, near 0; a timing shift moves
    them to other hours, near 1; NULL with no low hour). `cells`: also each platform and country together, only
    those with low hours and at most one high hour (what an outage looks like, all a cell is read for)."""
    sets = {"all": "()", "platform": "(platform)", "country": "(country)"}
    grouping = ", ".join([*(sets[d] for d in dimensions), *(["(platform, country)"] if cells else [])])
    wanted = "(n_low >= 2 OR n_high >= 2)"
    if cells:  # a row naming both is a cell's
        wanted += " AND (platform IS NULL OR country IS NULL OR n_low >= 2 AND n_high <= 1)"
    # No holiday, no filter (NOT IN (NULL) would drop every row).
    skipped = f"WHERE a.date NOT IN ({', '.join(repr(date) for date in holidays)}) " if holidays else ""
    return (
        "WITH h AS (SELECT date, hour, platform, country, sum(app_opens) o FROM hourly_by_segment "
        f"GROUP BY date, hour, GROUPING SETS ({grouping})), "
        "v AS (SELECT *, concat_ws('/', platform, country) k FROM h), "
        "b AS (SELECT a.date, a.hour, a.platform, a.country, any_value(a.o) o, median(x.o) base FROM v a "
        "JOIN v x ON a.k = x.k AND a.hour = x.hour AND isodow(a.date) = isodow(x.date) AND a.date <> x.date "
        f"{skipped}GROUP BY ALL), "
        "m AS (SELECT *, median(o / base) OVER (PARTITION BY date, platform, country) day_ratio FROM b "
        f"WHERE base >= {HOUR_FLOOR}), "
        "r AS (SELECT *, o / base / day_ratio q, o - base * day_ratio gain FROM m) "
        f"SELECT date, platform, country, count(*) FILTER (q <= {LOW}) n_low, count(*) FILTER (q >= {HIGH}) "
        f"n_high, string_agg(hour::VARCHAR, ',' ORDER BY hour) FILTER (q <= {LOW}) low_hours, "
        f"string_agg(hour::VARCHAR, ',' ORDER BY hour) FILTER (q >= {HIGH}) high_hours, "
        f"round(sum(gain) FILTER (q > {LOW}) / nullif(-sum(gain) FILTER (q <= {LOW}), 0), 2) kept "
        f"FROM r GROUP BY ALL HAVING {wanted} ORDER BY date"
    )


def stops_sql(blind: bool) -> str:
    """Per date, version (or the aggregate) and step, the hours in which the step nearly stopped converting, and
    how the platform's other versions converted in those hours against their own day (`others`): a failure of the
    whole platform stops them too."""
    group = "NULL platform, NULL app_version" if blind else "platform, app_version"
    return (
        f"WITH h AS (SELECT date, hour, {group}, {COUNTS} FROM hourly_by_segment GROUP BY ALL), "
        f"u AS ({step_rows('date, hour, platform, app_version')}), "
        "m AS (SELECT *, median(num / den) OVER (PARTITION BY date, platform, app_version, entity_name) med "
        "FROM u WHERE den > 0), "
        "g AS (SELECT date, platform, app_version, entity_name, count(*) stopped_hours, list(hour) stopped FROM m "
        f"WHERE den * med >= {STOP_FLOOR} AND num / den / med < {STOP} GROUP BY ALL "
        f"HAVING count(*) >= {STOP_HOURS}) "
        "SELECT g.date, g.platform, g.app_version, g.entity_name, any_value(g.stopped_hours) stopped_hours, "
        "round(sum(u.num) FILTER (list_contains(g.stopped, u.hour)) / sum(u.den) FILTER (list_contains(g.stopped, "
        "u.hour)) / (sum(u.num) / sum(u.den)), 2) others FROM g LEFT JOIN u ON u.date = g.date AND "
        "u.platform = g.platform AND u.app_version <> g.app_version AND u.entity_name = g.entity_name "
        "GROUP BY ALL ORDER BY g.date"
    )


def step_rows(keys: str) -> str:
    """A row per step of each row of h (its COUNTS by alias): its `keys`, entity_name, num and den."""
    names = ", ".join(f"'{name}'" for name, _, _ in STEPS)
    return (
        f"SELECT {keys}, unnest([{names}]) entity_name, unnest([{', '.join(n for _, n, _ in STEPS)}]) num, "
        f"unnest([{', '.join(d for _, _, d in STEPS)}]) den FROM h"
    )


def sql_text(value: str | None, typed: bool = True) -> str:
    """A text literal; NULL typed as text where its VALUES column takes its type from it (the first row: the
    later rows' plain NULLs take the column's type)."""
    if value is None:
        return "NULL::VARCHAR" if typed else "NULL"
    return "'" + value.replace("'", "''") + "'"


_QUOTED = re.compile(r"('(?:[^']|'')*')")
_SPACED = re.compile(r"\s*([,=<>+*/^()|-])\s*")


def compact(sql: str) -> str:
    """The same statement without the spaces around its punctuation and operators (outside its text literals):
    fewer characters, the same query."""
    parts = _QUOTED.split(sql)
    parts[::2] = [_SPACED.sub(r"\1", part).replace("--", "- -") for part in parts[::2]]
    return "".join(parts)


# A binary operator between its operands (spaced both sides; a unary minus and SELECT's star keep their space).
_OPERATOR = re.compile(r"(?<!SELECT) ([=<>+*/^|-]+) (?!FROM)")
_UNION = re.compile(r"UNION ALL ")
_AFTER_TABLE = re.compile(r"\w+(?:\([\w, ]*\))? AS \((?=SELECT|VALUES)|SELECT |\(SELECT ")  # after a ) or ,


def readable(sql: str, limit: int) -> str:
    """The statement as an analyst writes it: outside its text literals, single spaces, a space after each comma but
    none around an operator (`a.k=b.k`, `sum(n)/sum(d)`), and each common table, each UNION ALL and the final SELECT
    that stand outside every parenthesis on a line of their own; `compact` where that would not fit `limit`
    characters."""
    parts = _QUOTED.split(sql)
    parts[::2] = [_OPERATOR.sub(r"\1", re.sub(r"\s+", " ", part)).replace("--", "- -") for part in parts[::2]]
    text = "".join(parts).strip()
    lines, depth, start, quoted = [], 0, 0, False
    for i, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif (
            not quoted
            and depth == 0
            and char == " "
            and (_UNION.match(text, i + 1) or (text[i - 1] in ")," and _AFTER_TABLE.match(text, i + 1)))
        ):
            lines.append(text[start:i])
            start = i + 1
    text = "\n".join([*lines, text[start:]])
    return text if len(text) <= limit else compact(sql)


def query_action(sql: str, offset: int = 0) -> MetricTrackerRlAction:
    """A call of the query tool: one page of `sql`'s rows from `offset`."""
    arguments: dict[str, Any] = {"sql": sql, "limit": 100}
    if offset:
        arguments["offset"] = offset
    return MetricTrackerRlAction(analysis_method="query", analysis_args=arguments)
