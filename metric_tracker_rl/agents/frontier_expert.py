"""The expert at frontier: a segmented eight-week world read through the SQL tool, deciding only from the text of
the tool results and from what the brief publishes.

The brief says every incident is confined to a segment, that releases sometimes break the new version from the
rollout's start, and that the benign look-alikes keep every segment's own conversion (more traffic from a
low-converting segment, a segment's demand all day, a segment's timing). So the signature decides, never a size:

1. get_releases: each mobile release's platform, version and first date.
2. Step conversions of every platform, country and (in its release's first dates) new version against the
   published baseline (the median of the same weekday in the other weeks): a change well outside its sampling
   noise (a binomial z that also allows for a segment's day-to-day spread) is kept. Only incidents move a
   segment's own conversion.
3. The hour-of-day shape of each platform's and country's app opens against the same hours of the same weekday
   (each hour's ratio divided by the day's median ratio, so a whole-day swing cancels): low hours in one block and
   none high is an outage; low and high hours together are a timing shift (benign).
4. Each step's hourly conversion of every version against the day's own median: hours where a step nearly stopped
   converting are a funnel break, on the version, or on its platform when the other versions stopped too.
5. A web event whose incoming step converts far above its baseline is logged twice (a tracking bug); a new
   version whose step fell from its rollout's start while its platform did not fall with it is a release
   regression; a country whose first step fell on a single date is bots (opens that never go further: an hourly mix
   shift); any other
   step that fell on consecutive dates is a level shift on the platform or country that fell furthest.
6. Last, queries read every reported row (date, entity, the segment's baseline, observed value, delta and severity
   by the published rules) from the segment's own data, and the hourly-mix comparison tool, scoped to the segment,
   reads each hourly-mix row, so every number submitted stands in a result.

With `segment_blind` the same procedure looks at the aggregate only and reports no segment: the calibration's
aggregate-only expert.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from metric_tracker_rl.agents.base import Agent
from metric_tracker_rl.agents.reading import episode_dates
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.world.segments import CELL_FIELDS, SEGMENT_FIELDS

COUNTS = ("sum(app_opens) o, sum(menu_opens) m, sum(product_added_to_cart) c, sum(orders_placed) p, "
          "sum(payment_successful) y")
# The adjacent steps, each as (metric, numerator alias, denominator alias) of the segment sums above.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("app_open_to_menu_open", "m", "o"),
    ("menu_open_to_product_added_to_cart", "c", "m"),
    ("product_added_to_cart_to_order_placed", "p", "c"),
    ("order_placed_to_payment_successful", "y", "p"),
)
STEP_INTO_EVENT = {"app_open_to_menu_open": "menu_opens", "product_added_to_cart_to_order_placed": "orders_placed",
                   "order_placed_to_payment_successful": "payment_successful"}
COLUMN_OF = {"app_opens": "app_opens", "menu_opens": "menu_opens", "orders_placed": "orders_placed",
             "payment_successful": "payment_successful"}
# A segment's daily conversion moves with sampling (binomial) and with its cells' own day-to-day spread: about 2% of
# the rate for a platform or a country. A step is read as moved beyond SCAN_Z of that noise, and by at least
# SCAN_SHARE of its baseline; a run of dates needs one date beyond STRONG_Z.
RATE_SPREAD = 0.02
SCAN_Z, STRONG_Z, SCAN_SHARE = 4.0, 6.0, 0.05
RELEASE_DAYS = 9  # a version is scanned from its release's first date to this many dates after it
# A web event logged twice or more: its incoming step converts at least this much more than its baseline.
DUPLICATE_RISE = 0.5
# Hour-of-day shape: an hour whose ratio to its baseline is below LOW (above HIGH) times the day's median ratio moved
# on its own; hours with a baseline under HOUR_FLOOR app opens are too noisy to read.
LOW, HIGH, HOUR_FLOOR = 0.45, 1.8, 30
BLOCK_HOURS = 9  # an outage's low hours lie within this many consecutive hours
# A step nearly stopped converting in an hour: below STOP times the day's median for that step, in an hour where the
# day's median rate expects at least STOP_FLOOR conversions (so that none by chance is out of the question).
STOP, STOP_FLOOR, STOP_HOURS = 0.15, 12, 2
OTHERS_STOPPED = 0.5  # the platform's other versions converted under half their day's rate in those hours
PLATFORM_ALONG = 0.75  # share of the new version's fall that its whole platform shows early in a level shift
SQL_CHARS = 4000  # the query tool refuses a longer statement (its error says so)
SEVERITY_BOUNDS = ((0.15, "low"), (0.30, "medium"), (0.60, "high"))  # task_overview's severity_rule
DETECTION_METHOD = {"rate_drop_from_median": "compare_rate_to_median",
                    "funnel_break": "hourly_rows_for_date",
                    "instrumentation_data_quality_issue": "check_impossible_counts",
                    "absolute_spike_in_event_count": "compare_count_to_median",
                    "absolute_drop_in_event_count": "compare_count_to_median",
                    "hourly_traffic_mix_shift": "compare_hourly_mix_to_baseline"}


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
    steps = " UNION ALL ".join(f"SELECT date, platform, country, app_version, k, '{name}' entity_name, {num} num, "
                               f"{den} den FROM v" for name, num, den in STEPS)
    return (f"WITH s AS ({_segment_sums(dimensions)}), "
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
            f"WHERE abs(z) >= {SCAN_Z} AND abs(observed_value / baseline_value - 1) >= {SCAN_SHARE} "
            "AND (app_version IS NULL OR EXISTS (SELECT 1 FROM releases l WHERE l.platform = w.platform AND "
            f"l.app_version = w.app_version AND w.date BETWEEN l.rollout_start AND l.rollout_start + {RELEASE_DAYS})) "
            "ORDER BY date, entity_name, z")


def hours_sql(dimensions: tuple[str, ...], holidays: list[str], outages_only: bool = False) -> str:
    """Per date and segment, the hours whose app opens moved apart from the rest of the day's hours, and `kept`:
    the share of the low hours' loss the other hours gained (an outage loses the opens, near 0; a timing shift moves
    them to other hours, near 1; NULL with no low hour). `outages_only`: only segments with low hours and at most
    one high hour (what an outage looks like), for a reader that looks for nothing else."""
    parts = {
        "all": "SELECT date, hour, NULL platform, NULL country, sum(app_opens) o FROM hourly_by_segment "
               "GROUP BY date, hour",
        "platform": "SELECT date, hour, platform, NULL country, sum(app_opens) o FROM hourly_by_segment GROUP BY ALL",
        "country": "SELECT date, hour, NULL platform, country, sum(app_opens) o FROM hourly_by_segment GROUP BY ALL",
        "cell": "SELECT date, hour, platform, country, sum(app_opens) o FROM hourly_by_segment GROUP BY ALL",
    }
    wanted = "n_low >= 2 AND n_high <= 1" if outages_only else "n_low >= 2 OR n_high >= 2"
    # No holiday, no filter (NOT IN (NULL) would drop every row).
    skipped = f"WHERE a.date NOT IN ({', '.join(repr(date) for date in holidays)}) " if holidays else ""
    return (f"WITH h AS ({' UNION ALL '.join(parts[d] for d in dimensions)}), "
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
            f"FROM r GROUP BY ALL HAVING {wanted} ORDER BY date")


def stops_sql(blind: bool) -> str:
    """Per date, version (or the aggregate) and step, the hours in which the step nearly stopped converting, and
    how the platform's other versions converted in those hours against their own day (`others`): a failure of the
    whole platform stops them too."""
    group = "NULL platform, NULL app_version" if blind else "platform, app_version"
    steps = " UNION ALL ".join(f"SELECT date, hour, platform, app_version, '{name}' entity_name, {num} num, "
                               f"{den} den FROM h" for name, num, den in STEPS)
    return (f"WITH h AS (SELECT date, hour, {group}, {COUNTS} FROM hourly_by_segment GROUP BY ALL), "
            f"u AS ({steps}), "
            "m AS (SELECT *, median(num / den) OVER (PARTITION BY date, platform, app_version, entity_name) med "
            "FROM u WHERE den > 0), "
            "g AS (SELECT date, platform, app_version, entity_name, count(*) stopped_hours, list(hour) stopped FROM m "
            f"WHERE den * med >= {STOP_FLOOR} AND num / den / med < {STOP} GROUP BY ALL "
            f"HAVING count(*) >= {STOP_HOURS}) "
            "SELECT g.date, g.platform, g.app_version, g.entity_name, any_value(g.stopped_hours) stopped_hours, "
            "round(sum(u.num) FILTER (list_contains(g.stopped, u.hour)) / sum(u.den) FILTER (list_contains(g.stopped, "
            "u.hour)) / (sum(u.num) / sum(u.den)), 2) others FROM g LEFT JOIN u ON u.date = g.date AND "
            "u.platform = g.platform AND u.app_version <> g.app_version AND u.entity_name = g.entity_name "
            "GROUP BY ALL ORDER BY g.date")


def _text(value: str | None, typed: bool = True) -> str:
    """A text literal; NULL typed as text where its VALUES column takes its type from it (the first row: the
    later rows' plain NULLs take the column's type)."""
    if value is None:
        return "NULL::VARCHAR" if typed else "NULL"
    return "'" + value.replace("'", "''") + "'"


def values_sql(rows: list[Report], fields: tuple[str, ...] = CELL_FIELDS) -> str:
    """Every reported row read from its segment's own daily data (the segment named by `fields`), with the
    published baseline and severity rules."""
    wanted = ", ".join(f"(DATE '{r.date}', {', '.join(_text(getattr(r, name), i == 0) for name in fields)}, "
                       f"'{r.entity_type}', '{r.entity_name}')" for i, r in enumerate(rows))
    named = {r.entity_name for r in rows}  # a CASE branch for each entity read, no other
    cases = " ".join(f"WHEN '{name}' THEN sum(x.{COLUMN_OF[name]})" for name in COLUMN_OF if name in named)
    cases += " " + " ".join(f"WHEN '{name}' THEN sum(x.{_column(num)}) / nullif(sum(x.{_column(den)}), 0)"
                            for name, num, den in STEPS if name in named)
    severity = " ".join(f"WHEN abs(observed_value - baseline_value) / abs(baseline_value) < {bound} THEN '{label}'"
                        for bound, label in SEVERITY_BOUNDS)
    same = " AND ".join([*(f"g.{name} IS NOT DISTINCT FROM {{t}}.{name}" for name in fields),
                         "g.entity_name = {t}.entity_name"])
    listed, grouped = ", ".join(fields), ", ".join(f"g.{name}" for name in fields)
    inside = " AND ".join(f"(g.{name} IS NULL OR x.{name} = g.{name})" for name in fields)
    return (f"WITH r(date, {listed}, entity_type, entity_name) AS (VALUES {wanted}), "
            f"g AS (SELECT DISTINCT {listed}, entity_name FROM r), "
            f"d AS (SELECT x.date, {grouped}, g.entity_name, CASE g.entity_name {cases} "
            f"END v FROM daily_by_segment x JOIN g ON {inside} "
            f"GROUP BY x.date, {grouped}, g.entity_name), "
            f"e AS (SELECT r.date, {', '.join(f'r.{name}' for name in fields)}, r.entity_type, r.entity_name, "
            "median(b.v) baseline_value, any_value(a.v) observed_value FROM r "
            f"JOIN d a ON a.date = r.date AND {same.format(t='r').replace('g.', 'a.')} "
            f"JOIN d b ON isodow(b.date) = isodow(r.date) AND b.date <> r.date AND "
            f"{same.format(t='r').replace('g.', 'b.')} GROUP BY ALL) "
            f"SELECT date, {listed}, entity_type, entity_name, baseline_value, observed_value, "
            f"observed_value - baseline_value delta_value, CASE {severity} ELSE 'critical' END severity FROM e "
            "ORDER BY date, entity_name")


def values_queries(rows: list[Report], fields: tuple[str, ...] = CELL_FIELDS) -> list[str]:
    """values_sql over as many rows at a time as the query tool's text limit allows."""
    queries: list[str] = []
    batch: list[Report] = []
    for row in rows:
        if batch and len(values_sql([*batch, row], fields)) > SQL_CHARS:
            queries.append(values_sql(batch, fields))
            batch = []
        batch.append(row)
    return [*queries, values_sql(batch, fields)] if batch else queries


