"""What the docs say a server does, held to a live one on a loopback port: which tiers take which reset knobs
(docs/spaces.md), where the context tables answer (docs/tools.md), how abyss starts (docs/spaces.md) and the
`tools/list` example (docs/frameworks.md). What can be generated from the code is generated (lab/docs_blocks.py);
these are the sentences that cannot be."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import ROOT

from metric_tracker_rl import MetricTrackerRlAction, MetricTrackerRlEnv
from metric_tracker_rl.spec.published import DIFFICULTIES

pytestmark = pytest.mark.slow  # a server process

SPACES = (ROOT / "docs" / "spaces.md").read_text(encoding="utf-8")
TOOLS = (ROOT / "docs" / "tools.md").read_text(encoding="utf-8")
FRAMEWORKS = (ROOT / "docs" / "frameworks.md").read_text(encoding="utf-8")


def named_tiers(sentence_start: str, text: str) -> set[str]:
    """The tiers a sentence of the docs names in back quotes right after its start, e.g. "(`deep` and `abyss`)"."""
    match = re.search(re.escape(sentence_start) + r" \(([^)]*)\)", text)
    assert match, f"the docs no longer say {sentence_start!r}"
    return set(re.findall(r"`(\w+)`", match.group(1)))


@pytest.fixture(scope="module")
def env(server_url: str) -> Iterator[Any]:
    with MetricTrackerRlEnv(base_url=server_url).sync() as client:
        yield client


def accepted(env: Any, **reset_kwargs: Any) -> bool:
    return env.reset(**reset_kwargs).observation.status != "error"


def test_the_knobs_are_taken_at_the_tiers_the_docs_name(env: Any) -> None:
    segmented = named_tiers("At the segmented tiers", SPACES)
    cuboid = named_tiers("The cuboid tiers", SPACES)
    assert cuboid < segmented <= set(DIFFICULTIES)
    for difficulty in DIFFICULTIES:
        assert accepted(env, difficulty=difficulty, seed=3, decoy_ratio=1.0) == (difficulty in segmented), difficulty
        assert accepted(env, difficulty=difficulty, seed=3, max_cuboid_depth=2) == (difficulty in cuboid), difficulty


def test_the_context_tables_answer_at_the_tiers_the_docs_name(env: Any) -> None:
    row = next(line for line in TOOLS.splitlines() if line.startswith("| `experiments`, `campaigns`"))
    tiers = set(re.findall(r"\b(" + "|".join(DIFFICULTIES) + r")\b", row.split("|")[1]))
    for difficulty in DIFFICULTIES:
        assert accepted(env, difficulty=difficulty, seed=3)
        context = env.step(MetricTrackerRlAction(analysis_method="get_context", analysis_args={"table": "experiments"}))
        query = env.step(MetricTrackerRlAction(analysis_method="query",
                                               analysis_args={"sql": "SELECT count(*) AS n FROM experiments"}))
        answers = context.observation.status == "ok", query.observation.status == "ok"
        assert answers == ((difficulty in tiers),) * 2, (difficulty, context.observation.message)


def test_abyss_starts_as_the_docs_say(env: Any) -> None:
    section = SPACES[SPACES.index("### Playing abyss"):]
    task_id = re.search(r'reset\(task_id="(\w+)"\)', section).group(1)
    assert f"| `{task_id}` | abyss |" in SPACES
    observation = env.reset(task_id=task_id).observation
    assert (observation.status, observation.config["difficulty"], observation.task_id) == ("ready", "abyss", task_id)
    assert env.reset(difficulty="abyss", seed=7).observation.config["difficulty"] == "abyss"


def test_the_tools_list_example_is_what_the_server_answers(server_url: str) -> None:
    printed = FRAMEWORKS[FRAMEWORKS.index("printed (cut):"):]
    example = printed[printed.index("```\n") + 4:printed.index("...")].replace("\n", "")
    answer = httpx.post(f"{server_url}/mcp", json={"jsonrpc": "2.0", "method": "tools/list", "id": 1}, timeout=30)
    first = answer.json()["result"]["tools"][0]
    assert example.startswith('{"jsonrpc":"2.0","id":1,"result":{"tools":[')
    shown = json.loads(example.removeprefix('{"jsonrpc":"2.0","id":1,"result":{"tools":[').rstrip(","))
    assert shown == {key: first[key] for key in shown}
