"""How the audit's findability check (audit_findability.py) reads a data defect's trace: the episode's public tables
through the SQL tool's engine, each defect's profile features (TRACE_FEATURES: those its mechanism moves, as the check
knows each row's mechanism), and a date's features against the segment's clean dates and its siblings'. Written from
the published text and the mechanisms' own descriptions, never from an agent's code.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from lab.calibration import audit_findability_sql as sql
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld
from metric_tracker_rl.sql.engine import ROW_CAP, EpisodeTables, open_database
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.segments import Segment

TRACE_SDS = 4.0  # a trace's feature from its clean dates' median, in their (robust) standard deviations
# Where each defect's trace is, as the check reads it (it knows each row's mechanism, as the grader does): the
# profile features (audit_findability_sql.py) a faithful export keeps steady and the mechanism moves.
TRACE_FEATURES: dict[str, tuple[str, ...]] = {
    "background_opens": ("peak_hour_share", "open_only_share"),
    "batch_replay": ("twin_share",),
    "bot_farm": ("top_device_share", "open_only_share"),
    "client_sampling": ("skipped_sid_share", "first_touch_per_new"),
    "clock_skew": ("lag_hours", "behind_share", "restamped_share"),
    "consent_drop": ("denied_share",),
    "cookie_reset": ("no_open_share",),
    "currency_mislabel": ("eur_share", "log_value"),
    "debug_build": ("flagged_share",),
    "device_clock_ahead": ("ahead_share",),
    "event_renamed_silently": ("unplanned_share",),
    "ingestion_gap": ("no_open_share",),
    "inverted_rate": ("rate_jump",),
    "late_load": ("late_share",),
    "menu_prefire": ("prefire_share",),
    "minor_units": ("log_value",),
    "missing_rate_rows": ("rate_rows",),
    "pseudo_id_rotation": ("no_open_share",),
    "purchase_double_fire": ("multi_transaction_share",),
    "retry_duplicates": ("open_only_share",),
    "session_id_reset": ("no_open_share", "skipped_sid_share"),
    "stamped_behind": ("behind_share", "lag_hours"),
    "tracking_stopped": ("changelog_entries", "unplanned_share"),
    "transaction_retries": ("multi_transaction_share",),
    "truncated_batches": ("no_engagement_share",),
    "untagged_load_test": ("top_device_share", "log_value"),
}
TRACE_NEAR_DAYS = 7  # the clean dates a trace is also compared with: those within a week
SIBLINGS = 8  # the sibling segments a trace is compared with on its date, at most
MIN_SIBLING_SESSIONS = 20  # a sibling's dashboard sessions on the date, at least


# A metric as its counts give it: a count alone, a rate its numerator over its denominator.
class PublicTables:
    """An episode's public tables, read through the SQL tool's engine (its walls and its row cap)."""

    def __init__(self, world: WarehouseWorld) -> None:
        self.tables = EpisodeTables(open_database(), world.sql_tables())
        self.dates = window_calendar(world.log.num_days).iso_dates

    def by_day(self, statement: str) -> dict[str, np.ndarray]:
        """Each column of a statement whose first column is a date, as an array over the window's dates (NaN where
        the statement has no row)."""
        columns, rows, _ = self.tables.run(statement, 0, ROW_CAP)
        index = {date: i for i, date in enumerate(self.dates)}
        out = {name: np.full(len(self.dates), np.nan) for name in columns[1:]}
        for row in rows:
            day = index.get(str(row[0]))
            if day is not None:
                for name, cell in zip(columns[1:], row[1:], strict=True):
                    out[name][day] = np.nan if cell is None else float(cell)
        return out

    def close(self) -> None:
        self.tables.close()


def cached(tables: PublicTables, cache: dict[str, Any], statement: str) -> dict[str, np.ndarray]:
    if statement not in cache:
        cache[statement] = tables.by_day(statement)
    found: dict[str, np.ndarray] = cache[statement]
    return found


def profile_of(segment: Segment, tables: PublicTables, cache: dict[str, Any]) -> dict[str, np.ndarray]:
    """A segment's recorded profile by date: the events' features and the side tables'."""
    key = f"profile {segment.label()}"
    if key not in cache:
        cache[key] = {**tables.by_day(sql.profile_sql(segment)), **tables.by_day(sql.side_sql(segment.platform))}
    profile: dict[str, np.ndarray] = cache[key]
    return profile


def robust_sd(values: np.ndarray) -> float:
    """1.4826 times the median absolute deviation: a normal spread's standard deviation, which a holiday or a
    campaign on a clean date does not widen."""
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def standing(value: float, others: np.ndarray) -> float:
    """How far `value` stands from the median of `others`, in their standard deviations: robust where it can be (a
    defect's aftermath on the dates after it is no clean date's spread), the plain one where most of them are alike;
    infinite off a spread of none."""
    sd, gap = robust_sd(others) or float(np.std(others, ddof=1)), abs(value - float(np.median(others)))
    return gap / sd if sd > 1e-12 else (math.inf if gap > 1e-9 else 0.0)


