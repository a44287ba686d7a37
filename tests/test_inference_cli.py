"""inference.py's command line answers before the run's heavy imports: `--help` and a usage error need only the
catalog and the settings, not the client, the agents, the model API or the server (OpenEnv imports gradio)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT, scaled

from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.catalog.tasks import resolve_episode_config

HEAVY = (
    "openenv",
    "gradio",
    "openai",
    "uvicorn",
    "metric_tracker_rl.agents",
    "metric_tracker_rl.client",
    "metric_tracker_rl.serving",
)
PROBE = """
import json, sys
import inference
try:
    inference.main(sys.argv[1:])
except SystemExit as exit_info:
    code = exit_info.code
heavy = sorted(name for name in sys.modules if any(name == h or name.startswith(h + ".") for h in {heavy!r}))
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


def probe(*argv: str) -> tuple[dict[str, object], str]:
    """Run inference.main on `argv` in a fresh interpreter: its exit code, the heavy modules it imported, stderr."""
    env = {key: value for key, value in os.environ.items() if not key.endswith(("_KEY", "_TOKEN"))}
    completed = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1]), completed.stderr


@pytest.mark.slow  # a subprocess per case (the usage checks themselves run in process: tests/test_inference.py)
@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["--help"], 0, None),
        (["--difficulty", "bogus"], 2, f"valid (in any case): {', '.join(DIFFICULTIES)}"),
        (["--tasks", "no_such_task"], 2, "easy_two_spikes"),
        (["--difficulty", "deep", "--max-cuboid-depth", "9"], 2, "max_cuboid_depth must be between 1 and 3"),
        (["--port", "70000"], 2, "--port must be between 0 (a free port) and 65535"),
    ],
)
def test_help_and_usage_errors_answer_before_the_heavy_imports(argv: list[str], code: int, says: str | None) -> None:
    result, stderr = probe(*argv)
    assert result == {"code": code, "heavy": []}, stderr
    if says is not None:
        assert says in " ".join(stderr.split())


def test_the_help_names_the_port_flag() -> None:
    completed = subprocess.run(
        [sys.executable, "inference.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0
    text = " ".join(completed.stdout.split())
    assert "--port PORT the loopback port of the server this run starts" in text


def timed_probe(*argv: str) -> tuple[dict[str, object], str, float]:
    started = time.monotonic()
    result, stderr = probe(*argv)
    return result, stderr, time.monotonic() - started


@pytest.mark.slow  # a fresh interpreter per value
@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--seed", "-1"], "seed must be between 0 and"),
        (["--seed", str(2**70)], "seed must be between 0 and"),
        (["--difficulty", "audit", "--seed", "-1"], "audit_-1: seed must be between 0 and"),
        (["--agent", "nobody"], "agent 'nobody' is not available in this checkout; valid: llm, null, scripted"),
        (["--port", "-1"], "--port must be between 0 (a free port) and 65535, not -1"),
        (["--episodes", "0"], "--episodes must be at least 1"),
        (["--difficulty", "audit", "--episodes", "2", "--seed", "-5"], "--episodes takes tasks 0 to"),
        (["--seed", "seven"], "argument --seed: invalid int value: 'seven'"),
    ],
)
def test_a_bad_value_is_one_line_and_exit_two_before_anything_starts(argv: list[str], says: str) -> None:
    """A bad value is a usage error before the server, the agents or the model API are imported: exit status 2
    and one line on stderr, in about a second (the import of the catalog), never a task reported later."""
    result, stderr, seconds = timed_probe(*argv)
    assert result == {"code": 2, "heavy": []}, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("inference.py: error: ") and says in lines[0], stderr
    assert seconds < scaled(5), f"{argv} took {seconds:.1f} s"  # about one second unloaded; the heavy imports take ten


