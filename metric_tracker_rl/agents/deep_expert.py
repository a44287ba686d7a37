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

6. Weeks-long falls, only where the brief lists an incident kind graded against the dates before its change point:
   a scan against the window's first three weeks finds each step's weeks-long run on its clearest cuboid, which
   is reported on every date of the run in place of the rows its step had there, its values read by that rule
   (expert_core/change_points.py). Without such a kind the procedure is the five steps above, call for call.

`max_dims=1` limits the search to one-dimension breakdowns.

The SQL, the ripple check, the signatures and the context reading are the experts' shared core
(metric_tracker_rl/agents/expert_core/); this module is deep's procedure over them, and deep_decision.py its
first round's decision (steps 4 to 6 over what the calls returned).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from metric_tracker_rl.agents.base import register_agent
from metric_tracker_rl.agents.deep_decision import DeepDecision
from metric_tracker_rl.agents.expert_core import change_points, concurrency
from metric_tracker_rl.agents.expert_core.context import CONTEXT_SQL, EXPLAINING_TABLES, beyond_arms, context_tables
from metric_tracker_rl.agents.expert_core.cuboid_queries import (
    SCAN_GROUPS,
    SCAN_Z,
    STEP_NAMES,
    all_stops_sql,
    count_scan_sql,
    run_sql,
    scan_sql,
    series_sql,
    shape_sql,
    stepped,
    undated,
    unlabelled,
)
from metric_tracker_rl.agents.expert_core.leaf_check import is_blip, leaves_queries
from metric_tracker_rl.agents.expert_core.localisation import localise
from metric_tracker_rl.agents.expert_core.queries import STEPS, compact, hours_sql, query_action, stops_sql
from metric_tracker_rl.agents.expert_core.reports import SQL_CHARS, Report, segment_of, values_queries
from metric_tracker_rl.agents.expert_core.rollouts import rollout_sql
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.world.segments import SEGMENT_FIELDS

SERIES_MOST = 12  # the strongest falls whose dates are read
# With a published noise model, runs pool their dates: the dates around every fall beyond SERIES_POOLED_Z are read
# (and a run passing deep_decision.POOLED_RUN_Z is reported).
SERIES_POOLED_Z = 4.5
CONCURRENT_READ = 3  # the strongest falls of the search for a second incident whose leaves are read
# Twice the log of the prior odds of a blip against a second incident, for a fall on a reported date in a segment
# overlapping the incident's: a mixed episode gives `concurrency` of its three to six incident dates a second one,
# while a blip (a few per incident over eight weeks) lands on that date, step and overlapping segment about one
# time in a hundred (and two blips there far more rarely: only one leaf is weighed).
CONCURRENT_BLIP_ODDS = -4.0
# The releases query: each release once, its platform, version and first date (all the expert reads of them).
RELEASES_SQL = (
    "SELECT DISTINCT platform, app_version, rollout_start FROM releases ORDER BY platform DESC, rollout_start"
)


