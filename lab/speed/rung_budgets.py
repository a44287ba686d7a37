"""The top rungs' budgets, measured side by side in one run: deep, and every segmented tier after it (abyss, and
any being built: unlisted, reached by reset(difficulty=...) only). The tiers come from the tier registry when the
run starts, so it measures whatever their settings are then.

    uv run python -m lab.speed.rung_budgets              # prints the table, writes artifacts/rung_budgets.json
    uv run python -m lab.speed.rung_budgets --output lab/artifacts/rung_budgets.json    # a run the docs show
    uv run python -m lab.speed.rung_budgets --render lab/artifacts/rung_budgets.json --write-doc   # the doc's table

What each row measures, on the tier's calibration episodes (task_splits.calibration_reset_kwargs, from
`--first-offset`); every repetition takes each tier in turn, so the tiers share the machine's load:
- reset: wall time of an in-process reset, after a warm-up pass;
- typical query (the budget): the `query` statements of the capable LLM's deep transcripts
  (lab/artifacts/model_transcripts), each replayed on an episode of the tier with the transcript's seed, the
  tier's defaults (those that the episode answers; a statement the model got wrong is left out): what a model
  sends, its short reads and its scans alike;
- the reference agents' statements (reported, no budget): the `query` statements the expert and the scan analyst
  sent in their own episodes (cuboid scans against the same-weekday median, hourly scans, leaf and candidate
  reads). They batch every read into a few exhaustive statements, so their median is a scan, not a typical query;
Both are replayed through env.step on their episode, once the episode's tables are in a SQL worker;
- memory: one server process with `--sessions` WebSocket sessions open at once, each the expert's episode played to
  its report; the RSS of the server and its SQL workers over that of the same server with none open, per session;
- the expert's episode: the characters of its messages (what a model reads and writes), median over those sessions;
- results cut and submitted rows unseen: tool results that showed a page of a longer table that was never paged on
  (or the first rows of a context table, or a text cell cut short), and submitted rows whose key and numbers stand
  in no result the expert read (a row cut from every page it read);
- tool schemas: the characters of the tier's tool list, sent with every request.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import lab.agents.scan_analyst  # noqa: F401  (registers the scan analyst)
from lab.agents.registry import make_agent
from lab.calibration.interface import message_texts
from lab.speed import rung_budgets_memory
from lab.speed.run import PERFORMANCE_DOC, _commit, replace_block
from metric_tracker_rl.adapters.transcript import TaskRun, cut_results, unseen_submitted_rows
from metric_tracker_rl.agents import run_episode
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.tool_schemas import openai_tools, schema_chars

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = ROOT / "artifacts" / "rung_budgets.json"
PUBLISHED_RESULTS = ROOT / "lab" / "artifacts" / "rung_budgets.json"
# The deep transcripts the kept run timed: the first recorded set, kept as history beside the current one.
MODEL_TRANSCRIPTS = ROOT / "lab" / "artifacts" / "model_transcripts" / "history" / "5c24185"
BLOCK_MARKER = "<!-- rendered by `python -m lab.speed.rung_budgets --render lab/artifacts/rung_budgets.json`: begin -->"
EXPERT = "deep_expert"
SCAN = "scan_analyst"
FIRST_OFFSET = 120  # the first calibration episode of each tier the run measures
SESSIONS = 64  # the expert's sessions one server holds at once: the episodes whose median length is the budget's
MAX_STEPS = 500  # the most a reset accepts: room to replay an episode's statements several times
BUDGETS = {
    "reset_p50_ms": 100.0,
    "query_p50_ms": 20.0,
    "mb_per_session": 24.0,
    "episode_chars": 48_000,
    "unseen_rows": 0,
    "schema_chars": 12_000,
}
# The audit's episode budget comes from its expert's need, as its step budget does (catalog.tiers.AUDIT_EXPERT_CALLS):
# the expert's p95 of an eval episode's characters in the kept calibration (lab/artifacts/audit_calibration.json,
# rounded up to a hundred), then up to the next EPISODE_CHARS_STEP. The warehouse's is the rungs' budget and the
# room its brief's exact rules take (where a defect's trace may be, what its incidents line counts, a version's
# peers): WAREHOUSE_RULES_CHARS, rounded up to a thousand. Every other rung keeps BUDGETS["episode_chars"].
AUDIT_EXPERT_CHARS = 135_000
EPISODE_CHARS_STEP = 5_000
WAREHOUSE_RULES_CHARS = 2_000
TIER_EPISODE_CHARS = {
    "audit": EPISODE_CHARS_STEP * math.ceil(AUDIT_EXPERT_CHARS / EPISODE_CHARS_STEP),
    "warehouse": int(BUDGETS["episode_chars"]) + WAREHOUSE_RULES_CHARS,
}


def episode_chars_budget(tier: str) -> int:
    """The characters an expert episode of `tier` may take (what a model reads and writes)."""
    return int(TIER_EPISODE_CHARS.get(tier, BUDGETS["episode_chars"]))


def progress(message: str) -> None:
    print(f"[rung_budgets] {message}", file=sys.stderr, flush=True)


def measured_tiers() -> tuple[str, ...]:
    """Deep and every segmented tier of counts after it (the rungs above, listed or being built), in the registry's
    order; a tier of raw events (the warehouse) has its own agents and budgets (lab/speed/warehouse_serving.py)."""
    names = list(TIERS)
    return tuple(
        name for name in names[names.index("deep") :] if TIERS[name].data == "counts" and TIERS[name].dimensions
    )


def spread(samples_ms: list[float]) -> dict[str, float]:
    p50, p95 = np.percentile(samples_ms, [50, 95])
    return {"n": len(samples_ms), "p50_ms": float(p50), "p95_ms": float(p95)}


# --- the agents' episodes ------------------------------------------------------------------------------------


def record(agent_name: str, reset_kwargs: dict[str, Any], env: Any) -> tuple[TaskRun, list[MetricTrackerRlAction]]:
    """One episode of a reference agent on `env` (in-process or a client), recorded as inference.py records it,
    and the actions it sent."""
    run, actions = TaskRun(agent_name), []

    def act(action: MetricTrackerRlAction) -> Any:
        actions.append(action)
        return run.act(env, action)

    run_episode(make_agent(agent_name), lambda **kw: run.reset(env, **kw), act, **reset_kwargs)
    return run, actions


def cut_context_tables(run: TaskRun) -> int:
    """Context tables shown only in part: a get_context result says `showing: k of n` (the query tool reads the
    rest)."""
    cut = 0
    for step in run.results.values():
        result = step.seen.analysis_result or {}
        showing = result.get("showing") if "table" in result else None  # another tool's pages say their own range
        if isinstance(showing, str):
            shown, _, total = showing.partition(" of ")
            cut += int(shown) < int(total.split()[0])
    return cut


def episode_figures(run: TaskRun) -> dict[str, Any]:
    """What a model reads in one recorded episode: its characters, cut results and unseen submitted rows."""
    submitted = sum(
        len(call["function"]["arguments"].get("rows", []))
        for m in run.messages
        for call in m.get("tool_calls") or []
        if call["function"]["name"] == "submit_report"
    )
    return {
        "seed": run.config.get("seed"),
        "chars": sum(map(len, message_texts(run.messages))),
        "cut_results": cut_results(run) + cut_context_tables(run),
        "unseen_rows": len(unseen_submitted_rows(run)),
        "submitted_rows": submitted,
        "score": run.score,
    }


def query_kind(sql: str) -> str:
    """Which of the scan's reads a statement is: a cuboid scan (GROUPING SETS), an hourly scan, a read of listed
    candidates (the leaf check, values of a VALUES list), or another read."""
    if "hourly_by_segment" in sql:
        return "hourly scan"
    if "GROUPING SETS" in sql.upper():
        return "cuboid scan"
    if "VALUES" in sql.upper():
        return "candidate read"
    return "other read"


def sent_queries(reset_kwargs: dict[str, Any], actions: list[MetricTrackerRlAction], agent: str) -> list[dict]:
    return [
        {
            "agent": agent,
            "reset": reset_kwargs,
            "arguments": dict(action.analysis_args or {}),
            "kind": query_kind(str((action.analysis_args or {}).get("sql", ""))),
        }
        for action in actions
        if action.analysis_method == "query"
    ]


def recorded_queries(tier: str, first_offset: int, episodes: int) -> list[dict]:
    """The query statements the expert and the scan analyst sent on the tier's first `episodes` episodes."""
    env = MetricTrackerRlEnvironment()
    queries = []
    for agent in (EXPERT, SCAN):
        for offset in range(first_offset, first_offset + episodes):
            reset_kwargs = calibration_reset_kwargs(tier, offset)
            queries += sent_queries(reset_kwargs, record(agent, reset_kwargs, env)[1], agent)
    env.close()
    return queries


