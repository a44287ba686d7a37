"""Fingerprints of a fixed set of episodes of every version of every tier: what a published version is.

Each episode is hashed part by part (public counts, segment cells, a raw event export's tables, calendar notes,
visible task, expected rows, neutral keys, injection records, distractors, fluctuations, and the grades of a fixed set
of reports against its truth), so a change names the part it moved. Each label starts with the tier's version
(`audit-v1/seed=0`). The stored fingerprints (tests/data/episode_fingerprints.json) are the published versions'
definition; test_episode_fingerprints.py compares. A published version never changes: a change that moves its
episodes or their grades is a new version of the tier (catalog/versions.py: the old Tier is kept with
`keep_earlier_version`), whose new entries are then written with:

    uv run python tests/episode_fingerprints.py --write

which adds the new version's entries, rewrites the moved entries of a draft version (one not yet published:
catalog/versions.py), and refuses to change an entry of a published one.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from core_helpers import draws_family, reset_episode

from metric_tracker_rl.catalog.published import (
    AGGREGATE_DIFFICULTIES,
    ANOMALY_TYPES,
    COUNT_COLUMNS,
    RESET_DIFFICULTIES,
    SCENARIO_FAMILIES,
)
from metric_tracker_rl.catalog.tasks import TASKS
from metric_tracker_rl.catalog.versions import is_published, versions_of
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.grading.grader import grade_submission
from metric_tracker_rl.models import MetricSubmissionRow
from metric_tracker_rl.serving.report_step import grading_arguments
from metric_tracker_rl.sql.columns import PackedTable
from metric_tracker_rl.sql.table_views import arrow_table
from metric_tracker_rl.world.daily_panel import build_panel
from metric_tracker_rl.world.funnel import HOURS, FunnelData
from metric_tracker_rl.world.public_episode import Counts, Events, PublicEpisode

FINGERPRINTS = Path(__file__).resolve().parent / "data" / "episode_fingerprints.json"
SEEDS_PER_DIFFICULTY = 40
HELD_OUT_SECRET = "fingerprint-secret"  # a held-out server's secret: mixed into every stream
# Frontier's incident kinds as the generator named them when the fingerprints were taken (written out here on
# purpose: the fingerprints must not follow a registry they check).
FRONTIER_KINDS = (
    "release_regression",
    "payment_failure",
    "web_tracking_bug",
    "country_bots",
    "segment_outage",
    "level_shift",
)


def episode_settings() -> Iterator[tuple[str, dict[str, Any], str]]:
    """(label, reset settings, held-out secret) of every fingerprinted episode: every version of every tier reset
    reaches, listed or not (so listing a tier changes no stored fingerprint), and every named task at each version
    of its tier. A label starts with the tier's version (`easy-v1/seed=0`), a named task's with `task/`."""
    for difficulty in RESET_DIFFICULTIES:
        for version in versions_of(difficulty):
            for suffix, settings, secret in _tier_settings(difficulty):
                yield f"{difficulty}-v{version}/{suffix}", {**settings, "version": version}, secret
    for task_id, task in TASKS.items():
        for version in versions_of(task.difficulty):
            at = {"task_id": task_id, "version": version}
            label = f"task/{task_id}/{task.difficulty}-v{version}"
            yield label, at, ""
            yield f"{label}/held_out", at, HELD_OUT_SECRET
            yield f"{label}/seed=5", {**at, "seed": 5}, ""


def _tier_settings(difficulty: str) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(label's rest, reset settings, held-out secret) of one tier's fingerprinted episodes, at any version."""
    for seed in range(SEEDS_PER_DIFFICULTY):
        yield f"seed={seed}", {"difficulty": difficulty, "seed": seed}, ""
    for seed in range(5):
        yield f"held_out/seed={seed}", {"difficulty": difficulty, "seed": seed}, HELD_OUT_SECRET
    for family in (f for f in SCENARIO_FAMILIES if f in ("mixed", "null") or draws_family(difficulty, f)):
        for seed in range(5 if difficulty == "frontier" else 2):
            yield f"{family}/seed={seed}", {"difficulty": difficulty, "seed": seed, "scenario_family": family}, ""
        yield f"{family}/held_out", {"difficulty": difficulty, "seed": 1, "scenario_family": family}, HELD_OUT_SECRET
    if difficulty == "frontier":
        yield from _frontier_knobs()
    if difficulty == "deep":  # deep's knobs (its seeds, held-out episodes and families are above)
        yield "count=8/seed=2", {"difficulty": "deep", "seed": 2, "anomaly_count": 8, "decoy_ratio": 2.0}, ""
    if difficulty in AGGREGATE_DIFFICULTIES:
        anomalies = [{"family": family, "date": f"2026-03-{3 + 3 * i:02d}"} for i, family in enumerate(ANOMALY_TYPES)]
        yield "custom", {"difficulty": difficulty, "seed": 4, "anomalies": anomalies[:4]}, ""
        yield "density", {"difficulty": difficulty, "seed": 4, "anomaly_density": 0.2}, ""


