"""One registry for everything looked up by name: it keeps registration order, refuses a duplicate, lists its
names, names the valid ones when a lookup misses, and is the registry of families, kinds, tiers, tools and agents."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from metric_tracker_rl.agents import AGENTS, make_agent
from metric_tracker_rl.analysis_tools.registry import TOOL_REGISTRY
from metric_tracker_rl.catalog.registry import Registry, UnknownName
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation.anomalies import FAMILY_REGISTRY
from metric_tracker_rl.generation.kinds import BENIGN_KIND_REGISTRY, INCIDENT_KIND_REGISTRY


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
