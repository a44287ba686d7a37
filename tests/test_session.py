"""The episode session: its bookkeeping in process and over the WebSocket, sync and async, and its structured view,
which shows nothing the model's text does not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from core_helpers import reset_episode
from hypothesis import given, settings
from hypothesis import strategies as st
from text_reader import read_observation

from metric_tracker_rl import MetricTrackerRlEnv
from metric_tracker_rl.adapters.session import EPISODE_OVER_TEXT, AsyncEpisodeSession, EpisodeNotStarted, EpisodeSession
from metric_tracker_rl.agents import make_agent, play
from metric_tracker_rl.catalog.published import AGGREGATE_DIFFICULTIES, DIFFICULTIES
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.observation import SeenObservation, seen
from metric_tracker_rl.view.tool_schemas import SUBMIT_REPORT, model_tools, tool_action

TOOL_NAMES = [tool.name for tool in model_tools() if tool.name != SUBMIT_REPORT] + [SUBMIT_REPORT]
ARGUMENTS: list[dict[str, Any]] = [
    {},
    {"limit": 3},
    {"limit": 2, "offset": 2},
    {"threshold_multiplier": 2.5},
    {"date": "first"},
    {"rows": []},
    {"bogus": 1},
]


def texts_of_play(session: EpisodeSession, agent_name: str, **reset_kwargs: Any) -> list[str]:
    """The texts an agent's episode shows through the session: the brief, then each step's."""
    view = session.reset(**reset_kwargs)
    texts = [view.text]
    agent = make_agent(agent_name)
    agent.begin(view)
    while not session.done and (action := agent.act(view)) is not None:
        view = session.step(action).seen
        texts.append(view.text)
    return texts


async def async_texts_of_play(session: AsyncEpisodeSession, agent_name: str, **reset_kwargs: Any) -> list[str]:
    view = await session.reset(**reset_kwargs)
    texts = [view.text]
    agent = make_agent(agent_name)
    agent.begin(view)
    while not session.done and (action := agent.act(view)) is not None:
        view = (await session.step(action)).seen
        texts.append(view.text)
    return texts


@pytest.mark.parametrize(
    "difficulty",
    # the audit's episode is the slowest to build; the warehouse's, of the same data kind, stays in the edit loop
    [pytest.param(name, marks=pytest.mark.slow if name == "audit" else ()) for name in DIFFICULTIES],
)
def test_a_sessions_score_is_the_sum_of_its_rewards_and_the_environments_score(difficulty: str) -> None:
    env = MetricTrackerRlEnvironment()
    session = play(make_agent("expert"), EpisodeSession(env), seed=11, difficulty=difficulty)
    assert session.done and session.submissions == 1 and session.graded is not None
    assert session.steps == len(session.rewards) == env.state.step_count
    assert session.score == sum(session.rewards) == pytest.approx(env.state.episode_score, abs=1e-9)
    assert session.rewards[-1] == session.graded.reward and not any(session.rewards[:-1])
    assert session.config == session.brief_observation.config and session.config["difficulty"] == difficulty


def test_a_step_before_reset_is_a_programming_error() -> None:
    session = EpisodeSession(MetricTrackerRlEnvironment())
    with pytest.raises(EpisodeNotStarted):
        session.step(MetricTrackerRlAction(analysis_method="task_overview"))
    with pytest.raises(EpisodeNotStarted):
        session.call("task_overview", {})


def test_a_refused_reset_starts_nothing() -> None:
    session = EpisodeSession(MetricTrackerRlEnvironment())
    view = session.reset(difficulty="impossible")
    assert view.status == "error" and view.text.startswith("error: ") and not session.started


def test_a_models_mistake_is_text_and_costs_nothing_and_a_finished_episode_refuses_calls() -> None:
    session = EpisodeSession(MetricTrackerRlEnvironment())
    session.reset(seed=4, difficulty="easy")
    assert session.call("no_such_tool", {}).startswith("error: unknown tool 'no_such_tool'; valid tools: ")
    assert session.call(SUBMIT_REPORT, "{not json").startswith("error: the arguments of submit_report")
    assert session.steps == 0 and session.rewards == []
    graded = read_observation(session.call(SUBMIT_REPORT, {"rows": []}))
    assert graded.status == "graded" and session.done and session.submissions == 1
    assert session.call("task_overview", {}) == EPISODE_OVER_TEXT and session.steps == 1


def test_a_new_reset_starts_the_bookkeeping_again() -> None:
    session = EpisodeSession(MetricTrackerRlEnvironment())
    session.reset(seed=4, difficulty="easy")
    session.call(SUBMIT_REPORT, {"rows": []})
    session.reset(seed=5, difficulty="easy")
    assert (session.steps, session.rewards, session.done, session.graded, session.submissions) == (
        0,
        [],
        False,
        None,
        0,
    )
    assert session.config["seed"] == 5


def test_the_async_session_keeps_the_same_books_as_the_sync_one() -> None:
    sync = EpisodeSession(MetricTrackerRlEnvironment())
    expected = texts_of_play(sync, "scripted", seed=21, difficulty="medium")
    session = AsyncEpisodeSession(MetricTrackerRlEnvironment())
    assert asyncio.run(async_texts_of_play(session, "scripted", seed=21, difficulty="medium")) == expected
    assert (session.steps, session.rewards, session.submissions) == (sync.steps, sync.rewards, sync.submissions)


def test_sessions_over_the_websocket_client_see_what_the_in_process_one_sees(server_url: str) -> None:
    expected = texts_of_play(EpisodeSession(MetricTrackerRlEnvironment()), "scripted", seed=8, difficulty="hard")
    with MetricTrackerRlEnv(base_url=server_url).sync() as client:
        session = EpisodeSession(client)
        assert texts_of_play(session, "scripted", seed=8, difficulty="hard") == expected
        assert session.done and session.score == sum(session.rewards) and session.submissions == 1

    async def over_the_async_client() -> list[str]:
        client = MetricTrackerRlEnv(base_url=server_url)
        try:
            return await async_texts_of_play(AsyncEpisodeSession(client), "scripted", seed=8, difficulty="hard")
        finally:
            await client.close()

    assert asyncio.run(over_the_async_client()) == expected


# --- the view shows nothing the text does not -------------------------------------------------------


def _arguments(choice: dict[str, Any], brief: dict[str, Any]) -> dict[str, Any]:
    if choice.get("date") == "first":
        return {"date": brief["window"]["first_date"]}
    return choice


def _says_what_the_environment_said(read: SeenObservation, observation: MetricTrackerRlObservation) -> None:
    """The facts read off a step's text agree with the observation it was made from."""
    assert read.status == observation.status
    assert (read.steps_remaining, read.submissions_remaining, read.done) == (
        observation.steps_remaining,
        observation.submissions_remaining,
        observation.done,
    )
    if observation.status == "error":
        assert observation.message in read.text
    if observation.status == "graded":
        assert read.reward_breakdown is not None and observation.reward_breakdown is not None
        assert read.reward_breakdown.score == pytest.approx(observation.reward_breakdown.score, rel=1e-3, abs=1e-3)
        assert read.expected_row_count == observation.expected_row_count


