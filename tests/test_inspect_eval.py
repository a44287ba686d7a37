"""The Inspect AI task end to end, without a network: Inspect's mock model (`mockllm/model` with scripted
outputs) drives real episodes on a live server on a loopback port."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import INSPECT_GROUP, ROOT
from core_helpers import CUBOID_DIAL_TIERS, SEGMENT_KNOB_TIERS
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytest.importorskip("inspect_ai", reason=INSPECT_GROUP)

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.event import ToolEvent  # noqa: E402
from inspect_ai.log import EvalLog, read_eval_log  # noqa: E402
from inspect_ai.model import (  # noqa: E402
    ChatMessage,
    ChatMessageTool,
    ChatMessageUser,
    ModelOutput,
    ModelUsage,
    get_model,
)
from inspect_ai.model._call_tools import validate_tool_input  # noqa: E402
from text_reader import read_observation  # noqa: E402

from metric_tracker_rl import (  # noqa: E402
    DEFAULT_TASK_ORDER,
    MetricTrackerRlEnv,
    get_task_spec,
)
from metric_tracker_rl.adapters.inspect_eval import metric_tracker  # noqa: E402
from metric_tracker_rl.adapters.inspect_eval.dataset import episode_dataset  # noqa: E402
from metric_tracker_rl.adapters.inspect_eval.server import LOCAL_SERVERS  # noqa: E402
from metric_tracker_rl.adapters.inspect_eval.solver import require_held_out  # noqa: E402
from metric_tracker_rl.adapters.inspect_eval.tools import tool_params  # noqa: E402
from metric_tracker_rl.adapters.transcript import TaskRun  # noqa: E402
from metric_tracker_rl.agents import make_agent, run_episode, scripted  # noqa: E402,F401
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY  # noqa: E402
from metric_tracker_rl.catalog.published import DIFFICULTIES  # noqa: E402
from metric_tracker_rl.catalog.task_splits import (  # noqa: E402
    EVAL_SCHEDULE,
    EVAL_SEEDS_PER_DIFFICULTY,
    calibration_reset_kwargs,
    get_split,
    sweep_version,
)
from metric_tracker_rl.server_process import free_port, serving  # noqa: E402
from metric_tracker_rl.view.observation import SeenObservation  # noqa: E402
from metric_tracker_rl.view.tool_schemas import action_tool_call, model_tools  # noqa: E402

# Usage given up front: mockllm would otherwise count tokens with an encoding it downloads.
pytestmark = pytest.mark.slow  # starts local servers and subprocesses

USAGE = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
MODEL = "mockllm/model"


def tool_call(name: str, arguments: dict[str, Any]) -> ModelOutput:
    output = ModelOutput.for_tool_call(MODEL, name, arguments)
    output.usage = USAGE
    return output


def text(content: str) -> ModelOutput:
    output = ModelOutput.from_content(MODEL, content)
    output.usage = USAGE
    return output


def episode_key(messages: list[ChatMessage]) -> str:
    """The first user message holds the episode's brief (task, config and seed): one key per sample."""
    return next(m.text for m in messages if isinstance(m, ChatMessageUser))


def observation_from(message: ChatMessage) -> SeenObservation:
    """A tool result as a reference agent reads it: the text the model was shown."""
    assert isinstance(message, ChatMessageTool), message
    return read_observation(message.text)


def reset_observation_from(messages: list[ChatMessage]) -> SeenObservation:
    """The brief, the episode's first user message."""
    return read_observation(next(m for m in messages if m.role == "user").text)


class AgentModel:
    """A mock model that plays a reference agent through tool calls, one agent per sample."""

    def __init__(self, agent_name: str) -> None:
        self.agent_name = agent_name
        self.agents: dict[str, Any] = {}
        self.calls: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)

    def __call__(self, messages: list[ChatMessage], *_: Any) -> ModelOutput:
        key = episode_key(messages)
        if key not in self.agents:
            self.agents[key] = make_agent(self.agent_name)
            observation = reset_observation_from(messages)
            self.agents[key].begin(observation)  # then it acts on the brief, as run_episode has it
        else:
            observation = observation_from(messages[-1])
        action = self.agents[key].act(observation)
        if action is None:
            return text("finished")
        name, arguments = action_tool_call(action)
        self.calls[key].append((name, arguments))
        return tool_call(name, arguments)


