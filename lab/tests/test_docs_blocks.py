"""The generated blocks of the docs (lab/docs_blocks.py) show what their sources hold today: the best
shortcut per difficulty and the expert against its targets (the kept calibration results), the train split's
schedule (task_splits), the submission row's fields (its pydantic model)."""

from __future__ import annotations

import copy
import re

import pytest

from lab import docs_blocks
from lab.agents.registry import known_agents
from lab.calibration.calibrate import SHORTCUT_AGENTS
from lab.calibration.model_results import LOST, PLAYED, RERUN
from lab.tests.helpers import ROOT, reset_episode
from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow
from metric_tracker_rl.catalog.task_splits import TRAIN_SCHEDULE, TRAIN_SEED_BASE, TRAIN_TASK_COUNT, get_split


@pytest.mark.parametrize("block", docs_blocks.BLOCKS, ids=lambda block: block.name)
def test_each_block_shows_its_rendering(block: docs_blocks.Block) -> None:
    text = (ROOT / block.doc).read_text(encoding="utf-8")
    shown = docs_blocks.shown(text, block.name)
    assert shown is not None, f"{block.doc} has no {block.name} block"
    assert shown == block.render(), f"{block.doc}: run `uv run python -m lab.docs_blocks --write`"


def test_the_command_finds_no_stale_block() -> None:
    assert docs_blocks.main([]) == 0


def test_a_listed_tier_the_calibration_lacks_names_the_runs_that_add_it() -> None:
    """A tier listed before its sweep is kept fails once, on the blocks that need it, with the runs to make."""
    results = docs_blocks.calibration_results()
    docs_blocks.check_calibrated(results)
    dropped = results["difficulties"][-1]
    lacking = {
        **results,
        "difficulties": results["difficulties"][:-1],
        "agents": {
            name: {group: stats for group, stats in groups.items() if group != dropped}
            for name, groups in results["agents"].items()
        },
    }
    with pytest.raises(docs_blocks.MissingCalibration) as missing:
        docs_blocks.tiers_at_a_glance(lacking)
    message = str(missing.value)
    assert f"listed tier(s) {dropped};" in message and "lab.docs_blocks --write" in message
    runs = [line for line in message.splitlines() if line.startswith("uv run python -m lab.calibration.calibrate")]
    assert len(runs) == 2 and "--untuned" in runs[1]
    for run in runs:
        assert f"--difficulties {dropped} " in run and f"--agents {','.join(results['agents'])} " in run
        assert f"--seeds {results['seeds_per_difficulty']} " in run and "--merge" in run


def test_an_edited_block_is_found_and_rewritten() -> None:
    block = docs_blocks.BLOCKS[0]
    text = (ROOT / block.doc).read_text(encoding="utf-8")
    edited = text.replace(docs_blocks.begin_marker(block.name) + "\n", docs_blocks.begin_marker(block.name) + "\nx")
    assert docs_blocks.shown(edited, block.name) != block.render()
    assert docs_blocks.replaced(edited, block.name, block.render()) == text
    with pytest.raises(ValueError, match="no block 'nowhere'"):
        docs_blocks.replaced(text, "nowhere", "")


def test_the_best_shortcut_follows_the_results() -> None:
    assert set(SHORTCUT_AGENTS) <= set(known_agents())
    results = docs_blocks.calibration_results()
    for difficulty in results["difficulties"]:
        best = max(results["agents"][name][difficulty]["mean"] for name in SHORTCUT_AGENTS)
        row = next(
            line for line in docs_blocks.best_shortcuts(results).splitlines() if line.startswith(f"| {difficulty} |")
        )
        assert row.split(" | ")[2] == f"{best:.3f}", row
    changed = copy.deepcopy(results)
    changed["agents"]["weekday_rule"]["hard"]["mean"] = 0.77
    assert "| hard | `weekday_rule` | 0.770 |" in docs_blocks.best_shortcuts(changed)


def test_the_expert_targets_say_where_they_are_missed() -> None:
    results = docs_blocks.calibration_results()
    text, _, on_untuned = docs_blocks.expert_targets(results).partition("On the seeds that tuned nothing")
    for difficulty in results["untuned"]["difficulties"]:
        stats = results["untuned"]["agents"]["expert"][difficulty]
        assert f"{difficulty} ({stats['mean']:.3f}, {stats['share_ge_0_9']:.3f})" in on_untuned
    for difficulty in results["difficulties"]:
        stats = results["agents"]["expert"][difficulty]
        met = (
            stats["mean"] >= docs_blocks.EXPERT_MEAN_TARGET and stats["share_ge_0_9"] >= docs_blocks.EXPERT_SHARE_TARGET
        )
        figures = f"{difficulty} ({stats['mean']:.3f}, {stats['share_ge_0_9']:.3f})"
        where = text.index(figures)
        assert (where < text.find("not met on") or "not met on" not in text) == met, (difficulty, text)
    changed = copy.deepcopy(results)
    changed["agents"]["expert"]["easy"]["share_ge_0_9"] = 0.5
    changed["agents"]["expert"][results["tasks"][0]]["mean"] = 0.5
    text = docs_blocks.expert_targets(changed)
    assert "not met on easy (1.000, 0.500)" in text and f"does not solve: `{results['tasks'][0]}`" in text


