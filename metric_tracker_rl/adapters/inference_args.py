"""inference.py's command line: its flags, and the episodes and agent they choose, every one checked before anything
starts (a usage error is one line and exit status 2). Only light modules are imported here, so `--help` and a usage
error answer at once: the client, the agents, the model API and the server come later, in inference.py."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from pydantic import AliasChoices

from metric_tracker_rl import DEFAULT_TASK_ORDER, get_task_spec
from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.catalog.reference_agents import REFERENCE_AGENTS, agent_plays, cannot_play
from metric_tracker_rl.catalog.task_splits import TRAIN_SEED_BASE, get_split
from metric_tracker_rl.catalog.tasks import (
    DIAL_KNOBS,
    MAGNITUDE_SCALE_RANGE,
    MAX_CONCURRENCY,
    MAX_CUBOID_DEPTH,
    MAX_DECOY_RATIO,
    knob_value,
    resolve_episode_config,
)
from metric_tracker_rl.catalog.tier_episodes import episode_label, labelled_episode, tier_episodes
from metric_tracker_rl.catalog.validation import check_name_in_any_case
from metric_tracker_rl.settings import DEFAULT_API_BASE_URL, ClientSettings


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to run: its label in the log and its reset settings."""

    label: str
    reset_kwargs: dict[str, Any]


def named_episodes(chosen: list[dict[str, Any]], seed: int | None) -> list[EpisodeSpec]:
    """The chosen episodes (named tasks' or a tier's reset arguments), each with `seed` when one is given."""
    episodes = [episode if seed is None else {**episode, "seed": seed} for episode in chosen]
    return [EpisodeSpec(episode_label(episode), episode) for episode in episodes]


def training_episodes(count: int, first_task: int, difficulties: tuple[str, ...] | None = None) -> list[EpisodeSpec]:
    """`count` tasks of the Task API's train split (an SFT data set) from task `first_task` on: every one, or only
    those at `difficulties`. A ValueError says when the split holds fewer."""
    split = get_split("train")
    tasks: list[dict[str, Any]] = []
    for index in range(first_task, split.size()):
        if len(tasks) == count:
            break
        task = split.task(index)
        if difficulties is None or task["difficulty"] in difficulties:
            tasks.append(task)
    if len(tasks) < count:
        where = f" at {', '.join(difficulties)}" if difficulties else ""
        raise ValueError(
            f"the train split holds {len(tasks)} task(s){where} from task {first_task} on, not "
            f"{count}: lower --episodes or --first-task"
        )
    return [EpisodeSpec(episode_label(task), task) for task in tasks]


def settings_help() -> str:
    """Each environment variable the client reads, with what it sets (the epilog of --help)."""
    lines = [
        f"  {' / '.join(_variable_names(field.validation_alias)):<44} {field.description}"
        for name, field in ClientSettings.model_fields.items()
        if name != "reset_defaults"
    ]
    return "environment variables (docs/settings.md):\n" + "\n".join(lines)


def _variable_names(alias: object) -> list[str]:
    """The environment variables a setting reads, in the order it tries them."""
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [str(alias)]


