"""The expert agent's actions on one episode, as the JSON replies a model would send verifiers' OpenEnv taskset.

    uv run python -m integrations.verifiers.expert_replies --seed 7 --difficulty easy > replies.json

Runs in this project's environment (the episode is played in-process); `openenv_path.py` replays the replies in
verifiers' own environment, which cannot hold this project (see docs/frameworks.md)."""

from __future__ import annotations

import argparse
import json

from metric_tracker_rl.agents import make_agent
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.observation import seen


def expert_replies(seed: int, difficulty: str) -> tuple[list[str], float]:
    """The typed actions as JSON texts, and the score the episode gets."""
    environment, agent = MetricTrackerRlEnvironment(), make_agent("expert")
    observation = environment.reset(seed=seed, difficulty=difficulty)
    agent.begin(seen(observation))
    replies = []
    while not observation.done and (action := agent.act(seen(observation))) is not None:
        replies.append(action.model_dump_json(exclude_none=True, exclude={"metadata"}))
        observation = environment.step(action)
    return replies, float(environment.state.episode_score or 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the expert's replies on one episode as a JSON list.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--difficulty", default="easy", choices=["easy", "medium", "hard"])
    args = parser.parse_args()
    replies, _ = expert_replies(args.seed, args.difficulty)
    print(json.dumps(replies))


if __name__ == "__main__":
    main()
