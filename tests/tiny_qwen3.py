"""A tiny Qwen3 built offline for the TRL smoke tests (training.tiny_model builds it: random weights from a small
config, a byte-level BPE tokenizer trained on the given texts, and TRL's shipped Qwen3 chat template, so TRL picks
the family's response schema and training template exactly as it does for a real Qwen3 checkpoint).

`ScriptedQwen3` is that model with a scripted policy: during `generate` (and only then) a logits processor lets
through one token per position, the next token of the completion the script chooses for the conversation so far.
The training forward pass is the plain random model, so the loss and its gradient are real."""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import LogitsProcessor, LogitsProcessorList, PreTrainedTokenizerFast, Qwen3ForCausalLM

from training.tiny_model import TAG_TOKENS, tiny_config, tiny_qwen3, tiny_tokenizer

__all__ = ["TAG_TOKENS", "ScriptedQwen3", "scripted_qwen3", "tiny_qwen3", "tiny_tokenizer"]


# The script: given the decoded conversation so far and the row's index in the generation batch, the text of the
# assistant turn to emit (without the end-of-turn token, which the processor adds).
Script = Callable[[str, int], str]


class _ForceScript(LogitsProcessor):
    """Leaves one finite logit per row: the next token of that row's scripted turn, then the end-of-turn token."""

    def __init__(self, targets: list[list[int]], start: int, eos_token_id: int) -> None:
        self.targets, self.start, self.eos_token_id = targets, start, eos_token_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        position = input_ids.shape[1] - self.start
        forced = torch.full_like(scores, float("-inf"))
        for row, target in enumerate(self.targets):
            token = target[position] if position < len(target) else self.eos_token_id
            forced[row, token] = 0.0
        return forced


class ScriptedQwen3(Qwen3ForCausalLM):
    """The tiny Qwen3 whose `generate` follows `script` (set it before generating); `contexts` keeps every decoded
    conversation it was asked to continue, in order, so a test can check what the model was shown."""

    script: Script | None = None
    tokenizer: PreTrainedTokenizerFast | None = None
    contexts: list[str]

    def generate(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,  # type: ignore[override]
        **kwargs: object,
    ) -> torch.LongTensor:
        if self.script is None or self.tokenizer is None:
            raise RuntimeError("set script and tokenizer before generating")
        targets = []
        for row in range(input_ids.shape[0]):
            ids = input_ids[row] if attention_mask is None else input_ids[row][attention_mask[row].bool()]
            context = self.tokenizer.decode(ids.tolist(), skip_special_tokens=False)
            self.contexts.append(context)
            turn = self.script(context, row)
            targets.append(self.tokenizer.encode(turn, add_special_tokens=False) + [self.tokenizer.eos_token_id])
        processors = LogitsProcessorList([_ForceScript(targets, input_ids.shape[1], self.tokenizer.eos_token_id)])
        return super().generate(
            input_ids=input_ids, attention_mask=attention_mask, logits_processor=processors, **kwargs
        )


def scripted_qwen3(tokenizer: PreTrainedTokenizerFast, script: Script, seed: int = 0) -> ScriptedQwen3:
    torch.manual_seed(seed)
    model = ScriptedQwen3(tiny_config(tokenizer))
    model.tokenizer, model.script, model.contexts = tokenizer, script, []
    return model
