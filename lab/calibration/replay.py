"""Replay a model's transcript against the seeded environment in this process and check what it read.

A transcript (the format `inference.py --transcripts DIR` writes, and lab/artifacts/model_transcripts/ holds) is
one episode: `difficulty`, `seed`, the dial `settings` where they differ from the tier's defaults, the episode
`score` the server computed, and the `calls` in order, each with `tool`, `arguments` and the `text` the model read.
The replay resets the same episode, sends each call through an `EpisodeSession` (the text the TRL class gives a
model), and compares every text and the score; the first difference is printed as a diff.

    uv run python -m lab.calibration.replay                       # every committed transcript, history included
    uv run python -m lab.calibration.replay PATH [PATH ...]       # transcript files or folders (searched recursively)
    uv run python -m lab.calibration.replay --exact PATH          # a changed text fails too
    uv run python -m lab.calibration.replay --regrade "WHY" PATH  # accept each changed score, and keep it with WHY

Where the folder keeps what the model read before its first call (texts_read.json: the system prompt, the tool
schemas and the brief, lab/calibration/read_before_play.py), those are compared first, in the order the model read
them. Each outcome is one of five, and only a changed score fails (exit 1): a score that holds with a reworded text
is the expected trace of a change to a brief or a tool's wording, printed with the diff of each text read before the
calls that changed and of the first call whose text did (headed by the call), and a failure only with --exact. A
grading change that moves a transcript's score is accepted with --regrade, which keeps the old score, the new one
and why in the folder's regraded.json: the transcript keeps the score it was recorded with, and later replays hold
it to the newest score kept there ("score as regraded", printed with both scores).

A transcript recorded before its tier's episodes last changed cannot replay: a transcripts' folder keeps, in
recorded_on.json, each tier's episode fingerprints as they were when its transcripts were recorded (a digest of
tests/data/episode_fingerprints.json's entries for the tier). Where today's digest differs, the transcript is
marked as recorded on an earlier version and its recorded score stands; it is never dropped.

A transcript whose connection was lost mid-episode (`lost: true`; a call reads "the connection to the server was
lost") replays the calls before the loss: the lost call and every later one were answered by the client, not the
environment, so none of them is sent. Its score is what the episode had then (0 before a graded report).
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lab.calibration.read_before_play import RECORD as TEXTS_READ
from lab.calibration.read_before_play import kept_texts, texts_before_play
from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.reconnect import GOING_AWAY, SessionLost, lost_connection_text
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

ROOT = Path(__file__).resolve().parents[2]
TRANSCRIPTS = ROOT / "lab" / "artifacts" / "model_transcripts"  # the current set; earlier ones under history/
HISTORY = TRANSCRIPTS / "history"
RECORDED_ON = TRANSCRIPTS / "recorded_on.json"
REGRADED = "regraded.json"  # beside a folder's transcripts: each regrading of one, old score to new, and why
RECORD_FILES = frozenset({RECORDED_ON.name, REGRADED, TEXTS_READ})  # the folder's records, which are no transcripts
STORED_FINGERPRINTS = ROOT / "tests" / "data" / "episode_fingerprints.json"
SCORE_TOLERANCE = 1e-9
DIFF_LINES = 60  # a mismatch's diff is cut after this many lines

REPRODUCED = "reproduced"  # every text and the score
TEXTS_CHANGED = "score reproduced, texts changed"  # the episode and the score hold; a tool's wording moved
SCORE_CHANGED = "score changed"  # the episodes hold but the score does not: the grading moved
REGRADED_STATUS = "score as regraded"  # the score a kept regrading gives it, not the recorded one
EARLIER_VERSION = "recorded on an earlier version"  # the tier's episodes changed since the recording
FAILURES = frozenset({SCORE_CHANGED})  # the outcomes that make the replay exit 1 (TEXTS_CHANGED too with --exact)
# How a call the client answered after its connection died begins (lost_connection_text's, for either reason).
LOST_CONNECTION = tuple(
    lost_connection_text(error).split(" (")[0] + " (" for error in (ConnectionError(), SessionLost("", GOING_AWAY))
)


@dataclass(frozen=True)
class Replay:
    """One transcript's replay: what it read before its first call that reads differently now, how many calls'
    texts matched before the first difference, and the scores."""

    calls: int  # the calls replayed: all, or those before a lost connection
    matched_texts: int  # calls whose text matched before the first differing call (== calls when all did)
    recorded_score: float
    replayed_score: float
    first_difference: str | None  # the first differing call's text as a diff, None when every call's matched
    regraded_score: float | None = None  # the newest score a kept regrading gives the transcript, if any
    changed_before_play: tuple[str, ...] | None = None  # the texts read before the calls that changed (None: unkept)
    read_difference: str | None = None  # their diffs, in the order they were read
    lost_at: int | None = None  # the call (from 1) whose connection was lost, where one was

    @property
    def expected_score(self) -> float:
        """What the replay must score: the newest regrading's score, else the recorded one."""
        return self.recorded_score if self.regraded_score is None else self.regraded_score

    @property
    def score_matches(self) -> bool:
        return abs(self.expected_score - self.replayed_score) <= SCORE_TOLERANCE

    @property
    def status(self) -> str:
        if not self.score_matches:
            return SCORE_CHANGED
        if abs(self.expected_score - self.recorded_score) > SCORE_TOLERANCE:
            return REGRADED_STATUS
        return REPRODUCED if self.first_difference is None and not self.changed_before_play else TEXTS_CHANGED

    @property
    def differences(self) -> list[str]:
        """The changed texts read before the calls and the first changed call's, as diffs, in reading order."""
        return [diff for diff in (self.read_difference, self.first_difference) if diff is not None]


