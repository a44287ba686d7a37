"""The second incident of a date, where the brief publishes its noise model and that a date may carry a one-date
level shift on another step in a segment overlapping an incident's (the `concurrency` setting).

The cuboid scan keeps a fall only beyond the bar of every cuboid, date and step of the window; a second incident
is looked for only on the dates the first round reported, on the steps no report of that date names, in the
cuboids that overlap a reported segment (every field both name agrees), so far fewer cells are tested. The bar is
set by the number of cells tested over the whole search (at most: every such cuboid of the brief's dimension values;
a family-wise false-row rate of FALSE_ROW_RATE, Bonferroni). One query reads them (each cuboid's leaves against the
same-weekday baseline, the scan's noise) and returns the strongest falls of each date and step whose strongest
passed the bar; each fall past it is localised by the
ripple check, its leaves are read (leaf_check.py: a single leaf's fall is a blip), and the strongest kept are
reported, at most as many as the episode's `concurrency` setting gives dates, none where a date already carries
two incidents.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from statistics import NormalDist
from typing import Any

from metric_tracker_rl.agents.expert_core.cuboid_queries import (
    BASELINE_NOISE,
    CUBOID_SPREAD,
    LEAF_SPREAD,
    MIN_EXPECTED,
    RATE_FLOOR,
    STEP_NAMES,
    cuboid_sets,
)
from metric_tracker_rl.agents.expert_core.localisation import localise
from metric_tracker_rl.agents.expert_core.queries import EVENT_OF, STEPS, sql_text
from metric_tracker_rl.agents.expert_core.reports import Report, segment_of

FALSE_ROW_RATE = 0.1  # the chance, over the whole search, that noise alone passes the bar
TOP = 5  # the strongest falls of a date and step that come back for the ripple check
FIELDS = ("platform", "country", "channel", "user_type")  # a level shift names no version
ALIAS = {"platform": "p", "country": "c", "channel": "h", "user_type": "u"}


def hosts_of(reports: list[Report]) -> list[tuple[str, int, tuple[str | None, ...]]]:
    """Each reported date's incidents as (date, step number or 0 for a count, segment over FIELDS), once."""
    numbers = {name: number for number, name in STEP_NAMES.items()}
    hosts = {(r.date, numbers.get(r.entity_name, 0), tuple(getattr(r, f) for f in FIELDS)) for r in reports}
    return sorted(hosts, key=lambda host: (host[0], host[1], str(host[2])))


def already_found(reports: list[Report]) -> bool:
    """Whether a date already carries two incidents of different keys (the second one was clear on its own)."""
    keys: dict[str, set[str]] = defaultdict(set)
    for report in reports:
        keys[report.date].add(report.entity_name)
    return any(len(names) > 1 for names in keys.values())


def tested(hosts: list[tuple[str, int, tuple[str | None, ...]]], values: dict[str, list[str]]) -> int:
    """How many cells the search tests at most: per date, every step no host of it names, every cuboid of one to
    three of FIELDS (`values`: each field's values, as the brief lists them) that overlaps a host of that date."""
    cuboids = [
        dict(zip(fields, chosen, strict=True))
        for fields in cuboid_sets(3)
        if "app_version" not in fields
        for chosen in itertools.product(*(values[field] for field in fields))
    ]
    total = 0
    for date in sorted({host[0] for host in hosts}):
        mine = [dict(zip(FIELDS, segment, strict=True)) for day, _, segment in hosts if day == date]
        overlapping = sum(
            any(all(host[f] in (None, v) for f, v in cuboid.items()) for host in mine) for cuboid in cuboids
        )
        total += overlapping * (len(STEP_NAMES) - len({step for day, step, _ in hosts if day == date and step}))
    return total


def bar(tests: int) -> float:
    """The |z| a fall must pass: noise alone passes it with chance FALSE_ROW_RATE over `tests` cells."""
    return NormalDist().inv_cdf(1.0 - FALSE_ROW_RATE / max(tests, 1))


