"""TRL's trainers run on this environment end to end, on the CPU, with a tiny Qwen3 built offline (tiny_qwen3.py).

GRPO: `training.grpo`'s dataset, config and trainer (what docs/training.md runs, with the tiny model) for two steps
against a live server. The tiny model follows a script through real generation: it calls two analysis tools and
submit_report, in Qwen3's tool-call format. Each scripted episode is first played over the plain client, so the
script knows the rows to submit (read from the generator's result) and the test knows what TRL must do: parse the
calls, invoke the class's methods with those arguments, put the results the plain client rendered back into the
conversation, and score the rollout with get_reward() = the plain client's score, which the trainer logs.

SFT: `training.sft` on records `inference.py --trajectories` writes (expert and scripted agents) for two steps with
assistant-only loss: tool results are masked out, every record tokenizes, the loss is finite.

Nothing here compares tool text with a literal: results and briefs are rendered by view/observation.py on both sides.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from training import train_group_missing  # noqa: E402

if (MISSING := train_group_missing()) is not None:  # says which Python TRL needs, or which command installs it
    pytest.skip(MISSING, allow_module_level=True)

from metric_tracker_rl import MetricTrackerRlEnv  # noqa: E402
from metric_tracker_rl.adapters.trl import URL_VAR, MetricTrackerToolEnv  # noqa: E402
from metric_tracker_rl.view.observation import render_observation  # noqa: E402
from metric_tracker_rl.view.prompt import SYSTEM_PROMPT, first_prompt  # noqa: E402
from metric_tracker_rl.view.tool_schemas import SUBMIT_REPORT, model_tools, openai_tools, tool_action  # noqa: E402
from training.grpo import grpo_config, grpo_dataset, grpo_trainer  # noqa: E402
from training.sft import RecordsCut, sft_config, sft_dataset, sft_trainer  # noqa: E402

pytestmark = pytest.mark.slow  # a live server, subprocesses, and two short trainings

# Train-split tasks 2 and 3, one per GRPO step (one prompt x 2 generations per step): on these the two scripts
# below score differently.
FIRST_TASK, EPISODES = 5, 2  # train tasks 5 and 6: medium and hard (every fourth is frontier, which needs segments)
TASKS = range(FIRST_TASK, FIRST_TASK + EPISODES)
SCAN = {"threshold_multiplier": 4.0, "limit": 120}  # every candidate on one page
CLOSING_TEXT = "Report submitted."
# Two scripts, so a GRPO group holds two different episodes (and rewards): both read the annotations and a
# generator's candidates; "all" reads the annotations first and submits every candidate off an annotated date,
# "first" reads the candidates first and submits only the first (strongest) such row. Their first turns differ,
# so the script can tell from the conversation which one a rollout follows.
VARIANTS = ("all", "first")

ToolCall = tuple[str, dict[str, Any]]


@dataclass
class ScriptedEpisode:
    """One variant of one task, as played over the plain client."""

    index: int
    variant: str
    brief: str
    calls: list[ToolCall]
    results: list[str]
    score: float

    def turns(self) -> list[str]:
        """The assistant turns in Qwen3's tool-call format (the shape its chat template renders), then a closing
        text turn that ends the rollout."""
        calls = [
            f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"
            for name, arguments in self.calls
        ]
        return [*calls, CLOSING_TEXT]


def play(client: Any, index: int, variant: str) -> ScriptedEpisode:
    observation = client.reset(split="train", index=index).observation
    calls: list[ToolCall] = []
    results: list[str] = []
    score = 0.0

    def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        nonlocal score
        action = tool_action(name, arguments)
        assert not isinstance(action, str), action
        step = client.step(action)
        calls.append((name, arguments))
        results.append(render_observation(step.observation))
        score += float(step.reward or 0.0)
        return step.observation.analysis_result or {}

    if variant == "all":
        annotated = {note["date"] for note in call("get_annotations", {})["annotations"]}
        candidates = call("get_median_filter_rows", SCAN)["rows"]
    else:
        candidates = call("get_median_filter_rows", SCAN)["rows"]
        annotated = {note["date"] for note in call("get_annotations", {})["annotations"]}
    rows = [row for row in candidates if row["date"] not in annotated]
    assert rows, "the generator found nothing on this task: pick a lower threshold"
    call(SUBMIT_REPORT, {"rows": rows if variant == "all" else rows[:1]})
    return ScriptedEpisode(index, variant, first_prompt(observation), calls, results, score)


@pytest.fixture(scope="module")
def scripted_episodes(server_url: str) -> list[ScriptedEpisode]:
    with MetricTrackerRlEnv(base_url=server_url).sync() as client:
        episodes = [play(client, index, variant) for index in TASKS for variant in VARIANTS]
    for index in TASKS:
        scores = {episode.score for episode in episodes if episode.index == index}
        assert len(scores) == len(VARIANTS), "the two scripts of a task must score differently (a GRPO signal)"
    return episodes


def emitted_turns(context: str) -> list[str]:
    """The assistant turns already in a decoded conversation, without the empty thinking block."""
    turns = []
    for segment in context.split("<|im_start|>assistant\n")[1:]:
        if "<|im_end|>" in segment:
            turn = segment.split("<|im_end|>")[0]
            turns.append(turn.removeprefix("<think>\n\n</think>\n\n"))
    return turns


@pytest.fixture
def recorded_rollouts(server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every rollout TRL runs through the environment class: its reset row, tool calls with their results, and
    reward. The class is wrapped in place, so the trainer sees the real class, tools and reward name. TRL keeps
    its instances, so their sessions on the shared server are closed here at the end."""
    monkeypatch.setenv(URL_VAR, server_url)
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    rollouts: list[dict[str, Any]] = []
    current: dict[int, dict[str, Any]] = {}
    instances: dict[int, MetricTrackerToolEnv] = {}
    reset, get_reward, call = MetricTrackerToolEnv.reset, MetricTrackerToolEnv.get_reward, MetricTrackerToolEnv._call

    def recording_reset(self: MetricTrackerToolEnv, **row: Any) -> str:
        brief = reset(self, **row)
        rollouts.append(
            {
                "row": {key: row[key] for key in ("split", "index")},
                "brief": brief,
                "calls": [],
                "results": [],
                "reward": None,
            }
        )
        current[id(self)] = rollouts[-1]
        instances[id(self)] = self
        return brief

    def recording_get_reward(self: MetricTrackerToolEnv) -> float:
        current[id(self)]["reward"] = get_reward(self)
        return current[id(self)]["reward"]

    def recording_call(self: MetricTrackerToolEnv, name: str, arguments: dict[str, Any]) -> str:
        result = call(self, name, arguments)
        current[id(self)]["calls"].append((name, arguments))
        current[id(self)]["results"].append(result)
        return result

    monkeypatch.setattr(MetricTrackerToolEnv, "reset", recording_reset)
    monkeypatch.setattr(MetricTrackerToolEnv, "get_reward", recording_get_reward)
    monkeypatch.setattr(MetricTrackerToolEnv, "_call", recording_call)
    yield rollouts
    with contextlib.ExitStack() as sessions:
        for instance in instances.values():
            sessions.enter_context(instance)