def _column(alias: str) -> str:
    return {"o": "app_opens", "m": "menu_opens", "c": "product_added_to_cart", "p": "orders_placed",
            "y": "payment_successful"}[alias]


@dataclass(frozen=True)
class Report:
    """One row to report: its key, family and segment (its numbers come from the values query)."""

    date: str
    entity_type: str
    entity_name: str
    anomaly_type: str
    platform: str | None = None
    country: str | None = None
    app_version: str | None = None
    channel: str | None = None  # the daily-only dimensions, where a tier has them
    user_type: str | None = None


def _segment_of(row: dict[str, Any]) -> tuple[str | None, ...]:
    return tuple(row.get(name) for name in SEGMENT_FIELDS)


def _share(row: dict[str, Any]) -> float:
    return float(row["change"])


class FrontierExpertAgent(Agent):
    """The frontier procedure of the module docstring."""

    name = "frontier_expert"
    fields: tuple[str, ...] = CELL_FIELDS  # the segment fields it reports and reads values by
    # A new version's fall counts as its release's regression when first seen within this many dates of the
    # rollout's start (a whole version carries enough users by its second date).
    regression_seen_within = 1

    def __init__(self, segment_blind: bool = False) -> None:
        self.segment_blind = segment_blind

    def begin(self, observation: SeenObservation) -> None:
        brief = observation.brief
        self.dates = episode_dates(brief)
        holidays = str(brief.get("segments", {}).get("holidays", ""))
        self.holidays = [word for word in holidays.replace(",", " ").split() if _is_date(word)]
        blind = self.segment_blind
        self.plan: list[tuple[str, MetricTrackerRlAction]] = [
            ("rates", _query(rates_sql(("all",) if blind else ("platform", "country", "version")))),
            ("hours", _query(hours_sql(("all",) if blind else ("platform", "country"), self.holidays))),
            ("stops", _query(stops_sql(blind))),
        ]
        if not blind:
            self.plan.insert(0, ("releases", MetricTrackerRlAction(analysis_method="get_releases", analysis_args={})))
        self.results: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.waiting: tuple[str, MetricTrackerRlAction] | None = None
        self.report: list[Report] | None = None
        self.submitted = False

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if self.waiting is not None:
            name, action = self.waiting
            self.waiting = None
            result = observation.analysis_result or {}
            if action.analysis_method == "compare_hourly_mix_to_baseline":  # one row's values, as the tool shows them
                self.results[name].append(result)
            else:
                self.results[name] += result.get("rows", [])
            if result.get("next_offset") is not None and action.analysis_method == "query":  # the next page
                self.plan.insert(0, (name, _query(action.analysis_args["sql"], int(result["next_offset"]))))
        if observation.status == "graded" or observation.done or self.submitted:
            return None
        if not self.plan and self.report is None and not self._plan_more():
            self.report = self._decide()
            mixes = [report for report in self.report if report.entity_type == "hourly_mix"]
            daily = [report for report in self.report if report.entity_type != "hourly_mix"]
            self.plan += [("values", _query(sql)) for sql in values_queries(daily, self.fields)]
            self.plan += [("values", _mix_values(report)) for report in mixes]
        if self.plan:
            self.waiting = self.plan.pop(0)
            return self.waiting[1]
        self.submitted = True
        return MetricTrackerRlAction(classifications=self._rows())

    # --- deciding ------------------------------------------------------------------------------------

    def _plan_more(self) -> bool:
        """Whether calls were added to the plan once the planned ones answered (a deeper procedure's next
        round); the frontier procedure has none."""
        return False

    def _decide(self) -> list[Report]:
        reports: dict[str, Report] = {}  # one event per date at most: the first signature that explains it
        self._stops(reports)
        self._outages(reports)
        self._duplicates(reports)
        self._regressions(reports)
        self._rate_runs(reports)
        return sorted(reports.values(), key=lambda r: r.date)

    def _stops(self, reports: dict[str, Report]) -> None:
        """Hours in which a step nearly stopped: a funnel break on that version, or on the whole platform when its
        other versions stopped in the same hours or had no traffic to show it."""
        # A block of hours whose app opens surged (none fell) brings opens that never reach the menu: their first
        # step "stops" as a side effect, while a break leaves the opens as they were.
        surged = {str(row["date"]) for row in self.results["hours"]
                  if row["n_high"] >= 2 and row["n_low"] <= 1 and _one_block(str(row["high_hours"]))}
        by_date: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self.results["stops"]:
            if not (row["entity_name"] == STEPS[0][0] and str(row["date"]) in surged):
                by_date[row["date"]].append(row)
        for date, rows in by_date.items():
            if date in self.holidays:
                continue
            top = max(rows, key=lambda r: r["stopped_hours"])
            # Every version stopped (or none other had traffic then, its rate NaN or null): the platform's failure,
            # not one version's.
            others = top.get("others")
            whole = not isinstance(others, (int, float)) or others < OTHERS_STOPPED
            reports[date] = Report(date, "funnel_step", top["entity_name"], "funnel_break", top.get("platform"),
                                   None, None if whole else top.get("app_version"))

    def _outages(self, reports: dict[str, Report]) -> None:
        """A block of hours that collapsed with none that rose (hours that fell and rose together are a timing
        shift; a whole-day swing moves no hour apart from the others)."""
        by_date: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self.results["hours"]:
            by_date[row["date"]].append(row)
        for date, rows in by_date.items():
            outages = [r for r in rows if r["n_low"] >= 2 and r["n_high"] <= 1 and _one_block(str(r["low_hours"]))]
            if outages and date not in reports:
                top = max(outages, key=lambda r: r["n_low"])
                reports[date] = Report(date, "event_count", "app_opens", "absolute_drop_in_event_count",
                                       top.get("platform"), top.get("country"))

    def _duplicates(self, reports: dict[str, Report]) -> None:
        """An event whose incoming step converts far above its baseline on web (or, blind, on the aggregate):
        the event is logged more than once."""
        for row in self.results["rates"]:
            event = STEP_INTO_EVENT.get(row["entity_name"])
            on_web = row.get("platform") == "web" or self.segment_blind
            if event and on_web and row["date"] not in reports and _share(row) >= DUPLICATE_RISE \
                    and row["z"] >= STRONG_Z:
                reports[row["date"]] = Report(row["date"], "data_quality", event,
                                              "instrumentation_data_quality_issue", row.get("platform"))

    def _regressions(self, reports: dict[str, Report]) -> None:
        """A release's new version whose step fell from the rollout's first `regression_seen_within` + 1 dates
        on: a regression on that version, from the rollout's first date for as long as the fall lasts."""
        day_of = {date: day for day, date in enumerate(self.dates)}
        for release in self.results["releases"]:
            start = day_of.get(str(release["rollout_start"]))
            platform, version = release["platform"], str(release["app_version"])
            if start is None or start >= len(self.dates) - 1:
                continue
            falls: dict[str, dict[int, float]] = defaultdict(dict)
            version_share: dict[str, dict[int, float]] = defaultdict(dict)
            shares: dict[str, dict[int, float]] = defaultdict(dict)  # the platform's own falls
            for row in self.results["rates"]:
                if _share(row) >= 0 or row["date"] not in day_of or row.get("platform") != platform:
                    continue
                day = day_of[row["date"]]
                if str(row.get("app_version")) == version:
                    falls[row["entity_name"]][day] = row["z"]
                    version_share[row["entity_name"]][day] = _share(row)
                elif row.get("app_version") is None and row.get("country") is None:
                    shares[row["entity_name"]][day] = _share(row)
            for step, days in falls.items():
                first = min((day for day in days if start <= day <= start + self.regression_seen_within),
                            default=None)
                if first is None or min(days.values()) > -STRONG_Z:
                    continue
                last = first
                while last + 1 in days:
                    last += 1
                # In its first three dates the new version carries half of the platform at most: a platform that fell
                # about as far as the version then fell as a whole (a level shift that began with the rollout).
                whole = [shares[step].get(day, 0.0) <= PLATFORM_ALONG * version_share[step][day]
                         for day in range(start, start + 3) if day in version_share[step]]
                # A regression: several dates (or one first seen two or more dates into the rollout, its earlier
                # dates too thin to show it), on the new version alone.
                if (last - first < 1 and first - start <= 1) or any(whole):
                    continue
                for day in range(start, last + 1):
                    date = self.dates[day]
                    reports.setdefault(date, Report(date, "conversion_rate", step, "rate_drop_from_median",
                                                    platform, None, version))

    def _rate_runs(self, reports: dict[str, Report]) -> None:
        """Step conversions of a platform or a country that fell on consecutive dates, each run on the segment that
        fell furthest over it. A single date on which a country's first step stopped converting as often is bots
        (opens that never go further); a level shift lasts several dates."""
        falls: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for row in self.results["rates"]:
            if _share(row) < 0 and row["date"] not in reports and row["date"] not in self.holidays \
                    and row.get("app_version") is None:
                falls[row["entity_name"]][row["date"]].append(row)
        day_of = {date: day for day, date in enumerate(self.dates)}
        for step, by_date in falls.items():
            runs: list[list[int]] = []
            for day in sorted(day_of[date] for date in by_date):
                if runs and day == runs[-1][-1] + 1:
                    runs[-1].append(day)
                else:
                    runs.append([day])
            for run in runs:
                rows = [row for day in run for row in by_date[self.dates[day]]]
                if min(row["z"] for row in rows) > -STRONG_Z:
                    continue
                totals: dict[tuple[str | None, ...], float] = defaultdict(float)
                for row in rows:
                    totals[_segment_of(row)] += _share(row)
                segment = min(totals, key=lambda s: totals[s])
                if len(run) == 1:
                    if step != STEPS[0][0] or (segment[1] is None and not self.segment_blind):
                        continue  # one date, not bots: noise or a fall too short for a level shift
                    date = self.dates[run[0]]
                    reports[date] = Report(date, "hourly_mix", "app_opens", "hourly_traffic_mix_shift", *segment)
                    continue
                for day in run:
                    date = self.dates[day]
                    reports[date] = Report(date, "conversion_rate", step, "rate_drop_from_median", *segment)

    # --- the report ------------------------------------------------------------------------------------

    def _rows(self) -> list[MetricSubmissionRow]:
        """The reported rows as the values query shows them."""
        shown = {(str(r["date"]), r["entity_name"], *(None if r.get(name) is None else str(r[name])
                                                      for name in self.fields)): r
                 for r in self.results["values"] if "date" in r}  # a tool that refused a row shows no date
        rows = []
        for report in self.report or []:
            row = shown.get((report.date, report.entity_name, *(getattr(report, name) for name in self.fields)))
            if row is None or row.get("baseline_value") is None or row.get("observed_value") is None:
                continue
            segment = {} if self.segment_blind else {name: getattr(report, name) for name in self.fields}
            rows.append(MetricSubmissionRow(
                date=report.date, entity_type=row["entity_type"], entity_name=report.entity_name,
                anomaly_type=report.anomaly_type, detection_method=DETECTION_METHOD[report.anomaly_type],
                baseline_value=row["baseline_value"], observed_value=row["observed_value"],
                delta_value=row["delta_value"], severity=row["severity"], **segment))
        return rows


