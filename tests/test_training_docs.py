"""docs/training.md shows the training scripts the smoke tests run: each `python` block that opens with a
`# training/<file>.py` comment is a verbatim excerpt of that file, so the page cannot drift from what was run."""

from __future__ import annotations

import re

from conftest import ROOT

BLOCK = re.compile(r"```python\n# (training/\w+\.py)\n(.*?)```", re.DOTALL)


def test_the_docs_training_scripts_are_excerpts_of_the_files() -> None:
    blocks = BLOCK.findall((ROOT / "docs" / "training.md").read_text(encoding="utf-8"))
    assert sorted(path for path, _ in blocks) == ["training/grpo.py", "training/sft.py"]
    for path, code in blocks:
        assert code in (ROOT / path).read_text(encoding="utf-8"), f"docs/training.md's {path} differs from the file"
