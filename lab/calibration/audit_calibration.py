"""The audit's calibration: each agent's score on seeds that tuned nothing, per split (mean, p5 and the 95%
bootstrap interval of the mean), and per mechanism the share of episodes that hold it and the share of its
expected rows each agent's report held (recall by key), written to lab/runs/audit_calibration.json (untracked), or
with `--keep` to the kept lab/artifacts/audit_calibration.json that the pages render.

    nice -n 10 uv run python -m lab.calibration.audit_calibration --seeds 40 --workers 2 --keep
    uv run python -m lab.calibration.audit_calibration --agents audit_expert   # one agent again, the rest kept

A run of some agents plays the seeds of the results it merges into (the output's, else the kept file's) unless
told others; told others with a fresh `--out`, it writes them alone there, and it refuses to mix seeds into a file
before it plays.

The agents: the audit expert (it knows every mechanism the generator has), the generic auditor (written from the
published text alone: the witness that the text suffices), the warehouse's expert played here (the warehouse's
catalogue of mechanisms, one targeted query per entry), the warehouse's shortcuts (the dashboard alone, every dip,
everything a defect) and the empty report. The eval split's untuned seeds start at the tier's calibration base plus
UNTUNED_FIRST_OFFSET (below the train split's first seed); the train split's at TRAIN_UNTUNED_FIRST, past every
listed train task.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from lab.calibration.audit_row_quality import judged_rows, quality_by_mechanism
from lab.calibration.calibrate import summarise
from lab.calibration.interface import message_texts, record_episode
from lab.calibration.outputs import KEPT, add_output_flags, output_path
from lab.calibration.tier_record import tier_record
from lab.calibration.warehouse_calibration import SHORTCUTS as WAREHOUSE_SHORTCUTS
from metric_tracker_rl.catalog.published import row_key
from metric_tracker_rl.catalog.task_splits import TRAIN_SEED_BASE, UNTUNED_FIRST_OFFSET, mechanism_split
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT
from metric_tracker_rl.catalog.versions import tier_at, versions_of
from metric_tracker_rl.generation.audit.truth import audit_rows
from metric_tracker_rl.generation.audit.world import audit_mix, build_audit_world
from metric_tracker_rl.generation.warehouse.truth import DATA_QUALITY, ExpectedRow
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.segments import segments_meet

ARTIFACT = KEPT / "audit_calibration.json"
FIRST_VERSION_ARTIFACT = KEPT / "audit_calibration_v1.json"  # the same seeds played at version 1
EVAL_UNTUNED_FIRST = AUDIT.calibration_seed_base + UNTUNED_FIRST_OFFSET
TRAIN_UNTUNED_FIRST = TRAIN_SEED_BASE + 25_000  # past the listed train tasks: further train episodes
AGENTS = (
    "audit_expert",
    "generic_auditor",
    "warehouse_expert",
    "warehouse_dashboard_analyst",
    "warehouse_every_dip",
    "warehouse_all_data_quality",
    "null",
)
# The agents that play the audit only (a default run of lab/calibration/calibrate.py, over the listed tiers, leaves
# them out).
AUDIT_AGENTS = ("audit_expert", "generic_auditor")
EXPERT = "audit_expert"
SHORTCUTS = WAREHOUSE_SHORTCUTS  # the warehouse's, played here
DEFAULT_SEEDS = 40  # untuned seeds per split a run plays unless told
RECALL_AGENTS = ("audit_expert", "generic_auditor", "warehouse_expert")  # whose recall by mechanism is shown


def play_one(job: tuple[str, int, int | None]) -> dict[str, Any]:
    """One audit episode of `agent` (at `version`; None: the latest), recorded as inference.py records it: its
    score, calls, characters and the keys of the rows it submitted."""
    agent_name, seed, version = job
    env = MetricTrackerRlEnvironment()
    reset = {"difficulty": "audit", "seed": seed, **({} if version is None else {"version": version})}
    try:
        run = record_episode(agent_name, reset, env)
    except RuntimeError as failed:  # a reset the environment refused: left out of every figure, and listed
        return {"agent": agent_name, "seed": seed, "failed": str(failed)[:200]}
    finally:
        env.close()
    rows = run.graded.submitted_rows if run.graded is not None else []
    judged = {"judged": judged_rows(seed, list(rows), version)} if agent_name == EXPERT else {}
    return {
        **judged,
        "agent": agent_name,
        "seed": seed,
        "split": mechanism_split(seed),
        "score": run.score,
        "calls": run.steps,
        "chars": sum(map(len, message_texts(run.messages))),
        "keys": [row_key(r.date, r.entity_type, r.entity_name) for r in rows],
    }


INTERACTIONS = {
    "defect_on_incident": "a data defect on an incident's date, in a segment sharing its traffic",
    "one_segment_two_incidents": "two incidents in one segment on one date",
}


def expected_keys(seed: int, version: int | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Each expected row of an audit episode (at `version`; None: the latest) as its key and the mechanism that made
    it; and those rows that are part of an interaction, as their key and the interaction (one row may be part of
    both: listed under each). Read from what was injected, never shown to an agent; the world is built once for
    both."""
    config = resolve_episode_config(seed=seed, difficulty="audit", version=version)
    world = build_audit_world(config.tier, config)
    dates = window_calendar(world.log.num_days).iso_dates
    by_mechanism, by_interaction = [], []
    for row in audit_rows(world, audit_mix(config.tier)):
        report = row.report_row(dates)
        key = row_key(report.date, report.entity_type, report.entity_name)
        by_mechanism.append((key, row.kind))
        by_interaction += [(key, interaction) for interaction in interactions_of(world, row)]
    return by_mechanism, by_interaction


