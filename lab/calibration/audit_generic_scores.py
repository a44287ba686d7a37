"""The generic auditor's score on the audit's untuned seeds, per split: the eval split's calibration sweep from its
untuned offset (held-out mechanisms possible), the train split's seeds from TRAIN_SEED_BASE + 20,000 (no episode a
train task lists). Each play's score, calls and characters (what a model reads and writes), then each split's mean.

    nice -n 10 uv run python -m lab.calibration.audit_generic_scores --seeds 10 --skip 10
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from lab.agents.registry import make_agent
from lab.calibration.interface import message_texts
from metric_tracker_rl.adapters.transcript import TaskRun
from metric_tracker_rl.agents import run_episode
from metric_tracker_rl.catalog.task_splits import TRAIN_SEED_BASE, UNTUNED_FIRST_OFFSET, calibration_reset_kwargs
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

AGENT = "generic_auditor"
# The agents that play the audit tier only (unlisted while it is built): a default calibration run leaves them out.
TRAIN_UNTUNED_FIRST = TRAIN_SEED_BASE + 20_000  # past every listed train task


def split_episodes(split: str, count: int, skip: int = 0) -> list[dict[str, Any]]:
    """The reset arguments of `count` untuned audit episodes of `split`, from the `skip`-th on."""
    if split == "eval":
        return [calibration_reset_kwargs("audit", UNTUNED_FIRST_OFFSET + i) for i in range(skip, skip + count)]
    return [{"seed": TRAIN_UNTUNED_FIRST + i, "difficulty": "audit"} for i in range(skip, skip + count)]


def play_audit(agent_name: str, reset_kwargs: dict[str, Any]) -> dict[str, Any]:
    """One audit episode of `agent_name` through the environment: its score, calls and characters."""
    agent = make_agent(agent_name)
    env, run = MetricTrackerRlEnvironment(), TaskRun(agent_name)
    sent: list[MetricTrackerRlAction] = []

    def act(action: MetricTrackerRlAction) -> Any:
        sent.append(action)
        return run.act(env, action)

    run_episode(agent, lambda **kw: run.reset(env, **kw), act, **reset_kwargs)
    rows = sum(len(a.classifications or []) for a in sent)
    return {**reset_kwargs, "score": run.score, "calls": len(sent), "rows": rows,
            "chars": sum(map(len, message_texts(run.messages)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="episodes per split")
    parser.add_argument("--skip", type=int, default=0, help="start at this many episodes into each split's seeds")
    parser.add_argument("--agent", default=AGENT)
    parser.add_argument("--splits", nargs="+", default=["eval", "train"])
    args = parser.parse_args()
    for split in args.splits:
        plays = [play_audit(args.agent, kwargs) for kwargs in split_episodes(split, args.seeds, args.skip)]
        for p in plays:
            print(f"{split} seed {p['seed']}{' (null)' if 'scenario_family' in p else ''}: score {p['score']:.3f} "
                  f"calls {p['calls']} rows {p['rows']} chars {p['chars']}", flush=True)
        scores = [float(p["score"] or 0.0) for p in plays]
        print(f"{split}: mean {statistics.mean(scores):.3f} over {len(plays)} seeds; calls max "
              f"{max(p['calls'] for p in plays)}; chars mean {statistics.mean(p['chars'] for p in plays):.0f}",
              flush=True)


if __name__ == "__main__":
    main()
