"""The reference agents as Inspect models (`--model metric_tracker/expert`): `inspect eval` runs end to end offline,
the agent playing through Inspect's model API and tools, and scores what `inference.py --agent NAME` scores."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import INSPECT_GROUP, ROOT

pytest.importorskip("inspect_ai", reason=INSPECT_GROUP)

from inspect_ai.log import read_eval_log  # noqa: E402
from inspect_ai.model import GenerateConfig, get_model  # noqa: E402

from metric_tracker_rl.agents.inspect_model import AgentModel  # noqa: E402

TASKS = "medium_mixed_three,hard_mixed_multi"
# No network: a proxy that answers nothing, and no Hub.
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
}


def test_the_model_is_found_by_its_provider_name_and_names_the_agents() -> None:
    model = get_model("metric_tracker/expert")
    assert isinstance(model.api, AgentModel) and model.api.model_name == "expert"
    with pytest.raises(ValueError, match="takes one of .*expert"):
        AgentModel("nobody")


def test_it_plays_only_inside_the_tasks_episodes() -> None:
    with pytest.raises(RuntimeError, match="plays only the metric_tracker_rl task"):
        asyncio.run(AgentModel("expert").generate([], [], "auto", GenerateConfig()))


def offline_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("METRIC_TRACKER_URL", "BASE_URL")}
    return {**env, **OFFLINE}


@pytest.mark.slow  # two offline runs: Inspect's and inference.py's, each with its own local server
@pytest.mark.parametrize("agent", ["scripted", "expert"])
def test_inspect_eval_scores_what_inference_scores(agent: str, tmp_path: Path) -> None:
    inspect = Path(sys.executable).parent / "inspect"
    docs = (ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")
    assert "uv run inspect eval metric_tracker_rl/metric_tracker --model metric_tracker/expert" in docs
    completed = subprocess.run(
        [
            str(inspect),
            "eval",
            "metric_tracker_rl/metric_tracker",
            "--model",
            f"metric_tracker/{agent}",
            "-T",
            f"tasks={TASKS}",
            "--log-dir",
            str(tmp_path / "logs"),
            "--display",
            "none",
        ],
        cwd=tmp_path,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    (log_path,) = (tmp_path / "logs").iterdir()
    log = read_eval_log(str(log_path))
    assert log.status == "success"
    inspected = {str(s.id): float(s.scores["episode_score"].value) for s in log.samples or []}
    assert log.stats.model_usage and all(usage.total_tokens == 0 for usage in log.stats.model_usage.values())
    output = tmp_path / "inference.json"
    completed = subprocess.run(
        [sys.executable, "inference.py", "--agent", agent, "--tasks", TASKS, "--output", str(output)],
        cwd=ROOT,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    inferred = {task["task_id"]: task["score"] for task in json.loads(output.read_text())["tasks"]}
    assert inspected == inferred and set(inferred) == set(TASKS.split(","))
    if agent == "scripted":
        assert all(0 < score < 1 for score in inferred.values()), inferred  # a score with room to differ
