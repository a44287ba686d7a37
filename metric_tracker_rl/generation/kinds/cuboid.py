"""Root causes as cuboids (the deep tier): an incident confined to a combination of one to three dimension values,
such as android ∧ IN ∧ new or web ∧ paid_social, drawn so that it is clear in its own cuboid but diluted in the
coarser views a one-dimension breakdown shows.

A kind that draws cuboids says which fields it may name (`CuboidRule`): a kind whose evidence is a block of hours
names cell fields only (platform, country, app version), since hours are served per cell and a block of hours in a
channel or user type could not be read as one (published.HOURLY_EVIDENCE_GRAIN); a kind tied to a release keeps its
platform and version. The cuboid's depth counts the dimensions it names, a version with its platform counting once.

How a cuboid is chosen: its depth is drawn from the dial's `min_depth` (1 but at abyss) to its `max_depth` (the reset's
`max_cuboid_depth`), each in proportion to itself; then CANDIDATES cuboids of that depth are drawn, and among those
whose expected signal in their own data is clear (the world's own-z floor, OWN_Z_MIN by default, from the plan's
expected counts: binomial noise, the day-to-day spread of its leaves and the aggregate's own) the one whose largest
share of a one-dimension parent (the value of one of its fields) is smallest is kept, so that every one-dimension
view dilutes it most. When none is clear, the next shallower depth is tried; when none of any depth is, the kind's
base (a release's version) or the clearest of some one-dimension cuboids. A candidate whose own data expects fewer
than MIN_EXPECTED arrivals on one of the incident's dates is never clear, nor is one whose block of hours the hourly
tools could not read (`block_readable`).
Behind the truth wall: it reads the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from metric_tracker_rl.catalog.published import MIN_HOURLY_DENOMINATOR
from metric_tracker_rl.catalog.tiers import CLEAR_OWN_Z
from metric_tracker_rl.generation.segment_plan import CuboidDial, SegmentWorld, pick
from metric_tracker_rl.world.funnel import RATE_NOISE_SIGMA
from metric_tracker_rl.world.segments import CELL_FIELDS, Segment
from metric_tracker_rl.world.traffic_split import (
    LEAF_RATE_SIGMA,
    LEAF_SHARE_SIGMA,
    SEGMENT_DAY_SIGMA,
    SEGMENT_RATE_SIGMA,
)

MAX_FALL = 0.6  # a step falls by at most this much when a small cuboid's fall is raised to be clear
CANDIDATES = 16  # cuboids drawn per incident; the most diluted clear one is kept
# Expected z-score of the incident in its own cuboid's daily data, where the tier does not set its own
# (tiers.SegmentedMix.own_z), and of an incident of hours in its hours at every tier: OWN_Z_MIN is clear beyond the
# chance level of a scan over every cuboid (some thousand tests per date and step reach about 4.5 by chance), with
# room for its own noise (a realised z-score falls about one below its expectation one time in six: from 7.5, it
# stays past 6.5 then). A kind whose magnitude scales its signal lowers a drawn magnitude that would stand out beyond
# OWN_Z_CEILING (times the episode's magnitude scale) in its own data to stand out that much: clear where it
# happened, and no more visible than that from coarser views.
OWN_Z_MIN, OWN_Z_CEILING = CLEAR_OWN_Z
MIN_EXPECTED = 25.0  # expected arrivals at the incident's step on each of its dates, at the least
# Each hour of an hourly incident's block, read in its cells' hours, expects this many arrivals at its step at the
# least: twice the hourly tools' floor (an hour under it is not judged at all), so that sampling and the hour's own
# noise leave one of the block's hours under that floor about once in a few hundred.
MIN_BLOCK_HOUR_EXPECTED = 2.0 * MIN_HOURLY_DENOMINATOR
# Relative day-to-day spread of one cell's leaf: its traffic (the cell's and the leaf's share noise) and a step's
# conversion (the cell's and the leaf's rate noise); a cuboid of n leaves with traffic averages n of them.
LEAF_TRAFFIC_SPREAD = float(np.hypot(SEGMENT_DAY_SIGMA, LEAF_SHARE_SIGMA))
LEAF_RATE_SPREAD = float(np.hypot(SEGMENT_RATE_SIGMA, LEAF_RATE_SIGMA))
# What every cuboid shares: the aggregate's own day-to-day spread around a same-weekday median (its day noise and
# trend for opens, its logit rate noise for a step), which no cuboid averages away.
COMMON_TRAFFIC_SPREAD = 0.05
COMMON_RATE_SPREAD = RATE_NOISE_SIGMA
# Fields a cuboid may name besides app_version, which only release-bound kinds name (with their platform).
FREE_FIELDS = ("platform", "country", "channel", "user_type")
ALL_TRAFFIC = Segment()


@dataclass(frozen=True)
class CuboidRule:
    """Which fields a kind's cuboid may name: `base` is named always (a release's platform and version), then
    fields from `may_name` (those in play) up to the depth; with `needs_one_of`, at least one of those fields.
    `hourly`: the kind's evidence is a block of hours, so it names only the fields hours are served for
    (CELL_FIELDS)."""

    may_name: tuple[str, ...] = FREE_FIELDS
    needs_one_of: tuple[str, ...] = ()
    hourly: bool = False

    def fields(self, world: SegmentWorld, base: Segment) -> tuple[str, ...]:
        """The fields a cuboid on `base` may add in this world."""
        return tuple(
            f
            for f in self.may_name
            if f in dial(world).fields and f not in base.named() and (f in CELL_FIELDS or not self.hourly)
        )


def dial(world: SegmentWorld) -> CuboidDial:
    """The world's cuboid dial: a cuboid is drawn only at a tier whose root causes are cuboids."""
    if world.cuboids is None:
        raise ValueError(f"tier {world.tier!r} keeps every kind on its fixed segments: it draws no cuboid")
    return world.cuboids