def test_the_exploit_ceilings_name_an_exploit_above_its_own() -> None:
    results = docs_blocks.calibration_results()
    text = docs_blocks.exploit_ceilings(results)
    for name, difficulty, ceiling in docs_blocks.EXPLOIT_CEILINGS:
        assert f"`{name}` at most {ceiling:g} on" in text
        assert (f"`{name}` on {difficulty} (" in text.partition("above it")[2]) == (
            results["agents"][name][difficulty]["mean"] > ceiling
        )
    changed = copy.deepcopy(results)
    changed["untuned"]["agents"]["fixed_rule"]["hard"]["mean"] = 0.65
    assert "on the untuned seeds, above it: `fixed_rule` on hard (0.650)" in docs_blocks.exploit_ceilings(changed)


@pytest.mark.parametrize("tier", docs_blocks.TOP_RUNGS)
def test_the_top_rungs_target_says_where_the_expert_misses_it(tier: str) -> None:
    results = docs_blocks.calibration_results()
    for label, run in (("eval", results), ("untuned", results["untuned"])):
        verdict = "meets" if run["agents"]["expert"][tier]["mean"] >= docs_blocks.DEEP_MEAN_TARGET else "misses"
        assert re.search(rf"{tier} on the {label} seeds [^;]*, which {verdict} it", docs_blocks.deep_target(results))
    changed = copy.deepcopy(results)
    changed["untuned"]["agents"]["expert"][tier]["mean"] = 0.85
    assert f"{tier} on the untuned seeds 0.850 [" in docs_blocks.deep_target(changed)
    assert "which misses it" in docs_blocks.deep_target(changed)


def test_the_untuned_differences_are_the_means_outside_the_untuned_intervals() -> None:
    results = copy.deepcopy(docs_blocks.calibration_results())
    for stats in results["untuned"]["agents"].values():
        for group in stats:
            stats[group]["mean_95"] = [0.0, 1.0]
    assert docs_blocks.untuned_differences(results).endswith("): nowhere.")
    results["untuned"]["agents"]["expert"]["frontier"]["mean_95"] = [0.5, 0.6]
    results["untuned"]["agents"]["expert"]["frontier"]["mean"] = 0.55
    shown = results["agents"]["expert"]["frontier"]["mean"]
    assert docs_blocks.untuned_differences(results).endswith(
        f"): `expert` on frontier ({shown:.3f} against 0.550 [0.500, 0.600])."
    )
    results["agents"]["null"]["easy"]["mean"] = 0.004  # outside [0, 0] but within LISTED_GAP: noise, not listed
    results["untuned"]["agents"]["null"]["easy"]["mean_95"] = [0.0, 0.0]
    assert "`null`" not in docs_blocks.untuned_differences(results)


def test_the_schedule_table_is_the_train_splits() -> None:
    rows = docs_blocks.train_schedule().splitlines()[2:]
    assert len(rows) == len(TRAIN_SCHEDULE)
    split, first = get_split("train"), 0
    for row, block in zip(rows, TRAIN_SCHEDULE, strict=True):
        tasks, seeds, difficulties, _ = (cell.strip() for cell in row.strip("|").split("|"))
        low, high = (int(number.replace(",", "")) for number in re.findall(r"[\d,]+", tasks))
        assert (low, high) == (first, first + block.count - 1)
        assert seeds == f"{TRAIN_SEED_BASE + low:,} to {TRAIN_SEED_BASE + high:,}"
        shown = difficulties.split(", ")
        tasks_shown = [split.task(index) for index in range(low, low + len(shown))]
        assert [f"{task['difficulty']}-v{task['version']}" for task in tasks_shown] == shown
        assert split.task(high)["seed"] == TRAIN_SEED_BASE + high
        first += block.count
    assert first == TRAIN_TASK_COUNT


def test_the_submission_row_table_lists_every_field_in_order() -> None:
    rows = docs_blocks.submission_row_fields().splitlines()[2:]
    assert [row.split(" | ")[0].strip("| `") for row in rows] == list(MetricSubmissionRow.model_fields)
    assert "one of `low`, `medium`, `high`, `critical`" in docs_blocks.submission_row_fields()
    assert all(row.count("|") == 4 for row in rows)  # no value splits a cell