def run_eval(model: Any, log_dir: Path, **task_args: Any) -> EvalLog:
    eval_args = {key: task_args.pop(key) for key in ("max_samples", "max_tool_output") if key in task_args}
    logs = inspect_eval(
        metric_tracker(**task_args),
        model=get_model(MODEL, custom_outputs=model, memoize=False),
        log_dir=str(log_dir),
        display="none",
        max_connections=16,
        **eval_args,
    )
    assert len(logs) == 1 and logs[0].status == "success", logs[0].error
    return logs[0]


def reference_score(url: str, agent_name: str, reset_kwargs: dict[str, Any]) -> float:
    """The agent's episode score over the plain WebSocket client, as inference.py runs it."""
    with MetricTrackerRlEnv(base_url=url).sync() as env:
        results = run_episode(make_agent(agent_name), env.reset, env.step, **reset_kwargs)
    return sum(float(result.reward or 0.0) for result in results)


def sample_scores(log: EvalLog) -> dict[str, float]:
    return {str(s.id): float(s.scores["episode_score"].value) for s in log.samples}


# --- the task's parts -------------------------------------------------------------------------------


def test_importing_the_package_leaves_inspect_out() -> None:
    code = (
        "import sys, metric_tracker_rl, metric_tracker_rl.client, metric_tracker_rl.agents; "
        "assert 'inspect_ai' not in sys.modules, 'inspect_ai was imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_default_samples_are_the_named_tasks() -> None:
    samples = list(episode_dataset(None, None, 0))
    assert [s.id for s in samples] == list(DEFAULT_TASK_ORDER) and "warehouse_raw_events" in DEFAULT_TASK_ORDER
    assert [s.metadata["reset_kwargs"] for s in samples] == [{"task_id": t} for t in DEFAULT_TASK_ORDER]
    warehouse = list(episode_dataset(None, "warehouse", 0))  # -T difficulty=warehouse: its named task
    assert [(s.id, s.metadata["difficulty"]) for s in warehouse] == [("warehouse_raw_events", "warehouse")]


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_a_difficulty_alone_plays_its_named_tasks_or_its_sweeps_first_episode(difficulty: str) -> None:
    """`-T difficulty=<tier>` without seeds builds a task at every tier: its named tasks, or at a tier with none
    (the audit) the first episode of its calibration sweep, the episode inference.py's `--difficulty` plays."""
    samples = list(metric_tracker(difficulty=difficulty).dataset)
    named = [t for t in DEFAULT_TASK_ORDER if get_task_spec(t).difficulty == difficulty]
    if named:
        assert [s.id for s in samples] == named
    else:
        first = calibration_reset_kwargs(difficulty, 0)
        assert [(s.id, s.metadata["reset_kwargs"]) for s in samples] == [(f"{difficulty}_{first['seed']}", first)]
    assert {s.metadata["difficulty"] for s in samples} == {difficulty}


def test_the_audit_by_difficulty_runs_through_the_inspect_command_line(tmp_path: Path) -> None:
    """`inspect eval ... -T difficulty=audit` without seeds: the expert plays the audit's episode, no traceback."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "inspect_ai",
            "eval",
            "metric_tracker_rl/metric_tracker",
            "--model",
            "metric_tracker/expert",
            "-T",
            "difficulty=audit",
            "--log-dir",
            str(tmp_path),
            "--display",
            "plain",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        # no PYTHONPATH at the checkout: the package is installed editable, and a stray `*.egg-info` a build left
        # there would be found first, without the editable install's direct_url.json, so Inspect would register
        # the task without its `metric_tracker_rl/` namespace ("No inspect tasks were found")
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
    )
    assert completed.returncode == 0 and "Traceback" not in completed.stderr, (
        completed.stdout[-2000:] + completed.stderr[-2000:]
    )
    [log] = [read_eval_log(str(path)) for path in tmp_path.glob("*.eval")]
    assert log.status == "success" and [s.id for s in log.samples or []] == ["audit_80000"]


@pytest.mark.parametrize("argument", ["seeds=abc", "difficulty=auditt", "tasks=nope", "seeds=-1", "magnitude_scale=2"])
def test_a_bad_argument_on_the_command_line_is_its_message_not_a_traceback(argument: str, tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "inspect_ai", "eval", "metric_tracker_rl/metric_tracker", "--model", "mockllm/model"]
        + ["-T", argument, "--log-dir", str(tmp_path), "--display", "plain"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},  # as the test above says
    )
    output = " ".join((completed.stdout + completed.stderr).split())
    assert completed.returncode != 0 and "Traceback" not in output, output[-2000:]
    assert re.search(r"metric_tracker: .*(valid|0 or more|only)", output), output[-2000:]


@settings(max_examples=30, deadline=None)
@given(
    difficulties=st.lists(st.sampled_from(DIFFICULTIES), min_size=1, max_size=3, unique=True),
    seeds=st.integers(1, 12),
    offset=st.integers(0, 300),
)
@example(difficulties=["easy"], seeds=1, offset=0)
@example(difficulties=["hard"], seeds=10, offset=0)  # holds the sweep's first null episode
@example(difficulties=["audit"], seeds=2, offset=198)  # the sweep of its latest version, at its end
def test_a_sweep_is_the_calibration_sweep(difficulties: list[str], seeds: int, offset: int) -> None:
    """An Inspect sweep runs the episodes the calibration and the eval split run under the same seeds, null
    episodes included: both take them from task_splits."""
    samples = list(episode_dataset(None, ",".join(difficulties), seeds, offset))
    assert len(samples) == len(difficulties) * seeds
    assert len({s.id for s in samples}) == len(samples)
    eval_split = get_split("eval")
    for index, difficulty in enumerate(difficulties):
        group = samples[index * seeds : (index + 1) * seeds]
        expected = [
            calibration_reset_kwargs(difficulty, index, sweep_version(difficulty))
            for index in range(offset, offset + seeds)
        ]
        assert [s.metadata["reset_kwargs"] for s in group] == expected
        assert {s.metadata["difficulty"] for s in group} == {difficulty}
        block = next(  # the sweep of the version it plays (the audit's second: its latest sweep)
            i for i, b in enumerate(EVAL_SCHEDULE) if b.sweep == difficulty and b.version == sweep_version(difficulty)
        )
        first = sum(b.size() for b in EVAL_SCHEDULE[:block])
        for position, sample in enumerate(group):
            if offset + position < EVAL_SEEDS_PER_DIFFICULTY:
                assert sample.metadata["reset_kwargs"] == eval_split.task(first + offset + position)


@pytest.mark.parametrize(
    ("tasks", "difficulty", "seeds", "message"),
    [
        ("no_such_task", None, 0, "unknown task_id .no_such_task.; valid"),
        (None, "impossible", 2, "valid choices"),
        (None, "impossible", 0, "valid choices: easy, medium, hard, frontier, deep"),
        ("easy_two_spikes", "deep", 0, "easy_two_spikes is at difficulty easy, not deep"),
        (None, None, -1, "0 or more"),
        ("", None, 0, "no samples"),
    ],
)
def test_bad_task_arguments_name_the_valid_choices(
    tasks: str | None, difficulty: str | None, seeds: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        episode_dataset(tasks, difficulty, seeds)


def test_a_difficulty_without_a_sweep_plays_its_named_tasks_with_the_dial_set() -> None:
    """`-T difficulty=deep` plays deep's named task; the dial knobs (`-T max_cuboid_depth=2`, a list as
    comma-separated text, as `-T` passes it) reach every sample's reset arguments."""
    samples = list(metric_tracker(difficulty="Deep").dataset)
    assert [(s.id, s.metadata["reset_kwargs"], s.metadata["difficulty"]) for s in samples] == [
        ("deep_cuboids", {"task_id": "deep_cuboids"}, "deep")
    ]
    assert [s.id for s in metric_tracker(difficulty="frontier,deep").dataset] == ["frontier_segments", "deep_cuboids"]
    dialled = list(
        metric_tracker(
            difficulty="deep",
            max_cuboid_depth=2,
            concurrency=0,
            magnitude_scale=1.5,
            note_share=0,
            decoy_ratio=0.5,
            dimensions="platform,country,channel",
            incident_kinds=["segment_outage", "level_shift"],
        ).dataset
    )
    assert dialled[0].metadata["reset_kwargs"] == {
        "task_id": "deep_cuboids",
        "max_cuboid_depth": 2,
        "concurrency": 0,
        "magnitude_scale": 1.5,
        "note_share": 0,
        "decoy_ratio": 0.5,
        "dimensions": ["platform", "country", "channel"],
        "incident_kinds": ["segment_outage", "level_shift"],
    }
    sweep_samples = list(metric_tracker(difficulty="deep", seeds=2, max_cuboid_depth=1).dataset)
    assert [s.metadata["reset_kwargs"] for s in sweep_samples] == [
        {**calibration_reset_kwargs("deep", index, sweep_version("deep")), "max_cuboid_depth": 1} for index in range(2)
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"max_cuboid_depth": 2},
            f"easy_two_spikes: max_cuboid_depth applies at difficulty {CUBOID_DIAL_TIERS} only, not 'easy'",
        ),
        ({"difficulty": "deep", "max_cuboid_depth": 7}, "max_cuboid_depth must be between 1 and 3, got 7"),
        ({"difficulty": "deep", "concurrency": "x"}, "concurrency must be an integer, got 'x'"),
        ({"difficulty": "deep", "dimensions": "country,user_type"}, "includes platform; valid: platform, country"),
        ({"difficulty": "hard", "decoy_ratio": 1.0}, f"decoy_ratio applies at difficulty {SEGMENT_KNOB_TIERS} only"),
        ({"difficulty": "deep", "note_share": 2}, "note_share must be a number between 0 and 1"),
    ],
)
def test_a_bad_knob_is_an_error_naming_what_it_takes(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        metric_tracker(**arguments)


def test_every_registry_tool_is_an_inspect_tool_whose_schema_accepts_its_example() -> None:
    tools = {tool.name: tool for tool in model_tools()}
    # A tool offered only at a tier still being built (not listed) joins the list when its tier is listed.
    offered = {name: spec for name, spec in TOOL_REGISTRY.items() if set(spec.offered_at) & set(DIFFICULTIES)}
    assert set(tools) - set(offered) == {"submit_report", "submit_generators"}
    for name, spec in offered.items():
        params = tool_params(tools[name].parameters)
        assert "$ref" not in json.dumps(params.model_dump(exclude_none=True))
        assert validate_tool_input(spec.example, params) is None, name
        assert validate_tool_input({"no_such_argument": 1}, params) is not None, name


def test_a_held_out_eval_refuses_a_server_without_held_out_episodes() -> None:
    require_held_out({"held_out": True}, "http://127.0.0.1:1")
    for config in ({}, {"held_out": False}):
        with pytest.raises(RuntimeError, match="METRIC_TRACKER_SECRET"):
            require_held_out(config, "http://127.0.0.1:1")


# --- end to end on a live server -------------------------------------------------------------------


def test_a_scripted_tool_calling_run_scores_as_the_scripted_agent(server_url: str, tmp_path: Path) -> None:
    model = AgentModel("scripted")
    # Inspect's own cut of tool output (16 KiB) is left as it is: no page of a result is that long.
    log = run_eval(model, tmp_path, base_url=server_url)
    scores = sample_scores(log)
    assert set(scores) == set(DEFAULT_TASK_ORDER)
    for task_id in DEFAULT_TASK_ORDER:
        assert scores[task_id] == pytest.approx(reference_score(server_url, "scripted", {"task_id": task_id}))
    assert any(score > 0 for score in scores.values())
    for sample in log.samples:
        metadata = sample.scores["episode_score"].metadata
        assert metadata["graded_submissions"] == 1
        assert metadata["reward_breakdown"]["score"] == pytest.approx(scores[str(sample.id)])

    # The model reads the same brief and the same tool results as inference.py's records (and the TRL class:
    # tests/test_tool_env.py): one rendering for every harness.
    for sample in log.samples:
        run = TaskRun(str(sample.id))
        with MetricTrackerRlEnv(base_url=server_url).sync() as env:
            run_episode(make_agent("scripted"), partial(run.reset, env), partial(run.act, env), task_id=str(sample.id))
        assert [m.text for m in sample.messages if isinstance(m, ChatMessageTool)] == [
            m["content"] for m in run.messages if m["role"] == "tool"
        ]
        assert next(m.text for m in sample.messages if m.role == "user") == run.messages[1]["content"]
        assert next(m.text for m in sample.messages if m.role == "system") == run.messages[0]["content"]

    # The log on disk holds every tool call the model made, in order, with its arguments and result.
    stored = read_eval_log(log.location)
    for sample in stored.samples:
        events = [e for e in sample.events if isinstance(e, ToolEvent)]
        made = model.calls[episode_key(sample.messages)]
        assert [(e.function, e.arguments) for e in events] == made
        assert all(e.error is None and e.result for e in events)
        assert made[-1][0] == "submit_report"


def test_a_model_that_never_submits_scores_zero(server_url: str, tmp_path: Path) -> None:
    def investigates_forever(messages: list[ChatMessage], *_: Any) -> ModelOutput:
        return tool_call("task_overview", {})

    def only_talks(messages: list[ChatMessage], *_: Any) -> ModelOutput:
        return text("I think the data looks fine.")

    log = run_eval(investigates_forever, tmp_path / "tools", base_url=server_url, tasks="easy_two_spikes")
    [sample] = log.samples
    score = sample.scores["episode_score"]
    assert score.value == 0 and score.metadata["graded_submissions"] == 0
    assert score.metadata["done"], "the step budget ends the episode"
    assert score.metadata["steps"] == score.metadata["config"]["max_steps"]

    log = run_eval(only_talks, tmp_path / "text", base_url=server_url, tasks="easy_two_spikes", max_turns=5)
    [sample] = log.samples
    assert sample.scores["episode_score"].value == 0
    assert sample.scores["episode_score"].metadata["steps"] == 0
    assert sum(isinstance(m, ChatMessageUser) for m in sample.messages) == 1 + 5


def test_malformed_tool_arguments_come_back_as_tool_errors(server_url: str, tmp_path: Path) -> None:
    mistakes = [
        ("compare_rate_to_median", {"no_such_argument": 1}),  # refused by the tool's schema
        ("get_metric_std_dev_from_median", {"metric_names": "app_opens"}),
        ("hourly_rows_for_date", {"date": "1999-01-01"}),  # valid shape, refused by the environment
        ("submit_report", {"rows": [{"date": "2024-01-01"}]}),  # rows missing their fields
        ("no_such_tool", {}),
    ]
    seen: list[ChatMessageTool] = []

    def clumsy(messages: list[ChatMessage], *_: Any) -> ModelOutput:
        if isinstance(messages[-1], ChatMessageTool):
            seen.append(messages[-1])
        made = sum(isinstance(m, ChatMessageTool) for m in messages)
        if made < len(mistakes):
            return tool_call(*mistakes[made])
        return tool_call("submit_report", {"rows": []})

    log = run_eval(clumsy, tmp_path, base_url=server_url, tasks="easy_two_spikes")
    [sample] = log.samples
    assert [m.function for m in seen] == [name for name, _ in mistakes]
    for message in seen:
        assert message.error is not None and message.error.message, message
    score = sample.scores["episode_score"]
    assert score.metadata["graded_submissions"] == 1 and score.value == 0.0
    errors = [e for e in read_eval_log(log.location).samples[0].events if isinstance(e, ToolEvent) and e.error]
    assert len(errors) == len(mistakes)


def test_max_samples_bounds_the_open_sessions(tmp_path: Path) -> None:
    """With --max-samples 8, eight samples hold a session at once and never more: every sample's first model
    turn waits (its session open) until eight have arrived."""
    arrived: set[str] = set()
    everyone_here = anyio.Event()
    finished = AgentModel("null")

    async def waits_for_eight(messages: list[ChatMessage], *rest: Any) -> ModelOutput:
        key = episode_key(messages)
        if key not in arrived:
            arrived.add(key)
            if len(arrived) == 8:
                everyone_here.set()
            with anyio.fail_after(60):
                await everyone_here.wait()
        return finished(messages, *rest)

    port = free_port()
    command = [sys.executable, str(ROOT / "tests" / "session_counting_server.py"), str(port)]
    with (
        tempfile.TemporaryFile() as server_log,
        serving(command, port, dict(os.environ), server_log, cwd=ROOT, timeout_s=300),
    ):
        url = f"http://127.0.0.1:{port}"
        log = run_eval(waits_for_eight, tmp_path, base_url=url, difficulty="easy,medium", seeds=6, max_samples=8)
        with urllib.request.urlopen(f"{url}/test/sessions", timeout=10) as response:
            sessions = json.load(response)
    assert len(log.samples) == 12
    assert all(s.scores["episode_score"].metadata["graded_submissions"] == 1 for s in log.samples)
    assert sessions == {"active": 0, "peak": 8, "opened": 12}


def submits_an_empty_report(messages: list[ChatMessage], *_: Any) -> ModelOutput:
    return tool_call("submit_report", {"rows": []})


def test_a_held_out_eval_starts_its_local_server_with_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("METRIC_TRACKER_URL", "BASE_URL", "METRIC_TRACKER_SECRET"):
        monkeypatch.delenv(name, raising=False)
    log = run_eval(submits_an_empty_report, tmp_path, tasks="easy_two_spikes", held_out=True)
    config = log.samples[0].scores["episode_score"].metadata["config"]
    assert config["held_out"] is True and config["standard"] is True
    assert LOCAL_SERVERS.running() == []


def test_the_expert_solves_deep_through_inspect_by_difficulty(server_url: str, tmp_path: Path) -> None:
    """`-T difficulty=deep`: the expert, playing through the model's tool calls, solves deep's named task as it
    does over the plain client."""
    log = run_eval(AgentModel("expert"), tmp_path, base_url=server_url, difficulty="deep")
    assert sample_scores(log) == {"deep_cuboids": 1.0}
    assert reference_score(server_url, "expert", {"task_id": "deep_cuboids"}) == 1.0


def test_a_held_out_eval_refuses_a_server_without_a_secret(server_url: str, tmp_path: Path) -> None:
    [log] = inspect_eval(
        metric_tracker(tasks="easy_two_spikes", held_out=True, base_url=server_url),
        model=get_model(MODEL, custom_outputs=submits_an_empty_report, memoize=False),
        log_dir=str(tmp_path),
        display="none",
    )
    assert log.status == "error"
    assert "does not serve held-out episodes" in log.error.message
    assert "METRIC_TRACKER_SECRET" in log.error.message


LOCAL_SERVER_RUN = """
import json, sys
from inspect_ai import eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from metric_tracker_rl.adapters.inspect_eval.server import LOCAL_SERVERS
from metric_tracker_rl.server_process import healthy

urls = []

def submits_nothing(messages, *rest):
    urls.extend(LOCAL_SERVERS.running())
    output = ModelOutput.for_tool_call("mockllm/model", "submit_report", {"rows": []})
    output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return output

[log] = eval("metric_tracker_rl/metric_tracker", task_args={"tasks": "easy_two_spikes", **json.loads(sys.argv[2])},
             model=get_model("mockllm/model", custom_outputs=submits_nothing), log_dir=sys.argv[1], display="none")
sample = log.samples[0]
print(json.dumps({"status": log.status, "task": log.eval.task, "urls": urls, "running_after": LOCAL_SERVERS.running(),
                  "healthy_after": healthy(urls[0], timeout_s=1.0) if urls else None,
                  "graded": sample.scores["episode_score"].metadata["graded_submissions"]}))
"""


@pytest.mark.parametrize("port", [None, "free"])
def test_without_a_url_a_local_server_runs_for_the_run_only(tmp_path: Path, port: str | None) -> None:
    """Run as `inspect eval metric_tracker_rl/metric_tracker` would, by the entry point's name, from a directory
    outside the checkout and without a server URL; the local server listens on the task's `port` when one is set
    (`-T port=...`), else on a free one."""
    env = {key: value for key, value in os.environ.items() if key not in ("METRIC_TRACKER_URL", "BASE_URL")}
    task_args = {} if port is None else {"port": free_port()}
    completed = subprocess.run(
        [sys.executable, "-c", LOCAL_SERVER_RUN, str(tmp_path / "logs"), json.dumps(task_args)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    run = json.loads(completed.stdout.strip().splitlines()[-1])
    assert run["status"] == "success" and run["task"] == "metric_tracker_rl/metric_tracker"
    assert run["graded"] == 1
    assert len(set(run["urls"])) == 1 and run["urls"][0].startswith("http://127.0.0.1:")
    if task_args:
        assert run["urls"][0] == f"http://127.0.0.1:{task_args['port']}"
    assert run["running_after"] == [] and run["healthy_after"] is False


def test_the_documented_offline_smoke_command_runs_without_a_network(tmp_path: Path) -> None:
    docs = (ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")
    assert "uv run python -m metric_tracker_rl.adapters.inspect_eval.smoke" in docs
    assert "--max-retries" in docs and "--timeout" in docs
    blocked = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    blocked.pop("METRIC_TRACKER_URL", None)
    blocked.pop("BASE_URL", None)
    completed = subprocess.run(
        [sys.executable, "-m", "metric_tracker_rl.adapters.inspect_eval.smoke"],
        cwd=tmp_path,
        env=blocked,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "inspect smoke: status=success samples=1" in completed.stdout
    assert list(tmp_path.iterdir()) == []  # the check leaves no log where it ran (a checkout's `logs/`)
    kept = tmp_path / "kept"
    completed = subprocess.run(
        [sys.executable, "-m", "metric_tracker_rl.adapters.inspect_eval.smoke", "--log-dir", str(kept)],
        cwd=tmp_path,
        env=blocked,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert [path.suffix for path in kept.iterdir()] == [".eval"] and str(kept) in completed.stdout
