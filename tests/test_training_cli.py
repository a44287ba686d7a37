"""The training scripts' command lines: arguments parse before anything heavy is imported, the common settings
are flags (a CPU run is one flag away), and a missing train group or a Python TRL cannot run on is one clear
line with the command that fixes it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from conftest import ROOT

from metric_tracker_rl.catalog.task_splits import get_split
from metric_tracker_rl.catalog.tiers import DEFAULT_COMPLETION_TOKENS, TIERS
from training import grpo, sft, train_group_missing

HEAVY = ("trl", "torch", "transformers", "datasets", "gradio", "openenv")


@pytest.mark.parametrize("module", ["training.grpo", "training.sft"])
def test_help_lists_every_flag_with_its_default_and_imports_nothing_heavy(module: str) -> None:
    probe = (
        f"import sys, runpy; sys.argv = ['{module}', '--help']\n"
        f"try: runpy.run_module('{module}', run_name='__main__')\n"
        f"except SystemExit: pass\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.rstrip().endswith("LOADED []"), result.stdout[-400:]
    text = " ".join(result.stdout.split())
    for flag in ("--steps", "--batch-size", "--gradient-accumulation", "--cpu", "--learning-rate", "--output-dir"):
        assert flag in text
    for default in ("-1", "Qwen/Qwen3-1.7B", "runs/", "1e-0"):
        assert f"(default: {default}" in text, default


def test_grpo_flags_set_the_config_and_cpu_is_one_flag() -> None:
    cpu = grpo.config_overrides(
        grpo.parse_args(
            ["--cpu", "--steps", "3", "--batch-size", "2", "--num-generations", "2", "--gradient-accumulation", "1"]
        )
    )
    assert cpu == {
        "max_steps": 3,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "num_generations": 2,
        "max_completion_length": 16384,
        "learning_rate": 1e-6,
        "log_completions": False,
        "use_vllm": False,
        "use_cpu": True,
        "bf16": False,
    }
    server = grpo.config_overrides(grpo.parse_args(["--generation", "vllm-server"]))
    assert server["use_vllm"] is True and server["vllm_mode"] == "server" and "use_cpu" not in server
    assert grpo.config_overrides(grpo.parse_args([]))["vllm_mode"] == "colocate"


def test_grpo_completion_length_is_what_the_tasks_tiers_need(capsys: pytest.CaptureFixture[str]) -> None:
    """The first block's tiers take the usual length, a rung above them its own (the audit's the longest); a run
    whose tasks reach into a tier's block takes the longest its tasks need, and a length given on the command line
    wins."""
    usual, audit_need = DEFAULT_COMPLETION_TOKENS, TIERS["audit"].completion_tokens
    assert (
        audit_need
        == max(tier.completion_tokens for tier in TIERS.values())
        > usual
        == (grpo.parse_args([]).max_completion_length)
    )
    assert {name: grpo.completion_tokens(name) for name in TIERS} == {
        name: tier.completion_tokens for name, tier in TIERS.items()
    }
    audit = grpo.parse_args(["--tier", "audit"])
    assert audit.start == grpo.tier_tasks("audit").start and audit.max_completion_length == audit_need
    assert get_split("train").task(audit.start)["version"] == TIERS["audit"].version  # its latest version's block
    assert grpo.parse_args(["--tier", "deep"]).max_completion_length == TIERS["deep"].completion_tokens > usual
    before_audit = grpo.tier_tasks("warehouse").stop - 1  # the audit's blocks follow the warehouse's
    assert grpo.parse_args(["--start", str(before_audit), "--tasks", "1"]).max_completion_length == (
        TIERS["warehouse"].completion_tokens
    )
    assert grpo.parse_args(["--start", str(before_audit), "--tasks", "2"]).max_completion_length == audit_need
    assert grpo.parse_args(["--tier", "audit", "--max-completion-length", "8000"]).max_completion_length == 8000
    for wrong, says in (
        (["--tier", "easy"], "'easy' has no train block of its own"),
        (["--tasks", "0"], "--tasks must be at least 1"),
        (["--start", str(grpo.tier_tasks("audit").stop - 1), "--tasks", "2"], "index must be"),
    ):
        with pytest.raises(SystemExit) as exited:
            grpo.parse_args(wrong)
        assert exited.value.code == 2 and says in capsys.readouterr().err


def test_sfts_record_length_is_the_longest_a_tier_trains_on() -> None:
    assert sft.MAX_LENGTH == max(tier.completion_tokens for tier in TIERS.values()) == TIERS["audit"].completion_tokens
    assert sft.parse_args(["data/expert.jsonl"]).max_length == sft.MAX_LENGTH


def test_grpo_refuses_vllm_on_the_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        grpo.parse_args(["--cpu", "--generation", "vllm-colocate"])
    assert exited.value.code == 2 and "--cpu generates with transformers" in capsys.readouterr().err


def test_sft_flags_set_the_config() -> None:
    overrides = sft.config_overrides(sft.parse_args(["data/expert.jsonl", "--cpu", "--steps", "2", "--epochs", "1"]))
    assert overrides["max_steps"] == 2 and overrides["num_train_epochs"] == 1
    assert overrides["use_cpu"] is True and overrides["bf16"] is False


def test_the_reason_the_train_group_is_missing_names_the_python_trl_needs() -> None:
    reason = train_group_missing((3, 10))
    assert reason is not None and "Python 3.11 or newer, this is 3.10" in reason
    assert "uv sync --python 3.11 --inexact --group train" in reason
    assert train_group_missing((3, 12)) is None


@pytest.mark.skipif(importlib.util.find_spec("trl") is not None, reason="the train group is installed here")
@pytest.mark.parametrize("module", ["training.grpo", "training.sft"])
def test_without_the_train_group_a_run_exits_with_the_fix(module: str) -> None:
    args = ["--steps", "1"] if module == "training.grpo" else ["records.jsonl", "--steps", "1"]
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1 and result.stderr.strip() == f"error: {train_group_missing()}"
    assert "Traceback" not in result.stderr