def prompt_texts() -> list[str]:
    """What every conversation holds: the system prompt, the control tags and the tool schemas."""
    from tiny_qwen3 import TAG_TOKENS  # tiny_qwen3 imports torch and transformers: here, not at collection

    return [SYSTEM_PROMPT, *TAG_TOKENS, *(json.dumps(tool) for tool in openai_tools())]


def environment_texts(episodes: list[ScriptedEpisode]) -> list[str]:
    """What the tiny tokenizer is trained on: the prompts, tool schemas, briefs, calls and results it will see."""
    texts = prompt_texts()
    for episode in episodes:
        texts += [episode.brief, *episode.turns(), *episode.results]
    return texts


def test_grpo_two_steps_against_a_live_server(
    scripted_episodes: list[ScriptedEpisode], recorded_rollouts: list[dict[str, Any]], tmp_path: Path
) -> None:
    from tiny_qwen3 import scripted_qwen3, tiny_tokenizer

    by_brief = {(episode.brief, episode.variant): episode for episode in scripted_episodes}

    def script(context: str, row: int) -> str:
        briefs = [episode for (brief, _), episode in by_brief.items() if brief in context]
        assert briefs, "the rollout's prompt lacks the brief reset() returned"
        done = emitted_turns(context)
        if not done:  # a group's first turn: one script per generation
            return next(e for e in briefs if e.variant == VARIANTS[row % len(VARIANTS)]).turns()[0]
        episode = next(e for e in briefs if e.turns()[: len(done)] == done)
        return episode.turns()[len(done)]

    tokenizer = tiny_tokenizer(environment_texts(scripted_episodes))
    model = scripted_qwen3(tokenizer, script)
    args = grpo_config(
        str(tmp_path),
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        num_generations=2,
        max_steps=2,
        use_vllm=False,
        bf16=False,
        use_cpu=True,
        log_completions=False,
        save_strategy="no",
        seed=0,
    )
    trainer = grpo_trainer(model, args, grpo_dataset(EPISODES, start=FIRST_TASK), processing_class=tokenizer)
    assert sorted(tool.__name__ for tool in trainer.tools) == sorted(tool.name for tool in model_tools())
    trainer.train()

    rollouts = recorded_rollouts
    assert len(rollouts) == 2 * 2  # 2 steps x 1 prompt x 2 generations
    for rollout in rollouts:
        played = next(e for e in scripted_episodes if e.brief == rollout["brief"] and e.calls == rollout["calls"])
        # The rollout's user turn is the brief its reset() returned ...
        assert rollout["row"] == {"split": "train", "index": played.index}
        assert any(f"<|im_start|>user\n{rollout['brief']}<|im_end|>" in context for context in model.contexts)
        # ... TRL parsed each scripted call and invoked the class's method with exactly its arguments ...
        # ... got the text the plain client renders for the same actions ...
        assert rollout["results"] == played.results
        # ... put every result into the conversation the model continued ...
        for result in rollout["results"][:-1]:
            assert any(f"<tool_response>\n{result}\n</tool_response>" in context for context in model.contexts)
        # ... and scored the rollout as the plain client did.
        assert rollout["reward"] == pytest.approx(played.score)
    assert sorted((r["row"]["index"], r["calls"][0][0]) for r in rollouts) == [
        (index, first_tool) for index in TASKS for first_tool in ("get_annotations", "get_median_filter_rows")
    ]

    # The model was shown the class's tools in the system turn.
    assert all(f'"name": "{tool.name}"' in model.contexts[0] for tool in model_tools())
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2
    for step, entry in enumerate(logs):
        step_rewards = [r["reward"] for r in rollouts[2 * step : 2 * step + 2]]
        assert entry["rewards/MetricTrackerToolEnv/mean"] == pytest.approx(sum(step_rewards) / 2)
        assert entry["tools/call_frequency"] == pytest.approx(3.0)
        assert math.isfinite(entry["loss"])
    print(
        "GRPO steps:",
        json.dumps(
            [
                {
                    "calls": [name for name, _ in r["calls"]],
                    "reward": r["reward"],
                    "rows": len(r["calls"][-1][1]["rows"]),
                }
                for r in rollouts
            ]
        ),
        json.dumps(logs),
        sep="\n",
    )


