"""What every tool must meet, as checks a test runs on each registered tool and on a scratch one (the docs'
example): a schema that validates its example, an example that answers where the tool says it answers, plain JSON
results, a tool text a model can read, and tool lists that fit every tier's budget."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager

import jsonschema
import pytest
from core_helpers import episode

from metric_tracker_rl.analysis_tools import TOOL_REGISTRY, run_tool
from metric_tracker_rl.analysis_tools.registry import EVERY_TIER, MAX_PAGE_ROWS, add_tool, unregister_tool
from metric_tracker_rl.spec.tiers import TIERS
from metric_tracker_rl.view.tool_schemas import model_tools, openai_tools, schema_chars

# A tool's description: long enough to say when to use it, short enough for every tier's budget.
DESCRIPTION_CHARS = (20, 110)


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


def assert_plain_json(value: object, where: str = "result") -> None:
    """Only the types JSON has, exactly (no numpy scalars, no NaN or infinities): tools build their results
    this way and nothing converts them afterwards."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            assert type(key) is str, f"{where}: key {key!r}"
            assert_plain_json(item, f"{where}.{key}")
    elif kind is list:
        for i, item in enumerate(value):
            assert_plain_json(item, f"{where}[{i}]")
    elif kind is float:
        assert math.isfinite(value), f"{where} = {value}"
    else:
        assert kind in (str, int, bool, type(None)), f"{where} has type {kind.__name__}"


def check_schema_and_example(name: str) -> None:
    """The wire schema is valid JSON Schema, takes the example and refuses what the argument model refuses."""
    spec = TOOL_REGISTRY[name]
    schema = spec.openai_schema()
    assert schema["type"] == "function" and schema["function"]["name"] == name
    parameters = schema["function"]["parameters"]
    jsonschema.Draft202012Validator.check_schema(parameters)
    jsonschema.validate(spec.example, parameters)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**spec.example, "not_an_argument": 1}, parameters)


def check_answers_where_registered(name: str) -> None:
    """The example answers, in plain JSON, on an episode of a tier the tool answers at (hard's where it does), and
    is an error that says so at a tier it does not answer at."""
    spec = TOOL_REGISTRY[name]
    answering = "hard" if "hard" in spec.answers_at else spec.answers_at[0]
    outcome = run_tool(name, episode(1, difficulty=answering).public, spec.example)
    assert outcome.ok, outcome.error
    assert outcome.result["method"] == name
    assert_plain_json(outcome.result, name)
    json.dumps(outcome.result, allow_nan=False)
    silent = [tier for tier in EVERY_TIER if tier not in spec.answers_at]
    if silent:
        refused = run_tool(name, episode(1, difficulty=silent[0]).public, spec.example)
        assert not refused.ok and refused.error, refused


def check_model_text(name: str) -> None:
    """An offered tool reads well in every tool list that has it: a description that says when to use it, no
    optional-field unions or titles, and a generator's paging with its bounds."""
    spec = TOOL_REGISTRY[name]
    for tier in spec.offered_at:
        [tool] = [tool for tool in openai_tools(tier) if tool["function"]["name"] == name]
        low, high = DESCRIPTION_CHARS
        assert low <= len(tool["function"]["description"]) <= high, tool["function"]["description"]
        properties = tool["function"]["parameters"].get("properties", {})
        for field, prop in properties.items():
            assert "anyOf" not in prop and "title" not in prop, (name, field)
        if spec.kind == "generator":
            assert {"limit", "offset"} <= set(properties) and properties["limit"]["maximum"] == MAX_PAGE_ROWS


def check_tool_contract(name: str) -> None:
    check_schema_and_example(name)
    check_answers_where_registered(name)
    check_model_text(name)


def check_schema_budgets() -> dict[str, int]:
    """Every tier's tool list fits its budget and says when to use each tool (one description each); returns
    each tier's size in characters."""
    sizes = {}
    for tier in EVERY_TIER:
        sizes[tier] = schema_chars(tier)
        assert sizes[tier] <= TIERS[tier].tool_schema_budget, (tier, sizes[tier], TIERS[tier].tool_schema_budget)
        descriptions = [tool.description for tool in model_tools(tier)]
        assert len(set(descriptions)) == len(descriptions), tier
    return sizes
