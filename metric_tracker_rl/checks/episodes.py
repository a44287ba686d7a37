"""The episodes a check runs on: built as a reset of the tier at the seed builds them, and closed after use (a
warehouse episode holds a SQL database)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np

from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.world.public_episode import PublicEpisode


@contextmanager
def public_episode(tier: str, seed: int) -> Iterator[PublicEpisode]:
    """The public part of the episode `reset(difficulty=tier, seed=seed)` plays: all a tool may read."""
    config = resolve_episode_config(difficulty=tier, seed=seed)
    public = build_episode(config).public
    try:
        yield public
    finally:
        public.close()


@lru_cache(maxsize=4)
def refusing_episode(tier: str, seed: int) -> PublicEpisode:
    """An episode a tool is checked to refuse: its tier is all the check reads, so one is built per tier and seed and
    shared (a warehouse episode takes about a second to build, and most tools refuse there)."""
    config = resolve_episode_config(difficulty=tier, seed=seed)
    return build_episode(config).public


def digest(public: PublicEpisode) -> str:
    """A hash of everything a tool reads: a tool that writes to the episode changes it. Fields a dataclass keeps
    out of its equality (`compare=False`: the tables tools derive and keep) are left out."""
    hasher = hashlib.sha256()
    _feed(hasher, public)
    return hasher.hexdigest()


def _feed(hasher: Any, value: object) -> None:
    """Hash a value's content: arrays by their bytes, dataclasses, mappings and sequences item by item."""
    if isinstance(value, np.ndarray):
        hasher.update(f"{value.dtype}{value.shape}".encode())
        hasher.update(np.ascontiguousarray(value).tobytes())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            if not field.compare:
                continue
            hasher.update(field.name.encode())
            _feed(hasher, getattr(value, field.name))
    elif isinstance(value, Mapping):
        for key in value:
            hasher.update(repr(key).encode())
            _feed(hasher, value[key])
    elif isinstance(value, (list, tuple)):
        for item in value:
            _feed(hasher, item)
    else:
        hasher.update(repr(value).encode())
