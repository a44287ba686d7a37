"""Every frontier incident kind fits the published definition of the family it is reported as, and no other.

Each family's definition (families.py, published in the brief's families table) is turned here into a check on
the data: what the incident did to its segment's counts on its date, against the median of the segment's clean
same-weekday peers. The checks read only the final counts, as an analyst would, so a kind whose injected signature
drifts from its family's text fails here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from core_helpers import reset_episode

from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES
from metric_tracker_rl.catalog.published import ANOMALY_TYPES
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import EVENTS, TIERS, WAREHOUSE, Tier
from metric_tracker_rl.generation.kinds import INCIDENT_KIND_REGISTRY, SegmentIncident
from metric_tracker_rl.generation.kinds.cuboid import COMMON_RATE_SPREAD
from metric_tracker_rl.generation.segmented import DrawnWorld, build_world
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld, build_warehouse_world
from metric_tracker_rl.world.daily_panel import same_weekday_peer_lists
from metric_tracker_rl.world.events import MICROS_PER_SECOND, day_start_micros, event_code
from metric_tracker_rl.world.metrics_layer import counted_events, counted_sessions
from metric_tracker_rl.world.segments import Segment, holiday_days

# A segment's daily values move by several percent on their own (its cells' day noise and sampling), so:
MOVED = 0.15  # a daily value moved when it is this share or more away from its usual value
STEADY = 0.12  # and stayed put when within this share of it
STOPPED = 0.2  # a block of hours in which a step converts under this share of its usual rate nearly stopped ...
EXPECTED = 20  # ... where its usual rate expects this many conversions from the block's arrivals
# A sample's blocks hold fewer (a payment failure's block is sized to expect CLEAR_BLOCK_ORDERS orders there, and
# holds fewer or more as sampled): there a block is read from this many, and nearly stopped only where so few
# conversions have less than STOP_CHANCE at its usual rate (none of eight; one of ten; two of fourteen).
SAMPLE_EXPECTED = 8
STOP_CHANCE = 5e-4
BLOCK = (2, 8)  # the shortest and longest block of hours read
MIN_EVENTS = 100  # an hour's app opens are compared only where they usually number this many


@dataclass(frozen=True)
class Signature:
    """What an incident did to its segment on its date, against the clean same-weekday peers' median."""

    opens: float  # relative change of the day's app opens
    rates: np.ndarray  # (4,) relative change of each adjacent step's daily conversion
    stopped: np.ndarray  # (4,) bool: a block of hours in which the step nearly stopped while its arrivals were usual
    low_open_hours: int  # hours whose app opens fell under half their usual number
    opens_stopped: bool  # a block of hours whose app opens fell under a fifth of their usual number
    exceeds: bool  # some hour logs more of an event than of the step before it
    menu_opens: float  # relative change of the day's menu opens
    rate_noise: np.ndarray  # (4,) each step's relative sampling deviation that day (a small segment's is large)
    rate_sd: np.ndarray  # (4,) the same at the step's usual rate over the day's arrivals: how far sampling moves it
    open_noise: float  # the relative sampling deviation of the day's app opens


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den > 0)


def _poisson_at_most(count: float, mean: float) -> float:
    """The chance of `count` or fewer events where `mean` are expected."""
    return sum(math.exp(k * math.log(mean) - mean - math.lgamma(k + 1)) for k in range(int(count) + 1))