def load(path: Path) -> dict[str, Any]:
    transcript = json.loads(path.read_text(encoding="utf-8"))
    missing = {"difficulty", "seed", "score", "calls"} - transcript.keys()
    if missing:
        raise ValueError(f"{path}: not a transcript (no {', '.join(sorted(missing))})")
    return transcript


def headed_diff(heading: str, recorded: str, replayed: str) -> str:
    """A differing text as a unified diff under `heading` (what the model read it from)."""
    lines = list(
        difflib.unified_diff(recorded.splitlines(), replayed.splitlines(), "recorded", "replayed", lineterm="")
    )
    cut = [f"... {len(lines) - DIFF_LINES} more diff lines"] if len(lines) > DIFF_LINES else []
    return "\n".join([heading, *lines[:DIFF_LINES], *cut])


def text_diff(call_index: int, call: dict[str, Any], recorded: str, replayed: str) -> str:
    """The first differing text as a unified diff, headed by the call that produced it."""
    arguments = json.dumps(call["arguments"], sort_keys=True)
    return headed_diff(f"call {call_index + 1} {call['tool']} {arguments[:300]}", recorded, replayed)


def lost_at(transcript: dict[str, Any]) -> int | None:
    """The index of the call the client answered with a lost connection, None where the connection held; a
    transcript marked lost must show it."""
    lost = next(
        (index for index, call in enumerate(transcript["calls"]) if call["text"].startswith(LOST_CONNECTION)), None
    )
    if transcript.get("lost") and lost is None:
        raise ValueError("a transcript marked lost has no call that reads a lost connection")
    return lost


def read_changes(kept: dict[str, str], today: dict[str, str]) -> tuple[tuple[str, ...], str | None]:
    """Which of the texts read before the calls read differently today, and their diffs (None when none did)."""
    changed = tuple(name for name, text in kept.items() if today.get(name) != text)
    diffs = [headed_diff(f"before the calls: the {name}", kept[name], today.get(name, "")) for name in changed]
    return changed, "\n".join(diffs) or None


def replay(
    transcript: dict[str, Any], regraded_score: float | None = None, read: dict[str, str] | None = None
) -> Replay:
    """Play the transcript's calls on its episode, in this process, and compare what it read before them (`read`,
    where kept), each call's text and the score (the recorded one, or `regraded_score` where a kept regrading
    changed it). The calls from a lost connection on are not sent."""
    session = EpisodeSession(MetricTrackerRlEnvironment())
    brief = session.reset(seed=transcript["seed"], difficulty=transcript["difficulty"], **reset_settings(transcript))
    if brief.status == "error":
        raise ValueError(f"the transcript's episode cannot start: {session.message}")
    changed, read_difference = (
        (None, None) if read is None else read_changes(read, texts_before_play(transcript["difficulty"], brief.text))
    )
    lost = lost_at(transcript)
    sent = transcript["calls"][:lost]
    matched, difference = 0, None
    for index, call in enumerate(sent):
        text = session.call(call["tool"], call["arguments"])
        if difference is None and text != call["text"]:
            difference = text_diff(index, call, call["text"], text)
        matched += difference is None
    return Replay(
        len(sent),
        matched,
        float(transcript["score"]),
        session.score,
        difference,
        regraded_score,
        changed,
        read_difference,
        None if lost is None else lost + 1,
    )