def interactions_of(world: WarehouseWorld, row: ExpectedRow) -> list[str]:
    """The interactions (INTERACTIONS) an expected row is part of: a defect's row on a date an incident holds in a
    segment meeting the defect's, or such an incident's row; an incident's row whose date and segment another
    incident holds too."""
    incidents = world.incidents
    if row.family == DATA_QUALITY:
        defect = next(d for d in world.defects if d.kind == row.kind and row.day in d.days)
        on_incident = any(i.record.day == row.day and segments_meet(i.segment, defect.segment) for i in incidents)
        return ["defect_on_incident"] if on_incident else []
    mine = [i for i in incidents if i.kind == row.kind and i.record.day == row.day]
    met = any(row.day in d.days and segments_meet(i.segment, d.segment) for d in world.defects for i in mine)
    shared = sum(i.record.day == row.day and i.segment.normalised() == row.segment for i in incidents) >= 2
    return [name for name, holds in (("defect_on_incident", met), ("one_segment_two_incidents", shared)) if holds]


def mechanism_recall(
    results: list[dict[str, Any]], truths: dict[int, list[tuple[str, str]]]
) -> dict[str, dict[str, Any]]:
    """Per mechanism: the share of episodes that hold it, its expected rows, and each recall agent's share of
    those rows its report held."""
    hits: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    holding: dict[str, set[int]] = defaultdict(set)
    for result in results:
        if result["agent"] not in RECALL_AGENTS:
            continue
        submitted = set(result["keys"])
        for key, mechanism in truths[result["seed"]]:
            hits[mechanism][result["agent"]].append(key in submitted)
            holding[mechanism].add(result["seed"])
    episodes = len(truths)
    return {
        mechanism: {
            "episode_share": round(len(holding[mechanism]) / episodes, 3),
            "rows": len(next(iter(by_agent.values()))),
            **{agent: round(float(np.mean(found)), 3) for agent, found in by_agent.items()},
        }
        for mechanism, by_agent in sorted(hits.items())
    }


def rounded(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        k: ([round(x, 3) for x in v] if isinstance(v, list) else round(v, 3) if isinstance(v, float) else v)
        for k, v in summary.items()
    }


def figures(scores: list[float]) -> dict[str, Any]:
    """An agent's scores summarised (mean, p5, the mean's 95% interval) with their 10th percentile and median (a
    typical episode's score)."""
    return {
        **rounded(summarise(scores)),
        "p10": round(float(np.percentile(scores, 10)), 3) if scores else 0.0,
        "median": round(float(np.median(scores)), 3) if scores else 0.0,
    }


