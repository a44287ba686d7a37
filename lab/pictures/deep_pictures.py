"""Regenerate docs/images/deep_*.svg, three pictures of the deep tier drawn from seeded deep episodes and their truth:

- deep_cuboid.svg: a three-dimension incident, clear in its own cuboid and diluted in each one-dimension view that
  holds it (each panel titled with the incident date's z-score, as metric_tracker_rl/generation/dilution.py reads it);
- deep_experiment_arm.svg: an experiment's arm, the step it targets moving as intended beside a step it breaks;
- deep_near_miss.svg: that first incident reported one level too coarse and one level too fine, with the segment
  credit the grader gives each (its coverage and purity of the incident's traffic on the date).

    uv run python -m lab.pictures.deep_pictures

Each picture comes from the first seed from PICTURE_SEED_BASE whose episode holds what it shows (the rules below:
deterministic); lab/tests/test_deep_pictures.py checks that the kept pictures are today's.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator
from dataclasses import dataclass

from lab.pictures.frontier_pictures import PICTURE_SEED_BASE, caption_height, caption_svg, tiled, write_pictures
from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.generation.dilution import (
    STANDS_OUT,
    CuboidIncident,
    cuboid_incidents,
    largest_one_dimension_z,
    one_dimension_views,
    stands_out,
)
from metric_tracker_rl.generation.episode import Episode, daily_series
from metric_tracker_rl.grading.grader import RowAssessment, assess_row, leaf_traffic_of
from metric_tracker_rl.serving.debugger.charts import Mark, line_panel_svg
from metric_tracker_rl.world.context import Experiment
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.segments import SEGMENT_FIELDS, Segment, SegmentedData

DIFFICULTY = "deep"
# The cuboid picture's incident stands out at least this much in its own cuboid (twice the dilution test's bar),
# and less than BURIED in each one-dimension view that holds it (half the bar).
CLEAR_IN_ITS_OWN, BURIED = 2 * STANDS_OUT, STANDS_OUT / 2


def seeded_episodes() -> Iterator[tuple[int, Episode]]:
    """Deep's episodes at its defaults, seed after seed from PICTURE_SEED_BASE."""
    seed = PICTURE_SEED_BASE
    while True:
        yield seed, build_episode(resolve_episode_config(seed=seed, difficulty=DIFFICULTY))
        seed += 1


def segments_of(episode: Episode) -> SegmentedData:
    data = episode.public.segments
    assert data is not None, "a deep episode is segmented"
    return data


def z_in(data: SegmentedData, row: MetricSubmissionRow, view: Segment) -> float:
    """The row's |z| on its date in one view (the dilution test's reading)."""
    return largest_one_dimension_z(data, row, [view])


def cuboid_name(segment: Segment) -> str:
    """A cuboid as the docs write it: its values joined by ∧."""
    return " ∧ ".join(segment.named().values())


def series_panel(data: SegmentedData, view: Segment, row: MetricSubmissionRow, title: str, marks: list[Mark]) -> str:
    values, _ = daily_series(data.segment_daily(view), row.entity_type, row.entity_name)
    return line_panel_svg(list(window_calendar(data.num_days).iso_dates), [float(v) for v in values], title, marks)


@dataclass(frozen=True)
class DilutedIncident:
    """The cuboid picture's incident: one date, three dimensions, a conversion rate, shown by no one-dimension view
    and clear in its own cuboid."""

    seed: int
    episode: Episode
    incident: CuboidIncident

    @property
    def row(self) -> MetricSubmissionRow:
        return self.incident.rows[0]


def holding_views(data: SegmentedData, segment: Segment) -> list[Segment]:
    """The one-dimension views that hold the whole cuboid (one per field it names; a version with its platform)."""
    return [view for view in one_dimension_views(data) if view.named().items() <= segment.named().items()]


def is_diluted(data: SegmentedData, incident: CuboidIncident) -> bool:
    """One date, three dimensions, a conversion rate: CLEAR_IN_ITS_OWN in its cuboid, under BURIED in each view
    that holds it, and shown by no one-dimension view at all (the dilution test)."""
    row = incident.rows[0]
    return (
        incident.depth == 3
        and len(incident.rows) == 1
        and row.entity_type == "conversion_rate"
        and z_in(data, row, incident.segment) >= CLEAR_IN_ITS_OWN
        and all(z_in(data, row, view) < BURIED for view in holding_views(data, incident.segment))
        and not stands_out(data, incident)
    )


