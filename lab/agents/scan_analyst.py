"""The scan analyst: a reference agent that plays deep the way a capable model did, zero-shot, through the same
tools and text (the transcripts of a frontier LLM's deep episodes are what it imitates).

1. It reads every context table in one query.
2. One query scores every cuboid of one and two dimensions (a version with its platform as one) on every date: each
   step rate and the app opens against the median of the same weekday, as a robust z by the MAD of the cuboid's own
   series, sorted by |z|; when one incident fills the page, a second scan leaves its dates out.
3. Three hourly scans of each platform x country cell (and of each platform and country): hours in which a step
   nearly stopped, hours in which app opens collapsed, doubled or never reached the menu, and hours in which a later
   event outnumbered an earlier one; then the old and new app versions side by side during each rollout.
4. Each block of hours is confirmed by the tool for its family (detect_funnel_break, compare_hourly_mix_to_baseline,
   compare_count_to_median), which also reads its values; a release whose new version converts well below the old
   ones from its first dates is a regression. The strongest falls of the scan that no such finding explains and the
   context does not explain in its scope (an experiment's target step in its arm, a campaign's traffic inside a
   wider cuboid) are pinned with compare_segments, on their siblings and then their children, grown to the dates
   around them that fell too, and read with one compare call per date.

Variations: `scan_analyst_3d` adds a scan of the three-dimension cuboids (leaving out the dates already explained),
`scan_analyst_hourly` checks the hours of every fall it keeps (a break or bots the hourly scans missed).

    uv run python -m lab.calibration.scan_analyst_sweep --difficulty deep --seeds 100 --workers 1
"""

from __future__ import annotations

from collections import defaultdict

from lab.agents.registry import register_lab_agent
from lab.agents.scan_analyst_reading import (
    HOURLY_FIELDS,
    SCAN_FIELDS,
    Candidate,
    Finding,
    Row,
    broken_block,
    candidates,
    cuboid_of,
    explained_by_context,
    fall_runs,
    falls,
    narrowed,
    overlaps,
    run_extent,
    shifted,
    stands_out,
    widened,
)
from lab.agents.scan_analyst_signatures import (
    DUPLICATED,
    MIX_RISE,
    Plan,
    SignatureReader,
    query_action,
    tool_action,
)
from lab.agents.scan_analyst_sql import (
    SQL_CHARS,
    STEP_OF_RATE,
    THREE_DIMENSION_SETS,
    TWO_DIMENSION_SETS,
    context_sql,
    impossible_sql,
    opens_sql,
    scan_sql,
    series_sql,
    stops_sql,
    versions_sql,
)
from metric_tracker_rl.models import MetricSubmissionRow

FLOOR_Z, MIN_EVENTS, MIN_EVENTS_3D = 4.5, 100, 100  # the scans' floor of |z| and of a rate's denominator
CROWDED = 10  # a date holding this many rows of a full page is one incident's, crowding the rest out
CONFIRM_Z = 4.0  # a fall's own cuboid, read by compare_segments, fell beyond this robust z
REGRESSION_DAYS = 6  # a release stays broken for at most this many dates (the brief's release note)
ROLLOUT_SEEN_WITHIN = 3  # a fall first seen within this many dates of a release's first date is read by version
HALF_WAY = 2  # a rollout's date (after its first) on which half of its platform's users have the new version
# The new version fell beyond NEW_FELL_Z (its short series makes its robust z smaller than a whole cuboid's) while
# the old ones stayed within OLD_STAYED_Z.
NEW_FELL_Z, OLD_STAYED_Z = 3.0, 2.0
SEVERITY_BOUNDS = ((0.15, "low"), (0.30, "medium"), (0.60, "high"))


def _severity(baseline: float, observed: float) -> str:
    share = abs(observed - baseline) / max(abs(baseline), 1e-9)
    return next((label for bound, label in SEVERITY_BOUNDS if share < bound), "critical")


