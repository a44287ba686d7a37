"""GRPO on the environment with TRL: `GRPOTrainer(environment_factory=MetricTrackerToolEnv)`.

Start the server first (`MAX_CONCURRENT_ENVS` at least the completions generated at once), then:

    uv sync --inexact --group train
    METRIC_TRACKER_URL=http://127.0.0.1:8000 uv run python -m training.grpo --model Qwen/Qwen3-1.7B

The data set is the Task API's train split (`reset(split="train", index=i)`), which shares no episode with the eval
split. `tests/test_trl_training.py` runs this module's functions for two steps on the CPU with a tiny model.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from metric_tracker_rl.catalog.tiers import DEFAULT_COMPLETION_TOKENS, TIERS

if TYPE_CHECKING:  # imported where they are used: the train group and OpenEnv take seconds to import
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase
    from trl import GRPOConfig, GRPOTrainer

MODEL = "Qwen/Qwen3-1.7B"


def completion_tokens(difficulty: str) -> int:
    """The completion length an episode of `difficulty` needs: its tier's (catalog/tiers.py)."""
    return TIERS[difficulty].completion_tokens


def tasks_completion_tokens(start: int, count: int) -> int:
    """The completion length of train tasks `start` .. `start + count`: the longest any of their tiers needs."""
    from metric_tracker_rl.catalog.task_splits import train_task

    return max(
        completion_tokens(difficulty)
        for difficulty in {train_task(index)["difficulty"] for index in range(start, start + count)}
    )


def grpo_dataset(count: int, start: int = 0) -> Dataset:
    """Rows `start` .. `start + count` of the train split: each row resets its episode by split and index. TRL
    appends the brief that reset() returns to the last prompt message, so the user turn is the brief alone, as
    in the SFT records `inference.py --trajectories` writes."""
    from datasets import Dataset

    from metric_tracker_rl.catalog.task_splits import get_split
    from metric_tracker_rl.view.prompt import system_prompt

    size = get_split("train").size()
    if not 0 <= start < start + count <= size:
        raise ValueError(f"the train split has tasks 0 to {size - 1}; asked for {start} to {start + count - 1}")

    def prompt(index: int) -> list[dict[str, str]]:  # the system prompt of the task's tier
        difficulty = get_split("train").task(index)["difficulty"]
        return [{"role": "system", "content": system_prompt(difficulty)}, {"role": "user", "content": ""}]

    return Dataset.from_list(
        [{"prompt": prompt(index), "split": "train", "index": index} for index in range(start, start + count)]
    )


def tier_tasks(difficulty: str) -> range:
    """The train split's tasks of one tier: the block of its own (every tier listed after the first block has one),
    the last where it has several (a later version's, the audit's second)."""
    from metric_tracker_rl.catalog.task_splits import TRAIN_SCHEDULE

    first, found = 0, None
    for block in TRAIN_SCHEDULE:
        if block.difficulties == (difficulty,):
            found = range(first, first + block.count)
        first += block.count
    if found is not None:
        return found
    raise ValueError(f"{difficulty!r} has no train block of its own; tiers that have one: {', '.join(own_blocks())}")


def own_blocks() -> list[str]:
    """The tiers with a train block of their own: those listed after the first block."""
    from metric_tracker_rl.catalog.task_splits import TRAIN_SCHEDULE

    return list(dict.fromkeys(block.difficulties[0] for block in TRAIN_SCHEDULE if len(block.difficulties) == 1))


def grpo_config(output_dir: str, **overrides: Any) -> GRPOConfig:
    """The run's settings for one GPU; the command line's flags and the CPU smoke test override them."""
    from trl import GRPOConfig

    settings: dict[str, Any] = dict(
        output_dir=output_dir,
        per_device_train_batch_size=8,  # completions per device and micro-step
        gradient_accumulation_steps=8,  # one generation batch: 8 x 8 = 64 completions,
        num_generations=8,  # i.e. 8 prompts x 8 rollouts: MAX_CONCURRENT_ENVS >= 64
        max_completion_length=DEFAULT_COMPLETION_TOKENS,  # the whole multi-turn episode (see below)
        chat_template_kwargs={"enable_thinking": False},
        learning_rate=1e-6,
        bf16=True,
        activation_checkpointing=True,  # TRL's default, set under transformers 5's name
        use_vllm=True,
        vllm_mode="colocate",
        logging_steps=1,
        log_completions=False,  # --log-completions: a table of every completion per step
        report_to="none",
    )
    return GRPOConfig(**{**settings, **overrides})


