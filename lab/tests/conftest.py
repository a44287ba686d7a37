"""The lab's tests run apart from the library's (`uv run pytest lab/tests`), with the same rules: no per-example
deadline, and the slow tests in one xdist group so no two of them (servers, sweeps, time limits) run at once."""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("behaviour", deadline=None)
settings.load_profile("behaviour")


# A fixture that makes any test using it slow: the calibration's target sweep.
SLOW_FIXTURES = frozenset({"target_sweep"})


@pytest.hookimpl(tryfirst=True)  # before the deselection by marker and before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs a slow fixture is slow. A module's fast tests stay in one process (its module fixtures are
    built once); the slow ones share one group."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    for item in items:
        module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
        item.add_marker(pytest.mark.xdist_group("serial" if item.get_closest_marker("slow") else module))
