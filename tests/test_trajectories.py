"""SFT-ready trajectories: `inference.py --trajectories DIR` writes one chat record per episode for every agent;
each record has the shape TRL's SFT trainer reads, and replaying its tool calls reproduces its score."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import HF_GROUP, ROOT

from metric_tracker_rl import MetricTrackerRlEnv
from metric_tracker_rl.catalog.task_splits import get_split
from metric_tracker_rl.view.observation import render_observation
from metric_tracker_rl.view.tool_schemas import SUBMIT_GENERATORS, SUBMIT_REPORT, openai_tools, tool_action

pytestmark = pytest.mark.slow  # runs the trajectory script in a subprocess

EPISODES = 4
AGENTS = ("scripted", "expert", "readme_baseline")


@pytest.fixture(scope="module")
def trajectories(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Each agent's records of a generated data set of EPISODES episodes (the named tasks' records are checked in
    test_inference.py)."""
    directory = tmp_path_factory.mktemp("trajectories")
    env = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "HF_TOKEN", "OPENAI_API_KEY")}
    records: dict[str, list[dict[str, Any]]] = {}
    for agent in AGENTS:
        result = subprocess.run(
            [
                sys.executable,
                "inference.py",
                "--agent",
                agent,
                "--trajectories",
                str(directory),
                "--episodes",
                str(EPISODES),
                "--first-task",
                "50",
            ],
            cwd=ROOT,
            env={**env, "METRIC_TRACKER_URL": server_url},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        assert f"{EPISODES}/{EPISODES} episodes" in result.stderr  # the progress bar
        lines = (directory / f"{agent}.jsonl").read_text(encoding="utf-8").splitlines()
        records[agent] = [json.loads(line) for line in lines]
    return records


def check_record(record: dict[str, Any]) -> None:
    """The chat format of TRL's SFT trainer, with every tool call answered once and a submission last."""
    assert record["tools"] == openai_tools(record["config"]["difficulty"])  # the tools its tier offers
    tool_names = {tool["function"]["name"] for tool in record["tools"]}
    messages = record["messages"]
    assert [m["role"] for m in messages[:2]] == ["system", "user"]
    assert all(isinstance(m["content"], str) for m in messages)
    index = 2
    last_calls: list[dict[str, Any]] = []
    while index < len(messages):
        turn = messages[index]
        assert turn["role"] == "assistant" and turn["tool_calls"], turn
        answers = messages[index + 1 : index + 1 + len(turn["tool_calls"])]
        for call, answer in zip(turn["tool_calls"], answers, strict=True):
            assert call["type"] == "function" and call["function"]["name"] in tool_names
            assert isinstance(call["function"]["arguments"], dict)
            assert json.loads(json.dumps(call["function"]["arguments"])) == call["function"]["arguments"]
            assert answer == {
                "role": "tool",
                "tool_call_id": call["id"],
                "name": call["function"]["name"],
                "content": answer["content"],
            }
        ids = [call["id"] for m in messages if m["role"] == "assistant" for call in m["tool_calls"]]
        assert len(ids) == len(set(ids))
        last_calls = turn["tool_calls"]
        index += 1 + len(turn["tool_calls"])
    assert [call["function"]["name"] for call in last_calls][-1] in (SUBMIT_REPORT, SUBMIT_GENERATORS)
    assert sum(m["role"] == "tool" for m in messages) == record["steps"] == len(record["rewards"])
    assert 0.0 <= record["score"] <= 1.0 and record["score"] == record["reward_breakdown"]["score"]
    assert {key: record["config"][key] for key in record["reset"]} == record["reset"]


def test_every_record_has_the_sft_chat_format(trajectories: dict[str, list[dict[str, Any]]]) -> None:
    for agent, records in trajectories.items():
        # the Task API's train split, from --first-task
        assert [r["reset"] for r in records] == [get_split("train").task(50 + i) for i in range(EPISODES)]
        for record in records:
            assert record["agent"] == agent and record["error"] is None
            check_record(record)


def test_the_experts_calls_depend_on_the_episode(trajectories: dict[str, list[dict[str, Any]]]) -> None:
    def calls(record: dict[str, Any]) -> list[str]:
        return [
            json.dumps(c["function"], sort_keys=True)
            for m in record["messages"]
            if m["role"] == "assistant"
            for c in m["tool_calls"]
        ]

    expert = trajectories["expert"]
    # Past the first two looks (annotations and the suspicious-date ranking), the calls differ between episodes.
    assert len({tuple(calls(record)[:5]) for record in expert}) > len(expert) // 2


@pytest.mark.parametrize("agent", AGENTS)
def test_replaying_a_record_reproduces_its_results_and_score(
    trajectories: dict[str, list[dict[str, Any]]], server_url: str, agent: str
) -> None:
    for record in (trajectories[agent][0], trajectories[agent][-1]):
        shown = [m["content"] for m in record["messages"] if m["role"] == "tool"]
        with MetricTrackerRlEnv(base_url=server_url).sync() as env:
            env.reset(**record["reset"])
            replayed = []
            for call in (c for m in record["messages"] if m["role"] == "assistant" for c in m["tool_calls"]):
                action = tool_action(call["function"]["name"], call["function"]["arguments"])
                replayed.append(env.step(action).observation)
        assert [render_observation(o) for o in replayed] == shown
        assert replayed[-1].status == "graded" and replayed[-1].reward_breakdown.score == record["score"]


def test_the_data_set_loads_with_datasets(trajectories: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    load_dataset = pytest.importorskip("datasets", reason=HF_GROUP).load_dataset

    path = tmp_path / "expert.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in trajectories["expert"]), encoding="utf-8")
    dataset = load_dataset("json", data_files=str(path), split="train")
    assert len(dataset) == len(trajectories["expert"])
    # Arrow's JSON reader may round the last digit of a float, so the check is on the structure.
    first = trajectories["expert"][0]
    assert [(m["role"], m.get("tool_call_id")) for m in dataset[0]["messages"]] == [
        (m["role"], m.get("tool_call_id")) for m in first["messages"]
    ]
    assert [t["function"]["name"] for t in dataset[0]["tools"]] == [t["function"]["name"] for t in first["tools"]]
