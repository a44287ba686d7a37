"""The model results: the committed transcripts replayed, grouped by tier and dial settings, as an artifact
(lab/artifacts/model_results.json) and the table lab/docs/model_results.md shows (a block of lab/docs_blocks.py).

    uv run python -m lab.calibration.model_results          # replay, print the table (exit 1 if the artifact differs)
    uv run python -m lab.calibration.model_results --write  # replay and write the artifact
    uv run python -m lab.docs_blocks --write                # then the page's table

The current set sits in lab/artifacts/model_transcripts/, each earlier one in history/<commit>/ below it. A tier
whose episodes changed since the recording is not replayed: its transcripts keep their recorded scores and are
marked as recorded on an earlier version.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.calibration.calibrate import markdown_table
from lab.calibration.replay import (
    EARLIER_VERSION,
    HISTORY,
    RECORD_FILES,
    REGRADED_STATUS,
    REPRODUCED,
    SCORE_CHANGED,
    TEXTS_CHANGED,
    TRANSCRIPTS,
    current_fingerprints,
    is_earlier_version,
    load,
    recorded_on,
    regradings,
    replay,
)
from metric_tracker_rl.catalog.published import DIFFICULTIES

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "lab" / "artifacts" / "model_results.json"
# The outcomes in the order a group's table cell lists them.
STATUS_ORDER = (REPRODUCED, TEXTS_CHANGED, REGRADED_STATUS, SCORE_CHANGED, EARLIER_VERSION)


def transcript_entry(path: Path, recorded: dict[str, Any] | None, stored: dict[str, dict[str, str]],
                     replayed: Callable[[dict[str, Any], float | None], Any]) -> dict[str, Any]:
    """One transcript's line of the artifact: what it recorded, the regradings accepted since, and what its replay on
    this version shows."""
    transcript = load(path)
    regraded = regradings(path.parent).get(path.name, [])
    entry = {"file": path.relative_to(TRANSCRIPTS).as_posix(), "history": HISTORY in path.parents,
             "recorded_on": (recorded or {}).get("commit"), "difficulty": transcript["difficulty"],
             "seed": transcript["seed"], "settings": transcript.get("settings", {}), "score": transcript["score"],
             "calls": len(transcript["calls"]), "regradings": regraded}
    if is_earlier_version(transcript["difficulty"], recorded, stored):
        return {**entry, "replay": EARLIER_VERSION, "texts_matched": None, "replayed_score": None}
    result = replayed(transcript, regraded[-1]["score"] if regraded else None)
    return {**entry, "replay": result.status, "texts_matched": result.matched_texts,
            "replayed_score": round(result.replayed_score, 6)}


def _group_key(entry: dict[str, Any]) -> tuple[bool, str, int, int, str]:
    settings = entry["settings"]
    return (entry["history"], entry["recorded_on"] or "", DIFFICULTIES.index(entry["difficulty"]), len(settings),
            json.dumps(settings, sort_keys=True))


def groups(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transcripts by set (the current one first), tier and dial settings: episodes, mean, range of scores,
    range of calls, how their replays went (each status with its count), and the mean of their scores on this
    version where every one of them replays (None where a tier's episodes changed since)."""
    grouped: dict[tuple[bool, str, int, int, str], list[dict[str, Any]]] = {}
    for entry in sorted(entries, key=_group_key):
        grouped.setdefault(_group_key(entry), []).append(entry)
    summary = []
    for members in grouped.values():
        scores, calls = [m["score"] for m in members], [m["calls"] for m in members]
        seen = [member["replay"] for member in members]
        statuses = {status: seen.count(status) for status in STATUS_ORDER if status in seen}
        replayed = [m["replayed_score"] for m in members if m["replayed_score"] is not None]
        summary.append({"difficulty": members[0]["difficulty"], "settings": members[0]["settings"],
                        "history": members[0]["history"], "recorded_on": members[0]["recorded_on"],
                        "episodes": len(members), "mean": round(sum(scores) / len(scores), 6),
                        "min": min(scores), "max": max(scores), "calls_min": min(calls), "calls_max": max(calls),
                        "replays": statuses,
                        "replayed_mean": round(sum(replayed) / len(replayed), 6) if len(replayed) == len(members)
                        else None})
    return summary


def transcript_folders() -> list[Path]:
    """The current set's folder, then each earlier set's under history/."""
    return [TRANSCRIPTS, *sorted(path for path in HISTORY.glob("*") if path.is_dir())]


def render_results() -> dict[str, Any]:
    """Replay every committed transcript (those of a changed tier excepted) into the artifact's content."""
    stored, entries = current_fingerprints(), []
    for folder in transcript_folders():
        recorded = recorded_on(folder)
        entries += [transcript_entry(path, recorded, stored, replay) for path in sorted(folder.glob("*.json"))
                    if path.name not in RECORD_FILES]
    return {"groups": groups(entries), "transcripts": entries}


def scores_replay(group: dict[str, Any]) -> bool:
    """Every transcript of the group scores on this version what it recorded (its texts may read differently)."""
    return set(group["replays"]) <= {REPRODUCED, TEXTS_CHANGED}


def kept_results() -> dict[str, Any]:
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def _settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"`{name}={value}`" for name, value in sorted(settings.items())) or "defaults"


def _replays_text(replays: dict[str, int], episodes: int) -> str:
    if list(replays) == [EARLIER_VERSION]:
        return "not replayed: the tier's episodes changed since"
    return "; ".join(f"{count} of {episodes} {status}" for status, count in replays.items())


def model_results_table(results: dict[str, Any] | None = None) -> str:
    """The page's table, from the kept artifact: set, tier, dial settings, episodes, mean, range, calls, replay."""
    results = results or kept_results()
    rows = []
    for group in results["groups"]:
        low, high = group["min"], group["max"]
        calls = f"{group['calls_min']}–{group['calls_max']}"
        recorded = f"`{group['recorded_on']}`" + (" (history)" if group["history"] else "")
        rows.append([recorded, group["difficulty"], _settings_text(group["settings"]), str(group["episodes"]),
                     f"{group['mean']:.3f}", f"{low:.3f}" if low == high else f"{low:.3f}–{high:.3f}", calls,
                     _replays_text(group["replays"], group["episodes"])])
    return markdown_table(["recorded on", "tier", "dial settings", "episodes", "mean score", "range", "calls",
                           "replay on this version"], rows)


def model_regradings_table(results: dict[str, Any] | None = None) -> str:
    """Every regrading kept for a transcript, from the kept artifact: the score recorded, the score before and after
    the grading change, and why (lab/docs/model_results.md)."""
    results = results or kept_results()
    rows = [[f"`{entry['file']}`", f"{entry['score']:.6f}", f"{change['was']:.6f}", f"{change['score']:.6f}",
             change["why"]] for entry in results["transcripts"] for change in entry["regradings"]]
    return markdown_table(["transcript", "recorded", "graded before", "graded since", "why"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {RESULTS.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    results = render_results()
    if args.write:
        RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS.relative_to(ROOT)}")
        return 0
    print(model_results_table(results))
    return 0 if results == kept_results() else 1


if __name__ == "__main__":
    sys.exit(main())
