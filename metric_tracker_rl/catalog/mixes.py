"""What a tier's generator draws, one mix type per generator: the aggregate generator's single funnel
(AggregateMix), the segmented generator's cells and kinds (SegmentedMix, and abyss's AbyssMix), the warehouse's raw
event export (WarehouseMix) and the audit's (AuditMix); and what an episode's public data hold, the words a tier's
`holds` and a tool's `reads` share. catalog/tiers.py names each tier's mix (and re-exports these names); this module
imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Final, Literal, TypeVar

# The expected z-score in its own data a cuboid incident is drawn at, floor and ceiling: deep's for every incident,
# and at any tier for an incident of hours (generation/kinds/cuboid.py).
CLEAR_OWN_Z: tuple[float, float] = (7.5, 8.0)
# What an episode's public data hold: the words a tier's `holds` and a tool's `reads` share.
Holding = Literal["counts", "segments", "context", "events"]
# counts: the funnel's daily and hourly counts, their daily numbers and the calendar notes; segments: the counts of
# every segment and the releases; context: the context tables (experiments, campaigns, the partners' status log);
# events: a raw event export (its tables, its metrics layer and its dashboard).
COUNTS: Final[Literal["counts"]] = "counts"
SEGMENTS: Final[Literal["segments"]] = "segments"
CONTEXT: Final[Literal["context"]] = "context"
EVENTS: Final[Literal["events"]] = "events"
# What an episode's data are: counts, or a raw event export; and the kind each holding is of.
DataKind = Literal["counts", "events"]
DATA_OF: dict[Holding, DataKind] = {COUNTS: COUNTS, SEGMENTS: COUNTS, CONTEXT: COUNTS, EVENTS: EVENTS}


@dataclass(frozen=True)
class AggregateMix:
    """What the aggregate generator puts in a tier's single funnel besides incidents of the published families.

    `distractors`: annotated explained days (generation/aggregate.py's DISTRACTORS), one each. `fluctuations`:
    unannotated benign days (its FLUCTUATIONS), one per entry. `incident_timing_shifts`: incident dates that also
    get a timing shift, at most. `multi_day_probability`: chance that an incident of a family that can persist goes
    on the next date. `overlapping_demand_swing_share`: where demand swings reach into the count incidents' sizes,
    their range (and then the tier publishes audience swings instead of a gap; None: the published default, clear of
    them)."""

    distractors: tuple[str, ...] = ()
    fluctuations: tuple[str, ...] = ()
    incident_timing_shifts: int = 0
    multi_day_probability: float = 0.0
    overlapping_demand_swing_share: tuple[float, float] | None = None
    data: ClassVar[DataKind] = COUNTS
    # Whether its episodes show the settings that count their business incidents (a null episode then reads as one).
    shows_incident_count: ClassVar[bool] = True

    @property
    def holds(self) -> frozenset[Holding]:
        """One funnel's counts and its calendar notes."""
        return frozenset({COUNTS})


@dataclass(frozen=True)
class SegmentedMix:
    """What the segmented generator builds for a tier.

    `dimensions`: the keys of dimensions.DIMENSIONS that split traffic: platform, a country dimension and app_version
    make the cells (hourly counts), any others split each cell's days into leaves. `incident_kinds` and
    `benign_kinds`: the registered kinds the tier draws from, named here so that registering a kind changes no
    tier's episodes; incidents in a shuffled cycle that starts from this order, look-alikes uniformly.
    `decoy_ratio`: benign look-alikes per incident by default (a reset may set another). `magnitude_scale`: every
    kind's default magnitude range times this. `max_incidents`: the most a reset may ask for (persistent incidents
    cover several dates each). `segment_credit`: how a matched row's segment is credited (grader.py): `table`,
    frontier's published verdicts (exact 1, parent 0.5, ...), kept so its figures stay reproducible; `overlap`, the
    traffic-weighted overlap of the reported cuboid with the incident's (coverage x purity), for any cuboid of any
    of the tier's dimensions. `context`: the episode has context tables (metric_tracker_rl/world/context.py), and
    the kinds that need them may be drawn.

    Root causes as cuboids (the dial of a reset, defaults here; 0 depth: every kind keeps its fixed segments, as at
    frontier, and a reset may not set these): `max_cuboid_depth`, the most dimensions a root cause names;
    `concurrency`, the dates that carry a second incident in an overlapping cuboid; `note_share`, the share of
    partner payment failures with a notice in the partner status log; `own_z`, the expected z-score in its own data
    an all-day cuboid incident is drawn at (kinds/cuboid.py; one of hours keeps deep's): a weaker one is raised to
    the first, a stronger one lowered to the second times the magnitude scale (never below the first); `leaf_blips`,
    benign falls confined to one leaf (the leaf_blip kind) per incident drawn, times the reset's decoy_ratio, on top
    of the look-alikes (at least two where positive: segmented.decoy_count); `noise_model`, the brief publishes how
    counts are drawn and what an incident does to its segment's leaves, at what z (world/segment_brief.py);
    `min_cuboid_depth`, the fewest dimensions a drawn cuboid's depth starts from (a shallower one where none that
    deep is clear: kinds/cuboid.py). A tier's own fields are its mix's type's: AbyssMix's `twin_z`, WarehouseMix's
    `observed_share` and `raise_unclear`.

    Harder mixes (0 leaves a tier's episodes as they were): `confounder_share`, the share of incidents that get
    one or two context items overlapping their dates that do not explain them (generation/confounders.py, a tier
    with context); `same_cuboid_concurrency`, the dates that carry a second incident in the very cuboid of one
    already placed, on another step; `effect_beside_incident`, the incidents that get an experiment whose intended
    effect moves another step in their own cuboid on their date (generation/same_cuboid.py);
    `falling_effect_share`, the share of experiments whose intended effect would rise that fall instead (so a
    benign experiment looks like an incident until its arm is read in scope, and a breakage sits beside a fall)."""

    dimensions: tuple[str, ...]
    max_incidents: int
    incident_kinds: tuple[str, ...]
    benign_kinds: tuple[str, ...]
    decoy_ratio: float = 1.0
    magnitude_scale: float = 1.0
    segment_credit: Literal["table", "overlap"] = "table"
    context: bool = False
    max_cuboid_depth: int = 0
    concurrency: int = 0
    note_share: float = 0.0
    confounder_share: float = 0.0
    same_cuboid_concurrency: int = 0
    effect_beside_incident: int = 0
    falling_effect_share: float = 0.0
    own_z: tuple[float, float] = CLEAR_OWN_Z
    leaf_blips: float = 0.0
    noise_model: bool = False
    min_cuboid_depth: int = 1
    # The share of the world's traffic the episode's data hold, whose z-scores a kind sizes its incidents by, and
    # whether a kind raises an unclear cuboid: WarehouseMix's fields (every count and no raise where data are counts).
    observed_share: ClassVar[float] = 1.0
    raise_unclear: ClassVar[bool] = False
    # Whether an incident is placed only where its change, at the most its kind raises it to, is clear in its own
    # data (AuditMix's): a kind draws among such segments, a date's second incident tries the next host, and where
    # none is clear the kind places nothing (the fallback kind takes its place).
    only_clear: ClassVar[bool] = False
    # Under what expected z two segments one field apart are credited alike: AbyssMix's field (None: never).
    twin_z: ClassVar[float | None] = None
    # Whether a data defect's row also reports the value its defect hid (AuditMix's field; never elsewhere).
    repaired_values: ClassVar[bool] = False
    # How often each mechanism is drawn against the others (AuditMix's field; None: alike, in a plain shuffle).
    weights: ClassVar[tuple[tuple[str, float], ...] | None] = None
    data: ClassVar[DataKind] = COUNTS
    # Whether its episodes show the settings that count their business incidents (a null episode then reads as one).
    shows_incident_count: ClassVar[bool] = True

    @property
    def cuboid_root_causes(self) -> bool:
        """Whether root causes are cuboids a reset's dial shapes (deep); else every kind keeps its own fixed
        segments (frontier)."""
        return self.max_cuboid_depth > 0

    @property
    def holds(self) -> frozenset[Holding]:
        """The whole funnel's counts, every segment's and the releases, and the context tables where it has them."""
        return frozenset({COUNTS, SEGMENTS, *([CONTEXT] if self.context else [])})


Mix = TypeVar("Mix", bound=SegmentedMix)


def extended(mix: SegmentedMix, kind: type[Mix], **changes: Any) -> Mix:
    """`mix` as a mix of `kind` (a segmented mix with a tier's own fields), with `changes`."""
    return kind(**{**{f.name: getattr(mix, f.name) for f in fields(mix)}, **changes})


@dataclass(frozen=True, kw_only=True)
class AbyssMix(SegmentedMix):
    """A segmented mix at the edge of the noise (abyss). `twin_z`: the expected z under which the slice between two
    segments one field apart could not show an all-day incident's fall, so that a row on either is credited as the
    incident's own (generation/twins.py)."""

    twin_z: float  # type: ignore[misc]  # a field here; one value for every other segmented mix


@dataclass(frozen=True, kw_only=True)
class WarehouseMix(SegmentedMix):
    """The warehouse: the segmented world its fields draw, published as a raw event export with its side tables,
    metrics layer and dashboard (generation/warehouse/), data defects drawn beside the incidents, and no counts.

    `observed_share`: the share of the world's traffic the export holds (its sample of sessions), whose z-scores a
    kind sizes its incidents by. `raise_unclear`: where no cuboid a kind draws is clear at its largest change (a
    sample leaves most too thin), a one-dimension cuboid that is clear at that change is drawn among all of them
    (the clearest where none is) and its change raised to the own-z floor, as far as the largest allows (False: the
    base or the clearest of a few, unraised). `defects`: the registered data-defect mechanisms it draws from
    (generation/defects/), in the order an episode's shuffle of them starts from."""

    observed_share: float  # type: ignore[misc]  # a field here; one value for every other segmented mix
    raise_unclear: bool = True  # type: ignore[misc]
    defects: tuple[str, ...]
    data: ClassVar[DataKind] = EVENTS
    # Raw events hide how many business incidents an episode holds: no shown setting counts them, and a null
    # episode of the defaults reads as standard, as every other one does.
    shows_incident_count: ClassVar[bool] = False

    @property
    def holds(self) -> frozenset[Holding]:
        """The export's tables and metrics layer: no counts, so no tool over counts answers there."""
        return frozenset({EVENTS})


@dataclass(frozen=True, kw_only=True)
class AuditMix(WarehouseMix):
    """The audit: the warehouse's world and data with more ways for them to go wrong than its text lists, and a
    brief that publishes the rules of a finding but no mechanism (world/audit_brief.py).

    `defect_count`: how many of its `defects` an episode draws (inclusive); `held_out_kinds` and `held_out_defects`:
    the incident kinds and defect mechanisms an episode of the train split never holds (the split follows the seed:
    task_splits.mechanism_split), so the eval split measures whether an agent finds what no training episode showed
    it; `margin`: the relative move that makes a date and segment a finding (world/audit_brief.py states it);
    `listed_defects`: how many of an episode's defects at most are mechanisms the warehouse's brief lists (a listed
    mechanism is a query to a reader of that brief, which this tier is not built to reward); `defect_overlap_share`:
    the share of episodes in which a defect lands on an incident's date in a segment sharing its traffic, as real
    failures coincide (each row still follows the rules with the other present). Its incidents are placed
    only where they are clear in their own data (`only_clear`): a sample leaves many segments, and many hosts'
    cuboids, too thin for a change to show. `repaired_values`: a data defect's row also reports `repaired_value`,
    the metric's value without the defect, and is graded on it (world/audit_brief.py states the rule). `weights`:
    each mechanism's chance of being drawn against the others', by name (catalog/audit_weights.py: so that each
    yields its aimed share of the expected rows); None: every mechanism alike, as version 1 draws them."""

    held_out_kinds: tuple[str, ...] = ()
    held_out_defects: tuple[str, ...] = ()
    defect_count: tuple[int, int] = (2, 4)
    margin: float = 0.1
    listed_defects: int = 1
    defect_overlap_share: float = 0.5
    repaired_values: bool = True  # type: ignore[misc]  # a field here; False for every other segmented mix
    weights: tuple[tuple[str, float], ...] | None = None  # type: ignore[misc]  # a field here; None elsewhere
    only_clear: ClassVar[bool] = True

    def __post_init__(self) -> None:
        unknown = (set(self.held_out_kinds) - set(self.incident_kinds)) | (
            set(self.held_out_defects) - set(self.defects)
        )
        if unknown:
            raise ValueError(f"held-out mechanisms must be among the mix's own: {sorted(unknown)}")
        if not 0 < self.margin < 1 or not 1 <= self.defect_count[0] <= self.defect_count[1]:
            raise ValueError(
                f"a margin in (0, 1) and a defect count range of at least one: {self.margin}, {self.defect_count}"
            )
        if self.listed_defects < 0:
            raise ValueError(f"listed_defects must be at least 0, got {self.listed_defects}")
        if not 0 <= self.defect_overlap_share <= 1:
            raise ValueError(f"defect_overlap_share must be in [0, 1], got {self.defect_overlap_share}")
        weighed = dict(self.weights or ())
        unweighed = sorted(m for m in (*self.incident_kinds, *self.defects) if not weighed.get(m, 0.0) > 0)
        if self.weights is not None and unweighed:
            raise ValueError(f"every mechanism needs a positive weight: {unweighed}")

    def drawn(self, split: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The incident kinds and defect mechanisms an episode of `split` draws from: all of them in the eval
        split, all but the held-out ones in the train split."""
        if split not in ("train", "eval"):
            raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
        if split == "eval":
            return self.incident_kinds, self.defects
        return (
            tuple(k for k in self.incident_kinds if k not in self.held_out_kinds),
            tuple(d for d in self.defects if d not in self.held_out_defects),
        )
