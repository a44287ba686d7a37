"""The checks of single reset settings: each turns a client's value into the one an episode uses, or raises a
ValueError that names the setting and what it accepts."""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from metric_tracker_rl.catalog.plain_types import AnomalyRequest
from metric_tracker_rl.catalog.tiers import Tier
from metric_tracker_rl.catalog.validation import describe_validation_error


def checked_anomalies(raw: Any, limit: int, difficulty: str) -> tuple[AnomalyRequest, ...]:
    if not isinstance(raw, (list, tuple)) or len(raw) > limit:
        raise ValueError(
            f"anomalies must be a list of at most {limit} anomaly objects for difficulty "
            f"{difficulty!r}, each with family, date, optional entity_name and magnitude"
        )
    try:
        return tuple(a if isinstance(a, AnomalyRequest) else AnomalyRequest.model_validate(a) for a in raw)
    except ValidationError as exc:
        raise ValueError(
            f"invalid anomalies entry: {describe_validation_error(exc, limit=1)}; fields: family, "
            "date, entity_name, magnitude"
        ) from None


def checked_incident_kinds(raw: Any, tier: Tier, family: str) -> tuple[str, ...]:
    """The kinds a segmented tier draws from, in its order (the empty tuple: all of them, as when all are named).
    Naming some of them needs a mixed scenario."""
    if raw == ():
        return ()
    every = tier.incident_kinds
    valid = ", ".join(every)
    if not isinstance(raw, (list, tuple)) or not raw or not all(isinstance(k, str) for k in raw):
        raise ValueError(f"incident_kinds must be a non-empty list of incident kinds; valid: {valid}")
    unknown = [k for k in raw if k not in every]
    if unknown:
        raise ValueError(f"unknown incident kind(s) {', '.join(map(repr, unknown))}; valid: {valid}")
    chosen = set(raw)
    if chosen == set(every):
        return ()
    check_kinds_family(family)
    return tuple(k for k in every if k in chosen)


def check_kinds_family(family: str) -> None:
    """Choosing incident kinds is for a mixed scenario (or a null one, which draws none)."""
    if family not in ("mixed", "null"):
        raise ValueError(
            "incident_kinds chooses among the kinds of a mixed scenario; use scenario_family "
            f"'mixed' with it, not {family!r}"
        )


def int_in(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer between {low} and {high}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def number_in(name: str, value: Any, low: float, high: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ValueError(f"{name} must be a number between {low:g} and {high:g}, got {value!r}")
    return float(value)
