"""inference.py's command line answers before the run's heavy imports: `--help` and a usage error need only the
catalog and the settings, not the client, the agents, the model API or the server (OpenEnv imports gradio)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from metric_tracker_rl.catalog.published import DIFFICULTIES

HEAVY = ("openenv", "gradio", "openai", "uvicorn", "metric_tracker_rl.agents", "metric_tracker_rl.client",
         "metric_tracker_rl.serving")
PROBE = """
import json, sys
import inference
try:
    inference.main(sys.argv[1:])
except SystemExit as exit_info:
    code = exit_info.code
heavy = sorted(name for name in sys.modules if any(name == h or name.startswith(h + ".") for h in {heavy!r}))
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


def probe(*argv: str) -> tuple[dict[str, object], str]:
    """Run inference.main on `argv` in a fresh interpreter: its exit code, the heavy modules it imported, stderr."""
    env = {key: value for key, value in os.environ.items() if not key.endswith(("_KEY", "_TOKEN"))}
    completed = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=120)
    return json.loads(completed.stdout.strip().splitlines()[-1]), completed.stderr


@pytest.mark.parametrize(("argv", "code", "says"), [
    (["--help"], 0, None),
    (["--difficulty", "bogus"], 2, f"valid (in any case): {', '.join(DIFFICULTIES)}"),
    (["--tasks", "no_such_task"], 2, "easy_two_spikes"),
    (["--difficulty", "deep", "--max-cuboid-depth", "9"], 2, "max_cuboid_depth must be between 1 and 3"),
    (["--port", "70000"], 2, "--port must be between 0 (a free port) and 65535"),
])
def test_help_and_usage_errors_answer_before_the_heavy_imports(argv: list[str], code: int, says: str | None) -> None:
    result, stderr = probe(*argv)
    assert result == {"code": code, "heavy": []}, stderr
    if says is not None:
        assert says in " ".join(stderr.split())


def test_the_help_names_the_port_flag() -> None:
    completed = subprocess.run([sys.executable, "inference.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0
    text = " ".join(completed.stdout.split())
    assert "--port PORT the loopback port of the server this run starts" in text
