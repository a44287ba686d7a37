"""The warehouse is wired in by a seam, not flags: a tier's mix type says what its episodes hold, a public episode
says whether its data are counts or events, and each tool says what it reads, so which tools a tier offers and
answers follows from its mix. What is left of the warehouse outside its own folders is a handful of branches."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
from core_helpers import ROOT, reset_episode

from metric_tracker_rl.analysis_tools import TOOL_REGISTRY, run_tool
from metric_tracker_rl.analysis_tools.registry import ToolSpec, episode_tools
from metric_tracker_rl.catalog.published import RESET_DIFFICULTIES, difficulties_holding
from metric_tracker_rl.catalog.tiers import (
    CONTEXT,
    COUNTS,
    DATA_OF,
    EVENTS,
    SEGMENTS,
    TIERS,
    AbyssMix,
    AggregateMix,
    AuditMix,
    SegmentedMix,
    WarehouseMix,
)
from metric_tracker_rl.view.tool_schemas import SUBMISSION_TOOLS, model_tools
from metric_tracker_rl.world.public_episode import Counts, Events

# The fields a tier uses alone, each on its own mix type (the shared segmented mix has none of them).
OWN_FIELDS = {
    AbyssMix: {"twin_z"},
    WarehouseMix: {"observed_share", "raise_unclear", "defects"},
    AuditMix: {
        "observed_share",
        "raise_unclear",
        "defects",
        "held_out_kinds",
        "held_out_defects",
        "defect_count",
        "margin",
        "listed_defects",
        "defect_overlap_share",
        "repaired_values",
        "weights",
    },
}
# The tiers of each mix type: the audit's mix is a warehouse's with mechanisms of its own.
OWN_TIERS = {AbyssMix: ["abyss"], WarehouseMix: ["warehouse", "audit"], AuditMix: ["audit"]}


def test_a_tiers_own_fields_are_its_mix_types_and_not_the_shared_mixs() -> None:
    shared = {field.name for field in dataclasses.fields(SegmentedMix)}
    assert not {"twin_z", "observed_share", "raise_unclear", "raw_events", "repaired_values", "weights"} & shared
    for kind, own in OWN_FIELDS.items():
        assert {field.name for field in dataclasses.fields(kind)} - shared == own
        assert [name for name, tier in TIERS.items() if isinstance(tier.segmented, kind)] == OWN_TIERS[kind]
    # A mix of counts reads the same values everywhere: every count, no raised cuboid, no twin credit.
    for name, tier in TIERS.items():
        mix = tier.segmented
        if mix is not None and not isinstance(mix, (AbyssMix, WarehouseMix)):
            assert (mix.observed_share, mix.raise_unclear, mix.twin_z) == (1.0, False, None), name


def test_what_a_tier_holds_follows_from_its_mix_type() -> None:
    for name, tier in TIERS.items():
        if isinstance(tier.mix, AggregateMix):
            expected = {COUNTS}
        elif isinstance(tier.mix, WarehouseMix):
            expected = {EVENTS}
        else:
            expected = {COUNTS, SEGMENTS} | ({CONTEXT} if tier.mix.context else set())
        assert tier.holds == expected, name
        assert tier.data == (EVENTS if isinstance(tier.mix, WarehouseMix) else COUNTS), name


@pytest.mark.parametrize("difficulty", RESET_DIFFICULTIES)
def test_a_public_episode_says_what_its_data_are(difficulty: str) -> None:
    public = reset_episode(difficulty=difficulty, seed=0).public
    tier = TIERS[difficulty]
    assert public.holds == tier.holds and public.source.kind == tier.data
    assert len(public.dates) == tier.window_days
    if tier.data == EVENTS:  # no zero-filled counts: a tool over counts has nothing to read, and says so loudly
        assert isinstance(public.source, Events) and public.segment_values() == public.source.dimensions
        assert set(public.sql_tables()) == set(public.source.tables)
        with pytest.raises(TypeError, match="data are events, not counts"):
            _ = public.data
    else:
        assert isinstance(public.source, Counts) and public.data.daily.sum() > 0
        assert {"daily", "hourly", "annotations"} <= set(public.sql_tables())


def _data_matches(spec_reads: frozenset[str], difficulty: str) -> bool:
    return all(DATA_OF[holding] == TIERS[difficulty].data for holding in spec_reads)  # type: ignore[index]


@pytest.mark.parametrize("spec", list(TOOL_REGISTRY.values()), ids=list(TOOL_REGISTRY))
def test_where_a_tool_answers_and_is_offered_follows_from_what_it_reads(spec: ToolSpec) -> None:
    """A tool answers where the episodes hold all it reads, and is offered (unless kept for another caller) where it
    answers: no list of tier names says either."""
    for difficulty in RESET_DIFFICULTIES:
        holds = TIERS[difficulty].holds
        assert (difficulty in spec.answers_at) == (spec.reads <= holds), difficulty
        assert (difficulty in spec.offered_at) == (spec.offered and spec.reads <= holds), difficulty
    assert spec.answers_at == difficulties_holding(*spec.reads)


@pytest.mark.parametrize("difficulty", RESET_DIFFICULTIES)
def test_a_tiers_tool_list_is_the_tools_of_its_data(difficulty: str) -> None:
    offered = [spec.name for spec in TOOL_REGISTRY.values() if difficulty in spec.offered_at]
    submissions = [tool.name for tool in SUBMISSION_TOOLS.values() if _data_matches(tool.reads, difficulty)]
    assert [tool.name for tool in model_tools(difficulty)] == offered + submissions
    if TIERS[difficulty].data == EVENTS:
        assert offered == ["query", "metrics_layer"] and submissions == ["submit_report"]


def test_a_tool_of_the_other_data_is_no_tool_of_an_episode() -> None:
    """At a tier of counts a tool of raw events is not one of the episode's tools, as a tool over counts is not at
    the warehouse: a call answers that the tier does not offer it, and names the tier's own tools."""
    for difficulty, absent in (("frontier", "metrics_layer"), ("warehouse", "show_raw_data")):
        public = reset_episode(difficulty=difficulty, seed=1).public
        own = episode_tools(public)
        assert absent not in own and "query" in own
        outcome = run_tool(absent, public, {})
        assert not outcome.ok and outcome.error is not None
        assert outcome.error.startswith(f"{absent} is not offered at difficulty {difficulty!r}")
        offered = outcome.error.split("the tools offered there: ", 1)[1].split(" (and", 1)[0].split(", ")
        assert set(offered) <= set(own)


