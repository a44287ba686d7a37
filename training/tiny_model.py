"""A tiny Qwen3 built offline, for trying the training scripts on a CPU without downloading a model:

    uv run python -m training.tiny_model runs/tiny-qwen3
    uv run python -m training.grpo --model runs/tiny-qwen3 --cpu --steps 1 --batch-size 2 --num-generations 2 \\
        --gradient-accumulation 1 --max-completion-length 256

Random weights from a small Qwen3 config (2 layers, hidden size 64), a byte-level BPE tokenizer trained on the
environment's own texts (the system prompt, the tool schemas, each tier's brief and an expert episode's calls and
results) with Qwen3's control tokens, and TRL's shipped Qwen3 chat template, so TRL treats it as it treats a real
Qwen3 checkpoint. It learns nothing useful and calls no tool: it proves the pipeline, not a policy.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

# Qwen3's control tokens: the first three are special (skipped when decoding); the tags are plain added tokens, so
# decoded text keeps them and the response schema can find the tool calls.
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TAG_TOKENS = ("<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")
VOCAB_SIZE = 4096


def tiny_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `texts` (any text still encodes: the 256 bytes are in the alphabet),
    with Qwen3's control tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from trl.chat_template_utils import qwen3_chat_template

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", clean_up_tokenization_spaces=False
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    tokenizer.add_tokens(list(TAG_TOKENS))
    tokenizer.chat_template = qwen3_chat_template
    return tokenizer


def tiny_config(tokenizer: PreTrainedTokenizerFast) -> Qwen3Config:
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=65536,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )


def tiny_qwen3(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Qwen3ForCausalLM:
    import torch
    from transformers import Qwen3ForCausalLM

    torch.manual_seed(seed)
    return Qwen3ForCausalLM(tiny_config(tokenizer))


def environment_texts() -> list[str]:
    """What the tokenizer is trained on: the texts a model meets here, played in process."""
    from functools import partial

    from metric_tracker_rl.adapters.session import EpisodeSession
    from metric_tracker_rl.adapters.transcript import TaskRun
    from metric_tracker_rl.agents import make_agent, run_episode
    from metric_tracker_rl.catalog.published import DIFFICULTIES
    from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
    from metric_tracker_rl.view.tool_schemas import openai_tools

    texts = [*TAG_TOKENS, *(json.dumps(tool) for tool in openai_tools())]
    for difficulty in DIFFICULTIES:
        texts.append(EpisodeSession(MetricTrackerRlEnvironment()).reset(seed=0, difficulty=difficulty).text)
    env, run = MetricTrackerRlEnvironment(), TaskRun("expert")
    run_episode(make_agent("expert"), partial(run.reset, env), partial(run.act, env), seed=0, difficulty="easy")
    return texts + [json.dumps(message) for message in run.messages]  # the system prompt is the first


def build(output: Path, seed: int = 0) -> None:
    tokenizer = tiny_tokenizer(environment_texts())
    tiny_qwen3(tokenizer, seed).save_pretrained(output)
    tokenizer.save_pretrained(output)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="the model directory to write (--model DIR of the training CLIs)")
    parser.add_argument("--seed", type=int, default=0, help="the random weights' seed")
    args = parser.parse_args(argv)
    from training import require_train_group

    require_train_group()
    build(args.output, args.seed)
    print(f"wrote a tiny Qwen3 to {args.output}")


if __name__ == "__main__":
    main()