def calibrate(
    seeds: dict[str, list[int]], agents: tuple[str, ...], workers: int, version: int | None = None
) -> dict[str, Any]:
    jobs = [(agent, seed, version) for split_seeds in seeds.values() for seed in split_seeds for agent in agents]
    with multiprocessing.Pool(workers) as pool:
        played = []
        for n, result in enumerate(pool.imap_unordered(play_one, jobs), 1):
            played.append(result)
            if n % 20 == 0 or n == len(jobs):
                print(f"{n}/{len(jobs)} episodes played", flush=True)
        every = [s for split in seeds.values() for s in split]
        keys = dict(zip(every, pool.map(partial(expected_keys, version=version), every), strict=True))
    truths = {seed: by_mechanism for seed, (by_mechanism, _) in keys.items()}
    together = {seed: by_interaction for seed, (_, by_interaction) in keys.items()}
    results = [r for r in played if "failed" not in r]
    report: dict[str, Any] = {"seeds": {split: [s[0], s[-1]] for split, s in seeds.items()}, "splits": {}}
    for split, split_seeds in seeds.items():
        rows = [r for r in results if r["split"] == split]
        by_agent = {
            agent: sorted((r for r in rows if r["agent"] == agent), key=lambda r: r["seed"]) for agent in agents
        }
        report["splits"][split] = {
            "agents": {agent: figures([r["score"] for r in plays]) for agent, plays in by_agent.items()},
            "calls_and_chars_p50": {
                agent: [float(np.median([r[k] for r in plays])) for k in ("calls", "chars")]
                for agent, plays in by_agent.items()
            },
            "mechanisms": mechanism_recall(rows, {s: truths[s] for s in split_seeds}),
            "interactions": mechanism_recall(rows, {s: together[s] for s in split_seeds}),
            **({"row_quality": quality_by_mechanism(rows, truths, EXPERT)} if EXPERT in agents else {}),
            "calls_max": {agent: max((r["calls"] for r in plays), default=0) for agent, plays in by_agent.items()},
            "chars_p95": {
                agent: float(np.percentile([r["chars"] for r in plays], 95)) if plays else 0.0
                for agent, plays in by_agent.items()
            },
        }
    report["failed_resets"] = sorted({(r["seed"], r["failed"]) for r in played if "failed" in r})
    return report


AGENT_TEXT = {
    "audit_expert": "the audit's expert (knows every mechanism)",
    "generic_auditor": "the generic auditor (the published text only)",
    "warehouse_expert": "the warehouse's expert (its catalogue) played here",
    "warehouse_dashboard_analyst": "shortcut: the dashboard only",
    "warehouse_every_dip": "shortcut: every dip",
    "warehouse_all_data_quality": "shortcut: everything a defect",
    "null": "the empty report",
}


def calibration_table(report: dict[str, Any]) -> str:
    """Per agent, per split: mean, p5 and the 95% interval of the mean, and its calls and characters (p50)."""
    lines = [
        "| agent | eval: mean (95% interval), p5, p10 | train: mean (95% interval), p5, p10 "
        "| calls, characters (p50) |",
        "| --- | --- | --- | --- |",
    ]
    splits = report["splits"]
    for agent in splits["eval"]["agents"]:
        cells = []
        for split in ("eval", "train"):
            stats = splits[split]["agents"][agent]
            low, high = stats["mean_95"]
            p10 = f", {stats['p10']:.3f}" if "p10" in stats else ", -"
            cells.append(f"{stats['mean']:.3f} ({low:.3f}-{high:.3f}), {stats['p5']:.3f}{p10}")
        calls, chars = splits["eval"]["calls_and_chars_p50"][agent]
        lines.append(f"| {AGENT_TEXT.get(agent, agent)} | {' | '.join(cells)} | {calls:.0f}, {chars:,.0f} |")
    seeds = report["seeds"]
    skip = seeds["eval"][0] - EVAL_UNTUNED_FIRST
    count = seeds["eval"][1] - seeds["eval"][0] + 1
    command = (
        "uv run python -m lab.calibration.audit_calibration"
        + (f" --seeds {count}" if count != DEFAULT_SEEDS else "")
        + (f" --skip {skip}" if skip else "")
    )
    lines.append(
        f"\nSeeds: eval {seeds['eval'][0]}-{seeds['eval'][1]}, train {seeds['train'][0]}-{seeds['train'][1]} "
        f"(untuned); `{command}`."
    )
    return "\n".join(lines)


