"""How the scan analyst reads its results, with the cut-offs of judgement a capable model applied at deep: which
rows of the cuboid scan are candidates, which hours are a block, what the context explains in its scope, and what
a sibling or child breakdown (compare_segments) says about a candidate's cuboid."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from lab.agents.scan_analyst_sql import STEP_OF_RATE

Row = dict[str, Any]
FIELDS = ("platform", "country", "app_version", "channel", "user_type")
SCAN_FIELDS = {"pl": "platform", "co": "country", "av": "app_version", "ch": "channel", "ut": "user_type"}
HOURLY_FIELDS = ("platform", "country", "app_version")  # the fields hourly counts are served by

# A date's strongest cuboid of a step is a candidate from this |z| on when it stands alone, from RUN_Z on when the
# step fell in an overlapping cuboid on the dates next to it too; either way it moved by MIN_SHARE of its baseline
# (a stable rate's MAD is so small that a few percent reach a large z in a small cuboid).
SINGLE_DATE_Z, RUN_Z, MIN_SHARE = 7.0, 5.0, 0.12
MIN_SHARE_3D = 0.2  # a three-field cuboid is small: its moves are read as material from this share on
# A breakdown's value moved with the candidate when its share-weighted change reached MOVED of the candidate's;
# the rest of a cuboid stayed put when it moved under STAYED of that value's change.
MOVED, STAYED = 0.5, 0.3
BLOCK_SLACK = 2  # hours of a block lie at most this far apart (a quiet hour between them is not judged)
MIN_BLOCK_HOURS = 3
REGRESSION_FALL, REGRESSION_KEEP, REGRESSION_FIRST = 0.85, 0.9, 3  # new/old rate on the rollout's first dates
MIN_VERSION_OPENS = 100
RUN_EDGE = 0.5  # a run's neighbouring date belongs to it when it fell by this share of the run's strongest fall


@dataclass
class Candidate:
    """The strongest cuboid of one date and rate (or count) in a scan, with the rows of its date and rate."""

    date: str
    rate: str
    cuboid: dict[str, str]
    z: float
    share: float  # its change as a share of its baseline
    rows: list[Row] = field(default_factory=list)


@dataclass
class Finding:
    """One incident to report: its family and key, its segment, its dates, and each date's values once read."""

    family: str
    entity_type: str
    entity_name: str
    segment: dict[str, str]
    dates: list[str]
    method: str
    strength: float = 0.0
    values: dict[str, Row] = field(default_factory=dict)
    release: bool = False  # a release's regression: its dates run from the rollout's first


def cuboid_of(row: Row, names: dict[str, str] | None = None) -> dict[str, str]:
    """The fields a row names (the scan's short column names or the tools' full ones), web's version left out."""
    names = names or {name: name for name in FIELDS}
    cuboid = {full: str(row[short]) for short, full in names.items() if row.get(short) is not None}
    if cuboid.get("app_version") == "web":
        cuboid.pop("app_version")
    return cuboid


def overlaps(first: dict[str, str], second: dict[str, str]) -> bool:
    """Whether two cuboids share traffic (no field names different values in them)."""
    return all(second.get(name, value) == value for name, value in first.items())


def nested(first: dict[str, str], second: dict[str, str]) -> bool:
    """Whether one cuboid lies inside the other."""
    return first.items() <= second.items() or second.items() <= first.items()


def shifted(date: str, days: int) -> str:
    return (dt.date.fromisoformat(date) + dt.timedelta(days=days)).isoformat()


def candidates(rows: list[Row]) -> list[Candidate]:
    """Each date and rate's strongest row of the scans, strongest first. A version's cuboid is left to the
    rollout check (its series mixes the dates before, during and after its rollout)."""
    by_key: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if row.get("z") is not None and row.get("med") and row.get("av") in (None, "web"):
            by_key[(str(row["date"]), str(row["k"]))].append(row)
    found = []
    for (date, rate), group in by_key.items():
        group.sort(key=lambda row: -abs(row["z"]))
        top = group[0]
        found.append(
            Candidate(
                date, rate, cuboid_of(top, SCAN_FIELDS), float(top["z"]), float(top["v"]) / float(top["med"]) - 1, group
            )
        )
    return sorted(found, key=lambda c: -abs(c.z))


