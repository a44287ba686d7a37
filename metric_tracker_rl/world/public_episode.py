"""What the analysis tools may read of an episode: its public data, counts or a raw event export, and the visible
task.

This module knows nothing of how an episode was made: it cannot import the injectors, the ground truth or
the grader, and a test walks the tool package's imports to keep it so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from metric_tracker_rl.catalog.published import CONVERSION_METRICS, COUNT_COLUMNS
from metric_tracker_rl.catalog.tiers import CONTEXT, COUNTS, EVENTS, SEGMENTS, DataKind, Holding
from metric_tracker_rl.catalog.validation import segment_problem
from metric_tracker_rl.sql.columns import ServedTable, SqlTable
from metric_tracker_rl.world.daily_panel import MetricPanel, build_daily_panel, build_panel
from metric_tracker_rl.world.funnel import HOURS, Calendar, FunnelData
from metric_tracker_rl.world.segments import CELL_FIELDS, Segment, SegmentedData

if TYPE_CHECKING:
    import pandas as pd


def hourly_grain_problem(segment: Segment) -> str:
    """Why a tool that reads hours cannot answer for a segment that names a daily-only dimension, and what can.

    An error, not the hours of the cells the segment falls in: those hold every channel's and user type's
    traffic, and a result scoped to a channel would be read as that channel's own hours."""
    daily = " or ".join(name for name in segment.named() if name not in CELL_FIELDS)
    cells = f"{', '.join(CELL_FIELDS[:-1])} and {CELL_FIELDS[-1]}"
    return (
        f"{segment.label()}: hourly counts exist per ({', '.join(CELL_FIELDS)}) cell only, not per {daily}, so "
        f"this tool takes {cells}; a segment's days by {daily}: compare_rate_to_median, compare_count_to_median, "
        "compare_segments, or daily_by_segment in query"
    )


@dataclass(frozen=True)
class Annotation:
    date: str
    kind: str
    note: str

    def as_dict(self) -> dict[str, str]:
        return {"date": self.date, "kind": self.kind, "note": self.note}


@dataclass(frozen=True)
class Counts:
    """The public data of a tier of counts: the whole funnel's counts, their daily numbers and the calendar notes,
    and at a segmented tier every traffic cell's counts, the releases and any context tables."""

    funnel: FunnelData
    panel: MetricPanel
    annotations: tuple[Annotation, ...]
    segments: SegmentedData | None = None
    kind: ClassVar[DataKind] = COUNTS
    max_sql_chars: ClassVar[int | None] = None  # the query tool's longest statement over them (None: the sandbox's)

    @property
    def dates(self) -> tuple[str, ...]:
        return self.funnel.dates

    @property
    def holds(self) -> frozenset[Holding]:
        if self.segments is None:
            return frozenset({COUNTS})
        return frozenset({COUNTS, SEGMENTS, *([CONTEXT] if self.segments.context is not None else [])})

    def dimension_values(self) -> dict[str, list[str]] | None:
        return None if self.segments is None else self.segments.dimension_values()

    def sql_tables(self) -> dict[str, ServedTable]:
        return {**sql_tables_of(self.funnel, self.annotations, self.segments)}


@dataclass(frozen=True)
class Events:
    """The public data of a raw event export: its window, its tables for the SQL tool (the events, side tables and
    dashboard, the largest packed; built once at reset, the event log they came from is not kept), each dimension's
    values for report rows, and the query tool's longest statement over them. No counts."""

    calendar: Calendar
    tables: dict[str, ServedTable]
    dimensions: dict[str, list[str]]
    max_sql_chars: int | None
    kind: ClassVar[DataKind] = EVENTS

    @property
    def dates(self) -> tuple[str, ...]:
        return self.calendar.iso_dates

    @property
    def holds(self) -> frozenset[Holding]:
        return frozenset({EVENTS})

    def dimension_values(self) -> dict[str, list[str]] | None:
        return self.dimensions

    def sql_tables(self) -> dict[str, ServedTable]:
        return dict(self.tables)


