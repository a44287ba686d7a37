"""The expert reference agent: a careful investigation that reads only what a model reads (the brief and the text
of each tool result) and applies only rules the data or the brief's published bounds support.

Procedure:
1. get_annotations: campaign, holiday and data-freshness dates are explained, never incidents.
2. list_suspicious_dates: the first date that no annotation explains is the one to look at first, and the
   families the unexplained dates point to decide which scans run first.
3. Robust spreads (get_metric_std_dev_from_median, compare_hourly_mix_to_baseline) turn every generator row's
   delta into a robust z, so candidates of different families can be ranked on one scale.
4. Every family-specific generator at a permissive threshold gives the candidate pool.
5. Each date is attributed to at most one incident, the most specific family first (data quality > hourly
   mix > funnel break > rate > count): the other metrics that moved on that date are its side effects.
   A volume incident confined to a block of hours moves the hour-of-day mix of every event together, while
   non-converting bot traffic moves only the mix of app opens; that separates the two.
   Daily values come from one page of show_raw_data: each date's baseline is the published rule (the median of
   the same weekday in the other weeks), so every date's delta of every step and of the volume is at hand.
6. Report the dates whose evidence clears the family threshold. A rate or count row is read from
   compare_rate_to_median / compare_count_to_median before it is submitted, so every number of the report stands
   in a tool result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from metric_tracker_rl.agents.audit_expert import AuditExpertAgent
from metric_tracker_rl.agents.base import Agent, register_agent
from metric_tracker_rl.agents.deep_expert import DeepExpertAgent
from metric_tracker_rl.agents.frontier_expert import FrontierExpertAgent
from metric_tracker_rl.agents.reading import (
    PAGE_ROWS,
    episode_dates,
    explained_dates,
    magnitude_bounds,
    published_range,
    relative_move,
    same_weekday_peers,
    signed_share,
    strongest_signal,
)
from metric_tracker_rl.agents.warehouse_expert import WarehouseExpertAgent
from metric_tracker_rl.catalog.published import (
    DIRECTIONAL_FAMILIES,
    FUNNEL_STEPS,
    SEGMENTED_DIFFICULTIES,
)
from metric_tracker_rl.catalog.tiers import EVENTS, TIERS
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation

# Generator thresholds of the candidate pool. The data-quality and funnel-break generators also require hours
# where an event outnumbers its predecessor or a step stops converting: that hour-level evidence is decisive,
# so their daily z only has to point the right way.
POOL_THRESHOLDS = {
    "get_instrumentation_data_quality_issue_rows": 0.5,
    "get_funnel_break_rows": 0.5,
    # Every date whose app-open mix moved at all: bot evidence is read from the day's opens and conversion, so
    # the mix only has to point the right way (when many dates' hours moved, its spread is wide).
    "get_hourly_traffic_mix_shift_rows": 0.1,
}
HOUR_EVIDENCE_METHODS = ("get_instrumentation_data_quality_issue_rows", "get_funnel_break_rows")
HOUR_EVIDENCE_STRENGTH = 2.0  # rank of a candidate backed by hour-level evidence, before its z is added
# Robust-z thresholds that a candidate of each kind must clear to be reported without feedback.
FAMILY_THRESHOLDS = {
    "instrumentation_data_quality_issue": 10.0,
    "funnel_break": 10.0,
    "hourly_traffic_mix_shift": 5.0,
    "rate": 4.5,
    "count": 4.0,
}
# A downstream event's hour-of-day mix that moved at least this share of the app opens' move means the whole volume
# moved (a timing shift, a count incident in a block of hours); bots move the app opens' mix alone. Compared in the
# mix distance itself: when many dates' hours moved, the z-scores of the mixes are too wide to tell.
DOWNSTREAM_MIX_SHARE = 0.5
# Evidence of an effect the brief publishes a size for must reach this share of its smallest published size. Bot
# traffic adds opens that never convert (the hourly traffic mix shift's magnitude), so the opens rise and the first
# step's conversion falls together (a count incident keeps conversion, a funnel break or a rate drop keeps the
# opens); a rate incident moves its step's conversion by at least the smallest rate magnitude.
EFFECT_SHARE = 0.5
RATE_FAMILIES = ("rate_drop_from_median", "rate_spike_from_median")
COUNT_FAMILIES = ("absolute_drop_in_event_count", "absolute_spike_in_event_count")
# Where demand swings overlap count incidents (the brief publishes no count_incident_min_share), a volume move is a
# count incident only if it shows in the hours: the app-open and menu-open mixes both moved (in the mix distance) by
# HOURS_SHARE of the smallest published count magnitude of the episode's difficulty (a share s of the day added to or
# taken from a block of hours moves the mix by about s times the rest of the day's share, half of it or more; a swing
# scales every hour together and leaves both mixes in place), and the volume moved by COUNT_SHARE of that magnitude
# (a timing shift moves the mixes but not the volume). The mixes' z-scores cannot tell: where many dates' hours moved,
# their spread is too wide.
HOURS_SHARE = 0.2
COUNT_SHARE = 0.6
PRIORITY = ("instrumentation_data_quality_issue", "hourly_traffic_mix_shift", "funnel_break", "rate", "count")
DAILY_METRICS = {"conversion_rate": FUNNEL_STEPS, "event_count": ("app_opens",)}
CONFIRMATION_TOOL = {"conversion_rate": "compare_rate_to_median", "event_count": "compare_count_to_median"}
SPIKE_STEPS = FUNNEL_STEPS[:3]  # the last step converts near 1 and has no spike family
MIX_EVENTS = ("app_opens", "menu_opens")
# The generator that looks first at what an unexplained suspicious date's standout entity type suggests.
GENERATOR_FOR_ENTITY_TYPE = {
    "hourly_mix": "get_hourly_traffic_mix_shift_rows",
    "conversion_rate": "get_funnel_break_rows",
    "event_count": "get_instrumentation_data_quality_issue_rows",
}
SUSPICIOUS_DATES = 10
SPREAD_QUANTILE = 0.75
SPREAD_QUANTILE_Z = 1.1503  # the 0.75 quantile of |N(0, 1)|


@dataclass(frozen=True)
class Candidate:
    row: dict[str, Any]
    group: str  # a key of FAMILY_THRESHOLDS
    strength: float  # robust z of the evidence / its threshold: >= 1 clears the threshold
    daily: bool = True  # the evidence is the date's value against its same-weekday baseline


def _analysis(method: str, **args: Any) -> MetricTrackerRlAction:
    return MetricTrackerRlAction(analysis_method=method, analysis_args=args)


# The procedure that plays a tier whose data are not counts, by what its episodes hold.
PROCEDURE_BY_DATA: dict[str, type[Agent]] = {EVENTS: WarehouseExpertAgent}
# A tier whose procedure is its own beyond its data's (the audit: more mechanisms than the warehouse's).
PROCEDURE_BY_TIER: dict[str, type[Agent]] = {"audit": AuditExpertAgent}


class ExpertAgent(Agent):
    name = "expert"
    frontier: Agent | None = None  # with segments (or raw events), the tier's own procedure plays the episode
    frontier_agent: type[FrontierExpertAgent] = FrontierExpertAgent
    # Deep has its own procedure (cuboids, context); None: frontier_agent plays deep too (an agent built on
    # frontier's procedure, as the next-date padder).
    deep_agent: type[FrontierExpertAgent] | None = DeepExpertAgent

    def begin(self, observation: SeenObservation) -> None:
        brief = observation.brief
        difficulty = observation.config.get("difficulty")
        tier = TIERS.get(difficulty) if isinstance(difficulty, str) else None
        own_data = (PROCEDURE_BY_TIER.get(tier.name) or PROCEDURE_BY_DATA.get(tier.data)) if tier is not None else None
        if own_data is not None:  # data of their own kind (raw events): their own procedure
            self.frontier = own_data()
            self.frontier.begin(observation)
            return
        if difficulty in SEGMENTED_DIFFICULTIES:
            # Daily-only dimensions (deep's channel and user type) call for the cuboid search.
            own = self.deep_agent if len(brief["segments"]["dimensions"]) > 3 else None
            self.frontier = own() if own is not None else self.frontier_agent()
            self.frontier.begin(observation)
            return
        self.dates = episode_dates(brief)
        # A count incident moves the day's volume by at least the published count_incident_min_share, a benign
        # demand swing by at most the top of demand_swing_share: the middle of the gap separates the two.
        bounds = brief["benign_fluctuations"]
        self.count_needs_hours = "count_incident_min_share" not in bounds
        if self.count_needs_hours:
            difficulty = str(observation.config["difficulty"])
            smallest_count = min(published_range(brief, family, difficulty)[0] for family in COUNT_FAMILIES)
            self.volume_incident_share = COUNT_SHARE * smallest_count
            self.hours_moved_share = HOURS_SHARE * smallest_count
        else:
            self.volume_incident_share = (bounds["demand_swing_share"][1] + bounds["count_incident_min_share"]) / 2
        smallest_bots, _ = magnitude_bounds(brief, "hourly_traffic_mix_shift")
        self.bot_opens_share = EFFECT_SHARE * smallest_bots
        self.bot_rate_drop_share = EFFECT_SHARE * smallest_bots / (1 + smallest_bots)
        self.rate_incident_share = EFFECT_SHARE * min(magnitude_bounds(brief, family)[0] for family in RATE_FAMILIES)
        # Where the brief publishes audience swings, the steps they move together (a rate incident moves one).
        self.audience_steps = tuple(bounds.get("audience_swing_steps", ()))
        self.plan: list[tuple[str, MetricTrackerRlAction]] = [
            ("annotations", _analysis("get_annotations")),
            ("suspicious", _analysis("list_suspicious_dates", limit=SUSPICIOUS_DATES)),
        ]
        self.results: dict[str, dict[str, Any]] = {}
        self.waiting: str | None = None
        self.report: list[Candidate] | None = None

    # --- the investigation ---------------------------------------------------------------------------

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if self.frontier is not None:
            return self.frontier.act(observation)
        if self.waiting is not None:
            self.results[self.waiting] = observation.analysis_result or {}
            if self.waiting == "suspicious":
                self._plan_scans()
            elif self.waiting == "raw":
                self._read_daily_values()
            self.waiting = None
        if observation.status == "graded" or observation.done:
            return None
        if self.report is None and not self.plan:
            self.report = self._first_report()
            self.plan = [
                (
                    f"confirm/{i}",
                    _analysis(
                        CONFIRMATION_TOOL[c.row["entity_type"]], date=c.row["date"], entity_name=c.row["entity_name"]
                    ),
                )
                for i, c in enumerate(self.report)
                if c.group in ("rate", "count")
            ]
        if self.plan:
            self.waiting, action = self.plan.pop(0)
            return action
        return self._submit()

    def _plan_scans(self) -> None:
        """The rest of the investigation, in the order the annotations and the suspicious dates suggest. Every
        scan runs whatever the order (the report depends on all of them); what comes first follows the data."""
        explained = explained_dates(self.results["annotations"])
        suspicious = self.results["suspicious"]["dates"]
        unexplained = [entry for entry in suspicious if entry["date"] not in explained] or suspicious
        focus = unexplained[0]
        # The hour-of-day mix spreads do not depend on the date: measured on the date to look at first, whose
        # standout event (if it is one of them) comes first.
        events = sorted(MIX_EVENTS, key=lambda event: event != strongest_signal(focus)[1])
        for event in events:
            self.plan.append(
                (f"mix_std/{event}", _analysis("compare_hourly_mix_to_baseline", date=focus["date"], entity_name=event))
            )
        self.plan.append(("spread", _analysis("get_metric_std_dev_from_median")))
        kinds = [strongest_signal(e)[0] for e in unexplained]
        pointed = [GENERATOR_FOR_ENTITY_TYPE[kind] for kind in kinds if kind in GENERATOR_FOR_ENTITY_TYPE]
        for method in sorted(POOL_THRESHOLDS, key=lambda m: pointed.index(m) if m in pointed else len(pointed)):
            self.plan.append((method, _analysis(method, threshold_multiplier=POOL_THRESHOLDS[method], limit=PAGE_ROWS)))
        self.plan.append(("raw", _analysis("show_raw_data", limit=len(self.dates))))  # every date's values

    def _read_daily_values(self) -> None:
        """Every date's row of each step's conversion and of the app opens, baselines by the published rule: the
        median of the same weekday's values in the other weeks (the `rates` and `counts` tables of the ranking)."""
        values = {row["date"]: row for row in self.results["raw"]["rows"]}
        for table, (entity_type, names) in zip(("rates", "counts"), DAILY_METRICS.items(), strict=True):
            rows = []
            for name in names:
                series = [values[date].get(name) for date in self.dates]
                for day, date in enumerate(self.dates):
                    references = [series[p] for p in same_weekday_peers(day, len(self.dates)) if series[p] is not None]
                    if series[day] is None or not references:
                        continue
                    baseline = float(np.median(references))
                    delta = series[day] - baseline
                    if delta:
                        rows.append(
                            {
                                "date": date,
                                "entity_type": entity_type,
                                "entity_name": name,
                                "anomaly_type": DIRECTIONAL_FAMILIES[(entity_type, 1 if delta > 0 else -1)],
                                "detection_method": CONFIRMATION_TOOL[entity_type],
                                "baseline_value": baseline,
                                "observed_value": series[day],
                                "delta_value": delta,
                            }
                        )
            self.results[table] = {"rows": rows}

    # --- evidence ----------------------------------------------------------------------------------

    def _spreads(self, explained: set[str]) -> dict[tuple[str, str], float]:
        spreads: dict[tuple[str, str], float] = {}
        # Dates with decisive hour-level evidence of an incident (a step that stopped, an impossible count), or whose
        # audience changed, would widen the spread of the rates they move: the spread is measured on the other dates.
        busy = (
            set(explained)
            | self._audience_dates()
            | {row["date"] for method in HOUR_EVIDENCE_METHODS for row in self.results[method]["rows"]}
        )
        for metric in self.results["spread"]["metrics"]:
            spreads[("metric", metric["metric"])] = metric["robust_std_from_baseline"]
        # Where every date's delta is at hand, a higher quantile of |delta| estimates the spread more stably than
        # the median (28 dates are few), and still ignores the handful of incident dates.
        deltas: dict[str, list[float]] = {}
        for row in self.results["rates"]["rows"] + self.results["counts"]["rows"]:
            if row["date"] not in busy:
                deltas.setdefault(row["entity_name"], []).append(abs(row["delta_value"]))
        for name, values in deltas.items():
            spreads[("metric", name)] = float(np.quantile(values, SPREAD_QUANTILE)) / SPREAD_QUANTILE_Z
        for event in MIX_EVENTS:
            spreads[("hourly_mix", event)] = self.results[f"mix_std/{event}"]["robust_std"]
        return spreads

    def _z(self, row: dict[str, Any], spreads: dict[tuple[str, str], float]) -> float:
        kind = "hourly_mix" if row["entity_type"] == "hourly_mix" else "metric"
        spread = spreads.get((kind, row["entity_name"]))
        return row["delta_value"] / spread if spread else 0.0

    def _rank(self) -> list[Candidate]:
        explained = explained_dates(self.results["annotations"])
        spreads = self._spreads(explained)
        by_date: dict[str, dict[str, list[Candidate]]] = {}

        def add(row: dict[str, Any], group: str, strength: float | None = None, daily: bool = False) -> None:
            if row["date"] not in explained:
                if strength is None:
                    strength = abs(self._z(row, spreads)) / FAMILY_THRESHOLDS[group]
                candidate = Candidate(row, group, strength, daily)
                by_date.setdefault(row["date"], {}).setdefault(group, []).append(candidate)

        for row in self.results["get_instrumentation_data_quality_issue_rows"]["rows"]:
            group = "instrumentation_data_quality_issue"
            add(row, group, HOUR_EVIDENCE_STRENGTH + abs(self._z(row, spreads)) / FAMILY_THRESHOLDS[group])
        volume = {row["date"]: row for row in self.results["counts"]["rows"]}
        mix = {(r["date"], r["entity_name"]): r for r in self.results["get_hourly_traffic_mix_shift_rows"]["rows"]}
        first_step = {r["date"]: r for r in self.results["rates"]["rows"] if r["entity_name"] == FUNNEL_STEPS[0]}

        bots = self._bot_dates(volume, first_step, mix, spreads)
        for row in self.results["get_funnel_break_rows"]["rows"]:
            group = "funnel_break"
            if row["entity_name"] == FUNNEL_STEPS[0] and row["date"] in bots:
                continue  # the hours where opens stopped converting are the bots' hours
            add(row, group, HOUR_EVIDENCE_STRENGTH + abs(self._z(row, spreads)) / FAMILY_THRESHOLDS[group])
        for (date, event), row in mix.items():
            if event != "app_opens":
                continue
            downstream = mix.get((date, "menu_opens"))
            if date in bots:
                mix_strength = abs(self._z(row, spreads)) / FAMILY_THRESHOLDS["hourly_traffic_mix_shift"]
                add(row, "hourly_traffic_mix_shift", max(bots[date], mix_strength))
            elif downstream is None or downstream["delta_value"] < DOWNSTREAM_MIX_SHARE * row["delta_value"]:
                add(row, "hourly_traffic_mix_shift")
            # Otherwise every event's hours moved together: people came at other times, or a count incident hit
            # a block of hours, which the day's volume against the published bounds tells (read below).
        audience = self._audience_dates()
        for row in self.results["rates"]["rows"]:
            if row["date"] in audience:
                continue  # the audience changed: its steps moved together, none of them is an incident
            if row["entity_name"] == FUNNEL_STEPS[0] and row["date"] in bots:
                continue  # the first step's fall is the bots' side effect
            # A move under half the smallest published rate magnitude is noise, however large its z.
            if (row["delta_value"] < 0 or row["entity_name"] in SPIKE_STEPS) and relative_move(
                row
            ) >= self.rate_incident_share:
                add(row, "rate", daily=True)
        for row in self.results["counts"]["rows"]:
            # The day's volume against the published bounds: a count incident clears the gap above the largest
            # demand swing by many daily-noise widths, whatever else widened the count's spread this window. Where
            # no gap is published, only a volume move that also moved every event's hours is an incident.
            if self.count_needs_hours and not all(
                (row["date"], event) in mix and mix[(row["date"], event)]["delta_value"] >= self.hours_moved_share
                for event in MIX_EVENTS
            ):
                continue
            add(row, "count", relative_move(row) / self.volume_incident_share, daily=True)

        return self._discount_peer_echoes(_best_of_each_date(by_date), explained, spreads)

    def _bot_dates(
        self,
        volume: dict[str, dict[str, Any]],
        first_step: dict[str, dict[str, Any]],
        mix: dict[tuple[str, str], dict[str, Any]],
        spreads: dict[tuple[str, str], float],
    ) -> dict[str, float]:
        """The dates where opens that never convert were added, with the strength of that evidence: many more opens
        than usual while the first step converts clearly worse (a count incident keeps conversion, a funnel break
        or a rate drop keeps the opens)."""
        bots = {}
        for date, event in mix:
            opens, rate = volume.get(date), first_step.get(date)
            if (
                event != "app_opens"
                or opens is None
                or rate is None
                or signed_share(opens) < self.bot_opens_share
                or signed_share(rate) > -self.bot_rate_drop_share
            ):
                continue
            bots[date] = 1.0 + abs(self._z(rate, spreads)) / FAMILY_THRESHOLDS["rate"]
        return bots

    def _audience_dates(self) -> set[str]:
        """Dates where two or more of the published audience-swing steps moved the same way, each by at least half
        the smallest published rate magnitude: a different audience converts differently at every step, while a
        rate incident moves its one step (bots and double-firing move neighbouring steps opposite ways)."""
        moves: dict[tuple[str, int], int] = {}
        for row in self.results["rates"]["rows"]:
            if row["entity_name"] in self.audience_steps and relative_move(row) >= self.rate_incident_share:
                key = (row["date"], 1 if row["delta_value"] > 0 else -1)
                moves[key] = moves.get(key, 0) + 1
        return {date for (date, _), count in moves.items() if count >= 2}

    def _discount_peer_echoes(
        self, ranked: list[Candidate], explained: set[str], spreads: dict[tuple[str, str], float]
    ) -> list[Candidate]:
        """Re-rate daily-value candidates against their clean same-weekday peers only.

        Perturbed dates may share a weekday: a quiet date whose peers include an explained date and an incident
        has a skewed median and looks like an incident itself. Strongest first, each accepted date (and every
        explained one) is left out of the later candidates' comparison. With two or more dates left besides the
        candidate, the comparison is the median of them and the candidate (at most one of three is an incident
        there, so the median is a quiet date); with one left, that date; with none, the published baseline.
        """
        dates = self.dates
        observed = {
            (r["entity_name"], r["date"]): r["observed_value"]
            for r in self.results["rates"]["rows"] + self.results["counts"]["rows"]
        }
        perturbed, rerated = set(explained) | self._audience_dates(), []  # an audience swing moved its steps too
        for candidate in ranked:
            row = candidate.row
            if candidate.daily:
                day = dates.index(row["date"])
                clean = [
                    observed[(row["entity_name"], dates[d])]
                    for d in range(day % 7, len(dates), 7)
                    if d != day and dates[d] not in perturbed and (row["entity_name"], dates[d]) in observed
                ]
                if clean and len(clean) < 3:
                    reference = clean + [row["observed_value"]] if len(clean) >= 2 else clean
                    baseline = float(np.median(reference))
                    moved = {**row, "baseline_value": baseline, "delta_value": row["observed_value"] - baseline}
                    if candidate.group == "count":
                        strength = relative_move(moved) / self.volume_incident_share
                    else:
                        strength = abs(self._z(moved, spreads)) / FAMILY_THRESHOLDS[candidate.group]
                    candidate = Candidate(row, candidate.group, strength, daily=True)
            if candidate.strength >= 1.0:
                perturbed.add(row["date"])
            rerated.append(candidate)
        return sorted(rerated, key=lambda c: -c.strength)

    # --- reports -------------------------------------------------------------------------------------

    def _first_report(self) -> list[Candidate]:
        return [c for c in self._rank() if c.strength >= 1.0]

    def _submit(self) -> MetricTrackerRlAction:
        rows = []
        for i, candidate in enumerate(self.report or []):
            row = candidate.row
            confirmed = self.results.get(f"confirm/{i}")
            if confirmed is not None:  # the row as the comparison tool shows it
                row = {
                    **{
                        key: confirmed[key]
                        for key in (
                            "date",
                            "entity_type",
                            "entity_name",
                            "baseline_value",
                            "observed_value",
                            "delta_value",
                            "severity",
                        )
                    },
                    "anomaly_type": row["anomaly_type"],
                    "detection_method": row["detection_method"],
                }
            rows.append(MetricSubmissionRow(**row))
        return MetricTrackerRlAction(classifications=rows)


register_agent(ExpertAgent.name, ExpertAgent)


def _best_of_each_date(by_date: dict[str, dict[str, list[Candidate]]]) -> list[Candidate]:
    """One candidate per date, strongest first: the most specific family whose evidence clears its threshold
    explains the date; below every threshold, the strongest evidence stays in the pool for refinement."""
    ranked = []
    for groups in by_date.values():
        best = [max(groups[group], key=lambda c: c.strength) for group in PRIORITY if group in groups]
        ranked.append(next((c for c in best if c.strength >= 1.0), max(best, key=lambda c: c.strength)))
    return sorted(ranked, key=lambda c: -c.strength)
