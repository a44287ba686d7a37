"""Root causes as cuboids (the deep tier): an incident confined to a combination of one to three dimension values,
such as android ∧ IN ∧ new or web ∧ paid_social, drawn so that it is clear in its own cuboid but diluted in the
coarser views a one-dimension breakdown shows.

A kind that draws cuboids says which fields it may name (`CuboidRule`): a kind whose evidence is hourly keeps a
platform or country part, since hours exist per cell only; a kind tied to a release keeps its platform and
version. The cuboid's depth counts the dimensions it names, a version with its platform counting once.

How a cuboid is chosen: its depth is drawn from 1 to the episode's `max_cuboid_depth`; then CANDIDATES cuboids of
that depth are drawn, and among those whose expected signal in their own data is clear (OWN_Z_MIN, from the plan's
expected counts: binomial noise plus the day-to-day spread of a small segment) the one whose largest share of a
one-dimension parent (the value of one of its fields) is smallest is kept, so that every one-dimension view
dilutes it most. When none is clear, the next shallower depth is tried; when none of any depth is, the clearest.
Behind the truth wall: it reads the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from metric_tracker_rl.segment_plan import SegmentWorld, pick
from metric_tracker_rl.segments import (
    CELL_FIELDS,
    LEAF_RATE_SIGMA,
    LEAF_SHARE_SIGMA,
    SEGMENT_DAY_SIGMA,
    SEGMENT_RATE_SIGMA,
    Segment,
)

CANDIDATES = 8  # cuboids drawn per incident; the most diluted clear one is kept
OWN_Z_MIN = 5.0  # expected z-score of the incident in its own cuboid's daily data: clear
# Relative day-to-day spread of one cell's leaf: its traffic (the cell's and the leaf's share noise) and a step's
# conversion (the cell's and the leaf's rate noise); a cuboid of n leaves with traffic averages n of them.
LEAF_TRAFFIC_SPREAD = float(np.hypot(SEGMENT_DAY_SIGMA, LEAF_SHARE_SIGMA))
LEAF_RATE_SPREAD = float(np.hypot(SEGMENT_RATE_SIGMA, LEAF_RATE_SIGMA))
# Fields a cuboid may name besides app_version, which only release-bound kinds name (with their platform).
FREE_FIELDS = ("platform", "country", "channel", "user_type")
ALL_TRAFFIC = Segment()


@dataclass(frozen=True)
class CuboidRule:
    """Which fields a kind's cuboid may name: `base` is named always (a release's platform and version), then
    fields from `may_name` (those in play) up to the depth; with `needs_one_of`, at least one of those fields."""

    may_name: tuple[str, ...] = FREE_FIELDS
    needs_one_of: tuple[str, ...] = ()


def cuboid_depth(segment: Segment) -> int:
    """The dimensions a cuboid names (a version with its platform counts once)."""
    named = segment.named()
    return len(named) - ("app_version" in named and "platform" in named)


def leaf_mask(world: SegmentWorld, segment: Segment) -> np.ndarray:
    """(S, K) the leaves inside a segment."""
    plan = world.plan
    assert plan.split is not None, "cuboids need a world with leaves"
    cells = plan.layout.mask(replace(segment, channel=None, user_type=None))
    return np.outer(cells, plan.split.mask(segment))


def own_z(world: SegmentWorld, reach: np.ndarray, segment: Segment, days: list[int], event: int,
          change: float, hours: tuple[int, int] | None = None) -> float:
    """Expected z-score of a relative `change` of the segment's metric on the weakest of `days`: the step from
    event `event` to the next (a conversion) or, with event -1, its app opens (a count). `reach` is the plan's
    leaf_reach() before the incident. With `hours` (an hourly incident, `change` its effect within them), a
    segment of cells is judged on those hours, which its hourly data shows; one naming a daily-only field has
    daily data only, where the change is diluted by the rest of the day."""
    mask = leaf_mask(world, segment)
    if hours is not None and not segment.names_daily_field:
        hourly = world.hourly_reach(world.plan.cells(segment), days[0])[:, slice(*hours)].sum(axis=(0, 1))
        reach, mask, days = hourly[None, None, None, :], np.ones((1, 1), dtype=bool), [0]
    elif hours is not None:  # the share of the day's affected events (opens, or the step's conversions) in them
        hourly = world.hourly_reach(world.plan.cells(replace(segment, channel=None, user_type=None)), days[0])
        moved = 0 if event < 0 else event + 1
        change *= float(hourly[:, slice(*hours), moved].sum() / max(hourly[..., moved].sum(), 1e-9))
    weakest = np.inf
    for day in days:
        if event < 0:
            opens = float(reach[mask][:, day, 0].sum())
            units = max(int((reach[mask][:, day, 0] > 0).sum()), 1)
            relative_sd = np.sqrt(1.0 / max(opens, 1e-9) + LEAF_TRAFFIC_SPREAD ** 2 / units)
        else:
            arrivals = float(reach[mask][:, day, event].sum())
            rate = min(float(reach[mask][:, day, event + 1].sum()) / max(arrivals, 1e-9), 1.0)
            units = max(int((reach[mask][:, day, event] > 0).sum()), 1)
            relative_sd = np.sqrt((1.0 - rate) / max(rate * arrivals, 1e-9) + LEAF_RATE_SPREAD ** 2 / units)
        weakest = min(weakest, abs(change) / relative_sd)
    return float(weakest)


def parent_share(world: SegmentWorld, reach: np.ndarray, segment: Segment, days: list[int]) -> float:
    """The cuboid's largest share of the opens of one of its one-dimension parents (platform=web, channel=...)."""
    mine = float(reach[leaf_mask(world, segment)][:, days, 0].sum())
    largest = 0.0
    for field, value in segment.named().items():
        if field == "platform" and "app_version" in segment.named():
            continue  # a version's parent is the version itself
        parent = Segment(**{field: value}) if field != "app_version" else Segment(segment.platform, None, value)
        largest = max(largest, mine / max(float(reach[leaf_mask(world, parent)][:, days, 0].sum()), 1e-9))
    return largest