def cuboid_depth(segment: Segment) -> int:
    """The dimensions a cuboid names (a version with its platform counts once)."""
    named = segment.named()
    return len(named) - ("app_version" in named and "platform" in named)


def leaf_mask(world: SegmentWorld, segment: Segment) -> np.ndarray:
    """(S, K) the leaves inside a segment (kept on the world: a reset asks for the same ones many times)."""
    mask = world.leaf_masks.get(segment)
    if mask is None:
        plan = world.plan
        assert plan.split is not None, "cuboids need a world with leaves"
        cells = plan.layout.mask(segment.cell_part())
        mask = world.leaf_masks[segment] = np.outer(cells, plan.split.mask(segment))
    return mask


def own_z(
    world: SegmentWorld,
    reach: np.ndarray,
    segment: Segment,
    days: list[int],
    event: int,
    change: float,
    hours: tuple[int, int] | None = None,
) -> float:
    """Expected z-score of a relative `change` of the segment's metric on the weakest of `days`: the step from
    event `event` to the next (a conversion) or, with event -1, its app opens (a count). `reach` is the plan's
    leaf_reach() (on `days` at least) before the incident. With `hours` (an hourly incident, `change` its effect in
    them), a segment of cells is judged on those hours, which its hourly data shows (0 where they cannot be read:
    `block_readable`); one naming a daily-only field has daily data only, where the change is diluted by the rest
    of the day."""
    mask = leaf_mask(world, segment)
    if hours is not None and not segment.names_daily_field:
        if not block_readable(world, segment, days[0], hours, event):
            return 0.0
        hourly = world.hourly_reach(world.plan.cells(segment), days[0])[:, slice(*hours)].sum(axis=(0, 1))
        reach, mask, days = hourly[None, None, None, :], np.ones((1, 1), dtype=bool), [0]
    elif hours is not None:  # the share of the day's affected events (opens, or the step's conversions) in them
        hourly = world.hourly_reach(world.plan.cells(segment.cell_part()), days[0])
        moved = 0 if event < 0 else event + 1
        change *= float(hourly[:, slice(*hours), moved].sum() / max(hourly[..., moved].sum(), 1e-9))
    # (n, len(days), 5): the segment's leaves on its dates, as much of them as the episode's data holds
    mine = reach[:, :, days][mask] * world.observed_share
    if not _each_date_holds(mine[..., max(event, 0)], MIN_EXPECTED):
        return 0.0
    weakest = np.inf
    for at in range(len(days)):
        if event < 0:
            opens = float(mine[:, at, 0].sum())
            units = max(int((mine[:, at, 0] > 0).sum()), 1)
            relative_sd = np.sqrt(1.0 / max(opens, 1e-9) + LEAF_TRAFFIC_SPREAD**2 / units + COMMON_TRAFFIC_SPREAD**2)
        else:
            arrivals = float(mine[:, at, event].sum())
            rate = min(float(mine[:, at, event + 1].sum()) / max(arrivals, 1e-9), 1.0)
            units = max(int((mine[:, at, event] > 0).sum()), 1)
            relative_sd = np.sqrt(
                (1.0 - rate) / max(rate * arrivals, 1e-9) + LEAF_RATE_SPREAD**2 / units + COMMON_RATE_SPREAD**2
            )
        weakest = min(weakest, abs(change) / relative_sd)
    return float(weakest)


