"""The CPU time of the audit's statements: every statement the audit's expert and the generic auditor send in their
episodes, run by the SQL engine in this process on the episode's tables as a reset serves them (the events packed,
unpacked on first use), timed in CPU (a loaded machine stretches wall time, not the work). The budget is the
warehouse's: a statement's p50 at most 250 ms.

    uv run python -m lab.speed.audit_statement_cpu --seeds 6

Per agent: the statements' p50, p95 and max, and the slowest statement's name. Progress goes to stderr; the figures
to stdout as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from lab.agents.audit_generic import Audit
from metric_tracker_rl.agents.audit_expert import ALL_FINDERS, CONCURRENCY, AuditInvestigation
from metric_tracker_rl.catalog.task_splits import TRAIN_SEED_BASE
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.sql.engine import EpisodeTables, open_database

BUDGET_P50_MS = 250.0
Procedure = Generator[tuple[str, str], list[dict[str, Any]], Any]


def progress(message: str) -> None:
    print(f"[audit_statement_cpu] {message}", file=sys.stderr, flush=True)


def timed(procedure: Procedure, tables: EpisodeTables) -> list[tuple[str, float]]:
    """Play a procedure of statements against the tables; each statement's name and CPU milliseconds."""
    spent: list[tuple[str, float]] = []
    statement = next(procedure)
    try:
        while True:
            start = time.process_time()
            columns, rows, _ = tables.run(statement[1], 0, 100_000)
            spent.append((statement[0], 1000 * (time.process_time() - start)))
            statement = procedure.send([dict(zip(columns, row, strict=True)) for row in rows])
    except StopIteration:
        return spent


AGENTS: dict[str, Callable[[], Procedure]] = {
    "audit_expert": lambda: AuditInvestigation(concurrency=CONCURRENCY, finders=ALL_FINDERS).run(),
    "generic_auditor": lambda: Audit().run(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=6, help="episodes per split")
    args = parser.parse_args()
    seeds = [AUDIT.calibration_seed_base + 7_000 + i for i in range(args.seeds)]
    seeds += [TRAIN_SEED_BASE + 27_000 + i for i in range(args.seeds)]
    spent: dict[str, list[tuple[str, float]]] = {agent: [] for agent in AGENTS}
    for seed in seeds:
        episode = build_episode(resolve_episode_config(seed=seed, difficulty="audit"))
        for agent, procedure in AGENTS.items():
            tables = EpisodeTables(open_database(), episode.public.source.sql_tables())
            spent[agent] += timed(procedure(), tables)
        progress(f"seed {seed}: done")
    report = {}
    for agent, timings in spent.items():
        ms = [t for _, t in timings]
        slowest = max(timings, key=lambda item: item[1])
        report[agent] = {
            "statements": len(ms),
            "p50_ms": float(np.median(ms)),
            "p95_ms": float(np.percentile(ms, 95)),
            "max_ms": max(ms),
            "slowest": slowest[0],
            "budget_p50_ms": BUDGET_P50_MS,
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