@dataclass(frozen=True)
class PublicEpisode:
    """Everything the tools may read: what its data are (`source`: counts or a raw event export) and the visible
    task. It holds no label and no injection record."""

    source: Counts | Events
    task: dict[str, Any]  # task_id, objective and the visible config
    # Tables the tools derive from the data on first use and keep for the episode (see
    # analysis_tools.registry.derived); nothing else writes here.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def dates(self) -> tuple[str, ...]:
        """The window's dates, whatever the data are."""
        return self.source.dates

    @property
    def holds(self) -> frozenset[Holding]:
        """What the data hold: a tool answers where they hold what it reads (analysis_tools.registry.ToolSpec)."""
        return self.source.holds

    @property
    def counts(self) -> Counts:
        """The counts; TypeError where the data are not counts (a tool over counts is never run there: it does not
        read what the episode holds)."""
        if not isinstance(self.source, Counts):
            raise TypeError(f"this episode's data are {self.source.kind}, not counts")
        return self.source

    @property
    def data(self) -> FunnelData:
        """The whole funnel's counts (the tools over counts read them)."""
        return self.counts.funnel

    @property
    def panel(self) -> MetricPanel:
        return self.counts.panel

    @property
    def annotations(self) -> tuple[Annotation, ...]:
        return self.counts.annotations

    @property
    def segments(self) -> SegmentedData | None:
        """The counts of every traffic cell (the segmented tiers); None without segments."""
        return self.counts.segments

    def daily_frame(self) -> pd.DataFrame:
        """One row per date: `date`, `weekday`, `weekend`, the five counts and every conversion rate (NaN where
        the denominator is 0). Built on first use and kept; pandas is imported only here, so the array-based
        tools never pay for it. Treat it as read-only: it is shared by every call of the episode."""
        frame: pd.DataFrame | None = self.memo.get("daily_frame")
        if frame is None:
            import pandas as pd

            data = self.data
            frame = pd.DataFrame(data.daily, columns=list(COUNT_COLUMNS))
            for metric in CONVERSION_METRICS:
                frame[metric.name] = frame[metric.numerator] / frame[metric.denominator].where(
                    frame[metric.denominator] > 0
                )
            frame.insert(0, "weekend", data.weekend)
            frame.insert(0, "weekday", list(data.weekdays))
            frame.insert(0, "date", list(data.dates))
            frame = self.memo["daily_frame"] = frame
        return frame

    def hourly_frame(self) -> pd.DataFrame:
        """One row per date and hour: `date`, `hour` and the five counts (read-only, like daily_frame)."""
        frame: pd.DataFrame | None = self.memo.get("hourly_frame")
        if frame is None:
            import pandas as pd

            data = self.data
            frame = pd.DataFrame(data.hourly.reshape(-1, len(COUNT_COLUMNS)), columns=list(COUNT_COLUMNS))
            frame.insert(0, "hour", list(range(HOURS)) * len(data.dates))
            frame.insert(0, "date", [date for date in data.dates for _ in range(HOURS)])
            frame = self.memo["hourly_frame"] = frame
        return frame

    def segment_values(self) -> dict[str, list[str]] | None:
        """Each dimension's values (platform, country, app_version, and at deep channel and user_type) where the
        data have dimensions (a raw event export's too); None without segments."""
        return self.source.dimension_values()

    def segment_view(self, segment: Segment) -> PublicEpisode:
        """The episode as one segment's funnel (the segmented tiers): the tools that read `data` and `panel` then
        answer for that segment, with its own baseline by the published rule. Built on first use and kept. ValueError
        names the valid values when the episode has no segments or no cell matches, and says what to read
        instead for a segment of a daily-only dimension (it has no hours)."""
        self._check(segment)
        if segment.names_daily_field:
            raise ValueError(hourly_grain_problem(segment))
        segment = segment.normalised()
        key = ("segment_view", segment)
        view = self.memo.get(key)
        if view is None:
            assert self.segments is not None
            try:
                data = self.segments.segment_funnel(segment)
            except ValueError as exc:  # e.g. an ios version named with platform android
                raise ValueError(f"{exc}: a version belongs to one platform (get_releases)") from None
            view = self.memo[key] = PublicEpisode(Counts(data, build_panel(data), self.annotations), self.task)
        return view

    def segment_daily(self, segment: Segment) -> np.ndarray:
        """(D, 5) daily counts of a segment of any of the episode's dimensions (the whole funnel's for the empty
        segment; at deep a channel's or user type's are the sum of its leaves). ValueError as segment_view."""
        if not segment.names_daily_field:
            return (self if segment.is_aggregate else self.segment_view(segment)).data.daily
        self._check(segment)
        assert self.segments is not None
        segment = segment.normalised()
        if not self.segments.leaf_mask(segment).any():
            raise ValueError(
                f"no traffic cell matches {segment.label()}: a version belongs to one platform (get_releases)"
            )
        return self.segments.segment_daily(segment)

    def segment_panel(self, segment: Segment) -> MetricPanel:
        """The published daily numbers of a segment of any of the episode's dimensions: the panel of its funnel
        (segment_view; the episode's own for the empty segment), or for a segment of a daily-only dimension the
        panel of its daily counts, which has no hourly mix. Built on first use and kept. ValueError as
        segment_view."""
        if not segment.names_daily_field:
            return (self if segment.is_aggregate else self.segment_view(segment)).panel
        key = ("segment_panel", segment.normalised())
        panel = self.memo.get(key)
        if panel is None:
            panel = self.memo[key] = build_daily_panel(self.segment_daily(segment))
        return panel

    def _check(self, segment: Segment) -> None:
        problem = segment_problem(segment.named(), self.segment_values())
        if problem is not None:
            raise ValueError(problem)

    def segment_tables(self) -> dict[str, pd.DataFrame]:
        """The segmented tables (daily_by_segment, hourly_by_segment, releases) at frontier; {} on the aggregate
        difficulties. Built on first use and kept, read-only like daily_frame."""
        if self.segments is None:
            return {}
        tables = self.memo.get("segment_tables")
        if tables is None:
            tables = self.memo["segment_tables"] = self.segments.tables()
        return tables

    def sql_tables(self) -> dict[str, ServedTable]:
        """The tables the SQL tool may query: a raw event export's own (some packed), else `sql_tables_of` the
        counts, notes and segments."""
        return self.source.sql_tables()

    def holds_resources(self) -> bool:
        """Whether a tool opened something for this episode that close() must release (the SQL connection)."""
        return any(callable(getattr(value, "close", None)) for value in list(self.memo.values()))

    def close(self) -> None:
        """Release what tools opened for this episode (values of `memo` with a close(), the SQL connection);
        the episode stays readable and a tool that needs one again opens a new one."""
        for key, value in list(self.memo.items()):
            if callable(getattr(value, "close", None)):
                del self.memo[key]
                value.close()