# The warehouse's first two train tasks (its own block of the train split), played by two scripts over its own
# tools: "expert" reads a section of the metrics layer, then a few of the dashboard's daily sessions, and submits
# the first rows of the warehouse expert's report on the episode; "empty" reads the two the other way round and
# submits an empty report. Short results and reports keep the CPU's generation short.
WAREHOUSE_VARIANTS = ("expert", "empty")
DASHBOARD_SQL = "SELECT date, sum(sessions) AS sessions FROM dashboard GROUP BY date ORDER BY date LIMIT 5"
EXPERT_ROWS = 2


def expert_rows(client: Any, index: int) -> list[dict[str, Any]]:
    """The rows the warehouse expert submits on train task `index` (played over the plain client)."""
    from metric_tracker_rl.agents import make_agent, run_episode

    sent: list[Any] = []

    def step(action: Any) -> Any:
        sent.append(action)
        return client.step(action)

    run_episode(make_agent("warehouse_expert"), client.reset, step, split="train", index=index)
    [report] = [action for action in sent if action.classifications is not None]
    return [row.model_dump(exclude_none=True) for row in report.classifications]


def play_warehouse(client: Any, index: int, variant: str, rows: list[dict[str, Any]]) -> ScriptedEpisode:
    observation = client.reset(split="train", index=index).observation
    calls: list[ToolCall] = [("metrics_layer", {"section": "session"}), ("query", {"sql": DASHBOARD_SQL})]
    if variant == "empty":
        calls.reverse()
    calls.append((SUBMIT_REPORT, {"rows": rows[:EXPERT_ROWS] if variant == "expert" else []}))
    results, score = [], 0.0
    for name, arguments in calls:
        action = tool_action(name, arguments)
        assert not isinstance(action, str), action
        step = client.step(action)
        assert step.observation.status != "error", step.observation.message
        results.append(render_observation(step.observation))
        score += float(step.reward or 0.0)
    return ScriptedEpisode(index, variant, first_prompt(observation), calls, results, score)


