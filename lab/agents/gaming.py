"""Reference agents that play the benchmark's known exploits over the public protocol, so the calibration can
show that each exploit stays far below an investigation. None of them reasons about families the way the
expert does: they read rankings, counts and feedback, and submit. Like every agent they see only observations
and send public actions."""

from __future__ import annotations

from typing import Any

from lab.agents.registry import register_lab_agent
from metric_tracker_rl.agents.base import Agent, ResultKeeper
from metric_tracker_rl.agents.expert import Candidate, ExpertAgent
from metric_tracker_rl.agents.expert_core.reports import Report
from metric_tracker_rl.agents.frontier_expert import FrontierExpertAgent
from metric_tracker_rl.agents.reading import (
    PAGE_ROWS,
    Row,
    episode_dates,
    explained_dates,
    relative_move,
    strongest_signal,
    weekday,
)
from metric_tracker_rl.catalog.published import COUNT_COLUMNS, FUNNEL_STEPS
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation

# Generator calls whose merged rows are every agent's candidate pool: each row already carries its family,
# values and severity, so an exploit only has to choose rows.
POOL_CALLS = {
    "get_instrumentation_data_quality_issue_rows": 0.5,
    "get_funnel_break_rows": 0.5,
    "get_hourly_traffic_mix_shift_rows": 3.0,
    "get_median_filter_rows": 4.0,
}
# Most specific first: data quality > hourly mix > funnel break > rate > count.
SPECIFICITY = ("data_quality", "hourly_mix", "funnel_step", "conversion_rate", "event_count")
FALLBACK_K = 3  # dates to report when the visible config does not say how many incidents there are
SHALLOW_Z = 6.0  # the shallow reader reports dates the suspicious-date list rates at least this far off
WEEKDAY_Z_FLOOR = 6.0  # without a visible count, the weekday rule reports weekdays whose best date clears this


def row_key(row: Row) -> tuple[str, str, str]:
    return row["date"], row["entity_type"], row["entity_name"]


def visible_count(config: dict[str, Any]) -> int | None:
    """The incident count the visible config shows: a number, or the middle of a shown [low, high] range."""
    count = config.get("anomaly_count")
    if count is None:
        count = config.get("anomaly_count_range")
    if isinstance(count, bool):
        return None
    if isinstance(count, int) and count >= 0:
        return count
    if isinstance(count, (list, tuple)) and len(count) == 2 and all(isinstance(c, int) for c in count):
        return round(sum(count) / 2)
    if isinstance(count, dict) and {"min", "max"} <= set(count):
        return round((count["min"] + count["max"]) / 2)
    return None


def specificity_order(row: Row) -> tuple[int, float]:
    """Most specific family first; within one, the largest relative move, except that a count incident is read
    at the most upstream event that moved (every downstream count follows it)."""
    if row["entity_type"] == "event_count":
        return SPECIFICITY.index("event_count"), float(COUNT_COLUMNS.index(row["entity_name"]))
    return SPECIFICITY.index(row["entity_type"]), -relative_move(row)


def most_specific(rows: list[Row]) -> Row:
    return min(rows, key=specificity_order)


class PoolAgent(Agent):
    """Runs a fixed list of public tools (annotations, suspicious dates, the generator pool), then reports."""

    def begin(self, observation: SeenObservation) -> None:
        self.config = observation.config
        self.dates = episode_dates(observation.brief)
        self.plan: list[tuple[str, MetricTrackerRlAction]] = [
            ("annotations", MetricTrackerRlAction(analysis_method="get_annotations")),
            ("suspicious", MetricTrackerRlAction(analysis_method="list_suspicious_dates", analysis_args={"limit": 28})),
        ] + [
            (
                method,
                MetricTrackerRlAction(
                    analysis_method=method, analysis_args={"threshold_multiplier": t, "limit": PAGE_ROWS}
                ),
            )
            for method, t in POOL_CALLS.items()
        ]
        self.calls = ResultKeeper()

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        self.calls.keep(observation)
        if observation.done:
            return None
        if self.plan:
            name, action = self.plan.pop(0)
            self.calls.expect(name)
            return action
        rows = self.report(observation)
        if rows is None:
            return None
        return MetricTrackerRlAction(classifications=[MetricSubmissionRow(**row) for row in rows])

    def report(self, observation: SeenObservation) -> list[Row] | None:
        raise NotImplementedError

    # --- what the tools said ---------------------------------------------------------------------------

    def explained_dates(self) -> set[str]:
        return explained_dates(self.calls.results["annotations"])

    def ranked_dates(self) -> list[dict[str, Any]]:
        """Unexplained dates, most suspicious first (each with its strongest key and robust z)."""
        explained = self.explained_dates()
        return [entry for entry in self.calls.results["suspicious"].get("dates", []) if entry["date"] not in explained]

    def pool_by_date(self) -> dict[str, list[Row]]:
        """Every generator row, one per key, grouped by date."""
        seen: dict[tuple[str, str, str], Row] = {}
        for method in POOL_CALLS:
            for row in self.calls.results[method].get("rows", []):
                if row["entity_type"] == "conversion_rate" and row["entity_name"] not in FUNNEL_STEPS:
                    continue  # a cumulative rate only echoes the step that moved
                if row["entity_type"] == "hourly_mix" and row["entity_name"] != COUNT_COLUMNS[0]:
                    continue  # downstream events' mixes follow the app opens
                seen.setdefault(row_key(row), row)
        grouped: dict[str, list[Row]] = {}
        for row in seen.values():
            grouped.setdefault(row["date"], []).append(row)
        return grouped

    def k(self) -> int:
        count = visible_count(self.config)
        return FALLBACK_K if count is None else count

    def every_mix_moved(self) -> set[str]:
        """Dates whose menu-open hourly mix moved along with the app-open one (the published sign of a timing
        shift; a count incident in a block of hours shows it too)."""
        moved: dict[str, set[str]] = {}
        for row in self.calls.results["get_hourly_traffic_mix_shift_rows"].get("rows", []):
            moved.setdefault(row["date"], set()).add(row["entity_name"])
        return {date for date, events in moved.items() if {"app_opens", "menu_opens"} <= events}


