"""The audit's mix as its episodes draw it: each mechanism's share of the expected rows of a split's tasks at each
version, beside the share version 2 aims it at (catalog/audit_weights.py's ROW_SHARES: the separation table's
proposal when version 2's mix was set); the rows one placement of each mechanism yields, by which version 2's draw
divides its aim (metric_tracker_rl/catalog/audit_weights.py); and the rows per episode of incidents whose segment
names three fields. Written to lab/artifacts/audit_mix_shares.json; lab/docs/audit.md shows it (a block of
lab/docs_blocks.py).

    nice -n 5 uv run python -m lab.calibration.audit_mix_shares --workers 1          # print, write nothing
    nice -n 5 uv run python -m lab.calibration.audit_mix_shares --workers 1 --write  # the artifact
    nice -n 5 uv run python -m lab.calibration.audit_mix_shares --again --write   # the rows per placement too
    uv run python -m lab.calibration.audit_mix_shares --constants   # catalog/audit_weights.py's tables, to paste
    uv run python -m lab.docs_blocks --write                                         # then the page's block

A mechanism's rows per placement are its expected rows over the episodes that hold it, drawn at version 2's mix
with every mechanism alike, on seeds no task plays (PLACEMENT_SEEDS: the train split's past its listed tasks, and the
eval split's, where the held-out mechanisms are drawn): a lasting incident makes a row a date, a one-date defect one,
and a mechanism whose change often stays inside the margin fewer than it is placed.

The shares are measured on the eval split's audit sweep (its 200 tasks, null episodes included) and on the train
split's first 200 tasks of version 2's block, each at both versions (the same seeds): version 1 draws every
mechanism alike, version 2 by its weights. A run keeps the rows per placement from the kept artifact unless told
`--again`: they are part of what version 2 draws by (catalog/audit_weights.py), measured once.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from collections import Counter
from dataclasses import replace
from typing import Any

from lab.calibration.calibrate import markdown_table
from lab.calibration.outputs import KEPT
from metric_tracker_rl.catalog.audit_weights import ROW_SHARES
from metric_tracker_rl.catalog.task_splits import TRAIN_SEED_BASE, get_split, task_range, train_indices
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT
from metric_tracker_rl.generation.audit.truth import audit_rows
from metric_tracker_rl.generation.audit.world import audit_mix, build_audit_world
from metric_tracker_rl.generation.warehouse.truth import DATA_QUALITY

ARTIFACT = KEPT / "audit_mix_shares.json"
SEPARATION = KEPT / "audit_separation.json"
TASKS = 200  # per split
# Seeds no task plays and no calibration reads: the train split's from TRAIN_SEED_BASE + 40,000 (past its listed
# tasks and the audit calibration's untuned train seeds), the eval split's from the tier's base + 8,000.
PLACEMENT_SEEDS = {"train": TRAIN_SEED_BASE + 40_000, "eval": AUDIT.calibration_seed_base + 8_000}
PLACEMENT_COUNT = 300  # per split
THREE_FIELDS = 3


def split_tasks(split: str) -> list[dict[str, Any]]:
    """The audit's tasks at version 2 the shares are measured on: the eval split's sweep, the train split's first."""
    if split == "eval":
        tasks = [t for t in task_range("eval") if t.get("difficulty") == "audit" and t["version"] == 2]
    else:
        train = get_split("train")
        tasks = [t for span in train_indices("audit") for t in map(train.task, span) if t["version"] == 2]
    return tasks[:TASKS]


def episode_facts(job: tuple[dict[str, Any], bool]) -> dict[str, Any]:
    """One audit episode's expected rows by mechanism, the mechanisms it holds, and its rows of three-field
    incidents; with `alike`, drawn at its version's mix with every mechanism alike."""
    task, alike = job
    config = resolve_episode_config(**task)
    mix = audit_mix(config.tier)
    tier = replace(config.tier, segmented=replace(mix, weights=None)) if alike else config.tier
    world = build_audit_world(tier, config)
    rows = audit_rows(world, mix)
    three = sum(r.family != DATA_QUALITY and len(r.segment.normalised().named()) >= THREE_FIELDS for r in rows)
    holds = {i.kind for i in world.incidents} | {d.kind for d in world.defects}
    return {"rows": dict(Counter(r.kind for r in rows)), "holds": sorted(holds), "three_field_rows": three}


def played(jobs: list[tuple[dict[str, Any], bool]], workers: int) -> list[dict[str, Any]]:
    if workers <= 1:
        return [episode_facts(job) for job in jobs]
    with multiprocessing.Pool(workers) as pool:
        return pool.map(episode_facts, jobs)


def summary(facts: list[dict[str, Any]]) -> dict[str, Any]:
    """Each mechanism's share of every expected row, the episodes holding it, and the three-field rows per episode."""
    rows: Counter[str] = Counter()
    holding: Counter[str] = Counter()
    for fact in facts:
        rows.update(fact["rows"])
        holding.update(fact["holds"])
    total = sum(rows.values())
    return {
        "episodes": len(facts),
        "rows": total,
        "shares": {m: round(rows[m] / total, 4) for m in sorted(set(rows) | set(holding))},
        "episodes_holding": dict(sorted(holding.items())),
        "three_field_rows_per_episode": round(sum(f["three_field_rows"] for f in facts) / len(facts), 3),
    }


def rows_per_placement(workers: int) -> dict[str, float]:
    """Each mechanism's expected rows over the episodes holding it, every mechanism drawn alike (PLACEMENT_SEEDS)."""
    jobs = [
        ({"seed": first + i, "difficulty": "audit", "version": 2}, True)
        for first in PLACEMENT_SEEDS.values()
        for i in range(PLACEMENT_COUNT)
    ]
    rows: Counter[str] = Counter()
    holding: Counter[str] = Counter()
    for fact in played(jobs, workers):
        rows.update(fact["rows"])
        holding.update(fact["holds"])
    return {m: round(rows[m] / holding[m], 3) for m in sorted(holding)}


