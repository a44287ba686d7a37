"""The columns of the tables the SQL tool loads, as the sandbox takes them: numpy arrays, text with few distinct
values as `Labels` (small integer codes into the values), so that building a table of 47,000 rows makes no Python
string per row, and nested values (STRUCT, LIST, MAP) as `Nested` Arrow arrays, built from numpy arrays without a
Python object per row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np


@dataclass(frozen=True)
class Labels:
    """A text column: row i holds values[codes[i]]. The sandbox stores it as VARCHAR."""

    codes: np.ndarray  # integers, 0 <= code < len(values)
    values: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.codes)


@dataclass(frozen=True)
class Nested:
    """A column of nested values (STRUCT, LIST, MAP, or text from an Arrow dictionary): a pyarrow Array, which
    DuckDB scans in place. A table with one is served to DuckDB as an Arrow table (engine.EpisodeTables.view)."""

    array: Any  # pyarrow.Array: pyarrow is imported only where a nested column is built or served

    def __len__(self) -> int:
        return len(self.array)

    @property
    def nbytes(self) -> int:
        """The bytes its buffers hold (what the worker pool counts against a worker's cache)."""
        return int(self.array.nbytes)


# A column: numbers and booleans are stored as their type (int32 -> INTEGER, int64 -> BIGINT, float -> DOUBLE),
# datetime64 as DATE, an object array of str as VARCHAR, Labels as VARCHAR, Nested as its Arrow type's
# DuckDB type.
SqlColumn = Union[np.ndarray, Labels, Nested]  # noqa: UP007 - a runtime alias (Python 3.10 has no `type` statement)
SqlTable = dict[str, SqlColumn]