def model_queries(tier: str, transcripts: Path = MODEL_TRANSCRIPTS) -> list[dict]:
    """The query statements a capable model sent in its deep transcripts, each on an episode of `tier` with the
    transcript's seed at the tier's defaults; those the episode refuses (the model's own mistakes) are left out."""
    env = MetricTrackerRlEnvironment()
    queries = []
    for path in sorted(transcripts.glob("deep-*.json")):
        transcript = json.loads(path.read_text(encoding="utf-8"))
        reset_kwargs = {"seed": transcript["seed"], "difficulty": tier}
        env.reset(**reset_kwargs, max_steps=MAX_STEPS)
        for call in transcript["calls"]:
            if call["tool"] != "query":
                continue
            arguments = dict(call["arguments"])
            if env.step(MetricTrackerRlAction(analysis_method="query", analysis_args=arguments)).status == "ok":
                queries.append(
                    {
                        "agent": "model",
                        "reset": reset_kwargs,
                        "arguments": arguments,
                        "kind": query_kind(str(arguments.get("sql", ""))),
                    }
                )
    env.close()
    return queries


# --- reset and query latency -----------------------------------------------------------------------------------


def time_resets(env: MetricTrackerRlEnvironment, tier: str, offsets: range) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of each reset."""
    wall, cpu = [], []
    for offset in offsets:
        start, start_cpu = time.perf_counter(), time.process_time()
        observation = env.reset(**calibration_reset_kwargs(tier, offset))
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
        if observation.status != "ready":
            raise RuntimeError(f"reset failed: {observation.message}")
    return wall, cpu


def time_queries(queries: list[dict]) -> list[float]:
    """Milliseconds of each statement's env.step, on its own episode, once that episode's tables are open."""
    samples = []
    env = MetricTrackerRlEnvironment()
    opened: str | None = None
    for query in queries:
        key = json.dumps(query["reset"], sort_keys=True)
        if key != opened or env.state.step_count >= MAX_STEPS - 1:
            env.reset(**query["reset"], max_steps=MAX_STEPS)
            env.step(MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": "SELECT 1"}))
            opened = key
        action = MetricTrackerRlAction(analysis_method="query", analysis_args=query["arguments"])
        start = time.perf_counter()
        observation = env.step(action)
        samples.append((time.perf_counter() - start) * 1e3)
        if observation.status != "ok":
            raise RuntimeError(f"a recorded query failed on replay: {observation.message}")
    env.close()
    return samples


def bench_latency(
    tiers: tuple[str, ...], queries: dict[str, list[dict]], model: dict[str, list[dict]], offsets: range, repeats: int
) -> dict[str, dict[str, Any]]:
    """Resets, the agents' recorded queries and the model's, each repetition taking every tier in turn."""
    env = MetricTrackerRlEnvironment()
    for tier in tiers:
        time_resets(env, tier, offsets)  # warm-up
    resets = {tier: ([], []) for tier in tiers}
    query_ms: dict[str, list[list[float]]] = {tier: [] for tier in tiers}
    model_ms: dict[str, list[list[float]]] = {tier: [] for tier in tiers}
    for repeat in range(repeats):
        for tier in tiers:
            wall, cpu = time_resets(env, tier, offsets)
            resets[tier][0].extend(wall)
            resets[tier][1].extend(cpu)
            query_ms[tier].append(time_queries(queries[tier]))
            model_ms[tier].append(time_queries(model[tier]))
        progress(
            f"latency: repetition {repeat + 1}/{repeats} "
            + ", ".join(f"{t} reset p50 {np.median(resets[t][0]):.1f} ms" for t in tiers)
        )
    env.close()
    return {
        tier: {
            "reset": {**spread(resets[tier][0]), "cpu_p50_ms": float(np.median(resets[tier][1]))},
            "query": query_figures(queries[tier], np.array(query_ms[tier]).T),
            "model_query": {**spread(np.ravel(model_ms[tier]).tolist()), "statements": len(model[tier])},
        }
        for tier in tiers
    }


def query_figures(queries: list[dict], per_query: np.ndarray) -> dict[str, Any]:
    """The statements' timings (one row per statement, one column per repetition) in all, by kind and by agent."""

    def where(field: str, value: str) -> dict[str, float]:
        return spread(
            [ms for query, row in zip(queries, per_query, strict=True) if query[field] == value for ms in row]
        )

    return {
        **spread(per_query.ravel().tolist()),
        "statements": len(queries),
        "by_kind": {
            kind: {**where("kind", kind), "statements": sum(q["kind"] == kind for q in queries)}
            for kind in sorted({q["kind"] for q in queries})
        },
        "by_agent": {agent: where("agent", agent) for agent in (EXPERT, SCAN)},
        "slowest_statement_p50_ms": float(np.median(per_query, axis=1).max()),
    }


