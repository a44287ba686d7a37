"""Every entry point offers each tier its own tools: for every difficulty a reset accepts, `model_tools(d)` is the
TRL class's methods for d, MCP's tools/list after a reset at d, the reset's list of the tools offered there and
Inspect's tools, with the same descriptions and limits; a tool the tier does not offer answers an error that says
so and names the tier's tools."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from conftest import INSPECT_GROUP
from openenv.core.env_server.mcp_types import ListToolsAction, ListToolsObservation

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.adapters.trl import MetricTrackerToolEnv
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.catalog.published import DIFFICULTIES, RESET_DIFFICULTIES
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.sandbox import MAX_SQL_CHARS, WAREHOUSE_MAX_SQL_CHARS
from metric_tracker_rl.view.tool_schemas import model_tools

SEED = 3


def trl_methods(cls: type) -> list[str]:
    """The methods TRL offers as tools: the public functions of the class but reset and get_reward (as
    GRPOTrainer lists them, on the class)."""
    return [
        name
        for name, _ in inspect.getmembers(cls, predicate=inspect.isfunction)
        if not name.startswith("_") and name not in ("reset", "get_reward")
    ]


@pytest.mark.parametrize("difficulty", RESET_DIFFICULTIES)
def test_every_entry_point_offers_the_tiers_own_tools(difficulty: str) -> None:
    offered = model_tools(difficulty)
    names = [tool.name for tool in offered]
    # TRL: the tier's class has exactly the tier's tools, each documented with the tier's description.
    tier_class = MetricTrackerToolEnv.for_tier(difficulty)
    assert tier_class is MetricTrackerToolEnv.for_tier(difficulty) and issubclass(tier_class, MetricTrackerToolEnv)
    assert sorted(trl_methods(tier_class)) == sorted(names)
    for tool in offered:
        assert getattr(tier_class, tool.name).__doc__.startswith(" ".join(tool.description.split()))
    environment = MetricTrackerRlEnvironment()
    reset = environment.reset(difficulty=difficulty, seed=SEED)
    # The reset's list: the tools offered there, as the tier's models read them.
    listed = [method for method in reset.available_methods if method.offered]
    assert [method.name for method in listed] == [name for name in names if name in TOOL_REGISTRY]
    by_name = {tool.name: tool for tool in offered}
    assert all(method.description == by_name[method.name].description for method in listed)
    # MCP, both ways OpenEnv routes it, after the reset.
    observation = environment.step(ListToolsAction())
    assert isinstance(observation, ListToolsObservation)
    assert [(tool.name, tool.description, tool.input_schema) for tool in observation.tools] == [
        (tool.name, tool.description, tool.parameters) for tool in offered
    ]
    rpc_listed = asyncio.run(environment.mcp_client.list_tools())
    assert [tool["name"] for tool in rpc_listed] == names


@pytest.mark.parametrize("difficulty", RESET_DIFFICULTIES)
def test_inspect_offers_the_tiers_own_tools(difficulty: str) -> None:
    """Inspect's episode, reset at a tier, lists the tier's tools in its reset and offers them as its tools."""
    store = pytest.importorskip("inspect_ai.util", reason=INSPECT_GROUP).Store
    from metric_tracker_rl.adapters.inspect_eval.episode import Episode, EpisodeRecord
    from metric_tracker_rl.adapters.inspect_eval.tools import episode_tools

    offered = model_tools(difficulty)
    episode = Episode(MetricTrackerRlEnvironment(), EpisodeRecord(store=store()))  # type: ignore[arg-type]
    reset = asyncio.run(episode.reset({"difficulty": difficulty, "seed": SEED}))
    listed = [method.name for method in reset.available_methods if method.offered]
    assert listed == [tool.name for tool in offered if tool.name in TOOL_REGISTRY]
    inspect_tools = episode_tools(episode)
    assert [(tool.name, tool.description) for tool in inspect_tools] == [(t.name, t.description) for t in offered]


def test_the_warehouse_class_takes_the_tiers_longer_statements() -> None:
    """The limits are the tier's: the warehouse's query takes 8,000 characters where the counts' take 4,000, in the
    TRL class's docstring and in the reset's schema."""
    warehouse = MetricTrackerToolEnv.for_tier("warehouse")
    assert f"max {WAREHOUSE_MAX_SQL_CHARS} chars" in (warehouse.query.__doc__ or "")
    assert f"max {MAX_SQL_CHARS} chars" in (MetricTrackerToolEnv.for_tier("abyss").query.__doc__ or "")
    assert not hasattr(warehouse, "compare_segments") and hasattr(MetricTrackerToolEnv, "compare_segments")
    with pytest.raises(AttributeError, match="not offered at difficulty 'warehouse'"):
        warehouse.task_overview  # noqa: B018
    observation = MetricTrackerRlEnvironment().reset(difficulty="warehouse", seed=SEED)
    [query] = [method for method in observation.available_methods if method.name == "query"]
    assert f"max {WAREHOUSE_MAX_SQL_CHARS} chars" in query.parameters["properties"]["sql"]["description"]


def test_the_default_class_offers_every_listed_tiers_tools() -> None:
    every = {tool.name for difficulty in DIFFICULTIES for tool in model_tools(difficulty)}
    assert set(trl_methods(MetricTrackerToolEnv)) == every == {tool.name for tool in model_tools()}
    with pytest.raises(ValueError, match="valid: easy, medium"):
        MetricTrackerToolEnv.for_tier("impossible")


@pytest.mark.parametrize(
    ("difficulty", "tool", "arguments"),
    [
        ("easy", "compare_segments", {"metric_name": "app_opens", "date": "2026-03-10", "dimension": "platform"}),
        ("easy", "get_releases", {}),
        ("frontier", "get_context", {"table": "experiments"}),
        ("deep", "metrics_layer", {}),
        ("warehouse", "list_suspicious_dates", {}),
    ],
)
def test_a_tool_the_tier_does_not_offer_says_so_and_names_the_tiers_tools(
    difficulty: str, tool: str, arguments: dict[str, object]
) -> None:
    environment = MetricTrackerRlEnvironment()
    environment.reset(difficulty=difficulty, seed=SEED)
    observation = environment.step(MetricTrackerRlAction(analysis_method=tool, analysis_args=arguments))
    assert observation.status == "error" and observation.reward == 0.0 and not observation.done
    tier_tools = ", ".join(t.name for t in model_tools(difficulty) if t.name in TOOL_REGISTRY)
    where = ", ".join(d for d in RESET_DIFFICULTIES if tool in [t.name for t in model_tools(d)])
    assert observation.message == (
        f"{tool} is not offered at difficulty {difficulty!r} (only at {where}); the "
        f"tools offered there: {tier_tools} (and the report's submission)"
    )
    assert tool not in [t.name for t in model_tools(difficulty)]


@pytest.mark.parametrize("difficulty", RESET_DIFFICULTIES)
def test_a_tier_class_has_and_lists_only_its_own_tools(difficulty: str) -> None:
    """dir() of a tier's class, and of an instance, lists the tier's tools and no other tool; a tool it does not
    offer is no attribute of either."""
    every = {tool.name for tool in model_tools()} | {name for name in TOOL_REGISTRY}
    own = {tool.name for tool in model_tools(difficulty)}
    tier_class = MetricTrackerToolEnv.for_tier(difficulty)
    instance = tier_class()  # built without a server: the client connects on the first reset
    for members in (dir(tier_class), dir(instance)):
        assert set(members) & every == own
    assert not [name for name in every - own if hasattr(tier_class, name) or hasattr(instance, name)]