def _one_block(hours: str) -> bool:
    """Hours (as the hourly scan lists them) that fit in one block no longer than an outage can be, across
    midnight too: hours that fell by chance are scattered over the day."""
    listed = sorted(int(hour) for hour in hours.split(","))
    widest_gap = max(b - a for a, b in zip(listed, listed[1:] + [listed[0] + 24], strict=True))
    return 24 - widest_gap + 1 <= BLOCK_HOURS


def _is_date(word: str) -> bool:
    try:
        dt.date.fromisoformat(word)
    except ValueError:
        return False
    return True


def _mix_values(report: Report) -> MetricTrackerRlAction:
    """An hourly-mix row's numbers, read from its segment's own hours by the comparison tool."""
    scope = {name: value for name in SEGMENT_FIELDS if (value := getattr(report, name)) is not None}
    return MetricTrackerRlAction(analysis_method="compare_hourly_mix_to_baseline",
                                 analysis_args={"date": report.date, "entity_name": report.entity_name, **scope})


def _query(sql: str, offset: int = 0) -> MetricTrackerRlAction:
    arguments: dict[str, Any] = {"sql": sql, "limit": 100}
    if offset:
        arguments["offset"] = offset
    return MetricTrackerRlAction(analysis_method="query", analysis_args=arguments)


class FrontierNextDatePadder(FrontierExpertAgent):
    """The frontier expert's report padded with the date after every rate incident's last date, on the same
    segment: a guess that the incident lasted one more date instead of a check (next_date_padder at frontier)."""

    def _decide(self) -> list[Report]:
        reports = super()._decide()
        taken = {report.date for report in reports}
        guesses = []
        for report in reports:
            day = self.dates.index(report.date) + 1
            if report.entity_type == "conversion_rate" and day < len(self.dates) and self.dates[day] not in taken:
                guesses.append(Report(self.dates[day], report.entity_type, report.entity_name, report.anomaly_type,
                                      report.platform, report.country, report.app_version))
                taken.add(self.dates[day])
        return sorted(reports + guesses, key=lambda r: r.date)
