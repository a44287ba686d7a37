"""SFT with TRL on the chat records `inference.py --trajectories DIR` writes (one `DIR/<agent>.jsonl` per agent).

    uv run inference.py --agent expert --episodes 1000 --seed 1000000 --trajectories data/
    uv sync --group train
    uv run python -m training.sft data/expert.jsonl --model Qwen/Qwen3-1.7B

Only the assistant turns (the tool calls) are trained: tool results and prompts are masked out of the loss
(`assistant_only_loss`, through TRL's training chat template for the family). `tests/test_trl_training.py` runs
this module's functions for two steps on the CPU with a tiny model.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from datasets import Dataset, load_dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from trl import SFTConfig, SFTTrainer

MODEL = "Qwen/Qwen3-1.7B"


def sft_dataset(paths: Sequence[str], min_score: float = 0.0) -> Dataset:
    """The records of `paths` scoring at least `min_score`, as TRL's conversational format (messages, tools)."""
    records = load_dataset("json", data_files=list(paths), split="train")
    return records.filter(lambda record: record["score"] >= min_score).select_columns(["messages", "tools"])


def sft_config(output_dir: str, **overrides: Any) -> SFTConfig:
    """The run's settings for one GPU; the CPU smoke test overrides sizes and steps."""
    settings: dict[str, Any] = dict(
        output_dir=output_dir,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=16,
        num_train_epochs=2,
        max_length=32768,                       # no episode is cut: a longer one fails loudly instead
        assistant_only_loss=True,
        learning_rate=1e-5,
        bf16=True,
        gradient_checkpointing=True,
        logging_steps=1,
        report_to="none",
    )
    return SFTConfig(**{**settings, **overrides})


def sft_trainer(model: str | PreTrainedModel, args: SFTConfig, dataset: Dataset,
                processing_class: PreTrainedTokenizerBase | None = None) -> SFTTrainer:
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processing_class)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", nargs="+", help="trajectory files (inference.py --trajectories)")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--min-score", type=float, default=0.95, help="train only on episodes scoring this or more")
    parser.add_argument("--output-dir", default="runs/sft")
    args = parser.parse_args(argv)
    sft_trainer(args.model, sft_config(args.output_dir), sft_dataset(args.records, args.min_score)).train()


if __name__ == "__main__":
    main()
