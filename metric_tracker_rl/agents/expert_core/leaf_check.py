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
from collections.abc import Collection
from typing import Any

from metric_tracker_rl.agents.expert_core.cuboid_queries import (
    BASELINE_NOISE,
    CUBOID_SPREAD,
    LEAF_SPREAD,
    RUN_Z,
    numbered_leaves,
)
from metric_tracker_rl.agents.expert_core.reports import segment_of

# The published day-to-day spread of a cell's step conversion and of a leaf's own (noise_model): the cell's is
# shared by its leaves, so a sum of leaves keeps it whole where they share a cell.
CELL_SPREAD = 0.03
BLIP_ODDS = 4.0  # twice the log of the prior odds of a blip against an incident on one leaf's fall (e^2, about 7)
PAIR_ODDS = 0.0  # the same for two blips in one cuboid on one date and step (rarer than one: even odds)
PAIR_POWER = 3.0  # the pair's fall in the rest's noise below which the rest cannot tell a pair from an incident


def leaf_chunks(falls: list[dict[str, Any]], most_chars: int, runs: Collection[int] = ()) -> list[range]:
    """The falls (by k) each leaves_sql statement reads: as few statements as keep each within `most_chars` (the
    query tool's limit)."""
    chunks: list[range] = []
    first = 0
    while first < len(falls):
        last = first + 1
        while last < len(falls) and len(leaves_sql(falls, range(first, last + 1), runs)) <= most_chars:
            last += 1
        chunks.append(range(first, last))
        first = last
    return chunks


def leaves_queries(falls: list[dict[str, Any]], most_chars: int, runs: Collection[int] = ()) -> list[str]:
    """leaves_sql over `falls` in as few statements as keep each within `most_chars`."""
    return [leaves_sql(falls, chunk, runs) for chunk in leaf_chunks(falls, most_chars, runs)]


def run_heads(falls: list[dict[str, Any]], chunk: range, runs: Collection[int]) -> dict[int, int]:
    """Each fall of `chunk` whose run is read, and the first such fall of the chunk on the same step and cuboid:
    the one whose row lists the run's dates (they share their daily series)."""
    heads: dict[int, int] = {}
    first_of: dict[tuple[Any, ...], int] = {}
    for k in chunk:
        if k in runs:
            heads[k] = first_of.setdefault((falls[k]["entity_name"], *segment_of(falls[k])), k)
    return heads


def leaves_sql(falls: list[dict[str, Any]], chunk: range | None = None, runs: Collection[int] = ()) -> str:
    """Per fall of `chunk` (k, its position in `falls`; all of them by default): the residual r, expected
    conversions e and variance w of its cuboid's leaves on its date, summed, those of the leaf that fell furthest
    in its own noise (top_r, top_e, top_w), and of the two that fell furthest together (two_r, two_e, two_w);
    `leaves`, how many leaves held conversions. With `runs` (falls by k), also the run of each of those falls
    (run_sql's dates but its own, as `date change z` items in `run`), on the row of its head (run_heads) for all
    the falls the head stands for."""
    chunk = range(len(falls)) if chunk is None else chunk
    heads = run_heads(falls, chunk, runs)
    head_ks = tuple(sorted(set(heads.values())))

    def summed(prefix: str, filtered: str = "") -> str:
        return ", ".join(f"round(sum({v}){filtered}, 1) {prefix}{v}" for v in "rew")

    start = numbered_leaves(falls[chunk.start:chunk.stop], on_its_date=True, first_k=chunk.start,
                            every_date_of=head_ks)
    leaves = (f"t AS (SELECT *, row_number() OVER (PARTITION BY k ORDER BY r / sqrt({BASELINE_NOISE} * w + "
              f"({LEAF_SPREAD} * e) ^ 2)) i FROM x WHERE {'date = fd AND ' if heads else ''}e > 0)")
    columns = (f"k, count(*) leaves, {summed('')}, {summed('top_', ' FILTER (i = 1)')}, "
               f"{summed('two_', ' FILTER (i <= 2)')}")
    if not heads:
        return start + f"{leaves} SELECT {columns} FROM t GROUP BY k ORDER BY k"
    return (start + f"{leaves}, " + _runs(tuple(heads), head_ks)
            + f"SELECT {columns}, any_value(run) run FROM t LEFT JOIN n USING (k) GROUP BY k ORDER BY k")