def strongest_trace(
    profile: dict[str, np.ndarray], features: tuple[str, ...], clean: np.ndarray, day: int
) -> tuple[str, float]:
    """The feature of `features` that stands furthest on `day` from its clean dates (every one, or those within
    TRACE_NEAR_DAYS: a segment's profile drifts, as a version's early and late days do), and how far (standard
    deviations)."""
    near = clean & (np.abs(np.arange(len(clean)) - day) <= TRACE_NEAR_DAYS)
    return max(_strongest(profile, features, clean, day), _strongest(profile, features, near, day), key=lambda t: t[1])


def _strongest(
    profile: dict[str, np.ndarray], features: tuple[str, ...], clean: np.ndarray, day: int
) -> tuple[str, float]:
    best = ("", 0.0)
    for name in features:
        values = profile[name]
        usual = values[clean & np.isfinite(values)]
        if len(usual) < 3 or not math.isfinite(values[day]):
            continue
        sds = standing(float(values[day]), usual)
        if sds > best[1]:
            best = (name, sds)
    return best


def referable(clean: np.ndarray, sessions: np.ndarray) -> np.ndarray:
    """The clean dates a profile is read against: those with MIN_SIBLING_SESSIONS dashboard sessions or more, as a
    sibling must have (a version's last days, a handful of sessions each, give a profile no reference), or, in a
    segment that seldom has that many, half its busier clean dates' (their upper quartile)."""
    held = sessions[clean & (sessions > 0)]
    floor = min(MIN_SIBLING_SESSIONS, 0.5 * float(np.quantile(held, 0.75))) if len(held) else 0.0
    return clean & (sessions >= floor)


def trace_on(
    segment: Segment,
    features: tuple[str, ...],
    tables: PublicTables,
    clean: np.ndarray,
    cache: dict[str, Any],
    day: int,
) -> tuple[str, float]:
    """The strongest trace of `segment` on `day` in `features`: against its own clean dates that make a reference
    (`referable`), else its siblings'."""
    sessions = np.nan_to_num(cached(tables, cache, sql.dashboard_sql(segment))["sessions"])
    found = strongest_trace(profile_of(segment, tables, cache), features, referable(clean, sessions), day)
    if found[1] > TRACE_SDS:
        return found
    return max(found, sibling_trace(segment, features, tables, cache, day), key=lambda t: t[1])


def clean_date_traces(
    defects: dict[Segment, tuple[tuple[str, ...], np.ndarray]], tables: PublicTables, cache: dict[str, Any]
) -> tuple[int, int]:
    """The control: the clean dates of the defects' segments (each with MIN_SIBLING_SESSIONS dashboard sessions or
    more) read as a defect's date would be, itself left out of its clean dates, and how many show a trace."""
    checked = traced = 0
    for segment, (features, clean) in sorted(defects.items(), key=lambda item: item[0].label()):
        sessions = cached(tables, cache, sql.dashboard_sql(segment))["sessions"]
        for day in np.flatnonzero(clean & (np.nan_to_num(sessions) >= MIN_SIBLING_SESSIONS)):
            others = clean.copy()
            others[day] = False
            checked += 1
            traced += trace_on(segment, features, tables, others, cache, int(day))[1] > TRACE_SDS
    return checked, traced


def sibling_field(segment: Segment) -> str | None:
    """The field a defect's segment differs from its siblings in: its most specific one (none for all traffic)."""
    named = segment.named()
    return next((name for name in ("app_version", "country", "platform") if name in named), None)


def sibling_trace(
    segment: Segment, features: tuple[str, ...], tables: PublicTables, cache: dict[str, Any], day: int
) -> tuple[str, float]:
    """The profile feature of `segment` that stands furthest, on `day`, from the same feature in its siblings (up to
    SIBLINGS of them, the largest that date, each with MIN_SIBLING_SESSIONS or more), in their (robust) standard
    deviations: a defect that spans every clean date of its segment (a version's whole life) still stands apart
    from its peers on the date, as an analyst compares them."""
    field_name = sibling_field(segment)
    if field_name is None:
        return ("", 0.0)
    key = f"siblings {segment.label()}"
    if key not in cache:
        cache[key] = tables.tables.run(sql.sibling_sql(segment, field_name), 0, ROW_CAP)[1]
    date = tables.dates[day]
    names = [str(r[1]) for r in cache[key] if str(r[0]) == date and float(r[2] or 0) >= MIN_SIBLING_SESSIONS]
    profiles = [profile_of(replace(segment, **{field_name: name}), tables, cache) for name in names[:SIBLINGS]]
    own = profile_of(segment, tables, cache)
    best = ("", 0.0)
    for feature in features:
        values = own[feature]
        peers = np.array([p[feature][day] for p in profiles if feature in p and math.isfinite(p[feature][day])])
        if len(peers) < 3 or not math.isfinite(values[day]):
            continue
        sds = standing(float(values[day]), peers)
        if sds > best[1]:
            best = (f"{feature} (against {len(peers)} siblings)", sds)
    return best
