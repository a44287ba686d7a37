"""inference.py end to end: the exact log format, the offline scripted run, and the model loop against a fake
OpenAI-compatible server (loopback only) driven by the real `openai` client."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT
from core_helpers import CUBOID_DIAL_TIERS, SEGMENT_KNOB_TIERS
from text_reader import read_observation

import inference
from metric_tracker_rl import DEFAULT_TASK_ORDER, MetricSubmissionRow, PayloadGeneratorMethod
from metric_tracker_rl.adapters.baseline_log import format_action, open_interval
from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.catalog.reference_agents import agent_plays
from metric_tracker_rl.catalog.tasks import DIAL_KNOBS, TASKS
from metric_tracker_rl.reconnect import RETRY_DEADLINE_VAR
from metric_tracker_rl.server_process import free_port
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.settings import DEFAULT_API_BASE_URL, ClientSettings
from metric_tracker_rl.view.tool_schemas import model_schema, openai_tools

pytestmark = pytest.mark.slow  # starts server processes or a browser

START = re.compile(r"^\[START\] task=(\S+) env=metric_tracker_rl model=(\S+)$")
STEP = re.compile(r"^\[STEP\] step=(\d+) action=(\S.*) reward=(\d\.\d\d) done=(true|false) error=(\S.*)$")
END = re.compile(r"^\[END\] success=(true|false) steps=(\d+) score=(\d\.\d\d) rewards=((?:\d\.\d\d)(?:,\d\.\d\d)*)?$")
ISOLATED = tuple(ClientSettings.variables())  # a run here reads only what a test sets
# The default run's tasks for the offline scripted agent: the named tasks of the tiers it plays (counts).
SCRIPTED_TASKS = [task_id for task_id in DEFAULT_TASK_ORDER if agent_plays("scripted", TASKS[task_id].difficulty)]


@pytest.fixture
def settings_from(monkeypatch: pytest.MonkeyPatch) -> Any:
    """ClientSettings from the given values only, whatever this process's environment holds."""
    for name in ISOLATED:
        monkeypatch.delenv(name, raising=False)
    return ClientSettings


