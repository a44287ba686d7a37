"""The model results: the committed transcripts replay against the seeded environment (every text and the score), a
tier whose episodes changed since the recording is marked as recorded on an earlier version (from its episode
fingerprints) and never dropped, and the artifact the page's table is rendered from is what the replays give."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from lab.calibration import model_results, replay
from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.adapters.transcript import SKIPPED_AFTER_GRADING, TaskRun, replay_record
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

RESULTS = model_results.kept_results()
ENTRIES = {entry["file"]: entry for entry in RESULTS["transcripts"]}
REPLAYABLE = sorted((entry for entry in RESULTS["transcripts"] if entry["replay"] != replay.EARLIER_VERSION),
                    key=lambda entry: entry["calls"])


def test_every_transcript_is_in_the_results_and_every_episode_in_the_table() -> None:
    files = [path.relative_to(replay.TRANSCRIPTS).as_posix()
             for path in replay.transcript_paths([replay.TRANSCRIPTS])]
    assert len(files) == 15 + 21 and sorted(ENTRIES) == sorted(files)
    assert sum(group["episodes"] for group in RESULTS["groups"]) == len(files)
    assert RESULTS["groups"] == model_results.groups(RESULTS["transcripts"])
    for entry in RESULTS["transcripts"]:
        recorded = replay.load(replay.TRANSCRIPTS / entry["file"])
        assert (entry["score"], entry["calls"], entry["seed"]) == (recorded["score"], len(recorded["calls"]),
                                                                   recorded["seed"])
        assert entry["history"] == entry["file"].startswith("history/")


def test_a_tier_is_marked_as_recorded_earlier_exactly_when_its_fingerprints_moved() -> None:
    stored = replay.current_fingerprints()
    for entry in RESULTS["transcripts"]:
        recorded = replay.recorded_on((replay.TRANSCRIPTS / entry["file"]).parent)
        assert recorded is not None and recorded["commit"] == entry["recorded_on"]
        earlier = replay.is_earlier_version(entry["difficulty"], recorded, stored)
        assert (entry["replay"] == replay.EARLIER_VERSION) == earlier, entry["file"]
        assert (entry["replayed_score"] is None) == earlier


def test_the_current_set_replays_and_is_what_the_readme_shows() -> None:
    """The current set is the one whose tiers have not changed since its recording, and the README's figure for a
    tier is its mean there as this version grades the same calls (beside the recorded mean where a score moved),
    never a figure of transcripts that no longer replay."""
    from lab.docs_blocks import _model_result

    current = [entry for entry in RESULTS["transcripts"] if not entry["history"]]
    assert current and all(entry["replay"] != replay.EARLIER_VERSION for entry in current)
    for difficulty in {entry["difficulty"] for entry in current}:
        mine = [entry for entry in current if entry["difficulty"] == difficulty]
        recorded = sum(entry["score"] for entry in mine) / len(mine)
        replayed = sum(entry["replayed_score"] for entry in mine) / len(mine)
        shown = _model_result(difficulty, RESULTS)
        if all(entry["replay"] in (replay.REPRODUCED, replay.TEXTS_CHANGED) for entry in mine):
            assert shown == f"{recorded:.3f} ({len(mine)} episodes)"
        else:
            assert shown == (f"{replayed:.3f} ({len(mine)} episodes, graded on this version; {recorded:.3f} as "
                             "recorded)")
    stale = copy.deepcopy(RESULTS)
    for group in stale["groups"]:
        group["replays"], group["replayed_mean"] = {replay.EARLIER_VERSION: group["episodes"]}, None
    assert _model_result("abyss", stale) == "–"  # a figure that no longer replays is not shown


def test_a_tier_digest_moves_with_its_own_fingerprints_only() -> None:
    stored = replay.current_fingerprints()
    moved = copy.deepcopy(stored)
    label = next(label for label in moved if label.startswith("frontier/"))
    moved[label]["daily"] = "0" * 16
    assert replay.tier_fingerprint(moved, "frontier") != replay.tier_fingerprint(stored, "frontier")
    assert replay.tier_fingerprint(moved, "deep") == replay.tier_fingerprint(stored, "deep")
    recorded = {"tier_fingerprints": {"frontier": replay.tier_fingerprint(stored, "frontier")}}
    assert replay.is_earlier_version("frontier", recorded, moved)
    assert not replay.is_earlier_version("frontier", recorded, stored)
    assert not replay.is_earlier_version("frontier", None, moved)  # a folder that keeps no record replays as is


@pytest.mark.skipif(not REPLAYABLE, reason="every tier changed since the recording")
def test_a_transcript_replays_as_the_results_say() -> None:
    entry = REPLAYABLE[0]
    result = replay.replay(replay.load(replay.TRANSCRIPTS / entry["file"]))
    assert (result.status, result.matched_texts, round(result.replayed_score, 6)) == (
        entry["replay"], entry["texts_matched"], entry["replayed_score"])


def test_a_reworded_text_with_its_score_reproduced_is_no_failure_but_fails_exact(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What a change to a brief's wording leaves: the diff is printed, the run exits 0, and 1 with --exact."""
    entry = REPLAYABLE[0]
    transcript = as_played_today(entry)
    transcript["calls"][0]["text"] += "\na reworded line"
    path = tmp_path / "reworded.json"
    path.write_text(json.dumps(transcript), encoding="utf-8")
    assert replay.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert f"reworded.json: {replay.TEXTS_CHANGED}: 0/{entry['calls']} texts" in out and "-a reworded line" in out
    assert f"1 transcript(s): 1 {replay.TEXTS_CHANGED}; none fails" in out
    assert replay.main(["--exact", str(path)]) == 1


