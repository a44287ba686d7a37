"""Held-out mode: a server-side secret mixed into every random stream. The same config gives the same episode
on every server that shares the secret, the public package cannot rebuild it from the seed, and without a
secret everything is reproducible from the config."""

from __future__ import annotations

import contextlib

import httpx
import pytest
from conftest import running_server
from core_helpers import reset_episode
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl import MetricTrackerRlAction, MetricTrackerRlEnv
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.spec.seeding import EpisodeKey, secret_words
from metric_tracker_rl.spec.tasks import resolve_episode_config

SECRET_ENV_VAR = "METRIC_TRACKER_SECRET"  # the documented setting
SECRET = "a-test-secret-that-is-not-published"
PROBE_DATES = ("2026-03-03", "2026-03-11", "2026-03-19", "2026-03-27")


def counts_of(env_step, date: str) -> list:
    result = env_step(MetricTrackerRlAction(analysis_method="rows_for_date", analysis_args={"date": date}))
    observation = getattr(result, "observation", result)
    return observation.analysis_result["row"]


def served_fingerprint(url: str, **reset_kwargs) -> tuple:
    """What a client sees of an episode: its visible config and the daily rows of a few dates."""
    with MetricTrackerRlEnv(base_url=url, message_timeout_s=60).sync() as env:
        reset = env.reset(**reset_kwargs).observation
        rows = [counts_of(env.step, date) for date in PROBE_DATES]
        annotations = env.step(MetricTrackerRlAction(analysis_method="get_annotations")).observation.analysis_result
        return reset.config, rows, annotations


def public_fingerprint(**reset_kwargs) -> tuple:
    """The same fingerprint rebuilt with the public package from the visible settings alone."""
    env = MetricTrackerRlEnvironment()
    reset = env.reset(**reset_kwargs)
    rows = [counts_of(env.step, date) for date in PROBE_DATES]
    return reset.config, rows, env.step(MetricTrackerRlAction(analysis_method="get_annotations")).analysis_result


@pytest.mark.slow  # starts two server processes
def test_two_servers_with_one_secret_agree_and_the_public_package_cannot_rebuild_their_episodes() -> None:
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(running_server({SECRET_ENV_VAR: SECRET}))
        second = stack.enter_context(running_server({SECRET_ENV_VAR: SECRET}))
        for settings_ in ({"task_id": "hard_mixed_multi"}, {"seed": 20_001, "difficulty": "medium"}):
            config, rows, annotations = served_fingerprint(first, **settings_)
            assert config["held_out"] is True and "secret" not in config
            assert served_fingerprint(second, **settings_) == (config, rows, annotations)
            # the public package, given the visible config, builds another episode
            open_config, open_rows, _ = public_fingerprint(**settings_)
            assert open_config["held_out"] is False
            assert open_rows != rows
        metadata = httpx.get(f"{first}/metadata", timeout=60).json()
        assert "Held-out mode: on" in metadata["description"] and SECRET not in str(metadata)


def test_without_a_secret_the_served_episode_is_the_public_one(server_url: str) -> None:
    settings_ = {"seed": 20_001, "difficulty": "medium"}
    assert served_fingerprint(server_url, **settings_) == public_fingerprint(**settings_)
    assert "Held-out mode: off" in httpx.get(f"{server_url}/metadata", timeout=60).json()["description"]


def test_the_secret_reaches_every_stream_and_never_the_repr() -> None:
    open_episode = reset_episode(seed=5, difficulty="hard")
    held = reset_episode(seed=5, difficulty="hard", secret=SECRET)
    again = reset_episode(seed=5, difficulty="hard", secret=SECRET)
    assert (held.public.data.hourly == again.public.data.hourly).all()
    assert held.truth.expected_rows == again.truth.expected_rows
    assert (held.public.data.hourly != open_episode.public.data.hourly).any()
    config = resolve_episode_config(seed=5, difficulty="hard", secret=SECRET)
    for text in (repr(config), repr(config.key), str(config.public_dict())):
        assert SECRET not in text and str(secret_words(SECRET)[0]) not in text


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**63 - 1), secret=st.text(min_size=1, max_size=40))
def test_any_secret_changes_the_key_and_no_secret_keeps_the_public_key(seed: int, secret: str) -> None:
    assert EpisodeKey.of(seed) == EpisodeKey(seed)
    assert EpisodeKey.of(seed, secret) != EpisodeKey.of(seed)
    assert len(secret_words(secret)) == 8