class SubmitOnce(PoolAgent):
    """An exploit without feedback: one report, then stop."""

    def report(self, observation: SeenObservation) -> list[Row] | None:
        return None if observation.status == "graded" else self.rows()

    def rows(self) -> list[Row]:
        raise NotImplementedError


class TopKDatesAgent(SubmitOnce):
    """The k most suspicious dates, each with its strongest key and the family its generator row guessed."""

    name = "top_k_dates"

    def rows(self) -> list[Row]:
        pool = self.pool_by_date()
        report = []
        for entry in self.ranked_dates():
            if len(report) == self.k():
                break
            row = self.pick(entry, pool.get(entry["date"], []))
            if row is not None:
                report.append(row)
        return report

    def pick(self, entry: dict[str, Any], candidates: list[Row]) -> Row | None:
        """The date's row to report: its strongest key's, else the most specific one (None: skip the date)."""
        strongest = [row for row in candidates if (row["entity_type"], row["entity_name"]) == strongest_signal(entry)]
        if not candidates:
            return None
        return strongest[0] if strongest else most_specific(candidates)


class ShiftAwareTopKAgent(TopKDatesAgent):
    """Top-k dates after one published rule: a date where the hour-of-day mix of menu opens moved as well as that
    of app opens is a timing shift, so it is dropped (without checking the day's volume, so count incidents
    confined to hours go with it)."""

    name = "top_k_dates_shift_aware"

    def ranked_dates(self) -> list[dict[str, Any]]:
        shifted = self.every_mix_moved()
        return [entry for entry in super().ranked_dates() if entry["date"] not in shifted]


class ShiftCheckedTopKAgent(TopKDatesAgent):
    """Top-k dates after the timing-shift rule with a check: a date where the menu-open mix moved with the
    app-open mix is kept only if some other key moved there too (then its most specific other key is reported)."""

    name = "top_k_dates_shift_checked"

    def rows(self) -> list[Row]:
        self.shifted = self.every_mix_moved()
        return super().rows()

    def pick(self, entry: dict[str, Any], candidates: list[Row]) -> Row | None:
        if entry["date"] not in self.shifted:
            return super().pick(entry, candidates)
        others = [row for row in candidates if row["entity_type"] != "hourly_mix"]
        return most_specific(others) if others else None


class ShallowReaderAgent(ShiftCheckedTopKAgent):
    """A shallow investigation, not an exploit: every unexplained date the suspicious-date list rates at a robust z
    of SHALLOW_Z or more (no count taken from the config), read as ShiftCheckedTopKAgent reads a date. It shows
    how much of that agent's score comes from the evidence rather than from the visible count."""

    name = "shallow_reader"

    def k(self) -> int:
        return len(self.dates)

    def ranked_dates(self) -> list[dict[str, Any]]:
        return [entry for entry in super().ranked_dates() if entry["max_abs_robust_z"] >= SHALLOW_Z]


class SideEffectPadderAgent(SubmitOnce):
    """Every key that moved on the top dates, whatever its entity type: no idea which family caused it."""

    name = "side_effect_padder"

    def rows(self) -> list[Row]:
        pool = self.pool_by_date()
        top = [entry["date"] for entry in self.ranked_dates() if entry["date"] in pool][: self.k()]
        return [row for date in top for row in pool[date]]


