"""How the deep expert and the scan analyst do when deep's episodes carry one of the harder mixes: persistent or
gradual incidents (kinds), dense confounding, a second incident in the same cuboid, or an experiment's effect
beside an incident (SegmentedMix dials). Each setting is played on the same calibration seeds as deep's defaults,
so the two columns are paired.

    uv run python -m lab.calibration.harder_mixes --seeds 10 --setting confounder_share=1.0 \
        --setting kinds=persistent_regression+gradual_decline

The setting is deep's tier with the dials (and kinds) changed, swapped into the tier registry of this process
only; the product's deep is untouched.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import lab.agents.scan_analyst  # noqa: F401  (registers the scan analyst)
from lab.calibration.calibrate import EpisodeSpec, episode_score, summarise
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.catalog.tiers import TIERS

AGENTS = ("deep_expert", "scan_analyst")


@contextmanager
def deep_with(dials: dict[str, Any], kinds: tuple[str, ...], only_kinds: bool) -> Iterator[None]:
    """Deep's tier with `dials` set and `kinds` added to its incident kinds (or, with `only_kinds`, in their
    place), for the duration of the block."""
    deep = TIERS["deep"]
    assert deep.segmented is not None
    incident_kinds = kinds if only_kinds else deep.segmented.incident_kinds + kinds
    with TIERS.substituted(replace(deep, segmented=replace(deep.segmented, incident_kinds=incident_kinds, **dials))):
        yield


def parsed_setting(text: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`confounder_share=1.0,kinds=persistent_regression+gradual_decline`: the dials, and the kinds added."""
    dials: dict[str, Any] = {}
    kinds: tuple[str, ...] = ()
    for item in filter(None, text.split(",")):
        name, value = item.split("=")
        if name == "kinds":
            kinds = tuple(value.split("+"))
        else:
            dials[name] = float(value) if "." in value else int(value)
    return dials, kinds


def _line(label: str, scores: list[float]) -> str:
    stats = summarise(scores)
    return f"  {label:<60} mean {stats['mean']:.3f}  min {stats['min']:.3f}  " + " ".join(f"{s:.2f}" for s in scores)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Deep's expert and scan analyst on deep with a harder mix.")
    parser.add_argument("--seeds", type=int, default=10, help="deep's calibration seeds, from its first")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        help="dials and kinds added, e.g. confounder_share=1.0 or kinds=persistent_regression (repeat for several)",
    )
    parser.add_argument("--only-kinds", action="store_true", help="the episodes draw only the setting's kinds")
    parser.add_argument("--agents", default=",".join(AGENTS))
    args = parser.parse_args(argv)
    episodes = [
        kwargs
        for kwargs in (calibration_reset_kwargs("deep", n) for n in range(args.seeds))
        if kwargs.get("scenario_family") != "null"
    ]
    for name in args.agents.split(","):
        print(f"{name} on {len(episodes)} standard episodes of deep's calibration seeds")
        print(_line("deep's defaults", [episode_score(name, EpisodeSpec("deep", kw))[0] for kw in episodes]))
        for setting in args.setting:
            dials, kinds = parsed_setting(setting)
            with deep_with(dials, kinds, args.only_kinds):
                print(_line(setting, [episode_score(name, EpisodeSpec("deep", kw))[0] for kw in episodes]), flush=True)


if __name__ == "__main__":
    main()
