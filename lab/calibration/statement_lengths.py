"""How long SQL statements are, and what they make an episode cost a model's context: the expert's statements at a
tier, against the statements a capable model wrote in its transcripts there (docs/training.md's SFT section cites
it).

    uv run python -m lab.calibration.statement_lengths --tier abyss --episodes 4

For each source: statements per episode, each statement's characters (median, p90), and the episode's characters
(everything a model reads and writes: messages and tool calls). The last line estimates an expert episode whose
statements were as long as the model's: the expert's episode with each of its statements replaced by one of the
model's median length.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from lab.calibration.interface import message_texts, record_episode
from lab.calibration.replay import TRANSCRIPTS
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

EXPERT = "expert"


def statements(calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [str(arguments.get("sql", "")) for tool, arguments in calls if tool == "query"]


def summary(label: str, per_episode: list[list[str]], episode_chars: list[int]) -> dict[str, Any]:
    lengths = [len(sql) for episode in per_episode for sql in episode]
    return {
        "source": label,
        "episodes": len(per_episode),
        "statements": len(lengths),
        "statements_per_episode": float(np.median([len(e) for e in per_episode])),
        "statement_chars_p50": float(np.median(lengths)) if lengths else 0.0,
        "statement_chars_p90": float(np.percentile(lengths, 90)) if lengths else 0.0,
        "episode_chars_p50": float(np.median(episode_chars)),
    }


def expert_episodes(tier: str, episodes: int) -> tuple[list[list[str]], list[int]]:
    env, sent, chars = MetricTrackerRlEnvironment(), [], []
    for offset in range(episodes):
        run = record_episode(EXPERT, calibration_reset_kwargs(tier, offset), env)
        calls = [
            (call["function"]["name"], call["function"]["arguments"])
            for m in run.messages
            for call in m.get("tool_calls") or []
        ]
        sent.append(statements([(name, args if isinstance(args, dict) else json.loads(args)) for name, args in calls]))
        chars.append(sum(map(len, message_texts(run.messages))))
    env.close()
    return sent, chars


def model_episodes(tier: str) -> tuple[list[list[str]], list[int]]:
    sent, chars = [], []
    for path in sorted(TRANSCRIPTS.glob(f"{tier}-*.json")):
        transcript = json.loads(path.read_text(encoding="utf-8"))
        sent.append(statements([(call["tool"], call["arguments"]) for call in transcript["calls"]]))
        chars.append(sum(len(call["text"]) + len(json.dumps(call["arguments"])) for call in transcript["calls"]))
    return sent, chars


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", default="abyss")
    parser.add_argument("--episodes", type=int, default=4, help="the expert's calibration episodes (from offset 0)")
    args = parser.parse_args(argv)
    expert = summary(EXPERT, *expert_episodes(args.tier, args.episodes))
    model = summary("capable model (transcripts; calls only)", *model_episodes(args.tier))
    for row in (expert, model):
        print(json.dumps(row))
    readable = expert["episode_chars_p50"] + expert["statements_per_episode"] * (
        model["statement_chars_p50"] - expert["statement_chars_p50"]
    )
    print(f"the expert's median episode with statements of the model's median length: {readable:,.0f} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
