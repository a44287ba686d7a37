"""What an audit episode's world holds, as plain data: its expected rows (key, mechanism, family, date, segment),
its incidents and its defects (kind, dates, segment). The separation table (lab/calibration/separation.py) reads
these to know which of a model's episode rows each mechanism and each interaction made.

It imports the package alone (no lab module), so that it runs in a checkout of the commit a transcript set was
recorded on, where the audit's worlds have since moved:

    git worktree add --detach /tmp/audit-at 32cc005 && cd /tmp/audit-at && uv sync --frozen
    uv run python /path/to/this/lab/calibration/separation_worlds.py \\
        /path/to/this/lab/artifacts/model_transcripts/history/32cc005 --out /tmp/worlds-32cc005.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from metric_tracker_rl.catalog.published import row_key
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.generation.audit.truth import audit_rows
from metric_tracker_rl.generation.audit.world import audit_mix, build_audit_world
from metric_tracker_rl.world.funnel import window_calendar

RECORDS = frozenset({"recorded_on.json", "regraded.json", "texts_read.json"})  # a folder's files that are no episode


def reset_settings(transcript: dict[str, Any]) -> dict[str, Any]:
    """The transcript's reset arguments beside its seed and difficulty (replay.reset_settings' rule)."""
    version = {"version": transcript["version"]} if transcript.get("version") is not None else {}
    return {**transcript.get("settings", {}), **version}


def world_facts(seed: int, settings: dict[str, Any]) -> dict[str, Any]:
    """The audit episode's expected rows, incidents and defects, read from what was injected."""
    config = resolve_episode_config(seed=seed, difficulty="audit", **settings)
    world = build_audit_world(config.tier, config)
    dates = window_calendar(world.log.num_days).iso_dates
    rows = []
    for row in audit_rows(world, audit_mix(config.tier)):
        report = row.report_row(dates)
        rows.append(
            {
                "key": row_key(report.date, report.entity_type, report.entity_name),
                "mechanism": row.kind,
                "family": row.family,
                "day": row.day,
                "segment": row.segment.normalised().named(),
            }
        )
    incidents = [
        {"kind": i.kind, "day": i.record.day, "segment": i.segment.normalised().named()} for i in world.incidents
    ]
    defects = [{"kind": d.kind, "days": list(d.days), "segment": d.segment.normalised().named()} for d in world.defects]
    return {"rows": rows, "incidents": incidents, "defects": defects}


def folder_facts(folder: Path) -> dict[str, dict[str, Any]]:
    """Each audit transcript's world in `folder`, by file name."""
    facts = {}
    for path in sorted(folder.glob("*.json")):
        if path.name in RECORDS:
            continue
        transcript = json.loads(path.read_text(encoding="utf-8"))
        if transcript["difficulty"] == "audit":
            facts[path.name] = {
                "seed": transcript["seed"],
                **world_facts(transcript["seed"], reset_settings(transcript)),
            }
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder of audit transcripts")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.write_text(json.dumps(folder_facts(args.folder), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