# --- the expert's sessions in one server ----------------------------------------------------------------------


def bench_sessions(tiers: tuple[str, ...], first_offset: int, sessions: int, repeats: int) -> dict[str, Any]:
    """For each repetition and tier in turn, a fresh server holding `sessions` of the expert's episodes at once:
    RSS per session, and what the expert's episodes showed (the same in every repetition: episodes are fixed by
    their seeds)."""
    results: dict[str, Any] = {tier: {"mb_per_session": [], "runs": []} for tier in tiers}
    for repeat in range(repeats):
        for tier in tiers:
            kwargs = [calibration_reset_kwargs(tier, first_offset + i) for i in range(sessions)]
            held = rung_budgets_memory.hold_sessions(kwargs, lambda kw, env: record(EXPERT, kw, env)[0])
            results[tier]["mb_per_session"].append(held.mb_per_session)
            results[tier].setdefault("servers", []).append(held.server_figures())
            figures = [episode_figures(run) for run in held.runs]
            if results[tier]["runs"] and results[tier]["runs"] != figures:
                raise RuntimeError(f"the expert's {tier} episodes differ between repetitions")
            results[tier]["runs"] = figures
            progress(
                f"sessions {tier}, repetition {repeat + 1}/{repeats}: {held.mb_per_session:.2f} MB a session, "
                f"median episode {np.median([f['chars'] for f in figures]):,.0f} chars"
            )
    for tier in tiers:
        runs = results[tier]["runs"]
        results[tier].update(
            memory={
                "p50_mb": float(np.median(results[tier]["mb_per_session"])),
                "max_mb": float(max(results[tier]["mb_per_session"])),
                "sessions": sessions,
            },
            episode={
                "median_chars": float(np.median([r["chars"] for r in runs])),
                "p95_chars": float(np.percentile([r["chars"] for r in runs], 95)),
                "max_chars": max(r["chars"] for r in runs),
                "episodes": len(runs),
                "mean_score": float(np.mean([r["score"] for r in runs])),
            },
            shown={key: sum(r[key] for r in runs) for key in ("cut_results", "unseen_rows", "submitted_rows")},
        )
    return results