def target() -> dict[str, float]:
    """The share of the rows version 2 aims each mechanism at: the package's ROW_SHARES, the separation table's
    proposal when version 2's mix was set. They are part of what version 2 is, so the table's proposal may move
    since (the calibration it reads is played again) without moving them: a new proposal is a next version's."""
    return dict(sorted(ROW_SHARES.items()))


def proposed() -> dict[str, float]:
    """The separation table's proposed share of the rows for each mechanism, as it stands today."""
    weights = json.loads(SEPARATION.read_text(encoding="utf-8"))["weights"]
    return {name: entry["weight"] for name, entry in sorted(weights.items())}


def measure(workers: int, kept: dict[str, Any] | None) -> dict[str, Any]:
    """The measurement; the rows per placement (which version 2's weights divide by) kept from `kept` where given."""
    splits = {}
    for split in ("eval", "train"):
        tasks = split_tasks(split)
        splits[split] = {
            "tasks": {"first_seed": tasks[0]["seed"], "last_seed": tasks[-1]["seed"], "count": len(tasks)},
            **{
                f"v{version}": summary(played([({**t, "version": version}, False) for t in tasks], workers))
                for version in (1, 2)
            },
        }
    placements = kept["rows_per_placement"] if kept is not None else None
    return {
        "target": target(),
        "rows_per_placement": placements
        or {
            "seeds": {s: [first, first + PLACEMENT_COUNT - 1] for s, first in PLACEMENT_SEEDS.items()},
            "by_mechanism": rows_per_placement(workers),
        },
        "splits": splits,
    }


def constants(report: dict[str, Any]) -> str:
    """metric_tracker_rl/catalog/audit_weights.py's two tables as the artifacts give them, to paste there."""
    tables = {"ROW_SHARES": proposed(), "ROWS_PER_PLACEMENT": report["rows_per_placement"]["by_mechanism"]}
    return "\n".join(
        f"{name}: dict[str, float] = {{\n" + "".join(f'    "{m}": {v},\n' for m, v in values.items()) + "}"
        for name, values in tables.items()
    )


def distance(shares: dict[str, float], aim: dict[str, float], split: str) -> float:
    """Half the sum of |share - aim| over the mechanisms `split` draws, the aims renormalised among them."""
    kinds, defects = audit_mix(AUDIT).drawn(split)
    drawn = set(kinds) | set(defects)
    total = sum(aim[m] for m in drawn)
    return sum(abs(shares.get(m, 0.0) - aim[m] / total) for m in drawn) / 2


def table(report: dict[str, Any]) -> str:
    """Per mechanism: its aimed share, its share of the rows at each version and split, and the version 2 episodes
    holding it; then the largest share and the three-field rows per episode."""
    splits = report["splits"]
    mix = audit_mix(AUDIT)
    held_out = set(mix.held_out_kinds) | set(mix.held_out_defects)
    rows = []
    for name, aim in report["target"].items():
        cells = [f"{splits[s][v]['shares'].get(name, 0):.3f}" for s in ("eval", "train") for v in ("v1", "v2")]
        holding = [str(splits[s]["v2"]["episodes_holding"].get(name, 0)) for s in ("eval", "train")]
        rows.append([name + (" (held out)" if name in held_out else ""), f"{aim:.3f}", *cells, " / ".join(holding)])
    head = ["mechanism", "aim", "eval v1", "eval v2", "train v1", "train v2", "v2 episodes holding (eval / train)"]
    lines = [markdown_table(head, rows), ""]
    for split, data in splits.items():
        tasks = data["tasks"]
        largest = {v: max(data[v]["shares"].items(), key=lambda item: item[1]) for v in ("v1", "v2")}
        far = {v: distance(data[v]["shares"], report["target"], split) for v in ("v1", "v2")}
        lines.append(
            f"The {split} split's {tasks['count']} tasks (seeds {tasks['first_seed']:,} to {tasks['last_seed']:,}): "
            f"{data['v1']['rows']:,} expected rows at version 1, {data['v2']['rows']:,} at version 2; the largest "
            f"share {largest['v1'][1]:.3f} ({largest['v1'][0]}) at version 1, {largest['v2'][1]:.3f} "
            f"({largest['v2'][0]}) at version 2; rows of incidents naming three fields per episode "
            f"{data['v1']['three_field_rows_per_episode']:.2f} at version 1, "
            f"{data['v2']['three_field_rows_per_episode']:.2f} at version 2; the shares' distance from the aim "
            f"(half the sum of the differences, over the mechanisms the split draws) {far['v1']:.3f} at version 1, "
            f"{far['v2']:.3f} at version 2."
        )
    lines.append("`nice -n 5 uv run python -m lab.calibration.audit_mix_shares --write`.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--write", action="store_true", help=f"write {ARTIFACT.name}")
    parser.add_argument("--placements", action="store_true", help="measure the rows per placement alone")
    parser.add_argument("--again", action="store_true", help="measure what no weight moves again too")
    parser.add_argument("--constants", action="store_true", help="print audit_weights.py's tables from the artifacts")
    args = parser.parse_args(argv)
    if args.constants:
        print(constants(json.loads(ARTIFACT.read_text(encoding="utf-8"))))
        return 0
    if args.placements:
        print(json.dumps(rows_per_placement(args.workers), indent=1))
        return 0
    again = args.again or not ARTIFACT.exists()
    report = measure(args.workers, None if again else json.loads(ARTIFACT.read_text(encoding="utf-8")))
    print(table(report))
    if args.write:
        ARTIFACT.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {ARTIFACT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