class DeepExpertAgent(DeepDecision):
    """The deep procedure of the module docstring; `max_dims` bounds the cuboids it searches."""

    name = "deep_expert"
    fields = SEGMENT_FIELDS

    def __init__(self, max_dims: int = 3) -> None:
        super().__init__()
        self.max_dims = max_dims

    def begin(self, observation: SeenObservation) -> None:
        super().begin(observation)
        self.localised = None
        self.beyond_arms = set()
        self.series_of = []
        self.count_falls = []
        # Where the brief publishes that an incident moves every leaf of its segment alike, a fall one leaf carries
        # is a benign blip: the leaves of every fall are read (expert_core/leaf_check.py).
        self.leaf_check = "incident_shape" in observation.brief.get("segments", {})
        # There the scans wait for the experiments, so as to return only the rows the expert reads (their arms').
        self.narrow_scans = self.leaf_check and "context_tables" in observation.brief.get("segments", {})
        # Where the leaf check runs, the rows of the count scan, the shape statement and the narrowed scans name
        # their date by its days after the window's first (undated reads it back).
        self.day_zero = self.dates[0] if self.leaf_check else None
        scans = (
            []
            if self.narrow_scans
            else [(f"scan {steps}", query_action(scan_sql(steps, self.max_dims))) for steps in SCAN_GROUPS]
        )
        # Each release once, by a query on the releases table where the leaf check runs (abyss): all the expert
        # reads of it, in get_releases' order (each mobile platform's releases by date, ios first).
        releases = (
            query_action(RELEASES_SQL)
            if self.leaf_check
            else MetricTrackerRlAction(analysis_method="get_releases", analysis_args={})
        )
        self.plan = [
            ("releases", releases),
            # The hours of each platform, each country and (where searched) each platform and country together.
            ("hours", query_action(hours_sql(("platform", "country"), self.holidays, cells=self.max_dims >= 2))),
            # The stopped hours of each version and (where searched) of each platform and country together.
            # Where the leaf check runs (abyss), each step by number (stepped reads it back).
            ("stops", query_action(all_stops_sql(self.leaf_check) if self.max_dims >= 2 else stops_sql(False))),
            *scans,
            ("scan app_opens", query_action(count_scan_sql(self.max_dims, self.day_zero))),
        ]
        # What the team knows besides the counts, to cross-reference (a tier with context tables).
        self.blips = set()
        # Where the brief also publishes that a date may carry a one-date level shift beside another incident (the
        # `concurrency` setting of a mixed episode), a second round looks for it (expert_core/concurrency.py).
        config = observation.config
        self.concurrent_most = (
            int(config.get("concurrency") or 0)
            if self.leaf_check
            and config.get("scenario_family") == "mixed"
            and "level_shift" in str(observation.brief.get("segments", {}))
            else 0
        )
        self.first_reports: list[Report] | None = None
        self.concurrent_found: list[dict[str, Any]] | None = None
        self.concurrent_bar = 0.0
        listed = observation.brief.get("segments", {}).get("dimensions", {})
        self.dimension_values = {field: str(listed.get(field, "")).split(",") for field in concurrency.FIELDS}
        if self.narrow_scans:  # the three tables in one query (context_tables parts its rows)
            self.plan.append(("context", query_action(CONTEXT_SQL)))
        elif "context_tables" in observation.brief.get("segments", {}):
            self.plan += [
                (table, MetricTrackerRlAction(analysis_method="get_context", analysis_args={"table": table}))
                for table in EXPLAINING_TABLES
            ]
        # Weeks-long falls, where the brief lists a kind graded against the dates before its change point.
        self.change_point_runs = []
        if change_points.definitions_name_change_points(observation.brief):
            self.plan.append(("change points", query_action(change_points.scan_sql(self.dates[0], len(self.dates)))))

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        """The procedure's next call; where the leaf check runs (abyss, whose statements are the longest), each
        statement is sent without the spaces around its punctuation (queries.compact: the same query)."""
        action = super().act(observation)
        if self.leaf_check and action is not None and action.analysis_method == "query":
            action = query_action(compact(action.analysis_args["sql"]), int(action.analysis_args.get("offset") or 0))
        return action

    def _plan_more(self) -> bool:
        """Once the scans answered: localise every date and step they kept, then ask for the hours of each fall;
        once those answered, where a second incident may share a date, search the reported dates for it."""
        if self.localised is not None:
            return self._plan_concurrent()
        self._part_cell_hours()
        if "context" in self.results:
            self.results.update(context_tables(self.results.pop("context")))
        if self.narrow_scans and f"scan {SCAN_GROUPS[0]}" not in self.results:
            self.plan += [
                (
                    f"scan {steps}",
                    query_action(scan_sql(steps, self.max_dims, self.results["experiments"], self.day_zero)),
                )
                for steps in SCAN_GROUPS
            ]
            return True
        by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for steps in SCAN_GROUPS:
            for row in (undated(unlabelled(row), self.dates) for row in self.results[f"scan {steps}"]):
                step = STEP_NAMES.get(row.get("step", 0))  # steps are numbered from 1
                if step is not None and row.get("z") is not None and row.get("change") is not None:
                    by_key[(str(row["date"]), step)].append(row)
        self.localised = [{**localise(rows), "entity_name": step} for (_, step), rows in sorted(by_key.items())]
        experiments = self.results["experiments"]
        self.beyond_arms = {
            (str(row["date"]), row["entity_name"], segment_of(row))
            for row in self.localised
            if beyond_arms(experiments, row, by_key[(str(row["date"]), row["entity_name"])])
        }
        self.localised = [
            row
            for row in self.localised
            if not self._explained(
                Report(str(row["date"]), "conversion_rate", row["entity_name"], "", *segment_of(row))
            )
        ]
        opens: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in (undated(row, self.dates) for row in self.results["scan app_opens"]):
            if row.get("z") is not None and str(row["date"]) not in self.holidays:
                opens[str(row["date"])].append(row)
        self.count_falls = [{**localise(rows), "entity_name": "app_opens"} for _, rows in sorted(opens.items())]
        falls = [row for row in self.localised if row["change"] < 0 and row["entity_name"] != STEPS[0][0]]
        falls += self.count_falls
        if falls:
            self.plan.append(("shape", query_action(shape_sql(falls, self.leaf_check, self.day_zero))))
        series_z = SERIES_POOLED_Z if self.leaf_check else SCAN_Z
        self.series_of = sorted(
            (row for row in self.localised if row["change"] < 0 and row["z"] <= -series_z), key=lambda row: row["z"]
        )[:SERIES_MOST]
        if self.series_of:
            lasting = run_sql if self.narrow_scans else series_sql  # the same runs in fewer characters
            self.plan.append(("series", query_action(lasting(self.series_of))))
        self.leaf_falls = [row for row in self.localised if row["change"] < 0] if self.leaf_check else []
        self.plan += [("leaves", query_action(sql)) for sql in leaves_queries(self.leaf_falls, SQL_CHARS)]
        if self.leaf_check and self.results["releases"]:  # a regression's dates pooled (expert_core/rollouts.py)
            self.plan.append(("rollouts", query_action(rollout_sql(self.results["releases"], self.max_dims > 1))))
        return bool(self.plan)

    def _part_cell_hours(self) -> None:
        """The hours and stops queries' rows that name a platform and a country together (a cell's) go to "cell
        hours" and "cell stops"."""
        self.results["stops"] = [stepped(row) for row in self.results["stops"]]
        for name in ("hours", "stops"):
            rows = self.results[name]
            self.results[f"cell {name}"] += [row for row in rows if row.get("platform") and row.get("country")]
            self.results[name] = [row for row in rows if not (row.get("platform") and row.get("country"))]

    def _plan_concurrent(self) -> bool:
        """The second round (expert_core/concurrency.py): the search for a second incident on the dates the first
        round reported (as many as fit the query tool's limit); then the third, the leaves of what it found."""
        if not self.concurrent_most:
            return False
        if self.first_reports is None:
            self.first_reports = self._first_decision()
            hosts = [] if concurrency.already_found(self.first_reports) else concurrency.hosts_of(self.first_reports)
            while hosts and len(concurrency.concurrent_sql(hosts, 0.0)) > SQL_CHARS:
                hosts = hosts[:-1]
            self.concurrent_bar = concurrency.bar(concurrency.tested(hosts, self.dimension_values))
            if hosts:
                self.plan.append(("concurrent", query_action(concurrency.concurrent_sql(hosts, self.concurrent_bar))))
            return bool(hosts)
        if self.concurrent_found is None:
            taken = {(r.date, r.entity_name) for r in self.first_reports}
            self.concurrent_found = [
                row
                for row in concurrency.candidates(self.results["concurrent"], self.concurrent_bar)
                if (row["date"], row["entity_name"]) not in taken
            ][:CONCURRENT_READ]
            self.plan += [
                ("concurrent leaves", query_action(sql)) for sql in leaves_queries(self.concurrent_found, SQL_CHARS)
            ]
            return bool(self.plan)
        return False

    def _decide(self) -> list[Report]:
        """The first round's reports, and the second incident of a date the later rounds found."""
        reports = self.first_reports if self.first_reports is not None else self._first_decision()
        blips = {int(row["k"]) for row in self.results["concurrent leaves"] if is_blip(row, CONCURRENT_BLIP_ODDS, None)}
        found = concurrency.concurrent_falls(self.concurrent_found or [], blips, self.concurrent_most)
        return sorted([*reports, *(r for r in found if not self._explained(r))], key=lambda r: r.date)

    def _values_queries(self, daily: list[Report]) -> list[str]:
        """The published rule's values, a weeks-long run's read against the dates before its change point."""
        in_runs = {(date, run.step) for run in self.change_point_runs for date in self.dates[run.first : run.last + 1]}
        rest = [r for r in daily if (r.date, r.entity_name) not in in_runs]
        sent = (
            values_queries(rest, self.fields, lambda sql: len(compact(sql)), labelled=True)
            if self.leaf_check
            else super()._values_queries(rest)
        )
        return [*sent, *(change_points.values_sql(run, self.dates) for run in self.change_point_runs)]

    def _values_rows(self) -> list[dict[str, Any]]:
        """The values rows, a labelled segment (abyss's) read back into its fields."""
        return [unlabelled(row) for row in self.results["values"]]


register_agent(DeepExpertAgent.name, DeepExpertAgent)
