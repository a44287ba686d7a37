"""What the scan analyst does besides its cuboid scan: it plays an episode one tool call at a time (its plan is a
generator that yields each call and receives what the model would read), and reads the signatures the hourly scans
and the rollout check show, each confirmed by the tool for its family, which also reads its values: an event logged
twice on web, a step that stopped for a block of hours, bots in one country, an outage, a release's regression."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Generator
from typing import Any

from lab.agents.scan_analyst_reading import (
    Finding,
    Row,
    block_of,
    contains_hour,
    cuboid_of,
    holiday_in,
    hour_list,
    hourly_segment,
    narrowed,
    overlaps,
    regression_dates,
)
from lab.agents.scan_analyst_sql import PAGE, STEP_OF_RATE
from metric_tracker_rl.agents.base import Agent
from metric_tracker_rl.agents.reading import episode_dates
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation

Plan = Generator[MetricTrackerRlAction, SeenObservation, Any]
RESERVE = 2  # steps kept for one values query and the submission
MOST_CONFIRMATIONS = 4  # blocks of one family confirmed at most
MIX_RISE = 0.08  # a country's hourly mix moved: its distance from its profile rose by this much
BOT_DATES = 3  # dates whose bots are confirmed at most
MAX_OUTAGE_HOURS = 9  # an outage's low hours are a block of a few hours; more is the whole day's demand
# An outage's block held at least BLOCK_OPENS opens on a usual day (a few quiet night hours fall by chance), and
# its day lost at least OUTAGE_SHARE of its opens and at most DAY_OVER_BLOCK times what its block lost.
BLOCK_OPENS, OUTAGE_SHARE, DAY_OVER_BLOCK = 100, 0.05, 2.0
# A duplicated event: the steps whose rates it moves (into it and out of it), by the scans' rate names.
DUPLICATED = {
    "hm": ("menu_opens", ("r1", "r2")),
    "ho": ("orders_placed", ("r3", "r4")),
    "hp": ("payment_successful", ("r4",)),
}


def breaking_rates(brief: dict[str, Any]) -> set[str]:
    """The steps (as the scans name their rates) a funnel break may stop: every step, or only payments where every
    incident kind of the family the brief lists is a payment failure."""
    kinds = [row for row in brief.get("segments", {}).get("incident_kinds", []) if row.get("family") == "funnel_break"]
    if kinds and all("payment" in str(row.get("definition", "")) for row in kinds):
        return {"r4"}
    return set(STEP_OF_RATE)


def query_action(sql: str) -> MetricTrackerRlAction:
    return MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": sql, "limit": PAGE})


def tool_action(method: str, **arguments: Any) -> MetricTrackerRlAction:
    return MetricTrackerRlAction(analysis_method=method, analysis_args=arguments)


class SignatureReader(Agent):
    """An agent whose plan (`investigate`, a generator of calls returning the report's rows) is played one call a
    step, with the readers of the hourly and rollout signatures."""

    def begin(self, observation: SeenObservation) -> None:
        self.dates = episode_dates(observation.brief)
        words = str(observation.brief.get("segments", {}).get("holidays", "")).replace(",", " ").split()
        self.holidays = [word for word in words if word in self.dates]
        self.remaining = observation.steps_remaining
        self.notes: list[dict[str, Any]] = []
        self.break_rates = breaking_rates(observation.brief)
        self.plan: Plan = self.investigate()
        self.started = self.finished = False

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if observation.status == "graded" or observation.done or self.finished:
            return None
        self.remaining = observation.steps_remaining
        try:
            action = self.plan.send(observation if self.started else None)  # type: ignore[arg-type]
        except StopIteration as end:
            self.finished = True
            return MetricTrackerRlAction(classifications=end.value)
        self.started = True
        return action

    # --- calls ---------------------------------------------------------------------------------------

    def _rows(self, action: MetricTrackerRlAction) -> Plan:
        """A call's rows (its first page: `self.more` says whether the page left rows out)."""
        observation = yield action
        result = (observation.analysis_result or {}) if observation.status == "ok" else {}
        self.more = result.get("next_offset") is not None
        return result.get("rows", [])

    def _result(self, action: MetricTrackerRlAction) -> Plan:
        observation = yield action
        return (observation.analysis_result or {}) if observation.status == "ok" else {}

    def _affords(self, calls: int = 1) -> bool:
        return self.remaining - RESERVE >= calls

    def investigate(self) -> Plan:
        raise NotImplementedError

    def _duplicates(self, impossible: list[Row]) -> Plan:
        """An event outnumbering the one before it in hours of three or more web cells: logged twice on web."""
        cells: dict[tuple[str, str], int] = defaultdict(int)
        for row in impossible:
            for column, (event, _) in DUPLICATED.items():
                if str(row["platform"]) == "web" and row[column] >= 2:
                    cells[(str(row["date"]), event)] += 1
        found = []
        for (date, event), count in sorted(cells.items()):
            if count >= 3 and self._affords():
                value = yield from self._result(
                    tool_action("compare_count_to_median", date=date, entity_name=event, platform="web")
                )
                if value.get("delta_value") is not None and value["delta_value"] > 0:
                    found.append(
                        Finding(
                            "instrumentation_data_quality_issue",
                            "data_quality",
                            event,
                            {"platform": "web"},
                            [date],
                            "compare_count_to_median",
                            values={date: value},
                        )
                    )
        return found

    def _breaks(self, stops: list[Row], opens: list[Row], duplicates: list[Finding]) -> Plan:
        """A step that nearly stopped for a block of hours, confirmed (and read) by detect_funnel_break on its
        grain, a payment partner's notice naming the grain where one covers those hours. A step out of an event
        logged twice converts lower as a side effect, and a first step sinks where bots or a surge came."""
        blocks: dict[tuple[str, str], list[Row]] = defaultdict(list)
        for row in stops:  # every row of a date and step with a block: the grain counts its cells' stops too
            blocks[(str(row["date"]), str(row["k"]))].append(row)
        blocks = {key: rows for key, rows in blocks.items() if any(block_of(hour_list(r["hs"])) for r in rows)}
        side_effects = {
            (date, rate)
            for f in duplicates
            for date in f.dates
            for event, rates in DUPLICATED.values()
            if event == f.entity_name
            for rate in rates
        }
        side_effects |= {(str(row["date"]), "r1") for row in opens if row["fl"] in ("bot", "high")}
        found: list[Finding] = []
        tried = 0
        for (date, rate), rows in sorted(
            blocks.items(), key=lambda item: (-max(r["hrs"] for r in item[1]), -max(r["n"] for r in item[1]))
        ):
            if (
                (date, rate) in side_effects
                or rate not in self.break_rates
                or tried >= MOST_CONFIRMATIONS
                or not self._affords()
            ):
                continue
            segment = self._partner_scope(date, rate, rows) or hourly_segment(rows)
            tried += 1
            result = yield from self._result(tool_action("detect_funnel_break", date=date, **segment))
            step = next((row for row in result.get("steps", []) if row.get("step") == STEP_OF_RATE[rate]), None)
            if step is not None and (step.get("broken_hours") or 0) >= 2:
                found.append(
                    Finding(
                        "funnel_break",
                        "funnel_step",
                        STEP_OF_RATE[rate],
                        segment,
                        [date],
                        "detect_funnel_break",
                        abs(step.get("robust_z") or 0.0),
                        {date: step},
                    )
                )
        return found

    def _partner_scope(self, date: str, rate: str, rows: list[Row]) -> dict[str, str]:
        """A payment partner's notice on the date whose country shows the block in its hours: its scope."""
        for item in self.context:
            if item["kind"] != "partner" or rate != "r4" or str(item["first_date"]) != date:
                continue
            for row in rows:
                if str(row.get("country")) == str(item["country"]) and contains_hour(item, hour_list(row["hs"])):
                    return {name: str(item[name]) for name in ("platform", "country") if item.get(name) is not None}
        return {}

    def _bots(self, opens: list[Row], stops: list[Row]) -> Plan:
        """A block of hours in one country whose opens rose while fewer reached the menu, or whose opens nearly
        all stopped short of the menu, confirmed (and read) by compare_hourly_mix_to_baseline on the country."""
        by_date: dict[str, list[Row]] = defaultdict(list)
        for row in opens + stops:
            if (
                (row.get("fl") == "bot" or row.get("k") == "r1")
                and row.get("country")
                and block_of(hour_list(row["hs"]))
            ):
                by_date[str(row["date"])].append(row)
        found = []
        # Opens rising while they stop short of the menu, both, first; then the most hours.
        for date, rows in sorted(
            by_date.items(),
            key=lambda item: (-len({row.get("fl") for row in item[1]}), -max(r["hrs"] for r in item[1])),
        )[:BOT_DATES]:
            country = str(max(rows, key=lambda row: (row.get("platform") is None, row["hrs"]))["country"])
            if not self._affords():
                break
            value = yield from self._result(
                tool_action("compare_hourly_mix_to_baseline", date=date, country=country, entity_name="app_opens")
            )
            if (value.get("delta_value") or 0.0) >= MIX_RISE:
                found.append(
                    Finding(
                        "hourly_traffic_mix_shift",
                        "hourly_mix",
                        "app_opens",
                        {"country": country},
                        [date],
                        "compare_hourly_mix_to_baseline",
                        values={date: value},
                    )
                )
        return found

    def _outages(self, opens: list[Row]) -> Plan:
        """A block of hours whose opens collapsed with none that rose (a timing shift moves opens to other hours,
        a holiday reshapes the whole day), confirmed (and read) by compare_count_to_median on its grain: the day
        lost about what the block lost (a demand swing loses opens in every hour)."""
        by_date: dict[str, list[Row]] = defaultdict(list)
        for row in opens:
            hours = hour_list(row["hs"])
            if row["fl"] == "low" and block_of(hours) and len(hours) <= MAX_OUTAGE_HOURS and row["med"] >= BLOCK_OPENS:
                by_date[str(row["date"])].append(row)
        found = []
        for date, rows in sorted(by_date.items(), key=lambda item: -max(r["hrs"] for r in item[1])):
            segment = hourly_segment(rows)
            risen = any(
                str(row["date"]) == date
                and row["fl"] in ("high", "bot")
                and overlaps({k: str(row[k]) for k in ("platform", "country") if row.get(k)}, segment)
                for row in opens
            )
            if (
                risen
                or holiday_in(segment, date, self.context)
                or len(found) >= MOST_CONFIRMATIONS
                or not self._affords()
            ):
                continue
            block = (
                next(row for row in rows if cuboid_of(row) == segment)
                if any(cuboid_of(row) == segment for row in rows)
                else max(rows, key=lambda row: row["hrs"])
            )
            lost = float(block["med"]) - float(block["a"])
            value = yield from self._result(
                tool_action("compare_count_to_median", date=date, entity_name="app_opens", **segment)
            )
            day_lost = -(value.get("delta_value") or 0.0)
            if OUTAGE_SHARE * abs(value.get("baseline_value") or 0.0) <= day_lost <= DAY_OVER_BLOCK * lost:
                found.append(
                    Finding(
                        "absolute_drop_in_event_count",
                        "event_count",
                        "app_opens",
                        segment,
                        [date],
                        "compare_count_to_median",
                        values={date: value},
                    )
                )
        return found

    def _regressions(self, versions: list[Row], releases: list[Row]) -> Plan:
        """A new version converting well below the old ones from its rollout's first dates: the release broke that
        step; compare_segments on the version's channels and user types pins the part it broke."""
        found = []
        for release in releases:
            for rate, step in STEP_OF_RATE.items():
                dates = regression_dates(versions, rate, release, self.dates)
                if not dates:
                    continue
                segment = {"platform": str(release["platform"]), "app_version": str(release["name"])}
                if self._affords():
                    rows = yield from self._rows(
                        tool_action(
                            "compare_segments",
                            date=dates[-1],
                            metric_name=step,
                            dimension="channel,user_type",
                            within=",".join(f"{k}={v}" for k, v in segment.items()),
                        )
                    )
                    segment.update(narrowed(rows, ["channel", "user_type"], self._share(rows)))
                found.append(
                    Finding(
                        "rate_drop_from_median",
                        "conversion_rate",
                        step,
                        segment,
                        dates,
                        "compare_rate_to_median",
                        release=True,
                    )
                )
        return found

    @staticmethod
    def _share(rows: list[Row]) -> float:
        """A breakdown's overall change as a share of its baseline (its traffic-weighted rows)."""
        delta = sum((row.get("delta_value") or 0.0) * (row.get("app_open_share") or 0.0) for row in rows)
        base = sum(abs(row.get("baseline_value") or 0.0) * (row.get("app_open_share") or 0.0) for row in rows)
        return delta / base if base else -1.0
