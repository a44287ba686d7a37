"""One episode of a tier as a model reads it, played by the tier's expert and by the analyst that plays a capable
model's method there (PLAYERS: abyss's scan analyst, the warehouse's model-like analyst), and where that analyst goes
wrong: a page of the docs, generated from a kept artifact.

    uv run python -m lab.calibration.rung_example --difficulty abyss --output lab/artifacts/abyss_example.json
    uv run python -m lab.calibration.rung_example --render lab/artifacts/abyss_example.json > lab/docs/abyss_episode.md
    uv run python -m lab.calibration.rung_example --difficulty warehouse --write

(`--write` keeps the artifact and the page at their places, lab/artifacts/<tier>_example.json and
lab/docs/<tier>_episode.md.) The episode is chosen by a rule, not by hand: the first standard calibration episode
of the tier (from offset 0) in which the expert scores at least EXPERT_AT_LEAST and the analyst at least GAP below
it. Each play is kept in the replay format (`lab.calibration.replay`: every call with the text the model read, and
the score), so a test replays both and checks every text; the analyst's losses are read beside the truth of a
debug environment (`lab.calibration.scan_analyst_failures`), which only this measurement sees.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.agents.registry import make_agent
from lab.calibration.scan_analyst_failures import losses, play_recorded
from lab.calibration.warehouse_calibration import expected_keys
from metric_tracker_rl.adapters.session import EpisodeSession, Step
from metric_tracker_rl.agents import play
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.generation.warehouse.truth import DATA_QUALITY
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.tool_schemas import action_tool_call

EXPERT_AT_LEAST, GAP = 0.9, 0.3
SHOWN_LINES = 14  # the lines of each tool text the page shows (the artifact keeps all of it)
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Players:
    """A tier's expert and the analyst that plays a capable model's method there: its agent, the example's keys for
    its play and its losses, how the page names it and whose method it plays."""

    expert: str
    analyst: str
    key: str
    losses_key: str
    name: str
    method: str


PLAYERS = {
    "abyss": Players(
        "deep_expert",
        "scan_analyst",
        "scan_analyst",
        "scan_losses",
        "scan analyst",
        "the method a capable model used on deep",
    ),
    "warehouse": Players(
        "warehouse_expert",
        "warehouse_model_like",
        "model_like",
        "model_like_losses",
        "model-like analyst",
        "the method a capable model used on abyss, from its transcripts",
    ),
}


def artifact_path(difficulty: str) -> Path:
    return ROOT / "lab" / "artifacts" / f"{difficulty}_example.json"


def page_path(difficulty: str) -> Path:
    return ROOT / "lab" / "docs" / f"{difficulty}_episode.md"


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
    return {
        "difficulty": reset_kwargs["difficulty"],
        "seed": reset_kwargs["seed"],
        "settings": settings,
        "agent": agent_name,
        "score": session.score,
        "brief": session.brief.text,
        "calls": session.calls,
    }


def analyst_losses(analyst: str, reset_kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row that cost the analyst points, with its failure mode, beside the debug truth; a missed data defect
    (a tier of raw events) is named by its kind, under its own mode."""
    session, agent, submitted = play_recorded(analyst, reset_kwargs)
    defects = defect_kinds(reset_kwargs)
    out = []
    for loss in losses(session, agent, submitted):
        key = loss.detail.split(" ")[0]
        mode, kind = (
            ("data defect", defects[key]) if loss.kind == "other" and key in defects else (loss.mode, loss.kind)
        )
        out.append({"mode": mode, "points": round(loss.points, 4), "kind": kind, "detail": loss.detail})
    return out


def defect_kinds(reset_kwargs: dict[str, Any]) -> dict[str, str]:
    """Each expected data-defect row's key as a loss names it (date|entity_type|entity_name), with its defect's
    kind; none at a tier of counts."""
    config = resolve_episode_config(**reset_kwargs)
    if config.tier.data != "events":
        return {}
    return {key: kind for key, kind, family in expected_keys(config) if family == DATA_QUALITY}


