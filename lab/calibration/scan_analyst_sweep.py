"""Plays the scan analyst and its variations on a seed sweep (the calibration's seeds) and on the episodes of the
model transcripts, and prints each one's scores.

    uv run python -m lab.calibration.scan_analyst_sweep --difficulty deep --seeds 100 --workers 1
    uv run python -m lab.calibration.scan_analyst_sweep --difficulty abyss --first-offset 20 --seeds 100 \
        --agents deep_expert,scan_analyst --transcripts /nonexistent
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from pathlib import Path
from typing import Any

from lab.agents.scan_analyst import VARIANTS
from lab.calibration.calibrate import EpisodeSpec, episode_score, summarise
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs

# The transcripts of a capable model's episodes (their README says how they were recorded).
TRANSCRIPTS = Path(__file__).resolve().parents[2].parent / "shared" / "model_transcripts"


def transcript_episodes(folder: Path, difficulty: str) -> list[tuple[str, dict[str, Any], float]]:
    """Each transcript of a difficulty in `folder`: its name, its episode's reset settings and the model's score."""
    episodes = []
    for path in sorted(folder.glob(f"{difficulty}-*.json")):
        record = json.loads(path.read_text())
        if record["difficulty"] == difficulty:
            episodes.append(
                (
                    path.stem,
                    {"seed": record["seed"], "difficulty": difficulty, **record.get("settings", {})},
                    float(record["score"]),
                )
            )
    return episodes


def played(job: tuple[str, dict[str, Any]]) -> tuple[float, bool]:
    """One episode's score by the named agent, in process, and whether the episode held an incident."""
    agent_name, reset_kwargs = job
    return episode_score(agent_name, EpisodeSpec("", reset_kwargs))


def scores(agent_name: str, episodes: list[dict[str, Any]], workers: int) -> list[tuple[float, bool]]:
    jobs = [(agent_name, kwargs) for kwargs in episodes]
    if workers <= 1:
        return [played(job) for job in jobs]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(played, jobs)


def _line(label: str, values: list[float]) -> str:
    stats = summarise(values)
    return f"  {label:<22} n={stats['n']:<4} mean {stats['mean']:.3f}  p5 {stats['p5']:.3f}  min {stats['min']:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Play the scan analyst and its variations on a seed sweep (the "
        "calibration's seeds) and on the episodes of the model transcripts."
    )
    parser.add_argument("--difficulty", default="deep")
    parser.add_argument("--seeds", type=int, default=100, help="calibration seeds swept (0: none)")
    parser.add_argument(
        "--first-offset",
        type=int,
        default=0,
        help="the first calibration seed's offset (the seeds below it may have tuned an agent)",
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--agents", default=",".join(variant.name for variant in VARIANTS))
    parser.add_argument(
        "--transcripts",
        type=Path,
        default=TRANSCRIPTS,
        help="a folder of model transcripts whose episodes are played too (none if missing)",
    )
    parser.add_argument("--output", type=Path, help="a JSON file for every episode's score")
    args = parser.parse_args(argv)
    sweep = [
        calibration_reset_kwargs(args.difficulty, offset)
        for offset in range(args.first_offset, args.first_offset + args.seeds)
    ]
    replayed = transcript_episodes(args.transcripts, args.difficulty) if args.transcripts.is_dir() else []
    record: dict[str, Any] = {
        "difficulty": args.difficulty,
        "seeds": args.seeds,
        "first_offset": args.first_offset,
        "agents": {},
    }
    for name in (name.strip() for name in args.agents.split(",") if name.strip()):
        swept = scores(name, sweep, args.workers)
        standard = [score for score, held in swept if held]
        null = [score for (score, held) in swept if not held]
        print(name)
        if swept:
            print(_line(f"{args.difficulty} seeds", standard))
            print(_line("null episodes", null) if null else "  no null episode")
            print(_line("every episode", [score for score, _ in swept]))
        replays = scores(name, [kwargs for _, kwargs, _ in replayed], args.workers)
        defaults = [score for (score, _), (_, kwargs, _) in zip(replays, replayed, strict=True) if len(kwargs) == 2]
        if defaults:
            model = [model for _, kwargs, model in replayed if len(kwargs) == 2]
            print(_line("transcript episodes", defaults) + f"  (the model then: {sum(model) / len(model):.3f})")
        record["agents"][name] = {
            "sweep": [score for score, _ in swept],
            "transcripts": {episode: score for (episode, _, _), (score, _) in zip(replayed, replays, strict=True)},
        }
    if args.output:
        args.output.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