def diluted_incident() -> DilutedIncident:
    """The first seed's such incident (the first of its episode's)."""
    for seed, episode in seeded_episodes():
        data = segments_of(episode)
        found = [incident for incident in cuboid_incidents(episode) if is_diluted(data, incident)]
        if found:
            return DilutedIncident(seed, episode, found[0])
    raise AssertionError("unreachable: the seeds never end")


def cuboid_picture(chosen: DilutedIncident) -> str:
    """The incident's metric in its own cuboid, then in each one-dimension view that holds the whole cuboid."""
    data, row, segment = segments_of(chosen.episode), chosen.row, chosen.incident.segment
    marks = [Mark(row.date, "incident", truth=True)]
    panels = [series_panel(data, segment, row, f"{cuboid_name(segment)}: z {z_in(data, row, segment):.1f}", marks)]
    panels += [
        series_panel(data, view, row, f"{view.label()}: z {z_in(data, row, view):.1f}", marks)
        for view in holding_views(data, segment)
    ]
    caption = (
        f"deep seed {chosen.seed}: {row.entity_name} on {row.date}, in the incident's cuboid (top left)",
        "and in each one-dimension view that holds it; each title gives the date's |z| against the",
        f"same-weekday median (the dilution test's bar: {STANDS_OUT:g})",
    )
    return tiled(panels, columns=2, caption=caption)


def first_labelled(dates: list[str], label: str, truth: bool) -> list[Mark]:
    """A band on each date, the label on the first only (adjacent labels would overlap)."""
    return [Mark(date, label if number == 0 else "", truth=truth) for number, date in enumerate(dates)]


def running_dates(experiment: Experiment, dates: list[str]) -> list[str]:
    return [date for date in dates if experiment.start_date <= date <= experiment.end_date]


def targeted_rows(experiment: Experiment, row: MetricSubmissionRow, dates: list[str]) -> list[MetricSubmissionRow]:
    """The experiment's target step in the incident's cuboid on each date it runs, read as a row would be."""
    return [
        row.model_copy(update={"entity_name": experiment.target_step, "date": date})
        for date in running_dates(experiment, dates)
    ]


def experiment_beside_incident() -> tuple[int, Episode, Experiment, CuboidIncident]:
    """The first seed's incident whose cuboid is an experiment's arm on the experiment's dates, on a step the
    experiment does not target, where the intended effect shows in the arm too (|z| of STANDS_OUT on a date)."""
    for seed, episode in seeded_episodes():
        data, dates = segments_of(episode), list(episode.public.dates)
        experiments = data.context.experiments if data.context is not None else ()
        for incident in cuboid_incidents(episode):
            row = incident.rows[0]
            for experiment in experiments:
                arm = Segment(experiment.platform, experiment.country, None, experiment.channel, experiment.user_type)
                if (
                    arm.normalised() == incident.segment.normalised()
                    and row.entity_name != experiment.target_step
                    and experiment.start_date <= row.date <= experiment.end_date
                    and any(
                        z_in(data, targeted, arm) >= STANDS_OUT for targeted in targeted_rows(experiment, row, dates)
                    )
                ):
                    return seed, episode, experiment, incident
    raise AssertionError("unreachable: the seeds never end")


def experiment_picture(seed: int, episode: Episode, experiment: Experiment, incident: CuboidIncident) -> str:
    """The arm's targeted step (the experiment's dates marked as context) beside its broken step (the incident's
    dates marked as truth)."""
    data, row = segments_of(episode), incident.rows[0]
    targeted = targeted_rows(experiment, row, list(episode.public.dates))
    panels = [
        series_panel(
            data,
            incident.segment,
            targeted[0],
            f"{experiment.target_step} (targeted)",
            first_labelled([each.date for each in targeted], experiment.experiment, truth=False),
        ),
        series_panel(
            data,
            incident.segment,
            row,
            f"{row.entity_name} (broken)",
            first_labelled([broken.date for broken in incident.rows], "incident", truth=True),
        ),
    ]
    caption = (
        f"deep seed {seed}: experiment {experiment.experiment}, {experiment.start_date} to "
        f"{experiment.end_date}, in its arm {cuboid_name(incident.segment)}:",
        "left, the step it targets moves as intended (no incident);",
        "right, a step it does not target falls (the incident, a row a date)",
    )
    return tiled(panels, columns=2, caption=caption)


