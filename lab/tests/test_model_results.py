"""The model results: the committed transcripts replay against the seeded environment (every text and the score), a
tier whose episodes changed since the recording is marked as recorded on an earlier version (from its episode
fingerprints) and never dropped, a lost episode is a row of its own, a text read before the calls that changed since
is named with its diff while the recorded score is kept, and the artifact the page's table is rendered from is what
the replays give."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from lab.calibration import model_results, read_before_play, replay
from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.adapters.transcript import SKIPPED_AFTER_GRADING, TaskRun, replay_record
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

RESULTS = model_results.kept_results()
ENTRIES = {entry["file"]: entry for entry in RESULTS["transcripts"]}
REPLAYABLE = sorted(
    (
        entry
        for entry in RESULTS["transcripts"]
        if entry["replay"] != replay.EARLIER_VERSION and entry["played"] != model_results.LOST
    ),
    key=lambda entry: entry["calls"],
)
WAREHOUSE = replay.TRANSCRIPTS / "warehouse"
# The audit's sets, recorded before tiers had versions: history, each beside what its model read before the calls.
AUDIT_SETS = (replay.HISTORY / "32cc005", replay.HISTORY / "fcf684c")
AUDIT = AUDIT_SETS[0]


def test_every_transcript_is_in_the_results_and_every_episode_in_the_table() -> None:
    files = [path.relative_to(replay.TRANSCRIPTS).as_posix() for path in replay.transcript_paths([replay.TRANSCRIPTS])]
    assert len(files) == 15 + 21 + 12 + 10 + 10 and sorted(ENTRIES) == sorted(files)
    assert sum(group["episodes"] for group in RESULTS["groups"]) == len(files)
    assert RESULTS["groups"] == model_results.groups(RESULTS["transcripts"])
    for entry in RESULTS["transcripts"]:
        recorded = replay.load(replay.TRANSCRIPTS / entry["file"])
        assert (entry["score"], entry["calls"], entry["seed"]) == (
            recorded["score"],
            len(recorded["calls"]),
            recorded["seed"],
        )
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
    assert {entry["difficulty"] for entry in current} == {"deep", "abyss", "warehouse"}
    # A tier whose episodes changed since its set was recorded shows no figure: its transcripts no longer replay.
    earlier = {entry["difficulty"] for entry in current if entry["replay"] == replay.EARLIER_VERSION}
    assert all(_model_result(difficulty, RESULTS).startswith("– (none yet on v") for difficulty in earlier)
    current = [entry for entry in current if entry["difficulty"] not in earlier]
    assert current
    for difficulty in {entry["difficulty"] for entry in current}:
        mine = [
            entry for entry in current if entry["difficulty"] == difficulty and entry["played"] == model_results.PLAYED
        ]
        recorded = sum(entry["score"] for entry in mine) / len(mine)
        replayed = sum(entry["replayed_score"] for entry in mine) / len(mine)
        shown = _model_result(difficulty, RESULTS)
        if all(entry["replay"] in (replay.REPRODUCED, replay.TEXTS_CHANGED) for entry in mine):
            assert shown.startswith(f"{recorded:.3f} ({len(mine)} episodes")
        else:
            assert shown.startswith(
                f"{replayed:.3f} ({len(mine)} episodes, graded on this version; {recorded:.3f} as recorded"
            )
        lost = [
            entry for entry in current if entry["difficulty"] == difficulty and entry["played"] == model_results.LOST
        ]
        assert (f"; {len(lost)} lost: 0.000" in shown) == bool(lost)  # a lost episode is never hidden
    stale = copy.deepcopy(RESULTS)
    for group in stale["groups"]:
        group["replays"], group["replayed_mean"] = {replay.EARLIER_VERSION: group["episodes"]}, None
    assert _model_result("abyss", stale) == "– (none yet on v1)"  # a figure that no longer replays is not shown


def test_a_tier_digest_moves_with_its_own_fingerprints_only() -> None:
    stored = replay.current_fingerprints()
    moved = copy.deepcopy(stored)
    label = next(label for label in moved if label.startswith("frontier-v1/"))
    moved[label]["daily"] = "0" * 16
    assert replay.tier_fingerprint(moved, "frontier") != replay.tier_fingerprint(stored, "frontier")
    assert replay.tier_fingerprint(moved, "deep") == replay.tier_fingerprint(stored, "deep")
    recorded = {"tier_fingerprints": {"frontier": replay.tier_fingerprint(stored, "frontier")}}
    assert replay.is_earlier_version("frontier", recorded, moved)
    assert not replay.is_earlier_version("frontier", recorded, stored)
    assert not replay.is_earlier_version("frontier", None, moved)  # a folder that keeps no record replays as is


def test_a_reworded_brief_leaves_the_tiers_episodes_the_same_episodes() -> None:
    """The brief's text is a fingerprint part the replay compares itself (naming what changed): rewording it keeps
    a tier's transcripts replayed, where a change to its data marks them recorded on an earlier version."""
    stored = replay.current_fingerprints()
    reworded = copy.deepcopy(stored)
    for label in reworded:
        if label.startswith("audit-v1/"):
            reworded[label]["task"] = "f" * 16
    assert replay.tier_fingerprint(reworded, "audit") == replay.tier_fingerprint(stored, "audit")
    recorded = {"tier_fingerprints": {"audit": replay.tier_fingerprint(stored, "audit")}}
    assert not replay.is_earlier_version("audit", recorded, reworded)