def grpo_trainer(
    model: str | PreTrainedModel,
    args: GRPOConfig,
    dataset: Dataset,
    processing_class: PreTrainedTokenizerBase | None = None,
    tier: str | None = None,
) -> GRPOTrainer:
    """The trainer: the environment class is the tool set and, through get_reward(), the only reward. With a
    `tier`, the class of that tier's own tools (every task of the data set must be at it)."""
    from trl import GRPOTrainer

    from metric_tracker_rl.adapters.trl import MetricTrackerToolEnv

    environment = MetricTrackerToolEnv if tier is None else MetricTrackerToolEnv.for_tier(tier)
    return GRPOTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=processing_class,
        environment_factory=environment,
    )


GENERATION = {  # --generation: how completions are generated
    "vllm-colocate": {"use_vllm": True, "vllm_mode": "colocate"},  # vLLM on the training GPU
    "vllm-server": {"use_vllm": True, "vllm_mode": "server"},  # a `trl vllm-serve` on another GPU
    "transformers": {"use_vllm": False},  # plain generate(): slow, needs no vLLM
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--model", default=MODEL, help="a Hugging Face model id or a local directory")
    parser.add_argument("--tasks", type=int, default=2000, help="train-split tasks to train on")
    parser.add_argument(
        "--start",
        type=int,
        default=None,
        help="the first train-split task (default: 0, or the first of --tier's block)",
    )
    parser.add_argument(
        "--tier",
        default=None,
        help="train one tier with its own tools, on its (latest version's) block of the train "
        f"split (a tier listed after the first block: {', '.join(own_blocks())})",
    )
    parser.add_argument("--output-dir", default="runs/grpo", help="checkpoints and logs")
    parser.add_argument("--steps", type=int, default=-1, help="optimizer steps; -1: one pass over the tasks")
    parser.add_argument("--batch-size", type=int, default=8, help="completions per device and micro-step")
    parser.add_argument("--gradient-accumulation", type=int, default=8, help="micro-steps per optimizer step")
    parser.add_argument("--num-generations", type=int, default=8, help="rollouts per prompt (the GRPO group)")
    parser.add_argument(
        "--max-completion-length",
        type=int,
        default=0,
        help="tokens of a whole episode after the prompt; 0: what the tasks' tiers need ("
        + ", ".join(
            f"{tier.name} {tier.completion_tokens}"
            for tier in TIERS.values()
            if tier.completion_tokens != DEFAULT_COMPLETION_TOKENS
        )
        + f", every other {DEFAULT_COMPLETION_TOKENS})",
    )
    parser.add_argument("--learning-rate", type=float, default=1e-6, help="the optimizer's step size")
    parser.add_argument(
        "--generation",
        choices=sorted(GENERATION),
        default=None,
        help="how completions are generated (default: vllm-colocate; transformers with --cpu)",
    )
    parser.add_argument("--cpu", action="store_true", help="train on the CPU: float32, generation by transformers")
    parser.add_argument(
        "--log-completions",
        action="store_true",
        help="log every completion of each step as a table (long: a whole episode per row)",
    )
    args = parser.parse_args(argv)
    if args.cpu and args.generation not in (None, "transformers"):
        parser.error(f"--cpu generates with transformers; --generation {args.generation} needs a GPU")
    args.generation = args.generation or ("transformers" if args.cpu else "vllm-colocate")
    if args.tasks < 1 or args.max_completion_length < 0:
        parser.error("--tasks must be at least 1 and --max-completion-length at least 0")
    try:
        args.start = args.start if args.start is not None else tier_tasks(args.tier).start if args.tier else 0
        args.max_completion_length = args.max_completion_length or tasks_completion_tokens(args.start, args.tasks)
    except (ValueError, IndexError) as error:  # an unknown tier, or tasks beyond the train split
        parser.error(str(error))
    return args


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """What the flags change in grpo_config's settings."""
    overrides: dict[str, Any] = {
        "max_steps": args.steps,
        "per_device_train_batch_size": args.batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation,
        "num_generations": args.num_generations,
        "max_completion_length": args.max_completion_length,
        "learning_rate": args.learning_rate,
        "log_completions": args.log_completions,
        **GENERATION[args.generation],
    }
    if args.cpu:
        overrides.update(use_cpu=True, bf16=False)
    return overrides


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from training import require_train_group

    require_train_group()
    config = grpo_config(args.output_dir, **config_overrides(args))
    grpo_trainer(args.model, config, grpo_dataset(args.tasks, args.start), tier=args.tier).train()


if __name__ == "__main__":
    main()
