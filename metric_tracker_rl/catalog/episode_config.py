"""The typed reset model: an episode's settings (`EpisodeConfig`) and the Tier they are for, each value checked
against the tier where the config is made, and the knobs a reset may set at the tiers where they apply. The named
tasks and the reading of a reset's arguments are in tasks.py."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any

from metric_tracker_rl.catalog.dimensions import DIMENSIONS
from metric_tracker_rl.catalog.plain_types import AnomalyRequest
from metric_tracker_rl.catalog.published import SCENARIO_FAMILIES
from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng, validate_seed
from metric_tracker_rl.catalog.setting_checks import checked_anomalies, checked_incident_kinds, int_in, number_in
from metric_tracker_rl.catalog.tiers import DEFAULT_MAX_STEPS, DEFAULT_MAX_SUBMISSIONS, TIERS, Tier
from metric_tracker_rl.catalog.validation import check_choice
from metric_tracker_rl.catalog.versions import tier_at

MAX_DENSITY = 0.25
CUSTOM_FAMILY = "custom"  # the scenario of a reset that lists its own anomalies
# The segmented tiers' curriculum knobs (reset arguments valid there only): which kinds of segment incident an
# episode draws from (empty: the tier's kinds) and benign look-alikes per incident (default: the tier's).
SEGMENT_KNOBS = ("incident_kinds", "decoy_ratio")
DEFAULT_DECOY_RATIO = 1.0
MAX_DECOY_RATIO = 2.0
# The dial of a tier whose root causes are cuboids (tiers.SegmentedMix.cuboid_root_causes): reset arguments valid
# there only, each defaulting to the tier's. `dimensions`: the fields root causes may name (platform always);
# `max_cuboid_depth`: the most dimensions one names; `magnitude_scale`: every kind's magnitude range times this;
# `concurrency`: dates carrying a second incident in an overlapping cuboid; `note_share`: incidents with a note.
CUBOID_KNOBS = ("dimensions", "max_cuboid_depth", "magnitude_scale", "concurrency", "note_share")
MAX_CUBOID_DEPTH = 3
MAGNITUDE_SCALE_RANGE = (0.25, 3.0)
MAX_CONCURRENCY = 3
# Every curriculum knob a client can set on each episode it plays (inference.py's flags, Inspect's -T parameters),
# with the kind of value reset takes: a segmented tier's two, then a cuboid tier's dial. Setting one makes the
# episodes non-standard; reset refuses it at a tier where it does not apply.
DIAL_KNOBS: dict[str, type] = {
    "incident_kinds": list,
    "decoy_ratio": float,
    "dimensions": list,
    "max_cuboid_depth": int,
    "magnitude_scale": float,
    "concurrency": int,
    "note_share": float,
}


@dataclass(frozen=True)
class EpisodeConfig:
    """The typed reset model: an episode's settings and the Tier they are for, so nothing downstream looks the tier
    up by name again (`difficulty` is its name). Validated where it is made, whichever way (a reset's arguments, a
    named task, a visible config, a `dataclasses.replace`): a wrong value is a ValueError that says what is valid,
    the message a reset then returns as its observation."""

    seed: int
    scenario_family: str
    tier: Tier
    anomaly_count: int | None  # None: drawn from anomaly_count_range when the episode is built
    anomaly_density: float
    task_id: str | None = None
    anomaly_count_range: tuple[int, int] | None = None
    anomalies: tuple[AnomalyRequest, ...] = ()
    max_steps: int = DEFAULT_MAX_STEPS
    max_submissions: int = DEFAULT_MAX_SUBMISSIONS
    incident_kinds: tuple[str, ...] = ()  # a segmented tier's: the kinds of incident drawn from (empty: the tier's)
    decoy_ratio: float = DEFAULT_DECOY_RATIO  # a segmented tier's: benign look-alikes per incident
    # A cuboid tier's dial (CUBOID_KNOBS; elsewhere left at these values and not shown).
    dimensions: tuple[str, ...] = ()
    max_cuboid_depth: int = 0
    magnitude_scale: float = 1.0
    concurrency: int = 0
    note_share: float = 0.0
    # A named task's or a difficulty's default settings, seed aside: the only episodes published scores use.
    standard: bool = False
    # The server's held-out secret (never shown): mixed into every random stream of the episode.
    secret: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        for name, value in _validated(self).items():
            object.__setattr__(self, name, value)

    @property
    def difficulty(self) -> str:
        return self.tier.name

    @property
    def version(self) -> int:
        """The version of its tier the episode plays (`Tier.version`)."""
        return self.tier.version

    @property
    def held_out(self) -> bool:
        return bool(self.secret)

    @cached_property
    def key(self) -> EpisodeKey:
        """Made once per config: a reset reads it for every stream it derives."""
        return EpisodeKey.of(self.seed, self.secret)

    def redrawn(self, draw: int) -> EpisodeConfig:
        """The same episode drawn again: its settings as they are, every random stream changed (EpisodeKey.draw)."""
        again = copy.copy(self)
        again.__dict__["key"] = replace(self.key, draw=draw)  # where the cached property keeps its value
        return again

    def public_dict(self) -> dict[str, Any]:
        """Every field but the secret, in field order (the tier as its name, `difficulty`), as plain JSON values,
        and whether held-out mode is on.

        Built field by field: dataclasses.asdict would deep-copy every value, at about ten times the cost."""
        data: dict[str, Any] = {name: getattr(self, name) for name in _PUBLIC_FIELDS}
        data["anomalies"] = [a.model_dump() for a in self.anomalies]
        if self.anomaly_count_range is None:
            del data["anomaly_count_range"]
        else:
            data["anomaly_count_range"] = list(self.anomaly_count_range)
        # A segmented tier's curriculum knobs are shown where they apply, as plain JSON.
        if self.tier.segmented is not None:
            data["incident_kinds"] = list(self.incident_kinds or self.tier.incident_kinds)
        else:
            del data["incident_kinds"], data["decoy_ratio"]
        if is_cuboid(self.tier):
            data["dimensions"] = list(self.dimensions)
        else:
            for name in CUBOID_KNOBS:
                del data[name]
        if self.tier.hides_mechanisms:
            for name in MECHANISM_KNOBS:
                data.pop(name, None)
        data["held_out"] = self.held_out
        return data

    @classmethod
    def from_public(cls, visible: dict[str, Any]) -> EpisodeConfig:
        """The config an observation's visible `config` shows, to rebuild an open-mode episode locally
        (`generation.build_episode`). A held-out episode cannot be rebuilt without the server's secret, which the
        visible config never holds: that is a ValueError, as is a field this class does not have."""
        if visible.get("held_out"):
            raise ValueError(
                "a held-out episode (held_out: true) cannot be rebuilt: the server's secret is part "
                "of its seed and is never shown"
            )
        unknown = set(visible) - set(_PUBLIC_FIELDS) - {"held_out"}
        if unknown:
            raise ValueError(
                f"unknown config field(s) {', '.join(sorted(unknown))}; valid: {', '.join(_PUBLIC_FIELDS)}"
            )
        data = {name: value for name, value in visible.items() if name not in ("held_out", "difficulty", "version")}
        if data.get("anomaly_count_range") is not None:
            data["anomaly_count_range"] = tuple(data["anomaly_count_range"])
        tier = tier_at(str(visible.get("difficulty")), visible.get("version"))
        if tier.hides_mechanisms:  # its settings that name or size a mechanism are its defaults, never shown
            defaults = difficulty_default(tier)
            data.update({name: getattr(defaults, name) for name in MECHANISM_KNOBS if name not in data})
        return cls(tier=tier, **data)


# The visible config's fields: the tier shows as its name and its version, where the tier field stands.
_PUBLIC_FIELDS = tuple(
    name
    for f in fields(EpisodeConfig)
    if f.name != "secret"
    for name in (("difficulty", "version") if f.name == "tier" else (f.name,))
)


def is_segmented(tier: Tier) -> bool:
    """Whether the tier splits traffic into segments (SEGMENT_KNOBS apply)."""
    return tier.segmented is not None


# The settings that name or size what can go wrong: a tier that hides its mechanisms neither takes nor shows them.
MECHANISM_KNOBS = ("incident_kinds", "decoy_ratio", "max_cuboid_depth", "magnitude_scale", "concurrency", "note_share")


def is_cuboid(tier: Tier) -> bool:
    """Whether the tier's root causes are cuboids a reset's dial shapes (CUBOID_KNOBS apply)."""
    return tier.segmented is not None and tier.segmented.cuboid_root_causes


def _validated(config: EpisodeConfig) -> dict[str, Any]:
    """Every value of `config` checked against its tier, in the order a reset's arguments are read, normalized
    (numbers as floats, lists as tuples in the tier's order): the fields to set. Raises a ValueError that names
    what is valid."""
    tier = config.tier
    limit = tier.max_incidents
    check_choice("scenario_family", config.scenario_family, (*SCENARIO_FAMILIES, CUSTOM_FAMILY))
    checked: dict[str, Any] = {
        "seed": validate_seed(config.seed),
        "anomaly_density": number_in("anomaly_density", config.anomaly_density, 0.0, MAX_DENSITY),
        "anomalies": checked_anomalies(config.anomalies, limit, tier.name),
    }
    if config.anomaly_count is not None:
        checked["anomaly_count"] = int_in("anomaly_count", config.anomaly_count, 0, limit)
    elif config.anomaly_count_range is None:
        raise ValueError("a config without anomaly_count needs an anomaly_count_range to draw it from")
    checked["incident_kinds"] = checked_incident_kinds(config.incident_kinds, tier, config.scenario_family)
    checked["decoy_ratio"] = number_in("decoy_ratio", config.decoy_ratio, 0.0, MAX_DECOY_RATIO)
    if is_cuboid(tier):
        checked.update(_cuboid_dial(config, tier))
    checked["max_steps"] = int_in("max_steps", config.max_steps, 1, 500)
    checked["max_submissions"] = int_in("max_submissions", config.max_submissions, 1, 20)
    return checked


def _cuboid_dial(config: EpisodeConfig, tier: Tier) -> dict[str, Any]:
    """A cuboid tier's dial (CUBOID_KNOBS), checked."""
    fields = tier_fields(tier)
    raw = config.dimensions
    if (
        not isinstance(raw, (list, tuple))
        or not all(isinstance(name, str) for name in raw)
        or "platform" not in raw
        or set(raw) - set(fields)
        or len(set(raw)) != len(raw)
    ):
        raise ValueError(
            f"dimensions must be a list of distinct dimensions of {tier.name!r} that includes "
            f"platform; valid: {', '.join(fields)}; got {raw!r}"
        )
    dimensions = tuple(name for name in fields if name in raw)
    free = [name for name in dimensions if name != "app_version"]
    depth = int_in("max_cuboid_depth", config.max_cuboid_depth, 1, MAX_CUBOID_DEPTH)
    if depth > len(free):
        raise ValueError(
            f"max_cuboid_depth {depth} needs at least {depth} dimensions besides app_version in play; "
            f"dimensions has {len(free)} ({', '.join(free)})"
        )
    low, high = MAGNITUDE_SCALE_RANGE
    return {
        "dimensions": dimensions,
        "max_cuboid_depth": depth,
        "magnitude_scale": number_in("magnitude_scale", config.magnitude_scale, low, high),
        "concurrency": int_in("concurrency", config.concurrency, 0, MAX_CONCURRENCY),
        "note_share": number_in("note_share", config.note_share, 0.0, 1.0),
    }


def incident_count(config: EpisodeConfig) -> int:
    """The episode's number of incidents: fixed by the config, or drawn from its range (hidden from the agent)."""
    if config.anomaly_count is not None:
        return config.anomaly_count
    assert config.anomaly_count_range is not None, "a config without a count must carry a count range"
    low, high = config.anomaly_count_range
    return int(derive_rng(config.key, "anomaly_count").integers(low, high + 1))


def tier_config(tier: Tier, **settings: Any) -> EpisodeConfig:
    """A mixed episode at a tier's defaults (density, steps, submissions, decoy ratio, dial), with `settings` set."""
    return EpisodeConfig(**{"seed": 0, "scenario_family": "mixed", "tier": tier, **tier_defaults(tier), **settings})


def tier_defaults(tier: Tier) -> dict[str, Any]:
    """The settings a tier gives an episode that sets none of them."""
    return {
        "anomaly_density": tier.default_density,
        "max_steps": tier.max_steps,
        "max_submissions": tier.max_submissions,
        "decoy_ratio": DEFAULT_DECOY_RATIO if tier.segmented is None else tier.segmented.decoy_ratio,
        **dial_defaults(tier),
    }


def at_version(config: EpisodeConfig, tier: Tier) -> EpisodeConfig:
    """`config` at `tier`, another version of its own tier: the settings it gives beside its tier's defaults, over
    the other version's defaults (a named task at an earlier version asks what it asked there)."""
    if tier is config.tier or tier.name != config.tier.name:
        return config
    defaults = tier_defaults(config.tier)
    given = {
        f.name: getattr(config, f.name)
        for f in fields(EpisodeConfig)
        if f.name not in ("tier", "secret", "standard")
        and not (f.name in defaults and getattr(config, f.name) == defaults[f.name])
    }
    return tier_config(tier, **given)


def cuboid_defaults(difficulty: str) -> dict[str, Any]:
    """A cuboid tier's dial at its defaults (tiers.py), or nothing at any other tier."""
    return dial_defaults(TIERS[difficulty])


def dial_defaults(tier: Tier) -> dict[str, Any]:
    mix = tier.segmented
    if mix is None or not mix.cuboid_root_causes:
        return {}
    return {
        "dimensions": tier_fields(tier),
        "max_cuboid_depth": mix.max_cuboid_depth,
        "magnitude_scale": mix.magnitude_scale,
        "concurrency": mix.concurrency,
        "note_share": mix.note_share,
    }


def tier_fields(tier: Tier) -> tuple[str, ...]:
    """The report fields of a segmented tier's dimensions, in its order."""
    return tuple(DIMENSIONS[name].field for name in tier.dimensions)


def difficulty_default(tier: Tier) -> EpisodeConfig:
    """The settings of a seeded reset that names only a difficulty (and perhaps a seed)."""
    if tier.count_range is not None:
        return tier_config(tier, anomaly_count=None, anomaly_count_range=tier.count_range)
    return tier_config(
        tier, anomaly_count=min(tier.max_incidents, max(1, round(tier.default_density * tier.window_days)))
    )
