"""The config an episode shows (its observation, the debugger, every text built from it). Where the data are raw
events (the warehouse and the audit) no setting that says how many business incidents an episode holds is shown, so
a null episode (none) reads as every other one: the incidents line states the tier's rule instead
(incident_line)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from metric_tracker_rl.catalog.published import DEFECTS_NOT_COUNTED, INCIDENT_ROWS, incident_count_statement
from metric_tracker_rl.catalog.task_splits import NULL_EVERY
from metric_tracker_rl.catalog.tasks import EpisodeConfig, resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.catalog.versions import tier_at

# The settings that would count an episode's business incidents, or name the null scenario that holds none.
COUNTING_SETTINGS = ("scenario_family", "anomaly_count", "anomaly_count_range")


def hides_incident_count(difficulty: object) -> bool:
    """Whether an episode of `difficulty` shows no setting that counts its business incidents."""
    tier = TIERS.get(str(difficulty))
    return tier is not None and not tier.mix.shows_incident_count


def shown_config(config: EpisodeConfig) -> dict[str, Any]:
    """The visible config of an episode: every public field, but at a tier of raw events none of COUNTING_SETTINGS,
    and `standard` true for a null episode of the tier's defaults as for the defaults themselves (published scores
    play both), so that it too tells no null episode apart."""
    public = config.public_dict()
    if not hides_incident_count(config.difficulty):
        return public
    shown = {key: value for key, value in public.items() if key not in COUNTING_SETTINGS}
    shown["standard"] = config.standard or _is_null_of_defaults(config)
    return shown


def _is_null_of_defaults(config: EpisodeConfig) -> bool:
    """Whether `config` is the null episode its tier's published sweep plays at its seed, at its version."""
    if config.scenario_family != "null" or config.task_id is not None:
        return False
    sweep = resolve_episode_config(
        seed=config.seed, difficulty=config.difficulty, scenario_family="null", version=config.version
    )
    return replace(config, secret="", standard=False) == replace(sweep, secret="", standard=False)


def incident_line(config: Mapping[str, Any]) -> str:
    """The brief's incidents line of an episode whose visible config is `config`: at a tier of raw events the tier's
    rule, the same text in every episode of it (no setting shown counts this one's); elsewhere what the config
    says (published.incident_count_statement)."""
    difficulty = config.get("difficulty")
    if not hides_incident_count(difficulty):
        return incident_count_statement(config)
    tier = tier_at(str(difficulty), config.get("version"))
    assert tier.count_range is not None, "a tier of raw events draws its count from a range"
    low, high = tier.count_range
    return (
        f"between {low} and {high} business incidents, drawn per episode, or the anomaly_count its reset or named "
        f"task sets (at most {tier.max_incidents}); none in a null episode (one in {NULL_EVERY} eval calibration "
        f"tasks, no train task); {INCIDENT_ROWS[tier.hides_mechanisms]}; {DEFECTS_NOT_COUNTED}"
    )