def as_played_today(entry: dict) -> dict:
    """A committed transcript with the texts and score this version gives its calls: one that reproduces exactly,
    whatever wording moved since the recording."""
    transcript = replay.load(replay.TRANSCRIPTS / entry["file"])
    session = EpisodeSession(MetricTrackerRlEnvironment())
    session.reset(seed=transcript["seed"], difficulty=transcript["difficulty"], **transcript.get("settings", {}))
    for call in transcript["calls"]:
        call["text"] = session.call(call["tool"], call["arguments"])
    transcript["score"] = session.score
    return transcript


def test_a_changed_text_or_score_is_caught_with_a_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry = REPLAYABLE[0]
    transcript = as_played_today(entry)
    today = tmp_path / entry["file"]
    today.write_text(json.dumps(transcript), encoding="utf-8")
    assert replay.main([str(today)]) == 0
    assert f"{entry['file']}: {replay.REPRODUCED}" in capsys.readouterr().out

    changed = copy.deepcopy(transcript)
    call = changed["calls"][2]
    call["text"] = call["text"].replace("\n", "\nan edited line\n", 1)
    changed["score"] = transcript["score"] - 0.5
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(changed), encoding="utf-8")
    result = replay.replay(changed)
    assert result.status == replay.SCORE_CHANGED and result.matched_texts == 2
    assert result.first_difference is not None and "-an edited line" in result.first_difference
    assert result.first_difference.startswith(f"call 3 {call['tool']} ")
    assert replay.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert f"edited.json: {replay.SCORE_CHANGED}: 2/{entry['calls']} texts" in out and "-an edited line" in out


def test_no_kept_transcript_fails_its_replay_and_every_regrading_is_in_the_table() -> None:
    """What is committed replays: a grading change that moved a kept transcript's score was accepted, and the page
    shows each regrading, old to new, with why."""
    from lab.docs_blocks import shown

    assert not [entry["file"] for entry in RESULTS["transcripts"] if entry["replay"] == replay.SCORE_CHANGED]
    regraded = [entry for entry in RESULTS["transcripts"] if entry["regradings"]]
    assert all(entry["replay"] == replay.REGRADED_STATUS for entry in regraded)
    assert all(entry["replayed_score"] == entry["regradings"][-1]["score"] for entry in regraded)
    page = (model_results.ROOT / "lab" / "docs" / "model_results.md").read_text(encoding="utf-8")
    table = shown(page, "model-regradings")
    assert table is not None and table.count("\n") == 1 + sum(len(entry["regradings"]) for entry in regraded)
    for entry in regraded:
        assert f"`{entry['file']}` | {entry['score']:.6f}" in table