def run_inference(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    return subprocess.run(
        [sys.executable, "inference.py", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def parse_log(stdout: str, task_ids: list[str], model: str) -> list[dict[str, Any]]:
    """Check every stdout line against the exact format and the START/STEP*/END structure; return each task."""
    tasks: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for line in stdout.splitlines():
        if match := START.match(line):
            assert current is None, f"[START] before the previous task's [END]: {line}"
            assert match.group(2) == model
            current = {"task": match.group(1), "steps": []}
        elif match := STEP.match(line):
            assert current is not None, f"[STEP] outside a task: {line}"
            step, action, reward, done, error = match.groups()
            assert int(step) == len(current["steps"]) + 1
            assert len(action) <= 220
            current["steps"].append(
                {
                    "action": action,
                    "reward": float(reward),
                    "done": done == "true",
                    "error": None if error == "null" else error,
                }
            )
        elif match := END.match(line):
            assert current is not None, f"[END] outside a task: {line}"
            success, steps, score, rewards = match.groups()
            current.update(
                success=success == "true",
                score=float(score),
                rewards=[float(r) for r in rewards.split(",")] if rewards else [],
            )
            assert int(steps) == len(current["steps"]) == len(current["rewards"])
            assert current["rewards"] == [s["reward"] for s in current["steps"]]
            assert 0.0 < current["score"] < 1.0
            assert all(0.0 < r < 1.0 for r in current["rewards"])
            tasks.append(current)
            current = None
        else:
            raise AssertionError(f"stdout line in no known format: {line!r}")
    assert current is None, "a task has no [END]"
    assert [t["task"] for t in tasks] == task_ids
    return tasks


# --- a fake OpenAI-compatible chat-completions server -------------------------------------------------


def tool_calls(*calls: tuple[str, Any]) -> dict[str, Any]:
    """A scripted reply; arguments given as str are sent verbatim (to send malformed JSON)."""
    return {
        "tool_calls": [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
            for i, (name, args) in enumerate(calls)
        ]
    }


def completion(reply: dict[str, Any]) -> dict[str, Any]:
    message = {
        "role": "assistant",
        "content": reply.get("content"),
        **({"tool_calls": reply["tool_calls"]} if "tool_calls" in reply else {}),
    }
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if "tool_calls" in reply else "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@contextlib.contextmanager
def fake_model(script: list[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Serve the scripted replies in order (then plain text); yield the base URL and the received requests.
    A reply {"status": 402, ...} answers with that HTTP error."""
    requests: list[dict[str, Any]] = []
    replies = list(script)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append(body)
            reply = replies.pop(0) if replies else {"content": "I have nothing more to do."}
            status = reply.get("status", 200)
            payload = (
                completion(reply)
                if status == 200
                else {"error": {"message": reply.get("message", "error"), "type": "error", "code": status}}
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    finally:
        server.shutdown()
        server.server_close()


def model_env(model_url: str, server_url: str, **extra: str) -> dict[str, str]:
    return {
        "API_BASE_URL": model_url,
        "API_KEY": "test-key",
        "MODEL_NAME": "fake-model",
        "METRIC_TRACKER_URL": server_url,
        "MODEL_MAX_RETRIES": "0",
        **extra,
    }


def tool_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


# --- unit checks of the tool list and the action field ----------------------------------------------


def replays_exactly(folder: Path) -> bool:
    """Each transcript's calls, played again in this process on its episode, give every text it recorded and its
    score."""
    for path in sorted(folder.glob("*.json")):
        transcript = json.loads(path.read_text())
        session = EpisodeSession(MetricTrackerRlEnvironment())
        session.reset(seed=transcript["seed"], difficulty=transcript["difficulty"], **transcript.get("settings", {}))
        if [session.call(call["tool"], call["arguments"]) for call in transcript["calls"]] != [
            call["text"] for call in transcript["calls"]
        ] or abs(session.score - transcript["score"]) > 1e-9:
            return False
    return any(folder.glob("*.json"))


def test_tool_definitions_come_from_the_registry_and_the_models() -> None:
    tools = {t["function"]["name"]: t["function"] for t in openai_tools()}
    # A tool offered only at a tier still being built (not listed) joins the list when its tier is listed.
    offered = {name for name, spec in TOOL_REGISTRY.items() if set(spec.offered_at) & set(DIFFICULTIES)}
    assert set(tools) == offered | {"submit_report", "submit_generators"}
    for name in offered:
        assert tools[name]["parameters"] == model_schema(TOOL_REGISTRY[name].args_model.model_json_schema())
    rows = tools["submit_report"]["parameters"]["properties"]["rows"]["items"]
    assert rows["required"] == MetricSubmissionRow.model_json_schema()["required"]
    methods = tools["submit_generators"]["parameters"]["properties"]["generators"]["items"]
    # Every field of a generator call but the one kept for wire callers (metric_names takes one metric too).
    assert list(methods["properties"]) == [
        name
        for name, prop in PayloadGeneratorMethod.model_json_schema()["properties"].items()
        if not prop.get("hidden_from_models")
    ]


def test_action_field_is_one_clipped_line_that_keeps_a_statements_spaces() -> None:
    text = format_action("preview_submission", {"rows": [{"note": "two words\nand a line"}] * 40})
    assert len(text) == 220 and "\n" not in text and "  " not in text
    sql = format_action("run_sql", {"query": "select  date,\n  count(*) from daily group by date"})
    assert sql == 'run_sql({"query":"select  date,\\n  count(*) from daily group by date"})'
    assert format_action("run_sql", {"query": "a\tb\rc"}) == 'run_sql({"query":"a\\tb\\rc"})'

    assert format_action("task_overview", {}) == "task_overview()"
    assert [open_interval(v) for v in (0.0, 0.5, 1.0)] == [0.01, 0.5, 0.99]


def test_scripted_agent_is_deterministic_and_skips_annotated_dates() -> None:
    import metric_tracker_rl.agents.scripted  # noqa: F401  (registers "scripted")
    from metric_tracker_rl.agents import make_agent, run_episode
    from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

    reports = []
    for _ in range(2):
        env = MetricTrackerRlEnvironment()
        results = run_episode(make_agent("scripted"), env.reset, env.step, task_id="hard_mixed_multi")
        notes = results[0].analysis_result["annotations"]
        assert notes, "the hard task has annotated distractor days"
        final = results[-1]
        assert [r.status for r in results] == ["ok", "ok", "ok", "ok", "ok", "graded"]
        assert final.submitted_rows and not {row.date for row in final.submitted_rows} & {n["date"] for n in notes}
        reports.append(([row.model_dump() for row in final.submitted_rows], final.reward))
    assert reports[0] == reports[1]


# --- the model loop against the fake server ----------------------------------------------------------


def test_model_solves_with_tool_calls_then_submit(server_url: str, tmp_path: Path) -> None:
    generator = {"method_name": "get_rate_spike_from_median_rows", "threshold_multiplier": 4.0}
    script = [
        tool_calls(("task_overview", {}), ("get_annotations", {})),
        tool_calls(("submit_generators", {"generators": [generator]})),
    ]
    with fake_model(script) as (model_url, requests):
        result = run_inference(
            "--tasks",
            "easy_two_spikes",
            "--output",
            str(tmp_path / "r.json"),
            "--transcripts",
            str(tmp_path / "transcripts"),
            env=model_env(model_url, server_url),
        )
    assert result.returncode == 0, result.stderr
    [task] = parse_log(result.stdout, ["easy_two_spikes"], "fake-model")
    assert [s["action"].split("(")[0] for s in task["steps"]] == [
        "task_overview",
        "get_annotations",
        "submit_generators",
    ]
    assert task["steps"][-1]["reward"] == task["score"]
    # The model got the tool list and, in its second request, the results of its two calls.
    assert len(requests) == 2
    assert requests[0]["tools"] == openai_tools("easy")  # the tools its tier offers
    overview, annotations = (read_observation(c) for c in tool_messages(requests[1]))
    assert overview.status == "ok" and "severity_rule" in overview.analysis_result
    assert "annotations" in annotations.analysis_result
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["tasks"][0]["score"] > 0 and round(min(0.99, saved["tasks"][0]["score"]), 2) == task["score"]
    # The model's transcript holds each call with the text it read, and replays in process.
    transcript = json.loads((tmp_path / "transcripts" / "easy_two_spikes.json").read_text())
    assert [call["tool"] for call in transcript["calls"]] == ["task_overview", "get_annotations", "submit_generators"]
    assert transcript["calls"][2]["arguments"] == {"generators": [generator]}
    assert transcript["score"] == saved["tasks"][0]["score"]
    assert replays_exactly(tmp_path / "transcripts")


def test_a_model_that_investigates_past_sixteen_turns_is_graded_on_its_own_report(server_url: str) -> None:
    """By default the model gets the episode's step budget in turns (and half again): a model that reads for 24
    turns and then submits is graded on its report, not on the empty fallback."""
    generator = {"method_name": "get_rate_spike_from_median_rows", "threshold_multiplier": 4.0}
    script = [tool_calls(("task_overview", {})) for _ in range(24)]
    script.append(tool_calls(("submit_generators", {"generators": [generator]})))
    with fake_model(script) as (model_url, requests):
        result = run_inference("--tasks", "easy_two_spikes", env=model_env(model_url, server_url))
    assert result.returncode == 0, result.stderr
    [task] = parse_log(result.stdout, ["easy_two_spikes"], "fake-model")
    assert len(requests) == 25 and len(task["steps"]) == 25
    assert task["steps"][-1]["action"].startswith("submit_generators(") and task["steps"][-1]["error"] is None
    assert task["score"] > 0.01 and "FALLBACK" not in result.stderr and "fallback" not in result.stderr


def test_model_mistakes_are_answered_without_env_steps(server_url: str) -> None:
    """Malformed JSON, an unknown tool and invalid rows cost no env step; a model that then stops calling
    tools is bounded by MAX_TOOL_ROUNDS and the task is graded by the empty fallback report."""
    script = [
        tool_calls(("get_annotations", "{not json")),
        tool_calls(("no_such_tool", {})),
        tool_calls(("submit_report", {"rows": [{"date": "2026-03-10"}]})),
    ]
    with fake_model(script) as (model_url, requests):
        result = run_inference("--tasks", "easy_two_spikes", env=model_env(model_url, server_url, MAX_TOOL_ROUNDS="5"))
    assert result.returncode == 0, result.stderr
    [task] = parse_log(result.stdout, ["easy_two_spikes"], "fake-model")
    assert len(requests) == 5
    assert [s["action"] for s in task["steps"]] == ['submit_report({"rows":[]})']
    assert task["success"] is False
    # The fallback cannot be missed: its [STEP] says why, a warning says so, and the summary table marks the task.
    assert task["steps"][0]["error"] == "no report after 5 model turns (MAX_TOOL_ROUNDS allows more)"
    assert "[WARN] task=easy_two_spikes no report after 5 model turns" in result.stderr
    [row] = [line for line in result.stderr.splitlines() if line.startswith("easy_two_spikes ")]
    assert row.endswith("FALLBACK: no report after 5 model turns (MAX_TOOL_ROUNDS allows more)")
    assert "[WARN] 1 of 1 task(s) ended without a report of the agent's" in result.stderr
    assert "not valid JSON" in tool_messages(requests[1])[0]
    unknown = tool_messages(requests[2])[1]
    assert "unknown tool 'no_such_tool'" in unknown and "task_overview" in unknown
    invalid = tool_messages(requests[3])[2]
    assert "invalid rows" in invalid and "Nothing was submitted" in invalid


def test_a_model_that_spends_the_budget_without_a_report_is_reported_as_such(server_url: str, tmp_path: Path) -> None:
    """Forty calls and no submission at deep spend the episode's budget: nothing can be submitted any more, and the
    task is marked as ending without a report everywhere (a warning, the summary's row, the --output file)."""
    script = [tool_calls(("task_overview", {})) for _ in range(40)]
    with fake_model(script) as (model_url, requests):
        result = run_inference(
            "--tasks", "deep_cuboids", "--output", str(tmp_path / "r.json"), env=model_env(model_url, server_url)
        )
    assert result.returncode == 0, result.stderr  # the model was used: its score is its own, 0
    [task] = parse_log(result.stdout, ["deep_cuboids"], "fake-model")
    assert len(task["steps"]) == 40 and task["steps"][-1]["done"] and not task["success"]
    assert not any(step["action"].startswith("submit_") for step in task["steps"])  # none fits after the budget
    reason = "no report: the episode's step budget ran out after 40 steps"
    assert [step["error"] for step in task["steps"]] == [None] * 39 + [reason]  # stdout says so too
    assert f"[WARN] task=deep_cuboids {reason}" in result.stderr
    [row] = [line for line in result.stderr.splitlines() if line.startswith("deep_cuboids ")]
    assert row.endswith(f"FALLBACK: {reason}") and "submitted" not in row
    assert "[WARN] 1 of 1 task(s) ended without a report of the agent's" in result.stderr
    saved = json.loads((tmp_path / "r.json").read_text())["tasks"][0]
    assert (saved["fallback"], saved["error"], saved["score"], saved["reward_breakdown"]) == (reason, None, 0.0, None)


def test_refused_calls_are_shown_beside_the_steps_and_counted(server_url: str, tmp_path: Path) -> None:
    """Twenty calls, one to an unknown tool and one with malformed JSON: 18 steps on stdout, and a [REFUSED] line
    on stderr for each of the two, counted in the summary and kept in the --output file."""
    generator = {"method_name": "get_rate_spike_from_median_rows", "threshold_multiplier": 4.0}
    script = [tool_calls(("task_overview", {})) for _ in range(8)]
    script += [tool_calls(("no_such_tool", {"x": 1}), ("get_annotations", "{not json"))]
    script += [tool_calls(("task_overview", {})) for _ in range(9)]
    script.append(tool_calls(("submit_generators", {"generators": [generator]})))
    with fake_model(script) as (model_url, _):
        result = run_inference(
            "--tasks", "easy_two_spikes", "--output", str(tmp_path / "r.json"), env=model_env(model_url, server_url)
        )
    assert result.returncode == 0, result.stderr
    [task] = parse_log(result.stdout, ["easy_two_spikes"], "fake-model")
    assert len(task["steps"]) == 18
    refused = [line for line in result.stderr.splitlines() if line.startswith("[REFUSED] ")]
    assert len(refused) == 2, result.stderr
    assert refused[0].startswith(
        '[REFUSED] task=easy_two_spikes after_step=8 action=no_such_tool({"x": 1}) '
        "error=error: unknown tool 'no_such_tool'"
    )
    assert refused[1].startswith(
        "[REFUSED] task=easy_two_spikes after_step=8 action=get_annotations({not json) "
        "error=error: the arguments of get_annotations are not valid JSON"
    )
    [row] = [line for line in result.stderr.splitlines() if line.startswith("easy_two_spikes ")]
    assert row.split()[1:4] == [f"{json.loads((tmp_path / 'r.json').read_text())['tasks'][0]['score']:.3f}", "18", "2"]
    assert "[WARN] 2 tool call(s) were refused without a step" in result.stderr
    calls = json.loads((tmp_path / "r.json").read_text())["tasks"][0]["refused_calls"]
    assert [(c["after_step"], c["tool"], c["arguments"]) for c in calls] == [
        (8, "no_such_tool", '{"x": 1}'),
        (8, "get_annotations", "{not json"),
    ]
    assert all(c["error"].startswith("error: ") for c in calls)


def test_http_error_ends_every_task_cleanly(server_url: str) -> None:
    script = [tool_calls(("task_overview", {})), {"status": 402, "message": "You have depleted your credits"}]
    tasks = ["easy_two_spikes", "medium_mixed_three"]
    with fake_model(script) as (model_url, requests):
        result = run_inference("--tasks", ",".join(tasks), env=model_env(model_url, server_url))
    assert result.returncode == 1, result.stderr  # the model was asked for and could not be used
    first, second = parse_log(result.stdout, tasks, "fake-model")
    assert "HTTP 402" in result.stderr and "credits" in result.stderr
    # Each task is still graded once, by the empty fallback report; the model is not called after a 402.
    assert [s["action"] for s in first["steps"]] == ["task_overview()", 'submit_report({"rows":[]})']
    assert [s["action"] for s in second["steps"]] == ['submit_report({"rows":[]})']
    assert len(requests) == 2
    # The fallback's [STEP] line says why: the model's error, not error=null.
    assert first["steps"][0]["error"] is None
    assert all("HTTP 402" in task["steps"][-1]["error"] for task in (first, second))


@pytest.mark.parametrize("failure", ["unreachable", "404"])
def test_a_keyless_local_model_is_used_and_its_failure_is_an_error(server_url: str, failure: str) -> None:
    """API_BASE_URL and MODEL_NAME without a key (a local vLLM) run the model; one that cannot be used exits 1."""
    script = [{"status": 404, "message": "The model `local-model` does not exist."}]
    with fake_model(script) as (model_url, requests):
        url = model_url if failure == "404" else f"http://127.0.0.1:{free_port()}/v1"
        result = run_inference(
            "--tasks",
            "easy_two_spikes",
            env={
                "API_BASE_URL": url,
                "MODEL_NAME": "local-model",
                "METRIC_TRACKER_URL": server_url,
                "MODEL_MAX_RETRIES": "0",
            },
        )
    assert result.returncode == 1, result.stderr
    (task,) = parse_log(result.stdout, ["easy_two_spikes"], "local-model")
    assert task["steps"][-1]["error"] is not None
    assert ("HTTP 404" if failure == "404" else "could not reach the model") in task["steps"][-1]["error"]
    assert bool(requests) == (failure == "404")  # the request went out without a key


# --- offline and failure paths -----------------------------------------------------------------------


def test_offline_run_serves_the_environment_itself_and_stops_it(tmp_path: Path) -> None:
    output, trajectories = tmp_path / "results.json", tmp_path / "traj"
    result = run_inference("--output", str(output), "--trajectories", str(trajectories))
    assert result.returncode == 0, result.stderr
    tasks = parse_log(result.stdout, SCRIPTED_TASKS, "scripted")
    url = re.search(r"started local server in this process url=(\S+)", result.stderr).group(1)
    assert f"stopped local server url={url}" in result.stderr
    with pytest.raises(httpx.TransportError):  # nothing listens there any more
        httpx.get(f"{url}/health", timeout=5)
    saved = json.loads(output.read_text())
    assert saved["agent"] == "scripted" and [t["task_id"] for t in saved["tasks"]] == SCRIPTED_TASKS
    for task, record in zip(tasks, saved["tasks"], strict=True):
        assert record["published_score"] == task["score"] and record["steps"] == len(task["steps"])
        assert task["steps"][-1]["action"].startswith("submit_report(")
    episodes = [json.loads(line) for line in (trajectories / "scripted.jsonl").read_text().splitlines()]
    assert [e["task"] for e in episodes] == SCRIPTED_TASKS
    for episode, record in zip(episodes, saved["tasks"], strict=True):
        assert episode["score"] == record["score"] and episode["rewards"] == record["rewards"]
        assert sum(m["role"] == "tool" for m in episode["messages"]) == record["steps"]
        assert not any('"debug"' in m["content"] for m in episode["messages"])
    # The scripted floor solves the easy task and finds some incidents of medium and hard (a fixed procedure: the
    # timing shifts of medium and hard defeat it, as they should); it reports no segment, so frontier, where an
    # incident's credit needs its segment, gives it nothing, nor does deep.
    scores = {record["task_id"]: record["score"] for record in saved["tasks"]}
    assert scores["easy_two_spikes"] == 1.0
    assert all(0 < scores[task_id] < 1 for task_id in ("medium_mixed_three", "hard_mixed_multi")), scores
    assert scores["frontier_segments"] == scores["deep_cuboids"] == 0.0, scores


def test_the_server_it_starts_listens_on_the_port_asked_for(tmp_path: Path) -> None:
    port = free_port()
    result = run_inference("--tasks", "easy_two_spikes", "--port", str(port))
    assert result.returncode == 0, result.stderr
    parse_log(result.stdout, ["easy_two_spikes"], "scripted")
    assert f"started local server in this process url=http://127.0.0.1:{port}" in result.stderr
    with socket.create_server(("127.0.0.1", port)):  # taken: the run says so and fails every task
        busy = run_inference("--tasks", "easy_two_spikes", "--port", str(port))
    assert busy.returncode == 1
    parse_log(busy.stdout, ["easy_two_spikes"], "scripted")
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr and "choose another port" in busy.stderr


def test_deep_runs_offline_by_difficulty_and_by_task_with_the_dial(tmp_path: Path) -> None:
    """`--difficulty deep` plays deep's named task, which the expert solves; `--tasks` with dial knobs plays it
    with them (its visible config shows them, and the episode is not standard)."""
    output, transcripts = tmp_path / "expert.json", tmp_path / "transcripts"
    result = run_inference(
        "--difficulty", "deep", "--agent", "expert", "--output", str(output), "--transcripts", str(transcripts)
    )
    assert result.returncode == 0, result.stderr
    (task,) = parse_log(result.stdout, ["deep_cuboids"], "expert")
    assert task["task"] == "deep_cuboids" and task["success"]
    assert json.loads(output.read_text())["tasks"][0]["score"] == 1.0
    transcript = json.loads((transcripts / "deep_cuboids.json").read_text())
    assert (transcript["difficulty"], transcript["settings"], transcript["score"]) == (
        "deep",
        {"task_id": "deep_cuboids"},
        1.0,
    )
    assert len(transcript["calls"]) == len(task["steps"])
    assert replays_exactly(transcripts)  # every text the agent read and the score, in process
    result = run_inference(
        "--tasks",
        "deep_cuboids",
        "--max-cuboid-depth",
        "1",
        "--concurrency",
        "0",
        "--decoy-ratio",
        "0.5",
        "--trajectories",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    parse_log(result.stdout, ["deep_cuboids"], "scripted")
    (record,) = [json.loads(line) for line in (tmp_path / "scripted.jsonl").read_text().splitlines()]
    assert record["reset"] == {"task_id": "deep_cuboids", "max_cuboid_depth": 1, "concurrency": 0, "decoy_ratio": 0.5}
    config = record["config"]
    assert (
        config["difficulty"],
        config["max_cuboid_depth"],
        config["concurrency"],
        config["decoy_ratio"],
        config["standard"],
    ) == ("deep", 1, 0, 0.5, False)


def test_unreachable_environment_still_prints_start_and_end() -> None:
    """The first task waits out the retry deadline; the others fail at once with the same cause. (The server is
    named by BASE_URL, METRIC_TRACKER_URL's deprecated name, which still works and says so once.)"""
    result = run_inference(env={"BASE_URL": f"http://127.0.0.1:{free_port()}", RETRY_DEADLINE_VAR: "1.5"})
    assert result.returncode == 1
    assert result.stderr.count("BASE_URL is deprecated, set METRIC_TRACKER_URL instead") == 1
    tasks = parse_log(result.stdout, SCRIPTED_TASKS, "scripted")
    assert all(not t["success"] and not t["steps"] and t["score"] == 0.01 for t in tasks)
    assert result.stderr.count("retrying in") >= 1 and "did not start an episode" in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("[ERROR] task=")]
    assert len(errors) == len(SCRIPTED_TASKS) and all("ServerUnavailable" in line for line in errors), errors
    rows = [line for line in result.stderr.splitlines() if line.split(" ")[0] in SCRIPTED_TASKS]
    assert len(rows) == len(SCRIPTED_TASKS), rows
    assert all("FAILED: " in row and "ServerUnavailable" in row for row in rows), rows
    assert f"{len(SCRIPTED_TASKS)} of {len(SCRIPTED_TASKS)} task(s) failed" in result.stderr


def test_a_task_whose_reset_fails_reads_failed_not_submitted(server_url: str, tmp_path: Path) -> None:
    """A task that never started an episode is a failure in the summary and the output, never `submitted`."""
    from metric_tracker_rl.adapters.baseline_log import summary_table

    refused = inference.EpisodeSpec("refused", {"task_id": "easy_two_spikes", "seed": -1})  # past the flags' check
    result = inference.run_task(
        refused, server_url, None, inference.agent_policy("null"), "null", "null", None, ClientSettings()
    )
    assert not result.graded and result.error and "reset failed" in result.error
    assert "FAILED: RuntimeError: reset failed: seed must be between 0" in summary_table([result])
    assert "submitted" not in summary_table([result])


def test_every_tier_plays_offline_by_difficulty_and_the_audit_by_its_train_tasks() -> None:
    """`--difficulty` over every tier (the audit by the first episode of its eval sweep) and `--difficulty audit
    --episodes 2`, offline, with the null agent (one empty report each): every episode is graded. The audit's train
    tasks are of its version 1 (their published block names that version), so their labels say so."""
    result = run_inference("--agent", "null", "--difficulty", ",".join(DIFFICULTIES))
    assert result.returncode == 0, result.stderr
    labels = [*DEFAULT_TASK_ORDER, "audit_80000"]
    tasks = parse_log(result.stdout, labels, "null")
    assert all(len(t["steps"]) == 1 for t in tasks) and "FAILED" not in result.stderr
    train = run_inference("--agent", "null", "--difficulty", "audit", "--episodes", "2")
    assert train.returncode == 0, train.stderr
    parse_log(train.stdout, ["audit-v1_1012000", "audit-v1_1012001"], "null")


def test_unknown_agent_and_missing_key_are_usage_errors(settings_from: Any, capsys: pytest.CaptureFixture[str]) -> None:
    offline = settings_from()
    with pytest.raises(SystemExit) as exit_info:
        inference.parse_args(["--agent", "no_such_agent"], offline)
    message = capsys.readouterr().err
    assert exit_info.value.code == 2 and "no_such_agent" in message and "scripted" in message
    with pytest.raises(SystemExit):
        inference.parse_args(["--agent", "llm"], offline)
    assert "API_KEY" in capsys.readouterr().err
    assert inference.parse_args([], offline).agent == "scripted"
    local = settings_from(api_base_url="http://127.0.0.1:8001/v1", model_name="local-model")
    assert inference.parse_args([], local).agent == "llm"  # a keyless local endpoint
    assert inference.parse_args(["--tasks", "hard_mixed_multi"], settings_from(api_key="key")).agent == "llm"
    assert settings_from(api_base_url=DEFAULT_API_BASE_URL).model_requested()  # named, even as the default
    with pytest.raises(SystemExit):
        inference.parse_args(["--tasks", "no_such_task"], offline)
    assert "hard_mixed_multi" in capsys.readouterr().err


def test_sft_episodes_are_the_train_splits_tasks(settings_from: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from metric_tracker_rl.catalog.task_splits import TRAIN_SEED_BASE, get_split

    train = get_split("train")
    episodes = inference.parse_args(["--episodes", "3", "--first-task", "5"], settings_from()).episode_specs
    assert [e.reset_kwargs for e in episodes] == [train.task(index) for index in (5, 6, 7)]
    # --seed from the train split's base names the same tasks (the documented SFT command)
    by_seed = inference.parse_args(["--episodes", "3", "--seed", str(TRAIN_SEED_BASE + 5)], settings_from())
    assert by_seed.episode_specs == episodes
    with pytest.raises(SystemExit):
        inference.parse_args(["--episodes", "2", "--seed", "50"], settings_from())
    assert "--first-task" in capsys.readouterr().err


def test_difficulty_chooses_the_named_or_train_tasks_and_the_knobs_reach_every_episode(settings_from: Any) -> None:
    from metric_tracker_rl.catalog.task_splits import TRAIN_SCHEDULE, get_split

    offline = settings_from()
    by_difficulty = inference.parse_args(["--difficulty", "DEEP"], offline).episode_specs
    assert [e.reset_kwargs for e in by_difficulty] == [{"task_id": "deep_cuboids"}]
    warehouse = inference.parse_args(["--difficulty", "warehouse", "--agent", "expert"], offline).episode_specs
    assert [e.reset_kwargs for e in warehouse] == [{"task_id": "warehouse_raw_events"}]
    assert "warehouse_raw_events" in [
        e.reset_kwargs.get("task_id") for e in inference.parse_args(["--agent", "null"], offline).episode_specs
    ]  # the default list plays it too, for an agent that plays the warehouse
    pair = inference.parse_args(["--difficulty", "frontier,deep", "--seed", "7"], offline).episode_specs
    assert [e.reset_kwargs for e in pair] == [
        {"task_id": "frontier_segments", "seed": 7},
        {"task_id": "deep_cuboids", "seed": 7},
    ]
    # With --episodes, the train split's tasks at the difficulty: deep's block follows the others'.
    deep_block = next(i for i, block in enumerate(TRAIN_SCHEDULE) if block.difficulties == ("deep",))
    first_deep = sum(block.count for block in TRAIN_SCHEDULE[:deep_block])
    train = inference.parse_args(["--episodes", "2", "--difficulty", "deep"], offline).episode_specs
    assert [e.reset_kwargs for e in train] == [get_split("train").task(first_deep + i) for i in range(2)]
    hard = inference.parse_args(["--episodes", "2", "--difficulty", "hard", "--first-task", "1"], offline)
    assert [e.reset_kwargs for e in hard.episode_specs] == [get_split("train").task(i) for i in (2, 6)]
    dial = inference.parse_args(
        [
            "--difficulty",
            "deep",
            "--max-cuboid-depth",
            "2",
            "--magnitude-scale",
            "1.5",
            "--note-share",
            "0",
            "--dimensions",
            "platform,country,channel",
            "--incident-kinds",
            "segment_outage,level_shift",
        ],
        offline,
    ).episode_specs
    assert dial[0].reset_kwargs == {
        "task_id": "deep_cuboids",
        "max_cuboid_depth": 2,
        "magnitude_scale": 1.5,
        "note_share": 0.0,
        "dimensions": ["platform", "country", "channel"],
        "incident_kinds": ["segment_outage", "level_shift"],
    }


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--difficulty", "impossible"], ["impossible", "easy, medium, hard, frontier, deep"]),
        (["--difficulty", ","], ["names no difficulty", "deep"]),
        (["--tasks", "easy_two_spikes", "--difficulty", "deep"], ["easy_two_spikes is at difficulty easy"]),
        (
            ["--max-cuboid-depth", "2"],
            ["easy_two_spikes", f"max_cuboid_depth applies at difficulty {CUBOID_DIAL_TIERS} only"],
        ),
        (["--difficulty", "deep", "--max-cuboid-depth", "9"], ["max_cuboid_depth must be between 1 and 3"]),
        (["--difficulty", "deep", "--max-cuboid-depth", "two"], ["max_cuboid_depth must be an integer", "'two'"]),
        (["--difficulty", "deep", "--magnitude-scale", "9"], ["magnitude_scale must be a number between 0.25 and 3"]),
        (["--difficulty", "deep", "--dimensions", "country"], ["includes platform", "valid: platform, country"]),
        (["--difficulty", "deep", "--incident-kinds", "nope"], ["unknown incident kind(s) 'nope'", "valid:"]),
        (
            ["--difficulty", "hard", "--decoy-ratio", "1"],
            [f"decoy_ratio applies at difficulty {SEGMENT_KNOB_TIERS} only"],
        ),
        (["--episodes", "1", "--tasks", "deep_cuboids"], ["drop --tasks"]),
    ],
)
def test_bad_difficulties_and_knobs_are_usage_errors_naming_the_choices(
    settings_from: Any, capsys: pytest.CaptureFixture[str], argv: list[str], says: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        inference.parse_args(argv, settings_from())
    message = " ".join(capsys.readouterr().err.split())
    assert exit_info.value.code == 2
    assert all(part in message for part in says), message


def test_help_lists_the_environment_variables_it_reads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        inference.parse_args(["--help"], ClientSettings())
    text = " ".join(capsys.readouterr().out.split())
    assert RETRY_DEADLINE_VAR in text
    assert all(f"--{name.replace('_', '-')}" in text for name in DIAL_KNOBS)  # a flag for every knob of the dial
    for name, field in ClientSettings.model_fields.items():
        if name != "reset_defaults":  # the TRL class's only
            assert " / ".join(field.validation_alias.choices) in text and " ".join(field.description.split()) in text
