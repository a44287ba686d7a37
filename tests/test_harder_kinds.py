"""The harder mixes' kinds are registered in the package but no listed tier draws them, so no stored episode moved
(lab/calibration/harder_mixes.py turns them on for its scratch tiers)."""

from __future__ import annotations

import json

from core_helpers import reset_episode
from episode_fingerprints import FINGERPRINTS, episode_settings, fingerprint

from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation.kinds import INCIDENT_KIND_REGISTRY

HARDER_KINDS = ("persistent_regression", "gradual_decline")
HARDER_DIALS = ("confounder_share", "same_cuboid_concurrency", "effect_beside_incident", "falling_effect_share")


def test_no_listed_tier_turns_a_harder_mix_on() -> None:
    for tier in TIERS.values():
        if tier.segmented is None:
            continue
        assert set(HARDER_KINDS).isdisjoint(tier.incident_kinds), tier.name
        assert all(getattr(tier.segmented, dial) == 0 for dial in HARDER_DIALS), tier.name


def test_registering_the_harder_kinds_changed_no_stored_episode() -> None:
    """The kinds are registered (this process holds them), and every tier's first stored episode is unchanged."""
    assert set(HARDER_KINDS) <= set(INCIDENT_KIND_REGISTRY)
    stored = json.loads(FINGERPRINTS.read_text())
    firsts = [
        (label, reset, secret)
        for label, reset, secret in episode_settings()
        if set(reset) == {"difficulty", "seed", "version"} and reset["seed"] == 0 and not secret
    ]
    assert {reset["difficulty"] for _, reset, _ in firsts} >= {"frontier", "deep"}
    assert [
        label for label, reset, secret in firsts if fingerprint(reset_episode(secret=secret, **reset)) != stored[label]
    ] == []
