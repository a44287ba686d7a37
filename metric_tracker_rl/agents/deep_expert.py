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
(metric_tracker_rl/agents/expert_core/); this module is deep's procedure over them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from metric_tracker_rl.agents.base import register_agent
from metric_tracker_rl.agents.expert_core import change_points, concurrency
from metric_tracker_rl.agents.expert_core import classification as classify
from metric_tracker_rl.agents.expert_core.context import (
    CONTEXT_SQL,
    EXPLAINING_TABLES,
    beyond_arms,
    context_tables,
    explained,
)
from metric_tracker_rl.agents.expert_core.cuboid_queries import (
    SCAN_GROUPS,
    SCAN_Z,
    STEP_NAMES,
    all_stops_sql,
    count_scan_sql,
    dated_runs,
    run_sql,
    scan_sql,
    series_sql,
    shape_sql,
    shaped_rows,
    stepped,
    undated,
    unlabelled,
)
from metric_tracker_rl.agents.expert_core.leaf_check import is_blip, leaves_queries
from metric_tracker_rl.agents.expert_core.localisation import localise
from metric_tracker_rl.agents.expert_core.queries import (
    EVENT_OF,
    STEP_INTO_EVENT,
    STEPS,
    compact,
    hours_sql,
    query_action,
    stops_sql,
)
from metric_tracker_rl.agents.expert_core.reports import SQL_CHARS, Report, segment_of, values_queries
from metric_tracker_rl.agents.expert_core.rollouts import regressions as pooled_regressions
from metric_tracker_rl.agents.expert_core.rollouts import rollout_sql
from metric_tracker_rl.agents.frontier_expert import FrontierExpertAgent
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.world.segments import SEGMENT_FIELDS

