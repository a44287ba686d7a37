"""Sweeps that keep the edit loop short: a parameter list whose first value runs in the edit loop (`-m "not slow"`)
and the rest in the full suite, and a mapping that builds a module's worlds for the keys its selected tests read."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import pytest

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def first_fast(values: Sequence[Any]) -> list[Any]:
    """`values` as pytest parameters: the first in the edit loop, every other marked slow (the full suite runs all)."""
    return [values[0], *(pytest.param(value, marks=pytest.mark.slow) for value in values[1:])]


class Lazy(Mapping[K, V]):
    """A mapping over fixed keys whose values are made on their first reading, then kept: a run that selects one
    seed's tests builds that seed's world alone."""

    def __init__(self, keys: Iterable[K], make: Callable[[K], V]) -> None:
        self._keys = tuple(keys)
        self._make = make
        self._made: dict[K, V] = {}

    def __getitem__(self, key: K) -> V:
        if key not in self._keys:
            raise KeyError(key)
        if key not in self._made:
            self._made[key] = self._make(key)
        return self._made[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)