def test_a_changed_score_is_accepted_with_a_reason_and_then_replays_as_regraded(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A grading change says what it does to each kept transcript: the replay fails, naming both scores and how to
    accept them; --regrade keeps the old score, the new one and why beside the transcript, which keeps its
    recorded score, and later replays pass while they score what was kept, and fail again when the score moves."""
    entry = REPLAYABLE[0]
    transcript = as_played_today(entry)
    today = transcript["score"]
    transcript["score"] = today - 0.25  # as recorded before a grading change worth 0.25
    path = tmp_path / "moved.json"
    path.write_text(json.dumps(transcript), encoding="utf-8")
    recorded = path.read_text(encoding="utf-8")
    assert replay.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert f"moved.json: {replay.SCORE_CHANGED}: " in out and f"expected {today - 0.25:.6f}" in out
    assert "accept it with --regrade" in out

    assert replay.main(["--regrade", "a test's grading change", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"moved.json: {replay.REGRADED_STATUS}: " in out
    assert f"regraded {today - 0.25:.6f} -> {today:.6f}: a test's grading change" in out
    assert path.read_text(encoding="utf-8") == recorded  # the transcript keeps what was recorded
    kept = json.loads((tmp_path / replay.REGRADED).read_text(encoding="utf-8"))
    assert kept == {"moved.json": [{"was": round(today - 0.25, 6), "score": round(today, 6),
                                    "why": "a test's grading change"}]}
    assert replay.transcript_paths([tmp_path]) == [path]  # the record is no transcript
    assert replay.main([str(path)]) == 0
    assert f"1 transcript(s): 1 {replay.REGRADED_STATUS}; none fails" in capsys.readouterr().out

    kept["moved.json"][-1]["score"] = today - 0.1  # a later grading change, not yet accepted
    (tmp_path / replay.REGRADED).write_text(json.dumps(kept), encoding="utf-8")
    assert replay.main([str(path)]) == 1
    assert f"expected {today - 0.1:.6f}" in capsys.readouterr().out


def test_a_file_that_is_no_transcript_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"seed": 1}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a transcript"):
        replay.load(path)


@pytest.mark.slow  # replays every transcript of a tier that did not change
def test_the_kept_results_are_what_the_replays_give() -> None:
    now = model_results.render_results()
    if now == RESULTS:
        return
    # Say which transcripts moved and how, each with its replay's first changed text as it reads now.
    kept = {entry["file"]: entry for entry in RESULTS["transcripts"]}
    moved = []
    for entry in now["transcripts"]:
        before = kept.get(entry["file"], {})
        fields = {key: (before.get(key), value) for key, value in entry.items() if before.get(key) != value}
        if fields:
            result = replay.replay(replay.load(replay.TRANSCRIPTS / entry["file"]))
            moved.append(f"{entry['file']}: {fields}; replayed again: {result.matched_texts} texts matched, "
                         f"first difference:\n{result.first_difference}")
    raise AssertionError("run `uv run python -m lab.calibration.model_results --write` if the change is meant; "
                         + ("\n".join(moved) or "the groups moved"))


def test_a_run_recorded_as_a_transcript_replays(tmp_path: Path) -> None:
    """What inference.py --transcripts writes, from a chat whose last turn also held a call after the graded report
    (answered without the environment, so it is not a call to replay)."""
    env = MetricTrackerRlEnvironment()
    run = TaskRun("easy")
    run.reset(env, seed=3, difficulty="easy")
    run.act(env, MetricTrackerRlAction(analysis_method="list_suspicious_dates", analysis_args={"limit": 3}))
    run.act(env, MetricTrackerRlAction(classifications=[]))
    run.messages.append({"role": "assistant", "content": "", "tool_calls": [
        {"id": "late", "type": "function", "function": {"name": "task_overview", "arguments": "{}"}}]})
    run.messages.append({"role": "tool", "tool_call_id": "late", "name": "task_overview",
                         "content": SKIPPED_AFTER_GRADING})
    record = replay_record(run, {"seed": 3, "difficulty": "easy"})
    assert (record["difficulty"], record["seed"], record["settings"]) == ("easy", 3, {})
    assert [call["tool"] for call in record["calls"]] == ["list_suspicious_dates", "submit_report"]
    assert record["calls"][0]["arguments"] == {"limit": 3}
    result = replay.replay(json.loads(json.dumps(record)))
    assert result.status == replay.REPRODUCED and result.matched_texts == 2
