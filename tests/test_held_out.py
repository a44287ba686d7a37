"""Held-out mode: a server-side secret and a fresh nonce mixed into every random stream. Each reset draws a new
episode of its settings, which the public package cannot rebuild from the seed, and which graded feedback on
any other reset says nothing about; without a secret everything is reproducible from the config."""

from __future__ import annotations

import contextlib
import json

import httpx
import pytest
from conftest import running_server
from core_helpers import reset_episode
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl import MetricTrackerRlAction, MetricTrackerRlEnv
from metric_tracker_rl.catalog.seeding import EpisodeKey, secret_words
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

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
def test_every_held_out_reset_draws_a_fresh_episode_the_public_package_cannot_rebuild() -> None:
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(running_server({SECRET_ENV_VAR: SECRET}))
        second = stack.enter_context(running_server({SECRET_ENV_VAR: SECRET}))
        for settings_ in ({"task_id": "hard_mixed_multi"}, {"seed": 20_001, "difficulty": "medium"}):
            config, rows, _ = served_fingerprint(first, **settings_)
            assert config["held_out"] is True and "secret" not in config
            # the same settings, on the same server or on another with the same secret: the same visible config,
            # another episode (nothing read on one reset tells anything about the next)
            for url in (first, second):
                again_config, again_rows, _ = served_fingerprint(url, **settings_)
                assert again_config == config and again_rows != rows
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


REPLAYS = 48


def truth_keys(env: MetricTrackerRlEnvironment) -> frozenset:
    return frozenset((row.date, row.entity_type, row.entity_name) for row in env._episode.truth.expected_rows)  # noqa: SLF001


@pytest.mark.parametrize(
    "settings_",
    [{"task_id": "medium_mixed_three"}, {"seed": 11, "difficulty": "hard"}, {"seed": 11, "difficulty": "frontier"}],
)
def test_replays_of_one_held_out_task_never_meet_its_incidents_again(settings_: dict) -> None:
    """The replay oracle's premise: reset the same settings again and again, grading one candidate row each time.
    In held-out mode no replay holds the episode's incidents, so what its feedback labels belongs elsewhere."""
    played = MetricTrackerRlEnvironment(held_out_secret=SECRET)
    played.reset(**settings_)
    keys = truth_keys(played)
    replays = set()
    for _ in range(REPLAYS):
        replay = MetricTrackerRlEnvironment(held_out_secret=SECRET)
        assert replay.reset(**settings_).config == played._episode.config.public_dict()  # noqa: SLF001
        replays.add(truth_keys(replay))
    assert keys not in replays and len(replays) > REPLAYS // 2


@pytest.mark.slow  # starts a server process
def test_a_held_out_server_gives_each_replay_over_every_transport_its_own_episode() -> None:
    """48 resets of one eval seed, over /ws sessions and HTTP MCP sessions alike: 48 different episodes."""
    with running_server({SECRET_ENV_VAR: SECRET}) as url:
        seen = set()
        with MetricTrackerRlEnv(base_url=url, message_timeout_s=60).sync() as env:
            for _ in range(REPLAYS // 2):
                env.reset(seed=11, difficulty="hard")
                seen.add(json.dumps(counts_of(env.step, PROBE_DATES[0])))
        with httpx.Client(timeout=60) as client:
            for _ in range(REPLAYS // 2):
                seen.add(json.dumps(mcp_replay_rows(client, url)))
        assert len(seen) == REPLAYS


def mcp_replay_rows(client: httpx.Client, url: str) -> str:
    """One HTTP MCP session: reset on its /ws, then the first probe date's rows through tools/call."""
    from websockets.sync.client import connect

    def rpc(method: str, **params: object) -> dict:
        return client.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()

    session_id = rpc("openenv/session/create")["result"]["session_id"]
    with connect(f"{url.replace('http', 'ws', 1)}/ws?session_id={session_id}", open_timeout=60) as ws:
        ws.send(json.dumps({"type": "reset", "data": {"seed": 11, "difficulty": "hard"}}))
        ws.recv(timeout=60)
        text = rpc("tools/call", name="rows_for_date", arguments={"date": PROBE_DATES[0]}, session_id=session_id)[
            "result"
        ]["data"]
    rpc("openenv/session/close", session_id=session_id)
    return text