def test_grpo_two_steps_at_the_warehouse_with_its_own_tools(
    server_url: str, recorded_rollouts: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The warehouse's class (`MetricTrackerToolEnv.for_tier("warehouse")`) trains as the default one does: TRL
    offers exactly the tier's tools, runs the scripted calls through them and logs the rollouts' scores."""
    from tiny_qwen3 import scripted_qwen3, tiny_tokenizer

    from metric_tracker_rl.view.prompt import WAREHOUSE_SYSTEM_PROMPT
    from training.grpo import tier_tasks

    tasks = tier_tasks("warehouse")[:EPISODES]
    with MetricTrackerRlEnv(base_url=server_url).sync() as client:
        episodes = [
            play_warehouse(client, index, variant, expert_rows(client, index))
            for index in tasks
            for variant in WAREHOUSE_VARIANTS
        ]
    for index in tasks:  # a GRPO signal: the expert's report scores, the empty one does not
        scores = {e.variant: e.score for e in episodes if e.index == index}
        assert scores["expert"] > scores["empty"] == 0.0, scores
    by_start = {(e.brief, e.turns()[0]): e for e in episodes}

    def script(context: str, row: int) -> str:
        done = emitted_turns(context)
        briefs = [e for (brief, _), e in by_start.items() if brief in context]
        if not done:
            return next(e for e in briefs if e.variant == WAREHOUSE_VARIANTS[row % 2]).turns()[0]
        return next(e for e in briefs if e.turns()[: len(done)] == done).turns()[len(done)]

    texts = [WAREHOUSE_SYSTEM_PROMPT, *prompt_texts(), *(json.dumps(tool) for tool in openai_tools("warehouse"))]
    for episode in episodes:
        texts += [episode.brief, *episode.turns(), *episode.results]
    tokenizer = tiny_tokenizer(texts)
    model = scripted_qwen3(tokenizer, script)
    args = grpo_config(
        str(tmp_path),
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        num_generations=2,
        max_steps=2,
        use_vllm=False,
        bf16=False,
        use_cpu=True,
        log_completions=False,
        save_strategy="no",
        seed=0,
    )
    trainer = grpo_trainer(
        model, args, grpo_dataset(EPISODES, start=tasks.start), processing_class=tokenizer, tier="warehouse"
    )
    assert sorted(tool.__name__ for tool in trainer.tools) == sorted(t.name for t in model_tools("warehouse"))
    trainer.train()

    assert len(recorded_rollouts) == 2 * 2
    for rollout in recorded_rollouts:
        played = next(e for e in episodes if e.brief == rollout["brief"] and e.calls == rollout["calls"])
        assert rollout["results"] == played.results and rollout["reward"] == pytest.approx(played.score)
    assert all(WAREHOUSE_SYSTEM_PROMPT in context for context in model.contexts)
    assert '"name": "metrics_layer"' in model.contexts[0] and '"name": "task_overview"' not in model.contexts[0]
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2
    for step, entry in enumerate(logs):
        step_rewards = [r["reward"] for r in recorded_rollouts[2 * step : 2 * step + 2]]
        assert entry["rewards/MetricTrackerToolEnv_warehouse/mean"] == pytest.approx(sum(step_rewards) / 2)
        assert entry["tools/call_frequency"] == pytest.approx(3.0) and math.isfinite(entry["loss"])


@pytest.fixture(scope="module")
def trajectory_files(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two episodes each of the expert and the scripted agent, written by `inference.py --trajectories`."""
    directory = tmp_path_factory.mktemp("sft")
    env = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "HF_TOKEN", "OPENAI_API_KEY")}
    paths = []
    for agent in ("expert", "scripted"):
        result = subprocess.run(
            [
                sys.executable,
                "inference.py",
                "--agent",
                agent,
                "--trajectories",
                str(directory),
                "--episodes",
                "2",
                "--seed",
                "1000000",
            ],
            cwd=ROOT,
            env={**env, "METRIC_TRACKER_URL": server_url},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        paths.append(directory / f"{agent}.jsonl")
    return paths


@pytest.fixture(scope="module")
def sft_tokenizer(trajectory_files: list[Path]) -> Any:
    """The tiny tokenizer, trained on the prompts and the records' messages."""
    from tiny_qwen3 import tiny_tokenizer

    records = [json.loads(line) for path in trajectory_files for line in path.read_text().splitlines()]
    return tiny_tokenizer(
        prompt_texts() + [json.dumps(message) for record in records for message in record["messages"]]
    )


def test_sft_two_steps_on_trajectories(trajectory_files: list[Path], sft_tokenizer: Any, tmp_path: Path) -> None:
    from tiny_qwen3 import tiny_qwen3

    records = [json.loads(line) for path in trajectory_files for line in path.read_text().splitlines()]
    tokenizer = sft_tokenizer
    args = sft_config(
        str(tmp_path),
        gradient_accumulation_steps=1,
        max_steps=2,
        bf16=False,
        use_cpu=True,
        activation_checkpointing=False,
        save_strategy="no",
        seed=0,
    )
    trainer = sft_trainer(
        tiny_qwen3(tokenizer), args, sft_dataset([str(p) for p in trajectory_files]), processing_class=tokenizer
    )

    tokenized = trainer.train_dataset
    assert len(tokenized) == len(records)  # every record tokenized, none dropped
    for example, record in zip(tokenized, records, strict=True):
        ids, labels = example["input_ids"], example["labels"]  # labels: -100 where the loss is masked
        assert len(ids) < args.max_length  # nothing was cut
        trained = tokenizer.decode([label for label in labels if label != -100])
        shown = tokenizer.decode(ids)
        assert "<tool_response>" not in trained and "<tool_response>" in shown
        for message in record["messages"]:
            if message["role"] == "tool":
                assert message["content"] in shown and message["content"] not in trained
            elif message["role"] == "assistant":
                for call in message["tool_calls"]:
                    arguments = call["function"]["arguments"]
                    assert f'{{"name": "{call["function"]["name"]}", "arguments": {json.dumps(arguments)}}}' in trained
            else:
                assert message["content"] not in trained

    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    print("SFT losses:", losses)


def test_sft_refuses_a_max_length_that_would_cut_a_record(
    trajectory_files: list[Path], sft_tokenizer: Any, tmp_path: Path
) -> None:
    """TRL cuts a record longer than max_length silently; the trainer is refused instead, naming the records."""
    from tiny_qwen3 import tiny_qwen3

    dataset = sft_dataset([str(p) for p in trajectory_files])
    settings = dict(bf16=False, use_cpu=True, activation_checkpointing=False, save_strategy="no")
    whole = sft_trainer(
        tiny_qwen3(sft_tokenizer),
        sft_config(str(tmp_path), max_length=None, **settings),
        dataset,
        processing_class=sft_tokenizer,
    )
    lengths = [len(example["input_ids"]) for example in whole.train_dataset]
    longest = max(lengths)
    sft_trainer(
        tiny_qwen3(sft_tokenizer),
        sft_config(str(tmp_path), max_length=longest + 1, **settings),
        dataset,
        processing_class=sft_tokenizer,
    )  # every record fits
    cut = [index for index, length in enumerate(lengths) if length >= longest]
    with pytest.raises(
        RecordsCut,
        match=rf"^{len(cut)} of {len(lengths)} records reach max_length {longest} "
        rf"\(records {', '.join(map(str, cut))}\), where TRL cuts a record: ",
    ):
        sft_trainer(
            tiny_qwen3(sft_tokenizer),
            sft_config(str(tmp_path), max_length=longest, **settings),
            dataset,
            processing_class=sft_tokenizer,
        )
