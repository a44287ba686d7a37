"""What the brief publishes about a segmented tier's world: its dimensions and how its traffic splits, how a row
names its segment and is credited, what a release means, which changes are benign, the incident kinds an episode
may draw, and its context tables.

Public text only, from the segmented world (segments.py) and the tier configs; the serving side fills the brief
with it, and the view reads which families an episode's kinds are reported as.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from metric_tracker_rl.catalog.dimensions import PLATFORMS
from metric_tracker_rl.catalog.published import (
    ANOMALY_TYPES,
    COUNT_COLUMNS,
    FAMILY_ENTITY_TYPE,
    HOURLY_EVIDENCE_GRAIN,
    OVERLAP_CREDIT_RULE,
)
from metric_tracker_rl.catalog.tiers import CLEAR_OWN_Z, TIERS
from metric_tracker_rl.world.context import CONTEXT_READING, ContextTables, context_meanings
from metric_tracker_rl.world.funnel import DAY_NOISE_SIGMA, HOUR_NOISE_SIGMA, HOURS, RATE_NOISE_SIGMA
from metric_tracker_rl.world.segments import (
    HOLIDAYS,
    REGRESSION_DAYS,
    REGRESSION_STEPS,
    RELEASES_PER_PLATFORM,
    ROLLOUT_STAGES,
    WEB_VERSION,
    CellLayout,
    SegmentedData,
    World,
    world_of,
)
from metric_tracker_rl.world.traffic_split import (
    LEAF_RATE_SIGMA,
    LEAF_SHARE_SIGMA,
    SEGMENT_DAY_SIGMA,
    SEGMENT_RATE_SIGMA,
)

RELEASE_MEANING = (
    "A release annotation starts an app version's staged rollout on one platform (get_releases). A "
    f"release sometimes breaks {' or '.join(REGRESSION_STEPS[::-1])} on the new version only (its platform and "
    "version, at deep perhaps only some of its users): all day on every date from the rollout's first date for "
    f"{REGRESSION_DAYS[0]} to {REGRESSION_DAYS[1]} dates in a row, by the same share every date, then it is fixed, "
    f"whether or not the rollout has reached {ROLLOUT_STAGES[-1]:.0%}. Each of those dates is a row, the first ones "
    f"too, where the new version carries {ROLLOUT_STAGES[0]:.0%} and {ROLLOUT_STAGES[1]:.0%} of the platform's users "
    "and the fall may barely show. Most releases change nothing."
)

# The calendar notes a segmented tier's episodes carry (generation/segmented.py annotates holidays and releases
# only): the brief explains these, and no kind that never occurs there.
SEGMENTED_NOTE_KINDS: tuple[str, ...] = ("public_holiday", "release")

SEGMENT_REPORTING = (
    "At frontier every incident is confined to a segment: report it with the platform, country and/or app_version "
    "that name the segment (omit a field to mean all its values; web has the single app_version 'web'), and read "
    "its baseline, observed value and delta from that segment's own data with the published baseline rule. The "
    "exact segment earns full credit, a correct parent (the right platform, no version) half, the right platform "
    "with a wrong version or a segment narrower than the incident a quarter, the aggregate or a wrong segment none."
)
# At a tier that credits segments by overlap (deep): any of its dimensions, and the continuous credit.
OVERLAP_REPORTING = (
    "At {difficulty} every incident is confined to a segment: name it with any of {fields} (web has the single "
    "app_version 'web'); read its baseline, observed value and delta from that segment's own data with the "
    "published baseline rule. The row's quality is "
    "multiplied by its segment credit. " + OVERLAP_CREDIT_RULE
)
BENIGN_LOOK_ALIKES = (
    "Unannotated and benign, with sizes that overlap incidents' (no threshold separates them): more traffic from a "
    "low-converting segment (the aggregate's conversion moves, no segment's own does); a segment's demand rising or "
    "falling all day with every event and hour together; a segment using the app a few hours earlier or later. "
    "The signature tells incidents apart: which hours, which segment, which "
    "metrics move together, and when it started."
)


BENIGN_WITH_CONTEXT = (
    " With context tables (deep), also benign: an experiment's intended effect on the step it targets in its arm, "
    "a campaign's extra low-intent traffic in its channel and country, and a country's holiday; "
    "they are listed there, not annotated."
)


LEAF_BLIPS = (
    " Also benign, however large: a step's conversion falling on one date in a single leaf only (one value of every "
    "dimension), a leaf_blip. Every segment that holds the "
    "leaf shows it, diluted by the leaf's share; no incident is confined to a single leaf."
)


def noise_model() -> str:
    """How a tier that publishes its noise model draws every count (the leaves' day factors and sampling), in
    numbers a likelihood test can use."""
    return (
        "Every count is drawn around its segment's expected level (its shares and conversion profiles, weekday, hour, "
        "trend, holidays, rollouts) in three layers of day-to-day noise, then sampled. (1) All traffic "
        f"shares a factor per date: its opens log-normal (sd {DAY_NOISE_SIGMA:g}, and sd {HOUR_NOISE_SIGMA:g} per "
        f"hour), each step's conversion logit-normal (sd {RATE_NOISE_SIGMA:g}). (2) Each cell (platform, country, "
        f"app_version) has its own per date: its share of traffic log-normal (sd {SEGMENT_DAY_SIGMA:g}), each step's "
        f"conversion log-normal (sd {SEGMENT_RATE_SIGMA:g}). (3) Each leaf of a cell (one value of every dimension) "
        f"has its own per date: its share of the cell's traffic log-normal (sd {LEAF_SHARE_SIGMA:g}, renormalised "
        f"over the cell's leaves), each step's conversion log-normal (sd {LEAF_RATE_SIGMA:g}). Given those, each "
        "leaf's events are Poisson, so a leaf's conversions at a step, given its arrivals there, are binomial at the "
        "leaf's rate of that date. Every layer is independent across dates, cells, leaves and steps; nothing else "
        "moves a count but the episode's incidents and benign changes."
    )


def sizing_sd() -> str:
    """The relative sd of a segment's conversion at a step on a date that an all-day incident is sized against (as
    kinds/cuboid.own_z computes it): its binomial noise, its leaves' own rate noise averaged over them, and the
    shared layer's."""
    leaf = SEGMENT_RATE_SIGMA**2 + LEAF_RATE_SIGMA**2
    return f"sqrt((1 - p) / (p * n) + {leaf:.4g} / L + {RATE_NOISE_SIGMA**2:.4g})"