def sql_tables_of(
    data: FunnelData, annotations: Sequence[Annotation], segments: SegmentedData | None
) -> dict[str, SqlTable]:
    """The tables the SQL tool may query, as columns built fresh from the arrays (the sandbox copies them into
    its database): `daily` (date, weekday, weekend, the five counts), `hourly` (date, hour, the five counts) and
    `annotations` (date, kind, note); with segments (frontier) also the segment tables
    (`SegmentedData.sql_tables`). Columns are typed even when a table is empty (dates as datetime64, stored as
    DATE; text as VARCHAR), so the query tool's description is read off the tables of an empty episode. Another
    table becomes queryable by adding it here."""
    dates = np.array(data.dates, dtype="datetime64[D]")
    daily: SqlTable = {
        "date": dates,
        "weekday": np.array(data.weekdays, dtype=object),
        "weekend": data.weekend,
        **{column: data.daily[:, i] for i, column in enumerate(COUNT_COLUMNS)},
    }
    counts = data.hourly.reshape(-1, len(COUNT_COLUMNS))
    hourly: SqlTable = {
        "date": np.repeat(dates, HOURS),
        "hour": np.tile(np.arange(HOURS), len(dates)),
        **{column: counts[:, i] for i, column in enumerate(COUNT_COLUMNS)},
    }
    notes: SqlTable = {
        "date": np.array([a.date for a in annotations], dtype="datetime64[D]"),
        "kind": np.array([a.kind for a in annotations], dtype=object),
        "note": np.array([a.note for a in annotations], dtype=object),
    }
    tables = {"daily": daily, "hourly": hourly, "annotations": notes}
    if segments is not None:  # frontier: the segmented tables and the releases
        tables.update(segments.sql_tables())
    return tables
