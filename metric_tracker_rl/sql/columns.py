"""The columns of the tables the SQL tool loads, as the sandbox takes them: numpy arrays, text with few distinct
values as `Labels` (small integer codes into the values), so that building a table of 47,000 rows makes no Python
string per row, and nested values (STRUCT, LIST, MAP) as `Nested` Arrow arrays, built from numpy arrays without a
Python object per row."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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


@dataclass(frozen=True)
class PackedTable:
    """A table held as compressed Arrow IPC (table_views.pack_table): a large table an open episode keeps for the SQL
    tool (the warehouse's events) costs a third of its columns' bytes until a worker reads it. Its columns' names
    iterate like a table's; `nbytes` is what it takes unpacked (what the worker pool counts against a worker's
    cache); a worker unpacks it when a statement first names it."""

    data: bytes  # an Arrow IPC stream with compressed buffers
    columns: tuple[str, ...]
    nbytes: int

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def arrow(self) -> Any:
        """The table as a pyarrow Table (DuckDB scans it in place)."""
        import pyarrow as pa

        return pa.ipc.open_stream(pa.py_buffer(self.data)).read_all()


# A table as the SQL tool takes it: its columns, or packed.
ServedTable = Union[SqlTable, PackedTable]  # noqa: UP007 - a runtime alias


def table_bytes(tables: Mapping[str, ServedTable]) -> int:
    """The bytes of an episode's tables as they go down a worker's pipe (arrays and label codes)."""
    return sum(
        table.nbytes
        if isinstance(table, PackedTable)
        else sum(
            getattr(column, "nbytes", 0) or getattr(getattr(column, "codes", None), "nbytes", 0)
            for column in table.values()
        )
        for table in tables.values()
    )