def played_version(transcript: dict[str, Any]) -> int:
    """The version of its tier a transcript played: the one it records, else the first (a transcript recorded
    before tiers had versions played its tier as it was then, which every tier's version 1 is or stands for)."""
    version = transcript.get("version")
    return 1 if version is None else int(version)


def reset_settings(transcript: dict[str, Any]) -> dict[str, Any]:
    """A transcript's reset arguments beside its seed and difficulty: its settings, and the version it played."""
    return {**transcript.get("settings", {}), "version": played_version(transcript)}


# --- which version recorded a transcript -------------------------------------------------------------------


# The parts of a fingerprint a model reads as text: a replay compares those texts itself (texts_read.json) and says
# which changed, so a reworded brief leaves the tier's episodes the same episodes.
READ_PARTS = frozenset({"task"})
# The parts fingerprinted since tiers have versions (a raw event export's tables, the grades of fixed reports), and
# the label's version: left out of the digest, so a folder's recorded_on.json from before versions still compares.
LATER_PARTS = frozenset({"events", "grading"})


def tier_fingerprint(stored: dict[str, dict[str, str]], difficulty: str, version: int | None = None) -> str:
    """One digest of every stored episode fingerprint of the tier at `version` (None: its latest) but its texts: it
    moves whenever the tier's episodes (their data, incidents and expected rows) do."""
    prefix = f"{difficulty}-v{TIERS[difficulty].version if version is None else version}/"
    tier = {
        f"{difficulty}/{label.removeprefix(prefix)}": {
            part: digest for part, digest in parts.items() if part not in READ_PARTS | LATER_PARTS
        }
        for label, parts in stored.items()
        if label.startswith(prefix)
    }
    if not tier:
        raise ValueError(f"no stored fingerprints for {prefix.rstrip('/')!r}")
    return hashlib.sha256(json.dumps(tier, sort_keys=True).encode()).hexdigest()[:16]


def current_fingerprints() -> dict[str, dict[str, str]]:
    """The stored fingerprints, which tests/test_episode_fingerprints.py holds equal to the episodes built today."""
    return json.loads(STORED_FINGERPRINTS.read_text(encoding="utf-8"))


def recorded_on(folder: Path) -> dict[str, Any] | None:
    """A folder's record of the version its transcripts were recorded on, if it keeps one."""
    path = folder / RECORDED_ON.name
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def is_earlier_version(
    difficulty: str, recorded: dict[str, Any] | None, stored: dict[str, dict[str, str]], version: int | None = None
) -> bool:
    """Whether the tier's episodes (at `version`, None: its latest) changed since the transcripts were recorded
    (False when unrecorded)."""
    if recorded is None or difficulty not in recorded["tier_fingerprints"]:
        return False
    return recorded["tier_fingerprints"][difficulty] != tier_fingerprint(stored, difficulty, version)


