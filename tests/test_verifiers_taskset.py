"""The verifiers taskset (integrations/verifiers): verifiers' own `vf-eval` plays one episode on a local server
through native tool calls on the MCP surface, with a scripted model, and the rollout's reward is the score.

verifiers cannot share this project's environment (docs/frameworks.md), so the test syncs the taskset's own uv
project (registry access, as CI has) and runs `vf-eval` from it: its null harness (a chat loop with MCP tools) in
a subprocess runtime, talking to the scripted model below on loopback; no network beyond loopback, no weights."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from metric_tracker_rl.adapters.scripted_chat import ScriptedChatModel, serving_model
from metric_tracker_rl.agents import make_agent
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.local_server import local_server
from metric_tracker_rl.view.observation import render_observation, seen
from metric_tracker_rl.view.tool_schemas import action_tool_call, openai_tools

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1] / "integrations" / "verifiers"
EPISODE = {"seed": 7, "difficulty": "easy"}


def expert_episode() -> tuple[list[tuple[str, dict[str, Any]]], list[str], float]:
    """The expert's tool calls on EPISODE, the text each call answers, and the episode's score, played in-process."""
    environment, agent = MetricTrackerRlEnvironment(), make_agent("expert")
    observation = environment.reset(**EPISODE)
    agent.begin(seen(observation))
    calls, texts = [], []
    while not observation.done and (action := agent.act(seen(observation))) is not None:
        calls.append(action_tool_call(action))
        observation = environment.step(action)
        texts.append(render_observation(observation))
    return calls, texts, float(environment.state.episode_score or 0.0)


def vf_eval(uv: str, server_url: str, model_url: str, output_dir: Path) -> subprocess.CompletedProcess[str]:
    command = [
        uv,
        "run",
        "--frozen",
        "--project",
        str(PROJECT),
        "vf-eval",
        "metric-tracker-verifiers",
        "--env.taskset.task.base-url",
        server_url,
        "--env.taskset.episodes",
        json.dumps([EPISODE]),
        "--env.agent.harness.id",
        "null",
        "--env.agent.runtime.type",
        "subprocess",
        "--model",
        "scripted",
        "--client.base-url",
        model_url,
        "--client.api-key-var",
        "SCRIPTED_MODEL_KEY",
        "--output-dir",
        str(output_dir),
        "--no-push",
    ]
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    return subprocess.run(
        command, env={**env, "SCRIPTED_MODEL_KEY": "unused"}, capture_output=True, text=True, timeout=900, check=False
    )


def test_vf_eval_plays_one_episode_through_mcp_tools_and_its_reward_is_the_score(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv runs the taskset's own project; CI installs it"
    synced = subprocess.run(
        [uv, "sync", "--frozen", "--project", str(PROJECT)], capture_output=True, text=True, timeout=900, check=False
    )
    assert synced.returncode == 0, synced.stderr[-4000:]
    calls, texts, score = expert_episode()
    model = ScriptedChatModel(calls)
    with local_server() as server_url, serving_model(model) as model_url:
        finished = vf_eval(uv, server_url, model_url, tmp_path)
    assert finished.returncode == 0, (finished.stdout[-3000:], finished.stderr[-4000:])

    (traces_file,) = tmp_path.glob("*/traces.jsonl")
    (episode,) = [json.loads(line) for line in traces_file.read_text().splitlines() if line.strip()]
    assert episode["ok"] and not episode["errors"], episode["errors"]
    (trace,) = episode["traces"]
    reward = trace["rewards"]["episode_score"]["score"]
    assert reward == pytest.approx(score) and reward > 0.9
    assert trace["metrics"] == {"tool_calls": len(calls), "episode_done": 1.0}

    # The model was offered exactly the tools every harness offers at the episode's tier, and read exactly the
    # text they show it.
    offered = {tool["function"]["name"]: tool["function"] for tool in model.requests[0]["tools"]}
    expected = {tool["function"]["name"]: tool["function"] for tool in openai_tools(EPISODE["difficulty"])}
    assert offered.keys() == expected.keys()
    for name, function in expected.items():
        assert offered[name]["description"] == function["description"]
        assert offered[name]["parameters"] == function["parameters"]
    assert len(model.requests) == len(calls) + 1
    answers = [message["content"] for message in model.requests[-1]["messages"] if message["role"] == "tool"]
    assert answers == texts
