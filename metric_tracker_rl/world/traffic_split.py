"""How a segmented world's expected traffic splits among its cells: each cell's share of traffic and its conversion
factors (its platform's and its country's), each version's share of its platform as releases roll out, and the
day-to-day noise of a cell and a leaf around them.

Public, like segments.py (the generator draws each episode's plan around these; the brief may describe them).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from metric_tracker_rl.catalog.dimensions import (
    COUNTRIES,
    DIMENSIONS,
    PLATFORM_RATE_FACTORS,
    PLATFORM_SHARE,
    PLATFORMS,
    Dimension,
)
from metric_tracker_rl.world.segments import (
    MOBILE_PLATFORMS,
    RELEASES_PER_PLATFORM,
    WEB_VERSION,
    CellLayout,
    Release,
)

SEGMENT_DAY_SIGMA = 0.05  # log-normal noise of a cell's traffic per date
SEGMENT_RATE_SIGMA = 0.03  # log-normal noise of a cell's step rates per date
# A leaf's share of its cell's traffic, and its step rates, vary date by date by this log-normal noise.
LEAF_SHARE_SIGMA = 0.05
LEAF_RATE_SIGMA = 0.03
UPDATE_ADOPTION = 0.95  # offered users who run the new version (the rest stay on the one before)
HOLIDAY_TRAFFIC_FACTOR = 0.8  # a holiday's traffic, against a usual day's (segments.HOLIDAYS)


def version_labels(base_minor: int) -> tuple[str, ...]:
    """The version live at the window's start and the releases after it (both mobile platforms share numbers).
    Three parts, as app stores show them: a label never reads as a number, so a table shows it bare (6.31.0,
    where a number-like 6.31 would need quotes to stay text)."""
    return tuple(f"6.{base_minor + i}.0" for i in range(RELEASES_PER_PLATFORM + 1))


@cache
def cell_layout(base_minor: int, countries: tuple[str, ...] = COUNTRIES) -> CellLayout:
    platforms, cell_countries, versions = [], [], []
    for platform in PLATFORMS:
        labels = version_labels(base_minor) if platform in MOBILE_PLATFORMS else (WEB_VERSION,)
        for version in labels:
            for country in countries:
                platforms.append(platform)
                cell_countries.append(country)
                versions.append(version)
    return CellLayout(tuple(platforms), tuple(cell_countries), tuple(versions))


def version_shares(layout: CellLayout, releases: tuple[Release, ...], num_days: int) -> np.ndarray:
    """(S, D) share of its platform's traffic that each cell's version carries on each date.

    A newer release takes UPDATE_ADOPTION of the users offered it from every older version alike, so the oldest
    version keeps a tail of users who never update."""
    shares = np.zeros((layout.size, num_days))
    for platform in PLATFORMS:
        versions = layout.platform_versions(platform)
        per_version = np.zeros((len(versions), num_days))
        per_version[0] = 1.0
        for release in (r for r in releases if r.platform == platform):
            adopted = UPDATE_ADOPTION * release.offered_share(num_days)
            position = versions.index(release.version)
            per_version[position] = adopted
            per_version[:position] *= 1.0 - adopted
        for position, version in enumerate(versions):
            cells = np.array(
                [p == platform and v == version for p, v in zip(layout.platforms, layout.versions, strict=True)]
            )
            shares[cells] = per_version[position]
    return shares


def cell_mix(layout: CellLayout, country: Dimension = DIMENSIONS["country"]) -> tuple[np.ndarray, np.ndarray]:
    """(S,) expected share of traffic of each cell's platform and country, and (S, 4) its conversion factors."""
    share = np.array(
        [PLATFORM_SHARE[p] * country.share[c] for p, c in zip(layout.platforms, layout.countries, strict=True)]
    )
    factors = np.array(
        [
            np.multiply(PLATFORM_RATE_FACTORS[p], country.rate_factors[c])
            for p, c in zip(layout.platforms, layout.countries, strict=True)
        ]
    )
    return share, factors