@pytest.mark.skipif(not REPLAYABLE, reason="every tier changed since the recording")
def test_a_transcript_replays_as_the_results_say() -> None:
    entry = REPLAYABLE[0]
    path = replay.TRANSCRIPTS / entry["file"]
    result = replay.replay(
        replay.load(path), None, read_before_play.kept_texts(path.parent, path.name, entry["difficulty"])
    )
    assert (result.status, result.matched_texts, round(result.replayed_score, 6)) == (
        entry["replay"],
        entry["texts_matched"],
        entry["replayed_score"],
    )


def test_a_reworded_text_with_its_score_reproduced_is_no_failure_but_fails_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a change to a brief's wording leaves: the diff is printed, the run exits 0, and 1 with --exact."""
    entry = REPLAYABLE[0]
    transcript = as_played_today(entry)
    transcript["calls"][0]["text"] += "\na reworded line"
    path = tmp_path / "reworded.json"
    path.write_text(json.dumps(transcript), encoding="utf-8")
    assert replay.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        f"reworded.json: {replay.TEXTS_CHANGED}: 0 of {entry['calls']} calls' texts as recorded (call 1's differs)"
        in out
        and "-a reworded line" in out
    )
    assert f"1 transcript(s): 1 {replay.TEXTS_CHANGED}; none fails" in out
    assert replay.main(["--exact", str(path)]) == 1


def as_played_today(entry: dict) -> dict:
    """A committed transcript with the texts and score this version gives its calls: one that reproduces exactly,
    whatever wording moved since the recording."""
    return played_today(replay.load(replay.TRANSCRIPTS / entry["file"]))[0]


def played_today(transcript: dict) -> tuple[dict, str]:
    """The transcript with the texts and score this version gives its calls, and the brief it starts with."""
    session = EpisodeSession(MetricTrackerRlEnvironment())
    brief = session.reset(  # at the version the replay reads it at (a transcript names one, or played version 1)
        seed=transcript["seed"], difficulty=transcript["difficulty"], **replay.reset_settings(transcript)
    )
    for call in transcript["calls"]:
        call["text"] = session.call(call["tool"], call["arguments"])
    transcript["score"] = session.score
    return transcript, brief.text


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
    assert (
        f"edited.json: {replay.SCORE_CHANGED}: 2 of {entry['calls']} calls' texts as recorded (call 3's differs)" in out
        and "-an edited line" in out
    )


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
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
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
    assert kept == {
        "moved.json": [{"was": round(today - 0.25, 6), "score": round(today, 6), "why": "a test's grading change"}]
    }
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
            moved.append(
                f"{entry['file']}: {fields}; replayed again: {result.matched_texts} texts matched, "
                f"first difference:\n{result.first_difference}"
            )
    raise AssertionError(
        "run `uv run python -m lab.calibration.model_results --write` if the change is meant; "
        + ("\n".join(moved) or "the groups moved")
    )


def test_a_run_recorded_as_a_transcript_replays(tmp_path: Path) -> None:
    """What inference.py --transcripts writes, from a chat whose last turn also held a call after the graded report
    (answered without the environment, so it is not a call to replay)."""
    env = MetricTrackerRlEnvironment()
    run = TaskRun("easy")
    run.reset(env, seed=3, difficulty="easy")
    run.act(env, MetricTrackerRlAction(analysis_method="list_suspicious_dates", analysis_args={"limit": 3}))
    run.act(env, MetricTrackerRlAction(classifications=[]))
    run.messages.append(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "late", "type": "function", "function": {"name": "task_overview", "arguments": "{}"}}
            ],
        }
    )
    run.messages.append(
        {"role": "tool", "tool_call_id": "late", "name": "task_overview", "content": SKIPPED_AFTER_GRADING}
    )
    record = replay_record(run, {"seed": 3, "difficulty": "easy"})
    assert (record["difficulty"], record["seed"], record["settings"]) == ("easy", 3, {})
    assert [call["tool"] for call in record["calls"]] == ["list_suspicious_dates", "submit_report"]
    assert record["calls"][0]["arguments"] == {"limit": 3}
    result = replay.replay(json.loads(json.dumps(record)))
    assert result.status == replay.REPRODUCED and result.matched_texts == 2