def concurrent_sql(hosts: list[tuple[str, int, tuple[str | None, ...]]], past: float) -> str:
    """Per date and step of the search (see the module docstring) whose strongest fall passed `past` (the bar):
    its TOP strongest falls (their cuboid, change, z, residual r and expected conversions e)."""
    wanted = ", ".join(
        f"({'DATE ' if k == 0 else ''}'{date}', {step}, " + ", ".join(sql_text(v, k == 0) for v in segment) + ")"
        for k, (date, step, segment) in enumerate(hosts)
    )
    sets = ", ".join(
        "(" + ", ".join(ALIAS[f] for f in fields) + ")" for fields in cuboid_sets(3) if "app_version" not in fields
    )
    overlap = " AND ".join(f"(f.{a} IS NULL OR z.{a} IS NULL OR f.{a} = z.{a})" for a in ALIAS.values())
    numbers = ", ".join(str(number) for number in STEP_NAMES)
    nums = ", ".join(EVENT_OF[num] for _, num, _ in STEPS)
    dens = ", ".join(EVENT_OF[den] for _, _, den in STEPS)
    return (
        f"WITH f(date, hs, p, c, h, u) AS (VALUES {wanted}), "
        "l AS (SELECT date, platform p, country c, channel h, user_type u, "
        f"unnest([{numbers}]) k, unnest([{nums}]) n, unnest([{dens}]) d FROM daily_by_segment), "
        "t AS (SELECT date, k, p, c, h, u, sum(n) n, sum(d) d FROM l GROUP BY ALL), "
        "q AS (SELECT *, median(n / d) FILTER (d > 0) OVER (PARTITION BY k, p, c, h, u, isodow(date) "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW) q FROM t), "
        "g AS (SELECT date, k, p, c, h, u, sum(n - q * d) r, sum(q * d) e, "
        f"sum(greatest(q * (1 - q), {RATE_FLOOR} * q) * d + ({LEAF_SPREAD} * q * d) ^ 2) w FROM q "
        f"WHERE date IN (SELECT date FROM f) GROUP BY date, k, GROUPING SETS ({sets})), "
        f"z AS (SELECT *, r / sqrt({BASELINE_NOISE} * w + ({CUBOID_SPREAD} * e) ^ 2) z FROM g "
        f"WHERE e >= {MIN_EXPECTED}), "
        "s AS (SELECT * FROM z WHERE NOT EXISTS (SELECT 1 FROM f WHERE f.date = z.date AND f.hs = z.k) "
        f"AND EXISTS (SELECT 1 FROM f WHERE f.date = z.date AND {overlap})) "
        "SELECT date, k step, p platform, c country, h channel, u user_type, round(r / e, 3) change, "
        "round(z, 1) z, round(r) r, round(e) e FROM s "
        f"QUALIFY min(z) OVER (PARTITION BY date, k) <= -{past:.2f} AND "
        f"row_number() OVER (PARTITION BY date, k ORDER BY z) <= {TOP} ORDER BY date, k, z"
    )


def candidates(rows: list[dict[str, Any]], past: float) -> list[dict[str, Any]]:
    """Each date and step's fall past the bar (`past`), on the cuboid the ripple check localises, strongest first
    (as the leaf check reads a fall: its date, entity_name and segment fields)."""
    by_key: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("z") is not None and row.get("change") is not None and row.get("r") is not None:
            by_key[(str(row["date"]), int(row["step"]))].append({**row, "app_version": None})
    found = [
        {**row, "date": str(row["date"]), "entity_name": STEP_NAMES[int(row["step"])]}
        for row in map(localise, by_key.values())
    ]
    return sorted((row for row in found if row["z"] <= -past and row["change"] < 0), key=lambda row: row["z"])


def concurrent_falls(found: list[dict[str, Any]], blips: set[int], most: int) -> list[Report]:
    """The strongest `most` candidates the leaf check kept (`blips`: the positions of those it did not), one a
    date."""
    reports: list[Report] = []
    for k, row in enumerate(found):
        if k not in blips and len(reports) < most and all(report.date != row["date"] for report in reports):
            reports.append(
                Report(row["date"], "conversion_rate", row["entity_name"], "rate_drop_from_median", *segment_of(row))
            )
    return reports
