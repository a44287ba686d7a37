"""The dilution share of the deep tier: of its incidents whose root cause names two or three
dimensions, the share that stands out in no one-dimension breakdown (metric_tracker_rl.generation.dilution states
the test).

    uv run python -m lab.calibration.dilution --seeds 200
    uv run python -m lab.calibration.dilution --seeds 50 --setting max_cuboid_depth=2 --setting magnitude_scale=1.5

Settings are reset arguments of the deep tier (its defaults when none is given)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.generation.dilution import STANDS_OUT, dilution_by_depth
from metric_tracker_rl.generation.episode import Episode

DIFFICULTY = "deep"
WHOLE_DAY = ("rate_drop_from_median",)  # kinds whose evidence is daily (level shifts, release regressions)


def episodes(seeds: int, settings: dict[str, Any], difficulty: str = DIFFICULTY) -> Iterator[Episode]:
    """The tier's first `seeds` calibration seeds with the settings (a tier whose root causes are cuboids)."""
    base = TIERS[difficulty].calibration_seed_base
    for seed in range(base, base + seeds):
        yield build_episode(resolve_episode_config(difficulty=difficulty, seed=seed, **settings))


def setting(text: str) -> tuple[str, Any]:
    """name=value, the value read as JSON (a number, a list) or else as text."""
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200, help="episodes, from the tier's calibration seed base")
    parser.add_argument("--setting", type=setting, action="append", default=[], help="a reset argument, name=value")
    args = parser.parse_args()
    settings = dict(args.setting)
    result: dict[str, Any] = {
        "difficulty": DIFFICULTY,
        "seeds": args.seeds,
        "settings": settings,
        "stands_out_at": STANDS_OUT,
    }
    found = dilution_by_depth(episodes(args.seeds, settings))
    every = None
    for label, depths, families in (
        ("depth 2-3", (2, 3), every),
        ("depth 1", (1,), every),
        ("depth 2", (2,), every),
        ("depth 3", (3,), every),
        ("depth 2-3, whole-day falls", (2, 3), WHOLE_DAY),
    ):
        chosen = [
            diluted for depth, diluted, family in found if depth in depths and (families is None or family in families)
        ]
        result[label] = {
            "incidents": len(chosen),
            "diluted": sum(chosen),
            "share": round(sum(chosen) / len(chosen), 3) if chosen else None,
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
