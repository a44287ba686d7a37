"""A mechanism is one module: a data defect dropped into generation/defects/mechanisms/ and an incident kind dropped
into generation/kinds/ are found and registered with no line anywhere else, and one whose name is taken is refused.
The scratch modules live in a temporary folder added to the package's path, and leave the registries as they were."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from metric_tracker_rl.catalog.registry import import_package_modules
from metric_tracker_rl.generation import kinds
from metric_tracker_rl.generation.defects import DEFECT_REGISTRY, mechanisms
from metric_tracker_rl.generation.defects.mechanisms import mechanism_module_names
from metric_tracker_rl.generation.kinds import BENIGN_KIND_REGISTRY, LISTING

DEFECT_MODULE = """
from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.world.segments import Segment


@register_defect({name!r}, "pipeline")
def edit(log, rng):
    return log, DefectRecord({name!r}, (7,), Segment(), "sessions", "a scratch defect")
"""

KIND_MODULE = """
from metric_tracker_rl.generation.kinds.base import register_benign_kind
from metric_tracker_rl.generation.kinds.mix_shift import MixShift


class Scratch(MixShift):
    name = {name!r}


register_benign_kind(Scratch())
"""


@pytest.fixture
def dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Write a module into a folder on a package's path: `drop(package, module_name, text)`."""
    written: list[str] = []

    def drop(package: object, module: str, text: str) -> None:
        folder = tmp_path / module
        folder.mkdir()
        (folder / f"{module}.py").write_text(text)
        monkeypatch.setattr(package, "__path__", [*package.__path__, str(folder)])  # type: ignore[attr-defined]
        written.append(f"{package.__name__}.{module}")  # type: ignore[attr-defined]

    yield drop
    for name in written:
        sys.modules.pop(name, None)


def test_a_defect_module_dropped_into_the_package_is_registered(dropped) -> None:
    dropped(mechanisms, "scratch_replay", DEFECT_MODULE.format(name="scratch_replay"))
    try:
        assert "scratch_replay" in mechanism_module_names()
        mechanism = DEFECT_REGISTRY["scratch_replay"]
        assert mechanism.area == "pipeline"
        assert mechanism.apply is sys.modules[f"{mechanisms.__name__}.scratch_replay"].edit
    finally:
        DEFECT_REGISTRY.unregister("scratch_replay")
    assert "scratch_replay" not in DEFECT_REGISTRY


def test_a_defect_module_under_a_taken_name_is_refused(dropped) -> None:
    before = dict(DEFECT_REGISTRY)
    dropped(mechanisms, "bot_farm_again", DEFECT_MODULE.format(name="bot_farm"))
    with pytest.raises(ValueError, match="defect mechanism 'bot_farm' is already registered"):
        mechanism_module_names()
    assert dict(DEFECT_REGISTRY) == before


def test_a_kind_module_dropped_into_the_package_is_registered_after_the_listed_ones(dropped) -> None:
    dropped(kinds, "scratch_swing", KIND_MODULE.format(name="scratch_swing"))
    try:
        names = import_package_modules(kinds.__name__, kinds.__path__, LISTING)
        assert names[: len(LISTING)] == LISTING and "scratch_swing" in names[len(LISTING) :]
        assert list(BENIGN_KIND_REGISTRY)[-1] == "scratch_swing"
    finally:
        BENIGN_KIND_REGISTRY.unregister("scratch_swing")


def test_a_kind_module_under_a_taken_name_is_refused(dropped) -> None:
    dropped(kinds, "mix_shift_again", KIND_MODULE.format(name="mix_shift"))
    with pytest.raises(ValueError, match="benign kind 'mix_shift' is already registered"):
        import_package_modules(kinds.__name__, kinds.__path__, LISTING)


def test_a_listing_that_names_a_missing_module_is_an_error() -> None:
    with pytest.raises(ImportError, match="no_such_kind"):
        import_package_modules(kinds.__name__, kinds.__path__, (*LISTING, "no_such_kind"))


def test_every_mechanism_module_registers_the_mechanism_it_is_named_for() -> None:
    """One module, one mechanism: the registry holds exactly the modules' names, each from its own module."""
    names = mechanism_module_names()
    assert set(names) == set(DEFECT_REGISTRY)
    for name in names:
        assert DEFECT_REGISTRY[name].apply.__module__ == f"{mechanisms.__name__}.{name}"