def test_the_window_table_is_each_tiers_window_as_reset_builds_it() -> None:
    from metric_tracker_rl.catalog.published import DIFFICULTIES

    rows = docs_blocks.tier_windows().splitlines()[2:]
    assert [row.split(" | ")[0].strip("| ") for row in rows] == list(DIFFICULTIES)
    for row, difficulty in zip(rows, DIFFICULTIES, strict=True):
        dates = reset_episode(seed=1, difficulty=difficulty).public.dates  # counts or events alike
        first, last = str(min(dates))[:10], str(max(dates))[:10]
        assert row.endswith(f"| {len(set(dates))} ({len(set(dates)) // 7} weeks) | {first} to {last} |"), row


def test_the_tiers_table_follows_the_results_and_marks_old_recordings() -> None:
    results = copy.deepcopy(docs_blocks.calibration_results())
    results["agents"]["expert"]["hard"]["mean"] = 0.5
    results["agents"]["weekday_rule"]["hard"]["mean"] = 0.45
    models = {
        "groups": [
            {
                "difficulty": "deep",
                "settings": {},
                "episodes": 2,
                "mean": 0.9,
                "history": False,
                "recorded_on": "new",
                "replays": {"reproduced": 1, "score reproduced, texts changed": 1},
                "replayed_mean": 0.9,
            },
            {
                "difficulty": "frontier",
                "settings": {},
                "episodes": 3,
                "mean": 0.75,
                "history": False,
                "recorded_on": "new",
                "replays": {"reproduced": 2, "score changed": 1},
                "replayed_mean": 0.8,
            },
            {
                "difficulty": "abyss",
                "settings": {"concurrency": 3},
                "episodes": 1,
                "mean": 0.1,
                "history": False,
                "recorded_on": "new",
                "replays": {"reproduced": 1},
                "replayed_mean": 0.1,
            },
            {
                "difficulty": "deep",
                "settings": {},
                "episodes": 2,
                "mean": 0.5,
                "history": True,
                "recorded_on": "old",
                "replays": {"recorded on an earlier version": 2},
                "replayed_mean": None,
            },
            {
                "difficulty": "hard",
                "settings": {},
                "episodes": 4,
                "mean": 0.6,
                "history": True,
                "recorded_on": "old",
                "replays": {"reproduced": 4},
                "replayed_mean": 0.6,
            },
            {
                "difficulty": "medium",
                "settings": {},
                "episodes": 2,
                "mean": 0.7,
                "history": True,
                "recorded_on": "old",
                "replays": {"recorded on an earlier version": 2},
                "replayed_mean": None,
            },
            {
                "difficulty": "warehouse",
                "settings": {},
                "episodes": 3,
                "mean": 0.7,
                "history": False,
                "recorded_on": "new",
                "replays": {"reproduced": 3},
                "replayed_mean": 0.7,
            },
            {
                "difficulty": "warehouse",
                "settings": {},
                "episodes": 1,
                "mean": 0.8,
                "history": False,
                "recorded_on": "new",
                "replays": {"reproduced": 1},
                "replayed_mean": 0.8,
                "played": RERUN,
            },
            {
                "difficulty": "warehouse",
                "settings": {},
                "episodes": 2,
                "mean": 0.0,
                "history": False,
                "recorded_on": "new",
                "replays": {"reproduced": 2},
                "replayed_mean": 0.0,
                "played": LOST,
            },
            {
                "difficulty": "warehouse",
                "settings": {},
                "episodes": 5,
                "mean": 0.0,
                "history": True,
                "recorded_on": "old",
                "replays": {"reproduced": 5},
                "replayed_mean": 0.0,
                "played": LOST,
            },
        ]
    }
    for group in models["groups"]:
        group.setdefault("played", PLAYED)
    rows = {
        line.split(" | ")[0].strip("| "): line.split(" | ")
        for line in docs_blocks.tiers_at_a_glance(results, models).splitlines()
        if line.startswith("| ")
    }
    assert rows["hard"][1] == "v1"  # the tier's latest version, which every figure of the row is for
    assert rows["hard"][7:9] == ["0.500", "0.450 (`weekday_rule`)"]
    assert rows["deep"][-1] == "0.900 (2 episodes) |"  # the current set's, whose scores replay
    assert rows["frontier"][-1] == "0.800 (3 episodes, graded on this version; 0.750 as recorded) |"  # regraded
    assert rows["medium"][-1] == "– (none yet on v1) |"  # transcripts of episodes that changed since are not shown
    assert rows["abyss"][-1] == "– (none yet on v1) |"  # at the tier's defaults only
    assert rows["hard"][-1] == "0.600 (4 episodes, recorded on `old`) |"  # an earlier set's, named, where it replays
    # the episodes played to the end, then the same set's played again after a loss and its lost ones, never hidden
    assert rows["warehouse"][-1] == "0.700 (3 episodes; 1 played again after a lost connection: 0.800; 2 lost: 0.000) |"
    assert rows["easy"][-1] == "– (none yet on v1) |" and rows["easy"][3] == "none (one funnel)"
    assert rows["medium"][4] == "1–4" and rows["deep"][3].endswith("channel, user_type")