class UsageParser(argparse.ArgumentParser):
    """A usage error is one line on stderr and exit status 2 (`--help` shows the usage): a bad value is answered
    before anything starts, and a script reading stderr gets the reason alone."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (--help lists the flags)\n")


def build_parser(settings: ClientSettings) -> UsageParser:
    parser = UsageParser(
        prog="inference.py",
        description="Run the metric_tracker_rl baseline on the named tasks.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--agent",
        default=None,
        help="llm, scripted or expert (any registered agent name works); "
        "default: llm when an API key is set, else scripted",
    )
    parser.add_argument(
        "--tasks",
        default=None,
        help=f"comma-separated task ids or episodes as the log names them, <difficulty>_<seed> (default: every "
        f"named task, {','.join(DEFAULT_TASK_ORDER)}, or those at --difficulty)",
    )
    parser.add_argument(
        "--difficulty",
        default=None,
        help=f"comma-separated difficulties ({', '.join(DIFFICULTIES)}): the named tasks at them (at "
        "a tier with none, the first episode of its eval sweep), or with --episodes the train "
        "split's tasks at them",
    )
    add_knob_flags(parser)
    parser.add_argument("--seed", type=int, default=None, help="override the seed of every task")
    parser.add_argument(
        "--tier-version",
        type=int,
        default=None,
        help="play this version of each episode's tier (docs/versions.md); default: each tier's latest, and a train "
        "task its own",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="the loopback port of the server this run starts, in "
        "this process or in a container (default: a free one); ignored with METRIC_TRACKER_URL",
    )
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON to this file")
    parser.add_argument(
        "--trajectories",
        type=Path,
        default=None,
        help="directory for <agent>.jsonl: one SFT-ready chat record per episode",
    )
    parser.add_argument(
        "--transcripts",
        type=Path,
        default=None,
        help="directory for <task>.json: each episode's calls and the texts read, which "
        "`python -m lab.calibration.replay DIR` replays",
    )
    parser.add_argument(
        "--episodes",
        type=int,
        default=None,
        help="run this many tasks of the Task API's train split instead of the named tasks, with a progress bar",
    )
    parser.add_argument(
        "--first-task",
        type=int,
        default=None,
        help=f"with --episodes, the train split's first task (default 0; --seed {TRAIN_SEED_BASE} + N means task N)",
    )
    return parser


def add_knob_flags(parser: argparse.ArgumentParser) -> None:
    knobs = parser.add_argument_group(
        "dial knobs",
        "reset's arguments of the same names, set on every episode "
        "played (the episodes are then not standard); reset refuses a knob at a tier "
        "where it does not apply",
    )
    knobs.add_argument(
        "--incident-kinds",
        dest="incident_kinds",
        metavar="A,B",
        help="comma-separated incident kinds the episodes draw from (segmented tiers; default: all)",
    )
    knobs.add_argument(
        "--decoy-ratio",
        dest="decoy_ratio",
        metavar="FLOAT",
        help=f"benign look-alikes per incident, 0 to {MAX_DECOY_RATIO:g} (segmented tiers)",
    )
    knobs.add_argument(
        "--dimensions",
        dest="dimensions",
        metavar="A,B",
        help="comma-separated dimensions a root cause may name, platform among them (cuboid tiers)",
    )
    knobs.add_argument(
        "--max-cuboid-depth",
        dest="max_cuboid_depth",
        metavar="INT",
        help=f"the most dimensions a root cause names, 1 to {MAX_CUBOID_DEPTH} (cuboid tiers)",
    )
    knobs.add_argument(
        "--magnitude-scale",
        dest="magnitude_scale",
        metavar="FLOAT",
        help=f"every incident kind's magnitude range times this, {MAGNITUDE_SCALE_RANGE[0]:g} to "
        f"{MAGNITUDE_SCALE_RANGE[1]:g} (cuboid tiers)",
    )
    knobs.add_argument(
        "--concurrency",
        dest="concurrency",
        metavar="INT",
        help=f"dates carrying a second incident in an overlapping cuboid, 0 to {MAX_CONCURRENCY} (cuboid tiers)",
    )
    knobs.add_argument(
        "--note-share",
        dest="note_share",
        metavar="FLOAT",
        help="the share of partner payment failures with a partner_status notice, 0 to 1 (tiers with context tables)",
    )


def parse_args(argv: list[str] | None, settings: ClientSettings) -> argparse.Namespace:
    """The run's arguments, every one checked before anything starts: each episode's reset arguments as reset checks
    them (a seed out of range, a knob at a tier that does not take it) and the agent's name. A bad value is a
    usage error (one line, exit status 2)."""
    parser = build_parser(settings)
    args = parser.parse_args(argv)
    try:
        if not 0 <= args.port <= 65535:
            raise ValueError(f"--port must be between 0 (a free port) and 65535, not {args.port}")
        args.agent = chosen_agent(args.agent, settings)
        flagged = args.tasks is not None or args.difficulty is not None or args.episodes is not None
        args.episode_specs = played(args.agent, checked(chosen_episodes(args)), flagged)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def chosen_episodes(args: argparse.Namespace) -> list[EpisodeSpec]:
    """The episodes the flags ask for, with the dial knobs set; a ValueError says what is wrong."""
    difficulties = (
        None
        if args.difficulty is None
        else tuple(
            check_name_in_any_case("difficulty", name.strip(), DIFFICULTIES)
            for name in args.difficulty.split(",")
            if name.strip()
        )
    )
    if difficulties == ():
        raise ValueError(f"--difficulty names no difficulty; valid: {', '.join(DIFFICULTIES)}")
    knobs = {name: knob_value(name, getattr(args, name)) for name in DIAL_KNOBS if getattr(args, name) is not None}
    if args.tier_version is not None:
        knobs["version"] = args.tier_version
    if args.episodes is None:
        episodes = named_episodes(chosen_tasks(args.tasks, difficulties), args.seed)
    elif args.tasks is not None:
        raise ValueError("--episodes plays the train split's tasks instead of named ones: drop --tasks")
    elif args.episodes < 1:
        raise ValueError("--episodes must be at least 1")
    else:
        first = args.first_task if args.first_task is not None else (args.seed or TRAIN_SEED_BASE) - TRAIN_SEED_BASE
        if first < 0 or first + args.episodes > get_split("train").size():
            raise ValueError(
                f"--episodes takes tasks 0 to {get_split('train').size() - 1} of the train split: set "
                f"--first-task (or --seed from {TRAIN_SEED_BASE})"
            )
        episodes = training_episodes(args.episodes, first, difficulties)
    return [EpisodeSpec(e.label, {**e.reset_kwargs, **knobs}) for e in episodes]


def checked(episodes: list[EpisodeSpec]) -> list[EpisodeSpec]:
    """The episodes, each of whose reset arguments reset accepts; a ValueError names the episode and what is
    wrong (a seed out of range, a knob its tier does not take)."""
    for episode in episodes:
        try:
            resolve_episode_config(**episode.reset_kwargs)
        except ValueError as exc:
            raise ValueError(f"{episode.label}: {exc}") from None
    return episodes


def chosen_agent(agent: str | None, settings: ClientSettings) -> str:
    """The agent to run (default: llm when a model is asked for, else scripted), checked against the reference
    agents' names without importing them."""
    agent = agent or ("llm" if settings.model_requested() else "scripted")
    if agent == "llm" and not settings.api_key and settings.api_base_url == DEFAULT_API_BASE_URL:
        raise ValueError(
            f"--agent llm needs a key in API_KEY, HF_TOKEN or OPENAI_API_KEY for "
            f"{DEFAULT_API_BASE_URL}; a local endpoint needs none: set API_BASE_URL (e.g. "
            "http://127.0.0.1:8001/v1) and MODEL_NAME"
        )
    if agent != "llm" and agent not in REFERENCE_AGENTS:
        raise ValueError(
            f"agent {agent!r} is not available in this checkout; valid: llm, {', '.join(REFERENCE_AGENTS)}"
        )
    return agent


