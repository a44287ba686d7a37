"""SFT with TRL on the chat records `inference.py --trajectories DIR` writes (one `DIR/<agent>.jsonl` per agent).

    uv run inference.py --agent expert --episodes 1000 --seed 1000000 --trajectories data/
    uv sync --inexact --group train
    uv run python -m training.sft data/expert.jsonl --model Qwen/Qwen3-1.7B

Only the assistant turns (the tool calls) are trained: tool results and prompts are masked out of the loss
(`assistant_only_loss`, through TRL's training chat template for the family). `tests/test_trl_training.py` runs
this module's functions for two steps on the CPU with a tiny model.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from metric_tracker_rl.catalog.tiers import TIERS

if TYPE_CHECKING:  # imported where they are used (the train group, slow to import)
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase
    from trl import SFTConfig, SFTTrainer

MODEL = "Qwen/Qwen3-1.7B"
# Tokens of a record: the longest episode any tier trains on (every tier's expert records fit:
# lab/tests/test_episode_tokens.py).
MAX_LENGTH = max(tier.completion_tokens for tier in TIERS.values())


def _arguments_as_text(message: dict[str, Any]) -> dict[str, Any]:
    calls = [
        {**call, "function": {**call["function"], "arguments": json.dumps(call["function"]["arguments"])}}
        if not isinstance(call["function"]["arguments"], str)
        else call
        for call in message.get("tool_calls", [])
    ]
    return {**message, "tool_calls": calls} if calls else message


def sft_dataset(paths: Sequence[str], min_score: float = 0.0) -> Dataset:
    """The records of `paths` scoring at least `min_score`, as TRL's conversational format (messages, tools).

    Tool-call arguments become their JSON text, which the chat template writes as it is: the `datasets` JSON type
    keeps numbers to 10 significant digits, so dict arguments would train the model on values other than the
    ones the episode submitted."""
    from datasets import Dataset, Features, Json, List

    records = []
    for path in paths:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                if (record["score"] or 0.0) >= min_score:
                    records.append(
                        {"messages": [_arguments_as_text(m) for m in record["messages"]], "tools": record["tools"]}
                    )
    return Dataset.from_list(records, features=Features({"messages": List(Json()), "tools": List(Json())}))


def sft_config(output_dir: str, **overrides: Any) -> SFTConfig:
    """The run's settings for one GPU; the command line's flags and the CPU smoke test override them."""
    from trl import SFTConfig

    settings: dict[str, Any] = dict(
        output_dir=output_dir,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=16,
        num_train_epochs=2,
        max_length=MAX_LENGTH,  # sft_trainer refuses a run that would cut a record
        assistant_only_loss=True,
        learning_rate=1e-5,
        bf16=True,
        activation_checkpointing=True,  # gradient checkpointing, under transformers 5's name
        logging_steps=1,
        report_to="none",
    )
    return SFTConfig(**{**settings, **overrides})


class RecordsCut(ValueError):
    """Records as long as the run's max_length, or longer: TRL would cut them."""


def sft_trainer(
    model: str | PreTrainedModel,
    args: SFTConfig,
    dataset: Dataset,
    processing_class: PreTrainedTokenizerBase | None = None,
) -> SFTTrainer:
    """The trainer, refused where its max_length would cut a record: TRL cuts a longer one silently, and a record
    cut before its report teaches a model to stop without one."""
    from trl import SFTTrainer

    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processing_class)
    kept = trainer.train_dataset
    cut = [
        index
        for index, example in enumerate(kept)
        if args.max_length is not None and len(example["input_ids"]) >= args.max_length
    ]
    if cut or len(kept) < len(dataset):
        named = f" (records {', '.join(map(str, cut[:10]))}{' ...' if len(cut) > 10 else ''})" if cut else ""
        raise RecordsCut(
            f"{len(cut) or len(dataset) - len(kept)} of {len(dataset)} records reach max_length "
            f"{args.max_length}{named}, where TRL cuts a record: raise --max-length, or leave the longer "
            "records out (the audit's run the longest)"
        )
    return trainer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("records", nargs="+", help="trajectory files (inference.py --trajectories)")
    parser.add_argument("--model", default=MODEL, help="a Hugging Face model id or a local directory")
    parser.add_argument("--min-score", type=float, default=0.95, help="train only on episodes scoring this or more")
    parser.add_argument("--output-dir", default="runs/sft", help="checkpoints and logs")
    parser.add_argument("--steps", type=int, default=-1, help="optimizer steps; -1: --epochs passes")
    parser.add_argument("--epochs", type=float, default=2, help="passes over the records")
    parser.add_argument("--batch-size", type=int, default=1, help="records per device and micro-step")
    parser.add_argument("--gradient-accumulation", type=int, default=16, help="micro-steps per optimizer step")
    parser.add_argument("--max-length", type=int, default=MAX_LENGTH, help="tokens of a record; longer is refused")
    parser.add_argument("--learning-rate", type=float, default=1e-5, help="the optimizer's step size")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU, in float32")
    return parser.parse_args(argv)


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """What the flags change in sft_config's settings."""
    overrides: dict[str, Any] = {
        "max_steps": args.steps,
        "num_train_epochs": args.epochs,
        "per_device_train_batch_size": args.batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation,
        "max_length": args.max_length,
        "learning_rate": args.learning_rate,
    }
    if args.cpu:
        overrides.update(use_cpu=True, bf16=False)
    return overrides


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from training import require_train_group

    require_train_group()
    config = sft_config(args.output_dir, **config_overrides(args))
    try:
        trainer = sft_trainer(args.model, config, sft_dataset(args.records, args.min_score))
    except RecordsCut as error:  # one line, with the fix
        raise SystemExit(f"error: {error}") from None
    trainer.train()


if __name__ == "__main__":
    main()
