"""The warehouse's calibration: each reference agent's score on seeds that tuned nothing (mean, p5 and the 95%
bootstrap interval of the mean), the expert without one metrics-layer rule at a time (the ablation table), the
expert's recall by incident and defect kind, its calls per episode, its episode's characters (what a model
reads and writes) and the rows it submitted without reading their numbers, written to
lab/runs/warehouse_calibration.json (untracked), or with `--keep` to the kept lab/artifacts/warehouse_calibration.json
that the pages render.

    nice -n 10 uv run python -m lab.calibration.warehouse_calibration --seeds 200 --ablation-seeds 40 --workers 2 --keep

The expert's bars were tuned on seeds TUNING_SEEDS only; the calibration plays the untuned seeds from UNTUNED_FIRST.
`--ablation-seeds 0 --agents warehouse_expert` measures the expert's score alone (no ablation table).

Reproducibility: an agent's answers depend on nothing but the episode, so two runs (one on an idle machine, one
under load) must agree seed by seed. `--record PATH` keeps each play's score and a hash of the report it submitted;
`--compare A.json B.json` prints whether two such records agree, and each play that differs (exit 1 if any does):

    uv run python -m lab.calibration.warehouse_calibration --first 1 --seeds 12 --ablation-seeds 0 \
        --agents warehouse_expert --out /tmp/idle_calibration.json --record /tmp/idle.json
    uv run python -m lab.calibration.warehouse_calibration --compare /tmp/idle.json /tmp/loaded.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from lab.agents.registry import make_agent
from lab.calibration.calibrate import summarise
from lab.calibration.interface import message_texts
from lab.calibration.outputs import KEPT, add_output_flags, output_path
from lab.calibration.tier_record import tier_record
from metric_tracker_rl.adapters.transcript import TaskRun, cut_results, unread_submitted_rows
from metric_tracker_rl.agents import run_episode
from metric_tracker_rl.agents.warehouse_sql import ALL_RULES, RULES
from metric_tracker_rl.catalog.published import row_key
from metric_tracker_rl.catalog.tasks import EpisodeConfig, resolve_episode_config
from metric_tracker_rl.generation.warehouse.truth import expected_rows
from metric_tracker_rl.generation.warehouse.world import build_warehouse_world
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.world.funnel import window_calendar

ARTIFACT = KEPT / "warehouse_calibration.json"
TUNING_SEEDS = range(1, 41)  # the seeds the expert's bars were read on
UNTUNED_FIRST = 75_000  # seeds from here tuned nothing
AGENTS = (
    "warehouse_expert",
    "warehouse_model_like",
    "warehouse_dashboard_analyst",
    "warehouse_every_dip",
    "warehouse_all_data_quality",
    "null",
    "warehouse_aggregate_expert",
)
# The agents that play the warehouse only (a default run of lab/calibration/calibrate.py, over the listed tiers, leaves
# them out).
WAREHOUSE_AGENTS = tuple(agent for agent in AGENTS if agent.startswith("warehouse_"))
EXPERT = "warehouse_expert"
# The agents that skip the investigation (they read the dashboard and never a raw event): the warehouse's shortcuts,
# whose best the README's tiers table shows beside the expert.
SHORTCUTS = ("warehouse_dashboard_analyst", "warehouse_every_dip", "warehouse_all_data_quality")


def play_one(job: tuple[str, str, int]) -> dict[str, Any]:
    """One episode of `agent` (the expert without `rule` where one is named): its score, calls, characters and
    submitted keys."""
    agent_name, rule, seed = job
    kwargs = {"rules": ALL_RULES - {rule}} if rule else {}
    agent = make_agent(agent_name, **kwargs)
    env, run = MetricTrackerRlEnvironment(), TaskRun(agent_name)
    sent: list[MetricTrackerRlAction] = []

    def act(action: MetricTrackerRlAction) -> Any:
        sent.append(action)
        return run.act(env, action)

    try:
        run_episode(agent, lambda **kw: run.reset(env, **kw), act, difficulty="warehouse", seed=seed)
    except RuntimeError as failed:  # a reset the environment refused: left out of every figure, and listed
        return {"agent": agent_name, "rule": rule, "seed": seed, "failed": str(failed)[:200]}
    keys = [row_key(r.date, r.entity_type, r.entity_name) for a in sent for r in a.classifications or []]
    return {
        "agent": agent_name,
        "rule": rule,
        "seed": seed,
        "score": run.score,
        "calls": len(sent),
        "chars": sum(map(len, message_texts(run.messages))),
        "keys": keys,
        "report_hash": report_hash(sent),
        "cut": cut_results(run),
        "unread": len(unread_submitted_rows(run)),
    }


def report_hash(sent: list[MetricTrackerRlAction]) -> str:
    """A digest of every report the agent submitted, row by row and field by field, in order."""
    reports = [
        [row.model_dump(mode="json") for row in action.classifications]
        for action in sent
        if action.classifications is not None
    ]
    return hashlib.sha256(json.dumps(reports, sort_keys=True).encode()).hexdigest()[:16]


def play_records(played: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each play as a record keeps it: who played which seed (without which rule), its score and its report's
    digest, or why its reset failed."""
    fields = ("agent", "rule", "seed", "score", "report_hash", "failed")
    return sorted(
        ({k: r[k] for k in fields if k in r} for r in played), key=lambda r: (r["agent"], r["rule"], r["seed"])
    )


