"""The deep expert's decision (step 4 of deep_expert.py's procedure, and the weeks-long falls of step 6): from the
results its calls gathered, the reports of the first round. The signatures name their incidents first (hourly
breaks and outages, web duplicates, release regressions, cell breaks); of the rate falls left, one in a block of
hours is a funnel break, runs of dates are level shifts, and a strong fall of one date is a level shift too; a move
a context table explains is left alone."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from metric_tracker_rl.agents.expert_core import change_points
from metric_tracker_rl.agents.expert_core import classification as classify
from metric_tracker_rl.agents.expert_core.context import explained
from metric_tracker_rl.agents.expert_core.cuboid_queries import dated_runs, shaped_rows, undated
from metric_tracker_rl.agents.expert_core.leaf_check import is_blip
from metric_tracker_rl.agents.expert_core.queries import EVENT_OF, STEP_INTO_EVENT, STEPS
from metric_tracker_rl.agents.expert_core.reports import Report, segment_of
from metric_tracker_rl.agents.expert_core.rollouts import regressions as pooled_regressions
from metric_tracker_rl.agents.frontier_expert import FrontierExpertAgent

SINGLE_DATE_Z = 6.5  # a fall on one date (no run, no hourly signature) is reported beyond this
# With a published noise model, runs pool their dates, and a run whose pooled z-score (classification.pooled)
# passes POOLED_RUN_Z is reported.
POOLED_RUN_Z = 5.5
# There, a fall on one date the leaf check kept is reported beyond this: about where some ten thousand tests of an
# episode (dates x steps x cuboids) leave under one false row by chance.
SINGLE_DATE_POOLED_Z = 5.5
BLOCK_Z = 7.0  # a cell's own fall with a block of hours beyond this is a break (a weaker one needs SURE_BLOCK_SHARE)
# A funnel break's fall sits in a block of hours (cuboid_queries.BLOCK_HOURS of them): at least BLOCK_SHARE of the
# day's lost conversions (a fall that lasts the day puts about 0.5 to 0.65 there, the busy hours), or
# SURE_BLOCK_SHARE on a date inside a run of falls.
BLOCK_SHARE, SURE_BLOCK_SHARE = 0.7, 0.9
KEPT_AT_MOST = 1.0  # a cell pair's low block is an outage only if the other hours gained less than its loss


class DeepDecision(FrontierExpertAgent):
    """The first round's decision over what deep's procedure (deep_expert.DeepExpertAgent) gathered: the results
    of its calls and what it made of them when planning (the localised falls, the series it read, the leaf check's
    falls)."""

    # A regression narrowed to part of its version (a country, a channel) has too few users to show in the first
    # dates of the rollout; a release breaks its version from the rollout's first date (the brief's release note),
    # so a fall first seen a few dates in still dates back to it.
    regression_seen_within = 3
    leaf_check: bool  # the brief publishes that an incident moves every leaf of its segment alike
    narrow_scans: bool  # the scans waited for the experiments
    localised: list[dict[str, Any]] | None  # the scans' falls, each localised to its cuboid
    count_falls: list[dict[str, Any]]  # the opens' falls, localised
    series_of: list[dict[str, Any]]  # the strongest falls whose dates were read
    leaf_falls: list[dict[str, Any]]  # the falls whose leaves were read
    blips: set[tuple[str, str, tuple[Any, ...]]]  # the falls one leaf carried
    beyond_arms: set[tuple[Any, ...]]  # the falls beyond an experiment's arm
    change_point_runs: list[change_points.Run]  # the weeks-long falls

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

    def _explained(self, report: Report) -> bool:
        """Whether a context table read explains the move as benign."""
        return explained(report, self.results, self.beyond_arms)