def depth_text(min_depth: int, twin_credit: bool) -> str:
    """How many fields a deeper tier's root cause names: its floor, how often one more (kinds/cuboid.draw_depth
    draws the depth in proportion to itself), that the data need not settle a field, and where the tier credits
    segments its data cannot tell apart (`twin_credit`), where that rule is published."""
    return (
        f" A level_shift's, release_regression's, payment_failure's or segment_outage's segment names at least "
        f"{min_depth} fields (max_cuboid_depth if fewer) wherever one "
        "of that depth stands out as far on its dates, fewer otherwise; a level_shift or release_regression "
        f"names {min_depth + 1} about {min_depth + 1} times in {2 * min_depth + 1} where allowed, whether or not "
        + ("the data can tell it (see task_overview's grading)." if twin_credit else "the data can tell that field.")
    )


def incident_shape(own_z: tuple[float, float], min_depth: int = 1, twin_credit: bool = False) -> str:
    """What an incident does to the leaves of its segment, which dates are its rows, how far it stands out of the
    noise (an all-day one at the tier's own_z by a sizing a reader can compute, one of hours clear in its hours),
    and, where the tier draws deeper segments, how deep."""
    low, high = own_z
    return (
        "An incident changes its segment only: on each of its dates every leaf it holds changes by the same share in "
        "expectation (its step's conversion, or its opens; one of hours, in those hours) and no leaf outside it "
        "changes. Its rows are its dates, each a whole day: a run starts and ends at midnight, and its first and last "
        "dates are rows however little they show. An all-day incident's z = f / sd, f the relative fall of its "
        f"step's conversion, sd = {sizing_sd()}, n the segment's arrivals at the step, p its conversion without the "
        f"incident, L its leaves with arrivals (expected, that date). It is drawn at {low:g} to {high:g}, taking its "
        "smallest daily fall and the largest sd of its dates (a release_regression: its last date only; an "
        "experiment_breakage on cells keeps its fall and may stand further out). On the data z scatters by about 1. "
        f"An incident of hours is drawn clear in its hours (z about {CLEAR_OWN_Z[0]:g} or more)."
        + (depth_text(min_depth, twin_credit) if min_depth > 1 else "")
    )


def tier_wording(text: str, difficulty: str) -> str:
    """Text written of deep's cuboid root causes and context ("at deep", "(deep)") as another tier with both reads
    it: naming that tier. Deep's own text, and any other tier's, stays as written."""
    mix = TIERS[difficulty].segmented
    if difficulty == "deep" or mix is None or not (mix.cuboid_root_causes and mix.context):
        return text
    return text.replace("at deep", f"at {difficulty}").replace("(deep)", f"({difficulty})")


def benign_brief(difficulty: str) -> str:
    """What a segmented tier's brief says of its benign changes: BENIGN_LOOK_ALIKES, and at a tier with context the
    kinds its context tables list."""
    mix = TIERS[difficulty].segmented
    text = BENIGN_LOOK_ALIKES + (BENIGN_WITH_CONTEXT if mix is not None and mix.context else "")
    return tier_wording(text + (LEAF_BLIPS if mix is not None and mix.leaf_blips else ""), difficulty)


