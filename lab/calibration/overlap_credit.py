"""The segment credit of near-miss reports at deep, under frontier's table and under deep's overlap credit.

    uv run python -m lab.calibration.overlap_credit [--seeds N]

For each expected row of deep seeds 0..N-1: the credit of the row reported without segment (`aggregate`) and on
its parent (the incident's cuboid with its last named field left out). Prints the mean under each rule and the
overlap's range.
"""

from __future__ import annotations

import argparse
import statistics

from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.grading.grader import SEGMENT_CREDIT, row_segment, segment_match, segment_overlap
from metric_tracker_rl.serving.report_step import overlap_traffic
from metric_tracker_rl.world.segments import Segment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    seeds = parser.parse_args().seeds
    table: dict[str, list[float]] = {"aggregate": [], "parent": []}
    overlap: dict[str, list[float]] = {"aggregate": [], "parent": []}
    for seed in range(seeds):
        episode = build_episode(resolve_episode_config(difficulty="deep", seed=seed))
        traffic = overlap_traffic(episode)
        assert traffic is not None
        for row in episode.truth.expected_rows:
            truth = row_segment(row).normalised()
            parent = Segment(**dict(list(truth.named().items())[:-1]))
            for case, reported in (("aggregate", Segment()), ("parent", parent)):
                table[case].append(SEGMENT_CREDIT[segment_match(reported, truth)])
                overlap[case].append(segment_overlap(reported, truth, traffic.on(row.date), traffic.leaves_of).credit)
    print("| report | rows | table, mean | overlap, mean | overlap, min | overlap, max |")
    print("| --- | --- | --- | --- | --- | --- |")
    for case in table:
        print(
            f"| {case} | {len(table[case])} | {statistics.mean(table[case]):.3f} | "
            f"{statistics.mean(overlap[case]):.3f} | {min(overlap[case]):.3f} | {max(overlap[case]):.3f} |"
        )


if __name__ == "__main__":
    main()
