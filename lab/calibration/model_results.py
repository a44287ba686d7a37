"""The model results: the committed transcripts replayed, grouped by set, tier, dial settings and how the episode was
played, with the expert's score on the same episodes, as an artifact (lab/artifacts/model_results.json) and the table
lab/docs/model_results.md shows (a block of lab/docs_blocks.py).

    uv run python -m lab.calibration.model_results          # replay, print the table (exit 1 if the artifact differs)
    uv run python -m lab.calibration.model_results --write  # replay and write the artifact
    uv run python -m lab.docs_blocks --write                # then the page's table

The current sets sit in lab/artifacts/model_transcripts/ (the abyss set) and each folder beside history/ that keeps a
recorded_on.json (warehouse/, audit/), each earlier set in history/<commit>/. A tier whose episodes changed since
the recording is not replayed: its transcripts keep their recorded scores and are marked as recorded on an earlier
version, and no expert score stands beside them (the expert would play other episodes). An episode whose connection
was lost is a row of its own (scored what it had, 0 before a report), and so is an episode played again after one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.calibration.calibrate import markdown_table
from lab.calibration.interface import record_episode
from lab.calibration.read_before_play import kept_texts
from lab.calibration.replay import (
    EARLIER_VERSION,
    HISTORY,
    RECORD_FILES,
    RECORDED_ON,
    REGRADED_STATUS,
    REPRODUCED,
    SCORE_CHANGED,
    TEXTS_CHANGED,
    TRANSCRIPTS,
    current_fingerprints,
    is_earlier_version,
    load,
    lost_at,
    played_version,
    recorded_on,
    regradings,
    replay,
)
from metric_tracker_rl.catalog.published import DIFFICULTIES

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "lab" / "artifacts" / "model_results.json"
# The outcomes in the order a group's table cell lists them.
STATUS_ORDER = (REPRODUCED, TEXTS_CHANGED, REGRADED_STATUS, SCORE_CHANGED, EARLIER_VERSION)
# How an episode was played, in the order a set's rows list them: to its end, again after its connection was lost
# (the player had read that episode's brief before), or lost (its connection died before its end).
PLAYED, RERUN, LOST = "to the end", "again, after a lost connection", "lost: the connection dropped"
PLAYED_ORDER = (PLAYED, RERUN, LOST)
EXPERT = "expert"  # the reference agent that plays each tier's own procedure
Replayer = Callable[[dict[str, Any], float | None, dict[str, str] | None], Any]
ExpertScore = Callable[[str, int, dict[str, Any]], float]


def expert_score(difficulty: str, seed: int, settings: dict[str, Any]) -> float:
    """The expert's score on the transcript's episode, played in this process."""
    return record_episode(EXPERT, {"difficulty": difficulty, "seed": seed, **settings}).score


def played(transcript: dict[str, Any]) -> str:
    """How the transcript's episode was played: lost, again after a loss, or to its end."""
    if lost_at(transcript) is not None:
        return LOST
    return RERUN if transcript.get("rerun") else PLAYED


def transcript_entry(
    path: Path,
    recorded: dict[str, Any] | None,
    stored: dict[str, dict[str, str]],
    replayed: Replayer,
    expert: ExpertScore,
) -> dict[str, Any]:
    """One transcript's line of the artifact: what it recorded and how it was played, the regradings accepted
    since, what its replay on this version shows (which texts read before the calls changed, where they were kept)
    and the expert's score on its episode."""
    transcript = load(path)
    regraded = regradings(path.parent).get(path.name, [])
    settings = transcript.get("settings", {})
    file = path.relative_to(TRANSCRIPTS).as_posix() if TRANSCRIPTS in path.parents else path.name
    entry = {
        "file": file,
        "history": HISTORY in path.parents,
        "recorded_on": (recorded or {}).get("commit"),
        "difficulty": transcript["difficulty"],
        "seed": transcript["seed"],
        "settings": settings,
        "played": played(transcript),
        "score": transcript["score"],
        "calls": len(transcript["calls"]),
        "regradings": regraded,
    }
    if is_earlier_version(transcript["difficulty"], recorded, stored, played_version(transcript)):
        return {
            **entry,
            "version": None,  # played on episodes no version of the tier holds
            "replay": EARLIER_VERSION,
            "texts_matched": None,
            "changed_before_play": None,
            "replayed_score": None,
            "expert_score": None,
        }
    result = replayed(
        transcript,
        regraded[-1]["score"] if regraded else None,
        kept_texts(path.parent, path.name, transcript["difficulty"]),
    )
    changed = result.changed_before_play
    return {
        **entry,
        "version": played_version(transcript),
        "replay": result.status,
        "texts_matched": result.matched_texts,
        "changed_before_play": None if changed is None else list(changed),
        "replayed_score": round(result.replayed_score, 6),
        "expert_score": round(expert(transcript["difficulty"], transcript["seed"], settings), 6),
    }


