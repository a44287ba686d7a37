"""One registry for everything the package looks up by name: anomaly families, incident and benign kinds, data
defects, tiers, tools and agents.

A registry keeps its entries in registration order (the order a catalog lists them), refuses a second entry under
a name it holds, and answers a lookup of a name it does not hold with an error that lists the valid ones. It reads
as a Mapping from name to entry. It imports nothing of the project, so every layer may use it.

What is built from registries (a catalog sent at reset) is cached with `derived_from`, which rebuilds it after any
of them changes: a scratch entry is listed while it is registered, and not after. `import_package_modules`
imports a package whose modules register themselves (the tools, the kinds, the data defects), so adding an entry
is adding its module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")
D = TypeVar("D")
R = TypeVar("R")


class UnknownName(KeyError, ValueError):
    """A lookup of a name the registry does not hold. A KeyError for Mapping's sake (`get`, `in`), and a
    ValueError for a caller that reports a bad argument; its message names the valid names."""

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError would quote the whole message


class Registry(Mapping[str, T], Generic[T]):
    """Entries of one sort by name, in registration order. `what` names the sort in messages ("tool", "tier");
    `check` vets an entry before it is registered (it raises ValueError to refuse it). An entry is registered under
    its `name` attribute unless `register` is given another name (an agent's factory has none)."""

    def __init__(self, what: str, entries: Iterable[T] = (), check: Callable[[T], None] | None = None) -> None:
        self.what = what
        self._check = check
        self._entries: dict[str, T] = {}
        self._revision = 0
        for entry in entries:
            self.register(entry)

    def register(self, entry: T, name: str | None = None) -> T:
        """Add an entry (under `name`, else its own name); a name already held is a ValueError."""
        key = name if name is not None else getattr(entry, "name", None)
        if not isinstance(key, str) or not key:
            raise ValueError(f"a {self.what} needs a name to be registered under, got {key!r}")
        if key in self._entries:
            raise ValueError(f"{self.what} {key!r} is already registered")
        if self._check is not None:
            self._check(entry)
        self._entries[key] = entry
        self._revision += 1
        return entry

    def unregister(self, name: str) -> T:
        """Take an entry out again: a scratch entry (a test's, a notebook's) leaves the registry as it found it."""
        entry = self[name]
        del self._entries[name]
        self._revision += 1
        return entry

    @contextmanager
    def substituted(self, entry: T, name: str | None = None) -> Iterator[T]:
        """Hold `entry` in place of the one registered under its name (or `name`) for the block, at the same place in
        the order, and put the original back after it: a scratch variation (a benchmark's, a test's) that every
        lookup meets while it lasts and that leaves the registry as it found it."""
        key = name if name is not None else getattr(entry, "name", None)
        if not isinstance(key, str):
            raise ValueError(f"a {self.what} needs a name to be substituted under, got {key!r}")
        original = self[key]
        if self._check is not None:
            self._check(entry)
        self._entries[key] = entry
        self._revision += 1
        try:
            yield entry
        finally:
            self._entries[key] = original
            self._revision += 1

    @property
    def revision(self) -> int:
        """A count of the changes so far (registrations, removals, substitutions): what `derived_from` compares."""
        return self._revision

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        return tuple(self._entries)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(f"unknown {self.what} {name!r}; valid: {', '.join(self._entries)}") from None

    @overload
    def get(self, name: str, /) -> T | None: ...
    @overload
    def get(self, name: str, default: T | D, /) -> T | D: ...

    def get(self, name: str, default: object = None, /) -> object:
        """The entry, or `default`: without building the error message a miss through `[]` would."""
        return self._entries.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._entries)})"


def derived_from(*registries: Registry[Any]) -> Callable[[Callable[[], R]], Callable[[], R]]:
    """Cache what a function without arguments builds from `registries`, and build it again on the first call after
    any of them changed, so that nothing built from a registry outlives an entry or misses one."""

    def decorator(build: Callable[[], R]) -> Callable[[], R]:
        built: dict[tuple[int, ...], R] = {}

        def cached() -> R:
            revisions = tuple(registry.revision for registry in registries)
            try:
                return built[revisions]
            except KeyError:
                built.clear()
                value = built[revisions] = build()
                return value

        cached.__doc__, cached.__name__ = build.__doc__, build.__name__
        return cached

    return decorator


def import_package_modules(package: str, path: Iterable[str], first: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Import every module of a package (its `__name__` and `__path__`), those `first` names in that order, then
    every other in name order, and return their names in that order: each module registers what it defines, so a
    new entry is one new module, found without a line anywhere else. A name in `first` with no module is an
    ImportError (a listing that outlived its module)."""
    found = {module.name for module in pkgutil.iter_modules(list(path))}
    missing = [name for name in first if name not in found]
    if missing:
        raise ImportError(f"{package} lists modules that do not exist: {', '.join(missing)}")
    names = (*first, *sorted(found - set(first)))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