SERIES_MOST = 12  # the strongest falls whose dates are read
SINGLE_DATE_Z = 6.5  # a fall on one date (no run, no hourly signature) is reported beyond this
# With a published noise model, runs pool their dates: the dates around every fall beyond SERIES_POOLED_Z are read,
# and a run whose pooled z-score (classification.pooled) passes POOLED_RUN_Z is reported.
SERIES_POOLED_Z, POOLED_RUN_Z = 4.5, 5.5
# There, a fall on one date the leaf check kept is reported beyond this: about where some ten thousand tests of an
# episode (dates x steps x cuboids) leave under one false row by chance.
SINGLE_DATE_POOLED_Z = 5.5
BLOCK_Z = 7.0  # a cell's own fall with a block of hours beyond this is a break (a weaker one needs SURE_BLOCK_SHARE)
# A funnel break's fall sits in a block of hours (cuboid_queries.BLOCK_HOURS of them): at least BLOCK_SHARE of the
# day's lost conversions (a fall that lasts the day puts about 0.5 to 0.65 there, the busy hours), or
# SURE_BLOCK_SHARE on a date inside a run of falls.
BLOCK_SHARE, SURE_BLOCK_SHARE = 0.7, 0.9
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
KEPT_AT_MOST = 1.0  # a cell pair's low block is an outage only if the other hours gained less than its loss


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
        self.blips: set[tuple[str, str, tuple[Any, ...]]] = set()
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
        self.change_point_runs: list[change_points.Run] = []
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

    def _drop_blips(self) -> None:
        """The falls one leaf carried (the leaf check) leave the localised falls (and grow no run: _lasting)."""
        blips = {int(row["k"]) for row in self.results["leaves"] if is_blip(row)}
        self.blips = {
            (str(row["date"]), row["entity_name"], segment_of(row))
            for k, row in enumerate(self.leaf_falls)
            if k in blips
        }

        def kept(row: dict[str, Any]) -> bool:
            return (str(row["date"]), row["entity_name"], segment_of(row)) not in self.blips

        self.localised = [row for row in self.localised or [] if kept(row)]

    def _without_blips(self, pooled: list[Report]) -> list[Report]:
        """The pooled regressions but those with a blip (the leaf check's) on one of their dates, on their step and
        platform: a regression falls by the same share every date, and one date's blip alone can carry the pooled
        sum past its bar."""
        blipped = {(date, step, segment[0]) for date, step, segment in self.blips}
        runs = {
            (r.entity_name, r.platform, r.app_version)
            for r in pooled
            if (r.date, r.entity_name, r.platform) in blipped or (r.date, r.entity_name, None) in blipped
        }
        return [r for r in pooled if (r.entity_name, r.platform, r.app_version) not in runs]

    def _lasting(self) -> list[dict[str, Any]]:
        """The dates around each strong fall on which its cuboid's step fell too (a level shift's run, growing
        and recovering), as rate rows of that cuboid, where no other cuboid was localised on that date and step."""
        day_of = {date: day for day, date in enumerate(self.dates)}
        fell: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
        series = dated_runs(self.results["series"], self.series_of) if self.narrow_scans else self.results["series"]
        for row in series:
            if str(row["date"]) in day_of:
                fell[int(row["k"])][day_of[str(row["date"])]] = row
        taken = {(str(row["date"]), row["entity_name"]) for row in self.localised or []}
        added = []
        for k, source in enumerate(self.series_of):
            if (str(source["date"]), source["entity_name"], segment_of(source)) in self.blips:
                continue
            day = day_of.get(str(source["date"]))
            for direction in (-1, 1):
                other = day + direction if day is not None else None
                while other is not None and other in fell[k]:
                    date = self.dates[other]
                    if (date, source["entity_name"]) not in taken:
                        added.append(
                            {**source, "date": date, "change": fell[k][other]["change"], "z": fell[k][other]["z"]}
                        )
                        taken.add((date, source["entity_name"]))
                    other += direction
        return added

    def _first_decision(self) -> list[Report]:
        """The frontier's classifiers, each on its own evidence, so that one date may carry two incidents (on
        different keys): hourly breaks and outages, web duplicates, release regressions, then the rate falls no
        signature explained, each a funnel break where its fall sits in a block of hours and a level shift where
        it lasts the day."""
        if self.leaf_check:
            self._drop_blips()
        self.results["rates"] = [*(self.localised or []), *self._lasting()]
        reports, duplicates = self._signature_reports()
        blocks, shaped_share = self._hour_blocks()
        rest = self._rate_breaks(reports, self._explained_keys(reports, duplicates), blocks, shaped_share)
        self.results["rates"] = rest
        reports += self._cell_pair_outages(reports)
        reports += self._cuboid_outages(reports, shaped_share)
        reports += classify.cuboid_runs(self, POOLED_RUN_Z if self.leaf_check else None)
        reports += self._single_date_shifts(reports, rest)
        reports = [r for r in reports if not self._explained(r)]
        return sorted(self._with_change_points(reports), key=lambda r: r.date)

    def _signature_reports(self) -> tuple[list[Report], dict[str, Report]]:
        """The incidents a signature of their own names: hourly breaks and outages, web duplicates (returned apart
        too, as they explain the steps beside their event), release regressions and cell breaks."""
        hourly: dict[str, Report] = {}
        classify.funnel_breaks(self, hourly)
        classify.outages(self, hourly)
        duplicates: dict[str, Report] = {}
        classify.duplicate_events(self, duplicates)
        regressions: dict[str, Report] = {}
        classify.release_regressions(self, regressions, self.regression_seen_within)
        classify.narrow_regressions(self, regressions)
        if self.leaf_check:  # the rollouts' pooled regressions, where no date of their step was found alone
            found = {(r.date, r.entity_name) for r in regressions.values()}
            pooled = self._without_blips(
                pooled_regressions(self.results["rollouts"], self.results["releases"], self.dates)
            )
            regressions.update({f"{r.date} {r.entity_name}": r for r in pooled if (r.date, r.entity_name) not in found})
        reports = [
            *hourly.values(),
            *duplicates.values(),
            *regressions.values(),
            *classify.cell_breaks(self, hourly, self.localised),
        ]
        return reports, duplicates

    @staticmethod
    def _explained_keys(reports: list[Report], duplicates: dict[str, Report]) -> set[tuple[str, str]]:
        """The (date, step) keys the signatures explain: their own, and around an event logged twice, which moves
        the step into it up and the step out of it down."""
        return {(r.date, r.entity_name) for r in reports} | {
            (r.date, step)
            for r in duplicates.values()
            for step, num, den in STEPS
            if r.entity_name in (STEP_INTO_EVENT.get(step), EVENT_OF[den])
        }

    def _hour_blocks(self) -> tuple[set[tuple[str, str]], dict[tuple[str, str], float]]:
        """The (date, step) falls that sit in a block of hours, and every shaped fall's share in its block. A break
        lasts hours: its fall sits in a block of them, on a date whose neighbours did not fall on that step (a level
        shift's run), unless nearly all of it sits there."""
        day_of = {date: day for day, date in enumerate(self.dates)}
        fell = {
            (day_of.get(str(row["date"])), row["entity_name"]) for row in self.results["rates"] if row["change"] < 0
        }
        shape = shaped_rows([undated(row, self.dates) for row in self.results["shape"]])
        blocks = {
            (str(row["date"]), row["entity_name"])
            for row in shape
            if row.get("block_share") is not None
            and (
                row["block_share"] >= SURE_BLOCK_SHARE
                or (
                    row["block_share"] >= BLOCK_SHARE
                    and not any(
                        (day_of.get(str(row["date"]), -9) + step, row["entity_name"]) in fell for step in (-1, 1)
                    )
                )
            )
        }
        shaped_share = {
            (str(row["date"]), row["entity_name"]): row["block_share"]
            for row in shape
            if row.get("block_share") is not None
        }
        return blocks, shaped_share

    def _rate_breaks(
        self,
        reports: list[Report],
        explained_keys: set[tuple[str, str]],
        blocks: set[tuple[str, str]],
        shaped_share: dict[tuple[str, str], float],
    ) -> list[dict[str, Any]]:
        """Add to `reports` a funnel break for each unexplained rate fall in a block of hours; return the falls
        left (neither explained nor a break)."""
        rest = []
        for row in self.results["rates"]:
            key = (str(row["date"]), row["entity_name"])
            if key in explained_keys:
                continue
            # Hours are served per cell, and an incident confined by channel or user type changes the whole day
            # (published.HOURLY_EVIDENCE_GRAIN): a fall in such a cuboid is never a break, whatever its cells' hours
            # show. A fall of a cell's own below BLOCK_Z needs nearly all of its loss in the block (a few hours'
            # noise is not).
            daily_only = row.get("channel") is not None or row.get("user_type") is not None
            sure = shaped_share.get(key, 0.0) >= SURE_BLOCK_SHARE
            if key in blocks and key[0] not in self.holidays and not daily_only and (row["z"] <= -BLOCK_Z or sure):
                reports.append(Report(key[0], "funnel_step", key[1], "funnel_break", *segment_of(row)))
                continue
            rest.append(row)
        return rest

    def _cell_pair_outages(self, reports: list[Report]) -> list[Report]:
        """A platform and country together whose opens collapsed in a block of hours, on a date neither alone showed
        an outage (diluted there), and whose other hours did not gain the opens lost (a small cell's timing shift
        moves its evening into hours too quiet to count as risen): the outage of that cell pair."""
        outage_dates = {r.date for r in reports if r.entity_name == "app_opens"}
        cells = [
            row
            for row in self.results["cell hours"]
            if str(row["date"]) not in outage_dates
            and row["n_low"] >= 2
            and row["n_high"] <= 1
            and classify.one_block(str(row["low_hours"]))
            and (row.get("kept") is None or row["kept"] < KEPT_AT_MOST)
        ]
        outages = []
        for date in sorted({str(row["date"]) for row in cells}):
            top = max((row for row in cells if str(row["date"]) == date), key=lambda row: row["n_low"])
            outages.append(
                Report(
                    date, "event_count", "app_opens", "absolute_drop_in_event_count", top["platform"], top["country"]
                )
            )
        return outages

    def _cuboid_outages(self, reports: list[Report], shaped_share: dict[tuple[str, str], float]) -> list[Report]:
        """Opens lost in a block of hours of a cuboid no hourly scan named: an outage (a demand swing lasts the
        day)."""
        outage_dates = {r.date for r in reports if r.entity_name == "app_opens"}
        return [
            Report(str(row["date"]), "event_count", "app_opens", "absolute_drop_in_event_count", *segment_of(row))
            for row in self.count_falls
            if shaped_share.get((str(row["date"]), "app_opens"), 0.0) >= SURE_BLOCK_SHARE
            and str(row["date"]) not in outage_dates
        ]

    def _single_date_shifts(self, reports: list[Report], rest: list[dict[str, Any]]) -> list[Report]:
        """A fall on one date only, strong and all day, is a level shift too (at deep some last a single date). The
        brief says such a one-date shift only sits on another incident's date: where the noise model is published
        (the leaf check), one on a date nothing else was found needs deep's bar (near the pooled bar, it is
        likelier the noise of some ten thousand tests than the one date of a run the scan saw once)."""
        taken = {(r.date, r.entity_name) for r in reports}
        found_dates = {r.date for r in reports}

        def single_z(date: str) -> float:
            return SINGLE_DATE_POOLED_Z if self.leaf_check and date in found_dates else SINGLE_DATE_Z

        return [
            Report(str(row["date"]), "conversion_rate", row["entity_name"], "rate_drop_from_median", *segment_of(row))
            for row in rest
            if row["z"] <= -single_z(str(row["date"]))
            and (str(row["date"]), row["entity_name"]) not in taken
            and row["entity_name"] != STEPS[0][0]  # a first step's fall on one date is bots
            and str(row["date"]) not in self.holidays
            and row.get("app_version") is None
        ]

    def _with_change_points(self, reports: list[Report]) -> list[Report]:
        """Each weeks-long fall the change-point scan found, as a row on every date of its run in its cuboid, in
        place of the rows reported on its step over those dates (the same fall, read against a baseline it had
        taken over); none where the brief lists no such kind."""
        self.change_point_runs = change_points.runs(self.results["change points"])
        for run in self.change_point_runs:
            dates = set(self.dates[run.first : run.last + 1])
            reports = [r for r in reports if not (r.entity_name == run.step and r.date in dates)]
            segment = change_points.run_segment(run)
            reports += [
                Report(date, "conversion_rate", run.step, "rate_drop_from_median", **segment) for date in sorted(dates)
            ]
        return reports

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

    def _explained(self, report: Report) -> bool:
        """Whether a context table read explains the move as benign."""
        return explained(report, self.results, self.beyond_arms)


register_agent(DeepExpertAgent.name, DeepExpertAgent)
