"""Classification: the signatures that name what happened on a date, read from what a segmented expert's queries
returned (`Evidence`). Each classifier reads its own evidence and adds the reports it explains: hours in which a step
stopped (a funnel break), a block of hours that lost its app opens (an outage), a web event counted twice (a
tracking bug), a new version that fell from its rollout's start (a release regression), and step conversions that
fell on consecutive dates (a level shift) or on one date in one country (bots)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any, Protocol

from metric_tracker_rl.agents.expert_core.cuboid_queries import SCAN_Z
from metric_tracker_rl.agents.expert_core.localisation import nested
from metric_tracker_rl.agents.expert_core.queries import STEP_INTO_EVENT, STEPS
from metric_tracker_rl.agents.expert_core.reports import Report, segment_of

STRONG_Z = 6.0  # a run of a platform's or a country's falls needs one date beyond this
RUN_STRONG_Z = 6.0  # a run of a cuboid's falls needs one date beyond this (or two beyond the cuboid scan's SCAN_Z)
# A web event logged twice or more: its incoming step converts at least this much more than its baseline.
DUPLICATE_RISE = 0.5
OUTAGE_HOURS = 9  # an outage's low hours lie within this many consecutive hours
OTHERS_STOPPED = 0.5  # the platform's other versions converted under half their day's rate in those hours
PLATFORM_ALONG = 0.75  # share of the new version's fall that its whole platform shows early in a level shift


class Evidence(Protocol):
    """What the classifiers read from an expert: its calls' results by name (rows of a query, releases, context
    tables), the episode's dates and holidays, and whether it reads the aggregate only."""

    results: dict[str, list[dict[str, Any]]]
    dates: list[str]
    holidays: list[str]
    segment_blind: bool


def share(row: dict[str, Any]) -> float:
    """A scan row's relative change against its baseline."""
    return float(row["change"])


def one_block(hours: str) -> bool:
    """Hours (as the hourly scan lists them) that fit in one block no longer than an outage can be, across
    midnight too: hours that fell by chance are scattered over the day."""
    listed = sorted(int(hour) for hour in hours.split(","))
    widest_gap = max(b - a for a, b in zip(listed, listed[1:] + [listed[0] + 24], strict=True))
    return 24 - widest_gap + 1 <= OUTAGE_HOURS


