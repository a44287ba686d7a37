"""One registry for everything looked up by name: it keeps registration order, refuses a duplicate, lists its
names, names the valid ones when a lookup misses, and is the registry of families, kinds, tiers, tools and agents."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from metric_tracker_rl.agents import AGENTS, make_agent
from metric_tracker_rl.analysis_tools.registry import EVERY_TIER, TOOL_REGISTRY, register_tool, unregister_tool
from metric_tracker_rl.catalog.registry import Registry, UnknownName, derived_from
from metric_tracker_rl.catalog.tiers import COUNTS, TIERS
from metric_tracker_rl.generation.anomalies import FAMILY_REGISTRY
from metric_tracker_rl.generation.kinds import BENIGN_KIND_REGISTRY, INCIDENT_KIND_REGISTRY
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment


@dataclass(frozen=True)
class Item:
    name: str
    size: int = 0


def test_a_registry_keeps_order_and_refuses_a_duplicate() -> None:
    registry = Registry("item", (Item("b"), Item("a")))
    registry.register(Item("c"))
    assert registry.names() == ("b", "a", "c") and list(registry) == ["b", "a", "c"] and len(registry) == 3
    with pytest.raises(ValueError, match="item 'a' is already registered"):
        registry.register(Item("a", size=1))
    assert registry["a"] == Item("a")  # the first stays


def test_a_missed_lookup_names_the_valid_names() -> None:
    registry = Registry("item", (Item("b"), Item("a")))
    with pytest.raises(UnknownName) as missed:
        registry["z"]
    assert str(missed.value) == "unknown item 'z'; valid: b, a"
    assert isinstance(missed.value, KeyError) and isinstance(missed.value, ValueError)
    assert registry.get("z") is None and registry.get("z", Item("d")) == Item("d") and "z" not in registry
    assert dict(registry.items()) == {"b": Item("b"), "a": Item("a")}


def test_a_check_refuses_an_entry_and_a_name_can_be_given() -> None:
    def small(item: Item) -> None:
        if item.size > 1:
            raise ValueError(f"{item.name!r} is too big")

    registry = Registry("item", check=small)
    with pytest.raises(ValueError, match="'big' is too big"):
        registry.register(Item("big", size=2))
    assert "big" not in registry
    registry.register(Item("x"), name="other")
    assert registry.names() == ("other",)
    with pytest.raises(ValueError, match="needs a name"):
        registry.register(object())  # type: ignore[arg-type]


def test_unregister_leaves_the_registry_as_it_was() -> None:
    registry = Registry("item", (Item("a"),))
    registry.register(Item("scratch"))
    assert registry.unregister("scratch") == Item("scratch")
    assert registry.names() == ("a",)
    with pytest.raises(UnknownName, match="valid: a"):
        registry.unregister("scratch")


def test_a_substitute_keeps_its_place_and_the_original_comes_back_even_after_an_error() -> None:
    registry = Registry("item", (Item("a"), Item("b"), Item("c")))
    with pytest.raises(RuntimeError), registry.substituted(Item("b", size=9)) as held:
        assert held == Item("b", size=9)
        assert registry.names() == ("a", "b", "c") and registry["b"].size == 9
        raise RuntimeError("the block fails")
    assert registry.names() == ("a", "b", "c") and registry["b"] == Item("b")
    with pytest.raises(UnknownName, match="valid: a, b, c"), registry.substituted(Item("z")):
        pass


def test_families_kinds_tiers_tools_and_agents_share_the_registry() -> None:
    for registry in (FAMILY_REGISTRY, INCIDENT_KIND_REGISTRY, BENIGN_KIND_REGISTRY, TIERS, TOOL_REGISTRY, AGENTS):
        assert isinstance(registry, Registry)
        assert registry.names() and set(registry.names()) == set(registry)
    with pytest.raises(ValueError, match="unknown tier 'summit'; valid: easy, medium, hard, frontier, deep"):
        TIERS["summit"]
    with pytest.raises(ValueError, match="unknown agent 'nobody'; valid: .*expert"):
        make_agent("nobody")


def test_what_is_derived_from_a_registry_is_built_again_after_each_change_and_only_then() -> None:
    registry = Registry("item", (Item("a"),))
    builds: list[tuple[str, ...]] = []

    @derived_from(registry)
    def names() -> tuple[str, ...]:
        builds.append(registry.names())
        return registry.names()

    assert names() == names() == ("a",) and len(builds) == 1
    registry.register(Item("b"))
    assert names() == ("a", "b")
    with registry.substituted(Item("b", size=1)):
        assert names() == ("a", "b") and builds[-1] == ("a", "b") and len(builds) == 3
    assert names() == ("a", "b") and len(builds) == 4
    registry.unregister("b")
    assert names() == names() == ("a",) and len(builds) == 5


def test_the_reset_catalog_lists_a_tool_while_it_is_registered_and_not_after() -> None:
    """The catalogs a reset sends are built from the registries: a scratch tool is listed while it is registered,
    whether or not a reset already sent them, and is gone after it is unregistered."""

    def methods() -> set[str]:
        return {method.name for method in MetricTrackerRlEnvironment().reset(seed=1).available_methods}

    answering = {name for name, spec in TOOL_REGISTRY.items() if "medium" in spec.answers_at}  # a seeded reset's tier
    assert methods() == answering
    name = "scratch_tool_for_the_catalog"
    register_tool(
        name, "Answers nothing.", TOOL_REGISTRY["list_dates"].args_model, offered_at=EVERY_TIER, reads=(COUNTS,)
    )(lambda episode, args: {})
    try:
        assert name in methods()
    finally:
        unregister_tool(name)
    assert methods() == answering
