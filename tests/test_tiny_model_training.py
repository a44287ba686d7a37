"""The documented first training run works offline: `training.tiny_model` builds a tiny Qwen3 into a directory
without any download, and `training.grpo --model DIR --cpu` trains it for a step against a live server, quietly
unless --log-completions asks for the completions' table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TRAIN_GROUP

from metric_tracker_rl.serving.local_server import local_server

pytest.importorskip("trl", reason=TRAIN_GROUP)

OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
}


def documented_commands() -> list[list[str]]:
    """The guide's two commands for a first CPU run, continuation lines joined, `uv run python` as this Python."""
    text = (ROOT / "docs" / "training.md").read_text(encoding="utf-8").replace("\\\n", " ")
    build = re.search(r"^uv run python -m training\.tiny_model (\S+)", text, re.M)
    train = re.search(
        r"^METRIC_TRACKER_URL=\S+ uv run python -m (training\.grpo --model (\S+) --cpu [^\n]*)$", text, re.M
    )
    assert build and train and build.group(1) == train.group(2)
    return [["-m", "training.tiny_model", build.group(1)], ["-m", *train.group(1).split()]]


def test_the_grpo_cli_logs_completions_only_when_asked() -> None:
    from training import grpo

    quiet = grpo.config_overrides(grpo.parse_args(["--cpu"]))
    assert quiet["log_completions"] is False
    assert grpo.config_overrides(grpo.parse_args(["--cpu", "--log-completions"]))["log_completions"] is True


@pytest.mark.slow  # builds a model and trains it for a step (about two minutes on two cores)
def test_the_documented_first_run_builds_and_trains_offline(tmp_path: Path) -> None:
    build, train = documented_commands()
    model_dir = tmp_path / build[-1]
    env = {**os.environ, **OFFLINE}
    completed = subprocess.run(
        [sys.executable, *build[:-1], str(model_dir)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= {
        path.name for path in model_dir.iterdir()
    }
    train = [str(model_dir) if part == build[-1] else part for part in train]
    with local_server(in_process=True) as url:
        completed = subprocess.run(
            [sys.executable, *train, "--tasks", "2", "--output-dir", str(tmp_path / "run")],
            cwd=ROOT,
            env={**env, "METRIC_TRACKER_URL": url},
            capture_output=True,
            text=True,
            timeout=900,
        )
    assert completed.returncode == 0, completed.stderr[-3000:]
    log = completed.stdout + completed.stderr
    assert "'rewards/MetricTrackerToolEnv/mean'" in log and "train_runtime" in log
    assert len(log) < 20_000, "the completions' table is off by default"
    assert any((tmp_path / "run").rglob("model.safetensors"))
