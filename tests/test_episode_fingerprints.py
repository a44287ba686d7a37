"""Every fingerprinted episode of every version of every tier (seeds, named tasks, scenario families, held-out,
frontier's knobs), its raw tables and the grades of fixed reports, is byte-identical to the stored fingerprints: a
published version never changes what it asks or how it scores, and a refactoring keeps every episode."""

from __future__ import annotations

import json

import episode_fingerprints
import pytest
from core_helpers import reset_episode
from episode_fingerprints import FINGERPRINTS, episode_settings, fingerprint

from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.catalog.versions import versions_of

STORED: dict[str, dict[str, str]] = json.loads(FINGERPRINTS.read_text())
SETTINGS = list(episode_settings())
# The edit loop checks each version's first seed; the rest of the fingerprints are a slow sweep (CI runs it).
QUICK = {
    label
    for label, settings, secret in SETTINGS
    if set(settings) == {"difficulty", "seed", "version"} and settings["seed"] == 0 and not secret
}
MOVED = (
    "{label}: {parts} changed. A published version never changes what it asks or how it scores: keep the tier's "
    "published version with keep_earlier_version (catalog/versions.py), make the change the tier's next version, then "
    "`uv run python tests/episode_fingerprints.py --write` adds its fingerprints (and rewrites a draft version's, one "
    "not yet published); a refactoring that meant to change nothing has changed an episode"
)


def test_the_stored_set_is_the_set_built() -> None:
    labels = [label for label, _, _ in SETTINGS]
    missing, stale = sorted(set(labels) - set(STORED)), sorted(set(STORED) - set(labels))
    assert len(labels) == len(set(labels))
    assert not missing, (
        f"no stored fingerprints for {missing[:5]}: `uv run python tests/episode_fingerprints.py --write`"
    )
    assert not stale, f"stored fingerprints of episodes no version plays: {stale[:5]}"


def test_every_version_of_every_tier_is_fingerprinted() -> None:
    """Each playable version has its own entries, a raw event tier's with its tables, every one with its grades."""
    for name in TIERS:
        for version in versions_of(name):
            entries = [parts for label, parts in STORED.items() if label.startswith(f"{name}-v{version}/")]
            assert entries, f"{name}-v{version} has no stored fingerprints"
            assert all("grading" in parts for parts in entries)
            assert all(("events" in parts) == (TIERS[name].data == "events") for parts in entries)


@pytest.mark.parametrize(
    ("label", "settings", "secret"),
    [
        pytest.param(*setting, id=setting[0], marks=() if setting[0] in QUICK else pytest.mark.slow)
        for setting in SETTINGS
    ],
)
def test_the_episode_is_unchanged(label: str, settings: dict, secret: str) -> None:
    built = fingerprint(reset_episode(secret=secret, **settings))
    changed = sorted(part for part in STORED[label].keys() | built.keys() if STORED[label].get(part) != built.get(part))
    assert changed == [], MOVED.format(label=label, parts=", ".join(changed))


def test_a_moved_episode_names_the_command_and_the_new_version(monkeypatch: pytest.MonkeyPatch) -> None:
    label, settings, secret = next(setting for setting in SETTINGS if setting[0] == "easy-v1/seed=0")
    monkeypatch.setitem(STORED, label, {**STORED[label], "task": "moved"})
    with pytest.raises(AssertionError) as failed:
        test_the_episode_is_unchanged(label, settings, secret)
    message = str(failed.value)
    assert "task changed" in message and "uv run python tests/episode_fingerprints.py --write" in message
    assert "keep_earlier_version" in message and "next version" in message
    assert "uv run python tests/episode_fingerprints.py --write" in (episode_fingerprints.__doc__ or "")