# What names the warehouse, its raw events or the events data kind in code.
WAREHOUSE_NAME = re.compile(r"[Ww]arehouse|WAREHOUSE|raw_event|RAW_EVENT|^EVENTS$|^Events$")
OWN_FOLDERS = ("generation/warehouse/", "generation/defects/", "world/warehouse", "agents/warehouse", "sql/")
# The generator's dispatch and the reset's facts (what a tier of raw events publishes at its start). A text that
# follows the tier comes from its mix's type (`shows_incident_count`) or from what its episodes hold
# (COUNT_DIFFICULTIES), not from a test of the tier where the text is read.
MOST_CHECKS = 2


def _names(node: ast.AST) -> set[str]:
    found: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.add(child.id)
        elif isinstance(child, ast.Attribute):
            found.add(child.attr)
    return found


def _tests(tree: ast.AST) -> list[ast.AST]:
    """Every condition of the module: an if, a conditional expression, a while, an assert, a comprehension's filter,
    and every comparison or boolean operation elsewhere (a test computed into a name)."""
    tests: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.IfExp, ast.While, ast.Assert)):
            tests.append(node.test)
        elif isinstance(node, ast.comprehension):
            tests += node.ifs
        elif isinstance(node, (ast.Compare, ast.BoolOp)) or (
            isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance"
        ):
            tests.append(node)
    return tests


def warehouse_checks(package: Path = ROOT / "metric_tracker_rl") -> list[str]:
    """Where code outside the warehouse's own folders tests for it (each line once)."""
    found = set()
    for path in package.rglob("*.py"):
        relative = path.relative_to(package).as_posix()
        if relative.startswith(OWN_FOLDERS):
            continue
        for test in _tests(ast.parse(path.read_text())):
            if any(WAREHOUSE_NAME.search(name) for name in _names(test)):
                found.add(f"{relative}:{test.lineno}")
    return sorted(found)


def test_the_warehouse_is_tested_for_in_few_places_outside_its_own_folders() -> None:
    checks = warehouse_checks()
    assert len(checks) <= MOST_CHECKS, checks


def test_the_count_of_checks_sees_a_flag_added_anywhere(tmp_path: Path) -> None:
    """The count would not pass for nothing: a module that tests a warehouse flag is counted, in any of the forms."""
    package = tmp_path / "metric_tracker_rl"
    (package / "tools").mkdir(parents=True)
    (package / "tools" / "flagged.py").write_text(
        "def f(tier, names):\n"
        "    if tier.raw_events:\n        return 1\n"
        "    kept = [n for n in names if n not in RAW_EVENT_TIERS]\n"
        "    flag = tier.data == EVENTS\n"
        "    return 2 if isinstance(tier.segmented, WarehouseMix) else kept, flag\n"
    )
    (package / "generation" / "warehouse").mkdir(parents=True)
    (package / "generation" / "warehouse" / "own.py").write_text("x = 1 if warehouse else 2\n")
    assert warehouse_checks(package) == [f"tools/flagged.py:{line}" for line in (2, 4, 5, 6)]


def test_whether_a_tier_shows_its_incident_count_follows_from_its_mix_type() -> None:
    """A text that differs between counts and raw events reads the mix type's flag, not a test of the tier."""
    from metric_tracker_rl.catalog.shown_config import hides_incident_count

    for name, tier in TIERS.items():
        assert tier.mix.shows_incident_count == (tier.data == "counts") == (not hides_incident_count(name))