def signature(today: np.ndarray, usual: np.ndarray, sampled: bool = False) -> Signature:
    """today, usual: (24, 5) counts of one segment on the incident's date and as they usually are; `sampled`: they
    are a sample's (a block of hours is read from SAMPLE_EXPECTED conversions, by their chance)."""
    expected_at_least = SAMPLE_EXPECTED if sampled else EXPECTED
    daily, usual_daily = today.sum(axis=0), usual.sum(axis=0)
    usual_daily_rate = _ratio(usual_daily[1:], usual_daily[:-1])
    rates = _ratio(_ratio(daily[1:], daily[:-1]), usual_daily_rate) - 1.0
    stopped, opens_stopped = np.zeros(4, dtype=bool), False
    all_day = np.nan_to_num(usual_daily_rate * daily[:-1])
    for length in range(BLOCK[0], BLOCK[1] + 1):
        for start in range(24 - length + 1):
            hours = slice(start, start + length)
            arrivals, usual_arrivals = today[hours, :-1].sum(axis=0), usual[hours, :-1].sum(axis=0)
            # The block's usual rate over its arrivals today (an hour's own rate is noisy where it holds few).
            expected = np.nan_to_num(_ratio(usual[hours, 1:].sum(axis=0), usual_arrivals) * arrivals)
            # Arrived as usual: within 30%, or three sampling deviations where a block holds few arrivals.
            tolerance = np.maximum(0.3, 3 / np.sqrt(np.maximum(usual_arrivals, 1.0)))
            arrived = np.abs(_ratio(arrivals, usual_arrivals) - 1.0) <= tolerance
            converted = today[hours, 1:].sum(axis=0)
            # The rest of the day converts as usual (within 30%): the block stopped, not the whole day.
            rest = (today[:, 1:].sum(axis=0) - converted) >= 0.7 * (all_day - expected)
            few = converted < STOPPED * expected
            if sampled:
                few &= [
                    bool(f) and _poisson_at_most(c, e) < STOP_CHANCE
                    for f, c, e in zip(few, converted, expected, strict=True)
                ]
            stopped |= arrived & rest & (expected >= expected_at_least) & few
            opens_stopped |= bool(usual_arrivals[0] >= expected_at_least and arrivals[0] < STOPPED * usual_arrivals[0])
    low_opens = (usual[:, 0] >= MIN_EVENTS) & (today[:, 0] < 0.5 * usual[:, 0])
    return Signature(
        opens=float(daily[0] / usual_daily[0] - 1.0),
        rates=rates,
        stopped=stopped,
        low_open_hours=int(low_opens.sum()),
        opens_stopped=opens_stopped,
        exceeds=bool((today[:, 1:] > today[:, :-1]).any()),
        menu_opens=float(daily[1] / usual_daily[1] - 1.0),
        rate_noise=np.sqrt(np.maximum(1.0 - _ratio(daily[1:], daily[:-1]), 0.0) / np.maximum(daily[1:], 1.0)),
        rate_sd=np.sqrt(_ratio(1.0 - usual_daily_rate, usual_daily_rate * np.maximum(daily[:-1], 1.0))),
        open_noise=float(1.0 / np.sqrt(max(usual_daily[0], 1.0))),
    )


def _rates_steady(s: Signature) -> bool:
    """Every step within STEADY of its usual rate, or within three deviations of its day where that is wider: its
    sampling and the day-to-day spread every segment shares (the aggregate's, COMMON_RATE_SPREAD)."""
    sampling = np.maximum(s.rate_noise, s.rate_sd)
    return bool(np.all(np.abs(s.rates) <= np.maximum(STEADY, 3 * np.hypot(sampling, COMMON_RATE_SPREAD))))


def _opens_moved(s: Signature, sign: int) -> bool:
    """The day's app opens moved by MOVED in the sign's direction, beyond three sampling deviations of them too."""
    return sign * s.opens >= np.hypot(MOVED, 3 * s.open_noise)


def _opens_steady(s: Signature) -> bool:
    """Within STEADY of the usual opens, or within three sampling deviations where a sample makes that wider."""
    return abs(s.opens) <= max(STEADY, 3 * s.open_noise)


def _no_block(s: Signature) -> bool:
    return not s.stopped.any()


def _moved(s: Signature) -> float:
    """How far the strongest step must move to have moved: MOVED, or three sampling deviations of that step where
    a sample makes that wider."""
    moved = np.abs(s.rates) / np.hypot(s.rate_sd, COMMON_RATE_SPREAD)
    step = np.nanargmax(np.where(np.isfinite(moved), moved, np.nan))
    return max(MOVED, 3 * float(s.rate_sd[step]))


def _strongest_step(s: Signature) -> float:
    """The relative change of the step that moved most, in deviations of its day (a segment's other steps move by
    sampling too, and a late step over few arrivals moves most)."""
    moved = np.abs(s.rates) / np.hypot(s.rate_sd, COMMON_RATE_SPREAD)
    return float(s.rates[np.nanargmax(np.where(np.isfinite(moved), moved, np.nan))])


