"""The cuboid search's SQL: every cuboid of one to three dimensions scanned for a change of its leaves' conversion
(or of their app opens) against the published baseline, and, for the changes the scan keeps, the hours of the fall,
the dates it lasted, and a cell pair's stopped hours. Each function writes one statement for the query tool."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from metric_tracker_rl.agents.expert_core.localisation import ARM_FIELDS
from metric_tracker_rl.agents.expert_core.queries import (
    ALIAS,
    COUNTS,
    EVENT_OF,
    STEPS,
    STOP,
    STOP_HOURS,
    sql_text,
    step_rows,
    stops_sql,
)
from metric_tracker_rl.world.segments import CELL_FIELDS, SEGMENT_FIELDS

# The scan's names of the events (p and c name platform and country there).
EVENT_ALIAS = {
    "app_opens": "o",
    "menu_opens": "m",
    "product_added_to_cart": "c2",
    "orders_placed": "p2",
    "payment_successful": "y",
}
# The searched dimensions: an app version is named with its platform (the same label ships on ios and android).
SEARCH_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "platform": ("platform",),
    "country": ("country",),
    "channel": ("channel",),
    "user_type": ("user_type",),
    "version": ("platform", "app_version"),
}
# A leaf's conversion varies from date to date by about LEAF_SPREAD of its rate on top of sampling, and a cuboid's by
# CUBOID_SPREAD (its cells' common day noise); the baseline's own noise widens the sampling variance by
# BASELINE_NOISE. A cuboid with fewer than MIN_EXPECTED expected conversions is too small to read.
LEAF_SPREAD, CUBOID_SPREAD, BASELINE_NOISE, MIN_EXPECTED = 0.03, 0.015, 1.3, 20
RATE_FLOOR = 0.1  # a step converting nearly always still varies: its variance is at least this share of its rate
# A date and step is kept when its strongest cuboid's |z| reaches SCAN_Z (some thousand cuboids are tested per date
# and step: chance alone reaches about 4.5); the strongest TOP cuboids come back for the ripple check.
SCAN_Z, TOP, KEPT_Z = 5.0, 5, 3.0
RUN_Z = 3.0  # a localised fall's cuboid lasted on the dates around it where its step fell beyond this
DEMAND_SPREAD = 0.05  # a segment's daily traffic varies by about this share of its level
# A funnel break's fall sits in a block of hours: the shape query measures the share of the day's lost conversions
# within BLOCK_HOURS consecutive hours.
BLOCK_HOURS = 8
CELL_STOP_FLOOR = 15  # expected conversions a cell pair's stopped block must have held (see cell_stops_sql)


def cuboid_sets(max_dims: int) -> list[tuple[str, ...]]:
    """The field sets of every cuboid of 1 to max_dims dimensions (in SEGMENT_FIELDS order)."""
    sets = []
    for size in range(1, max_dims + 1):
        for combo in itertools.combinations(SEARCH_DIMENSIONS, size):
            if "version" in combo and "platform" in combo:
                continue  # a version names its platform already
            named = {field for dimension in combo for field in SEARCH_DIMENSIONS[dimension]}
            sets.append(tuple(field for field in SEGMENT_FIELDS if field in named))
    return sets


def _grouped(sets: list[tuple[str, ...]], source: str, sums: str, by: str = "date") -> str:
    """One GROUP BY `by`, GROUPING SETS over `source` (each set with `by`), every segment field selected (NULL
    where no set names it)."""
    used = {field for fields in sets for field in fields}
    columns = ", ".join(ALIAS[field] if field in used else f"NULL {ALIAS[field]}" for field in SEGMENT_FIELDS)
    grouping = ", ".join("(" + ", ".join(ALIAS[field] for field in fields) + ")" for fields in sets)
    return f"SELECT {by}, {columns}, {sums} FROM {source} GROUP BY {by}, GROUPING SETS ({grouping})"


# The funnel steps each scan query reads (positions in STEPS): two a statement keep each far inside the tool's time
# limit, and say their shared text once.
SCAN_GROUPS: tuple[tuple[int, ...], ...] = ((0, 1), (2, 3))
STEP_NAMES = {position + 1: name for position, (name, _, _) in enumerate(STEPS)}  # a scan row's step, by number


def scan_sql(
    steps: tuple[int, ...], max_dims: int = 3, arms: list[dict[str, Any]] | None = None, first: str | None = None
) -> str:
    """Per date and step (of `steps`, positions in STEPS), the strongest cuboids by the z of their leaves' summed
    residuals, where the strongest moved beyond SCAN_Z: each with its step (1 to 4 in funnel order), its change
    (residual over expected conversions), z, residual and expected conversions. Given the experiments (`arms`),
    only the rows the ripple check and the arm check read come back (narrowed_rows), each naming its date by its
    days after `first` (`d`, where given: undated reads it back)."""

    def listed(events: list[str]) -> str:
        return "[" + ", ".join(events) + "]"

    numbers = listed([str(i + 1) for i in steps])  # STEP_NAMES' keys
    nums = listed([EVENT_OF[STEPS[i][1]] for i in steps])
    dens = listed([EVENT_OF[STEPS[i][2]] for i in steps])
    sums = (
        "sum(n - q * d) r, sum(q * d) e, "
        f"sum(greatest(q * (1 - q), {RATE_FLOOR} * q) * d + ({LEAF_SPREAD} * q * d) ^ 2) w"
    )
    sets = cuboid_sets(max_dims)
    parts = [_grouped([s for s in sets if "app_version" not in s], "q", sums, "date, k")]
    versioned = [s for s in sets if "app_version" in s]
    if versioned:  # web has one version: its cuboids are web's own
        parts.append(
            _grouped(
                versioned, "(SELECT l.*, q FROM l JOIN q USING (date, k, p, c, h, u) WHERE p <> 'web')", sums, "date, k"
            )
        )
    scanned = (
        f"WITH l AS (SELECT date, platform p, country c, app_version v, channel h, user_type u, "
        f"unnest({numbers}) k, unnest({nums}) n, unnest({dens}) d FROM daily_by_segment), "
        "t AS (SELECT date, k, p, c, h, u, sum(n) n, sum(d) d FROM l GROUP BY ALL), "
        "q AS (SELECT *, median(n / d) FILTER (d > 0) OVER (PARTITION BY k, p, c, h, u, isodow(date) "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW) q FROM t), "
        f"g AS ({' UNION ALL '.join(parts)}), "
        f"z AS (SELECT *, r / sqrt({BASELINE_NOISE} * w + ({CUBOID_SPREAD} * e) ^ 2) z FROM g "
        f"WHERE e >= {MIN_EXPECTED}) "
    )
    if arms is not None:
        return scanned + narrowed_rows(arms, first)
    return (
        scanned + f"SELECT date, k step, p platform, c country, v app_version, h channel, u user_type, "
        f"round(r / e, 3) change, round(z, 1) z, round(r) r, round(e) e FROM z WHERE abs(z) >= {KEPT_Z} "
        f"QUALIFY max(abs(z)) OVER (PARTITION BY date, k) >= {SCAN_Z} AND row_number() OVER (PARTITION BY "
        f"date, k ORDER BY abs(z) DESC) <= {TOP} ORDER BY date, k, abs(z) DESC"
    )


# A narrowed scan row names its cuboid in one text cell, its fields in SEGMENT_FIELDS order between slashes (empty
# where the cuboid does not name one: "android/US///organic"), in place of five columns mostly null.
SEGMENT_LABEL = "concat(" + ", '/', ".join(f"s.{ALIAS[field]}" for field in SEGMENT_FIELDS) + ")"


def undated(row: dict[str, Any], dates: list[str]) -> dict[str, Any]:
    """A row naming its date by its days after the first of `dates` (`d`: a narrowed scan's) as one naming its date."""
    if "d" not in row:
        return row
    return {**{k: v for k, v in row.items() if k != "d"}, "date": dates[int(row["d"])]}


def unlabelled(row: dict[str, Any]) -> dict[str, Any]:
    """A row with a `segment` label (SEGMENT_LABEL) as a row with a field each (None where the label names none)."""
    if "segment" not in row:
        return row
    values = str(row["segment"]).split("/")
    return {
        **{k: v for k, v in row.items() if k != "segment"},
        **{field: value or None for field, value in zip(SEGMENT_FIELDS, values, strict=True)},
    }


def narrowed_rows(arms: list[dict[str, Any]], first: str | None = None) -> str:
    """The end of a scan statement (after its z CTE) that returns, of each date and step's TOP strongest cuboids,
    only those the expert reads: the strongest, its coarser cuboids (all the ripple check looks up), and an
    experiment's own arm on its target step and dates (the arm check). The rows it leaves out decide nothing. A row
    names its cuboid by its SEGMENT_LABEL (unlabelled reads it back) and, `first` given, its date by its days after
    that date (d: undated reads it back)."""
    numbers = {name: number for number, name in STEP_NAMES.items()}
    dated = f"s.date - DATE '{first}' d" if first else "s.date"
    listed = [
        arm
        for arm in arms
        if arm.get("target_step") in numbers and any(arm.get(field) is not None for field in ARM_FIELDS)
    ]
    coarser = " AND ".join(f"(s.{a} IS NULL OR s.{a} = b.{a})" for a in ALIAS.values())
    own_arm = ""
    if listed:
        typed = "DATE "  # the first row types the columns (the later rows' text is read as dates)
        wanted = ", ".join(
            f"({numbers[arm['target_step']]}, {typed * (i == 0)}'{arm['start_date']}', "
            f"{typed * (i == 0)}'{arm['end_date']}', "
            + ", ".join(sql_text(arm.get(field), i == 0) for field in ARM_FIELDS)
            + ")"
            for i, arm in enumerate(listed)
        )
        same = " AND ".join(f"s.{ALIAS[field]} IS NOT DISTINCT FROM a.{ALIAS[field]}" for field in ARM_FIELDS)
        own_arm = (
            f" OR EXISTS (SELECT 1 FROM (VALUES {wanted}) a(k, f, t, p, c, h, u) WHERE a.k = s.k AND "
            f"s.date BETWEEN a.f AND a.t AND s.v IS NULL AND {same})"
        )
    return (
        f", s AS (SELECT *, row_number() OVER (PARTITION BY date, k ORDER BY abs(z) DESC) n FROM z "
        f"WHERE abs(z) >= {KEPT_Z} QUALIFY max(abs(z)) OVER (PARTITION BY date, k) >= {SCAN_Z}) "
        f"SELECT {dated}, s.k step, {SEGMENT_LABEL} segment, "
        "round(s.r / s.e, 3) change, round(s.z, 1) z, round(s.r) r, round(s.e) e FROM s JOIN s b "
        f"ON b.date = s.date AND b.k = s.k AND b.n = 1 WHERE s.n <= {TOP} AND ({coarser}{own_arm}) "
        "ORDER BY s.date, s.k, s.n"
    )


def count_scan_sql(max_dims: int = 3, start: str | None = None) -> str:
    """Per date, the cuboids of platform and country (the fields hours are served for, to which an outage is
    confined) whose app opens fell furthest below their leaves' same-weekday medians (sampling plus a day's demand
    spread), on dates where the strongest fell beyond SCAN_Z: the opens an outage loses, or a segment's demand swing
    (the hours tell them apart). `start` given, a row names its date by its days after it (d: undated reads it
    back)."""
    sums = f"sum(o - q) r, sum(q) e, sum(q + ({LEAF_SPREAD} * q) ^ 2) w"
    sets = [fields for fields in cuboid_sets(max_dims) if set(fields) <= {"platform", "country"}]
    return (
        "WITH t AS (SELECT date, platform p, country c, channel h, user_type u, sum(app_opens) o "
        "FROM daily_by_segment GROUP BY ALL), "
        "q AS (SELECT *, median(o) OVER (PARTITION BY p, c, h, u, isodow(date) ROWS BETWEEN UNBOUNDED "
        "PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW) q FROM t), "
        f"g AS ({_grouped(sets, 'q', sums).replace('NULL v', 'NULL::VARCHAR v')}), "
        f"z AS (SELECT *, r / sqrt(w + ({DEMAND_SPREAD} * e) ^ 2) z FROM g WHERE e >= {MIN_EXPECTED}) "
        f"SELECT {f'date - DATE {start!r} d' if start else 'date'}, p platform, c country, "
        "round(r / e, 3) change, round(z, 1) z, "
        f"round(r) r, round(e) e FROM z WHERE z <= -{KEPT_Z} QUALIFY min(z) OVER (PARTITION BY date) <= -{SCAN_Z} "
        f"AND row_number() OVER (PARTITION BY date ORDER BY z) <= {TOP} ORDER BY date, z"
    )


# What the shape query reads, by number: each step (its numerator and denominator event), then app opens (a count).
SHAPED = [*((name, EVENT_OF[n], EVENT_OF[d]) for name, n, d in STEPS), ("app_opens", "app_opens", "1")]


def shape_sql(falls: list[dict[str, Any]], by_day: bool = False, start: str | None = None) -> str:
    """Per localised fall (date, step, the cuboid's cell fields), the share of the day's lost conversions that
    fell within the worst BLOCK_HOURS consecutive hours, against each hour's same-weekday median: near 1 for a
    block of hours (a break), near the block's share of the day's traffic for a fall that lasts the day. Hourly
    counts exist per cell, so a cuboid naming a channel or user type is read on its cells (diluted alike in
    every hour). A row names its step by number (s, 1 based, in SHAPED): shaped_rows reads it back. `by_day`: the
    falls are listed by their dates after the first fall's, '' for a field a fall does not name (fewer characters).
    `start` given, a row names its date by its days after it (d: undated reads it back)."""
    number = {name: k + 1 for k, (name, _, _) in enumerate(SHAPED)}
    wanted = ", ".join(
        f"({'DATE ' if i == 0 else ''}'{row['date']}', {number[row['entity_name']]}, "
        + ", ".join(sql_text(row.get(field), i == 0) for field in CELL_FIELDS)
        + ")"
        for i, row in enumerate(falls)
    )
    listed = f"f(date, s, platform, country, app_version) AS (VALUES {wanted})"
    inside = (
        "(f.platform IS NULL OR x.platform = f.platform) AND (f.country IS NULL OR x.country = f.country) AND "
        "(f.app_version IS NULL OR x.app_version = f.app_version)"
    )
    if by_day:
        first = min(dt.date.fromisoformat(str(row["date"])) for row in falls)
        wanted = ", ".join(
            f"({(dt.date.fromisoformat(str(row['date'])) - first).days}, {number[row['entity_name']]}, "
            + ", ".join(sql_text(row.get(field) or "") for field in CELL_FIELDS)
            + ")"
            for row in falls
        )
        listed = (
            f"f AS (SELECT *, DATE '{first}' + i date FROM (VALUES {wanted}) f(i, s, platform, country, app_version))"
        )
        inside = " AND ".join(f"(f.{field} = '' OR x.{field} = f.{field})" for field in CELL_FIELDS)
    numerators, denominators = (", ".join(events[part] for events in SHAPED) for part in (1, 2))
    return (
        f"WITH {listed}, "
        "h AS (SELECT f.date dd, f.s, x.date, x.hour, "
        f"sum([{numerators}][f.s]) n, sum([{denominators}][f.s]) d FROM f JOIN hourly_by_segment x "
        f"ON isodow(x.date) = isodow(f.date) AND {inside} "
        "GROUP BY ALL), "
        "b AS (SELECT a.dd, a.s, a.hour, any_value(a.n) - median(x.n / x.d) * any_value(a.d) r FROM h a "
        "JOIN h x ON x.dd = a.dd AND x.s = a.s AND x.hour = a.hour AND x.date <> x.dd AND x.d > 0 "
        "WHERE a.date = a.dd GROUP BY ALL), "
        f"w AS (SELECT dd, s, sum(r) OVER (PARTITION BY dd, s ORDER BY hour ROWS BETWEEN "
        f"CURRENT ROW AND {BLOCK_HOURS - 1} FOLLOWING) block, sum(r) OVER (PARTITION BY dd, s) total "
        "FROM b) "
        f"SELECT {f'dd - DATE {start!r} d' if start else 'dd date'}, s, round(min(block) / min(total), 2) "
        f"block_share FROM w WHERE total < 0 GROUP BY ALL ORDER BY {'d' if start else 'date'}"
    )


def shaped_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The shape query's rows, each with its step's name (entity_name) in place of its number."""
    return [{**row, "entity_name": SHAPED[int(row["s"]) - 1][0]} for row in rows]


def cell_stops_sql() -> str:
    """Per date, platform and country together (a cell pair, hourly data's own grain) and step, the longest block
    of consecutive hours in which the step converted under STOP of its day's rate there, where the block expected
    at least CELL_STOP_FLOOR conversions: a break a version-wide reading dilutes. Chance alone (a few expected
    conversions an hour) rarely empties a block that large."""
    return (
        f"WITH h AS (SELECT date, hour, platform, country, {COUNTS} FROM hourly_by_segment GROUP BY ALL), "
        f"u AS ({step_rows('date, hour, platform, country')}), "
        "r AS (SELECT *, sum(num) OVER d / nullif(sum(den) OVER d, 0) rate FROM u "
        "WINDOW d AS (PARTITION BY date, platform, country, entity_name)), "
        f"g AS (SELECT *, den * rate x, hour - row_number() OVER (PARTITION BY date, platform, country, "
        f"entity_name ORDER BY hour) run FROM r WHERE den > 0 AND rate > 0 AND num < {STOP} * den * rate), "
        "b AS (SELECT date, platform, country, entity_name, count(*) n, sum(x) expected FROM g "
        f"GROUP BY date, platform, country, entity_name, run "
        f"HAVING count(*) >= {STOP_HOURS} AND sum(x) >= {CELL_STOP_FLOOR}) "
        "SELECT date, platform, country, entity_name, max(n) stopped_hours, round(max(expected)) expected "
        "FROM b GROUP BY ALL ORDER BY date"
    )


def all_stops_sql(numbered: bool = False) -> str:
    """stops_sql's rows (per version, with the platform's other versions' `others`) and cell_stops_sql's (per cell
    pair, with the block's `expected` conversions) in one statement: both read the same hours' steps. A row names
    a country where it is a cell pair's. `numbered`: a row names its step by number (STEP_NAMES, from the step
    name's first letter, which tells them apart), in a `step` column in place of entity_name (stepped reads it
    back); the rows are the same, in the same order."""
    if numbered:
        rows = all_stops_sql().removesuffix(" ORDER BY date")
        initials = "".join(name[0] for name in STEP_NAMES.values())
        return (
            "SELECT date, platform, app_version, country, "
            f"strpos('{initials}', left(entity_name, 1)) step, stopped_hours, others, expected "
            f"FROM ({rows}) ORDER BY date"
        )
    stops = stops_sql(False)
    version_ctes = stops[stops.index("m AS (") : stops.index(" SELECT g.date")].replace(
        "FROM u WHERE den > 0", "FROM u WHERE country IS NULL AND den > 0"
    )
    version_rows = stops[stops.index("SELECT g.date") : stops.index(" GROUP BY ALL ORDER BY")].replace(
        " others FROM", " others, NULL expected FROM"
    )
    cells = cell_stops_sql()
    cell_ctes = cells[cells.index("r AS (") : cells.index(" SELECT date")].replace(
        "FROM u WINDOW", "FROM u WHERE app_version IS NULL WINDOW"
    )
    cell_ctes = cell_ctes.replace("g AS (SELECT *, den", "c AS (SELECT *, den").replace(
        "expected FROM g ", "expected FROM c "
    )
    return (
        f"WITH h AS (SELECT date, hour, platform, app_version, country, {COUNTS} FROM hourly_by_segment "
        "GROUP BY date, hour, GROUPING SETS ((platform, app_version), (platform, country))), "
        f"u AS ({step_rows('date, hour, platform, app_version, country')}), {version_ctes}, {cell_ctes}, "
        f"s AS ({version_rows} GROUP BY ALL) "
        "SELECT date, platform, app_version, NULL country, entity_name, stopped_hours, others, expected "
        "FROM s UNION ALL SELECT date, platform, NULL, country, entity_name, max(n), NULL, round(max(expected)) "
        "FROM b GROUP BY ALL ORDER BY date"
    )


def stepped(row: dict[str, Any]) -> dict[str, Any]:
    """A row naming its step by number (a `step` column: all_stops_sql's numbered rows) as one naming its
    entity_name."""
    if "step" not in row:
        return row
    return {**{k: v for k, v in row.items() if k != "step"}, "entity_name": STEP_NAMES[int(row["step"])]}


class LeafResiduals:
    """What a query over the falls' leaves builds on: each step's leaf conversion against the median of the same
    weekday in its leaf (`ctes`: l, t, q and x, whose rows are leaves with their q0, q1, ... medians), a CASE on a
    fall's step (`case`), a leaf inside a fall's cuboid (`inside`) and a leaf's binomial variance (`variance`)."""

    def __init__(self, falls: list[dict[str, Any]]) -> None:
        named = {row["entity_name"] for row in falls}  # a median and CASE branches for each step read, no other
        self.steps = [
            (name, EVENT_ALIAS[EVENT_OF[n]], EVENT_ALIAS[EVENT_OF[d]]) for name, n, d in STEPS if name in named
        ]
        medians = ", ".join(f"median({n} / {d}) FILTER ({d} > 0) OVER w q{i}" for i, (_, n, d) in enumerate(self.steps))
        self.inside = " AND ".join(f"(f.{a} IS NULL OR x.{a} = f.{a})" for a in ALIAS.values())
        self.variance = f"greatest(x.{{q}} * (1 - x.{{q}}), {RATE_FLOOR} * x.{{q}}) * x.{{d}}"
        self.ctes = (
            "l AS (SELECT date, platform p, country c, app_version v, channel h, user_type u, app_opens o, "
            "menu_opens m, product_added_to_cart c2, orders_placed p2, payment_successful y FROM daily_by_segment), "
            "t AS (SELECT date, p, c, h, u, sum(o) o, sum(m) m, sum(c2) c2, sum(p2) p2, sum(y) y FROM l GROUP BY ALL), "
            f"q AS (SELECT date, p, c, h, u, {medians} FROM t WINDOW w AS (PARTITION BY p, c, h, u, isodow(date) "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW)), "
            "x AS (SELECT * FROM l JOIN q USING (date, p, c, h, u)), "
        )

    def case(self, term: str) -> str:
        return (
            "CASE f.step "
            + " ".join(
                f"WHEN '{name}' THEN " + term.format(n=n, d=d, q=f"q{i}") for i, (name, n, d) in enumerate(self.steps)
            )
            + " END"
        )


def series_sql(falls: list[dict[str, Any]]) -> str:
    """Each fall's cuboid and step on every date of the window, where it fell beyond RUN_Z (its leaves' residuals
    against their same-weekday medians, as the scan sums them): the dates a fall lasted."""
    leaf = LeafResiduals(falls)
    wanted = ", ".join(
        f"({k}, '{row['entity_name']}', " + ", ".join(sql_text(row.get(f), k == 0) for f in SEGMENT_FIELDS) + ")"
        for k, row in enumerate(falls)
    )
    return (
        f"WITH f(k, step, p, c, v, h, u) AS (VALUES {wanted}), "
        + leaf.ctes
        + f"g AS (SELECT f.k, f.step, x.date, sum({leaf.case('x.{n} - x.{q} * x.{d}')}) r, "
        f"sum({leaf.case('x.{q} * x.{d}')}) e, sum({leaf.case(leaf.variance)}) w "
        f"FROM f JOIN x ON {leaf.inside} GROUP BY ALL), "
        f"z AS (SELECT *, r / sqrt({BASELINE_NOISE} * w + ({CUBOID_SPREAD} * e) ^ 2) z FROM g WHERE e > 0) "
        f"SELECT k, date, round(r / e, 3) change, round(z, 1) z FROM z WHERE z <= -{RUN_Z} ORDER BY k, date"
    )


def numbered_leaves(falls: list[dict[str, Any]], on_its_date: bool, first_k: int = 0) -> str:
    """The start of a statement over the falls' leaves, steps read by number (the shortest that says it): f (each fall's
    k, from first_k, its date fd (listed as i, its dates after the falls' first), step number fs and cuboid as fg, a
    pattern of its fields between slashes, * where it names none, that the leaf's own g, its fields between slashes,
    matches), l (each leaf's g, numerator n and denominator d of every step), q (their same-weekday median), and x (each
    fall's k and fall date fd, and the leaves inside its cuboid, on its date where `on_its_date`: their date, residual
    r, expected conversions e and variance w)."""
    numbers = {name: number for number, name in STEP_NAMES.items()}
    first = min(dt.date.fromisoformat(str(row["date"])) for row in falls)
    wanted = ", ".join(
        f"({first_k + k}, {(dt.date.fromisoformat(str(row['date'])) - first).days}, "
        f"{numbers[row['entity_name']]}, " + sql_text("/".join(row.get(f) or "*" for f in SEGMENT_FIELDS)) + ")"
        for k, row in enumerate(falls)
    )
    label = "concat(" + ", '/', ".join(ALIAS.values()) + ")"
    numerators = ", ".join(EVENT_OF[n] for _, n, _ in STEPS)
    denominators = ", ".join(EVENT_OF[d] for _, _, d in STEPS)
    return (
        f"WITH f AS (SELECT *, DATE '{first}' + i fd FROM (VALUES {wanted}) f(k, i, fs, fg)), "
        f"l AS (SELECT date, platform p, country c, app_version v, channel h, user_type u, {label} g, "
        f"unnest([{', '.join(map(str, STEP_NAMES))}]) s, unnest([{numerators}]) n, unnest([{denominators}]) d "
        "FROM daily_by_segment), "
        "q AS (SELECT date, s, p, c, h, u, median(n / d) FILTER (d > 0) OVER (PARTITION BY s, p, c, h, u, "
        "isodow(date) ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW) q "
        "FROM (SELECT date, s, p, c, h, u, sum(n) n, sum(d) d FROM l GROUP BY ALL)), "
        f"x AS (SELECT k, fd, l.date, n - q * d r, q * d e, greatest(q * (1 - q), {RATE_FLOOR} * q) * d w "
        f"FROM f JOIN l ON {'l.date = fd AND ' if on_its_date else ''}l.s = fs AND l.g GLOB fg "
        "JOIN q USING (date, s, p, c, h, u)), "
    )


def run_sql(falls: list[dict[str, Any]]) -> str:
    """series_sql's rows (each fall's cuboid and step, the dates it fell beyond RUN_Z), only those of the unbroken
    run of dates around the fall's own (its date comes back whatever it shows): the only dates the expert grows a
    run with. A row names its date by `d`, its days after its fall's (dated_runs reads it back)."""
    return (
        numbered_leaves(falls, on_its_date=False)
        + "g AS (SELECT k, fd, date, sum(r) r, sum(e) e, sum(w) w FROM x GROUP BY ALL), "
        f"z AS (SELECT *, r / sqrt({BASELINE_NOISE} * w + ({CUBOID_SPREAD} * e) ^ 2) z FROM g WHERE e > 0), "
        "y AS (SELECT *, date - fd - row_number() OVER (PARTITION BY k ORDER BY date) i FROM z "
        f"WHERE z <= -{RUN_Z} OR date = fd) "
        "SELECT k, date - fd d, round(r / e, 3) change, round(z, 1) z FROM y "
        "WHERE i = (SELECT o.i FROM y o WHERE o.k = y.k AND o.date = o.fd) ORDER BY k, date"
    )


def dated_runs(rows: list[dict[str, Any]], falls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """run_sql's rows over `falls`, each with its date (its fall's date and `d` days) in place of `d`."""

    def date(row: dict[str, Any]) -> str:
        return str(dt.date.fromisoformat(str(falls[int(row["k"])]["date"])) + dt.timedelta(days=int(row["d"])))

    return [{**{k: v for k, v in row.items() if k != "d"}, "date": date(row)} for row in rows]
