"""The leaf check, where the brief publishes its noise model and that an incident changes every leaf of its segment
by the same share (a single leaf's fall being benign): a fall the scan localised is a leaf blip when one leaf
carries it and the rest of its cuboid did not fall with it.

For each fall, one query reads the leaves of its cuboid on its date (each leaf's residual against the scan's
same-weekday baseline, its expected conversions and its sampling variance) and returns the cuboid's sums and those
of its most fallen leaf (by z). The rest of the cuboid (every other leaf) then weighs the two explanations under the
published noise model: a blip leaves the rest unchanged (z0, the rest's change against none), an incident moves
it by the same share as that leaf (z1, the rest's change against the leaf's, in the noise of both). The fall is a
blip where the rest is likelier unchanged, by the odds BLIP_ODDS gives blips (a tier draws more of them than
incidents, and they are the only one-date falls that large): z0^2 - z1^2 < BLIP_ODDS. A cuboid of one leaf is a
blip too (no incident is confined to a single leaf).

Blips are drawn in the largest leaves and leave their date free, so two of them can fall on one date and step in
leaves a cuboid shares: two single-leaf falls, each benign. So where one leaf does not carry the fall, the same test
runs on the two most fallen leaves against the rest (a fall of two leaves with the rest unchanged is no incident's
ripple), at the prior odds PAIR_ODDS of such a pair, lower than a single blip's, and only where the rest is large
enough to have shown the pair's fall (by PAIR_POWER of its own noise): a rest of a few conversions tells nothing.
"""

from __future__ import annotations

import math
from typing import Any

from metric_tracker_rl.agents.expert_core.cuboid_queries import BASELINE_NOISE, LEAF_SPREAD, numbered_leaves
from metric_tracker_rl.agents.expert_core.queries import compact

# The published day-to-day spread of a cell's step conversion and of a leaf's own (noise_model): the cell's is
# shared by its leaves, so a sum of leaves keeps it whole where they share a cell.
CELL_SPREAD = 0.03
BLIP_ODDS = 4.0  # twice the log of the prior odds of a blip against an incident on one leaf's fall (e^2, about 7)
PAIR_ODDS = 0.0  # the same for two blips in one cuboid on one date and step (rarer than one: even odds)
PAIR_POWER = 3.0  # the pair's fall in the rest's noise below which the rest cannot tell a pair from an incident


def leaves_queries(falls: list[dict[str, Any]], most_chars: int) -> list[str]:
    """leaves_sql over `falls`, compacted (queries.compact), in as few statements as keep each within `most_chars`
    (the query tool's limit)."""
    statements: list[str] = []
    first = 0
    while first < len(falls):
        last = first + 1
        while last < len(falls) and len(compact(leaves_sql(falls[first : last + 1], first))) <= most_chars:
            last += 1
        statements.append(compact(leaves_sql(falls[first:last], first)))
        first = last
    return statements


def leaves_sql(falls: list[dict[str, Any]], first_k: int = 0) -> str:
    """Per fall (k, first_k plus its position in `falls`): the residual r, expected conversions e and variance w of
    its cuboid's leaves on its date, summed, those of the leaf that fell furthest in its own noise (top_r, top_e,
    top_w), and of the two that fell furthest together (two_r, two_e, two_w); `leaves`, how many leaves held
    conversions."""

    def summed(prefix: str, filtered: str = "") -> str:
        return ", ".join(f"round(sum({v}){filtered}, 1) {prefix}{v}" for v in "rew")

    return (
        numbered_leaves(falls, on_its_date=True, first_k=first_k)
        + f"t AS (SELECT *, row_number() OVER (PARTITION BY k ORDER BY r / sqrt({BASELINE_NOISE} * w + "
        f"({LEAF_SPREAD} * e) ^ 2)) i FROM x WHERE e > 0) "
        f"SELECT k, count(*) leaves, {summed('')}, {summed('top_', ' FILTER (i = 1)')}, "
        f"{summed('two_', ' FILTER (i <= 2)')} FROM t GROUP BY k ORDER BY k"
    )


def is_blip(row: dict[str, Any], odds: float = BLIP_ODDS, pair_odds: float | None = PAIR_ODDS) -> bool:
    """Whether a fall's leaves (a row of leaves_sql) say a single leaf carried it, by `odds` (twice the log of the
    prior odds of a blip against an incident), or two leaves did, by `pair_odds` (None: one leaf only): see the
    module docstring."""
    if int(row["leaves"]) <= 1:
        return True
    if _carried(row, "top_", odds):
        return True
    return pair_odds is not None and int(row["leaves"]) > 2 and _carried(row, "two_", pair_odds, PAIR_POWER)


def _carried(row: dict[str, Any], prefix: str, odds: float, power: float = 0.0) -> bool:
    """Whether the leaves named by `prefix` (top_: the most fallen, two_: the two most fallen) carried the fall and
    the rest stayed unchanged, by `odds`: the rest's change against none (unchanged) and against theirs (alike).
    Not where their change stands under `power` standard deviations of the rest's (the rest cannot tell)."""
    top_e, rest_e = float(row[prefix + "e"]), float(row["e"]) - float(row[prefix + "e"])
    if top_e <= 0 or rest_e <= 0:
        return rest_e <= 0 and not power
    top_r, top_w = float(row[prefix + "r"]), float(row[prefix + "w"])
    top_change, rest_change = top_r / top_e, (float(row["r"]) - top_r) / rest_e
    spread = math.hypot(LEAF_SPREAD, CELL_SPREAD)
    top_var = (BASELINE_NOISE * top_w + (spread * top_e) ** 2) / top_e**2
    rest_var = (BASELINE_NOISE * (float(row["w"]) - top_w) + (spread * rest_e) ** 2) / rest_e**2
    if top_change**2 < power**2 * rest_var:
        return False
    unchanged = rest_change**2 / rest_var
    alike = (rest_change - top_change) ** 2 / (rest_var + top_var)
    return unchanged - alike < odds