def chosen_episode(difficulty: str, most: int) -> dict[str, Any]:
    """The first standard calibration episode that fits the rule (see the module's docstring)."""
    players = PLAYERS[difficulty]
    for offset in range(most):
        reset_kwargs = calibration_reset_kwargs(difficulty, offset)
        if "scenario_family" in reset_kwargs:
            continue
        expert = recorded_play(players.expert, reset_kwargs)
        if expert["score"] < EXPERT_AT_LEAST:
            print(
                f"[{difficulty}] offset {offset} passed over: expert {expert['score']:.3f}", file=sys.stderr, flush=True
            )
            continue
        analyst = recorded_play(players.analyst, reset_kwargs)
        if analyst["score"] <= expert["score"] - GAP:
            print(
                f"[{difficulty}] offset {offset}: expert {expert['score']:.3f}, {players.name} {analyst['score']:.3f}",
                file=sys.stderr,
                flush=True,
            )
            return {
                "offset": offset,
                "expert": expert,
                players.key: analyst,
                players.losses_key: analyst_losses(players.analyst, reset_kwargs),
            }
        print(
            f"[{difficulty}] offset {offset} passed over: {players.name} {analyst['score']:.3f}",
            file=sys.stderr,
            flush=True,
        )
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
        lines += [
            f"**{index}. `{call['tool']}`** ({len(call['text']):,} characters read)",
            "",
            _arguments(call["arguments"]),
            "",
            *_fenced(_abridged(call["text"])),
            "",
        ]
    return lines


def render(example: dict[str, Any]) -> str:
    """The page."""
    expert = example["expert"]
    players = PLAYERS[expert["difficulty"]]
    analyst, name = example[players.key], players.name
    title = f"{expert['difficulty']} calibration episode {expert['seed']}"
    lines = [
        f"# One {expert['difficulty']} episode, played twice",
        "",
        "<!-- Generated by lab/calibration/rung_example.py from lab/artifacts/"
        f"{expert['difficulty']}_example.json; lab/tests/test_rung_example.py compares them. -->",
        "",
        f"The {title} (seed {expert['seed']}), chosen by a rule: the first standard calibration episode in "
        f"which the expert scores at least {EXPERT_AT_LEAST} and the {name} at least {GAP} below it. "
        f"The expert (`{players.expert}`) scored **{expert['score']:.3f}** in {len(expert['calls'])} calls; "
        f"the {name} (`{players.analyst}`, {players.method}) scored **{analyst['score']:.3f}** in "
        f"{len(analyst['calls'])} calls. Each tool text is shown to its first {SHOWN_LINES} lines; the artifact "
        "keeps every text whole, and `uv run python -m lab.calibration.replay` replays it.",
        "",
        "## The brief",
        "",
        *_fenced(expert["brief"]),
        "",
        f"## Where the {name} goes wrong",
        "",
        "Every row that cost it points, beside the episode's truth (a debug environment's, which no agent "
        "reads), with its share of the episode's loss:",
        "",
        "| failure mode | points | incident kind | row |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {loss['mode']} | {loss['points']:.3f} | {loss['kind'] or '(a false row)'} | "
        f"{loss['detail'].replace('|', '/')} |"
        for loss in example[players.losses_key]
    ]
    lines += [
        "",
        "## The expert's calls, in order",
        "",
        *render_play(expert),
        f"## The {name}'s calls, in order",
        "",
        *render_play(analyst),
    ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One episode played by a tier's expert and its analyst.")
    parser.add_argument("--difficulty", default="abyss", choices=sorted(PLAYERS))
    parser.add_argument("--most", type=int, default=40, help="calibration offsets to try, from 0")
    parser.add_argument("--output", type=Path, default=None, help="write the example here (JSON)")
    parser.add_argument(
        "--write", action="store_true", help="keep the example and its page at their places (lab/artifacts, lab/docs)"
    )
    parser.add_argument("--render", type=Path, default=None, help="print a kept example's page, run nothing")
    args = parser.parse_args(argv)
    if args.render is not None:
        print(render(json.loads(args.render.read_text())), end="")
        return
    example = chosen_episode(args.difficulty, args.most)
    output = artifact_path(args.difficulty) if args.write else args.output
    if output is not None:
        output.write_text(json.dumps(example, indent=1) + "\n")
    if args.write:
        page_path(args.difficulty).write_text(render(example))
        return
    print(render(example), end="")


if __name__ == "__main__":
    main()
