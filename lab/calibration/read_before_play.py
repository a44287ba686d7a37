"""What a model read before its first tool call, kept beside its transcripts so a replay can say when it changed.

A transcript keeps each call's text, but not what came before the calls: the system prompt, the tool schemas and the
episode's brief. A transcripts' folder may keep those in `texts_read.json`: per tier its system prompt and tool
schemas (as `openai_tools` gives them, the source of every entry point's), and per transcript file its brief (the
reset's text). Written on the recording commit, it is what the model read then; the replay compares it with what
this version gives, in the order the model read it, before the calls.

    uv run python -m lab.calibration.read_before_play FOLDER   # on the recording commit: keep what was read

This module reads nothing of the lab beyond itself, so it can be copied onto an earlier commit's tree and run there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.prompt import system_prompt
from metric_tracker_rl.view.tool_schemas import openai_tools

RECORD = "texts_read.json"
SYSTEM_PROMPT, TOOL_SCHEMAS, BRIEF = "system prompt", "tool schemas", "brief"  # in the order a model reads them


def tier_texts(difficulty: str) -> dict[str, str]:
    """A tier's texts every episode of it reads first: its system prompt and its tool schemas."""
    return {SYSTEM_PROMPT: system_prompt(difficulty), TOOL_SCHEMAS: json.dumps(openai_tools(difficulty), indent=1)}


def texts_before_play(difficulty: str, brief: str) -> dict[str, str]:
    """Everything a model read before its first call, in the order it read it."""
    return {**tier_texts(difficulty), BRIEF: brief}


def kept_texts(folder: Path, file: str, difficulty: str) -> dict[str, str] | None:
    """What the transcript `file` of `folder` read before its first call, as kept at the recording; None where the
    folder keeps no record of it."""
    path = folder / RECORD
    if not path.exists():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    if file not in record["briefs"] or difficulty not in record["tiers"]:
        return None
    return {**record["tiers"][difficulty], BRIEF: record["briefs"][file]}


def brief_of(transcript: dict[str, Any]) -> str:
    """The brief the transcript's episode starts with on this version."""
    session = EpisodeSession(MetricTrackerRlEnvironment())
    brief = session.reset(
        seed=transcript["seed"], difficulty=transcript["difficulty"], **transcript.get("settings", {})
    )
    if brief.status == "error":
        raise ValueError(f"the transcript's episode cannot start: {session.message}")
    return brief.text


def record(
    folder: Path, records: frozenset[str] = frozenset({RECORD, "recorded_on.json", "regraded.json"})
) -> dict[str, Any]:
    """The record of every transcript in `folder` (its own files, not its subfolders'), as this version gives it."""
    tiers: dict[str, dict[str, str]] = {}
    briefs: dict[str, str] = {}
    for path in sorted(folder.glob("*.json")):
        if path.name in records:
            continue
        transcript = json.loads(path.read_text(encoding="utf-8"))
        tiers.setdefault(transcript["difficulty"], tier_texts(transcript["difficulty"]))
        briefs[path.name] = brief_of(transcript)
    return {"tiers": tiers, "briefs": briefs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folder", type=Path, help="a transcripts' folder, on the commit its transcripts were recorded on"
    )
    args = parser.parse_args(argv)
    kept = record(args.folder)
    (args.folder / RECORD).write_text(json.dumps(kept, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.folder / RECORD}: {len(kept['briefs'])} briefs, tiers {', '.join(kept['tiers'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