def segmented_brief(difficulty: str, note_share: float | None = None) -> dict[str, object]:
    """What the brief publishes about the segmented world of a segmented tier (the same for every episode of it
    but for the share of partner failures with a notice, the episode's `note_share`; None: the tier's)."""
    tier = TIERS[difficulty]
    world = world_of(tier.dimensions)
    versions = (
        f"{WEB_VERSION} on web; on ios and android the version live at the window's start and "
        f"{RELEASES_PER_PLATFORM} releases per platform (get_releases)"
    )
    if not world.daily:
        return {
            "dimensions": {
                "platform": ",".join(PLATFORMS),
                "country": ",".join(world.country.values),
                "app_version": versions,
            },
            "traffic_split": "every count exists per (platform, country, app_version) cell; the aggregate funnel "
            "the other tools read is their sum",
            "conversion": "web, BR and IN convert lower than the rest",
            "holidays": ", ".join(f"{date} {name}" for date, name in HOLIDAYS.items()),
            # What a release means is the brief's calendar_note_kinds.release, once.
            "reporting": SEGMENT_REPORTING,
        }
    daily = [dimension.field for dimension in world.daily]
    return {
        "dimensions": {
            "platform": ",".join(PLATFORMS),
            "country": ",".join(world.country.values),
            "app_version": versions,
            **{d.field: ",".join(d.values) for d in world.daily},
        },
        "traffic_split": f"hourly counts exist per (platform, country, app_version) cell (hourly_by_segment); daily "
        f"counts per cell and {' and '.join(daily)} (daily_by_segment, a column per dimension); the "
        "aggregate funnel the other tools read is their sum",
        "hourly_evidence": HOURLY_EVIDENCE_GRAIN,
        "conversion": "; ".join(f"{d.field}: {d.profile}" for d in world.dimensions),
        "holidays": ", ".join(f"{date} {name}" for date, name in HOLIDAYS.items()),
        # What a release means is the brief's calendar_note_kinds.release, once.
        "reporting": _reporting(difficulty, world),
        **(
            {"context_tables": context_brief(tier.segmented.note_share if note_share is None else note_share)}
            if tier.segmented is not None and tier.segmented.context
            else {}
        ),
        **(
            {
                "noise_model": noise_model(),
                "incident_shape": incident_shape(
                    tier.segmented.own_z, tier.segmented.min_cuboid_depth, tier.segmented.twin_z is not None
                ),
            }
            if tier.segmented is not None and tier.segmented.noise_model
            else {}
        ),
    }


@dataclass(frozen=True)
class KindText:
    """An incident kind as the brief shows it: its name, the family it is reported as, its one-line definition,
    and whether it may move a segment's counts together all day."""

    name: str
    family: str
    definition: str
    count_all_day: bool = False


def kinds_brief(kinds: Sequence[KindText]) -> dict[str, object]:
    """The brief's incident kinds of an episode (those it may draw), a row each with its family and definition,
    and what follows: the brief's families table keeps only those families (`drawn_families`), and whether an
    all-day move of a segment's counts can be an incident."""
    if not kinds:
        return {}
    counts = [kind.name for kind in kinds if FAMILY_ENTITY_TYPE[kind.family] == "event_count"]
    note = "Every incident is one of incident_kinds, reported as its family (the families table lists those only)."
    if not any(kind.count_all_day for kind in kinds):
        note += (
            " No incident moves a segment's counts together all day"
            + (
                f" ({' and '.join(counts)} {'is a block' if len(counts) == 1 else 'are blocks'} of hours)"
                if counts
                else ""
            )
            + ": that is a benign demand swing."
        )
    return {
        "incident_kinds": [{"kind": kind.name, "family": kind.family, "definition": kind.definition} for kind in kinds],
        "families_drawn": note,
    }


def drawn_families(segments: Mapping[str, object] | None) -> tuple[str, ...] | None:
    """The families a brief's incident kinds are reported as, in publication order (None: no kinds shown, so
    every family may occur)."""
    kinds = (segments or {}).get("incident_kinds")
    if not isinstance(kinds, list):
        return None
    named = {row["family"] for row in kinds}
    return tuple(family for family in ANOMALY_TYPES if family in named)


def _reporting(difficulty: str, world: World) -> str:
    """How a row names its segment and how it is credited at a tier with daily-only dimensions."""
    if TIERS[difficulty].segment_credit == "overlap":
        return OVERLAP_REPORTING.format(difficulty=difficulty, fields=", ".join(world.fields))
    return SEGMENT_REPORTING.replace("At frontier", f"At {difficulty}").replace(
        "platform, country and/or app_version", f"platform, country, {', '.join(world.fields[2:])}"
    )


def context_brief(note_share: float) -> dict[str, str]:
    """Each context table a model reads (get_context, or the query tool under the same name): its columns, read
    off the tables of an empty episode, and what it holds in an episode of this `note_share`."""
    empty = SegmentedData(
        CellLayout((), (), ()), (), np.zeros((0, 0, HOURS, len(COUNT_COLUMNS)), dtype=np.int64), context=ContextTables()
    )
    tables = empty.sql_tables()
    return {
        "reading": CONTEXT_READING,
        **{name: f"({', '.join(tables[name])}): {meaning}" for name, meaning in context_meanings(note_share).items()},
    }