def fall_runs(found: list[Candidate]) -> list[list[Candidate]]:
    """The step falls as runs, strongest first: a date's candidate joins the run of the same step on the date before
    when their cuboids are nested."""
    steps = sorted((c for c in found if c.rate in STEP_OF_RATE and c.z < 0), key=lambda c: c.date)
    runs: list[list[Candidate]] = []
    for candidate in steps:
        run = next(
            (
                run
                for run in runs
                if run[-1].rate == candidate.rate
                and run[-1].date == shifted(candidate.date, -1)
                and nested(run[-1].cuboid, candidate.cuboid)
            ),
            None,
        )
        if run is None:
            runs.append([candidate])
        else:
            run.append(candidate)
    return sorted(runs, key=lambda run: -max(abs(c.z) for c in run))


def stands_out(run: list[Candidate]) -> bool:
    """Whether a run's strongest date stands out of the noise (see SINGLE_DATE_Z)."""
    strongest = max(run, key=lambda c: abs(c.z))
    bar = SINGLE_DATE_Z if len(run) == 1 else RUN_Z
    return abs(strongest.z) >= bar and abs(strongest.share) >= (
        MIN_SHARE_3D if len(strongest.cuboid) >= 3 else MIN_SHARE
    )


def falls(found: list[Candidate]) -> list[list[Candidate]]:
    """The step falls worth a look: the runs that stand out, strongest first."""
    return [run for run in fall_runs(found) if stands_out(run)]


def broken_block(step: Row | None) -> bool:
    """Whether detect_funnel_break's row of a step shows a run of MIN_BLOCK_HOURS or more broken hours."""
    runs = (step or {}).get("broken_runs") or []
    return any(
        int(run["end_hour"]) - int(run["start_hour"]) >= MIN_BLOCK_HOURS for run in runs if isinstance(run, dict)
    )


def hour_list(text: Any) -> list[int]:
    return sorted(int(hour) for hour in str(text).split(",") if hour.strip() != "")


def block_of(hours: list[int]) -> list[int]:
    """The largest block of hours that sit together (across midnight too), skipping at most BLOCK_SLACK quiet
    hours between two of them; empty under MIN_BLOCK_HOURS. Hours moved by chance are scattered over the day."""
    if not hours:
        return []
    start = max(range(len(hours)), key=lambda i: (hours[i] - hours[i - 1]) % 24)  # after the widest gap
    ordered = hours[start:] + hours[:start]
    best: list[int] = []
    block = [ordered[0]]
    for hour in ordered[1:]:
        if (hour - block[-1]) % 24 <= BLOCK_SLACK:
            block.append(hour)
        else:
            best, block = max(best, block, key=len), [hour]
    best = max(best, block, key=len)
    return best if len(best) >= MIN_BLOCK_HOURS else []


def hourly_segment(rows: list[Row]) -> dict[str, str]:
    """The grain of a block seen per cell, platform and country: a platform or a country where two or more of its
    cells show it too, else the cell that shows it most."""
    cells = [row for row in rows if row.get("platform") and row.get("country")]
    for wide, narrow in (("platform", "country"), ("country", "platform")):
        for row in rows:
            if row.get(wide) and not row.get(narrow) and sum(cell[wide] == row[wide] for cell in cells) >= 2:
                return {wide: str(row[wide])}
    pool = cells or rows
    best = max(pool, key=lambda row: (row["hrs"], row.get("n") or row.get("a") or 0))
    return cuboid_of(best)


def contains_hour(partner: Row, hours: list[int]) -> bool:
    return any(int(partner["start_hour"]) <= hour < int(partner["end_hour"]) for hour in hours)


def _change_ratio(rows: list[Row], share: float) -> float:
    """The rows' traffic-weighted change as a share of their baseline, over `share` (1: as far as the candidate
    moved, the same way)."""
    delta = base = 0.0
    for row in rows:
        if row.get("baseline_value") is None or row.get("delta_value") is None or not row.get("app_open_share"):
            continue
        delta += float(row["app_open_share"]) * float(row["delta_value"])
        base += float(row["app_open_share"]) * abs(float(row["baseline_value"]))
    return (delta / base) / share if base > 0 and share else 0.0


def narrowed(rows: list[Row], dimensions: list[str], share: float) -> dict[str, str]:
    """The fields a children breakdown adds to a cuboid: a dimension whose value that moved most moved with the
    candidate (MOVED of its change) while the rest of the cuboid together moved under STAYED of that value's
    change (the fall does not ripple through the rest)."""
    added: list[tuple[float, str, str]] = []
    for dimension in dimensions:
        values = {str(row[dimension]) for row in rows if row.get(dimension) is not None}
        if len(values) < 2:
            continue
        ratios = {
            value: _change_ratio([row for row in rows if str(row.get(dimension)) == value], share) for value in values
        }
        top = max(ratios, key=lambda value: ratios[value])
        rest = _change_ratio([row for row in rows if str(row.get(dimension)) != top], share)
        if ratios[top] >= MOVED and rest < STAYED * ratios[top]:
            added.append((ratios[top], dimension, top))
    return {dimension: value for _, dimension, value in sorted(added, reverse=True)}  # the clearest first


