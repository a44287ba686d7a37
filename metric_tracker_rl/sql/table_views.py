"""An episode's tables as the SQL engine reads them: the arrays DuckDB scans in place (NumPy, or Arrow where a
column is nested), the view's select list that decodes them (dates as DATE, labels as VARCHAR), and a large table
packed as compressed Arrow IPC for an open episode to keep. Nothing here imports DuckDB: generation packs tables
without starting an engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from metric_tracker_rl.sql.columns import Labels, Nested, PackedTable, SqlColumn, SqlTable


def quoted_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def stored_source(table: Mapping[str, SqlColumn]) -> dict[str, np.ndarray]:
    """The arrays DuckDB scans for a table: Labels as their codes, dates in seconds (DuckDB's NumPy scan does not
    read datetime64[D])."""
    arrays = {}
    for name, column in table.items():
        if isinstance(column, Nested):
            raise TypeError(f"column {name!r} is nested: its table is served through Arrow (arrow_table)")
        if isinstance(column, Labels):
            arrays[name] = column.codes
        elif column.dtype.kind == "M":
            arrays[name] = column.astype("datetime64[s]")
        else:
            arrays[name] = column
    return arrays


def arrow_table(table: Mapping[str, SqlColumn]) -> Any:
    """A table with nested columns as one Arrow table DuckDB scans in place: Nested as they are, Labels as
    dictionary arrays (VARCHAR), dates as date32 (DATE), text as strings, numbers and booleans as they are."""
    import pyarrow as pa

    arrays = {}
    for name, column in table.items():
        if isinstance(column, Nested):
            arrays[name] = column.array
        elif isinstance(column, Labels):
            arrays[name] = pa.DictionaryArray.from_arrays(column.codes, pa.array(column.values, pa.string()))
        elif column.dtype.kind == "M":
            arrays[name] = pa.array(column.astype("datetime64[D]"), pa.date32())
        elif column.dtype.kind in "OU":
            arrays[name] = pa.array(column, pa.string())
        else:
            arrays[name] = pa.array(column)
    return pa.table(arrays)


PACK_CODEC = "zstd"
PACK_CHUNK_ROWS = 1 << 16


def pack_table(table: SqlTable) -> PackedTable:
    """A table as compressed Arrow IPC (read back by PackedTable.arrow as arrow_table makes it)."""
    import pyarrow as pa

    arrow = arrow_table(table)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, arrow.schema, options=pa.ipc.IpcWriteOptions(compression=PACK_CODEC)) as writer:
        writer.write_table(arrow, max_chunksize=PACK_CHUNK_ROWS)
    return PackedTable(sink.getvalue().to_pybytes(), tuple(table), int(arrow.nbytes))  # exactly its size


def stored_columns(table: Mapping[str, SqlColumn]) -> str:
    """The view's select list: dates as DATE (the tables are by day, and by integer hour), text as VARCHAR (Labels
    decoded inside DuckDB); numbers and booleans as they are."""
    columns = []
    for name, column in table.items():
        quoted = quoted_name(name)
        if isinstance(column, Nested):
            raise TypeError(f"column {name!r} is nested: its table is served through Arrow (arrow_table)")
        if isinstance(column, Labels):  # a CASE: cheaper in DuckDB than indexing a list literal
            cases = " ".join(f"WHEN {code} THEN {literal(value)}" for code, value in enumerate(column.values))
            columns.append(f"CAST(CASE {quoted} {cases} END AS VARCHAR) AS {quoted}")
        elif column.dtype.kind == "M":
            columns.append(f"CAST({quoted} AS DATE) AS {quoted}")
        elif column.dtype.kind in "OU":
            columns.append(f"CAST({quoted} AS VARCHAR) AS {quoted}")
        else:
            columns.append(quoted)
    return ", ".join(columns)


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