def _frontier_knobs() -> Iterator[tuple[str, dict[str, Any], str]]:
    """Frontier's knobs: one kind at a time, the decoy ratio, two kinds, a count."""
    for kind in FRONTIER_KINDS:
        for seed in range(6):
            yield (
                f"kind={kind}/seed={seed}",
                {
                    "difficulty": "frontier",
                    "seed": seed,
                    "incident_kinds": [kind],
                    "anomaly_count": 2,
                    "decoy_ratio": 0,
                },
                "",
            )
        yield (
            f"kind={kind}/many",
            {"difficulty": "frontier", "seed": 3, "incident_kinds": [kind], "anomaly_count": 8},
            "",
        )
    for ratio in (0.0, 0.5, 2.0):
        for seed in range(3):
            yield f"decoy_ratio={ratio}/seed={seed}", {"difficulty": "frontier", "seed": seed, "decoy_ratio": ratio}, ""
    for seed in range(3):
        yield (
            f"two_kinds/seed={seed}",
            {"difficulty": "frontier", "seed": seed, "incident_kinds": ["payment_failure", "level_shift"]},
            "",
        )
        yield f"count=8/seed={seed}", {"difficulty": "frontier", "seed": seed, "anomaly_count": 8}, ""


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _array(array: Any) -> str:
    return hashlib.sha256(str(array.dtype).encode() + str(array.shape).encode() + array.tobytes()).hexdigest()[:16]


def _counts_of(public: PublicEpisode) -> Counts:
    """The episode's counts; for a raw event export, which has none, its window with no counts and no notes: the
    parts the stored fingerprints took of the warehouse when its public episode carried zero counts. (Its tables
    are the `events` part.)"""
    if isinstance(public.source, Counts):
        return public.source
    calendar = public.source.calendar
    empty = FunnelData(
        calendar.iso_dates,
        calendar.weekday_names,
        calendar.weekend,
        np.zeros((len(calendar.iso_dates), HOURS, len(COUNT_COLUMNS)), dtype=np.int64),
    )
    return Counts(empty, build_panel(empty), ())


def _tables(source: Events) -> str:
    """A raw event export's tables, each as an uncompressed Arrow stream: its values, not how they were packed."""
    import pyarrow as pa

    digest = hashlib.sha256()
    for name in sorted(source.tables):
        table = source.tables[name]
        arrow = table.arrow() if isinstance(table, PackedTable) else arrow_table(table)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, arrow.schema) as writer:
            writer.write_table(arrow.combine_chunks())
        digest.update(name.encode() + sink.getvalue().to_pybytes())
    return digest.hexdigest()[:16]


def graded_reports(episode: Episode) -> dict[str, tuple[list[MetricSubmissionRow], frozenset[str]]]:
    """Reports the grading part scores, each with the tools used before it: the expected rows (without and after a
    query), none, every other one, every value off and the severity low, and the first row on another date."""
    expected = list(episode.truth.expected_rows)
    off = [
        row.model_copy(update={"observed_value": row.observed_value * 1.1 + 1, "severity": "low"}) for row in expected
    ]
    moved = [row.model_copy(update={"date": episode.public.dates[0]}) for row in expected[:1]] + expected[1:]
    return {
        "expected": (expected, frozenset()),
        "expected_after_query": (expected, frozenset({"query"})),
        "empty": ([], frozenset()),
        "every_other": (expected[::2], frozenset()),
        "values_off": (off, frozenset()),
        "first_moved": (moved, frozenset()),
    }


