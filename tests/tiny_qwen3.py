"""A tiny Qwen3 built offline for the TRL smoke tests: random weights from a small config, a byte-level BPE
tokenizer trained on the environment's own texts, and TRL's shipped Qwen3 chat template (so TRL picks the
family's response schema and training template exactly as it does for a real Qwen3 checkpoint).

`ScriptedQwen3` is that model with a scripted policy: during `generate` (and only then) a logits processor lets
through one token per position, the next token of the completion the script chooses for the conversation so far.
The training forward pass is the plain random model, so the loss and its gradient are real."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LogitsProcessor, LogitsProcessorList, PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM
from trl.chat_template_utils import qwen3_chat_template

# Qwen3's control tokens: the first three are special (skipped when decoding); the tags are plain added tokens, so
# decoded text keeps them and the response schema can find the tool calls.
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TAG_TOKENS = ("<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")
VOCAB_SIZE = 4096


def tiny_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `texts` (any text still encodes: the 256 bytes are in the alphabet),
    with Qwen3's control tokens and chat template."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        clean_up_tokenization_spaces=False)
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    tokenizer.add_tokens(list(TAG_TOKENS))
    tokenizer.chat_template = qwen3_chat_template
    return tokenizer


def tiny_config(tokenizer: PreTrainedTokenizerFast) -> Qwen3Config:
    return Qwen3Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=65536,
                       tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                       eos_token_id=tokenizer.eos_token_id, bos_token_id=None)


def tiny_qwen3(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Qwen3ForCausalLM:
    torch.manual_seed(seed)
    return Qwen3ForCausalLM(tiny_config(tokenizer))


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

    def generate(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None,  # type: ignore[override]
                 **kwargs: object) -> torch.LongTensor:
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
        return super().generate(input_ids=input_ids, attention_mask=attention_mask, logits_processor=processors,
                                **kwargs)


def scripted_qwen3(tokenizer: PreTrainedTokenizerFast, script: Script, seed: int = 0) -> ScriptedQwen3:
    torch.manual_seed(seed)
    model = ScriptedQwen3(tiny_config(tokenizer))
    model.tokenizer, model.script, model.contexts = tokenizer, script, []
    return model