def block_readable(world: SegmentWorld, segment: Segment, day: int, hours: tuple[int, int], event: int) -> bool:
    """Whether a block of hours of a segment of cells on `day` reads hour by hour: each of its hours expects
    MIN_BLOCK_HOUR_EXPECTED arrivals at the step from event `event` (its app opens with -1), and as many of the
    day's other hours do, so that the day's typical hour (a median of the judged hours, as detect_funnel_break
    takes it) is at worst halfway between a stopped hour and one the incident left alone."""
    return _readable(hour_arrivals(world, segment, day, event), hours)


def readable_placements(
    world: SegmentWorld,
    segments: list[Segment],
    day: int,
    length: int,
    shortest: int,
    event: int,
    within: tuple[int, int],
) -> list[tuple[Segment, tuple[int, int]]]:
    """Every segment of `segments` and block of `length` hours inside `within` that reads hour by hour on `day`;
    where none does (a weekday's afternoon lull is quiet in a small segment, and a block longer than the day's
    other busy hours cannot be told from the day's typical hour), those of the longest block that does, no shorter
    than `shortest` ([] when none)."""
    arrivals = [(segment, hour_arrivals(world, segment, day, event)) for segment in segments]
    for hours in range(length, shortest - 1, -1):
        placements = [
            (segment, block) for segment, counts in arrivals for block in _readable_blocks(counts, hours, within)
        ]
        if placements:
            return placements
    return []


def _readable_blocks(arrivals: np.ndarray, length: int, within: tuple[int, int]) -> list[tuple[int, int]]:
    return [
        (start, start + length)
        for start in range(within[0], within[1] - length + 1)
        if _readable(arrivals, (start, start + length))
    ]


def hour_arrivals(world: SegmentWorld, segment: Segment, day: int, event: int) -> np.ndarray:
    """(24,) the segment's cells' expected arrivals at the step from `event` (its opens with -1), hour by hour."""
    arrivals: np.ndarray = world.hourly_reach(world.plan.cells(segment), day)[..., max(event, 0)].sum(axis=0)
    return arrivals * world.observed_share


def _readable(arrivals: np.ndarray, hours: tuple[int, int]) -> bool:
    inside = np.zeros(len(arrivals), dtype=bool)
    inside[slice(*hours)] = True
    enough = arrivals >= MIN_BLOCK_HOUR_EXPECTED
    return bool(enough[inside].all() and enough[~inside].sum() >= inside.sum())


def enough_data(reach: np.ndarray, mask: np.ndarray, days: list[int], event: int, least: float = MIN_EXPECTED) -> bool:
    """Whether the leaves in `mask` expect at least `least` arrivals at `event` on each of `days` (a cuboid too
    thin has dates with no value at all)."""
    return _each_date_holds(reach[:, :, days, event][mask], least)


def _each_date_holds(arrivals: np.ndarray, least: float) -> bool:
    """Whether leaves' expected arrivals (n, dates) sum to at least `least` on every date."""
    return bool((arrivals.sum(axis=0) >= least).all())


def one_dimension_parents(segment: Segment) -> list[Segment]:
    """The one-dimension views that hold the cuboid (platform=web, channel=...; a version with its platform)."""
    parents = []
    for field, value in segment.named().items():
        if field == "platform" and "app_version" in segment.named():
            continue  # a version's parent is the version itself
        parents.append(Segment(**{field: value}) if field != "app_version" else Segment(segment.platform, None, value))
    return parents


def parent_z(world: SegmentWorld, opens: np.ndarray, segment: Segment, clear: Callable[[Segment], float]) -> float:
    """The largest expected z-score the incident shows in a one-dimension view that holds it: the view's own
    z-score of the change (`clear`) diluted by the cuboid's share of the view's traffic."""
    mine = float(opens[leaf_mask(world, segment)].sum())
    largest = 0.0
    for parent in one_dimension_parents(segment):
        if parent == segment:
            continue
        share = mine / max(float(opens[leaf_mask(world, parent)].sum()), 1e-9)
        largest = max(largest, share * clear(parent))
    return largest


def draw_depth(world: SegmentWorld, rng: np.random.Generator, base: Segment) -> int:
    """A depth from the base's own (or the dial's shallowest, if deeper) to the episode's deepest, each in
    proportion to itself (a deeper cuboid is more often not clear and falls back to a shallower one)."""
    low = max(1, cuboid_depth(base), min(dial(world).min_depth, dial(world).max_depth))
    depths = np.arange(low, max(low, dial(world).max_depth) + 1)
    weights = depths.astype(float)
    return int(rng.choice(depths, p=weights / weights.sum()))