class WeekdayRuleAgent(SubmitOnce):
    """The fixed rule: one incident per unannotated weekday, the most specific family on its most suspicious
    date; as many weekdays as the visible count says (else those clearing a fixed z)."""

    name = "weekday_rule"

    def rows(self) -> list[Row]:
        weekday_of = {date: weekday(date) for date in self.dates}
        annotated_weekdays = {weekday_of.get(date) for date in self.explained_dates()}
        pool = self.pool_by_date()
        best_per_weekday: dict[str, dict[str, Any]] = {}
        for entry in self.ranked_dates():  # most suspicious first, so the first date of a weekday is its best
            day_name = weekday_of.get(entry["date"])
            if day_name not in annotated_weekdays and entry["date"] in pool:
                best_per_weekday.setdefault(day_name, entry)
        chosen = list(best_per_weekday.values())
        count = visible_count(self.config)
        chosen = (
            chosen[:count]
            if count is not None
            else [entry for entry in chosen if entry["max_abs_robust_z"] >= WEEKDAY_Z_FLOOR]
        )
        return [most_specific(pool[entry["date"]]) for entry in chosen]


class FeedbackDecoderAgent(PoolAgent):
    """Decodes the answer from graded feedback. Naive candidates: for each of the top dates, its keys by how
    far each moved. Probe 1 reports every date's first choice; probe 2 swaps the second half of the dates to their
    second choice; the change in matched count says which choice is right for that half. The final report keeps
    the better choice, trimmed to the matched count. With one submission only the naive report is possible."""

    name = "feedback_decoder"

    def begin(self, observation: SeenObservation) -> None:
        super().begin(observation)
        self.probes: list[tuple[list[Row], int]] = []
        self.last: list[Row] = []

    def report(self, observation: SeenObservation) -> list[Row] | None:
        if observation.status == "graded" and observation.reward_breakdown is not None:
            self.probes.append((self.last, observation.reward_breakdown.matched_row_count))
        if observation.submissions_remaining <= 0:
            return None
        self.last = self._next(observation.submissions_remaining)
        return self.last

    def _choices(self) -> list[list[Row]]:
        """Per top date (more dates than the count, to find the right ones), its keys by how far each moved
        (relative to its baseline): no family reasoning, the feedback is meant to tell which key is right."""
        pool = self.pool_by_date()
        dates = [entry["date"] for entry in self.ranked_dates() if entry["date"] in pool][: self.k() + 2]
        return [sorted(pool[date], key=lambda row: -relative_move(row)) for date in dates]

    def _next(self, remaining: int) -> list[Row]:
        choices = self._choices()
        first = [keys[0] for keys in choices]
        half = len(choices) // 2
        swapped = first[:half] + [keys[1] if len(keys) > 1 else keys[0] for keys in choices[half:]]
        if remaining == 1 and not self.probes:  # no feedback to decode: the naive report
            return first[: self.k()]
        if not self.probes:
            return first
        if len(self.probes) == 1 and remaining > 1:
            return swapped
        matched = [count for _, count in self.probes]
        best = swapped if len(matched) > 1 and matched[1] > matched[0] else first
        hits = max(matched)
        return best[: max(hits, 1)] if hits else first[: self.k()]


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
                guesses.append(
                    Report(
                        self.dates[day],
                        report.entity_type,
                        report.entity_name,
                        report.anomaly_type,
                        report.platform,
                        report.country,
                        report.app_version,
                    )
                )
                taken.add(self.dates[day])
        return sorted(reports + guesses, key=lambda r: r.date)


class NextDatePadderAgent(ExpertAgent):
    """The expert's report padded with the next date of every whole-day rate incident it found: incidents may
    last two dates, so this guesses persistence instead of checking it."""

    name = "next_date_padder"
    frontier_agent = FrontierNextDatePadder
    deep_agent = None  # frontier's expert, padded, at deep too

    def _first_report(self) -> list[Candidate]:
        report = super()._first_report()
        dates = self.dates
        rates = {(row["entity_name"], row["date"]): row for row in self.results["rates"]["rows"]}
        reported = {candidate.row["date"] for candidate in report}
        guesses = []
        for candidate in (c for c in report if c.group == "rate"):
            day = dates.index(candidate.row["date"]) + 1
            row = rates.get((candidate.row["entity_name"], dates[day])) if day < len(dates) - 1 else None
            if row is not None and dates[day] not in reported:
                guess = {
                    **row,
                    "anomaly_type": candidate.row["anomaly_type"],
                    "detection_method": candidate.row["detection_method"],
                }
                guesses.append(Candidate(guess, "rate", 0.0))
        return report + guesses


register_lab_agent(TopKDatesAgent.name, TopKDatesAgent)
register_lab_agent(NextDatePadderAgent.name, NextDatePadderAgent)
register_lab_agent(ShiftAwareTopKAgent.name, ShiftAwareTopKAgent)
register_lab_agent(ShiftCheckedTopKAgent.name, ShiftCheckedTopKAgent)
register_lab_agent(ShallowReaderAgent.name, ShallowReaderAgent)
register_lab_agent(SideEffectPadderAgent.name, SideEffectPadderAgent)
register_lab_agent(WeekdayRuleAgent.name, WeekdayRuleAgent)
register_lab_agent(FeedbackDecoderAgent.name, FeedbackDecoderAgent)