def test_the_light_list_of_agent_names_is_the_registrys() -> None:
    from metric_tracker_rl.agents import AGENTS
    from metric_tracker_rl.catalog.reference_agents import REFERENCE_AGENTS

    assert sorted(REFERENCE_AGENTS) == sorted(AGENTS)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_difficulty_plays_the_tiers_episodes_with_or_without_episodes(
    difficulty: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At every tier, `--difficulty` alone plays its named tasks (a tier with none: the first episode of its eval
    sweep), and with `--episodes N` the first N train tasks at that tier, as the docs say."""
    import inference
    from metric_tracker_rl.catalog.task_splits import TRAIN_SCHEDULE, calibration_reset_kwargs, get_split
    from metric_tracker_rl.catalog.tasks import TASKS
    from metric_tracker_rl.settings import ClientSettings

    for name in ClientSettings.variables():
        monkeypatch.delenv(name, raising=False)
    alone = inference.parse_args(["--difficulty", difficulty, "--agent", "null"], ClientSettings()).episode_specs
    named = [{"task_id": task_id} for task_id, task in TASKS.items() if task.difficulty == difficulty]
    assert [e.reset_kwargs for e in alone] == (named or [calibration_reset_kwargs(difficulty, 0)])
    train = get_split("train")
    first = next(i for i in range(train.size()) if train.task(i)["difficulty"] == difficulty)
    step = next(len(b.difficulties) for b in TRAIN_SCHEDULE if difficulty in b.difficulties)
    played = inference.parse_args(
        ["--difficulty", difficulty, "--episodes", "2", "--agent", "expert"], ClientSettings()
    ).episode_specs
    assert [e.reset_kwargs for e in played] == [train.task(first), train.task(first + step)]
    assert all(e.reset_kwargs["difficulty"] == difficulty for e in played)


def test_the_docs_name_the_audits_stand_in_episode_as_the_catalog_does() -> None:
    """The pages that say what `--difficulty audit` and `-T difficulty=audit` play name the episode the catalog
    gives (its label, and its seed in the audit's page)."""
    from metric_tracker_rl.catalog.tier_episodes import episode_label, tier_episodes

    [episode] = tier_episodes("audit")
    label = episode_label(episode)
    for page in ("docs/inference.md", "docs/evaluation.md"):
        assert f"`{label}`" in (ROOT / page).read_text(encoding="utf-8"), page
    assert f'{{"seed": {episode["seed"]}, "difficulty": "audit"}}' in (ROOT / "docs/audit.md").read_text()


def test_an_agent_asked_for_a_tier_it_cannot_play_is_a_usage_error_naming_those_that_can(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default scripted agent asked for the audit (it reports through generators, which the audit lacks) is a
    usage error, exit 2, naming the agents that play it; unasked, it plays the named tasks of the tiers of counts."""
    import inference
    from metric_tracker_rl.catalog.reference_agents import agents_playing
    from metric_tracker_rl.catalog.tasks import resolve_episode_config
    from metric_tracker_rl.catalog.tiers import COUNTS
    from metric_tracker_rl.settings import ClientSettings

    for name in ClientSettings.variables():
        monkeypatch.delenv(name, raising=False)
    for argv in (["--difficulty", "audit"], ["--tasks", "warehouse_raw_events"], ["--difficulty", "warehouse"]):
        with pytest.raises(SystemExit) as exit_info:
            inference.parse_args(argv, ClientSettings())
        assert exit_info.value.code == 2
        error = capsys.readouterr().err
        tier = "audit" if "audit" in argv else "warehouse"
        assert f"agent 'scripted' cannot play {tier}" in error and ", ".join(agents_playing(tier)) in error, error
        assert "scripted" not in agents_playing(tier) and "expert" in agents_playing(tier)
    default = inference.parse_args([], ClientSettings())
    assert default.agent == "scripted" and default.episode_specs
    assert all(resolve_episode_config(**e.reset_kwargs).tier.data == COUNTS for e in default.episode_specs)


@pytest.mark.slow  # an audit episode in process
def test_the_scripted_agent_reports_nothing_at_a_tier_of_raw_events() -> None:
    """Why it may not play there: it submits an empty report, which scores 0."""
    from metric_tracker_rl.adapters.session import EpisodeSession
    from metric_tracker_rl.agents import make_agent, play
    from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
    from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

    session = play(
        make_agent("scripted"), EpisodeSession(MetricTrackerRlEnvironment()), **calibration_reset_kwargs("audit", 0)
    )
    assert session.graded is not None and session.graded.reward_breakdown.submitted_row_count == 0
    assert session.score == 0.0


def _reference_scores(tier: str) -> dict[str, float]:
    """The kept calibration's figures of the tier's reference expert on its eval seeds."""
    artifacts = ROOT / "lab" / "artifacts"
    if tier == "audit":
        return json.loads((artifacts / "audit_calibration.json").read_text())["splits"]["eval"]["agents"][
            "audit_expert"
        ]
    if tier == "warehouse":
        return json.loads((artifacts / "warehouse_calibration.json").read_text())["agents"]["warehouse_expert"]
    return json.loads((artifacts / "calibration.json").read_text())["agents"]["expert"][tier]


def test_each_tiers_success_threshold_is_published_and_its_reference_reaches_it_on_a_typical_episode() -> None:
    """docs/inference.md lists every listed tier's threshold; on the kept calibration the tier's reference expert
    reaches it on most episodes (95% of them at least, or on a typical one where the threshold is 0.9 or less: its
    median score, where the calibration keeps one, else more than half of them reaching 0.9); SUCCESS_THRESHOLD
    set overrides it."""
    from metric_tracker_rl.adapters.inference_args import EpisodeSpec, success_threshold
    from metric_tracker_rl.catalog.tiers import TIERS
    from metric_tracker_rl.settings import ClientSettings

    text = " ".join((ROOT / "docs" / "inference.md").read_text().split())
    listed = {name: tier for name, tier in TIERS.items() if tier.listed}
    assert ", ".join(f"{name} {tier.success_threshold:g}" for name, tier in listed.items()) in text
    for name, tier in listed.items():
        scores = _reference_scores(name)
        typical = scores["median"] >= tier.success_threshold if "median" in scores else scores["share_ge_0_9"] > 0.5
        assert scores["p5"] >= tier.success_threshold or (tier.success_threshold <= 0.9 and typical), (name, scores)
    audit = EpisodeSpec("audit_80000", {"seed": 80000, "difficulty": "audit"})
    assert success_threshold(audit, ClientSettings()) == TIERS["audit"].success_threshold < 0.91
    assert success_threshold(audit, ClientSettings(success_threshold=0.5)) == 0.5


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_the_names_the_log_prints_are_names_tasks_takes(difficulty: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each episode `--difficulty` or `--episodes` plays is labelled in the log (`task=<label>`) by a name that
    `--tasks` takes back, for the same reset arguments: a named task's id, or `<difficulty>_<seed>`."""
    import inference
    from metric_tracker_rl.settings import ClientSettings

    for name in ClientSettings.variables():
        monkeypatch.delenv(name, raising=False)
    for flags in (["--difficulty", difficulty], ["--difficulty", difficulty, "--episodes", "2"]):
        played = inference.parse_args([*flags, "--agent", "null"], ClientSettings()).episode_specs
        labels = ",".join(episode.label for episode in played)
        again = inference.parse_args(["--tasks", labels, "--agent", "null"], ClientSettings()).episode_specs
        # the same episode: a train task names its version, which a label leaves to the tier's latest (the same)
        assert [(e.label, resolve_episode_config(**e.reset_kwargs)) for e in again] == [
            (e.label, resolve_episode_config(**e.reset_kwargs)) for e in played
        ]


def test_a_name_of_no_episode_names_both_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    from metric_tracker_rl.catalog.tier_episodes import labelled_episode

    for name in ("nope", "auditt_80000", "audit_x"):
        with pytest.raises(ValueError, match=r"unknown task_id .*; valid .*easy_two_spikes.*<difficulty>_<seed>"):
            labelled_episode(name)
    assert labelled_episode("Audit_80000") == {"difficulty": "audit", "seed": 80000}