# Each published definition as a check on a signature (the definition's words in the comment).
DEFINITIONS: dict[str, Callable[[Signature], bool]] = {
    # "One funnel step converts worse all day ...; the counts after it fall with it"
    "rate_drop_from_median": lambda s: (
        _strongest_step(s) <= -_moved(s) and _opens_steady(s) and _no_block(s) and not s.exceeds
    ),
    # "One funnel step converts better all day ..."
    "rate_spike_from_median": lambda s: _strongest_step(s) >= _moved(s) and _opens_steady(s) and not s.exceeds,
    # "Fewer people open the app, all day or during an outage of a few hours in which the traffic collapses; those
    # who come convert as usual, so every count falls together and no rate moves"
    "absolute_drop_in_event_count": lambda s: (
        (_opens_moved(s, -1) or ((s.low_open_hours >= 2 or s.opens_stopped) and s.opens < 3 * s.open_noise))
        and _rates_steady(s)
        and _no_block(s)
    ),
    # "Extra real users arrive ... and convert as usual, so every count rises together and no rate moves"
    "absolute_spike_in_event_count": lambda s: _opens_moved(s, 1) and _rates_steady(s),
    # "One step almost stops converting for a block of hours while the steps before it arrive as usual"
    "funnel_break": lambda s: not _no_block(s),
    # "Non-converting app opens ... arrive in a block of hours and never reach the menu: ... the later counts do not"
    "hourly_traffic_mix_shift": lambda s: (
        s.opens >= MOVED and s.rates[0] <= -MOVED and abs(s.menu_opens) <= max(s.opens / 2, STEADY)
    ),
    # "A client logs one event more than once ..., so its count exceeds the step before it"
    "instrumentation_data_quality_issue": lambda s: s.exceeds,
}


def test_every_published_family_has_a_check() -> None:
    assert set(DEFINITIONS) == set(ANOMALY_TYPES)
    assert all(PUBLISHED_FAMILIES[name].definition for name in ANOMALY_TYPES)


@dataclass(frozen=True)
class Published:
    """What a tier publishes of one episode, as the checks read it: each segment's hourly counts by date (`hourly`,
    (D, 24, 5)), the incidents placed, and the dates that are not clean peers (an incident's, a holiday, a data
    defect's and the dates beside it)."""

    hourly: Callable[[Segment], np.ndarray]
    incidents: tuple[SegmentIncident, ...]
    perturbed: frozenset[int]
    hours_of_daily_fields: bool  # whether a segment naming channel or user type has hours of its own
    sampled: bool = False  # a sample's hours hold few events: their usual value is the peers' mean, not median


def _published_counts(world: DrawnWorld) -> Published:
    """A tier of counts publishes its cells' hourly counts; a segment is the sum of its cells."""
    data = world.data

    def hourly(segment: Segment) -> np.ndarray:
        return data.hourly[data.layout.mask(segment)].sum(axis=0).astype(float)

    perturbed = {incident.record.day for incident in world.incidents} | set(holiday_days(data.num_days))
    return Published(hourly, tuple(world.incidents), frozenset(perturbed), hours_of_daily_fields=False)


def _published_events(world: WarehouseWorld) -> Published:
    """A tier of raw events publishes them with the metrics layer that defines every reported number: a segment's
    counts are its counted sessions reaching each step (the dashboard's sessions, menu_sessions, ...), by the
    reporting date and hour of each session's counted app_open, in any of the layer's fields (channel and user
    type included). A data defect's dates, and a day either side, are not clean peers."""
    log, counted = world.log, counted_sessions(world.log)
    events = log.events
    opens = counted_events(log) & (events.name == event_code("app_open"))
    first = np.full(len(log.sessions.user), np.iinfo(np.int64).max)
    np.minimum.at(first, events.session[opens], events.timestamp_us[opens])
    hour = (first[first < np.iinfo(np.int64).max] - day_start_micros(0)) // (3600 * MICROS_PER_SECOND) % 24
    slot = counted.day * 24 + hour

    def hourly(segment: Segment) -> np.ndarray:
        keep = counted.mask(log, segment)
        return np.stack(
            [
                np.bincount(slot[keep], counted.reached[keep, step], log.num_days * 24)
                for step in range(counted.reached.shape[1])
            ],
            axis=1,
        ).reshape(log.num_days, 24, -1)

    perturbed = {incident.record.day for incident in world.incidents} | set(holiday_days(log.num_days))
    perturbed |= {day + shift for defect in world.defects for day in defect.days for shift in (-1, 0, 1)}
    return Published(hourly, world.incidents, frozenset(perturbed), hours_of_daily_fields=True, sampled=True)


