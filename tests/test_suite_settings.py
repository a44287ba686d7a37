"""The suite's own pytest settings (pyproject.toml): the documented quiet run still ends with pytest's summary."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_a_quiet_run_ends_with_the_count_of_passed_tests(tmp_path: Path) -> None:
    """`uv run pytest -m "not slow" -q`, as the docs run it, under the project's settings: a `-q` in the settings'
    own options would add up with it and drop the "N passed" line."""
    (tmp_path / "test_two.py").write_text("def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    completed = subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir",
                                str(tmp_path), "-p", "no:cacheprovider", "-n", "0", "-m", "not slow", "-q",
                                str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert re.fullmatch(r"2 passed in [\d.]+s", completed.stdout.strip().splitlines()[-1]), completed.stdout