def draw_depth(world: SegmentWorld, rng: np.random.Generator, base: Segment) -> int:
    """A depth from the base's own to the episode's deepest, uniformly."""
    low = max(1, cuboid_depth(base))
    return int(rng.integers(low, max(low, world.max_cuboid_depth) + 1))


def draw_cuboid(world: SegmentWorld, rng: np.random.Generator, rule: CuboidRule, days: list[int],
                clear: Callable[[Segment], float], base: Segment = ALL_TRAFFIC) -> Segment:
    """A cuboid for an incident on `days` (see the module's docstring); `clear(segment)` is its expected z-score in
    its own data."""
    reach = world.plan.leaf_reach()
    fields = tuple(f for f in rule.may_name if f in world.cuboid_fields and f not in base.named())
    best: tuple[bool, float, float] | None = None
    chosen = base
    for depth in range(draw_depth(world, rng, base), 0, -1):  # a shallower cuboid when none of a depth is clear
        for _ in range(CANDIDATES):
            segment = _one_cuboid(world, rng, base, fields, depth - cuboid_depth(base), rule.needs_one_of)
            score = clear(segment)
            key = (score >= OWN_Z_MIN, -parent_share(world, reach, segment, days) if score >= OWN_Z_MIN else score,
                   score)
            if best is None or key > best:
                best, chosen = key, segment
        if best is not None and best[0]:
            break
    return chosen


def _one_cuboid(world: SegmentWorld, rng: np.random.Generator, base: Segment, fields: tuple[str, ...], extra: int,
                needs_one_of: tuple[str, ...]) -> Segment:
    """The base plus `extra` fields drawn from `fields` (one of `needs_one_of` among them, when the base has
    none), each with a value drawn uniformly."""
    extra = min(extra, len(fields))
    named = dict(base.named())
    chosen: list[str] = []
    needed = [f for f in needs_one_of if f in fields]
    if needs_one_of and not set(needs_one_of) & set(named) and needed:
        chosen.append(pick(needed, rng))
    while len(chosen) < max(extra, 1 if not named else 0):
        field = pick([f for f in fields if f not in chosen], rng)
        chosen.append(field)
    for field in chosen:
        named[field] = pick(_values(world, field), rng)
    return Segment(**named)


def _values(world: SegmentWorld, field: str) -> tuple[str, ...]:
    if field in CELL_FIELDS:
        return world.plan.layout.values_of(field)
    assert world.plan.split is not None
    return next(d.values for d in world.plan.split.dimensions if d.field == field)
