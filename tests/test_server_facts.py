"""A client shows what the server built: the brief's objective, window, benign bounds and segments come from the
reset observation's typed fields, every harness renders its text from the observation it received, and a session's
score is the one the server computed. So no client rebuilds a fact from its own copy of the package's constants."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.agents import make_agent, play
from metric_tracker_rl.models import EpisodeWindow, MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.observation import seen
from metric_tracker_rl.view.prompt import brief_data, first_prompt

DIFFICULTIES = ("easy", "medium", "hard", "frontier", "deep")


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_the_reset_observation_carries_the_published_facts(difficulty: str) -> None:
    env = MetricTrackerRlEnvironment()
    observation = env.reset(seed=4, difficulty=difficulty)
    dates = env._episode.public.dates  # noqa: SLF001 (the episode's own dates, to check the window)
    assert observation.window == EpisodeWindow(first_date=dates[0], last_date=dates[-1], days=len(dates))
    assert observation.objective and observation.message == f"Episode ready: {observation.objective}"
    assert observation.benign_fluctuations
    assert (observation.segments is not None) == (difficulty in ("frontier", "deep"))
    assert first_prompt(observation) == seen(observation).text
    assert observation.objective in first_prompt(observation)


def test_the_brief_reads_the_servers_fields_not_the_clients_constants() -> None:
    observation = MetricTrackerRlEnvironment().reset(seed=2, difficulty="medium")
    elsewhere = observation.model_copy(
        update={
            "objective": "a server's other objective",
            "window": EpisodeWindow(first_date="2030-01-01", last_date="2030-03-25", days=84),
            "benign_fluctuations": {"demand_swing": "a server's other bound"},
        }
    )
    brief = brief_data(elsewhere)
    assert brief["objective"] == "a server's other objective"
    assert brief["window"] == {"first_date": "2030-01-01", "last_date": "2030-03-25", "days": 84}
    assert brief["benign_fluctuations"] == {"demand_swing": "a server's other bound"}
    with pytest.raises(ValueError, match="objective and window"):
        brief_data(observation.model_copy(update={"window": None}))


class _ScoredElsewhere:
    """An environment whose server reports an episode score that is not the sum of the rewards it sent."""

    def __init__(self) -> None:
        self.env = MetricTrackerRlEnvironment()

    def reset(self, **kwargs: object) -> object:
        return self.env.reset(**kwargs)

    def step(self, action: MetricTrackerRlAction) -> object:
        observation = self.env.step(action)
        return SimpleNamespace(
            observation=observation.model_copy(update={"episode_score": 0.123}),
            reward=observation.reward,
            done=observation.done,
        )


def test_a_sessions_score_is_the_servers() -> None:
    session = play(make_agent("expert"), EpisodeSession(_ScoredElsewhere()), seed=3, difficulty="easy")
    assert sum(session.rewards) > 0.5
    assert session.score == 0.123
