"""The rollout test, where the brief publishes its noise model: a release regression pooled over its dates.

The brief's release note says a regression breaks a step on the new version (perhaps only some of its users) from
the rollout's first date, by the same share every date, for 3 to 6 dates. Its first dates carry few users (5%, then
20% of the platform), so no date alone may stand out; their sum does. One query reads, for every release, step and
cuboid inside the new version (the version alone, or with one or two of country, channel and user type), each date's
residual of its leaves against the scan's same-weekday baseline beyond what the platform's other versions' change
that date predicts (a level shift moves every version alike, a regression the new one only), summed over the
rollout's first 3, 4, 5 and 6 dates with its variance under the published noise model (sampling, each leaf's day
factor, each cell's day factor summed cell by cell; the factor every segment shares cancels). A regression is the
strongest pooled fall beyond ROLLOUT_Z (a few thousand tests: releases x steps x cuboids x lengths), on the dates of
its length.
"""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.agents.expert_core.cuboid_queries import BASELINE_NOISE, LEAF_SPREAD, MIN_EXPECTED, RATE_FLOOR
from metric_tracker_rl.agents.expert_core.leaf_check import CELL_SPREAD
from metric_tracker_rl.agents.expert_core.queries import STEPS
from metric_tracker_rl.agents.expert_core.reports import Report

ROLLOUT_Z = 4.5
SHORTEST, LONGEST = 3, 6  # the dates a regression lasts (the brief's release note)
# A regression lasts as long as the new version's plain change over the longer run keeps this share of its change
# over the strongest run (a fix leaves the later dates, which carry most of its users, unchanged).
CONTINUES = 0.8