def _today_and_usual(published: Published, incident: SegmentIncident) -> tuple[np.ndarray, np.ndarray]:
    """The segment's hourly counts on the date, and as they usually are: a new version against its platform's
    other versions that day (it had no traffic before), any other segment against the median of its clean
    same-weekday peers, scaled by how the rest of the world's app opens moved (the trend and the day's demand)."""
    segment, day = incident.segment, incident.record.day
    own = published.hourly(segment)
    today = own[day]
    if segment.app_version is not None:
        others = published.hourly(Segment(platform=segment.platform))[day] - today
        return today, others * today[:, :1].sum() / max(others[:, 0].sum(), 1.0)
    peers = [p for p in same_weekday_peer_lists(len(own))[day] if p not in published.perturbed]
    rest = published.hourly(Segment())[..., 0].sum(axis=1) - own[..., 0].sum(axis=1)  # (D,) the others' app opens
    scaled = own[peers] * (rest[day] / rest[peers])[:, None, None]
    # An hour's median over a few peers is biased low where an hour holds a few events (most are 0 or 1).
    return today, np.mean(scaled, axis=0) if published.sampled else np.median(scaled, axis=0)


def _compared_opens(published: Published, incident: SegmentIncident) -> float:
    """The app opens a date's comparison rests on: the segment's own, and for a new version the fewer of its own and
    its platform's other versions' (late in a rollout the others hold little)."""
    own = published.hourly(incident.segment)[incident.record.day, :, 0].sum()
    if incident.segment.app_version is None:
        return float(own)
    platform = published.hourly(Segment(platform=incident.segment.platform))[incident.record.day, :, 0].sum()
    return float(min(own, platform - own))


def _published(tier: str, kind: str, seed: int) -> Published:
    """The episode a reset draws with two incidents of `kind` and no look-alikes, as its tier publishes it."""
    config = resolve_episode_config(difficulty=tier, seed=seed, incident_kinds=[kind], anomaly_count=2, decoy_ratio=0)
    segmented = TIERS[tier].segmented
    assert segmented is not None
    if TIERS[tier].data == EVENTS:
        return _published_events(build_warehouse_world(TIERS[tier], config))
    return _published_counts(build_world(TIERS[tier], config))


def _signatures(tier: str, kind: str, seeds: range) -> list[tuple[int, str, Signature]]:
    """Every incident of `kind` over the seeds, as its segment's signature on the incident's date with the most
    traffic (a new version carries little on its rollout's first dates, so little that sampling alone moves it)."""
    found = []
    segmented = TIERS[tier].segmented
    share = 1.0 if segmented is None else segmented.observed_share
    for seed in seeds:
        published = _published(tier, kind, seed)
        dates: dict[tuple[int, int], list[SegmentIncident]] = {}
        for incident in published.incidents:
            # A root cause naming a daily-only dimension of counts (deep's channel, user type) has no hours of its
            # own: its daily evidence is checked by test_a_leaf_cuboids_own_daily_data_shows_its_incident.
            if incident.kind == kind and (published.hours_of_daily_fields or not incident.segment.names_daily_field):
                first = incident.record.continues if incident.record.continues is not None else incident.record.day
                dates.setdefault((first, hash(incident.segment)), []).append(incident)
        for incidents in dates.values():
            busiest = max(incidents, key=lambda incident: _compared_opens(published, incident))
            today, usual = _today_and_usual(published, busiest)
            # Too small a segment for its hours to tell (deep's cuboids); a sample's counts are read where its
            # segment holds the same share of that.
            if usual[:, 0].sum() < MIN_EVENTS * 24 * share:
                continue
            found.append((seed, busiest.record.description, signature(today, usual, sampled=share < 1)))
    return found


# The kinds whose evidence is a block of hours, which name cell fields only (tests/test_hourly_evidence.py).
HOURLY_EVIDENCE_KINDS = ("payment_failure", "segment_outage", "partner_payment_failure", "country_bots")


def _read_in_cells(tier: Tier, kind: str) -> bool:
    """Whether the kind's incidents at the tier are read in the hourly cells: every kind but where root causes
    start two fields deep (abyss), whose all-day kinds then name channel or user type nearly always and are read in
    their leaves instead (test_a_leaf_cuboids_own_daily_data_shows_its_incident)."""
    assert tier.segmented is not None
    return tier.segmented.min_cuboid_depth < 2 or kind in HOURLY_EVIDENCE_KINDS


