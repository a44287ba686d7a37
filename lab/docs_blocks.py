"""The blocks of the docs that are generated, not written: each sits between two marker comments and is rendered
from what it states (the kept calibration results, the train split's schedule, the submission row's model, the
tiers' windows), so it cannot say what the code or the artifact contradicts.

    uv run python -m lab.docs_blocks            # which blocks differ from what they render (exit 1 if any)
    uv run python -m lab.docs_blocks --write    # rewrite every block from its source

lab/tests/test_docs_blocks.py fails while a block differs from its rendering.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lab.calibration.audit_calibration import ARTIFACT as AUDIT_RESULTS
from lab.calibration.audit_calibration import EXPERT as AUDIT_EXPERT
from lab.calibration.audit_calibration import FIRST_VERSION_ARTIFACT as AUDIT_V1_RESULTS
from lab.calibration.audit_calibration import SHORTCUTS as AUDIT_SHORTCUTS
from lab.calibration.audit_calibration import calibration_table as audit_calibration_table
from lab.calibration.audit_calibration import interaction_table as audit_interaction_table
from lab.calibration.audit_calibration import mechanism_table as audit_mechanism_table
from lab.calibration.audit_calibration import versions_table as audit_versions_table
from lab.calibration.audit_findability import ARTIFACT as AUDIT_FINDABILITY
from lab.calibration.audit_findability import table as audit_findability_table
from lab.calibration.audit_mix_shares import ARTIFACT as AUDIT_MIX_SHARES
from lab.calibration.audit_mix_shares import table as audit_mix_shares_table
from lab.calibration.audit_row_quality import quality_table as audit_quality_table
from lab.calibration.calibrate import (
    CALIBRATED_DIFFICULTIES,
    PUBLISHED_RESULTS,
    SHORTCUT_AGENTS,
    UNTUNED,
    difficulty_table,
    markdown_table,
    null_group,
)
from lab.calibration.model_results import (
    PLAYED,
    RERUN,
    kept_results,
    model_regradings_table,
    model_results_table,
    scores_replay,
)
from lab.calibration.rung_failure_modes import render as render_failure_modes
from lab.calibration.separation import table as audit_separation_table
from lab.calibration.warehouse_calibration import ARTIFACT as WAREHOUSE_RESULTS
from lab.calibration.warehouse_calibration import EXPERT as WAREHOUSE_EXPERT
from lab.calibration.warehouse_calibration import SHORTCUTS as WAREHOUSE_SHORTCUTS
from lab.calibration.warehouse_calibration import TUNING_SEEDS as WAREHOUSE_TUNING_SEEDS
from lab.speed.attack_builds_table import table as attack_builds_table
from lab.speed.attack_degraded import table as attack_degraded_table
from lab.speed.attack_held_work_table import table as attack_held_work_table
from lab.speed.attack_queues_table import table as attack_queues_table
from lab.speed.attack_requesters import table as attack_requesters_table
from lab.speed.attack_strangers_table import table as attack_strangers_table
from lab.speed.runaway_stop import table as runaway_stop_table
from lab.speed.warehouse_load import table as warehouse_load_table
from metric_tracker_rl.catalog.dimensions import DIMENSIONS
from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow
from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.catalog.task_splits import (
    EVAL_SEEDS_PER_DIFFICULTY,
    TRAIN_SCHEDULE,
    TRAIN_SEED_BASE,
    UNTUNED_FIRST_OFFSET,
)
from metric_tracker_rl.catalog.tasks import TASKS, resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS, AuditMix
from metric_tracker_rl.catalog.versions import is_published, note_of, versions_of
from metric_tracker_rl.generation.defects import DEFECT_REGISTRY
from metric_tracker_rl.world.funnel import WINDOW_START

ROOT = Path(__file__).resolve().parents[1]
EXPERT = "expert"
# The calibration targets the expert is held to on each difficulty's sweep (lab/docs/calibration.md).
EXPERT_MEAN_TARGET = 0.95
EXPERT_SHARE_TARGET = 0.95
# The target for the expert's mean on deep and the rung above it (lab/docs/calibration.md): lower than the other tiers'.
DEEP_MEAN_TARGET = 0.90
TOP_RUNGS = ("deep", "abyss")
# The ceilings the exploits are held to (agent, difficulty, highest mean), as lab/tests/test_calibration.py asserts
# them.
# The smallest gap between an agent's eval and untuned means that the docs list (smaller ones are the floor agents'
# noise, a few thousandths).
LISTED_GAP = 0.01
EXPLOIT_CEILINGS: tuple[tuple[str, str, float], ...] = (
    ("fixed_rule", "hard", 0.6),
    ("weekday_rule", "hard", 0.6),
    *(
        (name, difficulty, 0.3)
        for name in ("top_k_dates", "top_k_dates_shift_aware", "side_effect_padder", "feedback_decoder")
        for difficulty in ("medium", "hard")
    ),
)


def begin_marker(name: str) -> str:
    return f"<!-- generated by lab/docs_blocks.py ({name}): begin -->"


def end_marker(name: str) -> str:
    return f"<!-- generated ({name}): end -->"


def calibration_results() -> dict[str, Any]:
    return json.loads(PUBLISHED_RESULTS.read_text(encoding="utf-8"))


class MissingCalibration(LookupError):
    """A listed tier the kept calibration results have not swept: its message is the run that adds it."""


def calibration_runs(results: dict[str, Any], difficulties: list[str]) -> str:
    """The commands that sweep `difficulties` on the eval and the untuned seeds and merge them into the kept results
    (the file's own agents, seeds and mode, as --merge requires)."""
    command = (
        f"uv run python -m lab.calibration.calibrate --seeds {results['seeds_per_difficulty']} "
        f"--difficulties {','.join(difficulties)} --no-named-tasks --merge --workers 2 "
        f"--agents {','.join(results['agents'])}{' --held-out' if results.get('held_out') else ''} "
        f"--output {PUBLISHED_RESULTS.relative_to(ROOT)}"
    )
    return f"{command}\n{command.replace(' --no-named-tasks', ' --untuned --no-named-tasks')}"


def check_calibrated(results: dict[str, Any]) -> None:
    """Every listed tier of counts has its sweep in the results, or MissingCalibration says which runs to make (the
    warehouse has a calibration of its own, lab/artifacts/warehouse_calibration.json)."""
    missing = [difficulty for difficulty in CALIBRATED_DIFFICULTIES if difficulty not in results["difficulties"]]
    if missing:
        raise MissingCalibration(
            f"{PUBLISHED_RESULTS.relative_to(ROOT)} has no calibration of the listed tier(s) {', '.join(missing)}; "
            f"add it with\n{calibration_runs(results, missing)}\nthen rewrite the blocks with "
            "`uv run python -m lab.docs_blocks --write`"
        )


def _mean_with_interval(stats: dict[str, Any]) -> str:
    low, high = stats["mean_95"]
    return f"{stats['mean']:.3f} [{low:.3f}, {high:.3f}]"


def _runs(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The results' runs a claim is checked on: the eval seeds, and the untuned seeds where the file has them."""
    return [("the eval seeds", results), *([("the untuned seeds", results[UNTUNED])] if UNTUNED in results else [])]


def train_schedule() -> str:
    """The train split's blocks: task indices, seeds and the difficulties each cycles over, each at its version."""
    rows, first = [], 0
    for block in TRAIN_SCHEDULE:
        last = first + block.count - 1
        rows.append(
            [
                f"{first:,} to {last:,}",
                f"{TRAIN_SEED_BASE + first:,} to {TRAIN_SEED_BASE + last:,}",
                ", ".join(f"{name}-v{block.version}" for name in block.difficulties),
                f"`--episodes N --first-task {first}`",
            ]
        )
        first += block.count
    return markdown_table(["train tasks", "seeds", "difficulties at their version, in turn", "inference.py"], rows)


def calibration_seeds() -> str:
    """Each listed tier's calibration seeds: the eval split's, which tuned the agents, and the untuned ones."""

    def seeds(first: int) -> str:
        return f"{first:,} to {first + EVAL_SEEDS_PER_DIFFICULTY - 1:,}"

    audit_seeds = audit_results()["seeds"]
    notes = {
        "warehouse": "* warehouse: the eval split's sweep, which tuned nothing; the warehouse's expert was tuned "
        f"on seeds {WAREHOUSE_TUNING_SEEDS.start} to {WAREHOUSE_TUNING_SEEDS.stop - 1}, and its own "
        "calibration (lab/calibration/warehouse_calibration.py) plays its untuned seeds.",
        "audit": "* audit: the eval split's sweep; its own calibration (lab/calibration/audit_calibration.py) "
        f"plays eval seeds {audit_seeds['eval'][0]:,} to {audit_seeds['eval'][1]:,} and train seeds "
        f"{audit_seeds['train'][0]:,} to {audit_seeds['train'][1]:,}, which tuned nothing.",
    }
    calibrated_elsewhere = [d for d in DIFFICULTIES if d not in CALIBRATED_DIFFICULTIES]
    rows = [
        [
            difficulty,
            seeds(TIERS[difficulty].calibration_seed_base) + (" *" if difficulty in calibrated_elsewhere else ""),
            seeds(TIERS[difficulty].calibration_seed_base + UNTUNED_FIRST_OFFSET),
        ]
        for difficulty in DIFFICULTIES
    ]
    table = markdown_table(["tier", "eval seeds (tuned the agents and the tier)", "untuned seeds"], rows)
    return "\n\n".join([table, *(notes[difficulty] for difficulty in calibrated_elsewhere)])


def best_shortcuts(results: dict[str, Any] | None = None) -> str:
    """Per difficulty, the shortcut (SHORTCUT_AGENTS) with the highest mean, beside the expert's mean."""
    results = results or calibration_results()
    runs = [run for _, run in _runs(results)]
    rows = []
    for difficulty in results["difficulties"]:
        row = [difficulty]
        for run in runs:
            means = {name: run["agents"][name][difficulty]["mean"] for name in SHORTCUT_AGENTS}
            best = max(SHORTCUT_AGENTS, key=lambda name: means[name])
            row += [f"`{best}`", f"{means[best]:.3f}", f"{run['agents'][EXPERT][difficulty]['mean']:.3f}"]
        rows.append(row)
    header = ["difficulty", "best shortcut", "its mean", "expert mean"]
    if len(runs) > 1:
        header += ["untuned seeds: best shortcut", "its mean", "expert mean"]
    lead = (
        "The best of the shortcuts that skip the investigation ("
        + ", ".join(f"`{name}`" for name in SHORTCUT_AGENTS)
        + ") on each difficulty, on the calibration's eval "
        "seeds" + (" and on seeds that tuned nothing" if len(runs) > 1 else "") + ":"
    )
    return lead + "\n\n" + markdown_table(header, rows)


def _targets_met(run: dict[str, Any]) -> str:
    """Where the expert of one run (eval or untuned seeds) meets its targets and where it does not."""
    stats = run["agents"][EXPERT]
    met, missed = [], []
    for difficulty in run["difficulties"]:
        mean, share = stats[difficulty]["mean"], stats[difficulty]["share_ge_0_9"]
        figures = f"{difficulty} ({mean:.3f}, {share:.3f})"
        (met if mean >= EXPERT_MEAN_TARGET and share >= EXPERT_SHARE_TARGET else missed).append(figures)
    return "met on " + (", ".join(met) or "none") + ("; not met on " + ", ".join(missed) if missed else "")


def expert_targets(results: dict[str, Any] | None = None) -> str:
    """Where the expert meets its targets (a mean of at least EXPERT_MEAN_TARGET and a share of seeds scored at
    least 0.9 of at least EXPERT_SHARE_TARGET) and where it does not, with its figures: on the eval seeds, then on
    the untuned ones."""
    results = results or calibration_results()
    stats = results["agents"][EXPERT]
    named = [task for task in results["tasks"] if stats[task]["mean"] < 1.0]
    text = (
        f"The expert's targets on a difficulty's sweep are a mean of at least {EXPERT_MEAN_TARGET:g} and a score "
        f"of at least 0.9 on at least {EXPERT_SHARE_TARGET:.0%} of seeds (mean, share): on the eval seeds, "
        + _targets_met(results)
        + "."
    )
    if UNTUNED in results:
        text += " On the seeds that tuned nothing, " + _targets_met(results[UNTUNED]) + "."
    text += (
        " Every named task is solved."
        if not named
        else " Named tasks it does not solve: " + ", ".join(f"`{task}`" for task in named) + "."
    )
    return text


def deep_target(results: dict[str, Any] | None = None) -> str:
    """The expert's mean on deep and the rungs above it (with its 95% interval) on each run, against
    DEEP_MEAN_TARGET."""
    results = results or calibration_results()
    tiers = [d for d in TOP_RUNGS if d in results["difficulties"]]
    parts = []
    for tier in tiers:
        for label, run in _runs(results):
            stats = run["agents"][EXPERT][tier]
            verdict = "meets" if stats["mean"] >= DEEP_MEAN_TARGET else "misses"
            parts.append(f"{tier} on {label} {_mean_with_interval(stats)}, which {verdict} it")
    return (
        f"The expert's mean on {' and '.join(tiers)} against their target of {DEEP_MEAN_TARGET:.2f}: "
        + "; ".join(parts)
        + "."
    )


def exploit_ceilings(results: dict[str, Any] | None = None) -> str:
    """Each run's exploits against their ceilings (EXPLOIT_CEILINGS): the ones above, or the closest to its own."""
    results = results or calibration_results()
    where: dict[str, list[str]] = {}
    for name, difficulty, ceiling in EXPLOIT_CEILINGS:
        where.setdefault(f"`{name}` at most {ceiling:g} on", []).append(difficulty)
    ceilings = "; ".join(f"{head} {' and '.join(difficulties)}" for head, difficulties in where.items())
    parts = []
    for label, run in _runs(results):
        means = [
            (name, difficulty, run["agents"][name][difficulty]["mean"], ceiling)
            for name, difficulty, ceiling in EXPLOIT_CEILINGS
        ]
        above = [
            f"`{name}` on {difficulty} ({mean:.3f})" for name, difficulty, mean, ceiling in means if mean > ceiling
        ]
        name, difficulty, mean, ceiling = max(means, key=lambda item: item[2] / item[3])
        closest = f"all under, the closest `{name}` on {difficulty} ({mean:.3f} of {ceiling:g})"
        parts.append(f"on {label}, " + (f"above it: {', '.join(above)}" if above else closest))
    return f"The exploits against their ceilings ({ceilings}): " + "; ".join(parts) + "."


def untuned_differences(results: dict[str, Any] | None = None) -> str:
    """Where an agent's eval-seed mean lies outside the 95% interval of its mean on the untuned seeds, and at least
    LISTED_GAP from that mean."""
    results = results or calibration_results()
    untuned = results[UNTUNED]
    groups = [group for difficulty in untuned["difficulties"] for group in (difficulty, null_group(difficulty))]
    outside = []
    for name, stats in untuned["agents"].items():
        for group in groups:
            tuned, (low, high) = results["agents"][name][group]["mean"], stats[group]["mean_95"]
            if not low <= tuned <= high and abs(tuned - stats[group]["mean"]) >= LISTED_GAP:
                outside.append(f"`{name}` on {group} ({tuned:.3f} against {_mean_with_interval(stats[group])})")
    lead = (
        f"Where an agent's mean on the eval seeds lies outside the 95% interval of its mean on the untuned seeds, "
        f"and {LISTED_GAP:g} or more from it (of {len(untuned['agents']) * len(groups)} comparisons): "
    )
    return lead + ("; ".join(outside) if outside else "nowhere") + "."


def _type_text(annotation: Any) -> str:
    """A field's type as the docs write it: a Literal as its values, an optional one marked so."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        kept = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return " or ".join(_type_text(arg) for arg in kept) + ", optional"
    return getattr(annotation, "__name__", str(annotation))


def submission_row_fields() -> str:
    """MetricSubmissionRow's fields, in order: name, type and description, from the pydantic model."""
    rows = [
        [f"`{name}`", _type_text(field.annotation), field.description or ""]
        for name, field in MetricSubmissionRow.model_fields.items()
    ]
    return markdown_table(["field", "type", "meaning"], rows)


def tier_windows() -> str:
    """Each listed difficulty's window: its days and dates (every window starts on WINDOW_START, a Monday)."""
    rows = []
    for difficulty in DIFFICULTIES:
        days = TIERS[difficulty].window_days
        last = WINDOW_START + dt.timedelta(days=days - 1)
        rows.append([difficulty, f"{days} ({days // 7} weeks)", f"{WINDOW_START.isoformat()} to {last.isoformat()}"])
    return markdown_table(["difficulty", "days", "dates"], rows)


def _group_mean(group: dict[str, Any]) -> str:
    """A group's mean as the README shows it: recorded where every score reproduces, else this version's."""
    if scores_replay(group):
        return f"{group['mean']:.3f}"
    return f"{group['replayed_mean']:.3f}"


def _model_result(difficulty: str, results: dict[str, Any]) -> str:
    """The model's mean over its episodes of a tier at the tier's defaults played to their end, from the current
    set of transcripts, or else an earlier one (named), and only where every one of those episodes replays on this
    version: its recorded mean where every score reproduces, else the mean this version grades its calls with,
    beside the recorded one (lab/docs/model_results.md); then the same set's episodes played again after a lost
    connection and those lost, each with their mean; a dash where none replays on the tier's version."""
    groups = [
        group
        for group in results["groups"]
        if group["difficulty"] == difficulty
        and not group["settings"]
        and group["played"] == PLAYED
        and group.get("replayed_mean") is not None
    ]
    if not groups:
        return f"– (none yet on v{TIERS[difficulty].version})"
    group = groups[0]  # the current set's, when it has one: the artifact lists it first
    earlier = f", recorded on `{group['recorded_on']}`" if group["history"] else ""
    graded = "" if scores_replay(group) else f", graded on this version; {group['mean']:.3f} as recorded"
    others = [
        other
        for other in results["groups"]
        if other["played"] != PLAYED
        and all(other[key] == group[key] for key in ("difficulty", "settings", "history", "recorded_on"))
    ]
    besides = "".join(
        f"; {other['episodes']} played again after a lost connection: {_group_mean(other)}"
        if other["played"] == RERUN
        else f"; {other['episodes']} lost: {_group_mean(other)}"
        for other in others
    )
    return f"{_group_mean(group)} ({group['episodes']} episodes{earlier}{graded}{besides})"


def warehouse_results() -> dict[str, Any]:
    return json.loads(WAREHOUSE_RESULTS.read_text(encoding="utf-8"))


def audit_results() -> dict[str, Any]:
    return json.loads(AUDIT_RESULTS.read_text(encoding="utf-8"))


def own_calibrations(
    warehouse: dict[str, Any], audit: dict[str, Any]
) -> dict[str, tuple[dict[str, Any], str, tuple[str, ...]]]:
    """The raw-event tiers' own calibrations (the count tiers' agents do not play raw events): per tier, its
    agents' figures on seeds that tuned nothing (the audit's eval split, which holds its held-out mechanisms), its
    expert and its shortcuts."""
    return {
        "warehouse": (warehouse["agents"], WAREHOUSE_EXPERT, WAREHOUSE_SHORTCUTS),
        "audit": (audit["splits"]["eval"]["agents"], AUDIT_EXPERT, AUDIT_SHORTCUTS),
    }


def _calibration_means(
    difficulty: str, results: dict[str, Any], own: dict[str, tuple[dict[str, Any], str, tuple[str, ...]]]
) -> list[str]:
    """The expert's mean and the best shortcut's, on a tier of counts from the calibration's eval seeds; on a
    raw-event tier from its own calibration, marked so."""
    if difficulty in results["difficulties"]:
        agents, expert, shortcuts = results["agents"], EXPERT, SHORTCUT_AGENTS
        means = {name: agents[name][difficulty]["mean"] for name in (expert, *shortcuts)}
        mark = ""
    elif difficulty not in own:
        raise MissingCalibration(
            f"the listed tier {difficulty} is neither in {PUBLISHED_RESULTS.relative_to(ROOT)} "
            "nor a tier of raw events with a calibration of its own (own_calibrations)"
        )
    else:
        agents, expert, shortcuts = own[difficulty]
        means = {name: agents[name]["mean"] for name in (expert, *shortcuts)}
        mark = " *"
    best = max(shortcuts, key=lambda name: means[name])
    return [f"{means[expert]:.3f}{mark}", f"{means[best]:.3f} (`{best}`){mark}"]


def tiers_at_a_glance(results: dict[str, Any] | None = None, models: dict[str, Any] | None = None) -> str:
    """Each listed tier in one row: its window, dimensions, incidents an episode, steps and named task (from the
    tier and task configs), the expert's and the best shortcut's calibration means (the kept calibration results;
    a raw-event tier's own) and a capable model's (the replayed transcripts)."""
    results = results or calibration_results()
    models = models or kept_results()
    check_calibrated(results)
    own = own_calibrations(warehouse_results(), audit_results())
    rows = []
    for difficulty in DIFFICULTIES:
        tier, config = TIERS[difficulty], resolve_episode_config(difficulty=difficulty)  # a seeded reset's
        fields = ", ".join(DIMENSIONS[key].field for key in tier.dimensions) or "none (one funnel)"
        counts = config.anomaly_count_range
        incidents = f"{counts[0]}–{counts[1]}" if counts else f"{config.anomaly_count}"
        tasks = ", ".join(f"`{task}`" for task, spec in TASKS.items() if spec.difficulty == difficulty) or "–"
        rows.append(
            [
                difficulty,
                f"v{tier.version}" + ("" if is_published(difficulty, tier.version) else " (draft)"),
                f"{tier.window_days} days",
                fields,
                incidents,
                str(config.max_steps),
                tasks,
                *_calibration_means(difficulty, results, own),
                _model_result(difficulty, models),
            ]
        )
    lead = (
        "Each listed tier (`reset(difficulty=...)`) at its latest version ([versions](docs/versions.md)), every "
        "figure for that version; the expert's and the best shortcut's (of "
        + ", ".join(f"`{name}`" for name in SHORTCUT_AGENTS)
        + ") calibration means, and a capable LLM's mean "
        "over its zero-shot episodes ([model results](lab/docs/model_results.md); every agent's figures are in "
        "[calibration](lab/docs/calibration.md)). * The warehouse's from its own calibration, on seeds that tuned "
        "nothing (`lab/artifacts/warehouse_calibration.json`): its expert, and the best of its shortcuts that "
        "read only the dashboard (" + ", ".join(f"`{name}`" for name in WAREHOUSE_SHORTCUTS) + "); the "
        "audit's from its own, on its eval split's untuned seeds (`lab/artifacts/audit_calibration.json`): its "
        "expert, and the best of the warehouse's shortcuts played there ("
        + ", ".join(f"`{name}`" for name in AUDIT_SHORTCUTS)
        + "):"
    )
    return (
        lead
        + "\n\n"
        + markdown_table(
            [
                "tier",
                "version",
                "window",
                "dimensions",
                "incidents",
                "steps",
                "named task",
                "expert",
                "best shortcut",
                "a capable model",
            ],
            rows,
        )
    )


ARTIFACTS = ROOT / "lab" / "artifacts"
ABYSS = "abyss"


def abyss_calibration() -> str:
    """The abyss sweep on its untuned seeds (lab/artifacts/abyss_calibration.json): every agent's mean with its
    95% interval, p5 / min, the share at 0.9 or more, and the null episodes."""
    results = json.loads((ARTIFACTS / "abyss_calibration.json").read_text(encoding="utf-8"))
    return difficulty_table(results, ABYSS)


def rung_failure_modes() -> str:
    """The share of deep's and abyss's incidents carrying each failure mode (lab/artifacts/rung_failure_modes.json)."""
    kept = json.loads((ARTIFACTS / "rung_failure_modes.json").read_text(encoding="utf-8"))
    return render_failure_modes(kept["tiers"]).rstrip("\n")


def audit_calibration() -> str:
    """The audit's agents on both splits' untuned seeds (lab/artifacts/audit_calibration.json)."""
    return audit_calibration_table(json.loads(AUDIT_RESULTS.read_text(encoding="utf-8")))


def audit_versions() -> str:
    """The audit's agents at each version, side by side (lab/artifacts/audit_calibration_v1.json and the kept run)."""
    reports = [json.loads(path.read_text(encoding="utf-8")) for path in (AUDIT_V1_RESULTS, AUDIT_RESULTS)]
    return audit_versions_table({report["tiers"]["audit"]["version"]: report for report in reports})


def audit_mechanisms() -> str:
    """Per mechanism of the audit: its area, whether the train split holds it, its share of episodes, its rows and
    the recall of the expert, the generic auditor and the warehouse's expert (lab/artifacts/audit_calibration.json)."""
    mix = TIERS["audit"].segmented
    assert isinstance(mix, AuditMix)
    areas = {name: mechanism.area for name, mechanism in DEFECT_REGISTRY.items()}
    return audit_mechanism_table(
        json.loads(AUDIT_RESULTS.read_text(encoding="utf-8")), areas, {*mix.held_out_defects, *mix.held_out_kinds}
    )


def audit_interactions() -> str:
    """Per interaction of the audit and split: its share of episodes, its rows and the recall of the expert, the
    generic auditor and the warehouse's expert (lab/artifacts/audit_calibration.json)."""
    return audit_interaction_table(json.loads(AUDIT_RESULTS.read_text(encoding="utf-8")))


def audit_separation() -> str:
    """Per mechanism and interaction of the audit: a capable model's rows held beside the expert's and the generic
    auditor's, the gap and the proposed share of rows (lab/artifacts/audit_separation.json)."""
    return audit_separation_table()


def audit_mix_shares() -> str:
    """Per mechanism of the audit: its aimed share of the rows beside its share at each version and split
    (lab/artifacts/audit_mix_shares.json)."""
    return audit_mix_shares_table(json.loads(AUDIT_MIX_SHARES.read_text(encoding="utf-8")))


def versions_table() -> str:
    """Every playable version of every tier (catalog/versions.py): the commit it was published at, what it changed,
    and the corrections of its texts since."""
    rows = []
    for name in DIFFICULTIES:
        for number, tier in versions_of(name).items():
            note = note_of(name, number)
            latest = " (latest)" if tier is TIERS[name] else ""
            corrections = "<br>".join(note.text_corrections) or "none"
            published = f"`{note.published_at}`" if note.published_at is not None else "not yet published (a draft)"
            rows.append([f"`{note.name}`{latest}", published, note.changes, corrections])
    return markdown_table(["version", "published at", "what it is, or changed", "texts corrected since"], rows)


def audit_findability() -> str:
    """Whether every expected row of the audit's eval tasks is findable (lab/artifacts/audit_findability.json)."""
    return audit_findability_table(json.loads(AUDIT_FINDABILITY.read_text(encoding="utf-8")))


def audit_row_quality() -> str:
    """Per mechanism, the credits of the expert's rows on expected keys (lab/artifacts/audit_calibration.json)."""
    return audit_quality_table(json.loads(AUDIT_RESULTS.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Block:
    name: str
    doc: str  # relative to the repository root
    render: Callable[[], str]


BLOCKS: tuple[Block, ...] = (
    Block("tiers-at-a-glance", "README.md", tiers_at_a_glance),
    Block("best-shortcuts", "README.md", best_shortcuts),
    Block("expert-targets", "lab/docs/calibration.md", expert_targets),
    Block("exploit-ceilings", "lab/docs/calibration.md", exploit_ceilings),
    Block("untuned-differences", "lab/docs/calibration.md", untuned_differences),
    Block("deep-target", "lab/docs/calibration.md", deep_target),
    Block("calibration-seeds", "lab/docs/calibration.md", calibration_seeds),
    Block("abyss-calibration", "lab/docs/calibration.md", abyss_calibration),
    Block("rung-failure-modes", "lab/docs/calibration.md", rung_failure_modes),
    Block("train-schedule", "docs/training.md", train_schedule),
    Block("submission-row-fields", "docs/spaces.md", submission_row_fields),
    Block("tier-windows", "docs/data.md", tier_windows),
    Block("model-results", "lab/docs/model_results.md", model_results_table),
    Block("model-regradings", "lab/docs/model_results.md", model_regradings_table),
    Block("warehouse-load", "lab/docs/performance.md", warehouse_load_table),
    Block("attack-held-work", "lab/docs/attacks.md", attack_held_work_table),
    Block("attack-requesters", "lab/docs/attacks.md", attack_requesters_table),
    Block("attack-strangers", "lab/docs/attacks.md", attack_strangers_table),
    Block("attack-builds", "lab/docs/attacks.md", attack_builds_table),
    Block("attack-queues", "lab/docs/attacks.md", attack_queues_table),
    Block("attack-degraded", "lab/docs/attacks.md", attack_degraded_table),
    Block("runaway-stop", "lab/docs/attacks.md", runaway_stop_table),
    Block("audit-calibration", "lab/docs/audit.md", audit_calibration),
    Block("audit-versions", "lab/docs/audit.md", audit_versions),
    Block("audit-mechanisms", "lab/docs/audit.md", audit_mechanisms),
    Block("audit-interactions", "lab/docs/audit.md", audit_interactions),
    Block("audit-separation", "lab/docs/audit.md", audit_separation),
    Block("audit-mix-shares", "lab/docs/audit.md", audit_mix_shares),
    Block("tier-versions", "docs/versions.md", versions_table),
    Block("audit-row-quality", "lab/docs/audit.md", audit_row_quality),
    Block("audit-findability", "lab/docs/audit.md", audit_findability),
)


def shown(text: str, name: str) -> str | None:
    """The text between a block's markers in a doc, or None if the doc has no such block."""
    _, begin, rest = text.partition(begin_marker(name) + "\n")
    body, end, _ = rest.partition(end_marker(name))
    return body.rstrip("\n") if begin and end else None


def replaced(text: str, name: str, body: str) -> str:
    head, begin, rest = text.partition(begin_marker(name) + "\n")
    _, end, tail = rest.partition(end_marker(name))
    if not begin or not end:
        raise ValueError(f"no block {name!r}: add its two marker lines where it belongs")
    return f"{head}{begin}{body}\n{end}{tail}"


def stale_blocks() -> list[str]:
    """The blocks whose doc shows something other than their rendering (or lacks them), by name."""
    return [
        block.name
        for block in BLOCKS
        if shown((ROOT / block.doc).read_text(encoding="utf-8"), block.name) != block.render()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite every block from its source")
    args = parser.parse_args(argv)
    if args.write:
        for block in BLOCKS:
            path = ROOT / block.doc
            path.write_text(replaced(path.read_text(encoding="utf-8"), block.name, block.render()), encoding="utf-8")
        return 0
    stale = stale_blocks()
    for name in stale:
        print(f"stale: {name} ({next(b.doc for b in BLOCKS if b.name == name)})", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
