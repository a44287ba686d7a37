"""Fingerprints of a fixed set of episodes: the bytes a refactoring of the generator must keep.

Each episode is hashed part by part (public counts, segment cells, calendar notes, visible task, expected rows,
neutral keys, injection records, distractors, fluctuations), so a change names the part it moved. The stored
fingerprints (tests/data/episode_fingerprints.json) come from the generator as it was; test_episode_fingerprints.py
compares. A change that means to change episodes rewrites them, and says so in its commit:

    uv run python tests/episode_fingerprints.py --write
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
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.world.daily_panel import build_panel
from metric_tracker_rl.world.funnel import HOURS, FunnelData
from metric_tracker_rl.world.public_episode import Counts, PublicEpisode

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
    """(label, reset settings, held-out secret) of every fingerprinted episode: every tier reset reaches, listed
    or not, so listing a tier changes no stored fingerprint."""
    for difficulty in RESET_DIFFICULTIES:
        for seed in range(SEEDS_PER_DIFFICULTY):
            yield f"{difficulty}/seed={seed}", {"difficulty": difficulty, "seed": seed}, ""
        for seed in range(5):
            yield f"{difficulty}/held_out/seed={seed}", {"difficulty": difficulty, "seed": seed}, HELD_OUT_SECRET
        for family in (f for f in SCENARIO_FAMILIES if f in ("mixed", "null") or draws_family(difficulty, f)):
            for seed in range(5 if difficulty == "frontier" else 2):
                yield (
                    f"{difficulty}/{family}/seed={seed}",
                    {"difficulty": difficulty, "seed": seed, "scenario_family": family},
                    "",
                )
            yield (
                f"{difficulty}/{family}/held_out",
                {"difficulty": difficulty, "seed": 1, "scenario_family": family},
                HELD_OUT_SECRET,
            )
    for task_id in TASKS:
        yield f"task/{task_id}", {"task_id": task_id}, ""
        yield f"task/{task_id}/held_out", {"task_id": task_id}, HELD_OUT_SECRET
        yield f"task/{task_id}/seed=5", {"task_id": task_id, "seed": 5}, ""
    for kind in FRONTIER_KINDS:
        for seed in range(6):
            yield (
                f"frontier/kind={kind}/seed={seed}",
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
            f"frontier/kind={kind}/many",
            {"difficulty": "frontier", "seed": 3, "incident_kinds": [kind], "anomaly_count": 8},
            "",
        )
    for ratio in (0.0, 0.5, 2.0):
        for seed in range(3):
            yield (
                f"frontier/decoy_ratio={ratio}/seed={seed}",
                {"difficulty": "frontier", "seed": seed, "decoy_ratio": ratio},
                "",
            )
    for seed in range(3):
        yield (
            f"frontier/two_kinds/seed={seed}",
            {"difficulty": "frontier", "seed": seed, "incident_kinds": ["payment_failure", "level_shift"]},
            "",
        )
        yield f"frontier/count=8/seed={seed}", {"difficulty": "frontier", "seed": seed, "anomaly_count": 8}, ""
    # deep's knobs (its seeds, held-out episodes and families are in the loop over every tier above).
    yield "deep/count=8/seed=2", {"difficulty": "deep", "seed": 2, "anomaly_count": 8, "decoy_ratio": 2.0}, ""
    for difficulty in AGGREGATE_DIFFICULTIES:
        anomalies = [{"family": family, "date": f"2026-03-{3 + 3 * i:02d}"} for i, family in enumerate(ANOMALY_TYPES)]
        yield f"{difficulty}/custom", {"difficulty": difficulty, "seed": 4, "anomalies": anomalies[:4]}, ""
        yield f"{difficulty}/density", {"difficulty": difficulty, "seed": 4, "anomaly_density": 0.2}, ""


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _array(array: Any) -> str:
    return hashlib.sha256(str(array.dtype).encode() + str(array.shape).encode() + array.tobytes()).hexdigest()[:16]


def _counts_of(public: PublicEpisode) -> Counts:
    """The episode's counts; for a raw event export, which has none, its window with no counts and no notes: the
    parts the stored fingerprints took of the warehouse when its public episode carried zero counts. (Its tables
    are not fingerprinted; its truth is.)"""
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


def fingerprint(episode: Episode) -> dict[str, str]:
    """One short hash per part of the episode."""
    public, truth = episode.public, episode.truth
    counts = _counts_of(public)
    parts = {
        "dates": _digest(counts.funnel.dates, counts.funnel.weekdays, list(counts.funnel.weekend)),
        "daily": _array(counts.funnel.daily),
        "hourly": _array(counts.funnel.hourly),
        "annotations": _digest([a.as_dict() for a in counts.annotations]),
        "task": _digest(json.dumps(public.task, sort_keys=True, default=str)),
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
    return parts


def fingerprints() -> dict[str, dict[str, str]]:
    found = {}
    for label, settings, secret in episode_settings():
        found[label] = fingerprint(reset_episode(secret=secret, **settings))
    return found


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/episode_fingerprints.py --write  (rewrites the stored fingerprints)")
    FINGERPRINTS.parent.mkdir(exist_ok=True)
    FINGERPRINTS.write_text(json.dumps(fingerprints(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {FINGERPRINTS}")