def versions_table(reports: dict[int, dict[str, Any]]) -> str:
    """Per agent, each version's mean (and 10th percentile) per split, side by side: the same untuned seeds played at
    each version."""
    versions = sorted(reports)
    head = [f"v{v} {split}" for v in versions for split in ("eval", "train")]
    lines = ["| agent | " + " | ".join(head) + " |", "| --- |" + " --- |" * len(head)]
    for agent in reports[versions[-1]]["splits"]["eval"]["agents"]:
        cells = []
        for v in versions:
            for split in ("eval", "train"):
                stats = reports[v]["splits"][split]["agents"].get(agent)
                cells.append("-" if stats is None else f"{stats['mean']:.3f} (p10 {stats.get('p10', 0.0):.3f})")
        lines.append(f"| {AGENT_TEXT.get(agent, agent)} | {' | '.join(cells)} |")
    seeds = {f"v{v}": reports[v]["seeds"] for v in versions}
    lines.append(
        "\nSeeds: "
        + "; ".join(
            f"{v} eval {s['eval'][0]}-{s['eval'][1]}, train {s['train'][0]}-{s['train'][1]}" for v, s in seeds.items()
        )
        + "."
    )
    return "\n".join(lines)


def mechanism_table(report: dict[str, Any], areas: dict[str, str], held_out: set[str]) -> str:
    """Per mechanism (both splits' episodes together): its area, whether the train split holds it, the share of
    episodes holding it, its rows, and the recall of the expert, the generic auditor and the warehouse's expert."""
    merged: dict[str, dict[str, Any]] = {}
    episodes = {split: len(range(s[0], s[1] + 1)) for split, s in report["seeds"].items()}
    for split, data in report["splits"].items():
        for mechanism, stats in data["mechanisms"].items():
            entry = merged.setdefault(mechanism, {"held": 0.0, "rows": 0, **{a: [] for a in RECALL_AGENTS}})
            entry["held"] += stats["episode_share"] * episodes[split]
            entry["rows"] += stats["rows"]
            for agent in RECALL_AGENTS:
                if agent in stats:
                    entry[agent].append((stats[agent], stats["rows"]))
    total = sum(episodes.values())
    lines = [
        "| mechanism | area | in train | episodes | rows | expert | generic auditor | warehouse expert |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mechanism, entry in sorted(merged.items(), key=lambda item: (areas.get(item[0], "incident"), item[0])):
        recalls = []
        for agent in RECALL_AGENTS:
            pairs = entry[agent]
            rows = sum(n for _, n in pairs)
            recalls.append(f"{sum(r * n for r, n in pairs) / rows:.2f}" if rows else "-")
        lines.append(
            f"| {mechanism} | {areas.get(mechanism, 'incident')} | "
            f"{'no' if mechanism in held_out else 'yes'} | {entry['held'] / total:.0%} | {entry['rows']} | "
            f"{' | '.join(recalls)} |"
        )
    return "\n".join(lines)


def interaction_table(report: dict[str, Any]) -> str:
    """Per interaction and split: the share of episodes holding it, its expected rows (those of both findings) and
    the recall of the expert, the generic auditor and the warehouse's expert on them."""
    lines = [
        "| interaction | split | episodes | rows | expert | generic auditor | warehouse expert |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, text in INTERACTIONS.items():
        for split in ("eval", "train"):
            stats = report["splits"][split].get("interactions", {}).get(name)
            if stats is None:
                lines.append(f"| {text} | {split} | 0% | 0 | - | - | - |")
                continue
            recalls = " | ".join(f"{stats[a]:.2f}" if a in stats else "-" for a in RECALL_AGENTS)
            lines.append(f"| {text} | {split} | {stats['episode_share']:.0%} | {stats['rows']} | {recalls} |")
    return "\n".join(lines)


def merged(kept: dict[str, Any], played: dict[str, Any], agents: tuple[str, ...]) -> dict[str, Any]:
    """The kept artifact with the figures of `agents` replaced by a new run's: a run of some agents (after a
    change to them alone) keeps the others' figures. The seeds must be the kept run's."""
    if kept["seeds"] != played["seeds"]:
        raise SystemExit(
            f"the kept artifact's seeds {kept['seeds']} are not this run's {played['seeds']}: play every agent"
        )
    for split, data in played["splits"].items():
        into = kept["splits"][split]
        for table in ("agents", "calls_and_chars_p50", "calls_max", "chars_p95"):
            into[table].update(data[table])
        if EXPERT in agents and "row_quality" in data:
            into["row_quality"] = data["row_quality"]
        for table in ("mechanisms", "interactions"):
            into.setdefault(table, {})
            for name, stats in data.get(table, {}).items():
                into[table].setdefault(name, {}).update(
                    {k: v for k, v in stats.items() if k in agents or k not in into[table].get(name, {})}
                )
    kept["failed_resets"] = sorted({*map(tuple, kept["failed_resets"]), *map(tuple, played["failed_resets"])})
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=None, help=f"untuned seeds per split (default {DEFAULT_SEEDS})")
    parser.add_argument("--skip", type=int, default=None, help="start this many seeds into each split's untuned seeds")
    parser.add_argument("--agents", default=",".join(AGENTS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--version", type=int, default=None, help="the audit's version to play (default: its latest)")
    add_output_flags(parser, ARTIFACT.name)
    args = parser.parse_args()
    agents = tuple(args.agents.split(","))
    unknown = sorted(set(agents) - set(AGENTS))
    if unknown:
        parser.error(f"unknown agents {unknown}; the calibration plays {', '.join(AGENTS)}")
    out = output_path(args, ARTIFACT.name)
    base = merge_base(out) if set(agents) < set(AGENTS) else None
    count, skip = run_seeds(args.seeds, args.skip, base)
    seeds = {
        split: list(range(first + skip, first + skip + count))
        for split, first in (("eval", EVAL_UNTUNED_FIRST), ("train", TRAIN_UNTUNED_FIRST))
    }
    try:
        base = base_for_seeds(base, out, args.out is not None, seeds)
    except ValueError as refused:
        parser.error(str(refused))
    if args.version is not None and args.version not in versions_of("audit"):
        parser.error(f"the audit has no version {args.version}; it has {sorted(versions_of('audit'))}")
    played = tier_at("audit", args.version).version
    if base is not None and base.get("tiers", {}).get("audit", {}).get("version") != played:
        parser.error(f"{merge_base_path(out)} holds another version's results: play version {played} to a new --out")
    report = calibrate(seeds, agents, args.workers, args.version)
    if base is not None:
        report = merged(base, report, agents)
    out.parent.mkdir(parents=True, exist_ok=True)
    report["tiers"] = {"audit": tier_record("audit", tier_at("audit", played))}
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({split: data["agents"] for split, data in report["splits"].items()}, indent=1))
    print(f"wrote {out}")


def base_for_seeds(
    base: dict[str, Any] | None, out: Path, named: bool, seeds: dict[str, list[int]]
) -> dict[str, Any] | None:
    """What a run of some agents over `seeds` merges into: its merge base where it holds those seeds; nothing where
    the run names (`named`, by --out) a fresh output of other seeds: a run on untouched seeds, alone. Raises
    ValueError where the run would mix seeds in one file (the kept one, the default output or an existing one)."""
    if base is None or base["seeds"] == {split: [s[0], s[-1]] for split, s in seeds.items()}:
        return base
    if named and not out.exists() and out.resolve() != ARTIFACT.resolve():
        return None
    raise ValueError(f"{merge_base_path(out)} holds seeds {base['seeds']}, not this run's: {seed_flags(base)}")


def merge_base_path(out: Path) -> Path:
    """What a run of some agents merges into: its output when that exists, else the kept results."""
    return out if out.exists() else ARTIFACT


def merge_base(out: Path) -> dict[str, Any] | None:
    path = merge_base_path(out)
    return json.loads(path.read_text()) if path.exists() else None


def run_seeds(count: int | None, skip: int | None, base: dict[str, Any] | None) -> tuple[int, int]:
    """(seeds per split, seeds skipped): as asked, else the merge base's, else DEFAULT_SEEDS from the first."""
    kept_count, kept_skip = base_seeds(base) if base is not None else (DEFAULT_SEEDS, 0)
    return (kept_count if count is None else count), (kept_skip if skip is None else skip)


def base_seeds(report: dict[str, Any]) -> tuple[int, int]:
    first, last = report["seeds"]["eval"]
    return last - first + 1, first - EVAL_UNTUNED_FIRST


def seed_flags(report: dict[str, Any]) -> str:
    count, skip = base_seeds(report)
    return f"run with --seeds {count} --skip {skip}, or play every agent"


if __name__ == "__main__":
    main()