# --- the report ---------------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Every row for every measured tier, with what a reader needs to repeat the run: when, where, how, the load."""
    tiers = measured_tiers()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "commit": _commit(),
        "command": shareable(" ".join(["python -m lab.speed.rung_budgets", *argv])),
        "tiers": list(tiers),
        "load_average_at_start": list(os.getloadavg()),
        "budgets": BUDGETS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {
            "repeats": args.repeats,
            "resets": args.resets,
            "query_episodes": args.query_episodes,
            "sessions": args.sessions,
            "session_repeats": args.session_repeats,
            "first_offset": args.first_offset,
            "expert": EXPERT,
            "scan": SCAN,
        },
    }
    started = time.perf_counter()
    queries = {tier: recorded_queries(tier, args.first_offset, args.query_episodes) for tier in tiers}
    model = {tier: model_queries(tier) for tier in tiers}
    progress(
        "recorded " + ", ".join(f"{len(q)} {t} queries ({len(model[t])} of the model's)" for t, q in queries.items())
    )
    latency = bench_latency(
        tiers, queries, model, range(args.first_offset, args.first_offset + args.resets), args.repeats
    )
    sessions = bench_sessions(tiers, args.first_offset, args.sessions, args.session_repeats)
    report["results"] = {
        tier: {
            **latency[tier],
            **sessions[tier],
            "schemas": {
                "chars": schema_chars(tier),
                "tools": len(openai_tools(tier)),
                "tier_budget": TIERS[tier].tool_schema_budget,
            },
        }
        for tier in tiers
    }
    report["load_average_at_end"] = list(os.getloadavg())
    report["elapsed_s"] = time.perf_counter() - started
    return report


def _verdict(value: float, budget: float) -> str:
    return "ok" if value <= budget else "**over**"