# The kinds whose incidents the warehouse's sample does not always show as their family (32 seeds, two incidents of
# the kind each, no look-alikes; the kinds' sizing for the sample decides them): what the events show instead.
WAREHOUSE_UNREAD = {
    "release_regression": "2 of 27 show no family: the broken step falls 50% over a new version's few carts, under "
    "three sampling deviations",
    "payment_failure": "13 of 64 read as a rate drop or as nothing: the block holds too few counted orders for its "
    "stop to be beyond chance (STOP_CHANCE)",
    "partner_payment_failure": "4 of 14 read as a rate drop or as nothing: a partner's block holds too few counted "
    "orders for its stop to be beyond chance (STOP_CHANCE)",
    "segment_outage": "1 of 64 also reads as a rate drop: on the outage's date the platform's payment step falls 23% "
    "in the sample",
    "level_shift": "4 of 58 do not read as a rate drop: the segment's opens move 13-23% (returning users' scaled by "
    "the new users' day) or the fall spreads to a second step",
    "experiment_breakage": "6 of 61 do not read as a rate drop: the broken step nearly stops (80-98%) and the arm's "
    "opens, scaled by the rest's day, move 18-54%",
}


def _family_marks(tier: Tier, kind: str) -> list[pytest.MarkDecorator]:
    marks = [pytest.mark.slow] if tier.dimensions[3:] else []
    if tier is WAREHOUSE and kind in WAREHOUSE_UNREAD:
        marks.append(pytest.mark.xfail(strict=True, reason=WAREHOUSE_UNREAD[kind]))
    return marks


@pytest.mark.parametrize(
    ("tier", "kind"),
    [
        pytest.param(name, kind, marks=_family_marks(tier, kind))
        for name, tier in TIERS.items()
        if tier.segmented is not None and (tier.listed or tier is WAREHOUSE) and not tier.hides_mechanisms
        for kind in tier.incident_kinds
        if _read_in_cells(tier, kind)
    ],
)
def test_each_incident_kind_fits_its_familys_definition_and_no_other(tier: str, kind: str) -> None:
    """At every listed tier that publishes its kinds and uses this one, and at the warehouse, listed or not, as it
    publishes its incidents (another unlisted tier is still being built; its own tests hold what is finished). A tier
    that names no mechanism (the audit) takes no kind from a reset; its kinds are held to their segments and dates by
    tests/test_audit_incidents.py. A tier with leaves below the hourly cells sweeps 32 seeds per kind: slow (the edit
    loop checks each kind at frontier)."""
    family = INCIDENT_KIND_REGISTRY[kind].family
    leaves = bool(TIERS[tier].dimensions[3:])  # most of deep's root causes name a daily-only field or are small
    signatures = _signatures(tier, kind, range(32 if leaves else 12))
    assert len(signatures) >= (4 if leaves else 6)  # a kind that finds no room falls back to an outage
    for seed, description, sig in signatures:
        fits = {name for name, fitting in DEFINITIONS.items() if fitting(sig)}
        assert fits == {family}, (kind, seed, description, fits, sig)


# The kinds whose root cause may name channel or user type, at deep and at abyss: every kind but web's tracking bug
# (all of web) and those whose evidence is a block of hours.
LEAF_TIERS = ("deep", "abyss")
LEAF_KINDS = [
    (tier, kind)
    for tier in LEAF_TIERS
    for kind in TIERS[tier].incident_kinds
    if INCIDENT_KIND_REGISTRY[kind].family != "instrumentation_data_quality_issue" and kind not in HOURLY_EVIDENCE_KINDS
]


# The edit loop checks the first such kind; the others are slow.
@pytest.mark.parametrize(
    ("tier", "kind"),
    [pytest.param(*pair, marks=() if index == 0 else pytest.mark.slow) for index, pair in enumerate(LEAF_KINDS)],
)
def test_a_leaf_cuboids_own_daily_data_shows_its_incident(tier: str, kind: str) -> None:
    """A root cause that names channel or user type: its reported value moved in its own daily data (the
    expected row, read back from the cuboid's leaves with the published baseline rule), by MOVED or more of its
    baseline in the family's direction."""

    checked = 0
    for seed in range(16):
        episode = reset_episode(difficulty=tier, seed=seed, incident_kinds=[kind], anomaly_count=2, decoy_ratio=0)
        for row in episode.truth.expected_rows:
            if row.channel is None and row.user_type is None:
                continue
            rising = row.anomaly_type in (
                "rate_spike_from_median",
                "absolute_spike_in_event_count",
                "hourly_traffic_mix_shift",
            )
            change = row.delta_value / row.baseline_value if row.baseline_value else 0.0
            assert (change >= MOVED * 0.5) if rising else (change <= -MOVED * 0.5), (kind, seed, row)
            checked += 1
    assert checked, f"{kind} drew no cuboid naming channel or user type over 16 seeds"
