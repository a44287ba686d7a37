"""A step converts worse in a cuboid from a change point and stays down for weeks, until a fix ships or to the
window's end; and its gradual variant, which declines over about two weeks before it stays down.

A same-weekday median over the whole window would take such a fall into the baseline itself (from four weeks on,
most of a weekday's peers are down), so these rows are graded against the dates before the change point: each
date's baseline is the median of the same weekday over the dates before it (InjectionRecord.change_point,
episode.change_point_baseline). One row per date, as every incident that lasts several dates: a report that pins
the change point a date late loses that date, not the incident, and each row's values are that date's own.

Both are placed after the episode's other incidents (`deferred`), on a step that no other incident reports or
moves on any date up to the fix: the rows' keys stay unique, and no other incident sits in the dates the baseline
is read from. Their dates are held from the calendar's later draws (the benign look-alikes) without counting
against a weekday's limit; the incidents placed before may share them, on other steps.
Behind the truth wall: it reads the plan.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.catalog.published import FUNNEL_STEPS
from metric_tracker_rl.generation.anomalies.base import ChangePointRecord, step_index
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.cuboid import CuboidRule, draw_cuboid, own_z
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick

PERSISTENT_DATES = (14, 35)  # two to five weeks, inclusive, cut short by the window's end
BASELINE_WEEKS = 3  # the change point leaves this many weeks before it, so every weekday has three peers
RAMP_DATES = (10, 16)  # a gradual decline reaches its full fall over this many dates, inclusive
CUBOID_RULE = CuboidRule()
BASELINE_RULE = (
    f"its change point (its first date) lies at least {BASELINE_WEEKS} weeks into the window; each "
    "date's baseline_value is the median of the same weekday over the dates before its change point, "
    "not over the whole window; one row per date"
)


class PersistentRegression(IncidentKind):
    name = "persistent_regression"
    family = "rate_drop_from_median"
    entity_names = FUNNEL_STEPS
    segment_meaning = "a cuboid of one to three dimensions (no app version)"
    magnitude_meaning = "relative fall of the step's conversion in the cuboid"
    magnitude_range = (0.2, 0.4)
    magnitude_bounds = (0.0, 0.95)
    description = (
        f"a step converts {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} worse from a change "
        f"point for {PERSISTENT_DATES[0] // 7}-{PERSISTENT_DATES[1] // 7} weeks until a fix (or to the "
        "window's end)"
    )
    definition = (
        f"a step converts worse all day in a segment from a change point for {PERSISTENT_DATES[0] // 7}-"
        f"{PERSISTENT_DATES[1] // 7} weeks until a fix ships (or to the window's end); {BASELINE_RULE}"
    )
    deferred = True
    ramp_dates: tuple[int, int] | None = None  # the dates a decline takes to reach its full fall (None: at once)

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        days = _persistent_run(world, rng)
        entity = _free_step(world, self.entity_names, days[-1], rng)
        if entity is None:
            return []
        magnitude = self.draw_magnitude(world, rng)
        shares = fall_shares(
            len(days),
            None if self.ramp_dates is None else int(rng.integers(self.ramp_dates[0], self.ramp_dates[1] + 1)),
        )
        # Judged on the dates of its largest fall (a gradual decline cut by the window's end may not reach it all).
        judged = [day for day, share in zip(days, shares, strict=True) if share == max(shares)]
        step = step_index(entity)
        reach = world.plan.leaf_reach(judged)
        segment, boost = draw_cuboid(
            world,
            rng,
            CUBOID_RULE,
            judged,
            reach,
            lambda s: own_z(world, reach, s, judged, step, magnitude * max(shares)),
            max_boost=self.largest_fall(world) / magnitude,
            min_boost=self.magnitude_bounds[0] / magnitude,
        )
        magnitude *= boost
        world.calendar.hold(days)  # no benign change of the calendar's lands on its dates
        incidents = self.step_drop_over_dates(
            world, segment, days, entity, [magnitude * s for s in shares], self.name.replace("_", " ")
        )
        return [replace(i, record=ChangePointRecord.of(i.record, days[0])) for i in incidents]


class GradualDecline(PersistentRegression):
    name = "gradual_decline"
    magnitude_meaning = "relative fall of the step's conversion in the cuboid once the decline is complete"
    magnitude_range = (0.25, 0.45)
    description = (
        f"a step declines evenly over {RAMP_DATES[0]}-{RAMP_DATES[1]} dates to "
        f"{100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} worse from a change point, then stays "
        "there until a fix (or to the window's end)"
    )
    definition = (
        f"a step's conversion in a segment declines evenly from a change point over {RAMP_DATES[0]}-"
        f"{RAMP_DATES[1]} dates (the change point's date already a step down), then stays down until a fix "
        f"ships (or to the window's end), {PERSISTENT_DATES[0] // 7}-{PERSISTENT_DATES[1] // 7} weeks in "
        f"all; {BASELINE_RULE}"
    )
    ramp_dates = RAMP_DATES


def fall_shares(length: int, ramp: int | None) -> list[float]:
    """Each date's share of the full fall: all of it from the change point on, or, over a `ramp` of dates, a
    linear rise to it."""
    return [1.0 if ramp is None else min(1.0, (i + 1) / ramp) for i in range(length)]


def _persistent_run(world: SegmentWorld, rng: np.random.Generator) -> list[int]:
    """The incident's dates: a change point with BASELINE_WEEKS of dates before it and the shortest run after it,
    and a run of PERSISTENT_DATES from there, cut at the window's end."""
    num_days = world.plan.num_days
    length = int(rng.integers(PERSISTENT_DATES[0], PERSISTENT_DATES[1] + 1))
    start = int(rng.integers(7 * BASELINE_WEEKS, num_days - PERSISTENT_DATES[0] + 1))
    return list(range(start, min(start + length, num_days)))


def _free_step(world: SegmentWorld, steps: tuple[str, ...], last: int, rng: np.random.Generator) -> str | None:
    """A step no incident placed before reports or moves on any date up to `last` (its baseline's dates and its
    own); None when every step is busy."""
    busy = {entity for day, entities in world.busy_entities.items() if day <= last for entity in entities}
    free = [step for step in steps if step not in busy]
    return pick(free, rng) if free else None


register_incident_kind(PersistentRegression())
register_incident_kind(GradualDecline())