def compare_records(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[str]:
    """Each play whose score or report differs between two records, or that only one of them holds."""
    keyed = [{(r["agent"], r["rule"], r["seed"]): r for r in records} for records in (first, second)]
    differences = []
    for key in sorted(keyed[0].keys() | keyed[1].keys()):
        a, b = keyed[0].get(key), keyed[1].get(key)
        agent, rule, seed = key
        name = f"{agent}{' without ' + rule if rule else ''} seed {seed}"
        if a is None or b is None:
            differences.append(f"{name}: only in {'the second' if a is None else 'the first'}")
        elif (a.get("score"), a.get("report_hash"), a.get("failed")) != (
            b.get("score"),
            b.get("report_hash"),
            b.get("failed"),
        ):
            differences.append(
                f"{name}: score {a.get('score')} vs {b.get('score')}, report "
                f"{a.get('report_hash')} vs {b.get('report_hash')}"
            )
    return differences


def compare_files(first: Path, second: Path) -> int:
    """Print whether two records agree play by play; 1 where any play differs."""
    records = [json.loads(path.read_text())["plays"] for path in (first, second)]
    differences = compare_records(*records)
    print(
        f"{len(records[0])} and {len(records[1])} plays; "
        + (f"{len(differences)} differ:" if differences else "they agree on every seed (score and report).")
    )
    for line in differences:
        print("  " + line)
    return 1 if differences else 0


def expected_keys(config: EpisodeConfig) -> list[tuple[str, str, str]]:
    """Each expected row of a warehouse episode: its key (as a report's row names it), kind and family."""
    world = build_warehouse_world(config.tier, config)
    dates = window_calendar(world.log.num_days).iso_dates
    return [
        (row_key(report.date, report.entity_type, report.entity_name), row.kind, row.family)
        for row, report in ((row, row.report_row(dates)) for row in expected_rows(world))
    ]


def kind_recall(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per incident or defect kind: the share of its expected rows whose key a report held, and the share of
    episodes that carry it."""
    found: dict[str, list[bool]] = defaultdict(list)
    carried: dict[str, int] = defaultdict(int)
    for result in results:
        submitted = set(result["keys"])
        kinds = set()
        for key, kind, _ in expected_keys(resolve_episode_config(seed=result["seed"], difficulty="warehouse")):
            found[kind].append(key in submitted)
            kinds.add(kind)
        for kind in kinds:
            carried[kind] += 1
    return {
        kind: {
            "row_recall": round(float(np.mean(hits)), 3),
            "rows": len(hits),
            "episode_share": round(carried[kind] / len(results), 3),
        }
        for kind, hits in sorted(found.items())
    }


def rounded(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        k: ([round(x, 3) for x in v] if isinstance(v, list) else round(v, 3) if isinstance(v, float) else v)
        for k, v in summary.items()
    }


def ablation_table(
    results: list[dict[str, Any]], expert: list[dict[str, Any]], ablation_seeds: list[int]
) -> dict[str, Any]:
    """The expert's mean on the ablation seeds and, per rule, its score without that rule and the loss; empty
    without ablation seeds (a run of the expert's score alone)."""
    if not ablation_seeds:
        return {}
    full_on_ablation_seeds = [r["score"] for r in expert if r["seed"] in set(ablation_seeds)]
    ablations = {}
    for rule in RULES:
        scores = [r["score"] for r in results if r["rule"] == rule]
        ablations[rule] = {
            **rounded(summarise(scores)),
            "loss": round(float(np.mean(full_on_ablation_seeds) - np.mean(scores)), 3),
        }
    return {"ablation_baseline_mean": round(float(np.mean(full_on_ablation_seeds)), 3), "ablations": ablations}


def calibrate(seeds: list[int], ablation_seeds: list[int], agents: tuple[str, ...], workers: int) -> dict[str, Any]:
    jobs = [(agent, "", seed) for agent in agents for seed in seeds]  # each agent on every untuned seed
    jobs += [(EXPERT, rule, seed) for rule in RULES for seed in ablation_seeds]
    with multiprocessing.Pool(workers) as pool:
        played = pool.map(play_one, jobs, chunksize=2)
    results = [r for r in played if "failed" not in r]
    failed = sorted({(r["seed"], r["failed"]) for r in played if "failed" in r})
    by_agent = {agent: [r for r in results if r["agent"] == agent and not r["rule"]] for agent in agents}
    expert = by_agent.get(EXPERT, [])
    return {
        "seeds": {
            "untuned": [seeds[0], seeds[-1]],
            "ablation": ablation_seeds[:1] + ablation_seeds[-1:],
            "tuning": [TUNING_SEEDS[0], TUNING_SEEDS[-1]],
        },
        "agents": {agent: rounded(summarise([r["score"] for r in rows])) for agent, rows in by_agent.items()},
        **ablation_table(results, expert, ablation_seeds),
        "expert_kinds": kind_recall(expert),
        "expert_calls": {
            "p50": float(np.percentile([r["calls"] for r in expert], 50)),
            "p95": float(np.percentile([r["calls"] for r in expert], 95)),
            "max": max(r["calls"] for r in expert),
        },
        "expert_chars": {
            "p50": float(np.median([r["chars"] for r in expert])),
            "p95": float(np.percentile([r["chars"] for r in expert], 95)),
        },
        # Results shown cut short, and submitted rows whose numbers no earlier result showed, over all its episodes.
        "expert_unread": {
            "results_cut": sum(r["cut"] for r in expert),
            "rows_unread": sum(r["unread"] for r in expert),
            "rows": sum(len(r["keys"]) for r in expert),
        },
        "calls_and_chars_p50": {
            agent: [float(np.median([r[key] for r in rows])) if rows else None for key in ("calls", "chars")]
            for agent, rows in by_agent.items()
        },
        "failed_resets": [{"seed": seed, "error": error} for seed, error in failed],
        "scores": {agent: [round(r["score"], 6) for r in rows] for agent, rows in by_agent.items()},
        "plays": play_records(played),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--first", type=int, default=UNTUNED_FIRST)
    parser.add_argument("--ablation-seeds", type=int, default=40)
    parser.add_argument("--agents", default=",".join(AGENTS))
    parser.add_argument("--workers", type=int, default=2)
    add_output_flags(parser, ARTIFACT.name)
    parser.add_argument(
        "--record", type=Path, default=None, help="also write each play's score and report digest here (for --compare)"
    )
    parser.add_argument(
        "--compare",
        type=Path,
        nargs=2,
        default=None,
        metavar=("A", "B"),
        help="compare two records play by play, run nothing",
    )
    args = parser.parse_args()
    if args.compare is not None:
        sys.exit(compare_files(*args.compare))
    seeds = list(range(args.first, args.first + args.seeds))
    report = calibrate(seeds, seeds[: args.ablation_seeds], tuple(args.agents.split(",")), args.workers)
    out = output_path(args, ARTIFACT.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    plays = report.pop("plays")
    report["tiers"] = {"warehouse": tier_record("warehouse")}
    out.write_text(json.dumps(report, indent=1) + "\n")
    if args.record is not None:
        args.record.write_text(json.dumps({"seeds": [seeds[0], seeds[-1]], "plays": plays}, indent=1) + "\n")
    print(f"wrote {out}")
    print(json.dumps({k: v for k, v in report.items() if k != "scores"}, indent=1))


if __name__ == "__main__":
    main()
