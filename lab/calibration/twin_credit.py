"""What the twin credit changes at abyss: each agent's reports graded with it and without it.

    uv run python -m lab.calibration.twin_credit [--seeds N] [--untuned] [--agents expert,parent_reporter]
        [--output PATH]

Each agent plays abyss's calibration episodes (the eval split's, or with --untuned the seeds that tuned nothing) in
process; every report it submits is graded twice, with the episode's twin rows (a row on a segment one field from
its incident's, where the traffic between them could not show the fall, graded against that segment's own row) and
without them (the overlap credit alone). The episode's score under each is its best submission's, less the retry
cost, as the environment credits it. Prints one row per agent: episodes, the mean without and with the credit, and
the matched rows a twin row graded higher.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lab.agents  # noqa: F401  (registers the calibration's exploit agents)
from lab.agents.registry import make_agent
from metric_tracker_rl.agents.base import run_episode
from metric_tracker_rl.catalog.task_splits import UNTUNED_FIRST_OFFSET, calibration_reset_kwargs
from metric_tracker_rl.catalog.tasks import RETRY_COST
from metric_tracker_rl.grading.grader import assess_row, grade_submission, truths_of
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.report_step import overlap_traffic

DIFFICULTY = "abyss"


def reports_of(agent_name: str, reset_kwargs: dict[str, Any]) -> tuple[MetricTrackerRlEnvironment, list[list[Any]]]:
    """The environment an agent played one episode on, and every report it submitted, in order."""
    env = MetricTrackerRlEnvironment()
    reports: list[list[Any]] = []

    def step(action: MetricTrackerRlAction) -> Any:
        if action.classifications is not None:
            reports.append(list(action.classifications))
        return env.step(action)

    run_episode(make_agent(agent_name), env.reset, step, **reset_kwargs)
    return env, reports


def episode_scores(env: MetricTrackerRlEnvironment, reports: list[list[Any]]) -> tuple[float, float, int]:
    """The episode's score without and with the twin credit, and the matched rows of its last report a twin row
    graded higher."""
    episode = env._episode  # noqa: SLF001  (a benchmark reads the truth it grades against)
    assert episode is not None
    truth, public = episode.truth, episode.public
    scores = {False: 0.0, True: 0.0}
    twinned = 0
    for attempt, report in enumerate(reports):
        rows = [MetricSubmissionRow.model_validate(row.model_dump()) for row in report]
        for with_twins in (False, True):
            score = grade_submission(
                rows,
                truth.expected_rows,
                truth.neutral_keys,
                public.dates,
                segment_values=public.segment_values(),
                leaf_traffic=overlap_traffic(episode),
                methods_used=frozenset(env._methods_used),  # noqa: SLF001
                twin_rows=truth.twin_rows if with_twins else (),
            ).score
            scores[with_twins] = max(scores[with_twins], score - RETRY_COST * attempt)
        twinned = twin_graded(rows, truth.expected_rows, truth.twin_rows, overlap_traffic(episode))
    return max(scores[False], 0.0), max(scores[True], 0.0), twinned


def twin_graded(
    rows: Sequence[MetricSubmissionRow],
    expected_rows: Sequence[MetricSubmissionRow],
    twin_rows: Sequence[MetricSubmissionRow],
    traffic: Any,
) -> int:
    """The rows on an expected key whose best truth is a twin row (their grade rose by the credit)."""
    expected = {(r.date, r.entity_type, r.entity_name): r for r in expected_rows}
    raised = 0
    for row in rows:
        truth = expected.get((row.date, row.entity_type, row.entity_name))
        if truth is not None:
            grades = [assess_row(row, t, leaf_traffic=traffic).quality for t in truths_of(row, truth, twin_rows)]
            raised += max(grades) > grades[0]
    return raised


def compare(agents: Sequence[str], seeds: int, first_offset: int) -> dict[str, dict[str, float]]:
    results = {}
    for agent in agents:
        without, with_twins, twinned = [], [], 0
        for offset in range(first_offset, first_offset + seeds):
            env, reports = reports_of(agent, calibration_reset_kwargs(DIFFICULTY, offset))
            before, after, rows = episode_scores(env, reports)
            without.append(before)
            with_twins.append(after)
            twinned += rows
        results[agent] = {
            "episodes": seeds,
            "without": statistics.mean(without),
            "with": statistics.mean(with_twins),
            "twinned_rows": twinned,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--untuned", action="store_true")
    parser.add_argument("--agents", default="expert,parent_reporter")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    results = compare(args.agents.split(","), args.seeds, UNTUNED_FIRST_OFFSET if args.untuned else 0)
    print("| agent | episodes | mean without the twin credit | mean with it | rows a twin graded higher |")
    print("| --- | --- | --- | --- | --- |")
    for agent, row in results.items():
        print(f"| {agent} | {row['episodes']} | {row['without']:.3f} | {row['with']:.3f} | {row['twinned_rows']} |")
    if args.output is not None:
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
