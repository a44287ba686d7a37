"""How the deep expert and the scan analyst do when deep's episodes carry one of the harder mixes: persistent or
gradual incidents (kinds), dense confounding, a second incident in the same cuboid, or an experiment's effect
beside an incident (SegmentedMix dials). Each setting is played on the same calibration seeds as deep's defaults,
so the two columns are paired.

    uv run python -m benchmarks.harder_mixes --seeds 10 --setting confounder_share=1.0
    uv run python -m benchmarks.harder_mixes --seeds 10 --kinds persistent_regression,gradual_decline --only-kinds

The setting is deep's tier with the dials (and kinds) changed, swapped into the tier registry of this process
only; the product's deep is untouched.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import benchmarks.scan_analyst  # noqa: F401  (registers the scan analyst)
from benchmarks.calibrate import EpisodeSpec, episode_score, summarise
from metric_tracker_rl.spec.task_splits import calibration_reset_kwargs
from metric_tracker_rl.spec.tiers import TIERS

AGENTS = ("deep_expert", "scan_analyst")


@contextmanager
def deep_with(dials: dict[str, Any], kinds: tuple[str, ...], only_kinds: bool) -> Iterator[None]:
    """Deep's tier with `dials` set and `kinds` added to its incident kinds (or, with `only_kinds`, in their
    place), for the duration of the block."""
    deep = TIERS.unregister("deep")
    assert deep.segmented is not None
    incident_kinds = kinds if only_kinds else deep.segmented.incident_kinds + kinds
    TIERS.register(replace(deep, segmented=replace(deep.segmented, incident_kinds=incident_kinds, **dials)))
    try:
        yield
    finally:
        TIERS.unregister("deep")
        TIERS.register(deep)


def parsed_dials(text: str) -> dict[str, Any]:
    dials: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        name, value = item.split("=")
        dials[name] = float(value) if "." in value else int(value)
    return dials


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Deep's expert and scan analyst on deep with a harder mix.")
    parser.add_argument("--seeds", type=int, default=10, help="deep's calibration seeds, from its first")
    parser.add_argument("--setting", default="", help="dials, e.g. confounder_share=1.0,same_cuboid_concurrency=1")
    parser.add_argument("--kinds", default="", help="incident kinds added to deep's")
    parser.add_argument("--only-kinds", action="store_true", help="the episodes draw only --kinds")
    parser.add_argument("--agents", default=",".join(AGENTS))
    args = parser.parse_args(argv)
    episodes = [kwargs for kwargs in (calibration_reset_kwargs("deep", n) for n in range(args.seeds))
                if kwargs.get("scenario_family") != "null"]
    kinds = tuple(filter(None, args.kinds.split(",")))
    for name in args.agents.split(","):
        plain = [episode_score(name, EpisodeSpec("deep", kwargs))[0] for kwargs in episodes]
        with deep_with(parsed_dials(args.setting), kinds, args.only_kinds):
            harder = [episode_score(name, EpisodeSpec("deep", kwargs))[0] for kwargs in episodes]
        plain_stats, harder_stats = summarise(plain), summarise(harder)
        print(f"{name:<14} n={len(episodes)}  deep {plain_stats['mean']:.3f} (min {plain_stats['min']:.3f})  "
              f"with the mix {harder_stats['mean']:.3f} (min {harder_stats['min']:.3f})")
        print("  " + " ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(plain, harder, strict=True)))


if __name__ == "__main__":
    main()
