"""Every fingerprinted episode (every tier, seeds, named tasks, scenario families, held-out, frontier's knobs) is
byte-identical to the stored fingerprints: a refactoring of the generator keeps what every episode holds."""

from __future__ import annotations

import json

import episode_fingerprints
import pytest
from core_helpers import reset_episode
from episode_fingerprints import FINGERPRINTS, episode_settings, fingerprint

STORED: dict[str, dict[str, str]] = json.loads(FINGERPRINTS.read_text())
SETTINGS = list(episode_settings())
# What a failure says to do: a refactoring that moved an episode is a bug; a change that means to move episodes
# rewrites the stored fingerprints, and if it moves a published tier's episodes, publishes them as a new version of
# that tier rather than changing the one models were trained and compared on.
REWRITE = (
    "If the change is not meant to move episodes, it is a bug. If it is, rewrite the stored fingerprints with "
    "`uv run python tests/episode_fingerprints.py --write` and say so in the commit; a change that moves a "
    "published tier's episodes needs a new version of that tier, so that results on the old one stay comparable."
)
# The edit loop checks each tier's first seed; the rest of the fingerprints are a slow sweep (CI runs it).
QUICK = {
    label
    for label, settings, secret in SETTINGS
    if set(settings) == {"difficulty", "seed"} and settings["seed"] == 0 and not secret
}


def test_the_stored_set_is_the_set_built() -> None:
    labels = [label for label, _, _ in SETTINGS]
    assert len(labels) == len(set(labels))
    assert set(labels) == set(STORED), (
        f"new: {sorted(set(labels) - set(STORED))[:5]}, gone: {sorted(set(STORED) - set(labels))[:5]}. {REWRITE}"
    )


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
    assert changed == [], f"{label}: {', '.join(changed)} changed. {REWRITE}"


def test_a_moved_episode_names_the_command_that_rewrites_the_fingerprints(monkeypatch: pytest.MonkeyPatch) -> None:
    label, settings, secret = next(setting for setting in SETTINGS if setting[0] == "easy/seed=0")
    monkeypatch.setitem(STORED, label, {**STORED[label], "task": "moved"})
    with pytest.raises(AssertionError) as failed:
        test_the_episode_is_unchanged(label, settings, secret)
    message = str(failed.value)
    assert "task changed" in message and "uv run python tests/episode_fingerprints.py --write" in message
    assert "uv run python tests/episode_fingerprints.py --write" in (episode_fingerprints.__doc__ or "")
    assert "new version of that tier" in message
