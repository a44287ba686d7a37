"""Each fact crosses the wire once: an observation carries structure, never the text rendered from it, and a client
renders from the observation it received exactly the text the environment's own observation renders."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openenv.core.env_server.serialization import serialize_observation
from openenv.core.env_server.types import WSObservationResponse

from metric_tracker_rl.agents import make_agent, run_episode
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.client import MetricTrackerRlEnv
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.observation import render_observation, seen
from metric_tracker_rl.view.prompt import FIRST_PROMPT_NEXT, first_prompt
from metric_tracker_rl.view.tool_schemas import SUBMIT_GENERATORS, SUBMIT_REPORT, tool_action

DIFFICULTIES = ("easy", "medium", "hard", "frontier", "deep")
CLIENT = MetricTrackerRlEnv(base_url="http://127.0.0.1:9")  # parses replies only: it never connects
SQL_EDGES = "SELECT 1/0 AS a, 0/0 AS b, 'x | y' AS c, NULL AS d, 1.5e300 AS e, -0.0 AS f, '12' AS g"


def wire_message(observation: MetricTrackerRlObservation) -> str:
    """The text OpenEnv's WebSocket endpoint sends for an observation."""
    return WSObservationResponse(data=serialize_observation(observation)).model_dump_json()


def received(observation: MetricTrackerRlObservation) -> MetricTrackerRlObservation:
    """The observation as the client builds it from that message."""
    return CLIENT._parse_result(json.loads(wire_message(observation))["data"]).observation  # noqa: SLF001


def episode_observations(difficulty: str, seed: int) -> list[MetricTrackerRlObservation]:
    """A reset, every tool's example call, calls that fail, a page, gradings and what follows the last one."""
    env = MetricTrackerRlEnvironment()
    found = [env.reset(seed=seed, difficulty=difficulty, max_steps=200, max_submissions=2)]

    def call(name: str, arguments: dict[str, Any]) -> None:
        action = tool_action(name, arguments)
        found.append(
            env.step(
                action
                if isinstance(action, MetricTrackerRlAction)
                else MetricTrackerRlAction(analysis_method=name, analysis_args=arguments)
            )
        )

    for name, spec in TOOL_REGISTRY.items():
        call(name, spec.example)
    call("query", {"sql": SQL_EDGES})
    call("get_median_filter_rows", {"threshold_multiplier": 2.0, "limit": 5, "offset": 5})
    call("detect_funnel_break", {"date": "1999-01-01"})
    call(
        SUBMIT_REPORT,
        {
            "rows": [
                {
                    "date": "1999-01-01",
                    "entity_type": "event_count",
                    "entity_name": "app_opens",
                    "anomaly_type": "absolute_spike_in_event_count",
                    "severity": "high",
                    "detection_method": "compare_count_to_median",
                    "baseline_value": 1.0,
                    "observed_value": 2.0,
                    "delta_value": 1.0,
                }
            ]
        },
    )
    call(
        SUBMIT_GENERATORS,
        {"generators": [{"method_name": "get_rate_drop_from_median_rows", "threshold_multiplier": 3.0}]},
    )
    call(SUBMIT_REPORT, {"rows": []})
    call("list_dates", {})
    found.append(env.reset(seed=seed, difficulty=difficulty, max_steps=-1))  # refused: the episode goes on
    return found


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_a_client_renders_the_text_the_environment_would(difficulty: str) -> None:
    for observation in episode_observations(difficulty, seed=7):
        arrived = received(observation)
        assert seen(arrived) == seen(observation), observation.status
        if observation.status == "ready":
            assert first_prompt(arrived) == first_prompt(observation)
        else:
            assert render_observation(arrived) == render_observation(observation)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 5_000), difficulty=st.sampled_from(DIFFICULTIES[:4]))
def test_a_scripted_episode_reads_the_same_on_both_sides_of_the_wire(seed: int, difficulty: str) -> None:
    env = MetricTrackerRlEnvironment()
    steps = run_episode(make_agent("scripted"), env.reset, env.step, seed=seed, difficulty=difficulty)
    assert steps
    for observation in steps:
        assert render_observation(received(observation)) == render_observation(observation)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_the_wire_carries_no_rendered_text(difficulty: str) -> None:
    """The brief and a tool's result go as structure; the text a model reads is not sent beside it."""
    env = MetricTrackerRlEnvironment()
    reset = env.reset(seed=3, difficulty=difficulty)
    step = env.step(
        MetricTrackerRlAction(analysis_method="get_median_filter_rows", analysis_args={"threshold_multiplier": 3.0})
    )
    for observation, text in ((reset, first_prompt(reset)), (step, render_observation(step))):
        message = wire_message(observation)
        assert "model_text" not in message and FIRST_PROMPT_NEXT not in message
        assert json.dumps(text)[1:-1] not in message and "\n".join(text.split("\n")[:2]) not in message
