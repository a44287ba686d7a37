"""Benchmark calibration: run every reference agent on the named tasks and on a seed sweep per difficulty.

    uv run python -m lab.calibration.calibrate --seeds 200 [--agents expert,null] [--difficulties frontier] [--held-out]
        [--no-named-tasks] [--output PATH]
    uv run python -m lab.calibration.calibrate --seeds 200 --difficulties deep --no-named-tasks --workers 2 \
        --agents deep_expert,one_dimension_expert,short_segment_rule,aggregate_only_expert   # deep's own agents
    uv run python -m lab.calibration.calibrate --seeds 200 --untuned --merge --workers 1 \
        --output lab/artifacts/calibration.json   # every agent on the seeds that tuned nothing, kept beside
    uv run python -m lab.calibration.calibrate --render lab/artifacts/calibration.json   # the tables of a results file
    uv run python -m lab.calibration.calibrate --tasks deep_cuboids --no-sweep --merge \
        --output lab/artifacts/calibration.json   # a new named task's figures, added to the kept results

Episodes run in-process against the environment (metric_tracker_rl/serving/environment.py).
A sweep uses standard episodes only (a difficulty's default settings, seed aside) with one graded submission;
one in every NULL_EVERY seeds (task_splits.null_offset) is a null episode (scenario_family="null"), reported in a null
group of its tier (and in one pooled over the tiers), as is any standard episode that happens to hold no incident.
An episode's score is the sum of its rewards; each group's mean comes with a 95% percentile bootstrap interval over
its episodes.
--untuned sweeps each tier's untuned seeds (task_splits.UNTUNED_FIRST_OFFSET on), which tuned no agent and no tier
setting, in place of the eval split's; with --merge the run is kept under the results file's "untuned" entry.
An agent listed in AGENT_RESET_OVERRIDES plays every episode with those settings added (non-standard episodes,
marked in the table). --held-out sets a secret for the in-process environment, as a held-out server would.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import lab.agents  # noqa: F401  (registers the calibration's exploit agents)
import lab.agents.scan_analyst  # noqa: F401  (registers the scan analyst and its variations)
from lab.agents.registry import known_agents, make_agent
from lab.calibration.tier_record import tier_record
from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.agents import play
from metric_tracker_rl.catalog.published import COUNT_DIFFICULTIES, DIFFICULTIES, RESET_DIFFICULTIES
from metric_tracker_rl.catalog.task_splits import NULL_EVERY, UNTUNED_FIRST_OFFSET, calibration_reset_kwargs
from metric_tracker_rl.catalog.tasks import DEFAULT_TASK_ORDER, get_task_spec
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

DEFAULT_OUTPUT = Path("artifacts/calibration.json")
# The results lab/docs/calibration.md and the README show, rendered by `table` and `difficulty_table`
# (lab/tests/test_calibration.py compares): a run written with --output PUBLISHED_RESULTS updates them.
PUBLISHED_RESULTS = Path(__file__).resolve().parents[2] / "lab" / "artifacts" / "calibration.json"
NULL_GROUP = "null"
UNTUNED = "untuned"  # the results file's entry that keeps the run on the untuned seeds
# The mean's 95% interval: the 2.5th and 97.5th percentiles of the means of resampled episodes, with a fixed seed so
# the same scores always give the same interval.
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
# The feedback decoder plays a curriculum budget, to show that coarse feedback before the last submission
# does not decode the answer. These episodes are not standard.
AGENT_RESET_OVERRIDES: dict[str, dict[str, Any]] = {"feedback_decoder": {"max_submissions": 3}}
HELD_OUT_SECRET = "calibration-held-out"
# Agents that play the deep tier only (its expert, its shortcuts, the scan analyst and the parent reporter, which
# bets on abyss's twin credit): a default run, over every listed tier, leaves them out; `--difficulties deep
# --no-named-tasks --agents ...` runs them (lab/docs/calibration.md, the dial).
DEEP_ONLY_AGENTS = (
    "deep_expert",
    "one_dimension_expert",
    "short_segment_rule",
    "scan_analyst",
    "scan_analyst_3d",
    "scan_analyst_hourly",
    "parent_reporter",
)
# Agents that attack across resets: each episode they open more sessions on the same server and replay its
# settings there (the replay oracle reads the labels through graded feedback). A default run leaves them out;
# `--agents replay_oracle --held-out` runs them (lab/docs/calibration.md).
REPLAYING_AGENTS = ("replay_oracle",)
# Every other registered agent, in the order the published results list them (a default run writes them in this
# order, so it reproduces lab/artifacts/calibration.json byte for byte, whatever order the agents registered in).
LISTED_TIER_AGENTS = (
    "null",
    "random",
    "mass_generators",
    "mass_grid",
    "readme_baseline",
    "expert",
    "aggregate_only_expert",
    "fixed_rule",
    "top_k_dates",
    "next_date_padder",
    "top_k_dates_shift_aware",
    "top_k_dates_shift_checked",
    "shallow_reader",
    "side_effect_padder",
    "weekday_rule",
    "feedback_decoder",
    "scripted",
    "seed_replayer",
)


@dataclass(frozen=True)
class EpisodeSpec:
    group: str  # a difficulty, "null", or a named task id
    reset_kwargs: dict[str, Any]


def sweep(difficulty: str, seeds: int, first_offset: int = 0) -> list[EpisodeSpec]:
    """`seeds` episodes of one difficulty from `first_offset` (from 0, the first EVAL_SEEDS_PER_DIFFICULTY are the
    `eval` split's; see metric_tracker_rl.catalog.task_splits), grouped by difficulty with the null episodes apart."""
    episodes = (calibration_reset_kwargs(difficulty, offset) for offset in range(first_offset, first_offset + seeds))
    return [
        EpisodeSpec(NULL_GROUP if kwargs.get("scenario_family") == "null" else difficulty, kwargs)
        for kwargs in episodes
    ]


# The difficulties and named tasks the calibration table covers: the listed tiers of counts (the eval split holds the
# same episodes as episode_plan(seeds, NAMED_TASK_ORDER, DIFFICULTIES), with the named tasks added after its
# publication last). The warehouse, whose raw events these agents do not read, has a calibration of its own
# (lab/calibration/warehouse_calibration.py) with its own agents.
CALIBRATED_DIFFICULTIES = tuple(name for name in DIFFICULTIES if name in COUNT_DIFFICULTIES)
CALIBRATED_TASKS = tuple(
    task for task in DEFAULT_TASK_ORDER if get_task_spec(task).difficulty in CALIBRATED_DIFFICULTIES
)


def episode_plan(
    seeds: int,
    task_ids: tuple[str, ...] = CALIBRATED_TASKS,
    difficulties: tuple[str, ...] = CALIBRATED_DIFFICULTIES,
    first_offset: int = 0,
) -> list[EpisodeSpec]:
    named = [EpisodeSpec(task_id, {"task_id": task_id}) for task_id in task_ids]
    return named + [spec for difficulty in difficulties for spec in sweep(difficulty, seeds, first_offset)]


def null_group(difficulty: str) -> str:
    """The group of one tier's episodes that hold no incident."""
    return f"{difficulty} {NULL_GROUP}"


def episode_score(agent_name: str, spec: EpisodeSpec, held_out_secret: str = "") -> tuple[float, bool]:
    """The episode's score (the sum of its rewards) and whether the episode held any incident."""
    env = MetricTrackerRlEnvironment(held_out_secret=held_out_secret)
    reset_kwargs = {**spec.reset_kwargs, **AGENT_RESET_OVERRIDES.get(agent_name, {})}

    def another_session() -> EpisodeSession:
        """A new session on the server the episode runs on (for the agents that replay it)."""
        return EpisodeSession(MetricTrackerRlEnvironment(held_out_secret=held_out_secret))

    agent = make_agent(agent_name, **({"server": another_session} if agent_name in REPLAYING_AGENTS else {}))
    session = play(agent, EpisodeSession(env), **reset_kwargs)
    return session.score, bool(env.expected_row_count)


def mean_interval(values: np.ndarray) -> list[float]:
    """The 95% percentile bootstrap interval of the mean of `values` (episodes resampled with replacement)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = values[rng.integers(0, values.size, size=(BOOTSTRAP_RESAMPLES, values.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [float(low), float(high)]


def summarise(scores: Iterable[float]) -> dict[str, Any]:
    values = np.asarray(list(scores), dtype=float)
    return {
        "n": int(values.size),
        "mean": float(values.mean()),
        "p5": float(np.percentile(values, 5)),
        "min": float(values.min()),
        "share_ge_0_9": float((values >= 0.9).mean()),
        "mean_95": mean_interval(values),
    }


def _scored(job: tuple[str, EpisodeSpec, str]) -> tuple[float, bool]:
    return episode_score(*job)


def scored_in(
    agent_name: str, specs: list[EpisodeSpec], held_out_secret: str = "", workers: int = 1
) -> Iterator[tuple[float, bool]]:
    """episode_score of every spec, in order; with `workers` > 1 played in that many processes (each episode is
    its own seed's, so the scores are those of one process)."""
    jobs = [(agent_name, spec, held_out_secret) for spec in specs]
    if workers <= 1:
        yield from map(_scored, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_scored, jobs)


def calibrate(
    agent_names: list[str],
    seeds: int,
    progress: bool = True,
    held_out: bool = False,
    difficulties: tuple[str, ...] = CALIBRATED_DIFFICULTIES,
    task_ids: tuple[str, ...] = CALIBRATED_TASKS,
    workers: int = 1,
    first_offset: int = 0,
) -> dict[str, Any]:
    """Every agent over the plan (each difficulty's seeds from `first_offset`); with held_out, the in-process
    environment runs with a server-side secret. With `workers` > 1 the episodes run in that many processes (each
    episode is its own seed's, so the scores are the same as in one process, gathered in plan order)."""
    plan = episode_plan(seeds, task_ids, difficulties, first_offset)
    total = len(plan) * len(agent_names)
    secret = HELD_OUT_SECRET if held_out else ""
    results: dict[str, Any] = {
        "seeds_per_difficulty": seeds,
        "tasks": list(task_ids),
        "difficulties": list(difficulties),
        "first_offset": first_offset,
        "null_every": NULL_EVERY,
        "held_out": held_out,
        "reset_overrides": {name: AGENT_RESET_OVERRIDES[name] for name in agent_names if name in AGENT_RESET_OVERRIDES},
        "agents": {},
    }
    done = 0
    for agent_name in agent_names:
        scores: dict[str, list[float]] = {}
        for spec, (score, has_incidents) in zip(plan, scored_in(agent_name, plan, secret, workers), strict=True):
            group = spec.group if has_incidents or spec.group in task_ids else NULL_GROUP
            scores.setdefault(group, []).append(score)
            if group == NULL_GROUP:
                scores.setdefault(null_group(spec.reset_kwargs["difficulty"]), []).append(score)
            done += 1
            if progress and (done % 20 == 0 or done == total):
                print(f"\rcalibrating {agent_name:<16} {done}/{total} episodes", end="", file=sys.stderr, flush=True)
        results["agents"][agent_name] = {group: summarise(values) for group, values in scores.items()}
    if progress:
        print(file=sys.stderr)
    return results


def named_task_groups(results: dict[str, Any]) -> list[str]:
    """The named tasks a results file holds, in the order it ran them: its groups that are neither a difficulty
    nor the null group (a file written before "tasks" was recorded holds what DEFAULT_TASK_ORDER was then)."""
    if "tasks" in results:
        return list(results["tasks"])
    swept = {*results.get("difficulties", CALIBRATED_DIFFICULTIES), NULL_GROUP}
    first_agent = next(iter(results["agents"].values()))
    return [group for group in first_agent if group not in swept]


def _agent_label(results: dict[str, Any], agent_name: str) -> str:
    overrides = results.get("reset_overrides", {}).get(agent_name)
    label = agent_name + (" (held-out)" if results.get("held_out") else "")
    return label + (f" ({', '.join(f'{k}={v}' for k, v in overrides.items())}, non-standard)" if overrides else "")


def _spread(stats: dict[str, Any]) -> str:
    return f"{stats['mean']:.3f} / {stats['p5']:.3f} / {stats['min']:.3f}"


def _interval(stats: dict[str, Any]) -> str:
    """The mean with its 95% interval."""
    low, high = stats["mean_95"]
    return f"{stats['mean']:.3f} [{low:.3f}, {high:.3f}]"


def _null_cell(stats: dict[str, Any]) -> str:
    return f"{stats['mean']:.3f} / {stats['min']:.3f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


def _listed(results: dict[str, Any], agent_names: tuple[str, ...] | None) -> list[tuple[str, dict[str, Any]]]:
    return [(name, stats) for name, stats in results["agents"].items() if agent_names is None or name in agent_names]


def table(results: dict[str, Any], agent_names: tuple[str, ...] | None = None) -> str:
    """A Markdown table: named tasks (one episode each, under today's task id: a former id resolves), then the
    mean with its 95% interval and the p5 per difficulty; every agent of the results, or those listed."""
    difficulties = tuple(results.get("difficulties", CALIBRATED_DIFFICULTIES))
    named = named_task_groups(results)
    header = [
        "agent",
        *(get_task_spec(group).task_id for group in named),
        *(f"{d} mean [95% CI] / p5" for d in difficulties),
    ]
    rows = [
        [
            _agent_label(results, agent_name),
            *(f"{stats[group]['mean']:.3f}" for group in named),
            *(f"{_interval(stats[d])} / {stats[d]['p5']:.3f}" for d in difficulties),
        ]
        for agent_name, stats in _listed(results, agent_names)
    ]
    return markdown_table(header, rows)


def null_table(results: dict[str, Any], agent_names: tuple[str, ...] | None = None) -> str:
    """A Markdown table of each difficulty's null episodes (the right answer is an empty report): mean / min."""
    difficulties = tuple(results.get("difficulties", CALIBRATED_DIFFICULTIES))
    header = ["agent", *(f"{d} null mean / min" for d in difficulties)]
    rows = [
        [_agent_label(results, agent_name), *(_null_cell(stats[null_group(d)]) for d in difficulties)]
        for agent_name, stats in _listed(results, agent_names)
    ]
    return markdown_table(header, rows)


def difficulty_table(results: dict[str, Any], difficulty: str) -> str:
    """A Markdown table of one difficulty's sweep: the mean with its 95% interval, p5 / min, the share of episodes
    scored at least 0.9, and the difficulty's null episodes, per agent."""
    header = ["agent", f"{difficulty} mean [95% CI]", "p5 / min", "share >= 0.9", "null mean / min"]
    rows = [
        [
            _agent_label(results, agent_name),
            _interval(stats[difficulty]),
            f"{stats[difficulty]['p5']:.3f} / {stats[difficulty]['min']:.3f}",
            f"{stats[difficulty]['share_ge_0_9']:.3f}",
            _null_cell(stats[null_group(difficulty)]),
        ]
        for agent_name, stats in results["agents"].items()
    ]
    return markdown_table(header, rows)


def _beside(tuned: dict[str, Any], untuned: dict[str, Any]) -> str:
    """A tuned mean beside the untuned one with its interval; the mean once where both show the same figure."""
    if f"{tuned['mean']:.3f}" == f"{untuned['mean']:.3f}":
        return f"{tuned['mean']:.3f} (both)"
    return f"{tuned['mean']:.3f} → {_interval(untuned)}"


def untuned_table(results: dict[str, Any], nulls: bool = False) -> str:
    """A Markdown table of every agent's mean per difficulty on the eval seeds beside its mean on the untuned seeds
    (with the untuned mean's 95% interval): the incident episodes, or with `nulls` the null episodes."""
    untuned = results[UNTUNED]
    groups = [null_group(d) if nulls else d for d in untuned["difficulties"]]
    header = ["agent", *(f"{group} eval → untuned [95% CI]" for group in groups)]
    rows = [
        [_agent_label(results, name), *(_beside(results["agents"][name][group], stats[group]) for group in groups)]
        for name, stats in untuned["agents"].items()
    ]
    return markdown_table(header, rows)


# The shortcuts that skip the investigation, whose best per difficulty the README shows (lab/docs_blocks.py):
# the filter on the published magnitude ranges, then the exploits of the date ranking and of the feedback.
SHORTCUT_AGENTS = (
    "fixed_rule",
    "top_k_dates",
    "top_k_dates_shift_aware",
    "side_effect_padder",
    "weekday_rule",
    "feedback_decoder",
)
# The reference rows docs/evaluation.md shows until a model's results exist there.
EVALUATION_AGENTS = ("null", "random", "mass_generators", "mass_grid", "readme_baseline", "scripted", "expert")
# The agents the README's summary shows, most capable first.
SUMMARY_AGENTS = (
    "expert",
    "aggregate_only_expert",
    "fixed_rule",
    "shallow_reader",
    "scripted",
    "side_effect_padder",
    "top_k_dates_shift_aware",
    "weekday_rule",
    "feedback_decoder",
    "top_k_dates",
    "null",
)


def means_table(results: dict[str, Any], agent_names: tuple[str, ...] = SUMMARY_AGENTS) -> str:
    """A Markdown table of each listed agent's mean score per difficulty (the README's summary)."""
    difficulties = tuple(results.get("difficulties", CALIBRATED_DIFFICULTIES))
    rows = [
        [_agent_label(results, name), *(f"{results['agents'][name][d]['mean']:.3f}" for d in difficulties)]
        for name in agent_names
    ]
    return markdown_table(["agent", *difficulties], rows)


def rendered_tables(results: dict[str, Any]) -> dict[str, str]:
    """Every table the docs show from a results file, by what it shows."""
    tables = {
        "every agent": table(results),
        "null episodes": null_table(results),
        "summary (README)": means_table(results),
        "reference rows (docs/evaluation.md)": table(results, EVALUATION_AGENTS),
        "reference rows' null episodes (docs/evaluation.md)": null_table(results, EVALUATION_AGENTS),
    }
    for difficulty in results.get("difficulties", CALIBRATED_DIFFICULTIES):
        tables[f"the {difficulty} sweep"] = difficulty_table(results, difficulty)
    if UNTUNED in results:
        tables["eval and untuned seeds"] = untuned_table(results)
        tables["eval and untuned seeds, null episodes"] = untuned_table(results, nulls=True)
    return tables


def merge_problem(
    previous: dict[str, Any] | None, agent_names: list[str], held_out: bool, sweep_seeds: int | None
) -> str | None:
    """Why a run of `agent_names` (sweeping `sweep_seeds` per difficulty, None: no sweep) cannot be merged into the
    results `previous`, or None when it can."""
    if previous is None:
        return "--merge adds to an existing results file: --output names none"
    if set(agent_names) != set(previous["agents"]):
        return f"--merge needs the agents of the file: --agents {','.join(previous['agents'])}"
    if bool(previous.get("held_out")) != held_out:
        return "--merge needs the file's mode: --held-out " + ("set" if previous.get("held_out") else "unset")
    if sweep_seeds is not None and sweep_seeds != previous["seeds_per_difficulty"]:
        return f"--merge needs the file's sweep: --seeds {previous['seeds_per_difficulty']} (or --no-sweep)"
    return None


def merged(previous: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """`previous` with each agent's groups of `run` written over it: a named task or a difficulty the run played
    replaces that group or joins it (named tasks in DEFAULT_TASK_ORDER, then any others in the file's order)."""
    tasks = [*previous.get("tasks", []), *(name for name in run["tasks"] if name not in previous.get("tasks", []))]
    order = {name: index for index, name in enumerate(DEFAULT_TASK_ORDER)}
    tasks.sort(key=lambda name: order.get(name, len(order)))
    difficulties = [*previous["difficulties"], *(d for d in run["difficulties"] if d not in previous["difficulties"])]
    agents = {}
    for name, stats in previous["agents"].items():
        fresh = run["agents"][name]
        # A sweep's null group pools every swept tier: it is replaced only by a run that swept every one.
        keep_null = set(run["difficulties"]) != set(difficulties)
        updated = {**stats, **{group: value for group, value in fresh.items() if group != NULL_GROUP or not keep_null}}
        agents[name] = {group: updated[group] for group in (*tasks, *(g for g in updated if g not in tasks))}
    return {**previous, "tasks": tasks, "difficulties": difficulties, "agents": agents}


def kept_with(previous: dict[str, Any], run: dict[str, Any], untuned: bool) -> dict[str, Any]:
    """The results file `previous` with `run` merged in: into its eval-split figures, or with `untuned` into its
    untuned entry (which the run starts if the file has none)."""
    if not untuned:
        return merged(previous, run)
    return {**previous, UNTUNED: merged(previous[UNTUNED], run) if UNTUNED in previous else run}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, default=200, help=f"episodes per difficulty (one in every {NULL_EVERY} is a null episode)"
    )
    parser.add_argument("--agents", default=",".join(LISTED_TIER_AGENTS), help="comma-separated agent names")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument(
        "--difficulties", default=",".join(CALIBRATED_DIFFICULTIES), help="comma-separated difficulties to sweep"
    )
    parser.add_argument("--held-out", action="store_true", help="run the environment with a held-out secret")
    parser.add_argument(
        "--no-named-tasks", action="store_true", help="sweep the difficulties only (deep's own agents' calibration)"
    )
    parser.add_argument(
        "--tasks",
        default=",".join(CALIBRATED_TASKS),
        help="comma-separated named tasks to play (default: every one at the calibrated tiers)",
    )
    parser.add_argument("--no-sweep", action="store_true", help="play the named tasks only, no seed sweep")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="add this run's groups to the results file at --output "
        "(its agents must be the file's, in held-out mode or not as the file): a new named task's "
        "figures without a new sweep",
    )
    parser.add_argument(
        "--untuned",
        action="store_true",
        help="sweep each difficulty's untuned seeds (offsets "
        f"{UNTUNED_FIRST_OFFSET} on, which tuned nothing), no named task; with --merge, kept under the "
        f"file's {UNTUNED!r} entry beside its eval-split figures",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes that play episodes (the machine's cores; the scores do not depend on it)",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS",
        help="print the tables of a results file (lab/artifacts/calibration.json); run nothing",
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        for title, rendered in rendered_tables(json.loads(args.render.read_text())).items():
            print(f"{title}:\n\n{rendered}\n")
        return
    agent_names = [name.strip() for name in args.agents.split(",") if name.strip()]
    unknown = [name for name in agent_names if name not in known_agents()]
    if unknown:
        parser.error(f"unknown agent(s) {', '.join(unknown)}; valid: {', '.join(known_agents())}")
    difficulties = tuple(name.strip() for name in args.difficulties.split(",") if name.strip())
    wrong = [name for name in difficulties if name not in RESET_DIFFICULTIES]
    if wrong or not difficulties:
        parser.error(f"unknown difficulty {', '.join(wrong) or '(none given)'}; valid: {', '.join(RESET_DIFFICULTIES)}")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.seeds < NULL_EVERY:
        parser.error(f"--seeds must be at least {NULL_EVERY} so every group has episodes")
    try:
        task_ids = (
            ()
            if args.no_named_tasks or args.untuned
            else tuple(get_task_spec(name.strip()).task_id for name in args.tasks.split(",") if name.strip())
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.no_sweep:
        if args.untuned:
            parser.error("--untuned sweeps the untuned seeds: it plays no named task, so not with --no-sweep")
        difficulties = ()
        if not task_ids:
            parser.error("--no-sweep plays the named tasks only: name some with --tasks")
    previous = json.loads(args.output.read_text()) if args.merge and args.output.exists() else None
    if args.merge:
        problem = merge_problem(previous, agent_names, args.held_out, None if args.no_sweep else args.seeds)
        if problem:
            parser.error(problem)
    run = calibrate(
        agent_names,
        args.seeds,
        progress=not args.quiet,
        held_out=args.held_out,
        difficulties=difficulties,
        task_ids=task_ids,
        workers=args.workers,
        first_offset=UNTUNED_FIRST_OFFSET if args.untuned else 0,
    )
    results = run if previous is None else kept_with(previous, run, args.untuned)
    results["tiers"] = {difficulty: tier_record(difficulty) for difficulty in results["difficulties"]}
    print(
        f"Calibration over {args.seeds} seeds per difficulty (standard episodes, one graded submission, unless "
        f"marked; one in every {NULL_EVERY} episodes null){'; held-out mode' if args.held_out else ''}"
        f"{'; the untuned seeds' if args.untuned else ''}; score = the sum of the episode's rewards.\n"
    )
    print(table(run))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