def widened(rows: list[Row], cuboid: dict[str, str], share: float) -> list[str]:
    """The fields of a cuboid a siblings breakdown drops: those whose other values (with the cuboid's values of
    the other fields) moved with it, together, by MOVED of its change."""
    dropped = []
    for name, value in cuboid.items():
        others = [
            row
            for row in rows
            if str(row.get(name)) != value
            and all(str(row.get(other)) == kept for other, kept in cuboid.items() if other != name and other in row)
        ]
        if others and _change_ratio(others, share) >= MOVED:
            dropped.append(name)
    return dropped


def explained_by_context(cuboid: dict[str, str], step: str, date: str, context: list[Row]) -> bool:
    """Whether the context explains a step's move in a cuboid on a date, read in its scope: an experiment's
    intended effect (its target step, its dates, the cuboid nested with its arm), or a campaign's extra
    low-intent traffic inside a wider cuboid (its own channel and country keep their conversion)."""
    for item in context:
        if not str(item["first_date"]) <= date <= str(item.get("last_date") or item["first_date"]):
            continue
        scope = {
            name: str(item[name])
            for name in ("platform", "country", "channel", "user_type")
            if item.get(name) is not None
        }
        if item["kind"] == "experiment" and item["step"] == step and nested(cuboid, scope):
            return True
        if item["kind"] == "campaign" and overlaps(cuboid, scope) and not scope.items() <= cuboid.items():
            return True
    return False


def holiday_in(cuboid: dict[str, str], date: str, context: list[Row]) -> bool:
    """Whether a country's holiday (the holidays table) falls on the date inside the cuboid's traffic."""
    return any(
        item["kind"] == "holiday"
        and str(item["first_date"]) == date
        and (item.get("country") is None or cuboid.get("country") in (None, str(item["country"])))
        for item in context
    )


def regression_dates(rows: list[Row], rate: str, release: Row, dates: list[str]) -> list[str]:
    """The dates a release broke a step on its new version: from the rollout's first date for as long as the new
    version converted well below the old ones (a fall on one of its first dates, kept date after date)."""
    num, den = {"r1": ("m", "a"), "r2": ("c", "m"), "r3": ("o", "c"), "r4": ("p", "o")}[rate]
    platform, version, start = str(release["platform"]), str(release["name"]), str(release["first_date"])
    ratios: dict[str, float] = {}
    for date in {str(row["date"]) for row in rows if str(row["platform"]) == platform}:
        day = [row for row in rows if str(row["date"]) == date and str(row["platform"]) == platform]
        new = [row for row in day if str(row["app_version"]) == version]
        old = [row for row in day if str(row["app_version"]) != version]
        if new and old and new[0]["a"] >= MIN_VERSION_OPENS and sum(r["a"] for r in old) >= MIN_VERSION_OPENS:
            old_rate = sum(r[num] for r in old) / max(sum(r[den] for r in old), 1)
            new_rate = new[0][num] / max(new[0][den], 1)
            if old_rate > 0:
                ratios[date] = new_rate / old_rate
    window = [date for date in dates if date >= start][:7]
    first = next(
        (i for i, date in enumerate(window[:REGRESSION_FIRST]) if ratios.get(date, 1.0) <= REGRESSION_FALL), None
    )
    if first is None:
        return []
    last = first
    while last + 1 < len(window) and ratios.get(window[last + 1], 1.0) <= REGRESSION_KEEP:
        last += 1
    return window[: last + 1] if last > first else []


def run_extent(series: list[Row], ident: str, dates: list[str]) -> list[str]:
    """A run's dates, grown to the neighbouring dates whose fall reached RUN_EDGE of its strongest."""
    falls_by_date = {
        str(row["date"]): float(row["obs"]) / float(row["base"]) - 1
        for row in series
        if row["id"] == ident and row.get("obs") is not None and row.get("base")
    }
    strongest = min((falls_by_date.get(date, 0.0) for date in dates), default=0.0)
    kept = set(dates)
    for direction in (-1, 1):
        date = (min if direction < 0 else max)(dates)
        while falls_by_date.get(shifted(date, direction), 0.0) <= RUN_EDGE * strongest < 0:
            date = shifted(date, direction)
            kept.add(date)
    return sorted(kept)