@dataclass(frozen=True)
class NearMiss:
    """A report of the incident on another cuboid and what the grader makes of it."""

    name: str
    reported: Segment
    assessment: RowAssessment
    traffic: float  # T(R): the reported cuboid's app opens on the incident's date


def near_misses(chosen: DilutedIncident) -> list[NearMiss]:
    """The incident reported on its own cuboid, one level coarser (its last field left out) and one level finer
    (the unnamed field's value with the most of its traffic), every other field of the row right: each graded by
    the grader's own row assessment, whose quality is then the segment credit."""
    data, row, segment = segments_of(chosen.episode), chosen.row, chosen.incident.segment
    traffic = leaf_traffic_of(data, chosen.episode.public.dates)
    weights = traffic.on(row.date)

    def opens(cuboid: Segment) -> float:
        return math.fsum(weights[traffic.leaves_of(cuboid)])

    named = segment.named()
    coarser = Segment(**dict(list(named.items())[:-1]))
    finer = max(
        (
            Segment(**named, **{field: value})
            for field, values in data.dimension_values().items()
            if field not in named and field != "app_version"
            for value in values
        ),
        key=opens,
    )
    misses = []
    for name, reported in (("exact", segment), ("one level coarser", coarser), ("one level finer", finer)):
        report = row.model_copy(update={field: getattr(reported, field) for field in SEGMENT_FIELDS})
        misses.append(NearMiss(name, reported, assess_row(report, row, leaf_traffic=traffic), opens(reported)))
    return misses


REPORTED_COLOR, COVERED_COLOR = "#0969da", "#cf222e"
BAR_LEFT, BAR_RIGHT, ROW_HEIGHT, NEAR_MISS_WIDTH = 8, 632, 48, 640


def near_miss_picture(chosen: DilutedIncident) -> str:
    """One bar a report: the reported cuboid's app opens on the date, the part the incident holds in red, the
    incident's own extent outlined; above it the coverage, purity and segment credit the grader gives."""
    misses = near_misses(chosen)
    incident_opens = misses[0].traffic
    scale = (BAR_RIGHT - BAR_LEFT) / max(miss.traffic for miss in misses)
    row = chosen.row
    caption = (
        f"deep seed {chosen.seed}: the cuboid picture's incident ({row.entity_name}, {row.date})",
        "reported on three cuboids, every other field of the row right. A bar is the reported cuboid's",
        "app opens on the date; red, the incident's part of them; the dashed outline, the incident's own.",
    )
    top = caption_height(caption) + 8
    parts = [caption_svg(caption)]
    for number, miss in enumerate(misses):
        y = top + number * ROW_HEIGHT
        overlap = miss.assessment.overlap
        assert overlap is not None, "deep credits a segment by its overlap"
        covered = overlap.coverage * incident_opens
        parts.append(
            f'<text x="{BAR_LEFT}" y="{y + 12}" font-size="12" fill="#24292f">{miss.name}: '
            f"{html.escape(cuboid_name(miss.reported))} · coverage {overlap.coverage:.3f} × purity "
            f"{overlap.purity:.3f} = segment credit {miss.assessment.segment:.3f}</text>"
        )
        for width, color, extra in (
            (miss.traffic, REPORTED_COLOR, ' fill-opacity="0.25"'),
            (covered, COVERED_COLOR, ' fill-opacity="0.7"'),
            (incident_opens, "none", f' stroke="{COVERED_COLOR}" stroke-dasharray="3 2"'),
        ):
            parts.append(
                f'<rect x="{BAR_LEFT}" y="{y + 18}" width="{width * scale:.1f}" height="16" '
                f'fill="{color}"{extra}><title>{width:,.0f} app opens</title></rect>'
            )
    height = top + len(misses) * ROW_HEIGHT + 4
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {NEAR_MISS_WIDTH} {height}" '
        f'width="{NEAR_MISS_WIDTH}" height="{height}">{"".join(parts)}</svg>\n'
    )


def pictures() -> dict[str, str]:
    """Every deep picture by its file name."""
    chosen = diluted_incident()
    return {
        "deep_cuboid.svg": cuboid_picture(chosen),
        "deep_experiment_arm.svg": experiment_picture(*experiment_beside_incident()),
        "deep_near_miss.svg": near_miss_picture(chosen),
    }


def main() -> None:
    write_pictures(pictures())


if __name__ == "__main__":
    main()