def consecutive_runs(days: Iterable[int]) -> list[list[int]]:
    """Days (positions in the episode) in order, grouped into runs of consecutive days."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


# --- the frontier's signatures: at most one event a date, the first that explains it ----------------------------


def funnel_breaks(evidence: Evidence, reports: dict[str, Report]) -> None:
    """Hours in which a step nearly stopped: a funnel break on that version, or on the whole platform when its
    other versions stopped in the same hours or had no traffic to show it."""
    # A block of hours whose app opens surged (none fell) brings opens that never reach the menu: their first
    # step "stops" as a side effect, while a break leaves the opens as they were.
    surged = {
        str(row["date"])
        for row in evidence.results["hours"]
        if row["n_high"] >= 2 and row["n_low"] <= 1 and one_block(str(row["high_hours"]))
    }
    by_date: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in evidence.results["stops"]:
        if not (row["entity_name"] == STEPS[0][0] and str(row["date"]) in surged):
            by_date[row["date"]].append(row)
    for date, rows in by_date.items():
        if date in evidence.holidays:
            continue
        top = max(rows, key=lambda r: r["stopped_hours"])
        # Every version stopped (or none other had traffic then, its rate NaN or null): the platform's failure,
        # not one version's.
        others = top.get("others")
        whole = not isinstance(others, (int, float)) or others < OTHERS_STOPPED
        reports[date] = Report(
            date,
            "funnel_step",
            top["entity_name"],
            "funnel_break",
            top.get("platform"),
            None,
            None if whole else top.get("app_version"),
        )


def outages(evidence: Evidence, reports: dict[str, Report]) -> None:
    """A block of hours that collapsed with none that rose (hours that fell and rose together are a timing
    shift; a whole-day swing moves no hour apart from the others)."""
    by_date: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in evidence.results["hours"]:
        by_date[row["date"]].append(row)
    for date, rows in by_date.items():
        collapsed = [r for r in rows if r["n_low"] >= 2 and r["n_high"] <= 1 and one_block(str(r["low_hours"]))]
        if collapsed and date not in reports:
            top = max(collapsed, key=lambda r: r["n_low"])
            reports[date] = Report(
                date,
                "event_count",
                "app_opens",
                "absolute_drop_in_event_count",
                top.get("platform"),
                top.get("country"),
            )


def duplicate_events(evidence: Evidence, reports: dict[str, Report]) -> None:
    """An event whose incoming step converts far above its baseline on web (or, blind, on the aggregate):
    the event is logged more than once."""
    for row in evidence.results["rates"]:
        event = STEP_INTO_EVENT.get(row["entity_name"])
        on_web = row.get("platform") == "web" or evidence.segment_blind
        if event and on_web and row["date"] not in reports and share(row) >= DUPLICATE_RISE and row["z"] >= STRONG_Z:
            reports[row["date"]] = Report(
                row["date"], "data_quality", event, "instrumentation_data_quality_issue", row.get("platform")
            )


def release_regressions(evidence: Evidence, reports: dict[str, Report], seen_within: int) -> None:
    """A release's new version whose step fell from the rollout's first `seen_within` + 1 dates
    on: a regression on that version, from the rollout's first date for as long as the fall lasts."""
    day_of = {date: day for day, date in enumerate(evidence.dates)}
    for release in evidence.results["releases"]:
        start = day_of.get(str(release["rollout_start"]))
        platform, version = release["platform"], str(release["app_version"])
        if start is None or start >= len(evidence.dates) - 1:
            continue
        falls: dict[str, dict[int, float]] = defaultdict(dict)
        version_share: dict[str, dict[int, float]] = defaultdict(dict)
        shares: dict[str, dict[int, float]] = defaultdict(dict)  # the platform's own falls
        for row in evidence.results["rates"]:
            if share(row) >= 0 or row["date"] not in day_of or row.get("platform") != platform:
                continue
            day = day_of[row["date"]]
            if str(row.get("app_version")) == version:
                falls[row["entity_name"]][day] = row["z"]
                version_share[row["entity_name"]][day] = share(row)
            elif row.get("app_version") is None and row.get("country") is None:
                shares[row["entity_name"]][day] = share(row)
        for step, days in falls.items():
            first = min((day for day in days if start <= day <= start + seen_within), default=None)
            if first is None or min(days.values()) > -STRONG_Z:
                continue
            last = first
            while last + 1 in days:
                last += 1
            # In its first three dates the new version carries half of the platform at most: a platform that fell
            # about as far as the version then fell as a whole (a level shift that began with the rollout).
            whole = [
                shares[step].get(day, 0.0) <= PLATFORM_ALONG * version_share[step][day]
                for day in range(start, start + 3)
                if day in version_share[step]
            ]
            # A regression: several dates (or one first seen two or more dates into the rollout, its earlier
            # dates too thin to show it), on the new version alone.
            if (last - first < 1 and first - start <= 1) or any(whole):
                continue
            for day in range(start, last + 1):
                date = evidence.dates[day]
                reports.setdefault(
                    date, Report(date, "conversion_rate", step, "rate_drop_from_median", platform, None, version)
                )


def rate_runs(evidence: Evidence, reports: dict[str, Report]) -> None:
    """Step conversions of a platform or a country that fell on consecutive dates, each run on the segment that
    fell furthest over it. A single date on which a country's first step stopped converting as often is bots
    (opens that never go further); a level shift lasts several dates."""
    falls: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in evidence.results["rates"]:
        if (
            share(row) < 0
            and row["date"] not in reports
            and row["date"] not in evidence.holidays
            and row.get("app_version") is None
        ):
            falls[row["entity_name"]][row["date"]].append(row)
    day_of = {date: day for day, date in enumerate(evidence.dates)}
    for step, by_date in falls.items():
        for run in consecutive_runs(day_of[date] for date in by_date):
            rows = [row for day in run for row in by_date[evidence.dates[day]]]
            if min(row["z"] for row in rows) > -STRONG_Z:
                continue
            totals: dict[tuple[str | None, ...], float] = defaultdict(float)
            for row in rows:
                totals[segment_of(row)] += share(row)
            segment = min(totals, key=lambda s: totals[s])
            if len(run) == 1:
                if step != STEPS[0][0] or (segment[1] is None and not evidence.segment_blind):
                    continue  # one date, not bots: noise or a fall too short for a level shift
                date = evidence.dates[run[0]]
                reports[date] = Report(date, "hourly_mix", "app_opens", "hourly_traffic_mix_shift", *segment)
                continue
            for day in run:
                date = evidence.dates[day]
                reports[date] = Report(date, "conversion_rate", step, "rate_drop_from_median", *segment)


# --- deep's: a cuboid's own signatures --------------------------------------------------------------------------