class ScanAnalystAgent(SignatureReader):
    """The procedure of the module docstring; `three_dimensions` and `hourly_checks` are its variations."""

    name = "scan_analyst"

    def __init__(self, three_dimensions: bool = False, hourly_checks: bool = False) -> None:
        self.three_dimensions = three_dimensions
        self.hourly_checks = hourly_checks

    def investigate(self) -> Plan:
        self.context = yield from self._rows(query_action(context_sql()))
        scan = yield from self._scans()
        stops = yield from self._rows(query_action(stops_sql(self.holidays)))
        opens = yield from self._rows(query_action(opens_sql(self.holidays)))
        impossible = yield from self._rows(query_action(impossible_sql()))
        releases = [item for item in self.context if item["kind"] == "release"]
        windows = [(str(r["platform"]), str(r["first_date"]), shifted(str(r["first_date"]), 6)) for r in releases]
        versions = (yield from self._rows(query_action(versions_sql(windows)))) if windows else []
        findings: list[Finding] = []
        findings += yield from self._duplicates(impossible)
        findings += yield from self._breaks(stops, opens, findings)
        findings += yield from self._bots(opens, stops)
        findings += yield from self._outages(opens)
        findings += yield from self._regressions(versions, releases)
        findings += yield from self._rate_falls(scan, findings)
        yield from self._read_values(findings)
        return self._report(findings)

    def _scans(self) -> Plan:
        """The cuboid scan; again without the dates that crowd a full page; then (a variation) the cuboids of
        three dimensions without the dates the first scans' falls hold."""
        scan = yield from self._rows(query_action(scan_sql(TWO_DIMENSION_SETS, self.holidays, MIN_EVENTS, FLOOR_Z)))
        skipped = list(self.holidays)
        if self.more:
            per_date: dict[str, int] = defaultdict(int)
            for row in scan:
                per_date[str(row["date"])] += 1
            skipped += [date for date, count in per_date.items() if count >= CROWDED]
            campaigns = " OR ".join(
                f"(country='{c['country']}' AND date BETWEEN '{c['first_date']}' AND '{c['last_date']}')"
                for c in self.context
                if c["kind"] == "campaign"
            )
            scan += yield from self._rows(
                query_action(scan_sql(TWO_DIMENSION_SETS, skipped, MIN_EVENTS, FLOOR_Z, campaigns))
            )
        if self.three_dimensions:
            skipped += [c.date for run in falls(candidates(scan)) for c in run]
            scan += yield from self._rows(
                query_action(scan_sql(THREE_DIMENSION_SETS, sorted(set(skipped)), MIN_EVENTS_3D, FLOOR_Z))
            )
        return scan

    # --- the scan's falls ----------------------------------------------------------------------------

    def _rate_falls(self, scan: list[Row], found: list[Finding]) -> Plan:
        """The scan's strongest falls that no finding and no context explains, each pinned and grown to its run;
        `notes` records why each other fall was left (for reading an episode afterwards)."""
        kept: list[Finding] = []
        for run in fall_runs(candidates(scan)):
            step = STEP_OF_RATE[run[0].rate]
            if not stands_out(run):
                self._note("under the bar", run)
                continue
            unexplained = [c for c in run if not any(self._side_effect(f, c) for f in found)]
            run = [c for c in unexplained if not explained_by_context(c.cuboid, step, c.date, self.context)]
            if not run or any("app_version" in c.cuboid for c in run) or not self._affords(2):
                self._note("side effect" if not unexplained else "context" if not run else "left", unexplained)
                continue
            strongest = max(run, key=lambda c: abs(c.z))
            cuboid = yield from self._localise(strongest, step)
            dates = [
                c.date
                for c in run
                if cuboid is not None and not explained_by_context(cuboid, step, c.date, self.context)
            ]
            if not dates:
                self._note("unconfirmed" if cuboid is None else "context", run)
                continue
            finding = Finding(
                "rate_drop_from_median",
                "conversion_rate",
                step,
                cuboid,
                dates,
                "compare_rate_to_median",
                abs(strongest.z),
            )
            finding = yield from self._new_version_check(finding)
            if self.hourly_checks:
                finding = yield from self._hourly_check(finding, strongest)
            same = next(
                (
                    f
                    for f in kept
                    if f.entity_name == step and f.segment == finding.segment and f.family == finding.family
                ),
                None,
            )
            if same is not None:
                same.dates = sorted(set(same.dates) | set(finding.dates))
            else:
                kept.append(finding)
        yield from self._grow_runs([f for f in kept if f.family == "rate_drop_from_median" and not f.release])
        return kept

    def _note(self, reason: str, run: list[Candidate]) -> None:
        self.notes += [
            {"reason": reason, "date": c.date, "step": STEP_OF_RATE[c.rate], "cuboid": c.cuboid, "z": c.z} for c in run
        ]

    def _new_version_check(self, finding: Finding) -> Plan:
        """A fall on a mobile platform in the first dates of its release, read by version (compare_segments by
        app_version on the rollout's half-way date, both versions well populated): where the new version fell
        beyond the noise and the old ones did not, the release broke it there, from its rollout's first date on."""
        platform = finding.segment.get("platform")
        release = next(
            (
                r
                for r in self.context
                if r["kind"] == "release"
                and str(r["platform"]) == platform
                and str(r["first_date"]) <= min(finding.dates) <= shifted(str(r["first_date"]), ROLLOUT_SEEN_WITHIN)
            ),
            None,
        )
        if release is None or not self._affords():
            return finding
        first, version = str(release["first_date"]), str(release["name"])
        rows = yield from self._rows(
            tool_action(
                "compare_segments",
                date=shifted(first, HALF_WAY),
                metric_name=finding.entity_name,
                dimension="app_version",
                within=_within(finding.segment),
            )
        )
        new = [row for row in rows if str(row.get("app_version")) == version]
        old = [row for row in rows if str(row.get("app_version")) != version and row.get("robust_z") is not None]
        if (
            not new
            or (new[0].get("robust_z") or 0.0) > -NEW_FELL_Z
            or any(row["robust_z"] <= -OLD_STAYED_Z for row in old)
        ):
            return finding
        if narrowed(new + old, ["app_version"], self._share(new + old)) != {"app_version": version}:
            return finding  # the old versions fell too, by a comparable share (their short series hides it)
        dates = [date for date in self.dates if first <= date <= max(finding.dates)][:REGRESSION_DAYS]
        return Finding(
            finding.family,
            finding.entity_type,
            finding.entity_name,
            {**finding.segment, "app_version": version},
            dates,
            finding.method,
            finding.strength,
            release=True,
        )

    @staticmethod
    def _side_effect(finding: Finding, candidate: Candidate) -> bool:
        """Whether a finding explains a candidate fall: a break's own step, bots' first step, the steps into and
        out of an event logged twice, a regression's step, on its dates and in its traffic."""
        if candidate.date not in finding.dates or not overlaps(finding.segment, candidate.cuboid):
            return False
        step = STEP_OF_RATE[candidate.rate]
        if finding.family in ("funnel_break", "rate_drop_from_median"):
            return finding.entity_name == step
        if finding.family == "hourly_traffic_mix_shift":
            return candidate.rate == "r1"
        if finding.family == "instrumentation_data_quality_issue":
            return any(event == finding.entity_name and candidate.rate in rates for event, rates in DUPLICATED.values())
        return False

    def _localise(self, candidate: Candidate, step: str) -> Plan:
        """The candidate's cuboid pinned with compare_segments, or None where its own row there (the tool's robust
        z over the whole window) shows no fall beyond CONFIRM_Z: a field is dropped where its siblings fell as
        far, then fields are added where one child alone fell (at most three fields)."""
        cuboid = dict(candidate.cuboid)
        tested = list(cuboid)[:2]
        within = {k: v for k, v in cuboid.items() if k not in tested}
        rows = yield from self._rows(
            tool_action(
                "compare_segments",
                date=candidate.date,
                metric_name=step,
                dimension=",".join(tested),
                within=_within(within),
            )
        )
        own = next((row for row in rows if all(str(row.get(k)) == v for k, v in cuboid.items())), {})
        if (own.get("robust_z") or 0.0) > -CONFIRM_Z:
            return None
        dropped = widened(rows, {k: cuboid[k] for k in tested}, candidate.share)
        if dropped and len(dropped) < len(cuboid):
            cuboid.pop(dropped[0])
        room = 3 - len(cuboid)
        if room <= 0 or not self._affords():
            return cuboid
        children = self._child_dimensions(candidate, cuboid)[:2]
        rows = yield from self._rows(
            tool_action(
                "compare_segments",
                date=candidate.date,
                metric_name=step,
                dimension=",".join(children),
                within=_within(cuboid),
            )
        )
        for name, value in narrowed(rows, children, self._share(rows)).items():
            if len(cuboid) < 3:
                cuboid[name] = value
        return cuboid

    @staticmethod
    def _child_dimensions(candidate: Candidate, cuboid: dict[str, str]) -> list[str]:
        """The dimensions to break a cuboid down by: those of the scan's strongest rows inside it first."""
        hinted = []
        for row in candidate.rows:
            named = {k: v for k, v in cuboid_of(row, SCAN_FIELDS).items() if k != "app_version"}
            extra = [k for k in named if k not in cuboid]
            if len(extra) == 1 and all(named.get(k) == v for k, v in cuboid.items()) and extra[0] not in hinted:
                hinted.append(extra[0])
        rest = [k for k in ("user_type", "channel", "country", "platform") if k not in cuboid and k not in hinted]
        return hinted + rest

    def _hourly_check(self, finding: Finding, strongest: Candidate) -> Plan:
        """The variation's hourly look at every fall, on the part of its cuboid hours are served for (its
        platform, country and version): a first step's fall in a country whose hourly mix rose is bots there, a
        block of stopped hours on its strongest date makes it a break there."""
        hourly = {name: value for name, value in finding.segment.items() if name in HOURLY_FIELDS}
        if not hourly or not self._affords():
            return finding
        date = strongest.date
        if finding.entity_name == STEP_OF_RATE["r1"] and "country" in hourly:
            value = yield from self._result(
                tool_action(
                    "compare_hourly_mix_to_baseline", date=date, entity_name="app_opens", country=hourly["country"]
                )
            )
            if (value.get("delta_value") or 0.0) >= MIX_RISE:
                return Finding(
                    "hourly_traffic_mix_shift",
                    "hourly_mix",
                    "app_opens",
                    {"country": hourly["country"]},
                    [date],
                    "compare_hourly_mix_to_baseline",
                    finding.strength,
                    {date: value},
                )
            return finding
        if finding.entity_name not in {STEP_OF_RATE[rate] for rate in self.break_rates}:
            return finding
        result = yield from self._result(tool_action("detect_funnel_break", date=date, **hourly))
        step = next((row for row in result.get("steps", []) if row.get("step") == finding.entity_name), None)
        if broken_block(step):
            return Finding(
                "funnel_break",
                "funnel_step",
                finding.entity_name,
                hourly,
                [date],
                "detect_funnel_break",
                finding.strength,
                {date: step},
            )
        return finding

    def _grow_runs(self, runs: list[Finding]) -> Plan:
        """One query reads each run's cuboid on the dates around it: a neighbouring date that fell too joins it,
        and every date's observed value and baseline stand ready in case the compare calls run out."""
        if not runs or not self._affords():
            return
        first, last = self.dates[0], self.dates[-1]
        around = [
            [d for d in {shifted(date, step) for date in f.dates for step in range(-3, 4)} if first <= d <= last]
            for f in runs
        ]
        rate_of = {step: rate for rate, step in STEP_OF_RATE.items()}
        series = [
            (f"f{i}", f.segment, rate_of[f.entity_name], sorted(dates))
            for i, (f, dates) in enumerate(zip(runs, around, strict=True))
        ]
        while len(series) > 1 and len(series_sql(series)) > SQL_CHARS:  # the strongest runs that fit one statement
            series.pop()
        rows = yield from self._rows(query_action(series_sql(series)))
        for i, finding in enumerate(runs):
            finding.dates = [d for d in run_extent(rows, f"f{i}", finding.dates) if d not in self.holidays]
            for row in rows:
                if row["id"] == f"f{i}" and row.get("obs") is not None and row.get("base") is not None:
                    finding.values.setdefault(
                        str(row["date"]),
                        {
                            "baseline_value": row["base"],
                            "observed_value": row["obs"],
                            "delta_value": round(row["obs"] - row["base"], 4),
                            "severity": _severity(row["base"], row["obs"]),
                        },
                    )

    def _read_values(self, findings: list[Finding]) -> Plan:
        """One compare call per incident date whose values no confirming call read, while the budget lasts."""
        for finding in findings:
            if finding.family != "rate_drop_from_median":
                continue
            for date in finding.dates:
                if self.remaining - 1 < 1:
                    return
                value = yield from self._result(
                    tool_action("compare_rate_to_median", date=date, entity_name=finding.entity_name, **finding.segment)
                )
                if value.get("baseline_value") is not None:
                    finding.values[date] = value

    def _report(self, findings: list[Finding]) -> list[MetricSubmissionRow]:
        """A row per finding and date with its values read, the first finding of a key kept (the hourly
        signatures before the scan's falls, each kind's strongest first)."""
        rows, keys = [], set()
        for finding in findings:
            for date in finding.dates:
                value = finding.values.get(date)
                key = (date, finding.entity_type, finding.entity_name)
                if (
                    key in keys
                    or not value
                    or value.get("observed_value") is None
                    or value.get("baseline_value") is None
                ):
                    continue
                keys.add(key)
                rows.append(
                    MetricSubmissionRow(
                        date=date,
                        entity_type=finding.entity_type,
                        entity_name=finding.entity_name,
                        anomaly_type=finding.family,
                        detection_method=finding.method,
                        baseline_value=value["baseline_value"],
                        observed_value=value["observed_value"],
                        delta_value=value["delta_value"],
                        severity=value["severity"],
                        **finding.segment,
                    )
                )
        return rows


def _within(cuboid: dict[str, str]) -> str:
    return ",".join(f"{name}={value}" for name, value in cuboid.items())


class ScanAnalyst3dAgent(ScanAnalystAgent):
    """The scan analyst with a scan of the three-dimension cuboids too."""

    name = "scan_analyst_3d"

    def __init__(self) -> None:
        super().__init__(three_dimensions=True)


class ScanAnalystHourlyAgent(ScanAnalystAgent):
    """The scan analyst with an hourly check of every fall it keeps."""

    name = "scan_analyst_hourly"

    def __init__(self) -> None:
        super().__init__(hourly_checks=True)


VARIANTS = (ScanAnalystAgent, ScanAnalyst3dAgent, ScanAnalystHourlyAgent)
for _variant in VARIANTS:
    register_lab_agent(_variant.name, _variant)