def regradings(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """A folder's kept regradings: per transcript file, each accepted change of its score (`was`, `score`, `why`),
    oldest first."""
    path = folder / REGRADED
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def regraded_score(path: Path) -> float | None:
    """The newest score a kept regrading gives the transcript at `path`, None when it was never regraded."""
    kept = regradings(path.parent).get(path.name)
    return float(kept[-1]["score"]) if kept else None


def keep_regrading(path: Path, result: Replay, why: str) -> None:
    """Accept a changed score: add the old score, the new one and why to the folder's regraded.json."""
    kept = regradings(path.parent)
    kept.setdefault(path.name, []).append(
        {"was": round(result.expected_score, 6), "score": round(result.replayed_score, 6), "why": why}
    )
    (path.parent / REGRADED).write_text(json.dumps(dict(sorted(kept.items())), indent=1) + "\n", encoding="utf-8")


def transcript_paths(paths: Iterable[Path]) -> list[Path]:
    """The transcripts in `paths`: a file as given, a folder's at any depth (the folder's records are none)."""
    found: list[Path] = []
    for path in paths:
        found += sorted(p for p in path.rglob("*.json") if p.name not in RECORD_FILES) if path.is_dir() else [path]
    return found


def outcome(path: Path, transcript: dict[str, Any], stored: dict[str, dict[str, str]]) -> tuple[str, Replay]:
    """The transcript's replay and its outcome, which its folder's records qualify: the version it was recorded on,
    and the regradings accepted since."""
    result = replay(transcript, regraded_score(path), kept_texts(path.parent, path.name, transcript["difficulty"]))
    earlier = is_earlier_version(transcript["difficulty"], recorded_on(path.parent), stored, played_version(transcript))
    return (EARLIER_VERSION if earlier and result.status != REPRODUCED else result.status), result


def score_text(status: str, result: Replay, regraded: list[dict[str, Any]]) -> str:
    """The scores of one replay as its line shows them: the replayed score beside the recorded one, and for a
    regraded transcript the regradings kept, old to new, with why."""
    text = f"score {result.replayed_score:.6f} (recorded {result.recorded_score:.6f}"
    for change in regraded:
        text += f"; regraded {change['was']:.6f} -> {change['score']:.6f}: {change['why']}"
    if status == SCORE_CHANGED:
        text += f"; expected {result.expected_score:.6f}"
    return text + ")"


def texts_text(result: Replay) -> str:
    """What of the texts matched, as a replay's line shows it: the calls', what was read before them where it was
    kept, and where a lost connection ended the episode."""
    text = f"{result.matched_texts} of {result.calls} calls' texts as recorded"
    if result.matched_texts < result.calls:
        text += f" (call {result.matched_texts + 1}'s differs)"
    if result.changed_before_play:
        text += " (changed before the calls: " + ", ".join(f"the {name}" for name in result.changed_before_play) + ")"
    if result.lost_at is not None:
        text += f", the connection lost at call {result.lost_at} (not replayed from there)"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help=f"transcripts or folders (default {TRANSCRIPTS})")
    parser.add_argument("--exact", action="store_true", help="a reworded text fails too, not only a changed score")
    parser.add_argument(
        "--regrade",
        metavar="WHY",
        help="accept each changed score: keep the old score, the new one "
        f"and WHY in the folder's {REGRADED}, which later replays hold the transcript to",
    )
    args = parser.parse_args(argv)
    failures = FAILURES | {TEXTS_CHANGED} if args.exact else FAILURES
    stored, seen = current_fingerprints(), []
    for path in transcript_paths(args.paths or [TRANSCRIPTS]):
        transcript = load(path)
        status, result = outcome(path, transcript, stored)
        if status == SCORE_CHANGED and args.regrade:
            keep_regrading(path, result, args.regrade)
            result = replace(result, regraded_score=result.replayed_score)
            status = result.status
            print(f"{path.name}: regraded now, kept in {path.parent / REGRADED}")
        seen.append(status)
        print(
            f"{path.name}: {status}: {texts_text(result)}, "
            + score_text(status, result, regradings(path.parent).get(path.name, []))
        )
        if status == EARLIER_VERSION:
            print(f"  {transcript['difficulty']}'s episodes changed since the recording: differences are expected")
        for difference in result.differences if status != EARLIER_VERSION else []:
            print("  " + difference.replace("\n", "\n  "))
    counts = ", ".join(
        f"{seen.count(status)} {status}"
        for status in (REPRODUCED, TEXTS_CHANGED, REGRADED_STATUS, SCORE_CHANGED, EARLIER_VERSION)
        if status in seen
    )
    failed = sum(status in failures for status in seen)
    print(f"{len(seen)} transcript(s): {counts or 'none'}; " + (f"{failed} fail" if failed else "none fails"))
    if SCORE_CHANGED in seen:
        print(
            'A changed score is a grading change: once it is understood, accept it with --regrade "WHY" on those '
            "transcripts, then `uv run python -m lab.calibration.model_results --write` and "
            "`uv run python -m lab.docs_blocks --write`."
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
