"""GRPO on the environment with TRL: `GRPOTrainer(environment_factory=MetricTrackerToolEnv)`.

Start the server first (`MAX_CONCURRENT_ENVS` at least the completions generated at once), then:

    uv sync --group train
    METRIC_TRACKER_URL=http://127.0.0.1:8000 uv run python -m training.grpo --model Qwen/Qwen3-1.7B

The data set is the Task API's train split (`reset(split="train", index=i)`), which shares no episode with the eval
split. `tests/test_trl_training.py` runs this module's functions for two steps on the CPU with a tiny model.
"""

from __future__ import annotations

import argparse
from typing import Any

from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from trl import GRPOConfig, GRPOTrainer

from metric_tracker_rl.task_splits import get_split
from metric_tracker_rl.tool_calls import SYSTEM_PROMPT
from metric_tracker_rl.tool_env import MetricTrackerToolEnv

MODEL = "Qwen/Qwen3-1.7B"


def grpo_dataset(count: int, start: int = 0) -> Dataset:
    """Rows `start` .. `start + count` of the train split: each row resets its episode by split and index. TRL
    appends the brief that reset() returns to the last prompt message, so the user turn is the brief alone, as
    in the SFT records `inference.py --trajectories` writes."""
    size = get_split("train").size()
    if not 0 <= start < start + count <= size:
        raise ValueError(f"the train split has tasks 0 to {size - 1}; asked for {start} to {start + count - 1}")
    prompt = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": ""}]
    return Dataset.from_list([{"prompt": prompt, "split": "train", "index": index}
                              for index in range(start, start + count)])


def grpo_config(output_dir: str, **overrides: Any) -> GRPOConfig:
    """The run's settings for one GPU; the CPU smoke test overrides sizes, steps and the generation backend."""
    settings: dict[str, Any] = dict(
        output_dir=output_dir,
        per_device_train_batch_size=8,          # completions per device and micro-step
        gradient_accumulation_steps=8,          # one generation batch: 8 x 8 = 64 completions,
        num_generations=8,                      # i.e. 8 prompts x 8 rollouts: MAX_CONCURRENT_ENVS >= 64
        max_completion_length=16384,            # the whole multi-turn episode (see below)
        chat_template_kwargs={"enable_thinking": False},
        learning_rate=1e-6,
        bf16=True,
        activation_checkpointing=True,          # TRL's default, set under transformers 5's name
        use_vllm=True,
        vllm_mode="colocate",
        logging_steps=1,
        log_completions=True,
        report_to="none",
    )
    return GRPOConfig(**{**settings, **overrides})


def grpo_trainer(model: str | PreTrainedModel, args: GRPOConfig, dataset: Dataset,
                 processing_class: PreTrainedTokenizerBase | None = None) -> GRPOTrainer:
    """The trainer: the environment class is the tool set and, through get_reward(), the only reward."""
    return GRPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=processing_class,
                       environment_factory=MetricTrackerToolEnv)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--tasks", type=int, default=2000, help="train-split tasks to train on, from index 0")
    parser.add_argument("--output-dir", default="runs/grpo")
    args = parser.parse_args(argv)
    grpo_trainer(args.model, grpo_config(args.output_dir), grpo_dataset(args.tasks)).train()


if __name__ == "__main__":
    main()