def table(report: dict[str, Any]) -> str:
    """The budgets table: one row per budget, one column per tier."""
    tiers, results, budgets = report["tiers"], report["results"], report["budgets"]
    rows = [
        (
            "reset p50 (p95)",
            f"≤ {budgets['reset_p50_ms']:g} ms",
            "reset_p50_ms",
            lambda r: r["reset"]["p50_ms"],
            lambda r: f"{r['reset']['p50_ms']:.1f} ms ({r['reset']['p95_ms']:.1f})",
        ),
        (
            "typical query p50 (p95): a capable model's statements",
            f"≤ {budgets['query_p50_ms']:g} ms",
            "query_p50_ms",
            lambda r: r["model_query"]["p50_ms"],
            lambda r: (
                f"{r['model_query']['p50_ms']:.1f} ms ({r['model_query']['p95_ms']:.1f}; "
                f"{r['model_query']['statements']} statements)"
            ),
        ),
        (
            "the reference agents' statements p50 (p95): their scans, batched",
            "none (reported)",
            None,
            None,
            lambda r: (
                f"{r['query']['p50_ms']:.1f} ms ({r['query']['p95_ms']:.1f}; {r['query']['statements']} statements)"
            ),
        ),
        (
            f"memory a session, {report['settings']['sessions']} open",
            f"≤ {budgets['mb_per_session']:g} MB",
            "mb_per_session",
            lambda r: r["memory"]["p50_mb"],
            lambda r: f"{r['memory']['p50_mb']:.1f} MB (max {r['memory']['max_mb']:.1f})",
        ),
        (
            "the expert's episode, median (p95)",
            f"≤ {budgets['episode_chars'] / 1000:g}k characters",
            "episode_chars",
            lambda r: r["episode"]["median_chars"],
            lambda r: f"{r['episode']['median_chars'] / 1000:.1f}k ({r['episode']['p95_chars'] / 1000:.1f}k)",
        ),
        (
            "results cut, submitted rows unseen",
            f"{budgets['unseen_rows']:g}",
            "unseen_rows",
            lambda r: r["shown"]["unseen_rows"],
            lambda r: (
                f"{r['shown']['cut_results']} cut, {r['shown']['unseen_rows']} of "
                f"{r['shown']['submitted_rows']} rows unseen"
            ),
        ),
        (
            "the rung's tool schemas",
            f"≤ {budgets['schema_chars'] / 1000:g}k characters",
            "schema_chars",
            lambda r: r["schemas"]["chars"],
            lambda r: f"{r['schemas']['chars']:,} ({r['schemas']['tools']} tools)",
        ),
    ]
    lines = [f"| what | budget | {' | '.join(tiers)} |", "| --- | --- |" + " --- |" * len(tiers)]
    for name, budget_text, key, value, text in rows:
        cells = [
            text(results[t]) if value is None else f"{text(results[t])} {_verdict(value(results[t]), budgets[key])}"
            for t in tiers
        ]
        lines.append(f"| {name} | {budget_text} | {' | '.join(cells)} |")
    return "\n".join(lines)


def shareable(command: str) -> str:
    """A command as a reader can repeat it: a path inside the repository relative to it, any other path by its file
    name (a machine's own folders say nothing to a reader)."""
    words = []
    for word in command.split():
        if word.startswith("/"):
            path = Path(word)
            word = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
        words.append(word)
    return " ".join(words)


def rendered_block(report: dict[str, Any]) -> str:
    """What lab/docs/performance.md shows from a results file: when, where and how it was measured, then the table."""
    settings = ", ".join(f"{name} {value}" for name, value in report["settings"].items())
    start, end = (", ".join(f"{v:.1f}" for v in report[f"load_average_at_{when}"]) for when in ("start", "end"))
    machine = report["machine"]
    return (
        f"Measured {report['date']} at commit {report['commit']} with `{shareable(report['command'])}` "
        f"(settings: {settings}) "
        f"on {machine['cpus']} CPUs, Python {machine['python']}, load average {start} at the start and {end} at "
        f"the end, {report['elapsed_s']:.0f} s in all.\n\n{table(report)}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of the reset and query timings")
    parser.add_argument("--resets", type=int, default=40, help="episodes reset per tier and repetition")
    parser.add_argument("--query-episodes", type=int, default=6, help="episodes per agent whose queries are timed")
    parser.add_argument("--sessions", type=int, default=SESSIONS, help="sessions the server holds at once")
    parser.add_argument("--session-repeats", type=int, default=2, help="servers filled per tier")
    parser.add_argument("--first-offset", type=int, default=FIRST_OFFSET, help="first calibration episode of each tier")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--render", type=Path, metavar="RESULTS", help="print the doc's text from a results file")
    parser.add_argument("--write-doc", action="store_true", help="with --render: write it into lab/docs/performance.md")
    arguments = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(arguments)
    if args.write_doc and args.render is None:
        parser.error("--write-doc needs --render RESULTS")
    if args.render is not None:
        block = rendered_block(json.loads(args.render.read_text(encoding="utf-8")))
        if args.write_doc:
            doc = PERFORMANCE_DOC.read_text(encoding="utf-8")
            PERFORMANCE_DOC.write_text(replace_block(doc, block, BLOCK_MARKER), encoding="utf-8")
        print(block)
        return
    report = measure(args, arguments)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(report))
    progress(f"wrote {args.output} in {report['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
