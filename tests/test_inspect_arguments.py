"""The Inspect task's bad arguments (`-T name=value`) are one line naming what is valid: the task raises Inspect's
PrerequisiteError, whose message alone its command line prints, instead of a traceback of the task's loading.
(tests/test_inspect_eval.py runs the command line itself.)"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import INSPECT_GROUP

pytest.importorskip("inspect_ai", reason=INSPECT_GROUP)

from inspect_ai._util.error import PrerequisiteError  # noqa: E402

from metric_tracker_rl.adapters.inspect_eval import metric_tracker  # noqa: E402

BAD_ARGUMENTS = [
    ({"seeds": "abc"}, "seeds must be a whole number, 0 or more, got 'abc'"),
    ({"seeds": -1}, "seeds must be a whole number, 0 or more, got -1"),
    ({"offset": 1.5, "seeds": 1}, "offset must be a whole number, 0 or more, got 1.5"),
    ({"max_turns": 0}, "max_turns must be a whole number, 1 or more, got 0"),
    ({"difficulty": "auditt"}, "unknown difficulty 'auditt'; valid choices: easy, medium, hard, frontier, deep"),
    ({"tasks": "nope"}, "unknown task_id 'nope'; valid (in any case): easy_two_spikes"),
    ({"magnitude_scale": 2}, "magnitude_scale applies at difficulty 'deep' or 'abyss' or 'warehouse' only"),
]


@pytest.mark.parametrize(("arguments", "says"), BAD_ARGUMENTS)
def test_a_bad_argument_is_one_line_naming_what_is_valid(arguments: dict[str, Any], says: str) -> None:
    with pytest.raises(PrerequisiteError) as raised:
        metric_tracker(**arguments)
    message = str(raised.value.message)
    assert message.startswith("metric_tracker: ") and says in message and "\n" not in message, message
    assert isinstance(raised.value, ValueError)  # what a caller in Python catches


def test_the_names_samples_carry_are_names_tasks_takes() -> None:
    """A sample's id (a named task's, or `<difficulty>_<seed>`, the audit's stand-in episode among them) is a name
    `-T tasks=` takes back, for the same reset arguments."""
    samples = list(metric_tracker(difficulty="warehouse,audit").dataset)
    again = list(metric_tracker(tasks=",".join(str(sample.id) for sample in samples)).dataset)
    assert [(s.id, s.metadata) for s in again] == [(s.id, s.metadata) for s in samples]
