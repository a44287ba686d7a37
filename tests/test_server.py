"""The server against a live process: session isolation, the HTTP endpoints, and no ground truth on the wire
unless debug mode was switched on at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from conftest import running_server
from core_helpers import reset_episode
from websockets.sync.client import ClientConnection, connect

from metric_tracker_rl import DEFAULT_TASK_ORDER, MetricTrackerRlAction, MetricTrackerRlEnv
from metric_tracker_rl.analysis_tools import available_analysis_methods, generate_rows, run_tool
from metric_tracker_rl.catalog.published import row_key
from metric_tracker_rl.catalog.tasks import get_task_spec
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.models import MetricTrackerRlObservation, MetricTrackerRlState, PayloadGeneratorMethod
from metric_tracker_rl.serving.environment import NO_EPISODE_OVER_HTTP

pytestmark = pytest.mark.slow  # starts server processes or a browser

HTTP_TIMEOUT_S = 60.0  # generous: the test machine may be busy
TRUTH_WORDS = ("expected_rows", "neutral_keys", "injections")
RowIdentity = tuple[str, str, str, str]  # date, entity_type, entity_name, anomaly type


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=HTTP_TIMEOUT_S) as client:
        yield client


# --- the leak scanner ------------------------------------------------------------------------------


def row_identities(value: Any) -> Iterator[RowIdentity]:
    """Every JSON object that names a date, an entity and an anomaly type (as anomaly_type or family)."""
    if isinstance(value, dict):
        kind = value.get("anomaly_type", value.get("family"))
        if all(isinstance(value.get(k), str) for k in ("date", "entity_type", "entity_name")) and kind:
            yield value["date"], value["entity_type"], value["entity_name"], kind
        for item in value.values():
            yield from row_identities(item)
    elif isinstance(value, list):
        for item in value:
            yield from row_identities(item)


@dataclass(frozen=True)
class Response:
    """A raw response and the rows it may legitimately carry: rows its request sent (echoes) and rows the
    generator call it answers produces from public data."""

    text: str
    echoes: frozenset[RowIdentity] = frozenset()


def without_final_comparison(text: str) -> str:
    """The response without the graded comparison of a finished open-mode episode: once an episode is over, open
    mode shows which rows matched and which were missed (by design; held-out mode never does, see test_episodes),
    in the observation's `comparison`, which the model's text renders."""
    message = json.loads(text)
    observation = (message.get("data") or {}).get("observation") if isinstance(message, dict) else None
    if not isinstance(observation, dict) or not message["data"].get("done") or not observation.get("comparison"):
        return text
    observation["comparison"] = None
    return json.dumps(message)


def truth_leaks(responses: list[Response], episode: Episode) -> list[str]:
    """Pieces of the hidden ground truth found in raw responses (beyond each response's own echoes)."""
    truth = episode.truth
    expected = {(r.date, r.entity_type, r.entity_name, r.anomaly_type) for r in truth.expected_rows}
    secret_texts = [
        *TRUTH_WORDS,
        *(record.description for record in truth.injections),
        *(row_key(*identity[:3]) for identity in expected),
        *truth.neutral_keys,
    ]
    found = []
    for response in responses:
        text = without_final_comparison(response.text)
        found += [f"{secret!r} in {text[:120]}" for secret in secret_texts if secret in text]
        found += [
            f"expected row {identity} in {text[:120]}"
            for identity in row_identities(json.loads(text))
            if identity in expected - response.echoes
        ]
    return found


# --- a raw WebSocket session that keeps every response's text -----------------------------------------


@dataclass
class RawSession:
    ws: ClientConnection
    responses: list[Response] = field(default_factory=list)

    def send(self, message: dict[str, Any], generated: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """`generated`: the rows the request's generator call produces in-process from public data."""
        self.ws.send(json.dumps(message))
        text = self.ws.recv(timeout=60)
        echoes = frozenset(row_identities(message)) | frozenset(row_identities(generated or []))
        self.responses.append(Response(text, echoes))
        reply = json.loads(text)
        assert reply["type"] != "error", reply
        return reply["data"]

    def reset(self, **kwargs: Any) -> dict[str, Any]:
        return self.send({"type": "reset", "data": kwargs})

    def step(self, generated: list[dict[str, Any]] | None = None, **action: Any) -> dict[str, Any]:
        return self.send({"type": "step", "data": action}, generated)


@contextlib.contextmanager
def raw_session(url: str) -> Iterator[RawSession]:
    with connect(url.replace("http://", "ws://") + "/ws", open_timeout=30) as ws:
        yield RawSession(ws)


def exercise_episode(session: RawSession, episode: Episode, reset_kwargs: dict[str, Any]) -> None:
    """Reset, every tool's example call, bad calls, three submissions, a step after the end, the state."""
    assert session.reset(**reset_kwargs, max_submissions=3)["observation"]["status"] == "ready"
    for spec in available_analysis_methods():
        generated = None
        if spec.kind == "generator" or spec.name == "payload_generator":
            generated = run_tool(spec.name, episode.public, spec.example).result["rows"]
        reply = session.step(generated, analysis_method=spec.name, analysis_args=spec.example)
        # A tool answers at the tiers its registration names; elsewhere (the segment tools without segments, the
        # context tool without context tables) with an error that names the tools to use.
        answers = "ok" if episode.public.task["config"]["difficulty"] in spec.answers_at else "error"
        assert reply["observation"]["status"] == answers, (spec.name, reply["observation"]["message"])
    assert session.step(analysis_method="no_such_tool")["observation"]["status"] == "error"
    assert (
        session.step(analysis_method="rows_for_date", analysis_args={"date": "1999-01-01"})["observation"]["status"]
        == "error"
    )

    guess = {
        "date": episode.public.dates[3],
        "entity_type": "event_count",
        "entity_name": "app_opens",
        "anomaly_type": "absolute_spike_in_event_count",
        "detection_method": "compare_count_to_median",
        "baseline_value": 1.0,
        "observed_value": 2.0,
        "delta_value": 1.0,
        "severity": "low",
    }
    assert session.step(classifications=[guess])["observation"]["status"] == "graded"
    generators = [PayloadGeneratorMethod(method_name="get_median_filter_rows", threshold_multiplier=3.0)]
    rows, errors = generate_rows(episode.public, generators)
    assert not errors
    last = session.step(rows, payload_generators=[g.model_dump(exclude_none=True) for g in generators])
    assert last["observation"]["status"] == "graded"
    if not last["done"]:  # a perfect generator run would already have ended the episode
        last = session.step(classifications=[])
        assert last["observation"]["status"] == "graded"
    assert last["done"]
    after_done = session.step(analysis_method="task_overview")
    assert after_done["observation"]["status"] == "error" and after_done["reward"] == 0.0
    session.send({"type": "state"})


def test_leak_scanner_finds_an_expected_row_unless_the_request_sent_it() -> None:
    episode = reset_episode(task_id=DEFAULT_TASK_ORDER[0])
    row = episode.truth.expected_rows[0].model_dump()
    text = json.dumps({"observation": {"analysis_result": {"rows": [row]}}})
    assert truth_leaks([Response(text)], episode)
    assert truth_leaks([Response(text, frozenset(row_identities(row)))], episode) == []
    public = json.dumps({"observation": {"analysis_result": {**row, "anomaly_type": None}}})
    assert truth_leaks([Response(public)], episode) == []


# Every named task over counts, the last twice: the exercise plays each count tool's example and a generator
# submission, so the warehouse's episodes, whose tools read events, are not scanned by it.
COUNT_TASKS = [task_id for task_id in DEFAULT_TASK_ORDER if TIERS[get_task_spec(task_id).difficulty].data == "counts"]
LEAK_CASES = [(task_id, None) for task_id in COUNT_TASKS] + [(COUNT_TASKS[-1], 7)]


@pytest.mark.parametrize(("task_id", "seed"), LEAK_CASES)
def test_no_response_reveals_the_ground_truth_in_standard_mode(
    server_url: str, http: httpx.Client, task_id: str, seed: int | None
) -> None:
    reset_kwargs = {"task_id": task_id, **({"seed": seed} if seed is not None else {})}
    episode = reset_episode(**reset_kwargs)
    assert episode.truth.expected_rows  # the scan below must have something to look for

    with raw_session(server_url) as session:
        exercise_episode(session, episode, reset_kwargs)
    responses = list(session.responses)
    http_calls = [
        http.post("/reset", json=reset_kwargs),
        http.post("/step", json={"action": {"analysis_method": "task_overview"}}),
        http.get("/state"),
        http.get("/schema"),
        http.get("/metadata"),
    ]
    assert [r.status_code for r in http_calls] == [200] * len(http_calls)
    responses += [Response(r.text) for r in http_calls]

    assert all(json.loads(r.text)["data"].get("observation", {}).get("debug") is None for r in session.responses)
    assert truth_leaks(responses, episode) == []


def test_debug_mode_is_a_start_up_setting_and_reveals_the_truth() -> None:
    task_id = DEFAULT_TASK_ORDER[1]
    episode = reset_episode(task_id=task_id)
    expected = [row.model_dump() for row in episode.truth.expected_rows]
    with running_server(extra_env={"METRIC_TRACKER_DEBUG": "1"}) as url, raw_session(url) as session:
        debug = session.reset(task_id=task_id)["observation"]["debug"]
        assert debug is not None and debug["expected_rows"] == expected
        step_debug = session.step(analysis_method="list_dates")["observation"]["debug"]
        assert step_debug["expected_rows"] == expected
        http_reset = httpx.post(f"{url}/reset", json={"task_id": task_id}, timeout=HTTP_TIMEOUT_S).json()
        assert http_reset["observation"]["debug"]["expected_rows"] == expected
    # The scanner that passes the standard server finds the truth here.
    assert truth_leaks(session.responses, episode)


def test_requests_cannot_switch_debug_mode_on(server_url: str, http: httpx.Client) -> None:
    task_id = DEFAULT_TASK_ORDER[1]
    episode = reset_episode(task_id=task_id)
    with raw_session(server_url) as session:
        refused = session.reset(task_id=task_id, debug=True)["observation"]
        assert refused["status"] == "error" and "debug" in refused["message"]
        assert refused["debug"] is None
        assert session.reset(task_id=task_id)["observation"]["debug"] is None
        asked = session.step(analysis_method="task_overview", metadata={"debug": True})["observation"]
        assert asked["status"] == "ok" and asked["debug"] is None
        submitted = session.step(classifications=[], metadata={"debug": True})["observation"]
        assert submitted["status"] == "graded" and submitted["debug"] is None
    http_reset = http.post("/reset", json={"task_id": task_id, "debug": True})
    assert http_reset.status_code == 200
    assert http_reset.json()["observation"]["status"] == "error"
    assert http_reset.json()["observation"]["debug"] is None
    assert truth_leaks([*session.responses, Response(http_reset.text)], episode) == []


# --- sessions ----------------------------------------------------------------------------------------


async def _interleave_two_sessions(url: str, seeds: tuple[int, int]) -> list[list[dict[str, Any]]]:
    """Alternate calls between two sessions; check each against its own seed's in-process episode."""
    episodes = [reset_episode(seed=seed) for seed in seeds]
    clients = [MetricTrackerRlEnv(base_url=url, connect_timeout_s=30.0, message_timeout_s=60.0) for _ in seeds]
    rows: list[list[dict[str, Any]]] = [[], []]
    try:
        for client, seed in zip(clients, seeds, strict=True):
            await client.connect()
            reset = await client.reset(seed=seed)
            assert reset.observation.status == "ready" and reset.observation.config["seed"] == seed
        dates = episodes[0].public.dates
        calls = [("rows_for_date", {"date": d}) for d in dates[::3]] + [("hourly_rows_for_date", {"date": dates[5]})]
        for method, arguments in calls:
            for i, (client, episode) in enumerate(zip(clients, episodes, strict=True)):
                result = await client.step(MetricTrackerRlAction(analysis_method=method, analysis_args=arguments))
                assert result.observation.status == "ok", result.observation.message
                assert result.observation.analysis_result == run_tool(method, episode.public, arguments).result
                rows[i].append(result.observation.analysis_result)
        for client in clients:
            assert (await client.state()).step_count == len(calls)
    finally:
        for client in clients:
            await client.close()
    return rows


def test_interleaved_sessions_see_only_their_own_episode(server_url: str) -> None:
    first, second = asyncio.run(_interleave_two_sessions(server_url, (11, 12)))
    assert all(a != b for a, b in zip(first, second, strict=True))


# --- HTTP endpoints ------------------------------------------------------------------------------------


def test_http_reset_without_arguments_serves_the_first_task(http: httpx.Client) -> None:
    response = http.post("/reset", json={})
    assert response.status_code == 200
    body = response.json()
    observation = MetricTrackerRlObservation.model_validate(body["observation"])
    assert observation.status == "ready"
    assert observation.task_id == DEFAULT_TASK_ORDER[0]
    assert body["reward"] is None and body["done"] is False


def test_http_step_without_reset_is_a_documented_error(http: httpx.Client) -> None:
    response = http.post("/step", json={"action": {"analysis_method": "task_overview"}})
    assert response.status_code == 200
    body = response.json()
    assert body["observation"]["status"] == "error"
    assert body["observation"]["message"] == NO_EPISODE_OVER_HTTP
    assert body["reward"] == 0.0


def test_info_endpoints_answer(http: httpx.Client) -> None:
    state = http.get("/state")
    assert state.status_code == 200 and state.json()["step_count"] == 0
    health = http.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    schema = http.get("/schema")
    assert schema.status_code == 200
    schemas = schema.json()
    assert {"action", "observation", "state"} <= set(schemas)
    assert {"analysis_method", "classifications", "payload_generators"} <= set(schemas["action"]["properties"])
    assert {"status", "analysis_result", "reward_breakdown"} <= set(schemas["observation"]["properties"])
    assert set(schemas["state"]["properties"]) == set(MetricTrackerRlState.model_fields)
    assert {"task_id", "submissions_used", "done", "last_score"} <= set(schemas["state"]["properties"])
    metadata = http.get("/metadata")
    assert metadata.status_code == 200
    assert metadata.json()["name"] == "metric_tracker_rl" and metadata.json()["description"]
    assert http.get("/docs").status_code == 200


def test_there_is_no_shared_web_episode() -> None:
    """OpenEnv's /web/reset, /web/step and /web/state would share one environment between every caller: they
    answer 404 with the reason and the way to play instead, and hold no episode (tests/test_public_space.py)."""
    with running_server(extra_env={"ENABLE_WEB_INTERFACE": "true"}) as url:
        for method, path in (("POST", "/web/reset"), ("POST", "/web/step"), ("GET", "/web/state")):
            reply = httpx.request(method, f"{url}{path}", json={}, timeout=60)
            assert reply.status_code == 404, reply.text
            assert "every visitor plays their own" in reply.json()["detail"]