def _grades(episode: Episode) -> str:
    """The grades of graded_reports: each one's score and breakdown."""
    grades = {}
    for name, (rows, methods) in graded_reports(episode).items():
        result = grade_submission(rows, **grading_arguments(episode, methods))
        grades[name] = (round(result.score, 12), result.breakdown.model_dump_json())
    return _digest(grades)


def _shown_task(task: dict[str, Any]) -> dict[str, Any]:
    """The visible task less its config's version, which the label names (so the part reads as it did before
    tiers had versions)."""
    config = {key: value for key, value in task.get("config", {}).items() if key != "version"}
    return {**task, "config": config} if "config" in task else task


def fingerprint(episode: Episode) -> dict[str, str]:
    """One short hash per part of the episode."""
    public, truth = episode.public, episode.truth
    counts = _counts_of(public)
    parts = {
        "dates": _digest(counts.funnel.dates, counts.funnel.weekdays, list(counts.funnel.weekend)),
        "daily": _array(counts.funnel.daily),
        "hourly": _array(counts.funnel.hourly),
        "annotations": _digest([a.as_dict() for a in counts.annotations]),
        "task": _digest(json.dumps(_shown_task(public.task), sort_keys=True, default=str)),
        "expected_rows": _digest([row.model_dump_json() for row in truth.expected_rows]),
        "neutral_keys": _digest(sorted(truth.neutral_keys)),
        "injections": _digest([{**asdict(r), "neutral": sorted(r.neutral)} for r in truth.injections]),
        "distractors": _digest([asdict(d) for d in truth.distractors]),
        "fluctuations": _digest([asdict(f) for f in truth.fluctuations]),
    }
    segments = counts.segments
    if segments is not None:
        parts["segment_cells"] = _array(segments.hourly)
        parts["segment_layout"] = _digest(segments.layout, segments.releases)
        if segments.leaf_daily is not None:  # a tier with daily-only dimensions
            parts["segment_leaves"] = _array(segments.leaf_daily)
    if isinstance(public.source, Events):
        parts["events"] = _tables(public.source)
    parts["grading"] = _grades(episode)
    return parts


def fingerprints(progress: bool = False) -> dict[str, dict[str, str]]:
    found = {}
    settings = list(episode_settings())
    for number, (label, reset, secret) in enumerate(settings, 1):
        found[label] = fingerprint(reset_episode(secret=secret, **reset))
        if progress and (number % 25 == 0 or number == len(settings)):
            print(f"{number}/{len(settings)} episodes fingerprinted", file=sys.stderr, flush=True)
    return found


USAGE = """usage: python tests/episode_fingerprints.py --write
  stores the fingerprints of every episode built today: adds a new version's, rewrites a draft version's that moved,
  and refuses (changing nothing) if an entry of a published version moved"""


def version_of(settings: dict[str, Any]) -> tuple[str, int]:
    """The tier and version an entry's reset settings play."""
    tier = settings["difficulty"] if "difficulty" in settings else TASKS[settings["task_id"]].difficulty
    return tier, settings["version"]


def write() -> int:
    stored = json.loads(FINGERPRINTS.read_text()) if FINGERPRINTS.exists() else {}
    built = fingerprints(progress=True)
    versions = {label: version_of(settings) for label, settings, _ in episode_settings()}
    moved = sorted(label for label in built if label in stored and stored[label] != built[label])
    published = [label for label in moved if is_published(*versions[label])]
    if published:
        print(
            f"{len(published)} fingerprint(s) of published versions moved ({', '.join(published[:5])}"
            f"{', ...' if len(published) > 5 else ''}); nothing written. A published version never changes: keep it "
            "with keep_earlier_version (catalog/versions.py) and make the change the tier's next version",
            file=sys.stderr,
        )
        return 1
    FINGERPRINTS.parent.mkdir(exist_ok=True)
    FINGERPRINTS.write_text(json.dumps(built, indent=1, sort_keys=True) + "\n")
    added = sorted(built.keys() - stored.keys())
    drafts = sorted({"-v".join(map(str, versions[label])) for label in moved})
    print(
        f"wrote {FINGERPRINTS}: {len(built)} episodes, {len(added)} added, {len(moved)} rewritten"
        + (f" (drafts: {', '.join(drafts)})" if drafts else "")
    )
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(USAGE)
    sys.exit(write())
