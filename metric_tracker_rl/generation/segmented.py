"""The segmented generator (frontier, deep, abyss): a segmented world, incidents confined to a segment, and benign
look-alikes, as the tier's segmented config (tiers.SegmentedMix) sets them.

Generation mirrors the aggregate tiers (plan, edit the plan, draw counts), per traffic cell:
1. `segment_plan.segmented_plan` splits the aggregate plan of funnel.baseline_plan (an eight-week window with a
   trend and a holiday calendar) into cells (platform, country, app version; see segments.py): each cell's traffic
   is its platform and country share times its version's rollout share times its own day noise, and its step rates
   are the aggregate's times its platform and country factors (times its own noise). At a tier with daily-only
   dimensions (deep), each cell also gets its leaves' shares and conversion factors, with their own day noise.
2. Incidents and benign fluctuations edit the plan of the cells of one segment: each is a registered kind
   (metric_tracker_rl/generation/kinds/), most of which run a family's injector on each cell's view of the plan,
   all from one stream, so every cell of the segment gets the same hours. The tier names the kinds it draws, so
   registering a kind changes none of its episodes. At a tier whose root causes are cuboids (deep) a root cause
   is a cuboid of one to three dimensions (kinds/cuboid.py), edited through SegmentWorld.scale_step and
   scale_traffic where it names channel or user type, and the last `concurrency` incidents share a date with an
   earlier one.
3. `segment_counts.draw_segmented_counts` draws every cell's counts in one vectorised Poisson call, then applies
   extra opens, duplicates, clock shifts and lost events per touched cell and date, each from its own named stream.
   With leaves, it then splits each cell's daily counts among its leaves (`split_leaves`).

Every random stream is derived by name (seeding.derive_rng), and keeps the name it was first drawn under (frontier
was the first segmented tier; renaming a stream would change every episode): the world from "frontier-world", the
schedule from "frontier-schedule", each cell's noise from "segment/<platform>/<country>/<version>", the counts from
"segment-noise" and "segment-draw", the leaves' noise from "segment-leaves" and their split from "segment-split"
(per touched cell and date: "segment-resplit").

Ground truth comes from the injection records (episode.build_ground_truth); each expected row names the incident's
segment, and its values are read back from that segment's final data with the published baseline rule.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.catalog.tasks import EpisodeConfig, incident_count
from metric_tracker_rl.catalog.tiers import TIERS, SegmentedMix, Tier
from metric_tracker_rl.generation.anomalies import FAMILY_REGISTRY
from metric_tracker_rl.generation.anomalies.base import draw_window
from metric_tracker_rl.generation.confounders import place_confounders
from metric_tracker_rl.generation.episode import (
    DistractorRecord,
    Episode,
    build_ground_truth,
    segmented_objective,
    visible_task,
)
from metric_tracker_rl.generation.kinds import (
    BENIGN_KIND_REGISTRY,
    INCIDENT_KIND_REGISTRY,
    KIND_FAMILY,
    FamilyOnSegment,
    IncidentKind,
    SegmentFluctuation,
    SegmentIncident,
    date_entities,
)
from metric_tracker_rl.generation.kinds.level_shift import LevelShift
from metric_tracker_rl.generation.kinds.partner_payment_failure import partner_segments
from metric_tracker_rl.generation.same_cuboid import effects_beside, second_incidents
from metric_tracker_rl.generation.segment_counts import draw_segmented_counts
from metric_tracker_rl.generation.segment_plan import (
    Calendar,
    CuboidDial,
    SegmentedPlan,
    SegmentWorld,
    drawn_order,
    pick,
    segmented_plan,
)
from metric_tracker_rl.generation.twins import incident_twins
from metric_tracker_rl.world.context import (
    EMPTY_NOTICES,
    PARTNER_NOTICE_STATUS,
    ContextRow,
    ContextTables,
    Holiday,
    PartnerNotice,
    partner_of,
)
from metric_tracker_rl.world.daily_panel import build_panel
from metric_tracker_rl.world.funnel import (
    FunnelData,
    window_calendar,
)
from metric_tracker_rl.world.public_episode import Annotation, Counts, PublicEpisode
from metric_tracker_rl.world.segments import (
    ROLLOUT_STAGES,
    Segment,
    SegmentedData,
    holiday_days,
    world_of,
)

# --- incidents and benign look-alikes -------------------------------------------------------------------

# Each kind is a module of metric_tracker_rl/generation/kinds/ (its mechanism, the family and entities it is reported
# as, its magnitude range). Sizes overlap on purpose (no published threshold separates incidents from look-alikes),
# and none is published: the signature decides (which hours, which segment, which metrics move together, when it
# started).
FALLBACK_KIND = "segment_outage"  # a single-date segment outage always fits an eight-week window
LEAF_BLIP = "leaf_blip"  # the benign kind a tier's `leaf_blips` places


@dataclass(frozen=True)
class DrawnWorld:
    """What a segmented tier's generator draws before it turns the records into ground truth: the counts, the
    injected incidents, the benign fluctuations and the calendar notes."""

    data: SegmentedData
    incidents: tuple[SegmentIncident, ...]
    fluctuations: tuple[SegmentFluctuation, ...]
    annotations: tuple[Annotation, ...]
    # Aligned with `incidents`: the segments one field from each one's that the data cannot tell from it, where the
    # tier credits them (SegmentedMix.twin_z; generation/twins.py).
    twins: tuple[tuple[Segment, ...], ...] = ()


def incident_kinds(tier: Tier, config: EpisodeConfig, rng: np.random.Generator) -> list[IncidentKind]:
    """The kinds of the episode's incidents: the tier's kinds (or the reset's choice) in a shuffled cycle (mixed;
    a weighted shuffle where the mix weighs its kinds), those reported as one family, or none. At a cuboid tier, a
    kind whose segment needs a field out of play is left out."""
    if config.scenario_family == "null":
        return []
    count = incident_count(config)
    kinds = _eligible_kinds(tier, config)
    if not kinds:  # a family no kind reports: its own injector on one platform's or country's cells
        only = _family_on_segment(tier, config)
        return [only] * count
    weights = _segmented(tier).weights
    order = [INCIDENT_KIND_REGISTRY[k] for k in drawn_order(kinds, rng, None if weights is None else dict(weights))]
    return [order[i % len(order)] for i in range(count)]


# The families the kinds of the listed tiers that publish their kinds report. The kinds of a tier being built or
# of one that names none (the audit's promotion, a rate spike) leave every other tier's single-family scenarios to
# the family's own injector, so listing such a tier changes no other tier's episodes.
LISTED_KIND_FAMILIES = frozenset(
    KIND_FAMILY[kind]
    for tier in TIERS.values()
    if tier.listed and tier.segmented and not tier.hides_mechanisms
    for kind in tier.incident_kinds
)


def _family_on_segment(tier: Tier, config: EpisodeConfig) -> FamilyOnSegment:
    """The stand-in kind of a family none of the episode's kinds report; a reset's error where a kind a listed tier
    draws reports it but the episode cannot draw it (abyss leaves two of deep's kinds to deep; a dial can leave a
    kind's fields out of play), naming the families it does draw."""
    family = config.scenario_family
    if family in LISTED_KIND_FAMILIES:
        drawn = sorted({KIND_FAMILY[kind] for kind in _eligible_kinds(tier, replace(config, scenario_family="mixed"))})
        raise ValueError(
            f"scenario_family {family!r} is not drawn at difficulty {tier.name!r} with these settings: "
            f"its incidents are reported as {', '.join(drawn)}; use one of those, 'mixed' or 'null'"
        )
    return FamilyOnSegment(family)


def _eligible_kinds(tier: Tier, config: EpisodeConfig) -> list[str]:
    """The kinds an episode's incidents are drawn from, in the tier's order: the tier's or the reset's (never the
    registry's, so registering a kind changes no episode), of the scenario's family, whose segment's fields are in
    play."""
    in_play = set(config.dimensions) if _segmented(tier).cuboid_root_causes else None
    return [
        k
        for k in config.incident_kinds or tier.incident_kinds
        if (config.scenario_family == "mixed" or KIND_FAMILY[k] == config.scenario_family)
        and (in_play is None or set(INCIDENT_KIND_REGISTRY[k].requires_fields) <= in_play)
    ]


def episode_kinds(tier: Tier, config: EpisodeConfig) -> tuple[IncidentKind, ...]:
    """Every kind an episode of a segmented tier's incidents may be (the brief lists them): those it draws from,
    and the fallback that stands in where one finds no room; none when it holds no incident."""
    if config.scenario_family == "null" or incident_count(config) == 0:
        return ()
    names = _eligible_kinds(tier, config)
    kinds = [INCIDENT_KIND_REGISTRY[name] for name in names] or [_family_on_segment(tier, config)]
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
        second = kind.place_concurrent(world, host, date_entities(incidents, host.record.day, iso_dates), rng)
        if second is not None:
            used.add(host.record.day)
            out.append(second)
    for index in range(dates - len(out)):
        out += INCIDENT_KIND_REGISTRY[FALLBACK_KIND].place(
            world, f"deep-concurrency/{index}", derive_rng(world.key, "deep-concurrency-fallback", index)
        )
    return out


def decoy_count(decoy_ratio: float, incidents: int) -> int:
    """Benign look-alikes for `incidents` incidents: round(decoy_ratio x incidents), at least two unless the ratio
    is 0 (so the default ratio 1 gives as many as incidents, and a null episode two)."""
    return 0 if decoy_ratio == 0 else max(2, round(decoy_ratio * incidents))


def context_tables(
    world: SegmentWorld,
    incidents: list[SegmentIncident],
    fluctuations: list[SegmentFluctuation],
    dates: tuple[str, ...],
) -> ContextTables:
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
        rows.append(
            PartnerNotice(
                partner_of(segment.country),
                segment.platform,
                segment.country,
                dates[day],
                start,
                end,
                PARTNER_NOTICE_STATUS,
            )
        )
    return ContextTables.of(rows)


def _segmented(tier: Tier) -> SegmentedMix:
    if tier.segmented is None:
        raise ValueError(f"tier {tier.name!r} is not segmented")
    return tier.segmented


def _kind_world(tier: Tier, config: EpisodeConfig, plan: SegmentedPlan) -> SegmentWorld:
    """What the tier's kinds act on: its magnitude scale, and its cuboid dial and notes' share where it has them,
    as the reset sets them, and the z-score its cuboid incidents are drawn at."""
    mix = _segmented(tier)
    cuboids = (
        CuboidDial(config.dimensions, config.max_cuboid_depth, mix.min_cuboid_depth) if mix.cuboid_root_causes else None
    )
    return SegmentWorld(
        plan,
        Calendar(plan.num_days, tier.perturbed_per_weekday),
        config.key,
        tier.name,
        mix.magnitude_scale if cuboids is None else config.magnitude_scale,
        cuboids,
        config.note_share if mix.context else 0.0,
        own_z=mix.own_z,
        observed_share=mix.observed_share,
        falling_effect_share=mix.falling_effect_share,
        raise_unclear=mix.raise_unclear,
        only_clear=mix.only_clear,
    )


def _place_incidents(tier: Tier, config: EpisodeConfig, world: SegmentWorld) -> tuple[list[SegmentIncident], int]:
    """The episode's incidents, and how many were drawn (a kind may place several dates). At a tier whose root
    causes are cuboids, the last `concurrency` incidents of a mixed episode go on dates the others hold."""
    key = config.key
    kinds = incident_kinds(tier, config, derive_rng(key, "frontier-schedule"))
    concurrent = 0
    if (
        world.cuboids is not None
        and config.scenario_family == "mixed"
        and CONCURRENT_KIND in (config.incident_kinds or tier.incident_kinds)
    ):
        concurrent = min(config.concurrency, max(len(kinds) - 1, 0))
    incidents: list[SegmentIncident] = []
    scheduled = list(enumerate(kinds[: len(kinds) - concurrent]))
    for index, kind in [(i, k) for i, k in scheduled if not k.deferred]:
        incidents += _place_one(world, kind, index, key)
    if concurrent:
        incidents += concurrent_incidents(world, incidents, concurrent)
    if _segmented(tier).same_cuboid_concurrency and incidents:
        incidents += second_incidents(world, incidents, _segmented(tier).same_cuboid_concurrency)
    # Kinds whose weeks of dates are not the calendar's go last, clear of every key placed so far.
    iso_dates = window_calendar(world.plan.num_days).iso_dates
    for index, kind in [(i, k) for i, k in scheduled if k.deferred]:
        world.busy_entities = {
            day: date_entities(incidents, day, iso_dates) for day in {i.record.day for i in incidents}
        }
        incidents += _place_one(world, kind, index, key)
    return incidents, len(kinds)


def _place_one(world: SegmentWorld, kind: IncidentKind, index: int, key: EpisodeKey) -> list[SegmentIncident]:
    """The `index`-th scheduled incident, or the fallback kind's where this kind finds no room."""
    stream = f"frontier-incident/{index}"
    placed = kind.place(world, stream, derive_rng(key, "frontier-incident", index))
    if not placed:  # no room for this kind: the fallback always fits
        placed = INCIDENT_KIND_REGISTRY[FALLBACK_KIND].place(
            world, stream, derive_rng(key, "frontier-incident-fallback", index)
        )
    return placed


@dataclass(frozen=True)
class PlacedWorld:
    """A segmented tier's plan after its kinds' edits, with the incidents and benign fluctuations they placed,
    before any count is drawn from it."""

    plan: SegmentedPlan
    world: SegmentWorld
    incidents: list[SegmentIncident]
    fluctuations: list[SegmentFluctuation]


def place_world(tier: Tier, config: EpisodeConfig) -> PlacedWorld:
    """The plan of a segmented tier's world with its incidents and benign look-alikes placed, as its tier config
    (tiers.py) sets them."""
    mix = _segmented(tier)
    if config.anomalies:
        raise ValueError(
            f"custom anomalies are not available at difficulty {tier.name!r}; use scenario_family "
            "and anomaly_count, or another difficulty"
        )
    key = config.key
    plan = segmented_plan(key, tier.window_days, world_of(tier.dimensions))
    world = _kind_world(tier, config, plan)
    incidents, drawn = _place_incidents(tier, config, world)
    # Benign look-alikes: decoy_ratio per incident (by default as many as incidents, and at least two, so a null
    # episode has them too); a curriculum may set fewer.
    benign = tuple(BENIGN_KIND_REGISTRY[name] for name in tier.benign_kinds)
    fluctuations = []
    for index in range(decoy_count(config.decoy_ratio, drawn)):
        rng = derive_rng(key, "frontier-fluctuation", index)
        fluctuation = pick(benign, rng).place(world, rng)
        if fluctuation is not None:
            fluctuations.append(fluctuation)
    if mix.effect_beside_incident:
        fluctuations += effects_beside(world, incidents, fluctuations, mix.effect_beside_incident)
    if mix.confounder_share:
        fluctuations += place_confounders(world, incidents, fluctuations, mix.confounder_share)
    # Falls confined to one leaf, on dates left free (a tier with leaf_blips): after every other placement.
    for index in range(decoy_count(mix.leaf_blips * config.decoy_ratio, drawn) if mix.leaf_blips else 0):
        blip = BENIGN_KIND_REGISTRY[LEAF_BLIP].place(world, derive_rng(key, "leaf-blip", index))
        if blip is not None:
            fluctuations.append(blip)
    return PlacedWorld(plan, world, incidents, fluctuations)


def build_world(tier: Tier, config: EpisodeConfig) -> DrawnWorld:
    """A segmented tier's world: its data, its injected incidents, its benign fluctuations and its calendar notes,
    as its tier config (tiers.py) sets them."""
    placed = place_world(tier, config)
    mix, key, plan = _segmented(tier), config.key, placed.plan
    world, incidents, fluctuations = placed.world, placed.incidents, placed.fluctuations
    data = draw_segmented_counts(plan, key)
    dates = window_calendar(plan.num_days).iso_dates
    if mix.context:
        data = replace(data, context=context_tables(world, incidents, fluctuations, dates))
    notes = [
        Annotation(
            dates[day], "public_holiday", f"Public holiday ({name}): lower traffic with a weekend-like daily pattern."
        )
        for day, name in holiday_days(plan.num_days).items()
    ]
    for release in plan.releases:
        notes.append(
            Annotation(
                dates[release.start_day],
                "release",
                f"App release {release.version} started a staged rollout on {release.platform}: "
                f"{', '.join(f'{s:.0%}' for s in ROLLOUT_STAGES)} of its users on consecutive "
                "days (see get_releases).",
            )
        )
    notes.sort(key=lambda a: (a.date, a.kind, a.note))
    ordered = tuple(sorted(incidents, key=lambda i: i.record.day))
    twins = () if mix.twin_z is None else incident_twins(world, ordered, tuple(data.dimension_values()), mix.twin_z)
    return DrawnWorld(data, ordered, tuple(fluctuations), tuple(notes), twins)


def build_segmented_episode(tier: Tier, config: EpisodeConfig) -> Episode:
    """A segmented tier's episode: its world (build_world), the aggregate funnel the other tools read (the sum of
    the cells), and the truth, each expected row naming its incident's segment."""
    world = build_world(tier, config)
    data = world.data
    calendar = window_calendar(data.num_days)
    aggregate = FunnelData(
        dates=calendar.iso_dates,
        weekdays=calendar.weekday_names,
        weekend=calendar.weekend,
        hourly=data.hourly.sum(axis=0),
    )
    public = PublicEpisode(
        Counts(aggregate, build_panel(aggregate), world.annotations, segments=data),
        visible_task(config, segmented_objective(tier)),
    )
    fluctuations = [
        DistractorRecord(f.kind, f.day, f"{f.segment.label()}: {f.description}") for f in world.fluctuations
    ]
    truth = build_ground_truth(
        [(i.record, i.segment) for i in world.incidents], public, FAMILY_REGISTRY, (), fluctuations, twins=world.twins
    )
    return Episode(config, public, truth)