def success_threshold(episode: EpisodeSpec, settings: ClientSettings) -> float:
    """The score the episode's [END] line calls a success: SUCCESS_THRESHOLD where it is set, else its tier's."""
    if settings.success_threshold is not None:
        return settings.success_threshold
    return resolve_episode_config(**episode.reset_kwargs).tier.success_threshold


def played(agent: str, episodes: list[EpisodeSpec], flagged: bool) -> list[EpisodeSpec]:
    """The episodes the agent plays. An episode the flags ask for (--tasks, --difficulty, --episodes: `flagged`)
    at a tier the agent cannot play is a ValueError naming the agents that can (the scripted agent at a tier of
    raw events would submit an empty report and score 0); the default tasks are those of the tiers it plays."""
    kept = []
    for episode in episodes:
        difficulty = resolve_episode_config(**episode.reset_kwargs).difficulty
        if agent_plays(agent, difficulty):
            kept.append(episode)
        elif flagged:
            raise ValueError(f"{episode.label}: {cannot_play(agent, difficulty)}")
    return kept


def chosen_tasks(tasks: str | None, difficulties: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """The reset arguments of the episodes to play: those `tasks` lists, by the names the log prints (a named task,
    or `<difficulty>_<seed>`; each at one of `difficulties`, when given), else every named task, or the episodes of
    each of `difficulties` (`tier_episodes`: a tier with no named task plays the first episode of its eval sweep).
    A ValueError names the valid choices."""
    if tasks is None:
        if difficulties is None:
            return [{"task_id": task_id} for task_id in DEFAULT_TASK_ORDER]
        return [episode for difficulty in difficulties for episode in tier_episodes(difficulty)]
    chosen = [labelled_episode(name.strip()) for name in tasks.split(",") if name.strip()]
    for episode in chosen:
        difficulty = get_task_spec(episode["task_id"]).difficulty if "task_id" in episode else episode["difficulty"]
        if difficulties is not None and difficulty not in difficulties:
            raise ValueError(
                f"task {episode_label(episode)} is at difficulty {difficulty}, not {', '.join(difficulties)}: drop "
                "--difficulty, or name its tasks"
            )
    return chosen
