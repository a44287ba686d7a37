"""The columns of the tables the SQL tool loads, as the sandbox takes them: numpy arrays, and text with few
distinct values as `Labels` (small integer codes into the values), so that building a table of 47,000 rows
makes no Python string per row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np


@dataclass(frozen=True)
class Labels:
    """A text column: row i holds values[codes[i]]. The sandbox stores it as VARCHAR."""

    codes: np.ndarray  # integers, 0 <= code < len(values)
    values: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.codes)


# A column: numbers and booleans are stored as their type (int32 -> INTEGER, int64 -> BIGINT, float -> DOUBLE),
# datetime64 as DATE, an object array of str as VARCHAR, Labels as VARCHAR.
SqlColumn = Union[np.ndarray, Labels]  # noqa: UP007 - a runtime alias (Python 3.10 has no `type` statement)
SqlTable = dict[str, SqlColumn]
