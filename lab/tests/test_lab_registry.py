"""The lab's agents register in the lab's registry only: the package's AGENTS lists its reference agents alone, and
the lab plays a name from either registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lab.agents.registry import LAB_AGENTS, known_agents, make_agent, register_lab_agent
from metric_tracker_rl.agents import AGENTS, NullAgent
from metric_tracker_rl.catalog.registry import UnknownName


def test_no_lab_agent_is_in_the_packages_registry() -> None:
    assert len(LAB_AGENTS) > 0 and set(LAB_AGENTS).isdisjoint(AGENTS)
    assert known_agents() == (*AGENTS, *LAB_AGENTS)


def test_importing_the_package_registers_no_lab_agent_and_imports_no_lab_module() -> None:
    probe = (
        "import sys, metric_tracker_rl, metric_tracker_rl.agents as agents; "
        "print(sorted(agents.AGENTS)); print(any(name.split('.')[0] == 'lab' for name in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == str(sorted(AGENTS)) and out[1] == "False"


@pytest.mark.parametrize("name", ["expert", "scripted", "fixed_rule", "scan_analyst", "warehouse_model_like"])
def test_the_lab_makes_an_agent_of_either_registry(name: str) -> None:
    agent = make_agent(name)
    assert (LAB_AGENTS.get(name) or AGENTS[name]) is type(agent)


def test_an_unknown_name_lists_both_registries() -> None:
    with pytest.raises(UnknownName, match="valid: null, .*expert.*fixed_rule.*scan_analyst"):
        make_agent("no_such_agent")


@pytest.mark.parametrize("name", ["fixed_rule", "expert"])
def test_a_lab_agent_cannot_take_a_name_either_registry_holds(name: str) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_lab_agent(name, NullAgent)
    assert LAB_AGENTS.get(name) is not NullAgent
