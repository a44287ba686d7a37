"""The near-miss table of the overlap credit (docs/grading.md), computed from one fixed example so the docs and
the grader cannot drift: tests/test_overlap_credit.py checks that the docs hold exactly `near_miss_table()`.

The example is deep's world on one date with the published shares (dimensions.DIMENSIONS) and fixed version
shares, every dimension independent of the others, so each figure is a product of shares a reader can check.
Print the table with `uv run python -m metric_tracker_rl.grading.overlap_examples`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metric_tracker_rl.catalog.dimensions import DIMENSIONS, PLATFORM_SHARE
from metric_tracker_rl.catalog.published import COUNT_COLUMNS
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.grading.grader import (
    LeafTraffic,
    SegmentOverlap,
    leaf_traffic_of,
    segment_match,
    segment_overlap,
)
from metric_tracker_rl.world.segments import LeafSplit, Segment, SegmentedData, world_of
from metric_tracker_rl.world.traffic_split import cell_layout

EXAMPLE_DATE = "2026-03-10"
EXAMPLE_OPENS = 1_000_000  # the date's app opens over every leaf
# Each mobile platform's versions on the example date, oldest first: the one live at the window's start and two
# releases (segments.version_labels(31)).
EXAMPLE_VERSION_SHARES = (0.25, 0.6, 0.15)


def example_traffic() -> LeafTraffic:
    """T of the example: each leaf's opens on EXAMPLE_DATE as the product of its values' shares."""
    world = world_of(TIERS["deep"].dimensions)
    layout = cell_layout(31, world.country.values)
    split = LeafSplit(world.daily)
    version_share = {
        version: share
        for platform in ("ios", "android")
        for version, share in zip(layout.platform_versions(platform), EXAMPLE_VERSION_SHARES, strict=True)
    } | {"web": 1.0}
    cells = np.array(
        [
            PLATFORM_SHARE[p] * world.country.share[c] * version_share[v]
            for p, c, v in zip(layout.platforms, layout.countries, layout.versions, strict=True)
        ]
    )
    opens = EXAMPLE_OPENS * np.outer(cells, split.shares()).reshape(-1)
    leaf_daily = np.zeros((len(opens), 1, len(COUNT_COLUMNS)))
    leaf_daily[:, 0, COUNT_COLUMNS.index("app_opens")] = opens
    segments = SegmentedData(
        layout, (), np.zeros((layout.size, 1, 24, len(COUNT_COLUMNS))), split=split, leaf_daily=leaf_daily
    )
    return leaf_traffic_of(segments, (EXAMPLE_DATE,))


@dataclass(frozen=True)
class NearMiss:
    case: str
    incident: Segment
    reported: Segment


THREE_DIMS = Segment("android", "IN", user_type="new")
TWO_DIMS = Segment("web", channel="paid_social")
NEAR_MISSES: tuple[NearMiss, ...] = (
    NearMiss("exact", THREE_DIMS, THREE_DIMS),
    NearMiss("parent cuboid, 2 of its 3 dims", THREE_DIMS, Segment("android", "IN")),
    NearMiss("parent cuboid, 2 of its 3 dims", THREE_DIMS, Segment(country="IN", user_type="new")),
    NearMiss("parent cuboid, 1 of its 3 dims", THREE_DIMS, Segment("android")),
    NearMiss("parent cuboid, 1 of its 3 dims", THREE_DIMS, Segment(country="IN")),
    NearMiss("parent cuboid, 1 of its 3 dims", THREE_DIMS, Segment(user_type="new")),
    NearMiss("child cuboid (one more dim)", THREE_DIMS, Segment("android", "IN", "6.32.0", user_type="new")),
    NearMiss("child cuboid (one more dim)", THREE_DIMS, Segment("android", "IN", channel="organic", user_type="new")),
    NearMiss(
        "overlapping, neither inside the other", THREE_DIMS, Segment("android", channel="paid_social", user_type="new")
    ),
    NearMiss("sibling (one value wrong)", THREE_DIMS, Segment("android", "IN", user_type="returning")),
    NearMiss("sibling (one value wrong)", THREE_DIMS, Segment("android", "BR", user_type="new")),
    NearMiss("aggregate (no segment)", THREE_DIMS, Segment()),
    NearMiss("disjoint", THREE_DIMS, Segment("ios")),
    NearMiss("exact", TWO_DIMS, TWO_DIMS),
    NearMiss("exact, written with web's version", TWO_DIMS, Segment("web", None, "web", "paid_social")),
    NearMiss("parent cuboid, 1 of its 2 dims", TWO_DIMS, Segment("web")),
    NearMiss("parent cuboid, 1 of its 2 dims", TWO_DIMS, Segment(channel="paid_social")),
    NearMiss("child cuboid (one more dim)", TWO_DIMS, Segment("web", "US", channel="paid_social")),
    NearMiss("sibling (one value wrong)", TWO_DIMS, Segment("web", channel="paid_search")),
    NearMiss("aggregate (no segment)", TWO_DIMS, Segment()),
)


def near_miss_overlaps(traffic: LeafTraffic | None = None) -> list[tuple[NearMiss, SegmentOverlap]]:
    """Every near miss with its overlap under the example's traffic."""
    traffic = traffic or example_traffic()
    weights = traffic.on(EXAMPLE_DATE)
    return [(miss, segment_overlap(miss.reported, miss.incident, weights, traffic.leaves_of)) for miss in NEAR_MISSES]


def near_miss_table() -> str:
    """The docs' near-miss table: coverage, purity and credit of each case, and frontier's table verdict for it."""
    lines = [
        "| incident | reported | case | coverage | purity | credit | frontier's table verdict |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for miss, overlap in near_miss_overlaps():
        lines.append(
            f"| {miss.incident.label()} | {miss.reported.label()} | {miss.case} | {overlap.coverage:.3f} "
            f"| {overlap.purity:.3f} | {overlap.credit:.3f} | {segment_match(miss.reported, miss.incident)} |"
        )
    return "\n".join(lines)


def example_statement() -> str:
    """The example's traffic in a sentence (the docs quote it above the table)."""
    shares = "; ".join(
        f"{d.field} " + ", ".join(f"{v} {d.share[v]:g}" for v in d.values)
        for d in (DIMENSIONS["platform"], DIMENSIONS["country_wide"], DIMENSIONS["channel"], DIMENSIONS["user_type"])
    )
    versions = ", ".join(
        f"{v} {s:g}" for v, s in zip(("6.31.0", "6.32.0", "6.33.0"), EXAMPLE_VERSION_SHARES, strict=True)
    )
    return (
        f"T = app opens on one date, each leaf's the product of its values' shares: {shares}; on ios and "
        f"android, app_version {versions}."
    )


if __name__ == "__main__":
    print(example_statement())
    print()
    print(near_miss_table())