def _group_key(entry: dict[str, Any]) -> tuple[bool, int, str, int, str, int]:
    settings = entry["settings"]
    return (
        entry["history"],
        DIFFICULTIES.index(entry["difficulty"]),
        entry["recorded_on"] or "",
        len(settings),
        json.dumps(settings, sort_keys=True),
        PLAYED_ORDER.index(entry["played"]),
    )


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 6)


def groups(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transcripts by set (the current ones first), tier, dial settings and how they were played: episodes,
    mean, range of scores, range of calls, how their replays went (each status with its count), the mean of their
    scores on this version and the expert's on the same episodes, each where every one of them replays (None where
    a tier's episodes changed since)."""
    grouped: dict[tuple[bool, int, str, int, str, int], list[dict[str, Any]]] = {}
    for entry in sorted(entries, key=_group_key):
        grouped.setdefault(_group_key(entry), []).append(entry)
    summary = []
    for members in grouped.values():
        scores, calls = [m["score"] for m in members], [m["calls"] for m in members]
        seen = [member["replay"] for member in members]
        statuses = {status: seen.count(status) for status in STATUS_ORDER if status in seen}
        replayed = [m["replayed_score"] for m in members if m["replayed_score"] is not None]
        experts = [m["expert_score"] for m in members if m["expert_score"] is not None]
        summary.append(
            {
                "difficulty": members[0]["difficulty"],
                "settings": members[0]["settings"],
                "history": members[0]["history"],
                "recorded_on": members[0]["recorded_on"],
                "version": members[0]["version"],
                "played": members[0]["played"],
                "episodes": len(members),
                "mean": _mean(scores),
                "min": min(scores),
                "max": max(scores),
                "calls_min": min(calls),
                "calls_max": max(calls),
                "replays": statuses,
                "replayed_mean": _mean(replayed) if len(replayed) == len(members) else None,
                "expert_mean": _mean(experts) if len(experts) == len(members) else None,
            }
        )
    return summary


def transcript_folders() -> list[Path]:
    """The current sets' folders (the abyss set's, then each beside history/ that keeps its recording commit),
    then each earlier set's under history/."""
    beside = sorted(
        path
        for path in TRANSCRIPTS.glob("*")
        if path.is_dir() and path != HISTORY and (path / RECORDED_ON.name).exists()
    )
    return [TRANSCRIPTS, *beside, *sorted(path for path in HISTORY.glob("*") if path.is_dir())]


def render_results(expert: ExpertScore = expert_score) -> dict[str, Any]:
    """Replay every committed transcript (those of a changed tier excepted) into the artifact's content, with the
    expert played once on each episode."""
    stored, entries, scores = current_fingerprints(), [], {}

    def expert_once(difficulty: str, seed: int, settings: dict[str, Any]) -> float:
        key = (difficulty, seed, json.dumps(settings, sort_keys=True))  # a lost seed's rerun is the same episode
        if key not in scores:
            scores[key] = expert(difficulty, seed, settings)
        return scores[key]

    for folder in transcript_folders():
        recorded = recorded_on(folder)
        entries += [
            transcript_entry(path, recorded, stored, replay, expert_once)
            for path in sorted(folder.glob("*.json"))
            if path.name not in RECORD_FILES
        ]
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
    """The page's table, from the kept artifact: set, tier, the version its episodes are (– where no version holds
    them: the tier's episodes changed since), dial settings, how the episodes were played, episodes, mean, range,
    calls, the expert's mean on the same episodes, replay."""
    results = results or kept_results()
    rows = []
    for group in results["groups"]:
        low, high = group["min"], group["max"]
        calls = f"{group['calls_min']}" + (f"–{group['calls_max']}" if group["calls_max"] > group["calls_min"] else "")
        recorded = f"`{group['recorded_on']}`" + (" (history)" if group["history"] else "")
        expert = "–" if group["expert_mean"] is None else f"{group['expert_mean']:.3f}"
        rows.append(
            [
                recorded,
                group["difficulty"],
                "–" if group["version"] is None else f"v{group['version']}",
                _settings_text(group["settings"]),
                group["played"],
                str(group["episodes"]),
                f"{group['mean']:.3f}",
                f"{low:.3f}" if low == high else f"{low:.3f}–{high:.3f}",
                calls,
                expert,
                _replays_text(group["replays"], group["episodes"]),
            ]
        )
    return markdown_table(
        [
            "recorded on",
            "tier",
            "version",
            "dial settings",
            "played",
            "episodes",
            "mean score",
            "range",
            "calls",
            "expert, same episodes",
            "replay on this version",
        ],
        rows,
    )


def model_regradings_table(results: dict[str, Any] | None = None) -> str:
    """Every regrading kept for a transcript, from the kept artifact: the score recorded, the score before and after
    the grading change, and why (lab/docs/model_results.md)."""
    results = results or kept_results()
    rows = [
        [f"`{entry['file']}`", f"{entry['score']:.6f}", f"{change['was']:.6f}", f"{change['score']:.6f}", change["why"]]
        for entry in results["transcripts"]
        for change in entry["regradings"]
    ]
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