def draw_cuboid(
    world: SegmentWorld,
    rng: np.random.Generator,
    rule: CuboidRule,
    days: list[int],
    reach: np.ndarray,
    clear: Callable[[Segment], float],
    base: Segment = ALL_TRAFFIC,
    max_boost: float = 1.0,
    min_boost: float = 1.0,
) -> tuple[Segment, float]:
    """A cuboid for an incident on `days` (see the module's docstring) and the factor its magnitude is scaled by:
    `clear(segment)` is its expected z-score in its own data at the drawn magnitude, and a kind whose z-score is
    linear in its magnitude may allow raising it up to `max_boost` times so that a small cuboid is clear, and
    lowering it down to `min_boost` times so that a large one stands out no more than the ceiling (the candidates
    are then ranked by their one-dimension parents' share times that factor: the fall a parent shows).
    `reach`: the plan's leaf_reach() (on `days` at least) before the incident."""
    fields = rule.fields(world, base)
    opens = reach[:, :, days, 0].sum(axis=-1)
    view_z = cache(clear)  # the one-dimension views recur across candidates
    for depth in range(draw_depth(world, rng, base), 0, -1):  # a shallower cuboid when none of a depth is clear
        candidates = [
            _one_cuboid(world, rng, base, fields, depth - cuboid_depth(base), rule.needs_one_of)
            for _ in range(CANDIDATES)
        ]
        boosts = [scale_factor(clear(segment), world, min_boost, rule.hourly) for segment in candidates]
        clear_ones = [(segment, boost) for segment, boost in zip(candidates, boosts, strict=True) if boost <= max_boost]
        if clear_ones:
            return min(clear_ones, key=lambda pair: parent_z(world, opens, pair[0], view_z) * pair[1])
    if world.raise_unclear:
        return _raised(world, rng, fields, rule.needs_one_of, clear, base, max_boost, rule.hourly)
    # None is clear: the base (a release's version), or the clearest one-dimension cuboid.
    return (base if base.named() else _clearest(world, rng, fields, rule.needs_one_of, clear)), 1.0


def _raised(
    world: SegmentWorld,
    rng: np.random.Generator,
    fields: tuple[str, ...],
    needs_one_of: tuple[str, ...],
    clear: Callable[[Segment], float],
    base: Segment,
    max_boost: float,
    hourly: bool,
) -> tuple[Segment, float]:
    """Where no drawn cuboid is clear (world.raise_unclear): the base, or a one-dimension cuboid drawn among every
    one that is clear at the kind's largest change (the clearest where none is), its change raised to the floor
    as far as that allows."""
    if base.named():
        options = [base]
    else:
        named = [f for f in fields if f in needs_one_of] if needs_one_of else list(fields)
        options = [Segment(**{f: value}) for f in named for value in field_values(world, f)]
    floor = OWN_Z_MIN if hourly else world.own_z[0]
    zs = [clear(segment) for segment in options]
    clear_ones = [segment for segment, z in zip(options, zs, strict=True) if z * max_boost >= floor]
    segment = pick(clear_ones, rng) if clear_ones else options[int(np.argmax(zs))]
    return segment, min(scale_factor(clear(segment), world, 1.0, hourly), max_boost)


def scale_factor(z: float, world: SegmentWorld, min_boost: float, hourly: bool = False) -> float:
    """What a magnitude whose expected z-score is `z` is multiplied by: raised to reach the world's own-z floor,
    lowered (not below `min_boost`) to stand out no more than its ceiling x magnitude_scale (never below the
    floor). An incident whose evidence is a block of hours (`hourly`) keeps OWN_Z_MIN and OWN_Z_CEILING: its
    signature is a collapse in those hours, whatever the tier sets for all-day changes."""
    floor, ceiling = (OWN_Z_MIN, OWN_Z_CEILING) if hourly else world.own_z
    ceiling = max(floor, ceiling * world.magnitude_scale)
    if z < floor:
        return floor / max(z, 1e-9)
    return max(min(1.0, ceiling / z), min_boost)


def _clearest(
    world: SegmentWorld,
    rng: np.random.Generator,
    fields: tuple[str, ...],
    needs_one_of: tuple[str, ...],
    clear: Callable[[Segment], float],
) -> Segment:
    candidates = [_one_cuboid(world, rng, ALL_TRAFFIC, fields, 1, needs_one_of) for _ in range(CANDIDATES)]
    return max(candidates, key=clear)


def _one_cuboid(
    world: SegmentWorld,
    rng: np.random.Generator,
    base: Segment,
    fields: tuple[str, ...],
    extra: int,
    needs_one_of: tuple[str, ...],
) -> Segment:
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
        named[field] = pick(field_values(world, field), rng)
    return Segment(**named)


def field_values(world: SegmentWorld, field: str) -> tuple[str, ...]:
    """The values a field takes in this world (a cell field's from its layout, a daily-only one's from its split)."""
    if field in CELL_FIELDS:
        return world.plan.layout.values_of(field)
    assert world.plan.split is not None
    return next(d.values for d in world.plan.split.dimensions if d.field == field)