def rollouts(releases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each release once (get_releases gives a row per rollout date), in the order first listed."""
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in releases:
        seen.setdefault((str(row["platform"]), str(row["app_version"]), str(row["rollout_start"])), row)
    return list(seen.values())


def rollout_sql(releases: list[dict[str, Any]], inside_version: bool = True) -> str:
    """Per release (k, its position in rollouts(releases)) and step (1 to 4) whose strongest cuboid inside the new
    version fell beyond ROLLOUT_Z over some of the rollout's first dates: that cuboid's rows for every length
    (`n_dates`), each with the new version's plain change and the pooled z beyond the other versions. Without
    `inside_version`, the version alone is tested (a search of one-dimension breakdowns)."""
    wanted = ", ".join(
        f"({k}, '{row['platform']}', '{row['app_version']}', DATE '{row['rollout_start']}')"
        for k, row in enumerate(rollouts(releases))
    )
    numerators = ", ".join(f"{num}" for _, num, _ in STEPS)
    denominators = ", ".join(f"{den}" for _, _, den in STEPS)
    variance = f"greatest(q * (1 - q), {RATE_FLOOR} * q) * d + ({LEAF_SPREAD} * q * d) ^ 2"

    def noise(side: str) -> str:
        return f"({BASELINE_NOISE} * w{side} + c{side})"

    within, across = ("(), (h), (u), (h, u)", "(c), ()") if inside_version else ("()", "()")

    return (
        f"WITH rel(k, rp, rv, rs) AS (VALUES {wanted}), "
        "l AS (SELECT date, platform p, country c, app_version v, channel h, user_type u, "
        f"unnest([1, 2, 3, 4]) step, unnest([{_events(numerators)}]) n, unnest([{_events(denominators)}]) d "
        "FROM daily_by_segment), "
        "t AS (SELECT date, p, c, h, u, step, sum(n) n, sum(d) d FROM l GROUP BY ALL), "
        "q AS (SELECT date, p, c, h, u, step, median(n / d) FILTER (d > 0) OVER (PARTITION BY step, p, c, h, u, "
        "isodow(date) ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW) q FROM t), "
        f"x AS (SELECT k, date - rs dd, c, h, u, step, n - q * d r, q * d e, {variance} w, v = rv new "
        f"FROM rel JOIN l ON p = rp AND date >= rs AND date < rs + {LONGEST} "
        "JOIN q USING (date, p, c, h, u, step) WHERE q.q IS NOT NULL), "
        # Per country (a cell of the new version, or of the older ones), each cuboid of channel and user type.
        "g1 AS (SELECT k, step, dd, c, h, u, sum(r) FILTER (new) rn, sum(e) FILTER (new) en, "
        "sum(w) FILTER (new) wn, sum(r) FILTER (NOT new) ro, sum(e) FILTER (NOT new) eo, "
        "sum(w) FILTER (NOT new) wo "
        f"FROM x GROUP BY k, step, dd, c, GROUPING SETS ({within})), "
        # Each cuboid inside the version: its cells' day noise adds up cell by cell (noise_model).
        "g AS (SELECT k, step, dd, c, h, u, sum(rn) rn, sum(en) en, "
        f"sum(wn) wn, sum(({CELL_SPREAD} * en) ^ 2) cn, sum(ro) ro, sum(eo) eo, sum(wo) wo, "
        f"sum(({CELL_SPREAD} * eo) ^ 2) co FROM g1 GROUP BY k, step, dd, h, u, GROUPING SETS ({across}) "
        "HAVING c IS NULL OR h IS NULL OR u IS NULL), "
        # Each date: the new version's residual beyond the other versions' change that date, and its noise.
        f"b AS (SELECT *, rn - en * ro / eo y, {noise('n')} + (en / eo) ^ 2 * {noise('o')} v FROM g "
        "WHERE en > 0 AND eo > 0), "
        "s AS (SELECT k, step, c, h, u, dd + 1 n_dates, sum(rn) OVER w ra, sum(en) OVER w ea, "
        "sum(y) OVER w ba, sum(v) OVER w va FROM b "
        "WINDOW w AS (PARTITION BY k, step, c, h, u ORDER BY dd)), "
        "z AS (SELECT *, ba / sqrt(va) z FROM s "
        f"WHERE n_dates >= {SHORTEST} AND ea >= {MIN_EXPECTED}), "
        f"o AS (SELECT k, step, c, h, u FROM z WHERE z <= -{ROLLOUT_Z} "
        "QUALIFY row_number() OVER (PARTITION BY k, step ORDER BY z) = 1) "
        "SELECT k, step, z.c country, z.h channel, z.u user_type, n_dates, round(ra / ea, 3) change, "
        "round(z, 1) z FROM z JOIN o USING (k, step) WHERE z.c IS NOT DISTINCT FROM o.c AND "
        "z.h IS NOT DISTINCT FROM o.h AND z.u IS NOT DISTINCT FROM o.u ORDER BY k, step, n_dates"
    )


def _events(columns: str) -> str:
    """The daily_by_segment columns of the events the query's steps read (their aliases in STEPS)."""
    names = {
        "o": "app_opens",
        "m": "menu_opens",
        "c": "product_added_to_cart",
        "p": "orders_placed",
        "y": "payment_successful",
    }
    return ", ".join(names[alias.strip()] for alias in columns.split(","))


def regressions(rows: list[dict[str, Any]], releases: list[dict[str, Any]], dates: list[str]) -> list[Report]:
    """A regression per release and step the query kept (its strongest cuboid's rows, one per length): one row
    per date of it, on that cuboid inside the new version, for as long as its change holds (CONTINUES)."""
    runs: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in rows:
        runs.setdefault((int(row["k"]), int(row["step"])), []).append(row)
    listed = rollouts(releases)
    reports = []
    for (k, step), lengths in sorted(runs.items()):
        strongest = min(lengths, key=lambda row: row["z"])
        held = max(
            int(row["n_dates"])
            for row in lengths
            if float(row["change"]) <= CONTINUES * float(strongest["change"]) or row is strongest
        )
        release = listed[k]
        start = dates.index(str(release["rollout_start"]))
        for day in range(start, min(start + held, len(dates))):
            reports.append(
                Report(
                    dates[day],
                    "conversion_rate",
                    STEPS[step - 1][0],
                    "rate_drop_from_median",
                    release["platform"],
                    strongest.get("country"),
                    str(release["app_version"]),
                    strongest.get("channel"),
                    strongest.get("user_type"),
                )
            )
    return reports