def _runs(runs: tuple[int, ...], head_ks: tuple[int, ...]) -> str:
    """The CTEs that list each head's run (j: each fall read with its head's k, whose daily series it shares; g and
    z: each head's cuboid on every date; y: its dates beyond RUN_Z and its falls' own, in unbroken runs i; n: the
    runs that hold a fall's date, its own left out)."""
    return (f"j AS (SELECT min(k) OVER (PARTITION BY fs, fp, fc, fv, fh, fu) k, fd FROM f "
            f"WHERE k IN ({', '.join(map(str, runs))})), "
            f"g AS (SELECT k, date, sum(r) r, sum(e) e, sum(w) w FROM x WHERE k IN ({', '.join(map(str, head_ks))}) "
            "GROUP BY ALL), "
            f"z AS (SELECT *, r / sqrt({BASELINE_NOISE} * w + ({CUBOID_SPREAD} * e) ^ 2) z FROM g WHERE e > 0), "
            "y AS (SELECT z.*, z.date - (row_number() OVER (PARTITION BY z.k ORDER BY z.date))::INT i, fd FROM z "
            f"LEFT JOIN j ON j.k = z.k AND fd = z.date WHERE z <= -{RUN_Z} OR fd IS NOT NULL), "
            "n AS (SELECT k, string_agg(date || ' ' || round(r / e, 3) || ' ' || round(z, 1), ', ' ORDER BY date) run "
            f"FROM (SELECT *, count(fd) OVER (PARTITION BY k, i) m FROM y) WHERE m > 0 AND z <= -{RUN_Z} "
            "GROUP BY k) ")


def run_rows(leaves: list[dict[str, Any]], heads: dict[int, int]) -> dict[int, list[dict[str, Any]]]:
    """Each fall's run (k: its position in the falls, as in run_heads), as rows of date, change and z read from
    its head's row of the leaves query; a date of the run but the fall's own may belong to another of the head's
    falls (the dates beyond RUN_Z next to a fall's own are its run)."""
    listed = {int(row["k"]): str(row.get("run") or "") for row in leaves}
    runs: dict[int, list[dict[str, Any]]] = {}
    for k, head in heads.items():
        items = [item.split() for item in listed.get(head, "").split(", ") if item]
        runs[k] = [{"date": date, "change": float(change), "z": float(z)} for date, change, z in items]
    return runs


def is_blip(row: dict[str, Any], odds: float = BLIP_ODDS, pair_odds: float | None = PAIR_ODDS) -> bool:
    """Whether a fall's leaves (a row of leaves_sql) say a single leaf carried it, by `odds` (twice the log of the
    prior odds of a blip against an incident), or two leaves did, by `pair_odds` (None: one leaf only): see the
    module docstring."""
    if int(row["leaves"]) <= 1:
        return True
    if _carried(row, "top_", odds):
        return True
    return (pair_odds is not None and int(row["leaves"]) > 2 and "two_r" in row
            and _carried(row, "two_", pair_odds, PAIR_POWER))


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
    top_var = (BASELINE_NOISE * top_w + (spread * top_e) ** 2) / top_e ** 2
    rest_var = (BASELINE_NOISE * (float(row["w"]) - top_w) + (spread * rest_e) ** 2) / rest_e ** 2
    if top_change ** 2 < power ** 2 * rest_var:
        return False
    unchanged = rest_change ** 2 / rest_var
    alike = (rest_change - top_change) ** 2 / (rest_var + top_var)
    return unchanged - alike < odds
