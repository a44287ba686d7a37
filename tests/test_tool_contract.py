"""Every tool meets one contract (the package's own checker, metric_tracker_rl.checks), the tool lists fit every
tier's budget, each tool is one module that registers the tool of its name, and the docs' example tool registers as
a new module would without breaking either."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import jsonschema
import numpy as np
import pytest
from core_helpers import ROOT, reset_episode

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY, run_tool
from metric_tracker_rl.analysis_tools.registry import (
    AGGREGATE_TIERS,
    EVERY_TIER,
    add_tool,
    register_tool,
    unregister_tool,
)
from metric_tracker_rl.analysis_tools.tools import LISTING, tool_module_names
from metric_tracker_rl.catalog.published import COUNT_COLUMNS
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.checks import check_tool, check_tool_list
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.tool_schemas import model_tools, schema_chars

TOOLS_FOLDER = ROOT / "metric_tracker_rl" / "analysis_tools" / "tools"


@contextmanager
def scratch_tools(*replaced: str) -> Iterator[None]:
    """Tools registered inside the block are unregistered after it, even when it fails. The tools `replaced` names
    are out of the registry during the block (a scratch copy registers under the name) and back after it."""
    before = list(TOOL_REGISTRY)
    taken = [unregister_tool(name) for name in replaced if name in TOOL_REGISTRY]
    kept = list(TOOL_REGISTRY)
    try:
        yield
    finally:
        for name in [name for name in TOOL_REGISTRY if name not in kept]:
            unregister_tool(name)
        for spec in taken:
            add_tool(spec)
        assert set(TOOL_REGISTRY) == set(before)


@pytest.mark.parametrize("name", list(TOOL_REGISTRY))
def test_every_tool_meets_the_contract(name: str) -> None:
    check_tool(name)


@pytest.mark.parametrize("name", list(TOOL_REGISTRY))
def test_every_tool_schema_is_json_schema_that_takes_its_example_only(name: str) -> None:
    """What the checker reads off the argument model, a JSON Schema validator reads off the wire schema."""
    spec = TOOL_REGISTRY[name]
    parameters = spec.openai_schema()["function"]["parameters"]
    jsonschema.Draft202012Validator.check_schema(parameters)
    jsonschema.validate(spec.example, parameters)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**spec.example, "not_an_argument": 1}, parameters)


def test_every_tiers_tool_list_fits_its_budget() -> None:
    sizes = {tier: check_tool_list(tier) for tier in EVERY_TIER}
    assert all(size <= schema_chars() for size in sizes.values())  # no tier offers what the union lacks


def test_each_tool_module_registers_the_tool_of_its_name_in_listing_order() -> None:
    names = tool_module_names()
    assert list(TOOL_REGISTRY) == list(names) and names[: len(LISTING)] == LISTING
    for name in names:
        source = (TOOLS_FOLDER / f"{name}.py").read_text()
        registered = re.findall(r'register_\w+\(\s*"(\w+)"', source)
        assert registered == [name], (name, registered)


def test_a_tier_name_a_tool_gives_must_be_a_tier() -> None:
    with pytest.raises(ValueError, match="unknown offered_at 'expert'; valid: easy"):
        register_tool(
            "never_registered",
            "A tool no tier has.",
            TOOL_REGISTRY["list_dates"].args_model,
            reads=(COUNTS,),
            offered_at=("expert",),
        )
    with pytest.raises(ValueError, match="unknown reads 'rows'; valid: counts, segments, context, events"):
        register_tool(
            "never_registered",
            "A tool that reads what no episode holds.",
            TOOL_REGISTRY["list_dates"].args_model,
            reads=("rows",),
        )  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="either offered"):
        register_tool(
            "never_registered",
            "A tool both offered and kept.",
            TOOL_REGISTRY["list_dates"].args_model,
            reads=(COUNTS,),
            offered_at=("easy",),
            kept_for="a caller",
        )
    assert "never_registered" not in TOOL_REGISTRY


def docs_tool_example(section: str = "## Writing a tool") -> str:
    text = (ROOT / "docs" / "tools.md").read_text()
    return re.search(r"```python\n(.*?)```", text.split(section, 1)[1], re.S).group(1)


def test_the_docs_example_is_one_module_named_as_its_tool() -> None:
    code = docs_tool_example()
    [name] = re.findall(r'@register_tool\(\s*"(\w+)"', code)
    assert f"`metric_tracker_rl/analysis_tools/tools/{name}.py`:" in (ROOT / "docs" / "tools.md").read_text()
    assert ast.get_docstring(ast.parse(code))  # a module says why it is there


def test_the_docs_example_tool_registers_meets_the_contract_and_fits_every_budget() -> None:
    code = docs_tool_example()
    listed = list(TOOL_REGISTRY)
    with scratch_tools("get_weekday_means"):  # the same tool as a module of the package steps aside
        before = {tier: schema_chars(tier) for tier in EVERY_TIER}
        exec(compile(code, "docs/tools.md", "exec"), {"__name__": "docs_example"})  # noqa: S102 - our own docs
        spec = TOOL_REGISTRY["get_weekday_means"]
        check_tool("get_weekday_means")
        sizes = {tier: check_tool_list(tier) for tier in EVERY_TIER}
        # It counts against the budgets of the tiers that offer it, and no other.
        [tool] = [tool for tool in model_tools("easy") if tool.name == spec.name]
        own = len(json.dumps(tool.openai_schema()))
        assert spec.offered_at == AGGREGATE_TIERS
        assert sizes == {tier: before[tier] + (own if tier in AGGREGATE_TIERS else 0) for tier in EVERY_TIER}
        assert_weekday_means_answer()
        # and through the environment, as an agent calls it
        env = MetricTrackerRlEnvironment()
        env.reset(task_id="hard_mixed_multi")
        observation = env.step(
            MetricTrackerRlAction(
                analysis_method="get_weekday_means", analysis_args={"column": "app_open_to_order_placed"}
            )
        )
        assert observation.status == "ok" and len(observation.analysis_result["means"]) == 7
    assert list(TOOL_REGISTRY) == listed


def assert_weekday_means_answer() -> None:
    """The example's numbers are the raw counts' weekday means, and a column it lacks is an error naming the
    valid ones."""
    public = reset_episode(task_id="hard_mixed_multi").public
    outcome = run_tool("get_weekday_means", public, {"column": "orders_placed"})
    assert outcome.ok, outcome.error
    column = public.data.daily[:, COUNT_COLUMNS.index("orders_placed")]
    for weekday, mean in outcome.result["means"].items():
        days = [i for i, day in enumerate(public.data.weekdays) if day == weekday]
        assert mean == pytest.approx(float(np.mean(column[days])))
    assert len(outcome.result["means"]) == 7
    bad = run_tool("get_weekday_means", public, {"column": "revenue"})
    assert not bad.ok and "valid:" in bad.error and "app_opens" in bad.error


def test_the_docs_checking_block_runs_on_the_docs_example_tool() -> None:
    """The block that tells a third party how to check their tool runs as written, on the tool the docs write."""
    with scratch_tools("get_weekday_means"):
        exec(compile(docs_tool_example(), "docs/tools.md", "exec"), {"__name__": "docs_example"})  # noqa: S102
        exec(
            compile(docs_tool_example("## Checking a tool"), "docs/tools.md", "exec"),  # noqa: S102
            {"__name__": "docs_check"},
        )