# --- lost episodes, and the texts read before the calls -------------------------------------------------------

LOST_FILE = "warehouse-425183-lost.json"  # lost on its second call: one call to replay


def test_a_lost_episode_replays_its_calls_before_the_loss_and_is_a_row_of_its_own() -> None:
    """The call the client answered when its connection died, and every later one, never reached the environment:
    none is sent. The episode scores what it had (0 before a report), and its row stands in the table and the
    README beside the set's, never hidden."""
    transcript = replay.load(WAREHOUSE / LOST_FILE)
    assert transcript["lost"] and replay.lost_at(transcript) == 1
    result = replay.replay(transcript)
    assert (result.calls, result.matched_texts, result.lost_at, result.replayed_score) == (1, 1, 2, 0.0)
    assert result.first_difference is None and result.status == replay.REPRODUCED
    entry = ENTRIES[f"warehouse/{LOST_FILE}"]
    assert entry["played"] == model_results.LOST and entry["score"] == entry["replayed_score"] == 0
    rows = {
        group["played"]: group
        for group in RESULTS["groups"]
        if group["difficulty"] == "warehouse" and not group["history"]
    }
    assert {played: group["episodes"] for played, group in rows.items()} == {
        model_results.PLAYED: 6,
        model_results.RERUN: 2,
        model_results.LOST: 4,
    }
    assert rows[model_results.LOST]["mean"] == 0 and rows[model_results.LOST]["expert_mean"] > 0
    table = model_results.model_results_table(RESULTS)
    assert f"| warehouse | v1 | defaults | {model_results.LOST} | 4 | 0.000 | 0.000 |" in table


def test_a_transcript_marked_lost_must_show_the_loss() -> None:
    transcript = replay.load(WAREHOUSE / LOST_FILE)
    transcript["calls"] = transcript["calls"][:1]
    with pytest.raises(ValueError, match="marked lost"):
        replay.lost_at(transcript)


def test_every_transcript_of_a_folder_that_keeps_what_was_read_has_its_brief_kept() -> None:
    for folder, tier in ((WAREHOUSE, "warehouse"), *((audit, "audit") for audit in AUDIT_SETS)):
        kept = json.loads((folder / read_before_play.RECORD).read_text(encoding="utf-8"))
        files = [path.name for path in replay.transcript_paths([folder])]
        assert files and sorted(kept["briefs"]) == sorted(files)
        assert set(kept["tiers"]) == {tier}
        assert list(kept["tiers"][tier]) == [read_before_play.SYSTEM_PROMPT, read_before_play.TOOL_SCHEMAS]
        assert all(
            entry["changed_before_play"] is not None
            for entry in RESULTS["transcripts"]
            if entry["file"].startswith(f"{folder.name}/") and entry["replay"] != replay.EARLIER_VERSION
        )


def kept_as_today(folder: Path, transcript: dict, brief: str) -> Path:
    """A folder of one transcript whose kept texts before the calls are this version's (`brief` its reset's): one
    that reproduces."""
    path = folder / f"{transcript['difficulty']}-{transcript['seed']}.json"
    path.write_text(json.dumps(transcript), encoding="utf-8")
    difficulty = transcript["difficulty"]
    record = {"tiers": {difficulty: read_before_play.tier_texts(difficulty)}, "briefs": {path.name: brief}}
    (folder / read_before_play.RECORD).write_text(json.dumps(record), encoding="utf-8")
    assert read_before_play.kept_texts(folder, path.name, difficulty) == read_before_play.texts_before_play(
        difficulty, brief
    )
    return path


def edit_kept(folder: Path, difficulty: str, brief_line: str | None = None, tool_text: str | None = None) -> None:
    """Change one line of the kept brief, or one word of the kept tool schemas, as a rewording since would."""
    record = json.loads((folder / read_before_play.RECORD).read_text(encoding="utf-8"))
    if brief_line is not None:
        ((file, brief),) = record["briefs"].items()
        lines = brief.splitlines()
        lines[3] = brief_line
        record["briefs"][file] = "\n".join(lines)
    if tool_text is not None:
        schemas = record["tiers"][difficulty][read_before_play.TOOL_SCHEMAS]
        record["tiers"][difficulty][read_before_play.TOOL_SCHEMAS] = schemas.replace("SELECT", tool_text, 1)
    (folder / read_before_play.RECORD).write_text(json.dumps(record), encoding="utf-8")


