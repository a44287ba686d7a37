"""Every tier has versions, as Gymnasium's environments do: a reset plays the latest unless it names one, a visible
config shows which it plays, and an earlier version keeps playing byte for byte beside a newer one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from core_helpers import reset_episode
from episode_fingerprints import FINGERPRINTS, fingerprint, version_of

from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.catalog.task_splits import get_split, train_indices
from metric_tracker_rl.catalog.tasks import EpisodeConfig, resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS, Tier
from metric_tracker_rl.catalog.versions import (
    AUDIT_V1_FINGERPRINTS,
    EARLIER_VERSIONS,
    VERSION_NOTES,
    is_published,
    keep_earlier_version,
    note_of,
    tier_at,
    unnoted_versions,
    versions_of,
)
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

STORED = json.loads(FINGERPRINTS.read_text())


@contextmanager
def next_version(name: str, **changes: object) -> Iterator[Tier]:
    """A scratch next version of the tier `name` (its latest for the block), with its current one kept as earlier."""
    current = TIERS[name]
    newer = replace(current, version=current.version + 1, **changes)
    with TIERS.substituted(newer):
        keep_earlier_version(current)
        try:
            yield newer
        finally:
            EARLIER_VERSIONS.unregister(current.version_name)


@pytest.mark.parametrize("name", list(TIERS))
def test_a_reset_plays_its_tiers_latest_version_unless_it_names_one(name: str) -> None:
    latest = resolve_episode_config(difficulty=name, seed=3)
    assert latest.tier is TIERS[name] and latest.public_dict()["version"] == TIERS[name].version
    assert resolve_episode_config(difficulty=name, seed=3, version=TIERS[name].version) == latest
    assert list(versions_of(name))[-1] == TIERS[name].version


@pytest.mark.parametrize("version", [0, 99, "1", True, 1.0, None])
def test_a_version_the_tier_lacks_is_refused_naming_the_valid_ones(version: object) -> None:
    if version is None:  # no version: the latest
        assert resolve_episode_config(difficulty="audit", seed=1).version == TIERS["audit"].version
        return
    with pytest.raises(ValueError, match=r"difficulty 'audit' has no version .*; valid: 1, 2 \(latest\)"):
        resolve_episode_config(difficulty="audit", seed=1, version=version)


def test_the_visible_config_shows_the_version_and_rebuilds_it() -> None:
    config = resolve_episode_config(difficulty="warehouse", seed=8)
    shown = config.public_dict()
    assert list(shown)[:4] == ["seed", "scenario_family", "difficulty", "version"]
    assert EpisodeConfig.from_public(shown) == config


def test_an_earlier_version_plays_byte_for_byte_beside_a_newer_one() -> None:
    with next_version("easy", max_steps=41) as newer:
        assert newer.version == 2 and TIERS["easy"] is newer
        latest = resolve_episode_config(difficulty="easy", seed=0)
        assert latest.version == 2 and latest.max_steps == 41 and latest.standard
        earlier = resolve_episode_config(difficulty="easy", seed=0, version=1)
        assert earlier.version == 1 and earlier.max_steps == TIERS["medium"].max_steps and earlier.standard
        assert fingerprint(reset_episode(difficulty="easy", seed=0, version=1)) == STORED["easy-v1/seed=0"]
        task = fingerprint(reset_episode(task_id="easy_two_spikes", version=1))
        assert task == STORED["task/easy_two_spikes/easy-v1"]
        assert resolve_episode_config(task_id="easy_two_spikes").max_steps == 41
        with pytest.raises(ValueError, match=r"valid: 1, 2 \(latest\)"):
            resolve_episode_config(difficulty="easy", version=3)
    assert TIERS["easy"].version == 1 and "easy-v1" not in EARLIER_VERSIONS


def test_an_earlier_version_must_be_older_than_the_latest() -> None:
    with pytest.raises(ValueError, match="not earlier than the latest version"):
        keep_earlier_version(TIERS["deep"])
    with pytest.raises(ValueError, match="a version is a whole number from 1"):
        replace(TIERS["deep"], version=0)


def test_split_tasks_name_the_version_they_were_published_at() -> None:
    """A published split keeps naming its episodes when a tier gains a version: each task pins its version."""
    train, evaluation = get_split("train"), get_split("eval")
    first_audit = next(i for i in range(evaluation.size()) if evaluation.task(i).get("difficulty") == "audit")
    last_of_first_audit_block = train_indices("audit")[0][-1]
    pinned = (
        (train.task(0), 1),
        (train.task(last_of_first_audit_block), 1),
        (train.task(train.size() - 1), 2),  # the audit's version 2 block, appended
        (evaluation.task(0), 1),
        (evaluation.task(first_audit), 1),
        (evaluation.task(evaluation.size() - 1), 2),
    )
    with next_version("audit"):  # a scratch version 3
        for task, version in pinned:
            assert task["version"] == version
            assert resolve_episode_config(**task).version == version
        assert resolve_episode_config(split="eval", index=first_audit).tier is tier_at("audit", 1)


def test_metadata_names_each_tiers_versions() -> None:
    with next_version("abyss"):
        description = MetricTrackerRlEnvironment().get_metadata().description
    assert "abyss v1, v2 (latest) (draft)" in description and "audit v1, v2 (latest) (draft)" in description
    assert "easy v1 (latest);" in description


def test_every_playable_version_has_a_note_that_docs_render() -> None:
    """docs/versions.md lists each version from its note: a version without one is refused here."""
    assert unnoted_versions() == []
    with next_version("easy"):
        assert unnoted_versions() == ["easy-v2"]
    assert all(note.tier in TIERS and note.changes for note in VERSION_NOTES)


# The edit loop reads one brief of counts and the audit's (whose config is its own); the rest are slow.
QUICK_BRIEFS = ("deep", "audit")


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=() if name in QUICK_BRIEFS else pytest.mark.slow) for name in TIERS]
)
def test_the_brief_a_model_reads_names_the_version_it_plays(name: str) -> None:
    session = EpisodeSession(MetricTrackerRlEnvironment())
    brief = session.reset(seed=5, difficulty=name)
    assert f"\n  version: {TIERS[name].version}\n" in brief.text
    meanings = brief.text.split("config_meaning:\n", 1)[1].splitlines()
    shown = [line for line in meanings[: next(i for i, line in enumerate(meanings) if not line.startswith("  "))]]
    assert shown and not any(line.startswith("  version:") for line in shown)  # self-explained, as the seed is


def test_the_audits_first_version_is_published_and_its_second_a_draft() -> None:
    """A draft's fingerprints may still be rewritten (episode_fingerprints.py --write); a published version's never."""
    assert is_published("audit", 1) and note_of("audit", 1).published_at == AUDIT_V1_FINGERPRINTS
    assert not is_published("audit", 2) and note_of("audit", 2).published_at is None
    assert all(is_published(name, 1) for name in TIERS)
    with next_version("easy"):
        assert not is_published("easy", 2)
    assert version_of({"task_id": "warehouse_raw_events", "version": 1}) == ("warehouse", 1)
    assert version_of({"difficulty": "audit", "seed": 3, "version": 1}) == ("audit", 1)


def test_inference_and_inspect_play_the_version_asked_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import inference
    from metric_tracker_rl.adapters.inspect_eval.dataset import episode_dataset
    from metric_tracker_rl.settings import ClientSettings

    for name in ClientSettings.variables():
        monkeypatch.delenv(name, raising=False)
    played = inference.parse_args(["--difficulty", "deep", "--tier-version", "1", "--agent", "null"], ClientSettings())
    assert played.episode_specs and all(e.reset_kwargs["version"] == 1 for e in played.episode_specs)
    with pytest.raises(SystemExit) as refused:
        inference.parse_args(["--difficulty", "deep", "--tier-version", "2", "--agent", "null"], ClientSettings())
    assert refused.value.code == 2 and "has no version 2; valid: 1 (latest)" in capsys.readouterr().err
    samples = list(episode_dataset(None, "abyss", 2, version=1))
    assert samples and all((s.metadata or {})["reset_kwargs"]["version"] == 1 for s in samples)
    with pytest.raises(ValueError, match="has no version 3"):
        episode_dataset(None, "abyss", 2, version=3)
