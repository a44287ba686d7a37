"""Weeks-long falls and their change points, for an episode whose brief lists an incident kind graded against the
dates before its change point (persistent_regression, gradual_decline): a same-weekday median over the window takes
such a fall into its own baseline, so the cuboid scan (cuboid_queries.py) sees it weakly or not at all.

1. The scan: every cuboid of one to three of platform, country, channel and user type (such a kind names no
   version), each step, each date from the fourth week on, against the median of its same weekday over the first
   three weeks (the published change point lies at least that far in, so those dates are clean): a relative
   change over its noise (the spread of the first weeks' residuals, less the median's own zero, and the date's
   sampling) as a z. Cuboids whose
   step fell beyond LOW_Z on at least MIN_LOW dates come back with every date's z.
2. The run: the stretch of dates that fell most consistently (each date weighed by how far it fell:
   LETTER_WEIGHT), a gradual decline's first dates with it; at least MIN_RUN dates (a level shift or an
   experiment lasts a week at most).
3. Per step the strongest cuboid (the most negative summed z), generalised to its coarsest parent that fell by
   RIPPLE_SHARE of its fall (a child of the incident's cuboid falls by the same share, a parent by less). Each of
   its dates is reported, with its numbers read by the published rule for these kinds (the same weekday before
   the change point): values_sql.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from metric_tracker_rl.agents.expert_core.cuboid_queries import ALIAS
from metric_tracker_rl.agents.expert_core.queries import EVENT_OF, STEPS, sql_text
from metric_tracker_rl.agents.expert_core.reports import severity_sql
from metric_tracker_rl.world.segments import SEGMENT_FIELDS

CLEAN_DAYS = 21  # the first three weeks: no change point lies in them
FIELDS = ("platform", "country", "channel", "user_type")
LOW_Z, RAMP_Z = 4.0, 1.5
# A fall ripples through the cuboid it happened in (every leaf by the same share) and is diluted in a coarser one:
# the strongest cuboid's coarsest parent that fell by this share of its fall is the incident's.
RIPPLE_SHARE = 0.8
MIN_LOW, MIN_RUN = 6, 10
# How much each date's letter weighs for a run: beyond LOW_Z for it, beyond RAMP_Z a little (a gradual decline's
# first dates), unread nothing, a date that stayed put against it (so a run ends at the fix).
LETTER_WEIGHT = {"L": 1.0, "l": 0.3, "_": 0.0, ".": -1.5}
MIN_ARRIVALS = 20  # a cuboid's date with fewer arrivals at the step is not read
NOISE_FLOOR = 0.01  # the smallest relative spread of a cuboid's conversion from date to date
TOP = 40


def definitions_name_change_points(brief: dict[str, Any]) -> bool:
    """Whether the brief lists an incident kind graded against the dates before its change point."""
    kinds = brief.get("segments", {}).get("incident_kinds") or []
    return any("before its change point" in str(kind.get("definition", "")) for kind in kinds)


def scan_sql(first_date: str, num_days: int) -> str:
    """The scan of step 1 of the module docstring: one row per cuboid and step with MIN_LOW dates beyond LOW_Z
    (its key, step number 1-4, the summed z of those dates, and each date from CLEAN_DAYS on as a letter: L beyond
    LOW_Z, l beyond RAMP_Z, . neither, _ too few arrivals to read)."""
    sets = ", ".join(
        "(" + ", ".join(ALIAS[f] for f in combo) + ")"
        for size in (1, 2, 3)
        for combo in itertools.combinations(FIELDS, size)
    )
    steps = " UNION ALL ".join(
        f"SELECT d, key, {k + 1} k, {EVENT_OF[num]} n, {EVENT_OF[den]} e FROM g"
        for k, (_, num, den) in enumerate(STEPS)
    )
    key = " || '|' || ".join(f"coalesce({ALIAS[f]}, '*')" for f in FIELDS)
    sums = ", ".join(f"sum({column}) {column}" for column in EVENT_OF.values())
    return (
        f"WITH l AS (SELECT date - DATE '{first_date}' d, platform p, country c, channel h, user_type u, "
        f"{', '.join(EVENT_OF.values())} FROM daily_by_segment), "
        f"g AS (SELECT d, {key} key, {sums} FROM l GROUP BY d, GROUPING SETS ({sets})), "
        f"s AS ({steps}), r AS (SELECT *, n / e v FROM s WHERE e >= {MIN_ARRIVALS}), "
        f"b AS (SELECT key, k, d % 7 w, median(v) bv FROM r WHERE d < {CLEAN_DAYS} GROUP BY ALL), "
        "x AS (SELECT r.*, bv, v / bv - 1 x FROM r JOIN b ON r.key = b.key AND r.k = b.k AND r.d % 7 = b.w "
        "WHERE bv > 0), "
        f"m AS (SELECT key, k, greatest(1.4826 * median(abs(x)) FILTER (x <> 0), {NOISE_FLOOR}) sd FROM x "
        f"WHERE d < {CLEAN_DAYS} GROUP BY ALL), "
        "z AS (SELECT x.key, x.k, x.d, x.x, x / sqrt(sd ^ 2 + greatest(1 - bv, 0.01) / (bv * e)) z FROM x "
        "JOIN m USING (key, k)), "
        f"t AS (SELECT key, k, count(*) FILTER (d >= {CLEAN_DAYS} AND z <= -{LOW_Z}) low, "
        f"round(sum(z) FILTER (d >= {CLEAN_DAYS} AND z <= -{LOW_Z})) strength, "
        f"round(median(x) FILTER (d >= {CLEAN_DAYS} AND z <= -{LOW_Z}), 3) fall FROM z GROUP BY ALL "
        f"HAVING low >= {MIN_LOW} ORDER BY strength LIMIT {TOP}), "
        f"a AS (SELECT t.*, range d FROM t CROSS JOIN range({CLEAN_DAYS}, {num_days})) "
        "SELECT a.key, a.k step, any_value(strength) strength, any_value(fall) fall, "
        f"string_agg(CASE WHEN z IS NULL THEN '_' WHEN z <= -{LOW_Z} THEN 'L' WHEN z <= -{RAMP_Z} THEN 'l' "
        "ELSE '.' END, '' ORDER BY a.d) dates "
        "FROM a LEFT JOIN z USING (key, k, d) GROUP BY a.key, a.k ORDER BY strength"
    )


@dataclass(frozen=True)
class Run:
    """A weeks-long fall: its cuboid (a value per FIELDS, None for every value), step, first and last date (their
    positions in the window) and summed z."""

    segment: tuple[str | None, ...]
    step: str
    first: int
    last: int
    strength: float


def runs(rows: list[dict[str, Any]]) -> list[Run]:
    """Steps 2 and 3 of the module docstring: per step, the strongest cuboid's run (the most negative summed z),
    generalised to the coarsest of its parents that fell by RIPPLE_SHARE of its fall at least."""
    found: dict[str, list[tuple[Run, float]]] = {}
    for row in rows:
        span = _run(str(row.get("dates") or ""))
        if span is None or row.get("strength") is None or row.get("fall") is None:
            continue
        step = STEPS[int(row["step"]) - 1][0]
        values = tuple(None if value == "*" else value for value in str(row["key"]).split("|"))
        run = Run(values, step, CLEAN_DAYS + span[0], CLEAN_DAYS + span[1], float(row["strength"]))
        found.setdefault(step, []).append((run, float(row["fall"])))
    chosen = []
    for candidates in found.values():
        strongest, fall = min(candidates, key=lambda pair: pair[0].strength)
        rippled = [
            run
            for run, other in candidates
            if other <= RIPPLE_SHARE * fall
            and all(mine in (None, theirs) for mine, theirs in zip(run.segment, strongest.segment, strict=True))
        ]
        chosen.append(min(rippled, key=lambda run: (sum(v is not None for v in run.segment), run.strength)))
    return chosen


def _run(letters: str) -> tuple[int, int] | None:
    """The stretch of dates whose letters weigh most (LETTER_WEIGHT: a date beyond LOW_Z for it, one that stayed
    put against it, more strongly), where it holds MIN_RUN dates; None otherwise."""
    best, best_span, total, start = 0.0, None, 0.0, 0
    for position, letter in enumerate(letters):
        if total <= 0.0:
            total, start = 0.0, position
        total += LETTER_WEIGHT.get(letter, 0.0)
        if total > best:
            best, best_span = total, (start, position)
    if best_span is None or best_span[1] - best_span[0] + 1 < MIN_RUN:
        return None
    return best_span


def run_segment(run: Run) -> dict[str, str | None]:
    """The run's cuboid as Report's segment fields."""
    named = dict(zip(FIELDS, run.segment, strict=True))
    return {field: named.get(field) for field in SEGMENT_FIELDS}


def values_sql(run: Run, dates: list[str]) -> str:
    """Each date of the run read from its cuboid's daily data: its conversion, and the median of the same weekday
    over the dates before the change point (the published rule for these kinds), with the published severity."""
    segment = run_segment(run)
    num, den = next((EVENT_OF[n], EVENT_OF[d]) for name, n, d in STEPS if name == run.step)
    inside = " AND ".join(f"{field} = {sql_text(value)}" for field, value in segment.items() if value is not None)
    columns = ", ".join(f"{sql_text(value)} {field}" for field, value in segment.items())
    severity = severity_sql("abs(observed_value - baseline_value)")
    return (
        f"WITH r AS (SELECT date, sum({num}) / nullif(sum({den}), 0) v FROM daily_by_segment WHERE {inside} "
        "GROUP BY date), "
        f"e AS (SELECT x.date, {columns}, 'conversion_rate' entity_type, '{run.step}' entity_name, "
        "median(y.v) baseline_value, any_value(x.v) observed_value FROM r x JOIN r y ON isodow(y.date) = "
        f"isodow(x.date) AND y.date < DATE '{dates[run.first]}' WHERE x.date BETWEEN DATE '{dates[run.first]}' "
        f"AND DATE '{dates[run.last]}' GROUP BY ALL) "
        f"SELECT *, observed_value - baseline_value delta_value, {severity} severity FROM e ORDER BY date"
    )