@settings(max_examples=8, deadline=None)  # a few episodes here; the slow twin below plays 40
@given(
    seed=st.integers(0, 10**6),
    difficulty=st.sampled_from(DIFFICULTIES),
    calls=st.lists(st.tuples(st.sampled_from(TOOL_NAMES), st.sampled_from(ARGUMENTS)), min_size=1, max_size=4),
)
def test_the_text_shows_every_fact_of_the_structured_view(
    seed: int, difficulty: str, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    """Reading a step's text back gives its whole structured view: an agent deciding from the view decides from
    nothing a model could not read. And what the text says is what the environment said: each fact read off the
    text is checked against the observation or the episode itself, never against a second call of the renderer."""
    env = MetricTrackerRlEnvironment()
    observation = env.reset(seed=seed, difficulty=difficulty)
    brief = seen(observation)
    assert read_observation(brief.text) == brief
    _says_what_the_environment_said(read_observation(brief.text), observation)
    episode = reset_episode(seed=seed, difficulty=difficulty)
    assert brief.brief["objective"] == episode.public.task["objective"]
    assert brief.brief["window"]["first_date"] == episode.public.dates[0]
    for family in brief.brief["families"]:
        assert isinstance(family["root_cause_entities"], list)
        assert all(isinstance(family[d], tuple) and len(family[d]) == 2 for d in AGGREGATE_DIFFICULTIES if d in family)
    for name, choice in calls:
        action = tool_action(name, _arguments(choice, brief.brief))
        if isinstance(action, str):
            continue
        observation = env.step(action)
        view = seen(observation)
        assert read_observation(view.text) == view
        _says_what_the_environment_said(read_observation(view.text), observation)
        if observation.done:
            break


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    difficulty=st.sampled_from(DIFFICULTIES),
    calls=st.lists(st.tuples(st.sampled_from(TOOL_NAMES), st.sampled_from(ARGUMENTS)), min_size=1, max_size=4),
)
def test_the_text_shows_every_fact_of_the_structured_view_over_many_episodes(
    seed: int, difficulty: str, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    test_the_text_shows_every_fact_of_the_structured_view.hypothesis.inner_test(seed, difficulty, calls)


def test_a_negative_magnitude_bound_reads_back_as_a_pair() -> None:
    observation = MetricTrackerRlEnvironment().reset(seed=1, difficulty="easy")
    methods = [
        {**spec, "magnitude": {**spec["magnitude"], "by_difficulty": {"easy": [-0.5, -0.25], "medium": [-2, 3.5]}}}
        for spec in observation.available_synthetic_generator_methods
    ]
    view = seen(observation.model_copy(update={"available_synthetic_generator_methods": methods}))
    assert "| -0.5--0.25 | -2-3.5" in view.text
    assert all((family["easy"], family["medium"]) == ((-0.5, -0.25), (-2, 3.5)) for family in view.brief["families"])
    assert read_observation(view.text) == view
