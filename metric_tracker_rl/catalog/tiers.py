"""Every tier (a reset's `difficulty`) as one config object: its window, its dimensions, what its incidents are
drawn from and how they mix, its counts, magnitude scale, concurrency, steps and submissions.

One entry builds every tier, metric_tracker_rl.generation.build_episode(config) (an episode config carries its
tier), and the type of the tier's mix names which of three generators it runs:
- the aggregate generator (generation/aggregate.py) fills one funnel with the anomaly families' injectors, at each
  family's magnitude range for the tier (`magnitude_ranges` in metric_tracker_rl/generation/anomalies/), among
  annotated distractors and benign fluctuations. easy, medium and hard use it; it keeps their episodes as they
  always were;
- the segmented generator (generation/segmented.py) splits the funnel into cells along `dimensions` and draws its
  incidents and benign look-alikes from the kinds the tier names (metric_tracker_rl/generation/kinds/), each at its
  default magnitude range times the tier's `magnitude_scale`; registering another kind changes no tier's episodes;
- the warehouse generator (generation/warehouse/) draws the segmented generator's world and publishes it as a raw
  event export (a WarehouseMix: a segmented mix with the sample's own fields).

What a tier's episodes hold (`Tier.holds`: counts, segments, context tables or events) is the seam the rest of the
package reads: a tool declares what it reads (analysis_tools/registry.py), and a tier offers the tools its episodes
can answer.

A new tier is one more entry in TIERS. This module imports nothing of the project but the registry and the mixes
(catalog/mixes.py: each mix type and what an episode holds): the catalog (on the tools' side of the truth wall)
derives its difficulty names and windows from it, and the generators read the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from metric_tracker_rl.catalog.audit_weights import AUDIT_DRAW_WEIGHTS
from metric_tracker_rl.catalog.mixes import (
    CLEAR_OWN_Z,
    CONTEXT,
    COUNTS,
    DATA_OF,
    EVENTS,
    SEGMENTS,
    AbyssMix,
    AggregateMix,
    AuditMix,
    DataKind,
    Holding,
    Mix,
    SegmentedMix,
    WarehouseMix,
    extended,
)
from metric_tracker_rl.catalog.registry import Registry

DEFAULT_MAX_STEPS = 40
DEFAULT_MAX_SUBMISSIONS = 1  # one graded report: it ends the episode, so its feedback cannot be decoded
DEFAULT_TOOL_SCHEMA_BUDGET = 12_000
# The tokens of a whole episode after the prompt (its calls, their results and the report) a training run gives a
# tier's tasks: room for the expert's longest episode there and a learning model's extra calls
# (lab/tests/test_episode_tokens.py holds the expert to it). The rungs above frontier read more per episode, and
# the audit's expert, which reads for what no text lists, the most.
DEFAULT_COMPLETION_TOKENS = 16_384
# The score an episode's report must reach to count as a success (inference.py's [END] line): at most what the tier's
# reference expert scores on a typical episode (at least 0.9 on most of the deep, abyss and warehouse calibration
# seeds, on two in three of the audit's eval seeds), so its own reference reads a success.
DEFAULT_SUCCESS_THRESHOLD = 0.95
CUBOID_SUCCESS_THRESHOLD = 0.9
AUDIT_SUCCESS_THRESHOLD = 0.85
LONG_COMPLETION_TOKENS = 32_768
AUDIT_COMPLETION_TOKENS = 65_536
# The aggregate tiers' episodes are the shortest (their expert's record stays under 36,000 characters, deep's median
# is about 48,000), so their tool lists may take more of a model's context.
AGGREGATE_TOOL_SCHEMA_BUDGET = 13_000
WEEKDAYS = 7
LATE_DATA = "incomplete_last_day"  # the distractor that takes the latest date (and keeps its weekday clean)


@dataclass(frozen=True)
class Tier:
    """One difficulty. `default_density` sets the incident count of a reset that names a density but no count
    (round(density x window), at least one); `count_range` is the range a seeded reset draws its count from (None:
    the density's count, fixed); `perturbed_per_weekday` bounds how many perturbed dates share a weekday, so a
    same-weekday median stays clean (the tier's concurrency); `calibration_seed_base`: its calibration sweep's
    first seed (task_splits.py). Exactly one of `aggregate` and `segmented` names the generator (a WarehouseMix: the
    warehouse's), and what the tier's episodes hold (`holds`). `listed`: in the published difficulty lists
    (published.DIFFICULTIES: the splits, the brief, the task lists); an unlisted tier is
    reachable by reset(difficulty=...) only, while it is being built. `tool_schema_budget`: the characters the
    tier's tool list may take (the OpenAI schemas of the tools it offers, sent with every request:
    view.tool_schemas.schema_chars); a test holds every tier to it. `completion_tokens`: the tokens of a whole
    episode after the prompt that training gives the tier's tasks (training/grpo.py, training/sft.py).
    `version`: which version of the tier this is (from 1). A published version never changes what it asks or how
    it scores; a change that would is a new Tier of the same name and the next version, and the old one stays
    playable beside it (catalog/versions.py), as Gymnasium keeps `-v0` beside `-v1`.
    `success_threshold`: the score a report must reach to count as a success (DEFAULT_SUCCESS_THRESHOLD)."""

    name: str
    window_days: int
    default_density: float
    count_range: tuple[int, int] | None
    perturbed_per_weekday: int
    calibration_seed_base: int
    aggregate: AggregateMix | None = None
    segmented: SegmentedMix | None = None
    max_steps: int = DEFAULT_MAX_STEPS
    max_submissions: int = DEFAULT_MAX_SUBMISSIONS
    listed: bool = True
    tool_schema_budget: int = DEFAULT_TOOL_SCHEMA_BUDGET
    completion_tokens: int = DEFAULT_COMPLETION_TOKENS
    version: int = 1
    success_threshold: float = DEFAULT_SUCCESS_THRESHOLD

    def __post_init__(self) -> None:
        if (self.aggregate is None) == (self.segmented is None):
            raise ValueError(f"tier {self.name!r} needs exactly one of an aggregate and a segmented mix")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"tier {self.name!r}: a version is a whole number from 1, got {self.version!r}")

    @property
    def version_name(self) -> str:
        """The tier and its version as results name them (`audit-v1`)."""
        return f"{self.name}-v{self.version}"

    @property
    def dimensions(self) -> tuple[str, ...]:
        """The dimensions traffic is split along (none: one aggregate funnel)."""
        return () if self.segmented is None else self.segmented.dimensions

    @property
    def incident_kinds(self) -> tuple[str, ...]:
        """The incident kinds the tier draws from, in its config's order (none: one aggregate funnel)."""
        return () if self.segmented is None else self.segmented.incident_kinds

    @property
    def benign_kinds(self) -> tuple[str, ...]:
        """The benign kinds the tier draws its look-alikes from (none: one aggregate funnel)."""
        return () if self.segmented is None else self.segmented.benign_kinds

    @property
    def mix(self) -> AggregateMix | SegmentedMix:
        """The tier's mix, whose type names its generator."""
        mix = self.segmented if self.segmented is not None else self.aggregate
        assert mix is not None
        return mix

    @property
    def holds(self) -> frozenset[Holding]:
        """What the tier's episodes hold, which says which tools answer there (ToolSpec.reads)."""
        return self.mix.holds

    @property
    def data(self) -> DataKind:
        """What the tier's episodes' data are: counts, or a raw event export."""
        return self.mix.data

    @property
    def hides_mechanisms(self) -> bool:
        """Whether the tier publishes the rules of a finding but none of its mechanisms (the audit): no text, setting
        or catalogue it sends names or sizes what can go wrong."""
        return isinstance(self.segmented, AuditMix)

    @property
    def repaired_values(self) -> bool:
        """Whether a data defect's row also reports the value its defect hid (its mix's `repaired_values`)."""
        return self.segmented is not None and self.segmented.repaired_values

    @property
    def segment_credit(self) -> Literal["table", "overlap"] | None:
        """How a report row's segment is credited (None: the tier has no segments)."""
        return None if self.segmented is None else self.segmented.segment_credit

    @property
    def max_incidents(self) -> int:
        """The most incidents a reset may ask for. On an aggregate tier, what the calendar holds: every weekday's
        perturbed dates (the latest date's weekday is kept for late data when the tier has it), less the dates its
        other distractors and its fluctuations take."""
        if self.segmented is not None:
            return self.segmented.max_incidents
        assert self.aggregate is not None
        mix = self.aggregate
        weekdays = WEEKDAYS - (LATE_DATA in mix.distractors)
        other_distractors = sum(kind != LATE_DATA for kind in mix.distractors)
        return self.perturbed_per_weekday * weekdays - other_distractors - len(mix.fluctuations)


AGGREGATE_PER_WEEKDAY = 2  # of a weekday's three same-weekday peers in four weeks, at most one is perturbed

DEEP_MIX = SegmentedMix(
    dimensions=("platform", "country_wide", "app_version", "channel", "user_type"),
    max_incidents=8,
    incident_kinds=(
        "release_regression",
        "payment_failure",
        "web_tracking_bug",
        "country_bots",
        "segment_outage",
        "level_shift",
        "partner_payment_failure",
        "experiment_breakage",
    ),
    benign_kinds=(
        "mix_shift",
        "segment_demand_swing",
        "segment_timing_shift",
        "experiment_effect",
        "country_holiday",
        "campaign",
    ),
    segment_credit="overlap",
    max_cuboid_depth=3,
    concurrency=1,
    context=True,
    note_share=0.5,
)

# Under this expected z, the traffic between two segments one field apart could not show an all-day incident's fall
# (realised, it falls under 2 one time in six): at abyss a row on either is credited as the incident's own.
TWIN_Z = 3.0

# Abyss draws deep's kinds but those confined to one dimension by construction (web_tracking_bug: web's events;
# country_bots: a country's opens), in deep's order.
ABYSS_KINDS = tuple(kind for kind in DEEP_MIX.incident_kinds if kind not in ("web_tracking_bug", "country_bots"))

# The data defects the warehouse draws: those its brief lists (world/warehouse_brief.py), by name.
WAREHOUSE_DEFECTS = (
    "retry_duplicates",
    "tracking_stopped",
    "consent_drop",
    "bot_farm",
    "clock_skew",
    "late_load",
    "transaction_retries",
    "currency_mislabel",
)
WAREHOUSE_SAMPLE_RATE = 1 / 48  # the share of the world's sessions a warehouse export holds
# The warehouse's step budget, from its expert's need: its most calls in an episode (lab/tests/test_warehouse_budget.py
# holds the expert to it), two and a half times over, rounded up to five: room for a model's reading of columns,
# its own scans and a check on each candidate (abyss's 40 steps are about as many times the 15 calls of its
# expert's example episode, lab/docs/abyss_episode.md).
WAREHOUSE_EXPERT_CALLS = 12
WAREHOUSE_MAX_STEPS = 5 * math.ceil(WAREHOUSE_EXPERT_CALLS * 2.5 / 5)
# The audit's, from its expert's need the same way: the warehouse's procedure, then every finder and the audit's
# values (lab/calibration/audit_calibration.py measures its calls; tests/test_audit_expert.py holds it to them).
AUDIT_EXPERT_CALLS = 24
AUDIT_MAX_STEPS = 5 * math.ceil(AUDIT_EXPERT_CALLS * 2.5 / 5)

# The audit's mechanisms: every incident kind of the warehouse and those a business meets beside them, every data
# defect registered (generation/defects/). The held-out ones are drawn in the eval split only. A fall
# that lasts for weeks (persistent_regression, gradual_decline) is left out: the published baseline, the same
# weekday's median over the window, takes such a fall into itself, so its rows would say nothing.
AUDIT_KINDS = (
    *ABYSS_KINDS,
    "checkout_outage_hours",
    "onboarding_break",
    "paid_channel_stop",
    "price_rise",
    "promo_surge",
    "store_feature",
    "search_outage_hours",
    "push_delivery_lapse",
    "stored_card_challenge",
    "member_price_sale",
    "search_ads_pause",
    "regional_sign_out",
)
AUDIT_HELD_OUT_KINDS = ("price_rise", "stored_card_challenge", "member_price_sale", "regional_sign_out")
AUDIT_DEFECTS = (
    *WAREHOUSE_DEFECTS,
    "session_id_reset",
    "pseudo_id_rotation",
    "client_sampling",
    "truncated_batches",
    "background_opens",
    "cookie_reset",
    "debug_build",
    "batch_replay",
    "ingestion_gap",
    "device_clock_ahead",
    "missing_rate_rows",
    "minor_units",
    "untagged_load_test",
    "event_renamed_silently",
    "inverted_rate",
    "menu_prefire",
    "purchase_double_fire",
    "stamped_behind",
)
# No held-out defect is one of the warehouse's: an eval episode's first defect is one no published text lists.
AUDIT_HELD_OUT_DEFECTS = (
    "client_sampling",
    "cookie_reset",
    "missing_rate_rows",
    "device_clock_ahead",
    "minor_units",
    "inverted_rate",
    "menu_prefire",
    "purchase_double_fire",
    "stamped_behind",
)

# The tiers by name, in publication order (the order of the brief's and the splits' difficulty lists).
TIERS: Registry[Tier] = Registry(
    "tier",
    (
        Tier(
            "easy",
            window_days=28,
            default_density=0.07,
            count_range=None,
            perturbed_per_weekday=AGGREGATE_PER_WEEKDAY,
            calibration_seed_base=10_000,
            aggregate=AggregateMix(),
            tool_schema_budget=AGGREGATE_TOOL_SCHEMA_BUDGET,
        ),
        Tier(
            "medium",
            window_days=28,
            default_density=0.1,
            count_range=(1, 4),
            perturbed_per_weekday=AGGREGATE_PER_WEEKDAY,
            calibration_seed_base=20_000,
            tool_schema_budget=AGGREGATE_TOOL_SCHEMA_BUDGET,
            aggregate=AggregateMix(
                distractors=("marketing_campaign", LATE_DATA),
                fluctuations=("timing_shift",),
                incident_timing_shifts=1,
                multi_day_probability=0.3,
            ),
        ),
        Tier(
            "hard",
            window_days=28,
            default_density=0.14,
            count_range=(2, 5),
            perturbed_per_weekday=AGGREGATE_PER_WEEKDAY,
            calibration_seed_base=30_000,
            tool_schema_budget=AGGREGATE_TOOL_SCHEMA_BUDGET,
            aggregate=AggregateMix(
                distractors=("marketing_campaign", LATE_DATA, "public_holiday"),
                fluctuations=("timing_shift", "demand_swing", "audience_swing", "audience_swing"),
                incident_timing_shifts=2,
                multi_day_probability=0.5,
                overlapping_demand_swing_share=(0.15, 0.40),
            ),
        ),
        # Eight weeks: a same-weekday baseline has seven peers, so three perturbed dates on a weekday leave it clean.
        Tier(
            "frontier",
            window_days=56,
            default_density=0.08,
            count_range=(3, 6),
            perturbed_per_weekday=3,
            calibration_seed_base=40_000,
            segmented=SegmentedMix(
                dimensions=("platform", "country", "app_version"),
                max_incidents=8,
                incident_kinds=(
                    "release_regression",
                    "payment_failure",
                    "web_tracking_bug",
                    "country_bots",
                    "segment_outage",
                    "level_shift",
                ),
                benign_kinds=("mix_shift", "segment_demand_swing", "segment_timing_shift"),
            ),
        ),
        # Five dimensions: eight countries, and each cell's days split by acquisition channel and user type. Root
        # causes are cuboids of one to three dimensions, one date carries two overlapping incidents, and context tables
        # with the kinds that need them.
        Tier(
            "deep",
            window_days=56,
            success_threshold=CUBOID_SUCCESS_THRESHOLD,
            default_density=0.08,
            count_range=(3, 6),
            perturbed_per_weekday=3,
            calibration_seed_base=50_000,
            segmented=DEEP_MIX,
            completion_tokens=LONG_COMPLETION_TOKENS,
        ),
        # Deep's world at the edge of the noise: every all-day cuboid incident stands at an expected z of 5.5 to 6.5 in
        # its own data (under the noise model the brief publishes), root causes name two fields or more where that deep
        # a segment is clear, benign blips confined to one leaf light up their parents, and the kinds a whole platform
        # or country carries by construction (a web tracking bug, a country's bots) are left to deep. Listed last, so
        # the eval split's earlier indices keep naming their episodes; its named task is appended to that split too.
        Tier(
            "abyss",
            window_days=56,
            success_threshold=CUBOID_SUCCESS_THRESHOLD,
            default_density=0.08,
            count_range=(3, 6),
            perturbed_per_weekday=3,
            calibration_seed_base=60_000,
            completion_tokens=LONG_COMPLETION_TOKENS,
            segmented=extended(
                DEEP_MIX,
                AbyssMix,
                incident_kinds=ABYSS_KINDS,
                own_z=(5.5, 6.5),
                leaf_blips=5.0,
                min_cuboid_depth=2,
                noise_model=True,
                twin_z=TWIN_Z,
            ),
        ),
        # The warehouse: abyss's kinds in deep's world, seen as a raw event export (a sample of the world's sessions:
        # WAREHOUSE_SAMPLE_RATE of the expected opens, so the kinds size their incidents for that sample's z-scores),
        # its side tables, a metrics layer and a dashboard, with data defects beside the incidents. Listed last, after
        # abyss, so that no earlier train or eval task moves.
        Tier(
            "warehouse",
            window_days=56,
            success_threshold=CUBOID_SUCCESS_THRESHOLD,
            default_density=0.08,
            count_range=(3, 6),
            perturbed_per_weekday=3,
            calibration_seed_base=70_000,
            max_steps=WAREHOUSE_MAX_STEPS,
            completion_tokens=LONG_COMPLETION_TOKENS,
            segmented=extended(
                DEEP_MIX,
                WarehouseMix,
                incident_kinds=ABYSS_KINDS,
                observed_share=WAREHOUSE_SAMPLE_RATE,
                defects=WAREHOUSE_DEFECTS,
            ),
        ),
        # The audit: the warehouse's world and data, more ways for them to go wrong, and no catalogue of those ways in
        # any text. Listed last, after the warehouse, so that no earlier train or eval task moves.
        Tier(
            "audit",
            window_days=56,
            success_threshold=AUDIT_SUCCESS_THRESHOLD,
            default_density=0.08,
            count_range=(3, 6),
            perturbed_per_weekday=3,
            calibration_seed_base=80_000,
            version=2,  # version 1 asked no repaired value (catalog/versions.py keeps it)
            max_steps=AUDIT_MAX_STEPS,
            completion_tokens=AUDIT_COMPLETION_TOKENS,
            segmented=extended(
                DEEP_MIX,
                AuditMix,
                incident_kinds=AUDIT_KINDS,
                observed_share=WAREHOUSE_SAMPLE_RATE,
                defects=AUDIT_DEFECTS,
                held_out_kinds=AUDIT_HELD_OUT_KINDS,
                held_out_defects=AUDIT_HELD_OUT_DEFECTS,
                weights=AUDIT_DRAW_WEIGHTS,  # version 2's draw (version 1 drew every mechanism alike)
            ),
        ),
    ),
)
WAREHOUSE = TIERS["warehouse"]
AUDIT = TIERS["audit"]


# The catalog's public names: its own, and the mixes' (catalog/mixes.py) that it re-exports, so a caller imports
# what a tier draws and what it holds from here.
__all__ = [
    "DEFAULT_MAX_STEPS",
    "DEFAULT_MAX_SUBMISSIONS",
    "DEFAULT_TOOL_SCHEMA_BUDGET",
    "DEFAULT_COMPLETION_TOKENS",
    "LONG_COMPLETION_TOKENS",
    "AUDIT_COMPLETION_TOKENS",
    "AGGREGATE_TOOL_SCHEMA_BUDGET",
    "WEEKDAYS",
    "LATE_DATA",
    "Tier",
    "AGGREGATE_PER_WEEKDAY",
    "DEEP_MIX",
    "TWIN_Z",
    "ABYSS_KINDS",
    "WAREHOUSE_DEFECTS",
    "WAREHOUSE_SAMPLE_RATE",
    "WAREHOUSE_EXPERT_CALLS",
    "WAREHOUSE_MAX_STEPS",
    "AUDIT_EXPERT_CALLS",
    "AUDIT_MAX_STEPS",
    "AUDIT_KINDS",
    "AUDIT_HELD_OUT_KINDS",
    "AUDIT_DEFECTS",
    "AUDIT_HELD_OUT_DEFECTS",
    "TIERS",
    "WAREHOUSE",
    "AUDIT",
    "CLEAR_OWN_Z",
    "CONTEXT",
    "COUNTS",
    "DATA_OF",
    "EVENTS",
    "SEGMENTS",
    "AbyssMix",
    "AggregateMix",
    "AuditMix",
    "DataKind",
    "Holding",
    "Mix",
    "SegmentedMix",
    "WarehouseMix",
    "extended",
]
