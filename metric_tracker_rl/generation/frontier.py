"""The `frontier` episode: a segmented world, incidents confined to a segment, and benign look-alikes.

Generation mirrors the aggregate tiers (plan, edit the plan, draw counts), per traffic cell:
1. `segmented_plan` splits the aggregate plan of funnel.baseline_plan (an eight-week window with a trend and a
   holiday calendar) into cells (platform, country, app version; see segments.py): each cell's traffic is its
   platform and country share times its version's rollout share times its own day noise, and its step rates are
   the aggregate's times its platform and country factors (times its own noise). At a tier with daily-only
   dimensions (deep), each cell also gets its leaves' shares and conversion factors, with their own day noise.
2. Incidents and benign fluctuations edit the plan of the cells of one segment: each is a registered kind
   (metric_tracker_rl/generation/kinds/), most of which run a family's injector on each cell's view of the plan,
   all from one stream, so every cell of the segment gets the same hours. At deep a root cause is a cuboid of one
   to three dimensions (kinds/cuboid.py), edited through SegmentWorld.scale_step and scale_traffic where
   it names channel or user type, and the last `concurrency` incidents share a date with an earlier one.
3. `draw_segmented_counts` draws every cell's counts in one vectorised Poisson call, then applies extra opens,
   duplicates, clock shifts and lost events per touched cell and date, each from its own named stream. With
   leaves, it then splits each cell's daily counts among its leaves (`split_leaves`).

Every random stream is derived by name (seeding.derive_rng): the world from "frontier-world", each cell's noise
from "segment/<platform>/<country>/<version>", the counts from "segment-noise" and "segment-draw", the leaves'
noise from "segment-leaves" and their split from "segment-split" (per touched cell and date: "segment-resplit").

Ground truth comes from the injection records; each expected row names the incident's segment, and its values are
read back from that segment's final data with the published baseline rule (daily_panel.build_panel).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from metric_tracker_rl.generation.anomalies.base import draw_window, step_index
from metric_tracker_rl.generation.kinds import (
    BENIGN_KIND_REGISTRY,
    INCIDENT_KIND_REGISTRY,
    KIND_FAMILY,
    FamilyOnSegment,
    IncidentKind,
    SegmentFluctuation,
    SegmentIncident,
)
from metric_tracker_rl.generation.kinds.level_shift import LevelShift
from metric_tracker_rl.generation.kinds.partner_payment_failure import partner_segments
from metric_tracker_rl.generation.segment_plan import Calendar, SegmentedPlan, SegmentWorld, pick
from metric_tracker_rl.spec.published import FRONTIER_WINDOW_DAYS, FUNNEL_STEPS
from metric_tracker_rl.spec.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.spec.tasks import EpisodeConfig, incident_count
from metric_tracker_rl.spec.tiers import TIERS, Tier
from metric_tracker_rl.world.context import (
    EMPTY_NOTICES,
    PARTNER_NOTICE_STATUS,
    ContextRow,
    ContextTables,
    Experiment,
    Holiday,
    PartnerNotice,
    partner_of,
)
from metric_tracker_rl.world.funnel import (
    HOURS,
    N_EVENTS,
    N_STEPS,
    WEEKEND_HOUR_SHARE,
    baseline_plan,
    stage_means,
    window_calendar,
)
from metric_tracker_rl.world.public_episode import Annotation
from metric_tracker_rl.world.segments import (
    HOLIDAY_TRAFFIC_FACTOR,
    LEAF_RATE_SIGMA,
    LEAF_SHARE_SIGMA,
    MOBILE_PLATFORMS,
    ROLLOUT_STAGES,
    SEGMENT_DAY_SIGMA,
    SEGMENT_RATE_SIGMA,
    LeafSplit,
    Release,
    SegmentedData,
    World,
    cell_layout,
    cell_mix,
    day_sums,
    holiday_days,
    version_labels,
    version_shares,
    world_of,
)

FRONTIER_TREND = (-0.002, 0.006)  # extra daily growth of the whole funnel, drawn per episode
FIRST_RELEASE_DAYS = (4, 12)  # the first release of each mobile platform starts in this range
# The second starts three weeks or more after the first (each version carries its platform for three weeks, so a
# version-level baseline rests on real traffic) and leaves three weeks after its own start.
RELEASE_GAP, LAST_RELEASE_TAIL_DAYS = 21, 22


def draw_releases(key: EpisodeKey, num_days: int = FRONTIER_WINDOW_DAYS) -> tuple[int, tuple[Release, ...]]:
    """The version numbering and the release schedule of an episode (public once drawn)."""
    latest = num_days - LAST_RELEASE_TAIL_DAYS
    rng = derive_rng(key, "frontier-releases")
    base_minor = int(rng.integers(10, 40))
    labels = version_labels(base_minor)
    releases = []
    for platform in MOBILE_PLATFORMS:
        first = int(rng.integers(FIRST_RELEASE_DAYS[0], FIRST_RELEASE_DAYS[1] + 1))
        second = int(rng.integers(first + RELEASE_GAP, latest + 1))
        releases += [Release(platform, labels[1], first), Release(platform, labels[2], second)]
    return base_minor, tuple(releases)


def segmented_plan(key: EpisodeKey, num_days: int = FRONTIER_WINDOW_DAYS, world: World | None = None
                   ) -> SegmentedPlan:
    """The expected traffic and conversion of every cell, date and hour, before any incident or fluctuation.
    `world`: the tier's dimensions (None: frontier's)."""
    world = world or world_of(TIERS["frontier"].dimensions)
    plan = baseline_plan(key, num_days)
    trend = derive_rng(key, "frontier-world").uniform(*FRONTIER_TREND)
    aggregate = plan.traffic * (1.0 + trend * np.arange(num_days))[:, None]
    for day in holiday_days(num_days):
        aggregate[day] = aggregate[day].sum() * HOLIDAY_TRAFFIC_FACTOR * WEEKEND_HOUR_SHARE
    base_minor, releases = draw_releases(key, num_days)
    layout = cell_layout(base_minor, world.country.values)
    share, factors = cell_mix(layout, world.country)
    noise = np.empty((layout.size, num_days, 1 + N_STEPS))
    for cell, name in enumerate(zip(layout.platforms, layout.countries, layout.versions, strict=True)):
        noise[cell] = derive_rng(key, "segment/" + "/".join(name)).standard_normal((num_days, 1 + N_STEPS))
    cell_share = share[:, None] * version_shares(layout, releases, num_days) * np.exp(SEGMENT_DAY_SIGMA * noise[..., 0])
    traffic = cell_share[..., None] * aggregate[None]
    rate_factor = factors[:, None, :] * np.exp(SEGMENT_RATE_SIGMA * noise[..., 1:])  # (S, D, 4)
    step_rates = plan.step_rates[None] * rate_factor[:, :, None, :]
    np.minimum(step_rates, 0.995, out=step_rates)
    cells = layout.size
    segmented = SegmentedPlan(layout=layout, releases=releases, traffic=traffic, step_rates=step_rates,
                              extra_opens=np.zeros((cells, num_days, HOURS)),
                              duplicate_factor=np.ones((cells, num_days, HOURS, N_EVENTS)),
                              hour_shift=np.zeros((cells, num_days), dtype=np.int64),
                              ingested_fraction=np.ones((cells, num_days, HOURS)))
    if world.daily:
        add_leaves(segmented, world.leaf_split, key)
    return segmented


def add_leaves(plan: SegmentedPlan, split: LeafSplit, key: EpisodeKey) -> None:
    """Each cell's leaves: a leaf's share of its cell's traffic is its dimensions' shares times its own day noise
    (renormalised, so a cell's traffic is what the kinds edit), and its step rates are its cell's times its
    dimensions' factors times its own noise. A leaf's expected reach of event e is its share times the product of
    its factors up to e times its cell's reach (so a leaf's conversion follows its cell's hour by hour)."""
    cells, days, leaves = plan.layout.size, plan.num_days, split.size
    noise = derive_rng(key, "segment-leaves").standard_normal((cells, leaves, days, 1 + N_STEPS))
    shares = split.shares()[None, :, None] * np.exp(LEAF_SHARE_SIGMA * noise[..., 0])
    shares /= shares.sum(axis=1, keepdims=True)
    rate_factors = split.rate_factors()[None, :, None, :] * np.exp(LEAF_RATE_SIGMA * noise[..., 1:])
    reach = np.ones((cells, leaves, days, N_EVENTS))
    reach[..., 1] = rate_factors[..., 0]
    for step in range(1, N_STEPS):  # a cumulative product (np.cumprod is slow along so short an axis)
        np.multiply(reach[..., step], rate_factors[..., step], out=reach[..., step + 1])
    plan.split, plan.leaf_shares, plan.leaf_reach_factors = split, shares, reach


def _cell_stop_means(plan: SegmentedPlan) -> tuple[np.ndarray, np.ndarray | None]:
    """(S, D, 24, 5) expected stops per event of every cell (its leaves' together where it has leaves), and with
    leaves (S, D, 5) each cell's expected reach of every event per date before its leaves' factors."""
    if plan.split is None:
        return stage_means(plan.traffic, plan.step_rates), None
    assert plan.leaf_shares is not None and plan.leaf_reach_factors is not None
    reach = np.empty((N_EVENTS, *plan.traffic.shape))  # expected opens that reach each event, event axis first
    reach[0] = plan.traffic
    for step in range(N_STEPS):
        np.multiply(reach[step], plan.step_rates[..., step], out=reach[step + 1])
    daily_reach = np.moveaxis(reach.sum(axis=-1), 0, -1)  # (S, D, 5)
    mix = np.einsum("skd,skde->esd", plan.leaf_shares, plan.leaf_reach_factors)  # the leaves' mean factor
    reach *= mix[..., None]
    reach[:N_STEPS] -= reach[1:]
    np.maximum(reach, 0.0, out=reach)
    return np.moveaxis(reach, 0, -1), daily_reach


def draw_segmented_counts(plan: SegmentedPlan, key: EpisodeKey) -> SegmentedData:
    """Integer counts of every cell: one Poisson draw over all cells (stops per event, as funnel.stage_means
    explains), then, for each cell and date whose plan holds extra opens, duplicates, a clock shift or lost
    events, those from the stream "segment-draw" of that cell and date. With leaves, each cell's daily counts are
    then split among them (split_leaves)."""
    means, daily_reach = _cell_stop_means(plan)
    stops = derive_rng(key, "segment-noise").poisson(means)
    hourly = stops
    for event in range(N_STEPS - 1, -1, -1):
        hourly[..., event] += hourly[..., event + 1]
    drawn = day_sums(hourly) if daily_reach is not None else None  # before the post-draw effects
    extra = np.asarray(plan.extra_opens.any(axis=2))
    surplus = np.asarray((plan.duplicate_factor != 1.0).any(axis=(2, 3)))
    loss = np.asarray((plan.ingested_fraction < 1.0).any(axis=2))
    shifted = np.asarray(plan.hour_shift != 0)
    for cell, day in zip(*np.nonzero(extra | surplus | loss | shifted), strict=True):
        rng = derive_rng(key, "segment-draw", int(cell) * plan.num_days + int(day))
        counts = hourly[cell, day]
        if extra[cell, day]:
            counts[:, 0] += rng.poisson(plan.extra_opens[cell, day])
        if surplus[cell, day]:
            counts += rng.poisson(counts * (plan.duplicate_factor[cell, day] - 1.0))
        if shifted[cell, day]:
            counts[:] = np.roll(counts, int(plan.hour_shift[cell, day]), axis=0)
        if loss[cell, day]:
            counts[:] = rng.binomial(counts, plan.ingested_fraction[cell, day][:, None])
    if drawn is None or daily_reach is None:
        return SegmentedData(layout=plan.layout, releases=plan.releases, hourly=hourly)
    assert plan.split is not None
    return SegmentedData(layout=plan.layout, releases=plan.releases, hourly=hourly, split=plan.split,
                         leaf_daily=split_leaves(plan, daily_reach, drawn, day_sums(hourly), key))


def split_leaves(plan: SegmentedPlan, cell_reach: np.ndarray, drawn: np.ndarray, final: np.ndarray,
                 key: EpisodeKey) -> np.ndarray:
    """(S x K, D, 5) daily counts of the leaves, summing to their cell's `final` daily counts.

    Independent Poisson counts, given their sum, are multinomial in proportion to their means: so each cell's
    drawn stops at each event (`drawn`, before the post-draw effects) are split among its leaves in one
    multinomial draw (one binomial call per leaf over every cell, date and event), in proportion to each leaf's
    expected stops that day. `cell_reach` (S, D, 5): each cell's expected reach of every event per date, before
    its leaves' factors. Where a post-draw effect then changed a cell's day (bots, duplicates, lost events), each
    event's change is spread over the leaves in proportion to their counts (added multinomially, removed without
    replacement)."""
    assert plan.leaf_shares is not None and plan.leaf_reach_factors is not None
    leaf_reach = plan.leaf_shares[..., None] * plan.leaf_reach_factors * cell_reach[:, None]  # (S, K, D, 5)
    weights = np.empty_like(leaf_reach)  # (S, K, D, 5): each leaf's expected stops at each event
    weights[..., -1] = leaf_reach[..., -1]
    np.subtract(leaf_reach[..., :-1], leaf_reach[..., 1:], out=weights[..., :-1])
    np.maximum(weights, 0.0, out=weights)
    stops = drawn.copy()
    stops[..., :-1] -= drawn[..., 1:]
    rng = derive_rng(key, "segment-split")
    leaves = np.empty(weights.shape, dtype=np.int64)
    left, weight_left = stops, weights.sum(axis=1)
    for leaf in range(weights.shape[1] - 1):  # a multinomial draw as a chain of binomials
        chance = np.divide(weights[:, leaf], weight_left, out=np.zeros_like(weight_left), where=weight_left > 0)
        leaves[:, leaf] = rng.binomial(left, np.minimum(chance, 1.0))
        left = left - leaves[:, leaf]
        weight_left = weight_left - weights[:, leaf]
    leaves[:, -1] = left  # the last leaf takes the rest (all of it where no leaf expects any)
    leaves = np.moveaxis(leaves, 1, -1)  # (S, D, 5, K)
    for event in range(N_STEPS - 1, -1, -1):  # counts per leaf: each event's stops and those past it
        leaves[..., event, :] += leaves[..., event + 1, :]
    uniform = np.full(weights.shape[1], 1.0 / weights.shape[1])
    for cell, day in zip(*np.nonzero((final != drawn).any(axis=-1)), strict=True):
        rng = derive_rng(key, "segment-resplit", int(cell) * plan.num_days + int(day))
        for event in range(N_EVENTS):
            counts, change = leaves[cell, day, event], int(final[cell, day, event] - drawn[cell, day, event])
            if change > 0:
                held = counts.sum()
                counts += rng.multinomial(change, counts / held if held else uniform)
            elif change < 0:
                counts[:] = rng.multivariate_hypergeometric(counts, int(counts.sum()) + change)
    cells, days, _, k = leaves.shape
    return np.ascontiguousarray(np.moveaxis(leaves, -1, 1)).reshape(cells * k, days, N_EVENTS)


# --- incidents and benign look-alikes -------------------------------------------------------------------

# Each kind is a module of metric_tracker_rl/generation/kinds/ (its mechanism, the family and entities it is reported
# as, its magnitude range). Sizes overlap on purpose (no published threshold separates incidents from look-alikes),
# and none is published: the signature decides (which hours, which segment, which metrics move together, when it
# started).
FALLBACK_KIND = "segment_outage"  # a single-date segment outage always fits an eight-week window


@dataclass(frozen=True)
class FrontierWorld:
    """What build_frontier_episode makes before it turns the records into ground truth."""

    data: SegmentedData
    incidents: tuple[SegmentIncident, ...]
    fluctuations: tuple[SegmentFluctuation, ...]
    annotations: tuple[Annotation, ...]


def incident_kinds(config: EpisodeConfig, tier: Tier, rng: np.random.Generator) -> list[IncidentKind]:
    """The kinds of the episode's incidents: the tier's kinds (or the reset's choice) in a shuffled cycle (mixed),
    those reported as one family, or none. At a cuboid tier, a kind whose segment needs a field out of play is
    left out."""
    if config.scenario_family == "null":
        return []
    count = incident_count(config)
    kinds = _eligible_kinds(config, tier)
    if not kinds:  # a family no kind reports: its own injector on one platform's or country's cells
        only = FamilyOnSegment(config.scenario_family)
        return [only] * count
    order = [INCIDENT_KIND_REGISTRY[str(k)] for k in rng.permutation(kinds)]
    return [order[i % len(order)] for i in range(count)]


def _eligible_kinds(config: EpisodeConfig, tier: Tier) -> list[str]:
    """The kinds an episode's incidents are drawn from, in the tier's order: the tier's or the reset's, of the
    scenario's family, whose segment's fields are in play."""
    in_play = set(config.dimensions) if tier.segmented is not None and tier.segmented.max_cuboid_depth else None
    return [k for k in config.incident_kinds or tier.incident_kinds
            if (config.scenario_family == "mixed" or KIND_FAMILY[k] == config.scenario_family)
            and (in_play is None or set(INCIDENT_KIND_REGISTRY[k].requires_fields) <= in_play)]


def episode_kinds(config: EpisodeConfig) -> tuple[IncidentKind, ...]:
    """Every kind an episode's incidents may be (the brief lists them): those it draws from, and the fallback that
    stands in where one finds no room; none when it holds no incident."""
    tier = TIERS[config.difficulty]
    if config.scenario_family == "null" or incident_count(config) == 0:
        return ()
    names = _eligible_kinds(config, tier)
    kinds = [INCIDENT_KIND_REGISTRY[name] for name in names] or [FamilyOnSegment(config.scenario_family)]
    return (*kinds, *(() if FALLBACK_KIND in names else (INCIDENT_KIND_REGISTRY[FALLBACK_KIND],)))


# The kind whose one-date step drops make a cuboid tier's concurrent incidents (in a mixed episode whose kinds
# include it).
CONCURRENT_KIND = "level_shift"


def concurrent_incidents(world: SegmentWorld, incidents: list[SegmentIncident], dates: int) -> list[SegmentIncident]:
    """`dates` second incidents, each on the date of an incident already placed (drawn without replacement), in
    a cuboid overlapping it and on an entity no incident of that date names or moves as a side effect, so a
    report's date and entity stay unique and its numbers are its own incident's; where no date has a step left, an
    incident of its own (the fallback kind)."""
    rng = derive_rng(world.key, "deep-concurrency")
    kind = INCIDENT_KIND_REGISTRY[CONCURRENT_KIND]
    assert isinstance(kind, LevelShift)
    hosts = [incidents[int(i)] for i in rng.permutation(len(incidents))]
    out: list[SegmentIncident] = []
    used: set[int] = set()
    iso_dates = window_calendar(world.plan.num_days).iso_dates
    for host in hosts:
        if len(out) == dates:
            break
        if host.record.day in used:
            continue
        # The date's entities, and the rates its incidents move as a side effect (a second incident's numbers
        # there would carry the first's).
        same_day = [i.record for i in incidents if i.record.day == host.record.day]
        taken = {r.entity_name for r in same_day} | {name for r in same_day for kind, name in r.neutral
                                                      if kind == "conversion_rate"}
        # An experiment's target step too: its intended effect moves that step in its arm on its dates, where a
        # second incident's fall would read as the experiment's own.
        date = iso_dates[host.record.day]
        taken |= {row.target_step for i in incidents for row in i.context
                  if isinstance(row, Experiment) and row.start_date <= date <= row.end_date}
        # A break's hours are read by the arrivals at its step: a fall of a step before it would thin them out.
        taken |= {step for r in same_day if r.family == "funnel_break"
                  for step in FUNNEL_STEPS[:step_index(r.entity_name) + 1]}
        second = kind.place_concurrent(world, host, taken, rng)
        if second is not None:
            used.add(host.record.day)
            out.append(second)
    for index in range(dates - len(out)):
        out += INCIDENT_KIND_REGISTRY[FALLBACK_KIND].place(world, f"deep-concurrency/{index}",
                                                           derive_rng(world.key, "deep-concurrency-fallback", index))
    return out


def decoy_count(decoy_ratio: float, incidents: int) -> int:
    """Benign look-alikes for `incidents` incidents: round(decoy_ratio x incidents), at least two unless the ratio
    is 0 (so the default ratio 1 gives as many as incidents, and a null episode two)."""
    return 0 if decoy_ratio == 0 else max(2, round(decoy_ratio * incidents))



def context_tables(world: SegmentWorld, incidents: list[SegmentIncident], fluctuations: list[SegmentFluctuation],
                   dates: tuple[str, ...]) -> ContextTables:
    """The context rows the kinds placed, the calendar's holidays (every country), and partner notices on dates
    and countries no incident touches, with the same status as every other notice (stream "context-notices")."""
    placed_kinds: list[SegmentIncident | SegmentFluctuation] = [*incidents, *fluctuations]
    rows: list[ContextRow] = [row for placed in placed_kinds for row in placed.context]
    rows += [Holiday(dates[day], None, name) for day, name in holiday_days(len(dates)).items()]
    touched = {(i.record.day, i.segment.country) for i in incidents}
    rng = derive_rng(world.key, "context-notices")
    places = partner_segments(world)
    for _ in range(int(rng.integers(EMPTY_NOTICES[0], EMPTY_NOTICES[1] + 1))):
        day, segment = int(rng.integers(len(dates) - 1)), pick(places, rng)
        assert segment.country is not None
        if (day, segment.country) in touched or (day, None) in touched:
            continue
        # As long, as placed and on the same segments as a partner's failure: a notice says nothing of its effect.
        low, high = INCIDENT_KIND_REGISTRY["partner_payment_failure"].magnitude_range
        start, end = draw_window(rng, int(rng.integers(round(low), round(high) + 1)), earliest=9, latest_end=22)
        rows.append(PartnerNotice(partner_of(segment.country), segment.platform, segment.country, dates[day], start,
                                  end, PARTNER_NOTICE_STATUS))
    return ContextTables.of(rows)


def build_world(config: EpisodeConfig) -> FrontierWorld:
    """A segmented tier's episode: its data, its injected incidents, its benign fluctuations and its calendar
    notes, as its tier config (tiers.py) sets them."""
    tier = TIERS[config.difficulty]
    assert tier.segmented is not None, f"tier {tier.name!r} is not segmented"
    if config.anomalies:
        raise ValueError(f"custom anomalies are not available at difficulty {tier.name!r}; use scenario_family "
                         "and anomaly_count, or another difficulty")
    key = config.key
    plan = segmented_plan(key, tier.window_days, world_of(tier.dimensions))
    cuboids = bool(tier.segmented.max_cuboid_depth)
    world = SegmentWorld(plan, Calendar(plan.num_days, tier.perturbed_per_weekday), key, tier.name,
                         config.magnitude_scale if cuboids else tier.segmented.magnitude_scale,
                         config.dimensions if cuboids else (), config.max_cuboid_depth if cuboids else 0,
                         config.note_share if tier.segmented.context else 0.0)
    schedule = derive_rng(key, "frontier-schedule")
    incidents: list[SegmentIncident] = []
    kinds = incident_kinds(config, tier, schedule)
    # At a cuboid tier, the last `concurrency` incidents of a mixed episode go on dates the others hold.
    concurrent = 0
    if cuboids and config.scenario_family == "mixed" \
            and CONCURRENT_KIND in (config.incident_kinds or tier.incident_kinds):
        concurrent = min(config.concurrency, max(len(kinds) - 1, 0))
    for index, kind in enumerate(kinds[:len(kinds) - concurrent]):
        stream = f"frontier-incident/{index}"
        placed = kind.place(world, stream, derive_rng(key, "frontier-incident", index))
        if not placed:  # no room for this kind: the fallback always fits
            placed = INCIDENT_KIND_REGISTRY[FALLBACK_KIND].place(world, stream,
                                                                 derive_rng(key, "frontier-incident-fallback", index))
        incidents += placed
    if concurrent:
        incidents += concurrent_incidents(world, incidents, concurrent)
    # Benign look-alikes: decoy_ratio per incident (by default as many as incidents, and at least two, so a null
    # episode has them too); a curriculum may set fewer.
    benign = tuple(BENIGN_KIND_REGISTRY[name] for name in tier.benign_kinds)
    fluctuations = []
    for index in range(decoy_count(config.decoy_ratio, len(kinds))):
        rng = derive_rng(key, "frontier-fluctuation", index)
        fluctuation = pick(benign, rng).place(world, rng)
        if fluctuation is not None:
            fluctuations.append(fluctuation)
    data = draw_segmented_counts(plan, key)
    dates = window_calendar(plan.num_days).iso_dates
    if tier.segmented.context:
        data = replace(data, context=context_tables(world, incidents, fluctuations, dates))
    notes = [Annotation(dates[day], "public_holiday", f"Public holiday ({name}): lower traffic with a weekend-like "
                        "daily pattern.") for day, name in holiday_days(plan.num_days).items()]
    for release in plan.releases:
        notes.append(Annotation(dates[release.start_day], "release",
                                f"App release {release.version} started a staged rollout on {release.platform}: "
                                f"{', '.join(f'{s:.0%}' for s in ROLLOUT_STAGES)} of its users on consecutive "
                                "days (see get_releases)."))
    notes.sort(key=lambda a: (a.date, a.kind, a.note))
    return FrontierWorld(data, tuple(sorted(incidents, key=lambda i: i.record.day)), tuple(fluctuations),
                         tuple(notes))