def cell_breaks(evidence: Evidence, hourly: dict[str, Report], localised: list[dict[str, Any]] | None) -> list[Report]:
    """A step that stopped for a block of hours in a platform and country together, on a date no version-wide
    break or outage was read and on a date and step the daily scan did not localise (too diluted in the day to
    show there): that cell pair's funnel break (the largest block of each date and step)."""
    # A date and step the daily scan localised keeps its cuboid: its fall's hours classify it there.
    scanned = {(str(row["date"]), row["entity_name"]) for row in localised or []}
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for row in evidence.results.get("cell stops", []):
        key = (str(row["date"]), row["entity_name"])
        # A first step that "stops" in a block of hours is the opens that never reach the menu (bots, a
        # surge), not a break of it.
        if key[0] in hourly or key[0] in evidence.holidays or key[1] == STEPS[0][0] or key in scanned:
            continue
        if key not in best or row["expected"] > best[key]["expected"]:
            best[key] = row
    return [
        Report(date, "funnel_step", step, "funnel_break", row["platform"], row["country"])
        for (date, step), row in sorted(best.items())
    ]


def narrow_regressions(evidence: Evidence, regressions: dict[str, Report]) -> None:
    """A release regression may be confined to part of its version (a country, channel or user type): each
    run takes the cuboid its strongest date localised inside that version, on every date of the run."""
    for report in list(regressions.values()):
        rows = [
            row
            for row in evidence.results["rates"]
            if row["entity_name"] == report.entity_name
            and row.get("platform") == report.platform
            and str(row.get("app_version")) == report.app_version
            and any(r.entity_name == report.entity_name and r.date == str(row["date"]) for r in regressions.values())
        ]
        if not rows:
            continue
        segment = segment_of(min(rows, key=lambda row: row["z"]))
        for date, other in list(regressions.items()):
            if (
                other.entity_name == report.entity_name
                and other.platform == report.platform
                and other.app_version == report.app_version
            ):
                regressions[date] = Report(date, other.entity_type, other.entity_name, other.anomaly_type, *segment)


def pooled(by_day: dict[int, list[dict[str, Any]]], days: list[int]) -> float:
    """A run's pooled z-score: each date's strongest fall's z, summed, over the square root of the dates (the
    z-score of the run's mean under independent dates)."""
    return sum(min(row["z"] for row in by_day[day]) for day in days) / len(days) ** 0.5


def cuboid_runs(evidence: Evidence, pooled_z: float | None = None) -> list[Report]:
    """The frontier's rate runs, each step on its own (one date may carry falls of two steps) and each run
    reported on the dates its strongest cuboid's falls reach (a fall of another cuboid on a neighbouring date
    is not the run's). Bots are a whole country's (their extra opens spread over its leaves): a first step's
    fall on one date localised finer than one country is that cuboid's own level shift. A run needs one date
    beyond RUN_STRONG_Z or two beyond SCAN_Z (a small cuboid's one strong date and a weak neighbour is noise);
    with `pooled_z` (a published noise model), a run of several dates may instead pool its evidence: its dates'
    strongest z-scores summed over the square root of their number, beyond pooled_z.
    """
    falls: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    day_of = {date: day for day, date in enumerate(evidence.dates)}
    for row in evidence.results["rates"]:
        if (
            share(row) < 0
            and row["date"] not in evidence.holidays
            and row.get("app_version") is None
            and str(row["date"]) in day_of
        ):
            falls[row["entity_name"]][day_of[str(row["date"])]].append(row)
    reports = []
    for step, by_day in falls.items():
        for run in consecutive_runs(by_day):
            rows = [row for day in run for row in by_day[day]]
            strongest = min(rows, key=lambda row: row["z"])
            if strongest["z"] > -RUN_STRONG_Z and (pooled_z is None or pooled(by_day, run) > -pooled_z):
                continue
            segment = segment_of(strongest)
            arm = Report("", "", "", "", *segment)
            days = [
                day
                for day in run
                if any(nested(Report("", "", "", "", *segment_of(row)), asdict(arm)) for row in by_day[day])
            ]
            if len(days) == 1 and step == STEPS[0][0]:
                bots = segment == (None, segment[1], None, None, None) and segment[1] is not None
                date = evidence.dates[days[0]]
                reports.append(
                    Report(date, "hourly_mix", "app_opens", "hourly_traffic_mix_shift", *segment)
                    if bots
                    else Report(date, "conversion_rate", step, "rate_drop_from_median", *segment)
                )
            elif len(days) > 1 and (
                strongest["z"] <= -RUN_STRONG_Z
                or sum(row["z"] <= -SCAN_Z for day in days for row in by_day[day]) >= 2
                or (pooled_z is not None and pooled(by_day, days) <= -pooled_z)
            ):
                reports += [
                    Report(evidence.dates[day], "conversion_rate", step, "rate_drop_from_median", *segment)
                    for day in days
                ]
    return reports
