"""The expert at deep: a localisation search over the cuboids of five dimensions, in the spirit of HotSpot, Squeeze
and iDice, read through the SQL tool and deciding only from the text of the tool results and the brief.

An incident changes conversion inside a cuboid (a combination of values of one to three dimensions: platform,
country, app version, channel, user type), by about the same share in every leaf it covers; a mix shift changes
which leaves the traffic comes from, never a leaf's own conversion. So the search works on leaf residuals:

1. Leaf baselines: each leaf's step conversions against the published baseline rule (the median of the same weekday
   in the other weeks), taken at the leaf without its app version (a rollout moves a version's traffic from date to
   date, its conversion stays that of its platform's leaf); the residual of a leaf is its step's conversions less
   the baseline rate times its incoming events.
2. The scan: one grouped query per two steps sums the residuals, the expected conversions and their sampling variance
   over every cuboid of one to three dimensions (a version counts as one dimension with its platform), per date and
   step. A cuboid's z (its residual over its noise) is the scan statistic of a uniform relative change inside it: in
   expectation it is highest on the incident's own cuboid, lower on a coarser one (the same residual, more noise) and
   on a finer one (part of the residual). The query returns the strongest few cuboids of each date and step that
   moved beyond the noise of so many tests.
3. The ripple check: the strongest cuboid is generalised to a parent (one dimension dropped) when the part of the
   parent outside it moved the same way by a comparable share (the change ripples through the whole parent, as
   a root cause's does), and kept when the rest of the parent stayed put (the change is confined to it).
4. Classification by signature, as at frontier (metric_tracker_rl/agents/frontier_expert.py): releases, hour-of-day
   shapes (hourly data is at platform x version x country), hours in which a step stopped, and which steps moved
   together; then the values query reads every reported number from its cuboid's own daily data.
5. Context: the experiments, campaigns and holidays tables are read (one get_context each) and a move one of them
   explains is left alone: an experiment's intended effect on its target step in its arm during its dates, and the
   traffic a country's holiday or a channel x country campaign moved. Context never adds a finding the data does
   not show (so the partner status log, which explains payment incidents and finds none, is not read).

`max_dims=1` limits the search to one-dimension breakdowns (the calibration's one-dimension expert).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import asdict
from typing import Any

from metric_tracker_rl.agents.base import Agent, register_agent
from metric_tracker_rl.agents.frontier_expert import (
    COUNTS,
    STEP_INTO_EVENT,
    STEPS,
    STOP,
    STOP_HOURS,
    FrontierExpertAgent,
    Report,
    _column,
    _one_block,
    _query,
    _segment_of,
    _share,
    _text,
    hours_sql,
    stops_sql,
)
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.world.segments import CELL_FIELDS, SEGMENT_FIELDS

ALIAS = {"platform": "p", "country": "c", "app_version": "v", "channel": "h", "user_type": "u"}
# The scan's names of the events (p and c name platform and country there).
EVENT_ALIAS = {"app_opens": "o", "menu_opens": "m", "product_added_to_cart": "c2", "orders_placed": "p2",
               "payment_successful": "y"}
COLUMN = {alias: event for event, alias in EVENT_ALIAS.items()}
# The searched dimensions: an app version is named with its platform (the same label ships on ios and android).
SEARCH_DIMENSIONS: dict[str, tuple[str, ...]] = {"platform": ("platform",), "country": ("country",),
                                                 "channel": ("channel",), "user_type": ("user_type",),
                                                 "version": ("platform", "app_version")}
# A leaf's conversion varies from date to date by about LEAF_SPREAD of its rate on top of sampling, and a cuboid's by
# CUBOID_SPREAD (its cells' common day noise); the baseline's own noise widens the sampling variance by
# BASELINE_NOISE. A cuboid with fewer than MIN_EXPECTED expected conversions is too small to read.
LEAF_SPREAD, CUBOID_SPREAD, BASELINE_NOISE, MIN_EXPECTED = 0.03, 0.015, 1.3, 20
RATE_FLOOR = 0.1  # a step converting nearly always still varies: its variance is at least this share of its rate
# A date and step is kept when its strongest cuboid's |z| reaches SCAN_Z (some thousand cuboids are tested per date
# and step: chance alone reaches about 4.5); the strongest TOP cuboids come back for the ripple check.
SCAN_Z, TOP, KEPT_Z = 5.0, 5, 3.0
RUN_Z = 3.0  # a localised fall's cuboid lasted on the dates around it where its step fell beyond this
SERIES_MOST = 12  # the strongest falls whose dates are read
SINGLE_DATE_Z = 6.5  # a fall on one date (no run, no hourly signature) is reported beyond this
BLOCK_Z = 7.0  # a cell's own fall with a block of hours beyond this is a break (a weaker one needs SURE_BLOCK_SHARE)
RUN_STRONG_Z = 6.0  # a run of falls needs one date beyond this (or two beyond SCAN_Z)
DEMAND_SPREAD = 0.05  # a segment's daily traffic varies by about this share of its level
# Ripple: the rest of a parent moved the same way with |z| at least RIPPLE_Z and by at least RIPPLE_SHARE of the
# cuboid's own change.
RIPPLE_Z, RIPPLE_SHARE = 2.0, 0.5
OCCAM_Z = 0.5  # a parent within this of the cuboid's |z| explains the fall as well, with one dimension fewer
# A funnel break's fall sits in a block of hours: at least BLOCK_SHARE of the day's lost conversions within
# BLOCK_HOURS consecutive hours (a fall that lasts the day puts about 0.5 to 0.65 there, the busy hours), or
# SURE_BLOCK_SHARE on a date inside a run of falls.
BLOCK_HOURS, BLOCK_SHARE, SURE_BLOCK_SHARE = 8, 0.7, 0.9
KEPT_AT_MOST = 1.0  # a cell pair's low block is an outage only if the other hours gained less than its loss
CELL_STOP_FLOOR = 15  # expected conversions a cell pair's stopped block must have held (see cell_stops_sql)
# The context tables that can explain a move as benign (the partner log explains a payment incident, it never
# finds one, so it is not read), and the fields an experiment's arm names.
EXPLAINING_TABLES = ("experiments", "campaigns", "holidays")
ARM_FIELDS = ("platform", "country", "channel", "user_type")
ARM_SHARE = 0.5


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


def scan_sql(steps: tuple[int, ...], max_dims: int = 3) -> str:
    """Per date and step (of `steps`, positions in STEPS), the strongest cuboids by the z of their leaves' summed
    residuals, where the strongest moved beyond SCAN_Z: each with its step (1 to 4 in funnel order), its change
    (residual over expected conversions), z, residual and expected conversions."""
    def listed(events: list[str]) -> str:
        return "[" + ", ".join(events) + "]"

    numbers = listed([str(i + 1) for i in steps])  # STEP_NAMES' keys
    nums = listed([_event(STEPS[i][1]) for i in steps])
    dens = listed([_event(STEPS[i][2]) for i in steps])
    sums = ("sum(n - q * d) r, sum(q * d) e, "
            f"sum(greatest(q * (1 - q), {RATE_FLOOR} * q) * d + ({LEAF_SPREAD} * q * d) ^ 2) w")
    sets = cuboid_sets(max_dims)
    parts = [_grouped([s for s in sets if "app_version" not in s], "q", sums, "date, k")]
    versioned = [s for s in sets if "app_version" in s]
    if versioned:  # web has one version: its cuboids are web's own
        parts.append(_grouped(versioned, "(SELECT l.*, q FROM l JOIN q USING (date, k, p, c, h, u) WHERE p <> 'web')",
                              sums, "date, k"))
    return (f"WITH l AS (SELECT date, platform p, country c, app_version v, channel h, user_type u, "
            f"unnest({numbers}) k, unnest({nums}) n, unnest({dens}) d FROM daily_by_segment), "
            "t AS (SELECT date, k, p, c, h, u, sum(n) n, sum(d) d FROM l GROUP BY ALL), "
            "q AS (SELECT *, median(n / d) FILTER (d > 0) OVER (PARTITION BY k, p, c, h, u, isodow(date) "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW) q FROM t), "
            f"g AS ({' UNION ALL '.join(parts)}), "
            f"z AS (SELECT *, r / sqrt({BASELINE_NOISE} * w + ({CUBOID_SPREAD} * e) ^ 2) z FROM g "
            f"WHERE e >= {MIN_EXPECTED}) "
            f"SELECT date, k step, p platform, c country, v app_version, h channel, u user_type, "
            f"round(r / e, 3) change, round(z, 1) z, round(r) r, round(e) e FROM z WHERE abs(z) >= {KEPT_Z} "
            f"QUALIFY max(abs(z)) OVER (PARTITION BY date, k) >= {SCAN_Z} AND row_number() OVER (PARTITION BY "
            f"date, k ORDER BY abs(z) DESC) <= {TOP} ORDER BY date, k, abs(z) DESC")


def count_scan_sql(max_dims: int = 3) -> str:
    """Per date, the cuboids of platform and country (the fields hours are served for, to which an outage is
    confined) whose app opens fell furthest below their leaves' same-weekday medians (sampling plus a day's demand
    spread), on dates where the strongest fell beyond SCAN_Z: the opens an outage loses, or a segment's demand swing
    (the hours tell them apart)."""
    sums = f"sum(o - q) r, sum(q) e, sum(q + ({LEAF_SPREAD} * q) ^ 2) w"
    sets = [fields for fields in cuboid_sets(max_dims) if set(fields) <= {"platform", "country"}]
    return ("WITH t AS (SELECT date, platform p, country c, channel h, user_type u, sum(app_opens) o "
            "FROM daily_by_segment GROUP BY ALL), "
            "q AS (SELECT *, median(o) OVER (PARTITION BY p, c, h, u, isodow(date) ROWS BETWEEN UNBOUNDED "
            "PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW) q FROM t), "
            f"g AS ({_grouped(sets, 'q', sums).replace('NULL v', 'NULL::VARCHAR v')}), "
            f"z AS (SELECT *, r / sqrt(w + ({DEMAND_SPREAD} * e) ^ 2) z FROM g WHERE e >= {MIN_EXPECTED}) "
            "SELECT date, p platform, c country, h channel, u user_type, round(r / e, 3) change, round(z, 1) z, "
            f"round(r) r, round(e) e FROM z WHERE z <= -{KEPT_Z} QUALIFY min(z) OVER (PARTITION BY date) <= -{SCAN_Z} "
            f"AND row_number() OVER (PARTITION BY date ORDER BY z) <= {TOP} ORDER BY date, z")


def shape_sql(falls: list[dict[str, Any]]) -> str:
    """Per localised fall (date, step, the cuboid's cell fields), the share of the day's lost conversions that
    fell within the worst BLOCK_HOURS consecutive hours, against each hour's same-weekday median: near 1 for a
    block of hours (a break), near the block's share of the day's traffic for a fall that lasts the day. Hourly
    counts exist per cell, so a cuboid naming a channel or user type is read on its cells (diluted alike in
    every hour)."""
    wanted = ", ".join(
        f"(DATE '{row['date']}', '{row['entity_name']}', "
        + ", ".join(_text(row.get(field), i == 0) for field in CELL_FIELDS) + ")" for i, row in enumerate(falls))
    named = {row["entity_name"] for row in falls}  # a CASE branch for each step read, no other
    cases = {part: " ".join(f"WHEN '{name}' THEN {_column(n if part == 'n' else d)}" for name, n, d in STEPS
                            if name in named) for part in ("n", "d")}
    if "app_opens" in named:  # a count: its hours against their medians
        cases["n"] += " WHEN 'app_opens' THEN app_opens"
        cases["d"] += " WHEN 'app_opens' THEN 1"
    return (f"WITH f(date, step, platform, country, app_version) AS (VALUES {wanted}), "
            "h AS (SELECT f.date dd, f.step, x.date, x.hour, "
            f"sum(CASE f.step {cases['n']} END) n, sum(CASE f.step {cases['d']} END) d FROM f JOIN hourly_by_segment x "
            "ON isodow(x.date) = isodow(f.date) AND (f.platform IS NULL OR x.platform = f.platform) AND "
            "(f.country IS NULL OR x.country = f.country) AND (f.app_version IS NULL OR x.app_version = f.app_version) "
            "GROUP BY ALL), "
            "b AS (SELECT a.dd, a.step, a.hour, any_value(a.n) - median(x.n / x.d) * any_value(a.d) r FROM h a "
            "JOIN h x ON x.dd = a.dd AND x.step = a.step AND x.hour = a.hour AND x.date <> x.dd AND x.d > 0 "
            "WHERE a.date = a.dd GROUP BY ALL), "
            f"w AS (SELECT dd, step, sum(r) OVER (PARTITION BY dd, step ORDER BY hour ROWS BETWEEN "
            f"CURRENT ROW AND {BLOCK_HOURS - 1} FOLLOWING) block, sum(r) OVER (PARTITION BY dd, step) total "
            "FROM b) "
            "SELECT dd date, step entity_name, round(min(block) / min(total), 2) block_share FROM w "
            "WHERE total < 0 GROUP BY ALL ORDER BY date")


def cell_stops_sql() -> str:
    """Per date, platform and country together (a cell pair, hourly data's own grain) and step, the longest block
    of consecutive hours in which the step converted under STOP of its day's rate there, where the block expected
    at least CELL_STOP_FLOOR conversions: a break a version-wide reading dilutes. Chance alone (a few expected
    conversions an hour) rarely empties a block that large."""
    steps = " UNION ALL ".join(f"SELECT date, hour, platform, country, '{name}' entity_name, {num} num, {den} den "
                               "FROM h" for name, num, den in STEPS)
    return (f"WITH h AS (SELECT date, hour, platform, country, {COUNTS} FROM hourly_by_segment GROUP BY ALL), "
            f"u AS ({steps}), "
            "r AS (SELECT *, sum(num) OVER d / nullif(sum(den) OVER d, 0) rate FROM u "
            "WINDOW d AS (PARTITION BY date, platform, country, entity_name)), "
            f"g AS (SELECT *, den * rate x, hour - row_number() OVER (PARTITION BY date, platform, country, "
            f"entity_name ORDER BY hour) run FROM r WHERE den > 0 AND rate > 0 AND num < {STOP} * den * rate), "
            "b AS (SELECT date, platform, country, entity_name, count(*) n, sum(x) expected FROM g "
            f"GROUP BY date, platform, country, entity_name, run "
            f"HAVING count(*) >= {STOP_HOURS} AND sum(x) >= {CELL_STOP_FLOOR}) "
            "SELECT date, platform, country, entity_name, max(n) stopped_hours, round(max(expected)) expected "
            "FROM b GROUP BY ALL ORDER BY date")


def series_sql(falls: list[dict[str, Any]]) -> str:
    """Each fall's cuboid and step on every date of the window, where it fell beyond RUN_Z (its leaves' residuals
    against their same-weekday medians, as the scan sums them): the dates a fall lasted."""
    named = {row["entity_name"] for row in falls}  # a median and CASE branches for each step read, no other
    steps = [(name, EVENT_ALIAS[_event(n)], EVENT_ALIAS[_event(d)]) for name, n, d in STEPS if name in named]
    wanted = ", ".join(f"({k}, '{row['entity_name']}', " + ", ".join(_text(row.get(f), k == 0) for f in SEGMENT_FIELDS)
                       + ")" for k, row in enumerate(falls))
    medians = ", ".join(f"median({n} / {d}) FILTER ({d} > 0) OVER w q{i}" for i, (_, n, d) in enumerate(steps))

    def case(term: str) -> str:
        return "CASE f.step " + " ".join(f"WHEN '{name}' THEN " + term.format(n=n, d=d, q=f"q{i}")
                                         for i, (name, n, d) in enumerate(steps)) + " END"

    inside = " AND ".join(f"(f.{a} IS NULL OR x.{a} = f.{a})" for a in ALIAS.values())
    variance = f"greatest(x.{{q}} * (1 - x.{{q}}), {RATE_FLOOR} * x.{{q}}) * x.{{d}}"
    return (f"WITH f(k, step, p, c, v, h, u) AS (VALUES {wanted}), "
            "l AS (SELECT date, platform p, country c, app_version v, channel h, user_type u, app_opens o, "
            "menu_opens m, product_added_to_cart c2, orders_placed p2, payment_successful y FROM daily_by_segment), "
            "t AS (SELECT date, p, c, h, u, sum(o) o, sum(m) m, sum(c2) c2, sum(p2) p2, sum(y) y FROM l GROUP BY ALL), "
            f"q AS (SELECT date, p, c, h, u, {medians} FROM t WINDOW w AS (PARTITION BY p, c, h, u, isodow(date) "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW)), "
            "x AS (SELECT * FROM l JOIN q USING (date, p, c, h, u)), "
            f"g AS (SELECT f.k, f.step, x.date, sum({case('x.{n} - x.{q} * x.{d}')}) r, "
            f"sum({case('x.{q} * x.{d}')}) e, sum({case(variance)}) w "
            f"FROM f JOIN x ON {inside} GROUP BY ALL), "
            f"z AS (SELECT *, r / sqrt({BASELINE_NOISE} * w + ({CUBOID_SPREAD} * e) ^ 2) z FROM g WHERE e > 0) "
            f"SELECT k, date, round(r / e, 3) change, round(z, 1) z FROM z WHERE z <= -{RUN_Z} ORDER BY k, date")


def _event(alias: str) -> str:
    """The event an alias of frontier_expert.COUNTS sums."""
    return {"o": "app_opens", "m": "menu_opens", "c": "product_added_to_cart", "p": "orders_placed",
            "y": "payment_successful"}[alias]


def _fields(row: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((field, str(row[field])) for field in SEGMENT_FIELDS if row.get(field) is not None)


def _parents(fields: tuple[tuple[str, str], ...]) -> list[tuple[tuple[str, str], ...]]:
    """The cuboids one dimension coarser (a version dropped alone; a platform dropped with its version)."""
    named = dict(fields)
    parents = []
    for field in named:
        dropped = {field, "app_version"} if field == "platform" else {field}
        parent = tuple((f, v) for f, v in fields if f not in dropped)
        if parent and parent not in parents:
            parents.append(parent)
    return parents


def localise(candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The root cause among one date and step's strongest cuboids: the strongest, generalised to a parent for as
    long as the rest of the parent moved along with it (the ripple check of the module docstring)."""
    by_fields = {_fields(row): row for row in candidates}
    best = max(candidates, key=lambda row: abs(row["z"]))
    while True:
        child = _fields(best)
        rippled = []
        for parent in _parents(child):
            row = by_fields.get(parent)
            if row is None or not row["z"] or not best["z"]:
                continue
            if row["z"] * best["z"] > 0 and abs(row["z"]) >= abs(best["z"]) - OCCAM_Z:
                rippled.append(row)  # the coarser cuboid explains it as well: the simpler root cause
                continue
            rest_r, rest_e = row["r"] - best["r"], row["e"] - best["e"]
            rest_var = (row["r"] / row["z"]) ** 2 - (best["r"] / best["z"]) ** 2
            if rest_e <= 0 or rest_var <= 0:
                continue
            rest_z, rest_change = rest_r / rest_var ** 0.5, rest_r / rest_e
            # The rest moved the same way beyond its noise, by a comparable share (or one its noise cannot tell
            # from the cuboid's own).
            comparable = rest_change / best["change"] >= RIPPLE_SHARE or \
                abs(rest_change - best["change"]) <= 2 * rest_var ** 0.5 / rest_e
            if rest_z * best["z"] > 0 and abs(rest_z) >= RIPPLE_Z and comparable:
                rippled.append(row)
        if not rippled:
            return best
        best = max(rippled, key=lambda row: abs(row["z"]))


class DeepExpertAgent(FrontierExpertAgent):
    """The deep procedure of the module docstring; `max_dims` bounds the cuboids it searches."""

    name = "deep_expert"
    fields = SEGMENT_FIELDS
    # A regression narrowed to part of its version (a country, a channel) has too few users to show in the first
    # dates of the rollout; a release breaks its version from the rollout's first date (the brief's release note),
    # so a fall first seen a few dates in still dates back to it.
    regression_seen_within = 3

    def __init__(self, max_dims: int = 3) -> None:
        super().__init__()
        self.max_dims = max_dims

    def begin(self, observation: SeenObservation) -> None:
        super().begin(observation)
        self.localised: list[dict[str, Any]] | None = None
        self.beyond_arms: set[tuple[Any, ...]] = set()
        self.series_of: list[dict[str, Any]] = []
        self.count_falls: list[dict[str, Any]] = []
        self.plan = [
            ("releases", MetricTrackerRlAction(analysis_method="get_releases", analysis_args={})),
            ("hours", _query(hours_sql(("platform", "country"), self.holidays))),
            ("stops", _query(stops_sql(False))),
            *((f"scan {steps}", _query(scan_sql(steps, self.max_dims))) for steps in SCAN_GROUPS),
            ("scan app_opens", _query(count_scan_sql(self.max_dims))),
        ]
        if self.max_dims >= 2:  # the hours of each platform and country together
            self.plan.append(("cell hours", _query(hours_sql(("cell",), self.holidays, outages_only=True))))
            self.plan.append(("cell stops", _query(cell_stops_sql())))
        # What the team knows besides the counts, to cross-reference (a tier with context tables).
        if "context_tables" in observation.brief.get("segments", {}):
            self.plan += [(table, MetricTrackerRlAction(analysis_method="get_context", analysis_args={"table": table}))
                          for table in EXPLAINING_TABLES]

    def _plan_more(self) -> bool:
        """Once the scans answered: localise every date and step they kept, then ask for the hours of each fall."""
        if self.localised is not None:
            return False
        by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for steps in SCAN_GROUPS:
            for row in self.results[f"scan {steps}"]:
                step = STEP_NAMES.get(row.get("step", 0))  # steps are numbered from 1
                if step is not None and row.get("z") is not None and row.get("change") is not None:
                    by_key[(str(row["date"]), step)].append(row)
        self.localised = [{**localise(rows), "entity_name": step} for (_, step), rows in sorted(by_key.items())]
        self.beyond_arms = {(str(row["date"]), row["entity_name"], _segment_of(row)) for row in self.localised
                            if self._beyond_arms(row, by_key[(str(row["date"]), row["entity_name"])])}
        self.localised = [row for row in self.localised if not self._explained(Report(
            str(row["date"]), "conversion_rate", row["entity_name"], "", *_segment_of(row)))]
        opens: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self.results["scan app_opens"]:
            if row.get("z") is not None and str(row["date"]) not in self.holidays:
                opens[str(row["date"])].append(row)
        self.count_falls = [{**localise(rows), "entity_name": "app_opens"} for _, rows in sorted(opens.items())]
        falls = [row for row in self.localised if row["change"] < 0 and row["entity_name"] != STEPS[0][0]]
        falls += self.count_falls
        if falls:
            self.plan.append(("shape", _query(shape_sql(falls))))
        self.series_of = sorted((row for row in self.localised if row["change"] < 0 and row["z"] <= -SCAN_Z),
                                key=lambda row: row["z"])[:SERIES_MOST]
        if self.series_of:
            self.plan.append(("series", _query(series_sql(self.series_of))))
        return bool(self.plan)

    def _lasting(self) -> list[dict[str, Any]]:
        """The dates around each strong fall on which its cuboid's step fell too (a level shift's run, growing
        and recovering), as rate rows of that cuboid, where no other cuboid was localised on that date and step."""
        day_of = {date: day for day, date in enumerate(self.dates)}
        fell: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
        for row in self.results["series"]:
            if str(row["date"]) in day_of:
                fell[int(row["k"])][day_of[str(row["date"])]] = row
        taken = {(str(row["date"]), row["entity_name"]) for row in self.localised or []}
        added = []
        for k, source in enumerate(self.series_of):
            day = day_of.get(str(source["date"]))
            for direction in (-1, 1):
                other = day + direction if day is not None else None
                while other is not None and other in fell[k]:
                    date = self.dates[other]
                    if (date, source["entity_name"]) not in taken:
                        added.append({**source, "date": date, "change": fell[k][other]["change"],
                                      "z": fell[k][other]["z"]})
                        taken.add((date, source["entity_name"]))
                    other += direction
        return added

    def _decide(self) -> list[Report]:
        """The frontier's classifiers, each on its own evidence, so that one date may carry two incidents (on
        different keys): hourly breaks and outages, web duplicates, release regressions, then the rate falls no
        signature explained, each a funnel break where its fall sits in a block of hours and a level shift where
        it lasts the day."""
        self.results["rates"] = [*(self.localised or []), *self._lasting()]
        hourly: dict[str, Report] = {}
        self._stops(hourly)
        self._outages(hourly)
        duplicates: dict[str, Report] = {}
        self._duplicates(duplicates)
        regressions: dict[str, Report] = {}
        self._regressions(regressions)
        self._narrow_regressions(regressions)
        reports = [*hourly.values(), *duplicates.values(), *regressions.values(), *self._cell_stops(hourly)]
        # An event logged twice moves the step into it up and the step out of it down.
        explained = {(r.date, r.entity_name) for r in reports} | {
            (r.date, step) for r in duplicates.values() for step, num, den in STEPS
            if r.entity_name in (STEP_INTO_EVENT.get(step), _column(den))}
        # A break lasts hours: its fall sits in a block of them, on a date whose neighbours did not fall on that
        # step (a level shift's run), unless nearly all of it sits there.
        day_of = {date: day for day, date in enumerate(self.dates)}
        fell = {(day_of.get(str(row["date"])), row["entity_name"]) for row in self.results["rates"]
                if row["change"] < 0}
        blocks = {(str(row["date"]), row["entity_name"]) for row in self.results["shape"]
                  if row.get("block_share") is not None and (row["block_share"] >= SURE_BLOCK_SHARE or (
                      row["block_share"] >= BLOCK_SHARE and not any(
                          (day_of.get(str(row["date"]), -9) + step, row["entity_name"]) in fell for step in (-1, 1))))}
        shaped_share = {(str(row["date"]), row["entity_name"]): row["block_share"] for row in self.results["shape"]
                        if row.get("block_share") is not None}
        rest = []
        for row in self.results["rates"]:
            key = (str(row["date"]), row["entity_name"])
            if key in explained:
                continue
            # Hours are served per cell, and an incident confined by channel or user type changes the whole day
            # (published.HOURLY_EVIDENCE_GRAIN): a fall in such a cuboid is never a break, whatever its cells' hours
            # show. A fall of a cell's own below BLOCK_Z needs nearly all of its loss in the block (a few hours'
            # noise is not).
            daily_only = row.get("channel") is not None or row.get("user_type") is not None
            sure = shaped_share.get(key, 0.0) >= SURE_BLOCK_SHARE
            if key in blocks and key[0] not in self.holidays and not daily_only and (row["z"] <= -BLOCK_Z or sure):
                reports.append(Report(key[0], "funnel_step", key[1], "funnel_break", *_segment_of(row)))
                continue
            rest.append(row)
        self.results["rates"] = rest
        # A platform and country together whose opens collapsed in a block of hours, on a date neither alone showed
        # an outage (diluted there), and whose other hours did not gain the opens lost (a small cell's timing shift
        # moves its evening into hours too quiet to count as risen): the outage of that cell pair.
        outage_dates = {r.date for r in reports if r.entity_name == "app_opens"}
        cells = [row for row in self.results["cell hours"] if str(row["date"]) not in outage_dates
                 and row["n_low"] >= 2 and row["n_high"] <= 1 and _one_block(str(row["low_hours"]))
                 and (row.get("kept") is None or row["kept"] < KEPT_AT_MOST)]
        for date in sorted({str(row["date"]) for row in cells}):
            top = max((row for row in cells if str(row["date"]) == date), key=lambda row: row["n_low"])
            reports.append(Report(date, "event_count", "app_opens", "absolute_drop_in_event_count",
                                  top["platform"], top["country"]))
        # Opens lost in a block of hours of a cuboid no hourly scan named: an outage (a demand swing lasts the day).
        outage_dates = {r.date for r in reports if r.entity_name == "app_opens"}
        reports += [Report(str(row["date"]), "event_count", "app_opens", "absolute_drop_in_event_count",
                           *_segment_of(row)) for row in self.count_falls
                    if shaped_share.get((str(row["date"]), "app_opens"), 0.0) >= SURE_BLOCK_SHARE
                    and str(row["date"]) not in outage_dates]
        reports += self._cuboid_runs()
        # A fall on one date only, strong and all day, is a level shift too (at deep some last a single date).
        taken = {(r.date, r.entity_name) for r in reports}
        reports += [Report(str(row["date"]), "conversion_rate", row["entity_name"], "rate_drop_from_median",
                           *_segment_of(row)) for row in rest
                    if row["z"] <= -SINGLE_DATE_Z and (str(row["date"]), row["entity_name"]) not in taken
                    and row["entity_name"] != STEPS[0][0]  # a first step's fall on one date is bots
                    and str(row["date"]) not in self.holidays and row.get("app_version") is None]
        return sorted((r for r in reports if not self._explained(r)), key=lambda r: r.date)

    def _cell_stops(self, hourly: dict[str, Report]) -> list[Report]:
        """A step that stopped for a block of hours in a platform and country together, on a date no version-wide
        break or outage was read and on a date and step the daily scan did not localise (too diluted in the day to
        show there): that cell pair's funnel break (the largest block of each date and step)."""
        # A date and step the daily scan localised keeps its cuboid: its fall's hours classify it there.
        scanned = {(str(row["date"]), row["entity_name"]) for row in self.localised or []}
        best: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self.results.get("cell stops", []):
            key = (str(row["date"]), row["entity_name"])
            # A first step that "stops" in a block of hours is the opens that never reach the menu (bots, a
            # surge), not a break of it.
            if key[0] in hourly or key[0] in self.holidays or key[1] == STEPS[0][0] or key in scanned:
                continue
            if key not in best or row["expected"] > best[key]["expected"]:
                best[key] = row
        return [Report(date, "funnel_step", step, "funnel_break", row["platform"], row["country"])
                for (date, step), row in sorted(best.items())]

    def _narrow_regressions(self, regressions: dict[str, Report]) -> None:
        """A release regression may be confined to part of its version (a country, channel or user type): each
        run takes the cuboid its strongest date localised inside that version, on every date of the run."""
        for report in list(regressions.values()):
            rows = [row for row in self.results["rates"] if row["entity_name"] == report.entity_name
                    and row.get("platform") == report.platform and str(row.get("app_version")) == report.app_version
                    and any(r.entity_name == report.entity_name and r.date == str(row["date"])
                            for r in regressions.values())]
            if not rows:
                continue
            segment = _segment_of(min(rows, key=lambda row: row["z"]))
            for date, other in list(regressions.items()):
                if other.entity_name == report.entity_name and other.platform == report.platform and \
                        other.app_version == report.app_version:
                    regressions[date] = Report(date, other.entity_type, other.entity_name, other.anomaly_type,
                                               *segment)

    def _cuboid_runs(self) -> list[Report]:
        """The frontier's rate runs, each step on its own (one date may carry falls of two steps) and each run
        reported on the dates its strongest cuboid's falls reach (a fall of another cuboid on a neighbouring date
        is not the run's). Bots are a whole country's (their extra opens spread over its leaves): a first step's
        fall on one date localised finer than one country is that cuboid's own level shift. A run needs one date
        beyond RUN_STRONG_Z or two beyond SCAN_Z (a small cuboid's one strong date and a weak neighbour is noise).
        """
        falls: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        day_of = {date: day for day, date in enumerate(self.dates)}
        for row in self.results["rates"]:
            if _share(row) < 0 and row["date"] not in self.holidays and row.get("app_version") is None \
                    and str(row["date"]) in day_of:
                falls[row["entity_name"]][day_of[str(row["date"])]].append(row)
        reports = []
        for step, by_day in falls.items():
            runs: list[list[int]] = []
            for day in sorted(by_day):
                if runs and day == runs[-1][-1] + 1:
                    runs[-1].append(day)
                else:
                    runs.append([day])
            for run in runs:
                rows = [row for day in run for row in by_day[day]]
                strongest = min(rows, key=lambda row: row["z"])
                if strongest["z"] > -RUN_STRONG_Z:
                    continue
                segment = _segment_of(strongest)
                arm = Report("", "", "", "", *segment)
                days = [day for day in run if any(_nested(Report("", "", "", "", *_segment_of(row)), asdict(arm))
                                                  for row in by_day[day])]
                if len(days) == 1 and step == STEPS[0][0]:
                    bots = segment == (None, segment[1], None, None, None) and segment[1] is not None
                    reports.append(Report(self.dates[days[0]], "hourly_mix", "app_opens", "hourly_traffic_mix_shift",
                                          *segment) if bots else Report(
                        self.dates[days[0]], "conversion_rate", step, "rate_drop_from_median", *segment))
                elif len(days) > 1 and (strongest["z"] <= -RUN_STRONG_Z or sum(
                        row["z"] <= -SCAN_Z for day in days for row in by_day[day]) >= 2):
                    reports += [Report(self.dates[day], "conversion_rate", step, "rate_drop_from_median", *segment)
                                for day in days]
        return reports

    def _beyond_arms(self, row: dict[str, Any], candidates: list[dict[str, Any]]) -> bool:
        """Whether a fall localised on a cuboid wider than an experiment's arm (on its target step and dates) is
        more than the arm's intended effect: the arm's own cuboid, where the scan returned it, holds under
        ARM_SHARE of the fall's residual, or is not among its strongest cuboids (the rest of the cuboid fell too: an
        incident beside the experiment)."""
        date, step = str(row["date"]), row["entity_name"]
        for experiment in self.results["experiments"]:
            arm = tuple((field, str(experiment[field])) for field in SEGMENT_FIELDS
                        if field in ARM_FIELDS and experiment.get(field) is not None)
            if step != experiment["target_step"] or not experiment["start_date"] <= date <= experiment["end_date"] \
                    or arm == _fields(row) or not set(_fields(row)) < set(arm):
                continue
            own = next((c for c in candidates if _fields(c) == arm), None)
            if own is None or (row["r"] and own["r"] / row["r"] < ARM_SHARE):
                return True
        return False

    def _explained(self, report: Report) -> bool:
        """Whether a context row explains the move as a benign change: an experiment's intended effect (its
        target step, inside its arm or its arm inside the cuboid, on its dates), or traffic a country's holiday or
        a campaign in that channel and country moved on its dates (counts and hours, never a leaf's conversion)."""
        beyond = (report.date, report.entity_name, _segment_of(asdict(report))) in self.beyond_arms
        for experiment in self.results["experiments"]:
            if not beyond and report.entity_name == experiment["target_step"] and \
                    experiment["start_date"] <= report.date <= experiment["end_date"] and \
                    _nested(report, experiment):
                return True
        if report.entity_name != "app_opens":
            return False
        if any(holiday["date"] == report.date and (holiday["country"] is None or holiday["country"] ==
                                                   report.country) for holiday in self.results["holidays"]):
            return True
        return any(campaign["start_date"] <= report.date <= campaign["end_date"] and report.country ==
                   campaign["country"] and report.channel in (None, campaign["channel"])
                   for campaign in self.results["campaigns"])


def _nested(report: Report, arm: dict[str, Any]) -> bool:
    """Whether the report's cuboid lies inside the arm's, or the arm's inside the report's (one names every
    field the other names, with the same values)."""
    named = {field: getattr(report, field) for field in ARM_FIELDS if getattr(report, field) is not None}
    arm_named = {field: arm[field] for field in ARM_FIELDS if arm.get(field) is not None}
    return all(named.get(field) == value for field, value in arm_named.items()) or \
        all(arm_named.get(field) == value for field, value in named.items())


class OneDimensionExpertAgent(DeepExpertAgent):
    """The deep expert limited to one-dimension breakdowns (a version with its platform counts as one)."""

    name = "one_dimension_expert"

    def __init__(self) -> None:
        super().__init__(max_dims=1)


register_agent(DeepExpertAgent.name, DeepExpertAgent)
register_agent(OneDimensionExpertAgent.name, OneDimensionExpertAgent)


# --- the short segment rule ---------------------------------------------------------------------------------------

RULE_K = 6  # the strongest groups the rule reports
COUNT_SPREAD = 0.1  # a group's daily count varies by about this share of its level (demand), on top of sampling
RULE_ENTITIES: tuple[tuple[str, str, str, str | None], ...] = (
    ("event_count", "app_opens", "o", None),
    *(("conversion_rate", name, EVENT_ALIAS[_event(num)], EVENT_ALIAS[_event(den)]) for name, num, den in STEPS),
)


def rule_sql(dimension: str, k: int = RULE_K) -> str:
    """One GROUP BY of one dimension: every group's app opens and step conversions per date against the
    same-weekday median of its own, the k strongest moves by their z (sampling plus a day-to-day spread)."""
    fields = SEARCH_DIMENSIONS[dimension]
    listed = ", ".join(fields)
    same = " AND ".join(f"x.{field} = a.{field}" for field in fields)
    # A version's traffic follows its rollout, so only its conversions are compared.
    units = " UNION ALL ".join(
        f"SELECT date, {listed}, '{kind}' entity_type, '{name}' entity_name, "
        + (f"{num} / nullif({den}, 0) v, {den} n FROM s" if den else f"{num} v, NULL n FROM s")
        for kind, name, num, den in RULE_ENTITIES if den or dimension != "version")
    severity = " ".join(f"WHEN abs(delta_value) / abs(baseline_value) < {bound} THEN '{label}'"
                        for bound, label in ((0.15, "low"), (0.30, "medium"), (0.60, "high")))
    return (f"WITH s AS (SELECT date, {listed}, sum(app_opens) o, sum(menu_opens) m, sum(product_added_to_cart) c2, "
            f"sum(orders_placed) p2, sum(payment_successful) y FROM daily_by_segment GROUP BY ALL), u AS ({units}), "
            f"b AS (SELECT a.date, {', '.join(f'a.{field}' for field in fields)}, a.entity_type, a.entity_name, "
            "any_value(a.v) observed_value, any_value(a.n) n, median(x.v) baseline_value FROM u a JOIN u x ON "
            f"{same} AND x.entity_name = a.entity_name AND isodow(x.date) = isodow(a.date) AND x.date <> a.date "
            "GROUP BY ALL), "
            "d AS (SELECT *, observed_value - baseline_value delta_value, (observed_value - baseline_value) / "
            f"sqrt(CASE WHEN n IS NULL THEN baseline_value + ({COUNT_SPREAD} * baseline_value) ^ 2 "
            "ELSE baseline_value * greatest(1 - baseline_value, 0.02) / n + (0.02 * baseline_value) ^ 2 END) z FROM b "
            "WHERE baseline_value > 0) "
            f"SELECT date, {listed}, entity_type, entity_name, baseline_value, observed_value, delta_value, "
            f"CASE {severity} ELSE 'critical' END severity, round(z, 1) z FROM d ORDER BY abs(z) DESC LIMIT {k}")


class ShortSegmentRuleAgent(Agent):
    """A short rule, no investigation: one GROUP BY per dimension against the same-weekday median, then the k
    strongest groups (one a date), each reported as the plainest family of its move; no hourly reading, no
    context tables."""

    name = "short_segment_rule"

    def begin(self, observation: SeenObservation) -> None:
        self.plan_calls = [(dimension, _query(rule_sql(dimension))) for dimension in SEARCH_DIMENSIONS]
        self.rows_seen: list[dict[str, Any]] = []
        self.waiting = False
        self.submitted = False

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if self.waiting:
            self.rows_seen += (observation.analysis_result or {}).get("rows", [])
            self.waiting = False
        if observation.status == "graded" or observation.done or self.submitted:
            return None
        if self.plan_calls:
            self.waiting = True
            return self.plan_calls.pop(0)[1]
        self.submitted = True
        return MetricTrackerRlAction(classifications=self._report())

    def _report(self) -> list[MetricSubmissionRow]:
        chosen: dict[str, dict[str, Any]] = {}
        for row in sorted(self.rows_seen, key=lambda r: -abs(r["z"] or 0.0)):
            if len(chosen) < RULE_K and str(row["date"]) not in chosen:
                chosen[str(row["date"])] = row
        report = []
        for row in chosen.values():
            fell = row["delta_value"] < 0
            family = ("rate_drop_from_median" if fell else "rate_spike_from_median") \
                if row["entity_type"] == "conversion_rate" else \
                ("absolute_drop_in_event_count" if fell else "absolute_spike_in_event_count")
            method = "compare_rate_to_median" if row["entity_type"] == "conversion_rate" else "compare_count_to_median"
            report.append(MetricSubmissionRow(
                date=str(row["date"]), entity_type=row["entity_type"], entity_name=row["entity_name"],
                anomaly_type=family, detection_method=method, baseline_value=row["baseline_value"],
                observed_value=row["observed_value"], delta_value=row["delta_value"], severity=row["severity"],
                **{field: str(row[field]) for field in SEGMENT_FIELDS if row.get(field) is not None}))
        return report


register_agent(ShortSegmentRuleAgent.name, ShortSegmentRuleAgent)