def test_a_changed_brief_line_is_named_with_its_diff_and_the_recorded_score_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a rewording of a brief's line leaves on a kept transcript (one warehouse episode, its report only): the
    replay names the text that changed before the calls with its first differing line, keeps the recorded score
    beside the replayed one, and exits 0 (1 with --exact)."""
    path, transcript = reported_alone(tmp_path)
    assert transcript["score"] > 0.5
    edit_kept(tmp_path, "warehouse", brief_line="a line the model read then")
    assert replay.main([str(path)]) == 0
    out = capsys.readouterr().out
    score = f"score {transcript['score']:.6f} (recorded {transcript['score']:.6f})"
    assert (
        f"{path.name}: {replay.TEXTS_CHANGED}: 1 of 1 calls' texts as recorded "
        f"(changed before the calls: the brief), {score}" in out
    )
    assert "before the calls: the brief" in out and "-a line the model read then" in out
    assert replay.main(["--exact", str(path)]) == 1


def reported_alone(folder: Path) -> tuple[Path, dict]:
    """A folder holding the report of warehouse-892735 alone, as this version plays it, with the texts it read
    before that call kept as this version gives them."""
    transcript = replay.load(WAREHOUSE / "warehouse-892735.json")
    transcript["calls"] = transcript["calls"][-1:]  # the graded report: the score stands on it alone
    transcript, brief = played_today(transcript)
    return kept_as_today(folder, transcript, brief), transcript


@pytest.mark.slow  # three replays of a warehouse report (about 1 s each under load)
def test_a_changed_brief_with_a_moved_score_keeps_the_score_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rewording that comes with a grading change: the replay names the brief's change and fails on the score,
    saying both; --regrade keeps the score recorded, the score before and the score since, and later replays name
    the brief's change and pass, the transcript itself untouched."""
    path, transcript = reported_alone(tmp_path)
    today = transcript["score"]
    transcript["score"] = today - 0.25  # as recorded before a grading change worth 0.25
    path.write_text(json.dumps(transcript), encoding="utf-8")
    recorded = path.read_text(encoding="utf-8")
    edit_kept(tmp_path, "warehouse", brief_line="a rule the grader no longer follows")
    assert replay.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert (
        f"{path.name}: {replay.SCORE_CHANGED}: 1 of 1 calls' texts as recorded (changed before the calls: the brief)"
        in out
    )
    assert f"expected {today - 0.25:.6f}" in out and "-a rule the grader no longer follows" in out
    assert replay.main(["--regrade", "the grader follows the reworded rule", str(path)]) == 0
    capsys.readouterr()
    assert replay.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        f"{path.name}: {replay.REGRADED_STATUS}: 1 of 1 calls' texts as recorded (changed before the calls: the brief)"
        in out
    )
    assert (
        f"score {today:.6f} (recorded {today - 0.25:.6f}; regraded {today - 0.25:.6f} -> {today:.6f}: the grader "
        "follows the reworded rule)"
    ) in out
    assert path.read_text(encoding="utf-8") == recorded


@pytest.mark.slow  # replays a whole audit episode (28 calls, about 5 s) and reads what it read before them
def test_a_reworded_tool_and_brief_keep_the_audit_score_and_its_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A whole audit transcript whose kept brief and tool description read differently from today's: the replay
    names both with their diffs (the tool schemas first, as read), matches every call, and the artifact's line keeps
    the score recorded beside the score the replay gives."""
    transcript, brief = played_today(replay.load(AUDIT / "audit-355957.json"))
    path = kept_as_today(tmp_path, transcript, brief)
    edit_kept(tmp_path, "audit", brief_line="a line the model read then", tool_text="One SQLite SELECT")
    assert replay.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        f"{path.name}: {replay.TEXTS_CHANGED}: 28 of 28 calls' texts as recorded "
        "(changed before the calls: the tool schemas, the brief)"
    ) in out
    assert "before the calls: the tool schemas" in out and "One SQLite SELECT" in out
    assert "before the calls: the brief" in out and "-a line the model read then" in out
    entry = model_results.transcript_entry(path, None, replay.current_fingerprints(), replay.replay, lambda *_: 0.5)
    assert (entry["score"], entry["replayed_score"]) == (transcript["score"], round(transcript["score"], 6))
    assert entry["changed_before_play"] == [read_before_play.TOOL_SCHEMAS, read_before_play.BRIEF]
    assert entry["replay"] == replay.TEXTS_CHANGED and entry["texts_matched"] == 28
