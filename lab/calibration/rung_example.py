"""One episode of a tier as a model reads it, played by the expert and by the scan analyst, and where the scan
analyst goes wrong: a page of the docs, generated from a kept artifact.

    uv run python -m lab.calibration.rung_example --difficulty abyss --output lab/artifacts/abyss_example.json
    uv run python -m lab.calibration.rung_example --render lab/artifacts/abyss_example.json > lab/docs/abyss_episode.md

The episode is chosen by a rule, not by hand: the first standard calibration episode of the tier (from offset 0) in
which the expert scores at least EXPERT_AT_LEAST and the scan analyst at least GAP below it. Each play is kept in
the replay format (`lab.calibration.replay`: every call with the text the model read, and the score), so a test replays
both and checks every text; the scan analyst's losses are read beside the truth of a debug environment
(`lab.calibration.scan_analyst_failures`), which only this measurement sees.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lab.agents.registry import make_agent
from lab.calibration.scan_analyst_failures import losses, play_recorded
from metric_tracker_rl.adapters.session import EpisodeSession, Step
from metric_tracker_rl.agents import play
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.tool_schemas import action_tool_call

EXPERT, SCAN = "deep_expert", "scan_analyst"
EXPERT_AT_LEAST, GAP = 0.9, 0.3
SHOWN_LINES = 14  # the lines of each tool text the page shows (the artifact keeps all of it)


class RecordingSession(EpisodeSession):
    """An in-process session that keeps every call as the replay format holds it: tool, arguments, text."""

    def __init__(self) -> None:
        super().__init__(MetricTrackerRlEnvironment())
        self.calls: list[dict[str, Any]] = []

    def step(self, action: MetricTrackerRlAction) -> Step:
        taken = super().step(action)
        tool, arguments = action_tool_call(action)
        self.calls.append({"tool": tool, "arguments": arguments, "text": taken.text})
        return taken


def recorded_play(agent_name: str, reset_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The agent's episode in the replay format, with the brief the model read first."""
    session = RecordingSession()
    play(make_agent(agent_name), session, **reset_kwargs)
    assert session.brief is not None
    settings = {key: value for key, value in reset_kwargs.items() if key not in ("seed", "difficulty")}
    return {"difficulty": reset_kwargs["difficulty"], "seed": reset_kwargs["seed"], "settings": settings,
            "agent": agent_name, "score": session.score, "brief": session.brief.text, "calls": session.calls}


def scan_losses(reset_kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row that cost the scan analyst points, with its failure mode, beside the debug truth."""
    session, agent, submitted = play_recorded(SCAN, reset_kwargs)
    return [{"mode": loss.mode, "points": round(loss.points, 4), "kind": loss.kind, "detail": loss.detail}
            for loss in losses(session, agent, submitted)]


def chosen_episode(difficulty: str, most: int) -> dict[str, Any]:
    """The first standard calibration episode that fits the rule (see the module's docstring)."""
    for offset in range(most):
        reset_kwargs = calibration_reset_kwargs(difficulty, offset)
        if "scenario_family" in reset_kwargs:
            continue
        expert = recorded_play(EXPERT, reset_kwargs)
        if expert["score"] < EXPERT_AT_LEAST:
            continue
        scan = recorded_play(SCAN, reset_kwargs)
        if scan["score"] <= expert["score"] - GAP:
            print(f"[{difficulty}] offset {offset}: expert {expert['score']:.3f}, scan {scan['score']:.3f}",
                  file=sys.stderr, flush=True)
            return {"offset": offset, "expert": expert, "scan_analyst": scan, "scan_losses": scan_losses(reset_kwargs)}
        print(f"[{difficulty}] offset {offset} passed over: scan {scan['score']:.3f}", file=sys.stderr, flush=True)
    raise SystemExit(f"no episode of the first {most} fits the rule")


def _abridged(text: str) -> str:
    lines = text.splitlines()
    shown = "\n".join(lines[:SHOWN_LINES])
    more = len(lines) - SHOWN_LINES
    return shown + (f"\n… {more} more lines (the artifact keeps the whole text)" if more > 0 else "")


def _fenced(text: str) -> list[str]:
    return ["```text", text.replace("```", "'''"), "```"]


def _arguments(arguments: dict[str, Any]) -> str:
    if set(arguments) == {"query"}:
        return "\n".join(["```sql", str(arguments["query"]).strip(), "```"])
    return "`" + json.dumps(arguments, sort_keys=True)[:400] + "`"


def render_play(play_record: dict[str, Any]) -> list[str]:
    """One play: each call in order, its arguments and the start of the text it read."""
    lines = []
    for index, call in enumerate(play_record["calls"], 1):
        lines += [f"**{index}. `{call['tool']}`** ({len(call['text']):,} characters read)", "",
                  _arguments(call["arguments"]), "", *_fenced(_abridged(call["text"])), ""]
    return lines


def render(example: dict[str, Any]) -> str:
    """The page."""
    expert, scan = example["expert"], example["scan_analyst"]
    title = f"{expert['difficulty']} calibration episode {expert['seed']}"
    lines = [f"# One {expert['difficulty']} episode, played twice", "",
             "<!-- Generated by lab/calibration/rung_example.py from lab/artifacts/"
             f"{expert['difficulty']}_example.json; lab/tests/test_rung_example.py compares them. -->", "",
             f"The {title} (seed {expert['seed']}), chosen by a rule: the first standard calibration episode in "
             f"which the expert scores at least {EXPERT_AT_LEAST} and the scan analyst at least {GAP} below it. "
             f"The expert (`{EXPERT}`) scored **{expert['score']:.3f}** in {len(expert['calls'])} calls; the scan "
             f"analyst (`{SCAN}`, the method a capable model used on deep) scored **{scan['score']:.3f}** in "
             f"{len(scan['calls'])} calls. Each tool text is shown to its first {SHOWN_LINES} lines; the artifact "
             "keeps every text whole, and `uv run python -m lab.calibration.replay` replays it.", "",
             "## The brief", "", *_fenced(expert["brief"]), "",
             "## Where the scan analyst goes wrong", "",
             "Every row that cost it points, beside the episode's truth (a debug environment's, which no agent "
             "reads), with its share of the episode's loss:", "",
             "| failure mode | points | incident kind | row |", "| --- | --- | --- | --- |"]
    lines += [f"| {loss['mode']} | {loss['points']:.3f} | {loss['kind'] or '(a false row)'} | "
              f"{loss['detail'].replace('|', '/')} |" for loss in example["scan_losses"]]
    lines += ["", "## The expert's calls, in order", "", *render_play(expert),
              "## The scan analyst's calls, in order", "", *render_play(scan)]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One episode played by the expert and the scan analyst.")
    parser.add_argument("--difficulty", default="abyss")
    parser.add_argument("--most", type=int, default=40, help="calibration offsets to try, from 0")
    parser.add_argument("--output", type=Path, default=None, help="write the example here (JSON)")
    parser.add_argument("--render", type=Path, default=None, help="print a kept example's page, run nothing")
    args = parser.parse_args(argv)
    if args.render is not None:
        print(render(json.loads(args.render.read_text())), end="")
        return
    example = chosen_episode(args.difficulty, args.most)
    if args.output is not None:
        args.output.write_text(json.dumps(example, indent=1) + "\n")
    print(render(example), end="")


if __name__ == "__main__":
    main()
